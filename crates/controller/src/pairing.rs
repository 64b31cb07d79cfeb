//! The controller's side of pairing, sans-IO: from `connect` to the puppet's offer.
//!
//! [`Pairing`] is fed signaling messages ([`Pairing::handle_signal`]), the loss of the signaling
//! connection ([`Pairing::handle_signal_closed`]) and time ([`Pairing::handle_timeout`]), and
//! says what to do through [`Pairing::poll_output`]: a message to send, the end of pairing with
//! everything the peer connection needs ([`Paired`]), or why it failed. It knows nothing of
//! sockets or runtimes, so every rule is tested on a virtual clock.
//!
//! Rules it keeps:
//! - the puppet's user has `accept_timeout` to answer; no answer by then is [`ConnectError::NoAnswer`];
//! - after `accepted`, the puppet has `offer_timeout` to send its offer;
//! - candidates for our session that arrive before the offer are kept, in order, for after it;
//! - messages for other sessions, and messages that mean nothing here, are ignored;
//! - with the secret digits, `connect` carries SPAKE2's first message; the puppet's reply must
//!   prove it holds the same code before anything else counts, and `accepted` without that
//!   proof ends pairing ([`ConnectError::VerificationSkipped`]): a session that cannot be
//!   verified is never silently taken as one that was;
//! - pairing ends once: after [`PairingOutput::Paired`] or [`PairingOutput::Failed`] nothing more
//!   comes out, whatever goes in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rtcdesk_pake::{ControllerStart, Credential, PakeMessage, SessionKey};
use rtcdesk_proto::signal::{
    Connect, ControlCode, ErrorCode, IceServer, Leave, Pake, SessionId, SignalMessage,
};

use crate::ConnectError;

/// Most candidates kept from before the offer; a puppet sending more is not following the
/// protocol, and the rest are dropped (ICE still works with the ones kept, or prflx).
const MAX_EARLY_CANDIDATES: usize = 64;

/// What pairing produced: everything the peer connection needs to answer the puppet.
#[derive(Debug, Clone, PartialEq)]
pub struct Paired {
    /// The session the signaling server opened.
    pub session: SessionId,
    /// The name the puppet registered with (from `ringing`), if the server sent it.
    pub puppet_name: Option<String>,
    /// The ICE servers the signaling server handed out with `accepted`.
    pub ice_servers: Vec<IceServer>,
    /// The puppet's SDP offer.
    pub offer_sdp: String,
    /// Candidates that came before the offer, in the order they came.
    pub early_candidates: Vec<String>,
    /// The key both sides confirmed, for a verified session: the DTLS fingerprints are still
    /// to be checked with it once connected.
    pub key: Option<SessionKey>,
}

/// What the shell must do next.
#[derive(Debug)]
pub enum PairingOutput {
    /// Send this on the signaling connection.
    Send(SignalMessage),
    /// Pairing is done: answer the offer.
    Paired(Paired),
    /// Pairing failed; the error says why (and maps to an exit code).
    Failed(ConnectError),
}

#[derive(Debug)]
enum Stage {
    /// `connect` sent; waiting for `ringing`, then the user's answer.
    Asking { deadline: Instant },
    /// Accepted; waiting for the offer.
    Accepted {
        session: SessionId,
        ice_servers: Vec<IceServer>,
        deadline: Instant,
    },
    /// Paired or failed: nothing more happens.
    Over,
}

/// One pairing attempt with the puppet whose code the user typed.
#[derive(Debug)]
pub struct Pairing {
    code: ControlCode,
    accept_timeout: Duration,
    offer_timeout: Duration,
    stage: Stage,
    puppet_name: Option<String>,
    early_candidates: Vec<String>,
    outputs: VecDeque<PairingOutput>,
    /// The session `ringing` named.
    session: Option<SessionId>,
    /// Verified pairing: SPAKE2 started, waiting for the puppet's reply.
    pake: Option<ControllerStart>,
    /// Whether this side asked for verification (the secret digits were given).
    verifying: bool,
    /// The confirmed key, once the puppet's reply checked out.
    key: Option<SessionKey>,
}

impl Pairing {
    /// Starts pairing at `now`: the first output is the `connect` message naming us.
    /// With `secret`, the session is verified end to end or not made at all.
    pub fn new(
        code: ControlCode,
        secret: Option<&Credential>,
        name: String,
        accept_timeout: Duration,
        offer_timeout: Duration,
        now: Instant,
    ) -> Pairing {
        let mut outputs = VecDeque::new();
        let (pake, start) = match secret {
            Some(secret) => {
                let (pake, start) = ControllerStart::with(code, secret);
                (Some(pake), Some(start.encode()))
            }
            None => (None, None),
        };
        outputs.push_back(PairingOutput::Send(SignalMessage::Connect(Connect {
            code,
            name,
            pake: start,
        })));
        Pairing {
            code,
            accept_timeout,
            offer_timeout,
            stage: Stage::Asking {
                deadline: now + accept_timeout,
            },
            puppet_name: None,
            early_candidates: Vec::new(),
            outputs,
            session: None,
            verifying: pake.is_some(),
            pake,
            key: None,
        }
    }

    /// A message arrived from the signaling server.
    pub fn handle_signal(&mut self, message: SignalMessage, now: Instant) {
        match std::mem::replace(&mut self.stage, Stage::Over) {
            Stage::Asking { deadline } => self.while_asking(message, deadline, now),
            Stage::Accepted {
                session,
                ice_servers,
                deadline,
            } => self.while_accepted(message, session, ice_servers, deadline),
            Stage::Over => {}
        }
    }

    fn while_asking(&mut self, message: SignalMessage, deadline: Instant, now: Instant) {
        match message {
            SignalMessage::Ringing(ringing) => {
                tracing::info!("ringing: waiting for the puppet's user to accept");
                self.puppet_name = ringing.name;
                self.session = Some(ringing.session);
                self.stage = Stage::Asking { deadline };
            }
            SignalMessage::Pake(pake)
                if self.pake.is_some() && self.session.as_ref() == Some(&pake.session) =>
            {
                self.puppet_replied(pake, deadline);
            }
            SignalMessage::Accepted(accepted) if self.verifying && self.key.is_none() => {
                tracing::warn!("accepted without a verified reply");
                self.leave(accepted.session);
                self.fail(ConnectError::VerificationSkipped);
            }
            SignalMessage::Accepted(accepted) => {
                self.stage = Stage::Accepted {
                    session: accepted.session,
                    ice_servers: accepted.ice_servers,
                    deadline: now + self.offer_timeout,
                };
            }
            SignalMessage::Rejected(rejected) => self.fail(ConnectError::Rejected {
                reason: rejected.reason,
            }),
            SignalMessage::Error(error) if error.code == ErrorCode::UnknownCode => {
                self.fail(ConnectError::UnknownCode(self.code))
            }
            SignalMessage::Error(error) => self.fail(ConnectError::Refused {
                code: error.code,
                message: error.message,
            }),
            SignalMessage::Left(_) => self.fail(ConnectError::ConnectionFailed(
                "the puppet went away before answering".into(),
            )),
            _ => self.stage = Stage::Asking { deadline },
        }
    }

    fn while_accepted(
        &mut self,
        message: SignalMessage,
        session: SessionId,
        ice_servers: Vec<IceServer>,
        deadline: Instant,
    ) {
        match message {
            SignalMessage::Offer(offer) if offer.session == session => {
                self.outputs.push_back(PairingOutput::Paired(Paired {
                    session,
                    puppet_name: self.puppet_name.take(),
                    ice_servers,
                    offer_sdp: offer.sdp,
                    early_candidates: std::mem::take(&mut self.early_candidates),
                    key: self.key.take(),
                }));
            }
            SignalMessage::Left(left) if left.session == session => {
                self.fail(ConnectError::ConnectionFailed(
                    "the puppet left before sending its offer".into(),
                ));
            }
            other => {
                if let SignalMessage::Candidate(candidate) = other {
                    if candidate.session == session
                        && self.early_candidates.len() < MAX_EARLY_CANDIDATES
                    {
                        self.early_candidates.push(candidate.candidate);
                    }
                }
                self.stage = Stage::Accepted {
                    session,
                    ice_servers,
                    deadline,
                };
            }
        }
    }

    /// The puppet's `reply`: it must prove it holds the same code; ours goes back.
    fn puppet_replied(&mut self, pake: Pake, deadline: Instant) {
        let Some(start) = self.pake.take() else {
            return;
        };
        let result = PakeMessage::decode(&pake.data)
            .map_err(rtcdesk_pake::PakeError::from)
            .and_then(|reply| start.finish(pake.session.as_str(), &reply));
        match result {
            Ok((key, confirm)) => {
                tracing::info!("the puppet holds the same code: waiting for its user");
                self.key = Some(key);
                self.outputs.push_back(PairingOutput::Send(
                    Pake {
                        session: pake.session,
                        data: confirm.encode(),
                    }
                    .into(),
                ));
                self.stage = Stage::Asking { deadline };
            }
            Err(error) => {
                tracing::warn!(%error, "the puppet failed verification");
                self.leave(pake.session);
                self.fail(ConnectError::NotVerified(error));
            }
        }
    }

    fn leave(&mut self, session: SessionId) {
        self.outputs
            .push_back(PairingOutput::Send(Leave { session }.into()));
    }

    /// The signaling connection closed (or broke) before pairing ended.
    pub fn handle_signal_closed(&mut self) {
        if !matches!(self.stage, Stage::Over) {
            self.fail(ConnectError::SignalClosed);
        }
    }

    /// Time passed; call at [`Pairing::poll_timeout`] (earlier calls are harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.stage {
            Stage::Asking { deadline } if now >= deadline => {
                self.fail(ConnectError::NoAnswer(self.accept_timeout))
            }
            Stage::Accepted { deadline, .. } if now >= deadline => self.fail(
                ConnectError::ConnectionFailed("the puppet sent no offer".into()),
            ),
            _ => {}
        }
    }

    /// When [`Pairing::handle_timeout`] must be called next; `None` once pairing is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.stage {
            Stage::Asking { deadline } | Stage::Accepted { deadline, .. } => Some(deadline),
            Stage::Over => None,
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<PairingOutput> {
        self.outputs.pop_front()
    }

    fn fail(&mut self, error: ConnectError) {
        self.stage = Stage::Over;
        self.outputs.push_back(PairingOutput::Failed(error));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_proto::signal::{
        Accepted, Candidate, Error, Left, Offer, Registered, Rejected, Ringing,
    };

    const ACCEPT: Duration = Duration::from_secs(120);
    const OFFER: Duration = Duration::from_secs(15);

    fn code() -> ControlCode {
        "123456789".parse().expect("a valid code")
    }

    fn session(id: &str) -> SessionId {
        SessionId(id.into())
    }

    /// Given a pairing just started at `t0`, with its `connect` already taken.
    fn started() -> (Pairing, Instant) {
        let t0 = Instant::now();
        let mut pairing = Pairing::new(code(), None, "helpdesk".into(), ACCEPT, OFFER, t0);
        match pairing.poll_output() {
            Some(PairingOutput::Send(SignalMessage::Connect(connect))) => {
                assert_eq!(connect.code, code());
                assert_eq!(connect.name, "helpdesk");
            }
            other => panic!("the first output is not connect: {other:?}"),
        }
        assert!(pairing.poll_output().is_none());
        (pairing, t0)
    }

    fn offer(id: &str) -> SignalMessage {
        SignalMessage::Offer(Offer {
            session: session(id),
            sdp: format!("v=0 offer for {id}"),
        })
    }

    fn candidate(id: &str, line: &str) -> SignalMessage {
        SignalMessage::Candidate(Candidate {
            session: session(id),
            candidate: line.into(),
            mid: None,
        })
    }

    fn failure(pairing: &mut Pairing) -> ConnectError {
        match pairing.poll_output() {
            Some(PairingOutput::Failed(error)) => error,
            other => panic!("no failure: {other:?}"),
        }
    }

    fn assert_over(pairing: &mut Pairing, t: Instant) {
        pairing.handle_signal(offer("s1"), t);
        pairing.handle_signal_closed();
        pairing.handle_timeout(t + ACCEPT * 10);
        assert!(pairing.poll_output().is_none());
        assert_eq!(pairing.poll_timeout(), None);
    }

    #[test]
    fn ringing_then_accepted_then_candidates_then_offer_pairs_with_everything_kept() {
        let (mut pairing, t0) = started();
        let t = t0 + Duration::from_secs(5);
        pairing.handle_signal(
            SignalMessage::Ringing(Ringing {
                session: session("s1"),
                name: Some("front desk".into()),
            }),
            t,
        );
        let mut accepted = Accepted::new(session("s1"));
        accepted.ice_servers = vec![IceServer {
            urls: vec!["stun:203.0.113.1:3478".into()],
            username: None,
            credential: None,
        }];
        pairing.handle_signal(SignalMessage::Accepted(accepted), t);
        assert_eq!(pairing.poll_timeout(), Some(t + OFFER));
        // Candidates may overtake the offer; another session's are not ours.
        pairing.handle_signal(candidate("s1", "candidate:1 typ host"), t);
        pairing.handle_signal(candidate("other", "candidate:9 typ host"), t);
        pairing.handle_signal(candidate("s1", "candidate:2 typ srflx"), t);
        pairing.handle_signal(offer("other"), t);
        assert!(pairing.poll_output().is_none());
        pairing.handle_signal(offer("s1"), t);
        match pairing.poll_output() {
            Some(PairingOutput::Paired(paired)) => {
                assert_eq!(paired.session, session("s1"));
                assert_eq!(paired.puppet_name.as_deref(), Some("front desk"));
                assert_eq!(paired.offer_sdp, "v=0 offer for s1");
                assert_eq!(paired.ice_servers.len(), 1);
                assert_eq!(
                    paired.early_candidates,
                    vec!["candidate:1 typ host", "candidate:2 typ srflx"]
                );
            }
            other => panic!("not paired: {other:?}"),
        }
        assert_over(&mut pairing, t);
    }

    #[test]
    fn no_answer_by_the_accept_deadline_is_no_answer_not_a_hang() {
        let (mut pairing, t0) = started();
        assert_eq!(pairing.poll_timeout(), Some(t0 + ACCEPT));
        pairing.handle_timeout(t0 + ACCEPT - Duration::from_millis(1));
        assert!(pairing.poll_output().is_none());
        pairing.handle_timeout(t0 + ACCEPT);
        let error = failure(&mut pairing);
        assert!(
            matches!(error, ConnectError::NoAnswer(d) if d == ACCEPT),
            "{error}"
        );
        assert_eq!(error.exit_code(), crate::EXIT_REJECTED);
        assert_over(&mut pairing, t0);
    }

    #[test]
    fn an_accepted_session_without_an_offer_fails_at_the_offer_deadline() {
        let (mut pairing, t0) = started();
        // Accepted late: the offer's deadline (t + 15 s) falls after the accept deadline's.
        let t = t0 + Duration::from_secs(110);
        pairing.handle_signal(SignalMessage::Accepted(Accepted::new(session("s1"))), t);
        // The accept deadline no longer applies once accepted.
        pairing.handle_timeout(t0 + ACCEPT);
        assert!(pairing.poll_output().is_none());
        pairing.handle_timeout(t + OFFER);
        let error = failure(&mut pairing);
        assert!(error.to_string().contains("sent no offer"), "{error}");
        assert_eq!(error.exit_code(), crate::EXIT_CONNECTION_LOST);
    }

    #[test]
    fn refusals_are_told_apart_and_map_to_their_exit_codes() {
        let cases: Vec<(SignalMessage, i32, &str)> = vec![
            (
                SignalMessage::Rejected(Rejected {
                    session: session("s1"),
                    reason: Some("busy".into()),
                }),
                crate::EXIT_REJECTED,
                "refused the connection: busy",
            ),
            (
                SignalMessage::Error(Error {
                    code: ErrorCode::UnknownCode,
                    message: "no".into(),
                }),
                crate::EXIT_UNKNOWN_CODE,
                "no puppet has the code",
            ),
            (
                SignalMessage::Error(Error {
                    code: ErrorCode::RateLimited,
                    message: "slow down".into(),
                }),
                crate::EXIT_OTHER,
                "slow down",
            ),
            (
                SignalMessage::Left(Left {
                    session: session("s1"),
                }),
                crate::EXIT_CONNECTION_LOST,
                "went away before answering",
            ),
        ];
        for (message, exit, text) in cases {
            let (mut pairing, t0) = started();
            pairing.handle_signal(message, t0);
            let error = failure(&mut pairing);
            assert_eq!(error.exit_code(), exit, "{error}");
            assert!(error.to_string().contains(text), "{error}");
            assert_over(&mut pairing, t0);
        }
    }

    #[test]
    fn the_puppet_leaving_before_its_offer_or_the_server_going_away_ends_pairing() {
        let (mut pairing, t0) = started();
        pairing.handle_signal(SignalMessage::Accepted(Accepted::new(session("s1"))), t0);
        pairing.handle_signal(
            SignalMessage::Left(Left {
                session: session("other"),
            }),
            t0,
        );
        assert!(pairing.poll_output().is_none());
        pairing.handle_signal(
            SignalMessage::Left(Left {
                session: session("s1"),
            }),
            t0,
        );
        assert!(failure(&mut pairing)
            .to_string()
            .contains("left before sending its offer"));

        let (mut pairing, t0) = started();
        pairing.handle_signal_closed();
        assert!(matches!(failure(&mut pairing), ConnectError::SignalClosed));
        assert_over(&mut pairing, t0);
    }

    #[test]
    fn messages_that_mean_nothing_here_are_ignored_and_a_flood_of_candidates_is_capped() {
        let (mut pairing, t0) = started();
        pairing.handle_signal(
            SignalMessage::Registered(Registered {
                code: code(),
                expires_in: 600,
                ice_servers: Vec::new(),
                device: false,
            }),
            t0,
        );
        pairing.handle_signal(candidate("s1", "too early: not accepted yet"), t0);
        pairing.handle_signal(offer("s1"), t0);
        assert!(pairing.poll_output().is_none());
        pairing.handle_signal(SignalMessage::Accepted(Accepted::new(session("s1"))), t0);
        for n in 0..1000 {
            pairing.handle_signal(candidate("s1", &format!("candidate:{n} typ host")), t0);
        }
        pairing.handle_signal(offer("s1"), t0);
        match pairing.poll_output() {
            Some(PairingOutput::Paired(paired)) => {
                assert_eq!(paired.early_candidates.len(), MAX_EARLY_CANDIDATES);
                assert_eq!(paired.early_candidates[0], "candidate:0 typ host");
            }
            other => panic!("not paired: {other:?}"),
        }
    }
}
