//! The real `controller` window under a private Xvfb, used as a person uses it: the pointer at
//! the top edge brings up the toolbar, a click on "Chat" opens the chat, a typed line reaches
//! the puppet's user (and not the puppet's keyboard), a file the puppet offers opens the files
//! panel and "Accept" takes it.
//!
//! Where to click comes from the same overlay drawn by egui's kittest harness at the window's
//! size (same fonts, same layout), and the harness's picture of it is what the window must show
//! there before the test clicks. Screenshots of each step go to `target/ui-screenshots/`.

mod common;

use std::process::Stdio;

use common::screen::*;
use common::*;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use rtcdesk_controller::overlay::{Overlay, Panel};
use rtcdesk_controller::ControllerEvent;
use rtcdesk_files::{Offer, Sha256, TransferEvent};
use rtcdesk_puppet::PuppetEvent;
use rtcdesk_ui::egui;
use rtcdesk_xvfb::Xvfb;

/// The overlay in the harness, at the window's size, with the pointer at `pointer`.
struct Drawn {
    overlay: Overlay,
    pointer: egui::Pos2,
}

fn overlay_harness(overlay: Overlay, pointer: egui::Pos2) -> Harness<'static, Drawn> {
    let mut harness = harness_of_size(
        WIDTH,
        HEIGHT,
        Drawn { overlay, pointer },
        |ui, drawn: &mut Drawn| {
            drawn.overlay.show(ui, Some(in_harness(drawn.pointer)));
        },
    );
    // The pointer is where the window's is, so hovered widgets look the same.
    harness.hover_at(in_harness(pointer));
    harness.run();
    harness
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_and_a_file_from_the_windows_toolbar_and_panels() {
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut puppet = start_puppet().await;
    let downloads = tempfile::tempdir().expect("a download folder");
    let child = xvfb
        .command(env!("CARGO_BIN_EXE_controller"))
        .args(["--signal", puppet.signal_url(), "--no-clipboard"])
        .arg("--download-dir")
        .arg(downloads.path())
        .arg(puppet.control_code().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the controller binary runs");
    let _child = KillOnDrop(child);
    let session = match wait_puppet_event(&mut puppet, "SessionConnected", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await
    {
        PuppetEvent::SessionConnected { session, .. } => session,
        _ => unreachable!(),
    };
    let window = common::screen::wait_for_window(&xvfb, common::CONTROLLER_TITLE).await;
    xdotool(&xvfb, &["windowfocus", "--sync", &window]);

    // The pointer at the top edge brings the toolbar up.
    let top = egui::pos2(WIDTH as f32 / 2.0, 2.0);
    let mut bar = overlay_harness(Overlay::new(), top);
    let chat_button = rect_of(&bar, "Chat");
    let bar_picture = render(&mut bar, WIDTH, HEIGHT);
    xdotool(
        &xvfb,
        &["mousemove", "--window", &window, &format!("{}", top.x), "2"],
    );
    wait_until_shown(
        &xvfb,
        &window,
        &bar_picture,
        chat_button,
        "controller-toolbar",
    )
    .await;

    // "Chat" opens the chat panel; a line typed there goes to the puppet's user.
    click(&xvfb, &window, chat_button.center());
    let mut chat = Overlay::new();
    chat.open(Panel::Chat);
    let mut chat_harness = overlay_harness(chat, chat_button.center());
    let field = rect_of(&chat_harness, "Send");
    let chat_picture = render(&mut chat_harness, WIDTH, HEIGHT);
    wait_until_shown(&xvfb, &window, &chat_picture, field, "controller-chat").await;
    let field_rect = window_rect(
        chat_harness
            .get_by_role(egui::accesskit::Role::TextInput)
            .rect(),
    );
    click(&xvfb, &window, field_rect.center());
    xdotool(
        &xvfb,
        &[
            "type",
            "--window",
            &window,
            "--delay",
            "20",
            "hello from the window",
        ],
    );
    xdotool(&xvfb, &["key", "--window", &window, "Return"]);
    let heard = wait_puppet_event(&mut puppet, "the chat line", |e| {
        matches!(e, PuppetEvent::Chat { .. })
    })
    .await;
    let PuppetEvent::Chat { line, .. } = heard else {
        unreachable!()
    };
    assert_eq!(line.text, "hello from the window");
    let desktop = puppet.synthetic_desktop().expect("synthetic source");
    assert!(
        !desktop.typed_text().contains("hello"),
        "keys typed into the chat stayed on the controller, but the puppet got {:?}",
        desktop.typed_text()
    );

    // A file from the puppet opens the files panel; "Accept" takes it.
    let source = tempfile::tempdir().expect("a folder to send from");
    let path = source.path().join("notes.txt");
    let bytes = b"what the puppet's user wants the helper to read\n".repeat(100);
    std::fs::write(&path, &bytes).expect("the file to send");
    puppet
        .files()
        .send_to(session.clone(), &path)
        .expect("the offer goes out");
    let mut offered = Overlay::new();
    offered.open(Panel::Chat);
    offered.on_event(&ControllerEvent::File(TransferEvent::Offered {
        offer: Offer {
            id: 1,
            name: "notes.txt".into(),
            size: bytes.len() as u64,
            sha256: Sha256([0; 32]),
        },
        safe_name: "notes.txt".into(),
    }));
    let mut files_harness = overlay_harness(offered, field_rect.center());
    let accept = rect_of(&files_harness, "Accept");
    let files_picture = render(&mut files_harness, WIDTH, HEIGHT);
    wait_until_shown(
        &xvfb,
        &window,
        &files_picture,
        accept,
        "controller-file-offer",
    )
    .await;
    click(&xvfb, &window, accept.center());
    // The controller confirms it kept the file once its hash matched.
    wait_puppet_event(&mut puppet, "the file kept", |e| {
        matches!(
            e,
            PuppetEvent::File {
                event: TransferEvent::Completed { .. },
                ..
            }
        )
    })
    .await;
    let arrived = std::fs::read(downloads.path().join("notes.txt")).expect("the file is there");
    assert!(arrived == bytes, "the file arrived whole under its name");
    puppet.shutdown().await;
}
