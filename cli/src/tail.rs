//! `genesys-notify tail`: notifications to stdout as JSON lines, lifecycle to stderr.
//!
//! This output is a contract that scripts rely on: stdout carries nothing but notifications,
//! exactly as received, one per line; stderr carries lifecycle lines; exit codes are 0 (signal,
//! `--max-events` reached, or the reader of stdout went away), 2 (usage), 3 (login required),
//! 4 (the service's answers can never work: configuration) and 5 (writing a notification
//! failed: a full disk, an I/O error).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use crate::secret_file;
use clap::{Args, ValueEnum};
use genesys_notify_blocking::{
    Client, Config, Credentials, Endpoints, NextEventError, Region, Secret, Topic,
};
use genesys_notify_core::{Event, Instant, Status};
use serde_json::json;

/// Where to connect, as whom, and to which topics: shared by `tail` and `check`.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// Genesys Cloud region: us_east_1, eu_west_1, … or its domain (mypurecloud.ie).
    #[arg(long, conflicts_with_all = ["api_base", "login_base"], required_unless_present = "api_base")]
    region: Option<String>,
    /// API base URL instead of a region (the simulator, a gateway). http:// only on loopback.
    #[arg(long, value_name = "URL")]
    api_base: Option<String>,
    /// Login base URL (default: the API base).
    #[arg(long, value_name = "URL", requires = "api_base")]
    login_base: Option<String>,
    /// A topic to subscribe to, e.g. v2.users.{id}.presence (repeatable).
    #[arg(
        long = "topic",
        value_name = "TOPIC",
        required_unless_present = "topics_file"
    )]
    topics: Vec<String>,
    /// Topics from a file, one per line (blank lines and `#` comments skipped), with any
    /// --topic given too.
    #[arg(long, value_name = "FILE")]
    topics_file: Option<PathBuf>,
    /// A root certificate (PEM) to trust instead of the public roots, e.g. from `genesys-notify
    /// sim --tls --cert-out` or a private gateway's.
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Keep the refresh token in this file: read at start (instead of GENESYS_REFRESH_TOKEN),
    /// rewritten whenever the server rotates it. The file and its folder must be yours and
    /// writable by nobody else; a symbolic link is written through to its target.
    #[arg(long, value_name = "FILE")]
    refresh_token_file: Option<PathBuf>,
    /// Channels this user and OAuth client may hold (the service allows 20 and removes the
    /// least recently used at the 21st). Topics are spread over as many channels as they
    /// need, 1000 each, keeping one free for renewals; lower it when other programs of the
    /// same user and client hold channels.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=1000))]
    max_channels: u32,
    /// Subscribe to topics that differ only in their last part as one combined topic
    /// (v2.users.{id}?presence&routingStatus); notifications still carry each topic's name.
    #[arg(long)]
    combine_topics: bool,
}

/// Options of `genesys-notify tail`.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    target: Target,
    /// Stop (exit 0) after this many notifications.
    #[arg(long, value_name = "N")]
    max_events: Option<u64>,
    /// Channels kept live at once, each on its own socket (1 or 2). With 2, a fault that hits
    /// one socket loses nothing and each notification is still printed once; it uses a
    /// second channel of the 20 a user and client may hold and twice the socket traffic.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    redundancy: u8,
    /// Append notifications to this file instead of stdout (created if missing). A write that
    /// fails (a full disk, an I/O error) ends tail with exit code 5 and a message naming the
    /// file; a closed stdout pipe (the reader went away) ends it with 0.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (status, notifications, gaps and
    /// uncovered seconds by reason, requests by kind, reconnects, age of the last
    /// notification), e.g. 127.0.0.1:9464. The endpoint has no authentication: an address
    /// other hosts can reach is warned about.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    /// Lifecycle lines on stderr: human text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Also log each request and socket the session makes (token, channel, upgrade,
    /// subscription, close): renewals and handovers become visible. No secret is shown.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

const USAGE_CREDENTIALS: &str = "set GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET (client credentials; add \
GENESYS_REFRESH_TOKEN or --refresh-token-file for the refresh-token grant), or GENESYS_ACCESS_TOKEN alone (a static token)";

impl Target {
    /// The client configuration these flags and the environment describe, with warnings for
    /// the operator (a refresh-token file others can read), or a usage error.
    pub(crate) fn config(&self) -> Result<(Config, Vec<String>), String> {
        let endpoints = endpoints(self)?;
        let (creds, warnings) = credentials(self)?;
        let mut topics = Vec::new();
        for t in &self.topics {
            topics.push(Topic::new(t.as_str()).map_err(|e| format!("--topic: {e}"))?);
        }
        if let Some(path) = &self.topics_file {
            topics.extend(read_topics_file(path)?);
        }
        if topics.is_empty() {
            return Err("no topic: give --topic TOPIC or a --topics-file with at least one".into());
        }
        let extra_root_pem = match &self.ca_cert {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read --ca-cert {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let mut config = Config::new(endpoints, creds);
        config.topics = topics;
        config.session.max_channels = self.max_channels;
        config.session.combine_topics = self.combine_topics;
        config.extra_root_pem = extra_root_pem;
        Ok((config, warnings))
    }
}

pub(crate) fn usage(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(2)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn credentials(args: &Target) -> Result<(Credentials, Vec<String>), String> {
    let id = env("GENESYS_CLIENT_ID");
    let secret = env("GENESYS_CLIENT_SECRET");
    let mut warnings = Vec::new();
    if let Some(path) = &args.refresh_token_file {
        let checked = secret_file::check(path).map_err(|e| format!("--refresh-token-file: {e}"))?;
        secret_file::clean_stale(&checked.file);
        warnings = checked.warnings;
    }
    let refresh = match &args.refresh_token_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) if !t.trim().is_empty() => Some(t.trim().to_owned()),
            Ok(_) => return Err(format!("--refresh-token-file {} is empty", path.display())),
            Err(e) => {
                return Err(format!(
                    "cannot read --refresh-token-file {}: {e}",
                    path.display()
                ))
            }
        },
        None => env("GENESYS_REFRESH_TOKEN"),
    };
    let creds = match (id, secret, refresh, env("GENESYS_ACCESS_TOKEN")) {
        (Some(client_id), Some(secret), Some(refresh), _) => {
            let file = args.refresh_token_file.clone();
            Ok(Credentials::RefreshToken {
                client_id,
                client_secret: Secret::new(secret),
                refresh_token: Secret::new(refresh),
                persist: Box::new(move |t| {
                    match &file {
                    Some(path) => secret_file::replace(path, t.expose()),
                    None => Err("no --refresh-token-file given; the rotated refresh token lives only in this process".to_owned()),
                }
                }),
            })
        }
        (Some(client_id), Some(secret), None, _) => Ok(Credentials::ClientCredentials {
            client_id,
            client_secret: Secret::new(secret),
        }),
        (None, None, None, Some(token)) => Ok(Credentials::Static {
            access_token: Secret::new(token),
            expires_in: Duration::from_secs(86_400),
        }),
        (Some(_), None, _, _) => Err(format!(
            "GENESYS_CLIENT_SECRET is missing: {USAGE_CREDENTIALS}"
        )),
        (None, Some(_), _, _) => Err(format!("GENESYS_CLIENT_ID is missing: {USAGE_CREDENTIALS}")),
        _ => Err(format!("no credentials: {USAGE_CREDENTIALS}")),
    }?;
    Ok((creds, warnings))
}

fn endpoints(args: &Target) -> Result<Endpoints, String> {
    match (&args.region, &args.api_base) {
        (Some(r), _) => r
            .parse::<Region>()
            .map(Endpoints::region)
            .map_err(|e| e.to_string()),
        (None, Some(api)) => {
            Endpoints::custom(api, args.login_base.as_deref()).map_err(|e| e.to_string())
        }
        (None, None) => Err("give --region or --api-base".to_owned()),
    }
}

pub(crate) fn run(args: TailArgs) -> ExitCode {
    let (mut config, warnings) = match args.target.config() {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    config.session.redundancy = args.redundancy;
    let (mut out, out_name): (Box<dyn Write + Send>, String) = match &args.output {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => (
                Box::new(std::io::BufWriter::new(f)),
                format!("--output {}", path.display()),
            ),
            Err(e) => return usage(format!("cannot open --output {}: {e}", path.display())),
        },
        None => (Box::new(std::io::stdout()), "stdout".to_owned()),
    };
    let log = Log {
        format: args.log_format,
    };
    // The handler goes in before anything is printed or started: a signal that comes before
    // the session exists ends the process at once with 0 (nothing is open, nothing is lost);
    // later, it closes the session ahead of any backlog.
    let session_closer = Arc::new(OnceLock::<genesys_notify_blocking::Closer>::new());
    let done = Arc::new(AtomicBool::new(false));
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let (closer, main_done, signalled) = (
            Arc::clone(&session_closer),
            Arc::clone(&done),
            Arc::clone(&stopping),
        );
        if let Err(e) = ctrlc::set_handler(move || {
            signalled.store(true, Ordering::SeqCst);
            match closer.get() {
                Some(closer) => on_signal(closer, &main_done, log),
                None => std::process::exit(0),
            }
        }) {
            eprintln!("error: cannot install the signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    for w in warnings {
        log.warn(&w);
    }
    let metrics = match args.metrics {
        Some(addr) => {
            let m = Arc::new(crate::metrics::Metrics::new());
            match crate::metrics::serve(addr, Arc::clone(&m)) {
                Ok(bound) => {
                    log.emit(
                        "metrics",
                        json!({ "listen": bound.to_string() }),
                        &format!("metrics at http://{bound}/metrics"),
                    );
                    if !bound.ip().is_loopback() {
                        log.warn(&format!("--metrics {bound} is reachable from other hosts and has no authentication; bind 127.0.0.1 unless a firewall guards it"));
                    }
                }
                Err(e) => return usage(e),
            }
            Some(m)
        }
        None => None,
    };
    let verbose = args.verbose;
    let observer = metrics.clone();
    if verbose || observer.is_some() {
        config.on_action = Some(Box::new(move |a| {
            if let Some(m) = &observer {
                m.action(a);
            }
            if verbose {
                log.action(a);
            }
        }));
    }
    let mut client = match Client::connect(config) {
        Ok(c) => c,
        Err(e) => return usage(e),
    };
    let closer = client.closer();
    if let Some(m) = &metrics {
        m.attach(client.closer());
    }
    // Set here only, so it cannot be set already.
    let _ = session_closer.set(closer);
    let code = follow(
        &mut client,
        log,
        &login_hint(&args.target),
        Output {
            to: &mut out,
            name: &out_name,
        },
        args.max_events,
        metrics.as_deref(),
        &stopping,
    );
    done.store(true, Ordering::SeqCst);
    code
}

/// Ctrl-C or SIGTERM: the session closes ahead of any backlog. The main thread normally prints
/// the last events and exits; if it cannot within a moment (stuck writing to a stdout nobody
/// reads), this thread reports what is left on stderr — undelivered notifications as one gap
/// — and exits, so the process is gone within a second whatever is queued.
fn on_signal(closer: &genesys_notify_blocking::Closer, main_done: &AtomicBool, log: Log) {
    let _ = closer.close_and_wait(Duration::from_millis(700));
    let until = std::time::Instant::now() + Duration::from_millis(200);
    while std::time::Instant::now() < until {
        if main_done.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let wall = |at| closer.to_system_time(at);
    for e in closer.take_unread() {
        log.event(&wall, &e);
    }
    std::process::exit(0);
}

/// What to do when a login is required, for the kind of credentials in use.
pub(crate) fn login_hint(args: &Target) -> String {
    if let Some(path) = &args.refresh_token_file {
        format!(
            "write a new refresh token into {} and start again",
            path.display()
        )
    } else if env("GENESYS_REFRESH_TOKEN").is_some() {
        "set GENESYS_REFRESH_TOKEN to a new refresh token and start again".to_owned()
    } else if env("GENESYS_CLIENT_ID").is_some() {
        "check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET, and that the OAuth client may use the client-credentials grant".to_owned()
    } else {
        "set GENESYS_ACCESS_TOKEN to a valid token and start again".to_owned()
    }
}

/// The topics of a `--topics-file`: one per line, blank lines and `#` comments skipped. An
/// invalid line is a usage error naming its line number.
fn read_topics_file(path: &std::path::Path) -> Result<Vec<Topic>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --topics-file {}: {e}", path.display()))?;
    let mut topics = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let t = Topic::new(line)
            .map_err(|e| format!("--topics-file {} line {}: {e}", path.display(), n + 1))?;
        topics.push(t);
    }
    Ok(topics)
}

/// Where notifications go, and its name for messages.
struct Output<'a> {
    to: &'a mut dyn Write,
    name: &'a str,
}

/// Exit code after a notification could not be written (not a closed pipe).
const EXIT_WRITE_FAILED: u8 = 5;

/// The longest `follow` waits for an event before it waits again. Only tests shorten it
/// (`GENESYS_NOTIFY_TAIL_WAIT_MS`), to prove that a wait that passes in silence ends nothing.
fn event_wait() -> Duration {
    std::env::var("GENESYS_NOTIFY_TAIL_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(3600), Duration::from_millis)
}

fn follow(
    client: &mut Client,
    log: Log,
    login_hint: &str,
    out: Output<'_>,
    max_events: Option<u64>,
    metrics: Option<&crate::metrics::Metrics>,
    stopping: &AtomicBool,
) -> ExitCode {
    let mut written = 0u64;
    let mut budget_checked = false;
    let max_channels = client.max_channels();
    let wait = event_wait();
    loop {
        let event = match client.next_event(wait) {
            Ok(e) => e,
            // A quiet topic: heartbeats and renewals make no event.
            Err(NextEventError::Timeout) => continue,
            // Ctrl-C or SIGTERM closed the session: a clean stop.
            Err(NextEventError::Ended) if stopping.load(Ordering::SeqCst) => {
                return ExitCode::SUCCESS;
            }
            // Login required and fatal return below with their own codes; any other end
            // must not pass for a requested stop under a supervisor.
            Err(NextEventError::Ended) => {
                log.emit(
                    "ended",
                    json!({}),
                    "the session ended without a reason; this is a bug",
                );
                return ExitCode::FAILURE;
            }
        };
        if let Some(m) = metrics {
            m.event(&event);
        }
        match event {
            Event::Notification { raw, .. } => {
                // Whitespace newlines only: JSON strings cannot hold a raw newline.
                let line = if raw.contains(['\n', '\r']) {
                    raw.replace(['\n', '\r'], " ")
                } else {
                    raw
                };
                if let Err(e) = writeln!(out.to, "{line}").and_then(|()| out.to.flush()) {
                    client.close();
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        // The reader went away (`tail | head`): stop cleanly.
                        return ExitCode::SUCCESS;
                    }
                    log.emit(
                        "write_failed",
                        json!({ "output": out.name, "error": e.to_string() }),
                        &format!(
                            "cannot write a notification to {}: {e}; stopping (exit {EXIT_WRITE_FAILED})",
                            out.name
                        ),
                    );
                    return ExitCode::from(EXIT_WRITE_FAILED);
                }
                written += 1;
                if max_events.is_some_and(|max| written >= max) {
                    client.close();
                    // Report what the close found uncovered, as after a signal.
                    let closer = client.closer();
                    while let Ok(e) = client.next_event(Duration::from_millis(100)) {
                        if !matches!(e, Event::Notification { .. }) {
                            log.event(&|at| closer.to_system_time(at), &e);
                        }
                    }
                    return ExitCode::SUCCESS;
                }
            }
            Event::LoginRequired { reason, .. } => {
                log.emit(
                    "login_required",
                    json!({ "reason": reason.to_string(), "what_to_do": login_hint }),
                    &format!("login required: {reason}; {login_hint}"),
                );
                finish(client, log);
                return ExitCode::from(3);
            }
            Event::Fatal(e) => {
                log.emit(
                    "fatal",
                    json!({ "message": e.to_string() }),
                    &format!("fatal: {e}"),
                );
                finish(client, log);
                return ExitCode::from(4);
            }
            Event::Status(s @ Status::Live) => {
                let channels = client.held().channels;
                if !budget_checked {
                    budget_checked = true;
                    warn_about_the_channel_budget(client, &log, max_channels);
                }
                if channels > 1 {
                    log.emit(
                        "status",
                        json!({ "status": s.to_string(), "channels": channels }),
                        &format!("status: {s} on {channels} channels"),
                    );
                } else {
                    log.event(&|at| client.to_system_time(at), &Event::Status(s));
                }
            }
            other => log.event(&|at| client.to_system_time(at), &other),
        }
    }
}

/// Once live: if this user and OAuth client hold all the channels the service allows, the
/// next channel anyone makes (this session's renewal, or another program's) removes the
/// least recently used: say so, and what to do.
fn warn_about_the_channel_budget(client: &Client, log: &Log, max_channels: u32) {
    let Ok(in_use) = client.channels_in_use() else {
        return;
    };
    let ours = client.held().channels;
    if in_use >= max_channels as usize {
        log.emit(
            "channel_budget",
            json!({ "channels_in_use": in_use, "this_session": ours, "max_channels": max_channels }),
            &format!(
                "warning: this user and OAuth client hold {in_use} channels ({ours} of them this session's) of the {max_channels} allowed: the next channel made removes the least recently used, possibly another program's live one; stop programs you do not need, or give them another OAuth client"
            ),
        );
    }
}

/// Closes the session after `login_required` or `fatal` and prints the gaps that close
/// reported (a stretch still uncovered), so that line stays the last but for those.
fn finish(client: &mut Client, log: Log) {
    client.close();
    let closer = client.closer();
    let wall = |at| closer.to_system_time(at);
    while let Ok(e) = client.next_event(Duration::from_millis(100)) {
        if matches!(e, Event::Gap { .. }) {
            log.event(&wall, &e);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Log {
    format: LogFormat,
}

fn rfc3339(wall: &dyn Fn(Instant) -> SystemTime, at: Instant) -> String {
    jiff::Timestamp::try_from(wall(at))
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Text for a terminal: control characters (ESC, CR, LF, BEL, …) and the bidirectional
/// overrides that reorder what is shown become visible escapes, so that text from the network
/// cannot move the cursor, clear the screen or forge a line.
pub(crate) fn escape_terminal(s: &str) -> std::borrow::Cow<'_, str> {
    let bad = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !s.contains(bad) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How long a gap lasted, the way a person reads it.
fn human_duration(d: Duration) -> String {
    match d.as_millis() {
        ms @ 0..=9_999 => format!("{ms} ms"),
        ms @ 10_000..=119_999 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

impl Log {
    /// One lifecycle line on stderr. Text lines start with the UTC time (`12:00:01Z`); JSON
    /// lines carry `ts`, an RFC 3339 UTC timestamp with milliseconds.
    fn emit(&self, event: &str, mut fields: serde_json::Value, text: &str) {
        let now = jiff::Timestamp::now();
        let mut err = std::io::stderr().lock();
        let _ = match self.format {
            LogFormat::Json => {
                fields["event"] = json!(event);
                fields["ts"] = json!(now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
                writeln!(err, "{fields}")
            }
            LogFormat::Text => writeln!(
                err,
                "{} {}",
                now.strftime("%H:%M:%SZ"),
                escape_terminal(text)
            ),
        };
    }

    /// A `warning` line: the session's, or tail's own about how it was started.
    fn warn(&self, message: &str) {
        self.emit(
            "warning",
            json!({ "message": message }),
            &format!("warning: {message}"),
        );
    }

    /// `-v`: what the session asks for, without secrets or channel ids.
    fn action(&self, a: &genesys_notify_core::Action) {
        use genesys_notify_core::Action;
        let (what, text) = match a {
            Action::RequestToken { .. } => {
                ("token_request", "requesting an access token".to_owned())
            }
            Action::CreateChannel { .. } => ("channel_request", "creating a channel".to_owned()),
            Action::Connect { .. } => ("connect", "opening the socket".to_owned()),
            Action::PutSubscriptions { topics, .. } => (
                "subscribe",
                format!("subscribing {} topic(s)", topics.len()),
            ),
            Action::Close { code, .. } => ("close", format!("closing a socket (code {code})")),
            // Pings are routine; logging each would drown the rest.
            Action::Send { .. } => return,
            other => ("action", format!("{other:?}")),
        };
        self.emit(what, json!({}), &text);
    }

    fn event(&self, wall: &dyn Fn(Instant) -> SystemTime, e: &Event) {
        match e {
            Event::Status(s) => self.emit(
                "status",
                json!({ "status": s.to_string() }),
                &format!("status: {s}"),
            ),
            Event::Gap {
                topics,
                from,
                to,
                reason,
            } => {
                let names: Vec<&str> = topics.iter().map(Topic::as_str).collect();
                let (f, t) = (rfc3339(wall, *from), rfc3339(wall, *to));
                let lasted = to.saturating_duration_since(*from);
                let since = jiff::Timestamp::try_from(wall(*from))
                    .map(|t| t.strftime("%H:%M:%S%.3fZ").to_string())
                    .unwrap_or_default();
                let why = reason.to_string().replace('_', " ");
                self.emit(
                    "gap",
                    json!({
                        "topics": names, "from": f, "to": t, "reason": reason.to_string(),
                        "uncovered_ms": u64::try_from(lasted.as_millis()).unwrap_or(u64::MAX),
                    }),
                    &format!(
                        "gap: {} topic(s) uncovered for {} ({why}) from {since}; re-read their state: {}",
                        names.len(),
                        human_duration(lasted),
                        names.join(", ")
                    ),
                );
            }
            Event::TopicRejected { topic, reason } => self.emit(
                "topic_rejected",
                json!({ "topic": topic, "reason": reason }),
                &format!("topic rejected: {topic}: {reason}"),
            ),
            Event::TokenRotated => self.emit("token_rotated", json!({}), "refresh token rotated"),
            Event::Warning(w) => self.warn(&w.to_string()),
            Event::LoginRequired { reason, .. } => self.emit(
                "login_required",
                json!({ "reason": reason.to_string() }),
                &format!("login required: {reason}"),
            ),
            Event::LoginSoon { reason, expires_in } => self.emit(
                "login_soon",
                json!({ "reason": reason.to_string(), "expires_in_s": expires_in.as_secs() }),
                &format!(
                    "login soon: {reason}; the token ends in {} s",
                    expires_in.as_secs()
                ),
            ),
            Event::Fatal(e) => self.emit(
                "fatal",
                json!({ "message": e.to_string() }),
                &format!("fatal: {e}"),
            ),
            other => self.emit(
                "other",
                json!({ "debug": format!("{other:?}") }),
                &format!("{other:?}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_terminal;

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        use super::human_duration;
        use std::time::Duration;
        assert_eq!(human_duration(Duration::from_millis(648)), "648 ms");
        assert_eq!(human_duration(Duration::from_millis(12_345)), "12.3 s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3 min 5 s");
    }

    #[test]
    fn control_characters_and_bidi_overrides_become_visible() {
        assert_eq!(escape_terminal("plain text: ok"), "plain text: ok");
        assert_eq!(
            escape_terminal("bad\u{1b}[2J\nstatus: live\u{202e}"),
            "bad\\u{001b}[2J\\u{000a}status: live\\u{202e}"
        );
    }
}
