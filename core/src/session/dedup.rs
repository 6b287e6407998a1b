//! Duplicate suppression, in the one form the session's shape calls for: off; while two
//! sockets of a link overlap during a make-before-break renewal; or all the time, over a
//! window, while two links carry every topic (`redundancy: 2`).

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use crate::time::Instant;

/// The key of a notification: its topic, `CorrelationId` and body, hashed after the session's
/// `salt`, so that a peer cannot choose notifications whose keys crowd one part of [`Seen`].
pub(super) fn key(salt: u64, topic: &str, correlation_id: Option<&str>, body: &str) -> u64 {
    let mut h = DefaultHasher::new();
    salt.hash(&mut h);
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
    Overlap { seen: Seen, until: Instant },
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
                    seen: Seen::default(),
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
                deliver: seen.get_or_insert(key, tag) == tag,
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
    seen: Seen,
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
            self.seen.remove(k);
        }
        if let Some(first) = self.seen.get(key) {
            return first == tag;
        }
        if self.order.len() >= MAX_DEDUP_KEYS {
            if let Some((_, k)) = self.order.pop_front() {
                self.seen.remove(k);
                self.forgotten_early += 1;
            }
        }
        self.seen.get_or_insert(key, tag);
        self.order.push_back((now, key));
        true
    }

    /// Keys remembered now.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }
}

/// Notification keys → the tag of the link that delivered each first: a hash table with open
/// addressing and linear probing, at most three quarters full, so that a lookup takes a few
/// probes. A slot whose tag is 0 is empty: link tags start at 1. Its code is a small part of
/// the browser build, where a B-tree map's was several kilobytes.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// (key, tag); the length is 0 or a power of two, at least [`Seen::MIN_SLOTS`].
    slots: Vec<(u64, u64)>,
    len: usize,
}

impl Seen {
    const MIN_SLOTS: usize = 16;

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// A key's first slot: the top bits of the key times 2^64/φ, which spreads even keys that
    /// differ only in their low bits.
    fn home(&self, key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - self.slots.len().trailing_zeros()))
            as usize
    }

    /// `Ok` with the slot that holds `key`, or `Err` with the empty slot where it would go.
    /// The table must have slots.
    fn find(&self, key: u64) -> Result<usize, usize> {
        let mut i = self.home(key);
        loop {
            match self.slots[i] {
                (_, 0) => return Err(i),
                (k, _) if k == key => return Ok(i),
                _ => i = (i + 1) & self.mask(),
            }
        }
    }

    /// The tag stored for `key`.
    pub(super) fn get(&self, key: u64) -> Option<u64> {
        if self.slots.is_empty() {
            return None;
        }
        self.find(key).ok().map(|i| self.slots[i].1)
    }

    /// The tag stored for `key`, `tag` (not 0) stored first if there is none.
    pub(super) fn get_or_insert(&mut self, key: u64, tag: u64) -> u64 {
        debug_assert_ne!(tag, 0, "tag 0 marks an empty slot");
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            self.resize((self.slots.len() * 2).max(Self::MIN_SLOTS));
        }
        match self.find(key) {
            Ok(i) => self.slots[i].1,
            Err(i) => {
                self.slots[i] = (key, tag);
                self.len += 1;
                tag
            }
        }
    }

    /// Forgets `key`. The entries after it in its run move back, so that no lookup stops
    /// early at the hole; a table that has emptied to an eighth shrinks by half.
    pub(super) fn remove(&mut self, key: u64) {
        if self.slots.is_empty() {
            return;
        }
        let Ok(mut hole) = self.find(key) else {
            return;
        };
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask();
            let (k, tag) = self.slots[j];
            if tag == 0 {
                break;
            }
            // The entry at j may fill the hole if the hole lies on its probe path.
            let home = self.home(k);
            if j.wrapping_sub(hole) & self.mask() <= j.wrapping_sub(home) & self.mask() {
                self.slots[hole] = (k, tag);
                hole = j;
            }
        }
        self.slots[hole] = (0, 0);
        self.len -= 1;
        if self.slots.len() > Self::MIN_SLOTS && self.len * 8 < self.slots.len() {
            self.resize(self.slots.len() / 2);
        }
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); slots]);
        for (k, tag) in old.into_iter().filter(|&(_, tag)| tag != 0) {
            if let Err(i) = self.find(k) {
                self.slots[i] = (k, tag);
            }
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
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

    #[test]
    fn the_table_agrees_with_a_standard_map_through_growth_removal_and_shrinking() {
        use std::collections::BTreeMap;
        let mut rng = crate::rng::Rng::new(42);
        let (mut seen, mut model) = (Seen::default(), BTreeMap::new());
        // Keys from a small space, so that removals hit and keys come back: seven in eight
        // uniform over 5,000 values, one in eight among 64 small ones. At up to three
        // quarters full, runs form, so removals shift entries back.
        for round in 0..40_000u64 {
            let key = match round % 8 {
                0 => rng.next_u64() % 64,
                _ => crate::rng::Rng::new(rng.next_u64() % 5_000).next_u64(),
            };
            if rng.next_u64().is_multiple_of(3) {
                seen.remove(key);
                model.remove(&key);
            } else {
                let tag = 1 + round % 4;
                assert_eq!(
                    seen.get_or_insert(key, tag),
                    *model.entry(key).or_insert(tag)
                );
            }
            assert_eq!(seen.len(), model.len(), "round {round}");
        }
        for (&k, &tag) in &model {
            assert_eq!(seen.get(k), Some(tag));
        }
        let peak = seen.slots.len();
        for k in model.keys().copied().collect::<Vec<_>>() {
            seen.remove(k);
            assert_eq!(seen.get(k), None);
        }
        assert_eq!(seen.len(), 0);
        assert!(
            seen.slots.len() < peak,
            "an emptied table gives memory back"
        );
        assert_eq!(seen.slots.len(), Seen::MIN_SLOTS);
    }
}
