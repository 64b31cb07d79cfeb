//! Typing text on X through XTEST, without delays.
//!
//! enigo 0.6's `text()` asks the X server to delay each key event by a "pending delay" that it
//! never resets: once a remapped character repeats (as the second `!` of `!!`), every later key
//! event, including positional `raw()` keys, is held back up to 12 ms, twice per character. The
//! input benchmark measured 45 characters/s that way. This typist does what `text()` does
//! (a character on the keymap's first level is typed with its key; any other is bound to a spare
//! keycode first) on its own connection, with no delays, and enigo keeps its pending delay at
//! zero because it is never asked to type text.
//!
//! When the puppet has Caps Lock on, the typist switches it off around the text (X would
//! otherwise turn every letter upper case) and on again.
//!
//! Spare keycodes are used round robin, so a keycode is rebound only after all the others;
//! a client that has not yet looked up a keycode's symbol by then could misread one character.
//! Xvfb and a usual evdev keymap have dozens of spare keycodes.

use std::collections::HashMap;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    ConnectionExt as _, KeyButMask, Window, KEY_PRESS_EVENT, KEY_RELEASE_EVENT,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use xkeysym::Keysym;

use crate::Error;

/// The Caps_Lock keysym.
const XK_CAPS_LOCK: u32 = 0xffe5;

fn x11_error(what: &'static str) -> impl FnOnce(String) -> Error {
    move |detail| Error::X11 { what, detail }
}

/// Types Unicode text with XTEST key events on its own X connection.
pub(crate) struct Typist {
    connection: RustConnection,
    root: Window,
    min_keycode: u8,
    /// Keycodes with no symbol when we connected, ours to bind.
    spare: Vec<u8>,
    next_spare: usize,
    /// Keysyms we bound, with their keycode.
    bound: HashMap<u32, u8>,
}

impl Typist {
    /// Connects to `display` (or `$DISPLAY`) and finds the spare keycodes.
    pub(crate) fn connect(display: Option<&str>) -> Result<Self, Error> {
        let (connection, screen) =
            x11rb::connect(display).map_err(|e| x11_error("connect")(e.to_string()))?;
        let setup = connection.setup();
        let root = setup
            .roots
            .get(screen)
            .map(|screen| screen.root)
            .ok_or_else(|| x11_error("connect")("no such screen".into()))?;
        let (min_keycode, max_keycode) = (setup.min_keycode, setup.max_keycode);
        let mut typist = Self {
            connection,
            root,
            min_keycode,
            spare: Vec::new(),
            next_spare: 0,
            bound: HashMap::new(),
        };
        let (per_keycode, keysyms) = typist.keyboard_mapping()?;
        typist.spare = keysyms
            .chunks(per_keycode.max(1))
            .zip(min_keycode..=max_keycode)
            // Keycode 8 maps to evdev 0, which some servers ignore.
            .filter(|(syms, keycode)| *keycode > 8 && syms.iter().all(|&sym| sym == 0))
            .map(|(_, keycode)| keycode)
            .collect();
        Ok(typist)
    }

    fn keyboard_mapping(&self) -> Result<(usize, Vec<u32>), Error> {
        let setup = self.connection.setup();
        let count = setup.max_keycode - setup.min_keycode + 1;
        let reply = self
            .connection
            .get_keyboard_mapping(setup.min_keycode, count)
            .map_err(|e| x11_error("GetKeyboardMapping")(e.to_string()))?
            .reply()
            .map_err(|e| x11_error("GetKeyboardMapping")(e.to_string()))?;
        Ok((usize::from(reply.keysyms_per_keycode), reply.keysyms))
    }

    /// Types `text`, one key press and release per character; returns once the server has
    /// processed them all.
    pub(crate) fn type_text(&mut self, text: &str) -> Result<(), Error> {
        // Read the keymap afresh: the desktop may have switched layouts since the last text.
        let (per_keycode, keysyms) = self.keyboard_mapping()?;
        // X applies Caps Lock to every letter keysym, bound ones included: switch it off while
        // typing, and back on after.
        let caps_lock = if self.caps_lock_on()? {
            first_level_keycode(&keysyms, per_keycode, self.min_keycode, XK_CAPS_LOCK)
        } else {
            None
        };
        if let Some(keycode) = caps_lock {
            self.tap(keycode)?;
        }
        for character in text.chars() {
            let keysym = Keysym::from_char(character).raw();
            if keysym == 0 {
                continue;
            }
            // Spare keycodes are looked up in `bound` only: the snapshot may predate a rebinding.
            let keycode = match first_level_keycode(&keysyms, per_keycode, self.min_keycode, keysym)
            {
                Some(keycode) if !self.spare.contains(&keycode) => keycode,
                _ => self.bind(keysym)?,
            };
            self.tap(keycode)?;
        }
        if let Some(keycode) = caps_lock {
            self.tap(keycode)?;
        }
        self.connection
            .sync()
            .map_err(|e| x11_error("sync")(e.to_string()))?;
        // Nobody reads this connection's events (MappingNotify, errors); drop them so they
        // cannot pile up over a long session.
        while let Ok(Some(_)) = self.connection.poll_for_event() {}
        Ok(())
    }

    /// Queues a press and a release of `keycode`.
    fn tap(&self, keycode: u8) -> Result<(), Error> {
        for event in [KEY_PRESS_EVENT, KEY_RELEASE_EVENT] {
            self.connection
                .xtest_fake_input(event, keycode, 0, self.root, 0, 0, 0)
                .map_err(|e| x11_error("XTestFakeInput")(e.to_string()))?;
        }
        Ok(())
    }

    /// Whether the Lock modifier is on now.
    fn caps_lock_on(&self) -> Result<bool, Error> {
        let reply = self
            .connection
            .query_pointer(self.root)
            .map_err(|e| x11_error("QueryPointer")(e.to_string()))?
            .reply()
            .map_err(|e| x11_error("QueryPointer")(e.to_string()))?;
        Ok(u16::from(reply.mask) & u16::from(KeyButMask::LOCK) != 0)
    }

    /// The spare keycode bound to `keysym`, binding the next one round robin if needed.
    fn bind(&mut self, keysym: u32) -> Result<u8, Error> {
        if let Some(&keycode) = self.bound.get(&keysym) {
            return Ok(keycode);
        }
        let Some(&keycode) = self.spare.get(self.next_spare % self.spare.len().max(1)) else {
            return Err(x11_error("ChangeKeyboardMapping")(
                "the keymap has no spare keycode to type this character".into(),
            ));
        };
        self.next_spare = self.next_spare.wrapping_add(1);
        self.bound.retain(|_, bound| *bound != keycode);
        // Two columns with the same symbol, so Shift or Caps Lock cannot change it.
        self.connection
            .change_keyboard_mapping(1, keycode, 2, &[keysym, keysym])
            .map_err(|e| x11_error("ChangeKeyboardMapping")(e.to_string()))?;
        self.bound.insert(keysym, keycode);
        Ok(keycode)
    }
}

impl Drop for Typist {
    fn drop(&mut self) {
        // Give the spare keycodes back empty, as we found them.
        for &keycode in self.bound.values() {
            let _ = self
                .connection
                .change_keyboard_mapping(1, keycode, 2, &[0, 0]);
        }
        let _ = self.connection.sync();
    }
}

/// The keycode whose first level (no modifier) is `keysym` in a keymap snapshot.
fn first_level_keycode(
    keysyms: &[u32],
    per_keycode: usize,
    min_keycode: u8,
    keysym: u32,
) -> Option<u8> {
    keysyms
        .chunks(per_keycode.max(1))
        .position(|syms| syms.first() == Some(&keysym))
        .and_then(|index| u8::try_from(usize::from(min_keycode) + index).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_level_lookup_ignores_shifted_symbols() {
        // keycode 8: [a, A], keycode 9: [1, exclam]
        let keysyms = [0x61, 0x41, 0x31, 0x21];
        assert_eq!(first_level_keycode(&keysyms, 2, 8, 0x61), Some(8));
        assert_eq!(first_level_keycode(&keysyms, 2, 8, 0x31), Some(9));
        assert_eq!(first_level_keycode(&keysyms, 2, 8, 0x41), None);
        assert_eq!(first_level_keycode(&keysyms, 2, 8, 0x21), None);
    }
}
