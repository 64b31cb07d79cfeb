//! The real `controller` started without a code, under a private Xvfb: its window opens on the
//! connect screen, a mistyped code is refused there in words (the window stays), the right one
//! connects, and the puppet is remembered for next time.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::screen::*;
use common::*;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use rtcdesk_controller::ConnectError;
use rtcdesk_puppet::PuppetEvent;
use rtcdesk_ui::connect::ConnectScreen;
use rtcdesk_ui::egui;
use rtcdesk_ui::recent::RecentPuppets;
use rtcdesk_xvfb::Xvfb;

/// The connect window's size.
const WINDOW: (u32, u32) = (480, 420);

fn connect_harness(screen: ConnectScreen) -> Harness<'static, ConnectScreen> {
    harness_of_size(
        WINDOW.0,
        WINDOW.1,
        screen,
        |ui, screen: &mut ConnectScreen| {
            egui::CentralPanel::default().show(ui, |ui| {
                let _ = screen.show(ui);
            });
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connect_screen_explains_a_wrong_code_and_connects_with_the_right_one() {
    let xvfb = Xvfb::start(1024, 768).expect("Xvfb starts");
    let mut puppet = start_puppet().await;
    let config_home = tempfile::tempdir().expect("a config folder");
    wait_answering(&xvfb).await;
    let child = xvfb
        .command(env!("CARGO_BIN_EXE_controller"))
        .args(["--signal", puppet.signal_url(), "--no-clipboard"])
        .env("XDG_CONFIG_HOME", config_home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the controller binary runs");
    let _child = KillOnDrop(child);
    let window = common::screen::wait_for_window(&xvfb, common::CONTROLLER_TITLE).await;
    xdotool(&xvfb, &["windowfocus", "--sync", &window]);

    let empty = ConnectScreen::new(puppet.signal_url().to_owned(), RecentPuppets::default());
    let mut harness = connect_harness(empty.clone());
    let field = window_rect(harness.get_by_role(egui::accesskit::Role::TextInput).rect());
    let connect_button = rect_of(&harness, "Connect");
    let picture = render(&mut harness, WINDOW.0, WINDOW.1);
    wait_until_shown(
        &xvfb,
        &window,
        &picture,
        connect_button,
        "controller-connect",
    )
    .await;

    // A code no puppet has: the reason shows on the screen, and the window stays.
    click(&xvfb, &window, field.center());
    xdotool(
        &xvfb,
        &["type", "--window", &window, "--delay", "20", "111 111 111"],
    );
    xdotool(&xvfb, &["key", "--window", &window, "Return"]);
    let wrong: rtcdesk_controller::ControlCode = "111111111".parse().expect("a code");
    let mut refused = empty.clone();
    refused.code = "111 111 111".into();
    refused.error = Some(ConnectError::UnknownCode(wrong).to_string());
    let mut harness = connect_harness(refused.clone());
    let reason = rect_of(&harness, refused.error.as_deref().unwrap_or_default());
    let picture = render(&mut harness, WINDOW.0, WINDOW.1);
    wait_until_shown(
        &xvfb,
        &window,
        &picture,
        reason,
        "controller-connect-refused",
    )
    .await;

    // The whole code as the puppet shows it connects (verified end to end).
    click(&xvfb, &window, field.center());
    xdotool(&xvfb, &["key", "--window", &window, "ctrl+a"]);
    let code = puppet.pairing_code().to_string();
    xdotool(
        &xvfb,
        &["type", "--window", &window, "--delay", "20", &code],
    );
    xdotool(&xvfb, &["key", "--window", &window, "Return"]);
    wait_puppet_event(&mut puppet, "SessionConnected", |e| {
        matches!(e, PuppetEvent::SessionConnected { .. })
    })
    .await;

    // Remembered for next time: its control code only, never the three secret digits.
    let recent_file = config_home.path().join("rtcdesk").join("recent.json");
    let remembered = tokio::time::timeout(DEADLINE, async {
        loop {
            let recent = RecentPuppets::load(&recent_file);
            if let Some(entry) = recent.entries.first() {
                return entry.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the puppet is in the recent list");
    assert_eq!(
        remembered.code,
        puppet.control_code().to_string().replace(' ', "")
    );
    assert_eq!(remembered.server, puppet.signal_url());
    puppet.shutdown().await;
}
