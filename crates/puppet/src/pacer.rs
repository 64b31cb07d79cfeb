//! Capture pacing, sans-IO: when the encoder may take the next frame.
//!
//! The capture thread keeps only the newest changed frame (latest wins); the pacer decides when
//! the encoder takes it: at once when the screen changes after a quiet spell, and otherwise no
//! sooner than `1/fps` after the previous encode. A frame that arrives too early waits for its
//! slot (and is replaced by any newer one meanwhile), so a busy screen is encoded at most `fps`
//! times a second and never queued behind the encoder; a still screen costs nothing.

use std::time::{Duration, Instant};

/// Decides when a waiting frame may be encoded; see the module docs.
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    last_encode: Option<Instant>,
    waiting: bool,
}

impl Pacer {
    /// A pacer for at most `fps` frames a second (at least 1).
    pub fn new(fps: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / fps.max(1),
            last_encode: None,
            waiting: false,
        }
    }

    /// The shortest time between two encodes.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A changed frame is waiting (a newer one replaces an older one; the pacer only needs to
    /// know that one is there).
    pub fn handle_frame(&mut self) {
        self.waiting = true;
    }

    /// Whether to encode the waiting frame now. Returns `true` at most once per interval, and
    /// only while a frame waits; the caller must then encode it.
    pub fn poll_encode(&mut self, now: Instant) -> bool {
        if !self.waiting {
            return false;
        }
        match self.last_encode {
            Some(last) if now < last + self.interval => false,
            Some(last) => {
                // Keep the cadence when running flat out (the slot is when it was due, not when
                // we happened to look), but never bank more than one interval of credit.
                let due = last + self.interval;
                self.last_encode = Some(if now - due < self.interval { due } else { now });
                self.waiting = false;
                true
            }
            None => {
                self.last_encode = Some(now);
                self.waiting = false;
                true
            }
        }
    }

    /// When a waiting frame may be encoded; `None` when none waits.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.waiting {
            return None;
        }
        Some(match self.last_encode {
            Some(last) => last + self.interval,
            None => Instant::now(),
        })
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
        // A frame every millisecond for one second.
        for ms in 0..1000u32 {
            pacer.handle_frame();
            if pacer.poll_encode(start + ms * MS) {
                encoded += 1;
            }
        }
        assert_eq!(encoded, 50);
    }

    #[test]
    fn an_early_frame_waits_for_its_slot() {
        let mut pacer = Pacer::new(50);
        let start = Instant::now();
        pacer.handle_frame();
        assert!(pacer.poll_encode(start));
        pacer.handle_frame();
        assert!(!pacer.poll_encode(start + 5 * MS));
        assert_eq!(pacer.poll_timeout(), Some(start + 20 * MS));
        assert!(pacer.poll_encode(start + 20 * MS));
        // Taken: nothing waits any more.
        assert!(!pacer.poll_encode(start + 100 * MS));
    }

    #[test]
    fn no_burst_after_a_late_look() {
        let mut pacer = Pacer::new(50);
        let start = Instant::now();
        pacer.handle_frame();
        assert!(pacer.poll_encode(start));
        // Looked 200 ms later: one frame, then the next slot is a full interval away.
        pacer.handle_frame();
        assert!(pacer.poll_encode(start + 200 * MS));
        pacer.handle_frame();
        assert!(!pacer.poll_encode(start + 201 * MS));
        assert!(pacer.poll_encode(start + 220 * MS));
    }
}
