//! `genesys-notify demo` ends by itself, loses nothing without a report, and says so last.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

/// Runs the demo at its shortest; returns its summary fields and its stdout.
fn demo(extra: &[&str]) -> (std::collections::BTreeMap<String, u64>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_genesys-notify"))
        .args(["demo", "--duration", "20s"])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap();
    let fields: std::collections::BTreeMap<String, u64> = last
        .strip_prefix("demo ")
        .unwrap()
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    assert_eq!(
        fields.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "delivered",
            "duplicates",
            "gaps",
            "lost_in_gaps",
            "lost_outside_gaps",
            "published"
        ]
    );
    assert_eq!(
        fields["published"],
        fields["delivered"] + fields["lost_in_gaps"] + fields["lost_outside_gaps"],
        "the summary adds up: {stdout}"
    );
    assert_eq!(fields["lost_outside_gaps"], 0, "{stdout}");
    assert_eq!(fields["duplicates"], 0, "{stdout}");
    assert!(fields["delivered"] > 100, "{stdout}");
    for needle in ["socket_closing", "abrupt drop", "half-open", "429"] {
        assert!(
            stdout.contains(needle),
            "the timeline mentions {needle}: {stdout}"
        );
    }
    (fields, stdout)
}

#[test]
fn demo_at_its_shortest_runs_through_every_fault_and_reports_honestly() {
    let (fields, stdout) = demo(&[]);
    assert!(
        fields["gaps"] >= 2,
        "the drop and the half-open socket each leave a gap: {stdout}"
    );
}

#[test]
fn demo_with_two_sockets_leaves_a_gap_only_for_the_fault_that_hits_both() {
    let (fields, stdout) = demo(&["--redundancy", "2"]);
    assert!(stdout.contains("redundancy 2"), "{stdout}");
    // The drop, the half-open socket and the maintenance hit one socket: no gap. The tokens
    // revoked while the token endpoint answers 429 hit both.
    assert!(fields["gaps"] <= 1, "{stdout}");
}

#[test]
fn demo_refuses_a_too_short_duration() {
    let out = Command::new(env!("CARGO_BIN_EXE_genesys-notify"))
        .args(["demo", "--duration", "5s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 20s"));
}
