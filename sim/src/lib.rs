//! A local Genesys Cloud look-alike for testing notification clients, with fault injection.
//!
//! It serves, on one loopback port (plain or TLS with a self-signed certificate):
//!
//! - `POST /oauth/token`: client credentials (Basic auth) and the refresh-token grant with
//!   rotation, with errors in the real shape (`error`, `description`, `error_description`);
//! - `POST|GET /api/v2/notifications/channels`, `HEAD /api/v2/notifications/channels/{id}`:
//!   token-bound channels with a lifetime and the cap of 20 per client;
//! - `GET|PUT|POST|DELETE /api/v2/notifications/channels/{id}/subscriptions` with per-topic
//!   `Permitted`/`Rejected` results, `ignoreErrors`, and the 1,000-topic limit;
//! - the streaming socket at `/channels/{id}`: heartbeats, ping/pong, subscribe messages,
//!   `v2.system.socket_closing`, one socket per channel;
//! - a publisher: every topic ever subscribed gets notifications with a per-topic sequence
//!   number (in `metadata.CorrelationId`, `sim-{seq}-…`, and in `eventBody.seq`), fanned out to every channel subscribed to it at that moment (a combined
//!   topic, `v2.users.{id}?presence&routingStatus`, gets each part under its own name);
//! - a simulated organisation ([`OrgConfig`]): users' presence (`GET`/`PATCH`
//!   `/api/v2/users/{id}/presences/purecloud`) and routing status, `GET /api/v2/users/me`,
//!   the presence catalogue, queue observations, `GET /api/v2/notifications/availabletopics`
//!   and `GET /api/v2/tokens/me`, in the official SDK's shapes; its changes are published on
//!   their topics with the service's bodies;
//! - faults from a script or `POST /__sim/fault` (see [`Fault`]), and `GET /__sim/stats`.
//!
//! Behaviours the real service leaves undocumented (what an open socket sees when its token
//! expires, the close code of a displaced socket, whether pongs overtake queued notifications,
//! …) are options in [`SimConfig`],
//! so a client can be tested against every plausible answer.
//!
//! ```no_run
//! use genesys_notify_sim::{Sim, SimConfig};
//! let sim = Sim::start(SimConfig::default())?;
//! println!("{}", sim.base_url());
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

mod duration;
mod fault;
mod ledger;
mod org;
mod pkce;
mod server;
mod state;
mod tls;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use duration::parse_duration;
pub use fault::{
    parse_script, Endpoint, Fault, FaultParseError, Malformed, ScriptStep, Twist, FAULT_HELP,
};
pub use ledger::{Ledger, Tally};
pub use org::OrgConfig;
pub use state::{RequestRecord, Stats};

/// What happens to an open socket when something it depends on ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExpiry {
    /// The server closes the socket with this code.
    Close(u16),
    /// The socket goes silent and stays open (half-open): the client must notice by itself.
    Silent,
    /// Nothing happens to the open socket (the token is checked only on REST calls).
    KeepOpen,
}

/// The simulator's settings. `SimConfig::default()` behaves like production with a 24-hour
/// token and channel.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Access-token lifetime (`expires_in`).
    pub token_ttl: Duration,
    /// Channel lifetime (`expires`).
    pub channel_ttl: Duration,
    /// Heartbeat interval on each socket.
    pub heartbeat: Duration,
    /// Notifications per second per topic; 0 publishes nothing.
    pub rate: f64,
    /// Time between `v2.system.socket_closing` and the close.
    pub maintenance_grace: Duration,
    /// Serve TLS with a self-signed certificate for `localhost` and `127.0.0.1`.
    pub tls: bool,
    /// Faults to inject, by time since start.
    pub script: Vec<ScriptStep>,
    /// Topics starting with one of these are rejected (`Rejected`, missing permission).
    pub forbidden_prefixes: Vec<String>,
    /// The rejection reason sent for a forbidden topic (default: the service's wording). It
    /// is sent as given, so tests can see how clients show hostile text (terminal escapes).
    pub rejection_reason: String,
    /// What an open socket sees when the token that created its channel expires.
    pub on_token_expiry: OnExpiry,
    /// What an open socket sees when its channel expires.
    pub on_channel_expiry: OnExpiry,
    /// Close code sent to a socket displaced by a second connection to its channel.
    pub displaced_close_code: u16,
    /// HTTP status refusing an upgrade to a channel whose creating token has expired.
    pub upgrade_status_token_expired: u16,
    /// Whether a `PUT` of subscriptions moves the channel's expiry forward.
    pub resubscribe_extends: bool,
    /// Whether a topic may be subscribed on one channel of a client only: subscribing it on
    /// another channel takes it from the first, which is told so on its socket
    /// (`no_longer_subscribed`, reason `another_channel_subscribed`). The service's message
    /// types allow for it; whether it ever does it is not documented. Off by default.
    pub exclusive_topics: bool,
    /// Whether a combined topic (`v2.users.{id}?presence&routingStatus`) counts as one topic
    /// per part toward a channel's 1000, instead of one. The service does not say which; the
    /// default (false) counts it as one, the kinder answer, so that a client that counts
    /// parts is tested against both.
    pub combined_topics_count_parts: bool,
    /// Origins whose pages may call the API from a browser (CORS; `*` for any). Empty (the
    /// default): no CORS header, as for a client that is not a browser.
    pub cors_origins: Vec<String>,
    /// A directory served over `GET` at every path that is not the API's (`/` is its
    /// `index.html`), for test pages and examples. Nothing outside it is ever served.
    pub static_dir: Option<std::path::PathBuf>,
    /// A `Content-Security-Policy` sent with every file of `static_dir` (the page, and the
    /// scripts, workers and wasm it loads), to check that a page runs under a strict policy.
    /// None (the default): no policy.
    pub static_csp: Option<String>,
    /// The simulated organisation behind the REST reads and writes (users' presence and
    /// routing status, queues, the presence catalogue) and how often it changes by itself.
    pub org: OrgConfig,
    /// Whether the refresh grant rotates the refresh token (the old one dies).
    pub rotate_refresh_tokens: bool,
    /// Channels kept per client before the oldest is evicted.
    pub max_channels: usize,
    /// Base of the `connectUri` handed out (default: this server's own `ws(s)://` origin).
    /// Set it to a foreign host to test that clients refuse to connect there.
    pub connect_uri_base: Option<String>,
    /// How long notifications take to reach a socket after they are published, while the
    /// socket's replies (pong, subscribe replies) and heartbeats go out at once. Zero (the
    /// default) makes each socket one ordered stream: a pong follows every notification
    /// queued before its ping. Above zero a pong overtakes notifications still in the
    /// pipeline — whether the service does that is not documented anywhere, so
    /// clients can be tested against both.
    pub notification_lag: Duration,
    /// Added to every HTTP answer and socket upgrade (not to the simulator's own `/__sim`
    /// control endpoints), so a run on loopback pays what a real round trip costs. Zero (the
    /// default) answers at once.
    pub latency: Duration,
    /// Log each request on stderr.
    pub log_requests: bool,
    /// The demo OAuth client.
    pub client_id: String,
    /// The demo OAuth client's secret.
    pub client_secret: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            port: 0,
            token_ttl: Duration::from_secs(86_400),
            channel_ttl: Duration::from_secs(86_400),
            heartbeat: Duration::from_secs(30),
            rate: 1.0,
            maintenance_grace: Duration::from_secs(60),
            tls: false,
            script: Vec::new(),
            forbidden_prefixes: vec!["v2.forbidden.".to_owned()],
            rejection_reason: "Missing permission to subscribe to this topic".to_owned(),
            on_token_expiry: OnExpiry::Close(1000),
            on_channel_expiry: OnExpiry::Close(1000),
            displaced_close_code: 1000,
            upgrade_status_token_expired: 401,
            resubscribe_extends: false,
            exclusive_topics: false,
            combined_topics_count_parts: false,
            cors_origins: Vec::new(),
            static_dir: None,
            static_csp: None,
            org: OrgConfig::default(),
            rotate_refresh_tokens: true,
            max_channels: 20,
            connect_uri_base: None,
            notification_lag: Duration::ZERO,
            latency: Duration::ZERO,
            log_requests: false,
            client_id: "genesys-notify-sim".to_owned(),
            client_secret: "sim-secret".to_owned(),
        }
    }
}

/// A running simulator. It runs on its own threads; dropping the handle (or
/// [`Sim::shutdown`]) stops it.
pub struct Sim {
    inner: Arc<state::Shared>,
    addr: SocketAddr,
    refresh_token: String,
    cert_pem: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// Binds the port and starts serving on a runtime of its own.
    pub fn start(config: SimConfig) -> std::io::Result<Sim> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("genesys-sim")
            .enable_all()
            .build()?;
        let tls = if config.tls {
            Some(tls::self_signed().map_err(std::io::Error::other)?)
        } else {
            None
        };
        let cert_pem = tls.as_ref().map(|t| t.cert_pem.clone());
        // Bound with std so that a simulator starts from inside another runtime too.
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = format!("{scheme}://127.0.0.1:{}", addr.port());
        let shared = state::Shared::new(config, base_url, runtime.handle().clone());
        let refresh_token = shared.issue_refresh_token();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("genesys-sim-main".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => server::run(serving, l, tls.map(|t| t.acceptor), stop_rx).await,
                        Err(e) => eprintln!("sim: cannot serve: {e}"),
                    }
                });
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(Sim {
            inner: shared,
            addr,
            refresh_token,
            cert_pem,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` (or `https://` with TLS): the API, login and socket base.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The demo client id.
    pub fn client_id(&self) -> &str {
        &self.inner.cfg.client_id
    }

    /// The demo client secret.
    pub fn client_secret(&self) -> &str {
        &self.inner.cfg.client_secret
    }

    /// A refresh token issued at start, for the refresh-token grant.
    pub fn refresh_token(&self) -> &str {
        &self.refresh_token
    }

    /// The self-signed certificate (PEM) when serving TLS.
    pub fn cert_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Injects a fault now.
    pub fn fault(&self, fault: &Fault) {
        self.inner.apply_fault(fault);
    }

    /// The `systemPresence` (`Available`, `Busy`, …) of a user of the simulated organisation
    /// now, or None for a user it does not have: the truth to compare a client's view with.
    pub fn presence_of(&self, user: &str) -> Option<&'static str> {
        self.inner.lock().org.system_presence(user)
    }

    /// When each notification of `topic` was published: Unix milliseconds, index `seq − 1`.
    pub fn publish_log(&self, topic: &str) -> Vec<i64> {
        self.inner.publish_log(topic)
    }

    /// Requests, channels, sockets and published events so far.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The JSON line `genesys-notify sim` prints first.
    pub fn banner(&self) -> String {
        serde_json::json!({
            "base_url": self.base_url(),
            "client_id": self.client_id(),
            "client_secret": self.client_secret(),
            "refresh_token": self.refresh_token(),
        })
        .to_string()
    }

    /// Stops serving and waits for the server thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop_now();
    }
}
