//! The clipboard both ways between the real `controller` window and a puppet, each on its own
//! private X server as on two machines: text copied on the controller's machine reaches the
//! puppet's clipboard when the window gains the focus, and text copied on the puppet lands on
//! the controller's machine's clipboard.
//!
//! One test in its own binary: the puppet and the probes open the X server named in `DISPLAY`,
//! which this test sets for its process.

mod common;

use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use rtcdesk_clipboard::SystemClipboard;
use rtcdesk_puppet::PuppetEvent;
use rtcdesk_xvfb::Xvfb;

fn read(clipboard: &SystemClipboard) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    clipboard.read(move |text| {
        let _ = tx.send(text);
    });
    rx.recv_timeout(Duration::from_secs(10)).ok().flatten()
}

/// Reads `clipboard` until it holds `want` (another process writes it: no event tells when).
fn wait_for_text(clipboard: &SystemClipboard, want: &str) -> Option<String> {
    let deadline = Instant::now() + DEADLINE;
    let mut last = None;
    while Instant::now() < deadline {
        last = read(clipboard);
        if last.as_deref() == Some(want) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_copied_on_either_machine_can_be_pasted_on_the_other() {
    let puppet_x = Xvfb::start(320, 200).expect("the puppet's Xvfb starts");
    let controller_x = Xvfb::start(1024, 768).expect("the controller's Xvfb starts");
    // The puppet (in this process) and the first probe use the puppet's X server...
    std::env::set_var("DISPLAY", puppet_x.display());
    let mut puppet = start_puppet_with(|config| config.clipboard = true).await;
    let on_puppet = SystemClipboard::open().expect("a probe on the puppet's clipboard");
    // ... the second probe the controller's.
    std::env::set_var("DISPLAY", controller_x.display());
    let on_controller = SystemClipboard::open().expect("a probe on the controller's clipboard");

    on_controller.write("copied on the controller".into());
    let child = controller_x
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
    let window = common::screen::wait_for_window(&controller_x, common::CONTROLLER_TITLE).await;

    // The user comes back to the window: what they copied goes to the puppet.
    let status = controller_x
        .command("xdotool")
        .args(["windowfocus", "--sync", &window])
        .status()
        .expect("xdotool runs");
    assert!(status.success());
    let probe = on_puppet;
    let (probe, seen) = tokio::task::spawn_blocking(move || {
        let seen = wait_for_text(&probe, "copied on the controller");
        (probe, seen)
    })
    .await
    .expect("joined");
    assert_eq!(seen.as_deref(), Some("copied on the controller"));

    // A copy on the puppet lands on the controller's machine.
    probe.write("copied on the puppet".into());
    let seen =
        tokio::task::spawn_blocking(move || wait_for_text(&on_controller, "copied on the puppet"))
            .await
            .expect("joined");
    assert_eq!(seen.as_deref(), Some("copied on the puppet"));
    drop(probe);
    puppet.shutdown().await;
}
