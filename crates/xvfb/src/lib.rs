//! A private X server (Xvfb) for tests and for `cargo xtask demo` on a machine without a display.
//!
//! Each [`Xvfb`] is its own server on a display number the server picks itself (`-displayfd`), so
//! tests that draw, capture or inject never disturb each other. [`Xvfb::start`] returns only once
//! the server accepts connections (Xvfb writes its display number when it is ready), and the
//! server is killed when the value is dropped.
//!
//! ```no_run
//! let x = rtcdesk_xvfb::Xvfb::start(1280, 720).expect("Xvfb");
//! let mut client = std::process::Command::new("xdotool");
//! client.env("DISPLAY", x.display()).arg("getmouselocation");
//! ```
#![forbid(unsafe_code)]

#[cfg(feature = "screen")]
pub mod screen;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long Xvfb may take to say it is ready before we give up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why an X server could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `Xvfb` binary could not be run (not installed: `cargo xtask deps` installs it).
    #[error("could not run Xvfb (install the `xvfb` package: `cargo xtask deps`): {0}")]
    Spawn(std::io::Error),
    /// Xvfb exited or said nothing before it was ready.
    #[error("Xvfb did not become ready: {0}")]
    NotReady(String),
}

/// A running Xvfb server, killed on drop.
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    display: String,
    width: u32,
    height: u32,
}

impl Xvfb {
    /// Starts a server with one screen of `width`×`height` at depth 24 (depth 16 breaks capture).
    pub fn start(width: u32, height: u32) -> Result<Self, Error> {
        Self::start_with_args(width, height, &[])
    }

    /// Like [`Xvfb::start`], with extra server arguments, such as `["-extension", "DAMAGE"]` to
    /// run without an extension.
    pub fn start_with_args(width: u32, height: u32, extra: &[&str]) -> Result<Self, Error> {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::Spawn)?;
        // Every way out before the server is ready stops it and reaps it.
        let give_up = |mut child: Child, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            Err(Error::NotReady(why))
        };
        let Some(stdout) = child.stdout.take() else {
            return give_up(child, "no stdout pipe".into());
        };
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = ready_tx.send(reader.read_line(&mut line).map(|_| line));
            // Keep the pipe open (and drained) for the server's lifetime.
            let mut rest = String::new();
            while matches!(reader.read_line(&mut rest), Ok(n) if n > 0) {
                rest.clear();
            }
        });
        let number = match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(line)) if !line.trim().is_empty() => line.trim().to_string(),
            Ok(Ok(_)) => return give_up(child, "it closed its output before it was ready".into()),
            Ok(Err(e)) => return give_up(child, e.to_string()),
            Err(_) => return give_up(child, format!("silent for {READY_TIMEOUT:?}")),
        };
        Ok(Self {
            child,
            display: format!(":{number}"),
            width,
            height,
        })
    }

    /// The value for `DISPLAY`, such as `:3`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The server's process id (to read its CPU time, for instance).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The screen size the server was started with.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// A command that runs with `DISPLAY` pointing at this server.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("DISPLAY", &self.display);
        command
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_servers_get_distinct_displays_with_the_asked_size() {
        let a = Xvfb::start(640, 360).expect("first Xvfb");
        let b = Xvfb::start(320, 200).expect("second Xvfb");
        assert_ne!(a.display(), b.display());
        let info = a.command("xdpyinfo").output().expect("xdpyinfo runs");
        assert!(info.status.success(), "xdpyinfo could not connect");
        let text = String::from_utf8_lossy(&info.stdout);
        assert!(text.contains("640x360 pixels"), "{text}");
    }

    #[test]
    fn dropping_the_server_ends_its_process() {
        let x = Xvfb::start(320, 200).expect("Xvfb");
        let proc_entry = format!("/proc/{}", x.child.id());
        assert!(std::path::Path::new(&proc_entry).exists());
        drop(x);
        assert!(
            !std::path::Path::new(&proc_entry).exists(),
            "Xvfb still runs after drop"
        );
    }
}
