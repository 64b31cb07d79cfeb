//! The hand-over points between the network loop and the codecs, which run elsewhere.
//!
//! Outgoing: a one-frame slot. The encoder overwrites it (latest wins); the loop takes from it.
//! A frame overwritten before it was sent breaks the reference chain, so the slot remembers it
//! and the session then waits for a keyframe and asks the encoder for one.
//!
//! Incoming: a bounded queue. When the decoder is behind, the newest frame is dropped, frames up
//! to the next keyframe are skipped, and a keyframe is requested from the sender.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, Notify};

/// One encoded AV1 frame (a temporal unit), as the encoder produced it.
#[derive(Debug, Clone)]
pub struct EncodedVideoFrame {
    /// The OBUs, exactly as the encoder wrote them (no container). Shared: every viewer of one
    /// encoder sends the same bytes, and str0m takes them without a copy.
    pub data: Arc<[u8]>,
    /// When the picture was captured; the RTP timestamp is derived from it (90 kHz, relative to
    /// the first frame), so the receiver sees real frame spacing.
    pub capture_time: Instant,
    /// Whether the frame is a keyframe; after a dropped frame only a keyframe is sent.
    pub keyframe: bool,
}

/// One encoded Opus frame (10 or 20 ms of audio).
#[derive(Debug, Clone)]
pub struct EncodedAudioFrame {
    /// The Opus packet.
    pub data: Arc<[u8]>,
    /// When its first sample was captured; the RTP time (48 kHz) is derived from it.
    pub capture_time: Instant,
}

/// One Opus frame received from the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedAudioFrame {
    /// The Opus packet.
    pub data: Arc<[u8]>,
    /// The RTP timestamp, 48 kHz, extended to 64 bits.
    pub rtp_time: u64,
    /// When it arrived.
    pub received_at: Instant,
}

/// One whole frame received from the peer, ready for the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedVideoFrame {
    /// The depacketized OBUs.
    pub data: Arc<[u8]>,
    /// The RTP timestamp, 90 kHz, extended to 64 bits.
    pub rtp_time: u64,
    /// Whether the depacketizer saw a keyframe.
    pub keyframe: bool,
    /// False when packets before this frame were lost for good: the decoder may need a keyframe.
    pub contiguous: bool,
    /// When the first packet of the frame arrived.
    pub received_at: Instant,
}

#[derive(Debug, Default)]
struct SlotState {
    frame: Option<EncodedVideoFrame>,
    overwritten: bool,
    closed: bool,
}

#[derive(Debug)]
pub(crate) struct VideoSlot {
    state: Mutex<SlotState>,
    /// The network task's wake-up, shared by everything that hands it work.
    notify: Arc<Notify>,
    keyframe_wanted: AtomicBool,
    keyframe_notify: Notify,
    /// The session's bandwidth estimate in bit/s, 0 while there is none.
    estimate_bps: AtomicU64,
}

impl VideoSlot {
    pub(crate) fn new(wake: Arc<Notify>) -> Self {
        Self {
            state: Mutex::default(),
            notify: wake,
            keyframe_wanted: AtomicBool::new(false),
            keyframe_notify: Notify::new(),
            estimate_bps: AtomicU64::new(0),
        }
    }

    /// Takes the waiting frame, and whether an earlier one was overwritten unsent.
    pub(crate) fn take(&self) -> Option<(EncodedVideoFrame, bool)> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let frame = state.frame.take()?;
        let overwritten = std::mem::take(&mut state.overwritten);
        Some((frame, overwritten))
    }

    pub(crate) fn request_keyframe(&self) {
        self.keyframe_wanted.store(true, Ordering::Release);
        self.keyframe_notify.notify_one();
    }

    /// Publishes the session's bandwidth estimate for the encoder, which runs elsewhere.
    pub(crate) fn set_bandwidth_estimate(&self, bps: Option<u64>) {
        self.estimate_bps.store(bps.unwrap_or(0), Ordering::Relaxed);
    }

    pub(crate) fn close(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
    }
}

/// Hands encoded frames to the session; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct VideoSender {
    pub(crate) slot: Arc<VideoSlot>,
}

impl VideoSender {
    /// Puts a frame in the slot, replacing one the network has not taken yet. Never blocks.
    /// Returns `false` once the session has closed.
    pub fn send(&self, frame: EncodedVideoFrame) -> bool {
        {
            let mut state = self.slot.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.closed {
                return false;
            }
            if state.frame.replace(frame).is_some() {
                state.overwritten = true;
            }
        }
        self.slot.notify.notify_one();
        true
    }

    /// Whether the receiver (or a dropped frame) asked for a keyframe since the last call.
    /// The encoder polls this before each frame: it is the one way keyframe requests reach it.
    pub fn take_keyframe_request(&self) -> bool {
        self.slot.keyframe_wanted.swap(false, Ordering::AcqRel)
    }

    /// Waits until a keyframe request is pending (without taking it), for an encoder task that
    /// sleeps while the screen is still.
    pub async fn keyframe_requested(&self) {
        loop {
            let notified = self.slot.keyframe_notify.notified();
            if self.slot.keyframe_wanted.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// How many bits per second this session's path can carry, by the sender's bandwidth
    /// estimate (TWCC); `None` until the first estimate, or when estimation is off. The encoder
    /// keeps its bitrate below it, so frames do not queue in the pacer and grow old.
    pub fn bandwidth_estimate_bps(&self) -> Option<u64> {
        match self.slot.estimate_bps.load(Ordering::Relaxed) {
            0 => None,
            bps => Some(bps),
        }
    }
}

/// Where received frames come out, for a decoder running in its own task or thread.
#[derive(Debug)]
pub struct VideoReceiver {
    pub(crate) frames: mpsc::Receiver<ReceivedVideoFrame>,
}

impl VideoReceiver {
    /// The next frame; `None` once the session has ended.
    pub async fn recv(&mut self) -> Option<ReceivedVideoFrame> {
        self.frames.recv().await
    }

    /// The next frame from a plain thread (e.g. a decoder thread); `None` once the session ended.
    pub fn blocking_recv(&mut self) -> Option<ReceivedVideoFrame> {
        self.frames.blocking_recv()
    }
}

/// How many encoded audio frames may wait for the network; more means the network loop is
/// behind, and then the oldest audio is dropped (late audio is worthless).
const AUDIO_SEND_QUEUE: usize = 8;

#[derive(Debug)]
pub(crate) struct AudioQueue {
    frames: Mutex<std::collections::VecDeque<EncodedAudioFrame>>,
    /// The network task's wake-up.
    notify: Arc<Notify>,
}

impl AudioQueue {
    pub(crate) fn new(wake: Arc<Notify>) -> Self {
        Self {
            frames: Mutex::default(),
            notify: wake,
        }
    }

    pub(crate) fn take(&self) -> Option<EncodedAudioFrame> {
        self.frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

/// Hands encoded audio frames to the session; cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct AudioSender {
    pub(crate) queue: Arc<AudioQueue>,
}

impl AudioSender {
    /// Queues a frame; never blocks. When the network is behind the oldest frame is dropped.
    pub fn send(&self, frame: EncodedAudioFrame) {
        {
            let mut frames = self.queue.frames.lock().unwrap_or_else(|e| e.into_inner());
            if frames.len() >= AUDIO_SEND_QUEUE {
                frames.pop_front();
            }
            frames.push_back(frame);
        }
        self.queue.notify.notify_one();
    }
}

/// Where received audio comes out, for an audio decoder in its own thread.
#[derive(Debug)]
pub struct AudioReceiver {
    pub(crate) frames: mpsc::Receiver<ReceivedAudioFrame>,
}

impl AudioReceiver {
    /// The next frame; `None` once the session has ended.
    pub async fn recv(&mut self) -> Option<ReceivedAudioFrame> {
        self.frames.recv().await
    }

    /// The next frame from a plain thread; `None` once the session has ended.
    pub fn blocking_recv(&mut self) -> Option<ReceivedAudioFrame> {
        self.frames.blocking_recv()
    }
}
