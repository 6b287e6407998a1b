//! Why the session wakes: the public reasons, and the session's own timers.

use std::fmt;

/// Why the session wants to be woken: the reason that comes with [`Session::poll_timeout`](crate::Session::poll_timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Deadline {
    /// Renew before the token that created the live channel expires.
    TokenRefresh,
    /// Retry a failed token request.
    TokenRetry,
    /// Renew before the live channel's 24-hour life ends.
    ChannelRollover,
    /// A channel (or the token bound to it) has expired.
    ChannelExpiry,
    /// A socket has been silent for `idle_timeout`: send a ping.
    Idle,
    /// A ping went unanswered for `ping_timeout`: the socket is dead.
    PingTimeout,
    /// Retry after a failure.
    Backoff,
    /// Wait for the channel-creation budget to free up.
    ChannelBudget,
    /// The maintenance grace after `socket_closing` ends.
    HandoverGrace,
    /// A request or upgrade has gone unanswered for `request_timeout`.
    RequestTimeout,
    /// Forget the duplicate-suppression keys of an ended overlap.
    DedupExpiry,
    /// The old socket has proven it drained and lingered: close it, the new one takes over.
    HandoverLinger,
    /// Wait for a per-minute request budget (upgrades) to free up.
    RequestBudget,
    /// Report the malformed frames counted in the last window.
    WarningDigest,
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Deadline::TokenRefresh => "token_refresh",
            Deadline::TokenRetry => "token_retry",
            Deadline::ChannelRollover => "channel_rollover",
            Deadline::ChannelExpiry => "channel_expiry",
            Deadline::Idle => "idle",
            Deadline::PingTimeout => "ping_timeout",
            Deadline::Backoff => "backoff",
            Deadline::ChannelBudget => "channel_budget",
            Deadline::HandoverGrace => "handover_grace",
            Deadline::RequestTimeout => "request_timeout",
            Deadline::DedupExpiry => "dedup_expiry",
            Deadline::HandoverLinger => "handover_linger",
            Deadline::RequestBudget => "request_budget",
            Deadline::WarningDigest => "warning_digest",
        })
    }
}

/// The session's own timers (a link's are [`LinkTimer`](super::link::LinkTimer)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SessionTimer {
    /// The token request in flight went unanswered.
    TokenRequest,
    /// A token request may go again.
    TokenRetry,
    /// An overlap's duplicate-suppression keys are forgotten.
    DedupExpiry,
    /// The proven old socket lingered: the ready standby takes over.
    HandoverLinger,
    /// The malformed-frame window ends.
    WarningDigest,
}

impl SessionTimer {
    /// The reason an adapter sees.
    pub(super) fn reason(self) -> Deadline {
        match self {
            SessionTimer::TokenRequest => Deadline::RequestTimeout,
            SessionTimer::TokenRetry => Deadline::TokenRetry,
            SessionTimer::DedupExpiry => Deadline::DedupExpiry,
            SessionTimer::HandoverLinger => Deadline::HandoverLinger,
            SessionTimer::WarningDigest => Deadline::WarningDigest,
        }
    }
}
