//! The scenario table against the blocking adapter, over real loopback sockets.

genesys_notify_tests::scenario_tests!(genesys_notify_tests::adapters::Blocking);

/// A reader that stops during a burst: the queue stays bounded, the socket stays live, and
/// every dropped notification is inside an overflow gap.
#[test]
fn a_reader_that_stops_loses_nothing_silently() {
    genesys_notify_tests::hostile::check_slow_reader(&genesys_notify_tests::adapters::Blocking);
}
