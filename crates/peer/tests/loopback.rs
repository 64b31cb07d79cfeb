//! Two peers over real loopback UDP sockets, signaled directly.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use rtcdesk_peer::{Channel, EncodedVideoFrame, PeerEvent, Role};

async fn wait_all_channels_open(side: &mut Side) {
    let mut open = HashSet::new();
    while open.len() < 3 {
        let channel = side
            .wait_for("ChannelOpen", |e| match e {
                PeerEvent::ChannelOpen(c) => Some(c),
                _ => None,
            })
            .await;
        open.insert(channel);
    }
}

async fn receive_data(side: &mut Side) -> (Channel, Vec<u8>) {
    side.wait_for("Data", |e| match e {
        PeerEvent::Data(channel, bytes) => Some((channel, bytes)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_flows_on_all_three_channels_both_ways() {
    let (puppet, controller) = start_pair(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    wait_all_channels_open(&mut puppet).await;
    wait_all_channels_open(&mut controller).await;

    for channel in Channel::ALL {
        let message = format!("to controller on {}", channel.label()).into_bytes();
        puppet
            .handle
            .send_data(channel, message.clone())
            .await
            .unwrap();
        assert_eq!(receive_data(&mut controller).await, (channel, message));

        let reply = format!("to puppet on {}", channel.label()).into_bytes();
        controller
            .handle
            .send_data(channel, reply.clone())
            .await
            .unwrap();
        assert_eq!(receive_data(&mut puppet).await, (channel, reply));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_before_the_channel_opens_still_arrive_in_order() {
    let (puppet, controller) = start_pair(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
    )
    .await;
    // Queued before any signaling: they wait in the reliable queue, never dropped.
    for i in 0..50u32 {
        puppet
            .handle
            .send_data(Channel::Input, i.to_be_bytes().to_vec())
            .await
            .unwrap();
    }
    let (_puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    for i in 0..50u32 {
        assert_eq!(
            receive_data(&mut controller).await,
            (Channel::Input, i.to_be_bytes().to_vec())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_frames_arrive_whole_identical_in_order_with_their_timestamps() {
    let (puppet, controller) = start_pair(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    // Connected asks the encoder for a keyframe first.
    puppet.wait_for_event(PeerEvent::KeyframeRequested).await;
    let sender = puppet.handle.video_sender();
    assert!(sender.take_keyframe_request());

    let start = Instant::now();
    let mut first_rtp = None;
    for index in 0..120u32 {
        // Sizes from one packet to ~25 packets; every 30th frame a keyframe.
        let len = 100 + (index as usize * 7919) % 30_000;
        let keyframe = index % 30 == 0;
        let data = av1_frame(index, len, keyframe);
        let capture_time = start + Duration::from_millis(33 * u64::from(index));
        assert!(sender.send(EncodedVideoFrame {
            data: data.clone(),
            capture_time,
            keyframe
        }));
        // Lockstep: each frame is taken before the next is offered, so none is overwritten.
        let received = tokio::time::timeout(PATIENCE, controller.video().recv())
            .await
            .expect("frame in time")
            .expect("video stream open");
        assert_eq!(frame_index(&received.data), index, "frames in order");
        assert_eq!(
            &received.data[..],
            &data[..],
            "frame {index} byte-identical"
        );
        assert_eq!(received.keyframe, keyframe);
        let first = *first_rtp.get_or_insert(received.rtp_time);
        assert_eq!(
            received.rtp_time - first,
            2970 * u64::from(index),
            "90 kHz from capture time"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyframe_request_from_the_controller_reaches_the_encoder() {
    let (puppet, controller) = start_pair(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    puppet.wait_for_event(PeerEvent::KeyframeRequested).await;
    let sender = puppet.handle.video_sender();
    sender.take_keyframe_request();
    // The receiver needs a stream before it can send PLI for it.
    sender.send(EncodedVideoFrame {
        data: av1_frame(0, 500, true),
        capture_time: Instant::now(),
        keyframe: true,
    });
    tokio::time::timeout(PATIENCE, controller.video().recv())
        .await
        .unwrap()
        .unwrap();

    controller.handle.request_keyframe();
    puppet.wait_for_event(PeerEvent::KeyframeRequested).await;
    assert!(sender.take_keyframe_request());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_seen_on_both_sides() {
    let (puppet, controller) = start_pair(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    wait_all_channels_open(&mut controller).await;
    puppet.handle.close().await;
    puppet.wait_for_event(PeerEvent::Closed).await;
    controller.wait_for_event(PeerEvent::Closed).await;
}
