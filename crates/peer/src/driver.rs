//! The tokio shell: one task owns one socket set (a UDP socket per usable interface address)
//! and every [`Session`] hosted on it, and only moves datagrams, timers and messages. A puppet
//! with thirty viewers, or a controller watching sixteen puppets, runs one [`Endpoint`]: each
//! datagram goes to the session that accepts it (str0m's `accepts`: the ICE credentials of a
//! STUN message, or a known remote address), and each transmit leaves from the socket bound to
//! its source address, never another.
//!
//! It never waits for a codec: frames come through the latest-wins slot and leave through
//! bounded queues with `try_send`, and no call on a [`PeerHandle`] blocks the caller's thread.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Instant;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, Notify};

use crate::channel::{Channel, Message};
use rtcdesk_stun::turn::{is_turn_traffic, Received, TurnEvent};

use crate::config::{PeerConfig, TurnServer};
use crate::gather::bind_addresses;
use crate::relay::{start_relays, Relay, RelayLink, RelayState, StreamEvent};
use crate::session::{Input, Output, PeerEvent, Session, Transmit};
use crate::video::{AudioQueue, AudioReceiver, AudioSender, VideoReceiver, VideoSender, VideoSlot};
use crate::Error;

/// Datagrams read from the sockets per wake-up before timers and the application get a turn.
const RECEIVE_BATCH: usize = 64;

enum Command {
    CreateOffer(oneshot::Sender<Result<String, Error>>),
    AcceptOffer(String, oneshot::Sender<Result<String, Error>>),
    AcceptAnswer(String, oneshot::Sender<Result<(), Error>>),
    AddRemoteCandidate(String, oneshot::Sender<Result<(), Error>>),
    RequestKeyframe,
    Close,
}

/// A running session: the handle to drive it, its events, and where received media comes out.
#[derive(Debug)]
pub struct Peer {
    /// Signaling, sending and closing; clone it freely.
    pub handle: PeerHandle,
    /// Candidates, lifecycle, data and stats, in order. Read it continuously: when it is full
    /// the network loop waits for you.
    pub events: mpsc::Receiver<PeerEvent>,
    /// Whole received video frames, for the decoder.
    pub video: VideoReceiver,
    /// Received audio frames, for the audio decoder.
    pub audio: AudioReceiver,
}

/// One socket set and the task that hosts sessions on it. Cheap to clone; the task ends once
/// every clone is dropped and its last session has closed.
#[derive(Debug, Clone)]
pub struct Endpoint {
    add: mpsc::UnboundedSender<Hosted>,
    wake: Arc<Notify>,
    local_addresses: Vec<SocketAddr>,
}

impl Endpoint {
    /// Binds the sockets (`bind`, or one per usable interface address) and spawns the task on
    /// the current tokio runtime.
    pub fn bind(bind: Option<SocketAddr>, socket_buffer_bytes: usize) -> Result<Endpoint, Error> {
        Endpoint::bind_with_relays(bind, socket_buffer_bytes, &[])
    }

    /// Like [`Endpoint::bind`], and allocates a relayed address on each TURN server: over UDP
    /// for each socket of the server's address family, over TCP on one stream per server. Every session on the endpoint gets those relayed
    /// candidates; transmits from them are wrapped for the TURN server here, and what it relays
    /// back is unwrapped before the session sees it.
    pub fn bind_with_relays(
        bind: Option<SocketAddr>,
        socket_buffer_bytes: usize,
        turn_servers: &[TurnServer],
    ) -> Result<Endpoint, Error> {
        crate::install_crypto_provider();
        let mut sockets = Vec::new();
        for addr in bind_addresses(bind)? {
            let std_socket = match std::net::UdpSocket::bind(addr) {
                Ok(socket) => socket,
                Err(e) if bind.is_none() => {
                    tracing::debug!(%addr, "not binding: {e}");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            set_buffer_sizes(&std_socket, socket_buffer_bytes);
            std_socket.set_nonblocking(true)?;
            let local = std_socket.local_addr()?;
            sockets.push((local, UdpSocket::from_std(std_socket)?));
        }
        if sockets.is_empty() {
            return Err(Error::NoInterface);
        }
        let local_addresses: Vec<SocketAddr> = sockets.iter().map(|(a, _)| *a).collect();
        let wake = Arc::new(Notify::new());
        let (stream_tx, stream_rx) = mpsc::channel(RECEIVE_BATCH);
        let relays = start_relays(
            &local_addresses,
            turn_servers,
            &stream_tx,
            &wake,
            Instant::now(),
        )?;
        let (add_tx, add_rx) = mpsc::unbounded_channel();
        let driver = Driver {
            sockets,
            relays,
            stream_events: stream_rx,
            sessions: Vec::new(),
            add: add_rx,
            wake: wake.clone(),
        };
        tokio::spawn(driver.run());
        Ok(Endpoint {
            add: add_tx,
            wake,
            local_addresses,
        })
    }

    /// Starts a session on this socket set. `config.bind` and `config.socket_buffer_bytes` are
    /// the endpoint's, not the session's; the rest applies.
    pub fn start_session(&self, config: PeerConfig) -> Result<Peer, Error> {
        let session = config.build(&self.local_addresses, Instant::now())?;
        let (command_tx, command_rx) = mpsc::channel(64);
        let (event_tx, event_rx) = mpsc::channel(config.event_queue);
        let (video_tx, video_rx) = mpsc::channel(config.video_receive_queue);
        let (audio_tx, audio_rx) = mpsc::channel(config.audio_receive_queue);
        let slot = Arc::new(VideoSlot::new(self.wake.clone()));
        let audio_queue = Arc::new(AudioQueue::new(self.wake.clone()));
        let data = Arc::new(ChannelQueues {
            queues: Mutex::new(HashMap::new()),
            capacity: config.data_queue,
            wake: self.wake.clone(),
            room: Notify::new(),
        });
        let hosted = Hosted {
            session,
            commands: command_rx,
            data: data.clone(),
            slot: slot.clone(),
            audio_out: audio_queue.clone(),
            events: event_tx,
            video: video_tx,
            audio: audio_tx,
            deadline: Instant::now(),
        };
        self.add.send(hosted).map_err(|_| Error::Closed)?;
        self.wake.notify_one();
        Ok(Peer {
            handle: PeerHandle {
                commands: command_tx,
                wake: self.wake.clone(),
                data,
                video: VideoSender { slot },
                audio: AudioSender { queue: audio_queue },
                local_addresses: self.local_addresses.clone(),
            },
            events: event_rx,
            video: VideoReceiver { frames: video_rx },
            audio: AudioReceiver { frames: audio_rx },
        })
    }

    /// The local socket addresses (every session's host candidates).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }
}

impl Peer {
    /// A session on a socket set of its own: binds the sockets, builds the session and spawns
    /// its task on the current tokio runtime. Host candidates are ready at once; STUN queries
    /// start with the local description. To host many sessions on one socket set, use an
    /// [`Endpoint`].
    pub fn start(config: PeerConfig) -> Result<Peer, Error> {
        config.validate()?;
        let endpoint = Endpoint::bind_with_relays(
            config.bind,
            config.socket_buffer_bytes,
            &config.turn_servers,
        )?;
        endpoint.start_session(config)
    }
}

/// The application's outgoing messages, one bounded queue per channel, shared between the
/// handles (any thread) and the network task, which moves them into the session as it has room.
#[derive(Debug)]
struct ChannelQueues {
    queues: Mutex<HashMap<Channel, VecDeque<Message>>>,
    capacity: usize,
    /// The network task's wake-up.
    wake: Arc<Notify>,
    /// Senders waiting for room wait on this.
    room: Notify,
}

impl ChannelQueues {
    fn lock(&self) -> MutexGuard<'_, HashMap<Channel, VecDeque<Message>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_room(&self, channel: Channel) -> bool {
        self.lock()
            .get(&channel)
            .is_none_or(|queue| queue.len() < self.capacity)
    }

    fn try_push(&self, channel: Channel, message: Message) -> Result<(), (Error, Message)> {
        {
            let mut queues = self.lock();
            let queue = queues.entry(channel).or_default();
            if queue.len() >= self.capacity {
                return Err((Error::Full, message));
            }
            queue.push_back(message);
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// Controls one session from any task or thread; every method is cheap and none waits on the
/// network (the async ones wait only for the session task's answer, or for queue room).
#[derive(Debug, Clone)]
pub struct PeerHandle {
    commands: mpsc::Sender<Command>,
    wake: Arc<Notify>,
    data: Arc<ChannelQueues>,
    video: VideoSender,
    audio: AudioSender,
    local_addresses: Vec<SocketAddr>,
}

impl PeerHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.commands
            .send(make(reply_tx))
            .await
            .map_err(|_| Error::Closed)?;
        self.wake.notify_one();
        reply_rx.await.map_err(|_| Error::Closed)?
    }

    /// The offerer's SDP offer: AV1 video (and Opus audio when configured), send only, and the
    /// data channels.
    pub async fn create_offer(&self) -> Result<String, Error> {
        self.ask(Command::CreateOffer).await
    }

    /// The answerer's reply to a remote offer (plain SDP text), as SDP text.
    pub async fn accept_offer(&self, offer_sdp: String) -> Result<String, Error> {
        self.ask(|reply| Command::AcceptOffer(offer_sdp, reply))
            .await
    }

    /// The offerer applies the remote answer.
    pub async fn accept_answer(&self, answer_sdp: String) -> Result<(), Error> {
        self.ask(|reply| Command::AcceptAnswer(answer_sdp, reply))
            .await
    }

    /// A trickled remote candidate (`candidate:…` as a browser gives it). The empty string is
    /// end-of-candidates. All media are bundled, so the candidate's mid does not matter here.
    pub async fn add_remote_candidate(&self, candidate: String) -> Result<(), Error> {
        self.ask(|reply| Command::AddRemoteCandidate(candidate, reply))
            .await
    }

    /// Queues a message on a data channel without waiting: [`Error::Full`] when that channel's
    /// queue is full (other channels are unaffected), [`Error::Closed`] once the session ended.
    /// Messages wait until the channel is open. Safe on any thread, a window's included.
    pub fn try_send_data(&self, channel: Channel, message: Message) -> Result<(), Error> {
        if self.commands.is_closed() {
            return Err(Error::Closed);
        }
        self.data.try_push(channel, message).map_err(|(e, _)| e)
    }

    /// Like [`PeerHandle::try_send_data`], but gives the message back when it is not queued, so
    /// a sender that must never drop a message (file bytes) keeps it for a retry after
    /// [`PeerHandle::wait_for_room`].
    pub fn try_send_or_return(
        &self,
        channel: Channel,
        message: Message,
    ) -> Result<(), (Error, Message)> {
        if self.commands.is_closed() {
            return Err((Error::Closed, message));
        }
        self.data.try_push(channel, message)
    }

    /// Waits until `channel`'s queue takes another message, or the session ended. Cancel-safe
    /// (it holds no message), so a session loop can wait on it in a `select!` beside input.
    pub async fn wait_for_room(&self, channel: Channel) {
        loop {
            let room = self.data.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.commands.is_closed() || self.data.has_room(channel) {
                return;
            }
            room.await;
        }
    }

    /// Like [`PeerHandle::try_send_data`], but waits while the channel's queue is full
    /// (backpressure for async senders such as a file transfer).
    pub async fn send_data(&self, channel: Channel, message: Message) -> Result<(), Error> {
        let mut message = message;
        loop {
            let room = self.data.room.notified();
            tokio::pin!(room);
            // Registered before trying, so room made in between is not missed.
            room.as_mut().enable();
            if self.commands.is_closed() {
                return Err(Error::Closed);
            }
            match self.data.try_push(channel, message) {
                Ok(()) => return Ok(()),
                Err((_, back)) => message = back,
            }
            room.await;
        }
    }

    /// A sender for the encoder thread, with the keyframe-request flag it should poll.
    pub fn video_sender(&self) -> VideoSender {
        self.video.clone()
    }

    /// A sender for the audio encoder thread.
    pub fn audio_sender(&self) -> AudioSender {
        self.audio.clone()
    }

    /// Asks the remote sender for a keyframe (PLI), e.g. when the decoder failed. The session
    /// repeats the request until a keyframe arrives.
    pub fn request_keyframe(&self) {
        if self.commands.try_send(Command::RequestKeyframe).is_ok() {
            self.wake.notify_one();
        }
    }

    /// Closes the session cleanly (DTLS close_notify, SCTP shutdown); [`PeerEvent::Closed`]
    /// follows on both sides.
    pub async fn close(&self) {
        if self.commands.send(Command::Close).await.is_ok() {
            self.wake.notify_one();
        }
    }

    /// The local socket addresses (the host candidates' addresses).
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local_addresses
    }
}

/// One session on the endpoint, with its ends of the hand-over points.
struct Hosted {
    session: Session,
    commands: mpsc::Receiver<Command>,
    data: Arc<ChannelQueues>,
    slot: Arc<VideoSlot>,
    audio_out: Arc<AudioQueue>,
    events: mpsc::Sender<PeerEvent>,
    video: mpsc::Sender<crate::ReceivedVideoFrame>,
    audio: mpsc::Sender<crate::ReceivedAudioFrame>,
    /// When the session's next timeout is due, from its last drain.
    deadline: Instant,
}

impl Hosted {
    /// Does everything this session has waiting without blocking (commands, data, a due
    /// timer, media). True if anything was done.
    fn step(&mut self, now: Instant) -> bool {
        let mut progressed = self.take_commands();
        progressed |= self.feed_data();
        if self.deadline <= now {
            self.session.handle_input(Input::Timeout, now);
            progressed = true;
        }
        if let Some((frame, overwritten)) = self.slot.take() {
            self.session.send_video(frame, overwritten, now);
            progressed = true;
        }
        while let Some(frame) = self.audio_out.take() {
            self.session.send_audio(frame, now);
            progressed = true;
        }
        progressed
    }

    /// Handles the application's commands that are waiting. True if there were any.
    fn take_commands(&mut self) -> bool {
        let mut any = false;
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.handle_command(command),
                Err(mpsc::error::TryRecvError::Empty) => return any,
                // Every handle is gone: nobody can use the session any more.
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    if !self.session.is_closed() {
                        self.session.close(Instant::now());
                        return true;
                    }
                    return any;
                }
            }
            any = true;
        }
    }

    fn handle_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::CreateOffer(reply) => {
                let _ = reply.send(self.session.create_offer(now));
            }
            Command::AcceptOffer(sdp, reply) => {
                let _ = reply.send(self.session.accept_offer(&sdp, now));
            }
            Command::AcceptAnswer(sdp, reply) => {
                let _ = reply.send(self.session.accept_answer(&sdp, now));
            }
            Command::AddRemoteCandidate(candidate, reply) => {
                let _ = reply.send(self.session.add_remote_candidate(&candidate, now));
            }
            Command::RequestKeyframe => self.session.request_keyframe(now),
            Command::Close => self.session.close(now),
        }
    }

    /// Moves queued messages into the session while its per-channel queues have room. True if
    /// any moved (and then waiting senders are told there is room).
    fn feed_data(&mut self) -> bool {
        let mut moved = false;
        {
            let mut queues = self.data.lock();
            for (channel, queue) in queues.iter_mut() {
                while !queue.is_empty() && self.session.channel_room(*channel) > 0 {
                    let Some(message) = queue.pop_front() else {
                        break;
                    };
                    moved = true;
                    if let Err(e) = self.session.send_data(*channel, message, Instant::now()) {
                        tracing::debug!(?channel, "data not sent: {e}");
                    }
                }
            }
            queues.retain(|_, queue| !queue.is_empty());
        }
        if moved {
            self.data.room.notify_waiters();
        }
        moved
    }

    /// Does what the session asks until it only has a timeout left, and keeps that timeout.
    /// Transmits from a relayed address are wrapped by its allocation (sent with the relays').
    async fn flush(&mut self, sockets: &[(SocketAddr, UdpSocket)], relays: &mut [Relay]) {
        let mut published = None;
        loop {
            match self.session.poll_output() {
                Output::Transmit(transmit) => {
                    let relay = relays
                        .iter_mut()
                        .find(|r| r.state == RelayState::Allocated(transmit.source));
                    let result = match relay {
                        Some(relay) => relay
                            .allocation
                            .send_to(transmit.destination, &transmit.contents, Instant::now())
                            .map_err(Error::Turn),
                        None => send(sockets, &transmit).await,
                    };
                    if let Err(e) = result {
                        tracing::debug!(destination = %transmit.destination, "send: {e}");
                    }
                }
                Output::Video(frame) => match self.video.try_send(frame) {
                    Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::debug!("decoder behind: frame dropped, asking for a keyframe");
                        self.session.video_frame_dropped(Instant::now());
                    }
                },
                Output::Audio(frame) => {
                    if self.audio.try_send(frame).is_err() {
                        tracing::trace!("audio decoder behind: frame dropped");
                    }
                }
                Output::KeyframeWanted => self.slot.request_keyframe(),
                Output::Event(event) => {
                    // Published before a stats event goes out, so whoever sees an estimate in
                    // it also finds it on the video sender.
                    let estimate = self.session.bandwidth_estimate_bps();
                    if published != Some(estimate) {
                        self.slot.set_bandwidth_estimate(estimate);
                        published = Some(estimate);
                    }
                    // A closed receiver means the application stopped listening; keep running.
                    let _ = self.events.send(event).await;
                }
                Output::Timeout(at) => {
                    self.deadline = at;
                    return;
                }
            }
        }
    }

    /// The session has ended: wake senders waiting for room, so they find it closed.
    fn finish(mut self) {
        self.slot.close();
        self.commands.close();
        self.data.room.notify_waiters();
    }
}

struct Driver {
    sockets: Vec<(SocketAddr, UdpSocket)>,
    relays: Vec<Relay>,
    /// Frames and failures from the relays' TCP streams, by relay index.
    stream_events: mpsc::Receiver<(usize, StreamEvent)>,
    sessions: Vec<Hosted>,
    add: mpsc::UnboundedReceiver<Hosted>,
    wake: Arc<Notify>,
}

impl Driver {
    /// The loop: do everything that is ready without waiting (new sessions, each session's
    /// commands, data, due timers and media, then datagrams), and only when nothing was ready,
    /// wait for anything.
    ///
    /// Due timers are handled here rather than through a tokio sleep: str0m's pacer asks for an
    /// immediate timeout after every paced packet, and tokio's timer wheel has 1 ms granularity,
    /// which would cap video at one packet per millisecond (~10 Mbit/s).
    async fn run(mut self) {
        let mut buf = vec![0u8; 65536];
        let mut adding = true;
        loop {
            for hosted in &mut self.sessions {
                hosted.flush(&self.sockets, &mut self.relays).await;
            }
            self.flush_relays().await;
            self.remove_closed();
            let mut progressed = false;
            while adding {
                match self.add.try_recv() {
                    Ok(mut hosted) => {
                        let now = Instant::now();
                        for relay in &self.relays {
                            relay.introduce(&mut hosted.session, now);
                        }
                        self.sessions.push(hosted);
                        progressed = true;
                    }
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => adding = false,
                }
            }
            if !adding && self.sessions.is_empty() {
                break;
            }
            let now = Instant::now();
            for hosted in &mut self.sessions {
                progressed |= hosted.step(now);
            }
            for relay in &mut self.relays {
                if relay.allocation.poll_timeout().is_some_and(|at| at <= now) {
                    relay.allocation.handle_timeout(now);
                    progressed = true;
                }
            }
            progressed |= self.receive_waiting(&mut buf);
            progressed |= self.receive_streams();
            if progressed {
                continue;
            }
            let next = self
                .sessions
                .iter()
                .map(|h| h.deadline)
                .chain(
                    self.relays
                        .iter()
                        .filter_map(|r| r.allocation.poll_timeout()),
                )
                .min();
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            let sockets = &self.sockets;
            tokio::select! {
                () = self.wake.notified() => {}
                () = sleep => {}
                ready = recv_ready_any(sockets) => {
                    if let Err(e) = ready {
                        tracing::debug!("receive: {e}");
                    }
                }
                Some((index, event)) = self.stream_events.recv() => {
                    self.on_stream_event(index, event);
                }
            }
        }
        // Release the allocations rather than leave them to time out on the server.
        for relay in &mut self.relays {
            relay.allocation.close(Instant::now());
        }
        self.flush_relays().await;
        tracing::debug!("endpoint task ends");
    }

    /// Sends what the allocations want sent, and hands their news to every session.
    async fn flush_relays(&mut self) {
        for relay in &mut self.relays {
            while let Some(transmit) = relay.allocation.poll_transmit() {
                match &relay.link {
                    RelayLink::Udp(base) => {
                        let datagram = Transmit {
                            source: *base,
                            destination: transmit.destination,
                            contents: transmit.contents,
                        };
                        if let Err(e) = send(&self.sockets, &datagram).await {
                            tracing::debug!(server = %datagram.destination, "TURN send: {e}");
                        }
                    }
                    RelayLink::Stream(outgoing) => {
                        if outgoing.try_send(transmit.contents).is_err() {
                            tracing::debug!(server = %transmit.destination, "TURN stream full or gone: frame dropped");
                        }
                    }
                }
            }
            while let Some(event) = relay.allocation.poll_event() {
                let now = Instant::now();
                match event {
                    TurnEvent::Allocated { relayed, .. } => {
                        tracing::info!(server = %relay.allocation.server(), %relayed, "relayed address allocated");
                        relay.state = RelayState::Allocated(relayed);
                        for hosted in &mut self.sessions {
                            if let Err(e) =
                                hosted.session.add_relay_candidate(relayed, relay.base, now)
                            {
                                tracing::warn!("relayed candidate refused: {e}");
                            }
                        }
                    }
                    TurnEvent::Failed(error) => {
                        tracing::warn!("{error}");
                        fail_relay(relay, &mut self.sessions, error.to_string());
                    }
                    other => tracing::debug!(?other, "TURN"),
                }
            }
        }
    }

    /// Handles the frames the relays' TCP streams have already delivered, up to a batch. True
    /// if there were any.
    fn receive_streams(&mut self) -> bool {
        let mut any = false;
        for _ in 0..RECEIVE_BATCH {
            match self.stream_events.try_recv() {
                Ok((index, event)) => {
                    self.on_stream_event(index, event);
                    any = true;
                }
                Err(_) => break,
            }
        }
        any
    }

    /// One frame from a relay's stream goes through its allocation like a datagram would; a
    /// broken stream fails the relay.
    fn on_stream_event(&mut self, index: usize, event: StreamEvent) {
        let now = Instant::now();
        let Some(relay) = self.relays.get_mut(index) else {
            return;
        };
        match event {
            StreamEvent::Frame(frame) => {
                if let Received::Data { peer, payload } =
                    relay.allocation.handle_datagram(&frame, now)
                {
                    if let RelayState::Allocated(relayed) = relay.state {
                        deliver(&mut self.sessions, peer, relayed, &payload, now);
                    }
                }
            }
            StreamEvent::Failed(reason) => {
                tracing::warn!("{reason}");
                if !matches!(relay.state, RelayState::Failed(_)) {
                    fail_relay(relay, &mut self.sessions, reason);
                }
            }
        }
    }

    fn remove_closed(&mut self) {
        let mut index = 0;
        while index < self.sessions.len() {
            if self.sessions[index].session.is_closed() {
                self.sessions.swap_remove(index).finish();
            } else {
                index += 1;
            }
        }
    }

    /// Reads the datagrams already waiting, up to a batch, each to the session that accepts
    /// it. True if there were any.
    fn receive_waiting(&mut self, buf: &mut [u8]) -> bool {
        let mut any = false;
        for _ in 0..RECEIVE_BATCH {
            let mut got_one = false;
            for (local, socket) in &self.sockets {
                let Ok((len, source)) = socket.try_recv_from(buf) else {
                    continue;
                };
                got_one = true;
                let now = Instant::now();
                let contents = &buf[..len];
                // TURN traffic first: str0m's ICE agent refuses TURN methods.
                let relay = self.relays.iter_mut().find(|r| {
                    r.uses_socket(*local)
                        && r.allocation.server() == source
                        && is_turn_traffic(contents)
                });
                match relay {
                    Some(relay) => {
                        if let Received::Data { peer, payload } =
                            relay.allocation.handle_datagram(contents, now)
                        {
                            if let RelayState::Allocated(relayed) = relay.state {
                                deliver(&mut self.sessions, peer, relayed, &payload, now);
                            }
                        }
                    }
                    None => deliver(&mut self.sessions, source, *local, contents, now),
                }
            }
            if !got_one {
                break;
            }
            any = true;
        }
        any
    }
}

/// Hands a datagram to the session that accepts it.
fn deliver(
    sessions: &mut [Hosted],
    source: SocketAddr,
    destination: SocketAddr,
    contents: &[u8],
    now: Instant,
) {
    let owner = sessions
        .iter_mut()
        .find(|h| h.session.accepts(source, destination, contents, now));
    match owner {
        Some(hosted) => {
            let input = Input::Receive {
                source,
                destination,
                contents,
            };
            hosted.session.handle_input(input, now);
        }
        None => tracing::trace!(%source, len = contents.len(), "datagram for no session"),
    }
}

/// A relay that will give no (more) relayed traffic. Sessions still waiting for its candidate
/// hear why, so they can end gathering and, if nothing connects, say which server failed.
fn fail_relay(relay: &mut Relay, sessions: &mut [Hosted], reason: String) {
    let was_allocating = relay.state == RelayState::Allocating;
    relay.state = RelayState::Failed(reason.clone());
    if was_allocating {
        let server = relay.allocation.server();
        for hosted in sessions {
            hosted.session.relay_failed(server, reason.clone());
        }
    }
}

/// Sends a datagram from the socket bound to its source address, and from no other: a transmit
/// from an address we have no socket for (a relay's, before its wrapper exists) is an error.
async fn send(sockets: &[(SocketAddr, UdpSocket)], transmit: &Transmit) -> Result<(), Error> {
    let (_, socket) = sockets
        .iter()
        .find(|(local, _)| *local == transmit.source)
        .ok_or(Error::UnknownSource(transmit.source))?;
    socket
        .send_to(&transmit.contents, transmit.destination)
        .await?;
    Ok(())
}

/// Best effort: a smaller buffer than asked (the kernel's cap) still works, just drops sooner.
fn set_buffer_sizes(socket: &std::net::UdpSocket, bytes: usize) {
    let socket = socket2::SockRef::from(socket);
    if let Err(e) = socket.set_recv_buffer_size(bytes) {
        tracing::debug!("receive buffer not enlarged: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(bytes) {
        tracing::debug!("send buffer not enlarged: {e}");
    }
}

/// Waits until any of the sockets has a datagram to read (without reading it).
async fn recv_ready_any(sockets: &[(SocketAddr, UdpSocket)]) -> std::io::Result<()> {
    poll_fn(|cx| {
        for (_, socket) in sockets {
            if let Poll::Ready(result) = socket.poll_recv_ready(cx) {
                return Poll::Ready(result);
            }
        }
        Poll::Pending
    })
    .await
}
