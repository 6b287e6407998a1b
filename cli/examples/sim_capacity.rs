//! How many concurrent sockets one simulator process holds, and its memory per socket.
//!
//! Runs `genesys-notify sim` as a child process (so its RSS is the simulator's alone), creates
//! N channels, opens N sockets to them from this process, waits for a heartbeat round, and
//! reads the child's RSS from /proc.
//!
//! ```text
//! cargo build --release -p genesys-notify --examples
//! ulimit -n 20000   # each process needs N + a few hundred descriptors
//! target/release/examples/sim_capacity [N=10000]
//! ```
//! Last line: `sim_capacity sockets=N open=M heartbeat_ok=K rss_per_socket_kib=X`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    missing_docs
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000);
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
        .args([
            "sim",
            "--rate",
            "0",
            "--heartbeat",
            "10s",
            "--quiet",
            "--max-channels",
        ])
        .arg((n + 10).to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let banner: serde_json::Value = serde_json::from_str(&line).unwrap();
    let base = banner["base_url"].as_str().unwrap().to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = {
        use base64::Engine as _;
        let raw = format!(
            "{}:{}",
            banner["client_id"].as_str().unwrap(),
            banner["client_secret"].as_str().unwrap()
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    };
    let mut r = agent
        .post(format!("{base}/oauth/token"))
        .header("Authorization", auth)
        .send("grant_type=client_credentials")
        .unwrap();
    let token: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(child.id());

    let started = Instant::now();
    let mut uris = Vec::with_capacity(n);
    for i in 0..n {
        let mut r = agent
            .post(format!("{base}/api/v2/notifications/channels"))
            .header("Authorization", &bearer)
            .send_empty()
            .unwrap();
        let ch: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        uris.push(ch["connectUri"].as_str().unwrap().to_owned());
        if (i + 1) % 2000 == 0 {
            eprintln!("channels: {}/{n}", i + 1);
        }
    }
    eprintln!(
        "created {n} channels in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let heartbeats = Arc::new(AtomicUsize::new(0));
    let connected = rt.block_on(async {
        let mut sockets = Vec::with_capacity(n);
        for (i, chunk) in uris.chunks(250).enumerate() {
            let batch = futures_util::future::join_all(
                chunk
                    .iter()
                    .map(|u| tokio_tungstenite::connect_async(u.clone())),
            )
            .await;
            for ws in batch {
                let (ws, _) = ws.unwrap();
                sockets.push(ws);
            }
            if (i + 1) % 8 == 0 {
                eprintln!("sockets: {}/{n}", sockets.len());
            }
        }
        let count = sockets.len();
        for ws in sockets {
            let hb = Arc::clone(&heartbeats);
            tokio::spawn(async move {
                let (_sink, mut stream) = ws.split();
                let mut seen = false;
                while let Some(Ok(m)) = stream.next().await {
                    if !seen && m.to_text().is_ok_and(|t| t.contains("Heartbeat")) {
                        seen = true;
                        hb.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        count
    });
    eprintln!(
        "{connected} sockets open after {:.1}s; waiting for a heartbeat round",
        started.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(12));
    let rss_after = rss_kib(child.id());
    let mut r = agent.get(format!("{base}/__sim/stats")).call().unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let open = stats["sockets_open"].as_u64().unwrap_or(0);
    let hb = heartbeats.load(Ordering::Relaxed);
    let per = (rss_after.saturating_sub(rss_before)) as f64 / n as f64;
    println!("sim rss_before_kib={rss_before} rss_after_kib={rss_after}");
    println!("sim_capacity sockets={n} open={open} heartbeat_ok={hb} rss_per_socket_kib={per:.1}");
    let _ = child.kill();
    let _ = child.wait();
    rt.shutdown_background();
}
