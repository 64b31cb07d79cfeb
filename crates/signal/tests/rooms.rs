//! Rooms over the real server on loopback, through the public API only: a proctor creates a
//! room, puppets join it, the roster follows, and every way out ends in `left`. Nothing sleeps to
//! wait: every wait is for an event, bounded by `tokio::time::timeout`.

use std::time::Duration;

use rtcdesk_proto::signal::{
    Answer, ControlCode, ErrorCode, Leave, Left, Member, MemberState, MemberStatus, Offer, RoomEnd,
    RoomEnded, RoomId, SessionId, SignalMessage,
};
use rtcdesk_signal::client::{ClientError, SignalClient};
use rtcdesk_signal::router::RouterConfig;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::TlsOptions;

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

/// The next roster line the proctor gets.
async fn roster_line(proctor: &mut SignalClient) -> Member {
    match recv(proctor).await {
        SignalMessage::Member(line) => line,
        other => panic!("expected a roster line, got {other:?}"),
    }
}

fn line(room: &RoomId, session: &SessionId, name: &str, state: MemberStatus) -> Member {
    Member {
        room: room.clone(),
        session: session.clone(),
        name: name.into(),
        state,
    }
}

#[tokio::test]
async fn create_join_roster_relay_and_leave_over_the_real_server() {
    let server = start(RouterConfig::default()).await;
    let mut proctor = client(&server).await;
    let (mut ada, mut bob) = (client(&server).await, client(&server).await);

    // Given a room...
    let created = proctor.create_room("Exam hall 2").await.unwrap();
    assert_eq!(created.expires_in, 600);
    let room = created.room;

    // ...when two puppets join with its code (as people type it, grouped)...
    let grouped: ControlCode = created.code.to_string().parse().unwrap();
    let joined_ada = ada.join_room(grouped, "Ada").await.unwrap();
    assert_eq!(joined_ada.name, "Exam hall 2", "Ada is told who watches");
    assert_eq!(joined_ada.room, room);
    let joined_bob = bob.join_room(created.code, "Bob").await.unwrap();
    let (s_ada, s_bob) = (joined_ada.session, joined_bob.session);

    // ...then the proctor's roster shows them in order, with no accept step.
    assert_eq!(
        roster_line(&mut proctor).await,
        line(&room, &s_ada, "Ada", MemberStatus::Joined)
    );
    assert_eq!(
        roster_line(&mut proctor).await,
        line(&room, &s_bob, "Bob", MemberStatus::Joined)
    );

    // The puppet offers as in v1, and the answer comes back.
    let offer: SignalMessage = Offer {
        session: s_ada.clone(),
        sdp: "v=0\r\n".into(),
    }
    .into();
    ada.send(&offer).await.unwrap();
    assert_eq!(recv(&mut proctor).await, offer);
    let answer: SignalMessage = Answer {
        session: s_ada.clone(),
        sdp: "v=0\r\n".into(),
    }
    .into();
    proctor.send(&answer).await.unwrap();
    assert_eq!(recv(&mut ada).await, answer);

    // The proctor watches Ada: both sides see it.
    send(
        &mut proctor,
        MemberState {
            room: room.clone(),
            session: s_ada.clone(),
            state: MemberStatus::Watching,
        },
    )
    .await;
    let watching = line(&room, &s_ada, "Ada", MemberStatus::Watching);
    assert_eq!(roster_line(&mut proctor).await, watching);
    assert_eq!(recv(&mut ada).await, watching.clone().into());

    // Bob leaves; Ada's connection is killed (dropped without a close frame).
    send(
        &mut bob,
        Leave {
            session: s_bob.clone(),
        },
    )
    .await;
    assert_eq!(
        roster_line(&mut proctor).await,
        line(&room, &s_bob, "Bob", MemberStatus::Left)
    );
    drop(ada);
    assert_eq!(
        roster_line(&mut proctor).await,
        line(&room, &s_ada, "Ada", MemberStatus::Left)
    );

    // Bob joins again and the proctor ends the room: Bob is told, then the room is gone.
    let again = bob.join_room(created.code, "Bob").await.unwrap();
    assert_eq!(
        roster_line(&mut proctor).await,
        line(&room, &again.session, "Bob", MemberStatus::Joined)
    );
    send(&mut proctor, RoomEnd { room: room.clone() }).await;
    assert_eq!(
        recv(&mut bob).await,
        Left {
            session: again.session.clone()
        }
        .into()
    );
    assert_eq!(
        roster_line(&mut proctor).await,
        line(&room, &again.session, "Bob", MemberStatus::Left)
    );
    assert_eq!(recv(&mut proctor).await, RoomEnded { room }.into());
    server.shutdown().await;
}

#[tokio::test]
async fn the_proctor_leaving_ends_every_members_session() {
    let server = start(RouterConfig::default()).await;
    let mut proctor = client(&server).await;
    let created = proctor.create_room("Lab").await.unwrap();
    let mut members = Vec::new();
    for i in 0..3 {
        let mut member = client(&server).await;
        let joined = member
            .join_room(created.code, &format!("m{i}"))
            .await
            .unwrap();
        members.push((member, joined.session));
    }
    proctor.close().await.unwrap();
    for (member, session) in &mut members {
        assert_eq!(
            recv(member).await,
            Left {
                session: session.clone()
            }
            .into()
        );
    }
    // The code went with the room.
    let (late, _) = &mut members[0];
    match late.join_room(created.code, "late").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::UnknownCode),
        other => panic!("expected unknown_code, got {other:?}"),
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_stranger_guessing_room_codes_is_refused_then_rate_limited_and_closed() {
    let server = start(RouterConfig::default()).await;
    let mut proctor = client(&server).await;
    let created = proctor.create_room("Exam").await.unwrap();
    let wrong = ControlCode::from_number((created.code.number() + 1) % ControlCode::SPACE).unwrap();
    let mut stranger = client(&server).await;
    for _ in 0..5 {
        match stranger.join_room(wrong, "guess").await {
            Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::UnknownCode),
            other => panic!("expected unknown_code, got {other:?}"),
        }
    }
    // The sixth failure is refused as rate-limited and the server closes the connection (1008).
    match stranger.join_room(wrong, "guess").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::RateLimited),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    expect_closed_with(&mut stranger, 1008).await;
    // From that address even the right code is refused for the rest of the window.
    let mut again = client(&server).await;
    match again.join_room(created.code, "guess").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::RateLimited),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    expect_closed_with(&mut again, 1008).await;
    server.shutdown().await;
}

/// Waits for the server to close the connection and checks its close code.
async fn expect_closed_with(client: &mut SignalClient, want: u16) {
    while let Ok(Some(_)) = tokio::time::timeout(WAIT, client.recv())
        .await
        .expect("closed in time")
    {}
    assert_eq!(client.close_reason().map(|(code, _)| code), Some(want));
}

#[tokio::test]
async fn a_full_room_ending_reaches_the_proctor_whole() {
    // Given a room with as many members as a proctor may have (64 by default)...
    let server = start(RouterConfig::default()).await;
    let mut proctor = client(&server).await;
    let created = proctor.create_room("Hall").await.unwrap();
    let mut members = Vec::new();
    for i in 0..64 {
        let mut member = client(&server).await;
        member
            .join_room(created.code, &format!("m{i}"))
            .await
            .unwrap();
        members.push(member);
    }
    for _ in 0..64 {
        assert_eq!(roster_line(&mut proctor).await.state, MemberStatus::Joined);
    }
    // ...when the room ends, the proctor gets all 64 `left` lines and `room_ended` in one burst
    // without being dropped as a slow reader.
    send(
        &mut proctor,
        RoomEnd {
            room: created.room.clone(),
        },
    )
    .await;
    for _ in 0..64 {
        assert_eq!(roster_line(&mut proctor).await.state, MemberStatus::Left);
    }
    assert_eq!(
        recv(&mut proctor).await,
        RoomEnded { room: created.room }.into()
    );
    for member in &mut members {
        assert!(matches!(recv(member).await, SignalMessage::Left(_)));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_helper_keeps_what_arrives_before_its_answer_for_recv() {
    let server = start(RouterConfig {
        max_rooms_per_connection: 2,
        ..RouterConfig::default()
    })
    .await;
    let mut proctor = client(&server).await;
    let first = proctor.create_room("A").await.unwrap();
    let mut member = client(&server).await;
    let joined = member.join_room(first.code, "m").await.unwrap();
    // The roster line for room A is already on its way when the proctor asks for room B.
    let second = proctor.create_room("B").await.unwrap();
    assert_ne!(second.room, first.room);
    assert_eq!(
        roster_line(&mut proctor).await,
        line(&first.room, &joined.session, "m", MemberStatus::Joined),
        "the line that came first is given first"
    );
    // A refusal is an error with the server's code, and the connection stays usable.
    match proctor.create_room("C").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, ErrorCode::Busy),
        other => panic!("expected busy, got {other:?}"),
    }
    send(&mut proctor, RoomEnd { room: second.room }).await;
    assert!(matches!(
        recv(&mut proctor).await,
        SignalMessage::RoomEnded(_)
    ));
    server.shutdown().await;
}
