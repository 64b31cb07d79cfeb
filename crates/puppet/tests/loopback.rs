//! The puppet over loopback with a hand-made controller: a signaling client and an answering
//! peer from rtcdesk-peer. Checks pairing with consent, video that decodes with increasing frame
//! stamps, input that reaches the synthetic desktop, rejection, and the end of a session.

use std::sync::Arc;
use std::time::Duration;

use rtcdesk_media::{find_pointer, read_stamp, Decoder};
use rtcdesk_peer::{
    Channel, Message, Peer, PeerConfig, PeerEvent, PeerHandle, Role, VideoReceiver,
};
use rtcdesk_proto::input::{InputEvent, InputMessage, WheelUnit};
use rtcdesk_proto::signal::{Answer, Candidate, Connect, Leave, SessionId, SignalMessage};
use rtcdesk_puppet::{
    AcceptPolicy, EndReason, Puppet, PuppetConfig, PuppetEvent, SessionState, Source,
};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::tls::TlsOptions;
use tokio::sync::mpsc;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

fn synthetic() -> Source {
    Source::Synthetic {
        width: 640,
        height: 360,
    }
}

/// A controller made of parts: the signaling client and an answering peer.
struct TestController {
    signal: SignalClient,
    session: SessionId,
    handle: PeerHandle,
    events: mpsc::Receiver<PeerEvent>,
    video: VideoReceiver,
}

/// Dials the puppet and waits for the verdict; `Err(reason)` when rejected.
async fn dial(puppet: &Puppet) -> Result<TestController, String> {
    let mut signal = SignalClient::connect(puppet.signal_url(), &TlsOptions::default())
        .await
        .expect("signaling server reachable");
    signal
        .send(
            &Connect {
                code: puppet.control_code(),
                name: "test controller".into(),
                pake: None,
            }
            .into(),
        )
        .await
        .unwrap();
    let session = loop {
        match timeout(WAIT, signal.recv()).await.expect("verdict in time") {
            Ok(Some(SignalMessage::Ringing(_))) => continue,
            Ok(Some(SignalMessage::Accepted(accepted))) => break accepted.session,
            Ok(Some(SignalMessage::Rejected(rejected))) => {
                return Err(rejected.reason.unwrap_or_default())
            }
            other => panic!("unexpected while dialling: {other:?}"),
        }
    };
    let mut config = PeerConfig::new(Role::Answerer);
    config.bind = Some("127.0.0.1:0".parse().unwrap());
    let peer = Peer::start(config).expect("peer starts");
    let mut controller = TestController {
        signal,
        session,
        handle: peer.handle,
        events: peer.events,
        video: peer.video,
    };
    controller.negotiate().await;
    Ok(controller)
}

impl TestController {
    /// Answers the offer and trades candidates until the peer is connected.
    async fn negotiate(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            tokio::select! {
                message = self.signal.recv() => match message.expect("signaling works") {
                    Some(SignalMessage::Offer(offer)) => {
                        let sdp = self.handle.accept_offer(offer.sdp).await.expect("offer accepted");
                        self.signal.send(&Answer { session: self.session.clone(), sdp }.into()).await.unwrap();
                    }
                    Some(SignalMessage::Candidate(candidate)) => {
                        let _ = self.handle.add_remote_candidate(candidate.candidate).await;
                    }
                    other => panic!("unexpected during negotiation: {other:?}"),
                },
                event = self.events.recv() => match event.expect("peer alive") {
                    PeerEvent::LocalCandidate { candidate, mid } => {
                        let c = Candidate { session: self.session.clone(), candidate, mid };
                        self.signal.send(&c.into()).await.unwrap();
                    }
                    PeerEvent::GatheringComplete => {
                        let c = Candidate { session: self.session.clone(), candidate: String::new(), mid: None };
                        self.signal.send(&c.into()).await.unwrap();
                    }
                    PeerEvent::Connected => return,
                    _ => {}
                },
                _ = tokio::time::sleep_until(deadline) => panic!("not connected within {WAIT:?}"),
            }
        }
    }

    /// Decodes frames until `check` accepts one; returns what it returned.
    async fn frame_until<T>(
        &mut self,
        decoder: &mut Decoder,
        mut check: impl FnMut(&rtcdesk_media::DecodedFrame) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            tokio::select! {
                frame = self.video.recv() => {
                    let frame = frame.expect("video goes on");
                    if let Ok(Some(picture)) = decoder.decode(&frame.data, 0) {
                        if let Some(found) = check(&picture) {
                            return found;
                        }
                    } else {
                        self.handle.request_keyframe();
                    }
                }
                // Keep draining peer events so the network loop never waits on us.
                _ = self.events.recv() => {}
                // Keep reading signaling: that answers the server's pings, without which it
                // drops us after its dead timeout (and the puppet ends the session).
                message = self.signal.recv() => {
                    if let Ok(Some(SignalMessage::Left(_))) | Ok(None) | Err(_) = message {
                        panic!("the session ended while waiting for video: {message:?}");
                    }
                }
                _ = tokio::time::sleep_until(deadline) => panic!("no matching frame within {WAIT:?}"),
            }
        }
    }

    async fn send_input(&self, seq: u32, event: InputEvent) {
        let channel = if event.is_droppable() {
            Channel::Pointer
        } else {
            Channel::Input
        };
        let message = InputMessage {
            seq,
            timestamp_us: 0,
            event,
        };
        self.handle
            .send_data(channel, Message::Binary(message.to_bytes()))
            .await
            .unwrap();
    }
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
    .expect("event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_decodes_with_increasing_stamps_and_input_reaches_the_desktop() {
    let mut puppet = Puppet::start(PuppetConfig::loopback(synthetic()))
        .await
        .expect("puppet starts");
    let desktop = puppet.synthetic_desktop().expect("synthetic source");
    let mut controller = dial(&puppet).await.expect("accepted");
    wait_event(&mut puppet, |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;
    assert_eq!(puppet.sessions()[0].state, SessionState::Connected);

    let mut decoder = Decoder::new(1).unwrap();
    let first = controller
        .frame_until(&mut decoder, |p| read_stamp(p.view()))
        .await;
    desktop.text("hi");
    let second = controller
        .frame_until(&mut decoder, |p| {
            read_stamp(p.view()).filter(|s| s.frame_number > first.frame_number)
        })
        .await;
    assert!(second.frame_number > first.frame_number);

    // Move the pointer to the top-left quarter; the marker shows there in the video.
    controller
        .send_input(1, InputEvent::PointerMove { x: 16384, y: 16384 })
        .await;
    let (x, y) = controller
        .frame_until(&mut decoder, |p| {
            find_pointer(p.view()).filter(|&(x, y)| x < 320 && y < 180)
        })
        .await;
    assert!(
        x.abs_diff(159) <= 20 && y.abs_diff(89) <= 20,
        "marker at {x},{y}"
    );
    assert_eq!(desktop.pointer(), (159, 89));

    controller
        .send_input(2, InputEvent::Text("typed".into()))
        .await;
    // Typing changes the desktop, so a frame follows; wait on frames, not on a clock.
    let before = controller
        .frame_until(&mut decoder, |p| {
            read_stamp(p.view()).filter(|_| desktop.typed_text().ends_with("typed"))
        })
        .await;

    // Three wheel notches down scroll the desktop's window: the picture changes (a frame with
    // a newer stamp arrives although nothing else changed).
    controller
        .send_input(
            3,
            InputEvent::Wheel {
                x: 16384,
                y: 16384,
                unit: WheelUnit::Lines120,
                dx: 0,
                dy: 360,
            },
        )
        .await;
    controller
        .frame_until(&mut decoder, |p| {
            read_stamp(p.view()).filter(|s| s.frame_number > before.frame_number)
        })
        .await;

    // The controller leaves: the puppet ends the session.
    let session = controller.session.clone();
    controller
        .signal
        .send(
            &Leave {
                session: session.clone(),
            }
            .into(),
        )
        .await
        .unwrap();
    let ended = wait_event(&mut puppet, |e| {
        matches!(e, PuppetEvent::SessionEnded { .. })
    })
    .await;
    assert_eq!(
        ended,
        PuppetEvent::SessionEnded {
            session,
            reason: EndReason::Left
        }
    );
    assert!(puppet.sessions().is_empty());
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declined_controller_is_told_so() {
    let mut config = PuppetConfig::loopback(synthetic());
    config.accept = AcceptPolicy::Callback(Arc::new(|request| {
        (request.from != "test controller").into()
    }));
    let mut puppet = Puppet::start(config).await.expect("puppet starts");
    let reason = dial(&puppet).await.err().expect("rejected");
    assert!(reason.contains("declined"), "reason: {reason}");
    wait_event(&mut puppet, |e| matches!(e, PuppetEvent::Declined { .. })).await;
    assert!(puppet.sessions().is_empty());
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_watch_at_once_and_shutdown_tells_both() {
    use rtcdesk_puppet::Signaling;
    use rtcdesk_signal::server::{Server, ServerConfig};

    // A server of its own that outlives the puppet: each controller must be told `left` (the
    // puppet's `leave`, or the server seeing it go), not merely lose its signaling connection
    // with the puppet's embedded server.
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("server starts");
    let mut config = PuppetConfig::loopback(synthetic());
    config.signaling = Signaling::Url(server.url());
    let puppet = Puppet::start(config).await.expect("puppet starts");
    let mut a = dial(&puppet).await.expect("a accepted");
    let mut b = dial(&puppet).await.expect("b accepted");
    let mut decoder_a = Decoder::new(1).unwrap();
    let mut decoder_b = Decoder::new(1).unwrap();
    a.frame_until(&mut decoder_a, |p| read_stamp(p.view()))
        .await;
    b.frame_until(&mut decoder_b, |p| read_stamp(p.view()))
        .await;
    assert_eq!(puppet.sessions().len(), 2);
    puppet.shutdown().await;
    for controller in [&mut a, &mut b] {
        let left = timeout(WAIT, async {
            loop {
                match controller.signal.recv().await {
                    Ok(Some(SignalMessage::Left(left))) => return left.session,
                    Ok(Some(_)) => continue,
                    other => panic!("signaling ended before `left`: {other:?}"),
                }
            }
        })
        .await
        .expect("told in time");
        assert_eq!(left, controller.session);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_signaling_server_restarts_the_puppet_registers_again_and_keeps_its_session() {
    use rtcdesk_puppet::Signaling;
    use rtcdesk_signal::server::{Server, ServerConfig};

    let first = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("server starts");
    let address = first.local_addr();
    let mut config = PuppetConfig::loopback(synthetic());
    config.signaling = Signaling::Url(first.url());
    let mut puppet = Puppet::start(config).await.expect("puppet starts");
    let old_code = puppet.control_code();
    let watching = dial(&puppet).await.expect("accepted");
    wait_event(&mut puppet, |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;

    first.shutdown().await;
    wait_event(&mut puppet, |e| {
        matches!(e, PuppetEvent::SignalingLost { .. })
    })
    .await;
    // The connected controller does not need signaling any more: its session stays.
    assert_eq!(puppet.sessions().len(), 1);
    assert_eq!(puppet.sessions()[0].state, SessionState::Connected);

    // The server comes back on the same address; the puppet finds it and gets a new code.
    let second = Server::bind(ServerConfig::new(address))
        .await
        .expect("server restarts on the same port");
    let PuppetEvent::Registered { code, .. } =
        wait_event(&mut puppet, |e| matches!(e, PuppetEvent::Registered { .. })).await
    else {
        unreachable!()
    };
    assert_ne!(code, old_code, "a fresh registration");
    assert_eq!(puppet.control_code(), code);
    // A new controller reaches it with the new code, and the first one is still there.
    let _second_controller = dial(&puppet).await.expect("accepted with the new code");
    assert_eq!(puppet.sessions().len(), 2);
    assert!(puppet
        .sessions()
        .iter()
        .any(|s| s.state == SessionState::Connected));
    drop(watching.signal);
    watching.handle.close().await;
    puppet.shutdown().await;
    second.shutdown().await;
}
