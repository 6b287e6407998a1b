//! A blocking driver for [`genesys_notify_core::Session`]: keeps a Genesys Cloud notification
//! channel alive from a script or a plain thread, with no async runtime.
//!
//! One driver thread runs the session's drive loop; one reader thread per socket and one
//! short-lived thread per HTTP request feed it through a bounded channel. The application reads
//! events from a bounded queue with [`Client::next_event`]. The driver never waits for the
//! application: sockets keep being read (heartbeats included) however slowly events are taken,
//! and when the queue is full the oldest notifications are dropped and reported as one
//! [`GapReason::Overflow`](genesys_notify_core::GapReason::Overflow) gap. A close request is
//! served ahead of any backlog. Every decision is the session's; this crate only moves bytes.
//!
//! ```no_run
//! use std::time::Duration;
//! use genesys_notify_blocking::{Client, Config, Credentials, Endpoints, NextEventError, Region, Topic, Secret};
//! use genesys_notify_core::Event;
//!
//! let creds = Credentials::ClientCredentials {
//!     client_id: std::env::var("GENESYS_CLIENT_ID")?,
//!     client_secret: Secret::new(std::env::var("GENESYS_CLIENT_SECRET")?),
//! };
//! let mut config = Config::new(Endpoints::region(Region::EuWest1), creds);
//! config.topics.push(Topic::new("v2.users.6c1b4f1e-0000-0000-0000-000000000000.presence")?);
//! let mut client = Client::connect(config)?;
//! loop {
//!     match client.next_event(Duration::from_secs(60)) {
//!         Ok(Event::Notification { raw, .. }) => println!("{raw}"),
//!         Ok(Event::Gap { topics, reason, .. }) => eprintln!("missed events for {topics:?} ({reason}): re-read them"),
//!         Ok(other) => eprintln!("{other:?}"),
//!         // A quiet minute: the session goes on.
//!         Err(NextEventError::Timeout) => continue,
//!         // Closed, login required or fatal, and every event read.
//!         Err(NextEventError::Ended) => break,
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod driver;
mod socket;

use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use genesys_notify_adapter_common::{Clock, EventQueue, TokenSource};
pub use genesys_notify_adapter_common::{
    ConfigError, ConnectError, Credentials, Endpoints, Held, Region,
};
pub use genesys_notify_core::Action;
use genesys_notify_core::{Event, Input, Instant, Session, Status, UsageError};
pub use genesys_notify_core::{Secret, Topic};

/// Everything the client needs. Build with [`Config::new`], then adjust the public fields.
pub struct Config {
    /// Where requests go.
    pub endpoints: Endpoints,
    /// How tokens are obtained.
    pub credentials: Credentials,
    /// The topics to subscribe to from the start.
    pub topics: Vec<Topic>,
    /// The session's tuning. `session.redundancy = 2` keeps two channels on two sockets, so
    /// that a fault on one socket loses nothing (each notification is still delivered once).
    pub session: genesys_notify_core::Config,
    /// A root certificate (PEM) to trust *instead of* the public roots, for every HTTP
    /// request and socket: for example the one `genesys-notify sim --tls --cert-out FILE`
    /// wrote, or a private gateway's.
    pub extra_root_pem: Option<String>,
    /// The largest frame accepted on the socket; a larger one drops the socket (and the
    /// session reports the gap). Default 4 MiB: the service documents no limit, and a
    /// notification describes one entity's change, usually a few kilobytes.
    pub max_frame_size: usize,
    /// HTTP request timeout. Default 30 s.
    pub http_timeout: Duration,
    /// Events held for an application that does not keep up, before the oldest
    /// notifications are dropped and reported as one overflow gap. Default 1024.
    pub queue_capacity: usize,
    /// Bytes of notifications held for an application that does not keep up, with the same
    /// policy at the bound. Default 32 MiB: the memory bound that `queue_capacity` alone
    /// cannot give when notifications are large.
    pub queue_bytes: usize,
    /// Seed for backoff jitter; default: from the clock.
    pub seed: Option<u64>,
    /// Called on the driver thread with every action the session takes, before it is
    /// performed (for logs and timelines; the action's `Debug` form redacts secrets). It
    /// must return quickly.
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
            .field("queue_capacity", &self.queue_capacity)
            .field("queue_bytes", &self.queue_bytes)
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
            max_frame_size: genesys_notify_adapter_common::DEFAULT_MAX_FRAME_SIZE,
            http_timeout: Duration::from_secs(30),
            queue_capacity: 1024,
            queue_bytes: genesys_notify_adapter_common::DEFAULT_QUEUE_BYTES,
            seed: None,
            on_action: None,
        }
    }
}

/// What reader and HTTP threads hand the driver.
pub(crate) enum Msg {
    Input(Input),
    /// A frame a socket read, holding its bytes' place in the inbox until the driver is done
    /// with it.
    Read(Input, Permit),
    Warning(genesys_notify_core::LocalError),
    /// Look at the command queue.
    Wake,
}

/// Inputs held for the driver before reader threads wait (TCP then pushes back).
const INBOX: usize = 1024;

/// Bytes of frames held for the driver before reader threads wait: a count alone would let
/// 1,024 frames of megabytes each pile up while the driver is busy.
const INBOX_BYTES: usize = 8 << 20;

/// Bytes of frames read from the sockets and not yet handled by the driver.
#[derive(Clone, Default)]
pub(crate) struct InboxBytes(Arc<std::sync::atomic::AtomicUsize>);

impl InboxBytes {
    /// A place for `n` bytes, if they fit under [`INBOX_BYTES`] (a frame larger than that
    /// fits alone, into an empty inbox).
    pub(crate) fn try_take(&self, n: usize) -> Option<Permit> {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held == 0 || held.saturating_add(n) <= INBOX_BYTES).then(|| held + n)
            })
            .ok()
            .map(|_| Permit {
                bytes: self.clone(),
                n,
            })
    }
}

/// Holds `n` bytes of the inbox until dropped.
pub(crate) struct Permit {
    bytes: InboxBytes,
    n: usize,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.bytes
            .0
            .fetch_sub(self.n, std::sync::atomic::Ordering::AcqRel);
    }
}

pub(crate) enum Command {
    Subscribe(Vec<Topic>, mpsc::Sender<Result<(), UsageError>>),
    Unsubscribe(Vec<Topic>, mpsc::Sender<Result<(), UsageError>>),
    Login(Secret, Duration, mpsc::Sender<Result<(), UsageError>>),
    ReportUnauthorized(String),
    Close,
}

/// What the driver shares with the application's threads.
pub(crate) struct View {
    pub(crate) queue: EventQueue,
    pub(crate) status: Status,
    pub(crate) token: Option<Secret>,
    /// Socket entries and threads the driver holds (for tests of resource release).
    pub(crate) held: Held,
    /// Per open socket, when its last frame (any: heartbeat, pong, notification) arrived.
    pub(crate) last_frames: Vec<(genesys_notify_core::ConnId, Instant)>,
    /// When the current access token expires, as its issuer said.
    pub(crate) token_expires: Option<Instant>,
}

pub(crate) struct Shared {
    pub(crate) view: Mutex<View>,
    pub(crate) changed: Condvar,
    /// Commands for the driver; `None` once it has ended (a command then is dropped, and so
    /// is its reply channel: the caller hears "closed" at once).
    pub(crate) commands: Mutex<Option<Vec<Command>>>,
}

impl Shared {
    pub(crate) fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until `ready` gives a value or `until` passes (`None`: no limit).
    fn wait_for<T>(
        &self,
        until: Option<std::time::Instant>,
        mut ready: impl FnMut(&mut View) -> Option<T>,
    ) -> Option<T> {
        let mut v = self.view();
        loop {
            if let Some(t) = ready(&mut v) {
                return Some(t);
            }
            let left = until.map_or(Duration::from_secs(3600), |u| {
                u.saturating_duration_since(std::time::Instant::now())
            });
            if left.is_zero() {
                return None;
            }
            v = self
                .changed
                .wait_timeout(v, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn command(&self, wake: &SyncSender<Msg>, c: Command) {
        if let Some(queue) = self
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            queue.push(c);
        }
        // A full inbox means the driver is busy; it looks at commands before every input.
        let _ = wake.try_send(Msg::Wake);
    }
}

/// Why [`Client::next_event`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextEventError {
    /// Nothing happened within the wait; the session goes on. Call again.
    Timeout,
    /// The session has ended and every event was read; no event will come.
    Ended,
}

impl std::fmt::Display for NextEventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NextEventError::Timeout => "no event within the wait; the session goes on",
            NextEventError::Ended => "the session has ended and every event was read",
        })
    }
}

impl std::error::Error for NextEventError {}

/// Closes a [`Client`] from another thread (a Ctrl-C handler, say).
#[derive(Clone)]
pub struct Closer {
    shared: Arc<Shared>,
    wake: SyncSender<Msg>,
    clock: Clock,
}

impl Closer {
    /// Asks the client to close, ahead of anything queued; its `next_event` then returns the
    /// final events and [`NextEventError::Ended`]. Returns at once.
    pub fn close(&self) {
        self.shared.command(&self.wake, Command::Close);
    }

    /// [`close`](Self::close), then waits at most `timeout` for the driver to finish (sockets
    /// closed with 1000, or left after a second). True if it finished.
    pub fn close_and_wait(&self, timeout: Duration) -> bool {
        self.close();
        let until = std::time::Instant::now().checked_add(timeout);
        self.shared
            .wait_for(until, |v| v.queue.is_closed().then_some(()))
            .is_some()
    }

    /// The wall-clock time of a session instant.
    pub fn to_system_time(&self, at: Instant) -> SystemTime {
        self.clock.to_system_time(at)
    }

    /// How long ago each open socket received its last frame (heartbeats and pongs count), in
    /// the order the sockets opened. Empty while no socket is open.
    pub fn frame_ages(&self) -> Vec<Duration> {
        let now = self.clock.now();
        self.shared
            .view()
            .last_frames
            .iter()
            .map(|(_, at)| now.saturating_duration_since(*at))
            .collect()
    }

    /// Socket entries, threads and channels the client holds now (see [`Client::held`]).
    pub fn held(&self) -> Held {
        self.shared.view().held
    }

    /// When the current access token expires, as its issuer said (`None` before the first
    /// token, or for a token given without a lifetime).
    pub fn token_expires_at(&self) -> Option<SystemTime> {
        let at = self.shared.view().token_expires?;
        Some(self.clock.to_system_time(at))
    }

    /// For an application that is exiting and can no longer deliver notifications (a stopped
    /// stdout reader): every event not read yet, with the queued notifications given up as
    /// one overflow gap, so that nothing is lost without a report.
    pub fn take_unread(&self) -> Vec<Event> {
        let mut v = self.shared.view();
        v.queue.abandon_notifications();
        std::iter::from_fn(|| v.queue.pop()).collect()
    }
}

/// A running session. Read events with [`next_event`](Self::next_event) (or iterate
/// [`events`](Self::events)); a driver thread keeps the session going meanwhile.
pub struct Client {
    shared: Arc<Shared>,
    wake: SyncSender<Msg>,
    driver: Option<JoinHandle<()>>,
    clock: Clock,
    /// For the application's own requests about the session ([`Client::channels_in_use`]).
    rest: (ureq::Agent, Arc<Endpoints>),
    max_channels: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Validates the configuration and starts the session. Returns at once; the first token,
    /// channel and socket are fetched by the driver thread.
    pub fn connect(config: Config) -> Result<Client, ConnectError> {
        let clock = Clock::new();
        let seed = config.seed.unwrap_or_else(|| clock.seed());
        let max_channels = config.session.max_channels;
        let mut session = Session::new(config.session, Instant::ZERO, seed)?;
        session.subscribe(Instant::ZERO, config.topics)?;
        let tls =
            genesys_notify_adapter_common::socket::tls_config(config.extra_root_pem.as_deref())
                .map_err(ConnectError::Tls)?;
        let agent = driver::http_agent(config.extra_root_pem.as_deref(), config.http_timeout)
            .map_err(ConnectError::Tls)?;
        let (tx, rx) = mpsc::sync_channel(INBOX);
        let shared = Arc::new(Shared {
            view: Mutex::new(View {
                queue: {
                    let mut q =
                        EventQueue::new(config.queue_capacity).with_byte_budget(config.queue_bytes);
                    q.set_topics(session.topics());
                    q
                },
                status: session.status(),
                token: None,
                held: Held::default(),
                last_frames: Vec::new(),
                token_expires: None,
            }),
            changed: Condvar::new(),
            commands: Mutex::new(Some(Vec::new())),
        });
        let tokens = TokenSource::new(config.credentials, &config.endpoints);
        let endpoints = Arc::new(config.endpoints);
        let rest = (agent.clone(), Arc::clone(&endpoints));
        let d = driver::Driver::new(driver::Parts {
            session,
            rx,
            tx: tx.clone(),
            endpoints,
            tokens: Arc::new(Mutex::new(tokens)),
            agent,
            socket_config: socket::Settings {
                tls,
                max_frame_size: config.max_frame_size,
                connect_timeout: config.http_timeout,
                inbox: InboxBytes::default(),
            },
            on_action: config.on_action,
            clock: clock.clone(),
            shared: Arc::clone(&shared),
        });
        let driver = std::thread::Builder::new()
            .name("genesys-driver".into())
            .spawn(move || d.run())
            .map_err(|e| ConnectError::Start(e.to_string()))?;
        Ok(Client {
            shared,
            wake: tx,
            driver: Some(driver),
            clock,
            rest,
            max_channels,
        })
    }

    /// The channel budget this session keeps to ([`genesys_notify_core::Config::max_channels`]).
    pub fn max_channels(&self) -> u32 {
        self.max_channels
    }

    /// How many channels this user and OAuth client hold now, this session's included
    /// (`GET /api/v2/notifications/channels?includechannels=oauthclient`, with the session's
    /// token). The service allows 20 and removes the least recently used at the 21st, those
    /// without a socket first: compare with [`Held::channels`] to see what other programs
    /// hold. Blocks for one request; fails while the session has no valid token.
    pub fn channels_in_use(&self) -> Result<usize, genesys_notify_core::RequestError> {
        let token = self.access_token().ok_or_else(|| {
            genesys_notify_core::RequestError::network("no valid token yet".to_owned())
        })?;
        let request = genesys_notify_adapter_common::http::list_channels(&self.rest.1, &token);
        genesys_notify_adapter_common::http::channels_in_use(driver::execute(
            &self.rest.0,
            &request,
        ))
    }

    /// The next event, waiting at most `timeout` (like
    /// [`Receiver::recv_timeout`](std::sync::mpsc::Receiver::recv_timeout)).
    ///
    /// [`Err(NextEventError::Timeout)`](NextEventError::Timeout) only means nothing happened
    /// for `timeout`: a quiet topic can stay silent for hours while the session keeps its
    /// channel (heartbeats and renewals make no event), so wait again.
    /// [`Err(NextEventError::Ended)`](NextEventError::Ended) comes once the session has ended
    /// (closed, login required, fatal) and every event was read; it then comes at every call.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Event, NextEventError> {
        let until = std::time::Instant::now().checked_add(timeout);
        self.shared
            .wait_for(until, |v| match v.queue.pop() {
                Some(e) => Some(Ok(e)),
                None if v.queue.is_finished() => Some(Err(NextEventError::Ended)),
                None => None,
            })
            .unwrap_or(Err(NextEventError::Timeout))
    }

    /// A blocking iterator over events; it ends only once the session has ended and every
    /// event was read (never on a quiet stretch).
    pub fn events(&mut self) -> impl Iterator<Item = Event> + '_ {
        std::iter::from_fn(move || loop {
            match self.next_event(Duration::from_secs(3600)) {
                Ok(e) => return Some(e),
                Err(NextEventError::Timeout) => {}
                Err(NextEventError::Ended) => return None,
            }
        })
    }

    fn ask(
        &self,
        make: impl FnOnce(mpsc::Sender<Result<(), UsageError>>) -> Command,
    ) -> Result<(), UsageError> {
        let (tx, rx) = mpsc::channel();
        self.shared.command(&self.wake, make(tx));
        rx.recv().unwrap_or(Err(UsageError::Closed))
    }

    /// Adds topics (PUT of the whole set while live).
    pub fn subscribe(&mut self, topics: impl IntoIterator<Item = Topic>) -> Result<(), UsageError> {
        let topics = topics.into_iter().collect();
        self.ask(|tx| Command::Subscribe(topics, tx))
    }

    /// Removes topics.
    pub fn unsubscribe<'t>(
        &mut self,
        topics: impl IntoIterator<Item = &'t Topic>,
    ) -> Result<(), UsageError> {
        let topics = topics.into_iter().cloned().collect();
        self.ask(|tx| Command::Unsubscribe(topics, tx))
    }

    /// Supplies a token from a new login; leaves `LoginRequired`.
    pub fn login(&mut self, token: Secret, expires_in: Duration) -> Result<(), UsageError> {
        self.ask(|tx| Command::Login(token, expires_in, tx))
    }

    /// The application's own API call with `token` got 401: one shared refresh follows.
    pub fn report_unauthorized(&mut self, token: &str) {
        self.shared
            .command(&self.wake, Command::ReportUnauthorized(token.to_owned()));
    }

    /// The current valid access token, for the application's own REST calls.
    pub fn access_token(&self) -> Option<Secret> {
        self.shared.view().token.clone()
    }

    /// Where the session stands.
    pub fn status(&self) -> Status {
        self.shared.view().status
    }

    /// Socket entries and threads this client holds right now: after any number of
    /// reconnects, no more than the open sockets need.
    pub fn held(&self) -> Held {
        self.shared.view().held
    }

    /// A handle that closes this client from another thread.
    pub fn closer(&self) -> Closer {
        Closer {
            shared: Arc::clone(&self.shared),
            wake: self.wake.clone(),
            clock: self.clock.clone(),
        }
    }

    /// Closes every socket with 1000 and waits (about a second at most) for the close frames
    /// to go out. A stretch still uncovered is reported as a gap first. Events not read yet
    /// stay readable.
    pub fn close(&mut self) {
        self.shared.command(&self.wake, Command::Close);
        if let Some(d) = self.driver.take() {
            let _ = d.join();
        }
    }

    /// The wall-clock time of a session instant (for matching gaps to server timestamps).
    pub fn to_system_time(&self, at: Instant) -> SystemTime {
        self.clock.to_system_time(at)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}
