//! rav1e, the pure-Rust AV1 encoder, set for the lowest latency it allows.
//!
//! rav1e has no zero-delay mode: even with `low_latency`, one frame of RDO lookahead and scene
//! detection off, a frame's packet comes out only after more frames have been sent (see the
//! benchmark and FACTS.md). Two ways of feeding it are offered:
//!
//! * [`Feeding::Duplicates`] (the default): after each real frame, the same picture (the same
//!   `Arc`, no copy) is sent again until the real frame's packet is out. The repeats are encoded
//!   too (cheap, nothing moved) and come out later as packets marked
//!   [`EncodedFrame::repeat`]; they must be sent on like any other, since later frames refer to
//!   them. An idle screen's last change is never stuck inside the encoder.
//! * [`Feeding::Queue`]: frames are only sent; packets come out some frames later and the held
//!   ones only on [`Encoder::flush`]. Fewer frames are encoded, but a screen that stops changing
//!   keeps its last frames inside the encoder. For offline encoding and for measurement.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use rav1e::prelude::*;

use super::{EncodedFrame, Encoder, EncoderConfig, FrameMeta};
use crate::error::{Error, Result};
use crate::frame::I420;

/// How frames are fed to rav1e; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Feeding {
    /// Repeat each frame until its packet is out (lowest delay; the live default).
    #[default]
    Duplicates,
    /// Send each frame once; packets come out late, the last ones only on flush.
    Queue,
}

/// Most repeats sent to push one frame out before giving up (rav1e needs about four).
const MAX_REPEATS: u32 = 16;

struct Pending {
    meta: FrameMeta,
    repeat: bool,
    sent_index: u64,
}

/// A rav1e encoder at speed 10, low latency, bitrate mode.
pub struct Rav1eEncoder {
    config: EncoderConfig,
    feeding: Feeding,
    context: Context<u8>,
    last_frame: Option<Arc<Frame<u8>>>,
    /// Frames inside the current context by rav1e's input frame number.
    pending: BTreeMap<u64, Pending>,
    /// rav1e's input number of the next frame sent to the current context.
    next_input: u64,
    /// Real frames handed over (for `frames_held`).
    sent_count: u64,
    bitrate_changed: bool,
    flushed: bool,
    ready: VecDeque<EncodedFrame>,
}

impl Rav1eEncoder {
    /// A rav1e encoder feeding [`Feeding::Duplicates`].
    pub fn new(config: &EncoderConfig) -> Result<Rav1eEncoder> {
        Self::with_feeding(config, Feeding::default())
    }

    /// A rav1e encoder with the given way of feeding.
    pub fn with_feeding(config: &EncoderConfig, feeding: Feeding) -> Result<Rav1eEncoder> {
        Ok(Rav1eEncoder {
            context: new_context(config)?,
            config: config.clone(),
            feeding,
            last_frame: None,
            pending: BTreeMap::new(),
            next_input: 0,
            sent_count: 0,
            bitrate_changed: false,
            flushed: false,
            ready: VecDeque::new(),
        })
    }

    fn send(
        &mut self,
        frame: Arc<Frame<u8>>,
        meta: FrameMeta,
        keyframe: bool,
        repeat: bool,
    ) -> Result<()> {
        let params = FrameParameters {
            frame_type_override: if keyframe {
                FrameTypeOverride::Key
            } else {
                FrameTypeOverride::No
            },
            opaque: None,
            t35_metadata: Box::new([]),
        };
        self.context
            .send_frame((frame, params))
            .map_err(|e| Error::Encoder(format!("rav1e send_frame: {e:?}")))?;
        self.pending.insert(
            self.next_input,
            Pending {
                meta,
                repeat,
                sent_index: self.sent_count,
            },
        );
        self.next_input += 1;
        Ok(())
    }

    /// Takes every packet rav1e has ready; returns whether `wanted`'s packet was among them.
    fn drain(&mut self, wanted: Option<u64>) -> Result<bool> {
        let mut found = false;
        loop {
            match self.context.receive_packet() {
                Ok(packet) => {
                    found |= Some(packet.input_frameno) == wanted;
                    self.accept(packet);
                }
                Err(EncoderStatus::Encoded) => continue,
                Err(EncoderStatus::NeedMoreData | EncoderStatus::LimitReached) => return Ok(found),
                Err(e) => return Err(Error::Encoder(format!("rav1e receive_packet: {e:?}"))),
            }
        }
    }

    fn accept(&mut self, packet: Packet<u8>) {
        let Some(pending) = self.pending.remove(&packet.input_frameno) else {
            return;
        };
        self.ready.push_back(EncodedFrame {
            data: packet.data,
            keyframe: packet.frame_type == FrameType::KEY,
            meta: pending.meta,
            produced_at: Instant::now(),
            frames_held: self.sent_count.saturating_sub(pending.sent_index + 1) as u32,
            repeat: pending.repeat,
            width: self.config.width,
            height: self.config.height,
        });
    }

    /// Ends the current context so its held frames come out, then starts a fresh one (used for
    /// a bitrate change, which rav1e only takes with a new sequence).
    fn restart(&mut self) -> Result<()> {
        self.context.flush();
        self.drain(None)?;
        self.pending.clear();
        self.context = new_context(&self.config)?;
        self.next_input = 0;
        Ok(())
    }
}

fn new_context(config: &EncoderConfig) -> Result<Context<u8>> {
    let mut enc = rav1e::config::EncoderConfig::with_speed_preset(10);
    enc.width = config.width as usize;
    enc.height = config.height as usize;
    enc.time_base = Rational::new(1, config.fps.max(1) as u64);
    enc.low_latency = true;
    enc.bitrate = (config.bitrate_kbps as i32).saturating_mul(1000);
    enc.min_key_frame_interval = 0;
    enc.max_key_frame_interval = i32::MAX as u64 / 3;
    enc.speed_settings.rdo_lookahead_frames = 1;
    enc.speed_settings.scene_detection_mode = SceneDetectionSpeed::None;
    enc.tile_cols = 2;
    enc.pixel_range = PixelRange::Limited;
    enc.color_description = Some(ColorDescription {
        color_primaries: ColorPrimaries::BT709,
        transfer_characteristics: TransferCharacteristics::BT709,
        matrix_coefficients: MatrixCoefficients::BT709,
    });
    Config::new()
        .with_encoder_config(enc)
        .with_threads(config.threads as usize)
        .new_context()
        .map_err(|e| Error::Encoder(format!("rav1e configuration: {e}")))
}

impl Encoder for Rav1eEncoder {
    fn name(&self) -> &'static str {
        "rav1e"
    }

    fn send_frame(&mut self, image: &I420, meta: FrameMeta, keyframe: bool) -> Result<()> {
        if image.width != self.config.width || image.height != self.config.height {
            return Err(Error::UnsupportedSize {
                width: image.width,
                height: image.height,
                reason: "differs from the size the encoder was made for",
            });
        }
        let mut keyframe = keyframe;
        if self.flushed {
            self.flushed = false;
            self.restart()?;
            keyframe = true;
        } else if std::mem::take(&mut self.bitrate_changed) {
            self.restart()?;
            keyframe = true;
        }
        let (width, height) = (image.width as usize, image.height as usize);
        let cw = width.div_ceil(2);
        let mut frame = self.context.new_frame();
        frame.planes[0].copy_from_raw_u8(&image.y, width, 1);
        frame.planes[1].copy_from_raw_u8(&image.u, cw, 1);
        frame.planes[2].copy_from_raw_u8(&image.v, cw, 1);
        // A frame shared through an Arc cannot be padded by rav1e itself.
        frame.planes[0].pad(width, height);
        frame.planes[1].pad(cw, height.div_ceil(2));
        frame.planes[2].pad(cw, height.div_ceil(2));
        let frame = Arc::new(frame);
        let input = self.next_input;
        self.send(frame.clone(), meta, keyframe, false)?;
        self.sent_count += 1;
        self.last_frame = Some(frame.clone());
        let mut out = self.drain(Some(input))?;
        if self.feeding == Feeding::Duplicates {
            let mut repeats = 0;
            while !out && repeats < MAX_REPEATS {
                self.send(frame.clone(), meta, false, true)?;
                repeats += 1;
                out = self.drain(Some(input))?;
            }
        }
        Ok(())
    }

    fn poll_packet(&mut self) -> Result<Option<EncodedFrame>> {
        Ok(self.ready.pop_front())
    }

    fn set_bitrate(&mut self, kbps: u32) {
        if kbps != self.config.bitrate_kbps {
            self.config.bitrate_kbps = kbps.max(1);
            self.bitrate_changed = true;
        }
    }

    fn bitrate(&self) -> u32 {
        self.config.bitrate_kbps
    }

    fn flush(&mut self) -> Result<()> {
        if self.flushed {
            return Ok(());
        }
        self.context.flush();
        self.drain(None)?;
        self.flushed = true;
        Ok(())
    }
}
