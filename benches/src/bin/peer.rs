//! `cargo xtask bench peer`: what one rtcdesk-peer session does on loopback.
//!
//! 1. Data-channel round trip: the puppet sends a 64-byte message on `input`, the controller
//!    echoes it back on `input`; one message in flight; p50/p99/max over many round trips.
//! 2. Video throughput: synthetic AV1 frames at 60 fps in rising bitrate steps; for each step
//!    the bitrate that arrived whole, the frames delivered, and the CPU both peers (one process)
//!    spent per second of wall time. "Carried" means ≥ 99 % of the frames arrived.
//!
//! 3. A still screen: what arrives at the controller while the puppet sends no video (only a
//!    stats message a second on `control`, as the puppet does), and how the sender's bandwidth
//!    estimate comes back once the screen moves again.
//!
//! 4. Idle sessions: one endpoint (one socket set, as a puppet with 16 viewers has) hosting 16
//!    sessions, each to its own peer, each with a stats message a second; the process's memory
//!    and CPU per idle session (both ends are in this process).
//!
//! Options: `--round-trips N` (default 5000), `--step-seconds S` (default 3), `--only still`,
//! `--only idle`.

use std::time::{Duration, Instant};

use rtcdesk_peer::{
    Channel, EncodedVideoFrame, Message, Peer, PeerConfig, PeerEvent, PeerHandle, Role,
};
use tokio::sync::mpsc;

const COMMAND: &str =
    "cargo xtask bench peer  (= cargo run --profile bench -p rtcdesk-benches --bin peer)";
const FPS: u64 = 60;
const STEPS_MBPS: &[u64] = &[5, 10, 20, 40, 80, 160, 320, 640];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut round_trips = 5000usize;
    let mut step_seconds = 3u64;
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--only" {
            only = args.next();
            continue;
        }
        let value = args.next().and_then(|v| v.parse().ok());
        match (arg.as_str(), value) {
            ("--round-trips", Some(v)) => round_trips = v as usize,
            ("--step-seconds", Some(v)) => step_seconds = v,
            _ => {
                eprintln!("usage: peer [--round-trips N] [--step-seconds S] [--only still|idle]");
                std::process::exit(2);
            }
        }
    }
    print_machine();
    match only.as_deref() {
        Some("still") => return still_screen().await,
        Some("idle") => return idle_sessions(16).await,
        Some(other) => {
            eprintln!("--only takes still or idle, not {other}");
            std::process::exit(2);
        }
        None => {}
    }
    still_screen().await;
    idle_sessions(16).await;
    data_round_trip(round_trips).await;
    video_throughput(Duration::from_secs(step_seconds), false).await;
    video_throughput(Duration::from_secs(step_seconds), true).await;
}

fn print_machine() {
    println!("# rtcdesk-peer benchmark");
    println!("machine: {}", rtcdesk_benches::machine());
    println!("command: {COMMAND}");
    println!(
        "setup:   two peers in one process (tokio, 2 worker threads), 127.0.0.1 UDP, no relay"
    );
    println!();
}

struct Side {
    handle: PeerHandle,
    events: mpsc::UnboundedReceiver<PeerEvent>,
    video: rtcdesk_peer::VideoReceiver,
}

/// Offer/answer and candidates straight through channels; returns once both are connected.
async fn connect(initial_bitrate_bps: u64, max_bitrate_bps: u64) -> (Side, Side) {
    connect_with(true, initial_bitrate_bps, max_bitrate_bps).await
}

async fn connect_with(bwe: bool, initial_bitrate_bps: u64, max_bitrate_bps: u64) -> (Side, Side) {
    let mut puppet_config = PeerConfig::new(Role::Offerer);
    puppet_config.bandwidth_estimation = bwe;
    puppet_config.bind = Some("127.0.0.1:0".parse().expect("address"));
    puppet_config.max_bitrate_bps = max_bitrate_bps;
    puppet_config.initial_bitrate_bps = initial_bitrate_bps;
    let mut controller_config = PeerConfig::new(Role::Answerer);
    controller_config.bind = puppet_config.bind;
    controller_config.video_receive_queue = 64;
    let puppet = Peer::start(puppet_config).expect("puppet starts");
    let controller = Peer::start(controller_config).expect("controller starts");
    let offer = puppet.handle.create_offer().await.expect("offer");
    let answer = controller.handle.accept_offer(offer).await.expect("answer");
    puppet
        .handle
        .accept_answer(answer)
        .await
        .expect("answer applies");
    let mut puppet_side = Side {
        events: forward(puppet.events, controller.handle.clone()),
        handle: puppet.handle,
        video: puppet.video,
    };
    let mut controller_side = Side {
        events: forward(controller.events, puppet_side.handle.clone()),
        handle: controller.handle,
        video: controller.video,
    };
    for side in [&mut puppet_side, &mut controller_side] {
        let mut open = 0;
        while open < 3 {
            match side.events.recv().await.expect("session runs") {
                PeerEvent::ChannelOpen(_) => open += 1,
                PeerEvent::Closed => panic!("closed while connecting"),
                _ => {}
            }
        }
    }
    (puppet_side, controller_side)
}

fn forward(
    mut events: mpsc::Receiver<PeerEvent>,
    other: PeerHandle,
) -> mpsc::UnboundedReceiver<PeerEvent> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                PeerEvent::LocalCandidate { candidate, .. } => {
                    let _ = other.add_remote_candidate(candidate).await;
                }
                PeerEvent::GatheringComplete => {
                    let _ = other.add_remote_candidate(String::new()).await;
                }
                event => {
                    let _ = tx.send(event);
                }
            }
        }
    });
    rx
}

async fn data_round_trip(round_trips: usize) {
    println!("## data channel round trip (input, reliable+ordered, 64 B, one in flight)");
    println!("| load | round trips | p50 µs | p99 µs | max µs |");
    println!("|---|---|---|---|---|");
    for video_mbps in [0u64, 20] {
        let (mut puppet, controller) = connect(25_000_000, 100_000_000).await;
        start_echo(controller.handle.clone(), controller.events);
        let mut video = controller.video;
        tokio::spawn(async move { while video.recv().await.is_some() {} });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if video_mbps > 0 {
            tokio::spawn(run_encoder(puppet.handle.clone(), video_mbps, stop_rx));
        }
        let mut samples = measure_round_trips(&mut puppet, round_trips).await;
        let _ = stop_tx.send(true);
        samples.sort();
        let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        let load = if video_mbps == 0 {
            "idle".to_string()
        } else {
            format!("while sending {video_mbps} Mbit/s of video")
        };
        println!(
            "| {load} | {} | {:.1} | {:.1} | {:.1} |",
            samples.len(),
            micros(pick(0.50)),
            micros(pick(0.99)),
            micros(pick(1.0)),
        );
        puppet.handle.close().await;
    }
    println!();
}

fn start_echo(handle: PeerHandle, mut events: mpsc::UnboundedReceiver<PeerEvent>) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let PeerEvent::Data(Channel::Input, message) = event {
                if handle.send_data(Channel::Input, message).await.is_err() {
                    return;
                }
            }
        }
    });
}

async fn measure_round_trips(puppet: &mut Side, round_trips: usize) -> Vec<Duration> {
    let warm_up = 200;
    let mut samples = Vec::with_capacity(round_trips);
    for i in 0..warm_up + round_trips {
        let mut message = vec![0u8; 64];
        message[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let sent_at = Instant::now();
        puppet
            .handle
            .send_data(Channel::Input, Message::Binary(message.clone()))
            .await
            .expect("send");
        loop {
            match puppet.events.recv().await.expect("session runs") {
                PeerEvent::Data(Channel::Input, echo) if echo.as_bytes() == message => break,
                _ => {}
            }
        }
        if i >= warm_up {
            samples.push(sent_at.elapsed());
        }
    }
    samples
}

/// Sends synthetic frames at `FPS` and `mbps` until told to stop, obeying keyframe requests.
async fn run_encoder(handle: PeerHandle, mbps: u64, stop: tokio::sync::watch::Receiver<bool>) {
    let frame_len = (mbps * 1_000_000 / 8 / FPS) as usize;
    let delta_template = synthetic_frame(frame_len, false);
    let key_template = synthetic_frame(frame_len, true);
    let sender = handle.video_sender();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
    let start = Instant::now();
    let mut index = 0u64;
    while !*stop.borrow() {
        ticker.tick().await;
        let keyframe = index == 0 || sender.take_keyframe_request();
        let mut data = if keyframe {
            key_template.clone()
        } else {
            delta_template.clone()
        };
        let end = data.len();
        data[end - 8..].copy_from_slice(&index.to_be_bytes());
        let capture_time = start + Duration::from_micros(index * 1_000_000 / FPS);
        if !sender.send(EncodedVideoFrame {
            data: data.into(),
            capture_time,
            keyframe,
        }) {
            return;
        }
        index += 1;
    }
}

/// Seconds of moving screen before the still period, of still screen, and of moving screen
/// after it.
const MOVING_BEFORE: Duration = Duration::from_secs(4);
const STILL: Duration = Duration::from_secs(14);
/// The first seconds of the still period are left out: the last frames' acknowledgements and
/// the session's switch to idle happen there.
const STILL_SETTLE: Duration = Duration::from_secs(4);
const MOVING_AFTER: Duration = Duration::from_secs(4);

async fn still_screen() {
    println!("## still screen: bytes on the wire with no video, and the estimate once it moves");
    // The estimator starts low and must find the path's capacity from the video itself.
    let (puppet, controller) = connect(300_000, 20_000_000).await;
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for (side, mut events) in [("puppet", puppet.events), ("controller", controller.events)] {
        let samples = samples.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let PeerEvent::Stats(stats) = event {
                    if let Ok(mut samples) = samples.lock() {
                        samples.push((side, Instant::now(), stats));
                    }
                }
            }
        });
    }
    let mut video = controller.video;
    tokio::spawn(async move { while video.recv().await.is_some() {} });
    // The puppet's heartbeat: one stats message a second on `control`.
    let heartbeat_handle = puppet.handle.clone();
    let heartbeat = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let line = r#"{"type":"stats","fps":0,"rtt_ms":0.3,"bitrate_kbps":1.2,"loss":0}"#;
        loop {
            tick.tick().await;
            let _ = heartbeat_handle.try_send_data(Channel::Control, Message::Text(line.into()));
        }
    });
    let start = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(run_encoder(puppet.handle.clone(), 4, stop_rx));
    tokio::time::sleep(MOVING_BEFORE).await;
    let _ = stop_tx.send(true);
    let still_from = Instant::now();
    tokio::time::sleep(STILL).await;
    let moving_from = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(run_encoder(puppet.handle.clone(), 8, stop_rx));
    tokio::time::sleep(MOVING_AFTER).await;
    let _ = stop_tx.send(true);
    heartbeat.abort();
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    // Bytes counted by str0m: every datagram's UDP payload (STUN, DTLS, SRTP, SRTCP).
    let rate =
        |side: &str, from: Instant, to: Instant, bytes: fn(&rtcdesk_peer::PeerStats) -> u64| {
            let inside: Vec<_> = samples
                .iter()
                .filter(|(s, at, _)| *s == side && *at >= from && *at <= to)
                .collect();
            match (inside.first(), inside.last()) {
                (Some((_, a, first)), Some((_, b, last))) if b > a => {
                    Some((bytes(last) - bytes(first)) as f64 * 8.0 / (*b - *a).as_secs_f64())
                }
                _ => None,
            }
        };
    let settled = still_from + STILL_SETTLE;
    let arriving = rate("controller", settled, moving_from, |s| s.bytes_received);
    let leaving = rate("puppet", settled, moving_from, |s| s.bytes_sent);
    let back = rate("controller", settled, moving_from, |s| s.bytes_sent);
    let show =
        |bps: Option<f64>| bps.map_or("n/a".to_string(), |bps| format!("{:.2}", bps / 1000.0));
    println!(
        "| still screen, {} s measured | kbit/s |",
        (STILL - STILL_SETTLE).as_secs()
    );
    println!("|---|---|");
    println!("| arriving at the controller | {} |", show(arriving));
    println!("| leaving the puppet | {} |", show(leaving));
    println!(
        "| leaving the controller (acks, RTCP, consent) | {} |",
        show(back)
    );
    println!("(UDP payload bytes as str0m counts them; IP and UDP headers add 28 B per packet)");
    println!();
    println!("| seconds since start | phase | sender's estimate Mbit/s | arriving Mbit/s |");
    println!("|---|---|---|---|");
    for (_, at, stats) in samples.iter().filter(|(side, _, _)| *side == "puppet") {
        let phase = if *at < still_from {
            "moving (4 Mbit/s of frames)"
        } else if *at < moving_from {
            "still"
        } else {
            "moving (8 Mbit/s of frames)"
        };
        let arriving = samples
            .iter()
            .rfind(|(s, t, _)| *s == "controller" && t <= at)
            .map_or(0, |(_, _, s)| s.receive_bitrate_bps);
        println!(
            "| {:.1} | {phase} | {} | {:.2} |",
            at.duration_since(start).as_secs_f64(),
            stats
                .bandwidth_estimate_bps
                .map_or("n/a".to_string(), |bps| format!("{:.2}", bps as f64 / 1e6)),
            arriving as f64 / 1e6,
        );
    }
    println!();
    puppet.handle.close().await;
    controller.handle.close().await;
}

/// Seconds the idle sessions are watched for CPU.
const IDLE_WATCH: Duration = Duration::from_secs(10);

async fn idle_sessions(count: usize) {
    println!("## {count} idle sessions hosted on one socket set");
    let rss_before = rss_kib();
    let loopback = Some("127.0.0.1:0".parse().expect("address"));
    let hosting = rtcdesk_peer::Endpoint::bind(loopback, 1 << 20).expect("endpoint");
    let mut ends = Vec::new();
    let connect_started = Instant::now();
    for _ in 0..count {
        let mut puppet_config = PeerConfig::new(Role::Offerer);
        puppet_config.bind = loopback;
        let mut controller_config = PeerConfig::new(Role::Answerer);
        controller_config.bind = loopback;
        let puppet = hosting.start_session(puppet_config).expect("session");
        // Each viewer is its own program with its own socket (two sessions between the same
        // two sockets could not be told apart by address).
        let controller = Peer::start(controller_config).expect("session");
        let offer = puppet.handle.create_offer().await.expect("offer");
        let answer = controller.handle.accept_offer(offer).await.expect("answer");
        puppet
            .handle
            .accept_answer(answer)
            .await
            .expect("answer applies");
        let mut puppet_events = forward(puppet.events, controller.handle.clone());
        let controller_events = forward(controller.events, puppet.handle.clone());
        let connected = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match puppet_events.recv().await {
                    Some(PeerEvent::ChannelOpen(Channel::Control)) => return true,
                    Some(PeerEvent::Closed) | None => return false,
                    Some(_) => {}
                }
            }
        })
        .await;
        if connected != Ok(true) {
            println!("session {} did not connect within 20 s", ends.len() + 1);
            return;
        }
        // Drain both sides' events, as the programs do; each session's heartbeat as the
        // puppet sends it.
        for mut events in [puppet_events, controller_events] {
            tokio::spawn(async move { while events.recv().await.is_some() {} });
        }
        let handle = puppet.handle.clone();
        let heartbeat = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let line = r#"{"type":"stats","fps":0,"rtt_ms":0.3,"bitrate_kbps":1.2,"loss":0}"#;
            loop {
                tick.tick().await;
                let _ = handle.try_send_data(Channel::Control, Message::Text(line.into()));
            }
        });
        ends.push((
            puppet.handle,
            controller.handle,
            puppet.video,
            controller.video,
            heartbeat,
        ));
    }
    let connected_in = connect_started.elapsed();
    // Let the connection set-up's allocations and timers settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_connected = rss_kib();
    let cpu_start = cpu_time();
    let wall_start = Instant::now();
    tokio::time::sleep(IDLE_WATCH).await;
    let cpu_share = (cpu_time() - cpu_start).as_secs_f64() / wall_start.elapsed().as_secs_f64();
    let rss_after = rss_kib();
    let per = |kib: u64| kib as f64 / count as f64;
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| sessions connected | {count} in {:.2} s |",
        connected_in.as_secs_f64()
    );
    println!(
        "| RSS before / connected / after {} s idle | {} / {} / {} KiB |",
        IDLE_WATCH.as_secs(),
        rss_before,
        rss_connected,
        rss_after
    );
    println!(
        "| memory per idle session (both ends in this process) | {:.0} KiB |",
        per(rss_after.saturating_sub(rss_before))
    );
    println!(
        "| CPU per idle session (both ends) | {:.3} % of one core |",
        cpu_share * 100.0 / count as f64
    );
    println!();
    for (puppet, controller, _, _, heartbeat) in ends {
        heartbeat.abort();
        puppet.close().await;
        controller.close().await;
    }
}

/// Resident memory of this process, from /proc/self/status.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// User + system CPU time of this process so far (both peers), from /proc/self/stat.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

async fn video_throughput(step: Duration, bwe: bool) {
    if bwe {
        println!("## video throughput, BWE on ({FPS} fps synthetic AV1 frames; estimate starts at 1.25 x the offered rate, str0m paces to it)");
    } else {
        println!("## video throughput, BWE off ({FPS} fps synthetic AV1 frames; no pacing: the session's raw capacity)");
    }
    println!(
        "| offered Mbit/s | frame KiB | delivered Mbit/s | frames delivered | CPU (both peers) |"
    );
    println!("|---|---|---|---|---|");
    let mut best_carried = 0u64;
    for &mbps in STEPS_MBPS {
        // A fresh session per step, so one overloaded step does not slow the next.
        // BWE starts at the offered rate: the figure is what the session carries, not how fast
        // the estimator ramps up from a cold start.
        let (mut puppet, controller) =
            connect_with(bwe, mbps * 1_250_000, 4 * mbps * 1_000_000).await;
        let frame_len = (mbps * 1_000_000 / 8 / FPS) as usize;
        let mut video = controller.video;
        let window_start = Instant::now() + Duration::from_millis(500);
        let window_end = window_start + step;
        // (frame index, length) of every whole frame the controller got.
        let arrived = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let arrived_writer = arrived.clone();
        tokio::spawn(async move {
            while let Some(frame) = video.recv().await {
                let data = &frame.data;
                let mut index = [0u8; 8];
                index.copy_from_slice(&data[data.len() - 8..]);
                if let Ok(mut arrived) = arrived_writer.lock() {
                    arrived.push((u64::from_be_bytes(index), data.len()));
                }
            }
        });
        let sender = puppet.handle.video_sender();
        let delta_template = synthetic_frame(frame_len, false);
        let key_template = synthetic_frame(frame_len, true);
        let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / FPS));
        let mut window_indices: Option<(u64, u64)> = None;
        let mut cpu_at_start = None;
        let start = Instant::now();
        let mut index = 0u64;
        loop {
            ticker.tick().await;
            let now = Instant::now();
            if now >= window_end + Duration::from_millis(200) {
                break;
            }
            if now >= window_start && cpu_at_start.is_none() {
                cpu_at_start = Some((cpu_time(), now));
            }
            let keyframe = index == 0 || sender.take_keyframe_request();
            let mut data = if keyframe {
                key_template.clone()
            } else {
                delta_template.clone()
            };
            let end = data.len();
            data[end - 8..].copy_from_slice(&index.to_be_bytes());
            sender.send(EncodedVideoFrame {
                data: data.into(),
                capture_time: start + Duration::from_micros(index * 1_000_000 / FPS),
                keyframe,
            });
            if now >= window_start && now < window_end {
                let first = window_indices.map_or(index, |(first, _)| first);
                window_indices = Some((first, index));
            }
            index += 1;
        }
        let (cpu_start, wall_start) = cpu_at_start.unwrap_or((cpu_time(), Instant::now()));
        let cpu_share = (cpu_time() - cpu_start).as_secs_f64() / wall_start.elapsed().as_secs_f64();
        // Frames still in flight land within a few round trips on loopback.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (first, last) = window_indices.unwrap_or((1, 0));
        let sent_in_window = last + 1 - first;
        let (frames, bytes) = arrived.lock().map_or((0, 0), |arrived| {
            arrived
                .iter()
                .filter(|(index, _)| (first..=last).contains(index))
                .fold((0u64, 0u64), |(n, b), (_, len)| (n + 1, b + *len as u64))
        });
        let delivered_mbps = bytes as f64 * 8.0 / step.as_secs_f64() / 1e6;
        let share = frames as f64 / sent_in_window.max(1) as f64;
        println!(
            "| {mbps} | {:.0} | {delivered_mbps:.1} | {frames}/{sent_in_window} ({:.0} %) | {:.0} % of one core |",
            frame_len as f64 / 1024.0,
            share * 100.0,
            cpu_share * 100.0,
        );
        if share >= 0.99 {
            best_carried = best_carried.max(mbps);
        }
        let mut last_stats = None;
        while let Ok(event) = puppet.events.try_recv() {
            if let PeerEvent::Stats(stats) = event {
                last_stats = Some(stats);
            }
        }
        if let Some(stats) = last_stats {
            println!(
                "|   | sender at the end: BWE {:.1} Mbit/s, egress loss {:?}, frames skipped {} | | | |",
                stats.bandwidth_estimate_bps.unwrap_or(0) as f64 / 1e6,
                stats.egress_loss,
                stats.frames_skipped
            );
        }
        puppet.handle.close().await;
    }
    println!();
    println!("highest step carried (≥ 99 % of frames whole): {best_carried} Mbit/s");
    println!();
}

/// A frame the AV1 packetizer accepts: a frame OBU (with size field) of about `len` bytes,
/// preceded on keyframes by a sequence header OBU (which marks the RTP packet as a keyframe).
fn synthetic_frame(len: usize, keyframe: bool) -> Vec<u8> {
    let payload_len = len.saturating_sub(8).max(16);
    let mut out = Vec::with_capacity(payload_len + 16);
    if keyframe {
        push_obu_header(&mut out, 1, 6);
        out.extend_from_slice(&[0, 0, 0, 0x0a, 0x0b, 0x0c]);
    }
    push_obu_header(&mut out, 6, payload_len);
    let mut state = 0x1234_5678u32;
    for _ in 0..payload_len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.push(state as u8);
    }
    out
}

fn push_obu_header(out: &mut Vec<u8>, obu_type: u8, payload_len: usize) {
    out.push((obu_type << 3) | 0b10);
    let mut size = payload_len;
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}
