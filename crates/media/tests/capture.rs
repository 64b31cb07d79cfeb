//! The capture thread over the synthetic desktop: a still desktop is not grabbed, each change
//! is, at once, and a busy one at most at the set rate.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtcdesk_media::{CaptureThread, SyntheticDesktop};

mod common;
use common::{Counting, Counts};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A capture thread over `desktop`, grabbing at most `rate` times a second, that counts its
/// grabs.
fn counted(desktop: &SyntheticDesktop, rate: u32) -> (CaptureThread, Arc<Mutex<Counts>>) {
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (source, thread_counts) = (desktop.clone(), counts.clone());
    let open = move || {
        Ok(Counting {
            source,
            counts: thread_counts,
            signalled: false,
        })
    };
    let capture = CaptureThread::spawn(open, rate).expect("the capture thread starts");
    (capture, counts)
}

#[test]
fn a_still_synthetic_desktop_is_not_grabbed_and_each_change_is() {
    let desktop = SyntheticDesktop::new(320, 180);
    let (capture, counts) = counted(&desktop, 200);
    let first = capture.next_frame(Duration::from_secs(10)).unwrap();
    assert_eq!(first.map(|f| f.number), Some(1));
    let still_from = Instant::now();
    let before = *counts.lock().unwrap();
    assert!(capture.next_frame(ms(300)).unwrap().is_none());
    let during = counts.lock().unwrap().grabs - before.grabs;
    // Polling at 200/s would have grabbed ~60 times; only the once-a-second recheck may.
    let rechecks = still_from.elapsed().as_secs_f64().ceil() as u64;
    assert!(during <= rechecks, "{during} grabs of a still desktop");

    for (i, text) in ["a", "b", "c"].into_iter().enumerate() {
        let before = *counts.lock().unwrap();
        desktop.text(text);
        let frame = capture
            .next_frame(Duration::from_secs(10))
            .unwrap()
            .expect("the change is captured");
        assert_eq!(frame.number, 2 + i as u64);
        let after = *counts.lock().unwrap();
        assert!(
            after.after_signal > before.after_signal,
            "grabbed because the change was signalled, not by a poll"
        );
        capture.recycle(frame);
    }
}

#[test]
fn an_animated_desktop_is_grabbed_at_most_at_the_rate() {
    let desktop = SyntheticDesktop::new(320, 180);
    desktop.set_animation(true);
    let start = Instant::now();
    let (capture, counts) = counted(&desktop, 20);
    for _ in 0..5 {
        let frame = capture.next_frame(Duration::from_secs(10)).unwrap();
        capture.recycle(frame.expect("the animation keeps changing"));
    }
    let grabs = counts.lock().unwrap().grabs;
    let elapsed = start.elapsed();
    // 20 a second over the time taken, plus the first grab and one in flight.
    let allowed = (elapsed.as_secs_f64() * 20.0).ceil() as u64 + 2;
    assert!(grabs <= allowed, "{grabs} grabs in {elapsed:?}");
}
