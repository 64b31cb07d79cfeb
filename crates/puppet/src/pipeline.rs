//! The video pipeline shared by every session: capture thread → pacer → encoder thread →
//! fan-out to each connected session's latest-wins video slot (and the recording).

use std::collections::VecDeque;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rtcdesk_media::{
    crop_even, fit_within, CaptureThread, EncodedFrame, EncoderConfig, EncoderKind, Frame,
    IvfWriter, Scaler, VideoEncoder,
};
use rtcdesk_peer::{EncodedVideoFrame, VideoSender};
use rtcdesk_proto::signal::SessionId;

use crate::bitrate::BitrateFollower;
use crate::pacer::Pacer;
use crate::Error;

/// The longest the encoder thread sleeps while idle, so a new viewer's keyframe on a still
/// screen and a stop request are seen quickly.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// After the screen has been still this long, the last picture is sent once more as a keyframe:
/// a burst of motion leaves the rate control's last frames coarse, and a still screen should end
/// sharp. After that, nothing is sent until the screen changes.
const SETTLE_AFTER: Duration = Duration::from_millis(400);

/// Which of the two streams a viewer gets: the full picture (a controller, or the member a
/// proctor has focused), or a small, slow thumbnail (a proctor's grid tile). Each stream is
/// encoded once, for every viewer that wants it, and only while someone does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quality {
    /// The screen at its own size (or `--max-size`), at the full frame rate.
    Full,
    /// At most [`THUMBNAIL_SIZE`], [`THUMBNAIL_FPS`] frames a second, [`THUMBNAIL_KBPS`].
    Thumbnail,
}

/// The largest thumbnail (aspect kept).
pub const THUMBNAIL_SIZE: (u32, u32) = (480, 270);
/// Most thumbnail frames a second.
pub const THUMBNAIL_FPS: u32 = 5;
/// The thumbnail encoder's bitrate: a few tens of kbit/s, as a grid of thirty must fit a link.
pub const THUMBNAIL_KBPS: u32 = 60;

/// The sessions that receive video, shared by the network side (which adds and removes them)
/// and the encoder thread (which sends to them).
#[derive(Debug, Default)]
pub(crate) struct VideoHub {
    state: Mutex<HubState>,
    /// The captured screen's size, `width << 32 | height`, 0 before the first frame: input
    /// maps onto it, and it changes with the screen's resolution.
    screen_size: AtomicU64,
}

#[derive(Debug, Default)]
struct HubState {
    viewers: Vec<Viewer>,
    /// A keyframe is wanted on the full stream (a viewer joined it).
    keyframe: bool,
    /// A keyframe is wanted on the thumbnail stream.
    thumbnail_keyframe: bool,
    /// The newest frames' timings, oldest first, at most [`TIMINGS_KEPT`].
    timings: VecDeque<FrameTiming>,
}

/// How many frame timings the hub keeps for [`crate::Puppet::take_frame_timings`].
const TIMINGS_KEPT: usize = 4096;

/// Where one encoded frame's time went inside the puppet, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTiming {
    /// When the screen was grabbed.
    pub captured_at: Instant,
    /// When the frame, converted, was handed to the encoder: minus `captured_at` is the time
    /// it waited for the pacer and for the encoder to finish the frame before, plus conversion.
    pub submitted_at: Instant,
    /// When its packet came out of the encoder and went to every viewer's video slot.
    pub produced_at: Instant,
    /// The packet's size in bytes.
    pub bytes: usize,
    /// Whether it was a keyframe.
    pub keyframe: bool,
}

impl VideoHub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The captured screen's size, once a frame was captured.
    pub(crate) fn screen_size(&self) -> Option<(u32, u32)> {
        match self.screen_size.load(Ordering::Relaxed) {
            0 => None,
            packed => Some(((packed >> 32) as u32, packed as u32)),
        }
    }

    fn set_screen_size(&self, width: u32, height: u32) {
        let packed = (u64::from(width) << 32) | u64::from(height);
        self.screen_size.store(packed, Ordering::Relaxed);
    }

    /// A connected session starts receiving video of this quality, from a keyframe.
    pub(crate) fn add(&self, session: SessionId, sender: VideoSender, quality: Quality) {
        let mut state = self.lock();
        state.viewers.retain(|viewer| viewer.session != session);
        state.viewers.push(Viewer {
            session,
            sender,
            quality,
        });
        state.want_keyframe(quality);
    }

    /// Switches a viewer to the other stream; its first frame there is a keyframe.
    pub(crate) fn set_quality(&self, session: &SessionId, quality: Quality) {
        let mut state = self.lock();
        let Some(viewer) = state.viewers.iter_mut().find(|v| v.session == *session) else {
            return;
        };
        if viewer.quality != quality {
            viewer.quality = quality;
            state.want_keyframe(quality);
        }
    }

    /// The session no longer receives video.
    pub(crate) fn remove(&self, session: &SessionId) {
        self.lock()
            .viewers
            .retain(|viewer| viewer.session != *session);
    }

    /// Whether anyone watches, whether a keyframe is wanted (taking the request), and the
    /// slowest viewer's bandwidth estimate.
    fn poll(&self) -> HubPoll {
        let mut state = self.lock();
        let mut keyframe = std::mem::take(&mut state.keyframe);
        let mut thumbnail_keyframe = std::mem::take(&mut state.thumbnail_keyframe);
        let mut slowest: Option<u64> = None;
        let (mut watched, mut thumbnails) = (false, false);
        for viewer in &state.viewers {
            // Take every flag (not just the first), so none lingers into a later frame.
            let wants = viewer.sender.take_keyframe_request();
            match viewer.quality {
                Quality::Full => {
                    watched = true;
                    keyframe |= wants;
                    if let Some(bps) = viewer.sender.bandwidth_estimate_bps() {
                        slowest = Some(slowest.map_or(bps, |s| s.min(bps)));
                    }
                }
                Quality::Thumbnail => {
                    thumbnails = true;
                    thumbnail_keyframe |= wants;
                }
            }
        }
        HubPoll {
            watched,
            keyframe,
            estimate_bps: slowest,
            thumbnails,
            thumbnail_keyframe,
        }
    }

    /// The timings recorded since the last call, oldest first.
    pub(crate) fn take_timings(&self) -> Vec<FrameTiming> {
        self.lock().timings.drain(..).collect()
    }

    /// Hands a packet to every viewer of its stream; viewers whose session closed are dropped.
    fn fan_out(&self, packet: &EncodedFrame, quality: Quality) {
        let mut state = self.lock();
        if quality == Quality::Thumbnail {
            let shared: Arc<[u8]> = Arc::from(&packet.data[..]);
            state.viewers.retain(|viewer| {
                viewer.quality != Quality::Thumbnail
                    || viewer.sender.send(EncodedVideoFrame {
                        data: shared.clone(),
                        capture_time: packet.meta.captured_at,
                        keyframe: packet.keyframe,
                    })
            });
            return;
        }
        if state.timings.len() == TIMINGS_KEPT {
            state.timings.pop_front();
        }
        state.timings.push_back(FrameTiming {
            captured_at: packet.meta.captured_at,
            submitted_at: packet.meta.submitted_at,
            produced_at: packet.produced_at,
            bytes: packet.data.len(),
            keyframe: packet.keyframe,
        });
        // One copy into shared memory; every viewer (and str0m) holds the same bytes.
        let shared: Arc<[u8]> = Arc::from(&packet.data[..]);
        state.viewers.retain(|viewer| {
            viewer.quality != Quality::Full
                || viewer.sender.send(EncodedVideoFrame {
                    data: shared.clone(),
                    capture_time: packet.meta.captured_at,
                    keyframe: packet.keyframe,
                })
        });
    }
}

#[derive(Debug)]
struct Viewer {
    session: SessionId,
    sender: VideoSender,
    quality: Quality,
}

impl HubState {
    fn want_keyframe(&mut self, quality: Quality) {
        match quality {
            Quality::Full => self.keyframe = true,
            Quality::Thumbnail => self.thumbnail_keyframe = true,
        }
    }
}

/// What the encoder thread learns from the hub before each frame.
struct HubPoll {
    /// Someone wants the full stream.
    watched: bool,
    keyframe: bool,
    estimate_bps: Option<u64>,
    /// Someone wants the thumbnail stream.
    thumbnails: bool,
    thumbnail_keyframe: bool,
}

/// What the encoder thread is started with.
pub(crate) struct PipelineConfig {
    pub encoder: EncoderKind,
    pub fps: u32,
    pub max_size: Option<(u32, u32)>,
    pub record: Option<PathBuf>,
}

/// The running encoder thread (which owns the capture thread). Stopped and joined on drop.
pub(crate) struct Pipeline {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The size the video is encoded at (after `--max-size`).
    pub video_size: (u32, u32),
}

impl Pipeline {
    /// Starts encoding frames from `capture` for the viewers in `hub`.
    pub(crate) fn start(
        capture: CaptureThread,
        hub: Arc<VideoHub>,
        config: PipelineConfig,
    ) -> Result<Pipeline, Error> {
        let (width, height) = capture.size();
        // The encoders need even sizes: an odd screen loses its last column or row.
        let even = (width & !1, height & !1);
        let video_size = config
            .max_size
            .map(|(mw, mh)| fit_within(width, height, mw, mh))
            .unwrap_or(even);
        let scaler = (video_size != even).then(|| Scaler::new(video_size.0, video_size.1));
        let mut encoder_config = EncoderConfig::new(video_size.0, video_size.1);
        encoder_config.fps = config.fps.max(1);
        let mut encoder = VideoEncoder::new(config.encoder, encoder_config)?;
        // Nothing is sent while the screen is still; a viewer that lost a packet asks (PLI).
        encoder.set_refresh_interval(Duration::MAX);
        let recorder = match &config.record {
            Some(path) => Some(open_recording(path, video_size)?),
            None => None,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let bitrate = BitrateFollower::new(encoder.bitrate());
        let worker = Worker {
            capture,
            encoder,
            bitrate,
            scaler,
            crop: None,
            pacer: Pacer::new(config.fps),
            hub,
            recorder,
            stop: stop.clone(),
            thumbnails: Thumbnails::new(config.encoder),
        };
        let thread = std::thread::Builder::new()
            .name("encode".into())
            .spawn(move || worker.run())
            .map_err(Error::Thread)?;
        Ok(Pipeline {
            stop,
            thread: Some(thread),
            video_size,
        })
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn open_recording(path: &Path, (w, h): (u32, u32)) -> Result<IvfWriter<BufWriter<File>>, Error> {
    let record_error = |source| Error::Record {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(record_error)?;
    let width = u16::try_from(w).map_err(|_| Error::Config("picture too wide to record".into()))?;
    let height =
        u16::try_from(h).map_err(|_| Error::Config("picture too tall to record".into()))?;
    Ok(IvfWriter::new(BufWriter::new(file), width, height)?)
}

struct Worker {
    capture: CaptureThread,
    encoder: VideoEncoder,
    bitrate: BitrateFollower,
    scaler: Option<Scaler>,
    /// An odd-sized screen is cropped by a pixel to the even size the encoder needs.
    crop: Option<Frame>,
    pacer: Pacer,
    hub: Arc<VideoHub>,
    recorder: Option<IvfWriter<BufWriter<File>>>,
    stop: Arc<AtomicBool>,
    thumbnails: Thumbnails,
}

impl Worker {
    fn run(mut self) {
        // The newest changed frame not encoded yet (latest wins).
        let mut waiting: Option<Frame> = None;
        // When the last changed frame was encoded, until the settling keyframe has been sent.
        let mut unsettled_since: Option<Instant> = None;
        while !self.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let wait = match (self.pacer.poll_timeout(), waiting.is_some()) {
                (Some(at), true) => at.saturating_duration_since(now).min(IDLE_WAIT),
                _ => IDLE_WAIT,
            };
            match self.capture.next_frame(wait) {
                Ok(Some(frame)) => {
                    self.hub.set_screen_size(frame.width, frame.height);
                    if let Some(older) = waiting.replace(frame) {
                        self.capture.recycle(older);
                    }
                    self.pacer.handle_frame();
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(%error, "screen capture stopped; no more video");
                    break;
                }
            }
            let HubPoll {
                watched,
                keyframe,
                estimate_bps,
                thumbnails,
                thumbnail_keyframe,
            } = self.hub.poll();
            if thumbnails {
                // With nobody on the full stream, the newest frame is the thumbnails' alone.
                if !watched {
                    if let Some(frame) = waiting.take() {
                        self.give_to_thumbnails(frame);
                    }
                }
                if let Err(error) = self.thumbnails.run(thumbnail_keyframe, now, &self.hub) {
                    tracing::warn!(%error, "thumbnail encoding failed; trying again on the next frame");
                    self.thumbnails.stop();
                }
            } else if let Some(frame) = self.thumbnails.stop() {
                // The thumbnails' newest frame is the newest captured: the full stream starts
                // from it when it has nothing newer.
                if watched && waiting.is_none() {
                    waiting = Some(frame);
                    self.pacer.handle_frame();
                } else {
                    self.capture.recycle(frame);
                }
            }
            if !watched {
                continue;
            }
            // A viewer moved to the full stream while only thumbnails were encoded: the
            // thumbnails hold the newest captured frame, and the full encoder starts from it.
            if keyframe && waiting.is_none() {
                if let Some(frame) = self.thumbnails.take_newest() {
                    waiting = Some(frame);
                    self.pacer.handle_frame();
                }
            }
            if keyframe {
                self.encoder.request_keyframe();
            }
            let now = Instant::now();
            if let Some(kbps) = self.bitrate.update(estimate_bps, now) {
                tracing::debug!(kbps, ?estimate_bps, "encoder bitrate follows the estimate");
                self.encoder.set_bitrate(kbps);
            }
            let settle = unsettled_since.is_some_and(|at| now - at >= SETTLE_AFTER);
            let result = if waiting.is_some() && self.pacer.poll_encode(now) {
                let frame = waiting.take().expect("checked above");
                let result = self.encode(&frame);
                if thumbnails {
                    self.give_to_thumbnails(frame);
                } else {
                    self.capture.recycle(frame);
                }
                unsettled_since = Some(now);
                result
            } else if (keyframe || settle) && waiting.is_none() {
                unsettled_since = None;
                self.encoder.request_keyframe();
                // A still screen: send the last picture again, as a keyframe.
                self.encoder.tick(now).map(|_| ())
            } else {
                Ok(())
            };
            if let Err(error) = result.and_then(|()| self.drain()) {
                tracing::error!(%error, "encoding failed; no more video");
                break;
            }
        }
        if let Some(recorder) = self.recorder.take() {
            if let Err(error) = recorder.finish() {
                tracing::warn!(%error, "could not finish the recording");
            }
        }
    }

    fn encode(&mut self, frame: &Frame) -> Result<(), rtcdesk_media::Error> {
        let frame = match self.scaler.as_mut() {
            Some(scaler) => scaler.scale(frame),
            None if frame.width % 2 == 1 || frame.height % 2 == 1 => {
                let crop = self.crop.get_or_insert_with(|| Frame::new(0, 0));
                crop_even(frame, crop);
                &*crop
            }
            None => frame,
        };
        self.encoder.encode(frame)?;
        Ok(())
    }

    /// Hands a captured frame to the thumbnail stream (which keeps the newest one until its
    /// next frame is due), recycling the one it replaces.
    fn give_to_thumbnails(&mut self, frame: Frame) {
        if let Some(older) = self.thumbnails.offer(frame) {
            self.capture.recycle(older);
        }
    }

    fn drain(&mut self) -> Result<(), rtcdesk_media::Error> {
        while let Some(packet) = self.encoder.poll_packet()? {
            self.hub.fan_out(&packet, Quality::Full);
            if let Some(recorder) = self.recorder.as_mut() {
                recorder.write(&packet)?;
            }
        }
        Ok(())
    }
}

/// The thumbnail stream: its own scaler and encoder, started when a viewer first wants it and
/// stopped when none does; it encodes the newest frame it was given, at most
/// [`THUMBNAIL_FPS`] a second.
struct Thumbnails {
    kind: EncoderKind,
    /// The scaler and encoder, for the source size they were made for.
    running: Option<(Scaler, VideoEncoder, (u32, u32))>,
    /// The newest captured frame, and whether it has been encoded yet.
    source: Option<Frame>,
    fresh: bool,
    last_encoded: Option<Instant>,
}

impl Thumbnails {
    fn new(kind: EncoderKind) -> Thumbnails {
        Thumbnails {
            kind,
            running: None,
            source: None,
            fresh: false,
            last_encoded: None,
        }
    }

    /// Keeps `frame` as the newest; returns the one it replaces.
    fn offer(&mut self, frame: Frame) -> Option<Frame> {
        self.fresh = true;
        self.source.replace(frame)
    }

    /// Encodes the newest frame when one is due (or a keyframe is wanted) and hands the
    /// packets to the thumbnail viewers.
    fn run(
        &mut self,
        keyframe: bool,
        now: Instant,
        hub: &VideoHub,
    ) -> Result<(), rtcdesk_media::Error> {
        let Some(source) = self.source.as_ref() else {
            return Ok(());
        };
        let size = (source.width, source.height);
        if self
            .running
            .as_ref()
            .is_none_or(|(_, _, made_for)| *made_for != size)
        {
            let (w, h) = fit_within(size.0, size.1, THUMBNAIL_SIZE.0, THUMBNAIL_SIZE.1);
            let mut config = EncoderConfig::new(w, h);
            config.fps = THUMBNAIL_FPS;
            config.bitrate_kbps = THUMBNAIL_KBPS;
            config.threads = 1;
            let mut encoder = VideoEncoder::new(self.kind, config)?;
            encoder.set_refresh_interval(Duration::MAX);
            self.running = Some((Scaler::new(w, h), encoder, size));
            self.fresh = true;
        }
        let Some((scaler, encoder, _)) = self.running.as_mut() else {
            return Ok(());
        };
        if keyframe {
            encoder.request_keyframe();
        }
        let due = self.last_encoded.is_none_or(|at| {
            now.saturating_duration_since(at) >= Duration::from_secs(1) / THUMBNAIL_FPS
        });
        if self.fresh && due {
            self.fresh = false;
            self.last_encoded = Some(now);
            encoder.encode(scaler.scale(source))?;
        } else if keyframe && !self.fresh {
            encoder.tick(now)?;
        }
        while let Some(packet) = encoder.poll_packet()? {
            hub.fan_out(&packet, Quality::Thumbnail);
        }
        Ok(())
    }

    /// The newest frame given, for the full stream to start from (the thumbnail encoder keeps
    /// what it last encoded, and is given the frame back after the full encode).
    fn take_newest(&mut self) -> Option<Frame> {
        self.fresh = false;
        self.source.take()
    }

    /// Nobody wants thumbnails: the encoder stops; the frame it held is returned for reuse.
    fn stop(&mut self) -> Option<Frame> {
        self.running = None;
        self.last_encoded = None;
        self.fresh = false;
        self.source.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hub_reports_the_latest_captured_screen_size() {
        let hub = VideoHub::default();
        assert_eq!(hub.screen_size(), None);
        hub.set_screen_size(1280, 720);
        assert_eq!(hub.screen_size(), Some((1280, 720)));
        hub.set_screen_size(3840, 2160);
        assert_eq!(hub.screen_size(), Some((3840, 2160)));
    }
}
