//! The file side of one session, as both programs run it: the [`Transfers`] book, the download
//! folder offers are accepted into, a policy that refuses offers this side may not take, and
//! the one chunk held back while the `file` channel is full.
//!
//! The puppet and the controller each keep one per session; their session cores feed it the
//! control and file messages and drain it, so the rules below live in one place:
//! - an offer is refused at once when the session may not push files (`refusal`, e.g. a
//!   view-only controller) or there is no download folder; the user never sees it;
//! - accepting prepares `NAME.part` in the folder (resuming one a broken session left) and
//!   refuses with the reason when that fails (no space, folder gone);
//! - chunks go out only while the channel has room: a chunk the channel refused is kept and
//!   sent first once [`SessionFiles::channel_room`] says it drained, so nothing is dropped and
//!   nothing blocks; at most [`CHUNKS_PER_DRAIN`] chunks come out per drain, so a busy transfer
//!   cannot keep a session task from its other work.

use std::collections::VecDeque;
use std::time::Instant;

use crate::book::{Direction, Limits, TransferEvent, Transfers};
use crate::folder::DownloadFolder;
use crate::progress::Progress;
use crate::send::Source;
use crate::{ControlMessage, FileError, Offer, Sha256};

/// Most file chunks handed out in one drain.
pub const CHUNKS_PER_DRAIN: usize = 64;

/// One session's transfers, folder and channel state. See the module documentation.
#[derive(Debug)]
pub struct SessionFiles {
    transfers: Transfers,
    folder: Option<DownloadFolder>,
    /// Why every offer is refused, when this session may not receive files.
    refusal: Option<String>,
    events: VecDeque<TransferEvent>,
    held_chunk: Option<Vec<u8>>,
    channel_full: bool,
}

impl SessionFiles {
    /// Files for one session: received ones go into `folder` (`None`: every offer is refused,
    /// there is nowhere to put it); `refusal`, when set, refuses every offer with that reason.
    pub fn new(folder: Option<DownloadFolder>, refusal: Option<String>, limits: Limits) -> Self {
        Self {
            transfers: Transfers::new(limits),
            folder,
            refusal,
            events: VecDeque::new(),
            held_chunk: None,
            channel_full: false,
        }
    }

    /// A control message arrived: `Ok(false)` when it is not about files (the caller handles
    /// it); on `Err` it was refused and answered (see [`Transfers::handle_control`]).
    pub fn handle_control(
        &mut self,
        message: &ControlMessage,
        now: Instant,
    ) -> Result<bool, FileError> {
        let result = self.transfers.handle_control(message, now);
        self.collect_events();
        result
    }

    /// Bytes on the `control` channel arrived: file messages are handled here (a refused one
    /// is answered); any other message is given back for the session's core. Text that is not
    /// UTF-8 or not a control message is dropped and logged, never answered, so both programs
    /// treat a hostile peer the same way.
    pub fn handle_control_bytes(&mut self, bytes: &[u8], now: Instant) -> Option<ControlMessage> {
        let Ok(text) = std::str::from_utf8(bytes) else {
            tracing::debug!("dropping a control message that is not UTF-8");
            return None;
        };
        let message = match ControlMessage::parse(text) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(?error, "dropping a malformed control message");
                return None;
            }
        };
        match self.handle_control(&message, now) {
            Ok(true) => None,
            Ok(false) => Some(message),
            Err(error) => {
                tracing::debug!(%error, "file message refused");
                None
            }
        }
    }

    /// A message on the `file` channel arrived.
    pub fn handle_chunk(&mut self, bytes: &[u8], now: Instant) -> Result<(), FileError> {
        let result = self.transfers.handle_file_message(bytes, now);
        self.collect_events();
        result
    }

    /// This side's user accepts offer `id`: its part file is prepared in the download folder,
    /// resuming one a broken session left; a failure refuses the offer with its reason.
    pub fn accept(&mut self, id: u32, now: Instant) -> Result<(), FileError> {
        let offer = self
            .transfers
            .live()
            .find(|(d, o)| *d == Direction::Incoming && o.id == id)
            .map(|(_, o)| o.clone())
            .ok_or(FileError::UnknownTransfer { id })?;
        let folder = self.folder.as_ref().ok_or(FileError::NoDownloadDir)?;
        let result = folder
            .prepare(&offer)
            .and_then(|part| self.transfers.accept(id, part, now));
        if let Err(error) = &result {
            let _ = self.transfers.refuse(id, error);
        }
        self.collect_events();
        result
    }

    /// This side's user declines offer `id`.
    pub fn decline(&mut self, id: u32, reason: &str) -> Result<(), FileError> {
        let result = self.transfers.decline(id, reason);
        self.collect_events();
        result
    }

    /// Refuses every offer from now on with `reason` (`None`: takes offers again), for a
    /// session whose role changed; transfers already under way go on.
    pub fn set_refusal(&mut self, reason: Option<String>) {
        self.refusal = reason;
    }

    /// This side's user cancels a transfer either way.
    pub fn cancel(&mut self, direction: Direction, id: u32, reason: &str) -> Result<(), FileError> {
        let result = self.transfers.cancel(direction, id, reason);
        self.collect_events();
        result
    }

    /// Offers a file (`sha256` from [`crate::hash_source`], computed off the session task).
    /// Gives the transfer's id.
    pub fn send_file(
        &mut self,
        name: &str,
        size: u64,
        sha256: Sha256,
        source: Box<dyn Source + Send>,
        now: Instant,
    ) -> Result<u32, FileError> {
        let result = self.transfers.send_file(name, size, sha256, source, now);
        self.collect_events();
        result
    }

    /// The next control message to send (offers, accepts, acknowledgements, errors).
    pub fn poll_control(&mut self) -> Option<ControlMessage> {
        let message = self.transfers.poll_control();
        self.collect_events();
        message
    }

    /// The next event for this side's user.
    pub fn poll_event(&mut self) -> Option<TransferEvent> {
        self.collect_events();
        self.events.pop_front()
    }

    /// The next chunk for the `file` channel, while it has room; `None` once this drain's share
    /// is used or no transfer has window left.
    pub fn poll_chunk(&mut self, sent_this_drain: usize) -> Option<Vec<u8>> {
        if self.channel_full || sent_this_drain >= CHUNKS_PER_DRAIN {
            return None;
        }
        if let Some(chunk) = self.held_chunk.take() {
            return Some(chunk);
        }
        let mut chunk = Vec::new();
        let produced = self.transfers.poll_file(&mut chunk);
        self.collect_events();
        produced.then_some(chunk)
    }

    /// The `file` channel refused `chunk` (its queue is full): it is sent first once
    /// [`SessionFiles::channel_room`] is called; no more chunks come out until then.
    pub fn channel_full(&mut self, chunk: Vec<u8>) {
        self.held_chunk = Some(chunk);
        self.channel_full = true;
    }

    /// Whether the shell should wait for room on the `file` channel.
    pub fn wants_room(&self) -> bool {
        self.channel_full
    }

    /// The `file` channel has room again.
    pub fn channel_room(&mut self) {
        self.channel_full = false;
    }

    /// Whether any transfer is offered or under way.
    pub fn busy(&self) -> bool {
        self.transfers.live().next().is_some()
    }

    /// Bytes, rate and time left of every live transfer.
    pub fn progress(&self, now: Instant) -> Vec<(Offer, Direction, Progress)> {
        self.transfers
            .live()
            .filter_map(|(direction, offer)| {
                let progress = self.transfers.progress(direction, offer.id, now)?;
                Some((offer.clone(), direction, progress))
            })
            .collect()
    }

    /// The session is gone: incoming part files are kept for a resume. Gives how many
    /// transfers were cut off.
    pub fn close(&mut self) -> usize {
        let cut = self.transfers.close();
        self.collect_events();
        cut
    }

    /// Moves the book's events out, refusing the offers this session may not take.
    fn collect_events(&mut self) {
        while let Some(event) = self.transfers.poll_event() {
            if let TransferEvent::Offered { offer, .. } = &event {
                let refusal = match (&self.refusal, &self.folder) {
                    (Some(reason), _) => Some(reason.clone()),
                    (None, None) => Some("no download folder on this side".to_owned()),
                    (None, Some(_)) => None,
                };
                if let Some(reason) = refusal {
                    tracing::info!(id = offer.id, %reason, "file offer refused");
                    let _ = self.transfers.decline(offer.id, &reason);
                    continue;
                }
            }
            self.events.push_back(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hash_source, SeekSource};

    fn offer_to(files: &mut SessionFiles, now: Instant) -> u32 {
        let mut sender = Transfers::new(Limits::default());
        let bytes = vec![7u8; 100];
        let sha256 =
            hash_source(&mut SeekSource(std::io::Cursor::new(bytes.clone())), 100).expect("hash");
        let id = sender
            .send_file(
                "a.bin",
                100,
                sha256,
                Box::new(SeekSource(std::io::Cursor::new(bytes))),
                now,
            )
            .expect("offer");
        let offer = sender.poll_control().expect("offer message");
        assert!(files.handle_control(&offer, now).expect("handled"));
        id
    }

    #[test]
    fn a_refusing_session_declines_offers_unseen() {
        let now = Instant::now();
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = DownloadFolder::new(dir.path()).expect("folder");
        let mut files =
            SessionFiles::new(Some(folder), Some("view-only".into()), Limits::default());
        let id = offer_to(&mut files, now);
        assert!(files.poll_event().is_none(), "the user is not asked");
        match files.poll_control() {
            Some(ControlMessage::FileDecline {
                id: declined,
                reason,
            }) => {
                assert_eq!(declined, id);
                assert_eq!(reason, "view-only");
            }
            other => panic!("expected a decline, got {other:?}"),
        }
    }

    #[test]
    fn no_folder_declines_and_accept_says_why() {
        let now = Instant::now();
        let mut files = SessionFiles::new(None, None, Limits::default());
        offer_to(&mut files, now);
        assert!(files.poll_event().is_none());
        assert!(matches!(
            files.poll_control(),
            Some(ControlMessage::FileDecline { .. })
        ));
        assert!(!files.busy());
    }

    #[test]
    fn a_refused_chunk_comes_back_first_once_there_is_room() {
        let mut files = SessionFiles::new(None, None, Limits::default());
        files.channel_full(vec![1, 2, 3]);
        assert!(files.wants_room());
        assert_eq!(
            files.poll_chunk(0),
            None,
            "nothing while the channel is full"
        );
        files.channel_room();
        assert_eq!(files.poll_chunk(0), Some(vec![1, 2, 3]));
        assert_eq!(files.poll_chunk(CHUNKS_PER_DRAIN), None);
    }
}
