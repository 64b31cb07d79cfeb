//! The puppet's accept/reject dialog: names the controller asking, says whether it proved it
//! holds the whole code, and counts down; when the count reaches zero the request is
//! rejected, so a puppet left alone never lets anyone in.

use std::time::{Duration, Instant};

use egui::{RichText, Ui};

/// The person's answer (or the countdown's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentAnswer {
    /// Let the controller in, with control.
    Accept,
    /// Let it in to watch only: no input, clipboard or files.
    ViewOnly,
    /// Refuse (also when the countdown ran out).
    Reject,
}

/// One pending request.
#[derive(Debug, Clone)]
pub struct ConsentDialog {
    /// The session asking.
    pub session: String,
    /// The name the controller gave.
    pub from: String,
    /// Whether it proved it holds the whole code (verified end to end); a browser, or someone
    /// given only the first nine digits, did not, and the dialog says so.
    pub verified: bool,
    /// When the request is rejected unanswered.
    pub deadline: Instant,
}

impl ConsentDialog {
    /// A request from `from` for `session`, rejected after `timeout` from `now`.
    pub fn new(
        session: String,
        from: String,
        verified: bool,
        now: Instant,
        timeout: Duration,
    ) -> Self {
        Self {
            session,
            from,
            verified,
            deadline: now + timeout,
        }
    }

    /// Whole seconds left at `now` (rounded up, so it reads 30, 29, … 1).
    pub fn seconds_left(&self, now: Instant) -> u64 {
        let left = self.deadline.saturating_duration_since(now);
        left.as_millis().div_ceil(1000) as u64
    }

    /// Draws the dialog at `now`; returns the answer once there is one (the countdown's
    /// `Reject` included).
    pub fn show(&self, ui: &mut Ui, now: Instant) -> Option<ConsentAnswer> {
        let left = self.seconds_left(now);
        if left == 0 {
            return Some(ConsentAnswer::Reject);
        }
        let mut answer = None;
        ui.heading("Someone wants to control this computer");
        let from = if self.from.trim().is_empty() {
            "a controller without a name"
        } else {
            self.from.as_str()
        };
        ui.label(RichText::new(format!("{from} asks to connect.")).size(18.0));
        if self.verified {
            ui.label("They hold your whole code (verified end to end).");
        } else {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "NOT verified end to end: a browser, or someone with only the first 9 digits. \
                 Accept only if you expect them.",
            );
        }
        ui.label(format!("Rejected automatically in {left} s."));
        ui.horizontal(|ui| {
            if ui.button("Accept").clicked() {
                answer = Some(ConsentAnswer::Accept);
            }
            if ui.button("Watch only").clicked() {
                answer = Some(ConsentAnswer::ViewOnly);
            }
            if ui.button("Reject").clicked() {
                answer = Some(ConsentAnswer::Reject);
            }
        });
        // Keep the countdown ticking without input.
        ui.ctx().request_repaint_after(Duration::from_millis(250));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_countdown_rounds_up_and_ends_at_zero() {
        let t0 = Instant::now();
        let dialog =
            ConsentDialog::new("s".into(), "ana".into(), true, t0, Duration::from_secs(30));
        assert_eq!(dialog.seconds_left(t0), 30);
        assert_eq!(dialog.seconds_left(t0 + Duration::from_millis(29_001)), 1);
        assert_eq!(dialog.seconds_left(t0 + Duration::from_secs(31)), 0);
    }
}
