//! A TURN client (RFC 8656, messages per RFC 8489) as a sans-IO state machine: one
//! [`Allocation`] on one TURN server gives a relayed address that peers can reach when no direct
//! path works.
//!
//! Like [`Client`](crate::Client), an [`Allocation`] never touches a socket or a clock. The
//! caller starts it ([`Allocation::start_allocate`]), sends whatever [`Allocation::poll_transmit`]
//! returns to the TURN server, feeds everything the server sends to
//! [`Allocation::handle_datagram`] (which hands back peers' datagrams), calls
//! [`Allocation::handle_timeout`] at [`Allocation::poll_timeout`], and reads [`TurnEvent`]s.
//! Over TCP the server's byte stream goes through a [`StreamFramer`] first.
//!
//! The rules it keeps:
//! - **Allocate** with long-term credentials: the first request goes without them; the 401
//!   challenge gives REALM and NONCE; the retry carries USERNAME, REALM, NONCE and
//!   MESSAGE-INTEGRITY (MESSAGE-INTEGRITY-SHA256, with PASSWORD-ALGORITHM(S) echoed, when the
//!   401 offered PASSWORD-ALGORITHMS, RFC 8489 §9.2). A 401 to a request that had credentials is
//!   [`TurnError::Unauthorized`], naming the server. 486 and 508 are [`TurnError::Quota`].
//! - **438 Stale Nonce** on any request: retried at once with the response's new nonce (at most
//!   [`MAX_STALE_RETRIES`] times in a row per request).
//! - Responses to authenticated requests are accepted only with a valid MESSAGE-INTEGRITY(-SHA256)
//!   (constant-time check); others are dropped as forgeries and the request keeps retransmitting.
//! - **Refresh** 60 s before the granted lifetime ends (at half the lifetime when it is shorter
//!   than 2 minutes); [`Allocation::close`] sends Refresh with LIFETIME 0 and ends in
//!   [`TurnEvent::Closed`].
//! - **Permissions** per peer IP address, created by the first [`Allocation::send_to`]; datagrams
//!   wait (at most [`MAX_QUEUED_PER_PEER`] per peer, oldest dropped) until the permission is in
//!   place. A permission is refreshed every 4 minutes while used (sent to or received from) and
//!   dropped when unused for those 4 minutes (the server's lasts 5).
//! - **Channels**: once a peer's permission is in place, a ChannelBind gives it a channel
//!   (0x4000 upwards, never reused); until it is bound data goes as Send indications, afterwards
//!   as ChannelData. Bindings are refreshed every 9 minutes while used (the server's last 10).
//!   [`AllocationConfig::use_channels`] turns channels off.
//! - Over UDP requests are retransmitted as [`TransactionConfig`] says; over TCP they are sent
//!   once and time out after 39.5 s (RFC 8489 §6.2.2), and ChannelData is padded to 4 bytes.
//!
//! ```
//! use std::time::Instant;
//! use rtcdesk_stun::turn::{Allocation, AllocationConfig, Received, TurnEvent};
//!
//! let server = "192.0.2.1:3478".parse().unwrap();
//! let now = Instant::now();
//! let mut allocation = Allocation::new(AllocationConfig::new(server, "user", "secret")).unwrap();
//! allocation.start_allocate(now).unwrap();
//! while let Some(transmit) = allocation.poll_transmit() {
//!     // socket.send_to(&transmit.contents, transmit.destination)
//!     # let _ = transmit;
//! }
//! // For each datagram from the server:
//! //     if let Received::Data { peer, payload } = allocation.handle_datagram(&bytes, now) { … }
//! // At allocation.poll_timeout(): allocation.handle_timeout(now).
//! while let Some(event) = allocation.poll_event() {
//!     if let TurnEvent::Allocated { relayed, .. } = event {
//!         println!("peers reach us at {relayed}");
//!     }
//! }
//! ```

mod channel_data;
mod credentials;
mod framing;
mod url;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

pub use channel_data::{
    encode_channel_data, looks_like_channel_data, parse_channel_data, ChannelData,
    CHANNEL_HEADER_LEN, CHANNEL_MAX, CHANNEL_MIN,
};
pub use credentials::{rest_credentials, TurnCredentials};
pub use framing::{StreamFramer, MAX_FRAME, MAX_STREAM_BUFFER};
pub use url::{StunUrl, TurnTransport, TurnUrl, DEFAULT_PORT, DEFAULT_TLS_PORT};

use crate::checksum::sha256;
use crate::message::{
    looks_like_stun, method, parse, verify_message_integrity, verify_message_integrity_sha256,
    Attribute, Class, Message, PasswordAlgorithm, TransactionId, PASSWORD_ALGORITHM_MD5,
    PASSWORD_ALGORITHM_SHA256,
};
use crate::transaction::{TransactionConfig, Transmit};

/// How long a permission lives on the server (RFC 8656 §9).
pub const PERMISSION_LIFETIME: Duration = Duration::from_secs(300);
/// When a used permission is refreshed: a minute before the server would drop it.
pub const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// How long a channel binding lives on the server (RFC 8656 §12).
pub const CHANNEL_LIFETIME: Duration = Duration::from_secs(600);
/// When a used channel binding is refreshed: a minute before the server would drop it.
pub const CHANNEL_REFRESH: Duration = Duration::from_secs(540);
/// How many 438 answers in a row one request may get before the allocation gives up.
pub const MAX_STALE_RETRIES: u32 = 3;
/// How many datagrams wait for one peer's permission; beyond that the oldest is dropped.
pub const MAX_QUEUED_PER_PEER: usize = 32;
/// How many transmits may wait for [`Allocation::poll_transmit`] before sends are refused.
pub const MAX_QUEUED_TRANSMITS: usize = 4096;
/// The largest datagram [`Allocation::send_to`] relays: what DATA and ChannelData can carry.
pub const MAX_PAYLOAD: usize = 65_535 - 64;
/// RFC 8489 §6.2.2: a request over a reliable transport fails after Ti = 39.5 s.
const RELIABLE_TRANSACTION_TIMEOUT: Duration = Duration::from_millis(39_500);
/// IANA protocol number of UDP, the only relayed transport asked for.
const PROTOCOL_UDP: u8 = 17;

/// Everything that can go wrong with a TURN allocation, URL or frame. Server errors name the
/// server, so a log line says which TURN server to look at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TurnError {
    /// The server rejected our credentials (a 401 to a request that carried them).
    #[error("TURN server {server} rejected user {username:?} in realm {realm:?}: wrong user name or password, or expired credentials")]
    Unauthorized {
        /// The TURN server.
        server: SocketAddr,
        /// The user name we sent.
        username: String,
        /// The realm it challenged us with.
        realm: String,
    },
    /// The server has no room for us: 486 Allocation Quota Reached or 508 Insufficient Capacity.
    #[error("TURN server {server} is full: {code} {reason}")]
    Quota {
        /// The TURN server.
        server: SocketAddr,
        /// 486 or 508.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Any other error response.
    #[error("TURN server {server} refused {method}: {code} {reason}")]
    Refused {
        /// The TURN server.
        server: SocketAddr,
        /// The request's method name.
        method: &'static str,
        /// The ERROR-CODE number.
        code: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// No response after every retransmission.
    #[error("TURN server {server} did not answer {method}")]
    TimedOut {
        /// The TURN server.
        server: SocketAddr,
        /// The request's method name.
        method: &'static str,
    },
    /// The server no longer knows our allocation (437 to a Refresh).
    #[error("TURN server {server} no longer has our allocation")]
    AllocationGone {
        /// The TURN server.
        server: SocketAddr,
    },
    /// A response that lacks what the RFC makes mandatory.
    #[error("TURN server {server} sent a bad {method} response: {reason}")]
    BadResponse {
        /// The TURN server.
        server: SocketAddr,
        /// The request's method name.
        method: &'static str,
        /// What is missing or wrong.
        reason: &'static str,
    },
    /// The server answered 438 Stale Nonce more than [`MAX_STALE_RETRIES`] times in a row.
    #[error("TURN server {server} keeps calling our nonce stale")]
    StaleNonceLoop {
        /// The TURN server.
        server: SocketAddr,
    },
    /// [`Allocation::start_allocate`] was called twice.
    #[error("the allocation was already started")]
    AlreadyStarted,
    /// [`Allocation::send_to`] before [`TurnEvent::Allocated`] or after close or failure.
    #[error("no relayed address: the allocation is not (or no longer) in place")]
    NotAllocated,
    /// The datagram is larger than a TURN message can relay.
    #[error("a {len}-byte datagram is larger than TURN relays ({MAX_PAYLOAD} bytes)")]
    PayloadTooLarge {
        /// The datagram's size.
        len: usize,
    },
    /// [`AllocationConfig::max_peers`] permissions exist already.
    #[error("already {max} peers on this allocation")]
    TooManyPeers {
        /// The limit.
        max: usize,
    },
    /// [`MAX_QUEUED_TRANSMITS`] transmits wait: the caller is not draining `poll_transmit`.
    #[error("{MAX_QUEUED_TRANSMITS} transmits wait to be sent; drain poll_transmit")]
    Backlog,
    /// A malformed ChannelData frame.
    #[error("bad ChannelData frame: {reason}")]
    BadChannelData {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A TCP stream from the server holds something that is not a TURN frame; close it.
    #[error("TURN stream out of step: {reason}")]
    BadStream {
        /// What was found.
        reason: &'static str,
    },
    /// The stream framer's buffer is full.
    #[error("TURN stream buffer full ({limit} bytes)")]
    StreamOverflow {
        /// The bound.
        limit: usize,
    },
    /// A `turn:`/`turns:` URL that does not parse.
    #[error("bad TURN URL {url:?}: {reason}")]
    BadUrl {
        /// The URL (its first 200 characters).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The OS random source failed, so no safe transaction ids could be made.
    #[error("no randomness for transaction ids: {0}")]
    Random(String),
}

/// What an [`Allocation`] needs to know. Its `Debug` leaves the password out, so configs and
/// allocations can be logged.
#[derive(Clone)]
pub struct AllocationConfig {
    /// The TURN server's resolved address.
    pub server: SocketAddr,
    /// How the caller reaches it: UDP datagrams or a TCP/TLS stream.
    pub transport: TurnTransport,
    /// Long-term credential user name (for REST credentials `EXPIRY:LABEL`).
    pub username: String,
    /// Long-term credential password.
    pub password: String,
    /// The lifetime to ask for; the server may grant less. `None` leaves it to the server.
    pub lifetime: Option<Duration>,
    /// Whether to bind channels (ChannelData's 4-byte header) or only use Send indications.
    pub use_channels: bool,
    /// How many peer addresses (permissions) one allocation serves at most.
    pub max_peers: usize,
    /// Retransmission parameters (UDP) and SOFTWARE.
    pub transaction: TransactionConfig,
}

impl std::fmt::Debug for AllocationConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllocationConfig")
            .field("server", &self.server)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .field("use_channels", &self.use_channels)
            .field("max_peers", &self.max_peers)
            .field("transaction", &self.transaction)
            .finish()
    }
}

impl AllocationConfig {
    /// UDP to `server` with these credentials, 10-minute lifetime, channels on, 64 peers.
    pub fn new(server: SocketAddr, username: &str, password: &str) -> Self {
        Self {
            server,
            transport: TurnTransport::Udp,
            username: username.to_string(),
            password: password.to_string(),
            lifetime: Some(Duration::from_secs(600)),
            use_channels: true,
            max_peers: 64,
            transaction: TransactionConfig::default(),
        }
    }
}

/// What an [`Allocation`] has to say. The allocation ends with exactly one of
/// [`TurnEvent::Failed`] or [`TurnEvent::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnEvent {
    /// The relayed address is ours: a relay candidate for ICE.
    Allocated {
        /// The relayed transport address (XOR-RELAYED-ADDRESS).
        relayed: SocketAddr,
        /// Our address as the server saw it (XOR-MAPPED-ADDRESS), a server-reflexive candidate.
        mapped: Option<SocketAddr>,
        /// The lifetime the server granted.
        lifetime: Duration,
    },
    /// A Refresh succeeded.
    Refreshed {
        /// The lifetime the server granted this time.
        lifetime: Duration,
    },
    /// The server now relays datagrams between us and this peer address.
    PermissionCreated {
        /// The peer's IP (permissions ignore the port).
        peer: IpAddr,
    },
    /// The server refused (or never answered) a CreatePermission; datagrams queued for the peer
    /// are dropped and the next [`Allocation::send_to`] tries again.
    PermissionFailed {
        /// The peer's IP.
        peer: IpAddr,
        /// Why.
        error: TurnError,
    },
    /// A channel is bound: datagrams to this peer now go as ChannelData.
    ChannelBound {
        /// The peer's transport address.
        peer: SocketAddr,
        /// Its channel number.
        channel: u16,
    },
    /// A ChannelBind failed; the peer stays on Send indications.
    ChannelFailed {
        /// The peer's transport address.
        peer: SocketAddr,
        /// Why.
        error: TurnError,
    },
    /// The allocation failed for good: nothing more is sent.
    Failed(TurnError),
    /// The allocation was released ([`Allocation::close`]) or never made.
    Closed,
}

/// What [`Allocation::handle_datagram`] made of a datagram from the TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<'a> {
    /// A peer's datagram, unwrapped from ChannelData (borrowed) or a Data indication.
    Data {
        /// The peer's address on the relay's side.
        peer: SocketAddr,
        /// The datagram.
        payload: Cow<'a, [u8]>,
    },
    /// A response to one of our requests; its effects come out as events and transmits.
    Control,
    /// Not for this allocation: not TURN, malformed, an unknown transaction or channel, or a
    /// response whose integrity check failed.
    Ignored,
}

/// Whether a datagram from a TURN server's address is TURN traffic (ChannelData, or a STUN
/// message with a TURN method) rather than something for ICE. Looks at 4–20 bytes only, so a
/// peer can demultiplex every datagram before handing the rest to str0m.
pub fn is_turn_traffic(bytes: &[u8]) -> bool {
    if looks_like_channel_data(bytes) {
        return true;
    }
    if !looks_like_stun(bytes) {
        return false;
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    let method = (kind & 0x000F) | ((kind >> 1) & 0x0070) | ((kind >> 2) & 0x0F80);
    method::is_turn(method)
}

/// The name of a TURN method, for errors and logs.
fn method_name(method: u16) -> &'static str {
    match method {
        method::ALLOCATE => "Allocate",
        method::REFRESH => "Refresh",
        method::CREATE_PERMISSION => "CreatePermission",
        method::CHANNEL_BIND => "ChannelBind",
        method::SEND => "Send",
        method::DATA => "Data",
        _ => "request",
    }
}

/// The request a transaction carries, so it can be rebuilt with a new nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Allocate,
    Refresh { lifetime: u32 },
    CreatePermission { peer: SocketAddr },
    ChannelBind { peer: SocketAddr, channel: u16 },
}

impl Request {
    fn method(self) -> u16 {
        match self {
            Request::Allocate => method::ALLOCATE,
            Request::Refresh { .. } => method::REFRESH,
            Request::CreatePermission { .. } => method::CREATE_PERMISSION,
            Request::ChannelBind { .. } => method::CHANNEL_BIND,
        }
    }
}

#[derive(Debug)]
struct Pending {
    id: TransactionId,
    request: Request,
    bytes: Vec<u8>,
    authenticated: bool,
    requests_sent: u32,
    rto: Duration,
    deadline: Instant,
    stale_retries: u32,
}

/// Long-term credential state learnt from the 401 challenge.
#[derive(Clone)]
struct Auth {
    realm: String,
    nonce: String,
    key: Vec<u8>,
    /// PASSWORD-ALGORITHMS as the server offered them, and our choice; `None` for RFC 5389
    /// servers (MESSAGE-INTEGRITY with the MD5 key).
    algorithms: Option<(Vec<PasswordAlgorithm>, PasswordAlgorithm)>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("realm", &self.realm)
            .field("nonce", &self.nonce)
            .field("key", &"<redacted>")
            .field("algorithms", &self.algorithms)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Allocating,
    Allocated {
        relayed: SocketAddr,
        refresh_at: Instant,
    },
    Closing,
    Done,
}

#[derive(Debug)]
struct Permission {
    /// When the server's permission was (last) installed; `None` while the first request runs.
    installed: Option<Instant>,
    refresh_pending: bool,
    used: bool,
    queued: VecDeque<(SocketAddr, Vec<u8>)>,
}

#[derive(Debug)]
struct Channel {
    number: u16,
    bound_at: Option<Instant>,
    refresh_pending: bool,
    used: bool,
}

/// Transaction ids from one OS-random seed: SHA-256(seed ‖ counter), so ids stay unpredictable
/// without a system call per message and without a failure path after [`Allocation::new`].
struct Ids {
    seed: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ids")
            .field("counter", &self.counter)
            .finish()
    }
}

impl Ids {
    fn next(&mut self) -> TransactionId {
        self.counter += 1;
        let digest = sha256(&[&self.seed, &self.counter.to_be_bytes()]);
        let mut id = [0u8; 12];
        id.copy_from_slice(&digest[..12]);
        TransactionId(id)
    }
}

/// One allocation on one TURN server, with its permissions and channels.
#[derive(Debug)]
pub struct Allocation {
    config: AllocationConfig,
    state: State,
    auth: Option<Auth>,
    mapped: Option<SocketAddr>,
    ids: Ids,
    pending: Vec<Pending>,
    permissions: HashMap<IpAddr, Permission>,
    channels: HashMap<SocketAddr, Channel>,
    channel_peers: HashMap<u16, SocketAddr>,
    next_channel: u16,
    transmits: VecDeque<Transmit>,
    events: VecDeque<TurnEvent>,
}

impl Allocation {
    /// An allocation that has not asked the server anything yet.
    pub fn new(config: AllocationConfig) -> Result<Self, TurnError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| TurnError::Random(e.to_string()))?;
        Ok(Self {
            config,
            state: State::New,
            auth: None,
            mapped: None,
            ids: Ids { seed, counter: 0 },
            pending: Vec::new(),
            permissions: HashMap::new(),
            channels: HashMap::new(),
            channel_peers: HashMap::new(),
            next_channel: CHANNEL_MIN,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// Sends the first Allocate request (without credentials: the server's 401 tells the realm
    /// and nonce to use).
    pub fn start_allocate(&mut self, now: Instant) -> Result<(), TurnError> {
        if self.state != State::New {
            return Err(TurnError::AlreadyStarted);
        }
        self.state = State::Allocating;
        self.send_request(Request::Allocate, now, 0);
        Ok(())
    }

    /// The TURN server this allocation is on.
    pub fn server(&self) -> SocketAddr {
        self.config.server
    }

    /// The transport to the server, as configured.
    pub fn transport(&self) -> TurnTransport {
        self.config.transport
    }

    /// The relayed address once [`TurnEvent::Allocated`] came, until close or failure.
    pub fn relayed_address(&self) -> Option<SocketAddr> {
        match self.state {
            State::Allocated { relayed, .. } => Some(relayed),
            _ => None,
        }
    }

    /// Our address as the server saw it, from the Allocate response.
    pub fn mapped_address(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// The channel bound to `peer`, if the binding succeeded.
    pub fn channel(&self, peer: SocketAddr) -> Option<u16> {
        self.channels
            .get(&peer)
            .filter(|channel| channel.bound_at.is_some())
            .map(|channel| channel.number)
    }

    /// Whether the allocation has ended ([`TurnEvent::Closed`] or [`TurnEvent::Failed`] is out).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Relays `payload` to `peer`: as ChannelData when a channel is bound, as a Send indication
    /// when only the permission is in place, or queued while the permission is being created
    /// (the first send to a new peer IP starts the CreatePermission).
    pub fn send_to(
        &mut self,
        peer: SocketAddr,
        payload: &[u8],
        now: Instant,
    ) -> Result<(), TurnError> {
        if !matches!(self.state, State::Allocated { .. }) {
            return Err(TurnError::NotAllocated);
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(TurnError::PayloadTooLarge { len: payload.len() });
        }
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            return Err(TurnError::Backlog);
        }
        let ip = peer.ip();
        let Some(permission) = self.permissions.get_mut(&ip) else {
            if self.permissions.len() >= self.config.max_peers {
                return Err(TurnError::TooManyPeers {
                    max: self.config.max_peers,
                });
            }
            let mut queued = VecDeque::new();
            queued.push_back((peer, payload.to_vec()));
            self.permissions.insert(
                ip,
                Permission {
                    installed: None,
                    refresh_pending: false,
                    used: false,
                    queued,
                },
            );
            self.send_request(Request::CreatePermission { peer }, now, 0);
            return Ok(());
        };
        if permission.installed.is_none() {
            if permission.queued.len() >= MAX_QUEUED_PER_PEER {
                permission.queued.pop_front();
            }
            permission.queued.push_back((peer, payload.to_vec()));
            return Ok(());
        }
        permission.used = true;
        self.relay(peer, payload, now);
        Ok(())
    }

    /// Wraps one datagram for a peer whose permission is in place, binding a channel if none is.
    fn relay(&mut self, peer: SocketAddr, payload: &[u8], now: Instant) {
        match self.channels.get_mut(&peer) {
            Some(channel) if channel.bound_at.is_some() => {
                channel.used = true;
                let pad = self.config.transport == TurnTransport::Tcp;
                let contents = encode_channel_data(channel.number, payload, pad);
                self.push_transmit(contents);
                return;
            }
            Some(_) => {}
            None => {
                self.push_send_indication(peer, payload);
                return self.bind_channel(peer, now);
            }
        }
        self.push_send_indication(peer, payload);
    }

    fn push_send_indication(&mut self, peer: SocketAddr, payload: &[u8]) {
        let indication = Message {
            class: Class::Indication,
            method: method::SEND,
            transaction_id: self.ids.next(),
            attributes: vec![
                Attribute::XorPeerAddress(peer),
                Attribute::Data(payload.to_vec()),
            ],
        };
        self.push_transmit(indication.encode(None));
    }

    fn bind_channel(&mut self, peer: SocketAddr, now: Instant) {
        if !self.config.use_channels || self.channels.len() >= self.config.max_peers {
            return;
        }
        // Numbers are never reused: RFC 8656 §12 keeps a number tied to its peer for 5 minutes
        // after the binding expires, and 4,096 numbers outlast any session.
        if self.next_channel > CHANNEL_MAX {
            return;
        }
        let number = self.next_channel;
        self.next_channel += 1;
        self.channels.insert(
            peer,
            Channel {
                number,
                bound_at: None,
                refresh_pending: false,
                used: false,
            },
        );
        self.channel_peers.insert(number, peer);
        self.send_request(
            Request::ChannelBind {
                peer,
                channel: number,
            },
            now,
            0,
        );
    }

    fn push_transmit(&mut self, contents: Vec<u8>) {
        self.transmits.push_back(Transmit {
            destination: self.config.server,
            contents,
        });
    }

    /// Offers one datagram (or one frame from the [`StreamFramer`]) received from the TURN
    /// server. Peers' data comes back unwrapped; responses update the allocation.
    pub fn handle_datagram<'a>(&mut self, bytes: &'a [u8], now: Instant) -> Received<'a> {
        if looks_like_channel_data(bytes) {
            return self.handle_channel_data(bytes);
        }
        let Ok(message) = parse(bytes) else {
            return Received::Ignored;
        };
        match message.class {
            Class::Indication if message.method == method::DATA => {
                let (Some(peer), Some(data)) = (message.peer_address(), message.data()) else {
                    return Received::Ignored;
                };
                if let Some(permission) = self.permissions.get_mut(&peer.ip()) {
                    permission.used = true;
                }
                Received::Data {
                    peer,
                    payload: Cow::Owned(data.to_vec()),
                }
            }
            Class::SuccessResponse | Class::ErrorResponse => {
                self.handle_response(&message, bytes, now)
            }
            _ => Received::Ignored,
        }
    }

    fn handle_channel_data<'a>(&mut self, bytes: &'a [u8]) -> Received<'a> {
        let Ok(frame) = parse_channel_data(bytes) else {
            return Received::Ignored;
        };
        let Some(&peer) = self.channel_peers.get(&frame.channel) else {
            return Received::Ignored;
        };
        if let Some(channel) = self.channels.get_mut(&peer) {
            channel.used = true;
        }
        if let Some(permission) = self.permissions.get_mut(&peer.ip()) {
            permission.used = true;
        }
        Received::Data {
            peer,
            payload: Cow::Borrowed(frame.data),
        }
    }

    fn handle_response(
        &mut self,
        message: &Message,
        bytes: &[u8],
        now: Instant,
    ) -> Received<'static> {
        let Some(index) = self
            .pending
            .iter()
            .position(|p| p.id == message.transaction_id && p.request.method() == message.method)
        else {
            return Received::Ignored;
        };
        if self.pending[index].authenticated && !self.integrity_ok(message, bytes) {
            return Received::Ignored;
        }
        let pending = self.pending.swap_remove(index);
        if message.class == Class::SuccessResponse {
            self.on_success(pending.request, message, now);
            return Received::Control;
        }
        let (code, reason) = message
            .error_code()
            .map(|e| (e.code, e.reason.clone()))
            .unwrap_or((0, String::new()));
        match code {
            401 if !pending.authenticated => match self.learn_challenge(message) {
                Ok(()) => self.send_request(pending.request, now, 0),
                Err(error) => self.on_failure(pending.request, error),
            },
            401 => {
                let error = TurnError::Unauthorized {
                    server: self.config.server,
                    username: self.config.username.clone(),
                    realm: self
                        .auth
                        .as_ref()
                        .map(|a| a.realm.clone())
                        .unwrap_or_default(),
                };
                self.on_failure(pending.request, error);
            }
            438 => {
                let nonce = message.nonce().map(str::to_string);
                match (nonce, self.auth.as_mut()) {
                    (Some(nonce), Some(auth)) if pending.stale_retries < MAX_STALE_RETRIES => {
                        auth.nonce = nonce;
                        self.send_request(pending.request, now, pending.stale_retries + 1);
                    }
                    (Some(_), Some(_)) => {
                        let error = TurnError::StaleNonceLoop {
                            server: self.config.server,
                        };
                        self.on_failure(pending.request, error);
                    }
                    _ => {
                        let error = self.bad_response(pending.request, "438 without a NONCE");
                        self.on_failure(pending.request, error);
                    }
                }
            }
            _ => self.on_error_response(pending.request, code, reason),
        }
        Received::Control
    }

    /// Checks the response's MESSAGE-INTEGRITY-SHA256 or MESSAGE-INTEGRITY with our key.
    fn integrity_ok(&self, message: &Message, bytes: &[u8]) -> bool {
        let Some(auth) = &self.auth else {
            return false;
        };
        let has = |f: fn(&Attribute) -> bool| message.attributes.iter().any(f);
        if has(|a| matches!(a, Attribute::MessageIntegritySha256(_))) {
            verify_message_integrity_sha256(bytes, &auth.key) == Ok(true)
        } else if has(|a| matches!(a, Attribute::MessageIntegrity(_))) {
            verify_message_integrity(bytes, &auth.key) == Ok(true)
        } else {
            // An error response the server could not sign (e.g. 400 to a request it could not
            // parse) carries no integrity; a success must.
            message.class == Class::ErrorResponse
        }
    }

    /// Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 and derives the key.
    fn learn_challenge(&mut self, message: &Message) -> Result<(), TurnError> {
        let (Some(realm), Some(nonce)) = (message.realm(), message.nonce()) else {
            return Err(self.bad_response(Request::Allocate, "401 without REALM and NONCE"));
        };
        let algorithms = message.password_algorithms().and_then(|offered| {
            offered
                .iter()
                .find(|a| {
                    a.algorithm == PASSWORD_ALGORITHM_SHA256
                        || a.algorithm == PASSWORD_ALGORITHM_MD5
                })
                .map(|chosen| (offered.to_vec(), chosen.clone()))
        });
        let algorithm = algorithms
            .as_ref()
            .map_or(PASSWORD_ALGORITHM_MD5, |(_, chosen)| chosen.algorithm);
        let key = credentials::long_term_key(
            algorithm,
            &self.config.username,
            realm,
            &self.config.password,
        );
        self.auth = Some(Auth {
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            key,
            algorithms,
        });
        Ok(())
    }

    fn bad_response(&self, request: Request, reason: &'static str) -> TurnError {
        TurnError::BadResponse {
            server: self.config.server,
            method: method_name(request.method()),
            reason,
        }
    }

    fn on_success(&mut self, request: Request, message: &Message, now: Instant) {
        match request {
            Request::Allocate => {
                if self.state != State::Allocating {
                    return;
                }
                let Some(relayed) = message.relayed_address() else {
                    let error = self.bad_response(request, "no XOR-RELAYED-ADDRESS");
                    return self.fail(error);
                };
                let lifetime = self.granted(message);
                self.mapped = message.mapped_address();
                self.state = State::Allocated {
                    relayed,
                    refresh_at: now + refresh_delay(lifetime),
                };
                self.events.push_back(TurnEvent::Allocated {
                    relayed,
                    mapped: self.mapped,
                    lifetime,
                });
            }
            Request::Refresh { lifetime: 0 } => self.finish_close(),
            Request::Refresh { .. } => {
                let lifetime = self.granted(message);
                if let State::Allocated { refresh_at, .. } = &mut self.state {
                    *refresh_at = now + refresh_delay(lifetime);
                    self.events.push_back(TurnEvent::Refreshed { lifetime });
                }
            }
            Request::CreatePermission { peer } => {
                let Some(permission) = self.permissions.get_mut(&peer.ip()) else {
                    return;
                };
                let first = permission.installed.is_none();
                permission.installed = Some(now);
                permission.refresh_pending = false;
                if first {
                    permission.used = true;
                    let queued = std::mem::take(&mut permission.queued);
                    self.events
                        .push_back(TurnEvent::PermissionCreated { peer: peer.ip() });
                    for (peer, payload) in queued {
                        self.relay(peer, &payload, now);
                    }
                }
            }
            Request::ChannelBind { peer, channel } => {
                if let Some(bound) = self.channels.get_mut(&peer) {
                    let first = bound.bound_at.is_none();
                    bound.bound_at = Some(now);
                    bound.refresh_pending = false;
                    if first {
                        self.events
                            .push_back(TurnEvent::ChannelBound { peer, channel });
                    }
                }
                // A binding also installs or refreshes the peer's permission (RFC 8656 §12.2).
                if let Some(permission) = self.permissions.get_mut(&peer.ip()) {
                    if permission.installed.is_some() {
                        permission.installed = Some(now);
                    }
                }
            }
        }
    }

    /// The granted LIFETIME, or what we asked for when the response has none.
    fn granted(&self, message: &Message) -> Duration {
        message
            .lifetime()
            .map(|s| Duration::from_secs(u64::from(s)))
            .or(self.config.lifetime)
            .unwrap_or(Duration::from_secs(600))
    }

    fn on_error_response(&mut self, request: Request, code: u16, reason: String) {
        let server = self.config.server;
        let error = match (request, code) {
            (Request::Allocate, 486 | 508) => TurnError::Quota {
                server,
                code,
                reason,
            },
            // A retransmitted Allocate answered after the first one succeeded.
            (Request::Allocate, 437) if self.state != State::Allocating => return,
            (Request::Refresh { .. }, 437) => TurnError::AllocationGone { server },
            _ => TurnError::Refused {
                server,
                method: method_name(request.method()),
                code,
                reason,
            },
        };
        self.on_failure(request, error);
    }

    /// A request failed for good: the allocation or just one peer, depending on the request.
    fn on_failure(&mut self, request: Request, error: TurnError) {
        match request {
            Request::Allocate => self.fail(error),
            Request::Refresh { .. } if self.state == State::Closing => self.finish_close(),
            Request::Refresh { .. } => self.fail(error),
            Request::CreatePermission { peer } => {
                let ip = peer.ip();
                let Some(permission) = self.permissions.get(&ip) else {
                    return;
                };
                if permission.installed.is_none() {
                    self.permissions.remove(&ip);
                    self.forget_channels_of(ip);
                } else if let Some(permission) = self.permissions.get_mut(&ip) {
                    // The old permission stands until it expires; try again at the next refresh.
                    permission.refresh_pending = false;
                }
                self.events
                    .push_back(TurnEvent::PermissionFailed { peer: ip, error });
            }
            Request::ChannelBind { peer, channel } => {
                if self
                    .channels
                    .get(&peer)
                    .is_some_and(|c| c.number == channel)
                {
                    self.channels.remove(&peer);
                }
                self.events
                    .push_back(TurnEvent::ChannelFailed { peer, error });
            }
        }
    }

    fn forget_channels_of(&mut self, ip: IpAddr) {
        self.channels.retain(|peer, _| peer.ip() != ip);
    }

    fn fail(&mut self, error: TurnError) {
        if self.state == State::Done {
            return;
        }
        self.stop();
        self.events.push_back(TurnEvent::Failed(error));
    }

    fn finish_close(&mut self) {
        if self.state == State::Done {
            return;
        }
        self.stop();
        self.events.push_back(TurnEvent::Closed);
    }

    fn stop(&mut self) {
        self.state = State::Done;
        self.pending.clear();
        self.permissions.clear();
        self.channels.clear();
        self.channel_peers.clear();
    }

    /// Releases the allocation: Refresh with LIFETIME 0, then [`TurnEvent::Closed`] when the
    /// server answers (or does not). Before the allocation exists it just stops.
    pub fn close(&mut self, now: Instant) {
        match self.state {
            State::Allocated { .. } => {
                self.pending.clear();
                self.permissions.clear();
                self.channels.clear();
                self.channel_peers.clear();
                self.state = State::Closing;
                self.send_request(Request::Refresh { lifetime: 0 }, now, 0);
            }
            State::New | State::Allocating => self.finish_close(),
            State::Closing | State::Done => {}
        }
    }

    /// Encodes and queues a request with the current credentials, tracking its transaction.
    fn send_request(&mut self, request: Request, now: Instant, stale_retries: u32) {
        let id = self.ids.next();
        let mut attributes = match request {
            Request::Allocate => {
                let mut attributes = vec![Attribute::RequestedTransport(PROTOCOL_UDP)];
                if let Some(lifetime) = self.config.lifetime {
                    attributes.push(Attribute::Lifetime(lifetime_secs(lifetime)));
                }
                attributes
            }
            Request::Refresh { lifetime } => vec![Attribute::Lifetime(lifetime)],
            Request::CreatePermission { peer } => vec![Attribute::XorPeerAddress(peer)],
            Request::ChannelBind { peer, channel } => vec![
                Attribute::ChannelNumber(channel),
                Attribute::XorPeerAddress(peer),
            ],
        };
        if let Some(software) = &self.config.transaction.software {
            attributes.push(Attribute::Software(software.clone()));
        }
        let key = self.auth.as_ref().map(|auth| {
            attributes.push(Attribute::Username(self.config.username.clone()));
            attributes.push(Attribute::Realm(auth.realm.clone()));
            attributes.push(Attribute::Nonce(auth.nonce.clone()));
            match &auth.algorithms {
                Some((offered, chosen)) => {
                    attributes.push(Attribute::PasswordAlgorithms(offered.clone()));
                    attributes.push(Attribute::PasswordAlgorithm(chosen.clone()));
                    attributes.push(Attribute::MessageIntegritySha256(Vec::new()));
                }
                None => attributes.push(Attribute::MessageIntegrity([0; 20])),
            }
            auth.key.clone()
        });
        attributes.push(Attribute::Fingerprint(0));
        let bytes = Message {
            class: Class::Request,
            method: request.method(),
            transaction_id: id,
            attributes,
        }
        .encode(key.as_deref());
        self.push_transmit(bytes.clone());
        let rto = self.config.transaction.initial_rto;
        let first_wait = match self.config.transport {
            TurnTransport::Tcp => RELIABLE_TRANSACTION_TIMEOUT,
            TurnTransport::Udp => self.wait_after(1, rto),
        };
        self.pending.push(Pending {
            id,
            request,
            bytes,
            authenticated: key.is_some(),
            requests_sent: 1,
            rto,
            deadline: now + first_wait,
            stale_retries,
        });
    }

    /// How long to wait after the `requests_sent`-th request (RFC 8489 §6.2.1).
    fn wait_after(&self, requests_sent: u32, rto: Duration) -> Duration {
        let config = &self.config.transaction;
        if requests_sent >= config.max_requests {
            config.initial_rto * config.last_wait_factor
        } else {
            rto
        }
    }

    /// Advances time: retransmits, fails exhausted requests, refreshes the allocation,
    /// permissions and channels that are due, and drops unused permissions and channels.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.retransmit(now);
        if let State::Allocated { refresh_at, .. } = &mut self.state {
            if *refresh_at <= now {
                // Parked far ahead until the response sets the next refresh time.
                *refresh_at = now + Duration::from_secs(86_400 * 365);
                let lifetime = self.config.lifetime.map_or(600, lifetime_secs);
                self.send_request(Request::Refresh { lifetime }, now, 0);
            }
        }
        if matches!(self.state, State::Allocated { .. }) {
            self.refresh_permissions(now);
            self.refresh_channels(now);
        }
    }

    fn retransmit(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.pending.len() {
            let pending = &self.pending[index];
            if pending.deadline > now {
                index += 1;
                continue;
            }
            let exhausted = self.config.transport == TurnTransport::Tcp
                || pending.requests_sent >= self.config.transaction.max_requests;
            if exhausted {
                let done = self.pending.swap_remove(index);
                let error = TurnError::TimedOut {
                    server: self.config.server,
                    method: method_name(done.request.method()),
                };
                self.on_failure(done.request, error);
                if self.state == State::Done {
                    return;
                }
                continue;
            }
            let requests_sent = pending.requests_sent + 1;
            let rto = pending.rto * 2;
            let wait = self.wait_after(requests_sent, rto);
            let pending = &mut self.pending[index];
            pending.requests_sent = requests_sent;
            pending.rto = rto;
            pending.deadline = now + wait;
            let bytes = pending.bytes.clone();
            self.push_transmit(bytes);
            index += 1;
        }
    }

    fn refresh_permissions(&mut self, now: Instant) {
        let mut due = Vec::new();
        let mut unused = Vec::new();
        for (ip, permission) in &self.permissions {
            let Some(installed) = permission.installed else {
                continue;
            };
            if permission.refresh_pending || installed + PERMISSION_REFRESH > now {
                continue;
            }
            if permission.used {
                due.push(*ip);
            } else {
                unused.push(*ip);
            }
        }
        for ip in unused {
            self.permissions.remove(&ip);
            self.forget_channels_of(ip);
        }
        for ip in due {
            if let Some(permission) = self.permissions.get_mut(&ip) {
                permission.used = false;
                permission.refresh_pending = true;
            }
            let peer = SocketAddr::new(ip, 0);
            self.send_request(Request::CreatePermission { peer }, now, 0);
        }
    }

    fn refresh_channels(&mut self, now: Instant) {
        let mut due = Vec::new();
        let mut unused = Vec::new();
        for (peer, channel) in &self.channels {
            let Some(bound_at) = channel.bound_at else {
                continue;
            };
            if channel.refresh_pending || bound_at + CHANNEL_REFRESH > now {
                continue;
            }
            if channel.used {
                due.push((*peer, channel.number));
            } else {
                unused.push(*peer);
            }
        }
        for peer in unused {
            self.channels.remove(&peer);
        }
        for (peer, number) in due {
            if let Some(channel) = self.channels.get_mut(&peer) {
                channel.used = false;
                channel.refresh_pending = true;
            }
            self.send_request(
                Request::ChannelBind {
                    peer,
                    channel: number,
                },
                now,
                0,
            );
        }
    }

    /// The next datagram (or stream frame) to send to the TURN server, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When [`Allocation::handle_timeout`] must be called next; `None` once the allocation is
    /// done or before it started.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let requests = self.pending.iter().map(|p| p.deadline);
        let refresh = match self.state {
            State::Allocated { refresh_at, .. } => Some(refresh_at),
            _ => None,
        };
        let permissions = self
            .permissions
            .values()
            .filter(|p| !p.refresh_pending)
            .filter_map(|p| p.installed.map(|at| at + PERMISSION_REFRESH));
        let channels = self
            .channels
            .values()
            .filter(|c| !c.refresh_pending)
            .filter_map(|c| c.bound_at.map(|at| at + CHANNEL_REFRESH));
        requests
            .chain(refresh)
            .chain(permissions)
            .chain(channels)
            .min()
    }
}

/// When to refresh an allocation granted for `lifetime`: a minute early, or at half time for
/// lifetimes under 2 minutes.
fn refresh_delay(lifetime: Duration) -> Duration {
    if lifetime >= Duration::from_secs(120) {
        lifetime - Duration::from_secs(60)
    } else {
        lifetime / 2
    }
}

fn lifetime_secs(lifetime: Duration) -> u32 {
    u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
