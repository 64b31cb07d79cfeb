//! Why a connection attempt failed, in one line a user can act on.
//!
//! While ICE runs, the session records which candidate kinds each side offered and every TURN
//! server that gave no relay; when no candidate pair succeeds in time, [`IceReport::failure_line`]
//! turns that into a sentence: what was tried, what broke, and the likely fix. Pure: fed by the
//! session task, tested without a network.

use std::fmt::Write as _;
use std::time::Duration;

use rtcdesk_peer::{candidate_kind, CandidateKind};

/// At most this many TURN failures are named in the line; more are counted.
const MAX_NAMED_RELAY_FAILURES: usize = 3;

/// What the controller saw of ICE before it gave up.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IceReport {
    local: KindSet,
    remote: KindSet,
    remote_candidates: usize,
    relay_failures: Vec<String>,
}

impl IceReport {
    /// A local candidate line was announced (`candidate:… typ KIND …`).
    pub fn local_candidate(&mut self, line: &str) {
        if let Some(kind) = candidate_kind(line) {
            self.local.insert(kind);
        }
    }

    /// The puppet signaled a candidate line (the empty end-of-candidates marker is ignored).
    pub fn remote_candidate(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        self.remote_candidates += 1;
        if let Some(kind) = candidate_kind(line) {
            self.remote.insert(kind);
        }
    }

    /// A TURN server gave no relayed candidate; `reason` names the server.
    pub fn relay_failed(&mut self, reason: String) {
        if !self.relay_failures.contains(&reason) {
            self.relay_failures.push(reason);
        }
    }

    /// The one-line reason for a connection that did not come up within `waited`.
    pub fn failure_line(&self, waited: Duration) -> String {
        let mut line = format!(
            "no candidate pair succeeded within {} s; tried local {}, remote {}",
            waited.as_secs(),
            self.local,
            if self.remote_candidates == 0 {
                "none (the puppet signaled no candidates)".to_owned()
            } else {
                self.remote.to_string()
            }
        );
        for reason in self.relay_failures.iter().take(MAX_NAMED_RELAY_FAILURES) {
            let _ = write!(line, "; {reason}");
        }
        if self.relay_failures.len() > MAX_NAMED_RELAY_FAILURES {
            let _ = write!(
                line,
                "; {} more TURN servers failed",
                self.relay_failures.len() - MAX_NAMED_RELAY_FAILURES
            );
        }
        let relay_anywhere = self.local.contains(CandidateKind::Relayed)
            || self.remote.contains(CandidateKind::Relayed);
        if !relay_anywhere && self.relay_failures.is_empty() {
            line.push_str(
                "; no TURN relay on either side: behind strict NATs or firewalls give the \
                 signaling server --turn URL --turn-secret SECRET (or the controller --turn)",
            );
        } else if !relay_anywhere {
            line.push_str("; no relay candidate on either side");
        }
        line
    }
}

/// Which candidate kinds were seen, printed as `host+srflx` in a fixed order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct KindSet(u8);

const KINDS: [(CandidateKind, &str); 4] = [
    (CandidateKind::Host, "host"),
    (CandidateKind::ServerReflexive, "srflx"),
    (CandidateKind::PeerReflexive, "prflx"),
    (CandidateKind::Relayed, "relay"),
];

impl KindSet {
    fn bit(kind: CandidateKind) -> u8 {
        KINDS
            .iter()
            .position(|(k, _)| *k == kind)
            .map_or(0, |i| 1 << i)
    }

    fn insert(&mut self, kind: CandidateKind) {
        self.0 |= Self::bit(kind);
    }

    fn contains(self, kind: CandidateKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }
}

impl std::fmt::Display for KindSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut first = true;
        for (kind, name) in KINDS {
            if self.contains(kind) {
                if !first {
                    f.write_str("+")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// The short name a user sees for a candidate kind (`host`, `srflx`, `prflx`, `relay`).
pub fn kind_name(kind: CandidateKind) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("unknown", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "candidate:1 1 udp 2130706431 10.0.0.2 50000 typ host";
    const SRFLX: &str =
        "candidate:2 1 udp 1694498815 198.51.100.7 40000 typ srflx raddr 10.0.0.2 rport 50000";
    const RELAY: &str =
        "candidate:3 1 udp 16777215 203.0.113.9 49152 typ relay raddr 0.0.0.0 rport 0";
    const WAIT: Duration = Duration::from_secs(15);

    #[test]
    fn a_failure_names_the_kinds_tried_on_both_sides_and_suggests_turn() {
        let mut report = IceReport::default();
        report.local_candidate(SRFLX);
        report.local_candidate(HOST);
        report.remote_candidate(HOST);
        report.remote_candidate("");
        let line = report.failure_line(WAIT);
        assert!(
            line.starts_with(
                "no candidate pair succeeded within 15 s; tried local host+srflx, remote host"
            ),
            "{line}"
        );
        assert!(line.contains("--turn-secret"), "{line}");
    }

    #[test]
    fn turn_failures_are_named_once_each_and_capped() {
        let mut report = IceReport::default();
        report.local_candidate(HOST);
        report.remote_candidate(RELAY);
        for _ in 0..2 {
            report.relay_failed("TURN server 203.0.113.1:3478 rejected user \"u\"".into());
        }
        let line = report.failure_line(WAIT);
        assert_eq!(line.matches("rejected user").count(), 1, "{line}");
        assert!(line.contains("remote relay"), "{line}");
        assert!(!line.contains("no relay candidate"), "{line}");

        for n in 0..5 {
            report.relay_failed(format!(
                "TURN server 203.0.113.{n}:3478 unreachable over TCP"
            ));
        }
        let line = report.failure_line(WAIT);
        assert_eq!(line.matches("TURN server 203").count(), 3, "{line}");
        assert!(line.contains("3 more TURN servers failed"), "{line}");
    }

    #[test]
    fn a_silent_puppet_and_no_local_candidates_are_said_plainly() {
        let report = IceReport::default();
        let line = report.failure_line(WAIT);
        assert!(line.contains("tried local none"), "{line}");
        assert!(
            line.contains("remote none (the puppet signaled no candidates)"),
            "{line}"
        );
    }

    #[test]
    fn hostile_candidate_lines_are_counted_without_a_kind() {
        let mut report = IceReport::default();
        report.remote_candidate("typ");
        report.remote_candidate("candidate:x typ bogus \u{0}\u{7f}");
        let line = report.failure_line(WAIT);
        assert!(line.contains("remote none;"), "{line}");
        assert!(!line.contains("signaled no candidates"), "{line}");
    }

    #[test]
    fn kind_names_are_the_ones_in_sdp() {
        assert_eq!(kind_name(CandidateKind::Host), "host");
        assert_eq!(kind_name(CandidateKind::ServerReflexive), "srflx");
        assert_eq!(kind_name(CandidateKind::PeerReflexive), "prflx");
        assert_eq!(kind_name(CandidateKind::Relayed), "relay");
    }
}
