//! Fitting a captured picture to what the encoder takes: scaling it down (the puppet's
//! `--max-size`), keeping its aspect ratio, and cropping an odd-sized one to even dimensions.
//!
//! Scaling is a box filter: each output pixel is the average of the source pixels it covers,
//! which keeps text legible when shrinking by non-integer factors. The column spans are computed
//! once per size and the output frame is reused, so steady scaling allocates nothing; so is the
//! cropped frame.

use crate::Frame;

/// The largest even size of the same aspect ratio as `width`×`height` that fits in
/// `max_width`×`max_height`; the size itself (made even) when it already fits. Never below
/// 16×16 (the encoders' minimum).
pub fn fit_within(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    let even = |v: u32| (v & !1).max(16);
    if width <= max_width && height <= max_height {
        return (even(width), even(height));
    }
    // Scale by the tighter of the two limits, in integer arithmetic.
    let (w, h) = if width as u64 * max_height as u64 >= height as u64 * max_width as u64 {
        (
            max_width,
            (height as u64 * max_width as u64 / width.max(1) as u64) as u32,
        )
    } else {
        (
            (width as u64 * max_height as u64 / height.max(1) as u64) as u32,
            max_height,
        )
    };
    (even(w), even(h))
}

/// Scales BGRA frames to a fixed output size, reusing its buffers.
#[derive(Debug)]
pub struct Scaler {
    out: Frame,
    source_size: (u32, u32),
    columns: Vec<(u32, u32)>,
    rows: Vec<(u32, u32)>,
}

/// Where each output column (or row) starts and ends in the source, at least one pixel wide.
fn spans(source: u32, output: u32) -> Vec<(u32, u32)> {
    (0..output)
        .map(|i| {
            let start = (i as u64 * source as u64 / output as u64) as u32;
            let end = ((i as u64 + 1) * source as u64 / output as u64) as u32;
            (start.min(source - 1), end.max(start + 1).min(source))
        })
        .collect()
}

impl Scaler {
    /// A scaler producing `width`×`height` frames.
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            out: Frame::new(width, height),
            source_size: (0, 0),
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The output size.
    pub fn size(&self) -> (u32, u32) {
        (self.out.width, self.out.height)
    }

    /// Scales `frame` and returns the result, which carries the source frame's number, capture
    /// times and (scaled) nothing else: the changed region is dropped (unknown after scaling).
    pub fn scale(&mut self, frame: &Frame) -> &Frame {
        let (ow, oh) = (self.out.width, self.out.height);
        if self.source_size != (frame.width, frame.height) {
            self.source_size = (frame.width, frame.height);
            self.columns = spans(frame.width.max(1), ow);
            self.rows = spans(frame.height.max(1), oh);
        }
        let out_stride = self.out.stride;
        for (oy, &(y0, y1)) in self.rows.iter().enumerate() {
            let out_row = &mut self.out.data[oy * out_stride..oy * out_stride + ow as usize * 4];
            for (ox, &(x0, x1)) in self.columns.iter().enumerate() {
                let mut sum = [0u32; 3];
                for y in y0..y1 {
                    let row = &frame.data[y as usize * frame.stride..];
                    for x in x0..x1 {
                        let p = &row[x as usize * 4..x as usize * 4 + 3];
                        sum[0] += p[0] as u32;
                        sum[1] += p[1] as u32;
                        sum[2] += p[2] as u32;
                    }
                }
                let count = (y1 - y0) * (x1 - x0);
                let px = &mut out_row[ox * 4..ox * 4 + 4];
                px[0] = (sum[0] / count) as u8;
                px[1] = (sum[1] / count) as u8;
                px[2] = (sum[2] / count) as u8;
                px[3] = 255;
            }
        }
        self.out.number = frame.number;
        self.out.captured_at = frame.captured_at;
        self.out.captured_unix_micros = frame.captured_unix_micros;
        self.out.changed = None;
        &self.out
    }
}

/// Copies `frame` without its last column and row when they are odd (the encoders need even
/// sizes), into `out`, which is resized only when the size changes. Like [`Scaler::scale`], it
/// carries over the frame's number and capture times and drops its changed region.
pub fn crop_even(frame: &Frame, out: &mut Frame) {
    let (w, h) = (frame.width & !1, frame.height & !1);
    if out.width != w || out.height != h {
        *out = Frame::new(w, h);
    }
    for y in 0..h {
        let row = &frame.row(y)[..w as usize * 4];
        let at = y as usize * out.stride;
        out.data[at..at + row.len()].copy_from_slice(row);
    }
    out.number = frame.number;
    out.captured_at = frame.captured_at;
    out.captured_unix_micros = frame.captured_unix_micros;
    out.changed = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_the_aspect_ratio_and_stay_even() {
        assert_eq!(fit_within(1920, 1080, 1280, 720), (1280, 720));
        assert_eq!(fit_within(1920, 1080, 1280, 1280), (1280, 720));
        assert_eq!(fit_within(1080, 1920, 1280, 720), (404, 720));
        assert_eq!(fit_within(1280, 720, 1920, 1080), (1280, 720));
        assert_eq!(fit_within(1366, 768, 1000, 1000), (1000, 562));
        assert_eq!(fit_within(1001, 501, 4000, 4000), (1000, 500));
        assert_eq!(fit_within(1920, 1080, 4, 4), (16, 16));
    }

    #[test]
    fn halving_averages_each_block_of_four() {
        let mut frame = Frame::new(4, 2);
        for x in 0..4usize {
            for y in 0..2usize {
                let v = (x * 40 + y * 20) as u8;
                let at = y * frame.stride + x * 4;
                frame.data[at..at + 3].copy_from_slice(&[v, v, v]);
            }
        }
        frame.number = 7;
        let mut scaler = Scaler::new(2, 1);
        let out = scaler.scale(&frame);
        assert_eq!(out.number, 7);
        // Block (0..2, 0..2): 0, 40, 20, 60 -> 30. Block (2..4): 80, 120, 100, 140 -> 110.
        assert_eq!(out.pixel(0, 0), [30, 30, 30]);
        assert_eq!(out.pixel(1, 0), [110, 110, 110]);
    }

    #[test]
    fn a_uniform_picture_stays_uniform_at_odd_ratios() {
        let mut frame = Frame::new(1366, 768);
        for px in frame.data.chunks_exact_mut(4) {
            px.copy_from_slice(&[10, 20, 30, 0]);
        }
        let (w, h) = fit_within(1366, 768, 1000, 1000);
        let mut scaler = Scaler::new(w, h);
        let out = scaler.scale(&frame);
        assert_eq!((out.width, out.height), (1000, 562));
        assert!(out.data.chunks_exact(4).all(|p| p[..3] == [10, 20, 30]));
    }

    #[test]
    fn an_odd_frame_loses_its_last_column_and_row_and_keeps_the_rest() {
        // Given a 5×3 frame whose every pixel says where it is,
        let mut frame = Frame::new(5, 3);
        for y in 0..3u32 {
            for x in 0..5u32 {
                let at = y as usize * frame.stride + x as usize * 4;
                frame.data[at..at + 3].copy_from_slice(&[x as u8, y as u8, 9]);
            }
        }
        frame.number = 42;
        frame.captured_unix_micros = 1_234;
        // when it is cropped into a frame of another size,
        let mut out = Frame::new(0, 0);
        crop_even(&frame, &mut out);
        // then the result is 4×2, each pixel from the same place, with the frame's number and time.
        assert_eq!((out.width, out.height), (4, 2));
        for y in 0..2 {
            for x in 0..4 {
                assert_eq!(out.pixel(x, y), [x as u8, y as u8, 9], "pixel ({x}, {y})");
            }
        }
        assert_eq!(out.number, 42);
        assert_eq!(out.captured_unix_micros, 1_234);
        assert!(out.changed.is_none());
    }

    #[test]
    fn cropping_again_at_the_same_size_reuses_the_frame() {
        let frame = Frame::new(7, 5);
        let mut out = Frame::new(0, 0);
        crop_even(&frame, &mut out);
        let buffer = out.data.as_ptr();
        crop_even(&frame, &mut out);
        assert_eq!((out.width, out.height), (6, 4));
        assert_eq!(
            out.data.as_ptr(),
            buffer,
            "no new allocation for the same size"
        );
    }
}
