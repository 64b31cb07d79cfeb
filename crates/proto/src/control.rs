//! Control messages: chat, file transfer signals, clipboard, keyboard mode and stats on the
//! `control` data channel.
//!
//! JSON text, one object per data-channel message, tagged by `"type"` like signaling. The exact
//! shapes, who sends what and when, are written down in `FILES.md` beside this crate. File bytes
//! never travel here: they go as binary chunks on the `file` channel ([`crate::file`](mod@crate::file)). A transfer
//! is an offer, an accept (which may resume from an offset and names the receiver's window),
//! acknowledgements, and a `file_done` from the receiver once the SHA-256 from the offer matched
//! and the file is in place; either side may cancel, and failures are `file_error` with a code.
//!
//! ```
//! use rtcdesk_proto::control::ControlMessage;
//! let msg = ControlMessage::parse(r#"{"type":"chat","text":"hello"}"#).unwrap();
//! assert_eq!(msg, ControlMessage::Chat { text: "hello".into() });
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest control message, in bytes of JSON text.
pub const MAX_CONTROL_MESSAGE: usize = 192 * 1024;
/// Largest chat message, in bytes of UTF-8.
pub const MAX_CHAT_TEXT: usize = 4 * 1024;
/// Largest clipboard text, in bytes of UTF-8.
pub const MAX_CLIPBOARD_TEXT: usize = 128 * 1024;
/// Longest file name offered, in bytes of UTF-8.
pub const MAX_FILE_NAME: usize = 255;
/// Longest reason or error message in a file message, in bytes of UTF-8.
pub const MAX_FILE_REASON: usize = 1024;
/// Smallest window a receiver may grant: one whole chunk, so a transfer can always move.
pub const MIN_FILE_WINDOW: u64 = crate::file::MAX_CHUNK_DATA as u64;
/// Largest window a receiver may grant; bounds what a sender keeps in flight.
pub const MAX_FILE_WINDOW: u64 = 64 * 1024 * 1024;
/// The window rtcdesk grants: 4 MiB covers 40 MB/s at 100 ms round trip.
pub const DEFAULT_FILE_WINDOW: u64 = 4 * 1024 * 1024;

/// One control message, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// A line of chat between the two users. The receiver shows it with its own arrival time and
    /// the name it knows the other side by from signaling: a name or clock the sender claims here
    /// would be neither trusted nor comparable.
    Chat {
        /// What was written.
        text: String,
    },
    /// Sender → receiver: the sender offers a file; the receiver's user decides.
    FileOffer {
        /// Chosen by the sender, unique among the transfers it offers in this session.
        id: u32,
        /// The file's name only, never a path (the receiver still reduces it to a safe name).
        name: String,
        /// Its length in bytes.
        size: u64,
        /// SHA-256 of the whole file, checked by the receiver before it keeps the file, and with
        /// name and size what identifies the file when a broken transfer is offered again.
        sha256: Sha256,
    },
    /// Receiver → sender: the receiver takes the file, from `offset` (non-zero to resume a
    /// broken transfer), and lets the sender have `window` bytes unacknowledged.
    FileAccept {
        /// The offer's id.
        id: u32,
        /// First byte wanted, at most the offered size.
        offset: u64,
        /// Bytes the sender may send beyond the last acknowledged offset
        /// ([`MIN_FILE_WINDOW`]..=[`MAX_FILE_WINDOW`]).
        window: u64,
    },
    /// Receiver → sender: the receiver's user (or a rule, such as "no room") refuses the offer.
    FileDecline {
        /// The offer's id.
        id: u32,
        /// Why, for the other user.
        reason: String,
    },
    /// Receiver → sender: every byte before `offset` has been written; the sender may send up to
    /// `offset + window`.
    FileAck {
        /// The offer's id.
        id: u32,
        /// Bytes stored so far (never decreasing).
        offset: u64,
    },
    /// Receiver → sender: every byte arrived, the SHA-256 matched and the file is in place. The
    /// transfer is over.
    FileDone {
        /// The offer's id.
        id: u32,
    },
    /// Either side gives up on the transfer on purpose (a user cancelled, the session is
    /// closing). The transfer is over; the receiver deletes its part file.
    FileCancel {
        /// The offer's id.
        id: u32,
        /// Which end of the transfer cancels, so the id (numbered by the sender) is unambiguous
        /// when both sides offer files.
        by: FileRole,
        /// Why, for the other user.
        reason: String,
    },
    /// Either side ends the transfer because something failed. The transfer is over.
    FileError {
        /// The offer's id.
        id: u32,
        /// Which end of the transfer reports the failure.
        by: FileRole,
        /// What failed, for programs.
        code: FileErrorCode,
        /// What failed, for the other user.
        message: String,
    },
    /// The sender's clipboard now holds this text.
    Clipboard {
        /// The text.
        text: String,
    },
    /// Controller → puppet: how to replay key events. Sent when the input channel opens and
    /// whenever the controller's user switches; until then the puppet uses [`KeyboardMode::Map`].
    Keyboard {
        /// The mode the controller's window now works in.
        mode: KeyboardMode,
    },
    /// Puppet → controller: whether this controller may only watch (`on: true`: its input,
    /// clipboard and files are refused, so it should stop sending them and say so). Sent when
    /// the control channel opens and whenever it changes; until one arrives, input is allowed.
    ViewOnly {
        /// `true` while the controller may only watch.
        on: bool,
    },
    /// How the session is doing, as seen by the sender, for the other side's display.
    Stats {
        /// Frames per second delivered.
        fps: f64,
        /// Round-trip time in milliseconds.
        rtt_ms: f64,
        /// Video bitrate in kbit/s.
        bitrate_kbps: f64,
        /// Fraction of packets lost, 0.0..=1.0.
        loss: f64,
    },
}

/// Which end of a file transfer a message comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// The side that offered the file and sends its bytes.
    Sender,
    /// The side the file was offered to.
    Receiver,
}

/// Why a transfer failed, as `file_error`'s `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileErrorCode {
    /// The bytes received do not have the offered SHA-256; the receiver deleted them.
    HashMismatch,
    /// The receiver checked free space before accepting and there is not enough.
    NoSpace,
    /// The receiver's disk filled up while writing.
    DiskFull,
    /// The receiver could not write or keep the file for another reason.
    WriteFailed,
    /// The sender could not read its file (gone, shorter than offered, unreadable).
    ReadFailed,
    /// The other side broke a rule of the protocol (a chunk out of order, past the offered size
    /// or past the window, an unknown id, an acknowledgement of bytes never sent...).
    Protocol,
    /// The receiver already has as many transfers in flight as it allows.
    TooMany,
    /// A code this side does not know (sent by a newer version); encodes as `"other"`.
    #[serde(other)]
    Other,
}

/// How the puppet replays the controller's keyboard. The one definition of the mode: the
/// controller's window input and the puppet's injection policy (rtcdesk-input) use this type too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyboardMode {
    /// By position: the key at the same place is pressed on the puppet, whatever either layout
    /// says. Right for shortcuts and games. Only text an input method commits travels as text.
    #[default]
    Map,
    /// By character: what the controller's user typed appears on the puppet, whatever the
    /// layouts. Keys that type a character travel as text (except in shortcuts); the others
    /// (Enter, arrows, modifiers, the numpad) go by position.
    Translate,
}

/// Why text is not a control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// Longer than [`MAX_CONTROL_MESSAGE`].
    TooLarge(usize),
    /// Not JSON, not one of the types, or a field missing or mistyped (the text says how).
    Invalid(String),
    /// Well formed, but a field is over its limit.
    OverLimit {
        /// The field at fault.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// Well formed, but a number is outside its range.
    OutOfRange {
        /// The field at fault.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The least allowed.
        min: u64,
        /// The most allowed.
        max: u64,
    },
}

impl fmt::Display for ControlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ControlError::TooLarge(len) => write!(
                f,
                "control message of {len} bytes is over the {MAX_CONTROL_MESSAGE}-byte limit"
            ),
            ControlError::Invalid(e) => write!(f, "bad control message: {e}"),
            ControlError::OverLimit { field, len, max } => {
                write!(
                    f,
                    "control field `{field}` is {len} bytes, over the {max}-byte limit"
                )
            }
            ControlError::OutOfRange {
                field,
                value,
                min,
                max,
            } => write!(
                f,
                "control field `{field}` is {value}, outside {min}..={max}"
            ),
        }
    }
}

impl std::error::Error for ControlError {}

impl ControlMessage {
    /// Parses one control message. Total, and every field within its limit on success.
    pub fn parse(text: &str) -> Result<Self, ControlError> {
        if text.len() > MAX_CONTROL_MESSAGE {
            return Err(ControlError::TooLarge(text.len()));
        }
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let message: ControlMessage = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| ControlError::Invalid(e.into_inner().to_string()))?;
        deserializer
            .end()
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        message.check_limits()?;
        Ok(message)
    }

    /// The canonical JSON text. Stats with a non-finite number encode it as `null`, which
    /// [`ControlMessage::parse`] refuses, so send finite figures.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn check_limits(&self) -> Result<(), ControlError> {
        let check = |field, len, max| {
            if len > max {
                Err(ControlError::OverLimit { field, len, max })
            } else {
                Ok(())
            }
        };
        match self {
            ControlMessage::Chat { text } => check("text", text.len(), MAX_CHAT_TEXT),
            ControlMessage::Clipboard { text } => check("text", text.len(), MAX_CLIPBOARD_TEXT),
            ControlMessage::FileOffer { name, .. } => check("name", name.len(), MAX_FILE_NAME),
            ControlMessage::FileDecline { reason, .. }
            | ControlMessage::FileCancel { reason, .. } => {
                check("reason", reason.len(), MAX_FILE_REASON)
            }
            ControlMessage::FileError { message, .. } => {
                check("message", message.len(), MAX_FILE_REASON)
            }
            ControlMessage::FileAccept { window, .. } => {
                if (MIN_FILE_WINDOW..=MAX_FILE_WINDOW).contains(window) {
                    Ok(())
                } else {
                    Err(ControlError::OutOfRange {
                        field: "window",
                        value: *window,
                        min: MIN_FILE_WINDOW,
                        max: MAX_FILE_WINDOW,
                    })
                }
            }
            _ => Ok(()),
        }
    }
}

/// A SHA-256 digest, hex on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256(pub [u8; 32]);

impl Serialize for Sha256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut hex = String::with_capacity(64);
        for byte in self.0 {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 15)]));
        }
        serializer.serialize_str(&hex)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl<'de> Deserialize<'de> for Sha256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let invalid = || serde::de::Error::custom("a SHA-256 is 64 hex digits");
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return Err(invalid());
        }
        let mut digest = [0u8; 32];
        for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
            let high = hex_value(pair[0]).ok_or_else(invalid)?;
            let low = hex_value(pair[1]).ok_or_else(invalid)?;
            *out = high << 4 | low;
        }
        Ok(Sha256(digest))
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_only_has_its_wire_shape() {
        let json = r#"{"type":"view_only","on":true}"#;
        assert_eq!(ControlMessage::ViewOnly { on: true }.encode(), json);
        assert_eq!(
            ControlMessage::parse(json),
            Ok(ControlMessage::ViewOnly { on: true })
        );
        assert!(ControlMessage::parse(r#"{"type":"view_only","on":"yes"}"#).is_err());
        assert!(ControlMessage::parse(r#"{"type":"view_only"}"#).is_err());
    }

    #[test]
    fn file_messages_have_their_wire_shape() {
        // The examples in FILES.md.
        let offer = ControlMessage::FileOffer {
            id: 1,
            name: "a.txt".into(),
            size: 3,
            sha256: Sha256([0xab; 32]),
        };
        let json = offer.encode();
        assert_eq!(
            json,
            format!(
                r#"{{"type":"file_offer","id":1,"name":"a.txt","size":3,"sha256":"{}"}}"#,
                "ab".repeat(32)
            )
        );
        assert_eq!(ControlMessage::parse(&json).unwrap(), offer);
        let cases = [
            (
                ControlMessage::FileAccept {
                    id: 1,
                    offset: 0,
                    window: 4194304,
                },
                r#"{"type":"file_accept","id":1,"offset":0,"window":4194304}"#,
            ),
            (
                ControlMessage::FileDecline {
                    id: 1,
                    reason: "no thanks".into(),
                },
                r#"{"type":"file_decline","id":1,"reason":"no thanks"}"#,
            ),
            (
                ControlMessage::FileAck {
                    id: 1,
                    offset: 1048576,
                },
                r#"{"type":"file_ack","id":1,"offset":1048576}"#,
            ),
            (
                ControlMessage::FileDone { id: 1 },
                r#"{"type":"file_done","id":1}"#,
            ),
            (
                ControlMessage::FileCancel {
                    id: 1,
                    by: FileRole::Sender,
                    reason: "cancelled by the user".into(),
                },
                r#"{"type":"file_cancel","id":1,"by":"sender","reason":"cancelled by the user"}"#,
            ),
            (
                ControlMessage::FileError {
                    id: 1,
                    by: FileRole::Receiver,
                    code: FileErrorCode::DiskFull,
                    message: "disk full after 512 bytes".into(),
                },
                r#"{"type":"file_error","id":1,"by":"receiver","code":"disk_full","message":"disk full after 512 bytes"}"#,
            ),
        ];
        for (message, json) in cases {
            assert_eq!(message.encode(), json);
            assert_eq!(ControlMessage::parse(json), Ok(message));
        }
    }

    #[test]
    fn an_unknown_error_code_parses_as_other() {
        let json = r#"{"type":"file_error","id":1,"by":"sender","code":"cosmic_ray","message":""}"#;
        match ControlMessage::parse(json) {
            Ok(ControlMessage::FileError { code, .. }) => assert_eq!(code, FileErrorCode::Other),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn keyboard_mode_has_its_wire_shape() {
        let message = ControlMessage::Keyboard {
            mode: KeyboardMode::Translate,
        };
        assert_eq!(
            message.encode(),
            r#"{"type":"keyboard","mode":"translate"}"#
        );
        assert_eq!(ControlMessage::parse(&message.encode()), Ok(message));
        assert!(ControlMessage::parse(r#"{"type":"keyboard","mode":"qwerty"}"#).is_err());
    }

    #[test]
    fn each_rejection_says_why() {
        let big = format!(
            r#"{{"type":"chat","text":"{}"}}"#,
            "a".repeat(MAX_CONTROL_MESSAGE)
        );
        assert!(matches!(
            ControlMessage::parse(&big),
            Err(ControlError::TooLarge(_))
        ));
        let chat = format!(
            r#"{{"type":"chat","text":"{}"}}"#,
            "a".repeat(MAX_CHAT_TEXT + 1)
        );
        assert_eq!(
            ControlMessage::parse(&chat),
            Err(ControlError::OverLimit {
                field: "text",
                len: MAX_CHAT_TEXT + 1,
                max: MAX_CHAT_TEXT
            })
        );
        let bad_hash = r#"{"type":"file_offer","id":1,"name":"a","size":1,"sha256":"zz"}"#;
        match ControlMessage::parse(bad_hash) {
            Err(ControlError::Invalid(e)) => assert!(e.contains("64 hex digits"), "{e}"),
            other => panic!("{other:?}"),
        }
        let tiny_window = r#"{"type":"file_accept","id":1,"offset":0,"window":1}"#;
        assert!(matches!(
            ControlMessage::parse(tiny_window),
            Err(ControlError::OutOfRange {
                field: "window",
                ..
            })
        ));
        let no_window = r#"{"type":"file_accept","id":1,"offset":0}"#;
        assert!(matches!(
            ControlMessage::parse(no_window),
            Err(ControlError::Invalid(_))
        ));
        let old_chunk = r#"{"type":"file_chunk","id":1,"offset":0,"data":"YWJj"}"#;
        assert!(matches!(
            ControlMessage::parse(old_chunk),
            Err(ControlError::Invalid(_))
        ));
        let long_reason = ControlMessage::FileCancel {
            id: 1,
            by: FileRole::Receiver,
            reason: "x".repeat(MAX_FILE_REASON + 1),
        };
        assert!(matches!(
            ControlMessage::parse(&long_reason.encode()),
            Err(ControlError::OverLimit {
                field: "reason",
                ..
            })
        ));
        assert!(matches!(
            ControlMessage::parse(r#"{"type":"teleport"}"#),
            Err(ControlError::Invalid(_))
        ));
        assert!(matches!(
            ControlMessage::parse(r#"{"type":"chat","text":"a"} x"#),
            Err(ControlError::Invalid(_))
        ));
    }
}
