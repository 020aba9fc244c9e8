//! Paxos (Lamport, *The Part-Time Parliament*, 1998; *Paxos Made Simple*, 2001), in two forms
//! that share one acceptor, one durable store and one set of invariants:
//!
//! - [`Synod`]: **single-decree Paxos**. Every node is a proposer, an acceptor and a learner;
//!   the decree is the value of a write-once register that clients set (a put proposes its
//!   value: compare-and-set from empty) and read. Any number of proposers may run at once;
//!   without backoff they can pre-empt each other for ever (the *dueling proposers*).
//! - [`MultiPaxos`]: a **replicated key-value store**. A distinguished leader runs phase 1 once
//!   for every future slot, then phase 2 per slot; slots are applied in order; a new leader
//!   re-proposes the highest accepted value of each open slot and fills gaps with no-ops.
//!
//! Ballots are `(round, node)` pairs, so two proposers never share one. Acceptors keep their
//! promise and what they accepted on disk; learners keep what they learned.
//!
//! Invariants: [`invariants::Agreement`] (at most one value is ever chosen per slot, judged from
//! every acceptor's durable state, remembering each value chosen even after acceptors move on),
//! [`invariants::Validity`] (only a proposed value is accepted), [`invariants::LearnedChosen`]
//! (what a replica learns and applies in a slot is the value chosen there),
//! [`invariants::PromiseKept`] (no acceptor accepts below a ballot it promised), linearizability
//! of the client history, and liveness once faults end.

pub mod acceptor;
pub mod invariants;
pub mod multi;
pub mod synod;

pub use multi::MultiPaxos;
pub use synod::Synod;

use crate::kv::KvOp;
use acceptor::AcceptorState;
use serde::{Deserialize, Serialize};
use simlab_sim::{FieldError, Node};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A ballot: a round number and the proposer that owns it. Ordered by round, then node, so every
/// proposer's ballots are distinct from everyone else's. `0.0` (the default) is below every real
/// ballot.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    /// The round.
    pub round: u64,
    /// The proposer.
    pub node: u32,
}

impl Ballot {
    /// The leadership epoch this ballot stands for: higher ballots give higher epochs.
    pub fn epoch(self) -> u64 {
        self.round
            .saturating_mul(1 << 20)
            .saturating_add(u64::from(self.node))
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// A proposed value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Value {
    /// Nothing: fills a slot a new leader found empty.
    Noop,
    /// A client's operation, with its session position.
    Client {
        /// The client.
        client: u32,
        /// Its sequence number.
        seq: u64,
        /// The operation, shared (not copied) by every message, acceptor and replica that
        /// holds it.
        op: Arc<KvOp>,
    },
}

impl Value {
    /// A short description for views and notes.
    pub fn describe(&self) -> String {
        match self {
            Value::Noop => "noop".into(),
            Value::Client { client, seq, op } => format!("c{client}#{seq} {}", op.describe()),
        }
    }
}

/// A map from node to `V` for the few entries a proposer or learner keeps per node: a sorted
/// vector, not a `BTreeMap`, whose smallest node has room for eleven entries. A search stores
/// a copy of every node it changes, and those nodes kept mostly empty tree nodes. It hashes
/// and iterates exactly as a `BTreeMap` (in node order, serialised as a map).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ByNode<V>(Vec<(simlab_sim::NodeId, V)>);

impl<V> Default for ByNode<V> {
    fn default() -> Self {
        ByNode(Vec::new())
    }
}

impl<V> ByNode<V> {
    /// The entry of `node`, if it has one.
    pub fn get(&self, node: &simlab_sim::NodeId) -> Option<&V> {
        let at = self.0.binary_search_by_key(node, |(n, _)| *n).ok()?;
        Some(&self.0[at].1)
    }

    /// Sets `node`'s entry, replacing any it had.
    pub fn insert(&mut self, node: simlab_sim::NodeId, value: V) {
        match self.0.binary_search_by_key(&node, |(n, _)| *n) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (node, value)),
        }
    }

    /// How many nodes have an entry.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no node has an entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries' values, in node order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl<V: Serialize> Serialize for ByNode<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(node, v)| (node, v)))
    }
}

/// What a Paxos node keeps on disk: its acceptor's state and what its learner learned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PaxosDurable {
    /// The acceptor's promise and accepted proposals.
    pub acceptor: AcceptorState,
    /// Per slot, the value learned as chosen.
    pub learned: BTreeMap<u64, Value>,
    /// Every slot learned, in order, for the invariants (not hashed).
    #[serde(skip)]
    pub learned_journal: Vec<u64>,
}

impl PaxosDurable {
    /// The highest round this store has seen: promised or accepted (a restarted proposer
    /// starts above it).
    pub fn highest_round(&self) -> u64 {
        let accepted = self.acceptor.accepted.values().map(|(b, _)| b.round).max();
        accepted.unwrap_or(0).max(self.acceptor.promised.round)
    }

    /// Records `value` as learned in `slot` (once).
    pub fn learn(&mut self, slot: u64, value: Value) {
        if let std::collections::btree_map::Entry::Vacant(e) = self.learned.entry(slot) {
            e.insert(value);
            self.learned_journal.push(slot);
        }
    }
}

/// Deliberate mistakes, for teaching and to prove the checkers catch them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PaxosBug {
    /// Acceptors accept any proposal, whatever they promised.
    AcceptWithoutPromiseCheck,
    /// A proposer ignores the highest accepted value phase 1 reported and proposes its own.
    IgnoreAcceptedValue,
    /// Acceptors keep their promise in memory only: a restarted acceptor has promised nothing.
    VolatilePromise,
    /// Learners count acceptances of different ballots together, as if they were one vote.
    LearnerMixesBallots,
    /// A new Multi-Paxos leader runs phase 1 only for the slots it knows of, taking every slot
    /// after its own last one to be empty.
    SkipPhase1ForEmptySlots,
    /// A Multi-Paxos candidate counts late promises for its earlier ballots as promises for
    /// the one it stands with now.
    CountStalePromises,
}

/// Checks a protocol's planted bugs against those it can have.
fn validate_bugs(bugs: &[PaxosBug], allowed: &[PaxosBug], protocol: &str) -> Result<(), FieldError> {
    match bugs.iter().find(|b| !allowed.contains(b)) {
        Some(bug) => Err(FieldError::new(
            "bugs",
            format!("{bug:?} is not a bug {protocol} can have (it has {allowed:?})"),
        )),
        None => Ok(()),
    }
}

/// What the invariants need to see of a Paxos node.
pub trait PaxosNode: Node<Durable = PaxosDurable> {
    /// The promise in force: the durable one, or the one kept in memory under
    /// [`PaxosBug::VolatilePromise`].
    fn promised(&self, durable: &PaxosDurable) -> Ballot;
}

/// The highest ballot any node promised, as its durable store says: for reports.
fn highest_promise<P: Node<Durable = PaxosDurable>>(world: &simlab_sim::World<'_, P>) -> Ballot {
    (0..world.cluster_size())
        .map(|i| world.durable(simlab_sim::NodeId(i)).acceptor.promised)
        .max()
        .unwrap_or_default()
}

/// The smallest majority of `nodes`.
pub fn majority(nodes: u32) -> usize {
    nodes as usize / 2 + 1
}

/// A node's fingerprint alone, for tests of what it sees and what it leaves out.
#[cfg(test)]
fn fingerprint_of<N: Node>(node: &N) -> u64 {
    let mut hasher = simlab_sim::hash::StableHasher::new();
    node.fingerprint(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    #[test]
    fn a_by_node_map_keeps_node_order_and_hashes_as_a_btree_map() {
        use simlab_sim::NodeId;
        use simlab_sim::hash::stable_hash;
        let mut small = ByNode::default();
        let mut tree = BTreeMap::new();
        for (node, value) in [(3, "c"), (0, "a"), (2, "b"), (0, "z"), (4, "d")] {
            small.insert(NodeId(node), value);
            tree.insert(NodeId(node), value);
            assert_eq!(stable_hash(&small), stable_hash(&tree));
        }
        assert_eq!(small.len(), 4);
        assert_eq!(small.get(&NodeId(0)), Some(&"z"));
        assert_eq!(small.get(&NodeId(1)), None);
        assert_eq!(small.values().collect::<Vec<_>>(), tree.values().collect::<Vec<_>>());
        assert!(!small.is_empty() && ByNode::<u8>::default().is_empty());
    }

    #[test]
    fn settings_a_protocol_cannot_use_are_refused_with_their_field() {
        let synod = synod::SynodConfig {
            bugs: vec![PaxosBug::SkipPhase1ForEmptySlots],
            ..Default::default()
        };
        let e = Synod::validate(&synod, 3).unwrap_err();
        assert_eq!(e.field, "bugs");
        assert!(e.rule.contains("SkipPhase1ForEmptySlots is not a bug single-decree Paxos can have"));
        let backoff = synod::SynodConfig {
            backoff_ms: (50, 10),
            ..Default::default()
        };
        assert_eq!(Synod::validate(&backoff, 3).unwrap_err().field, "backoff_ms");
        let no_rounds = synod::SynodConfig {
            max_rounds: Some(0),
            ..Default::default()
        };
        let e = Synod::validate(&no_rounds, 3).unwrap_err();
        assert_eq!(e.field, "max_rounds");
        assert!(e.rule.contains("would never propose"), "{}", e.rule);
        let multi = multi::MultiPaxosConfig {
            heartbeat_ms: 150,
            ..Default::default()
        };
        let e = MultiPaxos::validate(&multi, 3).unwrap_err();
        assert_eq!(e.field, "heartbeat_ms");
        assert!(e.rule.contains("below the shortest election timeout (150)"), "{}", e.rule);
        let no_elections = multi::MultiPaxosConfig {
            max_elections: Some(0),
            ..Default::default()
        };
        let e = MultiPaxos::validate(&no_elections, 3).unwrap_err();
        assert_eq!(e.field, "max_elections");
        assert!(e.rule.contains("no node ever lead"), "{}", e.rule);
        assert_eq!(
            MultiPaxos::validate(&multi::MultiPaxosConfig::default(), 0)
                .unwrap_err()
                .field,
            "nodes"
        );
    }

    #[test]
    fn a_restarted_proposer_starts_above_every_round_its_store_saw() {
        let mut durable = PaxosDurable::default();
        assert_eq!(durable.highest_round(), 0);
        durable.acceptor.promised = Ballot { round: 4, node: 1 };
        acceptor::record(&mut durable.acceptor, 2, Ballot { round: 7, node: 0 }, Value::Noop);
        assert_eq!(durable.highest_round(), 7);
    }
}
