//! A real STUN server for tests: coturn's `turnserver` on a free loopback port, killed when the
//! test ends, also when it fails. Shared by the STUN client's tests and the peer's (which include
//! this file by path). `cargo xtask ci` installs coturn; without it the test fails and says so.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};

/// A running `turnserver`, answering STUN only, on `addr`.
pub struct Coturn {
    child: Child,
    /// Where it listens (UDP, loopback).
    pub addr: SocketAddr,
}

impl Coturn {
    /// Starts it. It needs a moment to open its port; callers rely on STUN's own
    /// retransmissions to cover that, not on a sleep.
    pub fn start() -> Coturn {
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|socket| socket.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new("turnserver")
            .args([
                "-n",
                "--listening-ip=127.0.0.1",
                &format!("--listening-port={port}"),
                "--no-tls",
                "--no-dtls",
                "--no-tcp",
                "--stun-only",
                "--no-cli",
                "--log-file=stdout",
                "--simple-log",
                "--pidfile=/dev/null",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "turnserver is not installed: `cargo xtask deps` installs coturn, which this test checks against"
            ),
            Err(e) => panic!("starting turnserver: {e}"),
        };
        // Keep reading its log so it never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("turnserver: {line}");
            }
        });
        Coturn {
            child,
            addr: ([127, 0, 0, 1], port).into(),
        }
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
