//! A proctor (the controller's room side) against a real signaling server and real puppets
//! that join with the room code: the roster comes in order, every member's tile goes live with
//! its name, the grid picture shows each tile's label, focus is told to the member, and ending
//! the room ends every member's session.

use std::time::Duration;

use rtcdesk_controller::grid::{self, TileState};
use rtcdesk_controller::room::{Proctor, ProctorConfig, RoomEvent};
use rtcdesk_proto::signal::{ControlCode, MemberStatus, SessionId};
use rtcdesk_puppet::{EndReason, Puppet, PuppetConfig, PuppetEvent, Signaling, Source};
use rtcdesk_signal::server::{Server, ServerConfig};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(30);

async fn next_room_event(proctor: &mut Proctor) -> RoomEvent {
    timeout(WAIT, proctor.next_event())
        .await
        .expect("a room event in time")
        .expect("the room goes on")
}

async fn join(server: &Server, code: ControlCode, name: &str) -> Puppet {
    let mut config = PuppetConfig::loopback(Source::Synthetic {
        width: 320,
        height: 180,
    });
    config.name = name.into();
    config.signaling = Signaling::Url(server.url());
    config.join = Some(code);
    Puppet::start(config).await.expect("joins the room")
}

async fn wait_puppet_event(
    puppet: &mut Puppet,
    mut wanted: impl FnMut(&PuppetEvent) -> bool,
) -> PuppetEvent {
    timeout(WAIT, async {
        loop {
            let event = puppet.next_event().await.expect("puppet running");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("the event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proctor_sees_every_member_live_with_its_name_and_ending_the_room_ends_them() {
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let mut proctor = Proctor::open(ProctorConfig {
        signal_url: server.url(),
        tls: Default::default(),
        room_name: "Exam hall 2".into(),
        bind: Some("127.0.0.1:0".parse().unwrap()),
        decoder_threads: 1,
    })
    .await
    .expect("the room opens");
    let code = match next_room_event(&mut proctor).await {
        RoomEvent::Opened { code, .. } => code,
        other => panic!("not opened: {other:?}"),
    };

    let names = ["ada", "grace"];
    let mut puppets = Vec::new();
    let mut sessions: Vec<SessionId> = Vec::new();
    for name in names {
        puppets.push(join(&server, code, name).await);
        match next_room_event(&mut proctor).await {
            RoomEvent::Joined {
                session,
                name: joined,
            } => {
                assert_eq!(joined, name, "the roster comes in join order");
                sessions.push(session);
            }
            other => panic!("not a join: {other:?}"),
        }
    }

    // Every tile goes live (a picture arrives) under its member's name.
    let mut live = std::collections::BTreeSet::new();
    while live.len() < names.len() {
        if let RoomEvent::FirstPicture { session, .. } = next_room_event(&mut proctor).await {
            live.insert(session);
        }
    }
    let tiles = proctor.tiles();
    let snapshot: Vec<grid::Tile> = tiles.lock().unwrap().values().cloned().collect();
    assert!(
        snapshot
            .iter()
            .all(|tile| tile.state == TileState::Live && tile.picture.is_some()),
        "every tile live with a picture"
    );
    let mut shown: Vec<&str> = snapshot.iter().map(|tile| tile.name.as_str()).collect();
    shown.sort();
    assert_eq!(shown, names);
    let now = std::time::Instant::now();
    let (width, _, rgba) = grid::render(&snapshot, now);
    for (index, tile) in snapshot.iter().enumerate() {
        let (x, y) = grid::tile_origin(index, snapshot.len());
        let label = grid::render_label(&tile.label(now), grid::TILE_WIDTH);
        for ly in 0..grid::LABEL_HEIGHT {
            let row = ((y + grid::TILE_HEIGHT + ly) * width + x) as usize * 4;
            let expected = (ly * grid::TILE_WIDTH) as usize * 4;
            let len = grid::TILE_WIDTH as usize * 4;
            assert_eq!(
                &rgba[row..row + len],
                &label[expected..expected + len],
                "the label of {} in the grid picture",
                tile.name
            );
        }
    }

    // Focus one member: it is told it is controlled.
    proctor
        .set_member_state(sessions[0].clone(), MemberStatus::Controlled)
        .await;
    match wait_puppet_event(&mut puppets[0], |e| {
        matches!(e, PuppetEvent::Watched { .. })
    })
    .await
    {
        PuppetEvent::Watched { state, by, .. } => {
            assert_eq!(state, MemberStatus::Controlled);
            assert_eq!(by, "Exam hall 2");
        }
        other => panic!("{other:?}"),
    }

    // Ending the room ends every member's session.
    proctor.end().await;
    for puppet in &mut puppets {
        match wait_puppet_event(puppet, |e| matches!(e, PuppetEvent::SessionEnded { .. })).await {
            PuppetEvent::SessionEnded { reason, .. } => assert_eq!(reason, EndReason::Left),
            other => panic!("{other:?}"),
        }
    }
    for puppet in puppets {
        puppet.shutdown().await;
    }
    server.shutdown().await;
}
