//! The tokio shell around [`Client`]: one function that asks one server over a socket the caller
//! owns, moving datagrams and timers and nothing else.

use std::net::SocketAddr;
use std::time::Instant;

use tokio::net::UdpSocket;

use crate::{Client, Error, Event, TransactionConfig};

/// Asks `server` for the address `socket` has as seen from there (its server-reflexive address).
///
/// Retransmits as `config` says and returns [`Error::TimedOut`] when the server never answers.
/// Datagrams that are not the answer are discarded, so use a socket nothing else reads from.
pub async fn query_mapped_address(
    socket: &UdpSocket,
    server: SocketAddr,
    config: TransactionConfig,
) -> Result<SocketAddr, Error> {
    let io = |e: std::io::Error| Error::Io(e.to_string());
    let mut client = Client::new(config);
    client.start_binding(Instant::now(), server)?;
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(transmit) = client.poll_transmit() {
            socket
                .send_to(&transmit.contents, transmit.destination)
                .await
                .map_err(io)?;
        }
        if let Some(event) = client.poll_event() {
            return match event {
                Event::Mapped { mapped, .. } => Ok(mapped),
                Event::Failed { server, error, .. } => Err(Error::Refused { server, error }),
                Event::TimedOut { server, .. } => Err(Error::TimedOut(server)),
            };
        }
        let Some(deadline) = client.poll_timeout() else {
            return Err(Error::TimedOut(server));
        };
        let received = tokio::time::timeout_at(deadline.into(), socket.recv_from(&mut buf)).await;
        match received {
            Ok(Ok((len, source))) => {
                client.handle_datagram(source, &buf[..len]);
            }
            Ok(Err(e)) => return Err(io(e)),
            Err(_elapsed) => client.handle_timeout(Instant::now()),
        }
    }
}
