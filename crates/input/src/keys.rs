//! Key tables: W3C `code` ↔ winit `KeyCode` (controller side, feature `window`) and W3C `code`
//! → Linux evdev number → X keycode (puppet side), plus which keys type text, which the
//! translate mode needs on both sides.
//!
//! The evdev numbers are those of `linux/input-event-codes.h`, the same table Chromium and
//! Firefox use to derive `KeyboardEvent.code` on Linux, so a key keeps its position end to end.

use rtcdesk_proto::input::Modifiers;
use rtcdesk_proto::KeyCode;

/// X servers using the evdev (or libinput) driver number their keycodes as evdev + 8; Xvfb's
/// default keymap does the same.
const X_KEYCODE_OFFSET: u16 = 8;

macro_rules! evdev_table {
    ($($key:ident => $evdev:literal,)*) => {
        /// The Linux evdev `KEY_*` number of a key, for positional injection.
        pub fn evdev_code(code: KeyCode) -> u16 {
            match code {
                $(KeyCode::$key => $evdev,)*
            }
        }
    };
}

evdev_table! {
    Backquote => 41, Backslash => 43, BracketLeft => 26, BracketRight => 27, Comma => 51,
    Digit0 => 11, Digit1 => 2, Digit2 => 3, Digit3 => 4, Digit4 => 5, Digit5 => 6, Digit6 => 7,
    Digit7 => 8, Digit8 => 9, Digit9 => 10, Equal => 13,
    IntlBackslash => 86, IntlRo => 89, IntlYen => 124,
    KeyA => 30, KeyB => 48, KeyC => 46, KeyD => 32, KeyE => 18, KeyF => 33, KeyG => 34,
    KeyH => 35, KeyI => 23, KeyJ => 36, KeyK => 37, KeyL => 38, KeyM => 50, KeyN => 49,
    KeyO => 24, KeyP => 25, KeyQ => 16, KeyR => 19, KeyS => 31, KeyT => 20, KeyU => 22,
    KeyV => 47, KeyW => 17, KeyX => 45, KeyY => 21, KeyZ => 44,
    Minus => 12, Period => 52, Quote => 40, Semicolon => 39, Slash => 53,
    AltLeft => 56, AltRight => 100, Backspace => 14, CapsLock => 58, ContextMenu => 127,
    ControlLeft => 29, ControlRight => 97, Enter => 28, MetaLeft => 125, MetaRight => 126,
    ShiftLeft => 42, ShiftRight => 54, Space => 57, Tab => 15,
    Convert => 92, KanaMode => 93, Lang1 => 122, Lang2 => 123, Lang3 => 90, Lang4 => 91,
    Lang5 => 85, NonConvert => 94,
    Delete => 111, End => 107, Help => 138, Home => 102, Insert => 110, PageDown => 109,
    PageUp => 104,
    ArrowDown => 108, ArrowLeft => 105, ArrowRight => 106, ArrowUp => 103,
    NumLock => 69, Numpad0 => 82, Numpad1 => 79, Numpad2 => 80, Numpad3 => 81, Numpad4 => 75,
    Numpad5 => 76, Numpad6 => 77, Numpad7 => 71, Numpad8 => 72, Numpad9 => 73,
    NumpadAdd => 78, NumpadComma => 121, NumpadDecimal => 83, NumpadDivide => 98,
    NumpadEnter => 96, NumpadEqual => 117, NumpadMultiply => 55, NumpadSubtract => 74,
    Escape => 1, F1 => 59, F2 => 60, F3 => 61, F4 => 62, F5 => 63, F6 => 64, F7 => 65,
    F8 => 66, F9 => 67, F10 => 68, F11 => 87, F12 => 88, F13 => 183, F14 => 184, F15 => 185,
    F16 => 186, F17 => 187, F18 => 188, F19 => 189, F20 => 190, F21 => 191, F22 => 192,
    F23 => 193, F24 => 194, PrintScreen => 99, ScrollLock => 70, Pause => 119,
    BrowserBack => 158, BrowserFavorites => 156, BrowserForward => 159, BrowserHome => 172,
    BrowserRefresh => 173, BrowserSearch => 217, BrowserStop => 128, Eject => 161,
    LaunchApp1 => 157, LaunchApp2 => 140, LaunchMail => 155, MediaPlayPause => 164,
    MediaSelect => 226, MediaStop => 166, MediaTrackNext => 163, MediaTrackPrevious => 165,
    Power => 116, Sleep => 142, AudioVolumeDown => 114, AudioVolumeMute => 113,
    AudioVolumeUp => 115, WakeUp => 143,
}

/// The X keycode of a key on an evdev-numbered X server (evdev + 8). Every evdev number in the
/// table is below 248, so the result always fits X's 8-bit keycodes.
pub fn x11_keycode(code: KeyCode) -> u8 {
    // The table's largest number is 226; a test checks every entry fits.
    u8::try_from(evdev_code(code) + X_KEYCODE_OFFSET).unwrap_or(0)
}

#[cfg(feature = "window")]
macro_rules! winit_table {
    (same: [$($same:ident),* $(,)?], renamed: [$($ours:ident <=> $theirs:ident),* $(,)?] $(,)?) => {
        /// The W3C code of a winit key, if the input protocol has it (winit knows a few
        /// keys, such as `Fn` or `F25`, that `KeyboardEvent.code` does not carry).
        pub fn from_winit(code: winit::keyboard::KeyCode) -> Option<KeyCode> {
            use winit::keyboard::KeyCode as W;
            match code {
                $(W::$same => Some(KeyCode::$same),)*
                $(W::$theirs => Some(KeyCode::$ours),)*
                _ => None,
            }
        }

        /// The winit key for a W3C code; the inverse of [`from_winit`] (used by tests and by
        /// anyone replaying recorded input into a winit-shaped consumer).
        pub fn to_winit(code: KeyCode) -> winit::keyboard::KeyCode {
            use winit::keyboard::KeyCode as W;
            match code {
                $(KeyCode::$same => W::$same,)*
                $(KeyCode::$ours => W::$theirs,)*
            }
        }
    };
}

#[cfg(feature = "window")]
winit_table! {
    same: [
        Backquote, Backslash, BracketLeft, BracketRight, Comma, Digit0, Digit1, Digit2, Digit3,
        Digit4, Digit5, Digit6, Digit7, Digit8, Digit9, Equal, IntlBackslash, IntlRo, IntlYen,
        KeyA, KeyB, KeyC, KeyD, KeyE, KeyF, KeyG, KeyH, KeyI, KeyJ, KeyK, KeyL, KeyM, KeyN, KeyO,
        KeyP, KeyQ, KeyR, KeyS, KeyT, KeyU, KeyV, KeyW, KeyX, KeyY, KeyZ, Minus, Period, Quote,
        Semicolon, Slash, AltLeft, AltRight, Backspace, CapsLock, ContextMenu, ControlLeft,
        ControlRight, Enter, ShiftLeft, ShiftRight, Space, Tab, Convert, KanaMode, Lang1, Lang2,
        Lang3, Lang4, Lang5, NonConvert, Delete, End, Help, Home, Insert, PageDown, PageUp,
        ArrowDown, ArrowLeft, ArrowRight, ArrowUp, NumLock, Numpad0, Numpad1, Numpad2, Numpad3,
        Numpad4, Numpad5, Numpad6, Numpad7, Numpad8, Numpad9, NumpadAdd, NumpadComma,
        NumpadDecimal, NumpadDivide, NumpadEnter, NumpadEqual, NumpadMultiply, NumpadSubtract,
        Escape, F1, F2, F3, F4, F5, F6, F7, F8, F9, F10, F11, F12, F13, F14, F15, F16, F17, F18,
        F19, F20, F21, F22, F23, F24, PrintScreen, ScrollLock, Pause, BrowserBack,
        BrowserFavorites, BrowserForward, BrowserHome, BrowserRefresh, BrowserSearch,
        BrowserStop, Eject, LaunchApp1, LaunchApp2, LaunchMail, MediaPlayPause, MediaSelect,
        MediaStop, MediaTrackNext, MediaTrackPrevious, Power, Sleep, AudioVolumeDown,
        AudioVolumeMute, AudioVolumeUp, WakeUp,
    ],
    renamed: [MetaLeft <=> SuperLeft, MetaRight <=> SuperRight],
}

/// Whether a key types a character that depends on the keyboard layout: the writing-system keys
/// and Space. In translate mode the controller sends what these keys type as text and the
/// puppet drops the keys themselves; every other key (Enter, Backspace, arrows, F-keys,
/// modifiers, and the numpad, whose keys are the same in every layout and double as arrows
/// when Num Lock is off) goes by position, and the controller sends no text for it.
pub fn types_text(code: KeyCode) -> bool {
    use KeyCode::*;
    matches!(
        code,
        Backquote
            | Backslash
            | BracketLeft
            | BracketRight
            | Comma
            | Digit0
            | Digit1
            | Digit2
            | Digit3
            | Digit4
            | Digit5
            | Digit6
            | Digit7
            | Digit8
            | Digit9
            | Equal
            | IntlBackslash
            | IntlRo
            | IntlYen
            | KeyA
            | KeyB
            | KeyC
            | KeyD
            | KeyE
            | KeyF
            | KeyG
            | KeyH
            | KeyI
            | KeyJ
            | KeyK
            | KeyL
            | KeyM
            | KeyN
            | KeyO
            | KeyP
            | KeyQ
            | KeyR
            | KeyS
            | KeyT
            | KeyU
            | KeyV
            | KeyW
            | KeyX
            | KeyY
            | KeyZ
            | Minus
            | Period
            | Quote
            | Semicolon
            | Slash
            | Space
    )
}

/// Whether the modifiers make a key press a shortcut rather than typing: Control, Alt or Meta
/// held, and not AltGraph (AltGr, which some systems report as Control+Alt, types characters).
/// The controller sends no text for shortcuts and the puppet, in translate mode, injects them by
/// position; both sides use this one rule so they agree.
pub fn is_shortcut(modifiers: Modifiers) -> bool {
    let command = modifiers.contains(Modifiers::CONTROL)
        || modifiers.contains(Modifiers::ALT)
        || modifiers.contains(Modifiers::META);
    command && !modifiers.contains(Modifiers::ALT_GRAPH)
}

/// Whether a key is Shift, which the puppet lifts while it types translated text (a held Shift
/// would otherwise turn the `/` it types into `?`).
pub fn is_shift(code: KeyCode) -> bool {
    matches!(code, KeyCode::ShiftLeft | KeyCode::ShiftRight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn every_key_has_a_distinct_x_keycode() {
        let mut seen = BTreeMap::new();
        for &key in KeyCode::ALL {
            let keycode = u16::from(x11_keycode(key));
            assert_eq!(keycode, evdev_code(key) + 8, "{key:?} does not fit a u8");
            if let Some(other) = seen.insert(keycode, key) {
                panic!("{key:?} and {other:?} share X keycode {keycode}");
            }
        }
    }

    #[test]
    fn well_known_keys_have_their_evdev_numbers() {
        assert_eq!(evdev_code(KeyCode::Escape), 1);
        assert_eq!(evdev_code(KeyCode::KeyA), 30);
        assert_eq!(x11_keycode(KeyCode::KeyA), 38);
        assert_eq!(x11_keycode(KeyCode::Enter), 36);
        assert_eq!(x11_keycode(KeyCode::Space), 65);
        assert_eq!(x11_keycode(KeyCode::ArrowUp), 111);
        assert_eq!(x11_keycode(KeyCode::F1), 67);
        assert_eq!(x11_keycode(KeyCode::MetaLeft), 133);
    }

    #[cfg(feature = "window")]
    #[test]
    fn every_key_round_trips_through_winit() {
        for &key in KeyCode::ALL {
            assert_eq!(from_winit(to_winit(key)), Some(key), "{key:?}");
        }
        assert_eq!(
            from_winit(winit::keyboard::KeyCode::SuperLeft),
            Some(KeyCode::MetaLeft)
        );
        assert_eq!(from_winit(winit::keyboard::KeyCode::Fn), None);
        assert_eq!(from_winit(winit::keyboard::KeyCode::F25), None);
    }

    #[test]
    fn text_keys_are_the_writing_keys_and_shortcuts_exclude_altgr() {
        assert!(types_text(KeyCode::KeyQ));
        assert!(types_text(KeyCode::Space));
        assert!(!types_text(KeyCode::Numpad5));
        assert!(!types_text(KeyCode::Enter));
        assert!(!types_text(KeyCode::NumpadEnter));
        assert!(!types_text(KeyCode::ShiftLeft));
        assert!(!types_text(KeyCode::F5));
        assert!(is_shortcut(Modifiers::CONTROL));
        assert!(is_shortcut(Modifiers::META | Modifiers::SHIFT));
        assert!(!is_shortcut(Modifiers::SHIFT));
        assert!(!is_shortcut(
            Modifiers::CONTROL | Modifiers::ALT | Modifiers::ALT_GRAPH
        ));
    }
}
