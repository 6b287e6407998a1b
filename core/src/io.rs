//! What goes into a session and what comes out.

use std::fmt;
use std::time::Duration;

use crate::error::{AuthError, Error, FatalError, RequestError};
use crate::time::Instant;
use crate::types::{ChannelId, ConnId, ReqId, Secret, Topic};

/// Something that happened: the result of an [`Action`] or a socket event, fed back through
/// [`Session::handle_input`](crate::Session::handle_input).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// The token source produced an access token for `RequestToken { req }`.
    TokenIssued {
        /// The request this answers.
        req: ReqId,
        /// The access token.
        token: Secret,
        /// `expires_in` of the token response.
        expires_in: Duration,
        /// True when the answer carried a new refresh token, already persisted by the adapter.
        rotated_refresh_token: bool,
    },
    /// The token request failed.
    TokenFailed {
        /// The request this answers.
        req: ReqId,
        /// How it failed.
        error: RequestError,
    },
    /// `POST /api/v2/notifications/channels` answered.
    ChannelCreated {
        /// The request this answers.
        req: ReqId,
        /// The channel's id.
        id: ChannelId,
        /// The channel's `connectUri`, the socket's only credential.
        connect_uri: Secret,
        /// Time until the channel's `expires`, computed against the response's `Date` header
        /// when present so that clock skew does not matter.
        expires_in: Duration,
    },
    /// Channel creation failed.
    ChannelFailed {
        /// The request this answers.
        req: ReqId,
        /// How it failed.
        error: RequestError,
    },
    /// `PUT .../subscriptions?ignoreErrors=true` answered 200 with per-topic results.
    Subscribed {
        /// The request this answers.
        req: ReqId,
        /// The per-topic results (`entities`).
        results: Vec<TopicResult>,
    },
    /// The subscription request failed as a whole.
    SubscribeFailed {
        /// The request this answers.
        req: ReqId,
        /// How it failed.
        error: RequestError,
    },
    /// The socket for `Connect { conn }` is open.
    Opened {
        /// The socket.
        conn: ConnId,
    },
    /// The socket for `Connect { conn }` could not be opened. A refused upgrade carries its
    /// HTTP status.
    ConnectFailed {
        /// The socket.
        conn: ConnId,
        /// How it failed.
        error: RequestError,
    },
    /// A text frame arrived.
    Frame {
        /// The socket.
        conn: ConnId,
        /// The frame's text.
        text: String,
    },
    /// The socket closed: a close frame (`code` set), or an error or EOF (`code` is `None`).
    Closed {
        /// The socket.
        conn: ConnId,
        /// The close code, if a close frame arrived.
        code: Option<u16>,
        /// The close reason or the error text.
        reason: String,
    },
    /// The machine was suspended for `slept` and the adapter's monotonic clock did not count
    /// it. Tokens and channels age by that much.
    Resumed {
        /// How long the machine slept.
        slept: Duration,
    },
}

/// One entry of a subscription answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    /// The topic name as the server wrote it.
    pub topic: String,
    /// `None` when permitted; the rejection reason otherwise.
    pub rejected: Option<String>,
}

impl TopicResult {
    /// A permitted topic.
    pub fn permitted(topic: impl Into<String>) -> Self {
        TopicResult {
            topic: topic.into(),
            rejected: None,
        }
    }
    /// A rejected topic.
    pub fn rejected(topic: impl Into<String>, reason: impl Into<String>) -> Self {
        TopicResult {
            topic: topic.into(),
            rejected: Some(reason.into()),
        }
    }
}

/// IO the adapter owes the session. Every action carries a fresh id; the adapter MUST feed
/// the outcome back as an [`Input`] naming that id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Get an access token from the token source; answer with `TokenIssued` or `TokenFailed`.
    RequestToken {
        /// Names this request.
        req: ReqId,
    },
    /// `POST /api/v2/notifications/channels` with `token`; answer with `ChannelCreated` or
    /// `ChannelFailed`.
    CreateChannel {
        /// Names this request.
        req: ReqId,
        /// The bearer token.
        token: Secret,
    },
    /// `PUT /api/v2/notifications/channels/{channel}/subscriptions?ignoreErrors=true` with the
    /// whole topic set; answer with `Subscribed` or `SubscribeFailed`.
    PutSubscriptions {
        /// Names this request.
        req: ReqId,
        /// The channel.
        channel: ChannelId,
        /// The whole desired set, in stable order.
        topics: Vec<Topic>,
        /// The bearer token.
        token: Secret,
    },
    /// Open a WebSocket to `url` (the channel's `connectUri`); answer with `Opened` or
    /// `ConnectFailed`, then `Frame`s and one `Closed`.
    Connect {
        /// Names this socket.
        conn: ConnId,
        /// The `connectUri`.
        url: Secret,
    },
    /// Send a text frame on the socket.
    Send {
        /// The socket.
        conn: ConnId,
        /// The text.
        text: String,
    },
    /// Close the socket (or abandon the connection attempt) with `code`. No `Closed` input is
    /// needed afterwards.
    Close {
        /// The socket.
        conn: ConnId,
        /// The close code.
        code: u16,
    },
}

/// Where the session stands, as the application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Getting the first token, channel, socket or subscription.
    Connecting,
    /// A socket is open and subscribed: notifications flow.
    Live,
    /// Coverage was lost (or is unproven after a suspend) and the session is recovering.
    Recovering,
    /// Only `Session::login` can go on.
    LoginRequired,
    /// `Session::close` was called.
    Closed,
    /// The session stopped by itself on an answer that retrying cannot fix (see
    /// [`Event::Fatal`]); like `Closed`, nothing more happens.
    Failed,
}

impl Status {
    /// True for `Closed` and `Failed`: the session does nothing more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Closed | Status::Failed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Connecting => "connecting",
            Status::Live => "live",
            Status::Recovering => "recovering",
            Status::LoginRequired => "login_required",
            Status::Closed => "closed",
            Status::Failed => "failed",
        })
    }
}

/// Why some topics were not covered for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum GapReason {
    /// The socket closed or failed.
    SocketLost,
    /// The socket went silent and did not answer a ping.
    SocketDead,
    /// The channel (or the token that created it) expired before a new one was live.
    ChannelExpired,
    /// The server closed the socket for maintenance before a new one was live.
    Maintenance,
    /// The server dropped this channel's subscriptions.
    SubscriptionDropped,
    /// The server rejected a topic it had accepted before.
    Rejected,
    /// The session needed a login.
    LoginRequired,
    /// The machine slept and the socket did not survive.
    Suspended,
    /// The application did not read events fast enough and an adapter dropped some.
    Overflow,
}

impl fmt::Display for GapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GapReason::SocketLost => "socket_lost",
            GapReason::SocketDead => "socket_dead",
            GapReason::ChannelExpired => "channel_expired",
            GapReason::Maintenance => "maintenance",
            GapReason::SubscriptionDropped => "subscription_dropped",
            GapReason::Rejected => "rejected",
            GapReason::LoginRequired => "login_required",
            GapReason::Suspended => "suspended",
            GapReason::Overflow => "overflow",
        })
    }
}

/// What the application is told.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A notification, in arrival order, exactly as received.
    Notification {
        /// `topicName`.
        topic: String,
        /// The whole frame text; decode `eventBody` as the topic requires.
        raw: String,
    },
    /// The status changed.
    Status(Status),
    /// `topics` were not covered by a live socket from `from` to `to`: notifications in that
    /// window may be missing, so re-read their state over REST.
    Gap {
        /// The topics.
        topics: Vec<Topic>,
        /// Start of the uncovered stretch.
        from: Instant,
        /// End of it (coverage is back).
        to: Instant,
        /// Why.
        reason: GapReason,
    },
    /// The server refused one topic; the others keep working.
    TopicRejected {
        /// The topic as the server wrote it.
        topic: String,
        /// The server's reason.
        reason: String,
    },
    /// The token source rotated the refresh token (already persisted by the adapter).
    TokenRotated,
    /// Only a new login can continue: call `Session::login`. Nothing is covered until then;
    /// the `Gap` reported once coverage is back starts at `since`.
    LoginRequired {
        /// Why.
        reason: AuthError,
        /// Since when subscribed topics have not been covered (`None`: none was covered).
        since: Option<Instant>,
    },
    /// The token cannot be renewed without the user (the token source said so) and ends in
    /// `expires_in`: a `Session::login` before then keeps every topic covered (the session
    /// moves to the new token make-before-break); without one, `LoginRequired` follows when
    /// it ends. Told once per token.
    LoginSoon {
        /// Why it cannot be renewed.
        reason: AuthError,
        /// How long the current token still lives.
        expires_in: Duration,
    },
    /// Something went wrong and the session carried on.
    Warning(Error),
    /// The session stopped for good: fix the configuration it names and start a new one.
    /// Its sockets are closed; status `Failed` follows.
    Fatal(FatalError),
}
