//! `genesys-notify sim` as a user runs it: a real process, real signals.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin, spawn_sim};

#[test]
fn prints_a_json_banner_serves_and_exits_0_on_sigint() {
    let (mut child, line) = spawn_sim(
        &["--token-ttl", "30s", "--rate", "0", "--quiet"],
        Stdio::piped(),
    );
    let banner: serde_json::Value = serde_json::from_str(&line).unwrap();
    let base = banner["base_url"].as_str().unwrap();
    assert!(base.starts_with("http://127.0.0.1:"));
    for key in ["client_id", "client_secret", "refresh_token"] {
        assert!(banner[key].is_string(), "{key} missing from {line}");
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .post(format!("{base}/oauth/token"))
        .header(
            "Authorization",
            basic(
                banner["client_id"].as_str().unwrap(),
                banner["client_secret"].as_str().unwrap(),
            ),
        )
        .send("grant_type=client_credentials")
        .unwrap();
    let token: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(token["expires_in"], 30);

    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(status.code(), Some(0));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "did not exit on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_flags_exit_2_and_say_what_to_fix() {
    let out = bin().args(["sim", "--token-ttl", "soon"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token-ttl") && err.contains("30s"), "{err}");

    let out = bin().args(["sim", "--tls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--cert-out"));

    let out = bin()
        .args(["sim", "--on-token-expiry", "explode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("close:CODE"));

    let dir = std::env::temp_dir().join(format!("gn-script-{}", std::process::id()));
    std::fs::write(&dir, "10s explode\n").unwrap();
    let out = bin().args(["sim", "--script"]).arg(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(dir);
}

#[test]
fn tls_writes_the_certificate() {
    let cert = std::env::temp_dir().join(format!("gn-cert-{}.pem", std::process::id()));
    let (mut child, line) = spawn_sim(
        &["--tls", "--quiet", "--cert-out", cert.to_str().unwrap()],
        Stdio::null(),
    );
    assert!(line.contains("https://127.0.0.1:"), "{line}");
    let pem = std::fs::read_to_string(&cert).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_file(cert);
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}
