//! The atomic-commitment invariants, shared by 2PC and 3PC. They read only the durable logs and
//! the client history, from outside the nodes. Each keeps a cursor into every node's journal
//! (see [`CommitLog`]) and looks only at the records written since its last look.

use super::{AbortCause, Bank, COORDINATOR, CommitLog, Decision, Transfer, TxId, TxResponse, Vote};
use simlab_sim::{Invariant, InvariantKind, Node, NodeId, NodeStatus, Time, World};
use std::collections::{BTreeMap, BTreeSet};

/// A node of an atomic-commitment protocol, as the invariants see it.
pub trait CommitNode: Node<Durable = CommitLog, Request = Transfer, Response = TxResponse> {}

impl<P: Node<Durable = CommitLog, Request = Transfer, Response = TxResponse>> CommitNode for P {}

/// Every invariant, for a bank of this shape.
pub fn all<P: CommitNode>(bank: &Bank) -> Vec<Box<dyn Invariant<P>>> {
    vec![
        Box::new(Agreement::default()),
        Box::new(NoReversal::default()),
        Box::new(CommitNeedsAllYes {
            bank: bank.clone(),
            ..Default::default()
        }),
        Box::new(AbortNeedsCause {
            bank: bank.clone(),
            ..Default::default()
        }),
        Box::new(Conservation {
            bank: bank.clone(),
            ..Default::default()
        }),
        Box::new(AllDecided::default()),
        Box::new(SomeCommit::default()),
    ]
}

/// Where an invariant has read each node's journal up to.
#[derive(Clone, Debug, Default)]
pub struct JournalCursor {
    read: Vec<usize>,
}

impl JournalCursor {
    /// The `(node, tx)` records written since the last call, each once, in node order.
    pub fn changed<P: CommitNode>(&mut self, world: &World<'_, P>) -> Vec<(NodeId, TxId)> {
        let n = world.cluster_size() as usize;
        self.read.resize(n, 0);
        let mut out = Vec::new();
        for i in 0..n {
            let node = NodeId(i as u32);
            let journal = world.durable(node).journal();
            let mut fresh: Vec<TxId> = journal[self.read[i]..].to_vec();
            self.read[i] = journal.len();
            fresh.sort_unstable();
            fresh.dedup();
            out.extend(fresh.into_iter().map(|tx| (node, tx)));
        }
        out
    }
}

/// AC1: no transaction is committed by one node and aborted by another.
#[derive(Clone, Default)]
pub struct Agreement {
    cursor: JournalCursor,
    first: BTreeMap<TxId, (Decision, NodeId)>,
}

impl<P: CommitNode> Invariant<P> for Agreement {
    fn name(&self) -> &str {
        "Agreement"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        for (node, tx) in self.cursor.changed(world) {
            let Some(decision) = world.durable(node).decision(tx) else {
                continue;
            };
            let (first, by) = *self.first.entry(tx).or_insert((decision, node));
            if first != decision {
                return Err(format!(
                    "{tx}: {by} decided {first} but {node} decided {decision}"
                ));
            }
        }
        Ok(())
    }
}

/// AC2: a node never changes or forgets a decision it made.
#[derive(Clone, Default)]
pub struct NoReversal {
    cursor: JournalCursor,
    seen: BTreeMap<(NodeId, TxId), Decision>,
}

impl<P: CommitNode> Invariant<P> for NoReversal {
    fn name(&self) -> &str {
        "NoReversal"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        for (node, tx) in self.cursor.changed(world) {
            let now = world.durable(node).decision(tx);
            match (self.seen.get(&(node, tx)).copied(), now) {
                (Some(before), Some(after)) if before != after => {
                    return Err(format!(
                        "{node} decided {before} for {tx}, then changed it to {after}"
                    ));
                }
                (Some(before), None) => {
                    return Err(format!("{node} decided {before} for {tx}, then forgot it"));
                }
                (None, Some(after)) => {
                    self.seen.insert((node, tx), after);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Maps transaction ids to the transfers clients asked for, growing with the history.
#[derive(Clone, Default)]
pub struct TransferIndex {
    seen_ops: usize,
    by_tx: BTreeMap<TxId, Transfer>,
}

impl TransferIndex {
    fn update<P: CommitNode>(&mut self, world: &World<'_, P>) {
        let ops = &world.history().ops;
        for op in &ops[self.seen_ops..] {
            self.by_tx.insert(
                TxId {
                    client: op.client.0,
                    seq: op.seq,
                },
                op.request.clone(),
            );
        }
        self.seen_ops = ops.len();
    }

    fn get(&self, tx: TxId) -> Option<&Transfer> {
        self.by_tx.get(&tx)
    }
}

/// AC3: commit only if every participant voted yes.
#[derive(Clone, Default)]
pub struct CommitNeedsAllYes {
    bank: Bank,
    cursor: JournalCursor,
    transfers: TransferIndex,
}

impl<P: CommitNode> Invariant<P> for CommitNeedsAllYes {
    fn name(&self) -> &str {
        "CommitNeedsAllYes"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        let changed = self.cursor.changed(world);
        if changed.is_empty() {
            return Ok(());
        }
        self.transfers.update(world);
        for (node, tx) in changed {
            if world.durable(node).decision(tx) != Some(Decision::Commit) {
                continue;
            }
            let Some(transfer) = self.transfers.get(tx) else {
                return Err(format!("{node} committed {tx}, which no client asked for"));
            };
            for (participant, _) in self.bank.split(transfer) {
                let vote = world.durable(participant).record(tx).and_then(|r| r.vote);
                if !matches!(vote, Some((Vote::Yes, _))) {
                    let what = if matches!(vote, Some((Vote::No, _))) {
                        "voted no"
                    } else {
                        "never voted yes"
                    };
                    return Err(format!(
                        "{node} committed {tx} but participant {participant} {what}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// AC4: with no failures and all votes yes, the decision is commit. Checked as: every abort the
/// coordinator decides has a cause, either a participant that really voted no, or a vote that
/// really was missing at the timeout, or a failure (recovery, a peer's inquiry).
#[derive(Clone, Default)]
pub struct AbortNeedsCause {
    bank: Bank,
    cursor: JournalCursor,
    transfers: TransferIndex,
}

impl<P: CommitNode> Invariant<P> for AbortNeedsCause {
    fn name(&self) -> &str {
        "AbortNeedsCause"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        let changed = self.cursor.changed(world);
        if changed.is_empty() {
            return Ok(());
        }
        self.transfers.update(world);
        for (node, tx) in changed {
            if node != COORDINATOR {
                continue;
            }
            let record = world
                .durable(COORDINATOR)
                .record(tx)
                .expect("journaled records exist");
            match &record.abort_cause {
                Some(AbortCause::NoVote(p)) => {
                    // A no vote, or a participant that already knew the transaction aborted (it voted no
                    // when the coordinator, having forgotten, asked again).
                    let theirs = world.durable(*p).record(tx);
                    let refused = theirs.is_some_and(|r| {
                        matches!(r.vote, Some((Vote::No, _)))
                            || r.decision.is_some_and(|(d, _)| d == Decision::Abort)
                    });
                    if !refused {
                        return Err(format!(
                            "the coordinator aborted {tx} for a no vote from {p}, which did not vote no"
                        ));
                    }
                }
                Some(AbortCause::Timeout { yes_votes }) => {
                    let Some(transfer) = self.transfers.get(tx) else {
                        continue;
                    };
                    if self
                        .bank
                        .split(transfer)
                        .iter()
                        .all(|(p, _)| yes_votes.contains(p))
                    {
                        return Err(format!(
                            "the coordinator aborted {tx} on a timeout although every yes vote had arrived"
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Committed transfers neither create nor destroy money: the applied balances, plus the parts
/// of transfers committed somewhere but not yet applied by their participant, add up to what the
/// bank started with.
#[derive(Clone, Default)]
pub struct Conservation {
    bank: Bank,
    cursor: JournalCursor,
    transfers: TransferIndex,
    /// Committed somewhere, not yet applied by every participant.
    open: BTreeSet<TxId>,
}

impl<P: CommitNode> Invariant<P> for Conservation {
    fn name(&self) -> &str {
        "Conservation"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        if world.durable_writes().is_empty() {
            return Ok(());
        }
        let n = world.cluster_size();
        if (1..n).any(|i| !world.durable(NodeId(i)).is_initialized()) {
            return Ok(()); // Not every participant has started yet.
        }
        self.transfers.update(world);
        for (node, tx) in self.cursor.changed(world) {
            if world.durable(node).decision(tx) == Some(Decision::Commit) {
                self.open.insert(tx);
            }
        }
        let applied: i64 = (1..n)
            .flat_map(|i| world.durable(NodeId(i)).balances().values())
            .sum();
        let mut pending = 0;
        let mut closed = Vec::new();
        for &tx in &self.open {
            let Some(transfer) = self.transfers.get(tx) else {
                continue;
            };
            let mut all_applied = true;
            for (participant, ops) in self.bank.split(transfer) {
                if !world
                    .durable(participant)
                    .record(tx)
                    .is_some_and(|r| r.applied)
                {
                    all_applied = false;
                    pending += ops.iter().map(|(_, delta)| delta).sum::<i64>();
                }
            }
            if all_applied {
                closed.push(tx);
            }
        }
        for tx in closed {
            self.open.remove(&tx);
        }
        let total = applied + pending;
        if total != self.bank.total() {
            return Err(format!(
                "applied balances {applied} + committed but unapplied {pending} = {total}, but the bank started with {}",
                self.bank.total()
            ));
        }
        Ok(())
    }
}

/// How long a participant may stay uncertain once the faults are over before that counts as
/// blocked: long enough for the last retransmissions and termination rounds under load.
pub const SETTLE: Time = Time::from_secs(1);

/// Eventually: once the faults are over, no participant stays uncertain (voted yes, no
/// decision) for more than [`SETTLE`].
#[derive(Clone, Default)]
pub struct AllDecided {
    cursor: JournalCursor,
    /// Uncertain `(participant, tx)`, with the virtual time it was first seen so.
    uncertain: BTreeMap<(NodeId, TxId), Time>,
}

impl<P: CommitNode> Invariant<P> for AllDecided {
    fn name(&self) -> &str {
        "AllDecided"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        for (node, tx) in self.cursor.changed(world) {
            let r = world
                .durable(node)
                .record(tx)
                .expect("journaled records exist");
            if node != COORDINATOR && matches!(r.vote, Some((Vote::Yes, _))) && r.decision.is_none()
            {
                self.uncertain.entry((node, tx)).or_insert(world.now());
            } else {
                self.uncertain.remove(&(node, tx));
            }
        }
        let now = world.now();
        let blocked: Vec<(&(NodeId, TxId), &Time)> = self
            .uncertain
            .iter()
            .filter(|(_, since)| now - **since > SETTLE)
            .collect();
        if blocked.is_empty() {
            return Ok(());
        }
        let coordinator_down = world.status(COORDINATOR) == NodeStatus::Crashed;
        let explain = |(&(node, tx), &since): (&(NodeId, TxId), &Time)| {
            let why = match world.durable(COORDINATOR).decision(tx) {
                _ if coordinator_down => "the coordinator is down".to_string(),
                Some(d) => format!("the coordinator decided {d}, but it has not arrived"),
                None => "the coordinator has no decision".to_string(),
            };
            let down = if world.status(node) == NodeStatus::Crashed {
                " (down)"
            } else {
                ""
            };
            format!(
                "{node}{down} uncertain about {tx} for {}: {why}",
                now - since
            )
        };
        let shown: Vec<String> = blocked.iter().take(5).map(|&e| explain(e)).collect();
        let more = blocked.len() - shown.len();
        let more = if more > 0 {
            format!("; and {more} more")
        } else {
            String::new()
        };
        Err(format!(
            "{} blocked: {}{more}",
            blocked.len(),
            shown.join("; ")
        ))
    }
}

/// Sometimes: at least one transaction committed.
#[derive(Clone, Default)]
pub struct SomeCommit {
    cursor: JournalCursor,
}

impl<P: CommitNode> Invariant<P> for SomeCommit {
    fn name(&self) -> &str {
        "SomeCommit"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Sometimes
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        let committed = self
            .cursor
            .changed(world)
            .into_iter()
            .any(|(node, tx)| world.durable(node).decision(tx) == Some(Decision::Commit));
        if committed {
            Ok(())
        } else {
            Err("no transaction committed yet".into())
        }
    }
}
