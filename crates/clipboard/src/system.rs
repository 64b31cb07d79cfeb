//! This machine's clipboard, on a thread of its own.

use std::sync::mpsc;
use std::thread::JoinHandle;

/// Why the clipboard cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClipboardError {
    /// No clipboard to open (no display, no X server).
    #[error("no clipboard: {0}")]
    Unavailable(String),
}

type Reply = Box<dyn FnOnce(Option<String>) + Send>;

enum Command {
    Read(Reply),
    Write(String),
}

/// The system clipboard. Calls never wait: reads answer through a callback, from the
/// clipboard's thread, so a window's thread or an async task may use it. Dropping it stops the
/// thread; on X11 text this side copied is then no longer served.
pub struct SystemClipboard {
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SystemClipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemClipboard").finish_non_exhaustive()
    }
}

impl SystemClipboard {
    /// Opens the clipboard (on X11, of the display in `DISPLAY`) on its own thread.
    pub fn open() -> Result<Self, ClipboardError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (commands, inbox) = mpsc::channel::<Command>();
        let thread = std::thread::Builder::new()
            .name("rtcdesk-clipboard".into())
            .spawn(move || {
                let mut clipboard = match arboard::Clipboard::new() {
                    Ok(clipboard) => {
                        let _ = ready_tx.send(Ok(()));
                        clipboard
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.to_string()));
                        return;
                    }
                };
                for command in inbox {
                    match command {
                        Command::Read(reply) => reply(match clipboard.get_text() {
                            Ok(text) => Some(text),
                            Err(arboard::Error::ContentNotAvailable) => None,
                            Err(error) => {
                                tracing::debug!(%error, "clipboard not read");
                                None
                            }
                        }),
                        Command::Write(text) => {
                            if let Err(error) = clipboard.set_text(text) {
                                tracing::warn!(%error, "clipboard not written");
                            }
                        }
                    }
                }
            })
            .map_err(|e| ClipboardError::Unavailable(e.to_string()))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                commands: Some(commands),
                thread: Some(thread),
            }),
            Ok(Err(reason)) => {
                let _ = thread.join();
                Err(ClipboardError::Unavailable(reason))
            }
            Err(_) => {
                let _ = thread.join();
                Err(ClipboardError::Unavailable(
                    "the clipboard thread failed".into(),
                ))
            }
        }
    }

    /// Reads the clipboard's text; `reply` gets it (`None`: empty, not text, or unreadable),
    /// on the clipboard's thread.
    pub fn read(&self, reply: impl FnOnce(Option<String>) + Send + 'static) {
        if let Some(commands) = &self.commands {
            if let Err(mpsc::SendError(Command::Read(reply))) =
                commands.send(Command::Read(Box::new(reply)))
            {
                reply(None);
            }
        }
    }

    /// Puts `text` on the clipboard, as if this side's user had copied it.
    pub fn write(&self, text: String) {
        if let Some(commands) = &self.commands {
            let _ = commands.send(Command::Write(text));
        }
    }
}

impl Drop for SystemClipboard {
    fn drop(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
