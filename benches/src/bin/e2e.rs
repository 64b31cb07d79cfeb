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
//! A last table runs 1280×720 scrolling with libaom for 1, 2 and 4 viewers of the same puppet
//! (`--viewers 1,2,4`): every viewer shares the one encoding, so the puppet's CPU per extra
//! viewer is only what sending costs.
//!
//! Options: `--seconds S` per case (default 8), `--sizes 1280x720,1920x1080`,
//! `--encoders aom,rav1e`, `--workloads typing,scrolling`, `--viewers 1,2,4` (empty: none).

use std::time::{Duration, Instant};

use rtcdesk_benches::session::{
    ms_text as ms, percentile_ms as percentile, send_probes, Figures, Rig, Workload,
};
use rtcdesk_media::EncoderKind;
use rtcdesk_puppet::{PuppetConfig, Source};

const COMMAND: &str =
    "cargo xtask bench e2e  (= cargo run --profile bench -p rtcdesk-benches --bin e2e)";

struct Case {
    width: u32,
    height: u32,
    workload: Workload,
    encoder: EncoderKind,
}

/// One case's figures and how many pointer probes were sent.
struct Row {
    figures: Figures,
    probes_sent: u64,
}

fn run_case(case: &Case, seconds: u64) -> anyhow::Result<Row> {
    run_case_with_viewers(case, seconds, 1)
}

fn run_case_with_viewers(case: &Case, seconds: u64, viewers: usize) -> anyhow::Result<Row> {
    let mut config = PuppetConfig::loopback(Source::Synthetic {
        width: case.width,
        height: case.height,
    });
    config.encoder = case.encoder;
    let mut rig = Rig::start(config, |controller| controller.name = "e2e bench".into())?;
    for _ in 1..viewers {
        rig.add_viewer()?;
    }
    rig.start_workload(case.workload)?;

    // Warm up (keyframe, bandwidth estimate), then measure.
    std::thread::sleep(Duration::from_secs(2));
    let window = rig.begin(None);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let probes_sent = send_probes(&rig, (case.width, case.height), || {
        Instant::now() < deadline
    })?;
    let figures = rig.end(window);
    rig.close();
    Ok(Row {
        figures,
        probes_sent,
    })
}

/// Sends pointer moves for `duration`, one in flight: a new one 50 ms after the last was seen
/// (or a second after it was sent, if never seen). Returns how many were sent.
fn parse_list<T>(text: &str, parse: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    text.split(',').map(|s| parse(s.trim())).collect()
}

fn main() -> anyhow::Result<()> {
    let mut seconds = 8u64;
    let mut sizes = vec![(1280u32, 720u32), (1920, 1080)];
    let mut encoders = vec![EncoderKind::Aom, EncoderKind::Rav1e];
    let mut workloads = vec![Workload::Typing, Workload::Scrolling];
    let mut viewer_counts = vec![1usize, 2, 4];
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
            "--viewers" if value.is_empty() => {
                viewer_counts.clear();
                true
            }
            "--viewers" => parse_list(&value, |s| s.parse().ok().filter(|n| *n >= 1))
                .map(|v| viewer_counts = v)
                .is_some(),
            _ => false,
        };
        if !ok {
            eprintln!(
                "usage: e2e [--seconds S] [--sizes WxH,…] [--encoders aom,rav1e] [--workloads typing,scrolling] [--viewers 1,2,4]"
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
                    Ok(Row { figures: row, probes_sent }) => println!(
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
                        probes_sent,
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
    if !viewer_counts.is_empty() {
        viewers_table(&viewer_counts, seconds);
    }
    println!("targets (libaom, 1280×720): input-to-photon p50 ≤ 30 ms, p99 ≤ 60 ms; glass-to-glass p50 ≤ 20 ms; 60 fps while scrolling; puppet CPU ≤ 1 core. 1920×1080: input-to-photon p50 ≤ 40 ms, ≥ 30 fps.");
    Ok(())
}

/// 1280×720 scrolling, libaom, with 1, 2, 4 … viewers: the puppet's CPU and what each extra
/// viewer adds. The first viewer is the one measured for latency; the others only watch.
fn viewers_table(counts: &[usize], seconds: u64) {
    println!("## viewers of one puppet (1280×720, scrolling, libaom)");
    println!("| viewers | puppet CPU | per extra viewer | first viewer's input-to-photon p50/p99 | fps | all controllers' CPU |");
    println!("|---|---|---|---|---|---|");
    let case = Case {
        width: 1280,
        height: 720,
        workload: Workload::Scrolling,
        encoder: EncoderKind::Aom,
    };
    let mut alone = None;
    for &viewers in counts {
        match run_case_with_viewers(&case, seconds, viewers) {
            Ok(Row { figures, .. }) => {
                let base = *alone.get_or_insert((viewers, figures.puppet_cores));
                let per_extra = if viewers > base.0 {
                    format!(
                        "{:+.3}",
                        (figures.puppet_cores - base.1) / (viewers - base.0) as f64
                    )
                } else {
                    "—".to_string()
                };
                println!(
                    "| {viewers} | {:.2} | {per_extra} | {} / {} | {:.1} | {:.2} |",
                    figures.puppet_cores,
                    percentile(&figures.photon, 0.5),
                    percentile(&figures.photon, 0.99),
                    figures.fps,
                    figures.controller_cores,
                );
            }
            Err(error) => println!("| {viewers} | failed: {error:#} |||||"),
        }
    }
    println!();
}
