//! The simulator over real loopback sockets, checked against the message shapes the real
//! service sends (OAuth and API error bodies, channel and subscription answers, socket frames).
#![allow(clippy::unwrap_used, clippy::print_stderr, missing_docs)]

use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use genesys_notify_sim::{Fault, OnExpiry, Sim, SimConfig};
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

struct Http {
    agent: ureq::Agent,
    base: String,
}

struct Answer {
    status: u16,
    headers: ureq::http::HeaderMap,
    body: Value,
}

impl Http {
    fn new(sim: &Sim) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        Http {
            agent,
            base: sim.base_url().to_owned(),
        }
    }

    fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut r = r.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    fn token_cc(&self, id: &str, secret: &str) -> Answer {
        Self::answer(
            self.agent
                .post(format!("{}/oauth/token", self.base))
                .header("Authorization", basic(id, secret))
                .content_type("application/x-www-form-urlencoded")
                .send("grant_type=client_credentials"),
        )
    }

    fn token_refresh(&self, sim: &Sim, refresh: &str) -> Answer {
        Self::answer(
            self.agent
                .post(format!("{}/oauth/token", self.base))
                .header("Authorization", basic(sim.client_id(), sim.client_secret()))
                .content_type("application/x-www-form-urlencoded")
                .send(format!("grant_type=refresh_token&refresh_token={refresh}")),
        )
    }

    fn access(&self, sim: &Sim) -> String {
        let a = self.token_cc(sim.client_id(), sim.client_secret());
        assert_eq!(a.status, 200);
        a.body["access_token"].as_str().unwrap().to_owned()
    }

    fn create(&self, token: &str) -> Answer {
        Self::answer(
            self.agent
                .post(format!("{}/api/v2/notifications/channels", self.base))
                .header("Authorization", format!("Bearer {token}"))
                .send_empty(),
        )
    }

    fn put(&self, token: &str, channel: &str, topics: &[&str], ignore_errors: bool) -> Answer {
        let body: Vec<Value> = topics.iter().map(|t| json!({ "id": t })).collect();
        Self::answer(
            self.agent
                .put(format!(
                    "{}/api/v2/notifications/channels/{channel}/subscriptions?ignoreErrors={ignore_errors}",
                    self.base
                ))
                .header("Authorization", format!("Bearer {token}"))
                .content_type("application/json")
                .send(Value::Array(body).to_string()),
        )
    }

    fn get(&self, token: &str, path: &str) -> Answer {
        Self::answer(
            self.agent
                .get(format!("{}{path}", self.base))
                .header("Authorization", format!("Bearer {token}"))
                .call(),
        )
    }
}

fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn quick() -> SimConfig {
    SimConfig {
        rate: 0.0,
        heartbeat: Duration::from_millis(300),
        ..SimConfig::default()
    }
}

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn connect(uri: &str) -> Ws {
    let (ws, resp) = tungstenite::connect(uri).unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    ws
}

/// Reads until `pred` matches a text frame or `within` passes. Returns the frame, or the
/// close code if the socket closed first.
fn read_until(
    ws: &mut Ws,
    within: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value, Option<u16>> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str())
                    .unwrap_or(Value::String(t.as_str().to_owned()));
                if pred(&v) {
                    return Ok(v);
                }
            }
            Ok(Message::Close(frame)) => return Err(frame.map(|f| u16::from(f.code))),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Err(None),
        }
    }
    panic!("nothing matched within {within:?}");
}

/// A token, a channel subscribed to `topics`, and an open socket on it.
fn live(sim: &Sim, http: &Http, topics: &[&str]) -> (String, String, Ws) {
    let token = http.access(sim);
    let ch = http.create(&token);
    assert_eq!(ch.status, 200);
    let id = ch.body["id"].as_str().unwrap().to_owned();
    let ws = connect(ch.body["connectUri"].as_str().unwrap());
    assert_eq!(http.put(&token, &id, topics, true).status, 200);
    (token, id, ws)
}

fn is_topic(t: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v| v["topicName"] == t
}

#[test]
fn oauth_client_credentials_and_errors_have_the_real_shape() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let ok = http.token_cc(sim.client_id(), sim.client_secret());
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body["token_type"], "bearer");
    assert_eq!(ok.body["expires_in"], 86_400);
    assert!(ok.body["access_token"].is_string());
    assert!(
        ok.body.get("refresh_token").is_none(),
        "client credentials get no refresh token"
    );
    assert!(ok.headers.contains_key("date"));

    let bad = http.token_cc(sim.client_id(), "wrong");
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body["error"], "invalid_client");
    assert!(bad.body["description"].is_string() && bad.body["error_description"].is_string());
}

#[test]
fn refresh_grant_rotates_and_the_old_token_dies() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let first = http.token_refresh(&sim, sim.refresh_token());
    assert_eq!(first.status, 200);
    let rotated = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rotated, sim.refresh_token());
    let reuse = http.token_refresh(&sim, sim.refresh_token());
    assert_eq!(reuse.status, 400);
    assert_eq!(reuse.body["error"], "invalid_grant");
    assert_eq!(http.token_refresh(&sim, &rotated).status, 200);
    sim.fault(&Fault::RevokeRefreshTokens);
    let revoked = http.token_refresh(&sim, &rotated);
    assert_eq!(
        (revoked.status, revoked.body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[test]
fn channels_create_list_head_and_401() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let token = http.access(&sim);
    let ch = http.create(&token);
    assert_eq!(ch.status, 200);
    let id = ch.body["id"].as_str().unwrap();
    assert!(id.starts_with("streaming-"));
    let uri = ch.body["connectUri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("{}/channels/{id}", sim.base_url().replace("http", "ws"))
    );
    let expires = ch.body["expires"].as_str().unwrap();
    let ts: jiff::Timestamp = expires.parse().unwrap();
    let left = ts.duration_since(jiff::Timestamp::now()).as_secs();
    assert!((86_300..=86_400).contains(&left), "{expires}");

    let list = http.get(&token, "/api/v2/notifications/channels");
    assert_eq!(list.body["entities"][0]["id"], id);
    let head = Http::answer(
        http.agent
            .head(format!(
                "{}/api/v2/notifications/channels/{id}",
                sim.base_url()
            ))
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    );
    assert_eq!(head.status, 200);
    let missing = Http::answer(
        http.agent
            .head(format!(
                "{}/api/v2/notifications/channels/nope",
                sim.base_url()
            ))
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    );
    assert_eq!(missing.status, 404);

    let unauthorized = http.create("not-a-token");
    assert_eq!(unauthorized.status, 401);
    assert_eq!(unauthorized.body["code"], "bad.credentials");
    assert_eq!(unauthorized.body["message"], "Invalid login credentials.");
    assert_eq!(unauthorized.body["status"], 401);
}

#[test]
fn the_21st_channel_evicts_the_oldest_unconnected() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let token = http.access(&sim);
    let first = http.create(&token);
    let first_id = first.body["id"].as_str().unwrap().to_owned();
    let _ws = connect(first.body["connectUri"].as_str().unwrap());
    let second = http.create(&token).body["id"].as_str().unwrap().to_owned();
    for _ in 0..18 {
        http.create(&token);
    }
    assert_eq!(
        http.get(&token, "/api/v2/notifications/channels").body["entities"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    http.create(&token);
    let ids: Vec<String> = http.get(&token, "/api/v2/notifications/channels").body["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 20);
    assert!(ids.contains(&first_id), "the connected channel survives");
    assert!(
        !ids.contains(&second),
        "the oldest unconnected channel is evicted"
    );
    assert_eq!(sim.stats().channels_evicted, 1);
}

#[test]
fn subscriptions_give_per_topic_results_and_limits() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let token = http.access(&sim);
    let id = http.create(&token).body["id"].as_str().unwrap().to_owned();
    let r = http.put(
        &token,
        &id,
        &["v2.users.a.presence", "v2.forbidden.x"],
        true,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["entities"][0],
        json!({ "id": "v2.users.a.presence", "state": "Permitted" })
    );
    assert_eq!(r.body["entities"][1]["state"], "Rejected");
    assert!(r.body["entities"][1]["rejectionReason"].is_string());

    let strict = http.put(
        &token,
        &id,
        &["v2.users.a.presence", "v2.forbidden.x"],
        false,
    );
    assert_eq!(strict.status, 400);

    let many: Vec<String> = (0..1001)
        .map(|i| format!("v2.users.{i}.presence"))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let too_many = http.put(&token, &id, &refs, true);
    assert_eq!(too_many.status, 400);
    assert!(too_many.body["message"].as_str().unwrap().contains("1000"));

    let got = http.get(
        &token,
        &format!("/api/v2/notifications/channels/{id}/subscriptions"),
    );
    assert_eq!(
        got.body["entities"],
        json!([{ "id": "v2.users.a.presence", "state": "Permitted" }])
    );

    let post = Http::answer(
        http.agent
            .post(format!(
                "{}/api/v2/notifications/channels/{id}/subscriptions",
                sim.base_url()
            ))
            .header("Authorization", format!("Bearer {token}"))
            .content_type("application/json")
            .send(r#"[{"id":"v2.users.b.presence"}]"#),
    );
    assert_eq!(post.status, 200);
    let got = http.get(
        &token,
        &format!("/api/v2/notifications/channels/{id}/subscriptions"),
    );
    assert_eq!(
        got.body["entities"].as_array().unwrap().len(),
        2,
        "POST adds"
    );

    let del = Http::answer(
        http.agent
            .delete(format!(
                "{}/api/v2/notifications/channels/{id}/subscriptions",
                sim.base_url()
            ))
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    );
    assert_eq!(del.status, 200);
    let got = http.get(
        &token,
        &format!("/api/v2/notifications/channels/{id}/subscriptions"),
    );
    assert_eq!(got.body["entities"], json!([]));

    let missing = http.put(&token, "nope", &["v2.users.a.presence"], true);
    assert_eq!(missing.status, 404);
}

#[test]
fn malformed_requests_get_error_shapes_not_hangs() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let token = http.access(&sim);
    let id = http.create(&token).body["id"].as_str().unwrap().to_owned();
    let url = format!(
        "{}/api/v2/notifications/channels/{id}/subscriptions",
        sim.base_url()
    );
    for body in ["not json", "{\"id\":1}", "[{\"topic\":\"x\"}]"] {
        let r = Http::answer(
            http.agent
                .put(&url)
                .header("Authorization", format!("Bearer {token}"))
                .send(body.to_owned()),
        );
        assert_eq!(r.status, 400, "{body}");
        assert_eq!(r.body["status"], 400);
    }
    let big = "x".repeat(2 << 20);
    let r = Http::answer(
        http.agent
            .put(&url)
            .header("Authorization", format!("Bearer {token}"))
            .send(big),
    );
    assert_eq!(r.status, 413);
    let r = Http::answer(http.agent.get(format!("{}/nowhere", sim.base_url())).call());
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (404, Some("not.found"))
    );
    let r = Http::answer(
        http.agent
            .post(format!("{}/oauth/token", sim.base_url()))
            .header("Authorization", basic(sim.client_id(), sim.client_secret()))
            .send("grant_type=password"),
    );
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[test]
fn socket_heartbeats_pongs_and_subscribe_replies() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let (_t, _id, mut ws) = live(&sim, &http, &["v2.users.a.presence"]);
    let hb = read_until(
        &mut ws,
        Duration::from_secs(2),
        is_topic("channel.metadata"),
    )
    .unwrap();
    assert_eq!(
        hb,
        json!({ "topicName": "channel.metadata", "eventBody": { "message": "WebSocket Heartbeat" } })
    );
    ws.send(Message::text(r#"{"message":"ping"}"#)).unwrap();
    let pong = read_until(&mut ws, Duration::from_secs(2), |v| {
        v["eventBody"]["message"] == "pong"
    })
    .unwrap();
    assert_eq!(pong["topicName"], "channel.metadata");
    ws.send(Message::text(
        r#"{"message":"subscribe","topics":["v2.users.b.presence"],"correlationId":"c1"}"#,
    ))
    .unwrap();
    let reply = read_until(&mut ws, Duration::from_secs(2), |v| {
        v.get("result").is_some()
    })
    .unwrap();
    assert_eq!(reply["result"], "200", "result is a string");
    assert_eq!(reply["status"], "subscribed");
}

#[test]
fn a_pong_follows_queued_notifications_unless_they_lag() {
    const TOPIC: &str = "v2.users.a.presence";
    for (lag, overtaken) in [(Duration::ZERO, false), (Duration::from_millis(600), true)] {
        let sim = Sim::start(SimConfig {
            rate: 50.0,
            notification_lag: lag,
            ..quick()
        })
        .unwrap();
        let http = Http::new(&sim);
        let (_t, _id, mut ws) = live(&sim, &http, &[TOPIC]);
        let first = read_until(&mut ws, Duration::from_secs(3), is_topic(TOPIC)).unwrap();
        let published = sim.stats().published[TOPIC];
        ws.send(Message::text(r#"{"message":"ping"}"#)).unwrap();
        let last_seq = std::cell::Cell::new(first["eventBody"]["seq"].as_u64().unwrap());
        read_until(&mut ws, Duration::from_secs(3), |v| {
            if let Some(seq) = v["eventBody"]["seq"].as_u64() {
                last_seq.set(seq);
            }
            v["eventBody"]["message"] == "pong"
        })
        .unwrap();
        let before_pong = last_seq.get();
        if overtaken {
            assert!(
                before_pong < published,
                "lag {lag:?}: the pong overtakes notifications still lagging (seq {before_pong} of {published} before it)"
            );
        } else {
            assert!(
                before_pong >= published,
                "one ordered stream: all {published} notifications queued before the ping precede the pong, got up to {before_pong}"
            );
        }
    }
}

#[test]
fn publisher_numbers_events_per_topic_and_fans_out() {
    let sim = Sim::start(SimConfig {
        rate: 20.0,
        ..quick()
    })
    .unwrap();
    let http = Http::new(&sim);
    let (token, _id, mut a) = live(&sim, &http, &["v2.users.a.presence"]);
    let ch2 = http.create(&token);
    let id2 = ch2.body["id"].as_str().unwrap().to_owned();
    let mut b = connect(ch2.body["connectUri"].as_str().unwrap());
    http.put(&token, &id2, &["v2.users.a.presence"], true);
    // The same event reaches both channels subscribed to the topic (`a` subscribed first, so
    // it has every event `b` has).
    let on_b = read_until(
        &mut b,
        Duration::from_secs(3),
        is_topic("v2.users.a.presence"),
    )
    .unwrap();
    let s = on_b["eventBody"]["seq"].as_u64().unwrap();
    let on_a = read_until(&mut a, Duration::from_secs(3), |v| {
        v["eventBody"]["seq"] == s
    })
    .unwrap();
    assert_eq!(on_a["metadata"], on_b["metadata"]);
    assert_eq!(on_a["version"], "2");
    assert!(on_a["metadata"]["CorrelationId"].is_string());
    let next = read_until(
        &mut a,
        Duration::from_secs(3),
        is_topic("v2.users.a.presence"),
    )
    .unwrap();
    assert_eq!(
        next["eventBody"]["seq"].as_u64().unwrap(),
        s + 1,
        "per-topic sequence"
    );
    assert!(sim.stats().published["v2.users.a.presence"] >= s);
}

#[test]
fn socket_closing_then_close_after_the_grace() {
    let sim = Sim::start(SimConfig {
        maintenance_grace: Duration::from_millis(500),
        ..quick()
    })
    .unwrap();
    let http = Http::new(&sim);
    let (_t, _id, mut ws) = live(&sim, &http, &["v2.users.a.presence"]);
    let started = Instant::now();
    sim.fault(&Fault::SocketClosing);
    let notice = read_until(
        &mut ws,
        Duration::from_secs(2),
        is_topic("v2.system.socket_closing"),
    )
    .unwrap();
    assert!(notice["eventBody"]["channelId"].is_string());
    let closed = read_until(&mut ws, Duration::from_secs(3), |_| false).unwrap_err();
    assert_eq!(closed, Some(1001));
    assert!(started.elapsed() >= Duration::from_millis(450));
}

#[test]
fn a_second_connection_displaces_the_first() {
    let sim = Sim::start(SimConfig {
        displaced_close_code: 4000,
        ..quick()
    })
    .unwrap();
    let http = Http::new(&sim);
    let token = http.access(&sim);
    let ch = http.create(&token);
    let uri = ch.body["connectUri"].as_str().unwrap().to_owned();
    let mut first = connect(&uri);
    let _second = connect(&uri);
    assert_eq!(
        read_until(&mut first, Duration::from_secs(2), |_| false).unwrap_err(),
        Some(4000)
    );
}

#[test]
fn token_expiry_closes_with_the_configured_code_or_goes_silent() {
    for (behaviour, expect_close) in [
        (OnExpiry::Close(4401), Some(4401)),
        (OnExpiry::Silent, None),
    ] {
        let cfg = SimConfig {
            token_ttl: Duration::from_secs(1),
            on_token_expiry: behaviour,
            ..quick()
        };
        let sim = Sim::start(cfg).unwrap();
        let http = Http::new(&sim);
        let (_t, _id, mut ws) = live(&sim, &http, &["v2.users.a.presence"]);
        match expect_close {
            Some(code) => {
                assert_eq!(
                    read_until(&mut ws, Duration::from_secs(3), |_| false).unwrap_err(),
                    Some(code)
                );
            }
            None => {
                std::thread::sleep(Duration::from_millis(1300));
                // Drain what was sent before the token expired.
                let drain = Instant::now() + Duration::from_millis(400);
                while Instant::now() < drain {
                    let _ = ws.read();
                }
                ws.send(Message::text(r#"{"message":"ping"}"#)).unwrap();
                let end = Instant::now() + Duration::from_secs(1);
                while Instant::now() < end {
                    match ws.read() {
                        Ok(Message::Text(t)) => panic!("a silent socket sent {t}"),
                        Ok(Message::Close(_)) => panic!("a silent socket closed"),
                        _ => {}
                    }
                }
            }
        }
        // The channel is bound to the token: upgrading to it again is refused.
        let id = http.get(&http.access(&sim), "/api/v2/notifications/channels");
        assert_eq!(
            id.body["entities"],
            json!([]),
            "other token's channels are not listed"
        );
    }
}

#[test]
fn upgrade_refusals_carry_http_statuses() {
    let sim = Sim::start(SimConfig {
        token_ttl: Duration::from_secs(1),
        ..quick()
    })
    .unwrap();
    let http = Http::new(&sim);
    let token = http.access(&sim);
    let uri = http.create(&token).body["connectUri"]
        .as_str()
        .unwrap()
        .to_owned();
    let status = |uri: &str| match tungstenite::connect(uri) {
        Err(tungstenite::Error::Http(r)) => r.status().as_u16(),
        other => panic!(
            "expected a refused upgrade, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    };
    sim.fault(&"fail upgrade 1 503".parse().unwrap());
    assert_eq!(status(&uri), 503);
    let gone = format!(
        "{}/channels/streaming-0-nope",
        sim.base_url().replace("http", "ws")
    );
    assert_eq!(status(&gone), 404);
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(status(&uri), 401, "the creating token expired");
}

#[test]
fn channel_expiry_closes_the_socket_and_forgets_the_channel() {
    let sim = Sim::start(SimConfig {
        channel_ttl: Duration::from_secs(1),
        on_channel_expiry: OnExpiry::Close(1000),
        ..quick()
    })
    .unwrap();
    let http = Http::new(&sim);
    let (token, id, mut ws) = live(&sim, &http, &["v2.users.a.presence"]);
    assert_eq!(
        read_until(&mut ws, Duration::from_secs(3), |v| v.get("x").is_some()).unwrap_err(),
        Some(1000)
    );
    assert_eq!(
        http.put(&token, &id, &["v2.users.a.presence"], true).status,
        404
    );
}

#[test]
fn injected_http_faults_and_stats() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let r = Http::answer(
        http.agent
            .post(format!("{}/__sim/fault", sim.base_url()))
            .send("fail token 2 429 7"),
    );
    assert_eq!(r.status, 200);
    for _ in 0..2 {
        let a = http.token_cc(sim.client_id(), sim.client_secret());
        assert_eq!(a.status, 429);
        assert_eq!(a.headers["retry-after"], "7");
        assert!(a.body["error"].is_string());
    }
    assert_eq!(
        http.token_cc(sim.client_id(), sim.client_secret()).status,
        200
    );
    let token = http.access(&sim);
    sim.fault(&"fail channel 1 503".parse().unwrap());
    assert_eq!(http.create(&token).status, 503);
    assert_eq!(http.create(&token).status, 200);
    let bad = Http::answer(
        http.agent
            .post(format!("{}/__sim/fault", sim.base_url()))
            .send("explode"),
    );
    assert_eq!(bad.status, 400);
    let why = bad.body["message"].as_str().unwrap();
    assert!(why.contains("unknown fault"), "{why}");
    // Absurd counts and lines are refused at once, not queued or recursed over.
    let repeated = format!("drop{}", " one".repeat(100_000));
    for line in [
        "fail token 18446744073709551615 503",
        "fail token 1000001 503",
        "burst 18446744073709551615",
        "flood 99999999999",
        "foreign_uri 4294967296",
        "drop one one",
        repeated.as_str(),
    ] {
        let r = Http::answer(
            http.agent
                .post(format!("{}/__sim/fault", sim.base_url()))
                .send(line),
        );
        assert_eq!(r.status, 400, "{}", &line[..line.len().min(60)]);
    }
    // The most a fault takes is queued as a count, not as a million entries.
    sim.fault(&"fail subscriptions 1000000 503".parse().unwrap());
    assert!(
        why.contains("half_open"),
        "the valid faults are listed: {why}"
    );
    let mut help = http
        .agent
        .get(format!("{}/__sim/fault", sim.base_url()))
        .call()
        .unwrap();
    assert_eq!(help.status().as_u16(), 200);
    let text = help.body_mut().read_to_string().unwrap();
    assert!(
        text.contains("fail ENDPOINT COUNT STATUS [RETRY_AFTER]"),
        "{text}"
    );
    assert!(text.contains("burst N"), "{text}");
    let stats = Http::answer(
        http.agent
            .get(format!("{}/__sim/stats", sim.base_url()))
            .call(),
    );
    assert_eq!(
        stats.body["channels_created"], 1,
        "the injected 503 created nothing"
    );
    assert_eq!(sim.stats().count("token"), 4);
    assert_eq!(sim.stats().count("channels.create"), 2);
}

#[test]
fn malformed_frames_and_abrupt_drops() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let (_t, _id, mut ws) = live(&sim, &http, &["v2.users.a.presence"]);
    sim.fault(&"malformed not_json".parse().unwrap());
    let v = read_until(&mut ws, Duration::from_secs(2), |v| v.is_string()).unwrap();
    assert_eq!(v, "this is not json");
    sim.fault(&"malformed unknown_topic".parse().unwrap());
    read_until(
        &mut ws,
        Duration::from_secs(2),
        is_topic("v2.sim.nobody.subscribed"),
    )
    .unwrap();
    sim.fault(&Fault::Drop);
    assert_eq!(
        read_until(&mut ws, Duration::from_secs(2), |_| false).unwrap_err(),
        None,
        "no close frame"
    );
}

#[test]
fn scripted_timeline_fires_in_order() {
    let script = genesys_notify_sim::parse_script("300ms close 4003\n").unwrap();
    let sim = Sim::start(SimConfig { script, ..quick() }).unwrap();
    let http = Http::new(&sim);
    let (_t, _id, mut ws) = live(&sim, &http, &["v2.users.a.presence"]);
    assert_eq!(
        read_until(&mut ws, Duration::from_secs(3), |_| false).unwrap_err(),
        Some(4003)
    );
}

#[test]
fn tls_path_with_the_generated_certificate() {
    let sim = Sim::start(SimConfig {
        tls: true,
        ..quick()
    })
    .unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let pem = sim.cert_pem().unwrap();
    let cert = ureq::tls::Certificate::from_pem(pem.as_bytes()).unwrap();
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert.to_owned()]))
        .build();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .build()
        .into();
    let http = Http {
        agent,
        base: sim.base_url().to_owned(),
    };
    let token = http.access(&sim);
    let ch = http.create(&token);
    let uri = ch.body["connectUri"].as_str().unwrap();
    assert!(uri.starts_with("wss://"));

    // Without the root, the handshake fails cleanly.
    let plain: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    assert!(plain
        .get(format!("{}/__sim/stats", sim.base_url()))
        .call()
        .is_err());

    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_der(pem) {
        roots.add(c).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(sim.addr()).unwrap();
    let connector = tungstenite::Connector::Rustls(std::sync::Arc::new(config));
    let (mut ws, resp) =
        tungstenite::client_tls_with_config(uri, tcp, None, Some(connector)).unwrap();
    assert_eq!(resp.status().as_u16(), 101);
    ws.send(Message::text(r#"{"message":"ping"}"#)).unwrap();
    loop {
        if let Message::Text(t) = ws.read().unwrap() {
            if t.as_str().contains("pong") {
                break;
            }
        }
    }
}

fn rustls_pki_der(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(Result::unwrap)
        .collect()
}

/// A channel is bound to its creating token: once that token has expired, `HEAD` says the
/// channel is gone (404) as the socket upgrade does, even to a newer token of the same client.
#[test]
fn head_reports_a_channel_dead_once_its_creating_token_expired() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let old = http.access(&sim);
    let id = http.create(&old).body["id"].as_str().unwrap().to_owned();
    let head = |token: &str| {
        Http::answer(
            http.agent
                .head(format!(
                    "{}/api/v2/notifications/channels/{id}",
                    sim.base_url()
                ))
                .header("Authorization", format!("Bearer {token}"))
                .call(),
        )
        .status
    };
    assert_eq!(head(&old), 200);
    sim.fault(&Fault::ExpireTokens);
    let new = http.access(&sim);
    assert_eq!(head(&new), 404);
}

/// `latency` delays every answer and upgrade by at least that much.
#[test]
fn latency_delays_every_answer_and_upgrade() {
    let latency = Duration::from_millis(150);
    let sim = Sim::start(SimConfig { latency, ..quick() }).unwrap();
    let http = Http::new(&sim);
    let start = Instant::now();
    let token = http.access(&sim);
    assert!(start.elapsed() >= latency);
    let start = Instant::now();
    let ch = http.create(&token);
    assert_eq!(ch.status, 200);
    assert!(start.elapsed() >= latency);
    let start = Instant::now();
    let _ws = connect(ch.body["connectUri"].as_str().unwrap());
    assert!(start.elapsed() >= latency);
    assert_eq!(sim.stats().count("upgrade"), 1);
}

/// A page on another origin can call the API: preflights are answered and every answer
/// carries the CORS headers, for an allowed origin only; static files come with their type,
/// and nothing outside the directory is served.
#[test]
fn cors_for_allowed_origins_and_static_files_inside_the_directory_only() {
    let dir = std::env::temp_dir().join(format!("sim-static-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><p>test page</p>").unwrap();
    std::fs::write(dir.join("core.wasm"), [0u8, 97, 115, 109]).unwrap();
    let page = "http://127.0.0.1:5173";
    let sim = Sim::start(SimConfig {
        cors_origins: vec![page.to_owned()],
        static_dir: Some(dir.clone()),
        ..quick()
    })
    .unwrap();
    let http = Http::new(&sim);
    let preflight = |origin: &str| {
        Http::answer(
            http.agent
                .options(format!("{}/api/v2/notifications/channels", http.base))
                .header("Origin", origin)
                .header("Access-Control-Request-Method", "POST")
                .header("Access-Control-Request-Headers", "authorization")
                .call(),
        )
    };
    let ok = preflight(page);
    assert_eq!(ok.status, 204);
    assert_eq!(ok.headers["access-control-allow-origin"], page);
    assert!(ok.headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("Authorization"));
    assert!(ok.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("PUT"));
    let refused = preflight("http://elsewhere.test");
    assert_eq!(refused.status, 403);
    assert!(refused.headers.get("access-control-allow-origin").is_none());

    // A real answer (and an error) readable by the page, with Retry-After exposed.
    let token = http.access(&sim);
    let created = Http::answer(
        http.agent
            .post(format!("{}/api/v2/notifications/channels", http.base))
            .header("Authorization", format!("Bearer {token}"))
            .header("Origin", page)
            .send_empty(),
    );
    assert_eq!(created.status, 200);
    assert_eq!(created.headers["access-control-allow-origin"], page);
    assert!(created.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("Retry-After"));
    let other = Http::answer(
        http.agent
            .post(format!("{}/api/v2/notifications/channels", http.base))
            .header("Authorization", format!("Bearer {token}"))
            .header("Origin", "http://elsewhere.test")
            .send_empty(),
    );
    assert!(other.headers.get("access-control-allow-origin").is_none());

    let mut index = http.agent.get(format!("{}/", http.base)).call().unwrap();
    assert_eq!(index.status().as_u16(), 200);
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(index
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("test page"));
    let wasm = http
        .agent
        .get(format!("{}/core.wasm", http.base))
        .call()
        .unwrap();
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    for bad in ["/../Cargo.toml", "/%2e%2e/Cargo.toml", "/missing.js"] {
        let r = http
            .agent
            .get(format!("{}{bad}", http.base))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{bad}");
    }
    // Without a static directory the API's 404 stays as it was.
    let bare = Sim::start(quick()).unwrap();
    let r = Http::new(&bare)
        .agent
        .get(format!("{}/index.html", bare.base_url()))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stats_name_the_topics_some_open_socket_would_receive() {
    let sim = Sim::start(quick()).unwrap();
    let http = Http::new(&sim);
    let (token, id, mut ws) = live(&sim, &http, &["v2.users.a.presence", "v2.users.b.presence"]);
    let on = |sim: &Sim| {
        sim.stats()
            .topics_on_sockets
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(on(&sim), ["v2.users.a.presence", "v2.users.b.presence"]);
    assert_eq!(
        http.put(&token, &id, &["v2.users.b.presence"], true).status,
        200
    );
    assert_eq!(on(&sim), ["v2.users.b.presence"]);
    // A channel without a socket delivers nothing.
    let _ = ws.close(None);
    let end = Instant::now() + Duration::from_secs(5);
    while !on(&sim).is_empty() {
        assert!(Instant::now() < end, "the closed socket's topics are gone");
        let _ = ws.read();
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The simulated organisation changes by itself on a combined subscription: every change of
/// the parts arrives under the part's own name, with the service's body (no `seq`), and the
/// ledger, which knows a notification by its `metadata.CorrelationId`, accounts for each one.
#[test]
fn the_organisations_events_arrive_under_their_parts_and_are_accounted_for() {
    let mut cfg = quick();
    cfg.org = genesys_notify_sim::OrgConfig {
        users: 1,
        queues: 0,
        change_rate: 200.0,
    };
    let sim = Sim::start(cfg).unwrap();
    let http = Http::new(&sim);
    let combined = "v2.users.sim-user-1?presence&routingStatus";
    let (token, channel, mut ws) = live(&sim, &http, &[combined]);
    let listed = http.get(
        &token,
        &format!("/api/v2/notifications/channels/{channel}/subscriptions"),
    );
    assert_eq!(
        listed.body["entities"][0]["id"], combined,
        "the subscription keeps the combined id"
    );
    let mut ledger = genesys_notify_sim::Ledger::new();
    ledger.live(std::time::SystemTime::now());
    let parts = [
        "v2.users.sim-user-1.presence",
        "v2.users.sim-user-1.routingStatus",
    ];
    let mut seen = 0;
    let end = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < end {
        if let Ok(Message::Text(t)) = ws.read() {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            let topic = v["topicName"].as_str().unwrap_or("");
            if topic == "channel.metadata" {
                continue;
            }
            assert!(parts.contains(&topic), "a part's own name: {topic}");
            assert!(
                v["eventBody"].get("seq").is_none(),
                "the service's body: {v}"
            );
            ledger.notification(t.as_str());
            seen += 1;
        }
    }
    // What was published until now must all arrive: read on a little longer, as a client
    // that settles does.
    let published = sim.stats().published.clone();
    let end = Instant::now() + Duration::from_millis(500);
    while Instant::now() < end {
        if let Ok(Message::Text(t)) = ws.read() {
            ledger.notification(t.as_str());
        }
    }
    let tally = ledger.settle(&sim, &parts, &published, Duration::from_millis(300));
    assert!(seen > 50, "the organisation changed: {seen}");
    assert_eq!(tally.lost_outside_gaps, 0, "{tally:?}");
    assert_eq!(tally.duplicates, 0, "{tally:?}");
    assert_eq!(tally.delivered, tally.published, "{tally:?}");
    assert!(tally.published > 50, "{tally:?}");
}
