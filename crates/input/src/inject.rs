//! The [`Injector`] trait, which carries out decided [`Action`]s, and [`Recorder`], the one tests
//! use.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use rtcdesk_proto::input::MouseButton;
use rtcdesk_proto::KeyCode;

use crate::{Action, Error};

/// Something that makes actions happen on a desktop: enigo on a real X server
/// ([`crate::EnigoInjector`]), the synthetic desktop of `rtcdesk-media`, or a [`Recorder`].
///
/// It is called on the injector thread only, one action at a time, and may block (enigo waits
/// for the X server to acknowledge each event). Policy (what to inject, what to release) is
/// decided before; an implementation only translates each variant into its own calls. An error
/// is logged and the next action still comes.
pub trait Injector {
    /// Carries out one action.
    fn apply(&mut self, action: &Action) -> Result<(), Error>;
}

impl<I: Injector + ?Sized> Injector for Box<I> {
    fn apply(&mut self, action: &Action) -> Result<(), Error> {
        (**self).apply(action)
    }
}

/// An injector that records what it was asked to do, for tests; clones share one log, so a
/// test keeps a clone while the original runs on the injector thread.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    log: Arc<Mutex<Vec<Action>>>,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every action applied so far, in order.
    pub fn actions(&self) -> Vec<Action> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keys a desktop fed these actions would still have down.
    pub fn pressed_keys(&self) -> BTreeSet<KeyCode> {
        let mut pressed = BTreeSet::new();
        for action in self.actions() {
            if let Action::Key {
                code,
                pressed: down,
            } = action
            {
                if down {
                    pressed.insert(code);
                } else {
                    pressed.remove(&code);
                }
            }
        }
        pressed
    }

    /// Buttons a desktop fed these actions would still have down, by wire number.
    pub fn pressed_buttons(&self) -> BTreeSet<u8> {
        let mut pressed = BTreeSet::new();
        for action in self.actions() {
            if let Action::Button {
                button,
                pressed: down,
            } = action
            {
                let number = MouseButton::wire(button);
                if down {
                    pressed.insert(number);
                } else {
                    pressed.remove(&number);
                }
            }
        }
        pressed
    }
}

impl Injector for Recorder {
    fn apply(&mut self, action: &Action) -> Result<(), Error> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(action.clone());
        Ok(())
    }
}
