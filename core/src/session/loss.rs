//! What to do after a socket is lost, decided once, from the session's own state. Genesys
//! documents no close codes, so a code can only make the recovery stronger (a fresh token, a
//! new channel), never weaker.

use std::time::Duration;

use crate::config::CloseCodes;
use crate::error::AuthError;
use crate::io::{Action, GapReason};
use crate::time::Instant;

use super::link::{Chan, Link, Plan, Step, Wait, Which};
use super::{Ending, Life, Session, NORMAL_CLOSE, SERVED_FOR};

/// What ended a socket, as far as the session can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// The server closed an open socket: a close frame with its code, or an error or EOF.
    Closed(Option<u16>),
    /// The session gave up on an open socket (no pong in time, the channel expired).
    GaveUp,
    /// The upgrade was answered with this HTTP status.
    Refused(u16),
    /// The upgrade got no HTTP answer (DNS, TCP, TLS, timeout, closed before opening).
    Unanswered,
}

/// How to recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Recovery {
    pub(super) plan: Plan,
    /// The token that created the channel is suspect: the next channel needs a newer one.
    pub(super) fresher_token: bool,
    /// An auth-class close code or upgrade status, to be counted by the loop guard.
    pub(super) auth_failure: Option<u16>,
}

/// The one place a loss becomes a plan. `chan` is the lost link's channel, `closing` whether
/// the server announced maintenance on the socket.
pub(super) fn classify(
    cause: Cause,
    chan: Option<&Chan>,
    closing: bool,
    now: Instant,
    codes: &CloseCodes,
) -> Recovery {
    let new_channel = |fresher_token, auth_failure| Recovery {
        plan: Plan::NewChannel,
        fresher_token,
        auth_failure,
    };
    match cause {
        Cause::Refused(status @ (401 | 403)) => new_channel(true, Some(status)),
        Cause::Refused(_) => new_channel(false, None),
        Cause::Unanswered => Recovery {
            plan: if chan.is_some_and(|c| c.dies_at() > now) {
                Plan::Reconnect
            } else {
                Plan::NewChannel
            },
            fresher_token: false,
            auth_failure: None,
        },
        Cause::Closed(_) | Cause::GaveUp => {
            let code = match cause {
                Cause::Closed(code) => code,
                Cause::GaveUp | Cause::Refused(_) | Cause::Unanswered => None,
            };
            let auth_failure = code.filter(|c| codes.auth.contains(c));
            let gone = code.is_some_and(|c| codes.channel_gone.contains(&c));
            let Some(c) = chan else {
                return new_channel(auth_failure.is_some(), auth_failure);
            };
            let token_dead = c.token_expires_at <= now;
            let chan_dead = c.expires_at <= now || closing || gone;
            if auth_failure.is_some() || token_dead || chan_dead {
                new_channel(auth_failure.is_some() || token_dead, auth_failure)
            } else {
                Recovery {
                    plan: Plan::Reconnect,
                    fresher_token: false,
                    auth_failure: None,
                }
            }
        }
    }
}

impl Session {
    /// How to recover from losing `w`'s socket ([`loss::classify`] on the link's state).
    pub(super) fn classify_loss(&self, w: Which, cause: Cause) -> Recovery {
        let l = self.link(w);
        let closing = l
            .and_then(Link::open)
            .is_some_and(|o| o.closing_by.is_some());
        let chan = l.and_then(|l| l.chan.as_ref());
        classify(cause, chan, closing, self.now, &self.cfg.close_codes)
    }

    /// The session gave up on an open socket.
    pub(super) fn give_up(&mut self, w: Which, reason: GapReason) {
        let r = self.classify_loss(w, Cause::GaveUp);
        if r.fresher_token {
            self.want_fresher_token(w);
        }
        self.lose(w, reason, r.plan, Ending::GivenUp);
    }

    /// Counts an auth-class close or upgrade refusal; true if the session stopped for a login.
    pub(super) fn count_auth_failure(&mut self, w: Which, code: u16) -> bool {
        let link = self.link(w).map_or(u64::MAX, |l| l.tag);
        if self.auth_streak.failed(code, link, self.now) {
            self.require_login(AuthError::RepeatedAuthClose { code });
            return true;
        }
        false
    }

    /// The token that made this link's channel is suspect: the next channel needs a newer one.
    pub(super) fn want_fresher_token(&mut self, w: Which) {
        let Some(l) = self.link_mut(w) else { return };
        if let Some(c) = &l.chan {
            l.min_token_gen = l.min_token_gen.max(c.token_gen + 1);
        }
    }

    /// A link lost its socket or channel. An active link's covered topics become uncovered;
    /// a standby takes over if there is one; otherwise the link retries after backoff.
    pub(super) fn lose(&mut self, w: Which, reason: GapReason, plan: Plan, ending: Ending) {
        let close_socket = ending != Ending::ClosedByServer;
        // Proven only up to its last frame (not up to now) when the session gave up on it.
        let unproven = ending == Ending::GivenUp;
        let now = self.now;
        let Some(mut old) = self.take_link(w) else {
            return;
        };
        if close_socket {
            if let Some(conn) = old.conn() {
                self.actions.push_back(Action::Close {
                    conn,
                    code: NORMAL_CLOSE,
                });
            }
        }
        let lost = old.open().filter(|o| w != Which::Standby && o.is_live());
        if let (Some(o), Life::Running(r)) = (lost, &self.life) {
            let links = &r.links;
            // A close frame from the server proves everything sent before it arrived. A socket
            // the session gives up on itself is proven only up to its last frame.
            let (from, reason) = match (o.suspect_since, unproven) {
                (Some(since), _) => (since, GapReason::Suspended),
                (None, true) => (o.last_rx, reason),
                (None, false) => (now, reason),
            };
            // Nothing is published to a channel past its expiry, closed or not: its coverage
            // ended then at the latest.
            let from = old.chan.as_ref().map_or(from, |c| from.min(c.expires_at));
            // A standby subscribed before the coverage ended keeps covering what it has — if
            // the old socket was drained up to then: by the server's close frame, or by the
            // pong to the handover ping. Otherwise frames it sent before the standby took
            // over may never have arrived.
            let drained = !unproven || o.proof.is_proven();
            let still = links
                .get(Which::Standby)
                .filter(|_| links.standby_for() == w)
                .and_then(Link::open)
                .filter(|s| drained && s.live_since.is_some_and(|l| l <= from))
                .map(|s| &s.server_topics);
            // With two links, the other one keeps covering what it has — if it was live before
            // the coverage ended and this socket was drained up to when it went live: by the
            // server's close frame, or by a pong to a ping sent after then.
            let drained_to = o.pings.drained_to;
            let twin = links
                .other_lane(w)
                .and_then(|x| links.get(x))
                .and_then(Link::open)
                .filter(|s| {
                    s.live_since.is_some_and(|l| {
                        l <= from && (!unproven || drained_to.is_some_and(|d| d >= l))
                    })
                })
                .map(|s| &s.server_topics);
            for t in o.server_topics.intersection(&self.topics) {
                let kept =
                    still.is_some_and(|s| s.contains(t)) || twin.is_some_and(|s| s.contains(t));
                if !kept {
                    self.ledger.lose(t, from, reason);
                }
            }
        }
        if w != Which::Standby && self.standby_for() == w {
            if let Some(standby) = self.take_link(Which::Standby) {
                self.put_link(w, standby);
                return;
            }
        }
        let served = old.open().is_some_and(|o| {
            o.live_since.is_some_and(|s| {
                let lived = now - s;
                lived >= self.cfg.stable_after
                    || (lived >= SERVED_FOR.min(self.cfg.stable_after) && o.last_rx > s)
            })
        });
        if served {
            old.failures = 0;
        }
        // The first retry after a stable connection goes out at once, spread a little so a
        // crowd of clients dropped together does not arrive together; backoff grows from the
        // second failure on.
        let delay = if old.failures == 0 {
            // Never in the same instant as the loss: that stays a separate wake-up.
            let least = Duration::from_millis(1);
            self.rng.between(least, self.first_retry_spread.max(least))
        } else {
            self.backoff(old.failures, None)
        };
        let mut next = Link::new(old.tag);
        next.failures = old.failures.saturating_add(1);
        next.min_token_gen = old.min_token_gen;
        next.chan = old.chan.take();
        next.step = Step::Waiting {
            until: now + delay,
            plan,
            why: Wait::Backoff,
        };
        self.put_link(w, next);
        if w == Which::Standby {
            self.reset_handover_proof();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ChannelId, Secret};

    fn chan(expires: u64, token_expires: u64) -> Chan {
        Chan {
            id: ChannelId::new("ch"),
            uri: Secret::new("wss://s/ch"),
            expires_at: Instant::from_secs(expires),
            token_gen: 1,
            token_expires_at: Instant::from_secs(token_expires),
            renew_at: Instant::from_secs(expires.min(token_expires) / 2),
        }
    }

    fn plan(cause: Cause, c: Option<&Chan>, closing: bool, now: u64) -> (Plan, bool, Option<u16>) {
        let r = classify(
            cause,
            c,
            closing,
            Instant::from_secs(now),
            &CloseCodes::default(),
        );
        (r.plan, r.fresher_token, r.auth_failure)
    }

    #[test]
    fn a_close_reconnects_to_a_healthy_channel_and_renews_a_dead_one() {
        let c = chan(100, 200);
        assert_eq!(
            plan(Cause::Closed(Some(1000)), Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::GaveUp, Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), Some(&c), false, 100),
            (Plan::NewChannel, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), Some(&c), true, 10),
            (Plan::NewChannel, false, None)
        );
        assert_eq!(
            plan(Cause::Closed(None), None, false, 10),
            (Plan::NewChannel, false, None)
        );
    }

    #[test]
    fn a_dead_token_or_an_auth_code_asks_for_a_fresher_token() {
        let c = chan(300, 100);
        assert_eq!(
            plan(Cause::GaveUp, Some(&c), false, 100),
            (Plan::NewChannel, true, None)
        );
        let healthy = chan(300, 300);
        assert_eq!(
            plan(Cause::Closed(Some(4001)), Some(&healthy), false, 10),
            (Plan::NewChannel, true, Some(4001))
        );
        assert_eq!(
            plan(Cause::Closed(Some(1008)), None, false, 10),
            (Plan::NewChannel, true, Some(1008))
        );
    }

    #[test]
    fn a_refused_upgrade_needs_a_new_channel_and_no_answer_retries_the_same() {
        let c = chan(300, 300);
        assert_eq!(
            plan(Cause::Refused(401), Some(&c), false, 10),
            (Plan::NewChannel, true, Some(401))
        );
        assert_eq!(
            plan(Cause::Refused(404), Some(&c), false, 10),
            (Plan::NewChannel, false, None)
        );
        assert_eq!(
            plan(Cause::Unanswered, Some(&c), false, 10),
            (Plan::Reconnect, false, None)
        );
        assert_eq!(
            plan(Cause::Unanswered, Some(&c), false, 300),
            (Plan::NewChannel, false, None)
        );
    }
}
