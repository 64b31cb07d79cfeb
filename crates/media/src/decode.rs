//! AV1 decoding with dav1d: a picture out as soon as its temporal unit is in.

use crate::error::{Error, Result};
use crate::frame::I420View;

/// A decoded picture, still in dav1d's buffers (no copy); [`DecodedFrame::view`] reads it and
/// [`crate::convert::i420_to_rgba`] turns it into window pixels.
#[derive(Debug, Clone)]
pub struct DecodedFrame {
    y: dav1d::Plane,
    u: dav1d::Plane,
    v: dav1d::Plane,
    width: u32,
    height: u32,
    y_stride: usize,
    uv_stride: usize,
    /// The timestamp given with the packet to [`Decoder::decode`].
    pub timestamp: i64,
}

impl DecodedFrame {
    /// The picture as planes with strides.
    pub fn view(&self) -> I420View<'_> {
        I420View {
            width: self.width,
            height: self.height,
            y: &self.y,
            u: &self.u,
            v: &self.v,
            y_stride: self.y_stride,
            uv_stride: self.uv_stride,
        }
    }

    /// Picture width.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Picture height.
    pub fn height(&self) -> u32 {
        self.height
    }
}

/// A dav1d decoder set for lowest latency: one frame in flight (`max_frame_delay = 1`), so each
/// packet's picture is returned by the same [`Decoder::decode`] call.
pub struct Decoder {
    inner: dav1d::Decoder,
}

impl Decoder {
    /// A decoder using `threads` worker threads (0: dav1d picks by core count).
    pub fn new(threads: u32) -> Result<Decoder> {
        let mut settings = dav1d::Settings::new();
        settings.set_n_threads(threads);
        settings.set_max_frame_delay(1);
        // Reject frames bigger than 8K so hostile input cannot ask for huge allocations.
        settings.set_frame_size_limit(8192 * 8192);
        let inner = dav1d::Decoder::with_settings(&settings)
            .map_err(|e| Error::DecoderInit(e.to_string()))?;
        Ok(Decoder { inner })
    }

    /// Decodes one temporal unit (one [`crate::EncodedFrame`]'s bytes, or one depacketized
    /// AV1 frame from the network). Returns its picture, or `None` when the unit holds no shown
    /// frame (rare: our encoders and browsers show every frame). Bytes that are not valid AV1,
    /// units cut short and units without a frame give [`Error::CorruptData`]; after one, ask the
    /// sender for a keyframe.
    pub fn decode(&mut self, data: &[u8], timestamp: i64) -> Result<Option<DecodedFrame>> {
        self.decode_owned(data.to_vec(), timestamp)
    }

    /// Like [`Decoder::decode`], taking bytes the caller owns (e.g. the `Arc<[u8]>` a received
    /// frame arrives in) so they reach dav1d without a copy.
    pub fn decode_owned<T>(&mut self, data: T, timestamp: i64) -> Result<Option<DecodedFrame>>
    where
        T: AsRef<[u8]> + Send + 'static,
    {
        check_obus(data.as_ref())?;
        let mut picture = None;
        let mut sent = self.inner.send_data(data, None, Some(timestamp), None);
        loop {
            match sent {
                Ok(()) => break,
                Err(dav1d::Error::Again) => {
                    // The decoder wants its finished picture taken before it accepts the rest.
                    if let Some(p) = self.take_picture()? {
                        picture = Some(p);
                    }
                    sent = self.inner.send_pending_data();
                }
                Err(e) => return Err(corrupt(e)),
            }
        }
        if picture.is_none() {
            picture = self.take_picture()?;
        }
        picture.map(to_decoded).transpose()
    }

    fn take_picture(&mut self) -> Result<Option<dav1d::Picture>> {
        match self.inner.get_picture() {
            Ok(picture) => Ok(Some(picture)),
            Err(dav1d::Error::Again) => Ok(None),
            Err(e) => Err(corrupt(e)),
        }
    }

    /// Forgets all state (after a seek or a broken stream); the next unit must be a keyframe.
    pub fn reset(&mut self) {
        self.inner.flush();
    }
}

/// The OBU walk of [`rtcdesk_proto::av1::check_temporal_unit`]: dav1d alone accepts a unit cut
/// at an OBU boundary as valid-but-empty; this turns such truncation into an error.
fn check_obus(data: &[u8]) -> Result<()> {
    rtcdesk_proto::av1::check_temporal_unit(data).map_err(|e| Error::CorruptData(e.to_string()))
}

fn corrupt(error: dav1d::Error) -> Error {
    Error::CorruptData(error.to_string())
}

fn to_decoded(picture: dav1d::Picture) -> Result<DecodedFrame> {
    use dav1d::PlanarImageComponent as C;
    if picture.bit_depth() != 8 || picture.pixel_layout() != dav1d::PixelLayout::I420 {
        return Err(Error::UnsupportedPicture(format!(
            "{:?} at {} bits",
            picture.pixel_layout(),
            picture.bit_depth()
        )));
    }
    Ok(DecodedFrame {
        width: picture.width(),
        height: picture.height(),
        y_stride: picture.stride(C::Y) as usize,
        uv_stride: picture.stride(C::U) as usize,
        timestamp: picture.timestamp().unwrap_or(0),
        y: picture.plane(C::Y),
        u: picture.plane(C::U),
        v: picture.plane(C::V),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_unit_is_corrupt_data_before_dav1d_sees_it() {
        let unit = [0x12, 0x00, 0x32, 0x03, 1, 2, 3];
        assert!(check_obus(&unit).is_ok());
        assert!(matches!(check_obus(&unit[..6]), Err(Error::CorruptData(_))));
    }
}
