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

pub use book::{Direction, Ending, Limits, TransferEvent, Transfers};
pub use error::{hex, FileError};
pub use folder::{default_dir, DownloadFolder, PartFile, CHECKPOINT_EVERY, DEFAULT_SUBDIR};
pub use local::LocalFile;
pub use progress::Progress;
pub use recv::{ReceiveState, Receiver};
pub use send::{hash_source, ChunkRange, SeekSource, SendState, Sender, Source};
pub use session::{SessionFiles, CHUNKS_PER_DRAIN};

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
