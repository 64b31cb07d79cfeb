//! One controller session: pairing over signaling, then the network task that relays
//! candidates, watches the connection, forwards input and reports stats.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtcdesk_peer::{Channel, Message, Peer, PeerConfig, PeerEvent, PeerHandle, PeerStats, Role};
use rtcdesk_proto::control::ControlMessage;
use rtcdesk_proto::input::InputMessage;
use rtcdesk_proto::signal::{Answer, Candidate, Leave, SessionId, SignalMessage};
use rtcdesk_signal::client::SignalClient;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::decode::{DecodeCounters, DecoderThread, FrameSink};
use crate::ice_report::IceReport;
use crate::pairing::{Paired, Pairing, PairingOutput};
use crate::{ConnectError, ControllerConfig, KeyboardMode};

/// What happens to a session, for the window's title and the program's exit.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// One event a second at most: boxing the stats would cost more than it saves.
#[allow(clippy::large_enum_variant)]
pub enum ControllerEvent {
    /// The peer connection came up (again, after a silence).
    Connected,
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
}

impl EndReason {
    /// The process exit code for this ending.
    pub fn exit_code(&self) -> i32 {
        match self {
            EndReason::Closed => crate::EXIT_OK,
            EndReason::PuppetLeft | EndReason::ConnectionLost => crate::EXIT_CONNECTION_LOST,
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndReason::Closed => "session closed",
            EndReason::PuppetLeft => "the puppet ended the session",
            EndReason::ConnectionLost => "connection to the puppet lost: it stopped answering",
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
        let (close_tx, close_rx) = oneshot::channel();
        let (connected_tx, connected_rx) = oneshot::channel();
        let task = SessionTask {
            session: session.clone(),
            signal: Some(signal),
            peer: handle.clone(),
            peer_events,
            events: event_tx,
            keyboard: config.keyboard,
            counters,
            decoder,
            connected: Some(connected_tx),
            connect_deadline: tokio::time::Instant::now() + config.connect_timeout,
            connect_timeout: config.connect_timeout,
            ice_report,
            started,
            first_picture: Some(first_picture),
            puppet_name: puppet_name.clone().unwrap_or_else(|| "puppet".into()),
            last_pictures: 0,
            last_decode_micros: 0,
            last_stats_at: Instant::now(),
        };
        let task = tokio::spawn(task.run(close_rx));
        let controller = Controller {
            session,
            puppet_name,
            input: InputSender { peer: handle },
            events,
            close: Some(close_tx),
            task: Some(task),
        };
        // The session task owns the deadline: it knows what ICE tried, so it says why it failed.
        match connected_rx.await {
            Ok(Ok(())) => Ok(controller),
            Ok(Err(reason)) => Err(ConnectError::ConnectionFailed(reason)),
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

    /// A sender for chat lines to the puppet's user, for any thread.
    pub fn chat_sender(&self) -> crate::ChatSender {
        crate::ChatSender::new(self.input.peer.clone())
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
    keyboard: KeyboardMode,
    counters: Arc<DecodeCounters>,
    decoder: DecoderThread,
    connected: Option<oneshot::Sender<Result<(), String>>>,
    /// Until connected: when to give up, and what ICE tried (for the reason).
    connect_deadline: tokio::time::Instant,
    connect_timeout: Duration,
    ice_report: IceReport,
    /// When [`Controller::connect`] was called, for [`ControllerEvent::FirstPicture`].
    started: Instant,
    first_picture: Option<oneshot::Receiver<Instant>>,
    /// Who chat lines are from: the puppet's name from signaling.
    puppet_name: String,
    last_pictures: u64,
    last_decode_micros: u64,
    last_stats_at: Instant,
}

/// What ends the session loop.
enum Next {
    Continue,
    End(EndReason),
}

impl SessionTask {
    async fn run(mut self, mut close: oneshot::Receiver<()>) {
        let reason = loop {
            let connecting = self.connected.is_some();
            let next = tokio::select! {
                _ = &mut close => Next::End(EndReason::Closed),
                _ = tokio::time::sleep_until(self.connect_deadline), if connecting => {
                    let line = self.ice_report.failure_line(self.connect_timeout);
                    if let Some(connected) = self.connected.take() {
                        let _ = connected.send(Err(line));
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
            let _ = connected.send(Err(reason.to_string()));
        }
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
            PeerEvent::Connected => {
                if let Some(connected) = self.connected.take() {
                    let _ = connected.send(Ok(()));
                }
                self.emit(ControllerEvent::Connected);
            }
            PeerEvent::Disconnected => self.emit(ControllerEvent::Interrupted),
            PeerEvent::PathSelected(pair) => self.emit(ControllerEvent::PathSelected(pair)),
            PeerEvent::RelayFailed { server, reason } => {
                tracing::warn!(%server, "{reason}");
                self.ice_report.relay_failed(reason);
            }
            PeerEvent::Closed => return Next::End(EndReason::ConnectionLost),
            PeerEvent::ChannelOpen(Channel::Control) => {
                let message = ControlMessage::Keyboard {
                    mode: self.keyboard,
                }
                .encode();
                if let Err(error) = self
                    .peer
                    .send_data(Channel::Control, Message::Text(message))
                    .await
                {
                    tracing::warn!(%error, "could not tell the puppet the keyboard mode");
                }
            }
            PeerEvent::Data(Channel::Control, message) => {
                if let Some(line) =
                    crate::exchange::chat_line(message.as_bytes(), &self.puppet_name)
                {
                    self.emit(ControllerEvent::Chat(line));
                }
            }
            PeerEvent::Stats(peer) => {
                let stats = self.stats(peer);
                self.emit(ControllerEvent::Stats(stats));
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
        let _ = self.events.try_send(event);
    }

    fn stats(&mut self, peer: PeerStats) -> SessionStats {
        let now = Instant::now();
        let elapsed = (now - self.last_stats_at).as_secs_f64().max(1e-3);
        self.last_stats_at = now;
        let pictures = self.counters.pictures.load(Ordering::Relaxed);
        let decode_micros = self.counters.decode_micros.load(Ordering::Relaxed);
        let new_pictures = pictures - self.last_pictures;
        let new_micros = decode_micros - self.last_decode_micros;
        self.last_pictures = pictures;
        self.last_decode_micros = decode_micros;
        let size = self.counters.size.load(Ordering::Relaxed);
        let age = self
            .counters
            .last_stamp_age_micros
            .swap(0, Ordering::Relaxed);
        SessionStats {
            fps: new_pictures as f64 / elapsed,
            rtt: peer.rtt,
            receive_bitrate_bps: peer.receive_bitrate_bps,
            stamp_latency: (age > 0).then(|| Duration::from_micros(age)),
            decode_time: (new_pictures > 0)
                .then(|| Duration::from_micros(new_micros / new_pictures)),
            video_size: (size != 0).then_some(((size >> 32) as u32, size as u32)),
            decode_errors: self.counters.errors.load(Ordering::Relaxed),
            peer,
        }
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
