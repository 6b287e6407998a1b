//! Bookkeeping for what is covered and what may be sent: the per-minute request budgets and
//! duplicate suppression while two sockets overlap.

use std::collections::{BTreeMap, VecDeque};
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

/// Duplicate suppression while two sockets overlap: a notification that arrives on both is
/// delivered once (key: topic, `CorrelationId` and body), and the keys are kept only for the
/// overlap and `dedup_linger` after it.
#[derive(Debug, Default)]
pub(super) struct Dedup {
    /// Key → tag of the link that delivered it first.
    pub(super) seen: BTreeMap<u64, u64>,
    /// Set while two sockets are open and for `dedup_linger` after.
    pub(super) until: Option<Instant>,
}

/// Notifications remembered at most by the duplicate suppression of `redundancy: 2`.
pub const MAX_DEDUP_KEYS: usize = 65_536;

/// Duplicate suppression between two live channels (`redundancy: 2`): each notification is
/// remembered for `dedup_window` after its first copy arrived, at most [`MAX_DEDUP_KEYS`] of
/// them (the oldest is forgotten first). A copy from another link while it is remembered is
/// dropped; a repeat on the same link is a new notification and is delivered.
#[derive(Debug, Default)]
pub(super) struct DedupWindow {
    /// Key → tag of the link that delivered it first.
    seen: BTreeMap<u64, u64>,
    /// Keys in arrival order, with their arrival.
    order: VecDeque<(Instant, u64)>,
    /// Keys forgotten before their window ended, because the bound was reached.
    pub(super) forgotten_early: u64,
}

impl DedupWindow {
    /// True if the notification with `key`, arriving on link `tag`, is to be delivered.
    pub(super) fn admit(&mut self, now: Instant, window: Duration, key: u64, tag: u64) -> bool {
        while let Some(&(at, k)) = self.order.front() {
            if at + window > now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&k);
        }
        if let Some(&first) = self.seen.get(&key) {
            return first == tag;
        }
        if self.order.len() >= MAX_DEDUP_KEYS {
            if let Some((_, k)) = self.order.pop_front() {
                self.seen.remove(&k);
                self.forgotten_early += 1;
            }
        }
        self.seen.insert(key, tag);
        self.order.push_back((now, key));
        true
    }

    /// Keys remembered now.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn a_copy_from_the_other_link_is_dropped_a_repeat_on_the_same_link_is_not() {
        let w = Duration::from_secs(30);
        let mut d = DedupWindow::default();
        assert!(d.admit(at(0), w, 7, 1));
        assert!(!d.admit(at(5), w, 7, 2), "the twin's copy");
        assert!(
            d.admit(at(6), w, 7, 1),
            "the same link again: a new notification"
        );
        assert!(!d.admit(at(7), w, 7, 2));
        // Past the window the key is forgotten: a late copy is delivered again.
        assert!(d.admit(at(30_001), w, 7, 2));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn the_memory_is_bounded_and_the_oldest_goes_first() {
        let w = Duration::from_secs(3600);
        let mut d = DedupWindow::default();
        for k in 0..(MAX_DEDUP_KEYS as u64 + 10) {
            assert!(d.admit(at(k), w, k, 1));
        }
        assert_eq!(d.len(), MAX_DEDUP_KEYS);
        assert_eq!(d.forgotten_early, 10);
        // Key 0 was forgotten, key 10 is still remembered.
        assert!(d.admit(at(1 << 20), w, 0, 2));
        assert!(!d.admit(at(1 << 20), w, 11, 2));
    }
}
