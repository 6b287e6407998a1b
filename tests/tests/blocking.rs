//! The scenario table against the blocking adapter, over real loopback sockets.

genesys_notify_tests::scenario_tests!(genesys_notify_tests::adapters::Blocking);

/// A reader that stops during a burst: the queue stays bounded, the socket stays live, and
/// every dropped notification is inside an overflow gap.
#[test]
fn a_reader_that_stops_loses_nothing_silently() {
    genesys_notify_tests::hostile::check_slow_reader(&genesys_notify_tests::adapters::Blocking);
}

/// Socket openings that drip: each ends at the session's request timeout and releases its
/// connection; a close releases the last one at once.
#[test]
fn openings_that_drip_are_abandoned_and_released() {
    genesys_notify_tests::hostile::check_dripping_upgrades(
        &genesys_notify_tests::adapters::Blocking,
    );
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

/// A refresh-token write that hangs (a stuck disk) holds the HTTP thread that got the token,
/// never the driver: the next token request still goes out and a close still finishes.
#[test]
fn a_hung_refresh_token_write_does_not_stall_the_driver() {
    use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, Secret, Topic};
    use genesys_notify_sim::{Sim, SimConfig};
    use std::sync::mpsc;
    use std::time::{Duration, Instant};
    let sim = Sim::start(SimConfig {
        rotate_refresh_tokens: true,
        token_ttl: Duration::from_secs(4),
        rate: 20.0,
        ..SimConfig::default()
    })
    .unwrap();
    let (hung_tx, hung_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Mutex::new(release_rx);
    let mut saves = 0;
    let mut config = Config::new(
        Endpoints::custom(sim.base_url(), None).unwrap(),
        Credentials::RefreshToken {
            client_id: sim.client_id().to_owned(),
            client_secret: Secret::new(sim.client_secret()),
            refresh_token: Secret::new(sim.refresh_token()),
            persist: Box::new(move |_| {
                saves += 1;
                if saves == 2 {
                    // The first renewal's write hangs until the test lets go.
                    let _ = hung_tx.send(());
                    let rx = release_rx.lock().unwrap();
                    let _ = rx.recv_timeout(Duration::from_secs(60));
                }
                Ok(())
            }),
        },
    );
    config.topics = vec![Topic::new("v2.users.a.presence").unwrap()];
    config.session.request_timeout = Duration::from_secs(1);
    let mut client = Client::connect(config).unwrap();
    hung_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the renewal's write never started");
    let tokens = || {
        sim.stats()
            .requests
            .iter()
            .filter(|r| r.endpoint == "token")
            .count()
    };
    let at_hang = tokens();
    // The hung request times out after 1 s and the session asks again: the driver starts that
    // request (it takes the token source's lock) and the simulator sees it.
    let until = Instant::now() + Duration::from_secs(10);
    while tokens() == at_hang {
        assert!(
            Instant::now() < until,
            "no token request went out while a write hung: the driver is stalled"
        );
        let _ = client.next_event(Duration::from_millis(50));
    }
    assert!(
        client.closer().close_and_wait(Duration::from_secs(3)),
        "a close did not finish while a write hung"
    );
    let _ = release_tx.send(());
    client.close();
    assert_eq!(client.held().sockets, 0);
}
