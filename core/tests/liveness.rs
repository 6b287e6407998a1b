//! Properties of the learned liveness, in simulated time against the pretend server: whatever
//! the traffic's shape, a server that answers every ping within `min_ping_timeout` (however
//! its round trips vary) never gets a
//! socket declared dead, pings cost about one per second of silence at most, and a socket
//! that goes half-open is found within `idle_timeout + ping_timeout`. Cases: `PROPTEST_CASES`
//! (default 64; each case runs up to half an hour of simulated traffic).
#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

mod harness;

use std::time::Duration;

use genesys_notify_core::{Action, Config};
use harness::*;
use proptest::prelude::*;

const T1: &str = "v2.users.u1.presence";

/// One stretch of traffic: `events` events `gap_ms` apart, then `pause_ms` of silence.
#[derive(Debug, Clone)]
struct Stretch {
    events: u32,
    gap_ms: u64,
    pause_ms: u64,
}

fn stretch() -> impl Strategy<Value = Stretch> {
    (0u32..60, 1u64..2_000, 0u64..90_000).prop_map(|(events, gap_ms, pause_ms)| Stretch {
        events,
        gap_ms,
        pause_ms,
    })
}

/// Plays the stretches; returns the silence they held, and how many pauses.
fn play(h: &mut Harness, stretches: &[Stretch]) -> (Duration, u64) {
    let mut seq = 0;
    let mut silence = Duration::ZERO;
    for s in stretches {
        for _ in 0..s.events {
            seq += 1;
            h.publish(T1, seq);
            h.run_for(Duration::from_millis(s.gap_ms));
        }
        silence += Duration::from_millis(s.pause_ms);
        h.run_for(Duration::from_millis(s.pause_ms));
    }
    (silence, stretches.len() as u64)
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn an_alive_server_never_gets_a_socket_declared_dead(
        stretches in prop::collection::vec(stretch(), 1..40),
        pong_ms in prop::collection::vec(0u64..1_000, 1..20),
        seed in any::<u64>(),
    ) {
        let cfg = Config::default();
        let mut h = Harness::new(cfg.clone(), seed);
        // Every pong takes its own time, up to a second.
        h.world.pong_delays = pong_ms.iter().map(|ms| Duration::from_millis(*ms)).collect();
        h.subscribe(&[T1]);
        h.serve();
        let (silence, pauses) = play(&mut h, &stretches);
        prop_assert_eq!(h.socket_dead_gaps(), 0, "seed {}", seed);
        // (Renewals may replace the socket over a long run; they leave no gap.)
        prop_assert!(h.gaps().is_empty(), "{:?}", h.gaps());
        // About one ping per second of silence at most: each pause may begin with one more,
        // and a burst's gaps above a second are silence too.
        let gaps_over_a_second: u64 = stretches
            .iter()
            .map(|s| u64::from(s.events) * (s.gap_ms / 1_000))
            .sum();
        let bound = silence.as_secs() + gaps_over_a_second + pauses + 1;
        prop_assert!(u64::from(h.p.server.pings) <= bound, "{} pings, bound {}", h.p.server.pings, bound);
    }

    #[test]
    fn a_half_open_socket_is_found_within_idle_plus_ping_timeout(
        stretches in prop::collection::vec(stretch(), 1..10),
        seed in any::<u64>(),
    ) {
        let cfg = Config::default();
        let mut h = Harness::new(cfg.clone(), seed);
        h.subscribe(&[T1]);
        h.serve();
        play(&mut h, &stretches);
        let conn = h.conn();
        let silent_from = h.p.now;
        h.p.server.silent.insert(conn);
        h.run_for(cfg.idle_timeout + cfg.ping_timeout + Duration::from_secs(1));
        let closed = h.times_of(|a| matches!(a, Action::Close { conn: c, .. } if *c == conn));
        prop_assert_eq!(closed.len(), 1, "the silent socket is given up once");
        prop_assert!(closed[0] - silent_from <= cfg.idle_timeout + cfg.ping_timeout);
        prop_assert_eq!(h.socket_dead_gaps(), 1);
    }
}
