//! rtcdesk's signaling server and its client.
//!
//! The server introduces a puppet and a controller: the puppet `register`s and gets a 9-digit
//! control code, a controller `connect`s with that code, the puppet's user accepts, and then SDP
//! offers, answers and ICE candidates are relayed between them by session id until one `leave`s or
//! its WebSocket drops (signaling protocol v1; the messages are [`rtcdesk_proto::signal`]).
//!
//! How data flows:
//!
//! - [`router::Router`] is the whole protocol as a sans-IO state machine: connection events,
//!   text frames and the current time go in (`handle_*`), frames to send, pings and closes come
//!   out (`poll_output`). Every rule and limit lives there and is tested without sockets.
//! - [`server::Server`] is the tokio shell: it accepts TCP (and TLS, [`tls`]) connections,
//!   serves HTTP on them with hyper, upgrades signaling requests to WebSockets with
//!   tokio-tungstenite, and moves frames between them and one task that owns the router. The
//!   binary `rtcdesk-signal` runs it; the puppet can embed it.
//! - [`web`] is the browser controller page (`web/` in the repository, compiled in) and the
//!   rules for what is served at which path, on the same port as the WebSocket.
//! - [`client::SignalClient`] is what the puppet and the controller use to talk to a server:
//!   typed [`SignalMessage`](rtcdesk_proto::signal::SignalMessage)s over `ws://` or `wss://`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use rtcdesk_proto::signal::{Register, SignalMessage};
//! use rtcdesk_signal::{client::SignalClient, server::{Server, ServerConfig}, tls::TlsOptions};
//!
//! let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse()?)).await?;
//! let mut puppet = SignalClient::connect(&server.url(), &TlsOptions::default()).await?;
//! puppet.send(&Register::named("front desk").into()).await?;
//! if let Some(SignalMessage::Registered(registered)) = puppet.recv().await? {
//!     println!("tell the controller: {}", registered.code); // "123 456 789"
//! }
//! puppet.close().await?;
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "server")]
pub mod client;
pub mod ice;
#[cfg(feature = "server")]
pub mod quickack;
pub mod router;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod tls;
#[cfg(feature = "server")]
pub mod web;
