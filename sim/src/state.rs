//! The simulated service's state: clients, tokens, channels, sockets, faults and statistics.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::fault::{Endpoint, Fault, Malformed, Twist};
use crate::{OnExpiry, SimConfig};

/// What a socket task is told to do.
#[derive(Debug)]
pub(crate) enum Out {
    Text(String),
    /// A notification the socket may write from then on (`notification_lag`).
    Later(Instant, String),
    Close(u16, &'static str),
    Drop,
    HalfOpen,
    /// Write this many tiny malformed frames, as fast as the socket takes them.
    Flood(u64),
}

pub(crate) struct AccessToken {
    pub(crate) client: String,
    pub(crate) expires_at: Instant,
}

pub(crate) struct Channel {
    pub(crate) client: String,
    pub(crate) token: String,
    pub(crate) expires_at: Instant,
    pub(crate) expires_wall: jiff::Timestamp,
    pub(crate) topics: BTreeSet<String>,
    pub(crate) socket: Option<u64>,
    pub(crate) last_used: Instant,
    pub(crate) token_dead_handled: bool,
}

pub(crate) struct SocketEntry {
    pub(crate) channel: String,
    pub(crate) tx: mpsc::Sender<Out>,
}

/// One request the simulator answered.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RequestRecord {
    /// `token`, `channels.create`, `channels.list`, `channels.head`, `subscriptions.get|put|
    /// post|delete`, `upgrade`, or `other`.
    pub endpoint: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Milliseconds since the simulator started.
    pub at_ms: u64,
}

/// Counters, for tests and for `GET /__sim/stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Every request answered, in order.
    pub requests: Vec<RequestRecord>,
    /// Notifications published per topic (the last `seq`).
    pub published: BTreeMap<String, u64>,
    /// Notifications that could not be queued to a socket (full queue).
    pub dropped_frames: u64,
    /// Notifications of the simulated organisation published (its own changes and writes
    /// through the API).
    pub org_events: u64,
    /// Channels created.
    pub channels_created: u64,
    /// Channels evicted by the per-client cap.
    pub channels_evicted: u64,
    /// Of those, channels that had a socket open: a client lost a live channel to its own
    /// (or another program's) new one.
    pub live_channels_evicted: u64,
    /// Sockets opened.
    pub sockets_opened: u64,
    /// Sockets closed (by either side).
    pub sockets_closed: u64,
    /// Sockets open now.
    pub sockets_open: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Close codes clients sent, in order (`None`: the socket ended without a close frame).
    pub client_close_codes: Vec<Option<u16>>,
    /// `exclusive_topics`: times topics were taken from a channel that had no socket to be
    /// told on (its client cannot know they left).
    pub topics_taken_unseen: u64,
    /// Topics subscribed now on a live channel that has an open socket: what would be
    /// delivered to some socket if it were published now.
    pub topics_on_sockets: BTreeSet<String>,
}

impl Stats {
    /// How many requests went to `endpoint`.
    pub fn count(&self, endpoint: &str) -> usize {
        self.requests
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .count()
    }
}

#[derive(Default)]
pub(crate) struct State {
    next: u64,
    pub(crate) refresh: BTreeMap<String, String>,
    pub(crate) access: BTreeMap<String, AccessToken>,
    pub(crate) channels: BTreeMap<String, Channel>,
    pub(crate) sockets: BTreeMap<u64, SocketEntry>,
    /// Per endpoint, scripted failures in order: (status, Retry-After, how many left).
    pub(crate) fails: BTreeMap<Endpoint, VecDeque<(Failure, u32)>>,
    /// Per endpoint, scripted twists in order, with how many are left of each.
    pub(crate) twists: BTreeMap<Endpoint, VecDeque<(Twist, u32)>>,
    /// Every topic ever subscribed: the publisher keeps producing for it.
    pub(crate) sticky_topics: BTreeSet<String>,
    /// Per topic, the wall-clock time (Unix ms) each `seq` was published at (index seq − 1).
    pub(crate) publish_log: BTreeMap<String, Vec<i64>>,
    pub(crate) stats: Stats,
    /// Authorization codes handed out and not yet redeemed.
    pub(crate) codes: BTreeMap<String, crate::pkce::Code>,
    /// While a `one` fault is applied: the only socket it hits.
    only: Option<u64>,
    /// The simulated organisation.
    pub(crate) org: crate::org::Org,
}

impl State {
    /// The next sequence number of `topic`'s notifications, counted in `published` and
    /// logged with the time it was published at.
    fn next_seq(&mut self, topic: &str) -> u64 {
        let n = self.stats.published.entry(topic.to_owned()).or_insert(0);
        *n += 1;
        let seq = *n;
        self.publish_log
            .entry(topic.to_owned())
            .or_default()
            .push(jiff::Timestamp::now().as_millisecond());
        seq
    }

    /// The queues of the open sockets whose channels carry `topic` now.
    fn carriers(&self, topic: &str, now: Instant) -> Vec<mpsc::Sender<Out>> {
        let receivers = Receivers::of(topic);
        self.channels
            .values()
            .filter(|c| c.expires_at > now && receivers.among(&c.topics))
            .filter_map(|c| c.socket)
            .filter_map(|sock| self.sockets.get(&sock).map(|s| s.tx.clone()))
            .collect()
    }

    pub(crate) fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        let nanos = jiff::Timestamp::now().subsec_nanosecond();
        format!("{prefix}{:x}{:08x}", self.next, nanos)
    }

    /// Takes one scripted failure for `endpoint`, if any.
    pub(crate) fn take_fail(&mut self, endpoint: Endpoint) -> Option<(u16, Option<u64>)> {
        take_counted(self.fails.get_mut(&endpoint)?)
    }

    /// Takes one scripted twist for `endpoint`, if any.
    pub(crate) fn take_twist(&mut self, endpoint: Endpoint) -> Option<Twist> {
        take_counted(self.twists.get_mut(&endpoint)?)
    }

    pub(crate) fn send_all(&mut self, make: impl Fn() -> Out) {
        let only = self.only;
        for (id, s) in &self.sockets {
            if only.is_some_and(|o| o != *id) {
                continue;
            }
            if s.tx.try_send(make()).is_err() {
                self.stats.dropped_frames += 1;
            }
        }
    }
}

pub(crate) struct Shared {
    pub(crate) cfg: SimConfig,
    pub(crate) rt: tokio::runtime::Handle,
    pub(crate) base_url: String,
    pub(crate) started: Instant,
    state: Mutex<State>,
}

impl Shared {
    pub(crate) fn new(cfg: SimConfig, base_url: String, rt: tokio::runtime::Handle) -> Arc<Shared> {
        let started = Instant::now();
        let state = State {
            org: crate::org::Org::new(cfg.org, fnv(&base_url)),
            ..State::default()
        };
        Arc::new(Shared {
            cfg,
            rt,
            base_url,
            started,
            state: Mutex::new(state),
        })
    }

    /// The state lock. A panic while holding it cannot leave it half-updated in a way that
    /// matters to a test server, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn since_start_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn record(&self, endpoint: &str, status: u16) {
        let at_ms = self.since_start_ms();
        self.lock().stats.requests.push(RequestRecord {
            endpoint: endpoint.to_owned(),
            status,
            at_ms,
        });
    }

    pub(crate) fn issue_refresh_token(&self) -> String {
        let mut st = self.lock();
        let t = st.fresh("sim-rt-");
        st.refresh.insert(t.clone(), self.cfg.client_id.clone());
        t
    }

    pub(crate) fn publish_log(&self, topic: &str) -> Vec<i64> {
        self.lock()
            .publish_log
            .get(topic)
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn stats(&self) -> Stats {
        let st = self.lock();
        let mut s = st.stats.clone();
        s.sockets_open = s.sockets_opened.saturating_sub(s.sockets_closed);
        let now = Instant::now();
        s.topics_on_sockets = st
            .channels
            .values()
            .filter(|c| c.socket.is_some() && c.expires_at > now)
            .flat_map(|c| c.topics.iter().cloned())
            .collect();
        s
    }

    pub(crate) fn apply_fault(self: &Arc<Self>, fault: &Fault) {
        if self.cfg.log_requests {
            eprintln!("sim: fault {fault}");
        }
        let mut st = self.lock();
        match fault {
            Fault::One(inner) => {
                let Some(&oldest) = st.sockets.keys().next() else {
                    return;
                };
                st.only = Some(oldest);
                drop(st);
                self.apply_fault(inner);
                self.lock().only = None;
            }
            Fault::Close(code) => st.send_all(|| Out::Close(*code, "closed by fault injection")),
            Fault::Displace => {
                let code = self.cfg.displaced_close_code;
                st.send_all(|| Out::Close(code, "another connection to this channel"));
            }
            Fault::Drop => st.send_all(|| Out::Drop),
            Fault::HalfOpen => st.send_all(|| Out::HalfOpen),
            Fault::SocketClosing => {
                let only = st.only;
                let targets: Vec<(String, mpsc::Sender<Out>)> = st
                    .sockets
                    .iter()
                    .filter(|(id, _)| only.is_none_or(|o| o == **id))
                    .map(|(_, s)| (s.channel.clone(), s.tx.clone()))
                    .collect();
                for (channel, tx) in targets {
                    let _ = tx.try_send(Out::Text(socket_closing_frame(&channel)));
                    let grace = self.cfg.maintenance_grace;
                    self.rt.spawn(async move {
                        tokio::time::sleep(grace).await;
                        let _ = tx.send(Out::Close(1001, "maintenance")).await;
                    });
                }
            }
            Fault::Fail {
                endpoint,
                count,
                status,
                retry_after,
            } => {
                push_counted(
                    st.fails.entry(*endpoint).or_default(),
                    (*status, *retry_after),
                    *count,
                );
            }
            Fault::Heal(endpoint) => {
                st.fails.remove(endpoint);
            }
            Fault::RevokeRefreshTokens => st.refresh.clear(),
            Fault::ExpireTokens => {
                let now = Instant::now();
                for t in st.access.values_mut() {
                    t.expires_at = now;
                }
            }
            Fault::Burst(n) => {
                drop(st);
                self.burst(*n, 0);
            }
            Fault::PaddedBurst { count, bytes } => {
                drop(st);
                self.burst(*count, usize::try_from(*bytes).unwrap_or(usize::MAX));
            }
            Fault::Flood(n) => st.send_all(|| Out::Flood(*n)),
            Fault::Twist {
                endpoint,
                count,
                twist,
            } => {
                push_counted(st.twists.entry(*endpoint).or_default(), *twist, *count);
            }
            Fault::Malformed(kind) => {
                let text = match kind {
                    Malformed::NotJson => "this is not json".to_owned(),
                    Malformed::Truncated => r#"{"topicName":"v2.users.x.presence","eventBody":{"seq":"#.to_owned(),
                    Malformed::Oversized => format!(
                        r#"{{"topicName":"v2.sim.oversized","eventBody":{{"pad":"{}"}}}}"#,
                        "x".repeat(2 << 20)
                    ),
                    Malformed::UnknownTopic => {
                        r#"{"topicName":"v2.sim.nobody.subscribed","version":"2","eventBody":{"seq":0},"metadata":{"CorrelationId":"sim-unknown"}}"#.to_owned()
                    }
                };
                st.send_all(|| Out::Text(text.clone()));
            }
        }
    }

    /// Closes or silences sockets whose channel, or whose channel's token, has expired, and
    /// forgets expired channels.
    pub(crate) fn expire(&self) {
        let now = Instant::now();
        let mut st = self.lock();
        let mut actions: Vec<(u64, OnExpiry)> = Vec::new();
        let mut gone = Vec::new();
        let tokens_dead: BTreeSet<String> = st
            .channels
            .values()
            .map(|c| c.token.clone())
            .filter(|t| st.access.get(t).is_none_or(|a| a.expires_at <= now))
            .collect();
        for (id, ch) in st.channels.iter_mut() {
            if ch.expires_at <= now {
                gone.push(id.clone());
                if let Some(s) = ch.socket {
                    actions.push((s, self.cfg.on_channel_expiry));
                }
                continue;
            }
            if !ch.token_dead_handled && tokens_dead.contains(&ch.token) {
                ch.token_dead_handled = true;
                if let Some(s) = ch.socket {
                    actions.push((s, self.cfg.on_token_expiry));
                }
            }
        }
        for id in gone {
            st.channels.remove(&id);
        }
        st.access
            .retain(|_, a| a.expires_at + std::time::Duration::from_secs(3600) > now);
        for (sock, what) in actions {
            let Some(s) = st.sockets.get(&sock) else {
                continue;
            };
            let msg = match what {
                OnExpiry::Close(code) => Out::Close(code, "expired"),
                OnExpiry::Silent => Out::HalfOpen,
                OnExpiry::KeepOpen => continue,
            };
            let _ = s.tx.try_send(msg);
        }
    }

    /// `n` notifications per subscribed topic, each body padded with `pad` bytes, sent as
    /// fast as the sockets take them.
    fn burst(self: &Arc<Self>, n: u64, pad: usize) {
        let me = Arc::clone(self);
        self.rt.spawn(async move {
            for _ in 0..n {
                // Queued under the lock like `publish`; only a full queue waits outside it.
                for (tx, out) in me.publish_now(pad) {
                    let _ = tx.send(out).await;
                }
            }
        });
    }

    /// The next event of every topic ever subscribed, with the sockets subscribed to it now.
    fn next_events(st: &mut State, pad: usize) -> Vec<(mpsc::Sender<Out>, String)> {
        let now = Instant::now();
        // The organisation publishes its own topics, with the service's bodies.
        let topics: Vec<String> = st
            .sticky_topics
            .iter()
            .filter(|t| !st.org.owns(t))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for topic in topics {
            let seq = st.next_seq(&topic);
            let frame = notification_frame(&topic, seq, pad);
            for tx in st.carriers(&topic, now) {
                out.push((tx, frame.clone()));
            }
        }
        out
    }

    /// One notification per topic ever subscribed, fanned out to every channel subscribed to
    /// it now; a socket whose queue is full misses it (counted in `dropped_frames`).
    pub(crate) fn publish(&self) {
        let full = self.publish_now(0);
        if !full.is_empty() {
            self.lock().stats.dropped_frames += full.len() as u64;
        }
    }

    /// Publishes the next event of every topic and queues it on each subscribed socket while
    /// the state is locked, so a subscription change or a ping reply cannot slip between the
    /// fan-out and the queueing. Returns what did not fit in a full queue.
    fn publish_now(&self, pad: usize) -> Vec<(mpsc::Sender<Out>, Out)> {
        let lag = self.cfg.notification_lag;
        let due = Instant::now() + lag;
        let mut st = self.lock();
        let mut full = Vec::new();
        for (tx, frame) in Self::next_events(&mut st, pad) {
            let out = if lag.is_zero() {
                Out::Text(frame)
            } else {
                Out::Later(due, frame)
            };
            if let Err(mpsc::error::TrySendError::Full(out)) = tx.try_send(out) {
                full.push((tx, out));
            }
        }
        full
    }
}

/// A scripted failure: the status to answer, and its `Retry-After` in seconds.
type Failure = (u16, Option<u64>);

/// Queues `count` of `what` as one entry: a fault's COUNT never becomes COUNT entries.
fn push_counted<T>(q: &mut VecDeque<(T, u32)>, what: T, count: u32) {
    if count > 0 {
        q.push_back((what, count));
    }
}

/// Takes one of the front entry's count, dropping the entry when none is left.
fn take_counted<T: Copy>(q: &mut VecDeque<(T, u32)>) -> Option<T> {
    let (what, left) = q.front_mut()?;
    let taken = *what;
    *left -= 1;
    if *left == 0 {
        q.pop_front();
    }
    Some(taken)
}

pub(crate) fn notification_frame(topic: &str, seq: u64, pad: usize) -> String {
    let at = jiff::Timestamp::now().to_string();
    let body = serde_json::json!({ "seq": seq, "topic": topic, "publishedAt": at });
    if pad > 0 {
        return padded_frame(topic, seq, &body, pad);
    }
    serde_json::json!({
        "topicName": topic,
        "version": "2",
        "eventBody": body,
        "metadata": { "CorrelationId": format!("sim-{seq}-{}", fnv(topic)) },
    })
    .to_string()
}

/// A notification whose body carries `pad` bytes of padding, spliced in as text: building it
/// through a JSON value would escape megabytes character by character, slow enough in a debug
/// build to starve the sockets it is for.
fn padded_frame(topic: &str, seq: u64, body: &serde_json::Value, pad: usize) -> String {
    let mut body = body.to_string();
    body.pop();
    let mut frame = String::with_capacity(body.len() + pad + 200);
    frame.push_str(r#"{"topicName":"#);
    frame.push_str(&serde_json::Value::from(topic).to_string());
    frame.push_str(r#","version":"2","eventBody":"#);
    frame.push_str(&body);
    frame.push_str(r#","pad":""#);
    frame.push_str(&"x".repeat(pad));
    frame.push_str(r#""},"metadata":{"CorrelationId":"#);
    frame.push_str(&serde_json::Value::from(format!("sim-{seq}-{}", fnv(topic))).to_string());
    frame.push_str("}}");
    frame
}

pub(crate) fn no_longer_subscribed_frame(channel: &str) -> String {
    serde_json::json!({
        "topicName": format!("v2.system.no_longer_subscribed.{channel}"),
        "version": "2",
        "eventBody": {
            "channelId": channel,
            "systemTopicType": "no_longer_subscribed",
            "reason": "another_channel_subscribed",
            "message": "another channel subscribed to this channel's topics",
        },
    })
    .to_string()
}

pub(crate) fn socket_closing_frame(channel: &str) -> String {
    serde_json::json!({
        "topicName": "v2.system.socket_closing",
        "version": "2",
        "eventBody": {
            "channelId": channel,
            "message": "WebSocket closing for maintenance; reconnect within one minute",
            "correlationId": format!("sim-maint-{}", fnv(channel)),
        },
        "metadata": { "CorrelationId": format!("sim-maint-{}", fnv(channel)) },
    })
    .to_string()
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Who receives notifications of a topic: a channel that named it, or that named a combined
/// topic (`v2.users.{id}?presence&routingStatus`) with it as a part — the service delivers
/// each part under its own name. Built once per published topic, asked per channel.
pub(crate) struct Receivers<'t> {
    topic: &'t str,
    /// `v2.users.{id}?` and `presence` for `v2.users.{id}.presence`.
    combined: Option<(String, &'t str)>,
}

impl<'t> Receivers<'t> {
    pub(crate) fn of(topic: &'t str) -> Receivers<'t> {
        let combined = topic
            .rsplit_once('.')
            .map(|(prefix, part)| (format!("{prefix}?"), part));
        Receivers { topic, combined }
    }

    /// Whether a channel subscribed to `topics` receives it.
    pub(crate) fn among(&self, topics: &BTreeSet<String>) -> bool {
        if topics.contains(self.topic) {
            return true;
        }
        let Some((combined, part)) = &self.combined else {
            return false;
        };
        topics
            .range::<str, _>((
                std::ops::Bound::Included(combined.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|t| t.starts_with(combined.as_str()))
            .any(|t| t[combined.len()..].split('&').any(|p| p == *part))
    }
}

impl Shared {
    /// Publishes one notification of the organisation (a change it made, or one written
    /// through the API) on every socket whose channel carries its topic, as the service
    /// frames it; counted in `org_events`.
    pub(crate) fn publish_org(&self, events: Vec<crate::org::Published>) {
        let now = Instant::now();
        let mut st = self.lock();
        for (topic, body) in events {
            st.stats.org_events += 1;
            // Counted and logged like the generic publisher's: the ledger accounts for it.
            let seq = st.next_seq(&topic);
            let frame = serde_json::json!({
                "topicName": topic,
                "version": "2",
                "eventBody": body,
                "metadata": { "CorrelationId": format!("sim-{seq}-{}", fnv(&topic)) },
            })
            .to_string();
            for tx in st.carriers(&topic, now) {
                if tx.try_send(Out::Text(frame.clone())).is_err() {
                    st.stats.dropped_frames += 1;
                }
            }
        }
    }

    /// One change made by the organisation itself, published.
    pub(crate) fn org_step(&self) {
        let events = self.lock().org.step();
        self.publish_org(events);
    }
}
