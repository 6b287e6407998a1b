//! Transcripts of a session whose topics need more than one channel: one per rule of the
//! sharding (spread, one token, budget, per-shard faults and renewals, topics changing at run
//! time, refusal, redundancy, combined topics, login and fatal answers). Channels carry two
//! topics here so that the transcripts stay short; nothing depends on the number.
#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

mod harness;

use std::time::Duration;

use genesys_notify_core::{Action, Config, Event, GapReason, Input, Instant, RequestError, Status};
use harness::*;

const A: &str = "v2.users.a.presence";
const B: &str = "v2.users.b.presence";
const C: &str = "v2.users.c.presence";
const D: &str = "v2.users.d.presence";
const E: &str = "v2.users.e.presence";

/// Two topics per channel, twenty channels.
fn cfg() -> Config {
    Config {
        max_topics_per_channel: 2,
        ..Config::default()
    }
}

fn snap(name: &str, h: &Harness) {
    insta::assert_snapshot!(name, h.log);
}

fn count(h: &Harness, pred: impl Fn(&Action) -> bool) -> usize {
    h.count(pred)
}

fn creates(h: &Harness) -> usize {
    count(h, |a| matches!(a, Action::CreateChannel { .. }))
}

/// Every topic gets one notification; returns what arrived, sorted.
fn publish_all(h: &mut Harness, topics: &[&str], seq: u64) -> Vec<String> {
    let before = h.delivered.len();
    for t in topics {
        h.publish(t, seq);
    }
    let mut got: Vec<String> = h.delivered[before..]
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    got.sort();
    got
}

/// Every topic gets one notification, and each arrives once.
#[track_caller]
fn each_arrives_once(h: &mut Harness, topics: &[&str], seq: u64) {
    assert_eq!(publish_all(h, topics, seq), sorted(topics));
}

/// The application's call with the session's token got a 401, and the token source can only
/// refuse now: runs until the session has asked for a login.
fn login_refused(h: &mut Harness) {
    h.world
        .fail_tokens(1, RequestError::status_code(400, "invalid_grant"));
    let now = h.p.now;
    let token = h.p.session.access_token().unwrap().expose().to_owned();
    h.p.session.report_unauthorized(now, &token);
    h.drain();
    h.serve();
    h.run_for(secs(30));
}

/// The `LoginRequired` events told so far.
fn logins(h: &Harness) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, Event::LoginRequired { .. }))
        .count()
}

/// Five topics on three shards, four channels (one make-before-break at a time), tokens of
/// ten minutes: renewals come every few minutes.
fn renewing() -> Harness {
    let config = Config {
        max_channels: 4,
        ..cfg()
    };
    Harness::started(config, 7, &[A, B, C, D, E], |s| {
        s.token_ttl = Duration::from_secs(600);
    })
}

fn sorted(topics: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    v.sort();
    v
}

#[test]
fn sharding_spreads_topics_over_channels_with_one_token() {
    let h = &mut Harness::live(cfg(), &[A, B, C, D, E]);
    assert_eq!(h.p.session.shards(), 3);
    assert_eq!(creates(h), 3, "one channel per two topics");
    assert_eq!(
        count(h, |a| matches!(a, Action::RequestToken { .. })),
        1,
        "one token request answers every shard"
    );
    assert_eq!(h.p.server.open().count(), 3);
    assert_eq!(h.p.session.channels_held(), 3);
    assert_eq!(h.p.session.status(), Status::Live);
    let statuses: Vec<_> = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Status(_)))
        .collect();
    assert_eq!(
        statuses.len(),
        2,
        "connecting, then live once: {statuses:?}"
    );
    assert_eq!(h.p.session.covered_topics().count(), 5);
    h.note("every topic, one notification each");
    each_arrives_once(h, &[A, B, C, D, E], 1);
    snap("sharding_spreads", h);
}

#[test]
fn sharding_a_dropped_socket_gaps_only_its_shards_topics() {
    let h = &mut Harness::live(cfg(), &[A, B, C, D, E]);
    let conn = h.p.server.audience(C)[0];
    h.note("the socket that carries C (and D) drops");
    h.server_close_socket(conn, None);
    assert_eq!(h.p.session.status(), Status::Recovering);
    h.run_for(secs(30));
    assert_eq!(h.p.session.status(), Status::Live);
    let (topics, _, _, reason) = h.one_gap();
    let topics: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
    assert_eq!(topics, [C, D], "only that shard's topics");
    assert_eq!(reason, GapReason::SocketLost);
    each_arrives_once(h, &[A, B, C, D, E], 2);
    snap("sharding_one_shard_drops", h);
}

#[test]
fn sharding_every_shard_dropped_recovers_each_with_its_own_gap() {
    let h = &mut Harness::live(cfg(), &[A, B, C, D, E]);
    h.world.manual = true;
    let conns: Vec<_> = h.p.server.open().collect();
    for c in conns {
        h.server_close_socket(c, None);
    }
    assert_eq!(h.p.session.status(), Status::Recovering);
    h.world.manual = false;
    h.serve();
    h.run_for(secs(30));
    assert_eq!(h.p.session.status(), Status::Live);
    let mut gapped: Vec<String> = h
        .gaps()
        .iter()
        .flat_map(|e| gap_parts(e).0.iter().map(|t| t.as_str().to_owned()))
        .collect();
    gapped.sort();
    assert_eq!(gapped, sorted(&[A, B, C, D, E]), "each topic in one gap");
    assert_eq!(h.gaps().len(), 3, "one gap per shard");
    each_arrives_once(h, &[A, B, C, D, E], 3);
}

#[test]
fn sharding_renewals_stay_inside_the_channel_budget() {
    let h = &mut renewing();
    assert_eq!(h.p.session.status(), Status::Live);
    let mut most = 0;
    let mut t = h.p.now;
    for _ in 0..(1800 / 5) {
        t = t + secs(5);
        h.run_until(t);
        most = most.max(h.p.session.channels_held());
        assert!(
            h.p.server.sockets() <= 4,
            "{} sockets\n{}",
            h.p.server.sockets(),
            h.log
        );
    }
    assert!(most <= 4, "{most} channels held");
    assert!(
        creates(h) >= 3 + 6,
        "every shard renewed twice: {}",
        creates(h)
    );
    assert!(h.gaps().is_empty(), "{:?}", h.gaps());
    assert_eq!(h.p.session.status(), Status::Live);
    each_arrives_once(h, &[A, B, C, D, E], 4);
}

#[test]
fn sharding_renewals_are_spread() {
    let h = &mut renewing();
    h.run_for(secs(600));
    let times = h.times_of(|a| matches!(a, Action::CreateChannel { .. }));
    // After the first three, each renewal's channel request waits for the previous one.
    let renewals: Vec<Instant> = times[3..].to_vec();
    assert!(renewals.len() >= 3, "{times:?}");
    let mut distinct = renewals.clone();
    distinct.dedup();
    assert_eq!(distinct, renewals, "no two shards renew at the same moment");
    assert!(h.gaps().is_empty());
    snap("sharding_renewals", h);
}

#[test]
fn sharding_fills_shards_before_opening_and_closes_empty_ones() {
    let h = &mut Harness::live(cfg(), &[A, B, C]);
    assert_eq!(h.p.session.shards(), 2);
    h.note("D fits beside C");
    h.subscribe(&[D]);
    h.serve();
    assert_eq!(h.p.session.shards(), 2);
    assert_eq!(creates(h), 2);
    h.note("A and B go: their shard closes");
    h.line("unsubscribe [A, B]");
    let now = h.p.now;
    h.p.session
        .unsubscribe(now, [topic(A), topic(B)].iter())
        .unwrap();
    h.drain();
    h.serve();
    assert_eq!(h.p.session.shards(), 1);
    assert_eq!(h.p.server.open().count(), 1);
    assert!(h.gaps().is_empty());
    h.note("E fits beside C and D? no: a new shard");
    h.subscribe(&[E]);
    h.serve();
    assert_eq!(h.p.session.shards(), 2);
    assert_eq!(h.p.session.status(), Status::Live);
    each_arrives_once(h, &[C, D, E], 5);
    snap("sharding_fills_and_closes", h);
}

#[test]
fn sharding_refuses_up_front_what_the_budget_cannot_carry() {
    // (3 - 1) / 1 = two shards of two topics.
    let config = Config {
        max_channels: 3,
        ..cfg()
    };
    let h = &mut Harness::live(config, &[A, B]);
    let err =
        h.p.session
            .subscribe(h.p.now, [C, D, E].iter().map(|t| topic(t)))
            .unwrap_err();
    assert!(
        err.to_string()
            .contains("5 topics requested but at most 4 fit"),
        "{err}"
    );
    assert_eq!(h.p.session.topics().count(), 2, "nothing changed");
    assert_eq!(h.p.session.shards(), 1);
    h.subscribe(&[C, D]);
    h.serve();
    assert_eq!(h.p.session.shards(), 2);
    // With redundancy 2 the same budget carries one shard.
    let config = Config {
        max_channels: 3,
        redundancy: 2,
        ..cfg()
    };
    let err = Harness::new(config, 1)
        .p
        .session
        .subscribe(Instant::ZERO, [A, B, C].iter().map(|t| topic(t)))
        .unwrap_err();
    assert!(err.to_string().contains("at most 2 fit"), "{err}");
}

#[test]
fn sharding_with_redundancy_two_keeps_two_channels_per_shard() {
    let config = Config {
        redundancy: 2,
        ..cfg()
    };
    let h = &mut Harness::live(config, &[A, B, C, D, E]);
    assert_eq!(h.p.session.shards(), 3);
    assert_eq!(h.p.server.open().count(), 6);
    assert_eq!(h.p.session.live_sockets(), 6);
    let conn = h.p.server.audience(A)[0];
    h.server_close_socket(conn, None);
    assert!(h.gaps().is_empty(), "the twin covers");
    each_arrives_once(h, &[A, B, C, D, E], 6);
}

#[test]
fn sharding_a_token_refused_everywhere_asks_for_one_login() {
    let h = &mut Harness::live(cfg(), &[A, B, C]);
    login_refused(h);
    assert_eq!(logins(h), 1, "one prompt for the whole session\n{}", h.log);
    assert_eq!(h.p.session.status(), Status::LoginRequired);
    h.login("fresh");
    h.serve();
    assert_eq!(h.p.session.status(), Status::Live);
    each_arrives_once(h, &[A, B, C], 7);
    snap("sharding_login", h);
    // Needing a login again is told again.
    login_refused(h);
    assert_eq!(logins(h), 2, "{}", h.log);
}

#[test]
fn sharding_a_fatal_answer_stops_every_shard() {
    // Channels live two minutes: their renewal needs new ones, which the service refuses.
    let h = &mut Harness::started(cfg(), 7, &[A, B, C], |s| {
        s.channel_ttl = Duration::from_secs(120);
    });
    h.world.fail_channels(
        4,
        RequestError::Refused("redirected to another host".to_owned()),
    );
    h.run_for(secs(300));
    assert_eq!(h.fatals().len(), 1, "{}", h.log);
    assert_eq!(h.p.session.status(), Status::Failed);
    assert_eq!(h.p.server.open().count(), 0, "every socket closed");
    let st: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(st.last(), Some(&Status::Failed));
    assert_eq!(st.iter().filter(|s| **s == Status::Failed).count(), 1);
}

#[test]
fn sharding_a_frame_on_one_socket_reaches_only_its_shard() {
    let h = &mut Harness::live(cfg(), &[A, B, C]);
    let conn = h.p.server.audience(C)[0];
    h.input(Input::Frame {
        conn,
        text: genesys_notify_core::testing::notification(C, 9),
    });
    assert_eq!(h.got(), [(C, 9)]);
}

fn combined() -> Config {
    Config {
        combine_topics: true,
        ..cfg()
    }
}

const AP: &str = "v2.users.a.presence";
const AR: &str = "v2.users.a.routingStatus";
const BP: &str = "v2.users.b.presence";
const BR: &str = "v2.users.b.routingStatus";

#[test]
fn combined_topics_travel_combined_and_are_told_in_the_applications_terms() {
    let h = &mut Harness::live(combined(), &[AP, AR, BP, BR]);
    // Every part counts: two shards of two topics, each one combined id.
    assert_eq!(h.p.session.shards(), 2);
    let puts: Vec<Vec<String>> = h
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::PutSubscriptions { topics, .. } => {
                Some(topics.iter().map(|t| t.as_str().to_owned()).collect())
            }
            _ => None,
        })
        .collect();
    assert!(
        puts.contains(&vec!["v2.users.a?presence&routingStatus".to_owned()]),
        "{puts:?}"
    );
    let mut mine: Vec<String> =
        h.p.session
            .topics()
            .map(|t| t.as_str().to_owned())
            .collect();
    mine.sort();
    assert_eq!(mine, sorted(&[AP, AR, BP, BR]), "the application's topics");
    assert_eq!(h.p.session.covered_topics().count(), 4);
    h.note("published under the parts' names");
    each_arrives_once(h, &[AP, AR, BP, BR], 1);
    let conn = h.p.server.audience(AP)[0];
    h.server_close_socket(conn, None);
    h.run_for(secs(30));
    let (topics, ..) = h.one_gap();
    let topics: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
    assert_eq!(topics, [AP, AR], "the gap names the parts");
    snap("combined_topics", h);
}

#[test]
fn combined_topics_a_refused_part_is_reported_under_its_own_name() {
    let h = &mut Harness::started(combined(), 7, &[AP, AR], |s| {
        s.rejected
            .insert(AR.to_owned(), "not.authorized".to_owned());
    });
    let rejected: Vec<&str> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::TopicRejected { topic, .. } => Some(topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rejected, [AR], "{}", h.log);
    assert_eq!(h.p.session.status(), Status::Live);
    let covered: Vec<&str> = h.p.session.covered_topics().map(|t| t.as_str()).collect();
    assert_eq!(covered, [AP]);
    each_arrives_once(h, &[AP], 2);
    snap("combined_topics_refused_part", h);
}

#[test]
fn combined_topics_two_refused_in_one_answer_are_told_by_their_parts_only() {
    let config = Config {
        max_topics_per_channel: 4,
        ..combined()
    };
    let h = &mut Harness::started(config, 7, &[AP, AR, BP, BR], |s| {
        s.rejected
            .insert(AR.to_owned(), "not.authorized".to_owned());
        s.rejected
            .insert(BR.to_owned(), "not.authorized".to_owned());
    });
    let mut rejected: Vec<&str> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::TopicRejected { topic, .. } => Some(topic.as_str()),
            _ => None,
        })
        .collect();
    rejected.sort_unstable();
    assert_eq!(rejected, [AR, BR], "{}", h.log);
    each_arrives_once(h, &[AP, BP], 4);
}

#[test]
fn combined_topics_counted_as_one_fit_more_per_channel() {
    let parts = Config {
        combine_topics: true,
        ..cfg()
    };
    let one = Config {
        combined_topic_counts_as_one: true,
        ..parts.clone()
    };
    let h = Harness::live(parts, &[AP, AR, BP, BR]);
    assert_eq!(h.p.session.shards(), 2, "counting every part");
    let h = &mut Harness::live(one, &[AP, AR, BP, BR]);
    assert_eq!(h.p.session.shards(), 1, "counting a combined id as one");
    assert_eq!(h.p.server.open().count(), 1);
    each_arrives_once(h, &[AP, AR, BP, BR], 3);
}
