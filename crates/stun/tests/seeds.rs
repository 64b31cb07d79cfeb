//! Real responses captured from coturn 4.6.1 (Debian 12), kept as fuzz seeds, parse as expected.

use rtcdesk_stun::{parse, Attribute, Class};

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
