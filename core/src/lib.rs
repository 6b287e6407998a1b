//! The sans-IO heart of genesys-notify: a [`Session`] state machine that keeps one Genesys
//! Cloud notification channel alive for as long as the application wants it — across
//! access-token expiry, the channel's 24-hour life, maintenance closes, half-open sockets,
//! rate limits and revoked logins — and that reports every stretch it could not cover as an
//! [`Event::Gap`] instead of losing events silently.
//!
//! The session does no IO, reads no clock and draws no OS randomness. It is told what happened
//! ([`Input`]s, commands, the current [`Instant`]) and answers with the IO it needs
//! ([`Action`]s), what the application should know ([`Event`]s) and when to wake it
//! ([`Session::poll_timeout`]). The same inputs and seed always give the same outputs, so the
//! recovery logic can be tested in simulated time, fuzzed, and embedded in any runtime.
//!
//! The repository's `docs/` folder explains the architecture
//! (<https://github.com/genesys-notify/genesys-notify/blob/main/docs/architecture.md>), the
//! behaviour rules (`docs/behaviour.md`) and what the service does and leaves unknown
//! (`docs/protocol.md`).
//!
//! # The drive loop
//!
//! Every adapter runs this loop, line for line:
//!
//! 1. Feed **one** input ([`Session::handle_input`]), timer ([`Session::handle_timeout`]) or
//!    command ([`Session::subscribe`], [`Session::login`], …), with the current time.
//! 2. Drain [`Session::poll_action`] until `None`, starting each IO.
//! 3. Drain [`Session::poll_event`] until `None`, handing each to the application.
//! 4. Read [`Session::poll_timeout`] and wait until that instant or the next input, whichever
//!    comes first.
//!
//! A blocking sketch (one channel of inputs fed by reader threads):
//!
//! ```no_run
//! # use genesys_notify_core::*;
//! # use std::time::Duration;
//! # fn clock() -> Instant { Instant::ZERO }
//! # fn perform(_: Action) {}
//! # fn deliver(_: Event) {}
//! # let (tx, rx) = std::sync::mpsc::channel::<Input>();
//! let mut session = Session::new(Config::default(), clock(), 42)?;
//! session.subscribe(clock(), [Topic::new("v2.users.6c1b4f1e.presence")?])?;
//! loop {
//!     while let Some(action) = session.poll_action() { perform(action) }
//!     while let Some(event) = session.poll_event() { deliver(event) }
//!     let wait = session
//!         .poll_timeout()
//!         .map_or(Duration::from_secs(3600), |(at, _why)| at.saturating_duration_since(clock()));
//!     match rx.recv_timeout(wait) {
//!         Ok(input) => session.handle_input(clock(), input),
//!         Err(_) => session.handle_timeout(clock()),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An async sketch (tokio):
//!
//! ```ignore
//! loop {
//!     drain(&mut session).await; // poll_action → spawn IO; poll_event → send to the app
//!     let deadline = session.poll_timeout().map(|(at, _)| to_tokio_instant(at));
//!     tokio::select! {
//!         Some(input) = inputs.recv() => session.handle_input(now(), input),
//!         Some(cmd) = commands.recv() => apply(&mut session, cmd),
//!         _ = sleep_until_opt(deadline) => session.handle_timeout(now()),
//!     }
//! }
//! ```
//!
//! # What an adapter MUST do
//!
//! - Pass a **monotonic** `now` on every call, built with [`Instant::from_millis`]. If the
//!   machine was suspended and the clock did not count it, feed [`Input::Resumed`].
//! - Answer **every** action that carries an id with exactly one result naming that id
//!   (`RequestToken` → `TokenIssued`/`TokenFailed`, `CreateChannel` → `ChannelCreated`/
//!   `ChannelFailed`, `PutSubscriptions` → `Subscribed`/`SubscribeFailed`, `Connect` →
//!   `Opened`/`ConnectFailed`, then `Frame`s and one `Closed`). Late answers are fine: the
//!   session ignores ids it no longer waits for.
//! - Report HTTP failures as [`RequestError::Http`] with the status, the `Retry-After` (seconds
//!   or HTTP date, converted to a duration) and the body's error code; a refused socket upgrade
//!   as `ConnectFailed` with its status.
//! - Compute `ChannelCreated::expires_in` from the channel's `expires` against the response's
//!   `Date` header when present, so clock skew does not matter.
//! - Send the bearer token only to the API host, client secrets and refresh tokens only to the
//!   login host, and nothing but the `connectUri` to the socket. Never log a [`Secret`].
//! - Report an answer that retrying cannot fix as [`RequestError::Refused`] (a `connectUri`
//!   that is not the region's streaming host, any 3xx), naming a host at most. Never follow a
//!   redirect. Twice in a row stops the session: [`Event::Fatal`], then status `Failed`.
//! - Stop once [`Status::is_terminal`] (`Closed` or `Failed`): no action follows.
//! - Bound every queue. Inputs from sockets and HTTP wait when the session's queue is full;
//!   events the application has not read are bounded, the oldest notifications dropped and
//!   reported as a [`GapReason::Overflow`] gap. A close request is served ahead of any
//!   backlog of inputs.
//! - Release a socket's resources (its entry, its thread or task) when it reports `Closed`
//!   or `ConnectFailed`: the session sends no `Close` for a socket that ended by itself.
//! - Hold no policy of its own: every retry, delay and decision is the session's.
//! - Feed each socket's frames in the order they arrived. A handover closes the old socket
//!   [`Config::handover_linger`] after it answers a ping sent once the new channel was
//!   subscribed: that pong shows the old socket delivered what the server queued on it
//!   before, provided the server writes it behind those notifications; the linger covers a
//!   server that does not (the simulator can play both, see its `notification_lag`).
//!
//! The adapter SHOULD log the [`Deadline`] reason each time it wakes.
//!
//! # Driving it by hand
//!
//! ```
//! use std::time::Duration;
//! use genesys_notify_core::*;
//!
//! let t0 = Instant::ZERO;
//! let mut s = Session::new(Config::default(), t0, 7)?;
//! s.subscribe(t0, [Topic::new("v2.users.42.presence")?])?;
//!
//! let Some(Action::RequestToken { req }) = s.poll_action() else { panic!() };
//! s.handle_input(t0, Input::TokenIssued {
//!     req, token: Secret::new("access-token"), expires_in: Duration::from_secs(86_400),
//!     rotated_refresh_token: false,
//! });
//! let Some(Action::CreateChannel { req, .. }) = s.poll_action() else { panic!() };
//! s.handle_input(t0, Input::ChannelCreated {
//!     req, id: ChannelId::new("streaming-0-abc"),
//!     connect_uri: Secret::new("wss://streaming.mypurecloud.com/channels/streaming-0-abc"),
//!     expires_in: Duration::from_secs(86_400),
//! });
//! let Some(Action::Connect { conn, .. }) = s.poll_action() else { panic!() };
//! // The subscription goes out beside the upgrade; they may be answered in either order.
//! let Some(Action::PutSubscriptions { req, topics, .. }) = s.poll_action() else { panic!() };
//! s.handle_input(t0, Input::Opened { conn });
//! let results = topics.iter().map(|t| TopicResult::permitted(t.as_str())).collect();
//! s.handle_input(t0, Input::Subscribed { req, results });
//! assert_eq!(s.status(), Status::Live);
//! // A first ping as the socket goes live: its pong tells the session the round trip.
//! assert!(matches!(s.poll_action(), Some(Action::Send { text, .. }) if text == PING));
//! s.handle_input(t0, Input::Frame { conn, text: PONG.into() });
//!
//! let frame = r#"{"topicName":"v2.users.42.presence","eventBody":{"presenceDefinition":{}}}"#;
//! s.handle_input(t0, Input::Frame { conn, text: frame.into() });
//! while let Some(e) = s.poll_event() {
//!     if let Event::Notification { topic, .. } = e { assert_eq!(topic, "v2.users.42.presence") }
//! }
//! // A socket that has shown no traffic yet is pinged after `idle_timeout` (15 s) of
//! // silence; one that carried events a second is pinged after about a second.
//! let (at, why) = s.poll_timeout().unwrap();
//! assert_eq!((at, why), (Instant::from_secs(15), Deadline::Idle));
//! s.handle_timeout(at);
//! assert!(matches!(s.poll_action(), Some(Action::Send { text, .. }) if text == PING));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![warn(clippy::wildcard_enum_match_arm)]
#![cfg_attr(test, allow(clippy::wildcard_enum_match_arm))]

mod config;
mod error;
mod frame;
mod io;
mod rng;
mod session;
mod sharded;
mod sorted;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod types;

pub use config::{CloseCodes, Config};
pub use error::{
    AuthError, Error, FatalError, FrameProblem, LocalError, ProtocolError, RequestError,
    ServerError, UsageError,
};
pub use frame::{classify, Frame, HEARTBEAT, PING, PONG};
pub use io::{Action, Event, GapReason, Input, Status, TopicResult};
pub use session::{
    Deadline, Footprint, CHANNEL_REQUESTS_PER_MINUTE, MAX_DEDUP_KEYS, MAX_RETRY_AFTER,
    URGENT_TOKEN_REQUESTS_PER_MINUTE,
};
pub use sharded::Session;
pub use time::Instant;
pub use types::{ChannelId, ConnId, ReqId, Secret, Topic, MAX_TOPICS, MAX_TOPIC_LEN};
