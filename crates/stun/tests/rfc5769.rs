//! The RFC 5769 test vectors, read from the fuzz seed corpus so both use the same bytes.

use rtcdesk_stun::{parse, verify_message_integrity, Attribute, Class, Error, METHOD_BINDING};

const REQUEST: &[u8] =
    include_bytes!("../../../testdata/fuzz/stun_message/rfc5769-2.1-request.bin");
const IPV4_RESPONSE: &[u8] =
    include_bytes!("../../../testdata/fuzz/stun_message/rfc5769-2.2-ipv4-response.bin");
const IPV6_RESPONSE: &[u8] =
    include_bytes!("../../../testdata/fuzz/stun_message/rfc5769-2.3-ipv6-response.bin");
const LONG_TERM_REQUEST: &[u8] =
    include_bytes!("../../../testdata/fuzz/stun_message/rfc5769-2.4-long-term-request.bin");

/// The short-term password of vectors 2.1–2.3.
const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
/// MD5("マトリックス:example.org:TheMatrIX"), the long-term key of vector 2.4 (after SASLprep).
const LONG_TERM_KEY: [u8; 16] = [
    0xe8, 0xca, 0x7a, 0xd5, 0x9d, 0x5e, 0xb0, 0x51, 0x8e, 0x31, 0x29, 0x11, 0xd2, 0xda, 0xb2, 0xa9,
];

#[test]
fn sample_request_2_1() {
    let message = parse(REQUEST).unwrap();
    assert_eq!(message.class, Class::Request);
    assert_eq!(message.method, METHOD_BINDING);
    assert_eq!(
        message.transaction_id.0,
        [0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae]
    );
    assert_eq!(message.software(), Some("STUN test client"));
    assert!(message
        .attributes
        .contains(&Attribute::Priority(0x6e0001ff)));
    assert!(message
        .attributes
        .contains(&Attribute::IceControlled(0x932ff9b151263b36)));
    assert!(message
        .attributes
        .contains(&Attribute::Username("evtj:h6vY".into())));
    assert!(message.has_fingerprint());
    assert_eq!(verify_message_integrity(REQUEST, PASSWORD), Ok(true));
    assert_eq!(verify_message_integrity(REQUEST, b"wrong"), Ok(false));
}

#[test]
fn sample_ipv4_response_2_2() {
    let message = parse(IPV4_RESPONSE).unwrap();
    assert_eq!(message.class, Class::SuccessResponse);
    assert_eq!(message.software(), Some("test vector"));
    assert_eq!(
        message.mapped_address(),
        Some("192.0.2.1:32853".parse().unwrap())
    );
    assert!(message.has_fingerprint());
    assert_eq!(verify_message_integrity(IPV4_RESPONSE, PASSWORD), Ok(true));
}

#[test]
fn sample_ipv6_response_2_3() {
    let message = parse(IPV6_RESPONSE).unwrap();
    assert_eq!(message.class, Class::SuccessResponse);
    assert_eq!(
        message.mapped_address(),
        Some(
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap()
        )
    );
    assert!(message.has_fingerprint());
    assert_eq!(verify_message_integrity(IPV6_RESPONSE, PASSWORD), Ok(true));
}

#[test]
fn sample_long_term_request_2_4() {
    let message = parse(LONG_TERM_REQUEST).unwrap();
    assert_eq!(message.class, Class::Request);
    assert!(message
        .attributes
        .contains(&Attribute::Username("マトリックス".into())));
    assert!(message
        .attributes
        .contains(&Attribute::Nonce("f//499k954d6OL34oL9FSTvy64sA".into())));
    assert!(message
        .attributes
        .contains(&Attribute::Realm("example.org".into())));
    assert!(!message.has_fingerprint());
    assert_eq!(
        verify_message_integrity(LONG_TERM_REQUEST, &LONG_TERM_KEY),
        Ok(true)
    );
}

#[test]
fn a_corrupted_vector_fails_its_fingerprint() {
    let mut corrupted = IPV4_RESPONSE.to_vec();
    corrupted[30] ^= 0x01; // inside the XOR-MAPPED-ADDRESS
    assert!(matches!(
        parse(&corrupted),
        Err(Error::FingerprintMismatch { .. })
    ));
}

#[test]
fn every_prefix_and_byte_value_of_the_vectors_parses_or_errs() {
    for vector in [REQUEST, IPV4_RESPONSE, IPV6_RESPONSE, LONG_TERM_REQUEST] {
        for len in 0..vector.len() {
            assert!(parse(&vector[..len]).is_err());
        }
        for index in 0..vector.len() {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut mutated = vector.to_vec();
                mutated[index] = value;
                let _ = parse(&mutated);
            }
        }
    }
}
