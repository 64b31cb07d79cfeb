//! libFuzzer entry for [`rtcdesk_fuzz::av1_unit`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcdesk_fuzz::av1_unit(data));
