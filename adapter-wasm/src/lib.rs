//! The genesys-notify session for the browser. The sans-IO core and the pure part of
//! `genesys-notify-adapter-common` (host rules, HTTP requests and the mapping of their
//! answers) compiled to wasm, behind a small interface that the `genesys-notify-web`
//! JavaScript package drives with the browser's own `fetch`, `WebSocket` and timers.
//!
//! The loop is the core's: the page feeds what happened (an HTTP answer, a token, a socket
//! frame, a timer), then calls [`Driver::drain`], which returns as JSON what to do next, what
//! to tell the application and when to wake. Every decision is the session's.
//!
//! Times are milliseconds on the page's session clock (`performance.now()` minus the time
//! the page was frozen, see the JavaScript package), from 0 at the session's start.
#![deny(missing_docs)]

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use genesys_notify_adapter_common::http::{self, Finish, HttpAnswer};
use genesys_notify_adapter_common::{Endpoints, Region, Suspends};
use genesys_notify_core::{
    Action, Config, ConnId, Event, Input, Instant, ReqId, RequestError, Secret, Session, Topic,
};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::value::RawValue;
use wasm_bindgen::prelude::*;

/// HTTP exchanges in flight at most; a page that never answers cannot make this grow (the
/// session times its requests out and stops waiting; their slots are dropped past this).
const MAX_HTTP_IN_FLIGHT: usize = 64;

/// The drive loop without JavaScript, so it is tested natively.
pub struct Core {
    session: Session,
    endpoints: Arc<Endpoints>,
    /// Exchanges in flight, oldest first (ids only grow). A queue, not a map: at most 64, and
    /// a B-tree of its own would be 5 KB of the wasm file.
    http: VecDeque<(u64, Finish)>,
    next_http: u64,
    warnings: Vec<String>,
    /// The text of the last frame fed in: a notification that is exactly it goes back to the
    /// page as `"same": true` instead of its text, which the page already holds (escaping
    /// it into JSON and parsing it again is most of the cost of a notification).
    last_frame: Option<String>,
    /// What a frame's fast path took from the session and did not deliver itself: the next
    /// `drain` hands it on first.
    held_actions: Vec<Action>,
    held_events: Vec<Event>,
    /// The wake-up the page was last told (`drain`): the fast path is taken only when the
    /// session's next one is no earlier, so the page's timer stays right.
    told_wake: Option<Instant>,
    /// The freezes the page reported, for mapping instants to wall time.
    suspends: Suspends,
}

fn instant(ms: f64) -> Instant {
    if ms.is_finite() && ms > 0.0 {
        Instant::from_millis(ms as u64)
    } else {
        Instant::ZERO
    }
}

fn millis(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        Duration::from_millis(ms as u64)
    } else {
        Duration::ZERO
    }
}

/// The page's options: each name with its raw JSON, read one by one so that a wrong one is
/// named in the error (and without a general JSON value type: the wasm file stays small).
struct Options<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Options<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Fields<'a> {
            type Value = Options<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Options<'a>, M::Error> {
                let mut fields = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'a RawValue>()? {
                    fields.push((k, v));
                }
                Ok(Options(fields))
            }
        }
        d.deserialize_map(Fields(std::marker::PhantomData))
    }
}

impl Options<'_> {
    /// The option `name`, unless absent or `null`.
    fn get(&self, name: &str) -> Option<&RawValue> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| *v)
            .filter(|v| v.get() != "null")
    }

    /// A duration option given in milliseconds, if present.
    fn ms(&self, name: &str) -> Result<Option<Duration>, String> {
        self.get(name)
            .map(|v| {
                serde_json::from_str::<f64>(v.get())
                    .ok()
                    .filter(|n| n.is_finite() && *n >= 0.0)
                    .map(millis)
                    .ok_or_else(|| format!("{name} must be a number of milliseconds"))
            })
            .transpose()
    }

    fn count(&self, name: &str) -> Result<Option<u32>, String> {
        self.get(name)
            .map(|v| {
                serde_json::from_str::<u32>(v.get())
                    .map_err(|_| format!("{name} must be a whole number"))
            })
            .transpose()
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
    }
}

/// The session configuration from the page's options: the defaults, with what it names.
fn config(options: &Options<'_>) -> Result<Config, String> {
    let mut c = Config::default();
    let durations: [(&str, &mut Duration); 8] = [
        ("idleTimeoutMs", &mut c.idle_timeout),
        ("pingTimeoutMs", &mut c.ping_timeout),
        ("backoffBaseMs", &mut c.backoff_base),
        ("backoffCapMs", &mut c.backoff_cap),
        ("stableAfterMs", &mut c.stable_after),
        ("maintenanceGraceMs", &mut c.maintenance_grace),
        ("requestTimeoutMs", &mut c.request_timeout),
        ("handoverLingerMs", &mut c.handover_linger),
    ];
    for (name, field) in durations {
        if let Some(d) = options.ms(name)? {
            *field = d;
        }
    }
    let counts: [(&str, &mut u32); 6] = [
        ("maxChannels", &mut c.max_channels),
        ("maxTopicsPerChannel", &mut c.max_topics_per_channel),
        (
            "maxChannelCreationsPerMinute",
            &mut c.max_channel_creations_per_minute,
        ),
        (
            "maxTokenRequestsPerMinute",
            &mut c.max_token_requests_per_minute,
        ),
        (
            "maxSubscriptionRequestsPerMinute",
            &mut c.max_subscription_requests_per_minute,
        ),
        ("maxConnectsPerMinute", &mut c.max_connects_per_minute),
    ];
    for (name, field) in counts {
        if let Some(n) = options.count(name)? {
            *field = n;
        }
    }
    if let Some(r) = options.count("redundancy")? {
        c.redundancy = u8::try_from(r).map_err(|_| "redundancy must be 1 or 2".to_owned())?;
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

fn endpoints(options: &Options<'_>) -> Result<Endpoints, String> {
    match (options.text("apiBase"), options.text("region")) {
        (Some(api), _) => {
            Endpoints::custom(&api, options.text("loginBase").as_deref()).map_err(|e| e.to_string())
        }
        (None, Some(region)) => region
            .parse::<Region>()
            .map(Endpoints::region)
            .map_err(|e| e.to_string()),
        (None, None) => Err("give region (e.g. \"eu_west_1\") or apiBase".to_owned()),
    }
}

/// Topics from a JSON array of strings.
fn topics(list: &str) -> Result<Vec<Topic>, String> {
    let items: Vec<String> =
        serde_json::from_str(list).map_err(|_| "topics must be an array of strings".to_owned())?;
    items
        .into_iter()
        .map(|s| Topic::new(s).map_err(|e| e.to_string()))
        .collect()
}

/// One thing the page must do, as `drain` hands it over.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Todo {
    Http {
        id: u64,
        method: &'static str,
        url: String,
        headers: Vec<[String; 2]>,
        body: Option<String>,
    },
    Token {
        req: u64,
    },
    Connect {
        conn: u64,
        url: String,
    },
    Send {
        conn: u64,
        text: String,
    },
    Close {
        conn: u64,
        code: u16,
    },
}

/// An event as the page sees it.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Told {
    Notification {
        topic: String,
        /// The frame the page fed last, which it holds already.
        #[serde(skip_serializing_if = "Option::is_none")]
        same: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        raw: Option<String>,
    },
    Gap {
        topics: Vec<String>,
        #[serde(rename = "fromMs")]
        from_ms: u64,
        #[serde(rename = "toMs")]
        to_ms: u64,
        reason: String,
    },
    Status {
        status: String,
    },
    Warning {
        message: String,
    },
    TopicRejected {
        topic: String,
        reason: String,
    },
    LoginRequired {
        reason: String,
        #[serde(rename = "sinceMs")]
        since_ms: Option<u64>,
    },
    TokenRotated,
    LoginSoon {
        reason: String,
        #[serde(rename = "expiresInMs")]
        expires_in_ms: u64,
    },
    Fatal {
        message: String,
    },
}

/// What `drain` returns.
#[derive(Serialize)]
struct Drained {
    #[serde(rename = "do")]
    todo: Vec<Todo>,
    events: Vec<Told>,
    #[serde(rename = "wakeMs")]
    wake_ms: Option<u64>,
}

/// An event as the page sees it; a notification whose text is `last_frame` says `same`.
fn told(e: Event, last_frame: Option<&str>) -> Told {
    match e {
        Event::Notification { topic, raw } if last_frame == Some(raw.as_str()) => {
            Told::Notification {
                topic,
                same: Some(true),
                raw: None,
            }
        }
        Event::Notification { topic, raw } => Told::Notification {
            topic,
            same: None,
            raw: Some(raw),
        },
        Event::Gap {
            topics,
            from,
            to,
            reason,
        } => Told::Gap {
            topics: topics.iter().map(|t| t.as_str().to_owned()).collect(),
            from_ms: from.as_millis(),
            to_ms: to.as_millis(),
            reason: reason.to_string(),
        },
        Event::Status(s) => Told::Status {
            status: s.to_string(),
        },
        Event::Warning(w) => Told::Warning {
            message: w.to_string(),
        },
        Event::TopicRejected { topic, reason } => Told::TopicRejected { topic, reason },
        Event::LoginRequired { reason, since } => Told::LoginRequired {
            reason: reason.to_string(),
            since_ms: since.map(Instant::as_millis),
        },
        Event::TokenRotated => Told::TokenRotated,
        Event::LoginSoon { reason, expires_in } => Told::LoginSoon {
            reason: reason.to_string(),
            expires_in_ms: expires_in.as_millis() as u64,
        },
        Event::Fatal(f) => Told::Fatal {
            message: f.to_string(),
        },
        other => Told::Warning {
            message: format!("unhandled event: {other:?}"),
        },
    }
}

impl Core {
    /// A session from the page's options (JSON): `region` or `apiBase` (+ `loginBase`),
    /// `topics`, and optionally `redundancy` and the session tuning (`idleTimeoutMs`,
    /// `pingTimeoutMs`, `backoffBaseMs`, …, `maxConnectsPerMinute`: see the package types).
    pub fn new(options: &str, now_ms: f64, seed: u64) -> Result<Core, String> {
        let options: Options<'_> =
            serde_json::from_str(options).map_err(|e| format!("options are not JSON: {e}"))?;
        let cfg = config(&options)?;
        let endpoints = Arc::new(endpoints(&options)?);
        let wanted = match options.get("topics") {
            Some(list) => topics(list.get())?,
            None => Vec::new(),
        };
        let now = instant(now_ms);
        let mut session = Session::new(cfg, now, seed).map_err(|e| e.to_string())?;
        session.subscribe(now, wanted).map_err(|e| e.to_string())?;
        Ok(Core {
            session,
            endpoints,
            http: VecDeque::new(),
            next_http: 1,
            held_actions: Vec::new(),
            held_events: Vec::new(),
            told_wake: None,
            suspends: Suspends::default(),
            warnings: Vec::new(),
            last_frame: None,
        })
    }

    /// What to do now, what to tell the application, and when to wake, as JSON:
    /// `{"do": [...], "events": [...], "wakeMs": n | null}`.
    pub fn drain(&mut self) -> String {
        let mut todo = Vec::new();
        let held: Vec<Action> = std::mem::take(&mut self.held_actions);
        let polled = std::iter::from_fn(|| self.session.poll_action()).collect::<Vec<_>>();
        for a in held.into_iter().chain(polled) {
            if let Some(v) = self.perform(a) {
                todo.push(v);
            }
        }
        let mut events: Vec<Told> = self
            .warnings
            .drain(..)
            .map(|message| Told::Warning { message })
            .collect();
        let last = self.last_frame.take();
        for e in std::mem::take(&mut self.held_events) {
            events.push(told(e, last.as_deref()));
        }
        while let Some(e) = self.session.poll_event() {
            events.push(told(e, last.as_deref()));
        }
        let wake_at = self.session.poll_timeout().map(|(at, _)| at);
        self.told_wake = wake_at;
        let drained = Drained {
            todo,
            events,
            wake_ms: wake_at.map(Instant::as_millis),
        };
        // Strings and numbers only: serializing cannot fail.
        serde_json::to_string(&drained).unwrap_or_default()
    }

    fn perform(&mut self, action: Action) -> Option<Todo> {
        let action = match http::rest_exchange(&self.endpoints, action) {
            Ok((request, finish)) => {
                let id = self.next_http;
                self.next_http += 1;
                if self.http.len() >= MAX_HTTP_IN_FLIGHT {
                    // The oldest has long been timed out by the session.
                    self.http.pop_front();
                }
                self.http.push_back((id, finish));
                let headers = request
                    .headers
                    .into_iter()
                    .map(|(n, v)| [n.to_owned(), v])
                    .collect();
                return Some(Todo::Http {
                    id,
                    method: request.method,
                    url: request.url,
                    headers,
                    body: request.body,
                });
            }
            Err(other) => other,
        };
        match action {
            Action::RequestToken { req } => Some(Todo::Token { req: req.as_u64() }),
            Action::Connect { conn, url } => Some(Todo::Connect {
                conn: conn.as_u64(),
                url: url.expose().to_owned(),
            }),
            Action::Send { conn, text } => Some(Todo::Send {
                conn: conn.as_u64(),
                text,
            }),
            Action::Close { conn, code } => Some(Todo::Close {
                conn: conn.as_u64(),
                code,
            }),
            _ => {
                // Only an action added to the core after this adapter: say so without
                // formatting it (its Debug code would ship in the browser build).
                self.warnings
                    .push("the browser adapter cannot perform an action of a newer core".into());
                None
            }
        }
    }

    /// Feeds a text frame and, when all it did was deliver itself (or nothing), says so
    /// without a `drain`: `Some(topic)` for a notification that is exactly this frame,
    /// `Some("")` for a frame that changed nothing the page must act on, `None` when the page
    /// must `drain` (an action, another event, a warning, an earlier wake-up).
    pub fn frame_fast(&mut self, now_ms: f64, conn: ConnId, text: String) -> Option<String> {
        self.last_frame = Some(text.clone());
        self.input(now_ms, Input::Frame { conn, text });
        let wake = self.session.poll_timeout().map(|(at, _)| at);
        let later = match (wake, self.told_wake) {
            (None, None) => true,
            (Some(w), Some(told)) => w >= told,
            (Some(_), None) | (None, Some(_)) => false,
        };
        let quiet = later && self.warnings.is_empty() && self.held_actions.is_empty();
        if let Some(a) = self.session.poll_action() {
            self.held_actions.push(a);
            return None;
        }
        let first = self.session.poll_event();
        let second = first.as_ref().and_then(|_| self.session.poll_event());
        match (first, second) {
            (None, None) if quiet && self.held_events.is_empty() => {
                self.last_frame = None;
                Some(String::new())
            }
            (Some(Event::Notification { topic, raw }), None)
                if quiet
                    && self.held_events.is_empty()
                    && self.last_frame.as_deref() == Some(raw.as_str()) =>
            {
                self.last_frame = None;
                Some(topic)
            }
            (first, second) => {
                self.held_events.extend(first);
                self.held_events.extend(second);
                None
            }
        }
    }

    /// Feeds one input.
    pub fn input(&mut self, now_ms: f64, input: Input) {
        self.session.handle_input(instant(now_ms), input);
    }

    /// The answer to HTTP exchange `id`; `status` 0 with `failure` set: no answer.
    pub fn http_done(&mut self, now_ms: f64, id: u64, answer: Result<HttpAnswer, String>) {
        let Some(at) = self.http.iter().position(|(i, _)| *i == id) else {
            return;
        };
        let Some((_, finish)) = self.http.remove(at) else {
            return;
        };
        let (input, local) = finish(answer);
        if let Some(w) = local {
            self.warnings.push(w.to_string());
        }
        self.input(now_ms, input);
    }
}

/// The session, for JavaScript. Every method that takes `now_ms` is an input or a command;
/// call [`drain`](Self::drain) after each.
#[wasm_bindgen]
pub struct Driver {
    core: Core,
}

fn js_err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl Driver {
    /// A session from its options (JSON; see [`Core::new`]).
    #[wasm_bindgen(constructor)]
    pub fn new(options: &str, now_ms: f64, seed: f64) -> Result<Driver, JsError> {
        let seed = if seed.is_finite() {
            seed.abs() as u64
        } else {
            1
        };
        Core::new(options, now_ms, seed)
            .map(|core| Driver { core })
            .map_err(js_err)
    }

    /// What to do, what to tell, when to wake (JSON).
    pub fn drain(&mut self) -> String {
        self.core.drain()
    }

    /// Wakes the session (its timer fired).
    pub fn timeout(&mut self, now_ms: f64) {
        self.core.session.handle_timeout(instant(now_ms));
    }

    /// The page was frozen (or its timers throttled) for `slept_ms` that the session clock
    /// does not count: tokens and channels age by it and every socket must prove itself again.
    pub fn resumed(&mut self, now_ms: f64, slept_ms: f64) {
        self.core.suspends.record(instant(now_ms), millis(slept_ms));
        self.core.input(
            now_ms,
            Input::Resumed {
                slept: millis(slept_ms),
            },
        );
    }

    /// How long the page was frozen before session instant `at_ms`: add it to map the
    /// instant to wall time.
    pub fn slept_before_ms(&self, at_ms: f64) -> f64 {
        self.core.suspends.slept_before(instant(at_ms)).as_millis() as f64
    }

    /// An HTTP answer: status, the `Retry-After`, `Date` and `Location` headers, the body.
    #[allow(clippy::too_many_arguments)]
    pub fn http_answer(
        &mut self,
        now_ms: f64,
        id: f64,
        status: u16,
        retry_after: Option<String>,
        date: Option<String>,
        location: Option<String>,
        body: String,
    ) {
        let answer = HttpAnswer {
            status,
            retry_after,
            date,
            location,
            body,
        };
        self.core.http_done(now_ms, id as u64, Ok(answer));
    }

    /// An HTTP exchange that got no answer (network, CORS, abort).
    pub fn http_failed(&mut self, now_ms: f64, id: f64, message: String) {
        self.core.http_done(now_ms, id as u64, Err(message));
    }

    /// The page's `getToken()` gave a token.
    pub fn token_issued(&mut self, now_ms: f64, req: f64, token: String, expires_in_s: f64) {
        self.core.input(
            now_ms,
            Input::TokenIssued {
                req: ReqId::from_u64(req as u64),
                token: Secret::new(token),
                expires_in: millis(expires_in_s * 1000.0),
                rotated_refresh_token: false,
            },
        );
    }

    /// The page's `getToken()` failed. `retryable`: a network problem worth retrying;
    /// otherwise the page cannot get a token without its user (a login is required).
    pub fn token_failed(&mut self, now_ms: f64, req: f64, message: String, retryable: bool) {
        let error = if retryable {
            RequestError::network(message)
        } else {
            RequestError::CannotRefresh(message)
        };
        self.core.input(
            now_ms,
            Input::TokenFailed {
                req: ReqId::from_u64(req as u64),
                error,
            },
        );
    }

    /// A socket opened.
    pub fn opened(&mut self, now_ms: f64, conn: f64) {
        self.core.input(
            now_ms,
            Input::Opened {
                conn: ConnId::from_u64(conn as u64),
            },
        );
    }

    /// A socket failed before it opened.
    pub fn connect_failed(&mut self, now_ms: f64, conn: f64, message: String) {
        self.core.input(
            now_ms,
            Input::ConnectFailed {
                conn: ConnId::from_u64(conn as u64),
                error: RequestError::network(message),
            },
        );
    }

    /// A text frame arrived. When all it did was deliver itself, the answer says so and
    /// no [`drain`](Self::drain) is needed: the topic of the notification that is exactly this
    /// frame, or `""` when nothing is to be done. `undefined`: call `drain` (where a
    /// notification that is exactly this frame comes as `"same": true`, without its text).
    pub fn frame(&mut self, now_ms: f64, conn: f64, text: String) -> Option<String> {
        self.core
            .frame_fast(now_ms, ConnId::from_u64(conn as u64), text)
    }

    /// A socket closed; `code` 1006 means no close frame came.
    pub fn closed(&mut self, now_ms: f64, conn: f64, code: u16, reason: String) {
        let code = (code != 1006 && code != 0).then_some(code);
        self.core.input(
            now_ms,
            Input::Closed {
                conn: ConnId::from_u64(conn as u64),
                code,
                reason,
            },
        );
    }

    /// Adds topics (a JSON array of strings).
    pub fn subscribe(&mut self, now_ms: f64, topics_json: &str) -> Result<(), JsError> {
        let wanted = topics(topics_json).map_err(js_err)?;
        self.core
            .session
            .subscribe(instant(now_ms), wanted)
            .map_err(js_err)
    }

    /// Removes topics (a JSON array of strings).
    pub fn unsubscribe(&mut self, now_ms: f64, topics_json: &str) -> Result<(), JsError> {
        let gone = topics(topics_json).map_err(js_err)?;
        self.core
            .session
            .unsubscribe(instant(now_ms), gone.iter())
            .map_err(js_err)
    }

    /// A token from a new login.
    pub fn login(&mut self, now_ms: f64, token: String, expires_in_s: f64) -> Result<(), JsError> {
        self.core
            .session
            .login(
                instant(now_ms),
                Secret::new(token),
                millis(expires_in_s * 1000.0),
            )
            .map_err(js_err)
    }

    /// The application's own API call with `token` was answered 401: if that is the session's
    /// token, it is dropped and one refresh follows.
    pub fn report_unauthorized(&mut self, now_ms: f64, token: &str) {
        self.core
            .session
            .report_unauthorized(instant(now_ms), token);
    }

    /// Closes every socket with 1000 and stops.
    pub fn close(&mut self, now_ms: f64) {
        self.core.session.close(instant(now_ms));
    }

    /// `connecting`, `live`, `recovering`, `login_required`, `closed` or `failed`.
    pub fn status(&self) -> String {
        self.core.session.status().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// An event as the page reads it.
    fn event_json(e: Event, last_frame: Option<&str>) -> Value {
        serde_json::to_value(told(e, last_frame)).unwrap()
    }

    fn drained(c: &mut Core) -> Value {
        serde_json::from_str(&c.drain()).unwrap()
    }

    /// Answers the token request that `out` (a drain) asked for first.
    fn issue_token(c: &mut Core, out: &Value, now_ms: f64) {
        let req = out["do"][0]["req"].as_u64().unwrap();
        c.input(
            now_ms,
            Input::TokenIssued {
                req: ReqId::from_u64(req),
                token: Secret::new("tok"),
                expires_in: Duration::from_secs(3600),
                rotated_refresh_token: false,
            },
        );
    }

    #[test]
    fn options_are_checked_and_say_what_is_wrong() {
        let err = |o: &str| Core::new(o, 0.0, 1).err().unwrap();
        assert!(err("{").contains("not JSON"));
        assert!(err("{}").contains("region"));
        assert!(err(r#"{"region":"mars"}"#).contains("unknown region"));
        assert!(err(r#"{"apiBase":"http://example.com"}"#).contains("loopback"));
        assert!(err(r#"{"region":"eu_west_1","topics":["nope"]}"#).contains("invalid topic"));
        assert!(err(r#"{"region":"eu_west_1","redundancy":3}"#).contains("redundancy"));
        assert!(err(r#"{"region":"eu_west_1","idleTimeoutMs":"x"}"#).contains("idleTimeoutMs"));
        assert!(Core::new(
            r#"{"region":"eu_west_1","topics":["v2.users.a.presence"]}"#,
            0.0,
            1
        )
        .is_ok());
    }

    #[test]
    fn the_loop_asks_for_a_token_then_an_http_channel_request_and_maps_its_answer() {
        let mut c = Core::new(
            r#"{"apiBase":"http://127.0.0.1:9","topics":["v2.users.a.presence"]}"#,
            0.0,
            1,
        )
        .unwrap();
        let out = drained(&mut c);
        assert_eq!(out["do"][0]["kind"], "token");
        assert_eq!(out["events"][0]["type"], "status");
        issue_token(&mut c, &out, 5.0);
        let out = drained(&mut c);
        let http = &out["do"][0];
        assert_eq!(http["kind"], "http");
        assert_eq!(http["method"], "POST");
        assert_eq!(
            http["url"],
            "http://127.0.0.1:9/api/v2/notifications/channels"
        );
        assert!(out["wakeMs"].as_u64().is_some());
        // A channel on a foreign host is refused before anything connects to it.
        let body = r#"{"id":"streaming-1","connectUri":"wss://elsewhere.example/channels/streaming-1","expires":"2099-01-01T00:00:00Z"}"#;
        c.http_done(
            10.0,
            http["id"].as_u64().unwrap(),
            Ok(HttpAnswer {
                status: 200,
                body: body.to_owned(),
                ..HttpAnswer::default()
            }),
        );
        let out = drained(&mut c);
        assert!(
            !out["do"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == "connect"),
            "{out}"
        );
        assert!(out["events"].to_string().contains("connectUri"), "{out}");
    }

    #[test]
    fn a_notification_that_is_the_frame_fed_in_comes_back_without_its_text() {
        let mut c = Core::new(
            r#"{"region":"eu_west_1","topics":["v2.users.a.presence"]}"#,
            0.0,
            1,
        )
        .unwrap();
        c.drain();
        // No socket is open: the frame is ignored, and `same` is never said of another text.
        assert_eq!(
            c.frame_fast(1.0, ConnId::from_u64(99), "{}".into()),
            Some(String::new())
        );
        let out = drained(&mut c);
        assert_eq!(out["events"], json!([]));
        let e = event_json(
            Event::Notification {
                topic: "v2.users.a.presence".into(),
                raw: "x".into(),
            },
            Some("x"),
        );
        assert_eq!(e["same"], true);
        assert!(e.get("raw").is_none());
        let e = event_json(
            Event::Notification {
                topic: "v2.users.a.presence".into(),
                raw: "x".into(),
            },
            Some("y"),
        );
        assert_eq!(e["raw"], "x");
    }

    #[test]
    fn stale_and_unknown_answers_are_ignored() {
        let mut c = Core::new(r#"{"region":"eu_west_1"}"#, 0.0, 1).unwrap();
        c.drain();
        c.http_done(1.0, 999, Err("late".into()));
        let out = drained(&mut c);
        assert_eq!(out["do"], json!([]));
    }

    /// Drives a session to live over the JSON loop, as the page does.
    fn live() -> (Core, ConnId) {
        let mut c = Core::new(
            r#"{"apiBase":"http://127.0.0.1:9","topics":["v2.users.a.presence"]}"#,
            0.0,
            1,
        )
        .unwrap();
        let out = drained(&mut c);
        issue_token(&mut c, &out, 1.0);
        let out = drained(&mut c);
        let body = r#"{"id":"streaming-1","connectUri":"ws://127.0.0.1:9/channels/streaming-1","expires":"2099-01-01T00:00:00Z"}"#;
        let answer = |body: &str| {
            Ok(HttpAnswer {
                status: 200,
                body: body.to_owned(),
                ..HttpAnswer::default()
            })
        };
        c.http_done(2.0, out["do"][0]["id"].as_u64().unwrap(), answer(body));
        let out = drained(&mut c);
        let mut conn = None;
        for a in out["do"].as_array().unwrap() {
            match a["kind"].as_str().unwrap() {
                "connect" => conn = Some(ConnId::from_u64(a["conn"].as_u64().unwrap())),
                "http" => c.http_done(
                    3.0,
                    a["id"].as_u64().unwrap(),
                    answer(r#"{"entities":[{"id":"v2.users.a.presence","state":"Permitted"}]}"#),
                ),
                other => panic!("{other}"),
            }
        }
        let conn = conn.unwrap();
        c.input(4.0, Input::Opened { conn });
        let out = drained(&mut c);
        assert!(out["events"].to_string().contains("live"), "{out}");
        (c, conn)
    }

    #[test]
    fn a_frame_that_only_delivers_itself_needs_no_drain() {
        let (mut c, conn) = live();
        let n = r#"{"topicName":"v2.users.a.presence","eventBody":{"seq":1}}"#;
        assert_eq!(
            c.frame_fast(10.0, conn, n.into()).as_deref(),
            Some("v2.users.a.presence")
        );
        let heartbeat =
            r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
        assert_eq!(
            c.frame_fast(11.0, conn, heartbeat.into()),
            Some(String::new())
        );
        // Nothing was kept back for a drain.
        let out = drained(&mut c);
        assert_eq!(out["events"], json!([]), "{out}");
        assert_eq!(out["do"], json!([]), "{out}");
        // A frame that warns goes the long way, and the drain hands the warning on.
        assert_eq!(c.frame_fast(12.0, conn, "not json".into()), None);
        let out = drained(&mut c);
        assert!(out["events"].to_string().contains("warning"), "{out}");
        // So does a notification while the page has not been told the wake-up yet.
        c.told_wake = None;
        assert_eq!(c.frame_fast(13.0, conn, n.replace("1}", "2}")), None);
        let out = drained(&mut c);
        assert_eq!(out["events"][0]["same"], true, "{out}");
    }
}
