//! Physical keys: the W3C `KeyboardEvent.code` values, each with the compact number sent on the
//! wire. The numbers are part of input protocol v1 and never change; new keys get new numbers.
//! `INPUT.md` lists the same table (a test keeps the two in step).

macro_rules! key_codes {
    ($($number:literal => $name:ident,)*) => {
        /// A key by its physical position, named as W3C `KeyboardEvent.code` names it (the key
        /// labelled Q on a US layout is `KeyQ` whatever the layout says).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum KeyCode {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name = $number,
            )*
        }

        impl KeyCode {
            /// Every key in the table, in wire-number order.
            pub const ALL: &'static [KeyCode] = &[$(KeyCode::$name,)*];

            /// The key with this wire number, if the table has one.
            pub fn from_wire(number: u16) -> Option<Self> {
                match number {
                    $($number => Some(KeyCode::$name),)*
                    _ => None,
                }
            }

            /// The key's wire number.
            pub fn wire(self) -> u16 {
                self as u16
            }

            /// The W3C `KeyboardEvent.code` string.
            pub fn w3c(self) -> &'static str {
                match self {
                    $(KeyCode::$name => stringify!($name),)*
                }
            }

            /// The key for a W3C `KeyboardEvent.code` string.
            pub fn from_w3c(code: &str) -> Option<Self> {
                match code {
                    $(stringify!($name) => Some(KeyCode::$name),)*
                    _ => None,
                }
            }
        }
    };
}

key_codes! {
    // Writing system keys.
    1 => Backquote,
    2 => Backslash,
    3 => BracketLeft,
    4 => BracketRight,
    5 => Comma,
    6 => Digit0,
    7 => Digit1,
    8 => Digit2,
    9 => Digit3,
    10 => Digit4,
    11 => Digit5,
    12 => Digit6,
    13 => Digit7,
    14 => Digit8,
    15 => Digit9,
    16 => Equal,
    17 => IntlBackslash,
    18 => IntlRo,
    19 => IntlYen,
    20 => KeyA,
    21 => KeyB,
    22 => KeyC,
    23 => KeyD,
    24 => KeyE,
    25 => KeyF,
    26 => KeyG,
    27 => KeyH,
    28 => KeyI,
    29 => KeyJ,
    30 => KeyK,
    31 => KeyL,
    32 => KeyM,
    33 => KeyN,
    34 => KeyO,
    35 => KeyP,
    36 => KeyQ,
    37 => KeyR,
    38 => KeyS,
    39 => KeyT,
    40 => KeyU,
    41 => KeyV,
    42 => KeyW,
    43 => KeyX,
    44 => KeyY,
    45 => KeyZ,
    46 => Minus,
    47 => Period,
    48 => Quote,
    49 => Semicolon,
    50 => Slash,
    // Functional keys.
    51 => AltLeft,
    52 => AltRight,
    53 => Backspace,
    54 => CapsLock,
    55 => ContextMenu,
    56 => ControlLeft,
    57 => ControlRight,
    58 => Enter,
    59 => MetaLeft,
    60 => MetaRight,
    61 => ShiftLeft,
    62 => ShiftRight,
    63 => Space,
    64 => Tab,
    65 => Convert,
    66 => KanaMode,
    67 => Lang1,
    68 => Lang2,
    69 => Lang3,
    70 => Lang4,
    71 => Lang5,
    72 => NonConvert,
    // Control pad.
    73 => Delete,
    74 => End,
    75 => Help,
    76 => Home,
    77 => Insert,
    78 => PageDown,
    79 => PageUp,
    // Arrow pad.
    80 => ArrowDown,
    81 => ArrowLeft,
    82 => ArrowRight,
    83 => ArrowUp,
    // Numpad.
    84 => NumLock,
    85 => Numpad0,
    86 => Numpad1,
    87 => Numpad2,
    88 => Numpad3,
    89 => Numpad4,
    90 => Numpad5,
    91 => Numpad6,
    92 => Numpad7,
    93 => Numpad8,
    94 => Numpad9,
    95 => NumpadAdd,
    96 => NumpadComma,
    97 => NumpadDecimal,
    98 => NumpadDivide,
    99 => NumpadEnter,
    100 => NumpadEqual,
    101 => NumpadMultiply,
    102 => NumpadSubtract,
    // Function section.
    103 => Escape,
    104 => F1,
    105 => F2,
    106 => F3,
    107 => F4,
    108 => F5,
    109 => F6,
    110 => F7,
    111 => F8,
    112 => F9,
    113 => F10,
    114 => F11,
    115 => F12,
    116 => F13,
    117 => F14,
    118 => F15,
    119 => F16,
    120 => F17,
    121 => F18,
    122 => F19,
    123 => F20,
    124 => F21,
    125 => F22,
    126 => F23,
    127 => F24,
    128 => PrintScreen,
    129 => ScrollLock,
    130 => Pause,
    // Media keys.
    131 => BrowserBack,
    132 => BrowserFavorites,
    133 => BrowserForward,
    134 => BrowserHome,
    135 => BrowserRefresh,
    136 => BrowserSearch,
    137 => BrowserStop,
    138 => Eject,
    139 => LaunchApp1,
    140 => LaunchApp2,
    141 => LaunchMail,
    142 => MediaPlayPause,
    143 => MediaSelect,
    144 => MediaStop,
    145 => MediaTrackNext,
    146 => MediaTrackPrevious,
    147 => Power,
    148 => Sleep,
    149 => AudioVolumeDown,
    150 => AudioVolumeMute,
    151 => AudioVolumeUp,
    152 => WakeUp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_maps_both_ways_and_numbers_are_dense() {
        for (index, key) in KeyCode::ALL.iter().enumerate() {
            assert_eq!(key.wire() as usize, index + 1);
            assert_eq!(KeyCode::from_wire(key.wire()), Some(*key));
            assert_eq!(KeyCode::from_w3c(key.w3c()), Some(*key));
        }
        assert_eq!(KeyCode::from_wire(0), None);
        assert_eq!(KeyCode::from_wire(KeyCode::ALL.len() as u16 + 1), None);
        assert_eq!(KeyCode::from_w3c("keya"), None);
        assert_eq!(KeyCode::KeyQ.w3c(), "KeyQ");
    }

    #[test]
    fn input_md_lists_the_same_table() {
        let doc = include_str!("../INPUT.md");
        for key in KeyCode::ALL {
            let row = format!("| {} | `{}` |", key.wire(), key.w3c());
            assert!(doc.contains(&row), "INPUT.md lacks the row {row}");
        }
    }
}
