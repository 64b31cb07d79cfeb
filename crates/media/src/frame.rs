//! The pictures that flow through the pipeline: captured BGRA frames and planar I420 images.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A rectangle in pixels, used to say which part of a screen changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width; never 0 for a changed region.
    pub width: u32,
    /// Height; never 0 for a changed region.
    pub height: u32,
}

impl Rect {
    /// The smallest rectangle holding both, so successive changes can be merged.
    pub fn union(self, other: Rect) -> Rect {
        let x = self.x.min(other.x);
        let y = self.y.min(other.y);
        let right = (self.x + self.width).max(other.x + other.width);
        let bottom = (self.y + self.height).max(other.y + other.height);
        Rect {
            x,
            y,
            width: right - x,
            height: bottom - y,
        }
    }
}

/// One captured screen image in BGRA byte order (blue first; the 4th byte is not alpha and may
/// hold anything, as X11 delivers BGRX).
///
/// The capture time travels with the frame through conversion and encoding, so the encoder's
/// output can say how long the frame took to come out (encoder delay) and the far end can
/// measure glass-to-glass latency.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from one row to the next (at least `width * 4`).
    pub stride: usize,
    /// `stride * height` bytes of BGRA pixels.
    pub data: Vec<u8>,
    /// Counts the frames a source handed on (unchanged screens are not counted).
    pub number: u64,
    /// When the pixels were grabbed, on this process's monotonic clock.
    pub captured_at: Instant,
    /// The same moment in wall-clock microseconds since the Unix epoch, comparable across machines
    /// with synchronised clocks.
    pub captured_unix_micros: u64,
    /// The part of the screen that differs from the previous frame the source handed on; `None`
    /// when unknown (first frame, size change) and the whole frame must be assumed changed.
    pub changed: Option<Rect>,
}

impl Frame {
    /// An all-black frame, the starting point for sources that draw into a reused buffer.
    pub fn new(width: u32, height: u32) -> Frame {
        let stride = width as usize * 4;
        Frame {
            width,
            height,
            stride,
            data: vec![0; stride * height as usize],
            number: 0,
            captured_at: Instant::now(),
            captured_unix_micros: unix_micros_now(),
            changed: None,
        }
    }

    /// The bytes of row `y` (only the `width * 4` visible bytes).
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.width as usize * 4]
    }

    /// Blue, green and red of one pixel; for tests and probes, not for bulk work.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let at = y as usize * self.stride + x as usize * 4;
        [self.data[at], self.data[at + 1], self.data[at + 2]]
    }
}

/// The current wall-clock time in microseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_micros_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// An 8-bit planar YUV 4:2:0 image (BT.709, limited range) that owns its planes; what the
/// encoders take. Chroma planes are `(width + 1) / 2` × `(height + 1) / 2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct I420 {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Luma, `width` bytes per row.
    pub y: Vec<u8>,
    /// Blue-difference chroma, `(width + 1) / 2` bytes per row.
    pub u: Vec<u8>,
    /// Red-difference chroma, `(width + 1) / 2` bytes per row.
    pub v: Vec<u8>,
}

impl I420 {
    /// A mid-grey image of the given size, to be filled by conversion and reused frame after frame.
    pub fn new(width: u32, height: u32) -> I420 {
        let (cw, ch) = chroma_size(width, height);
        I420 {
            width,
            height,
            y: vec![16; width as usize * height as usize],
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
        }
    }

    /// Changes the size, reallocating only when it grows, so a resized screen keeps working.
    pub fn resize(&mut self, width: u32, height: u32) {
        let (cw, ch) = chroma_size(width, height);
        self.width = width;
        self.height = height;
        self.y.resize(width as usize * height as usize, 16);
        self.u.resize(cw * ch, 128);
        self.v.resize(cw * ch, 128);
    }

    /// A borrowed view, the form conversion, PSNR and the stamp reader take.
    pub fn view(&self) -> I420View<'_> {
        let (cw, _) = chroma_size(self.width, self.height);
        I420View {
            width: self.width,
            height: self.height,
            y: &self.y,
            u: &self.u,
            v: &self.v,
            y_stride: self.width as usize,
            uv_stride: cw,
        }
    }
}

/// Width and height of a chroma plane for a 4:2:0 image of the given size.
pub fn chroma_size(width: u32, height: u32) -> (usize, usize) {
    (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
}

/// A borrowed I420 image with arbitrary strides: an [`I420`] or a decoded picture, without a copy.
#[derive(Debug, Clone, Copy)]
pub struct I420View<'a> {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Luma plane, `y_stride` bytes per row.
    pub y: &'a [u8],
    /// Blue-difference plane, `uv_stride` bytes per row.
    pub u: &'a [u8],
    /// Red-difference plane, `uv_stride` bytes per row.
    pub v: &'a [u8],
    /// Bytes per luma row.
    pub y_stride: usize,
    /// Bytes per chroma row.
    pub uv_stride: usize,
}

impl I420View<'_> {
    /// Luma at one pixel; for probes and tests.
    pub fn luma(&self, x: u32, y: u32) -> u8 {
        self.y[y as usize * self.y_stride + x as usize]
    }

    /// Chroma (U, V) covering one pixel; for probes and tests.
    pub fn chroma(&self, x: u32, y: u32) -> (u8, u8) {
        let at = (y / 2) as usize * self.uv_stride + (x / 2) as usize;
        (self.u[at], self.v[at])
    }
}
