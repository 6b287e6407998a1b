//! Property tests: random sequences of answers, faults, commands and time steps (stale ids,
//! duplicates and time jumps included), with the session's invariants checked after every
//! step. Cases per property: `PROPTEST_CASES` (default 2000).
#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use genesys_notify_core::testing::{self, ChannelsMade, Pair, RequestRates};
use genesys_notify_core::{
    Action, Config, ConnId, Event, Input, Instant, ReqId, RequestError, Secret, Status, Topic,
    MAX_RETRY_AFTER,
};
use proptest::prelude::*;

const TOPICS: [&str; 4] = [
    "v2.users.u1.presence",
    "v2.users.u2.presence",
    "v2.routing.queues.q1.conversations",
    "v2.users.u3.conversations",
];

#[derive(Debug, Clone)]
enum Fail {
    S400,
    S401,
    S403,
    S404,
    S429(u64),
    S503,
    Network,
    CannotRefresh,
    /// A refusal retrying cannot fix (a redirect, a foreign connectUri).
    Refused,
}

impl Fail {
    fn error(&self) -> RequestError {
        match self {
            Fail::S400 => RequestError::status_code(400, "invalid_grant"),
            Fail::S401 => RequestError::status_code(401, "bad.credentials"),
            Fail::S403 => RequestError::status(403),
            Fail::S404 => RequestError::status(404),
            Fail::S429(s) => RequestError::rate_limited(Duration::from_secs(*s)),
            Fail::S503 => RequestError::status(503),
            Fail::Network => RequestError::network("reset"),
            Fail::CannotRefresh => RequestError::CannotRefresh("static token".into()),
            Fail::Refused => RequestError::Refused("HTTP 302 redirect to elsewhere".into()),
        }
    }
}

#[derive(Debug, Clone)]
enum FrameKind {
    Heartbeat,
    Pong,
    Notification(usize, u64),
    SocketClosing,
    TokenRevoked,
    NoLongerSubscribed,
    TakenByAnother,
    Garbage(String),
}

#[derive(Debug, Clone)]
enum Op {
    /// Answer the pending action at this index (mod len) with success (`None`) or a failure.
    Answer(usize, Option<Fail>, u64),
    /// Move time forward and call `handle_timeout`.
    Advance(u64),
    /// Jump to the next deadline.
    ToDeadline,
    Frame(usize, FrameKind),
    ServerClose(usize, Option<u16>),
    Resumed(u64),
    Subscribe(usize),
    Unsubscribe(usize),
    Login,
    Close,
    TimeBackwards(u64),
    Stale(u64),
    Duplicate,
    ReportUnauthorized,
    /// The service publishes a new notification for this topic on every open socket.
    Publish(usize),
}

fn fail() -> impl Strategy<Value = Fail> {
    prop_oneof![
        1 => Just(Fail::S400),
        2 => Just(Fail::S401),
        1 => Just(Fail::S403),
        2 => Just(Fail::S404),
        2 => (0u64..120).prop_map(Fail::S429),
        1 => (0u64..u64::MAX / 2).prop_map(Fail::S429),
        1 => Just(Fail::Refused),
        3 => Just(Fail::S503),
        3 => Just(Fail::Network),
        1 => Just(Fail::CannotRefresh),
    ]
}

fn frame_kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        3 => Just(FrameKind::Heartbeat),
        2 => Just(FrameKind::Pong),
        6 => (0..TOPICS.len(), 0u64..50).prop_map(|(t, s)| FrameKind::Notification(t, s)),
        1 => Just(FrameKind::SocketClosing),
        1 => Just(FrameKind::TokenRevoked),
        1 => Just(FrameKind::NoLongerSubscribed),
        1 => Just(FrameKind::TakenByAnother),
        1 => ".{0,40}".prop_map(FrameKind::Garbage),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        30 => (any::<usize>(), prop::option::weighted(0.2, fail()), 0u64..5).prop_map(|(i, f, ttl)| Op::Answer(i, f, ttl)),
        10 => (1u64..120_000).prop_map(Op::Advance),
        12 => Just(Op::ToDeadline),
        12 => (any::<usize>(), frame_kind()).prop_map(|(i, k)| Op::Frame(i, k)),
        3 => (any::<usize>(), prop::option::of(prop_oneof![Just(1000u16), Just(1001), Just(1006), Just(1008), Just(4001), Just(4003)])).prop_map(|(i, c)| Op::ServerClose(i, c)),
        1 => (1u64..100_000).prop_map(Op::Resumed),
        3 => (0..TOPICS.len()).prop_map(Op::Subscribe),
        2 => (0..TOPICS.len()).prop_map(Op::Unsubscribe),
        2 => Just(Op::Login),
        1 => Just(Op::Close),
        1 => (1u64..10_000).prop_map(Op::TimeBackwards),
        2 => any::<u64>().prop_map(Op::Stale),
        2 => Just(Op::Duplicate),
        1 => Just(Op::ReportUnauthorized),
        4 => (0..TOPICS.len()).prop_map(Op::Publish),
    ]
}

/// The invariant checker, answering through the shared pretend server.
struct Driver {
    p: Pair,
    cfg: Config,
    /// Create requests not yet answered, with when they were sent.
    creating: BTreeMap<ReqId, Instant>,
    token_in_flight: Option<(ReqId, Instant)>,
    last_input: Option<Input>,
    /// Tokens handed over by `login`.
    logins: u32,
    /// Per topic: when coverage was lost (while subscribed).
    lost: BTreeMap<String, Instant>,
    covered: BTreeSet<String>,
    token_floor: Instant,
    create_floor: Instant,
    rates: RequestRates,
    made: ChannelsMade,
    /// Channels the session may hold at once: one per link, plus the standby.
    max_links: usize,
    /// The next `seq` of a published notification (above any a `Frame` op sends).
    next_seq: u64,
    /// Published notifications not yet delivered, by (topic, seq); and those delivered.
    published: BTreeSet<(String, u64)>,
    delivered: BTreeSet<(String, u64)>,
    log: String,
}

fn ttl(choice: u64, options: [u64; 5]) -> Duration {
    Duration::from_secs(options[(choice % 5) as usize])
}

impl Driver {
    fn new(seed: u64, redundancy: u8) -> Driver {
        let cfg = Config {
            redundancy,
            ..Config::default()
        };
        let mut d = Driver {
            p: Pair::new(cfg.clone(), seed).unwrap(),
            cfg,
            creating: BTreeMap::new(),
            token_in_flight: None,
            last_input: None,
            logins: 0,
            lost: BTreeMap::new(),
            covered: BTreeSet::new(),
            token_floor: Instant::ZERO,
            create_floor: Instant::ZERO,
            rates: RequestRates::default(),
            made: ChannelsMade::default(),
            max_links: usize::from(redundancy) + 1,
            next_seq: 1_000_000,
            published: BTreeSet::new(),
            delivered: BTreeSet::new(),
            log: String::new(),
        };
        d.collect(false, true).unwrap();
        d
    }

    fn input(&mut self, input: Input) {
        let _ = writeln!(self.log, "{} < {input:?}", self.p.now);
        self.last_input = Some(input.clone());
        self.p.input(input);
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let was = self.p.session.status();
        let mut relaxed = false;
        let mut failure_input = false;
        match op.clone() {
            Op::Answer(i, f, t) => {
                let Some(a) = self.p.take_pending(i) else {
                    return Ok(());
                };
                failure_input = self.answer(a, f, t);
            }
            Op::Advance(ms) => {
                let woke = self.p.advance(Duration::from_millis(ms));
                prop_assert!(woke.is_ok(), "{:?}", woke);
            }
            Op::ToDeadline => {
                let woke = self.p.to_deadline();
                prop_assert!(woke.is_ok(), "{:?}", woke);
            }
            Op::Frame(i, kind) => {
                let Some(conn) = self.p.pick_open(i) else {
                    return Ok(());
                };
                let text = match kind {
                    FrameKind::Heartbeat => genesys_notify_core::HEARTBEAT.to_owned(),
                    FrameKind::Pong => genesys_notify_core::PONG.to_owned(),
                    FrameKind::Notification(t, seq) => testing::notification(TOPICS[t], seq),
                    FrameKind::SocketClosing => testing::SOCKET_CLOSING.to_owned(),
                    FrameKind::TokenRevoked => testing::TOKEN_REVOKED.to_owned(),
                    FrameKind::NoLongerSubscribed => testing::NO_LONGER_SUBSCRIBED.to_owned(),
                    FrameKind::TakenByAnother => testing::TAKEN_BY_ANOTHER_CHANNEL.to_owned(),
                    FrameKind::Garbage(g) => g,
                };
                self.input(Input::Frame { conn, text });
            }
            Op::ServerClose(i, code) => {
                let Some(conn) = self.p.pick_open(i) else {
                    return Ok(());
                };
                failure_input = true;
                let _ = writeln!(self.log, "{} < closed {conn} {code:?}", self.p.now);
                self.p.server_close(conn, code);
                self.last_input = Some(Input::Closed {
                    conn,
                    code,
                    reason: String::new(),
                });
            }
            Op::Resumed(ms) => self.input(Input::Resumed {
                slept: Duration::from_millis(ms),
            }),
            Op::Subscribe(t) => {
                let r = self
                    .p
                    .session
                    .subscribe(self.p.now, [Topic::new(TOPICS[t]).unwrap()]);
                prop_assert!(r.is_ok() || was.is_terminal());
            }
            Op::Unsubscribe(t) => {
                let topic = Topic::new(TOPICS[t]).unwrap();
                let _ = self.p.session.unsubscribe(self.p.now, [&topic]);
                self.lost.remove(TOPICS[t]);
            }
            Op::Login => {
                relaxed = true;
                self.logins += 1;
                let _ = self.p.session.login(
                    self.p.now,
                    Secret::new(format!("login{}", self.logins)),
                    Duration::from_secs(3600),
                );
                self.token_in_flight = None;
                self.creating.clear();
                self.token_floor = Instant::ZERO;
                self.create_floor = Instant::ZERO;
            }
            Op::Close => {
                self.p.session.close(self.p.now);
                self.lost.clear();
            }
            Op::TimeBackwards(ms) => {
                let earlier = self.p.now - Duration::from_millis(ms);
                self.p.session.handle_timeout(earlier);
            }
            Op::Stale(n) => {
                let req = ReqId::from_u64(n);
                let conn = ConnId::from_u64(n);
                self.input(Input::TokenIssued {
                    req,
                    token: "stale".into(),
                    expires_in: Duration::from_secs(60),
                    rotated_refresh_token: false,
                });
                self.input(Input::Subscribed {
                    req,
                    results: vec![],
                });
                self.input(Input::Closed {
                    conn,
                    code: Some(1000),
                    reason: String::new(),
                });
                self.input(Input::Opened { conn });
            }
            Op::Duplicate => {
                // A published notification sent twice on one socket is two notifications:
                // the delivered-once check does not apply to it, so it is not repeated.
                let published = matches!(&self.last_input, Some(Input::Frame { text, .. }) if published_seq(text).is_some());
                if let Some(i) = self.last_input.clone().filter(|_| !published) {
                    self.input(i);
                }
            }
            Op::ReportUnauthorized => {
                if let Some(t) = self.p.session.access_token().cloned() {
                    self.p.session.report_unauthorized(self.p.now, t.expose());
                }
            }
            Op::Publish(t) => {
                let conns: Vec<ConnId> = self.p.server.open().collect();
                self.next_seq += 1;
                let seq = self.next_seq;
                let text = testing::notification(TOPICS[t], seq);
                if !conns.is_empty() && !was.is_terminal() && was != Status::LoginRequired {
                    self.published.insert((TOPICS[t].to_owned(), seq));
                }
                for conn in conns {
                    self.input(Input::Frame {
                        conn,
                        text: text.clone(),
                    });
                }
            }
        }
        let actions = self.collect(failure_input, relaxed)?;
        if was.is_terminal() {
            prop_assert_eq!(actions, 0, "IO after close");
        }
        if was == Status::LoginRequired && !relaxed {
            prop_assert_eq!(actions, 0, "IO while login is required");
        }
        if matches!(
            self.p.session.status(),
            Status::LoginRequired | Status::Closed | Status::Failed
        ) {
            // The session forgot its requests; answers to them will be ignored.
            self.creating.clear();
            self.token_in_flight = None;
        }
        Ok(())
    }

    /// Answers an action with success or the failure `f`; `t` picks the lifetime of a token
    /// or channel (and, for a subscription, whether the service refuses the last topic).
    /// Returns true if the answer was a non-auth failure.
    fn answer(&mut self, a: Action, f: Option<Fail>, t: u64) -> bool {
        let failed = f.as_ref().is_some_and(|f| {
            !matches!(
                f,
                Fail::S401 | Fail::S403 | Fail::S400 | Fail::CannotRefresh
            )
        });
        let retry_after = match f {
            Some(Fail::S429(s)) => Some(self.p.now + Duration::from_secs(s).min(MAX_RETRY_AFTER)),
            _ => None,
        };
        match &a {
            Action::RequestToken { req } => {
                if self.token_in_flight.is_some_and(|(r, _)| r == *req) {
                    self.token_in_flight = None;
                }
                match retry_after {
                    // The session waits the server's value, capped at 10 minutes.
                    Some(floor) => self.token_floor = floor,
                    // A success answered after a Retry-After supersedes it.
                    None if f.is_none() => self.token_floor = Instant::ZERO,
                    None => {}
                }
                // 0: a token that is dead on arrival.
                self.p.server.token_ttl = ttl(t, [60, 300, 3600, 86_400, 0]);
                self.p.server.rotate_refresh_token = t == 0;
            }
            Action::CreateChannel { req, .. } => {
                self.creating.remove(req);
                if f.as_ref()
                    .is_some_and(|f| matches!(f.error(), RequestError::Http { .. }))
                {
                    self.made.refused(*req);
                }
                if let Some(floor) = retry_after {
                    self.create_floor = floor;
                }
                // 0: a channel that has already expired.
                self.p.server.channel_ttl = ttl(t, [30, 600, 3600, 86_400, 0]);
            }
            Action::PutSubscriptions { .. } => {
                if t == 3 {
                    self.p
                        .server
                        .rejected
                        .insert(TOPICS[3].to_owned(), "no permission".to_owned());
                } else {
                    self.p.server.rejected.clear();
                }
            }
            Action::Connect { .. } | Action::Send { .. } | Action::Close { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
        for input in self.p.server.answer(a, f.map(|f| f.error())) {
            self.input(input);
        }
        failed
    }

    /// Drains outputs and checks the per-step invariants. Returns how many actions came out.
    fn collect(&mut self, after_failure: bool, relaxed: bool) -> Result<usize, TestCaseError> {
        let rt = self.cfg.request_timeout;
        let mut emitted = Vec::new();
        let n = self.p.take_actions(|a| emitted.push(a.clone()));
        for a in emitted {
            let _ = writeln!(self.log, "{}   > {a:?}", self.p.now);
            if let Err(e) = self.rates.record(&a, self.p.session.now(), &self.cfg) {
                prop_assert!(false, "{}", e);
            }
            match &a {
                Action::RequestToken { req } => {
                    if let Some((_, sent)) = self.token_in_flight {
                        prop_assert!(
                            relaxed || self.p.now >= sent + rt,
                            "two token requests in flight"
                        );
                    }
                    prop_assert!(
                        self.p.now >= self.token_floor,
                        "token request before Retry-After"
                    );
                    self.token_in_flight = Some((*req, self.p.now));
                }
                Action::CreateChannel { req, .. } => {
                    prop_assert!(!after_failure, "new channel in the same step as a failure");
                    self.made.sent(*req, self.p.session.now());
                    prop_assert!(
                        self.p.now >= self.create_floor,
                        "channel request before Retry-After"
                    );
                    self.creating.insert(*req, self.p.now);
                }
                Action::Connect { .. } => {
                    prop_assert!(!after_failure, "reconnect in the same step as a failure");
                }
                Action::PutSubscriptions { topics, .. } => {
                    prop_assert!(topics.len() <= 1000);
                }
                Action::Send { .. } | Action::Close { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        if let Err(e) = self.made.check(&self.cfg) {
            prop_assert!(false, "{}", e);
        }
        let now = self.p.now;
        self.creating.retain(|_, sent| *sent + rt > now);
        prop_assert!(
            self.p.server.sockets() <= self.max_links,
            "more than {} sockets: {:?}",
            self.max_links,
            self.p.server
        );
        let mut channels = self.p.server.socket_channels();
        channels.extend(self.creating.keys().map(|r| format!("{r}")));
        prop_assert!(
            channels.len() <= self.max_links,
            "more than {} channels: {channels:?}",
            self.max_links
        );
        let mut taken = Vec::new();
        self.p.take_events(|e| taken.push(e));
        let mut events = Vec::new();
        for e in taken {
            let _ = writeln!(self.log, "{}   ! {e:?}", self.p.now);
            if let Event::Notification { topic, raw } = &e {
                if let Some(seq) = published_seq(raw) {
                    let key = (topic.as_str().to_owned(), seq);
                    prop_assert!(
                        self.delivered.insert(key.clone()),
                        "delivered twice: {:?}",
                        key
                    );
                }
            }
            events.push(e);
        }
        // A notification that reached an open socket is delivered, once, in the same step.
        for key in std::mem::take(&mut self.published) {
            prop_assert!(
                self.delivered.contains(&key),
                "published on an open socket, never delivered: {:?}",
                key
            );
        }
        self.check_events(&events)?;
        Ok(n)
    }

    fn check_events(&mut self, events: &[Event]) -> Result<(), TestCaseError> {
        let covered_now: BTreeSet<String> = self
            .p
            .session
            .covered_topics()
            .map(|t| t.as_str().to_owned())
            .collect();
        let desired: BTreeSet<String> = self
            .p
            .session
            .topics()
            .map(|t| t.as_str().to_owned())
            .collect();
        let mut gapped = BTreeSet::new();
        for e in events {
            let Event::Gap {
                topics, from, to, ..
            } = e
            else {
                continue;
            };
            prop_assert_eq!(*to, self.p.session.now());
            prop_assert!(from <= to);
            for t in topics {
                // A gap may also start in the past without an observed loss: a socket found
                // dead is reported from its last frame, while it still looked covered.
                let lost = self.lost.remove(t.as_str());
                prop_assert!(*from <= lost.unwrap_or(*from));
                prop_assert!(gapped.insert(t.as_str().to_owned()), "two gaps for {}", t);
            }
        }
        if self.p.session.status().is_terminal() {
            self.lost.clear();
        }
        for t in &self.covered {
            if desired.contains(t)
                && !covered_now.contains(t)
                && !self.p.session.status().is_terminal()
            {
                self.lost.entry(t.clone()).or_insert(self.p.session.now());
            }
        }
        for t in &covered_now {
            prop_assert!(
                !self.lost.contains_key(t),
                "{} covered again without a gap report",
                t
            );
        }
        self.lost.retain(|t, _| desired.contains(t));
        self.covered = covered_now;
        Ok(())
    }
}

/// The `seq` of a notification the `Publish` op sent (the others are below a million).
fn published_seq(raw: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(raw).ok()?;
    v["eventBody"]["seq"].as_u64().filter(|s| *s > 1_000_000)
}

fn run(seed: u64, redundancy: u8, ops: &[Op]) -> Result<String, TestCaseError> {
    let mut d = Driver::new(seed, redundancy);
    for op in ops {
        let _ = writeln!(d.log, "{} op {op:?}", d.p.now);
        if let Err(e) = d.step(op) {
            eprintln!("seed={seed} redundancy={redundancy}\n{}", d.log);
            return Err(e);
        }
    }
    Ok(d.log)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    /// Every invariant after every step, and the same seed and inputs give the same outputs.
    #[test]
    fn invariants_hold_and_runs_replay(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..150)) {
        let first = run(seed, 1, &ops)?;
        let second = run(seed, 1, &ops)?;
        prop_assert!(first == second, "same seed and inputs gave different outputs");
    }

    /// The same with two links: at most three channels and sockets, every notification that
    /// reached a socket delivered exactly once.
    #[test]
    fn invariants_hold_with_two_links(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..150)) {
        let first = run(seed, 2, &ops)?;
        let second = run(seed, 2, &ops)?;
        prop_assert!(first == second, "same seed and inputs gave different outputs");
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}
