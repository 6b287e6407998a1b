//! A session at scale against the simulator in a process of its own, so that this process's
//! memory and CPU are the client's alone. Not in the default run (`--ignored`); the figures
//! go to BENCHMARKS.md:
//!
//! ```sh
//! SCALE_TOPICS=10000 cargo test --release -p genesys-notify --test scale -- --ignored --nocapture
//! SCALE_TOPICS=1000  cargo test --release -p genesys-notify --test scale -- --ignored --nocapture
//! ```
//!
//! Whatever the number of topics, the simulator publishes 1,000 notifications a second in all.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, Secret, Topic};
use genesys_notify_core::{Event, Status};

/// A field of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// User and system CPU time of this process.
fn cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((f[11] + f[12]) * 10)
}

#[test]
#[ignore = "a measurement: run with --ignored --release (see the file's docs)"]
fn topics_at_scale() {
    let n: usize = std::env::var("SCALE_TOPICS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rate = format!("{}", 1000.0 / n as f64);
    let (mut sim, banner) = common::spawn_sim(&["--rate", &rate, "--quiet"], Stdio::null());
    let b: serde_json::Value = serde_json::from_str(&banner).unwrap();
    let base = b["base_url"].as_str().unwrap().to_owned();
    let topics: Vec<Topic> = (0..n)
        .map(|i| Topic::new(format!("v2.users.u{i:05}.presence")).unwrap())
        .collect();
    let mut config = Config::new(
        Endpoints::custom(&base, None).unwrap(),
        Credentials::ClientCredentials {
            client_id: b["client_id"].as_str().unwrap().to_owned(),
            client_secret: Secret::new(b["client_secret"].as_str().unwrap()),
        },
    );
    config.topics = topics;
    config.queue_capacity = 65_536;
    config.queue_bytes = 64 << 20;
    let rss_before = status_kb("VmRSS:");
    let started = Instant::now();
    let mut client = Client::connect(config).unwrap();
    let mut gaps = 0;
    while client.status() != Status::Live {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not live in 60 s"
        );
        if let Ok(Event::Gap { .. }) = client.next_event(Duration::from_millis(10)) {
            gaps += 1;
        }
    }
    let to_live = started.elapsed();
    let held = client.held();
    // Settle, then measure memory and CPU over 30 s of 1,000 notifications a second.
    let read = |client: &mut Client, d: Duration| {
        let end = Instant::now() + d;
        let mut got = 0u64;
        let mut gap_topics = Vec::new();
        while Instant::now() < end {
            match client.next_event(Duration::from_millis(100)) {
                Ok(Event::Notification { .. }) => got += 1,
                Ok(Event::Gap { topics, .. }) => gap_topics.push(
                    topics
                        .iter()
                        .map(|t| t.as_str().to_owned())
                        .collect::<Vec<_>>(),
                ),
                _ => {}
            }
        }
        (got, gap_topics)
    };
    read(&mut client, Duration::from_secs(5));
    let rss_live = status_kb("VmRSS:");
    let cpu0 = cpu();
    let (got, early_gaps) = read(&mut client, Duration::from_secs(30));
    let cpu_used = cpu() - cpu0;
    let per_s = got as f64 / 30.0;
    // One shard's socket drops: only its topics may be in the gap.
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    agent
        .post(format!("{base}/__sim/fault"))
        .send("drop one")
        .unwrap();
    let (_, gap_lists) = read(&mut client, Duration::from_secs(10));
    let shards_in_gaps: std::collections::BTreeSet<usize> = gap_lists
        .iter()
        .flatten()
        .map(|t| {
            t["v2.users.u".len().."v2.users.u".len() + 5]
                .parse::<usize>()
                .unwrap()
                / 1000
        })
        .collect();
    let gap_topics: usize = gap_lists.iter().map(Vec::len).sum();
    println!(
        "scale topics={n} to_live_ms={} channels={} sockets={} rss_before_kb={rss_before} rss_live_kb={rss_live} rss_per_topic_b={} notifications_per_s={per_s:.0} cpu_ms_per_s={:.1} cpu_us_per_notification={:.1} gaps_before_fault={} gaps_after_drop={} gap_topics={gap_topics} shards_in_gaps={shards_in_gaps:?} status={}",
        to_live.as_millis(),
        held.channels,
        held.sockets,
        (rss_live.saturating_sub(rss_before)) * 1024 / n as u64,
        cpu_used.as_secs_f64() * 1000.0 / 30.0,
        cpu_used.as_secs_f64() * 1e6 / got.max(1) as f64,
        gaps + early_gaps.len(),
        gap_lists.len(),
        client.status(),
    );
    assert_eq!(gaps + early_gaps.len(), 0, "nothing lost before the fault");
    assert_eq!(shards_in_gaps.len(), 1, "one shard's topics in the gap");
    assert!(gap_topics <= 1000);
    assert_eq!(client.status(), Status::Live);
    client.close();
    let _ = sim.kill();
    let _ = sim.wait();
}
