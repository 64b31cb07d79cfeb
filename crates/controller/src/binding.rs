//! The last step of verified pairing on the controller, sans-IO: binding the confirmed key to
//! the DTLS connection (`crates/pake/PAKE.md` § 5, step 5).
//!
//! [`Binding`] is fed the fingerprints DTLS negotiated ([`Binding::secured`]), the moment the
//! connection is up ([`Binding::connected`], which gives the message to send) and the puppet's
//! `fingerprints` ([`Binding::received`]); [`Binding::outcome`] says when it is settled. Until it
//! is settled as verified, the session task sends the puppet nothing and acts on nothing it
//! sends: that is what keeps a server in the middle from seeing a keystroke.

use std::time::Instant;

use rtcdesk_pake::{Fingerprint, PakeError, PakeMessage, SessionKey, VERIFY_TIMEOUT};
use rtcdesk_proto::signal::{Pake, SessionId, SignalMessage};

/// Where the check stands.
#[derive(Debug)]
pub struct Binding {
    key: SessionKey,
    session: SessionId,
    dtls: Option<(Fingerprint, Fingerprint)>,
    theirs: Option<String>,
    sent: bool,
    deadline: Option<Instant>,
    outcome: Option<Result<(), PakeError>>,
}

impl Binding {
    /// A check for `session` with the key pairing confirmed.
    pub fn new(key: SessionKey, session: SessionId) -> Self {
        Self {
            key,
            session,
            dtls: None,
            theirs: None,
            sent: false,
            deadline: None,
            outcome: None,
        }
    }

    /// DTLS negotiated these certificates: ours, then the puppet's.
    pub fn secured(&mut self, local: Fingerprint, remote: Fingerprint) {
        if self.dtls.is_none() {
            self.dtls = Some((local, remote));
        }
    }

    /// The connection is up: our `fingerprints` to send on signaling (once), and the clock for
    /// the puppet's starts.
    pub fn connected(&mut self, now: Instant) -> Option<SignalMessage> {
        if self.sent || self.outcome.is_some() {
            return None;
        }
        let Some((local, remote)) = &self.dtls else {
            self.outcome = Some(Err(PakeError::Intercepted));
            return None;
        };
        self.sent = true;
        self.deadline = Some(now + VERIFY_TIMEOUT);
        let message = self.key.fingerprints(local, remote);
        self.settle();
        Some(
            Pake {
                session: self.session.clone(),
                data: message.encode(),
            }
            .into(),
        )
    }

    /// The puppet's `fingerprints` (the `data` of its `pake` message).
    pub fn received(&mut self, data: String) {
        if self.outcome.is_none() && self.theirs.is_none() {
            self.theirs = Some(data);
            self.settle();
        }
    }

    /// Time passed: past the deadline without the puppet's MAC, verification failed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_none() && self.deadline.is_some_and(|d| now >= d) {
            self.outcome = Some(Err(PakeError::Intercepted));
        }
    }

    /// When [`Binding::handle_timeout`] is due, while unsettled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline.filter(|_| self.outcome.is_none())
    }

    /// `Some(Ok)` once verified, `Some(Err)` once it failed; `None` while waiting.
    pub fn outcome(&self) -> Option<&Result<(), PakeError>> {
        self.outcome.as_ref()
    }

    fn settle(&mut self) {
        if !self.sent || self.outcome.is_some() {
            return;
        }
        let (Some((local, remote)), Some(theirs)) = (&self.dtls, &self.theirs) else {
            return;
        };
        self.outcome = Some(
            PakeMessage::decode(theirs)
                .map_err(PakeError::from)
                .and_then(|message| self.key.check_fingerprints(&message, local, remote)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_pake::{ControllerStart, PuppetResponse, Secret};
    use rtcdesk_proto::ControlCode;

    fn fingerprint(byte: u8) -> Fingerprint {
        Fingerprint {
            hash: "sha-256".into(),
            digest: vec![byte; 32],
        }
    }

    /// The keys of a verified run: (controller's, puppet's).
    fn keys() -> (SessionKey, SessionKey) {
        let secret = Secret::from_number(42).unwrap();
        let route = ControlCode::from_number(7).unwrap();
        let (start, start_msg) = ControllerStart::new(route, secret);
        let (response, reply) = PuppetResponse::new(route, secret, "s1", &start_msg).unwrap();
        let (controller, confirm) = start.finish("s1", &reply).unwrap();
        (controller, response.check(&confirm).unwrap())
    }

    fn data(message: &SignalMessage) -> String {
        match message {
            SignalMessage::Pake(pake) => pake.data.clone(),
            other => panic!("not a pake message: {other:?}"),
        }
    }

    #[test]
    fn the_puppets_mac_before_or_after_ours_settles_it() {
        let (controller_fp, puppet_fp) = (fingerprint(1), fingerprint(2));
        for puppet_first in [false, true] {
            let (controller, puppet) = keys();
            let theirs = puppet.fingerprints(&puppet_fp, &controller_fp).encode();
            let mut binding = Binding::new(controller, "s1".into());
            let now = Instant::now();
            if puppet_first {
                binding.received(theirs.clone());
            }
            binding.secured(controller_fp.clone(), puppet_fp.clone());
            assert!(binding.outcome().is_none());
            let ours = binding.connected(now).expect("our fingerprints go out");
            assert!(binding.connected(now).is_none(), "sent once");
            if !puppet_first {
                assert!(binding.outcome().is_none());
                binding.received(theirs);
            }
            assert_eq!(binding.outcome(), Some(&Ok(())));
            // And the puppet accepts ours.
            let ours = PakeMessage::decode(&data(&ours)).unwrap();
            puppet
                .check_fingerprints(&ours, &puppet_fp, &controller_fp)
                .unwrap();
        }
    }

    #[test]
    fn a_puppet_that_sees_another_endpoint_is_an_interception() {
        let (controller, puppet) = keys();
        let mut binding = Binding::new(controller, "s1".into());
        binding.secured(fingerprint(1), fingerprint(9));
        binding.connected(Instant::now());
        // The puppet's DTLS peer was someone else (8), not us (1).
        binding.received(
            puppet
                .fingerprints(&fingerprint(2), &fingerprint(8))
                .encode(),
        );
        assert_eq!(binding.outcome(), Some(&Err(PakeError::Intercepted)));
    }

    #[test]
    fn silence_or_garbage_from_the_puppet_fails() {
        let (controller, _) = keys();
        let now = Instant::now();
        let mut binding = Binding::new(controller, "s1".into());
        binding.secured(fingerprint(1), fingerprint(2));
        binding.connected(now);
        binding.handle_timeout(now + VERIFY_TIMEOUT / 2);
        assert!(binding.outcome().is_none());
        assert_eq!(binding.poll_timeout(), Some(now + VERIFY_TIMEOUT));
        binding.handle_timeout(now + VERIFY_TIMEOUT);
        assert_eq!(binding.outcome(), Some(&Err(PakeError::Intercepted)));

        let (controller, _) = keys();
        let mut binding = Binding::new(controller, "s1".into());
        binding.secured(fingerprint(1), fingerprint(2));
        binding.connected(now);
        binding.received("not base64 at all".into());
        assert!(matches!(
            binding.outcome(),
            Some(Err(PakeError::BadMessage(_)))
        ));
    }

    #[test]
    fn connected_without_fingerprints_is_not_verified() {
        let (controller, _) = keys();
        let mut binding = Binding::new(controller, "s1".into());
        assert!(binding.connected(Instant::now()).is_none());
        assert_eq!(binding.outcome(), Some(&Err(PakeError::Intercepted)));
    }
}
