//! Files between the puppet's user and its controllers: sending a file (to every connected
//! controller, or to one), and answering a controller's offer.
//!
//! Requests go to the puppet's main loop, which hands them to the session tasks; a file is
//! opened and hashed off those tasks. What happens next comes out as
//! [`crate::PuppetEvent::FileOffered`], [`crate::PuppetEvent::FileNotSent`],
//! [`crate::PuppetEvent::File`] and [`crate::PuppetEvent::FileProgress`].

use std::path::PathBuf;

use rtcdesk_proto::signal::SessionId;
use tokio::sync::mpsc;

/// Requests waiting for the main loop; past this a caller hears [`FilesError::Busy`].
pub(crate) const FILE_REQUESTS: usize = 64;

/// What the puppet's user asks of file transfers.
#[derive(Debug)]
pub(crate) enum FileRequest {
    /// Offer the file at `path` to one session's controller, or to every connected one.
    Send {
        to: Option<SessionId>,
        path: PathBuf,
    },
    /// The user's answer to a controller's offer.
    Answer {
        session: SessionId,
        id: u32,
        accept: bool,
    },
    /// Stop a transfer under way (or take back an offer) with `session`'s controller.
    Cancel {
        session: SessionId,
        direction: rtcdesk_files::Direction,
        id: u32,
    },
}

/// Why a file request was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilesError {
    /// Too many requests are waiting; try again.
    #[error("too many file requests at once; try again")]
    Busy,
    /// The puppet has stopped.
    #[error("the puppet has stopped")]
    Stopped,
}

/// Sends files to controllers and answers their offers; cheap to clone and never waits, so a
/// window's thread or a terminal reader may call it.
#[derive(Debug, Clone)]
pub struct PuppetFiles {
    requests: mpsc::Sender<FileRequest>,
}

impl PuppetFiles {
    pub(crate) fn new() -> (Self, mpsc::Receiver<FileRequest>) {
        let (requests, receiver) = mpsc::channel(FILE_REQUESTS);
        (Self { requests }, receiver)
    }

    fn push(&self, request: FileRequest) -> Result<(), FilesError> {
        self.requests
            .try_send(request)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => FilesError::Busy,
                mpsc::error::TrySendError::Closed(_) => FilesError::Stopped,
            })
    }

    /// Offers the file at `path` to every connected controller (each is asked to accept).
    pub fn send(&self, path: impl Into<PathBuf>) -> Result<(), FilesError> {
        self.push(FileRequest::Send {
            to: None,
            path: path.into(),
        })
    }

    /// Offers the file at `path` to one session's controller.
    pub fn send_to(&self, session: SessionId, path: impl Into<PathBuf>) -> Result<(), FilesError> {
        self.push(FileRequest::Send {
            to: Some(session),
            path: path.into(),
        })
    }

    /// Answers offer `id` from `session`'s controller (see [`crate::PuppetEvent::File`] with
    /// an `Offered` event): accepted files land in the download folder.
    pub fn answer(&self, session: SessionId, id: u32, accept: bool) -> Result<(), FilesError> {
        self.push(FileRequest::Answer {
            session,
            id,
            accept,
        })
    }

    /// Stops transfer `id` with `session`'s controller, in `direction` (ids are per
    /// direction), or takes back this side's offer; the controller is told.
    pub fn cancel(
        &self,
        session: SessionId,
        direction: rtcdesk_files::Direction,
        id: u32,
    ) -> Result<(), FilesError> {
        self.push(FileRequest::Cancel {
            session,
            direction,
            id,
        })
    }
}
