//! `puppet`: share this computer's screen with controllers that know its code.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rtcdesk_media::EncoderKind;
use rtcdesk_proto::signal::MemberStatus;
use rtcdesk_puppet::unattended::{default_config_dir, AttemptLog, DeviceStore};
use rtcdesk_puppet::{
    AcceptPolicy, EndReason, Puppet, PuppetConfig, PuppetEvent, SessionState, Signaling, Source,
    UnattendedSetup,
};
use rtcdesk_signal::tls::TlsOptions;

/// Share this computer's screen with a controller and let it control the mouse and keyboard.
///
/// On a desktop the puppet opens a window with its control code. Someone runs `controller`
/// on another computer and enters the code, you accept in the window, and they see your
/// screen and control it. The window lists who is connected (disconnect each, or let them only
/// watch), takes files they send (accept or decline), and has a chat. Closing it ends every
/// session. Without a display, or with --no-window, the same happens in this terminal: it
/// prints the code and asks there. Ctrl-C ends every session and exits.
///
/// For a machine nobody sits at, `puppet set-password` once, then `puppet --unattended`: it
/// keeps a permanent device ID, and `controller --device ID` gets in with the password.
#[derive(Debug, Parser)]
#[command(name = "puppet", version, after_help = AFTER_HELP)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Unattended access: register this machine's permanent device ID (made by `puppet
    /// set-password`) instead of showing a one-time code, and let in, without asking, every
    /// controller that proves it holds the password; refuse everyone else (browsers too). Wrong
    /// passwords back off (1 s, 2 s, 4 s, …) and lock access after 10 in a row until `puppet
    /// unlock`. For a machine nobody sits at, typically as a service (packaging/).
    #[arg(long, conflicts_with_all = ["join", "accept_all"])]
    unattended: bool,

    /// The config folder for unattended access (device ID, password key, wrong-password log).
    #[arg(
        long,
        value_name = "DIR",
        env = "RTCDESK_CONFIG_DIR",
        global = true,
        default_value_os_t = default_config_dir_or_here()
    )]
    config_dir: PathBuf,

    /// Signaling server to register with (ws://HOST:PORT/ or wss://HOST/). Without it, the
    /// puppet starts its own on every interface, port 8443 (a free port when that is taken),
    /// and prints the URLs that reach it, so on a LAN nothing else is needed.
    #[arg(long, value_name = "URL", env = "RTCDESK_SIGNAL")]
    signal: Option<String>,

    /// Address and port of the embedded signaling server when --signal is not given. When
    /// the port is taken, a free one is used (the URLs printed say which).
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8443")]
    listen: SocketAddr,

    /// What to share: `x11` (the X display, the default when DISPLAY is set) or `synthetic`
    /// (a generated test desktop that also shows the input it receives).
    #[arg(long, value_name = "x11|synthetic")]
    source: Option<String>,

    /// Size of the synthetic desktop.
    #[arg(long, value_name = "WxH", default_value = "1280x720", value_parser = parse_size)]
    synthetic_size: (u32, u32),

    /// The name controllers see (default: this machine's host name).
    #[arg(long)]
    name: Option<String>,

    /// Every controller may watch but not control: its mouse, keys, clipboard and files are
    /// refused. Without it you choose per controller at the accept prompt (`y` for control,
    /// `v` to let it watch only); with --unattended it is the role of every session.
    #[arg(long)]
    view_only: bool,

    /// A STUN server (HOST:PORT) for reaching controllers behind NAT; repeat for more.
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

    /// The AV1 encoder: `aom` (libaom realtime, low latency, the default) or `rav1e`
    /// (pure Rust, holds ~4 frames, much slower).
    #[arg(long, default_value = "aom")]
    encoder: EncoderKind,

    /// Also write the video that is sent to this IVF file (play it with `dav1d -i FILE` or
    /// ffplay).
    #[arg(long, value_name = "FILE.ivf")]
    record: Option<PathBuf>,

    /// Most frames per second sent; fewer while little changes, none while the screen is still.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=240))]
    fps: u32,

    /// Scale the picture down to fit inside this size before sending (keeps the aspect
    /// ratio), e.g. 1280x720 for slow links.
    #[arg(long, value_name = "WxH", value_parser = parse_size)]
    max_size: Option<(u32, u32)>,

    /// Accept every controller that knows the code without asking. Only for tests and
    /// deliberate unattended use: anyone with the code gets control.
    #[arg(long)]
    accept_all: bool,

    /// Let in only controllers that verify the session end to end: those given all 12 digits
    /// of the code. Browsers and controllers given the first 9 digits only are refused (the
    /// signaling server sees those 9, so without the last 3 it could be the one asking).
    #[arg(long)]
    require_verified: bool,

    /// Seconds to wait for an answer in the accept dialog (or prompt) before rejecting.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    prompt_timeout: u64,

    /// For wss:// with a self-signed server: trust the certificate with this SHA-256
    /// fingerprint (as `rtcdesk-signal` prints it).
    #[arg(long, value_name = "HEX")]
    signal_fingerprint: Option<String>,

    /// For wss:// with a private CA: trust the CA certificates in this PEM file too.
    #[arg(long, value_name = "FILE.pem")]
    signal_ca: Option<PathBuf>,

    /// Join a proctor's room with the room code it handed out, instead of showing a control
    /// code: the proctor watches this screen (and may take control) with no further question,
    /// because starting the puppet with the code is the consent. The terminal says, for as
    /// long as it lasts, who watches. Give the proctor's server with --signal.
    #[arg(long, value_name = "ROOM-CODE", requires = "signal")]
    join: Option<String>,

    /// Where files controllers send are written (created if missing). Default: your Downloads
    /// folder (XDG_DOWNLOAD_DIR, else ~/Downloads) + rtcdesk/. A file never replaces one that
    /// is there: it gets a name like "name (1).ext".
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,

    /// Accept every file a controller offers, without asking (for scripts). Without it, the
    /// window asks with Accept and Decline (or the terminal: `accept NAME (SIZE) from
    /// "CONTROLLER"? [y/N]`); with neither to ask on, offers are declined. View-only sessions
    /// never may send files.
    #[arg(long)]
    accept_files: bool,

    /// A file to offer to each controller once it is connected; repeatable. Its user is asked
    /// to accept it. While running, drop a file onto the window (or type `/send PATH` in the
    /// terminal) to offer it to every connected controller.
    #[arg(long, value_name = "FILE")]
    send: Vec<PathBuf>,

    /// Stay in this terminal even on a desktop: print the code and ask here (`y`, `v` or `n`),
    /// type chat lines, `/send PATH`. Without a display (no DISPLAY or WAYLAND_DISPLAY) this
    /// is how the puppet runs anyway, and so it does with --unattended and --join.
    #[arg(long)]
    no_window: bool,

    /// Do not share the clipboard. By default text a controller copies lands on this
    /// machine's clipboard, and text copied here during a session goes to the controllers
    /// (never to view-only ones).
    #[arg(long)]
    no_clipboard: bool,
}

/// What else the puppet program does besides sharing the screen: unattended access's setup.
#[derive(Debug, Subcommand)]
enum Command {
    /// Set or change the password for unattended access (`puppet --unattended`). Makes this
    /// machine's permanent device ID on first use. Asks twice on a terminal; otherwise reads
    /// one line from standard input. Only an Argon2id key of it is stored (mode 0600, in the
    /// config folder); neither the password nor the key ever reaches the signaling server.
    /// Also clears the count of wrong passwords and a lock.
    SetPassword {
        /// Draw a new device ID (and token) too: controllers need the new ID.
        #[arg(long)]
        new_id: bool,
    },
    /// Let controllers in again after wrong passwords locked unattended access. A running
    /// `puppet --unattended` notices at the next attempt; no restart needed.
    Unlock,
    /// Show the device ID and how many wrong passwords came since you last looked (and mark
    /// them seen). Put `puppet status --quiet` in your shell's profile to be told at each
    /// login.
    Status {
        /// Print only when there were wrong passwords or access is locked.
        #[arg(long)]
        quiet: bool,
    },
}

/// The default config folder, or "." when no home folder is known (then `--config-dir` is
/// needed to do anything useful, and the error says so when a file is missing).
fn default_config_dir_or_here() -> PathBuf {
    default_config_dir().unwrap_or_else(|_| PathBuf::from("."))
}

const AFTER_HELP: &str = "\
Examples:
  puppet                          share the X display; a controller on the LAN connects with
                                  the URL and code this prints
  puppet --source synthetic --accept-all
                                  a test desktop anyone with the code may control
  puppet --signal wss://signal.example.org/ --stun stun.l.google.com:19302
                                  register with a public signaling server, reach controllers
                                  behind NAT
  puppet --signal wss://signal.example.org/ --join 123456789
                                  join the exam room whose code the proctor gave out
  puppet set-password && puppet --unattended --signal wss://signal.example.org/
                                  reach this machine later with `controller --device ID`
                                  and the password, with nobody at it

Logs: RUST_LOG=debug for details.";

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not WIDTHxHEIGHT, e.g. 1280x720"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {text:?}"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {text:?}"))?;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(format!("{text:?}: each side must be 16..=8192"));
    }
    Ok((w, h))
}

fn config(args: Args) -> Result<PuppetConfig> {
    let source = match args.source.as_deref() {
        Some("synthetic") => Source::Synthetic {
            width: args.synthetic_size.0,
            height: args.synthetic_size.1,
        },
        Some("x11") => Source::X11 { display: None },
        None if std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()) => {
            Source::X11 { display: None }
        }
        None => bail!(
            "no X display (DISPLAY is not set): use --source synthetic for a test desktop, \
             or run on a desktop session"
        ),
        Some(other) => bail!("--source {other:?}: expected x11 or synthetic"),
    };
    let mut config = PuppetConfig::new(source);
    if let Some(name) = args.name {
        config.name = name;
    }
    config.view_only = args.view_only;
    config.require_verified = args.require_verified;
    if let Some(code) = &args.join {
        config.join = Some(
            code.parse()
                .map_err(|e| anyhow::anyhow!("--join {code:?}: {e}"))?,
        );
    }
    config.encoder = args.encoder;
    config.fps = args.fps;
    config.max_size = args.max_size;
    config.record = args.record;
    config.accept = if args.accept_all {
        AcceptPolicy::All
    } else {
        AcceptPolicy::Prompt {
            timeout: Duration::from_secs(args.prompt_timeout.max(1)),
        }
    };
    config.signaling = match args.signal {
        Some(url) => Signaling::Url(url),
        None => Signaling::Embedded {
            listen: args.listen,
        },
    };
    config.tls = match (args.signal_fingerprint, args.signal_ca) {
        (Some(fp), _) => TlsOptions::pinned(&fp).context("--signal-fingerprint")?,
        (None, Some(path)) => {
            let pem = std::fs::read(&path)
                .with_context(|| format!("reading --signal-ca {}", path.display()))?;
            TlsOptions::with_ca_pem(&pem).context("--signal-ca")?
        }
        (None, None) => TlsOptions::default(),
    };
    for stun in &args.stun {
        let addr = stun
            .to_socket_addrs()
            .with_context(|| format!("--stun {stun}: cannot resolve (expected HOST:PORT)"))?
            .find(SocketAddr::is_ipv4)
            .with_context(|| format!("--stun {stun}: no IPv4 address"))?;
        config.stun_servers.push(addr);
    }
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
    config.terminal_chat = true;
    config.download_dir = args.download_dir;
    config.accept_files = args.accept_files;
    config.clipboard = !args.no_clipboard;
    if args.unattended {
        config.unattended = Some(UnattendedSetup {
            store: DeviceStore::new(args.config_dir),
            policy: Default::default(),
        });
        // Nobody is there to answer a prompt: the password is the consent.
        config.accept = AcceptPolicy::All;
        config.require_verified = true;
    }
    Ok(config)
}

/// `puppet set-password`, `unlock`, `status`.
fn run_command(command: Command, config_dir: PathBuf) -> Result<()> {
    let store = DeviceStore::new(config_dir);
    match command {
        Command::SetPassword { new_id } => {
            let password = read_new_password()?;
            rtcdesk_pake::check_new_password(&password)?;
            let claim = store.device_or_create(new_id)?;
            let key = rtcdesk_pake::DeviceKey::derive(claim.id, &password);
            store.set_key(claim.id, &key)?;
            tell_attempts(&store.attempts().unwrap_or_default());
            store.set_attempts(&AttemptLog::default())?;
            println!("Password set for unattended access.");
            println!("Device ID:   {}", claim.id);
            println!(
                "Start it:    puppet --unattended --signal URL   (or the service in packaging/)"
            );
            println!(
                "Connect:     controller --signal URL --device {}",
                claim.id.digits()
            );
            println!(
                "Stored:      an Argon2id key of the password in {} (mode 0600); the signaling \
                 server never sees the password.",
                store.dir().join("device-password").display()
            );
        }
        Command::Unlock => {
            let log = store.attempts()?;
            tell_attempts(&log);
            store.set_attempts(&AttemptLog::default())?;
            println!("Unattended access is unlocked.");
        }
        Command::Status { quiet } => {
            let log = store.attempts()?;
            if quiet && log.summary().is_none() {
                return Ok(());
            }
            match store.device()? {
                Some(claim) if store.key(claim.id)?.is_some() => {
                    println!("Device ID: {} (unattended access is set up)", claim.id)
                }
                _ if quiet => {}
                _ => println!(
                    "Unattended access is not set up here ({}): run `puppet set-password`.",
                    store.dir().display()
                ),
            }
            tell_attempts(&log);
            if log.unseen > 0 {
                store.set_attempts(&AttemptLog { unseen: 0, ..log })?;
            }
        }
    }
    Ok(())
}

fn tell_attempts(log: &AttemptLog) {
    match log.summary() {
        Some(line) => println!("{line}."),
        None => println!("No wrong passwords since you last looked."),
    }
}

/// A new password: typed twice without echo on a terminal, else one line of standard input.
fn read_new_password() -> Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password for unattended access: ")?;
        let second = rpassword::prompt_password("The same again: ")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if let Some(command) = args.command.take() {
        return match run_command(command, args.config_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("puppet: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("puppet: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = if wants_window(&args) {
        run_window(&runtime, args)
    } else {
        runtime.block_on(run(args))
    };
    // The terminal's stdin read blocks a thread until a line comes: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("puppet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the puppet opens its window: on a desktop, unless told not to, and not for
/// unattended access (nobody is there to look) or a room member (the terminal says who
/// watches).
fn wants_window(args: &Args) -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let display = set("DISPLAY") || set("WAYLAND_DISPLAY");
    display && !args.no_window && !args.unattended && args.join.is_none()
}

/// Whoever starts the puppet by hand is its owner looking: tell them about wrong passwords
/// (a service only logs them), and mark them seen unless this is the service.
fn tell_owner(args: &Args) {
    let store = DeviceStore::new(args.config_dir.clone());
    if let Ok(log) = store.attempts() {
        if let Some(line) = log.summary() {
            println!("{line}.");
            if !args.unattended {
                let _ = store.set_attempts(&AttemptLog { unseen: 0, ..log });
            }
        }
    }
}

/// The puppet with its window: the window runs on this (the main) thread, the puppet on the
/// runtime beside it. Closing the window, or Ctrl-C, ends every session.
fn run_window(runtime: &tokio::runtime::Runtime, args: Args) -> Result<()> {
    use rtcdesk_puppet::desk::Desk;
    use rtcdesk_puppet::window::{DeskEvent, DeskHandles, PuppetWindow};
    let event_loop = match winit::event_loop::EventLoop::<DeskEvent>::with_user_event().build() {
        Ok(event_loop) => event_loop,
        Err(error) => {
            eprintln!("puppet: cannot open a window ({error}); asking in this terminal instead");
            return runtime.block_on(run(args));
        }
    };
    tell_owner(&args);
    let send = args.send.clone();
    let view_only = args.view_only;
    let mut config = config(args)?;
    // The window asks, and takes chat lines: stdin stays unread.
    config.terminal_chat = false;
    config.answer_files = true;
    let timeout = match config.accept {
        AcceptPolicy::Prompt { timeout } => {
            config.accept = AcceptPolicy::Application { timeout };
            timeout
        }
        _ => Duration::from_secs(30),
    };
    let accept_all = matches!(config.accept, AcceptPolicy::All);
    let puppet = runtime
        .block_on(Puppet::start(config))
        .context("could not start")?;
    // Printed too, for whoever started it from a terminal (and for scripts).
    println!("Control code: {}", puppet.pairing_code());
    println!("Signaling:    {}", puppet.signal_url());
    for url in puppet.lan_urls() {
        println!(
            "From the LAN: controller --signal {url} {}",
            code_digits(&puppet.pairing_code())
        );
    }
    if accept_all {
        println!("Every controller with the code is accepted (--accept-all).");
    }
    println!("The window asks before anyone connects; closing it ends every session.");
    let desk = Desk::new(
        &puppet.pairing_code(),
        puppet.signal_url().to_owned(),
        puppet.lan_urls().to_vec(),
        timeout,
        !view_only,
    );
    let handles = DeskHandles {
        controls: puppet.controls(),
        chat: puppet.chat_sender(),
        files: puppet.files(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let serving = runtime.spawn(serve_window(
        puppet,
        event_loop.create_proxy(),
        stop_rx,
        send,
    ));
    let mut app = PuppetWindow::new(desk, handles);
    let ran = event_loop.run_app(&mut app);
    println!("Leaving…");
    let _ = stop_tx.send(());
    let _ = runtime.block_on(serving);
    println!("Bye.");
    ran.context("the window's event loop failed")?;
    match app.error() {
        Some(error) => bail!("{error} (--no-window runs the puppet in this terminal)"),
        None => Ok(()),
    }
}

/// Hands the puppet's events to the window until it closes (or Ctrl-C), then shuts the
/// puppet down.
async fn serve_window(
    mut puppet: Puppet,
    proxy: winit::event_loop::EventLoopProxy<rtcdesk_puppet::window::DeskEvent>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    send: Vec<PathBuf>,
) {
    use rtcdesk_puppet::window::DeskEvent;
    let files = puppet.files();
    let controls = puppet.controls();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::signal::ctrl_c() => {
                let _ = proxy.send_event(DeskEvent::Stopped(None));
                break;
            }
            event = puppet.next_event() => match event {
                Some(event) => {
                    if let PuppetEvent::SessionConnected { session } = &event {
                        for path in &send {
                            if let Err(error) = files.send_to(session.clone(), path.clone()) {
                                eprintln!("cannot send {}: {error}", path.display());
                            }
                        }
                    }
                    print_event(&puppet, &event, false);
                    if proxy.send_event(DeskEvent::Puppet(event, controls.sessions())).is_err() {
                        break;
                    }
                }
                None => {
                    let _ = proxy.send_event(DeskEvent::Stopped(Some("the puppet stopped".into())));
                    break;
                }
            },
        }
    }
    puppet.shutdown().await;
}

async fn run(args: Args) -> Result<()> {
    let send = args.send.clone();
    let unattended = args.unattended;
    tell_owner(&args);
    let config = config(args)?;
    let accept_all = matches!(config.accept, AcceptPolicy::All);
    let require_verified = config.require_verified;
    let joining = config.join.is_some();
    let mut puppet = Puppet::start(config).await.context("could not start")?;
    if joining {
        return run_room_member(puppet).await;
    }
    if unattended {
        let id = puppet.control_code();
        println!("Device ID:    {id} (unattended: controllers need its password; nobody is asked)");
        println!("Signaling:    {}", puppet.signal_url());
        println!(
            "Connect with: controller --signal {} --device {}",
            puppet.signal_url(),
            id.digits()
        );
    } else {
        println!("Control code: {}", puppet.pairing_code());
        println!("Signaling:    {}", puppet.signal_url());
    }
    for url in puppet.lan_urls() {
        if unattended {
            println!(
                "From the LAN: controller --signal {url} --device {}",
                puppet.control_code().digits()
            );
        } else {
            println!(
                "From the LAN: controller --signal {url} {}",
                code_digits(&puppet.pairing_code())
            );
        }
    }
    if require_verified && !unattended {
        println!("Only controllers given all 12 digits get in (--require-verified): no browsers.");
    }
    if accept_all && !unattended {
        println!("Every controller with the code is accepted (--accept-all).");
    }
    println!("Waiting for controllers; Ctrl-C to stop. Lines you type are chat to them; /send PATH offers a file.");
    let files = puppet.files();
    let mut shown_code = puppet.pairing_code();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            event = puppet.next_event() => match event {
                // The first code was printed above; only a new one is news.
                Some(PuppetEvent::Registered { pairing, .. }) if pairing == shown_code => {}
                Some(event) => {
                    if let PuppetEvent::Registered { pairing, .. } = &event {
                        shown_code = *pairing;
                    }
                    if let PuppetEvent::SessionConnected { session } = &event {
                        for path in &send {
                            if let Err(error) = files.send_to(session.clone(), path.clone()) {
                                eprintln!("cannot send {}: {error}", path.display());
                            }
                        }
                    }
                    print_event(&puppet, &event, unattended);
                }
                None => break,
            },
        }
    }
    println!("Leaving…");
    puppet.shutdown().await;
    println!("Bye.");
    Ok(())
}

/// `--join`: one session with the room's proctor; the puppet stops when it ends.
async fn run_room_member(mut puppet: Puppet) -> Result<()> {
    println!("Joining room {}; Ctrl-C to leave.", puppet.control_code());
    let result = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break Ok(()),
            event = puppet.next_event() => match event {
                Some(PuppetEvent::JoinedRoom { room_name, .. }) => println!(
                    "Joined \"{}\": its proctor can see this screen while this runs.",
                    clean(&room_name)
                ),
                Some(PuppetEvent::Watched { by, state, .. }) => println!(
                    "{}",
                    match state {
                        MemberStatus::Watching => format!("\"{}\" is watching your screen.", clean(&by)),
                        MemberStatus::Controlled => format!("\"{}\" is controlling your screen.", clean(&by)),
                        _ => format!("\"{}\" is not looking at your screen now (still in the room).", clean(&by)),
                    }
                ),
                // The proctor ended the room or left: nothing to wait for. (A session ended by
                // a lost signaling connection is joined again once it is back.)
                Some(PuppetEvent::SessionEnded { reason: EndReason::Left, .. }) => {
                    println!("The proctor ended the session.");
                    break Ok(());
                }
                Some(PuppetEvent::SessionEnded { reason, .. }) => {
                    println!("The room session ended: {reason}.");
                }
                Some(PuppetEvent::JoinFailed { reason }) => {
                    break Err(anyhow::anyhow!("cannot join the room again: {reason}"));
                }
                Some(PuppetEvent::SignalingLost { reason }) => println!(
                    "Lost the signaling server ({reason}); joining again when it is back."
                ),
                Some(_) => {}
                None => break Ok(()),
            },
        }
    };
    println!("Leaving the room…");
    puppet.shutdown().await;
    result
}

/// The code as digits only, for a command line to copy.
fn code_digits(code: &rtcdesk_pake::PairingCode) -> String {
    code.to_string().replace(' ', "")
}

fn print_event(puppet: &Puppet, event: &PuppetEvent, unattended: bool) {
    match event {
        PuppetEvent::Registered { device: true, .. } => {}
        PuppetEvent::Registered { pairing, .. } => println!("New control code: {pairing}"),
        PuppetEvent::Incoming { from, verified: true, .. } if unattended => {
            println!("\"{}\" gave the right password and is connecting.", clean(from))
        }
        PuppetEvent::VerificationFailed { from, failed_runs, .. } if unattended => println!(
            "\"{}\" gave a wrong password: refused ({failed_runs} in a row).",
            clean(from)
        ),
        PuppetEvent::Attempts { locked: true, consecutive } => println!(
            "{consecutive} wrong passwords in a row: unattended access is LOCKED until you run `puppet unlock`."
        ),
        PuppetEvent::Incoming { from, verified: true, .. } => {
            println!("\"{}\" holds your code and is asking to connect.", clean(from))
        }
        PuppetEvent::Incoming { from, verified: false, .. } => println!(
            "\"{}\" is asking to connect from a browser or with the first 9 digits only: \
             this session is NOT verified end to end (the signaling server could be the one asking).",
            clean(from)
        ),
        PuppetEvent::VerificationFailed { from, failed_runs, .. } => println!(
            "\"{}\" does not hold the whole code (wrong last digits, or someone guessing): refused ({failed_runs} of {} tries for this code).",
            clean(from),
            rtcdesk_puppet::MAX_FAILED_RUNS
        ),
        PuppetEvent::CodeRetired { failed_runs } => println!(
            "{failed_runs} failed tries: this code is retired. Give controllers the new one below."
        ),
        PuppetEvent::Declined { from, .. } => println!("\"{}\" was not let in.", clean(from)),
        PuppetEvent::SessionStarted { name, view_only: false, .. } => println!("\"{}\" accepted; connecting…", clean(name)),
        PuppetEvent::SessionStarted { name, view_only: true, .. } => {
            println!("\"{}\" accepted to watch only (no input, clipboard or files); connecting…", clean(name))
        }
        PuppetEvent::SessionConnected { .. } => {}
        PuppetEvent::Chat { line, .. } => println!("{line}"),
        PuppetEvent::File { event, .. } => eprintln!("{}", rtcdesk_files::describe(event)),
        PuppetEvent::FileOffered { offer, .. } => eprintln!(
            "offered {} ({}) as file {}",
            rtcdesk_files::name::safe_name(&offer.name),
            rtcdesk_files::bytes(offer.size),
            offer.id
        ),
        PuppetEvent::FileNotSent { path, reason, .. } => {
            eprintln!("cannot send {}: {reason}", path.display())
        }
        PuppetEvent::FileProgress { transfers, .. } => {
            for (offer, direction, progress) in transfers {
                eprintln!(
                    "{}",
                    rtcdesk_files::describe_progress(offer, *direction, progress)
                );
            }
        }
        PuppetEvent::SessionEnded { session, reason } => {
            println!("Session {session} ended: {reason}.");
        }
        PuppetEvent::SignalingLost { reason } => println!(
            "Lost the signaling server ({reason}); connecting again; new controllers need the new code shown once it is back."
        ),
        _ => {}
    }
    if matches!(
        event,
        PuppetEvent::SessionConnected { .. } | PuppetEvent::SessionEnded { .. }
    ) {
        let connected: Vec<String> = puppet
            .sessions()
            .into_iter()
            .filter(|s| s.state == SessionState::Connected)
            .map(|s| {
                let role = if s.view_only {
                    "watching"
                } else {
                    "in control"
                };
                format!("\"{}\" ({role})", clean(&s.name))
            })
            .collect();
        if connected.is_empty() {
            println!("Nobody is connected.");
        } else {
            println!("Connected: {}", connected.join(", "));
        }
    }
}

/// A name from the network as it is safe to print.
fn clean(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}
