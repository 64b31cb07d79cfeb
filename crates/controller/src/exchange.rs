//! Chat with the puppet's user on the `control` channel.
//!
//! Received lines come out of the session as [`crate::ControllerEvent::Chat`], stamped with this
//! machine's clock and the puppet's name from signaling. Lines go out through a [`ChatSender`],
//! cheap to clone and safe on a window's thread: it never waits, and says
//! [`ChatError::Peer`]`(Full)` when the network is stalled instead.

use rtcdesk_peer::{Channel, Message, PeerHandle};
use rtcdesk_proto::chat;
use rtcdesk_proto::control::ControlError;

/// Why a chat line was not sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChatError {
    /// The line is empty or too long: nothing was sent.
    #[error("not sent: {0}")]
    Invalid(#[from] ControlError),
    /// The session cannot take it: `Full` while the network is stalled (try again), `Closed`
    /// once the session is over.
    #[error("not sent: {0}")]
    Peer(#[from] rtcdesk_peer::Error),
}

/// Sends chat lines to the puppet's user; clone it for each thread that needs it.
#[derive(Debug, Clone)]
pub struct ChatSender {
    peer: PeerHandle,
}

impl ChatSender {
    pub(crate) fn new(peer: PeerHandle) -> Self {
        Self { peer }
    }

    /// Queues one line without waiting; lines queued before the control channel opens go out
    /// when it does, in order.
    pub fn try_send(&self, text: &str) -> Result<(), ChatError> {
        let message = chat::outgoing(text)?;
        self.peer
            .try_send_data(Channel::Control, Message::Text(message.encode()))?;
        Ok(())
    }
}

/// Sends this side's clipboard text to the puppet (a `clipboard` message, as
/// [`rtcdesk_clipboard::ClipboardSync::local`] makes it); safe on a window's thread.
#[derive(Debug, Clone)]
pub struct ClipboardSender {
    peer: PeerHandle,
}

impl ClipboardSender {
    pub(crate) fn new(peer: PeerHandle) -> Self {
        Self { peer }
    }

    /// Queues the message without waiting (`Full` while the network is stalled).
    pub fn try_send(
        &self,
        message: &rtcdesk_proto::control::ControlMessage,
    ) -> Result<(), rtcdesk_peer::Error> {
        self.peer
            .try_send_data(Channel::Control, Message::Text(message.encode()))
    }
}
