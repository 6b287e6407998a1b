//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through the target's
//! body, so the corpora are checked on stable in every test run. How to fuzz: `fuzz/README.md`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let result = std::panic::catch_unwind(|| body(&data));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    assert!(n > 0, "no corpus for {target} in {}", dir.display());
}

#[test]
fn frame_corpus() {
    replay("frame", genesys_notify_tests::fuzz::frame);
}

#[test]
fn session_corpus() {
    replay("session", genesys_notify_tests::fuzz::session);
}

#[test]
fn http_answer_corpus() {
    replay("http_answer", genesys_notify_tests::fuzz::http_answer);
}
