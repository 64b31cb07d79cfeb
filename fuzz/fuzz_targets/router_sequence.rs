//! libFuzzer entry for [`rtcdesk_fuzz::router_sequence`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcdesk_fuzz::router_sequence(data));
