//! A replicated grow-only counter: the worked example of the book's "Writing a protocol".
//!
//! Clients add to the counter and read it at any node; every node answers at once. Each node
//! counts the additions it took itself in its own slot of a vector (`counts[me]`), and every
//! `gossip_ms` sends its whole vector to one random peer, which **merges** it into its own.
//! Only a slot's owner ever increases it, so for every slot the larger count is the newer one:
//! merging takes the larger count slot by slot. That merge is commutative, associative and
//! idempotent, so it does not matter in which order vectors arrive, whether they arrive twice,
//! or whether one is lost (the next gossip repeats it): once gossip gets through, every node
//! holds the same vector and reads the same sum. (This is the G-Counter of Shapiro et al.,
//! *Conflict-free Replicated Data Types*, 2011.)
//!
//! Invariants: no node believes more of a slot than its owner counted (always); after the
//! faults, every live node holds every live owner's count (eventually).
//!
//! The merge is a [`Slot`]: a learner can write it (the book's build exercise) and the protocol
//! runs their code under every fault and sweep.

use simlab_sim::FieldError;
use crate::learner::Slot;
use crate::protocol::{Protocol, ReportItem, Setup};
use serde::{Deserialize, Serialize};
use simlab_sim::rng::{self, SimRng};
use simlab_sim::{
    ClientId, Ctx, Invariant, InvariantKind, Node, NodeId, NodeView, ReplyTo, ResponseClass,
    Simulation, Time, Workload, World,
};
use std::sync::Arc;

// ANCHOR: merge
/// How a node folds a peer's vector into its own.
pub type MergeFn = fn(mine: &mut [u64], theirs: &[u64]);

/// The merge a learner may write; the reference takes the larger count of every slot.
pub static MERGE: Slot<MergeFn> = Slot::new("counter.merge", merge);

/// Slot by slot, the larger count wins.
pub fn merge(mine: &mut [u64], theirs: &[u64]) {
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m = (*m).max(*t);
    }
}
// ANCHOR_END: merge

/// [`CounterBug::MergeBySum`]'s merge: counts what it already knew again.
fn merge_by_sum(mine: &mut [u64], theirs: &[u64]) {
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m += *t;
    }
}

/// Deliberate mistakes, to see the invariants catch them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterBug {
    /// Merge by adding the peer's counts: every gossip counts the same additions again.
    MergeBySum,
}

/// The counter's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CounterConfig {
    /// How often a node sends its vector to a random peer (milliseconds).
    pub gossip_ms: u64,
    /// Percent of client operations that are reads (the rest add 1 to `max_add`).
    pub read_percent: u32,
    /// Largest amount one addition adds.
    pub max_add: u64,
    /// Planted bugs to switch on.
    pub bugs: Vec<CounterBug>,
}

impl Default for CounterConfig {
    fn default() -> Self {
        CounterConfig {
            gossip_ms: 50,
            read_percent: 20,
            max_add: 5,
            bugs: Vec::new(),
        }
    }
}

// ANCHOR: state
/// What survives a crash: the node's own total and its merged view of every slot.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CounterDurable {
    /// Everything this node added itself (the truth about its slot).
    pub own: u64,
    /// The node's view of every slot, its own included.
    pub counts: Vec<u64>,
}

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CounterOp {
    /// Add this much.
    Add(u64),
    /// Read the total.
    Read,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CounterResponse {
    /// The addition is durable here.
    Added,
    /// The total this node knows of.
    Value(u64),
}

/// Node to node: "here is everything I know".
#[derive(Clone, Debug, Serialize)]
pub struct Gossip(pub Vec<u64>);

/// The one timer: time to gossip.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GossipTimer;
// ANCHOR_END: state

/// One counter replica.
#[derive(Clone, Debug)]
pub struct Counter {
    id: NodeId,
    config: Arc<CounterConfig>,
    merge: MergeFn,
}

impl Counter {
    fn gossip_later(&self, ctx: &mut Ctx<'_, Self>) {
        ctx.set_timer(Time::from_millis(self.config.gossip_ms), GossipTimer);
    }
}

// ANCHOR: node
impl Node for Counter {
    type Msg = Gossip;
    type Timer = GossipTimer;
    type Request = CounterOp;
    type Response = CounterResponse;
    type Durable = CounterDurable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let nodes = ctx.cluster_size() as usize;
        if ctx.durable().counts.len() != nodes {
            ctx.durable_mut().counts.resize(nodes, 0);
        }
        // A random first phase, so the nodes do not all gossip at the same instant.
        let phase = ctx.random_between(1, self.config.gossip_ms * 1_000);
        ctx.set_timer(Time::from_micros(phase), GossipTimer);
    }

    fn on_message(&mut self, _from: NodeId, Gossip(theirs): Gossip, ctx: &mut Ctx<'_, Self>) {
        let merge = self.merge;
        merge(&mut ctx.durable_mut().counts, &theirs);
    }

    fn on_timer(&mut self, _: GossipTimer, ctx: &mut Ctx<'_, Self>) {
        let peers = u64::from(ctx.cluster_size() - 1);
        if peers > 0 {
            // Any node but this one: draw among the others, then skip over our own id.
            let pick = rng::below(ctx.rng(), peers) as u32;
            let peer = NodeId(if pick >= self.id.0 { pick + 1 } else { pick });
            ctx.send(peer, Gossip(ctx.durable().counts.clone()));
        }
        self.gossip_later(ctx);
    }

    fn on_request(&mut self, reply_to: ReplyTo, op: CounterOp, ctx: &mut Ctx<'_, Self>) {
        let response = match op {
            CounterOp::Add(n) => {
                let me = self.id.index();
                let durable = ctx.durable_mut();
                durable.own += n;
                durable.counts[me] = durable.own;
                CounterResponse::Added
            }
            CounterOp::Read => CounterResponse::Value(ctx.durable().counts.iter().sum()),
        };
        ctx.reply(reply_to, response);
    }

    fn classify(_: &CounterResponse) -> ResponseClass {
        ResponseClass::Ok
    }

    fn view(&self, durable: &CounterDurable) -> NodeView {
        NodeView::new("replica")
            .field("own", durable.own)
            .field("counts", format!("{:?}", durable.counts))
            .field("value", durable.counts.iter().sum::<u64>())
    }
}
// ANCHOR_END: node

// ANCHOR: protocol
impl Protocol for Counter {
    type Config = CounterConfig;
    const NAME: &'static str = "replicated counter";

    fn validate(config: &CounterConfig, _nodes: u32) -> Result<(), FieldError> {
        if config.gossip_ms == 0 {
            return Err(FieldError::new("gossip_ms", "must be positive"));
        }
        if config.read_percent > 100 {
            return Err(FieldError::new("read_percent", "must be at most 100"));
        }
        if config.max_add == 0 || config.max_add > 1_000_000 {
            return Err(FieldError::new("max_add", "must be between 1 and 1000000"));
        }
        Ok(())
    }
    fn min_nodes(_: &CounterConfig) -> u32 {
        2
    }
    fn clear_bugs(config: &mut CounterConfig) {
        config.bugs.clear();
    }
    fn node(setup: &Setup<CounterConfig>, id: NodeId) -> Counter {
        let merge = if setup.config.bugs.contains(&CounterBug::MergeBySum) {
            merge_by_sum
        } else {
            MERGE.pick(&setup.code)
        };
        Counter {
            id,
            config: setup.config.clone(),
            merge,
        }
    }
    fn workload(setup: &Setup<CounterConfig>) -> Option<Box<dyn Workload<CounterOp>>> {
        Some(Box::new(CounterWorkload(setup.config.clone())))
    }
    fn invariants(_: &Setup<CounterConfig>) -> Vec<Box<dyn Invariant<Counter>>> {
        vec![Box::new(NeverOvercounts), Box::new(Converged)]
    }
    fn report(_: &Setup<CounterConfig>, sim: &Simulation<Counter>) -> Vec<ReportItem> {
        let world = sim.world();
        let total: u64 = (0..world.cluster_size())
            .map(|i| world.durable(NodeId(i)).own)
            .sum();
        vec![ReportItem::count("total_added", "total added", total)]
    }
}
// ANCHOR_END: protocol

/// Clients add random amounts and sometimes read.
#[derive(Clone, Debug)]
struct CounterWorkload(Arc<CounterConfig>);

impl Workload<CounterOp> for CounterWorkload {
    fn next_request(&mut self, _: ClientId, _: u64, rng: &mut SimRng) -> CounterOp {
        if rng::below(rng, 100) < u64::from(self.0.read_percent) {
            CounterOp::Read
        } else {
            CounterOp::Add(rng::between(rng, 1, self.0.max_add))
        }
    }
}

// ANCHOR: invariant
/// No node believes more of a slot than the slot's owner added (always).
#[derive(Clone)]
pub struct NeverOvercounts;

impl Invariant<Counter> for NeverOvercounts {
    fn name(&self) -> &str {
        "NeverOvercounts"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Counter>) -> Result<(), String> {
        let n = world.cluster_size();
        for i in (0..n).map(NodeId) {
            for (j, &count) in world.durable(i).counts.iter().enumerate() {
                let own = world.durable(NodeId(j as u32)).own;
                if count > own {
                    return Err(format!(
                        "{i} counts {count} for n{j}, which added only {own}"
                    ));
                }
            }
        }
        Ok(())
    }
}
// ANCHOR_END: invariant

/// After the faults, every live node holds every live owner's count (eventually).
#[derive(Clone)]
pub struct Converged;

impl Invariant<Counter> for Converged {
    fn name(&self) -> &str {
        "Converged"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, Counter>) -> Result<(), String> {
        let live: Vec<NodeId> = world.live_nodes().map(|(id, _)| id).collect();
        for &i in &live {
            let counts = &world.durable(i).counts;
            for &j in &live {
                let seen = counts.get(j.index()).copied().unwrap_or(0);
                let own = world.durable(j).own;
                if seen != own {
                    return Err(format!("{i} counts {seen} for {j}, which added {own}"));
                }
            }
        }
        Ok(())
    }
}
