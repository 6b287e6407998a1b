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
    // CI sets this: there the browser tests must run.
    let required = std::env::var_os("GENESYS_NOTIFY_REQUIRE_BROWSER").is_some();
    let skip = |why: String| {
        assert!(!required, "browser tests required but {why}");
        eprintln!("\n!!! BROWSER TESTS SKIPPED: {why}\n");
        None
    };
    let missing = browser::missing();
    if !missing.is_empty() {
        return skip(format!("missing {}", missing.join("; ")));
    }
    match BUILT.get_or_init(browser::build_pkg) {
        Ok(()) => Some(()),
        Err(e) => skip(format!("cannot build web/pkg: {e}")),
    }
}

fn scenario(name: &'static str) {
    run(name, genesys_notify_tests::scenario(name));
}

fn run(name: &'static str, s: genesys_notify_tests::Scenario) {
    if let Some(out) = run_out(name, s) {
        genesys_notify_tests::extra_checks(name, &out);
    }
}

fn run_out(
    name: &'static str,
    s: genesys_notify_tests::Scenario,
) -> Option<genesys_notify_tests::Outcome> {
    run_with(name, s, &Browser::default())
}

fn run_with(
    name: &'static str,
    mut s: genesys_notify_tests::Scenario,
    browser: &Browser,
) -> Option<genesys_notify_tests::Outcome> {
    ready()?;
    s.sim.static_dir = Some(browser::web_dir());
    let out = genesys_notify_tests::run(&s, browser);
    println!(
        "browser scenario={name} published={} delivered={} lost_outside_gaps={} duplicates={}",
        out.published, out.delivered, out.lost_outside_gaps, out.duplicates
    );
    genesys_notify_tests::check(&s, "browser", &out);
    Some(out)
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

/// The login is revoked: the page's `getToken()` can get no token without its user (the
/// token endpoint answers 401), so the session asks for a login once the token it has runs
/// out, without a request storm.
#[test]
fn revoked_login() {
    let mut s = genesys_notify_tests::scenario("revoked_refresh_token");
    s.faults = vec![(
        std::time::Duration::from_millis(500),
        "fail token 1000 401".parse().unwrap(),
    )];
    // The first token, the renewal's refusal, and the refusal once the token has expired;
    // one more when the server expires the token (and closes the socket) a moment before the
    // session's clock says so, and a channel request with it is refused. No storm.
    s.max_token_requests = 4;
    run("revoked_login", s);
}

#[test]
fn foreign_connect_uri() {
    scenario("foreign_connect_uri");
}

/// The page is frozen for 30 s, as Chromium freezes a background tab, while the token (20 s)
/// runs out: on thaw the session counts the pause as a suspend, reports what it could not
/// prove it covered, and renews what expired. `lifecycle`: a hidden page, frozen with the
/// `freeze`/`resume` events Chromium sends, which measure the pause (its timers' lateness
/// would not: a hidden page's limit is 75 s); otherwise a visible page, whose timers' lateness
/// gives the freeze away.
fn frozen(name: &'static str, lifecycle: bool) {
    let mut s = genesys_notify_tests::scenario("steady");
    s.sim.token_ttl = std::time::Duration::from_secs(20);
    s.freezes = vec![(
        std::time::Duration::from_secs(2),
        std::time::Duration::from_secs(30),
    )];
    s.run_for = std::time::Duration::from_secs(40);
    s.max_token_requests = 4;
    s.max_channel_requests = 4;
    let browser = Browser {
        query: if lifecycle { "&hidden=1" } else { "" }.to_owned(),
        lifecycle,
    };
    if let Some(out) = run_with(name, s, &browser) {
        assert!(
            out.warnings.iter().any(|w| w.contains("resumed after")),
            "the freeze was seen as a suspend: {:?}",
            out.warnings
        );
        assert_eq!(out.gaps.len(), 1, "one gap for one freeze: {out}");
    }
}

#[test]
fn frozen_page() {
    frozen("frozen_page", false);
}

#[test]
fn frozen_page_lifecycle() {
    frozen("frozen_page_lifecycle", true);
}

/// The page signs in the way a browser application does: the code grant with PKCE (no client
/// secret, no refresh token; the simulator's login page agrees at once). Its token lives 20 s;
/// when the session asks for the next one, `getToken()` has none, the session says
/// `loginsoon`, and the page signs in again in a popup without leaving the page, before the
/// token ends: nothing lost, no gap, no `loginrequired`, two sign-ins in all.
#[test]
fn pkce_login() {
    let mut s = genesys_notify_tests::scenario("steady");
    s.sim.token_ttl = std::time::Duration::from_secs(20);
    s.run_for = std::time::Duration::from_secs(30);
    s.max_token_requests = 2;
    s.max_channel_requests = 2;
    let pkce = Browser {
        query: "&auth=pkce&minLife=5".to_owned(),
        ..Browser::default()
    };
    if let Some(out) = run_with("pkce_login", s, &pkce) {
        assert_eq!(
            out.token_requests, 2,
            "a sign-in, then one in the popup: {out}"
        );
        assert!(out.gaps.is_empty(), "signed in again in time: {out}");
        assert!(
            out.warnings
                .iter()
                .any(|w| w.contains("log in again before it ends")),
            "told ahead: {:?}",
            out.warnings
        );
    }
}

/// A hidden tab's timers run late (Chromium aligns them, to whole minutes after a while; the
/// page plays a hidden tab whose timers wait for the next 10 s), while its socket callbacks
/// run at once. On a quiet socket (an event every 10 s per topic, pinged after 1.5 s of
/// silence, the pong awaited 1 s) every liveness timer fires seconds late: the session pings
/// late, but a socket whose pong came is never declared dead for it, and a hidden page is not
/// taken for frozen for lateness its throttling explains. (Judged by the visible page's 5 s
/// limit, this run reported three false suspends.)
#[test]
fn throttled_timers() {
    let mut s = genesys_notify_tests::scenario("steady");
    s.sim.rate = 0.1;
    s.run_for = std::time::Duration::from_secs(40);
    let throttled = Browser {
        query: "&throttleMs=10000".to_owned(),
        ..Browser::default()
    };
    if let Some(out) = run_with("throttled_timers", s, &throttled) {
        assert!(out.gaps.is_empty(), "no socket declared dead: {out}");
        assert!(
            !out.warnings.iter().any(|w| w.contains("resumed after")),
            "not taken for frozen: {:?}",
            out.warnings
        );
        assert!(
            out.published >= 8,
            "a quiet socket, but not a silent one: {out}"
        );
    }
}
