//! Pixel conversion between captured BGRA and the I420 the codecs use, BT.709 limited range
//! (what dav1d, libaom and browsers assume for untagged 8-bit video).
//!
//! Integer fixed point (16 fractional bits) over whole rows, with no allocation: the loops are
//! plain enough for the compiler to vectorise. Chroma is the average of each 2×2 block.

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
    if out.width != frame.width || out.height != frame.height {
        out.resize(frame.width, frame.height);
    }
    let width = frame.width as usize;
    let height = frame.height as usize;
    if width == 0 || height == 0 {
        return;
    }
    let (cw, _) = chroma_size(frame.width, frame.height);
    for pair in 0..height.div_ceil(2) {
        let y0 = pair * 2;
        let y1 = (y0 + 1).min(height - 1);
        let row0 = &frame.data[y0 * frame.stride..y0 * frame.stride + width * 4];
        let row1 = &frame.data[y1 * frame.stride..y1 * frame.stride + width * 4];
        luma_row(row0, &mut out.y[y0 * width..(y0 + 1) * width]);
        if y1 != y0 {
            luma_row(row1, &mut out.y[y1 * width..(y1 + 1) * width]);
        }
        let u = &mut out.u[pair * cw..(pair + 1) * cw];
        let v = &mut out.v[pair * cw..(pair + 1) * cw];
        chroma_row(row0, row1, u, v);
    }
}

fn luma_row(bgra: &[u8], y: &mut [u8]) {
    for (px, out) in bgra.chunks_exact(4).zip(y.iter_mut()) {
        let (b, g, r) = (px[0] as i32, px[1] as i32, px[2] as i32);
        *out = ((Y_R * r + Y_G * g + Y_B * b + (16 << 16) + HALF) >> 16) as u8;
    }
}

fn chroma_row(row0: &[u8], row1: &[u8], u: &mut [u8], v: &mut [u8]) {
    let pairs0 = row0.chunks_exact(8);
    let pairs1 = row1.chunks_exact(8);
    let whole = pairs0.len();
    for (((a, b), u), v) in pairs0.zip(pairs1).zip(u.iter_mut()).zip(v.iter_mut()) {
        // Sums of four pixels: the average is folded into the final shift (2 more bits).
        let bs = a[0] as i32 + a[4] as i32 + b[0] as i32 + b[4] as i32;
        let gs = a[1] as i32 + a[5] as i32 + b[1] as i32 + b[5] as i32;
        let rs = a[2] as i32 + a[6] as i32 + b[2] as i32 + b[6] as i32;
        *u = ((U_R * rs + U_G * gs + U_B * bs + (128 << 18) + (1 << 17)) >> 18) as u8;
        *v = ((V_R * rs + V_G * gs + V_B * bs + (128 << 18) + (1 << 17)) >> 18) as u8;
    }
    // An odd width leaves one column whose block is only one pixel wide: repeat it.
    if row0.len() / 4 % 2 == 1 {
        let last = row0.len() - 4;
        let bs = 2 * (row0[last] as i32 + row1[last] as i32);
        let gs = 2 * (row0[last + 1] as i32 + row1[last + 1] as i32);
        let rs = 2 * (row0[last + 2] as i32 + row1[last + 2] as i32);
        u[whole] = ((U_R * rs + U_G * gs + U_B * bs + (128 << 18) + (1 << 17)) >> 18) as u8;
        v[whole] = ((V_R * rs + V_G * gs + V_B * bs + (128 << 18) + (1 << 17)) >> 18) as u8;
    }
}

/// Converts an I420 image (an encoder input or a decoded picture) into tightly packed RGBA with
/// opaque alpha, the layout a window's frame buffer wants. `rgba` is resized to
/// `width * height * 4` bytes, which allocates only when it grows.
pub fn i420_to_rgba(image: I420View<'_>, rgba: &mut Vec<u8>) {
    let width = image.width as usize;
    let height = image.height as usize;
    rgba.resize(width * height * 4, 255);
    for row in 0..height {
        let y = &image.y[row * image.y_stride..row * image.y_stride + width];
        let chroma_at = (row / 2) * image.uv_stride;
        let cw = width.div_ceil(2);
        let u = &image.u[chroma_at..chroma_at + cw];
        let v = &image.v[chroma_at..chroma_at + cw];
        let out = &mut rgba[row * width * 4..(row + 1) * width * 4];
        rgba_row(y, u, v, out);
    }
}

fn rgba_row(y: &[u8], u: &[u8], v: &[u8], out: &mut [u8]) {
    // Two pixels share one chroma sample: compute its three offsets once per pair.
    let pairs = y
        .chunks_exact(2)
        .zip(out.chunks_exact_mut(8))
        .zip(u.iter().zip(v));
    for ((luma, px), (&cb, &cr)) in pairs {
        let (r_off, g_off, b_off) = chroma_offsets(cb, cr);
        for k in 0..2 {
            let c = C_Y * (luma[k] as i32 - 16);
            px[4 * k] = ((c + r_off) >> 16).clamp(0, 255) as u8;
            px[4 * k + 1] = ((c + g_off) >> 16).clamp(0, 255) as u8;
            px[4 * k + 2] = ((c + b_off) >> 16).clamp(0, 255) as u8;
            px[4 * k + 3] = 255;
        }
    }
    if y.len() % 2 == 1 {
        let last = y.len() - 1;
        let (r_off, g_off, b_off) = chroma_offsets(u[last / 2], v[last / 2]);
        let c = C_Y * (y[last] as i32 - 16);
        let px = &mut out[last * 4..last * 4 + 4];
        px[0] = ((c + r_off) >> 16).clamp(0, 255) as u8;
        px[1] = ((c + g_off) >> 16).clamp(0, 255) as u8;
        px[2] = ((c + b_off) >> 16).clamp(0, 255) as u8;
        px[3] = 255;
    }
}

/// The red, green and blue contributions of one chroma sample, with the rounding half folded in.
fn chroma_offsets(cb: u8, cr: u8) -> (i32, i32, i32) {
    let cb = cb as i32 - 128;
    let cr = cr as i32 - 128;
    (
        R_V * cr + HALF,
        -G_U * cb - G_V * cr + HALF,
        B_U * cb + HALF,
    )
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
