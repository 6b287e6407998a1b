//! `tail --metrics ADDR`: the session's figures in the Prometheus text format at
//! `http://ADDR/metrics`, for running `tail` as a service. Encoded with `prometheus-client`
//! (the Prometheus project's Rust client).
//!
//! The endpoint is plain, unauthenticated HTTP/1.1 and must stay answerable however its
//! clients behave: at most [`MAX_CONNECTIONS`] are served at once (each on its own thread; a
//! connection beyond that is closed at once), a request must arrive whole (at most 8 KiB)
//! within [`REQUEST_DEADLINE`] or the connection is closed, and after an `accept` error (out of
//! file descriptors, say) the listener waits before it tries again, up to one second.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
        registry.register_collector(Box::new(FromClient(Arc::clone(&client))));
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

/// What is read from the running client when scraped: `channels`, the channels the session
/// holds (one per 1,000 topics, two with redundancy 2, one more during a renewal), and
/// `socket_last_frame_age_seconds{socket="0"|"1"|…}`, per open socket (in the order they
/// opened) how long ago its last frame (heartbeats and pongs count) arrived.
struct FromClient(Arc<OnceLock<genesys_notify_blocking::Closer>>);

impl std::fmt::Debug for FromClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FromClient")
    }
}

impl prometheus_client::collector::Collector for FromClient {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::{gauge::ConstGauge, MetricType};
        let Some(closer) = self.0.get() else {
            return Ok(());
        };
        let channels = ConstGauge::new(closer.held().channels as i64);
        channels.encode(encoder.encode_descriptor(
            "channels",
            "Channels the session holds (one per 1000 topics, two with redundancy 2, one more during a renewal)",
            None,
            MetricType::Gauge,
        )?)?;
        let ages = closer.frame_ages();
        if ages.is_empty() {
            return Ok(());
        }
        let mut family = encoder.encode_descriptor(
            "socket_last_frame_age_seconds",
            "Per open socket, seconds since its last frame (heartbeats and pongs count)",
            None,
            MetricType::Gauge,
        )?;
        for (i, age) in ages.iter().enumerate() {
            let labels = [("socket", i.to_string())];
            ConstGauge::new(age.as_secs_f64()).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Connections served at once; a scraper needs one, a person with curl another.
pub(crate) const MAX_CONNECTIONS: usize = 4;

/// How long a client has to send its whole request.
pub(crate) const REQUEST_DEADLINE: Duration = Duration::from_secs(3);

/// How long writing the answer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest wait after failed `accept`s in a row.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

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
            accept_loop(
                || Some(listener.accept().map(|(c, _)| c)),
                &metrics,
                std::thread::sleep,
            );
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(bound)
}

/// Holds one of the [`MAX_CONNECTIONS`] places while a connection is served.
struct Place(Arc<AtomicUsize>);

impl Place {
    fn take(active: &Arc<AtomicUsize>) -> Option<Place> {
        active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_CONNECTIONS).then_some(n + 1)
            })
            .ok()
            .map(|_| Place(Arc::clone(active)))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves what `accept` gives until it gives `None` (only tests stop it). After a failed
/// accept it waits through `sleep`, twice as long after each failure in a row, from 10 ms up
/// to [`MAX_ACCEPT_BACKOFF`]: EMFILE and friends do not clear by retrying at once.
fn accept_loop(
    mut accept: impl FnMut() -> Option<std::io::Result<TcpStream>>,
    metrics: &Arc<Metrics>,
    sleep: impl Fn(Duration),
) {
    let active = Arc::new(AtomicUsize::new(0));
    let mut backoff = Duration::ZERO;
    while let Some(accepted) = accept() {
        let conn = match accepted {
            Ok(conn) => {
                backoff = Duration::ZERO;
                conn
            }
            Err(_) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                sleep(backoff);
                continue;
            }
        };
        // Beyond the bound the connection is dropped (closed) at once.
        let Some(place) = Place::take(&active) else {
            continue;
        };
        let metrics = Arc::clone(metrics);
        let _ = std::thread::Builder::new()
            .name("metrics-conn".into())
            .spawn(move || {
                let _place = place;
                answer(conn, &metrics);
            });
    }
}

/// Reads a request head (up to the blank line, at most `buf.len()` bytes) before `deadline`;
/// the number of bytes read, or `None` when the client was too slow or went away.
fn read_head(conn: &mut TcpStream, buf: &mut [u8], deadline: std::time::Instant) -> Option<usize> {
    let mut len = 0;
    while len < buf.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return None;
        }
        match conn.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return None,
            Ok(n) => len += n,
        }
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(len);
        }
    }
    Some(len)
}

/// One request: `GET /metrics` gets the figures, anything else a 404.
fn answer(mut conn: TcpStream, metrics: &Metrics) {
    let deadline = std::time::Instant::now() + REQUEST_DEADLINE;
    let _ = conn.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = [0u8; 8192];
    let Some(len) = read_head(&mut conn, &mut buf, deadline) else {
        return;
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn failed_accepts_back_off_instead_of_spinning() {
        let metrics = Arc::new(Metrics::new());
        let waits = RefCell::new(Vec::new());
        let mut calls = 0;
        accept_loop(
            || {
                calls += 1;
                // Out of file descriptors, fifty times in a row.
                (calls <= 50).then(|| Err(std::io::Error::from_raw_os_error(24)))
            },
            &metrics,
            |d| waits.borrow_mut().push(d),
        );
        let waits = waits.into_inner();
        assert_eq!(waits.len(), 50);
        assert_eq!(waits[0], Duration::from_millis(10));
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert_eq!(waits[49], MAX_ACCEPT_BACKOFF);
        let total: Duration = waits.iter().sum();
        assert!(total >= Duration::from_secs(40), "{total:?}");
    }
}
