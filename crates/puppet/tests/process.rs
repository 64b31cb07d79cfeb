//! The real `puppet` binary against a controller, through a separate signaling server: what a
//! controller sees when the puppet's process dies, or its machine vanishes from the network.

use rtcdesk_pake::PairingCode;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rtcdesk_controller::{
    Controller, ControllerConfig, ControllerEvent, DecodedPicture, EndReason, FrameSink,
};
use rtcdesk_signal::server::{Server, ServerConfig};
use tokio::sync::mpsc;

/// The protocol's promise: a controller learns that its puppet is gone within 10 s.
const DEADLINE: Duration = Duration::from_secs(10);

/// The puppet process, killed when the test ends however it ends.
struct PuppetProcess(Child);

impl Drop for PuppetProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl PuppetProcess {
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }
}

/// Tells the test when the first picture arrived.
struct FirstPicture(Option<mpsc::UnboundedSender<()>>);

impl FrameSink for FirstPicture {
    fn frame(&mut self, _picture: &DecodedPicture<'_>) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the puppet binary on `signal_url` and reads its control code from its output.
async fn start_puppet(signal_url: &str) -> (PuppetProcess, PairingCode) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_puppet"))
        .args(["--signal", signal_url, "--source", "synthetic"])
        .args(["--synthetic-size", "320x180", "--accept-all", "--fps", "10"])
        .arg("--no-window")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the puppet binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let process = PuppetProcess(child);
    let code = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.ok()?;
            if let Some(code) = line.strip_prefix("Control code:") {
                return code.trim().parse::<PairingCode>().ok();
            }
        }
        None
    });
    let code = tokio::time::timeout(DEADLINE, code)
        .await
        .expect("the puppet prints its code in time")
        .expect("reader")
        .expect("a control code line");
    (process, code)
}

/// Connects a controller to the puppet and waits for its first picture.
async fn connect(signal_url: &str, code: PairingCode) -> Controller {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut config = ControllerConfig::for_pairing(signal_url, code);
    config.name = "process test".into();
    config.decoder_threads = 1;
    let controller = Controller::connect(config, Box::new(FirstPicture(Some(tx))))
        .await
        .expect("the controller connects");
    tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("a first picture in time")
        .expect("the sink lives");
    controller
}

/// Waits for the controller's `Ended`.
async fn ended(controller: &mut Controller) -> EndReason {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::Ended(reason)) => return reason,
                Some(_) => {}
                None => panic!("events ended without Ended"),
            }
        }
    })
    .await
    .expect("the controller notices within 10 s")
}

async fn server() -> Server {
    Server::bind(ServerConfig::new("127.0.0.1:0".parse().expect("address")))
        .await
        .expect("the signaling server starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_puppet_process_is_reported_within_ten_seconds() {
    let server = server().await;
    let url = server.url();
    let (puppet, code) = start_puppet(&url).await;
    let mut controller = connect(&url, code).await;
    // SIGKILL: no `leave`, no DTLS close; the kernel closes its sockets.
    puppet.signal("KILL");
    let reason = ended(&mut controller).await;
    assert!(
        matches!(reason, EndReason::PuppetLeft | EndReason::ConnectionLost),
        "{reason:?}"
    );
    assert_eq!(reason.exit_code(), 6);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puppet_that_vanishes_from_the_network_is_reported_within_ten_seconds() {
    let server = server().await;
    let url = server.url();
    let (puppet, code) = start_puppet(&url).await;
    let mut controller = connect(&url, code).await;
    // SIGSTOP: the process stays, its sockets stay open, but nothing answers any more, as when
    // the puppet's machine loses its network. Only silence tells: the signaling server's pings
    // and the peer's own silence timer.
    puppet.signal("STOP");
    let reason = ended(&mut controller).await;
    assert!(
        matches!(reason, EndReason::PuppetLeft | EndReason::ConnectionLost),
        "{reason:?}"
    );
    puppet.signal("CONT");
    server.shutdown().await;
}
