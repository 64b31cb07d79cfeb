//! Two peers over real loopback UDP sockets, signaled directly.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::*;
use rtcdesk_peer::{Channel, EncodedVideoFrame, Message, PeerEvent, Role, VideoSender};

async fn wait_for_keyframe_request(sender: &VideoSender) {
    tokio::time::timeout(PATIENCE, sender.keyframe_requested())
        .await
        .expect("a keyframe request in time");
}

async fn wait_all_channels_open(side: &mut Side) {
    let mut open = HashSet::new();
    while open.len() < Channel::OURS.len() {
        let channel = side
            .wait_for("ChannelOpen", |e| match e {
                PeerEvent::ChannelOpen(c) => Some(c),
                _ => None,
            })
            .await;
        open.insert(channel);
    }
}

async fn receive_data(side: &mut Side) -> (Channel, Message) {
    side.wait_for("Data", |e| match e {
        PeerEvent::Data(channel, message) => Some((channel, message)),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_flows_on_every_channel_both_ways_as_text_or_binary() {
    let (puppet, controller) = start_pair(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    wait_all_channels_open(&mut puppet).await;
    wait_all_channels_open(&mut controller).await;

    for channel in Channel::OURS {
        let label = channel.label().unwrap();
        let message = Message::Text(format!("to controller on {label}"));
        puppet
            .handle
            .send_data(channel, message.clone())
            .await
            .unwrap();
        assert_eq!(receive_data(&mut controller).await, (channel, message));

        let reply = Message::Binary(format!("to puppet on {label}").into_bytes());
        controller
            .handle
            .send_data(channel, reply.clone())
            .await
            .unwrap();
        assert_eq!(receive_data(&mut puppet).await, (channel, reply));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_bound_to_every_interface_connect() {
    // No bind address: one socket per usable interface address, all offered as host candidates.
    let (puppet, controller) = start_pair(
        rtcdesk_peer::PeerConfig::new(Role::Offerer),
        rtcdesk_peer::PeerConfig::new(Role::Answerer),
    )
    .await;
    assert!(!puppet.handle.local_addresses().is_empty());
    let (_puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    wait_all_channels_open(&mut controller).await;
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
            .send_data(Channel::Input, Message::Binary(i.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    let (_puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    for i in 0..50u32 {
        assert_eq!(
            receive_data(&mut controller).await,
            (Channel::Input, Message::Binary(i.to_be_bytes().to_vec()))
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
    let (puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    // Connected asks the encoder for a keyframe first.
    let sender = puppet.handle.video_sender();
    wait_for_keyframe_request(&sender).await;
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
            data: data.clone().into(),
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
    let (puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    let sender = puppet.handle.video_sender();
    wait_for_keyframe_request(&sender).await;
    sender.take_keyframe_request();
    // The receiver needs a stream before it can send PLI for it.
    sender.send(EncodedVideoFrame {
        data: av1_frame(0, 500, true).into(),
        capture_time: Instant::now(),
        keyframe: true,
    });
    tokio::time::timeout(PATIENCE, controller.video().recv())
        .await
        .unwrap()
        .unwrap();

    controller.handle.request_keyframe();
    wait_for_keyframe_request(&sender).await;
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

/// An "encoder" task at ~200 fps that obeys keyframe requests; returns what it sent, and
/// publishes how many keyframes it made.
fn spawn_encoder(
    sender: rtcdesk_peer::VideoSender,
    stop: tokio::sync::watch::Receiver<bool>,
    keyframes: tokio::sync::watch::Sender<u32>,
) -> tokio::task::JoinHandle<Vec<Vec<u8>>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        let start = Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_millis(5));
        for index in 0..20_000u32 {
            ticker.tick().await;
            if *stop.borrow() {
                break;
            }
            let keyframe = sender.take_keyframe_request();
            if keyframe {
                keyframes.send_modify(|n| *n += 1);
            }
            let data = av1_frame(index, 1_500, keyframe);
            sent.push(data.clone());
            let capture_time = start + Duration::from_millis(5 * u64::from(index));
            sender.send(EncodedVideoFrame {
                data: data.into(),
                capture_time,
                keyframe,
            });
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoder_that_falls_behind_gets_a_keyframe_and_resumes() {
    let mut controller_config = loopback_config(Role::Answerer);
    controller_config.video_receive_queue = 4;
    let (puppet, controller) = start_pair(loopback_config(Role::Offerer), controller_config).await;
    let (puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (keyframes_tx, mut keyframes) = tokio::sync::watch::channel(0u32);
    let encoder = spawn_encoder(puppet.handle.video_sender(), stop_rx, keyframes_tx);

    // Nobody reads the controller's video: its queue fills, a frame is dropped, and the
    // controller sends PLI, which reaches the encoder as a keyframe request.
    tokio::time::timeout(PATIENCE, keyframes.wait_for(|n| *n >= 2)) // on Connected, then the PLI
        .await
        .expect("the PLI reached the encoder")
        .unwrap();

    // The decoder catches up: after the queued frames comes a keyframe, then frames in order.
    let mut last_index = None;
    let mut resumed_after_keyframe = 0;
    while resumed_after_keyframe < 20 {
        let frame = tokio::time::timeout(PATIENCE, controller.video().recv())
            .await
            .unwrap()
            .unwrap();
        let index = frame_index(&frame.data);
        assert!(last_index.is_none_or(|last| index > last));
        let skipped = last_index.is_some_and(|last| index > last + 1);
        if skipped {
            assert!(
                frame.keyframe,
                "after a gap the decoder gets a keyframe first"
            );
        }
        if resumed_after_keyframe > 0 || (skipped && frame.keyframe) {
            resumed_after_keyframe += 1;
        }
        last_index = Some(index);
    }
    stop_tx.send(true).unwrap();
    encoder.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_report_rtt_bitrates_frames_and_bandwidth_estimate() {
    let (puppet, controller) = start_pair(
        loopback_config(Role::Offerer),
        loopback_config(Role::Answerer),
    )
    .await;
    let (mut puppet, mut controller) = connect(puppet, controller, Rewrites::default()).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (keyframes_tx, _keyframes) = tokio::sync::watch::channel(0u32);
    let encoder = spawn_encoder(puppet.handle.video_sender(), stop_rx, keyframes_tx);
    let mut video = controller.take_video();
    let decoder = tokio::spawn(async move { while video.recv().await.is_some() {} });

    let sender_stats = puppet
        .wait_for("sender stats with frames", |e| match e {
            PeerEvent::Stats(s) if s.frames_sent > 0 && s.send_bitrate_bps > 0 => Some(s),
            _ => None,
        })
        .await;
    assert!(sender_stats.rtt.is_some(), "{sender_stats:?}");
    assert!(
        sender_stats.bandwidth_estimate_bps.is_some(),
        "{sender_stats:?}"
    );
    // The encoder, on its own thread, reads the estimate from its video sender to steer its
    // bitrate; the network loop publishes it there by the time it sends the stats.
    let published = puppet.handle.video_sender().bandwidth_estimate_bps();
    assert!(
        published.is_some_and(|bps| bps > 0),
        "estimate not published to the video sender: {published:?}"
    );
    let receiver_stats = controller
        .wait_for("receiver stats with frames", |e| match e {
            PeerEvent::Stats(s) if s.frames_received > 0 && s.receive_bitrate_bps > 0 => Some(s),
            _ => None,
        })
        .await;
    assert!(receiver_stats.rtt.is_some(), "{receiver_stats:?}");
    stop_tx.send(true).unwrap();
    encoder.await.unwrap();
    puppet.handle.close().await;
    decoder.await.unwrap();
}
