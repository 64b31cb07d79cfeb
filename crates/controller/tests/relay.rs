//! A puppet and a controller that may only meet through a TURN relay (coturn on loopback):
//! both relay-only, so every datagram of the session goes through the relay, and the video
//! still arrives and decodes.

mod common;
#[path = "../../stun/tests/common/coturn.rs"]
mod coturn;

use common::*;
use coturn::{Coturn, TurnOptions};
use rtcdesk_controller::Controller;
use rtcdesk_peer::TurnServer;

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
    let controller = Controller::connect(config, sink)
        .await
        .expect("connects through the relay");
    let picture = wait_picture(&mut pictures, "a picture", |p| p.stamp.is_some()).await;
    assert_eq!(picture.image.width, WIDTH);
    controller.close().await;
    puppet.shutdown().await;
}

#[test]
fn a_turn_url_that_is_not_one_is_refused_with_its_reason() {
    let error = TurnServer::resolve("stun:example.org", "alice", "secret").unwrap_err();
    assert!(error.contains("stun:example.org"), "{error}");
}
