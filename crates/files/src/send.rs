//! The sending end of one transfer: offer, wait for the accept, send chunks within the
//! receiver's window as acknowledgements come back, finish on `file_done`.
//!
//! The state machine holds no file: the caller either asks [`Sender::next_chunk`] which range to
//! send and reads it itself, or hands a [`Source`] to [`Sender::poll_chunk`], which reads the
//! range straight into the message buffer after the header (one copy, no extra allocation).

use std::io::{self, Read, Seek, SeekFrom};
use std::time::Instant;

use rtcdesk_proto::control::{ControlMessage, FileErrorCode, FileRole, Sha256};
use rtcdesk_proto::file::{FileChunk, HEADER_LEN, MAX_CHUNK_DATA};

use crate::progress::{Progress, RateMeter};
use crate::{FileError, Offer};

/// Where the sender's bytes come from.
pub trait Source {
    /// Fills `buf` with the file's bytes starting at `offset`; an error (including a file now
    /// shorter than offered) ends the transfer with `read_failed`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// Any `Read + Seek` (a `File`, a `Cursor`) as a [`Source`].
#[derive(Debug)]
pub struct SeekSource<R>(pub R);

impl<R: Read + Seek> Source for SeekSource<R> {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.seek(SeekFrom::Start(offset))?;
        self.0.read_exact(buf)
    }
}

/// The SHA-256 of a source's first `size` bytes, for the offer.
pub fn hash_source(source: &mut dyn Source, size: u64) -> io::Result<Sha256> {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut offset = 0;
    while offset < size {
        let len = (size - offset).min(buf.len() as u64) as usize;
        source.read_at(offset, &mut buf[..len])?;
        hasher.update(&buf[..len]);
        offset += len as u64;
    }
    Ok(Sha256(hasher.finalize().into()))
}

/// A range of the file to send next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRange {
    /// The transfer.
    pub id: u32,
    /// First byte.
    pub offset: u64,
    /// Bytes, 1..=[`MAX_CHUNK_DATA`].
    pub len: usize,
}

/// Where an outgoing transfer stands.
#[derive(Debug, Clone, PartialEq)]
pub enum SendState {
    /// Offered; waiting for the receiver's user.
    Offered,
    /// Accepted; chunks flow as the window allows.
    Sending,
    /// The receiver has every byte, checked the hash and kept the file.
    Done,
    /// The receiver declined.
    Declined {
        /// Their reason.
        reason: String,
    },
    /// One side cancelled.
    Cancelled {
        /// Who.
        by: FileRole,
        /// Why.
        reason: String,
    },
    /// One side failed.
    Failed {
        /// Who.
        by: FileRole,
        /// What failed.
        code: FileErrorCode,
        /// Said how.
        message: String,
    },
}

impl SendState {
    fn name(&self) -> &'static str {
        match self {
            SendState::Offered => "offered",
            SendState::Sending => "sending",
            SendState::Done => "done",
            SendState::Declined { .. } => "declined",
            SendState::Cancelled { .. } => "cancelled",
            SendState::Failed { .. } => "failed",
        }
    }
}

/// The sending end of one transfer.
#[derive(Debug, Clone)]
pub struct Sender {
    offer: Offer,
    state: SendState,
    /// The next byte to hand out.
    next: u64,
    /// Every byte before this is stored by the receiver.
    acked: u64,
    /// Bytes allowed past `acked`: the receiver's grant, used whole (the receiver acknowledges
    /// only every quarter window, so a sender holding back more than that would stall).
    window: u64,
    meter: RateMeter,
}

impl Sender {
    /// A transfer of `offer`'s file, to be announced with [`Sender::offer_message`]. How much it
    /// keeps unacknowledged is the receiver's to say, in its accept; what the sender buffers
    /// locally is up to its caller, who polls chunks only while the channel has room.
    pub fn new(offer: Offer, now: Instant) -> Self {
        Sender {
            offer,
            state: SendState::Offered,
            next: 0,
            acked: 0,
            window: 0,
            meter: RateMeter::new(0, now),
        }
    }

    /// The transfer's id.
    pub fn id(&self) -> u32 {
        self.offer.id
    }

    /// What was offered.
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Where the transfer stands.
    pub fn state(&self) -> &SendState {
        &self.state
    }

    /// Whether the transfer is over (done, declined, cancelled or failed).
    pub fn is_finished(&self) -> bool {
        !matches!(self.state, SendState::Offered | SendState::Sending)
    }

    /// The `file_offer` to send on `control`.
    pub fn offer_message(&self) -> ControlMessage {
        self.offer.to_message()
    }

    /// Bytes handed out but not yet acknowledged.
    pub fn in_flight(&self) -> u64 {
        self.next - self.acked
    }

    /// Acknowledged bytes, rate and time left.
    pub fn progress(&self, now: Instant) -> Progress {
        self.meter.progress(self.offer.size, now)
    }

    /// The receiver accepted from `offset` with `window`.
    pub fn handle_accept(
        &mut self,
        offset: u64,
        window: u64,
        now: Instant,
    ) -> Result<(), FileError> {
        self.expect(SendState::Offered, "file_accept")?;
        if offset > self.offer.size {
            return Err(self.bad_offset(offset, "accept past the end of the file"));
        }
        self.state = SendState::Sending;
        self.next = offset;
        self.acked = offset;
        self.window = window.max(1);
        self.meter = RateMeter::new(offset, now);
        Ok(())
    }

    /// The receiver has stored every byte before `offset`.
    pub fn handle_ack(&mut self, offset: u64, now: Instant) -> Result<(), FileError> {
        self.expect(SendState::Sending, "file_ack")?;
        if offset > self.next {
            return Err(self.bad_offset(offset, "acknowledges bytes never sent"));
        }
        if offset < self.acked {
            return Err(self.bad_offset(offset, "acknowledges less than before"));
        }
        self.acked = offset;
        self.meter.record(offset, now);
        Ok(())
    }

    /// The receiver kept the file. Only valid once every byte was sent.
    pub fn handle_done(&mut self, now: Instant) -> Result<(), FileError> {
        self.expect(SendState::Sending, "file_done")?;
        if self.next != self.offer.size {
            return Err(self.bad_offset(self.next, "done before every byte was sent"));
        }
        self.acked = self.offer.size;
        self.meter.record(self.acked, now);
        self.state = SendState::Done;
        Ok(())
    }

    /// The receiver declined the offer.
    pub fn handle_decline(&mut self, reason: String) -> Result<(), FileError> {
        self.expect(SendState::Offered, "file_decline")?;
        self.state = SendState::Declined { reason };
        Ok(())
    }

    /// The receiver cancelled, or reported a failure: the transfer is over. Arriving after the
    /// transfer ended it changes nothing (both sides may cancel at once).
    pub fn handle_end(&mut self, end: SendState) {
        if !self.is_finished() {
            self.state = end;
        }
    }

    /// This side cancels: the `file_cancel` to send (`None` if the transfer was already over).
    pub fn cancel(&mut self, reason: &str) -> Option<ControlMessage> {
        if self.is_finished() {
            return None;
        }
        self.state = SendState::Cancelled {
            by: FileRole::Sender,
            reason: reason.to_owned(),
        };
        Some(ControlMessage::FileCancel {
            id: self.offer.id,
            by: FileRole::Sender,
            reason: reason.to_owned(),
        })
    }

    /// This side failed (it could not read, or the receiver broke the protocol): the
    /// `file_error` to send (`None` if the transfer was already over).
    pub fn fail(&mut self, error: &FileError) -> Option<ControlMessage> {
        if self.is_finished() {
            return None;
        }
        let message = error.to_string();
        self.state = SendState::Failed {
            by: FileRole::Sender,
            code: error.code(),
            message: message.clone(),
        };
        Some(ControlMessage::FileError {
            id: self.offer.id,
            by: FileRole::Sender,
            code: error.code(),
            message,
        })
    }

    /// The next range to send, if the transfer is sending and the window has room; the range
    /// counts as sent from here on.
    pub fn next_chunk(&mut self) -> Option<ChunkRange> {
        if self.state != SendState::Sending {
            return None;
        }
        let window_end = self.acked.saturating_add(self.window).min(self.offer.size);
        if self.next >= window_end {
            return None;
        }
        let len = (window_end - self.next).min(MAX_CHUNK_DATA as u64) as usize;
        let range = ChunkRange {
            id: self.offer.id,
            offset: self.next,
            len,
        };
        self.next += len as u64;
        Some(range)
    }

    /// The next chunk message, read from `source` into `out` (cleared first): `Ok(true)` when
    /// `out` holds a message for the `file` channel, `Ok(false)` when the window is full or the
    /// transfer is not sending. A read error fails the transfer; send [`Sender::fail`]'s message.
    pub fn poll_chunk(
        &mut self,
        source: &mut dyn Source,
        out: &mut Vec<u8>,
    ) -> Result<bool, FileError> {
        let Some(range) = self.next_chunk() else {
            return Ok(false);
        };
        out.clear();
        FileChunk {
            id: range.id,
            offset: range.offset,
            data: &[],
        }
        .encode(out);
        out.resize(HEADER_LEN + range.len, 0);
        source
            .read_at(range.offset, &mut out[HEADER_LEN..])
            .map_err(|source| FileError::ReadFailed {
                id: range.id,
                offset: range.offset,
                source,
            })?;
        Ok(true)
    }

    fn expect(&self, state: SendState, what: &'static str) -> Result<(), FileError> {
        if self.state == state {
            Ok(())
        } else {
            Err(FileError::UnexpectedMessage {
                id: self.offer.id,
                what,
                state: self.state.name(),
            })
        }
    }

    fn bad_offset(&self, offset: u64, detail: &'static str) -> FileError {
        FileError::BadOffset {
            id: self.offer.id,
            offset,
            detail,
        }
    }
}
