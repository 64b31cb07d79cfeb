//! libFuzzer entry for [`rtcdesk_fuzz::turn_message`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rtcdesk_fuzz::turn_message(data));
