//! The scenario table against the blocking adapter, over real loopback sockets.

genesys_notify_tests::scenario_tests!(genesys_notify_tests::adapters::Blocking);

/// A reader that stops during a burst: the queue stays bounded, the socket stays live, and
/// every dropped notification is inside an overflow gap.
#[test]
#[allow(clippy::print_stdout)]
fn a_reader_that_stops_loses_nothing_silently() {
    let r = genesys_notify_tests::hostile::slow_reader(
        &genesys_notify_tests::adapters::Blocking,
        3000,
        std::time::Duration::from_secs(2),
    );
    println!("slow_reader adapter=blocking {r:?}");
    assert_eq!(r.lost_outside_gaps, 0, "{r:?}");
    assert!(r.overflow_gaps >= 1, "{r:?}");
    assert!(r.lost_inside_gaps > 0, "the reader fell behind: {r:?}");
    assert_eq!(
        r.status_after,
        genesys_notify_core::Status::Live,
        "the socket was read throughout: {r:?}"
    );
}
