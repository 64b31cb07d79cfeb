//! Child processes of the interop run: started with their output read line by line (stdout and
//! stderr both, copied to a log file), waited on for a line with a deadline, and stopped when
//! the run ends, also when it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// One running program, its lines as they come, and every line seen so far.
pub struct Proc {
    name: String,
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    /// The program's stdin, for programs started with [`Proc::start_typed`].
    stdin: Option<ChildStdin>,
}

impl Proc {
    /// Starts `command` with both output streams read into lines (and copied to
    /// `logs/<name>.log`), stdin closed.
    pub fn start(name: &str, command: &mut Command, logs: &Path) -> Result<Proc, String> {
        Proc::spawn(name, command.stdin(Stdio::null()), logs)
    }

    /// Like [`Proc::start`], with stdin a pipe the run types lines into ([`Proc::type_line`]).
    pub fn start_typed(name: &str, command: &mut Command, logs: &Path) -> Result<Proc, String> {
        let mut proc = Proc::spawn(name, command.stdin(Stdio::piped()), logs)?;
        proc.stdin = proc.child.stdin.take();
        Ok(proc)
    }

    /// Types one line on the program's stdin, as a person at its terminal would.
    pub fn type_line(&mut self, line: &str) -> Result<(), String> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| format!("{}: its stdin is not a pipe", self.name))?;
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("{}: typing on its stdin: {e}", self.name))
    }

    fn spawn(name: &str, command: &mut Command, logs: &Path) -> Result<Proc, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{name}: could not start: {e}"))?;
        let log = std::fs::File::create(logs.join(format!("{name}.log")))
            .map_err(|e| format!("{name}: creating its log: {e}"))?;
        let (sender, lines) = mpsc::channel();
        let streams: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let sender = sender.clone();
            let mut log = log
                .try_clone()
                .map_err(|e| format!("{name}: its log: {e}"))?;
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = writeln!(log, "{line}");
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Ok(Proc {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
            stdin: None,
        })
    }

    /// The program's name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the first line (seen before or arriving before `limit`) for which `find`
    /// gives a value. An error says what was awaited and how the program ended, if it did.
    pub fn wait_for<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut find: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        if let Some(found) = self.seen.iter().find_map(|line| find(line)) {
            return Ok(found);
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = find(&line);
                    self.seen.push(line);
                    if let Some(found) = found {
                        return Ok(found);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no {what} within {limit:?}", self.name));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|s| s.to_string()).unwrap_or_default();
                    return Err(format!(
                        "{}: exited ({status}) before {what}; last lines:\n{}",
                        self.name,
                        self.tail(12)
                    ));
                }
            }
        }
    }

    /// Reads lines until the program closes its output or `limit` passes (then it is
    /// stopped), handing each to `on_line` as it comes, and returns every line with the exit
    /// status (`None` after a timeout).
    pub fn finish(
        &mut self,
        limit: Duration,
        mut on_line: impl FnMut(&str),
    ) -> (Vec<String>, Option<std::process::ExitStatus>) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    on_line(&line);
                    self.seen.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.stop();
                    return (self.seen.clone(), None);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return (self.seen.clone(), self.child.wait().ok());
                }
            }
        }
    }

    /// Takes in the lines that have arrived so far, without waiting.
    pub fn drain(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Whether the program has exited.
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `n` lines seen, for error messages.
    pub fn tail(&self, n: usize) -> String {
        let start = self.seen.len().saturating_sub(n);
        self.seen[start..].join("\n")
    }

    /// Stops the program: SIGTERM first (the browser driver closes its browser on it), then
    /// SIGKILL if it has not exited after a few seconds; reaps it either way.
    pub fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}
