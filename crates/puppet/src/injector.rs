//! The synthetic desktop as an input sink: an [`Injector`] that replays decided actions on a
//! [`SyntheticDesktop`], so the whole input path is tested without an X server.
//!
//! It lives here and not in `rtcdesk-input` because the input crate may not depend on the media
//! crate (DESIGN.md's dependency table); the puppet depends on both.

use rtcdesk_input::{Action, Error, Injector};
use rtcdesk_media::{Button, SyntheticDesktop};
use rtcdesk_proto::input::MouseButton;

/// Carries out actions on a synthetic desktop. Pointer moves use the normalised position the
/// action carries, so the desktop needs no geometry; keys go by W3C code; wheel notches scroll
/// the desktop's window by lines.
#[derive(Debug, Clone)]
pub struct SyntheticInjector {
    desktop: SyntheticDesktop,
}

impl SyntheticInjector {
    /// An injector into `desktop` (a clone of the handle the capture uses).
    pub fn new(desktop: SyntheticDesktop) -> Self {
        Self { desktop }
    }
}

fn button(button: MouseButton) -> Button {
    match button {
        MouseButton::Left => Button::Left,
        MouseButton::Middle => Button::Middle,
        MouseButton::Right => Button::Right,
        MouseButton::Back => Button::Back,
        MouseButton::Forward => Button::Forward,
    }
}

impl Injector for SyntheticInjector {
    fn apply(&mut self, action: &Action) -> Result<(), Error> {
        // One line per injected action (`RUST_LOG=rtcdesk_puppet=debug`): what a test of a
        // controller that does not decode video (`cargo xtask interop`'s aiortc cell) observes.
        tracing::debug!(?action, "synthetic desktop: injected");
        match action {
            Action::MoveTo { x_norm, y_norm, .. } => self.desktop.pointer_to(*x_norm, *y_norm),
            Action::Button { button: b, pressed } => self.desktop.button(button(*b), *pressed),
            Action::Scroll { dy, .. } => {
                if *dy != 0 {
                    self.desktop.scroll(*dy);
                }
            }
            Action::Key { code, pressed } => self.desktop.key(code.w3c(), *pressed),
            Action::Text(text) => self.desktop.text(text),
        }
        Ok(())
    }
}

/// An injector that does nothing, for view-only puppets without an X server to inject into.
#[derive(Debug, Default)]
pub(crate) struct NoInjector;

impl Injector for NoInjector {
    fn apply(&mut self, _action: &Action) -> Result<(), Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_proto::KeyCode;

    #[test]
    fn actions_reach_the_desktop() {
        let desktop = SyntheticDesktop::new(320, 180);
        let mut injector = SyntheticInjector::new(desktop.clone());
        injector
            .apply(&Action::MoveTo {
                x: 0,
                y: 0,
                x_norm: 65535,
                y_norm: 0,
            })
            .unwrap();
        assert_eq!(desktop.pointer(), (319, 0));
        injector
            .apply(&Action::Button {
                button: MouseButton::Right,
                pressed: true,
            })
            .unwrap();
        assert_eq!(desktop.buttons_held(), vec![Button::Right]);
        injector
            .apply(&Action::Key {
                code: KeyCode::KeyA,
                pressed: true,
            })
            .unwrap();
        assert_eq!(desktop.keys_held(), vec!["KeyA".to_string()]);
        injector.apply(&Action::Text("héllo".into())).unwrap();
        assert_eq!(desktop.typed_text(), "héllo");
    }
}
