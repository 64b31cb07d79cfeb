//! Files both ways with the real `puppet` binary: `--send` offers a file to each controller once
//! connected, its terminal asks `accept NAME (SIZE) from "CONTROLLER"? [y/N]` and takes the
//! answer typed on stdin, and `/send PATH` typed there offers another file.

use rtcdesk_pake::PairingCode;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use rtcdesk_controller::{Controller, ControllerConfig, ControllerEvent};
use rtcdesk_files::{Direction, TransferEvent};
use rtcdesk_signal::server::{Server, ServerConfig};
use tokio::sync::mpsc;

mod common;

use common::*;

/// Longer than the other tests' deadline: a file crosses, is hashed and kept.
const FILE_DEADLINE: Duration = Duration::from_secs(15);

fn write_file(dir: &Path, name: &str, size: usize, seed: u8) -> PathBuf {
    let bytes: Vec<u8> = (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("test file written");
    path
}

/// Waits for a line of the puppet's stdout that contains `text`.
async fn line_with(lines: &mut mpsc::UnboundedReceiver<String>, text: &str) -> String {
    line_within(lines, FILE_DEADLINE, |line| line.contains(text)).await
}

/// Waits for the controller to keep a file from the puppet; gives its path.
async fn received(controller: &mut Controller) -> PathBuf {
    tokio::time::timeout(FILE_DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::File(TransferEvent::Completed {
                    direction: Direction::Incoming,
                    path: Some(path),
                    ..
                })) => return path,
                Some(ControllerEvent::File(event @ TransferEvent::Ended { .. })) => {
                    panic!("a transfer ended early: {event:?}")
                }
                Some(_) => {}
                None => panic!("the session ended before the file arrived"),
            }
        }
    })
    .await
    .expect("the file arrives in time")
}

fn type_line(stdin: &mut ChildStdin, line: &str) {
    writeln!(stdin, "{line}").expect("the puppet reads its stdin");
    stdin.flush().expect("flushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_puppet_binary_sends_asks_before_taking_and_sends_on_request() {
    let work = tempfile::tempdir().expect("temp dir");
    let (puppet_dir, controller_dir) = (work.path().join("puppet"), work.path().join("controller"));
    let greeting = write_file(work.path(), "greeting.txt", 70_000, 1);
    let later = write_file(work.path(), "later.bin", 300_000, 2);
    let upload = write_file(work.path(), "upload.bin", 1 << 20, 3);

    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().expect("address")))
        .await
        .expect("the signaling server starts");
    let url = server.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_puppet"))
        .args(["--signal", &url, "--source", "synthetic"])
        .args(["--synthetic-size", "320x180", "--accept-all", "--fps", "10"])
        .arg("--no-window")
        .arg("--download-dir")
        .arg(&puppet_dir)
        .arg("--send")
        .arg(&greeting)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the puppet binary runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let _process = PuppetProcess(child);
    let (line_tx, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let code_line = line_with(&mut lines, "Control code:").await;
    let code: PairingCode = code_line
        .trim_start_matches("Control code:")
        .trim()
        .parse()
        .expect("a control code");

    let mut config = ControllerConfig::for_pairing(url.as_str(), code);
    config.name = "helpdesk".into();
    config.decoder_threads = 1;
    config.download_dir = Some(controller_dir.clone());
    config.accept_files = true;
    let mut controller = Controller::connect(config, Box::new(NoPictures))
        .await
        .expect("the controller connects");

    // --send: the puppet's file comes once connected.
    let path = received(&mut controller).await;
    assert_eq!(path, controller_dir.join("greeting.txt"));
    assert_eq!(
        std::fs::read(&path).expect("kept"),
        std::fs::read(&greeting).expect("original")
    );

    // The controller's file waits for the puppet's user, who says yes.
    controller.files().send(&upload).expect("queued");
    let question = line_with(&mut lines, "accept upload.bin").await;
    assert!(
        question.contains("(1.0 MiB) from \"helpdesk\"? [y/N]"),
        "{question}"
    );
    type_line(&mut stdin, "y");
    tokio::time::timeout(FILE_DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::File(TransferEvent::Completed {
                    direction: Direction::Outgoing,
                    ..
                })) => return,
                Some(ControllerEvent::File(event @ TransferEvent::Ended { .. })) => {
                    panic!("the upload ended early: {event:?}")
                }
                Some(_) => {}
                None => panic!("the session ended before the upload was kept"),
            }
        }
    })
    .await
    .expect("the upload is kept in time");
    assert_eq!(
        std::fs::read(puppet_dir.join("upload.bin")).expect("kept on the puppet"),
        std::fs::read(&upload).expect("original")
    );

    // A second offer, refused: nothing lands.
    controller.files().send(&later).expect("queued");
    line_with(&mut lines, "accept later.bin").await;
    type_line(&mut stdin, "n");
    tokio::time::timeout(FILE_DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::File(TransferEvent::Ended {
                    direction: Direction::Outgoing,
                    ..
                })) => return,
                Some(_) => {}
                None => panic!("the session ended before the refusal"),
            }
        }
    })
    .await
    .expect("the refusal arrives in time");
    assert!(!puppet_dir.join("later.bin").exists());

    // /send typed on the terminal.
    type_line(&mut stdin, &format!("/send {}", later.display()));
    let path = received(&mut controller).await;
    assert_eq!(path, controller_dir.join("later.bin"));
    assert_eq!(
        std::fs::read(&path).expect("kept"),
        std::fs::read(&later).expect("original")
    );

    controller.close().await;
    server.shutdown().await;
}
