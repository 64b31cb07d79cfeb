//! libFuzzer entry for [`rtcdesk_fuzz::input_event`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcdesk_fuzz::input_event(data));
