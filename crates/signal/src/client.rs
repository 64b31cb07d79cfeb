//! The signaling client the puppet and the controller use: one WebSocket to the server, typed
//! messages in and out.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rtcdesk_signal::client::ClientError> {
//! use rtcdesk_proto::signal::{Register, SignalMessage};
//! use rtcdesk_signal::client::SignalClient;
//! use rtcdesk_signal::tls::TlsOptions;
//!
//! let mut client = SignalClient::connect("wss://signal.example:8443/", &TlsOptions::default()).await?;
//! client.send(&Register::named("front desk").into()).await?;
//! if let Some(SignalMessage::Registered(registered)) = client.recv().await? {
//!     println!("control code: {}", registered.code); // shown grouped: 123 456 789
//! }
//! client.close().await?;
//! # Ok(()) }
//! ```
//!
//! Rooms have request helpers: a proctor [`create_room`](SignalClient::create_room)s, a puppet
//! [`join_room`](SignalClient::join_room)s. Each sends its request and waits for the answer;
//! any other message that arrives meanwhile (a roster line of another room, say) is kept and
//! given by the next [`recv`](SignalClient::recv), in order. They are not cancel-safe as `recv`
//! is: if one is cancelled after sending, its answer arrives later through `recv`.
//!
//! ```no_run
//! # async fn demo(proctor: &mut rtcdesk_signal::client::SignalClient,
//! #               puppet: &mut rtcdesk_signal::client::SignalClient)
//! #               -> Result<(), rtcdesk_signal::client::ClientError> {
//! use rtcdesk_proto::signal::SignalMessage;
//! let room = proctor.create_room("Exam hall 2").await?;
//! println!("join with {}", room.code);
//! let joined = puppet.join_room(room.code, "desk 7").await?;
//! println!("watched by {}", joined.name);
//! if let Some(SignalMessage::Member(line)) = proctor.recv().await? {
//!     println!("{} is {}", line.name, line.state); // "desk 7 is joined"
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rtcdesk_proto::signal::{
    ControlCode, ErrorCode, RoomCreate, RoomCreated, RoomJoin, RoomJoined, SignalError,
    SignalMessage, MAX_SIGNAL_MESSAGE,
};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::tls::{TlsError, TlsOptions};

/// Which end of a session a client is, for [`default_name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSide {
    /// A puppet is named after the machine it shares.
    Puppet,
    /// A controller is named after the person at it.
    Controller,
}

/// The name a client announces (`register`'s or `connect`'s `name`) when its user gave none, so
/// the other side sees who or what it deals with: a puppet, its host name; a controller,
/// `user@host` (`$USER` and the host name), or whichever of the two is known. When the system
/// tells neither, the side's own word: "puppet" or "controller".
pub fn default_name(side: ClientSide) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match side {
        ClientSide::Puppet => host.unwrap_or_else(|| "puppet".to_owned()),
        ClientSide::Controller => {
            let user = std::env::var("USER").ok().filter(|u| !u.is_empty());
            match (user, host) {
                (Some(user), Some(host)) => format!("{user}@{host}"),
                (Some(name), None) | (None, Some(name)) => name,
                (None, None) => "controller".to_owned(),
            }
        }
    }
}

/// How long [`SignalClient::connect`] may take in all (TCP, TLS and WebSocket handshakes).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for the server's close frame after sending ours.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Messages a request helper keeps for [`SignalClient::recv`] while it waits for its answer. As
/// many as the server queues for one connection: a server that sends more before answering is
/// not one this client can follow.
pub const MAX_HELD_MESSAGES: usize = 256;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `ws://HOST[:PORT][/PATH]` or `wss://…`.
    #[error("not a ws:// or wss:// URL: {0}")]
    BadUrl(String),
    /// The TLS options could not be turned into a configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TCP connection or the TLS handshake failed (refused, unreachable, untrusted
    /// certificate).
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL.
        url: String,
        /// The I/O or TLS error.
        source: std::io::Error,
    },
    /// The WebSocket handshake or connection failed.
    #[error("WebSocket error: {0}")]
    WebSocket(Box<WsError>),
    /// The server did not complete the connection within [`CONNECT_TIMEOUT`].
    #[error("no connection to {0} within {CONNECT_TIMEOUT:?}")]
    Timeout(String),
    /// The server sent a frame that is not a valid signaling message; the connection stays up.
    #[error("the server sent an invalid message: {0}")]
    BadMessage(SignalError),
    /// The server answered a request with an `error` (`busy`, `unknown_code`, `rate_limited`, …);
    /// the connection stays up unless the server closes it (`rate_limited` does).
    #[error("the server refused: {code}: {message}")]
    Refused {
        /// The error code, for programs.
        code: ErrorCode,
        /// The server's explanation, for people.
        message: String,
    },
    /// The server closed the connection before answering a request (see
    /// [`SignalClient::close_reason`]).
    #[error("the server closed the connection before answering")]
    Closed,
    /// More than [`MAX_HELD_MESSAGES`] other messages arrived while a request waited for its
    /// answer.
    #[error("no answer among {MAX_HELD_MESSAGES} messages from the server")]
    NoAnswer,
}

impl From<WsError> for ClientError {
    fn from(error: WsError) -> Self {
        ClientError::WebSocket(Box::new(error))
    }
}

/// Any stream a WebSocket can run over: plain TCP or TLS over TCP.
trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// A connection to the signaling server.
///
/// [`recv`](Self::recv) is cancel-safe, so one task can `select!` over it and its own work, and
/// call [`send`](Self::send) in between. The client answers the server's pings whenever it
/// reads: keep calling `recv`, or the server drops the connection after its dead timeout.
pub struct SignalClient {
    ws: WebSocketStream<Box<dyn Transport>>,
    close_frame: Option<(u16, String)>,
    /// Messages that arrived while a request helper waited, for `recv` (bounded).
    held: VecDeque<SignalMessage>,
}

impl std::fmt::Debug for SignalClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalClient").finish_non_exhaustive()
    }
}

impl SignalClient {
    /// Connects to `ws://…` or `wss://…`; `tls` says whom to trust for `wss://`. Gives up after
    /// [`CONNECT_TIMEOUT`].
    pub async fn connect(url: &str, tls: &TlsOptions) -> Result<Self, ClientError> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::connect_now(url, tls))
            .await
            .map_err(|_| ClientError::Timeout(url.to_string()))?
    }

    async fn connect_now(url: &str, tls: &TlsOptions) -> Result<Self, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| ClientError::BadUrl(url.to_string()))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => return Err(ClientError::BadUrl(url.to_string())),
        };
        let host = uri
            .host()
            .ok_or_else(|| ClientError::BadUrl(url.to_string()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let connect_error = |source| ClientError::Connect {
            url: url.to_string(),
            source,
        };
        let tcp = TcpStream::connect((host, port))
            .await
            .map_err(connect_error)?;
        let _ = tcp.set_nodelay(true);
        let transport: Box<dyn Transport> = if secure {
            let config: Arc<rustls::ClientConfig> = tls.client_config()?;
            let name = ServerName::try_from(host.to_string())
                .map_err(|_| ClientError::BadUrl(url.to_string()))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(connect_error)?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_message_size(Some(MAX_SIGNAL_MESSAGE))
            .max_frame_size(Some(MAX_SIGNAL_MESSAGE));
        let (ws, _response) =
            tokio_tungstenite::client_async_with_config(url, transport, Some(config)).await?;
        Ok(Self {
            ws,
            close_frame: None,
            held: VecDeque::new(),
        })
    }

    /// Sends one message.
    pub async fn send(&mut self, message: &SignalMessage) -> Result<(), ClientError> {
        self.ws.send(Message::text(message.encode())).await?;
        Ok(())
    }

    /// The next message from the server, or `None` once the server closed the connection
    /// cleanly. Pings are answered along the way. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<SignalMessage>, ClientError> {
        if let Some(message) = self.held.pop_front() {
            return Ok(Some(message));
        }
        self.recv_wire().await
    }

    /// The next message from the socket itself, past the held ones.
    async fn recv_wire(&mut self) -> Result<Option<SignalMessage>, ClientError> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    return SignalMessage::parse(text.as_str())
                        .map(Some)
                        .map_err(ClientError::BadMessage);
                }
                Some(Ok(Message::Close(frame))) => {
                    self.close_frame = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(WsError::ConnectionClosed)) | None => return Ok(None),
                Some(Err(error)) => return Err(error.into()),
            }
        }
    }

    /// Proctor: opens a room named `name` (shown to every puppet that joins) and returns its id,
    /// code and the code's lifetime. Then `member` lines arrive through [`recv`](Self::recv) as
    /// puppets join. `busy` when this connection has as many rooms as it may.
    pub async fn create_room(&mut self, name: &str) -> Result<RoomCreated, ClientError> {
        let request = RoomCreate { name: name.into() }.into();
        self.request(request, |message| match message {
            SignalMessage::RoomCreated(created) => Ok(created),
            other => Err(other),
        })
        .await
    }

    /// Puppet: joins the room with `code` as `name` (joining is its user's consent) and returns
    /// the session with the proctor and the room's name; send the session's offer next. Refused
    /// with `unknown_code` (wrong, expired or closed code), `busy` (room full), `rate_limited`.
    pub async fn join_room(
        &mut self,
        code: ControlCode,
        name: &str,
    ) -> Result<RoomJoined, ClientError> {
        let request = RoomJoin {
            code,
            name: name.into(),
        }
        .into();
        self.request(request, |message| match message {
            SignalMessage::RoomJoined(joined) => Ok(joined),
            other => Err(other),
        })
        .await
    }

    /// Sends `request` and waits for the message `answer` accepts, or an `error` (taken as the
    /// answer: the server answers in order). Other messages are held for `recv`.
    async fn request<T>(
        &mut self,
        request: SignalMessage,
        answer: impl Fn(SignalMessage) -> Result<T, SignalMessage>,
    ) -> Result<T, ClientError> {
        self.send(&request).await?;
        loop {
            let Some(message) = self.recv_wire().await? else {
                return Err(ClientError::Closed);
            };
            let other = match answer(message) {
                Ok(value) => return Ok(value),
                Err(other) => other,
            };
            if let SignalMessage::Error(error) = other {
                return Err(ClientError::Refused {
                    code: error.code,
                    message: error.message,
                });
            }
            if self.held.len() >= MAX_HELD_MESSAGES {
                return Err(ClientError::NoAnswer);
            }
            self.held.push_back(other);
        }
    }

    /// The close code and reason the server gave, once [`recv`](Self::recv) returned `None`
    /// (1008 for rate limiting or flooding, 1009 for an oversized message, …).
    pub fn close_reason(&self) -> Option<(u16, &str)> {
        self.close_frame
            .as_ref()
            .map(|(code, reason)| (*code, reason.as_str()))
    }

    /// Closes the connection cleanly (close frame, then wait briefly for the server's). The
    /// server tells the other end of every session of this connection `left`.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        };
        match self.ws.close(Some(frame)).await {
            Ok(()) | Err(WsError::ConnectionClosed) => {}
            Err(error) => return Err(error.into()),
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_puppet_is_named_after_its_machine_and_a_controller_never_goes_unnamed() {
        // Given this machine's host name (if it has one),
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        // when each side asks for its default name,
        let puppet = default_name(ClientSide::Puppet);
        let controller = default_name(ClientSide::Controller);
        // then the puppet's is the host name, or its own word, and the controller's is not empty
        // and names the host when there is one.
        if host.is_empty() {
            assert_eq!(puppet, "puppet");
        } else {
            assert_eq!(puppet, host);
            assert!(controller.ends_with(&host), "{controller}");
        }
        assert!(!controller.is_empty());
    }
}
