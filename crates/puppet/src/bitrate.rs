//! Encoder bitrate from the bandwidth estimate, sans-IO.
//!
//! One encoder feeds every viewer, so its bitrate follows the slowest viewer's bandwidth
//! estimate: a frame bigger than the path can carry waits in the sender's pacer and arrives
//! late, which a viewer feels as lag. The follower keeps the target at a share of the estimate,
//! never above the bitrate configured for the picture size (more bits make scrolling frames
//! bigger and slower to encode and send, for little visible gain), and never below a floor at
//! which text stays readable. It falls at once when the estimate falls and rises only after the
//! estimate has stayed higher for a while, so the rate control does not swing with every
//! estimate.

use std::time::{Duration, Instant};

/// The share of the estimate the video may use; the rest is for the data channels, RTP and
/// retransmissions, and estimation error.
const SHARE_OF_ESTIMATE: f64 = 0.85;
/// The lowest target, in kbit/s.
pub const FLOOR_KBPS: u32 = 100;
/// A rise waits this long after the last change.
const RISE_AFTER: Duration = Duration::from_secs(1);
/// Changes smaller than this fraction of the current target are ignored.
const DEADBAND: f64 = 0.1;

/// Decides the encoder's target bitrate; see the module docs.
#[derive(Debug, Clone)]
pub struct BitrateFollower {
    ceiling_kbps: u32,
    current_kbps: u32,
    last_change: Option<Instant>,
}

impl BitrateFollower {
    /// A follower that starts at, and never goes above, `ceiling_kbps`.
    pub fn new(ceiling_kbps: u32) -> Self {
        let ceiling_kbps = ceiling_kbps.max(FLOOR_KBPS);
        Self {
            ceiling_kbps,
            current_kbps: ceiling_kbps,
            last_change: None,
        }
    }

    /// The current target in kbit/s.
    pub fn target_kbps(&self) -> u32 {
        self.current_kbps
    }

    /// Takes the slowest viewer's estimate (`None`: no estimate yet) and returns the new
    /// target when the encoder should change its bitrate.
    pub fn update(&mut self, estimate_bps: Option<u64>, now: Instant) -> Option<u32> {
        let wanted = match estimate_bps {
            Some(bps) => ((bps as f64 * SHARE_OF_ESTIMATE / 1000.0) as u64)
                .clamp(u64::from(FLOOR_KBPS), u64::from(self.ceiling_kbps))
                as u32,
            None => self.ceiling_kbps,
        };
        let current = f64::from(self.current_kbps);
        let change = (f64::from(wanted) - current) / current;
        // Small changes are ignored, except those that reach the floor or the ceiling exactly.
        let falling = wanted < self.current_kbps && (change <= -DEADBAND || wanted == FLOOR_KBPS);
        let rising = wanted > self.current_kbps
            && (change >= DEADBAND || wanted == self.ceiling_kbps)
            && self
                .last_change
                .is_none_or(|at| now.saturating_duration_since(at) >= RISE_AFTER);
        if falling || rising {
            self.current_kbps = wanted;
            self.last_change = Some(now);
            Some(wanted)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn without_an_estimate_the_configured_bitrate_stays() {
        let mut follower = BitrateFollower::new(2000);
        let now = Instant::now();
        assert_eq!(follower.update(None, now), None);
        assert_eq!(follower.update(None, now + 10 * S), None);
        assert_eq!(follower.target_kbps(), 2000);
    }

    #[test]
    fn a_falling_estimate_lowers_the_target_at_once() {
        let mut follower = BitrateFollower::new(2000);
        let now = Instant::now();
        assert_eq!(follower.update(Some(1_000_000), now), Some(850));
        // Falling again right away is allowed too: congestion does not wait.
        assert_eq!(follower.update(Some(500_000), now), Some(425));
    }

    #[test]
    fn a_rising_estimate_raises_the_target_only_after_a_while() {
        let mut follower = BitrateFollower::new(4000);
        let start = Instant::now();
        assert_eq!(follower.update(Some(1_000_000), start), Some(850));
        assert_eq!(
            follower.update(Some(2_000_000), start + S / 2),
            None,
            "too soon after the last change"
        );
        assert_eq!(follower.update(Some(2_000_000), start + S), Some(1700));
    }

    #[test]
    fn small_wobbles_are_ignored() {
        let mut follower = BitrateFollower::new(4000);
        let start = Instant::now();
        assert_eq!(follower.update(Some(2_000_000), start), Some(1700));
        for (i, bps) in [2_050_000, 1_950_000, 2_100_000, 1_900_000]
            .into_iter()
            .enumerate()
        {
            assert_eq!(follower.update(Some(bps), start + (i as u32 + 2) * S), None);
        }
    }

    #[test]
    fn the_target_stays_between_the_floor_and_the_ceiling() {
        let mut follower = BitrateFollower::new(2000);
        let start = Instant::now();
        // A generous path never raises it above what is configured.
        assert_eq!(follower.update(Some(60_000_000), start), None);
        assert_eq!(follower.target_kbps(), 2000);
        // A starved one never takes it below the floor.
        assert_eq!(follower.update(Some(10_000), start), Some(FLOOR_KBPS));
        assert_eq!(follower.update(Some(1_000), start + 5 * S), None);
        // And when the path recovers, it goes back up to the ceiling exactly.
        assert_eq!(
            follower.update(Some(60_000_000), start + 10 * S),
            Some(2000)
        );
    }
}
