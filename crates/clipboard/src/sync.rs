//! When clipboard text crosses the session, and when it must not.

use rtcdesk_proto::control::{ControlMessage, MAX_CLIPBOARD_TEXT};

/// One side's view of the shared clipboard: the last text both sides are known to hold.
///
/// Feed it this side's clipboard whenever it is read ([`ClipboardSync::local`]) and the other
/// side's `clipboard` messages ([`ClipboardSync::remote`]); it says what to send and what to
/// write. Text equal to the last shared text goes nowhere, so a text that arrived is never sent
/// back, and reading an unchanged clipboard again sends nothing.
#[derive(Debug, Default, Clone)]
pub struct ClipboardSync {
    shared: Option<String>,
}

impl ClipboardSync {
    /// No text shared yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// This side's clipboard holds `text`: the message to send, if it is news. Empty text and
    /// text over [`MAX_CLIPBOARD_TEXT`] bytes are not sent (the latter is logged).
    pub fn local(&mut self, text: &str) -> Option<ControlMessage> {
        if text.is_empty() || self.shared.as_deref() == Some(text) {
            return None;
        }
        if text.len() > MAX_CLIPBOARD_TEXT {
            tracing::info!(
                bytes = text.len(),
                limit = MAX_CLIPBOARD_TEXT,
                "clipboard text too large to share"
            );
            return None;
        }
        self.shared = Some(text.to_owned());
        Some(ControlMessage::Clipboard {
            text: text.to_owned(),
        })
    }

    /// The other side's clipboard now holds `text`: the text to write into this side's
    /// clipboard, if it differs from what is shared.
    pub fn remote(&mut self, text: String) -> Option<String> {
        if text.is_empty() || text.len() > MAX_CLIPBOARD_TEXT {
            return None;
        }
        if self.shared.as_deref() == Some(text.as_str()) {
            return None;
        }
        self.shared = Some(text.clone());
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(message: Option<ControlMessage>) -> Option<String> {
        match message {
            Some(ControlMessage::Clipboard { text }) => Some(text),
            Some(other) => panic!("not a clipboard message: {other:?}"),
            None => None,
        }
    }

    #[test]
    fn a_new_copy_is_sent_once() {
        let mut sync = ClipboardSync::new();
        assert_eq!(text_of(sync.local("hello")), Some("hello".into()));
        assert_eq!(
            text_of(sync.local("hello")),
            None,
            "unchanged: nothing to send"
        );
        assert_eq!(text_of(sync.local("world")), Some("world".into()));
        assert_eq!(
            text_of(sync.local("")),
            None,
            "an empty clipboard is not news"
        );
    }

    #[test]
    fn text_from_the_other_side_is_written_and_never_echoed_back() {
        let mut sync = ClipboardSync::new();
        assert_eq!(sync.remote("from afar".into()), Some("from afar".into()));
        // Reading the clipboard we just wrote finds that text: it must not go back.
        assert_eq!(text_of(sync.local("from afar")), None);
        assert_eq!(sync.remote("from afar".into()), None, "already there");
        // A later local copy still goes.
        assert_eq!(text_of(sync.local("mine")), Some("mine".into()));
        // And the other side's earlier text is news again.
        assert_eq!(sync.remote("from afar".into()), Some("from afar".into()));
    }

    #[test]
    fn oversized_text_goes_nowhere() {
        let mut sync = ClipboardSync::new();
        let big = "x".repeat(MAX_CLIPBOARD_TEXT + 1);
        assert_eq!(text_of(sync.local(&big)), None);
        assert_eq!(sync.remote(big), None);
        let largest = "y".repeat(MAX_CLIPBOARD_TEXT);
        assert!(text_of(sync.local(&largest)).is_some());
    }
}
