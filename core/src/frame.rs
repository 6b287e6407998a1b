//! Classifying the text frames the notification socket carries: notifications (`topicName`
//! plus `eventBody`), heartbeats and pongs on `channel.metadata`, `v2.system.*` control
//! messages such as `socket_closing`, and replies to subscribe requests sent on the socket.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::FrameProblem;

/// The text the client sends as a health check; the server answers with a pong.
pub const PING: &str = r#"{"message":"ping"}"#;

/// The heartbeat the service sends about every 30 seconds, as it writes it.
pub const HEARTBEAT: &str =
    r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;

/// The service's answer to [`PING`], as it writes it.
pub const PONG: &str = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;

/// What a text frame from the notification socket is.
///
/// Borrowed from the frame text: classifying a heartbeat or a pong allocates nothing, and a
/// notification's body is never parsed into a `serde_json::Value`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame<'a> {
    /// `channel.metadata` with `WebSocket Heartbeat`: proof of life, never delivered.
    Heartbeat,
    /// `channel.metadata` with `pong`: the answer to [`PING`].
    Pong,
    /// Any other `channel.metadata` message: proof of life, never delivered.
    Metadata,
    /// `v2.system.socket_closing`: the server will close this socket for maintenance within
    /// about a minute.
    SocketClosing,
    /// Another `v2.system.*` message, with its `systemTopicType` when present
    /// (`no_longer_subscribed`, `subscription_changed`, `token_revoked`).
    System {
        /// The topic name.
        topic: Cow<'a, str>,
        /// `eventBody.systemTopicType`, if present.
        kind: Option<Cow<'a, str>>,
        /// `eventBody.reason`, if present (`another_channel_subscribed`,
        /// `user_tokens_revoked`).
        reason: Option<Cow<'a, str>>,
    },
    /// A reply to a subscribe or unsubscribe message sent over the socket (`result` is a
    /// string such as `"200"`).
    SubscribeReply {
        /// True for `result: "200"`.
        ok: bool,
    },
    /// A notification for an application topic.
    Notification {
        /// `topicName`.
        topic: Cow<'a, str>,
        /// The raw `eventBody` JSON, unparsed (empty when absent).
        body: &'a str,
        /// The raw `metadata` JSON, unparsed (empty when absent).
        metadata: &'a str,
    },
    /// Not something the session understands.
    Malformed(FrameProblem),
}

/// A string borrowed from the frame unless it holds escapes. serde borrows a `Cow` only when
/// it is the field's own type, not inside an `Option`, hence the newtype.
#[derive(Deserialize)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "topicName", borrow, default)]
    topic: Option<Str<'a>>,
    #[serde(rename = "eventBody", borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct MetaBody<'a> {
    #[serde(borrow, default)]
    message: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct SystemBody<'a> {
    #[serde(rename = "systemTopicType", borrow, default)]
    kind: Option<Str<'a>>,
    #[serde(borrow, default)]
    reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct Meta<'a> {
    #[serde(rename = "CorrelationId", borrow, default)]
    correlation_id: Option<Str<'a>>,
}

/// Classifies one text frame.
///
/// ```
/// use genesys_notify_core::{classify, Frame};
/// let hb = r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
/// assert_eq!(classify(hb), Frame::Heartbeat);
/// let n = r#"{"topicName":"v2.users.42.presence","version":"2","eventBody":{"id":"42"}}"#;
/// assert!(matches!(classify(n), Frame::Notification { topic, .. } if topic == "v2.users.42.presence"));
/// ```
pub fn classify(text: &str) -> Frame<'_> {
    let wire: Wire<'_> = match serde_json::from_str(text) {
        Ok(w) => w,
        Err(e) if e.is_data() => return Frame::Malformed(FrameProblem::UnknownShape),
        Err(_) => return Frame::Malformed(FrameProblem::NotJson),
    };
    let Some(Str(topic)) = wire.topic else {
        return match wire.result {
            Some(Str(r)) => Frame::SubscribeReply { ok: r == "200" },
            None => Frame::Malformed(FrameProblem::UnknownShape),
        };
    };
    if topic.is_empty() {
        return Frame::Malformed(FrameProblem::UnknownShape);
    }
    if topic == "channel.metadata" {
        let message = wire
            .body
            .and_then(|b| serde_json::from_str::<MetaBody<'_>>(b.get()).ok())
            .and_then(|m| m.message)
            .map(|Str(m)| m);
        return match message.as_deref() {
            Some("WebSocket Heartbeat") => Frame::Heartbeat,
            Some("pong") => Frame::Pong,
            _ => Frame::Metadata,
        };
    }
    if topic
        .get(..10)
        .is_some_and(|p| p.eq_ignore_ascii_case("v2.system."))
    {
        if topic.eq_ignore_ascii_case("v2.system.socket_closing") {
            return Frame::SocketClosing;
        }
        let (kind, reason) = wire
            .body
            .and_then(|b| serde_json::from_str::<SystemBody<'_>>(b.get()).ok())
            .map_or((None, None), |s| {
                (s.kind.map(|Str(k)| k), s.reason.map(|Str(r)| r))
            });
        return Frame::System {
            topic,
            kind,
            reason,
        };
    }
    Frame::Notification {
        topic,
        body: wire.body.map_or("", RawValue::get),
        metadata: wire.metadata.map_or("", RawValue::get),
    }
}

/// `metadata.CorrelationId` from a notification's raw metadata, if present.
pub(crate) fn correlation_id(metadata: &str) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Meta<'_>>(metadata)
        .ok()
        .and_then(|m| m.correlation_id)
        .map(|Str(c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_kind_of_frame() {
        let cases: &[(&str, Frame<'_>)] = &[
            (
                r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#,
                Frame::Heartbeat,
            ),
            (
                r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#,
                Frame::Pong,
            ),
            (
                r#"{"topicName":"channel.metadata","eventBody":{}}"#,
                Frame::Metadata,
            ),
            (
                r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"bye"}}"#,
                Frame::SocketClosing,
            ),
            (
                r#"{"topicName":"v2.system.token_revoked","eventBody":{"systemTopicType":"token_revoked","reason":"user_tokens_revoked"}}"#,
                Frame::System {
                    topic: "v2.system.token_revoked".into(),
                    kind: Some("token_revoked".into()),
                    reason: Some("user_tokens_revoked".into()),
                },
            ),
            (
                r#"{"result":"200","status":"subscribed"}"#,
                Frame::SubscribeReply { ok: true },
            ),
            (
                r#"{"result":"404","message":"gone"}"#,
                Frame::SubscribeReply { ok: false },
            ),
            (
                r#"{"topicName":"v2.users.1.presence""#,
                Frame::Malformed(FrameProblem::NotJson),
            ),
            ("not json", Frame::Malformed(FrameProblem::NotJson)),
            (
                r#"{"hello":1}"#,
                Frame::Malformed(FrameProblem::UnknownShape),
            ),
            (r#"[1,2]"#, Frame::Malformed(FrameProblem::UnknownShape)),
            (
                r#"{"topicName":7}"#,
                Frame::Malformed(FrameProblem::UnknownShape),
            ),
            (
                r#"{"topicName":""}"#,
                Frame::Malformed(FrameProblem::UnknownShape),
            ),
            ("", Frame::Malformed(FrameProblem::NotJson)),
        ];
        for (text, want) in cases {
            assert_eq!(&classify(text), want, "{text}");
        }
    }

    #[test]
    fn notification_keeps_body_and_metadata_raw() {
        let text = r#"{"topicName":"v2.users.\u0041.presence","version":"2","eventBody":{"a":[1,2]},"metadata":{"CorrelationId":"c-1"}}"#;
        match classify(text) {
            Frame::Notification {
                topic,
                body,
                metadata,
            } => {
                assert_eq!(topic, "v2.users.A.presence");
                assert_eq!(body, r#"{"a":[1,2]}"#);
                assert_eq!(correlation_id(metadata).as_deref(), Some("c-1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
