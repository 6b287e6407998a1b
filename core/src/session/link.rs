//! A channel link and its steps: the channel, the socket, the subscription and the handover
//! proof, with their pure queries. Every change to them happens in the parent module.

use crate::sorted::{SortedMap, SortedSet};

use crate::time::Instant;
use crate::types::{ChannelId, ConnId, ReqId, Secret, Topic};

use super::deadline::Deadline;
use super::liveness::{Alive, Cadence};

/// Which of the (at most) three channel links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// The link that carries (or is recovering) coverage.
    Active,
    /// A make-before-break replacement being brought up while the link it replaces is live.
    Standby,
    /// With `redundancy: 2`, the second link that carries coverage beside `Active`.
    Twin,
}

/// Why a link waits before its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wait {
    /// A backoff step after a failure (or a `Retry-After`).
    Backoff,
    /// The channel-creation budget.
    ChannelBudget,
    /// The per-minute upgrade budget.
    RequestBudget,
}

/// What a channel's renewal is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Renewal {
    /// The token that made the channel expires first.
    Token,
    /// The channel's own life ends first.
    Channel,
}

/// A link's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LinkTimer {
    /// A wait before the next step ends (or before an owed subscription PUT).
    Wait(Wait),
    /// A channel request, an upgrade or a subscription PUT went unanswered.
    RequestTimeout,
    /// The maintenance grace after `socket_closing` ended.
    HandoverGrace,
    /// The channel (or the token bound to it) expired.
    ChannelExpiry,
    /// A ping went unanswered.
    PingTimeout,
    /// The socket was silent: ping it.
    Idle,
    /// Time to renew the channel (make-before-break).
    Renew(Renewal),
}

impl LinkTimer {
    /// The reason an adapter sees.
    pub(super) fn reason(self) -> Deadline {
        match self {
            LinkTimer::Wait(Wait::Backoff) => Deadline::Backoff,
            LinkTimer::Wait(Wait::ChannelBudget) => Deadline::ChannelBudget,
            LinkTimer::Wait(Wait::RequestBudget) => Deadline::RequestBudget,
            LinkTimer::RequestTimeout => Deadline::RequestTimeout,
            LinkTimer::HandoverGrace => Deadline::HandoverGrace,
            LinkTimer::ChannelExpiry => Deadline::ChannelExpiry,
            LinkTimer::PingTimeout => Deadline::PingTimeout,
            LinkTimer::Idle => Deadline::Idle,
            LinkTimer::Renew(Renewal::Token) => Deadline::TokenRefresh,
            LinkTimer::Renew(Renewal::Channel) => Deadline::ChannelRollover,
        }
    }
}

/// Every link slot, in the order the session visits them.
pub(super) const SLOTS: [Which; 3] = [Which::Active, Which::Standby, Which::Twin];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plan {
    /// Reconnect to the same `connectUri` (its subscriptions survive server-side).
    Reconnect,
    /// Create a new channel.
    NewChannel,
}

#[derive(Debug, Clone)]
pub(super) struct Chan {
    pub(super) id: ChannelId,
    pub(super) uri: Secret,
    pub(super) expires_at: Instant,
    pub(super) token_gen: u64,
    pub(super) token_expires_at: Instant,
    pub(super) renew_at: Instant,
}

impl Chan {
    /// A channel is bound to the token that created it: once that token expires or is
    /// revoked, the channel stops being usable (and reconnecting to it may be refused).
    pub(super) fn dies_at(&self) -> Instant {
        self.expires_at.min(self.token_expires_at)
    }

    pub(super) fn renewal(&self) -> Renewal {
        if self.token_expires_at <= self.expires_at {
            Renewal::Token
        } else {
            Renewal::Channel
        }
    }
}

#[derive(Debug)]
pub(super) enum Step {
    Waiting {
        until: Instant,
        plan: Plan,
        why: Wait,
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
        /// The subscription PUT that went out beside the upgrade.
        early: Early,
    },
    /// The socket is open; everything that only means something while it is lives here.
    Open(OpenSocket),
}

#[derive(Debug)]
pub(super) struct SubRequest {
    pub(super) req: ReqId,
    pub(super) sent: Instant,
    pub(super) topics: Vec<Topic>,
    pub(super) token_gen: u64,
}

/// A subscription PUT sent while the socket is still being upgraded: the two do not depend
/// on each other, so they go out together, and coverage is claimed only once both succeeded.
#[derive(Debug)]
pub(super) enum Early {
    /// None went out (no token yet, or the budget is spent): one goes out once open.
    None,
    /// In flight; `again`: the desired set changed meanwhile.
    InFlight { request: SubRequest, again: bool },
    /// Answered before the socket opened: applied when it opens.
    Answered {
        topics: Vec<Topic>,
        refused: SortedMap<String, String>,
        again: bool,
    },
}

impl Early {
    /// The PUT in flight, if any.
    pub(super) fn request(&self) -> Option<&SubRequest> {
        match self {
            Early::InFlight { request, .. } => Some(request),
            Early::None | Early::Answered { .. } => None,
        }
    }

    /// The desired set changed after the PUT went out.
    pub(super) fn mark_dirty(&mut self) {
        match self {
            Early::InFlight { again, .. } | Early::Answered { again, .. } => *again = true,
            Early::None => {}
        }
    }
}

/// The subscription of an open socket.
#[derive(Debug)]
pub(super) enum Sub {
    /// The server has the whole desired set.
    Current,
    /// The desired set is not on the server yet (the socket just opened, or the set changed):
    /// a PUT goes out, not before `not_before`.
    Wanted { not_before: Option<Instant> },
    /// A PUT is in flight; `again`: the set changed meanwhile, so another follows it.
    InFlight { request: SubRequest, again: bool },
}

impl Sub {
    /// The PUT in flight, if any.
    pub(super) fn request(&self) -> Option<&SubRequest> {
        match self {
            Sub::InFlight { request, .. } => Some(request),
            Sub::Current | Sub::Wanted { .. } => None,
        }
    }

    /// True when a PUT is owed (now or after the one in flight).
    pub(super) fn is_dirty(&self) -> bool {
        matches!(self, Sub::Wanted { .. } | Sub::InFlight { again: true, .. })
    }

    /// The desired set changed.
    pub(super) fn mark_dirty(&mut self) {
        match self {
            Sub::Current => *self = Sub::Wanted { not_before: None },
            Sub::InFlight { again, .. } => *again = true,
            Sub::Wanted { .. } => {}
        }
    }

    /// The PUT in flight ended (answered or failed): what is owed afterwards.
    pub(super) fn take_request(&mut self) -> Option<SubRequest> {
        match std::mem::replace(self, Sub::Current) {
            Sub::InFlight { request, again } => {
                if again {
                    *self = Sub::Wanted { not_before: None };
                }
                Some(request)
            }
            other @ (Sub::Current | Sub::Wanted { .. }) => {
                *self = other;
                None
            }
        }
    }
}

/// What an open socket carries: it appears with `Opened` and goes with the socket.
#[derive(Debug)]
pub(super) struct OpenSocket {
    pub(super) conn: ConnId,
    /// Since when the socket has been subscribed (live).
    pub(super) live_since: Option<Instant>,
    /// Whether it is alive: its frames, pings and pongs, and a suspend it has not proven
    /// itself since.
    pub(super) alive: Alive,
    /// Set by `socket_closing`: the server closes this socket around then.
    pub(super) closing_by: Option<Instant>,
    pub(super) sub: Sub,
    /// Topics the server confirmed on this channel.
    pub(super) server_topics: SortedSet<Topic>,
    /// Whether this (active) socket has shown that it delivered everything the server sent
    /// on it before the replacement's subscription took effect.
    pub(super) proof: Proof,
}

impl OpenSocket {
    pub(super) fn new(conn: ConnId, now: Instant, cadence: Cadence) -> OpenSocket {
        OpenSocket {
            conn,
            live_since: None,
            alive: Alive::new(now, cadence),
            closing_by: None,
            sub: Sub::Wanted { not_before: None },
            server_topics: SortedSet::new(),
            proof: Proof::NotAsked,
        }
    }

    pub(super) fn is_live(&self) -> bool {
        self.live_since.is_some()
    }
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
    pub(super) fn new(tag: u64) -> Link {
        Link {
            tag,
            step: Step::NeedToken,
            chan: None,
            failures: 0,
            min_token_gen: 0,
        }
    }

    pub(super) fn conn(&self) -> Option<ConnId> {
        match &self.step {
            Step::Connecting { conn, .. } => Some(*conn),
            Step::Open(o) => Some(o.conn),
            Step::Waiting { .. } | Step::NeedToken | Step::Creating { .. } => None,
        }
    }

    pub(super) fn open(&self) -> Option<&OpenSocket> {
        match &self.step {
            Step::Open(o) => Some(o),
            Step::Waiting { .. }
            | Step::NeedToken
            | Step::Creating { .. }
            | Step::Connecting { .. } => None,
        }
    }

    pub(super) fn open_mut(&mut self) -> Option<&mut OpenSocket> {
        match &mut self.step {
            Step::Open(o) => Some(o),
            Step::Waiting { .. }
            | Step::NeedToken
            | Step::Creating { .. }
            | Step::Connecting { .. } => None,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.open().is_some()
    }

    /// The channel may hold topics while no socket is attached to it: a subscription PUT went
    /// out beside an upgrade that has not finished. A service that keeps each topic on one
    /// channel may move them away from such a channel without telling it (there is no socket
    /// to tell).
    pub(super) fn exposed(&self) -> bool {
        matches!(&self.step, Step::Connecting { early, .. } if !matches!(early, Early::None))
    }

    /// A subscription PUT of this link is in flight.
    pub(super) fn put_in_flight(&self) -> bool {
        match &self.step {
            Step::Open(o) => o.sub.request().is_some(),
            Step::Connecting { early, .. } => early.request().is_some(),
            Step::Waiting { .. } | Step::NeedToken | Step::Creating { .. } => false,
        }
    }

    pub(super) fn is_live(&self) -> bool {
        self.open().is_some_and(OpenSocket::is_live)
    }

    /// The handover proof of the socket; a link without one has not been asked.
    pub(super) fn proof(&self) -> Proof {
        self.open().map_or(Proof::NotAsked, |o| o.proof)
    }

    /// Topics a live socket of this link covers (none while it is not live).
    pub(super) fn live_topics(&self) -> Option<&SortedSet<Topic>> {
        self.open()
            .filter(|o| o.is_live())
            .map(|o| &o.server_topics)
    }

    pub(super) fn has_channel_alive(&self, now: Instant) -> bool {
        self.chan.as_ref().is_some_and(|c| c.dies_at() > now)
    }
}
