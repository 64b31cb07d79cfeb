//! Progress of one transfer: bytes done, rate and time left, on the caller's clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How far back the rate looks: long enough to smooth bursts, short enough to follow a change.
const RATE_SPAN: Duration = Duration::from_secs(5);
/// Samples closer together than this replace each other, so the history stays small.
const SAMPLE_STEP: Duration = Duration::from_millis(250);
/// Most samples kept (bounds memory whatever the caller does).
const MAX_SAMPLES: usize = 32;

/// A snapshot for display, on both sides of a transfer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Bytes done: acknowledged by the receiver (sending side) or written (receiving side),
    /// counting bytes kept from an earlier, broken transfer.
    pub bytes: u64,
    /// The file's size.
    pub total: u64,
    /// Bytes per second over the last few seconds; 0.0 until two samples exist.
    pub rate: f64,
    /// Time left at that rate; `None` while the rate is unknown or zero.
    pub remaining: Option<Duration>,
}

impl Progress {
    /// Done as a fraction, 0.0..=1.0 (1.0 for an empty file).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.bytes as f64 / self.total as f64
        }
    }
}

/// Bytes over time, measured at the points the caller reports.
#[derive(Debug, Clone)]
pub(crate) struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
    bytes: u64,
}

impl RateMeter {
    pub(crate) fn new(bytes: u64, now: Instant) -> Self {
        let mut samples = VecDeque::with_capacity(MAX_SAMPLES);
        samples.push_back((now, bytes));
        RateMeter { samples, bytes }
    }

    /// `bytes` are done at `now` (never fewer than before).
    pub(crate) fn record(&mut self, bytes: u64, now: Instant) {
        self.bytes = self.bytes.max(bytes);
        if let Some(&(last, _)) = self.samples.back() {
            if self.samples.len() > 1 && now.saturating_duration_since(last) < SAMPLE_STEP {
                self.samples.pop_back();
            }
        }
        self.samples.push_back((now, self.bytes));
        while self.samples.len() > MAX_SAMPLES
            || self.samples.len() > 2
                && now.saturating_duration_since(self.samples[1].0) > RATE_SPAN
        {
            self.samples.pop_front();
        }
    }

    pub(crate) fn progress(&self, total: u64, now: Instant) -> Progress {
        let rate = match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, b0)), Some(&(_, b1))) => {
                let span = now.saturating_duration_since(t0).as_secs_f64();
                if span > 0.0 {
                    (b1 - b0) as f64 / span
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        let left = total.saturating_sub(self.bytes);
        let remaining = (rate > 0.0).then(|| Duration::from_secs_f64(left as f64 / rate));
        Progress {
            bytes: self.bytes,
            total,
            rate,
            remaining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_time_left_follow_the_virtual_clock() {
        // Given a transfer of 100 MB resumed at 10 MB, moving 1 MB every 100 ms,
        let start = Instant::now();
        let mut meter = RateMeter::new(10_000_000, start);
        let mut now = start;
        for step in 1..=40u64 {
            now = start + Duration::from_millis(100 * step);
            meter.record(10_000_000 + step * 1_000_000, now);
        }
        // then the rate is 10 MB/s and 50 MB are left: 5 s.
        let progress = meter.progress(100_000_000, now);
        assert_eq!(progress.bytes, 50_000_000);
        assert!((progress.rate - 10e6).abs() < 0.5e6, "{}", progress.rate);
        let left = progress.remaining.unwrap().as_secs_f64();
        assert!((left - 5.0).abs() < 0.3, "{left}");
        assert!((progress.fraction() - 0.5).abs() < 1e-9);
        // And when nothing moves for a while the rate falls.
        let later = meter.progress(100_000_000, now + Duration::from_secs(60));
        assert!(later.rate < 1e6, "{}", later.rate);
    }

    #[test]
    fn no_rate_before_any_bytes_move() {
        let now = Instant::now();
        let meter = RateMeter::new(0, now);
        let progress = meter.progress(10, now);
        assert_eq!(progress.rate, 0.0);
        assert_eq!(progress.remaining, None);
    }
}
