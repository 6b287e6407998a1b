//! End-to-end scenario machinery: run an adapter against the simulator under a fault timeline
//! and account for every event the simulator published — delivered, lost inside a reported
//! gap, or lost outside one (a bug) — plus duplicates, recoveries and request counts.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime};

use genesys_notify_core::{Event, GapReason, Instant, Status};
use genesys_notify_sim::{Fault, Ledger, Sim, SimConfig};

pub mod adapters;
pub mod browser;
pub mod fuzz;
pub mod herd;
pub mod hostile;

/// How the client logs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creds {
    /// Client id and secret.
    ClientCredentials,
    /// The refresh-token grant with the simulator's refresh token.
    RefreshToken,
}

/// One row of the scenario table.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub sim: SimConfig,
    pub session: genesys_notify_core::Config,
    pub topics: Vec<&'static str>,
    pub run_for: Duration,
    /// Faults applied by the test at these times after the session went live.
    pub faults: Vec<(Duration, Fault)>,
    pub creds: Creds,
    pub expect_login_required: bool,
    pub max_token_requests: usize,
    pub max_channel_requests: usize,
    /// The simulator's connectUri points elsewhere: nothing may connect.
    pub foreign_connect_uri: bool,
    /// The session must stop with a fatal configuration error.
    pub expect_fatal: bool,
    /// At most this many events may be lost (inside reported gaps) over the run.
    pub max_lost: Option<u64>,
    /// The client is given the simulator's self-signed certificate (with `sim.tls`).
    pub trust_sim_cert: bool,
    /// The client is frozen at these times after going live, for this long (a browser page
    /// sent to the background; only the browser adapter can be frozen).
    pub freezes: Vec<(Duration, Duration)>,
    /// The client talks to this base URL instead of the simulator's (a proxy in front of it).
    pub api_base: Option<String>,
    /// Every gap names at most this many topics (a fault on one shard's socket gaps only
    /// that shard's topics).
    pub max_gap_topics: Option<usize>,
}

impl Scenario {
    /// Short lifetimes and quick liveness so a scenario fits in seconds.
    pub fn new(name: &'static str) -> Scenario {
        let session = genesys_notify_core::Config {
            idle_timeout: Duration::from_millis(1500),
            ping_timeout: Duration::from_millis(1000),
            backoff_base: Duration::from_millis(100),
            backoff_cap: Duration::from_secs(2),
            stable_after: Duration::from_secs(3),
            maintenance_grace: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
            // Lifetimes here are minutes squeezed into seconds: the per-minute budgets scale
            // with them, or a fault storm would wait for the budget instead of the server.
            max_channel_creations_per_minute: 30,
            max_token_requests_per_minute: 60,
            max_connects_per_minute: 120,
            max_subscription_requests_per_minute: 120,
            ..genesys_notify_core::Config::default()
        };
        Scenario {
            name,
            sim: SimConfig {
                rate: 20.0,
                heartbeat: Duration::from_secs(5),
                maintenance_grace: Duration::from_secs(2),
                ..SimConfig::default()
            },
            session,
            topics: vec![
                "v2.users.u1.presence",
                "v2.routing.queues.q1.conversations",
                "v2.users.u2.presence",
            ],
            run_for: Duration::from_secs(6),
            faults: Vec::new(),
            creds: Creds::ClientCredentials,
            expect_login_required: false,
            max_token_requests: 4,
            max_channel_requests: 4,
            foreign_connect_uri: false,
            expect_fatal: false,
            max_lost: None,
            trust_sim_cert: true,
            freezes: Vec::new(),
            api_base: None,
            max_gap_topics: None,
        }
    }

    /// The recovery table's setting: production session defaults, two topics at 5 events/s
    /// each, and a simulator that costs 100 ms per HTTP answer and socket upgrade.
    pub fn recovery(name: &'static str) -> Scenario {
        let mut s = Scenario::new(name);
        s.session = genesys_notify_core::Config::default();
        s.sim.rate = 5.0;
        s.sim.latency = Duration::from_millis(100);
        s.sim.heartbeat = Duration::from_secs(30);
        s.topics = vec!["v2.users.u1.presence", "v2.users.u2.presence"];
        s
    }
}

/// What an adapter under test must offer.
pub trait Running {
    fn next_event(&mut self, timeout: Duration) -> Option<Event>;
    fn wall_time(&self, at: Instant) -> SystemTime;
    fn status(&self) -> Status;
    fn close(&mut self);
    /// Socket entries and threads or tasks the adapter holds now.
    fn held(&self) -> genesys_notify_adapter_common::Held;
    /// Freezes the client for `for_ms` as a browser freezes a background page (only the
    /// browser adapter can).
    fn freeze(&mut self, _for_ms: u64) {}
}

/// Starts an adapter's client against a running simulator.
pub trait Adapter {
    fn name(&self) -> &'static str;
    fn start(&self, scenario: &Scenario, sim: &Sim) -> Box<dyn Running>;
}

#[derive(Debug, Clone)]
pub struct Gap {
    pub topics: BTreeSet<String>,
    pub from: SystemTime,
    pub to: SystemTime,
    pub reason: GapReason,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub published: u64,
    pub delivered: u64,
    pub duplicates: u64,
    pub lost_inside_gaps: u64,
    pub lost_outside_gaps: u64,
    pub gaps: Vec<Gap>,
    pub login_required: bool,
    pub token_requests: usize,
    pub channel_requests: usize,
    pub upgrades: usize,
    pub subscription_requests: usize,
    /// Per fault, how long after it the first notification arrived (None: none did).
    pub first_event_after_fault_ms: Vec<Option<u128>>,
    /// Per fault, how long after it the session first said it was no longer live.
    pub left_live_after_fault_ms: Vec<Option<u128>>,
    pub warnings: Vec<String>,
    pub rejected_topics: Vec<String>,
    pub statuses: Vec<Status>,
    pub fatal: Vec<String>,
    /// Per topic, the first missing sequence numbers outside gaps (for diagnosis).
    pub unexplained: BTreeMap<String, Vec<u64>>,
    /// A service that keeps each topic on one channel took topics from a channel of this
    /// client that had no socket to tell (see the simulator's `Stats`).
    pub topics_taken_unseen: u64,
    /// Channels with an open socket the simulator evicted because the client held too many.
    pub live_channels_evicted: u64,
}

impl Outcome {
    /// Gaps the session opened because it declared a socket dead (no frame, no pong).
    pub fn sockets_declared_dead(&self) -> usize {
        self.gaps
            .iter()
            .filter(|g| g.reason == GapReason::SocketDead)
            .count()
    }

    pub fn max_recovery_ms(&self) -> u128 {
        self.gaps
            .iter()
            .map(|g| g.to.duration_since(g.from).unwrap_or_default().as_millis())
            .max()
            .unwrap_or(0)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "published={} delivered={} duplicates={} gaps={} lost_inside_gaps={} lost_outside_gaps={} max_recovery_ms={} first_event_after_fault_ms={} left_live_after_fault_ms={} token_requests={} channel_requests={} upgrades={} subscription_requests={} login_required={}",
            self.published,
            self.delivered,
            self.duplicates,
            self.gaps.len(),
            self.lost_inside_gaps,
            self.lost_outside_gaps,
            self.max_recovery_ms(),
            per_fault(&self.first_event_after_fault_ms),
            per_fault(&self.left_live_after_fault_ms),
            self.token_requests,
            self.channel_requests,
            self.upgrades,
            self.subscription_requests,
            self.login_required
        )
    }
}

/// Per-fault figures, comma-separated (`none` where nothing happened).
fn per_fault(ms: &[Option<u128>]) -> String {
    ms.iter()
        .map(|m| m.map_or("none".to_owned(), |m| m.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// The time from each of `faults` to the first event after it that `pred` accepts.
fn first_after(
    faults: &[SystemTime],
    events: &[(SystemTime, Event)],
    pred: impl Fn(&Event) -> bool,
) -> Vec<Option<u128>> {
    faults
        .iter()
        .map(|at| {
            events.iter().find_map(|(t, e)| {
                (t >= at && pred(e)).then(|| t.duration_since(*at).unwrap_or_default().as_millis())
            })
        })
        .collect()
}

/// Time allowed between a server-side publish and the edge of a gap: publishing, socket
/// writes and the session's view of "now" are not one instant.
const SLACK: Duration = Duration::from_millis(1000);

/// Runs one scenario and accounts for every published event.
pub fn run(scenario: &Scenario, adapter: &dyn Adapter) -> Outcome {
    let mut sim_cfg = scenario.sim.clone();
    if scenario.foreign_connect_uri {
        sim_cfg.connect_uri_base = Some("ws://192.0.2.1:9".to_owned());
    }
    let sim = Sim::start(sim_cfg).unwrap();
    let mut client = adapter.start(scenario, &sim);
    let mut events = Vec::new();
    let started = std::time::Instant::now();
    // Wait until live (or a login is required, or the session stopped: a foreign connectUri
    // ends in a fatal) before the fault clock starts. A browser may take seconds to start on
    // a loaded machine: the clock must not run out before the page has run at all.
    let live_by = started + Duration::from_secs(30);
    while std::time::Instant::now() < live_by {
        if let Some(e) = client.next_event(Duration::from_millis(50)) {
            events.push((SystemTime::now(), e));
        }
        if matches!(client.status(), Status::Live | Status::LoginRequired)
            || client.status().is_terminal()
        {
            break;
        }
    }
    let t0 = std::time::Instant::now();
    let mut faults = scenario.faults.clone();
    faults.sort_by_key(|(at, _)| *at);
    let mut next_fault = 0;
    let mut fault_times = Vec::new();
    let mut freezes = scenario.freezes.clone();
    freezes.sort();
    let mut next_freeze = 0;
    while t0.elapsed() < scenario.run_for {
        while next_fault < faults.len() && t0.elapsed() >= faults[next_fault].0 {
            sim.fault(&faults[next_fault].1);
            fault_times.push(SystemTime::now());
            next_fault += 1;
        }
        while next_freeze < freezes.len() && t0.elapsed() >= freezes[next_freeze].0 {
            let ms = u64::try_from(freezes[next_freeze].1.as_millis()).unwrap_or(u64::MAX);
            client.freeze(ms);
            next_freeze += 1;
        }
        if let Some(e) = client.next_event(Duration::from_millis(20)) {
            events.push((SystemTime::now(), e));
        }
    }
    let stats = sim.stats();
    let published: BTreeMap<String, u64> = stats.published.clone();
    let settle = std::time::Instant::now() + Duration::from_millis(700);
    while std::time::Instant::now() < settle {
        if let Some(e) = client.next_event(Duration::from_millis(20)) {
            events.push((SystemTime::now(), e));
        }
    }
    client.close();
    while let Some(e) = client.next_event(Duration::from_millis(10)) {
        events.push((SystemTime::now(), e));
    }
    let mut out = account(scenario, &sim, &*client, &events, &stats, &published);
    out.first_event_after_fault_ms = first_after(&fault_times, &events, |e| {
        matches!(e, Event::Notification { .. })
    });
    out.left_live_after_fault_ms = first_after(
        &fault_times,
        &events,
        |e| matches!(e, Event::Status(s) if *s != Status::Live),
    );
    drop(sim);
    out
}

/// Accounts for every event the simulator published up to `published`: delivered, lost
/// inside a reported gap, or lost outside one.
pub fn account(
    scenario: &Scenario,
    sim: &Sim,
    client: &dyn Running,
    events: &[(SystemTime, Event)],
    stats: &genesys_notify_sim::Stats,
    published: &BTreeMap<String, u64>,
) -> Outcome {
    let mut out = Outcome {
        token_requests: stats.count("token"),
        channel_requests: stats.count("channels.create"),
        upgrades: stats.count("upgrade"),
        subscription_requests: stats.count("subscriptions.put"),
        topics_taken_unseen: stats.topics_taken_unseen,
        live_channels_evicted: stats.live_channels_evicted,
        ..Outcome::default()
    };
    let mut ledger = Ledger::new();
    for (arrived, e) in events {
        match e {
            Event::Notification { raw, .. } => ledger.notification(raw),
            Event::Gap {
                topics,
                from,
                to,
                reason,
            } => {
                let gap = Gap {
                    topics: topics.iter().map(|t| t.as_str().to_owned()).collect(),
                    from: client.wall_time(*from),
                    to: client.wall_time(*to),
                    reason: *reason,
                };
                ledger.gap(gap.topics.iter().cloned(), gap.from, gap.to);
                out.gaps.push(gap);
            }
            Event::LoginRequired { since, .. } => {
                out.login_required = true;
                ledger.login_required(since.map_or(*arrived, |s| client.wall_time(s)));
            }
            Event::Warning(w) => out.warnings.push(w.to_string()),
            Event::LoginSoon { reason, .. } => out.warnings.push(reason.to_string()),
            Event::TopicRejected { topic, .. } => out.rejected_topics.push(topic.clone()),
            Event::Status(s) => {
                if *s == Status::Live {
                    ledger.live(*arrived);
                }
                out.statuses.push(*s);
            }
            Event::Fatal(f) => {
                out.fatal.push(f.to_string());
                // The application was told the session stopped: later losses are explained.
                ledger.login_required(*arrived);
            }
            _ => {}
        }
    }
    let counted: Vec<&str> = scenario
        .topics
        .iter()
        .copied()
        .filter(|t| !out.rejected_topics.iter().any(|r| r == t))
        .collect();
    // Gap edges are the client's receive times; a simulator that delays notifications on
    // purpose (`notification_lag`) moves every publish that much earlier than its receipt.
    let tally = ledger.settle(
        sim,
        &counted,
        published,
        SLACK + scenario.sim.notification_lag,
    );
    out.published = tally.published;
    out.delivered = tally.delivered;
    out.duplicates = tally.duplicates;
    out.lost_inside_gaps = tally.lost_inside_gaps;
    out.lost_outside_gaps = tally.lost_outside_gaps;
    out.unexplained = tally.unexplained;
    out
}

/// Asserts what every scenario promises, with the outcome in the message.
pub fn check(scenario: &Scenario, adapter: &str, out: &Outcome) {
    println!("scenario {} adapter={adapter} {out}", scenario.name);
    let ctx = format!(
        "{} [{adapter}]: {out}\nunexplained: {:?}\nwarnings: {:?}",
        scenario.name, out.unexplained, out.warnings
    );
    // With a service that keeps each topic on one channel, no subscription may land while
    // another of the client's channels holds topics without a socket: they would leave it
    // unseen while its link claims them. A count, so the race shows even when no event fell
    // into it.
    if scenario.sim.exclusive_topics {
        assert_eq!(
            out.topics_taken_unseen, 0,
            "topics taken from a channel without a socket — {ctx}"
        );
    }
    assert_eq!(
        out.lost_outside_gaps, 0,
        "events lost outside a reported gap — {ctx}"
    );
    assert_eq!(out.duplicates, 0, "duplicates — {ctx}");
    assert_eq!(
        out.live_channels_evicted, 0,
        "a live channel evicted: the session held more channels than its budget — {ctx}"
    );
    if let Some(max) = scenario.max_gap_topics {
        for g in &out.gaps {
            assert!(
                g.topics.len() <= max,
                "a gap names {:?}: more than one shard's topics — {ctx}",
                g.topics
            );
        }
    }
    assert_eq!(
        out.login_required, scenario.expect_login_required,
        "login required? — {ctx}"
    );
    assert!(
        out.token_requests <= scenario.max_token_requests,
        "too many token requests — {ctx}"
    );
    assert!(
        out.channel_requests <= scenario.max_channel_requests,
        "too many channel requests — {ctx}"
    );
    if let Some(max) = scenario.max_lost {
        assert!(
            out.lost_inside_gaps <= max,
            "{} events lost, the bound is {max} — {ctx}",
            out.lost_inside_gaps
        );
    }
    if scenario.expect_fatal {
        assert_eq!(out.fatal.len(), 1, "one fatal error — {ctx}");
        assert_eq!(out.statuses.last(), Some(&Status::Failed), "{ctx}");
    } else {
        assert!(out.fatal.is_empty(), "no fatal error — {ctx}");
    }
    if !scenario.expect_login_required && !scenario.foreign_connect_uri && !scenario.expect_fatal {
        // A channel with nothing published (heartbeats only) has nothing to deliver.
        assert!(
            scenario.sim.rate == 0.0 || out.delivered > 0,
            "nothing delivered — {ctx}"
        );
        assert_eq!(out.statuses.last(), Some(&Status::Closed), "{ctx}");
    }
}

fn fault(s: &str) -> Fault {
    s.parse().unwrap()
}

/// At 1 s, `fault` is set up, then the socket drops and its upgrade fails once, so that the
/// session has to create a new channel and meets the fault.
fn on_a_new_channel(fault: &str) -> Vec<(Duration, Fault)> {
    schedule(&[(1.0, fault), (1.0, "fail upgrade 1 404"), (1.0, "drop")])
}

/// Faults from their text form (as the simulator's `fault` command reads them), each at its
/// second of the run.
fn schedule(faults: &[(f64, &str)]) -> Vec<(Duration, Fault)> {
    faults.iter().map(|&(at, f)| (secs(at), fault(f))).collect()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The scenario table, shared by every adapter's test file.
pub fn scenario(name: &'static str) -> Scenario {
    use genesys_notify_sim::OnExpiry;
    let mut s = Scenario::new(name);
    match name {
        "steady" => {
            s.run_for = secs(3.0);
            s.max_token_requests = 1;
            s.max_channel_requests = 1;
        }
        "token_expiry_close_1000"
        | "token_expiry_close_4001"
        | "token_expiry_silent"
        | "token_expiry_keep_open" => {
            s.sim.token_ttl = secs(4.0);
            s.sim.on_token_expiry = match name {
                "token_expiry_close_1000" => OnExpiry::Close(1000),
                "token_expiry_close_4001" => OnExpiry::Close(4001),
                "token_expiry_silent" => OnExpiry::Silent,
                _ => OnExpiry::KeepOpen,
            };
            s.run_for = secs(9.0);
            s.max_token_requests = 6;
            s.max_channel_requests = 6;
        }
        "pong_overtakes" | "pong_overtakes_no_linger" => {
            // Renewals while notifications lag 300 ms behind the pong to the handover ping.
            s.sim.token_ttl = secs(4.0);
            s.sim.on_token_expiry = OnExpiry::KeepOpen;
            s.sim.notification_lag = Duration::from_millis(300);
            if name == "pong_overtakes_no_linger" {
                s.session.handover_linger = Duration::ZERO;
            }
            s.run_for = secs(9.0);
            s.max_token_requests = 6;
            s.max_channel_requests = 6;
        }
        "channel_expiry" => {
            s.sim.channel_ttl = secs(4.0);
            s.run_for = secs(9.0);
            s.max_token_requests = 1;
            s.max_channel_requests = 5;
        }
        "socket_closing" => {
            s.faults = schedule(&[(1.0, "socket_closing")]);
            s.max_channel_requests = 2;
        }
        "abrupt_drop" => {
            s.faults = schedule(&[(1.0, "drop")]);
            s.max_channel_requests = 1;
        }
        "half_open" => {
            s.faults = schedule(&[(1.0, "half_open")]);
            s.max_channel_requests = 1;
        }
        "token_429" => {
            s.faults = schedule(&[(1.0, "fail token 2 429 1"), (1.0, "expire_tokens")]);
            s.run_for = secs(7.0);
            s.max_token_requests = 5;
        }
        "channel_429" => {
            s.faults = on_a_new_channel("fail channel 2 429 1");
            s.run_for = secs(7.0);
            s.max_channel_requests = 4;
        }
        "storm_503" => {
            s.faults = on_a_new_channel("fail channel 5 503");
            s.run_for = secs(10.0);
            s.max_channel_requests = 7;
        }
        "revoked_refresh_token" => {
            s.creds = Creds::RefreshToken;
            s.sim.token_ttl = secs(3.0);
            s.faults = schedule(&[(0.5, "revoke_refresh_tokens")]);
            s.run_for = secs(5.0);
            s.expect_login_required = true;
            s.max_token_requests = 2;
            s.max_channel_requests = 1;
        }
        "displaced" => {
            s.sim.displaced_close_code = 4000;
            s.faults = schedule(&[(1.0, "displace")]);
            s.max_channel_requests = 2;
        }
        "malformed_frames" => {
            s.faults = ["not_json", "truncated", "oversized", "unknown_topic"]
                .iter()
                .map(|k| (secs(1.0), fault(&format!("malformed {k}"))))
                .collect();
            s.max_channel_requests = 1;
        }
        "forbidden_topic" => {
            s.topics = vec![
                "v2.users.u1.presence",
                "v2.forbidden.secret",
                "v2.users.u2.presence",
            ];
            s.max_channel_requests = 1;
        }
        "foreign_connect_uri" => {
            s.foreign_connect_uri = true;
            s.expect_fatal = true;
            s.run_for = secs(3.0);
            s.max_token_requests = 1;
            // Refused, retried once, then the session stops.
            s.max_channel_requests = 2;
        }
        "malformed_flood" => {
            s.faults = schedule(&[(1.0, "flood 200000")]);
            s.run_for = secs(5.0);
            s.max_channel_requests = 1;
        }
        "short_token" => {
            s.faults = schedule(&[(1.0, "short_token 3 0"), (1.0, "expire_tokens")]);
            s.run_for = secs(8.0);
            s.max_token_requests = 6;
            s.max_channel_requests = 3;
        }
        "expired_channel" => {
            s.faults = on_a_new_channel("expired_channel 2");
            s.run_for = secs(6.0);
            s.max_channel_requests = 5;
        }
        "huge_retry_after" => {
            s.faults = on_a_new_channel("fail channel 1 429 99999999999");
            s.run_for = secs(4.0);
            s.max_channel_requests = 2;
        }
        "redirect" => {
            s.expect_fatal = true;
            s.faults = on_a_new_channel("redirect channel 3");
            s.run_for = secs(4.0);
            s.max_channel_requests = 3;
        }
        "client_credentials_two_expiries" => {
            s.sim.token_ttl = secs(3.0);
            s.sim.on_token_expiry = OnExpiry::Close(1000);
            s.run_for = secs(8.0);
            s.max_token_requests = 6;
            s.max_channel_requests = 6;
        }
        "tls_untrusted" => {
            // The client is not told to trust the simulator's certificate: a refusal, not a
            // retry loop.
            s.sim.tls = true;
            s.trust_sim_cert = false;
            s.expect_fatal = true;
            s.run_for = secs(3.0);
            s.max_token_requests = 2;
            s.max_channel_requests = 0;
        }
        "tls" => {
            s.sim.tls = true;
            s.run_for = secs(3.0);
            s.faults = schedule(&[(1.0, "drop")]);
            s.max_token_requests = 1;
            s.max_channel_requests = 1;
        }
        other if other.starts_with("redundant_") || other.starts_with("exclusive_") => {
            return redundant_scenario(other)
        }
        other if other.starts_with("sharded_") => return sharded_scenario(other),
        other => return recovery_scenario(other),
    }
    s
}

/// The redundancy table: two links. A fault that hits one socket costs nothing; faults that
/// hit both are reported as with one link.
fn redundant_scenario(name: &'static str) -> Scenario {
    let mut s = Scenario::new(name);
    s.session.redundancy = 2;
    s.run_for = secs(8.0);
    // Two channels at the start, one for each recovery that needs one.
    s.max_channel_requests = 4;
    match name {
        "redundant_steady" => {
            s.run_for = secs(3.0);
            s.max_token_requests = 1;
            s.max_channel_requests = 2;
        }
        "redundant_abrupt_drop" => {
            s.faults = schedule(&[(1.0, "drop one"), (4.0, "drop one")]);
            s.max_lost = Some(0);
        }
        "redundant_half_open" => {
            s.faults = schedule(&[(1.0, "half_open one")]);
            s.max_lost = Some(0);
        }
        "redundant_close_codes" => {
            s.faults = [
                "close 1000 one",
                "close 1011 one",
                "close 4001 one",
                "close 4003 one",
            ]
            .iter()
            .enumerate()
            .map(|(i, f)| (secs(1.0 + 1.5 * i as f64), fault(f)))
            .collect();
            s.max_lost = Some(0);
            s.max_token_requests = 6;
            s.max_channel_requests = 8;
        }
        "redundant_displaced" => {
            s.sim.displaced_close_code = 4000;
            s.faults = schedule(&[(1.0, "displace one")]);
            s.max_lost = Some(0);
        }
        "redundant_socket_closing" => {
            s.faults = schedule(&[(1.0, "socket_closing one")]);
            s.max_lost = Some(0);
            s.max_channel_requests = 3;
        }
        // Short tokens whose expiry ends the socket: each link renews on its own token, so an
        // expiry takes down at most one socket at a time and nothing is lost. With 15 s tokens
        // the two links make about ten channels a minute: the production channel budget (6 a
        // minute per link) must not hold a renewal back until both channels have died.
        "redundant_token_expiry_close_1000"
        | "redundant_token_expiry_close_4001"
        | "redundant_token_expiry_silent" => {
            s.session.max_channel_creations_per_minute =
                genesys_notify_core::Config::default().max_channel_creations_per_minute;
            s.sim.token_ttl = secs(15.0);
            s.sim.on_token_expiry = match name {
                "redundant_token_expiry_close_1000" => genesys_notify_sim::OnExpiry::Close(1000),
                "redundant_token_expiry_close_4001" => genesys_notify_sim::OnExpiry::Close(4001),
                _ => genesys_notify_sim::OnExpiry::Silent,
            };
            s.run_for = secs(45.0);
            s.max_lost = Some(0);
            s.max_token_requests = 12;
            s.max_channel_requests = 12;
        }
        "redundant_renewals" => {
            // Token and channel renewals of both links, kept apart.
            s.sim.token_ttl = secs(4.0);
            s.sim.on_token_expiry = genesys_notify_sim::OnExpiry::KeepOpen;
            s.run_for = secs(10.0);
            s.max_lost = Some(0);
            s.max_token_requests = 10;
            s.max_channel_requests = 10;
        }
        // Faults that hit both sockets are reported exactly as with one link.
        "redundant_drop_both" => {
            s.faults = schedule(&[(1.0, "drop")]);
            s.max_channel_requests = 2;
        }
        "redundant_revoked_refresh_token" => {
            s = scenario("revoked_refresh_token");
            s.name = name;
            s.session.redundancy = 2;
            s.max_token_requests = 3;
            s.max_channel_requests = 3;
        }
        // A service that keeps a topic on one channel per client (not known either way): two
        // links would take topics from each other, so the session goes on with one.
        "redundant_exclusive_topics" => {
            s.sim.exclusive_topics = true;
            s.faults = schedule(&[(2.0, "drop one")]);
            s.max_channel_requests = 3;
        }
        // The same service with one link: every renewal's new channel takes the topics from
        // the old one; nothing may be lost without a report.
        "exclusive_topics_renewals" => {
            s.session.redundancy = 1;
            s.sim.exclusive_topics = true;
            s.sim.token_ttl = secs(4.0);
            s.sim.on_token_expiry = genesys_notify_sim::OnExpiry::KeepOpen;
            s.run_for = secs(9.0);
            s.max_token_requests = 6;
            s.max_channel_requests = 6;
        }
        "redundant_token_outage" => {
            // The token endpoint is down for longer than the token (3 s) lives.
            s.sim.token_ttl = secs(3.0);
            s.faults = schedule(&[(0.5, "fail token 1000 503"), (5.0, "heal token")]);
            s.run_for = secs(9.0);
            s.max_token_requests = 20;
            s.max_channel_requests = 8;
        }
        other => panic!("no scenario named {other}"),
    }
    s
}

/// The sharded table: five topics, two per channel, so three shards (three channels, six
/// with redundancy 2). A fault on one shard's socket gaps only its topics; faults on all are
/// reported per shard; renewals of every shard stay inside a channel budget that leaves one
/// channel to spare, on a simulator with that same cap (it evicts at the next).
fn sharded_scenario(name: &'static str) -> Scenario {
    let mut s = Scenario::new(name);
    s.topics = vec![
        "v2.users.u1.presence",
        "v2.users.u2.presence",
        "v2.users.u3.presence",
        "v2.users.u4.presence",
        "v2.users.u5.presence",
    ];
    s.session.max_topics_per_channel = 2;
    s.max_token_requests = 1;
    s.max_channel_requests = 3;
    match name {
        "sharded_steady" => s.run_for = secs(3.0),
        "sharded_drop_one" => {
            s.faults = schedule(&[(1.0, "drop one"), (3.0, "half_open one")]);
            s.max_gap_topics = Some(2);
        }
        "sharded_drop_all" => {
            s.faults = schedule(&[(1.0, "drop")]);
        }
        "sharded_socket_closing_all" => {
            s.faults = schedule(&[(1.0, "socket_closing")]);
            s.max_lost = Some(0);
            s.max_channel_requests = 6;
        }
        "sharded_renewals" => {
            // Renewals one at a time, each counting the channel it let go for half a second
            // more: tokens of 20 s renewed 10 s ahead leave room for the three (about 1.5 s
            // each), with margin for a loaded machine.
            s.session.max_channels = 4;
            s.sim.max_channels = 4;
            s.sim.token_ttl = secs(20.0);
            s.session.renew_lead_percent = 50;
            s.sim.on_token_expiry = genesys_notify_sim::OnExpiry::KeepOpen;
            s.run_for = secs(25.0);
            s.max_lost = Some(0);
            s.max_token_requests = 12;
            s.max_channel_requests = 3 * 4;
        }
        "sharded_redundant_drop_one" => {
            s.session.redundancy = 2;
            s.max_channel_requests = 6 + 2;
            s.faults = schedule(&[(1.0, "drop one"), (3.0, "drop one")]);
            s.max_lost = Some(0);
        }
        other => panic!("no scenario named {other}"),
    }
    s
}

/// The recovery table: one row per unplanned fault, measured at 100 ms per round trip, with
/// the events it may cost as the bound.
fn recovery_scenario(name: &'static str) -> Scenario {
    let mut s = Scenario::recovery(name);
    match name {
        // Three abrupt TCP resets; at most 3 events lost each. The second comes 10 s after the
        // first, on a connection that served for seconds but was not yet `stable_after` (30 s)
        // old; the third once the connection has been stable.
        "recovery_reset" => {
            s.faults = schedule(&[(2.0, "drop"), (12.0, "drop"), (34.0, "drop")]);
            s.run_for = secs(37.0);
            s.max_lost = Some(9);
            s.max_channel_requests = 1;
        }
        // Three displacements by a second connection, at the same moments; at most 3 events
        // lost each.
        "recovery_displaced" => {
            s.faults = schedule(&[(2.0, "displace"), (12.0, "displace"), (34.0, "displace")]);
            s.run_for = secs(37.0);
            s.max_lost = Some(9);
            s.max_channel_requests = 1;
        }
        // A busy channel goes half-open: found within 3 s, at most 30 events lost.
        "recovery_half_open_busy" => {
            s.faults = schedule(&[(3.0, "half_open")]);
            s.run_for = secs(25.0);
            s.max_lost = Some(30);
            s.max_channel_requests = 2;
        }
        // A quiet channel (heartbeats only, every 30 s) goes half-open: found within
        // idle_timeout + ping_timeout (20 s); nothing is published, so nothing to count.
        "recovery_half_open_quiet" => {
            s.sim.rate = 0.0;
            s.faults = schedule(&[(1.0, "half_open")]);
            s.run_for = secs(23.0);
            s.max_channel_requests = 2;
        }
        // The token (15 s) runs out while its endpoint answers 429, Retry-After 3 s, three
        // times in a row.
        "recovery_token_429" => {
            s.sim.token_ttl = secs(15.0);
            s.faults = schedule(&[(5.0, "fail token 3 429 3")]);
            s.run_for = secs(30.0);
            s.max_lost = Some(65);
            s.max_token_requests = 8;
            s.max_channel_requests = 4;
        }
        // The token endpoint answers 503 for 15 s while the token (15 s) runs out.
        "recovery_token_503" => {
            s.sim.token_ttl = secs(15.0);
            s.faults = schedule(&[(5.0, "fail token 1000 503"), (20.0, "heal token")]);
            s.run_for = secs(30.0);
            s.max_lost = Some(120);
            s.max_token_requests = 40;
            s.max_channel_requests = 4;
        }
        // Channel creation answers 429, Retry-After 2 s, twice at the start and twice when
        // the token (15 s) is renewed.
        "recovery_channel_429" => {
            s.sim.token_ttl = secs(15.0);
            s.sim.script = genesys_notify_sim::parse_script("0s fail channel 2 429 2").unwrap();
            s.faults = schedule(&[(5.0, "fail channel 2 429 2")]);
            s.run_for = secs(25.0);
            s.max_lost = Some(18);
            s.max_token_requests = 4;
            s.max_channel_requests = 9;
        }
        other => panic!("no scenario named {other}"),
    }
    s
}

/// What particular scenarios promise beyond [`check`].
pub fn extra_checks(name: &str, out: &Outcome) {
    match name {
        "steady"
        | "socket_closing"
        | "pong_overtakes"
        | "token_expiry_close_1000"
        | "channel_expiry"
        | "client_credentials_two_expiries" => {
            assert!(
                out.gaps.is_empty(),
                "{name}: planned renewals leave no gap: {out}"
            );
        }
        "redundant_abrupt_drop"
        | "redundant_half_open"
        | "redundant_close_codes"
        | "redundant_displaced"
        | "redundant_socket_closing"
        | "redundant_renewals"
        | "redundant_token_expiry_close_1000"
        | "redundant_token_expiry_close_4001"
        | "redundant_token_expiry_silent"
        | "redundant_steady" => {
            assert!(
                out.gaps.is_empty(),
                "{name}: one socket's fault costs nothing with two: {out}"
            );
            assert_eq!(out.lost_inside_gaps, 0, "{name}: {out}");
            assert_eq!(out.delivered, out.published, "{name}: {out}");
            assert!(
                !out.statuses.contains(&Status::Recovering),
                "{name}: live throughout: {:?}",
                out.statuses
            );
        }
        "redundant_drop_both" => {
            assert_eq!(out.gaps.len(), 1, "{name}: one gap for both: {out}");
        }
        "redundant_exclusive_topics" => {
            assert_eq!(
                out.warnings
                    .iter()
                    .filter(|w| w.contains("one channel only"))
                    .count(),
                1,
                "{name}: {:?}",
                out.warnings
            );
        }
        "redundant_token_outage" => {
            assert!(!out.gaps.is_empty(), "{name}: reported: {out}");
        }
        "abrupt_drop" | "half_open" | "displaced" | "tls" => {
            assert_eq!(out.gaps.len(), 1, "{name}: one gap for one loss: {out}");
            assert!(out.max_recovery_ms() < 5_000, "{name}: {out}");
        }
        "malformed_frames" => {
            assert!(
                out.warnings
                    .iter()
                    .filter(|w| w.contains("malformed"))
                    .count()
                    >= 2,
                "{:?}",
                out.warnings
            );
        }
        "forbidden_topic" => {
            assert_eq!(out.rejected_topics, vec!["v2.forbidden.secret".to_owned()])
        }
        "foreign_connect_uri" => {
            assert_eq!(out.upgrades, 0);
            assert!(
                out.warnings
                    .iter()
                    .any(|w| w.contains("connectUri refused")),
                "{:?}",
                out.warnings
            );
            assert!(out.fatal[0].contains("192.0.2.1"), "{:?}", out.fatal);
            assert!(
                !out.fatal[0].contains("streaming-0"),
                "no channel id: {:?}",
                out.fatal
            );
        }
        "malformed_flood" => {
            let malformed: Vec<&String> = out
                .warnings
                .iter()
                .filter(|w| w.contains("malformed"))
                .collect();
            assert!(
                !malformed.is_empty() && malformed.len() <= 3,
                "a flood is coalesced: {malformed:?}"
            );
            assert!(
                out.gaps.is_empty(),
                "the socket stays up through the flood: {out}"
            );
        }
        "short_token" => {
            assert!(
                out.warnings.iter().any(|w| w.contains("expires in 0 ms")),
                "{:?}",
                out.warnings
            );
        }
        "expired_channel" => {
            assert!(
                out.warnings
                    .iter()
                    .any(|w| w.contains("channel that expires in")),
                "{:?}",
                out.warnings
            );
        }
        "huge_retry_after" => {
            assert!(
                out.warnings
                    .iter()
                    .any(|w| w.contains("asked to wait 99999999999s")),
                "{:?}",
                out.warnings
            );
            assert_eq!(
                out.gaps.len(),
                1,
                "closing while recovering reports the stretch: {out}"
            );
        }
        "tls_untrusted" => {
            assert!(
                out.fatal[0].contains("not trusted") && out.fatal[0].contains("--ca-cert"),
                "{:?}",
                out.fatal
            );
        }
        "redirect" => {
            assert!(
                out.fatal[0].contains("elsewhere.invalid"),
                "{:?}",
                out.fatal
            );
            let all = format!("{:?} {:?}", out.fatal, out.warnings);
            assert!(!all.contains("streaming-0-redirected"), "{all}");
        }
        _ => {}
    }
}

/// One `#[test]` per scenario of the table, for the adapter value given.
#[macro_export]
macro_rules! scenario_tests {
    ($adapter:expr) => {
        $crate::scenario_tests!(@each $adapter;
            steady, token_expiry_close_1000, token_expiry_close_4001, token_expiry_silent,
            token_expiry_keep_open, pong_overtakes, channel_expiry, socket_closing, abrupt_drop, half_open,
            token_429, channel_429, storm_503, revoked_refresh_token, displaced, malformed_frames,
            forbidden_topic, foreign_connect_uri, client_credentials_two_expiries, tls,
            malformed_flood, short_token, expired_channel, huge_retry_after, redirect,
            recovery_reset, recovery_displaced, recovery_half_open_busy, recovery_half_open_quiet,
            recovery_token_429, recovery_token_503, recovery_channel_429, tls_untrusted,
            redundant_steady, redundant_abrupt_drop, redundant_half_open, redundant_close_codes,
            redundant_displaced, redundant_socket_closing, redundant_renewals, redundant_drop_both,
            redundant_revoked_refresh_token, redundant_token_outage, redundant_exclusive_topics,
            redundant_token_expiry_close_1000, redundant_token_expiry_close_4001,
            redundant_token_expiry_silent,
            exclusive_topics_renewals,
            sharded_steady, sharded_drop_one, sharded_drop_all, sharded_socket_closing_all,
            sharded_renewals, sharded_redundant_drop_one);
    };
    (@each $adapter:expr; $($name:ident),*) => {$(
        #[test]
        fn $name() {
            let s = $crate::scenario(stringify!($name));
            let adapter = $adapter;
            let out = $crate::run(&s, &adapter);
            $crate::check(&s, $crate::Adapter::name(&adapter), &out);
            $crate::extra_checks(stringify!($name), &out);
        }
    )*};
}

/// A seeded random fault schedule over `seconds`: every fault kind the simulator has, at
/// random intervals, with short token and channel lives so renewals happen too.
pub fn soak_scenario(seed: u64, seconds: u64) -> Scenario {
    soak_scenario_with(seed, seconds, 1, false)
}

/// [`soak_scenario`] with `redundancy` links; `one`: socket faults hit one socket only (the
/// same schedule in both modes, for the redundancy comparison).
pub fn soak_scenario_with(seed: u64, seconds: u64, redundancy: u8, one: bool) -> Scenario {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut s = Scenario::new("soak");
    s.sim.token_ttl = secs(20.0);
    s.sim.channel_ttl = secs(30.0);
    s.sim.rate = 10.0;
    s.run_for = Duration::from_secs(seconds);
    s.max_token_requests = usize::MAX;
    s.max_channel_requests = usize::MAX;
    let kinds = [
        "close 1000",
        "close 1001",
        "close 1011",
        "close 4001",
        "drop",
        "half_open",
        "socket_closing",
        "displace",
        "fail token 2 429 1",
        "fail token 3 503",
        "fail channel 2 429 1",
        "fail channel 3 503",
        "fail upgrade 1 404",
        "expire_tokens",
        "malformed not_json",
        "malformed truncated",
        "malformed unknown_topic",
    ];
    s.session.redundancy = redundancy;
    let mut at = 2.0;
    while at < seconds as f64 - 2.0 {
        let kind = kinds[(next() % kinds.len() as u64) as usize];
        let socket_fault = ["close", "drop", "half_open", "socket_closing", "displace"]
            .iter()
            .any(|k| kind.starts_with(k));
        if one && socket_fault {
            s.faults.push((secs(at), fault(&format!("{kind} one"))));
        } else {
            s.faults.push((secs(at), fault(kind)));
        }
        // A refused upgrade only matters together with a lost socket.
        if kind == "fail upgrade 1 404" {
            s.faults.push((secs(at), Fault::Drop));
        }
        at += 3.0 + (next() % 7000) as f64 / 1000.0;
    }
    s
}

/// Runs a soak and prints its figures; returns the outcome for assertions.
pub fn soak(adapter: &dyn Adapter, seed: u64, seconds: u64) -> Outcome {
    soak_with(adapter, soak_scenario(seed, seconds), seed, seconds)
}

/// The soak in `redundancy` mode with socket faults on one socket (see
/// [`soak_scenario_with`]), printing the share of published events lost inside gaps.
pub fn soak_one_socket(adapter: &dyn Adapter, seed: u64, seconds: u64, redundancy: u8) -> Outcome {
    let s = soak_scenario_with(seed, seconds, redundancy, true);
    let out = soak_with(adapter, s, seed, seconds);
    println!(
        "soak_one_socket adapter={} redundancy={redundancy} seconds={seconds} published={} lost_inside_gaps={} share_lost={:.2}% gaps={} lost_outside_gaps={} duplicates={}",
        adapter.name(),
        out.published,
        out.lost_inside_gaps,
        100.0 * out.lost_inside_gaps as f64 / out.published.max(1) as f64,
        out.gaps.len(),
        out.lost_outside_gaps,
        out.duplicates
    );
    out
}

fn soak_with(adapter: &dyn Adapter, s: Scenario, seed: u64, seconds: u64) -> Outcome {
    eprintln!(
        "soak adapter={} redundancy={} seed={seed} seconds={seconds} (rerun with SOAK_SEED={seed})",
        adapter.name(),
        s.session.redundancy
    );
    let out = run(&s, adapter);
    let mut rec: Vec<u128> = out
        .gaps
        .iter()
        .map(|g| g.to.duration_since(g.from).unwrap_or_default().as_millis())
        .collect();
    rec.sort_unstable();
    let pct = |p: f64| {
        rec.get(((rec.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let hours = seconds as f64 / 3600.0;
    println!(
        "soak adapter={} faults={} recoveries={} p50_recovery_ms={} p99_recovery_ms={} lost_inside_gaps={} token_requests_per_hour={:.0} channel_requests_per_hour={:.0}",
        adapter.name(),
        s.faults.len(),
        out.gaps.len(),
        pct(0.5),
        pct(0.99),
        out.lost_inside_gaps,
        out.token_requests as f64 / hours,
        out.channel_requests as f64 / hours
    );
    println!(
        "soak adapter={} seconds={seconds} published={} lost_outside_gaps={} duplicates={} p99_recovery_ms={} sockets_declared_dead={} half_open_faults={}",
        adapter.name(),
        out.published,
        out.lost_outside_gaps,
        out.duplicates,
        pct(0.99),
        out.sockets_declared_dead(),
        s.faults
            .iter()
            .filter(|(_, f)| match f {
                Fault::HalfOpen => true,
                Fault::One(inner) => **inner == Fault::HalfOpen,
                _ => false,
            })
            .count()
    );
    out
}

/// Steady state with bursty traffic and no fault: bursts of 5–40 events per topic, then a
/// pause of 2–60 s, production session defaults. A socket declared dead here is a false
/// verdict.
pub fn bursty_scenario(seed: u64, seconds: u64) -> Scenario {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = Scenario::new("bursty");
    s.session = genesys_notify_core::Config::default();
    s.sim.rate = 0.0;
    s.sim.heartbeat = Duration::from_secs(30);
    s.topics = vec!["v2.users.u1.presence", "v2.users.u2.presence"];
    s.run_for = Duration::from_secs(seconds);
    let mut at = 1.0;
    while at < seconds as f64 - 1.0 {
        s.faults.push((secs(at), Fault::Burst(5 + next() % 36)));
        at += 2.0 + (next() % 58_000) as f64 / 1000.0;
    }
    s
}

/// Runs [`bursty_scenario`] and prints its figures.
pub fn bursty(adapter: &dyn Adapter, seed: u64, seconds: u64) -> Outcome {
    eprintln!(
        "bursty adapter={} seed={seed} seconds={seconds}",
        adapter.name()
    );
    let s = bursty_scenario(seed, seconds);
    let out = run(&s, adapter);
    println!(
        "bursty adapter={} seconds={seconds} bursts={} published={} delivered={} gaps={} sockets_declared_dead={} upgrades={}",
        adapter.name(),
        s.faults.len(),
        out.published,
        out.delivered,
        out.gaps.len(),
        out.sockets_declared_dead(),
        out.upgrades
    );
    out
}

/// The README's Rust examples, compiled and run as doc tests so they cannot rot.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeExamples;
