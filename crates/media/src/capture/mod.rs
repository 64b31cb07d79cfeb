//! Screen capture: the [`Capture`] trait, its two sources (X11 through scrap, and the synthetic
//! desktop), and [`CaptureThread`], which polls a source at a set rate and hands on only the
//! frames that changed, latest first.

use std::sync::mpsc::{self, RecvTimeoutError};
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
/// grabs at a fixed rate and keeps the latest changed frame for the consumer. When the consumer
/// is slower than the screen, older frames are replaced (latest wins) and their changed regions
/// merged into the newer one's. Stopped and joined on drop.
pub struct CaptureThread {
    slot: Arc<(Mutex<Slot>, Condvar)>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    size: (u32, u32),
}

impl CaptureThread {
    /// Starts a thread that opens a source with `open` and grabs it `fps` times a second. Returns
    /// once the source is open, with its error if it could not be.
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

fn run<C: Capture>(
    mut source: C,
    period: Duration,
    slot: &(Mutex<Slot>, Condvar),
    stop: &mpsc::Receiver<()>,
) {
    let lock = || slot.0.lock().unwrap_or_else(|e| e.into_inner());
    let mut next = Instant::now();
    loop {
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
            Err(e) => {
                lock().ended = Some(e.to_string());
                slot.1.notify_all();
                return;
            }
        }
        next += period;
        let now = Instant::now();
        if next < now {
            // Fell behind (slow grab): skip the missed ticks rather than burst.
            next = now;
        }
        match stop.recv_timeout(next - now) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    lock().ended = Some(String::new());
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

    #[test]
    fn a_source_that_cannot_open_reports_its_error() {
        let result = CaptureThread::spawn(
            || -> Result<SyntheticDesktop> { Err(Error::Capture("no screen".into())) },
            30,
        );
        assert!(matches!(result, Err(Error::Capture(_))));
    }
}
