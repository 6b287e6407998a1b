//! The scenario table against the tokio adapter, over real loopback sockets.

genesys_notify_tests::scenario_tests!(genesys_notify_tests::adapters::Tokio);

/// The counter-test of `pong_overtakes`: with no handover linger, notifications a lagging
/// service still had in flight behind the pong are lost and nobody is told. It shows that the
/// ledger catches this loss and that the linger is what prevents it.
#[test]
#[allow(clippy::print_stdout)]
fn without_the_handover_linger_a_lagging_service_loses_events_silently() {
    let s = genesys_notify_tests::scenario("pong_overtakes_no_linger");
    let out = genesys_notify_tests::run(&s, &genesys_notify_tests::adapters::Tokio);
    println!("pong_overtakes_no_linger adapter=tokio {out}");
    assert!(
        out.lost_outside_gaps > 0,
        "expected silent losses without the linger: {out}"
    );
}

/// A reader that stops during a burst: the queue stays bounded, the socket stays live, and
/// every dropped notification is inside an overflow gap.
#[test]
fn a_reader_that_stops_loses_nothing_silently() {
    genesys_notify_tests::hostile::check_slow_reader(&genesys_notify_tests::adapters::Tokio);
}
