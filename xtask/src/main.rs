//! The project's task runner: `cargo xtask ci | deps | demo | nat | interop | fuzz | bench`.
//!
//! Nearly plain std on purpose: it must build in seconds on a fresh clone, before anything else
//! works (its only dependencies are rtcdesk-xvfb, for the demo's X server, and serde_json).

mod checks;
mod demo;
mod interop;
mod nat;
mod packages;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci                      what CI runs: system packages, fmt, which program links what, rust-version,
                          clippy, every test, the NAT matrix (as root), every fuzz target
                          briefly, the interop cells
  deps                    install the Debian packages the workspace needs (only those missing)
  demo [OPTIONS]          run a puppet and a controller window on this machine, drive some input,
                          and write screenshots and a stats summary to out/demo/ (demo --help)
  nat                     (as root) connect a puppet and a controller across simulated NATs in
                          network namespaces, one cell per kind of network; prints a table
                          (xtask/NAT.md)
  fuzz [TARGET] [--seconds N]
                          run one or every fuzz target under libFuzzer over its seed corpus (default 60 s each)
  interop [--save] [--only CELL]
                          headless Chromium and an aiortc controller against real puppets, coturn as
                          STUN/TURN; prints a table of checks (xtask/INTEROP.md)
  bench NAME [ARGS..]     run a benchmark from benches/ with optimisations; it prints its figures
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("deps") => packages::ensure_installed(),
        Some("demo") => demo::demo(&args[1..]),
        Some("nat") => nat::nat(&args[1..]),
        Some("fuzz") => fuzz_command(&args[1..]),
        Some("interop") => interop::interop(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown task `{other}`\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Everything CI checks, in the order that fails fastest.
fn ci() -> Result<(), String> {
    let started = Instant::now();
    packages::ensure_installed()?;
    step("cargo fmt", cargo().args(["fmt", "--all", "--", "--check"]))?;
    timed(
        "the puppet links no winit, the controller no enigo",
        checks::check_sides,
    )?;
    timed("rust-version", checks::check_rust_version)?;
    step(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    let test_summary = run_tests()?;
    timed("NAT matrix", || nat::nat(&[]))?;
    let fuzz_seconds = env::var("RTCDESK_CI_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    fuzz(&fuzz_targets()?, fuzz_seconds)?;
    timed("interop", || interop::interop(&[]))?;
    println!(
        "xtask ci: all checks passed in {:.0?}",
        Duration::from_secs(started.elapsed().as_secs())
    );
    // The test runner's summary, last, so whoever reads the end of the log sees it.
    println!("{test_summary}");
    Ok(())
}

/// Runs the whole test suite: nextest when the machine has it (one process per test, so tests
/// that own an X server or a port cannot disturb each other), `cargo test` otherwise. Returns the
/// runner's summary line; a failing test is an error carrying it.
fn run_tests() -> Result<String, String> {
    let has_nextest = cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    let mut command = cargo();
    if has_nextest {
        command.args([
            "nextest",
            "run",
            "--workspace",
            "--no-fail-fast",
            "--failure-output",
            "final",
        ]);
    } else {
        command.args(["test", "--workspace", "--no-fail-fast"]);
    }
    let (status, lines) = step_streaming("tests", &mut command)?;
    let summary = if has_nextest {
        lines
            .iter()
            .rev()
            .find(|line| line.trim_start().starts_with("Summary"))
            .cloned()
            .unwrap_or_else(|| "nextest printed no summary".to_string())
    } else {
        cargo_test_summary(&lines)
    };
    if status.success() {
        Ok(summary)
    } else {
        Err(format!("tests failed ({status}): {summary}"))
    }
}

/// Adds up the `test result:` lines of `cargo test` into one `N passed, N failed` line.
fn cargo_test_summary(lines: &[String]) -> String {
    let count = |line: &str, word: &str| -> u64 {
        line.split(';')
            .find_map(|part| part.trim().strip_suffix(word))
            .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let (mut passed, mut failed) = (0, 0);
    for line in lines.iter().filter(|l| l.starts_with("test result:")) {
        passed += count(line, "passed");
        failed += count(line, "failed");
    }
    format!("{passed} passed, {failed} failed")
}

fn fuzz_command(args: &[String]) -> Result<(), String> {
    let known = fuzz_targets()?;
    let mut seconds = 60;
    let mut targets: Vec<String> = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--seconds" {
            seconds = iter
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--seconds takes a whole number")?;
        } else if known.contains(arg) {
            targets.push(arg.clone());
        } else {
            return Err(format!(
                "unknown fuzz target `{arg}`; targets: {}",
                known.join(", ")
            ));
        }
    }
    if targets.is_empty() {
        targets = known;
    }
    fuzz(&targets, seconds)
}

/// The fuzz targets, as cargo-fuzz lists them: the `[[bin]]` entries of `fuzz/Cargo.toml`, the
/// one list (each has its seeds in `testdata/fuzz/<target>`; the fuzz crate's corpus test
/// checks both).
fn fuzz_targets() -> Result<Vec<String>, String> {
    ensure_cargo_fuzz()?;
    let output = cargo()
        .args(["fuzz", "list"])
        .output()
        .map_err(|e| format!("cargo fuzz list: could not start: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo fuzz list failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let targets: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        return Err("cargo fuzz list named no targets (fuzz/Cargo.toml's [[bin]] entries)".into());
    }
    Ok(targets)
}

/// Runs each target under libFuzzer for `seconds`, seeded from `testdata/fuzz/<target>`.
/// New inputs go to the git-ignored `fuzz/corpus/<target>`, never into the seeds.
fn fuzz(targets: &[String], seconds: u64) -> Result<(), String> {
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    for target in targets {
        let work_corpus = root.join("fuzz/corpus").join(target);
        std::fs::create_dir_all(&work_corpus)
            .map_err(|e| format!("creating {}: {e}", work_corpus.display()))?;
        let seeds = root.join("testdata/fuzz").join(target);
        let mut command = fuzz_cargo();
        command
            .current_dir(&root)
            // Without AddressSanitizer: every crate of ours forbids `unsafe`, so what the
            // targets find are panics, overflows and runaway allocations, which libFuzzer sees
            // without it; the instrumented build of the whole graph cost 5 min 41 s against
            // 4 min 05 s without (cold, 2 cores), on a CI budget of 45 minutes.
            .args([
                "fuzz",
                "run",
                "--sanitizer",
                "none",
                "--features",
                "libfuzzer",
            ])
            .arg(target.as_str())
            .arg(&work_corpus)
            .arg(&seeds)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-rss_limit_mb=2048",
                "-max_len=131072",
                "-print_final_stats=1",
            ]);
        step(&format!("fuzz {target} for {seconds} s"), &mut command)?;
    }
    Ok(())
}

/// cargo-fuzz needs nightly compiler flags: the nightly toolchain when installed, otherwise the
/// stable compiler with `RUSTC_BOOTSTRAP=1` (FACTS.md).
fn fuzz_cargo() -> Command {
    let has_nightly = Command::new("rustup")
        .args(["run", "nightly", "rustc", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if has_nightly {
        let mut command = Command::new("rustup");
        command.args(["run", "nightly", "cargo"]);
        command
    } else {
        let mut command = cargo();
        command.env("RUSTC_BOOTSTRAP", "1");
        command
    }
}

fn ensure_cargo_fuzz() -> Result<(), String> {
    let installed = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|out| out.status.success());
    if installed {
        return Ok(());
    }
    step(
        "cargo install cargo-fuzz",
        cargo().args(["install", "--locked", "cargo-fuzz", "--version", "0.13.2"]),
    )
}

fn bench(args: &[String]) -> Result<(), String> {
    let Some(name) = args.first() else {
        return Err("bench needs a NAME: a binary in benches/src/bin/".into());
    };
    step(
        &format!("bench {name}"),
        cargo()
            .current_dir(workspace_root())
            .args([
                "run",
                "--profile",
                "bench",
                "-p",
                "rtcdesk-benches",
                "--bin",
            ])
            .arg(name)
            .arg("--")
            .args(&args[1..]),
    )
}

/// Builds the puppet, controller and rtcdesk-signal binaries exactly as the test suite builds
/// them (`cargo test --workspace --no-run`), so after `cargo xtask ci`'s tests this costs
/// nothing. A `cargo build -p …` resolves features for those packages alone, without the
/// dev-dependencies' features, which rebuilt half the dependency tree (695 s in a clean CI).
pub fn build_programs() -> Result<(), String> {
    step(
        "build the programs (as the tests build them)",
        cargo().args(["test", "--workspace", "--no-run", "--quiet"]),
    )
}

/// Runs one step, echoing it and its duration; a non-zero exit is an error naming the step.
fn step(name: &str, command: &mut Command) -> Result<(), String> {
    println!("==> {name}");
    let started = Instant::now();
    let status = command
        .status()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    println!("<== {name}: {:.1} s", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed ({status})"))
    }
}

/// Runs a check done in this process, echoed and timed like a [`step`].
fn timed(name: &str, check: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    println!("==> {name}");
    let started = Instant::now();
    let result = check();
    println!("<== {name}: {:.1} s", started.elapsed().as_secs_f64());
    result.map_err(|e| format!("{name}: {e}"))
}

/// Like [`step`], but also keeps the lines the command printed (both streams, passed through
/// as they come) so the caller can pick out a summary.
fn step_streaming(
    name: &str,
    command: &mut Command,
) -> Result<(std::process::ExitStatus, Vec<String>), String> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    println!("==> {name}");
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{name}: could not start: {e}"))?;
    let (sender, receiver) = std::sync::mpsc::channel();
    let mut readers = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let sender = sender.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                println!("{line}");
                let _ = sender.send(line);
            }
        }));
    }
    if let Some(stderr) = child.stderr.take() {
        let sender = sender.clone();
        readers.push(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let _ = sender.send(line);
            }
        }));
    }
    drop(sender);
    let lines: Vec<String> = receiver.iter().collect();
    for reader in readers {
        let _ = reader.join();
    }
    let status = child
        .wait()
        .map_err(|e| format!("{name}: could not wait: {e}"))?;
    println!("<== {name}: {:.1} s", started.elapsed().as_secs_f64());
    Ok((status, lines))
}

fn cargo() -> Command {
    let mut command = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command.current_dir(workspace_root());
    command
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_results_add_up_into_one_line() {
        let lines = [
            "running 3 tests".to_string(),
            "test result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s".to_string(),
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out".to_string(),
        ];
        assert_eq!(cargo_test_summary(&lines), "5 passed, 1 failed");
    }
}
