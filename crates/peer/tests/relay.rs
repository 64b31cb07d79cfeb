//! Two peers through a UDP relay that loses, reorders, or cuts off their datagrams.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rtcdesk_peer::{Channel, EncodedVideoFrame, Message, PeerEvent, Role};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_peer_is_reported_and_then_closed() {
    // How soon is the sans-IO core's business, tested on a virtual clock
    // (`silence_is_reported_at_the_silence_timeout…` in session.rs); here the real loop must
    // report it at all, then give up.
    let mut puppet_config = loopback_config(Role::Offerer);
    puppet_config.close_after_silence = Duration::from_secs(6);
    let (mut puppet, _controller, relay) =
        connect_through_relay(puppet_config, loopback_config(Role::Answerer), 0.0, 0.0, 1).await;

    relay.cut();
    puppet.wait_for_event(PeerEvent::Disconnected).await;

    // After close_after_silence the session gives up on its own.
    puppet.wait_for_event(PeerEvent::Closed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_link_delivers_every_reliable_message_and_recovers_video() {
    let (mut puppet, mut controller, relay) = connect_through_relay(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
        0.05,
        0.05,
        0x00c0_ffee,
    )
    .await;

    // Video: an "encoder" at ~100 fps that obeys keyframe requests, like the real one, and a
    // "decoder" that takes every frame as it comes; both run while the data below flows.
    let target = 300u32;
    let sender = puppet.handle.video_sender();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let encoder = tokio::spawn(async move {
        let mut sent = Vec::new();
        let start = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        for index in 0..10 * target {
            ticker.tick().await;
            if *stop_rx.borrow() {
                break;
            }
            let keyframe = sender.take_keyframe_request();
            let data = av1_frame(index, 2_000 + (index as usize * 337) % 6_000, keyframe);
            sent.push(data.clone());
            let capture_time = start + Duration::from_millis(10 * u64::from(index));
            sender.send(EncodedVideoFrame {
                data: data.into(),
                capture_time,
                keyframe,
            });
        }
        sent
    });
    let mut video = controller.take_video();
    let decoder = tokio::spawn(async move {
        let mut received = Vec::new();
        loop {
            let frame = tokio::time::timeout(PATIENCE, video.recv())
                .await
                .expect("video keeps arriving")
                .expect("video stream open");
            let index = frame_index(&frame.data);
            received.push((index, frame.data.to_vec()));
            if index >= target {
                let _ = stop_tx.send(true);
                return received;
            }
        }
    });

    // Reliable data both ways while the video runs.
    let messages = 300u32;
    for i in 0..messages {
        puppet
            .handle
            .send_data(Channel::Input, Message::Binary(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
        controller
            .handle
            .send_data(Channel::Control, Message::Binary(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
        controller
            .handle
            .send_data(Channel::Pointer, Message::Binary(vec![0xff]))
            .await
            .unwrap();
    }
    let mut next_input = 0u32;
    while next_input < messages {
        let (channel, bytes) = controller
            .wait_for("input message", |e| match e {
                PeerEvent::Data(c, b) => Some((c, b.into_bytes())),
                _ => None,
            })
            .await;
        assert_eq!(channel, Channel::Input);
        assert_eq!(
            bytes,
            next_input.to_be_bytes(),
            "input in order, none missing"
        );
        next_input += 1;
    }
    let mut next_control = 0u32;
    while next_control < messages {
        let (channel, bytes) = puppet
            .wait_for("control message", |e| match e {
                PeerEvent::Data(c, b) => Some((c, b.into_bytes())),
                _ => None,
            })
            .await;
        if channel == Channel::Pointer {
            continue; // unreliable: some may be lost, that is its contract
        }
        assert_eq!(channel, Channel::Control);
        assert_eq!(
            bytes,
            next_control.to_be_bytes(),
            "control in order, none missing"
        );
        next_control += 1;
    }

    let received = decoder.await.unwrap();
    let sent = encoder.await.unwrap();
    // Every frame that came out is whole, identical to what was sent, and later than the last.
    let mut last_index: Option<u32> = None;
    for (index, data) in &received {
        assert_eq!(
            data, &sent[*index as usize],
            "frame {index} whole and identical"
        );
        assert!(
            last_index.is_none_or(|last| *index > last),
            "frames in order"
        );
        last_index = Some(*index);
    }
    let received = received.len();
    eprintln!(
        "relay: {} forwarded, {} dropped, {} reordered; {received} of {} frames decoded",
        relay.forwarded.load(std::sync::atomic::Ordering::Relaxed),
        relay.dropped.load(std::sync::atomic::Ordering::Relaxed),
        relay.reordered.load(std::sync::atomic::Ordering::Relaxed),
        target + 1
    );
    assert!(relay.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0);
    assert!(
        received as u32 >= target / 2,
        "NACK/PLI kept most frames: {received}"
    );
}
