//! The decoder thread: received AV1 frames → dav1d → a [`FrameSink`].
//!
//! Decoding runs on its own thread, never on the network loop. The peer's receive queue is
//! bounded (it drops frames and asks for a keyframe when this thread falls behind); a frame that
//! fails to decode, or follows lost packets, makes this thread ask for a keyframe and skip
//! frames until one arrives, so a broken picture is never shown.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use rtcdesk_media::{i420_to_rgba, read_stamp, Decoder, I420View, Stamp};
use rtcdesk_peer::{PeerHandle, VideoReceiver};

/// One decoded picture, lent to a [`FrameSink`] for the duration of the call (no copy).
#[derive(Debug, Clone, Copy)]
pub struct DecodedPicture<'a> {
    /// The picture's planes (BT.709 limited range I420).
    pub view: I420View<'a>,
    /// When the first packet of the frame arrived.
    pub received_at: Instant,
    /// When dav1d returned the picture.
    pub decoded_at: Instant,
    /// Whether the frame was a keyframe.
    pub keyframe: bool,
    /// Pictures decoded before this one in this session.
    pub index: u64,
}

impl DecodedPicture<'_> {
    /// Picture width in pixels.
    pub fn width(&self) -> u32 {
        self.view.width
    }

    /// Picture height in pixels.
    pub fn height(&self) -> u32 {
        self.view.height
    }

    /// The synthetic desktop's frame stamp, when the picture carries one (a real screen does
    /// not): frame number and capture time, for latency figures.
    pub fn stamp(&self) -> Option<Stamp> {
        read_stamp(self.view)
    }

    /// The picture as tightly packed RGBA (what a window's frame buffer wants), into `rgba`,
    /// which is resized (allocating only when it grows).
    pub fn to_rgba(&self, rgba: &mut Vec<u8>) {
        i420_to_rgba(self.view, rgba);
    }
}

/// Where decoded pictures go. Called on the decoder thread, one picture at a time; a slow sink
/// slows decoding (and the peer then drops frames), so hand over quickly.
pub trait FrameSink: Send + 'static {
    /// A picture was decoded.
    fn frame(&mut self, picture: &DecodedPicture<'_>);
    /// The video stream ended (the session is over); no more frames will come.
    fn ended(&mut self) {}
}

/// Counters the decoder thread keeps, read for stats.
#[derive(Debug, Default)]
pub struct DecodeCounters {
    /// Pictures decoded and handed to the sink.
    pub pictures: AtomicU64,
    /// Frames that failed to decode.
    pub errors: AtomicU64,
    /// Frames skipped while waiting for a keyframe.
    pub skipped: AtomicU64,
    /// Total time spent in dav1d, microseconds.
    pub decode_micros: AtomicU64,
    /// The last picture's size, `width << 32 | height`.
    pub size: AtomicU64,
    /// The last stamped picture's glass-to-glass age in microseconds (0: no stamp).
    pub last_stamp_age_micros: AtomicU64,
}

/// The running decoder thread; it stops when the video stream ends.
#[derive(Debug)]
pub(crate) struct DecoderThread {
    join: Option<JoinHandle<()>>,
}

impl DecoderThread {
    /// Starts decoding `video` into `sink`; keyframe requests go to `peer`.
    pub(crate) fn spawn(
        mut video: VideoReceiver,
        peer: PeerHandle,
        mut sink: Box<dyn FrameSink>,
        threads: u32,
        counters: Arc<DecodeCounters>,
        first_picture: tokio::sync::oneshot::Sender<Instant>,
    ) -> Result<DecoderThread, rtcdesk_media::Error> {
        let mut first_picture = Some(first_picture);
        let mut decoder = Decoder::new(threads)?;
        let join = std::thread::Builder::new()
            .name("rtcdesk-decode".into())
            .spawn(move || {
                // Frames after lost packets never get here: the peer drops them and asks for a
                // keyframe itself. After a decode error this thread asks the peer once (the
                // peer repeats the request until a keyframe comes, and holds back the frames
                // before it) and skips the frames already queued up to the keyframe.
                let mut waiting_for_keyframe = false;
                let mut index = 0u64;
                while let Some(frame) = video.blocking_recv() {
                    if waiting_for_keyframe && !frame.keyframe {
                        counters.skipped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    waiting_for_keyframe = false;
                    let started = Instant::now();
                    match decoder.decode_owned(frame.data, frame.rtp_time as i64) {
                        Ok(Some(picture)) => {
                            let decoded_at = Instant::now();
                            counters.decode_micros.fetch_add(
                                (decoded_at - started).as_micros() as u64,
                                Ordering::Relaxed,
                            );
                            let decoded = DecodedPicture {
                                view: picture.view(),
                                received_at: frame.received_at,
                                decoded_at,
                                keyframe: frame.keyframe,
                                index,
                            };
                            index += 1;
                            counters.size.store(
                                (u64::from(decoded.width()) << 32) | u64::from(decoded.height()),
                                Ordering::Relaxed,
                            );
                            if let Some(stamp) = decoded.stamp() {
                                let age = stamp.age_at(rtcdesk_media::frame::unix_micros_now());
                                counters
                                    .last_stamp_age_micros
                                    .store(age.as_micros().max(1) as u64, Ordering::Relaxed);
                            }
                            sink.frame(&decoded);
                            if let Some(first) = first_picture.take() {
                                let _ = first.send(decoded_at);
                            }
                            counters.pictures.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(None) => {}
                        Err(error) => {
                            tracing::debug!(%error, "a video frame did not decode; asking for a keyframe");
                            counters.errors.fetch_add(1, Ordering::Relaxed);
                            decoder.reset();
                            waiting_for_keyframe = true;
                            peer.request_keyframe();
                        }
                    }
                }
                sink.ended();
            })
            .map_err(rtcdesk_media::Error::Io)?;
        Ok(DecoderThread { join: Some(join) })
    }

    /// A placeholder for a thread already joined.
    pub(crate) fn finished() -> DecoderThread {
        DecoderThread { join: None }
    }

    /// Waits for the thread to finish (after the session's video stream closed).
    pub(crate) fn join(&mut self) {
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}
