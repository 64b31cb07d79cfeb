//! Injection on a real X server: each test starts a private Xvfb, injects through enigo via the
//! public API (PuppetInput → InjectorThread → EnigoInjector), and checks what a real X client,
//! the observer window, received. No sleeps: the injector thread's `wait_idle` plus enigo's
//! per-event sync say the server has the events, and the observer waits on them with timeouts.

use std::time::Duration;

use rtcdesk_input::observe::{Observed, X11Observer};
use rtcdesk_input::{
    EnigoInjector, InjectorThread, KeyboardMode, PuppetInput, ScreenArea, SessionConfig,
};
use rtcdesk_proto::input::{InputEvent, InputMessage, Modifiers, MouseButton, WheelUnit};
use rtcdesk_proto::KeyCode;
use rtcdesk_xvfb::Xvfb;

const WAIT: Duration = Duration::from_secs(10);

/// One X server, one observer on it, one enigo injector thread into it.
struct Rig {
    observer: X11Observer,
    injector: InjectorThread,
    // Dropped last: the X server outlives its clients.
    _xvfb: Xvfb,
}

impl Rig {
    fn start(width: u32, height: u32) -> Self {
        let xvfb = Xvfb::start(width, height).expect("Xvfb starts");
        let observer = X11Observer::open(xvfb.display()).expect("observer window");
        let display = xvfb.display().to_owned();
        let injector = InjectorThread::spawn(64, move || EnigoInjector::connect(Some(&display)))
            .expect("enigo connects");
        Self {
            observer,
            injector,
            _xvfb: xvfb,
        }
    }

    fn session(&self, config: SessionConfig) -> Session {
        Session {
            input: PuppetInput::new(config, self.injector.handle()),
            seq: 0,
        }
    }

    /// Waits until every queued action has reached the X server.
    fn settle(&self) {
        assert!(self.injector.handle().wait_idle(WAIT), "injector stuck");
    }

    fn next(&self) -> Observed {
        self.observer.next(WAIT).expect("an X event")
    }

    /// The next key press, skipping everything else.
    fn next_key_press(&self) -> (u8, u32, u16) {
        match self
            .observer
            .next_matching(WAIT, |e| matches!(e, Observed::KeyPress { .. }))
        {
            Some(Observed::KeyPress {
                keycode,
                keysym,
                state,
            }) => (keycode, keysym, state),
            other => panic!("no key press: {other:?}"),
        }
    }

    fn next_button_press(&self) -> u8 {
        match self
            .observer
            .next_matching(WAIT, |e| matches!(e, Observed::ButtonPress(_)))
        {
            Some(Observed::ButtonPress(button)) => button,
            other => panic!("no button press: {other:?}"),
        }
    }
}

struct Session {
    input: PuppetInput,
    seq: u32,
}

impl Session {
    fn send(&mut self, event: InputEvent) {
        self.seq += 1;
        self.input
            .handle_message(&InputMessage {
                seq: self.seq,
                timestamp_us: 0,
                event,
            })
            .expect("accepted");
    }

    fn key(&mut self, code: KeyCode, pressed: bool, modifiers: Modifiers) {
        self.send(InputEvent::Key {
            code,
            pressed,
            modifiers,
        });
    }

    fn tap(&mut self, code: KeyCode, modifiers: Modifiers) {
        self.key(code, true, modifiers);
        self.key(code, false, modifiers);
    }

    fn click(&mut self, button: MouseButton, x: u16, y: u16) {
        for pressed in [true, false] {
            self.send(InputEvent::Button {
                button,
                pressed,
                x,
                y,
                modifiers: Modifiers::NONE,
            });
        }
    }

    fn wheel(&mut self, dx: i16, dy: i16) {
        self.send(InputEvent::Wheel {
            x: 100,
            y: 100,
            unit: WheelUnit::Lines120,
            dx,
            dy,
        });
    }
}

// Keysyms from X11/keysymdef.h.
const XK_RETURN: u32 = 0xff0d;
const XK_UP: u32 = 0xff52;
const XK_F1: u32 = 0xffbe;
const XK_SHIFT_L: u32 = 0xffe1;
const XK_CONTROL_L: u32 = 0xffe3;

#[test]
fn pointer_moves_land_on_the_captured_area_pixels() {
    let rig = Rig::start(640, 480);
    let mut session = rig.session(SessionConfig::new(ScreenArea::at_origin(640, 480)));
    session.send(InputEvent::PointerMove { x: 32768, y: 65535 });
    rig.settle();
    assert_eq!(rig.observer.pointer().unwrap(), (320, 479));
    assert_eq!(rig.next(), Observed::Motion { x: 320, y: 479 });

    // A capture of the right half only, as with a second monitor at x = 320.
    let mut right_half = rig.session(SessionConfig::new(ScreenArea {
        x: 320,
        y: 0,
        width: 320,
        height: 480,
    }));
    right_half.send(InputEvent::PointerMove { x: 0, y: 0 });
    rig.settle();
    assert_eq!(rig.observer.pointer().unwrap(), (320, 0));
    right_half.send(InputEvent::PointerMove { x: 65535, y: 32768 });
    rig.settle();
    assert_eq!(rig.observer.pointer().unwrap(), (639, 240));
}

#[test]
fn buttons_and_wheel_reach_an_x_client_as_x_buttons() {
    let rig = Rig::start(320, 240);
    let mut session = rig.session(SessionConfig::new(ScreenArea::at_origin(320, 240)));
    for button in MouseButton::ALL {
        session.click(button, 30000, 30000);
    }
    rig.settle();
    let pressed: Vec<u8> = (0..5).map(|_| rig.next_button_press()).collect();
    // X numbers: 1 left, 2 middle, 3 right, 8 back, 9 forward.
    assert_eq!(pressed, [1, 2, 3, 8, 9]);
    assert_eq!(rig.observer.pointer().unwrap(), (146, 109));

    // Two notches down, one up, one right, one left.
    session.wheel(0, 240);
    session.wheel(0, -120);
    session.wheel(120, 0);
    session.wheel(-120, 0);
    rig.settle();
    let wheel: Vec<u8> = (0..5).map(|_| rig.next_button_press()).collect();
    assert_eq!(wheel, [5, 5, 4, 7, 6]);
}

#[test]
fn map_mode_presses_keys_by_position() {
    let rig = Rig::start(320, 240);
    let mut session = rig.session(SessionConfig::new(ScreenArea::at_origin(320, 240)));
    for code in [KeyCode::KeyA, KeyCode::Enter, KeyCode::ArrowUp, KeyCode::F1] {
        session.tap(code, Modifiers::NONE);
    }
    session.key(KeyCode::ShiftLeft, true, Modifiers::SHIFT);
    session.tap(KeyCode::KeyQ, Modifiers::SHIFT);
    session.key(KeyCode::ShiftLeft, false, Modifiers::NONE);
    rig.settle();
    let presses: Vec<(u8, u32)> = (0..6)
        .map(|_| {
            let (keycode, keysym, _) = rig.next_key_press();
            (keycode, keysym)
        })
        .collect();
    assert_eq!(
        presses,
        [
            (38, u32::from(b'a')),
            (36, XK_RETURN),
            (111, XK_UP),
            (67, XK_F1),
            (50, XK_SHIFT_L),
            (24, u32::from(b'Q')),
        ]
    );
}

#[test]
fn translate_mode_types_text_and_keeps_editing_keys_and_shortcuts() {
    let rig = Rig::start(320, 240);
    let mut config = SessionConfig::new(ScreenArea::at_origin(320, 240));
    config.keyboard = KeyboardMode::Translate;
    let mut session = rig.session(config);
    // The controller typed "aaZé!!€" (keys dropped, text typed: some characters are on the
    // puppet's keymap, others need a spare keycode, some repeat), then Enter and Ctrl+C.
    session.tap(KeyCode::KeyA, Modifiers::NONE);
    session.send(InputEvent::Text("aaZé!!€".into()));
    session.tap(KeyCode::Enter, Modifiers::NONE);
    session.key(KeyCode::ControlLeft, true, Modifiers::CONTROL);
    session.tap(KeyCode::KeyC, Modifiers::CONTROL);
    session.key(KeyCode::ControlLeft, false, Modifiers::NONE);
    rig.settle();
    let keysyms: Vec<u32> = (0..10).map(|_| rig.next_key_press().1).collect();
    assert_eq!(
        keysyms,
        [
            u32::from('a'),
            u32::from('a'),
            u32::from('Z'),
            u32::from('é'),
            u32::from('!'),
            u32::from('!'),
            0x20ac, // EuroSign
            XK_RETURN,
            XK_CONTROL_L,
            u32::from('c'),
        ]
    );

    // With Shift held, text is typed unshifted: Shift goes up around it and down again.
    session.key(KeyCode::ShiftLeft, true, Modifiers::SHIFT);
    session.send(InputEvent::Text("/".into()));
    rig.settle();
    let (_, shift, _) = rig.next_key_press();
    assert_eq!(shift, XK_SHIFT_L);
    let (_, slash, state) = rig.next_key_press();
    assert_eq!(
        (slash, state & 1),
        (u32::from('/'), 0),
        "typed without Shift"
    );
    let (_, shift_again, _) = rig.next_key_press();
    assert_eq!(shift_again, XK_SHIFT_L);
}

#[test]
fn ending_a_session_releases_its_keys_and_buttons_on_the_server() {
    let rig = Rig::start(320, 240);
    let mut session = rig.session(SessionConfig::new(ScreenArea::at_origin(320, 240)));
    session.key(KeyCode::ControlLeft, true, Modifiers::CONTROL);
    session.key(KeyCode::KeyB, true, Modifiers::CONTROL);
    session.send(InputEvent::Button {
        button: MouseButton::Left,
        pressed: true,
        x: 1000,
        y: 1000,
        modifiers: Modifiers::CONTROL,
    });
    rig.settle();
    let control = rtcdesk_input::keys::x11_keycode(KeyCode::ControlLeft);
    let b = rtcdesk_input::keys::x11_keycode(KeyCode::KeyB);
    assert_eq!(rig.observer.keys_down().unwrap(), [control, b]);
    assert_eq!(rig.observer.buttons_down().unwrap(), 0x100, "button 1 down");

    // The controller's connection drops.
    drop(session);
    rig.settle();
    assert_eq!(rig.observer.keys_down().unwrap(), Vec::<u8>::new());
    assert_eq!(rig.observer.buttons_down().unwrap(), 0);
}

#[test]
fn a_missing_display_is_a_connect_error() {
    let result = EnigoInjector::connect(Some(":9999"));
    assert!(
        matches!(result, Err(rtcdesk_input::Error::Connect(_))),
        "{result:?}"
    );
}

#[test]
fn the_key_table_matches_the_x_servers_evdev_keymap() {
    use rtcdesk_input::keys::x11_keycode;
    let xvfb = Xvfb::start(64, 64).expect("Xvfb starts");
    let observer = X11Observer::open(xvfb.display()).expect("observer");
    let mut expected: Vec<(KeyCode, u32)> = Vec::new();
    // Keysyms of xkeyboard-config's evdev keycodes with the "us" layout (Xvfb's default), from
    // X11/keysymdef.h and XF86keysym.h. Letters and digits: their ASCII keysyms.
    for letter in 'a'..='z' {
        let name = format!("Key{}", letter.to_ascii_uppercase());
        let code = KeyCode::from_w3c(&name).expect("letter key");
        expected.push((code, u32::from(letter)));
    }
    for digit in 0..=9u8 {
        let code = KeyCode::from_w3c(&format!("Digit{digit}")).expect("digit key");
        expected.push((code, u32::from(b'0' + digit)));
    }
    expected.extend([
        (KeyCode::Backquote, 0x60),
        (KeyCode::Backslash, 0x5c),
        (KeyCode::BracketLeft, 0x5b),
        (KeyCode::BracketRight, 0x5d),
        (KeyCode::Comma, 0x2c),
        (KeyCode::Equal, 0x3d),
        (KeyCode::Minus, 0x2d),
        (KeyCode::Period, 0x2e),
        (KeyCode::Quote, 0x27),
        (KeyCode::Semicolon, 0x3b),
        (KeyCode::Slash, 0x2f),
        (KeyCode::Space, 0x20),
        (KeyCode::AltLeft, 0xffe9),
        (KeyCode::Backspace, 0xff08),
        (KeyCode::CapsLock, 0xffe5),
        (KeyCode::ContextMenu, 0xff67),
        (KeyCode::ControlLeft, 0xffe3),
        (KeyCode::ControlRight, 0xffe4),
        (KeyCode::Enter, 0xff0d),
        (KeyCode::MetaLeft, 0xffeb),
        (KeyCode::MetaRight, 0xffec),
        (KeyCode::ShiftLeft, 0xffe1),
        (KeyCode::ShiftRight, 0xffe2),
        (KeyCode::Tab, 0xff09),
        (KeyCode::Delete, 0xffff),
        (KeyCode::End, 0xff57),
        (KeyCode::Home, 0xff50),
        (KeyCode::Insert, 0xff63),
        (KeyCode::PageDown, 0xff56),
        (KeyCode::PageUp, 0xff55),
        (KeyCode::ArrowLeft, 0xff51),
        (KeyCode::ArrowUp, 0xff52),
        (KeyCode::ArrowRight, 0xff53),
        (KeyCode::ArrowDown, 0xff54),
        (KeyCode::NumLock, 0xff7f),
        (KeyCode::NumpadAdd, 0xffab),
        (KeyCode::NumpadSubtract, 0xffad),
        (KeyCode::NumpadMultiply, 0xffaa),
        (KeyCode::NumpadDivide, 0xffaf),
        (KeyCode::NumpadEnter, 0xff8d),
        (KeyCode::Escape, 0xff1b),
        (KeyCode::PrintScreen, 0xff61),
        (KeyCode::ScrollLock, 0xff14),
        (KeyCode::Pause, 0xff13),
        (KeyCode::AudioVolumeMute, 0x1008_ff12),
        (KeyCode::AudioVolumeDown, 0x1008_ff11),
        (KeyCode::AudioVolumeUp, 0x1008_ff13),
        (KeyCode::MediaPlayPause, 0x1008_ff14),
        (KeyCode::MediaStop, 0x1008_ff15),
        (KeyCode::MediaTrackPrevious, 0x1008_ff16),
        (KeyCode::MediaTrackNext, 0x1008_ff17),
        (KeyCode::BrowserHome, 0x1008_ff18),
        (KeyCode::LaunchMail, 0x1008_ff19),
        (KeyCode::BrowserSearch, 0x1008_ff1b),
        (KeyCode::LaunchApp2, 0x1008_ff1d),
        (KeyCode::BrowserBack, 0x1008_ff26),
        (KeyCode::BrowserForward, 0x1008_ff27),
        // xkeyboard-config names evdev KEY_REFRESH "XF86Reload".
        (KeyCode::BrowserRefresh, 0x1008_ff73),
    ]);
    for f in 1..=12u32 {
        let code = KeyCode::from_w3c(&format!("F{f}")).expect("function key");
        expected.push((code, 0xffbe + f - 1));
    }
    let wrong: Vec<String> = expected
        .iter()
        .filter_map(|&(code, keysym)| {
            let got = observer.keysym_of(x11_keycode(code), false);
            (got != keysym).then(|| {
                format!(
                    "{code:?}: keycode {} has keysym {got:#x}, expected {keysym:#x}",
                    x11_keycode(code)
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn a_view_only_session_reaches_nothing_on_the_server() {
    let rig = Rig::start(320, 240);
    let mut config = SessionConfig::new(ScreenArea::at_origin(320, 240));
    config.view_only = true;
    let mut viewer = rig.session(config);
    viewer.send(InputEvent::PointerMove { x: 0, y: 0 });
    viewer.click(MouseButton::Left, 0, 0);
    viewer.tap(KeyCode::KeyA, Modifiers::NONE);
    viewer.send(InputEvent::Text("x".into()));
    // A marker from a controlling session: it must be the first thing the client sees.
    let mut controller = rig.session(SessionConfig::new(ScreenArea::at_origin(320, 240)));
    controller.send(InputEvent::PointerMove { x: 65535, y: 65535 });
    rig.settle();
    assert_eq!(rig.next(), Observed::Motion { x: 319, y: 239 });
    assert_eq!(rig.observer.keys_down().unwrap(), Vec::<u8>::new());
}

#[test]
fn text_comes_out_as_sent_when_the_puppet_has_caps_lock_on() {
    let rig = Rig::start(320, 240);
    let mut session = rig.session(SessionConfig::new(ScreenArea::at_origin(320, 240)));
    session.tap(KeyCode::CapsLock, Modifiers::CAPS_LOCK);
    rig.settle();
    assert_eq!(rig.observer.modifiers_on().unwrap() & 2, 2, "Caps Lock on");
    rig.next_key_press();

    session.send(InputEvent::Text("aé".into()));
    rig.settle();
    let caps = rtcdesk_input::keys::x11_keycode(KeyCode::CapsLock);
    let (first, _, _) = rig.next_key_press();
    assert_eq!(first, caps, "Caps Lock switched off first");
    for expected in ['a', 'é'] {
        let (_, keysym, state) = rig.next_key_press();
        assert_eq!(
            (keysym, state & 2),
            (u32::from(expected), 0),
            "{expected} without Lock"
        );
    }
    let (last, _, _) = rig.next_key_press();
    assert_eq!(last, caps, "and back on");
    assert_eq!(
        rig.observer.modifiers_on().unwrap() & 2,
        2,
        "Caps Lock on again"
    );
}
