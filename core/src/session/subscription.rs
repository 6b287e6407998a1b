//! The subscription PUT: when a link sends one (beside the upgrade or once open), what it
//! carries, and what its answer changes.

use crate::error::RequestError;
use crate::io::{Action, Event, GapReason, TopicResult};
use crate::sorted::{SortedMap, SortedSet};
use crate::types::{ReqId, Topic};

use super::link::{Early, Link, Plan, Step, Sub, SubRequest, Which, SLOTS};
use super::loss::Ending;
use super::Shard;

impl Shard {
    /// Sends the subscription PUT beside the upgrade, if a token and the budget allow — on a
    /// first or second attempt only: while upgrades keep failing, a PUT beside each would be
    /// wasted, so it waits for the socket.
    pub(super) fn early_put(&mut self, w: Which) {
        let now = self.now;
        let retrying = self.link(w).is_some_and(|l| l.failures > 1);
        if retrying || self.access_token(self.now).is_none() {
            return;
        }
        // Subscription PUTs are ordered so that none can land while another of this client's
        // channels holds topics without a socket: a service that keeps each topic on one channel
        // tells the channel it takes them from on that channel's socket, and a channel without
        // one would lose them unseen while its link claims them. A PUT beside the upgrade is
        // such a channel, so it goes out only while no other PUT is in flight, and other links'
        // PUTs wait until its socket opens (`drive`).
        if self.other_link(w, |l| l.exposed() || l.put_in_flight()) {
            return;
        }
        let max = self.cfg.max_subscription_requests_per_minute;
        if self.budgets.subscription.free_at(now, max).is_some() {
            return;
        }
        let Some(put) = self.subscription_put(w) else {
            return;
        };
        self.budgets.subscription.record(now);
        if w == Which::Standby {
            self.reset_handover_proof();
        }
        if let Some(Step::Connecting { early, .. }) = self.link_mut(w).map(|l| &mut l.step) {
            *early = Early::InFlight {
                request: put.1,
                again: false,
            };
        }
        self.actions.push_back(put.0);
    }

    /// A PUT of the whole desired set to this link's channel, and its record.
    pub(super) fn subscription_put(&mut self, w: Which) -> Option<(Action, SubRequest)> {
        let req = ReqId::from_u64(self.fresh_id());
        let topics: Vec<Topic> = self.topics.iter().cloned().collect();
        let t = self.tokens.current.as_ref()?;
        let (token, token_gen) = (t.value.clone(), t.gen);
        let channel = self.link(w)?.chan.as_ref()?.id.clone();
        let request = SubRequest {
            req,
            sent: self.now,
            topics: topics.clone(),
            token_gen,
        };
        let action = Action::PutSubscriptions {
            req,
            channel,
            topics,
            token,
        };
        Some((action, request))
    }

    pub(super) fn put_subscriptions(&mut self, w: Which) {
        if self.link(w).and_then(Link::open).is_none() {
            return;
        }
        let Some((action, request)) = self.subscription_put(w) else {
            return;
        };
        let Some(o) = self.link_mut(w).and_then(Link::open_mut) else {
            return;
        };
        // A topic left out of this PUT stops being covered when the server applies it.
        o.server_topics.retain(|t| request.topics.contains(t));
        o.sub = Sub::InFlight {
            request,
            again: false,
        };
        // A proof the old socket gave before this PUT says nothing about what it carries
        // until the PUT applies.
        if w == Which::Standby {
            self.reset_handover_proof();
        }
        self.actions.push_back(action);
    }

    pub(super) fn topics_changed(&mut self) {
        for w in SLOTS {
            match self.link_mut(w).map(|l| &mut l.step) {
                Some(Step::Open(o)) => o.sub.mark_dirty(),
                Some(Step::Connecting { early, .. }) => early.mark_dirty(),
                Some(Step::Waiting { .. } | Step::NeedToken | Step::Creating { .. }) | None => {}
            }
        }
        self.ledger.keep_wanted(&self.topics);
    }

    pub(super) fn on_subscribed(&mut self, req: ReqId, results: Vec<TopicResult>) {
        let Some(w) = self.link_subscribing(req) else {
            return;
        };
        if let Some(Step::Connecting { early, .. }) = self.link_mut(w).map(|l| &mut l.step) {
            // Answered before the upgrade finished: kept until the socket opens.
            if let Early::InFlight { request, again } = std::mem::replace(early, Early::None) {
                let refused = results
                    .into_iter()
                    .filter_map(|r| r.rejected.map(|why| (r.topic, why)))
                    .collect();
                *early = Early::Answered {
                    topics: request.topics,
                    refused,
                    again,
                };
            }
            self.refusals.answered();
            return;
        }
        let Some(sub) = self.take_sub_request(w) else {
            return;
        };
        self.refusals.answered();
        let refused: SortedMap<String, String> = results
            .into_iter()
            .filter_map(|r| r.rejected.map(|why| (r.topic, why)))
            .collect();
        self.apply_subscription(w, sub.topics, &refused);
    }

    pub(super) fn apply_subscription(
        &mut self,
        w: Which,
        sent: Vec<Topic>,
        refused: &SortedMap<String, String>,
    ) {
        // Only topics this request sent: a server that lists others must not grow the map.
        let asked: SortedSet<&str> = sent.iter().map(Topic::as_str).collect();
        for (topic, reason) in refused.iter() {
            if !asked.contains(topic.as_str()) {
                continue;
            }
            if self.ledger.reject(topic, reason) {
                self.events.push_back(Event::TopicRejected {
                    topic: topic.clone(),
                    reason: reason.clone(),
                });
            }
        }
        let now = self.now;
        let Some(o) = self.link_mut(w).and_then(Link::open_mut) else {
            return;
        };
        let accepted: SortedSet<Topic> = sent
            .into_iter()
            .filter(|t| !refused.contains_key(t.as_str()))
            .collect();
        let dropped: Vec<Topic> = if w != Which::Standby && o.is_live() {
            o.server_topics.difference(&accepted).cloned().collect()
        } else {
            Vec::new()
        };
        o.server_topics = accepted;
        // A socket's first ping goes out as it goes live: its pong tells how long pongs take
        // on it, so a busy socket that later falls silent is judged by its own round trip.
        let probe = o.live_since.is_none() && o.alive.pings_out == 0;
        o.live_since.get_or_insert(now);
        let owes_a_put = o.sub.is_dirty();
        let permitted = o.server_topics.clone();
        for t in dropped.into_iter().filter(|t| self.topics.contains(t)) {
            if !self.covered_elsewhere(w, &t) {
                self.ledger.lose(&t, now, GapReason::Rejected);
            }
        }
        self.ledger.accepted(&permitted);
        // The standby takes over only once it covers the whole current set; a change made
        // while its first PUT was in flight goes out first.
        if w == Which::Standby && !owes_a_put {
            self.standby_ready();
        }
        if probe {
            self.ping(w);
            // With two links, the other live sockets answer a ping too: their pong proves
            // that they delivered everything sent before this one went live, so that this
            // one may cover for them from then on.
            if self.redundant() {
                for x in SLOTS {
                    if x != w && self.link(x).is_some_and(Link::is_live) {
                        self.ping(x);
                    }
                }
            }
        }
    }

    /// The PUT in flight on `w`'s open socket, which just ended (answered or failed).
    fn take_sub_request(&mut self, w: Which) -> Option<SubRequest> {
        self.link_mut(w)
            .and_then(Link::open_mut)
            .and_then(|o| o.sub.take_request())
    }

    pub(super) fn on_subscribe_failed(&mut self, w: Which, error: &RequestError) {
        if let Some(Step::Connecting { early, .. }) = self.link_mut(w).map(|l| &mut l.step) {
            // The PUT beside the upgrade failed: once open, the socket sends its own, and
            // whatever this failure means is met there.
            *early = Early::None;
            return;
        }
        let Some(sub) = self.take_sub_request(w) else {
            return;
        };
        match error.http_status() {
            Some(status @ (401 | 403)) => {
                if self.rest_unauthorized(status, sub.token_gen) {
                    if let Some(o) = self.link_mut(w).and_then(Link::open_mut) {
                        o.sub.mark_dirty();
                    }
                }
            }
            Some(404) => self.lose(w, GapReason::SocketLost, Plan::NewChannel, Ending::GivenUp),
            Some(400) => {
                let why = "the server refused the subscription request (HTTP 400)".to_owned();
                let refused = sub
                    .topics
                    .iter()
                    .map(|t| (t.as_str().to_owned(), why.clone()))
                    .collect();
                self.apply_subscription(w, sub.topics, &refused);
            }
            _ => {
                if let RequestError::Refused(detail) = error {
                    if self.refused("subscription", detail) {
                        return;
                    }
                }
                let failures = self.link(w).map_or(0, |l| l.failures);
                let delay = self.backoff(failures, error.retry_after());
                self.warn(error.to_server_error("subscription", delay));
                let until = self.now + delay;
                if let Some(l) = self.link_mut(w) {
                    l.failures = l.failures.saturating_add(1);
                    if let Some(o) = l.open_mut() {
                        o.sub = Sub::Wanted {
                            not_before: Some(until),
                        };
                    }
                }
            }
        }
    }
}
