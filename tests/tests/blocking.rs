//! The scenario table against the blocking adapter, over real loopback sockets.

genesys_notify_tests::scenario_tests!(genesys_notify_tests::adapters::Blocking);

/// A reader that stops during a burst: the queue stays bounded, the socket stays live, and
/// every dropped notification is inside an overflow gap.
#[test]
fn a_reader_that_stops_loses_nothing_silently() {
    genesys_notify_tests::hostile::check_slow_reader(&genesys_notify_tests::adapters::Blocking);
}

/// After the session stopped by itself (a fatal configuration error), the event iterator ends
/// and commands fail at once instead of waiting for a driver that is gone.
#[test]
fn commands_after_a_fatal_stop_fail_at_once() {
    use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, Secret, Topic};
    use genesys_notify_core::{Event, Status, UsageError};
    let sim = genesys_notify_tests::hostile::sim_with_foreign_connect_uri();
    let mut config = Config::new(
        Endpoints::custom(sim.base_url(), None).unwrap(),
        Credentials::ClientCredentials {
            client_id: sim.client_id().to_owned(),
            client_secret: Secret::new(sim.client_secret()),
        },
    );
    config.topics = vec![Topic::new("v2.users.a.presence").unwrap()];
    let mut client = Client::connect(config).unwrap();
    let events: Vec<Event> = client.events().collect();
    assert!(
        events.iter().any(|e| matches!(e, Event::Fatal(_))),
        "{events:?}"
    );
    assert_eq!(client.status(), Status::Failed);
    assert_eq!(
        client.subscribe([Topic::new("v2.users.b.presence").unwrap()]),
        Err(UsageError::Closed)
    );
    assert_eq!(client.held().sockets, 0);
}
