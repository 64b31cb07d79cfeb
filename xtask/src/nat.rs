//! `cargo xtask nat`: the puppet and the controller connect across simulated NATs, one cell
//! per kind of network, with the real programs and a real TURN server (coturn). See NAT.md.

mod lab;
mod procs;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lab::{Lab, Router};
use procs::Proc;

/// How long one cell may take, from building its namespaces to the controller's exit.
const CELL_TIMEOUT: Duration = Duration::from_secs(40);
/// How many decoded pictures the controller must save for a cell to pass: one, because the
/// synthetic desktop stands still and the puppet sends no new frame while nothing changes.
const FRAMES: u32 = 1;
/// The TURN server's shared secret; the signaling server derives every client's credentials.
const TURN_SECRET: &str = "nat-lab-secret";
const SIGNAL_PORT: u16 = 8443;
const TURN_PORT: u16 = 3478;

/// One kind of network between the puppet and the controller.
struct Cell {
    name: &'static str,
    puppet: Router,
    controller: Router,
    relay_only: bool,
}

const CELLS: &[Cell] = &[
    Cell {
        name: "no NAT",
        puppet: Router::Open,
        controller: Router::Open,
        relay_only: false,
    },
    Cell {
        name: "cone/cone",
        puppet: Router::Cone,
        controller: Router::Cone,
        relay_only: false,
    },
    Cell {
        name: "cone/symmetric",
        puppet: Router::Cone,
        controller: Router::Symmetric,
        relay_only: false,
    },
    Cell {
        name: "symmetric/symmetric",
        puppet: Router::Symmetric,
        controller: Router::Symmetric,
        relay_only: false,
    },
    Cell {
        name: "UDP blocked (TURN/TCP)",
        puppet: Router::Cone,
        controller: Router::ConeNoUdp,
        relay_only: false,
    },
    Cell {
        name: "relay-only",
        puppet: Router::Cone,
        controller: Router::Cone,
        relay_only: true,
    },
];

/// What one cell measured.
struct Outcome {
    pair: String,
    first_picture: String,
    failure: Option<(String, Vec<String>)>,
}

/// The entry point: builds the programs, runs every cell, prints the table; an error when
/// any cell failed (or when not run as root, which namespaces need).
pub fn nat(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("usage: cargo xtask nat [CELL..]\n\nRuns every NAT cell, or the named ones (as root); see xtask/NAT.md.");
        return Ok(());
    }
    let cells: Vec<&Cell> = CELLS
        .iter()
        .filter(|cell| args.is_empty() || args.iter().any(|a| a == cell.name))
        .collect();
    if cells.is_empty() {
        let names: Vec<&str> = CELLS.iter().map(|c| c.name).collect();
        return Err(format!("no such cell; cells: {}", names.join(", ")));
    }
    if !crate::packages::is_root() {
        return Err(
            "nat needs root (it creates network namespaces): run it as root, e.g. \
             `sudo -E cargo xtask nat`"
                .into(),
        );
    }
    crate::build_programs()?;
    let bins = target_dir().join("debug");
    lab::remove_leftovers()?;
    let out_root = std::env::temp_dir().join(format!("rtcdesk-nat-{}", std::process::id()));
    let mut rows = Vec::new();
    for cell in cells {
        println!("==> nat: {}", cell.name);
        let started = Instant::now();
        let out = out_root.join(cell.name.replace(['/', ' ', '(', ')'], "_"));
        let outcome = run_cell(cell, &bins, &out);
        if outcome.failure.is_some() {
            println!("    full output of its programs: {}", out.display());
        }
        println!(
            "<== nat: {}: {:.1} s",
            cell.name,
            started.elapsed().as_secs_f64()
        );
        rows.push((cell.name, outcome));
    }
    print_table(&rows);
    let failed = rows.iter().filter(|(_, o)| o.failure.is_some()).count();
    if failed == 0 {
        let _ = std::fs::remove_dir_all(&out_root);
        Ok(())
    } else {
        Err(format!("nat: {failed} of {} cells failed", rows.len()))
    }
}

/// Builds a cell's namespaces, starts the servers, the puppet and the controller, and judges
/// the controller's exit and pictures. The namespaces go when this returns.
fn run_cell(cell: &Cell, bins: &Path, out: &Path) -> Outcome {
    let deadline = Instant::now() + CELL_TIMEOUT;
    let lab = match Lab::build(cell.puppet, cell.controller) {
        Ok(lab) => lab,
        Err(reason) => {
            return Outcome {
                pair: "?".into(),
                first_picture: "?".into(),
                failure: Some((reason, Vec::new())),
            }
        }
    };
    let mut procs: Vec<Proc> = Vec::new();
    let result = drive(cell, bins, out, deadline, &mut procs);
    let outcome = outcome(result, &mut procs);
    for proc in &mut procs {
        proc.save_log(out);
    }
    // Programs before namespaces: they end cleanly, then the lab removes what is left.
    drop(procs);
    drop(lab);
    outcome
}

/// The row for a cell: its figures, or why it failed with the last lines of every program.
fn outcome(result: Result<(String, String), String>, procs: &mut [Proc]) -> Outcome {
    match result {
        Ok((pair, first_picture)) => Outcome {
            pair,
            first_picture,
            failure: None,
        },
        Err(reason) => {
            let tail = procs.iter_mut().flat_map(|p| p.tail(12)).collect();
            let (pair, first_picture) = procs
                .iter()
                .find(|p| p.seen.iter().any(|l| l.starts_with("controller:")))
                .map(|p| parse_controller(&p.seen))
                .unwrap_or_else(|| ("?".into(), "?".into()));
            Outcome {
                pair,
                first_picture,
                failure: Some((reason, tail)),
            }
        }
    }
}

/// Starts everything in a built lab and waits for the controller; returns the pair and the
/// time to the first picture as the controller printed them.
fn drive(
    cell: &Cell,
    bins: &Path,
    out: &Path,
    deadline: Instant,
    procs: &mut Vec<Proc>,
) -> Result<(String, String), String> {
    let ip = lab::SERVICE_IP;
    let mut coturn = Proc::spawn(
        "turnserver",
        lab::INTERNET,
        Path::new("turnserver"),
        &coturn_args(),
    )?;
    let coturn_ready = coturn.wait_for_line(
        |line| line.contains("TCP listener opened on") && line.contains(ip),
        "TCP listener",
        deadline,
    );
    procs.push(coturn);
    coturn_ready?;
    let signal_args: Vec<String> = vec![
        format!("--listen={ip}:{SIGNAL_PORT}"),
        format!("--stun={ip}:{TURN_PORT}"),
        format!("--turn=turn:{ip}:{TURN_PORT}?transport=udp"),
        format!("--turn=turn:{ip}:{TURN_PORT}?transport=tcp"),
        format!("--turn-secret={TURN_SECRET}"),
    ];
    let mut signal = Proc::spawn(
        "signal",
        lab::INTERNET,
        &bins.join("rtcdesk-signal"),
        &signal_args,
    )?;
    let signal_ready = signal.wait_for_line(
        |line| line.starts_with("listening on"),
        "`listening on` line",
        deadline,
    );
    procs.push(signal);
    signal_ready?;
    let url = format!("ws://{ip}:{SIGNAL_PORT}/");
    let puppet_args: Vec<String> = vec![
        format!("--signal={url}"),
        "--source=synthetic".into(),
        "--synthetic-size=640x360".into(),
        "--accept-all".into(),
        "--name=nat-lab".into(),
        "--no-window".into(),
    ];
    let mut puppet = Proc::spawn(
        "puppet",
        lab::PUPPET_HOST,
        &bins.join("puppet"),
        &puppet_args,
    )?;
    let code_line = puppet.wait_for_line(
        |line| control_code(line).is_some(),
        "control code",
        deadline,
    );
    procs.push(puppet);
    let code_line = code_line?;
    let code: Vec<String> = control_code(&code_line)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let _ = std::fs::remove_dir_all(out);
    let mut controller_args = code;
    controller_args.extend([
        format!("--signal={url}"),
        "--headless".into(),
        format!("--out={}", out.display()),
        format!("--frames={FRAMES}"),
    ]);
    if cell.relay_only {
        controller_args.push("--relay-only".into());
    }
    let mut controller = Proc::spawn(
        "controller",
        lab::CONTROLLER_HOST,
        &bins.join("controller"),
        &controller_args,
    )?;
    let exit = controller.wait_exit(deadline);
    let parsed = parse_controller(&controller.seen);
    procs.push(controller);
    let status = exit?;
    if !status.success() {
        return Err(format!("controller exited with {status}"));
    }
    let pictures = std::fs::read_dir(out)
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
                .count()
        })
        .unwrap_or(0);
    if pictures < FRAMES as usize {
        return Err(format!("controller saved {pictures} of {FRAMES} pictures"));
    }
    Ok(parsed)
}

/// coturn on the service address, UDP and TCP, with TURN REST credentials from the shared
/// secret (the flags the coturn tests use, on the lab's address instead of loopback).
fn coturn_args() -> Vec<String> {
    let ip = lab::SERVICE_IP;
    [
        "-n".to_string(),
        // Verbose, for the `TCP listener opened on` line that says it is ready.
        "-v".into(),
        format!("--listening-ip={ip}"),
        format!("--relay-ip={ip}"),
        format!("--listening-port={TURN_PORT}"),
        "--min-port=49152".into(),
        "--max-port=49999".into(),
        "--use-auth-secret".into(),
        format!("--static-auth-secret={TURN_SECRET}"),
        "--realm=nat.rtcdesk.test".into(),
        "--fingerprint".into(),
        "--no-tls".into(),
        "--no-dtls".into(),
        "--no-cli".into(),
        "--log-file=stdout".into(),
        "--simple-log".into(),
        "--pidfile=/dev/null".into(),
        format!(
            "--userdb={}",
            std::env::temp_dir()
                .join(format!("rtcdesk-nat-turndb-{}", std::process::id()))
                .display()
        ),
    ]
    .into()
}

/// The digits of the puppet's `Control code: 123 456 789` line (or `New control code: …` when
/// it made a new one), none for any other line.
fn control_code(line: &str) -> Option<&str> {
    let code = line
        .strip_prefix("Control code:")
        .or_else(|| line.strip_prefix("New control code:"))?
        .trim();
    code.chars()
        .all(|c| c.is_ascii_digit() || c == ' ')
        .then_some(code)
        .filter(|code| !code.is_empty())
}

/// The pair (`local/remote` candidate kinds) and the milliseconds to the first picture from
/// the controller's `connected over …` and `first picture after …` lines; `?` when missing.
fn parse_controller(lines: &[String]) -> (String, String) {
    let pair = lines
        .iter()
        .find_map(|line| line.strip_prefix("controller: connected over "))
        .and_then(|rest| {
            let kind = |key: &str| {
                rest.split_whitespace()
                    .find_map(|word| word.strip_prefix(key))
                    .map(str::to_owned)
            };
            Some(format!("{}/{}", kind("local=")?, kind("remote=")?))
        })
        .unwrap_or_else(|| "?".into());
    let first = lines
        .iter()
        .find_map(|line| line.strip_prefix("controller: first picture after "))
        .and_then(|rest| rest.strip_suffix(" ms"))
        .map(str::to_owned)
        .unwrap_or_else(|| "?".into());
    (pair, first)
}

fn print_table(rows: &[(&str, Outcome)]) {
    println!();
    println!(
        "{:<24} {:<14} {:>16}  result",
        "cell", "pair (l/r)", "first picture ms"
    );
    for (name, outcome) in rows {
        let verdict = match &outcome.failure {
            None => "PASS".to_string(),
            Some((reason, _)) => format!("FAIL: {reason}"),
        };
        println!(
            "{name:<24} {:<14} {:>16}  {verdict}",
            outcome.pair, outcome.first_picture
        );
    }
    for (name, outcome) in rows {
        if let Some((_, tail)) = &outcome.failure {
            println!("\n{name}: last lines of each program:");
            for line in tail {
                println!("{line}");
            }
        }
    }
}

/// The target dir cargo builds into: `CARGO_TARGET_DIR` (relative to the workspace) or the
/// workspace's `target/`.
fn target_dir() -> PathBuf {
    let root = crate::workspace_root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_controllers_path_and_time_are_read_from_its_lines() {
        let lines = [
            "controller: connected".to_string(),
            "controller: connected over local=relay remote=srflx (1.2.3.4:5 -> 6.7.8.9:10)"
                .to_string(),
            "controller: first picture after 412 ms".to_string(),
        ];
        assert_eq!(
            parse_controller(&lines),
            ("relay/srflx".to_string(), "412".to_string())
        );
        assert_eq!(parse_controller(&[]), ("?".to_string(), "?".to_string()));
    }

    #[test]
    fn the_control_code_is_read_from_the_puppets_line() {
        assert_eq!(
            control_code("Control code: 112 435 747"),
            Some("112 435 747")
        );
        assert_eq!(
            control_code("New control code: 112435747"),
            Some("112435747")
        );
        assert_eq!(control_code("Control code: soon"), None);
        assert_eq!(control_code("Signaling:    ws://203.0.113.10:8443/"), None);
    }
}
