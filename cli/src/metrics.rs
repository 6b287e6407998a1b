//! `tail --metrics ADDR`: the session's figures in the Prometheus text format at
//! `http://ADDR/metrics`, for running `tail` as a service. Encoded with `prometheus-client`
//! (the Prometheus project's Rust client); served by one small thread that answers one
//! request at a time, reads at most 8 KiB of it and gives up on a client after 2 s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use genesys_notify_core::{Action, Event, Status};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

/// Every status a session reports, so each has a series (1 for the current one).
const STATUSES: [Status; 6] = [
    Status::Connecting,
    Status::Live,
    Status::Recovering,
    Status::LoginRequired,
    Status::Closed,
    Status::Failed,
];

/// The figures, updated from the session's events and actions.
pub(crate) struct Metrics {
    registry: Registry,
    status: Family<StatusLabel, Gauge>,
    notifications: Counter,
    gaps: Family<ReasonLabel, Counter>,
    uncovered: Family<ReasonLabel, Counter<f64, AtomicU64>>,
    requests: Family<KindLabel, Counter>,
    reconnects: Counter,
    warnings: Counter,
    upgrades: AtomicU64,
    /// Unix milliseconds of the last notification (0: none yet).
    last_notification_ms: Arc<AtomicU64>,
    /// The running client, for the figures only it knows (frame ages), once it runs.
    client: Arc<OnceLock<genesys_notify_blocking::Closer>>,
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("genesys_notify");
        let status = Family::<StatusLabel, Gauge>::default();
        registry.register(
            "status",
            "The session's status: 1 for the current one",
            status.clone(),
        );
        let notifications = Counter::default();
        registry.register(
            "notifications",
            "Notifications delivered",
            notifications.clone(),
        );
        let gaps = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "gaps",
            "Gaps reported (stretches to re-read), by reason",
            gaps.clone(),
        );
        let uncovered = Family::<ReasonLabel, Counter<f64, AtomicU64>>::default();
        registry.register(
            "uncovered_seconds",
            "Seconds of reported gaps, by reason",
            uncovered.clone(),
        );
        let requests = Family::<KindLabel, Counter>::default();
        registry.register(
            "requests",
            "Requests the session made, by kind (token, channel, subscription, upgrade)",
            requests.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "reconnects",
            "Socket upgrades after the first",
            reconnects.clone(),
        );
        let warnings = Counter::default();
        registry.register("warnings", "Warnings reported", warnings.clone());
        let last_notification_ms = Arc::new(AtomicU64::new(0));
        let age_of = Arc::clone(&last_notification_ms);
        registry.register_collector(Box::new(LastNotificationAge(age_of)));
        let client = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(FrameAges(Arc::clone(&client))));
        for s in STATUSES {
            status
                .get_or_create(&StatusLabel {
                    status: s.to_string(),
                })
                .set(i64::from(s == Status::Connecting));
        }
        Metrics {
            registry,
            status,
            notifications,
            gaps,
            uncovered,
            requests,
            reconnects,
            warnings,
            upgrades: AtomicU64::new(0),
            last_notification_ms,
            client,
        }
    }

    /// The client is running: its sockets' frame ages can be read from now on.
    pub(crate) fn attach(&self, closer: genesys_notify_blocking::Closer) {
        let _ = self.client.set(closer);
    }

    /// An event the application received.
    pub(crate) fn event(&self, e: &Event) {
        match e {
            Event::Notification { .. } => {
                self.notifications.inc();
                self.last_notification_ms
                    .store(unix_ms(SystemTime::now()), Ordering::Relaxed);
            }
            Event::Status(now) => {
                for s in STATUSES {
                    self.status
                        .get_or_create(&StatusLabel {
                            status: s.to_string(),
                        })
                        .set(i64::from(s == *now));
                }
            }
            Event::Gap {
                from, to, reason, ..
            } => {
                let label = ReasonLabel {
                    reason: reason.to_string(),
                };
                self.gaps.get_or_create(&label).inc();
                let secs = to.saturating_duration_since(*from).as_secs_f64();
                self.uncovered.get_or_create(&label).inc_by(secs);
            }
            Event::Warning(_) => {
                self.warnings.inc();
            }
            _ => {}
        }
    }

    /// A request the session made.
    pub(crate) fn action(&self, a: &Action) {
        let kind = match a {
            Action::RequestToken { .. } => "token",
            Action::CreateChannel { .. } => "channel",
            Action::PutSubscriptions { .. } => "subscription",
            Action::Connect { .. } => {
                if self.upgrades.fetch_add(1, Ordering::Relaxed) > 0 {
                    self.reconnects.inc();
                }
                "upgrade"
            }
            _ => return,
        };
        self.requests
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

/// `last_notification_age_seconds`, computed when scraped.
#[derive(Debug)]
struct LastNotificationAge(Arc<AtomicU64>);

impl prometheus_client::collector::Collector for LastNotificationAge {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let last = self.0.load(Ordering::Relaxed);
        if last == 0 {
            return Ok(());
        }
        let age = unix_ms(SystemTime::now()).saturating_sub(last) as f64 / 1000.0;
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(age);
        let metric = encoder.encode_descriptor(
            "last_notification_age_seconds",
            "Seconds since the last notification",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        prometheus_client::encoding::EncodeMetric::encode(&gauge, metric)
    }
}

/// `socket_last_frame_age_seconds{socket="0"|"1"}`: per open socket (in the order they
/// opened), how long ago its last frame (heartbeats and pongs count) arrived.
struct FrameAges(Arc<OnceLock<genesys_notify_blocking::Closer>>);

impl std::fmt::Debug for FrameAges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FrameAges")
    }
}

impl prometheus_client::collector::Collector for FrameAges {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        let Some(closer) = self.0.get() else {
            return Ok(());
        };
        let ages = closer.frame_ages();
        if ages.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "socket_last_frame_age_seconds",
            "Per open socket, seconds since its last frame (heartbeats and pongs count)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (i, age) in ages.iter().enumerate() {
            let labels = [("socket", i.to_string())];
            let gauge = prometheus_client::metrics::gauge::ConstGauge::new(age.as_secs_f64());
            let metric = family.encode_family(&labels)?;
            prometheus_client::encoding::EncodeMetric::encode(&gauge, metric)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Binds `addr` and serves `/metrics` on a thread. A bind error is returned (a usage error).
pub(crate) fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on --metrics {addr}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("--metrics {addr}: {e}"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                answer(conn, &metrics);
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(bound)
}

/// One request: `GET /metrics` gets the figures, anything else a 404.
fn answer(mut conn: TcpStream, metrics: &Metrics) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8192];
    let mut len = 0;
    while len < buf.len() {
        match conn.read(&mut buf[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let request = String::from_utf8_lossy(&buf[..len]);
    let first = request.lines().next().unwrap_or_default();
    let (status, ctype, body) = if first.starts_with("GET /metrics ") || first == "GET /metrics" {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        )
    } else {
        (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics is served here\n".to_owned(),
        )
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
