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

/// Socket openings that drip: each ends at the session's request timeout and releases its
/// connection; a close releases the last one at once.
#[test]
fn openings_that_drip_are_abandoned_and_released() {
    genesys_notify_tests::hostile::check_dripping_upgrades(&genesys_notify_tests::adapters::Tokio);
}

/// After the session stopped by itself (a fatal configuration error), the stream ends and
/// commands fail at once.
#[test]
fn commands_after_a_fatal_stop_fail_at_once() {
    use futures_util::StreamExt;
    use genesys_notify_tokio::{Client, Credentials, Event, HandleError, Secret, Status, Topic};
    let sim = genesys_notify_tests::hostile::sim_with_foreign_connect_uri();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (handle, events) = Client::builder()
            .base_urls(sim.base_url(), None)
            .credentials(Credentials::ClientCredentials {
                client_id: sim.client_id().to_owned(),
                client_secret: Secret::new(sim.client_secret()),
            })
            .topic(Topic::new("v2.users.a.presence").unwrap())
            .connect()
            .await
            .unwrap();
        let events: Vec<Event> = events.collect().await;
        assert!(
            events.iter().any(|e| matches!(e, Event::Fatal(_))),
            "{events:?}"
        );
        assert_eq!(handle.status(), Status::Failed);
        assert_eq!(
            handle
                .subscribe([Topic::new("v2.users.b.presence").unwrap()])
                .await,
            Err(HandleError::Ended)
        );
        assert_eq!(handle.held().sockets, 0);
    });
}

/// Topics past one channel's worth: the session holds a channel per shard, and asking the
/// service how many channels this user and client hold counts them.
#[test]
fn a_sharded_session_counts_the_channels_it_holds() {
    use genesys_notify_tokio::{Client, Credentials, Secret, Status, Topic};
    let sim = genesys_notify_sim::Sim::start(genesys_notify_sim::SimConfig::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let session = genesys_notify_core::Config {
            max_topics_per_channel: 2,
            ..genesys_notify_core::Config::default()
        };
        let (handle, _events) = Client::builder()
            .base_urls(sim.base_url(), None)
            .credentials(Credentials::ClientCredentials {
                client_id: sim.client_id().to_owned(),
                client_secret: Secret::new(sim.client_secret()),
            })
            .session_config(session)
            .topics(
                ["a", "b", "c", "d", "e"]
                    .map(|u| Topic::new(format!("v2.users.{u}.presence")).unwrap()),
            )
            .connect()
            .await
            .unwrap();
        let mut status = handle.status_watch();
        tokio::time::timeout(
            std::time::Duration::from_secs(20),
            status.wait_for(|s| *s == Status::Live),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(handle.held().channels, 3);
        assert_eq!(handle.channels_in_use().await, Ok(3));
        handle.close().await;
    });
}
