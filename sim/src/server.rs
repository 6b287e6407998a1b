//! HTTP routes, the streaming socket, and the background tasks (publisher, expiry, script).
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::fault::{Endpoint, Twist};
use crate::state::{AccessToken, Channel, Out, Shared, SocketEntry};

type Resp = Response<Full<Bytes>>;

const MAX_BODY: usize = 1 << 20;
/// An oversized body is read and dropped up to this size before the 413 goes out.
const DRAIN_LIMIT: usize = 16 << 20;
const MAX_TOPICS: usize = 1000;
/// Frames queued for one socket. A tick publishes one notification per topic at once: a
/// channel's 1000 combined topics of a few parts each must fit.
const SOCKET_QUEUE: usize = 8192;
const HEARTBEAT: &str =
    r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
const PONG: &str = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;

pub(crate) async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    background(&shared);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((tcp, _)) = accepted else { continue };
                let _ = tcp.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(shared, stream).await;
                            }
                        }
                        None => serve(shared, tcp).await,
                    }
                });
            }
        }
    }
}

async fn serve<S>(shared: Arc<Shared>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(route(shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades()
        .await;
}

fn background(shared: &Arc<Shared>) {
    if shared.cfg.rate > 0.0 {
        let s = Arc::clone(shared);
        let every = Duration::from_secs_f64(1.0 / shared.cfg.rate);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                s.publish();
            }
        });
    }
    let org_rate = shared.cfg.org.change_rate;
    if org_rate > 0.0 && org_rate.is_finite() {
        let s = Arc::clone(shared);
        let every = Duration::from_secs_f64(1.0 / org_rate.min(10_000.0));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                s.org_step();
            }
        });
    }
    let s = Arc::clone(shared);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            s.expire();
        }
    });
    if !shared.cfg.script.is_empty() {
        let s = Arc::clone(shared);
        tokio::spawn(async move {
            for step in s.cfg.script.clone() {
                tokio::time::sleep_until(s.started + step.at).await;
                s.apply_fault(&step.fault);
            }
        });
    }
}

fn now_http_date() -> String {
    jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
        .unwrap_or_default()
}

fn respond(status: u16, body: Option<Value>) -> Resp {
    let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let mut r = Response::new(Full::new(bytes));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(&now_http_date()) {
        h.insert(header::DATE, v);
    }
    r
}

/// The Genesys API error shape.
/// `GET /__sim/fault`: the fault language, as plain text.
fn fault_help() -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(
        crate::fault::FAULT_HELP.as_bytes(),
    )));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn api_error(status: u16, code: &str, message: &str) -> Resp {
    respond(
        status,
        Some(json!({
            "message": message, "code": code, "status": status,
            "messageParams": {}, "contextId": "sim", "details": [], "errors": [],
        })),
    )
}

/// The OAuth error shape: `error`, `description` and `error_description`.
fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    respond(
        status,
        Some(
            json!({ "error": error, "description": description, "error_description": description }),
        ),
    )
}

fn injected(status: u16, retry_after: Option<u64>, oauth: bool) -> Resp {
    let mut r = if oauth {
        oauth_error(status, "temporarily_unavailable", "injected failure")
    } else if status == 429 {
        api_error(
            429,
            "too.many.requests",
            "Rate limit exceeded the maximum [300] requests within [60] seconds",
        )
    } else {
        api_error(status, "internal.server.error", "injected failure")
    };
    if let Some(s) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// A redirect to another host; the path carries a fake channel id that a client must never
/// print.
fn redirected() -> Resp {
    let mut r = respond(302, None);
    r.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_static(
            "https://elsewhere.invalid/api/v2/notifications/channels/streaming-0-redirected",
        ),
    );
    r
}

async fn route(shared: Arc<Shared>, req: Request<Incoming>) -> Resp {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if !shared.cfg.latency.is_zero() && parts.first() != Some(&"__sim") {
        tokio::time::sleep(shared.cfg.latency).await;
    }
    let origin = crate::web::allowed_origin(&shared.cfg.cors_origins, req.headers());
    let (endpoint, mut resp) = match (&method, parts.as_slice()) {
        (&Method::OPTIONS, _) => ("preflight", crate::web::preflight(origin.clone())),
        (&Method::POST, ["oauth", "token"]) => ("token", token(&shared, req).await),
        (&Method::GET, ["oauth", "authorize"]) => ("authorize", authorize(&shared, &query)),
        (&Method::POST, ["api", "v2", "notifications", "channels"]) => {
            ("channels.create", create_channel(&shared, &req))
        }
        (&Method::GET, ["api", "v2", "notifications", "channels"]) => {
            ("channels.list", list_channels(&shared, &req, &query))
        }
        (&Method::GET, ["api", "v2", "tokens", "me"]) => ("tokens.me", token_info(&shared, &req)),
        (_, ["api", "v2", "users", ..] | ["api", "v2", "presence" | "presencedefinitions", ..])
        | (_, ["api", "v2", "analytics", "queues", "observations", "query"])
        | (&Method::GET, ["api", "v2", "notifications", "availabletopics"]) => {
            org_api(&shared, req, &parts, &query).await
        }
        (&Method::HEAD, ["api", "v2", "notifications", "channels", id]) => {
            ("channels.head", head_channel(&shared, &req, id))
        }
        (m, ["api", "v2", "notifications", "channels", id, "subscriptions"]) => {
            let id = (*id).to_owned();
            let name = match *m {
                Method::GET => "subscriptions.get",
                Method::PUT => "subscriptions.put",
                Method::POST => "subscriptions.post",
                Method::DELETE => "subscriptions.delete",
                _ => "subscriptions.other",
            };
            (name, subscriptions(&shared, req, &id, &query).await)
        }
        (&Method::GET, ["channels", id]) => {
            let id = (*id).to_owned();
            ("upgrade", upgrade(&shared, req, &id))
        }
        (&Method::GET, ["__sim", "stats"]) => (
            "sim.stats",
            respond(200, serde_json::to_value(shared.stats()).ok()),
        ),
        (&Method::POST, ["__sim", "fault"]) => ("sim.fault", control_fault(&shared, req).await),
        (&Method::GET, ["__sim", "fault"]) => ("sim.fault_help", fault_help()),
        (&Method::GET | &Method::HEAD, _) if shared.cfg.static_dir.is_some() => {
            ("static", static_file(&shared, &path))
        }
        _ => (
            "other",
            api_error(404, "not.found", "No resource found at this path"),
        ),
    };
    if let Some(o) = origin {
        if endpoint != "preflight" {
            crate::web::add_cors(resp.headers_mut(), o);
        }
    }
    let status = resp.status().as_u16();
    if !endpoint.starts_with("sim.") {
        shared.record(endpoint, status);
    }
    if shared.cfg.log_requests {
        // A channel id is its socket's only credential: log a prefix.
        let shown: Vec<String> = path
            .split('/')
            .map(|seg| match seg.strip_prefix("streaming-") {
                Some(rest) if rest.len() > 4 => {
                    format!("streaming-{}…", rest.get(..2).unwrap_or(""))
                }
                _ => seg.to_owned(),
            })
            .collect();
        eprintln!(
            "sim: {method} {} {status} {}ms",
            shown.join("/"),
            start.elapsed().as_millis()
        );
    }
    resp
}

/// A file of `static_dir`, or 404.
fn static_file(shared: &Shared, path: &str) -> Resp {
    let not_found = || api_error(404, "not.found", "No resource found at this path");
    let Some(root) = shared.cfg.static_dir.as_deref() else {
        return not_found();
    };
    let Some(file) = crate::web::resolve(root, path) else {
        return not_found();
    };
    // Small local files: read in place (the simulator is a test server).
    let too_big = std::fs::metadata(&file).map_or(true, |m| m.len() > crate::web::MAX_STATIC_FILE);
    if too_big {
        return not_found();
    }
    let Ok(bytes) = std::fs::read(&file) else {
        return not_found();
    };
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::web::content_type(&file)),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let csp = shared.cfg.static_csp.as_deref();
    if let Some(v) = csp.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Resp> {
    let too_large = || {
        api_error(
            413,
            "request.too.large",
            "The request body is larger than 1 MiB",
        )
    };
    let mut body = req.into_body();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(too_large());
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= MAX_BODY {
            buf.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            // Beyond this the client is hostile: answer now and let the connection close.
            return Err(too_large());
        }
        // Between the two limits the rest is read and dropped, so a client still sending
        // gets its 413 instead of a reset connection.
    }
    if seen > MAX_BODY {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

fn basic_auth(req: &Request<Incoming>) -> Option<(String, String)> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (percent_decode(k), percent_decode(v)))
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = match bytes[i] {
            b'%' => bytes
                .get(i + 1)
                .copied()
                .and_then(hex)
                .zip(bytes.get(i + 2).copied().and_then(hex)),
            _ => None,
        };
        match (bytes[i], decoded) {
            (_, Some((hi, lo))) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn token(shared: &Shared, req: Request<Incoming>) -> Resp {
    if let Some((status, ra)) = shared.lock().take_fail(Endpoint::Token) {
        return injected(status, ra, true);
    }
    let twist = shared.lock().take_twist(Endpoint::Token);
    if twist == Some(Twist::Redirect) {
        return redirected();
    }
    let ttl = match twist {
        Some(Twist::ShortToken(secs)) => Duration::from_secs(secs),
        _ => shared.cfg.token_ttl,
    };
    let creds = basic_auth(&req);
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let params = form(&body);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let cfg = &shared.cfg;
    // A page's login: the code grant with PKCE, which has no client secret to send.
    let pkce = creds.is_none() && get("grant_type") == Some("authorization_code");
    match creds {
        _ if pkce => {}
        Some((id, secret)) if id == cfg.client_id && secret == cfg.client_secret => {}
        Some(_) => {
            return oauth_error(
                401,
                "invalid_client",
                "Client authentication failed: unknown client or wrong secret",
            )
        }
        None => {
            return oauth_error(
                401,
                "invalid_client",
                "Client authentication is required (HTTP Basic)",
            )
        }
    }
    let mut st = shared.lock();
    let rotated = match get("grant_type") {
        Some("client_credentials") => None,
        Some("authorization_code") if pkce => {
            let owned = |k: &str| get(k).map(str::to_owned);
            if let Err((status, error, d)) =
                crate::pkce::redeem(&mut st.codes, &cfg.client_id, owned)
            {
                return oauth_error(status, error, &d);
            }
            None
        }
        Some("refresh_token") => {
            let Some(rt) = get("refresh_token") else {
                return oauth_error(400, "invalid_request", "refresh_token is required");
            };
            if !st.refresh.contains_key(rt) {
                return oauth_error(
                    400,
                    "invalid_grant",
                    "The refresh token is invalid, expired or revoked",
                );
            }
            if cfg.rotate_refresh_tokens {
                st.refresh.remove(rt);
                let new = st.fresh("sim-rt-");
                st.refresh.insert(new.clone(), cfg.client_id.clone());
                Some(new)
            } else {
                Some(rt.to_owned())
            }
        }
        Some(other) => {
            return oauth_error(
                400,
                "unsupported_grant_type",
                &format!("grant_type {other} is not supported here"),
            )
        }
        None => return oauth_error(400, "invalid_request", "grant_type is required"),
    };
    let access = st.fresh("sim-at-");
    st.access.insert(
        access.clone(),
        AccessToken {
            client: cfg.client_id.clone(),
            expires_at: Instant::now() + ttl,
        },
    );
    st.stats.tokens_issued += 1;
    let mut body =
        json!({ "access_token": access, "token_type": "bearer", "expires_in": ttl.as_secs() });
    if let Some(r) = rotated {
        body["refresh_token"] = Value::String(r);
    }
    respond(200, Some(body))
}

/// `GET /oauth/authorize`: the login page of a PKCE client, whose user agrees at once.
fn authorize(shared: &Shared, query: &str) -> Resp {
    let params = form(query.as_bytes());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let cfg = &shared.cfg;
    let to = crate::pkce::authorize(&mut shared.lock(), &cfg.client_id, &cfg.cors_origins, get);
    match to.map(|t| HeaderValue::from_str(&t)) {
        Ok(Ok(location)) => {
            let mut r = respond(302, None);
            r.headers_mut().insert(header::LOCATION, location);
            r
        }
        Ok(Err(_)) => oauth_error(400, "invalid_request", "redirect_uri is not a valid URL"),
        Err((status, error, d)) => oauth_error(status, error, &d),
    }
}

/// The client behind a valid bearer token, or the 401 the service answers.
fn bearer(shared: &Shared, req: &Request<Incoming>) -> Result<(String, String), Resp> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .map(str::to_owned);
    let Some(token) = token else {
        return Err(api_error(
            401,
            "authentication.required",
            "No authentication bearer token specified in authorization header.",
        ));
    };
    let st = shared.lock();
    match st.access.get(&token) {
        Some(a) if a.expires_at > Instant::now() => Ok((a.client.clone(), token)),
        _ => Err(api_error(
            401,
            "bad.credentials",
            "Invalid login credentials.",
        )),
    }
}

fn channel_json(shared: &Shared, id: &str, ch: &Channel) -> Value {
    let ws = shared
        .cfg
        .connect_uri_base
        .clone()
        .unwrap_or_else(|| shared.base_url.replacen("http", "ws", 1));
    json!({
        "connectUri": format!("{ws}/channels/{id}"),
        "id": id,
        "expires": ch.expires_wall.to_string(),
    })
}

fn create_channel(shared: &Shared, req: &Request<Incoming>) -> Resp {
    let (client, token) = match bearer(shared, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut st = shared.lock();
    if let Some((status, ra)) = st.take_fail(Endpoint::Channel) {
        return injected(status, ra, false);
    }
    let twist = st.take_twist(Endpoint::Channel);
    if twist == Some(Twist::Redirect) {
        return redirected();
    }
    let now = Instant::now();
    let mine: Vec<(String, bool, Instant)> = st
        .channels
        .iter()
        .filter(|(_, c)| c.client == client && c.expires_at > now)
        .map(|(id, c)| (id.clone(), c.socket.is_some(), c.last_used))
        .collect();
    if mine.len() >= shared.cfg.max_channels {
        // Channels without a connection go first, then the least recently used.
        let victim = mine
            .iter()
            .min_by_key(|(_, connected, used)| (*connected, *used))
            .map(|(id, _, _)| id.clone());
        if let Some(v) = victim {
            if let Some(ch) = st.channels.remove(&v) {
                if ch.socket.is_some() {
                    st.stats.live_channels_evicted += 1;
                }
                if let Some(sock) = ch.socket.and_then(|s| st.sockets.get(&s)) {
                    let _ = sock.tx.try_send(Out::Close(
                        shared.cfg.displaced_close_code,
                        "channel evicted",
                    ));
                }
            }
            st.stats.channels_evicted += 1;
        }
    }
    let id = format!("streaming-0-{}", st.fresh(""));
    let ch = Channel {
        client,
        token,
        expires_at: now + shared.cfg.channel_ttl,
        expires_wall: jiff::Timestamp::now()
            .checked_add(
                jiff::SignedDuration::try_from(shared.cfg.channel_ttl)
                    .unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(jiff::Timestamp::MAX),
        topics: BTreeSet::new(),
        socket: None,
        last_used: now,
        token_dead_handled: false,
    };
    let mut body = channel_json(shared, &id, &ch);
    match twist {
        Some(Twist::ExpiredChannel) => {
            let past = jiff::Timestamp::now()
                .checked_sub(jiff::SignedDuration::from_secs(3600))
                .unwrap_or(jiff::Timestamp::MIN);
            body["expires"] = Value::String(past.to_string());
        }
        Some(Twist::ForeignUri) => {
            body["connectUri"] = Value::String(format!("wss://evil.invalid/channels/{id}"));
        }
        Some(Twist::Redirect | Twist::ShortToken(_)) | None => {}
    }
    st.channels.insert(id, ch);
    st.stats.channels_created += 1;
    respond(200, Some(body))
}

fn list_channels(shared: &Shared, req: &Request<Incoming>, query: &str) -> Resp {
    let (client, token) = match bearer(shared, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let by_client = query
        .split('&')
        .any(|kv| kv.eq_ignore_ascii_case("includechannels=oauthclient"));
    let st = shared.lock();
    let now = Instant::now();
    let entities: Vec<Value> = st
        .channels
        .iter()
        .filter(|(_, c)| c.client == client && c.expires_at > now)
        .filter(|(_, c)| by_client || c.token == token)
        .map(|(id, c)| {
            let mut v = channel_json(shared, id, c);
            if c.token != token {
                // Other tokens' channel ids are hidden.
                v["id"] = Value::Null;
                v["connectUri"] = Value::Null;
            }
            v
        })
        .collect();
    respond(200, Some(json!({ "entities": entities })))
}

/// `GET /api/v2/tokens/me`: what the token is (the official SDK asks this to check a token
/// it holds, after every sign-in). The shape is the SDK's `TokenInfo`.
fn token_info(shared: &Shared, req: &Request<Incoming>) -> Resp {
    let (client, _) = match bearer(shared, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let org = json!({ "id": "sim-org", "name": "Simulated organisation" });
    respond(
        200,
        Some(json!({
            "organization": org,
            "homeOrganization": org,
            "authorizedScope": ["notifications"],
            "OAuthClient": { "id": client, "name": "genesys-notify sim client", "organization": org },
        })),
    )
}

fn head_channel(shared: &Shared, req: &Request<Incoming>, id: &str) -> Resp {
    let (client, _) = match bearer(shared, req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let st = shared.lock();
    let now = Instant::now();
    // A channel is bound to the token that created it: once that token has expired the
    // channel is as dead here as on its socket.
    let alive = st.channels.get(id).is_some_and(|c| {
        c.client == client
            && c.expires_at > now
            && st.access.get(&c.token).is_some_and(|a| a.expires_at > now)
    });
    respond(if alive { 200 } else { 404 }, None)
}

fn rejection(shared: &Shared, topic: &str) -> Option<String> {
    let bad_shape = topic.is_empty()
        || topic.len() > 200
        || topic.chars().any(|c| c.is_whitespace() || c.is_control())
        || topic.eq_ignore_ascii_case("channel.metadata")
        || topic.to_ascii_lowercase().starts_with("v2.system.");
    if bad_shape {
        return Some("Invalid topic name".to_owned());
    }
    let forbidden = |t: &str| {
        shared
            .cfg
            .forbidden_prefixes
            .iter()
            .any(|p| t.starts_with(p.as_str()))
    };
    if !topic.contains('?') {
        return forbidden(topic).then(|| shared.cfg.rejection_reason.clone());
    }
    // A combined topic is refused when one of its parts is, and the reason names that part.
    crate::org::parts(topic)
        .iter()
        .find(|p| forbidden(p))
        .map(|p| format!("{} ({p})", shared.cfg.rejection_reason))
}

/// What `topics` count toward a channel's 1000: one each, or with
/// `combined_topics_count_parts` one per part of a combined topic.
fn topic_cost<'a>(shared: &Shared, topics: impl Iterator<Item = &'a String>) -> usize {
    if shared.cfg.combined_topics_count_parts {
        topics.map(|t| crate::org::parts(t).len().max(1)).sum()
    } else {
        topics.count()
    }
}

async fn subscriptions(shared: &Shared, req: Request<Incoming>, id: &str, query: &str) -> Resp {
    let method = req.method().clone();
    let (client, _) = match bearer(shared, &req) {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some((status, ra)) = shared.lock().take_fail(Endpoint::Subscriptions) {
        return injected(status, ra, false);
    }
    if shared.lock().take_twist(Endpoint::Subscriptions) == Some(Twist::Redirect) {
        return redirected();
    }
    let ignore_errors = query
        .split('&')
        .any(|kv| kv.eq_ignore_ascii_case("ignoreErrors=true"));
    let body = if method == Method::PUT || method == Method::POST {
        match read_body(req).await {
            Ok(b) => Some(b),
            Err(r) => return r,
        }
    } else {
        None
    };
    let mut st = shared.lock();
    let now = Instant::now();
    match st.channels.get(id) {
        Some(c) if c.client == client && c.expires_at > now => {}
        _ => return api_error(404, "not.found", &format!("Channel {id} not found")),
    }
    if method == Method::GET || method == Method::DELETE {
        let Some(ch) = st.channels.get_mut(id) else {
            return api_error(404, "not.found", "Channel not found");
        };
        if method == Method::DELETE {
            ch.topics.clear();
            return respond(200, None);
        }
        let entities: Vec<Value> = ch
            .topics
            .iter()
            .map(|t| json!({ "id": t, "state": "Permitted" }))
            .collect();
        return respond(200, Some(json!({ "entities": entities })));
    }
    if method != Method::PUT && method != Method::POST {
        return api_error(405, "method.not.allowed", "Use GET, PUT, POST or DELETE");
    }
    let items: Vec<Value> = match body.as_deref().map(serde_json::from_slice::<Value>) {
        Some(Ok(Value::Array(items))) => items,
        _ => {
            return api_error(
                400,
                "bad.request",
                "The request body must be a JSON array of {\"id\": topic}",
            )
        }
    };
    let mut topics = Vec::new();
    for item in &items {
        match item.get("id").and_then(Value::as_str) {
            Some(t) => topics.push(t.to_owned()),
            None => return api_error(400, "bad.request", "Every entry needs a string \"id\""),
        }
    }
    if topic_cost(shared, topics.iter()) > MAX_TOPICS {
        return api_error(
            400,
            "bad.request",
            "A channel cannot subscribe to more than 1000 topics",
        );
    }
    let mut results = Vec::new();
    let mut accepted = BTreeSet::new();
    for t in &topics {
        match rejection(shared, t) {
            Some(reason) => {
                if !ignore_errors {
                    return api_error(
                        400,
                        "notification.subscription.rejected",
                        &format!("Topic {t} rejected: {reason}"),
                    );
                }
                results.push(json!({ "id": t, "state": "Rejected", "rejectionReason": reason }));
            }
            None => {
                accepted.insert(t.clone());
                results.push(json!({ "id": t, "state": "Permitted" }));
            }
        }
    }
    let extends = shared.cfg.resubscribe_extends;
    let ttl = shared.cfg.channel_ttl;
    let mut total = accepted.clone();
    if let Some(ch) = st.channels.get_mut(id) {
        if method == Method::POST {
            total.extend(ch.topics.iter().cloned());
        }
        if topic_cost(shared, total.iter()) > MAX_TOPICS {
            return api_error(
                400,
                "bad.request",
                "A channel cannot subscribe to more than 1000 topics",
            );
        }
        ch.topics = total.clone();
        ch.last_used = now;
        if extends {
            ch.expires_at = now + ttl;
        }
    }
    if shared.cfg.exclusive_topics {
        take_from_other_channels(&mut st, id, &client, &total);
    }
    // A combined topic is published under each part's name.
    st.sticky_topics
        .extend(total.iter().flat_map(|t| crate::org::parts(t)));
    respond(200, Some(json!({ "entities": results })))
}

/// `exclusive_topics`: the topics now on channel `id` leave the client's other channels, and
/// each of those is told on its socket.
fn take_from_other_channels(
    st: &mut crate::state::State,
    id: &str,
    client: &str,
    topics: &BTreeSet<String>,
) {
    let mut told = Vec::new();
    let mut unseen = 0;
    for (other, ch) in st.channels.iter_mut() {
        if other == id || ch.client != client || ch.topics.is_disjoint(topics) {
            continue;
        }
        ch.topics.retain(|t| !topics.contains(t));
        match ch.socket {
            Some(sock) => told.push((sock, other.to_owned())),
            None => unseen += 1,
        }
    }
    st.stats.topics_taken_unseen += unseen;
    for (sock, channel) in told {
        if let Some(s) = st.sockets.get(&sock) {
            let _ =
                s.tx.try_send(Out::Text(crate::state::no_longer_subscribed_frame(
                    &channel,
                )));
        }
    }
}

async fn control_fault(shared: &Arc<Shared>, req: Request<Incoming>) -> Resp {
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let line = String::from_utf8_lossy(&body);
    match line.trim().parse::<crate::Fault>() {
        Ok(f) => {
            shared.apply_fault(&f);
            respond(200, Some(json!({ "applied": f.to_string() })))
        }
        Err(e) => api_error(400, "bad.request", &e.to_string()),
    }
}

fn upgrade(shared: &Arc<Shared>, mut req: Request<Incoming>, id: &str) -> Resp {
    let is_ws = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return api_error(400, "bad.request", "Expected a WebSocket upgrade");
    };
    if !is_ws {
        return api_error(400, "bad.request", "Expected a WebSocket upgrade");
    }
    let now = Instant::now();
    let (sock_id, rx, displaced) = {
        let mut st = shared.lock();
        if let Some((status, ra)) = st.take_fail(Endpoint::Upgrade) {
            return injected(status, ra, false);
        }
        let Some(ch) = st.channels.get(id) else {
            return api_error(404, "not.found", "Channel not found or expired");
        };
        if ch.expires_at <= now {
            return api_error(404, "not.found", "Channel not found or expired");
        }
        let token_alive = st.access.get(&ch.token).is_some_and(|a| a.expires_at > now);
        if !token_alive {
            let status = shared.cfg.upgrade_status_token_expired;
            return api_error(
                status,
                "bad.credentials",
                "The token that created this channel has expired",
            );
        }
        let sock_id: u64 = st.stats.sockets_opened + 1;
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        let displaced = st.channels.get_mut(id).and_then(|c| {
            c.last_used = now;
            c.socket.replace(sock_id)
        });
        let displaced = displaced
            .and_then(|old| st.sockets.remove(&old))
            .map(|e| e.tx);
        st.sockets.insert(
            sock_id,
            SocketEntry {
                channel: id.to_owned(),
                tx,
            },
        );
        st.stats.sockets_opened += 1;
        (sock_id, rx, displaced)
    };
    if let Some(old) = displaced {
        let _ = old.try_send(Out::Close(
            shared.cfg.displaced_close_code,
            "another connection to this channel",
        ));
    }
    let shared = Arc::clone(shared);
    let channel = id.to_owned();
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on.await {
            Ok(upgraded) => {
                // Small buffers: the default 128 KiB read buffer would cost 1.3 GB at 10,000
                // sockets (measured); frames here are a few KB.
                let config = WebSocketConfig::default()
                    .read_buffer_size(4 << 10)
                    .write_buffer_size(0)
                    .max_message_size(Some(1 << 20))
                    .max_frame_size(Some(1 << 20));
                let ws = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                socket_task(&shared, ws, sock_id, &channel, rx).await;
            }
            Err(_) => forget_socket(&shared, sock_id, &channel),
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

fn forget_socket(shared: &Shared, sock_id: u64, channel: &str) {
    let mut st = shared.lock();
    st.sockets.remove(&sock_id);
    st.stats.sockets_closed += 1;
    if let Some(c) = st.channels.get_mut(channel) {
        if c.socket == Some(sock_id) {
            c.socket = None;
        }
    }
}

/// What the client sent over the socket, answered as the service does.
fn client_text(shared: &Shared, channel: &str, text: &str) -> Option<String> {
    let v: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => return None,
    };
    let message = v.get("message").and_then(Value::as_str)?;
    let correlation = v.get("correlationId").cloned().unwrap_or(Value::Null);
    match message {
        "ping" => Some(PONG.to_owned()),
        "subscribe" | "unsubscribe" => {
            let topics: Vec<String> = v
                .get("topics")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let mut st = shared.lock();
            let Some(ch) = st.channels.get_mut(channel) else {
                return Some(json!({ "result": "404", "message": "channel not found or expired", "correlationId": correlation }).to_string());
            };
            if message == "unsubscribe" {
                for t in &topics {
                    ch.topics.remove(t);
                }
                return Some(json!({ "result": "200", "status": "unsubscribed", "correlationId": correlation }).to_string());
            }
            if let Some(bad) = topics.iter().find(|t| rejection(shared, t).is_some()) {
                return Some(json!({ "result": "400", "status": "failure", "message": format!("topic {bad} rejected"), "correlationId": correlation }).to_string());
            }
            ch.topics.extend(topics.iter().cloned());
            st.sticky_topics
                .extend(topics.iter().flat_map(|t| crate::org::parts(t)));
            Some(
                json!({ "result": "200", "status": "subscribed", "correlationId": correlation })
                    .to_string(),
            )
        }
        _ => None,
    }
}

async fn socket_task<S>(
    shared: &Shared,
    ws: WebSocketStream<S>,
    sock_id: u64,
    channel: &str,
    mut rx: mpsc::Receiver<Out>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let mut heartbeat =
        tokio::time::interval_at(Instant::now() + shared.cfg.heartbeat, shared.cfg.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut silent = false;
    let mut pending: Option<Out> = None;
    // A lagging notification waits here, holding back everything queued behind it.
    let mut held: Option<(Instant, String)> = None;
    loop {
        let due = held.as_ref().map(|(at, _)| *at);
        let out = match pending.take() {
            Some(p) => Some(p),
            None => tokio::select! {
                incoming = stream.next() => {
                    match incoming {
                        Some(Ok(Message::Text(t))) => {
                            if !silent {
                                if let Some(reply) = client_text(shared, channel, t.as_str()) {
                                    // One ordered stream per socket: what was queued before
                                    // this request goes out before its reply (unless a
                                    // lagging notification holds the queue back).
                                    while held.is_none() {
                                        let Ok(out) = rx.try_recv() else { break };
                                        match out {
                                            Out::Text(t) => {
                                                if sink.feed(Message::text(t)).await.is_err() { break; }
                                            }
                                            other => { pending = Some(other); break; }
                                        }
                                    }
                                    if sink.send(Message::text(reply)).await.is_err() { break; }
                                }
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            shared.lock().stats.client_close_codes.push(frame.map(|f| u16::from(f.code)));
                            break;
                        }
                        None | Some(Err(_)) => {
                            shared.lock().stats.client_close_codes.push(None);
                            break;
                        }
                        Some(Ok(_)) => {}
                    }
                    continue;
                }
                out = rx.recv(), if due.is_none() => out,
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                    if let Some((_, t)) = held.take() {
                        if !silent && sink.send(Message::text(t)).await.is_err() { break; }
                    }
                    continue;
                }
                _ = heartbeat.tick() => {
                    if !silent && sink.send(Message::text(HEARTBEAT)).await.is_err() { break; }
                    continue;
                }
            },
        };
        match out {
            Some(Out::Text(t)) => {
                if silent {
                    continue;
                }
                // Queue what is already waiting and flush once.
                if sink.feed(Message::text(t)).await.is_err() {
                    break;
                }
                for _ in 0..63 {
                    match rx.try_recv() {
                        Ok(Out::Text(t)) => {
                            if sink.feed(Message::text(t)).await.is_err() {
                                break;
                            }
                        }
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            // A half-open connection delivers nothing, not even its end: the client must
            // find out by itself.
            Some(Out::Close(..) | Out::Drop) if silent => {}
            Some(Out::Close(code, reason)) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                break;
            }
            Some(Out::Drop) | None => break,
            Some(Out::HalfOpen) => silent = true,
            Some(Out::Flood(n)) => {
                if silent {
                    continue;
                }
                let mut failed = false;
                for i in 0..n {
                    if sink.feed(Message::text("{x")).await.is_err() {
                        failed = true;
                        break;
                    }
                    if i % 256 == 255 {
                        // Notifications published meanwhile go out between the bad frames,
                        // so the flood itself loses nothing.
                        while pending.is_none() {
                            match rx.try_recv() {
                                Ok(Out::Text(t)) => {
                                    if sink.feed(Message::text(t)).await.is_err() {
                                        failed = true;
                                        break;
                                    }
                                }
                                Ok(other) => pending = Some(other),
                                Err(_) => break,
                            }
                        }
                        if failed || sink.flush().await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                }
                if failed || sink.flush().await.is_err() {
                    break;
                }
            }
            Some(Out::Later(at, t)) => held = Some((at, t)),
        }
    }
    forget_socket(shared, sock_id, channel);
}

/// The simulated organisation's REST reads and writes; the endpoint name (for the stats) and
/// the answer. Every call needs a valid bearer token, as the service's do.
async fn org_api(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    parts: &[&str],
    query: &str,
) -> (&'static str, Resp) {
    if let Err(r) = bearer(shared, &req) {
        return ("org", r);
    }
    // A read of one user: the answer, or the 404 the service gives for a user it has not.
    let of_user = |name, user: &str, read: fn(&crate::org::Org, &str) -> Option<Value>| {
        let answer = read(&shared.lock().org, user);
        let r = answer.map_or_else(
            || api_error(404, "not.found", &format!("User {user} not found")),
            |v| respond(200, Some(v)),
        );
        (name, r)
    };
    let method = req.method().clone();
    match (&method, parts) {
        (&Method::GET, ["api", "v2", "users", "me"]) => {
            ("users.me", respond(200, Some(shared.lock().org.me())))
        }
        (&Method::GET, ["api", "v2", "users", user, "presences", "purecloud"]) => {
            of_user("presence.get", user, crate::org::Org::presence)
        }
        (&Method::GET, ["api", "v2", "users", user, "queues"]) => {
            of_user("userqueues.get", user, crate::org::Org::user_queues)
        }
        (&Method::GET, ["api", "v2", "users", user, "routingstatus"]) => {
            of_user("routingstatus.get", user, crate::org::Org::routing_status)
        }
        (&Method::PATCH, ["api", "v2", "users", user, "presences", "purecloud"]) => {
            let user = (*user).to_owned();
            let body = match json_body(req, "a UserPresence").await {
                Ok(b) => b,
                Err(r) => return ("presence.patch", r),
            };
            let done = shared.lock().org.set_presence(&user, &body);
            let r = match done {
                Ok((read, event)) => {
                    shared.publish_org(vec![event]);
                    respond(200, Some(read))
                }
                Err((404, message)) => api_error(404, "not.found", &message),
                Err((status, message)) => api_error(status, "bad.request", &message),
            };
            ("presence.patch", r)
        }
        (
            &Method::GET,
            ["api", "v2", "presence", "definitions"] | ["api", "v2", "presencedefinitions"],
        ) => {
            let older = parts.len() == 3;
            let v = shared.lock().org.presence_definitions(older);
            ("presencedefinitions", respond(200, Some(v)))
        }
        (&Method::POST, ["api", "v2", "analytics", "queues", "observations", "query"]) => {
            let r = match json_body(req, "a QueueObservationQuery").await {
                Ok(q) => respond(200, Some(shared.lock().org.observations(&q))),
                Err(r) => r,
            };
            ("observations", r)
        }
        (&Method::GET, ["api", "v2", "notifications", "availabletopics"]) => {
            let expand: Vec<String> = form(query.as_bytes())
                .into_iter()
                .filter(|(k, _)| k == "expand")
                .flat_map(|(_, v)| {
                    v.split(',')
                        .map(str::to_ascii_lowercase)
                        .collect::<Vec<_>>()
                })
                .collect();
            let expand: Vec<&str> = expand.iter().map(String::as_str).collect();
            (
                "availabletopics",
                respond(200, Some(crate::org::available_topics(&expand))),
            )
        }
        _ => (
            "org",
            api_error(404, "not.found", "No resource found at this path"),
        ),
    }
}

/// A request's body as JSON, or the 400 (or 413) that says it is not `what`.
async fn json_body(req: Request<Incoming>, what: &str) -> Result<Value, Resp> {
    let body = read_body(req).await?;
    serde_json::from_slice::<Value>(&body).map_err(|_| {
        api_error(
            400,
            "bad.request",
            &format!("The body must be {what} in JSON"),
        )
    })
}
