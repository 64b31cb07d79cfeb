//! AV1 encoding: one [`Encoder`] trait with two implementations (libaom realtime and rav1e), and
//! [`VideoEncoder`], the pipeline stage that skips unchanged screens, refreshes an idle one, and
//! converts BGRA frames on the way in.

use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::convert::bgra_to_i420_rows;
use crate::error::{Error, Result};
use crate::frame::{chroma_size, Frame, I420};

pub mod aom;
pub mod rav1e;

/// Which source frame a packet came from, carried through the encoder so delay and latency can
/// be measured at the other end of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    /// The source's frame number ([`Frame::number`]).
    pub number: u64,
    /// When the source grabbed the pixels.
    pub captured_at: Instant,
    /// The same moment in wall-clock microseconds since the Unix epoch.
    pub captured_unix_micros: u64,
    /// When the frame was handed to the encoder, to measure encoder delay alone.
    pub submitted_at: Instant,
}

impl FrameMeta {
    /// The metadata of a captured frame, handed over now.
    pub fn of(frame: &Frame) -> FrameMeta {
        FrameMeta {
            number: frame.number,
            captured_at: frame.captured_at,
            captured_unix_micros: frame.captured_unix_micros,
            submitted_at: Instant::now(),
        }
    }
}

/// One temporal unit of AV1 (a low-overhead OBU stream, the first one carrying the sequence
/// header): what str0m's AV1 packetizer, dav1d and an IVF file take as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The OBUs.
    pub data: Vec<u8>,
    /// Whether a decoder can start here (answer to a keyframe request).
    pub keyframe: bool,
    /// The source frame this packet encodes.
    pub meta: FrameMeta,
    /// When the encoder gave the packet out; minus `meta.submitted_at` is the encoder delay.
    pub produced_at: Instant,
    /// How many frames were handed to the encoder after this one before it came out (0 for
    /// libaom realtime, about 4 for rav1e).
    pub frames_held: u32,
    /// The packet shows the previous picture again: rav1e is fed repeats to push frames out
    /// (see [`rav1e::Feeding`]). It must still be sent; skip it when measuring delay.
    pub repeat: bool,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
}

/// An AV1 encoder fed frame by frame: send a frame, then poll until no packet is ready.
///
/// A send/poll pair rather than one call because rav1e holds frames back; libaom realtime
/// gives each frame's packet back before `send_frame` returns. Implementations are `Send` so
/// the encoder can live on its own thread.
pub trait Encoder: Send {
    /// A short name for logs and benchmark tables.
    fn name(&self) -> &'static str;
    /// Hands one frame over; `keyframe` forces it to be a keyframe. The image size must stay the
    /// size the encoder was made for (make a new encoder when the screen size changes).
    fn send_frame(&mut self, image: &I420, meta: FrameMeta, keyframe: bool) -> Result<()>;
    /// Takes the next finished packet, if one is ready.
    fn poll_packet(&mut self) -> Result<Option<EncodedFrame>>;
    /// Changes the target bitrate: libaom from the next frame, rav1e from its next keyframe
    /// (it cannot change rate control mid-stream; the change forces one).
    fn set_bitrate(&mut self, kbps: u32);
    /// The current target bitrate.
    fn bitrate(&self) -> u32;
    /// Ends the stream: every held frame becomes available to [`Encoder::poll_packet`].
    fn flush(&mut self) -> Result<()>;
}

/// Which AV1 encoder to use, as chosen on the command line (`--encoder aom|rav1e`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderKind {
    /// libaom in realtime mode: no frames held back, a few ms per frame. The default.
    #[default]
    Aom,
    /// rav1e: pure Rust, holds about four frames, tens of ms per frame at 720p.
    Rav1e,
}

impl EncoderKind {
    /// Both kinds, for benchmarks and tests that compare them.
    pub const ALL: [EncoderKind; 2] = [EncoderKind::Aom, EncoderKind::Rav1e];
}

impl fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncoderKind::Aom => "aom",
            EncoderKind::Rav1e => "rav1e",
        })
    }
}

impl FromStr for EncoderKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "aom" | "libaom" => Ok(EncoderKind::Aom),
            "rav1e" => Ok(EncoderKind::Rav1e),
            _ => Err(Error::UnknownEncoder(s.to_string())),
        }
    }
}

/// What an encoder is made with; [`EncoderConfig::new`] picks defaults for a screen size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Picture width (the screen's).
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Target bitrate in kbit/s (CBR for libaom).
    pub bitrate_kbps: u32,
    /// The frame rate the source is polled at; rate control budgets per frame from it.
    pub fps: u32,
    /// Encoder threads.
    pub threads: u32,
}

impl EncoderConfig {
    /// Defaults that give ≥ 38 dB on screen content: about 0.07 bit per pixel at 30 fps
    /// (1.9 Mbit/s at 720p), 30 fps, two threads.
    pub fn new(width: u32, height: u32) -> EncoderConfig {
        let pixels = width as u64 * height as u64;
        EncoderConfig {
            width,
            height,
            bitrate_kbps: default_bitrate_kbps(pixels),
            fps: 30,
            threads: 2,
        }
    }

    /// Makes the encoder of the given kind.
    pub fn build(&self, kind: EncoderKind) -> Result<Box<dyn Encoder>> {
        check_size(self.width, self.height)?;
        Ok(match kind {
            EncoderKind::Aom => Box::new(aom::AomEncoder::new(self)?),
            EncoderKind::Rav1e => Box::new(rav1e::Rav1eEncoder::new(self)?),
        })
    }
}

fn default_bitrate_kbps(pixels: u64) -> u32 {
    (pixels * 30 * 7 / 100 / 1000).clamp(200, 20_000) as u32
}

/// Refuses sizes neither encoder can take, before any library sees them.
pub(crate) fn check_size(width: u32, height: u32) -> Result<()> {
    let reason = if width < 16 || height < 16 {
        "smaller than 16 pixels"
    } else if width > 8192 || height > 8192 {
        "larger than 8192 pixels"
    } else if width % 2 == 1 || height % 2 == 1 {
        "odd dimensions (4:2:0 needs even sizes)"
    } else {
        return Ok(());
    };
    Err(Error::UnsupportedSize {
        width,
        height,
        reason,
    })
}

/// How often an unchanged screen is sent again as a keyframe, so a viewer that lost a packet
/// or joined late recovers without asking.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3);

/// The pipeline's encoding stage: BGRA frames in, AV1 packets out.
///
/// It costs nothing while the screen is still: a frame identical to the last one encoded is
/// dropped before the encoder sees it, and only after [`VideoEncoder::refresh_interval`] of
/// stillness is the last picture sent again, as a keyframe. Keyframe requests (PLI/FIR) and
/// bitrate changes go through it, and a screen size change makes a fresh encoder of the same
/// kind (the first packet then is a keyframe with the new size).
///
/// A frame that directly follows the last one it converted (the next [`Frame::number`]) is
/// converted only in the rows of its [`Frame::changed`] region; any other frame in full.
pub struct VideoEncoder {
    kind: EncoderKind,
    config: EncoderConfig,
    encoder: Box<dyn Encoder>,
    /// The last frame handed to [`VideoEncoder::encode`], converted.
    current: I420,
    /// The last picture given to the encoder. Equal to `current` between calls once
    /// `has_previous` is set, which lets a call compare and copy only the rows it converted.
    previous: I420,
    has_previous: bool,
    /// The number of the frame `current` holds, while it holds one in full.
    current_number: Option<u64>,
    keyframe_requested: bool,
    last_sent: Option<Instant>,
    last_meta: Option<FrameMeta>,
    refresh_interval: Duration,
    ready: VecDeque<EncodedFrame>,
}

impl VideoEncoder {
    /// An encoder of `kind` for frames of `config`'s size.
    pub fn new(kind: EncoderKind, config: EncoderConfig) -> Result<VideoEncoder> {
        let encoder = config.build(kind)?;
        Ok(VideoEncoder {
            kind,
            current: I420::new(config.width, config.height),
            previous: I420::new(config.width, config.height),
            config,
            encoder,
            has_previous: false,
            current_number: None,
            keyframe_requested: false,
            last_sent: None,
            last_meta: None,
            refresh_interval: DEFAULT_REFRESH,
            ready: VecDeque::new(),
        })
    }

    /// The encoder in use.
    pub fn kind(&self) -> EncoderKind {
        self.kind
    }

    /// The stillness after which the last picture is sent again as a keyframe.
    pub fn refresh_interval(&self) -> Duration {
        self.refresh_interval
    }

    /// Changes the refresh interval (`Duration::MAX` turns refreshes off).
    pub fn set_refresh_interval(&mut self, interval: Duration) {
        self.refresh_interval = interval;
    }

    /// Makes the next encoded frame a keyframe (a receiver's PLI or FIR).
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// Follows the bandwidth estimate (see [`Encoder::set_bitrate`] for when it applies).
    pub fn set_bitrate(&mut self, kbps: u32) {
        self.config.bitrate_kbps = kbps;
        self.encoder.set_bitrate(kbps);
    }

    /// The current target bitrate in kbit/s.
    pub fn bitrate(&self) -> u32 {
        self.encoder.bitrate()
    }

    /// Converts and encodes a captured frame unless it shows exactly what was last encoded.
    /// Returns whether the encoder was given the frame. Packets come from
    /// [`VideoEncoder::poll_packet`].
    pub fn encode(&mut self, frame: &Frame) -> Result<bool> {
        if frame.width != self.config.width || frame.height != self.config.height {
            self.restart(frame.width, frame.height)?;
        }
        let rows = self.rows_to_convert(frame);
        let rows = bgra_to_i420_rows(frame, &mut self.current, rows);
        self.current_number = Some(frame.number);
        let unchanged = self.has_previous && same_rows(&self.current, &self.previous, rows.clone());
        if unchanged && !self.keyframe_requested {
            return Ok(false);
        }
        if self.has_previous {
            // Outside `rows` the two are equal already (see `previous`).
            copy_rows(&self.current, &mut self.previous, rows);
        } else {
            self.previous.clone_from(&self.current);
        }
        self.has_previous = true;
        let meta = FrameMeta::of(frame);
        let keyframe = std::mem::take(&mut self.keyframe_requested);
        self.send(meta, keyframe)?;
        Ok(true)
    }

    /// Call regularly (at the capture rate) while nothing changes: after the refresh interval
    /// of stillness it re-sends the last picture as a keyframe, and it honours a pending keyframe
    /// request on a still screen. Returns whether anything was encoded.
    pub fn tick(&mut self, now: Instant) -> Result<bool> {
        let (Some(last_sent), Some(meta)) = (self.last_sent, self.last_meta) else {
            return Ok(false);
        };
        let due = now.saturating_duration_since(last_sent) >= self.refresh_interval;
        if !due && !self.keyframe_requested {
            return Ok(false);
        }
        self.keyframe_requested = false;
        let meta = FrameMeta {
            submitted_at: Instant::now(),
            ..meta
        };
        self.send(meta, true)?;
        Ok(true)
    }

    /// The next finished packet, oldest first.
    pub fn poll_packet(&mut self) -> Result<Option<EncodedFrame>> {
        if let Some(packet) = self.ready.pop_front() {
            return Ok(Some(packet));
        }
        self.encoder.poll_packet()
    }

    /// Ends the stream so every held frame can be polled out (rav1e holds some).
    pub fn flush(&mut self) -> Result<()> {
        self.encoder.flush()
    }

    /// The rows of `frame` that can differ from the frame `current` holds: its changed region
    /// when it is the source's next frame after that one, otherwise all of them. A frame the
    /// caller skipped (the puppet drops frames when the encoder is busy) breaks the sequence,
    /// and its changes would be missed, so the numbers must follow each other.
    fn rows_to_convert(&self, frame: &Frame) -> Range<u32> {
        let follows = self
            .current_number
            .is_some_and(|n| n.checked_add(1) == Some(frame.number));
        match frame.changed {
            Some(rect) if follows && rect.y.saturating_add(rect.height) <= frame.height => {
                rect.y..rect.y + rect.height
            }
            _ => 0..frame.height,
        }
    }

    fn send(&mut self, meta: FrameMeta, keyframe: bool) -> Result<()> {
        self.encoder.send_frame(&self.previous, meta, keyframe)?;
        self.last_sent = Some(meta.submitted_at);
        self.last_meta = Some(meta);
        Ok(())
    }

    fn restart(&mut self, width: u32, height: u32) -> Result<()> {
        // Whatever fails below, the next frame is converted and compared in full.
        self.has_previous = false;
        self.current_number = None;
        // Packets of the old size still held by the encoder go out first.
        self.encoder.flush()?;
        while let Some(packet) = self.encoder.poll_packet()? {
            self.ready.push_back(packet);
        }
        self.config.width = width;
        self.config.height = height;
        self.encoder = self.config.build(self.kind)?;
        self.current.resize(width, height);
        self.previous.resize(width, height);
        Ok(())
    }
}

/// The luma and chroma bytes of image rows `rows` (widened to whole chroma rows).
fn plane_ranges(image: &I420, rows: Range<u32>) -> [Range<usize>; 2] {
    let width = image.width as usize;
    let (cw, _) = chroma_size(image.width, image.height);
    let (start, end) = (rows.start as usize, rows.end as usize);
    [
        start * width..end * width,
        start / 2 * cw..end.div_ceil(2) * cw,
    ]
}

/// Whether two images have the same size and agree in rows `rows`.
fn same_rows(a: &I420, b: &I420, rows: Range<u32>) -> bool {
    let [luma, chroma] = plane_ranges(a, rows);
    (a.width, a.height) == (b.width, b.height)
        && a.y.get(luma.clone()) == b.y.get(luma)
        && a.u.get(chroma.clone()) == b.u.get(chroma.clone())
        && a.v.get(chroma.clone()) == b.v.get(chroma)
}

/// Copies rows `rows` of `from` into `to`, an image of the same size.
fn copy_rows(from: &I420, to: &mut I420, rows: Range<u32>) {
    let [luma, chroma] = plane_ranges(from, rows);
    to.y[luma.clone()].copy_from_slice(&from.y[luma]);
    to.u[chroma.clone()].copy_from_slice(&from.u[chroma.clone()]);
    to.v[chroma.clone()].copy_from_slice(&from.v[chroma]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::changed_region;
    use crate::convert::to_i420;
    use crate::frame::Rect;

    const W: u32 = 64;
    const H: u32 = 48;

    fn encoder() -> VideoEncoder {
        VideoEncoder::new(EncoderKind::Aom, EncoderConfig::new(W, H)).unwrap()
    }

    /// A frame of the given number whose pixels depend on `seed` (a gradient, so rows differ).
    fn frame(number: u64, seed: u8) -> Frame {
        let mut frame = Frame::new(W, H);
        for (i, px) in frame.data.chunks_exact_mut(4).enumerate() {
            let v = (i as u32).wrapping_mul(7).wrapping_add(seed as u32 * 31) as u8;
            px.copy_from_slice(&[v, v.wrapping_mul(3), seed, 0]);
        }
        frame.number = number;
        frame
    }

    /// `frame` with rows `rows` repainted from `other`, and the changed region set as a source
    /// would (the bounding box of the differences).
    fn repaint(base: &Frame, other: &Frame, rows: Range<u32>, number: u64) -> Frame {
        let mut next = base.clone();
        for y in rows {
            let at = y as usize * next.stride;
            let len = W as usize * 4;
            next.data[at..at + len].copy_from_slice(&other.data[at..at + len]);
        }
        next.number = number;
        next.changed = changed_region(&base.data, &next.data, W, H, base.stride);
        next
    }

    #[test]
    fn following_frames_converted_by_their_changed_rows_equal_full_conversions() {
        let mut encoder = encoder();
        let mut shown = frame(1, 0);
        assert!(encoder.encode(&shown).unwrap());
        for (number, rows) in [(2, 0..1), (3, 5..6), (4, 47..48), (5, 10..31), (6, 0..48)] {
            let next = repaint(&shown, &frame(0, number as u8), rows.clone(), number);
            assert!(encoder.encode(&next).unwrap(), "frame {number}");
            assert_eq!(
                encoder.previous,
                to_i420(&next),
                "frame {number}, rows {rows:?}"
            );
            assert_eq!(encoder.current, encoder.previous);
            shown = next;
        }
    }

    #[test]
    fn a_change_that_converts_to_the_same_picture_is_not_encoded() {
        let mut encoder = encoder();
        let first = frame(1, 0);
        assert!(encoder.encode(&first).unwrap());
        // Only the fourth byte (not alpha, X11's padding) changes.
        let mut next = first.clone();
        next.data[4 * 70 + 3] = 9;
        next.number = 2;
        next.changed = changed_region(&first.data, &next.data, W, H, first.stride);
        assert!(next.changed.is_some());
        assert!(!encoder.encode(&next).unwrap());
    }

    #[test]
    fn only_the_next_frame_of_the_sequence_is_trusted_with_its_changed_region() {
        // A region that does not cover the changes shows which path was taken.
        let understated = Some(Rect {
            x: 0,
            y: 20,
            width: W,
            height: 2,
        });
        let mut encoder = encoder();
        assert!(encoder.encode(&frame(1, 0)).unwrap());
        let mut next = frame(2, 1);
        next.changed = understated;
        assert!(encoder.encode(&next).unwrap());
        let (partial, full) = (&encoder.previous, to_i420(&next));
        let rows = plane_ranges(&full, 20..22)[0].clone();
        assert_eq!(partial.y[rows.clone()], full.y[rows]);
        assert_ne!(*partial, full, "rows outside the region were converted");

        // A frame after a gap (the caller dropped frame 3) is converted in full.
        let mut after_gap = frame(4, 2);
        after_gap.changed = understated;
        assert!(encoder.encode(&after_gap).unwrap());
        assert_eq!(encoder.previous, to_i420(&after_gap));
    }
}
