//! The bodies of the fuzz targets in `fuzz/`, here so that an ordinary `cargo test` replays
//! every committed corpus file on stable (`tests/fuzz_corpus.rs`). Each panics on a broken
//! invariant, never on bad input.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use genesys_notify_adapter_common::http::{self, HttpAnswer};
use genesys_notify_adapter_common::{Credentials, Endpoints, TokenSource};
use genesys_notify_core::testing::{live, ChannelsMade, FakeServer, Pair, RequestRates};
use genesys_notify_core::{
    classify, Action, Config, ConnId, Frame, Input, Instant, ReqId, RequestError, Secret, Topic,
};

/// Arbitrary bytes into the frame classifier, then into a live session.
pub fn frame(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match classify(&text) {
        Frame::Notification { topic, .. } => {
            assert!(!topic.is_empty(), "a notification always has a topic")
        }
        Frame::System { topic, .. } => {
            assert!(topic.to_ascii_lowercase().starts_with("v2.system."))
        }
        _ => {}
    }
    let (mut s, server) = live(
        Config::default(),
        &["v2.users.fuzz.presence"],
        FakeServer::new(),
    );
    let conn = server
        .newest()
        .unwrap_or_else(|| panic!("a live session has a socket"));
    s.handle_input(
        Instant::from_secs(1),
        Input::Frame {
            conn,
            text: text.into_owned(),
        },
    );
    while s.poll_action().is_some() {}
    while s.poll_event().is_some() {}
    assert!(
        s.poll_timeout()
            .is_some_and(|(at, _)| at > Instant::from_secs(1)),
        "no deadline after a frame"
    );
}

#[derive(Debug, Arbitrary)]
enum Failure {
    Status(u16, Option<u8>, bool),
    Network,
    CannotRefresh,
    /// A refusal retrying cannot fix (a foreign connectUri, a redirect).
    Refused,
    /// 429 with any `Retry-After` at all, however huge.
    RateLimited(u64),
}

impl Failure {
    fn error(&self) -> RequestError {
        match self {
            Failure::Status(s, ra, grant) => RequestError::Http {
                status: 400 + s % 200,
                retry_after: ra.map(|r| Duration::from_secs(u64::from(r))),
                code: grant.then(|| "invalid_grant".to_owned()),
            },
            Failure::Network => RequestError::network("reset"),
            Failure::CannotRefresh => RequestError::CannotRefresh("static".into()),
            Failure::Refused => RequestError::Refused("HTTP 302 redirect to elsewhere".into()),
            Failure::RateLimited(secs) => RequestError::rate_limited(Duration::from_secs(*secs)),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op {
    Answer {
        pick: u8,
        fail: Option<Failure>,
        ttl: u32,
    },
    Advance(u32),
    ToDeadline,
    Frame {
        pick: u8,
        text: String,
    },
    ServerClose {
        pick: u8,
        code: Option<u16>,
    },
    Resumed(u32),
    Subscribe(u8),
    Unsubscribe(u8),
    Login(u32),
    Close,
    Backwards(u16),
    Stale(u64),
    ReportUnauthorized,
}

const TOPICS: [&str; 3] = [
    "v2.users.a.presence",
    "v2.users.b.presence",
    "v2.routing.queues.q.conversations",
];

/// An arbitrary sequence of inputs, commands and time steps, with the session's invariants
/// checked after every step, and the whole run replayed to check determinism.
pub fn session(data: &[u8]) {
    let first = session_run(data);
    let second = session_run(data);
    assert_eq!(
        first, second,
        "same seed and inputs must give the same outputs"
    );
}

fn session_run(data: &[u8]) -> Vec<String> {
    let mut u = Unstructured::new(data);
    let seed = u64::arbitrary(&mut u).unwrap_or(0);
    let cfg = Config::default();
    let Ok(mut p) = Pair::new(cfg.clone(), seed) else {
        return Vec::new();
    };
    let mut rates = RequestRates::default();
    let mut made = ChannelsMade::default();
    let mut trace = Vec::new();
    // Each request is checked against the bounds on requests as it goes out.
    let mut record = |a: &Action, at: Instant, made: &mut ChannelsMade| {
        check(rates.record(a, at, &cfg));
        if let Action::CreateChannel { req, .. } = a {
            made.sent(*req, at);
        }
    };
    // What the session asked for at its start goes out at its start, not after the first step.
    let start = p.session.now();
    p.take_actions(|a| record(a, start, &mut made));
    for _ in 0..200 {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        let before = p.session.status();
        match op {
            Op::Answer { pick, fail, ttl } => {
                let Some(a) = p.take_pending(usize::from(pick)) else {
                    continue;
                };
                let ttl = Duration::from_secs(u64::from(ttl % 100_000));
                p.server.token_ttl = ttl;
                p.server.channel_ttl = ttl;
                let error = fail.map(|f| f.error());
                if let (Action::CreateChannel { req, .. }, Some(RequestError::Http { .. })) =
                    (&a, &error)
                {
                    made.refused(*req);
                }
                p.answer(a, error);
            }
            Op::Advance(ms) => {
                let d = Duration::from_millis(u64::from(ms % 200_000));
                p.advance(d).unwrap_or_else(|e| panic!("{e}"));
            }
            Op::ToDeadline => p.to_deadline().unwrap_or_else(|e| panic!("{e}")),
            Op::Frame { pick, text } => {
                if let Some(conn) = p.pick_open(usize::from(pick)) {
                    p.input(Input::Frame { conn, text });
                }
            }
            Op::ServerClose { pick, code } => {
                if let Some(conn) = p.pick_open(usize::from(pick)) {
                    p.server_close(conn, code);
                }
            }
            Op::Resumed(ms) => p.input(Input::Resumed {
                slept: Duration::from_millis(u64::from(ms)),
            }),
            Op::Subscribe(t) => {
                if let Ok(topic) = Topic::new(TOPICS[usize::from(t) % TOPICS.len()]) {
                    let _ = p.session.subscribe(p.now, [topic]);
                }
            }
            Op::Unsubscribe(t) => {
                if let Ok(topic) = Topic::new(TOPICS[usize::from(t) % TOPICS.len()]) {
                    let _ = p.session.unsubscribe(p.now, [&topic]);
                }
            }
            Op::Login(ttl) => {
                let _ = p.session.login(
                    p.now,
                    Secret::new("login"),
                    Duration::from_secs(u64::from(ttl % 100_000)),
                );
            }
            Op::Close => p.session.close(p.now),
            Op::Backwards(ms) => p
                .session
                .handle_timeout(p.now - Duration::from_millis(u64::from(ms))),
            Op::Stale(n) => {
                p.input(Input::Opened {
                    conn: ConnId::from_u64(n),
                });
                p.input(Input::TokenFailed {
                    req: ReqId::from_u64(n),
                    error: RequestError::status(500),
                });
            }
            Op::ReportUnauthorized => {
                if let Some(t) = p.session.access_token().cloned() {
                    p.session.report_unauthorized(p.now, t.expose());
                }
            }
        }
        let at = p.session.now();
        let emitted = p.take_actions(|a| {
            record(a, at, &mut made);
            trace.push(format!("{a:?}"));
        });
        if before.is_terminal() {
            assert_eq!(emitted, 0, "IO after close");
        }
        p.take_events(|e| trace.push(format!("{e:?}")));
        assert!(
            p.server.sockets() <= 2,
            "more than two sockets: {:?}",
            p.server
        );
        check(made.check(&cfg));
    }
    trace
}

/// Panics with the broken bound's description.
fn check(bound: Result<(), String>) {
    if let Err(e) = bound {
        panic!("{e}");
    }
}

/// Arbitrary HTTP answers into the mapping every adapter uses.
pub fn http_answer(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let status = u16::arbitrary(&mut u).unwrap_or(200) % 600;
    let retry_after = Option::<String>::arbitrary(&mut u).unwrap_or(None);
    let date = Option::<String>::arbitrary(&mut u).unwrap_or(None);
    let body = String::arbitrary(&mut u).unwrap_or_default();
    let location = Option::<String>::arbitrary(&mut u).unwrap_or(None);
    let answer = HttpAnswer {
        status,
        retry_after: retry_after.clone(),
        date: date.clone(),
        location,
        body,
    };
    let ok = (200..300).contains(&status);
    let endpoints = Endpoints::custom("http://127.0.0.1:9", None).unwrap_or_else(|e| panic!("{e}"));
    let req = ReqId::from_u64(1);

    let (input, refused) = http::channel_answer(req, &endpoints, Ok(answer.clone()));
    match input {
        Input::ChannelCreated { connect_uri, .. } => {
            assert!(ok, "a channel from a non-2xx answer");
            assert!(
                endpoints.check_connect_uri(connect_uri.expose()).is_ok(),
                "a foreign connectUri got through"
            );
        }
        Input::ChannelFailed { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        refused.is_none(),
        "a channel answer warned instead of refusing"
    );
    match http::subscriptions_answer(req, Ok(answer.clone())) {
        Input::Subscribed { .. } => assert!(ok),
        Input::SubscribeFailed { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    if !ok {
        match http::to_request_error(&answer) {
            RequestError::Http { status: s, .. } => assert_eq!(s, status),
            RequestError::Refused(why) => {
                assert!((300..400).contains(&status), "{status} refused: {why}");
                // Only a host may be quoted, never a path (it can hold a channel id), and
                // nothing that is not a host character.
                assert!(!why.contains('/'), "{why}");
                assert!(!why.chars().any(char::is_control), "{why:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    if let Some(r) = &retry_after {
        let _ = http::parse_retry_after(r, date.as_deref());
    }
    let _ = http::expires_in(&answer.body, date.as_deref());
    let mut source = TokenSource::new(
        Credentials::RefreshToken {
            client_id: "id".into(),
            client_secret: Secret::new("secret"),
            refresh_token: Secret::new("rt"),
            persist: Box::new(|_| Ok(())),
        },
        &endpoints,
    );
    match source.finish(req, Ok(answer)) {
        (Input::TokenIssued { .. }, _) => assert!(ok),
        (Input::TokenFailed { .. }, _) => {}
        (other, _) => panic!("unexpected {other:?}"),
    }
}
