//! The coordinator's half of atomic commit, shared by 2PC and 3PC: start a transaction, count
//! its votes, decide (force the decision to the log, then tell everyone), retransmit until every
//! participant acknowledged, resume decided transactions after a crash, and answer "abort" for a
//! transaction it has no record of (presumed abort). What happens once every vote is yes is the
//! protocol's own: 2PC decides commit, 3PC pre-commits first.

use super::{
    AbortCause, Bank, CommitProtocol, Decision, Transfer, TxId, TxRecord, force_decision, response,
};
use simlab_sim::{Ctx, NodeId, ReplyTo, Time};
use std::collections::{BTreeMap, BTreeSet};

/// The coordinator's volatile state for one transaction in progress.
#[derive(Clone, Debug, Default)]
pub struct Active {
    /// Each participant and its part of the transfer.
    pub parts: Vec<(NodeId, Vec<(u32, i64)>)>,
    /// Who voted yes.
    pub yes: BTreeSet<NodeId>,
    /// 3PC: pre-commit was sent.
    pub precommitted: bool,
    /// 3PC: who acknowledged the pre-commit.
    pub precommit_acks: BTreeSet<NodeId>,
    /// The decision, once made.
    pub decision: Option<Decision>,
    /// Who acknowledged the decision.
    pub acks: BTreeSet<NodeId>,
    /// The clients waiting for the outcome.
    pub clients: Vec<ReplyTo>,
}

impl Active {
    /// The participants, in order.
    pub fn participants(&self) -> Vec<NodeId> {
        self.parts.iter().map(|(p, _)| *p).collect()
    }

    /// Whether every participant is in `set`.
    pub fn all_in(&self, set: &BTreeSet<NodeId>) -> bool {
        self.parts.iter().all(|(p, _)| set.contains(p))
    }

    /// The transaction's progress, for the TUI.
    fn describe(&self) -> String {
        match (self.decision, self.precommitted) {
            (Some(d), _) => format!("{d}: acks {}/{}", self.acks.len(), self.parts.len()),
            (None, true) => format!(
                "pre-committed: acks {}/{}",
                self.precommit_acks.len(),
                self.parts.len()
            ),
            (None, false) => format!("waiting: yes {}/{}", self.yes.len(), self.parts.len()),
        }
    }
}

/// The coordinator (node 0): its transactions in progress and its timings.
#[derive(Clone, Debug)]
pub struct Coordinator {
    /// Where each account lives.
    pub bank: Bank,
    /// Transactions started or resumed and not yet acknowledged by every participant.
    pub active: BTreeMap<TxId, Active>,
    /// How long votes may take.
    pub vote_timeout: Time,
    /// How often an unacknowledged decision is resent.
    pub retransmit: Time,
}

impl Coordinator {
    /// A coordinator with nothing in progress.
    pub fn new(bank: Bank, vote_timeout: Time, retransmit: Time) -> Coordinator {
        Coordinator {
            bank,
            active: BTreeMap::new(),
            vote_timeout,
            retransmit,
        }
    }

    /// A client asks for a transfer: answer from the log if it was decided, remember another
    /// waiting client if it is in progress, else send the first phase to its participants.
    pub fn start<P: CommitProtocol>(
        &mut self,
        reply_to: ReplyTo,
        transfer: Transfer,
        ctx: &mut Ctx<'_, P>,
    ) {
        let tx = TxId::from(reply_to);
        if let Some(decision) = ctx.durable().decision(tx) {
            ctx.reply(reply_to, response(decision));
            return;
        }
        if let Some(active) = self.active.get_mut(&tx) {
            if !active.clients.contains(&reply_to) {
                active.clients.push(reply_to);
            }
            return;
        }
        if ctx.durable().record(tx).is_some() {
            return; // Recovered and undecided: the participants' answers will settle it.
        }
        let parts = self.bank.split(&transfer);
        let participants: Vec<NodeId> = parts.iter().map(|(p, _)| *p).collect();
        for (p, ops) in &parts {
            ctx.send(*p, P::first_phase(tx, participants.clone(), ops.clone()));
        }
        ctx.note_with(|| format!("{tx}: {} {transfer:?} at {participants:?}", P::FIRST_PHASE));
        self.active.insert(
            tx,
            Active {
                parts,
                clients: vec![reply_to],
                ..Active::default()
            },
        );
        ctx.set_timer(self.vote_timeout, P::vote_timeout(tx));
    }

    /// A vote arrived. Returns the transaction if the vote is to be counted; a vote for a
    /// transaction already decided is answered with the decision instead.
    pub fn counting<P: CommitProtocol>(
        &mut self,
        from: NodeId,
        tx: TxId,
        ctx: &mut Ctx<'_, P>,
    ) -> Option<&mut Active> {
        let Some(active) = self.active.get_mut(&tx) else {
            // Already finished: the participant missed the decision; tell it again.
            if let Some(decision) = ctx.durable().decision(tx) {
                ctx.send(from, P::decide(tx, decision));
            }
            return None;
        };
        if let Some(decision) = active.decision {
            ctx.send(from, P::decide(tx, decision));
            return None;
        }
        Some(active)
    }

    /// Decides: forces the decision to the log before anyone hears of it (recovery must find
    /// it), tells every participant and the waiting clients, and resends until acknowledged.
    /// `log_late` (a planted bug) logs the decision only when that timer fires.
    pub fn decide<P: CommitProtocol>(
        &mut self,
        tx: TxId,
        decision: Decision,
        cause: Option<AbortCause>,
        log_late: Option<P::Timer>,
        ctx: &mut Ctx<'_, P>,
    ) {
        let active = self
            .active
            .get_mut(&tx)
            .expect("deciding an active transaction");
        active.decision = Some(decision);
        let participants = active.participants();
        match log_late {
            Some(timer) => {
                ctx.set_timer(Time::from_millis(2), timer);
            }
            None => force_decision(ctx, tx, participants.clone(), decision, cause),
        }
        ctx.note_with(|| format!("{tx}: decided {decision}"));
        for p in participants {
            ctx.send(p, P::decide(tx, decision));
        }
        for client in std::mem::take(&mut active.clients) {
            ctx.reply(client, response(decision));
        }
        ctx.set_timer(self.retransmit, P::retransmit(tx));
    }

    /// The votes are overdue: abort, unless the transaction is decided or (3PC) pre-committed.
    pub fn on_vote_timeout<P: CommitProtocol>(&mut self, tx: TxId, ctx: &mut Ctx<'_, P>) {
        if let Some(active) = self.active.get(&tx)
            && active.decision.is_none()
            && !active.precommitted
        {
            let yes_votes = active.yes.iter().copied().collect();
            let cause = AbortCause::Timeout { yes_votes };
            self.decide(tx, Decision::Abort, Some(cause), None, ctx);
        }
    }

    /// A participant applied the decision; once all have, and the decision is in the log, the
    /// transaction is over.
    pub fn on_ack<P: CommitProtocol>(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, P>) {
        let Some(active) = self.active.get_mut(&tx) else {
            return;
        };
        active.acks.insert(from);
        if active.all_in(&active.acks) && ctx.durable().decision(tx).is_some() {
            self.active.remove(&tx);
            ctx.durable_mut().record_mut(tx).ended = true;
        }
    }

    /// Resends the decision to every participant that has not acknowledged it.
    pub fn on_retransmit<P: CommitProtocol>(&mut self, tx: TxId, ctx: &mut Ctx<'_, P>) {
        let Some(active) = self.active.get(&tx) else {
            return;
        };
        let Some(decision) = active.decision else {
            return;
        };
        for (p, _) in &active.parts {
            if !active.acks.contains(p) {
                ctx.send(*p, P::decide(tx, decision));
            }
        }
        ctx.set_timer(self.retransmit, P::retransmit(tx));
    }

    /// After a restart: a transaction the log shows decided but not ended is resumed, its
    /// decision resent until every participant acknowledges it.
    pub fn resume<P: CommitProtocol>(
        &mut self,
        tx: TxId,
        record: &TxRecord,
        decision: Decision,
        ctx: &mut Ctx<'_, P>,
    ) {
        let parts = record
            .participants
            .iter()
            .map(|p| (*p, Vec::new()))
            .collect();
        self.active.insert(
            tx,
            Active {
                parts,
                decision: Some(decision),
                ..Active::default()
            },
        );
        for p in &record.participants {
            ctx.send(*p, P::decide(tx, decision));
        }
        ctx.set_timer(self.retransmit, P::retransmit(tx));
    }

    /// Presumed abort: asked about a transaction it has no record of, the coordinator never
    /// decided commit for it, so it decides (and logs) abort.
    pub fn presume_abort<P: CommitProtocol>(from: NodeId, tx: TxId, ctx: &mut Ctx<'_, P>) {
        force_decision(
            ctx,
            tx,
            vec![from],
            Decision::Abort,
            Some(AbortCause::Unknown),
        );
    }

    /// A transaction in progress, as the TUI shows it.
    pub fn describe(&self, tx: TxId) -> Option<String> {
        self.active.get(&tx).map(Active::describe)
    }
}
