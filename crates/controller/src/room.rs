//! The proctor: opens a room, hands out its code, and watches every puppet that joins.
//!
//! [`RoomBook`] is the sans-IO core: fed the signaling server's room messages, it keeps the
//! roster and says what to do ([`RoomOutput`]): send a message, start a member's session (answer
//! its offer), pass a candidate on, end a member. [`Proctor`] is the tokio shell: one signaling
//! connection and one socket set ([`rtcdesk_peer::Endpoint`]) for every member, a decoder per
//! member whose newest picture lands in its [`Tile`], and [`RoomEvent`]s for the program.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtcdesk_peer::{Endpoint, PeerConfig, PeerEvent, PeerHandle, Role};
use rtcdesk_proto::signal::{
    Answer, Candidate, ControlCode, IceServer, MemberState, MemberStatus, RoomCreate, RoomEnd,
    RoomId, SessionId, SignalMessage,
};
use rtcdesk_signal::client::SignalClient;
use tokio::sync::mpsc;

use crate::decode::{DecodeCounters, DecodedPicture, DecoderThread, FrameSink};
use crate::grid::{Tile, TileState};
use crate::session::recv_signal;

/// What the proctor's program hears about the room.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// The room is open: hand out `code`; newcomers are admitted for `expires_in`.
    Opened {
        /// The room code puppets join with.
        code: ControlCode,
        /// How long the code admits newcomers.
        expires_in: Duration,
    },
    /// A puppet joined; its session is being set up.
    Joined {
        /// The member's session.
        session: SessionId,
        /// The name it joined with.
        name: String,
    },
    /// A member's state changed (watching, controlled, reconnecting).
    State {
        /// The member's session.
        session: SessionId,
        /// Its new state.
        state: MemberStatus,
    },
    /// A member left or was lost; its tile stays, grey.
    Left {
        /// The member's session.
        session: SessionId,
    },
    /// A member's first picture was decoded: its tile is live.
    FirstPicture {
        /// The member's session.
        session: SessionId,
        /// When.
        at: Instant,
    },
    /// The room is gone (ended, or the signaling connection was lost).
    Ended,
    /// The server refused something (e.g. too many rooms); the line says what.
    Refused(String),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomOutput {
    /// Send this on the signaling connection.
    Send(SignalMessage),
    /// Answer this member's offer on a new session of the shared endpoint.
    StartMember {
        /// The member's session.
        session: SessionId,
        /// The puppet's SDP offer.
        offer_sdp: String,
    },
    /// Hand this candidate to the member's session.
    Deliver {
        /// The member's session.
        session: SessionId,
        /// The candidate line (empty: end of candidates).
        candidate: String,
    },
    /// Close the member's session.
    EndMember(SessionId),
    /// Tell the program.
    Event(RoomEvent),
}

#[derive(Debug, Clone)]
struct MemberEntry {
    started: bool,
    gone: bool,
}

/// The proctor's room state machine; see the module docs.
#[derive(Debug)]
pub struct RoomBook {
    room: Option<RoomId>,
    ice_servers: Vec<IceServer>,
    members: BTreeMap<SessionId, MemberEntry>,
    out: VecDeque<RoomOutput>,
    ending: bool,
    ended: bool,
}

impl RoomBook {
    /// Starts by asking for a room called `name` (shown to every puppet that joins: say who
    /// watches, e.g. "Exam hall 2 — Ms Lovelace").
    pub fn new(name: String) -> RoomBook {
        let mut out = VecDeque::new();
        out.push_back(RoomOutput::Send(RoomCreate { name }.into()));
        RoomBook {
            room: None,
            ice_servers: Vec::new(),
            members: BTreeMap::new(),
            out,
            ending: false,
            ended: false,
        }
    }

    /// The room, once the server created it.
    pub fn room(&self) -> Option<&RoomId> {
        self.room.as_ref()
    }

    /// The ICE servers the signaling server handed out with the room.
    pub fn ice_servers(&self) -> &[IceServer] {
        &self.ice_servers
    }

    /// A message from the signaling server.
    pub fn handle_signal(&mut self, message: SignalMessage) {
        if self.ended {
            return;
        }
        match message {
            SignalMessage::RoomCreated(created) if self.room.is_none() => {
                self.room = Some(created.room);
                self.ice_servers = created.ice_servers;
                self.event(RoomEvent::Opened {
                    code: created.code,
                    expires_in: Duration::from_secs(created.expires_in),
                });
            }
            SignalMessage::Member(member) if Some(&member.room) == self.room.as_ref() => {
                match member.state {
                    MemberStatus::Joined if !self.members.contains_key(&member.session) => {
                        self.members.insert(
                            member.session.clone(),
                            MemberEntry {
                                started: false,
                                gone: false,
                            },
                        );
                        self.event(RoomEvent::Joined {
                            session: member.session,
                            name: member.name,
                        });
                    }
                    MemberStatus::Left => self.member_gone(&member.session),
                    state => {
                        if self.members.contains_key(&member.session) {
                            self.event(RoomEvent::State {
                                session: member.session,
                                state,
                            });
                        }
                    }
                }
            }
            SignalMessage::Offer(offer) => {
                if let Some(entry) = self.members.get_mut(&offer.session) {
                    if !entry.started && !entry.gone {
                        entry.started = true;
                        self.out.push_back(RoomOutput::StartMember {
                            session: offer.session,
                            offer_sdp: offer.sdp,
                        });
                    }
                }
            }
            SignalMessage::Candidate(candidate) => {
                let live = self
                    .members
                    .get(&candidate.session)
                    .is_some_and(|e| e.started && !e.gone);
                if live {
                    self.out.push_back(RoomOutput::Deliver {
                        session: candidate.session,
                        candidate: candidate.candidate,
                    });
                }
            }
            SignalMessage::Left(left) => self.member_gone(&left.session),
            SignalMessage::RoomEnded(ended) if Some(&ended.room) == self.room.as_ref() => {
                self.end_all();
            }
            SignalMessage::Error(error) => {
                let line = format!("{}: {}", error.code.as_str(), error.message);
                self.event(RoomEvent::Refused(line));
                if self.room.is_none() {
                    // room_create itself was refused: there is no room to wait for.
                    self.end_all();
                }
            }
            other => tracing::debug!(kind = other.type_name(), "ignored by the proctor"),
        }
    }

    /// Tells the server (and the member) what the proctor now does with a member.
    pub fn set_member_state(&mut self, session: &SessionId, state: MemberStatus) {
        if let (Some(room), true) = (&self.room, self.members.contains_key(session)) {
            self.out.push_back(RoomOutput::Send(
                MemberState {
                    room: room.clone(),
                    session: session.clone(),
                    state,
                }
                .into(),
            ));
        }
    }

    /// A member's session failed or went silent on our side.
    pub fn handle_member_lost(&mut self, session: &SessionId) {
        self.member_gone(session);
    }

    /// Ends the room: asks the server, which tells every member `left` and then answers
    /// `room_ended`; only then are the members' sessions closed, so each puppet hears that the
    /// proctor ended it rather than a connection that broke. Without a room there is nothing to
    /// wait for.
    pub fn end(&mut self) {
        match self.room.clone() {
            Some(room) if !self.ended && !self.ending => {
                self.ending = true;
                self.out
                    .push_back(RoomOutput::Send(RoomEnd { room }.into()));
            }
            Some(_) => {}
            None => self.end_all(),
        }
    }

    /// Whether [`RoomBook::end`] was called and the server's `room_ended` is awaited.
    pub fn is_ending(&self) -> bool {
        self.ending && !self.ended
    }

    /// The signaling connection is gone: the server ended the room with it.
    pub fn handle_signal_closed(&mut self) {
        self.end_all();
    }

    /// Whether the room is over.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<RoomOutput> {
        self.out.pop_front()
    }

    fn member_gone(&mut self, session: &SessionId) {
        let Some(entry) = self.members.get_mut(session) else {
            return;
        };
        if entry.gone {
            return;
        }
        entry.gone = true;
        if entry.started {
            self.out.push_back(RoomOutput::EndMember(session.clone()));
        }
        self.event(RoomEvent::Left {
            session: session.clone(),
        });
    }

    fn end_all(&mut self) {
        if self.ended {
            return;
        }
        let sessions: Vec<SessionId> = self.members.keys().cloned().collect();
        for session in sessions {
            self.member_gone(&session);
        }
        self.ended = true;
        self.event(RoomEvent::Ended);
    }

    fn event(&mut self, event: RoomEvent) {
        self.out.push_back(RoomOutput::Event(event));
    }
}

/// The tiles of a room, by member session, shared by the decoders and whoever draws them.
pub type Tiles = Arc<Mutex<BTreeMap<SessionId, Tile>>>;

/// How long [`Proctor::end`] waits for the server's `room_ended` before closing anyway.
const END_WAIT: Duration = Duration::from_secs(3);

/// Most pictures a tile takes per second: a thumbnail does not need more, and each costs an
/// RGBA conversion of the full picture.
const TILE_FPS: u32 = 5;

/// What [`Proctor::open`] needs.
#[derive(Debug, Clone)]
pub struct ProctorConfig {
    /// The signaling server.
    pub signal_url: String,
    /// Whom to trust for `wss://`.
    pub tls: rtcdesk_signal::tls::TlsOptions,
    /// The room's name, shown to every member.
    pub room_name: String,
    /// Bind the shared socket set here (tests: `127.0.0.1:0`).
    pub bind: Option<std::net::SocketAddr>,
    /// dav1d threads per member.
    pub decoder_threads: u32,
}

/// A running room. Dropping it ends the task (members notice by the server's `left`).
pub struct Proctor {
    tiles: Tiles,
    events: mpsc::Receiver<RoomEvent>,
    commands: mpsc::Sender<Command>,
    task: Option<tokio::task::JoinHandle<()>>,
}

enum Command {
    SetState(SessionId, MemberStatus),
    End,
}

impl Proctor {
    /// Connects, opens the room and serves it in a task; returns at once (the code comes as
    /// [`RoomEvent::Opened`]).
    pub async fn open(config: ProctorConfig) -> Result<Proctor, crate::ConnectError> {
        let signal = SignalClient::connect(&config.signal_url, &config.tls)
            .await
            .map_err(crate::ConnectError::SignalUnreachable)?;
        let tiles: Tiles = Arc::default();
        let (event_tx, events) = mpsc::channel(256);
        let (commands, command_rx) = mpsc::channel(64);
        let (first_pictures_tx, first_pictures) = mpsc::channel(64);
        let shell = Shell {
            first_pictures,
            first_pictures_tx,
            book: RoomBook::new(config.room_name.clone()),
            signal: Some(signal),
            endpoint: None,
            members: BTreeMap::new(),
            tiles: tiles.clone(),
            events: event_tx,
            config,
        };
        let task = tokio::spawn(shell.run(command_rx));
        Ok(Proctor {
            tiles,
            events,
            commands,
            task: Some(task),
        })
    }

    /// The tiles, for drawing (see [`crate::grid::render`]).
    pub fn tiles(&self) -> Tiles {
        self.tiles.clone()
    }

    /// The next event; `None` once the room's task is over.
    pub async fn next_event(&mut self) -> Option<RoomEvent> {
        self.events.recv().await
    }

    /// Tells a member (and the roster) that the proctor watches it, controls it, or neither.
    pub async fn set_member_state(&self, session: SessionId, state: MemberStatus) {
        let _ = self.commands.send(Command::SetState(session, state)).await;
    }

    /// Ends the room and waits for the task: every member's session ends.
    pub async fn end(mut self) {
        let _ = self.commands.send(Command::End).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Proctor {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Member {
    handle: PeerHandle,
    decoder: DecoderThread,
}

/// What a member's peer task reports to the shell.
enum MemberReport {
    Signal(SignalMessage),
    Lost(SessionId),
}

struct Shell {
    book: RoomBook,
    signal: Option<SignalClient>,
    endpoint: Option<Endpoint>,
    members: BTreeMap<SessionId, Member>,
    tiles: Tiles,
    events: mpsc::Sender<RoomEvent>,
    config: ProctorConfig,
    /// Each member's decoder reports its first picture here.
    first_pictures: mpsc::Receiver<(SessionId, Instant)>,
    first_pictures_tx: mpsc::Sender<(SessionId, Instant)>,
}

impl Shell {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let (report_tx, mut reports) = mpsc::channel(1024);
        let mut ending_since: Option<tokio::time::Instant> = None;
        loop {
            self.carry_out(&report_tx).await;
            if self.book.is_ended() {
                break;
            }
            if self.book.is_ending() && ending_since.is_none() {
                ending_since = Some(tokio::time::Instant::now());
            }
            let give_up = async {
                match ending_since {
                    Some(since) => tokio::time::sleep_until(since + END_WAIT).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // The server did not confirm the end: close everything anyway.
                _ = give_up => self.book.handle_signal_closed(),
                Some((session, at)) = self.first_pictures.recv() => {
                    let _ = self.events.try_send(RoomEvent::FirstPicture { session, at });
                }
                message = recv_signal(&mut self.signal) => match message {
                    Some(message) => self.book.handle_signal(message),
                    None => {
                        self.signal = None;
                        self.book.handle_signal_closed();
                    }
                },
                Some(report) = reports.recv() => match report {
                    MemberReport::Signal(message) => {
                        if let Some(signal) = self.signal.as_mut() {
                            let _ = signal.send(&message).await;
                        }
                    }
                    MemberReport::Lost(session) => self.book.handle_member_lost(&session),
                },
                command = commands.recv() => match command {
                    Some(Command::SetState(session, state)) => self.book.set_member_state(&session, state),
                    Some(Command::End) | None => self.book.end(),
                },
            }
        }
        self.carry_out(&report_tx).await;
        for (_, member) in std::mem::take(&mut self.members) {
            close_member(member).await;
        }
        if let Some(signal) = self.signal.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), signal.close()).await;
        }
    }

    async fn carry_out(&mut self, reports: &mpsc::Sender<MemberReport>) {
        while let Some(output) = self.book.poll_output() {
            match output {
                RoomOutput::Send(message) => {
                    if let Some(signal) = self.signal.as_mut() {
                        if signal.send(&message).await.is_err() {
                            self.signal = None;
                            self.book.handle_signal_closed();
                        }
                    }
                }
                RoomOutput::StartMember { session, offer_sdp } => {
                    if let Err(error) = self.start_member(&session, offer_sdp, reports).await {
                        tracing::warn!(%session, %error, "a member's session did not start");
                        self.book.handle_member_lost(&session);
                    }
                }
                RoomOutput::Deliver { session, candidate } => {
                    if let Some(member) = self.members.get(&session) {
                        let _ = member.handle.add_remote_candidate(candidate).await;
                    }
                }
                RoomOutput::EndMember(session) => {
                    if let Some(member) = self.members.remove(&session) {
                        close_member(member).await;
                    }
                    self.set_tile(&session, |tile| tile.state = TileState::Lost);
                }
                RoomOutput::Event(event) => {
                    match &event {
                        RoomEvent::Joined { session, name } => {
                            self.tiles_lock()
                                .insert(session.clone(), Tile::new(name.clone()));
                        }
                        RoomEvent::Left { session } => {
                            self.set_tile(session, |tile| tile.state = TileState::Lost)
                        }
                        RoomEvent::State {
                            session,
                            state: MemberStatus::Reconnecting,
                        } => self.set_tile(session, |tile| tile.state = TileState::Reconnecting),
                        RoomEvent::State { session, .. } => self.set_tile(session, |tile| {
                            if tile.state == TileState::Reconnecting {
                                tile.state = TileState::Live;
                            }
                        }),
                        _ => {}
                    }
                    let _ = self.events.try_send(event);
                }
            }
        }
    }

    async fn start_member(
        &mut self,
        session: &SessionId,
        offer_sdp: String,
        reports: &mpsc::Sender<MemberReport>,
    ) -> Result<(), crate::ConnectError> {
        let mut peer_config = PeerConfig::new(Role::Answerer);
        peer_config.bind = self.config.bind;
        peer_config.adopt_ice_servers(self.book.ice_servers()).await;
        if self.endpoint.is_none() {
            // One socket set for every member, bound on the first.
            self.endpoint = Some(Endpoint::bind_with_relays(
                self.config.bind,
                peer_config.socket_buffer_bytes,
                &peer_config.turn_servers,
            )?);
        }
        let Some(endpoint) = self.endpoint.as_ref() else {
            return Ok(());
        };
        let peer = endpoint.start_session(peer_config)?;
        let answer = peer.handle.accept_offer(offer_sdp).await?;
        if let Some(signal) = self.signal.as_mut() {
            let _ = signal
                .send(
                    &Answer {
                        session: session.clone(),
                        sdp: answer,
                    }
                    .into(),
                )
                .await;
        }
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        let (report_first, member) = (self.first_pictures_tx.clone(), session.clone());
        tokio::spawn(async move {
            if let Ok(at) = first_rx.await {
                let _ = report_first.send((member, at)).await;
            }
        });
        let decoder = DecoderThread::spawn(
            peer.video,
            peer.handle.clone(),
            Box::new(TileSink {
                tiles: self.tiles.clone(),
                session: session.clone(),
                rgba: Vec::new(),
                last: None,
            }),
            self.config.decoder_threads,
            Arc::new(DecodeCounters::default()),
            first_tx,
        )?;
        tokio::spawn(relay_member_events(
            session.clone(),
            peer.events,
            reports.clone(),
        ));
        self.members.insert(
            session.clone(),
            Member {
                handle: peer.handle,
                decoder,
            },
        );
        Ok(())
    }

    fn tiles_lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SessionId, Tile>> {
        self.tiles.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_tile(&self, session: &SessionId, change: impl FnOnce(&mut Tile)) {
        if let Some(tile) = self.tiles_lock().get_mut(session) {
            change(tile);
        }
    }
}

async fn close_member(member: Member) {
    member.handle.close().await;
    let mut decoder = member.decoder;
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::task::spawn_blocking(move || decoder.join()),
    )
    .await;
}

/// Passes a member's local candidates to signaling and reports its end.
async fn relay_member_events(
    session: SessionId,
    mut events: mpsc::Receiver<PeerEvent>,
    reports: mpsc::Sender<MemberReport>,
) {
    while let Some(event) = events.recv().await {
        let report = match event {
            PeerEvent::LocalCandidate { candidate, mid } => {
                MemberReport::Signal(SignalMessage::Candidate(Candidate {
                    session: session.clone(),
                    candidate,
                    mid,
                }))
            }
            PeerEvent::GatheringComplete => {
                MemberReport::Signal(SignalMessage::Candidate(Candidate {
                    session: session.clone(),
                    candidate: String::new(),
                    mid: None,
                }))
            }
            PeerEvent::Closed => MemberReport::Lost(session.clone()),
            _ => continue,
        };
        if reports.send(report).await.is_err() {
            return;
        }
    }
    let _ = reports.send(MemberReport::Lost(session)).await;
}

/// Puts a member's newest picture into its tile, at most [`TILE_FPS`] a second.
struct TileSink {
    tiles: Tiles,
    session: SessionId,
    rgba: Vec<u8>,
    last: Option<Instant>,
}

impl FrameSink for TileSink {
    fn frame(&mut self, picture: &DecodedPicture<'_>) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now - last < Duration::from_secs(1) / TILE_FPS)
        {
            return;
        }
        self.last = Some(now);
        picture.to_rgba(&mut self.rgba);
        let mut tiles = self.tiles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tile) = tiles.get_mut(&self.session) {
            tile.set_picture(picture.width(), picture.height(), &self.rgba, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_proto::signal::{Left, Member, Offer, RoomCreated, RoomEnded};

    fn code() -> ControlCode {
        "555444333".parse().expect("a code")
    }

    fn opened() -> RoomBook {
        let mut book = RoomBook::new("Exam hall 2".into());
        assert_eq!(
            book.poll_output(),
            Some(RoomOutput::Send(
                RoomCreate {
                    name: "Exam hall 2".into()
                }
                .into()
            ))
        );
        book.handle_signal(
            RoomCreated {
                room: RoomId("r1".into()),
                code: code(),
                expires_in: 600,
                ice_servers: Vec::new(),
            }
            .into(),
        );
        assert_eq!(
            book.poll_output(),
            Some(RoomOutput::Event(RoomEvent::Opened {
                code: code(),
                expires_in: Duration::from_secs(600)
            }))
        );
        book
    }

    fn member(session: &str, state: MemberStatus) -> SignalMessage {
        Member {
            room: RoomId("r1".into()),
            session: session.into(),
            name: format!("student {session}"),
            state,
        }
        .into()
    }

    fn offer(session: &str) -> SignalMessage {
        Offer {
            session: session.into(),
            sdp: format!("offer {session}"),
        }
        .into()
    }

    fn drain(book: &mut RoomBook) -> Vec<RoomOutput> {
        std::iter::from_fn(|| book.poll_output()).collect()
    }

    #[test]
    fn members_join_in_order_and_each_offer_starts_one_session() {
        let mut book = opened();
        book.handle_signal(member("a", MemberStatus::Joined));
        book.handle_signal(member("b", MemberStatus::Joined));
        book.handle_signal(offer("b"));
        book.handle_signal(offer("a"));
        book.handle_signal(offer("a"));
        book.handle_signal(offer("stranger"));
        assert_eq!(
            drain(&mut book),
            vec![
                RoomOutput::Event(RoomEvent::Joined {
                    session: "a".into(),
                    name: "student a".into()
                }),
                RoomOutput::Event(RoomEvent::Joined {
                    session: "b".into(),
                    name: "student b".into()
                }),
                RoomOutput::StartMember {
                    session: "b".into(),
                    offer_sdp: "offer b".into()
                },
                RoomOutput::StartMember {
                    session: "a".into(),
                    offer_sdp: "offer a".into()
                },
            ]
        );
    }

    #[test]
    fn candidates_reach_started_members_only_and_focus_is_told_to_the_server() {
        let mut book = opened();
        book.handle_signal(member("a", MemberStatus::Joined));
        book.handle_signal(
            Candidate {
                session: "a".into(),
                candidate: "early".into(),
                mid: None,
            }
            .into(),
        );
        book.handle_signal(offer("a"));
        book.handle_signal(
            Candidate {
                session: "a".into(),
                candidate: "c1".into(),
                mid: None,
            }
            .into(),
        );
        book.handle_signal(
            Candidate {
                session: "x".into(),
                candidate: "c2".into(),
                mid: None,
            }
            .into(),
        );
        let out = drain(&mut book);
        assert_eq!(
            out.last(),
            Some(&RoomOutput::Deliver {
                session: "a".into(),
                candidate: "c1".into()
            })
        );
        assert_eq!(
            out.iter()
                .filter(|o| matches!(o, RoomOutput::Deliver { .. }))
                .count(),
            1
        );
        book.set_member_state(&"a".into(), MemberStatus::Controlled);
        book.set_member_state(&"nobody".into(), MemberStatus::Controlled);
        assert_eq!(
            drain(&mut book),
            vec![RoomOutput::Send(
                MemberState {
                    room: RoomId("r1".into()),
                    session: "a".into(),
                    state: MemberStatus::Controlled
                }
                .into()
            )]
        );
    }

    #[test]
    fn a_member_that_leaves_or_is_lost_ends_once_and_the_room_end_ends_everyone() {
        let mut book = opened();
        for s in ["a", "b", "c"] {
            book.handle_signal(member(s, MemberStatus::Joined));
            book.handle_signal(offer(s));
        }
        drain(&mut book);
        book.handle_signal(
            Left {
                session: "a".into(),
            }
            .into(),
        );
        book.handle_signal(member("a", MemberStatus::Left));
        book.handle_member_lost(&"b".into());
        book.handle_signal(member("c", MemberStatus::Reconnecting));
        assert_eq!(
            drain(&mut book),
            vec![
                RoomOutput::EndMember("a".into()),
                RoomOutput::Event(RoomEvent::Left {
                    session: "a".into()
                }),
                RoomOutput::EndMember("b".into()),
                RoomOutput::Event(RoomEvent::Left {
                    session: "b".into()
                }),
                RoomOutput::Event(RoomEvent::State {
                    session: "c".into(),
                    state: MemberStatus::Reconnecting
                }),
            ]
        );
        book.handle_signal(
            RoomEnded {
                room: RoomId("r1".into()),
            }
            .into(),
        );
        assert_eq!(
            drain(&mut book),
            vec![
                RoomOutput::EndMember("c".into()),
                RoomOutput::Event(RoomEvent::Left {
                    session: "c".into()
                }),
                RoomOutput::Event(RoomEvent::Ended),
            ]
        );
        assert!(book.is_ended());
        book.handle_signal(member("d", MemberStatus::Joined));
        book.end();
        assert!(drain(&mut book).is_empty());
    }

    #[test]
    fn ending_asks_the_server_and_closes_members_only_once_it_confirms() {
        let mut book = opened();
        book.handle_signal(member("a", MemberStatus::Joined));
        book.handle_signal(offer("a"));
        drain(&mut book);
        book.end();
        book.end();
        assert_eq!(
            drain(&mut book),
            vec![RoomOutput::Send(
                RoomEnd {
                    room: RoomId("r1".into())
                }
                .into()
            )]
        );
        assert!(book.is_ending());
        // The server tells the member first (it is not our message), then us.
        book.handle_signal(
            RoomEnded {
                room: RoomId("r1".into()),
            }
            .into(),
        );
        assert_eq!(
            drain(&mut book),
            vec![
                RoomOutput::EndMember("a".into()),
                RoomOutput::Event(RoomEvent::Left {
                    session: "a".into()
                }),
                RoomOutput::Event(RoomEvent::Ended),
            ]
        );
        assert!(book.is_ended() && !book.is_ending());
    }

    #[test]
    fn a_refused_room_is_said_and_ends_and_other_rooms_messages_are_ignored() {
        let mut book = opened();
        book.handle_signal(
            Member {
                room: RoomId("someone else's".into()),
                session: "z".into(),
                name: "z".into(),
                state: MemberStatus::Joined,
            }
            .into(),
        );
        assert!(drain(&mut book).is_empty());

        let mut book = RoomBook::new("x".into());
        drain(&mut book);
        book.handle_signal(
            rtcdesk_proto::signal::Error {
                code: rtcdesk_proto::signal::ErrorCode::Busy,
                message: "too many rooms".into(),
            }
            .into(),
        );
        let out = drain(&mut book);
        assert!(
            matches!(&out[0], RoomOutput::Event(RoomEvent::Refused(line)) if line.contains("too many rooms"))
        );
        assert_eq!(out.last(), Some(&RoomOutput::Event(RoomEvent::Ended)));
    }
}
