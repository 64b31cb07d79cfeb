//! Helpers shared by the capture tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rtcdesk_media::{Capture, Frame, Result};

/// Counts a source's grabs, and how many of them followed a signalled change.
pub struct Counting<C> {
    pub source: C,
    pub counts: Arc<Mutex<Counts>>,
    pub signalled: bool,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub grabs: u64,
    pub after_signal: u64,
}

impl<C: Capture> Capture for Counting<C> {
    fn size(&self) -> (u32, u32) {
        self.source.size()
    }

    fn grab(&mut self, frame: &mut Frame) -> Result<bool> {
        let mut counts = self.counts.lock().unwrap();
        counts.grabs += 1;
        counts.after_signal += u64::from(std::mem::take(&mut self.signalled));
        drop(counts);
        self.source.grab(frame)
    }

    fn wait_for_change(&mut self, timeout: Duration) -> Result<bool> {
        let changed = self.source.wait_for_change(timeout)?;
        self.signalled |= changed;
        Ok(changed)
    }
}
