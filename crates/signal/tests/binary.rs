//! The `rtcdesk-signal` binary: it starts, says where it listens, and serves clients.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rtcdesk_proto::signal::{Register, SignalMessage};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::tls::TlsOptions;

/// Kills the server even when an assertion fails.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and reads stdout up to its "listening on URL" line; returns the URL and
/// the fingerprint line's value, if one was printed.
fn start(args: &[&str]) -> (Running, String, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtcdesk-signal"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut fingerprint = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(f) = line.strip_prefix("certificate sha256 fingerprint: ") {
            fingerprint = Some(f.to_string());
        }
        if let Some(url) = line.strip_prefix("listening on ") {
            return (running, url.to_string(), fingerprint);
        }
    }
    panic!("the server exited without saying where it listens");
}

async fn registers(url: &str, tls: &TlsOptions) {
    let mut client = SignalClient::connect(url, tls).await.unwrap();
    client.send(&Register::named("pc").into()).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), client.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(reply, Some(SignalMessage::Registered(_))),
        "{reply:?}"
    );
    client.close().await.unwrap();
}

#[tokio::test]
async fn self_signed_prints_a_fingerprint_clients_can_pin() {
    let (_server, url, fingerprint) = start(&["--listen", "127.0.0.1:0", "--self-signed"]);
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    let pinned = TlsOptions::pinned(&fingerprint.expect("a fingerprint")).unwrap();
    registers(&url, &pinned).await;
}

#[tokio::test]
async fn plain_ws_on_loopback_serves_without_a_warning_and_elsewhere_warns() {
    let (mut server, url, fingerprint) = start(&["--listen", "127.0.0.1:0"]);
    assert!(url.starts_with("ws://"), "{url}");
    assert!(fingerprint.is_none());
    registers(&url, &TlsOptions::default()).await;
    let _ = server.0.kill();
    let mut stderr = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!stderr.contains("unencrypted"), "{stderr}");

    let (mut server, _url, _) = start(&["--listen", "0.0.0.0:0"]);
    let _ = server.0.kill();
    let mut stderr = String::new();
    server
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("unencrypted"), "{stderr}");
}
