//! rtcdesk's wire formats, with no I/O: what the puppet, the controller and the signaling server
//! say to each other.
//!
//! - [`signal`]: signaling protocol v1, JSON over WebSocket (pairing, consent, SDP and candidate
//!   relay, rooms). Every message, rule and limit is in `SIGNALING.md`.
//! - [`input`]: input protocol v1, one binary event per data-channel message (pointer, buttons,
//!   wheel, keys by W3C `code`, text). Its byte layout is in `INPUT.md`.
//! - [`control`]: chat, file transfer signals, clipboard and stats on the control data channel
//!   (JSON). The file messages are documented in `FILES.md`.
//! - [`file`](mod@file): file bytes, one binary chunk per message on the `file` data channel. Its byte
//!   layout is in `FILES.md`.
//!
//! Every parser here is total: any input yields a value or an error that says what was wrong,
//! never a panic and never an allocation out of proportion to the (bounded) input. Each has a
//! fuzz target in `fuzz/`.
//!
//! ```
//! use rtcdesk_proto::signal::{Register, SignalMessage};
//! match SignalMessage::parse(r#"{"type":"register","name":"front desk"}"#) {
//!     Ok(SignalMessage::Register(Register { name, .. })) => assert_eq!(name, "front desk"),
//!     other => panic!("{other:?}"),
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod av1;
pub mod chat;
pub mod control;
pub mod file;
pub mod input;
mod keys;
pub mod signal;

pub use control::ControlMessage;
pub use input::{InputEvent, InputMessage, KeyCode};
pub use signal::{ControlCode, SessionId, SignalMessage};
