//! The controller's window mapper and the puppet's session, joined through the wire format:
//! window events → WindowInput → bytes → InputMessage::decode → PuppetInput → Recorder.

use std::time::Duration;

use rtcdesk_input::window::{KeyInput, PictureRect, WindowInput};
use rtcdesk_input::{
    Action, InjectorThread, KeyboardMode, PuppetInput, Recorder, ScreenArea, SessionConfig,
};
use rtcdesk_proto::input::{InputMessage, MouseButton};
use rtcdesk_proto::KeyCode;
use winit::keyboard::{KeyCode as WinitKey, PhysicalKey};

/// Moves every message the controller has queued across "the network" to the puppet.
fn deliver(controller: &mut WindowInput, puppet: &mut PuppetInput) {
    while let Some(message) = controller.poll_message() {
        let bytes = message.to_bytes();
        let decoded = InputMessage::decode(&bytes).expect("decodes");
        puppet.handle_message(&decoded).expect("accepted");
    }
}

fn key(code: WinitKey, pressed: bool, text: Option<&str>) -> KeyInput<'_> {
    KeyInput {
        physical_key: PhysicalKey::Code(code),
        pressed,
        repeat: false,
        text,
        alt_graph: false,
    }
}

#[test]
fn a_letterboxed_click_and_translated_typing_arrive_as_the_user_meant() {
    let desktop = Recorder::new();
    let injector = InjectorThread::spawn(64, {
        let desktop = desktop.clone();
        move || Ok(desktop)
    })
    .expect("injector");
    // The puppet captures a 1920×1080 monitor placed right of a 1280-wide one.
    let mut config = SessionConfig::new(ScreenArea {
        x: 1280,
        y: 0,
        width: 1920,
        height: 1080,
    });
    config.keyboard = KeyboardMode::Translate;
    let mut puppet = PuppetInput::new(config, injector.handle());

    // The controller shows that video at half size in a 960×1000 window: 230-pixel bars top
    // and bottom. The user clicks the picture's bottom-right pixel.
    let mut controller = WindowInput::new(KeyboardMode::Translate);
    controller.set_picture(PictureRect::fit(960, 1000, 1920, 1080));
    controller.cursor_moved(959.0, 1000.0 - 230.0 - 1.0, 1);
    controller.mouse_input(winit::event::MouseButton::Left, true, 2);
    controller.mouse_input(winit::event::MouseButton::Left, false, 3);
    // A German user types "z" on the key a US keyboard calls Y, then presses Enter.
    controller.key(key(WinitKey::KeyY, true, Some("z")), 4);
    controller.key(key(WinitKey::KeyY, false, None), 5);
    controller.key(key(WinitKey::Enter, true, Some("\r")), 6);
    controller.key(key(WinitKey::Enter, false, None), 7);
    deliver(&mut controller, &mut puppet);
    assert!(injector.handle().wait_idle(Duration::from_secs(5)));

    assert_eq!(
        desktop.actions(),
        [
            Action::MoveTo {
                x: 1280 + 1919,
                y: 1079,
                x_norm: 65535,
                y_norm: 65535
            },
            Action::Button {
                button: MouseButton::Left,
                pressed: true
            },
            Action::Button {
                button: MouseButton::Left,
                pressed: false
            },
            Action::Text("z".into()),
            Action::Key {
                code: KeyCode::Enter,
                pressed: true
            },
            Action::Key {
                code: KeyCode::Enter,
                pressed: false
            },
        ]
    );
}
