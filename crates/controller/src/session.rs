//! One controller session: pairing over signaling, then the network task that relays
//! candidates, watches the connection, forwards input and reports stats.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtcdesk_peer::{Channel, Message, Peer, PeerConfig, PeerEvent, PeerHandle, PeerStats, Role};
use rtcdesk_proto::control::ControlMessage;
use rtcdesk_proto::input::InputMessage;
use rtcdesk_proto::signal::{
    Answer, Candidate, Connect, ErrorCode, Leave, SessionId, SignalMessage,
};
use rtcdesk_signal::client::SignalClient;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::decode::{DecodeCounters, DecoderThread, FrameSink};
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

/// What a signaling message means while waiting for the puppet's user (pure, for tests).
#[derive(Debug, PartialEq)]
enum PairingStep {
    Wait,
    Accepted(SessionId),
    Fail(PairingFailure),
}

#[derive(Debug, PartialEq)]
enum PairingFailure {
    UnknownCode,
    Rejected(Option<String>),
    Refused(ErrorCode, String),
    Left,
}

fn pairing_step(message: &SignalMessage) -> PairingStep {
    match message {
        SignalMessage::Ringing(_) => PairingStep::Wait,
        SignalMessage::Accepted(accepted) => PairingStep::Accepted(accepted.session.clone()),
        SignalMessage::Rejected(rejected) => {
            PairingStep::Fail(PairingFailure::Rejected(rejected.reason.clone()))
        }
        SignalMessage::Error(error) if error.code == ErrorCode::UnknownCode => {
            PairingStep::Fail(PairingFailure::UnknownCode)
        }
        SignalMessage::Error(error) => {
            PairingStep::Fail(PairingFailure::Refused(error.code, error.message.clone()))
        }
        SignalMessage::Left(_) => PairingStep::Fail(PairingFailure::Left),
        _ => PairingStep::Wait,
    }
}

impl Controller {
    /// Pairs with the puppet whose code is in `config` and connects to it; decoded pictures go
    /// to `sink` from then on. Returns once the peer connection is up.
    pub async fn connect(
        config: ControllerConfig,
        sink: Box<dyn FrameSink>,
    ) -> Result<Controller, ConnectError> {
        let mut signal = SignalClient::connect(&config.signal_url, &config.tls)
            .await
            .map_err(ConnectError::SignalUnreachable)?;
        signal
            .send(&SignalMessage::Connect(Connect {
                code: config.code,
                name: config.name.clone(),
            }))
            .await
            .map_err(|_| ConnectError::SignalClosed)?;

        let (session, puppet_name, ice_servers) = wait_for_acceptance(&mut signal, &config).await?;
        tracing::info!(
            session = session.as_str(),
            "accepted; waiting for the offer"
        );

        // Candidates may arrive right behind the offer; keep any that come first.
        let mut early_candidates = Vec::new();
        let offer_sdp = tokio::time::timeout(config.connect_timeout, async {
            loop {
                match signal.recv().await {
                    Ok(Some(SignalMessage::Offer(offer))) if offer.session == session => {
                        return Ok(offer.sdp)
                    }
                    Ok(Some(SignalMessage::Candidate(c))) if c.session == session => {
                        early_candidates.push(c.candidate)
                    }
                    Ok(Some(SignalMessage::Left(left))) if left.session == session => {
                        return Err(ConnectError::ConnectionFailed(
                            "the puppet left before sending its offer".into(),
                        ))
                    }
                    Ok(Some(_)) | Err(rtcdesk_signal::client::ClientError::BadMessage(_)) => {}
                    Ok(None) | Err(_) => return Err(ConnectError::SignalClosed),
                }
            }
        })
        .await
        .map_err(|_| ConnectError::ConnectionFailed("the puppet sent no offer".into()))??;

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
        for candidate in early_candidates {
            if let Err(error) = handle.add_remote_candidate(candidate).await {
                tracing::debug!(%error, "ignoring a remote candidate");
            }
        }

        let counters = Arc::new(DecodeCounters::default());
        let decoder = DecoderThread::spawn(
            video,
            handle.clone(),
            sink,
            config.decoder_threads,
            counters.clone(),
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
        match tokio::time::timeout(config.connect_timeout, connected_rx).await {
            Ok(Ok(Ok(()))) => Ok(controller),
            Ok(Ok(Err(reason))) => Err(ConnectError::ConnectionFailed(reason)),
            Ok(Err(_)) => Err(ConnectError::ConnectionFailed("the session task stopped".into())),
            Err(_) => Err(ConnectError::ConnectionFailed(format!(
                "no WebRTC connection within {:?} (a firewall, or NATs on both sides without STUN?)",
                config.connect_timeout
            ))),
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

async fn wait_for_acceptance(
    signal: &mut SignalClient,
    config: &ControllerConfig,
) -> Result<
    (
        SessionId,
        Option<String>,
        Vec<rtcdesk_proto::signal::IceServer>,
    ),
    ConnectError,
> {
    let mut puppet_name = None;
    let wait = async {
        loop {
            let message = match signal.recv().await {
                Ok(Some(message)) => message,
                Ok(None) => return Err(ConnectError::SignalClosed),
                Err(rtcdesk_signal::client::ClientError::BadMessage(error)) => {
                    tracing::debug!(%error, "ignoring a bad message from the server");
                    continue;
                }
                Err(_) => return Err(ConnectError::SignalClosed),
            };
            match pairing_step(&message) {
                PairingStep::Wait => {
                    if let SignalMessage::Ringing(ringing) = message {
                        tracing::info!("ringing: waiting for the puppet's user to accept");
                        puppet_name = ringing.name;
                    }
                }
                PairingStep::Accepted(session) => {
                    let ice_servers = match message {
                        SignalMessage::Accepted(accepted) => accepted.ice_servers,
                        _ => Vec::new(),
                    };
                    return Ok((session, puppet_name.take(), ice_servers));
                }
                PairingStep::Fail(PairingFailure::UnknownCode) => {
                    return Err(ConnectError::UnknownCode(config.code))
                }
                PairingStep::Fail(PairingFailure::Rejected(reason)) => {
                    return Err(ConnectError::Rejected { reason })
                }
                PairingStep::Fail(PairingFailure::Refused(code, message)) => {
                    return Err(ConnectError::Refused { code, message })
                }
                PairingStep::Fail(PairingFailure::Left) => {
                    return Err(ConnectError::ConnectionFailed(
                        "the puppet went away before answering".into(),
                    ))
                }
            }
        }
    };
    tokio::time::timeout(config.accept_timeout, wait)
        .await
        .map_err(|_| ConnectError::NoAnswer(config.accept_timeout))?
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
            let next = tokio::select! {
                _ = &mut close => Next::End(EndReason::Closed),
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

/// The next signaling message, or `None` when the connection is gone; pending forever once it
/// is (so `select!` keeps serving the peer).
async fn recv_signal(signal: &mut Option<SignalClient>) -> Option<SignalMessage> {
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
    use rtcdesk_proto::signal::{Accepted, Error, Rejected, Ringing};

    fn session() -> SessionId {
        SessionId("s1".into())
    }

    #[test]
    fn ringing_waits_and_accepted_proceeds() {
        let ringing = SignalMessage::Ringing(Ringing {
            session: session(),
            name: Some("front desk".into()),
        });
        assert_eq!(pairing_step(&ringing), PairingStep::Wait);
        let accepted = SignalMessage::Accepted(Accepted::new(session()));
        assert_eq!(pairing_step(&accepted), PairingStep::Accepted(session()));
    }

    #[test]
    fn refusals_are_told_apart() {
        let rejected = SignalMessage::Rejected(Rejected {
            session: session(),
            reason: Some("busy".into()),
        });
        assert_eq!(
            pairing_step(&rejected),
            PairingStep::Fail(PairingFailure::Rejected(Some("busy".into())))
        );
        let unknown = SignalMessage::Error(Error {
            code: ErrorCode::UnknownCode,
            message: "no".into(),
        });
        assert_eq!(
            pairing_step(&unknown),
            PairingStep::Fail(PairingFailure::UnknownCode)
        );
        let limited = SignalMessage::Error(Error {
            code: ErrorCode::RateLimited,
            message: "slow down".into(),
        });
        assert_eq!(
            pairing_step(&limited),
            PairingStep::Fail(PairingFailure::Refused(
                ErrorCode::RateLimited,
                "slow down".into()
            ))
        );
    }

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
