//! The synthetic desktop: a deterministic screen of any size that looks like a desktop and is
//! also an input sink, so the whole pipeline (and its latency) can be tested without a display.
//!
//! It shows a top bar (frame stamp, held mouse buttons, held keys), a window with text rows that
//! scrolls on demand, a text field showing what was typed, a region that animates on demand, and
//! a red pointer marker where pointer events put it. A frame is produced only when something
//! changed, each change wakes a capture thread waiting for one, and each frame carries its frame number and capture time in a [`crate::stamp`] block code.
//!
//! The input API is plain on purpose (the input crate adapts protocol events to it):
//! [`SyntheticDesktop::pointer_to`] (coordinates normalized to 0..=65535),
//! [`SyntheticDesktop::button`], [`SyntheticDesktop::key`] (W3C `KeyboardEvent.code` names),
//! [`SyntheticDesktop::text`] and [`SyntheticDesktop::scroll`].

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Capture;
use crate::error::Result;
use crate::frame::{unix_micros_now, Frame, I420View};
use crate::stamp::{draw_stamp, fill, Stamp, StampLayout};

/// A mouse button, as the protocol names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Button {
    /// Primary.
    Left,
    /// Wheel button.
    Middle,
    /// Secondary.
    Right,
    /// Browser back.
    Back,
    /// Browser forward.
    Forward,
}

impl Button {
    const ALL: [Button; 5] = [
        Button::Left,
        Button::Middle,
        Button::Right,
        Button::Back,
        Button::Forward,
    ];
}

/// The pointer marker's colour: pure red, which nothing else on the desktop uses, so it is found
/// in a decoded picture by its chroma.
const POINTER_BGR: [u8; 3] = [0, 0, 255];
const DESKTOP_BGR: [u8; 3] = [110, 80, 30];
const BAR_BGR: [u8; 3] = [40, 40, 40];
const TITLE_BGR: [u8; 3] = [140, 100, 60];
const PAPER_BGR: [u8; 3] = [245, 245, 245];
const INK_BGR: [u8; 3] = [30, 30, 30];
const FIELD_BGR: [u8; 3] = [200, 245, 250];
const HELD_BGR: [u8; 3] = [240, 240, 240];
const IDLE_BGR: [u8; 3] = [90, 90, 90];
/// Keys shown as held at most (the rest are still tracked).
const MAX_HELD_SHOWN: usize = 6;
/// Typed characters kept (older ones scroll out of the field).
const MAX_TYPED: usize = 256;

#[derive(Debug)]
struct State {
    width: u32,
    height: u32,
    frame_number: u64,
    dirty: bool,
    pointer: (u32, u32),
    buttons: [bool; 5],
    keys_held: Vec<String>,
    typed: String,
    scroll: i64,
    animate: bool,
    phase: u64,
}

/// A cheap, cloneable, `Send` handle to one synthetic desktop: one clone captures (on the capture
/// thread), another injects input.
#[derive(Debug, Clone)]
pub struct SyntheticDesktop {
    /// The state, and the condition a capture waits on for it to change.
    state: Arc<(Mutex<State>, Condvar)>,
}

impl SyntheticDesktop {
    /// A desktop of the given size (at least 320×180 for everything to fit).
    pub fn new(width: u32, height: u32) -> SyntheticDesktop {
        SyntheticDesktop {
            state: Arc::new((
                Mutex::new(State {
                    width,
                    height,
                    frame_number: 0,
                    dirty: true,
                    pointer: (width / 2, height / 2),
                    buttons: [false; 5],
                    keys_held: Vec::new(),
                    typed: String::new(),
                    scroll: 0,
                    animate: false,
                    phase: 0,
                }),
                Condvar::new(),
            )),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while drawing leaves plain data behind; keep using it.
        self.state.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut State)) {
        let mut state = self.lock();
        f(&mut state);
        state.dirty = true;
        self.state.1.notify_all();
    }

    /// Moves the pointer; `x`, `y` are normalized to the screen, 0..=65535 edge to edge.
    pub fn pointer_to(&self, x: u16, y: u16) {
        self.change(|s| {
            s.pointer = (
                (x as u64 * (s.width.saturating_sub(1)) as u64 / 65535) as u32,
                (y as u64 * (s.height.saturating_sub(1)) as u64 / 65535) as u32,
            )
        });
    }

    /// Presses or releases a mouse button (shown in the top bar while held).
    pub fn button(&self, button: Button, pressed: bool) {
        self.change(|s| {
            if let Some(i) = Button::ALL.iter().position(|b| *b == button) {
                s.buttons[i] = pressed;
            }
        });
    }

    /// Presses or releases a key by its W3C `KeyboardEvent.code` (`"KeyA"`, `"Enter"`). Held keys
    /// are shown in the top bar. Only editing keys change the text field (`Backspace` deletes a
    /// character, `Enter` and `Escape` clear it); characters arrive through
    /// [`SyntheticDesktop::text`], so a key and its text are not typed twice.
    pub fn key(&self, code: &str, pressed: bool) {
        self.change(|s| {
            s.keys_held.retain(|k| k != code);
            if pressed {
                s.keys_held.push(code.to_string());
                match code {
                    "Backspace" => {
                        s.typed.pop();
                    }
                    "Enter" | "NumpadEnter" | "Escape" => s.typed.clear(),
                    _ => {}
                }
            }
        });
    }

    /// Types text into the text field.
    pub fn text(&self, text: &str) {
        self.change(|s| {
            s.typed.push_str(text);
            let excess = s.typed.chars().count().saturating_sub(MAX_TYPED);
            if excess > 0 {
                s.typed = s.typed.chars().skip(excess).collect();
            }
        });
    }

    /// Scrolls the window's text by whole lines (positive: towards later lines, like a wheel
    /// turned down).
    pub fn scroll(&self, lines: i32) {
        self.change(|s| s.scroll += lines as i64);
    }

    /// Starts or stops the animated region (a change every frame while on).
    pub fn set_animation(&self, on: bool) {
        self.change(|s| s.animate = on);
    }

    /// Where the pointer is, in pixels.
    pub fn pointer(&self) -> (u32, u32) {
        self.lock().pointer
    }

    /// The text field's content.
    pub fn typed_text(&self) -> String {
        self.lock().typed.clone()
    }

    /// Waits until the text field's content satisfies `want`, or `timeout` passes; gives the
    /// content either way. Input reaches the desktop on another thread (the injector's), so a
    /// test waits on the change itself instead of polling. Blocks the calling thread.
    pub fn wait_typed(&self, timeout: Duration, want: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if want(&state.typed) || left.is_zero() {
                return state.typed.clone();
            }
            state = match self.state.1.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Which buttons are held.
    pub fn buttons_held(&self) -> Vec<Button> {
        let state = self.lock();
        Button::ALL
            .iter()
            .zip(state.buttons)
            .filter(|(_, held)| *held)
            .map(|(b, _)| *b)
            .collect()
    }

    /// The keys held, in the order they were pressed.
    pub fn keys_held(&self) -> Vec<String> {
        self.lock().keys_held.clone()
    }

    /// The screen size.
    pub fn size(&self) -> (u32, u32) {
        let state = self.lock();
        (state.width, state.height)
    }

    /// Side of the pointer marker in pixels for a screen of this height.
    pub fn pointer_marker_size(height: u32) -> u32 {
        (height / 45).max(12)
    }
}

impl Capture for SyntheticDesktop {
    fn size(&self) -> (u32, u32) {
        SyntheticDesktop::size(self)
    }

    fn grab(&mut self, frame: &mut Frame) -> Result<bool> {
        let mut state = self.lock();
        if !state.dirty && !state.animate {
            return Ok(false);
        }
        state.dirty = false;
        if state.animate {
            state.phase += 1;
        }
        state.frame_number += 1;
        if frame.width != state.width || frame.height != state.height {
            *frame = Frame::new(state.width, state.height);
        }
        frame.number = state.frame_number;
        frame.captured_at = Instant::now();
        frame.captured_unix_micros = unix_micros_now();
        frame.changed = None;
        render(&state, frame);
        draw_stamp(frame, Stamp::new(frame.number, frame.captured_unix_micros));
        Ok(true)
    }

    fn wait_for_change(&mut self, timeout: Duration) -> Result<bool> {
        let state = self.lock();
        let (state, _) = self
            .state
            .1
            .wait_timeout_while(state, timeout, |s| !s.dirty && !s.animate)
            .unwrap_or_else(|e| e.into_inner());
        Ok(state.dirty || state.animate)
    }
}

/// Layout measures derived from the screen size, shared by drawing and tests.
struct Layout {
    scale: u32,
    bar_height: u32,
    window: (u32, u32, u32, u32),
    title_height: u32,
    field: (u32, u32, u32, u32),
    animation: (u32, u32, u32, u32),
    taskbar_top: u32,
}

impl Layout {
    fn new(width: u32, height: u32) -> Layout {
        let scale = (height / 360).max(1);
        let (_, stamp_height) = StampLayout::for_width(width).size();
        let bar_height = stamp_height + 4 * scale;
        let taskbar_top = height - 14 * scale;
        let wx = width / 20;
        let wy = bar_height + height / 20;
        let ww = width * 13 / 20;
        let wh = taskbar_top.saturating_sub(wy + height / 20);
        let field_height = 14 * scale;
        Layout {
            scale,
            bar_height,
            window: (wx, wy, ww, wh),
            title_height: 12 * scale,
            field: (
                wx + 4 * scale,
                wy + wh.saturating_sub(field_height + 4 * scale),
                ww.saturating_sub(8 * scale),
                field_height,
            ),
            animation: (width * 15 / 20, wy, width * 4 / 20, wh / 2),
            taskbar_top,
        }
    }
}

fn render(state: &State, frame: &mut Frame) {
    let (width, height) = (state.width, state.height);
    let layout = Layout::new(width, height);
    let s = layout.scale;
    fill(frame, 0, 0, width, height, DESKTOP_BGR);
    fill(frame, 0, 0, width, layout.bar_height, BAR_BGR);
    fill(frame, 0, layout.taskbar_top, width, height, BAR_BGR);
    draw_text(
        frame,
        4 * s,
        layout.taskbar_top + 3 * s,
        s,
        "Start  Files  Terminal  Browser",
        HELD_BGR,
        width,
    );

    // Held buttons and keys, right of the stamp.
    let (stamp_width, _) = StampLayout::for_width(width).size();
    let mut x = stamp_width + 8 * s;
    for (i, held) in state.buttons.iter().enumerate() {
        let colour = if *held { HELD_BGR } else { IDLE_BGR };
        fill(
            frame,
            x + i as u32 * 10 * s,
            2 * s,
            8 * s,
            layout.bar_height - 4 * s,
            colour,
        );
    }
    x += 54 * s;
    let keys: Vec<&str> = state
        .keys_held
        .iter()
        .rev()
        .take(MAX_HELD_SHOWN)
        .map(String::as_str)
        .collect();
    draw_text(frame, x, 3 * s, s, &keys.join(" "), HELD_BGR, width);

    // The window: title, scrolled text rows, text field.
    let (wx, wy, ww, wh) = layout.window;
    fill(frame, wx, wy, ww, wh, PAPER_BGR);
    fill(frame, wx, wy, ww, layout.title_height, TITLE_BGR);
    draw_text(
        frame,
        wx + 4 * s,
        wy + 2 * s,
        s,
        "notes.txt - Editor",
        PAPER_BGR,
        wx + ww,
    );
    let line_height = 10 * s;
    let body_top = wy + layout.title_height + 3 * s;
    let body_bottom = layout.field.1.saturating_sub(3 * s);
    let mut row = 0;
    while body_top + (row + 1) * line_height <= body_bottom {
        let line = text_line(state.scroll + row as i64);
        draw_text(
            frame,
            wx + 4 * s,
            body_top + row * line_height,
            s,
            &line,
            INK_BGR,
            wx + ww - 4 * s,
        );
        row += 1;
    }
    let (fx, fy, fw, fh) = layout.field;
    fill(frame, fx, fy, fw, fh, FIELD_BGR);
    let visible = (fw / (6 * s)).saturating_sub(2) as usize;
    let count = state.typed.chars().count();
    let shown: String = state
        .typed
        .chars()
        .skip(count.saturating_sub(visible))
        .collect();
    draw_text(
        frame,
        fx + 3 * s,
        fy + 3 * s,
        s,
        &format!("{shown}_"),
        INK_BGR,
        fx + fw,
    );

    // The animated region: moving bars while animation is on, still otherwise.
    let (ax, ay, aw, ah) = layout.animation;
    let bar = (8 * s).max(1);
    for i in 0..aw / bar + 1 {
        let shade = ((i as u64 * 37 + state.phase * 11) % 200) as u8 + 30;
        fill(
            frame,
            ax + i * bar,
            ay,
            bar.min(aw - (i * bar).min(aw)),
            ah,
            [shade, shade / 2 + 60, shade / 3],
        );
    }

    // The pointer marker, top-left corner at the pointer.
    let size = SyntheticDesktop::pointer_marker_size(height);
    fill(
        frame,
        state.pointer.0,
        state.pointer.1,
        size,
        size,
        POINTER_BGR,
    );
}

/// Line `index` of the window's endless, deterministic text.
fn text_line(index: i64) -> String {
    let mut seed = (index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    let mut line = String::new();
    let words = 3 + (seed % 8);
    for _ in 0..words {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = 2 + (seed >> 60) as usize % 8;
        for j in 0..len {
            line.push((b'a' + ((seed >> (j * 5)) % 26) as u8) as char);
        }
        line.push(' ');
    }
    format!("{:>5}  {line}", index)
}

/// Draws text with made-up but stable 5×7 glyphs (each character's pattern comes from a hash of
/// it): it looks and codes like text, without a font table. Clipped at `right`.
fn draw_text(frame: &mut Frame, x: u32, y: u32, scale: u32, text: &str, bgr: [u8; 3], right: u32) {
    let mut pen = x;
    for c in text.chars() {
        if pen + 6 * scale > right.min(frame.width) {
            break;
        }
        if c != ' ' {
            let pattern = glyph(c);
            for gy in 0..7 {
                for gx in 0..5 {
                    if pattern >> (gy * 5 + gx) & 1 == 1 {
                        fill(frame, pen + gx * scale, y + gy * scale, scale, scale, bgr);
                    }
                }
            }
        }
        pen += 6 * scale;
    }
}

fn glyph(c: char) -> u64 {
    let mut h = (c as u64).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 29;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 32;
    // A vertical stem in the left column keeps every glyph letter-like and non-empty.
    (h & 0x7_ffff_ffff) | 0b00001_00001_00001_00001_00001_00001_00001
}

/// Finds the pointer marker in a decoded picture by its red chroma; returns the marker's top-left
/// corner in pixels (within a couple of pixels: chroma has half resolution), or `None`.
pub fn find_pointer(image: I420View<'_>) -> Option<(u32, u32)> {
    let (cw, ch) = crate::frame::chroma_size(image.width, image.height);
    let (mut sx, mut sy, mut n) = (0u64, 0u64, 0u64);
    for y in 0..ch {
        let u = &image.u[y * image.uv_stride..y * image.uv_stride + cw];
        let v = &image.v[y * image.uv_stride..y * image.uv_stride + cw];
        for (x, (&cb, &cr)) in u.iter().zip(v).enumerate() {
            // Pure red is Cb 102, Cr 240 in BT.709 limited range.
            if cr > 200 && cb < 130 {
                sx += x as u64;
                sy += y as u64;
                n += 1;
            }
        }
    }
    if n == 0 {
        return None;
    }
    let size = SyntheticDesktop::pointer_marker_size(image.height) as u64;
    let centre_x = (2 * sx + n) / n;
    let centre_y = (2 * sy + n) / n;
    Some((
        centre_x.saturating_sub(size / 2) as u32,
        centre_y.saturating_sub(size / 2) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::to_i420;
    use crate::stamp::read_stamp_bgra;

    fn grab(desktop: &mut SyntheticDesktop, frame: &mut Frame) -> bool {
        desktop.grab(frame).unwrap()
    }

    #[test]
    fn the_same_state_draws_the_same_pixels() {
        let mut a = SyntheticDesktop::new(640, 360);
        let mut b = SyntheticDesktop::new(640, 360);
        let (mut fa, mut fb) = (Frame::new(1, 1), Frame::new(1, 1));
        assert!(grab(&mut a, &mut fa) && grab(&mut b, &mut fb));
        let (_, stamp_height) = StampLayout::for_width(640).size();
        // Everything below the stamp (which holds the capture time) is identical.
        let below = stamp_height as usize * fa.stride;
        assert!(fa.data[below..] == fb.data[below..]);
    }

    #[test]
    fn an_unchanged_desktop_gives_no_frame_and_input_gives_one_with_the_next_number() {
        let mut desktop = SyntheticDesktop::new(640, 360);
        let mut frame = Frame::new(1, 1);
        assert!(grab(&mut desktop, &mut frame));
        assert_eq!(frame.number, 1);
        assert!(!grab(&mut desktop, &mut frame));
        desktop.clone().text("hello");
        assert!(grab(&mut desktop, &mut frame));
        assert_eq!(frame.number, 2);
        assert_eq!(read_stamp_bgra(&frame).map(|s| s.frame_number), Some(2));
    }

    #[test]
    fn pointer_events_move_the_marker_and_it_is_found_again() {
        let mut desktop = SyntheticDesktop::new(640, 360);
        let injector = desktop.clone();
        injector.pointer_to(16384, 49151);
        assert_eq!(desktop.pointer(), (159, 269));
        let mut frame = Frame::new(1, 1);
        grab(&mut desktop, &mut frame);
        assert_eq!(frame.pixel(162, 272), POINTER_BGR);
        let found = find_pointer(to_i420(&frame).view()).expect("marker");
        assert!(
            found.0.abs_diff(159) <= 2 && found.1.abs_diff(269) <= 2,
            "{found:?}"
        );
    }

    #[test]
    fn keys_buttons_and_text_are_tracked_and_shown() {
        let mut desktop = SyntheticDesktop::new(640, 360);
        let mut before = Frame::new(1, 1);
        grab(&mut desktop, &mut before);
        desktop.button(Button::Left, true);
        desktop.key("ShiftLeft", true);
        desktop.text("Hi there");
        desktop.key("Backspace", true);
        desktop.key("Backspace", false);
        assert_eq!(desktop.typed_text(), "Hi ther");
        assert_eq!(desktop.buttons_held(), vec![Button::Left]);
        assert_eq!(desktop.keys_held(), vec!["ShiftLeft".to_string()]);
        let mut after = Frame::new(1, 1);
        grab(&mut desktop, &mut after);
        let (_, stamp_height) = StampLayout::for_width(640).size();
        let below = stamp_height as usize * before.stride;
        assert!(before.data[below..] != after.data[below..]);
    }

    #[test]
    fn scrolling_and_animation_change_the_picture() {
        let mut desktop = SyntheticDesktop::new(640, 360);
        let mut frame = Frame::new(1, 1);
        grab(&mut desktop, &mut frame);
        let first = frame.data.clone();
        desktop.scroll(3);
        grab(&mut desktop, &mut frame);
        assert_ne!(first, frame.data);
        desktop.set_animation(true);
        assert!(grab(&mut desktop, &mut frame));
        assert!(
            grab(&mut desktop, &mut frame),
            "animation changes every frame"
        );
        desktop.set_animation(false);
        grab(&mut desktop, &mut frame);
        assert!(!grab(&mut desktop, &mut frame));
    }

    #[test]
    fn the_handle_is_send_and_sync() {
        fn is_send_sync<T: Send + Sync>() {}
        is_send_sync::<SyntheticDesktop>();
    }
}
