//! Hand-written STUN and TURN clients: STUN (RFC 8489, which obsoletes RFC 5389) asks a server
//! how this host's UDP socket looks from outside (the server-reflexive address ICE needs); TURN
//! (RFC 8656) gets a relayed address on a server, so peers behind symmetric NATs or UDP-blocking
//! firewalls still reach each other.
//!
//! The cores are sans-IO, in the shape of str0m, with RustCrypto's digests as their only
//! dependency beyond std: [`parse`] turns one datagram into a [`Message`] (a total parser: every
//! input gives a value or an [`Error`]) and [`Message::encode`] turns one back. [`Client`] runs
//! Binding transactions and [`turn::Allocation`] one TURN allocation with its permissions and
//! channels, both driven by the caller's clock: datagrams and `now` go in, [`Transmit`]s,
//! timeouts and events come out. Peers' datagrams come out of
//! [`turn::Allocation::handle_datagram`] unwrapped, and go in through
//! [`turn::Allocation::send_to`]; [`turn::is_turn_traffic`] tells TURN-server traffic from ICE's
//! before str0m sees it. `crates/stun/TURN.md` gives the TURN wire details. With the `tokio`
//! feature, [`net::query_mapped_address`] drives a [`Client`] over a tokio UDP socket, and the
//! `rtcdesk-stun` binary prints this host's mapped address.
//!
//! A Binding transaction:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use rtcdesk_stun::{Client, Event, TransactionConfig};
//!
//! let mut client = Client::new(TransactionConfig::default());
//! let now = Instant::now();
//! let server = "192.0.2.1:3478".parse().unwrap();
//! client.start_binding(now, server).unwrap();
//! while let Some(transmit) = client.poll_transmit() {
//!     // socket.send_to(&transmit.contents, transmit.destination)
//!     # let _ = transmit;
//! }
//! // For each datagram received: client.handle_datagram(source, &bytes) says whether it was ours.
//! // At client.poll_timeout(): client.handle_timeout(now) retransmits or gives up.
//! client.handle_timeout(now + Duration::from_secs(60));
//! # while client.poll_timeout().is_some() { let t = client.poll_timeout().unwrap(); client.handle_timeout(t); }
//! while let Some(event) = client.poll_event() {
//!     match event {
//!         Event::Mapped { mapped, .. } => println!("we are {mapped}"),
//!         Event::Failed { error, .. } => println!("server said {error:?}"),
//!         Event::TimedOut { server, .. } => println!("{server} never answered"),
//!     }
//! }
//! ```
//!
//! A TURN allocation relaying to one peer, in the same run loop:
//!
//! ```
//! use std::time::Instant;
//! use rtcdesk_stun::turn::{Allocation, AllocationConfig, Received, TurnEvent};
//!
//! let server = "192.0.2.1:3478".parse().unwrap();
//! let peer = "198.51.100.7:5000".parse().unwrap();
//! let mut allocation = Allocation::new(AllocationConfig::new(server, "user", "pass")).unwrap();
//! allocation.start_allocate(Instant::now()).unwrap();
//! # let mut received_from_server: Vec<Vec<u8>> = Vec::new();
//! loop {
//!     while let Some(transmit) = allocation.poll_transmit() {
//!         // socket.send_to(&transmit.contents, transmit.destination)
//!         # let _ = transmit;
//!     }
//!     while let Some(event) = allocation.poll_event() {
//!         if let TurnEvent::Allocated { relayed, .. } = event {
//!             // Offer `relayed` as a relay candidate; then relay through it:
//!             allocation.send_to(peer, b"hello", Instant::now()).unwrap();
//!         }
//!     }
//!     for bytes in received_from_server.drain(..) {
//!         if let Received::Data { peer, payload } = allocation.handle_datagram(&bytes, Instant::now()) {
//!             println!("{} bytes from {peer}", payload.len());
//!         }
//!     }
//!     # break;
//!     // Wait for a datagram or allocation.poll_timeout(), then allocation.handle_timeout(now).
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checksum;
mod message;
#[cfg(feature = "tokio")]
pub mod net;
mod transaction;
pub mod turn;

pub use message::{
    attr, looks_like_stun, method, parse, verify_message_integrity,
    verify_message_integrity_sha256, Attribute, Class, ErrorCode, Message, PasswordAlgorithm,
    TransactionId, HEADER_LEN, MAGIC_COOKIE, METHOD_BINDING, PASSWORD_ALGORITHM_MD5,
    PASSWORD_ALGORITHM_SHA256,
};
pub use transaction::{Client, Event, TransactionConfig, Transmit};

/// Everything that can go wrong in this crate: a malformed message (so a caller can log exactly
/// what a server sent), or a transaction that did not produce an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than the 20-byte header.
    #[error("message too short: {len} bytes, the header alone is 20")]
    TooShort {
        /// The datagram's length.
        len: usize,
    },
    /// The two top bits are not zero: another protocol (RTP, DTLS) sharing the port.
    #[error("not a STUN message: the two top bits are set")]
    NotStun,
    /// The magic cookie is missing: an RFC 3489 message or not STUN at all.
    #[error("bad magic cookie {0:#010x}")]
    BadMagicCookie(u32),
    /// The header's length is not a multiple of 4.
    #[error("message length {0} is not a multiple of 4")]
    UnalignedLength(usize),
    /// The header's length disagrees with the datagram.
    #[error("header says {header} bytes of attributes, datagram has {actual}")]
    LengthMismatch {
        /// Length from the header.
        header: usize,
        /// Bytes after the header.
        actual: usize,
    },
    /// An attribute runs past the end of the message.
    #[error("attribute at offset {offset} runs past the end")]
    TruncatedAttribute {
        /// Byte offset of the attribute header.
        offset: usize,
    },
    /// A known attribute with an impossible value.
    #[error("attribute {kind:#06x} is malformed: {reason}")]
    BadAttribute {
        /// The attribute type.
        kind: u16,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Comprehension-required attributes this crate does not know (RFC 8489 §14).
    #[error("unknown comprehension-required attributes {0:04x?}")]
    UnknownRequiredAttributes(Vec<u16>),
    /// FINGERPRINT is not the last attribute.
    #[error("attributes follow FINGERPRINT")]
    AttributeAfterFingerprint,
    /// FINGERPRINT does not match the message.
    #[error("FINGERPRINT {actual:#010x} does not match the message ({expected:#010x})")]
    FingerprintMismatch {
        /// The CRC computed over the message.
        expected: u32,
        /// The value in the attribute.
        actual: u32,
    },
    /// MESSAGE-INTEGRITY was asked to be checked but is absent.
    #[error("message has no MESSAGE-INTEGRITY")]
    NoMessageIntegrity,
    /// The OS random source failed, so no safe transaction id could be made.
    #[error("no randomness for a transaction id: {0}")]
    Random(String),
    /// A socket operation failed (tokio helper only).
    #[error("socket error: {0}")]
    Io(String),
    /// The server gave an error response, or a success without any mapped address.
    #[error("server {server} refused: {error:?}")]
    Refused {
        /// The server.
        server: std::net::SocketAddr,
        /// Its ERROR-CODE, if any.
        error: Option<ErrorCode>,
    },
    /// No response after every retransmission.
    #[error("no response from {0}")]
    TimedOut(std::net::SocketAddr),
    /// A TURN allocation, URL or frame failed (see [`turn::TurnError`]).
    #[error(transparent)]
    Turn(#[from] turn::TurnError),
}
