//! Consistent-hash rebalancing: a key-value store sharded over a consistent-hash ring whose
//! members join and leave, handing key ranges over under faults; the ring every member and
//! client computes ownership from; and the theory of how keys move and spread, measured.
//!
//! - [`hash_ring`]: members, virtual nodes, successor lists, the arcs that move between two
//!   memberships, and bounded-load placement.
//! - [`node`]: the store, its authority, and the handoff protocol (the module's documentation
//!   states who serves a key during a handoff).
//! - [`theory`]: the measured table behind `simlab ring-stats` and the book's chapter.

pub mod hash_ring;
mod invariants;
pub mod node;
pub mod theory;

pub use hash_ring::{KeyRange, Point, Ring, Transfer, key_point, ring_hash};
pub use node::{KeyPlacement, Placement, RingBug, RingConfig, RingNode};

use crate::kv::{self, KvRequest, KvWorkload};
use crate::protocol::{Protocol, ReportItem, Setup};
use invariants::{NoLostWrite, Settled, SingleServer, WithinCapacity};
use simlab_sim::linearizability::Op;
use simlab_sim::linearizability::models::{KvInput, KvOutput};
use simlab_sim::{FieldError, Invariant, NodeId, Simulation, Workload};

impl Protocol for RingNode {
    type Config = RingConfig;
    const NAME: &'static str = "consistent-hash store";

    fn validate(config: &RingConfig, nodes: u32) -> Result<(), FieldError> {
        if nodes < 2 {
            return Err(FieldError::new(
                "nodes",
                format!(
                    "{nodes}: the store needs its authority (node 0) and at least one member"
                ),
            ));
        }
        if !(1..=1_000).contains(&config.vnodes) {
            return Err(FieldError::new(
                "vnodes",
                format!("{}: must be between 1 and 1000", config.vnodes),
            ));
        }
        if !(1..=10_000).contains(&config.keys) {
            return Err(FieldError::new(
                "keys",
                format!("{}: must be between 1 and 10000", config.keys),
            ));
        }
        if config.get_percent + config.put_percent > 100 {
            return Err(FieldError::new(
                "put_percent",
                format!(
                    "get_percent {} + put_percent {} is more than 100",
                    config.get_percent, config.put_percent
                ),
            ));
        }
        if config.batch == 0 {
            return Err(FieldError::new("batch", "must be at least 1"));
        }
        if config.retry_ms == 0 {
            return Err(FieldError::new("retry_ms", "must be positive"));
        }
        if !(1..=16).contains(&config.replicas) {
            return Err(FieldError::new(
                "replicas",
                format!("{}: must be between 1 and 16", config.replicas),
            ));
        }
        if config.replicas >= nodes {
            return Err(FieldError::new(
                "replicas",
                format!(
                    "{}: more copies than members ({} nodes, one of them the authority)",
                    config.replicas, nodes
                ),
            ));
        }
        if let Some(epsilon) = config.bounded_epsilon() {
            if !(0.0..=10.0).contains(&epsilon) {
                return Err(FieldError::new(
                    "placement",
                    format!("BoundedLoads({epsilon}): ε must be between 0 and 10"),
                ));
            }
            if config.replicated() {
                return Err(FieldError::new(
                    "placement",
                    "bounded loads places one copy of each key: use replicas: 1",
                ));
            }
        }
        for (field, quorum) in [
            ("write_quorum", config.write_quorum),
            ("read_quorum", config.read_quorum),
        ] {
            if let Some(q) = quorum
                && !(1..=config.replicas).contains(&q)
            {
                return Err(FieldError::new(
                    field,
                    format!("{q}: must be between 1 and replicas ({})", config.replicas),
                ));
            }
        }
        Ok(())
    }

    fn validate_absent(_config: &RingConfig, absent: &[u32]) -> Result<(), FieldError> {
        match absent.iter().position(|&n| n == node::AUTHORITY.0) {
            Some(i) => Err(FieldError::new(
                "",
                "node 0 is the authority that numbers the configurations: it must be present",
            )
            .at(i)
            .within("absent")),
            None => Ok(()),
        }
    }

    fn min_nodes(_config: &RingConfig) -> u32 {
        // The authority and one member.
        2
    }

    fn clear_bugs(config: &mut RingConfig) {
        config.bugs.clear();
    }

    fn node(setup: &Setup<RingConfig>, id: NodeId) -> RingNode {
        RingNode::new(
            setup.config.clone(),
            id,
            setup.nodes,
            &setup.absent,
            hash_ring::TRANSFERS.pick(&setup.code),
        )
    }

    fn workload(setup: &Setup<RingConfig>) -> Option<Box<dyn Workload<KvRequest>>> {
        let c = &setup.config;
        Some(Box::new(KvWorkload::new(
            c.keys,
            c.get_percent,
            c.put_percent,
            0,
        )))
    }

    fn invariants(setup: &Setup<RingConfig>) -> Vec<Box<dyn Invariant<RingNode>>> {
        let mut invariants: Vec<Box<dyn Invariant<RingNode>>> = vec![
            Box::new(NoLostWrite),
            Box::new(kv::Linearizable::default()),
            Box::new(Settled),
            Box::new(SingleServer::default()),
        ];
        if setup.config.bounded_epsilon().is_some() {
            invariants.push(Box::new(WithinCapacity));
        }
        invariants
    }

    fn report(setup: &Setup<RingConfig>, sim: &Simulation<RingNode>) -> Vec<ReportItem> {
        let world = sim.world();
        let authority = world.durable(node::AUTHORITY);
        let moved: u64 = (0..world.cluster_size())
            .map(|n| world.durable(NodeId(n)).entries_received)
            .sum();
        let c = &setup.config;
        let replication = c.replicated().then(|| {
            ReportItem::new(
                "replication",
                "copies per key",
                format!(
                    "{} (writes wait for {}, reads compare {})",
                    c.replicas,
                    c.write_quorum(),
                    c.read_quorum()
                ),
                serde_json::json!({
                    "replicas": c.replicas,
                    "write_quorum": c.write_quorum(),
                    "read_quorum": c.read_quorum(),
                }),
            )
        });
        let mut items = vec![
            ReportItem::count("epoch", "final epoch", authority.config.number),
            ReportItem::new(
                "members",
                "members",
                format!("{:?}", authority.config.members),
                serde_json::json!(authority.config.members),
            ),
            ReportItem::count("entries_moved", "entries handed over", moved),
        ];
        items.extend(replication);
        if let Some(epsilon) = c.bounded_epsilon() {
            let members = &authority.config.members;
            let largest = members
                .iter()
                .map(|&m| world.durable(NodeId(m)).store.len())
                .max()
                .unwrap_or(0);
            let capacity = hash_ring::bounded_capacity(c.keys as usize, members.len().max(1), epsilon);
            items.push(ReportItem::new(
                "largest_load",
                "most keys on a member",
                format!("{largest} (capacity {capacity})"),
                serde_json::json!({ "largest": largest, "capacity": capacity }),
            ));
        }
        items
    }

    fn kv_history(sim: &Simulation<RingNode>) -> Option<Vec<Op<KvInput, KvOutput>>> {
        Some(kv::history(sim.world().history()))
    }
}
