//! Splits a TCP (or TLS) byte stream from a TURN server into messages (RFC 8656 §5, RFC 8489
//! §6.2.2): STUN messages are self-delimiting (20-byte header whose length counts the
//! attributes), and ChannelData frames carry their length and are padded to 4 bytes.
//!
//! [`StreamFramer`] is sans-IO: push what the socket gave, then take whole frames until it
//! says there are none. Its buffer is bounded: a peer that sends garbage or never finishes a
//! frame cannot make it grow past [`MAX_STREAM_BUFFER`].

use super::channel_data::CHANNEL_HEADER_LEN;
use super::TurnError;
use crate::message::HEADER_LEN;

/// The largest frame a stream can carry: a ChannelData header, 65,535 bytes and 3 of padding.
pub const MAX_FRAME: usize = CHANNEL_HEADER_LEN + 65_535 + 3;
/// How many bytes the framer holds at most: one frame being assembled and one read of up to
/// [`MAX_FRAME`] bytes.
pub const MAX_STREAM_BUFFER: usize = 2 * MAX_FRAME;

/// Reassembles frames from a byte stream. After an error the stream is out of step and cannot
/// be recovered: close the connection.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buffer: Vec<u8>,
    start: usize,
    broken: bool,
}

impl StreamFramer {
    /// An empty framer for a new connection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream. Fails with [`TurnError::StreamOverflow`] when the
    /// buffer would pass [`MAX_STREAM_BUFFER`]; take every ready frame with
    /// [`StreamFramer::next_frame`] after each push (and read at most [`MAX_FRAME`] bytes at a
    /// time) and this never happens.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), TurnError> {
        if self.start > 0 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        if self.buffer.len() + bytes.len() > MAX_STREAM_BUFFER {
            return Err(TurnError::StreamOverflow {
                limit: MAX_STREAM_BUFFER,
            });
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    /// The next whole frame (a STUN message or a padded ChannelData frame), `Ok(None)` when
    /// more bytes are needed, or an error when the stream holds something that is neither.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, TurnError> {
        if self.broken {
            return Err(TurnError::BadStream {
                reason: "the stream was already out of step",
            });
        }
        let rest = &self.buffer[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let declared = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let frame_len = match rest[0] {
            0x00..=0x3F => {
                if declared % 4 != 0 {
                    self.broken = true;
                    return Err(TurnError::BadStream {
                        reason: "STUN length is not a multiple of 4",
                    });
                }
                HEADER_LEN + declared
            }
            0x40..=0x7F => CHANNEL_HEADER_LEN + declared + (4 - declared % 4) % 4,
            _ => {
                self.broken = true;
                return Err(TurnError::BadStream {
                    reason: "neither a STUN message nor ChannelData",
                });
            }
        };
        if rest.len() < frame_len {
            return Ok(None);
        }
        let frame = rest[..frame_len].to_vec();
        self.start += frame_len;
        Ok(Some(frame))
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::super::channel_data::encode_channel_data;
    use super::*;
    use crate::message::{method, Attribute, Class, Message, TransactionId};

    fn stun() -> Vec<u8> {
        Message {
            class: Class::Indication,
            method: method::DATA,
            transaction_id: TransactionId([1; 12]),
            attributes: vec![Attribute::Data(vec![7; 5])],
        }
        .encode(None)
    }

    #[test]
    fn frames_split_at_any_byte_come_out_whole() {
        let stun = stun();
        let channel = encode_channel_data(0x4000, b"abcde", true);
        let stream: Vec<u8> = [stun.clone(), channel.clone(), stun.clone()].concat();
        for chunk in 1..=stream.len() {
            let mut framer = StreamFramer::new();
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                framer.push(piece).unwrap();
                while let Some(frame) = framer.next_frame().unwrap() {
                    frames.push(frame);
                }
            }
            assert_eq!(frames, [stun.clone(), channel.clone(), stun.clone()]);
            assert_eq!(framer.buffered(), 0);
        }
    }

    #[test]
    fn garbage_breaks_the_stream_for_good() {
        let mut framer = StreamFramer::new();
        framer.push(b"\x80\x00\x00\x00").unwrap();
        assert!(matches!(
            framer.next_frame(),
            Err(TurnError::BadStream { .. })
        ));
        framer.push(&stun()).unwrap();
        assert!(framer.next_frame().is_err());
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut framer = StreamFramer::new();
        // A ChannelData header that promises 65,535 bytes, then more than the bound.
        framer.push(b"\x40\x00\xff\xff").unwrap();
        framer.push(&vec![0; MAX_FRAME]).unwrap();
        assert!(framer.next_frame().unwrap().is_some());
        assert_eq!(
            framer.push(&vec![0; MAX_STREAM_BUFFER]),
            Err(TurnError::StreamOverflow {
                limit: MAX_STREAM_BUFFER
            })
        );
    }
}
