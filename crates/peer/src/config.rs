//! What a session is set up with: role, addresses, STUN servers, tracks, timeouts, queue sizes,
//! and the rules between them that [`PeerConfig::validate`] checks before a session exists.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::session::Session;
use crate::Error;

/// Which side of the offer/answer exchange this peer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The puppet: creates the offer, sends video (and audio), opens the data channels.
    Offerer,
    /// The controller (or a browser): answers, receives the media.
    Answerer,
}

/// A TURN server to get a relayed candidate from, with its long-term credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// The server's resolved address (the caller resolves `turn:HOST:PORT`).
    pub server: SocketAddr,
    /// How to reach it: UDP datagrams, or TCP for networks that block UDP.
    pub transport: rtcdesk_stun::turn::TurnTransport,
    /// Long-term credential user name (for REST credentials, `EXPIRY:LABEL`).
    pub username: String,
    /// Long-term credential password.
    pub password: String,
    /// For `turns:`: TLS over the TCP stream, and whom to trust for it.
    pub tls: Option<TurnTls>,
}

/// How a `turns:` server is checked: its certificate must carry `name` and chain to a public CA
/// (Mozilla's list) or to one of `extra_roots` (a company CA, or a self-signed certificate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnTls {
    /// The name the certificate must carry: the URL's host.
    pub name: String,
    /// CAs trusted besides the public ones.
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl TurnTls {
    /// What a `turns:` URL asks for (public CAs only until [`TurnTls::trust_ca_pem`]); `None`
    /// for `turn:`.
    pub fn for_url(url: &rtcdesk_stun::turn::TurnUrl) -> Option<TurnTls> {
        url.secure.then(|| TurnTls {
            name: url.host.clone(),
            extra_roots: Vec::new(),
        })
    }

    /// Trusts the CA certificates in this PEM text too (`--turn-ca FILE`).
    pub fn trust_ca_pem(&mut self, pem: &[u8]) -> Result<(), String> {
        use rustls::pki_types::pem::PemObject;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err("no certificate in the PEM text".into());
        }
        self.extra_roots.extend(certs);
        Ok(())
    }
}

impl TurnServer {
    /// Every `--turn` URL resolved with the same credentials, as both programs take them; an
    /// error names the URL and what is wrong (credentials missing, not a TURN URL, no address).
    pub fn resolve_all(
        urls: &[String],
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Vec<TurnServer>, String> {
        if urls.is_empty() {
            return Ok(Vec::new());
        }
        let (Some(username), Some(password)) = (username, password) else {
            return Err(
                "--turn needs --turn-user and --turn-password (or RTCDESK_TURN_PASSWORD)".into(),
            );
        };
        urls.iter()
            .map(|url| {
                TurnServer::resolve(url, username, password).map_err(|e| format!("--turn {e}"))
            })
            .collect()
    }

    /// Makes every `turns:` server in `servers` trust the CA certificates in the PEM file at
    /// `path` too (`--turn-ca FILE`, for a company CA or a self-signed TURN server); an error
    /// when the file is unreadable, holds no certificate, or no server is `turns:`.
    pub fn trust_ca_file(servers: &mut [TurnServer], path: &std::path::Path) -> Result<(), String> {
        let pem = std::fs::read(path).map_err(|e| format!("--turn-ca {}: {e}", path.display()))?;
        let mut secured = 0;
        for tls in servers.iter_mut().filter_map(|server| server.tls.as_mut()) {
            tls.trust_ca_pem(&pem)
                .map_err(|e| format!("--turn-ca {}: {e}", path.display()))?;
            secured += 1;
        }
        if secured == 0 {
            return Err(format!(
                "--turn-ca {}: no --turn URL is turns: (TLS)",
                path.display()
            ));
        }
        Ok(())
    }

    /// The server a `turn:HOST:PORT?transport=udp|tcp` or `turns:HOST:PORT` URL names, resolved
    /// now (a blocking name lookup: call it while reading the configuration, not on a network
    /// task), with these long-term credentials.
    pub fn resolve(url: &str, username: &str, password: &str) -> Result<TurnServer, String> {
        use std::net::ToSocketAddrs;
        let parsed = rtcdesk_stun::turn::TurnUrl::parse(url).map_err(|e| e.to_string())?;
        let host_port = parsed.host_port();
        let server = host_port
            .to_socket_addrs()
            .map_err(|e| format!("{url}: cannot resolve {host_port}: {e}"))?
            .find(SocketAddr::is_ipv4)
            .ok_or_else(|| format!("{url}: {host_port} has no IPv4 address"))?;
        Ok(TurnServer {
            server,
            transport: parsed.transport,
            username: username.to_string(),
            password: password.to_string(),
            tls: TurnTls::for_url(&parsed),
        })
    }
}

impl std::fmt::Debug for TurnServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnServer")
            .field("server", &self.server)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("tls", &self.tls.as_ref().map(|tls| &tls.name))
            .finish()
    }
}

/// A configuration that cannot work, named so the caller can fix the one value that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Silence must outlast a few keepalives, or a live peer is reported gone between two.
    #[error("silence timeout {silence:?} must be at least three keepalive intervals ({keepalive:?} each)")]
    SilenceShorterThanKeepalives {
        /// The configured silence timeout.
        silence: Duration,
        /// The configured keepalive interval.
        keepalive: Duration,
    },
    /// The session would close before it was ever reported silent.
    #[error(
        "close-after-silence {close:?} must not be shorter than the silence timeout {silence:?}"
    )]
    CloseBeforeSilence {
        /// The configured close-after-silence.
        close: Duration,
        /// The configured silence timeout.
        silence: Duration,
    },
    /// A zero keepalive interval would make ICE spin.
    #[error("the keepalive interval must be above zero")]
    ZeroKeepalive,
    /// The bandwidth estimator cannot start above the most it may probe for.
    #[error("initial bitrate {initial} bit/s is above the maximum {max} bit/s")]
    InitialAboveMax {
        /// The configured start value.
        initial: u64,
        /// The configured maximum.
        max: u64,
    },
    /// Relay-only needs a TURN server, or the session has no candidate at all.
    #[error("relay-only needs at least one TURN server")]
    RelayOnlyWithoutTurn,
    /// A queue of size zero could never take anything.
    #[error("the {0} queue must hold at least one entry")]
    EmptyQueue(&'static str),
}

/// How to set up one session. [`PeerConfig::new`] gives working defaults; change fields or use
/// the `with_*` methods, then [`PeerConfig::build`] (sans-IO) or [`crate::Peer::start`] (tokio),
/// both of which [`validate`](PeerConfig::validate) first.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// Offerer (puppet) or answerer (controller).
    pub role: Role,
    /// Bind here instead of one socket per usable interface. Tests use `127.0.0.1:0`.
    pub bind: Option<SocketAddr>,
    /// STUN servers asked for server-reflexive candidates, one query per server and socket.
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers, each giving a relayed candidate per local socket of its address family.
    /// Used by the [`Endpoint`](crate::Endpoint) the session runs on (allocations belong to a
    /// socket, shared by its sessions).
    pub turn_servers: Vec<TurnServer>,
    /// Offer only relayed candidates (the browser's `iceTransportPolicy: "relay"`): the peer
    /// never learns this host's addresses, and traffic always goes through the TURN server.
    pub relay_only: bool,
    /// Whether the offer carries an Opus audio track (send only) beside the video. The answerer
    /// always accepts audio when it is offered.
    pub audio: bool,
    /// Silence after which the peer is reported [`Disconnected`](crate::PeerEvent::Disconnected).
    /// ICE keepalives run every `keepalive_interval`, so this must be a few of those.
    pub silence_timeout: Duration,
    /// Silence after which the session gives up and closes itself.
    pub close_after_silence: Duration,
    /// How often ICE checks the selected pair (str0m's max STUN RTO); also keeps NATs open.
    /// Each check costs about 200 bytes each way, so this sets the floor of an idle session's
    /// traffic.
    pub keepalive_interval: Duration,
    /// Whether the video sender estimates bandwidth (TWCC) and paces to it. On by default;
    /// off sends every frame at once (only sensible on a LAN, or to measure raw capacity).
    pub bandwidth_estimation: bool,
    /// The bandwidth estimator's start value for the video sender.
    pub initial_bitrate_bps: u64,
    /// The most the bandwidth estimator probes for while video flows. While the screen is
    /// still nothing is probed, so an idle session costs only keepalives.
    pub max_bitrate_bps: u64,
    /// How many outgoing messages may wait per data channel in the application's queue before a
    /// send reports [`Error::Full`].
    pub data_queue: usize,
    /// How many received video frames may wait for the decoder before newer ones are dropped
    /// (and a keyframe requested).
    pub video_receive_queue: usize,
    /// How many received audio frames may wait for the audio decoder; late audio is dropped.
    pub audio_receive_queue: usize,
    /// How many events may wait for the application before the network loop waits on it.
    pub event_queue: usize,
    /// Kernel send and receive buffer asked for each UDP socket, so a burst of video packets
    /// is not lost while the loop is busy (the kernel caps it at net.core.[rw]mem_max).
    pub socket_buffer_bytes: usize,
}

impl PeerConfig {
    /// Defaults: all interfaces, no STUN server, no audio, a keepalive every 2 s, disconnect
    /// after 6 s of silence, close after 15 s. The keepalive sets what a still screen costs
    /// (with RTCP every 2 s and the puppet's stats, about 1.7 kbit/s each way); a dead peer is
    /// still noticed within 6 s.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            bind: None,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            relay_only: false,
            audio: false,
            silence_timeout: Duration::from_secs(6),
            close_after_silence: Duration::from_secs(15),
            keepalive_interval: Duration::from_secs(2),
            bandwidth_estimation: true,
            initial_bitrate_bps: 2_000_000,
            max_bitrate_bps: 50_000_000,
            data_queue: 1024,
            video_receive_queue: 8,
            audio_receive_queue: 16,
            event_queue: 4096,
            socket_buffer_bytes: 4 << 20,
        }
    }

    /// Binds only this address (tests use `127.0.0.1:0`).
    pub fn with_bind(mut self, bind: SocketAddr) -> Self {
        self.bind = Some(bind);
        self
    }

    /// Asks these STUN servers for server-reflexive candidates.
    pub fn with_stun_servers(mut self, servers: Vec<SocketAddr>) -> Self {
        self.stun_servers = servers;
        self
    }

    /// Offers an Opus audio track beside the video.
    pub fn with_audio(mut self, audio: bool) -> Self {
        self.audio = audio;
        self
    }

    /// Sets the keepalive interval, the silence timeout and the close-after-silence together.
    pub fn with_liveness(
        mut self,
        keepalive: Duration,
        silence: Duration,
        close: Duration,
    ) -> Self {
        self.keepalive_interval = keepalive;
        self.silence_timeout = silence;
        self.close_after_silence = close;
        self
    }

    /// Checks the rules between the values; [`PeerConfig::build`] and [`crate::Peer::start`]
    /// call it, so a session never runs with a configuration that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.keepalive_interval.is_zero() {
            return Err(ConfigError::ZeroKeepalive);
        }
        if self.silence_timeout < self.keepalive_interval * 3 {
            return Err(ConfigError::SilenceShorterThanKeepalives {
                silence: self.silence_timeout,
                keepalive: self.keepalive_interval,
            });
        }
        if self.close_after_silence < self.silence_timeout {
            return Err(ConfigError::CloseBeforeSilence {
                close: self.close_after_silence,
                silence: self.silence_timeout,
            });
        }
        if self.relay_only && self.turn_servers.is_empty() {
            return Err(ConfigError::RelayOnlyWithoutTurn);
        }
        if self.initial_bitrate_bps > self.max_bitrate_bps {
            return Err(ConfigError::InitialAboveMax {
                initial: self.initial_bitrate_bps,
                max: self.max_bitrate_bps,
            });
        }
        for (name, size) in [
            ("data", self.data_queue),
            ("video receive", self.video_receive_queue),
            ("audio receive", self.audio_receive_queue),
            ("event", self.event_queue),
        ] {
            if size == 0 {
                return Err(ConfigError::EmptyQueue(name));
            }
        }
        Ok(())
    }

    /// The sans-IO session for this configuration, whose host candidates are the given local
    /// socket addresses (the caller binds them and moves the datagrams).
    pub fn build(&self, host_addresses: &[SocketAddr], now: Instant) -> Result<Session, Error> {
        self.validate()?;
        Ok(Session::new(self, host_addresses, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        PeerConfig::new(Role::Offerer).validate().unwrap();
        PeerConfig::new(Role::Answerer).validate().unwrap();
    }

    #[test]
    fn turn_urls_resolve_with_their_credentials_or_say_what_is_missing() {
        assert_eq!(TurnServer::resolve_all(&[], None, None), Ok(Vec::new()));
        let urls = vec!["turn:127.0.0.1:3478".to_string()];
        let missing = TurnServer::resolve_all(&urls, Some("alice"), None).unwrap_err();
        assert!(missing.contains("--turn-password"), "{missing}");
        let servers = TurnServer::resolve_all(&urls, Some("alice"), Some("pw")).unwrap();
        assert_eq!(servers[0].server, SocketAddr::from(([127, 0, 0, 1], 3478)));
        assert_eq!(servers[0].username, "alice");
        assert!(
            !format!("{:?}", servers[0]).contains("pw"),
            "the password is never logged"
        );
        let bad = TurnServer::resolve_all(&["http://x".to_string()], Some("a"), Some("b"));
        assert!(bad.unwrap_err().contains("http://x"));
    }

    #[test]
    fn each_broken_rule_is_named() {
        let base = PeerConfig::new(Role::Offerer);
        let second = Duration::from_secs(1);
        assert_eq!(
            base.clone()
                .with_liveness(second, second * 2, second * 10)
                .validate(),
            Err(ConfigError::SilenceShorterThanKeepalives {
                silence: second * 2,
                keepalive: second
            })
        );
        assert_eq!(
            base.clone()
                .with_liveness(Duration::ZERO, second * 3, second * 10)
                .validate(),
            Err(ConfigError::ZeroKeepalive)
        );
        assert!(matches!(
            base.clone()
                .with_liveness(second, second * 3, second * 2)
                .validate(),
            Err(ConfigError::CloseBeforeSilence { .. })
        ));
        let mut fast_start = base.clone();
        fast_start.initial_bitrate_bps = fast_start.max_bitrate_bps + 1;
        assert!(matches!(
            fast_start.validate(),
            Err(ConfigError::InitialAboveMax { .. })
        ));
        let mut no_queue = base;
        no_queue.data_queue = 0;
        assert_eq!(no_queue.validate(), Err(ConfigError::EmptyQueue("data")));
    }
}
