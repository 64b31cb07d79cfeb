//! The tokio shell around [`Router`]: accepts TCP (optionally TLS) connections, serves HTTP/1.1
//! on them with hyper (the browser controller page, [`web`]), upgrades signaling requests to
//! WebSockets, and moves frames and timers. No protocol rule lives here.
//!
//! HTTP and the WebSocket share the one listener: a `GET` with `Upgrade: websocket` at `/` or
//! [`web::SIGNAL_PATH`] is answered 101 by hyper, whose upgraded connection tokio-tungstenite
//! then takes over (`from_raw_socket`); any other request gets a file of the page or an error.
//! Request heads are capped (8 KiB, 48 headers, answered 431), bodies are never read, a request
//! head must arrive within 10 s, and hyper answers malformed requests with 400 and closes.
//!
//! One task per connection reads frames and writes what it is told; one router task owns the
//! [`Router`], fed by a bounded channel of connection events. Each connection has a small bounded
//! outbound queue: a client that does not read its messages fills it and is dropped rather than
//! making the server buffer for it.
//!
//! Accepted sockets have Nagle off (our frames go out at once) and ACK every read at once
//! ([`QuickAck`]), so a client that leaves Nagle on does not stall on a delayed ACK after a
//! message that gets no answer on its own connection (`accept`).
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

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::quickack::QuickAck;
use crate::router::{ConnId, Output, Router, RouterConfig, CLOSE_POLICY, CLOSE_TOO_BIG};
use crate::tls::ServerTls;
use crate::web::{self, Route};

/// Messages queued for one connection before it counts as not reading and is dropped. Large
/// enough for the largest burst the router sends one connection at once: a proctor is told about every
/// member in one go when its room ends or a whole hall's network drops (one roster line per
/// session, at most `max_sessions_per_connection`, 64 by default), with room to spare.
const OUTBOUND_QUEUE: usize = 256;
/// Connection events queued for the router task before connection tasks wait.
const EVENT_QUEUE: usize = 4096;
/// How long a peer may take for its TLS handshake, and for each HTTP request's headers (also
/// the most an idle keep-alive HTTP connection is kept).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest HTTP request head (request line and headers); a larger one gets 431. Browsers send
/// about 1 KiB.
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Most header fields in one HTTP request; more gets 431.
const MAX_HEADERS: usize = 48;
/// Largest read buffer hyper keeps for one HTTP connection (its minimum is 8 KiB). Request
/// bodies are never read: every path is GET or HEAD.
const MAX_HTTP_BUFFER: usize = 16 * 1024;
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

    /// The URL native clients connect to: `ws://ADDR/` or `wss://ADDR/` (the WebSocket also
    /// answers at [`web::SIGNAL_PATH`]).
    pub fn url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/", self.local_addr)
    }

    /// The URL of the browser controller page on the same port: `http://ADDR/` or
    /// `https://ADDR/`. Its signaling WebSocket is [`web::SIGNAL_PATH`] on the same origin.
    pub fn page_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
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
        // Our own small frames go out at once; reads are ACKed at once (see [`QuickAck`]).
        let _ = stream.set_nodelay(true);
        let stream = QuickAck::new(stream);
        next_conn += 1;
        let conn = ConnId(next_conn);
        let events = events.clone();
        // Two spawns, not one future with two branches: a plain connection's task then does not
        // carry room for the (larger) TLS stream state.
        match tls.clone() {
            None => {
                tokio::spawn(serve_http(stream, conn, peer, websocket, events));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(stream)) => serve_http(stream, conn, peer, websocket, events).await,
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

/// Serves HTTP/1.1 on one connection until it closes or upgrades: the page's files, and the
/// signaling WebSocket, which then runs in its own task on the upgraded connection.
async fn serve_http<S>(
    stream: S,
    conn: ConnId,
    peer: SocketAddr,
    websocket: WebSocketConfig,
    events: mpsc::Sender<Event>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let response = respond(request, conn, peer, websocket, &events);
        std::future::ready(Ok::<_, std::convert::Infallible>(response))
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HTTP_BUFFER);
    let served = http
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
    if let Err(error) = served {
        // Malformed requests (400), oversized headers (431) and slow clients end up here,
        // hyper having answered what it could.
        tracing::debug!(%conn, %peer, %error, "HTTP connection ended with an error");
    }
}

/// Answers one request; for a WebSocket handshake, also starts the task that takes the
/// connection over once hyper has sent the 101.
fn respond(
    request: Request<Incoming>,
    conn: ConnId,
    peer: SocketAddr,
    websocket: WebSocketConfig,
    events: &mpsc::Sender<Event>,
) -> Response<Full<Bytes>> {
    let routed = web::route(
        request.method(),
        request.version(),
        request.uri().path(),
        request.headers(),
    );
    match routed {
        Route::Asset(asset) => response(
            StatusCode::OK,
            asset.content_type,
            Bytes::from_static(asset.body),
        ),
        Route::Refuse { status, reason } => {
            tracing::debug!(%conn, %peer, %status, path = request.uri().path(), "refused");
            let mut refused = response(
                status,
                "text/plain; charset=utf-8",
                Bytes::from_static(reason.as_bytes()),
            );
            let headers = refused.headers_mut();
            if status == StatusCode::METHOD_NOT_ALLOWED {
                headers.insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            if status == StatusCode::UPGRADE_REQUIRED {
                headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
                headers.insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            }
            refused
        }
        Route::Upgrade { accept_key } => {
            let Ok(accept) = HeaderValue::from_str(&accept_key) else {
                // base64 is always a valid header value; answer rather than panic regardless.
                return response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    Bytes::from_static(b"cannot answer the handshake"),
                );
            };
            let upgrade = hyper::upgrade::on(request);
            tokio::spawn(serve_upgraded(
                upgrade,
                conn,
                peer,
                websocket,
                events.clone(),
            ));
            let mut switching = Response::new(Full::new(Bytes::new()));
            *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = switching.headers_mut();
            headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
            headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
            switching
        }
    }
}

/// A response with `body`, its type, and the page's security headers.
fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in web::SECURITY_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// Waits for hyper to hand the connection over after the 101, then runs the WebSocket on it.
async fn serve_upgraded(
    upgrade: OnUpgrade,
    conn: ConnId,
    peer: SocketAddr,
    websocket: WebSocketConfig,
    events: mpsc::Sender<Event>,
) {
    let upgraded = match upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            tracing::debug!(%conn, %peer, %error, "WebSocket upgrade failed");
            return;
        }
    };
    let ws =
        WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(websocket))
            .await;
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
