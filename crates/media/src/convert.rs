//! Pixel conversion between captured BGRA and the I420 the codecs use, BT.709 limited range
//! (what dav1d, libaom and browsers assume for untagged 8-bit video).
//!
//! Integer fixed point (16 fractional bits), with no allocation. Chroma is the average of each
//! 2×2 block.
//!
//! Both conversions sit on the real-time path (a few ms per 720p frame when written plainly), so
//! the loops are shaped for LLVM's vectoriser: whole pixels read as numbers, `i32` lanes, no
//! branches. They are compiled for the baseline target and, on x86_64, again for AVX2 and for
//! AVX-512, chosen at run time: the wider lanes make most of the difference. The plain
//! per-pixel code is kept in `scalar` as the reference the tests hold the fast loops to, bit for
//! bit.

use std::ops::Range;

use crate::frame::{chroma_size, Frame, I420View, I420};

// BT.709 limited range, RGB -> YCbCr, scaled by 2^16 (see the tests for the float formulas).
const Y_R: i32 = 11966;
const Y_G: i32 = 40254;
const Y_B: i32 = 4064;
const U_R: i32 = -6596;
const U_G: i32 = -22189;
const U_B: i32 = 28784;
const V_R: i32 = 28784;
const V_G: i32 = -26145;
const V_B: i32 = -2639;

// YCbCr -> RGB, scaled by 2^16.
const C_Y: i32 = 76309;
const R_V: i32 = 117489;
const G_U: i32 = 13975;
const G_V: i32 = 34925;
const B_U: i32 = 138438;

const HALF: i32 = 1 << 15;

/// Converts a BGRA frame into `out`, resizing `out` to the frame's size when it differs.
pub fn bgra_to_i420(frame: &Frame, out: &mut I420) {
    bgra_to_i420_rows(frame, out, 0..frame.height);
}

/// Converts only the rows `rows` of a BGRA frame into `out`, widened to whole 2×2 chroma blocks
/// (from an even row to an even row or the last), and returns the rows written.
///
/// Meant for a frame that differs from the one `out` already holds only in `rows` (its changed
/// region): the result is then the same as a full conversion, at a fraction of the cost. When
/// `out` has another size it is resized and the whole frame converted.
pub fn bgra_to_i420_rows(frame: &Frame, out: &mut I420, rows: Range<u32>) -> Range<u32> {
    let rows = if out.width != frame.width || out.height != frame.height {
        out.resize(frame.width, frame.height);
        0..frame.height
    } else {
        rows.start.min(frame.height)..rows.end.min(frame.height)
    };
    if frame.width == 0 || rows.is_empty() {
        return rows.start..rows.start;
    }
    let pairs = rows.start as usize / 2..(rows.end as usize).div_ceil(2);
    let written = (pairs.start * 2) as u32..((pairs.end * 2) as u32).min(frame.height);
    Kernel::best().bgra_pairs(frame, out, pairs);
    written
}

/// Converts an I420 image (an encoder input or a decoded picture) into tightly packed RGBA with
/// opaque alpha, the layout a window's frame buffer wants. `rgba` is resized to
/// `width * height * 4` bytes, which allocates only when it grows.
pub fn i420_to_rgba(image: I420View<'_>, rgba: &mut Vec<u8>) {
    Kernel::best().i420_to_rgba(image, rgba);
}

/// Which code converts: the per-pixel reference (tests only), or the vector-friendly loops
/// compiled for the baseline target, for AVX2 or for AVX-512.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    #[cfg(test)]
    Scalar,
    Fast,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    /// The fastest kernel this processor runs (the feature check is a cached atomic load).
    fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512bw") {
                return Kernel::Avx512;
            }
            if has!("avx2") {
                return Kernel::Avx2;
            }
        }
        Kernel::Fast
    }

    /// Converts the 2-row pairs `pairs` of `frame` into `out`, which has the frame's size.
    fn bgra_pairs(self, frame: &Frame, out: &mut I420, pairs: Range<usize>) {
        match self {
            #[cfg(test)]
            Kernel::Scalar => bgra_pairs_with::<false>(frame, out, pairs),
            Kernel::Fast => bgra_pairs_with::<true>(frame, out, pairs),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Kernel::Avx2` is only chosen after `is_x86_feature_detected!("avx2")`
            // said yes (in `best` and in the tests), so the processor runs AVX2 code.
            #[allow(unsafe_code)]
            Kernel::Avx2 => unsafe { avx2::bgra_pairs(frame, out, pairs) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: likewise, only chosen once AVX-512 F and BW were detected.
            #[allow(unsafe_code)]
            Kernel::Avx512 => unsafe { avx512::bgra_pairs(frame, out, pairs) },
        }
    }

    fn i420_to_rgba(self, image: I420View<'_>, rgba: &mut Vec<u8>) {
        match self {
            #[cfg(test)]
            Kernel::Scalar => i420_to_rgba_with::<false>(image, rgba),
            // Without wide vectors the two passes cost more than they save (2.0 against 1.7 ms
            // at 720p with SSE2 alone): keep the per-pixel loop.
            Kernel::Fast => i420_to_rgba_with::<false>(image, rgba),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `bgra_pairs`, AVX2 was detected before this kernel was chosen.
            #[allow(unsafe_code)]
            Kernel::Avx2 => unsafe { avx2::i420_to_rgba(image, rgba) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `bgra_pairs`, AVX-512 F and BW were detected before.
            #[allow(unsafe_code)]
            Kernel::Avx512 => unsafe { avx512::i420_to_rgba(image, rgba) },
        }
    }
}

/// The fast loops compiled with AVX2 enabled: everything below is `#[inline(always)]`, so all
/// of it is compiled again here, with 8 `i32` lanes per instruction instead of 4.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2")]
    pub(super) fn bgra_pairs(frame: &Frame, out: &mut I420, pairs: Range<usize>) {
        bgra_pairs_with::<true>(frame, out, pairs);
    }

    #[target_feature(enable = "avx2")]
    pub(super) fn i420_to_rgba(image: I420View<'_>, rgba: &mut Vec<u8>) {
        i420_to_rgba_with::<true>(image, rgba);
    }
}

/// The same again with AVX-512 (16 `i32` lanes), which most recent x86 servers have.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::*;

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn bgra_pairs(frame: &Frame, out: &mut I420, pairs: Range<usize>) {
        bgra_pairs_with::<true>(frame, out, pairs);
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) fn i420_to_rgba(image: I420View<'_>, rgba: &mut Vec<u8>) {
        i420_to_rgba_with::<true>(image, rgba);
    }
}

/// Both luma rows and the chroma row of each pair in one go, while the pair's pixels are in cache.
#[inline(always)]
fn bgra_pairs_with<const FAST: bool>(frame: &Frame, out: &mut I420, pairs: Range<usize>) {
    let width = frame.width as usize;
    let height = frame.height as usize;
    let (cw, _) = chroma_size(frame.width, frame.height);
    for pair in pairs {
        let y0 = pair * 2;
        let y1 = (y0 + 1).min(height - 1);
        let row0 = &frame.data[y0 * frame.stride..y0 * frame.stride + width * 4];
        let row1 = &frame.data[y1 * frame.stride..y1 * frame.stride + width * 4];
        let (luma0, luma1) = out.y[y0 * width..(y1 + 1) * width].split_at_mut(width);
        let u = &mut out.u[pair * cw..(pair + 1) * cw];
        let v = &mut out.v[pair * cw..(pair + 1) * cw];
        if FAST {
            fast::luma_row(row0, luma0);
            fast::luma_row(row1, luma1);
            fast::chroma_row(row0, row1, u, v);
        } else {
            scalar::luma_row(row0, luma0);
            scalar::luma_row(row1, luma1);
            scalar::chroma_row(row0, row1, u, v);
        }
    }
}

#[inline(always)]
fn i420_to_rgba_with<const TWO_PASS: bool>(image: I420View<'_>, rgba: &mut Vec<u8>) {
    let width = image.width as usize;
    let height = image.height as usize;
    rgba.resize(width * height * 4, 255);
    let cw = width.div_ceil(2);
    for row in 0..height {
        let y = &image.y[row * image.y_stride..row * image.y_stride + width];
        let chroma_at = (row / 2) * image.uv_stride;
        let u = &image.u[chroma_at..chroma_at + cw];
        let v = &image.v[chroma_at..chroma_at + cw];
        let out = &mut rgba[row * width * 4..(row + 1) * width * 4];
        if TWO_PASS {
            fast::rgba_row(y, u, v, out);
        } else {
            scalar::rgba_row(y, u, v, out);
        }
    }
}

#[inline(always)]
fn luma(r: i32, g: i32, b: i32) -> u8 {
    ((Y_R * r + Y_G * g + Y_B * b + (16 << 16) + HALF) >> 16) as u8
}

/// Cb and Cr from the sums of a 2×2 block: the average is folded into the shift (2 more bits).
#[inline(always)]
fn chroma(rs: i32, gs: i32, bs: i32) -> (u8, u8) {
    let u = (U_R * rs + U_G * gs + U_B * bs + (128 << 18) + (1 << 17)) >> 18;
    let v = (V_R * rs + V_G * gs + V_B * bs + (128 << 18) + (1 << 17)) >> 18;
    (u as u8, v as u8)
}

/// The red, green and blue contributions of one chroma sample, with the rounding half folded in.
#[inline(always)]
fn chroma_offsets(cb: u8, cr: u8) -> (i32, i32, i32) {
    let cb = cb as i32 - 128;
    let cr = cr as i32 - 128;
    (
        R_V * cr + HALF,
        -G_U * cb - G_V * cr + HALF,
        B_U * cb + HALF,
    )
}

/// The same maths as [`scalar`], shaped for the vectoriser: pixels are read as whole numbers
/// (blue in the low byte) so every channel is a shift and a mask within a lane, never a
/// gather of bytes 4 apart.
mod fast {
    use super::*;

    #[inline(always)]
    pub(super) fn luma_row(bgra: &[u8], y: &mut [u8]) {
        for (px, out) in bgra.as_chunks::<4>().0.iter().zip(y.iter_mut()) {
            let p = u32::from_le_bytes(*px);
            let (b, g, r) = (p & 0xff, p >> 8 & 0xff, p >> 16 & 0xff);
            *out = luma(r as i32, g as i32, b as i32);
        }
    }

    /// Each two pixels of a row are one `u64`. Masking keeps blue and red in 16-bit fields
    /// (green in 32-bit ones), so the four values of a block add up without carrying into a
    /// neighbour: sums of four bytes are at most 1020.
    #[inline(always)]
    pub(super) fn chroma_row(row0: &[u8], row1: &[u8], u: &mut [u8], v: &mut [u8]) {
        const BLUE_RED: u64 = 0x00ff_00ff_00ff_00ff;
        const GREEN: u64 = 0x0000_00ff_0000_00ff;
        let (tops, _) = row0.as_chunks::<8>();
        let (bottoms, _) = row1.as_chunks::<8>();
        let blocks = tops.iter().zip(bottoms).zip(u.iter_mut()).zip(v.iter_mut());
        for (((top, bottom), u), v) in blocks {
            let (a, b) = (u64::from_le_bytes(*top), u64::from_le_bytes(*bottom));
            let blue_red = (a & BLUE_RED) + (b & BLUE_RED);
            let blue_red = (blue_red + (blue_red >> 32)) as u32;
            let green = (a >> 8 & GREEN) + (b >> 8 & GREEN);
            let green = (green + (green >> 32)) as u32;
            // The masks change nothing (sums fit in 10 bits); they tell the compiler so.
            let (rs, gs, bs) = (blue_red >> 16 & 0x7ff, green & 0x7ff, blue_red & 0x7ff);
            (*u, *v) = chroma(rs as i32, gs as i32, bs as i32);
        }
        if row0.len() / 4 % 2 == 1 {
            odd_column(row0, row1, u, v);
        }
    }

    /// Blocks of [`RGBA_BLOCK`] pixels in two passes: first each chroma sample's offsets,
    /// written twice (once per pixel they cover), then every pixel alone, packed into one `u32`.
    /// Each pass is a plain loop over lanes; worth it with AVX2 or AVX-512 only.
    #[inline(always)]
    pub(super) fn rgba_row(y: &[u8], u: &[u8], v: &[u8], out: &mut [u8]) {
        let (lumas, lumas_left) = y.as_chunks::<RGBA_BLOCK>();
        let (pixels, pixels_left) = out.as_chunks_mut::<{ 4 * RGBA_BLOCK }>();
        let blocks = lumas.iter().zip(pixels);
        let chroma = u.chunks(RGBA_BLOCK / 2).zip(v.chunks(RGBA_BLOCK / 2));
        for ((lumas, pixels), (u, v)) in blocks.zip(chroma) {
            rgba_block(lumas, u, v, pixels);
        }
        let done = lumas.len() * RGBA_BLOCK / 2;
        rgba_block(lumas_left, &u[done..], &v[done..], pixels_left);
    }

    /// Up to [`RGBA_BLOCK`] pixels, with the chroma samples covering them.
    #[inline(always)]
    fn rgba_block(y: &[u8], u: &[u8], v: &[u8], out: &mut [u8]) {
        let mut r_offs = [0; RGBA_BLOCK];
        let mut g_offs = [0; RGBA_BLOCK];
        let mut b_offs = [0; RGBA_BLOCK];
        let samples = y.len().div_ceil(2).min(RGBA_BLOCK / 2);
        for (k, (&cb, &cr)) in u[..samples].iter().zip(&v[..samples]).enumerate() {
            let (r, g, b) = chroma_offsets(cb, cr);
            (r_offs[2 * k], r_offs[2 * k + 1]) = (r, r);
            (g_offs[2 * k], g_offs[2 * k + 1]) = (g, g);
            (b_offs[2 * k], b_offs[2 * k + 1]) = (b, b);
        }
        let offsets = r_offs.iter().zip(&g_offs).zip(&b_offs);
        for ((&luma, px), ((&r_off, &g_off), &b_off)) in
            y.iter().zip(out.as_chunks_mut::<4>().0).zip(offsets)
        {
            let c = C_Y * (luma as i32 - 16);
            let r = ((c + r_off) >> 16).clamp(0, 255) as u32;
            let g = ((c + g_off) >> 16).clamp(0, 255) as u32;
            let b = ((c + b_off) >> 16).clamp(0, 255) as u32;
            *px = (r | g << 8 | b << 16 | 0xff << 24).to_le_bytes();
        }
    }
}

/// Pixels per block of [`fast::rgba_row`]: its offsets fill 1.5 KiB of stack.
const RGBA_BLOCK: usize = 128;

/// An odd width leaves one column whose block is only one pixel wide: repeat it.
#[inline(always)]
fn odd_column(row0: &[u8], row1: &[u8], u: &mut [u8], v: &mut [u8]) {
    let last = row0.len() - 4;
    let bs = 2 * (row0[last] as i32 + row1[last] as i32);
    let gs = 2 * (row0[last + 1] as i32 + row1[last + 1] as i32);
    let rs = 2 * (row0[last + 2] as i32 + row1[last + 2] as i32);
    let at = u.len() - 1;
    (u[at], v[at]) = chroma(rs, gs, bs);
}

/// Pixel by pixel, byte by byte, as first written: the reference the tests hold [`fast`] to,
/// and the RGBA loop of the baseline kernel (with narrow lanes the two-pass loop is slower).
mod scalar {
    use super::*;

    pub(super) fn luma_row(bgra: &[u8], y: &mut [u8]) {
        for (px, out) in bgra.chunks_exact(4).zip(y.iter_mut()) {
            *out = luma(px[2] as i32, px[1] as i32, px[0] as i32);
        }
    }

    pub(super) fn chroma_row(row0: &[u8], row1: &[u8], u: &mut [u8], v: &mut [u8]) {
        let pairs0 = row0.chunks_exact(8);
        let pairs1 = row1.chunks_exact(8);
        for (((a, b), u), v) in pairs0.zip(pairs1).zip(u.iter_mut()).zip(v.iter_mut()) {
            let bs = a[0] as i32 + a[4] as i32 + b[0] as i32 + b[4] as i32;
            let gs = a[1] as i32 + a[5] as i32 + b[1] as i32 + b[5] as i32;
            let rs = a[2] as i32 + a[6] as i32 + b[2] as i32 + b[6] as i32;
            (*u, *v) = chroma(rs, gs, bs);
        }
        if row0.len() / 4 % 2 == 1 {
            odd_column(row0, row1, u, v);
        }
    }

    #[inline(always)]
    pub(super) fn rgba_row(y: &[u8], u: &[u8], v: &[u8], out: &mut [u8]) {
        // Two pixels share one chroma sample: compute its three offsets once per pair.
        let pairs = y
            .chunks_exact(2)
            .zip(out.chunks_exact_mut(8))
            .zip(u.iter().zip(v));
        for ((luma, px), (&cb, &cr)) in pairs {
            let offsets = chroma_offsets(cb, cr);
            rgba_pixel(luma[0], offsets, &mut px[..4]);
            rgba_pixel(luma[1], offsets, &mut px[4..]);
        }
        if y.len() % 2 == 1 {
            let last = y.len() - 1;
            let offsets = chroma_offsets(u[last / 2], v[last / 2]);
            rgba_pixel(y[last], offsets, &mut out[last * 4..last * 4 + 4]);
        }
    }

    #[inline(always)]
    fn rgba_pixel(luma: u8, (r_off, g_off, b_off): (i32, i32, i32), px: &mut [u8]) {
        let c = C_Y * (luma as i32 - 16);
        px[0] = ((c + r_off) >> 16).clamp(0, 255) as u8;
        px[1] = ((c + g_off) >> 16).clamp(0, 255) as u8;
        px[2] = ((c + b_off) >> 16).clamp(0, 255) as u8;
        px[3] = 255;
    }
}

/// Peak signal-to-noise ratio of the luma planes in dB (`f64::INFINITY` when identical): the
/// quality figure tests and benchmarks report. Both images must have the same size.
pub fn psnr_y(a: I420View<'_>, b: I420View<'_>) -> f64 {
    let width = a.width.min(b.width) as usize;
    let height = a.height.min(b.height) as usize;
    let mut squared: u64 = 0;
    for row in 0..height {
        let ra = &a.y[row * a.y_stride..row * a.y_stride + width];
        let rb = &b.y[row * b.y_stride..row * b.y_stride + width];
        squared += ra
            .iter()
            .zip(rb)
            .map(|(&p, &q)| {
                let d = p as i32 - q as i32;
                (d * d) as u64
            })
            .sum::<u64>();
    }
    if squared == 0 {
        return f64::INFINITY;
    }
    let mse = squared as f64 / (width * height) as f64;
    10.0 * (255.0 * 255.0 / mse).log10()
}

/// Convenience for tests and tools: a fresh I420 image from a frame.
pub fn to_i420(frame: &Frame) -> I420 {
    let mut out = I420::new(frame.width, frame.height);
    bgra_to_i420(frame, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KR: f64 = 0.2126;
    const KB: f64 = 0.0722;
    const KG: f64 = 1.0 - KR - KB;

    fn reference_ycbcr(r: f64, g: f64, b: f64) -> (f64, f64, f64) {
        let y = KR * r + KG * g + KB * b;
        let cb = (b - y) / (2.0 * (1.0 - KB));
        let cr = (r - y) / (2.0 * (1.0 - KR));
        (
            16.0 + 219.0 * y / 255.0,
            128.0 + 224.0 * cb / 255.0,
            128.0 + 224.0 * cr / 255.0,
        )
    }

    fn reference_rgb(y: f64, cb: f64, cr: f64) -> (f64, f64, f64) {
        let yy = (y - 16.0) * 255.0 / 219.0;
        let pb = (cb - 128.0) * 255.0 / 224.0;
        let pr = (cr - 128.0) * 255.0 / 224.0;
        let r = yy + 2.0 * (1.0 - KR) * pr;
        let b = yy + 2.0 * (1.0 - KB) * pb;
        let g = (yy - KR * r - KB * b) / KG;
        (r, g, b)
    }

    fn solid(width: u32, height: u32, bgr: [u8; 3]) -> Frame {
        let mut frame = Frame::new(width, height);
        for px in frame.data.chunks_exact_mut(4) {
            px[..3].copy_from_slice(&bgr);
        }
        frame
    }

    #[test]
    fn every_grey_and_primary_matches_the_reference_within_one_step() {
        let mut colours = vec![];
        for v in (0..=255u8).step_by(5) {
            colours.push([v, v, v]);
            colours.push([v, 0, 0]);
            colours.push([0, v, 0]);
            colours.push([0, 0, v]);
            colours.push([v, 255 - v, v / 2]);
        }
        for bgr in colours {
            let image = to_i420(&solid(4, 2, bgr));
            let (y, cb, cr) = reference_ycbcr(bgr[2] as f64, bgr[1] as f64, bgr[0] as f64);
            assert!((image.y[0] as f64 - y).abs() <= 0.51, "Y of {bgr:?}");
            assert!((image.u[0] as f64 - cb).abs() <= 0.51, "Cb of {bgr:?}");
            assert!((image.v[0] as f64 - cr).abs() <= 0.51, "Cr of {bgr:?}");
        }
    }

    #[test]
    fn i420_to_rgba_matches_the_reference_inverse() {
        for (y, u, v) in [
            (16, 128, 128),
            (235, 128, 128),
            (81, 90, 240),
            (145, 54, 34),
            (41, 240, 110),
            (126, 128, 128),
        ] {
            let image = I420View {
                width: 2,
                height: 2,
                y: &[y; 4],
                u: &[u],
                v: &[v],
                y_stride: 2,
                uv_stride: 1,
            };
            let mut rgba = Vec::new();
            i420_to_rgba(image, &mut rgba);
            let (r, g, b) = reference_rgb(y as f64, u as f64, v as f64);
            for (got, want) in rgba[..3].iter().zip([r, g, b]) {
                assert!(
                    (*got as f64 - want.clamp(0.0, 255.0)).abs() <= 1.0,
                    "{y},{u},{v}: {rgba:?} vs {r},{g},{b}"
                );
            }
            assert_eq!(rgba[3], 255);
        }
    }

    #[test]
    fn a_round_trip_keeps_colours_within_a_few_steps() {
        let mut frame = Frame::new(33, 17);
        for (i, px) in frame.data.chunks_exact_mut(4).enumerate() {
            let shade = (i * 7 % 256) as u8;
            px[..3].copy_from_slice(&[shade, shade, shade]);
        }
        let image = to_i420(&frame);
        let mut rgba = Vec::new();
        i420_to_rgba(image.view(), &mut rgba);
        for (src, dst) in frame.data.chunks_exact(4).zip(rgba.chunks_exact(4)) {
            // Greys have neutral chroma, so only luma rounding (and its 219/255 scale) remains.
            assert!(
                (src[0] as i32 - dst[2] as i32).abs() <= 2,
                "{src:?} {dst:?}"
            );
        }
    }

    #[test]
    fn chroma_is_the_average_of_each_two_by_two_block_and_odd_edges_are_covered() {
        let mut frame = solid(3, 3, [0, 0, 0]);
        // Top-left 2x2 block: two white, two black pixels -> average grey 127.5.
        for (x, y) in [(0, 0), (1, 1)] {
            let at = y * frame.stride + x * 4;
            frame.data[at..at + 3].copy_from_slice(&[255, 255, 255]);
        }
        let image = to_i420(&frame);
        assert_eq!((image.u.len(), image.v.len()), (4, 4));
        assert_eq!((image.u[0], image.v[0]), (128, 128));
        assert_eq!(image.y[0], 235);
        assert_eq!(image.y[1], 16);
    }

    /// Every kernel this machine runs, the reference first.
    fn kernels() -> Vec<Kernel> {
        #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
        let mut kernels = vec![Kernel::Scalar, Kernel::Fast];
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx2") {
                kernels.push(Kernel::Avx2);
            }
            if has!("avx512f") && has!("avx512bw") {
                kernels.push(Kernel::Avx512);
            }
        }
        kernels
    }

    /// Deterministic noise (a linear congruential generator), so failures reproduce.
    fn noise(seed: u32, bytes: &mut [u8]) {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        for byte in bytes {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *byte = (state >> 16) as u8;
        }
    }

    /// Sizes around the vector widths (4, 8, 16, 32 pixels), odd and even, and a stride with
    /// padding after each row.
    const SIZES: [(u32, u32); 12] = [
        (1, 1),
        (2, 2),
        (3, 5),
        (7, 3),
        (16, 16),
        (17, 9),
        (31, 4),
        (33, 17),
        (64, 2),
        (100, 7),
        (127, 31),
        (641, 6),
    ];

    fn noisy_frame(width: u32, height: u32, seed: u32) -> Frame {
        let mut frame = Frame::new(width, height);
        frame.stride = width as usize * 4 + 12;
        frame.data = vec![0; frame.stride * height as usize];
        noise(seed, &mut frame.data);
        frame
    }

    fn convert_with(kernel: Kernel, frame: &Frame) -> I420 {
        let mut out = I420::new(frame.width, frame.height);
        kernel.bgra_pairs(frame, &mut out, 0..(frame.height as usize).div_ceil(2));
        out
    }

    #[test]
    fn fast_bgra_to_i420_equals_the_scalar_code_bit_for_bit() {
        for (seed, &(width, height)) in SIZES.iter().enumerate() {
            let mut frames = vec![noisy_frame(width, height, seed as u32)];
            // The extremes: sums of 255 must not carry from one channel into the next.
            for value in [0, 255] {
                let mut frame = noisy_frame(width, height, 0);
                frame.data.fill(value);
                frames.push(frame);
            }
            for frame in &frames {
                let reference = convert_with(Kernel::Scalar, frame);
                for kernel in kernels() {
                    let got = convert_with(kernel, frame);
                    assert_eq!(got, reference, "{kernel:?} {width}x{height}");
                }
            }
        }
    }

    #[test]
    fn fast_i420_to_rgba_equals_the_scalar_code_bit_for_bit() {
        for (seed, &(width, height)) in SIZES.iter().enumerate() {
            let (cw, ch) = chroma_size(width, height);
            // Strides wider than the picture, as decoded pictures have.
            let (y_stride, uv_stride) = (width as usize + 5, cw + 3);
            let mut y = vec![0; y_stride * height as usize];
            let mut u = vec![0; uv_stride * ch];
            let mut v = vec![0; uv_stride * ch];
            noise(seed as u32, &mut y);
            noise(seed as u32 + 100, &mut u);
            noise(seed as u32 + 200, &mut v);
            let image = I420View {
                width,
                height,
                y: &y,
                u: &u,
                v: &v,
                y_stride,
                uv_stride,
            };
            let mut reference = Vec::new();
            Kernel::Scalar.i420_to_rgba(image, &mut reference);
            for kernel in kernels() {
                let mut got = vec![7; 3];
                kernel.i420_to_rgba(image, &mut got);
                assert!(got == reference, "{kernel:?} {width}x{height}");
            }
        }
    }

    #[test]
    fn converting_the_changed_rows_equals_converting_the_whole_frame() {
        for (seed, &(width, height)) in SIZES.iter().enumerate() {
            let before = noisy_frame(width, height, seed as u32);
            let all = [
                0..1,
                1..2,
                1..height,
                height / 2..height / 2 + 1,
                height - 1..height,
            ];
            for rows in all.into_iter().filter(|r| !r.is_empty() && r.end <= height) {
                let mut after = before.clone();
                for row in rows.clone() {
                    let at = row as usize * after.stride;
                    noise(row + 1000, &mut after.data[at..at + width as usize * 4]);
                }
                let mut image = to_i420(&before);
                let written = bgra_to_i420_rows(&after, &mut image, rows.clone());
                assert_eq!(image, to_i420(&after), "{width}x{height}, rows {rows:?}");
                assert!(written.start.is_multiple_of(2) && written.start <= rows.start);
                assert!(written.end >= rows.end && written.end <= height);
            }
        }
    }

    #[test]
    fn converting_rows_into_an_image_of_another_size_converts_the_whole_frame() {
        let frame = noisy_frame(33, 17, 3);
        let mut image = I420::new(8, 8);
        assert_eq!(bgra_to_i420_rows(&frame, &mut image, 4..6), 0..17);
        assert_eq!(image, to_i420(&frame));
        assert_eq!(bgra_to_i420_rows(&frame, &mut image, 20..30), 17..17);
    }

    #[test]
    fn psnr_is_infinite_for_identical_images_and_finite_otherwise() {
        let a = I420::new(16, 16);
        let mut b = a.clone();
        assert!(psnr_y(a.view(), b.view()).is_infinite());
        b.y[0] = 26;
        let p = psnr_y(a.view(), b.view());
        assert!(p > 40.0 && p < 60.0, "{p}");
    }
}
