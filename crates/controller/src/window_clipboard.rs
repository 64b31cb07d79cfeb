//! The controller window's side of the shared clipboard.
//!
//! When the window gains the focus, the user has just been in another application, where they
//! may have copied something: the local clipboard is read then, and new text goes to the
//! puppet. Text the puppet sends (a copy made there) is put on the local clipboard at once, so
//! it can be pasted in any application. [`ClipboardSync`] keeps either side from echoing the
//! other's text back. Nothing is sent while the puppet says this session only watches.

use rtcdesk_clipboard::{ClipboardSync, SystemClipboard};
use winit::event_loop::EventLoopProxy;

use crate::window::UserEvent;
use crate::ClipboardSender;

/// The local clipboard, the sync rules and the way to the puppet.
pub struct WindowClipboard {
    system: SystemClipboard,
    sync: ClipboardSync,
    sender: ClipboardSender,
    proxy: EventLoopProxy<UserEvent>,
    view_only: bool,
}

impl std::fmt::Debug for WindowClipboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowClipboard")
            .field("view_only", &self.view_only)
            .finish_non_exhaustive()
    }
}

impl WindowClipboard {
    /// Shares `system` with the puppet through `sender`; reads come back to the window's loop
    /// through `proxy` as [`UserEvent::LocalClipboard`].
    pub fn new(
        system: SystemClipboard,
        sender: ClipboardSender,
        proxy: EventLoopProxy<UserEvent>,
    ) -> Self {
        Self {
            system,
            sync: ClipboardSync::new(),
            sender,
            proxy,
            view_only: false,
        }
    }

    /// The window gained the focus: read the local clipboard (the answer comes as an event).
    pub fn focused(&self) {
        if self.view_only {
            return;
        }
        let proxy = self.proxy.clone();
        self.system.read(move |text| {
            if let Some(text) = text {
                let _ = proxy.send_event(UserEvent::LocalClipboard(text));
            }
        });
    }

    /// The local clipboard holds `text`: sent to the puppet when it is new.
    pub fn local(&mut self, text: &str) {
        if self.view_only {
            return;
        }
        if let Some(message) = self.sync.local(text) {
            if let Err(error) = self.sender.try_send(&message) {
                tracing::info!(%error, "clipboard text not sent");
            }
        }
    }

    /// The puppet's clipboard holds `text`: put it on the local clipboard.
    pub fn remote(&mut self, text: String) {
        if let Some(text) = self.sync.remote(text) {
            self.system.write(text);
        }
    }

    /// The puppet says whether this session only watches.
    pub fn set_view_only(&mut self, on: bool) {
        self.view_only = on;
    }
}
