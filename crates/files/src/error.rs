use std::io;
use std::path::PathBuf;

use rtcdesk_proto::control::{FileErrorCode, Sha256};
use rtcdesk_proto::file::FileWireError;

/// Everything that can end or refuse a transfer. Each variant maps to the `file_error` code sent
/// to the other side ([`FileError::code`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// A `file` channel message that is not a chunk.
    #[error("bad file chunk: {0}")]
    Wire(#[from] FileWireError),
    /// A message names a transfer this side does not have.
    #[error("transfer {id} is unknown")]
    UnknownTransfer {
        /// The id in the message.
        id: u32,
    },
    /// The other side offered a second file under an id still in use.
    #[error("transfer {id} is already in progress")]
    DuplicateId {
        /// The id offered twice.
        id: u32,
    },
    /// The other side offered a file that is already being received in this session (same safe
    /// name, size and SHA-256): both would write the same part file.
    #[error("transfer {id} offers the same file as transfer {other}, still in progress")]
    SameFileInFlight {
        /// The new offer.
        id: u32,
        /// The transfer already receiving it.
        other: u32,
    },
    /// A message that has no place in the transfer's current state (a chunk before the accept,
    /// an accept twice, an ack before the accept…).
    #[error("transfer {id}: unexpected {what} while {state}")]
    UnexpectedMessage {
        /// The transfer.
        id: u32,
        /// What arrived.
        what: &'static str,
        /// What the transfer was doing.
        state: &'static str,
    },
    /// A chunk that does not start where the previous one ended.
    #[error("transfer {id}: chunk at offset {got}, expected {expected}")]
    OutOfOrder {
        /// The transfer.
        id: u32,
        /// The next offset this side waits for.
        expected: u64,
        /// The chunk's offset.
        got: u64,
    },
    /// The sender sent more bytes than it offered.
    #[error("transfer {id}: chunk ends at {end}, past the offered size {size}")]
    PastSize {
        /// The transfer.
        id: u32,
        /// Where the chunk ends.
        end: u64,
        /// The offered size.
        size: u64,
    },
    /// The sender sent beyond the acknowledged offset plus the window.
    #[error("transfer {id}: chunk ends at {end}, past the window's end {limit}")]
    PastWindow {
        /// The transfer.
        id: u32,
        /// Where the chunk ends.
        end: u64,
        /// Acknowledged offset plus window.
        limit: u64,
    },
    /// The receiver asked for an offset past the file's end, or acknowledged bytes never sent,
    /// or acknowledged less than before.
    #[error("transfer {id}: offset {offset} is impossible here ({detail})")]
    BadOffset {
        /// The transfer.
        id: u32,
        /// The offset in the message.
        offset: u64,
        /// Which rule it breaks.
        detail: &'static str,
    },
    /// The bytes received do not have the offered SHA-256.
    #[error(
        "transfer {id}: SHA-256 mismatch, expected {}, got {}",
        hex(expected),
        hex(got)
    )]
    HashMismatch {
        /// The transfer.
        id: u32,
        /// From the offer.
        expected: Sha256,
        /// Of the bytes received.
        got: Sha256,
    },
    /// Not enough free space in the download folder for the rest of the file.
    #[error("not enough space in {}: {needed} bytes needed, {available} free", dir.display())]
    NoSpace {
        /// The download folder.
        dir: PathBuf,
        /// Bytes still to write.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// The disk filled up while writing.
    #[error("disk full writing {}", path.display())]
    DiskFull {
        /// The part file.
        path: PathBuf,
    },
    /// A file operation in the download folder failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing", "renaming"…).
        what: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// The sending side could not read its file.
    #[error("transfer {id}: reading the file at offset {offset}: {source}")]
    ReadFailed {
        /// The transfer.
        id: u32,
        /// Where reading failed.
        offset: u64,
        /// The system's error.
        source: io::Error,
    },
    /// As many transfers are in flight as the session allows.
    #[error("already {limit} transfers in flight, the most this side allows")]
    TooMany {
        /// The limit.
        limit: usize,
    },
    /// Neither `XDG_DOWNLOAD_DIR` nor `HOME` is set, so there is no default download folder.
    #[error("no download folder: set XDG_DOWNLOAD_DIR or HOME, or choose a folder")]
    NoDownloadDir,
}

impl FileError {
    /// The code to send in `file_error` when this ends a transfer.
    pub fn code(&self) -> FileErrorCode {
        match self {
            FileError::Wire(_)
            | FileError::UnknownTransfer { .. }
            | FileError::DuplicateId { .. }
            | FileError::UnexpectedMessage { .. }
            | FileError::OutOfOrder { .. }
            | FileError::PastSize { .. }
            | FileError::PastWindow { .. }
            | FileError::BadOffset { .. } => FileErrorCode::Protocol,
            FileError::HashMismatch { .. } => FileErrorCode::HashMismatch,
            FileError::NoSpace { .. } => FileErrorCode::NoSpace,
            FileError::DiskFull { .. } => FileErrorCode::DiskFull,
            FileError::Io { .. } | FileError::NoDownloadDir => FileErrorCode::WriteFailed,
            FileError::ReadFailed { .. } => FileErrorCode::ReadFailed,
            FileError::TooMany { .. } => FileErrorCode::TooMany,
            FileError::SameFileInFlight { .. } => FileErrorCode::Other,
        }
    }

    /// An I/O error while writing, as [`FileError::DiskFull`] when that is what it is.
    pub(crate) fn writing(path: PathBuf, source: io::Error) -> Self {
        if is_disk_full(&source) {
            FileError::DiskFull { path }
        } else {
            FileError::Io {
                what: "writing",
                path,
                source,
            }
        }
    }
}

/// ENOSPC and EDQUOT (and Windows' ERROR_DISK_FULL through std's mapping).
pub(crate) fn is_disk_full(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// A digest as 64 lowercase hex digits.
pub fn hex(digest: &Sha256) -> String {
    digest.0.iter().map(|b| format!("{b:02x}")).collect()
}
