//! WebRTC sessions between a puppet and its controllers, on str0m's sans-IO engine.
//!
//! Two layers, as in quinn-proto and quinn:
//!
//! - [`Session`] is the whole protocol for one session, with no I/O and no clock of its own
//!   (str0m's shape): build it with [`PeerConfig::build`], feed it [`Input`]s with `now`, call
//!   its command methods (offer/answer, candidates, [`Session::send_data`],
//!   [`Session::send_video`]), and drain [`Session::poll_output`] until it says
//!   [`Output::Timeout`]. Tests drive it on a virtual clock; see the `test-util` feature's
//!   [`testing::Pair`].
//! - [`Peer::start`] runs a session on tokio: a task owns the UDP sockets and moves datagrams,
//!   timers and messages. It gives a [`PeerHandle`] (signaling, sending, closing; no call ever
//!   blocks), a stream of [`PeerEvent`]s, and the media hand-over points: encoded frames go in
//!   through a [`VideoSender`] (a latest-wins slot, so a slow network never holds up the encoder)
//!   and an [`AudioSender`], and come out of a [`VideoReceiver`] and an [`AudioReceiver`].
//!
//! The offerer (the puppet) sends AV1 video, and Opus audio when asked, and opens four data
//! channels, served in this priority order: [`Channel::Pointer`] (unordered, no retransmits),
//! [`Channel::Input`], [`Channel::Control`] (JSON text) and [`Channel::File`] (bulk bytes, which
//! never delay the others). Channels the remote side opens are surfaced as
//! [`PeerEvent::RemoteChannelOpen`].
//!
//! ```
//! use std::time::Instant;
//! use rtcdesk_peer::{Output, PeerConfig, Role};
//!
//! rtcdesk_peer::install_crypto_provider();
//! let now = Instant::now();
//! let host = "192.0.2.1:5000".parse().unwrap();
//! let mut puppet = PeerConfig::new(Role::Offerer).build(&[host], now).unwrap();
//! let offer_sdp = puppet.create_offer(now).unwrap();
//! assert!(offer_sdp.contains("AV1/90000"));
//! // … signal offer_sdp, apply the answer with puppet.accept_answer(…) …
//! loop {
//!     match puppet.poll_output() {
//!         Output::Transmit(transmit) => { /* socket.send_to(&transmit.contents, transmit.destination) */ }
//!         Output::Event(event) => { /* signal candidates, react to Connected, Data … */ }
//!         Output::Timeout(_at) => break, // call handle_input(Input::Timeout, at) then
//!         _ => {}
//!     }
//! }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod channel;
mod config;
mod driver;
mod gather;
mod ice_servers;
mod relay;
mod session;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
mod video;

pub use channel::{Channel, Message, BULK_IN_FLIGHT};
pub use config::{ConfigError, PeerConfig, Role, TurnServer, TurnTls};
pub use driver::{Endpoint, Peer, PeerHandle};
pub use ice_servers::{resolve_ice_servers, ResolvedIceServers, MAX_ICE_URLS};
pub use session::{
    candidate_kind, DtlsFingerprint, Input, Output, PeerEvent, PeerStats, SelectedPair, Session,
    Track, Transmit,
};
pub use str0m::CandidateKind;
pub use video::{
    AudioReceiver, AudioSender, EncodedAudioFrame, EncodedVideoFrame, ReceivedAudioFrame,
    ReceivedVideoFrame, VideoReceiver, VideoSender,
};

/// Everything a caller of this crate can see fail, named so it can react.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Binding or using a UDP socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// No usable local address was found to bind to.
    #[error("no usable network interface to bind to")]
    NoInterface,
    /// The configuration breaks one of its rules.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// The call does not fit this peer's role (e.g. the answerer creating an offer).
    #[error("{0} is not allowed for this role or in this state")]
    WrongState(&'static str),
    /// The remote SDP is not SDP.
    #[error("SDP: {0}")]
    Sdp(#[from] str0m::error::SdpError),
    /// The remote SDP parsed but could not be negotiated with ours.
    #[error("negotiation: {0}")]
    Negotiation(str0m::RtcError),
    /// A remote candidate could not be parsed.
    #[error("bad remote candidate {candidate:?}: {error}")]
    BadCandidate {
        /// The candidate as received.
        candidate: String,
        /// What str0m said about it.
        error: str0m::error::IceError,
    },
    /// A local (e.g. relay) candidate was refused.
    #[error("local candidate: {0}")]
    BadLocalCandidate(str0m::error::IceError),
    /// str0m reported an error; the session is closed after it.
    #[error("WebRTC engine: {0}")]
    Rtc(#[from] str0m::RtcError),
    /// The session has ended (closed, or its task stopped); nothing more can be sent.
    #[error("session closed")]
    Closed,
    /// The channel's send queue is full; the caller decides whether to wait, drop or give up.
    #[error("send queue full")]
    Full,
    /// No such channel is open (a remote channel that closed, or never existed).
    #[error("no such data channel")]
    UnknownChannel,
    /// A TURN allocation could not be made or used.
    #[error("TURN: {0}")]
    Turn(rtcdesk_stun::turn::TurnError),
    /// A transmit named a local address no socket is bound to; it was not sent from another.
    #[error("no socket for local address {0}")]
    UnknownSource(std::net::SocketAddr),
}

/// Installs str0m's OpenSSL crypto provider process-wide. [`Peer::start`] calls it; calling it
/// again is harmless. Needed because str0m is built without its default crypto feature (FACTS.md).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}
