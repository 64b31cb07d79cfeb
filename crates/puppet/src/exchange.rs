//! Chat between the puppet's user and its controllers on the `control` channel.
//!
//! The puppet may have several controllers: a line its user writes goes to every session
//! (a broadcast each session task subscribes to when it starts), and a line from a controller
//! comes out as [`crate::PuppetEvent::Chat`], stamped with this machine's clock and the name the
//! controller gave when it asked to connect.

use rtcdesk_proto::chat;
use rtcdesk_proto::control::ControlError;
use tokio::sync::broadcast;

/// Lines waiting for a session task that is behind; older ones are dropped (and logged) past
/// this, since no person types faster.
pub(crate) const CHAT_QUEUE: usize = 64;

/// Why a chat line was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The line is empty or too long.
    #[error("not sent: {0}")]
    Invalid(#[from] ControlError),
    /// No controller is connected (or connecting) to read it.
    #[error("not sent: nobody is connected")]
    NobodyConnected,
}

/// Sends chat lines to every controller; cheap to clone and never waits, so a window's thread
/// or a terminal reader may call it.
#[derive(Debug, Clone)]
pub struct ChatSender {
    lines: broadcast::Sender<String>,
}

impl ChatSender {
    pub(crate) fn new() -> Self {
        Self {
            lines: broadcast::channel(CHAT_QUEUE).0,
        }
    }

    /// A receiver for one session task.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.lines.subscribe()
    }

    /// Sends one line to every session; returns how many sessions it went to.
    pub fn try_send(&self, text: &str) -> Result<usize, ChatError> {
        let message = chat::outgoing(text)?;
        self.lines
            .send(message.encode())
            .map_err(|_| ChatError::NobodyConnected)
    }
}
