//! Many idle sessions in one process: memory per session once all are live, and CPU per
//! 1,000 idle sessions over a minute.
//!
//! ```text
//! cargo build --release -p genesys-notify && cargo build --release -p genesys-notify-tokio --examples
//! target/release/examples/many [N=1000] [IDLE_SECONDS=60] [REDUNDANCY=1]
//! ```
//! With `REDUNDANCY` 2 each session keeps two channels on two sockets.
//! The simulator runs as a child process (`genesys-notify sim`), so this process holds only
//! the sessions. Each needs a socket: `ulimit -n` must exceed N by a few hundred.
//! Last line: `sessions=N rss_per_session_kib=X cpu_ms_per_1000_idle_per_min=Y`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use genesys_notify_core::{Event, Status};
use genesys_notify_tokio::{Client, Credentials, Secret, Topic};

fn proc_self(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of this process, in milliseconds.
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
    ticks * 1000 / 100
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let idle: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(60);
    let redundancy: u8 = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("genesys-notify");
    assert!(
        bin.exists(),
        "build the CLI first: cargo build --release -p genesys-notify ({})",
        bin.display()
    );
    let mut child = Command::new(&bin)
        .args(["sim", "--rate", "0", "--quiet", "--max-channels"])
        .arg((n * 3 + 10).to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let banner: serde_json::Value = serde_json::from_str(&line).unwrap();
    let base = banner["base_url"].as_str().unwrap().to_owned();
    let (id, secret) = (
        banner["client_id"].as_str().unwrap().to_owned(),
        banner["client_secret"].as_str().unwrap().to_owned(),
    );

    let rss_before = proc_self("VmRSS:");
    let started = Instant::now();
    let mut handles = Vec::with_capacity(n);
    let (live_tx, mut live_rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let (handle, mut events) = Client::builder()
            .base_urls(&base, None)
            .credentials(Credentials::ClientCredentials {
                client_id: id.clone(),
                client_secret: Secret::new(secret.clone()),
            })
            .topic(Topic::new(format!("v2.users.u{i}.presence")).unwrap())
            .queue_capacity(64)
            .redundancy(redundancy)
            .connect()
            .await
            .unwrap();
        let live = live_tx.clone();
        tokio::spawn(async move {
            let mut told = false;
            while let Some(e) = events.next().await {
                if !told && e == Event::Status(Status::Live) {
                    told = true;
                    let _ = live.send(());
                }
            }
        });
        handles.push(handle);
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut live = 0;
    while live < n {
        match tokio::time::timeout(Duration::from_secs(120), live_rx.recv()).await {
            Ok(Some(())) => live += 1,
            _ => break,
        }
        if live % 1000 == 0 {
            eprintln!("live: {live}/{n}");
        }
    }
    eprintln!(
        "{live}/{n} sessions live after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_live = proc_self("VmRSS:");
    let cpu0 = cpu_ms();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(idle)).await;
    let cpu = cpu_ms() - cpu0;
    let minutes = t0.elapsed().as_secs_f64() / 60.0;
    let still_live = handles
        .iter()
        .filter(|h| h.status() == Status::Live)
        .count();
    let per_session = (rss_live.saturating_sub(rss_before)) as f64 / n as f64;
    let cpu_per = cpu as f64 / minutes / (n as f64 / 1000.0);
    println!("rss_before_kib={rss_before} rss_live_kib={rss_live} live={live} still_live={still_live} idle_s={idle} cpu_ms={cpu}");
    println!("sessions={n} redundancy={redundancy} rss_per_session_kib={per_session:.1} cpu_ms_per_1000_idle_per_min={cpu_per:.0}");
    for h in &handles {
        h.close().await;
    }
    let _ = child.kill();
    let _ = child.wait();
}
