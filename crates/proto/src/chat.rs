//! Chat lines as both programs build, receive and show them.
//!
//! The wire message is [`ControlMessage::Chat`]; this module is the one place that checks a
//! line before it is sent ([`outgoing`]) and turns a received one into a [`ChatLine`] stamped
//! with the receiver's own clock and the name the receiver knows the other side by (the sender
//! claims neither). [`ChatLine`]'s `Display` is what a terminal prints: `12:34:56 NAME: TEXT`,
//! with control characters removed so a line from the network cannot move the cursor or
//! change the terminal.
//!
//! ```
//! use rtcdesk_proto::chat::{outgoing, ChatLine};
//! let message = outgoing("hello").unwrap();
//! let line = ChatLine::received(&message.encode(), "front desk").unwrap();
//! assert_eq!(line.text, "hello");
//! assert!(outgoing("").is_err());
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::control::{ControlError, ControlMessage, MAX_CHAT_TEXT};

/// Longest name shown with a chat line, in characters.
pub const MAX_SHOWN_NAME: usize = 64;

/// The control message for a line the local user typed: trailing line ends removed, not
/// empty, within [`MAX_CHAT_TEXT`].
pub fn outgoing(text: &str) -> Result<ControlMessage, ControlError> {
    let text = text.trim_end_matches(['\r', '\n']);
    if text.trim().is_empty() {
        return Err(ControlError::Invalid("an empty chat line".into()));
    }
    if text.len() > MAX_CHAT_TEXT {
        return Err(ControlError::OverLimit {
            field: "text",
            len: text.len(),
            max: MAX_CHAT_TEXT,
        });
    }
    Ok(ControlMessage::Chat {
        text: text.to_owned(),
    })
}

/// A chat line from the other side, as the local user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// Who wrote it: the name signaling gave the other side.
    pub from: String,
    /// What was written (untrusted: print it through `Display`, which cleans it).
    pub text: String,
    /// When it arrived, by the local clock.
    pub at: SystemTime,
}

impl ChatLine {
    /// The chat line in a control message's text, or `None` when the text is another kind of
    /// control message or malformed (the caller handles or drops those).
    pub fn received(control_text: &str, from: &str) -> Option<ChatLine> {
        match ControlMessage::parse(control_text) {
            Ok(ControlMessage::Chat { text }) => Some(ChatLine {
                from: from.to_owned(),
                text,
                at: SystemTime::now(),
            }),
            _ => None,
        }
    }

    /// The arrival time as `HH:MM:SS` in UTC (no time zone database is needed, and both
    /// users' transcripts compare).
    pub fn clock(&self) -> String {
        let seconds = self
            .at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
            % 86_400;
        format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        )
    }
}

/// `text` without control characters (tabs become spaces), safe to print on a terminal.
pub fn printable(text: &str, max_chars: usize) -> String {
    text.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

impl fmt::Display for ChatLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.clock(),
            printable(&self.from, MAX_SHOWN_NAME),
            printable(&self.text, MAX_CHAT_TEXT)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_typed_line_loses_its_line_end_and_must_say_something() {
        assert_eq!(
            outgoing("hi there\r\n").unwrap(),
            ControlMessage::Chat {
                text: "hi there".into()
            }
        );
        assert!(outgoing("   \n").is_err());
        assert!(matches!(
            outgoing(&"x".repeat(MAX_CHAT_TEXT + 1)),
            Err(ControlError::OverLimit { .. })
        ));
    }

    #[test]
    fn only_chat_messages_become_lines() {
        let stats = r#"{"type":"stats","fps":1,"rtt_ms":1,"bitrate_kbps":1,"loss":0}"#;
        assert_eq!(ChatLine::received(stats, "p"), None);
        assert_eq!(ChatLine::received("not json", "p"), None);
        let line = ChatLine::received(r#"{"type":"chat","text":"yo"}"#, "p").unwrap();
        assert_eq!((line.from.as_str(), line.text.as_str()), ("p", "yo"));
    }

    #[test]
    fn a_shown_line_has_time_and_name_and_no_terminal_escapes() {
        let line = ChatLine {
            from: "ev\u{1b}[2Jil".into(),
            text: "a\u{1b}]0;owned\u{7}\tb".into(),
            at: UNIX_EPOCH + Duration::from_secs(86_400 * 3 + 13 * 3600 + 5 * 60 + 9),
        };
        assert_eq!(line.to_string(), "13:05:09 ev[2Jil: a]0;owned b");
    }
}
