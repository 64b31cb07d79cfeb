//! `cargo xtask bench e2e`: puppet and controller end to end on loopback.
//!
//! An in-process puppet (synthetic desktop, embedded signaling server, its own tokio runtime)
//! and an in-process headless controller (its own runtime; a sink that converts each picture to
//! RGBA as the window would) run one session. For each size, workload and encoder:
//!
//! - **glass-to-glass**: from the frame stamp's capture time (drawn into the picture by the
//!   synthetic desktop) to the picture decoded and converted to RGBA, i.e. handed to the window;
//! - **input-to-photon**: from a pointer move sent by the controller to the first decoded
//!   picture in which the desktop's pointer marker is at the new place (one probe in flight,
//!   a new one 50 ms after the last was seen);
//! - delivered fps (decoded pictures per second), received bitrate (peer stats), and
//! - CPU of each side, in cores: per-thread CPU time from `/proc/self/task/*/stat`, grouped by
//!   thread name (controller: `ctl-net*`, `rtcdesk-decode`, `dav1d-worker`; puppet:
//!   `pup-net*`, `capture`, `encode`, `rtcdesk-inject`, `aom enc worker`, and unnamed codec
//!   threads, which inherit their creator's name). "other threads" is the rest: the
//!   benchmark's own main and workload threads, and any thread not named as above.
//!
//! Workloads: **typing** (a character typed on the desktop every 80 ms, 12.5 per second),
//! **scrolling** (the text window scrolls one line every 16.7 ms, 60 per second).
//!
//! Options: `--seconds S` per case (default 8), `--sizes 1280x720,1920x1080`,
//! `--encoders aom,rav1e`, `--workloads typing,scrolling`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtcdesk_controller::{
    Controller, ControllerConfig, ControllerEvent, DecodedPicture, FrameSink,
};
use rtcdesk_media::{find_pointer, EncoderKind, SyntheticDesktop};
use rtcdesk_proto::input::{InputEvent, InputMessage};
use rtcdesk_puppet::{Puppet, PuppetConfig, Source};

const COMMAND: &str =
    "cargo xtask bench e2e  (= cargo run --profile bench -p rtcdesk-benches --bin e2e)";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Workload {
    Typing,
    Scrolling,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Typing => "typing",
            Workload::Scrolling => "scrolling",
        }
    }
}

/// A pointer probe in flight: where the marker should appear and when the move was sent.
#[derive(Debug, Default)]
struct Probe {
    target: Option<(u32, u32)>,
    sent_at: Option<Instant>,
    seen_at: Option<Instant>,
}

#[derive(Default)]
struct Measured {
    glass: Vec<Duration>,
    /// Per stamped picture: capture → first packet received, received → decoded, decoded →
    /// RGBA handed over.
    split: Vec<(Duration, Duration, Duration)>,
    photon: Vec<Duration>,
    pictures: u64,
}

struct BenchSink {
    rgba: Vec<u8>,
    measuring: Arc<AtomicBool>,
    probe: Arc<Mutex<Probe>>,
    measured: Arc<Mutex<Measured>>,
    last_frame_number: Option<u32>,
}

impl FrameSink for BenchSink {
    fn frame(&mut self, picture: &DecodedPicture<'_>) {
        picture.to_rgba(&mut self.rgba);
        let handed_over = rtcdesk_media::frame::unix_micros_now();
        let now = Instant::now();
        if !self.measuring.load(Ordering::Relaxed) {
            return;
        }
        let mut measured = self.measured.lock().unwrap_or_else(|e| e.into_inner());
        measured.pictures += 1;
        if let Some(stamp) = picture.stamp() {
            if self.last_frame_number != Some(stamp.frame_number) {
                self.last_frame_number = Some(stamp.frame_number);
                let age = stamp.age_at(handed_over);
                let since_received = now - picture.received_at;
                let since_decoded = now - picture.decoded_at;
                measured.glass.push(age);
                measured.split.push((
                    age.saturating_sub(since_received),
                    since_received.saturating_sub(since_decoded),
                    since_decoded,
                ));
            }
        }
        let mut probe = self.probe.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(target), Some(sent_at), None) = (probe.target, probe.sent_at, probe.seen_at) {
            if let Some((x, y)) = find_pointer(picture.view) {
                if x.abs_diff(target.0) <= 3 && y.abs_diff(target.1) <= 3 {
                    probe.seen_at = Some(now);
                    measured.photon.push(now - sent_at);
                }
            }
        }
    }
}

/// CPU time per thread group, in clock ticks.
fn cpu_by_group() -> HashMap<&'static str, u64> {
    let mut groups = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return groups;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // After the name: state is field 3 (index 0 here); utime 14, stime 15 (indices 11, 12).
        let ticks = fields
            .get(11)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            + fields
                .get(12)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        let group = if name.starts_with("ctl-net")
            || name.starts_with("rtcdesk-decode")
            || name.starts_with("dav1d")
        {
            "controller"
        } else if name.starts_with("pup-net")
            || name.starts_with("capture")
            || name.starts_with("encode")
            || name.starts_with("rtcdesk-inject")
            || name.starts_with("aom")
        {
            "puppet"
        } else {
            "bench"
        };
        *groups.entry(group).or_insert(0) += ticks;
    }
    groups
}

fn ticks_per_second() -> f64 {
    // getconf CLK_TCK; 100 on every Linux we run on.
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn percentile(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "—".into();
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    format!("{:.1}", sorted[index].as_secs_f64() * 1000.0)
}

fn ms(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

struct Case {
    width: u32,
    height: u32,
    workload: Workload,
    encoder: EncoderKind,
}

struct Row {
    glass: Vec<Duration>,
    split: (Duration, Duration, Duration),
    /// Inside the puppet, p50 per encoded frame: capture → handed to the encoder (waiting for
    /// the pacer and the previous encode, converting), and the encode itself.
    puppet_split: (Duration, Duration),
    photon: Vec<Duration>,
    probes_sent: u64,
    fps: f64,
    mbps: f64,
    puppet_cores: f64,
    controller_cores: f64,
    other_cores: f64,
}

fn run_case(case: &Case, seconds: u64) -> anyhow::Result<Row> {
    let puppet_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("pup-net")
        .enable_all()
        .build()?;
    let controller_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ctl-net")
        .enable_all()
        .build()?;

    let mut config = PuppetConfig::loopback(Source::Synthetic {
        width: case.width,
        height: case.height,
    });
    config.encoder = case.encoder;
    config.fps = 60;
    // Started on a runtime worker, so threads the codecs create unnamed inherit `pup-net`.
    let puppet: Puppet = puppet_rt.block_on(puppet_rt.spawn(Puppet::start(config)))??;
    let desktop: SyntheticDesktop = puppet
        .synthetic_desktop()
        .ok_or_else(|| anyhow::anyhow!("no synthetic desktop"))?;

    let measuring = Arc::new(AtomicBool::new(false));
    let probe = Arc::new(Mutex::new(Probe::default()));
    let measured = Arc::new(Mutex::new(Measured::default()));
    let sink = BenchSink {
        rgba: Vec::new(),
        measuring: measuring.clone(),
        probe: probe.clone(),
        measured: measured.clone(),
        last_frame_number: None,
    };
    let mut controller_config = ControllerConfig::new(puppet.signal_url(), puppet.control_code());
    controller_config.name = "e2e bench".into();
    controller_config.bind = Some("127.0.0.1:0".parse()?);
    let mut controller = controller_rt
        .block_on(controller_rt.spawn(Controller::connect(controller_config, Box::new(sink))))??;
    let input = controller.input_sender();
    let mut events = controller.take_events();
    let bitrates = Arc::new(Mutex::new(Vec::<u64>::new()));
    {
        let bitrates = bitrates.clone();
        let measuring = measuring.clone();
        controller_rt.spawn(async move {
            while let Some(event) = events.recv().await {
                if let ControllerEvent::Stats(stats) = event {
                    if measuring.load(Ordering::Relaxed) {
                        bitrates.lock().unwrap().push(stats.receive_bitrate_bps);
                    }
                }
            }
        });
    }

    // The workload: its own thread, ticking like a person or an application would.
    let stop = Arc::new(AtomicBool::new(false));
    let workload = {
        let stop = stop.clone();
        let desktop = desktop.clone();
        let kind = case.workload;
        std::thread::Builder::new()
            .name("workload".into())
            .spawn(move || {
                let (period, mut typed) = match kind {
                    Workload::Typing => (Duration::from_millis(80), 0u64),
                    Workload::Scrolling => (Duration::from_micros(16_667), 0),
                };
                let mut next = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    match kind {
                        Workload::Typing => {
                            typed += 1;
                            if typed % 60 == 0 {
                                desktop.key("Enter", true);
                                desktop.key("Enter", false);
                            } else {
                                desktop.text(if typed % 6 == 0 { " " } else { "x" });
                            }
                        }
                        Workload::Scrolling => desktop.scroll(1),
                    }
                    next += period;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
            })?
    };

    // Warm up (keyframe, bandwidth estimate), then measure.
    std::thread::sleep(Duration::from_secs(2));
    let ticks = ticks_per_second();
    let cpu_start = cpu_by_group();
    let wall_start = Instant::now();
    // Only the frames encoded while measuring count.
    let _ = puppet.take_frame_timings();
    measuring.store(true, Ordering::Relaxed);

    let positions = [(0.3, 0.45), (0.7, 0.55), (0.45, 0.7), (0.6, 0.35)];
    let mut probes_sent = 0u64;
    let mut seq = 1u32;
    let deadline = wall_start + Duration::from_secs(seconds);
    let mut next_probe = Instant::now();
    while Instant::now() < deadline {
        let ready = {
            let probe = probe.lock().unwrap();
            probe.sent_at.is_none()
                || probe
                    .seen_at
                    .is_some_and(|seen| seen.elapsed() >= Duration::from_millis(50))
                || probe
                    .sent_at
                    .is_some_and(|sent| sent.elapsed() >= Duration::from_secs(1))
        };
        if ready && Instant::now() >= next_probe {
            let (fx, fy) = positions[probes_sent as usize % positions.len()];
            let (x, y) = ((fx * 65535.0) as u16, (fy * 65535.0) as u16);
            let target = (
                (u32::from(x) * (case.width - 1) + 32767) / 65535,
                (u32::from(y) * (case.height - 1) + 32767) / 65535,
            );
            *probe.lock().unwrap() = Probe {
                target: Some(target),
                sent_at: Some(Instant::now()),
                seen_at: None,
            };
            let message = InputMessage {
                seq,
                timestamp_us: rtcdesk_media::frame::unix_micros_now(),
                event: InputEvent::PointerMove { x, y },
            };
            seq += 1;
            probes_sent += 1;
            input.try_send(&message)?;
            next_probe = Instant::now() + Duration::from_millis(20);
        }
        std::thread::sleep(Duration::from_millis(2));
    }

    measuring.store(false, Ordering::Relaxed);
    let timings = puppet.take_frame_timings();
    let wall = wall_start.elapsed().as_secs_f64();
    let cpu_end = cpu_by_group();
    let cores = |group: &str| {
        (cpu_end.get(group).copied().unwrap_or(0) as f64
            - cpu_start.get(group).copied().unwrap_or(0) as f64)
            / ticks
            / wall
    };
    let puppet_cores = cores("puppet");
    let controller_cores = cores("controller");
    let other_cores = cores("bench");

    stop.store(true, Ordering::Relaxed);
    let _ = workload.join();
    controller_rt.block_on(controller.close());
    puppet_rt.block_on(puppet.shutdown());
    puppet_rt.shutdown_timeout(Duration::from_secs(2));
    controller_rt.shutdown_timeout(Duration::from_secs(2));

    let measured = std::mem::take(&mut *measured.lock().unwrap());
    let bitrates = bitrates.lock().unwrap().clone();
    let mut glass = measured.glass;
    glass.sort();
    let mut photon = measured.photon;
    photon.sort();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let puppet_split = (
        median(
            timings
                .iter()
                .map(|t| t.submitted_at.saturating_duration_since(t.captured_at))
                .collect(),
        ),
        median(
            timings
                .iter()
                .map(|t| t.produced_at.saturating_duration_since(t.submitted_at))
                .collect(),
        ),
    );
    let split = (
        median(measured.split.iter().map(|s| s.0).collect()),
        median(measured.split.iter().map(|s| s.1).collect()),
        median(measured.split.iter().map(|s| s.2).collect()),
    );
    Ok(Row {
        split,
        puppet_split,
        glass,
        photon,
        probes_sent,
        fps: measured.pictures as f64 / wall,
        mbps: if bitrates.is_empty() {
            0.0
        } else {
            bitrates.iter().sum::<u64>() as f64 / bitrates.len() as f64 / 1e6
        },
        puppet_cores,
        controller_cores,
        other_cores,
    })
}

fn parse_list<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    text.split(',').map(|s| parse(s.trim())).collect()
}

fn main() -> anyhow::Result<()> {
    let mut seconds = 8u64;
    let mut sizes = vec![(1280u32, 720u32), (1920, 1080)];
    let mut encoders = vec![EncoderKind::Aom, EncoderKind::Rav1e];
    let mut workloads = vec![Workload::Typing, Workload::Scrolling];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let ok = match arg.as_str() {
            "--seconds" => value.parse().map(|v| seconds = v).is_ok(),
            "--sizes" => parse_list(&value, |s| {
                let (w, h) = s.split_once('x')?;
                Some((w.parse().ok()?, h.parse().ok()?))
            })
            .map(|v| sizes = v)
            .is_some(),
            "--encoders" => parse_list(&value, |s| match s {
                "aom" => Some(EncoderKind::Aom),
                "rav1e" => Some(EncoderKind::Rav1e),
                _ => None,
            })
            .map(|v| encoders = v)
            .is_some(),
            "--workloads" => parse_list(&value, |s| match s {
                "typing" => Some(Workload::Typing),
                "scrolling" => Some(Workload::Scrolling),
                _ => None,
            })
            .map(|v| workloads = v)
            .is_some(),
            _ => false,
        };
        if !ok {
            eprintln!(
                "usage: e2e [--seconds S] [--sizes WxH,…] [--encoders aom,rav1e] [--workloads typing,scrolling]"
            );
            std::process::exit(2);
        }
    }

    println!(
        "# rtcdesk end-to-end benchmark (puppet + headless controller, loopback, one process)"
    );
    println!("machine: {}", rtcdesk_benches::machine());
    println!("command: {COMMAND}");
    println!(
        "per case: 2 s warm-up, {seconds} s measured; puppet at most 60 fps; latencies in ms \
         (p50/p95/p99); CPU in cores (1.00 = one core busy)"
    );
    println!();
    println!(
        "| size | workload | encoder | glass-to-glass p50/p95/p99 | g2g p50 split: capture→received / →decoded / →RGBA | puppet p50: capture→encoder / encode | input-to-photon p50/p95/p99 (seen/sent) | fps | Mbit/s | puppet CPU | controller CPU | other threads |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &(width, height) in &sizes {
        for &workload in &workloads {
            for &encoder in &encoders {
                let case = Case {
                    width,
                    height,
                    workload,
                    encoder,
                };
                let encoder_name = match encoder {
                    EncoderKind::Aom => "libaom",
                    EncoderKind::Rav1e => "rav1e",
                };
                match run_case(&case, seconds) {
                    Ok(row) => println!(
                        "| {width}×{height} | {} | {encoder_name} | {} / {} / {} | {} / {} / {} | {} / {} | {} / {} / {} ({}/{}) | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |",
                        workload.name(),
                        percentile(&row.glass, 0.5),
                        percentile(&row.glass, 0.95),
                        percentile(&row.glass, 0.99),
                        ms(row.split.0),
                        ms(row.split.1),
                        ms(row.split.2),
                        ms(row.puppet_split.0),
                        ms(row.puppet_split.1),
                        percentile(&row.photon, 0.5),
                        percentile(&row.photon, 0.95),
                        percentile(&row.photon, 0.99),
                        row.photon.len(),
                        row.probes_sent,
                        row.fps,
                        row.mbps,
                        row.puppet_cores,
                        row.controller_cores,
                        row.other_cores,
                    ),
                    Err(error) => println!(
                        "| {width}×{height} | {} | {encoder_name} | failed: {error:#} ||||||||||",
                        workload.name()
                    ),
                }
            }
        }
    }
    println!();
    println!("targets (libaom, 1280×720): input-to-photon p50 ≤ 30 ms, p99 ≤ 60 ms; glass-to-glass p50 ≤ 20 ms; 60 fps while scrolling; puppet CPU ≤ 1 core. 1920×1080: input-to-photon p50 ≤ 40 ms, ≥ 30 fps.");
    Ok(())
}
