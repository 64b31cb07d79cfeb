//! The crate's one error type.

/// What went wrong in capture, coding or recording, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No X server could be reached (wrong `DISPLAY`, server gone): retry later or use the
    /// synthetic desktop.
    #[error("cannot connect to the X display {display:?}")]
    DisplayUnavailable {
        /// The display name tried (`None`: the default from `DISPLAY`).
        display: Option<String>,
    },
    /// The X server has no screen to capture, or capture could not be set up.
    #[error("screen capture failed: {0}")]
    Capture(String),
    /// The capture thread ended (its source failed or it was stopped); start a new one.
    #[error("the capture thread has stopped")]
    CaptureStopped,
    /// A frame's size is not one the codec accepts (zero, odd where even is needed, too large).
    #[error("unsupported frame size {width}x{height}: {reason}")]
    UnsupportedSize {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// Which limit was hit.
        reason: &'static str,
    },
    /// The encoder library refused its configuration or failed on a frame; recreate the encoder.
    #[error("encoder failed: {0}")]
    Encoder(String),
    /// The encoder named by `--encoder` is not known or not built in.
    #[error("unknown encoder {0:?} (known: aom, rav1e)")]
    UnknownEncoder(String),
    /// The decoder could not be created (out of memory, library mismatch).
    #[error("decoder could not start: {0}")]
    DecoderInit(String),
    /// The packet is not valid AV1 or is cut short; ask the sender for a keyframe.
    #[error("corrupt or truncated AV1 data: {0}")]
    CorruptData(String),
    /// The decoded picture is in a format we do not convert (only 8-bit 4:2:0 is produced by our
    /// encoders and by browsers' AV1 encoders).
    #[error("unsupported picture format: {0}")]
    UnsupportedPicture(String),
    /// Reading or writing a recording failed.
    #[error("recording I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
