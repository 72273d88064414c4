//! NATS reply envelopes and stored-message pointers: a decoded envelope re-encodes to one that
//! decodes equal; a stored-message token re-encodes to the same token.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dispatch_fuzz::check_nats_reply(data));
