//! Relayed candidates through a real TURN server (coturn on loopback): two relay-only peers
//! reach each other only through their allocations, and data and video flow both ways.

mod common;
#[path = "../../stun/tests/common/coturn.rs"]
mod coturn;

use std::time::Instant;

use common::*;
use coturn::{Coturn, TurnOptions};
use rtcdesk_peer::TurnServer;
use rtcdesk_peer::{Channel, EncodedVideoFrame, Message, Peer, PeerConfig, PeerEvent, Role};
use rtcdesk_stun::turn::TurnTransport;
use tokio::sync::mpsc;

fn relay_only(role: Role, server: &Coturn, password: &str) -> PeerConfig {
    relay_only_over(role, server.addr, TurnTransport::Udp, password)
}

fn relay_only_over(
    role: Role,
    server: std::net::SocketAddr,
    transport: TurnTransport,
    password: &str,
) -> PeerConfig {
    let mut config = loopback_config(role);
    config.relay_only = true;
    config.turn_servers = vec![TurnServer {
        server,
        transport,
        username: "alice".into(),
        password: password.into(),
        tls: None,
    }];
    config
}

/// Waits until both ends have their control channel open.
async fn control_open(puppet: &mut Side, controller: &mut Side) {
    for side in [puppet, controller] {
        side.wait_for("control open", |e| {
            (e == PeerEvent::ChannelOpen(Channel::Control)).then_some(())
        })
        .await;
    }
}

/// Sends `text` on the control channel and checks it arrives whole at `to`.
async fn text_arrives(from: &Side, to: &mut Side, text: &str) {
    from.handle
        .send_data(Channel::Control, Message::Text(text.into()))
        .await
        .unwrap();
    let got = to
        .wait_for("data", |e| match e {
            PeerEvent::Data(Channel::Control, m) => Some(m),
            _ => None,
        })
        .await;
    assert_eq!(got, Message::Text(text.into()));
}

/// Sends one keyframe of `len` bytes from the puppet once it asks for one, and checks the
/// controller receives it byte for byte.
async fn keyframe_arrives(puppet: &Side, controller: &mut Side, len: usize) {
    let sender = puppet.handle.video_sender();
    tokio::time::timeout(PATIENCE, sender.keyframe_requested())
        .await
        .unwrap();
    sender.take_keyframe_request();
    let frame = av1_frame(0, len, true);
    sender.send(EncodedVideoFrame {
        data: frame.clone().into(),
        capture_time: Instant::now(),
        keyframe: true,
    });
    let received = tokio::time::timeout(PATIENCE, controller.video().recv())
        .await
        .expect("video through the relay")
        .unwrap();
    assert_eq!(&received.data[..], &frame[..]);
}

/// Drives a puppet's gathering to its end and returns the one relay failure it reported;
/// a relayed candidate on the way is a failure of the test.
async fn relay_failure(puppet: &mut Peer) -> (std::net::SocketAddr, String) {
    puppet.handle.create_offer().await.unwrap();
    let mut failure = None;
    let mut complete = false;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !(complete && failure.is_some()) {
        match tokio::time::timeout_at(deadline, puppet.events.recv()).await {
            Ok(Some(PeerEvent::RelayFailed { server, reason })) => failure = Some((server, reason)),
            Ok(Some(PeerEvent::GatheringComplete)) => complete = true,
            Ok(Some(PeerEvent::LocalCandidate { candidate, .. })) => {
                panic!("no candidate expected: {candidate}")
            }
            Ok(Some(_)) => {}
            other => panic!("ended without a report: {other:?}"),
        }
    }
    failure.unwrap()
}

/// Collects the local candidates a peer announces (before `connect` takes its events over).
async fn candidates_of(events: &mut mpsc::Receiver<PeerEvent>, limit: usize) -> Vec<String> {
    let mut found = Vec::new();
    while found.len() < limit {
        match tokio::time::timeout(PATIENCE, events.recv()).await {
            Ok(Some(PeerEvent::LocalCandidate { candidate, .. })) => found.push(candidate),
            Ok(Some(PeerEvent::GatheringComplete)) | Ok(None) | Err(_) => break,
            Ok(Some(_)) => {}
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_peers_connect_through_coturn_and_carry_data_and_video() {
    let turn = Coturn::start_turn(&TurnOptions::user("alice", "secret"));
    let (puppet, controller) = start_pair(
        relay_only(Role::Offerer, &turn, "secret"),
        relay_only(Role::Answerer, &turn, "secret"),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    control_open(&mut puppet, &mut controller).await;
    text_arrives(&puppet, &mut controller, "through the relay").await;
    keyframe_arrives(&puppet, &mut controller, 3_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_offers_nothing_but_relayed_candidates() {
    let turn = Coturn::start_turn(&TurnOptions::user("alice", "secret"));
    let mut puppet = Peer::start(relay_only(Role::Offerer, &turn, "secret")).unwrap();
    let offer = puppet.handle.create_offer().await.unwrap();
    assert!(!offer.contains("typ host"), "{offer}");
    let candidates = candidates_of(&mut puppet.events, 8).await;
    assert!(!candidates.is_empty(), "a relayed candidate was trickled");
    for candidate in &candidates {
        assert!(candidate.contains("typ relay"), "{candidate}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_turn_password_is_reported_naming_the_server_and_gathering_still_ends() {
    let turn = Coturn::start_turn(&TurnOptions::user("alice", "secret"));
    let mut puppet = Peer::start(relay_only(Role::Offerer, &turn, "wrong")).unwrap();
    let (server, reason) = relay_failure(&mut puppet).await;
    assert_eq!(server, turn.addr);
    assert!(reason.contains(&turn.addr.to_string()), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_over_tcp_carries_data_and_video_and_the_path_says_relay() {
    let turn = Coturn::start_turn(&TurnOptions::user("alice", "secret"));
    turn.wait_for_tcp();
    // The controller reaches the TURN server only over TCP (as behind a UDP-blocking firewall);
    // the puppet's allocation is over UDP.
    let (puppet, controller) = start_pair(
        relay_only(Role::Offerer, &turn, "secret"),
        relay_only_over(Role::Answerer, turn.addr, TurnTransport::Tcp, "secret"),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    let path = controller
        .wait_for("path", |e| match e {
            PeerEvent::PathSelected(path) => Some(path),
            _ => None,
        })
        .await;
    assert_eq!(path.local_kind, rtcdesk_peer::CandidateKind::Relayed);
    assert_eq!(path.remote_kind, rtcdesk_peer::CandidateKind::Relayed);
    control_open(&mut puppet, &mut controller).await;
    text_arrives(&controller, &mut puppet, "over tcp").await;
    // A frame larger than one TCP read, so the stream's framing is exercised.
    keyframe_arrives(&puppet, &mut controller, 60_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_tcp_turn_server_is_reported_and_gathering_still_ends() {
    // A port nothing listens on: the connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut puppet = Peer::start(relay_only_over(
        Role::Offerer,
        closed,
        TurnTransport::Tcp,
        "secret",
    ))
    .unwrap();
    let (server, reason) = relay_failure(&mut puppet).await;
    assert_eq!(server, closed);
    assert!(reason.contains("unreachable"), "{reason}");
}

/// A self-signed certificate for `localhost` in a temporary directory coturn can read.
struct TlsFiles {
    dir: std::path::PathBuf,
    cert: rustls::pki_types::CertificateDer<'static>,
}

impl TlsFiles {
    fn new(tag: &str) -> TlsFiles {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let dir = std::env::temp_dir().join(format!("rtcdesk-peer-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
        TlsFiles {
            dir,
            cert: cert.der().clone(),
        }
    }

    fn coturn(&self) -> Coturn {
        let turn = Coturn::start_turn(&TurnOptions {
            tls: Some((self.dir.join("cert.pem"), self.dir.join("key.pem"))),
            ..TurnOptions::user("alice", "secret")
        });
        turn.wait_for_tls();
        turn
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn over_tls(
    role: Role,
    turn: &Coturn,
    trusted: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> PeerConfig {
    let mut config = relay_only_over(
        role,
        turn.tls_addr.expect("a TLS port"),
        TurnTransport::Tcp,
        "secret",
    );
    config.turn_servers[0].tls = Some(rtcdesk_peer::TurnTls {
        name: "localhost".into(),
        extra_roots: trusted,
    });
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_over_turns_tls_carries_data_and_video() {
    let files = TlsFiles::new("turns");
    let turn = files.coturn();
    // The controller reaches the TURN server only over TLS (as behind a firewall that passes
    // nothing else); the puppet's allocation is over UDP.
    let (puppet, controller) = start_pair(
        relay_only(Role::Offerer, &turn, "secret"),
        over_tls(Role::Answerer, &turn, vec![files.cert.clone()]),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    let path = controller
        .wait_for("path", |e| match e {
            PeerEvent::PathSelected(path) => Some(path),
            _ => None,
        })
        .await;
    assert_eq!(path.local_kind, rtcdesk_peer::CandidateKind::Relayed);
    control_open(&mut puppet, &mut controller).await;
    text_arrives(&controller, &mut puppet, "over tls").await;
    keyframe_arrives(&puppet, &mut controller, 60_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turns_server_with_an_untrusted_certificate_is_refused_and_reported() {
    let files = TlsFiles::new("turns-untrusted");
    let turn = files.coturn();
    // Only the public CAs are trusted: a self-signed certificate must not be accepted.
    let mut puppet = Peer::start(over_tls(Role::Offerer, &turn, Vec::new())).unwrap();
    let (server, reason) = relay_failure(&mut puppet).await;
    assert_eq!(Some(server), turn.tls_addr);
    assert!(reason.contains("TLS handshake failed"), "{reason}");
}

#[test]
fn a_turns_url_asks_for_tls_with_its_host_and_a_turn_url_does_not() {
    let secure = TurnServer::resolve("turns:localhost:5349", "alice", "secret").unwrap();
    let tls = secure.tls.expect("turns: is TLS");
    assert_eq!(tls.name, "localhost");
    assert_eq!(secure.transport, TurnTransport::Tcp);
    let plain =
        TurnServer::resolve("turn:localhost:3478?transport=tcp", "alice", "secret").unwrap();
    assert_eq!(plain.tls, None);
    let mut tls = tls;
    assert!(tls.trust_ca_pem(b"not pem").is_err());
}
