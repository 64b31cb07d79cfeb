//! One controller session: pairing over signaling, then the network task that relays
//! candidates, watches the connection, forwards input and reports stats.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtcdesk_files::{Direction, DownloadFolder, LocalFile, Offer, Progress, TransferEvent};
use rtcdesk_peer::{Channel, Message, Peer, PeerConfig, PeerEvent, PeerHandle, PeerStats, Role};
use rtcdesk_proto::input::InputMessage;
use rtcdesk_proto::signal::{Answer, Candidate, Leave, SessionId, SignalMessage};
use rtcdesk_signal::client::SignalClient;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::binding::Binding;
use crate::core::{CoreConfig, CoreOutput, DecodeTotals, SessionCore};
use crate::decode::{DecodeCounters, DecoderThread, FrameSink};
use crate::ice_report::IceReport;
use crate::pairing::{Paired, Pairing, PairingOutput};
use crate::{ConnectError, ControllerConfig};

/// What happens to a session, for the window's title and the program's exit.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// One event a second at most: boxing the stats would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum ControllerEvent {
    /// The peer connection came up (again, after a silence).
    Connected,
    /// The session is verified end to end: the puppet holds the whole code and the encrypted
    /// connection ends at it (sent once, before the first `Connected`, when the code had its
    /// last three digits).
    Verified,
    /// The peer has been silent for a few seconds; it may come back.
    Interrupted,
    /// Media and data flow over this candidate pair: direct or through a TURN relay (first once
    /// connected, again if ICE moves to another pair).
    PathSelected(rtcdesk_peer::SelectedPair),
    /// The first picture was decoded, this long after [`Controller::connect`] was called.
    FirstPicture(Duration),
    /// Figures for the last second.
    Stats(SessionStats),
    /// The puppet's user wrote a chat line.
    Chat(crate::ChatLine),
    /// The puppet's own figures (what it sends, as it measures it), about once a second.
    PuppetStats(PuppetStats),
    /// The puppet's user made the session view-only (`true`: input is ignored there) or gave
    /// control back.
    ViewOnly(bool),
    /// Something happened to a file transfer: the puppet offers a file (answer with
    /// [`FileCommands::accept`] or [`FileCommands::decline`]), an offer was accepted, a file
    /// arrived or was kept, a transfer ended early.
    File(TransferEvent),
    /// One of this side's files was offered to the puppet under this id
    /// ([`FileCommands::send`]).
    FileOffered(Offer),
    /// A file could not be offered (missing, a folder, unreadable).
    FileNotSent {
        /// The path given.
        path: PathBuf,
        /// Why, for the user.
        reason: String,
    },
    /// Bytes, rate and time left of every live transfer, with each stats interval.
    FileProgress(Vec<(Offer, Direction, Progress)>),
    /// The puppet's clipboard now holds this text (a copy made there during the session): put
    /// it on this machine's clipboard if the user shares it.
    Clipboard(String),
    /// The session is over; nothing more will come.
    Ended(EndReason),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// We closed it ([`Controller::close`]).
    Closed,
    /// The puppet left (its user stopped sharing, or it quit cleanly).
    PuppetLeft,
    /// The puppet went silent (killed, network gone) and did not come back.
    ConnectionLost,
    /// End-to-end verification failed after connecting: the connection may be intercepted.
    NotVerified(String),
}

impl EndReason {
    /// The process exit code for this ending.
    pub fn exit_code(&self) -> i32 {
        match self {
            EndReason::Closed => crate::EXIT_OK,
            EndReason::PuppetLeft | EndReason::ConnectionLost => crate::EXIT_CONNECTION_LOST,
            EndReason::NotVerified(_) => crate::EXIT_NOT_VERIFIED,
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::Closed => "session closed",
            EndReason::PuppetLeft => "the puppet ended the session",
            EndReason::ConnectionLost => "connection to the puppet lost: it stopped answering",
            EndReason::NotVerified(reason) => reason,
        })
    }
}

/// Session figures for one stats interval (about a second).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStats {
    /// Pictures decoded per second.
    pub fps: f64,
    /// Round-trip time to the puppet.
    pub rtt: Option<Duration>,
    /// Received bits per second (video and data).
    pub receive_bitrate_bps: u64,
    /// Glass-to-glass latency of the last stamped picture (synthetic desktop only).
    pub stamp_latency: Option<Duration>,
    /// Mean time dav1d took per picture over the interval.
    pub decode_time: Option<Duration>,
    /// The video's size, once a picture arrived.
    pub video_size: Option<(u32, u32)>,
    /// Frames that failed to decode, since the start.
    pub decode_errors: u64,
    /// The peer's own figures.
    pub peer: PeerStats,
}

/// The figures a puppet reports about its side of the session.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PuppetStats {
    /// Frames per second it sends.
    pub fps: f64,
    /// Round-trip time it measures, in milliseconds.
    pub rtt_ms: f64,
    /// Video bitrate it sends, in kbit/s.
    pub bitrate_kbps: f64,
    /// Fraction of its packets lost, 0.0..=1.0.
    pub loss: f64,
}

/// What the user asks of the session's file transfers.
#[derive(Debug)]
enum FileCommand {
    Send(PathBuf),
    Accept(u32),
    Decline(u32, String),
    Cancel(Direction, u32, String),
}

/// Tells the session what to do with files: send one, answer an offer, cancel a transfer.
/// Cheap to clone, usable from any thread (a window's drop handler); it never waits.
#[derive(Debug, Clone)]
pub struct FileCommands {
    commands: mpsc::Sender<FileCommand>,
}

impl FileCommands {
    fn push(&self, command: FileCommand) -> Result<(), rtcdesk_peer::Error> {
        self.commands
            .try_send(command)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => rtcdesk_peer::Error::Full,
                mpsc::error::TrySendError::Closed(_) => rtcdesk_peer::Error::Closed,
            })
    }

    /// Offers the file at `path` to the puppet. It is read and hashed off the network task;
    /// [`ControllerEvent::FileOffered`] then gives its id, or [`ControllerEvent::FileNotSent`]
    /// says why not.
    pub fn send(&self, path: impl Into<PathBuf>) -> Result<(), rtcdesk_peer::Error> {
        self.push(FileCommand::Send(path.into()))
    }

    /// Accepts the puppet's offer `id` into the download folder (resuming a part file a broken
    /// session left).
    pub fn accept(&self, id: u32) -> Result<(), rtcdesk_peer::Error> {
        self.push(FileCommand::Accept(id))
    }

    /// Declines the puppet's offer `id`, telling it why.
    pub fn decline(&self, id: u32, reason: &str) -> Result<(), rtcdesk_peer::Error> {
        self.push(FileCommand::Decline(id, reason.into()))
    }

    /// Cancels a transfer either way; a part file being received is removed.
    pub fn cancel(
        &self,
        direction: Direction,
        id: u32,
        reason: &str,
    ) -> Result<(), rtcdesk_peer::Error> {
        self.push(FileCommand::Cancel(direction, id, reason.into()))
    }
}

/// Sends input to the puppet; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct InputSender {
    peer: PeerHandle,
}

fn channel_for(message: &InputMessage) -> Channel {
    if message.event.is_droppable() {
        Channel::Pointer
    } else {
        Channel::Input
    }
}

impl InputSender {
    /// Sends from any thread without blocking (a window's event loop must never wait on the
    /// network): pointer moves on the unreliable pointer channel, everything else on the
    /// reliable input channel. [`rtcdesk_peer::Error::Full`] means over a thousand events are
    /// waiting for a stalled network; the window drops a pointer move then, and logs a lost key.
    pub fn try_send(&self, message: &InputMessage) -> Result<(), rtcdesk_peer::Error> {
        let mut bytes = Vec::with_capacity(32);
        message.encode(&mut bytes);
        self.peer
            .try_send_data(channel_for(message), Message::Binary(bytes))
    }

    /// Like [`InputSender::try_send`], from async code, waiting for room instead.
    pub async fn send(&self, message: &InputMessage) -> Result<(), rtcdesk_peer::Error> {
        let mut bytes = Vec::with_capacity(32);
        message.encode(&mut bytes);
        self.peer
            .send_data(channel_for(message), Message::Binary(bytes))
            .await
    }
}

/// A connected session with a puppet. Dropping it closes the session (without telling the
/// signaling server; call [`Controller::close`] for a clean goodbye).
pub struct Controller {
    session: SessionId,
    puppet_name: Option<String>,
    input: InputSender,
    files: FileCommands,
    events: mpsc::Receiver<ControllerEvent>,
    close: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Pairs with the puppet whose code is in `config` and connects to it; decoded pictures go
    /// to `sink` from then on. Returns once the peer connection is up.
    pub async fn connect(
        config: ControllerConfig,
        sink: Box<dyn FrameSink>,
    ) -> Result<Controller, ConnectError> {
        let started = Instant::now();
        let mut signal = SignalClient::connect(&config.signal_url, &config.tls)
            .await
            .map_err(ConnectError::SignalUnreachable)?;
        let Paired {
            session,
            puppet_name,
            ice_servers,
            offer_sdp,
            early_candidates,
            key,
        } = pair(&mut signal, &config, started).await?;
        tracing::info!(session = session.as_str(), "accepted; answering the offer");

        let mut peer_config = PeerConfig::new(Role::Answerer);
        peer_config.stun_servers = config.stun_servers.clone();
        peer_config.turn_servers = config.turn_servers.clone();
        // The signaling server's ICE servers, unless the user gave their own.
        peer_config.adopt_ice_servers(&ice_servers).await;
        peer_config.relay_only = config.relay_only;
        peer_config.bind = config.bind;
        peer_config.close_after_silence = config.lost_after;
        let Peer {
            handle,
            events: peer_events,
            video,
            audio: _audio,
        } = Peer::start(peer_config)?;
        let answer_sdp = handle.accept_offer(offer_sdp).await?;
        signal
            .send(&SignalMessage::Answer(Answer {
                session: session.clone(),
                sdp: answer_sdp,
            }))
            .await
            .map_err(|_| ConnectError::SignalClosed)?;
        let mut ice_report = IceReport::default();
        for candidate in early_candidates {
            ice_report.remote_candidate(&candidate);
            if let Err(error) = handle.add_remote_candidate(candidate).await {
                tracing::debug!(%error, "ignoring a remote candidate");
            }
        }

        let counters = Arc::new(DecodeCounters::default());
        let (first_picture_tx, first_picture) = oneshot::channel();
        let decoder = DecoderThread::spawn(
            video,
            handle.clone(),
            sink,
            config.decoder_threads,
            counters.clone(),
            first_picture_tx,
        )?;

        let (event_tx, events) = mpsc::channel(256);
        let (file_tx, file_commands) = mpsc::channel(64);
        let (prepared_tx, prepared) = mpsc::channel(8);
        let core = SessionCore::new(
            CoreConfig {
                puppet_name: puppet_name.clone().unwrap_or_else(|| "puppet".into()),
                keyboard: config.keyboard,
                folder: download_folder(&config),
                accept_files: config.accept_files,
            },
            Instant::now(),
        );
        let (close_tx, close_rx) = oneshot::channel();
        let (connected_tx, connected_rx) = oneshot::channel();
        let task = SessionTask {
            session: session.clone(),
            signal: Some(signal),
            peer: handle.clone(),
            peer_events,
            events: event_tx,
            core,
            file_commands,
            prepared_tx,
            prepared,
            counters,
            decoder,
            connected: Some(connected_tx),
            connect_deadline: tokio::time::Instant::now() + config.connect_timeout,
            connect_timeout: config.connect_timeout,
            ice_report,
            started,
            first_picture: Some(first_picture),
            binding: key.map(|key| Binding::new(key, session.clone())),
            control_open_held: false,
            held: VecDeque::new(),
            held_bytes: 0,
        };
        let task = tokio::spawn(task.run(close_rx));
        let controller = Controller {
            session,
            puppet_name,
            input: InputSender { peer: handle },
            files: FileCommands { commands: file_tx },
            events,
            close: Some(close_tx),
            task: Some(task),
        };
        // The session task owns the deadline: it knows what ICE tried, so it says why it failed.
        match connected_rx.await {
            Ok(Ok(())) => Ok(controller),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(ConnectError::ConnectionFailed(
                "the session task stopped".into(),
            )),
        }
    }

    /// The session id the signaling server gave.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The name the puppet registered with, as the signaling server told it in `ringing`
    /// (`None` from a server that does not send it); the window's title shows it.
    pub fn puppet_name(&self) -> Option<&str> {
        self.puppet_name.as_deref()
    }

    /// A sender for input messages, for the window thread.
    pub fn input_sender(&self) -> InputSender {
        self.input.clone()
    }

    /// A sender for this side's clipboard text to the puppet, for any thread.
    pub fn clipboard_sender(&self) -> crate::ClipboardSender {
        crate::ClipboardSender::new(self.input.peer.clone())
    }

    /// A sender for chat lines to the puppet's user, for any thread.
    pub fn chat_sender(&self) -> crate::ChatSender {
        crate::ChatSender::new(self.input.peer.clone())
    }

    /// A handle for sending files and answering the puppet's offers, for any thread.
    pub fn files(&self) -> FileCommands {
        self.files.clone()
    }

    /// Sends one input message (see [`InputSender::send`]).
    pub async fn send_input(&self, message: &InputMessage) -> Result<(), rtcdesk_peer::Error> {
        self.input.send(message).await
    }

    /// The next event; `None` after [`ControllerEvent::Ended`].
    pub async fn next_event(&mut self) -> Option<ControllerEvent> {
        self.events.recv().await
    }

    /// Takes the event stream (e.g. to forward it to a window's event loop); after this,
    /// [`Controller::next_event`] returns `None`.
    pub fn take_events(&mut self) -> mpsc::Receiver<ControllerEvent> {
        std::mem::replace(&mut self.events, mpsc::channel(1).1)
    }

    /// Ends the session cleanly: tells the signaling server and the puppet, closes the peer
    /// connection, and waits for the decoder to stop.
    pub async fn close(mut self) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
    }
}

/// Drives a [`Pairing`] over the signaling connection until it pairs or fails.
async fn pair(
    signal: &mut SignalClient,
    config: &ControllerConfig,
    started: Instant,
) -> Result<Paired, ConnectError> {
    let mut pairing = Pairing::new(
        config.code,
        config.secret.as_ref(),
        config.name.clone(),
        config.accept_timeout,
        config.connect_timeout,
        started,
    );
    loop {
        while let Some(output) = pairing.poll_output() {
            match output {
                PairingOutput::Send(message) => signal
                    .send(&message)
                    .await
                    .map_err(|_| ConnectError::SignalClosed)?,
                PairingOutput::Paired(paired) => return Ok(paired),
                PairingOutput::Failed(error) => return Err(error),
            }
        }
        let Some(deadline) = pairing.poll_timeout() else {
            return Err(ConnectError::SignalClosed);
        };
        tokio::select! {
            message = signal.recv() => match message {
                Ok(Some(message)) => pairing.handle_signal(message, Instant::now()),
                Err(rtcdesk_signal::client::ClientError::BadMessage(error)) => {
                    tracing::debug!(%error, "ignoring a bad message from the server");
                }
                Ok(None) | Err(_) => pairing.handle_signal_closed(),
            },
            _ = tokio::time::sleep_until(deadline.into()) => pairing.handle_timeout(Instant::now()),
        }
    }
}

struct SessionTask {
    session: SessionId,
    signal: Option<SignalClient>,
    peer: PeerHandle,
    peer_events: mpsc::Receiver<PeerEvent>,
    events: mpsc::Sender<ControllerEvent>,
    /// The session's decisions (control messages, chat, files, stats).
    core: SessionCore,
    file_commands: mpsc::Receiver<FileCommand>,
    /// Files opened and hashed off the task come back here.
    prepared_tx: mpsc::Sender<(PathBuf, std::io::Result<LocalFile>)>,
    prepared: mpsc::Receiver<(PathBuf, std::io::Result<LocalFile>)>,
    counters: Arc<DecodeCounters>,
    decoder: DecoderThread,
    connected: Option<oneshot::Sender<Result<(), ConnectError>>>,
    /// Until connected: when to give up, and what ICE tried (for the reason).
    connect_deadline: tokio::time::Instant,
    connect_timeout: Duration,
    ice_report: IceReport,
    /// When [`Controller::connect`] was called, for [`ControllerEvent::FirstPicture`].
    started: Instant,
    first_picture: Option<oneshot::Receiver<Instant>>,
    /// A verified session's last check (its DTLS fingerprints); `None` when unverified. Until
    /// it passes, nothing goes to the puppet and nothing from it is acted on.
    binding: Option<Binding>,
    /// The control channel opened before verification finished: announce it once verified.
    control_open_held: bool,
    /// What the puppet sent before verification finished (it starts as soon as it has checked
    /// our MAC, which can be before its own MAC reaches us through signaling): acted on, in
    /// order, once verified; dropped if verification fails. At most [`HELD_BEFORE_VERIFIED`]
    /// messages and [`HELD_BYTES_BEFORE_VERIFIED`] bytes.
    held: VecDeque<(Channel, Message)>,
    /// The bytes in `held`.
    held_bytes: usize,
}

/// The most data messages kept from before verification; beyond that (or beyond
/// [`HELD_BYTES_BEFORE_VERIFIED`]) the session ends: an end that floods before proving itself
/// is not the puppet it claims to be, or is broken.
const HELD_BEFORE_VERIFIED: usize = 1024;
/// The most bytes kept from before verification.
const HELD_BYTES_BEFORE_VERIFIED: usize = 4 << 20;

/// What ends the session loop.
enum Next {
    Continue,
    End(EndReason),
}

impl SessionTask {
    async fn run(mut self, mut close: oneshot::Receiver<()>) {
        let reason = loop {
            self.carry_out();
            let connecting = self.connected.is_some();
            let wants_room = self.core.wants_file_room();
            let next = tokio::select! {
                _ = &mut close => Next::End(EndReason::Closed),
                _ = self.peer.wait_for_room(Channel::File), if wants_room => {
                    self.core.file_channel_room();
                    Next::Continue
                }
                Some(command) = self.file_commands.recv() => {
                    self.on_file_command(command);
                    Next::Continue
                }
                Some((path, opened)) = self.prepared.recv() => {
                    self.on_prepared(path, opened);
                    Next::Continue
                }
                _ = tokio::time::sleep_until(self.connect_deadline), if connecting => {
                    let line = self.ice_report.failure_line(self.connect_timeout);
                    if let Some(connected) = self.connected.take() {
                        let _ = connected.send(Err(ConnectError::ConnectionFailed(line)));
                    }
                    Next::End(EndReason::ConnectionLost)
                }
                decoded_at = first_picture(&mut self.first_picture) => {
                    self.first_picture = None;
                    if let Some(at) = decoded_at {
                        self.emit(ControllerEvent::FirstPicture(
                            at.saturating_duration_since(self.started),
                        ));
                    }
                    Next::Continue
                }
                _ = sleep_until_opt(self.binding.as_ref().and_then(Binding::poll_timeout)) => {
                    if let Some(binding) = self.binding.as_mut() {
                        binding.handle_timeout(Instant::now());
                    }
                    self.after_binding()
                }
                event = self.peer_events.recv() => match event {
                    Some(event) => self.on_peer_event(event).await,
                    None => Next::End(EndReason::ConnectionLost),
                },
                message = recv_signal(&mut self.signal) => self.on_signal(message).await,
            };
            if let Next::End(reason) = next {
                break reason;
            }
        };
        if let Some(connected) = self.connected.take() {
            let error = match &reason {
                EndReason::NotVerified(_) => ConnectError::NotVerified(
                    self.binding
                        .as_ref()
                        .and_then(|b| b.outcome().cloned())
                        .and_then(Result::err)
                        .unwrap_or(rtcdesk_pake::PakeError::Intercepted),
                ),
                other => ConnectError::ConnectionFailed(other.to_string()),
            };
            let _ = connected.send(Err(error));
        }
        // Part files being received are kept for a resume; the user hears how each ended.
        self.core.close();
        self.carry_out();
        if let Some(mut signal) = self.signal.take() {
            if reason == EndReason::Closed {
                let _ = signal
                    .send(&SignalMessage::Leave(Leave {
                        session: self.session.clone(),
                    }))
                    .await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), signal.close()).await;
        }
        self.peer.close().await;
        // The peer's task ends, its video receiver closes, and the decoder thread stops.
        let mut decoder = std::mem::replace(&mut self.decoder, DecoderThread::finished());
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::task::spawn_blocking(move || decoder.join()),
        )
        .await;
        let _ = self.events.send(ControllerEvent::Ended(reason)).await;
    }

    /// The puppet closed the connection: when it meant to (its user disconnected, it is
    /// stopping), its `leave` is on its way through the signaling server, a moment behind the
    /// close that came straight over the network. Waits that long for it, so the user reads
    /// "the puppet ended the session" rather than "connection lost".
    async fn why_closed(&mut self) -> EndReason {
        let left = async {
            loop {
                match recv_signal(&mut self.signal).await {
                    Some(SignalMessage::Left(left)) if left.session == self.session => return true,
                    Some(_) => {}
                    None => return false,
                }
            }
        };
        match tokio::time::timeout(LEFT_AFTER_CLOSE, left).await {
            Ok(true) => EndReason::PuppetLeft,
            Ok(false) | Err(_) => EndReason::ConnectionLost,
        }
    }

    async fn on_peer_event(&mut self, event: PeerEvent) -> Next {
        match event {
            PeerEvent::LocalCandidate { candidate, mid } => {
                self.ice_report.local_candidate(&candidate);
                self.signal_send(SignalMessage::Candidate(Candidate {
                    session: self.session.clone(),
                    candidate,
                    mid,
                }))
                .await;
            }
            PeerEvent::GatheringComplete => {
                self.signal_send(SignalMessage::Candidate(Candidate {
                    session: self.session.clone(),
                    candidate: String::new(),
                    mid: None,
                }))
                .await;
            }
            PeerEvent::Secured { local, remote } => {
                if let Some(binding) = self.binding.as_mut() {
                    binding.secured(fingerprint(local), fingerprint(remote));
                }
            }
            PeerEvent::Connected if !self.verified() => {
                let message = self
                    .binding
                    .as_mut()
                    .and_then(|binding| binding.connected(Instant::now()));
                if let Some(message) = message {
                    self.signal_send(message).await;
                }
                return self.after_binding();
            }
            PeerEvent::Connected => {
                if let Some(connected) = self.connected.take() {
                    let _ = connected.send(Ok(()));
                }
                self.emit(ControllerEvent::Connected);
            }
            // Before verification nothing the other end sends is acted on: it may not be the
            // puppet.
            PeerEvent::ChannelOpen(Channel::Control) if !self.verified() => {
                self.control_open_held = true;
            }
            PeerEvent::Data(channel, message) if !self.verified() => {
                self.held_bytes += message.as_bytes().len();
                if self.held.len() >= HELD_BEFORE_VERIFIED
                    || self.held_bytes > HELD_BYTES_BEFORE_VERIFIED
                {
                    tracing::warn!("too much data before verification finished");
                    return Next::End(EndReason::NotVerified(
                        "the other end sent too much before it was verified".into(),
                    ));
                }
                self.held.push_back((channel, message));
            }
            PeerEvent::Disconnected => self.emit(ControllerEvent::Interrupted),
            PeerEvent::PathSelected(pair) => self.emit(ControllerEvent::PathSelected(pair)),
            PeerEvent::RelayFailed { server, reason } => {
                tracing::warn!(%server, "{reason}");
                self.ice_report.relay_failed(reason);
            }
            PeerEvent::Closed => return Next::End(self.why_closed().await),
            PeerEvent::ChannelOpen(Channel::Control) => self.core.control_opened(),
            PeerEvent::Data(channel, message) => {
                self.core
                    .handle_data(channel, message.as_bytes(), Instant::now());
            }
            PeerEvent::Stats(peer) => {
                let totals = self.decode_totals();
                self.core.handle_stats(peer, totals, Instant::now());
            }
            other => tracing::trace!(?other, "peer event"),
        }
        Next::Continue
    }

    async fn on_signal(&mut self, message: Option<SignalMessage>) -> Next {
        match message {
            Some(SignalMessage::Candidate(c)) if c.session == self.session => {
                self.ice_report.remote_candidate(&c.candidate);
                if let Err(error) = self.peer.add_remote_candidate(c.candidate).await {
                    tracing::debug!(%error, "ignoring a remote candidate");
                }
                Next::Continue
            }
            Some(SignalMessage::Left(left)) if left.session == self.session => {
                Next::End(EndReason::PuppetLeft)
            }
            Some(SignalMessage::Pake(pake)) if pake.session == self.session => {
                if let Some(binding) = self.binding.as_mut() {
                    binding.received(pake.data);
                }
                self.after_binding()
            }
            Some(other) => {
                tracing::debug!(message = other.type_name(), "ignoring a signaling message");
                Next::Continue
            }
            None => {
                // The peer connection does not need signaling once up; the puppet's absence
                // shows as silence on the peer connection.
                tracing::info!("the signaling connection closed; the session continues");
                self.signal = None;
                Next::Continue
            }
        }
    }

    /// Whether the session may carry data: unverified ones always, verified ones once their
    /// fingerprints checked out.
    fn verified(&self) -> bool {
        self.binding
            .as_ref()
            .is_none_or(|binding| matches!(binding.outcome(), Some(Ok(()))))
    }

    /// Acts on the fingerprint check once it is settled: the session starts, or ends.
    fn after_binding(&mut self) -> Next {
        let Some(binding) = self.binding.as_ref() else {
            return Next::Continue;
        };
        match binding.outcome() {
            None => Next::Continue,
            Some(Ok(())) => {
                if let Some(connected) = self.connected.take() {
                    tracing::info!("session verified end to end");
                    self.emit(ControllerEvent::Verified);
                    let _ = connected.send(Ok(()));
                    self.emit(ControllerEvent::Connected);
                    if std::mem::take(&mut self.control_open_held) {
                        self.core.control_opened();
                    }
                    self.held_bytes = 0;
                    for (channel, message) in std::mem::take(&mut self.held) {
                        self.core
                            .handle_data(channel, message.as_bytes(), Instant::now());
                    }
                }
                Next::Continue
            }
            Some(Err(error)) => {
                tracing::warn!(%error, "verification of the DTLS fingerprints failed");
                Next::End(EndReason::NotVerified(error.to_string()))
            }
        }
    }

    async fn signal_send(&mut self, message: SignalMessage) {
        if let Some(signal) = self.signal.as_mut() {
            if let Err(error) = signal.send(&message).await {
                tracing::debug!(%error, "signaling send failed");
                self.signal = None;
            }
        }
    }

    fn emit(&self, event: ControllerEvent) {
        // Stats and state changes are advisory: a consumer that does not keep up misses some.
        if let Err(mpsc::error::TrySendError::Full(event)) = self.events.try_send(event) {
            if !matches!(
                event,
                ControllerEvent::Stats(_)
                    | ControllerEvent::PuppetStats(_)
                    | ControllerEvent::FileProgress(_)
            ) {
                tracing::warn!(?event, "event dropped: nobody reads the session's events");
            }
        }
    }

    /// Does what the core asks until it has nothing left for now: control messages, events,
    /// then file chunks while the file channel takes them.
    fn carry_out(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                CoreOutput::Send(channel, message) => {
                    if let Err(error) = self.peer.try_send_data(channel, message) {
                        tracing::debug!(?channel, %error, "control message not sent");
                    }
                }
                CoreOutput::Event(event) => self.emit(event),
            }
        }
        let mut sent = 0;
        while let Some(chunk) = self.core.poll_chunk(sent) {
            sent += 1;
            match self.peer.try_send_or_return(Channel::File, chunk) {
                Ok(()) => {}
                Err((rtcdesk_peer::Error::Full, chunk)) => {
                    self.core.file_channel_full(chunk);
                    break;
                }
                Err((error, _)) => {
                    tracing::debug!(%error, "file chunk not sent");
                    break;
                }
            }
        }
    }

    fn on_file_command(&mut self, command: FileCommand) {
        let now = Instant::now();
        let result = match command {
            FileCommand::Send(path) => {
                // Hashing reads the whole file: never on the network task.
                let prepared = self.prepared_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let opened = LocalFile::open(&path);
                    let _ = prepared.blocking_send((path, opened));
                });
                Ok(())
            }
            FileCommand::Accept(id) => self.core.accept(id, now),
            FileCommand::Decline(id, reason) => self.core.decline(id, &reason, now),
            FileCommand::Cancel(direction, id, reason) => {
                self.core.cancel(direction, id, &reason, now)
            }
        };
        if let Err(error) = result {
            tracing::warn!(%error, "file command refused");
        }
    }

    fn on_prepared(&mut self, path: PathBuf, opened: std::io::Result<LocalFile>) {
        let file = match opened {
            Ok(file) => file,
            Err(error) => {
                let reason = error.to_string();
                self.emit(ControllerEvent::FileNotSent { path, reason });
                return;
            }
        };
        let (name, size, sha256) = (file.name.clone(), file.size, file.sha256);
        match self
            .core
            .send_file(&name, size, sha256, file.source, Instant::now())
        {
            Ok(id) => self.emit(ControllerEvent::FileOffered(Offer {
                id,
                name,
                size,
                sha256,
            })),
            Err(error) => {
                let reason = error.to_string();
                self.emit(ControllerEvent::FileNotSent { path, reason });
            }
        }
    }

    /// The decoder's running totals, for the core's per-second figures.
    fn decode_totals(&self) -> DecodeTotals {
        let size = self.counters.size.load(Ordering::Relaxed);
        let age = self
            .counters
            .last_stamp_age_micros
            .swap(0, Ordering::Relaxed);
        DecodeTotals {
            pictures: self.counters.pictures.load(Ordering::Relaxed),
            decode_micros: self.counters.decode_micros.load(Ordering::Relaxed),
            errors: self.counters.errors.load(Ordering::Relaxed),
            size: (size != 0).then_some(((size >> 32) as u32, size as u32)),
            stamp_age: (age > 0).then(|| Duration::from_micros(age)),
        }
    }
}

/// The folder files from the puppet go into, created if missing; `None` (every offer refused)
/// when it cannot be made.
fn download_folder(config: &ControllerConfig) -> Option<DownloadFolder> {
    let dir = config
        .download_dir
        .clone()
        .or_else(|| rtcdesk_files::default_dir(|name| std::env::var_os(name)))?;
    match DownloadFolder::new(&dir) {
        Ok(folder) => Some(folder),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "no download folder: file offers are refused");
            None
        }
    }
}

/// The peer's fingerprint type as verification takes it.
fn fingerprint(f: rtcdesk_peer::DtlsFingerprint) -> rtcdesk_pake::Fingerprint {
    rtcdesk_pake::Fingerprint {
        hash: f.hash,
        digest: f.digest,
    }
}

/// Sleeps until `at`; forever when there is nothing to wait for.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// When the first picture was decoded; pending forever once reported (or if it never comes).
async fn first_picture(receiver: &mut Option<oneshot::Receiver<Instant>>) -> Option<Instant> {
    match receiver.as_mut() {
        Some(receiver) => receiver.await.ok(),
        None => std::future::pending().await,
    }
}

/// The next signaling message, or `None` when the connection is gone; pending forever once it
/// is (so `select!` keeps serving the peer).
/// How long after the puppet closed the connection its `leave` may still come.
const LEFT_AFTER_CLOSE: Duration = Duration::from_secs(1);

pub(crate) async fn recv_signal(signal: &mut Option<SignalClient>) -> Option<SignalMessage> {
    let Some(client) = signal.as_mut() else {
        return std::future::pending().await;
    };
    loop {
        match client.recv().await {
            Ok(Some(message)) => return Some(message),
            Ok(None) => return None,
            Err(rtcdesk_signal::client::ClientError::BadMessage(error)) => {
                tracing::debug!(%error, "ignoring a bad message from the server");
            }
            Err(error) => {
                tracing::debug!(%error, "signaling connection failed");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn endings_map_to_exit_codes() {
        assert_eq!(EndReason::Closed.exit_code(), 0);
        assert_eq!(EndReason::PuppetLeft.exit_code(), 6);
        assert_eq!(EndReason::ConnectionLost.exit_code(), 6);
        let rejected = ConnectError::Rejected { reason: None };
        assert_eq!(rejected.exit_code(), 4);
        let code = "123456789".parse().unwrap();
        assert_eq!(ConnectError::UnknownCode(code).exit_code(), 3);
    }
}
