//! End-to-end verified pairing over loopback: the twelve-digit code, a wrong secret, the nine
//! digits a browser uses, and a hostile signaling server that puts its own DTLS endpoints in
//! the middle of the session.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use rtcdesk_controller::{ConnectError, Controller, ControllerEvent};
use rtcdesk_pake::{PakeError, Secret};
use rtcdesk_peer::{Peer, PeerConfig, PeerEvent, Role};
use rtcdesk_proto::signal::{Answer, Candidate, Offer, SignalMessage};
use rtcdesk_puppet::{AcceptPolicy, EndReason, PuppetEvent, Signaling, UNVERIFIED_REFUSED};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::TlsOptions;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// A puppet whose accept callback records who it was asked about.
async fn asking_puppet(
    adjust: impl FnOnce(&mut rtcdesk_puppet::PuppetConfig),
) -> (rtcdesk_puppet::Puppet, Arc<Mutex<Vec<(String, bool)>>>) {
    let asked: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let record = asked.clone();
    let puppet = start_puppet_with(move |config| {
        config.accept = AcceptPolicy::Callback(Arc::new(move |request| {
            record
                .lock()
                .unwrap()
                .push((request.from.clone(), request.verified));
            rtcdesk_puppet::Decision::Control
        }));
        adjust(config);
    })
    .await;
    (puppet, asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_twelve_digits_pair_verified_and_the_user_is_told() {
    let (mut puppet, asked) = asking_puppet(|_| {}).await;
    let code = puppet.pairing_code();
    assert!(code.secret.is_some());
    assert_eq!(code.to_string().len(), 15, "shown as 123 456 789 012");
    let (mut controller, mut pictures) = connect_controller(&puppet).await;
    wait_controller_event(&mut controller, "the verified session", |e| {
        matches!(e, ControllerEvent::Verified)
    })
    .await;
    assert_eq!(
        *asked.lock().unwrap(),
        vec![("e2e controller".into(), true)]
    );
    wait_puppet_event(&mut puppet, "the connected session", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;
    // Video flows once verified.
    wait_picture(&mut pictures, "a picture", |_| true).await;
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_before_the_puppets_user_is_asked() {
    let (mut puppet, asked) = asking_puppet(|_| {}).await;
    let right = puppet.pairing_code().secret.unwrap();
    let wrong = (right.digits().parse::<u16>().unwrap() + 1) % 1000;
    let mut config = controller_config(&puppet);
    config.secret = Secret::from_number(wrong).map(rtcdesk_pake::Credential::Digits);
    let (sink, _pictures) = channel_sink();
    let error = Controller::connect(config, sink)
        .await
        .expect_err("a wrong secret does not connect");
    assert!(
        matches!(error, ConnectError::NotVerified(PakeError::WrongCode)),
        "{error}"
    );
    assert_eq!(error.exit_code(), rtcdesk_controller::EXIT_NOT_VERIFIED);
    wait_puppet_event(&mut puppet, "the failed run", |e| {
        matches!(e, PuppetEvent::VerificationFailed { failed_runs: 1, .. })
    })
    .await;
    assert!(asked.lock().unwrap().is_empty(), "the user was never asked");
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_digits_pair_unverified_unless_the_puppet_requires_verification() {
    let (puppet, asked) = asking_puppet(|_| {}).await;
    let mut config = controller_config(&puppet);
    config.secret = None;
    let (sink, _pictures) = channel_sink();
    let controller = Controller::connect(config, sink).await.expect("connects");
    assert_eq!(
        *asked.lock().unwrap(),
        vec![("e2e controller".into(), false)]
    );
    controller.close().await;
    puppet.shutdown().await;

    let (puppet, asked) = asking_puppet(|config| config.require_verified = true).await;
    let mut config = controller_config(&puppet);
    config.secret = None;
    let (sink, _pictures) = channel_sink();
    let error = Controller::connect(config, sink)
        .await
        .expect_err("refused");
    match error {
        ConnectError::Rejected { reason } => {
            assert_eq!(reason.as_deref(), Some(UNVERIFIED_REFUSED))
        }
        other => panic!("not a rejection: {other}"),
    }
    assert!(asked.lock().unwrap().is_empty());
    puppet.shutdown().await;
}

/// A hostile signaling relay on the puppet's connection: it passes everything through, except
/// that it answers the puppet's offer with a DTLS endpoint of its own and offers the
/// controller another one, so each side's encrypted connection ends at the relay. The
/// verification messages it cannot forge; it relays them untouched.
async fn hostile_relay(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut puppet_side = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut server_side = SignalClient::connect(&upstream, &TlsOptions::default())
            .await
            .unwrap();
        let mut toward_puppet: Option<Peer> = None;
        let mut toward_controller: Option<Peer> = None;
        // The one session it serves, learnt from the puppet's offer.
        let mut session = None;
        let start = |role| {
            let mut config = PeerConfig::new(role);
            config.bind = Some("127.0.0.1:0".parse().unwrap());
            Peer::start(config).unwrap()
        };
        loop {
            tokio::select! {
                frame = puppet_side.next() => {
                    let Some(Ok(WsMessage::Text(text))) = frame else { return };
                    let Ok(message) = SignalMessage::parse(&text) else { continue };
                    match message {
                        SignalMessage::Offer(offer) => {
                            let a = start(Role::Answerer);
                            let answer = a.handle.accept_offer(offer.sdp).await.unwrap();
                            let reply = SignalMessage::from(Answer { session: offer.session.clone(), sdp: answer });
                            puppet_side.send(WsMessage::Text(reply.encode().into())).await.unwrap();
                            let b = start(Role::Offerer);
                            let sdp = b.handle.create_offer().await.unwrap();
                            server_side.send(&Offer { session: offer.session.clone(), sdp }.into()).await.unwrap();
                            session = Some(offer.session.clone());
                            toward_puppet = Some(a);
                            toward_controller = Some(b);
                        }
                        SignalMessage::Candidate(c) => {
                            if let Some(a) = &toward_puppet {
                                let _ = a.handle.add_remote_candidate(c.candidate).await;
                            }
                        }
                        other => server_side.send(&other).await.unwrap(),
                    }
                }
                message = server_side.recv() => {
                    let Ok(Some(message)) = message else { return };
                    match message {
                        SignalMessage::Answer(answer) => {
                            if let Some(b) = &toward_controller {
                                b.handle.accept_answer(answer.sdp).await.unwrap();
                            }
                        }
                        SignalMessage::Candidate(c) => {
                            if let Some(b) = &toward_controller {
                                let _ = b.handle.add_remote_candidate(c.candidate).await;
                            }
                        }
                        other => {
                            puppet_side.send(WsMessage::Text(other.encode().into())).await.unwrap();
                        }
                    }
                }
                Some(event) = next_event(&mut toward_puppet) => {
                    if let (PeerEvent::LocalCandidate { candidate, mid }, Some(session)) = (event, session.clone()) {
                        let c = SignalMessage::from(Candidate { session, candidate, mid });
                        puppet_side.send(WsMessage::Text(c.encode().into())).await.unwrap();
                    }
                }
                Some(event) = next_event(&mut toward_controller) => {
                    if let (PeerEvent::LocalCandidate { candidate, mid }, Some(session)) = (event, session.clone()) {
                        server_side.send(&Candidate { session, candidate, mid }.into()).await.unwrap();
                    }
                }
            }
        }
    });
    url
}

async fn next_event(peer: &mut Option<Peer>) -> Option<PeerEvent> {
    match peer.as_mut() {
        Some(peer) => peer.events.recv().await,
        None => std::future::pending().await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signaling_server_in_the_middle_is_detected_on_both_sides() {
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let relay = hostile_relay(server.url()).await;
    let (mut puppet, asked) = asking_puppet(|config| {
        config.signaling = Signaling::Url(relay);
    })
    .await;
    // The controller reaches the real server; only the puppet's connection goes through the
    // relay.
    let mut config = controller_config(&puppet);
    config.signal_url = server.url();
    let (sink, _pictures) = channel_sink();
    let error = Controller::connect(config, sink)
        .await
        .expect_err("a session with someone in the middle never connects");
    assert!(
        matches!(error, ConnectError::NotVerified(PakeError::Intercepted)),
        "{error}"
    );
    assert!(error.to_string().contains("intercepted"), "{error}");
    assert_eq!(error.exit_code(), rtcdesk_controller::EXIT_NOT_VERIFIED);
    // The puppet's user was asked (the code was right), and the puppet found out too.
    assert_eq!(
        *asked.lock().unwrap(),
        vec![("e2e controller".into(), true)]
    );
    wait_puppet_event_within(
        &mut puppet,
        "the intercepted ending",
        Duration::from_secs(20),
        |e| {
            matches!(
                e,
                PuppetEvent::SessionEnded {
                    reason: EndReason::Intercepted,
                    ..
                }
            )
        },
    )
    .await;
    puppet.shutdown().await;
    server.shutdown().await;
}

/// A faithful relay in front of the puppet, except that the puppet's `fingerprints` message
/// (its MAC over the DTLS fingerprints) takes this much longer, as on a slow signaling path
/// while the peer connection is already up.
const SLOW_SIGNALING: Duration = Duration::from_millis(300);

async fn slow_fingerprints_relay(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut puppet_side = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut server_side = SignalClient::connect(&upstream, &TlsOptions::default())
            .await
            .unwrap();
        let (late_tx, mut late) = tokio::sync::mpsc::unbounded_channel::<SignalMessage>();
        loop {
            tokio::select! {
                frame = puppet_side.next() => {
                    let Some(Ok(WsMessage::Text(text))) = frame else { return };
                    let Ok(message) = SignalMessage::parse(&text) else { continue };
                    let is_fingerprints = matches!(&message, SignalMessage::Pake(p)
                        if matches!(rtcdesk_pake::PakeMessage::decode(&p.data),
                            Ok(rtcdesk_pake::PakeMessage::Fingerprints { .. })));
                    if is_fingerprints {
                        let late_tx = late_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(SLOW_SIGNALING).await;
                            let _ = late_tx.send(message);
                        });
                    } else {
                        server_side.send(&message).await.unwrap();
                    }
                }
                Some(message) = late.recv() => server_side.send(&message).await.unwrap(),
                message = server_side.recv() => {
                    let Ok(Some(message)) = message else { return };
                    puppet_side.send(WsMessage::Text(message.encode().into())).await.unwrap();
                }
            }
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_puppet_sends_before_the_controller_has_verified_it_is_kept_not_lost() {
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let relay = slow_fingerprints_relay(server.url()).await;
    let (mut puppet, _asked) = asking_puppet(|config| {
        config.signaling = Signaling::Url(relay);
    })
    .await;
    let mut config = controller_config(&puppet);
    config.signal_url = server.url();
    let (sink, _pictures) = channel_sink();
    // It connects only once verified, which waits for the puppet's late MAC.
    let connecting = tokio::spawn(Controller::connect(config, sink));
    // The puppet checked the controller's MAC and started: it speaks while its own MAC is
    // still on its way.
    wait_puppet_event(&mut puppet, "the puppet's side connected", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;
    puppet
        .chat_sender()
        .try_send("said before you could check me")
        .expect("chat queued");
    let mut controller = tokio::time::timeout(DEADLINE, connecting)
        .await
        .expect("connects once the puppet's MAC arrives")
        .unwrap()
        .expect("verified");
    let chat = wait_controller_event(
        &mut controller,
        "the chat line sent before verification",
        |e| matches!(e, ControllerEvent::Chat(_)),
    )
    .await;
    let ControllerEvent::Chat(line) = chat else {
        unreachable!()
    };
    assert_eq!(line.text, "said before you could check me");
    controller.close().await;
    puppet.shutdown().await;
    server.shutdown().await;
}
