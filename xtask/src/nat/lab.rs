//! The simulated networks of `cargo xtask nat`: network namespaces joined by veth pairs, with
//! nftables rules in the two routers.
//!
//! ```text
//!   rtcdn-puppet ── rtcdn-nat-p ──┐                ┌── rtcdn-nat-c ── rtcdn-ctrl
//!   198.51.100.2/26   .1 | 203.0.113.2/30   rtcdn-inet   203.0.113.6/30 | .65   198.51.100.66/26
//!                                   203.0.113.1, .5, and 203.0.113.10 (signaling, TURN)
//! ```
//!
//! Every name starts with [`PREFIX`], so leftovers of a run that was killed are found and
//! removed by the next one ([`remove_leftovers`]); a [`Lab`] removes its own when dropped.

use std::process::Command;

/// The prefix of every namespace the lab creates; nothing else on the machine may use it.
pub const PREFIX: &str = "rtcdn-";

/// The "internet": the signaling server and the TURN server live here.
pub const INTERNET: &str = "rtcdn-inet";
/// The puppet's host, behind [`PUPPET_ROUTER`].
pub const PUPPET_HOST: &str = "rtcdn-puppet";
/// The controller's host, behind [`CONTROLLER_ROUTER`].
pub const CONTROLLER_HOST: &str = "rtcdn-ctrl";
const PUPPET_ROUTER: &str = "rtcdn-nat-p";
const CONTROLLER_ROUTER: &str = "rtcdn-nat-c";

/// The address the signaling server and the TURN server listen on, in [`INTERNET`].
pub const SERVICE_IP: &str = "203.0.113.10";

/// What one side's router does to the traffic between its host and the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Router {
    /// Plain routing: the host's own address is reachable from the internet.
    Open,
    /// Linux NAPT (`masquerade`): one public port per local socket, whatever the destination
    /// (endpoint-independent mapping), port-restricted filtering through conntrack.
    Cone,
    /// `masquerade fully-random`: a fresh public port per destination (symmetric-like), so
    /// the port the STUN server saw is useless to the peer.
    Symmetric,
    /// A cone NAT that also drops all forwarded UDP: only TCP leaves this network.
    ConeNoUdp,
}

/// One side of the lab: the router namespace, the host namespace and their addresses.
struct Side {
    router: &'static str,
    host: &'static str,
    /// The internet's address on the link to the router, the router's default gateway.
    inet_ip: &'static str,
    /// The router's public address (on a /30 with `inet_ip`).
    public_ip: &'static str,
    /// The router's address on the host's /26, the host's default gateway.
    lan_ip: &'static str,
    /// The host's address.
    host_ip: &'static str,
    /// The host's /26, routed by the internet to the router only when the router is [`Router::Open`].
    lan_net: &'static str,
}

const PUPPET_SIDE: Side = Side {
    router: PUPPET_ROUTER,
    host: PUPPET_HOST,
    inet_ip: "203.0.113.1",
    public_ip: "203.0.113.2",
    lan_ip: "198.51.100.1",
    host_ip: "198.51.100.2",
    lan_net: "198.51.100.0/26",
};

const CONTROLLER_SIDE: Side = Side {
    router: CONTROLLER_ROUTER,
    host: CONTROLLER_HOST,
    inet_ip: "203.0.113.5",
    public_ip: "203.0.113.6",
    lan_ip: "198.51.100.65",
    host_ip: "198.51.100.66",
    lan_net: "198.51.100.64/26",
};

/// A built topology; dropping it kills whatever still runs in its namespaces and deletes them.
pub struct Lab {
    namespaces: Vec<&'static str>,
}

impl Lab {
    /// Builds the five namespaces with the given routers. On an error, what was built so far
    /// is removed again (the returned error says which command failed).
    pub fn build(puppet: Router, controller: Router) -> Result<Lab, String> {
        let mut lab = Lab {
            namespaces: Vec::new(),
        };
        for ns in [
            INTERNET,
            PUPPET_ROUTER,
            PUPPET_HOST,
            CONTROLLER_ROUTER,
            CONTROLLER_HOST,
        ] {
            ip(&["netns", "add", ns])?;
            lab.namespaces.push(ns);
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        ip(&[
            "-n",
            INTERNET,
            "addr",
            "add",
            &format!("{SERVICE_IP}/32"),
            "dev",
            "lo",
        ])?;
        // Like the real internet, send everything without a route somewhere rather than fail:
        // a TURN server whose send to a peer's private address gets "network unreachable"
        // closes that whole allocation.
        // (No dummy devices on every kernel: a veth pair whose far end takes frames for a
        // made-up MAC address and drops them.)
        ip(&[
            "-n", INTERNET, "link", "add", "void", "type", "veth", "peer", "name", "void-end",
        ])?;
        ip(&["-n", INTERNET, "link", "set", "void-end", "up"])?;
        ip(&[
            "-n",
            INTERNET,
            "addr",
            "add",
            "203.0.113.253/30",
            "dev",
            "void",
        ])?;
        ip(&["-n", INTERNET, "link", "set", "void", "up"])?;
        ip(&[
            "-n",
            INTERNET,
            "neigh",
            "add",
            "203.0.113.254",
            "lladdr",
            "02:00:00:00:00:01",
            "dev",
            "void",
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            INTERNET,
            "route",
            "add",
            "default",
            "via",
            "203.0.113.254",
        ])?;
        for (side, router, tag) in [
            (&PUPPET_SIDE, puppet, "p"),
            (&CONTROLLER_SIDE, controller, "c"),
        ] {
            build_side(side, router, tag)?;
        }
        Ok(lab)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            remove_namespace(ns);
        }
    }
}

/// Wires one router and its host to the internet and loads the router's rules.
fn build_side(side: &Side, router: Router, tag: &str) -> Result<(), String> {
    let (inet_if, wan_if) = (format!("to-{tag}"), "wan".to_string());
    ip(&[
        "-n",
        INTERNET,
        "link",
        "add",
        &inet_if,
        "type",
        "veth",
        "peer",
        "name",
        &wan_if,
        "netns",
        side.router,
    ])?;
    ip(&[
        "-n",
        side.router,
        "link",
        "add",
        "lan",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        side.host,
    ])?;
    let address = |ns: &str, cidr: String, dev: &str| -> Result<(), String> {
        ip(&["-n", ns, "addr", "add", &cidr, "dev", dev])?;
        ip(&["-n", ns, "link", "set", dev, "up"])
    };
    address(INTERNET, format!("{}/30", side.inet_ip), &inet_if)?;
    address(side.router, format!("{}/30", side.public_ip), &wan_if)?;
    address(side.router, format!("{}/26", side.lan_ip), "lan")?;
    address(side.host, format!("{}/26", side.host_ip), "eth0")?;
    ip(&[
        "-n",
        side.router,
        "route",
        "add",
        "default",
        "via",
        side.inet_ip,
    ])?;
    ip(&[
        "-n",
        side.host,
        "route",
        "add",
        "default",
        "via",
        side.lan_ip,
    ])?;
    in_ns(
        side.router,
        &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
    )?;
    if router == Router::Open {
        ip(&[
            "-n",
            INTERNET,
            "route",
            "add",
            side.lan_net,
            "via",
            side.public_ip,
        ])?;
        return Ok(());
    }
    let ruleset = nat_rules(router);
    let mut command = Command::new("ip");
    command.args(["netns", "exec", side.router, "nft", "-f", "-"]);
    run_with_stdin(&mut command, &ruleset)
}

/// The nftables rules of a NAT router whose public interface is `wan`.
fn nat_rules(router: Router) -> String {
    let masquerade = match router {
        Router::Symmetric => "masquerade fully-random",
        _ => "masquerade",
    };
    let drop_udp = if router == Router::ConeNoUdp {
        "meta l4proto udp drop"
    } else {
        ""
    };
    // Unsolicited packets from the internet are dropped, as a home router does: otherwise a
    // peer's early check creates a conntrack entry that steals the port the local side's
    // later outgoing mapping wants (FACTS.md, "Home-router realism").
    format!(
        "table ip lab {{
  chain post {{ type nat hook postrouting priority srcnat; oifname \"wan\" {masquerade}; }}
  chain inbound {{ type filter hook input priority filter; iifname \"wan\" ct state new drop; }}
  chain forwarding {{ type filter hook forward priority filter;
    {drop_udp}
    iifname \"wan\" ct state new drop;
  }}
}}
"
    )
}

/// Removes every namespace left by an earlier run (one killed before it could clean up),
/// killing the processes still inside first.
pub fn remove_leftovers() -> Result<(), String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map_err(|e| format!("ip netns list: could not start: {e}"))?;
    let list = String::from_utf8_lossy(&output.stdout);
    for ns in list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| name.starts_with(PREFIX))
    {
        println!("    removing namespace {ns} left by an earlier run");
        remove_namespace(ns);
    }
    Ok(())
}

/// Kills the processes in a namespace, then deletes it; errors are reported, not returned,
/// because this runs during cleanup.
fn remove_namespace(ns: &str) {
    if let Ok(output) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&output.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    if let Err(error) = ip(&["netns", "del", ns]) {
        eprintln!("xtask nat: {error}");
    }
}

/// Runs a command inside a namespace, failing on a non-zero exit.
fn in_ns(ns: &str, args: &[&str]) -> Result<(), String> {
    let mut command = Command::new("ip");
    command.args(["netns", "exec", ns]).args(args);
    run(&mut command)
}

fn ip(args: &[&str]) -> Result<(), String> {
    run(Command::new("ip").args(args))
}

fn run(command: &mut Command) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("{command:?}: could not start: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn run_with_stdin(command: &mut Command, input: &str) -> Result<(), String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{command:?}: could not start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| format!("{command:?}: writing its input: {e}"))?;
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{command:?}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}\n{input}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}
