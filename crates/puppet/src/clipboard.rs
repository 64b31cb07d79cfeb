//! The puppet's clipboard, shared with its controllers.
//!
//! One task owns the system clipboard and the sync rules ([`ClipboardSync`]): it reads the
//! clipboard every [`POLL`] (X11 gives no change notice without an extension) and sends a
//! changed text to every session that may control; text a controller sends is written, and is
//! then not sent back. What was on the clipboard before anyone connected is never sent: only
//! changes made during a session go.

use std::time::Duration;

use rtcdesk_clipboard::{ClipboardSync, SystemClipboard};
use tokio::sync::{broadcast, mpsc};

/// How often the puppet looks at its clipboard.
pub(crate) const POLL: Duration = Duration::from_millis(500);

/// Texts waiting for a session task that is behind.
const QUEUE: usize = 8;

/// The clipboard task's two ends, cloned into every session.
#[derive(Debug, Clone)]
pub(crate) struct ClipboardShare {
    /// Encoded `clipboard` messages for every session.
    outgoing: broadcast::Sender<String>,
    /// Texts controllers sent, to write.
    incoming: mpsc::Sender<String>,
}

impl ClipboardShare {
    /// Opens the system clipboard and starts the task; `None` (logged) when there is no
    /// clipboard to open, such as without a display.
    pub(crate) fn start() -> Option<Self> {
        let system = match SystemClipboard::open() {
            Ok(system) => system,
            // Without a display (a synthetic desktop on a server) there is no clipboard to
            // share, which is no news.
            Err(error) if std::env::var_os("DISPLAY").is_none() => {
                tracing::info!(%error, "no display: the clipboard is not shared");
                return None;
            }
            Err(error) => {
                tracing::warn!(%error, "the clipboard is not shared");
                return None;
            }
        };
        let (outgoing, _) = broadcast::channel(QUEUE);
        let (incoming, received) = mpsc::channel(QUEUE);
        tokio::spawn(run(system, outgoing.clone(), received));
        Some(Self { outgoing, incoming })
    }

    /// A receiver of the puppet's clipboard changes, for one session.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<String> {
        self.outgoing.subscribe()
    }

    /// A controller's clipboard text, to put on the puppet's clipboard.
    pub(crate) fn received(&self, text: String) {
        if let Err(error) = self.incoming.try_send(text) {
            tracing::debug!(%error, "clipboard text dropped");
        }
    }
}

async fn run(
    system: SystemClipboard,
    outgoing: broadcast::Sender<String>,
    mut received: mpsc::Receiver<String>,
) {
    let mut sync = ClipboardSync::new();
    let mut poll = tokio::time::interval(POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (read_tx, mut reads) = mpsc::channel::<Option<String>>(1);
    let mut reading = false;
    loop {
        tokio::select! {
            _ = poll.tick(), if !reading => {
                reading = true;
                let reply = read_tx.clone();
                system.read(move |text| {
                    let _ = reply.try_send(text);
                });
            }
            Some(text) = reads.recv() => {
                reading = false;
                if let Some(message) = text.and_then(|text| sync.local(&text)) {
                    // No receiver (nobody connected) is fine: the change is not news later.
                    let _ = outgoing.send(message.encode());
                }
            }
            text = received.recv() => match text {
                Some(text) => {
                    if let Some(text) = sync.remote(text) {
                        system.write(text);
                    }
                }
                None => break,
            },
        }
    }
    // Joining the clipboard's thread may wait for a read in progress: not on a worker.
    let _ = tokio::task::spawn_blocking(move || drop(system)).await;
}
