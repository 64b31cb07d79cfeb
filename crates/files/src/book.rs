//! The per-session book of transfers, both directions: what the session's shell feeds with
//! control and `file` messages and drains for messages to send and events to show.
//!
//! Rules it keeps:
//! - at most [`Limits::max_outgoing`] files offered or sending, and [`Limits::max_incoming`]
//!   offered to this side or receiving; an offer over the limit is answered `file_error`
//!   `too_many` at once;
//! - every chunk is checked by its [`Receiver`] (in order, within the size, within the window)
//!   before a byte is written; a sender that breaks a rule is cut off with `file_error`
//!   `protocol` and its part file removed;
//! - messages for a transfer that just ended (chunks and acks still on the way after a cancel)
//!   are dropped quietly; messages for an id never seen are refused;
//! - a transfer ends exactly once, with one [`TransferEvent::Ended`] or
//!   [`TransferEvent::Completed`];
//! - [`Transfers::close`] (the session is gone) keeps every incoming part file for a resume.
//!
//! It does file I/O only through the [`Source`]s and [`PartFile`]s the caller hands it, and
//! reads no clock: `now` is an argument.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use rtcdesk_proto::control::{
    ControlMessage, FileErrorCode, FileRole, Sha256, DEFAULT_FILE_WINDOW,
};
use rtcdesk_proto::file::FileChunk;

use crate::folder::PartFile;
use crate::progress::Progress;
use crate::recv::{ReceiveState, Receiver};
use crate::send::{SendState, Sender, Source};
use crate::{FileError, Offer};

/// How many recently ended ids are remembered, so late chunks for them are dropped quietly.
const REMEMBERED_ENDS: usize = 64;

/// Per-session limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Outgoing transfers offered or sending at once.
    pub max_outgoing: usize,
    /// Incoming transfers offered or receiving at once.
    pub max_incoming: usize,
    /// Window granted to senders of files to this side (the other side's grant rules what this
    /// side sends).
    pub window: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_outgoing: 8,
            max_incoming: 8,
            window: DEFAULT_FILE_WINDOW,
        }
    }
}

/// Which way a transfer goes, seen from this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// This side sends.
    Outgoing,
    /// This side receives.
    Incoming,
}

/// How a transfer ended without completing.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The receiver declined the offer.
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

/// What the user should hear about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TransferEvent {
    /// The other side offers a file: ask the user, then [`Transfers::accept`] or
    /// [`Transfers::decline`].
    Offered {
        /// The offer as sent (its name is not safe to use as a path).
        offer: Offer,
        /// What the file would be called here.
        safe_name: String,
    },
    /// The receiver accepted one of this side's offers, from `offset`.
    Accepted {
        /// The transfer.
        id: u32,
        /// Where sending starts (non-zero when resuming).
        offset: u64,
    },
    /// A transfer finished: the file arrived intact (`path` is where it now is), or the other
    /// side confirmed it kept this side's file (`path` is `None`).
    Completed {
        /// Which way.
        direction: Direction,
        /// The transfer.
        id: u32,
        /// The received file's final path.
        path: Option<PathBuf>,
    },
    /// A transfer ended without completing.
    Ended {
        /// Which way.
        direction: Direction,
        /// The transfer.
        id: u32,
        /// How.
        ending: Ending,
    },
}

struct Outgoing {
    sender: Sender,
    source: Box<dyn Source + Send>,
}

struct Incoming {
    receiver: Receiver,
    part: Option<PartFile>,
}

/// Every transfer of one session, both directions.
pub struct Transfers {
    limits: Limits,
    next_id: u32,
    outgoing: BTreeMap<u32, Outgoing>,
    incoming: BTreeMap<u32, Incoming>,
    ended: VecDeque<(Direction, u32)>,
    control: VecDeque<ControlMessage>,
    events: VecDeque<TransferEvent>,
    /// Where the round robin over outgoing transfers resumes.
    cursor: u32,
}

impl std::fmt::Debug for Transfers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfers")
            .field("outgoing", &self.outgoing.keys().collect::<Vec<_>>())
            .field("incoming", &self.incoming.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Transfers {
    /// An empty book.
    pub fn new(limits: Limits) -> Self {
        Transfers {
            limits,
            next_id: 1,
            outgoing: BTreeMap::new(),
            incoming: BTreeMap::new(),
            ended: VecDeque::with_capacity(REMEMBERED_ENDS),
            control: VecDeque::new(),
            events: VecDeque::new(),
            cursor: 0,
        }
    }

    /// Offers a file: `size` bytes of `source` whose SHA-256 is `sha256` (see
    /// [`crate::hash_source`]). Gives the transfer's id; the `file_offer` is queued.
    pub fn send_file(
        &mut self,
        name: &str,
        size: u64,
        sha256: Sha256,
        source: Box<dyn Source + Send>,
        now: Instant,
    ) -> Result<u32, FileError> {
        if self.outgoing.len() >= self.limits.max_outgoing {
            return Err(FileError::TooMany {
                limit: self.limits.max_outgoing,
            });
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let offer = Offer {
            id,
            name: name.to_owned(),
            size,
            sha256,
        };
        let sender = Sender::new(offer, now);
        self.control.push_back(sender.offer_message());
        self.outgoing.insert(id, Outgoing { sender, source });
        Ok(id)
    }

    /// Accepts incoming offer `id` into `part` (from [`crate::DownloadFolder::prepare`]), from
    /// the part's resume offset. The `file_accept` is queued.
    pub fn accept(&mut self, id: u32, part: PartFile, now: Instant) -> Result<(), FileError> {
        let window = self.limits.window;
        let incoming = self
            .incoming
            .get_mut(&id)
            .ok_or(FileError::UnknownTransfer { id })?;
        let accept =
            incoming
                .receiver
                .accept(part.resume_offset(), part.prefix_hasher(), window, now)?;
        incoming.part = Some(part);
        self.control.push_back(accept);
        if self.incoming[&id].receiver.is_complete() {
            self.complete_incoming(id);
        }
        Ok(())
    }

    /// Declines incoming offer `id`. The `file_decline` is queued.
    pub fn decline(&mut self, id: u32, reason: &str) -> Result<(), FileError> {
        let incoming = self
            .incoming
            .get_mut(&id)
            .ok_or(FileError::UnknownTransfer { id })?;
        let message = incoming.receiver.decline(reason)?;
        self.control.push_back(message);
        self.end(Direction::Incoming, id, None);
        Ok(())
    }

    /// Declines incoming offer `id` because `error` (no space, no folder) prevents accepting it:
    /// the `file_error` is queued.
    pub fn refuse(&mut self, id: u32, error: &FileError) -> Result<(), FileError> {
        if !self.incoming.contains_key(&id) {
            return Err(FileError::UnknownTransfer { id });
        }
        self.fail(Direction::Incoming, id, error);
        Ok(())
    }

    /// This side's user cancels a transfer, either way. The `file_cancel` is queued; an incoming
    /// part file is removed.
    pub fn cancel(&mut self, direction: Direction, id: u32, reason: &str) -> Result<(), FileError> {
        let message = match direction {
            Direction::Outgoing => self
                .outgoing
                .get_mut(&id)
                .ok_or(FileError::UnknownTransfer { id })?
                .sender
                .cancel(reason),
            Direction::Incoming => self
                .incoming
                .get_mut(&id)
                .ok_or(FileError::UnknownTransfer { id })?
                .receiver
                .cancel(reason),
        };
        if let Some(message) = message {
            self.control.push_back(message);
        }
        let by = match direction {
            Direction::Outgoing => FileRole::Sender,
            Direction::Incoming => FileRole::Receiver,
        };
        self.end(
            direction,
            id,
            Some(Ending::Cancelled {
                by,
                reason: reason.to_owned(),
            }),
        );
        Ok(())
    }

    /// A control message arrived. Gives `Ok(false)` for messages that are not about files (chat,
    /// clipboard…), for the caller to handle. On `Err` the message was refused and, if it named
    /// a transfer, that transfer is over and the `file_error` is queued.
    pub fn handle_control(
        &mut self,
        message: &ControlMessage,
        now: Instant,
    ) -> Result<bool, FileError> {
        match message {
            ControlMessage::FileOffer {
                id,
                name,
                size,
                sha256,
            } => self.handle_offer(
                Offer {
                    id: *id,
                    name: name.clone(),
                    size: *size,
                    sha256: *sha256,
                },
                now,
            )?,
            ControlMessage::FileAccept { id, offset, window } => {
                self.on_sender(*id, |s| s.handle_accept(*offset, *window, now))?;
                if self.outgoing.contains_key(id) {
                    self.events.push_back(TransferEvent::Accepted {
                        id: *id,
                        offset: *offset,
                    });
                }
            }
            ControlMessage::FileAck { id, offset } => {
                self.on_sender(*id, |s| s.handle_ack(*offset, now))?
            }
            ControlMessage::FileDone { id } => {
                self.on_sender(*id, |s| s.handle_done(now))?;
                if self.outgoing.contains_key(id) {
                    self.events.push_back(TransferEvent::Completed {
                        direction: Direction::Outgoing,
                        id: *id,
                        path: None,
                    });
                    self.forget(Direction::Outgoing, *id);
                }
            }
            ControlMessage::FileDecline { id, reason } => {
                self.on_sender(*id, |s| s.handle_decline(reason.clone()))?;
                if self.outgoing.contains_key(id) {
                    self.end(
                        Direction::Outgoing,
                        *id,
                        Some(Ending::Declined {
                            reason: reason.clone(),
                        }),
                    );
                }
            }
            ControlMessage::FileCancel { id, by, reason } => {
                let ending = Ending::Cancelled {
                    by: *by,
                    reason: reason.clone(),
                };
                self.handle_remote_end(*id, *by, ending);
            }
            ControlMessage::FileError {
                id,
                by,
                code,
                message,
            } => {
                let ending = Ending::Failed {
                    by: *by,
                    code: *code,
                    message: message.clone(),
                };
                self.handle_remote_end(*id, *by, ending);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A binary message arrived on the `file` channel: checked, then written to its part file.
    /// When it completes the file, the hash is checked and the file put in place (or the part
    /// removed on a mismatch). On `Err` the chunk was refused and, if it named a live transfer,
    /// that transfer is over and the `file_error` is queued.
    pub fn handle_file_message(&mut self, bytes: &[u8], now: Instant) -> Result<(), FileError> {
        let chunk = FileChunk::decode(bytes)?;
        let id = chunk.id;
        let Some(incoming) = self.incoming.get_mut(&id) else {
            if self.ended.contains(&(Direction::Incoming, id)) {
                return Ok(());
            }
            return Err(FileError::UnknownTransfer { id });
        };
        let written = incoming.receiver.handle_chunk(&chunk, now).and_then(|()| {
            match incoming.part.as_mut() {
                Some(part) => part.write(chunk.offset, chunk.data),
                None => Err(FileError::UnexpectedMessage {
                    id,
                    what: "chunk",
                    state: "not accepted",
                }),
            }
        });
        if let Err(error) = written {
            self.fail(Direction::Incoming, id, &error);
            return Err(error);
        }
        if incoming.receiver.is_complete() {
            self.complete_incoming(id);
        } else if let Some(ack) = incoming.receiver.poll_ack() {
            self.queue_ack(ack);
        }
        Ok(())
    }

    /// The next control message to send on `control`. An acknowledgement counts as sent from
    /// here: the sender's window grows only once it can know.
    pub fn poll_control(&mut self) -> Option<ControlMessage> {
        let message = self.control.pop_front()?;
        if let ControlMessage::FileAck { id, offset } = &message {
            if let Some(incoming) = self.incoming.get_mut(id) {
                incoming.receiver.ack_sent(*offset);
            }
        }
        Some(message)
    }

    /// Queues an ack, or moves a queued, unsent ack of the same transfer forward: at most one
    /// ack per transfer waits in the queue.
    fn queue_ack(&mut self, ack: ControlMessage) {
        let ControlMessage::FileAck { id, offset } = ack else {
            return;
        };
        for queued in self.control.iter_mut() {
            if let ControlMessage::FileAck {
                id: queued_id,
                offset: queued_offset,
            } = queued
            {
                if *queued_id == id {
                    *queued_offset = offset;
                    return;
                }
            }
        }
        self.control.push_back(ack);
    }

    /// The next chunk to send on `file`, read into `out`, taking transfers in turn; `false` when
    /// no transfer has window left. A read error ends that transfer (the `file_error` is queued)
    /// and the next one is tried.
    pub fn poll_file(&mut self, out: &mut Vec<u8>) -> bool {
        let ids: Vec<u32> = self
            .outgoing
            .range(self.cursor..)
            .chain(self.outgoing.range(..self.cursor))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let Some(outgoing) = self.outgoing.get_mut(&id) else {
                continue;
            };
            match outgoing.sender.poll_chunk(outgoing.source.as_mut(), out) {
                Ok(true) => {
                    self.cursor = id.wrapping_add(1);
                    return true;
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(id, %error, "cannot read a file being sent");
                    self.fail(Direction::Outgoing, id, &error);
                }
            }
        }
        false
    }

    /// The next event for the user.
    pub fn poll_event(&mut self) -> Option<TransferEvent> {
        self.events.pop_front()
    }

    /// Bytes, rate and time left of a live transfer.
    pub fn progress(&self, direction: Direction, id: u32, now: Instant) -> Option<Progress> {
        match direction {
            Direction::Outgoing => self.outgoing.get(&id).map(|o| o.sender.progress(now)),
            Direction::Incoming => self.incoming.get(&id).map(|i| i.receiver.progress(now)),
        }
    }

    /// Live transfers: direction, id, the offer.
    pub fn live(&self) -> impl Iterator<Item = (Direction, &Offer)> {
        self.outgoing
            .values()
            .map(|o| (Direction::Outgoing, o.sender.offer()))
            .chain(
                self.incoming
                    .values()
                    .map(|i| (Direction::Incoming, i.receiver.offer())),
            )
    }

    /// The session is gone without the transfers ending: incoming part files are fsynced and
    /// kept for a resume; nothing is queued. Gives how many parts were kept.
    pub fn close(&mut self) -> usize {
        let mut kept = 0;
        for (id, incoming) in std::mem::take(&mut self.incoming) {
            if let Some(part) = incoming.part {
                match part.suspend() {
                    Ok(durable) => {
                        tracing::info!(id, durable, "part file kept for a resume");
                        kept += 1;
                    }
                    Err(error) => tracing::warn!(id, %error, "part file not kept"),
                }
            }
        }
        self.outgoing.clear();
        kept
    }

    fn handle_offer(&mut self, offer: Offer, now: Instant) -> Result<(), FileError> {
        let id = offer.id;
        if self.incoming.contains_key(&id) {
            // The sender lost track of its own numbering: neither transfer can be trusted.
            let error = FileError::DuplicateId { id };
            self.fail(Direction::Incoming, id, &error);
            return Err(error);
        }
        let safe_name = crate::name::safe_name(&offer.name);
        let same_file = self.incoming.values().find(|i| {
            let other = i.receiver.offer();
            other.size == offer.size
                && other.sha256 == offer.sha256
                && crate::name::safe_name(&other.name) == safe_name
        });
        let mut receiver = Receiver::new(offer.clone(), now);
        let refusal = if let Some(other) = same_file {
            Some(FileError::SameFileInFlight {
                id,
                other: other.receiver.id(),
            })
        } else if self.incoming.len() >= self.limits.max_incoming {
            Some(FileError::TooMany {
                limit: self.limits.max_incoming,
            })
        } else {
            None
        };
        if let Some(error) = refusal {
            if let Some(message) = receiver.fail(&error) {
                self.control.push_back(message);
            }
            return Err(error);
        }
        self.incoming.insert(
            id,
            Incoming {
                receiver,
                part: None,
            },
        );
        self.events
            .push_back(TransferEvent::Offered { offer, safe_name });
        Ok(())
    }

    /// Runs `f` on outgoing transfer `id`; a refusal fails the transfer.
    fn on_sender(
        &mut self,
        id: u32,
        f: impl FnOnce(&mut Sender) -> Result<(), FileError>,
    ) -> Result<(), FileError> {
        let Some(outgoing) = self.outgoing.get_mut(&id) else {
            if self.ended.contains(&(Direction::Outgoing, id)) {
                return Ok(());
            }
            return Err(FileError::UnknownTransfer { id });
        };
        if let Err(error) = f(&mut outgoing.sender) {
            self.fail(Direction::Outgoing, id, &error);
            return Err(error);
        }
        Ok(())
    }

    /// A `file_cancel` or `file_error` from the other side: `by` says which of our books it is.
    fn handle_remote_end(&mut self, id: u32, by: FileRole, ending: Ending) {
        let direction = match by {
            // The other side is the receiver: the transfer is one we send.
            FileRole::Receiver => Direction::Outgoing,
            FileRole::Sender => Direction::Incoming,
        };
        let live = match direction {
            Direction::Outgoing => self.outgoing.contains_key(&id),
            Direction::Incoming => self.incoming.contains_key(&id),
        };
        if live {
            self.end(direction, id, Some(ending));
        }
    }

    /// Ends transfer `id` on this side's `error`, queueing the `file_error`.
    fn fail(&mut self, direction: Direction, id: u32, error: &FileError) {
        let message = match direction {
            Direction::Outgoing => self
                .outgoing
                .get_mut(&id)
                .and_then(|o| o.sender.fail(error)),
            Direction::Incoming => self
                .incoming
                .get_mut(&id)
                .and_then(|i| i.receiver.fail(error)),
        };
        let Some(message) = message else { return };
        let by = match direction {
            Direction::Outgoing => FileRole::Sender,
            Direction::Incoming => FileRole::Receiver,
        };
        self.control.push_back(message);
        self.end(
            direction,
            id,
            Some(Ending::Failed {
                by,
                code: error.code(),
                message: error.to_string(),
            }),
        );
    }

    /// Every byte arrived: check the hash, put the file in place, queue `file_done`.
    fn complete_incoming(&mut self, id: u32) {
        let Some(incoming) = self.incoming.get_mut(&id) else {
            return;
        };
        let result = incoming.receiver.verify().and_then(|()| {
            incoming
                .part
                .take()
                .ok_or(FileError::UnexpectedMessage {
                    id,
                    what: "completion",
                    state: "without a part file",
                })?
                .finish()
        });
        match result {
            Ok(path) => {
                if let Ok(done) = incoming.receiver.done() {
                    self.control.push_back(done);
                }
                self.events.push_back(TransferEvent::Completed {
                    direction: Direction::Incoming,
                    id,
                    path: Some(path),
                });
                self.forget(Direction::Incoming, id);
            }
            Err(error) => {
                tracing::warn!(id, %error, "received file not kept");
                self.fail(Direction::Incoming, id, &error);
            }
        }
    }

    /// Removes a transfer that ended, discarding its part file; `ending` becomes the event.
    fn end(&mut self, direction: Direction, id: u32, ending: Option<Ending>) {
        match direction {
            Direction::Outgoing => {
                if let Some(outgoing) = self.outgoing.get_mut(&id) {
                    if let Some(ending) = &ending {
                        outgoing.sender.handle_end(match ending.clone() {
                            Ending::Declined { reason } => SendState::Declined { reason },
                            Ending::Cancelled { by, reason } => SendState::Cancelled { by, reason },
                            Ending::Failed { by, code, message } => {
                                SendState::Failed { by, code, message }
                            }
                        });
                    }
                }
            }
            Direction::Incoming => {
                if let Some(incoming) = self.incoming.get_mut(&id) {
                    if let Some(ending) = &ending {
                        incoming.receiver.handle_end(match ending.clone() {
                            Ending::Declined { .. } => ReceiveState::Declined,
                            Ending::Cancelled { by, reason } => {
                                ReceiveState::Cancelled { by, reason }
                            }
                            Ending::Failed { by, code, message } => {
                                ReceiveState::Failed { by, code, message }
                            }
                        });
                    }
                    if let Some(part) = incoming.part.take() {
                        part.discard();
                    }
                }
            }
        }
        if let Some(ending) = ending {
            self.events.push_back(TransferEvent::Ended {
                direction,
                id,
                ending,
            });
        }
        self.forget(direction, id);
    }

    fn forget(&mut self, direction: Direction, id: u32) {
        let removed = match direction {
            Direction::Outgoing => self.outgoing.remove(&id).is_some(),
            Direction::Incoming => self.incoming.remove(&id).is_some(),
        };
        if removed {
            if self.ended.len() == REMEMBERED_ENDS {
                self.ended.pop_front();
            }
            self.ended.push_back((direction, id));
        }
    }
}
