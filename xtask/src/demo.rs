//! `cargo xtask demo`: the whole product on one machine, with pictures to show for it.
//!
//! Installs what is missing, builds the `puppet` and `controller` programs, starts an X server
//! (Xvfb) when there is no display, runs a puppet (the synthetic desktop by default, or the real
//! screen) with its embedded signaling server and a controller window connected to it, drives
//! the window with `xdotool` (pointer, click, typing, wheel), takes screenshots of the screen
//! the window is on with `import -window root`, and writes them with a stats summary under
//! `out/demo/`. On a desktop with a display the window opens there, for you to watch (and use).
//! Chat goes both ways (the controller's `--chat`, a line typed into the puppet's terminal) and
//! a file each way (`--send` on both sides, `--accept-files` into `out/demo/received-by-*`); the
//! demo checks that both arrived intact and that both programs exit with 0. The last screenshot
//! shows the window's toolbar, brought up by the pointer at its top edge, with the puppet user's
//! chat line counted as unread.
//!
//! The programs are spawned as processes and driven through their output and the X tools, which
//! is how a user would run them; a private X server comes from rtcdesk-xvfb, as in the tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rtcdesk_xvfb::Xvfb;

use crate::{cargo, packages, step, workspace_root};

const USAGE: &str = "\
usage: cargo xtask demo [--source synthetic|x11] [--size WxH] [--headless-x] [--seconds N]

  --source synthetic   share a generated test desktop that draws the input it receives (default)
  --source x11         share a real X screen (a second private Xvfb with a clock on it, so the
                       controller window does not film itself)
  --size WxH           size of the synthetic desktop and of the demo's Xvfb (default 1280x720)
  --headless-x         use a private Xvfb even when DISPLAY is set (no window on your desktop)
  --seconds N          how long to keep the session open after the scripted input (default 3)

The puppet's and controller's logs go to out/demo/*.log at level info; set RTCDESK_DEMO_LOG to a
tracing filter (e.g. info,rtcdesk_signal=debug) for more.
";

/// The tracing filter for both programs' logs: info, or what `RTCDESK_DEMO_LOG` says.
fn log_filter() -> String {
    std::env::var("RTCDESK_DEMO_LOG").unwrap_or_else(|_| "info".into())
}

/// Everything the demo spawned, killed in reverse order when it ends, also on error: the
/// programs first, then the X servers they draw on.
#[derive(Default)]
struct Processes {
    children: Vec<(String, Child)>,
    x_servers: Vec<Xvfb>,
}

impl Processes {
    fn add(&mut self, name: &str, child: Child) -> u32 {
        let id = child.id();
        self.children.push((name.to_string(), child));
        id
    }

    /// Starts a private Xvfb of this size, kept until [`Self::stop_all`]; returns its display.
    fn start_xvfb(&mut self, (width, height): (u32, u32)) -> Result<String, String> {
        let server = Xvfb::start(width, height).map_err(|e| e.to_string())?;
        let display = server.display().to_owned();
        self.x_servers.push(server);
        Ok(display)
    }

    fn stop_all(&mut self) {
        while let Some((_, mut child)) = self.children.pop() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        // Dropping each server kills and reaps it.
        while self.x_servers.pop().is_some() {}
    }

    /// Whether the named process has exited, and how.
    fn exited(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        self.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .and_then(|(_, child)| child.try_wait().ok().flatten())
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop_all();
    }
}

struct Options {
    source: String,
    size: (u32, u32),
    private_x: bool,
    linger: Duration,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        source: "synthetic".into(),
        size: (1280, 720),
        private_x: false,
        linger: Duration::from_secs(3),
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--source" => {
                let value = iter.next().ok_or("--source needs synthetic or x11")?;
                if value != "synthetic" && value != "x11" {
                    return Err(format!("--source {value}: expected synthetic or x11"));
                }
                options.source = value.clone();
            }
            "--size" => {
                let value = iter.next().ok_or("--size needs WxH")?;
                let (w, h) = value
                    .split_once('x')
                    .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                    .ok_or_else(|| format!("--size {value}: expected WxH, e.g. 1280x720"))?;
                options.size = (w, h);
            }
            "--headless-x" => options.private_x = true,
            "--seconds" => {
                let value = iter.next().ok_or("--seconds needs a number")?;
                let seconds: u64 = value
                    .parse()
                    .map_err(|_| format!("--seconds {value}: not a whole number"))?;
                options.linger = Duration::from_secs(seconds);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown demo option `{other}`\n\n{USAGE}")),
        }
    }
    Ok(options)
}

pub fn demo(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let started = Instant::now();
    packages::ensure_installed()?;
    step(
        "build puppet and controller",
        cargo().args([
            "build",
            "-p",
            "rtcdesk-puppet",
            "-p",
            "rtcdesk-controller",
            "--bins",
        ]),
    )?;
    let root = workspace_root();
    let bin = target_dir(&root).join("debug");
    let out = root.join("out/demo");
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    for entry in std::fs::read_dir(&out)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        let path = entry.path();
        if path
            .extension()
            .is_some_and(|e| e == "png" || e == "txt" || e == "log")
        {
            let _ = std::fs::remove_file(path);
        }
    }

    for dir in ["received-by-puppet", "received-by-controller", "files"] {
        let _ = std::fs::remove_dir_all(out.join(dir));
    }

    let mut processes = Processes::default();
    let display = match std::env::var("DISPLAY") {
        Ok(display) if !display.is_empty() && !options.private_x => {
            println!("==> using your display {display}: the controller window opens there");
            display
        }
        _ => {
            let display = processes.start_xvfb(options.size)?;
            println!("==> started Xvfb on {display} (no display here)");
            display
        }
    };

    let result = run(&options, &bin, &out, &display, &mut processes)
        .and_then(|()| puppet_window(&bin, &out, &display, &mut processes))
        .and_then(|()| unattended(&bin, &out, &mut processes));
    processes.stop_all();
    result?;
    println!(
        "==> demo done in {:.0} s; screenshots and stats are in {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
    for entry in sorted_entries(&out) {
        println!("    {}", entry.display());
    }
    Ok(())
}

fn run(
    options: &Options,
    bin: &Path,
    out: &Path,
    display: &str,
    processes: &mut Processes,
) -> Result<(), String> {
    // The puppet: its own signaling server on loopback, every controller accepted (there is
    // nobody at a terminal to ask).
    let puppet_name = "rtcdesk demo puppet";
    // A puppet sharing the X screen the controller window is on would see its own window and
    // replay its own input back into it (a feedback loop): the x11 puppet gets a screen of its
    // own, a private Xvfb with a clock and a pair of eyes on it, like a second machine.
    let puppet_display = if options.source == "x11" {
        let display = processes.start_xvfb(options.size)?;
        // Side by side (there is no window manager to place them): the eyes follow the pointer
        // the controller moves.
        for (name, args) in [
            (
                "xclock",
                &["-update", "1", "-geometry", "240x240+40+40"][..],
            ),
            ("xeyes", &["-geometry", "400x260+360+200"][..]),
        ] {
            if let Ok(child) = Command::new(name)
                .args(args)
                .env("DISPLAY", &display)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                processes.add(name, child);
            }
        }
        println!("==> the x11 puppet shares its own Xvfb {display}");
        display
    } else {
        display.to_string()
    };
    // One file each way, written fresh so the demo shows what it sends.
    let files = out.join("files");
    std::fs::create_dir_all(&files).map_err(|e| format!("creating {}: {e}", files.display()))?;
    let from_puppet = files.join("from-the-puppet.txt");
    let from_controller = files.join("from-the-controller.txt");
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
    };
    write(
        &from_puppet,
        "Sent by the puppet with --send once the controller connected.\n".repeat(2000),
    )?;
    write(
        &from_controller,
        "Sent by the controller with --send; the puppet took it with --accept-files.\n"
            .repeat(3000),
    )?;
    let mut puppet = Command::new(bin.join("puppet"));
    puppet
        .args(["--source", &options.source, "--accept-all"])
        // Its terminal is what the demo types the puppet user's chat line into (the window
        // gets its own part below).
        .arg("--no-window")
        .arg("--accept-files")
        .arg("--download-dir")
        .arg(out.join("received-by-puppet"))
        .arg("--send")
        .arg(&from_puppet)
        .args(["--listen", "127.0.0.1:0", "--name", puppet_name])
        .args([
            "--synthetic-size",
            &format!("{}x{}", options.size.0, options.size.1),
        ])
        .arg("--record")
        .arg(out.join("puppet-video.ivf"))
        .env("DISPLAY", &puppet_display)
        .env("RUST_LOG", log_filter())
        // Its terminal: the demo types a chat line into it, as the puppet's user would.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log_file(out, "puppet.log")?);
    let mut child = puppet
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", bin.join("puppet").display()))?;
    let stdout = child.stdout.take().ok_or("no puppet stdout")?;
    let mut puppet_terminal = child.stdin.take().ok_or("no puppet stdin")?;
    let puppet_pid = processes.add("puppet", child);
    let puppet_lines = lines_of(stdout, out.join("puppet-output.txt"));
    let mut code = None;
    let mut url = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while code.is_none() || url.is_none() {
        let line = puppet_lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| {
                "the puppet printed no control code within 30 s (see out/demo/puppet.log)"
            })?;
        if let Some(rest) = line.strip_prefix("Control code:") {
            code = Some(rest.trim().replace(' ', ""));
        } else if let Some(rest) = line.strip_prefix("Signaling:") {
            url = Some(rest.trim().to_string());
        }
    }
    let (code, url) = (code.unwrap_or_default(), url.unwrap_or_default());
    println!("==> puppet (pid {puppet_pid}) registered: code {code} at {url}");

    let controller = Command::new(bin.join("controller"))
        // Translate mode sends typed characters as text, which the synthetic desktop shows.
        .args(["--signal", &url, "--name", "demo controller"])
        .args(["--keyboard", "translate", &code])
        .args(["--chat", "hello from the controller"])
        .arg("--send")
        .arg(&from_controller)
        .arg("--accept-files")
        .arg("--download-dir")
        .arg(out.join("received-by-controller"))
        .env("DISPLAY", display)
        .env("RUST_LOG", log_filter())
        .stdin(Stdio::null())
        .stdout(log_file(out, "controller-output.txt")?)
        .stderr(log_file(out, "controller.log")?)
        .spawn()
        .map_err(|e| format!("could not start the controller: {e}"))?;
    let controller_pid = processes.add("controller", controller);
    println!("==> controller (pid {controller_pid}) started");

    // The window's title names the puppet by its routing digits ("rtcdesk — puppet 123 456
    // 789 — …"); the code printed has twelve (the last three verify the session end to end).
    let grouped = match code.get(0..9) {
        Some(route) => format!("{} {} {}", &route[0..3], &route[3..6], &route[6..9]),
        None => code.clone(),
    };
    let window = find_window(display, &grouped, processes, "controller")?;
    println!("==> controller window {window} is up");
    let x = XTools {
        display: display.to_string(),
        window: window.clone(),
    };
    x.run(&["windowfocus", "--sync", &window])?;
    // The first pictures take a moment to arrive and decode.
    if !wait_for_title(&x, |title| title.contains("fps"), Duration::from_secs(20)) {
        return Err(
            "the controller showed no live figures within 20 s (no video?); see out/demo/*.log"
                .into(),
        );
    }
    let mut titles = Vec::new();
    x.screenshot(&out.join("01-connected.png"))?;
    titles.push(("connected", x.title().unwrap_or_default()));

    let (ww, wh) = x.window_size()?;
    // Input goes through XTEST like a real user's (xdotool with --window would send synthetic
    // events, which windows listening through XInput2 ignore): the pointer is moved over the
    // window and the window has the focus.
    // Pointer: across the picture in a few steps, then a click.
    for step in 1..=8u32 {
        x.run(&[
            "mousemove",
            "--window",
            &window,
            &(ww * step / 10).to_string(),
            &(wh * step / 10).to_string(),
        ])?;
        std::thread::sleep(Duration::from_millis(80));
    }
    x.run(&["click", "1"])?;
    std::thread::sleep(Duration::from_millis(300));
    x.screenshot(&out.join("02-pointer-moved.png"))?;
    titles.push(("pointer moved", x.title().unwrap_or_default()));

    // Typing: the synthetic desktop shows the text in its field.
    x.run(&[
        "mousemove",
        "--window",
        &window,
        &(ww / 2).to_string(),
        &(wh / 2).to_string(),
    ])?;
    x.run(&[
        "type",
        "--window",
        &window,
        "--delay",
        "40",
        "hello from rtcdesk",
    ])?;
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&out.join("03-typed.png"))?;
    titles.push(("typed", x.title().unwrap_or_default()));

    // The wheel: the synthetic desktop's window scrolls.
    for _ in 0..12 {
        x.run(&["click", "5"])?;
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&out.join("04-scrolled.png"))?;
    titles.push(("scrolled", x.title().unwrap_or_default()));

    // Chat back: the puppet's user types a line into its terminal.
    {
        use std::io::Write;
        writeln!(puppet_terminal, "hello from the puppet's user")
            .and_then(|_| puppet_terminal.flush())
            .map_err(|e| format!("typing into the puppet's terminal: {e}"))?;
    }
    let exchanged = wait_for_exchange(out, &from_puppet, &from_controller);

    std::thread::sleep(options.linger);
    titles.push(("still, at the end", x.title().unwrap_or_default()));
    x.screenshot(&out.join("05-final.png"))?;
    // The window's toolbar: the pointer at its top edge brings it up (chat, files, keyboard,
    // stats, disconnect); the puppet user's chat line is waiting there, unread.
    x.run(&["mousemove", "--window", &window, &(ww / 2).to_string(), "2"])?;
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&out.join("06-toolbar.png"))?;

    if let Some(status) = processes.exited("controller") {
        return Err(format!(
            "the controller exited early ({status}); see out/demo/controller.log"
        ));
    }
    // Both leave cleanly on Ctrl-C (SIGINT): the controller closes its session as when its
    // window is closed, then the puppet stops.
    let _ = Command::new("kill")
        .args(["-INT", &controller_pid.to_string()])
        .status();
    let controller_status = wait_exit(processes, "controller", Duration::from_secs(15));
    let _ = Command::new("kill")
        .args(["-INT", &puppet_pid.to_string()])
        .status();
    let puppet_status = wait_exit(processes, "puppet", Duration::from_secs(10));
    drop(puppet_terminal);
    drop(puppet_lines);

    let mut summary = summary(out, &titles, controller_status, puppet_status);
    summary.push_str("chat and files:\n");
    for line in &exchanged.lines {
        summary.push_str(&format!("  {line}\n"));
    }
    std::fs::write(out.join("stats.txt"), &summary)
        .map_err(|e| format!("writing stats.txt: {e}"))?;
    println!("==> stats summary:\n{summary}");
    if !exchanged.missing.is_empty() {
        return Err(format!(
            "not everything arrived: {}; see out/demo/*.log",
            exchanged.missing.join("; ")
        ));
    }
    for (name, status) in [("controller", controller_status), ("puppet", puppet_status)] {
        if !status.is_some_and(|s| s.success()) {
            return Err(format!(
                "the {name} did not exit with 0 ({status:?}); see out/demo/{name}.log"
            ));
        }
    }
    Ok(())
}

/// Where the puppet window's "Accept" is (points from its top left corner at scale 1), as
/// the window draws a dialog for a verified controller: the dialog is the first thing in it.
/// `crates/puppet/tests/window.rs` finds the button by its label and checks the window shows
/// it; if the layout moves, the demo says that accepting failed.
const ACCEPT_AT: (u32, u32) = (38, 108);

/// The puppet's own window, as the person being helped sees it: the control code, the dialog
/// when a helper asks to connect, "Accept", and the helper in the list with its chat line.
fn puppet_window(
    bin: &Path,
    out: &Path,
    display: &str,
    processes: &mut Processes,
) -> Result<(), String> {
    let dir = out.join("puppet-window");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut child = Command::new(bin.join("puppet"))
        .args(["--source", "synthetic", "--synthetic-size", "640x360"])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--name",
            "rtcdesk demo front desk",
        ])
        .arg("--no-clipboard")
        .env("DISPLAY", display)
        .env("RUST_LOG", log_filter())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(&dir, "puppet.log")?)
        .spawn()
        .map_err(|e| format!("could not start the puppet with its window: {e}"))?;
    let stdout = child.stdout.take().ok_or("no puppet stdout")?;
    let pid = processes.add("window puppet", child);
    let lines = lines_of(stdout, dir.join("puppet-output.txt"));
    let wait_line = |what: &str, want: &dyn Fn(&str) -> bool| -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .map_err(|_| {
                    format!(
                        "the puppet with its window did not say {what} within 30 s; see {}",
                        dir.display()
                    )
                })?;
            if want(&line) {
                return Ok(line);
            }
        }
    };
    let code = wait_line("its control code", &|l| l.starts_with("Control code:"))?;
    let code = code["Control code:".len()..].trim().replace(' ', "");
    let url = wait_line("its signaling URL", &|l| l.starts_with("Signaling:"))?;
    let url = url["Signaling:".len()..].trim().to_string();
    let window = find_window(display, "rtcdesk puppet", processes, "window puppet")?;
    let x = XTools {
        display: display.to_string(),
        window: window.clone(),
    };
    x.run(&["windowfocus", "--sync", &window])?;
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&out.join("07-puppet-window.png"))?;
    println!("==> the puppet's window shows its code {code}");

    // A helper dials (a headless controller that says hello and leaves after a while).
    let controller = Command::new(bin.join("controller"))
        .args(["--signal", &url, "--name", "demo helper"])
        .args(["--chat", "hello, I am the helper you called"])
        .args(["--headless", "--seconds", "6", "--out"])
        .arg(dir.join("helper"))
        .arg(&code)
        .env("RUST_LOG", log_filter())
        .stdin(Stdio::null())
        .stdout(log_file(&dir, "helper-output.txt")?)
        .stderr(log_file(&dir, "helper.log")?)
        .spawn()
        .map_err(|e| format!("could not start the helper: {e}"))?;
    processes.add("helper", controller);
    wait_line("that the helper asks", &|l| {
        l.contains("is asking to connect")
    })?;
    std::thread::sleep(Duration::from_millis(500));
    x.screenshot(&out.join("08-puppet-asks.png"))?;
    x.run(&[
        "mousemove",
        "--window",
        &window,
        &ACCEPT_AT.0.to_string(),
        &ACCEPT_AT.1.to_string(),
    ])?;
    x.run(&["click", "1"])?;
    wait_line("that the helper was accepted", &|l| {
        l.contains("accepted; connecting")
    })
    .map_err(|e| format!("clicking Accept in the puppet's window did nothing: {e}"))?;
    wait_line("that the helper is connected", &|l| {
        l.starts_with("Connected:")
    })?;
    std::thread::sleep(Duration::from_millis(1500));
    x.screenshot(&out.join("09-puppet-connected.png"))?;
    println!("==> accepted in the puppet's window: the helper is listed, its chat line shown");
    let helper = wait_exit(processes, "helper", Duration::from_secs(20));
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let puppet = wait_exit(processes, "window puppet", Duration::from_secs(10));
    drop(lines);
    for (name, status) in [("helper", helper), ("puppet with its window", puppet)] {
        if !status.is_some_and(|s| s.success()) {
            return Err(format!(
                "the {name} did not exit with 0 ({status:?}); see {}",
                dir.display()
            ));
        }
    }
    Ok(())
}

/// Unattended access, as someone setting up their machine at home would: `puppet
/// set-password`, `puppet --unattended`, a controller with a wrong password (refused, exit 7),
/// one with the right password (in, with nobody asked), and `puppet status` telling the owner
/// about the wrong one.
fn unattended(bin: &Path, out: &Path, processes: &mut Processes) -> Result<(), String> {
    let dir = out.join("unattended");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let config = dir.join("config");
    let password = "correct horse battery staple";
    let puppet_cmd = |args: &[&str], stdin: &str| -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new(bin.join("puppet"))
            .args(args)
            .env("RTCDESK_CONFIG_DIR", &config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("puppet {}: {e}", args.join(" ")))?;
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let output = child
            .wait_with_output()
            .map_err(|e| format!("puppet {}: {e}", args.join(" ")))?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            return Err(format!(
                "puppet {} failed: {text}{}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(text)
    };
    println!("==> unattended access: puppet set-password");
    let set = puppet_cmd(&["set-password"], &format!("{password}\n"))?;
    for line in set.lines() {
        println!("    {line}");
    }
    let mut child = Command::new(bin.join("puppet"))
        .args([
            "--unattended",
            "--source",
            "synthetic",
            "--synthetic-size",
            "640x360",
        ])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--name",
            "rtcdesk demo home machine",
        ])
        .env("RTCDESK_CONFIG_DIR", &config)
        .env("RUST_LOG", log_filter())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(&dir, "puppet.log")?)
        .spawn()
        .map_err(|e| format!("could not start the unattended puppet: {e}"))?;
    let stdout = child.stdout.take().ok_or("no puppet stdout")?;
    let pid = processes.add("unattended puppet", child);
    let lines = lines_of(stdout, dir.join("puppet-output.txt"));
    let (mut id, mut url) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while id.is_none() || url.is_none() {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| "the unattended puppet printed no device ID within 30 s")?;
        if let Some(rest) = line.strip_prefix("Device ID:") {
            let digits: String = rest.chars().take_while(|c| *c != '(').collect();
            id = Some(digits.replace(' ', "").trim().to_string());
        } else if let Some(rest) = line.strip_prefix("Signaling:") {
            url = Some(rest.trim().to_string());
        }
    }
    let (id, url) = (id.unwrap_or_default(), url.unwrap_or_default());
    println!("==> unattended puppet (pid {pid}) registered device {id} at {url}");
    let controller = |name: &str, password: &str| -> Result<Option<i32>, String> {
        let file = dir.join(format!("{name}.password"));
        std::fs::write(&file, format!("{password}\n")).map_err(|e| e.to_string())?;
        let status = Command::new(bin.join("controller"))
            .args(["--signal", &url, "--device", &id, "--name", name])
            .arg("--password-file")
            .arg(&file)
            .args(["--headless", "--frames", "1", "--out"])
            .arg(dir.join(name))
            .env("RUST_LOG", log_filter())
            .stdin(Stdio::null())
            .stdout(log_file(&dir, &format!("{name}-output.txt"))?)
            .stderr(log_file(&dir, &format!("{name}.log"))?)
            .status()
            .map_err(|e| format!("could not start the controller: {e}"))?;
        Ok(status.code())
    };
    let wrong = controller("stranger", "hunter2hunter2")?;
    if wrong != Some(7) {
        return Err(format!(
            "a wrong device password should end with exit code 7, not {wrong:?}; see {}",
            dir.display()
        ));
    }
    println!("==> a controller with a wrong password was refused (exit 7)");
    // The owner is told (the puppet also waits a second after a wrong password; `unlock`
    // clears that too, so the demo need not wait).
    println!("==> puppet unlock, as the owner:");
    for line in puppet_cmd(&["unlock"], "")?.lines() {
        println!("    {line}");
    }
    let right = controller("owner", password)?;
    if right != Some(0) {
        return Err(format!(
            "the right device password should connect and save a picture (exit 0), not \
             {right:?}; see {}",
            dir.display()
        ));
    }
    println!(
        "==> the owner connected with the password, nobody asked; a picture is in {}",
        dir.join("owner").display()
    );
    let _ = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status();
    let _ = wait_exit(processes, "unattended puppet", Duration::from_secs(10));
    drop(lines);
    let seen: Vec<String> = std::fs::read_to_string(dir.join("puppet-output.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("password"))
        .map(str::to_owned)
        .collect();
    println!("==> the unattended puppet said:");
    for line in &seen {
        println!("    {line}");
    }
    Ok(())
}

/// One thing the exchange must show, checked again until it holds.
type Check<'a> = Box<dyn Fn() -> bool + 'a>;

/// What the chat and file exchange showed, and what did not arrive.
struct Exchange {
    lines: Vec<String>,
    missing: Vec<String>,
}

/// Waits (up to 30 s) for both chat lines and both files, each checked byte for byte. The
/// programs are separate processes: their output files and folders are what there is to watch.
fn wait_for_exchange(out: &Path, from_puppet: &Path, from_controller: &Path) -> Exchange {
    let checks: [(&str, Check); 5] = [
        (
            "the session verified end to end (12-digit code: the signaling server cannot be in the middle)",
            Box::new(|| {
                std::fs::read_to_string(out.join("controller.log"))
                    .is_ok_and(|t| t.contains("controller: verified end to end"))
            }),
        ),
        (
            "the controller's chat line, in the puppet's terminal",
            Box::new(|| {
                std::fs::read_to_string(out.join("puppet-output.txt"))
                    .is_ok_and(|t| t.contains("demo controller: hello from the controller"))
            }),
        ),
        (
            "the puppet user's chat line, on the controller's stderr",
            Box::new(|| {
                std::fs::read_to_string(out.join("controller.log")).is_ok_and(|t| {
                    t.contains("chat from rtcdesk demo puppet: hello from the puppet's user")
                })
            }),
        ),
        (
            "the puppet's file, in out/demo/received-by-controller",
            Box::new(|| {
                same_file(
                    from_puppet,
                    &out.join("received-by-controller/from-the-puppet.txt"),
                )
            }),
        ),
        (
            "the controller's file, in out/demo/received-by-puppet",
            Box::new(|| {
                same_file(
                    from_controller,
                    &out.join("received-by-puppet/from-the-controller.txt"),
                )
            }),
        ),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done = [false; 5];
    while Instant::now() < deadline && done.iter().any(|d| !d) {
        for (i, (_, check)) in checks.iter().enumerate() {
            done[i] = done[i] || check();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut exchange = Exchange {
        lines: Vec::new(),
        missing: Vec::new(),
    };
    for (i, (what, _)) in checks.iter().enumerate() {
        if done[i] {
            exchange.lines.push(format!("ok: {what}"));
        } else {
            exchange.lines.push(format!("MISSING: {what}"));
            exchange.missing.push(what.to_string());
        }
    }
    exchange
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn log_file(out: &Path, name: &str) -> Result<std::fs::File, String> {
    std::fs::File::create(out.join(name)).map_err(|e| format!("creating {name}: {e}"))
}

/// Passes a child's output lines on through a channel, and copies them to a file.
fn lines_of(stdout: ChildStdout, copy: PathBuf) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut file = std::fs::File::create(copy).ok();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(file) = file.as_mut() {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
            }
            let _ = tx.send(line);
        }
    });
    rx
}

/// Waits for the window of `program` (a process the demo started), found by a part of its
/// title.
fn find_window(
    display: &str,
    title_part: &str,
    processes: &mut Processes,
    program: &str,
) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = processes.exited(program) {
            return Err(format!(
                "the {program} exited ({status}) before its window showed; see out/demo/*.log"
            ));
        }
        let found = Command::new("xdotool")
            .args(["search", "--name", title_part])
            .env("DISPLAY", display)
            .output();
        if let Ok(output) = found {
            let text = String::from_utf8_lossy(&output.stdout);
            if let Some(id) = text.lines().map(str::trim).find(|l| !l.is_empty()) {
                return Ok(id.to_string());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "the {program} window did not appear within 60 s; see out/demo/*.log"
    ))
}

struct XTools {
    display: String,
    window: String,
}

impl XTools {
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("DISPLAY", &self.display);
        command
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let output = self
            .command("xdotool")
            .args(args)
            .output()
            .map_err(|e| format!("xdotool: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "xdotool {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    fn title(&self) -> Option<String> {
        let output = self
            .command("xdotool")
            .args(["getwindowname", &self.window])
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn window_size(&self) -> Result<(u32, u32), String> {
        let output = self
            .command("xdotool")
            .args(["getwindowgeometry", "--shell", &self.window])
            .output()
            .map_err(|e| format!("xdotool: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let field = |name: &str| -> Option<u32> {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('=')?.trim().parse().ok())
        };
        match (field("WIDTH"), field("HEIGHT")) {
            (Some(w), Some(h)) => Ok((w, h)),
            _ => Err(format!("could not read the window's size from: {text}")),
        }
    }

    fn screenshot(&self, path: &Path) -> Result<(), String> {
        let status = self
            .command("import")
            .args(["-window", "root"])
            .arg(path)
            .status()
            .map_err(|e| format!("import (imagemagick): {e}"))?;
        if status.success() {
            println!("    screenshot {}", path.display());
            Ok(())
        } else {
            Err(format!(
                "import -window root {} failed ({status})",
                path.display()
            ))
        }
    }
}

/// Polls the window title (an external window gives no event to wait on); false when `ready`
/// never held within `limit`.
fn wait_for_title(x: &XTools, ready: impl Fn(&str) -> bool, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if x.title().is_some_and(|t| ready(&t)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn wait_exit(
    processes: &mut Processes,
    name: &str,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = processes.exited(name) {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

/// The stats summary: the window title's live figures at the end, the controller's per-second
/// figures (its log), the puppet's output, and how each program exited.
fn summary(
    out: &Path,
    titles: &[(&str, String)],
    controller: Option<std::process::ExitStatus>,
    puppet: Option<std::process::ExitStatus>,
) -> String {
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    let controller_log = read("controller.log");
    let figures: Vec<&str> = controller_log
        .lines()
        .filter(|l| l.contains("fps") || l.contains("RTT") || l.contains("latency"))
        .collect();
    let exit = |s: Option<std::process::ExitStatus>| match s {
        Some(status) => status.to_string(),
        None => "still running after the grace period (killed)".to_string(),
    };
    let mut text = String::new();
    text.push_str("controller window title (live figures) after each step:\n");
    for (step, title) in titles {
        text.push_str(&format!("  {step:<18} {title}\n"));
    }
    text.push_str(&format!("controller exit: {}\n", exit(controller)));
    text.push_str(&format!("puppet exit: {}\n", exit(puppet)));
    text.push_str(&format!(
        "controller figures ({} lines; all in controller.log):\n",
        figures.len()
    ));
    let tail = figures.len().saturating_sub(10);
    for line in &figures[tail..] {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str("puppet output:\n");
    for line in read("puppet-output.txt").lines() {
        text.push_str("  ");
        text.push_str(line);
        text.push('\n');
    }
    let video = out.join("puppet-video.ivf");
    if let Ok(meta) = std::fs::metadata(&video) {
        text.push_str(&format!(
            "recorded video: {} ({} bytes; play with `dav1d -i` or ffplay)\n",
            video.display(),
            meta.len()
        ));
    }
    text
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}
