//! The crate's one error type.

/// Why input could not be injected, or why a session had to stop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// enigo could not reach the X server (no `DISPLAY`, server gone, no XTEST): the puppet cannot
    /// offer control, only viewing.
    #[cfg(feature = "inject")]
    #[error("could not connect to the display for injection: {0}")]
    Connect(#[source] enigo::NewConError),
    /// The X server refused or lost one injected event; the next event may still work.
    #[cfg(feature = "inject")]
    #[error("injecting an event failed: {0}")]
    Inject(#[source] enigo::InputError),
    /// An X request of our own (typing text through XTEST, or the observer's) failed.
    #[error("X request {what} failed: {detail}")]
    X11 {
        /// The request.
        what: &'static str,
        /// What the X library said.
        detail: String,
    },
    /// A pointer position that X cannot address (X coordinates are non-negative i16 here); the
    /// screen area given to the session is wrong.
    #[error("pointer position ({x}, {y}) is outside the X screen's 16-bit coordinates")]
    OutOfRange {
        /// Horizontal position in desktop pixels.
        x: i32,
        /// Vertical position in desktop pixels.
        y: i32,
    },
    /// The injector is so far behind that a key, button, wheel or text event found the queue
    /// full (`capacity` events, or [`crate::MAX_QUEUED_TEXT`] bytes of text). Such events are
    /// never dropped silently, so the session has been ended (everything released); the caller
    /// should close it.
    #[error("the injector is too far behind (queue of {capacity} events or its text budget full); the input session was ended")]
    Overloaded {
        /// The queue's capacity.
        capacity: usize,
    },
    /// Another injector (the synthetic desktop, an adapter) failed to carry out an action.
    #[error("the injector failed: {0}")]
    Injector(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The session was ended (overload, disconnect, or [`crate::PuppetInput::end`]) and takes no
    /// more events.
    #[error("the input session has ended")]
    SessionEnded,
    /// The injector thread is gone (it panicked or could not start).
    #[error("the injector thread has stopped")]
    InjectorStopped,
}
