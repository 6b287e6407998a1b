//! The `genesys-notify tail` contract: stdout, stderr, exit codes, signals.
#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use genesys_notify_sim::{Sim, SimConfig};

mod common;
use common::spawn_sim;

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

/// Sends SIGTERM to `child`, as a service manager stops it.
fn sigterm(child: &Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
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
    let sim = sim_at_rate(20.0);
    let (mut child, out, err) = spawn_tail_reading(
        &sim,
        &[
            "--topic",
            "v2.users.a.presence",
            "--topic",
            "v2.forbidden.x",
            "--log-format",
            "json",
        ],
    );
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
    let sim = sim_at_rate(5.0);
    let (mut child, out, _err) = spawn_tail_reading(&sim, &["--topic", "v2.users.a.presence"]);
    out.recv_timeout(Duration::from_secs(10))
        .expect("no notification");
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
}

#[test]
fn revoked_refresh_token_exits_3_quickly_without_a_request_storm() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let started = Instant::now();
    let out = tail_output(
        &sim,
        &["--topic", "v2.users.a.presence", "--log-format", "json"],
        &[("GENESYS_REFRESH_TOKEN", "revoked-or-bogus")],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = String::from_utf8_lossy(&out.stderr);
    let last: serde_json::Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "login_required");
    assert!(
        last["reason"].as_str().unwrap().contains("invalid_grant"),
        "{last}"
    );
    assert!(
        last["what_to_do"]
            .as_str()
            .unwrap()
            .contains("GENESYS_REFRESH_TOKEN to a new refresh token"),
        "{last}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(sim.stats().count("token"), 1);
}

#[test]
fn static_access_token_works() {
    let sim = sim_at_rate(10.0);
    let token = client_token(&sim);
    let mut child = tail(&sim, &["--topic", "v2.users.a.presence"])
        .env("GENESYS_ACCESS_TOKEN", &token)
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
    let sim = sim_at_rate(0.0);
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
        (
            bare_tail(&["--region", "mars_1", "--topic", "v2.users.a.presence"]),
            "eu_west_1",
        ),
        (
            {
                let mut c = bare_tail(&[
                    "--api-base",
                    "http://example.com",
                    "--topic",
                    "v2.users.a.presence",
                ]);
                c.env("GENESYS_ACCESS_TOKEN", "x");
                c
            },
            "loopback",
        ),
        (
            bare_tail(&[
                "--region",
                "us_east_1",
                "--api-base",
                "https://x",
                "--topic",
                "t",
            ]),
            "cannot be used with",
        ),
    ];
    for (mut c, hint) in cases {
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(hint), "expected {hint:?} in: {err}");
    }
}

/// `tail` with `args` and nothing else: no simulator, no credentials.
fn bare_tail(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genesys-notify"));
    c.arg("tail").args(args);
    c
}

fn stderr_json(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect()
}

#[test]
fn a_foreign_connect_uri_is_fatal_exit_4_and_no_channel_id_is_shown() {
    let sim = Sim::start(SimConfig {
        connect_uri_base: Some("ws://192.0.2.1:9".to_owned()),
        ..SimConfig::default()
    })
    .unwrap();
    let mut child = spawn_tail_with(
        &sim,
        &["--topic", "v2.users.a.presence", "--log-format", "json"],
        Stdio::null(),
        Stdio::piped(),
    );
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 4);
    let out = child.wait_with_output().unwrap();
    let events = stderr_json(&out);
    let fatal: Vec<&serde_json::Value> = events.iter().filter(|e| e["event"] == "fatal").collect();
    assert_eq!(fatal.len(), 1, "{events:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("192.0.2.1"), "{text}");
    assert!(
        !text.contains("streaming-0-"),
        "a channel id leaked: {text}"
    );
    assert_eq!(
        sim.stats().count("channels.create"),
        2,
        "one retry, then stop"
    );
    assert_eq!(sim.stats().count("upgrade"), 0);
}

#[test]
fn redirects_are_never_followed_and_stop_with_exit_4() {
    for endpoint in ["token", "channel"] {
        let sim = Sim::start(SimConfig {
            script: genesys_notify_sim::parse_script(&format!("0s redirect {endpoint} 9")).unwrap(),
            ..SimConfig::default()
        })
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let out = tail_output(
            &sim,
            &["--topic", "v2.users.a.presence", "--log-format", "json"],
            &[],
        );
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{endpoint}: {text}");
        assert!(
            text.contains("HTTP 302 redirect to elsewhere.invalid"),
            "{text}"
        );
        assert!(
            !text.contains("streaming-0-redirected"),
            "only the host: {text}"
        );
    }
}

#[test]
fn server_text_cannot_drive_the_terminal() {
    let sim = Sim::start(SimConfig {
        rejection_reason: "nope\u{1b}[2J\u{1b}[H\nstatus: live\u{7}".to_owned(),
        ..SimConfig::default()
    })
    .unwrap();
    let (mut child, err) = spawn_tail(
        &sim,
        &[
            "--topic",
            "v2.users.a.presence",
            "--topic",
            "v2.forbidden.x",
        ],
        &[],
    );
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let Ok(l) = err.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let done = l.contains("topic rejected");
        seen.push(l);
        if done {
            break;
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    let rejected = seen
        .iter()
        .find(|l| l.contains("topic rejected"))
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert!(
        rejected.contains(r"nope\u{001b}[2J\u{001b}[H\u{000a}status: live\u{0007}"),
        "{rejected}"
    );
    for l in &seen {
        assert!(
            !l.contains(['\u{1b}', '\u{7}']),
            "raw control character: {l:?}"
        );
        assert!(
            l.as_bytes().get(2) == Some(&b':') && l.as_bytes().get(5) == Some(&b':'),
            "every line starts with its own time, none is forged: {l:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn the_refresh_token_file_holds_the_old_or_the_new_token_whatever_step_crashes() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = std::env::temp_dir().join(format!("gn-tail-rt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for step in ["created", "written", "synced", "renamed", "none"] {
        let sim = sim_at_rate(5.0);
        let path = dir.join(format!("rt-{step}"));
        let old = sim.refresh_token().to_owned();
        std::fs::write(&path, &old).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut cmd = tail(
            &sim,
            &["--topic", "v2.users.a.presence", "--refresh-token-file"],
        );
        cmd.arg(&path);
        let mut child = with_client(cmd, &sim)
            .env("GENESYS_NOTIFY_FAILPOINT", step)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if step == "none" {
            let out = lines(child.stdout.take().unwrap());
            out.recv_timeout(Duration::from_secs(10)).expect("live");
            sigterm(&child);
        }
        let code = wait_exit(&mut child, Duration::from_secs(10));
        let now = std::fs::read_to_string(&path).unwrap();
        match step {
            "created" | "written" | "synced" => {
                assert_ne!(code, 0, "{step}: the process was killed");
                assert_eq!(
                    now, old,
                    "{step}: a crash before the rename keeps the old token"
                );
            }
            _ => {
                assert!(
                    now.starts_with("sim-rt-") && now != old,
                    "{step}: the new token: {now:?}"
                );
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{step}: the secret is private");
            }
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[allow(clippy::print_stdout)]
fn sigterm_exits_at_once_with_a_stopped_stdout_reader_and_reports_what_it_dropped() {
    let sim = sim_at_rate(20.0);
    let mut child = spawn_tail_with(
        &sim,
        &["--topic", "v2.users.a.presence", "--log-format", "json"],
        Stdio::piped(),
        Stdio::piped(),
    );
    // Nobody reads stdout: after one line the pipe fills and tail blocks writing.
    let _stdout = child.stdout.take().unwrap();
    let err = lines(child.stderr.take().unwrap());
    let live_by = Instant::now() + Duration::from_secs(10);
    while Instant::now() < live_by {
        if err
            .recv_timeout(Duration::from_millis(100))
            .is_ok_and(|l| l.contains("\"live\""))
        {
            break;
        }
    }
    sim.fault(&genesys_notify_sim::Fault::Burst(20_000));
    std::thread::sleep(Duration::from_secs(1));
    let asked = Instant::now();
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
    println!(
        "SIGTERM to exit with a stopped reader: {:?}",
        asked.elapsed()
    );
    let rest: Vec<String> =
        std::iter::from_fn(|| err.recv_timeout(Duration::from_secs(1)).ok()).collect();
    assert!(
        rest.iter().any(|l| l.contains("\"overflow\"")),
        "the notifications it could not write are reported: {rest:?}"
    );
    // The close frame left before the process did; the simulator, still busy writing the
    // burst, may read it a moment later.
    let end = Instant::now() + Duration::from_secs(5);
    while sim.stats().client_close_codes.is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(sim.stats().client_close_codes, vec![Some(1000)]);
}

#[test]
fn a_malformed_flood_is_a_few_warnings_and_hostile_answers_do_not_loop() {
    let sim = Sim::start(SimConfig {
        rate: 10.0,
        script: genesys_notify_sim::parse_script("0s short_token 2 0\n0s expired_channel 2\n")
            .unwrap(),
        ..SimConfig::default()
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (mut child, out, err) = spawn_tail_reading(
        &sim,
        &["--topic", "v2.users.a.presence", "--log-format", "json"],
    );
    // Live despite two dead tokens and two expired channels.
    let mut seen: Vec<String> = Vec::new();
    let live_by = Instant::now() + Duration::from_secs(30);
    while !seen.iter().any(|l| l.contains("\"live\"")) {
        assert!(Instant::now() < live_by, "never live: {seen:?}");
        if let Ok(l) = err.recv_timeout(Duration::from_millis(100)) {
            seen.push(l);
        }
    }
    // Then a flood: notifications still arrive after it.
    sim.fault(&genesys_notify_sim::Fault::Flood(300_000));
    while out.try_recv().is_ok() {}
    // Ten notifications must follow the flood. How long the flood takes to cross depends on
    // the machine's load, so the wait is generous and only the count is asserted.
    let mut after_flood = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while after_flood < 10 && Instant::now() < end {
        if out.recv_timeout(Duration::from_millis(100)).is_ok() {
            after_flood += 1;
        }
    }
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
    seen.extend(std::iter::from_fn(|| {
        err.recv_timeout(Duration::from_secs(1)).ok()
    }));
    let warnings: Vec<&String> = seen.iter().filter(|l| l.contains("\"warning\"")).collect();
    let malformed = warnings.iter().filter(|l| l.contains("malformed")).count();
    assert!(
        (1..=3).contains(&malformed),
        "300,000 bad frames are a few coalesced warnings: {warnings:?}"
    );
    assert_some_line(&warnings, "expires in 0 ms");
    assert_some_line(&warnings, "channel that expires in");
    assert!(
        after_flood >= 10,
        "notifications flow after the flood: {after_flood}"
    );
    let stats = sim.stats();
    assert!(
        stats.count("token") <= 4,
        "{} token requests",
        stats.count("token")
    );
    assert!(stats.count("channels.create") <= 4);
}

#[test]
fn a_huge_retry_after_is_capped_and_named_and_sigterm_still_exits_0() {
    let sim = Sim::start(SimConfig {
        script: genesys_notify_sim::parse_script("0s fail channel 1 429 99999999999").unwrap(),
        ..SimConfig::default()
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (mut child, err) = spawn_tail(
        &sim,
        &["--topic", "v2.users.a.presence", "--log-format", "json"],
        &[],
    );
    let end = Instant::now() + Duration::from_secs(10);
    let mut warned = None;
    while Instant::now() < end && warned.is_none() {
        if let Ok(l) = err.recv_timeout(Duration::from_millis(100)) {
            if l.contains("Retry-After") {
                warned = Some(l);
            }
        }
    }
    let warned = warned.expect("a warning about the Retry-After");
    assert!(
        warned.contains("asked to wait 99999999999s") && warned.contains("waiting 600s"),
        "{warned}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        sim.stats().count("channels.create"),
        1,
        "no request before the capped wait"
    );
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
}

/// Runs `tail` with `extra` against a simulator that drops the socket after 1 s, until a gap
/// line appears on stderr (or 15 s pass), then SIGTERMs it; returns the stderr lines.
fn until_a_gap(extra: &[&str]) -> Vec<String> {
    let sim = Sim::start(SimConfig {
        rate: 10.0,
        script: genesys_notify_sim::parse_script("1s drop").unwrap(),
        ..SimConfig::default()
    })
    .unwrap();
    let mut args = vec!["--topic", "v2.users.a.presence"];
    args.extend_from_slice(extra);
    let (mut child, err) = spawn_tail(&sim, &args, &[]);
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(15);
    while Instant::now() < end {
        if let Ok(l) = err.recv_timeout(Duration::from_millis(100)) {
            let gap = l.contains("gap");
            seen.push(l);
            if gap {
                break;
            }
        }
    }
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
    seen
}

#[test]
fn json_lines_carry_a_timestamp_and_verbose_shows_the_requests() {
    let seen = until_a_gap(&["--log-format", "json", "-v"]);
    let json: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for j in &json {
        let ts = j["ts"].as_str().unwrap_or_else(|| panic!("no ts: {j}"));
        assert!(
            ts.parse::<jiff::Timestamp>().is_ok() && ts.ends_with('Z'),
            "{ts}"
        );
    }
    let events: Vec<&str> = json.iter().filter_map(|j| j["event"].as_str()).collect();
    for e in [
        "token_request",
        "channel_request",
        "connect",
        "subscribe",
        "gap",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    let gap = json.iter().find(|j| j["event"] == "gap").unwrap();
    assert!(gap["uncovered_ms"].as_u64().is_some(), "{gap}");
    assert_eq!(gap["reason"], "socket_lost");
    let all = seen.join("\n");
    assert!(
        !all.contains("streaming-"),
        "no channel id in the log: {all}"
    );
}

#[test]
fn text_lines_say_utc_and_a_gap_reads_as_a_duration_and_a_reason() {
    let seen = until_a_gap(&[]);
    for l in &seen {
        let stamp = l.split(' ').next().unwrap();
        assert!(stamp.len() == 9 && stamp.ends_with('Z'), "{l}");
    }
    let gap = seen.iter().find(|l| l.contains("gap:")).unwrap();
    assert!(
        gap.contains("uncovered for ") && gap.contains("(socket lost)"),
        "{gap}"
    );
    assert!(
        !seen.iter().any(|l| l.contains("opening the socket")),
        "quiet without -v"
    );
}

#[test]
fn an_untrusted_certificate_stops_with_exit_4_and_says_how_to_trust_it() {
    let sim = Sim::start(SimConfig {
        tls: true,
        ..SimConfig::default()
    })
    .unwrap();
    let started = Instant::now();
    let (_, err) = tail_exits(&sim, &["--topic", "v2.users.a.presence"], &[], 4);
    assert!(
        err.contains("not trusted") && err.contains("--ca-cert"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "no retry loop");
    assert!(
        err.matches("warning").count() <= 2,
        "the refusal is not repeated: {err}"
    );
}

#[test]
fn topics_from_a_file_max_events_and_an_output_file() {
    let sim = sim_at_rate(20.0);
    let dir = std::env::temp_dir().join(format!("gn-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let topics = dir.join("topics.txt");
    std::fs::write(
        &topics,
        "# queues and agents\nv2.users.a.presence\n\n  v2.users.b.presence  # agent b\n",
    )
    .unwrap();
    let output = dir.join("events.jsonl");
    let _ = std::fs::remove_file(&output);
    let (out, _) = tail_exits(
        &sim,
        &[
            "--topics-file",
            topics.to_str().unwrap(),
            "--max-events",
            "25",
            "--output",
            output.to_str().unwrap(),
        ],
        &[],
        0,
    );
    assert!(out.stdout.is_empty(), "notifications go to the file");
    let written = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 25);
    let names: std::collections::BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l["topicName"].as_str())
        .collect();
    assert_eq!(
        names,
        ["v2.users.a.presence", "v2.users.b.presence"]
            .into_iter()
            .collect()
    );

    // A bad line is a usage error that names it.
    std::fs::write(&topics, "v2.users.a.presence\nv2.users.x/presence\n").unwrap();
    let out = tail_output(&sim, &["--topics-file", topics.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_are_served_in_the_prometheus_text_format() {
    let sim = sim_at_rate(20.0);
    let (mut child, err) = spawn_tail_with_metrics(&sim, "127.0.0.1:0");
    let url = metrics_url(&err);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let end = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let mut r = agent.get(&url).call().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let text = r.body_mut().read_to_string().unwrap();
        let delivered = text.lines().any(|l| {
            l.strip_prefix("genesys_notify_notifications_total ")
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n > 0)
        });
        if delivered && text.contains("genesys_notify_status{status=\"live\"} 1") {
            break text;
        }
        assert!(
            Instant::now() < end,
            "never live with notifications:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        text.contains("genesys_notify_requests_total{kind=\"token\"} 1"),
        "{text}"
    );
    assert!(text.contains("genesys_notify_reconnects_total 0"), "{text}");
    assert!(text.contains("genesys_notify_channels 1"), "{text}");
    assert!(
        text.contains("genesys_notify_socket_last_frame_age_seconds{socket=\"0\"}"),
        "{text}"
    );
    assert!(
        text.contains("genesys_notify_last_notification_age_seconds "),
        "{text}"
    );
    let other = agent.get(url.replace("/metrics", "/x")).call().unwrap();
    assert_eq!(other.status().as_u16(), 404);
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
}

#[test]
fn redundancy_2_prints_each_notification_once_and_one_socket_lost_costs_no_gap() {
    let sim = Sim::start(SimConfig {
        rate: 20.0,
        script: genesys_notify_sim::parse_script("2s drop one\n4s close 4001 one").unwrap(),
        ..SimConfig::default()
    })
    .unwrap();
    let (mut child, out, err) = spawn_tail_reading(
        &sim,
        &[
            "--topic",
            "v2.users.a.presence",
            "--redundancy",
            "2",
            "--log-format",
            "json",
        ],
    );
    // Read past both faults (4 s of the simulator's time at 20 a second) and both
    // reconnections; the wait is generous because a loaded machine is slow, and only counts
    // are asserted.
    let mut seqs = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    while (seqs.len() <= 120 || sim.stats().count("upgrade") < 4) && Instant::now() < end {
        if let Ok(line) = out.recv_timeout(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            seqs.push(v["eventBody"]["seq"].as_u64().unwrap());
        }
    }
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
    assert!(seqs.len() > 60, "{seqs:?}");
    assert_eq!(
        seqs,
        (seqs[0]..seqs[0] + seqs.len() as u64).collect::<Vec<_>>(),
        "each once, in order, none missing"
    );
    let mut events = Vec::new();
    while let Ok(l) = err.recv_timeout(Duration::from_secs(1)) {
        events.push(serde_json::from_str::<serde_json::Value>(&l).unwrap());
    }
    assert!(
        !events.iter().any(|e| e["event"] == "gap"),
        "no gap: {events:?}"
    );
    let stats = sim.stats();
    // Two at the start; a 4001 reads as "token refused", so that link takes a new channel.
    assert_eq!(stats.count("channels.create"), 3);
    assert!(stats.count("upgrade") >= 4, "both losses reconnected");
}

/// The first line on `err` that `pick` accepts, within `within`.
fn first_line(
    err: &mpsc::Receiver<String>,
    within: Duration,
    pick: impl Fn(&str) -> bool,
) -> String {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match err.recv_timeout(left) {
            Ok(l) if pick(&l) => return l,
            Ok(_) => {}
            Err(_) => panic!("no such line within {within:?}"),
        }
    }
}

/// `tail` with the simulator's client credentials, `args` and `env`: stdout discarded, stderr
/// read line by line.
fn spawn_tail(sim: &Sim, args: &[&str], env: &[(&str, &str)]) -> (Child, mpsc::Receiver<String>) {
    let mut child = with_client(tail(sim, args), sim)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(child.stderr.take().unwrap());
    (child, err)
}

/// Some line of `lines` contains `text`.
#[track_caller]
fn assert_some_line<S: AsRef<str> + std::fmt::Debug>(lines: &[S], text: &str) {
    assert!(
        lines.iter().any(|l| l.as_ref().contains(text)),
        "no line says {text:?}: {lines:?}"
    );
}

/// `tail` on one topic with its metrics served at `addr`.
fn spawn_tail_with_metrics(sim: &Sim, addr: &str) -> (Child, mpsc::Receiver<String>) {
    spawn_tail(
        sim,
        &["--topic", "v2.users.a.presence", "--metrics", addr],
        &[],
    )
}

/// A simulator publishing `rate` notifications a second.
fn sim_at_rate(rate: f64) -> Sim {
    Sim::start(SimConfig {
        rate,
        ..SimConfig::default()
    })
    .unwrap()
}

/// `tail` with the simulator's client credentials and `args`, its output where the test says.
fn spawn_tail_with(sim: &Sim, args: &[&str], stdout: Stdio, stderr: Stdio) -> Child {
    with_client(tail(sim, args), sim)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// `tail` with the simulator's client credentials and `args`: stdout and stderr read line by
/// line.
fn spawn_tail_reading(
    sim: &Sim,
    args: &[&str],
) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut child = spawn_tail_with(sim, args, Stdio::piped(), Stdio::piped());
    let out = lines(child.stdout.take().unwrap());
    let err = lines(child.stderr.take().unwrap());
    (child, out, err)
}

/// `tail` with the simulator's client credentials, `args` and `env`, run to its end.
fn tail_output(sim: &Sim, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    with_client(tail(sim, args), sim)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// Runs `tail` to its end, checks that it exits with `code`, and returns what it wrote, its
/// stderr also as text.
fn tail_exits(
    sim: &Sim,
    args: &[&str],
    env: &[(&str, &str)],
    code: i32,
) -> (std::process::Output, String) {
    let out = tail_output(sim, args, env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{err}");
    (out, err)
}

/// The `http://…/metrics` address tail announces on stderr.
fn metrics_url(err: &mpsc::Receiver<String>) -> String {
    let line = first_line(err, Duration::from_secs(10), |l| l.contains("/metrics"));
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no metrics address in {line:?}"))
        .to_owned()
}

#[test]
fn a_silence_longer_than_the_wait_for_an_event_ends_nothing() {
    // No publisher: a quiet topic. Heartbeats, pings and renewals make no event.
    let sim = sim_at_rate(0.0);
    // tail waits 300 ms for an event instead of an hour: ten waits pass in silence.
    let (mut child, err) = spawn_tail(
        &sim,
        &["--topic", "v2.users.a.presence", "--log-format", "json"],
        &[("GENESYS_NOTIFY_TAIL_WAIT_MS", "300")],
    );
    first_line(&err, Duration::from_secs(10), |l| l.contains("\"live\""));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        child.try_wait().unwrap(),
        None,
        "tail ended after a silence: {:?}",
        err.try_iter().collect::<Vec<_>>()
    );
    sigterm(&child);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)),
        0,
        "a signal still exits 0"
    );
}

#[test]
fn a_write_error_exits_5_and_names_the_file_but_a_closed_pipe_exits_0() {
    let sim = sim_at_rate(20.0);
    // --output on a full disk.
    let (_, err) = tail_exits(
        &sim,
        &["--topic", "v2.users.a.presence", "--output", "/dev/full"],
        &[],
        5,
    );
    assert!(err.contains("--output /dev/full"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");

    // stdout on a full disk.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = with_client(tail(&sim, &["--topic", "v2.users.a.presence"]), &sim)
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(
        err.contains("cannot write a notification to stdout"),
        "{err}"
    );

    // A reader that goes away (`tail | head -n 3`) is a clean stop.
    let mut child = spawn_tail_with(
        &sim,
        &["--topic", "v2.users.a.presence"],
        Stdio::piped(),
        Stdio::null(),
    );
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..3 {
        let mut l = String::new();
        reader.read_line(&mut l).unwrap();
    }
    drop(reader);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 0);
}

#[test]
fn a_slow_metrics_client_holds_nothing_and_a_scrape_still_answers_within_a_second() {
    use std::io::{Read, Write};
    let sim = Sim::start(SimConfig::default()).unwrap();
    let (mut child, err) = spawn_tail_with_metrics(&sim, "127.0.0.1:0");
    let url = metrics_url(&err);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    // One client dribbles a byte every 300 ms (its request would take 10 s).
    let mut dribbler = std::net::TcpStream::connect(&addr).unwrap();
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let dribbling = std::thread::spawn(move || {
        let started = Instant::now();
        for b in request {
            if dribbler.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        // Cut off: what it reads now is the end of the connection, not an answer.
        dribbler
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = dribbler.read_to_end(&mut answer);
        (started.elapsed(), answer)
    });
    // Four silent clients too: the bound is on connections, and they take every place.
    let silent: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(&addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(1)))
        .build()
        .into();
    // Three silent clients and the dribbler hold the four places: a fifth is closed at once,
    // and a scrape gets in as soon as the request deadline frees a place.
    let t = Instant::now();
    let scraped = loop {
        match agent.get(&url).call() {
            Ok(r) => break r,
            Err(e) => assert!(
                t.elapsed() < Duration::from_secs(5),
                "no scrape answered within 5 s: {e}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(scraped.status().as_u16(), 200);
    drop(silent);
    // With one slow client only, a scrape answers within a second (the agent's timeout).
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /met").unwrap();
    let r = agent
        .get(&url)
        .call()
        .expect("a scrape beside a slow client");
    assert_eq!(r.status().as_u16(), 200);
    let (lasted, answer) = dribbling.join().unwrap();
    assert!(answer.is_empty(), "the dribbler got an answer");
    assert!(
        lasted < Duration::from_secs(8),
        "dribbler held on for {lasted:?}"
    );
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
}

#[test]
fn metrics_on_an_address_other_hosts_can_reach_is_warned_about() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let (mut child, err) = spawn_tail_with_metrics(&sim, "0.0.0.0:0");
    let w = first_line(&err, Duration::from_secs(10), |l| l.contains("warning"));
    assert!(w.contains("no authentication"), "{w}");
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
}

#[cfg(unix)]
#[test]
fn a_refresh_token_file_others_can_replace_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let sim = Sim::start(SimConfig::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("gn-shared-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let file = dir.join("refresh-token");
    std::fs::write(&file, sim.refresh_token()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (_, err) = tail_exits(
        &sim,
        &[
            "--topic",
            "v2.users.a.presence",
            "--refresh-token-file",
            file.to_str().unwrap(),
        ],
        &[],
        2,
    );
    assert!(err.contains("writable by other users"), "{err}");
    assert!(sim.stats().requests.is_empty(), "nothing was sent");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The child's peak resident memory (kB), from /proc.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn large_notifications_for_a_reader_that_stopped_stay_within_the_queue_budget() {
    // The simulator in a process of its own, as an operator would run it against tail.
    let (mut sim, banner) = spawn_sim(&["--rate", "0", "--quiet"], Stdio::null());
    let banner: serde_json::Value = serde_json::from_str(&banner).unwrap();
    let base = banner["base_url"].as_str().unwrap().to_owned();
    // stdout is a pipe nobody reads: the first large line fills it and tail's writer stops.
    let mut child = Command::new(env!("CARGO_BIN_EXE_genesys-notify"))
        .args([
            "tail",
            "--api-base",
            &base,
            "--topic",
            "v2.users.a.presence",
        ])
        .args(["--log-format", "json"])
        .env("GENESYS_CLIENT_ID", banner["client_id"].as_str().unwrap())
        .env(
            "GENESYS_CLIENT_SECRET",
            banner["client_secret"].as_str().unwrap(),
        )
        .env_remove("GENESYS_REFRESH_TOKEN")
        .env_remove("GENESYS_ACCESS_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = lines(child.stderr.take().unwrap());
    first_line(&err, Duration::from_secs(10), |l| l.contains("\"live\""));
    let baseline = peak_rss_kb(child.id());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    // 300 notifications of 1 MB: 300 MB for a reader that takes none.
    let r = agent
        .post(format!("{base}/__sim/fault"))
        .send("burst 300 1000000")
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let published = || -> u64 {
        let mut r = agent.get(format!("{base}/__sim/stats")).call().unwrap();
        let stats: serde_json::Value =
            serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        stats["published"]["v2.users.a.presence"]
            .as_u64()
            .unwrap_or(0)
    };
    let until = Instant::now() + Duration::from_secs(60);
    while published() < 300 {
        assert!(
            Instant::now() < until,
            "the burst did not finish: {}",
            published()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let the socket reader take the last frames in.
    std::thread::sleep(Duration::from_secs(2));
    let peak = peak_rss_kb(child.id());
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(5)), 0);
    let _ = sim.kill();
    let _ = sim.wait();
    // The queue's default budget is 32 MiB and the driver's inbox 8 MiB; a frame being read,
    // one being written and the allocator's slack come on top.
    let grown_mb = peak.saturating_sub(baseline) / 1024;
    eprintln!("tail peak RSS {peak} kB, {grown_mb} MB above its {baseline} kB when live");
    assert!(
        grown_mb <= 64,
        "tail grew by {grown_mb} MB for a stopped reader"
    );
    // What it gave up is reported: as it exits, the notifications it held become the gap.
    let gap = first_line(&err, Duration::from_secs(5), |l| l.contains("\"gap\""));
    assert!(gap.contains("overflow"), "{gap}");
}

/// `n` agent presence topics, `u0000` to `u{n-1}`: sorted as numbered, so the session's
/// first shard carries the first 1000, the second the next, and so on.
fn topics_file(name: &str, n: usize) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gn-tail-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("topics.txt");
    let text: String = (0..n)
        .map(|i| format!("v2.users.u{i:05}.presence\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `tail` on 2500 topics until at least `events` notifications and one of each shard
/// (thousand) have been printed (60 s at most: the simulator publishes every topic at once
/// every 10 s, in no order a test may count on), and returns the shards printed and what
/// stderr said.
fn tail_2500(
    extra: &[&str],
    events: usize,
) -> (std::collections::BTreeSet<usize>, Vec<String>, Sim) {
    // A tenth of a notification a second per topic: 250 a second in all.
    let sim = sim_at_rate(0.1);
    let file = topics_file(&format!("shards{}", extra.len()), 2500);
    let mut args = vec!["--topics-file", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (mut child, out, err) = spawn_tail_reading(&sim, &args);
    let mut shards = std::collections::BTreeSet::new();
    let mut seen = 0;
    let end = Instant::now() + Duration::from_secs(60);
    while (seen < events || shards.len() < 3) && Instant::now() < end {
        if let Ok(line) = out.recv_timeout(Duration::from_millis(100)) {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            let name = v["topicName"].as_str().unwrap().to_owned();
            let n: usize = name["v2.users.u".len().."v2.users.u".len() + 5]
                .parse()
                .unwrap();
            shards.insert(n / 1000);
            seen += 1;
        }
    }
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), 0);
    let mut said = Vec::new();
    while let Ok(l) = err.recv_timeout(Duration::from_secs(1)) {
        said.push(l);
    }
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
    assert!(seen >= events, "{seen} notifications: {said:?}");
    (shards, said, sim)
}

#[test]
fn thousands_of_topics_go_live_on_as_many_channels_as_they_need() {
    let (shards, said, sim) = tail_2500(&[], 300);
    assert_some_line(&said, "status: live on 3 channels");
    assert_eq!(
        shards,
        [0, 1, 2].into_iter().collect(),
        "notifications from every shard"
    );
    assert_eq!(sim.stats().count("channels.create"), 3);
    assert_eq!(sim.stats().count("token"), 1, "one token for every channel");

    let (shards, said, sim) = tail_2500(&["--redundancy", "2"], 300);
    assert_some_line(&said, "status: live on 6 channels");
    assert_eq!(shards, [0, 1, 2].into_iter().collect());
    assert_eq!(sim.stats().count("channels.create"), 6);
}

#[test]
fn more_topics_than_the_channel_budget_carries_are_refused_up_front() {
    let sim = sim_at_rate(0.0);
    let file = topics_file("toomany", 25_000);
    let (_, err) = tail_exits(&sim, &["--topics-file", file.to_str().unwrap()], &[], 2);
    assert!(
        err.contains("25000 topics requested but at most 19000 fit"),
        "{err}"
    );
    assert_eq!(sim.stats().count("channels.create"), 0, "nothing was made");
    let (_, err) = tail_exits(
        &sim,
        &[
            "--topics-file",
            file.to_str().unwrap(),
            "--max-channels",
            "5",
        ],
        &[],
        2,
    );
    assert!(err.contains("at most 4000 fit"), "{err}");
    let _ = std::fs::remove_dir_all(file.parent().unwrap());
}

/// An access token of the simulator's client, got as another program would.
fn client_token(sim: &Sim) -> String {
    use base64::Engine as _;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        sim.client_id(),
        sim.client_secret()
    ));
    let mut r = agent
        .post(format!("{}/oauth/token", sim.base_url()))
        .header("Authorization", format!("Basic {auth}"))
        .send("grant_type=client_credentials")
        .unwrap();
    let token: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    token["access_token"].as_str().unwrap().to_owned()
}

#[test]
fn a_full_channel_budget_is_warned_about_once_live() {
    let sim = sim_at_rate(20.0);
    // Another program of the same user and client holds 19 channels.
    let token = client_token(&sim);
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    for _ in 0..19 {
        agent
            .post(format!("{}/api/v2/notifications/channels", sim.base_url()))
            .header("Authorization", format!("Bearer {token}"))
            .send_empty()
            .unwrap();
    }
    let (_, err) = tail_exits(
        &sim,
        &["--topic", "v2.users.a.presence", "--max-events", "3"],
        &[],
        0,
    );
    assert!(
        err.contains("hold 20 channels (1 of them this session's) of the 20 allowed"),
        "{err}"
    );
    // With room to spare, nothing is said.
    let sim = sim_at_rate(20.0);
    let (_, err) = tail_exits(
        &sim,
        &["--topic", "v2.users.a.presence", "--max-events", "3"],
        &[],
        0,
    );
    assert!(!err.contains("channels ("), "{err}");
}
