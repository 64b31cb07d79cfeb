//! `rtcdesk-stun SERVER[:PORT] [--bind ADDR]`: prints this host's mapped (server-reflexive)
//! address as a STUN server sees it, e.g. to check NAT traversal by hand.

use std::net::SocketAddr;
use std::process::ExitCode;

use rtcdesk_stun::{net::query_mapped_address, TransactionConfig};

const USAGE: &str = "usage: rtcdesk-stun SERVER[:PORT] [--bind ADDR:PORT]
Asks the STUN server for this host's mapped address and prints it (default port 3478).";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("rtcdesk-stun: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let mut server = None;
    let mut bind: Option<SocketAddr> = None;
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            "--bind" => {
                let value = iter.next().ok_or("--bind needs ADDR:PORT")?;
                bind = Some(value.parse().map_err(|e| format!("--bind {value}: {e}"))?);
            }
            _ if server.is_none() => server = Some(arg),
            _ => return Err(format!("unexpected argument `{arg}`\n{USAGE}")),
        }
    }
    let server = server.ok_or(USAGE)?;
    let with_port = if server
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !server.ends_with(']')
    {
        server.clone()
    } else {
        format!("{server}:3478")
    };
    let server_addr = tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| format!("resolving {with_port}: {e}"))?
        .find(|a| bind.is_none_or(|b| b.is_ipv4() == a.is_ipv4()))
        .ok_or_else(|| format!("{with_port} has no usable address"))?;
    let bind = bind.unwrap_or_else(|| {
        if server_addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        }
    });
    let socket = tokio::net::UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("binding {bind}: {e}"))?;
    let mapped = query_mapped_address(&socket, server_addr, TransactionConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    println!("{mapped}");
    Ok(())
}
