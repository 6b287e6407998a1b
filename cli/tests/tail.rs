//! The `genesys-notify tail` contract: stdout, stderr, exit codes, signals.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use genesys_notify_sim::{Sim, SimConfig};

fn tail(sim: &Sim, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genesys-notify"));
    c.args(["tail", "--api-base", sim.base_url()]).args(extra);
    c.env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .env_remove("GENESYS_REFRESH_TOKEN")
        .env_remove("GENESYS_ACCESS_TOKEN");
    c
}

fn with_client(mut c: Command, sim: &Sim) -> Command {
    c.env("GENESYS_CLIENT_ID", sim.client_id())
        .env("GENESYS_CLIENT_SECRET", sim.client_secret());
    c
}

/// Lines from a child's pipe, on a thread, so the test can wait with a deadline.
fn lines(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_exit(child: &mut Child, within: Duration) -> i32 {
    let end = Instant::now() + within;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < end, "did not exit within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn notifications_on_stdout_lifecycle_on_stderr_exit_0_on_sigint() {
    let sim = Sim::start(SimConfig {
        rate: 20.0,
        ..SimConfig::default()
    })
    .unwrap();
    let mut child = with_client(
        tail(
            &sim,
            &[
                "--topic",
                "v2.users.a.presence",
                "--topic",
                "v2.forbidden.x",
                "--log-format",
                "json",
            ],
        ),
        &sim,
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    let mut seqs = Vec::new();
    while seqs.len() < 5 {
        let line = out
            .recv_timeout(Duration::from_secs(10))
            .expect("no notification on stdout");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["topicName"], "v2.users.a.presence",
            "stdout carries only notifications: {line}"
        );
        assert_eq!(v["version"], "2");
        assert!(v["metadata"]["CorrelationId"].is_string());
        seqs.push(v["eventBody"]["seq"].as_u64().unwrap());
    }
    assert_eq!(
        seqs,
        (seqs[0]..seqs[0] + 5).collect::<Vec<_>>(),
        "in order, none missing"
    );
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
    let mut events = Vec::new();
    while let Ok(l) = err.recv_timeout(Duration::from_secs(2)) {
        let v: serde_json::Value =
            serde_json::from_str(&l).unwrap_or_else(|_| panic!("stderr line is not JSON: {l}"));
        events.push(v);
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert!(kinds.contains(&"topic_rejected"), "{kinds:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "status" && e["status"] == "live"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "status" && e["status"] == "closed"),
        "{events:?}"
    );
    let codes = sim.stats().client_close_codes;
    assert_eq!(codes, vec![Some(1000)], "the socket is closed with 1000");
}

#[test]
fn sigterm_also_exits_0() {
    let sim = Sim::start(SimConfig {
        rate: 5.0,
        ..SimConfig::default()
    })
    .unwrap();
    let mut child = with_client(tail(&sim, &["--topic", "v2.users.a.presence"]), &sim)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    out.recv_timeout(Duration::from_secs(10))
        .expect("no notification");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
}

#[test]
fn revoked_refresh_token_exits_3_quickly_without_a_request_storm() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let started = Instant::now();
    let out = with_client(
        tail(
            &sim,
            &["--topic", "v2.users.a.presence", "--log-format", "json"],
        ),
        &sim,
    )
    .env("GENESYS_REFRESH_TOKEN", "revoked-or-bogus")
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = String::from_utf8_lossy(&out.stderr);
    let last: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "login_required");
    assert!(
        last["reason"].as_str().unwrap().contains("invalid_grant"),
        "{last}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(sim.stats().count("token"), 1);
}

#[test]
fn static_access_token_works() {
    let sim = Sim::start(SimConfig {
        rate: 10.0,
        ..SimConfig::default()
    })
    .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                sim.client_id(),
                sim.client_secret()
            ))
        )
    };
    let mut r = agent
        .post(format!("{}/oauth/token", sim.base_url()))
        .header("Authorization", auth)
        .send("grant_type=client_credentials")
        .unwrap();
    let token: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let mut child = tail(&sim, &["--topic", "v2.users.a.presence"])
        .env(
            "GENESYS_ACCESS_TOKEN",
            token["access_token"].as_str().unwrap(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = lines(child.stdout.take().unwrap());
    out.recv_timeout(Duration::from_secs(10))
        .expect("no notification with a static token");
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn usage_errors_exit_2_and_say_what_to_fix() {
    let sim = Sim::start(SimConfig {
        rate: 0.0,
        ..SimConfig::default()
    })
    .unwrap();
    let cases: Vec<(Command, &str)> = vec![
        (
            tail(&sim, &["--topic", "v2.users.a.presence"]),
            "GENESYS_CLIENT_ID",
        ),
        (
            with_client(tail(&sim, &["--topic", "has space"]), &sim),
            "whitespace",
        ),
        (
            with_client(tail(&sim, &["--topic", "v2.system.socket_closing"]), &sim),
            "unasked",
        ),
        (with_client(tail(&sim, &[]), &sim), "--topic"),
    ];
    for (mut c, hint) in cases {
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(hint), "expected {hint:?} in: {err}");
    }
    let bin = env!("CARGO_BIN_EXE_genesys-notify");
    let out = Command::new(bin)
        .args([
            "tail",
            "--region",
            "mars_1",
            "--topic",
            "v2.users.a.presence",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("eu_west_1"));
    let out = Command::new(bin)
        .args([
            "tail",
            "--api-base",
            "http://example.com",
            "--topic",
            "v2.users.a.presence",
        ])
        .env("GENESYS_ACCESS_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    let out = Command::new(bin)
        .args([
            "tail",
            "--region",
            "us_east_1",
            "--api-base",
            "https://x",
            "--topic",
            "t",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
