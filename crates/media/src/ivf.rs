//! Recording: AV1 packets in an IVF file, the container `dav1d`, ffmpeg and browsers' tools read.
//!
//! IVF is a 32-byte file header and a 12-byte header per frame (size, timestamp). Timestamps are
//! in microseconds (timebase 1/1000000), taken from each packet's capture time, so a recording
//! of a screen that was still for a while plays back with the pause.

use std::io::{self, Read, Seek, SeekFrom, Write};

use crate::encode::EncodedFrame;
use crate::error::{Error, Result};

const SIGNATURE: &[u8; 4] = b"DKIF";
const FOURCC: &[u8; 4] = b"AV01";
const HEADER_LEN: u16 = 32;
const TIMEBASE_DEN: u32 = 1_000_000;
/// Largest frame the reader accepts, so a damaged file cannot ask for gigabytes.
const MAX_FRAME_LEN: u32 = 64 << 20;

/// Writes packets to an IVF file; [`IvfWriter::finish`] fills in the frame count.
pub struct IvfWriter<W: Write + Seek> {
    out: W,
    frames: u32,
    first_capture: Option<std::time::Instant>,
    last_pts: Option<u64>,
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Starts a recording of pictures of the given size.
    pub fn new(mut out: W, width: u16, height: u16) -> Result<IvfWriter<W>> {
        out.write_all(&header(width, height, 0))?;
        Ok(IvfWriter {
            out,
            frames: 0,
            first_capture: None,
            last_pts: None,
        })
    }

    /// Appends one packet, stamped with its capture time relative to the first packet.
    pub fn write(&mut self, packet: &EncodedFrame) -> Result<()> {
        let first = *self.first_capture.get_or_insert(packet.meta.captured_at);
        let mut pts = packet
            .meta
            .captured_at
            .saturating_duration_since(first)
            .as_micros() as u64;
        // Repeats and refreshes share a capture time; players want increasing timestamps.
        if let Some(last) = self.last_pts {
            pts = pts.max(last + 1);
        }
        self.last_pts = Some(pts);
        self.write_raw(&packet.data, pts)
    }

    /// Appends raw bytes with an explicit timestamp in microseconds.
    pub fn write_raw(&mut self, data: &[u8], pts: u64) -> Result<()> {
        let len = u32::try_from(data.len()).map_err(|_| {
            Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "frame over 4 GiB",
            ))
        })?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&pts.to_le_bytes())?;
        self.out.write_all(data)?;
        self.frames += 1;
        Ok(())
    }

    /// Writes the frame count into the header and hands the output back.
    pub fn finish(mut self) -> Result<W> {
        let end = self.out.stream_position()?;
        self.out.seek(SeekFrom::Start(24))?;
        self.out.write_all(&self.frames.to_le_bytes())?;
        self.out.seek(SeekFrom::Start(end))?;
        self.out.flush()?;
        Ok(self.out)
    }
}

fn header(width: u16, height: u16, frames: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[0..4].copy_from_slice(SIGNATURE);
    h[4..6].copy_from_slice(&0u16.to_le_bytes());
    h[6..8].copy_from_slice(&HEADER_LEN.to_le_bytes());
    h[8..12].copy_from_slice(FOURCC);
    h[12..14].copy_from_slice(&width.to_le_bytes());
    h[14..16].copy_from_slice(&height.to_le_bytes());
    h[16..20].copy_from_slice(&TIMEBASE_DEN.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[24..28].copy_from_slice(&frames.to_le_bytes());
    h
}

/// Reads an IVF file back, frame by frame (to replay a recording into a decoder).
pub struct IvfReader<R: Read> {
    input: R,
    /// Picture width from the header.
    pub width: u16,
    /// Picture height from the header.
    pub height: u16,
}

impl<R: Read> IvfReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut input: R) -> Result<IvfReader<R>> {
        let mut h = [0u8; 32];
        input.read_exact(&mut h)?;
        if &h[0..4] != SIGNATURE || &h[8..12] != FOURCC {
            return Err(Error::CorruptData("not an AV1 IVF file".into()));
        }
        let header_len = u16::from_le_bytes([h[6], h[7]]) as u64;
        if header_len > 32 {
            io::copy(&mut (&mut input).take(header_len - 32), &mut io::sink())?;
        }
        Ok(IvfReader {
            width: u16::from_le_bytes([h[12], h[13]]),
            height: u16::from_le_bytes([h[14], h[15]]),
            input,
        })
    }

    /// The next frame's bytes and timestamp, or `None` at the end of the file.
    pub fn next_frame(&mut self) -> Result<Option<(Vec<u8>, u64)>> {
        let mut h = [0u8; 12];
        match self.input.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if len > MAX_FRAME_LEN {
            return Err(Error::CorruptData(format!("IVF frame of {len} bytes")));
        }
        let mut pts = [0u8; 8];
        pts.copy_from_slice(&h[4..12]);
        let mut data = vec![0; len as usize];
        self.input.read_exact(&mut data)?;
        Ok(Some((data, u64::from_le_bytes(pts))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn written_frames_read_back_with_their_timestamps_and_count() {
        let mut writer = IvfWriter::new(Cursor::new(Vec::new()), 640, 360).unwrap();
        writer.write_raw(b"first", 0).unwrap();
        writer.write_raw(b"second", 33_000).unwrap();
        let bytes = writer.finish().unwrap().into_inner();
        assert_eq!(&bytes[24..28], &2u32.to_le_bytes());
        let mut reader = IvfReader::new(Cursor::new(bytes)).unwrap();
        assert_eq!((reader.width, reader.height), (640, 360));
        assert_eq!(reader.next_frame().unwrap(), Some((b"first".to_vec(), 0)));
        assert_eq!(
            reader.next_frame().unwrap(),
            Some((b"second".to_vec(), 33_000))
        );
        assert_eq!(reader.next_frame().unwrap(), None);
    }

    #[test]
    fn a_huge_frame_length_is_refused_not_allocated() {
        let mut bytes = header(16, 16, 1).to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&0u64.to_le_bytes());
        let mut reader = IvfReader::new(Cursor::new(bytes)).unwrap();
        assert!(matches!(reader.next_frame(), Err(Error::CorruptData(_))));
    }
}
