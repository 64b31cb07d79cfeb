//! One WebRTC session between a puppet and a controller, on str0m's sans-IO engine.
//!
//! The puppet (the [`Role::Offerer`]) sends AV1 video and offers three data channels
//! ([`Channel::Input`], [`Channel::Pointer`], [`Channel::Control`]); the controller (the
//! [`Role::Answerer`], or a browser) answers. Signaling is the caller's: [`Peer::start`] gives a
//! [`PeerHandle`] that creates and accepts plain SDP text and takes remote candidates, and a
//! stream of [`PeerEvent`]s that carries local candidates, lifecycle, data, keyframe requests and
//! stats. Encoded frames go in through a [`VideoSender`] (a latest-wins slot, so a slow network
//! never holds up the encoder) and come out of a [`VideoReceiver`] (bounded; when the decoder
//! falls behind, frames are dropped and a keyframe is requested).
//!
//! Inside, a sans-IO session core wraps `str0m::Rtc` and the STUN client; a tokio task owns the
//! UDP sockets (one per interface address) and only moves datagrams, timers and messages.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtcdesk_peer::Error> {
//! use rtcdesk_peer::{Channel, Peer, PeerConfig, PeerEvent, Role};
//!
//! let puppet = Peer::start(PeerConfig::new(Role::Offerer))?;
//! let offer_sdp = puppet.handle.create_offer().await?;
//! // … send offer_sdp to the controller, get its answer back …
//! # let answer_sdp = String::new();
//! puppet.handle.accept_answer(answer_sdp).await?;
//! let mut events = puppet.events;
//! while let Some(event) = events.recv().await {
//!     match event {
//!         PeerEvent::LocalCandidate { .. } => { /* signal it */ }
//!         PeerEvent::Connected => puppet.handle.send_data(Channel::Control, b"hello".to_vec()).await?,
//!         PeerEvent::Data(Channel::Input, bytes) => { /* inject */ }
//!         PeerEvent::Closed => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod driver;
mod gather;
mod session;
mod video;

pub use config::{Channel, PeerConfig, Role};
pub use driver::{Peer, PeerHandle};
pub use session::{PeerEvent, PeerStats};
pub use video::{EncodedVideoFrame, ReceivedVideoFrame, VideoReceiver, VideoSender};

/// Everything a caller of this crate can see fail, named so it can react.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or using a UDP socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// No usable local address was found to bind to.
    #[error("no usable network interface to bind to")]
    NoInterface,
    /// The call does not fit this peer's role (e.g. the answerer creating an offer).
    #[error("{0} is not allowed for this role or in this state")]
    WrongState(&'static str),
    /// The remote SDP could not be parsed or negotiated.
    #[error("SDP: {0}")]
    Sdp(String),
    /// A remote candidate could not be parsed.
    #[error("bad remote candidate {candidate:?}: {reason}")]
    BadCandidate {
        /// The candidate as received.
        candidate: String,
        /// What str0m said about it.
        reason: String,
    },
    /// str0m reported an error; the session is closed after it.
    #[error("WebRTC engine: {0}")]
    Rtc(#[from] str0m::RtcError),
    /// The session has ended (closed, or its task stopped); nothing more can be sent.
    #[error("session closed")]
    Closed,
    /// A non-blocking send found the queue full.
    #[error("send queue full")]
    Full,
}

/// Installs str0m's OpenSSL crypto provider process-wide. [`Peer::start`] calls it; calling it
/// again is harmless. Needed because str0m is built without its default crypto feature (FACTS.md).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}
