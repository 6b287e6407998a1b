//! Heartbeats and pongs are the bulk of the socket's traffic: handling them must not touch
//! the heap. Counted with a counting global allocator.

#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

use genesys_notify_core::{
    classify, ChannelId, Config, Event, Frame, Input, Instant, Secret, Session, Status, Topic,
    TopicResult, HEARTBEAT, PONG,
};
use std::time::Duration;

fn live_session() -> (Session, genesys_notify_core::ConnId) {
    let mut s = Session::new(Config::default(), Instant::ZERO, 1).unwrap();
    s.subscribe(Instant::ZERO, [Topic::new("v2.users.u1.presence").unwrap()])
        .unwrap();
    let mut conn = None;
    for _ in 0..10 {
        while let Some(a) = s.poll_action() {
            let input = match a {
                genesys_notify_core::Action::RequestToken { req } => Input::TokenIssued {
                    req,
                    token: Secret::new("t"),
                    expires_in: Duration::from_secs(3600),
                    rotated_refresh_token: false,
                },
                genesys_notify_core::Action::CreateChannel { req, .. } => Input::ChannelCreated {
                    req,
                    id: ChannelId::new("ch"),
                    connect_uri: Secret::new("wss://s/ch"),
                    expires_in: Duration::from_secs(86_400),
                },
                genesys_notify_core::Action::Connect { conn: c, .. } => {
                    conn = Some(c);
                    Input::Opened { conn: c }
                }
                genesys_notify_core::Action::PutSubscriptions { req, topics, .. } => {
                    Input::Subscribed {
                        req,
                        results: topics
                            .iter()
                            .map(|t| TopicResult::permitted(t.as_str()))
                            .collect(),
                    }
                }
                other => panic!("unexpected {other:?}"),
            };
            s.handle_input(Instant::ZERO, input);
        }
    }
    while s.poll_event().is_some() {}
    assert_eq!(s.status(), Status::Live);
    (s, conn.unwrap())
}

#[test]
fn classifying_heartbeats_and_pongs_allocates_nothing() {
    let info = allocation_counter::measure(|| {
        assert_eq!(classify(HEARTBEAT), Frame::Heartbeat);
        assert_eq!(classify(PONG), Frame::Pong);
    });
    assert_eq!(info.count_total, 0, "{info:?}");
}

#[test]
fn session_handles_heartbeats_and_pongs_without_allocating() {
    let (mut s, conn) = live_session();
    // The adapter owns the frame text; building it is the adapter's allocation, not ours.
    let frames: Vec<String> = (0..100)
        .map(|i| if i % 2 == 0 { HEARTBEAT } else { PONG }.to_owned())
        .collect();
    let mut t = 1_000;
    let info = allocation_counter::measure(|| {
        for text in frames {
            t += 1_000;
            s.handle_input(Instant::from_millis(t), Input::Frame { conn, text });
            assert!(s.poll_action().is_none());
            assert!(s.poll_event().is_none());
            let _ = s.poll_timeout();
        }
    });
    assert_eq!(info.count_total, 0, "{info:?}");
    // A notification, by contrast, becomes an owned event.
    let n = r#"{"topicName":"v2.users.u1.presence","eventBody":{}}"#.to_owned();
    s.handle_input(Instant::from_millis(t), Input::Frame { conn, text: n });
    assert!(matches!(s.poll_event(), Some(Event::Notification { .. })));
}
