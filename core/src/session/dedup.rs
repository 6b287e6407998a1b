//! Duplicate suppression, in the one form the session's shape calls for: off; while two
//! sockets of a link overlap during a make-before-break renewal; or all the time, over a
//! window, while two links carry every topic (`redundancy: 2`).

use std::collections::{BTreeMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use crate::time::Instant;

/// The key of a notification: its topic, `CorrelationId` and body.
pub(super) fn key(topic: &str, correlation_id: Option<&str>, body: &str) -> u64 {
    let mut h = DefaultHasher::new();
    topic.hash(&mut h);
    correlation_id.hash(&mut h);
    body.hash(&mut h);
    h.finish()
}

#[derive(Debug)]
pub(super) enum Dedup {
    /// One socket carries each topic: every notification is delivered.
    Off,
    /// Two sockets overlap (a renewal): a notification that arrives on both is delivered once.
    /// The keys are kept for the overlap and `dedup_linger` after it, until `until`.
    Overlap {
        /// Key → tag of the link that delivered it first.
        seen: BTreeMap<u64, u64>,
        until: Instant,
    },
    /// Two links carry every topic: always on, over `dedup_window`.
    Window(Box<DedupWindow>),
}

/// What to do with a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verdict {
    /// No other link delivered it already.
    pub(super) deliver: bool,
    /// The window's bound was reached for the first time: the application is told once that
    /// a late copy may come through twice.
    pub(super) bound_reached: bool,
}

impl Dedup {
    /// The form for one link (`Off`) or two (`Window`).
    pub(super) fn new(two_links: bool) -> Dedup {
        if two_links {
            Dedup::Window(Box::default())
        } else {
            Dedup::Off
        }
    }

    /// Two sockets of a link overlap: suppression holds until `until` at least. Two links
    /// already suppress all the time.
    pub(super) fn overlap_until(&mut self, until: Instant) {
        match self {
            Dedup::Off => {
                *self = Dedup::Overlap {
                    seen: BTreeMap::new(),
                    until,
                }
            }
            Dedup::Overlap { until: u, .. } => *u = until,
            Dedup::Window(_) => {}
        }
    }

    /// Whether notifications are checked at all.
    pub(super) fn is_on(&self) -> bool {
        !matches!(self, Dedup::Off)
    }

    /// When an overlap's keys are forgotten.
    pub(super) fn expires_at(&self) -> Option<Instant> {
        match self {
            Dedup::Overlap { until, .. } => Some(*until),
            Dedup::Off | Dedup::Window(_) => None,
        }
    }

    /// The overlap ended and lingered: its keys are forgotten.
    pub(super) fn end_overlap(&mut self) {
        if matches!(self, Dedup::Overlap { .. }) {
            *self = Dedup::Off;
        }
    }

    /// Whether the notification with `key`, arriving on link `tag`, is delivered.
    pub(super) fn admit(&mut self, now: Instant, window: Duration, key: u64, tag: u64) -> Verdict {
        match self {
            Dedup::Off => Verdict {
                deliver: true,
                bound_reached: false,
            },
            Dedup::Overlap { seen, .. } => Verdict {
                deliver: *seen.entry(key).or_insert(tag) == tag,
                bound_reached: false,
            },
            Dedup::Window(w) => {
                let deliver = w.admit(now, window, key, tag);
                let bound_reached = w.forgotten_early > 0 && !w.warned;
                w.warned |= bound_reached;
                Verdict {
                    deliver,
                    bound_reached,
                }
            }
        }
    }

    /// Keys remembered now: (overlap, window).
    pub(super) fn lens(&self) -> (usize, usize) {
        match self {
            Dedup::Off => (0, 0),
            Dedup::Overlap { seen, .. } => (seen.len(), 0),
            Dedup::Window(w) => (0, w.len()),
        }
    }
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
    /// The application was told about the bound.
    warned: bool,
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
