//! Signaling protocol v1 and its rooms: the JSON messages between puppet, controller (or proctor)
//! and signaling server.
//!
//! Each WebSocket text frame holds one JSON object with a `"type"` field; the other fields are
//! exactly those documented in `crates/proto/SIGNALING.md`, which is the reference a client is
//! written from. [`SignalMessage::parse`] is total: any text
//! gives a message or a [`SignalError`] that names what was wrong (the unknown type, or the
//! missing or mistyped field). [`SignalMessage::encode`] is the one canonical encoding: `type`
//! first, fields in table order, absent optional fields left out.
//!
//! ```
//! use rtcdesk_proto::signal::SignalMessage;
//! let msg = SignalMessage::parse(r#"{"type":"connect","code":"123 456 789","name":"Ada"}"#).unwrap();
//! assert_eq!(msg.encode(), r#"{"type":"connect","code":"123456789","name":"Ada"}"#);
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest signaling message accepted, in bytes of JSON text. An SDP offer with many candidates is
/// a few KiB; anything near this is abuse.
pub const MAX_SIGNAL_MESSAGE: usize = 64 * 1024;

macro_rules! signal_messages {
    ($($wire:literal => $variant:ident,)*) => {
        /// One signaling message, in either direction. Each variant holds the struct of the same
        /// name, whose fields are the message's fields on the wire.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        pub enum SignalMessage {
            $(
                #[doc = concat!("`", $wire, "`: see [`", stringify!($variant), "`].")]
                $variant($variant),
            )*
        }

        /// Every message type of signaling protocol v1, as it appears in `"type"`.
        pub const MESSAGE_TYPES: &[&str] = &[$($wire,)*];

        impl SignalMessage {
            /// The `"type"` string of this message.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $(SignalMessage::$variant(_) => $wire,)*
                }
            }

            /// Deserialises the fields of a message whose type is known, naming a bad field.
            fn from_fields(
                message_type: &str,
                object: serde_json::Value,
            ) -> Option<Result<Self, serde_path_to_error::Error<serde_json::Error>>> {
                match message_type {
                    $($wire => Some(serde_path_to_error::deserialize(object).map(SignalMessage::$variant)),)*
                    _ => None,
                }
            }
        }

        $(
            impl From<$variant> for SignalMessage {
                fn from(message: $variant) -> Self {
                    SignalMessage::$variant(message)
                }
            }
        )*
    };
}

signal_messages! {
    "register" => Register,
    "registered" => Registered,
    "connect" => Connect,
    "incoming" => Incoming,
    "ringing" => Ringing,
    "accept" => Accept,
    "reject" => Reject,
    "accepted" => Accepted,
    "rejected" => Rejected,
    "offer" => Offer,
    "answer" => Answer,
    "candidate" => Candidate,
    "leave" => Leave,
    "left" => Left,
    "error" => Error,
    "room_create" => RoomCreate,
    "room_created" => RoomCreated,
    "room_close" => RoomClose,
    "room_closed" => RoomClosed,
    "room_end" => RoomEnd,
    "room_ended" => RoomEnded,
    "room_join" => RoomJoin,
    "room_joined" => RoomJoined,
    "member" => Member,
    "member_state" => MemberState,
    "pake" => Pake,
}

/// Puppet → server: make me reachable; the server answers [`Registered`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Register {
    /// What controllers are shown about this puppet (its user's or machine's name).
    pub name: String,
    /// Whether a second controller may join while one already has an established session with
    /// this puppet (as watchers, view-only by the puppet's own rules). `Some(false)`: the server
    /// answers `busy` instead. Absent (v1 puppets) means `true`, today's behaviour.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchers: Option<bool>,
    /// Unattended access: register under this permanent device ID instead of getting a
    /// one-time code (SIGNALING.md § 3.3). Absent: a one-time code, as in v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceClaim>,
}

/// A puppet's claim on its permanent device ID: the ID, and the token that proves it is the
/// puppet that first registered it (the server keeps only the token's SHA-256).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClaim {
    /// The device ID, nine digits like a control code, drawn by the puppet once.
    pub id: ControlCode,
    /// The puppet's random token: [`DeviceClaim::MIN_TOKEN`]..=[`DeviceClaim::MAX_TOKEN`]
    /// bytes of printable ASCII.
    pub token: String,
}

/// The token is a credential: never print it.
impl fmt::Debug for DeviceClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceClaim")
            .field("id", &self.id)
            .field("token", &"***")
            .finish()
    }
}

impl DeviceClaim {
    /// The shortest token a server accepts (22 base64 characters hold 128 bits).
    pub const MIN_TOKEN: usize = 22;
    /// The longest token a server accepts.
    pub const MAX_TOKEN: usize = 128;

    /// Whether the token has an acceptable length and only printable ASCII (`!`..=`~`).
    pub fn token_is_valid(&self) -> bool {
        (Self::MIN_TOKEN..=Self::MAX_TOKEN).contains(&self.token.len())
            && self.token.bytes().all(|b| b.is_ascii_graphic())
    }
}

impl Register {
    /// A v1 registration: this name, watchers allowed (the field left out on the wire).
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            watchers: None,
            device: None,
        }
    }

    /// Whether this puppet lets a second controller in: the field, or `true` when absent.
    pub fn allows_watchers(&self) -> bool {
        self.watchers.unwrap_or(true)
    }
}

/// Server → puppet: the control code to show its user, and how long it stays valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The control code controllers type.
    pub code: ControlCode,
    /// Seconds until the code expires; registering again gives a fresh one. `0` for a device
    /// ID, which does not expire while the puppet stays registered.
    pub expires_in: u64,
    /// The STUN and TURN servers this server's operator wants its clients to use (TURN with
    /// time-limited credentials). Empty (absent on the wire) when none are configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
    /// `true` when `code` is the device ID the puppet claimed ([`Register::device`]); absent
    /// (false) for a one-time code.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub device: bool,
}

/// One entry of `ice_servers`, shaped like the browser's `RTCIceServer` so a page can hand the list
/// straight to `new RTCPeerConnection({iceServers})`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:HOST[:PORT]`, `turn:HOST[:PORT][?transport=udp|tcp]` or `turns:HOST[:PORT]` URLs,
    /// all with the same credentials. A single string is accepted too, as browsers do.
    #[serde(deserialize_with = "one_or_many")]
    pub urls: Vec<String>,
    /// The TURN user name (for REST credentials `EXPIRY:LABEL`); absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The TURN password; absent for STUN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// `urls` as browsers take it: one string or a list of strings.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(url) => vec![url],
        OneOrMany::Many(urls) => urls,
    })
}

/// Controller → server: ask the puppet with this code for a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connect {
    /// The code the puppet's user read out (spaces allowed).
    pub code: ControlCode,
    /// Who is asking, shown to the puppet's user when asked to accept.
    pub name: String,
    /// The first message of end-to-end verified pairing (`PAKE.md`), which the server passes on
    /// in [`Incoming::pake`] without reading it. Absent: the session is not verified (a browser,
    /// or a controller given only the nine routing digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pake: Option<String>,
}

/// Server → puppet: a controller asks for a session; answer [`Accept`] or [`Reject`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    /// The new session's id.
    pub session: SessionId,
    /// The name the controller gave.
    pub from: String,
    /// The controller's [`Connect::pake`], exactly as it sent it; absent when it sent none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pake: Option<String>,
}

/// Server → controller: the puppet was found and its user is being asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ringing {
    /// The new session's id.
    pub session: SessionId,
    /// The name the puppet registered with, so the controller can say whom it is waiting for
    /// and title its window (an optional extension of v1: older peers ignore it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Puppet → server: its user lets this controller in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accept {
    /// The session being accepted.
    pub session: SessionId,
}

/// Puppet → server: its user refuses this controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The session being refused.
    pub session: SessionId,
    /// Why, shown to the controller's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Server → controller: the puppet's user accepted; the puppet will send an offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The accepted session.
    pub session: SessionId,
    /// The ICE servers to use for this session (see [`Registered::ice_servers`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
}

impl Accepted {
    /// An acceptance with no ICE servers (what a v1 server sends).
    pub fn new(session: SessionId) -> Self {
        Self {
            session,
            ice_servers: Vec::new(),
        }
    }
}

/// Server → controller: the puppet's user refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    /// The refused session.
    pub session: SessionId,
    /// The reason the puppet gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Either side: an SDP offer, relayed to the session's other end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The session it belongs to.
    pub session: SessionId,
    /// The SDP text itself, as a browser's `RTCSessionDescription.sdp` holds it.
    pub sdp: String,
}

/// Either side: an SDP answer, relayed to the session's other end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The session it belongs to.
    pub session: SessionId,
    /// The SDP text itself.
    pub sdp: String,
}

/// Either side: one trickled ICE candidate, relayed; an empty candidate means end of candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The session it belongs to.
    pub session: SessionId,
    /// The candidate attribute's value as a browser gives it (`candidate:1 1 udp …`).
    pub candidate: String,
    /// The media id the candidate belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
}

/// Either end: one step of end-to-end verified pairing (`PAKE.md`), relayed to the session's
/// other end while it rings or after it was accepted. The server never reads `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pake {
    /// The session it belongs to.
    pub session: SessionId,
    /// The verification message, opaque to the server (base64 text of at most 256 characters
    /// from native peers; the server relays up to the message size limit).
    pub data: String,
}

/// Either side: end this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    /// The session to end.
    pub session: SessionId,
}

/// Server → either side: the other end left (or its connection dropped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Left {
    /// The session that ended.
    pub session: SessionId,
}

/// Server → either side: the last message could not be acted on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Error {
    /// What kind of failure, for programs.
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

/// Longest `name` accepted in room messages (`room_create`, `room_join`), in characters. Names are
/// repeated in every roster update; a longer one is `bad_message`.
pub const MAX_ROOM_NAME_CHARS: usize = 256;

/// Proctor → server: open a room; the server answers [`RoomCreated`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCreate {
    /// The room's name, shown to every puppet that joins ("Exam hall 2 — Ms Lovelace").
    pub name: String,
}

/// Server → proctor: the room exists; hand out its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCreated {
    /// The room's id, named in every later message about it.
    pub room: RoomId,
    /// The room code puppets join with: nine digits like a control code, never equal to a live
    /// control code or another live room's code.
    pub code: ControlCode,
    /// Seconds until the code expires (newcomers are then refused; the room goes on).
    pub expires_in: u64,
    /// The ICE servers for the proctor's sessions (see [`Registered::ice_servers`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
}

/// Proctor → server: let no newcomer in; the code is retired at once. Members stay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClose {
    /// The room to close.
    pub room: RoomId,
}

/// Server → proctor: the room's code no longer admits anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClosed {
    /// The closed room.
    pub room: RoomId,
}

/// Proctor → server: end the room: every member's session ends, then the room is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEnd {
    /// The room to end.
    pub room: RoomId,
}

/// Server → proctor: the room is gone (after a `member … left` for each member).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEnded {
    /// The ended room.
    pub room: RoomId,
}

/// Puppet → server: join the room with this code. Joining is the puppet user's consent: there is
/// no accept step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomJoin {
    /// The room code the proctor handed out (spaces allowed).
    pub code: ControlCode,
    /// Who joins, shown on the proctor's roster.
    pub name: String,
}

/// Server → puppet: it is a member; the session with the proctor is established and the puppet
/// sends its offer next, as after `accepted` in v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomJoined {
    /// The room joined.
    pub room: RoomId,
    /// The session between this puppet and the proctor.
    pub session: SessionId,
    /// The room's name as the proctor gave it: who is watching, for the puppet to show.
    pub name: String,
    /// The ICE servers for this session (see [`Registered::ice_servers`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ice_servers: Vec<IceServer>,
}

/// Server → proctor (every change) and → the member itself (changes the proctor makes): one line
/// of the room's live roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The room.
    pub room: RoomId,
    /// The member's session with the proctor.
    pub session: SessionId,
    /// The name the member joined with.
    pub name: String,
    /// Where the member is now.
    pub state: MemberStatus,
}

/// Proctor → server: say what the proctor now does with a member (`joined`, `watching` or
/// `controlled`); the server updates the roster and tells the member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberState {
    /// The room.
    pub room: RoomId,
    /// The member's session.
    pub session: SessionId,
    /// The new state.
    pub state: MemberStatus,
}

/// A room member's state on the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// In the room, session established, not being watched.
    Joined,
    /// The proctor shows its screen (a grid tile).
    Watching,
    /// The proctor has it focused and sends input.
    Controlled,
    /// Its connection has gone quiet (missed a ping); it comes back or is dropped as `left`.
    Reconnecting,
    /// Its session ended; the last update about this member.
    Left,
}

impl MemberStatus {
    /// The state as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Joined => "joined",
            MemberStatus::Watching => "watching",
            MemberStatus::Controlled => "controlled",
            MemberStatus::Reconnecting => "reconnecting",
            MemberStatus::Left => "left",
        }
    }

    /// Whether a proctor may set this state with `member_state` (the others are the server's).
    pub fn settable_by_proctor(self) -> bool {
        matches!(
            self,
            MemberStatus::Joined | MemberStatus::Watching | MemberStatus::Controlled
        )
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the server refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, too large, or a field missing or of the wrong type.
    BadMessage,
    /// A `"type"` the server does not know.
    UnknownType,
    /// No live puppet has this control code.
    UnknownCode,
    /// The session does not exist, or does not belong to this connection.
    UnknownSession,
    /// A limit was reached (sessions per connection, connections per address).
    Busy,
    /// Too many failed attempts or messages; wait before trying again.
    RateLimited,
    /// This connection may not send this message (a controller accepting, say).
    NotAllowed,
    /// The room does not exist, or this connection is not its proctor.
    UnknownRoom,
}

impl ErrorCode {
    /// The code as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::UnknownCode => "unknown_code",
            ErrorCode::UnknownSession => "unknown_session",
            ErrorCode::Busy => "busy",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::UnknownRoom => "unknown_room",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a signaling message could not be parsed. Each variant maps to the `bad_message` or
/// `unknown_type` error a server sends back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalError {
    /// The text is longer than [`MAX_SIGNAL_MESSAGE`].
    TooLarge {
        /// The text's length in bytes.
        len: usize,
    },
    /// Not a JSON object.
    NotAnObject,
    /// Not JSON at all.
    InvalidJson(String),
    /// No `"type"` field, or one that is not a string.
    MissingType,
    /// A `"type"` this version does not know.
    UnknownType(String),
    /// A field the type needs is absent.
    MissingField {
        /// The message type.
        message_type: String,
        /// The absent field.
        field: String,
    },
    /// A field is present but of the wrong type or value.
    InvalidField {
        /// The message type.
        message_type: String,
        /// The field at fault.
        field: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl SignalError {
    /// The error code a server answers this parse failure with.
    pub fn code(&self) -> ErrorCode {
        match self {
            SignalError::UnknownType(_) => ErrorCode::UnknownType,
            _ => ErrorCode::BadMessage,
        }
    }
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::TooLarge { len } => write!(
                f,
                "message of {len} bytes is over the {MAX_SIGNAL_MESSAGE}-byte limit"
            ),
            SignalError::NotAnObject => f.write_str("message is not a JSON object"),
            SignalError::InvalidJson(e) => write!(f, "message is not valid JSON: {e}"),
            SignalError::MissingType => f.write_str("message has no string field `type`"),
            SignalError::UnknownType(t) => write!(f, "unknown message type `{t}`"),
            SignalError::MissingField {
                message_type,
                field,
            } => write!(f, "`{message_type}` message lacks field `{field}`"),
            SignalError::InvalidField {
                message_type,
                field,
                reason,
            } => write!(f, "`{message_type}` message has a bad `{field}`: {reason}"),
        }
    }
}

impl std::error::Error for SignalError {}

impl SignalMessage {
    /// Parses one WebSocket text frame. Total: never panics, and allocates at most in proportion
    /// to the (bounded) input.
    pub fn parse(text: &str) -> Result<Self, SignalError> {
        if text.len() > MAX_SIGNAL_MESSAGE {
            return Err(SignalError::TooLarge { len: text.len() });
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| SignalError::InvalidJson(e.to_string()))?;
        let object = value.as_object().ok_or(SignalError::NotAnObject)?;
        let message_type = object
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or(SignalError::MissingType)?;
        if !MESSAGE_TYPES.contains(&message_type) {
            return Err(SignalError::UnknownType(truncate(message_type, 64)));
        }
        let message_type = message_type.to_string();
        let Some(result) = SignalMessage::from_fields(&message_type, value) else {
            return Err(SignalError::UnknownType(message_type));
        };
        result.map_err(|error| {
            let field = error.path().to_string();
            let reason = error.into_inner().to_string();
            match missing_field_name(&reason) {
                Some(field) => SignalError::MissingField {
                    message_type,
                    field,
                },
                None => SignalError::InvalidField {
                    message_type,
                    field,
                    reason: strip_position(&reason),
                },
            }
        })
    }

    /// The canonical JSON text of this message.
    pub fn encode(&self) -> String {
        // Serialising these types cannot fail: every field is a string, integer or enum.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The session this message is about, if it names one.
    pub fn session(&self) -> Option<&SessionId> {
        match self {
            SignalMessage::Incoming(Incoming { session, .. })
            | SignalMessage::Ringing(Ringing { session, .. })
            | SignalMessage::Accept(Accept { session })
            | SignalMessage::Reject(Reject { session, .. })
            | SignalMessage::Accepted(Accepted { session, .. })
            | SignalMessage::Rejected(Rejected { session, .. })
            | SignalMessage::Offer(Offer { session, .. })
            | SignalMessage::Answer(Answer { session, .. })
            | SignalMessage::Candidate(Candidate { session, .. })
            | SignalMessage::Pake(Pake { session, .. })
            | SignalMessage::Leave(Leave { session })
            | SignalMessage::Left(Left { session })
            | SignalMessage::RoomJoined(RoomJoined { session, .. })
            | SignalMessage::Member(Member { session, .. })
            | SignalMessage::MemberState(MemberState { session, .. }) => Some(session),
            SignalMessage::Register(_)
            | SignalMessage::Registered(_)
            | SignalMessage::Connect(_)
            | SignalMessage::Error(_)
            | SignalMessage::RoomCreate(_)
            | SignalMessage::RoomCreated(_)
            | SignalMessage::RoomClose(_)
            | SignalMessage::RoomClosed(_)
            | SignalMessage::RoomEnd(_)
            | SignalMessage::RoomEnded(_)
            | SignalMessage::RoomJoin(_) => None,
        }
    }
}

/// serde_json ends its messages with " at line L column C", which means nothing to a peer that sent
/// a one-line message through a library.
fn strip_position(reason: &str) -> String {
    match reason.rfind(" at line ") {
        Some(at) => reason[..at].to_string(),
        None => reason.to_string(),
    }
}

/// serde reports an absent field as "missing field `name`" at the enclosing path; pull the name out.
fn missing_field_name(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("missing field `")?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// A 9-digit control code: the one-time secret a controller types to reach a puppet.
///
/// Shown to people grouped (`123 456 789`, its [`Display`](fmt::Display)); sent on the wire as the
/// nine digits; accepted from people and the wire with or without spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlCode(u32);

impl ControlCode {
    /// One more than the largest code: codes are 000 000 000 ..= 999 999 999.
    pub const SPACE: u32 = 1_000_000_000;

    /// The code with this numeric value, if it has at most nine digits.
    pub fn from_number(number: u32) -> Option<Self> {
        (number < Self::SPACE).then_some(Self(number))
    }

    /// The code's numeric value.
    pub fn number(self) -> u32 {
        self.0
    }

    /// The nine digits without spaces, as sent on the wire.
    pub fn digits(self) -> String {
        format!("{:09}", self.0)
    }
}

impl fmt::Display for ControlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.digits();
        write!(f, "{} {} {}", &digits[0..3], &digits[3..6], &digits[6..9])
    }
}

/// Why text is not a control code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadControlCode;

impl fmt::Display for BadControlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a control code is 9 digits, optionally grouped by spaces")
    }
}

impl std::error::Error for BadControlCode {}

impl FromStr for ControlCode {
    type Err = BadControlCode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() > 32 {
            return Err(BadControlCode);
        }
        let mut number: u32 = 0;
        let mut digits = 0;
        for c in text.trim().chars() {
            match c {
                ' ' | '-' => continue,
                '0'..='9' if digits < 9 => {
                    number = number * 10 + (c as u32 - '0' as u32);
                    digits += 1;
                }
                _ => return Err(BadControlCode),
            }
        }
        if digits == 9 {
            Ok(Self(number))
        } else {
            Err(BadControlCode)
        }
    }
}

impl Serialize for ControlCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.digits())
    }
}

impl<'de> Deserialize<'de> for ControlCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A session id, chosen by the signaling server; valid only for the session's two ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub String);

impl SessionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for SessionId {
    fn from(id: &str) -> Self {
        Self(id.to_string())
    }
}

/// A room id, chosen by the signaling server; meaningful only to the room's proctor and members.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RoomId(pub String);

impl RoomId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for RoomId {
    fn from(id: &str) -> Self {
        Self(id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(s: &str) -> SessionId {
        SessionId::from(s)
    }

    fn rid(s: &str) -> RoomId {
        RoomId::from(s)
    }

    #[test]
    fn every_table_row_has_the_fields_of_the_design() {
        let code: ControlCode = "123456789".parse().unwrap();
        let cases = [
            (
                SignalMessage::Register(Register::named("pc")),
                r#"{"type":"register","name":"pc"}"#,
            ),
            (
                SignalMessage::Register(Register {
                    name: "pc".into(),
                    watchers: Some(false),
                    device: None,
                }),
                r#"{"type":"register","name":"pc","watchers":false}"#,
            ),
            (
                SignalMessage::Register(Register {
                    name: "home".into(),
                    watchers: None,
                    device: Some(DeviceClaim {
                        id: code,
                        token: "q2Vd7xk1Bz9mN3pL8sT4wA".into(),
                    }),
                }),
                r#"{"type":"register","name":"home","device":{"id":"123456789","token":"q2Vd7xk1Bz9mN3pL8sT4wA"}}"#,
            ),
            (
                SignalMessage::Registered(Registered {
                    code,
                    expires_in: 600,
                    ice_servers: Vec::new(),
                    device: false,
                }),
                r#"{"type":"registered","code":"123456789","expires_in":600}"#,
            ),
            (
                SignalMessage::Registered(Registered {
                    code,
                    expires_in: 0,
                    ice_servers: Vec::new(),
                    device: true,
                }),
                r#"{"type":"registered","code":"123456789","expires_in":0,"device":true}"#,
            ),
            (
                SignalMessage::Connect(Connect {
                    code,
                    name: "Ada".into(),
                    pake: None,
                }),
                r#"{"type":"connect","code":"123456789","name":"Ada"}"#,
            ),
            (
                SignalMessage::Incoming(Incoming {
                    session: sid("s1"),
                    from: "Ada".into(),
                    pake: None,
                }),
                r#"{"type":"incoming","session":"s1","from":"Ada"}"#,
            ),
            (
                SignalMessage::Ringing(Ringing {
                    session: sid("s1"),
                    name: Some("front desk".into()),
                }),
                r#"{"type":"ringing","session":"s1","name":"front desk"}"#,
            ),
            (
                SignalMessage::Accept(Accept { session: sid("s1") }),
                r#"{"type":"accept","session":"s1"}"#,
            ),
            (
                SignalMessage::Reject(Reject {
                    session: sid("s1"),
                    reason: Some("busy".into()),
                }),
                r#"{"type":"reject","session":"s1","reason":"busy"}"#,
            ),
            (
                SignalMessage::Accepted(Accepted::new(sid("s1"))),
                r#"{"type":"accepted","session":"s1"}"#,
            ),
            (
                SignalMessage::Rejected(Rejected {
                    session: sid("s1"),
                    reason: None,
                }),
                r#"{"type":"rejected","session":"s1"}"#,
            ),
            (
                SignalMessage::Offer(Offer {
                    session: sid("s1"),
                    sdp: "v=0\r\n".into(),
                }),
                r#"{"type":"offer","session":"s1","sdp":"v=0\r\n"}"#,
            ),
            (
                SignalMessage::Answer(Answer {
                    session: sid("s1"),
                    sdp: "v=0\r\n".into(),
                }),
                r#"{"type":"answer","session":"s1","sdp":"v=0\r\n"}"#,
            ),
            (
                SignalMessage::Candidate(Candidate {
                    session: sid("s1"),
                    candidate: "candidate:1 1 udp 2113937151 127.0.0.1 5000 typ host".into(),
                    mid: Some("0".into()),
                }),
                r#"{"type":"candidate","session":"s1","candidate":"candidate:1 1 udp 2113937151 127.0.0.1 5000 typ host","mid":"0"}"#,
            ),
            (
                SignalMessage::Leave(Leave { session: sid("s1") }),
                r#"{"type":"leave","session":"s1"}"#,
            ),
            (
                Pake {
                    session: sid("s1"),
                    data: "AQMJ".into(),
                }
                .into(),
                r#"{"type":"pake","session":"s1","data":"AQMJ"}"#,
            ),
            (
                SignalMessage::Left(Left { session: sid("s1") }),
                r#"{"type":"left","session":"s1"}"#,
            ),
            (
                SignalMessage::Error(Error {
                    code: ErrorCode::UnknownCode,
                    message: "no such code".into(),
                }),
                r#"{"type":"error","code":"unknown_code","message":"no such code"}"#,
            ),
            (
                RoomCreate {
                    name: "Exam 2".into(),
                }
                .into(),
                r#"{"type":"room_create","name":"Exam 2"}"#,
            ),
            (
                RoomCreated {
                    room: rid("r1"),
                    code,
                    expires_in: 600,
                    ice_servers: Vec::new(),
                }
                .into(),
                r#"{"type":"room_created","room":"r1","code":"123456789","expires_in":600}"#,
            ),
            (
                RoomClose { room: rid("r1") }.into(),
                r#"{"type":"room_close","room":"r1"}"#,
            ),
            (
                RoomClosed { room: rid("r1") }.into(),
                r#"{"type":"room_closed","room":"r1"}"#,
            ),
            (
                RoomEnd { room: rid("r1") }.into(),
                r#"{"type":"room_end","room":"r1"}"#,
            ),
            (
                RoomEnded { room: rid("r1") }.into(),
                r#"{"type":"room_ended","room":"r1"}"#,
            ),
            (
                RoomJoin {
                    code,
                    name: "desk 7".into(),
                }
                .into(),
                r#"{"type":"room_join","code":"123456789","name":"desk 7"}"#,
            ),
            (
                RoomJoined {
                    room: rid("r1"),
                    session: sid("s1"),
                    name: "Exam 2".into(),
                    ice_servers: Vec::new(),
                }
                .into(),
                r#"{"type":"room_joined","room":"r1","session":"s1","name":"Exam 2"}"#,
            ),
            (
                Member {
                    room: rid("r1"),
                    session: sid("s1"),
                    name: "desk 7".into(),
                    state: MemberStatus::Reconnecting,
                }
                .into(),
                r#"{"type":"member","room":"r1","session":"s1","name":"desk 7","state":"reconnecting"}"#,
            ),
            (
                MemberState {
                    room: rid("r1"),
                    session: sid("s1"),
                    state: MemberStatus::Controlled,
                }
                .into(),
                r#"{"type":"member_state","room":"r1","session":"s1","state":"controlled"}"#,
            ),
        ];
        // Every type once; `register` three times (plain, `watchers`, `device`) and
        // `registered` twice (a code, a device ID).
        assert_eq!(cases.len(), MESSAGE_TYPES.len() + 3);
        // `pake` rides on `connect` and `incoming` too, passed on as it came.
        let connect = SignalMessage::parse(
            r#"{"type":"connect","code":"123456789","name":"Ada","pake":"AQFB"}"#,
        )
        .unwrap();
        assert!(matches!(&connect, SignalMessage::Connect(c) if c.pake.as_deref() == Some("AQFB")));
        assert_eq!(
            connect.encode(),
            r#"{"type":"connect","code":"123456789","name":"Ada","pake":"AQFB"}"#
        );
        let incoming = SignalMessage::parse(
            r#"{"type":"incoming","session":"s1","from":"Ada","pake":"AQFB"}"#,
        )
        .unwrap();
        assert_eq!(
            incoming.encode(),
            r#"{"type":"incoming","session":"s1","from":"Ada","pake":"AQFB"}"#
        );
        for (message, json) in cases {
            assert_eq!(message.encode(), json);
            assert_eq!(SignalMessage::parse(json).unwrap(), message);
            assert!(MESSAGE_TYPES.contains(&message.type_name()));
        }
    }

    #[test]
    fn every_error_code_has_its_wire_name() {
        for (code, name) in [
            (ErrorCode::BadMessage, "bad_message"),
            (ErrorCode::UnknownType, "unknown_type"),
            (ErrorCode::UnknownCode, "unknown_code"),
            (ErrorCode::UnknownSession, "unknown_session"),
            (ErrorCode::Busy, "busy"),
            (ErrorCode::RateLimited, "rate_limited"),
            (ErrorCode::NotAllowed, "not_allowed"),
            (ErrorCode::UnknownRoom, "unknown_room"),
        ] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{name}\""));
            assert_eq!(code.as_str(), name);
        }
    }

    #[test]
    fn an_unknown_type_is_named_in_the_error() {
        let err = SignalMessage::parse(r#"{"type":"teleport","session":"x"}"#).unwrap_err();
        assert_eq!(err, SignalError::UnknownType("teleport".into()));
        assert_eq!(err.code(), ErrorCode::UnknownType);
        assert!(err.to_string().contains("teleport"));
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = SignalMessage::parse(r#"{"type":"offer","session":"s"}"#).unwrap_err();
        assert_eq!(
            err,
            SignalError::MissingField {
                message_type: "offer".into(),
                field: "sdp".into()
            }
        );
        assert_eq!(err.code(), ErrorCode::BadMessage);
    }

    #[test]
    fn a_mistyped_field_is_named() {
        let err = SignalMessage::parse(r#"{"type":"offer","session":5,"sdp":"v=0"}"#).unwrap_err();
        match err {
            SignalError::InvalidField { field, .. } => assert_eq!(field, "session"),
            other => panic!("unexpected {other:?}"),
        }
        let err =
            SignalMessage::parse(r#"{"type":"connect","code":"12345","name":"a"}"#).unwrap_err();
        match err {
            SignalError::InvalidField { field, reason, .. } => {
                assert_eq!(field, "code");
                assert!(reason.contains("9 digits"), "{reason}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oversized_text_is_refused_before_parsing() {
        let sdp = "a".repeat(MAX_SIGNAL_MESSAGE);
        let text = format!(r#"{{"type":"offer","session":"s","sdp":"{sdp}"}}"#);
        assert_eq!(
            SignalMessage::parse(&text),
            Err(SignalError::TooLarge { len: text.len() })
        );
    }

    #[test]
    fn non_objects_and_bad_json_and_typeless_messages_are_refused() {
        assert_eq!(SignalMessage::parse("[1,2]"), Err(SignalError::NotAnObject));
        assert!(matches!(
            SignalMessage::parse("{\"type\":"),
            Err(SignalError::InvalidJson(_))
        ));
        assert_eq!(
            SignalMessage::parse(r#"{"session":"s"}"#),
            Err(SignalError::MissingType)
        );
        assert_eq!(
            SignalMessage::parse(r#"{"type":7}"#),
            Err(SignalError::MissingType)
        );
        let deep = "[".repeat(10_000);
        assert!(SignalMessage::parse(&deep).is_err());
    }

    #[test]
    fn control_codes_read_with_or_without_spaces_and_show_grouped() {
        let code: ControlCode = "012 345 678".parse().unwrap();
        assert_eq!(code, "012345678".parse().unwrap());
        assert_eq!(code.to_string(), "012 345 678");
        assert_eq!(code.digits(), "012345678");
        for bad in [
            "",
            "12345678",
            "1234567890",
            "12345678x",
            "１２３４５６７８９",
        ] {
            assert_eq!(bad.parse::<ControlCode>(), Err(BadControlCode), "{bad}");
        }
        assert_eq!(ControlCode::from_number(ControlCode::SPACE), None);
    }

    #[test]
    fn unknown_extra_fields_are_ignored_for_forward_compatibility() {
        let msg = SignalMessage::parse(r#"{"type":"leave","session":"s","v":2}"#).unwrap();
        assert_eq!(msg, SignalMessage::Leave(Leave { session: sid("s") }));
    }

    #[test]
    fn a_v1_register_allows_watchers_and_says_nothing_about_them() {
        let msg = SignalMessage::parse(r#"{"type":"register","name":"pc"}"#).unwrap();
        let SignalMessage::Register(register) = &msg else {
            panic!("{msg:?}")
        };
        assert!(register.allows_watchers());
        assert_eq!(msg.encode(), r#"{"type":"register","name":"pc"}"#);
        let strict = SignalMessage::parse(r#"{"type":"register","name":"pc","watchers":false}"#);
        assert!(matches!(strict, Ok(SignalMessage::Register(r)) if !r.allows_watchers()));
        let err =
            SignalMessage::parse(r#"{"type":"register","name":"pc","watchers":"no"}"#).unwrap_err();
        assert!(
            matches!(&err, SignalError::InvalidField { field, .. } if field == "watchers"),
            "{err:?}"
        );
    }

    #[test]
    fn every_member_state_has_its_wire_name_and_only_three_are_the_proctors() {
        for (state, name, proctor) in [
            (MemberStatus::Joined, "joined", true),
            (MemberStatus::Watching, "watching", true),
            (MemberStatus::Controlled, "controlled", true),
            (MemberStatus::Reconnecting, "reconnecting", false),
            (MemberStatus::Left, "left", false),
        ] {
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{name}\"")
            );
            assert_eq!(state.as_str(), name);
            assert_eq!(state.settable_by_proctor(), proctor, "{name}");
        }
    }

    #[test]
    fn hostile_room_messages_are_refused_with_the_field_named() {
        for (text, want_field) in [
            (
                r#"{"type":"room_join","code":"12345678","name":"x"}"#,
                "code",
            ),
            (
                r#"{"type":"room_join","code":123456789,"name":"x"}"#,
                "code",
            ),
            (
                r#"{"type":"room_join","code":"123456789","name":7}"#,
                "name",
            ),
            (r#"{"type":"room_create","name":null}"#, "name"),
            (r#"{"type":"room_close","room":["r"]}"#, "room"),
            (r#"{"type":"room_end","room":{}}"#, "room"),
            (
                r#"{"type":"member_state","room":"r","session":"s","state":"asleep"}"#,
                "state",
            ),
            (
                r#"{"type":"member_state","room":"r","session":"s","state":1}"#,
                "state",
            ),
            (
                r#"{"type":"member","room":"r","session":"s","name":"n","state":"JOINED"}"#,
                "state",
            ),
        ] {
            match SignalMessage::parse(text) {
                Err(SignalError::InvalidField { field, .. }) => {
                    assert_eq!(field, want_field, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        for (text, want_field) in [
            (r#"{"type":"room_join","name":"x"}"#, "code"),
            (r#"{"type":"room_join","code":"123456789"}"#, "name"),
            (r#"{"type":"room_create"}"#, "name"),
            (r#"{"type":"room_end"}"#, "room"),
            (
                r#"{"type":"member_state","room":"r","session":"s"}"#,
                "state",
            ),
            (
                r#"{"type":"room_created","room":"r","code":"123456789"}"#,
                "expires_in",
            ),
        ] {
            match SignalMessage::parse(text) {
                Err(SignalError::MissingField { field, .. }) => {
                    assert_eq!(field, want_field, "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let huge = format!(
            r#"{{"type":"room_create","name":"{}"}}"#,
            "n".repeat(MAX_SIGNAL_MESSAGE)
        );
        assert!(matches!(
            SignalMessage::parse(&huge),
            Err(SignalError::TooLarge { .. })
        ));
        let negative = r#"{"type":"room_created","room":"r","code":"123456789","expires_in":-1}"#;
        assert!(matches!(
            SignalMessage::parse(negative),
            Err(SignalError::InvalidField { .. })
        ));
    }

    #[test]
    fn room_messages_that_name_a_session_say_which() {
        let joined: SignalMessage = RoomJoined {
            room: rid("r"),
            session: sid("s"),
            name: "n".into(),
            ice_servers: Vec::new(),
        }
        .into();
        assert_eq!(joined.session(), Some(&sid("s")));
        let create: SignalMessage = RoomCreate { name: "n".into() }.into();
        assert_eq!(create.session(), None);
    }

    #[test]
    fn ice_servers_ride_on_registered_and_accepted_as_browsers_spell_them() {
        let text = r#"{"type":"accepted","session":"s1","ice_servers":[{"urls":["stun:203.0.113.1:3478"]},{"urls":["turn:203.0.113.1:3478","turn:203.0.113.1:3478?transport=tcp"],"username":"1700000000:controller","credential":"c2VjcmV0"}]}"#;
        let message = SignalMessage::parse(text).unwrap();
        let SignalMessage::Accepted(accepted) = &message else {
            panic!("{message:?}");
        };
        assert_eq!(accepted.ice_servers.len(), 2);
        assert_eq!(accepted.ice_servers[0].username, None);
        assert_eq!(
            accepted.ice_servers[1].credential.as_deref(),
            Some("c2VjcmV0")
        );
        assert_eq!(message.encode(), text);

        // A browser's single-string `urls` is taken too, and written back as a list.
        let one = r#"{"type":"registered","code":"123456789","expires_in":600,"ice_servers":[{"urls":"stun:a:1"}]}"#;
        let SignalMessage::Registered(registered) = SignalMessage::parse(one).unwrap() else {
            panic!()
        };
        assert_eq!(registered.ice_servers[0].urls, vec!["stun:a:1".to_string()]);

        // Wrong shapes are named, not panicked on.
        for bad in [
            r#"{"type":"accepted","session":"s","ice_servers":{}}"#,
            r#"{"type":"accepted","session":"s","ice_servers":[{"urls":7}]}"#,
            r#"{"type":"accepted","session":"s","ice_servers":[{"username":"u"}]}"#,
            r#"{"type":"accepted","session":"s","ice_servers":[{"urls":["a"],"credential":1}]}"#,
        ] {
            assert!(
                matches!(
                    SignalMessage::parse(bad),
                    Err(SignalError::InvalidField { .. } | SignalError::MissingField { .. })
                ),
                "{bad}"
            );
        }
    }
}
