//! Simulator scenario TOML: refused with a line in the file, or written back and parsed equal.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dispatch_fuzz::check_scenario(data));
