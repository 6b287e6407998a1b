//! Notifications per second through `genesys-notify-web` in headless Chromium, against a bare
//! `WebSocket` onmessage + `JSON.parse` loop in the same page on the same simulator, in
//! alternating rounds (medians). Needs what the browser tests need (see `tests/browser.rs`).
//!
//! `BURST=N cargo bench -p genesys-notify-tests --bench browser_throughput` (default 20,000).
//! Last line: `browser ratio_vs_bare=X.XX`.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    missing_docs
)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use genesys_notify_sim::{Fault, Sim, SimConfig};
use genesys_notify_tests::browser;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let missing = browser::missing();
    if !missing.is_empty() {
        eprintln!("browser throughput skipped: missing {}", missing.join("; "));
        return;
    }
    if let Err(e) = browser::build_pkg() {
        eprintln!("browser throughput skipped: {e}");
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
        static_dir: Some(browser::web_dir()),
        ..SimConfig::default()
    })
    .unwrap();
    let url = format!(
        "{}/test/bench.html?id={}&secret={}&n={n}&rounds={rounds}",
        sim.base_url(),
        sim.client_id(),
        sim.client_secret()
    );
    let mut child = Command::new("node")
        .arg(browser::web_dir().join("test/bridge.mjs"))
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (mut adapter, mut bare) = (Vec::new(), Vec::new());
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        match v["type"].as_str() {
            Some("ready") => sim.fault(&Fault::Burst(n)),
            Some("done") => {
                let ms = v["ms"].as_f64().unwrap();
                let rate = n as f64 / (ms / 1000.0);
                eprintln!("{} {:.0}/s", v["phase"], rate);
                if v["phase"] == "adapter" {
                    adapter.push(rate);
                } else {
                    bare.push(rate);
                }
            }
            Some("finished") => break,
            Some("pageerror") => panic!("{line}"),
            _ => {}
        }
    }
    let _ = writeln!(stdin, "close");
    let _ = child.wait();
    let (a, b) = (median(adapter), median(bare));
    println!("browser throughput events={n} rounds={rounds} (medians, events/s)");
    println!("genesys-notify-web {a:.0}/s, bare onmessage + JSON.parse {b:.0}/s");
    println!("browser ratio_vs_bare={:.2}", a / b);
}
