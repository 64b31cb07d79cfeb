//! Capture pacing, sans-IO: when the encoder may take the next frame.
//!
//! The capture thread keeps only the newest changed frame (latest wins); the pacer decides when
//! the encoder takes it. It is a token bucket: credit is earned at `fps` frames a second and
//! each encode spends one frame of it, so a busy screen is encoded at most `fps` times a second
//! on average and never queued behind the encoder; a still screen costs nothing, and a change
//! after a quiet spell is encoded at once.
//!
//! The bucket holds up to two frames of credit, one more than it spends at a time. That spare
//! frame is what keeps latency low when the screen changes at about the cap's rate (a 60 Hz
//! scroll under a 60 fps cap): frames then reach the encoder a varying time after they were
//! grabbed (it may still be busy with the previous one), and with no spare credit a frame
//! that came a little early had to wait for a slot set by the latest one so far, a wait that
//! then repeated for every frame (13 ms each, measured). With the spare, such jitter is
//! absorbed and each frame is encoded as soon as the encoder is free.

use std::time::{Duration, Instant};

/// Frames of credit the bucket holds at most.
const BURST_FRAMES: u32 = 2;

/// Decides when a waiting frame may be encoded; see the module docs.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    /// Credit, as time: one `interval` buys one encode. At most `BURST_FRAMES` intervals.
    credit: Duration,
    /// When `credit` was last brought up to date.
    credited_at: Option<Instant>,
    waiting: bool,
}

impl Pacer {
    /// A pacer for at most `fps` frames a second (at least 1), starting full, as after a quiet
    /// spell.
    pub fn new(fps: u32) -> Self {
        let interval = Duration::from_secs(1) / fps.max(1);
        Self {
            interval,
            credit: interval * BURST_FRAMES,
            credited_at: None,
            waiting: false,
        }
    }

    /// The shortest time between two encodes, on average.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A changed frame is waiting (a newer one replaces an older one; the pacer only needs to
    /// know that one is there).
    pub fn handle_frame(&mut self) {
        self.waiting = true;
    }

    /// Whether to encode the waiting frame now. Returns `true` only while a frame waits and a
    /// frame of credit is there; the caller must then encode it.
    pub fn poll_encode(&mut self, now: Instant) -> bool {
        self.earn(now);
        if !self.waiting || self.credit < self.interval {
            return false;
        }
        self.credit -= self.interval;
        self.waiting = false;
        true
    }

    /// When a waiting frame may be encoded; `None` when none waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.waiting {
            return None;
        }
        let since = self.credited_at.unwrap_or_else(Instant::now);
        Some(since + self.interval.saturating_sub(self.credit))
    }

    /// Adds the credit earned since it was last brought up to date.
    fn earn(&mut self, now: Instant) {
        if let Some(at) = self.credited_at {
            let earned = now.saturating_duration_since(at);
            self.credit = (self.credit + earned).min(self.interval * BURST_FRAMES);
        }
        // Never backwards: a caller's earlier `now` must not earn the same time twice.
        self.credited_at = Some(self.credited_at.map_or(now, |at| at.max(now)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn nothing_is_encoded_while_the_screen_is_still() {
        let mut pacer = Pacer::new(30);
        let now = Instant::now();
        assert!(!pacer.poll_encode(now));
        assert!(!pacer.poll_encode(now + Duration::from_secs(10)));
        assert_eq!(pacer.poll_timeout(), None);
    }

    #[test]
    fn a_change_after_a_quiet_spell_is_encoded_at_once() {
        let mut pacer = Pacer::new(30);
        let start = Instant::now();
        pacer.handle_frame();
        assert!(pacer.poll_encode(start));
        let later = start + Duration::from_secs(2);
        pacer.handle_frame();
        assert!(pacer.poll_encode(later));
    }

    #[test]
    fn a_busy_screen_is_encoded_at_most_fps_times_a_second() {
        let mut pacer = Pacer::new(50); // 20 ms
        let start = Instant::now();
        let mut encoded = 0;
        // A frame every millisecond for two seconds.
        for ms in 0..2000u32 {
            pacer.handle_frame();
            if pacer.poll_encode(start + ms * MS) {
                encoded += 1;
            }
        }
        // 50 a second, plus the spare frame banked before the screen got busy.
        assert_eq!(encoded, 2 * 50 + 1);
    }

    #[test]
    fn an_early_frame_waits_for_its_credit() {
        let mut pacer = Pacer::new(50);
        let start = Instant::now();
        // Two at once spend the credit banked while the screen was still.
        for at in [start, start + MS] {
            pacer.handle_frame();
            assert!(pacer.poll_encode(at));
        }
        pacer.handle_frame();
        assert!(!pacer.poll_encode(start + 5 * MS));
        // The millisecond left over after the second encode counts.
        assert_eq!(pacer.poll_timeout(), Some(start + 20 * MS));
        assert!(pacer.poll_encode(start + 20 * MS));
        // Taken: nothing waits any more.
        assert!(!pacer.poll_encode(start + 100 * MS));
    }

    /// Frames arriving at exactly the pacer's rate, picked up after a varying delay (the
    /// encoder finishing the frame before): each must be encoded as soon as it is picked up,
    /// not at a slot that has drifted to the worst delay seen (a 60 Hz scroll under a 60 fps
    /// cap waited 13 ms a frame that way).
    #[test]
    fn content_at_the_cap_rate_is_not_held_back_by_jitter() {
        let mut pacer = Pacer::new(60);
        let interval = pacer.interval();
        let start = Instant::now();
        let mut worst = Duration::ZERO;
        for k in 0..600u32 {
            let arrival = start + interval * k + MS * (k * 7 % 3);
            let picked_up = arrival + MS * ((k * 5 + 8) % 9);
            pacer.handle_frame();
            let mut at = picked_up;
            while !pacer.poll_encode(at) {
                at = pacer.poll_timeout().expect("a frame waits").max(at);
            }
            if k >= 10 {
                worst = worst.max(at - picked_up);
            }
        }
        assert!(
            worst <= 3 * MS,
            "a frame waited {worst:?} after it was picked up"
        );
    }

    #[test]
    fn after_a_quiet_spell_at_most_one_spare_frame_is_banked() {
        let mut pacer = Pacer::new(50);
        let start = Instant::now();
        for at in [start, start + 20 * MS] {
            pacer.handle_frame();
            assert!(pacer.poll_encode(at));
        }
        // Looked 200 ms later: that frame, and one more at once from the spare credit, then
        // the next is a full interval away.
        pacer.handle_frame();
        assert!(pacer.poll_encode(start + 200 * MS));
        pacer.handle_frame();
        assert!(pacer.poll_encode(start + 201 * MS));
        pacer.handle_frame();
        assert!(!pacer.poll_encode(start + 202 * MS));
        assert_eq!(pacer.poll_timeout(), Some(start + 220 * MS));
        assert!(pacer.poll_encode(start + 220 * MS));
    }
}
