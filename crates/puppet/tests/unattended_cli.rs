//! The `puppet` binary's unattended access as its owner uses it: `set-password`, `--unattended`
//! through a separate signaling server, `status` after a wrong password, `unlock`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use rtcdesk_controller::{ConnectError, Controller, ControllerConfig, DecodedPicture, FrameSink};
use rtcdesk_pake::{DeviceKey, PakeError};
use rtcdesk_proto::signal::ControlCode;
use rtcdesk_signal::server::{Server, ServerConfig};

const DEADLINE: Duration = Duration::from_secs(10);
const PASSWORD: &str = "correct horse battery staple";

/// Runs `puppet ARGS` with the config folder `dir` and `stdin` as its standard input.
fn puppet(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_puppet"))
        .args(args)
        .env("RTCDESK_CONFIG_DIR", dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the puppet binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The puppet process, killed when the test ends however it ends.
struct PuppetProcess(Child);

impl Drop for PuppetProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Discard;

impl FrameSink for Discard {
    fn frame(&mut self, _picture: &DecodedPicture<'_>) {}
}

async fn dial(url: &str, id: ControlCode, password: &str) -> Result<Controller, ConnectError> {
    let mut config = ControllerConfig::for_device(url, id, DeviceKey::derive(id, password));
    config.bind = Some("127.0.0.1:0".parse().unwrap());
    config.decoder_threads = 1;
    Controller::connect(config, Box::new(Discard)).await
}

#[test]
fn set_password_refuses_a_short_one_and_stores_only_a_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rtcdesk");
    let out = puppet(&config, &["set-password"], "short\n");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("at least 8 characters"),
        "{}",
        text(&out)
    );
    assert!(
        !config.join("device.json").exists(),
        "nothing made for a refused password"
    );

    let out = puppet(&config, &["set-password"], &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Device ID:"), "{}", text(&out));
    let stored = std::fs::read_to_string(config.join("device-password")).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("horse"));
    for name in ["device.json", "device-password"] {
        let mode = std::fs::metadata(config.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
    }
    let out = puppet(&config, &["status", "--quiet"], "");
    assert!(out.status.success());
    assert_eq!(text(&out), "", "nothing to tell");
}

#[test]
fn unattended_without_a_password_says_how_to_set_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = puppet(
        dir.path(),
        &[
            "--unattended",
            "--source",
            "synthetic",
            "--listen",
            "127.0.0.1:0",
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("puppet set-password"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_sets_a_password_runs_unattended_and_sees_wrong_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rtcdesk");
    let out = puppet(&config, &["set-password"], &format!("{PASSWORD}\n"));
    assert!(out.status.success(), "{}", text(&out));
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let url = server.url();
    let mut child = Command::new(env!("CARGO_BIN_EXE_puppet"))
        .args(["--unattended", "--signal", &url, "--source", "synthetic"])
        .args(["--synthetic-size", "320x180", "--fps", "10"])
        .env("RTCDESK_CONFIG_DIR", &config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the puppet binary runs");
    let stdout = child.stdout.take().unwrap();
    let _process = PuppetProcess(child);
    // Every line the puppet prints, as it prints it.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut wait_line = async |what: &str| -> String {
        tokio::time::timeout(DEADLINE, async {
            loop {
                match lines.recv().await {
                    Some(line) if line.contains(what) => return line,
                    Some(_) => {}
                    None => panic!("the puppet stopped before printing {what:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {what:?} within {DEADLINE:?}"))
    };
    let line = wait_line("Device ID:").await;
    let digits: String = line["Device ID:".len()..]
        .chars()
        .take_while(|c| *c != '(')
        .collect();
    let id: ControlCode = digits.trim().parse().expect("a device ID");

    let error = dial(&url, id, "not the password").await.expect_err("wrong");
    assert!(
        matches!(error, ConnectError::NotVerified(PakeError::WrongCode)),
        "{error}"
    );
    // Printed once the count is on disk.
    wait_line("gave a wrong password").await;
    let out = puppet(&config, &["status"], "");
    assert!(
        text(&out).contains("1 wrong password for unattended access since you last looked"),
        "{}",
        text(&out)
    );
    let out = puppet(&config, &["status", "--quiet"], "");
    assert_eq!(text(&out), "", "seen now: {}", text(&out));
    let out = puppet(&config, &["unlock"], "");
    assert!(out.status.success());
    assert!(text(&out).contains("unlocked"), "{}", text(&out));
    // Unlocking also ends the backoff: the running puppet reads it at the next attempt.
    let controller = dial(&url, id, PASSWORD)
        .await
        .expect("the right password gets in");
    controller.close().await;
}
