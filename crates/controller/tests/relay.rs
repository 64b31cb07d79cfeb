//! A puppet and a controller that may only meet through a TURN relay (coturn on loopback):
//! both relay-only, so every datagram of the session goes through the relay, and the video
//! still arrives and decodes.

mod common;
#[path = "../../stun/tests/common/coturn.rs"]
mod coturn;

use common::*;
use coturn::{Coturn, TurnOptions};
use std::time::Duration;

use rtcdesk_controller::{ConnectError, Controller, ControllerEvent};
use rtcdesk_peer::{CandidateKind, TurnServer};

fn relay(turn: &Coturn) -> Vec<TurnServer> {
    let url = format!("turn:{}", turn.addr);
    vec![TurnServer::resolve(&url, "alice", "secret").expect("the URL resolves")]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_arrives_over_a_relay_only_session_through_coturn() {
    let turn = Coturn::start_turn(&TurnOptions::user("alice", "secret"));
    let puppet = start_puppet_with(|config| {
        config.turn_servers = relay(&turn);
        config.relay_only = true;
    })
    .await;
    let mut config = controller_config(&puppet);
    config.turn_servers = relay(&turn);
    config.relay_only = true;
    let (sink, mut pictures) = channel_sink();
    let mut controller = Controller::connect(config, sink)
        .await
        .expect("connects through the relay");
    let picture = wait_picture(&mut pictures, "a picture", |p| p.stamp.is_some()).await;
    assert_eq!(picture.image.width, WIDTH);
    // What the user is told: the path goes through the relay, and when the first picture came.
    let (mut path, mut first) = (None, None);
    while path.is_none() || first.is_none() {
        match tokio::time::timeout(Duration::from_secs(10), controller.next_event()).await {
            Ok(Some(ControllerEvent::PathSelected(pair))) => path = Some(pair),
            Ok(Some(ControllerEvent::FirstPicture(after))) => first = Some(after),
            Ok(Some(_)) => {}
            other => panic!("no path or first-picture event: {other:?}"),
        }
    }
    let path = path.expect("a path");
    assert_eq!(path.local_kind, CandidateKind::Relayed, "{path:?}");
    assert!(first.expect("a time") > Duration::ZERO);
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_only_controller_with_a_wrong_password_is_told_why_it_cannot_connect() {
    let turn = Coturn::start_turn(&TurnOptions::user("alice", "secret"));
    let puppet = start_puppet().await;
    let mut config = controller_config(&puppet);
    config.turn_servers =
        vec![
            TurnServer::resolve(&format!("turn:{}", turn.addr), "alice", "wrong")
                .expect("the URL resolves"),
        ];
    config.relay_only = true;
    config.connect_timeout = Duration::from_secs(4);
    let (sink, _pictures) = channel_sink();
    let error = Controller::connect(config, sink)
        .await
        .expect_err("no path can work: the only relay refuses us");
    assert_eq!(error.exit_code(), rtcdesk_controller::EXIT_CONNECTION_LOST);
    let ConnectError::ConnectionFailed(line) = &error else {
        panic!("not a connection failure: {error}");
    };
    assert!(
        line.contains("no candidate pair succeeded within 4 s"),
        "{line}"
    );
    assert!(line.contains("tried local none, remote host"), "{line}");
    assert!(line.contains(&turn.addr.to_string()), "{line}");
    assert!(line.contains("rejected user \"alice\""), "{line}");
    puppet.shutdown().await;
}

#[test]
fn a_turn_url_that_is_not_one_is_refused_with_its_reason() {
    let error = TurnServer::resolve("stun:example.org", "alice", "secret").unwrap_err();
    assert!(error.contains("stun:example.org"), "{error}");
}
