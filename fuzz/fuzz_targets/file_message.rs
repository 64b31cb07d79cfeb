//! libFuzzer entry for [`rtcdesk_fuzz::file_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcdesk_fuzz::file_message(data));
