//! The real `puppet` window under a private Xvfb, used as the person being helped uses it: it
//! shows the control code; a controller that dials it is asked about in a dialog and let in
//! with "Accept"; the helper's chat line shows and a reply typed in the window reaches the
//! helper; a file the helper sends is taken with "Accept"; "view only" takes control away; and
//! "Disconnect" ends the session.
//!
//! Where to click comes from the same desk drawn by egui's kittest harness at the window's size
//! (same fonts, same layout), fed the same events; the harness's picture of a widget is what
//! the window must show there before the test clicks. Screenshots of each step go to
//! `target/ui-screenshots/puppet-*.png`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use rtcdesk_controller::{Controller, ControllerConfig, ControllerEvent, EndReason};
use rtcdesk_files::{Direction, Offer, Sha256, TransferEvent};
use rtcdesk_pake::PairingCode;
use rtcdesk_puppet::desk::Desk;
use rtcdesk_puppet::{PuppetEvent, SessionInfo, SessionState};
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_ui::egui;
use rtcdesk_xvfb::screen::*;
use rtcdesk_xvfb::Xvfb;
use tokio::sync::mpsc;

/// The puppet window's size on a screen at scale 1.
const WINDOW: (u32, u32) = (480, 640);
/// The title every puppet window has.
const TITLE: &str = "rtcdesk puppet";

/// The desk in the harness, at the window's size.
fn desk_harness(desk: Desk, pointer: Option<egui::Pos2>) -> Harness<'static, Desk> {
    let mut harness = harness_of_size(WINDOW.0, WINDOW.1, desk, |ui, desk: &mut Desk| {
        egui::CentralPanel::default().show(ui, |ui| {
            let _ = desk.show(ui, Instant::now());
        });
    });
    if let Some(pointer) = pointer {
        // The pointer is where the window's is, so hovered widgets look the same.
        harness.hover_at(in_harness(pointer));
        harness.run_steps(3);
    }
    harness
}

async fn controller_event(
    controller: &mut Controller,
    what: &str,
    mut want: impl FnMut(&ControllerEvent) -> bool,
) -> ControllerEvent {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match controller.next_event().await {
                Some(event) if want(&event) => return event,
                Some(_) => {}
                None => panic!("the session ended before {what}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {what} in time"))
}

/// Shows what the harness draws at `rect` in the window, then clicks its middle.
async fn click_when_shown(
    xvfb: &Xvfb,
    window: &str,
    harness: &mut Harness<'static, Desk>,
    rect: egui::Rect,
    name: &str,
) {
    let picture = render(harness, WINDOW.0, WINDOW.1);
    wait_until_shown(xvfb, window, &picture, rect, name).await;
    click(xvfb, window, rect.center());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_puppets_window_lets_a_helper_in_chats_takes_a_file_and_disconnects() {
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().expect("address")))
        .await
        .expect("the signaling server starts");
    let signal_url = server.url();
    let downloads = tempfile::tempdir().expect("a download folder");
    wait_answering(&xvfb).await;
    let mut child = xvfb
        .command(env!("CARGO_BIN_EXE_puppet"))
        .args(["--signal", &signal_url, "--source", "synthetic"])
        .args([
            "--synthetic-size",
            "320x180",
            "--fps",
            "10",
            "--no-clipboard",
        ])
        .arg("--download-dir")
        .arg(downloads.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the puppet binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let _process = PuppetProcess(child);
    let (tx, mut lines) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let code_line = line(&mut lines, |l| l.starts_with("Control code:")).await;
    let code: PairingCode = code_line["Control code:".len()..]
        .trim()
        .parse()
        .expect("a control code");
    let window = wait_for_window(&xvfb, TITLE).await;
    xdotool(&xvfb, &["windowfocus", "--sync", &window]);

    // The code, in large digits, with "Copy" and "New code".
    let mut desk = Desk::new(
        &code,
        signal_url.clone(),
        Vec::new(),
        Duration::from_secs(30),
        true,
    );
    let mut harness = desk_harness(desk, None);
    harness.get_by_label(&rtcdesk_ui::code::grouped(
        &code.to_string().replace(' ', ""),
    ));
    let new_code = rect_of(&harness, "New code");
    let picture = render(&mut harness, WINDOW.0, WINDOW.1);
    wait_until_shown(&xvfb, &window, &picture, new_code, "puppet-code").await;

    // A helper dials: the dialog names them; "Accept" lets them in with control.
    let mut config = ControllerConfig::for_pairing(&signal_url, code);
    config.name = "help desk".into();
    config.decoder_threads = 1;
    let dialling = tokio::spawn(Controller::connect(config, Box::new(NoPictures)));
    desk = harness.into_state();
    let session = "s".into();
    let asking = SessionInfo {
        session: "s".into(),
        name: "help desk".into(),
        state: SessionState::Asking,
        view_only: false,
    };
    desk.on_event(
        &PuppetEvent::Incoming {
            session: "s".into(),
            from: "help desk".into(),
            verified: true,
        },
        std::slice::from_ref(&asking),
        Instant::now(),
    );
    let mut harness = desk_harness(desk, None);
    harness.get_by_label("help desk asks to connect.");
    let accept = rect_of(&harness, "Accept");
    click_when_shown(&xvfb, &window, &mut harness, accept, "puppet-accept").await;
    let mut controller = dialling
        .await
        .expect("the dialling task")
        .expect("the helper is let in");

    // The helper's line shows; a reply typed in the window reaches the helper.
    desk = harness.into_state();
    let connected = SessionInfo {
        state: SessionState::Connected,
        ..asking
    };
    for event in [
        PuppetEvent::SessionStarted {
            session: "s".into(),
            name: "help desk".into(),
            view_only: false,
        },
        PuppetEvent::SessionConnected {
            session: "s".into(),
        },
    ] {
        desk.on_event(&event, std::slice::from_ref(&connected), Instant::now());
    }
    controller
        .chat_sender()
        .try_send("hello, I can see your screen")
        .expect("queued");
    desk.on_event(
        &PuppetEvent::Chat {
            session: "s".into(),
            line: rtcdesk_proto::chat::ChatLine {
                from: "help desk".into(),
                text: "hello, I can see your screen".into(),
                at: std::time::SystemTime::now(),
            },
        },
        std::slice::from_ref(&connected),
        Instant::now(),
    );
    let mut harness = desk_harness(desk, Some(accept.center()));
    let heard = rect_of(&harness, "hello, I can see your screen");
    let picture = render(&mut harness, WINDOW.0, WINDOW.1);
    wait_until_shown(&xvfb, &window, &picture, heard, "puppet-chat").await;
    let field = window_rect(harness.get_by_role(egui::accesskit::Role::TextInput).rect());
    click(&xvfb, &window, field.center());
    xdotool(
        &xvfb,
        &["type", "--window", &window, "--delay", "20", "thank you"],
    );
    xdotool(&xvfb, &["key", "--window", &window, "Return"]);
    let reply = controller_event(&mut controller, "the reply", |e| {
        matches!(e, ControllerEvent::Chat(_))
    })
    .await;
    let ControllerEvent::Chat(reply) = reply else {
        unreachable!()
    };
    assert_eq!(reply.text, "thank you");

    // A file from the helper waits for "Accept", then lands whole in the download folder.
    let source = tempfile::tempdir().expect("a folder to send from");
    let path = source.path().join("fix.sh");
    let bytes = b"echo the fix the helper wants to run\n".repeat(200);
    std::fs::write(&path, &bytes).expect("the file to send");
    controller.files().send(&path).expect("the offer goes out");
    desk = harness.into_state();
    desk.sent_chat("thank you".into());
    desk.on_event(
        &PuppetEvent::File {
            session,
            event: TransferEvent::Offered {
                offer: Offer {
                    id: 1,
                    name: "fix.sh".into(),
                    size: bytes.len() as u64,
                    sha256: Sha256([0; 32]),
                },
                safe_name: "fix.sh".into(),
            },
        },
        std::slice::from_ref(&connected),
        Instant::now(),
    );
    let mut harness = desk_harness(desk, Some(field.center()));
    let take = rect_of(&harness, "Accept");
    click_when_shown(&xvfb, &window, &mut harness, take, "puppet-file-offer").await;
    controller_event(&mut controller, "the file kept", |e| {
        matches!(
            e,
            ControllerEvent::File(TransferEvent::Completed {
                direction: Direction::Outgoing,
                ..
            })
        )
    })
    .await;
    let arrived = std::fs::read(downloads.path().join("fix.sh")).expect("the file is there");
    assert!(arrived == bytes, "the file arrived whole under its name");

    // "view only" takes control away (the helper is told); "Disconnect" ends the session.
    let view_only = window_rect(harness.get_by_role(egui::accesskit::Role::CheckBox).rect());
    let disconnect = rect_of(&harness, "Disconnect");
    click(&xvfb, &window, view_only.center());
    controller_event(&mut controller, "view only", |e| {
        *e == ControllerEvent::ViewOnly(true)
    })
    .await;
    click(&xvfb, &window, disconnect.center());
    let ended = controller_event(&mut controller, "the end", |e| {
        matches!(e, ControllerEvent::Ended(_))
    })
    .await;
    assert_eq!(ended, ControllerEvent::Ended(EndReason::PuppetLeft));
    server.shutdown().await;
}
