//! Accounting for every event the simulator published: delivered, lost inside a gap the
//! client reported, or lost outside one (a bug), plus duplicates.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::Sim;

/// What a client received, fed in as it arrives.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    delivered: BTreeMap<String, BTreeSet<u64>>,
    delivered_count: u64,
    /// Per topic, how many deliveries repeated a `seq` already seen.
    duplicates: BTreeMap<String, u64>,
    gaps: Vec<(BTreeSet<String>, SystemTime, SystemTime)>,
    login_required_at: Option<SystemTime>,
    /// When the client first said it was live: what was published and missed before then
    /// was never promised (the subscription may take effect before the socket opens).
    live_from: Option<SystemTime>,
}

/// The verdict.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Events published for the counted topics.
    pub published: u64,
    /// Published events that were received (once or more): `published = delivered +
    /// lost_inside_gaps + lost_outside_gaps`.
    pub delivered: u64,
    /// The same `(topic, seq)` received more than once, for the counted topics.
    pub duplicates: u64,
    /// Missing events published inside a reported gap (or after a login was required).
    pub lost_inside_gaps: u64,
    /// Missing events nobody was told about.
    pub lost_outside_gaps: u64,
    /// The first few unexplained sequence numbers per topic.
    pub unexplained: BTreeMap<String, Vec<u64>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// A notification as received. It is known by what the service also sends:
    /// `metadata.CorrelationId`, which the simulator writes as `sim-{seq}-{…}` with a per-topic
    /// sequence number (for the generic publisher's events and the organisation's alike).
    pub fn notification(&mut self, raw: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(raw) else {
            return;
        };
        let seq = v["metadata"]["CorrelationId"]
            .as_str()
            .and_then(|c| c.strip_prefix("sim-"))
            .and_then(|c| c.split('-').next())
            .and_then(|n| n.parse::<u64>().ok());
        let (Some(topic), Some(seq)) = (v["topicName"].as_str(), seq) else {
            return;
        };
        self.delivered_count += 1;
        if !self
            .delivered
            .entry(topic.to_owned())
            .or_default()
            .insert(seq)
        {
            *self.duplicates.entry(topic.to_owned()).or_default() += 1;
        }
    }

    /// A gap report, in wall-clock time.
    pub fn gap(
        &mut self,
        topics: impl IntoIterator<Item = String>,
        from: SystemTime,
        to: SystemTime,
    ) {
        self.gaps.push((topics.into_iter().collect(), from, to));
    }

    /// The client first said it was live at `at` (later calls are ignored): a missing event
    /// published before then is not counted.
    pub fn live(&mut self, at: SystemTime) {
        self.live_from.get_or_insert(at);
    }

    /// The client was told a login is required at `at`: later losses are explained.
    pub fn login_required(&mut self, at: SystemTime) {
        self.login_required_at.get_or_insert(at);
    }

    /// Notifications received so far (duplicates included).
    pub fn delivered(&self) -> u64 {
        self.delivered_count
    }

    /// How many gaps were reported.
    pub fn gap_count(&self) -> usize {
        self.gaps.len()
    }

    /// Checks every event published for `topics` up to `published[topic]` (take it from
    /// [`Sim::stats`] before the client stops). `slack` absorbs the difference between the
    /// server's publish instant and the client's view of a gap's edges.
    pub fn settle(
        &self,
        sim: &Sim,
        topics: &[&str],
        published: &BTreeMap<String, u64>,
        slack: Duration,
    ) -> Tally {
        let mut t = Tally::default();
        for topic in topics {
            t.duplicates += self.duplicates.get(*topic).copied().unwrap_or(0);
            let last = published.get(*topic).copied().unwrap_or(0);
            t.published += last;
            let log = sim.publish_log(topic);
            let got = self.delivered.get(*topic);
            for seq in 1..=last {
                if got.is_some_and(|g| g.contains(&seq)) {
                    t.delivered += 1;
                    continue;
                }
                let at = usize::try_from(seq - 1)
                    .ok()
                    .and_then(|i| log.get(i))
                    .map(|ms| {
                        SystemTime::UNIX_EPOCH
                            + Duration::from_millis(u64::try_from(*ms).unwrap_or(0))
                    });
                if at.zip(self.live_from).is_some_and(|(p, live)| p < live) {
                    t.published -= 1;
                    continue;
                }
                let explained = at.is_some_and(|p| {
                    self.gaps.iter().any(|(ts, from, to)| {
                        ts.contains(*topic) && p + slack >= *from && p <= *to + slack
                    }) || self.login_required_at.is_some_and(|l| p + slack >= l)
                });
                if explained {
                    t.lost_inside_gaps += 1;
                } else {
                    t.lost_outside_gaps += 1;
                    let v = t.unexplained.entry((*topic).to_owned()).or_default();
                    if v.len() < 10 {
                        v.push(seq);
                    }
                }
            }
        }
        t
    }
}
