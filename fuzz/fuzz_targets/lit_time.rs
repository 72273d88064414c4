//! LIT appointment texts (date, time, zone on three lines): a parsed time renders back.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dispatch_fuzz::check_lit_time(data));
