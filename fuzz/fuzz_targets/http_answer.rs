//! Fuzz target `http_answer`: see `genesys_notify_tests::fuzz::http_answer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| genesys_notify_tests::fuzz::http_answer(data));
