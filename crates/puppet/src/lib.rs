//! The puppet: the program on the computer to be controlled.
//!
//! It registers with a signaling server (its own embedded one unless a URL is given), shows the
//! control code the server hands out, asks its user to accept each controller that dials that
//! code, and then serves every accepted controller over its own WebRTC session.
//!
//! Data flows in two directions:
//!
//! - **Video, one pipeline for all sessions.** A capture thread grabs the screen (X11, or the
//!   [`SyntheticDesktop`]) and keeps only the latest changed frame. The encoder thread takes it
//!   as soon as the [`pacer`] allows (at most `fps` frames a second; once the screen stops
//!   changing, one sharp keyframe of the final picture, then nothing while it stays still), scales it down to `max_size` if asked, encodes it (libaom realtime or rav1e) and
//!   hands the same encoded frame to every connected session's latest-wins video slot. The
//!   encoder's bitrate stays under the slowest viewer's bandwidth estimate ([`bitrate`]). A new
//!   session or a keyframe request from any viewer forces a keyframe.
//! - **Input, one injector for all sessions.** Each session's input and pointer data channels
//!   carry [`rtcdesk_proto::InputMessage`]s into that session's
//!   [`PuppetInput`](rtcdesk_input::PuppetInput) (view-only check, coordinate mapping, keyboard
//!   mode), which queues actions on the one [`InjectorThread`](rtcdesk_input::InjectorThread):
//!   enigo on X11, [`SyntheticInjector`] on the synthetic desktop. A session that ends releases
//!   every key and button it held.
//!
//! The bookkeeping of who dialled, who was asked, who is connected and what must be sent on the
//! signaling connection lives in a sans-IO core, [`core::SessionBook`]; the tokio loop around it
//! only moves signaling messages, peer events and timers.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtcdesk_puppet::Error> {
//! use rtcdesk_puppet::{AcceptPolicy, Puppet, PuppetConfig, PuppetEvent, Source};
//!
//! let mut config = PuppetConfig::new(Source::Synthetic { width: 640, height: 360 });
//! config.accept = AcceptPolicy::All;
//! let mut puppet = Puppet::start(config).await?;
//! println!("control code {} on {}", puppet.control_code(), puppet.signal_url());
//! while let Some(event) = puppet.next_event().await {
//!     if let PuppetEvent::SessionStarted { name, .. } = event {
//!         println!("{name} is connected");
//!     }
//! }
//! puppet.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attempts;
pub mod bitrate;
mod clipboard;
mod controls;
pub mod core;
pub mod desk;
pub mod exchange;
mod files;
mod injector;
pub mod pacer;
mod pipeline;
mod run;
mod session;
mod terminal;
pub mod unattended;
pub mod viewer;
pub mod window;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtcdesk_media::{EncoderKind, SyntheticDesktop};
use rtcdesk_proto::signal::{ControlCode, SessionId};
use rtcdesk_signal::client::{default_name, ClientSide};
use rtcdesk_signal::tls::TlsOptions;
use tokio::sync::{mpsc, watch};

pub use controls::{ControlError, PuppetControls};
pub use core::{MAX_FAILED_RUNS, UNVERIFIED_REFUSED};
pub use exchange::{ChatError, ChatSender};
pub use files::{FilesError, PuppetFiles};
pub use injector::SyntheticInjector;
pub use pipeline::{FrameTiming, Quality, THUMBNAIL_FPS, THUMBNAIL_KBPS, THUMBNAIL_SIZE};
pub use rtcdesk_proto::chat::ChatLine;

/// The port the embedded signaling server tries first: the one `controller` uses when it is
/// given no `--signal`, so on one machine `controller CODE` just works.
pub const DEFAULT_SIGNAL_PORT: u16 = 8443;

/// Where the picture comes from and where input goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A generated desktop of this size that is also the input sink: for tests, demos and
    /// machines without a display.
    Synthetic {
        /// Width in pixels (even, at least 320 for everything on it to fit).
        width: u32,
        /// Height in pixels (even, at least 180).
        height: u32,
    },
    /// The X server's screen, captured with scrap and driven with enigo.
    X11 {
        /// The display name (`":0"`); `None` uses `DISPLAY`.
        display: Option<String>,
    },
}

/// A controller asking to connect, as shown to whoever decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    /// The session the signaling server made for it.
    pub session: SessionId,
    /// The name the controller gave (untrusted text from the network).
    pub from: String,
    /// Whether the controller proved it holds the whole code (verified pairing). False for a
    /// browser or a controller given the nine routing digits only: then the signaling server
    /// could be the one asking, and the question should say so.
    pub verified: bool,
}

/// What the puppet's user (or its policy) decided about a controller: the session's role is
/// decided here, once, and enforced by the puppet for the whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let it in with control: mouse and keyboard, clipboard, files to this machine.
    Control,
    /// Let it watch only: its input, clipboard and file offers are refused whatever it sends.
    ViewOnly,
    /// Refuse it.
    Decline,
}

/// `true` is [`Decision::Control`], `false` [`Decision::Decline`].
impl From<bool> for Decision {
    fn from(accept: bool) -> Self {
        if accept {
            Decision::Control
        } else {
            Decision::Decline
        }
    }
}

/// A decision function for [`AcceptPolicy::Callback`].
pub type AcceptCallback = Arc<dyn Fn(&IncomingRequest) -> Decision + Send + Sync>;

/// How the puppet decides whether a controller may connect.
#[derive(Clone)]
pub enum AcceptPolicy {
    /// Every controller that knows the code is accepted: for tests and deliberate unattended
    /// use only (`--accept-all`).
    All,
    /// Ask on the terminal (stdin) and reject when nobody answers within `timeout`. Requests
    /// are asked one at a time, in order of arrival.
    Prompt {
        /// How long the question waits for an answer.
        timeout: Duration,
    },
    /// Ask the application's own dialog (the puppet's window): each request comes out as
    /// [`PuppetEvent::Incoming`] and is answered with [`PuppetControls::decide`]; no answer
    /// within `timeout` is a refusal.
    Application {
        /// How long a request waits for an answer.
        timeout: Duration,
    },
    /// Ask a function (a test, or an embedding program's own dialog). It is called on a
    /// blocking thread, so it may wait for a person; it returns the session's role or a
    /// refusal.
    Callback(AcceptCallback),
}

impl std::fmt::Debug for AcceptPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AcceptPolicy::All => f.write_str("All"),
            AcceptPolicy::Prompt { timeout } => {
                f.debug_struct("Prompt").field("timeout", timeout).finish()
            }
            AcceptPolicy::Application { timeout } => f
                .debug_struct("Application")
                .field("timeout", timeout)
                .finish(),
            AcceptPolicy::Callback(_) => f.write_str("Callback(..)"),
        }
    }
}

/// Which signaling server the puppet registers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signaling {
    /// An existing server (`ws://…` or `wss://…`), e.g. a `rtcdesk-signal` on a public host.
    Url(String),
    /// Start one in this process, listening here, so a LAN needs nothing else. When the port
    /// is taken (another puppet on this machine), a free port is used instead; port 0 always
    /// picks a free one.
    Embedded {
        /// Where the embedded server listens.
        listen: SocketAddr,
    },
}

/// Everything [`Puppet::start`] needs; [`PuppetConfig::new`] fills in the defaults the
/// command line also uses.
#[derive(Debug, Clone)]
pub struct PuppetConfig {
    /// The name controllers see (the host name by default).
    pub name: String,
    /// Screen and input sink.
    pub source: Source,
    /// The AV1 encoder.
    pub encoder: EncoderKind,
    /// Most frames encoded per second; fewer are sent while little changes, none while still.
    pub fps: u32,
    /// Scale the picture down to fit inside this size (keeping the aspect ratio) before
    /// encoding; `None` sends the screen's own size.
    pub max_size: Option<(u32, u32)>,
    /// Controllers may watch but not control.
    pub view_only: bool,
    /// Who may connect.
    pub accept: AcceptPolicy,
    /// Where to register.
    pub signaling: Signaling,
    /// Whom to trust for `wss://`.
    pub tls: TlsOptions,
    /// STUN servers for server-reflexive candidates (NAT traversal beyond a LAN).
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers for relayed candidates, when no direct path works (symmetric NATs,
    /// blocked UDP).
    pub turn_servers: Vec<rtcdesk_peer::TurnServer>,
    /// Offer only relayed candidates: controllers never learn this machine's addresses.
    pub relay_only: bool,
    /// Also write the encoded video to this IVF file (playable with `dav1d -i FILE`, ffplay).
    pub record: Option<PathBuf>,
    /// Bind every session's UDP socket here instead of all interfaces (tests: `127.0.0.1:0`).
    pub peer_bind: Option<SocketAddr>,
    /// How long an accepted session may take to get its WebRTC connection up before it is
    /// given up.
    pub connect_timeout: Duration,
    /// Join the proctor's room with this room code instead of registering for a control code
    /// (`--join`). The proctor gets a session without being asked about: joining is the
    /// consent. [`Puppet::control_code`] then holds the room code.
    pub join: Option<ControlCode>,
    /// Read stdin even without a prompt policy, and send lines that answer no question as chat
    /// to every controller (the terminal program; an embedding program uses
    /// [`Puppet::chat_sender`]).
    pub terminal_chat: bool,
    /// Where files controllers send are written (`--download-dir`); `None` uses
    /// [`rtcdesk_files::default_dir`] (the user's Downloads/rtcdesk).
    pub download_dir: Option<PathBuf>,
    /// Accept every file a controller offers (`--accept-files`, for scripts and tests). Without
    /// it, the terminal asks (with `terminal_chat` or a prompt policy); with no terminal,
    /// offers wait for [`PuppetFiles::answer`] when `answer_files` is set, and are declined
    /// otherwise.
    pub accept_files: bool,
    /// Offers neither accepted by `accept_files` nor asked on the terminal wait for the
    /// application's [`PuppetFiles::answer`] instead of being declined.
    pub answer_files: bool,
    /// Share clipboard text with controllers that may control (`--no-clipboard` turns it
    /// off): their copies land on this machine's clipboard, and what is copied here during a
    /// session goes to them. View-only sessions never read or write it.
    pub clipboard: bool,
    /// Refuse controllers that do not verify the session end to end (`--require-verified`):
    /// browsers, and controllers given only the nine routing digits. Off by default, so a
    /// browser can still help; its request is then asked about as not verified.
    pub require_verified: bool,
    /// Unattended access (`--unattended`): register the permanent device ID kept in this
    /// config folder and let in, without asking, controllers that prove they hold its password
    /// (set with `puppet set-password`); everyone else is refused.
    pub unattended: Option<UnattendedSetup>,
}

/// Where an unattended puppet keeps its device ID, password key and wrong-password log, and
/// how hard it makes guessing.
#[derive(Debug, Clone)]
pub struct UnattendedSetup {
    /// The config folder.
    pub store: unattended::DeviceStore,
    /// Backoff and lockout.
    pub policy: attempts::AttemptPolicy,
}

impl PuppetConfig {
    /// Defaults: the machine's host name, libaom, 60 fps, the screen's own size, full control,
    /// a terminal prompt with a 30 s timeout, an embedded signaling server on every interface
    /// at port [`DEFAULT_SIGNAL_PORT`] (a free one if taken), no STUN server, no recording,
    /// 20 s to connect.
    pub fn new(source: Source) -> Self {
        Self {
            name: default_name(ClientSide::Puppet),
            source,
            encoder: EncoderKind::Aom,
            fps: 60,
            max_size: None,
            view_only: false,
            accept: AcceptPolicy::Prompt {
                timeout: Duration::from_secs(30),
            },
            signaling: Signaling::Embedded {
                listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_SIGNAL_PORT)),
            },
            tls: TlsOptions::default(),
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            relay_only: false,
            record: None,
            peer_bind: None,
            connect_timeout: Duration::from_secs(20),
            join: None,
            terminal_chat: false,
            download_dir: None,
            accept_files: false,
            answer_files: false,
            clipboard: true,
            require_verified: false,
            unattended: None,
        }
    }

    /// A configuration for in-process tests: everything on loopback (embedded server on
    /// `127.0.0.1`, peers bound to `127.0.0.1`), every controller accepted.
    pub fn loopback(source: Source) -> Self {
        let mut config = Self::new(source);
        config.name = "test puppet".into();
        config.accept = AcceptPolicy::All;
        config.signaling = Signaling::Embedded {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        config.peer_bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        // Tests that share the clipboard say so (and bring an X server).
        config.clipboard = false;
        config
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The controller left (its `leave`, or its signaling connection dropped).
    Left,
    /// The WebRTC connection closed or went silent (controller killed, network gone).
    ConnectionLost,
    /// The WebRTC connection did not come up within [`PuppetConfig::connect_timeout`].
    ConnectFailed,
    /// Verification found that the encrypted connection does not end at the controller that
    /// holds the code: someone (the signaling server) is in the middle.
    Intercepted,
    /// The verified controller did not confirm the encrypted connection in time.
    NotVerified,
    /// The controller flooded the input queue; its session was ended to protect the desktop.
    InputOverload,
    /// The puppet is shutting down.
    Shutdown,
    /// The puppet's user ended it ([`PuppetControls::disconnect`]).
    Disconnected,
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EndReason::Left => "the controller left",
            EndReason::ConnectionLost => "the connection was lost",
            EndReason::ConnectFailed => "the connection could not be set up",
            EndReason::Intercepted => {
                "the connection may be intercepted: the encrypted connection does not end at \
                 the controller that holds the code"
            }
            EndReason::NotVerified => "the controller did not confirm the encrypted connection",
            EndReason::InputOverload => "the controller sent too much input",
            EndReason::Shutdown => "the puppet is shutting down",
            EndReason::Disconnected => "you disconnected it",
        })
    }
}

/// What happened, for a user interface (the binary prints these) and for tests.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PuppetEvent {
    /// The signaling server gave us a (new) control code.
    Registered {
        /// The nine digits the signaling server routes by (what a browser controller types).
        code: ControlCode,
        /// The whole code to show: the nine digits and the three only this puppet knows
        /// (`123 456 789 012`). A native controller given all twelve verifies the session end
        /// to end.
        pairing: rtcdesk_pake::PairingCode,
        /// How long it stays valid; the puppet registers again before it runs out. Zero for a
        /// device ID.
        expires_in: Duration,
        /// Whether `code` is this puppet's permanent device ID (`--unattended`).
        device: bool,
    },
    /// A controller dialled the code; the accept policy is being asked.
    Incoming {
        /// Its session.
        session: SessionId,
        /// Its name.
        from: String,
        /// Whether it proved it holds the whole code ([`IncomingRequest::verified`]).
        verified: bool,
    },
    /// A controller failed verified pairing (wrong secret digits, a malformed or missing
    /// confirmation, or it gave up half-way) and was refused before the user was asked.
    VerificationFailed {
        /// Its session.
        session: SessionId,
        /// Its name.
        from: String,
        /// Failed runs against the current code so far.
        failed_runs: u32,
    },
    /// Unattended access: the streak of wrong passwords changed (a failure, a right password
    /// after failures, or an unlock). Sent once the count is stored in the config folder.
    Attempts {
        /// Wrong passwords in a row.
        consecutive: u32,
        /// Whether the puppet now refuses everyone until its owner unlocks it.
        locked: bool,
    },
    /// Too many failed runs: the code was retired and a new one is being fetched (a
    /// [`PuppetEvent::Registered`] follows). Whoever needs the puppet needs the new code.
    CodeRetired {
        /// The failed runs that retired it.
        failed_runs: u32,
    },
    /// The controller was refused (by the policy, or no answer in time).
    Declined {
        /// Its session.
        session: SessionId,
        /// Its name.
        from: String,
    },
    /// A controller was accepted; its WebRTC session is being set up.
    SessionStarted {
        /// Its session.
        session: SessionId,
        /// Its name.
        name: String,
        /// Whether it may only watch (the user's answer, or `--view-only`).
        view_only: bool,
    },
    /// The session's WebRTC connection is up: video flows, input is taken.
    SessionConnected {
        /// Its session.
        session: SessionId,
    },
    /// The puppet's user changed what a running session may do
    /// ([`PuppetControls::set_view_only`]); giving one session control takes it from another,
    /// so this comes for both. Its controller is told.
    RoleChanged {
        /// Its session.
        session: SessionId,
        /// Whether it now only watches.
        view_only: bool,
    },
    /// A session that had started is over; everything its controller held is released.
    SessionEnded {
        /// Its session.
        session: SessionId,
        /// Why.
        reason: EndReason,
    },
    /// This puppet joined a proctor's room (`--join`): a session with the proctor starts at
    /// once (joining was the consent). Show `room_name` for as long as the session lasts: it
    /// says who watches.
    JoinedRoom {
        /// The session with the proctor.
        session: SessionId,
        /// The room's name as the proctor gave it ("Exam hall 2 — Ms Lovelace").
        room_name: String,
    },
    /// The proctor changed what it does with this puppet: only in the room (`joined`),
    /// `watching` its screen, or in control (`controlled`).
    Watched {
        /// The session with the proctor.
        session: SessionId,
        /// The room's name.
        by: String,
        /// What the proctor now does.
        state: rtcdesk_proto::signal::MemberStatus,
    },
    /// The room could not be joined (wrong or expired code, room closed or full).
    JoinFailed {
        /// Why, in a line for the user.
        reason: String,
    },
    /// The connection to the signaling server was lost: no new controller can reach us, but
    /// connected sessions go on. The puppet connects again by itself (1 s, 2 s, … up to 30 s
    /// between tries) and then reports a new code with [`PuppetEvent::Registered`].
    SignalingLost {
        /// What happened.
        reason: String,
    },
    /// A controller's user wrote a chat line (print it with `Display`, which cleans it).
    Chat {
        /// Its session.
        session: SessionId,
        /// The line, with the controller's name and the arrival time.
        line: ChatLine,
    },
    /// Something about a file transfer with this session's controller: an offer, its
    /// acceptance, a file received (with its path inside the download folder) or sent, or a
    /// transfer that ended without completing.
    File {
        /// Its session.
        session: SessionId,
        /// What happened.
        event: rtcdesk_files::TransferEvent,
    },
    /// One of this side's files ([`PuppetFiles::send`]) was offered to the session's
    /// controller under `offer.id`; its user is asked to accept.
    FileOffered {
        /// Its session.
        session: SessionId,
        /// The offer as sent.
        offer: rtcdesk_files::Offer,
    },
    /// A file could not be offered: missing, a folder, unreadable, or nobody to send it to
    /// (`session` is `None` when no controller is connected).
    FileNotSent {
        /// The session it was for.
        session: Option<SessionId>,
        /// The path given.
        path: std::path::PathBuf,
        /// Why, for the user.
        reason: String,
    },
    /// Bytes, rate and time left of the session's live transfers, with each stats interval
    /// (about once a second while a transfer runs).
    FileProgress {
        /// Its session.
        session: SessionId,
        /// Each live transfer.
        transfers: Vec<(
            rtcdesk_files::Offer,
            rtcdesk_files::Direction,
            rtcdesk_files::Progress,
        )>,
    },
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for the accept policy.
    Asking,
    /// Accepted; WebRTC is being set up.
    Connecting,
    /// Video and input flow.
    Connected,
}

/// One controller, as [`Puppet::sessions`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session id.
    pub session: SessionId,
    /// The controller's name.
    pub name: String,
    /// Where it stands.
    pub state: SessionState,
    /// Whether it only watches: the user let it in so, or another session has control.
    pub view_only: bool,
}

/// Everything that can stop the puppet from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded signaling server could not listen (port in use, no permission).
    #[error("could not start the embedded signaling server: {0}")]
    EmbeddedServer(#[from] rtcdesk_signal::server::ServerError),
    /// The signaling server could not be reached or refused us.
    #[error("signaling: {0}")]
    Signal(#[from] rtcdesk_signal::client::ClientError),
    /// The signaling server closed the connection or answered something unexpected before
    /// giving us a code.
    #[error("the signaling server did not register us: {0}")]
    NotRegistered(String),
    /// The screen could not be captured or the encoder could not start.
    #[error("video: {0}")]
    Media(#[from] rtcdesk_media::Error),
    /// The input injector could not start (no X server for enigo).
    #[error("input: {0}")]
    Input(#[from] rtcdesk_input::Error),
    /// The recording file could not be created.
    #[error("cannot create the recording {path}: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A configuration value is unusable (size, fps).
    #[error("bad configuration: {0}")]
    Config(String),
    /// Unattended access is not set up, or its files cannot be read.
    #[error("unattended access: {0}")]
    Unattended(String),
    /// A background thread could not be started.
    #[error("could not start a thread: {0}")]
    Thread(std::io::Error),
    /// The sockets the sessions run on could not be bound.
    #[error("network: {0}")]
    Peer(#[from] rtcdesk_peer::Error),
}

/// State the running puppet shares with its handle.
#[derive(Debug)]
struct Shared {
    sessions: Mutex<Vec<SessionInfo>>,
    /// The video fan-out, which also records frame timings.
    hub: Arc<pipeline::VideoHub>,
}

/// A running puppet. Drop it only after [`Puppet::shutdown`]; dropping it without that stops
/// the loop abruptly (controllers notice by their own timeouts).
pub struct Puppet {
    code: watch::Receiver<rtcdesk_pake::PairingCode>,
    signal_url: String,
    lan_urls: Vec<String>,
    events: mpsc::Receiver<PuppetEvent>,
    synthetic: Option<SyntheticDesktop>,
    shared: Arc<Shared>,
    chat: ChatSender,
    files: PuppetFiles,
    controls: PuppetControls,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    server: Option<rtcdesk_signal::server::Server>,
}

impl std::fmt::Debug for Puppet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Puppet")
            .field("code", &*self.code.borrow())
            .field("signal_url", &self.signal_url)
            .finish_non_exhaustive()
    }
}

impl Puppet {
    /// Starts everything: the embedded signaling server (if asked), the capture, encoder and
    /// injector threads, and the loop that registers and serves controllers. Returns once the
    /// puppet is registered and has its control code.
    pub async fn start(config: PuppetConfig) -> Result<Puppet, Error> {
        run::start(config).await
    }

    /// The control code a controller types now (it changes when the puppet re-registers, see
    /// [`PuppetEvent::Registered`]); for a room member ([`PuppetConfig::join`]), the room code.
    pub fn control_code(&self) -> ControlCode {
        self.code.borrow().route
    }

    /// The whole code to show and to give a native controller: the control code and the three
    /// digits the signaling server never sees (`123 456 789 012`), with which the session is
    /// verified end to end. A room member's code has no secret digits.
    pub fn pairing_code(&self) -> rtcdesk_pake::PairingCode {
        *self.code.borrow()
    }

    /// The signaling URL a controller on this machine uses (`ws://127.0.0.1:PORT/` for the
    /// embedded server), or the configured URL.
    pub fn signal_url(&self) -> &str {
        &self.signal_url
    }

    /// For the embedded server: a URL per non-loopback interface address, for controllers on
    /// other machines of the LAN. Empty with an external server or a loopback-only listener.
    pub fn lan_urls(&self) -> &[String] {
        &self.lan_urls
    }

    /// The next event; `None` after shutdown. Events are dropped (and logged) when nobody reads
    /// them and 256 are waiting.
    pub async fn next_event(&mut self) -> Option<PuppetEvent> {
        self.events.recv().await
    }

    /// The synthetic desktop being shared, when the source is synthetic: tests compare the
    /// video with it and check that input reached it.
    pub fn synthetic_desktop(&self) -> Option<SyntheticDesktop> {
        self.synthetic.clone()
    }

    /// Where the time of each frame encoded since the last call went (the newest 4096 at most):
    /// for benchmarks and diagnostics of latency inside the puppet.
    pub fn take_frame_timings(&self) -> Vec<FrameTiming> {
        self.shared.hub.take_timings()
    }

    /// A sender for chat lines to every controller, for any thread.
    pub fn chat_sender(&self) -> ChatSender {
        self.chat.clone()
    }

    /// A handle for sending files to controllers and answering their offers, for any thread.
    pub fn files(&self) -> PuppetFiles {
        self.files.clone()
    }

    /// A handle for the puppet's user's say over sessions (answer a request, disconnect, switch
    /// view-only, a new code), for any thread.
    pub fn controls(&self) -> PuppetControls {
        self.controls.clone()
    }

    /// The controllers asking, connecting or connected now.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.controls.sessions()
    }

    /// Leaves cleanly: sends `leave` for every session, closes every WebRTC session (releasing
    /// what each controller held), stops the threads, and stops the embedded server.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl Drop for Puppet {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
