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

use crate::atomic_commit::{
    self, AbortCause, BankSettings, COORDINATOR, CommitLog, CommitProtocol, CommitSettings,
    Coordinator, Decision, Participant, Transfer, TxId, TxRecord, TxResponse, Vote,
    apply_decision, force_decision,
};
use serde::{Deserialize, Serialize};
use simlab_sim::hash::StableHasher;
use simlab_sim::{
    Ctx, FieldError, Node, NodeId, NodeView, ReplyTo, ResponseClass, Time,
};
use std::collections::BTreeSet;
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

impl CommitSettings for TwoPcConfig {
    fn bank_settings(&self) -> BankSettings {
        BankSettings {
            accounts: self.accounts,
            initial_balance: self.initial_balance,
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
        self.bank_settings().validate(
            nodes,
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

/// A 2PC node: the coordinator (node 0) or a participant.
#[derive(Clone, Debug)]
pub struct TwoPc {
    id: NodeId,
    config: Arc<TwoPcConfig>,
    coordinator: Coordinator,
    participant: Participant,
}

impl CommitProtocol for TwoPc {
    const FIRST_PHASE: &'static str = "prepare";
    fn first_phase(tx: TxId, participants: Vec<NodeId>, ops: Vec<(u32, i64)>) -> Msg {
        Msg::Prepare {
            tx,
            participants,
            ops,
        }
    }
    fn vote(tx: TxId, vote: Vote) -> Msg {
        Msg::Vote { tx, vote }
    }
    fn decide(tx: TxId, decision: Decision) -> Msg {
        Msg::Decide { tx, decision }
    }
    fn vote_timeout(tx: TxId) -> Timer {
        Timer::VoteTimeout(tx)
    }
    fn retransmit(tx: TxId) -> Timer {
        Timer::Retransmit(tx)
    }
    fn wait_for_decision(tx: TxId) -> Timer {
        Timer::Uncertain(tx)
    }
}

impl TwoPc {
    /// A fresh node (at boot or restart: only the durable log carries over).
    pub fn new(id: NodeId, config: Arc<TwoPcConfig>, nodes: u32) -> TwoPc {
        let bank = config.bank(nodes);
        let ms = Time::from_millis;
        TwoPc {
            id,
            coordinator: Coordinator::new(
                bank.clone(),
                ms(config.vote_timeout_ms),
                ms(config.retransmit_ms),
            ),
            participant: Participant::new(id, bank, ms(config.decision_timeout_ms)),
            config,
        }
    }

    /// This node running the learner's code where `code` has some (2PC has no learner slot).
    pub fn with_code(self, _code: &crate::LearnerCode) -> TwoPc {
        self
    }

    fn is_coordinator(&self) -> bool {
        self.id == COORDINATOR
    }

    // ----- coordinator -----

    /// Phase 2: every vote yes commits; a no vote aborts.
    fn on_vote(&mut self, from: NodeId, tx: TxId, vote: Vote, ctx: &mut Ctx<'_, Self>) {
        let ignore_no = self.config.has(TwoPcBug::IgnoreNoVote);
        let Some(active) = self.coordinator.counting(from, tx, ctx) else {
            return;
        };
        let decision = match vote {
            Vote::No if !ignore_no => Some((Decision::Abort, Some(AbortCause::NoVote(from)))),
            _ => {
                active.yes.insert(from);
                active.all_in(&active.yes).then_some((Decision::Commit, None))
            }
        };
        if let Some((decision, cause)) = decision {
            let log_late = (decision == Decision::Commit
                && self.config.has(TwoPcBug::CommitBeforeLog))
            .then_some(Timer::LogDecision(tx));
            self.coordinator.decide(tx, decision, cause, log_late, ctx);
        }
    }

    fn coordinator_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::VoteTimeout(tx) => self.coordinator.on_vote_timeout(tx, ctx),
            Timer::Retransmit(tx) => self.coordinator.on_retransmit(tx, ctx),
            Timer::LogDecision(tx) => {
                if let Some(active) = self.coordinator.active.get(&tx)
                    && let Some(decision) = active.decision
                {
                    force_decision(ctx, tx, active.participants(), decision, None);
                }
            }
            Timer::Uncertain(_) => {}
        }
    }

    /// Cooperative termination, the coordinator's side: the decision if it knows one, nothing
    /// while it is still collecting votes, and abort for a transaction it has no record of.
    fn coordinator_inquiry(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let known = ctx.durable().decision(tx).or_else(|| {
            self.coordinator
                .active
                .get(&tx)
                .and_then(|a| a.decision)
        });
        let decision = match known {
            Some(d) => Some(d),
            None if self.coordinator.active.contains_key(&tx) => None, // Still collecting votes.
            None => {
                Coordinator::presume_abort(from, tx, ctx);
                Some(Decision::Abort)
            }
        };
        ctx.send(from, Msg::DecisionReply { tx, decision });
    }

    /// After a crash: resend every decision the log holds that was not acknowledged.
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
            self.coordinator.resume(tx, &record, decision, ctx);
        }
        if !self.coordinator.active.is_empty() {
            ctx.note_with(|| format!(
                "recovered: resending {} decisions",
                self.coordinator.active.len()
            ));
        }
    }

    // ----- participant -----

    /// Applies a decision learnt from the coordinator or a peer.
    fn learn(&mut self, tx: TxId, decision: Decision, ctx: &mut Ctx<'_, Self>) {
        if let Some(record) = self.participant.unforced.remove(&tx) {
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
            ctx.note_with(|| format!("{tx}: {decision}"));
        }
        self.participant.release(tx);
    }

    /// Voted yes and still no decision: ask the coordinator and the other participants
    /// (cooperative termination), and again later. This is where 2PC blocks.
    fn on_uncertain(&mut self, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(record) = self.participant.record(tx, ctx) else {
            return;
        };
        if record.decision.is_some() || !matches!(record.vote, Some((Vote::Yes, _))) {
            return;
        }
        if self.config.has(TwoPcBug::UnilateralAbort) {
            ctx.note_with(|| format!("{tx}: tired of waiting, aborting alone (bug)"));
            self.learn(tx, Decision::Abort, ctx);
            return;
        }
        ctx.note_with(|| format!("{tx}: uncertain, asking the coordinator and peers"));
        ctx.send(COORDINATOR, Msg::DecisionRequest { tx });
        for p in record.participants.iter().filter(|&&p| p != self.id) {
            ctx.send(*p, Msg::DecisionRequest { tx });
        }
        ctx.set_timer(self.participant.wait, Timer::Uncertain(tx));
    }

    /// Cooperative termination, a peer's side: the decision if known; a participant that has
    /// not voted aborts now, so the coordinator can never commit without it.
    fn participant_inquiry(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let decision = match self.participant.record(tx, ctx) {
            Some(r) => r.decision.map(|(d, _)| d),
            None => {
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
        let uncertain: BTreeSet<TxId> = self.participant.recover(ctx);
        for tx in uncertain {
            ctx.note_with(|| format!("{tx}: recovered uncertain"));
            ctx.set_timer(Time::from_millis(1), Timer::Uncertain(tx));
        }
    }
}

atomic_commit::commit_protocol!(TwoPc, TwoPcConfig, "two-phase commit");

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
            } => {
                let forget = self.config.has(TwoPcBug::ForgetVote);
                self.participant
                    .on_first_phase(tx, participants, ops, forget, ctx);
            }
            Msg::Vote { tx, vote } => self.on_vote(from, tx, vote, ctx),
            Msg::Decide { tx, decision } => {
                self.learn(tx, decision, ctx);
                ctx.send(from, Msg::Ack { tx });
            }
            Msg::Ack { tx } => self.coordinator.on_ack(from, tx, ctx),
            Msg::DecisionRequest { tx } if self.is_coordinator() => {
                self.coordinator_inquiry(from, tx, ctx)
            }
            Msg::DecisionRequest { tx } => self.participant_inquiry(from, tx, ctx),
            Msg::DecisionReply {
                tx,
                decision: Some(decision),
            } => {
                let uncertain = self
                    .participant
                    .record(tx, ctx)
                    .is_some_and(|r| r.decision.is_none());
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
            self.coordinator.start(reply_to, request, ctx);
        } else {
            ctx.reply(reply_to, TxResponse::NotCoordinator);
        }
    }

    fn fingerprint_durable(durable: &CommitLog, hasher: &mut StableHasher) {
        durable.fingerprint(hasher);
    }

    fn classify(response: &TxResponse) -> ResponseClass {
        atomic_commit::classify(response)
    }

    fn is_leader(&self) -> bool {
        self.is_coordinator()
    }

    fn view(&self, log: &CommitLog) -> NodeView {
        let coordinator = self.is_coordinator().then_some(&self.coordinator);
        atomic_commit::node_view(coordinator, &self.participant, log, None)
    }
}
