//! The help of every command, snapshotted: a change to it is a change users see. The help
//! names the credential variables and exit codes (`tail`), how long the demo takes, and the
//! simulator's fault language.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_genesys-notify"))
        .args(args)
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Panics naming the first of `needles` that `text` does not mention.
fn assert_mentions(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle} missing");
    }
}

#[test]
fn tail_help_names_the_credentials_the_exit_codes_and_examples() {
    let text = help(&["tail", "--help"]);
    assert_mentions(
        &text,
        &[
            "GENESYS_CLIENT_ID",
            "GENESYS_REFRESH_TOKEN",
            "GENESYS_ACCESS_TOKEN",
            "Exit codes",
            "Examples",
        ],
    );
    insta::assert_snapshot!("tail_help", text);
}

#[test]
fn demo_help_says_how_long_it_runs() {
    let text = help(&["demo", "--help"]);
    assert!(text.contains("90 s") && text.contains("at least 20s"));
    insta::assert_snapshot!("demo_help", text);
}

#[test]
fn sim_help_lists_the_faults_and_the_control_endpoints() {
    let text = help(&["sim", "--help"]);
    assert_mentions(
        &text,
        &[
            "/__sim/fault",
            "/__sim/stats",
            "burst N",
            "fail ENDPOINT COUNT STATUS",
            "--script",
        ],
    );
    insta::assert_snapshot!("sim_help", text);
}

#[test]
fn completions_and_a_man_page_come_from_the_same_definitions() {
    for shell in ["bash", "zsh", "fish"] {
        let text = help(&["completions", shell]);
        assert!(text.contains("genesys-notify"), "{shell}");
        assert!(
            text.contains("topics-file"),
            "{shell}: the tail options are in it"
        );
    }
    let man = help(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH"),
        "{}",
        &man[..man.len().min(200)]
    );
    assert!(man.contains("genesys\\-notify") || man.contains("genesys-notify"));
}
