//! TURN credentials: the long-term key (RFC 8489 §9.2.2) and the time-limited "TURN REST"
//! credentials that coturn's `--use-auth-secret --static-auth-secret=SECRET` accepts
//! (draft-uberti-behave-turn-rest): username `EXPIRY:LABEL`, where EXPIRY is a Unix time in
//! seconds, and password base64(HMAC-SHA1(SECRET, username)).

use crate::checksum::{hmac_sha1, md5, sha256};
use crate::message::PASSWORD_ALGORITHM_SHA256;

/// A user name and password for a TURN server, as an `RTCIceServer` carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// `EXPIRY:LABEL` for REST credentials, or a static user name.
    pub username: String,
    /// The password (`credential` in `RTCIceServer`).
    pub password: String,
}

/// Time-limited credentials for a TURN server that shares `secret` with the signaling server:
/// valid until `expires_at_unix` (seconds since 1970); `label` names the user in the server's
/// logs and is used as given.
pub fn rest_credentials(secret: &[u8], label: &str, expires_at_unix: u64) -> TurnCredentials {
    let username = format!("{expires_at_unix}:{label}");
    let password = base64(&hmac_sha1(secret, &[username.as_bytes()]));
    TurnCredentials { username, password }
}

/// The long-term key: MD5(username ":" realm ":" password), or SHA-256 of the same when the
/// server and client chose PASSWORD-ALGORITHM SHA-256. SASLprep is not applied: user names and
/// passwords outside ASCII must already be in their prepared form.
pub(crate) fn long_term_key(
    algorithm: u16,
    username: &str,
    realm: &str,
    password: &str,
) -> Vec<u8> {
    let parts: [&[u8]; 5] = [
        username.as_bytes(),
        b":",
        realm.as_bytes(),
        b":",
        password.as_bytes(),
    ];
    if algorithm == PASSWORD_ALGORITHM_SHA256 {
        sha256(&parts).to_vec()
    } else {
        md5(&parts).to_vec()
    }
}

/// Standard base64 with padding (RFC 4648 §4), what coturn compares the password against.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::PASSWORD_ALGORITHM_MD5;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
    }

    #[test]
    fn rest_credentials_match_a_known_value() {
        // Computed independently:
        // printf 1700000000:puppet | openssl dgst -sha1 -hmac s3cret -binary | base64
        let credentials = rest_credentials(b"s3cret", "puppet", 1_700_000_000);
        assert_eq!(credentials.username, "1700000000:puppet");
        assert_eq!(credentials.password, "RVbadhwQ+J83yyGQsGM1hlGRnC0=");
    }

    #[test]
    fn long_term_key_matches_rfc5769_vector_2_4() {
        // RFC 5769 §2.4 gives the key for "マトリックス" / "example.org" / "TheMatrIX".
        let key = long_term_key(
            PASSWORD_ALGORITHM_MD5,
            "マトリックス",
            "example.org",
            "TheMatrIX",
        );
        assert_eq!(
            key,
            [
                0xe8, 0xca, 0x7a, 0xd5, 0x9d, 0x5e, 0xb0, 0x51, 0x8e, 0x31, 0x29, 0x11, 0xd2, 0xda,
                0xb2, 0xa9
            ]
        );
        assert_eq!(
            long_term_key(PASSWORD_ALGORITHM_SHA256, "u", "r", "p").len(),
            32
        );
    }
}
