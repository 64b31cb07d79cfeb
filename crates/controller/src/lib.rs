//! The rtcdesk controller: shows a puppet's screen and sends it input.
//!
//! [`Controller::connect`] does the whole pairing: it connects to the signaling server, asks for
//! the puppet by its control code, waits for the puppet's user to accept, answers the puppet's
//! WebRTC offer and trickles ICE candidates both ways until the peer connection is up. Errors
//! name what went wrong so the binary can map them to exit codes ([`ConnectError::exit_code`]).
//!
//! Data flow once connected: the network task (tokio) receives AV1 frames on the video track;
//! a decoder thread ([`decode`]) turns each into a picture with dav1d and hands it to a
//! [`FrameSink`] — the window's latest-wins slot, the headless PNG writer ([`headless`]), or a
//! test's or benchmark's own sink. Input goes the other way: window events become
//! [`InputMessage`]s (see `rtcdesk_input::window`), and [`InputSender::send`] puts pointer moves
//! on the unreliable pointer channel and everything else on the reliable input channel.
//! [`ControllerEvent`]s report the connection, stats once a second, and the end.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rtcdesk_controller::{Controller, ControllerConfig, ControllerEvent, DecodedPicture, FrameSink};
//!
//! struct Count(u64);
//! impl FrameSink for Count {
//!     fn frame(&mut self, picture: &DecodedPicture<'_>) { self.0 += 1; }
//! }
//!
//! let config = ControllerConfig::new("ws://127.0.0.1:8443/", "123 456 789".parse()?);
//! let mut controller = Controller::connect(config, Box::new(Count(0))).await?;
//! while let Some(event) = controller.next_event().await {
//!     if let ControllerEvent::Ended(reason) = event {
//!         eprintln!("{reason}");
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binding;
pub mod core;
pub mod decode;
pub mod exchange;
pub mod grid;
pub mod headless;
pub mod ice_report;
pub mod overlay;
pub mod pairing;
pub mod room;
mod session;
pub mod stats;
pub mod window;
pub mod window_clipboard;

use std::net::SocketAddr;
use std::time::Duration;

use rtcdesk_signal::client::{default_name, ClientSide};

pub use decode::{DecodedPicture, FrameSink};
pub use exchange::{ChatError, ChatSender, ClipboardSender};
pub use rtcdesk_input::KeyboardMode;
pub use rtcdesk_proto::chat::ChatLine;
pub use rtcdesk_proto::input::InputMessage;
pub use rtcdesk_proto::ControlCode;
pub use session::{
    Controller, ControllerEvent, EndReason, FileCommands, InputSender, PuppetStats, SessionStats,
};

/// Exit code: the user closed the session.
pub const EXIT_OK: i32 = 0;
/// Exit code: any error not listed here.
pub const EXIT_OTHER: i32 = 1;
/// Exit code: bad command line.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: no puppet has this control code.
pub const EXIT_UNKNOWN_CODE: i32 = 3;
/// Exit code: the puppet's user refused the connection.
pub const EXIT_REJECTED: i32 = 4;
/// Exit code: the signaling server could not be reached.
pub const EXIT_SIGNAL_UNREACHABLE: i32 = 5;
/// Exit code: the connection to the puppet failed or was lost.
pub const EXIT_CONNECTION_LOST: i32 = 6;
/// Exit code: end-to-end verification failed: wrong last digits, or the connection may be
/// intercepted.
pub const EXIT_NOT_VERIFIED: i32 = 7;

/// Everything [`Controller::connect`] needs. [`ControllerConfig::new`] gives working defaults.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The signaling server, `ws://…` or `wss://…` (what the puppet prints).
    pub signal_url: String,
    /// Whom to trust for `wss://` (public CAs by default; a pinned or extra CA for self-signed).
    pub tls: rtcdesk_signal::tls::TlsOptions,
    /// The puppet's control code: the nine digits the signaling server routes by.
    pub code: ControlCode,
    /// What the server never sees: the last three digits of the code the puppet shows, or an
    /// unattended puppet's password key. With it the session is verified end to end
    /// (`crates/pake/PAKE.md`) and refused when it cannot be; without it (`None`) it pairs as
    /// a browser does, unverified.
    pub secret: Option<rtcdesk_pake::Credential>,
    /// Our name, shown to the puppet's user when asked to accept.
    pub name: String,
    /// How key events are replayed on the puppet (sent on the control channel when it opens).
    pub keyboard: KeyboardMode,
    /// STUN servers for server-reflexive candidates (needed across NATs).
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers for relayed candidates, when no direct path works.
    pub turn_servers: Vec<rtcdesk_peer::TurnServer>,
    /// Offer only relayed candidates: the puppet never learns this machine's addresses.
    pub relay_only: bool,
    /// Bind the peer's UDP socket here instead of on every interface (tests: `127.0.0.1:0`).
    pub bind: Option<SocketAddr>,
    /// How long the puppet's user may take to accept.
    pub accept_timeout: Duration,
    /// How long, after acceptance, the WebRTC connection may take to come up.
    pub connect_timeout: Duration,
    /// Silence after which a connected session counts as lost (the issue asks for < 10 s).
    pub lost_after: Duration,
    /// dav1d worker threads (0: dav1d decides).
    pub decoder_threads: u32,
    /// Where files the puppet sends go (`None`: the user's downloads folder, `rtcdesk`
    /// inside it).
    pub download_dir: Option<std::path::PathBuf>,
    /// Take every file the puppet offers without asking (scripts; a window asks instead).
    pub accept_files: bool,
}

impl ControllerConfig {
    /// Defaults for connecting to `signal_url` with `code`: name from `$USER@hostname`, map
    /// keyboard, no STUN, 2 minutes to accept, 15 s to connect, lost after 8 s of silence.
    pub fn new(signal_url: impl Into<String>, code: ControlCode) -> Self {
        Self {
            signal_url: signal_url.into(),
            tls: rtcdesk_signal::tls::TlsOptions::default(),
            code,
            secret: None,
            name: default_name(ClientSide::Controller),
            keyboard: KeyboardMode::Map,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            relay_only: false,
            bind: None,
            accept_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(15),
            lost_after: Duration::from_secs(8),
            decoder_threads: 2,
            download_dir: None,
            accept_files: false,
        }
    }

    /// Defaults for the whole code as the puppet shows it (twelve digits: verified; nine:
    /// not).
    pub fn for_pairing(signal_url: impl Into<String>, code: rtcdesk_pake::PairingCode) -> Self {
        let mut config = Self::new(signal_url, code.route);
        config.secret = code.secret.map(rtcdesk_pake::Credential::Digits);
        config
    }

    /// Defaults for an unattended puppet: its device ID and the key of the password the user
    /// typed ([`rtcdesk_pake::DeviceKey::derive`], which takes a moment: derive it off any
    /// async task).
    pub fn for_device(
        signal_url: impl Into<String>,
        id: ControlCode,
        key: rtcdesk_pake::DeviceKey,
    ) -> Self {
        let mut config = Self::new(signal_url, id);
        config.secret = Some(rtcdesk_pake::Credential::Password(key));
        config
    }
}

/// Why a connection to a puppet could not be made; each variant maps to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The signaling server could not be reached (refused, unreachable, TLS, timeout).
    #[error("cannot reach the signaling server: {0}")]
    SignalUnreachable(#[source] rtcdesk_signal::client::ClientError),
    /// The signaling connection broke during pairing.
    #[error("the signaling server closed the connection during pairing")]
    SignalClosed,
    /// No live puppet has this control code (mistyped, expired, or the puppet stopped).
    #[error("no puppet has the code {0}: check the code the puppet shows (codes expire)")]
    UnknownCode(ControlCode),
    /// The puppet's user refused (or did not answer in time).
    #[error("the puppet's user refused the connection{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    Rejected {
        /// The reason the puppet gave, if any.
        reason: Option<String>,
    },
    /// Nobody accepted within [`ControllerConfig::accept_timeout`].
    #[error("the puppet's user did not answer within {0:?}")]
    NoAnswer(Duration),
    /// The server refused for another reason (rate limited, busy, …).
    #[error("the signaling server refused: {code}: {message}")]
    Refused {
        /// The server's error code.
        code: rtcdesk_proto::signal::ErrorCode,
        /// Its explanation.
        message: String,
    },
    /// The peer connection did not come up, or the puppet left before it did.
    #[error("the connection to the puppet failed: {0}")]
    ConnectionFailed(String),
    /// End-to-end verification failed: the puppet does not hold the same twelve digits, or
    /// someone (the signaling server) is in the middle.
    #[error("{0}")]
    NotVerified(#[from] rtcdesk_pake::PakeError),
    /// The puppet (or the signaling server) skipped verification although this side asked
    /// for it: an older puppet, or a server that stripped it.
    #[error(
        "the puppet did not verify the session end to end (an older puppet, or a signaling \
         server that interferes): not connecting. Without the last three digits the session \
         connects unverified."
    )]
    VerificationSkipped,
    /// The WebRTC engine failed.
    #[error("WebRTC: {0}")]
    Peer(#[from] rtcdesk_peer::Error),
    /// The video decoder could not start.
    #[error("video decoder: {0}")]
    Decoder(#[from] rtcdesk_media::Error),
}

impl ConnectError {
    /// The process exit code for this error (see the crate's exit code constants).
    pub fn exit_code(&self) -> i32 {
        match self {
            ConnectError::SignalUnreachable(_) => EXIT_SIGNAL_UNREACHABLE,
            ConnectError::UnknownCode(_) => EXIT_UNKNOWN_CODE,
            ConnectError::Rejected { .. } | ConnectError::NoAnswer(_) => EXIT_REJECTED,
            ConnectError::ConnectionFailed(_) | ConnectError::SignalClosed => EXIT_CONNECTION_LOST,
            ConnectError::NotVerified(_) | ConnectError::VerificationSkipped => EXIT_NOT_VERIFIED,
            ConnectError::Refused { .. } | ConnectError::Peer(_) | ConnectError::Decoder(_) => {
                EXIT_OTHER
            }
        }
    }
}
