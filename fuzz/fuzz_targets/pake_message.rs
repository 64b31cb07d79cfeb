//! libFuzzer entry for [`rtcdesk_fuzz::pake_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcdesk_fuzz::pake_message(data));
