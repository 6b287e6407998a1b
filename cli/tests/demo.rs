//! `genesys-notify demo` ends by itself, loses nothing without a report, and says so last.
#![allow(clippy::unwrap_used, missing_docs)]

use std::process::Command;

#[test]
fn demo_at_its_shortest_runs_through_every_fault_and_reports_honestly() {
    let out = Command::new(env!("CARGO_BIN_EXE_genesys-notify"))
        .args(["demo", "--duration", "20s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap();
    let fields: std::collections::BTreeMap<&str, u64> = last
        .strip_prefix("demo ")
        .unwrap()
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();
    assert_eq!(
        fields.keys().copied().collect::<Vec<_>>(),
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
    assert!(
        fields["gaps"] >= 2,
        "the drop and the half-open socket each leave a gap: {stdout}"
    );
    assert!(fields["delivered"] > 100, "{stdout}");
    for needle in ["socket_closing", "abrupt drop", "half-open", "429"] {
        assert!(
            stdout.contains(needle),
            "the timeline mentions {needle}: {stdout}"
        );
    }
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
