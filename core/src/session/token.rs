//! Tokens: the one the session holds, asking for the next one, and what an answer (or the
//! API's rejection of a token) changes.

use std::time::Duration;

use crate::error::{AuthError, RequestError, ServerError};
use crate::io::{Action, Event};
use crate::time::Instant;
use crate::types::{ReqId, Secret};

use super::budget::Budget;
use super::link::{Step, Which, SLOTS};
use super::{Shard, URGENT_TOKEN_REQUESTS_PER_MINUTE, URGENT_TOKEN_SPACING};

/// Everything about getting tokens: the one held, the request in flight, failures and when
/// the next request may go.
#[derive(Debug, Default)]
pub(super) struct Tokens {
    pub(super) current: Option<Token>,
    /// Generations issued so far (a channel remembers the generation that created it).
    pub(super) gen: u64,
    /// Failed (or useless) answers in a row; drives backoff.
    pub(super) failures: u32,
    /// No token request before this (a `Retry-After`, a backoff step, the budget).
    pub(super) retry_at: Option<Instant>,
    pub(super) budget: Budget,
}

#[derive(Debug)]
pub(super) struct Token {
    pub(super) value: Secret,
    pub(super) gen: u64,
    pub(super) issued_at: Instant,
    pub(super) expires_at: Instant,
    /// The API rejected it: never use it again.
    pub(super) stale: bool,
    /// It replaced a token the API had rejected: if the API rejects this one too while it is
    /// fresh, refreshing again would loop.
    pub(super) after_rejection: bool,
}

impl Shard {
    /// The token budget: while coverage is lost, up to one request a second; otherwise
    /// `max_token_requests_per_minute`.
    pub(super) fn token_budget(&self) -> u32 {
        let calm = self.cfg.max_token_requests_per_minute;
        if self.coverage_lost() {
            calm.max(URGENT_TOKEN_REQUESTS_PER_MINUTE)
        } else {
            calm
        }
    }

    /// While coverage is lost, token requests keep at least a second apart on average.
    pub(super) fn urgent_token_floor(&mut self) -> Duration {
        if self.coverage_lost() {
            self.rng
                .between(URGENT_TOKEN_SPACING / 2, URGENT_TOKEN_SPACING * 3 / 2)
        } else {
            Duration::ZERO
        }
    }

    pub(super) fn token_usable_for(&self, w: Which) -> bool {
        let min_gen = self.link(w).map_or(0, |l| l.min_token_gen);
        self.tokens.current.as_ref().is_some_and(|t| {
            // A token that lives no longer than the lead is still used for what it is worth.
            let lead = self
                .cfg
                .renew_lead_min
                .min((t.expires_at - t.issued_at) / 2);
            !t.stale && t.gen >= min_gen && t.expires_at > self.now + lead
        })
    }

    pub(super) fn drive_token(&mut self) {
        if self.token_req().is_some() || self.tokens.retry_at.is_some() {
            return;
        }
        let has_token = self.access_token(self.now).is_some();
        let mut needed = false;
        for w in SLOTS {
            if let Some(l) = self.link(w) {
                needed |= matches!(l.step, Step::NeedToken) && !self.token_usable_for(w);
                needed |= l.open().is_some_and(|o| o.sub.is_dirty()) && !has_token;
            }
        }
        if needed {
            let max = self.token_budget();
            if let Err(at) = self.tokens.budget.take(self.now, max) {
                self.tokens.retry_at = Some(at);
                return;
            }
            let req = ReqId::from_u64(self.fresh_id());
            self.set_token_req(Some((req, self.now)));
            self.actions.push_back(Action::RequestToken { req });
        }
    }

    pub(super) fn install_token(
        &mut self,
        value: Secret,
        expires_in: Duration,
        after_rejection: bool,
    ) {
        self.tokens.gen += 1;
        self.tokens.current = Some(Token {
            value,
            gen: self.tokens.gen,
            issued_at: self.now,
            expires_at: self.now + expires_in,
            stale: false,
            after_rejection,
        });
        self.tokens.failures = 0;
        self.tokens.retry_at = None;
    }

    pub(super) fn on_token_issued(
        &mut self,
        req: ReqId,
        token: Secret,
        expires_in: Duration,
        rotated: bool,
    ) {
        let Some((_, sent)) = self.token_req().filter(|(r, _)| *r == req) else {
            return;
        };
        self.pace
            .round_trip(self.now.saturating_duration_since(sent));
        self.set_token_req(None);
        self.refusals.answered();
        let after_rejection = self.tokens.current.as_ref().is_some_and(|t| t.stale);
        let failures = self.tokens.failures;
        self.install_token(token, expires_in, after_rejection);
        if rotated {
            self.events.push_back(Event::TokenRotated);
        }
        if expires_in <= self.cfg.renew_lead_min {
            // Asking again at once would loop: back off as after a failure.
            self.tokens.failures = failures.saturating_add(1);
            let delay = self.growing_backoff(failures);
            self.tokens.retry_at = Some(self.now + delay);
            self.warn(ServerError::ShortLivedToken {
                expires_in_ms: expires_in.as_millis() as u64,
                retry_ms: delay.as_millis() as u64,
            });
        }
    }

    pub(super) fn on_token_failed(&mut self, req: ReqId, error: RequestError) {
        if self.token_req().is_none_or(|(r, _)| r != req) {
            return;
        }
        self.set_token_req(None);
        self.tokens.failures = self.tokens.failures.saturating_add(1);
        let now = self.now;
        match &error {
            RequestError::CannotRefresh(detail) => {
                let valid_until = self
                    .access_token(self.now)
                    .and(self.tokens.current.as_ref())
                    .map(|t| t.expires_at);
                match valid_until {
                    Some(at) => {
                        self.tokens.retry_at = Some(at);
                        self.events.push_back(Event::LoginSoon {
                            reason: AuthError::WillNotRenew {
                                detail: detail.clone(),
                            },
                            expires_in: at.saturating_duration_since(now),
                        });
                    }
                    None => self.require_login(AuthError::CannotRefresh {
                        detail: detail.clone(),
                    }),
                }
            }
            RequestError::Http {
                status: 400 | 401 | 403,
                code,
                ..
            } => {
                let code = code
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {}", error.http_status().unwrap_or(0)));
                let reason = if code == "invalid_client" || code == "unauthorized_client" {
                    AuthError::ClientRejected { code }
                } else {
                    AuthError::GrantRejected { code }
                };
                self.require_login(reason);
            }
            RequestError::Refused(detail) if self.refused("token request", detail) => {}
            RequestError::Http { .. } | RequestError::Network(_) | RequestError::Refused(_) => {
                let failures = self.tokens.failures;
                if self
                    .cfg
                    .max_refresh_attempts
                    .is_some_and(|max| failures >= max)
                {
                    self.require_login(AuthError::RefreshGaveUp {
                        attempts: failures,
                        last: error.to_string(),
                    });
                    return;
                }
                // The Retry-After, if any, is already in `retry_at`; while coverage is lost
                // it is the moment to retry, not a floor under another step.
                let delay = if self.coverage_lost() && error.retry_after().is_some() {
                    self.cfg.backoff_base
                } else {
                    self.backoff(failures - 1, None)
                        .max(self.urgent_token_floor())
                };
                let at = self
                    .tokens
                    .retry_at
                    .map_or(now + delay, |t| t.max(now + delay));
                self.tokens.retry_at = Some(at);
                self.warn(error.to_server_error("token request", at - now));
            }
        }
    }

    /// An API call answered 401/403. Returns true if the session should fetch a new token and
    /// retry, false if it stopped for a login instead.
    pub(super) fn rest_unauthorized(&mut self, status: u16, token_gen: u64) -> bool {
        let now = self.now;
        let window = self.cfg.fresh_token_window;
        let Some(t) = self.tokens.current.as_mut() else {
            return true;
        };
        if t.gen != token_gen || t.stale {
            return true;
        }
        if t.after_rejection && now - t.issued_at < window {
            let reason = if status == 403 {
                AuthError::InsufficientScope
            } else {
                AuthError::TokenRejected { status }
            };
            self.require_login(reason);
            return false;
        }
        t.stale = true;
        true
    }

    /// The token of the channel `w` is on was revoked: that link renews on a newer token.
    pub(super) fn on_token_revoked(&mut self, w: Which) {
        let Some(t) = self.tokens.current.as_ref() else {
            return;
        };
        let current = t.gen;
        let gen = match self.link(w).and_then(|l| l.chan.as_ref()) {
            Some(c) if self.redundant() => c.token_gen,
            _ => current,
        };
        if gen == current {
            if let Some(t) = self.tokens.current.as_mut() {
                t.stale = true;
            }
        }
        if self.redundant() && w != Which::Standby {
            let now = self.now;
            if let Some(c) = self.link_mut(w).and_then(|l| l.chan.as_mut()) {
                c.renew_at = c.renew_at.min(now);
            }
            self.start_handover(w, gen + 1);
        } else {
            self.renew_links_on(gen);
        }
        if !self.has_standby() {
            self.drive_token();
        }
    }
}
