//! Turning the `ice_servers` a signaling server hands out (browser `RTCIceServer` shape) into the
//! STUN addresses and TURN servers a session is configured with.

use std::net::SocketAddr;

use rtcdesk_proto::signal::IceServer;
use rtcdesk_stun::turn::{StunUrl, TurnUrl};

use crate::TurnServer;

/// The usable part of an `ice_servers` list, and a line for each URL that was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedIceServers {
    /// STUN servers, for server-reflexive candidates.
    pub stun: Vec<SocketAddr>,
    /// TURN servers with their credentials, for relayed candidates.
    pub turn: Vec<TurnServer>,
    /// One line per URL that could not be used and why (unknown scheme, no credentials,
    /// no address), for the log: one bad entry must not cost the others.
    pub skipped: Vec<String>,
}

impl ResolvedIceServers {
    /// True when nothing usable came out of the list.
    pub fn is_empty(&self) -> bool {
        self.stun.is_empty() && self.turn.is_empty()
    }
}

/// Most URLs taken from one list: a hostile signaling server cannot make a client resolve
/// thousands of names.
pub const MAX_ICE_URLS: usize = 16;

/// Resolves every URL of `servers` (DNS on tokio's resolver, so it never blocks a network task).
/// IPv4 addresses only, as the sessions bind IPv4 sockets.
pub async fn resolve_ice_servers(servers: &[IceServer]) -> ResolvedIceServers {
    let mut resolved = ResolvedIceServers::default();
    // Plain loops, no iterator closures held across the awaits: the future stays `Send` for
    // any borrow of `servers` (a closure here makes callers' futures not general enough).
    let mut index = 0;
    for server in servers {
        for url in &server.urls {
            index += 1;
            if index > MAX_ICE_URLS {
                resolved
                    .skipped
                    .push(format!("{url}: more than {MAX_ICE_URLS} ICE server URLs"));
                continue;
            }
            resolve_one(server, url, &mut resolved).await;
        }
    }
    resolved
}

impl crate::PeerConfig {
    /// Takes the signaling server's ICE servers when the user configured no STUN or TURN server
    /// of their own (theirs win); entries that cannot be used are logged and skipped.
    pub async fn adopt_ice_servers(&mut self, servers: &[IceServer]) {
        if !self.stun_servers.is_empty() || !self.turn_servers.is_empty() {
            return;
        }
        let resolved = resolve_ice_servers(servers).await;
        for skipped in &resolved.skipped {
            tracing::warn!("ICE server from the signaling server not used: {skipped}");
        }
        self.stun_servers = resolved.stun;
        self.turn_servers = resolved.turn;
    }
}

/// Adds what one URL of `server` gives to `resolved`, or a line saying why it gives nothing.
async fn resolve_one(server: &IceServer, url: &str, resolved: &mut ResolvedIceServers) {
    let shown: String = url.chars().take(200).collect();
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("stun:") {
        match StunUrl::parse(url) {
            Ok(stun) => match lookup(&stun.host_port()).await {
                Ok(addr) => resolved.stun.push(addr),
                Err(e) => resolved.skipped.push(format!("{shown}: {e}")),
            },
            Err(e) => resolved.skipped.push(e.to_string()),
        }
    } else if lower.starts_with("turn:") || lower.starts_with("turns:") {
        let parsed = match TurnUrl::parse(url) {
            Ok(parsed) => parsed,
            Err(e) => {
                resolved.skipped.push(e.to_string());
                return;
            }
        };
        let (Some(username), Some(password)) = (&server.username, &server.credential) else {
            resolved
                .skipped
                .push(format!("{shown}: no username and credential"));
            return;
        };
        match lookup(&parsed.host_port()).await {
            Ok(addr) => resolved.turn.push(TurnServer {
                server: addr,
                transport: parsed.transport,
                username: username.clone(),
                password: password.clone(),
                tls: crate::config::TurnTls::for_url(&parsed),
            }),
            Err(e) => resolved.skipped.push(format!("{shown}: {e}")),
        }
    } else {
        resolved
            .skipped
            .push(format!("{shown}: not a stun:, turn: or turns: URL"));
    }
}

async fn lookup(host_port: &str) -> Result<SocketAddr, String> {
    tokio::net::lookup_host(host_port)
        .await
        .map_err(|e| format!("cannot resolve {host_port}: {e}"))?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| format!("{host_port} has no IPv4 address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtcdesk_stun::turn::TurnTransport;

    fn server(urls: &[&str], credentials: Option<(&str, &str)>) -> IceServer {
        IceServer {
            urls: urls.iter().map(|s| s.to_string()).collect(),
            username: credentials.map(|(u, _)| u.to_string()),
            credential: credentials.map(|(_, p)| p.to_string()),
        }
    }

    #[tokio::test]
    async fn stun_and_turn_urls_become_servers_and_bad_ones_are_skipped_with_a_reason() {
        let resolved = resolve_ice_servers(&[
            server(&["stun:127.0.0.1:3478", "stun:"], None),
            server(
                &["turn:127.0.0.1:3479", "turn:127.0.0.1:3479?transport=tcp"],
                Some(("1:u", "p")),
            ),
            server(&["turn:127.0.0.1"], None),
            server(&["http://example.org"], None),
        ])
        .await;
        assert_eq!(resolved.stun, vec!["127.0.0.1:3478".parse().unwrap()]);
        assert_eq!(resolved.turn.len(), 2);
        assert_eq!(resolved.turn[0].transport, TurnTransport::Udp);
        assert_eq!(resolved.turn[1].transport, TurnTransport::Tcp);
        assert_eq!(resolved.turn[1].username, "1:u");
        assert_eq!(resolved.skipped.len(), 3, "{:?}", resolved.skipped);
        assert!(resolved.skipped[1].contains("no username"));
    }

    #[tokio::test]
    async fn a_hostile_list_is_cut_at_the_limit() {
        let urls: Vec<String> = (0..1000)
            .map(|i| format!("stun:127.0.0.{}", i % 250))
            .collect();
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let resolved = resolve_ice_servers(&[server(&refs, None)]).await;
        assert_eq!(resolved.stun.len(), MAX_ICE_URLS);
        assert_eq!(resolved.skipped.len(), 1000 - MAX_ICE_URLS);
    }
}
