//! Errors, sorted by who is to blame, and the failures adapters report back.

use std::fmt;
use std::time::Duration;

use thiserror::Error as ThisError;

/// Everything that can go wrong, sorted by blame.
///
/// The session surfaces these in [`Event::Warning`](crate::Event::Warning) (it carried on) and,
/// for [`AuthError`], in [`Event::LoginRequired`](crate::Event::LoginRequired) (it stopped).
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum Error {
    /// Credentials are missing, rejected or revoked: only a new login helps.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The service is unavailable or limiting us; the session retries by itself.
    #[error(transparent)]
    Server(#[from] ServerError),
    /// The server sent something the session could not use; it was dropped and counted.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The application or adapter used the session wrongly.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The session stopped: the server's answers can never work, whatever it retries.
    #[error(transparent)]
    Fatal(#[from] FatalError),
    /// A failure on this side that an adapter reports; the session carried on.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// A failure on the application's side of the session, reported by an adapter.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum LocalError {
    /// The rotated refresh token could not be saved: it lives only in this process, and the
    /// next start needs a new login unless it is saved some other way.
    #[error(
        "the rotated refresh token could not be saved ({detail}): it lives only in this process; fix the storage, or the next start needs a new login (the same failure is not repeated until saving works again)"
    )]
    PersistFailed {
        /// What the persistence callback said.
        detail: String,
    },
    /// The application did not read events fast enough: this many warnings were dropped
    /// (notifications dropped the same way come as an overflow gap).
    #[error("{count} warnings dropped: the application did not read events fast enough")]
    WarningsDropped {
        /// How many.
        count: u64,
    },
    /// The session asked for something this adapter cannot do; it was ignored.
    #[error("this adapter cannot perform {what}; ignored")]
    Unsupported {
        /// What was asked.
        what: String,
    },
}

/// Why the session stopped for good ([`Status::Failed`](crate::Status::Failed)): an answer that
/// retrying cannot fix, almost always a misconfigured API base or region. Fix the configuration
/// and start a new session. The text never holds a secret or a channel id.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum FatalError {
    /// The same kind of request was refused twice in a row for a reason retrying cannot fix.
    #[error("{what} refused twice: {detail}; check the region or API base URL, then start again")]
    Refused {
        /// Which request: `token request`, `channel creation`, `subscription`.
        what: &'static str,
        /// What the adapter saw (a host name at most).
        detail: String,
    },
    /// With `combined_topic_counts_as_one`, the service refused a channel's topics: it counts
    /// every part of a combined topic toward a channel's limit.
    #[error("the service refused a channel's {parts} topics: it counts every part of a combined topic toward the 1000 a channel carries; set combined_topic_counts_as_one to false (the default) and start again")]
    CombinedTopicsCountParts {
        /// The parts the channel would carry.
        parts: usize,
    },
}

impl Error {
    /// True when nothing but a new login (`Session::login`) can recover.
    pub fn requires_login(&self) -> bool {
        matches!(self, Error::Auth(_))
    }
}

/// Why the session needs a new login. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum AuthError {
    /// The token endpoint refused the grant (for example `invalid_grant`: the refresh token was
    /// revoked or expired).
    #[error("the token endpoint rejected the grant ({code}): sign in again")]
    GrantRejected {
        /// The OAuth error code or HTTP status.
        code: String,
    },
    /// The token endpoint refused the client (`invalid_client`, `unauthorized_client`).
    #[error(
        "the token endpoint rejected the OAuth client ({code}): check the client id and secret"
    )]
    ClientRejected {
        /// The OAuth error code or HTTP status.
        code: String,
    },
    /// The API answered 401 to a token that had just been issued: refreshing again would loop.
    #[error("the API rejected a freshly issued token (HTTP {status}): sign in again or check the OAuth client's roles")]
    TokenRejected {
        /// The HTTP status (401).
        status: u16,
    },
    /// The API answered 403: the token lacks a permission or scope.
    #[error("the API refused the token (HTTP 403): grant the OAuth client the notifications permission/scope, then sign in again")]
    InsufficientScope,
    /// The socket was closed with the same auth-class code three times right after fresh tokens.
    #[error("the notification socket closed with auth-class code {code} three times after fresh tokens: sign in again")]
    RepeatedAuthClose {
        /// The close code.
        code: u16,
    },
    /// `max_refresh_attempts` refreshes in a row failed.
    #[error("token refresh failed {attempts} times in a row ({last}): sign in again when the service is reachable")]
    RefreshGaveUp {
        /// How many attempts failed.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The token source cannot produce a new token by itself (for example a static access
    /// token that expired).
    #[error("the access token was refused or has expired, and the token source cannot get another ({detail}): provide a new token")]
    CannotRefresh {
        /// What the token source said.
        detail: String,
    },
    /// The token still works, but the token source cannot renew it by itself (in
    /// [`Event::LoginSoon`](crate::Event::LoginSoon)).
    #[error("the token source cannot renew the access token by itself ({detail}): log in again before it ends to keep every topic covered")]
    WillNotRenew {
        /// What the token source said.
        detail: String,
    },
}

/// The service is unavailable or limiting us. The session backs off and retries.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum ServerError {
    /// The server closed an open notification socket (a close frame, or an error or EOF the
    /// adapter saw); the session recovers.
    #[error("the notification socket was closed ({})", close_note(*code, reason))]
    SocketClosed {
        /// The close code, if a close frame arrived.
        code: Option<u16>,
        /// The close reason or the adapter's error text (at most 200 characters).
        reason: String,
    },
    /// A `Retry-After` longer than the session waits; it waits the cap instead.
    #[error("{what}: the server asked to wait {asked_secs}s (Retry-After); waiting {capped_secs}s instead")]
    RetryAfterCapped {
        /// Which request.
        what: &'static str,
        /// The server's value, in seconds.
        asked_secs: u64,
        /// What the session waits, in seconds.
        capped_secs: u64,
    },
    /// The token endpoint issued a token that lives no longer than the renewal lead.
    #[error("the token endpoint issued a token that expires in {expires_in_ms} ms; using it for what it is worth and asking again after {retry_ms} ms")]
    ShortLivedToken {
        /// The token's `expires_in`.
        expires_in_ms: u64,
        /// When the session asks again.
        retry_ms: u64,
    },
    /// With `redundancy: 2`, the service moved a topic from one of the session's channels to
    /// the other (`no_longer_subscribed`, reason `another_channel_subscribed`): it keeps a
    /// topic on one channel per client, so two channels would take topics from each other
    /// forever. The session goes on with one channel.
    #[error("the service keeps each topic on one channel only (another_channel_subscribed): going on with one channel instead of two; redundancy is not available here")]
    OneChannelPerTopic,
    /// The channel endpoint answered with a channel that has (almost) already expired.
    #[error("the channel endpoint answered with a channel that expires in {expires_in_ms} ms; trying again after {retry_ms} ms")]
    ExpiredChannel {
        /// The channel's remaining life.
        expires_in_ms: u64,
        /// When the session tries again.
        retry_ms: u64,
    },
    /// An HTTP error status.
    #[error("{what} failed with HTTP {status}{}{}", retry_note(*retry_after), next_note(*next_attempt_ms))]
    Http {
        /// Which request.
        what: &'static str,
        /// The status.
        status: u16,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
        /// When the session tries again, from now (before any request budget).
        next_attempt_ms: Option<u64>,
    },
    /// No HTTP answer: DNS, TCP, TLS, timeout.
    #[error("{what} failed: {detail}{}", next_note(*next_attempt_ms))]
    Network {
        /// Which request.
        what: &'static str,
        /// What the adapter saw.
        detail: String,
        /// When the session tries again, from now (before any request budget).
        next_attempt_ms: Option<u64>,
    },
}

/// `ms` in tenths of a second, rounded exactly as `format!("{:.1}", ms as f64 / 1000.0)`
/// would (ties to even on the nearest double), without the float formatter, which is a
/// fifth of the browser build's code.
fn tenths(ms: u64) -> u64 {
    let (q, r) = (ms / 100, ms % 100);
    match r.cmp(&50) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => {
            // A decimal tie: the double nearest to it lies above, below or on it. The double
            // is mantissa × 2^exponent; compared with ms / 1000 in integers (a fused
            // multiply-add would bring in a software fma).
            let bits = (ms as f64 / 1000.0).to_bits();
            let mantissa = u128::from((bits & ((1 << 52) - 1)) | (1 << 52));
            // 47 to 52 for the delays written this way (1 s to 1 min); never above 64 for
            // any u64 with a fraction.
            let shift = 1075_u32
                .saturating_sub(((bits >> 52) & 0x7ff) as u32)
                .min(64);
            let (double, tie) = (mantissa * 1000, u128::from(ms) << shift);
            if double > tie || (double == tie && q % 2 == 1) {
                q + 1
            } else {
                q
            }
        }
    }
}

fn next_note(ms: Option<u64>) -> String {
    match ms {
        None => String::new(),
        Some(ms) if ms < 1_000 => format!("; trying again in {ms} ms"),
        Some(ms) if ms < 60_000 => {
            let t = tenths(ms);
            format!("; trying again in {}.{} s", t / 10, t % 10)
        }
        Some(ms) => format!(
            "; trying again in {} min {} s",
            ms / 60_000,
            ms % 60_000 / 1000
        ),
    }
}

fn close_note(code: Option<u16>, reason: &str) -> String {
    match (code, reason.is_empty()) {
        (Some(c), true) => format!("code {c}"),
        (Some(c), false) => format!("code {c}: {reason}"),
        (None, true) => "no close frame".to_owned(),
        (None, false) => format!("no close frame: {reason}"),
    }
}

fn retry_note(d: Option<Duration>) -> String {
    d.map(|d| format!(" (retry after {}s)", d.as_secs()))
        .unwrap_or_default()
}

/// The server sent something the session could not use.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A text frame that is not a message the session understands.
    #[error("dropped a malformed frame ({why}); {count} so far")]
    MalformedFrame {
        /// What was wrong.
        why: FrameProblem,
        /// Malformed frames seen by this session so far.
        count: u64,
    },
    /// A channel answer without a usable `connectUri` or id.
    #[error("the channel answer was unusable: {0}")]
    BadChannel(String),
    /// More malformed frames arrived after the first one was reported: one warning per
    /// window, however many.
    #[error("{dropped} malformed frames dropped in the last {window_secs} s ({total} so far)")]
    MalformedFrames {
        /// Dropped in this window.
        dropped: u64,
        /// The window.
        window_secs: u64,
        /// Dropped by this session so far.
        total: u64,
    },
    /// With `redundancy: 2`, more notifications arrived within `dedup_window` than duplicate
    /// suppression remembers: from now on, a copy that arrives long after the first may be
    /// delivered twice. Reported once per session.
    #[error("more than {keys} notifications arrived within {window_secs} s: duplicate suppression forgets the oldest early, so a late copy from the second socket may be delivered twice (lower dedup_window, or use redundancy 1)")]
    DedupBound {
        /// Notifications remembered at most.
        keys: usize,
        /// The configured window.
        window_secs: u64,
    },
}

/// What was wrong with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameProblem {
    /// Not JSON, or truncated.
    NotJson,
    /// JSON, but neither a notification nor a known control message.
    UnknownShape,
}

impl fmt::Display for FrameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameProblem::NotJson => "not JSON or truncated",
            FrameProblem::UnknownShape => "no topicName and not a known reply",
        })
    }
}

/// The application or adapter used the session wrongly.
#[derive(Debug, Clone, PartialEq, Eq, ThisError)]
#[non_exhaustive]
pub enum UsageError {
    /// A topic the service would refuse.
    #[error("invalid topic {topic:?}: {why}")]
    InvalidTopic {
        /// The offending name (cut at 201 characters).
        topic: String,
        /// Why.
        why: &'static str,
    },
    /// The desired set would not fit in the channel budget: at most
    /// [`Config::max_topics`](crate::Config::max_topics) topics, spread over channels of
    /// `max_topics_per_channel` each.
    #[error("{requested} topics requested but at most {fit} fit in the channel budget (max_channels, max_topics_per_channel and redundancy decide it): subscribe fewer, or give the rest to a session of another OAuth client, whose channels are counted apart")]
    TooManyTopics {
        /// The size the set would have had.
        requested: usize,
        /// How many fit.
        fit: usize,
    },
    /// The session was closed; create a new one.
    #[error("the session is closed: create a new session")]
    Closed,
    /// A configuration value makes no sense.
    #[error("invalid config: {field} {why}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
    /// `now` went backwards; the session kept its latest time.
    #[error("time went backwards by {by_ms} ms: the adapter must pass a monotonic clock")]
    TimeWentBackwards {
        /// By how much.
        by_ms: u64,
    },
}

/// How an HTTP request or a socket upgrade failed, as the adapter reports it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The server answered with an error status.
    Http {
        /// The status code.
        status: u16,
        /// `Retry-After`, already converted to a duration.
        retry_after: Option<Duration>,
        /// The error code from the body: OAuth `error` (`invalid_grant`) or Genesys `code`
        /// (`bad.credentials`).
        code: Option<String>,
    },
    /// No HTTP answer: DNS, TCP, TLS, timeout, or an answer that could not be read.
    Network(String),
    /// The token source cannot produce a token without the user (for example a static token).
    CannotRefresh(String),
    /// An answer that retrying cannot fix: a `connectUri` that is not the region's streaming
    /// host, or a redirect (never followed). The text names a host at most, never a secret
    /// or a channel id. Twice in a row for the same kind of request stops the session.
    Refused(String),
}

impl RequestError {
    /// An HTTP error status without a body code or `Retry-After`.
    pub fn status(status: u16) -> Self {
        RequestError::Http {
            status,
            retry_after: None,
            code: None,
        }
    }

    /// An HTTP error status with a body code.
    pub fn status_code(status: u16, code: &str) -> Self {
        RequestError::Http {
            status,
            retry_after: None,
            code: Some(code.to_owned()),
        }
    }

    /// HTTP 429 with a `Retry-After`.
    pub fn rate_limited(retry_after: Duration) -> Self {
        RequestError::Http {
            status: 429,
            retry_after: Some(retry_after),
            code: None,
        }
    }

    /// A network failure.
    pub fn network(detail: impl Into<String>) -> Self {
        RequestError::Network(detail.into())
    }

    pub(crate) fn http_status(&self) -> Option<u16> {
        match self {
            RequestError::Http { status, .. } => Some(*status),
            RequestError::Network(_)
            | RequestError::CannotRefresh(_)
            | RequestError::Refused(_) => None,
        }
    }

    pub(crate) fn retry_after_mut(&mut self) -> Option<&mut Duration> {
        match self {
            RequestError::Http { retry_after, .. } => retry_after.as_mut(),
            RequestError::Network(_)
            | RequestError::CannotRefresh(_)
            | RequestError::Refused(_) => None,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            RequestError::Http { retry_after, .. } => *retry_after,
            RequestError::Network(_)
            | RequestError::CannotRefresh(_)
            | RequestError::Refused(_) => None,
        }
    }

    /// The warning for this failure; `next`: when the session tries again.
    pub(crate) fn to_server_error(&self, what: &'static str, next: Duration) -> ServerError {
        let next_attempt_ms = Some(u64::try_from(next.as_millis()).unwrap_or(u64::MAX));
        match self {
            RequestError::Http {
                status,
                retry_after,
                ..
            } => ServerError::Http {
                what,
                status: *status,
                retry_after: *retry_after,
                next_attempt_ms,
            },
            RequestError::Network(d)
            | RequestError::CannotRefresh(d)
            | RequestError::Refused(d) => ServerError::Network {
                what,
                detail: d.clone(),
                next_attempt_ms,
            },
        }
    }
}

/// Codes and statuses only: adapters must never put a secret in `Network` text, but the
/// debug form stays short anyway.
impl fmt::Debug for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Http {
                status,
                retry_after,
                code,
            } => {
                write!(f, "HTTP {status}")?;
                if let Some(c) = code {
                    write!(f, " {c}")?;
                }
                if let Some(r) = retry_after {
                    write!(f, " retry-after={}s", r.as_secs())?;
                }
                Ok(())
            }
            RequestError::Network(d) => write!(f, "network: {d}"),
            RequestError::CannotRefresh(d) => write!(f, "cannot refresh: {d}"),
            RequestError::Refused(d) => write!(f, "refused: {d}"),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every delay that is written in tenths of a second reads as the float formatter wrote it.
    #[test]
    fn tenths_round_as_the_float_formatter_did() {
        for ms in 1_000..60_000_u64 {
            let t = super::tenths(ms);
            let ours = format!("{}.{}", t / 10, t % 10);
            assert_eq!(ours, format!("{:.1}", ms as f64 / 1000.0), "{ms} ms");
        }
    }
}
