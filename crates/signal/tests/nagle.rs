//! A client that leaves Nagle's algorithm on (the operating system default outside browsers)
//! must not stall: after `accept`, which gets no answer on the puppet's own connection, the
//! puppet's offer has to reach the controller without waiting for a delayed ACK (~40 ms).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rtcdesk_proto::signal::{Accept, Connect, Leave, Offer, Register, SignalMessage};
use rtcdesk_signal::client::SignalClient;
use rtcdesk_signal::server::{Server, ServerConfig};
use rtcdesk_signal::tls::TlsOptions;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const WAIT: Duration = Duration::from_secs(5);
/// Pairings run; each is one chance to hit the delayed-ACK stall.
const ROUNDS: usize = 12;
/// Well under Linux's 40 ms minimum delayed ACK, well over a loopback relay on a busy machine.
const STALL: Duration = Duration::from_millis(30);

/// A puppet on a plain TCP stream with Nagle on, speaking raw WebSocket frames.
struct NaglePuppet(WebSocketStream<TcpStream>);

impl NaglePuppet {
    async fn connect(server: &Server) -> Self {
        let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
        assert!(!tcp.nodelay().unwrap(), "the test needs Nagle on");
        let (ws, _) = tokio_tungstenite::client_async(server.url(), tcp)
            .await
            .unwrap();
        Self(ws)
    }

    async fn send(&mut self, message: impl Into<SignalMessage>) {
        let text = message.into().encode();
        self.0.send(Message::text(text)).await.unwrap();
    }

    async fn recv(&mut self) -> SignalMessage {
        loop {
            let frame = tokio::time::timeout(WAIT, self.0.next())
                .await
                .expect("a message in time")
                .expect("the connection is open")
                .unwrap();
            if let Message::Text(text) = frame {
                return SignalMessage::parse(text.as_str()).unwrap();
            }
        }
    }
}

async fn recv(client: &mut SignalClient) -> SignalMessage {
    tokio::time::timeout(WAIT, client.recv())
        .await
        .expect("a message in time")
        .unwrap()
        .expect("the connection is open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_puppet_with_nagle_on_sends_its_offer_without_a_delayed_ack_stall() {
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let mut puppet = NaglePuppet::connect(&server).await;
    let mut controller = SignalClient::connect(&server.url(), &TlsOptions::default())
        .await
        .unwrap();
    let mut waits = Vec::new();
    for _ in 0..ROUNDS {
        puppet.send(Register::named("pc")).await;
        let SignalMessage::Registered(registered) = puppet.recv().await else {
            panic!("expected registered");
        };
        let connect = Connect {
            code: registered.code,
            name: "helpdesk".into(),
            pake: None,
        };
        controller.send(&connect.into()).await.unwrap();
        let SignalMessage::Ringing(ringing) = recv(&mut controller).await else {
            panic!("expected ringing");
        };
        let SignalMessage::Incoming(_) = puppet.recv().await else {
            panic!("expected incoming");
        };
        let session = ringing.session;
        // Given the puppet accepts and sends its offer right away, as a puppet does,
        let started = Instant::now();
        puppet
            .send(Accept {
                session: session.clone(),
            })
            .await;
        puppet
            .send(Offer {
                session: session.clone(),
                sdp: "v=0".into(),
            })
            .await;
        // then the controller has both without a delayed-ACK wait in between.
        let SignalMessage::Accepted(_) = recv(&mut controller).await else {
            panic!("expected accepted");
        };
        let SignalMessage::Offer(_) = recv(&mut controller).await else {
            panic!("expected the offer");
        };
        waits.push(started.elapsed());
        controller.send(&Leave { session }.into()).await.unwrap();
        let SignalMessage::Left(_) = puppet.recv().await else {
            panic!("expected left");
        };
    }
    waits.sort_unstable();
    let median = waits[ROUNDS / 2];
    assert!(
        median < STALL,
        "accept → offer took {median:?} (median of {ROUNDS}); all: {waits:?}"
    );
    server.shutdown().await;
}
