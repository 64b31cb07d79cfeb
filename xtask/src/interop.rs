//! `cargo xtask interop`: the browser page and a second WebRTC stack against the real puppet.
//!
//! Starts coturn (STUN and TURN on loopback), `rtcdesk-signal` handing it out as `ice_servers`,
//! and two puppets on the synthetic desktop: one with its embedded signaling server (the page is
//! loaded from it; coturn as its STUN server) and one registered with `rtcdesk-signal` that
//! offers only relayed candidates. Then each cell runs a driver under `xtask/interop/` that
//! prints `RESULT name PASS|FAIL detail` and `FIGURE name value` lines:
//!
//! - `chromium`: Debian's headless Chromium (playwright-core, nothing downloaded) loads the page
//!   from the first puppet, pairs by code, and checks AV1 decoding, the pointer marker and the
//!   typed text in the decoded video, chat both ways (the run types on the puppet's stdin) and
//!   a 5 MiB file from the page that must land in the puppet's download folder with its
//!   SHA-256, and measures input to photon;
//! - `chromium-turn`: the same page from `rtcdesk-signal` against the relay-only puppet, so the
//!   session must go through coturn with the credentials the signaling server handed out;
//! - `chromium-view-only`: the page against a puppet started with `--view-only`, which must
//!   show the page its view-only badge;
//! - `aiortc`: a controller on aiortc (PyPI) pairs with the first puppet, counts the AV1 RTP and
//!   sends input events, which the puppet must report as injected in its log;
//! - `web-page`: `web/tests/browser.mjs`, the page in Chromium against `rtcdesk-signal` and a
//!   scripted puppet page: every error message of code entry, the exact input bytes of
//!   INPUT.md, chat, clipboard text and files (one damaged) both ways, the view-only badge;
//! - `web-files`: `web/tests/files.mjs`, the page's file codec and transfer without a browser.
//!
//! Prints a table and fails when any check failed. xtask/INTEROP.md says more.

mod procs;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use procs::Proc;

/// How long one cell's driver may run before it is stopped and counted as failed.
const CELL_LIMIT: Duration = Duration::from_secs(120);
/// How long a server may take to say it is ready.
const START_LIMIT: Duration = Duration::from_secs(30);
/// The puppet's log filter: its injected-input lines (debug) and warnings.
const PUPPET_LOG: &str = "warn,rtcdesk_puppet::injector=debug";

const HELP: &str = "\
usage: cargo xtask interop [--save] [--only CELL]

Runs the browser page (headless Chromium) and an aiortc controller against real puppets on the
synthetic desktop, with coturn as STUN/TURN server, and prints a table of checks.

  --save        also write the screenshot to web/screenshots/ and the SDP Chromium produced to
                testdata/fuzz/sdp/ (otherwise both stay in the target dir's interop/out/)
  --only CELL   run one cell: chromium, chromium-turn, chromium-view-only, aiortc, web-page
                or web-files

Logs of every program: <target dir>/interop/logs/. See xtask/INTEROP.md.
";

/// One line of the final table.
struct Check {
    name: String,
    outcome: Outcome,
    detail: String,
}

/// What became of a check.
#[derive(PartialEq)]
enum Outcome {
    Pass,
    Fail,
}

impl Outcome {
    fn of(passed: bool) -> Outcome {
        if passed {
            Outcome::Pass
        } else {
            Outcome::Fail
        }
    }
}

/// Runs the interop cells; an error when any check failed or a part could not start.
pub fn interop(args: &[String]) -> Result<(), String> {
    let mut save = false;
    let mut only: Option<String> = None;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--save" => save = true,
            "--only" => only = Some(iter.next().ok_or("--only takes a cell name")?.clone()),
            "-h" | "--help" => {
                print!("{HELP}");
                return Ok(());
            }
            other => return Err(format!("interop: unknown option `{other}`\n\n{HELP}")),
        }
    }
    let wanted = |cell: &str| only.as_deref().is_none_or(|o| o == cell);
    if let Some(cell) = &only {
        if !["chromium", "chromium-turn", "chromium-view-only", "aiortc"].contains(&cell.as_str()) {
            return Err(format!("interop: no cell `{cell}`\n\n{HELP}"));
        }
    }

    let started = Instant::now();
    let root = super::workspace_root();
    let dirs = Dirs::new(&root)?;
    crate::packages::ensure_installed()?;
    super::build_programs()?;
    if [
        "chromium",
        "chromium-turn",
        "chromium-view-only",
        "web-page",
        "web-files",
    ]
    .iter()
    .any(|cell| wanted(cell))
    {
        ensure_node_modules(&root)?;
    }
    let python = if wanted("aiortc") {
        Some(ensure_venv(&dirs.work)?)
    } else {
        None
    };

    let mut checks = Vec::new();
    let mut figures = Vec::new();
    let servers = Servers::start(&dirs)?;
    // The first puppet receives the page's file into a fresh folder, when it can.
    let downloads = dirs.work.join("downloads");
    let _ = std::fs::remove_dir_all(&downloads);
    std::fs::create_dir_all(&downloads)
        .map_err(|e| format!("creating {}: {e}", downloads.display()))?;
    let receives_files = puppet_receives_files(&dirs)?;
    let mut direct_args = servers.direct_args();
    if receives_files {
        direct_args.extend(["--accept-files".into(), "--download-dir".into()]);
        direct_args.push(downloads.display().to_string());
    }
    let mut direct = servers.puppet("puppet", &dirs, &direct_args)?;
    if wanted("chromium") {
        let url = page_url(&direct.signal)?;
        let out = if save {
            root.join("web/screenshots")
        } else {
            dirs.out.clone()
        };
        let sdp_out = if save {
            root.join("testdata/fuzz/sdp")
        } else {
            dirs.out.clone()
        };
        // The screenshot and the SDP go to different folders when saved into the tree.
        let env = [
            ("PAGE_URL", url),
            ("CODE", direct.code.clone()),
            ("CELL", "chromium".to_string()),
            ("OUT", out.display().to_string()),
            ("SDP_OUT", sdp_out.display().to_string()),
            ("SCREENSHOT", "browser-control.png".to_string()),
            ("SDP_PREFIX", "chromium-156".to_string()),
            ("CHAT", "1".to_string()),
            (
                "FILE_CHECK",
                if receives_files { "1" } else { "0" }.to_string(),
            ),
        ];
        // The driver asks for lines typed on the puppet's terminal (chat to the page).
        let mut typing_failed = Vec::new();
        let lines = run_node(
            &root,
            &dirs,
            "chromium",
            &env,
            &mut checks,
            &mut figures,
            |line| {
                if let Some(text) = line.strip_prefix("PUPPET_TYPE ") {
                    if let Err(e) = direct.proc.type_line(text) {
                        typing_failed.push(e);
                    }
                }
            },
        )?;
        if let Some(e) = typing_failed.first() {
            checks.push(Check {
                name: "chromium.chat_typed_on_puppet".into(),
                outcome: Outcome::Fail,
                detail: e.clone(),
            });
        }
        check_chat_reached_puppet(&lines, &mut direct, &mut checks);
        if receives_files {
            check_file_arrived(&lines, &downloads, &mut checks);
        } else {
            checks.push(Check {
                name: "chromium.file_5mib_sha256".into(),
                outcome: Outcome::Fail,
                detail: "not sent: this puppet has no --accept-files/--download-dir, so it cannot receive files".into(),
            });
        }
        if save {
            shrink_screenshot(&out.join("browser-control.png"));
        }
    }
    if wanted("chromium-turn") {
        let mut relayed = servers.puppet("puppet-relay-only", &dirs, &servers.relay_args())?;
        let env = [
            ("PAGE_URL", servers.page.clone()),
            ("CODE", relayed.code.clone()),
            ("CELL", "chromium-turn".to_string()),
            ("OUT", dirs.out.display().to_string()),
            ("SDP_OUT", dirs.out.display().to_string()),
            ("EXPECT_PATH", "relay".to_string()),
        ];
        run_node(
            &root,
            &dirs,
            "chromium-turn",
            &env,
            &mut checks,
            &mut figures,
            |_| {},
        )?;
        relayed.proc.stop();
    }
    if wanted("chromium-view-only") {
        let mut args = servers.direct_args();
        args.push("--view-only".into());
        let mut watched = servers.puppet("puppet-view-only", &dirs, &args)?;
        let env = [
            ("PAGE_URL", page_url(&watched.signal)?),
            ("CODE", watched.code.clone()),
            ("CELL", "chromium-view-only".to_string()),
            ("OUT", dirs.out.display().to_string()),
            ("SDP_OUT", dirs.out.display().to_string()),
            ("VIEW_ONLY", "1".to_string()),
        ];
        run_node(
            &root,
            &dirs,
            "chromium-view-only",
            &env,
            &mut checks,
            &mut figures,
            |_| {},
        )?;
        watched.proc.stop();
    }
    if let Some(python) = python {
        run_aiortc(
            &root,
            &dirs,
            &python,
            &mut direct,
            &servers,
            &mut checks,
            &mut figures,
        )?;
    }
    drop(direct);
    drop(servers);
    if wanted("web-page") {
        let signal = dirs.binary("rtcdesk-signal");
        let env = [("RTCDESK_SIGNAL", signal.display().to_string())];
        run_web_test(&root, &dirs, "web-page", "browser.mjs", &env, &mut checks)?;
    }
    if wanted("web-files") {
        run_web_test(&root, &dirs, "web-files", "files.mjs", &[], &mut checks)?;
    }
    print_table(&checks, &figures, started.elapsed());
    let failed = checks.iter().filter(|c| c.outcome == Outcome::Fail).count();
    if failed > 0 {
        return Err(format!(
            "interop: {failed} check(s) failed; logs in {}",
            dirs.logs.display()
        ));
    }
    Ok(())
}

/// Where the run keeps its logs, outputs and the aiortc virtualenv: under the target dir.
struct Dirs {
    work: PathBuf,
    logs: PathBuf,
    out: PathBuf,
}

impl Dirs {
    fn new(root: &Path) -> Result<Dirs, String> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let work = target.join("interop");
        let dirs = Dirs {
            logs: work.join("logs"),
            out: work.join("out"),
            work,
        };
        for dir in [&dirs.logs, &dirs.out] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        Ok(dirs)
    }

    fn binary(&self, name: &str) -> PathBuf {
        self.work.with_file_name("debug").join(name)
    }
}

/// playwright-core, pinned by xtask/interop/package-lock.json; no browser is downloaded.
fn ensure_node_modules(root: &Path) -> Result<(), String> {
    let folder = root.join("xtask/interop");
    if folder
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return Ok(());
    }
    super::step(
        "npm ci (playwright-core, no browser download)",
        Command::new("npm")
            .current_dir(&folder)
            .args(["ci", "--no-audit", "--no-fund"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
    )
}

/// A virtualenv with aiortc 1.x and websockets (PyPI wheels), made when missing or broken.
fn ensure_venv(work: &Path) -> Result<PathBuf, String> {
    let venv = work.join("venv");
    let python = venv.join("bin/python");
    let works = Command::new(&python)
        .args(["-c", "import aiortc, websockets"])
        .output()
        .is_ok_and(|out| out.status.success());
    if works {
        return Ok(python);
    }
    super::step(
        "python3 -m venv",
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    super::step(
        "pip install aiortc websockets",
        Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "aiortc==1.*",
            "websockets==17.*",
        ]),
    )?;
    Ok(python)
}

/// A loopback port nobody listens on now (UDP and TCP), for coturn.
fn free_port() -> Result<u16, String> {
    for _ in 0..20 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = udp.local_addr().map_err(|e| e.to_string())?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err("no free loopback port for coturn".into())
}

/// Waits until coturn accepts TCP on its port: its listeners (UDP and TCP) are then open. It
/// prints no line that says so.
fn wait_for_tcp(coturn: &mut Proc, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_LIMIT;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if !coturn.drain().is_empty() && coturn.has_exited() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "coturn: not listening on 127.0.0.1:{port} within {START_LIMIT:?}; last lines:\n{}",
        coturn.tail(12)
    ))
}

/// coturn, the signaling server, and what the puppets need to reach them.
struct Servers {
    stun: String,
    signal_url: String,
    page: String,
    // Stopped in reverse order by drop: the signaling server, then coturn.
    _signal: Proc,
    _coturn: Proc,
}

impl Servers {
    fn start(dirs: &Dirs) -> Result<Servers, String> {
        let port = free_port()?;
        let secret = format!("interop-{}", std::process::id());
        let mut coturn = Proc::start(
            "coturn",
            Command::new("turnserver")
                .args([
                    "-n",
                    "--listening-ip=127.0.0.1",
                    "--relay-ip=127.0.0.1",
                    &format!("--listening-port={port}"),
                    "--use-auth-secret",
                    &format!("--static-auth-secret={secret}"),
                    "--realm=interop.rtcdesk",
                    "--allow-loopback-peers",
                    "--no-cli",
                    "--fingerprint",
                    "--no-tls",
                    "--no-dtls",
                    "--log-file=stdout",
                ])
                .arg(format!(
                    "--pidfile={}",
                    dirs.logs.join("coturn.pid").display()
                )),
            &dirs.logs,
        )?;
        wait_for_tcp(&mut coturn, port)?;
        let stun = format!("127.0.0.1:{port}");
        let mut signal = Proc::start(
            "rtcdesk-signal",
            Command::new(dirs.binary("rtcdesk-signal"))
                .args(["--listen", "127.0.0.1:0", "--stun", &stun, "--turn"])
                .arg(format!("turn:127.0.0.1:{port}"))
                .env("RTCDESK_TURN_SECRET", &secret),
            &dirs.logs,
        )?;
        let page = signal.wait_for("`web page at`", START_LIMIT, |line| {
            line.strip_prefix("web page at ").map(str::to_owned)
        })?;
        let signal_url = signal.wait_for("`listening on`", START_LIMIT, |line| {
            line.strip_prefix("listening on ").map(str::to_owned)
        })?;
        Ok(Servers {
            stun,
            signal_url,
            page,
            _signal: signal,
            _coturn: coturn,
        })
    }

    /// The first puppet: its own signaling server (the page comes from it), coturn as STUN.
    fn direct_args(&self) -> Vec<String> {
        ["--listen", "127.0.0.1:0", "--stun", &self.stun]
            .map(str::to_owned)
            .to_vec()
    }

    /// The second puppet: registered with `rtcdesk-signal`, TURN from its `ice_servers`, and
    /// only relayed candidates, so every packet goes through coturn.
    fn relay_args(&self) -> Vec<String> {
        ["--signal", &self.signal_url, "--relay-only"]
            .map(str::to_owned)
            .to_vec()
    }

    fn puppet(&self, name: &str, dirs: &Dirs, extra: &[String]) -> Result<Puppet, String> {
        // stdin is a pipe: its terminal reads chat lines the run types there.
        let mut proc = Proc::start_typed(
            name,
            Command::new(dirs.binary("puppet"))
                .args(["--source", "synthetic", "--accept-all", "--name", name])
                .arg("--no-window")
                .args(extra)
                .env("RUST_LOG", PUPPET_LOG),
            &dirs.logs,
        )?;
        let code = proc.wait_for("its control code", START_LIMIT, |line| {
            line.strip_prefix("Control code: ")
                .map(|c| c.chars().filter(char::is_ascii_digit).collect::<String>())
        })?;
        let signal = proc.wait_for("its signaling URL", START_LIMIT, |line| {
            line.strip_prefix("Signaling:").map(|s| s.trim().to_owned())
        })?;
        Ok(Puppet { proc, code, signal })
    }
}

/// A running puppet and how to reach it.
struct Puppet {
    proc: Proc,
    code: String,
    signal: String,
}

/// The page's address on the server a `ws://HOST:PORT/signal` URL names.
fn page_url(signal: &str) -> Result<String, String> {
    let rest = signal
        .strip_prefix("ws://")
        .ok_or_else(|| format!("signaling URL {signal:?} is not ws://"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    Ok(format!("http://{host}/"))
}

/// Whether this build of the puppet can receive files: `--accept-files` and `--download-dir`
/// in its `--help`.
fn puppet_receives_files(dirs: &Dirs) -> Result<bool, String> {
    let out = Command::new(dirs.binary("puppet"))
        .arg("--help")
        .output()
        .map_err(|e| format!("puppet --help: {e}"))?;
    let help = String::from_utf8_lossy(&out.stdout);
    Ok(help.contains("--accept-files") && help.contains("--download-dir"))
}

/// The page's chat line (the driver's `CHAT_SENT <text>`) must appear in the puppet's output,
/// as `HH:MM:SS Chromium: <text>` (the name the page connected with).
fn check_chat_reached_puppet(lines: &[String], puppet: &mut Puppet, checks: &mut Vec<Check>) {
    let Some(text) = lines.iter().find_map(|l| l.strip_prefix("CHAT_SENT ")) else {
        return; // the driver reported why it sent nothing
    };
    let wanted = format!("Chromium: {text}");
    let found = puppet
        .proc
        .wait_for("the page's chat line", Duration::from_secs(10), |line| {
            line.ends_with(&wanted).then(|| line.to_owned())
        });
    checks.push(Check {
        name: "chromium.chat_page_to_puppet".into(),
        outcome: Outcome::of(found.is_ok()),
        detail: match found {
            Ok(line) => format!("puppet printed {line:?}"),
            Err(e) => e,
        },
    });
}

/// The file the driver gave the page (`FILE_SENT <name> <size> <sha256>`) must be in the
/// puppet's download folder under its name, with that size and SHA-256.
fn check_file_arrived(lines: &[String], downloads: &Path, checks: &mut Vec<Check>) {
    let Some(sent) = lines.iter().find_map(|l| l.strip_prefix("FILE_SENT ")) else {
        checks.push(Check {
            name: "chromium.file_5mib_sha256".into(),
            outcome: Outcome::Fail,
            detail: "the driver sent no file".into(),
        });
        return;
    };
    let mut parts = sent.split(' ');
    let (name, size, sha256) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = downloads.join(name);
    let outcome = match std::fs::metadata(&path) {
        Err(e) => Err(format!("{}: {e}", path.display())),
        Ok(meta) if meta.len().to_string() != size => Err(format!(
            "{} has {} bytes, {size} were sent",
            path.display(),
            meta.len()
        )),
        Ok(_) => match Command::new("sha256sum").arg(&path).output() {
            Err(e) => Err(format!("sha256sum: {e}")),
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let got = text
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                if got == sha256 {
                    Ok(format!("{} ({size} bytes), SHA-256 {got}", path.display()))
                } else {
                    Err(format!(
                        "{} has SHA-256 {got}, {sha256} was sent",
                        path.display()
                    ))
                }
            }
        },
    };
    checks.push(Check {
        name: "chromium.file_5mib_sha256".into(),
        outcome: Outcome::of(outcome.is_ok()),
        detail: outcome.unwrap_or_else(|e| e),
    });
}

/// Runs `xtask/interop/chromium.mjs` as one cell and collects its lines, handing each to
/// `on_line` as it comes (the driver may ask for something to happen mid-run).
fn run_node(
    root: &Path,
    dirs: &Dirs,
    cell: &str,
    env: &[(&str, String)],
    checks: &mut Vec<Check>,
    figures: &mut Vec<(String, String)>,
    on_line: impl FnMut(&str),
) -> Result<Vec<String>, String> {
    println!("==> cell {cell}");
    let mut command = Command::new("node");
    command
        .current_dir(root.join("xtask/interop"))
        .arg("chromium.mjs");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut driver = Proc::start(&format!("{cell}-driver"), &mut command, &dirs.logs)?;
    Ok(collect(
        cell,
        &mut driver,
        checks,
        figures,
        on_line,
        result_line,
    ))
}

/// Runs one of the page's own tests (`web/tests/NAME.mjs`, from `xtask/interop` where
/// playwright-core is installed). They print `ok   NAME: DETAIL` or `FAIL NAME: DETAIL` per check
/// (`files.mjs` prints `files: ok` once); each becomes a check of the table.
fn run_web_test(
    root: &Path,
    dirs: &Dirs,
    cell: &str,
    script: &str,
    env: &[(&str, String)],
    checks: &mut Vec<Check>,
) -> Result<(), String> {
    println!("==> cell {cell}");
    let mut command = Command::new("node");
    command
        .current_dir(root.join("xtask/interop"))
        .arg(root.join("web/tests").join(script));
    for (key, value) in env {
        command.env(key, value);
    }
    let mut driver = Proc::start(&format!("{cell}-driver"), &mut command, &dirs.logs)?;
    collect(
        cell,
        &mut driver,
        checks,
        &mut Vec::new(),
        |_| {},
        |line| web_test_line(cell, line),
    );
    Ok(())
}

/// A line of a page test as a check: `ok   NAME: DETAIL`, `FAIL NAME: DETAIL`, or `NAME: ok`.
fn web_test_line(cell: &str, line: &str) -> Option<Check> {
    let (outcome, rest) = if let Some(rest) = line.strip_prefix("ok   ") {
        (Outcome::Pass, rest)
    } else if let Some(rest) = line.strip_prefix("FAIL ") {
        (Outcome::Fail, rest)
    } else if let Some(name) = line.strip_suffix(": ok") {
        (Outcome::Pass, name)
    } else {
        return None;
    };
    let (name, detail) = rest.split_once(": ").unwrap_or((rest, ""));
    let mut shown: String = detail.chars().take(100).collect();
    if shown.len() < detail.len() {
        shown.push('…');
    }
    let detail = shown;
    Some(Check {
        name: format!("{cell}.{}", name.trim().replace(' ', "_")),
        outcome,
        detail,
    })
}

/// Halves the committed screenshot and reduces its palette (imagemagick), so the README's
/// picture stays small in git.
fn shrink_screenshot(png: &Path) {
    let status = Command::new("convert")
        .arg(png)
        .args(["-resize", "50%", "-colors", "64", "-strip"])
        .arg(png)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        println!("    (could not shrink {}; kept full size)", png.display());
    }
}

/// A driver's `RESULT name PASS|FAIL detail` line as a check; anything but `PASS` is a
/// failure, so a garbled line cannot pass.
fn result_line(line: &str) -> Option<Check> {
    let mut parts = line.strip_prefix("RESULT ")?.splitn(3, ' ');
    let name = parts.next().unwrap_or_default().to_string();
    let outcome = Outcome::of(parts.next() == Some("PASS"));
    let detail = parts.next().unwrap_or_default().to_string();
    Some(Check {
        name,
        outcome,
        detail,
    })
}

/// Reads a driver's RESULT and FIGURE lines to its end (or its time limit); a driver that
/// ends badly without saying why is a failed check of its own.
/// `check_of` reads a line as a check (`result_line` for the drivers under `xtask/interop`).
fn collect(
    cell: &str,
    driver: &mut Proc,
    checks: &mut Vec<Check>,
    figures: &mut Vec<(String, String)>,
    on_line: impl FnMut(&str),
    check_of: impl Fn(&str) -> Option<Check>,
) -> Vec<String> {
    let (lines, status) = driver.finish(CELL_LIMIT, on_line);
    let before = checks.len();
    for line in &lines {
        println!("    {line}");
        if let Some(check) = check_of(line) {
            checks.push(check);
        } else if let Some(rest) = line.strip_prefix("FIGURE ") {
            let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
            figures.push((name.to_string(), value.to_string()));
        }
    }
    let failed_quietly = !status.is_some_and(|s| s.success())
        && checks[before..].iter().all(|c| c.outcome == Outcome::Pass);
    if failed_quietly || checks.len() == before {
        checks.push(Check {
            name: format!("{cell}.driver"),
            outcome: Outcome::Fail,
            detail: match status {
                Some(status) => format!("{} ended {status}: {}", driver.name(), driver.tail(3)),
                None => format!("{} stopped after {CELL_LIMIT:?}", driver.name()),
            },
        });
    }
    lines
}

/// The aiortc cell: the driver, then the puppet's log must show each event it sent as injected.
fn run_aiortc(
    root: &Path,
    dirs: &Dirs,
    python: &Path,
    puppet: &mut Puppet,
    servers: &Servers,
    checks: &mut Vec<Check>,
    figures: &mut Vec<(String, String)>,
) -> Result<(), String> {
    println!("==> cell aiortc");
    let mut driver = Proc::start(
        "aiortc-driver",
        Command::new(python)
            .arg(root.join("xtask/interop/aiortc_controller.py"))
            .env("SIGNAL_URL", &puppet.signal)
            // A v1 controller: the nine routing digits (it does not run verified pairing).
            .env("CODE", puppet.code.get(..9).unwrap_or(&puppet.code))
            .env("CELL", "aiortc")
            .env("STUN_URL", format!("stun:{}", servers.stun)),
        &dirs.logs,
    )?;
    let lines = collect("aiortc", &mut driver, checks, figures, |_| {}, result_line);
    // What the driver sent, and the debug line the puppet's synthetic desktop writes for it.
    let expected = [
        (
            "pointer",
            "SENT pointer 13107 52428",
            "x_norm: 13107, y_norm: 52428",
        ),
        ("key", "SENT key KeyZ", "Key { code: KeyZ, pressed: true }"),
        (
            "text",
            "SENT text typed by aiortc",
            "Text(\"typed by aiortc\")",
        ),
    ];
    for (kind, sent, injected) in expected {
        if !lines.iter().any(|l| l == sent) {
            continue;
        }
        let what = sent.trim_start_matches("SENT ");
        let found = puppet.proc.wait_for(
            &format!("injected {what}"),
            Duration::from_secs(10),
            |line| (line.contains("injected") && line.contains(injected)).then_some(()),
        );
        checks.push(Check {
            name: format!("aiortc.puppet_injected_{kind}"),
            outcome: Outcome::of(found.is_ok()),
            detail: match found {
                Ok(()) => format!("puppet log: {injected}"),
                Err(e) => e,
            },
        });
    }
    let injected = puppet
        .proc
        .drain()
        .iter()
        .filter(|l| l.contains("synthetic desktop: injected"))
        .count();
    figures.push(("puppet.injected_actions_total".into(), injected.to_string()));
    Ok(())
}

fn print_table(checks: &[Check], figures: &[(String, String)], took: Duration) {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(10);
    println!("\ninterop results ({:.0} s)", took.as_secs_f64());
    println!("{:<width$}  {:<4}  detail", "check", "");
    for check in checks {
        let mark = match check.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
        };
        println!("{:<width$}  {mark}  {}", check.name, check.detail);
    }
    if !figures.is_empty() {
        println!("\nfigures");
        for (name, value) in figures {
            println!("  {name:<40} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_test_lines_become_checks() {
        let ok = web_test_line("web-page", "ok   video plays: 640x360").unwrap();
        assert!(ok.outcome == Outcome::Pass);
        assert_eq!(
            (ok.name.as_str(), ok.detail.as_str()),
            ("web-page.video_plays", "640x360")
        );
        let failed =
            web_test_line("web-page", "FAIL a short code says so: it said nothing").unwrap();
        assert!(failed.outcome == Outcome::Fail);
        assert_eq!(failed.name, "web-page.a_short_code_says_so");
        let files = web_test_line("web-files", "files: ok").unwrap();
        assert!(files.outcome == Outcome::Pass);
        assert!(web_test_line("web-page", "anything else").is_none());
    }

    #[test]
    fn result_lines_pass_only_when_they_say_pass() {
        let passed = result_line("RESULT chromium.av1_decoded PASS video/AV1, framesDecoded 164")
            .expect("a result line");
        assert_eq!(passed.name, "chromium.av1_decoded");
        assert!(passed.outcome == Outcome::Pass);
        assert_eq!(passed.detail, "video/AV1, framesDecoded 164");
        let failed = result_line("RESULT aiortc.paired FAIL").expect("a result line");
        assert!(failed.outcome == Outcome::Fail);
        let garbled = result_line("RESULT aiortc.paired PASSED").expect("a result line");
        assert!(garbled.outcome == Outcome::Fail);
        assert!(result_line("path: relay").is_none());
    }

    #[test]
    fn the_page_is_served_where_the_signaling_socket_is() {
        assert_eq!(
            page_url("ws://127.0.0.1:8443/signal").as_deref(),
            Ok("http://127.0.0.1:8443/")
        );
        assert!(page_url("wss://example.org/signal").is_err());
    }
}
