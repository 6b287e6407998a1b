//! The browser adapter under test: `genesys-notify-web` in headless Chromium (Debian's
//! `chromium`, driven by playwright-core) or Firefox (Debian's `firefox-esr`, driven by
//! puppeteer-core over WebDriver BiDi) through `web/test/bridge.mjs`, on a page the
//! simulator serves. The page's events come back as JSON lines and are turned into the
//! core's events, so the same ledger accounts for them as for the Rust adapters.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use genesys_notify_adapter_common::percent_encode as encode;
use genesys_notify_core::{
    AuthError, Event, FatalError, GapReason, Instant, ServerError, Status, Topic,
};
use genesys_notify_sim::Sim;
use serde_json::Value;

use crate::{Adapter, Running, Scenario};

/// The repository's `web/` directory.
pub fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("web"), |p| p.join("web"))
}

/// A browser the tests drive (Debian's, never a downloaded one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// `chromium`, through playwright-core (the Chrome DevTools Protocol).
    #[default]
    Chromium,
    /// `firefox-esr`, through puppeteer-core over WebDriver BiDi.
    Firefox,
}

impl Engine {
    /// Its name in the tests' lines (`engine=firefox`) and for the bridges (`GNW_ENGINE`).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
        }
    }
}

/// What the browser tests need and did not find, with how to get it; empty when all is there.
pub fn missing() -> Vec<String> {
    missing_in(Engine::Chromium)
}

/// What the browser tests in `engine` need and did not find, with how to get it.
pub fn missing_in(engine: Engine) -> Vec<String> {
    let mut m = Vec::new();
    let (var, default, package) = match engine {
        Engine::Chromium => ("CHROMIUM", "/usr/bin/chromium", "chromium"),
        Engine::Firefox => ("FIREFOX", "/usr/bin/firefox-esr", "firefox-esr"),
    };
    let binary = std::env::var(var).unwrap_or_else(|_| default.into());
    if !Path::new(&binary).exists() {
        m.push(format!(
            "{} ({binary}): apt-get install -y {package}, or set {var}",
            engine.name()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        m.push("Node.js (node): install Node 20 or later".into());
    }
    let web = web_dir();
    let driver = match engine {
        Engine::Chromium => "playwright-core",
        Engine::Firefox => "puppeteer-core",
    };
    if !web.join("node_modules").join(driver).exists() {
        m.push(format!("the Node packages: cd {} && npm ci", web.display()));
    }
    m
}

/// Builds `web/pkg` (the wasm session and its glue) if it is missing or older than the Rust
/// sources. Err says what to install.
pub fn build_pkg() -> Result<(), String> {
    let out = Command::new("bash")
        .arg(web_dir().join("build.sh"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run web/build.sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The scenario's session settings, as the page's options.
fn tuning(s: &Scenario) -> Value {
    let c = &s.session;
    let ms = |d: Duration| d.as_millis() as u64;
    serde_json::json!({
        "idleTimeoutMs": ms(c.idle_timeout),
        "pingTimeoutMs": ms(c.ping_timeout),
        "backoffBaseMs": ms(c.backoff_base),
        "backoffCapMs": ms(c.backoff_cap),
        "stableAfterMs": ms(c.stable_after),
        "maintenanceGraceMs": ms(c.maintenance_grace),
        "requestTimeoutMs": ms(c.request_timeout),
        "handoverLingerMs": ms(c.handover_linger),
        "maxChannelCreationsPerMinute": c.max_channel_creations_per_minute,
        "maxTokenRequestsPerMinute": c.max_token_requests_per_minute,
        "maxSubscriptionRequestsPerMinute": c.max_subscription_requests_per_minute,
        "maxConnectsPerMinute": c.max_connects_per_minute,
        "redundancy": c.redundancy,
        "maxChannels": c.max_channels,
        "maxTopicsPerChannel": c.max_topics_per_channel,
    })
}

fn gap_reason(s: &str) -> GapReason {
    match s {
        "socket_dead" => GapReason::SocketDead,
        "channel_expired" => GapReason::ChannelExpired,
        "maintenance" => GapReason::Maintenance,
        "subscription_dropped" => GapReason::SubscriptionDropped,
        "rejected" => GapReason::Rejected,
        "login_required" => GapReason::LoginRequired,
        "suspended" => GapReason::Suspended,
        "overflow" => GapReason::Overflow,
        _ => GapReason::SocketLost,
    }
}

fn status(s: &str) -> Status {
    match s {
        "live" => Status::Live,
        "recovering" => Status::Recovering,
        "login_required" => Status::LoginRequired,
        "closed" => Status::Closed,
        "failed" => Status::Failed,
        _ => Status::Connecting,
    }
}

/// A warning with the page's text.
fn page_warning(detail: String) -> Event {
    Event::Warning(
        ServerError::Network {
            what: "browser",
            detail,
            next_attempt_ms: None,
        }
        .into(),
    )
}

/// One line from the page as the core's event (None: bookkeeping).
fn to_event(v: &Value, start_epoch_ms: u64) -> Option<Event> {
    let text = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let at =
        |k: &str| Instant::from_millis(v[k].as_u64().unwrap_or(0).saturating_sub(start_epoch_ms));
    Some(match v["type"].as_str()? {
        "notification" => Event::Notification {
            topic: text("topic"),
            raw: text("raw"),
        },
        "gap" => Event::Gap {
            topics: v["topics"]
                .as_array()?
                .iter()
                .filter_map(|t| Topic::new(t.as_str()?).ok())
                .collect(),
            from: at("fromEpochMs"),
            to: at("toEpochMs"),
            reason: gap_reason(&text("reason")),
        },
        "status" => Event::Status(status(&text("status"))),
        "warning" => page_warning(text("message")),
        "topicrejected" => Event::TopicRejected {
            topic: text("topic"),
            reason: text("reason"),
        },
        "loginrequired" => Event::LoginRequired {
            reason: AuthError::CannotRefresh {
                detail: text("reason"),
            },
            since: v["sinceMs"].as_u64().map(Instant::from_millis),
        },
        "tokenrotated" => Event::TokenRotated,
        "loginsoon" => Event::LoginSoon {
            reason: AuthError::WillNotRenew {
                detail: text("reason"),
            },
            expires_in: Duration::from_millis(v["expiresInMs"].as_u64().unwrap_or(0)),
        },
        "resumed" => page_warning(format!(
            "the page resumed after {} ms frozen",
            v["sleptMs"].as_f64().unwrap_or(0.0) as u64
        )),
        "fatal" | "pageerror" => Event::Fatal(FatalError::Refused {
            what: "browser",
            detail: text("message"),
        }),
        _ => return None,
    })
}

/// A headless browser running `genesys-notify-web`.
#[derive(Default)]
pub struct Browser {
    /// More of the test page's query (`&auth=pkce`: sign in with PKCE, not client
    /// credentials).
    pub query: String,
    /// A freeze comes with the Page Lifecycle `freeze` and `resume` events, as Chromium
    /// sends them when it freezes a background tab.
    pub lifecycle: bool,
    /// The browser.
    pub engine: Engine,
}

struct BrowserRunning {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    start_epoch_ms: u64,
    status: Status,
    lifecycle: bool,
}

impl BrowserRunning {
    /// Sends a command to the bridge (`freeze MS`).
    fn command(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
        }
    }
}

impl Running for BrowserRunning {
    fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let v = self.lines.recv_timeout(left).ok()?;
            if v["type"] == "start" {
                self.start_epoch_ms = v["epochMs"].as_u64().unwrap_or(0);
                continue;
            }
            if let Some(e) = to_event(&v, self.start_epoch_ms) {
                if let Event::Status(s) = e {
                    self.status = s;
                }
                return Some(e);
            }
        }
    }
    fn wall_time(&self, at: Instant) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.start_epoch_ms + at.as_millis())
    }
    fn status(&self) -> Status {
        self.status
    }
    fn close(&mut self) {
        self.command("close");
        // The bridge closes the client, passes on its last events, and exits.
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stdin = None;
    }
    fn held(&self) -> genesys_notify_adapter_common::Held {
        genesys_notify_adapter_common::Held::default()
    }
    fn freeze(&mut self, for_ms: u64) {
        let how = if self.lifecycle { " lifecycle" } else { "" };
        self.command(&format!("freeze {for_ms}{how}"));
    }
}

impl Drop for BrowserRunning {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Adapter for Browser {
    fn name(&self) -> &'static str {
        "browser"
    }

    fn start(&self, s: &Scenario, sim: &Sim) -> Box<dyn Running> {
        let url = format!(
            "{}/test/page.html?{}{}",
            sim.base_url(),
            page_query(sim, &s.topics, s),
            self.query,
        );
        let (child, stdin, rx) = spawn_bridge("test/bridge.mjs", &[url], self.engine);
        Box::new(BrowserRunning {
            child,
            stdin,
            lines: rx,
            start_epoch_ms: 0,
            status: Status::Connecting,
            lifecycle: self.lifecycle,
        })
    }
}

/// Starts one of `web/test`'s Node bridges (`script`, relative to `web/`) with `args`, driving
/// `engine`: the child, its stdin, and its stdout's JSON lines (other lines go to stderr).
fn spawn_bridge(
    script: &str,
    args: &[String],
    engine: Engine,
) -> (Child, Option<ChildStdin>, mpsc::Receiver<Value>) {
    let mut child = Command::new("node")
        .arg(web_dir().join(script))
        .args(args)
        .env("GNW_ENGINE", engine.name())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let stdin = child.stdin.take();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                Err(_) => eprintln!("bridge: {line}"),
            }
        }
    });
    (child, stdin, rx)
}

/// Several tabs of one browser profile (`web/test/tabs.mjs`), so they share one
/// SharedWorker. Each line from a tab carries `"tab": I`.
pub struct Tabs {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Value>,
    /// The tabs' lines that came while [`Tabs::step`] waited for answers.
    seen: Vec<Value>,
}

impl Tabs {
    /// Opens a tab per URL in Chromium, in order, each after the last has loaded.
    pub fn open(urls: &[String]) -> Tabs {
        Tabs::open_in(Engine::Chromium, urls)
    }

    /// Opens a tab per URL in `engine`, in order, each after the last has loaded.
    pub fn open_in(engine: Engine, urls: &[String]) -> Tabs {
        let (child, stdin, lines) = spawn_bridge("test/tabs.mjs", urls, engine);
        Tabs {
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// A command for the bridge: `open URL`, `closetab I`, `click I SELECTOR`,
    /// `screenshot I PATH`, `close`.
    pub fn command(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
        }
    }

    /// Sends a command and waits (`timeout` at most) for the bridge's answer to it; the
    /// tabs' lines that come meanwhile are returned beside it.
    pub fn ask(&mut self, line: &str, timeout: Duration) -> (Option<Value>, Vec<Value>) {
        self.command(line);
        let end = std::time::Instant::now() + timeout;
        let mut other = Vec::new();
        while let Some(v) = self.next(end.saturating_duration_since(std::time::Instant::now())) {
            let answer =
                v["type"] == "bridge" && v.get("opened").is_none() && v.get("ready").is_none();
            if answer {
                return (Some(v), other);
            }
            other.push(v);
        }
        (None, other)
    }

    /// Sends a command that must succeed (answered within 40 s, not `"ok": false`) and
    /// returns the answer; the tabs' lines that came meanwhile are kept for
    /// [`Tabs::assert_no_page_error`] and shown if it fails.
    pub fn step(&mut self, cmd: &str) -> Value {
        let (answer, lines) = self.ask(cmd, Duration::from_secs(40));
        self.seen.extend(lines);
        let seen = &self.seen;
        let answer = answer.unwrap_or_else(|| panic!("no answer to {cmd}: {seen:?}"));
        assert_ne!(
            answer["ok"], false,
            "{cmd}: {answer}\nthe page said: {seen:?}"
        );
        answer
    }

    /// The tabs' lines [`Tabs::step`] kept, in order.
    pub fn seen(&self) -> &[Value] {
        &self.seen
    }

    /// No tab reported a page error among the lines [`Tabs::step`] kept.
    pub fn assert_no_page_error(&self) {
        for v in &self.seen {
            assert!(v["type"] != "pageerror", "the page ran without errors: {v}");
        }
    }

    /// The next line from a tab or the bridge, if one comes within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// Closes every tab's client, then the browser; waits for the bridge to exit (10 s at
    /// most) and returns the lines that came meanwhile.
    pub fn close(&mut self) -> Vec<Value> {
        self.command("close");
        let mut rest = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < end {
            while let Ok(v) = self.lines.try_recv() {
                rest.push(v);
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        while let Ok(v) = self.lines.try_recv() {
            rest.push(v);
        }
        self.stdin = None;
        rest
    }
}

impl Drop for Tabs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The query of a test page for the simulator's client credentials, `topics` and the
/// scenario's session settings.
pub fn page_query(sim: &Sim, topics: &[&str], s: &Scenario) -> String {
    format!(
        "id={}&secret={}&topics={}&tuning={}",
        encode(sim.client_id()),
        encode(sim.client_secret()),
        encode(&serde_json::to_string(topics).unwrap_or_default()),
        encode(&tuning(s).to_string()),
    )
}
