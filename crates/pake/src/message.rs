//! The verification messages, as the opaque text the signaling server relays (`PAKE.md`).
//!
//! Each is base64 (RFC 4648 § 4, with padding) of: a version byte (1), a kind byte, and the
//! kind's fixed-size payload. Parsing is total: any other text is a [`BadPakeMessage`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Bytes of a SPAKE2 message (Ed25519 group): a side byte (`A` or `B`) and a compressed point.
pub const SPAKE_LEN: usize = 33;
/// Bytes of a key confirmation or fingerprints MAC (HMAC-SHA256).
pub const CONFIRM_LEN: usize = 32;
/// The longest text accepted, well above the largest message (92 characters).
pub const MAX_TEXT_LEN: usize = 256;

const VERSION: u8 = 1;
const KIND_START: u8 = 1;
const KIND_REPLY: u8 = 2;
const KIND_CONFIRM: u8 = 3;
const KIND_FINGERPRINTS: u8 = 4;

/// One step of verified pairing; see the crate docs for who sends which when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PakeMessage {
    /// Controller → puppet, in `connect.pake`: SPAKE2 message A.
    Start {
        /// The SPAKE2 message.
        spake: [u8; SPAKE_LEN],
    },
    /// Puppet → controller: SPAKE2 message B and the puppet's key confirmation.
    Reply {
        /// The SPAKE2 message.
        spake: [u8; SPAKE_LEN],
        /// HMAC over the puppet's confirmation label and the session id.
        confirm: [u8; CONFIRM_LEN],
    },
    /// Controller → puppet: the controller's key confirmation.
    Confirm {
        /// HMAC over the controller's confirmation label and the session id.
        confirm: [u8; CONFIRM_LEN],
    },
    /// Either end, once DTLS is up: a MAC over both negotiated DTLS fingerprints.
    Fingerprints {
        /// HMAC over the sender's fingerprints label, the session id and both fingerprints.
        mac: [u8; CONFIRM_LEN],
    },
}

/// Why text is not a verification message; says which rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPakeMessage {
    /// Longer than [`MAX_TEXT_LEN`].
    #[error("longer than {MAX_TEXT_LEN} characters")]
    TooLong,
    /// Not base64 with padding.
    #[error("not base64")]
    NotBase64,
    /// No version and kind bytes.
    #[error("too short")]
    TooShort,
    /// A version this side does not speak.
    #[error("version {0}, this side speaks version 1")]
    Version(u8),
    /// A kind byte with no meaning.
    #[error("unknown kind {0}")]
    UnknownKind(u8),
    /// The payload is not the kind's size.
    #[error("a `{kind}` payload is {expected} bytes, not {got}")]
    Length {
        /// The kind's name.
        kind: &'static str,
        /// Its payload size.
        expected: usize,
        /// The size that came.
        got: usize,
    },
}

impl PakeMessage {
    /// The kind's name as the docs and errors write it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            PakeMessage::Start { .. } => "start",
            PakeMessage::Reply { .. } => "reply",
            PakeMessage::Confirm { .. } => "confirm",
            PakeMessage::Fingerprints { .. } => "fingerprints",
        }
    }

    /// The text to put in `connect.pake` or `pake.data`.
    pub fn encode(&self) -> String {
        let mut bytes = vec![VERSION];
        match self {
            PakeMessage::Start { spake } => {
                bytes.push(KIND_START);
                bytes.extend_from_slice(spake);
            }
            PakeMessage::Reply { spake, confirm } => {
                bytes.push(KIND_REPLY);
                bytes.extend_from_slice(spake);
                bytes.extend_from_slice(confirm);
            }
            PakeMessage::Confirm { confirm } => {
                bytes.push(KIND_CONFIRM);
                bytes.extend_from_slice(confirm);
            }
            PakeMessage::Fingerprints { mac } => {
                bytes.push(KIND_FINGERPRINTS);
                bytes.extend_from_slice(mac);
            }
        }
        STANDARD.encode(bytes)
    }

    /// Parses the text of `connect.pake`, `incoming.pake` or `pake.data`.
    pub fn decode(text: &str) -> Result<Self, BadPakeMessage> {
        if text.len() > MAX_TEXT_LEN {
            return Err(BadPakeMessage::TooLong);
        }
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| BadPakeMessage::NotBase64)?;
        let [version, kind, payload @ ..] = bytes.as_slice() else {
            return Err(BadPakeMessage::TooShort);
        };
        if *version != VERSION {
            return Err(BadPakeMessage::Version(*version));
        }
        let sized = |name: &'static str, expected: usize| {
            if payload.len() == expected {
                Ok(payload)
            } else {
                Err(BadPakeMessage::Length {
                    kind: name,
                    expected,
                    got: payload.len(),
                })
            }
        };
        match *kind {
            KIND_START => Ok(PakeMessage::Start {
                spake: array(sized("start", SPAKE_LEN)?),
            }),
            KIND_REPLY => {
                let payload = sized("reply", SPAKE_LEN + CONFIRM_LEN)?;
                let (spake, confirm) = payload.split_at(SPAKE_LEN);
                Ok(PakeMessage::Reply {
                    spake: array(spake),
                    confirm: array(confirm),
                })
            }
            KIND_CONFIRM => Ok(PakeMessage::Confirm {
                confirm: array(sized("confirm", CONFIRM_LEN)?),
            }),
            KIND_FINGERPRINTS => Ok(PakeMessage::Fingerprints {
                mac: array(sized("fingerprints", CONFIRM_LEN)?),
            }),
            other => Err(BadPakeMessage::UnknownKind(other)),
        }
    }
}

/// A slice whose length was checked, as an array.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}
