//! The real `puppet` binary's terminal: lines typed on its stdin are chat to the controller,
//! and the controller's lines are printed with time and name.

use rtcdesk_pake::PairingCode;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use rtcdesk_controller::{Controller, ControllerConfig, ControllerEvent};
use rtcdesk_signal::server::{Server, ServerConfig};
use tokio::sync::mpsc;

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_typed_on_the_puppets_terminal_are_chat() {
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().expect("address")))
        .await
        .expect("the signaling server starts");
    let signal_url = server.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_puppet"))
        .args([
            "--signal",
            &signal_url,
            "--source",
            "synthetic",
            "--name",
            "front desk",
        ])
        .args(["--synthetic-size", "320x180", "--accept-all", "--fps", "10"])
        // Its terminal is what this test types into, on a desktop too.
        .arg("--no-window")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the puppet binary runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let _process = PuppetProcess(child);
    let (tx, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let code_line = line(&mut lines, |l| l.starts_with("Control code:")).await;
    let code: PairingCode = code_line["Control code:".len()..]
        .trim()
        .parse()
        .expect("a control code");

    let mut config = ControllerConfig::for_pairing(&signal_url, code);
    config.name = "help desk".into();
    config.decoder_threads = 1;
    let mut controller = Controller::connect(config, Box::new(NoPictures))
        .await
        .expect("the controller connects");
    controller
        .chat_sender()
        .try_send("can you see me?")
        .expect("queued");
    let shown = line(&mut lines, |l| l.contains("can you see me?")).await;
    // "HH:MM:SS help desk: can you see me?"
    let (clock, rest) = shown.split_at(8);
    assert!(
        clock.bytes().enumerate().all(|(i, b)| if i % 3 == 2 {
            b == b':'
        } else {
            b.is_ascii_digit()
        }),
        "a time first: {shown:?}"
    );
    assert_eq!(rest, " help desk: can you see me?");

    stdin.write_all(b"yes, loud and clear\n").expect("typed");
    stdin.flush().expect("flushed");
    let heard = tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::Chat(line)) => return line,
                Some(_) => {}
                None => panic!("the session ended before the chat line"),
            }
        }
    })
    .await
    .expect("the controller hears the puppet's user in time");
    assert_eq!(heard.text, "yes, loud and clear");
    assert_eq!(heard.from, "front desk");
    controller.close().await;
    server.shutdown().await;
}
