//! `controller`: shows a puppet's screen in a window and sends it input.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use rtcdesk_controller::headless::{png_sink, HeadlessOptions};
use rtcdesk_controller::ice_report::kind_name;
use rtcdesk_controller::window::{
    FrameSlot, Paired, SessionParts, UserEvent, WindowApp, WindowSink,
};
use rtcdesk_controller::window_clipboard::WindowClipboard;
use rtcdesk_controller::{
    stats, Controller, ControllerConfig, ControllerEvent, FileCommands, FrameSink, KeyboardMode,
    EXIT_CONNECTION_LOST, EXIT_OTHER, EXIT_USAGE,
};
use rtcdesk_files::{TransferEvent, TransferTracker};
use rtcdesk_signal::tls::TlsOptions;
use winit::event_loop::EventLoopProxy;

/// The signaling server when none is given: a puppet with its embedded server on this machine.
const DEFAULT_SIGNAL: &str = "ws://127.0.0.1:8443/";

const EXIT_CODES: &str = "\
Exit codes:
  0  the session was closed by you (window closed, Ctrl-C, or --headless saved its
     --frames pictures and sent its --send files, or reached --seconds)
  1  any other error (the message says which), or with --headless --send, a file that did
     not arrive
  2  usage error (bad option or control code)
  3  no puppet has this control code (mistyped or expired)
  4  the puppet's user refused the connection (or did not answer)
  5  the signaling server could not be reached
  6  the connection to the puppet failed or was lost (puppet stopped, network gone); when no
     path works, one line says which candidate kinds each side tried and which TURN server
     failed (wrong credentials, unreachable, full)
  7  end-to-end verification failed: the puppet does not hold the 12 digits typed (check the
     last three) or, with --device, the password is wrong; or the connection may be
     intercepted (the signaling server, or someone on the way, is in the middle); nothing was
     sent to it

With all 12 digits of the code, the session is verified end to end: the signaling server never
sees the last three, and a server that tries to sit in the middle is detected (exit code 7).
With the first 9 only, it connects unverified, as a browser does.

Once connected it prints the path in use (`connected over local=KIND remote=KIND`, KIND being
host, srflx, prflx or relay) and `first picture after N ms` (counted from the start).

In the window, move the pointer to the top edge for the toolbar: Chat, Files (the puppet's
offers wait there for Accept or Decline), Keyboard, Stats (both sides' figures) and
Disconnect. Ctrl+Alt+Shift releases the keyboard to your own desktop (keys stay here,
everything held on the puppet is released); press it again to take the keyboard back.

Without a code the window opens on its connect screen: type or paste the code, or pick a puppet
connected to before ($XDG_CONFIG_HOME/rtcdesk/recent.json keeps their 9-digit control codes,
never the last three digits).";

/// Connects to a puppet by its control code and shows its screen; mouse and keyboard input in
/// the window are replayed on the puppet once its user has accepted.
#[derive(Debug, Clone, Parser)]
#[command(name = "controller", version, after_help = EXIT_CODES)]
struct Args {
    /// The puppet's control code, as it shows it: 12 digits, spaces optional ("123 456 789
    /// 012"). The first 9 alone also connect, but without end-to-end verification. Without
    /// a code (and without --headless) the window opens on its connect screen: type or paste
    /// the code there, or pick a puppet connected to before.
    #[arg(num_args = 1..=4)]
    code: Vec<String>,

    /// Unattended access: connect to the puppet with this device ID (`puppet --unattended`
    /// prints it) and its password instead of a one-time code. The password is asked for on
    /// the terminal, or read from --password-file or RTCDESK_DEVICE_PASSWORD; it never leaves
    /// this machine (both ends prove they know it with SPAKE2 over an Argon2id key of it).
    #[arg(long, value_name = "ID", conflicts_with_all = ["code", "room"])]
    device: Option<String>,

    /// With --device: read the password from the first line of this file (`-`: standard
    /// input).
    #[arg(long, value_name = "FILE", requires = "device")]
    password_file: Option<PathBuf>,

    /// Proctor mode: open a room called NAME (default: "NAME's room" from --name) on the
    /// signaling server, print its code, and watch every puppet that joins it
    /// (`puppet --signal URL --join CODE`) as a grid. With --headless, a grid PNG is written
    /// into --out every second (--frames of them, then the room ends and the controller exits
    /// 0). The grid window is not there yet.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "", conflicts_with = "code")]
    room: Option<String>,

    /// The signaling server, as the puppet prints it (ws://HOST:PORT/ or wss://…). Without
    /// it, ws://127.0.0.1:8443/ (a puppet with an embedded server on this machine).
    #[arg(long, value_name = "URL", env = "RTCDESK_SIGNAL")]
    signal: Option<String>,

    /// Your name, shown to the puppet's user when they are asked to accept.
    #[arg(long)]
    name: Option<String>,

    /// How keys are replayed: "map" presses the key at the same position (shortcuts, games);
    /// "translate" types the character you typed, whatever the puppet's keyboard layout.
    #[arg(long, value_enum, default_value = "map")]
    keyboard: Keyboard,

    /// A STUN server (HOST:PORT) for connecting across NATs; repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    stun: Vec<String>,

    /// A TURN relay, for when no direct path works (symmetric NATs, blocked UDP):
    /// `turn:HOST:PORT` (UDP), `turn:HOST:PORT?transport=tcp` (for networks that block UDP)
    /// or `turns:HOST:PORT` (TLS, for firewalls that pass only TLS, e.g. port 443); repeatable.
    /// Needs --turn-user and --turn-password.
    #[arg(long, value_name = "URL")]
    turn: Vec<String>,

    /// The TURN user name (for a server with a shared secret: `EXPIRY:LABEL`).
    #[arg(long, value_name = "NAME", requires = "turn")]
    turn_user: Option<String>,

    /// The TURN password (or set RTCDESK_TURN_PASSWORD, which keeps it out of `ps`).
    #[arg(
        long,
        value_name = "SECRET",
        env = "RTCDESK_TURN_PASSWORD",
        hide_env_values = true
    )]
    turn_password: Option<String>,

    /// Trust the CA certificates in this PEM file for `turns:` servers, besides the public CAs
    /// (a company CA, or a TURN server's self-signed certificate).
    #[arg(long, value_name = "FILE.pem", requires = "turn")]
    turn_ca: Option<PathBuf>,

    /// Offer only relayed candidates: traffic always goes through the TURN server, and the
    /// other side never learns this machine's addresses. Needs --turn, or a signaling server
    /// that hands out a TURN server (`rtcdesk-signal --turn … --turn-secret …`).
    #[arg(long)]
    relay_only: bool,

    /// Trust a wss:// server whose certificate has this SHA-256 fingerprint (as
    /// `rtcdesk-signal` prints it for a self-signed certificate).
    #[arg(long, value_name = "FINGERPRINT", conflicts_with = "ca")]
    insecure_pin: Option<String>,

    /// Trust wss:// servers whose certificate is signed by the CA in this PEM file.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,

    /// No window: save decoded pictures as PNG files into --out and print stats.
    #[arg(long, requires = "out")]
    headless: bool,

    /// With --headless: how many pictures to save; then the controller exits with code 0.
    #[arg(long, value_name = "N", default_value_t = 10)]
    frames: u32,

    /// With --headless: stop after S seconds even if fewer than --frames pictures came (a
    /// still screen sends none), save the latest picture, and exit with code 0.
    #[arg(long, value_name = "S", requires = "headless")]
    seconds: Option<f64>,

    /// With --headless: save every k-th decoded picture.
    #[arg(long, value_name = "K", default_value_t = 1)]
    every: u32,

    /// With --headless: the folder for frame-00000.png, … (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// A chat line for the puppet's user, sent once connected; repeatable (sent in order).
    /// Lines the puppet's user writes back are printed on stderr.
    #[arg(long, value_name = "TEXT")]
    chat: Vec<String>,

    /// A file to send to the puppet once connected; repeatable. The puppet's user is asked to
    /// accept it (a puppet started with --accept-files takes it at once). With --headless the
    /// controller waits until every file has arrived, and exits with 1 if one did not. In the
    /// window, drop a file on it to send it.
    #[arg(long, value_name = "FILE")]
    send: Vec<PathBuf>,

    /// Where files from the puppet are saved (created if missing; default: the Downloads
    /// folder's rtcdesk folder). A file is written as NAME.part and gets its name only once its
    /// SHA-256 matches; nothing is ever overwritten.
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,

    /// Accept every file the puppet offers, without asking. Without it, the window's files
    /// panel opens with "Accept" and "Decline" for each offer; with --headless the puppet's
    /// offers are declined.
    #[arg(long)]
    accept_files: bool,

    /// Do not share the clipboard. By default, text copied on this machine goes to the puppet
    /// when the window gains the focus, and text copied on the puppet lands on this machine's
    /// clipboard.
    #[arg(long)]
    no_clipboard: bool,

    /// How long the puppet's user may take to accept, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    accept_timeout: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Keyboard {
    Map,
    Translate,
}

impl From<Keyboard> for KeyboardMode {
    fn from(keyboard: Keyboard) -> Self {
        match keyboard {
            Keyboard::Map => KeyboardMode::Map,
            Keyboard::Translate => KeyboardMode::Translate,
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let code = if error.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = error.print();
            return ExitCode::from(code as u8);
        }
    };
    if let Some(room) = &args.room {
        return match run_room(&args, room) {
            Ok(code) => ExitCode::from(code as u8),
            Err(error) => {
                eprintln!("controller: {error:#}");
                ExitCode::from(EXIT_OTHER as u8)
            }
        };
    }
    let connect_screen = args.code.is_empty() && args.device.is_none();
    if connect_screen && args.headless {
        eprintln!("controller: --headless needs the puppet's control code (or --device ID)");
        return ExitCode::from(EXIT_USAGE as u8);
    }
    let config = if connect_screen {
        None
    } else {
        match config(&args) {
            Ok(config) => Some(config),
            Err(error) => {
                eprintln!("controller: {error:#}");
                return ExitCode::from(EXIT_USAGE as u8);
            }
        }
    };
    let result = match config {
        Some(config) if args.headless => run_headless(&args, config),
        config => run_window(config, &args),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(error) => {
            eprintln!("controller: {error:#}");
            ExitCode::from(EXIT_OTHER as u8)
        }
    }
}

fn config(args: &Args) -> anyhow::Result<ControllerConfig> {
    let url = args
        .signal
        .clone()
        .unwrap_or_else(|| DEFAULT_SIGNAL.to_owned());
    let mut config = match &args.device {
        Some(id) => {
            let id: rtcdesk_proto::signal::ControlCode = id
                .parse()
                .map_err(|_| anyhow::anyhow!("--device {id:?}: a device ID is 9 digits"))?;
            let password = device_password(args.password_file.as_deref())?;
            // Argon2id takes a moment and 19 MiB, on purpose; no runtime is running yet.
            let key = rtcdesk_pake::DeviceKey::derive(id, &password);
            ControllerConfig::for_device(url, id, key)
        }
        None => {
            let code: rtcdesk_pake::PairingCode = args
                .code
                .join("")
                .parse()
                .map_err(|e| anyhow::anyhow!("{e} (got {:?})", args.code.join(" ")))?;
            ControllerConfig::for_pairing(url, code)
        }
    };
    if let Some(name) = &args.name {
        config.name = name.clone();
    }
    config.keyboard = args.keyboard.into();
    config.accept_timeout = Duration::from_secs(args.accept_timeout);
    config.stun_servers = args
        .stun
        .iter()
        .map(|server| resolve(server))
        .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
    config.turn_servers = rtcdesk_peer::TurnServer::resolve_all(
        &args.turn,
        args.turn_user.as_deref(),
        args.turn_password.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    if let Some(ca) = &args.turn_ca {
        rtcdesk_peer::TurnServer::trust_ca_file(&mut config.turn_servers, ca)
            .map_err(anyhow::Error::msg)?;
    }
    config.relay_only = args.relay_only;
    config.download_dir = args.download_dir.clone();
    config.accept_files = args.accept_files;
    if let Some(fingerprint) = &args.insecure_pin {
        config.tls = TlsOptions::pinned(fingerprint).context("--insecure-pin")?;
    } else if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        config.tls = TlsOptions::with_ca_pem(&pem).context("--ca")?;
    }
    if args.frames == 0 {
        anyhow::bail!("--frames must be at least 1");
    }
    if let Some(seconds) = args.seconds {
        if !(seconds > 0.0 && seconds <= 86_400.0) {
            anyhow::bail!("--seconds must be more than 0 and at most 86400");
        }
    }
    Ok(config)
}

/// The device password: from the file (`-`: stdin), else RTCDESK_DEVICE_PASSWORD, else asked
/// on the terminal without echo.
fn device_password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let first_line = |text: &str| text.lines().next().unwrap_or("").to_string();
    let password = match file {
        Some(path) if path == std::path::Path::new("-") => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            first_line(&line)
        }
        Some(path) => first_line(
            &std::fs::read_to_string(path)
                .with_context(|| format!("--password-file {}", path.display()))?,
        ),
        None => match std::env::var("RTCDESK_DEVICE_PASSWORD") {
            Ok(password) => password,
            Err(_) if std::io::stdin().is_terminal() => {
                rpassword::prompt_password("Password of the puppet: ")?
            }
            Err(_) => anyhow::bail!(
                "--device needs the password: type it on a terminal, or give --password-file \
                 FILE or RTCDESK_DEVICE_PASSWORD"
            ),
        },
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    if password.len() > rtcdesk_pake::MAX_PASSWORD_BYTES {
        anyhow::bail!(
            "the password is longer than {} bytes",
            rtcdesk_pake::MAX_PASSWORD_BYTES
        );
    }
    Ok(password)
}

fn resolve(server: &str) -> anyhow::Result<SocketAddr> {
    server
        .to_socket_addrs()
        .with_context(|| format!("--stun {server}: not HOST:PORT, or the name does not resolve"))?
        .next()
        .with_context(|| format!("--stun {server}: no address"))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rtcdesk-net")
        .enable_all()
        .build()
        .context("cannot start the network threads")
}

/// Why pairing failed: the process's exit code and the words printed (which the connect
/// screen shows).
#[derive(Debug)]
struct ConnectFailure {
    exit_code: i32,
    message: String,
}

/// Connects, telling the user what is happening; on failure prints why and gives the exit code.
async fn connect(
    config: ControllerConfig,
    sink: Box<dyn FrameSink>,
    chat: &[String],
    send: &[PathBuf],
) -> Result<Controller, ConnectFailure> {
    let device = matches!(config.secret, Some(rtcdesk_pake::Credential::Password(_)));
    if device {
        eprintln!(
            "controller: asking {} for device {} — proving the password…",
            config.signal_url, config.code
        );
    } else {
        eprintln!(
            "controller: asking {} for puppet {} — waiting for its user to accept…",
            config.signal_url, config.code
        );
    }
    if config.secret.is_none() {
        eprintln!(
            "controller: only 9 digits given: this session is NOT verified end to end (give all \
             12 the puppet shows to be sure it is the puppet you mean and nobody is in between)"
        );
    }
    match Controller::connect(config, sink).await {
        Ok(controller) => {
            eprintln!("controller: connected");
            send_chat(&controller, chat);
            let files = controller.files();
            for path in send {
                if let Err(error) = files.send(path.clone()) {
                    eprintln!("controller: cannot send {}: {error}", path.display());
                }
            }
            Ok(controller)
        }
        Err(rtcdesk_controller::ConnectError::NotVerified(rtcdesk_pake::PakeError::WrongCode))
            if device =>
        {
            let message = "wrong password for this device (or the connection is being \
                 intercepted); each wrong password makes the puppet wait longer before the next \
                 try, and 10 in a row lock it until its owner unlocks it"
                .to_owned();
            eprintln!("controller: {message}");
            Err(ConnectFailure {
                exit_code: rtcdesk_controller::EXIT_NOT_VERIFIED,
                message,
            })
        }
        Err(error) => {
            eprintln!("controller: {error}");
            Err(ConnectFailure {
                exit_code: error.exit_code(),
                message: error.to_string(),
            })
        }
    }
}

/// Prints the path in use and the time to the first picture: what a user (or a script, such as
/// `cargo xtask nat`) asks first about a connection.
fn say_progress(event: &ControllerEvent) {
    match event {
        ControllerEvent::PathSelected(pair) => eprintln!(
            "controller: connected over local={} remote={} ({} -> {})",
            kind_name(pair.local_kind),
            kind_name(pair.remote_kind),
            pair.local,
            pair.remote
        ),
        ControllerEvent::FirstPicture(after) => {
            eprintln!("controller: first picture after {} ms", after.as_millis())
        }
        ControllerEvent::Verified => eprintln!(
            "controller: verified end to end: the puppet holds the whole code and nobody is in between"
        ),
        _ => {}
    }
}

/// Sends the --chat lines; a line that cannot go is reported, the others still go.
fn send_chat(controller: &Controller, lines: &[String]) {
    let chat = controller.chat_sender();
    for line in lines {
        if let Err(error) = chat.try_send(line) {
            eprintln!("controller: chat line {line:?} {error}");
        }
    }
}

/// Prints what the user must see whatever the mode: chat lines from the puppet's user.
fn print_event(event: &ControllerEvent) {
    if let ControllerEvent::Chat(line) = event {
        eprintln!(
            "controller: chat from {}: {} ({} UTC)",
            rtcdesk_proto::chat::printable(&line.from, 64),
            rtcdesk_proto::chat::printable(&line.text, 4096),
            line.clock()
        );
    }
}

/// What to do with a file the puppet offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OfferPolicy {
    /// `--accept-files`: the session takes it.
    Accept,
    /// The window asks its user (its files panel lists the offer).
    Ask,
    /// Nobody to ask: declined.
    Decline,
}

/// Prints what happened to a file, answers the puppet's offers as `policy` says, and keeps
/// `tracker` up to date.
fn on_file_event(
    event: &ControllerEvent,
    files: &FileCommands,
    policy: OfferPolicy,
    tracker: &mut TransferTracker,
) {
    match event {
        ControllerEvent::File(transfer) => {
            eprintln!("controller: {}", rtcdesk_files::describe(transfer));
            if let TransferEvent::Offered { offer, safe_name } = transfer {
                if policy == OfferPolicy::Accept {
                    tracker.accepted(offer.id);
                } else if policy == OfferPolicy::Ask {
                    eprintln!(
                        "controller: {safe_name} waits for \"Accept\" in the window's files panel"
                    );
                } else {
                    eprintln!("controller: declined (start the controller with --accept-files to take files)");
                    if let Err(error) =
                        files.decline(offer.id, "the controller does not take files")
                    {
                        eprintln!("controller: cannot decline file {}: {error}", offer.id);
                    }
                }
            }
            tracker.on_event(transfer);
        }
        ControllerEvent::FileOffered(offer) => {
            eprintln!(
                "controller: offered {} ({}) as file {}",
                rtcdesk_files::name::safe_name(&offer.name),
                rtcdesk_files::bytes(offer.size),
                offer.id
            );
            tracker.offered(offer.id);
        }
        ControllerEvent::FileNotSent { path, reason } => {
            eprintln!("controller: cannot send {}: {reason}", path.display());
            tracker.not_offered();
        }
        ControllerEvent::FileProgress(live) => {
            for (offer, direction, progress) in live {
                eprintln!(
                    "controller: {}",
                    rtcdesk_files::describe_progress(offer, *direction, progress)
                );
            }
        }
        _ => {}
    }
}

fn run_headless(args: &Args, config: ControllerConfig) -> anyhow::Result<i32> {
    let out = args.out.clone().context("--headless needs --out DIR")?;
    let (sink, mut writer) = png_sink(HeadlessOptions {
        frames: args.frames,
        every: args.every,
        out: out.clone(),
        keep_latest: args.seconds.is_some(),
    })
    .with_context(|| format!("cannot create {}", out.display()))?;
    let runtime = runtime()?;
    let mut timed_out = false;
    let mut tracker = TransferTracker::new(args.send.len());
    let code = runtime.block_on(async {
        let mut controller = match connect(config, Box::new(sink), &args.chat, &args.send).await {
            Ok(controller) => controller,
            Err(failure) => return failure.exit_code,
        };
        let files = controller.files();
        let mut last_stats = None;
        let time_limit = time_limit(args.seconds);
        tokio::pin!(time_limit);
        let mut pictures_done = false;
        let ctrl_c = tokio::signal::ctrl_c();
        tokio::pin!(ctrl_c);
        let code = loop {
            if pictures_done && tracker.is_done() {
                break 0;
            }
            tokio::select! {
                _ = &mut ctrl_c => {
                    eprintln!("controller: closing (Ctrl-C)");
                    break 0;
                }
                _ = writer.done(), if !pictures_done => {
                    pictures_done = true;
                    if !tracker.is_done() {
                        eprintln!("controller: all pictures saved; waiting for the files");
                    }
                }
                _ = &mut time_limit => {
                    timed_out = true;
                    break 0;
                }
                event = controller.next_event() => match event {
                    Some(ControllerEvent::Stats(stats)) => {
                        eprintln!("controller: {}", stats::figures(&stats));
                        last_stats = Some(stats);
                    }
                    Some(ControllerEvent::Ended(reason)) => {
                        eprintln!("controller: {reason}");
                        break reason.exit_code();
                    }
                    Some(event) => {
                        say_progress(&event);
                        print_event(&event);
                        let policy = if args.accept_files { OfferPolicy::Accept } else { OfferPolicy::Decline };
                        on_file_event(&event, &files, policy, &mut tracker);
                    }
                    None => break EXIT_CONNECTION_LOST,
                },
            }
        };
        controller.close().await;
        tracker.session_ended();
        if let Some(stats) = last_stats {
            eprintln!("controller: last second: {}", stats::figures(&stats));
        }
        code
    });
    let summary = writer.finish().context("writing PNG files")?;
    let files_failed = tracker.failed();
    if tracker.completed() + files_failed > 0 {
        eprintln!(
            "controller: files: {} arrived, {} did not",
            tracker.completed(),
            files_failed
        );
    }
    if summary.files.is_empty() && code != 0 {
        return Ok(code);
    }
    let mut ages: Vec<Duration> = summary.stamp_ages.clone();
    ages.sort();
    println!(
        "saved {} pictures ({}x{}) into {}",
        summary.files.len(),
        summary.size.0,
        summary.size.1,
        out.display()
    );
    if !ages.is_empty() {
        println!(
            "glass-to-glass (stamped pictures): median {}, max {}",
            stats::millis(ages[ages.len() / 2]),
            stats::millis(ages[ages.len() - 1])
        );
    }
    if timed_out && summary.files.is_empty() {
        eprintln!("controller: no picture arrived within --seconds");
        return Ok(EXIT_OTHER);
    }
    if code == 0 && !timed_out && summary.files.len() < args.frames as usize {
        eprintln!(
            "controller: the session ended after {} of {} pictures",
            summary.files.len(),
            args.frames
        );
        return Ok(EXIT_OTHER);
    }
    if code == 0 && files_failed > 0 {
        return Ok(EXIT_OTHER);
    }
    Ok(code)
}

/// `--room`: the proctor. Headless only for now: a grid PNG a second.
fn run_room(args: &Args, room_name: &str) -> anyhow::Result<i32> {
    use rtcdesk_controller::grid;
    use rtcdesk_controller::room::{Proctor, ProctorConfig, RoomEvent};
    if !args.headless {
        anyhow::bail!(
            "the proctor's grid window is not there yet: use --room with --headless --out DIR"
        );
    }
    let out = args.out.clone().context("--headless needs --out DIR")?;
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let name = args.name.clone().unwrap_or_else(|| {
        rtcdesk_signal::client::default_name(rtcdesk_signal::client::ClientSide::Controller)
    });
    let tls = if let Some(fingerprint) = &args.insecure_pin {
        TlsOptions::pinned(fingerprint).context("--insecure-pin")?
    } else if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
        TlsOptions::with_ca_pem(&pem).context("--ca")?
    } else {
        TlsOptions::default()
    };
    let signal_url = args
        .signal
        .clone()
        .unwrap_or_else(|| DEFAULT_SIGNAL.to_owned());
    let config = ProctorConfig {
        signal_url: signal_url.clone(),
        tls,
        room_name: if room_name.is_empty() {
            format!("{name}'s room")
        } else {
            room_name.to_owned()
        },
        bind: None,
        decoder_threads: 1,
    };
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut proctor = match Proctor::open(config).await {
            Ok(proctor) => proctor,
            Err(error) => {
                eprintln!("controller: {error}");
                return Ok(error.exit_code());
            }
        };
        let tiles = proctor.tiles();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut written = 0u32;
        let code = loop {
            tokio::select! {
                _ = tick.tick() => {
                    let snapshot: Vec<grid::Tile> = tiles
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .values()
                        .cloned()
                        .collect();
                    let (width, height, rgba) = grid::render(&snapshot, std::time::Instant::now());
                    let path = out.join(format!("grid-{written:05}.png"));
                    rtcdesk_controller::headless::write_png(&path, width, height, &rgba)
                        .with_context(|| format!("writing {}", path.display()))?;
                    written += 1;
                    if written >= args.frames {
                        break 0;
                    }
                }
                event = proctor.next_event() => match event {
                    Some(RoomEvent::Opened { code, expires_in }) => eprintln!(
                        "controller: room code {code} (for {} min): each puppet joins with \
                         puppet --signal {signal_url} --join {}",
                        expires_in.as_secs() / 60,
                        code.digits()
                    ),
                    Some(RoomEvent::Joined { name, .. }) => eprintln!("controller: \"{}\" joined", rtcdesk_proto::chat::printable(&name, 64)),
                    Some(RoomEvent::Left { session }) => eprintln!("controller: member {session} left"),
                    Some(RoomEvent::Refused(line)) => eprintln!("controller: the signaling server refused: {line}"),
                    Some(RoomEvent::Ended) | None => {
                        eprintln!("controller: the room ended");
                        break EXIT_CONNECTION_LOST;
                    }
                    Some(_) => {}
                },
            }
        };
        proctor.end().await;
        eprintln!("controller: wrote {written} grid pictures into {}", out.display());
        Ok(code)
    })
}

/// Lines typed on the terminal, read on a thread of their own (stdin blocks).
fn terminal_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next typed line; `None` once stdin closed; never without a terminal.
async fn next_line(lines: &mut Option<tokio::sync::mpsc::Receiver<String>>) -> Option<String> {
    match lines {
        Some(lines) => lines.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves after `seconds` (never without a limit).
async fn time_limit(seconds: Option<f64>) {
    match seconds {
        Some(seconds) => tokio::time::sleep(Duration::from_secs_f64(seconds)).await,
        None => std::future::pending().await,
    }
}

/// Sets a paired session up for the window: its events go to the window (printed on the way,
/// files answered as `--accept-files` says), lines typed on the terminal are chat, and the
/// clipboard is shared unless turned off. Returns what the window drives.
fn attach_session(
    runtime: &tokio::runtime::Handle,
    controller: &mut Controller,
    code: &str,
    proxy: &EventLoopProxy<UserEvent>,
    args: &Args,
) -> SessionParts {
    let mut events = controller.take_events();
    let files = controller.files();
    // The window's files panel asks about the puppet's files; lines typed on the terminal the
    // window was started from are chat, shown in the window's chat too.
    let policy = if args.accept_files {
        OfferPolicy::Accept
    } else {
        OfferPolicy::Ask
    };
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin());
    let mut lines = if terminal {
        Some(terminal_lines())
    } else {
        None
    };
    let forward = proxy.clone();
    runtime.spawn(async move {
        let mut tracker = TransferTracker::default();
        loop {
            let event = tokio::select! {
                event = events.recv() => match event {
                    Some(event) => event,
                    None => break,
                },
                line = next_line(&mut lines) => {
                    match line {
                        Some(line) if !line.trim().is_empty() => {
                            if forward.send_event(UserEvent::TypedChat(line)).is_err() {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => lines = None,
                    }
                    continue;
                }
            };
            say_progress(&event);
            print_event(&event);
            on_file_event(&event, &files, policy, &mut tracker);
            if forward.send_event(UserEvent::Controller(event)).is_err() {
                break;
            }
        }
    });
    let clipboard = if args.no_clipboard {
        None
    } else {
        match rtcdesk_clipboard::SystemClipboard::open() {
            Ok(system) => Some(WindowClipboard::new(
                system,
                controller.clipboard_sender(),
                proxy.clone(),
            )),
            Err(error) => {
                eprintln!("controller: the clipboard is not shared ({error})");
                None
            }
        }
    };
    SessionParts {
        puppet: match controller.puppet_name() {
            Some(name) if !name.trim().is_empty() => format!("{name} ({code})"),
            _ => format!("puppet {code}"),
        },
        sender: controller.input_sender(),
        files: controller.files(),
        chat: controller.chat_sender(),
        clipboard,
    }
}

/// The window: paired first when the command line gave a code (`config`), else it opens on
/// the connect screen and pairs from there.
fn run_window(config: Option<ControllerConfig>, args: &Args) -> anyhow::Result<i32> {
    let event_loop = winit::event_loop::EventLoop::<UserEvent>::with_user_event()
        .build()
        .context("cannot open a window (no display? use --headless --out DIR)")?;
    let proxy = event_loop.create_proxy();
    let slot = Arc::new(FrameSlot::default());
    let runtime = runtime()?;
    // The session the window shows, kept here to be closed cleanly at the end.
    let session: Arc<std::sync::Mutex<Option<Controller>>> = Arc::default();
    let mut app = match config {
        Some(config) => {
            let keyboard = config.keyboard;
            let code = config.code.to_string();
            let sink = WindowSink::new(slot.clone(), proxy.clone());
            let connecting = connect(config, Box::new(sink), &args.chat, &args.send);
            let mut controller = match runtime.block_on(connecting) {
                Ok(controller) => controller,
                Err(failure) => return Ok(failure.exit_code),
            };
            // Size the window for the video: wait briefly for the first picture (a keyframe
            // follows the connection at once).
            slot.wait_for_size(Duration::from_secs(2));
            let parts = attach_session(runtime.handle(), &mut controller, &code, &proxy, args);
            *session.lock().unwrap_or_else(|e| e.into_inner()) = Some(controller);
            let mut app = WindowApp::new(parts.puppet, slot, parts.sender, keyboard)
                .with_files(parts.files)
                .with_chat(parts.chat);
            if let Some(clipboard) = parts.clipboard {
                app = app.with_clipboard(clipboard);
            }
            app
        }
        None => connect_screen_app(&runtime, slot, proxy.clone(), session.clone(), args),
    };
    // Ctrl-C in the terminal closes the session the way closing the window does.
    let quit = proxy.clone();
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = quit.send_event(UserEvent::Quit);
        }
    });
    let run = event_loop.run_app(&mut app);
    let controller = session.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(controller) = controller {
        // The timer must be made inside the runtime (tokio::time::timeout panics outside one).
        let _ = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(3), controller.close()).await
        });
    }
    run.context("the window's event loop failed")?;
    if let Some(error) = app.error() {
        eprintln!("controller: {error}");
    }
    Ok(app.exit_code())
}

/// The window on its connect screen: each attempt pairs on the runtime with the code and
/// server the person entered (everything else from the command line), and a paired session is
/// set up like one paired from the command line.
fn connect_screen_app(
    runtime: &tokio::runtime::Runtime,
    slot: Arc<FrameSlot>,
    proxy: EventLoopProxy<UserEvent>,
    session: Arc<std::sync::Mutex<Option<Controller>>>,
    args: &Args,
) -> WindowApp {
    let server = args
        .signal
        .clone()
        .unwrap_or_else(|| DEFAULT_SIGNAL.to_owned());
    let recent = match rtcdesk_ui::recent::default_path() {
        Some(path) => rtcdesk_ui::recent::RecentPuppets::load(&path),
        None => rtcdesk_ui::recent::RecentPuppets::default(),
    };
    let screen = rtcdesk_ui::connect::ConnectScreen::new(server, recent);
    let keyboard = args.keyboard.into();
    let start = {
        let runtime = runtime.handle().clone();
        let proxy = proxy.clone();
        let slot = slot.clone();
        let args = args.clone();
        Box::new(move |code: String, server: String| {
            let mut args = args.clone();
            args.code = vec![code];
            args.signal = Some(server);
            let config = match config(&args) {
                Ok(config) => config,
                Err(error) => {
                    let _ = proxy.send_event(UserEvent::PairingFailed(format!("{error:#}")));
                    return;
                }
            };
            let sink = WindowSink::new(slot.clone(), proxy.clone());
            let proxy = proxy.clone();
            runtime.spawn(async move {
                let outcome = connect(config, Box::new(sink), &args.chat, &args.send).await;
                let _ = proxy.send_event(match outcome {
                    Ok(controller) => UserEvent::Paired(Paired(Box::new(controller))),
                    Err(failure) => UserEvent::PairingFailed(failure.message),
                });
            });
        })
    };
    let attach = {
        let runtime = runtime.handle().clone();
        let args = args.clone();
        Box::new(move |mut controller: Controller, code: &str| {
            let parts = attach_session(&runtime, &mut controller, code, &proxy, &args);
            *session.lock().unwrap_or_else(|e| e.into_inner()) = Some(controller);
            parts
        })
    };
    WindowApp::connect_screen(slot, keyboard, screen, start, attach)
}
