//! The frame stamp: a frame number and capture time drawn as a block code into the top-left
//! corner of a frame, readable again after lossy coding. It is what lets glass-to-glass latency
//! be measured on any machine: the receiver reads the stamp from the decoded picture and compares
//! the capture time with its own clock.
//!
//! Layout: rows of square cells (at least 8×8 pixels, larger on wide screens). Each row starts
//! with a white and a black reference cell, so the reader picks its threshold from the picture
//! itself; then come data cells, white for 1. The 88 payload bits are the frame number's low
//! 32 bits, the capture time's low 40 bits (microseconds since the Unix epoch, wrapping every
//! 12.7 days) and a CRC-16 over both.

use std::time::Duration;

use crate::frame::{Frame, I420View};

const PAYLOAD_BITS: u32 = 32 + 40 + 16;
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const MAX_DATA_CELLS_PER_ROW: u32 = 44;

/// What a stamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The frame number's low 32 bits.
    pub frame_number: u32,
    /// The capture time's low 40 bits, in microseconds since the Unix epoch.
    pub captured_unix_micros_low: u64,
}

impl Stamp {
    /// The stamp for a frame number and wall-clock capture time.
    pub fn new(frame_number: u64, captured_unix_micros: u64) -> Stamp {
        Stamp {
            frame_number: frame_number as u32,
            captured_unix_micros_low: captured_unix_micros & TIME_MASK,
        }
    }

    /// Time from capture to `now_unix_micros` (same clock, or clocks kept in sync), taking the
    /// 40-bit wrap into account.
    pub fn age_at(&self, now_unix_micros: u64) -> Duration {
        let elapsed =
            (now_unix_micros & TIME_MASK).wrapping_sub(self.captured_unix_micros_low) & TIME_MASK;
        Duration::from_micros(elapsed)
    }

    fn bits(&self) -> u128 {
        let body = (self.frame_number as u128) | ((self.captured_unix_micros_low as u128) << 32);
        body | ((crc16(body) as u128) << 72)
    }

    fn from_bits(bits: u128) -> Option<Stamp> {
        let body = bits & ((1u128 << 72) - 1);
        if (bits >> 72) as u16 != crc16(body) {
            return None;
        }
        Some(Stamp {
            frame_number: body as u32,
            captured_unix_micros_low: (body >> 32) as u64 & TIME_MASK,
        })
    }
}

/// CRC-16/CCITT over the 9 payload bytes, so a misread stamp is rejected, not trusted.
fn crc16(body: u128) -> u16 {
    let mut crc: u16 = 0xffff;
    for i in 0..9 {
        crc ^= (((body >> (8 * i)) & 0xff) as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Where the cells lie for a picture of a given width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StampLayout {
    /// Side of a cell in pixels.
    pub cell: u32,
    /// Data cells per row (after the two reference cells).
    pub data_per_row: u32,
    /// Number of rows.
    pub rows: u32,
}

impl StampLayout {
    /// The layout for a picture `width` pixels wide (at least 96), the same at both ends.
    pub fn for_width(width: u32) -> StampLayout {
        let cell = (width / 160).max(8);
        let data_per_row = (width / cell)
            .saturating_sub(2)
            .clamp(1, MAX_DATA_CELLS_PER_ROW);
        StampLayout {
            cell,
            data_per_row,
            rows: PAYLOAD_BITS.div_ceil(data_per_row),
        }
    }

    /// Width and height of the stamped area in pixels.
    pub fn size(&self) -> (u32, u32) {
        ((self.data_per_row + 2) * self.cell, self.rows * self.cell)
    }

    /// Top-left of the cell at (column, row); column 0 is the white, 1 the black reference.
    fn cell_origin(&self, column: u32, row: u32) -> (u32, u32) {
        (column * self.cell, row * self.cell)
    }
}

/// Draws `stamp` into the top-left corner of a BGRA frame.
pub fn draw_stamp(frame: &mut Frame, stamp: Stamp) {
    let layout = StampLayout::for_width(frame.width);
    let bits = stamp.bits();
    let (one_level, zero_level) = (255, 0);
    for row in 0..layout.rows {
        for column in 0..layout.data_per_row + 2 {
            let one = match column {
                0 => true,
                1 => false,
                _ => {
                    let index = row * layout.data_per_row + column - 2;
                    index < PAYLOAD_BITS && (bits >> index) & 1 == 1
                }
            };
            let (x, y) = layout.cell_origin(column, row);
            let shade = if one { one_level } else { zero_level };
            fill(frame, x, y, layout.cell, layout.cell, [shade, shade, shade]);
        }
    }
}

/// Fills a rectangle of a BGRA frame, clipped to the frame.
pub(crate) fn fill(frame: &mut Frame, x: u32, y: u32, width: u32, height: u32, bgr: [u8; 3]) {
    let x1 = (x + width).min(frame.width);
    let y1 = (y + height).min(frame.height);
    if x >= x1 || y >= y1 {
        return;
    }
    for row in y..y1 {
        let start = row as usize * frame.stride + x as usize * 4;
        let end = row as usize * frame.stride + x1 as usize * 4;
        for px in frame.data[start..end].chunks_exact_mut(4) {
            px[0] = bgr[0];
            px[1] = bgr[1];
            px[2] = bgr[2];
            px[3] = 255;
        }
    }
}

/// Reads the stamp from a decoded (or any I420) picture; `None` when there is none or it does
/// not check out.
pub fn read_stamp(image: I420View<'_>) -> Option<Stamp> {
    read_with(image.width, image.height, |x, y| image.luma(x, y))
}

/// Reads the stamp from a BGRA frame (the green channel stands in for luma: cells are grey).
pub fn read_stamp_bgra(frame: &Frame) -> Option<Stamp> {
    read_with(frame.width, frame.height, |x, y| frame.pixel(x, y)[1])
}

fn read_with(width: u32, height: u32, luma: impl Fn(u32, u32) -> u8) -> Option<Stamp> {
    let layout = StampLayout::for_width(width);
    let (w, h) = layout.size();
    if w > width || h > height {
        return None;
    }
    // Average the middle half of a cell: its edges blur under lossy coding.
    let cell_mean = |column: u32, row: u32| -> u32 {
        let (x0, y0) = layout.cell_origin(column, row);
        let quarter = layout.cell / 4;
        let mut sum = 0u32;
        let mut count = 0u32;
        for y in y0 + quarter..y0 + layout.cell - quarter {
            for x in x0 + quarter..x0 + layout.cell - quarter {
                sum += luma(x, y) as u32;
                count += 1;
            }
        }
        sum / count.max(1)
    };
    let mut bits: u128 = 0;
    for row in 0..layout.rows {
        let one = cell_mean(0, row);
        let zero = cell_mean(1, row);
        if one.abs_diff(zero) < 60 {
            return None;
        }
        for column in 0..layout.data_per_row {
            let index = row * layout.data_per_row + column;
            if index >= PAYLOAD_BITS {
                break;
            }
            let level = cell_mean(column + 2, row);
            if level.abs_diff(one) < level.abs_diff(zero) {
                bits |= 1 << index;
            }
        }
    }
    Stamp::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::to_i420;

    #[test]
    fn a_drawn_stamp_reads_back_from_bgra_and_i420_at_several_widths() {
        for (width, height, number) in [
            (320, 180, 0x1_2345_6789),
            (640, 360, 0x1_2345_678a),
            (1280, 720, 7),
            (1920, 1080, 8),
        ] {
            let mut frame = Frame::new(width, height);
            let stamp = Stamp::new(number, 0xfedc_ba98_7654_3210);
            draw_stamp(&mut frame, stamp);
            assert_eq!(read_stamp_bgra(&frame), Some(stamp), "{width}");
            assert_eq!(read_stamp(to_i420(&frame).view()), Some(stamp), "{width}");
            assert!(StampLayout::for_width(width).cell >= 8);
        }
    }

    #[test]
    fn a_blank_picture_has_no_stamp_and_a_flipped_bit_is_rejected() {
        let mut frame = Frame::new(640, 360);
        assert_eq!(read_stamp_bgra(&frame), None);
        draw_stamp(&mut frame, Stamp::new(7, 1_000_000));
        let layout = StampLayout::for_width(640);
        let (x, y) = layout.cell_origin(5, 0);
        let was = frame.pixel(x + 2, y + 2)[0];
        fill(&mut frame, x, y, layout.cell, layout.cell, [255 - was; 3]);
        assert_eq!(read_stamp_bgra(&frame), None);
    }

    #[test]
    fn age_handles_the_forty_bit_wrap() {
        let stamp = Stamp::new(1, (1 << 40) - 10);
        assert_eq!(stamp.age_at(1 << 40 | 5), Duration::from_micros(15));
    }
}
