//! Prints presence changes for some users, and uses the session's access token for one REST
//! call of the application's own.
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
    let answer = http_client()?
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
                Some(Event::Gap { topics, reason, .. }) => eprintln!("missed presence changes for {} users ({reason}): re-read them", topics.len()),
                Some(Event::LoginRequired { reason, .. }) => { eprintln!("login required: {reason}"); break; }
                Some(other) => eprintln!("{other:?}"),
                None => break,
            },
        }
    }
    handle.close().await;
    Ok(())
}

/// reqwest with the same TLS trust as the session (rustls, ring, webpki roots).
fn http_client() -> Result<reqwest::Client, Box<dyn std::error::Error>> {
    let tls = genesys_notify_adapter_common::socket::tls_config(None)?;
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&tls))
        .build()?)
}
