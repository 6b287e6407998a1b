//! `genesys-notify check` against the simulator: exit 0 when usable, 3 on a login problem,
//! 4 on a refused topic, with one line per finding.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Output};

use genesys_notify_sim::{Sim, SimConfig};

fn check(sim: &Sim, secret: &str, topics: &[&str]) -> (Output, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_genesys-notify"));
    c.args(["check", "--api-base", sim.base_url()])
        .env_remove("GENESYS_REFRESH_TOKEN")
        .env_remove("GENESYS_ACCESS_TOKEN")
        .env("GENESYS_CLIENT_ID", sim.client_id())
        .env("GENESYS_CLIENT_SECRET", secret);
    for t in topics {
        c.args(["--topic", t]);
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out, text)
}

#[test]
fn a_usable_setup_passes_and_says_what_it_checked() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let (out, text) = check(&sim, sim.client_secret(), &["v2.users.a.presence"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "credentials accepted (client credentials); the token lives 24 h",
        "channel created",
        "topic v2.users.a.presence permitted",
        "socket open, subscribed, and answering pings",
        "channels in use: 1 of the 20 this user and OAuth client may hold",
        "check passed",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
    assert_eq!(sim.stats().sockets_open, 0, "the check closed its socket");
}

#[test]
fn a_refused_topic_is_exit_4_with_the_reason() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let (out, text) = check(
        &sim,
        sim.client_secret(),
        &["v2.users.a.presence", "v2.forbidden.queue"],
    );
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("topic v2.forbidden.queue refused: Missing permission"),
        "{text}"
    );
    assert!(
        text.contains("topic v2.users.a.presence permitted"),
        "{text}"
    );
}

#[test]
fn wrong_credentials_are_exit_3_and_say_what_to_check() {
    let sim = Sim::start(SimConfig::default()).unwrap();
    let (out, text) = check(&sim, "wrong", &["v2.users.a.presence"]);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("invalid_client"), "{text}");
    assert!(
        text.contains("check GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET"),
        "{text}"
    );
    assert!(
        !text.contains("sim-secret") && !text.contains("wrong"),
        "no secret shown: {text}"
    );
}

/// `check` with these arguments and client credentials that never reach a server: what it
/// says before connecting.
fn check_offline(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_genesys-notify"))
        .arg("check")
        .args(args)
        .args(["--topic", "v2.users.a.presence"])
        .env("GENESYS_CLIENT_ID", "id")
        .env("GENESYS_CLIENT_SECRET", "secret")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_absurd_timeout_is_a_usage_error_not_a_panic() {
    let (code, err) = check_offline(&[
        "--api-base",
        "http://127.0.0.1:9",
        "--timeout",
        "18446744073709551615",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("at most 24h"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn credentials_in_the_api_base_are_never_echoed() {
    let (code, err) = check_offline(&["--api-base", "https://admin:hunter2@api.example.com"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("credentials") && !err.contains("hunter2"),
        "{err}"
    );
}
