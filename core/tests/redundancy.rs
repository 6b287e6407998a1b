//! `redundancy: 2` in simulated time: two links, each on its own channel and socket, deliver
//! every notification once; a fault that hits one socket loses nothing and reports nothing;
//! faults that hit both are reported exactly as with one link.
#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

mod harness;

use std::collections::BTreeSet;
use std::time::Duration;

use genesys_notify_core::{Action, Config, ConnId, Event, GapReason, Input, Instant, Status};
use harness::{secs, Harness, SOCKET_CLOSING};

const T1: &str = "v2.users.u1.presence";
const T2: &str = "v2.users.u2.presence";

fn cfg() -> Config {
    Config {
        redundancy: 2,
        ..Config::default()
    }
}

fn two_links() -> Harness {
    let mut h = Harness::live(cfg(), &[T1, T2]);
    // Let the go-live pings be answered.
    h.run_for(Duration::from_millis(10));
    assert_eq!(h.p.session.live_sockets(), 2, "{}", h.log);
    h
}

fn open_conns(h: &Harness) -> Vec<ConnId> {
    h.p.server.open().collect()
}

/// Publishes on T1 and T2 to every socket subscribed (both links), `n` times `every` apart.
fn traffic(h: &mut Harness, seq: &mut u64, n: u32, every: Duration) {
    for _ in 0..n {
        *seq += 1;
        h.publish(T1, *seq);
        h.publish(T2, *seq);
        h.run_for(every);
    }
}

/// Every (topic, seq) published up to `last` delivered exactly once.
fn assert_each_once(h: &Harness, last: u64) {
    let mut seen = BTreeSet::new();
    for d in &h.delivered {
        assert!(seen.insert(d.clone()), "delivered twice: {d:?}\n{}", h.log);
    }
    for seq in 1..=last {
        for t in [T1, T2] {
            assert!(
                seen.contains(&(t.to_owned(), seq)),
                "{t} #{seq} lost\n{}",
                h.log
            );
        }
    }
}

/// The transcript without the notification traffic (its delivery is asserted, not read).
fn snap(name: &str, h: &Harness) {
    let log: String = h
        .log
        .lines()
        .filter(|l| !l.contains("< Frame") && !l.contains("! notification"))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!(name, log);
}

fn creates(h: &Harness) -> usize {
    h.count(|a| matches!(a, Action::CreateChannel { .. }))
}

#[test]
fn startup_brings_up_two_channels_and_delivers_each_notification_once() {
    let mut h = two_links();
    assert_eq!(creates(&h), 2);
    assert_eq!(open_conns(&h).len(), 2);
    assert_eq!(h.p.session.status(), Status::Live);
    let mut seq = 0;
    traffic(&mut h, &mut seq, 20, Duration::from_millis(50));
    assert_each_once(&h, seq);
    assert!(h.gaps().is_empty());
    snap("redundancy_startup", &h);
}

/// Each fault that hits one socket: nothing lost, nothing reported, nothing twice.
fn one_socket_fault(name: &str, fault: impl FnOnce(&mut Harness, ConnId)) -> Harness {
    let mut h = two_links();
    let mut seq = 0;
    traffic(&mut h, &mut seq, 10, Duration::from_millis(100));
    let victim = open_conns(&h)[0];
    h.note(&format!("{name} on one socket"));
    fault(&mut h, victim);
    traffic(&mut h, &mut seq, 300, Duration::from_millis(100));
    assert_each_once(&h, seq);
    assert!(h.gaps().is_empty(), "{name}: no gap\n{}", h.log);
    assert!(!h.p.server.is_open(victim), "{name}: the victim is gone");
    assert_eq!(
        h.p.session.live_sockets(),
        2,
        "{name}: both links again\n{}",
        h.log
    );
    assert_eq!(h.p.session.status(), Status::Live);
    h
}

#[test]
fn an_abrupt_drop_of_one_socket_loses_nothing() {
    let h = one_socket_fault("abrupt drop", |h, c| h.server_close_socket(c, None));
    snap("redundancy_abrupt_drop", &h);
}

#[test]
fn a_close_with_any_code_on_one_socket_loses_nothing() {
    for code in [1000, 1001, 1006, 1008, 1011, 4000, 4001, 4003] {
        one_socket_fault(&format!("close {code}"), |h, c| {
            h.server_close_socket(c, Some(code))
        });
    }
}

#[test]
fn a_half_open_socket_is_found_and_replaced_without_a_gap() {
    let h = one_socket_fault("half-open", |h, c| {
        h.p.server.silent.insert(c);
    });
    assert_eq!(h.socket_dead_gaps(), 0);
}

#[test]
fn socket_closing_on_one_socket_renews_that_one_alone() {
    let h = one_socket_fault("socket_closing", |h, c| {
        h.input(Input::Frame {
            conn: c,
            text: SOCKET_CLOSING.into(),
        });
        h.serve();
    });
    // One new channel: the closing link's replacement.
    assert_eq!(creates(&h), 3, "{}", h.log);
    snap("redundancy_socket_closing", &h);
}

#[test]
fn displacement_of_one_socket_loses_nothing() {
    // A second connection to a channel closes the first (its close code is not known).
    one_socket_fault("displacement", |h, c| h.server_close_socket(c, Some(4000)));
}

#[test]
fn both_sockets_dropped_is_reported_as_with_one_link() {
    let mut h = two_links();
    let mut seq = 0;
    traffic(&mut h, &mut seq, 5, Duration::from_millis(100));
    h.note("both sockets drop");
    for c in open_conns(&h) {
        h.server_close_socket(c, None);
    }
    assert_eq!(h.p.session.status(), Status::Recovering);
    h.run_for(secs(5));
    let gaps = h.gaps();
    assert_eq!(gaps.len(), 1, "{}", h.log);
    assert!(matches!(
        gaps[0],
        Event::Gap {
            reason: GapReason::SocketLost,
            ..
        }
    ));
    assert_eq!(h.p.session.live_sockets(), 2);
}

#[test]
fn a_revoked_login_stops_both_links_with_one_report() {
    let mut h = two_links();
    h.world.fail_tokens(
        1,
        genesys_notify_core::RequestError::status_code(400, "invalid_grant"),
    );
    h.note("the token expires on the server and the refresh is refused");
    h.frame(harness::TOKEN_REVOKED);
    h.run_for(secs(2));
    assert_eq!(h.p.session.status(), Status::LoginRequired, "{}", h.log);
    let reports = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::LoginRequired { .. }))
        .count();
    assert_eq!(reports, 1);
    assert_eq!(h.p.server.open().count(), 0, "both sockets closed");
}

#[test]
fn renewals_never_overlap_and_the_links_hang_on_tokens_of_different_ages() {
    let mut server_cfg = cfg();
    server_cfg.stable_after = secs(1);
    let mut h = Harness::new(server_cfg, 11);
    h.p.server.token_ttl = secs(3600);
    h.p.server.channel_ttl = secs(86_400);
    h.subscribe(&[T1, T2]);
    h.serve();
    let mut standby_seen = 0;
    let mut max_sockets = 0;
    let mut last_live = h.p.now;
    for _ in 0..(10 * 3600 / 10) {
        h.run_for(secs(10));
        max_sockets = max_sockets.max(h.p.server.open().count());
        if h.p.server.open().count() == 3 {
            standby_seen += 1;
        }
        if h.p.session.live_sockets() == 2 {
            last_live = h.p.now;
        }
        assert!(
            h.p.now - last_live <= secs(120),
            "both links not live for long\n"
        );
    }
    assert!(max_sockets <= 3);
    assert!(standby_seen > 0, "no renewal seen");
    assert!(h.gaps().is_empty());
    // One token per renewal (about one per link and token life) plus the first.
    let tokens = h.count(|a| matches!(a, Action::RequestToken { .. }));
    assert!((15..=25).contains(&tokens), "token requests: {tokens}");
    // The creations come in pairs never closer than a few minutes: renewals do not overlap.
    let times: Vec<Instant> = h.times_of(|a| matches!(a, Action::CreateChannel { .. }));
    for w in times.windows(2).skip(1) {
        assert!(
            w[1] - w[0] >= Duration::from_secs(600),
            "two renewals {}s apart",
            (w[1] - w[0]).as_secs()
        );
    }
}

#[test]
fn a_service_that_keeps_a_topic_on_one_channel_gets_one_link_and_a_warning() {
    let mut h = two_links();
    let mut seq = 0;
    traffic(&mut h, &mut seq, 5, Duration::from_millis(100));
    let victim = open_conns(&h)[0];
    h.note("the service moved the first socket's topics to the second channel");
    h.input(Input::Frame {
        conn: victim,
        text: genesys_notify_core::testing::TAKEN_BY_ANOTHER_CHANNEL.into(),
    });
    h.serve();
    for conn in open_conns(&h) {
        if conn != victim {
            continue;
        }
        h.p.server.drop_socket(conn);
    }
    traffic(&mut h, &mut seq, 100, Duration::from_millis(100));
    assert_each_once(&h, seq);
    assert!(h.gaps().is_empty(), "{}", h.log);
    assert_eq!(h.p.session.live_sockets(), 1);
    let warned = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Warning(w) if w.to_string().contains("one channel only")))
        .count();
    assert_eq!(warned, 1);
    // No more channels: the session does not fight the service for the topics.
    assert_eq!(creates(&h), 2, "{}", h.log);
    snap("redundancy_one_channel_per_topic", &h);
}

/// Answers the first pending action that `pick` selects, and returns it.
fn answer_one(h: &mut Harness, pick: impl Fn(&Action) -> bool) -> Action {
    let i =
        h.p.pending
            .iter()
            .position(pick)
            .unwrap_or_else(|| panic!("no such action pending\n{}", h.log));
    let a = h.p.pending.remove(i).unwrap();
    h.answer(a.clone());
    a
}

/// Two links with their channels created and their upgrades under way, every answer held.
fn two_channels_created() -> Harness {
    let mut h = Harness::new(cfg(), 7);
    h.world.manual = true;
    h.subscribe(&[T1, T2]);
    answer_one(&mut h, |a| matches!(a, Action::RequestToken { .. }));
    answer_one(&mut h, |a| matches!(a, Action::CreateChannel { .. }));
    answer_one(&mut h, |a| matches!(a, Action::CreateChannel { .. }));
    h
}

fn puts_to(h: &Harness, channel: &str) -> usize {
    h.count(|a| matches!(a, Action::PutSubscriptions { channel: c, .. } if c.as_str() == channel))
}

/// A service that keeps each topic on one channel tells the channel it takes them from on that
/// channel's socket. A channel whose PUT went out beside an upgrade that has not finished has
/// no socket to be told on, so no other PUT may land then: the second link's subscription waits
/// until the first socket is open, and none goes out beside the second upgrade.
#[test]
fn no_subscription_lands_while_another_channel_holds_topics_without_a_socket() {
    let mut h = two_channels_created();
    // The first link's PUT went out beside its upgrade; the second's did not.
    assert_eq!(puts_to(&h, "ch1"), 1, "{}", h.log);
    assert_eq!(puts_to(&h, "ch2"), 0, "{}", h.log);
    // The second socket opens first; the first channel's PUT is answered, its socket is not.
    answer_one(
        &mut h,
        |a| matches!(a, Action::Connect { url, .. } if url.expose().ends_with("ch2")),
    );
    answer_one(&mut h, |a| matches!(a, Action::PutSubscriptions { .. }));
    assert_eq!(
        puts_to(&h, "ch2"),
        0,
        "waits for the first socket\n{}",
        h.log
    );
    answer_one(&mut h, |a| matches!(a, Action::Connect { .. }));
    assert_eq!(puts_to(&h, "ch2"), 1, "goes once it is open\n{}", h.log);
    h.world.manual = false;
    h.run_for(Duration::from_millis(10));
    assert_eq!(h.p.session.live_sockets(), 2, "{}", h.log);
}

/// The first upgrade fails: its channel holds topics with no socket until the link comes
/// back, which PUTs again once open (taking the topics back, and telling the second socket if
/// the service keeps each topic on one channel); the second link does not wait for it.
#[test]
fn a_failed_first_upgrade_does_not_hold_the_second_subscription() {
    let mut h = two_channels_created();
    answer_one(
        &mut h,
        |a| matches!(a, Action::Connect { url, .. } if url.expose().ends_with("ch2")),
    );
    h.world.fail_connects(
        1,
        genesys_notify_core::RequestError::Network("reset".into()),
    );
    answer_one(&mut h, |a| matches!(a, Action::Connect { .. }));
    assert_eq!(puts_to(&h, "ch2"), 1, "{}", h.log);
    h.world.manual = false;
    h.run_for(secs(10));
    assert_eq!(h.p.session.live_sockets(), 2, "{}", h.log);
    assert!(
        puts_to(&h, "ch1") >= 2,
        "the first link PUTs again once open\n{}",
        h.log
    );
}

/// `rounds` times: every open socket is closed with 4001 (an auth-class code) at once, and
/// the session is given 5 s (less than `stable_after`) to come back.
fn auth_close_rounds(redundancy: u8, rounds: u32) -> Harness {
    let cfg = Config {
        redundancy,
        ..Config::default()
    };
    let mut h = Harness::live(cfg, &[T1, T2]);
    h.run_for(Duration::from_millis(10));
    for round in 1..=rounds {
        h.note(&format!("round {round}: every socket closed with 4001"));
        for c in open_conns(&h) {
            h.server_close_socket(c, Some(4001));
        }
        h.run_for(secs(5));
    }
    h
}

/// One close of both sockets is one auth failure, as the close of one socket is with one
/// link: two rounds leave both modes recovering, the third asks for a login in both.
#[test]
fn an_auth_close_of_both_sockets_counts_once_toward_the_login_guard() {
    for redundancy in [1, 2] {
        for (rounds, login) in [(2, false), (3, true)] {
            let h = auth_close_rounds(redundancy, rounds);
            assert_eq!(
                h.p.session.status() == Status::LoginRequired,
                login,
                "redundancy {redundancy}: {rounds} rounds, a login asked for: {login}\n{}",
                h.log
            );
        }
    }
}

/// Tokens of 15 s: each link renews its channel every 10 s or so, four or more channels a
/// minute. A budget shared by both links held back a renewal until both channels had died
/// (a 22 s gap at 37 s); each link's own budget keeps them apart.
#[test]
fn short_tokens_renew_each_link_in_time_without_a_gap() {
    let mut h = Harness::new(cfg(), 7);
    h.p.server.token_ttl = secs(15);
    h.subscribe(&[T1, T2]);
    h.serve();
    let mut seq = 0;
    // Five minutes, twenty notifications a second on each topic.
    traffic(&mut h, &mut seq, 6_000, Duration::from_millis(50));
    assert!(h.gaps().is_empty(), "{:?}", h.gaps());
    assert_each_once(&h, seq);
    assert!(h.p.server.sockets() <= 3, "{}", h.p.server.sockets());
}
