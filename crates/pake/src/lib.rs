//! End-to-end verified pairing, sans-IO.
//!
//! The signaling server introduces a controller to a puppet, and relays the SDP that carries
//! both DTLS fingerprints: a server that meddles could pair with anyone and sit in the middle.
//! This crate keeps it out. The control code a puppet shows has twelve digits; the server routes
//! by the first nine (the v1 control code) and never sees the last three (the [`Secret`]). Both
//! programs run SPAKE2 over the whole code, relayed through signaling as opaque messages, confirm
//! that they derived the same key before the puppet's user is even asked, and then exchange a
//! MAC over the two DTLS fingerprints each of them actually negotiated. A server that swapped the
//! fingerprints for its own DTLS endpoint cannot produce that MAC, so both sides see it.
//!
//! The flow, with the messages of [`PakeMessage`] (the wire format is in `PAKE.md`):
//!
//! 1. controller: [`ControllerStart::new`] → `Start`, sent in `connect.pake`;
//! 2. puppet: [`PuppetResponse::new`] on `incoming.pake` → `Reply` (its SPAKE2 message and its
//!    key confirmation), sent in a `pake` signaling message;
//! 3. controller: [`ControllerStart::finish`] checks the puppet's confirmation → a
//!    [`SessionKey`] and `Confirm`;
//! 4. puppet: [`PuppetResponse::check`] → its [`SessionKey`]; only now is its user asked;
//! 5. both, once DTLS is up: [`SessionKey::fingerprints`] → `Fingerprints`, and
//!    [`SessionKey::check_fingerprints`] on the other side's.
//!
//! Nothing here does I/O or keeps time; the puppet's session book and the controller's pairing
//! and session core drive it.

#![forbid(unsafe_code)]

mod code;
mod device;
mod message;

pub use code::{BadPairingCode, PairingCode, Secret};
pub use device::{
    check_new_password, device_salt, BadStoredKey, DeviceKey, WeakPassword, ARGON2_LANES,
    ARGON2_MEMORY_KIB, ARGON2_PASSES, DEVICE_KEY_LEN, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS,
};
pub use message::{BadPakeMessage, PakeMessage, CONFIRM_LEN, MAX_TEXT_LEN, SPAKE_LEN};

use hmac::{Hmac, Mac};
use rtcdesk_proto::signal::ControlCode;
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How long each side waits for the other's next verification message (the controller's
/// `confirm`, and either side's `fingerprints` once DTLS is up) before the run fails.
pub const VERIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// SPAKE2 identity of side A, the controller.
const ID_CONTROLLER: &[u8] = b"rtcdesk controller";
/// SPAKE2 identity of side B, the puppet.
const ID_PUPPET: &[u8] = b"rtcdesk puppet";

/// Which end of the session this is; each MAC names the role that made it, so one side's
/// message can never be reflected back as the other's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The machine being watched or controlled.
    Puppet,
    /// The machine watching or controlling.
    Controller,
}

impl Role {
    fn confirm_label(self) -> &'static [u8] {
        match self {
            Role::Puppet => b"rtcdesk pake v1 confirm puppet",
            Role::Controller => b"rtcdesk pake v1 confirm controller",
        }
    }

    fn fingerprints_label(self) -> &'static [u8] {
        match self {
            Role::Puppet => b"rtcdesk pake v1 fingerprints puppet",
            Role::Controller => b"rtcdesk pake v1 fingerprints controller",
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Puppet => Role::Controller,
            Role::Controller => Role::Puppet,
        }
    }
}

/// A DTLS certificate fingerprint: the hash function's name as SDP writes it (`sha-256`) and the
/// digest. Each side passes the ones its DTLS stack negotiated, not the ones the SDP claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function, e.g. `sha-256` (compared case-insensitively: it is lowered first).
    pub hash: String,
    /// The digest of the peer's DER certificate.
    pub digest: Vec<u8>,
}

/// Why verification failed. Every variant ends the session: none of them can be retried within
/// it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PakeError {
    /// The other side's message is not a verification message.
    #[error("malformed verification message: {0}")]
    BadMessage(#[from] BadPakeMessage),
    /// A well-formed message of the wrong kind for this step.
    #[error("expected a `{expected}` verification message, got `{got}`")]
    UnexpectedMessage {
        /// The kind this step needs.
        expected: &'static str,
        /// The kind that came.
        got: &'static str,
    },
    /// SPAKE2 refused the other side's message (a point not on the curve, the wrong side).
    #[error("the other side's key exchange message was refused: {0}")]
    Spake(String),
    /// The key confirmation did not match: the other side does not hold the same code. Either
    /// the code was mistyped, or someone who does not know it is in the middle.
    #[error(
        "the other side does not hold the same control code: the last digits are wrong, or the \
         connection is being intercepted"
    )]
    WrongCode,
    /// The fingerprints MAC did not match: the key is right, so the DTLS endpoints differ from
    /// the ones the other side sees. The signaling server (or someone on the path) swapped them.
    #[error(
        "the encrypted connection does not end where the other side thinks: the connection may \
         be intercepted (the signaling server replaced the DTLS fingerprints)"
    )]
    Intercepted,
}

/// The SPAKE2 password: all twelve digits, so a run is bound to the code it was started for.
fn password(route: ControlCode, secret: Secret) -> Password {
    Password::new(format!("{}{}", route.digits(), secret.digits()).as_bytes())
}

/// The SPAKE2 password of an unattended session: the device ID and its stretched password.
fn device_password(id: ControlCode, key: &DeviceKey) -> Password {
    Password::new(key.spake_password(id))
}

fn identities() -> (Identity, Identity) {
    (Identity::new(ID_CONTROLLER), Identity::new(ID_PUPPET))
}

/// What a controller holds that the signaling server does not, to verify the session with:
/// the last digits of a one-time code, or an unattended puppet's password key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// The three secret digits of the twelve a puppet shows.
    Digits(Secret),
    /// The key derived from an unattended puppet's password ([`DeviceKey::derive`]).
    Password(DeviceKey),
}

/// The controller's side after sending `Start`, waiting for the puppet's `Reply`.
pub struct ControllerStart {
    spake: Spake2<Ed25519Group>,
}

impl std::fmt::Debug for ControllerStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControllerStart")
    }
}

impl ControllerStart {
    /// Starts a run for the code the user typed (its routing digits and its secret): the
    /// returned `Start` goes in `connect.pake`.
    pub fn new(route: ControlCode, secret: Secret) -> (Self, PakeMessage) {
        Self::start(&password(route, secret))
    }

    /// Starts a run for an unattended puppet: its device ID and the key derived from the
    /// password the user typed ([`DeviceKey::derive`]).
    pub fn for_device(id: ControlCode, key: &DeviceKey) -> (Self, PakeMessage) {
        Self::start(&device_password(id, key))
    }

    /// Starts a run for the puppet at `route` with whichever credential the user gave.
    pub fn with(route: ControlCode, credential: &Credential) -> (Self, PakeMessage) {
        match credential {
            Credential::Digits(secret) => Self::new(route, *secret),
            Credential::Password(key) => Self::for_device(route, key),
        }
    }

    fn start(password: &Password) -> (Self, PakeMessage) {
        let (id_a, id_b) = identities();
        let (spake, outbound) = Spake2::<Ed25519Group>::start_a(password, &id_a, &id_b);
        let message = PakeMessage::Start {
            spake: to_spake(&outbound),
        };
        (Self { spake }, message)
    }

    /// The puppet's `Reply` for `session` (the id `ringing` named): checks the puppet's key
    /// confirmation, and returns the session key and the `Confirm` to send back.
    pub fn finish(
        self,
        session: &str,
        reply: &PakeMessage,
    ) -> Result<(SessionKey, PakeMessage), PakeError> {
        let PakeMessage::Reply { spake, confirm } = reply else {
            return Err(unexpected("reply", reply));
        };
        let key = self
            .spake
            .finish(spake)
            .map_err(|e| PakeError::Spake(format!("{e:?}")))?;
        let key = SessionKey::new(&key, Role::Controller, session);
        key.verify(&key.confirm_mac(Role::Puppet), confirm)
            .map_err(|()| PakeError::WrongCode)?;
        let ours = PakeMessage::Confirm {
            confirm: key.confirm_mac(Role::Controller),
        };
        Ok((key, ours))
    }
}

/// The puppet's side after sending `Reply`, waiting for the controller's `Confirm`.
#[derive(Clone)]
pub struct PuppetResponse {
    key: SessionKey,
}

impl std::fmt::Debug for PuppetResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PuppetResponse")
    }
}

impl PuppetResponse {
    /// Answers the controller's `Start` (from `incoming.pake`) for `session`: the returned
    /// `Reply` goes back in a `pake` message. Sending it reveals nothing about the secret beyond
    /// the one guess the controller's `Start` committed to, so the puppet counts the run as a
    /// failure until [`PuppetResponse::check`] passes.
    pub fn new(
        route: ControlCode,
        secret: Secret,
        session: &str,
        start: &PakeMessage,
    ) -> Result<(Self, PakeMessage), PakeError> {
        Self::respond(&password(route, secret), session, start)
    }

    /// Answers a `Start` sent to an unattended puppet: `key` is the one it stored for device
    /// `id`. A wrong password shows as [`PakeError::WrongCode`] at the next step, as for codes.
    pub fn for_device(
        id: ControlCode,
        key: &DeviceKey,
        session: &str,
        start: &PakeMessage,
    ) -> Result<(Self, PakeMessage), PakeError> {
        Self::respond(&device_password(id, key), session, start)
    }

    fn respond(
        password: &Password,
        session: &str,
        start: &PakeMessage,
    ) -> Result<(Self, PakeMessage), PakeError> {
        let PakeMessage::Start { spake: theirs } = start else {
            return Err(unexpected("start", start));
        };
        let (id_a, id_b) = identities();
        let (spake, outbound) = Spake2::<Ed25519Group>::start_b(password, &id_a, &id_b);
        let key = spake
            .finish(theirs)
            .map_err(|e| PakeError::Spake(format!("{e:?}")))?;
        let key = SessionKey::new(&key, Role::Puppet, session);
        let reply = PakeMessage::Reply {
            spake: to_spake(&outbound),
            confirm: key.confirm_mac(Role::Puppet),
        };
        Ok((Self { key }, reply))
    }

    /// The controller's `Confirm`: the session key once it matches.
    pub fn check(self, confirm: &PakeMessage) -> Result<SessionKey, PakeError> {
        let PakeMessage::Confirm { confirm } = confirm else {
            return Err(unexpected("confirm", confirm));
        };
        self.key
            .verify(&self.key.confirm_mac(Role::Controller), confirm)
            .map_err(|()| PakeError::WrongCode)?;
        Ok(self.key)
    }
}

/// The key both ends derived and confirmed, bound to one session and one role; it signs and
/// checks the DTLS fingerprints.
#[derive(Clone)]
pub struct SessionKey {
    key: [u8; 32],
    role: Role,
    session: String,
}

/// Equal when both are the same key for the same session and role (the key compared in
/// constant time).
impl PartialEq for SessionKey {
    fn eq(&self, other: &Self) -> bool {
        self.role == other.role
            && self.session == other.session
            && bool::from(self.key.ct_eq(&other.key))
    }
}

impl Eq for SessionKey {}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey")
            .field("role", &self.role)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl SessionKey {
    fn new(spake_key: &[u8], role: Role, session: &str) -> Self {
        let mut key = [0u8; 32];
        let len = spake_key.len().min(32);
        key[..len].copy_from_slice(&spake_key[..len]);
        Self {
            key,
            role,
            session: session.to_string(),
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The `Fingerprints` message for the DTLS connection this side negotiated: `local` is its
    /// own certificate's fingerprint, `remote` the one the peer's certificate has.
    pub fn fingerprints(&self, local: &Fingerprint, remote: &Fingerprint) -> PakeMessage {
        let (puppet, controller) = self.order(local, remote);
        PakeMessage::Fingerprints {
            mac: self.fingerprints_mac(self.role, puppet, controller),
        }
    }

    /// Checks the other side's `Fingerprints` against what this side negotiated. A mismatch is
    /// [`PakeError::Intercepted`]: both sides hold the key, so only the endpoints can differ.
    pub fn check_fingerprints(
        &self,
        message: &PakeMessage,
        local: &Fingerprint,
        remote: &Fingerprint,
    ) -> Result<(), PakeError> {
        let PakeMessage::Fingerprints { mac } = message else {
            return Err(unexpected("fingerprints", message));
        };
        let (puppet, controller) = self.order(local, remote);
        let expected = self.fingerprints_mac(self.role.other(), puppet, controller);
        self.verify(&expected, mac)
            .map_err(|()| PakeError::Intercepted)
    }

    /// (puppet's, controller's) from (local, remote).
    fn order<'a>(
        &self,
        local: &'a Fingerprint,
        remote: &'a Fingerprint,
    ) -> (&'a Fingerprint, &'a Fingerprint) {
        match self.role {
            Role::Puppet => (local, remote),
            Role::Controller => (remote, local),
        }
    }

    fn mac(&self, label: &[u8], fields: &[&[u8]]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(label);
        for field in fields {
            mac.update(&(field.len() as u32).to_be_bytes());
            mac.update(field);
        }
        mac.finalize().into_bytes().into()
    }

    fn confirm_mac(&self, by: Role) -> [u8; 32] {
        self.mac(by.confirm_label(), &[self.session.as_bytes()])
    }

    fn fingerprints_mac(
        &self,
        by: Role,
        puppet: &Fingerprint,
        controller: &Fingerprint,
    ) -> [u8; 32] {
        let puppet_hash = puppet.hash.to_ascii_lowercase();
        let controller_hash = controller.hash.to_ascii_lowercase();
        self.mac(
            by.fingerprints_label(),
            &[
                self.session.as_bytes(),
                puppet_hash.as_bytes(),
                &puppet.digest,
                controller_hash.as_bytes(),
                &controller.digest,
            ],
        )
    }

    /// Constant-time comparison of a received MAC with the expected one.
    fn verify(&self, expected: &[u8; 32], received: &[u8; 32]) -> Result<(), ()> {
        if bool::from(expected.ct_eq(received)) {
            Ok(())
        } else {
            Err(())
        }
    }
}

fn to_spake(outbound: &[u8]) -> [u8; SPAKE_LEN] {
    let mut spake = [0u8; SPAKE_LEN];
    let len = outbound.len().min(SPAKE_LEN);
    spake[..len].copy_from_slice(&outbound[..len]);
    spake
}

fn unexpected(expected: &'static str, got: &PakeMessage) -> PakeError {
    PakeError::UnexpectedMessage {
        expected,
        got: got.kind_name(),
    }
}

#[cfg(test)]
mod tests;
