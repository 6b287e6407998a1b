//! What to do after a socket is lost, decided once, from the session's own state. Genesys
//! documents no close codes, so a code can only make the recovery stronger (a fresh token, a
//! new channel), never weaker.

use std::time::Duration;

use crate::config::CloseCodes;
use crate::error::AuthError;
use crate::io::{Action, GapReason};
use crate::sorted::SortedMap;
use crate::time::Instant;
use crate::types::Topic;

use super::link::{Chan, Link, OpenSocket, Plan, Step, Wait, Which};
use super::{Shard, NORMAL_CLOSE, SERVED_FOR};

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

/// The one place a loss becomes a plan, from the lost link's state: its channel, and whether
/// the server announced maintenance on its socket.
pub(super) fn classify(
    cause: Cause,
    link: Option<&Link>,
    now: Instant,
    codes: &CloseCodes,
) -> Recovery {
    let closing = link
        .and_then(Link::open)
        .is_some_and(|o| o.closing_by.is_some());
    let chan = link.and_then(|l| l.chan.as_ref());
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

/// How a socket's coverage ends, for the one rule of where its gap starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// The server closed it: everything it sent before the close arrived.
    ClosedByServer,
    /// The session gives up on it (and closes it): it is proven only up to its last frame,
    /// or up to the handover pong if one came.
    GivenUp,
    /// The server said on it that it no longer carries its topics (another channel took
    /// them), or the session retires it after it proved it drained (a handover): everything
    /// it sent before arrived; the session closes it.
    Superseded,
    /// The session closes it as it stops: it covered up to now, if it proved itself since
    /// the last suspend.
    Closing,
}

/// Where the coverage of a live socket that ends now (`ending`) ended — the one rule:
/// - a socket unproven since a suspend covered up to its last frame before the suspend (the
///   flag says so);
/// - one the session gave up on covered up to its last frame;
/// - any other covered up to now;
///
/// and no socket covered past its channel's expiry: nothing is published to an expired
/// channel.
pub(super) fn coverage_end(
    o: &OpenSocket,
    chan: Option<&Chan>,
    ending: Ending,
    now: Instant,
) -> (Instant, bool) {
    let (end, suspended) = match (o.alive.suspect_since, ending) {
        (Some(since), _) => (since, true),
        (None, Ending::GivenUp) => (o.alive.last_rx, false),
        (None, Ending::ClosedByServer | Ending::Superseded | Ending::Closing) => (now, false),
    };
    (chan.map_or(end, |c| end.min(c.expires_at)), suspended)
}

impl Shard {
    /// Per wanted topic the lanes carry, where its coverage ends if every lane ends now
    /// (`ending`): the latest end over the lanes that carried it (at a tie, a proven one).
    pub(super) fn coverage_ends(&self, ending: Ending) -> SortedMap<Topic, (Instant, bool)> {
        let mut ends: SortedMap<Topic, (Instant, bool)> = SortedMap::new();
        for l in self.lanes() {
            let Some(o) = l.open().filter(|o| o.is_live()) else {
                continue;
            };
            let end = coverage_end(o, l.chan.as_ref(), ending, self.now);
            for t in o.server_topics.intersection(&self.topics) {
                let e = ends.get_or_insert_with(t.clone(), || end);
                if (end.0, !end.1) > (e.0, !e.1) {
                    *e = end;
                }
            }
        }
        ends
    }

    /// The one way a link is retired: its socket is closed (unless the server closed it), and
    /// if it carried coverage (`carried`: a lane, not a standby), the wanted topics its live
    /// socket carried that `kept` does not keep covered are lost from where
    /// [`coverage_end`] says, for `reason` (or `Suspended`).
    pub(super) fn retire(
        &mut self,
        old: &Link,
        ending: Ending,
        reason: GapReason,
        carried: bool,
        kept: impl Fn(&Shard, &Topic, Instant) -> bool,
    ) {
        if ending != Ending::ClosedByServer {
            if let Some(conn) = old.conn() {
                self.actions.push_back(Action::Close {
                    conn,
                    code: NORMAL_CLOSE,
                });
            }
        }
        let Some(o) = old.open().filter(|o| carried && o.is_live()) else {
            return;
        };
        let (from, suspended) = coverage_end(o, old.chan.as_ref(), ending, self.now);
        let reason = if suspended {
            GapReason::Suspended
        } else {
            reason
        };
        let lost: Vec<&Topic> = o
            .server_topics
            .intersection(&self.topics)
            .filter(|t| !kept(self, t, from))
            .collect();
        for t in lost {
            self.ledger.lose(t, from, reason);
        }
    }

    /// The session gave up on an open socket.
    pub(super) fn give_up(&mut self, w: Which, reason: GapReason) {
        let r = classify(Cause::GaveUp, self.link(w), self.now, &self.cfg.close_codes);
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
        // Proven only up to its last frame (not up to now) when the session gave up on it.
        let unproven = ending == Ending::GivenUp;
        let now = self.now;
        let Some(mut old) = self.take_link(w) else {
            return;
        };
        let proof = old.proof();
        let drained_to = old.open().and_then(|o| o.alive.pings.drained_to);
        self.retire(&old, ending, reason, w != Which::Standby, |s, t, from| {
            let Some(links) = s.links() else {
                return false;
            };
            // A standby subscribed before the coverage ended keeps covering what it has — if
            // the old socket was drained up to then: by the server's close frame, or by the
            // pong to the handover ping. Otherwise frames it sent before the standby took
            // over may never have arrived.
            let drained = !unproven || proof.is_proven();
            let still = links
                .get(Which::Standby)
                .filter(|_| links.standby_for() == w)
                .and_then(Link::open)
                .filter(|s| drained && s.live_since.is_some_and(|l| l <= from));
            // With two links, the other one keeps covering what it has — if it was live before
            // the coverage ended and this socket was drained up to when it went live: by the
            // server's close frame, or by a pong to a ping sent after then.
            let twin = links
                .other_lane(w)
                .and_then(|x| links.get(x))
                .and_then(Link::open)
                .filter(|s| {
                    s.live_since.is_some_and(|l| {
                        l <= from && (!unproven || drained_to.is_some_and(|d| d >= l))
                    })
                });
            [still, twin]
                .into_iter()
                .flatten()
                .any(|s| s.server_topics.contains(t))
        });
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
                    || (lived >= SERVED_FOR.min(self.cfg.stable_after) && o.alive.last_rx > s)
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
        use crate::config::Config;
        use crate::session::liveness::{Bounds, Cadence};
        use crate::types::ConnId;
        let mut link = Link::new(1);
        link.chan = c.cloned();
        if closing {
            let cadence = Cadence::new(Bounds::new(&Config::default()));
            let mut o = OpenSocket::new(ConnId::from_u64(1), Instant::ZERO, cadence);
            o.closing_by = Some(Instant::ZERO);
            link.step = Step::Open(o);
        }
        let r = classify(
            cause,
            Some(&link),
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

    #[test]
    fn a_gap_starts_where_the_one_rule_says() {
        use crate::config::Config;
        use crate::session::liveness::{Bounds, Cadence};
        use crate::types::ConnId;
        let cadence = Cadence::new(Bounds::new(&Config::default()));
        let mut o = OpenSocket::new(ConnId::from_u64(1), Instant::from_secs(10), cadence);
        o.alive.last_rx = Instant::from_secs(40);
        let now = Instant::from_secs(50);
        let c = chan(100, 100);
        let at = |ending, c: Option<&Chan>, o: &OpenSocket| coverage_end(o, c, ending, now);
        // Everything it sent arrived: covered up to now.
        for e in [Ending::ClosedByServer, Ending::Superseded, Ending::Closing] {
            assert_eq!(at(e, Some(&c), &o), (now, false), "{e:?}");
        }
        // Given up on: up to its last frame.
        assert_eq!(at(Ending::GivenUp, Some(&c), &o), (o.alive.last_rx, false));
        // Never past the channel's expiry.
        let expired = chan(30, 100);
        assert_eq!(
            at(Ending::ClosedByServer, Some(&expired), &o),
            (Instant::from_secs(30), false)
        );
        // Unproven since a suspend: up to then, whatever ended it.
        o.alive.suspect_since = Some(Instant::from_secs(20));
        for e in [Ending::ClosedByServer, Ending::GivenUp, Ending::Closing] {
            assert_eq!(at(e, Some(&c), &o), (Instant::from_secs(20), true), "{e:?}");
        }
    }
}
