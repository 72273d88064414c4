//! LIT list bodies: accepted records map to dispatches that round-trip through `record_for`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    dispatch_fuzz::check_list(&vendor_lit::LitAdapter::new(), data);
});
