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
use simlab_sim::hash::{StableHasher, stable_hash};
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

    /// Mixes this ballot into a state fingerprint.
    pub fn fingerprint(self, hasher: &mut StableHasher) {
        hasher.word(self.round);
        hasher.word(u64::from(self.node));
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
        op: SharedOp,
    },
}

/// A client's operation as Paxos carries it: one copy shared by every message, proposer,
/// acceptor and replica that holds it, with its [`stable_hash`] worked out once.
///
/// It serialises, compares and prints exactly as the [`KvOp`] it holds, so traces and message
/// hashes are those of the operation itself; only fingerprints use the hash.
#[derive(Clone)]
pub struct SharedOp(Arc<(KvOp, u64)>);

impl SharedOp {
    /// Shares `op`, hashing it once.
    pub fn new(op: KvOp) -> SharedOp {
        let hash = stable_hash(&op);
        SharedOp(Arc::new((op, hash)))
    }

    /// The operation's [`stable_hash`].
    pub fn hash(&self) -> u64 {
        self.0.1
    }
}

impl std::ops::Deref for SharedOp {
    type Target = KvOp;
    fn deref(&self) -> &KvOp {
        &self.0.0
    }
}

impl PartialEq for SharedOp {
    fn eq(&self, other: &SharedOp) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.0 == other.0.0
    }
}

impl Eq for SharedOp {}

impl fmt::Debug for SharedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.0.fmt(f)
    }
}

impl Serialize for SharedOp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.0.serialize(serializer)
    }
}

impl Value {
    /// A short description for views and notes.
    pub fn describe(&self) -> String {
        match self {
            Value::Noop => "noop".into(),
            Value::Client { client, seq, op } => format!("c{client}#{seq} {}", op.describe()),
        }
    }

    /// Mixes this value into a state fingerprint: an operation by the hash it was given once,
    /// where serialising it would hash its strings again in every fingerprint of every node
    /// and store that holds it.
    pub fn fingerprint(&self, hasher: &mut StableHasher) {
        match self {
            Value::Noop => hasher.word(0),
            Value::Client { client, seq, op } => {
                hasher.word(1);
                hasher.word(u64::from(*client));
                hasher.word(*seq);
                hasher.word(op.hash());
            }
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

    /// Mixes the entries into a state fingerprint, in node order, each value as `value`
    /// mixes it.
    pub fn fingerprint(&self, hasher: &mut StableHasher, value: impl Fn(&V, &mut StableHasher)) {
        hasher.word(self.0.len() as u64);
        for (node, v) in &self.0 {
            hasher.word(u64::from(node.0));
            value(v, hasher);
        }
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
    /// Mixes what of this store decides the future into a fingerprint: the promise, what was
    /// accepted and what was learned, not the journals (they only record the path, for the
    /// invariants).
    pub fn fingerprint(&self, hasher: &mut StableHasher) {
        let PaxosDurable {
            acceptor:
                AcceptorState {
                    promised,
                    accepted,
                    journal: _,
                },
            learned,
            learned_journal: _,
        } = self;
        promised.fingerprint(hasher);
        hasher.word(accepted.len() as u64);
        for (slot, (ballot, value)) in accepted {
            hasher.word(*slot);
            ballot.fingerprint(hasher);
            value.fingerprint(hasher);
        }
        hasher.word(learned.len() as u64);
        for (slot, value) in learned {
            hasher.word(*slot);
            value.fingerprint(hasher);
        }
    }

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

    fn fingerprint(write: impl FnOnce(&mut StableHasher)) -> u64 {
        let mut hasher = StableHasher::new();
        write(&mut hasher);
        hasher.finish()
    }

    #[test]
    fn a_shared_op_serialises_compares_and_prints_as_its_operation() {
        let op = KvOp::Put("k".into(), "v".into());
        let shared = SharedOp::new(op.clone());
        // Traces and message hashes serialise it: they must not move.
        assert_eq!(stable_hash(&shared), stable_hash(&op));
        assert_eq!(shared.hash(), stable_hash(&op));
        assert_eq!(format!("{shared:?}"), format!("{op:?}"));
        assert_eq!(*shared, op);
        assert_eq!(shared, SharedOp::new(op.clone()), "equal by content, not by copy");
        assert_ne!(shared, SharedOp::new(KvOp::Put("k".into(), "w".into())));
    }

    #[test]
    fn a_value_fingerprint_tells_apart_operations_of_one_client_request() {
        let value = |client, seq, new: &str| Value::Client {
            client,
            seq,
            op: SharedOp::new(KvOp::cas("k", "", new)),
        };
        let of = |v: &Value| fingerprint(|h| v.fingerprint(h));
        let base = of(&value(1, 1, "a"));
        assert_eq!(base, of(&value(1, 1, "a")));
        // The same client and sequence number with another operation (an acceptor that
        // corrupts values) is another state.
        assert_ne!(base, of(&value(1, 1, "b")));
        assert_ne!(base, of(&value(2, 1, "a")));
        assert_ne!(base, of(&value(1, 2, "a")));
        assert_ne!(base, of(&Value::Noop));
    }

    #[test]
    fn a_durable_fingerprint_sees_promise_acceptances_and_learning_but_not_journals() {
        let value = Value::Client {
            client: 0,
            seq: 1,
            op: SharedOp::new(KvOp::cas("k", "", "a")),
        };
        let ballot = Ballot { round: 1, node: 2 };
        let of = |d: &PaxosDurable| fingerprint(|h| d.fingerprint(h));
        let empty = PaxosDurable::default();
        let mut journaled = empty.clone();
        journaled.acceptor.journal.push((0, ballot, value.clone()));
        journaled.learned_journal.push(0);
        assert_eq!(of(&empty), of(&journaled));
        let mut promised = empty.clone();
        promised.acceptor.promised = ballot;
        let mut accepted = empty.clone();
        accepted.acceptor.accepted.insert(0, (ballot, value.clone()));
        let mut learned = empty.clone();
        learned.learn(0, value.clone());
        let mut learned_elsewhere = empty.clone();
        learned_elsewhere.learn(1, value);
        let prints = [&empty, &promised, &accepted, &learned, &learned_elsewhere].map(of);
        for (i, a) in prints.iter().enumerate() {
            for b in &prints[i + 1..] {
                assert_ne!(a, b, "{prints:?}");
            }
        }
    }

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
