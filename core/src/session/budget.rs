//! The per-minute request budgets: how many requests of each kind went out in the last
//! minute, and when the next one may.

use std::collections::VecDeque;
use std::time::Duration;

use crate::time::Instant;

/// The window of every per-minute request budget.
pub(super) const BUDGET_WINDOW: Duration = Duration::from_secs(60);

/// Requests of one kind sent in the last minute, against a per-minute bound.
#[derive(Debug, Default)]
pub(super) struct Budget {
    sent: VecDeque<Instant>,
}

impl Budget {
    /// Requests remembered (those of the last minute at most, plus one).
    pub(super) fn len(&self) -> usize {
        self.sent.len()
    }

    /// Records a request at `now` if the bound allows it; otherwise says when it will.
    pub(super) fn take(&mut self, now: Instant, max: u32) -> Result<(), Instant> {
        match self.free_at(now, max) {
            Some(at) => Err(at),
            None => {
                self.record(now);
                Ok(())
            }
        }
    }

    /// Records a request sent at `now` (after [`free_at`](Self::free_at) allowed it).
    pub(super) fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    /// Forgets the request sent at `sent`: it was refused and so used up nothing the budget
    /// protects.
    pub(super) fn refund(&mut self, sent: Instant) {
        if let Some(i) = self.sent.iter().rposition(|&t| t == sent) {
            self.sent.remove(i);
        }
    }

    /// `None` if a request may go out at `now`; otherwise when one may.
    pub(super) fn free_at(&mut self, now: Instant, max: u32) -> Option<Instant> {
        while self.sent.front().is_some_and(|&t| t + BUDGET_WINDOW <= now) {
            self.sent.pop_front();
        }
        if self.sent.len() >= max as usize {
            self.sent.front().map(|&t| t + BUDGET_WINDOW)
        } else {
            None
        }
    }
}

/// The per-minute budgets of the requests that are not tokens (those are in `Tokens`).
#[derive(Debug, Default)]
pub(super) struct Budgets {
    /// Channel creations that may have made a channel (a refused one is refunded): the
    /// service keeps 20 channels per user and client, so these must not evict the user's
    /// other channels.
    pub(super) channel: Budget,
    /// Every channel request, refused or not.
    pub(super) channel_requests: Budget,
    pub(super) subscription: Budget,
    pub(super) connect: Budget,
}
