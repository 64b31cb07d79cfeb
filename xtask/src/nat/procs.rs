//! The programs of one cell, each started inside a namespace with `ip netns exec`, their output
//! read line by line with a deadline, and killed when dropped.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Instant;

/// A running program; its stdout and stderr lines arrive, merged, in the order they were read.
pub struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    /// Every line read so far, for parsing after the fact and for failure reports.
    pub seen: Vec<String>,
}

impl Proc {
    /// Starts `program args…` in namespace `ns`; `name` labels its lines in reports.
    pub fn spawn(name: &str, ns: &str, program: &Path, args: &[String]) -> Result<Proc, String> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            // Plain log lines in failure reports.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{name}: could not start {}: {e}", program.display()))?;
        let (sender, lines) = mpsc::channel();
        if let Some(stdout) = child.stdout.take() {
            forward(stdout, sender.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            forward(stderr, sender);
        }
        Ok(Proc {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
        })
    }

    /// Reads lines until one satisfies `wanted` and returns it; an error when the program
    /// ends first or `deadline` passes.
    pub fn wait_for_line(
        &mut self,
        wanted: impl Fn(&str) -> bool,
        what: &str,
        deadline: Instant,
    ) -> Result<String, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return Ok(line);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no {what} in time", self.name))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string());
                    return Err(format!(
                        "{} ended ({}) before {what}",
                        self.name,
                        status.unwrap_or_else(|e| e.to_string())
                    ));
                }
            }
        }
    }

    /// Reads every line until the program closes its output, then returns its exit status;
    /// an error when `deadline` passes first.
    pub fn wait_exit(&mut self, deadline: Instant) -> Result<ExitStatus, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{} did not finish in time", self.name))
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.child
            .wait()
            .map_err(|e| format!("{}: waiting: {e}", self.name))
    }

    /// Writes every line read so far to `DIR/NAME.log`, for looking into a failure; best effort.
    pub fn save_log(&mut self, dir: &Path) {
        self.seen.extend(self.lines.try_iter());
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(
            dir.join(format!("{}.log", self.name)),
            self.seen.join("\n") + "\n",
        );
    }

    /// The last `n` lines read, each prefixed with the program's name, for a failure report.
    pub fn tail(&mut self, n: usize) -> Vec<String> {
        self.seen.extend(self.lines.try_iter());
        let start = self.seen.len().saturating_sub(n);
        self.seen[start..]
            .iter()
            .map(|line| format!("    {}| {line}", self.name))
            .collect()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line of `stream` to `sender` from a thread of its own, so no pipe ever fills up.
fn forward(stream: impl Read + Send + 'static, sender: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
}
