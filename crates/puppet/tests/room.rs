//! A puppet started with `--join` (PuppetConfig::join) against a real signaling server and a
//! proctor made of parts (a signaling client and an answering peer): joining starts the
//! proctor's session without a question, video flows, the puppet hears when it is watched, and
//! it ends when the proctor ends the room. The proctor's grid gets the small thumbnail stream
//! until it focuses the member, then the full picture. A wrong room code is a clear start-up
//! error.

use std::time::Duration;

use rtcdesk_peer::{Peer, PeerConfig, PeerEvent, Role};
use rtcdesk_proto::signal::{
    Answer, Candidate, ControlCode, MemberState, MemberStatus, RoomCreate, RoomEnd, RoomId,
    SessionId, SignalMessage,
};
use rtcdesk_puppet::{
    EndReason, Puppet, PuppetConfig, PuppetEvent, Signaling, Source, THUMBNAIL_SIZE,
};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::TlsOptions;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

async fn server() -> Server {
    Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("the signaling server starts")
}

/// Opens a room as a proctor would: returns its connection, the room and its code.
async fn open_room(server: &Server) -> (SignalClient, RoomId, ControlCode) {
    let mut proctor = SignalClient::connect(&server.url(), &TlsOptions::default())
        .await
        .unwrap();
    proctor
        .send(
            &RoomCreate {
                name: "Exam hall 2".into(),
            }
            .into(),
        )
        .await
        .unwrap();
    match timeout(WAIT, proctor.recv()).await.expect("an answer") {
        Ok(Some(SignalMessage::RoomCreated(created))) => (proctor, created.room, created.code),
        other => panic!("no room: {other:?}"),
    }
}

fn member_config(server: &Server, code: ControlCode) -> PuppetConfig {
    let mut config = PuppetConfig::loopback(Source::Synthetic {
        width: 1280,
        height: 720,
    });
    config.name = "student 7".into();
    config.signaling = Signaling::Url(server.url());
    config.join = Some(code);
    config
}

async fn wait_event(
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
async fn a_puppet_that_joins_a_room_is_watched_without_a_question_and_ends_with_the_room() {
    let server = server().await;
    let (mut proctor, room, code) = open_room(&server).await;
    let mut puppet = Puppet::start(member_config(&server, code))
        .await
        .expect("joins the room");
    assert_eq!(puppet.control_code(), code);
    match wait_event(&mut puppet, |e| matches!(e, PuppetEvent::JoinedRoom { .. })).await {
        PuppetEvent::JoinedRoom { room_name, .. } => assert_eq!(room_name, "Exam hall 2"),
        other => panic!("{other:?}"),
    }

    // The proctor sees the member on its roster, then gets the puppet's offer: nobody was asked.
    let mut config = PeerConfig::new(Role::Answerer);
    config.bind = Some("127.0.0.1:0".parse().unwrap());
    let Peer {
        handle,
        mut events,
        mut video,
        ..
    } = Peer::start(config).expect("peer starts");
    let mut session: Option<SessionId> = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut connected = false;
    let frame = loop {
        tokio::select! {
            message = proctor.recv() => match message.expect("signaling works") {
                Some(SignalMessage::Member(member)) => {
                    assert_eq!(member.name, "student 7");
                    assert_eq!(member.state, MemberStatus::Joined);
                    session = Some(member.session);
                }
                Some(SignalMessage::Offer(offer)) => {
                    assert_eq!(Some(&offer.session), session.as_ref(), "the roster comes first");
                    let sdp = handle.accept_offer(offer.sdp).await.expect("offer accepted");
                    proctor.send(&Answer { session: offer.session, sdp }.into()).await.unwrap();
                }
                Some(SignalMessage::Candidate(candidate)) => {
                    let _ = handle.add_remote_candidate(candidate.candidate).await;
                }
                other => panic!("unexpected for the proctor: {other:?}"),
            },
            event = events.recv() => match event.expect("peer alive") {
                PeerEvent::LocalCandidate { candidate, mid } => {
                    let session = session.clone().expect("a member first");
                    proctor.send(&Candidate { session, candidate, mid }.into()).await.unwrap();
                }
                PeerEvent::Connected => connected = true,
                _ => {}
            },
            frame = video.recv(), if connected => break frame.expect("video flows"),
            _ = tokio::time::sleep_until(deadline) => panic!("no video from the member within {WAIT:?}"),
        }
    };
    let mut decoder = rtcdesk_media::Decoder::new(1).unwrap();
    let picture = decoder
        .decode(&frame.data, 0)
        .expect("decodes")
        .expect("a picture");
    // Not focused: the thumbnail stream, a fraction of the 1280x720 screen.
    assert_eq!((picture.width(), picture.height()), THUMBNAIL_SIZE);
    let session = session.expect("a member");

    // Focus: the member switches to the full stream, starting with a keyframe.
    proctor
        .send(
            &MemberState {
                room: room.clone(),
                session: session.clone(),
                state: MemberStatus::Controlled,
            }
            .into(),
        )
        .await
        .unwrap();
    let mut full = rtcdesk_media::Decoder::new(1).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        tokio::select! {
            frame = video.recv() => {
                let frame = frame.expect("video flows");
                if frame.keyframe {
                    if let Ok(Some(picture)) = full.decode(&frame.data, 0) {
                        if (picture.width(), picture.height()) == (1280, 720) {
                            break;
                        }
                    }
                }
            }
            _ = events.recv() => {}
            message = proctor.recv() => {
                if let Ok(Some(SignalMessage::Left(_))) | Ok(None) | Err(_) = message {
                    panic!("the session ended while waiting for the full stream: {message:?}");
                }
            }
            _ = tokio::time::sleep_until(deadline) => panic!("no full-quality keyframe within {WAIT:?}"),
        }
    }

    // The proctor goes back to the grid: the puppet's user is told it is watched.
    proctor
        .send(
            &MemberState {
                room: room.clone(),
                session: session.clone(),
                state: MemberStatus::Watching,
            }
            .into(),
        )
        .await
        .unwrap();
    let watching = |e: &PuppetEvent| {
        matches!(
            e,
            PuppetEvent::Watched {
                state: MemberStatus::Watching,
                ..
            }
        )
    };
    match wait_event(&mut puppet, watching).await {
        PuppetEvent::Watched { by, state, .. } => {
            assert_eq!(by, "Exam hall 2");
            assert_eq!(state, MemberStatus::Watching);
        }
        other => panic!("{other:?}"),
    }

    // The proctor ends the room: the member's session ends as left by the other side.
    proctor.send(&RoomEnd { room }.into()).await.unwrap();
    match wait_event(&mut puppet, |e| {
        matches!(e, PuppetEvent::SessionEnded { .. })
    })
    .await
    {
        PuppetEvent::SessionEnded {
            session: ended,
            reason,
        } => {
            assert_eq!(ended, session);
            assert_eq!(reason, EndReason::Left);
        }
        other => panic!("{other:?}"),
    }
    puppet.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_room_code_stops_the_puppet_with_a_clear_reason() {
    let server = server().await;
    let (_proctor, _room, code) = open_room(&server).await;
    let wrong = ControlCode::from_number((code.number() + 1) % ControlCode::SPACE).unwrap();
    let error = Puppet::start(member_config(&server, wrong))
        .await
        .expect_err("no room has that code");
    let text = error.to_string();
    assert!(text.contains("cannot join the room"), "{text}");
    assert!(text.contains("no open room has this code"), "{text}");
    server.shutdown().await;
}
