//! End to end over loopback: an in-process puppet (synthetic desktop, libaom, embedded
//! signaling server) and the controller library or the real `controller` binary.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rtcdesk_controller::{ConnectError, Controller, ControllerEvent, EndReason};
use rtcdesk_media::{find_pointer, psnr_y, SyntheticDesktop};
use rtcdesk_proto::input::{InputEvent, InputMessage};
use rtcdesk_proto::ControlCode;
use rtcdesk_puppet::{AcceptPolicy, PuppetEvent};

fn message(seq: u32, event: InputEvent) -> InputMessage {
    InputMessage {
        seq,
        timestamp_us: rtcdesk_media::frame::unix_micros_now(),
        event,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_asks_the_puppets_user_and_then_connects() {
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let record = asked.clone();
    let mut puppet = start_puppet_with(move |config| {
        config.accept = AcceptPolicy::Callback(Arc::new(move |request| {
            record.lock().unwrap().push(request.from.clone());
            rtcdesk_puppet::Decision::Control
        }));
    })
    .await;
    let (controller, _pictures) = connect_controller(&puppet).await;

    assert_eq!(*asked.lock().unwrap(), vec!["e2e controller".to_owned()]);
    let started = wait_puppet_event(&mut puppet, "SessionStarted", |e| {
        matches!(e, PuppetEvent::SessionStarted { .. })
    })
    .await;
    let PuppetEvent::SessionStarted {
        session,
        name,
        view_only: false,
    } = started
    else {
        panic!("a controlling session: {started:?}")
    };
    assert_eq!(name, "e2e controller");
    assert_eq!(&session, controller.session());
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_arrives_decodes_and_matches_the_source() {
    let puppet = start_puppet().await;
    let desktop = puppet.synthetic_desktop().expect("synthetic source");
    let (controller, mut pictures) = connect_controller(&puppet).await;

    // The first picture is the desktop as it started: compare it with a reference rendering.
    let first = wait_picture(&mut pictures, "a stamp", |p| p.stamp.is_some()).await;
    let stamp = first.stamp.unwrap();
    let expected = reference(stamp, |_| {});
    let psnr = psnr_y(first.image.view(), expected.view());
    assert!(psnr >= 35.0, "PSNR {psnr:.1} dB against the source");

    // An animated desktop sends a stream of frames whose stamps count up.
    desktop.set_animation(true);
    let mut last = stamp.frame_number;
    for _ in 0..10 {
        let next = wait_picture(&mut pictures, "a newer stamp", |p| {
            p.stamp.is_some_and(|s| s.frame_number != last)
        })
        .await;
        let number = next.stamp.unwrap().frame_number;
        assert!(number > last, "frame {number} after frame {last}");
        last = number;
    }
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_pointer_moves_the_desktops_marker() {
    let puppet = start_puppet().await;
    let (controller, mut pictures) = connect_controller(&puppet).await;
    let _ = wait_picture(&mut pictures, "a first picture", |_| true).await;

    // A quarter across and three quarters down.
    let (x, y) = (16384u16, 49152u16);
    controller
        .send_input(&message(1, InputEvent::PointerMove { x, y }))
        .await
        .expect("sent");
    let want = (WIDTH / 4, HEIGHT * 3 / 4);
    // The wait fails the test if the marker never shows within 3 px of the target.
    wait_picture(&mut pictures, "the marker moved", |p| {
        find_pointer(p.image.view())
            .is_some_and(|(px, py)| px.abs_diff(want.0) <= 3 && py.abs_diff(want.1) <= 3)
    })
    .await;
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_text_shows_in_the_video() {
    let puppet = start_puppet().await;
    let desktop = puppet.synthetic_desktop().expect("synthetic source");
    let (controller, mut pictures) = connect_controller(&puppet).await;
    let _ = wait_picture(&mut pictures, "a first picture", |_| true).await;

    controller
        .send_input(&message(1, InputEvent::Text("hello rtcdesk".into())))
        .await
        .expect("sent");
    // The picture that shows the text is the one the desktop drew with it: compare with a
    // reference desktop that got the same text (an empty field would differ clearly).
    let empty_field = |stamp| reference(stamp, |_| {});
    let with_text = |stamp| reference(stamp, |d: &SyntheticDesktop| d.text("hello rtcdesk"));
    let seen = wait_picture(&mut pictures, "the typed text", |p| {
        let Some(stamp) = p.stamp else { return false };
        psnr_y(p.image.view(), with_text(stamp).view()) >= 35.0
    })
    .await;
    let stamp = seen.stamp.unwrap();
    let against_empty = psnr_y(seen.image.view(), empty_field(stamp).view());
    let against_text = psnr_y(seen.image.view(), with_text(stamp).view());
    assert!(
        against_text > against_empty + 3.0,
        "{against_text:.1} dB with the text, {against_empty:.1} dB without"
    );
    assert_eq!(desktop.typed_text(), "hello rtcdesk");
    controller.close().await;
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_reported_as_rejected() {
    let puppet = start_puppet_with(|config| {
        config.accept = AcceptPolicy::Callback(Arc::new(|_| false.into()));
    })
    .await;
    let (sink, _pictures) = channel_sink();
    let error = tokio::time::timeout(
        DEADLINE,
        Controller::connect(controller_config(&puppet), sink),
    )
    .await
    .expect("an answer in time")
    .expect_err("refused");
    assert!(matches!(error, ConnectError::Rejected { .. }), "{error}");
    assert_eq!(error.exit_code(), 4);
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_code_is_reported_as_such() {
    let puppet = start_puppet().await;
    let mut config = controller_config(&puppet);
    let other = (puppet.control_code().number() + 1) % ControlCode::SPACE;
    config.code = ControlCode::from_number(other).unwrap();
    let (sink, _pictures) = channel_sink();
    let error = tokio::time::timeout(DEADLINE, Controller::connect(config, sink))
        .await
        .expect("an answer in time")
        .expect_err("unknown code");
    assert!(matches!(error, ConnectError::UnknownCode(_)), "{error}");
    assert_eq!(error.exit_code(), 3);
    puppet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_signaling_server_is_reported() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = rtcdesk_controller::ControllerConfig::new(
        format!("ws://127.0.0.1:{port}/"),
        "123456789".parse().unwrap(),
    );
    let (sink, _pictures) = channel_sink();
    let error = Controller::connect(config, sink)
        .await
        .expect_err("nobody there");
    assert!(
        matches!(error, ConnectError::SignalUnreachable(_)),
        "{error}"
    );
    assert_eq!(error.exit_code(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_puppet_is_reported_within_ten_seconds() {
    let puppet = start_puppet().await;
    let (mut controller, _pictures) = connect_controller(&puppet).await;
    // Dropped without shutdown: no `leave`, its loop and embedded server stop abruptly.
    drop(puppet);
    let ended = tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(ControllerEvent::Ended(reason)) => return reason,
                Some(_) => {}
                None => panic!("events ended without Ended"),
            }
        }
    })
    .await
    .expect("the controller notices within 10 s");
    assert!(
        matches!(ended, EndReason::PuppetLeft | EndReason::ConnectionLost),
        "{ended:?}"
    );
    assert_eq!(ended.exit_code(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_controller_process_frees_its_session_within_ten_seconds() {
    let mut puppet = start_puppet().await;
    let out = std::env::temp_dir().join(format!("rtcdesk-e2e-kill-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_controller"))
        .args([
            "--signal",
            puppet.signal_url(),
            "--headless",
            "--frames",
            "100000",
        ])
        .arg("--out")
        .arg(&out)
        .arg(puppet.control_code().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("controller binary runs");
    let connected = wait_puppet_event(&mut puppet, "SessionConnected", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;
    let PuppetEvent::SessionConnected { session } = connected else {
        unreachable!()
    };
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let ended = wait_puppet_event(
        &mut puppet,
        "SessionEnded",
        |e| matches!(e, PuppetEvent::SessionEnded { session: s, .. } if *s == session),
    )
    .await;
    assert!(matches!(ended, PuppetEvent::SessionEnded { .. }));
    assert!(puppet.sessions().is_empty(), "{:?}", puppet.sessions());
    puppet.shutdown().await;
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_binary_saves_pngs_and_exits_zero() {
    let puppet = start_puppet().await;
    let out = std::env::temp_dir().join(format!("rtcdesk-e2e-png-{}", std::process::id()));
    let signal_url = puppet.signal_url().to_owned();
    let code = puppet.control_code().digits();
    let outdir = out.clone();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_controller"))
            .args(["--signal", &signal_url, "--headless", "--frames", "1"])
            .arg("--out")
            .arg(&outdir)
            .arg(&code)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
    });
    let output = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("exits in time")
        .unwrap()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    // The user is told the path (direct on loopback: no relay is configured; the remote side
    // may show as prflx when the checks arrive from another local address than signaled) and
    // the time to the picture.
    let path = stderr
        .lines()
        .find_map(|line| line.strip_prefix("controller: connected over "))
        .unwrap_or_else(|| panic!("no path line: {stderr}"));
    assert!(path.starts_with("local=host remote="), "{path}");
    assert!(!path.contains("relay"), "{path}");
    let millis = stderr
        .lines()
        .find_map(|line| line.strip_prefix("controller: first picture after "))
        .and_then(|rest| rest.strip_suffix(" ms"))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(millis.is_some_and(|ms| ms > 0), "{stderr}");
    let png = out.join("frame-00000.png");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png).expect("the PNG exists"),
    ));
    let reader = decoder.read_info().expect("a PNG");
    assert_eq!((reader.info().width, reader.info().height), (WIDTH, HEIGHT));
    puppet.shutdown().await;
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_limit_ends_headless_mode_on_a_still_screen() {
    // The synthetic desktop is still: far fewer than 1000 pictures will ever come.
    let puppet = start_puppet().await;
    let out = std::env::temp_dir().join(format!("rtcdesk-e2e-seconds-{}", std::process::id()));
    let signal_url = puppet.signal_url().to_owned();
    let code = puppet.control_code().digits();
    let outdir = out.clone();
    let status = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_controller"))
            .args(["--signal", &signal_url, "--headless", "--frames", "1000"])
            .args(["--every", "1000", "--seconds", "2"])
            .arg("--out")
            .arg(&outdir)
            .arg(&code)
            .stdout(Stdio::null())
            .status()
    });
    let status = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("exits in time")
        .unwrap()
        .expect("runs");
    assert_eq!(status.code(), Some(0));
    // The first picture (index 0) is saved, and the latest one too when it came later.
    let saved: Vec<_> = std::fs::read_dir(&out)
        .expect("the folder exists")
        .filter_map(|entry| entry.ok())
        .collect();
    assert!(!saved.is_empty(), "no picture saved");
    puppet.shutdown().await;
    let _ = std::fs::remove_dir_all(out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_three_for_an_unknown_code() {
    let puppet = start_puppet().await;
    let other = (puppet.control_code().number() + 1) % ControlCode::SPACE;
    let other = ControlCode::from_number(other).unwrap().to_string();
    let signal_url = puppet.signal_url().to_owned();
    let out = std::env::temp_dir().join(format!("rtcdesk-e2e-unknown-{}", std::process::id()));
    let status = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_controller"))
            .args(["--signal", &signal_url, "--headless", "--out"])
            .arg(&out)
            .args(other.split(' '))
            .stderr(Stdio::null())
            .status()
    });
    let status = tokio::time::timeout(DEADLINE, status)
        .await
        .expect("exits in time")
        .unwrap()
        .expect("runs");
    assert_eq!(status.code(), Some(3));
    puppet.shutdown().await;
}
