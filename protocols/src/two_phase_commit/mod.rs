//! Two-phase commit (Gray, 1978; Bernstein, Hadzilacos and Goodman 1987, §7.3) with presumed
//! abort and the cooperative termination protocol.
//!
//! 1. The coordinator (node 0) sends `Prepare` to every participant the transfer touches.
//! 2. A participant that can lock its accounts and cover its debit forces a yes vote to its log,
//!    then answers `Vote(Yes)`; otherwise it aborts and answers `Vote(No)`.
//! 3. With every vote yes, the coordinator forces `Commit` to its log, then sends it; a no vote
//!    or a vote timeout makes it abort. Decisions are retransmitted until acknowledged.
//! 4. A participant that voted yes is *uncertain* until the decision arrives: it may neither
//!    commit nor abort on its own, and it holds its locks. After a timeout it asks the other
//!    participants (cooperative termination): one that knows the decision tells it, one that has
//!    not voted aborts and tells it so. When every participant is uncertain and the coordinator
//!    is down, nobody can decide: **2PC blocks**, and the outcome measures for how long.
//!
//! Recovery reads the log: the coordinator resends decisions not yet acknowledged and answers
//! "abort" for transactions it has no record of (presumed abort); a participant re-takes the
//! locks of transactions it is uncertain about and asks around.

use simlab_sim::FieldError;
use crate::atomic_commit::{
    self, AbortCause, Bank, COORDINATOR, CommitLog, CommitSettings, Decision, Locks, Transfer,
    TxId, TxRecord, TxResponse, Vote, apply_decision, can_prepare, force_decision, locks_from_log,
    repeat_vote, response,
};
use crate::protocol::{Protocol, ReportItem, Setup};
use serde::{Deserialize, Serialize};
use simlab_sim::{
    Ctx, Invariant, Node, NodeId, NodeView, ReplyTo, ResponseClass, Simulation, Time, Workload,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Deliberate mistakes, for teaching and to prove the checkers catch them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TwoPcBug {
    /// The coordinator sends `Commit` before forcing it to its log, and logs it a little later.
    /// A crash in between makes recovery presume abort: some participants commit, others abort.
    CommitBeforeLog,
    /// A participant that voted yes gives up waiting and aborts on its own.
    UnilateralAbort,
    /// A participant replies yes without forcing its vote; after a crash it has forgotten it.
    ForgetVote,
    /// The coordinator ignores no votes and commits anyway.
    IgnoreNoVote,
    /// A participant applies a commit again when the decision arrives twice.
    ApplyTwice,
}

/// 2PC's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwoPcConfig {
    /// Accounts in the bank, spread over the participants.
    pub accounts: u32,
    /// Starting balance of each account.
    pub initial_balance: i64,
    /// Largest amount a transfer pays each recipient.
    pub max_amount: i64,
    /// Largest number of recipients of one transfer (1: plain transfers; more: multi-key
    /// writes that may touch every participant).
    pub max_recipients: u32,
    /// How long the coordinator waits for votes before aborting.
    pub vote_timeout_ms: u64,
    /// How long an uncertain participant waits before asking its peers (and between asks).
    pub decision_timeout_ms: u64,
    /// How often the coordinator resends an unacknowledged decision.
    pub retransmit_ms: u64,
    /// Planted bugs to switch on.
    pub bugs: Vec<TwoPcBug>,
}

impl Default for TwoPcConfig {
    fn default() -> Self {
        TwoPcConfig {
            accounts: 8,
            initial_balance: 100,
            max_amount: 30,
            max_recipients: 1,
            vote_timeout_ms: 100,
            decision_timeout_ms: 200,
            retransmit_ms: 100,
            bugs: Vec::new(),
        }
    }
}

impl atomic_commit::CommitSettings for TwoPcConfig {
    fn bank(&self, nodes: u32) -> Bank {
        Bank {
            nodes,
            accounts: self.accounts,
            initial_balance: self.initial_balance,
        }
    }

    fn workload(&self) -> atomic_commit::TransferWorkload {
        atomic_commit::TransferWorkload {
            accounts: self.accounts,
            max_amount: self.max_amount,
            max_recipients: self.max_recipients,
        }
    }

    fn blocking_threshold(&self) -> Time {
        Time::from_millis(self.decision_timeout_ms)
    }
}

impl TwoPcConfig {
    /// Checks the settings for a cluster of `nodes`; the error names the field and the rule.
    pub fn validate(&self, nodes: u32) -> Result<(), FieldError> {
        validate_commit_config(
            nodes,
            self.accounts,
            self.initial_balance,
            self.max_amount,
            self.max_recipients,
            &[
                ("vote_timeout_ms", self.vote_timeout_ms),
                ("decision_timeout_ms", self.decision_timeout_ms),
                ("retransmit_ms", self.retransmit_ms),
            ],
        )
    }

    fn has(&self, bug: TwoPcBug) -> bool {
        self.bugs.contains(&bug)
    }
}

/// The rules 2PC and 3PC settings share.
pub(crate) fn validate_commit_config(
    nodes: u32,
    accounts: u32,
    initial_balance: i64,
    max_amount: i64,
    max_recipients: u32,
    timeouts: &[(&str, u64)],
) -> Result<(), FieldError> {
    let err = |f: &str, r: String| Err(FieldError::new(f, r));
    if nodes < 3 {
        return err(
            "nodes",
            format!(
                "atomic commit needs a coordinator and at least 2 participants, so at least 3 nodes (got {nodes})"
            ),
        );
    }
    if accounts < 2 {
        return err("accounts", "a transfer needs at least 2 accounts".into());
    }
    if initial_balance < 0 {
        return err("initial_balance", "must not be negative".into());
    }
    if max_amount < 1 {
        return err("max_amount", "must be at least 1".into());
    }
    if max_recipients < 1 || max_recipients >= accounts {
        return err(
            "max_recipients",
            format!(
                "must be between 1 and accounts - 1 = {} (got {max_recipients})",
                accounts - 1
            ),
        );
    }
    for (name, value) in timeouts {
        if *value == 0 {
            return err(name, "must be positive".into());
        }
    }
    Ok(())
}

/// Messages between coordinator and participants.
#[derive(Clone, Debug, Serialize)]
pub enum Msg {
    /// Coordinator → participant: vote on your part of `tx`.
    Prepare {
        /// The transaction.
        tx: TxId,
        /// All its participants (for the termination protocol).
        participants: Vec<NodeId>,
        /// This participant's changes.
        ops: Vec<(u32, i64)>,
    },
    /// Participant → coordinator.
    Vote {
        /// The transaction.
        tx: TxId,
        /// The vote.
        vote: Vote,
    },
    /// Coordinator (or a peer that knows) → participant.
    Decide {
        /// The transaction.
        tx: TxId,
        /// The decision.
        decision: Decision,
    },
    /// Participant → coordinator: decision applied.
    Ack {
        /// The transaction.
        tx: TxId,
    },
    /// Uncertain participant → everyone involved: do you know the decision?
    DecisionRequest {
        /// The transaction.
        tx: TxId,
    },
    /// The answer; `None` means "I am uncertain too".
    DecisionReply {
        /// The transaction.
        tx: TxId,
        /// The decision, if known.
        decision: Option<Decision>,
    },
}

/// Timers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// Coordinator: votes for `tx` are due.
    VoteTimeout(TxId),
    /// Coordinator: resend the decision for `tx` to those that have not acknowledged.
    Retransmit(TxId),
    /// Participant: still uncertain about `tx`?
    Uncertain(TxId),
    /// Coordinator with [`TwoPcBug::CommitBeforeLog`]: force the decision now, late.
    LogDecision(TxId),
}

/// The coordinator's volatile state for a transaction in progress.
#[derive(Clone, Debug, Default)]
struct Active {
    parts: Vec<(NodeId, Vec<(u32, i64)>)>,
    yes: BTreeSet<NodeId>,
    decision: Option<Decision>,
    acks: BTreeSet<NodeId>,
    clients: Vec<ReplyTo>,
}

impl Active {
    fn participants(&self) -> Vec<NodeId> {
        self.parts.iter().map(|(p, _)| *p).collect()
    }
}

/// A 2PC node: the coordinator (node 0) or a participant.
#[derive(Clone, Debug)]
pub struct TwoPc {
    id: NodeId,
    config: Arc<TwoPcConfig>,
    bank: Bank,
    active: BTreeMap<TxId, Active>,
    locks: Locks,
    /// [`TwoPcBug::ForgetVote`]: votes kept only in memory until the decision arrives.
    unforced: BTreeMap<TxId, TxRecord>,
}

impl TwoPc {
    /// A fresh node (at boot or restart: only the durable log carries over).
    pub fn new(id: NodeId, config: Arc<TwoPcConfig>, nodes: u32) -> TwoPc {
        let bank = config.bank(nodes);
        TwoPc {
            id,
            config,
            bank,
            active: BTreeMap::new(),
            locks: Locks::new(),
            unforced: BTreeMap::new(),
        }
    }

    fn is_coordinator(&self) -> bool {
        self.id == COORDINATOR
    }

    fn ms(v: u64) -> Time {
        Time::from_millis(v)
    }

    // ----- coordinator -----

    fn start(&mut self, reply_to: ReplyTo, transfer: Transfer, ctx: &mut Ctx<'_, Self>) {
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
        let parts = self.bank.split(&transfer);
        let participants: Vec<NodeId> = parts.iter().map(|(p, _)| *p).collect();
        for (p, ops) in &parts {
            ctx.send(
                *p,
                Msg::Prepare {
                    tx,
                    participants: participants.clone(),
                    ops: ops.clone(),
                },
            );
        }
        ctx.note(format!("{tx}: prepare {transfer:?} at {participants:?}"));
        self.active.insert(
            tx,
            Active {
                parts,
                clients: vec![reply_to],
                ..Active::default()
            },
        );
        ctx.set_timer(
            Self::ms(self.config.vote_timeout_ms),
            Timer::VoteTimeout(tx),
        );
    }

    fn on_vote(&mut self, from: NodeId, tx: TxId, vote: Vote, ctx: &mut Ctx<'_, Self>) {
        let Some(active) = self.active.get_mut(&tx) else {
            // Already finished: the participant missed the decision; tell it again.
            if let Some(decision) = ctx.durable().decision(tx) {
                ctx.send(from, Msg::Decide { tx, decision });
            }
            return;
        };
        if let Some(decision) = active.decision {
            ctx.send(from, Msg::Decide { tx, decision });
            return;
        }
        match vote {
            Vote::No if !self.config.has(TwoPcBug::IgnoreNoVote) => {
                self.decide(tx, Decision::Abort, Some(AbortCause::NoVote(from)), ctx);
            }
            _ => {
                active.yes.insert(from);
                if active.parts.iter().all(|(p, _)| active.yes.contains(p)) {
                    self.decide(tx, Decision::Commit, None, ctx);
                }
            }
        }
    }

    fn decide(
        &mut self,
        tx: TxId,
        decision: Decision,
        cause: Option<AbortCause>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let active = self
            .active
            .get_mut(&tx)
            .expect("deciding an active transaction");
        active.decision = Some(decision);
        let participants = active.participants();
        let late_log = decision == Decision::Commit && self.config.has(TwoPcBug::CommitBeforeLog);
        if late_log {
            ctx.set_timer(Time::from_millis(2), Timer::LogDecision(tx));
        } else {
            // Force the decision before anyone hears of it: recovery must find it.
            force_decision(ctx, tx, participants.clone(), decision, cause);
        }
        ctx.note(format!("{tx}: decided {decision}"));
        for p in &participants {
            ctx.send(*p, Msg::Decide { tx, decision });
        }
        for client in std::mem::take(&mut active.clients) {
            ctx.reply(client, response(decision));
        }
        ctx.set_timer(Self::ms(self.config.retransmit_ms), Timer::Retransmit(tx));
    }

    fn on_ack(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(active) = self.active.get_mut(&tx) else {
            return;
        };
        active.acks.insert(from);
        if active.parts.iter().all(|(p, _)| active.acks.contains(p))
            && ctx.durable().decision(tx).is_some()
        {
            self.active.remove(&tx);
            ctx.durable_mut().record_mut(tx).ended = true;
        }
    }

    fn coordinator_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::VoteTimeout(tx) => {
                if let Some(active) = self.active.get(&tx)
                    && active.decision.is_none()
                {
                    let yes_votes = active.yes.iter().copied().collect();
                    self.decide(
                        tx,
                        Decision::Abort,
                        Some(AbortCause::Timeout { yes_votes }),
                        ctx,
                    );
                }
            }
            Timer::Retransmit(tx) => {
                let Some(active) = self.active.get(&tx) else {
                    return;
                };
                let Some(decision) = active.decision else {
                    return;
                };
                for (p, _) in &active.parts {
                    if !active.acks.contains(p) {
                        ctx.send(*p, Msg::Decide { tx, decision });
                    }
                }
                ctx.set_timer(Self::ms(self.config.retransmit_ms), Timer::Retransmit(tx));
            }
            Timer::LogDecision(tx) => {
                if let Some(active) = self.active.get(&tx)
                    && let Some(decision) = active.decision
                {
                    force_decision(ctx, tx, active.participants(), decision, None);
                }
            }
            Timer::Uncertain(_) => {}
        }
    }

    fn coordinator_inquiry(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let known = ctx
            .durable()
            .decision(tx)
            .or_else(|| self.active.get(&tx).and_then(|a| a.decision));
        let decision = match known {
            Some(d) => Some(d),
            None if self.active.contains_key(&tx) => None, // Still collecting votes.
            None => {
                // Presumed abort: no record means no commit was ever decided here.
                force_decision(
                    ctx,
                    tx,
                    vec![from],
                    Decision::Abort,
                    Some(AbortCause::Unknown),
                );
                Some(Decision::Abort)
            }
        };
        ctx.send(from, Msg::DecisionReply { tx, decision });
    }

    fn recover_coordinator(&mut self, ctx: &mut Ctx<'_, Self>) {
        let unfinished: Vec<(TxId, TxRecord)> = ctx
            .durable()
            .txs()
            .iter()
            .filter(|(_, r)| r.decision.is_some() && !r.ended)
            .map(|(tx, r)| (*tx, r.clone()))
            .collect();
        for (tx, record) in unfinished {
            let (decision, _) = record.decision.expect("filtered");
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
                ctx.send(*p, Msg::Decide { tx, decision });
            }
            ctx.set_timer(Self::ms(self.config.retransmit_ms), Timer::Retransmit(tx));
        }
        if !self.active.is_empty() {
            ctx.note(format!(
                "recovered: resending {} decisions",
                self.active.len()
            ));
        }
    }

    // ----- participant -----

    fn record(&self, tx: TxId, ctx: &Ctx<'_, Self>) -> Option<TxRecord> {
        ctx.durable()
            .txs()
            .get(&tx)
            .or_else(|| self.unforced.get(&tx))
            .cloned()
    }

    fn on_prepare(
        &mut self,
        tx: TxId,
        participants: Vec<NodeId>,
        ops: Vec<(u32, i64)>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if let Some(record) = self.record(tx, ctx) {
            // Asked again (a retransmission, or a retry after the coordinator forgot): answer as
            // before, unless this participant has since learnt the transaction aborted.
            ctx.send(
                COORDINATOR,
                Msg::Vote {
                    tx,
                    vote: repeat_vote(&record),
                },
            );
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
            if self.config.has(TwoPcBug::ForgetVote) {
                self.unforced.insert(tx, record);
            } else {
                ctx.durable_mut().insert(tx, record);
            }
            ctx.send(
                COORDINATOR,
                Msg::Vote {
                    tx,
                    vote: Vote::Yes,
                },
            );
            ctx.set_timer(
                Self::ms(self.config.decision_timeout_ms),
                Timer::Uncertain(tx),
            );
        } else {
            ctx.note(format!(
                "{tx}: cannot prepare (locked or overdrawn): voting no"
            ));
            let record = TxRecord {
                participants,
                ops,
                vote: Some((Vote::No, now)),
                decision: Some((Decision::Abort, now)),
                ..TxRecord::default()
            };
            ctx.durable_mut().insert(tx, record);
            ctx.send(COORDINATOR, Msg::Vote { tx, vote: Vote::No });
        }
    }

    /// Applies a decision learnt from the coordinator or a peer.
    fn learn(&mut self, tx: TxId, decision: Decision, ctx: &mut Ctx<'_, Self>) {
        if let Some(record) = self.unforced.remove(&tx) {
            ctx.durable_mut().insert(tx, record);
        }
        let now = ctx.now();
        let twice = self.config.has(TwoPcBug::ApplyTwice)
            && decision == Decision::Commit
            && ctx.durable().record(tx).is_some_and(|r| r.applied);
        if twice {
            let log = ctx.durable_mut();
            let ops = log.record(tx).map(|r| r.ops.clone()).unwrap_or_default();
            for (account, delta) in ops {
                log.credit(account, delta);
            }
        } else if ctx.durable().decision(tx).is_none() {
            apply_decision(ctx.durable_mut(), tx, decision, now);
            ctx.note(format!("{tx}: {decision}"));
        }
        self.locks.retain(|_, holder| *holder != tx);
    }

    fn on_uncertain(&mut self, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(record) = self.record(tx, ctx) else {
            return;
        };
        if record.decision.is_some() || !matches!(record.vote, Some((Vote::Yes, _))) {
            return;
        }
        if self.config.has(TwoPcBug::UnilateralAbort) {
            ctx.note(format!("{tx}: tired of waiting, aborting alone (bug)"));
            self.learn(tx, Decision::Abort, ctx);
            return;
        }
        ctx.note(format!("{tx}: uncertain, asking the coordinator and peers"));
        ctx.send(COORDINATOR, Msg::DecisionRequest { tx });
        for p in record.participants.iter().filter(|&&p| p != self.id) {
            ctx.send(*p, Msg::DecisionRequest { tx });
        }
        ctx.set_timer(
            Self::ms(self.config.decision_timeout_ms),
            Timer::Uncertain(tx),
        );
    }

    fn participant_inquiry(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let decision = match self.record(tx, ctx) {
            Some(r) => r.decision.map(|(d, _)| d),
            None => {
                // Not voted yet: abort now, so the coordinator can never commit without us.
                let now = ctx.now();
                let record = TxRecord {
                    decision: Some((Decision::Abort, now)),
                    abort_cause: Some(AbortCause::NotVoted),
                    ..TxRecord::default()
                };
                ctx.durable_mut().insert(tx, record);
                Some(Decision::Abort)
            }
        };
        ctx.send(from, Msg::DecisionReply { tx, decision });
    }

    fn recover_participant(&mut self, ctx: &mut Ctx<'_, Self>) {
        if !ctx.durable().is_initialized() {
            let (bank, id) = (self.bank.clone(), self.id);
            atomic_commit::initialize(ctx.durable_mut(), &bank, id);
        }
        self.locks = locks_from_log(ctx.durable());
        let uncertain: BTreeSet<TxId> = self.locks.values().copied().collect();
        for tx in uncertain {
            ctx.note(format!("{tx}: recovered uncertain"));
            ctx.set_timer(Time::from_millis(1), Timer::Uncertain(tx));
        }
    }
}

impl Protocol for TwoPc {
    type Config = TwoPcConfig;
    const NAME: &'static str = "two-phase commit";

    fn validate(config: &TwoPcConfig, nodes: u32) -> Result<(), FieldError> {
        config.validate(nodes)
    }
    fn min_nodes(_: &TwoPcConfig) -> u32 {
        3 // a coordinator and two participants
    }
    fn clear_bugs(config: &mut TwoPcConfig) {
        config.bugs.clear();
    }
    fn node(setup: &Setup<TwoPcConfig>, id: NodeId) -> TwoPc {
        TwoPc::new(id, setup.config.clone(), setup.nodes)
    }
    fn workload(setup: &Setup<TwoPcConfig>) -> Option<Box<dyn Workload<Transfer>>> {
        Some(Box::new(setup.config.workload()))
    }
    fn invariants(setup: &Setup<TwoPcConfig>) -> Vec<Box<dyn Invariant<TwoPc>>> {
        atomic_commit::invariants::all(&setup.config.bank(setup.nodes))
    }
    fn report(setup: &Setup<TwoPcConfig>, sim: &Simulation<TwoPc>) -> Vec<ReportItem> {
        atomic_commit::report(sim, setup.config.blocking_threshold())
    }
}

impl Node for TwoPc {
    type Msg = Msg;
    type Timer = Timer;
    type Request = Transfer;
    type Response = TxResponse;
    type Durable = CommitLog;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.is_coordinator() {
            self.recover_coordinator(ctx);
        } else {
            self.recover_participant(ctx);
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Prepare {
                tx,
                participants,
                ops,
            } => self.on_prepare(tx, participants, ops, ctx),
            Msg::Vote { tx, vote } => self.on_vote(from, tx, vote, ctx),
            Msg::Decide { tx, decision } => {
                self.learn(tx, decision, ctx);
                ctx.send(from, Msg::Ack { tx });
            }
            Msg::Ack { tx } => self.on_ack(from, tx, ctx),
            Msg::DecisionRequest { tx } if self.is_coordinator() => {
                self.coordinator_inquiry(from, tx, ctx)
            }
            Msg::DecisionRequest { tx } => self.participant_inquiry(from, tx, ctx),
            Msg::DecisionReply {
                tx,
                decision: Some(decision),
            } => {
                let uncertain = self.record(tx, ctx).is_some_and(|r| r.decision.is_none());
                if uncertain {
                    self.learn(tx, decision, ctx);
                }
            }
            Msg::DecisionReply { decision: None, .. } => {}
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::Uncertain(tx) => self.on_uncertain(tx, ctx),
            other => self.coordinator_timer(other, ctx),
        }
    }

    fn on_request(&mut self, reply_to: ReplyTo, request: Transfer, ctx: &mut Ctx<'_, Self>) {
        if self.is_coordinator() {
            self.start(reply_to, request, ctx);
        } else {
            ctx.reply(reply_to, TxResponse::NotCoordinator);
        }
    }

    fn classify(response: &TxResponse) -> ResponseClass {
        atomic_commit::classify(response)
    }

    fn is_leader(&self) -> bool {
        self.is_coordinator()
    }

    fn view(&self, log: &CommitLog) -> NodeView {
        let role = if self.is_coordinator() {
            "coordinator"
        } else {
            "participant"
        };
        let mut view = NodeView::new(role);
        if self.is_coordinator() {
            view = view.field("in progress", self.active.len());
        } else {
            view = atomic_commit::participant_fields(view, &self.locks, log);
        }
        atomic_commit::view_transactions(view, log, |tx| {
            self.active.get(&tx).map(|a| match a.decision {
                Some(d) => format!("{d}: acks {}/{}", a.acks.len(), a.parts.len()),
                None => format!("waiting: yes {}/{}", a.yes.len(), a.parts.len()),
            })
        })
    }
}
