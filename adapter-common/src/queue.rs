//! The bounded event queue between an adapter's driver and the application, with the one
//! overflow policy every adapter shares.
//!
//! The driver never waits for the application. The queue is bounded twice: by a count of
//! events (`capacity`) and by the bytes its notifications hold (`byte_budget`: a notification
//! can be megabytes, so a count alone does not bound memory). When a new notification would
//! pass either bound, the oldest queued notifications are pushed out (one larger than the
//! whole budget is dropped itself); the dropped ones are reported as one
//! [`GapReason::Overflow`] gap, handed out before the next event. The gap names the dropped
//! notifications' topics that the application subscribed to (see [`EventQueue::set_topics`]);
//! a name the server chose but nobody subscribed to is not kept. When the queue holds
//! `capacity` events:
//! - a new warning is not queued but counted, and handed out as one warning with the count;
//! - any other event pushes out the oldest notification, else the oldest warning, else the
//!   oldest status change (a later one supersedes it). Past twice the capacity, the two
//!   oldest gaps are merged into one that spans both: a gap is never lost, only widened.
//!
//! This type holds the policy only; each adapter wraps it with its own lock and wake-up.

use std::collections::{BTreeSet, VecDeque};

use genesys_notify_core::{Error, Event, GapReason, Instant, LocalError, Topic};

/// The default byte budget of an adapter's queue: room for a few of the largest frames the
/// adapters accept by default, and far more than thousands of ordinary notifications.
pub const DEFAULT_QUEUE_BYTES: usize = 32 << 20;

/// The largest socket frame the adapters accept by default. The service documents no limit; a
/// notification describes one entity's change (a presence, a conversation with its
/// participants) and is a few kilobytes, rarely tens. 4 MiB leaves wide room for the unusual
/// one while bounding what a single frame can cost; a larger frame drops the socket and the
/// session reports the gap.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 4 << 20;

/// Before [`EventQueue::set_topics`] is called, the most topic names an overflow gap keeps.
const MAX_NAMES_UNSET: usize = 1_000;

/// Notifications dropped since the application last read, as one gap.
#[derive(Debug)]
struct Overflow {
    topics: BTreeSet<Topic>,
    from: Instant,
    to: Instant,
}

/// A bounded queue of session events with the shared overflow policy.
#[derive(Debug)]
pub struct EventQueue {
    items: VecDeque<(Instant, Event)>,
    capacity: usize,
    byte_budget: usize,
    /// Bytes the queued notifications hold (topic and raw text).
    bytes: usize,
    /// The application's topics: only these are named in an overflow gap.
    topics: Option<BTreeSet<Topic>>,
    overflow: Option<Overflow>,
    dropped_warnings: u64,
    closed: bool,
}

/// The bytes an event holds that count against the budget.
fn cost(e: &Event) -> usize {
    match e {
        Event::Notification { topic, raw } => topic.len() + raw.len(),
        _ => 0,
    }
}

impl EventQueue {
    /// A queue that holds `capacity` events (at least 1) and [`DEFAULT_QUEUE_BYTES`] of
    /// notifications before the policy applies.
    pub fn new(capacity: usize) -> EventQueue {
        EventQueue {
            items: VecDeque::new(),
            capacity: capacity.max(1),
            byte_budget: DEFAULT_QUEUE_BYTES,
            bytes: 0,
            topics: None,
            overflow: None,
            dropped_warnings: 0,
            closed: false,
        }
    }

    /// Sets the bytes of notifications held before the oldest are dropped (at least 1).
    #[must_use]
    pub fn with_byte_budget(mut self, bytes: usize) -> EventQueue {
        self.byte_budget = bytes.max(1);
        self
    }

    /// The application's topics now: an overflow gap names only these. Adapters call it
    /// whenever the session's topic set changes.
    pub fn set_topics<'t>(&mut self, topics: impl IntoIterator<Item = &'t Topic>) {
        self.topics = Some(topics.into_iter().cloned().collect());
    }

    /// Bytes the queued notifications hold now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Events queued now (pending overflow and warning reports not included).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is queued or pending.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.overflow.is_none() && self.dropped_warnings == 0
    }

    /// Queues `event`, which the session emitted at `at`, applying the overflow policy.
    pub fn push(&mut self, at: Instant, event: Event) {
        let size = cost(&event);
        if size > 0 {
            while self.bytes + size > self.byte_budget
                && self.drop_oldest(|e| matches!(e, Event::Notification { .. }))
            {}
            if self.bytes + size > self.byte_budget {
                // Larger than the whole budget: it goes the way of the ones it would push out.
                if let Event::Notification { topic, .. } = &event {
                    self.note_dropped(at, topic);
                }
                return;
            }
        }
        if self.items.len() >= self.capacity {
            match &event {
                Event::Warning(_) => {
                    self.dropped_warnings += 1;
                    return;
                }
                Event::Notification { .. } => {
                    self.drop_oldest(|e| matches!(e, Event::Notification { .. }));
                }
                _ => {
                    let _ = self.drop_oldest(|e| matches!(e, Event::Notification { .. }))
                        || self.drop_oldest(|e| matches!(e, Event::Warning(_)))
                        || self.drop_oldest(|e| matches!(e, Event::Status(_)));
                }
            }
        }
        self.bytes += size;
        self.items.push_back((at, event));
        if self.items.len() > self.capacity.saturating_mul(2) {
            self.merge_oldest_gaps();
        }
    }

    /// The event at `i`, taken out of the queue and the byte count.
    fn remove(&mut self, i: usize) -> Option<(Instant, Event)> {
        let taken = self.items.remove(i)?;
        self.bytes -= cost(&taken.1);
        Some(taken)
    }

    /// A notification of `topic` from `when` is given up: the overflow gap covers it.
    fn note_dropped(&mut self, when: Instant, topic: &str) {
        let o = self.overflow.get_or_insert(Overflow {
            topics: BTreeSet::new(),
            from: when,
            to: when,
        });
        o.from = o.from.min(when);
        o.to = o.to.max(when);
        let Ok(t) = Topic::new(topic) else { return };
        let named = match &self.topics {
            Some(mine) => mine.contains(&t),
            None => o.topics.len() < MAX_NAMES_UNSET,
        };
        if named {
            o.topics.insert(t);
        }
    }

    /// Removes the oldest event that `which` selects; true if there was one.
    fn drop_oldest(&mut self, which: impl Fn(&Event) -> bool) -> bool {
        let Some(i) = self.items.iter().position(|(_, e)| which(e)) else {
            return false;
        };
        match self.remove(i) {
            Some((when, Event::Notification { topic, .. })) => self.note_dropped(when, &topic),
            Some((_, Event::Warning(_))) => self.dropped_warnings += 1,
            Some(_) | None => {}
        }
        true
    }

    fn merge_oldest_gaps(&mut self) {
        let mut gaps = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, (_, e))| matches!(e, Event::Gap { .. }))
            .map(|(i, _)| i);
        let (Some(first), Some(second)) = (gaps.next(), gaps.next()) else {
            // Nothing left to merge: drop the oldest event that is not a gap.
            if let Some(i) = self
                .items
                .iter()
                .position(|(_, e)| !matches!(e, Event::Gap { .. } | Event::Fatal(_)))
            {
                self.remove(i);
            }
            return;
        };
        let Some((_, later)) = self.remove(second) else {
            return;
        };
        if let (
            Some((
                _,
                Event::Gap {
                    topics, from, to, ..
                },
            )),
            Event::Gap {
                topics: t2,
                from: f2,
                to: to2,
                ..
            },
        ) = (self.items.get_mut(first), later)
        {
            let mut all: BTreeSet<Topic> = topics.drain(..).collect();
            all.extend(t2);
            *topics = all.into_iter().collect();
            *from = (*from).min(f2);
            *to = (*to).max(to2);
        }
    }

    /// The next event for the application: a pending overflow gap first, then a count of
    /// dropped warnings, then the queue in order.
    pub fn pop(&mut self) -> Option<Event> {
        if let Some(o) = self.overflow.take() {
            return Some(Event::Gap {
                topics: o.topics.into_iter().collect(),
                from: o.from,
                to: o.to,
                reason: GapReason::Overflow,
            });
        }
        if self.dropped_warnings > 0 {
            let n = std::mem::take(&mut self.dropped_warnings);
            return Some(Event::Warning(Error::Local(LocalError::WarningsDropped {
                count: n,
            })));
        }
        let (_, e) = self.items.pop_front()?;
        self.bytes -= cost(&e);
        Some(e)
    }

    /// No more events will be pushed.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// True once closed: the driver has ended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True once closed and everything was read.
    pub fn is_finished(&self) -> bool {
        self.closed && self.is_empty()
    }

    /// Gives up on delivering the queued notifications (the application is exiting and can
    /// no longer take them): they become one overflow gap, handed out first, and the other
    /// events stay.
    pub fn abandon_notifications(&mut self) {
        while self.drop_oldest(|e| matches!(e, Event::Notification { .. })) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use genesys_notify_core::Status;

    fn note(topic: &str, n: u64) -> Event {
        Event::Notification {
            topic: topic.to_owned(),
            raw: format!("{{\"n\":{n}}}"),
        }
    }

    fn warning(n: u64) -> Event {
        Event::Warning(Error::Local(LocalError::PersistFailed {
            detail: format!("w{n}"),
        }))
    }

    #[test]
    fn a_full_queue_drops_the_oldest_notifications_and_reports_them_first() {
        let mut q = EventQueue::new(3);
        for n in 0..10 {
            q.push(Instant::from_millis(n), note("v2.users.a.presence", n));
        }
        assert_eq!(q.len(), 3);
        match q.pop() {
            Some(Event::Gap {
                topics,
                from,
                to,
                reason,
            }) => {
                assert_eq!(reason, GapReason::Overflow);
                assert_eq!(topics.len(), 1);
                assert_eq!(
                    (from, to),
                    (Instant::from_millis(0), Instant::from_millis(6))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(q.pop(), Some(note("v2.users.a.presence", 7)));
    }

    fn big(topic: &str, n: u64, bytes: usize) -> Event {
        Event::Notification {
            topic: topic.to_owned(),
            raw: format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(bytes)),
        }
    }

    #[test]
    fn large_notifications_are_bounded_by_bytes_not_only_by_count() {
        let mut q = EventQueue::new(1024).with_byte_budget(10_000);
        q.set_topics(&[Topic::new("v2.users.a.presence").unwrap()]);
        for n in 0..100 {
            q.push(
                Instant::from_millis(n),
                big("v2.users.a.presence", n, 3_000),
            );
            assert!(q.bytes() <= 10_000, "{} bytes after {n}", q.bytes());
        }
        assert_eq!(q.len(), 3, "three of 3 KB fit in 10 KB");
        match q.pop() {
            Some(Event::Gap {
                topics,
                from,
                to,
                reason: GapReason::Overflow,
            }) => {
                assert_eq!(topics, [Topic::new("v2.users.a.presence").unwrap()]);
                assert_eq!(
                    (from, to),
                    (Instant::from_millis(0), Instant::from_millis(96))
                );
            }
            other => panic!("{other:?}"),
        }
        while q.pop().is_some() {}
        assert_eq!(q.bytes(), 0);

        // One larger than the whole budget is dropped itself, and reported.
        q.push(
            Instant::from_millis(200),
            big("v2.users.a.presence", 200, 20_000),
        );
        assert_eq!(q.len(), 0);
        assert!(matches!(q.pop(), Some(Event::Gap { .. })));
    }

    #[test]
    fn an_overflow_gap_names_only_subscribed_topics() {
        let mut q = EventQueue::new(2);
        q.set_topics(&[Topic::new("v2.users.a.presence").unwrap()]);
        q.push(Instant::ZERO, note("v2.users.a.presence", 0));
        for n in 0..10_000 {
            // Names the server chose: none was subscribed.
            q.push(
                Instant::from_millis(n),
                note(&format!("v2.users.x{n}.presence"), n),
            );
        }
        match q.pop() {
            Some(Event::Gap { topics, .. }) => {
                assert_eq!(topics, [Topic::new("v2.users.a.presence").unwrap()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn warnings_are_counted_not_queued_when_full() {
        let mut q = EventQueue::new(2);
        q.push(Instant::ZERO, Event::Status(Status::Live));
        q.push(Instant::ZERO, Event::Status(Status::Recovering));
        for n in 0..12_345 {
            q.push(Instant::ZERO, warning(n));
        }
        assert_eq!(q.len(), 2);
        match q.pop() {
            Some(Event::Warning(w)) => assert!(w.to_string().starts_with("12345 warnings dropped")),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.pop(), Some(Event::Status(Status::Live)));
    }

    #[test]
    fn gaps_are_never_dropped_only_merged() {
        let mut q = EventQueue::new(2);
        for n in 0..100u64 {
            q.push(
                Instant::ZERO,
                Event::Gap {
                    topics: vec![Topic::new(format!("v2.users.u{n}.presence")).unwrap()],
                    from: Instant::from_millis(n),
                    to: Instant::from_millis(n + 1),
                    reason: GapReason::SocketLost,
                },
            );
        }
        assert!(q.len() <= 4, "{}", q.len());
        let mut topics = 0;
        let (mut first, mut last) = (Instant::from_secs(999), Instant::ZERO);
        while let Some(e) = q.pop() {
            if let Event::Gap {
                topics: t,
                from,
                to,
                ..
            } = e
            {
                topics += t.len();
                first = first.min(from);
                last = last.max(to);
            }
        }
        assert_eq!(topics, 100);
        assert_eq!((first, last), (Instant::ZERO, Instant::from_millis(100)));
    }

    #[test]
    fn abandoning_turns_notifications_into_one_gap() {
        let mut q = EventQueue::new(10);
        q.push(Instant::from_millis(1), note("v2.users.a.presence", 1));
        q.push(Instant::from_millis(2), Event::Status(Status::Recovering));
        q.push(Instant::from_millis(3), note("v2.users.b.presence", 2));
        q.close();
        q.abandon_notifications();
        assert!(matches!(q.pop(), Some(Event::Gap { topics, .. }) if topics.len() == 2));
        assert_eq!(q.pop(), Some(Event::Status(Status::Recovering)));
        assert!(q.is_finished());
    }
}
