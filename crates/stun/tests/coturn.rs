//! Asks a real STUN server, coturn's `turnserver` on loopback, for our mapped address.
//!
//! Needs `turnserver` (the Debian `coturn` package, which `cargo xtask ci` installs).

use std::time::Duration;

mod common;

use rtcdesk_stun::{net::query_mapped_address, TransactionConfig};

#[tokio::test]
async fn coturn_on_loopback_reports_our_address() {
    let coturn = common::coturn::Coturn::start();
    let server = coturn.addr;
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ours = socket.local_addr().unwrap();
    // The server needs a moment to open its port: the transaction's own retransmissions
    // (100 ms doubling, 7 requests: ~12 s in all) cover that without any sleep.
    let config = TransactionConfig {
        initial_rto: Duration::from_millis(100),
        ..TransactionConfig::default()
    };
    let mapped = query_mapped_address(&socket, server, config).await.unwrap();
    assert_eq!(mapped, ours);
}
