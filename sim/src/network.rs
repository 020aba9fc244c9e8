//! The simulated network: latency, loss, duplication, reordering and partitions.
//!
//! Each message is decided once, when it is sent, by an ordered list of rules ([`Rule::ALL`])
//! where the first verdict that is not "pass" wins: (1) the link is cut by a partition: dropped;
//! (2) the link's drop probability: dropped; (3) otherwise delivered after a latency drawn from
//! the link's distribution, plus with the reorder probability an extra delay; (4) with the
//! duplicate probability a second copy follows with its own latency.
//!
//! **Partitions and messages in flight.** A partition cuts the wire, not just the sockets: when a
//! message reaches its destination the engine checks reachability again, and a message whose link
//! was cut while it was in flight is lost. Healing does not resurrect it.
//!
//! Reachability is a directed graph: an edge `a -> b` means `a` can reach `b`. Groups, one-way
//! cuts, isolation and bridges all remove edges; heal restores the full graph. The graph is kept
//! as the list of cuts since the last heal, not as its edges, so that 1,000 nodes cost O(nodes)
//! per fault; petgraph's algorithms walk it through its visit traits.

use crate::hash::StableHasher;
use crate::node::NodeId;
use crate::rng::{self, Probability, SimRng};
use crate::time::Time;
use petgraph::algo::tarjan_scc;
use petgraph::visit::{GraphBase, GraphRef, IntoNeighbors, IntoNodeIdentifiers, NodeIndexable};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A latency distribution, in milliseconds as written in scenario files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LatencyMs {
    /// Always this many milliseconds.
    Constant(u64),
    /// Uniform between the two bounds, inclusive (microsecond resolution).
    Uniform(u64, u64),
    /// Exponential with this mean, never above the cap.
    Exponential {
        /// Mean latency.
        mean: u64,
        /// Largest latency.
        cap: u64,
    },
    /// Approximately normal with this mean and standard deviation, never below zero.
    Normal {
        /// Mean latency.
        mean: u64,
        /// Standard deviation.
        stddev: u64,
    },
}

impl Default for LatencyMs {
    fn default() -> Self {
        LatencyMs::Uniform(1, 10)
    }
}

impl LatencyMs {
    /// Draws one latency.
    pub fn sample(&self, rng: &mut SimRng) -> Time {
        const US: u64 = 1_000;
        Time::from_micros(match *self {
            LatencyMs::Constant(ms) => ms * US,
            LatencyMs::Uniform(lo, hi) => rng::between(rng, lo * US, hi * US),
            LatencyMs::Exponential { mean, cap } => rng::exponential(rng, mean * US, cap * US),
            LatencyMs::Normal { mean, stddev } => rng::normal(rng, mean * US, stddev * US),
        })
    }

    /// Checks the parameters; the error says which rule they break.
    pub fn validate(&self) -> Result<(), String> {
        const LIMIT_MS: u64 = 3_600_000;
        let too_big = |v: u64| v > LIMIT_MS;
        match *self {
            LatencyMs::Uniform(lo, hi) if lo > hi => Err(format!(
                "Uniform({lo}, {hi}): the lower bound is above the upper bound"
            )),
            LatencyMs::Exponential { mean, cap } if cap < mean => {
                Err(format!("Exponential: cap {cap} is below the mean {mean}"))
            }
            LatencyMs::Constant(v) | LatencyMs::Uniform(_, v) if too_big(v) => Err(format!(
                "{v} ms is more than an hour; latencies are in milliseconds"
            )),
            LatencyMs::Exponential { cap: v, .. } if too_big(v) => Err(format!(
                "{v} ms is more than an hour; latencies are in milliseconds"
            )),
            LatencyMs::Normal { mean, stddev } if too_big(mean) || too_big(stddev) => {
                Err("a normal latency above an hour; latencies are in milliseconds".into())
            }
            _ => Ok(()),
        }
    }
}

/// How one link (or every link, by default) behaves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// One-way latency.
    pub latency_ms: LatencyMs,
    /// Probability that a message is lost.
    pub drop: Probability,
    /// Probability that a message is delivered twice.
    pub duplicate: Probability,
    /// Probability that a message is held back by an extra delay, so later ones overtake it.
    pub reorder: Probability,
    /// The largest extra delay of a reordered message.
    pub reorder_ms: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency_ms: LatencyMs::default(),
            drop: Probability::NEVER,
            duplicate: Probability::NEVER,
            reorder: Probability::NEVER,
            reorder_ms: 50,
        }
    }
}

/// A per-link override of the default behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkOverride {
    /// Sender.
    pub from: u32,
    /// Receiver.
    pub to: u32,
    /// How this link behaves instead of the default.
    pub link: LinkConfig,
}

/// The network section of a scenario: the default behaviour of every link, then overrides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// One-way latency.
    pub latency_ms: LatencyMs,
    /// Probability that a message is lost.
    pub drop: Probability,
    /// Probability that a message is delivered twice.
    pub duplicate: Probability,
    /// Probability that a message is held back by an extra delay, so later ones overtake it.
    pub reorder: Probability,
    /// The largest extra delay of a reordered message.
    pub reorder_ms: u64,
    /// Per-link overrides (directed).
    pub links: Vec<LinkOverride>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig::from_link(LinkConfig::default())
    }
}

impl NetworkConfig {
    /// Every link behaves like `link`, with no overrides.
    pub fn from_link(link: LinkConfig) -> NetworkConfig {
        NetworkConfig {
            latency_ms: link.latency_ms,
            drop: link.drop,
            duplicate: link.duplicate,
            reorder: link.reorder,
            reorder_ms: link.reorder_ms,
            links: Vec::new(),
        }
    }

    /// The behaviour of links without an override.
    pub fn default_link(&self) -> LinkConfig {
        LinkConfig {
            latency_ms: self.latency_ms.clone(),
            drop: self.drop,
            duplicate: self.duplicate,
            reorder: self.reorder,
            reorder_ms: self.reorder_ms,
        }
    }
}

/// Why a message did not arrive.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The link was cut when it was sent or while it was in flight.
    Partition,
    /// Random loss.
    Loss,
    /// The receiver was crashed when it arrived.
    Crashed,
    /// The receiver was not a member (absent, or left) when it arrived.
    NotMember,
}

impl DropReason {
    /// A short lowercase label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Partition => "partition",
            DropReason::Loss => "loss",
            DropReason::Crashed => "receiver down",
            DropReason::NotMember => "receiver not a member",
        }
    }
}

/// The network's decision for one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Dropped, for this reason.
    Drop(DropReason),
    /// Delivered after this delay; `duplicate` is a second copy's delay, if any.
    Deliver {
        /// Delay of the message.
        delay: Time,
        /// Delay of its duplicate.
        duplicate: Option<Time>,
    },
}

/// One partition fault, kept as the rule it applies rather than as the links it removes: applying
/// it costs O(nodes) and asking whether it cuts a link O(1), where a link table costs O(nodes²)
/// for both (a million links at 1,000 nodes).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Cut {
    /// Nodes with different labels cannot reach each other.
    Groups(Vec<u32>),
    /// The node reaches no one and no one reaches it.
    Isolate(u32),
    /// `from` does not reach `to`.
    OneWay {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
    },
    /// Nodes on the left (bit 1) and the right (bit 2) cannot reach each other, except the bridge.
    Bridge {
        /// Which sides each node is on.
        sides: Vec<u8>,
        /// The node that still reaches both sides.
        bridge: u32,
    },
}

impl Cut {
    const LEFT: u8 = 1;
    const RIGHT: u8 = 2;

    /// Whether this cut removes the link `from -> to`; never a node's link to itself.
    fn cuts(&self, from: u32, to: u32) -> bool {
        if from == to {
            return false;
        }
        match self {
            Cut::Groups(label) => label[from as usize] != label[to as usize],
            Cut::Isolate(n) => from == *n || to == *n,
            Cut::OneWay { from: a, to: b } => from == *a && to == *b,
            Cut::Bridge { sides, bridge } => {
                let (a, b) = (sides[from as usize], sides[to as usize]);
                from != *bridge
                    && to != *bridge
                    && ((a & Cut::LEFT != 0 && b & Cut::RIGHT != 0)
                        || (a & Cut::RIGHT != 0 && b & Cut::LEFT != 0))
            }
        }
    }

    /// Whether it cuts any link among `nodes` nodes.
    fn cuts_any(&self, nodes: u32) -> bool {
        match self {
            Cut::Groups(label) => label.iter().any(|&l| l != label[0]),
            Cut::Isolate(_) => nodes > 1,
            Cut::OneWay { from, to } => from != to,
            Cut::Bridge { sides, bridge } => {
                let on = |side: u8| {
                    (0..nodes).filter(move |&n| n != *bridge && sides[n as usize] & side != 0)
                };
                on(Cut::LEFT).any(|a| on(Cut::RIGHT).any(|b| a != b))
            }
        }
    }

    /// Whether every link it keeps joins nodes that reach each other both ways and directly, so
    /// that its components are classes of a label.
    fn is_grouping(&self) -> bool {
        matches!(self, Cut::Groups(_) | Cut::Isolate(_))
    }

    /// The class of `node` under a grouping cut.
    fn class_of(&self, node: u32) -> u32 {
        match self {
            Cut::Groups(label) => label[node as usize],
            Cut::Isolate(n) => u32::from(node == *n),
            Cut::OneWay { .. } | Cut::Bridge { .. } => 0,
        }
    }
}

/// What a display needs to know about the partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionSummary {
    /// Groups of nodes that reach each other ([`Reachability::components`]).
    pub groups: Vec<Vec<NodeId>>,
    /// How many directed links are cut.
    pub cut_links: u64,
    /// Links cut in one direction only ([`Reachability::one_way_links`]).
    pub one_way: Vec<(NodeId, NodeId)>,
}

/// Which nodes can reach which: the partition state.
///
/// Kept as the cuts applied since the last heal, so that a split or a heal of 1,000 nodes costs
/// O(nodes) and a healthy network answers every question at once; plus every cut ever applied
/// with its time, for the rule that a message in flight is lost if its link goes down before it
/// arrives (a link goes down when a cut removes it and no cut since the last heal had).
#[derive(Clone, Debug)]
pub struct Reachability {
    nodes: u32,
    /// Cuts applied since the last heal; each cuts at least one link.
    active: Vec<Arc<Cut>>,
    /// Every cut applied, oldest first.
    history: Vec<Applied>,
    /// How many heals came before now.
    heals: u64,
}

/// A cut as applied: when, and after how many heals.
#[derive(Clone, Debug)]
struct Applied {
    at: Time,
    heals: u64,
    cut: Arc<Cut>,
}

impl Reachability {
    /// Mixes the links cut now into `hasher`, for state fingerprints. When they were cut, and
    /// the cuts healed before, are left out.
    pub(crate) fn fingerprint(&self, hasher: &mut StableHasher) {
        hasher.word(self.active.len() as u64);
        if !self.active.is_empty() {
            hasher.bytes(format!("{:?}", self.active).as_bytes());
        }
    }

    /// A fully connected network of `nodes`.
    pub fn full(nodes: u32) -> Reachability {
        Reachability {
            nodes,
            active: Vec::new(),
            history: Vec::new(),
            heals: 0,
        }
    }

    /// Restores every link.
    pub fn heal(&mut self, _now: Time) {
        self.active.clear();
        self.heals += 1;
    }

    fn apply(&mut self, cut: Cut, now: Time) {
        if cut.cuts_any(self.nodes) {
            let cut = Arc::new(cut);
            self.active.push(Arc::clone(&cut));
            self.history.push(Applied {
                at: now,
                heals: self.heals,
                cut,
            });
        }
    }

    /// Whether a message sent at `sent` from `from` reaches `to` now: the link must be up now
    /// and must not have been cut at any moment since the message was sent.
    pub fn delivers(&self, from: NodeId, to: NodeId, sent: Time) -> bool {
        self.can_reach(from, to)
            && !(0..self.history.len())
                .rev()
                .take_while(|&k| self.history[k].at >= sent)
                .any(|k| self.went_down(k, from.0, to.0))
    }

    /// Whether the `k`th cut took the link `from -> to` down: it cuts it, and no cut before it
    /// since the last heal already had.
    fn went_down(&self, k: usize, from: u32, to: u32) -> bool {
        let applied = &self.history[k];
        applied.cut.cuts(from, to)
            && !self.history[..k]
                .iter()
                .rev()
                .take_while(|earlier| earlier.heals == applied.heals)
                .any(|earlier| earlier.cut.cuts(from, to))
    }

    /// Whether a message from `from` to `to` gets through. A node always reaches itself.
    pub fn can_reach(&self, from: NodeId, to: NodeId) -> bool {
        !self.active.iter().any(|cut| cut.cuts(from.0, to.0))
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.active.is_empty()
    }

    /// Cuts `from -> to` only.
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId, now: Time) {
        self.apply(
            Cut::OneWay {
                from: from.0,
                to: to.0,
            },
            now,
        );
    }

    /// Cuts both directions between every pair of nodes in different groups. Nodes in no group
    /// form one more group together.
    pub fn split(&mut self, groups: &[Vec<NodeId>], now: Time) {
        let mut label = vec![u32::MAX; self.nodes as usize];
        for (g, members) in (0u32..).zip(groups) {
            for &m in members {
                label[m.index()] = g;
            }
        }
        self.apply(Cut::Groups(label), now);
    }

    /// Cuts every link to and from `node`.
    pub fn isolate(&mut self, node: NodeId, now: Time) {
        self.apply(Cut::Isolate(node.0), now);
    }

    /// Two sides that reach each other only through `bridge`, which reaches both.
    pub fn bridge(&mut self, left: &[NodeId], right: &[NodeId], bridge: NodeId, now: Time) {
        let mut sides = vec![0u8; self.nodes as usize];
        for &a in left {
            sides[a.index()] |= Cut::LEFT;
        }
        for &b in right {
            sides[b.index()] |= Cut::RIGHT;
        }
        self.apply(
            Cut::Bridge {
                sides,
                bridge: bridge.0,
            },
            now,
        );
    }

    /// The strongly connected components: sets of nodes that can all reach each other directly
    /// or through others. Sorted, each sorted, so the answer is deterministic.
    ///
    /// Splits and isolations alone leave classes of nodes that reach each other directly: one
    /// pass over the nodes finds them. A one-way cut or a bridge needs the general search over
    /// every link.
    pub fn components(&self) -> Vec<Vec<NodeId>> {
        let mut comps: Vec<Vec<NodeId>> = if self.active.iter().all(|c| c.is_grouping()) {
            let mut classes: BTreeMap<Vec<u32>, Vec<NodeId>> = BTreeMap::new();
            for n in 0..self.nodes {
                let key = self.active.iter().map(|c| c.class_of(n)).collect();
                classes.entry(key).or_default().push(NodeId(n));
            }
            classes.into_values().collect()
        } else {
            tarjan_scc(self)
                .into_iter()
                .map(|mut c| {
                    c.sort_unstable();
                    c.into_iter().map(NodeId).collect()
                })
                .collect()
        };
        comps.sort();
        comps
    }

    /// The directed links that are cut, in order.
    pub fn cut_links(&self) -> Vec<(NodeId, NodeId)> {
        if !self.is_partitioned() {
            return Vec::new();
        }
        let n = self.nodes;
        (0..n)
            .flat_map(|a| (0..n).map(move |b| (NodeId(a), NodeId(b))))
            .filter(|&(a, b)| !self.can_reach(a, b))
            .collect()
    }

    /// The links cut in one direction only (`from` does not reach `to`, but `to` reaches
    /// `from`), in order. Splits, isolations and bridges cut both ways, so only one-way cuts
    /// can leave such a link: this looks at them alone.
    pub fn one_way_links(&self) -> Vec<(NodeId, NodeId)> {
        let mut links: Vec<(NodeId, NodeId)> = self
            .active
            .iter()
            .filter_map(|cut| match **cut {
                Cut::OneWay { from, to } => Some((NodeId(from), NodeId(to))),
                _ => None,
            })
            .filter(|&(from, to)| self.can_reach(to, from))
            .collect();
        links.sort_unstable();
        links.dedup();
        links
    }

    /// The partition as a display shows it, in a size that grows with the cluster and the
    /// faults, never with the square of the cluster.
    pub fn summary(&self) -> PartitionSummary {
        PartitionSummary {
            groups: self.components(),
            cut_links: self.cut_link_count(),
            one_way: self.one_way_links(),
        }
    }

    /// How many directed links are cut.
    pub fn cut_link_count(&self) -> u64 {
        if !self.is_partitioned() {
            return 0;
        }
        let n = self.nodes;
        (0..n)
            .map(|a| {
                (0..n)
                    .filter(|&b| !self.can_reach(NodeId(a), NodeId(b)))
                    .count() as u64
            })
            .sum()
    }
}

// The reachability graph for petgraph's algorithms, without building it: node `a`'s neighbours
// are the nodes it can reach.
impl GraphBase for &Reachability {
    type NodeId = u32;
    type EdgeId = (u32, u32);
}

impl GraphRef for &Reachability {}

impl NodeIndexable for &Reachability {
    fn node_bound(&self) -> usize {
        self.nodes as usize
    }
    fn to_index(&self, a: u32) -> usize {
        a as usize
    }
    fn from_index(&self, i: usize) -> u32 {
        i as u32
    }
}

impl IntoNodeIdentifiers for &Reachability {
    type NodeIdentifiers = std::ops::Range<u32>;
    fn node_identifiers(self) -> Self::NodeIdentifiers {
        0..self.nodes
    }
}

/// The nodes one node reaches directly, itself excluded.
pub struct Reached<'a> {
    reach: &'a Reachability,
    from: u32,
    next: u32,
}

impl Iterator for Reached<'_> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        while self.next < self.reach.nodes {
            let to = self.next;
            self.next += 1;
            if to != self.from && self.reach.can_reach(NodeId(self.from), NodeId(to)) {
                return Some(to);
            }
        }
        None
    }
}

impl<'a> IntoNeighbors for &'a Reachability {
    type Neighbors = Reached<'a>;
    fn neighbors(self, from: u32) -> Reached<'a> {
        Reached {
            reach: self,
            from,
            next: 0,
        }
    }
}

/// The network at run time: link behaviour plus reachability.
#[derive(Clone, Debug)]
pub struct Network {
    default: LinkConfig,
    overrides: Vec<LinkOverride>,
    /// Current partition state.
    pub reach: Reachability,
}

impl Network {
    /// A network of `nodes` with this configuration, fully connected.
    pub fn new(nodes: u32, config: &NetworkConfig) -> Network {
        Network {
            default: config.default_link(),
            overrides: config.links.clone(),
            reach: Reachability::full(nodes),
        }
    }

    fn link(&self, from: NodeId, to: NodeId) -> &LinkConfig {
        self.overrides
            .iter()
            .find(|o| o.from == from.0 && o.to == to.0)
            .map_or(&self.default, |o| &o.link)
    }

    /// Decides the fate of one message, drawing from the sender's network stream: the rules of
    /// [`Rule::ALL`], in order, each passing the message on (perhaps with a delay or a copy) or
    /// dropping it; the first drop decides.
    pub fn decide(&self, from: NodeId, to: NodeId, rng: &mut SimRng) -> Verdict {
        let mut delivery = Delivery {
            from,
            to,
            link: self.link(from, to),
            delay: Time::ZERO,
            duplicate: None,
        };
        for rule in Rule::ALL {
            if let Err(reason) = rule.apply(self, &mut delivery, rng) {
                return Verdict::Drop(reason);
            }
        }
        Verdict::Deliver {
            delay: delivery.delay,
            duplicate: delivery.duplicate,
        }
    }
}

/// A message on its way through the rules: its link and what the rules so far decided.
struct Delivery<'a> {
    from: NodeId,
    to: NodeId,
    link: &'a LinkConfig,
    delay: Time,
    duplicate: Option<Time>,
}

/// One rule of the network. A new kind of network fault is a new rule in [`Rule::ALL`], at the
/// place in the order where it acts; a rule that is off draws no random number, so adding one
/// does not move existing traces.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// A partition cuts the link: dropped.
    Partition,
    /// The link's drop probability: dropped.
    Loss,
    /// The link's latency, plus with the reorder probability an extra delay.
    Latency,
    /// With the duplicate probability, a second copy with its own latency.
    Duplicate,
}

impl Rule {
    /// Every rule, in the order the network applies them.
    pub const ALL: [Rule; 4] = [Rule::Partition, Rule::Loss, Rule::Latency, Rule::Duplicate];

    fn apply(
        self,
        network: &Network,
        d: &mut Delivery<'_>,
        rng: &mut SimRng,
    ) -> Result<(), DropReason> {
        match self {
            Rule::Partition if !network.reach.can_reach(d.from, d.to) => {
                return Err(DropReason::Partition);
            }
            Rule::Partition => {}
            Rule::Loss if rng::chance(rng, d.link.drop) => return Err(DropReason::Loss),
            Rule::Loss => {}
            Rule::Latency => d.delay = latency(d.link, rng),
            Rule::Duplicate => {
                d.duplicate = rng::chance(rng, d.link.duplicate).then(|| latency(d.link, rng));
            }
        }
        Ok(())
    }
}

/// A latency drawn from the link's distribution, plus with the reorder probability an extra delay.
fn latency(link: &LinkConfig, rng: &mut SimRng) -> Time {
    let mut delay = link.latency_ms.sample(rng);
    if rng::chance(rng, link.reorder) {
        delay += Time::from_micros(rng::between(rng, 0, link.reorder_ms * 1_000));
    }
    delay
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Stream, stream};

    const T: Time = Time::from_millis(5);

    #[test]
    fn a_cut_loses_what_was_in_flight_even_after_heal() {
        let mut r = Reachability::full(2);
        let (a, b) = (NodeId(0), NodeId(1));
        assert!(r.delivers(a, b, Time::ZERO));
        r.isolate(b, Time::from_millis(5));
        r.heal(Time::from_millis(6));
        assert!(
            !r.delivers(a, b, Time::from_millis(4)),
            "sent before the cut"
        );
        assert!(
            r.delivers(a, b, Time::from_millis(6)),
            "sent after the heal"
        );
        assert!(r.delivers(b, b, Time::ZERO), "a node always reaches itself");
    }

    fn ids(v: &[u32]) -> Vec<NodeId> {
        v.iter().copied().map(NodeId).collect()
    }

    #[test]
    fn split_cuts_between_groups_only() {
        let mut r = Reachability::full(5);
        assert!(!r.is_partitioned());
        r.split(&[ids(&[0, 1]), ids(&[2, 3])], T);
        assert!(r.can_reach(NodeId(0), NodeId(1)));
        assert!(!r.can_reach(NodeId(1), NodeId(2)));
        assert!(!r.can_reach(NodeId(3), NodeId(0)));
        // Node 4 was in no group: it forms its own.
        assert!(!r.can_reach(NodeId(4), NodeId(0)));
        assert_eq!(r.components(), vec![ids(&[0, 1]), ids(&[2, 3]), ids(&[4])]);
        r.heal(T);
        assert!(!r.is_partitioned());
        assert_eq!(r.components(), vec![ids(&[0, 1, 2, 3, 4])]);
    }

    #[test]
    fn one_way_cut_is_asymmetric() {
        let mut r = Reachability::full(3);
        r.cut_one_way(NodeId(0), NodeId(1), T);
        assert!(!r.can_reach(NodeId(0), NodeId(1)));
        assert!(r.can_reach(NodeId(1), NodeId(0)));
        // 0 still reaches 1 through 2, so they stay in one component.
        assert_eq!(r.components().len(), 1);
        assert_eq!(r.cut_links(), vec![(NodeId(0), NodeId(1))]);
    }

    #[test]
    fn isolate_and_bridge() {
        let mut r = Reachability::full(5);
        r.isolate(NodeId(2), T);
        assert_eq!(r.components(), vec![ids(&[0, 1, 3, 4]), ids(&[2])]);
        r.heal(T);
        r.bridge(&ids(&[0, 1]), &ids(&[3, 4]), NodeId(2), T);
        assert!(!r.can_reach(NodeId(0), NodeId(3)));
        assert!(r.can_reach(NodeId(0), NodeId(2)) && r.can_reach(NodeId(2), NodeId(4)));
        assert_eq!(
            r.components().len(),
            1,
            "the bridge keeps everyone connected indirectly"
        );
    }

    /// The link table the cut list replaced, kept as the reference it must agree with: every
    /// link's state, and when each last went down.
    struct LinkTable {
        n: usize,
        allowed: Vec<bool>,
        last_cut: Vec<Option<Time>>,
    }

    impl LinkTable {
        fn new(n: usize) -> LinkTable {
            LinkTable {
                n,
                allowed: vec![true; n * n],
                last_cut: vec![None; n * n],
            }
        }
        fn cut(&mut self, now: Time, mut cuts: impl FnMut(usize, usize) -> bool) {
            for a in 0..self.n {
                for b in 0..self.n {
                    let i = a * self.n + b;
                    if a != b && cuts(a, b) && self.allowed[i] {
                        self.allowed[i] = false;
                        self.last_cut[i] = Some(now);
                    }
                }
            }
        }
        fn delivers(&self, a: usize, b: usize, sent: Time) -> bool {
            let i = a * self.n + b;
            self.allowed[i] && self.last_cut[i].is_none_or(|cut| cut < sent)
        }
    }

    #[test]
    fn cut_list_agrees_with_the_link_table_it_replaced() {
        let mut rng = stream(7, Stream::Network(0));
        for _ in 0..60 {
            let n = rng::between(&mut rng, 1, 7) as usize;
            let mut table = LinkTable::new(n);
            let mut reach = Reachability::full(n as u32);
            let pick = |rng: &mut SimRng| rng::below(rng, n as u64) as usize;
            let some = |rng: &mut SimRng| -> Vec<usize> {
                (0..n).filter(|_| rng::below(rng, 3) == 0).collect()
            };
            for step in 0..40u64 {
                let now = Time::from_millis(step);
                match rng::below(&mut rng, 6) {
                    0 => {
                        reach.heal(now);
                        table.allowed.fill(true);
                    }
                    1 => {
                        let (x, y) = (some(&mut rng), some(&mut rng));
                        let mut group = vec![usize::MAX; n];
                        x.iter().for_each(|&m| group[m] = 0);
                        y.iter().for_each(|&m| group[m] = 1);
                        let ids = |v: &[usize]| v.iter().map(|&m| NodeId(m as u32)).collect();
                        reach.split(&[ids(&x), ids(&y)], now);
                        table.cut(now, |a, b| group[a] != group[b]);
                    }
                    2 => {
                        let m = pick(&mut rng);
                        reach.isolate(NodeId(m as u32), now);
                        table.cut(now, |a, b| a == m || b == m);
                    }
                    3 => {
                        let (f, t) = (pick(&mut rng), pick(&mut rng));
                        reach.cut_one_way(NodeId(f as u32), NodeId(t as u32), now);
                        table.cut(now, |a, b| a == f && b == t);
                    }
                    4 => {
                        let (l, r, m) = (some(&mut rng), some(&mut rng), pick(&mut rng));
                        let ids = |v: &[usize]| -> Vec<NodeId> {
                            v.iter().map(|&x| NodeId(x as u32)).collect()
                        };
                        reach.bridge(&ids(&l), &ids(&r), NodeId(m as u32), now);
                        table.cut(now, |a, b| {
                            a != m
                                && b != m
                                && ((l.contains(&a) && r.contains(&b))
                                    || (r.contains(&a) && l.contains(&b)))
                        });
                    }
                    _ => {}
                }
                for a in 0..n {
                    for b in 0..n {
                        let (x, y) = (NodeId(a as u32), NodeId(b as u32));
                        assert_eq!(reach.can_reach(x, y), table.allowed[a * n + b]);
                        for sent in [0, step / 2, step] {
                            let sent = Time::from_millis(sent);
                            assert_eq!(reach.delivers(x, y, sent), table.delivers(a, b, sent));
                        }
                    }
                }
                assert_eq!(reach.is_partitioned(), table.allowed.iter().any(|ok| !ok));
                let general: Vec<Vec<NodeId>> = {
                    let mut c: Vec<Vec<NodeId>> = tarjan_scc(&reach)
                        .into_iter()
                        .map(|mut c| {
                            c.sort_unstable();
                            c.into_iter().map(NodeId).collect()
                        })
                        .collect();
                    c.sort();
                    c
                };
                assert_eq!(reach.components(), general, "the grouping shortcut");
                assert_eq!(reach.cut_link_count(), reach.cut_links().len() as u64);
                let cut = reach.cut_links();
                let one_way: Vec<(NodeId, NodeId)> = cut
                    .iter()
                    .copied()
                    .filter(|&(a, b)| !cut.contains(&(b, a)))
                    .collect();
                assert_eq!(reach.one_way_links(), one_way, "one-way links");
            }
        }
    }

    #[test]
    fn a_thousand_node_split_is_cheap_to_hold() {
        let mut r = Reachability::full(1_000);
        let left: Vec<NodeId> = (0..500).map(NodeId).collect();
        r.split(&[left], T);
        assert!(!r.can_reach(NodeId(1), NodeId(999)));
        assert!(r.can_reach(NodeId(500), NodeId(999)));
        assert_eq!(r.components().len(), 2);
        assert_eq!(r.cut_link_count(), 2 * 500 * 500);
        r.heal(T);
        assert!(!r.is_partitioned());
    }

    #[test]
    fn decide_drops_on_partition_without_drawing() {
        let mut net = Network::new(2, &NetworkConfig::default());
        net.reach.isolate(NodeId(1), T);
        let mut rng = stream(1, Stream::Network(0));
        let before = rng.clone();
        assert_eq!(
            net.decide(NodeId(0), NodeId(1), &mut rng),
            Verdict::Drop(DropReason::Partition)
        );
        assert_eq!(rng, before);
    }

    #[test]
    fn overrides_apply_to_their_link_only() {
        let mut config = NetworkConfig::from_link(LinkConfig {
            latency_ms: LatencyMs::Constant(3),
            ..LinkConfig::default()
        });
        config.links.push(LinkOverride {
            from: 0,
            to: 1,
            link: LinkConfig {
                drop: Probability::ALWAYS,
                ..LinkConfig::default()
            },
        });
        let net = Network::new(2, &config);
        let mut rng = stream(1, Stream::Network(0));
        assert_eq!(
            net.decide(NodeId(0), NodeId(1), &mut rng),
            Verdict::Drop(DropReason::Loss)
        );
        assert_eq!(
            net.decide(NodeId(1), NodeId(0), &mut rng),
            Verdict::Deliver {
                delay: Time::from_millis(3),
                duplicate: None
            }
        );
    }

    #[test]
    fn latency_validation_names_the_rule() {
        assert!(
            LatencyMs::Uniform(5, 1)
                .validate()
                .unwrap_err()
                .contains("lower bound")
        );
        assert!(
            LatencyMs::Exponential { mean: 5, cap: 1 }
                .validate()
                .is_err()
        );
        assert!(LatencyMs::Constant(10_000_000).validate().is_err());
        assert!(LatencyMs::Normal { mean: 5, stddev: 1 }.validate().is_ok());
    }
}
