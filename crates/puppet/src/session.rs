//! One controller's WebRTC session: a tokio task that owns the [`Peer`], signals its offer and
//! candidates through the main loop, feeds the controller's input to its [`PuppetInput`], and
//! joins the video fan-out once connected.

use std::sync::Arc;

use rtcdesk_input::{InjectorHandle, KeyboardMode, PuppetInput, ScreenArea, SessionConfig};
use rtcdesk_peer::{Channel, Endpoint, Peer, PeerConfig, PeerEvent, PeerHandle};
use rtcdesk_proto::signal::{Candidate, Offer, SessionId, SignalMessage};
use tokio::sync::mpsc;

use crate::pipeline::VideoHub;
use crate::viewer::{Viewer, ViewerOutput};
use crate::EndReason;

/// What a session task tells the main loop.
#[derive(Debug)]
pub(crate) enum SessionReport {
    /// Send this on the signaling connection (offer, candidates).
    Signal(SignalMessage),
    /// DTLS is up with these certificates (ours, the controller's).
    Secured(
        SessionId,
        rtcdesk_pake::Fingerprint,
        rtcdesk_pake::Fingerprint,
    ),
    /// The WebRTC connection is up.
    Connected(SessionId),
    /// The session is over from the peer's side.
    Lost(SessionId, EndReason),
    /// The controller's user wrote this chat line.
    Chat(SessionId, String),
    /// A file transfer with this session's controller moved on.
    File(SessionId, rtcdesk_files::TransferEvent),
    /// One of this side's files was offered under this id.
    FileOffered(SessionId, rtcdesk_files::Offer),
    /// One of this side's files could not be offered: the path and why.
    FileNotSent(SessionId, std::path::PathBuf, String),
    /// The live transfers' progress.
    FileProgress(
        SessionId,
        Vec<(
            rtcdesk_files::Offer,
            rtcdesk_files::Direction,
            rtcdesk_files::Progress,
        )>,
    ),
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
    /// Offer the file at this path to the controller.
    SendFile(std::path::PathBuf),
    /// The user's answer to the controller's offer `id`.
    AnswerFile { id: u32, accept: bool },
    /// The user stops transfer `id` in `direction`, or takes back an offer.
    CancelFile {
        direction: rtcdesk_files::Direction,
        id: u32,
    },
    /// The user changed the session's role: only watch (`true`), or control.
    SetViewOnly(bool),
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
    /// Where received files go (`None`: the user's default folder).
    pub download_dir: Option<std::path::PathBuf>,
    /// Accept every offered file without asking.
    pub accept_files: bool,
    /// Someone answers offers that are not accepted at once (the terminal or the
    /// application); without, they are declined.
    pub ask_files: bool,
    pub hub: Arc<VideoHub>,
    pub reports: mpsc::Sender<SessionReport>,
    /// Chat lines the puppet's user writes, for every session.
    pub chat: crate::exchange::ChatSender,
    /// The shared clipboard (`None`: off, or no clipboard on this machine).
    pub clipboard: Option<crate::clipboard::ClipboardShare>,
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

fn input_config(
    context: &SessionContext,
    keyboard: KeyboardMode,
    view_only: bool,
) -> SessionConfig {
    let mut config = SessionConfig::new(current_screen(context));
    config.view_only = view_only;
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
        input_config(context, KeyboardMode::Map, context.view_only),
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
    // The session's decisions live in its sans-IO core; this loop only moves bytes, time and
    // commands into it and carries out what it says.
    let mut viewer = Viewer::new(
        context.view_only,
        download_folder(session, context),
        std::time::Instant::now(),
    );
    let mut chat = context.chat.subscribe();
    let mut clipboard = context
        .clipboard
        .as_ref()
        .filter(|_| !context.view_only)
        .map(|share| share.subscribe());
    // Files opened and hashed off this task come back here.
    let (prepared_tx, mut prepared) = mpsc::channel(8);
    // Nothing reaches the controller and nothing it sends is acted on until the book starts
    // the session (`StartVideo`): for a verified session, that is once its fingerprints MAC
    // checked out, so a server in the middle gets neither the screen, the clipboard nor a
    // keystroke in. What arrives before is kept (bounded) for then.
    let mut gate = Gate::default();
    let result = loop {
        if let Some(end) = carry_out(session, context, &handle, &mut viewer, &mut input) {
            break Some(end);
        }
        let heartbeat = tokio::time::Instant::from_std(viewer.poll_timeout());
        let wants_room = viewer.wants_file_room();
        tokio::select! {
            line = chat.recv(), if gate.live => match line {
                Ok(message) => viewer.send_chat(message),
                Err(error) => tracing::warn!(%session, %error, "chat lines missed"),
            },
            text = next_clipboard(&mut clipboard), if gate.live => match text {
                Ok(message) => viewer.send_clipboard(message),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => clipboard = None,
            },
            _ = tokio::time::sleep_until(heartbeat), if gate.live => viewer.handle_timeout(std::time::Instant::now()),
            _ = handle.wait_for_room(Channel::File), if wants_room => viewer.file_channel_room(),
            Some((path, opened)) = prepared.recv(), if gate.live => offer_file(session, context, &mut viewer, path, opened),
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
                    let now = std::time::Instant::now();
                    for held in gate.open() {
                        match held {
                            Held::ControlOpen => viewer.control_opened(now),
                            Held::Data(channel, bytes) => viewer.handle_data(channel, &bytes, now),
                        }
                    }
                }
                Some(SessionCommand::SendFile(path)) => {
                    let prepared = prepared_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let opened = rtcdesk_files::LocalFile::open(&path);
                        let _ = prepared.blocking_send((path, opened));
                    });
                }
                Some(SessionCommand::AnswerFile { id, accept }) => {
                    let now = std::time::Instant::now();
                    let answer = if accept {
                        viewer.accept(id, now)
                    } else {
                        viewer.decline(id, "the puppet's user declined")
                    };
                    if let Err(error) = answer {
                        tracing::info!(%session, id, %error, "answer to a file offer not taken");
                    }
                }
                Some(SessionCommand::CancelFile { direction, id }) => {
                    if let Err(error) = viewer.cancel(direction, id) {
                        tracing::info!(%session, id, %error, "cancel of a transfer not taken");
                    }
                }
                Some(SessionCommand::SetViewOnly(view_only)) => {
                    viewer.set_view_only(view_only);
                    // A fresh input policy in the new role; the old one releases what the
                    // controller held, so nothing stays pressed once it may only watch.
                    let keyboard = input.session().config().keyboard;
                    input.end();
                    input = PuppetInput::new(
                        input_config(context, keyboard, view_only),
                        context.injector.clone(),
                    );
                    clipboard = context
                        .clipboard
                        .as_ref()
                        .filter(|_| !view_only)
                        .map(|share| share.subscribe());
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
                Some(PeerEvent::Secured { local, remote }) => {
                    let convert = |f: rtcdesk_peer::DtlsFingerprint| rtcdesk_pake::Fingerprint { hash: f.hash, digest: f.digest };
                    let report = SessionReport::Secured(session.clone(), convert(local), convert(remote));
                    let _ = context.reports.send(report).await;
                }
                Some(PeerEvent::Connected) => {
                    let _ = context.reports.send(SessionReport::Connected(session.clone())).await;
                }
                Some(PeerEvent::Disconnected) => {
                    tracing::info!(%session, "the controller went silent");
                }
                Some(PeerEvent::Closed) | None => break Some(EndReason::ConnectionLost),
                Some(PeerEvent::Data(channel, message)) => {
                    if gate.live {
                        viewer.handle_data(channel, message.as_bytes(), std::time::Instant::now());
                    } else {
                        gate.hold(session, Held::Data(channel, message.as_bytes().to_vec()));
                    }
                }
                Some(PeerEvent::Stats(_)) if !gate.live => {}
                Some(PeerEvent::Stats(stats)) => {
                    tracing::debug!(%session, ?stats, "session stats");
                    viewer.handle_stats(stats);
                    let live = viewer.progress(std::time::Instant::now());
                    if !live.is_empty() {
                        let _ = context.reports.try_send(SessionReport::FileProgress(session.clone(), live));
                    }
                }
                Some(PeerEvent::ChannelOpen(Channel::Control)) => {
                    if gate.live {
                        viewer.control_opened(std::time::Instant::now());
                    } else {
                        gate.hold(session, Held::ControlOpen);
                    }
                }
                Some(other) => tracing::trace!(%session, ?other, "peer event"),
            },
        }
    };
    viewer.close();
    context.hub.remove(session);
    input.end();
    handle.close().await;
    Ok(result)
}

/// Most messages kept from before the session starts; a controller that sends more before it
/// is verified loses the rest (a verified controller sends nothing before).
const MAX_HELD: usize = 256;

/// What arrived before the session started, replayed in order once it does.
enum Held {
    ControlOpen,
    Data(Channel, Vec<u8>),
}

/// Holds the session shut until the book starts it.
#[derive(Default)]
struct Gate {
    live: bool,
    held: Vec<Held>,
}

impl Gate {
    fn hold(&mut self, session: &SessionId, held: Held) {
        if self.held.len() < MAX_HELD {
            self.held.push(held);
        } else {
            tracing::debug!(%session, "dropping data that came before the session started");
        }
    }

    /// Opens the gate; returns what was held.
    fn open(&mut self) -> Vec<Held> {
        self.live = true;
        std::mem::take(&mut self.held)
    }
}

/// Does what the core asks until it has nothing left for now. Returns a reason to end the
/// session when the controller's input must stop (overload).
fn carry_out(
    session: &SessionId,
    context: &SessionContext,
    handle: &PeerHandle,
    viewer: &mut Viewer,
    input: &mut PuppetInput,
) -> Option<EndReason> {
    while let Some(output) = viewer.poll_output() {
        match output {
            ViewerOutput::Send(channel, message) => {
                if let Err(error) = handle.try_send_data(channel, message) {
                    tracing::debug!(%session, ?channel, %error, "control message not sent");
                }
            }
            ViewerOutput::Input(message) => {
                let screen = current_screen(context);
                if input.session().config().screen != screen {
                    input.set_screen(screen);
                }
                if let Err(error) = input.handle_message(&message) {
                    tracing::warn!(%session, %error, "input session ended");
                    return Some(EndReason::InputOverload);
                }
            }
            ViewerOutput::Keyboard(mode) => {
                if input.session().config().keyboard != mode {
                    // A fresh policy in the new mode; the old one releases what it held.
                    input.end();
                    *input = PuppetInput::new(
                        input_config(context, mode, viewer.view_only()),
                        context.injector.clone(),
                    );
                }
            }
            ViewerOutput::Clipboard(text) => {
                if let Some(share) = &context.clipboard {
                    share.received(text);
                }
            }
            ViewerOutput::Chat(text) => {
                let report = SessionReport::Chat(session.clone(), text);
                if let Err(error) = context.reports.try_send(report) {
                    tracing::warn!(%session, %error, "chat line dropped");
                }
            }
            ViewerOutput::File(event) => {
                if let rtcdesk_files::TransferEvent::Offered { offer, .. } = &event {
                    let answer = if context.accept_files {
                        Some(viewer.accept(offer.id, std::time::Instant::now()))
                    } else if context.ask_files {
                        None
                    } else {
                        Some(viewer.decline(offer.id, "the puppet does not take files"))
                    };
                    if let Some(Err(error)) = answer {
                        tracing::warn!(%session, %error, "file offer not taken");
                    }
                }
                let report = SessionReport::File(session.clone(), event);
                if let Err(error) = context.reports.try_send(report) {
                    tracing::warn!(%session, %error, "file event dropped");
                }
            }
        }
    }
    let mut sent = 0;
    while let Some(chunk) = viewer.poll_file(sent) {
        sent += 1;
        match handle.try_send_or_return(Channel::File, chunk) {
            Ok(()) => {}
            Err((rtcdesk_peer::Error::Full, chunk)) => {
                viewer.file_channel_full(chunk);
                break;
            }
            Err((error, _)) => {
                tracing::debug!(%session, %error, "file chunk not sent");
                break;
            }
        }
    }
    None
}

/// The next clipboard change, or never when the clipboard is not shared with this session.
async fn next_clipboard(
    clipboard: &mut Option<tokio::sync::broadcast::Receiver<String>>,
) -> Result<String, tokio::sync::broadcast::error::RecvError> {
    match clipboard {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// A file opened and hashed off the task: offered to the controller, or reported as not sent.
fn offer_file(
    session: &SessionId,
    context: &SessionContext,
    viewer: &mut Viewer,
    path: std::path::PathBuf,
    opened: std::io::Result<rtcdesk_files::LocalFile>,
) {
    let report = match opened {
        Ok(file) => {
            let (name, size, sha256) = (file.name.clone(), file.size, file.sha256);
            match viewer.send_file(&name, size, sha256, file.source, std::time::Instant::now()) {
                Ok(id) => SessionReport::FileOffered(
                    session.clone(),
                    rtcdesk_files::Offer {
                        id,
                        name,
                        size,
                        sha256,
                    },
                ),
                Err(error) => SessionReport::FileNotSent(session.clone(), path, error.to_string()),
            }
        }
        Err(error) => SessionReport::FileNotSent(session.clone(), path, error.to_string()),
    };
    if let Err(error) = context.reports.try_send(report) {
        tracing::warn!(%session, %error, "file report dropped");
    }
}

/// The folder received files go into, created if missing; `None` (every offer refused) when it
/// cannot be made.
fn download_folder(
    session: &SessionId,
    context: &SessionContext,
) -> Option<rtcdesk_files::DownloadFolder> {
    let dir = context
        .download_dir
        .clone()
        .or_else(|| rtcdesk_files::default_dir(|name| std::env::var_os(name)))?;
    match rtcdesk_files::DownloadFolder::new(dir) {
        Ok(folder) => Some(folder),
        Err(error) => {
            tracing::warn!(%session, %error, "no download folder: file offers are refused");
            None
        }
    }
}
