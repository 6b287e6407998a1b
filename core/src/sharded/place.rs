//! Where each of the application's topics lives: which shard carries it, and under which
//! name the service knows it (the topic itself, or a combined id that includes it).

use super::combine;
use crate::config::Config;
use crate::error::UsageError;
use crate::io::{Input, TopicResult};
use crate::sorted::{SortedMap, SortedSet};
use crate::types::{Topic, MAX_TOPIC_LEN};

/// New topics and where they go: (topic, index among the shards, new ones last).
#[derive(Debug)]
pub(super) struct Plan {
    topics: Vec<(Topic, usize)>,
    pub(super) new_shards: usize,
}

#[derive(Debug)]
pub(super) struct Placement {
    per_channel: usize,
    max_shards: usize,
    fit: usize,
    combine: bool,
    count_one: bool,
    /// Every topic the application wants, and the serial of the shard that carries it.
    home: SortedMap<Topic, u64>,
    /// With `combine_topics`: each combined id a shard subscribes, with its parts.
    combined: SortedMap<u64, SortedMap<Topic, Vec<Topic>>>,
    /// With `combine_topics`: the combined id each combined topic travels in.
    part_of: SortedMap<Topic, Topic>,
    /// With `combine_topics`: the shard a prefix's topics go to first, to travel combined.
    prefix_home: SortedMap<String, u64>,
    /// Topics never combined again: the service refused a combined id that held them.
    alone: SortedSet<Topic>,
}

impl Placement {
    pub(super) fn new(cfg: &Config) -> Placement {
        Placement {
            per_channel: cfg.max_topics_per_channel as usize,
            max_shards: cfg.max_shards(),
            fit: cfg.max_topics(),
            combine: cfg!(feature = "combined-topics") && cfg.combine_topics,
            count_one: cfg!(feature = "combined-topics")
                && cfg.combine_topics
                && cfg.combined_topic_counts_as_one,
            home: SortedMap::new(),
            combined: SortedMap::new(),
            part_of: SortedMap::new(),
            prefix_home: SortedMap::new(),
            alone: SortedSet::new(),
        }
    }

    /// Topics travel combined (never in a build without the `combined-topics` feature, whose
    /// combining code the compiler then leaves out).
    fn combining(&self) -> bool {
        cfg!(feature = "combined-topics") && self.combine
    }

    pub(super) fn topics(&self) -> impl Iterator<Item = &Topic> {
        self.home.keys()
    }

    pub(super) fn len(&self) -> usize {
        self.home.len()
    }

    /// The shard that carries `t`, and the name the service knows it by.
    pub(super) fn home<'a>(&'a self, t: &'a Topic) -> Option<(u64, &'a Topic)> {
        let serial = *self.home.get(t)?;
        Some((serial, self.part_of.get(t).unwrap_or(t)))
    }

    /// The topics shard `serial` carries, in order.
    fn mine(&self, serial: u64) -> impl Iterator<Item = &Topic> {
        self.home
            .iter()
            .filter(move |(_, s)| **s == serial)
            .map(|(t, _)| t)
    }

    /// Topics shard `serial` carries.
    pub(super) fn count(&self, serial: u64) -> usize {
        self.home.values().filter(|s| **s == serial).count()
    }

    /// The prefix `t` travels combined under, if it does.
    fn prefix<'t>(&self, t: &'t Topic) -> Option<(&'t str, &'t str)> {
        if !self.combining() || self.alone.contains(t) {
            return None;
        }
        combine::split(t)
    }

    /// What `t` costs in a shard whose combined ids so far are `ids` (prefix → length of its
    /// last id): one per topic, or with `combined_topic_counts_as_one` nothing for a part
    /// that fits in its prefix's last id.
    fn cost(&self, t: &Topic, ids: &SortedMap<String, usize>) -> usize {
        match self.prefix(t) {
            Some((p, last)) if self.count_one => match ids.get(p) {
                Some(len) if len + 1 + last.len() <= MAX_TOPIC_LEN => 0,
                _ => 1,
            },
            _ => 1,
        }
    }

    /// Notes that `t` went into a shard whose combined ids so far are `ids`.
    fn charge(&self, t: &Topic, ids: &mut SortedMap<String, usize>) {
        if let Some((p, last)) = self.prefix(t) {
            let len = match ids.get(p) {
                Some(len) if len + 1 + last.len() <= MAX_TOPIC_LEN => len + 1 + last.len(),
                _ => p.len() + 1 + last.len(),
            };
            ids.insert(p.to_owned(), len);
        }
    }

    /// Where new `topics` would go, or why they cannot: shards with room first (a topic
    /// whose prefix a shard carries goes there, to travel combined), then new shards.
    pub(super) fn plan(
        &self,
        serials: &[u64],
        topics: impl IntoIterator<Item = Topic>,
    ) -> Result<Plan, UsageError> {
        let mut fresh: Vec<Topic> = topics
            .into_iter()
            .filter(|t| !self.home.contains_key(t))
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        // Per shard: its load, and its prefixes' last combined ids' lengths in this plan. A
        // prefix a shard carried before is taken as full: a new part may need a new id.
        let mut load: Vec<(usize, SortedMap<String, usize>)> = serials
            .iter()
            .map(|s| {
                let load = if self.count_one {
                    let alone = self
                        .mine(*s)
                        .filter(|t| !self.part_of.contains_key(*t))
                        .count();
                    alone + self.combined.get(s).map_or(0, SortedMap::len)
                } else {
                    self.count(*s)
                };
                (load, SortedMap::new())
            })
            .collect();
        let requested = self.home.len() + fresh.len();
        let mut placed = Vec::with_capacity(fresh.len());
        for t in fresh {
            let fits = |i: usize, load: &[(usize, SortedMap<String, usize>)]| {
                load[i].0 + self.cost(&t, &load[i].1) <= self.per_channel
            };
            let near = self.prefix(&t).and_then(|(p, _)| {
                (0..load.len()).find(|&i| {
                    (load[i].1.contains_key(p)
                        || serials
                            .get(i)
                            .is_some_and(|s| self.prefix_home.get(p) == Some(s)))
                        && fits(i, &load)
                })
            });
            let i = match near.or_else(|| (0..load.len()).find(|&i| fits(i, &load))) {
                Some(i) => i,
                None if load.len() < self.max_shards => {
                    load.push((0, SortedMap::new()));
                    load.len() - 1
                }
                None => {
                    return Err(UsageError::TooManyTopics {
                        requested,
                        fit: self.fit,
                    })
                }
            };
            let (n, ids) = &mut load[i];
            *n += self.cost(&t, ids);
            self.charge(&t, ids);
            placed.push((t, i));
        }
        Ok(Plan {
            topics: placed,
            new_shards: load.len() - serials.len(),
        })
    }

    /// Makes `plan` so, with `serials` now including the new shards. Returns the shards
    /// whose topics changed.
    pub(super) fn commit(&mut self, plan: Plan, serials: &[u64]) -> Vec<u64> {
        let mut changed = Vec::new();
        for (t, i) in plan.topics {
            let Some(&serial) = serials.get(i) else {
                continue;
            };
            if let Some((p, _)) = self.prefix(&t) {
                if !self.prefix_home.contains_key(p) {
                    self.prefix_home.insert(p.to_owned(), serial);
                }
            }
            self.home.insert(t, serial);
            if !changed.contains(&serial) {
                changed.push(serial);
            }
        }
        changed
    }

    /// Forgets `topics`. Returns the shards whose topics changed.
    pub(super) fn remove<'t>(&mut self, topics: impl IntoIterator<Item = &'t Topic>) -> Vec<u64> {
        let mut changed = Vec::new();
        for t in topics {
            if let Some(serial) = self.home.remove(t) {
                if !changed.contains(&serial) {
                    changed.push(serial);
                }
            }
            self.alone.remove(t);
        }
        changed
    }

    pub(super) fn forget_shard(&mut self, serial: u64) {
        self.prefix_home.retain(|_, s| *s != serial);
        if let Some(ids) = self.combined.remove(&serial) {
            for p in ids.values().flatten() {
                self.part_of.remove(p);
            }
        }
    }

    /// What shard `serial` must add and remove so that it subscribes what its topics are
    /// called by the service now (combined where they can be).
    pub(super) fn diff<'a>(
        &mut self,
        serial: u64,
        current: impl Iterator<Item = &'a Topic>,
    ) -> (Vec<Topic>, Vec<Topic>) {
        let wanted: SortedSet<Topic> = if self.combining() {
            let (alone, combinable): (Vec<&Topic>, Vec<&Topic>) =
                self.mine(serial).partition(|t| self.alone.contains(*t));
            let mut ids = SortedMap::new();
            let mut wanted: Vec<Topic> = alone.into_iter().cloned().collect();
            let mut pairs = Vec::new();
            for (id, parts) in combine::wire(combinable.into_iter()) {
                if !parts.is_empty() {
                    pairs.extend(parts.iter().map(|p| (p.clone(), id.clone())));
                    ids.insert(id.clone(), parts);
                }
                wanted.push(id);
            }
            if let Some(old) = self.combined.insert(serial, ids) {
                for p in old.values().flatten() {
                    self.part_of.remove(p);
                }
            }
            for (p, id) in pairs {
                self.part_of.insert(p, id);
            }
            wanted.into_iter().collect()
        } else {
            // In order already: the map is sorted by topic.
            self.mine(serial).cloned().collect()
        };
        // A shard's topics come in order too.
        let current: Vec<&Topic> = current.collect();
        let add = wanted
            .iter()
            .filter(|t| current.binary_search(t).is_err())
            .cloned()
            .collect();
        let remove = current
            .iter()
            .filter(|t| !wanted.contains(**t))
            .map(|t| (*t).clone())
            .collect();
        (add, remove)
    }

    /// The parts of shard `serial`'s combined id `id`, if it is one.
    fn parts(&self, serial: u64, id: &str) -> Option<&Vec<Topic>> {
        if !self.combining() {
            return None;
        }
        self.combined.get(&serial)?.get(id)
    }

    /// A gap's topics in the application's terms: a combined id stands for its parts.
    pub(super) fn in_app_terms(&self, serial: u64, topics: Vec<Topic>) -> Vec<Topic> {
        if !topics
            .iter()
            .any(|t| self.parts(serial, t.as_str()).is_some())
        {
            return topics;
        }
        let mut out = Vec::with_capacity(topics.len());
        for t in topics {
            match self.parts(serial, t.as_str()) {
                Some(parts) => out.extend(parts.iter().cloned()),
                None => out.push(t),
            }
        }
        out.sort_unstable();
        out
    }

    /// A subscription answer in the terms shard `serial` asked in: a refusal that names one
    /// part of a combined id refuses that id.
    pub(super) fn in_service_terms(&self, serial: u64, input: Input) -> Input {
        let Input::Subscribed { req, mut results } = input else {
            return input;
        };
        if !self.combining() {
            return Input::Subscribed { req, results };
        }
        for r in results.iter_mut().filter(|r| r.rejected.is_some()) {
            if let Some(id) = self.part_of.get(r.topic.as_str()) {
                if self.parts(serial, id.as_str()).is_some() {
                    *r = TopicResult {
                        topic: id.as_str().to_owned(),
                        rejected: r.rejected.take(),
                    };
                }
            }
        }
        Input::Subscribed { req, results }
    }

    /// The service refused `topic` on shard `serial`. A combined id's parts are tried alone
    /// from now on (true: the shard's topics changed), so that only the parts the service
    /// refuses are reported, each under its own name.
    pub(super) fn refused(&mut self, serial: u64, topic: &str) -> bool {
        let Some(parts) = self.parts(serial, topic).cloned() else {
            return false;
        };
        for p in parts {
            self.alone.insert(p);
        }
        true
    }
}
