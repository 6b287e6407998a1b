//! Hostile peers and slow readers, for every adapter: many reconnects must not leak, a reader
//! that stops must not grow memory or lose events silently, and a close is served ahead of a
//! backlog.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use genesys_notify_adapter_common::Held;
use genesys_notify_core::{Event, GapReason, Status};
use genesys_notify_sim::{Fault, Sim, SimConfig};

use crate::{Adapter, Scenario};

/// A number from `/proc/self/status` (`Threads`, `VmSize` in kB); `None` off Linux.
pub fn proc_status(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What [`reconnects`] saw.
#[derive(Debug)]
pub struct ReconnectReport {
    pub reconnects: usize,
    pub held: Held,
    pub threads_before: Option<u64>,
    pub threads_after: Option<u64>,
    pub vm_kb_before: Option<u64>,
    pub vm_kb_after: Option<u64>,
}

fn quick_reconnects() -> Scenario {
    let mut s = Scenario::new("reconnects");
    s.session.backoff_base = Duration::from_millis(1);
    s.session.backoff_cap = Duration::from_millis(5);
    s.session.stable_after = Duration::from_millis(1);
    s.session.max_connects_per_minute = 1_000_000;
    s.session.max_subscription_requests_per_minute = 1_000_000;
    s.sim.rate = 2.0;
    s
}

/// Drops the socket `n` times, each time waiting until the session is live on a new one.
/// Thread and address-space counts are taken after a warm-up of 20 reconnects and at the end.
pub fn reconnects(adapter: &dyn Adapter, n: usize) -> ReconnectReport {
    let s = quick_reconnects();
    let sim = Sim::start(s.sim.clone()).unwrap();
    let mut client = adapter.start(&s, &sim);
    let mut opened = 0;
    let (mut threads_before, mut vm_kb_before) = (None, None);
    for i in 0..=n {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            while client.next_event(Duration::from_millis(1)).is_some() {}
            let now_open = sim.stats().sockets_opened;
            if now_open > opened && client.status() == Status::Live {
                opened = now_open;
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "[{}] reconnect {i} did not come back: {:?}",
                adapter.name(),
                client.status()
            );
        }
        if i == 20 {
            threads_before = proc_status("Threads:");
            vm_kb_before = proc_status("VmSize:");
        }
        if i < n {
            sim.fault(&Fault::Drop);
        }
    }
    // Let the last dropped socket's thread or task finish.
    let settle = std::time::Instant::now() + Duration::from_millis(300);
    while std::time::Instant::now() < settle {
        let _ = client.next_event(Duration::from_millis(10));
    }
    let report = ReconnectReport {
        reconnects: n,
        held: client.held(),
        threads_before,
        threads_after: proc_status("Threads:"),
        vm_kb_before,
        vm_kb_after: proc_status("VmSize:"),
    };
    client.close();
    assert_eq!(client.held().sockets, 0, "close releases every socket");
    report
}

/// What [`slow_reader`] saw.
#[derive(Debug)]
pub struct SlowReaderReport {
    pub published: u64,
    pub delivered: u64,
    pub lost_inside_gaps: u64,
    pub lost_outside_gaps: u64,
    pub overflow_gaps: usize,
    pub status_after: Status,
    pub held_during_pause: Held,
}

/// A reader that stops for `pause` during a burst of `burst` events per topic, then reads on.
pub fn slow_reader(adapter: &dyn Adapter, burst: u64, pause: Duration) -> SlowReaderReport {
    let mut s = Scenario::new("slow_reader");
    s.sim = SimConfig {
        rate: 5.0,
        heartbeat: Duration::from_secs(1),
        ..s.sim
    };
    let sim = Sim::start(s.sim.clone()).unwrap();
    let mut client = adapter.start(&s, &sim);
    let mut events: Vec<(SystemTime, Event)> = Vec::new();
    let live_by = std::time::Instant::now() + Duration::from_secs(10);
    while client.status() != Status::Live && std::time::Instant::now() < live_by {
        if let Some(e) = client.next_event(Duration::from_millis(20)) {
            events.push((SystemTime::now(), e));
        }
    }
    sim.fault(&Fault::Burst(burst));
    // The application stops reading; the session must go on reading its socket (heartbeats
    // and pongs included), so it must still be live afterwards.
    std::thread::sleep(pause);
    let held_during_pause = client.held();
    let published: BTreeMap<String, u64> = sim.stats().published;
    let read_until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < read_until {
        if let Some(e) = client.next_event(Duration::from_millis(20)) {
            events.push((SystemTime::now(), e));
        }
    }
    let status_after = client.status();
    client.close();
    while let Some(e) = client.next_event(Duration::from_millis(10)) {
        events.push((SystemTime::now(), e));
    }
    let stats = sim.stats();
    let out = crate::account(&s, &sim, &*client, &events, &stats, &published);
    let overflow_gaps = out
        .gaps
        .iter()
        .filter(|g| g.reason == GapReason::Overflow)
        .count();
    SlowReaderReport {
        published: out.published,
        delivered: out.delivered,
        lost_inside_gaps: out.lost_inside_gaps,
        lost_outside_gaps: out.lost_outside_gaps,
        overflow_gaps,
        status_after,
        held_during_pause,
    }
}

/// The promises of [`slow_reader`], for every adapter's test file.
pub fn check_slow_reader(adapter: &dyn Adapter) {
    let r = slow_reader(adapter, 2000, Duration::from_secs(2));
    assert_eq!(r.lost_outside_gaps, 0, "[{}] {r:?}", adapter.name());
    assert!(r.overflow_gaps >= 1, "[{}] {r:?}", adapter.name());
    assert!(
        r.lost_inside_gaps > 0,
        "[{}] the reader fell behind: {r:?}",
        adapter.name()
    );
    assert_eq!(
        r.status_after,
        Status::Live,
        "[{}] the socket was read throughout: {r:?}",
        adapter.name()
    );
}

/// A simulator whose channels carry a `connectUri` on another host: a session against it must
/// stop with a fatal configuration error.
pub fn sim_with_foreign_connect_uri() -> Sim {
    Sim::start(SimConfig {
        connect_uri_base: Some("ws://192.0.2.1:9".to_owned()),
        ..SimConfig::default()
    })
    .unwrap()
}

/// A proxy on loopback in front of the simulator that passes HTTP requests through but answers
/// every socket upgrade with one byte every 500 ms: an opening that never finishes. Counts the
/// upgrades it was asked for and the ones it still holds.
pub struct DripProxy {
    base_url: String,
    upgrades: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    held: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl DripProxy {
    /// Listens on a free loopback port. Plain HTTP requests go on to the address
    /// (`127.0.0.1:PORT`) sent on the returned channel; none is served before it comes.
    pub fn start() -> (DripProxy, std::sync::mpsc::Sender<String>) {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let upgrades = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(AtomicUsize::new(0));
        let (up_tx, up_rx) = std::sync::mpsc::channel::<String>();
        let (u, h) = (Arc::clone(&upgrades), Arc::clone(&held));
        std::thread::spawn(move || {
            let Ok(upstream) = up_rx.recv() else { return };
            for conn in listener.incoming().flatten() {
                let (u, h, upstream) = (Arc::clone(&u), Arc::clone(&h), upstream.clone());
                std::thread::spawn(move || {
                    let mut conn = conn;
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 << 10 {
                        match conn.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                    if text.contains("upgrade: websocket") {
                        u.fetch_add(1, Ordering::SeqCst);
                        h.fetch_add(1, Ordering::SeqCst);
                        let answer = b"HTTP/1.1 101 Switching Protocols\r\nX-Slow: ".iter();
                        for b in answer.chain(std::iter::repeat(&b'a')).take(120) {
                            if conn.write_all(&[*b]).is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(500));
                        }
                        h.fetch_sub(1, Ordering::SeqCst);
                        return;
                    }
                    // Plain HTTP: pass this connection through, both ways.
                    let Ok(mut up) = std::net::TcpStream::connect(&upstream) else {
                        return;
                    };
                    if up.write_all(&head).is_err() {
                        return;
                    }
                    let (Ok(mut up_r), Ok(mut conn_w)) = (up.try_clone(), conn.try_clone()) else {
                        return;
                    };
                    let back = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut up_r, &mut conn_w);
                        let _ = conn_w.shutdown(std::net::Shutdown::Both);
                    });
                    let _ = std::io::copy(&mut conn, &mut up);
                    let _ = up.shutdown(std::net::Shutdown::Both);
                    let _ = back.join();
                });
            }
        });
        (
            DripProxy {
                base_url,
                upgrades,
                held,
            },
            up_tx,
        )
    }

    /// Upgrades asked for so far.
    pub fn upgrades(&self) -> usize {
        self.upgrades.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Upgrades whose connection the client still holds open.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// What [`dripping_upgrades`] saw.
#[derive(Debug)]
pub struct DripReport {
    pub upgrades: usize,
    pub held_by_proxy_during: usize,
    pub held_by_client_during: Held,
    pub held_by_proxy_after_close: usize,
}

/// A session whose every socket opening drips (the channel's upgrade answers one byte at a
/// time, for a minute): each attempt must end at the session's request timeout and release its
/// connection, and a close must release the last one at once.
pub fn dripping_upgrades(adapter: &dyn Adapter) -> DripReport {
    let (proxy, upstream) = DripProxy::start();
    let mut s = Scenario::new("dripping_upgrades");
    s.sim.connect_uri_base = Some(proxy.base_url.replacen("http", "ws", 1));
    s.api_base = Some(proxy.base_url.clone());
    s.session.request_timeout = Duration::from_millis(700);
    let sim = Sim::start(s.sim.clone()).unwrap();
    upstream
        .send(sim.base_url().trim_start_matches("http://").to_owned())
        .unwrap();
    let mut client = adapter.start(&s, &sim);
    let until = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < until {
        let _ = client.next_event(Duration::from_millis(20));
    }
    let held_by_proxy_during = proxy.held();
    let held_by_client_during = client.held();
    client.close();
    // A closed connection shows at the proxy's next drip (500 ms).
    let until = std::time::Instant::now() + Duration::from_secs(3);
    while proxy.held() > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    DripReport {
        upgrades: proxy.upgrades(),
        held_by_proxy_during,
        held_by_client_during,
        held_by_proxy_after_close: proxy.held(),
    }
}

/// [`dripping_upgrades`]'s verdict.
pub fn check_dripping_upgrades(adapter: &dyn Adapter) {
    let r = dripping_upgrades(adapter);
    let name = adapter.name();
    assert!(
        r.upgrades >= 3,
        "[{name}] the session stopped trying: {r:?}"
    );
    assert!(
        r.held_by_proxy_during <= 2,
        "[{name}] openings the session gave up on still hold their connections: {r:?}"
    );
    assert!(
        r.held_by_client_during.tasks <= 3,
        "[{name}] threads or tasks of abandoned openings pile up: {r:?}"
    );
    assert_eq!(
        r.held_by_proxy_after_close, 0,
        "[{name}] a close left an opening connected: {r:?}"
    );
}
