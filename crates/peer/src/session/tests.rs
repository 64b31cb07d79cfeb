//! Scenarios for the session core on a virtual clock ([`Pair`]): given two sessions and a
//! link, when something happens, then each side sees what a user relies on.

use super::*;
use crate::testing::Pair;
use crate::ConfigError;

fn host(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn binary(bytes: &[u8]) -> Message {
    Message::Binary(bytes.to_vec())
}

/// A synthetic AV1 temporal unit str0m's packetizer takes: a frame OBU (with a sequence header
/// first on keyframes) and `len` payload bytes.
fn av1_frame(index: u32, keyframe: bool, len: usize) -> Vec<u8> {
    let mut data = vec![(6 << 3) | 0b10];
    // leb128 size of the payload
    let mut size = len;
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            data.push(byte);
            break;
        }
        data.push(byte | 0x80);
    }
    data.extend((0..len as u32).map(|i| (i.wrapping_mul(31) ^ index) as u8));
    if keyframe {
        let mut with_header = vec![(1 << 3) | 0b10, 2, 0, 0];
        with_header.extend_from_slice(&data);
        data = with_header;
    }
    data
}

fn send_frame(pair: &mut Pair, index: u32, start: Instant, len: usize) -> Vec<u8> {
    let keyframe = index == 0 || pair.sessions[0].sender_needs_keyframe;
    let data = av1_frame(index, keyframe, len);
    let frame = EncodedVideoFrame {
        data: data.clone().into(),
        capture_time: start + Duration::from_millis(33 * u64::from(index)),
        keyframe,
    };
    let now = pair.now;
    pair.sessions[0].send_video(frame, false, now);
    data
}

#[test]
fn the_offer_is_plain_sdp_with_av1_send_only_nack_rtx_and_four_data_channels() {
    crate::install_crypto_provider();
    let now = Instant::now();
    let mut puppet = PeerConfig::new(Role::Offerer)
        .build(&[host(1000)], now)
        .unwrap();
    let offer = puppet.create_offer(now).unwrap();
    assert!(offer.starts_with("v=0\r\n"), "{offer}");
    assert!(offer.contains("m=video "), "{offer}");
    assert!(offer.contains("AV1/90000"), "{offer}");
    assert!(
        !offer.contains("m=audio "),
        "audio only when asked: {offer}"
    );
    assert!(offer.contains("a=sendonly"), "{offer}");
    assert!(
        offer.contains(" nack\r\n") && offer.contains(" nack pli\r\n"),
        "{offer}"
    );
    assert!(offer.contains("rtx/90000"), "{offer}");
    assert!(
        offer.contains("m=application ") && offer.contains("webrtc-datachannel"),
        "{offer}"
    );
    assert!(offer.contains("a=candidate:"), "{offer}");
    assert_eq!(puppet.tracks().len(), 1);
    assert_eq!(puppet.tracks()[0].kind, MediaKind::Video);
    // The answerer cannot offer, the offerer cannot offer twice.
    assert!(matches!(
        puppet.create_offer(now),
        Err(Error::WrongState(_))
    ));
    let mut controller = PeerConfig::new(Role::Answerer)
        .build(&[host(2000)], now)
        .unwrap();
    assert!(controller.create_offer(now).is_err());
    let answer = controller.accept_offer(&offer, now).unwrap();
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert_eq!(controller.tracks().len(), 1);
    assert_eq!(controller.tracks()[0].direction, Direction::RecvOnly);
}

#[test]
fn audio_is_offered_when_asked_and_its_frames_arrive_on_the_audio_track() {
    let mut pair = Pair::with_configs(
        PeerConfig::new(Role::Offerer).with_audio(true),
        PeerConfig::new(Role::Answerer),
        7,
    );
    let kinds: Vec<_> = pair.sessions[1].tracks().iter().map(|t| t.kind).collect();
    assert_eq!(kinds, [MediaKind::Video, MediaKind::Audio]);
    pair.connect();
    let start = pair.now;
    for index in 0..50u64 {
        let frame = EncodedAudioFrame {
            data: vec![0xf8, index as u8, 1, 2, 3].into(),
            capture_time: start + Duration::from_millis(20 * index),
        };
        let now = pair.now;
        pair.sessions[0].send_audio(frame, now);
        pair.drive_for(Duration::from_millis(20));
    }
    pair.drive_until(Duration::from_secs(2), |p| p.audio[1].len() >= 50);
    let first = &pair.audio[1][0];
    let last = &pair.audio[1][49];
    assert_eq!(last.data[1], 49);
    // 48 kHz clock: 49 frames of 20 ms apart is 47040 ticks.
    assert_eq!(last.rtp_time - first.rtp_time, 49 * 960);
    assert!(pair.frames[1].is_empty(), "audio never comes out as video");
}

#[test]
fn bad_remote_input_is_a_typed_error_not_a_panic() {
    crate::install_crypto_provider();
    let now = Instant::now();
    let mut controller = PeerConfig::new(Role::Answerer)
        .build(&[host(2000)], now)
        .unwrap();
    assert!(matches!(
        controller.add_remote_candidate("candidate:garbage", now),
        Err(Error::BadCandidate { .. })
    ));
    // End-of-candidates and mDNS candidates (which str0m cannot resolve) are accepted.
    controller.add_remote_candidate("", now).unwrap();
    controller
        .add_remote_candidate(
            "candidate:1 1 udp 2122260223 0c4a7e5b-1a2b.local 54321 typ host",
            now,
        )
        .unwrap();
    controller
        .add_remote_candidate("a=candidate:1 1 udp 2122260223 10.0.0.1 1000 typ host", now)
        .unwrap();
    assert!(matches!(
        controller.accept_offer("not sdp", now),
        Err(Error::Sdp(_))
    ));
    assert!(matches!(
        controller.accept_answer("v=0", now),
        Err(Error::WrongState(_))
    ));
    // Garbage datagrams are ignored.
    for junk in [&[][..], &[0u8; 3], &[0xff; 1500], &[0x16, 0xfe, 0xfd, 0, 0]] {
        controller.handle_input(
            Input::Receive {
                source: host(1000),
                destination: host(2000),
                contents: junk,
            },
            now,
        );
    }
    while !matches!(controller.poll_output(), Output::Timeout(_)) {}
    // A configuration that cannot work never becomes a session.
    let broken = PeerConfig::new(Role::Answerer).with_liveness(
        Duration::from_secs(1),
        Duration::from_secs(1),
        Duration::from_secs(10),
    );
    assert!(matches!(
        broken.build(&[host(2000)], now),
        Err(Error::Config(
            ConfigError::SilenceShorterThanKeepalives { .. }
        ))
    ));
}

#[test]
fn text_arrives_as_text_and_bytes_as_bytes_on_every_channel() {
    let mut pair = Pair::new(1);
    pair.connect();
    let now = pair.now;
    let chat = Message::Text(r#"{"type":"chat","text":"hi"}"#.into());
    pair.sessions[0]
        .send_data(Channel::Control, chat.clone(), now)
        .unwrap();
    pair.sessions[1]
        .send_data(Channel::Input, binary(b"key"), now)
        .unwrap();
    pair.sessions[1]
        .send_data(Channel::Pointer, binary(b"move"), now)
        .unwrap();
    pair.sessions[1]
        .send_data(Channel::File, binary(&[7; 1000]), now)
        .unwrap();
    pair.drive_until(Duration::from_secs(1), |p| {
        !p.data(1, Channel::Control).is_empty()
            && !p.data(0, Channel::Input).is_empty()
            && !p.data(0, Channel::Pointer).is_empty()
            && !p.data(0, Channel::File).is_empty()
    });
    assert_eq!(pair.data(1, Channel::Control), [chat]);
    assert_eq!(pair.data(0, Channel::Input), [binary(b"key")]);
    assert_eq!(pair.data(0, Channel::Pointer), [binary(b"move")]);
    assert_eq!(pair.data(0, Channel::File), [binary(&[7; 1000])]);
}

#[test]
fn a_full_channel_queue_says_full_and_other_channels_still_take_messages() {
    let mut config = PeerConfig::new(Role::Answerer);
    config.data_queue = 4;
    let mut pair = Pair::with_configs(PeerConfig::new(Role::Offerer), config, 3);
    // Before the channels open, everything waits in the queues.
    let now = pair.now;
    for _ in 0..4 {
        pair.sessions[1]
            .send_data(Channel::File, binary(&[1; 100]), now)
            .unwrap();
    }
    assert!(matches!(
        pair.sessions[1].send_data(Channel::File, binary(&[1; 100]), now),
        Err(Error::Full)
    ));
    pair.sessions[1]
        .send_data(Channel::Input, binary(b"key"), now)
        .unwrap();
    pair.connect();
    pair.drive_until(Duration::from_secs(1), |p| {
        p.data(0, Channel::File).len() == 4 && p.data(0, Channel::Input).len() == 1
    });
}

#[test]
fn key_presses_arrive_within_a_round_trip_while_64_mib_of_file_bytes_are_in_flight() {
    let mut pair = Pair::new(0x64);
    pair.latency = Duration::from_millis(20);
    pair.connect();
    let chunk = vec![0xab; 16 * 1024];
    let total_chunks = 64 * 1024 * 1024 / chunk.len();
    let mut queued_chunks = 0;
    let mut key_sent_at = Vec::new();
    let started = pair.now;
    // Keys start once the transfer is past SCTP's slow start (its first round trips, when even a
    // small window of file bytes is more than SCTP may send at once).
    let mut next_key = started + Duration::from_secs(1);
    let give_up = started + Duration::from_secs(600);
    let mut received_chunks = 0;
    let mut scanned = 0;
    while received_chunks < total_chunks {
        for (_, event) in &pair.events[0][scanned..] {
            if matches!(event, PeerEvent::Data(Channel::File, _)) {
                received_chunks += 1;
            }
        }
        scanned = pair.events[0].len();
        assert!(pair.now < give_up, "transfer did not finish");
        let now = pair.now;
        // The file sender keeps the bulk queue as full as it will go, as a transfer would.
        while queued_chunks < total_chunks && pair.sessions[1].channel_room(Channel::File) > 0 {
            pair.sessions[1]
                .send_data(Channel::File, Message::Binary(chunk.clone()), now)
                .unwrap();
            queued_chunks += 1;
        }
        if now >= next_key && key_sent_at.len() < 20 {
            let index = key_sent_at.len() as u32;
            pair.sessions[1]
                .send_data(
                    Channel::Input,
                    Message::Binary(index.to_be_bytes().to_vec()),
                    now,
                )
                .unwrap();
            key_sent_at.push(now);
            next_key = now + Duration::from_millis(250);
        }
        pair.step();
    }
    let keys = pair.data_with_times(0, Channel::Input);
    assert_eq!(keys.len(), key_sent_at.len(), "every key arrived");
    assert!(
        key_sent_at.len() >= 10,
        "the transfer lasted long enough to test"
    );
    let round_trip = pair.latency * 2;
    let delays: Vec<_> = keys
        .iter()
        .zip(&key_sent_at)
        .map(|((a, _), s)| *a - *s)
        .collect();
    println!("key delays with file bytes in flight: {delays:?}");
    for (index, ((arrived, message), sent)) in keys.iter().zip(&key_sent_at).enumerate() {
        assert_eq!(
            message,
            &Message::Binary((index as u32).to_be_bytes().to_vec())
        );
        let delay = *arrived - *sent;
        assert!(
            delay <= round_trip,
            "key {index} took {delay:?} with file bytes in flight (RTT {round_trip:?})"
        );
    }
    let file_bytes: usize = pair
        .data(0, Channel::File)
        .iter()
        .map(|m| m.as_bytes().len())
        .sum();
    assert_eq!(file_bytes, 64 * 1024 * 1024);
}

#[test]
fn silence_is_reported_at_the_silence_timeout_then_the_session_closes() {
    let mut pair = Pair::new(2);
    pair.connect();
    pair.cut = true;
    let cut_at = pair.now;
    pair.drive_until(Duration::from_secs(30), |p| {
        p.saw(0, &PeerEvent::Closed).is_some()
    });
    let disconnected = pair.saw(0, &PeerEvent::Disconnected).unwrap() - cut_at;
    let closed = pair.saw(0, &PeerEvent::Closed).unwrap() - cut_at;
    let config = PeerConfig::new(Role::Offerer);
    // Silence counts from the last datagram heard, at most one keepalive before the cut.
    assert!(disconnected <= config.silence_timeout, "{disconnected:?}");
    assert!(disconnected + config.keepalive_interval + pair.latency >= config.silence_timeout);
    assert!(closed <= config.close_after_silence, "{closed:?}");
    assert!(pair.saw(1, &PeerEvent::Disconnected).is_some());
    // Sending on a closed session is an error the caller can see.
    let now = pair.now;
    assert!(matches!(
        pair.sessions[0].send_data(Channel::Control, binary(b"x"), now),
        Err(Error::Closed)
    ));
}

#[test]
fn reliable_data_survives_ten_percent_loss_and_reordering_in_order() {
    // The handshake runs lossless: OpenSSL's DTLS retransmission timer reads the real clock,
    // so a lost flight would wait for real seconds. SCTP and SRTP run on the virtual clock.
    let mut pair = Pair::new(0xfeed);
    pair.connect();
    pair.loss = 0.10;
    pair.jitter = Duration::from_millis(15);
    let total = 200u32;
    let mut next = 0u32;
    let give_up = pair.now + Duration::from_secs(60);
    while pair.data(1, Channel::Input).len() < total as usize {
        assert!(pair.now < give_up, "not delivered in 60 s of virtual time");
        while next < total && pair.sessions[0].channel_room(Channel::Input) > 0 {
            let now = pair.now;
            pair.sessions[0]
                .send_data(Channel::Input, binary(&next.to_be_bytes()), now)
                .unwrap();
            next += 1;
        }
        pair.step();
    }
    let expected: Vec<Message> = (0..total).map(|i| binary(&i.to_be_bytes())).collect();
    assert_eq!(pair.data(1, Channel::Input), expected);
}

#[test]
fn video_over_a_lossy_link_arrives_whole_in_order() {
    let mut pair = Pair::new(0xbeef);
    pair.connect();
    pair.loss = 0.05;
    let start = pair.now;
    let mut sent = Vec::new();
    for index in 0..100u32 {
        sent.push(send_frame(&mut pair, index, start, 400));
        pair.drive_for(Duration::from_millis(33));
    }
    pair.drive_until(Duration::from_secs(5), |p| {
        p.frames[1]
            .last()
            .is_some_and(|f| f.data[..] == sent[sent.len() - 1][..])
    });
    let mut position = 0;
    for frame in &pair.frames[1] {
        let found = sent[position..]
            .iter()
            .position(|s| s[..] == frame.data[..])
            .expect("every frame whole and in order");
        position += found + 1;
    }
    assert!(
        pair.frames[1].len() >= 50,
        "{} frames",
        pair.frames[1].len()
    );
}

#[test]
fn a_dropped_frame_at_the_receiver_asks_for_one_keyframe_and_skips_to_it() {
    let mut pair = Pair::new(0x5eed);
    pair.connect();
    let start = pair.now;
    for index in 0..5u32 {
        send_frame(&mut pair, index, start, 300);
        pair.drive_for(Duration::from_millis(33));
    }
    assert_eq!(pair.frames[1].len(), 5);
    let wanted_before = pair.keyframes_wanted[0];
    let now = pair.now;
    pair.sessions[1].video_frame_dropped(now);
    pair.drive_for(Duration::from_millis(100));
    assert!(
        pair.keyframes_wanted[0] > wanted_before,
        "the sender's encoder was asked"
    );
    // Until the keyframe, the receiver hands out nothing; then it resumes from the keyframe.
    let received_before = pair.frames[1].len();
    for index in 5..10u32 {
        send_frame(&mut pair, index, start, 300);
        pair.drive_for(Duration::from_millis(33));
    }
    let resumed = &pair.frames[1][received_before..];
    assert!(!resumed.is_empty());
    assert!(
        resumed[0].keyframe,
        "the first frame after the request is a keyframe"
    );
}

#[test]
fn a_still_screen_sends_no_probe_bursts_and_the_estimate_ramps_up_once_it_moves() {
    let mut pair = Pair::new(0x51);
    pair.connect();
    let start = pair.now;
    // A burst of motion, so the estimator has an estimate and has probed.
    for index in 0..30u32 {
        send_frame(&mut pair, index, start, 4000);
        pair.drive_for(Duration::from_millis(33));
    }
    // Then ten seconds of a still screen: nothing sent by the encoder.
    pair.drive_for(Duration::from_secs(2));
    let idle_from = pair.now;
    pair.drive_for(Duration::from_secs(10));
    // Per second on the wire (28 bytes of IP and UDP headers per datagram included).
    let per_second: Vec<usize> = (0..10u32)
        .map(|second| {
            let from = idle_from + Duration::from_secs(second.into());
            let to = from + Duration::from_secs(1);
            pair.sent[0]
                .iter()
                .filter(|(at, _)| *at >= from && *at < to)
                .map(|(_, n)| n + 28)
                .sum()
        })
        .collect();
    let mut sorted = per_second.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    println!(
        "still screen, puppet to controller, bit/s per second: {:?}",
        per_second.iter().map(|b| b * 8).collect::<Vec<_>>()
    );
    // No probing while still: no second carries a burst (probes reach 1.6 Mbit/s).
    let busiest = sorted[sorted.len() - 1];
    // And no padding: what is left is keepalives and reports, well under 2 kbit/s (the
    // puppet's stats message adds about 0.3 kbit/s on a still screen).
    let total: usize = per_second.iter().sum();
    assert!(
        total * 8 / per_second.len() <= 1_700,
        "a still screen costs {} bit/s: {per_second:?} bytes per second",
        total * 8 / per_second.len()
    );
    assert!(
        busiest <= median * 3 / 2,
        "a probe burst of {} bit/s on a still screen (median {} bit/s)",
        busiest * 8,
        median * 8
    );
    // The screen moves again: within a second the estimate is back above the start value.
    let moving_from = pair.now;
    for index in 30..60u32 {
        send_frame(&mut pair, index, start, 4000);
        pair.drive_for(Duration::from_millis(33));
    }
    let estimate = pair.sessions[0].bandwidth_estimate_bps();
    println!(
        "estimate {:?} bit/s, {:?} after the screen moved again",
        estimate,
        pair.now - moving_from
    );
    assert!(estimate.is_some_and(|bps| bps >= 2_000_000), "{estimate:?}");
}

#[test]
fn stats_name_the_selected_pair_with_each_candidate_kind() {
    let mut pair = Pair::new(5);
    pair.connect();
    pair.drive_until(Duration::from_secs(5), |p| {
        p.sessions.iter().all(|s| s.stats().selected_pair.is_some())
    });
    for side in 0..2 {
        let selected = pair.sessions[side]
            .stats()
            .selected_pair
            .expect("a selected pair once connected");
        assert_eq!(selected.local, pair.addresses[side]);
        assert_eq!(selected.remote, pair.addresses[1 - side]);
        assert_eq!(selected.local_kind, CandidateKind::Host);
        assert_eq!(selected.remote_kind, CandidateKind::Host, "side {side}");
    }
}

#[test]
fn candidate_kinds_are_read_from_signaled_lines_and_junk_gives_none() {
    use crate::candidate_kind;
    let line = "candidate:1 1 udp 2130706431 192.0.2.1 5000 typ srflx raddr 10.0.0.1 rport 5000";
    assert_eq!(candidate_kind(line), Some(CandidateKind::ServerReflexive));
    assert_eq!(
        candidate_kind("a=candidate:2 1 udp 1 203.0.113.9 3478 typ relay"),
        Some(CandidateKind::Relayed)
    );
    for junk in [
        "",
        "typ",
        "candidate:1 typ bogus",
        "no kind here",
        "typ\u{0} host",
    ] {
        assert_eq!(candidate_kind(junk), None, "{junk:?}");
    }
}
