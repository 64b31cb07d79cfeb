//! ChannelData frames (RFC 8656 §12.4): the 4-byte header that carries a peer's datagram once a
//! channel is bound, instead of a 36-byte-plus Send or Data indication.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Channel Number        |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! /                       Application Data                        /
//! +-------------------------------+-------------------------------+
//! ```
//!
//! Over TCP the frame is padded with zeros to a multiple of 4 bytes (the length field does not
//! count the padding); over UDP padding is optional and ignored.

use super::TurnError;

/// The lowest channel number a client may bind (RFC 8656 §12).
pub const CHANNEL_MIN: u16 = 0x4000;
/// The highest channel number a client may bind (RFC 8656 §12).
pub const CHANNEL_MAX: u16 = 0x4FFF;
/// The ChannelData header's size.
pub const CHANNEL_HEADER_LEN: usize = 4;

/// One ChannelData frame, borrowed from the bytes it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel, 0x4000..=0x4FFF.
    pub channel: u16,
    /// The peer's datagram, without padding.
    pub data: &'a [u8],
}

/// Whether `bytes` starts like a ChannelData frame: first byte 0x40..=0x7F (RFC 7983 §7 keeps
/// 64..=79 for TURN channels; 0x50..=0x7F are reserved channel numbers a server may still
/// send, so they are treated as TURN framing too).
pub fn looks_like_channel_data(bytes: &[u8]) -> bool {
    bytes.len() >= CHANNEL_HEADER_LEN && (0x40..=0x7F).contains(&bytes[0])
}

/// Parses one ChannelData frame. At most 3 bytes of padding may follow the data; anything
/// else is an error, as is a channel number outside 0x4000..=0x4FFF. Never panics.
pub fn parse_channel_data(bytes: &[u8]) -> Result<ChannelData<'_>, TurnError> {
    let bad = |reason| Err(TurnError::BadChannelData { reason });
    if bytes.len() < CHANNEL_HEADER_LEN {
        return bad("shorter than the 4-byte header");
    }
    let channel = u16::from_be_bytes([bytes[0], bytes[1]]);
    if !(CHANNEL_MIN..=CHANNEL_MAX).contains(&channel) {
        return bad("channel number outside 0x4000..=0x4FFF");
    }
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    let body = &bytes[CHANNEL_HEADER_LEN..];
    if body.len() < len {
        return bad("length runs past the end");
    }
    if body.len() - len > 3 {
        return bad("more than 3 bytes after the data");
    }
    Ok(ChannelData {
        channel,
        data: &body[..len],
    })
}

/// Encodes a ChannelData frame; `pad` adds the zeros a stream transport (TCP) needs. The caller
/// makes sure `data` fits the 16-bit length (at most 65,535 bytes).
pub fn encode_channel_data(channel: u16, data: &[u8], pad: bool) -> Vec<u8> {
    let padding = if pad { (4 - data.len() % 4) % 4 } else { 0 };
    let mut out = Vec::with_capacity(CHANNEL_HEADER_LEN + data.len() + padding);
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + padding, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_and_without_padding() {
        let udp = encode_channel_data(0x4001, b"hello", false);
        assert_eq!(udp, b"\x40\x01\x00\x05hello");
        let tcp = encode_channel_data(0x4001, b"hello", true);
        assert_eq!(tcp, b"\x40\x01\x00\x05hello\0\0\0");
        for frame in [&udp, &tcp] {
            assert_eq!(
                parse_channel_data(frame),
                Ok(ChannelData {
                    channel: 0x4001,
                    data: b"hello"
                })
            );
        }
        assert_eq!(parse_channel_data(b"\x4f\xff\x00\x00").unwrap().data, b"");
    }

    #[test]
    fn bad_frames_are_errors() {
        for bad in [
            &b""[..],
            b"\x40\x00\x00",
            b"\x3f\xff\x00\x00",
            b"\x50\x00\x00\x00",
            b"\x40\x00\x00\x05abcd",
            b"\x40\x00\x00\x01abcde",
        ] {
            assert!(
                matches!(
                    parse_channel_data(bad),
                    Err(TurnError::BadChannelData { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
