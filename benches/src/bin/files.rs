//! `cargo xtask bench files`: one big file from the controller to the puppet over loopback, and
//! what it does to the session while it runs.
//!
//! An in-process puppet (synthetic desktop, embedded signaling server, `--accept-files` into a
//! folder under `target/`) and an in-process controller run one session (the `e2e` rig). The
//! benchmark:
//!
//! 1. measures **input-to-photon** on an idle session for `--seconds` (pointer-move probes,
//!    one in flight; the time until a decoded picture shows the desktop's pointer there);
//! 2. sends a file of `--mib` MiB (default 1024) of noise and keeps probing until the file is
//!    in the puppet's folder under its final name, i.e. written, hash-checked and renamed;
//! 3. prints the throughput (file bytes over the time from the offer to the file kept; the
//!    sender's hashing before the offer separately), input-to-photon p50/p99 during the
//!    transfer beside idle, and the peak resident memory above idle.
//!
//! Both programs run in this one process, so the memory figure is for both sides together
//! (VmHWM, reset through `/proc/self/clear_refs` before the transfer, minus VmRSS when idle).
//!
//! Options: `--mib N` (default 1024), `--seconds S` idle probing (default 8), `--size WxH` of
//! the desktop (default 1280x720).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rtcdesk_benches::session::{percentile_ms, send_probes, Rig};
use rtcdesk_controller::ControllerEvent;
use rtcdesk_files::TransferEvent;
use rtcdesk_puppet::{PuppetConfig, Source};

const COMMAND: &str =
    "cargo xtask bench files  (= cargo run --profile bench -p rtcdesk-benches --bin files)";

/// One of `VmRSS`, `VmHWM` from `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        line.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// Writes `mib` MiB of noise (nothing compresses) to `path`, 1 MiB at a time.
fn noise_file(path: &Path, mib: u64) -> anyhow::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&block)?;
    }
    file.flush()?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut mib = 1024u64;
    let mut seconds = 8u64;
    let mut size = (1280u32, 720u32);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let ok = match arg.as_str() {
            "--mib" => value.parse().map(|v| mib = v).is_ok() && mib > 0,
            "--seconds" => value.parse().map(|v| seconds = v).is_ok(),
            "--size" => value
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                .map(|s| size = s)
                .is_some(),
            _ => false,
        };
        if !ok {
            anyhow::bail!(
                "usage: {COMMAND} [--mib N] [--seconds S] [--size WxH]\n(bad option {arg} {value})"
            );
        }
    }

    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-files");
    let received = root.join("received");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&received)?;
    let source = root.join("payload.bin");
    let written = Instant::now();
    noise_file(&source, mib)?;
    println!(
        "wrote {mib} MiB of noise to {} in {:.1} s",
        source.display(),
        written.elapsed().as_secs_f64()
    );

    let mut config = PuppetConfig::loopback(Source::Synthetic {
        width: size.0,
        height: size.1,
    });
    config.download_dir = Some(received.clone());
    config.accept_files = true;
    let rig = Rig::start(config, |controller| controller.name = "files bench".into())?;
    // Warm up (keyframe, bandwidth estimate).
    std::thread::sleep(Duration::from_secs(2));

    let idle_window = rig.begin(None);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let idle_probes = send_probes(&rig, size, || Instant::now() < deadline)?;
    let idle = rig.end(idle_window);
    let idle_rss = status_kib("VmRSS").unwrap_or(0);
    // Resets the peak (VmHWM) to the current RSS (Linux ≥ 4.0).
    let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();

    let kept = received.join("payload.bin");
    let started = Instant::now();
    rig.files().send(&source)?;
    let window = rig.begin(None);
    let limit = started + Duration::from_secs(600);
    let mut last_check = Instant::now();
    let mut done = false;
    let mut pointer_moves = 0u32;
    let mut last_pointer = rig.desktop.pointer();
    let busy_probes = send_probes(&rig, size, || {
        if last_check.elapsed() >= Duration::from_millis(20) {
            last_check = Instant::now();
            let pointer = rig.desktop.pointer();
            if pointer != last_pointer {
                pointer_moves += 1;
                last_pointer = pointer;
            }
            done = kept.exists()
                || rig.file_events().iter().any(|(_, event)| {
                    matches!(
                        event,
                        ControllerEvent::File(TransferEvent::Ended { .. })
                            | ControllerEvent::FileNotSent { .. }
                    )
                });
        }
        !done && Instant::now() < limit
    })?;
    let finished = Instant::now();
    let busy = rig.end(window);
    let peak_rss = status_kib("VmHWM").unwrap_or(0);
    let events = rig.file_events();
    rig.close();

    for (at, event) in &events {
        if let ControllerEvent::File(TransferEvent::Ended { .. })
        | ControllerEvent::FileNotSent { .. } = event
        {
            anyhow::bail!(
                "the transfer failed after {:.1} s: {event:?}",
                at.duration_since(started).as_secs_f64()
            );
        }
    }
    if !kept.exists() {
        anyhow::bail!("the file was not kept within 600 s");
    }
    let same = std::fs::metadata(&kept)?.len() == std::fs::metadata(&source)?.len();
    let offered_at = events
        .iter()
        .find_map(|(at, event)| matches!(event, ControllerEvent::FileOffered(_)).then_some(*at));
    let bytes = mib as f64 * 1024.0 * 1024.0;
    let total = finished.duration_since(started).as_secs_f64();
    let (hash_s, wire_s) = match offered_at {
        Some(at) => {
            let hash = at.duration_since(started).as_secs_f64();
            (hash, total - hash)
        }
        None => (0.0, total),
    };

    println!();
    println!("{COMMAND}");
    println!("machine: {}", rtcdesk_benches::machine());
    println!(
        "{mib} MiB controller → puppet over loopback, desktop {}x{}, size check {}",
        size.0,
        size.1,
        if same { "ok" } else { "FAILED" }
    );
    println!();
    println!("| figure | value |");
    println!("|---|---|");
    println!("| sender hashing before the offer | {hash_s:.1} s |");
    println!(
        "| offer → file kept (sent, written, SHA-256 checked, renamed) | {wire_s:.1} s = **{:.0} MB/s** ({:.0} MiB/s) |",
        bytes / 1e6 / wire_s,
        bytes / 1048576.0 / wire_s
    );
    println!(
        "| start → file kept, hashing included | {total:.1} s = {:.0} MB/s |",
        bytes / 1e6 / total
    );
    println!(
        "| input-to-photon idle: p50 / p99 ({} probes, {} seen) | {} / {} |",
        idle_probes,
        idle.photon.len(),
        percentile_ms(&idle.photon, 0.5),
        percentile_ms(&idle.photon, 0.99)
    );
    println!(
        "| input-to-photon during the transfer: p50 / p99 ({} probes, {} seen) | {} / {} |",
        busy_probes,
        busy.photon.len(),
        percentile_ms(&busy.photon, 0.5),
        percentile_ms(&busy.photon, 0.99)
    );
    if let (Some(idle_p99), Some(busy_p99)) = (
        rtcdesk_benches::session::percentile(&idle.photon, 0.99),
        rtcdesk_benches::session::percentile(&busy.photon, 0.99),
    ) {
        println!(
            "| p99 during / idle | {:.2}× (target ≤ 1.5×) |",
            busy_p99.as_secs_f64() / idle_p99.as_secs_f64().max(1e-9)
        );
    }
    if peak_reset {
        println!(
            "| peak RSS above idle, both sides together | {:.1} MiB (idle RSS {:.0} MiB) |",
            peak_rss.saturating_sub(idle_rss) as f64 / 1024.0,
            idle_rss as f64 / 1024.0
        );
    } else {
        println!("| peak RSS above idle | not measured (/proc/self/clear_refs not writable) |");
    }
    println!(
        "| CPU during the transfer, in cores: puppet / controller | {:.2} / {:.2} |",
        busy.puppet_cores, busy.controller_cores
    );
    println!(
        "| video during the transfer: fps / Mbit/s | {:.1} / {:.2} (idle {:.1} / {:.2}) |",
        busy.fps, busy.mbps, idle.fps, idle.mbps
    );
    println!(
        "| during the transfer: pointer moves seen on the desktop / frames the puppet encoded | {pointer_moves} / {} (idle: {} frames) |",
        busy.frames_encoded, idle.frames_encoded
    );
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
