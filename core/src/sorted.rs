//! A sorted vector as a set and as a map, for the session's small collections (topic sets and
//! per-topic maps: at most a channel's 1,000 entries). Same iteration order as the standard
//! B-tree collections, so outputs do not change; a fraction of their code size per key and
//! value type, which is what the browser build pays for each one. Lookups are binary searches;
//! an insert or a removal moves the entries after it, fine at these sizes.

use std::borrow::Borrow;

/// A set kept sorted, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortedSet<T>(Vec<T>);

impl<T> Default for SortedSet<T> {
    fn default() -> Self {
        SortedSet(Vec::new())
    }
}

impl<T: Ord> SortedSet<T> {
    pub(crate) fn new() -> Self {
        SortedSet(Vec::new())
    }

    /// Adds `t`; false if it was there already.
    pub(crate) fn insert(&mut self, t: T) -> bool {
        match self.0.binary_search(&t) {
            Ok(_) => false,
            Err(i) => {
                self.0.insert(i, t);
                true
            }
        }
    }

    /// Removes `t`; false if it was not there.
    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, t: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        match self.0.binary_search_by(|x| x.borrow().cmp(t)) {
            Ok(i) => {
                self.0.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    pub(crate) fn contains<Q: Ord + ?Sized>(&self, t: &Q) -> bool
    where
        T: Borrow<Q>,
    {
        self.0.binary_search_by(|x| x.borrow().cmp(t)).is_ok()
    }

    pub(crate) fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn retain(&mut self, f: impl FnMut(&T) -> bool) {
        self.0.retain(f);
    }

    /// The entries also in `other`, in order.
    pub(crate) fn intersection<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> {
        self.0.iter().filter(move |t| other.contains(*t))
    }

    /// The entries not in `other`, in order.
    pub(crate) fn difference<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> {
        self.0.iter().filter(move |t| !other.contains(*t))
    }
}

impl<T: Ord> FromIterator<T> for SortedSet<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut v: Vec<T> = iter.into_iter().collect();
        // Equal entries are the same entry, so an unstable sort gives the same set (and the
        // browser build carries one sort, not two).
        v.sort_unstable();
        v.dedup();
        SortedSet(v)
    }
}

impl<'a, T> IntoIterator for &'a SortedSet<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A map kept sorted by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortedMap<K, V>(Vec<(K, V)>);

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap(Vec::new())
    }
}

impl<K: Ord, V> SortedMap<K, V> {
    pub(crate) fn new() -> Self {
        SortedMap(Vec::new())
    }

    fn find<Q: Ord + ?Sized>(&self, k: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
    {
        self.0.binary_search_by(|(x, _)| x.borrow().cmp(k))
    }

    pub(crate) fn get<Q: Ord + ?Sized>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.find(k).ok().map(|i| &self.0[i].1)
    }

    pub(crate) fn contains_key<Q: Ord + ?Sized>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.find(k).is_ok()
    }

    /// Sets `k` to `v`; the value it replaced, if any.
    pub(crate) fn insert(&mut self, k: K, v: V) -> Option<V> {
        match self.find(&k) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, v)),
            Err(i) => {
                self.0.insert(i, (k, v));
                None
            }
        }
    }

    /// The value of `k`, inserted from `v` first if there is none.
    pub(crate) fn get_or_insert_with(&mut self, k: K, v: impl FnOnce() -> V) -> &mut V {
        let i = match self.find(&k) {
            Ok(i) => i,
            Err(i) => {
                self.0.insert(i, (k, v()));
                i
            }
        };
        &mut self.0[i].1
    }

    pub(crate) fn remove<Q: Ord + ?Sized>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.find(k).ok().map(|i| self.0.remove(i).1)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn retain(&mut self, mut f: impl FnMut(&K, &mut V) -> bool) {
        self.0.retain_mut(|(k, v)| f(k, v));
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    /// As a B-tree map does: the last value given for a key wins.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut m = SortedMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl<K, V> IntoIterator for SortedMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Same contents and order as the B-tree collections, over a deterministic mix of
    /// inserts and removals.
    #[test]
    fn they_behave_like_the_btree_collections() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 64
        };
        let (mut s, mut bs) = (SortedSet::new(), BTreeSet::new());
        let (mut m, mut bm) = (SortedMap::new(), BTreeMap::new());
        for i in 0..2_000 {
            let k = next();
            if next() % 3 == 0 {
                assert_eq!(s.remove(&k), bs.remove(&k));
                assert_eq!(m.remove(&k), bm.remove(&k));
            } else {
                assert_eq!(s.insert(k), bs.insert(k));
                assert_eq!(m.insert(k, i), bm.insert(k, i));
            }
            assert!(s.iter().eq(bs.iter()));
            assert!(m.iter().eq(bm.iter()));
        }
        let other: SortedSet<u64> = (0..32).collect();
        let bother: BTreeSet<u64> = (0..32).collect();
        assert!(s.intersection(&other).eq(bs.intersection(&bother)));
        assert!(s.difference(&other).eq(bs.difference(&bother)));
        let from: SortedMap<u64, u64> = [(3, 1), (1, 2), (3, 3)].into_iter().collect();
        assert_eq!(from.into_iter().collect::<Vec<_>>(), vec![(1, 2), (3, 3)]);
    }
}
