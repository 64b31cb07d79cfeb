//! Files both ways between a puppet and a controller on loopback: the real `controller`
//! binary (`--send`, `--accept-files`, `--download-dir`) against an in-process puppet, and a
//! large transfer cut by a lost session that resumes where the part file stopped.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rtcdesk_controller::{ControllerEvent, EXIT_OK, EXIT_OTHER};
use rtcdesk_files::{Direction, TransferEvent};
use rtcdesk_puppet::PuppetEvent;

/// Long enough for a big file on a loaded machine; the test still ends at the event.
const TRANSFER_DEADLINE: Duration = Duration::from_secs(120);

/// Writes `size` bytes of noise (so nothing compresses or dedupes) into `dir/name`.
fn noise_file(dir: &Path, name: &str, size: usize, seed: u64) -> PathBuf {
    let mut state = seed | 1;
    let mut bytes = Vec::with_capacity(size);
    while bytes.len() < size {
        // xorshift64: cheap, deterministic noise.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("test file written");
    path
}

/// The files in `dir` whose name does not end in `.part` or `.part.json` (kept files only).
fn kept_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("folder readable")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !name.contains(".part")
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_binary_sends_a_file_and_takes_one_back() {
    let work = tempfile::tempdir().expect("temp dir");
    let (puppet_dir, controller_dir) = (work.path().join("puppet"), work.path().join("controller"));
    let to_puppet = noise_file(work.path(), "report.bin", 3 << 20, 7);
    let to_controller = noise_file(work.path(), "notes.txt", 200_000, 11);
    let mut puppet = start_puppet_with(|config| {
        config.download_dir = Some(puppet_dir.clone());
        // The test answers, so that it can hold the controller's offer until its own is taken.
        config.answer_files = true;
    })
    .await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args([
            "--signal",
            puppet.signal_url(),
            "--headless",
            "--frames",
            "1",
        ])
        .args(["--name", "script", "--accept-files"])
        .arg("--send")
        .arg(&to_puppet)
        .arg("--download-dir")
        .arg(&controller_dir)
        .arg("--out")
        .arg(work.path().join("png"))
        .arg(puppet.control_code().digits())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the controller binary runs");

    // The puppet offers its file as soon as the session is up ...
    let session = match wait_puppet_event(&mut puppet, "the session", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await
    {
        PuppetEvent::SessionConnected { session } => session,
        _ => unreachable!(),
    };
    puppet
        .files()
        .send_to(session.clone(), &to_controller)
        .expect("queued");
    // ... and takes the controller's only once the controller has taken the puppet's: the
    // controller then waits for both, and exits only when both arrived.
    let mut offer_from_controller = None;
    let mut ours_taken = false;
    while offer_from_controller.is_none() || !ours_taken {
        match wait_puppet_event(&mut puppet, "both offers", |e| {
            matches!(
                e,
                PuppetEvent::File {
                    event: TransferEvent::Offered { .. } | TransferEvent::Accepted { .. },
                    ..
                }
            )
        })
        .await
        {
            PuppetEvent::File {
                event: TransferEvent::Offered { offer, safe_name },
                ..
            } => {
                assert_eq!(safe_name, "report.bin");
                assert_eq!(offer.size, 3 << 20);
                offer_from_controller = Some(offer.id);
            }
            PuppetEvent::File {
                event: TransferEvent::Accepted { offset, .. },
                ..
            } => {
                assert_eq!(offset, 0, "a fresh transfer starts at the beginning");
                ours_taken = true;
            }
            _ => unreachable!(),
        }
    }
    let id = offer_from_controller.expect("offered");
    puppet
        .files()
        .answer(session, id, true)
        .expect("answer queued");
    let received = match wait_puppet_event(&mut puppet, "the controller's file", |e| {
        matches!(
            e,
            PuppetEvent::File {
                event: TransferEvent::Completed {
                    direction: Direction::Incoming,
                    ..
                },
                ..
            }
        )
    })
    .await
    {
        PuppetEvent::File {
            event: TransferEvent::Completed { path, .. },
            ..
        } => path.expect("a received file has a path"),
        _ => unreachable!(),
    };
    assert_eq!(received, puppet_dir.join("report.bin"));

    let mut stderr = child.stderr.take().expect("piped");
    let output = tokio::task::spawn_blocking(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        (text, child.wait())
    });
    let (text, status) = tokio::time::timeout(Duration::from_secs(30), output)
        .await
        .expect("the controller exits once both files arrived")
        .expect("reader");
    assert_eq!(status.expect("waited").code(), Some(EXIT_OK), "{text}");
    assert!(text.contains("files: 2 arrived, 0 did not"), "{text}");
    assert_eq!(
        std::fs::read(&received).expect("kept"),
        std::fs::read(&to_puppet).expect("original")
    );
    assert_eq!(
        std::fs::read(controller_dir.join("notes.txt")).expect("the puppet's file arrived"),
        std::fs::read(&to_controller).expect("original")
    );
    assert_eq!(kept_files(&controller_dir).len(), 1, "no part file is left");
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_or_missing_file_makes_the_headless_binary_fail() {
    let work = tempfile::tempdir().expect("temp dir");
    let real = noise_file(work.path(), "a.bin", 10_000, 3);
    // No terminal, no answers: the puppet declines every offer.
    let puppet = start_puppet_with(|config| {
        config.download_dir = Some(work.path().join("puppet"));
    })
    .await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_controller"));
    command
        .args([
            "--signal",
            puppet.signal_url(),
            "--headless",
            "--frames",
            "1",
        ])
        .arg("--send")
        .arg(&real)
        .arg("--send")
        .arg(work.path().join("missing.bin"))
        .arg("--out")
        .arg(work.path().join("png"))
        .arg(puppet.control_code().digits())
        .stdin(Stdio::null());
    let output = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("exits in time")
    .expect("joined")
    .expect("ran");
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(EXIT_OTHER), "{text}");
    assert!(text.contains("missing.bin"), "{text}");
    assert!(
        text.contains("declined: the puppet does not take files"),
        "{text}"
    );
    assert!(text.contains("files: 0 arrived, 2 did not"), "{text}");
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_transfer_cut_by_a_lost_session_resumes_where_it_stopped() {
    const SIZE: usize = 256 << 20;
    let work = tempfile::tempdir().expect("temp dir");
    let folder = work.path().join("puppet");
    let big = noise_file(work.path(), "disk.img", SIZE, 99);
    let mut puppet = start_puppet_with(|config| {
        config.download_dir = Some(folder.clone());
        config.accept_files = true;
    })
    .await;

    // First session: cut once the puppet has written past a checkpoint.
    let (controller, _pictures) = connect_controller(&puppet).await;
    controller.files().send(&big).expect("queued");
    let cut_at = match wait_puppet_event_within(
        &mut puppet,
        "progress past 16 MiB",
        TRANSFER_DEADLINE,
        |e| {
            matches!(e, PuppetEvent::FileProgress { transfers, .. }
            if transfers.iter().any(|(_, _, p)| p.bytes > 16 << 20))
        },
    )
    .await
    {
        PuppetEvent::FileProgress { transfers, .. } => transfers[0].2.bytes,
        _ => unreachable!(),
    };
    assert!(
        cut_at < SIZE as u64,
        "the transfer must still be running to be cut"
    );
    controller.close().await;
    wait_puppet_event(&mut puppet, "the cut", |e| {
        matches!(
            e,
            PuppetEvent::File {
                event: TransferEvent::Ended { .. },
                ..
            } | PuppetEvent::SessionEnded { .. }
        )
    })
    .await;
    assert!(
        kept_files(&folder).is_empty(),
        "a cut file is not given its name"
    );

    // Second session: the same file resumes from the part file.
    let (mut controller, _pictures) = connect_controller(&puppet).await;
    controller.files().send(&big).expect("queued");
    let offset = tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::File(TransferEvent::Accepted { offset, .. })) => {
                    return offset
                }
                Some(_) => {}
                None => panic!("the session ended before the answer"),
            }
        }
    })
    .await
    .expect("the puppet answers in time");
    assert!(
        offset >= rtcdesk_files::CHECKPOINT_EVERY && offset < SIZE as u64,
        "resumed from {offset}, cut at {cut_at}"
    );
    tokio::time::timeout(TRANSFER_DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::File(TransferEvent::Completed { .. })) => return,
                Some(ControllerEvent::File(event @ TransferEvent::Ended { .. })) => {
                    panic!("the resumed transfer ended: {event:?}")
                }
                Some(_) => {}
                None => panic!("the session ended before the file was kept"),
            }
        }
    })
    .await
    .expect("the resumed transfer completes");
    let kept = kept_files(&folder);
    assert_eq!(kept, vec![folder.join("disk.img")]);
    let (mut original, mut copy) = (
        std::fs::File::open(&big).expect("original"),
        std::fs::File::open(&kept[0]).expect("copy"),
    );
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = original.read(&mut a).expect("read");
        let m = copy
            .read_exact(&mut b[..n])
            .map(|_| n)
            .expect("same length");
        assert_eq!(a[..n], b[..m], "the resumed file is byte for byte the same");
        if n == 0 {
            assert_eq!(copy.read(&mut b).expect("read"), 0, "no extra bytes");
            break;
        }
    }
    controller.close().await;
    puppet.shutdown().await;
}
