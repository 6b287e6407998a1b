//! A thousand reconnects per adapter leave nothing behind: no socket entry, thread or task
//! beyond what the open socket needs, and no growth in the process's thread count. Its own
//! test binary, so no other test's threads are counted.
#![allow(clippy::print_stdout)]

use genesys_notify_tests::adapters::{Blocking, Tokio};
use genesys_notify_tests::hostile;
use genesys_notify_tests::Adapter;

fn check(adapter: &dyn Adapter) {
    let r = hostile::reconnects(adapter, 1000);
    println!("reconnects adapter={} {r:?}", adapter.name());
    assert!(r.held.sockets <= 1, "[{}] {r:?}", adapter.name());
    assert!(r.held.tasks <= 2, "[{}] {r:?}", adapter.name());
    if let (Some(before), Some(after)) = (r.threads_before, r.threads_after) {
        assert!(
            after <= before + 2,
            "[{}] threads grew from {before} to {after}",
            adapter.name()
        );
    }
}

#[test]
fn a_thousand_reconnects_leave_nothing_behind() {
    check(&Blocking);
    check(&Tokio);
}
