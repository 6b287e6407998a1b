//! A blocking driver for [`genesys_notify_core::Session`]: keeps a Genesys Cloud notification
//! channel alive from a script or a plain thread, with no async runtime.
//!
//! One reader thread per socket and one short-lived thread per HTTP request feed a single
//! channel; the caller's thread runs the session's drive loop inside [`Client::next_event`].
//! Every decision is the session's; this crate only moves bytes.
//!
//! ```no_run
//! use std::time::Duration;
//! use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, Region, Topic, Secret};
//! use genesys_notify_core::Event;
//!
//! let creds = Credentials::ClientCredentials {
//!     client_id: std::env::var("GENESYS_CLIENT_ID")?,
//!     client_secret: Secret::new(std::env::var("GENESYS_CLIENT_SECRET")?),
//! };
//! let mut config = Config::new(Endpoints::region(Region::EuWest1), creds);
//! config.topics.push(Topic::new("v2.users.6c1b4f1e-0000-0000-0000-000000000000.presence")?);
//! let mut client = Client::connect(config)?;
//! while let Some(event) = client.next_event(Duration::from_secs(60)) {
//!     match event {
//!         Event::Notification { raw, .. } => println!("{raw}"),
//!         Event::Gap { topics, reason, .. } => eprintln!("missed events for {topics:?} ({reason}): re-read them"),
//!         other => eprintln!("{other:?}"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod socket;

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use genesys_notify_adapter_common::http::{self, HttpAnswer, HttpRequest};
use genesys_notify_adapter_common::Clock;
use genesys_notify_adapter_common::TokenStep;
pub use genesys_notify_adapter_common::{ConfigError, Credentials, Endpoints, Region, TokenSource};
pub use genesys_notify_core::Action;
use genesys_notify_core::{
    ConnId, Error as CoreError, Event, Input, Instant, Session, Status, UsageError,
};
pub use genesys_notify_core::{Secret, Topic};

/// Everything the client needs. Build with [`Config::new`], then adjust the public fields.
pub struct Config {
    /// Where requests go.
    pub endpoints: Endpoints,
    /// How tokens are obtained.
    pub credentials: Credentials,
    /// The topics to subscribe to from the start.
    pub topics: Vec<Topic>,
    /// The session's tuning.
    pub session: genesys_notify_core::Config,
    /// An extra trusted root certificate (PEM), for example the one `genesys-notify sim
    /// --tls --cert-out FILE` wrote.
    pub extra_root_pem: Option<String>,
    /// The largest frame accepted on the socket; a larger one drops the socket (and the
    /// session reports the gap). Default 8 MiB.
    pub max_frame_size: usize,
    /// HTTP request timeout. Default 30 s.
    pub http_timeout: Duration,
    /// Seed for backoff jitter; default: from the clock.
    pub seed: Option<u64>,
    /// Called with every action the session takes, before it is performed (for logs and
    /// timelines; the action's `Debug` form redacts secrets).
    pub on_action: Option<ActionObserver>,
}

/// Sees every action before it is performed.
pub type ActionObserver = Box<dyn FnMut(&Action) + Send>;

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoints", &self.endpoints)
            .field("credentials", &self.credentials)
            .field("topics", &self.topics)
            .field("max_frame_size", &self.max_frame_size)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for everything but where to go and how to log in.
    pub fn new(endpoints: Endpoints, credentials: Credentials) -> Config {
        Config {
            endpoints,
            credentials,
            topics: Vec::new(),
            session: genesys_notify_core::Config::default(),
            extra_root_pem: None,
            max_frame_size: 8 << 20,
            http_timeout: Duration::from_secs(30),
            seed: None,
            on_action: None,
        }
    }
}

/// Why [`Client::connect`] refused to start. Each message says what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The session configuration or topic set was refused.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The extra root certificate could not be read.
    #[error("the extra root certificate is not usable PEM: {0}")]
    BadRootCertificate(String),
}

pub(crate) enum Msg {
    Input(Input),
    Warning(String),
    Close,
}

/// Closes a [`Client`] from another thread (a Ctrl-C handler, say).
#[derive(Clone)]
pub struct Closer(Sender<Msg>);

impl Closer {
    /// Asks the client to close; its `next_event` then returns the final events and `None`.
    pub fn close(&self) {
        let _ = self.0.send(Msg::Close);
    }
}

/// A running session. Call [`next_event`](Self::next_event) (or iterate
/// [`events`](Self::events)) to drive it: nothing happens between calls except socket threads
/// reading into a queue.
pub struct Client {
    session: Session,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    endpoints: Arc<genesys_notify_adapter_common::Endpoints>,
    tokens: Arc<Mutex<TokenSource>>,
    agent: ureq::Agent,
    sockets: BTreeMap<ConnId, socket::Handle>,
    finished: Vec<JoinHandle<()>>,
    socket_config: socket::Settings,
    events: VecDeque<Event>,
    on_action: Option<ActionObserver>,
    clock: Clock,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Validates the configuration and starts the session. Returns at once; the first token,
    /// channel and socket are fetched while you call [`next_event`](Self::next_event).
    pub fn connect(config: Config) -> Result<Client, ConnectError> {
        let clock = Clock::new();
        let seed = config.seed.unwrap_or_else(|| clock.seed());
        let mut session = Session::new(config.session, Instant::ZERO, seed)?;
        session.subscribe(Instant::ZERO, config.topics)?;
        let tls =
            genesys_notify_adapter_common::socket::tls_config(config.extra_root_pem.as_deref())
                .map_err(ConnectError::BadRootCertificate)?;
        let agent = http_agent(config.extra_root_pem.as_deref(), config.http_timeout)
            .map_err(ConnectError::BadRootCertificate)?;
        let (tx, rx) = mpsc::channel();
        let tokens = TokenSource::new(config.credentials, &config.endpoints);
        Ok(Client {
            session,
            tx,
            rx,
            endpoints: Arc::new(config.endpoints),
            tokens: Arc::new(Mutex::new(tokens)),
            agent,
            sockets: BTreeMap::new(),
            finished: Vec::new(),
            socket_config: socket::Settings {
                tls,
                max_frame_size: config.max_frame_size,
                connect_timeout: config.http_timeout,
            },
            events: VecDeque::new(),
            on_action: config.on_action,
            clock,
        })
    }

    /// The next event, waiting at most `timeout` (the session keeps working meanwhile).
    /// `None` on timeout, or once the client is closed and every event was read.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        loop {
            self.drain();
            if let Some(e) = self.events.pop_front() {
                return Some(e);
            }
            if self.session.status() == Status::Closed {
                return None;
            }
            let now = std::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return None;
            }
            let wake = self
                .session
                .poll_timeout()
                .map(|(at, _)| self.clock.to_std(at));
            let until = match (wake, deadline) {
                (Some(w), Some(d)) => w.min(d),
                (Some(w), None) => w,
                (None, Some(d)) => d,
                (None, None) => now + Duration::from_secs(3600),
            };
            let msg = self.rx.recv_timeout(until.saturating_duration_since(now));
            self.detect_suspend();
            match msg {
                Ok(msg) => {
                    self.handle(msg);
                    // Take what else is already waiting, so a busy socket costs one wake-up
                    // per batch rather than per frame.
                    for _ in 0..64 {
                        match self.rx.try_recv() {
                            Ok(msg) => self.handle(msg),
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = self.now();
                    self.session.handle_timeout(now);
                }
                Err(RecvTimeoutError::Disconnected) => {}
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            // One input, then its actions and events (the core's drive loop).
            Msg::Input(input) => {
                let now = self.now();
                self.session.handle_input(now, input);
                self.drain();
            }
            Msg::Warning(w) => self.events.push_back(Event::Warning(CoreError::Local(w))),
            Msg::Close => self.close(),
        }
    }

    /// A blocking iterator over events; it ends after [`close`](Self::close).
    pub fn events(&mut self) -> impl Iterator<Item = Event> + '_ {
        std::iter::from_fn(move || self.next_event(Duration::from_secs(u64::MAX / 4)))
    }

    /// Adds topics (PUT of the whole set while live).
    pub fn subscribe(&mut self, topics: impl IntoIterator<Item = Topic>) -> Result<(), UsageError> {
        let now = self.now();
        self.session.subscribe(now, topics)?;
        self.drain();
        Ok(())
    }

    /// Removes topics.
    pub fn unsubscribe<'t>(
        &mut self,
        topics: impl IntoIterator<Item = &'t Topic>,
    ) -> Result<(), UsageError> {
        let now = self.now();
        self.session.unsubscribe(now, topics)?;
        self.drain();
        Ok(())
    }

    /// Supplies a token from a new login; leaves `LoginRequired`.
    pub fn login(&mut self, token: Secret, expires_in: Duration) -> Result<(), UsageError> {
        let now = self.now();
        self.session.login(now, token, expires_in)?;
        self.drain();
        Ok(())
    }

    /// The application's own API call with `token` got 401: one shared refresh follows.
    pub fn report_unauthorized(&mut self, token: &str) {
        let now = self.now();
        self.session.report_unauthorized(now, token);
        self.drain();
    }

    /// The current valid access token, for the application's own REST calls.
    pub fn access_token(&self) -> Option<&Secret> {
        self.session.access_token()
    }

    /// Where the session stands.
    pub fn status(&self) -> Status {
        self.session.status()
    }

    /// A handle that closes this client from another thread.
    pub fn closer(&self) -> Closer {
        Closer(self.tx.clone())
    }

    /// Closes every socket with 1000 and waits (at most a second) for the close frames to go
    /// out.
    pub fn close(&mut self) {
        let now = self.now();
        self.session.close(now);
        self.drain();
        // A socket still connecting (a black-holed host, say) must not hold Ctrl-C hostage:
        // wait a moment for the close frames, then leave the stragglers behind.
        let give_up = std::time::Instant::now() + Duration::from_secs(1);
        while self.finished.iter().any(|h| !h.is_finished()) && std::time::Instant::now() < give_up
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.finished.clear();
    }

    /// The wall-clock time of a session instant (for matching gaps to server timestamps).
    pub fn to_system_time(&self, at: Instant) -> SystemTime {
        self.clock.to_system_time(at)
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    /// A machine suspend stops the monotonic clock but not the wall clock.
    fn detect_suspend(&mut self) {
        if let Some(slept) = self.clock.check_suspend() {
            let now = self.now();
            self.session.handle_input(now, Input::Resumed { slept });
        }
    }

    /// Performs every pending action and collects every pending event.
    fn drain(&mut self) {
        while let Some(action) = self.session.poll_action() {
            if let Some(f) = self.on_action.as_mut() {
                f(&action);
            }
            self.perform(action);
        }
        while let Some(e) = self.session.poll_event() {
            self.events.push_back(e);
        }
    }

    fn perform(&mut self, action: Action) {
        let action = match http::rest_exchange(&self.endpoints, action) {
            Ok((request, finish)) => return self.spawn_http(request, finish),
            Err(other) => other,
        };
        match action {
            Action::RequestToken { req } => {
                let step = lock(&self.tokens).begin(req);
                match step {
                    TokenStep::Done(input) => {
                        let _ = self.tx.send(Msg::Input(input));
                    }
                    TokenStep::Http(request) => {
                        let tokens = Arc::clone(&self.tokens);
                        self.spawn_http(request, move |answer| {
                            let (input, problem) = lock(&tokens).finish(req, answer);
                            (input, problem)
                        });
                    }
                }
            }
            Action::Connect { conn, url } => {
                let handle = socket::spawn(conn, url, &self.socket_config, self.tx.clone());
                self.sockets.insert(conn, handle);
            }
            Action::Send { conn, text } => {
                if let Some(s) = self.sockets.get(&conn) {
                    s.send(text);
                }
            }
            Action::Close { conn, code } => {
                if let Some(s) = self.sockets.remove(&conn) {
                    if let Some(t) = s.close(code) {
                        self.finished.push(t);
                    }
                }
                self.finished.retain(|t| !t.is_finished());
            }
            other => {
                let _ = self
                    .tx
                    .send(Msg::Warning(format!("unknown action {other:?} ignored")));
            }
        }
    }

    fn spawn_http(
        &self,
        request: HttpRequest,
        finish: impl FnOnce(Result<HttpAnswer, String>) -> (Input, Option<String>) + Send + 'static,
    ) {
        let agent = self.agent.clone();
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name("genesys-http".into())
            .spawn(move || {
                let (input, problem) = finish(execute(&agent, &request));
                if let Some(p) = problem {
                    let _ = tx.send(Msg::Warning(p));
                }
                let _ = tx.send(Msg::Input(input));
            });
        if let Err(e) = spawned {
            let _ = self
                .tx
                .send(Msg::Warning(format!("cannot start an HTTP thread: {e}")));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if self.session.status() != Status::Closed {
            self.close();
        }
    }
}

fn lock(m: &Mutex<TokenSource>) -> std::sync::MutexGuard<'_, TokenSource> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn http_agent(extra_root_pem: Option<&str>, timeout: Duration) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(pem) = extra_root_pem {
        let mut certs: Vec<ureq::tls::Certificate<'static>> = Vec::new();
        for item in ureq::tls::parse_pem(pem.as_bytes()) {
            if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| e.to_string())? {
                certs.push(c);
            }
        }
        if certs.is_empty() {
            return Err("no certificate found".into());
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .tls_config(tls.build())
        .build()
        .into())
}

/// Runs one request. Network errors are described without the URL's query or any header.
fn execute(agent: &ureq::Agent, r: &HttpRequest) -> Result<HttpAnswer, String> {
    let mut b = ureq::http::Request::builder().method(r.method).uri(&r.url);
    for (name, value) in &r.headers {
        b = b.header(*name, value);
    }
    let request = b
        .body(r.body.clone().unwrap_or_default())
        .map_err(|e| format!("bad request: {e}"))?;
    let mut resp = agent.run(request).map_err(|e| describe(&e))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .body_mut()
        .with_config()
        .limit(http::MAX_ANSWER_BODY as u64)
        .read_to_string()
        .map_err(|e| describe(&e))?;
    Ok(HttpAnswer::new(status, &headers, body))
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("{:?}: {io}", io.kind()),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::Tls(t) => format!("TLS: {t}"),
        ureq::Error::Rustls(t) => format!("TLS: {t}"),
        ureq::Error::BodyExceedsLimit(n) => format!("the answer body is larger than {n} bytes"),
        // Other variants may quote the URL, whose path can hold a channel id.
        _ => "request failed".to_owned(),
    }
}
