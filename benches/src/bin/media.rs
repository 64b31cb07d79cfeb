//! Media pipeline benchmark: the synthetic desktop at 640×360, 1280×720 and 1920×1080, typed on
//! and scrolled, through capture, BGRA→I420, each AV1 encoder, dav1d and I420→RGBA. Prints time
//! per stage, encoder delay (hand-over to packet, in frames and ms), bits per frame and PSNR.
//! Figures, not assertions.
//!
//! Run: `cargo xtask bench media [--frames N] [--encoder aom|rav1e|rav1e-queue] [--size WxH] [--kbps K]`

use std::time::{Duration, Instant};

use rtcdesk_benches::{machine, ms, percentile};
use rtcdesk_media::encode::aom::AomEncoder;
use rtcdesk_media::encode::rav1e::{Feeding, Rav1eEncoder};
use rtcdesk_media::{
    bgra_to_i420, i420_to_rgba, psnr_y, read_stamp, Capture, Decoder, Encoder, EncoderConfig,
    Frame, FrameMeta, SyntheticDesktop, I420,
};

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Typing,
    Scrolling,
}

#[derive(Clone, Copy, PartialEq)]
enum Which {
    Aom,
    Rav1e,
    Rav1eQueue,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Which::Aom => "aom",
            Which::Rav1e => "rav1e",
            Which::Rav1eQueue => "rav1e-queue",
        }
    }
}

/// Frames per run: libaom gets 3 s at 30 fps; rav1e fewer, it is 10–40× slower.
fn frames_for(which: Which, width: u32, override_frames: Option<usize>) -> usize {
    if let Some(n) = override_frames {
        return n;
    }
    match (which, width) {
        (Which::Aom, _) => 90,
        (_, w) if w <= 640 => 45,
        (_, w) if w <= 1280 => 30,
        _ => 20,
    }
}

struct Row {
    capture: Vec<f64>,
    to_i420: Vec<f64>,
    encode_call: Vec<f64>,
    delay_ms: Vec<f64>,
    held: Vec<f64>,
    bytes: usize,
    packets: usize,
    decode: Vec<f64>,
    to_rgba: Vec<f64>,
    psnr: Vec<f64>,
    stamps_ok: usize,
    decode_errors: usize,
    frames: usize,
    keyframe_bytes: usize,
}

fn run(
    which: Which,
    width: u32,
    height: u32,
    workload: Workload,
    frames: usize,
    kbps: Option<u32>,
) -> Row {
    let mut config = EncoderConfig::new(width, height);
    if let Some(kbps) = kbps {
        config.bitrate_kbps = kbps;
    }
    let mut encoder: Box<dyn Encoder> = match which {
        Which::Aom => Box::new(AomEncoder::new(&config).expect("libaom")),
        Which::Rav1e => {
            Box::new(Rav1eEncoder::with_feeding(&config, Feeding::Duplicates).expect("rav1e"))
        }
        Which::Rav1eQueue => {
            Box::new(Rav1eEncoder::with_feeding(&config, Feeding::Queue).expect("rav1e"))
        }
    };
    let mut desktop = SyntheticDesktop::new(width, height);
    let mut decoder = Decoder::new(2).expect("dav1d");
    let mut frame = Frame::new(width, height);
    let mut image = I420::new(width, height);
    let mut sources: std::collections::HashMap<u64, I420> = Default::default();
    let mut rgba = Vec::new();
    let mut row = Row {
        capture: vec![],
        to_i420: vec![],
        encode_call: vec![],
        delay_ms: vec![],
        held: vec![],
        bytes: 0,
        packets: 0,
        decode: vec![],
        to_rgba: vec![],
        psnr: vec![],
        stamps_ok: 0,
        decode_errors: 0,
        frames,
        keyframe_bytes: 0,
    };
    let period = Duration::from_secs_f64(1.0 / 30.0);
    let verbose = std::env::var_os("RTCDESK_BENCH_VERBOSE").is_some();
    let mut next = Instant::now();
    let mut handle = |packet: rtcdesk_media::EncodedFrame,
                      row: &mut Row,
                      sources: &mut std::collections::HashMap<u64, I420>| {
        row.bytes += packet.data.len();
        row.packets += 1;
        if packet.keyframe && row.keyframe_bytes == 0 {
            row.keyframe_bytes = packet.data.len();
        }
        let started = Instant::now();
        let picture = match decoder.decode(&packet.data, 0) {
            Ok(Some(picture)) => picture,
            other => {
                eprintln!(
                    "decode of frame {} (repeat {}, {} bytes) failed: {:?}",
                    packet.meta.number,
                    packet.repeat,
                    packet.data.len(),
                    other.map(|p| p.is_some())
                );
                row.decode_errors += 1;
                return;
            }
        };
        row.decode.push(ms(started.elapsed()));
        let started = Instant::now();
        i420_to_rgba(picture.view(), &mut rgba);
        row.to_rgba.push(ms(started.elapsed()));
        if packet.repeat {
            return;
        }
        row.delay_ms
            .push(ms(packet.produced_at - packet.meta.submitted_at));
        row.held.push(packet.frames_held as f64);
        if let Some(source) = sources.remove(&packet.meta.number) {
            let psnr = psnr_y(source.view(), picture.view());
            if verbose && psnr < 38.0 {
                let (sv, pv) = (source.view(), picture.view());
                let (mut x0, mut y0, mut x1, mut y1, mut n) = (u32::MAX, u32::MAX, 0, 0, 0);
                for y in 0..sv.height {
                    for x in 0..sv.width {
                        if sv.luma(x, y).abs_diff(pv.luma(x, y)) > 40 {
                            x0 = x0.min(x);
                            y0 = y0.min(y);
                            x1 = x1.max(x);
                            y1 = y1.max(y);
                            n += 1;
                        }
                    }
                }
                eprintln!("bad region {x0},{y0} - {x1},{y1}: {n} pixels");
            }
            if verbose {
                eprintln!(
                    "frame {} key {} bytes {} psnr {psnr:.1} stamp {:?}",
                    packet.meta.number,
                    packet.keyframe,
                    packet.data.len(),
                    read_stamp(picture.view())
                );
            }
            row.psnr.push(psnr);
        }
        if read_stamp(picture.view()).map(|s| s.frame_number as u64) == Some(packet.meta.number) {
            row.stamps_ok += 1;
        }
    };
    for i in 0..frames {
        match workload {
            Workload::Typing => {
                if i % 12 == 11 {
                    desktop.key("Backspace", true);
                    desktop.key("Backspace", false);
                } else {
                    desktop.text(&((b'a' + (i % 26) as u8) as char).to_string());
                }
            }
            Workload::Scrolling => desktop.scroll(1),
        }
        let started = Instant::now();
        assert!(desktop.grab(&mut frame).expect("grab"));
        row.capture.push(ms(started.elapsed()));
        let started = Instant::now();
        bgra_to_i420(&frame, &mut image);
        row.to_i420.push(ms(started.elapsed()));
        sources.insert(frame.number, image.clone());
        let meta = FrameMeta::of(&frame);
        let started = Instant::now();
        encoder.send_frame(&image, meta, false).expect("encode");
        row.encode_call.push(ms(started.elapsed()));
        while let Some(packet) = encoder.poll_packet().expect("poll") {
            handle(packet, &mut row, &mut sources);
        }
        next += period;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    encoder.flush().expect("flush");
    while let Some(packet) = encoder.poll_packet().expect("poll") {
        handle(packet, &mut row, &mut sources);
    }
    row
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut frames = None;
    let mut kbps = None;
    let mut encoders = vec![Which::Aom, Which::Rav1e, Which::Rav1eQueue];
    let mut sizes = vec![(640, 360), (1280, 720), (1920, 1080)];
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--frames" => frames = it.next().and_then(|s| s.parse().ok()),
            "--kbps" => kbps = it.next().and_then(|s| s.parse().ok()),
            "--encoder" => {
                encoders = match it.next().map(String::as_str) {
                    Some("aom") => vec![Which::Aom],
                    Some("rav1e") => vec![Which::Rav1e],
                    Some("rav1e-queue") => vec![Which::Rav1eQueue],
                    other => panic!("unknown encoder {other:?}"),
                }
            }
            "--size" => {
                let spec = it.next().expect("--size WxH");
                let (w, h) = spec.split_once('x').expect("WxH");
                sizes = vec![(w.parse().expect("width"), h.parse().expect("height"))];
            }
            other => panic!("unknown argument {other}"),
        }
    }
    println!("# rtcdesk media benchmark");
    println!("machine: {}", machine());
    println!(
        "command: cargo xtask bench media {}  (= cargo run --profile bench -p rtcdesk-benches --bin media)",
        args.join(" ")
    );
    println!("source: synthetic desktop, frames handed over at 30 fps; bitrate {}; 2 encoder threads, 2 decoder threads", kbps.map(|k| format!("{k} kbit/s")).unwrap_or_else(|| "default (EncoderConfig::new)".into()));
    println!(
        "load average at start: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    println!("times in ms per frame, p50 (p95); delay = hand-over to packet; held = frames sent after it before it came out");
    println!();
    println!(
        "{:<10} {:<12} {:<9} {:>4} {:>7} {:>13} {:>15} {:>15} {:>7} {:>9} {:>8} {:>13} {:>13} {:>11} {:>7}",
        "size", "encoder", "workload", "n", "capture", "to-I420", "encode call", "delay", "held", "kbit/frm", "key kbit", "decode", "to-RGBA", "PSNR min/avg", "stamps"
    );
    for &(width, height) in &sizes {
        for &which in &encoders {
            for workload in [Workload::Typing, Workload::Scrolling] {
                let n = frames_for(which, width, frames);
                let mut r = run(which, width, height, workload, n, kbps);
                let p = |v: &mut Vec<f64>| {
                    format!("{:.2} ({:.2})", percentile(v, 50.0), percentile(v, 95.0))
                };
                let psnr_min = r.psnr.iter().cloned().fold(f64::INFINITY, f64::min);
                let psnr_avg = r.psnr.iter().sum::<f64>() / r.psnr.len().max(1) as f64;
                println!(
                    "{:<10} {:<12} {:<9} {:>4} {:>7.2} {:>13} {:>15} {:>15} {:>3.0}/{:<3.0} {:>9.1} {:>8.1} {:>13} {:>13} {:>5.1}/{:<5.1} {:>3}/{:<3}",
                    format!("{width}x{height}"),
                    which.name(),
                    if workload == Workload::Typing { "typing" } else { "scrolling" },
                    r.frames,
                    percentile(&mut r.capture, 50.0),
                    p(&mut r.to_i420),
                    p(&mut r.encode_call),
                    p(&mut r.delay_ms),
                    percentile(&mut r.held, 50.0),
                    percentile(&mut r.held, 100.0),
                    r.bytes as f64 * 8.0 / 1000.0 / r.frames as f64,
                    r.keyframe_bytes as f64 * 8.0 / 1000.0,
                    p(&mut r.decode),
                    p(&mut r.to_rgba),
                    psnr_min,
                    psnr_avg,
                    r.stamps_ok,
                    r.frames,
                );
                if r.decode_errors > 0 {
                    println!(
                        "    ^ {} packets failed to decode (details on stderr)",
                        r.decode_errors
                    );
                }
            }
        }
    }
    println!();
    println!("kbit/frm counts every packet, rav1e's repeats included, divided by the frames handed over.");
    println!();
    conversion_table(&sizes);
}

/// Conversion alone, repeated on one frame: the minimum shows the cost on an idle core even when
/// the machine is busy.
fn conversion_table(sizes: &[(u32, u32)]) {
    println!("conversion, 200 repetitions on one synthetic frame, ms: p50 / min");
    for &(width, height) in sizes {
        let mut desktop = SyntheticDesktop::new(width, height);
        let mut frame = Frame::new(width, height);
        desktop.grab(&mut frame).expect("grab");
        let mut image = I420::new(width, height);
        let mut rgba = Vec::new();
        let (mut forward, mut back) = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let started = Instant::now();
            bgra_to_i420(&frame, &mut image);
            forward.push(ms(started.elapsed()));
            let started = Instant::now();
            i420_to_rgba(image.view(), &mut rgba);
            back.push(ms(started.elapsed()));
        }
        println!(
            "{width}x{height}: BGRA->I420 {:.2} / {:.2}   I420->RGBA {:.2} / {:.2}",
            percentile(&mut forward, 50.0),
            percentile(&mut forward, 0.0),
            percentile(&mut back, 50.0),
            percentile(&mut back, 0.0)
        );
    }
}
