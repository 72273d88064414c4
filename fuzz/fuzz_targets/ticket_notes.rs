//! Bruin ticket details: notes decode and re-encode equal; cleaning and ordering is idempotent.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dispatch_fuzz::check_ticket_notes(data));
