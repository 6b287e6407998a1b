//! Make-before-break: when a lane renews, the standby that replaces it, the proof that the
//! old socket delivered everything before the new one took over, the linger, and the
//! promotion. Also what the server says that starts or ends one: a maintenance notice, a
//! revoked token, topics taken by another channel.

use std::time::Duration;

use crate::error::ServerError;
use crate::io::GapReason;
use crate::time::Instant;

use super::dedup::Dedup;
use super::link::{Chan, Link, OpenSocket, Plan, Proof, Sub, Which};
use super::loss::Ending;
use super::Shard;

impl Shard {
    /// When link `w` (not a standby) starts its make-before-break renewal: at its renewal
    /// time, or at once after a maintenance notice. With two links, it waits while the other
    /// link is not live (renewing both at once would share their fate), until halfway from
    /// its renewal time to its channel's end.
    pub(super) fn renewal_at(&self, w: Which, c: &Chan, o: &OpenSocket) -> Instant {
        let mut at = c.renew_at;
        if !self.redundant() {
            return at;
        }
        if let Some(by) = o.closing_by {
            at = at.min(by - self.cfg.maintenance_grace);
        }
        let other_live = self
            .other_lane(w)
            .and_then(|x| self.link(x))
            .is_some_and(Link::is_live);
        if other_live {
            at
        } else {
            let dies = c.dies_at();
            at.max(c.renew_at + (dies.saturating_duration_since(c.renew_at)) / 2)
                .min(dies)
        }
    }

    /// The token of generation `gen` was rejected: every link on a channel it made renews
    /// (one at a time, the first at once).
    pub(super) fn renew_links_on(&mut self, gen: u64) {
        let now = self.now;
        if !self.redundant() {
            self.start_handover(Which::Active, gen + 1);
            return;
        }
        for w in [Which::Active, Which::Twin] {
            if let Some(c) = self.link_mut(w).and_then(|l| l.chan.as_mut()) {
                if c.token_gen == gen {
                    c.renew_at = c.renew_at.min(now);
                }
            }
        }
        for w in [Which::Active, Which::Twin] {
            let on_it = self
                .link(w)
                .and_then(|l| l.chan.as_ref())
                .is_some_and(|c| c.token_gen == gen);
            if on_it {
                self.start_handover(w, gen + 1);
                return;
            }
        }
    }

    /// Brings up a standby link on a new channel while link `of` stays live.
    pub(super) fn start_handover(&mut self, of: Which, min_token_gen: u64) {
        if self.has_standby() || !self.link(of).is_some_and(Link::is_live) {
            return;
        }
        let mut l = self.new_link();
        l.min_token_gen = min_token_gen;
        let Some(links) = self.links_mut() else {
            return;
        };
        links.add_standby(l, of);
        self.reset_handover_proof();
        self.begin(Which::Standby, Plan::NewChannel);
    }

    /// A proof of life counts only for the standby it was asked for.
    pub(super) fn reset_handover_proof(&mut self) {
        let of = self.standby_for();
        if let Some(a) = self.link_mut(of).and_then(Link::open_mut) {
            a.proof = Proof::NotAsked;
        }
    }

    /// With two links, a new channel renews well apart from the other link's channel: if
    /// both would renew within a quarter of this one's life of each other, this one renews
    /// halfway through its life instead (and so, when its token is what runs out, on a token
    /// of a different age). The two then never renew together, and one expiry that the
    /// session fails to renew in time takes down only one of them.
    pub(super) fn apart_from_other_lane(
        &self,
        w: Which,
        renew_at: Instant,
        lifetime: Duration,
    ) -> Instant {
        let lane = if w == Which::Standby {
            self.standby_for()
        } else {
            w
        };
        let Some(theirs) = self
            .other_lane(lane)
            .and_then(|x| self.link(x))
            .and_then(|l| l.chan.as_ref())
            .map(|c| c.renew_at)
        else {
            return renew_at;
        };
        let spacing = lifetime / 4;
        let apart = |a: Instant, b: Instant| a.max(b) - a.min(b) >= spacing;
        let halfway = self.now + lifetime / 2;
        if apart(renew_at, theirs) || !apart(halfway, theirs) {
            renew_at
        } else {
            halfway
        }
    }

    /// The standby is subscribed. It takes over once the old socket answers a ping sent now:
    /// the server wrote that pong after everything it had sent on the old socket before the
    /// new subscription took effect, so nothing is left in flight behind it. A silent old
    /// socket dies at its ping timeout and the gap is reported from its last frame.
    pub(super) fn standby_ready(&mut self) {
        let of = self.standby_for();
        let Some(a) = self.link(of) else {
            self.promote_standby();
            return;
        };
        match a.proof() {
            Proof::Proven { .. } => self.promote_after_linger(),
            Proof::AwaitingPongs(_) => {}
            Proof::NotAsked if !a.is_open() => self.promote_standby(),
            Proof::NotAsked => {
                self.ping(of);
                if let Some(a) = self.link_mut(of).and_then(Link::open_mut) {
                    a.proof = Proof::AwaitingPongs(a.alive.pings_out);
                }
            }
        }
    }

    /// When the ready standby may take over from a proven old socket.
    pub(super) fn linger_ends(&self) -> Option<Instant> {
        match self.link(self.standby_for())?.proof() {
            Proof::Proven { at } if self.standby_is_ready() => Some(at + self.cfg.handover_linger),
            Proof::Proven { .. } | Proof::NotAsked | Proof::AwaitingPongs(_) => None,
        }
    }

    pub(super) fn promote_after_linger(&mut self) {
        if self.linger_ends().is_some_and(|end| self.now >= end) {
            self.promote_standby();
        }
    }

    pub(super) fn standby_is_ready(&self) -> bool {
        self.link(Which::Standby)
            .and_then(Link::open)
            .is_some_and(|o| o.is_live() && matches!(o.sub, Sub::Current))
    }

    /// The standby is live: it takes over and the old socket closes (make-before-break).
    pub(super) fn promote_standby(&mut self) {
        let Some(standby) = self.take_link(Which::Standby) else {
            return;
        };
        let of = self.standby_for();
        if let Some(old) = self.take_link(of) {
            // It proved it drained. Topics the new channel was refused stop being covered now.
            let taking_over = standby.live_topics();
            self.retire(
                &old,
                Ending::Superseded,
                GapReason::Rejected,
                true,
                |s, t, _| taking_over.is_some_and(|k| k.contains(t)) || s.covered_elsewhere(of, t),
            );
        }
        self.put_link(of, standby);
    }

    /// The handover pong on the replaced link is the proof its replacement waits for.
    pub(super) fn after_frame(&mut self, w: Which) {
        if !self.has_standby() || w != self.standby_for() {
            return;
        }
        let proven = self
            .link(self.standby_for())
            .is_some_and(|a| a.proof().is_proven());
        if proven && self.standby_is_ready() {
            self.promote_after_linger();
        }
    }

    pub(super) fn on_socket_closing(&mut self, w: Which) {
        match w {
            Which::Active | Which::Twin => {
                let grace = self.now + self.cfg.maintenance_grace;
                if let Some(o) = self.link_mut(w).and_then(Link::open_mut) {
                    o.closing_by.get_or_insert(grace);
                }
                if self.link(w).is_some_and(Link::is_live) {
                    self.start_handover(w, 0);
                }
            }
            Which::Standby => {
                self.lose(w, GapReason::Maintenance, Plan::NewChannel, Ending::GivenUp)
            }
        }
    }

    /// A maintenance notice: the link renews at once, alone (with two links, after the other
    /// link's renewal if one is under way: its renewal deadline says when).
    /// The service moved this socket's topics to another channel of this client, and said so
    /// on this socket, after everything it had sent here. With two links, the service keeps
    /// a topic on one channel only: two links would take the topics from each other forever,
    /// so the session goes on with one (and says so).
    pub(super) fn on_taken_by_another_channel(&mut self, w: Which) {
        if !self.redundant() {
            self.lose(
                w,
                GapReason::SubscriptionDropped,
                Plan::NewChannel,
                Ending::Superseded,
            );
            return;
        }
        self.warn(ServerError::OneChannelPerTopic);
        self.topics_exclusive = true;
        let Some(r) = self.run_mut() else { return };
        r.dedup = Dedup::new(false);
        let gone = r.links.fall_back_to_one(w);
        if self.link(Which::Active).is_none() {
            let l = self.new_link();
            self.put_link(Which::Active, l);
        }
        for (l, ending) in gone {
            self.retire(
                &l,
                ending,
                GapReason::SubscriptionDropped,
                true,
                |s, t, _| {
                    s.link(Which::Active)
                        .and_then(Link::live_topics)
                        .is_some_and(|k| k.contains(t))
                },
            );
        }
    }
}
