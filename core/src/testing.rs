//! A pretend Genesys Cloud for tests, fuzzers and benchmarks that drive a [`Session`] by hand
//! (feature `testing`; not part of the stable API).
//!
//! [`FakeServer`] answers the session's actions the way the service does, with no IO: it
//! issues tokens and channels with the lifetimes it is set to, keeps one socket per channel
//! (a second connection to a channel displaces the first), remembers which topics each channel
//! has, answers pings unless a socket is set silent, and turns a failure the caller picks into
//! the matching input. Who decides *what* to answer — a script, a property test, a fuzzer —
//! stays with the caller; [`FakeServer::answer`] only says what the answer looks like.
//!
//! [`Pair`] is a session and that server in simulated time, the drive loop every sans-IO test
//! builds on. [`live`] brings a fresh session up to `Live` by answering everything, the usual
//! start of a benchmark or an allocation test. [`RequestRates`] checks the per-minute request budgets.
//!
//! ```
//! use genesys_notify_core::testing::{live, FakeServer};
//! use genesys_notify_core::{Config, Status};
//!
//! let (session, server) = live(Config::default(), &["v2.users.u1.presence"], FakeServer::new());
//! assert_eq!(session.status(), Status::Live);
//! assert_eq!(server.open().count(), 1);
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::{
    Action, ChannelId, Config, ConnId, Event, Input, Instant, RequestError, Secret, Session, Topic,
    TopicResult,
};

/// A `v2.system.socket_closing` frame: the service's notice that it will close the socket.
pub const SOCKET_CLOSING: &str =
    r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"maintenance"}}"#;

/// A system frame saying the token behind the channel was revoked.
pub const TOKEN_REVOKED: &str =
    r#"{"topicName":"v2.system.x","eventBody":{"systemTopicType":"token_revoked"}}"#;

/// A system frame saying the channel lost its subscriptions.
pub const NO_LONGER_SUBSCRIBED: &str =
    r#"{"topicName":"v2.system.x","eventBody":{"systemTopicType":"no_longer_subscribed"}}"#;

/// A `no_longer_subscribed` frame saying another channel of this client took the topics.
pub const TAKEN_BY_ANOTHER_CHANNEL: &str = r#"{"topicName":"v2.system.no_longer_subscribed.x","eventBody":{"systemTopicType":"no_longer_subscribed","reason":"another_channel_subscribed"}}"#;

/// A notification frame for `topic` whose body carries `seq` and whose correlation id is
/// unique per topic and sequence number.
pub fn notification(topic: &str, seq: u64) -> String {
    format!(
        r#"{{"topicName":"{topic}","version":"2","eventBody":{{"seq":{seq}}},"metadata":{{"CorrelationId":"c-{topic}-{seq}"}}}}"#
    )
}

/// The channel id a connect URL of this server names (its last path segment).
fn channel_of(url: &Secret) -> String {
    url.expose()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The topics a subscription covers: itself, or each part of a combined id
/// (`v2.users.u1?presence&routingStatus`).
fn parts_of(topic: &str) -> Vec<String> {
    match topic.split_once('?') {
        Some((prefix, lasts)) => lasts.split('&').map(|l| format!("{prefix}.{l}")).collect(),
        None => vec![topic.to_owned()],
    }
}

#[derive(Debug)]
struct Socket {
    channel: String,
    open: bool,
}

/// The service's side of every request and socket, answered at once and in memory.
#[derive(Debug)]
pub struct FakeServer {
    /// `expires_in` of the next tokens issued.
    pub token_ttl: Duration,
    /// `expires_in` of the next channels created.
    pub channel_ttl: Duration,
    /// Topics the service refuses to subscribe, with the reason it gives.
    pub rejected: BTreeMap<String, String>,
    /// Sockets that have gone half-open: they carry nothing and answer no ping.
    pub silent: BTreeSet<ConnId>,
    /// Tokens issued so far (`tok1`, `tok2`, …).
    pub tokens_issued: u32,
    /// Channels created so far (`ch1`, `ch2`, …).
    pub channels_created: u32,
    /// Pings the session sent.
    pub pings: u32,
    /// Whether the next tokens come with a rotated refresh token.
    pub rotate_refresh_token: bool,
    /// Sockets asked for and not yet closed, failed or displaced.
    sockets: BTreeMap<ConnId, Socket>,
    /// Channel → the topics it has.
    subs: BTreeMap<String, BTreeSet<String>>,
}

impl Default for FakeServer {
    fn default() -> Self {
        FakeServer::new()
    }
}

impl FakeServer {
    /// A server that issues hour-long tokens and day-long channels.
    pub fn new() -> FakeServer {
        FakeServer {
            token_ttl: Duration::from_secs(3600),
            channel_ttl: Duration::from_secs(86_400),
            rejected: BTreeMap::new(),
            silent: BTreeSet::new(),
            tokens_issued: 0,
            channels_created: 0,
            pings: 0,
            rotate_refresh_token: false,
            sockets: BTreeMap::new(),
            subs: BTreeMap::new(),
        }
    }

    /// Notes an action the moment the session emits it: a socket asked for exists (connecting)
    /// and a socket the session closes is gone, before anyone answers.
    pub fn emitted(&mut self, action: &Action) {
        match action {
            Action::Connect { conn, url } => {
                self.sockets.insert(
                    *conn,
                    Socket {
                        channel: channel_of(url),
                        open: false,
                    },
                );
            }
            Action::Close { conn, .. } => {
                self.sockets.remove(conn);
            }
            Action::RequestToken { .. }
            | Action::CreateChannel { .. }
            | Action::PutSubscriptions { .. }
            | Action::Send { .. } => {}
        }
    }

    /// The inputs that answer `action`, in the order the session should see them: the
    /// failure if one is given, else the service's success. A successful connect that
    /// displaces an older socket on the same channel is followed by that socket's close.
    /// Pings are answered with a pong unless the socket is silent; closes need no answer.
    pub fn answer(&mut self, action: Action, failure: Option<RequestError>) -> Vec<Input> {
        match (action, failure) {
            (Action::RequestToken { req }, Some(error)) => vec![Input::TokenFailed { req, error }],
            (Action::RequestToken { req }, None) => {
                self.tokens_issued += 1;
                vec![Input::TokenIssued {
                    req,
                    token: Secret::new(format!("tok{}", self.tokens_issued)),
                    expires_in: self.token_ttl,
                    rotated_refresh_token: self.rotate_refresh_token,
                }]
            }
            (Action::CreateChannel { req, .. }, Some(error)) => {
                vec![Input::ChannelFailed { req, error }]
            }
            (Action::CreateChannel { req, .. }, None) => {
                self.channels_created += 1;
                let id = format!("ch{}", self.channels_created);
                let connect_uri = Secret::new(format!("wss://streaming.example/channels/{id}"));
                vec![Input::ChannelCreated {
                    req,
                    id: ChannelId::new(id),
                    connect_uri,
                    expires_in: self.channel_ttl,
                }]
            }
            (Action::Connect { conn, .. }, Some(error)) => {
                self.sockets.remove(&conn);
                vec![Input::ConnectFailed { conn, error }]
            }
            (Action::Connect { conn, url }, None) => {
                let channel = channel_of(&url);
                let displaced: Vec<ConnId> = self
                    .sockets
                    .iter()
                    .filter(|(c, s)| s.open && s.channel == channel && **c != conn)
                    .map(|(c, _)| *c)
                    .collect();
                let mut inputs = vec![Input::Opened { conn }];
                // A socket the session closed before the upgrade finished opens and is dropped
                // at once: nothing reaches it.
                match self.sockets.get_mut(&conn) {
                    Some(s) => s.open = true,
                    None => return inputs,
                }
                for old in displaced {
                    self.sockets.remove(&old);
                    inputs.push(Input::Closed {
                        conn: old,
                        code: Some(1000),
                        reason: "displaced".into(),
                    });
                }
                inputs
            }
            (Action::PutSubscriptions { req, .. }, Some(error)) => {
                vec![Input::SubscribeFailed { req, error }]
            }
            (
                Action::PutSubscriptions {
                    req,
                    channel,
                    topics,
                    ..
                },
                None,
            ) => {
                let mut results = Vec::with_capacity(topics.len());
                let mut set = BTreeSet::new();
                for t in topics {
                    // A combined id is refused if one of its parts is, and delivers under
                    // its parts' names.
                    let parts = parts_of(t.as_str());
                    match parts.iter().find_map(|p| self.rejected.get(p)) {
                        Some(why) => results.push(TopicResult::rejected(t.as_str(), why.clone())),
                        None => {
                            set.extend(parts);
                            results.push(TopicResult::permitted(t.as_str()));
                        }
                    }
                }
                self.subs.insert(channel.as_str().to_owned(), set);
                vec![Input::Subscribed { req, results }]
            }
            (Action::Send { conn, text }, _) => {
                if !text.contains("ping") {
                    return Vec::new();
                }
                self.pings += 1;
                if self.is_open(conn) && !self.silent.contains(&conn) {
                    vec![Input::Frame {
                        conn,
                        text: crate::PONG.into(),
                    }]
                } else {
                    Vec::new()
                }
            }
            (Action::Close { .. }, _) => Vec::new(),
        }
    }

    /// Whether `conn` is open as far as the service knows.
    pub fn is_open(&self, conn: ConnId) -> bool {
        self.sockets.get(&conn).is_some_and(|s| s.open)
    }

    /// The open sockets, oldest first.
    pub fn open(&self) -> impl DoubleEndedIterator<Item = ConnId> + '_ {
        self.sockets.iter().filter(|(_, s)| s.open).map(|(c, _)| *c)
    }

    /// The newest open socket.
    pub fn newest(&self) -> Option<ConnId> {
        self.open().next_back()
    }

    /// Sockets asked for and not yet gone, open or still connecting.
    pub fn sockets(&self) -> usize {
        self.sockets.len()
    }

    /// The channels behind the sockets asked for and not yet gone.
    pub fn socket_channels(&self) -> BTreeSet<String> {
        self.sockets.values().map(|s| s.channel.clone()).collect()
    }

    /// The service closes `conn` (or it dies): it is gone from the service's side.
    pub fn drop_socket(&mut self, conn: ConnId) {
        self.sockets.remove(&conn);
    }

    /// Gives `channel` these topics, as a subscription request already on the wire would.
    pub fn set_topics<'a>(&mut self, channel: &str, topics: impl IntoIterator<Item = &'a str>) {
        self.subs.insert(
            channel.to_owned(),
            topics.into_iter().map(str::to_owned).collect(),
        );
    }

    /// The sockets an event on `topic` reaches: open, not silent, with the topic on their
    /// channel.
    pub fn audience(&self, topic: &str) -> Vec<ConnId> {
        self.sockets
            .iter()
            .filter(|(c, s)| {
                s.open
                    && !self.silent.contains(c)
                    && self.subs.get(&s.channel).is_some_and(|t| t.contains(topic))
            })
            .map(|(c, _)| *c)
            .collect()
    }
}

/// A session and the pretend service it talks to, in simulated time: the one drive loop that
/// transcripts, property tests, fuzzers and benchmarks share. Which action to answer, how and
/// when stays with the caller (a script, a property test, a fuzzer); the pair does the
/// bookkeeping: every action is shown to the server as it is emitted and kept until answered,
/// answers are fed back at `now`, and a wake-up checks that the session does not spin.
///
/// ```
/// use genesys_notify_core::testing::Pair;
/// use genesys_notify_core::{Config, Status};
///
/// let mut p = Pair::new(Config::default(), 1).unwrap();
/// p.subscribe(&["v2.users.u1.presence"]);
/// p.take_actions(|_| {});
/// p.serve(|_| {}, |_| {});
/// assert_eq!(p.session.status(), Status::Live);
/// p.advance(std::time::Duration::from_secs(3600)).unwrap();
/// ```
#[derive(Debug)]
pub struct Pair {
    /// The session under test.
    pub session: Session,
    /// The service it talks to.
    pub server: FakeServer,
    /// The simulated time inputs and wake-ups happen at.
    pub now: Instant,
    /// Actions the session emitted that nobody answered yet, oldest first.
    pub pending: VecDeque<Action>,
}

impl Pair {
    /// A new session at time zero with `seed`, and a server that answers with hour-long
    /// tokens and day-long channels.
    pub fn new(config: Config, seed: u64) -> Result<Pair, crate::UsageError> {
        Ok(Pair {
            session: Session::new(config, Instant::ZERO, seed)?,
            server: FakeServer::new(),
            now: Instant::ZERO,
            pending: VecDeque::new(),
        })
    }

    /// Adds topics to the session's set at `now`. Panics on a bad topic or a refusal.
    pub fn subscribe(&mut self, topics: &[&str]) {
        let topics = topics.iter().map(|t| {
            Topic::new(*t).unwrap_or_else(|e| panic!("Pair::subscribe got a bad topic {t}: {e}"))
        });
        if let Err(e) = self.session.subscribe(self.now, topics) {
            panic!("Pair::subscribe was refused: {e}");
        }
    }

    /// Feeds one input at `now`.
    pub fn input(&mut self, input: Input) {
        self.session.handle_input(self.now, input);
    }

    /// Takes every action the session queued: each is shown to the server, then to `each`,
    /// and kept in `pending`. Returns how many there were.
    pub fn take_actions(&mut self, mut each: impl FnMut(&Action)) -> usize {
        let mut n = 0;
        while let Some(a) = self.session.poll_action() {
            n += 1;
            self.server.emitted(&a);
            each(&a);
            self.pending.push_back(a);
        }
        n
    }

    /// Takes every event the session queued.
    pub fn take_events(&mut self, mut each: impl FnMut(Event)) {
        while let Some(e) = self.session.poll_event() {
            each(e);
        }
    }

    /// Answers `action` with success or `failure` and feeds the answer in at `now`.
    pub fn answer(&mut self, action: Action, failure: Option<RequestError>) {
        for input in self.server.answer(action, failure) {
            self.input(input);
        }
    }

    /// Takes the pending action `pick` picks (modulo their number) out of `pending`.
    pub fn take_pending(&mut self, pick: usize) -> Option<Action> {
        let n = self.pending.len();
        if n == 0 {
            return None;
        }
        self.pending.remove(pick % n)
    }

    /// Answers every pending action with success, and what they lead to, until nothing is
    /// pending; `on_action` and `on_event` see what comes out. Panics if the session keeps
    /// asking (10,000 answers).
    pub fn serve(&mut self, mut on_action: impl FnMut(&Action), mut on_event: impl FnMut(Event)) {
        for _ in 0..10_000 {
            let Some(a) = self.pending.pop_front() else {
                return;
            };
            self.answer(a, None);
            self.take_actions(&mut on_action);
            self.take_events(&mut on_event);
        }
        panic!("the session keeps asking for IO at {}", self.now);
    }

    /// Moves time to `at` (never back) and lets the session handle its deadlines. An error
    /// if it then asks to be woken again at or before its `now`: a busy loop.
    pub fn wake_at(&mut self, at: Instant) -> Result<(), String> {
        self.now = self.now.max(at);
        self.session.handle_timeout(self.now);
        match self.session.poll_timeout() {
            Some((next, why)) if next <= self.session.now() => Err(format!(
                "busy loop: {why} at {next} after handle_timeout({})",
                self.session.now()
            )),
            Some(_) | None => Ok(()),
        }
    }

    /// Moves time on by `d` (see [`wake_at`](Self::wake_at)).
    pub fn advance(&mut self, d: Duration) -> Result<(), String> {
        self.wake_at(self.now + d)
    }

    /// Moves time to the session's next deadline, if it has one (see
    /// [`wake_at`](Self::wake_at)).
    pub fn to_deadline(&mut self) -> Result<(), String> {
        match self.session.poll_timeout() {
            Some((at, _)) => self.wake_at(at),
            None => Ok(()),
        }
    }

    /// The open socket `pick` picks (modulo their number), if one is open.
    pub fn pick_open(&self, pick: usize) -> Option<ConnId> {
        let open: Vec<ConnId> = self.server.open().collect();
        open.get(pick % open.len().max(1)).copied()
    }

    /// The service closes `conn` with `code` (or the connection dies: `None`).
    pub fn server_close(&mut self, conn: ConnId, code: Option<u16>) {
        self.server.drop_socket(conn);
        self.input(Input::Closed {
            conn,
            code,
            reason: String::new(),
        });
    }
}

/// A new session subscribed to `topics` and brought up to `Live` at time zero by answering
/// every action with success. Panics if the session does not get there.
pub fn live(config: Config, topics: &[&str], server: FakeServer) -> (Session, FakeServer) {
    let mut p = Pair::new(config, 1)
        .unwrap_or_else(|e| panic!("the config given to testing::live is invalid: {e}"));
    p.server = server;
    p.subscribe(topics);
    p.take_actions(|_| {});
    p.serve(|_| {}, |_| {});
    assert_eq!(
        p.session.status(),
        crate::Status::Live,
        "testing::live: the session did not get live"
    );
    (p.session, p.server)
}

/// Checks the bound on requests: whatever the server answers, each request kind goes out at
/// most its per-minute budget in any 60 s of session time (token requests: the calm budget,
/// or one a second while coverage is lost, whichever is more; channel requests:
/// [`CHANNEL_REQUESTS_PER_MINUTE`](crate::CHANNEL_REQUESTS_PER_MINUTE) — those that made a
/// channel are checked by [`ChannelsMade`]).
#[derive(Debug, Default)]
pub struct RequestRates {
    sent: BTreeMap<&'static str, VecDeque<Instant>>,
}

impl RequestRates {
    /// Records an action emitted at `now`; an error says which kind went over its bound.
    pub fn record(&mut self, action: &Action, now: Instant, cfg: &Config) -> Result<(), String> {
        let (kind, bound) = match action {
            Action::RequestToken { .. } => (
                "token",
                cfg.max_token_requests_per_minute
                    .max(crate::URGENT_TOKEN_REQUESTS_PER_MINUTE),
            ),
            Action::CreateChannel { .. } => ("channel", crate::CHANNEL_REQUESTS_PER_MINUTE),
            Action::PutSubscriptions { .. } => {
                ("subscription", cfg.max_subscription_requests_per_minute)
            }
            Action::Connect { .. } => ("upgrade", cfg.max_connects_per_minute),
            Action::Send { .. } | Action::Close { .. } => return Ok(()),
        };
        let q = self.sent.entry(kind).or_default();
        while q
            .front()
            .is_some_and(|t| *t + Duration::from_secs(60) <= now)
        {
            q.pop_front();
        }
        q.push_back(now);
        if q.len() > bound as usize {
            return Err(format!(
                "{} {kind} requests within 60 s (bound {bound}) at {now}",
                q.len()
            ));
        }
        Ok(())
    }
}

/// Checks the channel budget: channel requests that may have made a channel (all but those
/// answered with an HTTP error) stay within [`Config::channel_creations_per_minute`] in any
/// 60 s.
#[derive(Debug, Default)]
pub struct ChannelsMade {
    sent: BTreeMap<crate::ReqId, Instant>,
    refused: BTreeSet<crate::ReqId>,
}

impl ChannelsMade {
    /// A channel request went out at `now`.
    pub fn sent(&mut self, req: crate::ReqId, now: Instant) {
        self.sent.insert(req, now);
    }

    /// The request was answered with an HTTP error: it made no channel.
    pub fn refused(&mut self, req: crate::ReqId) {
        self.refused.insert(req);
    }

    /// An error if more than the budget may have made channels within 60 s.
    pub fn check(&self, cfg: &Config) -> Result<(), String> {
        let mut times: Vec<Instant> = self
            .sent
            .iter()
            .filter(|(r, _)| !self.refused.contains(r))
            .map(|(_, t)| *t)
            .collect();
        times.sort_unstable();
        let max = cfg.channel_creations_per_minute() as usize;
        for (i, start) in times.iter().enumerate() {
            let within = times[i..]
                .iter()
                .take_while(|t| **t < *start + Duration::from_secs(60))
                .count();
            if within > max {
                return Err(format!(
                    "{within} channel requests that may have made a channel within 60 s from {start} (bound {max})"
                ));
            }
        }
        Ok(())
    }
}
