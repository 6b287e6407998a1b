//! Frame handling throughput: a live `Session` fed a mix of heartbeats and 0.5–4 KB
//! notifications, against one `serde_json::from_str::<IgnoredAny>` validation pass over the
//! same frames. The last line, `frames ratio_vs_validation=X.XX`, is session throughput
//! divided by validation throughput, measured side by side in this run.
#![allow(
    missing_docs,
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::wildcard_enum_match_arm
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput};
use genesys_notify_core::testing::{live, FakeServer};
use genesys_notify_core::{Config, ConnId, Input, Instant, Session};
use serde::de::IgnoredAny;

const FRAMES: usize = 2_000;

/// Deterministic frames: one heartbeat in four, notifications with bodies of 0.5–4 KB.
fn frames() -> Vec<String> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..FRAMES)
        .map(|i| {
            if i % 4 == 0 {
                return r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#.to_owned();
            }
            let size = 512 + (next() % 3584) as usize;
            let user = next() % 8;
            let mut body = String::from(r#"{"id":"6c1b4f1e","routingStatus":{"status":"IDLE"},"history":["#);
            while body.len() < size {
                body.push_str(&format!(r#"{{"at":"2026-11-28T10:{:02}:00.000Z","state":"on queue","n":{}}},"#, next() % 60, next() % 1000));
            }
            body.push_str(r#"{}]}"#);
            format!(
                r#"{{"topicName":"v2.users.{user}.presence","version":"2","eventBody":{body},"metadata":{{"CorrelationId":"{:016x}","type":"message"}}}}"#,
                next()
            )
        })
        .collect()
}

/// A session subscribed to the eight users' presence, live on one socket.
fn live_session() -> (Session, ConnId) {
    let topics: Vec<String> = (0..8).map(|u| format!("v2.users.{u}.presence")).collect();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    let mut server = FakeServer::new();
    server.token_ttl = Duration::from_secs(86_400);
    let (s, server) = live(Config::default(), &topics, server);
    (s, server.newest().unwrap())
}

fn validate(frames: &[String]) {
    for f in frames {
        black_box(serde_json::from_str::<IgnoredAny>(f).unwrap());
    }
}

/// Feeds every frame (owned, as a socket hands it over) and drains the events.
fn run_session(s: &mut Session, conn: ConnId, frames: Vec<String>, t: &mut u64) {
    for text in frames {
        *t += 1;
        s.handle_input(Instant::from_millis(*t), Input::Frame { conn, text });
        while let Some(e) = s.poll_event() {
            black_box(e);
        }
    }
}

/// Alternates the two workloads and compares their median times, so both see the same
/// machine state. Wall-clock timing is the benchmark's job, not the core's.
#[allow(clippy::disallowed_methods)]
fn ratio(frames: &[String]) -> f64 {
    let (mut s, conn) = live_session();
    let mut t = 0;
    let (mut base, mut sess) = (Vec::new(), Vec::new());
    for _ in 0..31 {
        let copy = frames.to_vec();
        let start = std::time::Instant::now();
        validate(frames);
        base.push(start.elapsed());
        let start = std::time::Instant::now();
        run_session(&mut s, conn, copy, &mut t);
        sess.push(start.elapsed());
    }
    base.sort();
    sess.sort();
    base[15].as_secs_f64() / sess[15].as_secs_f64()
}

fn main() {
    let frames = frames();
    let bytes: usize = frames.iter().map(String::len).sum();
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(5));
    let mut g = c.benchmark_group("frames");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("serde_json_validation", |b| b.iter(|| validate(&frames)));
    let (mut s, conn) = live_session();
    let mut t = 0;
    g.bench_function("session", |b| {
        b.iter_batched(
            || frames.clone(),
            |f| run_session(&mut s, conn, f, &mut t),
            BatchSize::LargeInput,
        )
    });
    g.finish();
    c.final_summary();
    let r = ratio(&frames);
    println!("frames bytes={bytes} count={FRAMES}");
    println!("frames ratio_vs_validation={r:.2}");
}
