//! Wrong passwords against an unattended puppet, sans-IO: exponential backoff, then a lockout
//! only its owner lifts.
//!
//! SPAKE2 gives whoever dials one guess per run, so what bounds guessing is how many runs the
//! puppet allows. After the n-th wrong password in a row the next run waits
//! [`AttemptPolicy::first_delay`] × 2^(n−1) (capped at [`AttemptPolicy::max_delay`]); after
//! [`AttemptPolicy::lock_after`] in a row every run is refused until `puppet unlock` (or a new
//! password). A right password ends the streak. The puppet's shell stores the counts in the
//! config folder after every change, so restarting the service does not reset them.

use std::time::{Duration, Instant};

/// How hard the puppet makes guessing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptPolicy {
    /// The wait after the first wrong password.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
    /// Wrong passwords in a row that lock the puppet.
    pub lock_after: u32,
}

impl Default for AttemptPolicy {
    /// 1 s, doubling, at most 15 minutes; locked after 10 wrong passwords in a row. Ten guesses
    /// per lockout leave a password of eight random lower-case letters about one chance in
    /// 2 × 10^10.
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            lock_after: 10,
        }
    }
}

/// Why a run is refused before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Locked after this many wrong passwords in a row.
    Locked {
        /// The streak that locked it.
        failures: u32,
    },
    /// Backing off: the next run may start after this long.
    Wait(Duration),
}

impl Refusal {
    /// What the controller's user reads (sent as the `reject` reason).
    pub fn reason(self) -> String {
        match self {
            Refusal::Locked { failures } => format!(
                "this puppet is locked after {failures} wrong passwords: its owner must unlock it \
                 on the machine (puppet unlock)"
            ),
            Refusal::Wait(wait) => format!(
                "too many wrong passwords: try again in {} s",
                wait.as_secs_f64().ceil() as u64
            ),
        }
    }
}

/// The streak of wrong passwords and what it allows now.
#[derive(Debug, Clone)]
pub struct AttemptGuard {
    policy: AttemptPolicy,
    consecutive: u32,
    locked: bool,
    retry_at: Option<Instant>,
}

impl AttemptGuard {
    /// A guard that remembers a streak of `consecutive` wrong passwords (from the config
    /// folder): the backoff it earned starts again from `now`.
    pub fn restore(policy: AttemptPolicy, consecutive: u32, locked: bool, now: Instant) -> Self {
        let mut guard = Self {
            policy,
            consecutive,
            locked: locked || consecutive >= policy.lock_after,
            retry_at: None,
        };
        if consecutive > 0 {
            guard.retry_at = Some(now + guard.delay());
        }
        guard
    }

    /// Whether a run may start now.
    pub fn check(&self, now: Instant) -> Result<(), Refusal> {
        if self.locked {
            return Err(Refusal::Locked {
                failures: self.consecutive,
            });
        }
        match self.retry_at {
            Some(at) if at > now => Err(Refusal::Wait(at - now)),
            _ => Ok(()),
        }
    }

    /// A run failed (a wrong password, or a run abandoned after the puppet's reply).
    pub fn record_failure(&mut self, now: Instant) {
        self.consecutive = self.consecutive.saturating_add(1);
        if self.consecutive >= self.policy.lock_after {
            self.locked = true;
        }
        self.retry_at = Some(now + self.delay());
    }

    /// The right password: the streak ends.
    pub fn record_success(&mut self) {
        self.consecutive = 0;
        self.retry_at = None;
    }

    /// The owner unlocked it (`puppet unlock`): the streak and the lock are gone.
    pub fn unlock(&mut self) {
        self.consecutive = 0;
        self.locked = false;
        self.retry_at = None;
    }

    /// Wrong passwords in a row so far.
    pub fn consecutive(&self) -> u32 {
        self.consecutive
    }

    /// Whether it is locked.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    fn delay(&self) -> Duration {
        let doublings = self.consecutive.saturating_sub(1).min(30);
        self.policy
            .first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.policy.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_wrong_password_doubles_the_wait_then_the_puppet_locks() {
        let now = Instant::now();
        let mut guard = AttemptGuard::restore(AttemptPolicy::default(), 0, false, now);
        assert_eq!(guard.check(now), Ok(()));
        let mut t = now;
        for n in 1..10u32 {
            guard.record_failure(t);
            let wait = Duration::from_secs(1 << (n - 1)).min(Duration::from_secs(900));
            assert_eq!(guard.check(t), Err(Refusal::Wait(wait)), "after {n}");
            assert_eq!(guard.check(t + wait), Ok(()), "after {n}");
            t += wait;
        }
        guard.record_failure(t);
        let far = t + Duration::from_secs(365 * 24 * 3600);
        assert_eq!(guard.check(far), Err(Refusal::Locked { failures: 10 }));
        assert!(guard
            .check(far)
            .unwrap_err()
            .reason()
            .contains("puppet unlock"));
        guard.unlock();
        assert_eq!(guard.check(far), Ok(()));
    }

    #[test]
    fn the_right_password_ends_the_streak() {
        let now = Instant::now();
        let mut guard = AttemptGuard::restore(AttemptPolicy::default(), 0, false, now);
        for _ in 0..3 {
            guard.record_failure(now);
        }
        guard.record_success();
        assert_eq!(guard.check(now), Ok(()));
        guard.record_failure(now);
        assert_eq!(
            guard.check(now),
            Err(Refusal::Wait(Duration::from_secs(1))),
            "a new streak starts at the first wait"
        );
    }

    #[test]
    fn a_restored_streak_keeps_its_backoff_and_its_lock() {
        let now = Instant::now();
        let guard = AttemptGuard::restore(AttemptPolicy::default(), 4, false, now);
        assert_eq!(guard.check(now), Err(Refusal::Wait(Duration::from_secs(8))));
        let locked = AttemptGuard::restore(AttemptPolicy::default(), 2, true, now);
        assert!(matches!(locked.check(now), Err(Refusal::Locked { .. })));
        let over = AttemptGuard::restore(AttemptPolicy::default(), 12, false, now);
        assert!(over.is_locked(), "a streak past the limit is a lock");
    }

    #[test]
    fn the_wait_is_capped() {
        let now = Instant::now();
        let policy = AttemptPolicy {
            lock_after: u32::MAX,
            ..AttemptPolicy::default()
        };
        let guard = AttemptGuard::restore(policy, 200, false, now);
        assert_eq!(
            guard.check(now),
            Err(Refusal::Wait(Duration::from_secs(900)))
        );
    }
}
