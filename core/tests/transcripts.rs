//! Readable transcripts of the session's behaviour rules (start, delivery, liveness, renewal,
//! maintenance, overlap, loss, backoff, token failures, loop guard, login, gaps,
//! subscriptions, budget, suspend, close, bad input, bounds), snapshotted with insta.
//! Each test also asserts the fact the rule is about, so a careless snapshot update cannot
//! hide a regression.
#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

mod harness;

use std::time::Duration;

use genesys_notify_core::{
    Action, AuthError, Config, Event, GapReason, Input, Instant, RequestError, Status,
};
use harness::*;

const T1: &str = "v2.users.u1.presence";
const T2: &str = "v2.routing.queues.q1.conversations";

fn cfg() -> Config {
    Config::default()
}

fn snap(name: &str, h: &Harness) {
    insta::assert_snapshot!(name, h.log);
}

fn creates(h: &Harness) -> usize {
    h.count(|a| matches!(a, Action::CreateChannel { .. }))
}

fn connects(h: &Harness) -> usize {
    h.count(|a| matches!(a, Action::Connect { .. }))
}

/// A 401 that says the credentials are bad.
fn bad_credentials() -> RequestError {
    RequestError::status_code(401, "bad.credentials")
}

fn token_requests(h: &Harness) -> usize {
    h.count(|a| matches!(a, Action::RequestToken { .. }))
}

#[test]
fn start_startup() {
    let mut h = Harness::new(cfg(), 1);
    h.start(&[T1, T2]);
    h.publish(T1, 1);
    assert_eq!(h.p.session.status(), Status::Live);
    assert_eq!(h.got(), [(T1, 1)]);
    snap("start_startup", &h);
}

#[test]
fn delivery_notifications_in_order_heartbeats_never_delivered() {
    let mut h = Harness::live(cfg(), &[T1, T2]);
    h.quiet_liveness = false;
    h.publish(T1, 1);
    h.frame(HEARTBEAT);
    h.publish(T2, 1);
    h.publish(T1, 2);
    h.frame(PONG);
    assert_eq!(h.got(), [(T1, 1), (T2, 1), (T1, 2)]);
    snap("delivery_order_and_heartbeats", &h);
}

#[test]
fn liveness_half_open_socket_found_within_20s() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.quiet_liveness = false;
    let conn = h.conn();
    h.p.server.silent.insert(conn);
    h.note("the socket goes half-open: nothing arrives and pings are not answered");
    h.run_for(Duration::from_secs(21));
    let closed_at = h
        .actions
        .iter()
        .position(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn));
    assert!(closed_at.is_some(), "dead socket not closed");
    assert_ne!(h.conn(), conn, "no new socket");
    assert_eq!(h.p.session.status(), Status::Live);
    let (_, from, _, reason) = h.one_gap();
    assert_eq!((from, reason), (Instant::ZERO, GapReason::SocketDead));
    snap("liveness_half_open", &h);
}

/// Publishes `n` events on T1, `every` apart, continuing from `seq`.
fn traffic(h: &mut Harness, seq: &mut u64, n: u32, every: Duration) {
    for _ in 0..n {
        *seq += 1;
        h.publish(T1, *seq);
        h.run_for(every);
    }
}

/// A fixed-seed xorshift, for traffic shapes that repeat run after run.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn liveness_busy_socket_half_open_found_within_3s() {
    let mut h = Harness::live(cfg(), &[T1]);
    let mut seq = 0;
    traffic(&mut h, &mut seq, 100, Duration::from_millis(100));
    let conn = h.conn();
    let silent_from = h.p.now;
    h.p.server.silent.insert(conn);
    h.run_for(secs(10));
    let closed = h.times_of(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn));
    assert_eq!(closed.len(), 1, "the dead socket is closed once");
    let found_after = closed[0] - silent_from;
    assert!(
        found_after <= secs(3),
        "a socket that carried 10 events/s is found dead {found_after:?} after it fell silent"
    );
    assert_eq!(h.socket_dead_gaps(), 1);
    assert_eq!(h.p.session.status(), Status::Live);
}

#[test]
fn liveness_bursty_traffic_gives_no_false_dead_verdict() {
    let mut h = Harness::live(cfg(), &[T1]);
    let mut x = 0x9E37_79B9_7F4A_7C15;
    let mut seq = 0;
    let mut silence = Duration::ZERO;
    let mut pauses = 0;
    let end = h.p.now + secs(1800);
    while h.p.now < end {
        // A burst of 5–40 events 20–300 ms apart, then a pause of 2–90 s.
        for _ in 0..5 + xorshift(&mut x) % 36 {
            seq += 1;
            h.publish(T1, seq);
            h.run_for(Duration::from_millis(20 + xorshift(&mut x) % 281));
        }
        let pause = Duration::from_millis(2_000 + xorshift(&mut x) % 88_000);
        silence += pause;
        pauses += 1;
        h.run_for(pause);
    }
    assert_eq!(connects(&h), 1, "the socket was never replaced");
    assert_eq!(h.socket_dead_gaps(), 0);
    assert!(h.gaps().is_empty());
    assert_eq!(h.delivered.len() as u64, seq);
    // About one ping per second of silence at most (each pause may start with one more).
    let bound = silence.as_secs() + pauses;
    assert!(
        u64::from(h.p.server.pings) <= bound,
        "{} pings over {}s of silence in {pauses} pauses",
        h.p.server.pings,
        silence.as_secs()
    );
}

#[test]
fn liveness_slow_but_alive_server_gives_no_false_dead_verdict() {
    // Every pong takes 2.5 s, from the first one on: the session learns that from the ping
    // it sends as the socket goes live.
    let mut h = Harness::new(cfg(), 7);
    h.world.pong_delay = Duration::from_millis(2_500);
    h.start(&[T1]);
    let mut x = 0x2545_F491_4F6C_DD1D;
    let mut seq = 0;
    for _ in 0..60 {
        traffic(&mut h, &mut seq, 20, Duration::from_millis(100));
        h.run_for(Duration::from_millis(1_000 + xorshift(&mut x) % 20_000));
    }
    assert!(
        h.p.server.pings > 60,
        "the pauses were pinged: {}",
        h.p.server.pings
    );
    assert_eq!(connects(&h), 1, "the socket was never replaced");
    assert_eq!(h.socket_dead_gaps(), 0);
    assert_eq!(h.delivered.len() as u64, seq);
}

#[test]
fn liveness_silence_with_pongs_keeps_the_socket() {
    let h = Harness::live_for(cfg(), Duration::from_secs(600), &[T1]);
    assert_eq!(connects(&h), 1);
    assert!(
        h.p.server.pings >= 39,
        "pings every 15 s of silence: {}",
        h.p.server.pings
    );
}

#[test]
fn renewal_token_expiry_renewal_without_gap() {
    let mut h = Harness::started(cfg(), 3, &[T1], |s| s.token_ttl = secs(300));
    h.run_for(secs(280));
    h.publish(T1, 1);
    h.run_for(secs(30));
    h.publish(T1, 2);
    assert!(h.gaps().is_empty(), "planned renewal must not leave a gap");
    assert_eq!(token_requests(&h), 2);
    assert_eq!(creates(&h), 2);
    // Make-before-break: the old socket is closed only after the new one is subscribed.
    let put2 = h
        .actions
        .iter()
        .rposition(|a| matches!(a, Action::PutSubscriptions { .. }))
        .unwrap();
    let close = h
        .actions
        .iter()
        .position(|a| matches!(a, Action::Close { .. }))
        .unwrap();
    assert!(close > put2);
    assert_eq!(h.got(), [(T1, 1), (T1, 2)]);
    assert!(h
        .events
        .iter()
        .all(|e| !matches!(e, Event::Status(Status::Recovering))));
    snap("renewal_token_renewal", &h);
}

#[test]
fn renewal_channel_24h_rollover() {
    let mut h = Harness::started(cfg(), 4, &[T1], |s| s.token_ttl = secs(172_800));
    h.run_for(secs(86_400 + 60));
    h.publish(T1, 1);
    assert!(h.gaps().is_empty());
    assert_eq!(
        token_requests(&h),
        1,
        "the token still has a day left: no refresh"
    );
    assert_eq!(creates(&h), 2);
    assert_eq!(h.got(), [(T1, 1)]);
    snap("renewal_channel_rollover", &h);
}

#[test]
fn maintenance_socket_closing_handover() {
    let mut h = Harness::live_for(cfg(), secs(100), &[T1]);
    h.frame(SOCKET_CLOSING);
    h.publish(T1, 1);
    h.run_for(cfg().handover_linger);
    assert!(h.gaps().is_empty());
    assert_eq!(creates(&h), 2);
    assert_eq!(
        h.p.server.open().count(),
        1,
        "old socket closed after the new one is live"
    );
    assert_eq!(h.got(), [(T1, 1)]);
    snap("maintenance_socket_closing", &h);
}

#[test]
fn maintenance_socket_closing_when_new_channel_cannot_be_made() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.world.fail_channels(50, RequestError::status(503));
    h.frame(SOCKET_CLOSING);
    h.run_for(secs(56));
    assert!(
        h.actions.iter().any(|a| matches!(a, Action::Close { .. })),
        "old socket closed at the grace"
    );
    h.world.channel_faults.clear();
    h.run_for(secs(60));
    assert_eq!(h.outcome(), (Status::Live, vec![GapReason::Maintenance]));
}

#[test]
fn handover_waits_for_the_pong_behind_frames_in_flight() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.quiet_liveness = false;
    let old = h.conn();
    let put = h.standby_until_put();
    h.note("events 1 and 2 go out on the old socket only; the new PUT is applied after them");
    h.p.server.set_topics("ch2", [T1]);
    h.answer(put);
    let ping = h.p.pending.pop_front().unwrap();
    assert!(
        matches!(&ping, Action::Send { conn, text } if *conn == old && text.contains("ping")),
        "the ready standby asks the old socket for a pong: {ping:?}"
    );
    h.note("1 and 2 were in flight before that ping: they prove nothing about what follows");
    for seq in [1, 2] {
        h.input(Input::Frame {
            conn: old,
            text: notification(T1, seq),
        });
        assert_eq!(
            h.p.server.open().count(),
            2,
            "old socket closed before its pong"
        );
    }
    h.note("the pong proves the old socket drained; both stay open for the handover linger");
    h.answer(ping);
    assert_eq!(
        h.p.server.open().count(),
        2,
        "old socket kept for the linger"
    );
    h.note("a service that wrote its pong ahead of a queued event: 3 arrives after the pong");
    h.input(Input::Frame {
        conn: old,
        text: notification(T1, 3),
    });
    h.publish(T1, 4);
    h.run_for(cfg().handover_linger);
    assert!(
        !h.p.server.is_open(old),
        "old socket closed after the linger"
    );
    h.publish(T1, 5);
    assert_eq!(h.got(), (1..=5).map(|n| (T1, n)).collect::<Vec<_>>());
    assert!(h.gaps().is_empty());
    snap("handover_pong", &h);
}

#[test]
fn handover_old_socket_silent_before_its_pong_is_a_gap() {
    let mut h = Harness::live(cfg(), &[T1]);
    let old = h.conn();
    let put = h.standby_until_put();
    h.p.server.set_topics("ch2", [T1]);
    h.answer(put);
    let _ping = h.p.pending.pop_front().unwrap();
    h.note("a frame still in flight arrives, then the old socket falls silent: no pong");
    h.input(Input::Frame {
        conn: old,
        text: notification(T1, 1),
    });
    h.p.server.silent.insert(old);
    h.run_for(cfg().ping_timeout);
    assert!(!h.p.server.is_open(old), "silent old socket closed");
    assert_eq!(
        h.gap_reasons(),
        [GapReason::SocketDead],
        "what it may have had in flight is reported"
    );
    assert_eq!(h.p.session.status(), Status::Live);
    snap("handover_silent_before_pong", &h);
}

#[test]
fn handover_overlap_dedup() {
    let mut h = Harness::live(cfg(), &[T1]);
    // Bring the standby up by hand so events can be published while both sockets are open.
    let put = h.standby_until_put();
    assert_eq!(h.p.server.open().count(), 2);
    h.note("both sockets open and the new PUT applied server-side; its answer is still on the way");
    h.p.server.set_topics("ch2", [T1]);
    h.publish(T1, 1);
    h.publish(T1, 2);
    h.answer(put);
    h.serve();
    h.publish(T1, 3);
    assert_eq!(h.got(), [(T1, 1), (T1, 2), (T1, 3)]);
    snap("handover_overlap_dedup", &h);
}

#[test]
fn loss_abrupt_close_reconnects_to_same_channel() {
    let mut h = Harness::live_for(cfg(), secs(60), &[T1]);
    h.server_close(None);
    h.run_for(secs(2));
    assert_eq!(creates(&h), 1, "same channel");
    assert_eq!(connects(&h), 2);
    assert_eq!(h.p.session.status(), Status::Live);
    assert_eq!(h.gaps().len(), 1);
    snap("loss_abrupt_close", &h);
}

/// The times of the session's upgrades after `from`, relative to it, in ms.
fn connects_after(h: &Harness, from: Instant) -> Vec<u128> {
    h.times_of(|a| matches!(a, Action::Connect { .. }))
        .into_iter()
        .filter(|t| *t > from)
        .map(|t| (t - from).as_millis())
        .collect()
}

#[test]
fn loss_a_second_reset_soon_after_a_served_connection_retries_at_once() {
    let mut h = Harness::live(cfg(), &[T1]);
    let mut seq = 0;
    traffic(&mut h, &mut seq, 20, Duration::from_millis(100));
    h.server_close(None);
    let first = h.p.now;
    h.run_for(secs(1));
    assert_eq!(h.p.session.status(), Status::Live);
    // The new connection serves for 10 s (well short of stable_after, 30 s), then resets
    // too: it proved the path, so the retry goes out within the first-retry spread again.
    traffic(&mut h, &mut seq, 100, Duration::from_millis(100));
    h.server_close(None);
    let second = h.p.now;
    h.run_for(secs(3));
    assert_eq!(h.p.session.status(), Status::Live);
    let (a, b) = (connects_after(&h, first), connects_after(&h, second));
    assert!(a[0] <= 100, "first retry after {}ms", a[0]);
    assert!(b[0] <= 100, "second retry after {}ms", b[0]);
    assert_eq!(creates(&h), 1, "same channel");
    assert_eq!(h.gaps().len(), 2);
    snap("loss_second_reset", &h);
}

#[test]
fn loss_a_second_displacement_soon_after_retries_at_once() {
    let mut h = Harness::live(cfg(), &[T1]);
    let mut seq = 0;
    traffic(&mut h, &mut seq, 20, Duration::from_millis(100));
    // Displaced: another connection took the channel; the service closes this one normally.
    h.server_close(Some(1000));
    let first = h.p.now;
    h.run_for(secs(1));
    traffic(&mut h, &mut seq, 100, Duration::from_millis(100));
    h.server_close(Some(1000));
    let second = h.p.now;
    h.run_for(secs(3));
    assert_eq!(h.p.session.status(), Status::Live);
    let (a, b) = (connects_after(&h, first), connects_after(&h, second));
    assert!(a[0] <= 100 && b[0] <= 100, "{a:?} {b:?}");
    snap("loss_second_displacement", &h);
}

#[test]
fn backoff_a_path_that_flaps_still_backs_off() {
    let mut h = Harness::live_for(cfg(), secs(60), &[T1]);
    // Every new connection dies 100 ms after it opens (before it could prove the path).
    let mut waits = Vec::new();
    for _ in 0..6 {
        h.server_close(None);
        let lost = h.p.now;
        let mut n = 0;
        while connects_after(&h, lost).is_empty() && n < 1_000 {
            let (at, _) = h.p.session.poll_timeout().unwrap();
            h.run_until(at);
            n += 1;
        }
        waits.push(connects_after(&h, lost)[0]);
        h.run_for(Duration::from_millis(100));
    }
    assert!(
        waits[0] <= 100,
        "the first retry after a stable connection is at once: {waits:?}"
    );
    // While coverage is lost the steps are drawn between backoff_base (500 ms) and 2 s.
    assert!(
        waits[1..].iter().all(|w| *w >= 500),
        "later retries wait a backoff step: {waits:?}"
    );
    snap("backoff_flapping_path", &h);
}

/// What a close costs follows what it says. A close (1001) whose socket cannot be upgraded
/// again (404) means the channel is gone: a new channel, the same token. An auth close code
/// (4001), a minute in: a fresh token, then a new channel.
#[test]
fn loss_a_close_costs_what_its_cause_needs() {
    for (code, tokens, snapshot) in [(1001, 1, "loss_upgrade_404"), (4001, 2, "loss_auth_close")] {
        let mut h = Harness::live(cfg(), &[T1]);
        if code == 1001 {
            h.world.fail_connects(1, RequestError::status(404));
        } else {
            h.run_for(secs(60));
        }
        h.server_close(Some(code));
        h.run_for(secs(5));
        assert_eq!(token_requests(&h), tokens, "close {code}");
        assert_eq!(creates(&h), 2, "close {code}");
        assert_eq!(h.p.session.status(), Status::Live);
        snap(snapshot, &h);
    }
}

#[test]
fn loss_expired_token_close_without_code_gets_new_token_and_channel() {
    let mut h = Harness::new(cfg(), 5);
    h.p.server.token_ttl = secs(300);
    h.world.manual = true;
    h.subscribe(&[T1]);
    h.world.manual = false;
    h.serve();
    // The standby's token request is refused until after expiry.
    h.world.fail_tokens(30, RequestError::status(503));
    h.run_for(secs(301));
    assert_eq!(h.p.session.status(), Status::Recovering);
    h.run_for(secs(600));
    assert_eq!(h.outcome(), (Status::Live, vec![GapReason::ChannelExpired]));
}

#[test]
fn backoff_grows_and_resets_only_after_stable() {
    let mut h = Harness::live(cfg(), &[T1]);
    let mut delays = Vec::new();
    h.world.fail_connects(6, RequestError::network("refused"));
    h.server_close(None);
    let mut last = h.p.now;
    for _ in 0..7 {
        let (at, _) = h.p.session.poll_timeout().unwrap();
        delays.push((at - last).as_millis());
        h.run_until(at);
        last = at;
    }
    for w in delays.windows(2).take(4) {
        assert!(w[1] >= 500, "{delays:?}");
    }
    assert!(delays.iter().all(|d| *d <= 30_000), "{delays:?}");
    assert!(delays[4] > delays[0], "backoff grows: {delays:?}");
}

#[test]
fn backoff_503_storm_bounded_backoff() {
    let mut h = Harness::new(cfg(), 8);
    h.world.fail_channels(15, RequestError::status(503));
    h.start(&[T1]);
    h.run_for(secs(600));
    assert_eq!(h.p.session.status(), Status::Live);
    assert_eq!(creates(&h), 16);
    let times = h.times_of(|a| matches!(a, Action::CreateChannel { .. }));
    for w in times.windows(2) {
        let d = w[1] - w[0];
        assert!(
            d >= Duration::from_millis(500) && d <= secs(60),
            "{times:?}"
        );
    }
    snap("backoff_503_storm", &h);
}

#[test]
fn backoff_429_retry_after_honoured() {
    let mut h = Harness::new(cfg(), 9);
    h.world.fail_tokens(1, RequestError::rate_limited(secs(17)));
    h.start(&[T1]);
    h.run_for(secs(16));
    assert_eq!(token_requests(&h), 1, "no retry before Retry-After");
    h.run_for(secs(10));
    assert_eq!(token_requests(&h), 2);
    assert_eq!(h.p.session.status(), Status::Live);
    snap("backoff_429_retry_after", &h);
}

#[test]
fn token_invalid_grant_requires_login() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.world
        .fail_tokens(1, RequestError::status_code(400, "invalid_grant"));
    h.run_for(secs(3600));
    assert_eq!(h.p.session.status(), Status::LoginRequired);
    let n = h.actions.len();
    h.run_for(secs(3600));
    assert_eq!(h.actions.len(), n, "no IO while login is required");
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::LoginRequired {
            reason: AuthError::GrantRejected { .. },
            ..
        }
    )));
    h.note("the user signs in again");
    h.login("tok-login");
    assert_eq!(h.p.session.status(), Status::Live);
    assert_eq!(h.gap_reasons().last(), Some(&GapReason::LoginRequired));
    snap("token_invalid_grant", &h);
}

#[test]
fn token_max_refresh_attempts_gives_up() {
    let config = Config {
        max_refresh_attempts: Some(3),
        ..cfg()
    };
    let mut h = Harness::started(config, 10, &[T1], |s| s.token_ttl = secs(600));
    h.world.fail_tokens(10, RequestError::status(503));
    h.run_for(secs(500));
    assert_eq!(h.p.session.status(), Status::Live);
    h.run_for(secs(100));
    assert_eq!(h.p.session.status(), Status::LoginRequired);
    assert_eq!(token_requests(&h), 4);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::LoginRequired {
            reason: AuthError::RefreshGaveUp { attempts: 3, .. },
            ..
        }
    )));
}

/// A REST 401 costs exactly one refresh, whether the token is two minutes old or only 5 s:
/// server-side revocation of a young token is not a loop either.
#[test]
fn loop_guard_rest_401_refreshes_exactly_once() {
    for age in [120, 5] {
        let mut h = Harness::live_for(cfg(), secs(age), &[T1]);
        h.world.fail_subs(1, bad_credentials());
        h.start(&[T2]);
        assert_eq!(token_requests(&h), 2, "exactly one refresh at {age} s");
        assert_eq!(h.p.session.status(), Status::Live);
        if age == 120 {
            snap("loop_guard_rest_401", &h);
        }
    }
}

#[test]
fn loop_guard_401_with_fresh_token_requires_login() {
    let mut h = Harness::new(cfg(), 11);
    h.world.fail_channels(5, bad_credentials());
    h.start(&[T1]);
    assert_eq!(token_requests(&h), 2, "one refresh, then no loop");
    assert_eq!(h.p.session.status(), Status::LoginRequired);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::LoginRequired {
            reason: AuthError::TokenRejected { status: 401 },
            ..
        }
    )));
    snap("loop_guard_fresh_401", &h);
}

#[test]
fn loop_guard_repeated_auth_close_requires_login() {
    let mut h = Harness::live(cfg(), &[T1]);
    for _ in 0..3 {
        h.run_for(secs(5));
        h.server_close(Some(4003));
    }
    assert_eq!(h.p.session.status(), Status::LoginRequired);
    assert!(token_requests(&h) <= 3);
    snap("loop_guard_repeated_auth_close", &h);
}

#[test]
fn login_resumes_same_topics() {
    let mut h = Harness::live(cfg(), &[T1, T2]);
    h.world
        .fail_tokens(1, RequestError::status_code(401, "invalid_client"));
    h.server_close(Some(4001));
    h.run_for(secs(5));
    assert_eq!(h.p.session.status(), Status::LoginRequired);
    h.login("fresh");
    let last_put = h.actions.iter().rev().find_map(|a| match a {
        Action::PutSubscriptions { topics, .. } => Some(topics.len()),
        _ => None,
    });
    assert_eq!(last_put, Some(2));
    assert_eq!(h.p.session.status(), Status::Live);
    snap("login_resumes", &h);
}

#[test]
fn gap_report() {
    let mut h = Harness::live_for(cfg(), secs(40), &[T1, T2]);
    h.world
        .connect_faults
        .extend([RequestError::status(503), RequestError::network("reset")]);
    h.server_close(Some(1011));
    h.run_for(secs(10));
    let (topics, from, to, reason) = h.one_gap();
    assert_eq!(topics.len(), 2);
    assert_eq!(from, Instant::from_secs(40));
    assert!(to > from);
    assert_eq!(reason, GapReason::SocketLost);
    snap("gap", &h);
}

#[test]
fn subscriptions_subscription_changes_and_rejected_topic() {
    let mut h = Harness::new(cfg(), 13);
    h.p.server.rejected.insert(
        "v2.users.other.presence".into(),
        "missing permission presence:view".into(),
    );
    h.start(&[T1, "v2.users.other.presence"]);
    assert_eq!(h.p.session.status(), Status::Live);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::TopicRejected { .. })));
    h.start(&[T2]);
    h.p.session.unsubscribe(h.p.now, [&topic(T1)]).unwrap();
    h.line("unsubscribe [T1]");
    h.serve();
    assert_eq!(
        h.p.session
            .covered_topics()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
        vec![T2]
    );
    let rejected = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::TopicRejected { .. }))
        .count();
    assert_eq!(rejected, 1, "reported once, not on every PUT");
    snap("subscriptions", &h);
}

#[test]
fn subscriptions_limits_at_the_call() {
    // Three channels: two carry topics, one is kept for renewals.
    let config = Config {
        max_channels: 3,
        ..cfg()
    };
    let mut h = Harness::new(config, 14);
    let many: Vec<_> = (0..2001)
        .map(|i| topic(&format!("v2.users.{i}.presence")))
        .collect();
    let err = h.p.session.subscribe(h.p.now, many).unwrap_err();
    assert!(err.to_string().contains("at most 2000 fit"), "{err}");
    assert_eq!(h.p.session.topics().count(), 0);
    assert_eq!(h.p.session.shards(), 1);
}

#[test]
fn budget_channel_budget() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.world.fail_connects(12, RequestError::status(404));
    h.server_close(None);
    h.run_until(Instant::from_secs(60));
    assert!(
        creates(&h) <= 6 + 1,
        "at most 6 creations per minute, got {}",
        creates(&h)
    );
    h.run_for(secs(300));
    assert_eq!(h.p.session.status(), Status::Live);
    let times = h.times_of(|a| matches!(a, Action::CreateChannel { .. }));
    assert!(times.len() >= 13, "{times:?}");
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().filter(|u| **u < *t + secs(60)).count();
        assert!(
            in_window <= 6,
            "more than 6 creations in the minute after {t}: {times:?}"
        );
    }
    snap("budget_channel_budget", &h);
}

#[test]
fn suspend_and_resume() {
    let mut h = Harness::started(cfg(), 15, &[T1], |s| s.token_ttl = secs(3600));
    h.quiet_liveness = false;
    h.run_for(secs(10));
    h.note("the laptop sleeps for 2 hours; the monotonic clock does not count it");
    h.p.server.silent.insert(h.conn());
    h.input(Input::Resumed { slept: secs(7200) });
    assert_ne!(
        h.p.session.status(),
        Status::Live,
        "not live until proven after a suspend"
    );
    h.serve();
    h.run_for(secs(10));
    assert_eq!(h.p.session.status(), Status::Live);
    assert_eq!(token_requests(&h), 2, "the token expired during the sleep");
    assert_eq!(h.gap_reasons(), [GapReason::Suspended]);
    snap("suspend", &h);
}

#[test]
fn close_and_late_results() {
    let mut h = Harness::new(cfg(), 16);
    h.world.manual = true;
    h.subscribe(&[T1]);
    let req = match h.p.pending.pop_front() {
        Some(Action::RequestToken { req }) => req,
        other => panic!("{other:?}"),
    };
    h.p.session.close(h.p.now);
    h.line("close()");
    h.input(Input::TokenIssued {
        req,
        token: "late".into(),
        expires_in: secs(60),
        rotated_refresh_token: false,
    });
    h.run_for(secs(3600));
    assert_eq!(h.p.session.status(), Status::Closed);
    assert!(h.p.session.poll_timeout().is_none());
    assert_eq!(h.actions.len(), 1, "nothing after close");
    assert!(h.p.session.subscribe(h.p.now, [topic(T2)]).is_err());
    snap("close_late_results", &h);
}

#[test]
fn close_while_live_closes_sockets() {
    let mut h = Harness::live(cfg(), &[T1]);
    let conn = h.conn();
    h.p.session.close(h.p.now);
    assert_eq!(
        h.p.session.poll_action(),
        Some(Action::Close { conn, code: 1000 })
    );
    assert_eq!(h.p.session.poll_action(), None);
}

#[test]
fn bad_input_is_a_warning() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.frame("not json");
    h.frame(r#"{"topicName":"v2.users.u1.presence","eventBody":{"seq":"#);
    h.frame(&format!(
        r#"{{"topicName":"v2.users.u1.presence","eventBody":"{}"}}"#,
        "x".repeat(1 << 20)
    ));
    h.frame(r#"{"topicName":"v2.unknown.topic","eventBody":{}}"#);
    h.input(Input::Opened {
        conn: genesys_notify_core::ConnId::from_u64(999),
    });
    h.p.session.handle_timeout(Instant::from_secs(10));
    h.p.session.handle_timeout(Instant::from_secs(5));
    let direct: Vec<String> = std::iter::from_fn(|| h.p.session.poll_event())
        .map(|e| format!("{e:?}"))
        .collect();
    assert!(
        direct.iter().any(|e| e.contains("TimeWentBackwards")),
        "{direct:?}"
    );
    assert!(
        direct
            .iter()
            .any(|e| e.contains("MalformedFrames { dropped: 1,")),
        "the second malformed frame is reported at the window's end: {direct:?}"
    );
    assert_eq!(h.p.session.status(), Status::Live);
    let malformed = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Warning(_)))
        .count();
    assert_eq!(
        malformed, 1,
        "the second malformed frame waits for the digest"
    );
    snap("bad_input", &h);
}

#[test]
fn bad_input_a_malformed_flood_is_one_warning_per_window() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.frame("{");
    for _ in 0..1000 {
        h.frame("{");
    }
    h.run_for(secs(25));
    let warnings: Vec<String> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Warning(w) => Some(w.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        warnings,
        [
            "dropped a malformed frame (not JSON or truncated); 1 so far",
            "1000 malformed frames dropped in the last 10 s (1001 so far)"
        ]
    );
    assert_eq!(h.p.session.status(), Status::Live, "the socket stays up");
}

#[test]
fn renewal_over_a_silent_old_socket_reports_the_gap() {
    let mut h = Harness::started(cfg(), 18, &[T1], |s| s.token_ttl = secs(300));
    h.quiet_liveness = false;
    h.run_for(secs(260));
    h.publish(T1, 1);
    h.note("the old socket goes silent just before the renewal");
    let old = h.conn();
    h.p.server.silent.insert(old);
    h.run_for(secs(20));
    h.publish(T1, 2);
    let (_, from, _, reason) = h.one_gap();
    assert_eq!(
        (from, reason),
        (Instant::from_secs(260), GapReason::SocketDead),
        "the silent stretch of the old socket is reported"
    );
    assert!(h.delivered.contains(&(T1.to_owned(), 2)));
    snap("renewal_silent_old_socket", &h);
}

#[test]
fn bounds_a_token_that_lives_no_longer_than_the_lead_backs_off() {
    let mut h = Harness::started(cfg(), 3, &[T1], |s| s.token_ttl = Duration::ZERO);
    h.run_for(secs(120));
    let asks = h.times_of(|a| matches!(a, Action::RequestToken { .. }));
    assert!(asks.len() <= 10, "{} token requests in 2 min", asks.len());
    assert!(asks.len() >= 4, "it keeps trying: {}", asks.len());
    let spacing: Vec<Duration> = asks.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        spacing.windows(2).all(|w| w[1] >= w[0] || w[1] >= secs(15)),
        "each wait is longer than the last, up to the cap: {spacing:?}"
    );
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::Warning(w) if w.to_string().contains("expires in 0 ms"))));
    assert_eq!(
        h.count(|a| matches!(a, Action::CreateChannel { .. })),
        0,
        "a dead token is not used"
    );
    snap("bounds_short_token", &h);
}

#[test]
fn bounds_an_already_expired_channel_backs_off_with_a_warning() {
    let mut h = Harness::started(cfg(), 3, &[T1], |s| s.channel_ttl = Duration::ZERO);
    h.run_until(Instant::from_secs(180));
    let made = creates(&h);
    assert!(made <= 12, "{made} channels in 3 min: the delay grows");
    assert!(made >= 3, "it keeps trying: {made}");
    assert_eq!(h.count(|a| matches!(a, Action::Connect { .. })), 0);
    let warned = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Warning(w) if w.to_string().contains("channel that expires in 0 ms")))
        .count();
    assert_eq!(warned, made, "one warning per expired channel");
    snap("bounds_expired_channel", &h);
}

#[test]
fn bounds_a_huge_retry_after_is_capped_with_a_warning() {
    let mut h = Harness::new(cfg(), 3);
    h.world
        .fail_channels(1, RequestError::rate_limited(secs(99_999_999_999)));
    h.start(&[T1]);
    h.run_for(secs(700));
    assert_eq!(h.p.session.status(), Status::Live);
    let creates = h.times_of(|a| matches!(a, Action::CreateChannel { .. }));
    assert_eq!(creates.len(), 2);
    assert!(creates[1] - creates[0] >= secs(600) && creates[1] - creates[0] < secs(602));
    assert!(h.events.iter().any(|e| matches!(e, Event::Warning(w)
        if w.to_string() == "channel creation: the server asked to wait 99999999999s (Retry-After); waiting 600s instead")));
    snap("bounds_retry_after_cap", &h);
}

#[test]
fn bounds_a_refused_connect_uri_stops_the_session_after_one_retry() {
    let mut h = Harness::new(cfg(), 3);
    h.world.fail_channels(5, RequestError::Refused(
            "connectUri refused: ws://evil.example is not the streaming host wss://streaming.example".into(),
        ));
    h.start(&[T1]);
    h.run_for(secs(60));
    assert_eq!(h.p.session.status(), Status::Failed);
    assert_eq!(h.count(|a| matches!(a, Action::CreateChannel { .. })), 2);
    assert_eq!(h.count(|a| matches!(a, Action::Connect { .. })), 0);
    let fatal = h.fatals();
    assert_eq!(fatal.len(), 1);
    assert!(
        fatal[0].contains("evil.example") && fatal[0].contains("check the region"),
        "{}",
        fatal[0]
    );
    assert!(
        h.p.session.poll_timeout().is_none(),
        "nothing more is scheduled"
    );
    assert!(h.p.session.subscribe(h.p.now, [topic(T2)]).is_err());
    snap("bounds_refused_connect_uri", &h);
}

#[test]
fn bounds_a_redirected_token_request_stops_after_one_retry() {
    let mut h = Harness::new(cfg(), 3);
    h.world.fail_tokens(
        3,
        RequestError::Refused(
            "HTTP 302 redirect to elsewhere.example (redirects are never followed)".into(),
        ),
    );
    h.start(&[T1]);
    h.run_for(secs(60));
    assert_eq!(h.p.session.status(), Status::Failed);
    assert_eq!(h.count(|a| matches!(a, Action::RequestToken { .. })), 2);
}

#[test]
fn close_closing_while_recovering_reports_the_open_stretch() {
    let mut h = Harness::live_for(cfg(), secs(40), &[T1, T2]);
    h.world
        .fail_connects(20, RequestError::network("connection refused"));
    h.note("the socket drops and every reconnect fails");
    let lost_at = h.p.now;
    h.server_close(None);
    h.run_for(secs(5));
    assert_eq!(h.p.session.status(), Status::Recovering);
    assert!(h.gaps().is_empty());
    h.note("the application closes while recovering");
    h.p.session.close(h.p.now);
    h.drain();
    let (topics, from, to, reason) = h.one_gap();
    assert_eq!(
        (topics.len(), from, to, reason),
        (2, lost_at, h.p.now, GapReason::SocketLost),
        "the open stretch is reported at close"
    );
    assert_eq!(h.events.last(), Some(&Event::Status(Status::Closed)));
    snap("close_while_recovering", &h);
}

#[test]
fn urgency_a_retry_after_is_the_moment_to_retry_while_coverage_is_lost() {
    let mut h = Harness::live(cfg(), &[T1]);
    h.quiet_liveness = false;
    h.run_for(secs(60));
    h.note("the socket drops; its channel refuses the upgrade, and the next creation gets 429");
    h.world.fail_connects(1, RequestError::status(404));
    h.world
        .fail_channels(1, RequestError::rate_limited(secs(3)));
    h.server_close(None);
    h.run_for(secs(10));
    let creates = h.times_of(|a| matches!(a, Action::CreateChannel { .. }));
    assert_eq!(creates.len(), 3, "{creates:?}");
    assert_eq!(
        creates[2] - creates[1],
        secs(3),
        "the retry goes out when the service said, not a backoff step later"
    );
    assert_eq!(h.p.session.status(), Status::Live);
    snap("urgency_retry_after", &h);
}

#[test]
fn urgency_a_token_outage_is_retried_about_once_a_second_and_recovers_at_once() {
    let mut h = Harness::started(cfg(), 5, &[T1], |s| s.token_ttl = secs(15));
    h.run_for(secs(5));
    h.note("the token endpoint answers 503 from t=5 s to t=25 s; the token dies at t=15 s");
    h.world.fail_tokens(1000, RequestError::status(503));
    let outage_from = h.p.now;
    h.run_for(secs(20));
    let healed_at = h.p.now;
    h.world.token_faults.clear();
    let mut waited = Duration::ZERO;
    while h.p.session.status() != Status::Live && waited < secs(30) {
        h.run_for(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    assert!(
        waited <= Duration::from_millis(2_500),
        "live {waited:?} after the endpoint answers again"
    );
    let asks: Vec<Instant> = h
        .times_of(|a| matches!(a, Action::RequestToken { .. }))
        .into_iter()
        .filter(|t| *t >= outage_from && *t < healed_at)
        .collect();
    assert!(
        asks.len() as u64 <= (healed_at - outage_from).as_secs(),
        "{} token requests in a {:?} outage",
        asks.len(),
        healed_at - outage_from
    );
    assert!(asks.len() >= 8, "it keeps trying: {}", asks.len());
    assert_eq!(h.gaps().len(), 1, "one gap for the one loss");
}

#[test]
fn renewal_of_a_short_token_survives_two_refusals() {
    // With the backoff: the renewal of a 15 s token is refused twice with 503.
    let mut h = Harness::started(cfg(), 6, &[T1], |s| s.token_ttl = secs(15));
    h.world.fail_tokens(2, RequestError::status(503));
    h.run_for(secs(40));
    assert!(h.gaps().is_empty(), "{:?}", h.gaps());
    assert_eq!(h.p.session.status(), Status::Live);

    // With the Retry-After the service gave last: 3 s at the start, then twice at renewal.
    let mut h = Harness::new(cfg(), 6);
    h.p.server.token_ttl = secs(15);
    h.world.fail_tokens(1, RequestError::rate_limited(secs(3)));
    h.start(&[T1]);
    h.run_for(secs(5));
    h.world.token_faults.extend([
        RequestError::rate_limited(secs(3)),
        RequestError::rate_limited(secs(3)),
    ]);
    h.run_for(secs(40));
    assert!(h.gaps().is_empty(), "{:?}", h.gaps());
    assert_eq!(h.p.session.status(), Status::Live);
}

#[test]
fn overlap_the_put_beside_the_upgrade_may_be_answered_first() {
    let mut h = Harness::new(cfg(), 8);
    h.world.manual = true;
    h.subscribe(&[T1]);
    let token = h.p.pending.pop_front().unwrap();
    h.answer(token);
    let create = h.p.pending.pop_front().unwrap();
    h.answer(create);
    let connect = h.p.pending.pop_front().unwrap();
    let put = h.p.pending.pop_front().unwrap();
    assert!(matches!(connect, Action::Connect { .. }), "{connect:?}");
    assert!(matches!(put, Action::PutSubscriptions { .. }), "{put:?}");
    h.note("the subscription is confirmed before the upgrade completes: not live yet");
    h.answer(put);
    assert_eq!(h.p.session.status(), Status::Connecting);
    assert_eq!(h.p.session.covered_topics().count(), 0);
    h.answer(connect);
    assert_eq!(h.p.session.status(), Status::Live);
    h.world.manual = false;
    h.serve();
    h.publish(T1, 1);
    assert_eq!(h.got(), [(T1, 1)]);
    snap("overlap_put_first", &h);
}

#[test]
fn loss_a_socket_silent_before_its_channel_expires_is_reported_as_dead() {
    // The token lives 30 s and its renewal is refused, so the channel dies at t=30 s. The
    // socket carried 10 events a second until it went half-open at t=28.5 s: its ping (after
    // 1 s of silence) is still unanswered when the channel dies.
    let mut h = Harness::started(cfg(), 9, &[T1], |s| s.token_ttl = secs(30));
    h.world.fail_tokens(1000, RequestError::status(503));
    let mut seq = 0;
    traffic(&mut h, &mut seq, 285, Duration::from_millis(100));
    let conn = h.conn();
    h.p.server.silent.insert(conn);
    h.run_for(secs(5));
    h.world.token_faults.clear();
    h.run_for(secs(10));
    assert_eq!(
        h.gap_reasons().first(),
        Some(&GapReason::SocketDead),
        "the first cause: {:?}",
        h.gaps()
    );
}

/// The old channel's socket is closed by the server only after the channel expired, and the
/// close is the first thing the session hears after a pause (a page that was frozen or slow,
/// found in Chromium): the service published nothing to the expired channel, so coverage
/// ended at the expiry, not at the close, and the gap says so.
#[test]
fn a_close_heard_after_the_channel_expired_reports_from_the_expiry() {
    let mut h = Harness::started(cfg(), 5, &[T1], |s| s.channel_ttl = secs(60));
    assert_eq!(h.p.session.status(), Status::Live);
    let old = h.conn();
    // The renewal's channel requests fail until after the expiry.
    h.world.fail_channels(20, RequestError::status(503));
    h.run_until(Instant::from_secs(59));
    h.note("nothing is heard until the server's close, after the expiry");
    h.p.now = Instant::from_secs(62);
    h.world.channel_faults.clear();
    h.p.server.drop_socket(old);
    h.input(Input::Closed {
        conn: old,
        code: Some(1000),
        reason: "expired".into(),
    });
    h.serve();
    h.run_for(secs(5));
    assert_eq!(h.p.session.status(), Status::Live, "{}", h.log);
    let (_, from, ..) = h.one_gap();
    assert!(from <= Instant::from_secs(60), "{}", h.log);
}

/// A socket that survives a suspend: nobody read it meanwhile, and whether the service kept
/// what it could not send is not known, so the stretch is reported once the pong to a ping
/// sent at the resume proves the socket drained. With `suspend_gap: false` a surviving
/// socket is taken to have lost nothing.
#[test]
fn suspend_survived_is_reported_unless_told_otherwise() {
    for suspend_gap in [true, false] {
        let mut h = Harness::new(
            Config {
                suspend_gap,
                ..cfg()
            },
            15,
        );
        h.start(&[T1]);
        h.run_for(secs(10));
        h.note("the page is frozen for 30 s; its socket survives");
        h.input(Input::Resumed { slept: secs(30) });
        assert_ne!(h.p.session.status(), Status::Live);
        // A frame the socket had buffered before the resume ping is answered proves nothing.
        h.publish(T1, 1);
        h.serve();
        h.run_for(secs(2));
        assert_eq!(h.p.session.status(), Status::Live, "{}", h.log);
        if suspend_gap {
            let (_, from, _, reason) = h.one_gap();
            assert_eq!(reason, GapReason::Suspended);
            assert!(from <= Instant::from_secs(10), "{}", h.log);
            snap("suspend_survived", &h);
        } else {
            assert!(h.gaps().is_empty(), "{}", h.log);
        }
        assert_eq!(h.delivered.len(), 1);
    }
}

/// Live on a 20 s token whose source will answer `failures` renewals with "cannot refresh".
fn token_that_will_not_renew(failures: usize) -> Harness {
    let mut h = Harness::started(cfg(), 3, &[T1], |s| s.token_ttl = secs(20));
    h.world.fail_tokens(
        failures,
        RequestError::CannotRefresh("the page has no other token".into()),
    );
    h
}

/// A token the source cannot renew (a page's PKCE login, a static token): the application is
/// told while it still has time, and a login before the token ends moves the session to the
/// new token make-before-break — nothing uncovered, no `LoginRequired`.
#[test]
fn login_soon_then_login_before_the_end() {
    let mut h = token_that_will_not_renew(1);
    h.run_for(secs(17));
    let soon: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::LoginSoon { expires_in, .. } => Some(*expires_in),
            _ => None,
        })
        .collect();
    assert_eq!(soon.len(), 1, "told once\n{}", h.log);
    assert!(soon[0] > secs(1) && soon[0] < secs(20), "{soon:?}");
    h.publish(T1, 1);
    h.login("fresh");
    h.run_for(secs(10));
    h.publish(T1, 2);
    h.run_for(secs(1));
    assert!(h.gaps().is_empty(), "{}", h.log);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, Event::LoginRequired { .. })),
        "{}",
        h.log
    );
    assert_eq!(h.got(), [(T1, 1), (T1, 2)]);
    snap("login_soon", &h);
}

/// Told, but no login comes: `LoginRequired` when the token ends, as before.
#[test]
fn login_soon_then_nothing_is_login_required_at_the_end() {
    let mut h = token_that_will_not_renew(2);
    h.run_for(secs(25));
    let n = |pred: fn(&Event) -> bool| h.events.iter().filter(|e| pred(e)).count();
    assert_eq!(n(|e| matches!(e, Event::LoginSoon { .. })), 1, "{}", h.log);
    assert_eq!(
        n(|e| matches!(e, Event::LoginRequired { .. })),
        1,
        "{}",
        h.log
    );
}

/// The service sends a notification to both sockets as soon as the new one is upgraded on its
/// side; the old socket's copy can be read before the session hears that the new socket
/// opened (a page runs the old socket's message before the new one's `onopen`). That copy
/// must count for the overlap's duplicate suppression too: delivered once.
#[test]
fn handover_copy_read_before_the_new_socket_is_known_open_is_delivered_once() {
    let mut h = Harness::live(cfg(), &[T1]);
    let old = h.conn();
    h.world.manual = true;
    h.frame(SOCKET_CLOSING);
    let create = h.p.pending.pop_front().expect("no channel request");
    h.world.manual = false;
    h.answer(create);
    h.world.manual = true;
    let connect = h.p.pending.pop_front().expect("no connect");
    let Action::Connect { conn: new, .. } = connect else {
        panic!("not a connect: {connect:?}");
    };
    h.note("the new socket is upgraded server-side; the old one's copy is read first");
    h.input(Input::Frame {
        conn: old,
        text: genesys_notify_core::testing::notification(T1, 1),
    });
    h.world.manual = false;
    h.answer(connect);
    h.serve();
    h.input(Input::Frame {
        conn: new,
        text: genesys_notify_core::testing::notification(T1, 1),
    });
    h.serve();
    assert_eq!(h.got(), [(T1, 1)], "{}", h.log);
}

#[test]
fn rejections_of_topics_never_sent_are_ignored() {
    use genesys_notify_core::{testing, Input, TopicResult};
    let (mut s, mut server) = testing::live(cfg(), &[T1], testing::FakeServer::new());
    s.subscribe(Instant::ZERO, [topic(T2)]).unwrap();
    let mut answered = false;
    while let Some(a) = s.poll_action() {
        server.emitted(&a);
        if let Action::PutSubscriptions { req, topics, .. } = &a {
            let mut results: Vec<TopicResult> = topics
                .iter()
                .map(|t| TopicResult::permitted(t.as_str()))
                .collect();
            // A server that lists ids nobody asked for.
            for n in 0..500 {
                results.push(TopicResult::rejected(
                    format!("v2.users.never{n}.presence"),
                    "no".to_owned(),
                ));
            }
            s.handle_input(Instant::ZERO, Input::Subscribed { req: *req, results });
            answered = true;
        }
    }
    assert!(answered);
    let rejected: Vec<Event> = std::iter::from_fn(|| s.poll_event())
        .filter(|e| matches!(e, Event::TopicRejected { .. }))
        .collect();
    assert!(
        rejected.is_empty(),
        "{} rejections reported: {:?}",
        rejected.len(),
        rejected.first()
    );
    assert_eq!(s.covered_topics().count(), 2);
}
