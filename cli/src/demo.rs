//! `genesys-notify demo`: a live session against the in-process simulator, through token
//! expiry, channel rollover, maintenance, an abrupt drop, a half-open socket and a 429 —
//! with a readable timeline and an honest summary.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use genesys_notify_blocking::{
    Action, Client, Config, Credentials, Endpoints, NextEventError, Secret, Topic,
};
use genesys_notify_core::Event;
use genesys_notify_sim::{parse_duration, Fault, Ledger, Sim, SimConfig};

/// Options of `genesys-notify demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// How long the demo runs; the faults are spread over it.
    #[arg(long, default_value = "90s", value_parser = duration)]
    duration: Duration,
    /// Seed for the session's backoff jitter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Channels kept live at once (1 or 2). With 2, the same faults cost fewer or no gaps:
    /// each socket fault hits one socket, and the other keeps delivering.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    redundancy: u8,
}

fn duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d < Duration::from_secs(20) => {
            Err("the demo needs at least 20s to show anything".to_owned())
        }
        d => Ok(d),
    }
}

const TOPICS: [&str; 3] = [
    "v2.users.agent-1.presence",
    "v2.routing.queues.support.conversations",
    "v2.users.agent-2.routingStatus",
];
const TOKEN_TTL: Duration = Duration::from_secs(20);
const CHANNEL_TTL: Duration = Duration::from_secs(15);
const HEARTBEAT: Duration = Duration::from_secs(5);
const RATE: f64 = 4.0;

struct Step {
    at: Duration,
    faults: Vec<Fault>,
    what: &'static str,
}

fn timeline(total: Duration) -> Vec<Step> {
    let at = |f: f64| total.mul_f64(f);
    let f = |s: &str| s.parse::<Fault>().map_err(|e| e.to_string());
    // Socket faults hit one socket (the oldest): the only one with one channel, one of two
    // with `--redundancy 2`.
    let steps = [
        (
            0.40,
            vec![f("socket_closing one")],
            "maintenance: v2.system.socket_closing, the server closes that socket in 10s",
        ),
        (
            0.55,
            vec![f("drop one")],
            "abrupt drop: a socket dies without a close frame",
        ),
        (
            0.67,
            vec![f("half_open one")],
            "half-open socket: the connection stays up but nothing arrives",
        ),
        (
            0.80,
            vec![f("fail token 2 429 2"), Ok(Fault::ExpireTokens)],
            "tokens revoked server-side while the token endpoint answers 429 (Retry-After 2s)",
        ),
    ];
    steps
        .into_iter()
        .map(|(frac, faults, what)| Step {
            at: at(frac),
            faults: faults.into_iter().filter_map(Result::ok).collect(),
            what,
        })
        .collect()
}

fn say(t0: Instant, who: &str, what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{:>6.1}s  {who:<8} {what}", t0.elapsed().as_secs_f64());
    let _ = out.flush();
}

fn narrate(a: &Action) -> String {
    match a {
        Action::RequestToken { .. } => "→ asks the token endpoint for an access token".to_owned(),
        Action::CreateChannel { .. } => "→ creates a notification channel".to_owned(),
        Action::Connect { conn, .. } => format!("→ opens socket {conn}"),
        Action::PutSubscriptions {
            topics, channel, ..
        } => format!("→ subscribes {} topics on channel {channel}", topics.len()),
        Action::Send { conn, .. } => format!("→ pings socket {conn} (it has been quiet)"),
        Action::Close { conn, code } => format!("→ closes socket {conn} ({code})"),
        other => format!("→ {other:?}"),
    }
}

pub(crate) fn run(args: DemoArgs) -> ExitCode {
    let sim = match Sim::start(SimConfig {
        token_ttl: TOKEN_TTL,
        channel_ttl: CHANNEL_TTL,
        heartbeat: HEARTBEAT,
        rate: RATE,
        maintenance_grace: Duration::from_secs(10),
        ..SimConfig::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot start the simulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    let steps = timeline(args.duration);
    println!(
        "genesys-notify demo: a live session against the local simulator at {}",
        sim.base_url()
    );
    println!(
        "  token lives {}s, channel {}s, heartbeat every {}s, {RATE} events/s on each of {} topics, for {}s",
        TOKEN_TTL.as_secs(),
        CHANNEL_TTL.as_secs(),
        HEARTBEAT.as_secs(),
        TOPICS.len(),
        args.duration.as_secs()
    );
    println!(
        "  {}",
        if args.redundancy == 2 {
            "redundancy 2: two channels on two sockets, each notification delivered once"
        } else {
            "redundancy 1: one channel (try --redundancy 2 to see the same faults cost less)"
        }
    );
    println!(
        "  faults: {}",
        steps
            .iter()
            .map(|s| format!(
                "{}s {}",
                s.at.as_secs(),
                s.what.split(':').next().unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();

    let t0 = Instant::now();
    let endpoints = match Endpoints::custom(sim.base_url(), None) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let creds = Credentials::ClientCredentials {
        client_id: sim.client_id().to_owned(),
        client_secret: Secret::new(sim.client_secret()),
    };
    let mut config = Config::new(endpoints, creds);
    config.topics = TOPICS.iter().filter_map(|t| Topic::new(*t).ok()).collect();
    config.seed = Some(args.seed);
    config.session.idle_timeout = Duration::from_secs(3);
    config.session.ping_timeout = Duration::from_secs(2);
    config.session.maintenance_grace = Duration::from_secs(8);
    // The demo squeezes a day of renewals into a minute; the production budget of 6 channel
    // creations per minute would make it wait.
    config.session.max_channel_creations_per_minute = 20;
    config.session.redundancy = args.redundancy;
    config.on_action = Some(Box::new(move |a| say(t0, "session", &narrate(a))));
    let mut client = match Client::connect(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (stop_tx, stop_rx) = mpsc::channel();
    let closer = client.closer();
    let _ = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
        closer.close();
    });

    let mut ledger = Ledger::new();
    let mut next_step = 0;
    let mut next_progress = Duration::from_secs(10);
    let mut interrupted = false;
    while t0.elapsed() < args.duration {
        if stop_rx.try_recv().is_ok() {
            interrupted = true;
            break;
        }
        while next_step < steps.len() && t0.elapsed() >= steps[next_step].at {
            let s = &steps[next_step];
            say(t0, "sim", &format!("⚡ {}", s.what));
            for f in &s.faults {
                sim.fault(f);
            }
            next_step += 1;
        }
        if t0.elapsed() >= next_progress {
            say(
                t0,
                "app",
                &format!("{} notifications delivered so far", ledger.delivered()),
            );
            next_progress += Duration::from_secs(10);
        }
        let event = match client.next_event(Duration::from_millis(100)) {
            Ok(e) => e,
            Err(NextEventError::Timeout) => continue,
            Err(NextEventError::Ended) => break,
        };
        record(&client, &mut ledger, t0, event);
    }
    let published: BTreeMap<String, u64> = sim.stats().published;
    let settle = Instant::now() + Duration::from_millis(800);
    while Instant::now() < settle && !interrupted {
        if let Ok(e) = client.next_event(Duration::from_millis(50)) {
            record(&client, &mut ledger, t0, e);
        }
    }
    client.close();
    // Closed: every remaining event is already queued, so this ends at Ended.
    while let Ok(e) = client.next_event(Duration::from_millis(10)) {
        record(&client, &mut ledger, t0, e);
    }
    let tally = ledger.settle(&sim, &TOPICS, &published, Duration::from_secs(1));
    let stats = sim.stats();
    println!();
    println!("summary{}", if interrupted { " (interrupted)" } else { "" });
    println!("  events published by the simulator: {}", tally.published);
    println!("  delivered to the application:      {}", tally.delivered);
    println!(
        "  lost inside reported gaps:         {} (the application was told to re-read)",
        tally.lost_inside_gaps
    );
    println!(
        "  lost without a report:             {}",
        tally.lost_outside_gaps
    );
    println!("  duplicates:                        {}", tally.duplicates);
    println!(
        "  requests: {} token, {} channel, {} socket upgrades",
        stats.count("token"),
        stats.count("channels.create"),
        stats.count("upgrade")
    );
    if !tally.unexplained.is_empty() {
        println!(
            "  unexplained losses (topic: first seqs): {:?}",
            tally.unexplained
        );
    }
    println!(
        "demo published={} delivered={} lost_in_gaps={} lost_outside_gaps={} duplicates={} gaps={}",
        tally.published,
        tally.delivered,
        tally.lost_inside_gaps,
        tally.lost_outside_gaps,
        tally.duplicates,
        ledger.gap_count(),
    );
    sim.shutdown();
    if tally.lost_outside_gaps == 0 && tally.duplicates == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn record(client: &Client, ledger: &mut Ledger, t0: Instant, e: Event) {
    match e {
        Event::Notification { raw, .. } => ledger.notification(&raw),
        Event::Gap {
            topics,
            from,
            to,
            reason,
        } => {
            let names: Vec<String> = topics.iter().map(|t| t.as_str().to_owned()).collect();
            let ms = to.saturating_duration_since(from).as_millis();
            say(
                t0,
                "gap",
                &format!(
                    "{} topics uncovered for {ms} ms ({reason}); the app re-reads their state",
                    names.len()
                ),
            );
            ledger.gap(
                names,
                client.to_system_time(from),
                client.to_system_time(to),
            );
        }
        Event::Status(s) => {
            if s == genesys_notify_core::Status::Live {
                ledger.live(SystemTime::now());
            }
            say(t0, "status", &s.to_string())
        }
        Event::Warning(w) => say(t0, "warning", &w.to_string()),
        Event::TopicRejected { topic, reason } => {
            say(t0, "rejected", &format!("{topic}: {reason}"))
        }
        Event::TokenRotated => say(t0, "token", "refresh token rotated"),
        Event::LoginSoon { reason, expires_in } => say(
            t0,
            "login",
            &format!("{reason} (the token ends in {} s)", expires_in.as_secs()),
        ),
        Event::LoginRequired { reason, since } => {
            say(t0, "login", &reason.to_string());
            ledger.login_required(since.map_or_else(SystemTime::now, |s| client.to_system_time(s)));
        }
        Event::Fatal(e) => {
            say(t0, "fatal", &e.to_string());
            ledger.login_required(SystemTime::now());
        }
        other => say(t0, "event", &format!("{other:?}")),
    }
}
