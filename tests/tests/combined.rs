//! Combined topics against the simulator through the blocking adapter: every counting mode
//! of the session against every counting mode of the simulator (which the service does is
//! not documented), delivery under each part's name, and a refused part told under its own
//! name.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, Secret, Topic};
use genesys_notify_core::{Event, Status};
use genesys_notify_sim::{Sim, SimConfig};

/// Presence and routing status of `users` agents: `2 * users` topics.
fn agent_topics(users: usize) -> Vec<Topic> {
    (0..users)
        .flat_map(|i| {
            ["presence", "routingStatus"]
                .map(|p| Topic::new(format!("v2.users.u{i:04}.{p}")).unwrap())
        })
        .collect()
}

fn client(sim: &Sim, topics: Vec<Topic>, counts_as_one: bool) -> Client {
    let mut config = Config::new(
        Endpoints::custom(sim.base_url(), None).unwrap(),
        Credentials::ClientCredentials {
            client_id: sim.client_id().to_owned(),
            client_secret: Secret::new(sim.client_secret()),
        },
    );
    config.topics = topics;
    config.session.combine_topics = true;
    // Every topic is published at once each tick: room for a whole tick, so that none is
    // dropped as an overflow while the test reads.
    config.queue_capacity = 65_536;
    config.session.combined_topic_counts_as_one = counts_as_one;
    Client::connect(config).unwrap()
}

/// What a client was told: the topics notifications came under, and every other event.
#[derive(Default)]
struct Heard {
    topics: BTreeSet<String>,
    others: Vec<Event>,
}

/// Reads until `enough` says so or 30 s pass.
fn read_until(client: &mut Client, enough: impl Fn(&Heard) -> bool) -> Heard {
    let mut heard = Heard::default();
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end && !enough(&heard) {
        match client.next_event(Duration::from_millis(100)) {
            Ok(Event::Notification { topic, .. }) => {
                heard.topics.insert(topic);
            }
            Ok(e) => heard.others.push(e),
            Err(_) => {}
        }
    }
    heard
}

/// With 1000 agents (2000 topics), the users at both ends have been heard from, under the
/// parts' names.
fn both_ends_heard(h: &Heard) -> bool {
    ["v2.users.u0000.presence", "v2.users.u0999.routingStatus"]
        .iter()
        .all(|t| h.topics.contains(*t))
}

fn start_sim(count_parts: bool) -> Sim {
    Sim::start(SimConfig {
        rate: 0.5,
        combined_topics_count_parts: count_parts,
        ..SimConfig::default()
    })
    .unwrap()
}

#[test]
fn counting_every_part_works_whichever_way_the_service_counts() {
    for sim_counts_parts in [false, true] {
        let sim = start_sim(sim_counts_parts);
        let mut c = client(&sim, agent_topics(1000), false);
        let heard = read_until(&mut c, both_ends_heard);
        assert!(
            both_ends_heard(&heard),
            "sim counts parts: {sim_counts_parts}: {:?}",
            heard.others
        );
        assert_eq!(c.status(), Status::Live);
        // 2000 parts at 1000 a channel, each channel 500 combined ids.
        assert_eq!(c.held().channels, 2);
        assert_eq!(sim.stats().count("channels.create"), 2);
        assert!(
            heard.topics.iter().all(|t| !t.contains('?')),
            "parts' names only"
        );
        c.close();
    }
}

#[test]
fn counting_a_combined_topic_as_one_fits_twice_the_parts_where_the_service_agrees() {
    let sim = start_sim(false);
    let mut c = client(&sim, agent_topics(1000), true);
    let heard = read_until(&mut c, both_ends_heard);
    assert!(
        both_ends_heard(&heard),
        "{:?} {} {:?}",
        heard.others,
        heard.topics.len(),
        heard.topics.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(c.held().channels, 1, "1000 combined ids on one channel");
    c.close();

    // Where the service counts parts, the one channel's subscription is refused: the session
    // stops with an error that says so instead of retrying for ever.
    let sim = start_sim(true);
    let mut c = client(&sim, agent_topics(1000), true);
    let heard = read_until(&mut c, |h| {
        h.others.iter().any(|e| matches!(e, Event::Fatal(_)))
    });
    let fatal = heard
        .others
        .iter()
        .find_map(|e| match e {
            Event::Fatal(f) => Some(f.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no fatal: {:?}", heard.others));
    assert!(
        fatal.contains("combined_topic_counts_as_one to false"),
        "{fatal}"
    );
}

#[test]
fn a_refused_part_is_told_under_its_own_name_and_its_siblings_still_arrive() {
    let sim = Sim::start(SimConfig {
        rate: 2.0,
        forbidden_prefixes: vec!["v2.users.u0001.routingStatus".to_owned()],
        ..SimConfig::default()
    })
    .unwrap();
    let mut c = client(&sim, agent_topics(2), false);
    let wanted = ["v2.users.u0001.presence", "v2.users.u0000.routingStatus"];
    let heard = read_until(&mut c, |h| {
        wanted.iter().all(|t| h.topics.contains(*t))
            && h.others
                .iter()
                .any(|e| matches!(e, Event::TopicRejected { .. }))
    });
    let rejected: Vec<&str> = heard
        .others
        .iter()
        .filter_map(|e| match e {
            Event::TopicRejected { topic, .. } => Some(topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        ["v2.users.u0001.routingStatus"],
        "{:?}",
        heard.others
    );
    assert!(
        wanted.iter().all(|t| heard.topics.contains(*t)),
        "{:?}",
        heard.topics
    );
    assert!(!heard.topics.contains("v2.users.u0001.routingStatus"));
    assert_eq!(c.status(), Status::Live);
}
