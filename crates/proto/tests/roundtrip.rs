//! Property tests: every message and event kind survives encode → decode unchanged, and the
//! decoders are total over arbitrary input.

use proptest::prelude::*;
use rtcdesk_proto::control::{
    ControlMessage, FileErrorCode, FileRole, KeyboardMode, Sha256, MAX_FILE_WINDOW, MIN_FILE_WINDOW,
};
use rtcdesk_proto::file::{FileChunk, MAX_CHUNK_DATA};
use rtcdesk_proto::input::{
    InputEvent, InputMessage, KeyCode, Modifiers, MouseButton, WheelUnit, MAX_TEXT,
};
use rtcdesk_proto::signal::*;

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including quotes, backslashes and control characters JSON must escape.
    proptest::collection::vec(any::<char>(), 0..64).prop_map(|c| c.into_iter().collect())
}

fn session() -> impl Strategy<Value = SessionId> {
    text().prop_map(SessionId)
}

fn control_code() -> impl Strategy<Value = ControlCode> {
    (0..ControlCode::SPACE).prop_map(|n| ControlCode::from_number(n).unwrap())
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::BadMessage),
        Just(ErrorCode::UnknownType),
        Just(ErrorCode::UnknownCode),
        Just(ErrorCode::UnknownSession),
        Just(ErrorCode::Busy),
        Just(ErrorCode::RateLimited),
        Just(ErrorCode::NotAllowed),
        Just(ErrorCode::UnknownRoom),
    ]
}

fn room() -> impl Strategy<Value = RoomId> {
    text().prop_map(RoomId)
}

fn member_status() -> impl Strategy<Value = MemberStatus> {
    prop_oneof![
        Just(MemberStatus::Joined),
        Just(MemberStatus::Watching),
        Just(MemberStatus::Controlled),
        Just(MemberStatus::Reconnecting),
        Just(MemberStatus::Left),
    ]
}

fn ice_servers() -> impl Strategy<Value = Vec<IceServer>> {
    let server = (
        proptest::collection::vec(text(), 0..3),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(|(urls, username, credential)| IceServer {
            urls,
            username,
            credential,
        });
    proptest::collection::vec(server, 0..3)
}

fn signal_message() -> impl Strategy<Value = SignalMessage> {
    prop_oneof![
        (
            text(),
            proptest::option::of(any::<bool>()),
            proptest::option::of((control_code(), text()))
        )
            .prop_map(|(name, watchers, device)| Register {
                name,
                watchers,
                device: device.map(|(id, token)| DeviceClaim { id, token }),
            }
            .into()),
        (control_code(), any::<u64>(), ice_servers(), any::<bool>()).prop_map(
            |(code, expires_in, ice_servers, device)| Registered {
                code,
                expires_in,
                ice_servers,
                device,
            }
            .into()
        ),
        (control_code(), text(), proptest::option::of(text()))
            .prop_map(|(code, name, pake)| { Connect { code, name, pake }.into() }),
        (session(), text(), proptest::option::of(text())).prop_map(|(session, from, pake)| {
            Incoming {
                session,
                from,
                pake,
            }
            .into()
        }),
        (session(), text()).prop_map(|(session, data)| Pake { session, data }.into()),
        (session(), proptest::option::of(text())).prop_map(|(session, name)| Ringing {
            session,
            name
        }
        .into()),
        session().prop_map(|session| Accept { session }.into()),
        (session(), proptest::option::of(text())).prop_map(|(session, reason)| Reject {
            session,
            reason
        }
        .into()),
        (session(), ice_servers()).prop_map(|(session, ice_servers)| Accepted {
            session,
            ice_servers
        }
        .into()),
        (session(), proptest::option::of(text())).prop_map(|(session, reason)| Rejected {
            session,
            reason
        }
        .into()),
        (session(), text()).prop_map(|(session, sdp)| Offer { session, sdp }.into()),
        (session(), text()).prop_map(|(session, sdp)| Answer { session, sdp }.into()),
        (session(), text(), proptest::option::of(text())).prop_map(|(session, candidate, mid)| {
            Candidate {
                session,
                candidate,
                mid,
            }
            .into()
        }),
        session().prop_map(|session| Leave { session }.into()),
        session().prop_map(|session| Left { session }.into()),
        (error_code(), text()).prop_map(|(code, message)| Error { code, message }.into()),
        text().prop_map(|name| RoomCreate { name }.into()),
        (room(), control_code(), any::<u64>(), ice_servers()).prop_map(
            |(room, code, expires_in, ice_servers)| {
                RoomCreated {
                    room,
                    code,
                    expires_in,
                    ice_servers,
                }
                .into()
            }
        ),
        room().prop_map(|room| RoomClose { room }.into()),
        room().prop_map(|room| RoomClosed { room }.into()),
        room().prop_map(|room| RoomEnd { room }.into()),
        room().prop_map(|room| RoomEnded { room }.into()),
        (control_code(), text()).prop_map(|(code, name)| RoomJoin { code, name }.into()),
        (room(), session(), text(), ice_servers()).prop_map(
            |(room, session, name, ice_servers)| RoomJoined {
                room,
                session,
                name,
                ice_servers,
            }
            .into()
        ),
        (room(), session(), text(), member_status()).prop_map(|(room, session, name, state)| {
            Member {
                room,
                session,
                name,
                state,
            }
            .into()
        }),
        (room(), session(), member_status()).prop_map(|(room, session, state)| MemberState {
            room,
            session,
            state
        }
        .into()),
    ]
}

fn modifiers() -> impl Strategy<Value = Modifiers> {
    (0u8..0x80).prop_map(|bits| Modifiers::from_bits(bits).unwrap())
}

fn input_event() -> impl Strategy<Value = InputEvent> {
    let button = (0..5u8).prop_map(|n| MouseButton::from_wire(n).unwrap());
    let key = proptest::sample::select(KeyCode::ALL);
    let unit = prop_oneof![Just(WheelUnit::Lines120), Just(WheelUnit::Pixels)];
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(x, y)| InputEvent::PointerMove { x, y }),
        (
            button,
            any::<bool>(),
            any::<u16>(),
            any::<u16>(),
            modifiers()
        )
            .prop_map(|(button, pressed, x, y, modifiers)| InputEvent::Button {
                button,
                pressed,
                x,
                y,
                modifiers
            }),
        (any::<u16>(), any::<u16>(), unit, any::<i16>(), any::<i16>())
            .prop_map(|(x, y, unit, dx, dy)| InputEvent::Wheel { x, y, unit, dx, dy }),
        (key, any::<bool>(), modifiers()).prop_map(|(code, pressed, modifiers)| {
            InputEvent::Key {
                code,
                pressed,
                modifiers,
            }
        }),
        proptest::collection::vec(any::<char>(), 0..MAX_TEXT / 4)
            .prop_map(|c| InputEvent::Text(c.into_iter().collect())),
    ]
}

fn finite() -> impl Strategy<Value = f64> {
    -1e12f64..1e12
}

fn role() -> impl Strategy<Value = FileRole> {
    prop_oneof![Just(FileRole::Sender), Just(FileRole::Receiver)]
}

fn file_error_code() -> impl Strategy<Value = FileErrorCode> {
    prop_oneof![
        Just(FileErrorCode::HashMismatch),
        Just(FileErrorCode::NoSpace),
        Just(FileErrorCode::DiskFull),
        Just(FileErrorCode::WriteFailed),
        Just(FileErrorCode::ReadFailed),
        Just(FileErrorCode::Protocol),
        Just(FileErrorCode::TooMany),
        Just(FileErrorCode::Other),
    ]
}

fn control_message() -> impl Strategy<Value = ControlMessage> {
    prop_oneof![
        text().prop_map(|text| ControlMessage::Chat { text }),
        (any::<u32>(), text(), any::<u64>(), any::<[u8; 32]>()).prop_map(
            |(id, name, size, digest)| ControlMessage::FileOffer {
                id,
                name,
                size,
                sha256: Sha256(digest)
            }
        ),
        (
            any::<u32>(),
            any::<u64>(),
            MIN_FILE_WINDOW..=MAX_FILE_WINDOW
        )
            .prop_map(|(id, offset, window)| ControlMessage::FileAccept {
                id,
                offset,
                window
            }),
        (any::<u32>(), text()).prop_map(|(id, reason)| ControlMessage::FileDecline { id, reason }),
        (any::<u32>(), any::<u64>())
            .prop_map(|(id, offset)| ControlMessage::FileAck { id, offset }),
        any::<u32>().prop_map(|id| ControlMessage::FileDone { id }),
        (any::<u32>(), role(), text()).prop_map(|(id, by, reason)| ControlMessage::FileCancel {
            id,
            by,
            reason
        }),
        (any::<u32>(), role(), file_error_code(), text()).prop_map(|(id, by, code, message)| {
            ControlMessage::FileError {
                id,
                by,
                code,
                message,
            }
        }),
        text().prop_map(|text| ControlMessage::Clipboard { text }),
        prop_oneof![Just(KeyboardMode::Map), Just(KeyboardMode::Translate)]
            .prop_map(|mode| ControlMessage::Keyboard { mode }),
        (finite(), finite(), finite(), 0.0f64..=1.0).prop_map(
            |(fps, rtt_ms, bitrate_kbps, loss)| {
                ControlMessage::Stats {
                    fps,
                    rtt_ms,
                    bitrate_kbps,
                    loss,
                }
            }
        ),
    ]
}

proptest! {
    #[test]
    fn signal_messages_round_trip(message in signal_message()) {
        let text = message.encode();
        prop_assert_eq!(SignalMessage::parse(&text), Ok(message.clone()));
        // One canonical encoding: re-encoding the parsed message gives the same text.
        prop_assert_eq!(SignalMessage::parse(&text).unwrap().encode(), text);
    }

    #[test]
    fn input_messages_round_trip(seq in any::<u32>(), timestamp_us in any::<u64>(), event in input_event()) {
        let message = InputMessage { seq, timestamp_us, event };
        prop_assert_eq!(InputMessage::decode(&message.to_bytes()), Ok(message));
    }

    #[test]
    fn control_messages_round_trip(message in control_message()) {
        prop_assert_eq!(ControlMessage::parse(&message.encode()), Ok(message));
    }

    #[test]
    fn file_chunks_round_trip(
        id in any::<u32>(), offset in 0..u64::MAX / 2,
        data in proptest::collection::vec(any::<u8>(), 1..=MAX_CHUNK_DATA)
    ) {
        let chunk = FileChunk { id, offset, data: &data };
        let bytes = chunk.to_bytes();
        prop_assert_eq!(FileChunk::decode(&bytes), Ok(chunk));
    }

    #[test]
    fn file_chunk_decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(chunk) = FileChunk::decode(&bytes) {
            prop_assert_eq!(chunk.to_bytes(), bytes);
        }
    }

    #[test]
    fn input_decoder_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = InputMessage::decode(&bytes);
    }

    #[test]
    fn input_decoder_is_total_on_mutated_messages(
        seq in any::<u32>(), event in input_event(), at in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()
    ) {
        let mut bytes = InputMessage { seq, timestamp_us: 0, event }.to_bytes();
        let at = at % bytes.len();
        bytes[at] = byte;
        bytes.truncate(cut % (bytes.len() + 1));
        let _ = InputMessage::decode(&bytes);
    }

    #[test]
    fn signal_and_control_parsers_are_total(text in "\\PC{0,200}") {
        let _ = SignalMessage::parse(&text);
        let _ = ControlMessage::parse(&text);
    }
}
