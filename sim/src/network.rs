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
//! Reachability is a directed graph (petgraph): an edge `a -> b` means `a` can reach `b`. Groups,
//! one-way cuts, isolation and bridges all remove edges; heal restores the full graph.

use crate::node::NodeId;
use crate::rng::{self, Probability, SimRng};
use crate::time::Time;
use petgraph::algo::tarjan_scc;
use petgraph::graphmap::DiGraphMap;
use serde::{Deserialize, Serialize};

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
}

impl DropReason {
    /// A short lowercase label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::Partition => "partition",
            DropReason::Loss => "loss",
            DropReason::Crashed => "receiver down",
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

/// Which nodes can reach which: the partition state.
#[derive(Clone, Debug)]
pub struct Reachability {
    nodes: u32,
    graph: DiGraphMap<u32, ()>,
    /// `allowed[from * n + to]`, the graph flattened for the per-message check.
    allowed: Vec<bool>,
    /// `last_cut[from * n + to]`: when that link was last cut, if ever.
    last_cut: Vec<Option<Time>>,
}

impl Reachability {
    /// A fully connected network of `nodes`.
    pub fn full(nodes: u32) -> Reachability {
        let mut r = Reachability {
            nodes,
            graph: DiGraphMap::new(),
            allowed: Vec::new(),
            last_cut: vec![None; nodes as usize * nodes as usize],
        };
        r.heal(Time::ZERO);
        r
    }

    /// Restores every link.
    pub fn heal(&mut self, now: Time) {
        self.graph.clear();
        for a in 0..self.nodes {
            self.graph.add_node(a);
            for b in 0..self.nodes {
                if a != b {
                    self.graph.add_edge(a, b, ());
                }
            }
        }
        self.refresh(now);
    }

    /// Rebuilds the flat table from the graph, stamping links that just went down with `now`.
    fn refresh(&mut self, now: Time) {
        let n = self.nodes as usize;
        let was = std::mem::replace(&mut self.allowed, vec![false; n * n]);
        for i in 0..n {
            self.allowed[i * n + i] = true;
        }
        for (a, b, ()) in self.graph.all_edges() {
            self.allowed[a as usize * n + b as usize] = true;
        }
        for (i, (&before, &after)) in was.iter().zip(&self.allowed).enumerate() {
            if before && !after {
                self.last_cut[i] = Some(now);
            }
        }
    }

    /// Whether a message sent at `sent` from `from` reaches `to` now: the link must be up now
    /// and must not have been cut at any moment since the message was sent.
    pub fn delivers(&self, from: NodeId, to: NodeId, sent: Time) -> bool {
        let i = from.index() * self.nodes as usize + to.index();
        self.allowed[i] && self.last_cut[i].is_none_or(|cut| cut < sent)
    }

    /// Whether a message from `from` to `to` gets through. A node always reaches itself.
    pub fn can_reach(&self, from: NodeId, to: NodeId) -> bool {
        self.allowed[from.index() * self.nodes as usize + to.index()]
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        self.allowed.iter().any(|&ok| !ok)
    }

    /// Cuts `from -> to` only.
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId, now: Time) {
        self.graph.remove_edge(from.0, to.0);
        self.refresh(now);
    }

    /// Cuts both directions between every pair of nodes in different groups. Nodes in no group
    /// form one more group together.
    pub fn split(&mut self, groups: &[Vec<NodeId>], now: Time) {
        let mut group_of = vec![usize::MAX; self.nodes as usize];
        for (g, members) in groups.iter().enumerate() {
            for &m in members {
                group_of[m.index()] = g;
            }
        }
        for a in 0..self.nodes {
            for b in 0..self.nodes {
                if group_of[a as usize] != group_of[b as usize] {
                    self.graph.remove_edge(a, b);
                }
            }
        }
        self.refresh(now);
    }

    /// Cuts every link to and from `node`.
    pub fn isolate(&mut self, node: NodeId, now: Time) {
        for other in 0..self.nodes {
            self.graph.remove_edge(node.0, other);
            self.graph.remove_edge(other, node.0);
        }
        self.refresh(now);
    }

    /// Two sides that reach each other only through `bridge`, which reaches both.
    pub fn bridge(&mut self, left: &[NodeId], right: &[NodeId], bridge: NodeId, now: Time) {
        for &a in left {
            for &b in right {
                if a != bridge && b != bridge {
                    self.graph.remove_edge(a.0, b.0);
                    self.graph.remove_edge(b.0, a.0);
                }
            }
        }
        self.refresh(now);
    }

    /// The strongly connected components: sets of nodes that can all reach each other directly
    /// or through others. Sorted, each sorted, so the answer is deterministic.
    pub fn components(&self) -> Vec<Vec<NodeId>> {
        let mut comps: Vec<Vec<NodeId>> = tarjan_scc(&self.graph)
            .into_iter()
            .map(|mut c| {
                c.sort_unstable();
                c.into_iter().map(NodeId).collect()
            })
            .collect();
        comps.sort();
        comps
    }

    /// The directed links that are cut, in order.
    pub fn cut_links(&self) -> Vec<(NodeId, NodeId)> {
        let n = self.nodes;
        (0..n)
            .flat_map(|a| (0..n).map(move |b| (NodeId(a), NodeId(b))))
            .filter(|&(a, b)| !self.can_reach(a, b))
            .collect()
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
