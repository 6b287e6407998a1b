//! A thousand sessions in one process dropped at the same instant spread their reconnects:
//! no 50 ms slot holds more than a fifth of them, and every one comes back. Its own test
//! binary, so the herd count is this test's sessions alone.
#![allow(clippy::print_stdout)]

use genesys_notify_tests::herd::herd;

#[test]
fn a_thousand_sessions_dropped_together_spread_their_reconnects() {
    let r = herd(1000);
    println!(
        "herd sessions={} reconnects={} busiest_50ms_slot={} spread_ms={} all_live_after_ms={}",
        r.sessions,
        r.reconnects,
        r.busiest_slot,
        r.spread.as_millis(),
        r.all_live_after.as_millis()
    );
    assert_eq!(r.reconnects, r.sessions, "{r:?}");
    assert!(r.busiest_slot * 5 <= r.sessions, "{r:?}");
}
