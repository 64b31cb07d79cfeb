//! A real X client that records the input it receives, to check injection end to end (tests)
//! and to time it (the input benchmark).
//!
//! [`X11Observer::open`] maps a window covering the whole screen, gives it the keyboard focus
//! (there is no window manager under Xvfb), and reads its events on a thread of its own, each
//! stamped with the moment it arrived. Key presses carry the keysym the server's keymap gave
//! the keycode at that moment, so text typed through remapped keycodes can be checked too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, InputFocus,
    QueryPointerReply, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use crate::Error;

/// The client-message type the observer sends itself to stop its reader thread.
const STOP: u32 = 0x5254_4450; // "RTDP"

fn fail(what: &'static str) -> impl FnOnce(String) -> Error {
    move |detail| Error::X11 { what, detail }
}

/// One input event as the observer's window received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// The pointer moved to (x, y) on the screen.
    Motion {
        /// Screen column.
        x: i16,
        /// Screen row.
        y: i16,
    },
    /// An X button went down: 1 left, 2 middle, 3 right, 4/5 wheel up/down, 6/7 wheel
    /// left/right, 8 back, 9 forward.
    ButtonPress(u8),
    /// An X button went up.
    ButtonRelease(u8),
    /// A key went down.
    KeyPress {
        /// The X keycode.
        keycode: u8,
        /// The keysym the keymap gave it (level 1 when Shift was held), 0 if none.
        keysym: u32,
        /// The modifier and button state (Shift is bit 0) before the event.
        state: u16,
    },
    /// A key went up.
    KeyRelease {
        /// The X keycode.
        keycode: u8,
    },
}

/// A full-screen, focused X window that records the input events it receives.
pub struct X11Observer {
    connection: Arc<RustConnection>,
    window: Window,
    root: Window,
    events: Receiver<(Observed, Instant)>,
    lookup_keysyms: Arc<AtomicBool>,
}

impl std::fmt::Debug for X11Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Observer")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl X11Observer {
    /// Connects to `display`, maps the recording window over the whole screen and focuses it.
    /// When this returns, the window receives every key and pointer event.
    pub fn open(display: &str) -> Result<Self, Error> {
        let (connection, screen_number) =
            x11rb::connect(Some(display)).map_err(|e| fail("connect")(e.to_string()))?;
        let screen = connection
            .setup()
            .roots
            .get(screen_number)
            .ok_or_else(|| fail("connect")("no such screen".into()))?
            .clone();
        let window = connection
            .generate_id()
            .map_err(|e| fail("generate_id")(e.to_string()))?;
        let mask = EventMask::KEY_PRESS
            | EventMask::KEY_RELEASE
            | EventMask::BUTTON_PRESS
            | EventMask::BUTTON_RELEASE
            | EventMask::POINTER_MOTION;
        let aux = CreateWindowAux::new()
            .override_redirect(1)
            .background_pixel(screen.white_pixel)
            .event_mask(mask);
        connection
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                window,
                screen.root,
                0,
                0,
                screen.width_in_pixels,
                screen.height_in_pixels,
                0,
                WindowClass::INPUT_OUTPUT,
                x11rb::COPY_FROM_PARENT,
                &aux,
            )
            .map_err(|e| fail("create_window")(e.to_string()))?;
        connection
            .map_window(window)
            .map_err(|e| fail("map_window")(e.to_string()))?;
        connection
            .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)
            .map_err(|e| fail("set_input_focus")(e.to_string()))?;
        // A round trip: the server has mapped and focused the window before we return.
        let focus = connection
            .get_input_focus()
            .map_err(|e| fail("get_input_focus")(e.to_string()))?
            .reply()
            .map_err(|e| fail("get_input_focus")(e.to_string()))?;
        if focus.focus != window {
            return Err(fail("SetInputFocus")(format!(
                "focus went to {:#x}, not the observer {window:#x}",
                focus.focus
            )));
        }
        let connection = Arc::new(connection);
        let (sender, events) = mpsc::channel();
        let reader = Arc::clone(&connection);
        let lookup_keysyms = Arc::new(AtomicBool::new(true));
        let lookup = Arc::clone(&lookup_keysyms);
        std::thread::Builder::new()
            .name("x11-observer".into())
            .spawn(move || read_events(&reader, &sender, &lookup))
            .map_err(|e| fail("spawn")(e.to_string()))?;
        Ok(Self {
            connection,
            window,
            root: screen.root,
            events,
            lookup_keysyms,
        })
    }

    /// Whether key presses get their keysym looked up (a round trip to the server each, on by
    /// default). A benchmark turns it off so the observer loads the server no more than any
    /// client would; key presses then carry keysym 0.
    pub fn set_keysym_lookup(&self, on: bool) {
        self.lookup_keysyms.store(on, Ordering::Relaxed);
    }

    /// The next event, waiting at most `timeout`, with the moment it arrived.
    pub fn next_timed(&self, timeout: Duration) -> Option<(Observed, Instant)> {
        self.events.recv_timeout(timeout).ok()
    }

    /// The next event, waiting at most `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Observed> {
        self.next_timed(timeout).map(|(event, _)| event)
    }

    /// The next event `keep` accepts, skipping others, waiting at most `timeout` in all.
    pub fn next_matching(
        &self,
        timeout: Duration,
        mut keep: impl FnMut(&Observed) -> bool,
    ) -> Option<Observed> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let event = self.next(left)?;
            if keep(&event) {
                return Some(event);
            }
        }
    }

    /// Every event received so far that has not been taken yet.
    pub fn drain(&self) -> Vec<Observed> {
        self.events.try_iter().map(|(event, _)| event).collect()
    }

    /// The server's pointer state: position, modifiers and buttons in one round trip.
    fn query_pointer(&self) -> Result<QueryPointerReply, Error> {
        self.connection
            .query_pointer(self.root)
            .map_err(|e| fail("query_pointer")(e.to_string()))?
            .reply()
            .map_err(|e| fail("query_pointer")(e.to_string()))
    }

    /// Where the server says the pointer is (a round trip, so every earlier request of any
    /// client the server has already processed is reflected).
    pub fn pointer(&self) -> Result<(i16, i16), Error> {
        let reply = self.query_pointer()?;
        Ok((reply.root_x, reply.root_y))
    }

    /// The keysym the server's keymap gives `keycode` now (level 2 when `shifted`), 0 if none.
    pub fn keysym_of(&self, keycode: u8, shifted: bool) -> u32 {
        keysym(&self.connection, keycode, shifted)
    }

    /// Which keycodes the server has down now.
    pub fn keys_down(&self) -> Result<Vec<u8>, Error> {
        let reply = self
            .connection
            .query_keymap()
            .map_err(|e| fail("query_keymap")(e.to_string()))?
            .reply()
            .map_err(|e| fail("query_keymap")(e.to_string()))?;
        Ok((0..=255u8)
            .filter(|&code| reply.keys[usize::from(code / 8)] & (1 << (code % 8)) != 0)
            .collect())
    }

    /// The modifiers the server has on now, as the state mask (bit 0 Shift, 1 Lock, 2 Control).
    pub fn modifiers_on(&self) -> Result<u16, Error> {
        let reply = self.query_pointer()?;
        Ok(u16::from(reply.mask) & 0xff)
    }

    /// The pointer buttons the server has down now, as the state mask (bit 8 = button 1).
    pub fn buttons_down(&self) -> Result<u16, Error> {
        let reply = self.query_pointer()?;
        Ok(u16::from(reply.mask) & 0x1f00)
    }
}

impl Drop for X11Observer {
    fn drop(&mut self) {
        // Wake the reader thread with a message to ourselves so it exits.
        let stop = ClientMessageEvent::new(32, self.window, STOP, [0u32; 5]);
        let _ = self
            .connection
            .send_event(false, self.window, EventMask::NO_EVENT, stop);
        let _ = self.connection.flush();
    }
}

fn read_events(
    connection: &RustConnection,
    sender: &mpsc::Sender<(Observed, Instant)>,
    lookup_keysyms: &AtomicBool,
) {
    while let Ok(event) = connection.wait_for_event() {
        let now = Instant::now();
        let observed = match event {
            Event::MotionNotify(e) => Observed::Motion {
                x: e.root_x,
                y: e.root_y,
            },
            Event::ButtonPress(e) => Observed::ButtonPress(e.detail),
            Event::ButtonRelease(e) => Observed::ButtonRelease(e.detail),
            Event::KeyPress(e) => {
                let state = u16::from(e.state);
                Observed::KeyPress {
                    keycode: e.detail,
                    keysym: if lookup_keysyms.load(Ordering::Relaxed) {
                        keysym(connection, e.detail, state & 1 != 0)
                    } else {
                        0
                    },
                    state,
                }
            }
            Event::KeyRelease(e) => Observed::KeyRelease { keycode: e.detail },
            Event::ClientMessage(e) if e.type_ == STOP => return,
            _ => continue,
        };
        if sender.send((observed, now)).is_err() {
            return;
        }
    }
}

/// The keysym the server's current keymap gives `keycode` (level 2 when `shifted`).
fn keysym(connection: &RustConnection, keycode: u8, shifted: bool) -> u32 {
    let Ok(cookie) = connection.get_keyboard_mapping(keycode, 1) else {
        return 0;
    };
    let Ok(reply) = cookie.reply() else { return 0 };
    let column = usize::from(shifted);
    reply
        .keysyms
        .get(column)
        .copied()
        .filter(|&sym| sym != 0)
        .or_else(|| reply.keysyms.first().copied())
        .unwrap_or(0)
}
