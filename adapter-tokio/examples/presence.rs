//! Prints presence changes for some users, uses the session's access token for one REST call
//! of the application's own, and re-reads the presence of every user a gap names (the
//! pattern for any topic: a gap says which topics were not covered; read their current state
//! over REST, a bounded number of times, and treat the answer like a notification).
//!
//! Against the simulator (no account needed):
//! ```text
//! cargo run -p genesys-notify -- sim --rate 1            # prints base_url, client id/secret
//! GENESYS_API_BASE=http://127.0.0.1:PORT GENESYS_CLIENT_ID=genesys-notify-sim \
//! GENESYS_CLIENT_SECRET=sim-secret cargo run -p genesys-notify-tokio --example presence -- USER_ID…
//! ```
//! Against an organisation: set `GENESYS_REGION` (e.g. `eu_west_1`) instead of
//! `GENESYS_API_BASE`. `RUST_LOG=genesys_notify_tokio=debug` shows the session's decisions.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::time::Duration;

use futures_util::StreamExt;
use genesys_notify_core::Event;
use genesys_notify_tokio::{Client, Credentials, Secret, Topic};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let users: Vec<String> = std::env::args().skip(1).collect();
    let users = if users.is_empty() {
        vec!["6c1b4f1e-demo".to_owned()]
    } else {
        users
    };
    let var = |n: &str| std::env::var(n).map_err(|_| format!("set {n}"));
    let mut builder = Client::builder().credentials(Credentials::ClientCredentials {
        client_id: var("GENESYS_CLIENT_ID")?,
        client_secret: Secret::new(var("GENESYS_CLIENT_SECRET")?),
    });
    let api_base = std::env::var("GENESYS_API_BASE").ok();
    builder = match (&api_base, std::env::var("GENESYS_REGION")) {
        (Some(base), _) => builder.base_urls(base, None),
        (None, Ok(region)) => builder.region(region.parse()?),
        (None, Err(_)) => {
            return Err("set GENESYS_API_BASE (the simulator) or GENESYS_REGION".into())
        }
    };
    for u in &users {
        builder = builder.topic(Topic::new(format!("v2.users.{u}.presence"))?);
    }
    let (handle, mut events) = builder.connect().await?;

    // The application's own REST call, with the session's token (shared, refreshed for us).
    let token = tokio::time::timeout(Duration::from_secs(30), handle.access_token()).await??;
    let base = api_base.unwrap_or_else(|| "https://api.mypurecloud.com".to_owned());
    let http = http_client()?;
    let answer = http
        .get(format!("{base}/api/v2/notifications/channels"))
        .bearer_auth(token.expose())
        .send()
        .await;
    match answer {
        Ok(r) if r.status() == 401 => handle.report_unauthorized(token.expose()),
        Ok(r) => println!("GET /api/v2/notifications/channels → {}", r.status()),
        Err(e) => eprintln!("REST call failed: {e}"),
    }

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => break,
            e = events.next() => match e {
                Some(Event::Notification { topic, raw }) => {
                    let v: serde_json::Value = serde_json::from_str(&raw)?;
                    let status = &v["eventBody"]["presenceDefinition"]["systemPresence"];
                    println!("{topic}: {}", if status.is_null() { &v["eventBody"] } else { status });
                }
                Some(Event::Gap { topics, reason, .. }) => {
                    eprintln!("missed presence changes for {} users ({reason}): re-reading them", topics.len());
                    for topic in topics {
                        let Some(user) = topic.as_str().strip_prefix("v2.users.").and_then(|t| t.strip_suffix(".presence")) else {
                            continue;
                        };
                        // One task per topic; it ends after a bounded number of tries.
                        tokio::spawn(reread_presence(handle.clone(), http.clone(), base.clone(), user.to_owned()));
                    }
                }
                Some(Event::LoginRequired { reason, .. }) => { eprintln!("login required: {reason}"); break; }
                Some(other) => eprintln!("{other:?}"),
                None => break,
            },
        }
    }
    handle.close().await;
    Ok(())
}

/// Reads a user's presence again after a gap (`GET /api/v2/users/{id}/presences/purecloud`,
/// a `UserPresence`) with the session's token: at most four tries, 1, 2 and 4 s apart; a 401
/// is reported to the session, which fetches one new token.
async fn reread_presence(
    handle: genesys_notify_tokio::Handle,
    http: reqwest::Client,
    base: String,
    user: String,
) {
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=4 {
        let Ok(token) = handle.access_token().await else {
            return; // a login is required, or the session ended: nothing to read with
        };
        let answer = http
            .get(format!("{base}/api/v2/users/{user}/presences/purecloud"))
            .bearer_auth(token.expose())
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => {
                let text = r.text().await.unwrap_or_default();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                println!(
                    "v2.users.{user}.presence (re-read): {}",
                    v["presenceDefinition"]["systemPresence"]
                );
                return;
            }
            Ok(r) if r.status() == 401 => handle.report_unauthorized(token.expose()),
            Ok(r) => eprintln!(
                "re-read of {user}'s presence, try {attempt}: HTTP {}",
                r.status()
            ),
            Err(e) => eprintln!("re-read of {user}'s presence, try {attempt}: {e}"),
        }
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    eprintln!("{user}'s presence is unknown since the gap: four re-reads failed");
}

/// reqwest with the same TLS trust as the session (rustls, ring, webpki roots).
fn http_client() -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    let tls = genesys_notify_adapter_common::socket::tls_config(None)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&tls))
        .build()?)
}
