//! The puppet's injection policy, sans-IO: input messages in, [`Action`]s out.
//!
//! [`InputSession`] decides, for one controller's session, what the puppet's desktop should see:
//! it drops everything for view-only sessions, drops pointer moves older than the newest
//! positioned event seen (move, button or wheel; sequence numbers wrap), maps normalised
//! coordinates onto the captured screen area, applies the keyboard mode, turns wheel deltas into
//! wheel notches, and remembers every key and button it pressed so that [`InputSession::end`]
//! can release them all. It does no I/O and reads no clock; an
//! [`crate::Injector`] carries the actions out.

use std::collections::{BTreeSet, VecDeque};

use rtcdesk_proto::input::{to_pixel, InputEvent, InputMessage, Modifiers, MouseButton, WheelUnit};
use rtcdesk_proto::KeyCode;

use crate::keys;

/// One thing to do on the puppet's desktop, already decided by policy; an [`crate::Injector`]
/// only carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Put the pointer at a desktop pixel. The normalised position it came from travels along so
    /// an injector that works in picture coordinates (the synthetic desktop) needs no geometry.
    MoveTo {
        /// Desktop pixel column (the captured area's origin included).
        x: i32,
        /// Desktop pixel row (the captured area's origin included).
        y: i32,
        /// The same column, normalised to the captured picture (0..=65535).
        x_norm: u16,
        /// The same row, normalised to the captured picture (0..=65535).
        y_norm: u16,
    },
    /// Press or release a mouse button where the pointer is.
    Button {
        /// Which button.
        button: MouseButton,
        /// Down (true) or up.
        pressed: bool,
    },
    /// Turn the wheel by whole notches where the pointer is.
    Scroll {
        /// Notches to the right (negative: left).
        dx: i32,
        /// Notches down, towards the end of a document (negative: up), as DOM `deltaY`.
        dy: i32,
    },
    /// Press or release the key at this physical position.
    Key {
        /// Which key.
        code: KeyCode,
        /// Down (true) or up.
        pressed: bool,
    },
    /// Type this text as it is, whatever the puppet's layout (never contains control characters).
    Text(String),
}

/// Where the captured picture lies on the puppet's desktop, in desktop pixels: with several
/// monitors the capture covers one of them, whose top-left corner is not (0, 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenArea {
    /// Left edge in desktop pixels.
    pub x: i32,
    /// Top edge in desktop pixels.
    pub y: i32,
    /// Width of the captured picture in pixels.
    pub width: u32,
    /// Height of the captured picture in pixels.
    pub height: u32,
}

impl ScreenArea {
    /// A single screen of this size at the desktop's origin.
    pub fn at_origin(width: u32, height: u32) -> Self {
        Self {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    /// The desktop pixel for a normalised position in the picture.
    pub fn to_desktop(&self, x_norm: u16, y_norm: u16) -> (i32, i32) {
        let column = i64::from(to_pixel(x_norm, self.width));
        let row = i64::from(to_pixel(y_norm, self.height));
        (
            saturate_i32(i64::from(self.x) + column),
            saturate_i32(i64::from(self.y) + row),
        )
    }
}

fn saturate_i32(value: i64) -> i32 {
    value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// How key events become keys on the puppet: the mode the controller announces on the control
/// channel, one type for the wire and both sides. The controller's `window::WindowInput` must
/// use the same mode, because it decides whether typed characters also travel as text. In
/// [`KeyboardMode::Translate`], keys that type text ([`keys::types_text`]) are dropped unless
/// they are part of a shortcut ([`keys::is_shortcut`]) and the text events carry the characters
/// instead; Caps Lock and AltGr are not forwarded (the controller already applied them); all other
/// keys go by position; held Shift keys are lifted while text is typed so it arrives unshifted.
pub use rtcdesk_proto::control::KeyboardMode;

/// What a session is allowed to do and where its picture is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// View-only sessions inject nothing at all.
    pub view_only: bool,
    /// How keys are injected.
    pub keyboard: KeyboardMode,
    /// Where the captured picture lies on the desktop.
    pub screen: ScreenArea,
    /// Pixels of smooth (touchpad) scrolling that make one wheel notch; X only knows notches.
    pub pixels_per_notch: u16,
    /// The most notches one wheel event may turn; the rest is dropped so that one absurd delta
    /// cannot keep the injector busy for seconds.
    pub max_notches_per_event: u16,
}

impl SessionConfig {
    /// A full-control session in map mode over `screen`, with the default wheel scaling.
    pub fn new(screen: ScreenArea) -> Self {
        Self {
            view_only: false,
            keyboard: KeyboardMode::Map,
            screen,
            pixels_per_notch: DEFAULT_PIXELS_PER_NOTCH,
            max_notches_per_event: DEFAULT_MAX_NOTCHES,
        }
    }
}

/// 1/120ths of a line per notch, as the input protocol defines.
const LINES120_PER_NOTCH: i32 = 120;
/// Pixels per notch by default: about what one notch scrolls in a browser on Linux.
pub const DEFAULT_PIXELS_PER_NOTCH: u16 = 50;
/// Notches per wheel event at most, by default.
pub const DEFAULT_MAX_NOTCHES: u16 = 10;

/// Counts of what the session did with the events it received, for stats and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages handed to [`InputSession::handle_message`].
    pub received: u64,
    /// Messages dropped because the session is view-only or has ended.
    pub refused: u64,
    /// Pointer moves dropped as older than the newest positioned event (move, button, wheel)
    /// seen: pointer moves travel unordered, so an old one must not undo a newer position.
    pub stale_moves: u64,
    /// Pointer moves dropped because the pointer was already there.
    pub unmoved: u64,
    /// Key events dropped by the keyboard mode (text keys in translate mode), repeats of held
    /// keys, and releases of keys that were not pressed.
    pub filtered_keys: u64,
}

/// Which wheel remainder is being accumulated.
#[derive(Debug, Clone, Copy, Default)]
struct WheelRemainder {
    unit: Option<WheelUnit>,
    dx: i32,
    dy: i32,
}

/// One controller's input session on the puppet: the injection policy, fed with messages and
/// drained of actions (str0m-style: [`Self::handle_message`] in, [`Self::poll_action`] out).
#[derive(Debug)]
pub struct InputSession {
    config: SessionConfig,
    /// The newest sequence number of an event that placed the pointer (move, button, wheel).
    newest_position_seq: Option<u32>,
    pointer: Option<(i32, i32)>,
    held_keys: BTreeSet<KeyCode>,
    held_buttons: [bool; 5],
    wheel: WheelRemainder,
    actions: VecDeque<Action>,
    stats: SessionStats,
    ended: bool,
}

/// Which events place the pointer.
trait Positional {
    fn has_position(&self) -> bool;
}

impl Positional for InputEvent {
    fn has_position(&self) -> bool {
        matches!(
            self,
            InputEvent::PointerMove { .. } | InputEvent::Button { .. } | InputEvent::Wheel { .. }
        )
    }
}

/// Whether sequence number `a` comes after `b`, with wrap-around (RFC 1982-style: within half
/// the number space ahead).
pub fn seq_is_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl InputSession {
    /// A fresh session: nothing held, no event seen.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            newest_position_seq: None,
            pointer: None,
            held_keys: BTreeSet::new(),
            held_buttons: [false; 5],
            wheel: WheelRemainder::default(),
            actions: VecDeque::new(),
            stats: SessionStats::default(),
            ended: false,
        }
    }

    /// The session's configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Moves the picture on the desktop (the captured monitor changed); later positions map
    /// onto the new area.
    pub fn set_screen(&mut self, screen: ScreenArea) {
        self.config.screen = screen;
        self.pointer = None;
    }

    /// What happened so far.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Keys this session pressed and has not released yet.
    pub fn held_keys(&self) -> impl Iterator<Item = KeyCode> + '_ {
        self.held_keys.iter().copied()
    }

    /// Buttons this session pressed and has not released yet.
    pub fn held_buttons(&self) -> impl Iterator<Item = MouseButton> + '_ {
        MouseButton::ALL
            .into_iter()
            .filter(|button| self.held_buttons[usize::from(button.wire())])
    }

    /// Whether [`Self::end`] was called.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Takes one message from the controller and queues the actions it calls for.
    pub fn handle_message(&mut self, message: &InputMessage) {
        self.stats.received += 1;
        if self.ended || self.config.view_only {
            self.stats.refused += 1;
            return;
        }
        if message.event.has_position() {
            let is_newest = self
                .newest_position_seq
                .is_none_or(|newest| seq_is_newer(message.seq, newest));
            if !is_newest && message.event.is_droppable() {
                self.stats.stale_moves += 1;
                return;
            }
            if is_newest {
                self.newest_position_seq = Some(message.seq);
            }
        }
        match &message.event {
            InputEvent::PointerMove { x, y } => self.move_to(*x, *y),
            InputEvent::Button {
                button,
                pressed,
                x,
                y,
                ..
            } => {
                self.move_to(*x, *y);
                self.button(*button, *pressed);
            }
            InputEvent::Wheel { x, y, unit, dx, dy } => {
                self.move_to(*x, *y);
                self.wheel(*unit, *dx, *dy);
            }
            InputEvent::Key {
                code,
                pressed,
                modifiers,
            } => self.key(*code, *pressed, *modifiers),
            InputEvent::Text(text) => self.text(text),
        }
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Ends the session: drops actions not yet polled, then queues the release of every key and
    /// button the session still holds. Later messages are refused. Call it when the controller
    /// leaves, the connection drops, or the injector cannot keep up.
    pub fn end(&mut self) {
        self.ended = true;
        self.actions.clear();
        let keys = std::mem::take(&mut self.held_keys);
        for code in keys {
            self.actions.push_back(Action::Key {
                code,
                pressed: false,
            });
        }
        for button in MouseButton::ALL {
            let held = &mut self.held_buttons[usize::from(button.wire())];
            if std::mem::take(held) {
                self.actions.push_back(Action::Button {
                    button,
                    pressed: false,
                });
            }
        }
    }

    fn move_to(&mut self, x_norm: u16, y_norm: u16) {
        let (x, y) = self.config.screen.to_desktop(x_norm, y_norm);
        if self.pointer == Some((x, y)) {
            self.stats.unmoved += 1;
            return;
        }
        self.pointer = Some((x, y));
        self.actions.push_back(Action::MoveTo {
            x,
            y,
            x_norm,
            y_norm,
        });
    }

    fn button(&mut self, button: MouseButton, pressed: bool) {
        let held = &mut self.held_buttons[usize::from(button.wire())];
        // A second press without a release, or a release without a press, would leave the
        // desktop and our bookkeeping disagreeing; skip it.
        if *held == pressed {
            return;
        }
        *held = pressed;
        self.actions.push_back(Action::Button { button, pressed });
    }

    fn wheel(&mut self, unit: WheelUnit, dx: i16, dy: i16) {
        if self.wheel.unit != Some(unit) {
            self.wheel = WheelRemainder {
                unit: Some(unit),
                dx: 0,
                dy: 0,
            };
        }
        let per_notch = match unit {
            WheelUnit::Lines120 => LINES120_PER_NOTCH,
            WheelUnit::Pixels => i32::from(self.config.pixels_per_notch.max(1)),
        };
        let limit = i32::from(self.config.max_notches_per_event);
        let (notches_x, rest_x) = notches(self.wheel.dx + i32::from(dx), per_notch, limit);
        let (notches_y, rest_y) = notches(self.wheel.dy + i32::from(dy), per_notch, limit);
        self.wheel.dx = rest_x;
        self.wheel.dy = rest_y;
        if notches_x != 0 || notches_y != 0 {
            self.actions.push_back(Action::Scroll {
                dx: notches_x,
                dy: notches_y,
            });
        }
    }

    fn key(&mut self, code: KeyCode, pressed: bool, modifiers: Modifiers) {
        if !pressed {
            // A release goes out exactly when its press did, whatever the modifiers are now.
            if self.held_keys.remove(&code) {
                self.actions.push_back(Action::Key {
                    code,
                    pressed: false,
                });
            } else {
                self.stats.filtered_keys += 1;
            }
            return;
        }
        // Autorepeat is the puppet's own: a held key repeats there as it would locally.
        if self.held_keys.contains(&code) || !self.forwards_key(code, modifiers) {
            self.stats.filtered_keys += 1;
            return;
        }
        self.held_keys.insert(code);
        self.actions.push_back(Action::Key {
            code,
            pressed: true,
        });
    }

    /// The keyboard mode's rule for a key press.
    fn forwards_key(&self, code: KeyCode, modifiers: Modifiers) -> bool {
        match self.config.keyboard {
            KeyboardMode::Map => true,
            KeyboardMode::Translate => {
                let typing = keys::types_text(code) && !keys::is_shortcut(modifiers);
                let lock_or_level = code == KeyCode::CapsLock
                    || (code == KeyCode::AltRight && modifiers.contains(Modifiers::ALT_GRAPH));
                !typing && !lock_or_level
            }
        }
    }

    fn text(&mut self, text: &str) {
        let printable: String = text.chars().filter(|c| !c.is_control()).collect();
        if printable.is_empty() {
            return;
        }
        let shifts: Vec<KeyCode> = self
            .held_keys
            .iter()
            .copied()
            .filter(|code| keys::is_shift(*code))
            .collect();
        for &code in &shifts {
            self.actions.push_back(Action::Key {
                code,
                pressed: false,
            });
        }
        self.actions.push_back(Action::Text(printable));
        for &code in &shifts {
            self.actions.push_back(Action::Key {
                code,
                pressed: true,
            });
        }
    }
}

/// Whole notches in `amount` (at most `limit` either way) and the remainder to carry.
fn notches(amount: i32, per_notch: i32, limit: i32) -> (i32, i32) {
    let whole = amount / per_notch;
    let rest = amount % per_notch;
    (whole.clamp(-limit, limit), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCREEN: ScreenArea = ScreenArea {
        x: 0,
        y: 0,
        width: 1281,
        height: 721,
    };

    struct Scenario {
        session: InputSession,
        seq: u32,
    }

    impl Scenario {
        fn new(config: SessionConfig) -> Self {
            Self {
                session: InputSession::new(config),
                seq: 0,
            }
        }

        fn map() -> Self {
            Self::new(SessionConfig::new(SCREEN))
        }

        fn translate() -> Self {
            let mut config = SessionConfig::new(SCREEN);
            config.keyboard = KeyboardMode::Translate;
            Self::new(config)
        }

        /// Sends `event` with the next sequence number; returns the actions it caused.
        fn send(&mut self, event: InputEvent) -> Vec<Action> {
            self.seq = self.seq.wrapping_add(1);
            self.send_with_seq(self.seq, event)
        }

        fn send_with_seq(&mut self, seq: u32, event: InputEvent) -> Vec<Action> {
            self.session.handle_message(&InputMessage {
                seq,
                timestamp_us: 0,
                event,
            });
            std::iter::from_fn(|| self.session.poll_action()).collect()
        }

        fn end(&mut self) -> Vec<Action> {
            self.session.end();
            std::iter::from_fn(|| self.session.poll_action()).collect()
        }
    }

    fn key(code: KeyCode, pressed: bool, modifiers: Modifiers) -> InputEvent {
        InputEvent::Key {
            code,
            pressed,
            modifiers,
        }
    }

    fn press(code: KeyCode) -> Action {
        Action::Key {
            code,
            pressed: true,
        }
    }

    fn release(code: KeyCode) -> Action {
        Action::Key {
            code,
            pressed: false,
        }
    }

    fn button(button: MouseButton, pressed: bool, x: u16, y: u16) -> InputEvent {
        InputEvent::Button {
            button,
            pressed,
            x,
            y,
            modifiers: Modifiers::NONE,
        }
    }

    #[test]
    fn normalised_positions_land_on_the_captured_monitor() {
        let mut config = SessionConfig::new(ScreenArea {
            x: 1920,
            y: 120,
            width: 1281,
            height: 721,
        });
        config.keyboard = KeyboardMode::Map;
        let mut scenario = Scenario::new(config);
        let actions = scenario.send(InputEvent::PointerMove { x: 32768, y: 65535 });
        assert_eq!(
            actions,
            [Action::MoveTo {
                x: 1920 + 640,
                y: 120 + 720,
                x_norm: 32768,
                y_norm: 65535
            }]
        );
    }

    #[test]
    fn view_only_sessions_inject_nothing() {
        let mut config = SessionConfig::new(SCREEN);
        config.view_only = true;
        let mut scenario = Scenario::new(config);
        assert!(scenario
            .send(InputEvent::PointerMove { x: 1, y: 1 })
            .is_empty());
        assert!(scenario
            .send(button(MouseButton::Left, true, 0, 0))
            .is_empty());
        assert!(scenario
            .send(key(KeyCode::KeyA, true, Modifiers::NONE))
            .is_empty());
        assert!(scenario.send(InputEvent::Text("x".into())).is_empty());
        assert!(scenario.end().is_empty());
        assert_eq!(scenario.session.stats().refused, 4);
    }

    #[test]
    fn a_pointer_move_older_than_the_newest_positioned_event_is_dropped() {
        let mut scenario = Scenario::map();
        assert_eq!(
            scenario
                .send_with_seq(10, InputEvent::PointerMove { x: 0, y: 0 })
                .len(),
            1
        );
        // The click at seq 12 arrived (reliable channel) before the move at seq 11.
        let click = scenario.send_with_seq(12, button(MouseButton::Left, true, 65535, 65535));
        assert_eq!(click.len(), 2, "{click:?}");
        let late = scenario.send_with_seq(11, InputEvent::PointerMove { x: 100, y: 100 });
        assert!(late.is_empty(), "{late:?}");
        assert_eq!(scenario.session.stats().stale_moves, 1);
        // A key carries no position: a move sent before it but arriving after still counts.
        scenario.send_with_seq(14, key(KeyCode::KeyA, true, Modifiers::NONE));
        let before_key = scenario.send_with_seq(13, InputEvent::PointerMove { x: 100, y: 100 });
        assert_eq!(before_key.len(), 1, "{before_key:?}");
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        assert!(seq_is_newer(0, u32::MAX));
        assert!(seq_is_newer(5, u32::MAX - 5));
        assert!(!seq_is_newer(u32::MAX, 0));
        let mut scenario = Scenario::map();
        scenario.send_with_seq(u32::MAX, InputEvent::PointerMove { x: 0, y: 0 });
        let after_wrap = scenario.send_with_seq(1, InputEvent::PointerMove { x: 9000, y: 0 });
        assert_eq!(after_wrap.len(), 1, "a move after the wrap is newer");
        let before_wrap =
            scenario.send_with_seq(u32::MAX - 1, InputEvent::PointerMove { x: 1, y: 1 });
        assert!(
            before_wrap.is_empty(),
            "a move from before the wrap is older"
        );
    }

    #[test]
    fn clicks_carry_their_position_and_double_clicks_pass_through() {
        let mut scenario = Scenario::map();
        let mut actions = Vec::new();
        for pressed in [true, false, true, false] {
            actions.extend(scenario.send(button(MouseButton::Left, pressed, 0, 65535)));
        }
        assert_eq!(
            actions,
            [
                Action::MoveTo {
                    x: 0,
                    y: 720,
                    x_norm: 0,
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
                Action::Button {
                    button: MouseButton::Left,
                    pressed: true
                },
                Action::Button {
                    button: MouseButton::Left,
                    pressed: false
                },
            ]
        );
    }

    #[test]
    fn wheel_deltas_become_notches_with_the_remainder_carried() {
        let mut scenario = Scenario::map();
        let wheel = |unit, dx, dy| InputEvent::Wheel {
            x: 0,
            y: 0,
            unit,
            dx,
            dy,
        };
        let first = scenario.send(wheel(WheelUnit::Lines120, 0, 240));
        assert_eq!(first.last(), Some(&Action::Scroll { dx: 0, dy: 2 }));
        // Half notches add up.
        assert!(scenario.send(wheel(WheelUnit::Lines120, 0, -60)).is_empty());
        assert_eq!(
            scenario.send(wheel(WheelUnit::Lines120, 0, -60)),
            [Action::Scroll { dx: 0, dy: -1 }]
        );
        // Pixels: 50 per notch by default; a huge delta is capped.
        assert_eq!(
            scenario.send(wheel(WheelUnit::Pixels, -100, 30)),
            [Action::Scroll { dx: -2, dy: 0 }]
        );
        assert_eq!(
            scenario.send(wheel(WheelUnit::Pixels, 0, i16::MAX)),
            [Action::Scroll { dx: 0, dy: 10 }]
        );
    }

    #[test]
    fn map_mode_presses_every_key_by_position_and_ignores_repeats() {
        let mut scenario = Scenario::map();
        assert_eq!(
            scenario.send(key(KeyCode::KeyQ, true, Modifiers::NONE)),
            [press(KeyCode::KeyQ)]
        );
        assert!(scenario
            .send(key(KeyCode::KeyQ, true, Modifiers::NONE))
            .is_empty());
        assert_eq!(
            scenario.send(key(KeyCode::KeyQ, false, Modifiers::NONE)),
            [release(KeyCode::KeyQ)]
        );
        assert!(scenario
            .send(key(KeyCode::KeyQ, false, Modifiers::NONE))
            .is_empty());
    }

    #[test]
    fn translate_mode_types_text_and_keeps_shortcuts_and_editing_keys_positional() {
        let mut scenario = Scenario::translate();
        // Typing "a": the key is dropped, the text is typed.
        assert!(scenario
            .send(key(KeyCode::KeyA, true, Modifiers::NONE))
            .is_empty());
        assert_eq!(
            scenario.send(InputEvent::Text("a".into())),
            [Action::Text("a".into())]
        );
        assert!(scenario
            .send(key(KeyCode::KeyA, false, Modifiers::NONE))
            .is_empty());
        // Enter goes by position.
        assert_eq!(
            scenario.send(key(KeyCode::Enter, true, Modifiers::NONE)),
            [press(KeyCode::Enter)]
        );
        // Ctrl+C goes by position.
        let ctrl = Modifiers::CONTROL;
        assert_eq!(
            scenario.send(key(KeyCode::ControlLeft, true, ctrl)),
            [press(KeyCode::ControlLeft)]
        );
        assert_eq!(
            scenario.send(key(KeyCode::KeyC, true, ctrl)),
            [press(KeyCode::KeyC)]
        );
        // Ctrl released before C: C's release still follows its press.
        assert_eq!(
            scenario.send(key(KeyCode::ControlLeft, false, Modifiers::NONE)),
            [release(KeyCode::ControlLeft)]
        );
        assert_eq!(
            scenario.send(key(KeyCode::KeyC, false, Modifiers::NONE)),
            [release(KeyCode::KeyC)]
        );
        // AltGr+Q typing "@" and Caps Lock stay on the controller.
        let altgr = Modifiers::ALT_GRAPH;
        assert!(scenario
            .send(key(KeyCode::AltRight, true, altgr))
            .is_empty());
        assert!(scenario.send(key(KeyCode::KeyQ, true, altgr)).is_empty());
        assert!(scenario
            .send(key(KeyCode::CapsLock, true, Modifiers::CAPS_LOCK))
            .is_empty());
    }

    #[test]
    fn translate_mode_lifts_shift_while_typing_text() {
        let mut scenario = Scenario::translate();
        let shift = Modifiers::SHIFT;
        assert_eq!(
            scenario.send(key(KeyCode::ShiftLeft, true, shift)),
            [press(KeyCode::ShiftLeft)]
        );
        assert!(scenario.send(key(KeyCode::Digit7, true, shift)).is_empty());
        assert_eq!(
            scenario.send(InputEvent::Text("/".into())),
            [
                release(KeyCode::ShiftLeft),
                Action::Text("/".into()),
                press(KeyCode::ShiftLeft)
            ]
        );
    }

    #[test]
    fn control_characters_never_reach_the_desktop() {
        let mut scenario = Scenario::map();
        assert!(scenario.send(InputEvent::Text("\u{3}\n".into())).is_empty());
        assert_eq!(
            scenario.send(InputEvent::Text("é\u{7f}!".into())),
            [Action::Text("é!".into())]
        );
    }

    #[test]
    fn ending_releases_everything_held_and_refuses_more() {
        let mut scenario = Scenario::map();
        scenario.send(key(KeyCode::ShiftLeft, true, Modifiers::SHIFT));
        scenario.send(key(KeyCode::KeyW, true, Modifiers::SHIFT));
        scenario.send(button(MouseButton::Right, true, 5, 5));
        // Queued but not yet polled actions are dropped in favour of the releases.
        scenario.session.handle_message(&InputMessage {
            seq: 100,
            timestamp_us: 0,
            event: InputEvent::Text("late".into()),
        });
        let releases = scenario.end();
        assert_eq!(
            releases,
            [
                release(KeyCode::KeyW),
                release(KeyCode::ShiftLeft),
                Action::Button {
                    button: MouseButton::Right,
                    pressed: false
                }
            ]
        );
        assert_eq!(scenario.session.held_keys().count(), 0);
        assert_eq!(scenario.session.held_buttons().count(), 0);
        assert!(scenario
            .send(key(KeyCode::KeyA, true, Modifiers::NONE))
            .is_empty());
        assert!(scenario.end().is_empty(), "nothing left to release");
    }
}
