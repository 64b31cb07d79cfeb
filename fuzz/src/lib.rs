//! The bodies of the fuzz targets, one function each, so that the same code runs under libFuzzer
//! (`fuzz_targets/`, `cargo xtask fuzz`) and over the seed corpora as ordinary tests
//! (`tests/corpus.rs`, part of every `cargo xtask ci`).
//!
//! Each body feeds bytes from the network to a parser exactly as the project uses it and checks
//! what must hold for any input: no panic, and for our own formats, that whatever parses
//! re-encodes canonically.
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use rtcdesk_files::{Offer, Receiver, Sender};
use rtcdesk_proto::control::{ControlMessage, Sha256};
use rtcdesk_proto::file::FileChunk;
use rtcdesk_proto::input::InputMessage;
use rtcdesk_proto::signal::SignalMessage;

/// Runs the named target's body; `false` if there is no such target.
///
/// The list of targets is kept once, as the `[[bin]]` entries of `fuzz/Cargo.toml` (which
/// cargo-fuzz needs anyway); each has its seed corpus in `testdata/fuzz/<name>/`. `cargo xtask
/// fuzz` asks cargo-fuzz for that list, and `tests/corpus.rs` checks that every entry has a
/// body here and seeds there.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "signal_message" => signal_message(data),
        "input_event" => input_event(data),
        "sdp" => sdp(data),
        "stun_message" => stun_message(data),
        "turn_message" => turn_message(data),
        "file_message" => file_message(data),
        "pake_message" => pake_message(data),
        "av1_unit" => av1_unit(data),
        "router_sequence" => router_sequence(data),
        _ => return false,
    }
    true
}

/// A WebSocket text frame reaching the signaling server or a client.
pub fn signal_message(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = SignalMessage::parse(text) {
        let canonical = message.encode();
        let again = SignalMessage::parse(&canonical);
        assert_eq!(
            again.as_ref(),
            Ok(&message),
            "canonical form must parse back"
        );
        assert_eq!(again.map(|m| m.encode()), Ok(canonical));
    }
    let _ = rtcdesk_proto::control::ControlMessage::parse(text);
}

/// A data-channel message reaching the puppet's injector.
pub fn input_event(data: &[u8]) {
    if let Ok(message) = InputMessage::decode(data) {
        // The encoding is canonical: a message that decodes re-encodes to the same bytes.
        assert_eq!(message.to_bytes(), data);
    }
}

/// An SDP offer or answer relayed by signaling, as raw SDP text and as a browser's
/// `{type, sdp}` JSON, and an ICE candidate line as trickled.
pub fn sdp(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(offer) = str0m::change::SdpOffer::from_sdp_string(text) {
            let _ = offer.to_sdp_string();
        }
        let _ = str0m::change::SdpAnswer::from_sdp_string(text);
        for line in text.lines().take(64) {
            let candidate = line.strip_prefix("a=").unwrap_or(line);
            let _ = str0m::Candidate::from_sdp_string(candidate);
        }
    }
    let _ = serde_json::from_slice::<str0m::change::SdpOffer>(data);
    let _ = serde_json::from_slice::<str0m::change::SdpAnswer>(data);
}

/// A UDP datagram reaching the STUN client (a server's answer, or anything else on its socket).
pub fn stun_message(data: &[u8]) {
    let _ = rtcdesk_stun::looks_like_stun(data);
    if let Ok(message) = rtcdesk_stun::parse(data) {
        // What RFC 8489 makes mandatory for any message: the top two bits of the type clear, the
        // magic cookie, and a length that is a whole number of 32-bit words. (The RFC 7983
        // demultiplexing check is stricter on purpose: it only admits first bytes 0..=3.)
        assert_eq!(data[0] & 0xc0, 0, "type's top bits must be zero");
        assert_eq!(data[4..8], [0x21, 0x12, 0xa4, 0x42], "magic cookie");
        assert_eq!(data.len() % 4, 0, "whole 32-bit words");
        let _ = message.mapped_address();
        let _ = message.error_code();
        let _ = message.software();
    }
}

/// A datagram or TCP read from a TURN server (or anything else arriving from its address): the
/// demultiplexing check, the ChannelData and STUN parsers with TURN's attributes, the TCP stream
/// framer, an allocation's `handle_datagram`, and the `turn:` URL parser on the same bytes.
pub fn turn_message(data: &[u8]) {
    use rtcdesk_stun::turn::{
        encode_channel_data, is_turn_traffic, parse_channel_data, StreamFramer, TurnUrl,
        CHANNEL_MAX, CHANNEL_MIN, MAX_FRAME,
    };

    let _ = is_turn_traffic(data);
    if let Ok(frame) = parse_channel_data(data) {
        assert!((CHANNEL_MIN..=CHANNEL_MAX).contains(&frame.channel));
        // What parsed is the frame's prefix; only up to 3 bytes of padding may follow.
        let again = encode_channel_data(frame.channel, frame.data, false);
        assert_eq!(&data[..again.len()], &again[..]);
        assert!(data.len() - again.len() <= 3);
    }
    if let Ok(message) = rtcdesk_stun::parse(data) {
        let _ = (message.relayed_address(), message.peer_address());
        let _ = (
            message.lifetime(),
            message.data(),
            message.realm(),
            message.nonce(),
        );
        let _ = message.password_algorithms();
        // Without MACs or CRC to recompute, a message re-encodes to one that parses back equal.
        if !message.has_integrity() && !message.has_fingerprint() {
            let again = rtcdesk_stun::parse(&message.encode(None));
            assert_eq!(
                again.as_ref(),
                Ok(&message),
                "re-encoded message must parse back"
            );
        }
    }

    let mut framer = StreamFramer::new();
    if framer.push(data).is_ok() {
        let mut framed = 0;
        while let Ok(Some(frame)) = framer.next_frame() {
            assert!(frame.len() <= MAX_FRAME && !frame.is_empty());
            framed += frame.len();
        }
        assert!(framed + framer.buffered() <= data.len());
    }

    // An allocation waiting for its Allocate response, and one with a bound channel, handed the
    // bytes as if from the server.
    if let Some(mut allocation) = allocation_with_a_channel(false) {
        let now = std::time::Instant::now();
        let _ = allocation.handle_datagram(data, now);
        while allocation.poll_event().is_some() {}
        while allocation.poll_transmit().is_some() {}
    }
    if let Some(mut allocation) = allocation_with_a_channel(true) {
        let now = std::time::Instant::now();
        let _ = allocation.handle_datagram(data, now);
        let peer = std::net::SocketAddr::from(([198, 51, 100, 1], 5000));
        let _ = allocation.send_to(peer, data, now);
        allocation.close(now);
        while allocation.poll_event().is_some() {}
        while allocation.poll_transmit().is_some() {}
    }

    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(url) = TurnUrl::parse(text) {
            assert_eq!(
                TurnUrl::parse(&url.to_string()),
                Ok(url),
                "canonical URL parses back"
            );
        }
    }
}

/// An allocation on a server that asks no credentials: just started, or (with `bound`) with a
/// permission and a channel bound for 198.51.100.1:5000, answered by hand.
fn allocation_with_a_channel(bound: bool) -> Option<rtcdesk_stun::turn::Allocation> {
    use rtcdesk_stun::turn::{Allocation, AllocationConfig};
    use rtcdesk_stun::{Attribute, Class, Message};

    let server = std::net::SocketAddr::from(([192, 0, 2, 1], 3478));
    let peer = std::net::SocketAddr::from(([198, 51, 100, 1], 5000));
    let now = std::time::Instant::now();
    let mut allocation = Allocation::new(AllocationConfig::new(server, "user", "pass")).ok()?;
    allocation.start_allocate(now).ok()?;
    if !bound {
        return Some(allocation);
    }
    let answer = |allocation: &mut Allocation, attributes: Vec<Attribute>| -> Option<()> {
        let request = loop {
            let transmit = allocation.poll_transmit()?;
            let message = rtcdesk_stun::parse(&transmit.contents).ok()?;
            if message.class == Class::Request {
                break message;
            }
        };
        let response = Message {
            class: Class::SuccessResponse,
            method: request.method,
            transaction_id: request.transaction_id,
            attributes,
        };
        let _ = allocation.handle_datagram(&response.encode(None), now);
        Some(())
    };
    let relayed = std::net::SocketAddr::from(([192, 0, 2, 1], 49152));
    answer(&mut allocation, vec![Attribute::XorRelayedAddress(relayed)])?;
    allocation.send_to(peer, b"hello", now).ok()?;
    answer(&mut allocation, vec![])?;
    answer(&mut allocation, vec![])?;
    assert_eq!(
        allocation.channel(peer),
        Some(0x4000),
        "the channel is bound"
    );
    while allocation.poll_event().is_some() {}
    Some(allocation)
}

/// A message reaching a file transfer: as one `control` text, as one `file` chunk, and as a
/// sequence of messages (each a u16 little-endian length and that many bytes) fed to a receiver
/// and a sender mid-transfer, which must refuse what breaks the rules and never panic.
pub fn file_message(data: &[u8]) {
    if let Ok(chunk) = FileChunk::decode(data) {
        assert_eq!(chunk.to_bytes(), data, "a chunk's encoding is canonical");
        assert!(chunk.end() >= chunk.offset);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(message) = ControlMessage::parse(text) {
            let canonical = message.encode();
            let again = ControlMessage::parse(&canonical);
            assert_eq!(
                again.as_ref(),
                Ok(&message),
                "canonical form must parse back"
            );
            assert_eq!(again.map(|m| m.encode()), Ok(canonical));
        }
    }
    file_session(data);
}

/// Drives one [`Receiver`] and one [`Sender`] with the messages in `data`.
fn file_session(data: &[u8]) {
    const SIZE: u64 = 1 << 20;
    const WINDOW: u64 = 64 * 1024;
    let mut now = Instant::now();
    let offer = Offer {
        id: 1,
        name: "x".into(),
        size: SIZE,
        sha256: Sha256([0; 32]),
    };
    let mut receiver = Receiver::new(offer.clone(), now);
    receiver
        .accept(0, Default::default(), WINDOW, now)
        .expect("a fresh offer accepts");
    let mut sender = Sender::new(offer, now);
    let mut granted = 0;
    let mut told = 0;
    let mut rest = data;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (message, tail) = tail.split_at(len);
        rest = tail;
        now += Duration::from_millis(1);
        if let Ok(chunk) = FileChunk::decode(message) {
            let before = receiver.received();
            match receiver.handle_chunk(&chunk, now) {
                Ok(()) => {
                    assert_eq!(chunk.offset, before);
                    assert!(receiver.received() <= SIZE);
                    assert!(receiver.received() <= told + WINDOW);
                }
                Err(_) => assert_eq!(receiver.received(), before),
            }
            if let Some(ControlMessage::FileAck { offset, .. }) = receiver.poll_ack() {
                receiver.ack_sent(offset);
                told = offset;
            }
            if receiver.is_complete() {
                let _ = receiver.verify();
            }
        } else if let Ok(text) = std::str::from_utf8(message) {
            let result = match ControlMessage::parse(text) {
                Ok(ControlMessage::FileAccept { offset, window, .. }) => {
                    granted = window;
                    sender.handle_accept(offset, window, now)
                }
                Ok(ControlMessage::FileAck { offset, .. }) => sender.handle_ack(offset, now),
                Ok(ControlMessage::FileDone { .. }) => sender.handle_done(now),
                Ok(ControlMessage::FileDecline { reason, .. }) => sender.handle_decline(reason),
                _ => Ok(()),
            };
            if let Err(error) = result {
                let _ = sender.fail(&error);
            }
            while let Some(range) = sender.next_chunk() {
                assert!(range.len > 0 && range.offset + range.len as u64 <= SIZE);
                assert!(sender.in_flight() <= granted);
            }
        }
    }
}

/// A verification message (`connect.pake`, `incoming.pake`, `pake.data`), or a code typed by a
/// person: whatever parses re-encodes to itself, and each step of verified pairing refuses what
/// does not belong to it without panicking.
pub fn pake_message(data: &[u8]) {
    use rtcdesk_pake::{
        ControllerStart, Fingerprint, PairingCode, PakeMessage, PuppetResponse, Secret,
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = text.parse::<PairingCode>() {
        let shown = code.to_string();
        assert_eq!(
            shown.parse::<PairingCode>(),
            Ok(code),
            "a shown code parses back"
        );
    }
    let Ok(message) = PakeMessage::decode(text) else {
        return;
    };
    assert_eq!(PakeMessage::decode(&message.encode()), Ok(message.clone()));
    let secret = Secret::from_number(123).expect("three digits");
    let route = rtcdesk_proto::signal::ControlCode::from_number(123_456_789).expect("nine digits");
    // As the controller's start, at a puppet.
    if let Ok((response, _reply)) = PuppetResponse::new(route, secret, "s", &message) {
        let _ = response.check(&message);
    }
    // As the puppet's reply, at a controller.
    let (start, _) = ControllerStart::new(route, secret);
    if let Ok((key, _confirm)) = start.finish("s", &message) {
        let fp = Fingerprint {
            hash: "sha-256".into(),
            digest: vec![0; 32],
        };
        let _ = key.check_fingerprints(&message, &fp, &fp);
    }
}

/// A depacketized AV1 temporal unit reaching the controller's decoder: the check that runs
/// before dav1d sees it.
pub fn av1_unit(data: &[u8]) {
    use rtcdesk_proto::av1::{check_temporal_unit, BadTemporalUnit};
    match check_temporal_unit(data) {
        Ok(()) => assert!(!data.is_empty()),
        Err(BadTemporalUnit::Truncated { size, left }) => assert!(size > left as u64),
        Err(_) => {}
    }
    // A unit that passes still passes after a temporal delimiter is put in front of it.
    if check_temporal_unit(data).is_ok() {
        let mut framed = vec![0x12, 0x00];
        framed.extend_from_slice(data);
        assert_eq!(check_temporal_unit(&framed), Ok(()));
    }
}

/// Several connections talking to the signaling router at once: the bytes are a script of
/// opens, closes, time passing, pings answered, binary frames, raw text, and well-formed
/// messages that name the codes, sessions and rooms the router handed out earlier in the run
/// (so the fuzzer reaches deep states: rings, accepted sessions, rooms with members, device
/// IDs). After each step, everything the router sent must be canonical signaling text, go to a
/// connection that is open, and its books must agree with the connections it was told about.
pub fn router_sequence(data: &[u8]) {
    use rtcdesk_proto::signal::{
        Accept, Answer, Candidate, Connect, ControlCode, DeviceClaim, Leave, MemberState,
        MemberStatus, Offer, Pake, Register, Reject, RoomClose, RoomCreate, RoomEnd, RoomId,
        RoomJoin, SessionId,
    };
    use rtcdesk_signal::router::{ConnId, Entropy, Output, Router, RouterConfig};

    /// Repeatable "randomness": the run depends on the input only.
    struct Lcg(u64);
    impl Entropy for Lcg {
        fn fill(&mut self, buf: &mut [u8]) {
            for byte in buf {
                self.0 = self
                    .0
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                *byte = (self.0 >> 56) as u8;
            }
        }
    }

    const SLOTS: usize = 6;
    let config = RouterConfig {
        max_connections_per_address: 4,
        max_sessions_per_connection: 4,
        max_rooms_per_connection: 2,
        max_members_per_room: 3,
        max_devices: 3,
        max_failed_connects: 3,
        ..RouterConfig::default()
    };
    let mut now = Instant::now();
    let mut router = Router::with_entropy(config, Box::new(Lcg(7)), now);
    let mut slots: [Option<ConnId>; SLOTS] = [None; SLOTS];
    let mut next_id = 0u64;
    let mut codes: Vec<ControlCode> = Vec::new();
    let mut sessions: Vec<SessionId> = Vec::new();
    let mut rooms: Vec<RoomId> = Vec::new();
    let tokens = [
        "q2Vd7xk1Bz9mN3pL8sT4wAq2",
        "zzzzzzzzzzzzzzzzzzzzzzzz",
        "short",
    ];
    let mut input = data.iter().copied();
    let mut byte = move || input.next();
    let pick = |list_len: usize, b: u8| (b as usize) % list_len.max(1);

    for _ in 0..512 {
        let Some(op) = byte() else { break };
        let slot = (op >> 5) as usize % SLOTS;
        let conn = slots[slot];
        let arg = byte().unwrap_or(0);
        let code = || {
            codes
                .get(pick(codes.len(), arg))
                .copied()
                .unwrap_or_else(|| ControlCode::from_number(u32::from(arg)).expect("in range"))
        };
        let session = || {
            sessions
                .get(pick(sessions.len(), arg))
                .cloned()
                .unwrap_or_else(|| SessionId::from("00000000000000000000000000000000"))
        };
        let room = || {
            rooms
                .get(pick(rooms.len(), arg))
                .cloned()
                .unwrap_or_else(|| RoomId::from("r"))
        };
        let message: Option<rtcdesk_proto::signal::SignalMessage> = match op & 0x1f {
            0 => {
                if conn.is_none() {
                    let id = ConnId(next_id);
                    next_id += 1;
                    let addr = std::net::SocketAddr::from(([192, 0, 2, 1 + (arg % 3)], 40_000));
                    router.handle_open(id, addr, now);
                    slots[slot] = Some(id);
                }
                None
            }
            1 => {
                if let Some(conn) = conn {
                    router.handle_close(conn, now);
                    slots[slot] = None;
                }
                None
            }
            2 => {
                now += Duration::from_millis(u64::from(arg) * 250);
                router.handle_timeout(now);
                None
            }
            3 => {
                if let Some(conn) = conn {
                    router.handle_alive(conn, now);
                }
                None
            }
            4 => {
                if let Some(conn) = conn {
                    router.handle_binary(conn, usize::from(arg) * 1024, now);
                }
                None
            }
            5 => {
                let len = usize::from(arg % 64);
                let bytes: Vec<u8> = (0..len).map_while(|_| byte()).collect();
                if let Some(conn) = conn {
                    router.handle_text(conn, &String::from_utf8_lossy(&bytes), now);
                }
                None
            }
            6 => Some(Register::named("pc").into()),
            7 => Some(
                Register {
                    name: "home".into(),
                    watchers: Some(arg & 1 == 0),
                    device: Some(DeviceClaim {
                        id: ControlCode::from_number(u32::from(arg % 4)).expect("in range"),
                        token: tokens[pick(tokens.len(), arg >> 2)].into(),
                    }),
                }
                .into(),
            ),
            8 => Some(
                Connect {
                    code: code(),
                    name: "Ada".into(),
                    pake: (arg & 1 == 1).then(|| "AQFB".into()),
                }
                .into(),
            ),
            9 => Some(Accept { session: session() }.into()),
            10 => Some(
                Reject {
                    session: session(),
                    reason: None,
                }
                .into(),
            ),
            11 => Some(
                Offer {
                    session: session(),
                    sdp: "v=0".into(),
                }
                .into(),
            ),
            12 => Some(
                Answer {
                    session: session(),
                    sdp: "v=0".into(),
                }
                .into(),
            ),
            13 => Some(
                Candidate {
                    session: session(),
                    candidate: String::new(),
                    mid: None,
                }
                .into(),
            ),
            14 => Some(
                Pake {
                    session: session(),
                    data: "AQJC".into(),
                }
                .into(),
            ),
            15 => Some(Leave { session: session() }.into()),
            16 => Some(
                RoomCreate {
                    name: "hall".into(),
                }
                .into(),
            ),
            17 => Some(
                RoomJoin {
                    code: code(),
                    name: "desk".into(),
                }
                .into(),
            ),
            18 => Some(RoomClose { room: room() }.into()),
            19 => Some(RoomEnd { room: room() }.into()),
            20 => Some(
                MemberState {
                    room: room(),
                    session: session(),
                    state: match arg % 3 {
                        0 => MemberStatus::Joined,
                        1 => MemberStatus::Watching,
                        _ => MemberStatus::Controlled,
                    },
                }
                .into(),
            ),
            _ => None,
        };
        if let (Some(message), Some(conn)) = (message, conn) {
            router.handle_text(conn, &message.encode(), now);
        }
        while let Some(output) = router.poll_output() {
            let target = match &output {
                Output::Send { conn, .. } | Output::Ping { conn } | Output::Close { conn, .. } => {
                    *conn
                }
            };
            assert!(
                slots.contains(&Some(target)),
                "output for a connection that is not open: {output:?}"
            );
            match output {
                Output::Send { text, .. } => {
                    let message = rtcdesk_proto::signal::SignalMessage::parse(&text)
                        .unwrap_or_else(|e| panic!("the router sent {text:?}: {e:?}"));
                    assert_eq!(message.encode(), text, "the router's text is canonical");
                    use rtcdesk_proto::signal::SignalMessage as M;
                    match message {
                        M::Registered(r) => codes.push(r.code),
                        M::RoomCreated(r) => {
                            codes.push(r.code);
                            rooms.push(r.room);
                        }
                        M::Incoming(i) => sessions.push(i.session),
                        M::RoomJoined(j) => sessions.push(j.session),
                        _ => {}
                    }
                }
                Output::Close { conn, .. } => {
                    for slot in slots.iter_mut() {
                        if *slot == Some(conn) {
                            *slot = None;
                        }
                    }
                }
                Output::Ping { .. } => {}
            }
        }
        // Keep the lists short so picks stay meaningful.
        codes.truncate(16);
        sessions.truncate(16);
        rooms.truncate(8);
        assert_eq!(
            router.connection_count(),
            slots.iter().flatten().count(),
            "the router's connections are the ones opened and not closed"
        );
        assert!(router.session_count() <= router.connection_count() * 4);
    }
}
