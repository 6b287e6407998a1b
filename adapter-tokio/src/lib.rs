//! An async (tokio) driver for [`genesys_notify_core::Session`]: keeps a Genesys Cloud
//! notification channel alive inside a service or a desktop back end.
//!
//! [`Client::builder`] → [`Builder::connect`] gives a [`Handle`] (commands, status, the current
//! access token) and an [`EventStream`]. One driver task per session runs the core's loop;
//! socket readers never wait for the application: the event queue is bounded, and when it
//! overflows the oldest notifications are dropped and reported as a [`GapReason::Overflow`]
//! gap. Every decision is the session's; this crate only moves bytes.
//!
//! A [`Event::Gap`] names the topics that were not covered and when: re-read their current
//! state over REST with [`Handle::access_token`], a bounded number of times, and handle the
//! answer like a notification (the crate's `presence` example does it for users' presence).
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use genesys_notify_tokio::{Client, Credentials, Region, Secret, Topic};
//! use genesys_notify_core::Event;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (handle, mut events) = Client::builder()
//!     .region(Region::EuWest1)
//!     .credentials(Credentials::ClientCredentials {
//!         client_id: std::env::var("GENESYS_CLIENT_ID")?,
//!         client_secret: Secret::new(std::env::var("GENESYS_CLIENT_SECRET")?),
//!     })
//!     .topic(Topic::new("v2.users.6c1b4f1e-0000-0000-0000-000000000000.presence")?)
//!     .connect()
//!     .await?;
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Notification { raw, .. } => println!("{raw}"),
//!         Event::Gap { topics, reason, .. } => eprintln!("re-read {topics:?} ({reason})"),
//!         other => eprintln!("{other:?}"),
//!     }
//! }
//! handle.close().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod driver;
mod queue;

use std::time::Duration;

pub use genesys_notify_adapter_common::{
    ConfigError, ConnectError, Credentials, Endpoints, Held, Region,
};
use genesys_notify_core::UsageError;
pub use genesys_notify_core::{Event, GapReason, Secret, Status, Topic};
use tokio::sync::{mpsc, oneshot, watch};

pub use queue::EventStream;

/// Entry point: [`Client::builder`].
#[derive(Debug)]
pub struct Client;

impl Client {
    /// Starts configuring a session.
    pub fn builder() -> Builder {
        Builder {
            endpoints: None,
            credentials: None,
            topics: Vec::new(),
            session: genesys_notify_core::Config::default(),
            extra_root_pem: None,
            max_frame_size: genesys_notify_adapter_common::DEFAULT_MAX_FRAME_SIZE,
            http_timeout: Duration::from_secs(30),
            queue_capacity: 1024,
            queue_bytes: genesys_notify_adapter_common::DEFAULT_QUEUE_BYTES,
            seed: None,
        }
    }
}

/// Configures a session; finish with [`connect`](Self::connect).
pub struct Builder {
    endpoints: Option<Result<Endpoints, ConfigError>>,
    credentials: Option<Credentials>,
    topics: Vec<Topic>,
    session: genesys_notify_core::Config,
    extra_root_pem: Option<String>,
    max_frame_size: usize,
    http_timeout: Duration,
    queue_capacity: usize,
    queue_bytes: usize,
    seed: Option<u64>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("endpoints", &self.endpoints)
            .field("credentials", &self.credentials)
            .field("topics", &self.topics)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// A Genesys Cloud region's production hosts.
    pub fn region(mut self, region: Region) -> Self {
        self.endpoints = Some(Ok(Endpoints::region(region)));
        self
    }

    /// Explicit base URLs (the simulator, a gateway); `http://` only on loopback.
    pub fn base_urls(mut self, api_base: &str, login_base: Option<&str>) -> Self {
        self.endpoints = Some(Endpoints::custom(api_base, login_base));
        self
    }

    /// How tokens are obtained.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// A topic to subscribe to from the start.
    pub fn topic(mut self, topic: Topic) -> Self {
        self.topics.push(topic);
        self
    }

    /// Topics to subscribe to from the start.
    pub fn topics(mut self, topics: impl IntoIterator<Item = Topic>) -> Self {
        self.topics.extend(topics);
        self
    }

    /// The session's tuning (timeouts, backoff, renewal lead…).
    pub fn session_config(mut self, config: genesys_notify_core::Config) -> Self {
        self.session = config;
        self
    }

    /// Keeps `n` channels live at once (1, the default, or 2), each on its own socket with the
    /// whole topic set: with 2 a fault that hits one socket loses nothing, and a notification
    /// that arrives on both is delivered once. It costs a second channel of the 20 a user and
    /// client may hold and twice the socket traffic. Sets
    /// [`Config::redundancy`](genesys_notify_core::Config::redundancy): call it after
    /// [`session_config`](Self::session_config). A value other than 1 or 2 fails `connect`.
    pub fn redundancy(mut self, n: u8) -> Self {
        self.session.redundancy = n;
        self
    }

    /// A root certificate (PEM) to trust *instead of* the public roots, for every HTTP
    /// request and socket: e.g. the one `genesys-notify sim --tls --cert-out FILE` wrote, or a
    /// private gateway's.
    pub fn extra_root_pem(mut self, pem: impl Into<String>) -> Self {
        self.extra_root_pem = Some(pem.into());
        self
    }

    /// The largest socket frame accepted (default 4 MiB: the service documents no limit, and a
    /// notification describes one entity's change, usually a few kilobytes); a larger one
    /// drops the socket and the session reports the gap.
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// HTTP request timeout (default 30 s).
    pub fn http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Events buffered for a slow reader before the oldest notifications are dropped and
    /// reported as a gap (default 1024).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// Bytes of notifications buffered for a slow reader before the oldest are dropped and
    /// reported as a gap (default 32 MiB): the memory bound that `queue_capacity` alone cannot
    /// give when notifications are large.
    pub fn queue_bytes(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes.max(1);
        self
    }

    /// Seed for backoff jitter (default: from the clock).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Validates everything and starts the driver task. Returns at once: the first token,
    /// channel and socket come while you read events.
    pub async fn connect(self) -> Result<(Handle, EventStream), ConnectError> {
        let endpoints = self.endpoints.ok_or(ConnectError::MissingEndpoints)??;
        let credentials = self.credentials.ok_or(ConnectError::MissingCredentials)?;
        driver::start(driver::Setup {
            endpoints,
            credentials,
            topics: self.topics,
            session: self.session,
            extra_root_pem: self.extra_root_pem,
            max_frame_size: self.max_frame_size,
            http_timeout: self.http_timeout,
            queue_capacity: self.queue_capacity,
            queue_bytes: self.queue_bytes,
            seed: self.seed,
        })
    }
}

/// Why a [`Handle`] call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The session refused the command.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The session has ended (closed, or its driver stopped).
    #[error("the session has ended")]
    Ended,
    /// A login is required before a token can be had.
    #[error("a login is required: call Handle::login")]
    LoginRequired,
}

/// Why [`Handle::channels_in_use`] has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelsError {
    /// No token: a login is required, or the session ended.
    #[error(transparent)]
    Handle(#[from] HandleError),
    /// The request failed.
    #[error("listing the channels failed: {0}")]
    Request(genesys_notify_core::RequestError),
}

pub(crate) enum Command {
    Subscribe(Vec<Topic>, oneshot::Sender<Result<(), UsageError>>),
    Unsubscribe(Vec<Topic>, oneshot::Sender<Result<(), UsageError>>),
    Login(Secret, Duration, oneshot::Sender<Result<(), UsageError>>),
    ReportUnauthorized(String),
    Close(oneshot::Sender<()>),
}

/// Commands and state of a running session. Cheap to clone; every method is cancel-safe
/// (a dropped call's command may still take effect, never half of it).
#[derive(Clone)]
pub struct Handle {
    clock: genesys_notify_adapter_common::Clock,
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
    token: watch::Receiver<Option<Secret>>,
    held: std::sync::Arc<std::sync::Mutex<Held>>,
    rest: Rest,
}

/// What the handle needs for the application's own requests about the session.
#[derive(Clone)]
pub(crate) struct Rest {
    pub(crate) http: reqwest::Client,
    pub(crate) endpoints: std::sync::Arc<genesys_notify_adapter_common::Endpoints>,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle")
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Handle {
    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), UsageError>>) -> Command,
    ) -> Result<(), HandleError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .map_err(|_| HandleError::Ended)?;
        rx.await
            .map_err(|_| HandleError::Ended)?
            .map_err(HandleError::from)
    }

    /// Adds topics (the whole set is PUT again while live).
    pub async fn subscribe(
        &self,
        topics: impl IntoIterator<Item = Topic>,
    ) -> Result<(), HandleError> {
        let topics = topics.into_iter().collect();
        self.ask(|tx| Command::Subscribe(topics, tx)).await
    }

    /// Removes topics.
    pub async fn unsubscribe(
        &self,
        topics: impl IntoIterator<Item = Topic>,
    ) -> Result<(), HandleError> {
        let topics = topics.into_iter().collect();
        self.ask(|tx| Command::Unsubscribe(topics, tx)).await
    }

    /// Supplies a token from a new login; leaves `LoginRequired` with the same topics.
    pub async fn login(&self, token: Secret, expires_in: Duration) -> Result<(), HandleError> {
        self.ask(|tx| Command::Login(token, expires_in, tx)).await
    }

    /// The application's own API call with `token` was answered 401: one shared refresh
    /// follows (reports about older tokens are ignored).
    pub fn report_unauthorized(&self, token: &str) {
        let _ = self
            .commands
            .send(Command::ReportUnauthorized(token.to_owned()));
    }

    /// Closes every socket with 1000 and waits until they are closed. Idempotent.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Close(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// The wall-clock time of a session instant (a gap's `from` and `to`, say).
    pub fn to_system_time(&self, at: genesys_notify_core::Instant) -> std::time::SystemTime {
        self.clock.to_system_time(at)
    }

    /// Where the session stands now.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Socket entries and tasks the driver holds right now: after any number of reconnects,
    /// no more than the open sockets need.
    pub fn held(&self) -> Held {
        *self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many channels this user and OAuth client hold now, this session's included
    /// (`GET /api/v2/notifications/channels?includechannels=oauthclient`, with the session's
    /// token). The service allows 20 and removes the least recently used at the 21st, those
    /// without a socket first: compare with [`Held::channels`] to see what other programs
    /// hold. Waits for a token like [`access_token`](Self::access_token).
    pub async fn channels_in_use(&self) -> Result<usize, ChannelsError> {
        let token = self.access_token().await?;
        let request =
            genesys_notify_adapter_common::http::list_channels(&self.rest.endpoints, &token);
        let answer = driver::execute(&self.rest.http, &request, self.rest.timeout).await;
        genesys_notify_adapter_common::http::channels_in_use(answer).map_err(ChannelsError::Request)
    }

    /// A watch that changes with the status.
    pub fn status_watch(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The session's current valid access token, for the application's own REST calls.
    /// Waits while a refresh is in flight; fails when a login is required or the session ended.
    pub async fn access_token(&self) -> Result<Secret, HandleError> {
        let mut token = self.token.clone();
        let mut status = self.status.clone();
        loop {
            match *status.borrow_and_update() {
                Status::LoginRequired => return Err(HandleError::LoginRequired),
                Status::Closed | Status::Failed => return Err(HandleError::Ended),
                _ => {}
            }
            if let Some(t) = token.borrow_and_update().clone() {
                return Ok(t);
            }
            tokio::select! {
                changed = token.changed() => if changed.is_err() { return Err(HandleError::Ended) },
                changed = status.changed() => if changed.is_err() { return Err(HandleError::Ended) },
            }
        }
    }
}
