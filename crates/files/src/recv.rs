//! The receiving end of one transfer: accept (perhaps from a resume offset), check every chunk,
//! hash as bytes arrive, acknowledge, and check the offered SHA-256 at the end.
//!
//! The state machine writes nothing: [`Receiver::handle_chunk`] says whether a chunk is
//! acceptable and hashes it; the caller writes the bytes (to a [`crate::PartFile`]) and then asks
//! [`Receiver::poll_ack`] whether to acknowledge, so an acknowledgement never covers unwritten
//! bytes.

use std::time::Instant;

use rtcdesk_proto::control::{ControlMessage, FileErrorCode, FileRole, Sha256};
use rtcdesk_proto::file::FileChunk;
use sha2::Digest as _;

use crate::progress::{Progress, RateMeter};
use crate::{FileError, Offer};

/// Where an incoming transfer stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiveState {
    /// Offered; waiting for this side's user.
    Offered,
    /// Accepted; chunks arrive.
    Receiving,
    /// Every byte arrived and the hash matched; the file still has to be put in place.
    Verified,
    /// The file is in place and `file_done` was sent.
    Done,
    /// This side declined.
    Declined,
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

impl ReceiveState {
    fn name(&self) -> &'static str {
        match self {
            ReceiveState::Offered => "offered",
            ReceiveState::Receiving => "receiving",
            ReceiveState::Verified => "verified",
            ReceiveState::Done => "done",
            ReceiveState::Declined => "declined",
            ReceiveState::Cancelled { .. } => "cancelled",
            ReceiveState::Failed { .. } => "failed",
        }
    }
}

/// The receiving end of one transfer.
#[derive(Debug, Clone)]
pub struct Receiver {
    offer: Offer,
    state: ReceiveState,
    /// The next byte expected; every byte before it was handed to the caller to write.
    expected: u64,
    /// The last offset told to the sender (in the accept or an ack): the window counts from here.
    told: u64,
    window: u64,
    hasher: sha2::Sha256,
    meter: RateMeter,
}

impl Receiver {
    /// The receiving end of a file the other side offered.
    pub fn new(offer: Offer, now: Instant) -> Self {
        Receiver {
            offer,
            state: ReceiveState::Offered,
            expected: 0,
            told: 0,
            window: 0,
            hasher: sha2::Sha256::new(),
            meter: RateMeter::new(0, now),
        }
    }

    /// The transfer's id.
    pub fn id(&self) -> u32 {
        self.offer.id
    }

    /// What was offered (the name as offered, not yet made safe).
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Where the transfer stands.
    pub fn state(&self) -> &ReceiveState {
        &self.state
    }

    /// Whether the transfer is over (done, declined, cancelled or failed).
    pub fn is_finished(&self) -> bool {
        matches!(
            self.state,
            ReceiveState::Done
                | ReceiveState::Declined
                | ReceiveState::Cancelled { .. }
                | ReceiveState::Failed { .. }
        )
    }

    /// The next byte expected.
    pub fn received(&self) -> u64 {
        self.expected
    }

    /// Written bytes, rate and time left.
    pub fn progress(&self, now: Instant) -> Progress {
        self.meter.progress(self.offer.size, now)
    }

    /// Accepts from `offset`, where `prefix` has already hashed the file's first `offset` bytes
    /// (kept from a broken transfer; a fresh hasher for offset 0), granting `window` bytes. Gives
    /// the `file_accept` to send. With `offset == size` nothing more comes: call
    /// [`Receiver::verify`] at once.
    pub fn accept(
        &mut self,
        offset: u64,
        prefix: sha2::Sha256,
        window: u64,
        now: Instant,
    ) -> Result<ControlMessage, FileError> {
        self.expect(ReceiveState::Offered, "accept")?;
        if offset > self.offer.size {
            return Err(FileError::BadOffset {
                id: self.offer.id,
                offset,
                detail: "resume past the end of the file",
            });
        }
        self.state = ReceiveState::Receiving;
        self.expected = offset;
        self.told = offset;
        self.window = window;
        self.hasher = prefix;
        self.meter = RateMeter::new(offset, now);
        Ok(ControlMessage::FileAccept {
            id: self.offer.id,
            offset,
            window,
        })
    }

    /// This side's user (or a rule) declines: the `file_decline` to send.
    pub fn decline(&mut self, reason: &str) -> Result<ControlMessage, FileError> {
        self.expect(ReceiveState::Offered, "decline")?;
        self.state = ReceiveState::Declined;
        Ok(ControlMessage::FileDecline {
            id: self.offer.id,
            reason: reason.to_owned(),
        })
    }

    /// Checks one chunk and hashes it; on `Ok` the caller writes `chunk.data` at `chunk.offset`.
    /// A chunk out of order, past the offered size or past the window is refused: the caller
    /// ends the transfer with [`Receiver::fail`].
    pub fn handle_chunk(&mut self, chunk: &FileChunk<'_>, now: Instant) -> Result<(), FileError> {
        self.expect(ReceiveState::Receiving, "chunk")?;
        chunk.check()?;
        let id = self.offer.id;
        if chunk.offset != self.expected {
            return Err(FileError::OutOfOrder {
                id,
                expected: self.expected,
                got: chunk.offset,
            });
        }
        let end = chunk.end();
        if end > self.offer.size {
            return Err(FileError::PastSize {
                id,
                end,
                size: self.offer.size,
            });
        }
        let limit = self.told.saturating_add(self.window);
        if end > limit {
            return Err(FileError::PastWindow { id, end, limit });
        }
        self.hasher.update(chunk.data);
        self.expected = end;
        self.meter.record(end, now);
        Ok(())
    }

    /// Whether every byte has arrived (then call [`Receiver::verify`]).
    pub fn is_complete(&self) -> bool {
        self.state == ReceiveState::Receiving && self.expected == self.offer.size
    }

    /// The `file_ack` to send now, after the caller wrote every chunk handed over: one when a
    /// quarter of the window has arrived since the last ack sent, so the sender never stalls and
    /// acks stay few. None once complete (`file_done` says it all). The window keeps counting
    /// from the last ack *sent*: call [`Receiver::ack_sent`] when it leaves.
    pub fn poll_ack(&self) -> Option<ControlMessage> {
        if self.state != ReceiveState::Receiving || self.expected == self.offer.size {
            return None;
        }
        let step = (self.window / 4).max(1);
        if self.expected - self.told < step {
            return None;
        }
        Some(ControlMessage::FileAck {
            id: self.offer.id,
            offset: self.expected,
        })
    }

    /// A `file_ack` for `offset` was handed to the channel: the sender may now send up to
    /// `offset + window`.
    pub fn ack_sent(&mut self, offset: u64) {
        self.told = self.told.max(offset.min(self.expected));
    }

    /// Checks the hash of everything received against the offer's. On a mismatch the caller
    /// deletes the part file and sends [`Receiver::fail`]'s message.
    pub fn verify(&mut self) -> Result<(), FileError> {
        if !self.is_complete() {
            return Err(FileError::UnexpectedMessage {
                id: self.offer.id,
                what: "verify",
                state: self.state.name(),
            });
        }
        let got = Sha256(self.hasher.clone().finalize().into());
        if got != self.offer.sha256 {
            return Err(FileError::HashMismatch {
                id: self.offer.id,
                expected: self.offer.sha256,
                got,
            });
        }
        self.state = ReceiveState::Verified;
        Ok(())
    }

    /// The file is in place: the `file_done` to send.
    pub fn done(&mut self) -> Result<ControlMessage, FileError> {
        self.expect(ReceiveState::Verified, "done")?;
        self.state = ReceiveState::Done;
        Ok(ControlMessage::FileDone { id: self.offer.id })
    }

    /// This side cancels: the `file_cancel` to send (`None` if the transfer was already over).
    pub fn cancel(&mut self, reason: &str) -> Option<ControlMessage> {
        if self.is_finished() {
            return None;
        }
        self.state = ReceiveState::Cancelled {
            by: FileRole::Receiver,
            reason: reason.to_owned(),
        };
        Some(ControlMessage::FileCancel {
            id: self.offer.id,
            by: FileRole::Receiver,
            reason: reason.to_owned(),
        })
    }

    /// This side ends the transfer on `error`: the `file_error` to send (`None` if the transfer
    /// was already over).
    pub fn fail(&mut self, error: &FileError) -> Option<ControlMessage> {
        if self.is_finished() {
            return None;
        }
        let message = error.to_string();
        self.state = ReceiveState::Failed {
            by: FileRole::Receiver,
            code: error.code(),
            message: message.clone(),
        };
        Some(ControlMessage::FileError {
            id: self.offer.id,
            by: FileRole::Receiver,
            code: error.code(),
            message,
        })
    }

    /// The sender cancelled or failed: the transfer is over (no effect if it already was).
    pub fn handle_end(&mut self, end: ReceiveState) {
        if !self.is_finished() {
            self.state = end;
        }
    }

    fn expect(&self, state: ReceiveState, what: &'static str) -> Result<(), FileError> {
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
}
