//! What the cache promises, checked from outside: no acknowledged write is lost, and replicas
//! converge once the faults stop.
//!
//! An acknowledged write is **kept** while some replica (up or crashed: its durable store counts)
//! holds a version of its key that covers its dot (the write itself, or one written knowing it).
//! A write is also kept when a delete that saw it was acknowledged and nothing that delete
//! removed survives anywhere: the delete's tombstone may then be collected. When a tombstone is
//! collected while some replica still holds a value the delete removed, the delete is lost: that
//! value will spread back (the resurrection the paper's death certificates guard against).

use super::{GossipNode, Written};
use simlab_sim::{Invariant, InvariantKind, NodeId, World};

/// Why an acknowledged write is still kept.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Witness {
    /// This replica holds it, or a version written knowing it.
    Holder(NodeId),
    /// This acknowledged delete saw it, and nothing the delete removed survives.
    Deleted {
        /// The node that took the delete.
        writer: u32,
        /// Its place in that node's journal.
        index: usize,
    },
}

fn holds(world: &World<'_, GossipNode>, replica: NodeId, w: &Written) -> bool {
    world
        .durable(replica)
        .store()
        .get(&w.key)
        .is_some_and(|vs| vs.iter().any(|v| v.seen.covers(w.version.dot)))
}

/// Whether `replica` holds a value of `delete`'s key that the delete had seen.
fn holds_deleted_value(world: &World<'_, GossipNode>, replica: NodeId, delete: &Written) -> bool {
    world
        .durable(replica)
        .store()
        .get(&delete.key)
        .is_some_and(|vs| {
            vs.iter()
                .any(|v| !v.is_tombstone() && delete.version.seen.covers(v.dot))
        })
}

fn replicas(world: &World<'_, GossipNode>) -> impl Iterator<Item = NodeId> + use<> {
    (0..world.cluster_size()).map(NodeId)
}

fn journal<'a>(world: &World<'a, GossipNode>, writer: u32) -> &'a [Written] {
    &world.durable(NodeId(writer)).journal
}

/// Why `w` is kept, or `None` if it is lost.
fn witness(world: &World<'_, GossipNode>, w: &Written) -> Option<Witness> {
    if let Some(holder) = replicas(world).find(|&r| holds(world, r, w)) {
        return Some(Witness::Holder(holder));
    }
    (0..world.cluster_size()).find_map(|writer| {
        journal(world, writer)
            .iter()
            .enumerate()
            .find(|(_, d)| {
                d.key == w.key
                    && d.version.is_tombstone()
                    && d.version.seen.covers(w.version.dot)
                    && !replicas(world).any(|r| holds_deleted_value(world, r, d))
            })
            .map(|(index, _)| Witness::Deleted { writer, index })
    })
}

fn describe(w: &Written) -> String {
    match &w.version.value {
        Some(v) => format!("put {}={v} ({})", w.key, w.version.dot),
        None => format!("delete of {} ({})", w.key, w.version.dot),
    }
}

/// Why a lost write is lost, for the violation message.
fn why_lost(world: &World<'_, GossipNode>, w: &Written) -> String {
    let mut why = format!(
        "the {} acknowledged by n{} is lost: no replica holds it or a version written knowing it",
        describe(w),
        w.version.dot.node
    );
    if w.version.is_tombstone()
        && let Some(r) = replicas(world).find(|&r| holds_deleted_value(world, r, w))
    {
        why += &format!(
            ", and {r} holds a value the delete had removed, which will spread back: its tombstones were collected before every replica saw it"
        );
    }
    why
}

/// Every acknowledged write that is lost now.
pub fn lost_writes<'a>(world: &World<'a, GossipNode>) -> Vec<&'a Written> {
    (0..world.cluster_size())
        .flat_map(|writer| journal(world, writer))
        .filter(|w| witness(world, w).is_none())
        .collect()
}

/// No acknowledged write is lost (always). Remembers why each write is kept and looks again
/// only when a step wrote that replica's store.
#[derive(Clone, Debug, Default)]
pub struct NoLostWrite {
    /// Per writer, per journal entry.
    witnesses: Vec<Vec<Witness>>,
}

impl Invariant<GossipNode> for NoLostWrite {
    fn name(&self) -> &str {
        "NoLostWrite"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, GossipNode>) -> Result<(), String> {
        let changed = world.durable_writes();
        if changed.is_empty() {
            return Ok(());
        }
        let n = world.cluster_size() as usize;
        self.witnesses.resize(n, Vec::new());
        for (writer, seen) in self.witnesses.iter_mut().enumerate() {
            for (index, w) in journal(world, writer as u32).iter().enumerate() {
                let stale = match seen.get(index) {
                    None => true,
                    Some(Witness::Holder(h)) => changed.contains(h) && !holds(world, *h, w),
                    Some(Witness::Deleted { writer, index }) => {
                        let d = &journal(world, *writer)[*index];
                        changed.iter().any(|&r| holds_deleted_value(world, r, d))
                    }
                };
                if stale {
                    let found = witness(world, w).ok_or_else(|| why_lost(world, w))?;
                    if index < seen.len() {
                        seen[index] = found;
                    } else {
                        seen.push(found);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Whether every live replica holds the same store, remembering which replicas were found
/// equal to the first live one at which revisions: after convergence, when stores stop
/// changing, a check of a thousand replicas compares revisions, not stores.
#[derive(Clone, Debug, Default)]
struct Agreement {
    /// The reference replica and its revision when `confirmed` was filled.
    reference: Option<(NodeId, u64)>,
    /// Per replica, the revision at which it was found equal to the reference.
    confirmed: Vec<Option<u64>>,
}

impl Agreement {
    /// `Ok` if every live replica's store equals the first live one's; else the two that
    /// differ.
    fn check(&mut self, world: &World<'_, GossipNode>) -> Result<(), (NodeId, NodeId)> {
        let mut live = world.live_nodes().map(|(id, _)| id);
        let Some(first) = live.next() else {
            return Ok(());
        };
        let reference = world.durable(first);
        if self.reference != Some((first, reference.revision())) {
            self.reference = Some((first, reference.revision()));
            self.confirmed.clear();
        }
        self.confirmed.resize(world.cluster_size() as usize, None);
        for other in live {
            let durable = world.durable(other);
            let seen = &mut self.confirmed[other.index()];
            if *seen == Some(durable.revision()) {
                continue;
            }
            if durable.store() != reference.store() {
                return Err((first, other));
            }
            *seen = Some(durable.revision());
        }
        Ok(())
    }
}

/// After the faults, every live replica holds the same versions of every key (eventually).
#[derive(Clone, Debug, Default)]
pub struct Converged {
    agreement: Agreement,
}

impl Invariant<GossipNode> for Converged {
    fn name(&self) -> &str {
        "Converged"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, GossipNode>) -> Result<(), String> {
        self.agreement.check(world).map_err(|(first, other)| {
            let reference = &world.durable(first).store();
            let store = &world.durable(other).store();
            let key = reference
                .iter()
                .find(|(k, vs)| store.get(*k) != Some(*vs))
                .map(|(k, _)| k)
                .or_else(|| store.keys().find(|k| !reference.contains_key(*k)));
            format!(
                "{first} and {other} hold different versions of {}",
                key.map_or("a key", String::as_str)
            )
        })
    }
}

/// After the faults, every live replica holds every acknowledged write, a version written
/// knowing it, or the key is gone by a delete that saw it (eventually).
#[derive(Clone, Debug, Default)]
pub struct WritesEverywhere {
    agreement: Agreement,
    /// The last write found missing (writer, journal index) and where: looked at first, since
    /// it usually stays missing for many checks while gossip catches up.
    last_missing: Option<(u32, usize, NodeId)>,
}

impl WritesEverywhere {
    fn missing(world: &World<'_, GossipNode>, w: &Written, r: NodeId) -> bool {
        world.node(r).is_some()
            && !holds(world, r, w)
            && !matches!(witness(world, w), Some(Witness::Deleted { .. }))
    }
}

impl Invariant<GossipNode> for WritesEverywhere {
    fn name(&self) -> &str {
        "WritesEverywhere"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, GossipNode>) -> Result<(), String> {
        if let Some((writer, index, r)) = self.last_missing {
            let w = &journal(world, writer)[index];
            if Self::missing(world, w, r) {
                return Err(format!("{r} lacks the {}", describe(w)));
            }
            self.last_missing = None;
        }
        let live: Vec<NodeId> = world.live_nodes().map(|(id, _)| id).collect();
        // Replicas that hold the same store hold the same writes: once they agree (the usual
        // state after convergence, checked every millisecond), one of them answers for all.
        let agree = self.agreement.check(world).is_ok();
        let looked_at = if agree { &live[..1] } else { &live[..] };
        for writer in 0..world.cluster_size() {
            for (index, w) in journal(world, writer).iter().enumerate() {
                if let Some(&r) = looked_at.iter().find(|&&r| !holds(world, r, w))
                    && Self::missing(world, w, r)
                {
                    self.last_missing = Some((writer, index, r));
                    return Err(format!("{r} lacks the {}", describe(w)));
                }
            }
        }
        Ok(())
    }
}

/// A replica never keeps a version next to one written knowing it: the versions it holds of a
/// key are concurrent siblings (always). Looks only at replicas the step wrote.
#[derive(Clone, Debug)]
pub struct SiblingsConcurrent;

impl Invariant<GossipNode> for SiblingsConcurrent {
    fn name(&self) -> &str {
        "SiblingsConcurrent"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, GossipNode>) -> Result<(), String> {
        for &replica in world.durable_writes() {
            for (key, versions) in world.durable(replica).store() {
                for old in versions {
                    if let Some(new) = versions.iter().find(|v| old.overtaken_by(v)) {
                        return Err(format!(
                            "{replica} keeps {key}'s version {} beside {}, which was written knowing it",
                            old.dot, new.dot
                        ));
                    }
                    if versions.iter().filter(|v| v.dot == old.dot).count() > 1 {
                        return Err(format!("{replica} keeps {key}'s version {} twice", old.dot));
                    }
                }
            }
        }
        Ok(())
    }
}
