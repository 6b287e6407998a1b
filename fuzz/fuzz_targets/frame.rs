//! Fuzz target `frame`: see `genesys_notify_tests::fuzz::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| genesys_notify_tests::fuzz::frame(data));
