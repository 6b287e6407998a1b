//! Fuzz target `session`: see `genesys_notify_tests::fuzz::session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| genesys_notify_tests::fuzz::session(data));
