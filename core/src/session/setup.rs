//! Bringing a link up: the channel request, the socket upgrade, and their answers.

use std::time::Duration;

use crate::error::{ProtocolError, RequestError, ServerError};
use crate::io::Action;
use crate::types::{ChannelId, ConnId, ReqId, Secret};

use super::link::{Chan, Early, Link, OpenSocket, Plan, Step, Sub, Wait, Which};
use super::liveness::{Bounds, Cadence};
use super::loss::{classify, Cause};
use super::{Shard, CHANNEL_REQUESTS_PER_MINUTE};

impl Shard {
    /// Moves a link forward where it waits on nothing but local state.
    pub(super) fn drive(&mut self, w: Which) {
        let usable = self.token_usable_for(w);
        let now = self.now;
        let held = self.other_link(w, Link::exposed);
        let Some(l) = self.link(w) else { return };
        let owed = |o: &OpenSocket| matches!(o.sub, Sub::Wanted { not_before } if not_before.is_none_or(|t| t <= now));
        match &l.step {
            Step::NeedToken if usable => self.begin(w, Plan::NewChannel),
            Step::Open(o) if owed(o) && !held => {
                if self.access_token(self.now).is_some() {
                    let max = self.cfg.max_subscription_requests_per_minute;
                    match self.budgets.subscription.take(now, max) {
                        Ok(()) => self.put_subscriptions(w),
                        Err(at) => {
                            if let Some(o) = self.link_mut(w).and_then(Link::open_mut) {
                                o.sub = Sub::Wanted {
                                    not_before: Some(at),
                                };
                            }
                        }
                    }
                }
            }
            Step::Waiting { .. }
            | Step::NeedToken
            | Step::Creating { .. }
            | Step::Connecting { .. }
            | Step::Open(_) => {}
        }
    }

    pub(super) fn begin(&mut self, w: Which, plan: Plan) {
        let now = self.now;
        let plan = match plan {
            Plan::Reconnect if self.link(w).is_some_and(|l| l.has_channel_alive(now)) => {
                Plan::Reconnect
            }
            Plan::Reconnect | Plan::NewChannel => Plan::NewChannel,
        };
        match plan {
            Plan::Reconnect => self.connect(w),
            Plan::NewChannel => self.create_channel(w),
        }
    }

    pub(super) fn create_channel(&mut self, w: Which) {
        let usable = self.token_usable_for(w);
        let now = self.now;
        let created_free_at = self
            .budgets
            .channel
            .free_at(now, self.cfg.channel_creations_per_minute());
        let requests_free_at = self
            .budgets
            .channel_requests
            .free_at(now, CHANNEL_REQUESTS_PER_MINUTE);
        let budget_free_at = created_free_at.max(requests_free_at);
        let req = ReqId::from_u64(self.fresh_id());
        let not_before = self.create_not_before;
        let Some(l) = self.link_mut(w) else { return };
        l.chan = None;
        if !usable {
            l.step = Step::NeedToken;
            return;
        }
        if let Some(until) = budget_free_at {
            l.step = Step::Waiting {
                until,
                plan: Plan::NewChannel,
                why: Wait::ChannelBudget,
            };
            return;
        }
        if not_before > now {
            l.step = Step::Waiting {
                until: not_before,
                plan: Plan::NewChannel,
                why: Wait::Backoff,
            };
            return;
        }
        let Some(t) = self.tokens.current.as_ref() else {
            return;
        };
        let (token, token_gen) = (t.value.clone(), t.gen);
        if let Some(l) = self.link_mut(w) {
            l.step = Step::Creating {
                req,
                sent: now,
                token_gen,
            };
        }
        self.budgets.channel.record(now);
        self.budgets.channel_requests.record(now);
        self.actions.push_back(Action::CreateChannel { req, token });
    }

    pub(super) fn connect(&mut self, w: Which) {
        let now = self.now;
        if let Some(until) = self
            .budgets
            .connect
            .free_at(now, self.cfg.max_connects_per_minute)
        {
            if let Some(l) = self.link_mut(w) {
                l.step = Step::Waiting {
                    until,
                    plan: Plan::Reconnect,
                    why: Wait::RequestBudget,
                };
            }
            return;
        }
        let conn = ConnId::from_u64(self.fresh_id());
        let Some(l) = self.link_mut(w) else { return };
        let Some(c) = &l.chan else { return };
        let url = c.uri.clone();
        l.step = Step::Connecting {
            conn,
            sent: now,
            early: Early::None,
        };
        self.budgets.connect.record(now);
        self.actions.push_back(Action::Connect { conn, url });
        self.early_put(w);
    }

    pub(super) fn on_channel_created(
        &mut self,
        req: ReqId,
        id: ChannelId,
        uri: Secret,
        expires_in: Duration,
    ) {
        let Some(w) = self.link_creating(req) else {
            return;
        };
        if uri.expose().is_empty() || id.as_str().is_empty() {
            self.warn(ProtocolError::BadChannel("empty id or connectUri".into()));
            self.on_create_failed(w, &RequestError::network("unusable channel answer"));
            return;
        }
        self.refusals.answered();
        if expires_in <= self.cfg.renew_lead_min {
            let failures = self.link(w).map_or(0, |l| l.failures);
            let floor = self.growing_backoff(failures);
            let delay = self.retry_later(w, Plan::NewChannel, Some(floor));
            self.warn(ServerError::ExpiredChannel {
                expires_in_ms: expires_in.as_millis() as u64,
                retry_ms: delay.as_millis() as u64,
            });
            return;
        }
        let now = self.now;
        let Some(Step::Creating { token_gen, .. }) = self.link(w).map(|l| &l.step) else {
            return;
        };
        let token_gen = *token_gen;
        if let Some(Step::Creating { sent, .. }) = self.link(w).map(|l| &l.step) {
            self.pace.round_trip(now.saturating_duration_since(*sent));
        }
        let token_expires_at = self
            .tokens
            .current
            .as_ref()
            .filter(|t| t.gen == token_gen)
            .map_or(now + expires_in, |t| t.expires_at);
        let expires_at = now + expires_in;
        let dies_at = expires_at.min(token_expires_at);
        let lifetime = dies_at - now;
        let two_steps = self.calm_ceiling(0) + self.calm_ceiling(1);
        let lead = self.pace.renewal_lead(&self.cfg, lifetime, two_steps, now);
        let jittered = self.rng.between(lead, lead * 3 / 2).min(lifetime / 2);
        let renew_at = self.apart_from_other_lane(w, dies_at - jittered, lifetime);
        let chan = Chan {
            id,
            uri,
            expires_at,
            token_gen,
            token_expires_at,
            renew_at,
        };
        if let Some(l) = self.link_mut(w) {
            l.chan = Some(chan);
        }
        self.connect(w);
    }

    pub(super) fn on_create_failed(&mut self, w: Which, error: &RequestError) {
        let (token_gen, sent) = match self.link(w).map(|l| &l.step) {
            Some(Step::Creating {
                token_gen, sent, ..
            }) => (*token_gen, *sent),
            _ => return,
        };
        // An answer with an error status made no channel. A timeout or a reset might have.
        if matches!(error, RequestError::Http { .. }) {
            self.budgets.channel.refund(sent);
        }
        match error.http_status() {
            Some(status @ (401 | 403)) => {
                if self.rest_unauthorized(status, token_gen) {
                    if let Some(l) = self.link_mut(w) {
                        l.step = Step::NeedToken;
                    }
                }
            }
            _ => {
                if let RequestError::Refused(detail) = error {
                    if self.refused("channel creation", detail) {
                        return;
                    }
                }
                let wait = self.create_not_before.saturating_duration_since(self.now);
                let next =
                    self.retry_later(w, Plan::NewChannel, Some(wait).filter(|d| !d.is_zero()));
                self.warn(error.to_server_error("channel creation", next));
            }
        }
    }

    /// Waits a backoff step before `plan`; returns the delay.
    pub(super) fn retry_later(
        &mut self,
        w: Which,
        plan: Plan,
        floor: Option<Duration>,
    ) -> Duration {
        let failures = self.link(w).map_or(0, |l| l.failures);
        let delay = self.backoff(failures, floor);
        let until = self.now + delay;
        if let Some(l) = self.link_mut(w) {
            l.failures = l.failures.saturating_add(1);
            l.step = Step::Waiting {
                until,
                plan,
                why: Wait::Backoff,
            };
        }
        delay
    }

    pub(super) fn on_opened(&mut self, conn: ConnId) {
        let Some(w) = self.link_connecting(conn) else {
            return;
        };
        let now = self.now;
        if let Some(Step::Connecting { sent, .. }) = self.link(w).map(|l| &l.step) {
            self.pace.round_trip(now.saturating_duration_since(*sent));
        }
        let cadence = Cadence::new(Bounds::new(&self.cfg));
        let Some(l) = self.link_mut(w) else { return };
        let early = match std::mem::replace(&mut l.step, Step::NeedToken) {
            Step::Connecting { early, .. } => early,
            other @ (Step::Waiting { .. }
            | Step::NeedToken
            | Step::Creating { .. }
            | Step::Open(_)) => {
                l.step = other;
                return;
            }
        };
        let mut open = OpenSocket::new(conn, now, cadence);
        let answered = match early {
            Early::None => None,
            Early::InFlight { request, again } => {
                open.sub = Sub::InFlight { request, again };
                None
            }
            Early::Answered {
                topics,
                refused,
                again,
            } => {
                open.sub = if again {
                    Sub::Wanted { not_before: None }
                } else {
                    Sub::Current
                };
                Some((topics, refused))
            }
        };
        l.step = Step::Open(open);
        // The PUT that went out beside the upgrade was answered first: the socket is live now.
        if let Some((topics, refused)) = answered {
            self.apply_subscription(w, topics, &refused);
        }
    }

    pub(super) fn on_connect_failed(&mut self, w: Which, error: &RequestError) {
        if let RequestError::Refused(detail) = error {
            if self.refused("socket upgrade", detail) {
                return;
            }
        }
        let cause = error
            .http_status()
            .map_or(Cause::Unanswered, Cause::Refused);
        let r = classify(cause, self.link(w), self.now, &self.cfg.close_codes);
        if r.auth_failure
            .is_some_and(|code| self.count_auth_failure(w, code))
        {
            return;
        }
        if r.fresher_token {
            self.want_fresher_token(w);
        }
        let next = self.retry_later(w, r.plan, error.retry_after());
        self.warn(error.to_server_error("socket upgrade", next));
    }
}
