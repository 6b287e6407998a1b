//! Drives a `Session` in simulated time against the crate's `testing::FakeServer`, answering
//! with the faults a script queues, and writes every input, action, event and wake-up as a
//! line of text: the transcripts. Shared by the test files that `mod harness;` it, each of
//! which uses part of it.
#![allow(
    dead_code,
    unused_imports,
    clippy::unwrap_used,
    clippy::wildcard_enum_match_arm,
    unreachable_pub,
    missing_docs
)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::Duration;

use genesys_notify_core::{
    Action, Config, ConnId, Event, GapReason, Input, Instant, RequestError, Session, Status, Topic,
};

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn topic(s: &str) -> Topic {
    Topic::new(s).unwrap()
}

pub use genesys_notify_core::testing::{
    notification, FakeServer, Pair, SOCKET_CLOSING, TOKEN_REVOKED,
};
pub use genesys_notify_core::{HEARTBEAT, PONG};

/// The faults the script queues for the pretend server, consumed front first.
#[derive(Default)]
pub struct World {
    pub token_faults: VecDeque<RequestError>,
    pub channel_faults: VecDeque<RequestError>,
    pub connect_faults: VecDeque<RequestError>,
    pub sub_faults: VecDeque<RequestError>,
    /// When true, actions wait in `pending` until the test answers them.
    pub manual: bool,
    /// How long the server takes to answer a ping (zero: at once).
    pub pong_delay: Duration,
    /// Per-ping delays, taken in turn (cycled) instead of `pong_delay` when not empty.
    pub pong_delays: VecDeque<Duration>,
}

impl World {
    /// The next `n` token requests fail with `e`.
    pub fn fail_tokens(&mut self, n: usize, e: RequestError) {
        self.token_faults.extend(std::iter::repeat_n(e, n));
    }

    /// The next `n` channel creations fail with `e`.
    pub fn fail_channels(&mut self, n: usize, e: RequestError) {
        self.channel_faults.extend(std::iter::repeat_n(e, n));
    }

    /// The next `n` socket upgrades fail with `e`.
    pub fn fail_connects(&mut self, n: usize, e: RequestError) {
        self.connect_faults.extend(std::iter::repeat_n(e, n));
    }

    /// The next `n` subscription requests fail with `e`.
    pub fn fail_subs(&mut self, n: usize, e: RequestError) {
        self.sub_faults.extend(std::iter::repeat_n(e, n));
    }
}

pub struct Harness {
    /// The session, the pretend server, the clock and the actions not yet answered.
    pub p: Pair,
    pub log: String,
    pub world: World,
    /// Answers on their way, by when they arrive.
    pub delayed: VecDeque<(Instant, Input)>,
    pub delivered: Vec<(String, u64)>,
    pub events: Vec<Event>,
    pub actions: Vec<Action>,
    /// When each action in `actions` was emitted.
    pub action_at: Vec<Instant>,
    /// Hide pings and pongs from the log (they are still exchanged).
    pub quiet_liveness: bool,
}

impl Harness {
    pub fn new(config: Config, seed: u64) -> Harness {
        let mut h = Harness {
            p: Pair::new(config, seed).unwrap(),
            log: String::new(),
            world: World::default(),
            delayed: VecDeque::new(),
            delivered: Vec::new(),
            events: Vec::new(),
            actions: Vec::new(),
            action_at: Vec::new(),
            quiet_liveness: true,
        };
        h.line("new session");
        h.drain();
        h
    }

    /// A session already subscribed to `topics` and live at t=0.
    pub fn live(config: Config, topics: &[&str]) -> Harness {
        Harness::started(config, 7, topics, |_| {})
    }

    /// A session on a server that `setup` tuned first, subscribed to `topics`, with every
    /// request answered.
    pub fn started(
        config: Config,
        seed: u64,
        topics: &[&str],
        setup: impl FnOnce(&mut FakeServer),
    ) -> Harness {
        let mut h = Harness::new(config, seed);
        setup(&mut h.p.server);
        h.start(topics);
        h
    }

    /// A session subscribed to `topics`, live at t=0 and run for `d` since.
    pub fn live_for(config: Config, d: Duration, topics: &[&str]) -> Harness {
        let mut h = Harness::live(config, topics);
        h.run_for(d);
        h
    }

    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.log, "{:<10} {}", self.p.now.to_string(), text);
    }

    pub fn note(&mut self, text: &str) {
        let _ = writeln!(self.log, "-- {text}");
    }

    pub fn drain(&mut self) {
        let mut emitted = Vec::new();
        self.p.take_actions(|a| emitted.push(a.clone()));
        for a in emitted {
            if !(self.quiet_liveness
                && matches!(&a, Action::Send { text, .. } if text.contains("ping")))
            {
                let line = format!("  > {}", self.render_action(&a));
                self.line(&line);
            }
            self.actions.push(a);
            self.action_at.push(self.p.now);
        }
        let mut events = Vec::new();
        self.p.take_events(|e| events.push(e));
        for e in events {
            let line = format!("  ! {}", render_event(&e));
            self.line(&line);
            if let Event::Notification { raw, topic } = &e {
                let v: serde_json::Value = serde_json::from_str(raw).unwrap();
                self.delivered
                    .push((topic.clone(), v["eventBody"]["seq"].as_u64().unwrap_or(0)));
            }
            self.events.push(e);
        }
    }

    fn render_action(&self, a: &Action) -> String {
        match a {
            Action::RequestToken { req } => format!("RequestToken {req}"),
            Action::CreateChannel { req, token } => {
                format!("CreateChannel {req} token={}", token.expose())
            }
            Action::PutSubscriptions {
                req,
                channel,
                topics,
                token,
            } => format!(
                "PutSubscriptions {req} {} token={} [{}]",
                channel.as_str(),
                token.expose(),
                topics
                    .iter()
                    .map(Topic::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Action::Connect { conn, url } => format!("Connect {conn} {}", url.expose()),
            Action::Send { conn, text } => format!("Send {conn} {text}"),
            Action::Close { conn, code } => format!("Close {conn} code={code}"),
            other => format!("{other:?}"),
        }
    }

    pub fn input(&mut self, input: Input) {
        let quiet =
            self.quiet_liveness && matches!(&input, Input::Frame { text, .. } if text == PONG);
        if !quiet {
            let line = format!("< {}", render_input(&input));
            self.line(&line);
        }
        self.p.input(input);
        self.drain();
    }

    pub fn subscribe(&mut self, topics: &[&str]) {
        self.line(&format!("subscribe {topics:?}"));
        self.p
            .session
            .subscribe(self.p.now, topics.iter().map(|t| topic(t)))
            .unwrap();
        self.drain();
    }

    /// Answers every pending action the way the world is set up to, until none is left.
    pub fn serve(&mut self) {
        if self.world.manual {
            return;
        }
        let mut guard = 0;
        while let Some(a) = self.p.pending.pop_front() {
            guard += 1;
            assert!(
                guard < 10_000,
                "the session keeps asking for IO at {}",
                self.p.now
            );
            self.answer(a);
        }
    }

    /// Answers one action: with the next queued fault of its kind, else as the server would.
    pub fn answer(&mut self, a: Action) {
        let fault = match &a {
            Action::RequestToken { .. } => self.world.token_faults.pop_front(),
            Action::CreateChannel { .. } => self.world.channel_faults.pop_front(),
            Action::Connect { .. } => self.world.connect_faults.pop_front(),
            Action::PutSubscriptions { .. } => self.world.sub_faults.pop_front(),
            Action::Send { .. } | Action::Close { .. } => None,
            other => panic!("unexpected action {other:?}"),
        };
        let is_ping = matches!(&a, Action::Send { text, .. } if text.contains("ping"));
        let delay = if is_ping {
            match self.world.pong_delays.pop_front() {
                Some(d) => {
                    self.world.pong_delays.push_back(d);
                    d
                }
                None => self.world.pong_delay,
            }
        } else {
            Duration::ZERO
        };
        for input in self.p.server.answer(a, fault) {
            if !delay.is_zero() {
                // In arrival order: a pong does not overtake one sent before it.
                let at = self.delayed.back().map_or(self.p.now + delay, |(last, _)| {
                    (*last).max(self.p.now + delay)
                });
                self.delayed.push_back((at, input));
            } else {
                self.input(input);
            }
        }
    }

    /// Advances simulated time to `to`, waking the session at each deadline and answering its
    /// actions. Bounded, so a livelock fails instead of hanging.
    pub fn run_until(&mut self, to: Instant) {
        self.serve();
        for _ in 0..200_000 {
            let next_answer = self
                .delayed
                .front()
                .map(|(at, _)| *at)
                .filter(|at| *at <= to);
            let wake = self.p.session.poll_timeout().filter(|(at, _)| *at <= to);
            if let Some(at) = next_answer.filter(|a| wake.is_none_or(|(w, _)| *a <= w)) {
                self.p.now = self.p.now.max(at);
                if let Some((_, input)) = self.delayed.pop_front() {
                    // A delayed pong for a socket closed meanwhile goes nowhere.
                    let to_open = match &input {
                        Input::Frame { conn, .. } => self.p.server.is_open(*conn),
                        _ => true,
                    };
                    if to_open {
                        self.input(input);
                    }
                }
                self.serve();
                continue;
            }
            match wake {
                Some((at, why)) => {
                    assert!(at >= self.p.now, "deadline {at} before now {}", self.p.now);
                    self.p.now = at;
                    if !(self.quiet_liveness && why.to_string() == "idle") {
                        self.line(&format!("wake {why}"));
                    }
                    self.p.session.handle_timeout(at);
                    self.drain();
                    self.serve();
                }
                _ => {
                    self.p.now = to;
                    return;
                }
            }
        }
        panic!("livelock: too many wake-ups before {to}");
    }

    pub fn run_for(&mut self, d: Duration) {
        let to = self.p.now + d;
        self.run_until(to);
    }

    /// Publishes one event the way the service does: to every open socket whose channel has
    /// the topic subscribed.
    pub fn publish(&mut self, topic: &str, seq: u64) {
        for conn in self.p.server.audience(topic) {
            self.input(Input::Frame {
                conn,
                text: notification(topic, seq),
            });
        }
        self.serve();
    }

    /// Sends `socket_closing` on the live socket and brings the standby up by hand until its
    /// subscription PUT, which is returned unanswered: the test decides what the old socket
    /// carries before the new subscription applies.
    pub fn standby_until_put(&mut self) -> Action {
        self.world.manual = true;
        self.frame(SOCKET_CLOSING);
        let create = self.p.pending.pop_front().expect("no channel request");
        self.world.manual = false;
        self.answer(create);
        let connect = self.p.pending.pop_front().expect("no connect");
        self.answer(connect);
        self.p.pending.pop_front().expect("no subscription PUT")
    }

    /// The newest socket the world considers open.
    pub fn conn(&self) -> ConnId {
        self.p.server.newest().expect("no open socket")
    }

    pub fn frame(&mut self, text: &str) {
        let conn = self.conn();
        self.input(Input::Frame {
            conn,
            text: text.into(),
        });
        self.serve();
    }

    /// The server closes the newest socket.
    pub fn server_close(&mut self, code: Option<u16>) {
        self.server_close_socket(self.conn(), code);
    }

    /// The server closes socket `conn`.
    pub fn server_close_socket(&mut self, conn: ConnId, code: Option<u16>) {
        self.p.server.drop_socket(conn);
        self.input(Input::Closed {
            conn,
            code,
            reason: String::new(),
        });
        self.serve();
    }

    pub fn login(&mut self, token: &str) {
        self.line(&format!("login({token})"));
        self.p
            .session
            .login(self.p.now, token.into(), secs(3600))
            .unwrap();
        self.drain();
        self.serve();
    }

    pub fn count(&self, pred: impl Fn(&Action) -> bool) -> usize {
        self.actions.iter().filter(|a| pred(a)).count()
    }

    pub fn times_of(&self, pred: impl Fn(&Action) -> bool) -> Vec<Instant> {
        self.actions
            .iter()
            .zip(&self.action_at)
            .filter(|(a, _)| pred(a))
            .map(|(_, t)| *t)
            .collect()
    }

    /// Gaps opened because the session declared a socket dead.
    pub fn socket_dead_gaps(&self) -> usize {
        self.gap_reasons()
            .iter()
            .filter(|r| **r == GapReason::SocketDead)
            .count()
    }

    pub fn gaps(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Gap { .. }))
            .collect()
    }

    /// The notifications delivered so far: (topic, sequence number), in order.
    pub fn got(&self) -> Vec<(&str, u64)> {
        self.delivered
            .iter()
            .map(|(t, n)| (t.as_str(), *n))
            .collect()
    }

    /// Where the session stands and the reason of each gap it reported, in order.
    pub fn outcome(&self) -> (Status, Vec<GapReason>) {
        (self.p.session.status(), self.gap_reasons())
    }

    /// The reason of each gap reported, in order.
    pub fn gap_reasons(&self) -> Vec<GapReason> {
        self.gaps().iter().map(|e| gap_parts(e).3).collect()
    }

    /// The one gap reported: its topics, start, end and reason. Panics unless there is
    /// exactly one.
    pub fn one_gap(&self) -> (Vec<Topic>, Instant, Instant, GapReason) {
        let gaps = self.gaps();
        assert_eq!(gaps.len(), 1, "one gap: {gaps:?}\n{}", self.log);
        let (topics, from, to, reason) = gap_parts(gaps[0]);
        (topics.to_vec(), from, to, reason)
    }

    /// The text of each fatal error reported, in order.
    pub fn fatals(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Fatal(f) => Some(f.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Subscribes to `topics` and answers every request that follows.
    pub fn start(&mut self, topics: &[&str]) {
        self.subscribe(topics);
        self.serve();
    }
}

/// A gap's topics, start, end and reason; panics if `e` is not a gap.
pub fn gap_parts(e: &Event) -> (&[Topic], Instant, Instant, GapReason) {
    match e {
        Event::Gap {
            topics,
            from,
            to,
            reason,
        } => (topics, *from, *to, *reason),
        other => panic!("not a gap: {other:?}"),
    }
}

pub fn render_input(i: &Input) -> String {
    match i {
        Input::TokenIssued {
            req,
            token,
            expires_in,
            ..
        } => {
            format!(
                "TokenIssued {req} {} expires_in={}s",
                token.expose(),
                expires_in.as_secs()
            )
        }
        Input::TokenFailed { req, error } => format!("TokenFailed {req} {error}"),
        Input::ChannelCreated {
            req,
            id,
            expires_in,
            ..
        } => {
            format!(
                "ChannelCreated {req} {} expires_in={}s",
                id.as_str(),
                expires_in.as_secs()
            )
        }
        Input::ChannelFailed { req, error } => format!("ChannelFailed {req} {error}"),
        Input::Subscribed { req, results } => format!(
            "Subscribed {req} [{}]",
            results
                .iter()
                .map(|r| match &r.rejected {
                    None => r.topic.clone(),
                    Some(why) => format!("{} REJECTED({why})", r.topic),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Input::SubscribeFailed { req, error } => format!("SubscribeFailed {req} {error}"),
        Input::Opened { conn } => format!("Opened {conn}"),
        Input::ConnectFailed { conn, error } => format!("ConnectFailed {conn} {error}"),
        Input::Frame { conn, text } if text.len() > 240 => {
            let cut: String = text.chars().take(120).collect();
            format!("Frame {conn} {cut}… ({} bytes)", text.len())
        }
        Input::Frame { conn, text } => format!("Frame {conn} {text}"),
        Input::Closed { conn, code, reason } => format!("Closed {conn} code={code:?} {reason}"),
        Input::Resumed { slept } => format!("Resumed slept={}s", slept.as_secs()),
        other => format!("{other:?}"),
    }
}

pub fn render_event(e: &Event) -> String {
    match e {
        Event::Notification { topic, raw } => {
            let v: serde_json::Value = serde_json::from_str(raw).unwrap();
            format!("notification {topic} seq={}", v["eventBody"]["seq"])
        }
        Event::Status(s) => format!("status {s}"),
        Event::Gap {
            topics,
            from,
            to,
            reason,
        } => format!(
            "gap [{}] from {from} to {to} ({reason})",
            topics
                .iter()
                .map(Topic::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::TopicRejected { topic, reason } => format!("topic rejected {topic}: {reason}"),
        Event::TokenRotated => "token rotated".into(),
        Event::LoginRequired { reason, since } => match since {
            Some(s) => format!("login required: {reason} (uncovered since {s})"),
            None => format!("login required: {reason}"),
        },
        Event::Warning(w) => format!("warning: {w}"),
        Event::Fatal(e) => format!("fatal: {e}"),
        Event::LoginSoon { reason, expires_in } => {
            format!(
                "login soon: {reason} (the token ends in {}s)",
                expires_in.as_secs()
            )
        }
        other => format!("{other:?}"),
    }
}

/// On a failed assertion, show the transcript so far.
impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("transcript up to the failure:\n{}", self.log);
        }
    }
}
