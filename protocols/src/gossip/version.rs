//! Versions of a key: who wrote each one, what it had seen, and how two replicas' versions of the
//! same key merge.
//!
//! Every write is named by its **dot**: the node that took it and that node's write counter. A
//! version carries the dot of the write that made it and `seen`, a version vector: for each node,
//! the highest of its write counters this version had seen when it was written (its own dot
//! included). A version has been **overtaken** when another version's `seen` covers its dot: that
//! write happened after it, knowing it. Two versions neither of which covers the other are
//! **concurrent**: under version vectors both are kept (siblings) and a read returns both; under
//! last-writer-wins the one with the larger hybrid-logical-clock stamp wins and the other is lost.

use crate::learner::Slot;
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// A write's name: the node that took it and that node's count of writes so far.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Dot {
    /// The node that took the write.
    pub node: u32,
    /// Its write counter after the write (1 for its first).
    pub counter: u64,
}

impl fmt::Display for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}#{}", self.node, self.counter)
    }
}

/// For each node, the highest of its write counters seen. Missing entries are zero.
///
/// Kept as pairs sorted by node, behind a shared pointer that is copied on the first change:
/// the same vector travels in messages and sits in many replicas (after convergence, all of
/// them), and a snapshot of a node copies pointers, not vectors. It hashes, prints and orders
/// exactly as a map from node to counter.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionVector(Arc<Vec<(u32, u64)>>);

impl VersionVector {
    /// The counter seen for `node`.
    pub fn get(&self, node: u32) -> u64 {
        self.0
            .binary_search_by_key(&node, |&(n, _)| n)
            .map_or(0, |i| self.0[i].1)
    }

    /// Whether the write `dot` is among those seen.
    pub fn covers(&self, dot: Dot) -> bool {
        self.get(dot.node) >= dot.counter
    }

    /// Whether every write `other` has seen, this one has seen too.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) {
            return true;
        }
        let mut mine = self.0.iter().peekable();
        other.0.iter().all(|&(node, c)| {
            while mine.next_if(|&&(n, _)| n < node).is_some() {}
            mine.peek().is_some_and(|&&(n, m)| n == node && m >= c)
        })
    }

    /// Takes the larger counter of every node.
    pub fn merge(&mut self, other: &VersionVector) {
        if self.dominates(other) {
            return;
        }
        if other.dominates(self) {
            *self = other.clone();
            return;
        }
        let (a, b) = (&self.0, &other.0);
        let mut merged = Vec::with_capacity(a.len().max(b.len()));
        let (mut i, mut j) = (0, 0);
        loop {
            match (a.get(i), b.get(j)) {
                (Some(&(n, c)), Some(&(m, d))) if n == m => {
                    merged.push((n, c.max(d)));
                    i += 1;
                    j += 1;
                }
                (Some(&x), Some(&(m, _))) if x.0 < m => {
                    merged.push(x);
                    i += 1;
                }
                (Some(&x), None) => {
                    merged.push(x);
                    i += 1;
                }
                (_, Some(&y)) => {
                    merged.push(y);
                    j += 1;
                }
                (None, None) => break,
            }
        }
        self.0 = Arc::new(merged);
    }

    /// Records the write `dot`.
    pub fn add(&mut self, dot: Dot) {
        if self.covers(dot) {
            return;
        }
        let entries = Arc::make_mut(&mut self.0);
        match entries.binary_search_by_key(&dot.node, |&(n, _)| n) {
            Ok(i) => entries[i].1 = dot.counter,
            Err(i) => entries.insert(i, (dot.node, dot.counter)),
        }
    }

    /// Nodes with a counter, and their counters, in node order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (u32, u64)> + '_ {
        self.0.iter().copied()
    }

    /// How many nodes have a counter.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no write has been seen.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(u32, u64)> for VersionVector {
    /// The vector of these counters; of a node named twice, the larger counter.
    fn from_iter<I: IntoIterator<Item = (u32, u64)>>(pairs: I) -> VersionVector {
        let mut vv = VersionVector::default();
        for (node, counter) in pairs {
            vv.add(Dot { node, counter });
        }
        vv
    }
}

impl Serialize for VersionVector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(n, c)| (n, c)))
    }
}

impl fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(n, c)| (n, c)))
            .finish()
    }
}

impl fmt::Display for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, (node, c)) in self.iter().enumerate() {
            if i > 0 {
                write!(f, " ")?;
            }
            write!(f, "n{node}:{c}")?;
        }
        write!(f, "]")
    }
}

/// A hybrid logical clock stamp (Kulkarni et al., *Logical Physical Clocks*, 2014): the largest
/// physical time the node has seen (its own clock or a stamp it received), a counter for events
/// within that microsecond, and the node, so that no two writes share a stamp. Ordered in that
/// order. A node whose clock runs ahead drags every stamp it touches ahead with it, which is why
/// last-writer-wins under clock skew loses writes that came later in real time.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Hlc {
    /// Physical part, microseconds.
    pub wall_us: u64,
    /// Logical part.
    pub logical: u32,
    /// The node that made the stamp.
    pub node: u32,
}

impl Hlc {
    /// The stamp for a new write at physical time `now_us` on `node`, after the clock `last`.
    pub fn next(last: Hlc, now_us: u64, node: u32) -> Hlc {
        if now_us > last.wall_us {
            Hlc {
                wall_us: now_us,
                logical: 0,
                node,
            }
        } else {
            Hlc {
                wall_us: last.wall_us,
                logical: last.logical + 1,
                node,
            }
        }
    }
}

impl fmt::Display for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@n{}", self.wall_us, self.logical, self.node)
    }
}

/// One version of a key's value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The write that made it.
    pub dot: Dot,
    /// Every write of this key it had seen, its own included.
    pub seen: VersionVector,
    /// Its hybrid-logical-clock stamp (last-writer-wins orders by it; tombstones age by it).
    pub stamp: Hlc,
    /// The value, or `None` for a deletion (the paper's death certificate).
    pub value: Option<String>,
}

impl Version {
    /// Whether `other` was written knowing this one.
    pub fn overtaken_by(&self, other: &Version) -> bool {
        other.dot != self.dot && other.seen.covers(self.dot)
    }

    /// Whether this is a deletion.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

// ANCHOR: merge
/// How a replica folds a peer's versions of one key into its own: the result is what it keeps.
pub type MergeFn = fn(mine: &[Version], theirs: &[Version]) -> Vec<Version>;

/// The merge a learner may write; the reference keeps every version no other version overtook.
pub static MERGE: Slot<MergeFn> = Slot::new("gossip.merge", merge);

/// Keeps every version, from either side, that no other version (from either side) has
/// overtaken; one copy of each, in dot order. Commutative, associative and idempotent, so
/// replicas that have exchanged everything hold the same versions whatever the order.
pub fn merge(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
    let all: Vec<&Version> = mine.iter().chain(theirs).collect();
    let mut kept: Vec<Version> = Vec::new();
    for v in &all {
        let overtaken = all.iter().any(|other| v.overtaken_by(other));
        if !overtaken && !kept.iter().any(|k| k.dot == v.dot) {
            kept.push((*v).clone());
        }
    }
    kept.sort_by_key(|v| v.dot);
    kept
}
// ANCHOR_END: merge

/// [`super::GossipBug::ConcurrentAsOlder`]'s merge: an incoming version that is concurrent
/// with one of mine is taken to overtake it, so mine is dropped (and with it, if this replica
/// held the only copy, an acknowledged write).
pub fn merge_concurrent_as_older(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
    let survivors: Vec<Version> = mine
        .iter()
        .filter(|m| {
            !theirs
                .iter()
                .any(|t| m.overtaken_by(t) || (t.dot != m.dot && !t.overtaken_by(m)))
        })
        .cloned()
        .collect();
    merge(&survivors, theirs)
}

/// Last-writer-wins: of the versions kept, only the one with the largest stamp.
pub fn last_writer_wins(mut versions: Vec<Version>) -> Vec<Version> {
    if versions.len() > 1 {
        let winner = versions
            .iter()
            .enumerate()
            .max_by_key(|(_, v)| v.stamp)
            .map_or(0, |(i, _)| i);
        versions = vec![versions.swap_remove(winner)];
    }
    versions
}

/// [`super::GossipBug::TieKeepsMine`]'s resolution: compares wall times only and, on a tie,
/// keeps the version this replica already had. Not commutative: two replicas holding
/// different versions with the same wall time each keep their own for ever.
pub fn last_writer_wins_tie_keeps_mine(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
    let best_mine = mine.iter().max_by_key(|v| v.stamp);
    let best_theirs = theirs.iter().max_by_key(|v| v.stamp);
    match (best_mine, best_theirs) {
        (Some(m), Some(t)) if t.stamp.wall_us > m.stamp.wall_us => vec![t.clone()],
        (Some(m), _) => vec![m.clone()],
        (None, Some(t)) => vec![t.clone()],
        (None, None) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(node: u32, counter: u64, seen: &[(u32, u64)], value: &str) -> Version {
        let mut vv: VersionVector = seen.iter().copied().collect();
        let dot = Dot { node, counter };
        vv.add(dot);
        Version {
            dot,
            seen: vv,
            stamp: Hlc {
                wall_us: counter,
                logical: 0,
                node,
            },
            value: Some(value.into()),
        }
    }

    /// The sorted, shared vector answers, orders, prints and hashes exactly as a map from node
    /// to counter, on random vectors.
    #[test]
    fn version_vectors_behave_as_maps() {
        use simlab_sim::hash::stable_hash;
        use simlab_sim::rng::{self, Stream};
        use std::collections::BTreeMap;
        let mut r = rng::stream(3, Stream::Faults);
        let pairs = |r: &mut simlab_sim::SimRng| -> Vec<(u32, u64)> {
            let len = rng::below(r, 10);
            (0..len)
                .map(|_| (rng::below(r, 8) as u32, 1 + rng::below(r, 5)))
                .collect()
        };
        let model = |pairs: &[(u32, u64)]| {
            let mut m: BTreeMap<u32, u64> = BTreeMap::new();
            for &(n, c) in pairs {
                let e = m.entry(n).or_insert(0);
                *e = (*e).max(c);
            }
            m
        };
        for _ in 0..2_000 {
            let (a, b) = (pairs(&mut r), pairs(&mut r));
            let (ma, mb) = (model(&a), model(&b));
            let va: VersionVector = a.iter().copied().collect();
            let vb: VersionVector = b.iter().copied().collect();
            let dominates = mb.iter().all(|(n, c)| ma.get(n).copied().unwrap_or(0) >= *c);
            assert_eq!(va.dominates(&vb), dominates, "{a:?} {b:?}");
            for n in 0..9 {
                assert_eq!(va.get(n), ma.get(&n).copied().unwrap_or(0));
            }
            let mut merged = va.clone();
            merged.merge(&vb);
            let mut mm = ma.clone();
            for (n, c) in &mb {
                let e = mm.entry(*n).or_insert(0);
                *e = (*e).max(*c);
            }
            assert_eq!(merged.iter().collect::<BTreeMap<_, _>>(), mm, "{a:?} {b:?}");
            assert_eq!(format!("{merged:?}"), format!("{mm:?}"));
            assert_eq!(stable_hash(&merged), stable_hash(&mm));
            assert_eq!(va.cmp(&vb), ma.iter().cmp(mb.iter()));
            assert_eq!(va == vb, ma == mb);
        }
    }

    /// The merge of two replicas holding these versions.
    fn merged(mine: &[&Version], theirs: &[&Version]) -> Vec<Version> {
        let own = |vs: &[&Version]| vs.iter().map(|v| (*v).clone()).collect::<Vec<_>>();
        merge(&own(mine), &own(theirs))
    }

    #[test]
    fn merge_keeps_concurrent_versions_and_drops_overtaken_ones() {
        let a = version(0, 1, &[], "a");
        let b = version(1, 1, &[], "b");
        let c = version(2, 1, &[(0, 1), (1, 1)], "c");
        assert_eq!(merged(&[&a], &[&b]), vec![a.clone(), b.clone()]);
        assert_eq!(merged(&[&a, &b], &[&c]), vec![c.clone()]);
        assert_eq!(merged(&[&c], &[&a]), vec![c.clone()]);
        // Commutative and idempotent.
        assert_eq!(merged(&[&b], &[&a]), merged(&[&a], &[&b]));
        assert_eq!(merged(&[&a], &[&a]), vec![a]);
    }

    #[test]
    fn the_planted_merges_break_what_the_reference_keeps() {
        let a = version(0, 1, &[], "a");
        let b = version(1, 1, &[], "b");
        let (mine, theirs) = (vec![a.clone()], vec![b.clone()]);
        assert_eq!(merge_concurrent_as_older(&mine, &theirs), theirs);
        let (mut a2, mut b2) = (a, b);
        a2.stamp.wall_us = 7;
        b2.stamp.wall_us = 7;
        let (a2, b2) = (vec![a2], vec![b2]);
        assert_eq!(last_writer_wins_tie_keeps_mine(&a2, &b2), a2);
        assert_eq!(last_writer_wins_tie_keeps_mine(&b2, &a2), b2);
        assert_eq!(
            last_writer_wins(merge(&a2, &b2)),
            last_writer_wins(merge(&b2, &a2))
        );
    }

    #[test]
    fn hlc_runs_ahead_of_a_slow_clock() {
        let fast = Hlc::next(Hlc::default(), 1_000, 0);
        let slow = Hlc::next(fast, 10, 1);
        assert!(slow > fast, "a stamp after a seen one is larger whatever the clock");
        assert_eq!((slow.wall_us, slow.logical), (1_000, 1));
    }
}
