//! The tokio shell: starts the parts, registers, then moves signaling messages, consent
//! answers, session reports and timers into the [`SessionBook`] and carries out its outputs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtcdesk_input::{EnigoInjector, InjectorThread, ScreenArea, DEFAULT_QUEUE_CAPACITY};
use rtcdesk_media::{CaptureThread, SyntheticDesktop, X11Capture};
use rtcdesk_pake::PairingCode;
use rtcdesk_peer::{Endpoint, PeerConfig, Role};
use rtcdesk_proto::signal::{SessionId, SignalMessage};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::server::{Server, ServerConfig};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::attempts::AttemptGuard;
use crate::controls::{PuppetControls, UserRequest};
use crate::core::{Output, SessionBook};
use crate::exchange::ChatSender;
use crate::files::{FileRequest, PuppetFiles};
use crate::injector::{NoInjector, SyntheticInjector};
use crate::pipeline::{Pipeline, PipelineConfig, VideoHub};
use crate::session::{self, SessionCommand, SessionContext, SessionReport};
use crate::terminal::{FileQuestion, Terminal};
use crate::unattended::DeviceStore;
use crate::{
    AcceptPolicy, Decision, Error, IncomingRequest, Puppet, PuppetConfig, PuppetEvent, Shared,
    Signaling, Source, UnattendedSetup,
};

/// Events waiting for the application before new ones are dropped.
const EVENT_QUEUE: usize = 256;
/// How long the first `register` may take to be answered.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for sessions to close their peers.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How much longer than the prompt the book waits before rejecting by itself.
const CONSENT_SLACK: Duration = Duration::from_secs(2);
/// The consent deadline for callbacks (a person may be deciding).
const CALLBACK_CONSENT_TIMEOUT: Duration = Duration::from_secs(120);
/// A peer silent this long is closed: the issue wants a vanished controller freed within 10 s.
const PEER_CLOSE_AFTER_SILENCE: Duration = Duration::from_secs(7);

pub(crate) async fn start(config: PuppetConfig) -> Result<Puppet, Error> {
    if config.fps == 0 || config.fps > 240 {
        return Err(Error::Config(format!(
            "fps must be 1..=240, not {}",
            config.fps
        )));
    }
    if let Some((w, h)) = config.max_size {
        if w < 16 || h < 16 {
            return Err(Error::Config(format!(
                "max size {w}x{h} is below the 16x16 the encoders need"
            )));
        }
    }

    // The parts that can fail without a network come first. Opening the screen (an X
    // connection), the injector and the encoder block, so they run off the runtime's workers.
    let hub = Arc::new(VideoHub::default());
    let (synthetic, injector, screen, pipeline) = {
        let (config, hub) = (config.clone(), hub.clone());
        tokio::task::spawn_blocking(move || -> Result<_, Error> {
            let (capture, synthetic, injector) = open_source(&config)?;
            let (sw, sh) = capture.size();
            let screen = ScreenArea::at_origin(sw, sh);
            let pipeline = Pipeline::start(
                capture,
                hub,
                PipelineConfig {
                    encoder: config.encoder,
                    fps: config.fps,
                    max_size: config.max_size,
                    record: config.record.clone(),
                },
            )?;
            Ok((synthetic, injector, screen, pipeline))
        })
        .await
        .map_err(|e| Error::Thread(std::io::Error::other(e)))??
    };
    let (sw, sh) = (screen.width, screen.height);
    tracing::info!(
        source = ?config.source,
        screen = %format!("{sw}x{sh}"),
        video = %format!("{}x{}", pipeline.video_size.0, pipeline.video_size.1),
        encoder = %config.encoder,
        "video pipeline started"
    );

    let (server, signal_url, lan_urls) = match &config.signaling {
        Signaling::Url(url) => (None, url.clone(), Vec::new()),
        Signaling::Embedded { listen } => {
            let server = match Server::bind(ServerConfig::new(*listen)).await {
                Ok(server) => server,
                Err(error) if listen.port() != 0 => {
                    tracing::info!(%error, "the usual port is taken; using a free one");
                    let mut any_port = *listen;
                    any_port.set_port(0);
                    Server::bind(ServerConfig::new(any_port)).await?
                }
                Err(error) => return Err(error.into()),
            };
            let addr = server.local_addr();
            let (local, lan) = embedded_urls(addr);
            (Some(server), local, lan)
        }
    };

    let mut client = SignalClient::connect(&signal_url, &config.tls).await?;
    let consent_timeout = match &config.accept {
        AcceptPolicy::All => Duration::from_secs(10),
        AcceptPolicy::Prompt { timeout } => *timeout + CONSENT_SLACK,
        AcceptPolicy::Application { timeout } => *timeout + CONSENT_SLACK,
        AcceptPolicy::Callback(_) => CALLBACK_CONSENT_TIMEOUT,
    };
    let mut book = SessionBook::new(config.name.clone(), consent_timeout, config.connect_timeout);
    book.require_verified(config.require_verified);
    if let Some(setup) = &config.unattended {
        set_up_unattended(&mut book, setup).await?;
    }
    if let Some(code) = config.join {
        book.join_room(code);
    }
    book.register();
    let (event_tx, event_rx) = mpsc::channel(EVENT_QUEUE);
    // Register (or join the room) before returning, so the caller has a code. What the answer
    // queued in the book (the code's event; for a room member, its session's start) is left
    // there for the shell's first round, so it reaches the application first.
    let code = tokio::time::timeout(REGISTER_TIMEOUT, async {
        loop {
            if let Some(code) = book.pairing_code() {
                return Ok::<PairingCode, Error>(code);
            }
            if let Some(reason) = book.join_failure() {
                return Err(Error::NotRegistered(format!(
                    "cannot join the room: {reason}"
                )));
            }
            while let Some(output) = book.poll_output() {
                match output {
                    Output::Send(message) => client.send(&message).await?,
                    other => tracing::debug!(?other, "nothing to do before registering"),
                }
            }
            match client.recv().await? {
                Some(message) => book.handle_signal(message, Instant::now()),
                None => {
                    return Err(Error::NotRegistered(
                        "the server closed the connection".into(),
                    ))
                }
            }
        }
    })
    .await
    .map_err(|_| Error::NotRegistered(format!("no answer within {REGISTER_TIMEOUT:?}")))??;

    let (code_tx, code_rx) = watch::channel(code);
    let shared = Arc::new(Shared {
        sessions: Default::default(),
        hub: hub.clone(),
    });
    let (reports_tx, reports_rx) = mpsc::channel(1024);
    let chat = ChatSender::new();
    let mut peer_config = PeerConfig::new(Role::Offerer);
    peer_config.bind = config.peer_bind;
    peer_config.stun_servers = config.stun_servers.clone();
    peer_config.turn_servers = config.turn_servers.clone();
    // The signaling server's ICE servers, unless the user gave their own.
    peer_config.adopt_ice_servers(book.ice_servers()).await;
    peer_config.relay_only = config.relay_only;
    peer_config
        .validate()
        .map_err(|e| Error::Config(e.to_string()))?;
    peer_config.close_after_silence = PEER_CLOSE_AFTER_SILENCE;
    // One socket set for every viewer: thirty controllers cost thirty sessions, not thirty
    // sets of sockets and tasks.
    let endpoint = Endpoint::bind_with_relays(
        config.peer_bind,
        peer_config.socket_buffer_bytes,
        &peer_config.turn_servers,
    )?;
    let context = SessionContext {
        endpoint,
        peer_config,
        injector: injector.handle(),
        screen,
        view_only: config.view_only,
        download_dir: config.download_dir.clone(),
        accept_files: config.accept_files,
        // Set below, once it is known whether a terminal asks.
        ask_files: config.answer_files,
        hub,
        reports: reports_tx,
        chat: chat.clone(),
        clipboard: if config.clipboard {
            crate::clipboard::ClipboardShare::start()
        } else {
            None
        },
    };
    let (decisions_tx, decisions_rx) = mpsc::channel(64);
    let (controls, user_requests) = PuppetControls::new(decisions_tx.clone(), shared.clone());
    let (files, file_requests) = PuppetFiles::new();
    let asker = Asker::new(
        config.accept.clone(),
        decisions_tx,
        config.terminal_chat.then(|| chat.clone()),
        files.clone(),
    );
    let mut context = context;
    context.ask_files |= asker.file_questions.is_some();
    let (stop_tx, stop_rx) = oneshot::channel();
    let (reconnected_tx, reconnected_rx) = mpsc::channel(1);
    let shell = Shell {
        book,
        client: Some(client),
        signal_url: signal_url.clone(),
        tls: config.tls.clone(),
        reconnected: reconnected_tx,
        context,
        sessions: HashMap::new(),
        events: event_tx,
        code: code_tx,
        shared: shared.clone(),
        asker,
        unattended: config.unattended.as_ref().map(|setup| setup.store.clone()),
        attempts_to_store: Vec::new(),
        new_failures: 0,
    };
    let inbox = Inbox {
        reports: reports_rx,
        decisions: decisions_rx,
        file_requests,
        user_requests,
        reconnected: reconnected_rx,
    };
    let task = tokio::spawn(shell.run(inbox, stop_rx, pipeline, injector));
    Ok(Puppet {
        code: code_rx,
        signal_url,
        lan_urls,
        events: event_rx,
        synthetic,
        shared,
        chat,
        files,
        controls,
        stop: Some(stop_tx),
        task: Some(task),
        server,
    })
}

type Opened = (CaptureThread, Option<SyntheticDesktop>, InjectorThread);

/// Reads the device, its key and the wrong-password log (off the async workers), and makes
/// `book` unattended.
async fn set_up_unattended(book: &mut SessionBook, setup: &UnattendedSetup) -> Result<(), Error> {
    let store = setup.store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let failed = |e: anyhow::Error| Error::Unattended(format!("{e:#}"));
        let missing = |what: &str| {
            Error::Unattended(format!(
                "no {what} in {}: run `puppet set-password` first",
                store.dir().display()
            ))
        };
        let claim = store
            .device()
            .map_err(failed)?
            .ok_or_else(|| missing("device ID"))?;
        let key = store
            .key(claim.id)
            .map_err(failed)?
            .ok_or_else(|| missing("password"))?;
        let log = store.attempts().map_err(failed)?;
        Ok::<_, Error>((claim, key, log))
    })
    .await
    .map_err(|e| Error::Unattended(format!("reading the config folder failed: {e}")))?;
    let (claim, key, log) = read?;
    let guard = AttemptGuard::restore(setup.policy, log.consecutive, log.locked, Instant::now());
    book.unattended(claim, key, guard);
    Ok(())
}

fn open_source(config: &PuppetConfig) -> Result<Opened, Error> {
    // The capture thread grabs as soon as the source signals a change (X DAMAGE, the synthetic
    // desktop's own signal), or polls at this rate when it cannot. While the screen keeps
    // changing it grabs at most this often: twice the encode rate, so a change waits at most
    // half an encode interval to be grabbed. The pacer keeps the encoder at `fps`.
    let poll_rate = (config.fps * 2).clamp(config.fps, 240);
    match &config.source {
        Source::Synthetic { width, height } => {
            let desktop = SyntheticDesktop::new(*width, *height);
            let source = desktop.clone();
            let capture = CaptureThread::spawn(move || Ok(source), poll_rate)?;
            let sink = desktop.clone();
            let injector = InjectorThread::spawn(DEFAULT_QUEUE_CAPACITY, move || {
                Ok(SyntheticInjector::new(sink))
            })?;
            Ok((capture, Some(desktop), injector))
        }
        Source::X11 { display } => {
            let capture_display = display.clone();
            let capture = CaptureThread::spawn(
                move || X11Capture::open(capture_display.as_deref()),
                poll_rate,
            )?;
            let injector = if config.view_only {
                InjectorThread::spawn(DEFAULT_QUEUE_CAPACITY, || Ok(NoInjector))?
            } else {
                let display = display.clone();
                InjectorThread::spawn(DEFAULT_QUEUE_CAPACITY, move || {
                    EnigoInjector::connect(display.as_deref())
                })?
            };
            Ok((capture, None, injector))
        }
    }
}

/// The URL for this machine and one per LAN address, for an embedded server bound to `addr`.
fn embedded_urls(addr: SocketAddr) -> (String, Vec<String>) {
    let port = addr.port();
    let url = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => format!("ws://{v4}:{port}/"),
        IpAddr::V6(v6) => format!("ws://[{v6}]:{port}/"),
    };
    if !addr.ip().is_unspecified() {
        let lan = if addr.ip().is_loopback() {
            Vec::new()
        } else {
            vec![url(addr.ip())]
        };
        return (url(addr.ip()), lan);
    }
    let local = if addr.is_ipv4() {
        url(IpAddr::from([127, 0, 0, 1]))
    } else {
        url(IpAddr::from(std::net::Ipv6Addr::LOCALHOST))
    };
    let lan = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|interface| interface.ip())
        .filter(|ip| !ip.is_loopback() && ip.is_ipv4() == addr.is_ipv4())
        // Link-local IPv6 addresses (fe80::/10) need a zone the URL cannot carry.
        .filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        .map(url)
        .collect();
    (local, lan)
}

/// Puts incoming requests to the accept policy and sends the answers back to the loop.
struct Asker {
    policy: AcceptPolicy,
    decisions: mpsc::Sender<(SessionId, Decision)>,
    prompts: Option<mpsc::Sender<IncomingRequest>>,
    /// File offers to ask the terminal about (`None`: no terminal).
    file_questions: Option<mpsc::Sender<FileQuestion>>,
}

impl Asker {
    /// With a prompt policy or `terminal_chat`, starts the terminal task, the one reader of
    /// stdin.
    fn new(
        policy: AcceptPolicy,
        decisions: mpsc::Sender<(SessionId, Decision)>,
        terminal_chat: Option<ChatSender>,
        files: PuppetFiles,
    ) -> Self {
        let (prompts, requests, timeout) = match &policy {
            AcceptPolicy::Prompt { timeout } => {
                let (tx, rx) = mpsc::channel(64);
                (Some(tx), Some(rx), *timeout)
            }
            _ => (None, None, Duration::ZERO),
        };
        let mut file_questions = None;
        if requests.is_some() || terminal_chat.is_some() {
            let (questions_tx, questions_rx) = mpsc::channel(64);
            file_questions = Some(questions_tx);
            tokio::spawn(
                Terminal {
                    requests,
                    decisions: decisions.clone(),
                    // File questions wait as long as controller questions, at least 30 s.
                    timeout: timeout.max(FILE_QUESTION_TIMEOUT),
                    chat: terminal_chat,
                    file_questions: questions_rx,
                    files,
                }
                .run(),
            );
        }
        Self {
            policy,
            decisions,
            prompts,
            file_questions,
        }
    }

    fn ask(&self, request: IncomingRequest) {
        match &self.policy {
            AcceptPolicy::All => {
                let _ = self
                    .decisions
                    .try_send((request.session, Decision::Control));
            }
            AcceptPolicy::Prompt { .. } => {
                if let Some(prompts) = &self.prompts {
                    if let Err(error) = prompts.try_send(request) {
                        // Too many people asking at once: the book rejects at its deadline.
                        tracing::warn!("not asking about a controller: {error}");
                    }
                }
            }
            // The application asks its user: the book's `Incoming` event is the question.
            AcceptPolicy::Application { .. } => {}
            AcceptPolicy::Callback(callback) => {
                let callback = callback.clone();
                let decisions = self.decisions.clone();
                tokio::task::spawn_blocking(move || {
                    let decision = callback(&request);
                    let _ = decisions.blocking_send((request.session, decision));
                });
            }
        }
    }
}

impl Asker {
    /// Asks the terminal whether to take a file; `false` when no terminal asks.
    fn ask_file(&self, question: FileQuestion) -> bool {
        let Some(questions) = &self.file_questions else {
            return false;
        };
        if let Err(error) = questions.try_send(question) {
            tracing::warn!("not asking about a file: {error}");
        }
        true
    }
}

/// The shortest time a file question waits for the puppet's user.
const FILE_QUESTION_TIMEOUT: Duration = Duration::from_secs(30);

/// A controller's name as it is safe to print: control characters (terminal escapes) removed,
/// at most 64 characters.
pub(crate) fn printable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// What a try to connect to the signaling server again gave.
type Reconnected = Result<SignalClient, rtcdesk_signal::client::ClientError>;

/// What the main loop listens to besides the signaling connection.
struct Inbox {
    reports: mpsc::Receiver<SessionReport>,
    decisions: mpsc::Receiver<(SessionId, Decision)>,
    file_requests: mpsc::Receiver<FileRequest>,
    user_requests: mpsc::Receiver<UserRequest>,
    reconnected: mpsc::Receiver<Reconnected>,
}

struct Shell {
    book: SessionBook,
    client: Option<SignalClient>,
    signal_url: String,
    tls: rtcdesk_signal::tls::TlsOptions,
    /// Where connection tries report; they run as their own tasks so the loop never waits.
    reconnected: mpsc::Sender<Reconnected>,
    context: SessionContext,
    sessions: HashMap<SessionId, (mpsc::Sender<SessionCommand>, JoinHandle<()>)>,
    events: mpsc::Sender<PuppetEvent>,
    code: watch::Sender<PairingCode>,
    shared: Arc<Shared>,
    asker: Asker,
    /// Unattended access: the config folder, where the wrong-password log is kept.
    unattended: Option<DeviceStore>,
    /// `Attempts` events (and those after them) waiting for the log to be written.
    attempts_to_store: Vec<PuppetEvent>,
    /// Wrong passwords counted since the log was last written.
    new_failures: u32,
}

impl Shell {
    fn emit(&mut self, event: PuppetEvent) {
        if let PuppetEvent::Registered { pairing, .. } = &event {
            let _ = self.code.send(*pairing);
        }
        if let PuppetEvent::Attempts { consecutive, .. } = event {
            // Told once it is on disk (see `store_attempts`). A count above zero is one more
            // wrong password; zero is a right one, or an unlock.
            if consecutive > 0 {
                self.new_failures = self.new_failures.saturating_add(1);
            }
            self.attempts_to_store.push(event);
            return;
        }
        if !self.attempts_to_store.is_empty() {
            // Keeps the order: what followed the count is told after it.
            self.attempts_to_store.push(event);
            return;
        }
        if self.events.try_send(event).is_err() {
            tracing::debug!("puppet event dropped: nobody reads events");
        }
    }

    /// Writes the wrong-password log off the async workers (the write syncs to disk), then
    /// tells the application: an `Attempts` event means the count is stored, so a restart
    /// cannot forget it. The file is read first: the owner may have marked failures seen
    /// (`puppet status`) while the service ran.
    async fn store_attempts(&mut self) {
        if self.attempts_to_store.is_empty() {
            return;
        }
        let (Some(store), Some((consecutive, locked))) =
            (self.unattended.clone(), self.book.attempts())
        else {
            return;
        };
        let new_failures = std::mem::take(&mut self.new_failures);
        let written = tokio::task::spawn_blocking(move || {
            let mut on_disk = store.attempts().unwrap_or_default();
            on_disk.consecutive = consecutive;
            on_disk.locked = locked;
            if new_failures > 0 {
                on_disk.unseen = on_disk.unseen.saturating_add(new_failures);
                on_disk.last_failure_unix = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs());
            }
            store.set_attempts(&on_disk)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!("cannot store the wrong-password count: {error:#}"),
            Err(error) => tracing::error!("storing the wrong-password count failed: {error}"),
        }
        for event in std::mem::take(&mut self.attempts_to_store) {
            if self.events.try_send(event).is_err() {
                tracing::debug!("puppet event dropped: nobody reads events");
            }
        }
    }

    /// An unattended puppet with wrong passwords counted looks at its config folder when
    /// someone dials: `puppet unlock` there lifts the lock and the backoff without restarting
    /// the service. (A small file read off the async workers, and only during a streak of
    /// wrong passwords.)
    async fn check_unlocked(&mut self) {
        let Some(store) = self.unattended.clone() else {
            return;
        };
        if !self
            .book
            .attempts()
            .is_some_and(|(consecutive, locked)| consecutive > 0 || locked)
        {
            return;
        }
        match tokio::task::spawn_blocking(move || store.attempts()).await {
            Ok(Ok(on_disk)) if !on_disk.locked && on_disk.consecutive == 0 => {
                tracing::info!("the owner unlocked unattended access");
                self.book.unlock();
            }
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!("cannot read the wrong-password count: {error:#}"),
            Err(error) => tracing::warn!("reading the wrong-password count failed: {error}"),
        }
    }

    async fn run(
        mut self,
        inbox: Inbox,
        mut stop: oneshot::Receiver<()>,
        pipeline: Pipeline,
        injector: InjectorThread,
    ) {
        let Inbox {
            mut reports,
            mut decisions,
            mut file_requests,
            mut user_requests,
            mut reconnected,
        } = inbox;
        loop {
            self.carry_out().await;
            self.store_attempts().await;
            let deadline = self.book.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                message = recv(&mut self.client) => match message {
                    Ok(Some(message)) => {
                        if matches!(message, SignalMessage::Incoming(_)) {
                            self.check_unlocked().await;
                        }
                        self.book.handle_signal(message, Instant::now())
                    }
                    Ok(None) => self.signaling_lost("the signaling server closed the connection".into()),
                    Err(error) => self.signaling_lost(error.to_string()),
                },
                Some(report) = reports.recv() => match report {
                    SessionReport::Signal(message) => {
                        let live = message.session().is_some_and(|s| self.book.is_live(s));
                        if live {
                            self.send(message).await;
                        }
                    }
                    SessionReport::Connected(session) => {
                        self.book.handle_peer_connected(&session, Instant::now())
                    }
                    SessionReport::Secured(session, local, remote) => {
                        self.book.handle_peer_secured(&session, local, remote)
                    }
                    SessionReport::Lost(session, reason) => self.book.handle_peer_lost(&session, reason),
                    SessionReport::Chat(session, text) => self.chat_received(session, text),
                    SessionReport::File(session, event) => self.file_event(session, event),
                    SessionReport::FileOffered(session, offer) => self.emit(PuppetEvent::FileOffered { session, offer }),
                    SessionReport::FileNotSent(session, path, reason) => {
                        self.emit(PuppetEvent::FileNotSent { session: Some(session), path, reason });
                    }
                    SessionReport::FileProgress(session, transfers) => {
                        self.emit(PuppetEvent::FileProgress { session, transfers });
                    }
                },
                Some(request) = file_requests.recv() => self.file_request(request).await,
                Some(request) = user_requests.recv() => self.user_request(request),
                Some((session, decision)) = decisions.recv() => {
                    self.book.handle_decision(&session, decision, Instant::now());
                }
                Some(result) = reconnected.recv() => match result {
                    Ok(client) => {
                        tracing::info!("connected to the signaling server again");
                        self.client = Some(client);
                        self.book.handle_signaling_connected();
                    }
                    Err(error) => self.book.handle_signaling_lost(error.to_string(), Instant::now()),
                },
                _ = sleep => self.book.handle_timeout(Instant::now()),
            }
        }
        self.book.handle_shutdown();
        self.carry_out().await;
        let tasks: Vec<JoinHandle<()>> = self.sessions.drain().map(|(_, (_, task))| task).collect();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
        if let Some(client) = self.client.take() {
            let _ = client.close().await;
        }
        // Threads stop last: every session's releases have been queued by now. Stopping them
        // joins them (the injector first carries out what is queued), so not on a worker.
        let _ = tokio::task::spawn_blocking(move || {
            drop(pipeline);
            drop(injector);
        })
        .await;
    }

    /// A transfer event from a session: an offer not taken at once goes to the terminal.
    fn file_event(&mut self, session: SessionId, event: rtcdesk_files::TransferEvent) {
        if let rtcdesk_files::TransferEvent::Offered { offer, safe_name } = &event {
            if !self.context.accept_files {
                let from = self
                    .book
                    .sessions()
                    .into_iter()
                    .find(|info| info.session == session)
                    .map(|info| info.name)
                    .unwrap_or_default();
                self.asker.ask_file(FileQuestion {
                    session: session.clone(),
                    from,
                    id: offer.id,
                    safe_name: safe_name.clone(),
                    size: offer.size,
                });
            }
        }
        self.emit(PuppetEvent::File { session, event });
    }

    /// Hands the user's file request to the session(s) it is for.
    async fn file_request(&mut self, request: FileRequest) {
        match request {
            FileRequest::Send { to, path } => {
                let targets: Vec<SessionId> = match &to {
                    Some(session) => vec![session.clone()],
                    None => self
                        .book
                        .sessions()
                        .into_iter()
                        .filter(|info| info.state == crate::SessionState::Connected)
                        .map(|info| info.session)
                        .collect(),
                };
                let mut sent = false;
                for session in targets {
                    if let Some((tx, _)) = self.sessions.get(&session) {
                        sent |= tx
                            .send(SessionCommand::SendFile(path.clone()))
                            .await
                            .is_ok();
                    }
                }
                if !sent {
                    self.emit(PuppetEvent::FileNotSent {
                        session: to,
                        path,
                        reason: "no controller is connected".into(),
                    });
                }
            }
            FileRequest::Answer {
                session,
                id,
                accept,
            } => {
                self.command(&session, SessionCommand::AnswerFile { id, accept })
                    .await
            }
            FileRequest::Cancel {
                session,
                direction,
                id,
            } => {
                self.command(&session, SessionCommand::CancelFile { direction, id })
                    .await
            }
        }
    }

    /// Puts the user's request about a session (or the code) to the book.
    fn user_request(&mut self, request: UserRequest) {
        match request {
            UserRequest::Disconnect(session) => self.book.handle_disconnect(&session),
            UserRequest::SetViewOnly(session, false) if self.context.view_only => {
                tracing::info!(%session, "--view-only: nobody may control");
            }
            UserRequest::SetViewOnly(session, view_only) => {
                self.book.handle_set_view_only(&session, view_only)
            }
            UserRequest::NewCode => self.book.handle_new_code(),
        }
    }

    /// A controller's chat line, shown with the name it asked to connect with.
    fn chat_received(&mut self, session: SessionId, text: String) {
        let from = self
            .book
            .sessions()
            .into_iter()
            .find(|info| info.session == session)
            .map_or_else(|| "controller".to_owned(), |info| info.name);
        let line = rtcdesk_proto::chat::ChatLine {
            from,
            text,
            at: std::time::SystemTime::now(),
        };
        self.emit(PuppetEvent::Chat { session, line });
    }

    fn signaling_lost(&mut self, reason: String) {
        tracing::warn!(%reason, "lost the signaling connection");
        self.client = None;
        self.book.handle_signaling_lost(reason, Instant::now());
    }

    fn reconnect(&self) {
        let (url, tls, report) = (
            self.signal_url.clone(),
            self.tls.clone(),
            self.reconnected.clone(),
        );
        tokio::spawn(async move {
            let _ = report.send(SignalClient::connect(&url, &tls).await).await;
        });
    }

    async fn send(&mut self, message: SignalMessage) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        if let Err(error) = client.send(&message).await {
            self.signaling_lost(error.to_string());
        }
    }

    async fn carry_out(&mut self) {
        // The book is already in its new state: publish it before the events that announce it.
        self.publish_sessions();
        while let Some(output) = self.book.poll_output() {
            match output {
                Output::Send(message) => self.send(message).await,
                Output::Ask(request) => self.asker.ask(request),
                Output::StartPeer(session) => {
                    let (tx, rx) = mpsc::channel(256);
                    let mut context = self.context.clone();
                    // The role the user gave this session; `--view-only` makes every one so.
                    context.view_only |= self.book.view_only(&session);
                    let task = tokio::spawn(session::run(session.clone(), context, rx));
                    self.sessions.insert(session, (tx, task));
                }
                Output::Deliver(session, message) => {
                    self.command(&session, SessionCommand::Remote(message))
                        .await;
                }
                Output::StartVideo(session) => {
                    let quality = self.book.quality(&session);
                    self.command(&session, SessionCommand::StartVideo(quality))
                        .await;
                }
                Output::SetQuality(session, quality) => {
                    self.command(&session, SessionCommand::SetQuality(quality))
                        .await;
                }
                Output::SetViewOnly(session, view_only) => {
                    self.command(&session, SessionCommand::SetViewOnly(view_only))
                        .await;
                }
                Output::ClosePeer(session) => {
                    self.command(&session, SessionCommand::Close).await;
                    // The task ends by itself; on shutdown it is awaited.
                    if let Some((_, task)) = self.sessions.get(&session) {
                        if task.is_finished() {
                            self.sessions.remove(&session);
                        }
                    }
                }
                Output::Event(event) => self.emit(event),
                Output::ConnectSignaling => self.reconnect(),
            }
        }
        self.publish_sessions();
        self.sessions.retain(|_, (_, task)| !task.is_finished());
    }

    fn publish_sessions(&self) {
        *self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = self.book.sessions();
    }

    async fn command(&mut self, session: &SessionId, command: SessionCommand) {
        if let Some((tx, _)) = self.sessions.get(session) {
            let _ = tx.send(command).await;
        }
    }
}

/// The next signaling message, or never when the connection is gone.
async fn recv(
    client: &mut Option<SignalClient>,
) -> Result<Option<SignalMessage>, rtcdesk_signal::client::ClientError> {
    match client {
        Some(client) => client.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_network_print_without_escapes() {
        assert_eq!(printable("ev\u{1b}[2Jil"), "ev[2Jil");
        assert_eq!(printable(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn an_embedded_server_on_loopback_has_no_lan_url() {
        let (local, lan) = embedded_urls("127.0.0.1:4000".parse().unwrap());
        assert_eq!(local, "ws://127.0.0.1:4000/");
        assert!(lan.is_empty());
        let (local, _) = embedded_urls("0.0.0.0:4000".parse().unwrap());
        assert_eq!(local, "ws://127.0.0.1:4000/");
    }
}
