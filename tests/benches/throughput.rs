//! Events per second delivered to the application through each adapter, against a bare read
//! loop of the same WebSocket library on the same simulator, in the same run.
//!
//! `cargo bench -p genesys-notify-tests --bench throughput` (N events per round: `BURST=N`).
//! Last lines: `tokio ratio_vs_bare=X.XX` and `blocking ratio_vs_bare=Y.YY`; before them the
//! redundant-mode ratios against single mode, and two bare sockets against one.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    missing_docs
)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use genesys_notify_core::{Event, Status};
use genesys_notify_sim::{Fault, Sim, SimConfig};

const TOPIC: &str = "v2.users.bench.presence";

fn creds(sim: &Sim) -> (String, String) {
    (sim.client_id().to_owned(), sim.client_secret().to_owned())
}

/// A token, a channel subscribed to TOPIC, and its connectUri — set up over plain HTTP.
fn raw_channel(sim: &Sim) -> String {
    use base64::Engine as _;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let (id, secret) = creds(sim);
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    );
    let mut r = agent
        .post(format!("{}/oauth/token", sim.base_url()))
        .header("Authorization", auth)
        .send("grant_type=client_credentials")
        .unwrap();
    let token: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    let mut r = agent
        .post(format!("{}/api/v2/notifications/channels", sim.base_url()))
        .header("Authorization", &bearer)
        .send_empty()
        .unwrap();
    let ch: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let id = ch["id"].as_str().unwrap();
    agent
        .put(format!(
            "{}/api/v2/notifications/channels/{id}/subscriptions",
            sim.base_url()
        ))
        .header("Authorization", &bearer)
        .send(format!(r#"[{{"id":"{TOPIC}"}}]"#))
        .unwrap();
    ch["connectUri"].as_str().unwrap().to_owned()
}

fn is_event(text: &str) -> bool {
    text.contains(TOPIC)
}

fn bare_tokio(rt: &tokio::runtime::Runtime, sim: &Sim, n: u64) -> Duration {
    let uri = raw_channel(sim);
    let (ws, _) = rt.block_on(tokio_tungstenite::connect_async(uri)).unwrap();
    // Read on a worker thread, as the adapter's socket task does.
    let reader = rt.spawn(async move {
        let (_sink, mut stream) = ws.split();
        let mut got = 0;
        while got < n {
            if let Some(Ok(tungstenite::Message::Text(t))) = stream.next().await {
                if is_event(t.as_str()) {
                    got += 1;
                }
            }
        }
    });
    let start = Instant::now();
    sim.fault(&Fault::Burst(n));
    rt.block_on(reader).unwrap();
    start.elapsed()
}

fn bare_blocking(sim: &Sim, n: u64) -> Duration {
    let uri = raw_channel(sim);
    let (mut ws, _) = tungstenite::connect(uri).unwrap();
    let start = Instant::now();
    sim.fault(&Fault::Burst(n));
    let mut got = 0;
    while got < n {
        if let tungstenite::Message::Text(t) = ws.read().unwrap() {
            if is_event(t.as_str()) {
                got += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    let _ = ws.close(None);
    elapsed
}

/// Waits until the simulator holds `sockets` open sockets (both links subscribed, with two).
fn wait_for_sockets(sim: &Sim, sockets: u64) {
    let until = Instant::now() + Duration::from_secs(10);
    while sim.stats().sockets_open < sockets && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    // The second link's subscription lands just after its upgrade.
    std::thread::sleep(Duration::from_millis(200));
}

/// Two bare sockets on two channels subscribed to TOPIC, each read on its own thread (as the
/// blocking adapter's reader threads do), until each has received the whole burst: what the
/// simulator and the sockets cost with every event sent twice, with no client at all.
fn bare_blocking_two(sim: &Sim, n: u64) -> Duration {
    let mut sockets = Vec::new();
    for _ in 0..2 {
        let (ws, _) = tungstenite::connect(raw_channel(sim)).unwrap();
        sockets.push(ws);
    }
    let start = Instant::now();
    sim.fault(&Fault::Burst(n));
    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            std::thread::spawn(move || {
                let mut got = 0;
                while got < n {
                    if let tungstenite::Message::Text(t) = ws.read().unwrap() {
                        if is_event(t.as_str()) {
                            got += 1;
                        }
                    }
                }
                let _ = ws.close(None);
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    start.elapsed()
}

fn tokio_adapter(rt: &tokio::runtime::Runtime, sim: &Sim, n: u64, redundancy: u8) -> Duration {
    let (id, secret) = creds(sim);
    rt.block_on(async {
        let (handle, mut events) = genesys_notify_tokio::Client::builder()
            .base_urls(sim.base_url(), None)
            .credentials(genesys_notify_tokio::Credentials::ClientCredentials {
                client_id: id,
                client_secret: secret.into(),
            })
            .topic(genesys_notify_tokio::Topic::new(TOPIC).unwrap())
            .queue_capacity(usize::try_from(n).unwrap() + 1000)
            .redundancy(redundancy)
            .connect()
            .await
            .unwrap();
        while let Some(e) = events.next().await {
            if e == Event::Status(Status::Live) {
                break;
            }
        }
        wait_for_sockets(sim, u64::from(redundancy));
        let start = Instant::now();
        sim.fault(&Fault::Burst(n));
        let mut got = 0;
        while got < n {
            match tokio::time::timeout(Duration::from_secs(10), events.next()).await {
                Ok(Some(Event::Notification { .. })) => got += 1,
                Ok(Some(other)) => eprintln!("tokio redundancy={redundancy}: {other:?}"),
                Ok(None) => panic!("tokio redundancy={redundancy}: the stream ended at {got}/{n}"),
                Err(_) => panic!("tokio redundancy={redundancy}: stalled at {got}/{n}"),
            }
        }
        let elapsed = start.elapsed();
        handle.close().await;
        elapsed
    })
}

fn blocking_adapter(sim: &Sim, n: u64, redundancy: u8) -> Duration {
    let (id, secret) = creds(sim);
    let endpoints = genesys_notify_blocking::Endpoints::custom(sim.base_url(), None).unwrap();
    let mut config = genesys_notify_blocking::Config::new(
        endpoints,
        genesys_notify_blocking::Credentials::ClientCredentials {
            client_id: id,
            client_secret: secret.into(),
        },
    );
    config
        .topics
        .push(genesys_notify_blocking::Topic::new(TOPIC).unwrap());
    config.session.redundancy = redundancy;
    // Room for the whole burst, as for the tokio adapter: the bench measures delivery, not
    // the overflow policy (on a busy machine the 1,024 default overflows).
    config.queue_capacity = usize::try_from(n).unwrap() + 1000;
    let mut client = genesys_notify_blocking::Client::connect(config).unwrap();
    loop {
        match client.next_event(Duration::from_secs(10)) {
            Ok(Event::Status(Status::Live)) => break,
            Ok(_) => {}
            Err(e) => panic!("blocking redundancy={redundancy}: not live: {e}"),
        }
    }
    wait_for_sockets(sim, u64::from(redundancy));
    let start = Instant::now();
    sim.fault(&Fault::Burst(n));
    let mut got = 0;
    while got < n {
        match client.next_event(Duration::from_secs(10)) {
            Ok(Event::Notification { .. }) => got += 1,
            Ok(other) => eprintln!("blocking redundancy={redundancy}: {other:?}"),
            Err(e) => panic!("blocking redundancy={redundancy}: stalled at {got}/{n}: {e}"),
        }
    }
    let elapsed = start.elapsed();
    client.close();
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n: u64 = std::env::var("BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rounds = 5;
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        heartbeat: Duration::from_secs(30),
        max_channels: 1000,
        ..SimConfig::default()
    })
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (mut t, mut tb, mut b, mut bb) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut t2, mut b2, mut bb2) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        t.push(tokio_adapter(&rt, &sim, n, 1));
        tb.push(bare_tokio(&rt, &sim, n));
        t2.push(tokio_adapter(&rt, &sim, n, 2));
        b.push(blocking_adapter(&sim, n, 1));
        bb.push(bare_blocking(&sim, n));
        b2.push(blocking_adapter(&sim, n, 2));
        bb2.push(bare_blocking_two(&sim, n));
        eprintln!(
            "round {round}: tokio {:?} bare {:?} redundant {:?} | blocking {:?} bare {:?} redundant {:?} bare two sockets {:?}",
            t[round], tb[round], t2[round], b[round], bb[round], b2[round], bb2[round]
        );
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let (t, tb, b, bb) = (median(t), median(tb), median(b), median(bb));
    let (t2, b2, bb2) = (median(t2), median(b2), median(bb2));
    println!("throughput events={n} rounds={rounds} (medians, events/s)");
    println!(
        "tokio adapter {:.0}/s, bare tokio-tungstenite {:.0}/s",
        rate(t),
        rate(tb)
    );
    println!(
        "blocking adapter {:.0}/s, bare tungstenite {:.0}/s",
        rate(b),
        rate(bb)
    );
    println!(
        "redundancy 2 (every event arrives twice, delivered once): tokio {:.0}/s, blocking {:.0}/s",
        rate(t2),
        rate(b2)
    );
    println!(
        "two bare sockets, each reading the whole burst: {:.0} distinct events/s",
        rate(bb2)
    );
    println!(
        "bare two sockets vs bare one: {:.2} (the simulator's share of the cost)",
        rate(bb2) / rate(bb)
    );
    println!("tokio redundant_ratio_vs_single={:.2}", rate(t2) / rate(t));
    println!(
        "blocking redundant_ratio_vs_single={:.2}",
        rate(b2) / rate(b)
    );
    println!("tokio ratio_vs_bare={:.2}", rate(t) / rate(tb));
    println!("blocking ratio_vs_bare={:.2}", rate(b) / rate(bb));
}
