//! Many sessions on one socket set: a puppet with many viewers, a controller watching many
//! puppets, each one endpoint over real loopback sockets.

mod common;

use common::*;
use rtcdesk_peer::{Channel, Endpoint, Message, PeerEvent, Role};

const SESSIONS: usize = 16;

async fn receive_on(side: &mut Side, channel: Channel) -> Message {
    side.wait_for("Data", |e| match e {
        PeerEvent::Data(c, message) if c == channel => Some(message),
        _ => None,
    })
    .await
}

/// Each session gets its own message, proving every datagram went to the right session.
async fn talk(hosted: &mut [Side], others: &mut [Side]) {
    for (index, side) in hosted.iter_mut().enumerate() {
        let message = Message::Text(format!("to session {index}"));
        side.handle
            .send_data(Channel::Control, message)
            .await
            .unwrap();
    }
    for (index, side) in others.iter_mut().enumerate() {
        let got = receive_on(side, Channel::Control).await;
        assert_eq!(got, Message::Text(format!("to session {index}")));
        let reply = Message::Binary(vec![index as u8; 32]);
        side.handle.send_data(Channel::Input, reply).await.unwrap();
    }
    for (index, side) in hosted.iter_mut().enumerate() {
        let got = receive_on(side, Channel::Input).await;
        assert_eq!(got, Message::Binary(vec![index as u8; 32]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puppet_hosts_sixteen_viewers_on_one_socket_set() {
    let endpoint = Endpoint::bind(Some("127.0.0.1:0".parse().unwrap()), 1 << 20).unwrap();
    assert_eq!(endpoint.local_addresses().len(), 1);
    let mut puppets = Vec::new();
    let mut controllers = Vec::new();
    for _ in 0..SESSIONS {
        let puppet = endpoint
            .start_session(loopback_config(Role::Offerer))
            .unwrap();
        assert_eq!(puppet.handle.local_addresses(), endpoint.local_addresses());
        let controller = rtcdesk_peer::Peer::start(loopback_config(Role::Answerer)).unwrap();
        let (puppet, controller) = connect(puppet, controller, Rewrites::default()).await;
        puppets.push(puppet);
        controllers.push(controller);
    }
    talk(&mut puppets, &mut controllers).await;
    // One viewer leaves; the others go on.
    puppets[3].handle.close().await;
    controllers[3].wait_for_event(PeerEvent::Closed).await;
    let (mut rest_puppets, mut rest_controllers): (Vec<_>, Vec<_>) = puppets
        .into_iter()
        .zip(controllers)
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, pair)| pair)
        .unzip();
    talk(&mut rest_puppets, &mut rest_controllers).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_watches_sixteen_puppets_on_one_socket_set() {
    let endpoint = Endpoint::bind(Some("127.0.0.1:0".parse().unwrap()), 1 << 20).unwrap();
    let mut puppets = Vec::new();
    let mut controllers = Vec::new();
    for _ in 0..SESSIONS {
        let puppet = rtcdesk_peer::Peer::start(loopback_config(Role::Offerer)).unwrap();
        let controller = endpoint
            .start_session(loopback_config(Role::Answerer))
            .unwrap();
        let (puppet, controller) = connect(puppet, controller, Rewrites::default()).await;
        puppets.push(puppet);
        controllers.push(controller);
    }
    talk(&mut controllers, &mut puppets).await;
}
