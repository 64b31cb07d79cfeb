//! The controller's mapper fed by a real winit window on Xvfb: real `WindowEvent`s (including
//! `KeyboardInput`, whose `KeyEvent` tests cannot build) go through
//! `WindowInput::handle_window_event`. Input reaches the window through XTEST (EnigoInjector).
//!
//! winit reads `DISPLAY` from the environment, so this test sets it; nextest runs each test in a
//! process of its own.

use std::time::{Duration, Instant};

use rtcdesk_input::window::{PictureRect, WindowInput};
use rtcdesk_input::{Action, EnigoInjector, Injector, KeyboardMode};
use rtcdesk_proto::input::{InputEvent, Modifiers, MouseButton};
use rtcdesk_proto::KeyCode;
use rtcdesk_xvfb::Xvfb;
use winit::application::ApplicationHandler;
use winit::dpi::{PhysicalPosition, PhysicalSize};
use winit::event::WindowEvent;
use winit::event_loop::{ActiveEventLoop, EventLoop};
use winit::platform::pump_events::EventLoopExtPumpEvents;
use winit::platform::x11::EventLoopBuilderExtX11;
use winit::window::{Window, WindowId};

const TITLE: &str = "rtcdesk-input-winit-test";
const VIDEO: (u32, u32) = (320, 240);

struct Controller {
    window: Option<Window>,
    input: WindowInput,
    focused: bool,
    sent: Vec<InputEvent>,
}

impl ApplicationHandler for Controller {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.window.is_none() {
            let attributes = Window::default_attributes()
                .with_title(TITLE)
                .with_position(PhysicalPosition::new(0, 0))
                .with_inner_size(PhysicalSize::new(VIDEO.0, VIDEO.1));
            let window = event_loop.create_window(attributes).expect("window");
            // winit need not send an initial Resized: take the size now.
            let size = window.inner_size();
            self.input
                .set_picture(PictureRect::fit(size.width, size.height, VIDEO.0, VIDEO.1));
            self.window = Some(window);
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        match &event {
            WindowEvent::Resized(size) => {
                self.input
                    .set_picture(PictureRect::fit(size.width, size.height, VIDEO.0, VIDEO.1))
            }
            WindowEvent::Focused(focused) => self.focused = *focused,
            _ => {}
        }
        self.input.handle_window_event(&event, 0);
        while let Some(message) = self.input.poll_message() {
            self.sent.push(message.event);
        }
    }
}

/// Pumps window events until `done` holds, at most ten seconds.
fn pump_until(
    event_loop: &mut EventLoop<()>,
    controller: &mut Controller,
    mut done: impl FnMut(&Controller) -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        event_loop.pump_app_events(Some(Duration::from_millis(20)), controller);
        if done(controller) {
            return true;
        }
    }
    false
}

#[test]
fn real_window_events_become_input_messages() {
    let xvfb = Xvfb::start(640, 480).expect("Xvfb");
    std::env::set_var("DISPLAY", xvfb.display());
    let mut event_loop = EventLoop::builder()
        .with_x11()
        .with_any_thread(true)
        .build()
        .expect("event loop");
    let mut controller = Controller {
        window: None,
        input: WindowInput::new(KeyboardMode::Translate),
        focused: false,
        sent: Vec::new(),
    };
    assert!(
        pump_until(&mut event_loop, &mut controller, |c| c.window.is_some()),
        "window created"
    );
    // No window manager: give the window the focus, as FACTS.md says.
    let focus = xvfb
        .command("xdotool")
        .args(["search", "--sync", "--name", TITLE, "windowfocus", "--sync"])
        .status()
        .expect("xdotool runs");
    assert!(focus.success());
    assert!(
        pump_until(&mut event_loop, &mut controller, |c| c.focused),
        "window focused"
    );
    controller.sent.clear();

    let mut injector = EnigoInjector::connect(Some(xvfb.display())).expect("enigo");
    let actions = [
        Action::MoveTo {
            x: 160,
            y: 120,
            x_norm: 0,
            y_norm: 0,
        },
        Action::Button {
            button: MouseButton::Right,
            pressed: true,
        },
        Action::Button {
            button: MouseButton::Right,
            pressed: false,
        },
        Action::Key {
            code: KeyCode::KeyA,
            pressed: true,
        },
        Action::Key {
            code: KeyCode::KeyA,
            pressed: false,
        },
        Action::Key {
            code: KeyCode::ShiftLeft,
            pressed: true,
        },
        Action::Key {
            code: KeyCode::Digit1,
            pressed: true,
        },
        Action::Key {
            code: KeyCode::Digit1,
            pressed: false,
        },
        Action::Key {
            code: KeyCode::ShiftLeft,
            pressed: false,
        },
    ];
    for action in &actions {
        injector.apply(action).expect("injected");
    }
    let ends_with_shift_up = |c: &Controller| {
        c.sent.iter().any(|e| {
            matches!(
                e,
                InputEvent::Key {
                    code: KeyCode::ShiftLeft,
                    pressed: false,
                    ..
                }
            )
        })
    };
    assert!(
        pump_until(&mut event_loop, &mut controller, ends_with_shift_up),
        "events arrived: {:?}",
        controller.sent
    );

    let picture = PictureRect::fit(VIDEO.0, VIDEO.1, VIDEO.0, VIDEO.1).expect("picture");
    let (x, y) = picture.normalize(160.0, 120.0);
    let key = |code, pressed, modifiers| InputEvent::Key {
        code,
        pressed,
        modifiers,
    };
    let button = |pressed| InputEvent::Button {
        button: MouseButton::Right,
        pressed,
        x,
        y,
        modifiers: Modifiers::NONE,
    };
    // Pointer moves before the click may be several (entering the window); keep the last.
    let sent: Vec<InputEvent> = controller
        .sent
        .iter()
        .filter(|e| !matches!(e, InputEvent::PointerMove { .. }))
        .cloned()
        .collect();
    assert!(
        controller.sent.contains(&InputEvent::PointerMove { x, y }),
        "{:?}",
        controller.sent
    );
    assert_eq!(
        sent,
        [
            button(true),
            button(false),
            key(KeyCode::KeyA, true, Modifiers::NONE),
            InputEvent::Text("a".into()),
            key(KeyCode::KeyA, false, Modifiers::NONE),
            key(KeyCode::ShiftLeft, true, Modifiers::SHIFT),
            key(KeyCode::Digit1, true, Modifiers::SHIFT),
            InputEvent::Text("!".into()),
            key(KeyCode::Digit1, false, Modifiers::SHIFT),
            key(KeyCode::ShiftLeft, false, Modifiers::NONE),
        ]
    );
}
