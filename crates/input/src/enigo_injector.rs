//! Injection on a real X server with enigo (XTEST through x11rb).

use enigo::{Axis, Coordinate, Direction, Enigo, Keyboard, Mouse, Settings};
use rtcdesk_proto::input::MouseButton;

use crate::typist::Typist;
use crate::{keys, Action, Error, Injector};

/// Carries out actions on an X server through enigo's XTEST backend. Each call returns once the
/// X server has processed the event (enigo syncs after every request).
///
/// Keys go by X keycode (evdev + 8, see [`keys::x11_keycode`]), so the key at the same position
/// is pressed whatever the puppet's layout. Text is typed character by character on a second X
/// connection of our own, as `enigo.text()` would but without the server-side delays enigo adds
/// (which then also slowed every later key; see the `typist` module): a character on the
/// keymap's first level with its key, any other through a spare keycode bound to it. Dropping
/// the injector also makes enigo release any key it still holds.
pub struct EnigoInjector {
    enigo: Enigo,
    typist: Typist,
}

impl std::fmt::Debug for EnigoInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnigoInjector").finish_non_exhaustive()
    }
}

impl EnigoInjector {
    /// Connects to the X server `display` (such as `":3"`), or to `$DISPLAY` when `None`.
    pub fn connect(display: Option<&str>) -> Result<Self, Error> {
        let settings = Settings {
            x11_display: display.map(str::to_owned),
            // enigo's default delays each button event by 12 ms inside the X server; the
            // controller's own timing (double clicks) already travels with the events.
            linux_delay: 0,
            release_keys_when_dropped: true,
            ..Settings::default()
        };
        let enigo = Enigo::new(&settings).map_err(Error::Connect)?;
        let typist = Typist::connect(display)?;
        Ok(Self { enigo, typist })
    }
}

fn direction(pressed: bool) -> Direction {
    if pressed {
        Direction::Press
    } else {
        Direction::Release
    }
}

fn enigo_button(button: MouseButton) -> enigo::Button {
    match button {
        MouseButton::Left => enigo::Button::Left,
        MouseButton::Middle => enigo::Button::Middle,
        MouseButton::Right => enigo::Button::Right,
        MouseButton::Back => enigo::Button::Back,
        MouseButton::Forward => enigo::Button::Forward,
    }
}

impl Injector for EnigoInjector {
    fn apply(&mut self, action: &Action) -> Result<(), Error> {
        match action {
            Action::MoveTo { x, y, .. } => {
                // enigo's X11 backend takes non-negative 16-bit coordinates.
                if !(0..=i32::from(i16::MAX)).contains(x) || !(0..=i32::from(i16::MAX)).contains(y)
                {
                    return Err(Error::OutOfRange { x: *x, y: *y });
                }
                self.enigo.move_mouse(*x, *y, Coordinate::Abs)
            }
            Action::Button { button, pressed } => self
                .enigo
                .button(enigo_button(*button), direction(*pressed)),
            Action::Scroll { dx, dy } => {
                // enigo's scroll clicks X buttons 4/5 (vertical) and 6/7 (horizontal), one per
                // notch, positive meaning down and right: the same sense as ours.
                if *dy != 0 {
                    self.enigo
                        .scroll(*dy, Axis::Vertical)
                        .map_err(Error::Inject)?;
                }
                if *dx != 0 {
                    self.enigo
                        .scroll(*dx, Axis::Horizontal)
                        .map_err(Error::Inject)?;
                }
                Ok(())
            }
            Action::Key { code, pressed } => self
                .enigo
                .raw(u16::from(keys::x11_keycode(*code)), direction(*pressed)),
            Action::Text(text) => return self.typist.type_text(text),
        }
        .map_err(Error::Inject)
    }
}
