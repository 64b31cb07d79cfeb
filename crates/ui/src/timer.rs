//! When to draw the next egui frame.
//!
//! egui says after each frame how long it can wait before it must be drawn again (a countdown
//! ticking, an animation, or "not until something happens"). The event loop sleeps with
//! `ControlFlow::WaitUntil` on [`RedrawTimer::deadline`] and asks for a redraw when
//! [`RedrawTimer::due`] says so, instead of redrawing in a busy loop.

use std::time::{Duration, Instant};

/// The next moment egui wants a frame, if any.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedrawTimer {
    deadline: Option<Instant>,
}

impl RedrawTimer {
    /// Takes egui's wish after a frame drawn at `now`: `delay` as given by the viewport output's
    /// `repaint_delay` (`Duration::MAX` means "only on input"). An earlier wish wins.
    pub fn schedule(&mut self, now: Instant, delay: Duration) {
        let Some(at) = now.checked_add(delay) else {
            return;
        };
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    /// When the loop must wake up for a frame.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the frame is due at `now`; clears the deadline when it is.
    pub fn due(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(at) if at <= now => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_wish_wins_and_is_due_once() {
        let t0 = Instant::now();
        let mut timer = RedrawTimer::default();
        timer.schedule(t0, Duration::MAX);
        assert_eq!(timer.deadline(), None, "no frame until input");
        timer.schedule(t0, Duration::from_secs(1));
        timer.schedule(t0, Duration::from_millis(100));
        assert_eq!(timer.deadline(), Some(t0 + Duration::from_millis(100)));
        assert!(!timer.due(t0));
        assert!(timer.due(t0 + Duration::from_millis(100)));
        assert!(!timer.due(t0 + Duration::from_secs(2)));
    }
}
