//! `turn:` and `turns:` URLs (RFC 7065), as the browser's `RTCIceServer.urls` and the
//! `--turn` options spell them: `turn:HOST[:PORT][?transport=udp|tcp]`, `turns:HOST[:PORT]`.

use std::fmt;
use std::str::FromStr;

use super::TurnError;

/// The transport to the TURN server (the relayed side is always UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnTransport {
    /// Datagrams: one STUN message or ChannelData frame per datagram.
    Udp,
    /// A byte stream (TCP, or TLS for `turns:`, which the caller's shell sets up around the
    /// same sans-IO allocation): frames are split by
    /// [`StreamFramer`](super::StreamFramer) and ChannelData is padded to 4 bytes.
    Tcp,
}

/// A parsed TURN server URL. The host is not resolved here (that is I/O).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TurnUrl {
    /// `turns:`: TLS over TCP.
    pub secure: bool,
    /// A DNS name or an IP address; IPv6 without the brackets.
    pub host: String,
    /// The port; 3478 for `turn:` and 5349 for `turns:` when the URL has none.
    pub port: u16,
    /// UDP or TCP; `turns:` is always TCP.
    pub transport: TurnTransport,
}

/// The default port of `turn:` (RFC 8656 §3.1).
pub const DEFAULT_PORT: u16 = 3478;
/// The default port of `turns:` (RFC 8656 §3.1).
pub const DEFAULT_TLS_PORT: u16 = 5349;

impl TurnUrl {
    /// Parses a URL; every input gives a value or a [`TurnError::BadUrl`] saying what is wrong.
    pub fn parse(url: &str) -> Result<Self, TurnError> {
        let bad = |reason| TurnError::BadUrl {
            url: url.chars().take(200).collect(),
            reason,
        };
        let (scheme, rest) = url
            .split_once(':')
            .ok_or(bad("no `turn:` or `turns:` scheme"))?;
        let secure = if scheme.eq_ignore_ascii_case("turn") {
            false
        } else if scheme.eq_ignore_ascii_case("turns") {
            true
        } else {
            return Err(bad("the scheme is not `turn` or `turns`"));
        };
        if rest.starts_with("//") {
            return Err(bad("TURN URLs have no `//` (write turn:HOST:PORT)"));
        }
        let (authority, query) = match rest.split_once('?') {
            Some((authority, query)) => (authority, Some(query)),
            None => (rest, None),
        };
        let (host, port) = split_host_port(authority).map_err(bad)?;
        let transport = match query {
            None => TurnTransport::Udp,
            Some(query) => {
                let value = query
                    .strip_prefix("transport=")
                    .ok_or(bad("the only query parameter is `transport=udp|tcp`"))?;
                if value.eq_ignore_ascii_case("udp") {
                    TurnTransport::Udp
                } else if value.eq_ignore_ascii_case("tcp") {
                    TurnTransport::Tcp
                } else {
                    return Err(bad("transport must be `udp` or `tcp`"));
                }
            }
        };
        if secure && query.is_some() && transport == TurnTransport::Udp {
            return Err(bad("`turns:` over UDP (DTLS) is not supported"));
        }
        Ok(TurnUrl {
            secure,
            host: host.to_string(),
            port: port.unwrap_or(if secure {
                DEFAULT_TLS_PORT
            } else {
                DEFAULT_PORT
            }),
            transport: if secure {
                TurnTransport::Tcp
            } else {
                transport
            },
        })
    }

    /// `HOST:PORT` with IPv6 hosts in brackets, ready for a resolver.
    pub fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// A `stun:HOST[:PORT]` URL (RFC 7064), as `RTCIceServer.urls` lists STUN servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunUrl {
    /// A DNS name or an IP address; IPv6 without the brackets.
    pub host: String,
    /// The port; 3478 when the URL has none.
    pub port: u16,
}

impl StunUrl {
    /// Parses a URL; every input gives a value or a [`TurnError::BadUrl`] saying what is wrong.
    /// `stuns:` (STUN over TLS) is refused: nothing here speaks it.
    pub fn parse(url: &str) -> Result<Self, TurnError> {
        let bad = |reason| TurnError::BadUrl {
            url: url.chars().take(200).collect(),
            reason,
        };
        let (scheme, rest) = url.split_once(':').ok_or(bad("no `stun:` scheme"))?;
        if !scheme.eq_ignore_ascii_case("stun") {
            return Err(bad("the scheme is not `stun`"));
        }
        if rest.starts_with("//") {
            return Err(bad("STUN URLs have no `//` (write stun:HOST:PORT)"));
        }
        if rest.contains('?') {
            return Err(bad("STUN URLs take no query"));
        }
        let (host, port) = split_host_port(rest).map_err(bad)?;
        Ok(StunUrl {
            host: host.to_string(),
            port: port.unwrap_or(DEFAULT_PORT),
        })
    }

    /// `HOST:PORT` with IPv6 hosts in brackets, ready for a resolver.
    pub fn host_port(&self) -> String {
        host_port(&self.host, self.port)
    }
}

/// `HOST:PORT`, with an IPv6 host in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("`[` without `]`")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("not an IPv6 address inside `[...]`");
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or("junk after `]`")?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("no host");
    }
    if !authority.starts_with('[')
        && (host.len() > 253
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_'))
    {
        return Err("the host has characters a DNS name or IPv4 address cannot have");
    }
    let port = match port {
        None => None,
        Some(port) => {
            if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err("the port is not a number");
            }
            match port.parse::<u16>() {
                Ok(0) | Err(_) => return Err("the port is not in 1..=65535"),
                Ok(port) => Some(port),
            }
        }
    };
    Ok((host, port))
}

impl FromStr for TurnUrl {
    type Err = TurnError;

    fn from_str(url: &str) -> Result<Self, TurnError> {
        TurnUrl::parse(url)
    }
}

impl fmt::Display for TurnUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.secure { "turns" } else { "turn" };
        write!(f, "{scheme}:{}", self.host_port())?;
        if !self.secure {
            let transport = match self.transport {
                TurnTransport::Udp => "udp",
                TurnTransport::Tcp => "tcp",
            };
            write!(f, "?transport={transport}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(secure: bool, host: &str, port: u16, transport: TurnTransport) -> TurnUrl {
        TurnUrl {
            secure,
            host: host.into(),
            port,
            transport,
        }
    }

    #[test]
    fn good_urls_parse_with_defaults() {
        use TurnTransport::*;
        for (text, expected) in [
            ("turn:example.org", url(false, "example.org", 3478, Udp)),
            ("turn:192.0.2.1:3479", url(false, "192.0.2.1", 3479, Udp)),
            (
                "turn:turn.example.org:80?transport=tcp",
                url(false, "turn.example.org", 80, Tcp),
            ),
            ("TURN:h?transport=UDP", url(false, "h", 3478, Udp)),
            ("turns:example.org", url(true, "example.org", 5349, Tcp)),
            ("turns:example.org:443", url(true, "example.org", 443, Tcp)),
            (
                "turns:example.org:443?transport=tcp",
                url(true, "example.org", 443, Tcp),
            ),
            (
                "turn:[2001:db8::1]:3478",
                url(false, "2001:db8::1", 3478, Udp),
            ),
            ("turn:[::1]", url(false, "::1", 3478, Udp)),
        ] {
            assert_eq!(TurnUrl::parse(text), Ok(expected.clone()), "{text}");
            // The canonical form parses back to the same value.
            assert_eq!(
                TurnUrl::parse(&expected.to_string()),
                Ok(expected),
                "{text}"
            );
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for text in [
            "",
            "turn",
            "stun:example.org",
            "http://example.org",
            "turn://example.org",
            "turn:",
            "turn::3478",
            "turn:example.org:",
            "turn:example.org:0",
            "turn:example.org:65536",
            "turn:example.org:99999999999",
            "turn:example.org:34a",
            "turn:example.org:+1",
            "turn:user@example.org",
            "turn:exa mple.org",
            "turn:[::1",
            "turn:[nope]:3478",
            "turn:[::1]x",
            "turn:example.org?transport=sctp",
            "turn:example.org?foo=bar",
            "turn:example.org?transport=udp&x=1",
            "turns:example.org?transport=udp",
            "turn:é.org",
        ] {
            assert!(
                matches!(TurnUrl::parse(text), Err(TurnError::BadUrl { .. })),
                "{text:?} should not parse"
            );
        }
    }

    #[test]
    fn stun_urls_parse_and_bad_ones_say_why() {
        let parsed = StunUrl::parse("stun:203.0.113.1").unwrap();
        assert_eq!((parsed.host.as_str(), parsed.port), ("203.0.113.1", 3478));
        assert_eq!(parsed.host_port(), "203.0.113.1:3478");
        let v6 = StunUrl::parse("STUN:[2001:db8::1]:19302").unwrap();
        assert_eq!(v6.host_port(), "[2001:db8::1]:19302");
        for bad in [
            "",
            "stun",
            "stun:",
            "stuns:example.org",
            "turn:example.org",
            "stun://example.org",
            "stun:example.org?transport=udp",
            "stun:example.org:99999",
            "stun:exa mple.org",
        ] {
            assert!(StunUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
