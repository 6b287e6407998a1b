//! Heartbeats and pongs are the bulk of the socket's traffic: handling them must not touch
//! the heap. Counted with a counting global allocator.

#![allow(clippy::unwrap_used, clippy::wildcard_enum_match_arm)]

use genesys_notify_core::testing::{live, FakeServer};
use genesys_notify_core::{classify, Config, Event, Frame, Input, Instant, HEARTBEAT, PONG};

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
    let (mut s, server) = live(
        Config::default(),
        &["v2.users.u1.presence"],
        FakeServer::new(),
    );
    let conn = server.newest().unwrap();
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
