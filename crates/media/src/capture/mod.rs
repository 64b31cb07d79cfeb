//! Screen capture: the [`Capture`] trait, its two sources (X11 through scrap, and the synthetic
//! desktop), and [`CaptureThread`], which grabs a source when it says its screen changed (or
//! polls it, for sources that cannot say), at most at a set rate, and hands on only the frames
//! that changed, latest first.

use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::frame::{Frame, Rect};

pub mod synthetic;
pub mod x11;

/// A screen that can be grabbed: the X11 screen or the synthetic desktop.
///
/// `grab` writes into a frame the caller owns, so buffers are reused frame after frame.
pub trait Capture {
    /// The current screen size.
    fn size(&self) -> (u32, u32);
    /// Grabs the screen into `frame` (resizing it when the screen size differs) if it changed
    /// since the last grab that returned `true`; returns whether it did. The frame's number,
    /// capture time and changed region are set on `true`; on `false` the frame is untouched.
    fn grab(&mut self, frame: &mut Frame) -> Result<bool>;
    /// Waits up to `timeout` for the screen to change and returns whether it may have: `true`
    /// means a grab is worth doing now, `false` that nothing changed in that time. Lets the
    /// capture thread sleep through a still screen and grab as soon as it changes.
    ///
    /// The default is for sources that cannot tell: it sleeps the whole timeout and returns
    /// `true`, so they are polled at the thread's rate.
    fn wait_for_change(&mut self, timeout: Duration) -> Result<bool> {
        std::thread::sleep(timeout);
        Ok(true)
    }
}

/// Compares a new screen image with the previous one and returns the bounding box of the
/// differences, or `None` when identical. Rows are compared whole first (a memcmp), so an
/// unchanged screen costs one pass over memory.
pub fn changed_region(
    previous: &[u8],
    current: &[u8],
    width: u32,
    height: u32,
    stride: usize,
) -> Option<Rect> {
    let row_len = width as usize * 4;
    let row = |y: u32| {
        let start = y as usize * stride;
        start..start + row_len
    };
    let differs = |y: u32| previous[row(y)] != current[row(y)];
    let top = (0..height).find(|&y| differs(y))?;
    let bottom = (top..height).rev().find(|&y| differs(y)).unwrap_or(top);
    let (mut left, mut right) = (u32::MAX, 0u32);
    for y in top..=bottom {
        let (a, b) = (&previous[row(y)], &current[row(y)]);
        if a == b {
            continue;
        }
        let first = a.iter().zip(b).position(|(p, q)| p != q).unwrap_or(0);
        let last = a.iter().zip(b).rposition(|(p, q)| p != q).unwrap_or(first);
        left = left.min((first / 4) as u32);
        right = right.max((last / 4) as u32);
    }
    Some(Rect {
        x: left,
        y: top,
        width: right - left + 1,
        height: bottom - top + 1,
    })
}

/// Shared between the capture thread and its handle.
struct Slot {
    latest: Option<Frame>,
    spare: Vec<Frame>,
    ended: Option<String>,
}

/// Frames kept for reuse; more are dropped.
const SPARE_FRAMES: usize = 3;

/// A thread that owns a capture source (scrap's capturer cannot leave the thread that made it),
/// grabs it when it changes and keeps the latest changed frame for the consumer. When the consumer
/// is slower than the screen, older frames are replaced (latest wins) and their changed regions
/// merged into the newer one's. Stopped and joined on drop.
pub struct CaptureThread {
    slot: Arc<(Mutex<Slot>, Condvar)>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    size: (u32, u32),
}

impl CaptureThread {
    /// Starts a thread that opens a source with `open` and grabs it at most `fps` times a second:
    /// when the source signals a change (and once a second regardless, in case it missed one),
    /// or `fps` times a second if it cannot signal. Returns once the source is open, with its
    /// error if it could not be.
    pub fn spawn<C, F>(open: F, fps: u32) -> Result<CaptureThread>
    where
        C: Capture,
        F: FnOnce() -> Result<C> + Send + 'static,
    {
        let slot = Arc::new((
            Mutex::new(Slot {
                latest: None,
                spare: Vec::new(),
                ended: None,
            }),
            Condvar::new(),
        ));
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let (opened_tx, opened_rx) = mpsc::channel::<Result<(u32, u32)>>();
        let thread_slot = slot.clone();
        let period = Duration::from_secs_f64(1.0 / fps.max(1) as f64);
        let thread = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let source = match open() {
                    Ok(source) => {
                        let _ = opened_tx.send(Ok(source.size()));
                        source
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                run(source, period, &thread_slot, &stop_rx);
            })
            .map_err(|e| Error::Capture(format!("cannot start the capture thread: {e}")))?;
        let size = match opened_rx.recv() {
            Ok(Ok(size)) => size,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(Error::CaptureStopped);
            }
        };
        Ok(CaptureThread {
            slot,
            stop: Some(stop_tx),
            thread: Some(thread),
            size,
        })
    }

    /// The screen size when the source was opened.
    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits up to `timeout` for a changed frame. `Ok(None)` means the screen did not change in
    /// that time; [`Error::CaptureStopped`] (or the source's error) that no frame will come.
    pub fn next_frame(&self, timeout: Duration) -> Result<Option<Frame>> {
        let deadline = Instant::now() + timeout;
        let mut slot = self.lock();
        loop {
            if let Some(frame) = slot.latest.take() {
                return Ok(Some(frame));
            }
            if let Some(reason) = &slot.ended {
                return Err(if reason.is_empty() {
                    Error::CaptureStopped
                } else {
                    Error::Capture(reason.clone())
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            slot = self
                .slot
                .1
                .wait_timeout(slot, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Gives a frame's buffer back for reuse, so steady capture allocates nothing.
    pub fn recycle(&self, frame: Frame) {
        let mut slot = self.lock();
        if slot.spare.len() < SPARE_FRAMES {
            slot.spare.push(frame);
        }
    }
}

/// How long a source may say "unchanged" before the thread grabs anyway: a safety net for a
/// source that misses a change (a lost X event), cheap at once a second.
const RECHECK_INTERVAL: Duration = Duration::from_secs(1);

/// When the capture thread grabs, as plain logic over the times it is given.
///
/// Between grabs the thread waits for the source to signal a change, up to the next poll tick
/// (`period` apart): a source that cannot signal is thus polled at `period`, and a stop request
/// is seen within one. A signalled change is grabbed at once after a quiet spell, and at most
/// once per `period` while the screen keeps changing (the rate limit). Without a signal the
/// thread grabs only `recheck` after the last grab.
#[derive(Debug)]
struct Pacing {
    period: Duration,
    recheck: Duration,
    next_tick: Instant,
    last_grab: Option<Instant>,
}

impl Pacing {
    fn new(period: Duration, recheck: Duration, now: Instant) -> Pacing {
        Pacing {
            period,
            recheck,
            next_tick: now,
            last_grab: None,
        }
    }

    /// How long to wait for a change before the next tick.
    fn wait_timeout(&self, now: Instant) -> Duration {
        self.next_tick.saturating_duration_since(now)
    }

    /// Called after waiting, with whether the source signalled a change: when to grab (now or at
    /// the end of the rate limit), or `None` for not yet.
    fn grab_at(&mut self, changed: bool, now: Instant) -> Option<Instant> {
        if now >= self.next_tick {
            self.next_tick += self.period;
            if self.next_tick < now {
                // Fell behind (slow grab): skip the missed ticks rather than burst.
                self.next_tick = now;
            }
        }
        match self.last_grab {
            None => Some(now),
            Some(last) if changed => Some((last + self.period).max(now)),
            Some(last) if now >= last + self.recheck => Some(now),
            Some(_) => None,
        }
    }

    /// Records that a grab started at `at`.
    fn grabbed(&mut self, at: Instant) {
        self.last_grab = Some(at);
    }
}

fn run<C: Capture>(
    mut source: C,
    period: Duration,
    slot: &(Mutex<Slot>, Condvar),
    stop: &mpsc::Receiver<()>,
) {
    let lock = || slot.0.lock().unwrap_or_else(|e| e.into_inner());
    let mut pacing = Pacing::new(period, RECHECK_INTERVAL, Instant::now());
    let ended = loop {
        let changed = match source.wait_for_change(pacing.wait_timeout(Instant::now())) {
            Ok(changed) => changed,
            Err(e) => break Some(e),
        };
        match stop.try_recv() {
            Err(TryRecvError::Empty) => {}
            Ok(()) | Err(TryRecvError::Disconnected) => break None,
        }
        let Some(at) = pacing.grab_at(changed, Instant::now()) else {
            continue;
        };
        let now = Instant::now();
        if at > now {
            match stop.recv_timeout(at - now) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => break None,
            }
        }
        pacing.grabbed(Instant::now());
        let mut frame = lock().spare.pop().unwrap_or_else(|| Frame::new(0, 0));
        match source.grab(&mut frame) {
            Ok(true) => {
                let mut guard = lock();
                if let Some(older) = guard.latest.take() {
                    frame.changed = match (older.changed, frame.changed) {
                        (Some(a), Some(b)) => Some(a.union(b)),
                        _ => None,
                    };
                    if guard.spare.len() < SPARE_FRAMES {
                        guard.spare.push(older);
                    }
                }
                guard.latest = Some(frame);
                slot.1.notify_all();
            }
            Ok(false) => {
                let mut guard = lock();
                if guard.spare.len() < SPARE_FRAMES {
                    guard.spare.push(frame);
                }
            }
            Err(e) => break Some(e),
        }
    };
    lock().ended = Some(ended.map_or_else(String::new, |e| e.to_string()));
    slot.1.notify_all();
}

impl Drop for CaptureThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::synthetic::SyntheticDesktop;
    use super::*;

    #[test]
    fn changed_region_bounds_exactly_the_differing_pixels() {
        let (w, h) = (64, 32);
        let a = vec![0u8; w * h * 4];
        let mut b = a.clone();
        assert_eq!(changed_region(&a, &b, w as u32, h as u32, w * 4), None);
        for (x, y) in [(10, 5), (20, 9)] {
            b[(y * w + x) * 4 + 1] = 9;
        }
        let r = changed_region(&a, &b, w as u32, h as u32, w * 4).unwrap();
        assert_eq!(
            r,
            Rect {
                x: 10,
                y: 5,
                width: 11,
                height: 5
            }
        );
    }

    #[test]
    fn the_thread_hands_on_changed_frames_only() {
        let desktop = SyntheticDesktop::new(320, 180);
        let source = desktop.clone();
        let capture = CaptureThread::spawn(move || Ok(source), 200).unwrap();
        assert_eq!(capture.size(), (320, 180));
        let first = capture
            .next_frame(Duration::from_secs(10))
            .unwrap()
            .expect("first frame");
        assert_eq!(first.number, 1);
        capture.recycle(first);
        // Nothing changes: a short wait gives nothing (no assertion on how long it took).
        assert!(capture
            .next_frame(Duration::from_millis(50))
            .unwrap()
            .is_none());
        desktop.text("x");
        let second = capture
            .next_frame(Duration::from_secs(10))
            .unwrap()
            .expect("changed frame");
        assert_eq!(second.number, 2);
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_source_that_cannot_signal_is_polled_once_per_period() {
        let t0 = Instant::now();
        let mut pacing = Pacing::new(ms(10), ms(1000), t0);
        let mut now = t0;
        for tick in 0..5 {
            // The default wait sleeps the whole timeout and says "maybe changed".
            now += pacing.wait_timeout(now);
            assert_eq!(now, t0 + ms(10 * tick));
            assert_eq!(pacing.grab_at(true, now), Some(now));
            pacing.grabbed(now);
            now += ms(2); // the grab
        }
    }

    #[test]
    fn a_still_screen_is_grabbed_only_by_the_recheck() {
        let t0 = Instant::now();
        let mut pacing = Pacing::new(ms(10), ms(1000), t0);
        assert_eq!(pacing.grab_at(false, t0), Some(t0), "the first grab");
        pacing.grabbed(t0);
        let mut now = t0;
        let mut grabs = Vec::new();
        while now < t0 + ms(2500) {
            now += pacing.wait_timeout(now).max(ms(1));
            if let Some(at) = pacing.grab_at(false, now) {
                pacing.grabbed(at);
                grabs.push(at - t0);
            }
        }
        assert_eq!(grabs, [ms(1000), ms(2000)]);
    }

    #[test]
    fn a_change_after_a_quiet_spell_is_grabbed_at_once_and_a_busy_screen_at_the_rate() {
        let t0 = Instant::now();
        let mut pacing = Pacing::new(ms(10), ms(1000), t0);
        pacing.grab_at(false, t0);
        pacing.grabbed(t0);
        // Quiet ticks, then a change signalled between two ticks.
        let mut now = t0;
        while now < t0 + ms(500) {
            now += pacing.wait_timeout(now);
            assert_eq!(pacing.grab_at(false, now), None);
        }
        let change = now + ms(3);
        assert_eq!(pacing.grab_at(true, change), Some(change));
        pacing.grabbed(change);
        // The screen keeps changing: one grab per period.
        assert_eq!(pacing.grab_at(true, change + ms(1)), Some(change + ms(10)));
        pacing.grabbed(change + ms(10));
        assert_eq!(pacing.grab_at(true, change + ms(14)), Some(change + ms(20)));
    }

    #[test]
    fn a_source_that_cannot_open_reports_its_error() {
        let result = CaptureThread::spawn(
            || -> Result<SyntheticDesktop> { Err(Error::Capture("no screen".into())) },
            30,
        );
        assert!(matches!(result, Err(Error::Capture(_))));
    }
}
