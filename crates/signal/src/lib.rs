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
//!   upgrades them to WebSockets with tokio-tungstenite, and moves frames between them and one
//!   task that owns the router. The binary `rtcdesk-signal` runs it; the puppet can embed it.
//! - [`client::SignalClient`] is what the puppet and the controller use to talk to a server:
//!   typed [`SignalMessage`](rtcdesk_proto::signal::SignalMessage)s over `ws://` or `wss://`.
//!
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod router;
