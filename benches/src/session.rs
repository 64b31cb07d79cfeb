//! One measured session between an in-process puppet (synthetic desktop, embedded signaling
//! server, its own tokio runtime) and an in-process headless controller (its own runtime; a
//! sink that converts each picture to RGBA as the window would). Shared by the `e2e` and
//! `turn` benchmarks, so both measure glass-to-glass, fps, bitrate and CPU the same way.
//!
//! Use: [`Rig::start`] a session, [`Rig::start_workload`], warm up, [`Rig::begin`] a window,
//! drive it (or just wait), [`Rig::end`] it for [`Figures`], then [`Rig::close`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtcdesk_controller::{
    Controller, ControllerConfig, ControllerEvent, DecodedPicture, FrameSink, InputSender,
};
use rtcdesk_media::{find_pointer, SyntheticDesktop};
use rtcdesk_peer::SelectedPair;
use rtcdesk_puppet::{Puppet, PuppetConfig};

/// What the synthetic desktop's user does while a case runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Workload {
    /// A character typed every 80 ms (12.5 per second), a new line every 60.
    Typing,
    /// The text window scrolls one line every 16.7 ms (60 per second).
    Scrolling,
}

impl Workload {
    /// The name tables and options use.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Typing => "typing",
            Workload::Scrolling => "scrolling",
        }
    }
}

/// A pointer probe in flight: where the marker should appear and when the move was sent.
#[derive(Debug, Default)]
pub struct Probe {
    /// Where the desktop's pointer marker should show up.
    pub target: Option<(u32, u32)>,
    /// When the controller sent the move.
    pub sent_at: Option<Instant>,
    /// When a decoded picture first showed the marker there.
    pub seen_at: Option<Instant>,
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
    first_picture: Arc<OnceLock<Instant>>,
    last_frame_number: Option<u32>,
}

impl FrameSink for BenchSink {
    fn frame(&mut self, picture: &DecodedPicture<'_>) {
        picture.to_rgba(&mut self.rgba);
        let handed_over = rtcdesk_media::frame::unix_micros_now();
        let now = Instant::now();
        let _ = self.first_picture.set(now);
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

/// The user name and ticks of one `/proc/…/stat` line: (name, utime + stime).
/// A further viewer's window: converts each picture to RGBA, as a window would, and keeps
/// nothing.
struct ViewerSink {
    rgba: Vec<u8>,
}

impl FrameSink for ViewerSink {
    fn frame(&mut self, picture: &DecodedPicture<'_>) {
        picture.to_rgba(&mut self.rgba);
    }
}

fn stat_ticks(stat: &str) -> Option<(&str, u64)> {
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = &stat[open + 1..close];
    let fields: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    // After the name: state is field 3 (index 0 here); utime 14, stime 15 (indices 11, 12).
    let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    Some((name, field(11)? + field(12)?))
}

/// CPU time of another process (utime + stime), in clock ticks; `None` once it is gone.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_ticks(&stat).map(|(_, ticks)| ticks)
}

/// CPU time per thread group of this process, in clock ticks.
fn cpu_by_group() -> HashMap<&'static str, u64> {
    let mut groups = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return groups;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let Some((name, ticks)) = stat_ticks(&stat) else {
            continue;
        };
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

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Percentile `p` (0..=1) of sorted durations, in ms with one decimal; "—" when empty.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> String {
    match percentile(sorted, p) {
        Some(value) => ms_text(value),
        None => "—".into(),
    }
}

/// Percentile `p` (0..=1) of sorted durations; `None` when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    let index = ((sorted.len().checked_sub(1)? as f64) * p).round() as usize;
    sorted.get(index).copied()
}

/// A duration in ms with one decimal, for tables.
pub fn ms_text(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Where a measuring window started: wall clock, CPU per thread group, and the watched process.
pub struct Window {
    started: Instant,
    cpu: HashMap<&'static str, u64>,
    other_process: Option<(u32, u64)>,
}

/// What one measuring window saw.
pub struct Figures {
    /// Glass-to-glass per stamped picture, sorted.
    pub glass: Vec<Duration>,
    /// Glass-to-glass p50 split: capture → received, → decoded, → RGBA.
    pub split: (Duration, Duration, Duration),
    /// Inside the puppet, p50 per encoded frame: capture → handed to the encoder (waiting for
    /// the pacer and the previous encode, converting), and the encode itself.
    pub puppet_split: (Duration, Duration),
    /// Input-to-photon per probe seen, sorted.
    pub photon: Vec<Duration>,
    /// Decoded pictures per second.
    pub fps: f64,
    /// Frames the puppet encoded in the window.
    pub frames_encoded: usize,
    /// Mean received bitrate over the window's stats intervals, in Mbit/s.
    pub mbps: f64,
    /// CPU in cores (1.00 = one core busy): puppet, controller, the bench's own threads.
    pub puppet_cores: f64,
    /// See `puppet_cores`.
    pub controller_cores: f64,
    /// See `puppet_cores`.
    pub other_cores: f64,
    /// CPU of the process given to [`Rig::begin`], in cores.
    pub process_cores: Option<f64>,
}

/// A running session: both programs, their runtimes, and what the sink and the stats record.
pub struct Rig {
    puppet_rt: tokio::runtime::Runtime,
    controller_rt: tokio::runtime::Runtime,
    puppet: Puppet,
    controller: Controller,
    /// The puppet's synthetic desktop, for workloads.
    pub desktop: SyntheticDesktop,
    /// Sends input to the puppet as the controller.
    pub input: InputSender,
    /// The pointer probe the sink checks each picture against.
    pub probe: Arc<Mutex<Probe>>,
    measuring: Arc<AtomicBool>,
    measured: Arc<Mutex<Measured>>,
    bitrates: Arc<Mutex<Vec<u64>>>,
    selected_pair: Arc<Mutex<Option<SelectedPair>>>,
    first_picture: Arc<OnceLock<Instant>>,
    connect_started: Instant,
    connected_at: Instant,
    workload: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    /// Further controllers watching the same puppet (see [`Rig::add_viewer`]).
    viewers: Vec<Controller>,
    /// The controller's file events, with when they came.
    file_events: Arc<Mutex<Vec<(Instant, ControllerEvent)>>>,
    /// The last input sequence number sent: the puppet drops pointer moves older than the
    /// newest it has seen, so every probe of the session needs a higher one.
    input_seq: std::sync::atomic::AtomicU32,
}

impl Rig {
    /// Starts the puppet with `puppet_config` (60 fps at most) and connects a controller to it
    /// on loopback, after `adjust` has had its say on the controller's configuration. Returns
    /// once the controller's connect call returned (the peer connection is up).
    pub fn start(
        mut puppet_config: PuppetConfig,
        adjust: impl FnOnce(&mut ControllerConfig),
    ) -> anyhow::Result<Rig> {
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
        puppet_config.fps = 60;
        // Started on a runtime worker, so threads the codecs create unnamed inherit `pup-net`.
        let puppet: Puppet =
            puppet_rt.block_on(puppet_rt.spawn(Puppet::start(puppet_config)))??;
        let desktop = puppet
            .synthetic_desktop()
            .ok_or_else(|| anyhow::anyhow!("no synthetic desktop"))?;

        let measuring = Arc::new(AtomicBool::new(false));
        let probe = Arc::new(Mutex::new(Probe::default()));
        let measured = Arc::new(Mutex::new(Measured::default()));
        let first_picture = Arc::new(OnceLock::new());
        let sink = BenchSink {
            rgba: Vec::new(),
            measuring: measuring.clone(),
            probe: probe.clone(),
            measured: measured.clone(),
            first_picture: first_picture.clone(),
            last_frame_number: None,
        };
        let mut controller_config =
            ControllerConfig::new(puppet.signal_url(), puppet.control_code());
        controller_config.name = "bench".into();
        controller_config.bind = Some("127.0.0.1:0".parse()?);
        adjust(&mut controller_config);
        let connect_started = Instant::now();
        let mut controller = controller_rt.block_on(
            controller_rt.spawn(Controller::connect(controller_config, Box::new(sink))),
        )??;
        let connected_at = Instant::now();
        let input = controller.input_sender();
        let mut events = controller.take_events();
        let bitrates = Arc::new(Mutex::new(Vec::<u64>::new()));
        let selected_pair = Arc::new(Mutex::new(None));
        let file_events = Arc::new(Mutex::new(Vec::new()));
        {
            let file_events = file_events.clone();
            let bitrates = bitrates.clone();
            let selected_pair = selected_pair.clone();
            let measuring = measuring.clone();
            controller_rt.spawn(async move {
                while let Some(event) = events.recv().await {
                    if matches!(
                        event,
                        ControllerEvent::File(_)
                            | ControllerEvent::FileOffered(_)
                            | ControllerEvent::FileNotSent { .. }
                    ) {
                        file_events
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((Instant::now(), event));
                        continue;
                    }
                    if let ControllerEvent::Stats(stats) = event {
                        if stats.peer.selected_pair.is_some() {
                            *selected_pair.lock().unwrap_or_else(|e| e.into_inner()) =
                                stats.peer.selected_pair;
                        }
                        if measuring.load(Ordering::Relaxed) {
                            bitrates
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(stats.receive_bitrate_bps);
                        }
                    }
                }
            });
        }
        Ok(Rig {
            puppet_rt,
            controller_rt,
            puppet,
            controller,
            desktop,
            input,
            probe,
            measuring,
            measured,
            bitrates,
            selected_pair,
            first_picture,
            connect_started,
            connected_at,
            workload: None,
            viewers: Vec::new(),
            file_events,
            input_seq: std::sync::atomic::AtomicU32::new(0),
        })
    }

    /// Connects one more controller to the same puppet, on the controller's runtime: a
    /// second engineer watching. Its pictures are converted to RGBA and dropped; they are not
    /// measured. Returns once it is connected.
    pub fn add_viewer(&mut self) -> anyhow::Result<()> {
        let mut config =
            ControllerConfig::new(self.puppet.signal_url(), self.puppet.control_code());
        config.name = format!("viewer {}", self.viewers.len() + 2);
        config.bind = Some("127.0.0.1:0".parse()?);
        let sink = ViewerSink { rgba: Vec::new() };
        let controller = self.controller_rt.block_on(
            self.controller_rt
                .spawn(Controller::connect(config, Box::new(sink))),
        )??;
        self.viewers.push(controller);
        Ok(())
    }

    /// Starts `kind` on its own thread, ticking like a person or an application would, until
    /// [`Rig::close`].
    pub fn start_workload(&mut self, kind: Workload) -> anyhow::Result<()> {
        let stop = Arc::new(AtomicBool::new(false));
        let desktop = self.desktop.clone();
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("workload".into())
                .spawn(move || run_workload(&desktop, kind, &stop))?
        };
        self.workload = Some((stop, thread));
        Ok(())
    }

    /// Sends files to the puppet and answers its offers, as the controller.
    pub fn files(&self) -> rtcdesk_controller::FileCommands {
        self.controller.files()
    }

    /// The controller's file events so far (offered, accepted, completed, ended), with when
    /// each came.
    pub fn file_events(&self) -> Vec<(Instant, ControllerEvent)> {
        self.file_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// From the controller's connect call until it returned with the connection up.
    pub fn time_to_connected(&self) -> Duration {
        self.connected_at - self.connect_started
    }

    /// From the controller's connect call until the first decoded picture; `None` before one.
    pub fn time_to_first_picture(&self) -> Option<Duration> {
        self.first_picture
            .get()
            .map(|at| at.saturating_duration_since(self.connect_started))
    }

    /// The path the controller's side of the session uses, from its last stats.
    pub fn selected_pair(&self) -> Option<SelectedPair> {
        *self.selected_pair.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a measuring window; only pictures, stats and frames from now on count. CPU of
    /// process `other_pid` (e.g. a TURN server) is measured too when given.
    pub fn begin(&self, other_pid: Option<u32>) -> Window {
        let window = Window {
            started: Instant::now(),
            cpu: cpu_by_group(),
            other_process: other_pid.and_then(|pid| Some((pid, process_ticks(pid)?))),
        };
        let _ = self.puppet.take_frame_timings();
        self.measuring.store(true, Ordering::Relaxed);
        window
    }

    /// Ends the window and works out its figures.
    pub fn end(&self, window: Window) -> Figures {
        self.measuring.store(false, Ordering::Relaxed);
        let timings = self.puppet.take_frame_timings();
        let wall = window.started.elapsed().as_secs_f64();
        let cpu_end = cpu_by_group();
        let ticks = ticks_per_second();
        let cores = |group: &str| {
            (cpu_end.get(group).copied().unwrap_or(0) as f64
                - window.cpu.get(group).copied().unwrap_or(0) as f64)
                / ticks
                / wall
        };
        let process_cores = window.other_process.and_then(|(pid, start)| {
            let end = process_ticks(pid)?;
            Some(end.saturating_sub(start) as f64 / ticks / wall)
        });
        let measured =
            std::mem::take(&mut *self.measured.lock().unwrap_or_else(|e| e.into_inner()));
        let bitrates =
            std::mem::take(&mut *self.bitrates.lock().unwrap_or_else(|e| e.into_inner()));
        let mut glass = measured.glass;
        glass.sort();
        let mut photon = measured.photon;
        photon.sort();
        Figures {
            split: (
                median(measured.split.iter().map(|s| s.0).collect()),
                median(measured.split.iter().map(|s| s.1).collect()),
                median(measured.split.iter().map(|s| s.2).collect()),
            ),
            puppet_split: (
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
            ),
            glass,
            photon,
            fps: measured.pictures as f64 / wall,
            frames_encoded: timings.len(),
            mbps: if bitrates.is_empty() {
                0.0
            } else {
                bitrates.iter().sum::<u64>() as f64 / bitrates.len() as f64 / 1e6
            },
            puppet_cores: cores("puppet"),
            controller_cores: cores("controller"),
            other_cores: cores("bench"),
            process_cores,
        }
    }

    /// Stops the workload, closes the session and shuts both programs down.
    pub fn close(mut self) {
        if let Some((stop, thread)) = self.workload.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = thread.join();
        }
        for viewer in std::mem::take(&mut self.viewers) {
            self.controller_rt.block_on(viewer.close());
        }
        self.controller_rt.block_on(self.controller.close());
        self.puppet_rt.block_on(self.puppet.shutdown());
        self.puppet_rt.shutdown_timeout(Duration::from_secs(2));
        self.controller_rt.shutdown_timeout(Duration::from_secs(2));
    }
}

/// Sends pointer-move probes (one in flight; the next 50 ms after the last was seen, or after
/// 1 s without) to a desktop of `size` until `keep_going` says stop; returns how many were sent.
/// Input-to-photon comes out of the window's [`Figures::photon`].
pub fn send_probes(
    rig: &Rig,
    size: (u32, u32),
    mut keep_going: impl FnMut() -> bool,
) -> anyhow::Result<u64> {
    use rtcdesk_proto::input::{InputEvent, InputMessage};
    let positions = [(0.3, 0.45), (0.7, 0.55), (0.45, 0.7), (0.6, 0.35)];
    let mut probes_sent = 0u64;
    let mut next_probe = Instant::now();
    while keep_going() {
        let ready = {
            let probe = rig.probe.lock().unwrap_or_else(|e| e.into_inner());
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
                (u32::from(x) * (size.0 - 1) + 32767) / 65535,
                (u32::from(y) * (size.1 - 1) + 32767) / 65535,
            );
            *rig.probe.lock().unwrap_or_else(|e| e.into_inner()) = Probe {
                target: Some(target),
                sent_at: Some(Instant::now()),
                seen_at: None,
            };
            let seq = rig.input_seq.fetch_add(1, Ordering::Relaxed) + 1;
            let message = InputMessage {
                seq,
                timestamp_us: rtcdesk_media::frame::unix_micros_now(),
                event: InputEvent::PointerMove { x, y },
            };
            probes_sent += 1;
            rig.input.try_send(&message)?;
            next_probe = Instant::now() + Duration::from_millis(20);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(probes_sent)
}

fn run_workload(desktop: &SyntheticDesktop, kind: Workload, stop: &AtomicBool) {
    let period = match kind {
        Workload::Typing => Duration::from_millis(80),
        Workload::Scrolling => Duration::from_micros(16_667),
    };
    let mut typed = 0u64;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match kind {
            Workload::Typing => {
                typed += 1;
                if typed.is_multiple_of(60) {
                    desktop.key("Enter", true);
                    desktop.key("Enter", false);
                } else {
                    desktop.text(if typed.is_multiple_of(6) { " " } else { "x" });
                }
            }
            Workload::Scrolling => desktop.scroll(1),
        }
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_cpu_ticks_even_with_spaces_in_the_name() {
        let line = "42 (aom enc worker) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
        assert_eq!(stat_ticks(line), Some(("aom enc worker", 300)));
    }

    #[test]
    fn percentiles_of_nothing_are_a_dash() {
        assert_eq!(percentile_ms(&[], 0.5), "—");
        let sorted = [1, 2, 3].map(Duration::from_millis);
        assert_eq!(percentile_ms(&sorted, 0.5), "2.0");
    }
}
