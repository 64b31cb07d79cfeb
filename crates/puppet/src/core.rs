//! The puppet's session bookkeeping, sans-IO: signaling messages, consent decisions, peer
//! lifecycle and time in; messages to send, questions to ask, peers to start or close, and
//! events out.
//!
//! It knows nothing of sockets, threads or terminals. The shell feeds it with
//! [`SessionBook::handle_signal`], [`SessionBook::handle_decision`],
//! [`SessionBook::handle_peer_connected`], [`SessionBook::handle_peer_lost`],
//! [`SessionBook::handle_timeout`] and [`SessionBook::handle_shutdown`], and carries out what
//! [`SessionBook::poll_output`] returns. [`SessionBook::poll_timeout`] says when to call
//! `handle_timeout` next.
//!
//! Rules it keeps:
//! - a controller is asked about once; no answer by the consent deadline is a rejection;
//! - an accepted session that is not connected by the connect deadline is given up (`leave`);
//! - answers and candidates are passed on only for sessions that were accepted;
//! - a session ends once, whoever ends it, and the peer is closed exactly then;
//! - a controller that starts verified pairing (`incoming.pake`) proves it holds the whole code
//!   before the user is asked; a failed or abandoned run counts against the code, and after
//!   [`MAX_FAILED_RUNS`] the code is retired (registered again: new digits, new secret);
//!   runs in flight count too, so no more than that many guesses are ever possible per code;
//! - a verified session sends no video and takes no input until the controller's MAC over both
//!   DTLS fingerprints checks out; a mismatch ends it as [`EndReason::Intercepted`];
//! - one session controls at a time: a controller let in with control while another session
//!   (not a room's proctor) has it watches only, and is told so; the puppet's user may move
//!   control to another session ([`SessionBook::handle_set_view_only`]), which takes it from
//!   the one that had it, end any session ([`SessionBook::handle_disconnect`]) or ask for a new
//!   code ([`SessionBook::handle_new_code`]);
//! - an unverified session (a browser) is asked about as such, or refused with
//!   [`SessionBook::require_verified`];
//! - an unattended puppet ([`SessionBook::unattended`]) registers its permanent device ID and
//!   runs the same verification over its stored password key; a controller that confirms is let
//!   in without asking (nobody is there to ask), one that does not is refused and counted by the
//!   [`AttemptGuard`] (backoff, then lockout), browsers are refused, and one run at a time is
//!   allowed;
//! - the code is registered again shortly before it expires (sessions go on; the server keeps
//!   them), so the puppet always shows a code that works;
//! - when the signaling connection is lost, connected sessions go on (their peers no longer
//!   need it), sessions still being asked or set up end, and the shell is asked to connect
//!   again after 1 s, then 2, 4, … up to 30 s between tries; once connected the puppet
//!   registers and shows its new code.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rtcdesk_pake::{
    DeviceKey, Fingerprint, PairingCode, PakeError, PakeMessage, PuppetResponse, Secret, SessionKey,
};
use rtcdesk_proto::signal::{
    Accept, ControlCode, DeviceClaim, ErrorCode, Leave, MemberStatus, Pake, Register, Reject,
    RoomJoin, SessionId, SignalMessage,
};

use crate::attempts::AttemptGuard;

use crate::{Decision, EndReason, IncomingRequest, PuppetEvent, SessionInfo, SessionState};

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Send this on the signaling connection.
    Send(SignalMessage),
    /// Ask the accept policy about this controller, then call
    /// [`SessionBook::handle_decision`].
    Ask(IncomingRequest),
    /// Start this session's WebRTC peer (offerer) and send its offer.
    StartPeer(SessionId),
    /// Hand this answer or candidate to the session's peer.
    Deliver(SessionId, SignalMessage),
    /// The session's peer is connected: add it to the video fan-out (with a keyframe).
    StartVideo(SessionId),
    /// Close the session's peer and release its input.
    ClosePeer(SessionId),
    /// Move the session's video to this stream (a proctor focused or unfocused it).
    SetQuality(SessionId, crate::Quality),
    /// The session's role changed: refuse (`true`) or take again (`false`) its input,
    /// clipboard and files, and tell its controller.
    SetViewOnly(SessionId, bool),
    /// Tell the user interface.
    Event(PuppetEvent),
    /// Connect to the signaling server again, then call
    /// [`SessionBook::handle_signaling_connected`] or, on failure,
    /// [`SessionBook::handle_signaling_lost`].
    ConnectSignaling,
}

/// Failed verification runs a code survives; the next failure retires it.
pub const MAX_FAILED_RUNS: u32 = 3;
use rtcdesk_pake::VERIFY_TIMEOUT;
/// Why a controller without verification is refused under [`SessionBook::require_verified`].
pub const UNVERIFIED_REFUSED: &str = "this puppet accepts only end-to-end verified controllers";
/// Why a controller without verification (a browser, or one given no password) is refused by an
/// unattended puppet.
pub const UNATTENDED_NEEDS_PASSWORD: &str =
    "this puppet is set up for unattended access: connect with its device ID and password \
     (controller --device ID); a browser cannot";
/// Why a second attempt is refused while one is being checked.
const ONE_ATTEMPT_AT_A_TIME: &str = "another attempt is being checked: try again in a moment";

/// An unattended puppet's identity and password, and its count of wrong passwords.
#[derive(Debug)]
struct Unattended {
    claim: DeviceClaim,
    key: DeviceKey,
    guard: AttemptGuard,
}

/// The first wait before connecting to the signaling server again.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two tries.
const RECONNECT_MAX: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Entry {
    name: String,
    stage: Stage,
    /// The stream it gets: full for a controller; for a proctor, thumbnails until it focuses
    /// this member.
    quality: crate::Quality,
    verification: Verification,
    /// The fingerprints DTLS negotiated (ours, the controller's), once it did.
    dtls: Option<(Fingerprint, Fingerprint)>,
    /// The controller's `fingerprints`, when it came before our DTLS was up.
    early_fingerprints: Option<PakeMessage>,
    /// The role the user gave it: watch only (no input, clipboard or files to this machine).
    view_only: bool,
}

/// How far end-to-end verification of a session has come.
#[derive(Debug)]
enum Verification {
    /// The controller did not ask for it (a browser, or nine digits): nothing to check.
    Unverified,
    /// `reply` sent; the controller's `confirm` is awaited.
    Confirming(PuppetResponse),
    /// Both hold the code; the DTLS fingerprints are checked with this key once connected
    /// (the stage says whether that happened).
    Keyed(SessionKey),
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Verified pairing: waiting for the controller's key confirmation before asking.
    Verifying {
        deadline: Instant,
    },
    Asking {
        deadline: Instant,
    },
    Connecting {
        deadline: Instant,
    },
    /// Verified and connected: waiting for the controller's fingerprints MAC.
    Binding {
        deadline: Instant,
    },
    Connected,
}

/// The consent and session state machine of one puppet; see the module docs.
#[derive(Debug)]
pub struct SessionBook {
    name: String,
    consent_timeout: Duration,
    connect_timeout: Duration,
    code: Option<ControlCode>,
    /// The ICE servers the signaling server handed out with the newest code.
    ice_servers: Vec<rtcdesk_proto::signal::IceServer>,
    register_at: Option<Instant>,
    sessions: BTreeMap<SessionId, Entry>,
    out: VecDeque<Output>,
    shut_down: bool,
    /// Whether the signaling connection is up (the shell connects before making the book).
    signaling_up: bool,
    /// When to try connecting to the signaling server again, while it is down.
    reconnect_at: Option<Instant>,
    /// The wait before the next try after this one fails.
    reconnect_backoff: Duration,
    /// `--join`: the room code this puppet joins instead of registering for a control code.
    join: Option<ControlCode>,
    /// Why the room could not be joined (wrong or expired code, room full), once it failed.
    join_failure: Option<String>,
    /// The part of the code the server never sees, drawn afresh with every new code.
    secret: Option<Secret>,
    /// Failed verification runs against the current code.
    failed_runs: u32,
    /// Refuse controllers that do not verify (`--require-verified`).
    require_verified: bool,
    /// `--unattended`: the device ID, password key and attempt guard.
    unattended: Option<Unattended>,
    /// The latest time the shell gave, for the few inputs that come without one.
    last_now: Option<Instant>,
}

impl SessionBook {
    /// A book for a puppet called `name`. `consent_timeout` bounds how long a controller waits
    /// for the accept policy; `connect_timeout` how long an accepted session may take to connect.
    pub fn new(name: String, consent_timeout: Duration, connect_timeout: Duration) -> Self {
        Self {
            name,
            consent_timeout,
            connect_timeout,
            code: None,
            ice_servers: Vec::new(),
            register_at: None,
            sessions: BTreeMap::new(),
            out: VecDeque::new(),
            shut_down: false,
            signaling_up: true,
            reconnect_at: None,
            reconnect_backoff: RECONNECT_FIRST,
            join: None,
            join_failure: None,
            secret: None,
            failed_runs: 0,
            require_verified: false,
            unattended: None,
            last_now: None,
        }
    }

    /// Makes this an unattended puppet: it registers `claim` (its permanent device ID), verifies
    /// every controller against `key` (its stored password key), lets in those that confirm
    /// without asking, and refuses everyone else; `guard` carries the wrong passwords already
    /// counted (from the config folder).
    pub fn unattended(&mut self, claim: DeviceClaim, key: DeviceKey, guard: AttemptGuard) {
        self.require_verified = true;
        self.unattended = Some(Unattended { claim, key, guard });
    }

    /// Wrong passwords in a row and whether the puppet is locked, when it is unattended.
    pub fn attempts(&self) -> Option<(u32, bool)> {
        self.unattended
            .as_ref()
            .map(|u| (u.guard.consecutive(), u.guard.is_locked()))
    }

    /// The owner unlocked the puppet (the config folder says so): attempts start again.
    pub fn unlock(&mut self) {
        if let Some(unattended) = &mut self.unattended {
            unattended.guard.unlock();
            self.event(PuppetEvent::Attempts {
                consecutive: 0,
                locked: false,
            });
        }
    }

    /// Refuses every controller that does not run verified pairing (browsers, nine digits).
    pub fn require_verified(&mut self, require: bool) {
        self.require_verified = require;
    }

    /// The whole code to show, secret digits included, once registered.
    pub fn pairing_code(&self) -> Option<PairingCode> {
        Some(PairingCode {
            route: self.code?,
            secret: if self.join.is_some() {
                None
            } else {
                self.secret
            },
        })
    }

    /// Makes this a room member: [`SessionBook::register`] (and every reconnect) joins the room
    /// with `code` instead of registering. Joining is the consent (its user started the puppet
    /// with the code on purpose), so the proctor's session is not asked about; the puppet says
    /// for as long as it lasts that it is being watched, and by whom.
    pub fn join_room(&mut self, code: ControlCode) {
        self.join = Some(code);
    }

    /// Why joining the room failed, once it did (the shell stops: there is nothing to wait for).
    pub fn join_failure(&self) -> Option<&str> {
        self.join_failure.as_deref()
    }

    /// Starts by registering: queues the `register` message (or `room_join` after
    /// [`SessionBook::join_room`]).
    pub fn register(&mut self) {
        if let Some(code) = self.join {
            self.out.push_back(Output::Send(
                RoomJoin {
                    code,
                    name: self.name.clone(),
                }
                .into(),
            ));
            return;
        }
        self.out.push_back(Output::Send(
            Register {
                name: self.name.clone(),
                watchers: None,
                device: self.unattended.as_ref().map(|u| u.claim.clone()),
            }
            .into(),
        ));
    }

    /// The stream `session` gets (full for an unknown session).
    pub fn quality(&self, session: &SessionId) -> crate::Quality {
        self.sessions
            .get(session)
            .map_or(crate::Quality::Full, |entry| entry.quality)
    }

    /// The control code currently valid, once registered.
    pub fn code(&self) -> Option<ControlCode> {
        self.code
    }

    /// Whether the session is accepted and not ended: its offer and candidates may be sent.
    pub fn is_live(&self, session: &SessionId) -> bool {
        matches!(
            self.sessions.get(session).map(|e| e.stage),
            Some(Stage::Connecting { .. } | Stage::Binding { .. } | Stage::Connected)
        )
    }

    /// The sessions asking, connecting or connected.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions
            .iter()
            .map(|(session, entry)| SessionInfo {
                session: session.clone(),
                name: entry.name.clone(),
                state: match entry.stage {
                    Stage::Verifying { .. } | Stage::Asking { .. } => SessionState::Asking,
                    Stage::Connecting { .. } | Stage::Binding { .. } => SessionState::Connecting,
                    Stage::Connected => SessionState::Connected,
                },
                view_only: entry.view_only,
            })
            .collect()
    }

    /// The STUN and TURN servers the signaling server handed out (empty when it hands none).
    pub fn ice_servers(&self) -> &[rtcdesk_proto::signal::IceServer] {
        &self.ice_servers
    }

    /// A message from the signaling server.
    pub fn handle_signal(&mut self, message: SignalMessage, now: Instant) {
        self.last_now = Some(now);
        match message {
            SignalMessage::Registered(registered) => {
                self.code = Some(registered.code);
                // A device ID has no secret digits: its password takes their place.
                self.secret = self
                    .unattended
                    .is_none()
                    .then(|| Secret::random().expect("the OS random number generator failed"));
                self.failed_runs = 0;
                self.ice_servers = registered.ice_servers;
                let lifetime = Duration::from_secs(registered.expires_in);
                // Register again a little before the code runs out (a tenth of its life, at
                // most a minute), so a code shown is always one that works.
                let margin = (lifetime / 10).min(Duration::from_secs(60));
                self.register_at = (!lifetime.is_zero()).then(|| now + (lifetime - margin));
                self.event(PuppetEvent::Registered {
                    code: registered.code,
                    pairing: self.pairing_code().unwrap_or(PairingCode {
                        route: registered.code,
                        secret: None,
                    }),
                    expires_in: lifetime,
                    device: registered.device,
                });
            }
            SignalMessage::Incoming(incoming) => {
                if self.shut_down || self.sessions.contains_key(&incoming.session) {
                    return;
                }
                self.incoming(incoming, now);
            }
            SignalMessage::Pake(pake) => self.handle_pake(pake, now),
            SignalMessage::Answer(answer) => {
                if self.is_live(&answer.session) {
                    let session = answer.session.clone();
                    self.out
                        .push_back(Output::Deliver(session, SignalMessage::Answer(answer)));
                }
            }
            SignalMessage::Candidate(candidate) => {
                if self.is_live(&candidate.session) {
                    let session = candidate.session.clone();
                    self.out.push_back(Output::Deliver(
                        session,
                        SignalMessage::Candidate(candidate),
                    ));
                }
            }
            SignalMessage::Left(left) => self.end(&left.session, EndReason::Left, false),
            SignalMessage::RoomJoined(joined) => {
                let Some(code) = self.join else {
                    tracing::debug!("ignoring room_joined: this puppet joins no room");
                    return;
                };
                if self.shut_down || self.sessions.contains_key(&joined.session) {
                    return;
                }
                self.code = Some(code);
                self.ice_servers = joined.ice_servers;
                self.sessions.insert(
                    joined.session.clone(),
                    Entry {
                        quality: crate::Quality::Thumbnail,
                        name: joined.name.clone(),
                        stage: Stage::Connecting {
                            deadline: now + self.connect_timeout,
                        },
                        verification: Verification::Unverified,
                        dtls: None,
                        early_fingerprints: None,
                        view_only: false,
                    },
                );
                self.event(PuppetEvent::JoinedRoom {
                    session: joined.session.clone(),
                    room_name: joined.name.clone(),
                });
                self.event(PuppetEvent::SessionStarted {
                    session: joined.session.clone(),
                    name: joined.name,
                    view_only: false,
                });
                self.out.push_back(Output::StartPeer(joined.session));
            }
            SignalMessage::Member(member) => {
                let Some(entry) = self.sessions.get_mut(&member.session) else {
                    return;
                };
                let quality = if member.state == MemberStatus::Controlled {
                    crate::Quality::Full
                } else {
                    crate::Quality::Thumbnail
                };
                let by = entry.name.clone();
                if entry.quality != quality {
                    entry.quality = quality;
                    if matches!(entry.stage, Stage::Connected) {
                        self.out
                            .push_back(Output::SetQuality(member.session.clone(), quality));
                    }
                }
                self.event(PuppetEvent::Watched {
                    session: member.session,
                    by,
                    state: member.state,
                });
            }
            SignalMessage::Error(error) if self.join.is_some() && self.sessions.is_empty() => {
                // Only room_join is in flight: this answers it.
                let reason = match error.code {
                    ErrorCode::UnknownCode => {
                        "no open room has this code (check it, or ask the proctor for a new one)"
                            .to_string()
                    }
                    _ => format!("{}: {}", error.code.as_str(), error.message),
                };
                self.join_failure = Some(reason.clone());
                self.event(PuppetEvent::JoinFailed { reason });
            }
            SignalMessage::Error(error) => {
                tracing::warn!(code = error.code.as_str(), message = %error.message, "signaling server reported an error");
            }
            other => {
                tracing::debug!(
                    kind = other.type_name(),
                    "ignoring a signaling message not meant for a puppet"
                );
            }
        }
    }

    /// The accept policy's answer about `session`, with the role it gave. Late answers (after
    /// the deadline, or after the controller left) are ignored.
    pub fn handle_decision(&mut self, session: &SessionId, decision: Decision, now: Instant) {
        self.last_now = Some(now);
        let Some(entry) = self.sessions.get_mut(session) else {
            return;
        };
        if !matches!(entry.stage, Stage::Asking { .. }) {
            return;
        }
        if decision == Decision::Decline || self.shut_down {
            self.decline(session, "declined by the puppet's user");
            return;
        }
        entry.stage = Stage::Connecting {
            deadline: now + self.connect_timeout,
        };
        let mut view_only = decision == Decision::ViewOnly;
        let name = entry.name.clone();
        let controlled_by = self.controller_in_control(session);
        if !view_only {
            if let Some(holder) = &controlled_by {
                tracing::info!(%session, holder = %holder, "another session has control: this one watches");
                view_only = true;
            }
        }
        let Some(entry) = self.sessions.get_mut(session) else {
            return;
        };
        entry.view_only = view_only;
        self.out.push_back(Output::Send(
            Accept {
                session: session.clone(),
            }
            .into(),
        ));
        self.event(PuppetEvent::SessionStarted {
            session: session.clone(),
            name,
            view_only,
        });
        self.out.push_back(Output::StartPeer(session.clone()));
    }

    /// The puppet's user ends `session` (a "Disconnect" button): a controller still being
    /// asked is refused, a session being set up or running is left. Sessions still verifying
    /// are not shown to the user and are left to their own deadline.
    pub fn handle_disconnect(&mut self, session: &SessionId) {
        match self.sessions.get(session).map(|e| e.stage) {
            Some(Stage::Asking { .. }) => self.decline(session, "declined by the puppet's user"),
            Some(Stage::Connecting { .. } | Stage::Binding { .. } | Stage::Connected) => {
                self.end(session, EndReason::Disconnected, true)
            }
            Some(Stage::Verifying { .. }) | None => {}
        }
    }

    /// The puppet's user lets `session` only watch (`true`) or gives it control (`false`).
    /// Control is one session's at a time, so giving it takes it from the session that had it.
    /// Only sessions let in (set up or running) change; a room's proctor keeps the room's rule.
    pub fn handle_set_view_only(&mut self, session: &SessionId, view_only: bool) {
        if self.join.is_some() {
            return;
        }
        let live = |e: &Entry| {
            matches!(
                e.stage,
                Stage::Connecting { .. } | Stage::Binding { .. } | Stage::Connected
            )
        };
        if !self.sessions.get(session).is_some_and(live) {
            return;
        }
        if !view_only {
            let holders: Vec<SessionId> = self
                .sessions
                .iter()
                .filter(|(id, e)| *id != session && !e.view_only && live(e))
                .map(|(id, _)| id.clone())
                .collect();
            for holder in holders {
                self.set_role(&holder, true);
            }
        }
        self.set_role(session, view_only);
    }

    fn set_role(&mut self, session: &SessionId, view_only: bool) {
        let Some(entry) = self.sessions.get_mut(session) else {
            return;
        };
        if entry.view_only == view_only {
            return;
        }
        entry.view_only = view_only;
        self.out
            .push_back(Output::SetViewOnly(session.clone(), view_only));
        self.event(PuppetEvent::RoleChanged {
            session: session.clone(),
            view_only,
        });
    }

    /// The puppet's user asks for a new code (the old one was seen by someone it should not
    /// have been): registers again, which retires the old code at once; sessions go on. A
    /// device ID and a room code are not the puppet's to change, and without signaling the
    /// puppet registers anew once it is back anyway.
    pub fn handle_new_code(&mut self) {
        if self.shut_down || self.join.is_some() || self.unattended.is_some() || !self.signaling_up
        {
            return;
        }
        self.secret = None;
        self.failed_runs = 0;
        self.register();
    }

    /// The name of the controller that has control, other than `except`: a session accepted
    /// with control and not yet ended. A room's proctor does not count (its control is the
    /// room's own rule).
    fn controller_in_control(&self, except: &SessionId) -> Option<String> {
        if self.join.is_some() {
            return None;
        }
        self.sessions
            .iter()
            .filter(|(id, _)| *id != except)
            .find(|(_, e)| {
                !e.view_only
                    && matches!(
                        e.stage,
                        Stage::Connecting { .. } | Stage::Binding { .. } | Stage::Connected
                    )
            })
            .map(|(_, e)| e.name.clone())
    }

    /// Whether `session` watches only: the user let it in so ([`Decision::ViewOnly`]), or
    /// another session had control; the shell starts its peer with input, clipboard and
    /// incoming files refused.
    pub fn view_only(&self, session: &SessionId) -> bool {
        self.sessions.get(session).is_some_and(|e| e.view_only)
    }

    /// DTLS is up for `session` with these certificates (ours, then the controller's), as the
    /// peer reported them just before it connected.
    pub fn handle_peer_secured(
        &mut self,
        session: &SessionId,
        local: Fingerprint,
        remote: Fingerprint,
    ) {
        if let Some(entry) = self.sessions.get_mut(session) {
            entry.dtls = Some((local, remote));
        }
    }

    /// The session's WebRTC connection is up. An unverified session starts at once; a verified
    /// one sends its fingerprints MAC and starts once the controller's has checked out.
    pub fn handle_peer_connected(&mut self, session: &SessionId, now: Instant) {
        self.last_now = Some(now);
        let Some(entry) = self.sessions.get_mut(session) else {
            return;
        };
        if !matches!(entry.stage, Stage::Connecting { .. }) {
            return;
        }
        let Verification::Keyed(key) = &entry.verification else {
            self.start(session);
            return;
        };
        let Some((local, remote)) = &entry.dtls else {
            tracing::warn!(%session, "verified session connected without DTLS fingerprints");
            self.end(session, EndReason::Intercepted, true);
            return;
        };
        let ours = key.fingerprints(local, remote);
        entry.stage = Stage::Binding {
            deadline: now + VERIFY_TIMEOUT,
        };
        let early = entry.early_fingerprints.take();
        self.out.push_back(Output::Send(
            Pake {
                session: session.clone(),
                data: ours.encode(),
            }
            .into(),
        ));
        if let Some(theirs) = early {
            self.check_fingerprints(session, &theirs);
        }
    }

    /// Connected and, where it applies, verified: video and input start.
    fn start(&mut self, session: &SessionId) {
        let Some(entry) = self.sessions.get_mut(session) else {
            return;
        };
        entry.stage = Stage::Connected;
        self.event(PuppetEvent::SessionConnected {
            session: session.clone(),
        });
        self.out.push_back(Output::StartVideo(session.clone()));
    }

    /// The controller's `fingerprints`, once this side's DTLS is up.
    fn check_fingerprints(&mut self, session: &SessionId, theirs: &PakeMessage) {
        let Some(entry) = self.sessions.get(session) else {
            return;
        };
        let (Verification::Keyed(key), Some((local, remote))) = (&entry.verification, &entry.dtls)
        else {
            return;
        };
        match key.check_fingerprints(theirs, local, remote) {
            Ok(()) => {
                tracing::info!(%session, "session verified end to end");
                self.start(session);
            }
            Err(error) => {
                tracing::warn!(%session, %error, "verification of the DTLS fingerprints failed");
                self.end(session, EndReason::Intercepted, true);
            }
        }
    }

    /// A controller dialled the code: verify it first when it asks to, else ask about it as
    /// unverified (or refuse it).
    fn incoming(&mut self, incoming: rtcdesk_proto::signal::Incoming, now: Instant) {
        let session = incoming.session;
        let mut entry = Entry {
            quality: crate::Quality::Full,
            name: incoming.from,
            stage: Stage::Asking {
                deadline: now + self.consent_timeout,
            },
            verification: Verification::Unverified,
            dtls: None,
            early_fingerprints: None,
            view_only: false,
        };
        let Some(start) = incoming.pake else {
            if self.require_verified {
                let reason = if self.unattended.is_some() {
                    UNATTENDED_NEEDS_PASSWORD
                } else {
                    UNVERIFIED_REFUSED
                };
                self.reject(&session, reason);
                self.event(PuppetEvent::Declined {
                    session,
                    from: entry.name,
                });
                return;
            }
            self.sessions.insert(session.clone(), entry);
            self.ask(&session, false);
            return;
        };
        let in_flight = self
            .sessions
            .values()
            .filter(|e| matches!(e.stage, Stage::Verifying { .. }))
            .count() as u32;
        let run = if let Some(unattended) = &self.unattended {
            if let Err(refusal) = unattended.guard.check(now) {
                tracing::warn!(%session, ?refusal, "unattended attempt refused before it ran");
                self.reject(&session, &refusal.reason());
                return;
            }
            if in_flight > 0 {
                self.reject(&session, ONE_ATTEMPT_AT_A_TIME);
                return;
            }
            let (id, key) = (unattended.claim.id, &unattended.key);
            PakeMessage::decode(&start)
                .map_err(PakeError::from)
                .and_then(|start| PuppetResponse::for_device(id, key, session.as_str(), &start))
        } else {
            if self.failed_runs + in_flight >= MAX_FAILED_RUNS {
                // Every further guess at this code waits for the runs in flight to end.
                self.reject(&session, "too many attempts with this code: try again");
                return;
            }
            let (Some(route), Some(secret)) = (self.code, self.secret) else {
                // Between retiring a code and getting the next one.
                self.reject(&session, "this code was just retired: ask for the new one");
                return;
            };
            PakeMessage::decode(&start)
                .map_err(PakeError::from)
                .and_then(|start| PuppetResponse::new(route, secret, session.as_str(), &start))
        };
        match run {
            Ok((response, reply)) => {
                entry.stage = Stage::Verifying {
                    deadline: now + VERIFY_TIMEOUT,
                };
                entry.verification = Verification::Confirming(response);
                self.sessions.insert(session.clone(), entry);
                self.out.push_back(Output::Send(
                    Pake {
                        session,
                        data: reply.encode(),
                    }
                    .into(),
                ));
            }
            Err(error) => {
                tracing::info!(%session, %error, "a controller's verification message was refused");
                self.sessions.insert(session.clone(), entry);
                self.fail_run(&session, "the verification message was malformed");
            }
        }
    }

    /// A `pake` message: the controller's key confirmation, or its fingerprints MAC.
    fn handle_pake(&mut self, pake: Pake, now: Instant) {
        let Some(entry) = self.sessions.get_mut(&pake.session) else {
            return;
        };
        let session = pake.session;
        let message = match PakeMessage::decode(&pake.data) {
            Ok(message) => message,
            Err(error) => {
                tracing::info!(%session, %error, "malformed verification message");
                match entry.stage {
                    Stage::Verifying { .. } => {
                        self.fail_run(&session, "the verification message was malformed")
                    }
                    Stage::Binding { .. } | Stage::Connecting { .. }
                        if matches!(entry.verification, Verification::Keyed(_)) =>
                    {
                        self.end(&session, EndReason::Intercepted, true)
                    }
                    _ => {}
                }
                return;
            }
        };
        match (entry.stage, &entry.verification) {
            (Stage::Verifying { .. }, Verification::Confirming(_)) => {
                let Verification::Confirming(response) =
                    std::mem::replace(&mut entry.verification, Verification::Unverified)
                else {
                    return;
                };
                match response.check(&message) {
                    Ok(key) => {
                        entry.verification = Verification::Keyed(key);
                        entry.stage = Stage::Asking {
                            deadline: now + self.consent_timeout,
                        };
                        if let Some(unattended) = &mut self.unattended {
                            let had_streak = unattended.guard.consecutive() > 0;
                            unattended.guard.record_success();
                            if had_streak {
                                self.event(PuppetEvent::Attempts {
                                    consecutive: 0,
                                    locked: false,
                                });
                            }
                            // Nobody is at an unattended puppet to ask: the password was the
                            // consent.
                            self.announce(&session, true);
                            self.handle_decision(&session, Decision::Control, now);
                        } else {
                            self.ask(&session, true);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%session, %error, "a controller failed verification");
                        let reason = if self.unattended.is_some() {
                            "wrong password"
                        } else {
                            "the control code is wrong"
                        };
                        self.fail_run(&session, reason);
                    }
                }
            }
            (Stage::Connecting { .. }, Verification::Keyed(_)) => {
                entry.early_fingerprints = Some(message);
            }
            (Stage::Binding { .. }, Verification::Keyed(_)) => {
                self.check_fingerprints(&session, &message);
            }
            _ => {
                tracing::debug!(%session, kind = message.kind_name(), "verification message not expected now")
            }
        }
    }

    /// Asks the accept policy about a controller (now verified, or unverified).
    fn ask(&mut self, session: &SessionId, verified: bool) {
        if let Some(from) = self.announce(session, verified) {
            self.out.push_back(Output::Ask(IncomingRequest {
                session: session.clone(),
                from,
                verified,
            }));
        }
    }

    /// Tells the user interface who is asking (or, unattended, who got in on the password);
    /// gives the controller's name.
    fn announce(&mut self, session: &SessionId, verified: bool) -> Option<String> {
        let from = self.sessions.get(session)?.name.clone();
        self.event(PuppetEvent::Incoming {
            session: session.clone(),
            from: from.clone(),
            verified,
        });
        Some(from)
    }

    /// A verification run failed: refuse the controller, count the failure, and retire the
    /// code after [`MAX_FAILED_RUNS`].
    fn fail_run(&mut self, session: &SessionId, reason: &str) {
        let Some(entry) = self.sessions.remove(session) else {
            return;
        };
        self.reject(session, reason);
        self.count_failure(session, entry.name);
    }

    fn count_failure(&mut self, session: &SessionId, from: String) {
        if let Some(unattended) = &mut self.unattended {
            let now = self.last_now.unwrap_or_else(Instant::now);
            unattended.guard.record_failure(now);
            let (consecutive, locked) =
                (unattended.guard.consecutive(), unattended.guard.is_locked());
            tracing::warn!(%session, consecutive, locked, "wrong password for unattended access");
            // The count first: the shell stores it before it tells anything after it.
            self.event(PuppetEvent::Attempts {
                consecutive,
                locked,
            });
            self.event(PuppetEvent::VerificationFailed {
                session: session.clone(),
                from,
                failed_runs: consecutive,
            });
            return;
        }
        self.failed_runs += 1;
        self.event(PuppetEvent::VerificationFailed {
            session: session.clone(),
            from,
            failed_runs: self.failed_runs,
        });
        if self.failed_runs >= MAX_FAILED_RUNS && !self.shut_down && self.join.is_none() {
            tracing::warn!(failed = self.failed_runs, "retiring the control code");
            self.event(PuppetEvent::CodeRetired {
                failed_runs: self.failed_runs,
            });
            self.failed_runs = 0;
            self.secret = None;
            self.register();
        }
    }

    /// The session's peer ended (closed, silent too long) or must end (input overload).
    pub fn handle_peer_lost(&mut self, session: &SessionId, reason: EndReason) {
        self.end(session, reason, true);
    }

    /// Time passed: consent and connect deadlines, re-registration.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        let expired: Vec<(SessionId, Stage)> = self
            .sessions
            .iter()
            .filter_map(|(id, entry)| match entry.stage {
                Stage::Verifying { deadline }
                | Stage::Asking { deadline }
                | Stage::Connecting { deadline }
                | Stage::Binding { deadline }
                    if deadline <= now =>
                {
                    Some((id.clone(), entry.stage))
                }
                _ => None,
            })
            .collect();
        for (session, stage) in expired {
            match stage {
                Stage::Verifying { .. } => {
                    self.fail_run(&session, "the control code was not confirmed in time")
                }
                Stage::Asking { .. } => self.decline(&session, "nobody answered on the puppet"),
                Stage::Binding { .. } => self.end(&session, EndReason::NotVerified, true),
                _ => self.end(&session, EndReason::ConnectFailed, true),
            }
        }
        if self.register_at.is_some_and(|at| at <= now) && !self.shut_down {
            self.register_at = None;
            self.register();
        }
        if self.reconnect_at.is_some_and(|at| at <= now) && !self.shut_down {
            self.reconnect_at = None;
            self.out.push_back(Output::ConnectSignaling);
        }
    }

    /// The signaling connection closed or failed, or connecting again failed. Connected
    /// sessions go on; those that still needed signaling end; a new try is scheduled.
    pub fn handle_signaling_lost(&mut self, reason: String, now: Instant) {
        self.last_now = Some(now);
        if self.shut_down {
            return;
        }
        self.code = None;
        self.register_at = None;
        // Those still being asked are forgotten (the server told their controllers `left`);
        // those being set up cannot finish without signaling.
        // A room member's session ends with its connection too: the server has told the
        // proctor `left`, and joining again (on reconnecting) opens a new session.
        let room_member = self.join.is_some();
        let unfinished: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, entry)| room_member || !matches!(entry.stage, Stage::Connected))
            .map(|(id, _)| id.clone())
            .collect();
        for session in unfinished {
            self.end(&session, EndReason::ConnectFailed, false);
        }
        if std::mem::replace(&mut self.signaling_up, false) {
            self.event(PuppetEvent::SignalingLost { reason });
        } else {
            tracing::info!(%reason, "the signaling server is still unreachable");
        }
        self.reconnect_at = Some(now + self.reconnect_backoff);
        self.reconnect_backoff = (self.reconnect_backoff * 2).min(RECONNECT_MAX);
    }

    /// The shell connected to the signaling server again: register for a new code.
    pub fn handle_signaling_connected(&mut self) {
        if self.shut_down {
            return;
        }
        self.signaling_up = true;
        self.reconnect_backoff = RECONNECT_FIRST;
        self.register();
    }

    /// The puppet is leaving: every controller asking is rejected, every session left.
    pub fn handle_shutdown(&mut self) {
        self.shut_down = true;
        self.register_at = None;
        self.reconnect_at = None;
        let sessions: Vec<SessionId> = self.sessions.keys().cloned().collect();
        for session in sessions {
            if matches!(
                self.sessions.get(&session).map(|e| e.stage),
                Some(Stage::Asking { .. } | Stage::Verifying { .. })
            ) {
                self.decline(&session, "the puppet is shutting down");
            } else {
                self.end(&session, EndReason::Shutdown, true);
            }
        }
    }

    /// When [`SessionBook::handle_timeout`] is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sessions
            .values()
            .filter_map(|entry| match entry.stage {
                Stage::Verifying { deadline }
                | Stage::Asking { deadline }
                | Stage::Connecting { deadline }
                | Stage::Binding { deadline } => Some(deadline),
                Stage::Connected => None,
            })
            .chain(self.register_at)
            .chain(self.reconnect_at)
            .min()
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Sends `reject` for a session still ringing, with a reason the controller's user reads.
    fn reject(&mut self, session: &SessionId, reason: &str) {
        self.out.push_back(Output::Send(
            Reject {
                session: session.clone(),
                reason: Some(reason.to_string()),
            }
            .into(),
        ));
    }

    fn decline(&mut self, session: &SessionId, reason: &str) {
        let Some(entry) = self.sessions.remove(session) else {
            return;
        };
        self.reject(session, reason);
        self.event(PuppetEvent::Declined {
            session: session.clone(),
            from: entry.name,
        });
    }

    /// Ends a session once. `send_leave` is false when the server already ended it (`left`).
    fn end(&mut self, session: &SessionId, reason: EndReason, send_leave: bool) {
        let Some(entry) = self.sessions.remove(session) else {
            return;
        };
        if let Stage::Verifying { .. } = entry.stage {
            // It left after learning whether its guess was right: that run counts.
            self.count_failure(session, entry.name);
            return;
        }
        if let Stage::Asking { .. } = entry.stage {
            // The controller gave up while we were still asking: nothing was started.
            self.event(PuppetEvent::Declined {
                session: session.clone(),
                from: entry.name,
            });
            return;
        }
        if send_leave {
            self.out.push_back(Output::Send(
                Leave {
                    session: session.clone(),
                }
                .into(),
            ));
        }
        self.out.push_back(Output::ClosePeer(session.clone()));
        self.event(PuppetEvent::SessionEnded {
            session: session.clone(),
            reason,
        });
    }

    fn event(&mut self, event: PuppetEvent) {
        self.out.push_back(Output::Event(event));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_proto::signal::{Answer, Candidate, Incoming, Left, Registered};

    const CONSENT: Duration = Duration::from_secs(30);
    const CONNECT: Duration = Duration::from_secs(20);

    fn book() -> (SessionBook, Instant) {
        let now = Instant::now();
        let mut book = SessionBook::new("desk".into(), CONSENT, CONNECT);
        book.register();
        let code = ControlCode::from_number(123_456_789).unwrap();
        book.handle_signal(
            Registered {
                code,
                expires_in: 600,
                ice_servers: Vec::new(),
                device: false,
            }
            .into(),
            now,
        );
        (book, now)
    }

    fn drain(book: &mut SessionBook) -> Vec<Output> {
        std::iter::from_fn(|| book.poll_output()).collect()
    }

    fn incoming(book: &mut SessionBook, id: &str, now: Instant) {
        book.handle_signal(
            Incoming {
                session: id.into(),
                from: format!("controller {id}"),
                pake: None,
            }
            .into(),
            now,
        );
    }

    /// A controller that dials with `secret` (the right one unless told otherwise): returns
    /// its SPAKE2 state and what the book sent back (its reply, or a reject).
    fn verified_incoming(
        book: &mut SessionBook,
        id: &str,
        secret: Option<Secret>,
        now: Instant,
    ) -> (rtcdesk_pake::ControllerStart, Vec<Output>) {
        let code = book.pairing_code().unwrap();
        let secret = secret.or(code.secret).unwrap();
        let (start, message) = rtcdesk_pake::ControllerStart::new(code.route, secret);
        book.handle_signal(
            Incoming {
                session: id.into(),
                from: format!("controller {id}"),
                pake: Some(message.encode()),
            }
            .into(),
            now,
        );
        (start, drain(book))
    }

    fn pake_data(outputs: &[Output]) -> PakeMessage {
        let data = sent(outputs)
            .into_iter()
            .find_map(|m| match m {
                SignalMessage::Pake(p) => Some(p.data.clone()),
                _ => None,
            })
            .expect("a pake message was sent");
        PakeMessage::decode(&data).unwrap()
    }

    fn pake(id: &str, message: &PakeMessage) -> SignalMessage {
        Pake {
            session: id.into(),
            data: message.encode(),
        }
        .into()
    }

    fn fp(byte: u8) -> Fingerprint {
        Fingerprint {
            hash: "sha-256".into(),
            digest: vec![byte; 32],
        }
    }

    fn rejected_with(outputs: &[Output]) -> Option<String> {
        sent(outputs).into_iter().find_map(|m| match m {
            SignalMessage::Reject(r) => r.reason.clone(),
            _ => None,
        })
    }

    /// Runs a verified controller up to the book's question; returns the controller's key.
    fn verified_until_asked(book: &mut SessionBook, id: &str, now: Instant) -> SessionKey {
        let (start, out) = verified_incoming(book, id, None, now);
        assert!(
            !out.iter().any(|o| matches!(o, Output::Ask(_))),
            "nobody is asked before the controller confirms: {out:?}"
        );
        let (key, confirm) = start.finish(id, &pake_data(&out)).unwrap();
        book.handle_signal(pake(id, &confirm), now);
        let out = drain(book);
        assert!(out.contains(&Output::Ask(IncomingRequest {
            session: id.into(),
            from: format!("controller {id}"),
            verified: true,
        })));
        key
    }

    const DEVICE_ID: u32 = 482_113_905;
    const PASSWORD: &str = "correct horse battery";

    /// An unattended book, registered under its device ID, with this attempt policy.
    fn unattended_book(policy: crate::attempts::AttemptPolicy) -> (SessionBook, Instant) {
        let now = Instant::now();
        let id = ControlCode::from_number(DEVICE_ID).unwrap();
        let mut book = SessionBook::new("home".into(), CONSENT, CONNECT);
        book.unattended(
            DeviceClaim {
                id,
                token: "q2Vd7xk1Bz9mN3pL8sT4wAq2".into(),
            },
            DeviceKey::derive(id, PASSWORD),
            AttemptGuard::restore(policy, 0, false, now),
        );
        book.register();
        let out = drain(&mut book);
        assert!(
            sent(&out).iter().any(|m| matches!(m,
                SignalMessage::Register(Register { device: Some(claim), .. }) if claim.id == id)),
            "registers its device ID: {out:?}"
        );
        book.handle_signal(
            Registered {
                code: id,
                expires_in: 0,
                ice_servers: Vec::new(),
                device: true,
            }
            .into(),
            now,
        );
        let out = drain(&mut book);
        assert!(out.iter().any(|o| matches!(
            o,
            Output::Event(PuppetEvent::Registered { device: true, .. })
        )));
        assert_eq!(book.pairing_code().unwrap().secret, None);
        assert_eq!(
            book.poll_timeout(),
            None,
            "a device ID is never registered again"
        );
        (book, now)
    }

    /// A controller that typed `password` dials the device; returns what the book did after
    /// the controller's confirmation (or after its reply, when the controller saw it was wrong
    /// and left).
    fn dial_device(book: &mut SessionBook, id: &str, password: &str, now: Instant) -> Vec<Output> {
        let device = ControlCode::from_number(DEVICE_ID).unwrap();
        let (start, message) =
            rtcdesk_pake::ControllerStart::for_device(device, &DeviceKey::derive(device, password));
        book.handle_signal(
            Incoming {
                session: id.into(),
                from: format!("controller {id}"),
                pake: Some(message.encode()),
            }
            .into(),
            now,
        );
        let out = drain(book);
        if rejected_with(&out).is_some() {
            return out;
        }
        match start.finish(id, &pake_data(&out)) {
            Ok((_, confirm)) => book.handle_signal(pake(id, &confirm), now),
            // A controller with the wrong password sees it at once and leaves.
            Err(_) => book.handle_signal(Left { session: id.into() }.into(), now),
        }
        drain(book)
    }

    #[test]
    fn an_unattended_puppet_lets_the_right_password_in_without_asking() {
        let (mut book, now) = unattended_book(Default::default());
        let out = dial_device(&mut book, "s1", PASSWORD, now);
        assert!(
            !out.iter().any(|o| matches!(o, Output::Ask(_))),
            "nobody to ask: {out:?}"
        );
        assert!(sent(&out)
            .iter()
            .any(|m| matches!(m, SignalMessage::Accept(_))));
        assert!(out.contains(&Output::StartPeer("s1".into())));
        // Video still waits for the fingerprints, as for any verified session.
        book.handle_peer_secured(&"s1".into(), fp(1), fp(2));
        book.handle_peer_connected(&"s1".into(), now);
        assert!(!drain(&mut book).contains(&Output::StartVideo("s1".into())));
    }

    #[test]
    fn wrong_passwords_back_off_then_lock_the_puppet_until_unlocked() {
        let policy = crate::attempts::AttemptPolicy {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            lock_after: 3,
        };
        let (mut book, mut now) = unattended_book(policy);
        let out = dial_device(&mut book, "s1", "wrong guess", now);
        assert!(out.contains(&Output::Event(PuppetEvent::Attempts {
            consecutive: 1,
            locked: false
        })));
        assert!(!out.iter().any(|o| matches!(o, Output::StartPeer(_))));
        // Straight away: refused before any run, and not counted.
        let out = dial_device(&mut book, "s2", PASSWORD, now);
        let reason = rejected_with(&out).unwrap();
        assert!(reason.contains("try again in 1 s"), "{reason}");
        assert_eq!(book.attempts(), Some((1, false)));
        now += Duration::from_secs(1);
        dial_device(&mut book, "s3", "wrong again", now);
        now += Duration::from_secs(2);
        let out = dial_device(&mut book, "s4", "and again", now);
        assert!(out.contains(&Output::Event(PuppetEvent::Attempts {
            consecutive: 3,
            locked: true
        })));
        // Locked: even the right password, much later, is refused.
        now += Duration::from_secs(3600);
        let out = dial_device(&mut book, "s5", PASSWORD, now);
        assert!(rejected_with(&out).unwrap().contains("puppet unlock"));
        book.unlock();
        drain(&mut book);
        let out = dial_device(&mut book, "s6", PASSWORD, now);
        assert!(out.contains(&Output::StartPeer("s6".into())), "{out:?}");
    }

    #[test]
    fn a_right_password_ends_the_streak_of_wrong_ones() {
        let (mut book, mut now) = unattended_book(Default::default());
        dial_device(&mut book, "s1", "wrong guess", now);
        now += Duration::from_secs(1);
        let out = dial_device(&mut book, "s2", PASSWORD, now);
        assert!(out.contains(&Output::Event(PuppetEvent::Attempts {
            consecutive: 0,
            locked: false
        })));
        assert_eq!(book.attempts(), Some((0, false)));
    }

    #[test]
    fn an_unattended_puppet_refuses_browsers_and_runs_one_attempt_at_a_time() {
        let (mut book, now) = unattended_book(Default::default());
        incoming(&mut book, "browser", now);
        let out = drain(&mut book);
        assert_eq!(
            rejected_with(&out).as_deref(),
            Some(UNATTENDED_NEEDS_PASSWORD)
        );
        let device = ControlCode::from_number(DEVICE_ID).unwrap();
        let key = DeviceKey::derive(device, PASSWORD);
        for id in ["a", "b"] {
            let (_, start) = rtcdesk_pake::ControllerStart::for_device(device, &key);
            book.handle_signal(
                Incoming {
                    session: id.into(),
                    from: id.into(),
                    pake: Some(start.encode()),
                }
                .into(),
                now,
            );
        }
        let out = drain(&mut book);
        assert_eq!(rejected_with(&out).as_deref(), Some(ONE_ATTEMPT_AT_A_TIME));
        // The first, never confirmed, times out and counts.
        book.handle_timeout(now + VERIFY_TIMEOUT);
        assert_eq!(book.attempts(), Some((1, false)));
    }

    #[test]
    fn a_verified_controller_is_asked_then_bound_to_the_dtls_fingerprints_before_video() {
        let (mut book, now) = book();
        drain(&mut book);
        let code = book.pairing_code().unwrap();
        assert!(
            code.secret.is_some(),
            "the code shown has its secret digits"
        );
        assert_eq!(code.to_string().len(), "123 456 789 012".len());
        let key = verified_until_asked(&mut book, "s1", now);
        book.handle_decision(&"s1".into(), Decision::Control, now);
        drain(&mut book);
        // DTLS: the puppet's certificate 1, the controller's 2.
        book.handle_peer_secured(&"s1".into(), fp(1), fp(2));
        book.handle_peer_connected(&"s1".into(), now);
        let out = drain(&mut book);
        assert!(
            !out.contains(&Output::StartVideo("s1".into())),
            "no video before the fingerprints check out"
        );
        let ours = pake_data(&out);
        key.check_fingerprints(&ours, &fp(2), &fp(1))
            .expect("the controller accepts the puppet's MAC");
        assert_eq!(book.sessions()[0].state, SessionState::Connecting);
        book.handle_signal(pake("s1", &key.fingerprints(&fp(2), &fp(1))), now);
        let out = drain(&mut book);
        assert!(out.contains(&Output::StartVideo("s1".into())));
        assert_eq!(book.sessions()[0].state, SessionState::Connected);
    }

    #[test]
    fn fingerprints_that_arrive_before_dtls_is_up_are_kept() {
        let (mut book, now) = book();
        drain(&mut book);
        let key = verified_until_asked(&mut book, "s1", now);
        book.handle_decision(&"s1".into(), Decision::Control, now);
        book.handle_signal(pake("s1", &key.fingerprints(&fp(2), &fp(1))), now);
        book.handle_peer_secured(&"s1".into(), fp(1), fp(2));
        book.handle_peer_connected(&"s1".into(), now);
        assert!(drain(&mut book).contains(&Output::StartVideo("s1".into())));
    }

    #[test]
    fn a_server_in_the_middle_is_detected_and_the_session_ends() {
        let (mut book, now) = book();
        drain(&mut book);
        let key = verified_until_asked(&mut book, "s1", now);
        book.handle_decision(&"s1".into(), Decision::Control, now);
        // The puppet's DTLS peer is the server's endpoint 8; the controller's is endpoint 9.
        book.handle_peer_secured(&"s1".into(), fp(1), fp(8));
        book.handle_peer_connected(&"s1".into(), now);
        drain(&mut book);
        book.handle_signal(pake("s1", &key.fingerprints(&fp(2), &fp(9))), now);
        let out = drain(&mut book);
        assert!(!out.contains(&Output::StartVideo("s1".into())));
        assert!(out.contains(&Output::ClosePeer("s1".into())));
        assert!(out.contains(&Output::Event(PuppetEvent::SessionEnded {
            session: "s1".into(),
            reason: EndReason::Intercepted,
        })));
        assert!(book.sessions().is_empty());
    }

    #[test]
    fn a_verified_session_whose_controller_never_binds_ends() {
        let (mut book, now) = book();
        drain(&mut book);
        verified_until_asked(&mut book, "s1", now);
        book.handle_decision(&"s1".into(), Decision::Control, now);
        book.handle_peer_secured(&"s1".into(), fp(1), fp(2));
        book.handle_peer_connected(&"s1".into(), now);
        drain(&mut book);
        assert_eq!(book.poll_timeout(), Some(now + VERIFY_TIMEOUT));
        book.handle_timeout(now + VERIFY_TIMEOUT);
        let out = drain(&mut book);
        assert!(out.contains(&Output::Event(PuppetEvent::SessionEnded {
            session: "s1".into(),
            reason: EndReason::NotVerified,
        })));
    }

    #[test]
    fn a_wrong_secret_never_reaches_the_user_and_three_failures_retire_the_code() {
        let (mut book, now) = book();
        drain(&mut book);
        let right = book.pairing_code().unwrap().secret.unwrap();
        let wrong = Secret::from_number((right.digits().parse::<u16>().unwrap() + 1) % 1000);
        for (run, id) in ["a", "b", "c"].into_iter().enumerate() {
            let (start, out) = verified_incoming(&mut book, id, wrong, now);
            // The guessing controller learns its guess was wrong; it sends some confirmation.
            assert!(start.finish(id, &pake_data(&out)).is_err());
            book.handle_signal(pake(id, &PakeMessage::Confirm { confirm: [0; 32] }), now);
            let out = drain(&mut book);
            assert!(!out.iter().any(|o| matches!(o, Output::Ask(_))), "{out:?}");
            assert_eq!(
                rejected_with(&out).as_deref(),
                Some("the control code is wrong")
            );
            assert!(
                out.contains(&Output::Event(PuppetEvent::VerificationFailed {
                    session: id.into(),
                    from: format!("controller {id}"),
                    failed_runs: run as u32 + 1,
                }))
            );
            let registers = sent(&out)
                .iter()
                .any(|m| matches!(m, SignalMessage::Register(_)));
            if run == 2 {
                assert!(out.contains(&Output::Event(PuppetEvent::CodeRetired { failed_runs: 3 })));
                assert!(registers, "the puppet registers again for a new code");
            } else {
                assert!(!registers);
            }
        }
    }

    #[test]
    fn guesses_in_flight_count_so_no_more_than_three_are_ever_open() {
        let (mut book, now) = book();
        drain(&mut book);
        for id in ["a", "b", "c"] {
            let (_, out) = verified_incoming(&mut book, id, None, now);
            assert!(rejected_with(&out).is_none());
        }
        let (_, out) = verified_incoming(&mut book, "d", None, now);
        assert_eq!(
            rejected_with(&out).as_deref(),
            Some("too many attempts with this code: try again")
        );
        // A run abandoned half-way (it leaves, or stays silent) is a failure too.
        book.handle_signal(
            Left {
                session: "a".into(),
            }
            .into(),
            now,
        );
        book.handle_timeout(now + VERIFY_TIMEOUT);
        let out = drain(&mut book);
        assert!(out.contains(&Output::Event(PuppetEvent::CodeRetired { failed_runs: 3 })));
    }

    #[test]
    fn garbage_in_place_of_a_verification_message_is_a_failed_run() {
        let (mut book, now) = book();
        drain(&mut book);
        book.handle_signal(
            Incoming {
                session: "x".into(),
                from: "x".into(),
                pake: Some("AAAA not base64 !!".into()),
            }
            .into(),
            now,
        );
        let out = drain(&mut book);
        assert!(rejected_with(&out).is_some());
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Event(PuppetEvent::VerificationFailed { .. }))));
        verified_incoming(&mut book, "y", None, now);
        book.handle_signal(
            Pake {
                session: "y".into(),
                data: "x".repeat(100_000),
            }
            .into(),
            now,
        );
        assert!(book.sessions().is_empty());
    }

    #[test]
    fn an_unverified_controller_is_asked_as_such_or_refused_when_verification_is_required() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "browser", now);
        let out = drain(&mut book);
        assert!(out.contains(&Output::Ask(IncomingRequest {
            session: "browser".into(),
            from: "controller browser".into(),
            verified: false,
        })));
        book.require_verified(true);
        incoming(&mut book, "browser2", now);
        let out = drain(&mut book);
        assert!(!out.iter().any(|o| matches!(o, Output::Ask(_))));
        assert_eq!(rejected_with(&out).as_deref(), Some(UNVERIFIED_REFUSED));
    }

    fn sent(outputs: &[Output]) -> Vec<&SignalMessage> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn registering_sends_register_and_reports_the_code() {
        let (mut book, _) = book();
        let out = drain(&mut book);
        assert_eq!(
            out[0],
            Output::Send(
                Register {
                    name: "desk".into(),
                    watchers: None,
                    device: None,
                }
                .into()
            )
        );
        assert!(matches!(
            out[1],
            Output::Event(PuppetEvent::Registered { expires_in, .. }) if expires_in == Duration::from_secs(600)
        ));
        assert_eq!(book.code().map(|c| c.digits()), Some("123456789".into()));
    }

    #[test]
    fn an_accepted_controller_gets_accept_then_a_peer_then_video() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        let out = drain(&mut book);
        assert!(out.contains(&Output::Ask(IncomingRequest {
            session: "s1".into(),
            from: "controller s1".into(),
            verified: false,
        })));
        assert!(!book.is_live(&"s1".into()));
        book.handle_decision(&"s1".into(), Decision::Control, now);
        let out = drain(&mut book);
        assert_eq!(
            sent(&out),
            vec![&SignalMessage::from(Accept {
                session: "s1".into()
            })]
        );
        assert!(out.contains(&Output::StartPeer("s1".into())));
        assert!(book.is_live(&"s1".into()));
        book.handle_peer_connected(&"s1".into(), now);
        let out = drain(&mut book);
        assert!(out.contains(&Output::StartVideo("s1".into())));
        assert_eq!(book.sessions()[0].state, SessionState::Connected);
    }

    #[test]
    fn a_controller_let_in_to_watch_only_keeps_that_role() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "watcher", now);
        incoming(&mut book, "helper", now);
        drain(&mut book);
        book.handle_decision(&"watcher".into(), Decision::ViewOnly, now);
        book.handle_decision(&"helper".into(), Decision::Control, now);
        let out = drain(&mut book);
        assert!(out.contains(&Output::Event(PuppetEvent::SessionStarted {
            session: "watcher".into(),
            name: "controller watcher".into(),
            view_only: true,
        })));
        assert!(book.view_only(&"watcher".into()));
        assert!(!book.view_only(&"helper".into()));
        assert!(!book.view_only(&"unknown".into()));
    }

    #[test]
    fn one_controller_controls_at_a_time_and_the_next_watches_until_it_is_gone() {
        let (mut book, now) = book();
        drain(&mut book);
        for id in ["first", "second"] {
            incoming(&mut book, id, now);
        }
        drain(&mut book);
        book.handle_decision(&"first".into(), Decision::Control, now);
        book.handle_decision(&"second".into(), Decision::Control, now);
        assert!(!book.view_only(&"first".into()));
        assert!(
            book.view_only(&"second".into()),
            "someone else has control: the second watches"
        );
        let roles: Vec<(String, bool)> = book
            .sessions()
            .into_iter()
            .map(|s| (s.name, s.view_only))
            .collect();
        assert_eq!(
            roles,
            vec![
                ("controller first".to_string(), false),
                ("controller second".to_string(), true)
            ]
        );
        // Once the one in control has left, the next controller accepted gets control.
        book.handle_signal(
            Left {
                session: "first".into(),
            }
            .into(),
            now,
        );
        incoming(&mut book, "third", now);
        drain(&mut book);
        book.handle_decision(&"third".into(), Decision::Control, now);
        assert!(!book.view_only(&"third".into()));
    }

    #[test]
    fn giving_control_to_a_watcher_takes_it_from_the_one_that_had_it() {
        let (mut book, now) = book();
        for id in ["first", "second"] {
            incoming(&mut book, id, now);
            book.handle_decision(&id.into(), Decision::Control, now);
        }
        drain(&mut book);
        assert!(book.view_only(&"second".into()));
        book.handle_set_view_only(&"second".into(), false);
        let out = drain(&mut book);
        assert_eq!(
            out,
            vec![
                Output::SetViewOnly("first".into(), true),
                Output::Event(PuppetEvent::RoleChanged {
                    session: "first".into(),
                    view_only: true
                }),
                Output::SetViewOnly("second".into(), false),
                Output::Event(PuppetEvent::RoleChanged {
                    session: "second".into(),
                    view_only: false
                }),
            ]
        );
        assert!(book.view_only(&"first".into()));
        assert!(!book.view_only(&"second".into()));
        // Asking again for what already is changes nothing; taking control away is one step.
        book.handle_set_view_only(&"second".into(), false);
        assert!(drain(&mut book).is_empty());
        book.handle_set_view_only(&"second".into(), true);
        assert_eq!(drain(&mut book).len(), 2);
        assert!(book.view_only(&"second".into()) && book.view_only(&"first".into()));
    }

    #[test]
    fn a_controller_still_being_asked_cannot_be_given_control_early() {
        let (mut book, now) = book();
        incoming(&mut book, "ringing", now);
        drain(&mut book);
        book.handle_set_view_only(&"ringing".into(), false);
        book.handle_set_view_only(&"unknown".into(), false);
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn the_user_disconnects_a_session_or_refuses_one_still_asking() {
        let (mut book, now) = book();
        incoming(&mut book, "running", now);
        book.handle_decision(&"running".into(), Decision::Control, now);
        incoming(&mut book, "ringing", now);
        drain(&mut book);
        book.handle_disconnect(&"running".into());
        let out = drain(&mut book);
        assert!(sent(&out)
            .iter()
            .any(|m| matches!(m, SignalMessage::Leave(l) if l.session == "running".into())));
        assert!(out.contains(&Output::ClosePeer("running".into())));
        assert!(out.contains(&Output::Event(PuppetEvent::SessionEnded {
            session: "running".into(),
            reason: EndReason::Disconnected
        })));
        book.handle_disconnect(&"ringing".into());
        let out = drain(&mut book);
        assert!(sent(&out)
            .iter()
            .any(|m| matches!(m, SignalMessage::Reject(r) if r.session == "ringing".into())));
        assert!(book.sessions().is_empty());
        // Twice, or for a session that is gone: nothing more.
        book.handle_disconnect(&"running".into());
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn a_new_code_registers_again_and_sessions_go_on() {
        let (mut book, now) = book();
        incoming(&mut book, "running", now);
        book.handle_decision(&"running".into(), Decision::Control, now);
        drain(&mut book);
        let old = book.pairing_code().unwrap();
        book.handle_new_code();
        let out = drain(&mut book);
        assert!(matches!(sent(&out)[..], [SignalMessage::Register(_)]));
        assert_eq!(book.sessions().len(), 1, "the running session goes on");
        book.handle_signal(
            Registered {
                code: ControlCode::from_number(987_654_321).unwrap(),
                expires_in: 600,
                ice_servers: Vec::new(),
                device: false,
            }
            .into(),
            now,
        );
        let new = book.pairing_code().unwrap();
        assert_ne!(new.route, old.route);
    }

    #[test]
    fn a_rejected_controller_gets_reject_and_nothing_starts() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        drain(&mut book);
        book.handle_decision(&"s1".into(), Decision::Decline, now);
        let out = drain(&mut book);
        assert!(matches!(sent(&out)[..], [SignalMessage::Reject(_)]));
        assert!(!out.iter().any(|o| matches!(o, Output::StartPeer(_))));
        assert!(book.sessions().is_empty());
        // A late second answer changes nothing.
        book.handle_decision(&"s1".into(), Decision::Control, now);
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn no_answer_before_the_consent_deadline_rejects() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        drain(&mut book);
        assert_eq!(book.poll_timeout(), Some(now + CONSENT));
        book.handle_timeout(now + CONSENT - Duration::from_millis(1));
        assert!(drain(&mut book).is_empty());
        book.handle_timeout(now + CONSENT);
        let out = drain(&mut book);
        assert!(matches!(sent(&out)[..], [SignalMessage::Reject(_)]));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Event(PuppetEvent::Declined { .. }))));
    }

    #[test]
    fn answers_and_candidates_reach_only_accepted_sessions() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        let answer = SignalMessage::from(Answer {
            session: "s1".into(),
            sdp: "v=0".into(),
        });
        book.handle_signal(answer.clone(), now);
        assert!(!drain(&mut book)
            .iter()
            .any(|o| matches!(o, Output::Deliver(..))));
        book.handle_decision(&"s1".into(), Decision::Control, now);
        drain(&mut book);
        book.handle_signal(answer.clone(), now);
        let candidate = SignalMessage::from(Candidate {
            session: "s1".into(),
            candidate: String::new(),
            mid: None,
        });
        book.handle_signal(candidate.clone(), now);
        book.handle_signal(
            Answer {
                session: "other".into(),
                sdp: "v=0".into(),
            }
            .into(),
            now,
        );
        assert_eq!(
            drain(&mut book),
            vec![
                Output::Deliver("s1".into(), answer),
                Output::Deliver("s1".into(), candidate)
            ]
        );
    }

    #[test]
    fn a_session_ends_once_with_leave_close_and_event() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        book.handle_decision(&"s1".into(), Decision::Control, now);
        book.handle_peer_connected(&"s1".into(), now);
        drain(&mut book);
        book.handle_peer_lost(&"s1".into(), EndReason::ConnectionLost);
        let out = drain(&mut book);
        assert_eq!(
            out,
            vec![
                Output::Send(
                    Leave {
                        session: "s1".into()
                    }
                    .into()
                ),
                Output::ClosePeer("s1".into()),
                Output::Event(PuppetEvent::SessionEnded {
                    session: "s1".into(),
                    reason: EndReason::ConnectionLost
                }),
            ]
        );
        // The server's `left` afterwards, and another loss report, change nothing.
        book.handle_signal(
            Left {
                session: "s1".into(),
            }
            .into(),
            now,
        );
        book.handle_peer_lost(&"s1".into(), EndReason::ConnectionLost);
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn left_from_the_server_closes_without_sending_leave() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        book.handle_decision(&"s1".into(), Decision::Control, now);
        drain(&mut book);
        book.handle_signal(
            Left {
                session: "s1".into(),
            }
            .into(),
            now,
        );
        let out = drain(&mut book);
        assert!(sent(&out).is_empty());
        assert!(out.contains(&Output::ClosePeer("s1".into())));
    }

    #[test]
    fn a_session_that_never_connects_is_given_up() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        book.handle_decision(&"s1".into(), Decision::Control, now);
        drain(&mut book);
        assert_eq!(book.poll_timeout(), Some(now + CONNECT));
        book.handle_timeout(now + CONNECT);
        let out = drain(&mut book);
        assert!(out.contains(&Output::Event(PuppetEvent::SessionEnded {
            session: "s1".into(),
            reason: EndReason::ConnectFailed
        })));
        assert!(matches!(sent(&out)[..], [SignalMessage::Leave(_)]));
    }

    #[test]
    fn several_controllers_are_served_and_shutdown_leaves_each() {
        let (mut book, now) = book();
        drain(&mut book);
        for id in ["a", "b", "c"] {
            incoming(&mut book, id, now);
        }
        book.handle_decision(&"a".into(), Decision::Control, now);
        book.handle_decision(&"b".into(), Decision::Control, now);
        book.handle_peer_connected(&"a".into(), now);
        drain(&mut book);
        assert_eq!(book.sessions().len(), 3);
        book.handle_shutdown();
        let out = drain(&mut book);
        let messages = sent(&out);
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages
                .iter()
                .filter(|m| matches!(m, SignalMessage::Leave(_)))
                .count(),
            2
        );
        assert!(matches!(
            messages.iter().find(|m| matches!(m, SignalMessage::Reject(_))),
            Some(SignalMessage::Reject(r)) if r.session == "c".into()
        ));
        assert_eq!(
            out.iter()
                .filter(|o| matches!(o, Output::ClosePeer(_)))
                .count(),
            2
        );
        // Nobody new is asked about after shutdown.
        incoming(&mut book, "d", now);
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn the_code_is_registered_again_before_it_expires() {
        let (mut book, now) = book();
        drain(&mut book);
        let due = book.poll_timeout().expect("re-registration is scheduled");
        assert!(due > now && due < now + Duration::from_secs(600));
        book.handle_timeout(due);
        assert!(matches!(
            sent(&drain(&mut book))[..],
            [SignalMessage::Register(_)]
        ));
        assert_eq!(book.poll_timeout(), None);
    }

    #[test]
    fn losing_signaling_keeps_connected_sessions_ends_the_rest_and_retries_with_backoff() {
        let (mut book, now) = book();
        drain(&mut book);
        for id in ["connected", "connecting", "asking"] {
            incoming(&mut book, id, now);
        }
        book.handle_decision(&"connected".into(), Decision::Control, now);
        book.handle_decision(&"connecting".into(), Decision::Control, now);
        book.handle_peer_connected(&"connected".into(), now);
        drain(&mut book);

        book.handle_signaling_lost("closed".into(), now);
        let out = drain(&mut book);
        assert_eq!(book.code(), None);
        assert!(sent(&out).is_empty(), "nothing can be sent: {out:?}");
        assert!(out.contains(&Output::ClosePeer("connecting".into())));
        assert!(out.iter().any(|o| matches!(o,
            Output::Event(PuppetEvent::Declined { session, .. }) if *session == "asking".into())));
        assert!(out.contains(&Output::Event(PuppetEvent::SignalingLost {
            reason: "closed".into()
        })));
        let sessions = book.sessions();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].session, "connected".into());

        // Tries after 1 s, then 2 s, then 4 s while they fail; the user is told once.
        let mut at = now;
        for wait in [1, 2, 4] {
            let due = book.poll_timeout().expect("a retry is scheduled");
            assert_eq!(due - at, Duration::from_secs(wait));
            book.handle_timeout(due);
            assert_eq!(drain(&mut book), vec![Output::ConnectSignaling]);
            book.handle_signaling_lost("refused".into(), due);
            assert!(drain(&mut book).is_empty());
            at = due;
        }

        // Connected again: register; the connected session is still there.
        book.handle_signaling_connected();
        assert!(matches!(
            sent(&drain(&mut book))[..],
            [SignalMessage::Register(_)]
        ));
        assert_eq!(book.sessions().len(), 1);
        // And the backoff starts from 1 s again.
        book.handle_signaling_lost("closed".into(), at);
        drain(&mut book);
        assert_eq!(book.poll_timeout().unwrap() - at, Duration::from_secs(1));
    }

    #[test]
    fn a_controller_that_leaves_while_asked_is_forgotten() {
        let (mut book, now) = book();
        drain(&mut book);
        incoming(&mut book, "s1", now);
        drain(&mut book);
        book.handle_signal(
            Left {
                session: "s1".into(),
            }
            .into(),
            now,
        );
        let out = drain(&mut book);
        assert!(!out.iter().any(|o| matches!(o, Output::ClosePeer(_))));
        assert!(book.sessions().is_empty());
        book.handle_decision(&"s1".into(), Decision::Control, now);
        assert!(drain(&mut book).is_empty());
    }

    fn room_code() -> ControlCode {
        ControlCode::from_number(987_654_321).unwrap()
    }

    /// Given a puppet started with `--join`, whose `room_join` was answered with `room_joined`.
    fn member() -> (SessionBook, Instant, Vec<Output>) {
        let now = Instant::now();
        let mut book = SessionBook::new("student 7".into(), CONSENT, CONNECT);
        book.join_room(room_code());
        book.register();
        assert_eq!(
            drain(&mut book),
            vec![Output::Send(
                RoomJoin {
                    code: room_code(),
                    name: "student 7".into(),
                }
                .into()
            )]
        );
        assert_eq!(book.code(), None);
        book.handle_signal(
            rtcdesk_proto::signal::RoomJoined {
                room: rtcdesk_proto::signal::RoomId("r1".into()),
                session: "s1".into(),
                name: "Exam hall 2".into(),
                ice_servers: Vec::new(),
            }
            .into(),
            now,
        );
        let out = drain(&mut book);
        (book, now, out)
    }

    fn member_update(session: &str, state: rtcdesk_proto::signal::MemberStatus) -> SignalMessage {
        rtcdesk_proto::signal::Member {
            room: rtcdesk_proto::signal::RoomId("r1".into()),
            session: session.into(),
            name: "student 7".into(),
            state,
        }
        .into()
    }

    #[test]
    fn joining_a_room_starts_the_proctors_session_without_asking() {
        let (book, _, out) = member();
        assert_eq!(book.code(), Some(room_code()));
        assert!(book.is_live(&"s1".into()));
        // No question, no accept: joining was the consent.
        assert!(!out.iter().any(|o| matches!(o, Output::Ask(_))), "{out:?}");
        assert!(sent(&out).is_empty(), "{out:?}");
        assert!(out.contains(&Output::StartPeer("s1".into())), "{out:?}");
        assert!(out.contains(&Output::Event(PuppetEvent::JoinedRoom {
            session: "s1".into(),
            room_name: "Exam hall 2".into(),
        })));
    }

    #[test]
    fn the_member_is_told_when_the_proctor_watches_or_controls_and_only_about_its_session() {
        use rtcdesk_proto::signal::MemberStatus;
        let (mut book, now, _) = member();
        book.handle_signal(member_update("s1", MemberStatus::Watching), now);
        book.handle_signal(member_update("someone else", MemberStatus::Controlled), now);
        book.handle_signal(member_update("s1", MemberStatus::Controlled), now);
        let events: Vec<Output> = drain(&mut book);
        assert_eq!(
            events,
            vec![
                Output::Event(PuppetEvent::Watched {
                    session: "s1".into(),
                    by: "Exam hall 2".into(),
                    state: MemberStatus::Watching,
                }),
                Output::Event(PuppetEvent::Watched {
                    session: "s1".into(),
                    by: "Exam hall 2".into(),
                    state: MemberStatus::Controlled,
                }),
            ]
        );
    }

    #[test]
    fn a_wrong_room_code_is_a_join_failure_with_a_reason() {
        let mut book = SessionBook::new("student 7".into(), CONSENT, CONNECT);
        book.join_room(room_code());
        book.register();
        drain(&mut book);
        book.handle_signal(
            rtcdesk_proto::signal::Error {
                code: ErrorCode::UnknownCode,
                message: "no such room".into(),
            }
            .into(),
            Instant::now(),
        );
        let reason = book.join_failure().expect("a failure").to_string();
        assert!(reason.contains("no open room has this code"), "{reason}");
        assert_eq!(
            drain(&mut book),
            vec![Output::Event(PuppetEvent::JoinFailed { reason })]
        );
        assert_eq!(book.code(), None);
    }

    #[test]
    fn losing_signaling_ends_the_room_session_and_reconnecting_joins_again() {
        let (mut book, now, _) = member();
        book.handle_peer_connected(&"s1".into(), now);
        drain(&mut book);
        book.handle_signaling_lost("gone".into(), now);
        let out = drain(&mut book);
        assert!(out.contains(&Output::ClosePeer("s1".into())), "{out:?}");
        assert!(!book.is_live(&"s1".into()));
        book.handle_signaling_connected();
        let out = drain(&mut book);
        assert_eq!(
            sent(&out),
            vec![&SignalMessage::from(RoomJoin {
                code: room_code(),
                name: "student 7".into(),
            })]
        );
    }

    #[test]
    fn a_room_joined_that_nobody_asked_for_is_ignored() {
        let (mut book, now) = book();
        drain(&mut book);
        book.handle_signal(
            rtcdesk_proto::signal::RoomJoined {
                room: rtcdesk_proto::signal::RoomId("r1".into()),
                session: "s9".into(),
                name: "not mine".into(),
                ice_servers: Vec::new(),
            }
            .into(),
            now,
        );
        assert!(drain(&mut book).is_empty());
        assert!(!book.is_live(&"s9".into()));
    }

    #[test]
    fn a_proctors_focus_moves_the_member_to_the_full_stream_and_back() {
        use rtcdesk_proto::signal::MemberStatus;
        let (mut room_book, now, _) = member();
        assert_eq!(room_book.quality(&"s1".into()), crate::Quality::Thumbnail);
        room_book.handle_peer_connected(&"s1".into(), now);
        drain(&mut room_book);
        room_book.handle_signal(member_update("s1", MemberStatus::Controlled), now);
        room_book.handle_signal(member_update("s1", MemberStatus::Controlled), now);
        room_book.handle_signal(member_update("s1", MemberStatus::Watching), now);
        let moves: Vec<Output> = drain(&mut room_book)
            .into_iter()
            .filter(|o| matches!(o, Output::SetQuality(..)))
            .collect();
        assert_eq!(
            moves,
            vec![
                Output::SetQuality("s1".into(), crate::Quality::Full),
                Output::SetQuality("s1".into(), crate::Quality::Thumbnail),
            ]
        );
        // A controller that dialled a code always gets the full stream.
        let (mut dialled, now) = book();
        incoming(&mut dialled, "c1", now);
        assert_eq!(dialled.quality(&"c1".into()), crate::Quality::Full);
    }
}
