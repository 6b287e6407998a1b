//! `genesys-notify sim`: the simulator in the foreground.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use genesys_notify_sim::{parse_duration, parse_script, OnExpiry, Sim, SimConfig};

/// Options of `genesys-notify sim`.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Access-token lifetime, e.g. 30s, 5m, 24h.
    #[arg(long, default_value = "24h", value_parser = duration)]
    token_ttl: Duration,
    /// Channel lifetime.
    #[arg(long, default_value = "24h", value_parser = duration)]
    channel_ttl: Duration,
    /// Heartbeat interval on each socket.
    #[arg(long, default_value = "30s", value_parser = duration)]
    heartbeat: Duration,
    /// Notifications per second for every subscribed topic (0: none).
    #[arg(long, default_value_t = 1.0, value_parser = rate)]
    rate: f64,
    /// Time between v2.system.socket_closing and the close.
    #[arg(long, default_value = "60s", value_parser = duration)]
    maintenance_grace: Duration,
    /// Serve HTTPS/WSS with a self-signed certificate generated at start.
    #[arg(long, requires = "cert_out")]
    tls: bool,
    /// Where to write the certificate (PEM) for clients to trust.
    #[arg(long, value_name = "FILE", requires = "tls")]
    cert_out: Option<PathBuf>,
    /// A fault timeline: one `TIME FAULT` per line, e.g. `20s close 4001`. Faults: `close [CODE]`,
    /// drop, half_open, socket_closing, displace, `fail ENDPOINT COUNT STATUS [RETRY_AFTER]`,
    /// revoke_refresh_tokens, expire_tokens, malformed KIND, burst N, flood N, redirect ENDPOINT
    /// COUNT, short_token COUNT SECS, expired_channel COUNT, foreign_uri COUNT.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// What an open socket sees when its channel's token expires: close:CODE, silent or keep.
    #[arg(long, default_value = "close:1000", value_parser = on_expiry)]
    on_token_expiry: OnExpiry,
    /// What an open socket sees when its channel expires: close:CODE, silent or keep.
    #[arg(long, default_value = "close:1000", value_parser = on_expiry)]
    on_channel_expiry: OnExpiry,
    /// Close code for a socket displaced by a second connection to its channel.
    #[arg(long, default_value_t = 1000)]
    displaced_close_code: u16,
    /// Topics starting with this prefix are rejected (repeatable).
    #[arg(long = "forbid", value_name = "PREFIX", default_values_t = ["v2.forbidden.".to_owned()])]
    forbidden_prefixes: Vec<String>,
    /// Channels kept per OAuth client before the oldest is evicted (the service keeps 20).
    #[arg(long, default_value_t = 20)]
    max_channels: usize,
    /// Delay notifications by this much while pongs and heartbeats go out at once, so a
    /// pong overtakes notifications still in the pipeline (0s: one ordered stream).
    #[arg(long, default_value = "0s", value_parser = duration)]
    notification_lag: Duration,
    /// Delay every HTTP answer and socket upgrade by this much, as a real round trip would
    /// (e.g. 100ms; 0s answers at once).
    #[arg(long, default_value = "0s", value_parser = duration)]
    latency: Duration,
    /// A topic may be subscribed on one channel of a client only: subscribing it on another
    /// channel takes it from the first, which is told so on its socket (no_longer_subscribed,
    /// reason another_channel_subscribed). Whether the service does this is not documented.
    #[arg(long)]
    exclusive_topics: bool,
    /// Count a combined topic (v2.users.{id}?presence&routingStatus) as one topic per part
    /// toward a channel's 1000 instead of one. The service does not document which it does.
    #[arg(long)]
    combined_topics_count_parts: bool,
    /// Let pages of ORIGIN call the API from a browser (CORS answers and preflights, as the
    /// real API gives them), e.g. http://127.0.0.1:5173; repeat for more, `*` for any.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Serve the files of DIR at every path that is not the API's (`/` is DIR/index.html),
    /// for test pages and examples; nothing outside DIR is served.
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<std::path::PathBuf>,
    /// Send this Content-Security-Policy with every file of --static, to check that a page
    /// runs under a strict policy, e.g. "default-src 'self'; script-src 'self'
    /// 'wasm-unsafe-eval'".
    #[arg(long = "static-csp", value_name = "POLICY", requires = "static_dir", value_parser = csp_policy)]
    static_csp: Option<String>,
    /// Users of the simulated organisation (sim-user-1 …; GET /api/v2/users/me is the first),
    /// whose presence and routing status the REST API reads and writes.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..=10000))]
    org_users: u16,
    /// Queues of the simulated organisation (sim-queue-1 …).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=1000))]
    org_queues: u16,
    /// Changes per second the organisation makes by itself (presences, routing statuses,
    /// conversations arriving, answered, ending), each published on its topic; 0: only
    /// through the API.
    #[arg(long, value_name = "PER_SECOND", default_value = "0", value_parser = rate)]
    org_rate: f64,
    /// Do not log requests on stderr.
    #[arg(long)]
    quiet: bool,
}

/// What `sim --help` shows after the options: the control endpoints and the fault language.
pub(crate) fn after_help() -> String {
    format!(
        "The simulator prints its base URL at start. Point a client at it (tail --api-base URL),
use the client id and secret it prints, and control it over HTTP:
  curl -X POST \"$BASE/__sim/fault\" -d 'half_open'    inject a fault now
  curl \"$BASE/__sim/fault\"                          this list
  curl \"$BASE/__sim/stats\"                          requests, channels, sockets, published events

{}",
        genesys_notify_sim::FAULT_HELP
    )
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && (0.0..=10_000.0).contains(&r) => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate between 0 and 10000 events per second"
        )),
    }
}

fn on_expiry(s: &str) -> Result<OnExpiry, String> {
    match s {
        "silent" => Ok(OnExpiry::Silent),
        "keep" => Ok(OnExpiry::KeepOpen),
        _ => s
            .strip_prefix("close:")
            .and_then(|c| c.parse().ok())
            .map(OnExpiry::Close)
            .ok_or_else(|| format!("{s:?}: use close:CODE (e.g. close:1000), silent or keep")),
    }
}

pub(crate) fn run(args: SimArgs) -> ExitCode {
    let script = match &args.script {
        None => Vec::new(),
        Some(path) => match std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| parse_script(&t).map_err(|e| e.to_string()))
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: --script {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
    };
    if let Some(dir) = args.static_dir.as_deref().filter(|d| !d.is_dir()) {
        eprintln!("error: --static {}: not a directory", dir.display());
        return ExitCode::from(2);
    }
    let config = SimConfig {
        port: args.port,
        token_ttl: args.token_ttl,
        channel_ttl: args.channel_ttl,
        heartbeat: args.heartbeat,
        rate: args.rate,
        maintenance_grace: args.maintenance_grace,
        tls: args.tls,
        script,
        forbidden_prefixes: args.forbidden_prefixes,
        on_token_expiry: args.on_token_expiry,
        on_channel_expiry: args.on_channel_expiry,
        displaced_close_code: args.displaced_close_code,
        max_channels: args.max_channels,
        notification_lag: args.notification_lag,
        latency: args.latency,
        exclusive_topics: args.exclusive_topics,
        combined_topics_count_parts: args.combined_topics_count_parts,
        cors_origins: args.cors_origins,
        static_dir: args.static_dir,
        static_csp: args.static_csp,
        org: genesys_notify_sim::OrgConfig {
            users: usize::from(args.org_users),
            queues: usize::from(args.org_queues),
            change_rate: args.org_rate,
        },
        log_requests: !args.quiet,
        ..SimConfig::default()
    };
    let sim = match Sim::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot start the simulator on port {}: {e}",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    if let (Some(path), Some(pem)) = (&args.cert_out, sim.cert_pem()) {
        if let Err(e) = std::fs::write(path, pem) {
            eprintln!(
                "error: cannot write the certificate to {}: {e}",
                path.display()
            );
            return ExitCode::FAILURE;
        }
    }
    let (tx, rx) = mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = tx.send(());
    }) {
        eprintln!("error: cannot install the Ctrl-C handler: {e}");
        return ExitCode::FAILURE;
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", sim.banner());
    let _ = out.flush();
    drop(out);
    eprintln!("sim: serving {} — Ctrl-C to stop", sim.base_url());
    let _ = rx.recv();
    eprintln!("sim: stopping");
    sim.shutdown();
    ExitCode::SUCCESS
}

/// A policy that fits in an HTTP header: visible ASCII and spaces only.
fn csp_policy(s: &str) -> Result<String, String> {
    if s.is_empty() || !s.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(
            "a Content-Security-Policy is printable ASCII (no line breaks or control characters)"
                .into(),
        );
    }
    Ok(s.to_owned())
}
