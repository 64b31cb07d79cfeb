//! TURN allocations in the shell: one per TURN server and socket family, shared by every session
//! on an endpoint. Over UDP an allocation's traffic uses one of the endpoint's sockets; over TCP
//! (for networks that block UDP) it uses a stream of its own, read and written by a small task
//! that only moves whole frames (RFC 8656 §5 framing, via [`StreamFramer`]) between the socket
//! and the endpoint's task.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use rtcdesk_stun::turn::{Allocation, AllocationConfig, StreamFramer, TurnTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use crate::config::TurnServer;
use crate::session::Session;
use crate::Error;

/// Frames waiting to be written to one TURN server's stream; beyond this they are dropped, as
/// a congested UDP path would drop datagrams (ICE and SCTP recover; a stalled stream must not
/// grow memory).
const STREAM_QUEUE: usize = 1024;

/// How long connecting to a TURN server over TCP may take before the relay counts as failed.
const STREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How one relay reaches its TURN server.
pub(crate) enum RelayLink {
    /// Datagrams from the endpoint's socket bound to this address.
    Udp(SocketAddr),
    /// Frames through the stream task; what it reads comes back as [`StreamEvent`]s.
    Stream(mpsc::Sender<Vec<u8>>),
}

/// What a stream task reports, tagged with its relay's index.
pub(crate) enum StreamEvent {
    /// One whole STUN message or ChannelData frame from the TURN server.
    Frame(Vec<u8>),
    /// The stream could not be opened, or broke; nothing more will come.
    Failed(String),
}

/// One TURN allocation on one TURN server, shared by every session on the endpoint.
pub(crate) struct Relay {
    pub(crate) link: RelayLink,
    /// The local address the allocation's traffic leaves from (a UDP socket's, or for TCP the
    /// unspecified address of the server's family): the relayed candidate's base.
    pub(crate) base: SocketAddr,
    pub(crate) allocation: Allocation,
    pub(crate) state: RelayState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RelayState {
    Allocating,
    Allocated(SocketAddr),
    Failed(String),
}

/// Starts an allocation per TURN server: over UDP one per socket of the server's address
/// family; over TCP one, on a stream whose task reports to `stream_events`.
pub(crate) fn start_relays(
    bases: &[SocketAddr],
    servers: &[TurnServer],
    stream_events: &mpsc::Sender<(usize, StreamEvent)>,
    wake: &std::sync::Arc<Notify>,
    now: Instant,
) -> Result<Vec<Relay>, Error> {
    let mut relays = Vec::new();
    for server in servers {
        let mut config = AllocationConfig::new(server.server, &server.username, &server.password);
        config.transport = server.transport;
        match server.transport {
            TurnTransport::Udp => {
                for &base in bases {
                    if base.is_ipv4() != server.server.is_ipv4() {
                        continue;
                    }
                    relays.push(Relay::start(
                        config.clone(),
                        RelayLink::Udp(base),
                        base,
                        now,
                    )?);
                }
            }
            TurnTransport::Tcp => {
                let (outgoing_tx, outgoing_rx) = mpsc::channel(STREAM_QUEUE);
                let index = relays.len();
                tokio::spawn(run_stream(
                    index,
                    server.server,
                    outgoing_rx,
                    stream_events.clone(),
                    wake.clone(),
                ));
                let unspecified = match server.server.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                let base = SocketAddr::new(unspecified, 0);
                relays.push(Relay::start(
                    config,
                    RelayLink::Stream(outgoing_tx),
                    base,
                    now,
                )?);
            }
        }
    }
    Ok(relays)
}

impl Relay {
    fn start(
        config: AllocationConfig,
        link: RelayLink,
        base: SocketAddr,
        now: Instant,
    ) -> Result<Relay, Error> {
        let mut allocation = Allocation::new(config).map_err(Error::Turn)?;
        allocation.start_allocate(now).map_err(Error::Turn)?;
        Ok(Relay {
            link,
            base,
            allocation,
            state: RelayState::Allocating,
        })
    }

    /// True for a UDP relay whose traffic uses the socket bound to `local`.
    pub(crate) fn uses_socket(&self, local: SocketAddr) -> bool {
        matches!(self.link, RelayLink::Udp(base) if base == local)
    }

    /// Tells a session what this relay is to it: a candidate, a failure, or one to wait for.
    pub(crate) fn introduce(&self, session: &mut Session, now: Instant) {
        match &self.state {
            RelayState::Allocating => session.expect_relay(),
            RelayState::Allocated(relayed) => {
                session.expect_relay();
                if let Err(e) = session.add_relay_candidate(*relayed, self.base, now) {
                    tracing::warn!("relayed candidate refused: {e}");
                }
            }
            RelayState::Failed(reason) => {
                // A session that starts after the failure still hears why it has no relay.
                session.expect_relay();
                session.relay_failed(self.allocation.server(), reason.clone());
            }
        }
    }
}

/// Connects to the TURN server over TCP, then moves frames both ways until the endpoint drops
/// its sender (after the allocation's closing Refresh is written) or the stream breaks.
async fn run_stream(
    index: usize,
    server: SocketAddr,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<(usize, StreamEvent)>,
    wake: std::sync::Arc<Notify>,
) {
    let report = |event| {
        let events = events.clone();
        let wake = wake.clone();
        async move {
            let _ = events.send((index, event)).await;
            wake.notify_one();
        }
    };
    let stream = match tokio::time::timeout(STREAM_CONNECT_TIMEOUT, TcpStream::connect(server))
        .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            report(StreamEvent::Failed(format!(
                "TURN server {server} unreachable over TCP: {e}"
            )))
            .await;
            return;
        }
        Err(_) => {
            report(StreamEvent::Failed(format!(
                "TURN server {server} unreachable over TCP: no connection within {STREAM_CONNECT_TIMEOUT:?}"
            )))
            .await;
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    let failure = loop {
        tokio::select! {
            frame = outgoing.recv() => match frame {
                Some(frame) => {
                    if let Err(e) = writer.write_all(&frame).await {
                        break format!("TURN server {server}: TCP write failed: {e}");
                    }
                }
                None => {
                    let _ = writer.shutdown().await;
                    return;
                }
            },
            read = reader.read(&mut buf) => match read {
                Ok(0) => break format!("TURN server {server} closed the TCP connection"),
                Ok(len) => {
                    if let Err(e) = framer.push(&buf[..len]) {
                        break format!("TURN server {server}: {e}");
                    }
                    loop {
                        match framer.next_frame() {
                            Ok(Some(frame)) => report(StreamEvent::Frame(frame)).await,
                            Ok(None) => break,
                            Err(e) => {
                                report(StreamEvent::Failed(format!("TURN server {server}: {e}"))).await;
                                return;
                            }
                        }
                    }
                }
                Err(e) => break format!("TURN server {server}: TCP read failed: {e}"),
            },
        }
    };
    report(StreamEvent::Failed(failure)).await;
}
