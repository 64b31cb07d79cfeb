//! The controller's side: winit window events → input protocol v1 messages.
//!
//! [`WindowInput`] is sans-IO: feed it window events (or the plain values inside them) with the
//! current time, and poll the messages to send. It needs to know where the video picture is in
//! the window ([`PictureRect`], in physical pixels, as winit reports cursor positions), so that
//! positions are normalised to the picture as shown, letterbox bars excluded, whatever the
//! window's HiDPI scale factor.
//!
//! - **Pointer.** Moves inside the picture are sent; outside it nothing is sent, except while a
//!   button is held (a drag), when the position is clamped to the picture's edge.
//! - **Buttons.** Left, middle, right, back and forward; a press outside the picture is not sent
//!   (nor its release). Double clicks are sent as they happen, down/up/down/up, each with its
//!   position: the puppet's desktop recognises them from the timing, as it does locally.
//! - **Wheel.** Line deltas as 1/120ths of a line, pixel (touchpad) deltas as pixels of the
//!   picture; signs follow DOM `deltaY` (positive scrolls down), the opposite of winit's.
//! - **Keys.** By physical position (winit `KeyCode` → W3C `code`), with the modifier state after
//!   the event. Autorepeats are not sent: the puppet repeats a held key itself.
//! - **Text.** In [`KeyboardMode::Translate`] the text each layout-dependent key press types
//!   ([`keys::types_text`], repeats included) is sent after the key, unless the key is part of a
//!   shortcut ([`keys::is_shortcut`]); the puppet drops those keys and types the text. In both
//!   modes the text an input method commits is sent (enable IME on the window with
//!   `set_ime_allowed`).
//! - **Focus.** When the window loses focus, every key and button it sent as pressed is sent as
//!   released, so an Alt+Tab away leaves nothing stuck on the puppet.

use std::collections::{BTreeSet, VecDeque};

use rtcdesk_proto::input::{
    to_normalized, InputEvent, InputMessage, Modifiers, MouseButton, WheelUnit, MAX_TEXT,
};
use rtcdesk_proto::KeyCode;
use winit::event::{ElementState, Ime, MouseScrollDelta, WindowEvent};
use winit::keyboard::{Key, ModifiersState, NamedKey, PhysicalKey};

use crate::{keys, KeyboardMode};

/// Where the video picture is drawn in the window, in physical pixels (the unit of winit's
/// `CursorMoved` and `Resized`), with the size of the video it shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PictureRect {
    /// Left edge in the window.
    pub x: f64,
    /// Top edge in the window.
    pub y: f64,
    /// Width drawn.
    pub width: f64,
    /// Height drawn.
    pub height: f64,
    /// Width of the video frame in its own pixels.
    pub video_width: u32,
    /// Height of the video frame in its own pixels.
    pub video_height: u32,
}

impl PictureRect {
    /// The video scaled uniformly to fit a window of `window_width`×`window_height` physical
    /// pixels and centred, with bars on two sides (letterbox or pillarbox). `None` when either
    /// size is empty (a minimised window, no video yet).
    pub fn fit(
        window_width: u32,
        window_height: u32,
        video_width: u32,
        video_height: u32,
    ) -> Option<Self> {
        if window_width == 0 || window_height == 0 || video_width == 0 || video_height == 0 {
            return None;
        }
        let (ww, wh) = (f64::from(window_width), f64::from(window_height));
        let (vw, vh) = (f64::from(video_width), f64::from(video_height));
        let scale = (ww / vw).min(wh / vh);
        let (width, height) = (vw * scale, vh * scale);
        Some(Self {
            x: (ww - width) / 2.0,
            y: (wh - height) / 2.0,
            width,
            height,
            video_width,
            video_height,
        })
    }

    /// The picture exactly where a renderer drew it, from its clipping rectangle `(x, y, width,
    /// height)` in physical pixels: pixels' `ScalingRenderer::clip_rect()` gives this (that
    /// renderer scales by whole factors, so its picture can differ from [`Self::fit`]'s).
    pub fn from_clip_rect(clip: (u32, u32, u32, u32), video_width: u32, video_height: u32) -> Self {
        let (x, y, width, height) = clip;
        Self {
            x: f64::from(x),
            y: f64::from(y),
            width: f64::from(width),
            height: f64::from(height),
            video_width,
            video_height,
        }
    }

    /// A picture placed in logical units (a layout done in points, such as a grid of puppets)
    /// converted to physical pixels with the window's scale factor.
    pub fn from_logical(logical: PictureRect, scale_factor: f64) -> Self {
        Self {
            x: logical.x * scale_factor,
            y: logical.y * scale_factor,
            width: logical.width * scale_factor,
            height: logical.height * scale_factor,
            ..logical
        }
    }

    /// Whether the window pixel at (x, y) shows part of the picture.
    pub fn contains(&self, x: f64, y: f64) -> bool {
        let (cx, cy) = (x + 0.5, y + 0.5);
        cx >= self.x && cx < self.x + self.width && cy >= self.y && cy < self.y + self.height
    }

    /// The normalised position (0..=65535 each way) of the window pixel at (x, y), clamped to
    /// the picture. The picture's first and last window pixels map to the video's first and last
    /// pixels, so screen edges and corners stay reachable when the picture is shown smaller
    /// than the video.
    pub fn normalize(&self, x: f64, y: f64) -> (u16, u16) {
        let axis = |position: f64, origin: f64, drawn: f64, video: u32| {
            if drawn <= 1.0 {
                return 0;
            }
            let fraction = (position - origin) / (drawn - 1.0);
            to_normalized(fraction * f64::from(video.saturating_sub(1)), video)
        };
        (
            axis(x, self.x, self.width, self.video_width),
            axis(y, self.y, self.height, self.video_height),
        )
    }

    /// Window pixels per video pixel, horizontally.
    fn scale_x(&self) -> f64 {
        self.width / f64::from(self.video_width.max(1))
    }

    /// Window pixels per video pixel, vertically.
    fn scale_y(&self) -> f64 {
        self.height / f64::from(self.video_height.max(1))
    }
}

/// A key event reduced to the plain values the mapper needs (winit's `KeyEvent` cannot be built
/// outside winit, so tests use this and [`WindowInput::handle_window_event`] converts).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyInput<'a> {
    /// The key's physical position.
    pub physical_key: PhysicalKey,
    /// Down (true) or up.
    pub pressed: bool,
    /// An autorepeat of a held key.
    pub repeat: bool,
    /// The text the press typed, as winit reports it.
    pub text: Option<&'a str>,
    /// The key acts as AltGr (winit's logical key is `AltGraph`).
    pub alt_graph: bool,
}

/// The controller's input state for one window and one session: turns window events into input
/// messages (see the module docs for the rules).
#[derive(Debug)]
pub struct WindowInput {
    mode: KeyboardMode,
    picture: Option<PictureRect>,
    next_seq: u32,
    winit_modifiers: ModifiersState,
    held_keys: BTreeSet<KeyCode>,
    alt_graph_held: bool,
    held_buttons: [bool; 5],
    cursor: Option<(f64, f64)>,
    last_sent_position: Option<(u16, u16)>,
    out: VecDeque<InputMessage>,
}

fn proto_button(button: winit::event::MouseButton) -> Option<MouseButton> {
    match button {
        winit::event::MouseButton::Left => Some(MouseButton::Left),
        winit::event::MouseButton::Middle => Some(MouseButton::Middle),
        winit::event::MouseButton::Right => Some(MouseButton::Right),
        winit::event::MouseButton::Back => Some(MouseButton::Back),
        winit::event::MouseButton::Forward => Some(MouseButton::Forward),
        winit::event::MouseButton::Other(_) => None,
    }
}

fn clamp_i16(value: f64) -> i16 {
    value
        .round()
        .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

impl WindowInput {
    /// A mapper in `mode`, with no picture yet (nothing is sent until [`Self::set_picture`]).
    pub fn new(mode: KeyboardMode) -> Self {
        Self {
            mode,
            picture: None,
            next_seq: 1,
            winit_modifiers: ModifiersState::empty(),
            held_keys: BTreeSet::new(),
            alt_graph_held: false,
            held_buttons: [false; 5],
            cursor: None,
            last_sent_position: None,
            out: VecDeque::new(),
        }
    }

    /// Where the picture is now; call it once the window exists (from `inner_size()`: winit
    /// need not send an initial `Resized`), then on `Resized`, `ScaleFactorChanged` and when the
    /// video size changes. `None` (minimised, no video) stops pointer events.
    pub fn set_picture(&mut self, picture: Option<PictureRect>) {
        self.picture = picture;
    }

    /// The keyboard mode.
    pub fn mode(&self) -> KeyboardMode {
        self.mode
    }

    /// The next message to send, in order.
    pub fn poll_message(&mut self) -> Option<InputMessage> {
        self.out.pop_front()
    }

    /// Feeds one window event; `now_us` is the send time to stamp (microseconds since the Unix
    /// epoch). Events the mapper has no use for are ignored.
    pub fn handle_window_event(&mut self, event: &WindowEvent, now_us: u64) {
        match event {
            WindowEvent::CursorMoved { position, .. } => {
                self.cursor_moved(position.x, position.y, now_us)
            }
            WindowEvent::CursorLeft { .. } => self.cursor = None,
            WindowEvent::MouseInput { state, button, .. } => {
                self.mouse_input(*button, *state == ElementState::Pressed, now_us)
            }
            WindowEvent::MouseWheel { delta, .. } => self.mouse_wheel(*delta, now_us),
            WindowEvent::ModifiersChanged(modifiers) => self.modifiers_changed(modifiers.state()),
            WindowEvent::KeyboardInput { event, .. } => {
                let key = KeyInput {
                    physical_key: event.physical_key,
                    pressed: event.state == ElementState::Pressed,
                    repeat: event.repeat,
                    text: event.text.as_deref(),
                    alt_graph: matches!(event.logical_key, Key::Named(NamedKey::AltGraph)),
                };
                self.key(key, now_us);
            }
            WindowEvent::Ime(Ime::Commit(text)) => self.text(text, now_us),
            WindowEvent::Focused(false) => self.release_all(now_us),
            _ => {}
        }
    }

    /// The cursor is at (x, y) physical pixels in the window.
    pub fn cursor_moved(&mut self, x: f64, y: f64, now_us: u64) {
        self.cursor = Some((x, y));
        let Some(picture) = self.picture else { return };
        if !picture.contains(x, y) && !self.any_button_held() {
            return;
        }
        let position = picture.normalize(x, y);
        if self.last_sent_position == Some(position) {
            return;
        }
        self.last_sent_position = Some(position);
        self.send(
            InputEvent::PointerMove {
                x: position.0,
                y: position.1,
            },
            now_us,
        );
    }

    /// A mouse button went down or up where the cursor is.
    pub fn mouse_input(&mut self, button: winit::event::MouseButton, pressed: bool, now_us: u64) {
        let Some(button) = proto_button(button) else {
            return;
        };
        let index = usize::from(button.wire());
        if pressed {
            let Some(position) = self.position_inside() else {
                return;
            };
            self.held_buttons[index] = true;
            self.send_button(button, true, position, now_us);
        } else if std::mem::take(&mut self.held_buttons[index]) {
            let position = self.position_clamped();
            self.send_button(button, false, position, now_us);
        }
    }

    /// The wheel turned (or a touchpad scrolled) where the cursor is.
    pub fn mouse_wheel(&mut self, delta: MouseScrollDelta, now_us: u64) {
        let (Some(picture), Some((x, y))) = (self.picture, self.position_inside()) else {
            return;
        };
        // winit's positive deltas move the content right and down, that is scroll left and up.
        let (unit, dx, dy) = match delta {
            MouseScrollDelta::LineDelta(lines_x, lines_y) => (
                WheelUnit::Lines120,
                clamp_i16(-f64::from(lines_x) * 120.0),
                clamp_i16(-f64::from(lines_y) * 120.0),
            ),
            MouseScrollDelta::PixelDelta(pixels) => (
                WheelUnit::Pixels,
                clamp_i16(-pixels.x / picture.scale_x()),
                clamp_i16(-pixels.y / picture.scale_y()),
            ),
        };
        if dx == 0 && dy == 0 {
            return;
        }
        self.last_sent_position = Some((x, y));
        self.send(InputEvent::Wheel { x, y, unit, dx, dy }, now_us);
    }

    /// The modifier state winit reports changed.
    pub fn modifiers_changed(&mut self, state: ModifiersState) {
        self.winit_modifiers = state;
    }

    /// A key went down or up.
    pub fn key(&mut self, key: KeyInput<'_>, now_us: u64) {
        let PhysicalKey::Code(winit_code) = key.physical_key else {
            return;
        };
        let code = keys::from_winit(winit_code);
        if !key.repeat {
            if let Some(code) = code {
                if key.pressed {
                    self.held_keys.insert(code);
                    if code == KeyCode::AltRight {
                        self.alt_graph_held = key.alt_graph;
                    }
                } else {
                    self.held_keys.remove(&code);
                    if code == KeyCode::AltRight {
                        self.alt_graph_held = false;
                    }
                }
                let modifiers = self.modifiers_after(code, key.pressed);
                self.send(
                    InputEvent::Key {
                        code,
                        pressed: key.pressed,
                        modifiers,
                    },
                    now_us,
                );
            }
        }
        // The same rule the puppet applies: only layout-dependent keys, never shortcuts.
        let typed = key.text.filter(|text| {
            code.is_some_and(keys::types_text)
                && !text.is_empty()
                && !text.chars().any(char::is_control)
                && !keys::is_shortcut(self.modifiers())
        });
        if let (true, KeyboardMode::Translate, Some(text)) = (key.pressed, self.mode, typed) {
            let text = text.to_owned();
            self.text(&text, now_us);
        }
    }

    /// Text committed by an input method, or otherwise typed, to appear as it is.
    pub fn text(&mut self, text: &str, now_us: u64) {
        let mut rest = text;
        while !rest.is_empty() {
            let mut end = rest.len().min(MAX_TEXT);
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            self.send(InputEvent::Text(rest[..end].to_owned()), now_us);
            rest = &rest[end..];
        }
    }

    /// Sends a release for every key and button this window sent as pressed: the window lost
    /// focus, or the session is about to end.
    pub fn release_all(&mut self, now_us: u64) {
        let held_keys = std::mem::take(&mut self.held_keys);
        self.alt_graph_held = false;
        for code in held_keys {
            let modifiers = self.modifiers_after(code, false);
            self.send(
                InputEvent::Key {
                    code,
                    pressed: false,
                    modifiers,
                },
                now_us,
            );
        }
        for button in MouseButton::ALL {
            if std::mem::take(&mut self.held_buttons[usize::from(button.wire())]) {
                let position = self.position_clamped();
                self.send_button(button, false, position, now_us);
            }
        }
    }

    /// The modifiers held now: winit's state together with the modifier keys seen going down.
    pub fn modifiers(&self) -> Modifiers {
        let state = self.winit_modifiers;
        let held = |codes: &[KeyCode]| codes.iter().any(|code| self.held_keys.contains(code));
        let alt_key_held = self.held_keys.contains(&KeyCode::AltLeft)
            || (self.held_keys.contains(&KeyCode::AltRight) && !self.alt_graph_held);
        [
            (
                state.shift_key() || held(&[KeyCode::ShiftLeft, KeyCode::ShiftRight]),
                Modifiers::SHIFT,
            ),
            (
                state.control_key() || held(&[KeyCode::ControlLeft, KeyCode::ControlRight]),
                Modifiers::CONTROL,
            ),
            (state.alt_key() || alt_key_held, Modifiers::ALT),
            (
                state.super_key() || held(&[KeyCode::MetaLeft, KeyCode::MetaRight]),
                Modifiers::META,
            ),
            (self.alt_graph_held, Modifiers::ALT_GRAPH),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .fold(Modifiers::NONE, |all, (_, bit)| all | bit)
    }

    /// The modifier state right after `code` went down or up: winit may report the change
    /// before or after the key event, so a released modifier key clears its bit here unless its
    /// twin on the other side is still held.
    fn modifiers_after(&self, code: KeyCode, pressed: bool) -> Modifiers {
        let modifiers = self.modifiers();
        if pressed {
            return modifiers;
        }
        let (bit, twin) = match code {
            KeyCode::ShiftLeft => (Modifiers::SHIFT, KeyCode::ShiftRight),
            KeyCode::ShiftRight => (Modifiers::SHIFT, KeyCode::ShiftLeft),
            KeyCode::ControlLeft => (Modifiers::CONTROL, KeyCode::ControlRight),
            KeyCode::ControlRight => (Modifiers::CONTROL, KeyCode::ControlLeft),
            KeyCode::AltLeft | KeyCode::AltRight => (Modifiers::ALT, KeyCode::AltLeft),
            KeyCode::MetaLeft => (Modifiers::META, KeyCode::MetaRight),
            KeyCode::MetaRight => (Modifiers::META, KeyCode::MetaLeft),
            _ => return modifiers,
        };
        if self.held_keys.contains(&twin) {
            modifiers
        } else {
            modifiers.with(bit, false)
        }
    }

    fn any_button_held(&self) -> bool {
        self.held_buttons.iter().any(|held| *held)
    }

    /// The cursor's normalised position if it is over the picture.
    fn position_inside(&self) -> Option<(u16, u16)> {
        let picture = self.picture?;
        let (x, y) = self.cursor?;
        picture.contains(x, y).then(|| picture.normalize(x, y))
    }

    /// The cursor's normalised position clamped to the picture, or the last one sent.
    fn position_clamped(&self) -> (u16, u16) {
        match (self.picture, self.cursor) {
            (Some(picture), Some((x, y))) => picture.normalize(x, y),
            _ => self.last_sent_position.unwrap_or((0, 0)),
        }
    }

    fn send_button(
        &mut self,
        button: MouseButton,
        pressed: bool,
        position: (u16, u16),
        now_us: u64,
    ) {
        self.last_sent_position = Some(position);
        let modifiers = self.modifiers();
        self.send(
            InputEvent::Button {
                button,
                pressed,
                x: position.0,
                y: position.1,
                modifiers,
            },
            now_us,
        );
    }

    fn send(&mut self, event: InputEvent, now_us: u64) {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.out.push_back(InputMessage {
            seq,
            timestamp_us: now_us,
            event,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use winit::dpi::PhysicalPosition;
    use winit::event::DeviceId;

    fn drain(input: &mut WindowInput) -> Vec<InputEvent> {
        std::iter::from_fn(|| input.poll_message())
            .map(|message| message.event)
            .collect()
    }

    fn key_input(
        code: winit::keyboard::KeyCode,
        pressed: bool,
        text: Option<&str>,
    ) -> KeyInput<'_> {
        KeyInput {
            physical_key: PhysicalKey::Code(code),
            pressed,
            repeat: false,
            text,
            alt_graph: false,
        }
    }

    fn mapper_over(window: (u32, u32), video: (u32, u32), mode: KeyboardMode) -> WindowInput {
        let mut input = WindowInput::new(mode);
        input.set_picture(PictureRect::fit(window.0, window.1, video.0, video.1));
        input
    }

    #[test]
    fn a_same_size_picture_maps_pixels_one_to_one() {
        let picture = PictureRect::fit(1280, 720, 1280, 720).unwrap();
        assert_eq!(picture.normalize(0.0, 0.0), (0, 0));
        assert_eq!(picture.normalize(1279.0, 719.0), (65535, 65535));
        for px in [0u32, 1, 640, 1278] {
            let (x, _) = picture.normalize(f64::from(px), 0.0);
            assert_eq!(rtcdesk_proto::input::to_pixel(x, 1280), px);
        }
    }

    #[test]
    fn letterbox_bars_are_outside_the_picture() {
        // A 16:9 video in a taller window: 140-pixel bars above and below.
        let picture = PictureRect::fit(1280, 1000, 1280, 720).unwrap();
        assert_eq!((picture.y, picture.height), (140.0, 720.0));
        assert!(!picture.contains(10.0, 139.0));
        assert!(picture.contains(10.0, 140.0));
        assert!(!picture.contains(10.0, 860.0));
        assert_eq!(picture.normalize(0.0, 140.0), (0, 0));
        assert_eq!(picture.normalize(1279.0, 859.0), (65535, 65535));
        // Pillarbox: a 4:3 video in a wide window.
        let picture = PictureRect::fit(1600, 600, 800, 600).unwrap();
        assert_eq!((picture.x, picture.width), (400.0, 800.0));
        assert!(!picture.contains(399.0, 300.0));
        assert_eq!(picture.normalize(400.0, 0.0), (0, 0));
        assert_eq!(picture.normalize(1199.0, 599.0), (65535, 65535));
    }

    #[test]
    fn a_renderers_clip_rect_places_the_picture() {
        // A 640×360 video drawn at 2× in a 1400×800 window, centred: 60 and 40 pixel borders.
        let picture = PictureRect::from_clip_rect((60, 40, 1280, 720), 640, 360);
        assert!(!picture.contains(59.0, 100.0));
        assert_eq!(picture.normalize(60.0, 40.0), (0, 0));
        assert_eq!(picture.normalize(1339.0, 759.0), (65535, 65535));
    }

    #[test]
    fn hidpi_windows_map_physical_pixels_onto_video_pixels() {
        // Scale factor 2: a 640×360 logical window is 1280×720 physical, showing 640×360 video.
        let picture = PictureRect::fit(1280, 720, 640, 360).unwrap();
        // Physical pixel (201, 101) shows video pixel (100, 50).
        let (x, y) = picture.normalize(201.0, 101.0);
        assert_eq!(rtcdesk_proto::input::to_pixel(x, 640), 100);
        assert_eq!(rtcdesk_proto::input::to_pixel(y, 360), 50);
        assert_eq!(picture.normalize(1279.0, 719.0), (65535, 65535));
        // Scale 1.5 with a layout in logical units: a picture at logical (10, 20), 400×225,
        // showing a 1920×1080 video smaller than it is.
        let logical = PictureRect {
            x: 10.0,
            y: 20.0,
            width: 400.0,
            height: 225.0,
            video_width: 1920,
            video_height: 1080,
        };
        let physical = PictureRect::from_logical(logical, 1.5);
        assert_eq!(
            (physical.x, physical.y, physical.width),
            (15.0, 30.0, 600.0)
        );
        assert!(!physical.contains(14.0, 100.0));
        assert!(physical.contains(15.0, 100.0));
        // The edges stay reachable though one window pixel covers several video pixels.
        assert_eq!(physical.normalize(15.0, 30.0), (0, 0));
        assert_eq!(physical.normalize(614.0, 367.0), (65535, 65535));
        let (x, _) = physical.normalize(15.0 + 300.0, 30.0);
        let column = rtcdesk_proto::input::to_pixel(x, 1920);
        assert!(column.abs_diff(960) <= 2, "{column}");
    }

    #[test]
    fn pointer_outside_the_picture_is_not_sent_unless_dragging() {
        let mut input = mapper_over((1280, 1000), (1280, 720), KeyboardMode::Map);
        let device_id = DeviceId::dummy();
        let moved = |x, y| WindowEvent::CursorMoved {
            device_id,
            position: PhysicalPosition::new(x, y),
        };
        input.handle_window_event(&moved(100.0, 50.0), 1);
        assert!(drain(&mut input).is_empty(), "in the top bar");
        input.handle_window_event(&moved(0.0, 140.0), 2);
        assert_eq!(drain(&mut input), [InputEvent::PointerMove { x: 0, y: 0 }]);
        input.handle_window_event(
            &WindowEvent::MouseInput {
                device_id,
                state: ElementState::Pressed,
                button: winit::event::MouseButton::Left,
            },
            3,
        );
        input.handle_window_event(&moved(-40.0, 990.0), 4);
        input.handle_window_event(
            &WindowEvent::MouseInput {
                device_id,
                state: ElementState::Released,
                button: winit::event::MouseButton::Left,
            },
            5,
        );
        let events = drain(&mut input);
        assert_eq!(
            events,
            [
                InputEvent::Button {
                    button: MouseButton::Left,
                    pressed: true,
                    x: 0,
                    y: 0,
                    modifiers: Modifiers::NONE
                },
                InputEvent::PointerMove { x: 0, y: 65535 },
                InputEvent::Button {
                    button: MouseButton::Left,
                    pressed: false,
                    x: 0,
                    y: 65535,
                    modifiers: Modifiers::NONE
                },
            ]
        );
        // No longer dragging: outside is silent again; a press in the bar is not sent.
        input.handle_window_event(&moved(5.0, 995.0), 6);
        input.mouse_input(winit::event::MouseButton::Right, true, 7);
        input.mouse_input(winit::event::MouseButton::Right, false, 8);
        assert!(drain(&mut input).is_empty());
    }

    #[test]
    fn every_button_and_double_clicks_go_through_in_order_with_sequence_numbers() {
        let mut input = mapper_over((100, 100), (100, 100), KeyboardMode::Map);
        input.cursor_moved(50.0, 50.0, 1);
        use winit::event::MouseButton as W;
        for button in [
            W::Left,
            W::Left,
            W::Middle,
            W::Right,
            W::Back,
            W::Forward,
            W::Other(9),
        ] {
            input.mouse_input(button, true, 2);
            input.mouse_input(button, false, 3);
        }
        let messages: Vec<InputMessage> = std::iter::from_fn(|| input.poll_message()).collect();
        let seqs: Vec<u32> = messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=13).collect::<Vec<_>>());
        let buttons: Vec<(u8, bool)> = messages
            .iter()
            .filter_map(|m| match m.event {
                InputEvent::Button {
                    button, pressed, ..
                } => Some((button.wire(), pressed)),
                _ => None,
            })
            .collect();
        assert_eq!(
            buttons,
            [
                (0, true),
                (0, false),
                (0, true),
                (0, false),
                (1, true),
                (1, false),
                (2, true),
                (2, false),
                (3, true),
                (3, false),
                (4, true),
                (4, false)
            ]
        );
    }

    #[test]
    fn wheel_signs_follow_the_dom_and_pixels_are_picture_pixels() {
        // The window shows the video at twice its size.
        let mut input = mapper_over((200, 200), (100, 100), KeyboardMode::Map);
        input.cursor_moved(100.0, 100.0, 1);
        drain(&mut input);
        input.mouse_wheel(MouseScrollDelta::LineDelta(0.0, -1.0), 2);
        input.mouse_wheel(MouseScrollDelta::LineDelta(0.5, 0.0), 3);
        input.mouse_wheel(
            MouseScrollDelta::PixelDelta(PhysicalPosition::new(0.0, 30.0)),
            4,
        );
        let deltas: Vec<(WheelUnit, i16, i16)> = drain(&mut input)
            .into_iter()
            .filter_map(|event| match event {
                InputEvent::Wheel { unit, dx, dy, .. } => Some((unit, dx, dy)),
                _ => None,
            })
            .collect();
        assert_eq!(
            deltas,
            [
                (WheelUnit::Lines120, 0, 120),
                (WheelUnit::Lines120, -60, 0),
                (WheelUnit::Pixels, 0, -15)
            ]
        );
    }

    #[test]
    fn keys_carry_position_and_the_modifiers_after_the_event() {
        use winit::keyboard::KeyCode as W;
        let mut input = WindowInput::new(KeyboardMode::Map);
        input.key(key_input(W::ControlLeft, true, None), 1);
        input.key(key_input(W::KeyC, true, Some("\u{3}")), 2);
        input.key(
            KeyInput {
                repeat: true,
                ..key_input(W::KeyC, true, Some("\u{3}"))
            },
            3,
        );
        input.key(key_input(W::KeyC, false, None), 4);
        input.key(key_input(W::ControlLeft, false, None), 5);
        input.key(key_input(W::SuperLeft, true, None), 6);
        input.key(key_input(W::Fn, true, None), 7);
        let ctrl = Modifiers::CONTROL;
        let key = |code, pressed, modifiers| InputEvent::Key {
            code,
            pressed,
            modifiers,
        };
        assert_eq!(
            drain(&mut input),
            [
                key(KeyCode::ControlLeft, true, ctrl),
                key(KeyCode::KeyC, true, ctrl),
                key(KeyCode::KeyC, false, ctrl),
                key(KeyCode::ControlLeft, false, Modifiers::NONE),
                key(KeyCode::MetaLeft, true, Modifiers::META),
            ]
        );
    }

    #[test]
    fn translate_mode_sends_typed_text_but_not_for_shortcuts() {
        use winit::keyboard::KeyCode as W;
        let mut input = WindowInput::new(KeyboardMode::Translate);
        input.key(key_input(W::KeyQ, true, Some("a")), 1);
        input.key(
            KeyInput {
                repeat: true,
                ..key_input(W::KeyQ, true, Some("a"))
            },
            2,
        );
        input.key(key_input(W::KeyQ, false, None), 3);
        input.key(key_input(W::ControlLeft, true, None), 4);
        input.key(key_input(W::KeyV, true, Some("v")), 5);
        let events = drain(&mut input);
        let texts: Vec<&InputEvent> = events
            .iter()
            .filter(|e| matches!(e, InputEvent::Text(_)))
            .collect();
        assert_eq!(
            texts,
            [&InputEvent::Text("a".into()), &InputEvent::Text("a".into())]
        );
        assert_eq!(events.len(), 6, "{events:?}");
        // The numpad goes by position only: no text, whatever it typed.
        input.key(key_input(W::ControlLeft, false, None), 6);
        drain(&mut input);
        input.key(key_input(W::Numpad4, true, Some("4")), 7);
        assert_eq!(drain(&mut input).len(), 1, "the key, without text");
        // Map mode sends no key text, only IME commits.
        let mut input = WindowInput::new(KeyboardMode::Map);
        input.key(key_input(W::KeyQ, true, Some("a")), 1);
        input.handle_window_event(&WindowEvent::Ime(Ime::Commit("日本".into())), 2);
        let events = drain(&mut input);
        assert_eq!(events[1..], [InputEvent::Text("日本".into())]);
    }

    #[test]
    fn altgr_is_reported_as_alt_graph_not_alt() {
        use winit::keyboard::KeyCode as W;
        let mut input = WindowInput::new(KeyboardMode::Translate);
        input.key(
            KeyInput {
                alt_graph: true,
                ..key_input(W::AltRight, true, None)
            },
            1,
        );
        input.key(key_input(W::KeyQ, true, Some("@")), 2);
        let events = drain(&mut input);
        assert_eq!(
            events,
            [
                InputEvent::Key {
                    code: KeyCode::AltRight,
                    pressed: true,
                    modifiers: Modifiers::ALT_GRAPH
                },
                InputEvent::Key {
                    code: KeyCode::KeyQ,
                    pressed: true,
                    modifiers: Modifiers::ALT_GRAPH
                },
                InputEvent::Text("@".into()),
            ]
        );
    }

    #[test]
    fn long_ime_text_is_split_at_character_boundaries() {
        let mut input = WindowInput::new(KeyboardMode::Map);
        let text = "é".repeat(MAX_TEXT);
        input.text(&text, 1);
        let parts: Vec<String> = drain(&mut input)
            .into_iter()
            .map(|event| match event {
                InputEvent::Text(part) => part,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|part| part.len() <= MAX_TEXT));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn losing_focus_releases_what_the_window_pressed() {
        use winit::keyboard::KeyCode as W;
        let mut input = mapper_over((100, 100), (100, 100), KeyboardMode::Map);
        input.cursor_moved(10.0, 10.0, 1);
        input.key(key_input(W::AltLeft, true, None), 2);
        input.mouse_input(winit::event::MouseButton::Left, true, 3);
        drain(&mut input);
        input.handle_window_event(&WindowEvent::Focused(false), 4);
        let events = drain(&mut input);
        assert!(matches!(
            events[0],
            InputEvent::Key {
                code: KeyCode::AltLeft,
                pressed: false,
                ..
            }
        ));
        assert!(matches!(
            events[1],
            InputEvent::Button {
                button: MouseButton::Left,
                pressed: false,
                ..
            }
        ));
        assert_eq!(events.len(), 2);
    }
}
