//! The screens as a person meets them: driven through egui's kittest harness (widgets found
//! by label and role through AccessKit, clicked and typed into), then rendered on wgpu
//! (lavapipe where there is no GPU) and written as PNG to `target/ui-screenshots/`
//! (`crates/ui/screenshots/` holds copies for the README).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use rtcdesk_ui::connect::{ConnectAction, ConnectScreen};
use rtcdesk_ui::consent::{ConsentAnswer, ConsentDialog};
use rtcdesk_ui::controllers::{ConnectedController, ControllerAction, ControllerList};
use rtcdesk_ui::recent::{RecentPuppet, RecentPuppets};
use rtcdesk_ui::stats::{StatsPanel, StatsView};
use rtcdesk_ui::toolbar::{Toolbar, ToolbarAction};
use rtcdesk_ui::transfers::{Transfer, TransferAction, TransferList, TransferState};

/// Renders the harness and writes `name.png`; returns the path (checked to be a real PNG of
/// the harness's size).
fn screenshot<S>(harness: &mut Harness<'_, S>, name: &str) -> PathBuf {
    let image = harness.render().expect("the screen renders on wgpu");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("..")
        .join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let file = std::fs::File::create(&path).unwrap();
    let mut encoder = png::Encoder::new(file, image.width(), image.height());
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(image.as_raw()).unwrap();
    writer.finish().unwrap();
    // Not a blank frame: a screen with text has many distinct colours.
    let mut colours: Vec<[u8; 4]> = image.pixels().map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 8, "{name}: the picture is blank");
    path
}

/// The screen as a window shows it: one panel with the usual background, filling the window.
fn panel(ui: &mut egui::Ui, add: impl FnOnce(&mut egui::Ui)) {
    egui::Frame::central_panel(ui.style()).show(ui, |ui| {
        ui.set_min_size(ui.available_size());
        add(ui);
    });
}

struct Connect {
    screen: ConnectScreen,
    actions: Vec<ConnectAction>,
}

fn connect_harness(recent: RecentPuppets) -> Harness<'static, Connect> {
    let state = Connect {
        screen: ConnectScreen::new("ws://127.0.0.1:8443/".into(), recent),
        actions: Vec::new(),
    };
    Harness::builder()
        .with_size([420.0, 360.0])
        .wgpu()
        .build_ui_state(
            |ui, state: &mut Connect| {
                panel(ui, |ui| {
                    if let Some(action) = state.screen.show(ui) {
                        state.actions.push(action);
                    }
                });
            },
            state,
        )
}

#[test]
fn the_connect_screen_takes_a_pasted_code_and_explains_a_bad_one() {
    let mut recent = RecentPuppets::default();
    recent.remember(RecentPuppet {
        code: "555111222".into(),
        name: Some("front desk".into()),
        server: "ws://127.0.0.1:8443/".into(),
        last_used: 1,
    });
    let mut harness = connect_harness(recent);
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Connect");
    harness.get_by_label("Recent puppets");
    harness.get_by_label("Signaling server");
    let field = harness.get_by_label("Control code");
    field.focus();
    field.type_text("12 34");
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Connect")
        .click();
    harness.run();
    harness.get_by_label("a control code has 12 digits, as the puppet shows it");
    assert!(harness.state().actions.is_empty());

    harness.state_mut().screen.code = "123 456-789".into();
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Connect")
        .click();
    harness.run();
    assert_eq!(
        harness.state().actions,
        vec![ConnectAction::Connect {
            code: "123456789".into(),
            server: "ws://127.0.0.1:8443/".into()
        }]
    );
    assert!(harness
        .query_by_label("a control code has 12 digits, as the puppet shows it")
        .is_none());
    harness.get_by_label_contains("Connecting");
    screenshot(&mut harness, "connect");
}

#[test]
fn a_recent_puppet_connects_with_one_click() {
    let mut recent = RecentPuppets::default();
    recent.remember(RecentPuppet {
        code: "555111222".into(),
        name: Some("front desk".into()),
        server: "ws://10.0.0.9:8443/".into(),
        last_used: 1,
    });
    let mut harness = connect_harness(recent);
    harness.run();
    harness.get_by_label("front desk — 555111222").click();
    harness.run();
    assert_eq!(
        harness.state().actions,
        vec![ConnectAction::Connect {
            code: "555111222".into(),
            server: "ws://10.0.0.9:8443/".into()
        }]
    );
}

struct Puppet {
    dialog: ConsentDialog,
    now: Instant,
    answers: Vec<ConsentAnswer>,
    list: ControllerList,
    list_actions: Vec<ControllerAction>,
}

#[test]
fn the_accept_dialog_names_the_controller_counts_down_and_answers() {
    let t0 = Instant::now();
    let state = Puppet {
        dialog: ConsentDialog::new(
            "s1".into(),
            "Ana's laptop".into(),
            true,
            t0,
            Duration::from_secs(30),
        ),
        now: t0,
        answers: Vec::new(),
        list: ControllerList {
            controllers: vec![ConnectedController {
                session: "s0".into(),
                name: "helpdesk".into(),
                view_only: false,
            }],
            view_only_toggles: true,
        },
        list_actions: Vec::new(),
    };
    let mut harness = Harness::builder()
        .with_size([460.0, 260.0])
        .wgpu()
        .build_ui_state(
            |ui, state: &mut Puppet| {
                panel(ui, |ui| {
                    if let Some(answer) = state.dialog.show(ui, state.now) {
                        state.answers.push(answer);
                    }
                    ui.separator();
                    if let Some(action) = state.list.show(ui) {
                        state.list_actions.push(action);
                    }
                });
            },
            state,
        );
    harness.run_steps(2);
    harness.get_by_label("Ana's laptop asks to connect.");
    harness.get_by_label("Rejected automatically in 30 s.");
    harness.get_by_role_and_label(Role::Button, "Accept");
    harness.get_by_role_and_label(Role::Button, "Reject");
    harness.get_by_role_and_label(Role::Button, "Watch only");
    harness.get_by_label("They hold your whole code (verified end to end).");
    harness.get_by_label("helpdesk");
    screenshot(&mut harness, "accept");

    harness.state_mut().now = t0 + Duration::from_millis(20_500);
    harness.run_steps(2);
    harness.get_by_label("Rejected automatically in 10 s.");
    harness
        .get_by_role_and_label(Role::Button, "Accept")
        .click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().answers.first(),
        Some(&ConsentAnswer::Accept)
    );

    harness.get_by_role(Role::CheckBox).click();
    harness.run_steps(2);
    harness
        .get_by_role_and_label(Role::Button, "Disconnect")
        .click();
    harness.run_steps(2);
    assert_eq!(
        harness.state().list_actions,
        vec![
            ControllerAction::SetViewOnly("s0".into(), true),
            ControllerAction::Disconnect("s0".into())
        ]
    );

    // Unanswered, the countdown rejects.
    harness.state_mut().answers.clear();
    harness.state_mut().now = t0 + Duration::from_secs(31);
    harness.run_steps(1);
    assert_eq!(
        harness.state().answers.first(),
        Some(&ConsentAnswer::Reject)
    );
}

struct Files {
    list: TransferList,
    actions: Vec<TransferAction>,
}

#[test]
fn files_in_progress_show_a_bar_and_offers_ask_first() {
    let state = Files {
        list: TransferList {
            transfers: vec![
                Transfer {
                    id: 1,
                    name: "report.pdf".into(),
                    size: 2_400_000,
                    done: 1_000_000,
                    incoming: true,
                    state: TransferState::Moving,
                },
                Transfer {
                    id: 2,
                    name: "photo.jpg".into(),
                    size: 820_000,
                    done: 0,
                    incoming: true,
                    state: TransferState::Offered,
                },
            ],
        },
        actions: Vec::new(),
    };
    let mut harness = Harness::builder()
        .with_size([460.0, 140.0])
        .wgpu()
        .build_ui_state(
            |ui, state: &mut Files| {
                panel(ui, |ui| {
                    if let Some(action) = state.list.show(ui) {
                        state.actions.push(action);
                    }
                });
            },
            state,
        );
    harness.run();
    harness.get_by_label_contains("report.pdf (2.4 MB)");
    harness.get_by_role(Role::ProgressIndicator);
    harness.get_by_label_contains("photo.jpg (820 kB)");
    screenshot(&mut harness, "transfer");
    harness
        .get_by_role_and_label(Role::Button, "Decline")
        .click();
    harness.run();
    assert_eq!(harness.state().actions, vec![TransferAction::Decline(2)]);
}

#[test]
fn the_toolbar_and_stats_panel_show_both_sides() {
    struct Bar {
        toolbar: Toolbar,
        stats: StatsPanel,
        actions: Vec<ToolbarAction>,
    }
    let state = Bar {
        toolbar: Toolbar {
            keyboard_mode: "keys".into(),
            view_only: true,
            unread: 0,
            reveal_height: 24.0,
        },
        stats: StatsPanel {
            local: StatsView {
                fps: Some(59.6),
                rtt_ms: Some(1.8),
                bitrate_bps: Some(1_250_000),
                latency_ms: Some(18.0),
                loss_percent: Some(0.0),
                codec: Some("AV1".into()),
                resolution: Some((1280, 720)),
            },
            remote: Some(StatsView {
                fps: Some(60.0),
                ..StatsView::default()
            }),
            sides: ("controller".into(), "puppet".into()),
        },
        actions: Vec::new(),
    };
    let mut harness = Harness::builder()
        .with_size([520.0, 300.0])
        .wgpu()
        .build_ui_state(
            |ui, state: &mut Bar| {
                panel(ui, |ui| {
                    if let Some(action) = state.toolbar.show(ui) {
                        state.actions.push(action);
                    }
                    state.stats.show(ui);
                });
            },
            state,
        );
    harness.run();
    for button in ["Chat", "Files", "Keyboard: keys", "Stats", "Disconnect"] {
        harness.get_by_role_and_label(Role::Button, button);
    }
    harness.get_by_label("View only");
    harness.get_by_label("1.2 Mbit/s");
    harness.get_by_label("1280×720");
    harness.get_by_label("puppet");
    screenshot(&mut harness, "stats");
    harness
        .get_by_role_and_label(Role::Button, "Disconnect")
        .click();
    harness.run();
    assert_eq!(harness.state().actions, vec![ToolbarAction::Disconnect]);
}
