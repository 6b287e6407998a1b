//! A channel link and its steps: the channel, the socket, the subscription and the handover
//! proof, with their pure queries. Every change to them happens in the parent module.

use std::collections::BTreeSet;

use crate::time::Instant;
use crate::types::{ChannelId, ConnId, ReqId, Secret, Topic};

use super::deadline::Deadline;

/// Which of the (at most) two channel links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// The link that carries (or is recovering) coverage.
    Active,
    /// A make-before-break replacement being brought up while `Active` is live.
    Standby,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Reconnect to the same `connectUri` (its subscriptions survive server-side).
    Reconnect,
    /// Create a new channel.
    NewChannel,
}

#[derive(Debug)]
pub(super) struct Chan {
    pub(super) id: ChannelId,
    pub(super) uri: Secret,
    pub(super) expires_at: Instant,
    pub(super) token_gen: u64,
    pub(super) token_expires_at: Instant,
    pub(super) renew_at: Instant,
}

impl Chan {
    /// A channel dies with the token that created it (PROTOCOL.md §2.8).
    pub(super) fn dies_at(&self) -> Instant {
        self.expires_at.min(self.token_expires_at)
    }

    pub(super) fn renew_reason(&self) -> Deadline {
        if self.token_expires_at <= self.expires_at {
            Deadline::TokenRefresh
        } else {
            Deadline::ChannelRollover
        }
    }
}

#[derive(Debug)]
pub(super) enum Step {
    Waiting {
        until: Instant,
        plan: Plan,
        why: Deadline,
    },
    NeedToken,
    Creating {
        req: ReqId,
        sent: Instant,
        token_gen: u64,
    },
    Connecting {
        conn: ConnId,
        sent: Instant,
    },
    Open {
        conn: ConnId,
    },
}

#[derive(Debug)]
pub(super) struct SubRequest {
    pub(super) req: ReqId,
    pub(super) sent: Instant,
    pub(super) topics: Vec<Topic>,
    pub(super) token_gen: u64,
}

#[derive(Debug)]
pub(super) struct Link {
    pub(super) tag: u64,
    pub(super) step: Step,
    pub(super) chan: Option<Chan>,
    /// Failures since this link was last stable; drives backoff.
    pub(super) failures: u32,
    /// Tokens older than this generation may not create this link's channel.
    pub(super) min_token_gen: u64,
    pub(super) live_since: Option<Instant>,
    pub(super) last_rx: Instant,
    pub(super) ping_due: Option<Instant>,
    /// Set by a suspend: coverage since then is unproven until a frame arrives.
    pub(super) suspect_since: Option<Instant>,
    /// Set by `socket_closing`: the server closes this socket around then.
    pub(super) closing_by: Option<Instant>,
    pub(super) sub: Option<SubRequest>,
    pub(super) sub_dirty: bool,
    pub(super) sub_retry_at: Option<Instant>,
    /// Topics the server confirmed on this channel.
    pub(super) server_topics: BTreeSet<Topic>,
    /// Pings sent on this socket that no pong has answered yet.
    pub(super) pings_out: u32,
    /// Whether this (active) link has shown that it delivered everything the server sent on
    /// it before the replacement's subscription took effect.
    pub(super) handover_proof: Proof,
}

/// The old socket's proof, during make-before-break, that nothing sent on it before the new
/// channel took over is still in flight. Only the pong to a ping sent after the new channel's
/// subscription was confirmed proves that: frames already in flight were sent earlier, so a
/// heartbeat or a notification proves nothing about the frames behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proof {
    NotAsked,
    /// This many more pongs must arrive; the last one answers the handover ping.
    AwaitingPongs(u32),
    /// The handover pong arrived then.
    Proven {
        at: Instant,
    },
}

impl Proof {
    pub(super) fn is_proven(self) -> bool {
        matches!(self, Proof::Proven { .. })
    }
}

impl Link {
    pub(super) fn new(tag: u64, now: Instant) -> Link {
        Link {
            tag,
            step: Step::NeedToken,
            chan: None,
            failures: 0,
            min_token_gen: 0,
            live_since: None,
            last_rx: now,
            ping_due: None,
            suspect_since: None,
            closing_by: None,
            sub: None,
            sub_dirty: false,
            sub_retry_at: None,
            server_topics: BTreeSet::new(),
            pings_out: 0,
            handover_proof: Proof::NotAsked,
        }
    }

    pub(super) fn conn(&self) -> Option<ConnId> {
        match self.step {
            Step::Connecting { conn, .. } | Step::Open { conn } => Some(conn),
            Step::Waiting { .. } | Step::NeedToken | Step::Creating { .. } => None,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        matches!(self.step, Step::Open { .. })
    }

    pub(super) fn is_live(&self) -> bool {
        self.is_open() && self.live_since.is_some()
    }

    pub(super) fn has_channel_alive(&self, now: Instant) -> bool {
        self.chan.as_ref().is_some_and(|c| c.dies_at() > now)
    }
}
