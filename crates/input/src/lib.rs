//! rtcdesk's input: the controller turns window events into input protocol v1 messages, and the
//! puppet turns those messages into pointer, wheel, key and text events on its desktop, safely.
//!
//! On the **puppet**, a decoded [`InputMessage`](rtcdesk_proto::InputMessage) enters a
//! [`PuppetInput`]. Its policy core, [`InputSession`] (sans-IO, no clock, no threads), refuses
//! everything in view-only sessions, drops pointer moves older than the newest positioned event
//! seen, maps normalised coordinates onto the captured screen area, applies the
//! [`KeyboardMode`], and remembers what it pressed. The decided [`Action`]s go through a bounded
//! queue to an [`InjectorThread`], which hands them one by one to an [`Injector`]:
//! [`EnigoInjector`] on a real X server (enigo for pointer, buttons, wheel and positional keys;
//! its own XTEST typist for text), [`Recorder`] in tests, or the synthetic desktop. Ending or
//! dropping the session releases every key and button it left pressed; a flood coalesces pointer
//! moves and, rather than lose a key, ends the session (see [`thread`]).
//!
//! On the **controller**, `window::WindowInput` turns winit window events, and the geometry of
//! the video picture in the window, into messages with sequence numbers and timestamps.
//!
//! Each side is a Cargo feature, so that neither program links the other's libraries: `inject`
//! (enigo and XTEST: [`EnigoInjector`], [`observe`]) for the puppet, `window` (winit:
//! `window`, the winit key table) for the controller. The policy core, the injector thread,
//! [`Recorder`] and the rest of the key tables need neither. Both features are on by default.
//!
//! ```
//! use rtcdesk_input::{InjectorThread, PuppetInput, Recorder, ScreenArea, SessionConfig, Action};
//! use rtcdesk_proto::input::{InputEvent, InputMessage, Modifiers};
//! use rtcdesk_proto::KeyCode;
//!
//! let desktop = Recorder::new();
//! let injector = InjectorThread::spawn(64, { let d = desktop.clone(); move || Ok(d) })?;
//! let mut input = PuppetInput::new(SessionConfig::new(ScreenArea::at_origin(1280, 720)), injector.handle());
//! let key_down = InputEvent::Key { code: KeyCode::KeyA, pressed: true, modifiers: Modifiers::NONE };
//! input.handle_message(&InputMessage { seq: 1, timestamp_us: 0, event: key_down })?;
//! drop(input); // the controller left: KeyA is released
//! injector.handle().wait_idle(std::time::Duration::from_secs(1));
//! assert_eq!(desktop.actions().last(), Some(&Action::Key { code: KeyCode::KeyA, pressed: false }));
//! # Ok::<(), rtcdesk_input::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "inject")]
mod enigo_injector;
mod error;
mod inject;
pub mod keys;
#[cfg(feature = "inject")]
pub mod observe;
mod session;
pub mod thread;
#[cfg(feature = "inject")]
mod typist;
#[cfg(feature = "window")]
pub mod window;

#[cfg(feature = "inject")]
pub use enigo_injector::EnigoInjector;
pub use error::Error;
pub use inject::{Injector, Recorder};
pub use session::{
    seq_is_newer, Action, InputSession, KeyboardMode, ScreenArea, SessionConfig, SessionStats,
    DEFAULT_MAX_NOTCHES, DEFAULT_PIXELS_PER_NOTCH,
};
pub use thread::{
    InjectorHandle, InjectorThread, PuppetInput, QueueStats, DEFAULT_QUEUE_CAPACITY,
    MAX_QUEUED_TEXT,
};
