//! X11 capture under a private Xvfb returns what an X client drew.

use std::time::Duration;

use rtcdesk_media::{Capture, CaptureThread, Frame, X11Capture};
use rtcdesk_xvfb::Xvfb;

/// Paints the root window with one colour through ImageMagick (`display -window root`), an
/// ordinary X client. Waits for it to finish (it syncs with the server before exiting).
fn paint_root(x: &Xvfb, colour: &str, dir: &std::path::Path) {
    let image = dir.join(format!("{}.png", colour.trim_start_matches('#')));
    let (w, h) = x.size();
    let made = std::process::Command::new("convert")
        .args(["-size", &format!("{w}x{h}"), &format!("xc:{colour}")])
        .arg(&image)
        .status()
        .expect("imagemagick convert");
    assert!(made.success());
    // ImageMagick 6 exits with 1 after painting the root window; the capture checks the result.
    x.command("display")
        .args(["-window", "root"])
        .arg(&image)
        .status()
        .expect("imagemagick display");
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rtcdesk-media-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn x11_capture_returns_what_a_client_drew_and_only_changes() {
    let x = Xvfb::start(320, 240).expect("Xvfb");
    let dir = temp_dir("x11");
    paint_root(&x, "#3366cc", &dir);
    let mut capture = X11Capture::open(Some(x.display())).expect("open the Xvfb display");
    assert_eq!(capture.size(), (320, 240));
    let mut frame = Frame::new(1, 1);
    assert!(
        capture.grab(&mut frame).unwrap(),
        "the first grab is a frame"
    );
    assert_eq!((frame.width, frame.height), (320, 240));
    // BGRA: blue 0xcc, green 0x66, red 0x33.
    assert_eq!(frame.pixel(0, 0), [0xcc, 0x66, 0x33]);
    assert_eq!(frame.pixel(319, 239), [0xcc, 0x66, 0x33]);
    assert!(
        !capture.grab(&mut frame).unwrap(),
        "an unchanged screen gives no frame"
    );

    paint_root(&x, "#20c040", &dir);
    assert!(
        capture.grab(&mut frame).unwrap(),
        "a repainted screen is a new frame"
    );
    assert_eq!(frame.pixel(160, 120), [0x40, 0xc0, 0x20]);
    assert_eq!(frame.number, 2);
    assert_eq!(frame.changed.map(|r| (r.width, r.height)), Some((320, 240)));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn x11_capture_thread_delivers_changed_frames() {
    let x = Xvfb::start(320, 240).expect("Xvfb");
    let dir = temp_dir("x11-thread");
    paint_root(&x, "#102030", &dir);
    let display = x.display().to_string();
    let capture = CaptureThread::spawn(move || X11Capture::open(Some(&display)), 60).unwrap();
    let first = capture
        .next_frame(Duration::from_secs(10))
        .unwrap()
        .expect("a first frame");
    assert_eq!(first.pixel(5, 5), [0x30, 0x20, 0x10]);
    paint_root(&x, "#405060", &dir);
    // Wait (bounded) for the repaint to show up.
    let mut seen = None;
    for _ in 0..50 {
        if let Some(frame) = capture.next_frame(Duration::from_millis(200)).unwrap() {
            if frame.pixel(5, 5) == [0x60, 0x50, 0x40] {
                seen = Some(frame);
                break;
            }
        }
    }
    assert!(seen.is_some(), "the repaint was captured");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_missing_display_is_an_error_not_a_panic() {
    let result = X11Capture::open(Some(":987"));
    assert!(matches!(
        result,
        Err(rtcdesk_media::Error::DisplayUnavailable { .. })
    ));
}
