//! TURN allocations in the shell: one per TURN server and socket family, shared by every session
//! on an endpoint. Over UDP an allocation's traffic uses one of the endpoint's sockets; over TCP
//! (for networks that block UDP) or TLS (`turns:`, for firewalls that pass only TLS) it uses a
//! stream of its own, read and written by a small task that only moves whole frames (RFC 8656 §5
//! framing, via [`StreamFramer`]) between the socket and the endpoint's task.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtcdesk_stun::turn::{Allocation, AllocationConfig, StreamFramer, TurnTransport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

use crate::config::{TurnServer, TurnTls};
use crate::session::Session;
use crate::Error;

/// Frames waiting to be written to one TURN server's stream; beyond this they are dropped, as
/// a congested UDP path would drop datagrams (ICE and SCTP recover; a stalled stream must not
/// grow memory).
const STREAM_QUEUE: usize = 1024;

/// How long connecting to a TURN server over TCP (and the TLS handshake for `turns:`, again)
/// may take before the relay counts as failed.
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
                let tls = match &server.tls {
                    Some(tls) => Some(TlsTarget::new(tls).map_err(|reason| {
                        Error::Turn(rtcdesk_stun::turn::TurnError::BadUrl {
                            url: format!("turns:{}", server.server),
                            reason,
                        })
                    })?),
                    None => None,
                };
                let (outgoing_tx, outgoing_rx) = mpsc::channel(STREAM_QUEUE);
                let reporter = Reporter {
                    index: relays.len(),
                    events: stream_events.clone(),
                    wake: wake.clone(),
                };
                tokio::spawn(run_stream(server.server, tls, outgoing_rx, reporter));
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

/// Where a stream task's frames and its end go: its relay's slot in the endpoint's task.
struct Reporter {
    index: usize,
    events: mpsc::Sender<(usize, StreamEvent)>,
    wake: Arc<Notify>,
}

impl Reporter {
    async fn report(&self, event: StreamEvent) {
        let _ = self.events.send((self.index, event)).await;
        self.wake.notify_one();
    }
}

/// A `turns:` server's TLS setup: the name to check and the client configuration.
struct TlsTarget {
    name: rustls::pki_types::ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
}

impl TlsTarget {
    fn new(tls: &TurnTls) -> Result<TlsTarget, &'static str> {
        let name = rustls::pki_types::ServerName::try_from(tls.name.clone())
            .map_err(|_| "the host is not a valid TLS server name")?;
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in &tls.extra_roots {
            roots
                .add(cert.clone())
                .map_err(|_| "an extra CA certificate is not usable")?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| "no TLS protocol version available")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsTarget {
            name,
            config: Arc::new(config),
        })
    }
}

/// Connects to the TURN server over TCP (and TLS for `turns:`), then moves frames both ways
/// until the endpoint drops its sender (after the allocation's closing Refresh is written) or
/// the stream breaks.
async fn run_stream(
    server: SocketAddr,
    tls: Option<TlsTarget>,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    reporter: Reporter,
) {
    let over = if tls.is_some() { "TLS" } else { "TCP" };
    let stream = match tokio::time::timeout(STREAM_CONNECT_TIMEOUT, TcpStream::connect(server))
        .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            let reason = format!("TURN server {server} unreachable over {over}: {e}");
            return reporter.report(StreamEvent::Failed(reason)).await;
        }
        Err(_) => {
            let reason = format!(
                "TURN server {server} unreachable over {over}: no connection within {STREAM_CONNECT_TIMEOUT:?}"
            );
            return reporter.report(StreamEvent::Failed(reason)).await;
        }
    };
    let _ = stream.set_nodelay(true);
    let failure = match tls {
        None => pump(stream, server, &mut outgoing, &reporter).await,
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config);
            match tokio::time::timeout(STREAM_CONNECT_TIMEOUT, connector.connect(tls.name, stream))
                .await
            {
                Ok(Ok(stream)) => pump(stream, server, &mut outgoing, &reporter).await,
                Ok(Err(e)) => Some(format!("TURN server {server}: TLS handshake failed: {e}")),
                Err(_) => Some(format!(
                    "TURN server {server}: no TLS handshake within {STREAM_CONNECT_TIMEOUT:?}"
                )),
            }
        }
    };
    if let Some(failure) = failure {
        reporter.report(StreamEvent::Failed(failure)).await;
    }
}

/// Moves frames over an open stream; `None` when the endpoint closed it, else why it broke.
async fn pump<S: AsyncRead + AsyncWrite>(
    stream: S,
    server: SocketAddr,
    outgoing: &mut mpsc::Receiver<Vec<u8>>,
    reporter: &Reporter,
) -> Option<String> {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut framer = StreamFramer::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            frame = outgoing.recv() => match frame {
                Some(frame) => {
                    if let Err(e) = writer.write_all(&frame).await {
                        return Some(format!("TURN server {server}: write failed: {e}"));
                    }
                }
                None => {
                    let _ = writer.shutdown().await;
                    return None;
                }
            },
            read = reader.read(&mut buf) => match read {
                Ok(0) => return Some(format!("TURN server {server} closed the connection")),
                Ok(len) => {
                    if let Err(e) = framer.push(&buf[..len]) {
                        return Some(format!("TURN server {server}: {e}"));
                    }
                    loop {
                        match framer.next_frame() {
                            Ok(Some(frame)) => reporter.report(StreamEvent::Frame(frame)).await,
                            Ok(None) => break,
                            Err(e) => return Some(format!("TURN server {server}: {e}")),
                        }
                    }
                }
                Err(e) => return Some(format!("TURN server {server}: read failed: {e}")),
            },
        }
    }
}
