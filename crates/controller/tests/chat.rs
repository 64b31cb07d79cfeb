//! Chat both ways on the control channel: the controller library and the real `controller`
//! binary against an in-process puppet on loopback.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rtcdesk_controller::{ControllerEvent, EXIT_OK};
use rtcdesk_puppet::PuppetEvent;

/// Waits for the puppet's chat event and returns its line.
async fn puppet_hears(puppet: &mut rtcdesk_puppet::Puppet) -> rtcdesk_puppet::ChatLine {
    match wait_puppet_event(puppet, "a chat line", |e| {
        matches!(e, PuppetEvent::Chat { .. })
    })
    .await
    {
        PuppetEvent::Chat { line, .. } => line,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_user_sees_the_others_lines_with_name_and_time() {
    let mut puppet = start_puppet().await;
    let (mut controller, _pictures) = connect_controller(&puppet).await;

    controller
        .chat_sender()
        .try_send("hello from the controller")
        .expect("queued");
    let line = puppet_hears(&mut puppet).await;
    assert_eq!(line.text, "hello from the controller");
    assert_eq!(line.from, "e2e controller");
    assert!(line.at.elapsed().expect("clock") < DEADLINE);
    assert!(line
        .to_string()
        .ends_with(" e2e controller: hello from the controller"));

    let sent_to = puppet.chat_sender().try_send("hello back").expect("sent");
    assert_eq!(sent_to, 1, "one session listens");
    let line = tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::Chat(line)) => return line,
                Some(_) => {}
                None => panic!("the session ended before the chat line"),
            }
        }
    })
    .await
    .expect("the controller hears the puppet in time");
    assert_eq!(line.text, "hello back");
    assert_eq!(line.from, "test puppet");

    // A line nobody could read or that says nothing is refused, not sent.
    assert!(controller.chat_sender().try_send("  ").is_err());
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_binary_sends_chat_and_prints_the_answer() {
    let mut puppet = start_puppet().await;
    let out = std::env::temp_dir().join(format!("rtcdesk-chat-png-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args([
            "--signal",
            puppet.signal_url(),
            "--headless",
            "--frames",
            "1000",
        ])
        .args(["--seconds", "4", "--name", "script"])
        .args(["--chat", "first line", "--chat", "second line"])
        .arg("--out")
        .arg(&out)
        .arg(puppet.control_code().digits())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the controller binary runs");

    let first = puppet_hears(&mut puppet).await;
    let second = puppet_hears(&mut puppet).await;
    assert_eq!(
        (first.text.as_str(), second.text.as_str()),
        ("first line", "second line")
    );
    assert_eq!(first.from, "script");
    puppet.chat_sender().try_send("got both").expect("sent");

    let mut stderr = child.stderr.take().expect("piped");
    let output = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let status = child.wait();
        (text, status)
    });
    let (text, status) = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .expect("exits in time")
        .expect("reader");
    assert_eq!(status.expect("waited").code(), Some(EXIT_OK), "{text}");
    assert!(
        text.contains("controller: chat from test puppet: got both"),
        "stderr: {text}"
    );
    puppet.shutdown().await;
    let _ = std::fs::remove_dir_all(out);
}
