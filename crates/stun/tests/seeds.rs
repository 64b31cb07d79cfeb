//! Real messages captured from coturn 4.6.1 (Debian 12), kept as fuzz seeds, parse as expected.

use rtcdesk_stun::turn::{is_turn_traffic, parse_channel_data};
use rtcdesk_stun::{method, parse, Attribute, Class};

#[test]
fn coturn_binding_response() {
    let bytes =
        include_bytes!("../../../testdata/fuzz/stun_message/coturn-4.6-binding-response.bin");
    let message = parse(bytes).unwrap();
    assert_eq!(message.class, Class::SuccessResponse);
    assert!(message.mapped_address().unwrap().ip().is_loopback());
    assert!(message.software().unwrap().starts_with("Coturn"));
}

#[test]
fn coturn_420_error_response() {
    let bytes =
        include_bytes!("../../../testdata/fuzz/stun_message/coturn-4.6-420-error-response.bin");
    let message = parse(bytes).unwrap();
    assert_eq!(message.class, Class::ErrorResponse);
    assert_eq!(message.error_code().unwrap().code, 420);
    assert!(message
        .attributes
        .contains(&Attribute::UnknownAttributes(vec![0x0077])));
}

/// A TURN seed captured from coturn 4.6.1 by `RTCDESK_TURN_SEED_DIR=… cargo test --test turn_coturn`.
fn turn_seed(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../testdata/fuzz/turn_message/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn coturn_401_challenge_carries_realm_and_nonce_but_no_password_algorithms() {
    let message = parse(&turn_seed("coturn-4.6-allocate-401-challenge.bin")).unwrap();
    assert_eq!(
        (message.class, message.method),
        (Class::ErrorResponse, method::ALLOCATE)
    );
    assert_eq!(message.error_code().unwrap().code, 401);
    assert_eq!(message.realm(), Some("rtcdesk.test"));
    assert!(!message.nonce().unwrap().is_empty());
    // coturn 4.6.1 does not offer RFC 8489's PASSWORD-ALGORITHMS, so it gets MESSAGE-INTEGRITY.
    assert_eq!(message.password_algorithms(), None);
}

#[test]
fn coturn_allocate_success_carries_the_relayed_address() {
    let message = parse(&turn_seed("coturn-4.6-allocate-success.bin")).unwrap();
    assert_eq!(message.class, Class::SuccessResponse);
    assert!(message.relayed_address().unwrap().ip().is_loopback());
    assert!(message.mapped_address().is_some());
    assert_eq!(message.lifetime(), Some(600));
    assert!(message.has_integrity() && message.has_fingerprint());
}

#[test]
fn coturn_data_indication_and_channel_data_unwrap() {
    let data = parse(&turn_seed("coturn-4.6-data-indication.bin")).unwrap();
    assert_eq!((data.class, data.method), (Class::Indication, method::DATA));
    assert!(data.peer_address().unwrap().ip().is_loopback());
    assert!(!data.data().unwrap().is_empty());
    let padded = turn_seed("coturn-4.6-channel-data-tcp-padded.bin");
    let frame = parse_channel_data(&padded).unwrap();
    assert_eq!(frame.channel, 0x4000);
    assert_eq!(padded.len() % 4, 0);
    assert!(
        frame.data.len() < padded.len() - 4,
        "the padding is not data"
    );
    assert!(is_turn_traffic(&padded));
}

#[test]
fn coturn_stale_nonce_and_quota_errors_parse() {
    let stale = parse(&turn_seed("coturn-4.6-refresh-438-stale-nonce.bin")).unwrap();
    assert_eq!(stale.error_code().unwrap().code, 438);
    assert!(stale.nonce().is_some());
    let quota = parse(&turn_seed("coturn-4.6-allocate-486-quota.bin")).unwrap();
    assert_eq!(quota.error_code().unwrap().code, 486);
}
