//! A download folder on a real 1 MiB tmpfs: a file that cannot fit is refused before it is
//! accepted, and a disk that fills up mid-way gives a clear error and leaves nothing under the
//! final name. Needs root to mount; skipped with a message only when the mount is refused for
//! lack of privilege.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use rtcdesk_files::{
    hash_source, DownloadFolder, Ending, FileError, Limits, SeekSource, TransferEvent, Transfers,
};
use rtcdesk_proto::control::{ControlMessage, FileErrorCode, FileRole};

/// A mounted tmpfs, unmounted on drop (so also when a test fails).
struct Tmpfs {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when mounting is refused because this process is not root.
    fn mount(size: &str) -> Option<Tmpfs> {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("running mount");
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let not_root = !is_root();
            if not_root {
                eprintln!("SKIPPED: mounting a tmpfs needs root ({})", stderr.trim());
                return None;
            }
            panic!("mount -t tmpfs failed as root: {stderr}");
        }
        Some(Tmpfs {
            path,
            _parent: parent,
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let status = Command::new("umount").arg(&self.path).status();
        if !matches!(status, Ok(s) if s.success()) {
            // Still busy (a file left open by a failing test): detach it anyway.
            let lazy = Command::new("umount").arg("-l").arg(&self.path).status();
            eprintln!(
                "umount {} failed ({status:?}); lazy umount: {lazy:?}",
                self.path.display()
            );
        }
    }
}

fn is_root() -> bool {
    // The effective uid, from the kernel's view of this process.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Offers `content` as `name` from a fresh sender book to `receiver`; gives the offer.
fn offer(
    sender: &mut Transfers,
    receiver: &mut Transfers,
    name: &str,
    content: Vec<u8>,
    now: Instant,
) -> rtcdesk_files::Offer {
    let size = content.len() as u64;
    let sha256 = hash_source(&mut SeekSource(std::io::Cursor::new(&content)), size).unwrap();
    sender
        .send_file(
            name,
            size,
            sha256,
            Box::new(SeekSource(std::io::Cursor::new(content))),
            now,
        )
        .unwrap();
    receiver
        .handle_control(&sender.poll_control().unwrap(), now)
        .unwrap();
    match receiver.poll_event() {
        Some(TransferEvent::Offered { offer, .. }) => offer,
        other => panic!("{other:?}"),
    }
}

/// Given a 1 MiB download folder, when a 2 MiB file is offered, then the free-space check refuses
/// it before anything is written and the sender hears `no_space`.
#[test]
fn a_file_larger_than_the_free_space_is_refused_before_accepting() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    let folder = DownloadFolder::new(&tmpfs.path).unwrap();
    let now = Instant::now();
    let (mut sender, mut receiver) = (
        Transfers::new(Limits::default()),
        Transfers::new(Limits::default()),
    );
    let offer = offer(&mut sender, &mut receiver, "big.iso", vec![7; 2 << 20], now);
    let error = folder.prepare(&offer).unwrap_err();
    match &error {
        FileError::NoSpace {
            needed, available, ..
        } => {
            assert_eq!(*needed, 2 << 20);
            assert!(*available <= 1 << 20, "{available}");
        }
        other => panic!("{other}"),
    }
    assert!(
        error.to_string().starts_with("not enough space in "),
        "{error}"
    );
    receiver.refuse(offer.id, &error).unwrap();
    sender
        .handle_control(&receiver.poll_control().unwrap(), now)
        .unwrap();
    assert!(matches!(
        sender.poll_event(),
        Some(TransferEvent::Ended {
            ending: Ending::Failed {
                by: FileRole::Receiver,
                code: FileErrorCode::NoSpace,
                ..
            },
            ..
        })
    ));
    assert!(files_in(&tmpfs.path).is_empty());
}

/// Given a 1 MiB download folder and a 768 KiB file accepted while it fit, when something else
/// takes half the disk mid-way, then writing fails with a clear "disk full" error, the part file
/// is removed, nothing exists under the final name, and the sender hears `disk_full`.
#[test]
fn a_disk_that_fills_up_mid_way_leaves_no_partial_file() {
    let Some(tmpfs) = Tmpfs::mount("1m") else {
        return;
    };
    let folder = DownloadFolder::new(&tmpfs.path).unwrap();
    let now = Instant::now();
    let (mut sender, mut receiver) = (
        Transfers::new(Limits::default()),
        Transfers::new(Limits::default()),
    );
    let offer = offer(
        &mut sender,
        &mut receiver,
        "report.pdf",
        vec![1; 768 << 10],
        now,
    );
    let part = folder.prepare(&offer).expect("fits when offered");
    receiver.accept(offer.id, part, now).unwrap();
    sender
        .handle_control(&receiver.poll_control().unwrap(), now)
        .unwrap();
    // Something else fills half the disk.
    std::fs::write(tmpfs.path.join("other.dat"), vec![0u8; 512 << 10]).unwrap();

    let mut message = Vec::new();
    let mut failure = None;
    while sender.poll_file(&mut message) {
        if let Err(error) = receiver.handle_file_message(&message, now) {
            failure = Some(error);
            break;
        }
    }
    let error = failure.expect("the disk filled up");
    assert!(matches!(error, FileError::DiskFull { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("disk full writing ") && text.ends_with("report.pdf.part"),
        "{text}"
    );
    assert_eq!(
        files_in(&tmpfs.path),
        ["other.dat"],
        "no part file, no final file"
    );
    let to_sender: Vec<_> = std::iter::from_fn(|| receiver.poll_control()).collect();
    assert!(
        matches!(
            to_sender.last(),
            Some(ControlMessage::FileError {
                code: FileErrorCode::DiskFull,
                by: FileRole::Receiver,
                ..
            })
        ),
        "{to_sender:?}"
    );
    for message in &to_sender {
        sender.handle_control(message, now).unwrap();
    }
    assert!(matches!(
        std::iter::from_fn(|| sender.poll_event()).last(),
        Some(TransferEvent::Ended {
            ending: Ending::Failed {
                code: FileErrorCode::DiskFull,
                ..
            },
            ..
        })
    ));
    assert!(!sender.poll_file(&mut message), "the sender stopped");
}
