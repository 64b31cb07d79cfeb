//! Clipboard text shared between a puppet and its controllers, on the `control` channel as
//! `{"type":"clipboard","text":…}` (crates/proto/FILES.md).
//!
//! - [`ClipboardSync`]: the rules, with no clipboard and no clock: what to send when this
//!   side's clipboard is read, what to write when the other side's text arrives, and never an
//!   echo (text that just came from the other side is not sent back).
//! - [`SystemClipboard`]: this machine's clipboard (arboard; X11 on Linux) on a thread of its
//!   own, since reading it waits for the application that owns it, and on X11 the text this side
//!   copied is served from that thread for as long as it lives.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod sync;
mod system;

pub use sync::ClipboardSync;
pub use system::{ClipboardError, SystemClipboard};

pub use rtcdesk_proto::control::MAX_CLIPBOARD_TEXT;
