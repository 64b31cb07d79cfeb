//! Under a private Xvfb: the real `controller` binary opens its window against an in-process
//! puppet, and a screenshot of that window shows the puppet's picture.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use rtcdesk_media::{psnr_y, read_stamp_bgra, Frame};
use rtcdesk_puppet::PuppetEvent;
use rtcdesk_xvfb::Xvfb;

/// A screenshot of one window as a BGRA frame.
fn screenshot(xvfb: &Xvfb, window: &str, path: &std::path::Path) -> Option<Frame> {
    common::screen::screenshot(xvfb, window, path).map(|rgb| to_frame(&rgb))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screenshot_of_the_controller_window_shows_the_puppets_picture() {
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut puppet = start_puppet().await;
    let child = xvfb
        .command(env!("CARGO_BIN_EXE_controller"))
        .args(["--signal", puppet.signal_url()])
        .arg(puppet.control_code().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the controller binary runs");
    let _child = KillOnDrop(child);
    wait_puppet_event(&mut puppet, "SessionConnected", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;

    let path = std::env::temp_dir().join(format!("rtcdesk-window-{}.png", std::process::id()));
    // Poll the screen (an external program's window: no event tells us it was drawn).
    let found = tokio::time::timeout(DEADLINE, async {
        loop {
            if let Some(window) = find_window(&xvfb) {
                if let Some(frame) = screenshot(&xvfb, &window, &path) {
                    if let Some(stamp) = read_stamp_bgra(&frame) {
                        return (frame, stamp);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let (frame, stamp) = found.expect("a window showing a stamped picture within 10 s");
    assert_eq!((frame.width, frame.height), (WIDTH, HEIGHT));
    let shown = rtcdesk_media::convert::to_i420(&frame);
    let psnr = psnr_y(shown.view(), reference(stamp, |_| {}).view());
    assert!(psnr >= 30.0, "the window shows the desktop at {psnr:.1} dB");
    let _ = std::fs::remove_file(path);

    // The pointer moved over the window reaches the puppet's desktop at the same place of the
    // picture (the window shows it 1:1 here).
    let desktop = puppet.synthetic_desktop().expect("synthetic source");
    let window = find_window(&xvfb).expect("the window");
    let status = xvfb
        .command("xdotool")
        .args(["mousemove", "--window", &window, "160", "270"])
        .status()
        .expect("xdotool runs");
    assert!(status.success());
    let moved = tokio::time::timeout(DEADLINE, async {
        loop {
            let (x, y) = desktop.pointer();
            if x.abs_diff(160) <= 2 && y.abs_diff(270) <= 2 {
                return (x, y);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        moved.is_ok(),
        "the desktop pointer is at {:?}",
        desktop.pointer()
    );
    puppet.shutdown().await;
}

/// The screenshot as a BGRA frame, for the stamp reader and PSNR.
fn to_frame(rgb: &common::screen::Rgb) -> rtcdesk_media::Frame {
    let mut frame = rtcdesk_media::Frame::new(rgb.width, rgb.height);
    for (i, [r, g, b]) in rgb.pixels().iter().enumerate() {
        let (x, y) = (i % rgb.width as usize, i / rgb.width as usize);
        frame.data[y * frame.stride + x * 4..][..4].copy_from_slice(&[*b, *g, *r, 255]);
    }
    frame
}
