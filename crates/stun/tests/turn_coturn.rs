//! The TURN client against a real TURN server: coturn's `turnserver` on loopback, relaying to a
//! plain UDP socket that stands for the remote peer.
//!
//! Needs `turnserver` (the Debian `coturn` package, which `cargo xtask ci` installs). Timers that
//! run for minutes (refreshes at 4 and 9 minutes and before the lifetime ends) are reached by
//! moving the allocation's clock ahead of the real one: the requests still go to coturn, which
//! must accept them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

mod common;

use common::coturn::{Coturn, TurnAuth, TurnOptions};
use rtcdesk_stun::turn::{
    rest_credentials, Allocation, AllocationConfig, Received, StreamFramer, TurnError, TurnEvent,
    TurnTransport,
};
use rtcdesk_stun::{method, parse, Class, TransactionConfig};

const USER: &str = "puppet";
const PASSWORD: &str = "right horse battery";
/// How long any one step may take before the test fails.
const STEP: Duration = Duration::from_secs(10);

/// A byte stream to the TURN server: TCP, or TLS over TCP.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

enum Link {
    Udp(UdpSocket),
    /// The stream, its framer, and our local address.
    Stream(Box<dyn Stream>, StreamFramer, SocketAddr),
}

/// A tokio loop around one [`Allocation`]: moves bytes and timers, records what the server sent.
struct Client {
    link: Link,
    allocation: Allocation,
    /// How far the allocation's clock runs ahead of the real one.
    ahead: Duration,
    data: VecDeque<(SocketAddr, Vec<u8>)>,
    /// ERROR-CODE numbers of every error response the server sent, in order.
    error_codes: Vec<u16>,
    /// How many peer datagrams came as ChannelData (the rest as Data indications).
    channel_data_received: usize,
    /// How many ChannelData frames went to the server.
    channel_data_sent: usize,
    /// The method of every request sent, in order (retransmissions included).
    requests_sent: Vec<u16>,
}

impl Client {
    async fn udp(coturn: &Coturn, username: &str, password: &str) -> Client {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Self::new(Link::Udp(socket), config(coturn, username, password))
    }

    async fn tcp(coturn: &Coturn, username: &str, password: &str) -> Client {
        coturn.wait_for_tcp();
        let stream = TcpStream::connect(coturn.addr).await.unwrap();
        let mut config = config(coturn, username, password);
        config.transport = TurnTransport::Tcp;
        let local = stream.local_addr().unwrap();
        Self::new(
            Link::Stream(Box::new(stream), StreamFramer::new(), local),
            config,
        )
    }

    /// `turns:`: TLS over TCP to coturn's TLS port, trusting only `certificate`.
    async fn tls(
        coturn: &Coturn,
        certificate: rustls::pki_types::CertificateDer<'static>,
        username: &str,
        password: &str,
    ) -> Client {
        coturn.wait_for_tls();
        let tls_addr = coturn.tls_addr.unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(certificate).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let tls_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = TcpStream::connect(tls_addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls_config))
            .connect(name, tcp)
            .await
            .unwrap();
        let mut config = AllocationConfig::new(tls_addr, username, password);
        config.transport = TurnTransport::Tcp;
        Self::new(
            Link::Stream(Box::new(stream), StreamFramer::new(), local),
            config,
        )
    }

    fn new(link: Link, config: AllocationConfig) -> Client {
        Client {
            link,
            allocation: Allocation::new(config).unwrap(),
            ahead: Duration::ZERO,
            data: VecDeque::new(),
            error_codes: Vec::new(),
            channel_data_received: 0,
            channel_data_sent: 0,
            requests_sent: Vec::new(),
        }
    }

    fn local_addr(&self) -> SocketAddr {
        match &self.link {
            Link::Udp(socket) => socket.local_addr().unwrap(),
            Link::Stream(_, _, local) => *local,
        }
    }

    fn now(&self) -> Instant {
        Instant::now() + self.ahead
    }

    /// Moves the allocation's clock `by` ahead and lets it act on what became due.
    fn advance(&mut self, by: Duration) {
        self.ahead += by;
        let now = self.now();
        self.allocation.handle_timeout(now);
    }

    async fn allocate(&mut self) -> TurnEvent {
        let now = self.now();
        self.allocation.start_allocate(now).unwrap();
        self.next_event().await
    }

    fn send_to(&mut self, peer: SocketAddr, payload: &[u8]) {
        let now = self.now();
        self.allocation.send_to(peer, payload, now).unwrap();
    }

    async fn flush(&mut self) {
        while let Some(transmit) = self.allocation.poll_transmit() {
            dump_seed("to-coturn", &transmit.contents);
            if transmit
                .contents
                .first()
                .is_some_and(|b| (0x40..=0x7F).contains(b))
            {
                self.channel_data_sent += 1;
            } else if let Ok(message) = parse(&transmit.contents) {
                if message.class == Class::Request {
                    self.requests_sent.push(message.method);
                }
            }
            match &mut self.link {
                Link::Udp(socket) => {
                    socket
                        .send_to(&transmit.contents, transmit.destination)
                        .await
                        .unwrap();
                }
                Link::Stream(stream, _, _) => {
                    stream.write_all(&transmit.contents).await.unwrap();
                    stream.flush().await.unwrap();
                }
            }
        }
    }

    /// Runs the loop until `done` says so, failing the test after [`STEP`].
    async fn drive_until(&mut self, mut done: impl FnMut(&mut Client) -> bool) {
        let give_up = Instant::now() + STEP;
        let mut buf = vec![0u8; 70_000];
        loop {
            self.flush().await;
            if done(self) {
                return;
            }
            let real_now = Instant::now();
            assert!(real_now < give_up, "nothing happened within {STEP:?}");
            let wake = self
                .allocation
                .poll_timeout()
                .map(|at| at.checked_sub(self.ahead).unwrap_or(real_now))
                .unwrap_or(give_up)
                .min(give_up);
            let frames: Vec<Vec<u8>> = match &mut self.link {
                Link::Udp(socket) => {
                    match tokio::time::timeout_at(wake.into(), socket.recv_from(&mut buf)).await {
                        Ok(received) => {
                            let (len, _) = received.unwrap();
                            vec![buf[..len].to_vec()]
                        }
                        Err(_) => Vec::new(),
                    }
                }
                Link::Stream(stream, framer, _) => {
                    match tokio::time::timeout_at(wake.into(), stream.read(&mut buf)).await {
                        Ok(received) => {
                            let len = received.unwrap();
                            assert!(len > 0, "the TURN server closed the TCP connection");
                            framer.push(&buf[..len]).unwrap();
                            std::iter::from_fn(|| framer.next_frame().unwrap()).collect()
                        }
                        Err(_) => Vec::new(),
                    }
                }
            };
            for frame in frames {
                self.receive(&frame);
            }
            let now = self.now();
            self.allocation.handle_timeout(now);
        }
    }

    fn receive(&mut self, frame: &[u8]) {
        dump_seed("from-coturn", frame);
        if let Ok(message) = parse(frame) {
            if message.class == Class::ErrorResponse {
                self.error_codes
                    .extend(message.error_code().map(|error| error.code));
            }
        }
        let now = self.now();
        if let Received::Data { peer, payload } = self.allocation.handle_datagram(frame, now) {
            if (0x40..=0x7F).contains(&frame[0]) {
                self.channel_data_received += 1;
            }
            self.data.push_back((peer, payload.into_owned()));
        }
    }

    async fn next_event(&mut self) -> TurnEvent {
        let mut event = None;
        self.drive_until(|client| {
            event = client.allocation.poll_event();
            event.is_some()
        })
        .await;
        event.unwrap()
    }

    /// Skips events until one matches.
    async fn event_matching(&mut self, wanted: impl Fn(&TurnEvent) -> bool) -> TurnEvent {
        loop {
            let event = self.next_event().await;
            assert!(
                !matches!(event, TurnEvent::Failed(_)),
                "unexpected failure: {event:?}"
            );
            if wanted(&event) {
                return event;
            }
        }
    }

    async fn next_data(&mut self) -> (SocketAddr, Vec<u8>) {
        self.drive_until(|client| !client.data.is_empty()).await;
        self.data.pop_front().unwrap()
    }
}

/// With `RTCDESK_TURN_SEED_DIR` set, every frame to and from coturn is written there: how the
/// `turn_message` fuzz seeds under testdata/fuzz/turn_message were captured.
fn dump_seed(direction: &str, frame: &[u8]) {
    let Some(dir) = std::env::var_os("RTCDESK_TURN_SEED_DIR") else {
        return;
    };
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let kind = match parse(frame) {
        Ok(message) => format!(
            "{:?}-{:03x}{}",
            message.class,
            message.method,
            message
                .error_code()
                .map(|e| format!("-{}", e.code))
                .unwrap_or_default()
        ),
        Err(_) => "channel-data".to_string(),
    };
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::path::Path::new(&dir).join(format!("{direction}-{kind}-{n}.bin"));
    std::fs::write(path, frame).unwrap();
}

fn config(coturn: &Coturn, username: &str, password: &str) -> AllocationConfig {
    let mut config = AllocationConfig::new(coturn.addr, username, password);
    // coturn needs a moment to open its port; quick retransmissions cover that.
    config.transaction = TransactionConfig {
        initial_rto: Duration::from_millis(100),
        ..TransactionConfig::default()
    };
    config
}

fn relayed(event: &TurnEvent) -> SocketAddr {
    match event {
        TurnEvent::Allocated { relayed, .. } => *relayed,
        other => panic!("expected an allocation, got {other:?}"),
    }
}

/// The remote peer: a plain UDP socket on loopback.
async fn peer_socket() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

async fn recv_within(socket: &UdpSocket, within: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 70_000];
    match tokio::time::timeout(within, socket.recv_from(&mut buf)).await {
        Ok(received) => {
            let (len, from) = received.unwrap();
            Some((buf[..len].to_vec(), from))
        }
        Err(_) => None,
    }
}

fn static_user() -> Coturn {
    Coturn::start_turn(&TurnOptions::user(USER, PASSWORD))
}

#[tokio::test]
async fn the_right_password_gets_a_relayed_address() {
    let coturn = static_user();
    let mut client = Client::udp(&coturn, USER, PASSWORD).await;
    let event = client.allocate().await;
    let TurnEvent::Allocated {
        relayed,
        mapped,
        lifetime,
    } = event
    else {
        panic!("expected an allocation, got {event:?}");
    };
    assert!(relayed.ip().is_loopback());
    assert_ne!(relayed.port(), coturn.addr.port());
    assert_eq!(mapped, Some(client.local_addr()));
    assert_eq!(lifetime, Duration::from_secs(600));
    // The first Allocate went without credentials and was challenged (each retransmission of it
    // too, while coturn was starting).
    assert!(!client.error_codes.is_empty());
    assert!(
        client.error_codes.iter().all(|&code| code == 401),
        "{:?}",
        client.error_codes
    );
}

#[tokio::test]
async fn a_wrong_password_is_an_auth_error_naming_the_server() {
    let coturn = static_user();
    let mut client = Client::udp(&coturn, USER, "wrong horse").await;
    let event = client.allocate().await;
    let TurnEvent::Failed(error) = event else {
        panic!("expected a failure, got {event:?}");
    };
    assert!(
        matches!(&error, TurnError::Unauthorized { server, realm, .. }
            if *server == coturn.addr && realm == "rtcdesk.test"),
        "{error:?}"
    );
    assert!(error.to_string().contains(&coturn.addr.to_string()));
    assert!(client.allocation.is_done());
}

#[tokio::test]
async fn rest_credentials_from_the_shared_secret_are_accepted_until_they_expire() {
    let secret = "signal-and-turn-share-this";
    let coturn = Coturn::start_turn(&TurnOptions {
        auth: TurnAuth::Secret(secret.to_string()),
        ..TurnOptions::user("unused", "unused")
    });
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let valid = rest_credentials(secret.as_bytes(), "puppet", unix_now + 3600);
    let mut client = Client::udp(&coturn, &valid.username, &valid.password).await;
    relayed(&client.allocate().await);

    let expired = rest_credentials(secret.as_bytes(), "puppet", unix_now - 60);
    let mut client = Client::udp(&coturn, &expired.username, &expired.password).await;
    let event = client.allocate().await;
    assert!(
        matches!(event, TurnEvent::Failed(TurnError::Unauthorized { .. })),
        "{event:?}"
    );
}

#[tokio::test]
async fn a_second_allocation_over_the_user_quota_is_reported() {
    let coturn = Coturn::start_turn(&TurnOptions {
        user_quota: Some(1),
        ..TurnOptions::user(USER, PASSWORD)
    });
    let mut first = Client::udp(&coturn, USER, PASSWORD).await;
    relayed(&first.allocate().await);
    let mut second = Client::udp(&coturn, USER, PASSWORD).await;
    let event = second.allocate().await;
    assert!(
        matches!(event, TurnEvent::Failed(TurnError::Quota { code: 486, server, .. }) if server == coturn.addr),
        "{event:?}"
    );
}

#[tokio::test]
async fn data_goes_both_ways_through_send_and_data_indications() {
    let coturn = static_user();
    let (peer, peer_addr) = peer_socket().await;
    let mut config = config(&coturn, USER, PASSWORD);
    config.use_channels = false;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut client = Client::new(Link::Udp(socket), config);
    let relayed = relayed(&client.allocate().await);

    // Given a permission for the peer, made by the first send…
    client.send_to(peer_addr, b"ping");
    client
        .event_matching(|e| matches!(e, TurnEvent::PermissionCreated { .. }))
        .await;
    client.flush().await;
    // …the peer gets our datagram from the relayed address…
    let (payload, from) = recv_within(&peer, STEP)
        .await
        .expect("the relayed datagram");
    assert_eq!((payload.as_slice(), from), (&b"ping"[..], relayed));
    // …and its answer to that address comes back to us as a Data indication.
    peer.send_to(b"pong", relayed).await.unwrap();
    assert_eq!(client.next_data().await, (peer_addr, b"pong".to_vec()));
    assert_eq!(client.channel_data_received, 0);
    assert_eq!(client.channel_data_sent, 0);
}

#[tokio::test]
async fn data_goes_both_ways_through_a_bound_channel() {
    let coturn = static_user();
    let (peer, peer_addr) = peer_socket().await;
    let mut client = Client::udp(&coturn, USER, PASSWORD).await;
    let relayed = relayed(&client.allocate().await);
    client.send_to(peer_addr, b"first");
    let bound = client
        .event_matching(|e| matches!(e, TurnEvent::ChannelBound { .. }))
        .await;
    assert_eq!(
        bound,
        TurnEvent::ChannelBound {
            peer: peer_addr,
            channel: 0x4000
        }
    );
    let (payload, _) = recv_within(&peer, STEP).await.unwrap();
    assert_eq!(payload, b"first");
    // When the channel is bound, sends go as ChannelData…
    client.send_to(peer_addr, b"through the channel");
    client.flush().await;
    assert_eq!(client.channel_data_sent, 1);
    let (payload, from) = recv_within(&peer, STEP).await.unwrap();
    assert_eq!(
        (payload.as_slice(), from),
        (&b"through the channel"[..], relayed)
    );
    // …and coturn sends the peer's datagrams back as ChannelData.
    peer.send_to(b"and back", relayed).await.unwrap();
    assert_eq!(client.next_data().await, (peer_addr, b"and back".to_vec()));
    assert_eq!(client.channel_data_received, 1);
}

#[tokio::test]
async fn refreshes_of_allocation_permission_and_channel_are_accepted() {
    let coturn = static_user();
    let (peer, peer_addr) = peer_socket().await;
    let mut client = Client::udp(&coturn, USER, PASSWORD).await;
    let relayed = relayed(&client.allocate().await);
    client.send_to(peer_addr, b"0");
    client
        .event_matching(|e| matches!(e, TurnEvent::ChannelBound { .. }))
        .await;
    assert!(recv_within(&peer, STEP).await.is_some());
    let errors_before = client.error_codes.len();
    let count = |client: &Client, wanted: u16| {
        client
            .requests_sent
            .iter()
            .filter(|&&m| m == wanted)
            .count()
    };
    assert_eq!(count(&client, method::CREATE_PERMISSION), 1);
    assert_eq!(count(&client, method::CHANNEL_BIND), 1);
    assert_eq!(count(&client, method::REFRESH), 0);

    // Four minutes on: the used permission is refreshed (a CreatePermission coturn accepts).
    client.advance(Duration::from_secs(240));
    client.send_to(peer_addr, b"4");
    // Nine minutes on: the allocation (due at 540 s) and the channel are refreshed.
    client.advance(Duration::from_secs(300));
    let event = client
        .event_matching(|e| matches!(e, TurnEvent::Refreshed { .. }))
        .await;
    assert_eq!(
        event,
        TurnEvent::Refreshed {
            lifetime: Duration::from_secs(600)
        }
    );
    // Let the permission and channel refreshes be answered too.
    client
        .drive_until(|c| {
            c.allocation
                .poll_timeout()
                .is_some_and(|at| at > c.now() + Duration::from_secs(60))
        })
        .await;
    assert_eq!(
        client.error_codes.len(),
        errors_before,
        "{:?}",
        client.error_codes
    );
    assert!(client.allocation.poll_event().is_none());
    // Every refresh went to coturn and was accepted: the permission at 4:00 and again at 9:00
    // (4 minutes after its last refresh), the channel and the allocation at 9:00.
    assert_eq!(count(&client, method::CREATE_PERMISSION), 3);
    assert_eq!(count(&client, method::CHANNEL_BIND), 2);
    assert_eq!(count(&client, method::REFRESH), 1);
    // And data still flows both ways through the channel.
    client.send_to(peer_addr, b"after");
    client.flush().await;
    let mut got = Vec::new();
    while let Some((payload, _)) = recv_within(&peer, STEP).await {
        got.push(payload);
        if got.last().map(Vec::as_slice) == Some(b"after") {
            break;
        }
    }
    peer.send_to(b"back", relayed).await.unwrap();
    assert_eq!(client.next_data().await, (peer_addr, b"back".to_vec()));
}

#[tokio::test]
async fn a_stale_nonce_is_retried_with_the_new_one() {
    // coturn's nonces live 1 s here; after that every request is answered 438 once.
    let coturn = Coturn::start_turn(&TurnOptions {
        stale_nonce: Some(1),
        ..TurnOptions::user(USER, PASSWORD)
    });
    let mut client = Client::udp(&coturn, USER, PASSWORD).await;
    relayed(&client.allocate().await);
    // The nonce ages on coturn's wall clock: refresh until the server calls it stale (at most
    // STEP), each refresh forced by moving our clock to the refresh time.
    let give_up = Instant::now() + STEP;
    while !client.error_codes.contains(&438) {
        assert!(Instant::now() < give_up, "coturn never said 438");
        tokio::time::sleep(Duration::from_millis(250)).await;
        client.advance(Duration::from_secs(540));
        client
            .event_matching(|e| matches!(e, TurnEvent::Refreshed { .. }))
            .await;
    }
    // The refresh that got 438 was retried with the new nonce and succeeded (the loop above
    // waited for its Refreshed), and the allocation is still in place.
    assert!(client.allocation.relayed_address().is_some());
}

#[tokio::test]
async fn close_releases_the_allocation_on_the_server() {
    let coturn = static_user();
    let (peer, peer_addr) = peer_socket().await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = socket.local_addr().unwrap();
    let mut client = Client::new(Link::Udp(socket), config(&coturn, USER, PASSWORD));
    let relayed = relayed(&client.allocate().await);
    client.send_to(peer_addr, b"hello");
    client
        .event_matching(|e| matches!(e, TurnEvent::PermissionCreated { .. }))
        .await;
    assert!(recv_within(&peer, STEP).await.is_some());

    let now = client.now();
    client.allocation.close(now);
    assert_eq!(client.next_event().await, TurnEvent::Closed);
    assert!(
        client.error_codes.iter().all(|&code| code == 401),
        "the release was accepted: {:?}",
        client.error_codes
    );

    // coturn lets the same 5-tuple allocate again, which it refuses (437) while an
    // allocation exists for it. coturn deletes a released allocation on its next timer tick,
    // so the new Allocate is retried on 437 until it succeeds (at most STEP).
    let Link::Udp(mut socket) = client.link else {
        unreachable!()
    };
    assert_eq!(socket.local_addr().unwrap(), local);
    let give_up = Instant::now() + STEP;
    let started = Instant::now();
    loop {
        let mut again = Client::new(Link::Udp(socket), config(&coturn, USER, PASSWORD));
        match again.allocate().await {
            TurnEvent::Allocated { relayed: new, .. } => {
                eprintln!("allocated again after {:?}", started.elapsed());
                assert_ne!(new, relayed);
                // With a permission for the peer on the new allocation, a datagram to the old
                // relayed address reaches nobody, and one to the new address, sent after it,
                // is the first to arrive.
                again.send_to(peer_addr, b"hello again");
                again
                    .event_matching(|e| matches!(e, TurnEvent::PermissionCreated { .. }))
                    .await;
                peer.send_to(b"to the old address", relayed).await.unwrap();
                peer.send_to(b"to the new address", new).await.unwrap();
                assert_eq!(
                    again.next_data().await,
                    (peer_addr, b"to the new address".to_vec())
                );
                break;
            }
            TurnEvent::Failed(TurnError::Refused { code: 437, .. }) if Instant::now() < give_up => {
                let Link::Udp(back) = again.link else {
                    unreachable!()
                };
                socket = back;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("the old allocation was not released: {other:?}"),
        }
    }
}

#[tokio::test]
async fn over_tcp_allocation_and_data_both_ways() {
    let coturn = static_user();
    let (peer, peer_addr) = peer_socket().await;
    let mut client = Client::tcp(&coturn, USER, PASSWORD).await;
    let event = client.allocate().await;
    let relayed = relayed(&event);
    // The first datagram goes as a Send indication, then the channel is bound.
    client.send_to(peer_addr, b"over tcp");
    client
        .event_matching(|e| matches!(e, TurnEvent::ChannelBound { .. }))
        .await;
    let (payload, from) = recv_within(&peer, STEP).await.unwrap();
    assert_eq!((payload.as_slice(), from), (&b"over tcp"[..], relayed));
    // An odd length exercises the padding ChannelData needs on a stream.
    client.send_to(peer_addr, b"odd");
    client.flush().await;
    assert_eq!(client.channel_data_sent, 1);
    let (payload, _) = recv_within(&peer, STEP).await.unwrap();
    assert_eq!(payload, b"odd");
    for reply in [&b"a"[..], b"bcdef", b"back over tcp"] {
        peer.send_to(reply, relayed).await.unwrap();
        assert_eq!(client.next_data().await, (peer_addr, reply.to_vec()));
    }
    assert_eq!(client.channel_data_received, 3);
    let now = client.now();
    client.allocation.close(now);
    assert_eq!(client.next_event().await, TurnEvent::Closed);
}

#[tokio::test]
async fn over_tls_turns_allocation_and_data_both_ways() {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("rtcdesk-turns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    let coturn = Coturn::start_turn(&TurnOptions {
        tls: Some((cert_path, key_path)),
        ..TurnOptions::user(USER, PASSWORD)
    });
    let (peer, peer_addr) = peer_socket().await;
    let mut client = Client::tls(&coturn, cert.der().clone(), USER, PASSWORD).await;
    let relayed = relayed(&client.allocate().await);
    client.send_to(peer_addr, b"over tls");
    client
        .event_matching(|e| matches!(e, TurnEvent::ChannelBound { .. }))
        .await;
    let (payload, from) = recv_within(&peer, STEP).await.unwrap();
    assert_eq!((payload.as_slice(), from), (&b"over tls"[..], relayed));
    client.send_to(peer_addr, b"odd");
    client.flush().await;
    assert_eq!(client.channel_data_sent, 1);
    assert_eq!(recv_within(&peer, STEP).await.unwrap().0, b"odd");
    peer.send_to(b"back over tls", relayed).await.unwrap();
    assert_eq!(
        client.next_data().await,
        (peer_addr, b"back over tls".to_vec())
    );
    assert_eq!(client.channel_data_received, 1);
    let now = client.now();
    client.allocation.close(now);
    assert_eq!(client.next_event().await, TurnEvent::Closed);
    let _ = std::fs::remove_dir_all(&dir);
}
