//! Settings as `NAME=value` lines, each value also read as a Redis URL and a NATS seed list:
//! errors name a known setting, masked URLs never show credentials.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dispatch_fuzz::check_settings(data));
