//! The consistent-hash ring: members, their virtual nodes, who owns a key, and what moves when
//! the membership changes.
//!
//! Positions are the whole `u64` range; clockwise is increasing, wrapping from `u64::MAX` to 0.
//! Each member places `vnodes` virtual nodes at positions hashed from the ring's seed, its id and
//! the vnode's index. A key belongs to the first virtual node at or clockwise after the key's
//! position, so a virtual node owns the arc from the previous virtual node (exclusive) to itself
//! (inclusive). With replication factor `r`, a key's owners are the first `r` distinct members
//! met walking clockwise from it: its successor list.

use crate::learner::Slot;
use serde::{Deserialize, Serialize};
use simlab_sim::hash::StableHasher;
use std::collections::BTreeSet;

/// A position on the ring.
pub type Point = u64;

/// SplitMix64's finaliser: every output bit depends on every input bit. The trace hash's own
/// mixing is built for chaining words, and its last word's high bits reach the low output bits
/// only weakly; ring positions need all 64 bits uniform.
fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The ring hash of a sequence of words: simlab-hash-v1 over the words, then SplitMix64's
/// finaliser. Specified here, so a ring laid out today is laid out the same way next year.
pub fn ring_hash(words: &[u64]) -> Point {
    let mut hasher = StableHasher::new();
    for &word in words {
        hasher.word(word);
    }
    finalise(hasher.finish())
}

/// Where a key sits on the ring: simlab-hash-v1 of its bytes, then the finaliser.
pub fn key_point(key: &str) -> Point {
    let mut hasher = StableHasher::new();
    hasher.bytes(key.as_bytes());
    finalise(hasher.finish())
}

/// Where the `index`-th virtual node of `member` sits on a ring laid out with `seed`.
pub fn vnode_point(seed: u64, member: u32, index: u32) -> Point {
    ring_hash(&[seed, u64::from(member), u64::from(index)])
}

/// An arc of the ring: the positions after `after` up to and including `upto`, clockwise. When
/// `after == upto` the arc is the whole ring (a ring with one virtual node owns everything).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyRange {
    /// The position just before the arc (exclusive).
    pub after: Point,
    /// The last position of the arc (inclusive).
    pub upto: Point,
}

impl KeyRange {
    /// Whether `point` lies on this arc.
    pub fn contains(&self, point: Point) -> bool {
        if self.after < self.upto {
            self.after < point && point <= self.upto
        } else {
            point > self.after || point <= self.upto
        }
    }

    /// How many positions the arc covers (the whole ring is 2^64).
    pub fn len(&self) -> u128 {
        if self.after == self.upto {
            1u128 << 64
        } else {
            u128::from(self.upto.wrapping_sub(self.after))
        }
    }

    /// Never: an arc covers at least one position.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The fraction of the key space the arc covers.
    pub fn share(&self) -> f64 {
        self.len() as f64 / 18_446_744_073_709_551_616.0
    }
}

/// One arc whose owners differ between two rings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The arc.
    pub range: KeyRange,
    /// Its owners before, in member order.
    pub from: Vec<u32>,
    /// Its owners after, in member order.
    pub to: Vec<u32>,
}

impl Transfer {
    /// The members that gain the arc: owners after that were not owners before.
    pub fn gained_by(&self) -> impl Iterator<Item = u32> + '_ {
        self.to.iter().copied().filter(|m| !self.from.contains(m))
    }

    /// The members that lose the arc.
    pub fn lost_by(&self) -> impl Iterator<Item = u32> + '_ {
        self.from.iter().copied().filter(|m| !self.to.contains(m))
    }
}

/// What moves between two rings: `(before, after, r)` to the arcs whose `r` owners differ.
pub type TransfersFn = fn(&Ring, &Ring, usize) -> Vec<Transfer>;

/// The learner slot for [`Ring::transfers`]: the rebalancing store computes every handoff with
/// the function in this slot, so a learner's version runs inside the real protocol.
pub static TRANSFERS: Slot<TransfersFn> = Slot::new("ring.transfers", Ring::transfers);

/// A consistent-hash ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    seed: u64,
    vnodes: u32,
    /// Members, ascending.
    members: Vec<u32>,
    /// Every virtual node as (position, member), ascending. Two positions collide with
    /// probability ~n²v²/2^65; a collision is ordered by member, so it is still deterministic.
    points: Vec<(Point, u32)>,
}

impl Ring {
    /// An empty ring whose members will each place `vnodes` virtual nodes, laid out by `seed`.
    ///
    /// # Panics
    /// If `vnodes` is 0: a member with no virtual node owns nothing and can never be found.
    pub fn new(seed: u64, vnodes: u32) -> Ring {
        assert!(
            vnodes > 0,
            "a ring needs at least one virtual node per member"
        );
        Ring {
            seed,
            vnodes,
            members: Vec::new(),
            points: Vec::new(),
        }
    }

    /// A ring holding `members`.
    pub fn with_members(seed: u64, vnodes: u32, members: impl IntoIterator<Item = u32>) -> Ring {
        let mut ring = Ring::new(seed, vnodes);
        let members: BTreeSet<u32> = members.into_iter().collect();
        ring.members = members.into_iter().collect();
        ring.points = ring
            .members
            .iter()
            .flat_map(|&m| (0..vnodes).map(move |i| (vnode_point(seed, m, i), m)))
            .collect();
        ring.points.sort_unstable();
        ring
    }

    /// The seed the virtual nodes are placed by.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual nodes per member.
    pub fn vnodes(&self) -> u32 {
        self.vnodes
    }

    /// The members, ascending.
    pub fn members(&self) -> &[u32] {
        &self.members
    }

    /// Whether `member` is on the ring.
    pub fn contains(&self, member: u32) -> bool {
        self.members.binary_search(&member).is_ok()
    }

    /// Every virtual node as (position, member), clockwise from position 0.
    pub fn points(&self) -> &[(Point, u32)] {
        &self.points
    }

    /// Adds `member` and its virtual nodes; false if it was already a member.
    pub fn join(&mut self, member: u32) -> bool {
        let Err(at) = self.members.binary_search(&member) else {
            return false;
        };
        self.members.insert(at, member);
        let mut added: Vec<(Point, u32)> = (0..self.vnodes)
            .map(|i| (vnode_point(self.seed, member, i), member))
            .collect();
        added.sort_unstable();
        // One merge of two sorted lists, not v insertions into the middle of a long vector.
        let old = std::mem::take(&mut self.points);
        self.points.reserve(old.len() + added.len());
        let (mut a, mut b) = (old.into_iter().peekable(), added.into_iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            self.points.extend(next);
        }
        true
    }

    /// Removes `member` and its virtual nodes; false if it was not a member.
    pub fn leave(&mut self, member: u32) -> bool {
        let Ok(at) = self.members.binary_search(&member) else {
            return false;
        };
        self.members.remove(at);
        self.points.retain(|&(_, m)| m != member);
        true
    }

    /// The index of the first virtual node at or clockwise after `point`.
    fn successor(&self, point: Point) -> usize {
        let at = self.points.partition_point(|&(p, _)| p < point);
        if at == self.points.len() { 0 } else { at }
    }

    /// The member owning `point` (the first virtual node at or clockwise after it), if any.
    pub fn owner(&self, point: Point) -> Option<u32> {
        if self.points.is_empty() {
            None
        } else {
            Some(self.points[self.successor(point)].1)
        }
    }

    /// The first `r` distinct members clockwise from `point` (all members, if fewer): the
    /// primary owner first.
    pub fn owners(&self, point: Point, r: usize) -> Vec<u32> {
        let want = r.min(self.members.len());
        let mut owners = Vec::with_capacity(want);
        if want == 0 {
            return owners;
        }
        let start = self.successor(point);
        let len = self.points.len();
        for step in 0..len {
            let member = self.points[(start + step) % len].1;
            if !owners.contains(&member) {
                owners.push(member);
                if owners.len() == want {
                    break;
                }
            }
        }
        owners
    }

    /// Each virtual node's arc and member, clockwise.
    pub fn arcs(&self) -> impl Iterator<Item = (KeyRange, u32)> + '_ {
        let last = self.points.last().map_or(0, |&(p, _)| p);
        let mut previous = last;
        self.points.iter().map(move |&(p, m)| {
            let range = KeyRange {
                after: previous,
                upto: p,
            };
            previous = p;
            (range, m)
        })
    }

    /// Each member's share of the key space (primary ownership), in member order.
    pub fn shares(&self) -> Vec<f64> {
        let mut shares = vec![0.0; self.members.len()];
        for (range, member) in self.arcs() {
            let index = self
                .members
                .binary_search(&member)
                .expect("every virtual node's member is a member");
            shares[index] += range.share();
        }
        shares
    }

    /// The arcs whose set of `r` owners differs between `before` and `after`, clockwise, with
    /// adjacent arcs that have the same owners before and after merged into one.
    ///
    /// This is what a membership change moves: every key in a returned arc must be copied to
    /// the members in [`Transfer::gained_by`], and no key outside them changes owners.
    pub fn transfers(before: &Ring, after: &Ring, r: usize) -> Vec<Transfer> {
        // Between two consecutive positions that are virtual nodes of either ring, both rings'
        // owners are constant: an arc (previous, b] is owned in each ring as b itself is.
        let mut boundaries: Vec<Point> = before
            .points
            .iter()
            .chain(&after.points)
            .map(|&(p, _)| p)
            .collect();
        boundaries.sort_unstable();
        boundaries.dedup();
        let sorted = |mut owners: Vec<u32>| {
            owners.sort_unstable();
            owners
        };
        let mut transfers: Vec<Transfer> = Vec::new();
        let mut previous = boundaries.last().copied().unwrap_or(0);
        for &b in &boundaries {
            let from = sorted(before.owners(b, r));
            let to = sorted(after.owners(b, r));
            let range = KeyRange {
                after: previous,
                upto: b,
            };
            previous = b;
            if from == to {
                continue;
            }
            match transfers.last_mut() {
                Some(last)
                    if last.range.upto == range.after && last.from == from && last.to == to =>
                {
                    last.range.upto = range.upto;
                }
                _ => transfers.push(Transfer { range, from, to }),
            }
        }
        // The arc that wraps past position 0 may have been cut in two: join its halves.
        if transfers.len() > 1 {
            let (first, last) = (&transfers[0], &transfers[transfers.len() - 1]);
            if last.range.upto == first.range.after
                && last.from == first.from
                && last.to == first.to
            {
                let last = transfers.pop().expect("more than one");
                transfers[0].range.after = last.range.after;
            }
        }
        transfers
    }

    /// Splits `range` into the pieces on which both rings' owner *lists* (primary first) are
    /// constant, clockwise, each with its owners before and after in that order.
    ///
    /// [`Ring::transfers`] compares owner sets, so one of its arcs can hold pieces whose
    /// primary differs; a replicated handoff needs to know, for every key, who served it
    /// before and who serves it after.
    pub fn split_by_owners(
        before: &Ring,
        after: &Ring,
        range: KeyRange,
        r: usize,
    ) -> Vec<(KeyRange, Vec<u32>, Vec<u32>)> {
        let whole = range.after == range.upto;
        let distance = |p: Point| p.wrapping_sub(range.after).wrapping_sub(1);
        let mut cuts: Vec<Point> = before
            .points
            .iter()
            .chain(&after.points)
            .map(|&(p, _)| p)
            .filter(|&p| whole || range.contains(p))
            .collect();
        if !whole {
            cuts.push(range.upto);
        }
        // Clockwise from the arc's start; the arc's own end comes last.
        cuts.sort_unstable_by_key(|&p| distance(p));
        cuts.dedup();
        if cuts.last() != Some(&range.upto) {
            cuts.push(range.upto);
        }
        let mut pieces: Vec<(KeyRange, Vec<u32>, Vec<u32>)> = Vec::new();
        let mut start = range.after;
        for b in cuts {
            let piece = KeyRange {
                after: start,
                upto: b,
            };
            start = b;
            let (from, to) = (before.owners(b, r), after.owners(b, r));
            match pieces.last_mut() {
                Some(last) if last.1 == from && last.2 == to => last.0.upto = b,
                _ => pieces.push((piece, from, to)),
            }
        }
        pieces
    }

    /// Bounded-load placement (Mirrokni, Thorup and Zadimoghaddam, 2018): `keys` arrive in
    /// order, and each goes to the first member clockwise from it whose load is below the
    /// capacity `⌈(1 + ε)·keys / members⌉`. Returns each key's member, in arrival order.
    ///
    /// The placement depends on the arrival order: the same keys in another order can land on
    /// other members. Returns an empty list if the ring has no members.
    pub fn assign_bounded(&self, keys: &[Point], epsilon: f64) -> Vec<u32> {
        if self.members.is_empty() {
            return Vec::new();
        }
        let capacity = bounded_capacity(keys.len(), self.members.len(), epsilon);
        let mut load = vec![0usize; self.members.len()];
        let len = self.points.len();
        keys.iter()
            .map(|&key| {
                let start = self.successor(key);
                // capacity · members >= keys, so some member has room and one lap finds it.
                for step in 0..len {
                    let member = self.points[(start + step) % len].1;
                    let index = self
                        .members
                        .binary_search(&member)
                        .expect("every virtual node's member is a member");
                    if load[index] < capacity {
                        load[index] += 1;
                        return member;
                    }
                }
                unreachable!("the capacity leaves room for every key")
            })
            .collect()
    }
}

/// The bounded-load capacity `⌈(1 + ε)·keys / members⌉`, at least 1 so that every key fits.
///
/// # Panics
/// If `members` is 0 or `epsilon` is negative or not finite.
pub fn bounded_capacity(keys: usize, members: usize, epsilon: f64) -> usize {
    assert!(members > 0, "no member to hold the keys");
    assert!(
        epsilon.is_finite() && epsilon >= 0.0,
        "epsilon must be a finite non-negative number"
    );
    let exact = (1.0 + epsilon) * keys as f64 / members as f64;
    (exact.ceil() as usize).max(keys.div_ceil(members)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arc_that_wraps_contains_both_ends_of_the_key_space() {
        let wrap = KeyRange {
            after: u64::MAX - 10,
            upto: 5,
        };
        assert!(wrap.contains(u64::MAX) && wrap.contains(0) && wrap.contains(5));
        assert!(!wrap.contains(6) && !wrap.contains(u64::MAX - 10));
        assert_eq!(wrap.len(), 16);
        let whole = KeyRange { after: 7, upto: 7 };
        assert!(whole.contains(7) && whole.contains(8) && whole.contains(0));
        assert_eq!(whole.share(), 1.0);
    }

    #[test]
    fn a_key_belongs_to_the_next_virtual_node_clockwise() {
        let ring = Ring::with_members(3, 4, [10, 20, 30]);
        let points = ring.points().to_vec();
        assert_eq!(points.len(), 12);
        for window in points.windows(2) {
            let (a, b) = (window[0], window[1]);
            assert_eq!(ring.owner(a.0), Some(a.1));
            assert_eq!(
                ring.owner(a.0 + 1),
                Some(b.1),
                "just past a vnode, the next one owns"
            );
        }
        let (last, first) = (points[points.len() - 1], points[0]);
        assert_eq!(
            ring.owner(last.0.wrapping_add(1)),
            Some(first.1),
            "wraps past the top"
        );
        let shares: f64 = ring.shares().iter().sum();
        assert!((shares - 1.0).abs() < 1e-12);
    }

    #[test]
    fn successor_lists_hold_distinct_members_primary_first() {
        let ring = Ring::with_members(1, 8, 0..5);
        for key in 0..200u64 {
            let point = ring_hash(&[key]);
            let owners = ring.owners(point, 3);
            assert_eq!(owners.len(), 3);
            assert_eq!(owners[0], ring.owner(point).unwrap());
            let distinct: BTreeSet<_> = owners.iter().collect();
            assert_eq!(distinct.len(), 3);
        }
        assert_eq!(ring.owners(7, 9).len(), 5, "never more owners than members");
        assert!(Ring::new(1, 8).owners(7, 3).is_empty());
    }

    #[test]
    fn join_and_leave_give_the_ring_built_from_scratch() {
        let mut ring = Ring::with_members(9, 16, [1, 2, 3]);
        assert!(ring.join(7));
        assert!(!ring.join(7));
        assert_eq!(ring, Ring::with_members(9, 16, [1, 2, 3, 7]));
        assert!(ring.leave(2));
        assert!(!ring.leave(2));
        assert_eq!(ring, Ring::with_members(9, 16, [1, 3, 7]));
    }

    #[test]
    fn a_join_moves_only_arcs_to_the_newcomer() {
        let before = Ring::with_members(5, 10, 0..6);
        let mut after = before.clone();
        after.join(6);
        let transfers = Ring::transfers(&before, &after, 1);
        assert!(!transfers.is_empty());
        let moved: f64 = transfers.iter().map(|t| t.range.share()).sum();
        let newcomer = after.shares()[6];
        assert!((moved - newcomer).abs() < 1e-12, "{moved} vs {newcomer}");
        for t in &transfers {
            assert_eq!(t.to, vec![6]);
            assert_eq!(t.gained_by().collect::<Vec<_>>(), vec![6]);
        }
        assert!(Ring::transfers(&before, &before, 2).is_empty());
    }

    #[test]
    fn bounded_loads_never_exceed_the_capacity() {
        let ring = Ring::with_members(2, 1, 0..10);
        let keys: Vec<Point> = (0..1_000u64).map(|k| ring_hash(&[99, k])).collect();
        let placed = ring.assign_bounded(&keys, 0.25);
        let capacity = bounded_capacity(1_000, 10, 0.25);
        assert_eq!(capacity, 125);
        for member in 0..10 {
            let load = placed.iter().filter(|&&m| m == member).count();
            assert!(load <= capacity, "member {member} holds {load}");
        }
        // With one vnode each the plain ring is far from balanced, so the bound did work.
        let plain_max = (0..10)
            .map(|m| keys.iter().filter(|&&k| ring.owner(k) == Some(m)).count())
            .max()
            .unwrap();
        assert!(plain_max > capacity, "{plain_max}");
    }
}
