//! The tokio adapter's own promises: a slow reader never stalls the socket (overflow becomes
//! a gap), `access_token` waits for a refresh, 401 reports share one refresh, and dropping
//! everything closes the socket cleanly.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::Duration;

use futures_util::StreamExt;
use genesys_notify_core::{Event, GapReason, Status};
use genesys_notify_sim::{Sim, SimConfig};
use genesys_notify_tokio::{Client, Credentials, EventStream, Handle, Secret, Topic};

async fn connect(sim: &Sim, capacity: usize) -> (Handle, EventStream) {
    Client::builder()
        .base_urls(sim.base_url(), None)
        .credentials(Credentials::ClientCredentials {
            client_id: sim.client_id().to_owned(),
            client_secret: Secret::new(sim.client_secret()),
        })
        .topic(Topic::new("v2.users.a.presence").unwrap())
        .queue_capacity(capacity)
        .seed(3)
        .connect()
        .await
        .unwrap()
}

async fn until_live(events: &mut EventStream) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.next().await {
            if e == Event::Status(Status::Live) {
                return;
            }
        }
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_gets_an_overflow_gap_and_the_socket_stays_alive() {
    let sim = Sim::start(SimConfig {
        rate: 200.0,
        heartbeat: Duration::from_millis(500),
        ..SimConfig::default()
    })
    .unwrap();
    let (handle, mut events) = connect(&sim, 16).await;
    until_live(&mut events).await;
    // Read nothing for a while: far more than 16 events arrive.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut saw_overflow = false;
    let mut seqs = Vec::new();
    for _ in 0..40 {
        match tokio::time::timeout(Duration::from_secs(2), events.next())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Gap {
                reason: GapReason::Overflow,
                topics,
                from,
                to,
            } => {
                assert_eq!(topics, vec![Topic::new("v2.users.a.presence").unwrap()]);
                assert!(from <= to);
                saw_overflow = true;
            }
            Event::Notification { raw, .. } => {
                let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
                seqs.push(v["eventBody"]["seq"].as_u64().unwrap());
            }
            _ => {}
        }
    }
    assert!(saw_overflow, "dropped notifications must be reported");
    assert_eq!(
        handle.status(),
        Status::Live,
        "reading never stopped: the socket is alive"
    );
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "order kept: {seqs:?}");
    handle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_waits_for_the_shared_refresh_after_a_401_report() {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        ..SimConfig::default()
    })
    .unwrap();
    let (handle, mut events) = connect(&sim, 64).await;
    until_live(&mut events).await;
    let first = handle.access_token().await.unwrap();
    // The application's own call was refused; several reports share one refresh.
    handle.report_unauthorized(first.expose());
    handle.report_unauthorized(first.expose());
    let second = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let t = handle.access_token().await.unwrap();
            if t != first {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_ne!(second, first);
    assert_eq!(sim.stats().count("token"), 2, "exactly one refresh");
    assert!(
        !format!("{handle:?}").contains(second.expose()),
        "no token in Debug"
    );
    handle.close().await;
    assert!(handle.access_token().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_everything_closes_the_socket_with_1000() {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        ..SimConfig::default()
    })
    .unwrap();
    let (handle, mut events) = connect(&sim, 64).await;
    until_live(&mut events).await;
    drop(handle);
    drop(events);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if !sim.stats().client_close_codes.is_empty() {
                return sim.stats().client_close_codes;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(closed, vec![Some(1000)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_after_close_say_the_session_ended() {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        ..SimConfig::default()
    })
    .unwrap();
    let (handle, mut events) = connect(&sim, 64).await;
    until_live(&mut events).await;
    handle
        .subscribe([Topic::new("v2.users.b.presence").unwrap()])
        .await
        .unwrap();
    handle.close().await;
    handle.close().await;
    assert!(handle
        .subscribe([Topic::new("v2.users.c.presence").unwrap()])
        .await
        .is_err());
    let rest: Vec<Event> = events.collect().await;
    assert_eq!(rest.last(), Some(&Event::Status(Status::Closed)));
}

#[tokio::test]
async fn missing_configuration_is_refused_with_what_to_do() {
    let e = Client::builder().connect().await.unwrap_err().to_string();
    assert!(e.contains(".region"), "{e}");
    let e = Client::builder()
        .base_urls("http://example.com", None)
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("loopback"), "{e}");
    let e = Client::builder()
        .base_urls("http://127.0.0.1:1", None)
        .connect()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains(".credentials"), "{e}");
}
