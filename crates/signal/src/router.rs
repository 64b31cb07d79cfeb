//! The sans-IO signaling router: every rule of signaling protocol v1, with no sockets and no clock.
//!
//! The shell tells the [`Router`] what happened — a connection opened
//! ([`handle_open`](Router::handle_open)), a text frame arrived
//! ([`handle_text`](Router::handle_text)), a connection showed it is alive
//! ([`handle_alive`](Router::handle_alive)), a connection closed
//! ([`handle_close`](Router::handle_close)), time passed
//! ([`handle_timeout`](Router::handle_timeout)) — always with the current time, and then drains
//! [`poll_output`](Router::poll_output) for what to do: send a text frame, ping, or close a
//! connection with a WebSocket close code. [`poll_timeout`](Router::poll_timeout) says when to call
//! `handle_timeout` next.
//!
//! # Choices where the protocol is silent
//!
//! - **Roles are per session, not per connection.** A connection that sent `register` is a puppet
//!   and has a control code; any connection (a puppet too) may `connect` to another puppet's code.
//!   Connecting to one's own code is `not_allowed`.
//! - **Consent:** `accept` / `reject` only from the session's puppet end (the controller end gets
//!   `not_allowed`), and only while the session is ringing (accepting twice is `not_allowed`).
//! - **Relay:** `offer` / `answer` / `candidate` only between the session's two ends and only after
//!   `accept`; before it they get `not_allowed`. A connection that is not an end of the session gets
//!   `unknown_session`, exactly as if the session did not exist, so ids cannot be probed.
//! - **Leave** by either end, at any stage (ringing too), ends the session: the other end gets
//!   `left`. A connection that closes or dies ends all its sessions the same way.
//! - **Re-register** gives a fresh code and retires the old one at once; sessions already made
//!   through the old code go on. The puppet's name is replaced.
//! - **Code expiry:** a code is valid for [`RouterConfig::code_lifetime`] (sent as `expires_in`);
//!   after that `connect` with it is `unknown_code` and the puppet should `register` again.
//!   Sessions outlive the code.
//! - **Failed connects** (unknown or expired code, or a malformed `code` field) are counted per IP
//!   address in a fixed window of [`RouterConfig::failed_connect_window`] that starts at the first
//!   failure. Up to [`RouterConfig::max_failed_connects`] of them get `unknown_code` /
//!   `bad_message`; the next one, and every `connect` from that address until the window ends,
//!   gets `rate_limited` and its connection is closed (1008), as abuse is in the design.
//! - **Floods:** a token bucket per connection ([`RouterConfig::flood_rate`] frames per second,
//!   burst [`RouterConfig::flood_burst`]; text, binary and control frames alike); a connection
//!   that empties it is closed (1008).
//! - **Limits:** an address over [`RouterConfig::max_connections_per_address`] gets `busy` and is
//!   closed (1013, try again later); a `connect` that would put either end over
//!   [`RouterConfig::max_sessions_per_connection`] gets `busy`.
//! - **Liveness:** every [`RouterConfig::ping_interval`] the router checks each connection,
//!   pings it when it has been idle for half an interval or more, and closes it when it has been
//!   silent for [`RouterConfig::dead_timeout`] (1001). So a dead end is noticed within
//!   `dead_timeout + ping_interval` of its last frame, and a live one, whose pong always lands
//!   less than one interval before its next check, is never near the dead timeout however late
//!   the timer fires (the checks are spread over the interval in slices, so pings to many
//!   connections do not leave in one burst).
//! - **Watchers:** a puppet that registered with `watchers: false` has at most one established
//!   session (accepted, or a room membership) at a time: a `connect` to it then gets `busy`, its
//!   own `accept` of a second session gets `busy` (the session stays ringing; it may still
//!   reject), and so does its `room_join`. Without the field (v1 puppets) any number may connect.
//! - Messages only the server sends (`registered`, `incoming`, …, `error`) are `not_allowed` from
//!   clients.
//! - **Device IDs** (unattended access, SIGNALING.md § 3.3): a `register` with `device` claims a
//!   permanent ID instead of a one-time code. The first claim binds the ID to the SHA-256 of its
//!   token; later claims with another token are `not_allowed`, so nobody who merely learned an
//!   ID can take it over while its puppet is offline. A claim with the right token from a new
//!   connection moves the ID there (a service that reconnected before its old connection timed
//!   out). An ID that is live as a one-time code or room code is `not_allowed`; one-time and room
//!   codes are never drawn from bound IDs. Bindings live in memory, at most
//!   [`RouterConfig::max_devices`], and are forgotten [`RouterConfig::device_idle_lifetime`]
//!   after their puppet was last registered; after a server restart the next claim binds anew.
//!
//! # Rooms
//!
//! - **A room** belongs to the connection that sent `room_create` (its proctor), at most
//!   [`RouterConfig::max_rooms_per_connection`] at once (`busy` beyond). Its code is drawn like a
//!   control code, from the same space, unique among live control codes and room codes, valid
//!   for [`RouterConfig::code_lifetime`]. `connect` with a room code is `unknown_code`, and so is
//!   `room_join` with a control code.
//! - **Joining** (`room_join`) is the puppet's consent: the server makes an established session
//!   between the puppet (its puppet end) and the proctor (its controller end), tells the proctor
//!   `member … joined` and then the puppet `room_joined`; the puppet sends its offer next and the
//!   v1 relay rules apply. Failed joins (unknown or expired code, malformed `code`) count towards
//!   the same per-address limit as failed connects. A room holds at most
//!   [`RouterConfig::max_members_per_room`] members (`busy`); a connection joins a room once
//!   (`not_allowed` again), and not its own room (`not_allowed`); both ends' session limits apply
//!   (`busy`). Names over [`MAX_ROOM_NAME_CHARS`] are `bad_message`.
//! - **The roster:** the proctor gets `member {room, session, name, state}` for every change, in
//!   the order they happen: `joined` on joining; whatever it sets itself with `member_state`
//!   (`joined`, `watching`, `controlled`, echoed back); `reconnecting` when the member's
//!   connection has been silent for [`RouterConfig::quiet_timeout`], then its current state again
//!   if it speaks before it is dropped; and exactly one `left` as the last update, whatever ended
//!   the session (the member's `leave`, the proctor's `leave`, `room_end`, a closed or dead
//!   connection). The member gets the `member` updates the proctor's `member_state` makes (so it
//!   can show that it is watched, and by whom: the room's name), and `left {session}` when the
//!   session ends other than by its own `leave`.
//! - **Closing** (`room_close`) retires the code at once (`room_closed`); members stay.
//!   **Ending** (`room_end`) ends every member's session (each member gets `left`, the proctor a
//!   `member … left` for each, in join order) and then the room (`room_ended`). A proctor whose
//!   connection closes or dies ends all its rooms the same way. Room messages naming a room that
//!   is not this connection's get `unknown_room`, as if it did not exist.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use rtcdesk_proto::signal::{
    Accept, Accepted, Answer, Candidate, Connect, ControlCode, DeviceClaim, Error as ErrorMessage,
    ErrorCode, IceServer, Incoming, Leave, Left, Member, MemberState, MemberStatus, Offer, Pake,
    Register, Registered, Reject, Rejected, Ringing, RoomClose, RoomClosed, RoomCreate,
    RoomCreated, RoomEnd, RoomEnded, RoomId, RoomJoin, RoomJoined, SessionId, SignalError,
    SignalMessage, MAX_ROOM_NAME_CHARS, MAX_SIGNAL_MESSAGE,
};

/// WebSocket close code 1001, "going away": the connection stopped answering pings.
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// WebSocket close code 1008, "policy violation": floods and too many failed codes.
pub const CLOSE_POLICY: u16 = 1008;
/// WebSocket close code 1009, "message too big": a frame over the size limit.
pub const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket close code 1013, "try again later": too many connections from one address.
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// Liveness checks are spread over this many slices of each ping interval.
pub const LIVENESS_SLICES: u64 = 16;

/// Identifies one WebSocket connection. The shell chooses them; each must be unique while open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Every limit and timer of the router, so tests can shrink them and operators tune them.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// How long a control code stays valid after `register` (sent as `expires_in`).
    pub code_lifetime: Duration,
    /// The window over which failed `connect` attempts per address are counted.
    pub failed_connect_window: Duration,
    /// Failed `connect` attempts allowed per address per window; the next is `rate_limited`.
    pub max_failed_connects: u32,
    /// Messages per second a connection may send, sustained.
    pub flood_rate: u32,
    /// Messages a connection may send in a burst above the sustained rate.
    pub flood_burst: u32,
    /// How often idle connections are pinged.
    pub ping_interval: Duration,
    /// How long a connection may stay silent (no frame, no pong) before it is dropped.
    pub dead_timeout: Duration,
    /// Open connections allowed from one IP address.
    pub max_connections_per_address: usize,
    /// Sessions one connection may be an end of at once (as puppet and controller together).
    pub max_sessions_per_connection: usize,
    /// Largest text frame, in bytes; a larger one closes the connection (1009).
    pub max_message_size: usize,
    /// Rooms one connection may be the proctor of at once.
    pub max_rooms_per_connection: usize,
    /// Members one room may hold at once.
    pub max_members_per_room: usize,
    /// Device IDs bound at once (unattended puppets, online or not); a new one beyond is `busy`.
    pub max_devices: usize,
    /// How long a device ID stays bound to its token after its puppet was last registered.
    pub device_idle_lifetime: Duration,
    /// The STUN and TURN servers handed to clients (none by default).
    pub ice: crate::ice::IceConfig,
}

impl RouterConfig {
    /// How long a room member may stay silent before the roster shows it `reconnecting`: one and
    /// a half ping intervals (4.5 s by default), so longer than a live connection's longest
    /// silence (one interval plus its pong's way back, with room for late timers), and never
    /// longer than `dead_timeout`. Derived, so tuning the ping timers keeps it right.
    pub fn quiet_timeout(&self) -> Duration {
        (self.ping_interval + self.ping_interval / 2).min(self.dead_timeout)
    }
}

impl Default for RouterConfig {
    /// Production defaults: codes live 10 minutes; 5 failed connects per minute per address;
    /// 200 messages/s (burst 400); ping every 3 s, drop after 6 s of silence (so `left` reaches
    /// the other end within 9 s); 256 connections per address (a school behind one NAT);
    /// 64 sessions per connection (a classroom grid); 64 KiB messages; 4 rooms per connection,
    /// 64 members per room; 100 000 device IDs, each kept 90 days after it was last online.
    fn default() -> Self {
        Self {
            code_lifetime: Duration::from_secs(600),
            failed_connect_window: Duration::from_secs(60),
            max_failed_connects: 5,
            flood_rate: 200,
            flood_burst: 400,
            ping_interval: Duration::from_secs(3),
            dead_timeout: Duration::from_secs(6),
            max_connections_per_address: 256,
            max_sessions_per_connection: 64,
            max_message_size: MAX_SIGNAL_MESSAGE,
            max_rooms_per_connection: 4,
            max_members_per_room: 64,
            max_devices: 100_000,
            device_idle_lifetime: Duration::from_secs(90 * 24 * 3600),
            ice: crate::ice::IceConfig::default(),
        }
    }
}

/// Where the router's randomness comes from: control codes and session ids must be unguessable in
/// production ([`OsEntropy`]) and repeatable in tests.
pub trait Entropy: Send {
    /// Fills `buf` with random bytes.
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (`getrandom`), for production.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) {
        // A system without a working CSPRNG cannot hand out secrets safely; stopping is the only
        // honest answer, and getrandom documents this as not happening on supported systems.
        getrandom::fill(buf).expect("the OS random number generator failed");
    }
}

/// What the shell must do next, drained with [`Router::poll_output`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this text frame on the connection.
    Send {
        /// The connection to send on.
        conn: ConnId,
        /// One encoded [`SignalMessage`].
        text: String,
    },
    /// Send a WebSocket ping on the connection; any frame back proves it alive.
    Ping {
        /// The connection to ping.
        conn: ConnId,
    },
    /// Close the connection with this close code and reason. The router has already forgotten it
    /// (its sessions' other ends were told `left`); a later `handle_close` for it is ignored.
    Close {
        /// The connection to close.
        conn: ConnId,
        /// WebSocket close code (see the `CLOSE_*` constants).
        code: u16,
        /// Human-readable reason for the close frame.
        reason: &'static str,
    },
}

/// Whether a session is waiting for the puppet's user or established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionState {
    Ringing,
    Accepted,
}

#[derive(Debug)]
struct Session {
    puppet: ConnId,
    controller: ConnId,
    state: SessionState,
    /// Set when the session is a room membership (the puppet end is the member, the controller
    /// end the proctor).
    membership: Option<Membership>,
}

/// A session's place in a room's roster.
#[derive(Debug)]
struct Membership {
    room: RoomId,
    /// The name the member joined with.
    name: String,
    /// The last state the proctor set (or `Joined`); `Reconnecting` and `Left` are never stored.
    state: MemberStatus,
}

/// How a session came to end, which decides who is told.
#[derive(Debug, Clone, Copy)]
enum Ending {
    /// This end sent `leave`.
    LeftBy(ConnId),
    /// This end's connection is gone: it cannot be told anything.
    GoneWith(ConnId),
    /// The proctor ended the room.
    RoomEnded,
}

#[derive(Debug)]
struct Room {
    proctor: ConnId,
    name: String,
    /// The room's code while it admits newcomers.
    code: Option<ControlCode>,
    /// The member sessions, in the order they joined.
    members: Vec<SessionId>,
}

#[derive(Debug)]
struct RoomCode {
    room: RoomId,
    expires_at: Instant,
}

impl Session {
    fn other_end(&self, conn: ConnId) -> ConnId {
        if conn == self.puppet {
            self.controller
        } else {
            self.puppet
        }
    }
}

/// A token bucket in milli-messages, so no floating point is needed.
#[derive(Debug)]
struct TokenBucket {
    milli_tokens: u64,
    last_refill: Instant,
}

#[derive(Debug)]
struct Connection {
    addr: IpAddr,
    last_seen: Instant,
    bucket: TokenBucket,
    /// The control code, while this connection is a registered puppet.
    code: Option<ControlCode>,
    /// The sessions this connection is an end of (bounded by `max_sessions_per_connection`).
    sessions: Vec<SessionId>,
    /// The rooms this connection is the proctor of (bounded by `max_rooms_per_connection`).
    rooms: Vec<RoomId>,
    /// Whether a second controller may have an established session with this puppet.
    watchers: bool,
    /// Whether it has been silent past `quiet_timeout` and its memberships show `reconnecting`.
    quiet: bool,
}

#[derive(Debug)]
struct Puppet {
    conn: ConnId,
    expires_at: Instant,
    /// The name it registered with, told to controllers in `ringing`.
    name: String,
    /// Whether the code is a device ID, which does not expire while its puppet is registered.
    device: bool,
}

impl Puppet {
    fn is_live(&self, now: Instant) -> bool {
        self.device || self.expires_at > now
    }
}

/// What the router keeps of a device token: its SHA-256, never the token.
fn token_sha256(claim: &DeviceClaim) -> [u8; 32] {
    Sha256::digest(claim.token.as_bytes()).into()
}

/// A device ID's owner: whoever registered it first, proven by its token.
#[derive(Debug)]
struct DeviceBinding {
    token_sha256: [u8; 32],
    /// When its puppet was last seen registered (updated on every purge while it is).
    last_seen: Instant,
}

#[derive(Debug)]
struct FailedConnects {
    window_start: Instant,
    count: u32,
}

/// The signaling router: connections, puppets by control code, sessions, and the rules between
/// them. See the [module docs](self) for the rules.
pub struct Router {
    config: RouterConfig,
    entropy: Box<dyn Entropy>,
    connections: HashMap<ConnId, Connection>,
    connections_per_addr: HashMap<IpAddr, usize>,
    puppets: HashMap<ControlCode, Puppet>,
    /// Device IDs and the token that owns each (unattended puppets, online or not).
    devices: HashMap<ControlCode, DeviceBinding>,
    sessions: HashMap<SessionId, Session>,
    rooms: HashMap<RoomId, Room>,
    room_codes: HashMap<ControlCode, RoomCode>,
    failed_connects: HashMap<IpAddr, FailedConnects>,
    /// When the next liveness slice is due.
    next_tick: Instant,
    /// Which slice of the connections (by `ConnId % LIVENESS_SLICES`) is checked next.
    next_slice: u64,
    outputs: VecDeque<Output>,
    /// The wall clock (Unix seconds) at `clock_base`, for TURN credential expiry times; the
    /// router otherwise runs on the `now` it is given, so tests set this with
    /// [`Router::set_wall_clock`].
    unix_at_base: u64,
    clock_base: Instant,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("connections", &self.connections.len())
            .field("puppets", &self.puppets.len())
            .field("sessions", &self.sessions.len())
            .field("rooms", &self.rooms.len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router with the OS CSPRNG for codes and session ids.
    pub fn new(config: RouterConfig, now: Instant) -> Self {
        Self::with_entropy(config, Box::new(OsEntropy), now)
    }

    /// A router with the given randomness (tests pass a seeded one).
    pub fn with_entropy(config: RouterConfig, entropy: Box<dyn Entropy>, now: Instant) -> Self {
        let tick = (config.ping_interval / LIVENESS_SLICES as u32).max(Duration::from_millis(1));
        Self {
            config,
            entropy,
            connections: HashMap::new(),
            connections_per_addr: HashMap::new(),
            puppets: HashMap::new(),
            sessions: HashMap::new(),
            rooms: HashMap::new(),
            room_codes: HashMap::new(),
            devices: HashMap::new(),
            failed_connects: HashMap::new(),
            next_tick: now + tick,
            next_slice: 0,
            outputs: VecDeque::new(),
            unix_at_base: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |since| since.as_secs()),
            clock_base: now,
        }
    }

    /// Says the wall clock reads `unix_now` (Unix seconds) at `now`: TURN credentials handed out
    /// later expire relative to it. Set from the system clock at construction.
    pub fn set_wall_clock(&mut self, unix_now: u64, now: Instant) {
        self.unix_at_base = unix_now;
        self.clock_base = now;
    }

    /// The ICE servers for one client, with credentials labelled `ROLE-CONN`.
    fn ice_servers(&self, role: &str, conn: ConnId, now: Instant) -> Vec<IceServer> {
        if self.config.ice.is_empty() {
            return Vec::new();
        }
        let unix_now = self
            .unix_at_base
            .saturating_add(now.saturating_duration_since(self.clock_base).as_secs());
        self.config
            .ice
            .servers_for(&format!("{role}-{}", conn.0), unix_now)
    }

    /// The configuration this router runs with.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Open connections the router knows.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// Live sessions (ringing or accepted).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Registered puppets with a live (possibly expired but not yet purged) code.
    pub fn puppet_count(&self) -> usize {
        self.puppets.len()
    }

    /// Open rooms (closed to newcomers or not).
    pub fn room_count(&self) -> usize {
        self.rooms.len()
    }

    /// A WebSocket connection from `peer` completed its handshake. If the address already has too
    /// many connections, the router answers `busy` and closes it at once.
    pub fn handle_open(&mut self, conn: ConnId, peer: SocketAddr, now: Instant) {
        let addr = peer.ip();
        let count = self.connections_per_addr.entry(addr).or_insert(0);
        if *count >= self.config.max_connections_per_address {
            tracing::debug!(%conn, %addr, "refused: too many connections from this address");
            self.send_error(
                conn,
                ErrorCode::Busy,
                "too many connections from this address".into(),
            );
            self.outputs.push_back(Output::Close {
                conn,
                code: CLOSE_TRY_AGAIN_LATER,
                reason: "too many connections from this address",
            });
            return;
        }
        *count += 1;
        let burst = u64::from(self.config.flood_burst) * 1000;
        self.connections.insert(
            conn,
            Connection {
                addr,
                last_seen: now,
                bucket: TokenBucket {
                    milli_tokens: burst,
                    last_refill: now,
                },
                code: None,
                sessions: Vec::new(),
                rooms: Vec::new(),
                watchers: true,
                quiet: false,
            },
        );
    }

    /// The connection sent a control frame (a pong, a ping): it is alive. Control frames count
    /// towards the flood limit like messages, so a ping flood is closed too.
    pub fn handle_alive(&mut self, conn: ConnId, now: Instant) {
        self.admit(conn, 0, now);
    }

    /// The connection sent a binary frame, which protocol v1 does not use: `bad_message`, and it
    /// counts towards the flood limit like any message.
    pub fn handle_binary(&mut self, conn: ConnId, len: usize, now: Instant) {
        if !self.admit(conn, len, now) {
            return;
        }
        self.send_error(
            conn,
            ErrorCode::BadMessage,
            "binary frames are not part of signaling protocol v1; send JSON text".into(),
        );
    }

    /// The connection sent a text frame.
    pub fn handle_text(&mut self, conn: ConnId, text: &str, now: Instant) {
        if !self.admit(conn, text.len(), now) {
            return;
        }
        match SignalMessage::parse(text) {
            Ok(message) => self.handle_message(conn, message, now),
            Err(error) => self.handle_parse_error(conn, error, now),
        }
    }

    /// The connection is gone (closed by the peer, or its socket failed). Each of its sessions'
    /// other ends gets `left`.
    pub fn handle_close(&mut self, conn: ConnId, _now: Instant) {
        self.forget(conn);
    }

    /// Time passed: ping idle connections, drop dead ones, purge expired codes and rate-limit
    /// windows. Cheap to call early; it does nothing before [`poll_timeout`](Self::poll_timeout).
    ///
    /// Liveness is checked in [`LIVENESS_SLICES`] slices of the connections, one slice per
    /// `ping_interval / LIVENESS_SLICES`, so each connection is still checked once per
    /// `ping_interval` but 10,000 pings never leave in one burst.
    pub fn handle_timeout(&mut self, now: Instant) {
        let tick = self.tick();
        let mut slices = 0;
        while self.next_tick <= now && slices < LIVENESS_SLICES {
            self.check_liveness(self.next_slice, now);
            self.next_slice = (self.next_slice + 1) % LIVENESS_SLICES;
            if self.next_slice == 0 {
                self.purge(now);
            }
            self.next_tick += tick;
            slices += 1;
        }
        if slices > 0 {
            self.check_quiet_members(now);
        }
        if self.next_tick <= now {
            // The caller was late by a whole round or more: every slice was just checked.
            self.next_tick = now + tick;
        }
    }

    fn tick(&self) -> Duration {
        (self.config.ping_interval / LIVENESS_SLICES as u32).max(Duration::from_millis(1))
    }

    /// Pings the idle and drops the dead among the connections of one slice.
    fn check_liveness(&mut self, slice: u64, now: Instant) {
        let mut dead = Vec::new();
        for (&conn, connection) in &self.connections {
            if conn.0 % LIVENESS_SLICES != slice {
                continue;
            }
            let idle = now.saturating_duration_since(connection.last_seen);
            if idle >= self.config.dead_timeout {
                dead.push(conn);
            } else if idle >= self.config.ping_interval / 2 {
                // Not `idle >= ping_interval`: a pong that lands just after this check would
                // make the next check find it idle a hair under one interval and skip the ping,
                // and the check after that, if its timer fires late, would find it dead.
                self.outputs.push_back(Output::Ping { conn });
            }
        }
        for conn in dead {
            tracing::debug!(%conn, "dropping a connection that stopped answering pings");
            self.close(conn, CLOSE_GOING_AWAY, "no answer to pings");
        }
    }

    /// Shows as `reconnecting` every room member whose connection has been silent past
    /// `quiet_timeout` (once; [`admit`](Self::admit) shows it back when it speaks).
    fn check_quiet_members(&mut self, now: Instant) {
        let quiet_timeout = self.config.quiet_timeout();
        let mut gone_quiet = Vec::new();
        for room in self.rooms.values() {
            for session in &room.members {
                let Some(member) = self.sessions.get(session).map(|s| s.puppet) else {
                    continue;
                };
                let Some(connection) = self.connections.get(&member) else {
                    continue;
                };
                if !connection.quiet
                    && now.saturating_duration_since(connection.last_seen) >= quiet_timeout
                {
                    gone_quiet.push(member);
                }
            }
        }
        gone_quiet.sort();
        gone_quiet.dedup();
        for member in gone_quiet {
            if let Some(connection) = self.connections.get_mut(&member) {
                connection.quiet = true;
            }
            tracing::debug!(conn = %member, "room member went quiet");
            self.announce_memberships(member, Some(MemberStatus::Reconnecting));
        }
    }

    /// Sends the proctor a roster line for each room session `member` is the member end of: with
    /// `state`, or each membership's own state when `None`.
    fn announce_memberships(&mut self, member: ConnId, state: Option<MemberStatus>) {
        let Some(sessions) = self.connections.get(&member).map(|c| c.sessions.clone()) else {
            return;
        };
        for session in sessions {
            let Some(s) = self.sessions.get(&session) else {
                continue;
            };
            if s.puppet != member {
                continue;
            }
            let Some(membership) = &s.membership else {
                continue;
            };
            let proctor = s.controller;
            let line = Member {
                room: membership.room.clone(),
                session: session.clone(),
                name: membership.name.clone(),
                state: state.unwrap_or(membership.state),
            };
            self.send(proctor, line.into());
        }
    }

    /// Forgets expired codes and rate-limit windows that have ended.
    fn purge(&mut self, now: Instant) {
        self.puppets.retain(|_, puppet| puppet.is_live(now));
        let lifetime = self.config.device_idle_lifetime;
        let online = &self.puppets;
        self.devices.retain(|id, binding| {
            if online.get(id).is_some_and(|p| p.device) {
                binding.last_seen = now;
                return true;
            }
            now.saturating_duration_since(binding.last_seen) < lifetime
        });
        self.room_codes.retain(|_, code| code.expires_at > now);
        for (id, room) in self.rooms.iter_mut() {
            if let Some(code) = room.code {
                if self.room_codes.get(&code).is_none_or(|c| &c.room != id) {
                    room.code = None;
                }
            }
        }
        for connection in self.connections.values_mut() {
            if let Some(code) = connection.code {
                if !self.puppets.contains_key(&code) {
                    connection.code = None;
                }
            }
        }
        let window = self.config.failed_connect_window;
        self.failed_connects
            .retain(|_, failures| now.saturating_duration_since(failures.window_start) < window);
    }

    /// The next thing the shell should do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        Some(self.next_tick)
    }

    /// Liveness, size and flood checks common to every frame. Returns whether to go on.
    fn admit(&mut self, conn: ConnId, len: usize, now: Instant) -> bool {
        let rate = u64::from(self.config.flood_rate);
        let burst = u64::from(self.config.flood_burst) * 1000;
        let Some(connection) = self.connections.get_mut(&conn) else {
            return false;
        };
        connection.last_seen = now;
        if len > self.config.max_message_size {
            tracing::debug!(%conn, len, "closing: message over the size limit");
            self.close(conn, CLOSE_TOO_BIG, "message over the 64 KiB limit");
            return false;
        }
        let bucket = &mut connection.bucket;
        let elapsed = now.saturating_duration_since(bucket.last_refill);
        // rate messages/s == rate milli-messages/ms.
        let refill = u64::try_from(elapsed.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(rate);
        if refill > 0 {
            bucket.milli_tokens = bucket.milli_tokens.saturating_add(refill).min(burst);
            bucket.last_refill = now;
        }
        if bucket.milli_tokens < 1000 {
            tracing::info!(%conn, addr = %connection.addr, "closing a flooding connection");
            self.close(conn, CLOSE_POLICY, "too many messages per second");
            return false;
        }
        bucket.milli_tokens -= 1000;
        if std::mem::take(&mut connection.quiet) {
            tracing::debug!(%conn, "room member speaks again");
            self.announce_memberships(conn, None);
        }
        true
    }

    fn handle_parse_error(&mut self, conn: ConnId, error: SignalError, now: Instant) {
        let bad_code = matches!(
            &error,
            SignalError::InvalidField { message_type, field, .. }
                if (message_type == "connect" || message_type == "room_join") && field == "code"
        );
        if bad_code && !self.record_failed_connect(conn, now) {
            return;
        }
        self.send_error(conn, error.code(), error.to_string());
    }

    fn handle_message(&mut self, conn: ConnId, message: SignalMessage, now: Instant) {
        match message {
            SignalMessage::Register(register) => self.register(conn, register, now),
            SignalMessage::Connect(connect) => self.connect(conn, connect, now),
            SignalMessage::Accept(Accept { session }) => self.accept(conn, session, now),
            SignalMessage::Reject(reject) => self.reject(conn, reject),
            SignalMessage::Offer(Offer { session, sdp }) => {
                self.relay(conn, session, |session| Offer { session, sdp }.into())
            }
            SignalMessage::Answer(Answer { session, sdp }) => {
                self.relay(conn, session, |session| Answer { session, sdp }.into())
            }
            SignalMessage::Candidate(Candidate {
                session,
                candidate,
                mid,
            }) => self.relay(conn, session, |session| {
                Candidate {
                    session,
                    candidate,
                    mid,
                }
                .into()
            }),
            SignalMessage::Pake(Pake { session, data }) => {
                self.relay_verification(conn, session, data)
            }
            SignalMessage::Leave(Leave { session }) => self.leave(conn, session),
            SignalMessage::RoomCreate(create) => self.room_create(conn, create, now),
            SignalMessage::RoomClose(RoomClose { room }) => self.room_close(conn, room),
            SignalMessage::RoomEnd(RoomEnd { room }) => self.room_end(conn, room),
            SignalMessage::RoomJoin(join) => self.room_join(conn, join, now),
            SignalMessage::MemberState(state) => self.member_state(conn, state),
            other => self.send_error(
                conn,
                ErrorCode::NotAllowed,
                format!("`{}` is sent by the server only", other.type_name()),
            ),
        }
    }

    fn register(&mut self, conn: ConnId, register: Register, now: Instant) {
        let Some(old_code) = self.connections.get(&conn).map(|c| c.code) else {
            return;
        };
        if let Some(claim) = &register.device {
            if !self.check_device_claim(conn, claim, now) {
                return;
            }
        }
        if let Some(old_code) = old_code {
            self.retire_code(conn, old_code);
        }
        let device = register.device.is_some();
        let code = match &register.device {
            Some(claim) => {
                self.bind_device(conn, claim, now);
                claim.id
            }
            None => self.fresh_code(now),
        };
        let expires_at = now + self.config.code_lifetime;
        self.puppets.insert(
            code,
            Puppet {
                conn,
                expires_at,
                name: register.name.clone(),
                device,
            },
        );
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.code = Some(code);
            connection.watchers = register.allows_watchers();
        }
        tracing::debug!(%conn, "puppet registered");
        self.send(
            conn,
            Registered {
                code,
                expires_in: if device {
                    0
                } else {
                    self.config.code_lifetime.as_secs()
                },
                ice_servers: self.ice_servers("puppet", conn, now),
                device,
            }
            .into(),
        );
    }

    /// Whether `conn` may register under this device ID; answers the error itself if not.
    fn check_device_claim(&mut self, conn: ConnId, claim: &DeviceClaim, now: Instant) -> bool {
        if !claim.token_is_valid() {
            self.send_error(
                conn,
                ErrorCode::BadMessage,
                format!(
                    "`device.token` must be {}..={} printable ASCII characters",
                    DeviceClaim::MIN_TOKEN,
                    DeviceClaim::MAX_TOKEN
                ),
            );
            return false;
        }
        let refusal = match self.devices.get(&claim.id) {
            Some(binding) if !bool::from(binding.token_sha256.ct_eq(&token_sha256(claim))) => {
                Some((
                    ErrorCode::NotAllowed,
                    "this device ID belongs to another device",
                ))
            }
            Some(_) => None,
            None if self.puppets.get(&claim.id).is_some_and(|p| p.is_live(now))
                || self
                    .room_codes
                    .get(&claim.id)
                    .is_some_and(|r| r.expires_at > now) =>
            {
                Some((
                    ErrorCode::NotAllowed,
                    "this device ID is in use as a control code right now: choose another",
                ))
            }
            None if self.devices.len() >= self.config.max_devices => Some((
                ErrorCode::Busy,
                "this server holds as many device IDs as it may",
            )),
            None => None,
        };
        match refusal {
            Some((code, message)) => {
                tracing::info!(%conn, "device registration refused: {message}");
                self.send_error(conn, code, message.into());
                false
            }
            None => true,
        }
    }

    /// Binds the (checked) device ID to `conn`, taking it from an older connection of the same
    /// device if one still holds it.
    fn bind_device(&mut self, conn: ConnId, claim: &DeviceClaim, now: Instant) {
        if let Some(previous) = self.puppets.get(&claim.id).map(|p| p.conn) {
            if previous != conn {
                tracing::info!(%conn, %previous, "device ID moved to a new connection");
                if let Some(old) = self.connections.get_mut(&previous) {
                    old.code = None;
                }
            }
        }
        self.devices.insert(
            claim.id,
            DeviceBinding {
                token_sha256: token_sha256(claim),
                last_seen: now,
            },
        );
    }

    /// A code no live puppet or room holds, uniformly from 0..10^9 (rejection sampling keeps it
    /// uniform).
    fn fresh_code(&mut self, now: Instant) -> ControlCode {
        // 2^32 / 10^9 ≈ 4.29: values at or above 4 * 10^9 are thrown away so each code is equally
        // likely.
        const LIMIT: u32 = 4 * ControlCode::SPACE;
        loop {
            let mut bytes = [0u8; 4];
            self.entropy.fill(&mut bytes);
            let value = u32::from_le_bytes(bytes);
            if value >= LIMIT {
                continue;
            }
            let Some(code) = ControlCode::from_number(value % ControlCode::SPACE) else {
                continue;
            };
            let puppet_holds = self.puppets.get(&code).is_some_and(|p| p.is_live(now))
                || self.devices.contains_key(&code);
            let room_holds = self
                .room_codes
                .get(&code)
                .is_some_and(|r| r.expires_at > now);
            if !puppet_holds && !room_holds {
                return code;
            }
        }
    }

    fn fresh_room_id(&mut self) -> RoomId {
        loop {
            let mut bytes = [0u8; 16];
            self.entropy.fill(&mut bytes);
            let id = RoomId(hex::encode(bytes));
            if !self.rooms.contains_key(&id) {
                return id;
            }
        }
    }

    fn fresh_session_id(&mut self) -> SessionId {
        loop {
            let mut bytes = [0u8; 16];
            self.entropy.fill(&mut bytes);
            let id = SessionId(hex::encode(bytes));
            if !self.sessions.contains_key(&id) {
                return id;
            }
        }
    }

    /// Whether connects from this address are refused for now.
    fn is_rate_limited(&self, addr: IpAddr, now: Instant) -> bool {
        self.failed_connects.get(&addr).is_some_and(|failures| {
            failures.count > self.config.max_failed_connects
                && now.saturating_duration_since(failures.window_start)
                    < self.config.failed_connect_window
        })
    }

    /// Counts a failed connect. Returns `false` if that tipped the address over the limit (the
    /// connection was then answered `rate_limited` and closed).
    fn record_failed_connect(&mut self, conn: ConnId, now: Instant) -> bool {
        let Some(addr) = self.connections.get(&conn).map(|c| c.addr) else {
            return false;
        };
        let window = self.config.failed_connect_window;
        let failures = self.failed_connects.entry(addr).or_insert(FailedConnects {
            window_start: now,
            count: 0,
        });
        if now.saturating_duration_since(failures.window_start) >= window {
            *failures = FailedConnects {
                window_start: now,
                count: 0,
            };
        }
        failures.count = failures.count.saturating_add(1);
        if failures.count > self.config.max_failed_connects {
            self.refuse_rate_limited(conn);
            return false;
        }
        true
    }

    fn refuse_rate_limited(&mut self, conn: ConnId) {
        if let Some(connection) = self.connections.get(&conn) {
            tracing::info!(%conn, addr = %connection.addr, "too many failed connects; closing");
        }
        self.send_error(
            conn,
            ErrorCode::RateLimited,
            "too many failed connect attempts from this address; wait a minute".into(),
        );
        self.close(conn, CLOSE_POLICY, "too many failed connect attempts");
    }

    fn connect(&mut self, conn: ConnId, connect: Connect, now: Instant) {
        let Some(addr) = self.connections.get(&conn).map(|c| c.addr) else {
            return;
        };
        if self.is_rate_limited(addr, now) {
            self.refuse_rate_limited(conn);
            return;
        }
        let (puppet_conn, puppet_name) = match self.puppets.get(&connect.code) {
            Some(puppet) if puppet.is_live(now) => (puppet.conn, puppet.name.clone()),
            _ => {
                if self.record_failed_connect(conn, now) {
                    self.send_error(
                        conn,
                        ErrorCode::UnknownCode,
                        "no puppet has this code; check it or ask for a fresh one".into(),
                    );
                }
                return;
            }
        };
        if puppet_conn == conn {
            self.send_error(
                conn,
                ErrorCode::NotAllowed,
                "a puppet cannot connect to itself".into(),
            );
            return;
        }
        let limit = self.config.max_sessions_per_connection;
        let full = |c: ConnId| {
            self.connections
                .get(&c)
                .is_none_or(|c| c.sessions.len() >= limit)
        };
        let (controller_full, puppet_full) = (full(conn), full(puppet_conn));
        if controller_full {
            self.send_error(
                conn,
                ErrorCode::Busy,
                format!("this connection already has {limit} sessions"),
            );
            return;
        }
        if puppet_full {
            self.send_error(
                conn,
                ErrorCode::Busy,
                "this puppet has as many sessions as it may have".into(),
            );
            return;
        }
        if self.refuses_watchers(puppet_conn) {
            self.send_error(
                conn,
                ErrorCode::Busy,
                "this puppet is already controlled and allows no watchers".into(),
            );
            return;
        }
        let session = self.fresh_session_id();
        self.sessions.insert(
            session.clone(),
            Session {
                puppet: puppet_conn,
                controller: conn,
                state: SessionState::Ringing,
                membership: None,
            },
        );
        for end in [conn, puppet_conn] {
            if let Some(connection) = self.connections.get_mut(&end) {
                connection.sessions.push(session.clone());
            }
        }
        tracing::debug!(controller = %conn, puppet = %puppet_conn, "session ringing");
        self.send(
            puppet_conn,
            Incoming {
                session: session.clone(),
                from: connect.name,
                pake: connect.pake,
            }
            .into(),
        );
        self.send(
            conn,
            Ringing {
                session,
                name: Some(puppet_name),
            }
            .into(),
        );
    }

    /// The session, if `conn` is one of its ends; else `unknown_session` was sent.
    fn own_session(&mut self, conn: ConnId, session: &SessionId) -> Option<&mut Session> {
        let is_end = self
            .sessions
            .get(session)
            .is_some_and(|s| s.puppet == conn || s.controller == conn);
        if !is_end {
            self.send_error(
                conn,
                ErrorCode::UnknownSession,
                "no such session on this connection".into(),
            );
            return None;
        }
        self.sessions.get_mut(session)
    }

    /// Checks that `conn` is the puppet end of a ringing session; returns the controller end.
    fn consent_target(&mut self, conn: ConnId, session: &SessionId) -> Option<ConnId> {
        let (puppet, controller, state) = {
            let s = self.own_session(conn, session)?;
            (s.puppet, s.controller, s.state)
        };
        if puppet != conn {
            self.send_error(
                conn,
                ErrorCode::NotAllowed,
                "only the puppet may accept or reject a session".into(),
            );
            return None;
        }
        if state != SessionState::Ringing {
            self.send_error(
                conn,
                ErrorCode::NotAllowed,
                "this session was already accepted".into(),
            );
            return None;
        }
        Some(controller)
    }

    /// Whether `puppet` registered without watchers and already has an established session.
    fn refuses_watchers(&self, puppet: ConnId) -> bool {
        let Some(connection) = self.connections.get(&puppet) else {
            return false;
        };
        !connection.watchers
            && connection.sessions.iter().any(|id| {
                self.sessions
                    .get(id)
                    .is_some_and(|s| s.puppet == puppet && s.state == SessionState::Accepted)
            })
    }

    fn accept(&mut self, conn: ConnId, session: SessionId, now: Instant) {
        let Some(controller) = self.consent_target(conn, &session) else {
            return;
        };
        if self.refuses_watchers(conn) {
            self.send_error(
                conn,
                ErrorCode::Busy,
                "this puppet allows no watchers and already has a controller; reject or leave"
                    .into(),
            );
            return;
        }
        if let Some(s) = self.sessions.get_mut(&session) {
            s.state = SessionState::Accepted;
        }
        tracing::debug!(puppet = %conn, %controller, "session accepted");
        let ice_servers = self.ice_servers("controller", controller, now);
        self.send(
            controller,
            Accepted {
                session,
                ice_servers,
            }
            .into(),
        );
    }

    fn reject(&mut self, conn: ConnId, reject: Reject) {
        let Some(controller) = self.consent_target(conn, &reject.session) else {
            return;
        };
        self.end_session(&reject.session);
        tracing::debug!(puppet = %conn, %controller, "session rejected");
        self.send(
            controller,
            Rejected {
                session: reject.session,
                reason: reject.reason,
            }
            .into(),
        );
    }

    fn relay(
        &mut self,
        conn: ConnId,
        session: SessionId,
        message: impl FnOnce(SessionId) -> SignalMessage,
    ) {
        let Some(s) = self.own_session(conn, &session) else {
            return;
        };
        if s.state != SessionState::Accepted {
            self.send_error(
                conn,
                ErrorCode::NotAllowed,
                "the puppet has not accepted this session yet".into(),
            );
            return;
        }
        let other = s.other_end(conn);
        self.send(other, message(session));
    }

    /// `pake`: relayed like `candidate`, but also while the session rings, because verification
    /// runs before the puppet's user is asked. The server never reads `data`.
    fn relay_verification(&mut self, conn: ConnId, session: SessionId, data: String) {
        let Some(s) = self.own_session(conn, &session) else {
            return;
        };
        let other = s.other_end(conn);
        self.send(other, Pake { session, data }.into());
    }

    fn leave(&mut self, conn: ConnId, session: SessionId) {
        if self.own_session(conn, &session).is_none() {
            return;
        }
        self.end_and_tell(&session, Ending::LeftBy(conn));
    }

    /// Ends a session and tells those who must know: in v1, the other end gets `left`; in a room,
    /// the member gets `left` (unless it left or is gone) and the proctor `member … left`
    /// (unless it is gone).
    fn end_and_tell(&mut self, session: &SessionId, ending: Ending) {
        let Some(removed) = self.end_session(session) else {
            return;
        };
        let (left_by, gone) = match ending {
            Ending::LeftBy(conn) => (Some(conn), None),
            Ending::GoneWith(conn) => (None, Some(conn)),
            Ending::RoomEnded => (None, None),
        };
        let told = |end: ConnId| Some(end) != left_by && Some(end) != gone;
        let Some(membership) = removed.membership else {
            for end in [removed.puppet, removed.controller] {
                if told(end) {
                    self.send(
                        end,
                        Left {
                            session: session.clone(),
                        }
                        .into(),
                    );
                }
            }
            return;
        };
        if let Some(room) = self.rooms.get_mut(&membership.room) {
            room.members.retain(|m| m != session);
        }
        if told(removed.puppet) {
            self.send(
                removed.puppet,
                Left {
                    session: session.clone(),
                }
                .into(),
            );
        }
        if Some(removed.controller) != gone {
            self.send(
                removed.controller,
                Member {
                    room: membership.room,
                    session: session.clone(),
                    name: membership.name,
                    state: MemberStatus::Left,
                }
                .into(),
            );
        }
    }

    /// Refuses a room name that is too long; `true` if it is fine.
    fn check_room_name(&mut self, conn: ConnId, message_type: &str, name: &str) -> bool {
        if name.chars().count() <= MAX_ROOM_NAME_CHARS {
            return true;
        }
        self.send_error(
            conn,
            ErrorCode::BadMessage,
            format!(
                "`{message_type}` message has a bad `name`: over {MAX_ROOM_NAME_CHARS} characters"
            ),
        );
        false
    }

    fn room_create(&mut self, conn: ConnId, create: RoomCreate, now: Instant) {
        if !self.check_room_name(conn, "room_create", &create.name) {
            return;
        }
        let limit = self.config.max_rooms_per_connection;
        let Some(owned) = self.connections.get(&conn).map(|c| c.rooms.len()) else {
            return;
        };
        if owned >= limit {
            self.send_error(
                conn,
                ErrorCode::Busy,
                format!("this connection already has {limit} rooms; end one first"),
            );
            return;
        }
        let room = self.fresh_room_id();
        let code = self.fresh_code(now);
        self.room_codes.insert(
            code,
            RoomCode {
                room: room.clone(),
                expires_at: now + self.config.code_lifetime,
            },
        );
        self.rooms.insert(
            room.clone(),
            Room {
                proctor: conn,
                name: create.name,
                code: Some(code),
                members: Vec::new(),
            },
        );
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.rooms.push(room.clone());
        }
        tracing::debug!(proctor = %conn, "room created");
        self.send(
            conn,
            RoomCreated {
                room,
                code,
                expires_in: self.config.code_lifetime.as_secs(),
                ice_servers: self.ice_servers("proctor", conn, now),
            }
            .into(),
        );
    }

    /// Whether `conn` is the proctor of `room`; else `unknown_room` was sent.
    fn own_room(&mut self, conn: ConnId, room: &RoomId) -> bool {
        if self.rooms.get(room).is_some_and(|r| r.proctor == conn) {
            return true;
        }
        self.send_error(
            conn,
            ErrorCode::UnknownRoom,
            "no such room on this connection".into(),
        );
        false
    }

    fn room_close(&mut self, conn: ConnId, room: RoomId) {
        if !self.own_room(conn, &room) {
            return;
        }
        self.retire_room_code(&room);
        tracing::debug!(proctor = %conn, "room closed to newcomers");
        self.send(conn, RoomClosed { room }.into());
    }

    fn room_end(&mut self, conn: ConnId, room: RoomId) {
        if !self.own_room(conn, &room) {
            return;
        }
        let members = self
            .rooms
            .get(&room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for session in members {
            self.end_and_tell(&session, Ending::RoomEnded);
        }
        self.remove_room(&room);
        if let Some(connection) = self.connections.get_mut(&conn) {
            connection.rooms.retain(|r| r != &room);
        }
        tracing::debug!(proctor = %conn, "room ended");
        self.send(conn, RoomEnded { room }.into());
    }

    /// Forgets a room (its members' sessions must have ended) and its code.
    fn remove_room(&mut self, room: &RoomId) {
        self.retire_room_code(room);
        self.rooms.remove(room);
    }

    /// Retires a room's code, unless it expired and has since been given to someone else.
    fn retire_room_code(&mut self, room: &RoomId) {
        let Some(code) = self.rooms.get_mut(room).and_then(|r| r.code.take()) else {
            return;
        };
        if self.room_codes.get(&code).is_some_and(|c| &c.room == room) {
            self.room_codes.remove(&code);
        }
    }

    fn room_join(&mut self, conn: ConnId, join: RoomJoin, now: Instant) {
        let Some(addr) = self.connections.get(&conn).map(|c| c.addr) else {
            return;
        };
        if self.is_rate_limited(addr, now) {
            self.refuse_rate_limited(conn);
            return;
        }
        let room_id = match self.room_codes.get(&join.code) {
            Some(code) if code.expires_at > now => code.room.clone(),
            _ => {
                if self.record_failed_connect(conn, now) {
                    self.send_error(
                        conn,
                        ErrorCode::UnknownCode,
                        "no open room has this code; check it or ask the proctor".into(),
                    );
                }
                return;
            }
        };
        if !self.check_room_name(conn, "room_join", &join.name) {
            return;
        }
        let Some((proctor, room_name, member_count)) = self
            .rooms
            .get(&room_id)
            .map(|r| (r.proctor, r.name.clone(), r.members.len()))
        else {
            return;
        };
        if proctor == conn {
            self.send_error(
                conn,
                ErrorCode::NotAllowed,
                "a proctor cannot join its own room".into(),
            );
            return;
        }
        let already = self.rooms.get(&room_id).is_some_and(|r| {
            r.members
                .iter()
                .any(|m| self.sessions.get(m).is_some_and(|s| s.puppet == conn))
        });
        if already {
            self.send_error(
                conn,
                ErrorCode::NotAllowed,
                "this connection is already a member of this room".into(),
            );
            return;
        }
        let room_limit = self.config.max_members_per_room;
        if member_count >= room_limit {
            self.send_error(
                conn,
                ErrorCode::Busy,
                format!("this room is full ({room_limit} members)"),
            );
            return;
        }
        let limit = self.config.max_sessions_per_connection;
        let full = |c: ConnId| {
            self.connections
                .get(&c)
                .is_none_or(|c| c.sessions.len() >= limit)
        };
        let (member_full, proctor_full) = (full(conn), full(proctor));
        if member_full {
            self.send_error(
                conn,
                ErrorCode::Busy,
                format!("this connection already has {limit} sessions"),
            );
            return;
        }
        if proctor_full {
            self.send_error(
                conn,
                ErrorCode::Busy,
                "the proctor has as many sessions as it may have".into(),
            );
            return;
        }
        if self.refuses_watchers(conn) {
            self.send_error(
                conn,
                ErrorCode::Busy,
                "this puppet allows no watchers and already has a controller".into(),
            );
            return;
        }
        let session = self.fresh_session_id();
        self.sessions.insert(
            session.clone(),
            Session {
                puppet: conn,
                controller: proctor,
                state: SessionState::Accepted,
                membership: Some(Membership {
                    room: room_id.clone(),
                    name: join.name.clone(),
                    state: MemberStatus::Joined,
                }),
            },
        );
        for end in [conn, proctor] {
            if let Some(connection) = self.connections.get_mut(&end) {
                connection.sessions.push(session.clone());
            }
        }
        if let Some(room) = self.rooms.get_mut(&room_id) {
            room.members.push(session.clone());
        }
        tracing::debug!(member = %conn, %proctor, "room member joined");
        self.send(
            proctor,
            Member {
                room: room_id.clone(),
                session: session.clone(),
                name: join.name,
                state: MemberStatus::Joined,
            }
            .into(),
        );
        self.send(
            conn,
            RoomJoined {
                room: room_id,
                session,
                name: room_name,
                ice_servers: self.ice_servers("member", conn, now),
            }
            .into(),
        );
    }

    fn member_state(&mut self, conn: ConnId, update: MemberState) {
        if !self.own_room(conn, &update.room) {
            return;
        }
        if !update.state.settable_by_proctor() {
            self.send_error(
                conn,
                ErrorCode::NotAllowed,
                format!(
                    "`{}` is set by the server; a proctor sets joined, watching or controlled (and ends a session with leave)",
                    update.state
                ),
            );
            return;
        }
        let member = self.sessions.get_mut(&update.session).and_then(|s| {
            let membership = s.membership.as_mut()?;
            (membership.room == update.room).then(|| {
                membership.state = update.state;
                (s.puppet, membership.name.clone())
            })
        });
        let Some((member, name)) = member else {
            self.send_error(
                conn,
                ErrorCode::UnknownSession,
                "no such member in this room".into(),
            );
            return;
        };
        let line: SignalMessage = Member {
            room: update.room,
            session: update.session,
            name,
            state: update.state,
        }
        .into();
        self.send(conn, line.clone());
        self.send(member, line);
    }

    /// Forgets `conn`'s code, unless it expired and has since been given to another puppet. A
    /// device ID stays bound to its token.
    fn retire_code(&mut self, conn: ConnId, code: ControlCode) {
        if self.puppets.get(&code).is_some_and(|p| p.conn == conn) {
            self.puppets.remove(&code);
        }
    }

    /// Removes a session and its entries in both ends' lists.
    fn end_session(&mut self, session: &SessionId) -> Option<Session> {
        let removed = self.sessions.remove(session)?;
        for end in [removed.puppet, removed.controller] {
            if let Some(connection) = self.connections.get_mut(&end) {
                if let Some(i) = connection.sessions.iter().position(|s| s == session) {
                    connection.sessions.swap_remove(i);
                }
            }
        }
        Some(removed)
    }

    /// Closes a connection on the router's initiative.
    fn close(&mut self, conn: ConnId, code: u16, reason: &'static str) {
        self.forget(conn);
        self.outputs.push_back(Output::Close { conn, code, reason });
    }

    /// Drops every trace of a connection and tells its sessions' other ends `left`.
    fn forget(&mut self, conn: ConnId) {
        let Some(connection) = self.connections.remove(&conn) else {
            return;
        };
        if let Some(count) = self.connections_per_addr.get_mut(&connection.addr) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.connections_per_addr.remove(&connection.addr);
            }
        }
        if let Some(code) = connection.code {
            self.retire_code(conn, code);
        }
        // The sessions first (so members are told `left`), then the proctor's rooms.
        for session in connection.sessions {
            self.end_and_tell(&session, Ending::GoneWith(conn));
        }
        for room in connection.rooms {
            self.remove_room(&room);
        }
    }

    fn send(&mut self, conn: ConnId, message: SignalMessage) {
        self.outputs.push_back(Output::Send {
            conn,
            text: message.encode(),
        });
    }

    fn send_error(&mut self, conn: ConnId, code: ErrorCode, message: String) {
        self.send(conn, ErrorMessage { code, message }.into());
    }
}

#[cfg(test)]
mod tests {
    //! Scenarios: given a router and some connections, when they send messages or time passes,
    //! then these frames go out. Time is a variable; nothing sleeps.

    use super::*;

    /// SplitMix64: repeatable randomness for tests.
    struct SeededEntropy(u64);

    impl Entropy for SeededEntropy {
        fn fill(&mut self, buf: &mut [u8]) {
            for chunk in buf.chunks_mut(8) {
                self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.0;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
            }
        }
    }

    /// Always the same bytes: makes two registrations draw the same code first.
    struct StuckEntropy {
        calls: u32,
    }

    impl Entropy for StuckEntropy {
        fn fill(&mut self, buf: &mut [u8]) {
            self.calls += 1;
            // The first three draws give the same value, then a different one.
            let value: u32 = if self.calls <= 3 { 42 } else { 43 };
            for (i, b) in buf.iter_mut().enumerate() {
                *b = value.to_le_bytes()[i % 4];
            }
        }
    }

    struct Harness {
        router: Router,
        now: Instant,
        next_conn: u64,
    }

    fn addr(last: u8) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, last], 40000))
    }

    impl Harness {
        fn new() -> Self {
            Self::with_config(RouterConfig::default())
        }

        fn with_config(config: RouterConfig) -> Self {
            let now = Instant::now();
            Self {
                router: Router::with_entropy(config, Box::new(SeededEntropy(7)), now),
                now,
                next_conn: 1,
            }
        }

        fn open_from(&mut self, peer: SocketAddr) -> ConnId {
            let conn = ConnId(self.next_conn);
            self.next_conn += 1;
            self.router.handle_open(conn, peer, self.now);
            conn
        }

        fn open(&mut self) -> ConnId {
            let last = u8::try_from(self.next_conn % 250).unwrap();
            self.open_from(addr(last))
        }

        fn text(&mut self, conn: ConnId, text: &str) -> Vec<Output> {
            self.router.handle_text(conn, text, self.now);
            self.drain()
        }

        fn send(&mut self, conn: ConnId, message: SignalMessage) -> Vec<Output> {
            self.text(conn, &message.encode())
        }

        fn advance(&mut self, by: Duration) -> Vec<Output> {
            self.now += by;
            self.router.handle_timeout(self.now);
            self.drain()
        }

        fn drain(&mut self) -> Vec<Output> {
            std::iter::from_fn(|| self.router.poll_output()).collect()
        }

        fn register(&mut self, conn: ConnId) -> ControlCode {
            match single_message(&self.send(conn, Register::named("pc").into()), conn) {
                SignalMessage::Registered(r) => r.code,
                other => panic!("expected registered, got {other:?}"),
            }
        }

        /// Connects `controller` to the puppet with `code`; returns the session id.
        fn ring(&mut self, controller: ConnId, puppet: ConnId, code: ControlCode) -> SessionId {
            let out = self.send(
                controller,
                Connect {
                    code,
                    name: "Ada".into(),
                    pake: None,
                }
                .into(),
            );
            assert_eq!(out.len(), 2, "{out:?}");
            let SignalMessage::Incoming(incoming) = message_to(&out, puppet) else {
                panic!("expected incoming: {out:?}");
            };
            assert_eq!(incoming.from, "Ada");
            let SignalMessage::Ringing(ringing) = message_to(&out, controller) else {
                panic!("expected ringing: {out:?}");
            };
            assert_eq!(incoming.session, ringing.session);
            assert_eq!(
                ringing.name.as_deref(),
                Some("pc"),
                "ringing names the puppet"
            );
            ringing.session
        }

        /// A puppet, a controller and an accepted session between them.
        fn paired(&mut self) -> (ConnId, ConnId, SessionId) {
            let puppet = self.open();
            let controller = self.open();
            let code = self.register(puppet);
            let session = self.ring(controller, puppet, code);
            let out = self.send(
                puppet,
                Accept {
                    session: session.clone(),
                }
                .into(),
            );
            assert_eq!(
                single_message(&out, controller),
                Accepted::new(session.clone()).into()
            );
            (puppet, controller, session)
        }

        /// `proctor` opens a room named "Exam"; returns its id and code.
        fn create_room(&mut self, proctor: ConnId) -> (RoomId, ControlCode) {
            let out = self.send(
                proctor,
                RoomCreate {
                    name: "Exam".into(),
                }
                .into(),
            );
            match single_message(&out, proctor) {
                SignalMessage::RoomCreated(created) => {
                    assert_eq!(created.expires_in, 600);
                    (created.room, created.code)
                }
                other => panic!("expected room_created, got {other:?}"),
            }
        }

        /// `member` joins the room with `code` as `name`; returns the session with the proctor.
        fn join(
            &mut self,
            member: ConnId,
            proctor: ConnId,
            code: ControlCode,
            name: &str,
        ) -> SessionId {
            let out = self.send(
                member,
                RoomJoin {
                    code,
                    name: name.into(),
                }
                .into(),
            );
            assert_eq!(out.len(), 2, "{out:?}");
            let SignalMessage::Member(line) = message_to(&out, proctor) else {
                panic!("expected member: {out:?}");
            };
            let SignalMessage::RoomJoined(joined) = message_to(&out, member) else {
                panic!("expected room_joined: {out:?}");
            };
            assert_eq!(line.session, joined.session);
            assert_eq!(line.room, joined.room);
            assert_eq!(line.name, name);
            assert_eq!(line.state, MemberStatus::Joined);
            assert_eq!(joined.name, "Exam", "the member is told whose room it is");
            joined.session
        }

        /// The proctor sets a member's state; returns what the proctor and the member got.
        fn set_state(
            &mut self,
            proctor: ConnId,
            room: &RoomId,
            session: &SessionId,
            state: MemberStatus,
        ) -> Vec<Output> {
            self.send(
                proctor,
                MemberState {
                    room: room.clone(),
                    session: session.clone(),
                    state,
                }
                .into(),
            )
        }
    }

    /// The roster lines sent to `to`, as (session, state).
    fn roster(outputs: &[Output], to: ConnId) -> Vec<(SessionId, MemberStatus)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { conn, text } if *conn == to => match SignalMessage::parse(text) {
                    Ok(SignalMessage::Member(m)) => Some((m.session, m.state)),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Long timers, so idle test connections are not dropped while a scenario runs.
    fn patient() -> RouterConfig {
        RouterConfig {
            ping_interval: Duration::from_secs(1000),
            dead_timeout: Duration::from_secs(2000),
            ..RouterConfig::default()
        }
    }

    fn message_to(outputs: &[Output], to: ConnId) -> SignalMessage {
        let texts: Vec<&String> = outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send { conn, text } if *conn == to => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(texts.len(), 1, "expected one message to {to}: {outputs:?}");
        SignalMessage::parse(texts[0]).unwrap()
    }

    fn single_message(outputs: &[Output], to: ConnId) -> SignalMessage {
        assert_eq!(outputs.len(), 1, "{outputs:?}");
        message_to(outputs, to)
    }

    fn error_code(outputs: &[Output], to: ConnId) -> ErrorCode {
        match message_to(outputs, to) {
            SignalMessage::Error(e) => e.code,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn closes(outputs: &[Output]) -> Vec<(ConnId, u16)> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Close { conn, code, .. } => Some((*conn, *code)),
                _ => None,
            })
            .collect()
    }

    fn sid(s: &str) -> SessionId {
        SessionId::from(s)
    }

    #[test]
    fn register_gives_a_nine_digit_code_and_its_lifetime() {
        let mut h = Harness::new();
        let puppet = h.open();
        let out = h.send(puppet, Register::named("pc").into());
        let SignalMessage::Registered(r) = single_message(&out, puppet) else {
            panic!("{out:?}")
        };
        assert_eq!(r.expires_in, 600);
        assert_eq!(r.code.digits().len(), 9);
    }

    #[test]
    fn configured_ice_servers_reach_puppets_controllers_and_rooms_with_fresh_credentials() {
        let ice = crate::ice::IceConfig::new(
            &["203.0.113.1:3478".to_string()],
            &["turn:203.0.113.1:3478".to_string()],
            Some("s3cret"),
            Duration::from_secs(3600),
        )
        .unwrap();
        let mut h = Harness::with_config(RouterConfig {
            ice,
            ..RouterConfig::default()
        });
        let start = h.now;
        h.router.set_wall_clock(1_700_000_000, start);
        let puppet = h.open();
        let out = h.send(puppet, Register::named("pc").into());
        let SignalMessage::Registered(registered) = single_message(&out, puppet) else {
            panic!("{out:?}")
        };
        assert_eq!(registered.ice_servers.len(), 2);
        assert_eq!(registered.ice_servers[0].urls, ["stun:203.0.113.1:3478"]);
        let turn = &registered.ice_servers[1];
        assert_eq!(turn.urls, ["turn:203.0.113.1:3478?transport=udp"]);
        let expected = rtcdesk_stun::turn::rest_credentials(
            b"s3cret",
            &format!("puppet-{}", puppet.0),
            1_700_003_600,
        );
        assert_eq!(turn.username.as_deref(), Some(expected.username.as_str()));
        assert_eq!(turn.credential.as_deref(), Some(expected.password.as_str()));

        // A minute later the controller's credentials expire a minute later too.
        h.now += Duration::from_secs(60);
        let controller = h.open();
        let session = h.ring(controller, puppet, registered.code);
        let out = h.send(puppet, Accept { session }.into());
        let SignalMessage::Accepted(accepted) = single_message(&out, controller) else {
            panic!("{out:?}")
        };
        let username = accepted.ice_servers[1].username.clone().unwrap();
        assert_eq!(username, format!("1700003660:controller-{}", controller.0));

        let proctor = h.open();
        let out = h.send(
            proctor,
            RoomCreate {
                name: "Exam".into(),
            }
            .into(),
        );
        let SignalMessage::RoomCreated(created) = single_message(&out, proctor) else {
            panic!("{out:?}")
        };
        assert_eq!(created.ice_servers.len(), 2);
        let member = h.open();
        let out = h.send(
            member,
            RoomJoin {
                code: created.code,
                name: "student".into(),
            }
            .into(),
        );
        let SignalMessage::RoomJoined(joined) = message_to(&out, member) else {
            panic!("{out:?}")
        };
        assert_eq!(joined.ice_servers.len(), 2);
    }

    #[test]
    fn without_ice_servers_messages_stay_v1() {
        let mut h = Harness::new();
        let puppet = h.open();
        let out = h.send(puppet, Register::named("pc").into());
        let Output::Send { text, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert!(!text.contains("ice_servers"), "{text}");
    }

    #[test]
    fn codes_are_unique_among_live_puppets() {
        let mut h = Harness::new();
        h.router = Router::with_entropy(
            RouterConfig::default(),
            Box::new(StuckEntropy { calls: 0 }),
            h.now,
        );
        let (a, b) = (h.open(), h.open());
        let code_a = h.register(a);
        let code_b = h.register(b);
        assert_eq!(code_a.number(), 42);
        assert_ne!(code_a, code_b, "the second draw collided and was redrawn");
    }

    fn claim(id: u32, token: &str) -> Register {
        Register {
            name: "pc".into(),
            watchers: None,
            device: Some(DeviceClaim {
                id: ControlCode::from_number(id).unwrap(),
                token: token.into(),
            }),
        }
    }

    const TOKEN: &str = "q2Vd7xk1Bz9mN3pL8sT4wAq2";
    const OTHER_TOKEN: &str = "zzzzzzzzzzzzzzzzzzzzzzzz";

    #[test]
    fn a_device_id_is_permanent_and_reachable_like_a_code() {
        let mut h = Harness::with_config(patient());
        let puppet = h.open();
        let out = h.send(puppet, claim(482_113_905, TOKEN).into());
        let SignalMessage::Registered(r) = single_message(&out, puppet) else {
            panic!("{out:?}")
        };
        assert_eq!(r.code.number(), 482_113_905);
        assert!(r.device);
        assert_eq!(r.expires_in, 0, "a device ID does not expire");
        // Long past a code's lifetime (pings answered), it still rings.
        for _ in 0..5 {
            h.advance(Duration::from_secs(300));
            h.router.handle_alive(puppet, h.now);
        }
        let controller = h.open();
        h.ring(controller, puppet, r.code);
    }

    #[test]
    fn a_device_id_is_kept_for_its_token_while_its_puppet_is_offline() {
        let mut h = Harness::new();
        let puppet = h.open();
        h.send(puppet, claim(482_113_905, TOKEN).into());
        h.router.handle_close(puppet, h.now);
        let id = ControlCode::from_number(482_113_905).unwrap();
        // Offline: a connect finds nobody...
        let controller = h.open();
        let out = h.send(
            controller,
            Connect {
                code: id,
                name: "Ada".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, controller), ErrorCode::UnknownCode);
        // ...a stranger who learned the ID cannot take it...
        let stranger = h.open();
        let out = h.send(stranger, claim(482_113_905, OTHER_TOKEN).into());
        assert_eq!(error_code(&out, stranger), ErrorCode::NotAllowed);
        // ...and no one-time code is ever drawn from it.
        assert!(h.router.devices.contains_key(&id));
        // The device itself comes back with its token.
        let back = h.open();
        let out = h.send(back, claim(482_113_905, TOKEN).into());
        assert!(matches!(
            single_message(&out, back),
            SignalMessage::Registered(Registered { device: true, .. })
        ));
    }

    #[test]
    fn a_device_that_reconnects_takes_its_id_from_the_old_connection() {
        let mut h = Harness::new();
        let old = h.open();
        h.send(old, claim(5, TOKEN).into());
        let new = h.open();
        let out = h.send(new, claim(5, TOKEN).into());
        assert!(matches!(
            single_message(&out, new),
            SignalMessage::Registered(Registered { device: true, .. })
        ));
        let controller = h.open();
        h.ring(controller, new, ControlCode::from_number(5).unwrap());
        // The old connection closing later does not take the ID with it.
        h.router.handle_close(old, h.now);
        let second = h.open();
        h.ring(second, new, ControlCode::from_number(5).unwrap());
    }

    #[test]
    fn device_claims_that_are_malformed_or_collide_are_refused() {
        let mut h = Harness::new();
        let puppet = h.open();
        for token in [
            "short",
            &"x".repeat(129),
            "with space in the middle!!",
            "ünïcödé-ünïcödé-ünïcödé",
        ] {
            let out = h.send(puppet, claim(7, token).into());
            assert_eq!(error_code(&out, puppet), ErrorCode::BadMessage, "{token:?}");
        }
        // An ID that is live as someone's one-time code.
        let other = h.open();
        let code = h.register(other);
        let out = h.send(puppet, claim(code.number(), TOKEN).into());
        assert_eq!(error_code(&out, puppet), ErrorCode::NotAllowed);
        // Only so many devices.
        let mut h = Harness::with_config(RouterConfig {
            max_devices: 1,
            ..RouterConfig::default()
        });
        let (a, b) = (h.open(), h.open());
        h.send(a, claim(1, TOKEN).into());
        let out = h.send(b, claim(2, TOKEN).into());
        assert_eq!(error_code(&out, b), ErrorCode::Busy);
    }

    #[test]
    fn a_device_binding_is_forgotten_long_after_its_puppet_was_last_online() {
        let mut h = Harness::with_config(RouterConfig {
            device_idle_lifetime: Duration::from_secs(3600),
            ..RouterConfig::default()
        });
        let puppet = h.open();
        h.send(puppet, claim(9, TOKEN).into());
        h.router.handle_close(puppet, h.now);
        h.advance(Duration::from_secs(3601));
        h.advance(Duration::from_secs(61));
        let newcomer = h.open();
        let out = h.send(newcomer, claim(9, OTHER_TOKEN).into());
        assert!(matches!(
            single_message(&out, newcomer),
            SignalMessage::Registered(Registered { device: true, .. })
        ));
    }

    #[test]
    fn one_time_codes_are_never_drawn_from_bound_device_ids() {
        let mut h = Harness::new();
        h.router = Router::with_entropy(
            RouterConfig::default(),
            Box::new(StuckEntropy { calls: 0 }),
            h.now,
        );
        let device = h.open();
        h.send(device, claim(42, TOKEN).into());
        h.router.handle_close(device, h.now);
        let puppet = h.open();
        assert_ne!(h.register(puppet).number(), 42);
    }

    #[test]
    fn connect_rings_the_puppet_and_tells_the_controller() {
        let mut h = Harness::new();
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        let session = h.ring(controller, puppet, code);
        assert!(session.as_str().len() >= 24, "session ids carry >= 96 bits");
        assert!(session.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn the_code_is_accepted_with_or_without_spaces() {
        let mut h = Harness::new();
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        let grouped = format!(r#"{{"type":"connect","code":"{code}","name":"Ada"}}"#);
        assert!(grouped.contains(' '));
        let out = h.text(controller, &grouped);
        assert!(matches!(
            message_to(&out, controller),
            SignalMessage::Ringing(_)
        ));
    }

    #[test]
    fn accept_tells_the_controller_and_opens_the_relay() {
        let mut h = Harness::new();
        let (puppet, controller, session) = h.paired();
        let offer: SignalMessage = Offer {
            session: session.clone(),
            sdp: "v=0\r\n".into(),
        }
        .into();
        assert_eq!(
            single_message(&h.send(puppet, offer.clone()), controller),
            offer
        );
        let answer: SignalMessage = Answer {
            session: session.clone(),
            sdp: "v=0\r\n".into(),
        }
        .into();
        assert_eq!(
            single_message(&h.send(controller, answer.clone()), puppet),
            answer
        );
        for (from, to) in [(puppet, controller), (controller, puppet)] {
            let candidate: SignalMessage = Candidate {
                session: session.clone(),
                candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                mid: Some("0".into()),
            }
            .into();
            assert_eq!(
                single_message(&h.send(from, candidate.clone()), to),
                candidate
            );
            let end: SignalMessage = Candidate {
                session: session.clone(),
                candidate: String::new(),
                mid: None,
            }
            .into();
            assert_eq!(single_message(&h.send(from, end.clone()), to), end);
        }
    }

    #[test]
    fn reject_tells_the_controller_with_the_reason_and_ends_the_session() {
        let mut h = Harness::new();
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        let session = h.ring(controller, puppet, code);
        let out = h.send(
            puppet,
            Reject {
                session: session.clone(),
                reason: Some("not now".into()),
            }
            .into(),
        );
        assert_eq!(
            single_message(&out, controller),
            Rejected {
                session: session.clone(),
                reason: Some("not now".into())
            }
            .into()
        );
        let out = h.send(controller, Leave { session }.into());
        assert_eq!(error_code(&out, controller), ErrorCode::UnknownSession);
    }

    #[test]
    fn leave_by_either_end_sends_left_to_the_other() {
        let mut h = Harness::new();
        let (puppet, controller, session) = h.paired();
        let out = h.send(
            controller,
            Leave {
                session: session.clone(),
            }
            .into(),
        );
        assert_eq!(
            single_message(&out, puppet),
            Left {
                session: session.clone()
            }
            .into()
        );
        assert_eq!(h.router.session_count(), 0);

        let (puppet, controller, session) = h.paired();
        let out = h.send(
            puppet,
            Leave {
                session: session.clone(),
            }
            .into(),
        );
        assert_eq!(single_message(&out, controller), Left { session }.into());
    }

    #[test]
    fn a_controller_may_leave_while_ringing() {
        let mut h = Harness::new();
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        let session = h.ring(controller, puppet, code);
        let out = h.send(
            controller,
            Leave {
                session: session.clone(),
            }
            .into(),
        );
        assert_eq!(single_message(&out, puppet), Left { session }.into());
    }

    #[test]
    fn verification_messages_pass_through_unread_while_ringing_and_after() {
        let mut h = Harness::new();
        let (puppet, controller, stranger) = (h.open(), h.open(), h.open());
        let code = h.register(puppet);
        // Whatever `connect.pake` holds reaches the puppet as it was sent.
        let out = h.send(
            controller,
            Connect {
                code,
                name: "Ada".into(),
                pake: Some("not even base64 ✓".into()),
            }
            .into(),
        );
        let SignalMessage::Incoming(incoming) = message_to(&out, puppet) else {
            panic!("expected incoming: {out:?}");
        };
        assert_eq!(incoming.pake.as_deref(), Some("not even base64 ✓"));
        let session = incoming.session;
        let pake = |data: &str| -> SignalMessage {
            Pake {
                session: session.clone(),
                data: data.into(),
            }
            .into()
        };
        // Both ways while the session rings: verification comes before the user is asked.
        let out = h.send(puppet, pake("reply"));
        assert_eq!(single_message(&out, controller), pake("reply"));
        let out = h.send(controller, pake("confirm"));
        assert_eq!(single_message(&out, puppet), pake("confirm"));
        // A connection that is not an end learns nothing, not even that the session exists.
        let out = h.send(stranger, pake("forged"));
        assert_eq!(error_code(&out, stranger), ErrorCode::UnknownSession);
        h.send(
            puppet,
            Accept {
                session: session.clone(),
            }
            .into(),
        );
        let out = h.send(controller, pake("fingerprints"));
        assert_eq!(single_message(&out, puppet), pake("fingerprints"));
        // Once the session is over, it is unknown.
        h.send(
            controller,
            Leave {
                session: session.clone(),
            }
            .into(),
        );
        let out = h.send(puppet, pake("late"));
        assert_eq!(error_code(&out, puppet), ErrorCode::UnknownSession);
    }

    #[test]
    fn a_v1_connect_gives_an_incoming_without_pake() {
        let mut h = Harness::new();
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        let out = h.send(
            controller,
            SignalMessage::parse(&format!(
                r#"{{"type":"connect","code":"{}","name":"Ada"}}"#,
                code.digits()
            ))
            .unwrap(),
        );
        let incoming = message_to(&out, puppet);
        assert!(!incoming.encode().contains("pake"), "{}", incoming.encode());
    }

    #[test]
    fn a_closed_connection_sends_left_to_every_peer_of_its_sessions() {
        let mut h = Harness::new();
        let puppet = h.open();
        let code = h.register(puppet);
        let (c1, c2) = (h.open(), h.open());
        let s1 = h.ring(c1, puppet, code);
        let s2 = h.ring(c2, puppet, code);
        h.send(
            puppet,
            Accept {
                session: s1.clone(),
            }
            .into(),
        );
        h.router.handle_close(puppet, h.now);
        let out = h.drain();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(message_to(&out, c1), Left { session: s1 }.into());
        assert_eq!(message_to(&out, c2), Left { session: s2 }.into());
        assert_eq!(h.router.session_count(), 0);
        assert_eq!(h.router.puppet_count(), 0);
        // The code died with the puppet.
        let out = h.send(
            c1,
            Connect {
                code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, c1), ErrorCode::UnknownCode);
    }

    #[test]
    fn a_puppet_can_have_several_controllers_and_a_controller_several_puppets() {
        let mut h = Harness::new();
        let (p1, p2) = (h.open(), h.open());
        let (code1, code2) = (h.register(p1), h.register(p2));
        let (c1, c2) = (h.open(), h.open());
        let s11 = h.ring(c1, p1, code1);
        let s21 = h.ring(c2, p1, code1);
        let s12 = h.ring(c1, p2, code2);
        for (puppet, session) in [(p1, &s11), (p1, &s21), (p2, &s12)] {
            h.send(
                puppet,
                Accept {
                    session: session.clone(),
                }
                .into(),
            );
        }
        // Each relay reaches exactly the other end of its own session.
        for (from, to, session) in [(p1, c1, &s11), (p1, c2, &s21), (p2, c1, &s12)] {
            let offer: SignalMessage = Offer {
                session: session.clone(),
                sdp: format!("{from}"),
            }
            .into();
            assert_eq!(single_message(&h.send(from, offer.clone()), to), offer);
        }
        // c1 leaving p1 does not disturb c2's session with p1 or c1's with p2.
        h.send(c1, Leave { session: s11 }.into());
        assert_eq!(h.router.session_count(), 2);
    }

    #[test]
    fn a_session_id_is_valid_only_for_its_two_ends() {
        let mut h = Harness::new();
        let (_puppet, _controller, session) = h.paired();
        let stranger = h.open();
        for message in [
            SignalMessage::from(Offer {
                session: session.clone(),
                sdp: "v=0".into(),
            }),
            Answer {
                session: session.clone(),
                sdp: "v=0".into(),
            }
            .into(),
            Candidate {
                session: session.clone(),
                candidate: String::new(),
                mid: None,
            }
            .into(),
            Leave {
                session: session.clone(),
            }
            .into(),
            Accept {
                session: session.clone(),
            }
            .into(),
            Reject {
                session: session.clone(),
                reason: None,
            }
            .into(),
        ] {
            let out = h.send(stranger, message);
            assert_eq!(error_code(&out, stranger), ErrorCode::UnknownSession);
        }
        assert_eq!(h.router.session_count(), 1);
    }

    #[test]
    fn unknown_session_for_an_id_that_never_existed() {
        let mut h = Harness::new();
        let c = h.open();
        let out = h.send(
            c,
            Offer {
                session: sid("nope"),
                sdp: "v=0".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, c), ErrorCode::UnknownSession);
    }

    #[test]
    fn bad_message_for_bad_json_missing_or_mistyped_fields_and_binary() {
        let mut h = Harness::new();
        let c = h.open();
        for text in [
            "not json",
            "[1]",
            r#"{"no":"type"}"#,
            r#"{"type":"offer","session":"s"}"#,
            r#"{"type":"register","name":5}"#,
            &format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
        ] {
            let out = h.text(c, text);
            assert_eq!(error_code(&out, c), ErrorCode::BadMessage, "{text}");
        }
        h.router.handle_binary(c, 10, h.now);
        let out = h.drain();
        assert_eq!(error_code(&out, c), ErrorCode::BadMessage);
        assert!(closes(&out).is_empty(), "bad input keeps the connection up");
    }

    #[test]
    fn unknown_type_names_the_type() {
        let mut h = Harness::new();
        let c = h.open();
        let out = h.text(c, r#"{"type":"teleport"}"#);
        let SignalMessage::Error(e) = single_message(&out, c) else {
            panic!()
        };
        assert_eq!(e.code, ErrorCode::UnknownType);
        assert!(e.message.contains("teleport"));
    }

    #[test]
    fn unknown_code_for_a_code_no_puppet_has() {
        let mut h = Harness::new();
        let c = h.open();
        let out = h.text(c, r#"{"type":"connect","code":"000 000 001","name":"x"}"#);
        assert_eq!(error_code(&out, c), ErrorCode::UnknownCode);
    }

    #[test]
    fn not_allowed_for_a_controller_accepting_or_rejecting() {
        let mut h = Harness::new();
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        let session = h.ring(controller, puppet, code);
        let out = h.send(
            controller,
            Accept {
                session: session.clone(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, controller), ErrorCode::NotAllowed);
        let out = h.send(
            controller,
            Reject {
                session,
                reason: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, controller), ErrorCode::NotAllowed);
    }

    #[test]
    fn not_allowed_to_relay_before_accept() {
        let mut h = Harness::new();
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        let session = h.ring(controller, puppet, code);
        let out = h.send(
            puppet,
            Offer {
                session: session.clone(),
                sdp: "v=0".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, puppet), ErrorCode::NotAllowed);
        let out = h.send(
            controller,
            Candidate {
                session,
                candidate: String::new(),
                mid: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, controller), ErrorCode::NotAllowed);
    }

    #[test]
    fn not_allowed_to_accept_twice_to_connect_to_oneself_or_to_send_server_messages() {
        let mut h = Harness::new();
        let (puppet, _controller, session) = h.paired();
        let out = h.send(puppet, Accept { session }.into());
        assert_eq!(error_code(&out, puppet), ErrorCode::NotAllowed);

        let code = h.register(puppet);
        let out = h.send(
            puppet,
            Connect {
                code,
                name: "me".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, puppet), ErrorCode::NotAllowed);

        let out = h.send(puppet, Left { session: sid("x") }.into());
        assert_eq!(error_code(&out, puppet), ErrorCode::NotAllowed);
    }

    #[test]
    fn a_puppet_may_also_act_as_a_controller() {
        let mut h = Harness::new();
        let (a, b) = (h.open(), h.open());
        let _code_a = h.register(a);
        let code_b = h.register(b);
        h.ring(a, b, code_b);
    }

    #[test]
    fn busy_when_a_connection_has_too_many_sessions() {
        let config = RouterConfig {
            max_sessions_per_connection: 2,
            ..RouterConfig::default()
        };
        let mut h = Harness::with_config(config);
        let puppet = h.open();
        let code = h.register(puppet);
        let (c1, c2, c3) = (h.open(), h.open(), h.open());
        h.ring(c1, puppet, code);
        h.ring(c2, puppet, code);
        // The puppet is full.
        let out = h.send(
            c3,
            Connect {
                code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, c3), ErrorCode::Busy);
        // A controller is full too.
        let (p2, p3) = (h.open(), h.open());
        let (code2, code3) = (h.register(p2), h.register(p3));
        h.ring(c3, p2, code2);
        h.ring(c3, p3, code3);
        let p4 = h.open();
        let code4 = h.register(p4);
        let out = h.send(
            c3,
            Connect {
                code: code4,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, c3), ErrorCode::Busy);
    }

    #[test]
    fn busy_and_closed_when_an_address_has_too_many_connections() {
        let config = RouterConfig {
            max_connections_per_address: 2,
            ..RouterConfig::default()
        };
        let mut h = Harness::with_config(config);
        h.open_from(addr(1));
        let second = h.open_from(addr(1));
        assert!(h.drain().is_empty());
        let third = h.open_from(addr(1));
        let out = h.drain();
        assert_eq!(error_code(&out, third), ErrorCode::Busy);
        assert_eq!(closes(&out), vec![(third, CLOSE_TRY_AGAIN_LATER)]);
        // Another address is fine, and a freed slot can be reused.
        h.open_from(addr(2));
        h.router.handle_close(second, h.now);
        h.open_from(addr(1));
        assert!(h.drain().is_empty());
        assert_eq!(h.router.connection_count(), 3);
    }

    #[test]
    fn the_sixth_failed_connect_in_a_minute_is_rate_limited_and_closed() {
        let mut h = Harness::new();
        let puppet = h.open_from(addr(9));
        let code = h.register(puppet);
        let c = h.open_from(addr(1));
        for i in 0..5 {
            let text = if i % 2 == 0 {
                r#"{"type":"connect","code":"000000001","name":"x"}"#
            } else {
                r#"{"type":"connect","code":"12","name":"x"}"#
            };
            let out = h.text(c, text);
            assert!(closes(&out).is_empty());
            assert!(matches!(
                error_code(&out, c),
                ErrorCode::UnknownCode | ErrorCode::BadMessage
            ));
        }
        let out = h.text(c, r#"{"type":"connect","code":"000000001","name":"x"}"#);
        assert_eq!(error_code(&out, c), ErrorCode::RateLimited);
        assert_eq!(closes(&out), vec![(c, CLOSE_POLICY)]);

        // Another connection from the same address is refused even with the right code...
        let c2 = h.open_from(addr(1));
        h.now += Duration::from_secs(59);
        let out = h.send(
            c2,
            Connect {
                code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, c2), ErrorCode::RateLimited);
        // ...while other addresses are not affected...
        let other = h.open_from(addr(2));
        let out = h.send(
            other,
            Connect {
                code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert!(matches!(message_to(&out, other), SignalMessage::Ringing(_)));
        // ...and once the minute has passed the address may try again.
        h.now += Duration::from_secs(1);
        let c3 = h.open_from(addr(1));
        let out = h.send(
            c3,
            Connect {
                code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert!(matches!(message_to(&out, c3), SignalMessage::Ringing(_)));
    }

    #[test]
    fn an_expired_code_is_unknown_and_a_new_registration_gives_a_fresh_one() {
        // Timers long enough that the idle test connections are not dropped as dead.
        let mut h = Harness::with_config(RouterConfig {
            ping_interval: Duration::from_secs(1000),
            dead_timeout: Duration::from_secs(2000),
            ..RouterConfig::default()
        });
        let (puppet, controller) = (h.open(), h.open());
        let code = h.register(puppet);
        h.advance(Duration::from_secs(599));
        h.now += Duration::from_secs(1);
        let out = h.send(
            controller,
            Connect {
                code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, controller), ErrorCode::UnknownCode);
        let fresh = h.register(puppet);
        h.ring(controller, puppet, fresh);
    }

    #[test]
    fn re_register_retires_the_old_code_but_keeps_sessions() {
        let mut h = Harness::new();
        let (puppet, controller, session) = h.paired();
        let old = h.register(puppet);
        let new = h.register(puppet);
        assert_ne!(old, new);
        let late = h.open();
        let out = h.send(
            late,
            Connect {
                code: old,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, late), ErrorCode::UnknownCode);
        let offer: SignalMessage = Offer {
            session,
            sdp: "v=0".into(),
        }
        .into();
        assert_eq!(
            single_message(&h.send(puppet, offer.clone()), controller),
            offer
        );
        h.ring(late, puppet, new);
    }

    #[test]
    fn an_oversized_message_closes_with_1009_and_ends_sessions() {
        let mut h = Harness::new();
        let (puppet, controller, session) = h.paired();
        let big = format!(
            r#"{{"type":"offer","session":"{session}","sdp":"{}"}}"#,
            "a".repeat(MAX_SIGNAL_MESSAGE)
        );
        let out = h.text(puppet, &big);
        assert_eq!(closes(&out), vec![(puppet, CLOSE_TOO_BIG)]);
        assert_eq!(message_to(&out, controller), Left { session }.into());
        // Later frames and the shell's close report for it are ignored.
        assert!(h.text(puppet, "{}").is_empty());
        h.router.handle_close(puppet, h.now);
        assert!(h.drain().is_empty());
    }

    #[test]
    fn a_flood_closes_with_1008_but_the_sustained_rate_is_fine() {
        let mut h = Harness::new();
        let (puppet, controller, session) = h.paired();
        let candidate = Candidate {
            session: session.clone(),
            candidate: String::new(),
            mid: None,
        };
        // 200 messages a second for ten seconds is allowed.
        for _ in 0..2000 {
            h.now += Duration::from_millis(5);
            let out = h.send(puppet, candidate.clone().into());
            assert!(closes(&out).is_empty());
        }
        // A burst of 401 at once is not.
        let mut closed = Vec::new();
        for _ in 0..401 {
            closed.extend(closes(&h.send(controller, candidate.clone().into())));
        }
        assert_eq!(closed, vec![(controller, CLOSE_POLICY)]);
        assert_eq!(h.router.session_count(), 0);
    }

    #[test]
    fn idle_connections_are_pinged_and_dead_ones_dropped_with_left() {
        let config = RouterConfig {
            ping_interval: Duration::from_secs(3),
            dead_timeout: Duration::from_secs(6),
            ..RouterConfig::default()
        };
        let mut h = Harness::with_config(config);
        let (puppet, controller, session) = h.paired();
        let died_at = h.now;
        let mut left_at = None;
        for _ in 0..20 {
            let out = h.advance(Duration::from_millis(500));
            // The controller answers every ping; the puppet never does.
            if out.contains(&Output::Ping { conn: controller }) {
                h.router.handle_alive(controller, h.now);
            }
            if !closes(&out).is_empty() {
                assert_eq!(closes(&out), vec![(puppet, CLOSE_GOING_AWAY)]);
                assert_eq!(
                    message_to(&out, controller),
                    Left {
                        session: session.clone()
                    }
                    .into()
                );
                assert!(left_at.is_none());
                left_at = Some(h.now);
            }
        }
        let left_at = left_at.expect("the silent puppet was dropped");
        assert!(left_at - died_at <= Duration::from_secs(10));
        assert_eq!(h.router.connection_count(), 1, "the live controller stays");
        assert!(h.router.poll_timeout().unwrap() > h.now);
    }

    #[test]
    fn a_connection_that_answers_every_ping_survives_late_timers() {
        let mut h = Harness::new();
        let (_puppet, _controller, _session) = h.paired();
        let start = h.now;
        let mut round = 0u64;
        while h.now - start < Duration::from_secs(120) {
            // The shell's timer fires late by 0 to 19 ms, varying, as on a busy machine.
            round += 1;
            let late = Duration::from_millis(round * 7 % 20);
            let due = h
                .router
                .poll_timeout()
                .expect("the router always has a timer");
            h.now = due.max(h.now) + late;
            h.router.handle_timeout(h.now);
            let out = h.drain();
            assert!(closes(&out).is_empty(), "a live connection was dropped");
            // Each pong arrives a millisecond after its ping.
            let pinged: Vec<ConnId> = out
                .iter()
                .filter_map(|o| match o {
                    Output::Ping { conn } => Some(*conn),
                    _ => None,
                })
                .collect();
            h.now += Duration::from_millis(1);
            for conn in pinged {
                h.router.handle_alive(conn, h.now);
            }
        }
        assert_eq!(h.router.connection_count(), 2);
        assert_eq!(h.router.session_count(), 1);
    }

    #[test]
    fn pings_to_many_connections_are_spread_over_the_interval() {
        let mut h = Harness::new();
        for _ in 0..160 {
            h.open();
        }
        let tick = h.router.config().ping_interval / LIVENESS_SLICES as u32;
        let mut pinged = std::collections::HashSet::new();
        let mut most_in_one_tick = 0;
        // From the start until just before the dead timeout, one handle_timeout per tick.
        for _ in 0..(2 * LIVENESS_SLICES - 1) {
            let out = h.advance(tick);
            let pings: Vec<ConnId> = out
                .iter()
                .filter_map(|o| match o {
                    Output::Ping { conn } => Some(*conn),
                    _ => None,
                })
                .collect();
            most_in_one_tick = most_in_one_tick.max(pings.len());
            pinged.extend(pings);
            assert!(closes(&out).is_empty());
        }
        assert_eq!(pinged.len(), 160, "every idle connection was pinged");
        assert_eq!(most_in_one_tick, 160 / LIVENESS_SLICES as usize);
    }

    #[test]
    fn an_expired_code_given_to_a_new_puppet_is_not_retired_by_its_old_owner() {
        let mut h = Harness::with_config(RouterConfig {
            ping_interval: Duration::from_secs(1000),
            dead_timeout: Duration::from_secs(2000),
            ..RouterConfig::default()
        });
        h.router = Router::with_entropy(
            h.router.config().clone(),
            Box::new(StuckEntropy { calls: 0 }),
            h.now,
        );
        let (old_owner, new_owner, controller) = (h.open(), h.open(), h.open());
        let code = h.register(old_owner);
        // The code expires but is not purged yet; the same digits come up for another puppet.
        h.now += Duration::from_secs(601);
        assert_eq!(h.register(new_owner), code);
        // The old owner re-registering, then leaving, must not take the code from the new one.
        assert_ne!(h.register(old_owner), code);
        h.router.handle_close(old_owner, h.now);
        h.ring(controller, new_owner, code);
    }

    #[test]
    fn a_flood_of_control_frames_is_closed_too() {
        let mut h = Harness::new();
        let (puppet, controller, session) = h.paired();
        // The controller spent one of its 400 tokens on `connect`.
        for _ in 0..399 {
            h.router.handle_alive(controller, h.now);
        }
        assert!(h.drain().is_empty(), "a burst up to the limit is fine");
        h.router.handle_alive(controller, h.now);
        let out = h.drain();
        assert_eq!(closes(&out), vec![(controller, CLOSE_POLICY)]);
        assert_eq!(message_to(&out, puppet), Left { session }.into());
    }

    #[test]
    fn room_create_gives_a_room_id_and_a_nine_digit_room_code() {
        let mut h = Harness::new();
        let proctor = h.open();
        let (room, code) = h.create_room(proctor);
        assert!(room.as_str().len() >= 24, "room ids carry >= 96 bits");
        assert_eq!(code.digits().len(), 9);
        assert_eq!(h.router.room_count(), 1);
    }

    #[test]
    fn joining_needs_no_accept_and_the_puppet_offers_as_in_v1() {
        let mut h = Harness::new();
        let (proctor, puppet) = (h.open(), h.open());
        let (_room, code) = h.create_room(proctor);
        let session = h.join(puppet, proctor, code, "desk 7");
        let offer: SignalMessage = Offer {
            session: session.clone(),
            sdp: "v=0".into(),
        }
        .into();
        assert_eq!(
            single_message(&h.send(puppet, offer.clone()), proctor),
            offer
        );
        let answer: SignalMessage = Answer {
            session: session.clone(),
            sdp: "v=0".into(),
        }
        .into();
        assert_eq!(
            single_message(&h.send(proctor, answer.clone()), puppet),
            answer
        );
        // There is nothing to accept: the session is established.
        let out = h.send(puppet, Accept { session }.into());
        assert_eq!(error_code(&out, puppet), ErrorCode::NotAllowed);
    }

    #[test]
    fn the_roster_shows_every_change_in_the_order_it_happens() {
        let mut h = Harness::new();
        let (proctor, ada, bob) = (h.open(), h.open(), h.open());
        let (room, code) = h.create_room(proctor);
        let mut seen = Vec::new();
        let s_ada = h.join(ada, proctor, code, "Ada");
        seen.push((s_ada.clone(), MemberStatus::Joined));
        let s_bob = h.join(bob, proctor, code, "Bob");
        seen.push((s_bob.clone(), MemberStatus::Joined));

        // The proctor watches both, then takes control of Ada; each member is told its own.
        for (session, member) in [(&s_ada, ada), (&s_bob, bob)] {
            let out = h.set_state(proctor, &room, session, MemberStatus::Watching);
            assert_eq!(
                roster(&out, member),
                vec![(session.clone(), MemberStatus::Watching)]
            );
            seen.extend(roster(&out, proctor));
        }
        let out = h.set_state(proctor, &room, &s_ada, MemberStatus::Controlled);
        assert_eq!(
            roster(&out, ada),
            vec![(s_ada.clone(), MemberStatus::Controlled)]
        );
        assert!(roster(&out, bob).is_empty(), "Bob hears nothing about Ada");
        seen.extend(roster(&out, proctor));

        // Bob leaves on his own; the proctor lets Ada go.
        let out = h.send(
            bob,
            Leave {
                session: s_bob.clone(),
            }
            .into(),
        );
        assert_eq!(out.len(), 1, "Bob is not told about his own leave: {out:?}");
        seen.extend(roster(&out, proctor));
        let out = h.send(
            proctor,
            Leave {
                session: s_ada.clone(),
            }
            .into(),
        );
        assert_eq!(
            message_to(&out, ada),
            Left {
                session: s_ada.clone()
            }
            .into()
        );
        seen.extend(roster(&out, proctor));

        assert_eq!(
            seen,
            vec![
                (s_ada.clone(), MemberStatus::Joined),
                (s_bob.clone(), MemberStatus::Joined),
                (s_ada.clone(), MemberStatus::Watching),
                (s_bob.clone(), MemberStatus::Watching),
                (s_ada.clone(), MemberStatus::Controlled),
                (s_bob.clone(), MemberStatus::Left),
                (s_ada.clone(), MemberStatus::Left),
            ]
        );
        assert_eq!(h.router.session_count(), 0);
        assert_eq!(h.router.room_count(), 1, "the room outlives its members");
    }

    #[test]
    fn a_lost_member_shows_reconnecting_then_left_within_10_s() {
        let mut h = Harness::new();
        let (proctor, member, steady) = (h.open(), h.open(), h.open());
        let (_room, code) = h.create_room(proctor);
        let lost = h.join(member, proctor, code, "lost");
        let kept = h.join(steady, proctor, code, "steady");
        let died_at = h.now;
        let mut lines = Vec::new();
        let mut left_at = None;
        for _ in 0..40 {
            let out = h.advance(Duration::from_millis(250));
            // The proctor and the steady member answer every ping; the lost member never does.
            for conn in [proctor, steady] {
                if out.contains(&Output::Ping { conn }) {
                    h.router.handle_alive(conn, h.now);
                }
            }
            for line in roster(&out, proctor) {
                if line == (lost.clone(), MemberStatus::Left) {
                    assert_eq!(closes(&out), vec![(member, CLOSE_GOING_AWAY)]);
                    left_at = Some(h.now);
                }
                lines.push(line);
            }
        }
        assert_eq!(
            lines,
            vec![
                (lost.clone(), MemberStatus::Reconnecting),
                (lost.clone(), MemberStatus::Left)
            ],
            "the steady member never shows as reconnecting"
        );
        let left_at = left_at.expect("the lost member was shown as left");
        assert!(
            left_at - died_at <= Duration::from_secs(10),
            "{:?}",
            left_at - died_at
        );
        assert_eq!(h.router.session_count(), 1);
        let _ = kept;
    }

    #[test]
    fn a_quiet_member_that_speaks_again_shows_its_state_again() {
        let mut h = Harness::new();
        let (proctor, member) = (h.open(), h.open());
        let (room, code) = h.create_room(proctor);
        let session = h.join(member, proctor, code, "flaky");
        h.set_state(proctor, &room, &session, MemberStatus::Watching);
        let mut lines = Vec::new();
        while lines.is_empty() {
            let out = h.advance(Duration::from_millis(100));
            if out.contains(&Output::Ping { conn: proctor }) {
                h.router.handle_alive(proctor, h.now);
            }
            lines = roster(&out, proctor);
        }
        assert_eq!(lines, vec![(session.clone(), MemberStatus::Reconnecting)]);
        // Its pong arrives before the dead timeout.
        h.router.handle_alive(member, h.now);
        assert_eq!(
            roster(&h.drain(), proctor),
            vec![(session.clone(), MemberStatus::Watching)]
        );
        h.router.handle_alive(member, h.now);
        assert!(h.drain().is_empty(), "said once");
    }

    #[test]
    fn members_that_answer_every_ping_never_show_reconnecting_despite_late_timers() {
        let mut h = Harness::new();
        let proctor = h.open();
        let (_room, code) = h.create_room(proctor);
        for i in 0..20 {
            let member = h.open();
            h.join(member, proctor, code, &format!("m{i}"));
        }
        let start = h.now;
        let mut round = 0u64;
        while h.now - start < Duration::from_secs(60) {
            round += 1;
            let late = Duration::from_millis(round * 7 % 20);
            let due = h.router.poll_timeout().expect("a timer");
            h.now = due.max(h.now) + late;
            h.router.handle_timeout(h.now);
            let out = h.drain();
            assert!(roster(&out, proctor).is_empty(), "{out:?}");
            h.now += Duration::from_millis(1);
            for o in out {
                if let Output::Ping { conn } = o {
                    h.router.handle_alive(conn, h.now);
                }
            }
        }
        assert_eq!(h.router.session_count(), 20);
    }

    #[test]
    fn a_stranger_with_a_wrong_room_code_is_refused_then_rate_limited() {
        let mut h = Harness::new();
        let proctor = h.open_from(addr(9));
        let (_room, code) = h.create_room(proctor);
        let puppet = h.open_from(addr(8));
        let control_code = h.register(puppet);
        let stranger = h.open_from(addr(1));
        let wrong = ControlCode::from_number((code.number() + 1) % ControlCode::SPACE).unwrap();
        // A wrong code, a malformed one, a control code (not a room's) and a v1 connect with the
        // room code all count as failures of the same address.
        let attempts: [String; 5] = [
            SignalMessage::from(RoomJoin {
                code: wrong,
                name: "x".into(),
            })
            .encode(),
            r#"{"type":"room_join","code":"12","name":"x"}"#.into(),
            SignalMessage::from(RoomJoin {
                code: control_code,
                name: "x".into(),
            })
            .encode(),
            SignalMessage::from(Connect {
                code,
                name: "x".into(),
                pake: None,
            })
            .encode(),
            SignalMessage::from(RoomJoin {
                code: wrong,
                name: "x".into(),
            })
            .encode(),
        ];
        for text in &attempts {
            let out = h.text(stranger, text);
            assert!(closes(&out).is_empty());
            assert!(matches!(
                error_code(&out, stranger),
                ErrorCode::UnknownCode | ErrorCode::BadMessage
            ));
        }
        let out = h.text(stranger, &attempts[0]);
        assert_eq!(error_code(&out, stranger), ErrorCode::RateLimited);
        assert_eq!(closes(&out), vec![(stranger, CLOSE_POLICY)]);
        // Even the right code is refused from that address for the window...
        let again = h.open_from(addr(1));
        let out = h.send(
            again,
            RoomJoin {
                code,
                name: "x".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, again), ErrorCode::RateLimited);
        // ...while another address joins.
        let honest = h.open_from(addr(2));
        h.join(honest, proctor, code, "honest");
    }

    #[test]
    fn the_proctor_leaving_ends_every_session_of_every_room() {
        let mut h = Harness::new();
        let proctor = h.open();
        let (_a, code_a) = h.create_room(proctor);
        let (_b, code_b) = h.create_room(proctor);
        let (m1, m2, m3) = (h.open(), h.open(), h.open());
        let s1 = h.join(m1, proctor, code_a, "one");
        let s2 = h.join(m2, proctor, code_a, "two");
        let s3 = h.join(m3, proctor, code_b, "three");
        h.router.handle_close(proctor, h.now);
        let out = h.drain();
        assert_eq!(message_to(&out, m1), Left { session: s1 }.into());
        assert_eq!(message_to(&out, m2), Left { session: s2 }.into());
        assert_eq!(message_to(&out, m3), Left { session: s3 }.into());
        assert_eq!(out.len(), 3, "nothing is sent to the gone proctor: {out:?}");
        assert_eq!((h.router.session_count(), h.router.room_count()), (0, 0));
        // The codes are retired with the rooms.
        let late = h.open();
        let out = h.send(
            late,
            RoomJoin {
                code: code_a,
                name: "late".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, late), ErrorCode::UnknownCode);
    }

    #[test]
    fn room_close_refuses_newcomers_and_room_end_ends_members_then_the_room() {
        let mut h = Harness::new();
        let (proctor, m1, m2, late) = (h.open(), h.open(), h.open(), h.open());
        let (room, code) = h.create_room(proctor);
        let s1 = h.join(m1, proctor, code, "one");
        let s2 = h.join(m2, proctor, code, "two");
        let out = h.send(proctor, RoomClose { room: room.clone() }.into());
        assert_eq!(
            single_message(&out, proctor),
            RoomClosed { room: room.clone() }.into()
        );
        let out = h.send(
            late,
            RoomJoin {
                code,
                name: "late".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, late), ErrorCode::UnknownCode);
        // Members stay and go on relaying.
        let offer: SignalMessage = Offer {
            session: s1.clone(),
            sdp: "v=0".into(),
        }
        .into();
        assert_eq!(single_message(&h.send(m1, offer.clone()), proctor), offer);

        let out = h.send(proctor, RoomEnd { room: room.clone() }.into());
        assert_eq!(
            message_to(&out, m1),
            Left {
                session: s1.clone()
            }
            .into()
        );
        assert_eq!(
            message_to(&out, m2),
            Left {
                session: s2.clone()
            }
            .into()
        );
        let to_proctor: Vec<SignalMessage> = out
            .iter()
            .filter_map(|o| match o {
                Output::Send { conn, text } if *conn == proctor => SignalMessage::parse(text).ok(),
                _ => None,
            })
            .collect();
        let line = |session: &SessionId, name: &str| -> SignalMessage {
            Member {
                room: room.clone(),
                session: session.clone(),
                name: name.into(),
                state: MemberStatus::Left,
            }
            .into()
        };
        assert_eq!(
            to_proctor,
            vec![
                line(&s1, "one"),
                line(&s2, "two"),
                RoomEnded { room: room.clone() }.into()
            ]
        );
        assert_eq!((h.router.session_count(), h.router.room_count()), (0, 0));
        // The room is gone: ending it again is unknown_room, and the proctor may open another.
        let out = h.send(proctor, RoomEnd { room }.into());
        assert_eq!(error_code(&out, proctor), ErrorCode::UnknownRoom);
        h.create_room(proctor);
    }

    #[test]
    fn busy_for_a_second_controller_unless_the_puppet_allows_watchers() {
        let mut h = Harness::new();
        // A v1 puppet (no `watchers` field) lets several controllers in, as before.
        let (puppet, first, _session) = h.paired();
        let code = h.register(puppet);
        let second = h.open();
        let s2 = h.ring(second, puppet, code);
        let out = h.send(puppet, Accept { session: s2 }.into());
        assert!(matches!(
            single_message(&out, second),
            SignalMessage::Accepted(_)
        ));
        let _ = first;

        // A puppet that allows no watchers: the second controller is busy once one is in.
        let strict = h.open();
        let out = h.send(
            strict,
            Register {
                name: "pc".into(),
                watchers: Some(false),
                device: None,
            }
            .into(),
        );
        let SignalMessage::Registered(registered) = single_message(&out, strict) else {
            panic!("{out:?}")
        };
        let (c1, c2, c3) = (h.open(), h.open(), h.open());
        let s1 = h.ring(c1, strict, registered.code);
        // Two may ring at once (none is in yet)...
        let s2 = h.ring(c2, strict, registered.code);
        h.send(
            strict,
            Accept {
                session: s1.clone(),
            }
            .into(),
        );
        // ...but once one is accepted, accepting the other is busy, and so is a new connect.
        let out = h.send(
            strict,
            Accept {
                session: s2.clone(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, strict), ErrorCode::Busy);
        let out = h.send(
            c3,
            Connect {
                code: registered.code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, c3), ErrorCode::Busy);
        // Joining a room is a controller too.
        let proctor = h.open();
        let (_room, room_code) = h.create_room(proctor);
        let out = h.send(
            strict,
            RoomJoin {
                code: room_code,
                name: "x".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, strict), ErrorCode::Busy);
        // When the first leaves, the waiting one may be accepted.
        h.send(c1, Leave { session: s1 }.into());
        let out = h.send(strict, Accept { session: s2 }.into());
        assert!(matches!(
            single_message(&out, c2),
            SignalMessage::Accepted(_)
        ));

        // And a room member that allows no watchers is busy to a v1 controller.
        let member = h.open();
        let out = h.send(
            member,
            Register {
                name: "desk".into(),
                watchers: Some(false),
                device: None,
            }
            .into(),
        );
        let SignalMessage::Registered(member_code) = single_message(&out, member) else {
            panic!("{out:?}")
        };
        h.join(member, proctor, room_code, "desk");
        let out = h.send(
            c3,
            Connect {
                code: member_code.code,
                name: "x".into(),
                pake: None,
            }
            .into(),
        );
        assert_eq!(error_code(&out, c3), ErrorCode::Busy);
    }

    #[test]
    fn limits_on_members_per_room_rooms_per_connection_and_sessions() {
        let mut h = Harness::with_config(RouterConfig {
            max_members_per_room: 2,
            max_rooms_per_connection: 2,
            max_sessions_per_connection: 3,
            ..RouterConfig::default()
        });
        let proctor = h.open();
        let (_a, code_a) = h.create_room(proctor);
        let (_b, code_b) = h.create_room(proctor);
        let out = h.send(
            proctor,
            RoomCreate {
                name: "third".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, proctor), ErrorCode::Busy);

        let (m1, m2, m3, m4) = (h.open(), h.open(), h.open(), h.open());
        h.join(m1, proctor, code_a, "1");
        h.join(m2, proctor, code_a, "2");
        let out = h.send(
            m3,
            RoomJoin {
                code: code_a,
                name: "3".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, m3), ErrorCode::Busy, "the room is full");
        h.join(m3, proctor, code_b, "3");
        let out = h.send(
            m4,
            RoomJoin {
                code: code_b,
                name: "4".into(),
            }
            .into(),
        );
        assert_eq!(
            error_code(&out, m4),
            ErrorCode::Busy,
            "the proctor has 3 sessions"
        );

        // A member's own session limit counts rooms of other proctors too.
        let mut member_rooms = Vec::new();
        for _ in 0..4 {
            let other = h.open();
            member_rooms.push((other, h.create_room(other).1));
        }
        for (other, code) in &member_rooms[..3] {
            h.join(m4, *other, *code, "4");
        }
        let (other, code) = member_rooms[3];
        let out = h.send(
            m4,
            RoomJoin {
                code,
                name: "4".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, m4), ErrorCode::Busy);
        let _ = other;
    }

    #[test]
    fn room_codes_are_unique_among_live_control_codes_and_room_codes() {
        let mut h = Harness::new();
        h.router = Router::with_entropy(
            RouterConfig::default(),
            Box::new(StuckEntropy { calls: 0 }),
            h.now,
        );
        let (puppet, proctor) = (h.open(), h.open());
        let control_code = h.register(puppet);
        assert_eq!(control_code.number(), 42);
        let (_room, room_code) = h.create_room(proctor);
        assert_ne!(room_code, control_code, "the colliding draw was redrawn");
    }

    #[test]
    fn a_room_code_expires_for_newcomers_but_the_room_goes_on() {
        let mut h = Harness::with_config(patient());
        let (proctor, member, late) = (h.open(), h.open(), h.open());
        let (room, code) = h.create_room(proctor);
        let session = h.join(member, proctor, code, "early");
        h.advance(Duration::from_secs(600));
        let out = h.send(
            late,
            RoomJoin {
                code,
                name: "late".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, late), ErrorCode::UnknownCode);
        let out = h.set_state(proctor, &room, &session, MemberStatus::Watching);
        assert_eq!(
            roster(&out, member),
            vec![(session, MemberStatus::Watching)]
        );
    }

    #[test]
    fn room_messages_are_only_for_the_rooms_proctor_and_refuse_what_is_not_theirs() {
        let mut h = Harness::new();
        let (proctor, member, other) = (h.open(), h.open(), h.open());
        let (room, code) = h.create_room(proctor);
        let session = h.join(member, proctor, code, "m");

        // Someone else's room, or none: unknown_room, as if it did not exist.
        for conn in [member, other] {
            for message in [
                SignalMessage::from(RoomClose { room: room.clone() }),
                RoomEnd { room: room.clone() }.into(),
                MemberState {
                    room: room.clone(),
                    session: session.clone(),
                    state: MemberStatus::Controlled,
                }
                .into(),
            ] {
                let out = h.send(conn, message);
                assert_eq!(error_code(&out, conn), ErrorCode::UnknownRoom);
            }
        }
        let out = h.send(
            proctor,
            RoomEnd {
                room: RoomId::from("nope"),
            }
            .into(),
        );
        assert_eq!(error_code(&out, proctor), ErrorCode::UnknownRoom);
        // A session that is not a member of this room.
        let out = h.set_state(proctor, &room, &sid("nope"), MemberStatus::Watching);
        assert_eq!(error_code(&out, proctor), ErrorCode::UnknownSession);
        // States only the server sets.
        for state in [MemberStatus::Reconnecting, MemberStatus::Left] {
            let out = h.set_state(proctor, &room, &session, state);
            assert_eq!(error_code(&out, proctor), ErrorCode::NotAllowed);
        }
        // Joining one's own room, or the same room twice.
        let out = h.send(
            proctor,
            RoomJoin {
                code,
                name: "me".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, proctor), ErrorCode::NotAllowed);
        let out = h.send(
            member,
            RoomJoin {
                code,
                name: "again".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, member), ErrorCode::NotAllowed);
        // Server-only room messages from a client.
        let out = h.send(other, RoomEnded { room: room.clone() }.into());
        assert_eq!(error_code(&out, other), ErrorCode::NotAllowed);
        let out = h.send(
            other,
            Member {
                room: room.clone(),
                session: session.clone(),
                name: "fake".into(),
                state: MemberStatus::Left,
            }
            .into(),
        );
        assert_eq!(error_code(&out, other), ErrorCode::NotAllowed);
        // A stranger cannot relay into a member's session.
        let out = h.send(
            other,
            Offer {
                session,
                sdp: "v=0".into(),
            }
            .into(),
        );
        assert_eq!(error_code(&out, other), ErrorCode::UnknownSession);
    }

    #[test]
    fn hostile_room_input_gets_errors_and_the_connection_stays_up() {
        let mut h = Harness::new();
        let (proctor, member) = (h.open(), h.open());
        let long = "n".repeat(MAX_ROOM_NAME_CHARS + 1);
        let out = h.send(proctor, RoomCreate { name: long.clone() }.into());
        assert_eq!(error_code(&out, proctor), ErrorCode::BadMessage);
        let (_room, code) = h.create_room(proctor);
        let out = h.send(member, RoomJoin { code, name: long }.into());
        assert_eq!(error_code(&out, member), ErrorCode::BadMessage);
        for text in [
            r#"{"type":"room_create"}"#,
            r#"{"type":"room_join","code":null,"name":"x"}"#,
            r#"{"type":"member_state","room":"r","session":"s","state":"asleep"}"#,
            r#"{"type":"room_end","room":5}"#,
            r#"{"type":"room_close"}"#,
        ] {
            let out = h.text(member, text);
            assert_eq!(error_code(&out, member), ErrorCode::BadMessage, "{text}");
            assert!(closes(&out).is_empty());
        }
        // A name of exactly the limit, in multi-byte characters, is fine.
        h.join(member, proctor, code, &"é".repeat(MAX_ROOM_NAME_CHARS));
    }
}
