//! Many sessions in one process dropped at the same instant: their reconnects must spread
//! out (the herd widens each session's first-retry spread) and every one must come back.

use std::time::Duration;

use genesys_notify_core::{Secret, Status, Topic};
use genesys_notify_sim::{Fault, Sim, SimConfig};

/// What [`herd`] saw.
#[derive(Debug)]
pub struct HerdReport {
    pub sessions: usize,
    /// Socket upgrades the simulator answered after the drop.
    pub reconnects: usize,
    /// The most reconnects that arrived within one 50 ms slot.
    pub busiest_slot: usize,
    /// From the first reconnect to the last.
    pub spread: Duration,
    /// From the drop until every session was live again (wall clock: a figure, not a test).
    pub all_live_after: Duration,
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `n` tokio sessions against one simulator, waits until all are live, drops every
/// socket at once and waits until all are live again.
pub fn herd(n: usize) -> HerdReport {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        heartbeat: Duration::from_secs(30),
        max_channels: n * 2,
        ..SimConfig::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let topic = Topic::new("v2.users.herd.presence").unwrap();
    let clients: Vec<_> = rt.block_on(async {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let c = genesys_notify_tokio::Client::builder()
                .base_urls(sim.base_url(), None)
                .credentials(genesys_notify_tokio::Credentials::ClientCredentials {
                    client_id: sim.client_id().to_owned(),
                    client_secret: Secret::new(sim.client_secret()),
                })
                .topics([topic.clone()])
                .seed(i as u64 + 1)
                .connect()
                .await
                .unwrap();
            v.push(c);
        }
        v
    });
    let all_live = || clients.iter().all(|(h, _)| h.status() == Status::Live);
    wait_until("all sessions live", Duration::from_secs(120), all_live);
    let before = sim.stats().requests.len();
    sim.fault(&Fault::Drop);
    let dropped = std::time::Instant::now();
    let upgrades_after = |sim: &Sim| -> Vec<u64> {
        sim.stats().requests[before..]
            .iter()
            .filter(|r| r.endpoint == "upgrade" && r.status == 101)
            .map(|r| r.at_ms)
            .collect()
    };
    wait_until("every session reconnected", Duration::from_secs(60), || {
        upgrades_after(&sim).len() >= n
    });
    wait_until("all sessions live again", Duration::from_secs(60), all_live);
    let all_live_after = dropped.elapsed();
    let at = upgrades_after(&sim);
    let first = at.iter().copied().min().unwrap_or(0);
    let last = at.iter().copied().max().unwrap_or(0);
    let mut slots = std::collections::BTreeMap::<u64, usize>::new();
    for t in &at {
        *slots.entry((t - first) / 50).or_default() += 1;
    }
    let report = HerdReport {
        sessions: n,
        reconnects: at.len(),
        busiest_slot: slots.values().copied().max().unwrap_or(0),
        spread: Duration::from_millis(last - first),
        all_live_after,
    };
    rt.block_on(async {
        for (h, _) in &clients {
            h.close().await;
        }
    });
    drop(clients);
    report
}
