//! The driver task: the core's loop over socket frames, HTTP results, commands and the next
//! deadline, plus the socket and HTTP tasks it starts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use genesys_notify_adapter_common::herd::Member;
use genesys_notify_adapter_common::http::{self, HttpAnswer, HttpRequest};
use genesys_notify_adapter_common::socket::{self, tls_config};
use genesys_notify_adapter_common::{
    Clock, Credentials, Endpoints, Held, Rotation, TokenSource, TokenStep,
};
use genesys_notify_core::{
    Action, ConnId, Error as CoreError, Event, Input, LocalError, RequestError, Secret, Session,
    Status, Topic,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;
use tracing::Instrument as _;

use crate::queue;
use crate::{Command, ConnectError, EventStream, Handle};

pub(crate) struct Setup {
    pub(crate) endpoints: Endpoints,
    pub(crate) credentials: Credentials,
    pub(crate) topics: Vec<Topic>,
    pub(crate) session: genesys_notify_core::Config,
    pub(crate) extra_root_pem: Option<String>,
    pub(crate) max_frame_size: usize,
    pub(crate) http_timeout: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) queue_bytes: usize,
    pub(crate) seed: Option<u64>,
}

enum Msg {
    Input(Input),
    /// A frame a socket read, holding its bytes' place in the inbox until it is handled.
    Read(Input, tokio::sync::OwnedSemaphorePermit),
    Warning(LocalError),
}

/// Inputs held for the driver before socket and HTTP tasks wait (TCP then pushes back).
const INBOX: usize = 1024;

/// Bytes of frames held for the driver before socket tasks wait: a count alone would let
/// 1,024 frames of megabytes each pile up while the driver is busy.
const INBOX_BYTES: u32 = 8 << 20;
/// Commands held for one socket task.
const SOCKET_COMMANDS: usize = 16;

/// Asks a socket task to close with `code`; one too busy to take the request is ended.
fn close_socket(tx: &mpsc::Sender<SocketCmd>, task: &JoinHandle<()>, code: u16) {
    if tx.try_send(SocketCmd::Close(code)).is_err() {
        task.abort();
    }
}

enum SocketCmd {
    Text(String),
    Close(u16),
}

struct Driver {
    session: Session,
    clock: Clock,
    endpoints: Arc<Endpoints>,
    tokens: Arc<Mutex<TokenSource>>,
    http: reqwest::Client,
    http_timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
    max_frame_size: usize,
    /// Bytes of frames in the inbox, shared by the socket tasks.
    inbox: Arc<tokio::sync::Semaphore>,
    inputs_tx: mpsc::Sender<Msg>,
    inputs: mpsc::Receiver<Msg>,
    commands: mpsc::UnboundedReceiver<Command>,
    sockets: BTreeMap<ConnId, (mpsc::Sender<SocketCmd>, JoinHandle<()>)>,
    /// Tasks of sockets that ended or were closed, and HTTP requests: released as they finish.
    closing: Vec<JoinHandle<()>>,
    held: Arc<Mutex<Held>>,
    events: queue::Sender,
    status: watch::Sender<Status>,
    token: watch::Sender<Option<Secret>>,
    /// This session's place among the sessions of the process, and its own first-retry
    /// spread, which the herd may widen.
    herd: Member,
    base_spread: Duration,
}

static SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub(crate) fn start(setup: Setup) -> Result<(Handle, EventStream), ConnectError> {
    let clock = Clock::new();
    let seed = setup.seed.unwrap_or_else(|| clock.seed());
    let base_spread = setup.session.first_retry_spread;
    let mut session = Session::new(setup.session, clock.now(), seed)?;
    session.subscribe(clock.now(), setup.topics)?;
    let (tls, http) = clients(setup.extra_root_pem.as_deref()).map_err(ConnectError::Tls)?;
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (inputs_tx, inputs) = mpsc::channel(INBOX);
    let (events, stream) =
        queue::channel(setup.queue_capacity, setup.queue_bytes, commands_tx.clone());
    events.set_topics(session.topics());
    let (status, status_rx) = watch::channel(session.status());
    let (token, token_rx) = watch::channel(None);
    let tokens = TokenSource::new(setup.credentials, &setup.endpoints);
    let driver = Driver {
        session,
        clock,
        endpoints: Arc::new(setup.endpoints),
        tokens: Arc::new(Mutex::new(tokens)),
        http,
        http_timeout: setup.http_timeout,
        tls,
        max_frame_size: setup.max_frame_size,
        inbox: Arc::new(tokio::sync::Semaphore::new(INBOX_BYTES as usize)),
        inputs_tx,
        inputs,
        commands,
        sockets: BTreeMap::new(),
        closing: Vec::new(),
        held: Arc::new(Mutex::new(Held::default())),
        herd: Member::join(),
        base_spread,
        events,
        status,
        token,
    };
    let handle_clock = driver.clock.clone();
    let held = Arc::clone(&driver.held);
    let rest = crate::Rest {
        http: driver.http.clone(),
        endpoints: Arc::clone(&driver.endpoints),
        timeout: driver.http_timeout,
    };
    let id = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span = tracing::info_span!("genesys_notify", session = id);
    tokio::spawn(driver.run().instrument(span));
    Ok((
        Handle {
            clock: handle_clock,
            commands: commands_tx,
            status: status_rx,
            token: token_rx,
            held,
            rest,
        },
        stream,
    ))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Driver {
    async fn run(mut self) {
        let mut waiting_close: Vec<oneshot::Sender<()>> = Vec::new();
        loop {
            self.drain();
            if self.session.status().is_terminal() {
                let sockets = std::mem::take(&mut self.sockets);
                for (_, (tx, task)) in sockets {
                    close_socket(&tx, &task, 1000);
                    self.closing.push(task);
                }
                // The close frames get a second; a socket still connecting is abandoned.
                let give_up = tokio::time::Instant::now() + Duration::from_secs(1);
                for mut h in self.closing.drain(..) {
                    if tokio::time::timeout_at(give_up, &mut h).await.is_err() {
                        h.abort();
                    }
                }
                *lock(&self.held) = Held::default();
                self.events.close();
                for w in waiting_close.drain(..) {
                    let _ = w.send(());
                }
                tracing::debug!("session closed");
                return;
            }
            let deadline = self.session.poll_timeout();
            let sleep = async {
                match deadline {
                    Some((at, _)) => {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(
                            self.clock.to_std(at),
                        ))
                        .await
                    }
                    None => std::future::pending().await,
                }
            };
            // Commands first: a close is never stuck behind a backlog of frames.
            tokio::select! {
                biased;
                cmd = self.commands.recv() => {
                    let now = self.clock.now();
                    match cmd {
                        Some(Command::Subscribe(topics, reply)) => {
                            let _ = reply.send(self.session.subscribe(now, topics));
                            self.events.set_topics(self.session.topics());
                        }
                        Some(Command::Unsubscribe(topics, reply)) => {
                            let _ = reply.send(self.session.unsubscribe(now, topics.iter()));
                            self.events.set_topics(self.session.topics());
                        }
                        Some(Command::Login(token, expires_in, reply)) => { let _ = reply.send(self.session.login(now, token, expires_in)); }
                        Some(Command::ReportUnauthorized(token)) => self.session.report_unauthorized(now, &token),
                        Some(Command::Close(reply)) => {
                            waiting_close.push(reply);
                            self.session.close(now);
                        }
                        // Every handle and the event stream are gone: nobody can hear us.
                        None => self.session.close(now),
                    }
                }
                msg = self.inputs.recv() => if let Some(msg) = msg { self.message(msg) },
                () = sleep => {
                    self.suspend_check();
                    if let Some((_, why)) = deadline {
                        tracing::debug!(reason = %why, "wake");
                    }
                    self.follow_herd();
                    let now = self.clock.now();
                    self.session.handle_timeout(now);
                }
            }
        }
    }

    fn message(&mut self, msg: Msg) {
        match msg {
            // The frame's place in the inbox is given back once it is handled.
            Msg::Read(input, _place) => self.message(Msg::Input(input)),
            Msg::Input(input) => {
                // A socket that reported its end is released here: the core sends no
                // `Close` for it.
                if let Input::Closed { conn, .. } | Input::ConnectFailed { conn, .. } = &input {
                    if let Some((_, task)) = self.sockets.remove(conn) {
                        self.closing.push(task);
                    }
                }
                self.suspend_check();
                self.follow_herd();
                let now = self.clock.now();
                self.session.handle_input(now, input);
            }
            Msg::Warning(w) => {
                tracing::warn!(warning = %w);
                self.events
                    .push(self.clock.now(), Event::Warning(CoreError::Local(w)));
            }
        }
    }

    /// Widens the first-retry spread with the number of sessions in the process.
    fn follow_herd(&mut self) {
        let spread = self.herd.spread(self.base_spread);
        self.session.set_first_retry_spread(spread);
    }

    fn suspend_check(&mut self) {
        if let Some(slept) = self.clock.check_suspend() {
            tracing::info!(slept_ms = slept.as_millis() as u64, "machine resumed");
            let now = self.clock.now();
            self.session.handle_input(now, Input::Resumed { slept });
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.session.poll_action() {
            tracing::debug!(action = ?action);
            self.perform(action);
        }
        let now = self.clock.now();
        while let Some(e) = self.session.poll_event() {
            match &e {
                Event::Status(s) => tracing::info!(status = %s),
                Event::Gap { topics, reason, .. } => {
                    tracing::warn!(topics = topics.len(), reason = %reason, "gap")
                }
                Event::Warning(w) => tracing::warn!(warning = %w),
                Event::LoginRequired { reason, .. } => {
                    tracing::error!(reason = %reason, "login required")
                }
                Event::LoginSoon { reason, expires_in } => {
                    tracing::warn!(reason = %reason, expires_in_s = expires_in.as_secs(), "login soon")
                }
                _ => {}
            }
            self.events.push(now, e);
        }
        let status = self.session.status();
        self.status
            .send_if_modified(|s| std::mem::replace(s, status) != status);
        self.closing.retain(|t| !t.is_finished());
        *lock(&self.held) = Held {
            sockets: self.sockets.len(),
            tasks: self.sockets.len() + self.closing.len(),
            channels: self.session.channels_held(),
        };
        let token = self.session.access_token().cloned();
        self.token.send_if_modified(|t| {
            let changed = *t != token;
            *t = token;
            changed
        });
    }

    fn perform(&mut self, action: Action) {
        let action = match http::rest_exchange(&self.endpoints, action) {
            Ok((request, finish)) => return self.spawn_http(request, finish),
            Err(other) => other,
        };
        match action {
            Action::RequestToken { req } => {
                let tokens = Arc::clone(&self.tokens);
                let client = self.http.clone();
                let timeout = self.http_timeout;
                let tx = self.inputs_tx.clone();
                let task = tokio::spawn(async move {
                    let t = Arc::clone(&tokens);
                    let step = tokio::task::spawn_blocking(move || lock(&t).begin(req)).await;
                    let (input, problem) = match step {
                        Ok(TokenStep::Done(input)) => (input, None),
                        Ok(TokenStep::Http(request)) => {
                            let answer = execute(&client, &request, timeout).await;
                            match tokio::task::spawn_blocking(move || {
                                // Saved outside the lock: a hung callback holds this blocking
                                // thread only, not the next token request.
                                let (input, rotation) = lock(&tokens).finish_answer(req, answer);
                                (input, rotation.and_then(Rotation::persist))
                            })
                            .await
                            {
                                Ok(done) => done,
                                Err(e) => (
                                    Input::TokenFailed {
                                        req,
                                        error: RequestError::network(format!(
                                            "token source failed: {e}"
                                        )),
                                    },
                                    None,
                                ),
                            }
                        }
                        Err(e) => (
                            Input::TokenFailed {
                                req,
                                error: RequestError::network(format!("token source failed: {e}")),
                            },
                            None,
                        ),
                    };
                    if let Some(p) = problem {
                        let _ = tx.send(Msg::Warning(p)).await;
                    }
                    let _ = tx.send(Msg::Input(input)).await;
                });
                self.closing.push(task);
            }
            Action::Connect { conn, url } => {
                let (tx, rx) = mpsc::channel(SOCKET_COMMANDS);
                let task = tokio::spawn(socket(
                    conn,
                    url,
                    Opening {
                        tls: Arc::clone(&self.tls),
                        max_frame_size: self.max_frame_size,
                        deadline: self.http_timeout,
                        inbox: Arc::clone(&self.inbox),
                    },
                    self.inputs_tx.clone(),
                    rx,
                ));
                self.sockets.insert(conn, (tx, task));
            }
            Action::Send { conn, text } => {
                if let Some((tx, _)) = self.sockets.get(&conn) {
                    // The session sends a handful of pings at most; a socket that cannot take
                    // them is not reading and will fail its ping deadline.
                    let _ = tx.try_send(SocketCmd::Text(text));
                }
            }
            Action::Close { conn, code } => {
                if let Some((tx, task)) = self.sockets.remove(&conn) {
                    close_socket(&tx, &task, code);
                    self.closing.push(task);
                }
            }
            other => tracing::warn!(action = ?other, "unknown action ignored"),
        }
    }

    fn spawn_http(
        &mut self,
        request: HttpRequest,
        finish: impl FnOnce(Result<HttpAnswer, String>) -> (Input, Option<LocalError>) + Send + 'static,
    ) {
        let client = self.http.clone();
        let timeout = self.http_timeout;
        let tx = self.inputs_tx.clone();
        let task = tokio::spawn(async move {
            let (input, problem) = finish(execute(&client, &request, timeout).await);
            if let Some(p) = problem {
                let _ = tx.send(Msg::Warning(p)).await;
            }
            let _ = tx.send(Msg::Input(input)).await;
        });
        self.closing.push(task);
    }
}

pub(crate) async fn execute(
    client: &reqwest::Client,
    r: &HttpRequest,
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut b = client.request(method, &r.url).timeout(timeout);
    for (name, value) in &r.headers {
        b = b.header(*name, value);
    }
    if let Some(body) = &r.body {
        b = b.body(body.clone());
    }
    let mut resp = b
        .send()
        .await
        .map_err(|e| format!("{} ({})", describe(e), http::host_of(&r.url)))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > http::MAX_ANSWER_BODY {
            return Err("the answer body is larger than 4 MiB".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpAnswer::new(
        status,
        &headers,
        String::from_utf8_lossy(&body).into_owned(),
    ))
}

/// reqwest errors carry the URL; ours has no secret in it, but keep the text short anyway.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    let e = e.without_url();
    // reqwest's own text hides the cause (a TLS verdict, a refused connection): add the chain.
    let mut text = format!("{kind}: {e}");
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        let c_text = c.to_string();
        if !text.contains(&c_text) {
            text.push_str(": ");
            text.push_str(&c_text);
        }
        cause = c.source();
    }
    text
}

/// The TLS configuration and HTTP client. Sessions without an extra root share one pair:
/// thousands of sessions in a process must not each hold a copy of the root store.
fn clients(
    extra_root_pem: Option<&str>,
) -> Result<(Arc<rustls::ClientConfig>, reqwest::Client), String> {
    static SHARED: std::sync::OnceLock<(Arc<rustls::ClientConfig>, reqwest::Client)> =
        std::sync::OnceLock::new();
    let build =
        |pem: Option<&str>| -> Result<(Arc<rustls::ClientConfig>, reqwest::Client), String> {
            let tls = tls_config(pem)?;
            let http = reqwest::Client::builder()
                .tls_backend_preconfigured(rustls::ClientConfig::clone(&tls))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| e.to_string())?;
            Ok((tls, http))
        };
    match extra_root_pem {
        Some(pem) => build(Some(pem)),
        None => {
            if let Some(pair) = SHARED.get() {
                return Ok(pair.clone());
            }
            let pair = build(None)?;
            Ok(SHARED.get_or_init(|| pair).clone())
        }
    }
}

/// How a socket opens.
struct Opening {
    tls: Arc<rustls::ClientConfig>,
    max_frame_size: usize,
    /// The whole opening (TCP, TLS, upgrade) must finish within this.
    deadline: Duration,
    /// The inbox's byte budget ([`INBOX_BYTES`] permits), shared by every socket.
    inbox: Arc<tokio::sync::Semaphore>,
}

async fn socket(
    conn: ConnId,
    url: Secret,
    Opening {
        tls,
        max_frame_size,
        deadline,
        inbox,
    }: Opening,
    tx: mpsc::Sender<Msg>,
    mut cmds: mpsc::Receiver<SocketCmd>,
) {
    let config = WebSocketConfig::default()
        .read_buffer_size(8 << 10)
        .write_buffer_size(0)
        .max_message_size(Some(max_frame_size))
        .max_frame_size(Some(max_frame_size));
    let connect = tokio_tungstenite::connect_async_tls_with_config(
        url.expose(),
        Some(config),
        true,
        Some(Connector::Rustls(tls)),
    );
    let ws = tokio::select! {
        r = tokio::time::timeout(deadline, connect) => r,
        // Closed before it opened: give up the attempt.
        _ = cmds.recv() => return,
    };
    let ws = match ws {
        Ok(Ok((ws, _))) => ws,
        Err(_) => {
            let error = RequestError::network(format!(
                "the socket did not open within {} s ({})",
                deadline.as_secs(),
                http::host_of(url.expose())
            ));
            let _ = tx
                .send(Msg::Input(Input::ConnectFailed { conn, error }))
                .await;
            return;
        }
        Ok(Err(e)) => {
            let error = match socket::upgrade_error(&e) {
                // Name the streaming host (never the path: it holds the channel id).
                RequestError::Network(why) => {
                    RequestError::network(format!("{why} ({})", http::host_of(url.expose())))
                }
                other => other,
            };
            let _ = tx
                .send(Msg::Input(Input::ConnectFailed { conn, error }))
                .await;
            return;
        }
    };
    if tx.send(Msg::Input(Input::Opened { conn })).await.is_err() {
        return;
    }
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    // A frame larger than the budget takes all of it, alone.
                    let n = u32::try_from(t.len()).unwrap_or(u32::MAX).clamp(1, INBOX_BYTES);
                    let Ok(place) = Arc::clone(&inbox).acquire_many_owned(n).await else {
                        return;
                    };
                    if tx.send(Msg::Read(Input::Frame { conn, text: t.as_str().to_owned() }, place)).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(f))) => {
                    let (code, reason) = f.map_or((None, String::new()), |f| (Some(u16::from(f.code)), f.reason.as_str().to_owned()));
                    let _ = tx.send(Msg::Input(Input::Closed { conn, code, reason })).await;
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Msg::Input(Input::Closed { conn, code: None, reason: socket::describe(&e) })).await;
                    return;
                }
                None => {
                    let _ = tx.send(Msg::Input(Input::Closed { conn, code: None, reason: "connection closed".into() })).await;
                    return;
                }
            },
            cmd = cmds.recv() => match cmd {
                Some(SocketCmd::Text(t)) => {
                    if sink.send(Message::text(t)).await.is_err() {
                        // The read side reports the failure.
                    }
                }
                Some(SocketCmd::Close(code)) => {
                    let frame = CloseFrame { code: CloseCode::from(code), reason: "".into() };
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(frame)))).await;
                    return;
                }
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(None))).await;
                    return;
                }
            },
        }
    }
}
