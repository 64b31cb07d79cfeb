//! Server-reflexive candidates: the session asks STUN servers over its own sockets and trickles
//! what they say, while the same sockets carry the WebRTC traffic.

mod common;
#[path = "../../stun/tests/common/coturn.rs"]
mod coturn;

use std::net::SocketAddr;

use common::*;
use coturn::Coturn;
use rtcdesk_peer::{PeerEvent, Role};
use rtcdesk_stun::{parse, Attribute, Class, Message, METHOD_BINDING};
use tokio::net::UdpSocket;

/// A STUN server that says every client is at `mapped`.
async fn fake_stun_server(mapped: SocketAddr) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((len, source)) = socket.recv_from(&mut buf).await {
            let Ok(request) = parse(&buf[..len]) else {
                continue;
            };
            let response = Message {
                class: Class::SuccessResponse,
                method: METHOD_BINDING,
                transaction_id: request.transaction_id,
                attributes: vec![
                    Attribute::XorMappedAddress(mapped),
                    Attribute::Fingerprint(0),
                ],
            };
            let _ = socket.send_to(&response.encode(None), source).await;
        }
    });
    addr
}

async fn next_candidate_or_done(
    events: &mut tokio::sync::mpsc::Receiver<PeerEvent>,
) -> Option<String> {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap();
        match event {
            PeerEvent::LocalCandidate { candidate, mid } => {
                assert!(mid.is_some(), "candidates carry the bundle mid");
                return Some(candidate);
            }
            PeerEvent::GatheringComplete => return None,
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mapped_address_is_trickled_as_a_srflx_candidate_then_gathering_completes() {
    let public: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let mut config = loopback_config(Role::Offerer);
    config.stun_servers = vec![fake_stun_server(public).await];
    let mut puppet = rtcdesk_peer::Peer::start(config).unwrap();
    let offer = puppet.handle.create_offer().await.unwrap();
    assert!(offer.contains("m=video"));

    let mut candidates = Vec::new();
    while let Some(candidate) = next_candidate_or_done(&mut puppet.events).await {
        candidates.push(candidate);
    }
    let host = puppet.handle.local_addresses()[0];
    assert!(
        candidates
            .iter()
            .any(|c| c.contains(&format!("{} {} typ host", host.ip(), host.port()))),
        "{candidates:?}"
    );
    assert!(
        candidates
            .iter()
            .any(|c| c.contains("203.0.113.7 40000 typ srflx")),
        "{candidates:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_gathers_against_coturn_and_still_connects() {
    let coturn = Coturn::start();

    // coturn answers from its port once it is up; the STUN client's retransmissions (500 ms
    // doubling) wait for it. Gathering completes only when the answer was read from the
    // session's socket, so this also proves STUN and WebRTC share the socket correctly.
    let server = coturn.addr;
    let mut puppet_config = loopback_config(Role::Offerer);
    puppet_config.stun_servers = vec![server];
    let mut controller_config = loopback_config(Role::Answerer);
    controller_config.stun_servers = vec![server];
    let (puppet, controller) = start_pair(puppet_config, controller_config).await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    puppet.wait_for_event(PeerEvent::GatheringComplete).await;
    controller
        .wait_for_event(PeerEvent::GatheringComplete)
        .await;
    puppet
        .wait_for_event(PeerEvent::ChannelOpen(rtcdesk_peer::Channel::Input))
        .await;
}
