//! Asks a real STUN server, coturn's `turnserver` on loopback, for our mapped address.
//!
//! Runs when `turnserver` is installed (the Debian `coturn` package, which `cargo xtask ci`
//! installs); without it the test says so and passes, so a developer machine without coturn can
//! still run the suite.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rtcdesk_stun::{net::query_mapped_address, TransactionConfig};

/// Kills the server when the test ends, also when it fails.
struct TurnServer(Child);

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    StdUdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_turnserver(port: u16) -> Option<TurnServer> {
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
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("starting turnserver: {e}"),
    };
    // Keep reading its log so it never blocks on a full pipe.
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("turnserver: {line}");
        }
    });
    Some(TurnServer(child))
}

#[tokio::test]
async fn coturn_on_loopback_reports_our_address() {
    let port = free_udp_port();
    let Some(_server) = start_turnserver(port) else {
        panic!("turnserver is not installed: `cargo xtask deps` installs coturn, which this test checks against");
    };
    let server: SocketAddr = ([127, 0, 0, 1], port).into();
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ours = socket.local_addr().unwrap();
    // The server needs a moment to open its port: the transaction's own retransmissions
    // (100 ms doubling, 7 requests: ~12 s in all) cover that without any sleep.
    let config = TransactionConfig {
        initial_rto: Duration::from_millis(100),
        ..TransactionConfig::default()
    };
    let mapped = query_mapped_address(&socket, server, config).await.unwrap();
    assert_eq!(mapped, ours);
}
