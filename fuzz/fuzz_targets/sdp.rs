//! libFuzzer entry for [`rtcdesk_fuzz::sdp`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcdesk_fuzz::sdp(data));
