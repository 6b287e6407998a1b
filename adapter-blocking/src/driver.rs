//! The driver thread: the core's drive loop over reader and HTTP results, application
//! commands and the next deadline, plus the threads it starts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use genesys_notify_adapter_common::herd::Member;
use genesys_notify_adapter_common::http::{self, HttpAnswer, HttpRequest};
use genesys_notify_adapter_common::{Clock, Endpoints, Rotation, TokenSource, TokenStep};
use genesys_notify_core::{
    Action, ConnId, Error as CoreError, Event, Input, LocalError, RequestError, Session,
};

use crate::{socket, ActionObserver, Command, Held, Msg, Shared};

/// How long a close waits for the sockets' close frames before it leaves stragglers (a socket
/// still connecting to a black-holed host) behind.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

pub(crate) struct Parts {
    pub(crate) session: Session,
    pub(crate) rx: Receiver<Msg>,
    pub(crate) tx: SyncSender<Msg>,
    pub(crate) endpoints: Arc<Endpoints>,
    pub(crate) tokens: Arc<Mutex<TokenSource>>,
    pub(crate) agent: ureq::Agent,
    pub(crate) socket_config: socket::Settings,
    pub(crate) on_action: Option<ActionObserver>,
    pub(crate) clock: Clock,
    pub(crate) shared: Arc<Shared>,
}

pub(crate) struct Driver {
    p: Parts,
    sockets: BTreeMap<ConnId, socket::Handle>,
    /// Threads that are ending or may still run (HTTP requests, closed sockets): joined as
    /// soon as they finish.
    threads: Vec<JoinHandle<()>>,
    /// Results produced on this thread, fed before the inbox (the inbox is bounded, and this
    /// thread must never wait on itself).
    local: VecDeque<Msg>,
    /// This session's place among the sessions of the process, and its own first-retry
    /// spread, which the herd may widen.
    herd: Member,
    base_spread: Duration,
    /// Per socket, when its last frame arrived (at most the two open sockets).
    last_frames: BTreeMap<ConnId, genesys_notify_core::Instant>,
    token_expires: Option<genesys_notify_core::Instant>,
}

fn lock(m: &Mutex<TokenSource>) -> std::sync::MutexGuard<'_, TokenSource> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Driver {
    pub(crate) fn new(p: Parts) -> Driver {
        let base_spread = p.session.first_retry_spread();
        Driver {
            p,
            sockets: BTreeMap::new(),
            threads: Vec::new(),
            local: VecDeque::new(),
            herd: Member::join(),
            base_spread,
            last_frames: BTreeMap::new(),
            token_expires: None,
        }
    }

    pub(crate) fn run(mut self) {
        loop {
            self.serve_commands();
            self.drain();
            if self.p.session.status().is_terminal() {
                break;
            }
            let msg = match self.local.pop_front() {
                Some(m) => Ok(m),
                None => {
                    let wait = self.p.session.poll_timeout().map_or(
                        Duration::from_secs(3600),
                        |(at, _)| {
                            self.p
                                .clock
                                .to_std(at)
                                .saturating_duration_since(std::time::Instant::now())
                        },
                    );
                    self.p.rx.recv_timeout(wait)
                }
            };
            self.detect_suspend();
            match msg {
                Ok(Msg::Input(input)) => self.input(input),
                // The frame's place in the inbox is given back once it is handled.
                Ok(Msg::Read(input, _place)) => self.input(input),
                Ok(Msg::Warning(w)) => self.publish(Event::Warning(CoreError::Local(w))),
                Ok(Msg::Wake) => {}
                Err(RecvTimeoutError::Timeout) => {
                    self.follow_herd();
                    let now = self.p.clock.now();
                    self.p.session.handle_timeout(now);
                }
                // We hold a sender ourselves: this cannot happen, but end rather than spin.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.reap(false);
        }
        self.finish();
    }

    /// Application commands come before anything queued: a close is never stuck behind a
    /// backlog of frames.
    fn serve_commands(&mut self) {
        let commands = self
            .p
            .shared
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for c in commands {
            let now = self.p.clock.now();
            let s = &mut self.p.session;
            match c {
                Command::Subscribe(topics, reply) => {
                    let _ = reply.send(s.subscribe(now, topics));
                    self.p.shared.view().queue.set_topics(s.topics());
                }
                Command::Unsubscribe(topics, reply) => {
                    let _ = reply.send(s.unsubscribe(now, topics.iter()));
                    self.p.shared.view().queue.set_topics(s.topics());
                }
                Command::Login(token, expires_in, reply) => {
                    let _ = reply.send(s.login(now, token, expires_in));
                }
                Command::ReportUnauthorized(token) => s.report_unauthorized(now, &token),
                Command::Close => s.close(now),
            }
            self.drain();
        }
    }

    /// One input, then its actions and events (the core's drive loop). A socket that
    /// reported its end is released here: the core sends no `Close` for it.
    fn input(&mut self, input: Input) {
        if let Input::Closed { conn, .. } | Input::ConnectFailed { conn, .. } = &input {
            if let Some(h) = self.sockets.remove(conn) {
                self.threads.push(h.into_thread());
            }
        }
        self.follow_herd();
        let now = self.p.clock.now();
        match &input {
            Input::Frame { conn, .. } | Input::Opened { conn } => {
                self.last_frames.insert(*conn, now);
            }
            Input::TokenIssued { expires_in, .. } => self.token_expires = Some(now + *expires_in),
            _ => {}
        }
        self.p.session.handle_input(now, input);
        self.drain();
    }

    /// Widens the first-retry spread with the number of sessions in the process.
    fn follow_herd(&mut self) {
        let spread = self.herd.spread(self.base_spread);
        self.p.session.set_first_retry_spread(spread);
    }

    /// A machine suspend stops the monotonic clock but not the wall clock.
    fn detect_suspend(&mut self) {
        if let Some(slept) = self.p.clock.check_suspend() {
            let now = self.p.clock.now();
            self.p.session.handle_input(now, Input::Resumed { slept });
        }
    }

    /// Performs every pending action and hands every pending event to the application.
    fn drain(&mut self) {
        while let Some(action) = self.p.session.poll_action() {
            if let Some(f) = self.p.on_action.as_mut() {
                f(&action);
            }
            self.perform(action);
        }
        let now = self.p.clock.now();
        let mut v = self.p.shared.view();
        let mut any = false;
        while let Some(e) = self.p.session.poll_event() {
            v.queue.push(now, e);
            any = true;
        }
        let status = self.p.session.status();
        any |= v.status != status;
        v.status = status;
        // Compared before it is copied: most drains follow a frame and change no token.
        let token = self.p.session.access_token();
        if v.token.as_ref() != token {
            v.token = token.cloned();
            any = true;
        }
        v.held = Held {
            sockets: self.sockets.len(),
            tasks: self.threads.len() + self.sockets.len(),
            channels: self.p.session.channels_held(),
        };
        let open = &self.sockets;
        self.last_frames.retain(|c, _| open.contains_key(c));
        v.last_frames.clear();
        v.last_frames
            .extend(self.last_frames.iter().map(|(c, t)| (*c, *t)));
        v.token_expires = self.token_expires;
        drop(v);
        if any {
            self.p.shared.changed.notify_all();
        }
    }

    fn publish(&mut self, e: Event) {
        let now = self.p.clock.now();
        self.p.shared.view().queue.push(now, e);
        self.p.shared.changed.notify_all();
    }

    fn perform(&mut self, action: Action) {
        let action = match http::rest_exchange(&self.p.endpoints, action) {
            Ok((request, finish)) => return self.spawn_http(request, finish),
            Err(other) => other,
        };
        match action {
            Action::RequestToken { req } => {
                let step = lock(&self.p.tokens).begin(req);
                match step {
                    TokenStep::Done(input) => self.local.push_back(Msg::Input(input)),
                    TokenStep::Http(request) => {
                        let tokens = Arc::clone(&self.p.tokens);
                        self.spawn_http(request, move |answer| {
                            // The callback (fsync, rename) may hang on a slow disk: it runs on
                            // this HTTP thread after the lock is let go, so the driver, which
                            // takes the lock to start the next request, never waits for it.
                            let (input, rotation) = lock(&tokens).finish_answer(req, answer);
                            (input, rotation.and_then(Rotation::persist))
                        });
                    }
                }
            }
            Action::Connect { conn, url } => {
                match socket::spawn(conn, url, &self.p.socket_config, self.p.tx.clone()) {
                    Ok(handle) => {
                        self.sockets.insert(conn, handle);
                    }
                    Err(e) => {
                        let error =
                            RequestError::network(format!("cannot start a socket thread: {e}"));
                        self.local
                            .push_back(Msg::Input(Input::ConnectFailed { conn, error }));
                    }
                }
            }
            Action::Send { conn, text } => {
                if let Some(s) = self.sockets.get(&conn) {
                    s.send(text);
                }
            }
            Action::Close { conn, code } => {
                if let Some(s) = self.sockets.remove(&conn) {
                    self.threads.push(s.close(code));
                }
            }
            other => self.local.push_back(Msg::Warning(LocalError::Unsupported {
                what: format!("{other:?}"),
            })),
        }
    }

    fn spawn_http(
        &mut self,
        request: HttpRequest,
        finish: impl FnOnce(Result<HttpAnswer, String>) -> (Input, Option<LocalError>) + Send + 'static,
    ) {
        let agent = self.p.agent.clone();
        let tx = self.p.tx.clone();
        // The request travels in a slot so that a thread that cannot start still gets its
        // answer fed back, here, as a network failure.
        let slot = Arc::new(Mutex::new(Some(finish)));
        let theirs = Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("genesys-http".into())
            .spawn(move || {
                let taken = theirs.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(finish) = taken {
                    let (input, problem) = finish(execute(&agent, &request));
                    if let Some(p) = problem {
                        let _ = tx.send(Msg::Warning(p));
                    }
                    let _ = tx.send(Msg::Input(input));
                }
            });
        match spawned {
            Ok(t) => self.threads.push(t),
            Err(e) => {
                let taken = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(finish) = taken {
                    let (input, _) = finish(Err(format!("cannot start an HTTP thread: {e}")));
                    self.local.push_back(Msg::Input(input));
                }
            }
        }
    }

    /// Joins every thread that has finished; with `all`, waits up to [`CLOSE_WAIT`] for the
    /// rest and leaves the stragglers (each ends by itself at its own timeout).
    fn reap(&mut self, all: bool) {
        let give_up = std::time::Instant::now() + CLOSE_WAIT;
        loop {
            let (done, running): (Vec<_>, Vec<_>) =
                self.threads.drain(..).partition(JoinHandle::is_finished);
            self.threads = running;
            for t in done {
                let _ = t.join();
            }
            if !all || self.threads.is_empty() || std::time::Instant::now() >= give_up {
                return;
            }
            // Inputs from ending threads must not block them: keep the inbox moving.
            while self.p.rx.try_recv().is_ok() {}
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn finish(&mut self) {
        // Commands that came too late are answered "closed" by dropping them.
        *self
            .p
            .shared
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = None;
        let sockets = std::mem::take(&mut self.sockets);
        for (_, s) in sockets {
            self.threads.push(s.close(1000));
        }
        self.reap(true);
        let mut v = self.p.shared.view();
        v.status = self.p.session.status();
        v.token = None;
        v.held = Held {
            sockets: 0,
            tasks: self.threads.len(),
            channels: 0,
        };
        v.queue.close();
        drop(v);
        self.p.shared.changed.notify_all();
    }
}

pub(crate) fn http_agent(
    extra_root_pem: Option<&str>,
    timeout: Duration,
) -> Result<ureq::Agent, String> {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(pem) = extra_root_pem {
        let mut certs: Vec<ureq::tls::Certificate<'static>> = Vec::new();
        for item in ureq::tls::parse_pem(pem.as_bytes()) {
            if let ureq::tls::PemItem::Certificate(c) = item.map_err(|e| e.to_string())? {
                certs.push(c);
            }
        }
        if certs.is_empty() {
            return Err("no certificate found".into());
        }
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
    }
    Ok(ureq::Agent::config_builder()
        .http_status_as_error(false)
        // A redirect is handed back as the answer it is; the session refuses it.
        .max_redirects(0)
        .timeout_global(Some(timeout))
        .tls_config(tls.build())
        .build()
        .into())
}

/// Runs one request. Network errors are described without the URL's query or any header.
pub(crate) fn execute(agent: &ureq::Agent, r: &HttpRequest) -> Result<HttpAnswer, String> {
    let mut b = ureq::http::Request::builder().method(r.method).uri(&r.url);
    for (name, value) in &r.headers {
        b = b.header(*name, value);
    }
    let request = b
        .body(r.body.clone().unwrap_or_default())
        .map_err(|e| format!("bad request: {e}"))?;
    let mut resp = agent
        .run(request)
        .map_err(|e| format!("{} ({})", describe(&e), http::host_of(&r.url)))?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp
        .body_mut()
        .with_config()
        .limit(http::MAX_ANSWER_BODY as u64)
        .read_to_string()
        .map_err(|e| describe(&e))?;
    Ok(HttpAnswer::new(status, &headers, body))
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => format!("{:?}: {io}", io.kind()),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::ConnectionFailed => "connection failed".to_owned(),
        ureq::Error::Tls(t) => format!("TLS: {t}"),
        ureq::Error::Rustls(t) => format!("TLS: {t}"),
        ureq::Error::BodyExceedsLimit(n) => format!("the answer body is larger than {n} bytes"),
        // Other variants may quote the URL, whose path can hold a channel id.
        _ => "request failed".to_owned(),
    }
}
