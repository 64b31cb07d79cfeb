//! A real STUN/TURN server for tests: coturn's `turnserver` on a free loopback port, killed when
//! the test ends, also when it fails. Shared by the STUN client's tests and the peer's (which
//! include this file by path). `cargo xtask ci` installs coturn; without it the test fails and
//! says so. [`Coturn::start`] answers STUN only; [`Coturn::start_turn`] relays too (UDP and TCP
//! on the same port, loopback peers allowed). The TURN benchmark (`benches/src/bin/turn.rs`)
//! includes it too.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How a TURN server checks credentials.
#[derive(Debug, Clone)]
pub enum TurnAuth {
    /// Static long-term users (`--lt-cred-mech --user=NAME:PASSWORD`).
    Users(Vec<(String, String)>),
    /// TURN REST credentials from a shared secret (`--use-auth-secret --static-auth-secret=S`).
    Secret(String),
}

/// What a TURN test needs of the server.
#[derive(Debug, Clone)]
pub struct TurnOptions {
    /// Credentials.
    pub auth: TurnAuth,
    /// The realm (`--realm`).
    pub realm: String,
    /// Nonce lifetime in seconds (`--stale-nonce=N`); coturn's default is 600.
    pub stale_nonce: Option<u32>,
    /// Allocations per user (`--user-quota=N`).
    pub user_quota: Option<u32>,
    /// A certificate and its private key (PEM files) for a TLS listener (`turns:`).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl TurnOptions {
    /// One static user, realm `rtcdesk.test`, default nonce lifetime, no quota.
    pub fn user(name: &str, password: &str) -> Self {
        TurnOptions {
            auth: TurnAuth::Users(vec![(name.to_string(), password.to_string())]),
            realm: "rtcdesk.test".to_string(),
            stale_nonce: None,
            user_quota: None,
            tls: None,
        }
    }
}

/// A running `turnserver` on `addr`.
pub struct Coturn {
    child: Child,
    /// Where it listens (UDP, and TCP when started with [`Coturn::start_turn`]; loopback).
    pub addr: SocketAddr,
    /// Where it listens for TLS, when [`TurnOptions::tls`] was given.
    pub tls_addr: Option<SocketAddr>,
    userdb: Option<PathBuf>,
}

impl Coturn {
    /// Starts it, answering STUN only. It needs a moment to open its port; callers rely on
    /// STUN's own retransmissions to cover that, not on a sleep.
    pub fn start() -> Coturn {
        Self::spawn(
            &["--no-tcp".to_string(), "--stun-only".to_string()],
            None,
            None,
        )
    }

    /// Starts it as a TURN server relaying on 127.0.0.1 (flags as FACTS.md gives them), with
    /// its own user database file so parallel tests do not share one. Call
    /// [`Coturn::wait_for_tcp`] before connecting over TCP; over UDP the client's
    /// retransmissions cover the start-up.
    pub fn start_turn(options: &TurnOptions) -> Coturn {
        let userdb = std::env::temp_dir().join(format!(
            "rtcdesk-coturn-{}-{}.sqlite",
            std::process::id(),
            NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut args = vec![
            "--relay-ip=127.0.0.1".to_string(),
            "--allow-loopback-peers".to_string(),
            "--fingerprint".to_string(),
            format!("--realm={}", options.realm),
            format!("--userdb={}", userdb.display()),
        ];
        match &options.auth {
            TurnAuth::Users(users) => {
                args.push("--lt-cred-mech".to_string());
                for (name, password) in users {
                    args.push(format!("--user={name}:{password}"));
                }
            }
            TurnAuth::Secret(secret) => {
                args.push("--use-auth-secret".to_string());
                args.push(format!("--static-auth-secret={secret}"));
            }
        }
        if let Some(seconds) = options.stale_nonce {
            args.push(format!("--stale-nonce={seconds}"));
        }
        if let Some(quota) = options.user_quota {
            args.push(format!("--user-quota={quota}"));
        }
        Self::spawn(&args, Some(userdb), options.tls.as_ref())
    }

    /// The server's process id, for reading its CPU time from `/proc` (the TURN benchmark).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the TCP listener accepts connections (at most 10 s).
    pub fn wait_for_tcp(&self) {
        wait_for_listener(self.addr);
    }

    /// Waits until the TLS listener accepts TCP connections (at most 10 s).
    pub fn wait_for_tls(&self) {
        wait_for_listener(self.tls_addr.expect("started with TLS"));
    }

    fn spawn(
        extra: &[String],
        userdb: Option<PathBuf>,
        tls: Option<&(PathBuf, PathBuf)>,
    ) -> Coturn {
        let free_port = || {
            UdpSocket::bind("127.0.0.1:0")
                .and_then(|socket| socket.local_addr())
                .expect("a free loopback port")
                .port()
        };
        let port = free_port();
        let mut args = vec![
            "-n".to_string(),
            "--listening-ip=127.0.0.1".to_string(),
            format!("--listening-port={port}"),
            "--no-dtls".to_string(),
            "--no-cli".to_string(),
            "--log-file=stdout".to_string(),
            "--simple-log".to_string(),
            "--pidfile=/dev/null".to_string(),
        ];
        args.extend_from_slice(extra);
        let tls_port = match tls {
            None => {
                args.push("--no-tls".to_string());
                None
            }
            Some((cert, key)) => {
                let tls_port = free_port();
                args.push(format!("--tls-listening-port={tls_port}"));
                args.push(format!("--cert={}", cert.display()));
                args.push(format!("--pkey={}", key.display()));
                Some(tls_port)
            }
        };
        let child = Command::new("turnserver")
            .args(&args)
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
        let coturn = Coturn {
            child,
            addr: ([127, 0, 0, 1], port).into(),
            tls_addr: tls_port.map(|port| ([127, 0, 0, 1], port).into()),
            userdb,
        };
        // On a loaded machine it can take longer to start than a client's retransmissions
        // last: wait until it answers.
        wait_for_udp(coturn.addr);
        coturn
    }
}

/// Sends STUN Binding requests until the server answers one, failing the test after 20 s. Each
/// wait is a receive with a timeout: the answer ends it at once.
fn wait_for_udp(addr: SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a read timeout");
    // A Binding request with no attributes: type 0x0001, length 0, the magic cookie and a
    // transaction id.
    let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
    request.extend_from_slice(b"rtcdesk-wait");
    let give_up = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 1500];
    loop {
        let _ = socket.send_to(&request, addr);
        if let Ok((_, from)) = socket.recv_from(&mut buf) {
            if from == addr {
                return;
            }
        }
        assert!(
            Instant::now() < give_up,
            "turnserver never answered on UDP {addr}"
        );
    }
}

/// Polls a TCP port until it accepts a connection, failing the test after 10 s.
fn wait_for_listener(addr: SocketAddr) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < give_up,
            "turnserver never listened on TCP {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

static NEXT_DB: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(userdb) = &self.userdb {
            let _ = std::fs::remove_file(userdb);
        }
    }
}
