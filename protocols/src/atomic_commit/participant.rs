//! The participant's half of atomic commit, shared by 2PC and 3PC: vote on the first phase
//! (lock and force a yes vote to the log, or abort and vote no), answer a repeated question as
//! before, and recover from the log after a crash (re-take the locks of undecided
//! transactions). What an undecided participant does while it waits is the protocol's own: 2PC
//! asks around and may block; 3PC runs its termination protocol.

use super::{
    Bank, CommitProtocol, Decision, Locks, TxId, TxRecord, Vote, can_prepare, initialize,
    locks_from_log, repeat_vote,
};
use crate::atomic_commit::COORDINATOR;
use simlab_sim::{Ctx, NodeId, Time};
use std::collections::{BTreeMap, BTreeSet};

/// A participant's state besides its log: the locks it holds, and how long it waits for the
/// coordinator before acting on its own.
#[derive(Clone, Debug)]
pub struct Participant {
    /// This node.
    pub id: NodeId,
    /// Where each account lives (to initialise the log at first boot).
    pub bank: Bank,
    /// Accounts locked by undecided transactions.
    pub locks: Locks,
    /// How long an undecided participant waits for the coordinator.
    pub wait: Time,
    /// Votes kept only in memory (2PC's planted bug `ForgetVote`); empty otherwise.
    pub unforced: BTreeMap<TxId, TxRecord>,
}

impl Participant {
    /// A participant holding no locks.
    pub fn new(id: NodeId, bank: Bank, wait: Time) -> Participant {
        Participant {
            id,
            bank,
            locks: Locks::new(),
            wait,
            unforced: BTreeMap::new(),
        }
    }

    /// What this participant knows of `tx`: its log record, or a vote kept only in memory.
    pub fn record<P: CommitProtocol>(&self, tx: TxId, ctx: &Ctx<'_, P>) -> Option<TxRecord> {
        ctx.durable()
            .txs()
            .get(&tx)
            .or_else(|| self.unforced.get(&tx))
            .cloned()
    }

    /// The first phase (2PC's prepare, 3PC's can-commit): lock the accounts and force a yes
    /// vote, then answer yes and wait for the coordinator; or, if the accounts are locked or
    /// the debit is not covered, log the abort and answer no. Asked again (a retransmission, or
    /// a retry after the coordinator forgot), it answers as before, unless it has since learnt
    /// that the transaction aborted. With `keep_vote_in_memory` (a planted bug) the yes vote is
    /// not forced to the log.
    pub fn on_first_phase<P: CommitProtocol>(
        &mut self,
        tx: TxId,
        participants: Vec<NodeId>,
        ops: Vec<(u32, i64)>,
        keep_vote_in_memory: bool,
        ctx: &mut Ctx<'_, P>,
    ) {
        if let Some(record) = self.record(tx, ctx) {
            ctx.send(COORDINATOR, P::vote(tx, repeat_vote(&record)));
            return;
        }
        let now = ctx.now();
        if can_prepare(ctx.durable(), &self.locks, tx, &ops) {
            for (account, _) in &ops {
                self.locks.insert(*account, tx);
            }
            let record = TxRecord {
                participants,
                ops,
                vote: Some((Vote::Yes, now)),
                ..TxRecord::default()
            };
            if keep_vote_in_memory {
                self.unforced.insert(tx, record);
            } else {
                ctx.durable_mut().insert(tx, record);
            }
            ctx.send(COORDINATOR, P::vote(tx, Vote::Yes));
            ctx.set_timer(self.wait, P::wait_for_decision(tx));
        } else {
            ctx.note_with(|| format!("{tx}: cannot vote yes (locked or overdrawn): voting no"));
            let record = TxRecord {
                participants,
                ops,
                vote: Some((Vote::No, now)),
                decision: Some((Decision::Abort, now)),
                ..TxRecord::default()
            };
            ctx.durable_mut().insert(tx, record);
            ctx.send(COORDINATOR, P::vote(tx, Vote::No));
        }
    }

    /// Releases the locks `tx` holds.
    pub fn release(&mut self, tx: TxId) {
        self.locks.retain(|_, holder| *holder != tx);
    }

    /// After a boot or restart: initialises the log at first boot, re-takes the locks of
    /// undecided transactions and returns them; each will check on its outcome shortly.
    pub fn recover<P: CommitProtocol>(&mut self, ctx: &mut Ctx<'_, P>) -> BTreeSet<TxId> {
        if !ctx.durable().is_initialized() {
            let (bank, id) = (self.bank.clone(), self.id);
            initialize(ctx.durable_mut(), &bank, id);
        }
        self.locks = locks_from_log(ctx.durable());
        self.locks.values().copied().collect()
    }
}
