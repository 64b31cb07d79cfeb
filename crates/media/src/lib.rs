//! What turns a screen into AV1 and back into pixels.
//!
//! On the puppet, frames enter from a [`Capture`] source: the X11 screen ([`X11Capture`],
//! through scrap) or the [`SyntheticDesktop`], a deterministic screen that is also an input
//! sink and stamps every frame with its number and capture time. A [`CaptureThread`] grabs the
//! source as soon as it signals a change (X DAMAGE; the synthetic desktop's own signal), up to a
//! set rate, or polls at that rate when it cannot signal, and hands on only changed frames (BGRA, [`Frame`]). A
//! [`VideoEncoder`] converts them to I420 (BT.709 limited range) and encodes them with libaom
//! in realtime mode (the default) or rav1e; out come [`EncodedFrame`]s, AV1 temporal units for
//! str0m's packetizer or an [`IvfWriter`] recording. On the controller, a [`Decoder`] (dav1d)
//! turns each unit back into a picture, and [`i420_to_rgba`] into window pixels. Before
//! encoding, [`Scaler`] shrinks a picture to fit a size limit ([`fit_within`]) and [`crop_even`]
//! trims an odd-sized one to the even size the encoders need.
//!
//! ```
//! use rtcdesk_media::{Capture, Decoder, EncoderConfig, EncoderKind, Frame, SyntheticDesktop, VideoEncoder};
//!
//! let mut desktop = SyntheticDesktop::new(640, 360);
//! let mut encoder = VideoEncoder::new(EncoderKind::Aom, EncoderConfig::new(640, 360))?;
//! let mut decoder = Decoder::new(1)?;
//! let mut frame = Frame::new(640, 360);
//! desktop.text("hello");
//! if desktop.grab(&mut frame)? {
//!     encoder.encode(&frame)?;
//! }
//! while let Some(packet) = encoder.poll_packet()? {
//!     let picture = decoder.decode(&packet.data, 0)?.expect("one picture per packet");
//!     let stamp = rtcdesk_media::read_stamp(picture.view()).expect("stamp survives coding");
//!     assert_eq!(stamp.frame_number, 1);
//! }
//! # Ok::<(), rtcdesk_media::Error>(())
//! ```
//!
//! `unsafe` code is denied except in two places, each with its invariants beside it: the libaom
//! bindings in [`encode::aom`], and the calls into the AVX2 and AVX-512 builds of the pixel
//! conversions in [`convert`], made only after the processor was seen to support them.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod capture;
pub mod convert;
pub mod decode;
pub mod encode;
mod error;
pub mod frame;
pub mod ivf;
pub mod scale;
pub mod stamp;

pub use capture::synthetic::{find_pointer, Button, SyntheticDesktop};
pub use capture::x11::X11Capture;
pub use capture::{Capture, CaptureThread};
pub use convert::{bgra_to_i420, i420_to_rgba, psnr_y};
pub use decode::{DecodedFrame, Decoder};
pub use encode::{EncodedFrame, Encoder, EncoderConfig, EncoderKind, FrameMeta, VideoEncoder};
pub use error::{Error, Result};
pub use frame::{Frame, I420View, Rect, I420};
pub use ivf::{IvfReader, IvfWriter};
pub use scale::{crop_even, fit_within, Scaler};
pub use stamp::{read_stamp, read_stamp_bgra, Stamp};
