//! File transfer wire format, binary part: one chunk of a file's bytes per message on the `file`
//! data channel.
//!
//! The byte layout is written down in `FILES.md` beside this crate, with the JSON control
//! messages that start, acknowledge and end a transfer ([`crate::control`]). In short: a tag byte
//! (version in the high nibble, kind in the low), the transfer id, the offset of the first byte,
//! then the raw bytes, all little-endian, no base64.
//!
//! [`FileChunk::decode`] is total and borrows: any byte string gives a chunk pointing into it or a
//! [`FileWireError`], never a panic and never an allocation.
//!
//! ```
//! use rtcdesk_proto::file::FileChunk;
//! let chunk = FileChunk { id: 7, offset: 16384, data: b"hello" };
//! let bytes = chunk.to_bytes();
//! assert_eq!(bytes[0], 0x18);
//! assert_eq!(FileChunk::decode(&bytes), Ok(chunk));
//! ```

use std::fmt;

/// The protocol version this module speaks, carried in the high nibble of the tag byte.
pub const VERSION: u8 = 1;

/// Kind number of a chunk, the low nibble of the tag byte. Kinds 0..=7 are the input
/// protocol's, so no message of one channel parses as a message of the other.
pub const KIND_CHUNK: u8 = 8;

/// The tag byte of a v1 chunk.
pub const TAG_CHUNK: u8 = VERSION << 4 | KIND_CHUNK;

/// Bytes before the data: tag, transfer id, offset.
pub const HEADER_LEN: usize = 1 + 4 + 8;

/// Most file bytes in one chunk: small enough that a chunk never holds the SCTP association for
/// long, so other channels' messages interleave.
pub const MAX_CHUNK_DATA: usize = 16 * 1024;

/// The largest encoded chunk message.
pub const MAX_MESSAGE: usize = HEADER_LEN + MAX_CHUNK_DATA;

/// One piece of a file, borrowed from the message it was decoded from (or the buffer it will be
/// encoded from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileChunk<'a> {
    /// The transfer, as the sender numbered it in its `file_offer`.
    pub id: u32,
    /// Where `data` starts in the file.
    pub offset: u64,
    /// The bytes, 1..=[`MAX_CHUNK_DATA`] of them.
    pub data: &'a [u8],
}

/// Why bytes are not a file chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileWireError {
    /// Shorter than the header.
    Truncated {
        /// Bytes there were.
        got: usize,
    },
    /// A version this decoder does not speak (the high nibble of the tag).
    UnsupportedVersion(u8),
    /// A kind this version does not have on the `file` channel (the low nibble of the tag).
    UnknownKind(u8),
    /// A header and no data: a chunk carries at least one byte.
    EmptyData,
    /// More than [`MAX_CHUNK_DATA`] bytes of data.
    TooLong(usize),
    /// `offset + data length` does not fit in 64 bits.
    OffsetOverflow,
}

impl fmt::Display for FileWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileWireError::Truncated { got } => write!(
                f,
                "file chunk truncated: {got} bytes, the header alone is {HEADER_LEN}"
            ),
            FileWireError::UnsupportedVersion(v) => write!(
                f,
                "file protocol version {v} is not supported (this side speaks {VERSION})"
            ),
            FileWireError::UnknownKind(k) => write!(f, "unknown file message kind {k}"),
            FileWireError::EmptyData => f.write_str("file chunk with no data"),
            FileWireError::TooLong(n) => write!(
                f,
                "file chunk of {n} data bytes is over the {MAX_CHUNK_DATA}-byte limit"
            ),
            FileWireError::OffsetOverflow => f.write_str("file chunk ends past 2^64 bytes"),
        }
    }
}

impl std::error::Error for FileWireError {}

impl<'a> FileChunk<'a> {
    /// Decodes one `file` channel message. Total; borrows `data` from `bytes`.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, FileWireError> {
        let Some((header, data)) = bytes.split_first_chunk::<HEADER_LEN>() else {
            return Err(FileWireError::Truncated { got: bytes.len() });
        };
        let tag = header[0];
        if tag >> 4 != VERSION {
            return Err(FileWireError::UnsupportedVersion(tag >> 4));
        }
        if tag & 0x0f != KIND_CHUNK {
            return Err(FileWireError::UnknownKind(tag & 0x0f));
        }
        let mut id = [0u8; 4];
        id.copy_from_slice(&header[1..5]);
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&header[5..13]);
        let chunk = FileChunk {
            id: u32::from_le_bytes(id),
            offset: u64::from_le_bytes(offset),
            data,
        };
        chunk.check()?;
        Ok(chunk)
    }

    /// The offset just past this chunk's last byte.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(self.data.len() as u64)
    }

    /// Appends the encoded message to `out`; reuse one buffer to encode without allocating.
    /// Encodes even a chunk [`FileChunk::decode`] would refuse (empty, too long), so a test can
    /// build a misbehaving sender; [`FileChunk::check`] says whether it is valid.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HEADER_LEN + self.data.len());
        out.push(TAG_CHUNK);
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(self.data);
    }

    /// The encoded message in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.data.len());
        self.encode(&mut out);
        out
    }

    /// Whether the data length is within 1..=[`MAX_CHUNK_DATA`] and the end fits in 64 bits.
    pub fn check(&self) -> Result<(), FileWireError> {
        if self.data.is_empty() {
            return Err(FileWireError::EmptyData);
        }
        if self.data.len() > MAX_CHUNK_DATA {
            return Err(FileWireError::TooLong(self.data.len()));
        }
        if self.offset.checked_add(self.data.len() as u64).is_none() {
            return Err(FileWireError::OffsetOverflow);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_has_its_documented_bytes() {
        // The example in FILES.md.
        let chunk = FileChunk {
            id: 0x04030201,
            offset: 0x0c0b0a0908070605,
            data: b"abc",
        };
        assert_eq!(
            chunk.to_bytes(),
            [0x18, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, b'a', b'b', b'c']
        );
    }

    #[test]
    fn each_rejection_says_why() {
        let good = FileChunk {
            id: 1,
            offset: 0,
            data: &[0; MAX_CHUNK_DATA],
        }
        .to_bytes();
        assert!(FileChunk::decode(&good).is_ok());
        assert_eq!(
            FileChunk::decode(&good[..5]),
            Err(FileWireError::Truncated { got: 5 })
        );
        assert_eq!(
            FileChunk::decode(&good[..HEADER_LEN]),
            Err(FileWireError::EmptyData)
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            FileChunk::decode(&long),
            Err(FileWireError::TooLong(MAX_CHUNK_DATA + 1))
        );
        let mut v2 = good.clone();
        v2[0] = 0x28;
        assert_eq!(
            FileChunk::decode(&v2),
            Err(FileWireError::UnsupportedVersion(2))
        );
        let mut input = good.clone();
        input[0] = 0x10;
        assert_eq!(
            FileChunk::decode(&input),
            Err(FileWireError::UnknownKind(0))
        );
        let far = FileChunk {
            id: 1,
            offset: u64::MAX,
            data: b"x",
        }
        .to_bytes();
        assert_eq!(FileChunk::decode(&far), Err(FileWireError::OffsetOverflow));
        assert_eq!(
            FileChunk::decode(&[]),
            Err(FileWireError::Truncated { got: 0 })
        );
    }
}
