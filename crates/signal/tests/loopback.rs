//! The signaling server and client over real sockets on loopback, through the public API only.
//! Nothing sleeps to wait: every wait is for an event, bounded by `tokio::time::timeout`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtcdesk_proto::signal::{
    Accept, Accepted, Answer, Candidate, Connect, ControlCode, ErrorCode, Leave, Left, Offer,
    Register, Reject, Rejected, SessionId, SignalMessage,
};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::router::RouterConfig;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::{ServerTls, TlsOptions};
use tokio_tungstenite::tungstenite::Message;

/// Longest any single wait may take before the test fails (events normally arrive in
/// milliseconds).
const WAIT: Duration = Duration::from_secs(5);

async fn start(router: RouterConfig) -> Server {
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.router = router;
    Server::bind(config).await.unwrap()
}

async fn client(server: &Server) -> SignalClient {
    SignalClient::connect(&server.url(), &TlsOptions::default())
        .await
        .unwrap()
}

async fn recv(client: &mut SignalClient) -> SignalMessage {
    tokio::time::timeout(WAIT, client.recv())
        .await
        .expect("a message in time")
        .unwrap()
        .expect("the connection is open")
}

async fn send(client: &mut SignalClient, message: impl Into<SignalMessage>) {
    client.send(&message.into()).await.unwrap();
}

async fn expect_error(client: &mut SignalClient, code: ErrorCode) {
    match recv(client).await {
        SignalMessage::Error(e) => assert_eq!(e.code, code, "{}", e.message),
        other => panic!("expected {code} error, got {other:?}"),
    }
}

/// Waits for the server to close the connection; returns its close code.
async fn expect_closed(client: &mut SignalClient) -> u16 {
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, client.recv())
        .await
        .expect("closed in time")
    {}
    client.close_reason().map(|(code, _)| code).unwrap_or(0)
}

async fn register(puppet: &mut SignalClient) -> ControlCode {
    send(puppet, Register::named("pc")).await;
    match recv(puppet).await {
        SignalMessage::Registered(r) => r.code,
        other => panic!("expected registered, got {other:?}"),
    }
}

/// `controller` connects to `code`; returns the session as the puppet and the controller saw it.
async fn ring(
    controller: &mut SignalClient,
    puppet: &mut SignalClient,
    code: ControlCode,
    name: &str,
) -> SessionId {
    // People type the code grouped; the wire accepts it that way.
    let grouped = format!(r#"{{"type":"connect","code":"{code}","name":"{name}"}}"#);
    let connect = SignalMessage::parse(&grouped).unwrap();
    controller.send(&connect).await.unwrap();
    let SignalMessage::Ringing(ringing) = recv(controller).await else {
        panic!("expected ringing")
    };
    let SignalMessage::Incoming(incoming) = recv(puppet).await else {
        panic!("expected incoming")
    };
    assert_eq!(incoming.session, ringing.session);
    assert_eq!(incoming.from, name);
    ringing.session
}

async fn accept(puppet: &mut SignalClient, controller: &mut SignalClient, session: &SessionId) {
    send(
        puppet,
        Accept {
            session: session.clone(),
        },
    )
    .await;
    assert_eq!(
        recv(controller).await,
        Accepted::new(session.clone()).into()
    );
}

async fn relay(from: &mut SignalClient, to: &mut SignalClient, message: SignalMessage) {
    from.send(&message).await.unwrap();
    assert_eq!(recv(to).await, message);
}

#[tokio::test]
async fn one_puppet_and_two_controllers_pair_relay_and_leave() {
    let server = start(RouterConfig::default()).await;
    let mut puppet = client(&server).await;
    let mut ada = client(&server).await;
    let mut bob = client(&server).await;
    let code = register(&mut puppet).await;

    let s_ada = ring(&mut ada, &mut puppet, code, "Ada").await;
    let s_bob = ring(&mut bob, &mut puppet, code, "Bob").await;
    assert_ne!(s_ada, s_bob);
    accept(&mut puppet, &mut ada, &s_ada).await;
    accept(&mut puppet, &mut bob, &s_bob).await;

    for (controller, session) in [(&mut ada, &s_ada), (&mut bob, &s_bob)] {
        let offer = Offer {
            session: session.clone(),
            sdp: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n".into(),
        };
        relay(&mut puppet, controller, offer.into()).await;
        let answer = Answer {
            session: session.clone(),
            sdp: "v=0\r\n".into(),
        };
        relay(controller, &mut puppet, answer.into()).await;
        for i in 0..4 {
            let candidate = |i: u32| Candidate {
                session: session.clone(),
                candidate: format!(
                    "candidate:{i} 1 udp 2113937151 127.0.0.1 {} typ host",
                    5000 + i
                ),
                mid: Some("0".into()),
            };
            relay(&mut puppet, controller, candidate(i).into()).await;
            relay(controller, &mut puppet, candidate(i + 10).into()).await;
        }
    }

    // Ada leaves; Bob's session is unaffected.
    send(
        &mut ada,
        Leave {
            session: s_ada.clone(),
        },
    )
    .await;
    assert_eq!(recv(&mut puppet).await, Left { session: s_ada }.into());
    relay(
        &mut bob,
        &mut puppet,
        Candidate {
            session: s_bob.clone(),
            candidate: String::new(),
            mid: None,
        }
        .into(),
    )
    .await;

    // Bob closes his connection cleanly: the puppet is told.
    bob.close().await.unwrap();
    assert_eq!(recv(&mut puppet).await, Left { session: s_bob }.into());
    server.shutdown().await;
}

#[tokio::test]
async fn a_rejected_controller_is_told_why() {
    let server = start(RouterConfig::default()).await;
    let (mut puppet, mut controller) = (client(&server).await, client(&server).await);
    let code = register(&mut puppet).await;
    let session = ring(&mut controller, &mut puppet, code, "Eve").await;
    send(
        &mut puppet,
        Reject {
            session: session.clone(),
            reason: Some("I do not know you".into()),
        },
    )
    .await;
    assert_eq!(
        recv(&mut controller).await,
        Rejected {
            session: session.clone(),
            reason: Some("I do not know you".into())
        }
        .into()
    );
    // The session is gone.
    send(&mut controller, Leave { session }).await;
    expect_error(&mut controller, ErrorCode::UnknownSession).await;
}

#[tokio::test]
async fn every_error_code_reaches_the_client_and_the_connection_stays_up() {
    let router = RouterConfig {
        max_sessions_per_connection: 1,
        ..RouterConfig::default()
    };
    let server = start(router).await;
    let (mut puppet, mut controller) = (client(&server).await, client(&server).await);
    let url = server.url();
    let (mut raw, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();

    // bad_message: not JSON, a binary frame, a missing field.
    raw.send(Message::text("hello?")).await.unwrap();
    raw.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    raw.send(Message::text(r#"{"type":"offer","session":"s"}"#))
        .await
        .unwrap();
    // unknown_type
    raw.send(Message::text(r#"{"type":"teleport"}"#))
        .await
        .unwrap();
    let mut codes = Vec::new();
    while codes.len() < 4 {
        let frame = tokio::time::timeout(WAIT, raw.next()).await.unwrap();
        if let Some(Ok(Message::Text(text))) = frame {
            match SignalMessage::parse(text.as_str()).unwrap() {
                SignalMessage::Error(e) => codes.push(e.code),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(
        codes,
        vec![
            ErrorCode::BadMessage,
            ErrorCode::BadMessage,
            ErrorCode::BadMessage,
            ErrorCode::UnknownType
        ]
    );

    // unknown_code
    let code = register(&mut puppet).await;
    let wrong = ControlCode::from_number((code.number() + 1) % ControlCode::SPACE).unwrap();
    send(
        &mut controller,
        Connect {
            code: wrong,
            name: "x".into(),
            pake: None,
        },
    )
    .await;
    expect_error(&mut controller, ErrorCode::UnknownCode).await;

    // not_allowed: the controller accepts its own session; relaying before accept.
    let session = ring(&mut controller, &mut puppet, code, "Ada").await;
    send(
        &mut controller,
        Accept {
            session: session.clone(),
        },
    )
    .await;
    expect_error(&mut controller, ErrorCode::NotAllowed).await;
    send(
        &mut puppet,
        Offer {
            session: session.clone(),
            sdp: "v=0".into(),
        },
    )
    .await;
    expect_error(&mut puppet, ErrorCode::NotAllowed).await;

    // busy: the puppet already has its one session.
    let mut third = client(&server).await;
    send(
        &mut third,
        Connect {
            code,
            name: "x".into(),
            pake: None,
        },
    )
    .await;
    expect_error(&mut third, ErrorCode::Busy).await;

    // unknown_session: a session that is not this connection's.
    send(
        &mut third,
        Offer {
            session,
            sdp: "v=0".into(),
        },
    )
    .await;
    expect_error(&mut third, ErrorCode::UnknownSession).await;

    // Every connection is still usable.
    assert_eq!(register(&mut third).await.digits().len(), 9);
    raw.send(Message::text(r#"{"type":"register","name":"raw"}"#))
        .await
        .unwrap();
    let frame = tokio::time::timeout(WAIT, raw.next()).await.unwrap();
    assert!(matches!(frame, Some(Ok(Message::Text(_)))));
}

#[tokio::test]
async fn six_failed_connects_from_one_address_are_rate_limited_for_the_window() {
    let server = start(RouterConfig::default()).await;
    let mut puppet = client(&server).await;
    let code = register(&mut puppet).await;
    let wrong = ControlCode::from_number((code.number() + 1) % ControlCode::SPACE).unwrap();
    let mut guesser = client(&server).await;
    for _ in 0..5 {
        send(
            &mut guesser,
            Connect {
                code: wrong,
                name: "x".into(),
                pake: None,
            },
        )
        .await;
        expect_error(&mut guesser, ErrorCode::UnknownCode).await;
    }
    send(
        &mut guesser,
        Connect {
            code: wrong,
            name: "x".into(),
            pake: None,
        },
    )
    .await;
    expect_error(&mut guesser, ErrorCode::RateLimited).await;
    assert_eq!(expect_closed(&mut guesser).await, 1008);

    // A fresh connection from the same address is refused even with the right code.
    let mut again = client(&server).await;
    send(
        &mut again,
        Connect {
            code,
            name: "x".into(),
            pake: None,
        },
    )
    .await;
    expect_error(&mut again, ErrorCode::RateLimited).await;
    assert_eq!(expect_closed(&mut again).await, 1008);
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection_with_1009_and_the_peer_gets_left() {
    let server = start(RouterConfig::default()).await;
    let mut puppet = client(&server).await;
    let code = register(&mut puppet).await;
    let (mut raw, _) = tokio_tungstenite::connect_async(server.url().as_str())
        .await
        .unwrap();
    raw.send(Message::text(format!(
        r#"{{"type":"connect","code":"{}","name":"big"}}"#,
        code.digits()
    )))
    .await
    .unwrap();
    let session = loop {
        let frame = tokio::time::timeout(WAIT, raw.next()).await.unwrap();
        if let Some(Ok(Message::Text(text))) = frame {
            if let SignalMessage::Ringing(r) = SignalMessage::parse(text.as_str()).unwrap() {
                break r.session;
            }
        }
    };
    let SignalMessage::Incoming(_) = recv(&mut puppet).await else {
        panic!()
    };
    let big = format!(
        r#"{{"type":"offer","session":"{session}","sdp":"{}"}}"#,
        "a".repeat(70 * 1024)
    );
    let _ = raw.send(Message::text(big)).await;
    let close = loop {
        match tokio::time::timeout(WAIT, raw.next()).await.unwrap() {
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close, Some(1009));
    assert_eq!(recv(&mut puppet).await, Left { session }.into());
}

#[tokio::test]
async fn a_flooding_connection_is_closed_with_1008() {
    let router = RouterConfig {
        flood_rate: 10,
        flood_burst: 20,
        ..RouterConfig::default()
    };
    let server = start(router).await;
    let mut flooder = client(&server).await;
    for _ in 0..40 {
        if flooder
            .send(
                &Leave {
                    session: "x".into(),
                }
                .into(),
            )
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(expect_closed(&mut flooder).await, 1008);
}

#[tokio::test]
async fn too_many_connections_from_one_address_get_busy_and_1013() {
    let router = RouterConfig {
        max_connections_per_address: 2,
        ..RouterConfig::default()
    };
    let server = start(router).await;
    let _a = client(&server).await;
    let mut b = client(&server).await;
    let mut c = client(&server).await;
    expect_error(&mut c, ErrorCode::Busy).await;
    assert_eq!(expect_closed(&mut c).await, 1013);
    assert_eq!(register(&mut b).await.digits().len(), 9);
}

#[tokio::test]
async fn a_killed_client_produces_left_on_the_other_end() {
    let server = start(RouterConfig::default()).await;
    let (mut puppet, mut controller) = (client(&server).await, client(&server).await);
    let code = register(&mut puppet).await;
    let session = ring(&mut controller, &mut puppet, code, "Ada").await;
    accept(&mut puppet, &mut controller, &session).await;
    // Dropping the client closes its socket without a close frame, as a killed process would.
    drop(controller);
    assert_eq!(recv(&mut puppet).await, Left { session }.into());
}

#[tokio::test]
async fn a_silent_client_is_dropped_and_left_arrives_within_the_dead_timeout() {
    let router = RouterConfig {
        // Short enough for a fast test, long enough that a busy CI machine does not make the
        // puppet (which reads, and so answers pings) look dead too.
        ping_interval: Duration::from_millis(250),
        dead_timeout: Duration::from_millis(1000),
        ..RouterConfig::default()
    };
    let server = start(router.clone()).await;
    let mut puppet = client(&server).await;
    let code = register(&mut puppet).await;
    // A raw WebSocket that connects, then never reads again: it never answers a ping.
    let (mut silent, _) = tokio_tungstenite::connect_async(server.url().as_str())
        .await
        .unwrap();
    silent
        .send(Message::text(format!(
            r#"{{"type":"connect","code":"{}","name":"mute"}}"#,
            code.digits()
        )))
        .await
        .unwrap();
    let SignalMessage::Incoming(incoming) = recv(&mut puppet).await else {
        panic!()
    };
    // The puppet keeps reading (and so answering pings) while it waits.
    assert_eq!(
        recv(&mut puppet).await,
        Left {
            session: incoming.session
        }
        .into()
    );
    // How soon is the router's business, tested on a virtual clock
    // (`idle_connections_are_pinged_and_dead_ones_dropped_with_left`).
    // The puppet, which answered every ping, is still connected.
    assert_eq!(register(&mut puppet).await.digits().len(), 9);
    drop(silent);
}

#[tokio::test]
async fn wss_with_a_self_signed_certificate_trusted_by_fingerprint_or_as_a_ca() {
    let tls = ServerTls::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap());
    config.tls = Some(tls.clone());
    let server = Server::bind(config).await.unwrap();
    let url = server.url();
    assert!(url.starts_with("wss://"));

    let pinned = TlsOptions::pinned(&tls.fingerprint()).unwrap();
    let mut puppet = SignalClient::connect(&url, &pinned).await.unwrap();
    let code = register(&mut puppet).await;

    let as_ca = TlsOptions::with_ca_pem(tls.cert_pem().as_bytes()).unwrap();
    let mut controller = SignalClient::connect(&url, &as_ca).await.unwrap();
    let session = ring(&mut controller, &mut puppet, code, "Ada").await;
    accept(&mut puppet, &mut controller, &session).await;

    // The public roots alone do not trust it, nor does a wrong pin.
    assert!(SignalClient::connect(&url, &TlsOptions::default())
        .await
        .is_err());
    let wrong = TlsOptions::pinned(&rtcdesk_signal::tls::fingerprint(b"other")).unwrap();
    assert!(SignalClient::connect(&url, &wrong).await.is_err());
    // Plain ws:// to a TLS port fails cleanly too.
    let plain = url.replacen("wss://", "ws://", 1);
    assert!(SignalClient::connect(&plain, &TlsOptions::default())
        .await
        .is_err());
    server.shutdown().await;
}
