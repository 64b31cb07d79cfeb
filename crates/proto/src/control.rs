//! Control messages: chat, file transfer, clipboard and stats on the `control` data channel.
//!
//! JSON text, one object per data-channel message, tagged by `"type"` like signaling. File bytes
//! travel base64-encoded in [`ControlMessage::FileChunk`]; a transfer is an offer, an accept (which
//! may resume from an offset), chunks each acknowledged, and a done that carries nothing new: the
//! receiver checks the SHA-256 from the offer before keeping the file.
//!
//! ```
//! use rtcdesk_proto::control::ControlMessage;
//! let msg = ControlMessage::parse(r#"{"type":"chat","text":"hello"}"#).unwrap();
//! assert_eq!(msg, ControlMessage::Chat { text: "hello".into() });
//! ```

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest control message, in bytes of JSON text.
pub const MAX_CONTROL_MESSAGE: usize = 192 * 1024;
/// Largest chat message, in bytes of UTF-8.
pub const MAX_CHAT_TEXT: usize = 4 * 1024;
/// Largest clipboard text, in bytes of UTF-8.
pub const MAX_CLIPBOARD_TEXT: usize = 128 * 1024;
/// Largest file chunk, in bytes before base64: small enough to interleave with input.
pub const MAX_FILE_CHUNK: usize = 16 * 1024;
/// Longest file name offered, in bytes of UTF-8.
pub const MAX_FILE_NAME: usize = 255;

/// One control message, in either direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlMessage {
    /// A line of chat between the two users.
    Chat {
        /// What was written.
        text: String,
    },
    /// The sender offers a file; the receiver's user decides.
    FileOffer {
        /// Chosen by the sender, unique among its transfers in this session.
        id: u32,
        /// The file's name only, never a path (the receiver still checks).
        name: String,
        /// Its length in bytes.
        size: u64,
        /// SHA-256 of the whole file, checked by the receiver before it keeps the file.
        sha256: Sha256,
    },
    /// The receiver takes the file, from `offset` (non-zero to resume a broken transfer).
    FileAccept {
        /// The offer's id.
        id: u32,
        /// First byte wanted.
        offset: u64,
    },
    /// A piece of the file.
    FileChunk {
        /// The offer's id.
        id: u32,
        /// Where these bytes go in the file.
        offset: u64,
        /// The bytes (base64 on the wire), at most [`MAX_FILE_CHUNK`].
        data: Bytes,
    },
    /// The receiver has stored every byte before `offset`; the sender may send more.
    FileAck {
        /// The offer's id.
        id: u32,
        /// Bytes stored so far.
        offset: u64,
    },
    /// Either side gives up on the transfer (declined, disk full, cancelled by a user).
    FileCancel {
        /// The offer's id.
        id: u32,
        /// Why, for the other user.
        reason: String,
    },
    /// The sender has sent every byte.
    FileDone {
        /// The offer's id.
        id: u32,
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
            ControlMessage::FileChunk { data, .. } => check("data", data.0.len(), MAX_FILE_CHUNK),
            ControlMessage::FileCancel { reason, .. } => {
                check("reason", reason.len(), MAX_CHAT_TEXT)
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

/// Raw bytes, base64 (standard alphabet, padded) on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_messages_have_their_wire_shape() {
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
        let chunk = ControlMessage::FileChunk {
            id: 1,
            offset: 0,
            data: Bytes(b"abc".to_vec()),
        };
        assert_eq!(
            chunk.encode(),
            r#"{"type":"file_chunk","id":1,"offset":0,"data":"YWJj"}"#
        );
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
        let bad_b64 = r#"{"type":"file_chunk","id":1,"offset":0,"data":"!!"}"#;
        match ControlMessage::parse(bad_b64) {
            Err(ControlError::Invalid(e)) => assert!(e.contains("Invalid"), "{e}"),
            other => panic!("{other:?}"),
        }
        let chunk = ControlMessage::FileChunk {
            id: 1,
            offset: 0,
            data: Bytes(vec![0; MAX_FILE_CHUNK + 1]),
        };
        assert!(matches!(
            ControlMessage::parse(&chunk.encode()),
            Err(ControlError::OverLimit { field: "data", .. })
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
