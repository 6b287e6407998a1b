//! The gap ledger: which wanted topics are not covered now and since when, and which topics
//! the service refused. It owns every change to both; the session tells it what happened.
//!
//! A topic enters the ledger when the session loses its coverage ([`Ledger::lose`]); the first
//! loss names the start and the reason, later ones do not move them. It leaves with a `Gap`
//! event when a live socket covers it again ([`Ledger::recover`]), when the session stops
//! ([`Ledger::end_all`]), or without a report when the application no longer wants it.

use std::collections::VecDeque;

use crate::io::{Event, GapReason};
use crate::sorted::{SortedMap, SortedSet};
use crate::time::Instant;
use crate::types::Topic;

#[derive(Debug, Default)]
pub(super) struct Ledger {
    /// Wanted topics without coverage: since when, and why.
    uncovered: SortedMap<Topic, (Instant, GapReason)>,
    /// Topics the service refused, with its reason.
    rejected: SortedMap<String, String>,
}

impl Ledger {
    /// Topics not covered now.
    pub(super) fn uncovered_len(&self) -> usize {
        self.uncovered.len()
    }

    /// Topics refused now.
    pub(super) fn rejected_len(&self) -> usize {
        self.rejected.len()
    }

    /// True when every topic that was covered still is.
    pub(super) fn is_clear(&self) -> bool {
        self.uncovered.is_empty()
    }

    /// The start of the oldest stretch still open.
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.uncovered.values().map(|(from, _)| *from).min()
    }

    /// Coverage of `topic` ended at `from` for `reason`, unless it had already ended.
    pub(super) fn lose(&mut self, topic: &Topic, from: Instant, reason: GapReason) {
        if !self.uncovered.contains_key(topic) {
            self.uncovered.insert(topic.clone(), (from, reason));
        }
    }

    /// The application asked for `topic` again: an old refusal no longer stands.
    pub(super) fn asked_again(&mut self, topic: &Topic) {
        self.rejected.remove(topic.as_str());
    }

    /// The application no longer wants `topic`: its stretch and its refusal are forgotten.
    pub(super) fn forget(&mut self, topic: &Topic) {
        self.uncovered.remove(topic);
        self.rejected.remove(topic.as_str());
    }

    /// Keeps only the stretches of topics in `wanted`.
    pub(super) fn keep_wanted(&mut self, wanted: &SortedSet<Topic>) {
        self.uncovered.retain(|t, _| wanted.contains(t));
    }

    /// The service refused `topic` for `reason`. True if that is news (a new refusal or a new
    /// reason), which the application is told about.
    pub(super) fn reject(&mut self, topic: &str, reason: &str) -> bool {
        if self.rejected.get(topic).map(String::as_str) == Some(reason) {
            return false;
        }
        self.rejected.insert(topic.to_owned(), reason.to_owned());
        true
    }

    /// The service accepted these topics: their refusals no longer stand.
    pub(super) fn accepted(&mut self, topics: &SortedSet<Topic>) {
        self.rejected
            .retain(|t, _| !topics.iter().any(|p| p.as_str() == t));
    }

    /// Topics that `covered` says are covered again leave the ledger: one `Gap` per (start,
    /// reason), ending `now`, in that order, each with its topics sorted.
    pub(super) fn recover(
        &mut self,
        now: Instant,
        covered: impl Fn(&Topic) -> bool,
        events: &mut VecDeque<Event>,
    ) {
        if self.uncovered.is_empty() {
            return;
        }
        let back: Vec<Topic> = self
            .uncovered
            .keys()
            .filter(|t| covered(t))
            .cloned()
            .collect();
        let mut groups: SortedMap<(Instant, GapReason), Vec<Topic>> = SortedMap::new();
        for t in back {
            if let Some(k) = self.uncovered.remove(&t) {
                groups.get_or_insert_with(k, Vec::new).push(t);
            }
        }
        push_gaps(groups, now, false, events);
    }

    /// The session stops: every open stretch ends `now` and is reported.
    pub(super) fn end_all(&mut self, now: Instant, events: &mut VecDeque<Event>) {
        let mut groups: SortedMap<(Instant, GapReason), Vec<Topic>> = SortedMap::new();
        for (t, (from, reason)) in std::mem::take(&mut self.uncovered) {
            groups.get_or_insert_with((from, reason), Vec::new).push(t);
        }
        push_gaps(groups, now, true, events);
    }
}

fn push_gaps(
    groups: SortedMap<(Instant, GapReason), Vec<Topic>>,
    now: Instant,
    clamp: bool,
    events: &mut VecDeque<Event>,
) {
    for ((from, reason), topics) in groups {
        events.push_back(Event::Gap {
            topics,
            from: if clamp { from.min(now) } else { from },
            to: now,
            reason,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn t(s: &str) -> Topic {
        Topic::new(s).unwrap()
    }

    fn at(s: u64) -> Instant {
        Instant::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn the_first_loss_names_the_start_and_recovery_groups_by_start_and_reason() {
        let mut l = Ledger::default();
        l.lose(&t("v2.a"), at(1), GapReason::SocketLost);
        l.lose(&t("v2.a"), at(2), GapReason::Maintenance);
        l.lose(&t("v2.b"), at(1), GapReason::SocketLost);
        l.lose(&t("v2.c"), at(3), GapReason::Rejected);
        let mut ev = VecDeque::new();
        l.recover(at(5), |x| x.as_str() != "v2.c", &mut ev);
        assert_eq!(ev.len(), 1);
        assert!(
            matches!(&ev[0], Event::Gap { topics, from, to, reason: GapReason::SocketLost }
            if topics.len() == 2 && *from == at(1) && *to == at(5))
        );
        assert_eq!(l.uncovered_len(), 1);
        ev.clear();
        // A start after the end (time that went backwards elsewhere) is cut to the end.
        l.end_all(at(2), &mut ev);
        assert!(matches!(&ev[0], Event::Gap { from, to, .. } if from == to));
        assert!(l.is_clear());
    }

    #[test]
    fn a_refusal_is_news_once_per_reason() {
        let mut l = Ledger::default();
        assert!(l.reject("v2.a", "no"));
        assert!(!l.reject("v2.a", "no"));
        assert!(l.reject("v2.a", "other"));
        l.accepted(&[t("v2.a")].into_iter().collect());
        assert_eq!(l.rejected_len(), 0);
    }
}
