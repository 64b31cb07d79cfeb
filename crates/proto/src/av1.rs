//! The one check an AV1 temporal unit from the network gets before it reaches the decoder.
//!
//! A temporal unit in the low-overhead bitstream format (AV1 spec § 5.2: what our encoders
//! write and RTP depacketizers put back together) is a run of OBUs, each a header, an optional
//! extension byte, an optional LEB128 size, and a payload. dav1d takes a unit cut at an OBU
//! boundary as valid and returns no picture, so a lost packet would go unnoticed; this walk
//! turns truncation into an error the controller answers with a keyframe request.

use std::fmt;

const OBU_FRAME_HEADER: u8 = 3;
const OBU_FRAME: u8 = 6;
const OBU_REDUNDANT_FRAME_HEADER: u8 = 7;

/// Why a temporal unit is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadTemporalUnit {
    /// No bytes at all.
    Empty,
    /// An OBU header with the forbidden bit set.
    ForbiddenBit,
    /// The extension byte the header announces is missing.
    ExtensionCutOff,
    /// A size field that runs off the end or past 8 bytes.
    SizeCutOff,
    /// An OBU whose size is more than the bytes left.
    Truncated {
        /// The size the OBU claims.
        size: u64,
        /// The bytes that are left.
        left: usize,
    },
    /// Whole OBUs, but none of them a frame (a unit cut after its delimiter).
    NoFrame,
}

impl fmt::Display for BadTemporalUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadTemporalUnit::Empty => f.write_str("empty packet"),
            BadTemporalUnit::ForbiddenBit => f.write_str("OBU forbidden bit set"),
            BadTemporalUnit::ExtensionCutOff => f.write_str("OBU extension cut off"),
            BadTemporalUnit::SizeCutOff => f.write_str("OBU size field cut off or too long"),
            BadTemporalUnit::Truncated { size, left } => {
                write!(f, "OBU of {size} bytes with {left} left: truncated")
            }
            BadTemporalUnit::NoFrame => f.write_str("no frame in the packet (truncated?)"),
        }
    }
}

impl std::error::Error for BadTemporalUnit {}

/// Checks that every OBU of `unit` is whole and that one of them carries a frame. Total: any
/// bytes give `Ok` or an error, in time linear in their length.
pub fn check_temporal_unit(mut unit: &[u8]) -> Result<(), BadTemporalUnit> {
    if unit.is_empty() {
        return Err(BadTemporalUnit::Empty);
    }
    let mut has_frame = false;
    while let Some((&header, rest)) = unit.split_first() {
        if header & 0x80 != 0 {
            return Err(BadTemporalUnit::ForbiddenBit);
        }
        let kind = (header >> 3) & 0x0f;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let rest = if has_extension {
            rest.get(1..).ok_or(BadTemporalUnit::ExtensionCutOff)?
        } else {
            rest
        };
        let (size, rest) = if has_size {
            let (size, used) = leb128(rest)?;
            (size, &rest[used..])
        } else {
            // Without a size field the OBU runs to the end of the unit.
            (rest.len() as u64, rest)
        };
        if size > rest.len() as u64 {
            return Err(BadTemporalUnit::Truncated {
                size,
                left: rest.len(),
            });
        }
        has_frame |= matches!(
            kind,
            OBU_FRAME | OBU_FRAME_HEADER | OBU_REDUNDANT_FRAME_HEADER
        );
        // `size` fits: it is at most `rest.len()`.
        unit = &rest[size as usize..];
    }
    if has_frame {
        Ok(())
    } else {
        Err(BadTemporalUnit::NoFrame)
    }
}

/// An unsigned LEB128 number of at most 8 bytes (the AV1 limit); returns it and its length.
fn leb128(data: &[u8]) -> Result<(u64, usize), BadTemporalUnit> {
    let mut value: u64 = 0;
    for (i, byte) in data.iter().take(8).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(BadTemporalUnit::SizeCutOff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_units_pass_and_cut_ones_are_refused() {
        // Temporal delimiter, then a frame OBU of 3 bytes.
        let unit = [0x12, 0x00, 0x32, 0x03, 1, 2, 3];
        assert_eq!(check_temporal_unit(&unit), Ok(()));
        assert_eq!(check_temporal_unit(&[]), Err(BadTemporalUnit::Empty));
        assert_eq!(
            check_temporal_unit(&unit[..2]),
            Err(BadTemporalUnit::NoFrame),
            "delimiter only"
        );
        assert_eq!(
            check_temporal_unit(&unit[..6]),
            Err(BadTemporalUnit::Truncated { size: 3, left: 2 })
        );
        assert_eq!(
            check_temporal_unit(&[0x32, 0x80]),
            Err(BadTemporalUnit::SizeCutOff)
        );
        assert_eq!(
            check_temporal_unit(&[0xb2, 0x00]),
            Err(BadTemporalUnit::ForbiddenBit)
        );
        assert_eq!(
            check_temporal_unit(&[0x32, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(BadTemporalUnit::SizeCutOff),
            "a size field longer than 8 bytes"
        );
        assert_eq!(
            check_temporal_unit(&[0x36]),
            Err(BadTemporalUnit::ExtensionCutOff)
        );
        // A frame OBU without a size field runs to the end.
        assert_eq!(check_temporal_unit(&[0x30, 9, 9, 9]), Ok(()));
    }

    #[test]
    fn a_huge_claimed_size_is_refused_not_trusted() {
        let mut unit = vec![0x32];
        unit.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        unit.push(0);
        assert!(matches!(
            check_temporal_unit(&unit),
            Err(BadTemporalUnit::Truncated { .. })
        ));
    }
}
