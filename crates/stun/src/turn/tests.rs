//! Every rule of the allocation as a scenario on a virtual clock, against a scripted server that
//! answers each request the way RFC 8656 says a TURN server does.

use super::*;
use crate::message::ErrorCode;

const USER: &str = "puppet";
const PASSWORD: &str = "hunter2";
const REALM: &str = "rtcdesk.test";

fn server() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}

fn relayed() -> SocketAddr {
    "192.0.2.1:49152".parse().unwrap()
}

fn mapped() -> SocketAddr {
    "203.0.113.7:40000".parse().unwrap()
}

fn peer() -> SocketAddr {
    "198.51.100.20:5000".parse().unwrap()
}

fn md5_key() -> Vec<u8> {
    credentials::long_term_key(PASSWORD_ALGORITHM_MD5, USER, REALM, PASSWORD)
}

/// An allocation, the scripted server's key and the virtual clock.
struct Harness {
    allocation: Allocation,
    start: Instant,
    now: Instant,
    key: Vec<u8>,
}

impl Harness {
    fn new() -> Self {
        Self::with(AllocationConfig::new(server(), USER, PASSWORD))
    }

    fn with(config: AllocationConfig) -> Self {
        let now = Instant::now();
        let mut allocation = Allocation::new(config).unwrap();
        allocation.start_allocate(now).unwrap();
        Harness {
            allocation,
            start: now,
            now,
            key: md5_key(),
        }
    }

    /// Given an allocation that went through the challenge and got its relayed address.
    fn allocated() -> Self {
        let mut h = Self::new();
        let first = h.request();
        h.answer_error(
            &first,
            401,
            &[Attribute::Realm(REALM.into()), nonce("n1")],
            false,
        );
        let second = h.request();
        h.answer_success(&second, allocate_success());
        assert!(matches!(h.event(), Some(TurnEvent::Allocated { .. })));
        h
    }

    fn advance_to(&mut self, seconds: u64) {
        self.now = self.start + Duration::from_secs(seconds);
        self.allocation.handle_timeout(self.now);
    }

    /// The next transmit, which must be a request (or indication) to the server.
    fn request(&mut self) -> (Message, Vec<u8>) {
        let transmit = self.allocation.poll_transmit().expect("a transmit");
        assert_eq!(transmit.destination, server());
        let message = parse(&transmit.contents).expect("a STUN message");
        (message, transmit.contents)
    }

    fn transmit(&mut self) -> Option<Vec<u8>> {
        self.allocation.poll_transmit().map(|t| t.contents)
    }

    fn event(&mut self) -> Option<TurnEvent> {
        self.allocation.poll_event()
    }

    fn feed(&mut self, bytes: &[u8]) -> Received<'static> {
        match self.allocation.handle_datagram(bytes, self.now) {
            Received::Data { peer, payload } => Received::Data {
                peer,
                payload: Cow::Owned(payload.into_owned()),
            },
            Received::Control => Received::Control,
            Received::Ignored => Received::Ignored,
        }
    }

    fn answer_success(&mut self, request: &(Message, Vec<u8>), attributes: Vec<Attribute>) {
        let response = response(&request.0, Class::SuccessResponse, attributes, &self.key);
        assert_eq!(self.feed(&response), Received::Control);
    }

    fn answer_error(
        &mut self,
        request: &(Message, Vec<u8>),
        code: u16,
        extra: &[Attribute],
        signed: bool,
    ) {
        let mut attributes = vec![Attribute::ErrorCode(ErrorCode {
            code,
            reason: "test".into(),
        })];
        attributes.extend_from_slice(extra);
        let key = if signed { self.key.clone() } else { Vec::new() };
        let response = response(&request.0, Class::ErrorResponse, attributes, &key);
        assert_eq!(self.feed(&response), Received::Control);
    }
}

fn nonce(value: &str) -> Attribute {
    Attribute::Nonce(value.into())
}

fn allocate_success() -> Vec<Attribute> {
    vec![
        Attribute::XorRelayedAddress(relayed()),
        Attribute::XorMappedAddress(mapped()),
        Attribute::Lifetime(600),
    ]
}

/// A response to `request`, signed with `key` unless it is empty.
fn response(
    request: &Message,
    class: Class,
    mut attributes: Vec<Attribute>,
    key: &[u8],
) -> Vec<u8> {
    if !key.is_empty() {
        attributes.push(Attribute::MessageIntegrity([0; 20]));
    }
    attributes.push(Attribute::Fingerprint(0));
    Message {
        class,
        method: request.method,
        transaction_id: request.transaction_id,
        attributes,
    }
    .encode((!key.is_empty()).then_some(key))
}

fn has(message: &Message, wanted: &Attribute) -> bool {
    message.attributes.contains(wanted)
}

fn has_kind(message: &Message, kind: fn(&Attribute) -> bool) -> bool {
    message.attributes.iter().any(kind)
}

#[test]
fn allocate_answers_the_401_challenge_with_long_term_credentials() {
    let mut h = Harness::new();
    // Given the first Allocate, which carries no credentials…
    let first = h.request();
    assert_eq!(
        (first.0.class, first.0.method),
        (Class::Request, method::ALLOCATE)
    );
    assert!(has(&first.0, &Attribute::RequestedTransport(17)));
    assert!(has(&first.0, &Attribute::Lifetime(600)));
    assert!(!has_kind(&first.0, |a| matches!(a, Attribute::Username(_))));
    assert!(!first.0.has_integrity());
    // …when the server challenges it…
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    // …then the retry is a new transaction with USERNAME, REALM, NONCE and a valid MAC.
    let second = h.request();
    assert_ne!(second.0.transaction_id, first.0.transaction_id);
    assert!(has(&second.0, &Attribute::Username(USER.into())));
    assert!(has(&second.0, &Attribute::Realm(REALM.into())));
    assert!(has(&second.0, &nonce("n1")));
    assert_eq!(verify_message_integrity(&second.1, &md5_key()), Ok(true));
    assert!(second.0.has_fingerprint());
    // And the success gives the relayed and mapped addresses.
    h.answer_success(&second, allocate_success());
    assert_eq!(
        h.event(),
        Some(TurnEvent::Allocated {
            relayed: relayed(),
            mapped: Some(mapped()),
            lifetime: Duration::from_secs(600),
        })
    );
    assert_eq!(h.allocation.relayed_address(), Some(relayed()));
    assert_eq!(h.allocation.mapped_address(), Some(mapped()));
}

#[test]
fn message_integrity_sha256_when_the_server_offers_password_algorithms() {
    let mut h = Harness::new();
    let first = h.request();
    let offered = vec![
        PasswordAlgorithm {
            algorithm: PASSWORD_ALGORITHM_SHA256,
            parameters: vec![],
        },
        PasswordAlgorithm {
            algorithm: PASSWORD_ALGORITHM_MD5,
            parameters: vec![],
        },
    ];
    h.answer_error(
        &first,
        401,
        &[
            Attribute::Realm(REALM.into()),
            nonce("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"),
            Attribute::PasswordAlgorithms(offered.clone()),
        ],
        false,
    );
    let second = h.request();
    let sha256_key = credentials::long_term_key(PASSWORD_ALGORITHM_SHA256, USER, REALM, PASSWORD);
    assert!(has(
        &second.0,
        &Attribute::PasswordAlgorithms(offered.clone())
    ));
    assert!(has(
        &second.0,
        &Attribute::PasswordAlgorithm(offered[0].clone())
    ));
    assert!(!has_kind(&second.0, |a| matches!(
        a,
        Attribute::MessageIntegrity(_)
    )));
    assert_eq!(
        verify_message_integrity_sha256(&second.1, &sha256_key),
        Ok(true)
    );
    // The server signs its success with MESSAGE-INTEGRITY-SHA256 under the SHA-256 key.
    let mut attributes = allocate_success();
    attributes.push(Attribute::MessageIntegritySha256(vec![]));
    attributes.push(Attribute::Fingerprint(0));
    let success = Message {
        class: Class::SuccessResponse,
        method: method::ALLOCATE,
        transaction_id: second.0.transaction_id,
        attributes,
    }
    .encode(Some(&sha256_key));
    assert_eq!(h.feed(&success), Received::Control);
    assert!(matches!(h.event(), Some(TurnEvent::Allocated { .. })));
}

#[test]
fn a_stale_nonce_is_retried_with_the_new_nonce() {
    let mut h = Harness::new();
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    // When the server says 438 with a fresh nonce, the request goes again with that nonce.
    h.answer_error(
        &second,
        438,
        &[Attribute::Realm(REALM.into()), nonce("n2")],
        true,
    );
    let third = h.request();
    assert_ne!(third.0.transaction_id, second.0.transaction_id);
    assert!(has(&third.0, &nonce("n2")));
    assert_eq!(verify_message_integrity(&third.1, &md5_key()), Ok(true));
    h.answer_success(&third, allocate_success());
    assert!(matches!(h.event(), Some(TurnEvent::Allocated { .. })));
    // And later requests keep using the new nonce.
    h.advance_to(540);
    let refresh = h.request();
    assert_eq!(refresh.0.method, method::REFRESH);
    assert!(has(&refresh.0, &nonce("n2")));
}

#[test]
fn endless_stale_nonces_end_the_allocation() {
    let mut h = Harness::new();
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    for round in 0..=MAX_STALE_RETRIES {
        let request = h.request();
        h.answer_error(&request, 438, &[nonce(&format!("s{round}"))], true);
    }
    assert_eq!(
        h.event(),
        Some(TurnEvent::Failed(TurnError::StaleNonceLoop {
            server: server()
        }))
    );
    assert!(h.allocation.is_done());
    assert_eq!(h.transmit(), None);
}

#[test]
fn a_wrong_password_is_an_auth_error_naming_the_server() {
    let mut h = Harness::new();
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    // The server cannot verify our MAC, so it challenges again, unsigned.
    h.answer_error(
        &second,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let event = h.event();
    let Some(TurnEvent::Failed(error)) = event else {
        panic!("expected a failure, got {event:?}");
    };
    assert_eq!(
        error,
        TurnError::Unauthorized {
            server: server(),
            username: USER.into(),
            realm: REALM.into(),
        }
    );
    assert!(error.to_string().contains("192.0.2.1:3478"), "{error}");
    assert!(h.allocation.is_done());
    assert_eq!(h.allocation.poll_timeout(), None);
}

#[test]
fn quota_errors_are_reported() {
    for code in [486, 508] {
        let mut h = Harness::new();
        let first = h.request();
        h.answer_error(
            &first,
            401,
            &[Attribute::Realm(REALM.into()), nonce("n1")],
            false,
        );
        let second = h.request();
        h.answer_error(&second, code, &[], true);
        assert_eq!(
            h.event(),
            Some(TurnEvent::Failed(TurnError::Quota {
                server: server(),
                code,
                reason: "test".into(),
            }))
        );
    }
}

#[test]
fn a_success_with_a_bad_mac_is_ignored_and_the_request_keeps_going() {
    let mut h = Harness::new();
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    let forged = response(
        &second.0,
        Class::SuccessResponse,
        allocate_success(),
        b"not the key",
    );
    assert_eq!(h.feed(&forged), Received::Ignored);
    let unsigned = response(&second.0, Class::SuccessResponse, allocate_success(), b"");
    assert_eq!(h.feed(&unsigned), Received::Ignored);
    assert_eq!(h.event(), None);
    // The real answer still counts.
    h.answer_success(&second, allocate_success());
    assert!(matches!(h.event(), Some(TurnEvent::Allocated { .. })));
}

#[test]
fn requests_are_retransmitted_over_udp_then_time_out() {
    let mut h = Harness::new();
    let first = h.request();
    // RFC 8489 §6.2.1 timings, as for Binding: retransmissions at 0.5, 1.5, 3.5… s.
    h.now = h.start + Duration::from_millis(500);
    h.allocation.handle_timeout(h.now);
    assert_eq!(h.request().1, first.1);
    while let Some(at) = h.allocation.poll_timeout() {
        h.now = at;
        h.allocation.handle_timeout(at);
        while h.transmit().is_some() {}
    }
    assert_eq!(h.now - h.start, Duration::from_millis(39_500));
    assert_eq!(
        h.event(),
        Some(TurnEvent::Failed(TurnError::TimedOut {
            server: server(),
            method: "Allocate"
        }))
    );
}

#[test]
fn over_tcp_requests_go_once_and_channel_data_is_padded() {
    let mut config = AllocationConfig::new(server(), USER, PASSWORD);
    config.transport = TurnTransport::Tcp;
    let mut h = Harness::with(config);
    let first = h.request();
    assert_eq!(
        h.allocation.poll_timeout(),
        Some(h.start + Duration::from_millis(39_500))
    );
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    h.answer_success(&second, allocate_success());
    assert!(matches!(h.event(), Some(TurnEvent::Allocated { .. })));
    h.allocation.send_to(peer(), b"abcde", h.now).unwrap();
    let permission = h.request();
    h.answer_success(&permission, vec![]);
    let _send = h.request();
    let bind = h.request();
    h.answer_success(&bind, vec![]);
    h.allocation.send_to(peer(), b"abcde", h.now).unwrap();
    assert_eq!(h.transmit().unwrap(), b"\x40\x00\x00\x05abcde\0\0\0");
    // A request that gets no answer is not retransmitted: it fails after Ti.
    h.advance_to(540);
    let refresh = h.request();
    assert_eq!(refresh.0.method, method::REFRESH);
    while h.transmit().is_some() {}
    h.advance_to(540 + 39);
    assert_eq!(h.transmit(), None);
    h.now = h.start + Duration::from_millis(579_500);
    h.allocation.handle_timeout(h.now);
    assert_eq!(h.transmit(), None);
    let events: Vec<_> = std::iter::from_fn(|| h.event()).collect();
    assert!(
        events.iter().any(|e| matches!(
            e,
            TurnEvent::Failed(TurnError::TimedOut {
                method: "Refresh",
                ..
            })
        )),
        "{events:?}"
    );
}

#[test]
fn the_allocation_is_refreshed_a_minute_before_its_lifetime_ends() {
    let mut h = Harness::allocated();
    assert_eq!(
        h.allocation.poll_timeout(),
        Some(h.start + Duration::from_secs(540))
    );
    h.advance_to(539);
    assert_eq!(h.transmit(), None);
    h.advance_to(540);
    let refresh = h.request();
    assert_eq!(refresh.0.method, method::REFRESH);
    assert!(has(&refresh.0, &Attribute::Lifetime(600)));
    assert_eq!(verify_message_integrity(&refresh.1, &md5_key()), Ok(true));
    // The server may grant less; the next refresh follows what it granted.
    h.answer_success(&refresh, vec![Attribute::Lifetime(300)]);
    assert_eq!(
        h.event(),
        Some(TurnEvent::Refreshed {
            lifetime: Duration::from_secs(300)
        })
    );
    assert_eq!(
        h.allocation.poll_timeout(),
        Some(h.start + Duration::from_secs(540 + 240))
    );
}

#[test]
fn a_refresh_answered_437_reports_the_allocation_gone() {
    let mut h = Harness::allocated();
    h.advance_to(540);
    let refresh = h.request();
    h.answer_error(&refresh, 437, &[], true);
    assert_eq!(
        h.event(),
        Some(TurnEvent::Failed(TurnError::AllocationGone {
            server: server()
        }))
    );
}

#[test]
fn close_releases_the_allocation_with_lifetime_zero() {
    let mut h = Harness::allocated();
    h.allocation.send_to(peer(), b"x", h.now).unwrap();
    let _permission = h.request();
    h.allocation.close(h.now);
    let release = h.request();
    assert_eq!(release.0.method, method::REFRESH);
    assert!(has(&release.0, &Attribute::Lifetime(0)));
    assert_eq!(verify_message_integrity(&release.1, &md5_key()), Ok(true));
    assert_eq!(
        h.allocation.send_to(peer(), b"x", h.now),
        Err(TurnError::NotAllocated)
    );
    h.answer_success(&release, vec![Attribute::Lifetime(0)]);
    assert_eq!(h.event(), Some(TurnEvent::Closed));
    assert!(h.allocation.is_done());
    assert_eq!(h.allocation.poll_timeout(), None);
    // Closing twice does nothing more.
    h.allocation.close(h.now);
    assert_eq!(h.transmit(), None);
    assert_eq!(h.event(), None);
}

#[test]
fn close_ends_even_when_the_server_is_gone() {
    let mut h = Harness::allocated();
    h.allocation.close(h.now);
    let _release = h.request();
    while let Some(at) = h.allocation.poll_timeout() {
        h.now = at;
        h.allocation.handle_timeout(at);
        while h.transmit().is_some() {}
    }
    assert_eq!(h.event(), Some(TurnEvent::Closed));
}

#[test]
fn the_first_send_creates_a_permission_then_sends_then_binds_a_channel() {
    let mut h = Harness::allocated();
    // When the puppet sends to a new peer, only a CreatePermission goes out: the data waits.
    h.allocation.send_to(peer(), b"one", h.now).unwrap();
    h.allocation.send_to(peer(), b"two", h.now).unwrap();
    let permission = h.request();
    assert_eq!(permission.0.method, method::CREATE_PERMISSION);
    assert_eq!(permission.0.peer_address(), Some(peer()));
    assert_eq!(
        verify_message_integrity(&permission.1, &md5_key()),
        Ok(true)
    );
    assert_eq!(h.transmit(), None);
    // Once the permission is in place the queued data goes as Send indications…
    h.answer_success(&permission, vec![]);
    assert_eq!(
        h.event(),
        Some(TurnEvent::PermissionCreated { peer: peer().ip() })
    );
    let one = h.request();
    assert_eq!(
        (one.0.class, one.0.method),
        (Class::Indication, method::SEND)
    );
    assert_eq!(one.0.peer_address(), Some(peer()));
    assert_eq!(one.0.data(), Some(&b"one"[..]));
    // …and a channel is bound for the peer.
    let bind = h.request();
    assert_eq!(bind.0.method, method::CHANNEL_BIND);
    assert!(has(&bind.0, &Attribute::ChannelNumber(CHANNEL_MIN)));
    assert_eq!(bind.0.peer_address(), Some(peer()));
    let two = h.request();
    assert_eq!(two.0.data(), Some(&b"two"[..]));
    // Until the binding succeeds, data still goes as Send indications.
    h.allocation.send_to(peer(), b"three", h.now).unwrap();
    assert_eq!(h.request().0.data(), Some(&b"three"[..]));
    h.answer_success(&bind, vec![]);
    assert_eq!(
        h.event(),
        Some(TurnEvent::ChannelBound {
            peer: peer(),
            channel: CHANNEL_MIN
        })
    );
    assert_eq!(h.allocation.channel(peer()), Some(CHANNEL_MIN));
    // Then as ChannelData, over UDP unpadded.
    h.allocation.send_to(peer(), b"four", h.now).unwrap();
    assert_eq!(h.transmit().unwrap(), b"\x40\x00\x00\x04four");
    assert_eq!(h.transmit(), None);
}

#[test]
fn without_channels_data_always_goes_as_send_indications() {
    let mut config = AllocationConfig::new(server(), USER, PASSWORD);
    config.use_channels = false;
    let mut h = Harness::with(config);
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    h.answer_success(&second, allocate_success());
    h.allocation.send_to(peer(), b"a", h.now).unwrap();
    let permission = h.request();
    h.answer_success(&permission, vec![]);
    for _ in 0..3 {
        assert_eq!(h.request().0.method, method::SEND);
        h.allocation.send_to(peer(), b"a", h.now).unwrap();
    }
}

#[test]
fn data_from_peers_is_unwrapped_from_data_indications_and_channel_data() {
    let mut h = Harness::allocated();
    let data = Message {
        class: Class::Indication,
        method: method::DATA,
        transaction_id: TransactionId([4; 12]),
        attributes: vec![
            Attribute::XorPeerAddress(peer()),
            Attribute::Data(b"hello".to_vec()),
        ],
    }
    .encode(None);
    assert_eq!(
        h.feed(&data),
        Received::Data {
            peer: peer(),
            payload: Cow::Owned(b"hello".to_vec())
        }
    );
    // ChannelData for a channel we never bound is not ours.
    assert_eq!(h.feed(b"\x40\x00\x00\x02hi"), Received::Ignored);
    h.allocation.send_to(peer(), b"x", h.now).unwrap();
    let permission = h.request();
    h.answer_success(&permission, vec![]);
    let _send = h.request();
    let bind = h.request();
    h.answer_success(&bind, vec![]);
    let Received::Data {
        peer: from,
        payload,
    } = h
        .allocation
        .handle_datagram(b"\x40\x00\x00\x02hi\0\0", h.now)
    else {
        panic!("channel data not unwrapped");
    };
    assert_eq!((from, &payload[..]), (peer(), &b"hi"[..]));
    assert!(
        matches!(payload, Cow::Borrowed(_)),
        "ChannelData is not copied"
    );
    // Garbage, Binding requests and unknown responses are not ours.
    for other in [&b""[..], b"\x80\x00\x00\x00", b"\x40\x00\x00\x09hi"] {
        assert_eq!(h.feed(other), Received::Ignored);
    }
    let stranger = response(&bind.0, Class::SuccessResponse, vec![], &h.key);
    assert_eq!(h.feed(&stranger), Received::Ignored, "already answered");
}

#[test]
fn a_permission_is_refreshed_every_4_minutes_while_used_and_dropped_when_not() {
    let mut config = AllocationConfig::new(server(), USER, PASSWORD);
    config.use_channels = false;
    config.lifetime = Some(Duration::from_secs(3600));
    let mut h = Harness::with(config);
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    h.answer_success(
        &second,
        vec![
            Attribute::XorRelayedAddress(relayed()),
            Attribute::Lifetime(3600),
        ],
    );
    h.allocation.send_to(peer(), b"a", h.now).unwrap();
    let permission = h.request();
    h.answer_success(&permission, vec![]);
    let _send = h.request();
    while h.event().is_some() {}
    assert_eq!(
        h.allocation.poll_timeout(),
        Some(h.start + Duration::from_secs(240))
    );
    // Used during the first 4 minutes: refreshed at 4:00.
    h.advance_to(100);
    h.allocation.send_to(peer(), b"b", h.now).unwrap();
    let _send = h.request();
    h.advance_to(239);
    assert_eq!(h.transmit(), None);
    h.advance_to(240);
    let refresh = h.request();
    assert_eq!(refresh.0.method, method::CREATE_PERMISSION);
    assert_eq!(refresh.0.peer_address().map(|a| a.ip()), Some(peer().ip()));
    h.answer_success(&refresh, vec![]);
    assert_eq!(h.event(), None, "a refresh is not a new permission");
    // Data received counts as use too: refreshed again at 8:00.
    h.advance_to(300);
    let data = Message {
        class: Class::Indication,
        method: method::DATA,
        transaction_id: TransactionId([4; 12]),
        attributes: vec![Attribute::XorPeerAddress(peer()), Attribute::Data(vec![1])],
    }
    .encode(None);
    assert!(matches!(h.feed(&data), Received::Data { .. }));
    h.advance_to(480);
    let again = h.request();
    assert_eq!(again.0.method, method::CREATE_PERMISSION);
    h.answer_success(&again, vec![]);
    // Unused from 8:00 to 12:00: dropped, not refreshed; the next send creates it anew.
    h.advance_to(720);
    assert_eq!(h.transmit(), None);
    h.allocation.send_to(peer(), b"c", h.now).unwrap();
    let anew = h.request();
    assert_eq!(anew.0.method, method::CREATE_PERMISSION);
    assert_eq!(h.transmit(), None, "the data waits for the new permission");
}

#[test]
fn a_channel_is_rebound_every_9_minutes_while_used() {
    let mut config = AllocationConfig::new(server(), USER, PASSWORD);
    config.lifetime = Some(Duration::from_secs(3600));
    let mut h = Harness::with(config);
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    h.answer_success(
        &second,
        vec![
            Attribute::XorRelayedAddress(relayed()),
            Attribute::Lifetime(3600),
        ],
    );
    h.allocation.send_to(peer(), b"a", h.now).unwrap();
    let permission = h.request();
    h.answer_success(&permission, vec![]);
    let _send = h.request();
    let bind = h.request();
    h.answer_success(&bind, vec![]);
    // Keep the peer busy every minute and answer the 4-minute permission refreshes.
    let mut rebinds = Vec::new();
    for minute in 1..=19 {
        h.advance_to(minute * 60);
        h.allocation.send_to(peer(), b"x", h.now).unwrap();
        while let Some(bytes) = h.transmit() {
            if looks_like_channel_data(&bytes) {
                continue;
            }
            let message = parse(&bytes).unwrap();
            if message.method == method::CHANNEL_BIND {
                assert!(has(&message, &Attribute::ChannelNumber(CHANNEL_MIN)));
                rebinds.push(minute);
            }
            let request = (message, bytes);
            h.answer_success(&request, vec![]);
        }
    }
    assert_eq!(rebinds, [9, 18]);
    assert_eq!(h.allocation.channel(peer()), Some(CHANNEL_MIN));
}

#[test]
fn a_refused_permission_is_reported_and_its_data_dropped() {
    let mut h = Harness::allocated();
    h.allocation.send_to(peer(), b"a", h.now).unwrap();
    let permission = h.request();
    h.answer_error(&permission, 403, &[], true);
    assert!(matches!(
        h.event(),
        Some(TurnEvent::PermissionFailed { peer: ip, error: TurnError::Refused { code: 403, .. } }) if ip == peer().ip()
    ));
    assert_eq!(h.transmit(), None);
    // The allocation itself is fine, and the next send tries again.
    h.allocation.send_to(peer(), b"b", h.now).unwrap();
    assert_eq!(h.request().0.method, method::CREATE_PERMISSION);
}

#[test]
fn sends_are_bounded() {
    let mut config = AllocationConfig::new(server(), USER, PASSWORD);
    config.max_peers = 1;
    let mut h = Harness::with(config);
    assert_eq!(
        h.allocation.send_to(peer(), b"a", h.now),
        Err(TurnError::NotAllocated)
    );
    let first = h.request();
    h.answer_error(
        &first,
        401,
        &[Attribute::Realm(REALM.into()), nonce("n1")],
        false,
    );
    let second = h.request();
    h.answer_success(&second, allocate_success());
    assert_eq!(
        h.allocation
            .send_to(peer(), &vec![0; MAX_PAYLOAD + 1], h.now),
        Err(TurnError::PayloadTooLarge {
            len: MAX_PAYLOAD + 1
        })
    );
    h.allocation.send_to(peer(), b"a", h.now).unwrap();
    let other: SocketAddr = "198.51.100.21:5000".parse().unwrap();
    assert_eq!(
        h.allocation.send_to(other, b"a", h.now),
        Err(TurnError::TooManyPeers { max: 1 })
    );
    // While the permission is pending, at most MAX_QUEUED_PER_PEER datagrams wait.
    for i in 0..100u8 {
        h.allocation.send_to(peer(), &[i], h.now).unwrap();
    }
    let permission = h.request();
    h.answer_success(&permission, vec![]);
    let mut sent = Vec::new();
    while let Some(bytes) = h.transmit() {
        let message = parse(&bytes).unwrap();
        if let Some(data) = message.data() {
            sent.push(data[0]);
        }
    }
    assert_eq!(sent.len(), MAX_QUEUED_PER_PEER);
    assert_eq!(sent.last(), Some(&99), "the newest survive");
}

#[test]
fn closing_before_the_allocation_exists_just_stops() {
    let mut h = Harness::new();
    let _first = h.request();
    h.allocation.close(h.now);
    assert_eq!(h.event(), Some(TurnEvent::Closed));
    assert_eq!(h.transmit(), None);
    assert_eq!(h.allocation.poll_timeout(), None);
    assert_eq!(
        h.allocation.start_allocate(h.now),
        Err(TurnError::AlreadyStarted)
    );
}

#[test]
fn turn_traffic_is_told_from_ice_and_media() {
    let tid = TransactionId([1; 12]);
    let stun = |class, method| {
        Message {
            class,
            method,
            transaction_id: tid,
            attributes: vec![],
        }
        .encode(None)
    };
    assert!(is_turn_traffic(b"\x40\x00\x00\x00"));
    assert!(is_turn_traffic(b"\x7f\xff\x00\x00"));
    assert!(is_turn_traffic(&stun(Class::Indication, method::DATA)));
    assert!(is_turn_traffic(&stun(
        Class::SuccessResponse,
        method::ALLOCATE
    )));
    assert!(is_turn_traffic(&stun(
        Class::ErrorResponse,
        method::CHANNEL_BIND
    )));
    assert!(!is_turn_traffic(&stun(Class::Request, method::BINDING)));
    assert!(!is_turn_traffic(&stun(
        Class::SuccessResponse,
        method::BINDING
    )));
    assert!(!is_turn_traffic(b"\x16\xfe\xfd\x00\x00\x00\x00\x00")); // DTLS
    assert!(!is_turn_traffic(b"\x80\x60\x00\x01")); // RTP
    assert!(!is_turn_traffic(b"\x40\x00")); // too short for ChannelData
    assert!(!is_turn_traffic(b""));
}

#[test]
fn debug_output_never_shows_the_password_or_key() {
    let h = Harness::allocated();
    let debug = format!("{:?}", h.allocation);
    assert!(debug.contains("<redacted>"));
    assert!(!debug.contains(PASSWORD), "{debug}");
    let key_bytes = format!("{:?}", md5_key());
    assert!(
        !debug.contains(&key_bytes[1..key_bytes.len() - 1]),
        "{debug}"
    );
}

#[test]
fn every_mutation_of_real_server_messages_is_handled_without_panic() {
    // Given an allocation whose ChannelBind waits for its answer…
    let mut h = Harness::allocated();
    h.allocation.send_to(peer(), b"x", h.now).unwrap();
    let permission = h.request();
    h.answer_success(&permission, vec![]);
    let _send = h.request();
    let bind = h.request();
    let bind_success = response(&bind.0, Class::SuccessResponse, vec![], &h.key);
    let data = Message {
        class: Class::Indication,
        method: method::DATA,
        transaction_id: TransactionId([4; 12]),
        attributes: vec![
            Attribute::XorPeerAddress(peer()),
            Attribute::Data(vec![1, 2, 3]),
        ],
    }
    .encode(None);
    let channel_data = encode_channel_data(CHANNEL_MIN, b"abc", true);
    let mutations = |seed: &[u8], indices: std::ops::Range<usize>| {
        let mut all: Vec<Vec<u8>> = (0..seed.len()).map(|len| seed[..len].to_vec()).collect();
        for index in indices {
            for value in [0x00u8, 0x01, 0x40, 0x7f, 0x80, 0xff] {
                if seed[index] != value {
                    let mut mutated = seed.to_vec();
                    mutated[index] = value;
                    all.push(mutated);
                }
            }
        }
        all
    };
    // …when it gets every truncation and single-byte change of the bytes the response's
    // MESSAGE-INTEGRITY covers, none passes for the real answer…
    let covered = bind_success.len() - 8; // all but FINGERPRINT, which comes after the MAC
    for mutated in mutations(&bind_success, 0..covered) {
        let _ = h.allocation.handle_datagram(&mutated, h.now);
        assert_eq!(
            h.allocation.channel(peer()),
            None,
            "accepted {mutated:02x?}"
        );
    }
    // …and no change of anything else a server sends makes it panic…
    for mutated in mutations(&data, 0..data.len())
        .into_iter()
        .chain(mutations(&channel_data, 0..channel_data.len()))
        .chain(mutations(&bind_success, covered..bind_success.len()))
    {
        let _ = h.allocation.handle_datagram(&mutated, h.now);
    }
    // …while the real answer binds the channel (the last 8 bytes are not covered by the MAC:
    // RFC 8489 §14.5 has attributes after MESSAGE-INTEGRITY ignored, so a changed FINGERPRINT
    // type is no forgery and may have bound it already).
    let _ = h.feed(&bind_success);
    assert_eq!(h.allocation.channel(peer()), Some(CHANNEL_MIN));
}
