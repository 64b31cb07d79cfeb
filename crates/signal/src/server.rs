//! The tokio shell around [`Router`]: accepts TCP (optionally TLS) connections, upgrades them to
//! WebSockets, and moves frames and timers. No protocol rule lives here.
//!
//! One task per connection reads frames and writes what it is told; one router task owns the
//! [`Router`], fed by a bounded channel of connection events. Each connection has a small bounded
//! outbound queue: a client that does not read its messages fills it and is dropped rather than
//! making the server buffer for it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtcdesk_signal::server::ServerError> {
//! use rtcdesk_signal::server::{Server, ServerConfig};
//! let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap())).await?;
//! println!("signaling on {}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::router::{ConnId, Output, Router, RouterConfig, CLOSE_POLICY, CLOSE_TOO_BIG};
use crate::tls::ServerTls;

/// Messages queued for one connection before it counts as not reading and is dropped. Large
/// enough for the largest burst the router sends one connection at once: a proctor is told about every
/// member in one go when its room ends or a whole hall's network drops (one roster line per
/// session, at most `max_sessions_per_connection`, 64 by default), with room to spare.
const OUTBOUND_QUEUE: usize = 256;
/// Connection events queued for the router task before connection tasks wait.
const EVENT_QUEUE: usize = 4096;
/// How long a peer may take for its TLS and WebSocket handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the peer's close frame after sending ours.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// How to run a signaling server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free one (see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// The protocol's limits and timers.
    pub router: RouterConfig,
    /// `Some` serves `wss://`, `None` plain `ws://`.
    pub tls: Option<ServerTls>,
}

impl ServerConfig {
    /// Plain `ws://` on `listen` with the default limits.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            router: RouterConfig::default(),
            tls: None,
        }
    }

    /// The WebSocket settings for every accepted connection: frames and messages capped at the
    /// router's limit (tungstenite then refuses bigger ones, and the shell closes with 1009),
    /// and small buffers so an idle connection costs little memory.
    pub fn websocket_config(&self) -> WebSocketConfig {
        let max = self.router.max_message_size;
        WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_write_buffer_size(max * 4)
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address could not be bound (in use, not local, no permission).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A running signaling server. Dropping it leaves the server running in the background; call
/// [`shutdown`](Self::shutdown) to stop it.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    tls: bool,
    stop: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
    router_task: JoinHandle<()>,
}

/// What a connection task tells the router task.
enum Event {
    Open {
        conn: ConnId,
        peer: SocketAddr,
        outbound: mpsc::Sender<Command>,
    },
    Text {
        conn: ConnId,
        text: Utf8Bytes,
    },
    Binary {
        conn: ConnId,
        len: usize,
    },
    Alive {
        conn: ConnId,
    },
    Closed {
        conn: ConnId,
    },
}

/// What the router task tells a connection task.
#[derive(Debug)]
enum Command {
    Text(String),
    Ping,
    Close(u16, &'static str),
}

impl Server {
    /// Binds the listener and starts the server on the current tokio runtime.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let (stop, stopped) = watch::channel(false);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let router = Router::new(config.router.clone(), Instant::now());
        let router_task = tokio::spawn(run_router(router, events_rx, stopped.clone()));
        let websocket = config.websocket_config();
        let tls = config
            .tls
            .map(|t| tokio_rustls::TlsAcceptor::from(t.config));
        let is_tls = tls.is_some();
        let accept_task = tokio::spawn(accept_loop(listener, tls, websocket, events_tx, stopped));
        tracing::info!(%local_addr, tls = is_tls, "signaling server listening");
        Ok(Self {
            local_addr,
            tls: is_tls,
            stop,
            accept_task,
            router_task,
        })
    }

    /// The address the server listens on (with the port chosen if 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL clients connect to: `ws://ADDR/` or `wss://ADDR/`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/", self.local_addr)
    }

    /// Stops accepting, closes every connection, and waits for the server's tasks to end.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept_task.await;
        let _ = self.router_task.await;
    }

    /// Waits until the server stops (it runs until [`shutdown`](Self::shutdown) or a fatal
    /// error); for binaries that serve forever.
    pub async fn wait(self) {
        let _ = self.router_task.await;
        let _ = self.accept_task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    websocket: WebSocketConfig,
    events: mpsc::Sender<Event>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut next_conn = 0u64;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, usually: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_conn += 1;
        let conn = ConnId(next_conn);
        let events = events.clone();
        // Two spawns, not one future with two branches: a plain connection's task then does not
        // carry room for the (larger) TLS stream state.
        match tls.clone() {
            None => {
                tokio::spawn(serve_upgrade(stream, conn, peer, websocket, events));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            serve_upgrade(stream, conn, peer, websocket, events).await
                        }
                        Ok(Err(error)) => {
                            tracing::debug!(%conn, %peer, %error, "TLS handshake failed")
                        }
                        Err(_) => tracing::debug!(%conn, %peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

async fn serve_upgrade<S>(
    stream: S,
    conn: ConnId,
    peer: SocketAddr,
    websocket: WebSocketConfig,
    events: mpsc::Sender<Event>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let upgrade = tokio_tungstenite::accept_async_with_config(stream, Some(websocket));
    let ws = match tokio::time::timeout(HANDSHAKE_TIMEOUT, upgrade).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(error)) => {
            tracing::debug!(%conn, %peer, %error, "WebSocket handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%conn, %peer, "WebSocket handshake timed out");
            return;
        }
    };
    let (outbound_tx, outbound_rx) = mpsc::channel(OUTBOUND_QUEUE);
    let open = Event::Open {
        conn,
        peer,
        outbound: outbound_tx,
    };
    if events.send(open).await.is_err() {
        return;
    }
    serve(ws, conn, outbound_rx, &events).await;
    let _ = events.send(Event::Closed { conn }).await;
}

/// Moves frames between one WebSocket and the router task until either side ends it.
async fn serve<S>(
    mut ws: WebSocketStream<S>,
    conn: ConnId,
    mut outbound: mpsc::Receiver<Command>,
    events: &mpsc::Sender<Event>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        tokio::select! {
            frame = ws.next() => {
                let event = match frame {
                    Some(Ok(Message::Text(text))) => Event::Text { conn, text },
                    Some(Ok(Message::Binary(data))) => Event::Binary { conn, len: data.len() },
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                        Event::Alive { conn }
                    }
                    // tungstenite answers the close frame; the stream then ends.
                    Some(Ok(Message::Close(_))) => continue,
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, .. }))) => {
                        tracing::debug!(%conn, size, "closing: frame over the size limit");
                        close(&mut ws, CLOSE_TOO_BIG, "message over the 64 KiB limit").await;
                        return;
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%conn, %error, "connection failed");
                        return;
                    }
                    None => return,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
            command = outbound.recv() => {
                let sent = match command {
                    Some(Command::Text(text)) => ws.send(Message::text(text)).await,
                    Some(Command::Ping) => ws.send(Message::Ping(Default::default())).await,
                    Some(Command::Close(code, reason)) => {
                        close(&mut ws, code, reason).await;
                        return;
                    }
                    None => {
                        // The router dropped us: we did not read our messages fast enough.
                        close(&mut ws, CLOSE_POLICY, "not reading messages fast enough").await;
                        return;
                    }
                };
                if let Err(error) = sent {
                    tracing::debug!(%conn, %error, "send failed");
                    return;
                }
            }
        }
    }
}

/// Sends a close frame and waits briefly for the peer's, so the reason reaches it.
async fn close<S>(ws: &mut WebSocketStream<S>, code: u16, reason: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    if ws.close(Some(frame)).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

async fn run_router(
    mut router: Router,
    mut events: mpsc::Receiver<Event>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut outbound: HashMap<ConnId, mpsc::Sender<Command>> = HashMap::new();
    loop {
        let deadline = router
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                let now = Instant::now();
                match event {
                    Event::Open { conn, peer, outbound: tx } => {
                        outbound.insert(conn, tx);
                        router.handle_open(conn, peer, now);
                    }
                    Event::Text { conn, text } => router.handle_text(conn, text.as_str(), now),
                    Event::Binary { conn, len } => router.handle_binary(conn, len, now),
                    Event::Alive { conn } => router.handle_alive(conn, now),
                    Event::Closed { conn } => {
                        outbound.remove(&conn);
                        router.handle_close(conn, now);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline) => router.handle_timeout(Instant::now()),
            _ = stopped.changed() => {
                for tx in outbound.values() {
                    let _ = tx.try_send(Command::Close(1001, "server shutting down"));
                }
                return;
            }
        }
        deliver(&mut router, &mut outbound);
    }
}

/// Hands the router's outputs to the connection tasks, never waiting: a connection whose queue is
/// full is dropped (the router is told it closed, so its peers get `left`).
fn deliver(router: &mut Router, outbound: &mut HashMap<ConnId, mpsc::Sender<Command>>) {
    while let Some(output) = router.poll_output() {
        let (conn, command) = match output {
            Output::Send { conn, text } => (conn, Command::Text(text)),
            Output::Ping { conn } => (conn, Command::Ping),
            Output::Close { conn, code, reason } => {
                if let Some(tx) = outbound.remove(&conn) {
                    let _ = tx.try_send(Command::Close(code, reason));
                }
                continue;
            }
        };
        let Some(tx) = outbound.get(&conn) else {
            continue;
        };
        if tx.try_send(command).is_err() {
            tracing::info!(%conn, "dropping a connection that does not read its messages");
            outbound.remove(&conn);
            router.handle_close(conn, Instant::now());
        }
    }
}
