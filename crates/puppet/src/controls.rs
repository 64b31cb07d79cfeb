//! The puppet's user's say over sessions, from a window or any thread: answer a controller
//! that asks ([`crate::AcceptPolicy::Application`]), end a session, let a session only watch
//! or give it control, and get a new code.
//!
//! Requests go to the puppet's main loop, which puts them to the [`crate::core::SessionBook`];
//! what follows comes out as [`crate::PuppetEvent`]s (`SessionStarted`, `Declined`,
//! `SessionEnded`, `RoleChanged`, `Registered`).

use std::sync::Arc;

use rtcdesk_proto::signal::SessionId;
use tokio::sync::mpsc;

use crate::{Decision, SessionInfo, Shared};

/// Requests waiting for the main loop; past this a caller hears [`ControlError::Busy`].
pub(crate) const USER_REQUESTS: usize = 64;

/// What the puppet's user asks of the sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserRequest {
    /// End this session (or refuse it while it is still asking).
    Disconnect(SessionId),
    /// Let it only watch (`true`) or give it control (`false`).
    SetViewOnly(SessionId, bool),
    /// Register again for a fresh code.
    NewCode,
}

/// Why a request was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// Too many requests are waiting; try again.
    #[error("too many requests at once; try again")]
    Busy,
    /// The puppet has stopped.
    #[error("the puppet has stopped")]
    Stopped,
}

fn refused<T>(error: mpsc::error::TrySendError<T>) -> ControlError {
    match error {
        mpsc::error::TrySendError::Full(_) => ControlError::Busy,
        mpsc::error::TrySendError::Closed(_) => ControlError::Stopped,
    }
}

/// The puppet's user's handle on its sessions; cheap to clone and never waits, so a window's
/// thread may call it.
#[derive(Debug, Clone)]
pub struct PuppetControls {
    decisions: mpsc::Sender<(SessionId, Decision)>,
    requests: mpsc::Sender<UserRequest>,
    shared: Arc<Shared>,
}

impl PuppetControls {
    pub(crate) fn new(
        decisions: mpsc::Sender<(SessionId, Decision)>,
        shared: Arc<Shared>,
    ) -> (Self, mpsc::Receiver<UserRequest>) {
        let (requests, receiver) = mpsc::channel(USER_REQUESTS);
        (
            Self {
                decisions,
                requests,
                shared,
            },
            receiver,
        )
    }

    /// Answers the controller asking on `session` ([`crate::PuppetEvent::Incoming`]). An
    /// answer after the request's deadline, or after it left, changes nothing.
    pub fn decide(&self, session: SessionId, decision: Decision) -> Result<(), ControlError> {
        self.decisions
            .try_send((session, decision))
            .map_err(refused)
    }

    /// Ends `session`: its controller is told and everything it held is released; a
    /// controller still asking is refused.
    pub fn disconnect(&self, session: SessionId) -> Result<(), ControlError> {
        self.requests
            .try_send(UserRequest::Disconnect(session))
            .map_err(refused)
    }

    /// Lets `session` only watch, or gives it control (taking control from the session that
    /// had it: one controls at a time). Ignored under `--view-only`, where nobody controls.
    pub fn set_view_only(&self, session: SessionId, view_only: bool) -> Result<(), ControlError> {
        self.requests
            .try_send(UserRequest::SetViewOnly(session, view_only))
            .map_err(refused)
    }

    /// Registers again for a fresh code, so the one shown until now stops working at once
    /// (running sessions go on). A [`crate::PuppetEvent::Registered`] brings the new code.
    pub fn new_code(&self) -> Result<(), ControlError> {
        self.requests
            .try_send(UserRequest::NewCode)
            .map_err(refused)
    }

    /// The controllers asking, connecting or connected now.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
