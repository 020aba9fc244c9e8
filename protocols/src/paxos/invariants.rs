//! Paxos's safety properties, judged from every acceptor's durable state (not only from what the
//! learners say), plus liveness once faults end. Shared by single-decree and Multi-Paxos.

use super::multi::MultiPaxos;
use super::synod::Synod;
use super::{Ballot, PaxosNode, Value, majority};
use crate::kv::{self, KvOp};
use serde_json::json;
use simlab_sim::{Invariant, InvariantKind, NodeId, NodeStatus, Time, World};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// How soon after the last fault (or the first proposal, if later) a value must be decided.
pub const DECISION_DEADLINE: Time = Time::from_secs(2);

/// How long after faults end a chosen slot may take to be applied on every live replica.
pub const SETTLE: Time = Time::from_secs(1);

/// How soon after the last fault a Multi-Paxos leader must be in place.
pub const ELECTION_DEADLINE: Time = Time::from_secs(5);

/// Single-decree Paxos's invariants.
/// `live`: whether proposers may retry without bound, so that a decision is owed
/// ([`Decides`]).
pub fn synod(live: bool) -> Vec<Box<dyn Invariant<Synod>>> {
    let mut checks: Vec<Box<dyn Invariant<Synod>>> = vec![
        Box::new(Agreement::default()),
        Box::new(Validity::default()),
        Box::new(LearnedChosen::default()),
        Box::new(PromiseKept::default()),
        Box::new(kv::Linearizable::default()),
    ];
    if live {
        checks.push(Box::new(Decides::default()));
    }
    checks
}

/// Multi-Paxos's invariants.
/// `live`: whether nodes may stand for leader without bound, so that a leader and the
/// application of every command are owed ([`LeaderExists`], [`AllApplied`]).
pub fn multi(live: bool) -> Vec<Box<dyn Invariant<MultiPaxos>>> {
    let mut checks: Vec<Box<dyn Invariant<MultiPaxos>>> = vec![
        Box::new(Agreement::default()),
        Box::new(Validity::default()),
        Box::new(LearnedChosen::default()),
        Box::new(PromiseKept::default()),
        Box::new(LeaderPromised::default()),
        Box::new(kv::Linearizable::default()),
    ];
    if live {
        checks.push(Box::new(LeaderExists::default()));
        checks.push(Box::new(AllApplied::default()));
    }
    checks.push(Box::new(ValueChosen));
    checks
}

/// Follows every acceptor's acceptances and works out what is chosen: a value is chosen in a
/// slot once a majority of acceptors have accepted it in the same ballot, whether or not they
/// still hold it (acceptors move on to higher ballots; a choice stays made).
#[derive(Clone, Default)]
struct ChosenTracker {
    read: Vec<usize>,
    /// Per slot (slots are numbered densely from 0 or 1).
    slots: Vec<SlotVotes>,
    /// How many slots have a value chosen.
    chosen_count: usize,
}

/// What the tracker knows of one slot.
#[derive(Clone, Default)]
struct SlotVotes {
    /// The first value chosen, its ballot, and when.
    chosen: Option<(Value, Ballot, Time)>,
    /// Per ballot not yet decisive: the value and who accepted it.
    votes: Vec<(Ballot, Value, Vec<NodeId>)>,
}

/// How far into a node's journal a check has read (nothing, before its first look at the node).
fn read_up_to(read: &[usize], id: NodeId) -> usize {
    read.get(id.index()).copied().unwrap_or(0)
}

impl ChosenTracker {
    /// Whether every acceptance made so far has been counted: a step that only promised or
    /// learned leaves the tracker as it is, so an invariant over it need not be copied (which
    /// an exhaustive search does for every check of a state it keeps) to look.
    fn caught_up<P: PaxosNode>(&self, world: &World<'_, P>) -> bool {
        world.durable_writes().iter().all(|&id| {
            read_up_to(&self.read, id) == world.durable(id).acceptor.journal.len()
        })
    }

    /// The value chosen in `slot`, with its ballot and when, if any.
    fn chosen(&self, slot: u64) -> Option<&(Value, Ballot, Time)> {
        self.slots.get(slot as usize)?.chosen.as_ref()
    }

    /// Counts the acceptances `nodes` made since the tracker last read their journals;
    /// returns a second, different value chosen in a slot, if any.
    fn update<P: PaxosNode>(
        &mut self,
        world: &World<'_, P>,
        nodes: impl IntoIterator<Item = NodeId>,
    ) -> Result<(), String> {
        let quorum = majority(world.cluster_size());
        self.read.resize(world.cluster_size() as usize, 0);
        for id in nodes {
            let state = &world.durable(id).acceptor;
            let read = &mut self.read[id.index()];
            let new = &state.journal[*read..];
            *read = state.journal.len();
            for (slot, ballot, value) in new {
                let index = *slot as usize;
                if index >= self.slots.len() {
                    self.slots.resize_with(index + 1, SlotVotes::default);
                }
                let record = &mut self.slots[index];
                // The chosen value again (as Paxos makes every later proposal): nothing new.
                if record.chosen.as_ref().is_some_and(|(v, ..)| v == value) {
                    continue;
                }
                let at = match record.votes.iter().position(|(b, ..)| b == ballot) {
                    Some(at) => at,
                    None => {
                        record.votes.push((*ballot, value.clone(), Vec::new()));
                        record.votes.len() - 1
                    }
                };
                let (_, first, voters) = &mut record.votes[at];
                if first != value {
                    return Err(format!(
                        "slot {slot}: ballot {ballot} carries two values, {} and {}",
                        first.describe(),
                        value.describe()
                    ));
                }
                if voters.contains(&id) {
                    continue;
                }
                voters.push(id);
                if voters.len() < quorum {
                    continue;
                }
                match &record.chosen {
                    None => {
                        record.chosen = Some((value.clone(), *ballot, world.now()));
                        self.chosen_count += 1;
                        // Votes for the chosen value can no longer make a difference.
                        record.votes.swap_remove(at);
                    }
                    Some((earlier, earlier_ballot, when)) => {
                        // (The same value returned early above.)
                        return Err(format!(
                            "slot {slot}: {} was chosen at ballot {earlier_ballot} ({when}), and now {} at ballot {ballot} ({})",
                            earlier.describe(),
                            value.describe(),
                            world.now()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// At most one value is ever chosen per slot, judged from the acceptors' durable state.
#[derive(Clone, Default)]
pub struct Agreement {
    tracker: ChosenTracker,
}

impl<P: PaxosNode> Invariant<P> for Agreement {
    fn name(&self) -> &str {
        "Agreement"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn unchanged(&self, world: &World<'_, P>) -> bool {
        self.tracker.caught_up(world)
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        if world.durable_writes().is_empty() {
            return Ok(());
        }
        // Only nodes that wrote their durable store can have accepted anything.
        self.tracker.update(world, world.durable_writes().iter().copied())
    }
    fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("slots_chosen", json!(self.tracker.chosen_count))]
    }
}

/// What a replica learns (and so applies) in a slot is the value chosen there: a learner never
/// learns a value no majority accepted in one ballot.
///
/// It reads the acceptors' journals only when some node has learned something new. Acceptances
/// are far more frequent than learning, and an exhaustive search copies an invariant for every
/// step that changes it; a value is chosen (a majority accepted it in one ballot) whenever it is
/// counted, so counting late changes no verdict.
#[derive(Clone, Default)]
pub struct LearnedChosen {
    tracker: ChosenTracker,
    read: Vec<usize>,
}

impl<P: PaxosNode> Invariant<P> for LearnedChosen {
    fn name(&self) -> &str {
        "LearnedChosen"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn unchanged(&self, world: &World<'_, P>) -> bool {
        world.durable_writes().iter().all(|&id| {
            read_up_to(&self.read, id) == world.durable(id).learned_journal.len()
        })
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        if self.unchanged(world) {
            return Ok(());
        }
        // Every acceptor's journal, up to now: the value learned was chosen at some step
        // since the last look. Agreement reports two choices; here only what learners learned
        // matters.
        let _ = self
            .tracker
            .update(world, (0..world.cluster_size()).map(NodeId));
        self.read.resize(world.cluster_size() as usize, 0);
        for &id in world.durable_writes() {
            let read = &mut self.read[id.index()];
            let durable = world.durable(id);
            for slot in &durable.learned_journal[*read..] {
                let learned = &durable.learned[slot];
                match self.tracker.chosen(*slot) {
                    None => {
                        return Err(format!(
                            "{id} learned {} in slot {slot}, but no majority accepted a value there in one ballot",
                            learned.describe()
                        ));
                    }
                    Some((chosen, ..)) if chosen != learned => {
                        return Err(format!(
                            "{id} learned {} in slot {slot}, but {} was chosen there",
                            learned.describe(),
                            chosen.describe()
                        ));
                    }
                    Some(_) => {}
                }
            }
            *read = durable.learned_journal.len();
        }
        Ok(())
    }
}

/// Only a proposed value is accepted (and so chosen): every client command an acceptor holds
/// is one a client asked for.
///
/// The index of the history and the requests already found are shared between copies: an
/// exhaustive search copies this invariant at every acceptance, and they change far less
/// often.
#[derive(Clone, Default)]
pub struct Validity {
    read: Vec<usize>,
    /// How much of the client history has been indexed.
    indexed: usize,
    /// Every operation invoked so far, by (client, sequence number): its place in the history.
    requests: Arc<BTreeMap<(u32, u64), usize>>,
    /// Per client, per sequence number: already found to be a client's request.
    checked: Arc<Vec<Vec<bool>>>,
}

impl Validity {
    fn is_checked(&self, client: u32, seq: u64) -> bool {
        self.checked
            .get(client as usize)
            .and_then(|seqs| seqs.get(seq as usize))
            .copied()
            .unwrap_or(false)
    }

    fn mark_checked(&mut self, client: u32, seq: u64) {
        let (c, q) = (client as usize, seq as usize);
        let checked = Arc::make_mut(&mut self.checked);
        if c >= checked.len() {
            checked.resize_with(c + 1, Vec::new);
        }
        if q >= checked[c].len() {
            checked[c].resize(q + 1, false);
        }
        checked[c][q] = true;
    }
}

impl<P: PaxosNode<Request = kv::KvRequest>> Invariant<P> for Validity {
    fn name(&self) -> &str {
        "Validity"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn unchanged(&self, world: &World<'_, P>) -> bool {
        // The history is indexed when an acceptance needs it.
        world.durable_writes().iter().all(|&id| {
            read_up_to(&self.read, id) == world.durable(id).acceptor.journal.len()
        })
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        if world.durable_writes().is_empty() {
            return Ok(());
        }
        let ops = &world.history().ops;
        if self.indexed < ops.len() {
            let requests = Arc::make_mut(&mut self.requests);
            for (i, op) in ops.iter().enumerate().skip(self.indexed) {
                requests.insert((op.client.0, op.seq), i);
            }
            self.indexed = ops.len();
        }
        self.read.resize(world.cluster_size() as usize, 0);
        for &id in world.durable_writes() {
            let read = &mut self.read[id.index()];
            let state = &world.durable(id).acceptor;
            let new = &state.journal[*read..];
            *read = state.journal.len();
            for (slot, _, value) in new {
                let Value::Client { client, seq, op } = value else {
                    continue;
                };
                if self.is_checked(*client, *seq) {
                    continue;
                }
                let asked = self
                    .requests
                    .get(&(*client, *seq))
                    .is_some_and(|&i| ops[i].request.0 == **op);
                if !asked {
                    return Err(format!(
                        "{id} accepted {} in slot {slot}, which no client asked for",
                        op.describe()
                    ));
                }
                self.mark_checked(*client, *seq);
            }
        }
        Ok(())
    }
}

/// No acceptor accepts a proposal below a ballot it once promised, and no promise is ever taken
/// back (across restarts too).
#[derive(Clone, Default)]
pub struct PromiseKept {
    read: Vec<usize>,
    promised: Vec<Ballot>,
}

impl<P: PaxosNode> Invariant<P> for PromiseKept {
    fn name(&self) -> &str {
        "PromiseKept"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn unchanged(&self, world: &World<'_, P>) -> bool {
        world.durable_writes().iter().all(|&id| {
            let durable = world.durable(id);
            read_up_to(&self.read, id) == durable.acceptor.journal.len()
                && world.node(id).is_none_or(|node| {
                    node.promised(durable) == self.promised.get(id.index()).copied().unwrap_or_default()
                })
        })
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        let n = world.cluster_size() as usize;
        self.read.resize(n, 0);
        self.promised.resize(n, Ballot::default());
        // A promise or acceptance writes the durable store (under the volatile-promise bug
        // too: the acceptor runs on it), so only nodes that wrote can have broken a promise.
        for &id in world.durable_writes() {
            let i = id.index();
            let durable = world.durable(id);
            let before = self.promised[i];
            for &(slot, ballot, _) in &durable.acceptor.journal[self.read[i]..] {
                if ballot < before {
                    return Err(format!(
                        "{id} accepted ballot {ballot} in slot {slot} after promising {before}"
                    ));
                }
            }
            self.read[i] = durable.acceptor.journal.len();
            if let Some(node) = world.node(id) {
                let now = node.promised(durable);
                if now < before {
                    return Err(format!(
                        "{id}'s promise went back from {before} to {now}: it would accept ballots it promised to refuse"
                    ));
                }
                self.promised[i] = now;
            }
        }
        Ok(())
    }
}

/// Eventually (single-decree): once faults are over and a client has proposed, some node learns
/// the decision within [`DECISION_DEADLINE`].
#[derive(Clone, Default)]
pub struct Decides {
    decided_at: Option<Time>,
}

impl Invariant<Synod> for Decides {
    fn name(&self) -> &str {
        "Decides"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, Synod>) -> Result<(), String> {
        let now = world.now();
        let learned = (0..world.cluster_size()).any(|i| !world.durable(NodeId(i)).learned.is_empty());
        if learned {
            self.decided_at.get_or_insert(now);
            return Ok(());
        }
        let first_proposal = world
            .history()
            .ops
            .iter()
            .find(|o| matches!(o.request.0, KvOp::Cas(_)))
            .map(|o| o.invoked);
        let Some(proposed) = first_proposal else {
            return Ok(());
        };
        let since = world.faults_over_at().max(proposed);
        if now > since && now - since > DECISION_DEADLINE {
            let rounds: u64 = world.live_nodes().map(|(_, s)| s.rounds()).sum();
            return Err(format!(
                "nothing decided {} after the first proposal and the last fault ({rounds} rounds started)",
                now - since
            ));
        }
        Ok(())
    }
    fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("decided_at_us", json!(self.decided_at.map(Time::as_micros)))]
    }
}

/// A leader that really leads: its ballot is the promise of a majority of the nodes up now (a
/// leader cut off from the rest, or deposed without knowing it, does not count).
fn leader(world: &World<'_, MultiPaxos>) -> Option<NodeId> {
    let up = || {
        world
            .live_nodes()
            .filter(|(id, _)| world.status(*id) == NodeStatus::Up)
    };
    up().filter_map(|(id, node)| node.leading().map(|b| (b, id)))
        .filter(|&(ballot, _)| {
            let promised = up()
                .filter(|(n, node)| node.promised(world.durable(*n)) == ballot)
                .count();
            promised >= majority(world.cluster_size())
        })
        .max()
        .map(|(_, id)| id)
}

/// Eventually (Multi-Paxos): once faults end, a leader whose ballot a majority of the live nodes
/// promised is in place within [`ELECTION_DEADLINE`], and from then on one is never missing for
/// more than [`SETTLE`].
#[derive(Clone, Default)]
pub struct LeaderExists {
    first: Option<Time>,
    last_seen: Option<Time>,
}

impl Invariant<MultiPaxos> for LeaderExists {
    fn name(&self) -> &str {
        "LeaderExists"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, MultiPaxos>) -> Result<(), String> {
        let now = world.now();
        let since = world.faults_over_at();
        if leader(world).is_some() {
            self.first.get_or_insert(now);
            self.last_seen = Some(now);
        }
        match (self.first, self.last_seen) {
            (None, _) if now - since > ELECTION_DEADLINE => Err(format!(
                "no leader within {ELECTION_DEADLINE} of the last fault"
            )),
            (Some(_), Some(seen)) if now - seen > SETTLE => {
                Err(format!("no leader for the last {}", now - seen))
            }
            _ => Ok(()),
        }
    }
}

/// Always (Multi-Paxos): a node leads a ballot only once a majority has promised it (or a
/// higher one): phase 1 really completed. Counts the leaders elected.
#[derive(Clone, Default)]
pub struct LeaderPromised {
    ballots: BTreeSet<Ballot>,
}

impl Invariant<MultiPaxos> for LeaderPromised {
    fn name(&self) -> &str {
        "LeaderPromised"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, MultiPaxos>) -> Result<(), String> {
        for (id, node) in world.live_nodes() {
            let Some(ballot) = node.leading() else {
                continue;
            };
            if self.ballots.last() == Some(&ballot) || !self.ballots.insert(ballot) {
                continue;
            }
            let promised = (0..world.cluster_size())
                .map(NodeId)
                .filter(|&n| {
                    let durable = world.durable(n);
                    let promise = world
                        .node(n)
                        .map_or(durable.acceptor.promised, |p| p.promised(durable));
                    promise >= ballot
                })
                .count();
            if promised < majority(world.cluster_size()) {
                return Err(format!(
                    "{id} leads ballot {ballot}, but only {promised} of {} nodes promised it",
                    world.cluster_size()
                ));
            }
        }
        Ok(())
    }
    fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("leaders_elected", json!(self.ballots.len()))]
    }
}

/// Eventually (Multi-Paxos): every live replica applies every slot some replica applied more
/// than [`SETTLE`] ago.
#[derive(Clone, Default)]
pub struct AllApplied {
    highest: Vec<(Time, u64)>,
}

impl Invariant<MultiPaxos> for AllApplied {
    fn name(&self) -> &str {
        "AllApplied"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, MultiPaxos>) -> Result<(), String> {
        let now = world.now();
        let highest = world
            .live_nodes()
            .map(|(_, r)| r.applied())
            .max()
            .unwrap_or(0);
        if self.highest.last().is_none_or(|(_, h)| *h < highest) {
            self.highest.push((now, highest));
        }
        let Some(&(_, target)) = self.highest.iter().rev().find(|(at, _)| now - *at > SETTLE)
        else {
            return Ok(());
        };
        for (id, r) in world.live_nodes() {
            if world.status(id) == NodeStatus::Up && r.applied() < target {
                return Err(format!(
                    "{id} has applied {} slots, but {target} were applied elsewhere more than {SETTLE} ago",
                    r.applied()
                ));
            }
        }
        Ok(())
    }
}

/// Sometimes (Multi-Paxos): a client command was chosen and applied.
#[derive(Clone)]
pub struct ValueChosen;

impl Invariant<MultiPaxos> for ValueChosen {
    fn name(&self) -> &str {
        "ValueChosen"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Sometimes
    }
    fn check(&mut self, world: &World<'_, MultiPaxos>) -> Result<(), String> {
        let any = (0..world.cluster_size()).any(|i| {
            world
                .durable(NodeId(i))
                .learned
                .values()
                .any(|v| matches!(v, Value::Client { .. }))
        });
        if any {
            Ok(())
        } else {
            Err("no client command chosen".into())
        }
    }
}
