//! Which local addresses become host candidates.
//!
//! One UDP socket per usable interface address, so every datagram's local address is known
//! (a wildcard socket would hide which interface a datagram came in on, and str0m pairs
//! candidates by it).

use std::net::{IpAddr, SocketAddr};

use crate::Error;

/// The addresses to bind: the configured one, or one per usable interface address
/// (up, not link-local; loopback only when there is nothing else).
///
/// IPv6 addresses are used only when the host has no usable IPv4 one. With both families
/// bound, sessions between two peers on a host with 192.0.2.2 and fd00::2 failed to connect
/// in 2 of 5 runs (never within 20 s), and in 0 of 6 with IPv4 alone; until the IPv6 path is
/// understood, a session that connects every time matters more than an extra candidate.
pub(crate) fn bind_addresses(configured: Option<SocketAddr>) -> Result<Vec<SocketAddr>, Error> {
    if let Some(addr) = configured {
        return Ok(vec![addr]);
    }
    let interfaces = if_addrs::get_if_addrs()?;
    let mut usable: Vec<IpAddr> = interfaces
        .iter()
        .map(|i| i.ip())
        .filter(|ip| is_usable(*ip))
        .collect();
    if usable.iter().any(IpAddr::is_ipv4) {
        usable.retain(IpAddr::is_ipv4);
    }
    let chosen: Vec<SocketAddr> = if usable.iter().any(|ip| !ip.is_loopback()) {
        usable
            .into_iter()
            .filter(|ip| !ip.is_loopback())
            .map(|ip| SocketAddr::new(ip, 0))
            .collect()
    } else {
        usable
            .into_iter()
            .map(|ip| SocketAddr::new(ip, 0))
            .collect()
    };
    if chosen.is_empty() {
        return Err(Error::NoInterface);
    }
    Ok(chosen)
}

fn is_usable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !v4.is_unspecified() && !v4.is_link_local() && !v4.is_multicast(),
        // Link-local IPv6 needs a scope id, which candidates cannot carry.
        IpAddr::V6(v6) => !v6.is_unspecified() && !v6.is_multicast() && !v6.is_unicast_link_local(),
    }
}

/// The first `a=mid:` of an SDP: the media id candidates are signaled with (everything is
/// bundled on one transport, so one mid serves all).
pub(crate) fn first_mid(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix("a=mid:"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_address_is_used_alone() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(bind_addresses(Some(addr)).unwrap(), vec![addr]);
    }

    #[test]
    fn interfaces_give_at_least_one_address() {
        let addrs = bind_addresses(None).unwrap();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| is_usable(a.ip())));
    }

    #[test]
    fn first_mid_is_found() {
        let sdp =
            "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 45\r\na=mid:0\r\nm=application 9\r\na=mid:1\r\n";
        assert_eq!(first_mid(sdp).as_deref(), Some("0"));
        assert_eq!(first_mid("v=0\r\n"), None);
    }
}
