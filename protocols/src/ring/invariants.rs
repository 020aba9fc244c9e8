//! What the rebalancing store promises, checked from outside.
//!
//! - `NoLostWrite` (always): every key with an acknowledged write is held by some node that is
//!   still in the cluster (up or crashed: its durable store counts; a node that left does not).
//! - `Linearizable` (history): the shared key-value checker over every client operation; with
//!   one owner per key and the handoff rule, or with replicas and quorums that meet, each key
//!   behaves as a single register.
//! - `SingleServer` (always): at most one live node serves each key (with replicas: takes
//!   writes for it), whatever the epochs the nodes are at.
//! - `Settled` (eventually): once the faults are over, every live node knows the authority's
//!   configuration, every handoff is released, and every key is held by exactly its owners under
//!   that configuration (its owner, or with replicas its live owners, all at the same version):
//!   no stale copies, no node serving what it does not own.

use super::hash_ring::{bounded_capacity, key_point};
use super::node::{Pull, RingDurable, RingNode};
use crate::kv::{KvOp, KvResponse};
use simlab_sim::history::Completion;
use simlab_sim::{Invariant, InvariantKind, NodeId, NodeStatus, World};
use std::collections::BTreeMap;

/// The keys with an acknowledged write, with the time of the first acknowledgement. Borrowed
/// from the history: this runs after every step, and allocates no key.
fn written_keys<'a>(world: &World<'a, RingNode>) -> BTreeMap<&'a str, simlab_sim::Time> {
    let mut keys = BTreeMap::new();
    for op in &world.history().ops {
        // A write took effect when it was answered `Ok` (a failed compare-and-set changed
        // nothing). The workload has no deletes.
        let write = !matches!(op.request.0, KvOp::Get(_));
        let acked = matches!(op.completion, Some(Completion::Ok(KvResponse::Ok(_))));
        if let (true, true, Some(at)) = (write, acked, op.completed) {
            keys.entry(op.request.0.key()).or_insert(at);
        }
    }
    keys
}

fn in_cluster(world: &World<'_, RingNode>, id: NodeId) -> bool {
    !matches!(world.status(id), NodeStatus::Left | NodeStatus::Absent)
}

/// The newest configuration any node knows, as the authority or a member decided it.
fn newest<'a>(world: &World<'a, RingNode>) -> &'a RingDurable {
    (0..world.cluster_size())
        .map(|n| world.durable(NodeId(n)))
        .max_by_key(|d| d.config.number)
        .expect("a cluster has a node")
}

/// No key with an acknowledged write is held by nobody.
#[derive(Clone, Debug, Default)]
pub struct NoLostWrite;

impl Invariant<RingNode> for NoLostWrite {
    fn name(&self) -> &str {
        "NoLostWrite"
    }

    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }

    fn check(&mut self, world: &World<'_, RingNode>) -> Result<(), String> {
        for (key, at) in written_keys(world) {
            let held = (0..world.cluster_size()).map(NodeId).any(|n| {
                in_cluster(world, n) && world.durable(n).store.contains_key(key)
            });
            if held {
                continue;
            }
            let newest = newest(world);
            let point = key_point(key);
            let handoff = (0..world.cluster_size())
                .map(NodeId)
                .flat_map(|n| {
                    world
                        .durable(n)
                        .outgoing
                        .iter()
                        .filter(move |o| o.range.contains(point))
                        .map(move |o| (n, o))
                })
                .last();
            let why = match handoff {
                Some((from, o)) => format!(
                    "its arc was being handed from {from} to n{} at epoch {} (closed: {}, \
                     released: {})",
                    o.to, newest.config.number, o.closed, o.released
                ),
                None => format!("no handoff of its arc is under way (epoch {})", newest.config.number),
            };
            return Err(format!(
                "{key}, written and acknowledged at {at}, is held by no node in the cluster: {why}"
            ));
        }
        Ok(())
    }
}

/// At most one node serves each key at any moment (with replicas: takes writes for it). This is
/// the handoff rule and the epoch rule checked directly: a source serves an arc until it closes
/// it, the new owner from its final answer on, and a node with an older configuration serves
/// only what that configuration gives it and it has not handed over.
#[derive(Clone, Debug, Default)]
pub struct SingleServer {
    /// The store's keys, named once.
    keys: Vec<String>,
}

impl Invariant<RingNode> for SingleServer {
    fn name(&self) -> &str {
        "SingleServer"
    }

    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }

    fn check(&mut self, world: &World<'_, RingNode>) -> Result<(), String> {
        let live: Vec<(NodeId, &RingNode)> = (0..world.cluster_size())
            .map(NodeId)
            .filter_map(|n| world.node(n).map(|node| (n, node)))
            .collect();
        if self.keys.is_empty()
            && let Some((_, node)) = live.first()
        {
            self.keys = node.key_names().collect();
        }
        for key in &self.keys {
            let mut servers = live
                .iter()
                .filter(|(n, node)| node.serves(key, world.durable(*n)))
                .map(|(n, _)| *n);
            if let (Some(a), Some(b)) = (servers.next(), servers.next()) {
                let (da, db) = (world.durable(a), world.durable(b));
                return Err(format!(
                    "{a} (epoch {}) and {b} (epoch {}) both serve {key}",
                    da.config.number, db.config.number
                ));
            }
        }
        Ok(())
    }
}

/// Once the faults are over, everyone agrees on the configuration and each key sits with its
/// owner alone.
#[derive(Clone, Debug, Default)]
pub struct Settled;

impl Invariant<RingNode> for Settled {
    fn name(&self) -> &str {
        "Settled"
    }

    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }

    fn check(&mut self, world: &World<'_, RingNode>) -> Result<(), String> {
        let authority = world.durable(super::node::AUTHORITY);
        let config = &authority.config;
        if !authority.queue.is_empty() {
            return Err(format!(
                "the authority still has {} membership changes waiting",
                authority.queue.len()
            ));
        }
        let live: Vec<NodeId> = (0..world.cluster_size())
            .map(NodeId)
            .filter(|&n| world.node(n).is_some())
            .collect();
        for &n in &live {
            let d = world.durable(n);
            if d.config.number != config.number {
                return Err(format!(
                    "{n} is at epoch {}, the authority at {}",
                    d.config.number, config.number
                ));
            }
            if let Some(i) = d.incoming.iter().find(|i| i.state != Pull::Released) {
                return Err(format!("{n} has not finished pulling an arc from n{}", i.from));
            }
            let member = config.members.contains(&n.0);
            let replicated = world.node(n).is_some_and(|node| node.replicated());
            if member && replicated && d.complete != config.number {
                return Err(format!(
                    "{n} does not know epoch {} is complete, so it still counts the old owners",
                    config.number
                ));
            }
        }
        // Every node computes the same placement from a configuration; any live one will do.
        let Some(placement) = live
            .first()
            .and_then(|&n| world.node(n))
            .map(|node| node.placement_for(config))
        else {
            return Err("no node is up: nobody holds the keys".into());
        };
        let ring = placement.ring();
        let replicas = live
            .first()
            .and_then(|&n| world.node(n))
            .map_or(1, |node| node.replicas());
        if replicas > 1 {
            return converged(world, &live, ring, replicas, config.number);
        }
        for &n in &live {
            for key in world.durable(n).store.keys() {
                let owner = placement.owner(key_point(key));
                if owner != Some(n.0) {
                    return Err(format!(
                        "{n} still holds {key}, which n{} owns at epoch {}",
                        owner.map_or("-".to_string(), |o| o.to_string()),
                        config.number
                    ));
                }
            }
        }
        Ok(())
    }
}

/// With bounded loads, no member holds more keys than the capacity ⌈(1 + ε)·keys / members⌉ of
/// its configuration, not counting the keys it is handing over (a handoff copies before it
/// deletes, so for a moment a key is on both sides; it is served by one).
#[derive(Clone, Debug, Default)]
pub struct WithinCapacity;

impl Invariant<RingNode> for WithinCapacity {
    fn name(&self) -> &str {
        "WithinCapacity"
    }

    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }

    fn check(&mut self, world: &World<'_, RingNode>) -> Result<(), String> {
        for n in (0..world.cluster_size()).map(NodeId) {
            let Some(epsilon) = world.node(n).and_then(|node| node.bounded_epsilon()) else {
                continue;
            };
            let d = world.durable(n);
            if !d.config.members.contains(&n.0) {
                continue;
            }
            let keys = world.node(n).map_or(0, |node| node.key_count());
            let capacity = bounded_capacity(keys, d.config.members.len(), epsilon);
            let leaving = |k: &str| {
                let point = key_point(k);
                d.outgoing
                    .iter()
                    .any(|o| !o.released && o.range.contains(point))
            };
            let held = d.store.keys().filter(|k| !leaving(k)).count();
            if held > capacity {
                return Err(format!(
                    "{n} holds {held} keys at epoch {}, over the capacity {capacity} \
                     (⌈(1 + {epsilon})·{keys} / {}⌉)",
                    d.config.number,
                    d.config.members.len()
                ));
            }
        }
        Ok(())
    }
}

/// With replicas: each key any live node holds is held by exactly its live owners, all at the
/// same version.
fn converged(
    world: &World<'_, RingNode>,
    live: &[NodeId],
    ring: &super::hash_ring::Ring,
    replicas: usize,
    epoch: u64,
) -> Result<(), String> {
    let mut holders: BTreeMap<&str, Vec<(u32, u64)>> = BTreeMap::new();
    for &n in live {
        for (key, entry) in &world.durable(n).store {
            holders.entry(key).or_default().push((n.0, entry.version));
        }
    }
    for (key, held) in holders {
        let owners = ring.owners(key_point(key), replicas);
        if let Some(&(n, _)) = held.iter().find(|(n, _)| !owners.contains(n)) {
            return Err(format!(
                "n{n} still holds {key}, whose owners at epoch {epoch} are {owners:?}"
            ));
        }
        let missing = owners
            .iter()
            .find(|&&o| live.contains(&NodeId(o)) && !held.iter().any(|&(n, _)| n == o));
        if let Some(o) = missing {
            return Err(format!(
                "n{o} owns {key} at epoch {epoch} but holds no copy (anti-entropy has not \
                 brought it)"
            ));
        }
        let (low, high) = (
            held.iter().map(|&(_, v)| v).min(),
            held.iter().map(|&(_, v)| v).max(),
        );
        if low != high {
            return Err(format!(
                "the owners of {key} disagree: versions {:?}",
                held
            ));
        }
    }
    Ok(())
}
