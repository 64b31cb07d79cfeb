//! The ICE servers a signaling server hands its clients in `registered`, `accepted`,
//! `room_created` and `room_joined`, so a user behind a symmetric NAT or a UDP-blocking firewall
//! connects with nothing configured on their side.
//!
//! TURN credentials are TURN REST ones (what coturn's `static-auth-secret` checks): user name
//! `EXPIRY:LABEL`, password base64(HMAC-SHA1(secret, user name)), valid until `EXPIRY` (Unix
//! seconds). The secret never leaves the server; a leaked credential dies with its lifetime.

use std::fmt;
use std::time::Duration;

use rtcdesk_proto::signal::IceServer;
use rtcdesk_stun::turn::{rest_credentials, StunUrl, TurnUrl};

/// How long handed-out TURN credentials stay valid by default: a day, so a puppet left running
/// through a working day keeps its relay (a TURN server checks the expiry on every refresh).
pub const DEFAULT_CREDENTIAL_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// What the operator configured: STUN and TURN URLs and the TURN server's shared secret.
#[derive(Clone, Default)]
pub struct IceConfig {
    /// `stun:HOST:PORT` URLs, checked by [`IceConfig::new`].
    stun: Vec<String>,
    /// `turn:` / `turns:` URLs, checked by [`IceConfig::new`].
    turn: Vec<String>,
    /// The TURN server's `static-auth-secret`.
    secret: Vec<u8>,
    /// How long each handed-out credential is valid.
    lifetime: Duration,
}

impl fmt::Debug for IceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceConfig")
            .field("stun", &self.stun)
            .field("turn", &self.turn)
            .field("secret", &"<redacted>")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// Why a configuration cannot work, naming the flag to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceConfigError {
    /// A `--stun` value that is neither `HOST:PORT` nor a `stun:` URL.
    #[error("--stun {value}: {reason}")]
    BadStun {
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--turn` value that is not a `turn:`/`turns:` URL.
    #[error("--turn {value}: {reason}")]
    BadTurn {
        /// What was given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// TURN URLs without the secret to make credentials with.
    #[error("--turn needs --turn-secret (the TURN server's static-auth-secret)")]
    NoSecret,
    /// A secret with no TURN server to use it on.
    #[error("--turn-secret needs at least one --turn URL")]
    NoTurn,
    /// A credential lifetime of zero would hand out dead credentials.
    #[error("the TURN credential lifetime must be above zero")]
    ZeroLifetime,
}

impl IceConfig {
    /// Checks the flags' values: `stun` entries as `HOST:PORT` or `stun:HOST[:PORT]`, `turn`
    /// entries as `turn:`/`turns:` URLs, and a secret exactly when there is a TURN URL.
    pub fn new(
        stun: &[String],
        turn: &[String],
        secret: Option<&str>,
        lifetime: Duration,
    ) -> Result<Self, IceConfigError> {
        let stun = stun
            .iter()
            .map(|value| {
                let url = if value.to_ascii_lowercase().starts_with("stun:") {
                    value.clone()
                } else {
                    format!("stun:{value}")
                };
                StunUrl::parse(&url)
                    .map(|parsed| format!("stun:{}", parsed.host_port()))
                    .map_err(|e| IceConfigError::BadStun {
                        value: value.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let turn = turn
            .iter()
            .map(|value| {
                TurnUrl::parse(value)
                    .map(|parsed| parsed.to_string())
                    .map_err(|e| IceConfigError::BadTurn {
                        value: value.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        match (turn.is_empty(), secret) {
            (false, None) => return Err(IceConfigError::NoSecret),
            (true, Some(_)) => return Err(IceConfigError::NoTurn),
            _ => {}
        }
        if lifetime.is_zero() {
            return Err(IceConfigError::ZeroLifetime);
        }
        Ok(Self {
            stun,
            turn,
            secret: secret.unwrap_or_default().as_bytes().to_vec(),
            lifetime,
        })
    }

    /// True when there is nothing to hand out (then messages carry no `ice_servers` at all).
    pub fn is_empty(&self) -> bool {
        self.stun.is_empty() && self.turn.is_empty()
    }

    /// The list for one client at `unix_now`: one entry for all STUN URLs, one for all TURN URLs
    /// with fresh credentials labelled `label` (it shows in the TURN server's logs).
    pub fn servers_for(&self, label: &str, unix_now: u64) -> Vec<IceServer> {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if !self.turn.is_empty() {
            let expires = unix_now.saturating_add(self.lifetime.as_secs());
            let credentials = rest_credentials(&self.secret, label, expires);
            servers.push(IceServer {
                urls: self.turn.clone(),
                username: Some(credentials.username),
                credential: Some(credentials.password),
            });
        }
        servers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hands_out_stun_and_turn_with_rest_credentials() {
        let config = IceConfig::new(
            &strings(&["203.0.113.1:3478"]),
            &strings(&["turn:203.0.113.1:3478", "turn:203.0.113.1?transport=tcp"]),
            Some("s3cret"),
            Duration::from_secs(100),
        )
        .unwrap();
        let servers = config.servers_for("puppet", 1_699_999_900);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].urls, strings(&["stun:203.0.113.1:3478"]));
        assert_eq!(servers[0].username, None);
        assert_eq!(
            servers[1].urls,
            strings(&[
                "turn:203.0.113.1:3478?transport=udp",
                "turn:203.0.113.1:3478?transport=tcp"
            ])
        );
        // The same value as `rest_credentials_match_a_known_value` in rtcdesk-stun, computed
        // with openssl: the expiry is now + lifetime.
        assert_eq!(servers[1].username.as_deref(), Some("1700000000:puppet"));
        assert_eq!(
            servers[1].credential.as_deref(),
            Some("RVbadhwQ+J83yyGQsGM1hlGRnC0=")
        );
    }

    #[test]
    fn nothing_configured_hands_out_nothing() {
        let config = IceConfig::default();
        assert!(config.is_empty());
        assert!(config.servers_for("x", 0).is_empty());
    }

    #[test]
    fn bad_flags_are_named() {
        let day = DEFAULT_CREDENTIAL_LIFETIME;
        assert!(matches!(
            IceConfig::new(&strings(&["stun:"]), &[], None, day),
            Err(IceConfigError::BadStun { .. })
        ));
        assert!(matches!(
            IceConfig::new(&[], &strings(&["http://x"]), Some("s"), day),
            Err(IceConfigError::BadTurn { .. })
        ));
        assert_eq!(
            IceConfig::new(&[], &strings(&["turn:x"]), None, day).unwrap_err(),
            IceConfigError::NoSecret
        );
        assert_eq!(
            IceConfig::new(&[], &[], Some("s"), day).unwrap_err(),
            IceConfigError::NoTurn
        );
        assert_eq!(
            IceConfig::new(&[], &strings(&["turn:x"]), Some("s"), Duration::ZERO).unwrap_err(),
            IceConfigError::ZeroLifetime
        );
        let debug = format!(
            "{:?}",
            IceConfig::new(&[], &strings(&["turn:x"]), Some("hunter2"), day).unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
