//! `genesys-notify check`: the first thing to run against a real organisation. It goes through
//! the whole path once — a token, a channel, the subscriptions, the socket and its first pong —
//! and prints one line per finding that says what to do.
//!
//! Exit codes: 0 everything is usable; 2 usage; 3 a login problem (the credentials or the
//! refresh token were refused); 4 a permission or configuration problem (a topic refused, a
//! certificate not trusted, a redirect, no answer at all).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use genesys_notify_blocking::{Client, NextEventError};
use genesys_notify_core::{Action, Event, GapReason, Status};
use genesys_notify_sim::parse_duration;

use crate::tail::{escape_terminal, login_hint, usage, Target};

/// Options of `genesys-notify check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    target: Target,
    /// How long to wait for the session to get live before calling it a failure (at most
    /// 24h).
    #[arg(long, default_value = "30s", value_parser = timeout)]
    timeout: Duration,
}

/// The longest `--timeout`: a check that has not gone live in a day never will.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

fn timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d > MAX_TIMEOUT {
        return Err(format!(
            "{s} is longer than a check can use: give at most 24h (the default is 30s)"
        ));
    }
    Ok(d)
}

/// A token's remaining life, rounded the way it was probably configured.
fn lifetime_text(d: Duration) -> String {
    let s = d.as_secs() + 1;
    match s {
        0..=119 => format!("{s} s"),
        120..=7_199 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h", (s + 1_800) / 3_600),
    }
}

fn ok(text: &str) {
    println!("ok       {}", escape_terminal(text));
}

fn problem(text: &str) {
    println!("problem  {}", escape_terminal(text));
}

/// What the session asked for, in order (no secrets: only the kinds).
#[derive(Default)]
struct Seen {
    tokens: u32,
    channels: u32,
    connects: u32,
    puts: u32,
}

pub(crate) fn run(args: CheckArgs) -> ExitCode {
    let (mut config, warnings) = match args.target.config() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    for w in &warnings {
        println!("warning  {}", escape_terminal(w));
    }
    let grant = match &config.credentials {
        genesys_notify_blocking::Credentials::ClientCredentials { .. } => "client credentials",
        genesys_notify_blocking::Credentials::RefreshToken { .. } => "refresh token",
        _ => "a static access token",
    };
    let topics: Vec<String> = config
        .topics
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = Arc::clone(&seen);
    config.on_action = Some(Box::new(move |a| {
        let mut s = record.lock().unwrap_or_else(|p| p.into_inner());
        match a {
            Action::RequestToken { .. } => s.tokens += 1,
            Action::CreateChannel { .. } => s.channels += 1,
            Action::Connect { .. } => s.connects += 1,
            Action::PutSubscriptions { .. } => s.puts += 1,
            _ => {}
        }
    }));
    // A check must not retry for ever: what does not work within a few attempts is a finding.
    config.session.max_refresh_attempts = Some(3);
    let ping_timeout = config.session.ping_timeout;
    let mut client = match Client::connect(config) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let started = Instant::now();
    let mut rejected: BTreeMap<String, String> = BTreeMap::new();
    let mut warnings: Vec<String> = Vec::new();
    let mut live_at = None;
    let mut code = None;
    while code.is_none() {
        let until = match live_at {
            // Live: a socket that does not answer its first ping is declared dead within
            // ping_timeout; one more second and it has answered.
            Some(t) => t + ping_timeout + Duration::from_secs(1),
            None => started + args.timeout,
        };
        if Instant::now() >= until {
            break;
        }
        let event = match client.next_event(until.saturating_duration_since(Instant::now())) {
            Ok(e) => e,
            Err(NextEventError::Timeout) => continue,
            Err(NextEventError::Ended) => break,
        };
        match event {
            Event::Status(Status::Live) if live_at.is_none() => live_at = Some(Instant::now()),
            Event::TopicRejected { topic, reason } => {
                rejected.insert(topic, reason);
            }
            Event::Warning(w) => warnings.push(w.to_string()),
            Event::LoginRequired { reason, .. } => {
                problem(&format!("login: {reason}; {}", login_hint(&args.target)));
                code = Some(3);
            }
            Event::Fatal(e) => {
                problem(&format!("configuration: {e}"));
                code = Some(4);
            }
            Event::Gap {
                reason: GapReason::SocketDead,
                ..
            } => {
                problem("the socket opened but did not answer its ping: a proxy or firewall may hold WebSocket traffic");
                code = Some(4);
            }
            _ => {}
        }
    }
    let still_live = client.status() == Status::Live;
    // What this user and client hold of the channel budget, this check's channel included.
    let in_use = live_at
        .is_some()
        .then(|| client.channels_in_use().ok())
        .flatten();
    let token_left = client
        .closer()
        .token_expires_at()
        .and_then(|t| t.duration_since(std::time::SystemTime::now()).ok());
    client.close();
    let s = seen.lock().unwrap_or_else(|p| p.into_inner());
    if code.is_none() || s.channels > 0 {
        if s.channels > 0 {
            let lifetime = token_left.map_or(String::new(), |d| {
                format!("; the token lives {}", lifetime_text(d))
            });
            ok(&format!("credentials accepted ({grant}){lifetime}"));
        }
        if s.connects > 0 {
            ok("channel created");
        }
    }
    for t in &topics {
        match rejected.get(t) {
            Some(why) => problem(&format!(
                "topic {t} refused: {why}; give the user or OAuth client the permission it names"
            )),
            None if live_at.is_some() => ok(&format!("topic {t} permitted")),
            None => {}
        }
    }
    if live_at.is_some() && still_live && code.is_none() {
        ok("socket open, subscribed, and answering pings");
    }
    if let Some(n) = in_use {
        let max = client.max_channels();
        if n >= max as usize {
            println!(
                "warning  channels in use: {n} of the {max} this user and OAuth client may hold (this check's included): the next channel made removes the least recently used, possibly another program's live one"
            );
        } else {
            ok(&format!(
                "channels in use: {n} of the {max} this user and OAuth client may hold (this check's included)"
            ));
        }
    }
    for w in &warnings {
        println!("warning  {}", escape_terminal(w));
    }
    let code = match code {
        Some(c) => c,
        None if live_at.is_none() => {
            problem(&format!(
                "not live within {:?} ({} token, {} channel, {} socket, {} subscription requests): see the warnings above",
                args.timeout, s.tokens, s.channels, s.connects, s.puts
            ));
            4
        }
        None if !rejected.is_empty() => 4,
        None if !still_live => {
            problem("the session lost its socket during the check: see the warnings above");
            4
        }
        None => 0,
    };
    if code == 0 {
        println!("check passed: this organisation, these credentials and these topics work");
    } else {
        println!("check failed (exit {code})");
    }
    ExitCode::from(code)
}
