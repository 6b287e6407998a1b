//! The scenario table in real headless Chromium: `genesys-notify-web` (the core compiled to
//! wasm, driven over the browser's fetch, WebSocket and timers) against the simulator, with
//! the same accounting as the Rust adapters. Needs Debian's `chromium`, Node and
//! `npm ci` in `web/`, and wasm-bindgen-cli 0.2.130; without them every test says loudly
//! what it skipped.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use genesys_notify_tests::browser::{self, Browser};

/// Builds the wasm package once; None (after a loud message) if the browser tests cannot run.
fn ready() -> Option<()> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let missing = browser::missing();
    if !missing.is_empty() {
        eprintln!(
            "\n!!! BROWSER TESTS SKIPPED: missing {}\n",
            missing.join("; ")
        );
        return None;
    }
    match BUILT.get_or_init(browser::build_pkg) {
        Ok(()) => Some(()),
        Err(e) => {
            eprintln!("\n!!! BROWSER TESTS SKIPPED: cannot build web/pkg: {e}\n");
            None
        }
    }
}

fn scenario(name: &'static str) {
    if ready().is_none() {
        return;
    }
    let mut s = genesys_notify_tests::scenario(name);
    s.sim.static_dir = Some(browser::web_dir());
    let out = genesys_notify_tests::run(&s, &Browser);
    println!(
        "browser scenario={name} published={} delivered={} lost_outside_gaps={} duplicates={}",
        out.published, out.delivered, out.lost_outside_gaps, out.duplicates
    );
    genesys_notify_tests::check(&s, "browser", &out);
    genesys_notify_tests::extra_checks(name, &out);
}

#[test]
fn steady() {
    scenario("steady");
}

#[test]
fn token_expiry_close_1000() {
    scenario("token_expiry_close_1000");
}

#[test]
fn channel_expiry() {
    scenario("channel_expiry");
}

#[test]
fn socket_closing() {
    scenario("socket_closing");
}

#[test]
fn abrupt_drop() {
    scenario("abrupt_drop");
}

#[test]
fn half_open() {
    scenario("half_open");
}

#[test]
fn revoked_refresh_token() {
    scenario("revoked_refresh_token");
}

#[test]
fn foreign_connect_uri() {
    scenario("foreign_connect_uri");
}
