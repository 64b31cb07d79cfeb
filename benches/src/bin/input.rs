//! Input injection benchmark: how long an input event takes from arriving at the puppet's
//! injector to being in the X server, and how many events per second the injector sustains.
//!
//! Run with `cargo xtask bench input` (that is,
//! `cargo run --profile bench -p rtcdesk-benches --bin input`). It starts a private Xvfb, an
//! enigo injector thread into it (the production path: `PuppetInput` → bounded queue →
//! `EnigoInjector`), and a real X client (`X11Observer`) that timestamps the events it receives.
//!
//! Measured:
//! - **latency** (closed loop, one event in flight): from `PuppetInput::handle_message` to
//!   (a) the injector thread being idle again, which for enigo means the X server acknowledged
//!   the event (enigo syncs after each one), and (b) the observer client having received it;
//! - **sustained keys/s**: key presses and releases (must-deliver events) pushed as fast as the
//!   queue accepts them without overflowing, counted at the X client;
//! - **pointer flood**: pointer moves pushed as fast as possible; how many reached the server
//!   and how many the queue coalesced;
//! - **text**: characters per second the injector types (translate mode and IME text), with
//!   characters on the keymap and others bound to spare keycodes, some repeated.
//!
//! Arguments: `--events N` latency samples per kind (default 1000), `--seconds S` for each
//! throughput run (default 3).

use std::time::{Duration, Instant};

use rtcdesk_input::observe::{Observed, X11Observer};
use rtcdesk_input::{
    EnigoInjector, InjectorHandle, InjectorThread, PuppetInput, ScreenArea, SessionConfig,
    DEFAULT_QUEUE_CAPACITY,
};
use rtcdesk_proto::input::{InputEvent, InputMessage, Modifiers, MouseButton};
use rtcdesk_proto::KeyCode;
use rtcdesk_xvfb::Xvfb;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const WAIT: Duration = Duration::from_secs(10);

struct Bench {
    input: PuppetInput,
    handle: InjectorHandle,
    observer: X11Observer,
    seq: u32,
}

impl Bench {
    fn send(&mut self, event: InputEvent) -> Result<(), rtcdesk_input::Error> {
        self.seq = self.seq.wrapping_add(1);
        self.input.handle_message(&InputMessage {
            seq: self.seq,
            timestamp_us: 0,
            event,
        })
    }
}

/// Latencies of one kind of event, in microseconds.
#[derive(Default)]
struct Samples {
    acknowledged: Vec<u64>,
    received: Vec<u64>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(values: &mut [u64]) -> String {
    values.sort_unstable();
    format!(
        "p50 {:>6} µs   p99 {:>6} µs   max {:>6} µs",
        percentile(values, 50.0),
        percentile(values, 99.0),
        values.last().copied().unwrap_or(0)
    )
}

/// Sends `event` and waits until the server acknowledged it and the observer received
/// something `matches` accepts.
fn measure(
    bench: &mut Bench,
    samples: &mut Samples,
    event: InputEvent,
    matches: impl Fn(&Observed) -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    bench.send(event).map_err(|e| e.to_string())?;
    if !bench.handle.wait_idle(WAIT) {
        return Err("injector did not finish within 10 s".into());
    }
    let acknowledged = start.elapsed();
    let deadline = start + WAIT;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .ok_or("the X client never received the event")?;
        let (observed, at) = bench
            .observer
            .next_timed(left)
            .ok_or("the X client never received the event")?;
        if matches(&observed) {
            samples.acknowledged.push(acknowledged.as_micros() as u64);
            samples
                .received
                .push(at.saturating_duration_since(start).as_micros() as u64);
            return Ok(());
        }
    }
}

fn latency(bench: &mut Bench, events: usize) -> Result<(), String> {
    let mut moves = Samples::default();
    let mut keys = Samples::default();
    let mut buttons = Samples::default();
    for i in 0..events {
        // Distinct positions along a diagonal so each move really moves the pointer.
        let x = ((i * 997) % 60000) as u16 + 100;
        let y = ((i * 613) % 60000) as u16 + 100;
        measure(bench, &mut moves, InputEvent::PointerMove { x, y }, |o| {
            matches!(o, Observed::Motion { .. })
        })?;
        for pressed in [true, false] {
            let event = InputEvent::Key {
                code: KeyCode::KeyA,
                pressed,
                modifiers: Modifiers::NONE,
            };
            measure(bench, &mut keys, event, |o| {
                matches!(o, Observed::KeyPress { .. } | Observed::KeyRelease { .. })
            })?;
        }
        for pressed in [true, false] {
            let event = InputEvent::Button {
                button: MouseButton::Left,
                pressed,
                x,
                y,
                modifiers: Modifiers::NONE,
            };
            measure(bench, &mut buttons, event, |o| {
                matches!(o, Observed::ButtonPress(_) | Observed::ButtonRelease(_))
            })?;
        }
    }
    println!("latency, one event in flight (from handle_message):");
    for (name, samples) in [
        ("pointer move", &mut moves),
        ("key down/up", &mut keys),
        ("button down/up", &mut buttons),
    ] {
        println!(
            "  {name:<15} n={:<5} X server acknowledged: {}",
            samples.acknowledged.len(),
            summary(&mut samples.acknowledged)
        );
        println!(
            "  {:<15} {:<7} X client received:     {}",
            "",
            "",
            summary(&mut samples.received)
        );
    }
    Ok(())
}

/// Counts events the observer receives until `expected` arrived or it goes quiet.
fn count_received(observer: &X11Observer, expected: u64, keep: impl Fn(&Observed) -> bool) -> u64 {
    let mut received = 0;
    while received < expected {
        match observer.next(Duration::from_secs(2)) {
            Some(event) if keep(&event) => received += 1,
            Some(_) => {}
            None => break,
        }
    }
    received
}

fn sustained_keys(bench: &mut Bench, seconds: f64) -> Result<(), String> {
    let high_water = DEFAULT_QUEUE_CAPACITY * 3 / 4;
    let before = bench.handle.stats();
    let start = Instant::now();
    let mut sent: u64 = 0;
    while start.elapsed().as_secs_f64() < seconds {
        if bench.handle.queued() >= high_water {
            std::thread::yield_now();
            continue;
        }
        let event = InputEvent::Key {
            code: KeyCode::KeyA,
            pressed: sent & 1 == 0,
            modifiers: Modifiers::NONE,
        };
        bench.send(event).map_err(|e| e.to_string())?;
        sent += 1;
    }
    if sent & 1 == 1 {
        // End with the key up.
        let event = InputEvent::Key {
            code: KeyCode::KeyA,
            pressed: false,
            modifiers: Modifiers::NONE,
        };
        bench.send(event).map_err(|e| e.to_string())?;
        sent += 1;
    }
    if !bench.handle.wait_idle(WAIT) {
        return Err("injector did not drain".into());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let applied = bench.handle.stats().applied - before.applied;
    let received = count_received(&bench.observer, sent, |o| {
        matches!(o, Observed::KeyPress { .. } | Observed::KeyRelease { .. })
    });
    println!(
        "sustained key events: {:.0} events/s ({sent} sent, {applied} injected, {received} received by the X client, {elapsed:.2} s)",
        applied as f64 / elapsed
    );
    Ok(())
}

fn pointer_flood(bench: &mut Bench, seconds: f64) -> Result<(), String> {
    let before = bench.handle.stats();
    let start = Instant::now();
    let mut sent: u64 = 0;
    while start.elapsed().as_secs_f64() < seconds {
        let x = ((sent * 997) % 60000) as u16 + 1000;
        bench
            .send(InputEvent::PointerMove { x, y: 30000 })
            .map_err(|e| e.to_string())?;
        sent += 1;
    }
    let submit_elapsed = start.elapsed().as_secs_f64();
    if !bench.handle.wait_idle(WAIT) {
        return Err("injector did not drain".into());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = bench.handle.stats();
    let applied = after.applied - before.applied;
    let coalesced = after.coalesced_moves - before.coalesced_moves;
    let received = count_received(&bench.observer, applied, |o| {
        matches!(o, Observed::Motion { .. })
    });
    println!(
        "pointer flood: {:.0} moves/s offered, {:.0} moves/s injected, {coalesced} coalesced, {received} motion events received ({elapsed:.2} s)",
        sent as f64 / submit_elapsed,
        applied as f64 / elapsed
    );
    Ok(())
}

fn text_rate(bench: &mut Bench, repeats: usize) -> Result<(), String> {
    const SENTENCE: &str = "The quick brown fox jumps over the lazy dog, 0123456789! ";
    let start = Instant::now();
    for _ in 0..repeats {
        bench
            .send(InputEvent::Text(SENTENCE.into()))
            .map_err(|e| e.to_string())?;
    }
    if !bench.handle.wait_idle(Duration::from_secs(120)) {
        return Err("text injection did not finish".into());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let characters = (SENTENCE.chars().count() * repeats) as u64;
    let received = count_received(&bench.observer, characters, |o| {
        matches!(o, Observed::KeyPress { .. })
    });
    println!(
        "text: {:.0} characters/s ({characters} typed by the injector, {received} key presses received, {elapsed:.2} s)",
        characters as f64 / elapsed
    );
    Ok(())
}

fn arg(args: &[String], name: &str, default: f64) -> Result<f64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{name} needs a number")),
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let events = arg(&args, "--events", 1000.0)? as usize;
    let seconds = arg(&args, "--seconds", 3.0)?;

    println!("rtcdesk input injection benchmark");
    println!("command: cargo xtask bench input --events {events} --seconds {seconds}");
    println!("machine: {}", rtcdesk_benches::machine());
    println!(
        "setup:   Xvfb {WIDTH}x{HEIGHT}x24, EnigoInjector (enigo 0.6 x11rb/XTEST; text by its own XTEST typist) on the injector thread, queue capacity {DEFAULT_QUEUE_CAPACITY}, observer = x11rb client window"
    );
    println!(
        "         'acknowledged' = the injector thread finished the event (enigo syncs with the server after each); 'received' = the observer client's reader thread got it"
    );

    let xvfb = Xvfb::start(WIDTH, HEIGHT).map_err(|e| e.to_string())?;
    let observer = X11Observer::open(xvfb.display()).map_err(|e| e.to_string())?;
    observer.set_keysym_lookup(false);
    let display = xvfb.display().to_owned();
    let injector = InjectorThread::spawn(DEFAULT_QUEUE_CAPACITY, move || {
        EnigoInjector::connect(Some(&display))
    })
    .map_err(|e| e.to_string())?;
    let handle = injector.handle();
    let input = PuppetInput::new(
        SessionConfig::new(ScreenArea::at_origin(WIDTH, HEIGHT)),
        handle.clone(),
    );
    let mut bench = Bench {
        input,
        handle,
        observer,
        seq: 0,
    };

    latency(&mut bench, events)?;
    sustained_keys(&mut bench, seconds)?;
    pointer_flood(&mut bench, seconds)?;
    text_rate(&mut bench, 100)?;
    let failed = bench.handle.stats().failed;
    if failed > 0 {
        return Err(format!("{failed} injections failed"));
    }
    drop(bench);
    drop(injector);
    drop(xvfb);
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("input bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}
