//! Input protocol v1: one binary input event per data-channel message.
//!
//! The byte layout is written down in `INPUT.md` beside this crate, precisely enough to write a
//! browser-side encoder from it. In short: a tag byte (version in the high nibble, kind in the
//! low), a sequence number and a send timestamp, then the kind's fixed fields, all little-endian.
//!
//! [`InputMessage::decode`] is total: any byte string gives a message or an [`InputError`], never a
//! panic, and it allocates nothing beyond the text of a text event (bounded by [`MAX_TEXT`]).
//!
//! ```
//! use rtcdesk_proto::input::{InputEvent, InputMessage};
//! let msg = InputMessage { seq: 7, timestamp_us: 1, event: InputEvent::PointerMove { x: 0, y: 65535 } };
//! let bytes = msg.to_bytes();
//! assert_eq!(InputMessage::decode(&bytes), Ok(msg));
//! ```

use std::fmt;

pub use crate::keys::KeyCode;

/// The protocol version this module speaks, carried in the high nibble of the tag byte.
pub const VERSION: u8 = 1;

/// Longest text event, in bytes of UTF-8. Longer pastes go as several events or as clipboard.
pub const MAX_TEXT: usize = 1024;

/// Bytes before each kind's own fields: tag, sequence number, timestamp.
pub const HEADER_LEN: usize = 1 + 4 + 8;

/// The largest encoded message (a text event of [`MAX_TEXT`] bytes).
pub const MAX_MESSAGE: usize = HEADER_LEN + 2 + MAX_TEXT;

/// Kind numbers, the low nibble of the tag byte.
mod kind {
    pub const POINTER_MOVE: u8 = 0;
    pub const BUTTON_DOWN: u8 = 1;
    pub const BUTTON_UP: u8 = 2;
    pub const WHEEL: u8 = 3;
    pub const KEY_DOWN: u8 = 4;
    pub const KEY_UP: u8 = 5;
    pub const TEXT: u8 = 6;
}

/// One input event with its sequence number and send time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputMessage {
    /// Counts up by one per event sent in a session (wrapping), across both channels, so the
    /// puppet can drop pointer moves older than the newest it has seen.
    pub seq: u32,
    /// When the controller sent it, in microseconds since the Unix epoch on its clock; used to
    /// measure latency, never to order events.
    pub timestamp_us: u64,
    /// What happened.
    pub event: InputEvent,
}

/// What the controller's user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputEvent {
    /// The pointer is now at (x, y), normalised to the video picture (see [`to_normalized`]).
    PointerMove {
        /// 0 is the picture's left pixel column, 65535 its right one.
        x: u16,
        /// 0 is the picture's top pixel row, 65535 its bottom one.
        y: u16,
    },
    /// A mouse button went down or up at (x, y): the position travels with the click, because
    /// pointer moves may be dropped on the way.
    Button {
        /// Which button.
        button: MouseButton,
        /// Down (true) or up.
        pressed: bool,
        /// Normalised position, as in [`InputEvent::PointerMove`].
        x: u16,
        /// Normalised position, as in [`InputEvent::PointerMove`].
        y: u16,
        /// Modifier keys held at the time.
        modifiers: Modifiers,
    },
    /// The wheel or touchpad scrolled at (x, y).
    Wheel {
        /// Normalised position, as in [`InputEvent::PointerMove`].
        x: u16,
        /// Normalised position, as in [`InputEvent::PointerMove`].
        y: u16,
        /// What `dx` and `dy` count.
        unit: WheelUnit,
        /// Positive scrolls right (towards the end of a line).
        dx: i16,
        /// Positive scrolls down (towards the end of a document), as DOM `deltaY`.
        dy: i16,
    },
    /// A key went down or up, by physical position.
    Key {
        /// Which key.
        code: KeyCode,
        /// Down (true) or up.
        pressed: bool,
        /// Modifier state after this event, so the puppet can resynchronise.
        modifiers: Modifiers,
    },
    /// Committed text (typed characters or IME output) to appear as is, whatever the layout.
    Text(String),
}

impl InputEvent {
    /// Pointer moves travel on the unordered, no-retransmit channel; everything else must arrive,
    /// in order, on the reliable one.
    pub fn is_droppable(&self) -> bool {
        matches!(self, InputEvent::PointerMove { .. })
    }
}

/// A mouse button.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MouseButton {
    /// Primary button (wire 0).
    Left,
    /// Wheel button (wire 1).
    Middle,
    /// Secondary button (wire 2).
    Right,
    /// Browser back / X1 (wire 3).
    Back,
    /// Browser forward / X2 (wire 4).
    Forward,
}

impl MouseButton {
    /// Every button, in wire order.
    pub const ALL: [MouseButton; 5] = [
        MouseButton::Left,
        MouseButton::Middle,
        MouseButton::Right,
        MouseButton::Back,
        MouseButton::Forward,
    ];

    /// The button's wire number (the same as DOM `MouseEvent.button`).
    pub fn wire(self) -> u8 {
        match self {
            MouseButton::Left => 0,
            MouseButton::Middle => 1,
            MouseButton::Right => 2,
            MouseButton::Back => 3,
            MouseButton::Forward => 4,
        }
    }

    /// The button with this wire number.
    pub fn from_wire(number: u8) -> Option<Self> {
        Self::ALL.get(usize::from(number)).copied()
    }
}

/// What a wheel delta counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WheelUnit {
    /// 1/120ths of a line (one wheel notch is 120, as on Windows and in DOM `wheelDelta`).
    Lines120,
    /// Pixels of the picture, for touchpads' smooth scrolling.
    Pixels,
}

impl WheelUnit {
    fn wire(self) -> u8 {
        match self {
            WheelUnit::Lines120 => 0,
            WheelUnit::Pixels => 1,
        }
    }

    fn from_wire(number: u8) -> Option<Self> {
        match number {
            0 => Some(WheelUnit::Lines120),
            1 => Some(WheelUnit::Pixels),
            _ => None,
        }
    }
}

/// Modifier keys held, one bit each; bit 7 is reserved and must be zero in v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Modifiers(u8);

impl Modifiers {
    /// No modifier held.
    pub const NONE: Modifiers = Modifiers(0);
    /// Either Shift key.
    pub const SHIFT: Modifiers = Modifiers(1 << 0);
    /// Either Control key.
    pub const CONTROL: Modifiers = Modifiers(1 << 1);
    /// Either Alt key (Option on a Mac).
    pub const ALT: Modifiers = Modifiers(1 << 2);
    /// Either Meta key (Windows, Command, Super).
    pub const META: Modifiers = Modifiers(1 << 3);
    /// AltGr, the third-level shift of many layouts.
    pub const ALT_GRAPH: Modifiers = Modifiers(1 << 4);
    /// Caps Lock is on.
    pub const CAPS_LOCK: Modifiers = Modifiers(1 << 5);
    /// Num Lock is on.
    pub const NUM_LOCK: Modifiers = Modifiers(1 << 6);
    const DEFINED: u8 = 0x7f;

    /// The modifiers from their wire byte, if no reserved bit is set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::DEFINED == 0).then_some(Self(bits))
    }

    /// The wire byte.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Whether every modifier in `other` is held.
    pub fn contains(self, other: Modifiers) -> bool {
        self.0 & other.0 == other.0
    }

    /// These modifiers with `other` added (`pressed`) or removed.
    pub fn with(self, other: Modifiers, pressed: bool) -> Self {
        if pressed {
            Self(self.0 | other.0)
        } else {
            Self(self.0 & !other.0)
        }
    }
}

impl std::ops::BitOr for Modifiers {
    type Output = Modifiers;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Why bytes are not an input message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// Zero bytes.
    Empty,
    /// A version this decoder does not speak (the high nibble of the tag).
    UnsupportedVersion(u8),
    /// A kind this version does not have (the low nibble of the tag).
    UnknownKind(u8),
    /// The message ends before its kind's fields do.
    Truncated {
        /// Bytes the kind needs.
        needed: usize,
        /// Bytes there were.
        got: usize,
    },
    /// Bytes after the kind's last field.
    TrailingBytes(usize),
    /// A button number outside 0..=4.
    UnknownButton(u8),
    /// A key number not in the table.
    UnknownKey(u16),
    /// A wheel unit other than 0 (lines) or 1 (pixels).
    UnknownWheelUnit(u8),
    /// A modifier byte with the reserved bit set.
    ReservedModifierBits(u8),
    /// A text event longer than [`MAX_TEXT`].
    TextTooLong(usize),
    /// Text that is not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputError::Empty => f.write_str("empty input message"),
            InputError::UnsupportedVersion(v) => write!(
                f,
                "input protocol version {v} is not supported (this side speaks {VERSION})"
            ),
            InputError::UnknownKind(k) => write!(f, "unknown input event kind {k}"),
            InputError::Truncated { needed, got } => {
                write!(f, "input message truncated: {got} bytes of {needed}")
            }
            InputError::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the input event"),
            InputError::UnknownButton(b) => write!(f, "unknown mouse button {b}"),
            InputError::UnknownKey(k) => write!(f, "unknown key number {k}"),
            InputError::UnknownWheelUnit(u) => write!(f, "unknown wheel unit {u}"),
            InputError::ReservedModifierBits(m) => {
                write!(f, "modifier byte {m:#04x} sets reserved bits")
            }
            InputError::TextTooLong(n) => {
                write!(
                    f,
                    "text event of {n} bytes is over the {MAX_TEXT}-byte limit"
                )
            }
            InputError::InvalidUtf8 => f.write_str("text event is not UTF-8"),
        }
    }
}

impl std::error::Error for InputError {}

impl InputMessage {
    /// Appends the encoded message to `out`; reuse one buffer to encode without allocating.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let kind = match &self.event {
            InputEvent::PointerMove { .. } => kind::POINTER_MOVE,
            InputEvent::Button { pressed: true, .. } => kind::BUTTON_DOWN,
            InputEvent::Button { pressed: false, .. } => kind::BUTTON_UP,
            InputEvent::Wheel { .. } => kind::WHEEL,
            InputEvent::Key { pressed: true, .. } => kind::KEY_DOWN,
            InputEvent::Key { pressed: false, .. } => kind::KEY_UP,
            InputEvent::Text(_) => kind::TEXT,
        };
        out.push(VERSION << 4 | kind);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.timestamp_us.to_le_bytes());
        match &self.event {
            InputEvent::PointerMove { x, y } => {
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
            }
            InputEvent::Button {
                button,
                x,
                y,
                modifiers,
                ..
            } => {
                out.push(button.wire());
                out.push(modifiers.bits());
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
            }
            InputEvent::Wheel { x, y, unit, dx, dy } => {
                out.push(unit.wire());
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
                out.extend_from_slice(&dx.to_le_bytes());
                out.extend_from_slice(&dy.to_le_bytes());
            }
            InputEvent::Key {
                code, modifiers, ..
            } => {
                out.extend_from_slice(&code.wire().to_le_bytes());
                out.push(modifiers.bits());
            }
            InputEvent::Text(text) => {
                // Longer text is cut at a character boundary so the message stays decodable.
                let text = truncate_utf8(text, MAX_TEXT);
                out.extend_from_slice(&(text.len() as u16).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }

    /// The encoded message in a fresh buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 9);
        self.encode(&mut out);
        out
    }

    /// Decodes one message. Total: every byte string gives a message or an error.
    pub fn decode(bytes: &[u8]) -> Result<Self, InputError> {
        let (&tag, _) = bytes.split_first().ok_or(InputError::Empty)?;
        let version = tag >> 4;
        if version != VERSION {
            return Err(InputError::UnsupportedVersion(version));
        }
        let kind = tag & 0x0f;
        let body_len = match kind {
            kind::POINTER_MOVE => 4,
            kind::BUTTON_DOWN | kind::BUTTON_UP => 6,
            kind::WHEEL => 9,
            kind::KEY_DOWN | kind::KEY_UP => 3,
            kind::TEXT => 2,
            other => return Err(InputError::UnknownKind(other)),
        };
        let mut reader = Reader::new(bytes, HEADER_LEN + body_len)?;
        reader.u8();
        let seq = reader.u32();
        let timestamp_us = reader.u64();
        let event = match kind {
            kind::POINTER_MOVE => InputEvent::PointerMove {
                x: reader.u16(),
                y: reader.u16(),
            },
            kind::BUTTON_DOWN | kind::BUTTON_UP => {
                let number = reader.u8();
                let button =
                    MouseButton::from_wire(number).ok_or(InputError::UnknownButton(number))?;
                let modifiers = modifiers(reader.u8())?;
                InputEvent::Button {
                    button,
                    pressed: kind == kind::BUTTON_DOWN,
                    x: reader.u16(),
                    y: reader.u16(),
                    modifiers,
                }
            }
            kind::WHEEL => {
                let number = reader.u8();
                let unit =
                    WheelUnit::from_wire(number).ok_or(InputError::UnknownWheelUnit(number))?;
                InputEvent::Wheel {
                    unit,
                    x: reader.u16(),
                    y: reader.u16(),
                    dx: reader.u16() as i16,
                    dy: reader.u16() as i16,
                }
            }
            kind::KEY_DOWN | kind::KEY_UP => {
                let number = reader.u16();
                let code = KeyCode::from_wire(number).ok_or(InputError::UnknownKey(number))?;
                InputEvent::Key {
                    code,
                    pressed: kind == kind::KEY_DOWN,
                    modifiers: modifiers(reader.u8())?,
                }
            }
            _ => {
                let len = usize::from(reader.u16());
                if len > MAX_TEXT {
                    return Err(InputError::TextTooLong(len));
                }
                let text = reader.rest(len)?;
                let text = std::str::from_utf8(text).map_err(|_| InputError::InvalidUtf8)?;
                InputEvent::Text(text.to_string())
            }
        };
        reader.finish()?;
        Ok(InputMessage {
            seq,
            timestamp_us,
            event,
        })
    }
}

fn modifiers(bits: u8) -> Result<Modifiers, InputError> {
    Modifiers::from_bits(bits).ok_or(InputError::ReservedModifierBits(bits))
}

fn truncate_utf8(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Reads fixed fields from a slice whose minimum length was checked up front, so the field
/// reads themselves cannot fail.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], needed: usize) -> Result<Self, InputError> {
        if bytes.len() < needed {
            return Err(InputError::Truncated {
                needed,
                got: bytes.len(),
            });
        }
        Ok(Self { bytes, at: 0 })
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        out.copy_from_slice(&self.bytes[self.at..self.at + N]);
        self.at += N;
        out
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    /// The next `len` bytes, which the up-front check did not cover.
    fn rest(&mut self, len: usize) -> Result<&'a [u8], InputError> {
        let end = self.at + len;
        let slice = self.bytes.get(self.at..end).ok_or(InputError::Truncated {
            needed: end,
            got: self.bytes.len(),
        })?;
        self.at = end;
        Ok(slice)
    }

    fn finish(self) -> Result<(), InputError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            extra => Err(InputError::TrailingBytes(extra)),
        }
    }
}

/// A position in a picture of `size` pixels (0 = first pixel, `size - 1` = last) as a normalised
/// coordinate; positions outside the picture are clamped to its edges.
pub fn to_normalized(position: f64, size: u32) -> u16 {
    if size <= 1 || position.is_nan() {
        return 0;
    }
    let fraction = (position / f64::from(size - 1)).clamp(0.0, 1.0);
    (fraction * 65535.0).round() as u16
}

/// A normalised coordinate as a pixel of a picture of `size` pixels.
pub fn to_pixel(normalized: u16, size: u32) -> u32 {
    if size <= 1 {
        return 0;
    }
    let scaled = u64::from(normalized) * u64::from(size - 1);
    ((scaled + 32767) / 65535) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(event: InputEvent) -> InputMessage {
        InputMessage {
            seq: 0x0403_0201,
            timestamp_us: 0x0c0b_0a09_0807_0605,
            event,
        }
    }

    #[test]
    fn the_documented_pointer_move_bytes() {
        let bytes = msg(InputEvent::PointerMove {
            x: 0x1234,
            y: 0xffff,
        })
        .to_bytes();
        assert_eq!(
            bytes,
            [0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x34, 0x12, 0xff, 0xff]
        );
    }

    #[test]
    fn the_documented_key_and_text_bytes() {
        let key = msg(InputEvent::Key {
            code: KeyCode::KeyA,
            pressed: true,
            modifiers: Modifiers::SHIFT | Modifiers::CONTROL,
        });
        assert_eq!(&key.to_bytes()[..1], [0x14]);
        assert_eq!(&key.to_bytes()[HEADER_LEN..], [20, 0, 0b11]);
        let text = msg(InputEvent::Text("é".into()));
        assert_eq!(&text.to_bytes()[..1], [0x16]);
        assert_eq!(&text.to_bytes()[HEADER_LEN..], [2, 0, 0xc3, 0xa9]);
    }

    #[test]
    fn each_rejection_names_its_cause() {
        let good = msg(InputEvent::PointerMove { x: 1, y: 2 }).to_bytes();
        assert_eq!(InputMessage::decode(&[]), Err(InputError::Empty));
        assert_eq!(
            InputMessage::decode(&[0x20]),
            Err(InputError::UnsupportedVersion(2))
        );
        assert_eq!(
            InputMessage::decode(&[0x1f]),
            Err(InputError::UnknownKind(15))
        );
        assert_eq!(
            InputMessage::decode(&good[..good.len() - 1]),
            Err(InputError::Truncated {
                needed: 17,
                got: 16
            })
        );
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            InputMessage::decode(&long),
            Err(InputError::TrailingBytes(1))
        );

        let mut button = msg(InputEvent::Button {
            button: MouseButton::Left,
            pressed: true,
            x: 0,
            y: 0,
            modifiers: Modifiers::NONE,
        })
        .to_bytes();
        button[HEADER_LEN] = 5;
        assert_eq!(
            InputMessage::decode(&button),
            Err(InputError::UnknownButton(5))
        );
        button[HEADER_LEN] = 0;
        button[HEADER_LEN + 1] = 0x80;
        assert_eq!(
            InputMessage::decode(&button),
            Err(InputError::ReservedModifierBits(0x80))
        );

        let mut key = msg(InputEvent::Key {
            code: KeyCode::KeyA,
            pressed: false,
            modifiers: Modifiers::NONE,
        })
        .to_bytes();
        key[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&999u16.to_le_bytes());
        assert_eq!(InputMessage::decode(&key), Err(InputError::UnknownKey(999)));

        let mut wheel = msg(InputEvent::Wheel {
            x: 0,
            y: 0,
            unit: WheelUnit::Pixels,
            dx: -1,
            dy: 1,
        })
        .to_bytes();
        wheel[HEADER_LEN] = 2;
        assert_eq!(
            InputMessage::decode(&wheel),
            Err(InputError::UnknownWheelUnit(2))
        );

        let mut text = msg(InputEvent::Text("ab".into())).to_bytes();
        text[HEADER_LEN + 2] = 0xff;
        assert_eq!(InputMessage::decode(&text), Err(InputError::InvalidUtf8));
        text[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(
            InputMessage::decode(&text),
            Err(InputError::Truncated {
                needed: HEADER_LEN + 5,
                got: HEADER_LEN + 4
            })
        );
        text[HEADER_LEN..HEADER_LEN + 2].copy_from_slice(&(MAX_TEXT as u16 + 1).to_le_bytes());
        assert_eq!(
            InputMessage::decode(&text),
            Err(InputError::TextTooLong(MAX_TEXT + 1))
        );
    }

    #[test]
    fn overlong_text_is_cut_at_a_character_boundary() {
        let text = "é".repeat(MAX_TEXT);
        let decoded = InputMessage::decode(&msg(InputEvent::Text(text)).to_bytes()).unwrap();
        match decoded.event {
            InputEvent::Text(t) => assert_eq!(t.len(), MAX_TEXT),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn normalised_coordinates_cover_the_picture_edge_to_edge() {
        assert_eq!(to_normalized(0.0, 1280), 0);
        assert_eq!(to_normalized(1279.0, 1280), 65535);
        assert_eq!(to_normalized(-5.0, 1280), 0);
        assert_eq!(to_normalized(5000.0, 1280), 65535);
        assert_eq!(to_normalized(f64::NAN, 1280), 0);
        assert_eq!(to_pixel(0, 1280), 0);
        assert_eq!(to_pixel(65535, 1280), 1279);
        for px in [0u32, 1, 639, 640, 1278, 1279] {
            assert_eq!(to_pixel(to_normalized(f64::from(px), 1280), 1280), px);
        }
        assert_eq!(to_pixel(40000, 1), 0);
    }
}
