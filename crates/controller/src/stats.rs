//! How session figures are shown: the window title and the headless summary.

use std::time::Duration;

use crate::SessionStats;

/// The window title: `rtcdesk — <puppet> — 60 fps · RTT 2 ms · 1.2 Mbit/s · 18 ms`.
///
/// The last figure is the glass-to-glass latency when the picture carries a frame stamp
/// (synthetic desktop), otherwise the decode time (`decode 2 ms`). `note` is appended in
/// brackets (e.g. that the keyboard is released).
pub fn window_title(puppet: &str, stats: Option<&SessionStats>, note: Option<&str>) -> String {
    let mut title = format!("rtcdesk — {puppet}");
    if let Some(stats) = stats {
        title.push_str(" — ");
        title.push_str(&figures(stats));
    }
    if let Some(note) = note {
        title.push_str(" [");
        title.push_str(note);
        title.push(']');
    }
    title
}

/// The figures alone: `60 fps · RTT 2 ms · 1.2 Mbit/s · 18 ms`.
pub fn figures(stats: &SessionStats) -> String {
    let mut parts = vec![format!("{:.0} fps", stats.fps)];
    if let Some(rtt) = stats.rtt {
        parts.push(format!("RTT {}", millis(rtt)));
    }
    parts.push(bitrate(stats.receive_bitrate_bps));
    if let Some(latency) = stats.stamp_latency {
        parts.push(millis(latency));
    } else if let Some(decode) = stats.decode_time {
        parts.push(format!("decode {}", millis(decode)));
    }
    parts.join(" · ")
}

/// `1.2 Mbit/s`, `350 kbit/s`.
pub fn bitrate(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{:.1} Mbit/s", bps as f64 / 1e6)
    } else {
        format!("{} kbit/s", bps / 1000)
    }
}

/// Whole milliseconds, or one decimal below 10 ms.
pub fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_names_the_puppet_and_shows_the_figures() {
        let stats = SessionStats {
            fps: 59.7,
            rtt: Some(Duration::from_millis(2)),
            receive_bitrate_bps: 1_234_000,
            stamp_latency: Some(Duration::from_millis(18)),
            ..SessionStats::default()
        };
        assert_eq!(
            window_title("front desk", Some(&stats), None),
            "rtcdesk — front desk — 60 fps · RTT 2.0 ms · 1.2 Mbit/s · 18 ms"
        );
        assert_eq!(
            window_title("front desk", None, Some("keyboard released")),
            "rtcdesk — front desk [keyboard released]"
        );
    }

    #[test]
    fn without_a_stamp_the_decode_time_is_shown() {
        let stats = SessionStats {
            fps: 30.0,
            receive_bitrate_bps: 350_000,
            decode_time: Some(Duration::from_micros(1500)),
            ..SessionStats::default()
        };
        assert_eq!(figures(&stats), "30 fps · 350 kbit/s · decode 1.5 ms");
    }
}
