//! Unattended access: a puppet reached by a permanent device ID and a password, with no one at
//! it to read out a code.
//!
//! The password never leaves the controller's user and never reaches the server: both ends
//! stretch it with Argon2id into a [`DeviceKey`], and SPAKE2 runs over that key exactly as it
//! runs over a one-time code (PAKE.md § 7). The puppet stores only the key, as a PHC string
//! ([`DeviceKey::to_phc`]), so a copy of its config folder does not give away a password its
//! owner may use elsewhere; it does let whoever holds it pose as a controller to that one puppet,
//! which is why the file is private to its owner (SECURITY.md).

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use rtcdesk_proto::signal::ControlCode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Argon2id memory cost in KiB (19 MiB: OWASP's first recommended setting). Fixed by the
/// protocol: a controller must derive the key the puppet stored, from the password alone.
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// Argon2id passes over the memory.
pub const ARGON2_PASSES: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_LANES: u32 = 1;
/// Bytes of the derived key.
pub const DEVICE_KEY_LEN: usize = 32;
/// The fewest characters a device password may have ([`check_new_password`]).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The most bytes of a password (a longer one is surely a file read by mistake).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The Argon2id salt for a device: the first 16 bytes of SHA-256 of
/// `rtcdesk device salt v1 ` followed by the nine digits of its ID. It is derived, not stored,
/// so a controller needs nothing but the ID and the password; device IDs are drawn at random, so
/// no two devices share it.
pub fn device_salt(id: ControlCode) -> [u8; 16] {
    let digest = Sha256::new()
        .chain_update(b"rtcdesk device salt v1 ")
        .chain_update(id.digits().as_bytes())
        .finalize();
    let mut salt = [0u8; 16];
    salt.copy_from_slice(&digest[..16]);
    salt
}

/// Why a new password is refused by `puppet set-password`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    /// Too short to stand up to guessing.
    #[error("a device password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Longer than [`MAX_PASSWORD_BYTES`].
    #[error("a device password has at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
}

/// Checks a password a user is setting (not one a controller types: that one is simply tried).
pub fn check_new_password(password: &str) -> Result<(), WeakPassword> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(WeakPassword::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    Ok(())
}

/// The password of an unattended puppet, stretched: what SPAKE2 runs over, and what the puppet
/// stores. Its `Debug` never shows it.
#[derive(Clone)]
pub struct DeviceKey([u8; DEVICE_KEY_LEN]);

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(***)")
    }
}

impl PartialEq for DeviceKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for DeviceKey {}

/// Why a stored device key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadStoredKey {
    /// Not `$argon2id$v=19$m=…,t=…,p=…$SALT$HASH`.
    #[error("not an Argon2id PHC string")]
    Format,
    /// Argon2id with other parameters than the protocol's: a controller could not derive it.
    #[error("the stored key uses other Argon2id parameters than rtcdesk's (m={ARGON2_MEMORY_KIB},t={ARGON2_PASSES},p={ARGON2_LANES})")]
    Parameters,
    /// The salt is not this device's: the file belongs to another device ID.
    #[error("the stored key was made for another device ID")]
    OtherDevice,
}

fn params() -> Params {
    // The constants are valid Argon2 parameters; `Params::new` checks only ranges they are in.
    Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_PASSES,
        ARGON2_LANES,
        Some(DEVICE_KEY_LEN),
    )
    .expect("rtcdesk's Argon2id parameters are in range")
}

impl DeviceKey {
    /// Stretches `password` (its UTF-8 bytes, as typed) for device `id`. Takes tens of
    /// milliseconds and 19 MiB on purpose: run it off any async task.
    pub fn derive(id: ControlCode, password: &str) -> Self {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let mut key = [0u8; DEVICE_KEY_LEN];
        argon
            .hash_password_into(password.as_bytes(), &device_salt(id), &mut key)
            .expect("a 16-byte salt and a 32-byte output are valid for Argon2id");
        Self(key)
    }

    /// The key as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`, base64 without
    /// padding), the form the puppet keeps in its config folder.
    pub fn to_phc(&self, id: ControlCode) -> String {
        format!(
            "$argon2id$v=19$m={ARGON2_MEMORY_KIB},t={ARGON2_PASSES},p={ARGON2_LANES}${}${}",
            STANDARD_NO_PAD.encode(device_salt(id)),
            STANDARD_NO_PAD.encode(self.0)
        )
    }

    /// Reads what [`DeviceKey::to_phc`] wrote for device `id` (surrounding whitespace is
    /// ignored). Total: any text gives a key or an error.
    pub fn from_phc(id: ControlCode, text: &str) -> Result<Self, BadStoredKey> {
        let mut fields = text.trim().split('$');
        let (Some(""), Some("argon2id"), Some(version), Some(costs), Some(salt), Some(hash), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(BadStoredKey::Format);
        };
        let expected = format!("m={ARGON2_MEMORY_KIB},t={ARGON2_PASSES},p={ARGON2_LANES}");
        if version != "v=19" || costs != expected {
            return Err(BadStoredKey::Parameters);
        }
        let salt = STANDARD_NO_PAD
            .decode(salt)
            .map_err(|_| BadStoredKey::Format)?;
        if salt != device_salt(id) {
            return Err(BadStoredKey::OtherDevice);
        }
        let hash = STANDARD_NO_PAD
            .decode(hash)
            .map_err(|_| BadStoredKey::Format)?;
        let key: [u8; DEVICE_KEY_LEN] = hash.try_into().map_err(|_| BadStoredKey::Format)?;
        Ok(Self(key))
    }

    /// The SPAKE2 password of an unattended session (PAKE.md § 7): a label, the device ID and
    /// the key, so it can never equal a one-time code's twelve digits.
    pub(crate) fn spake_password(&self, id: ControlCode) -> Vec<u8> {
        let mut password = b"rtcdesk device v1 ".to_vec();
        password.extend_from_slice(id.digits().as_bytes());
        password.push(b' ');
        password.extend_from_slice(&self.0);
        password
    }
}
