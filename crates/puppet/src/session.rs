//! One controller's WebRTC session: a tokio task that owns the [`Peer`], signals its offer and
//! candidates through the main loop, feeds the controller's input to its [`PuppetInput`], and
//! joins the video fan-out once connected.

use std::sync::Arc;

use rtcdesk_input::{InjectorHandle, KeyboardMode, PuppetInput, ScreenArea, SessionConfig};
use rtcdesk_peer::{Channel, Endpoint, Message, Peer, PeerConfig, PeerEvent, PeerStats};
use rtcdesk_proto::control::ControlMessage;
use rtcdesk_proto::signal::{Candidate, Offer, SessionId, SignalMessage};
use rtcdesk_proto::InputMessage;
use tokio::sync::mpsc;

use crate::pipeline::VideoHub;
use crate::EndReason;

/// What a session task tells the main loop.
#[derive(Debug)]
pub(crate) enum SessionReport {
    /// Send this on the signaling connection (offer, candidates).
    Signal(SignalMessage),
    /// The WebRTC connection is up.
    Connected(SessionId),
    /// The session is over from the peer's side.
    Lost(SessionId, EndReason),
    /// The controller's user wrote this chat line.
    Chat(SessionId, String),
}

/// What the main loop tells a session task.
#[derive(Debug)]
pub(crate) enum SessionCommand {
    /// The controller's answer or a candidate.
    Remote(SignalMessage),
    /// Join the video fan-out, on this stream.
    StartVideo(crate::Quality),
    /// Move to the other stream (a proctor focused or unfocused this member).
    SetQuality(crate::Quality),
    /// Close the peer and end.
    Close,
}

/// Everything a session task needs that is shared by all sessions.
#[derive(Clone)]
pub(crate) struct SessionContext {
    /// The one socket set every session of this puppet runs on.
    pub endpoint: Endpoint,
    pub peer_config: PeerConfig,
    pub injector: InjectorHandle,
    pub screen: ScreenArea,
    pub view_only: bool,
    pub hub: Arc<VideoHub>,
    pub reports: mpsc::Sender<SessionReport>,
    /// Chat lines the puppet's user writes, for every session.
    pub chat: crate::exchange::ChatSender,
}

/// The screen input maps onto: the captured one as it is now (its resolution can change).
fn current_screen(context: &SessionContext) -> ScreenArea {
    match context.hub.screen_size() {
        Some((width, height)) => ScreenArea {
            width,
            height,
            ..context.screen
        },
        None => context.screen,
    }
}

fn input_config(context: &SessionContext, keyboard: KeyboardMode) -> SessionConfig {
    let mut config = SessionConfig::new(current_screen(context));
    config.view_only = context.view_only;
    config.keyboard = keyboard;
    config
}

/// Runs one session until it is closed or lost. Every way out leaves the video fan-out and
/// releases what the controller held.
pub(crate) async fn run(
    session: SessionId,
    context: SessionContext,
    mut commands: mpsc::Receiver<SessionCommand>,
) {
    let reports = context.reports.clone();
    let reason = match drive(&session, &context, &mut commands).await {
        Ok(reason) => reason,
        Err(error) => {
            tracing::warn!(%session, %error, "session failed");
            Some(EndReason::ConnectionLost)
        }
    };
    context.hub.remove(&session);
    if let Some(reason) = reason {
        let _ = reports.send(SessionReport::Lost(session, reason)).await;
    }
}

/// The session's loop. Returns the reason to report when the session ended from the peer's
/// side, `None` when the main loop closed it.
async fn drive(
    session: &SessionId,
    context: &SessionContext,
    commands: &mut mpsc::Receiver<SessionCommand>,
) -> Result<Option<EndReason>, rtcdesk_peer::Error> {
    // The offerer receives no video, but keeps the receiver so the peer's loop never sees it
    // gone.
    let Peer {
        handle,
        mut events,
        video: _video,
        audio: _audio,
    } = context
        .endpoint
        .start_session(context.peer_config.clone())?;
    let mut input = PuppetInput::new(
        input_config(context, KeyboardMode::Map),
        context.injector.clone(),
    );
    let report = |message: SignalMessage| context.reports.send(SessionReport::Signal(message));
    let sdp = handle.create_offer().await?;
    let _ = report(
        Offer {
            session: session.clone(),
            sdp,
        }
        .into(),
    )
    .await;
    // A stats message each second while video flows (every 5 s on a still screen) tells the
    // controller how the puppet sees the session; with ICE's keepalives it is also traffic
    // both ways for the peers' silence detection.
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_stats = PeerStats::default();
    let mut frames_at_last_heartbeat = 0u64;
    let mut quiet_ticks = 0u32;
    let mut channel_open = false;
    let mut chat = context.chat.subscribe();
    let result = loop {
        tokio::select! {
            line = chat.recv() => match line {
                Ok(message) => {
                    if let Err(error) = handle.try_send_data(Channel::Control, Message::Text(message)) {
                        tracing::warn!(%session, %error, "chat line not sent");
                    }
                }
                Err(error) => tracing::warn!(%session, %error, "chat lines missed"),
            },
            _ = heartbeat.tick() => {
                let moving = last_stats.frames_sent != frames_at_last_heartbeat;
                quiet_ticks = if moving { 0 } else { quiet_ticks + 1 };
                // On a still screen the figures stay the same: one message every
                // STILL_HEARTBEAT_EVERY ticks keeps the session alive at a fifth of the cost.
                let due = quiet_ticks <= 1 || quiet_ticks.is_multiple_of(STILL_HEARTBEAT_EVERY);
                if channel_open && due {
                    let message = stats_message(&last_stats, &mut frames_at_last_heartbeat);
                    if let Err(error) = handle.try_send_data(Channel::Control, Message::Text(message.encode())) {
                        tracing::debug!(%session, %error, "stats not sent");
                    }
                }
            }
            command = commands.recv() => match command {
                Some(SessionCommand::Remote(SignalMessage::Answer(answer))) => {
                    handle.accept_answer(answer.sdp).await?;
                }
                Some(SessionCommand::Remote(SignalMessage::Candidate(candidate))) => {
                    if let Err(error) = handle.add_remote_candidate(candidate.candidate).await {
                        tracing::debug!(%session, %error, "ignoring a remote candidate");
                    }
                }
                Some(SessionCommand::Remote(_)) => {}
                Some(SessionCommand::SetQuality(quality)) => {
                    context.hub.set_quality(session, quality);
                }
                Some(SessionCommand::StartVideo(quality)) => {
                    context.hub.add(session.clone(), handle.video_sender(), quality);
                }
                Some(SessionCommand::Close) | None => break None,
            },
            event = events.recv() => match event {
                Some(PeerEvent::LocalCandidate { candidate, mid }) => {
                    let _ = report(Candidate { session: session.clone(), candidate, mid }.into()).await;
                }
                Some(PeerEvent::GatheringComplete) => {
                    let end = Candidate { session: session.clone(), candidate: String::new(), mid: None };
                    let _ = report(end.into()).await;
                }
                Some(PeerEvent::Connected) => {
                    let _ = context.reports.send(SessionReport::Connected(session.clone())).await;
                }
                Some(PeerEvent::Disconnected) => {
                    tracing::info!(%session, "the controller went silent");
                }
                Some(PeerEvent::Closed) | None => break Some(EndReason::ConnectionLost),
                Some(PeerEvent::Data(Channel::Input | Channel::Pointer, message)) => {
                    match InputMessage::decode(message.as_bytes()) {
                        Ok(message) => {
                            let screen = current_screen(context);
                            if input.session().config().screen != screen {
                                input.set_screen(screen);
                            }
                            if let Err(error) = input.handle_message(&message) {
                                tracing::warn!(%session, %error, "input session ended");
                                break Some(EndReason::InputOverload);
                            }
                        }
                        Err(error) => tracing::debug!(%session, ?error, "dropping a malformed input message"),
                    }
                }
                Some(PeerEvent::Data(Channel::Control, message)) => {
                    handle_control(session, context, &mut input, message.as_bytes());
                }
                Some(PeerEvent::Stats(stats)) => {
                    tracing::debug!(%session, ?stats, "session stats");
                    last_stats = stats;
                }
                Some(PeerEvent::ChannelOpen(Channel::Control)) => {
                    channel_open = true;
                    // A view-only puppet tells the controller, so it shows it and sends no input.
                    if context.view_only {
                        let message = ControlMessage::ViewOnly { on: true };
                        if let Err(error) = handle.try_send_data(Channel::Control, Message::Text(message.encode())) {
                            tracing::warn!(%session, %error, "view-only notice not sent");
                        }
                    }
                }
                Some(other) => tracing::trace!(%session, ?other, "peer event"),
            },
        }
    };
    context.hub.remove(session);
    input.end();
    handle.close().await;
    Ok(result)
}

/// How often the puppet sends its stats on the control channel.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// On a still screen, stats go out every this many heartbeats (the first quiet one still
/// goes, so the controller sees the rate fall to 0).
const STILL_HEARTBEAT_EVERY: u32 = 5;

/// The puppet's view of the session for the controller: frames sent since the last heartbeat
/// (one second, so frames per second), bits sent in the last stats interval, round-trip time,
/// loss reported by the controller.
fn stats_message(stats: &PeerStats, frames_before: &mut u64) -> ControlMessage {
    let fps = stats.frames_sent.saturating_sub(*frames_before) as f64 / HEARTBEAT.as_secs_f64();
    *frames_before = stats.frames_sent;
    ControlMessage::Stats {
        fps,
        rtt_ms: stats.rtt.map_or(0.0, |rtt| rtt.as_secs_f64() * 1000.0),
        bitrate_kbps: stats.send_bitrate_bps as f64 / 1000.0,
        loss: stats.egress_loss.map_or(0.0, f64::from),
    }
}

fn handle_control(
    session: &SessionId,
    context: &SessionContext,
    input: &mut PuppetInput,
    bytes: &[u8],
) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        tracing::debug!(%session, "dropping a control message that is not UTF-8");
        return;
    };
    match ControlMessage::parse(text) {
        Ok(ControlMessage::Keyboard { mode }) => {
            if input.session().config().keyboard != mode {
                // A fresh policy in the new mode; the old one releases what it held.
                input.end();
                *input = PuppetInput::new(input_config(context, mode), context.injector.clone());
            }
        }
        Ok(ControlMessage::Chat { text }) => {
            let report = SessionReport::Chat(session.clone(), text);
            if let Err(error) = context.reports.try_send(report) {
                tracing::warn!(%session, %error, "chat line dropped");
            }
        }
        Ok(other) => tracing::debug!(%session, ?other, "control message not handled yet"),
        Err(error) => tracing::debug!(%session, ?error, "dropping a malformed control message"),
    }
}
