//! Chaos soak: a session against the simulator under a seeded random fault schedule.
//!
//! The default test run includes a 60-second soak per adapter. The long soak is ignored by
//! default; run it with
//! `SOAK_SECONDS=1800 cargo test --release -p genesys-notify-tests --test soak -- --ignored --nocapture`
//! (`SOAK_SEED=N` replays a schedule).
//!
//! The bursty steady-state run (no fault, traffic in bursts with long pauses) must declare no
//! socket dead: 30 s per adapter by default, and
//! `BURSTY_SECONDS=1800 cargo test --release -p genesys-notify-tests --test soak bursty -- --ignored --nocapture`
//! for the long one.
#![allow(clippy::unwrap_used, missing_docs)]

use genesys_notify_tests::adapters::{Blocking, Tokio};
use genesys_notify_tests::{bursty, soak, soak_one_socket, Adapter, Outcome};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn verdict(out: &Outcome) {
    assert_eq!(
        out.lost_outside_gaps, 0,
        "events lost outside a reported gap: {out}\n{:?}",
        out.unexplained
    );
    assert_eq!(out.duplicates, 0, "duplicates: {out}");
    assert!(!out.login_required, "{out}");
    assert!(out.delivered > 0, "{out}");
}

fn short(adapter: &dyn Adapter) {
    verdict(&soak(adapter, env("SOAK_SEED", 20261128), 60));
}

fn long(adapter: &dyn Adapter) {
    verdict(&soak(
        adapter,
        env("SOAK_SEED", 20261128),
        env("SOAK_SECONDS", 1800),
    ));
}

#[test]
fn soak_blocking_60s() {
    short(&Blocking);
}

#[test]
fn soak_tokio_60s() {
    short(&Tokio);
}

#[test]
#[ignore = "long: SOAK_SECONDS (default 1800)"]
fn soak_blocking() {
    long(&Blocking);
}

#[test]
#[ignore = "long: SOAK_SECONDS (default 1800)"]
fn soak_tokio() {
    long(&Tokio);
}

/// Redundant mode: the soak's schedule with every socket fault on one socket, beside the
/// same schedule with one link, both at once. With two links, no socket fault may cost an
/// event.
fn redundant(adapter: &(dyn Adapter + Sync), seconds: u64) {
    let seed = env("SOAK_SEED", 20261128);
    let (two, one) = std::thread::scope(|s| {
        let two = s.spawn(|| soak_one_socket(adapter, seed, seconds, 2));
        let one = soak_one_socket(adapter, seed, seconds, 1);
        (two.join().unwrap(), one)
    });
    verdict(&two);
    verdict(&one);
    assert!(
        two.lost_inside_gaps <= one.lost_inside_gaps,
        "two links lost more than one: {two} vs {one}"
    );
}

#[test]
fn soak_redundant_blocking_60s() {
    redundant(&Blocking, 60);
}

#[test]
fn soak_redundant_tokio_60s() {
    redundant(&Tokio, 60);
}

/// One long redundant-soak run: the one-socket schedule with `links` links.
fn long_redundant(adapter: &dyn Adapter, links: u8) {
    let seed = env("SOAK_SEED", 20261128);
    verdict(&soak_one_socket(
        adapter,
        seed,
        env("SOAK_SECONDS", 1800),
        links,
    ));
}

#[test]
#[ignore = "long: SOAK_SECONDS (default 1800), run with --test-threads 4 to run both modes at once"]
fn soak_redundant_two_links_blocking() {
    long_redundant(&Blocking, 2);
}

#[test]
#[ignore = "long: SOAK_SECONDS (default 1800)"]
fn soak_redundant_two_links_tokio() {
    long_redundant(&Tokio, 2);
}

#[test]
#[ignore = "long: SOAK_SECONDS (default 1800)"]
fn soak_redundant_one_link_blocking() {
    long_redundant(&Blocking, 1);
}

#[test]
#[ignore = "long: SOAK_SECONDS (default 1800)"]
fn soak_redundant_one_link_tokio() {
    long_redundant(&Tokio, 1);
}

fn no_false_verdict(adapter: &dyn Adapter, seconds: u64) {
    let out = bursty(adapter, env("SOAK_SEED", 20261201), seconds);
    verdict(&out);
    assert_eq!(
        out.sockets_declared_dead(),
        0,
        "a false dead verdict: {out}"
    );
    assert!(out.gaps.is_empty(), "{out}");
}

#[test]
fn bursty_blocking_30s() {
    no_false_verdict(&Blocking, 30);
}

#[test]
fn bursty_tokio_30s() {
    no_false_verdict(&Tokio, 30);
}

#[test]
#[ignore = "long: BURSTY_SECONDS (default 1800)"]
fn bursty_blocking() {
    no_false_verdict(&Blocking, env("BURSTY_SECONDS", 1800));
}

#[test]
#[ignore = "long: BURSTY_SECONDS (default 1800)"]
fn bursty_tokio() {
    no_false_verdict(&Tokio, env("BURSTY_SECONDS", 1800));
}
