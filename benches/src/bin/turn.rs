//! `cargo xtask bench turn`: what a TURN relay costs a session, measured on loopback.
//!
//! Starts coturn (`turnserver`) on its own loopback ports with a static user and password
//! (killed when the benchmark ends), then runs one fresh session per case between an in-process
//! puppet and an in-process headless controller (the `e2e` benchmark's rig: 1280×720 synthetic
//! desktop scrolling 60 lines per second, libaom):
//!
//! - **direct**: host candidates only;
//! - **with STUN**: both sides also gather server-reflexive candidates from coturn;
//! - **relay UDP**: the controller is relay-only through coturn over UDP;
//! - **relay TCP**: the same over a TCP connection to coturn.
//!
//! For each: the controller's selected pair (local → remote candidate kinds; a relay case whose
//! pair is not relayed is reported invalid, not measured as if it were), time from the
//! controller's connect call to connected and to the first decoded picture, delivered fps,
//! received bitrate (the throughput the session needed), glass-to-glass p50/p95/p99 (one-way,
//! on one clock: the desktop stamps capture time into the picture), the added one-way latency
//! (this case's glass-to-glass p50 minus the direct case's, same run), and CPU of puppet,
//! controller and coturn. No pass/fail: the figures are printed for comparison.
//!
//! Options: `--seconds S` measured per case (default 8; 2 s warm-up before),
//! `--cases direct,stun,relay-udp,relay-tcp`.

#[path = "../../../crates/stun/tests/common/coturn.rs"]
mod coturn;

use std::net::SocketAddr;
use std::time::Duration;

use coturn::{Coturn, TurnOptions};
use rtcdesk_benches::session::{ms_text, percentile, percentile_ms, Figures, Rig, Workload};
use rtcdesk_media::EncoderKind;
use rtcdesk_peer::{CandidateKind, SelectedPair, TurnServer};
use rtcdesk_puppet::{PuppetConfig, Source};

const COMMAND: &str =
    "cargo xtask bench turn  (= cargo run --profile bench -p rtcdesk-benches --bin turn)";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const TURN_USER: &str = "bench";
const TURN_PASSWORD: &str = "bench-password";

/// How the session's two ends may reach each other.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Path {
    Direct,
    Stun,
    RelayUdp,
    RelayTcp,
}

impl Path {
    const ALL: [Path; 4] = [Path::Direct, Path::Stun, Path::RelayUdp, Path::RelayTcp];

    fn name(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Stun => "stun",
            Path::RelayUdp => "relay-udp",
            Path::RelayTcp => "relay-tcp",
        }
    }

    fn is_relay(self) -> bool {
        matches!(self, Path::RelayUdp | Path::RelayTcp)
    }

    /// The ICE servers this path gives the controller (and, for STUN, the puppet too).
    fn ice_servers(self, turn: &Coturn) -> anyhow::Result<IceServers> {
        let relay = |transport: &str| -> anyhow::Result<Vec<TurnServer>> {
            let url = format!("turn:{}?transport={transport}", turn.addr);
            Ok(vec![
                TurnServer::resolve(&url, TURN_USER, TURN_PASSWORD).map_err(anyhow::Error::msg)?
            ])
        };
        Ok(match self {
            Path::Direct => IceServers::default(),
            Path::Stun => IceServers {
                stun: vec![turn.addr],
                ..IceServers::default()
            },
            Path::RelayUdp => IceServers {
                turn: relay("udp")?,
                ..IceServers::default()
            },
            Path::RelayTcp => IceServers {
                turn: relay("tcp")?,
                ..IceServers::default()
            },
        })
    }

    /// Whether `pair` is the path this case is about: relay cases must send through the
    /// relay, the others must not.
    fn accepts(self, pair: &SelectedPair) -> bool {
        (pair.local_kind == CandidateKind::Relayed) == self.is_relay()
    }
}

/// STUN servers for both sides; TURN servers for the controller, which is then relay-only.
#[derive(Default)]
struct IceServers {
    stun: Vec<SocketAddr>,
    turn: Vec<TurnServer>,
}

/// What one case measured.
struct Row {
    pair: Option<SelectedPair>,
    connected: Duration,
    first_picture: Option<Duration>,
    figures: Figures,
}

fn run_case(path: Path, turn: &Coturn, seconds: u64) -> anyhow::Result<Row> {
    let servers = path.ice_servers(turn)?;
    let mut puppet_config = PuppetConfig::loopback(Source::Synthetic {
        width: WIDTH,
        height: HEIGHT,
    });
    puppet_config.encoder = EncoderKind::Aom;
    puppet_config.stun_servers = servers.stun.clone();
    let mut rig = Rig::start(puppet_config, |controller| {
        controller.name = "turn bench".into();
        controller.stun_servers = servers.stun;
        controller.relay_only = !servers.turn.is_empty();
        controller.turn_servers = servers.turn;
    })?;
    rig.start_workload(Workload::Scrolling)?;
    // Warm up (keyframe, bandwidth estimate), then measure.
    std::thread::sleep(Duration::from_secs(2));
    let window = rig.begin(Some(turn.pid()));
    std::thread::sleep(Duration::from_secs(seconds));
    let figures = rig.end(window);
    let row = Row {
        pair: rig.selected_pair(),
        connected: rig.time_to_connected(),
        first_picture: rig.time_to_first_picture(),
        figures,
    };
    rig.close();
    Ok(row)
}

/// `local → remote` candidate kinds, as the controller sees its selected pair.
fn pair_text(pair: Option<&SelectedPair>) -> String {
    match pair {
        Some(pair) => format!("{} → {}", pair.local_kind, pair.remote_kind),
        None => "no path reported".into(),
    }
}

/// This case's glass-to-glass p50 minus the direct case's, in ms with a sign.
fn added_latency(row: &Row, direct_p50: Option<Duration>) -> String {
    match (percentile(&row.figures.glass, 0.5), direct_p50) {
        (Some(p50), Some(direct)) => {
            let delta = p50.as_secs_f64() - direct.as_secs_f64();
            format!("{:+.1}", delta * 1000.0)
        }
        _ => "—".into(),
    }
}

fn print_row(path: Path, row: &Row, direct_p50: Option<Duration>) {
    let valid = row.pair.as_ref().is_some_and(|pair| path.accepts(pair));
    let pair = pair_text(row.pair.as_ref());
    let pair = if valid {
        pair
    } else {
        format!("INVALID: {pair}")
    };
    let g = &row.figures;
    println!(
        "| {} | {pair} | {} | {} | {:.1} | {:.2} | {} / {} / {} | {} | {:.2} | {:.2} | {} |",
        path.name(),
        ms_text(row.connected),
        row.first_picture.map(ms_text).unwrap_or_else(|| "—".into()),
        g.fps,
        g.mbps,
        percentile_ms(&g.glass, 0.5),
        percentile_ms(&g.glass, 0.95),
        percentile_ms(&g.glass, 0.99),
        if path == Path::Direct {
            "(reference)".into()
        } else {
            added_latency(row, direct_p50)
        },
        g.puppet_cores,
        g.controller_cores,
        g.process_cores
            .map(|cores| format!("{cores:.2}"))
            .unwrap_or_else(|| "—".into()),
    );
}

fn parse_cases(text: &str) -> Option<Vec<Path>> {
    text.split(',')
        .map(|name| Path::ALL.into_iter().find(|p| p.name() == name.trim()))
        .collect()
}

fn main() -> anyhow::Result<()> {
    let mut seconds = 8u64;
    let mut cases = Path::ALL.to_vec();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        let ok = match arg.as_str() {
            "--seconds" => value.parse().map(|v| seconds = v).is_ok(),
            "--cases" => parse_cases(&value).map(|v| cases = v).is_some(),
            _ => false,
        };
        if !ok {
            eprintln!("usage: turn [--seconds S] [--cases direct,stun,relay-udp,relay-tcp]");
            std::process::exit(2);
        }
    }

    let turn = Coturn::start_turn(&TurnOptions::user(TURN_USER, TURN_PASSWORD));
    turn.wait_for_tcp();

    println!("# rtcdesk TURN benchmark (puppet + headless controller + coturn, loopback)");
    println!("machine: {}", rtcdesk_benches::machine());
    println!("command: {COMMAND}");
    println!(
        "coturn: turnserver on {} (UDP and TCP), relaying on 127.0.0.1; static user `{TURN_USER}`",
        turn.addr
    );
    println!(
        "per case: a fresh session, {WIDTH}×{HEIGHT} scrolling (60 lines/s), libaom, puppet at \
         most 60 fps; 2 s warm-up, {seconds} s measured; times in ms; CPU in cores"
    );
    println!(
        "path = the controller's selected pair, local → remote candidate kind; connected / first \
         picture = from the controller's connect call; added = glass-to-glass p50 minus direct's"
    );
    println!();
    println!(
        "| case | path | connected | first picture | fps | Mbit/s | glass-to-glass p50/p95/p99 | added one-way p50 | puppet CPU | controller CPU | coturn CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut direct_p50 = None;
    let mut stun_pair = None;
    for &path in &cases {
        match run_case(path, &turn, seconds) {
            Ok(row) => {
                if path == Path::Direct {
                    direct_p50 = percentile(&row.figures.glass, 0.5);
                }
                if path == Path::Stun {
                    stun_pair = row.pair;
                }
                print_row(path, &row, direct_p50);
            }
            Err(error) => println!("| {} | failed: {error:#} |||||||||", path.name()),
        }
    }
    println!();
    if let Some(pair) = stun_pair {
        if pair.remote_kind != CandidateKind::ServerReflexive {
            println!(
                "note: with STUN the session still ran {}: on loopback coturn reflects \
                 127.0.0.1:PORT, the host candidate's own address, so srflx adds no new path here.",
                pair_text(Some(&pair))
            );
        }
    }
    println!(
        "note: relay cases relay only the controller's side (relay-only controller, puppet on \
         host candidates), so each datagram crosses coturn once; the direct row is the reference \
         measured in the same run."
    );
    Ok(())
}
