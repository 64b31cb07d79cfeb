//! Following the transfers a program started (or accepted) to their end, so a script that
//! sends files can wait for them and exit with a code that says whether they all arrived.

use std::collections::BTreeSet;

use crate::{Direction, TransferEvent};

/// The transfers a program waits for: files it was asked to send (`--send`) and files it
/// accepted. Feed it what the session reports; [`TransferTracker::is_done`] says when nothing
/// is left in flight, [`TransferTracker::failed`] how many did not make it.
#[derive(Debug, Default, Clone)]
pub struct TransferTracker {
    /// Files asked to be sent that have no id yet (still being opened and hashed).
    unoffered: usize,
    /// Transfers in flight, by direction and id.
    live: BTreeSet<(bool, u32)>,
    done: usize,
    failed: usize,
}

impl TransferTracker {
    /// A tracker for `sends` files about to be offered.
    pub fn new(sends: usize) -> Self {
        TransferTracker {
            unoffered: sends,
            ..Self::default()
        }
    }

    /// One of the files to send was offered under `id`.
    pub fn offered(&mut self, id: u32) {
        self.unoffered = self.unoffered.saturating_sub(1);
        self.live.insert((true, id));
    }

    /// One of the files to send could not be offered (missing, a folder, unreadable).
    pub fn not_offered(&mut self) {
        self.unoffered = self.unoffered.saturating_sub(1);
        self.failed += 1;
    }

    /// This side accepted the other side's offer `id`: wait for it too.
    pub fn accepted(&mut self, id: u32) {
        self.live.insert((false, id));
    }

    /// A transfer event from the session; events about transfers not followed are ignored.
    pub fn on_event(&mut self, event: &TransferEvent) {
        let (direction, id, completed) = match event {
            TransferEvent::Completed { direction, id, .. } => (*direction, *id, true),
            TransferEvent::Ended { direction, id, .. } => (*direction, *id, false),
            _ => return,
        };
        if self.live.remove(&(direction == Direction::Outgoing, id)) {
            if completed {
                self.done += 1;
            } else {
                self.failed += 1;
            }
        }
    }

    /// The session is over: whatever was still in flight did not make it.
    pub fn session_ended(&mut self) {
        self.failed += self.unoffered + self.live.len();
        self.unoffered = 0;
        self.live.clear();
    }

    /// Nothing is waiting to be offered and nothing is in flight.
    pub fn is_done(&self) -> bool {
        self.unoffered == 0 && self.live.is_empty()
    }

    /// Transfers that arrived (or were kept by the other side).
    pub fn completed(&self) -> usize {
        self.done
    }

    /// Transfers that were not offered, declined, cancelled, failed, or cut by the session's end.
    pub fn failed(&self) -> usize {
        self.failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ending;

    fn ended(direction: Direction, id: u32) -> TransferEvent {
        TransferEvent::Ended {
            direction,
            id,
            ending: Ending::Declined {
                reason: "no".into(),
            },
        }
    }

    fn completed(direction: Direction, id: u32) -> TransferEvent {
        TransferEvent::Completed {
            direction,
            id,
            path: None,
        }
    }

    #[test]
    fn waits_for_every_send_and_every_accepted_file() {
        let mut tracker = TransferTracker::new(2);
        assert!(!tracker.is_done());
        tracker.offered(1);
        tracker.offered(2);
        tracker.accepted(1);
        tracker.on_event(&completed(Direction::Outgoing, 1));
        // The other side's transfer 7 is not followed; incoming 2 was never accepted.
        tracker.on_event(&completed(Direction::Incoming, 7));
        tracker.on_event(&ended(Direction::Incoming, 2));
        assert!(!tracker.is_done());
        tracker.on_event(&completed(Direction::Outgoing, 2));
        assert!(!tracker.is_done(), "incoming 1 is still in flight");
        tracker.on_event(&completed(Direction::Incoming, 1));
        assert!(tracker.is_done());
        assert_eq!((tracker.completed(), tracker.failed()), (3, 0));
    }

    #[test]
    fn a_refused_a_missing_and_a_cut_transfer_each_count_as_failed() {
        let mut tracker = TransferTracker::new(3);
        tracker.not_offered();
        tracker.offered(1);
        tracker.on_event(&ended(Direction::Outgoing, 1));
        tracker.on_event(&ended(Direction::Outgoing, 1)); // counted once
        tracker.accepted(4);
        tracker.session_ended();
        assert!(tracker.is_done());
        assert_eq!((tracker.completed(), tracker.failed()), (0, 4));
    }
}
