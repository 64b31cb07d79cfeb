//! File transfer between the puppet and the controller, both directions: the sans-IO state
//! machines, the per-session book, and the download folder writer.
//!
//! Data enters and leaves as the wire messages of `rtcdesk-proto` (documented in
//! `crates/proto/FILES.md`): JSON [`ControlMessage`]s on the `control` channel (offer, accept,
//! decline, acknowledgements, done, cancel, error) and binary [`FileChunk`]s on the `file`
//! channel. Nothing here touches a socket or reads a clock; time is the `now` argument.
//!
//! - [`Sender`] and [`Receiver`]: one transfer's two ends. The sender keeps at most a window of
//!   unacknowledged bytes and reads its file only when asked ([`Source`]); the receiver checks
//!   every chunk (in order, within the offered size, within the window), hashes as bytes arrive
//!   and checks the offered SHA-256 at the end.
//! - [`Transfers`]: every transfer of a session, with limits on transfers in flight, progress
//!   (bytes, rate, time left) and the events a user sees.
//! - [`DownloadFolder`] and [`PartFile`]: bytes go to `NAME.part`, are fsynced, and only a
//!   verified file is moved to a name that never overwrites (`name (1).ext`); a part file left by
//!   a lost session resumes when the same file is offered again.
//! - [`SessionFiles`]: one session's book, folder, refusal policy and `file` channel state, as
//!   both programs' session cores keep it.
//! - [`LocalFile`]: a file on this machine opened and hashed, ready to offer.
//! - [`TransferTracker`]: the transfers a program waits for before it exits.
//! - [`name::safe_name`]: whatever name is offered, the file lands inside the folder.
//!
//! ```
//! use std::time::Instant;
//! use rtcdesk_files::{hash_source, DownloadFolder, Limits, SeekSource, TransferEvent, Transfers};
//!
//! let now = Instant::now();
//! let dir = tempfile::tempdir().unwrap();
//! let folder = DownloadFolder::new(dir.path()).unwrap();
//! let (mut alice, mut bob) = (Transfers::new(Limits::default()), Transfers::new(Limits::default()));
//!
//! // Alice offers a file.
//! let bytes = b"hello, bob".to_vec();
//! let sha256 = hash_source(&mut SeekSource(std::io::Cursor::new(&bytes)), 10).unwrap();
//! alice.send_file("../hello.txt", 10, sha256, Box::new(SeekSource(std::io::Cursor::new(bytes))), now).unwrap();
//! // Bob's user accepts.
//! bob.handle_control(&alice.poll_control().unwrap(), now).unwrap();
//! let Some(TransferEvent::Offered { offer, .. }) = bob.poll_event() else { panic!() };
//! bob.accept(offer.id, folder.prepare(&offer).unwrap(), now).unwrap();
//! alice.handle_control(&bob.poll_control().unwrap(), now).unwrap();
//! // Alice sends what the window allows; Bob checks, writes and keeps the file.
//! let mut message = Vec::new();
//! while alice.poll_file(&mut message) {
//!     bob.handle_file_message(&message, now).unwrap();
//! }
//! alice.handle_control(&bob.poll_control().unwrap(), now).unwrap(); // file_done
//! assert_eq!(std::fs::read(dir.path().join("hello.txt")).unwrap(), b"hello, bob");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod book;
mod error;
mod folder;
mod local;
pub mod name;
mod progress;
mod recv;
mod send;
mod session;
mod tracker;

pub use book::{Direction, Ending, Limits, TransferEvent, Transfers};
pub use error::{hex, FileError};
pub use folder::{default_dir, DownloadFolder, PartFile, CHECKPOINT_EVERY, DEFAULT_SUBDIR};
pub use local::LocalFile;
pub use progress::Progress;
pub use recv::{ReceiveState, Receiver};
pub use send::{hash_source, ChunkRange, SeekSource, SendState, Sender, Source};
pub use session::{SessionFiles, CHUNKS_PER_DRAIN};
pub use tracker::TransferTracker;

pub use rtcdesk_proto::control::{ControlMessage, Sha256};
pub use rtcdesk_proto::file::FileChunk;

/// A file offered by its sender: what a `file_offer` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The sender's number for the transfer.
    pub id: u32,
    /// The name as offered: never use it as a path, see [`name::safe_name`].
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: Sha256,
}

impl Offer {
    /// The `file_offer` message.
    pub fn to_message(&self) -> ControlMessage {
        ControlMessage::FileOffer {
            id: self.id,
            name: self.name.clone(),
            size: self.size,
            sha256: self.sha256,
        }
    }
}

/// A line for the user about `event` (what the programs print on stderr); names from the
/// network are reduced to their safe form first, so nothing they hold reaches a terminal raw.
pub fn describe(event: &TransferEvent) -> String {
    match event {
        TransferEvent::Offered { offer, safe_name } => {
            format!(
                "file offered: {safe_name} ({} bytes, id {})",
                offer.size, offer.id
            )
        }
        TransferEvent::Accepted { id, offset } => {
            format!("file {id} accepted, sending from byte {offset}")
        }
        TransferEvent::Completed {
            id,
            path: Some(path),
            ..
        } => format!("received file {id} (sha256 ok) → {}", path.display()),
        TransferEvent::Completed { id, path: None, .. } => format!("sent file {id}"),
        TransferEvent::Ended {
            direction,
            id,
            ending,
        } => {
            let way = match direction {
                Direction::Outgoing => "sending",
                Direction::Incoming => "receiving",
            };
            let why = match ending {
                Ending::Declined { reason } => format!("declined: {}", name::safe_name(reason)),
                Ending::Cancelled { reason, .. } => {
                    format!("cancelled: {}", name::safe_name(reason))
                }
                Ending::Failed { code, message, .. } => {
                    format!("failed ({code:?}): {}", name::safe_name(message))
                }
            };
            format!("{way} file {id} {why}")
        }
    }
}

/// A progress line for one live transfer (what the programs print with each stats interval):
/// `sending report.pdf: 12.0 of 32.0 MiB (37%), 4.1 MiB/s, 5 s left`.
pub fn describe_progress(offer: &Offer, direction: Direction, progress: &Progress) -> String {
    let way = match direction {
        Direction::Outgoing => "sending",
        Direction::Incoming => "receiving",
    };
    let mut line = format!(
        "{way} {}: {} of {} ({:.0}%)",
        name::safe_name(&offer.name),
        bytes(progress.bytes),
        bytes(progress.total),
        progress.fraction() * 100.0
    );
    if progress.rate > 0.0 {
        line.push_str(&format!(", {}/s", bytes(progress.rate as u64)));
    }
    if let Some(left) = progress.remaining {
        line.push_str(&format!(", {} s left", left.as_secs().max(1)));
    }
    line
}

/// A size for people: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.5 GiB`.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod describe_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(32 << 20), "32.0 MiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn a_progress_line_names_the_file_safely_and_says_what_is_left() {
        let offer = Offer {
            id: 1,
            name: "../../etc/\u{1b}[2Jpasswd".into(),
            size: 32 << 20,
            sha256: Sha256([0; 32]),
        };
        let progress = Progress {
            bytes: 8 << 20,
            total: 32 << 20,
            rate: (4 << 20) as f64,
            remaining: Some(Duration::from_secs(6)),
        };
        let line = describe_progress(&offer, Direction::Outgoing, &progress);
        assert!(!line.contains('\u{1b}') && !line.contains("etc"), "{line}");
        assert!(line.starts_with("sending "), "{line}");
        assert!(
            line.ends_with(": 8.0 MiB of 32.0 MiB (25%), 4.0 MiB/s, 6 s left"),
            "{line}"
        );
    }
}
