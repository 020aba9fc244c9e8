//! Three-phase commit (Skeen, *Nonblocking Commit Protocols*, SIGMOD 1981; Bernstein,
//! Hadzilacos and Goodman 1987, §7.4) with a termination protocol run by the participants.
//!
//! 1. **can-commit**: the coordinator (node 0) asks every participant; each forces a yes vote
//!    and locks its accounts, or aborts and votes no.
//! 2. **pre-commit**: with every vote yes, the coordinator forces *pre-commit* to its log and
//!    tells the participants, which force it too and acknowledge. A no vote or a missing vote
//!    aborts.
//! 3. **do-commit**: once every participant acknowledged (or the acknowledgement timeout expired:
//!    a silent participant is presumed crashed), the coordinator forces *commit* and sends it.
//!
//! The extra phase means no participant can be uncertain while another has committed: before
//! anyone commits, everyone alive is pre-committed. So when the coordinator fails, the
//! participants finish alone (termination protocol): a participant that times out asks the
//! others for their state; the lowest-numbered participant that answers acts as backup
//! coordinator and decides: abort if anyone aborted, commit if anyone committed or
//! pre-committed, abort if everyone is merely uncertain. Under crash-stop failures and a
//! reliable network, 3PC therefore **never blocks** (while one participant is up) and stays
//! atomic.
//!
//! Under a **network partition** it is not safe: a side holding a pre-committed participant
//! commits, a side holding only uncertain ones aborts, and atomicity is lost. That is the
//! lesson of the `3pc-partition` scenario, and the reason real systems use consensus instead.
//!
//! Simplification: a backup that sees a pre-committed participant commits at once rather than
//! first moving the uncertain ones to pre-commit; with a reliable network (messages sent before a
//! crash still arrive) the outcome is the same.

use simlab_sim::FieldError;
use crate::atomic_commit::{
    self, AbortCause, Bank, COORDINATOR, CommitLog, CommitSettings, Decision, Locks, Transfer,
    TxId, TxRecord, TxResponse, Vote, apply_decision, can_prepare, force_decision, locks_from_log,
    response,
};
use crate::protocol::{Protocol, ReportItem, Setup};
use crate::two_phase_commit::validate_commit_config;
use serde::{Deserialize, Serialize};
use simlab_sim::{
    Ctx, Invariant, Node, NodeId, NodeView, ReplyTo, ResponseClass, Simulation, Time, Workload,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Deliberate mistakes, for teaching and to prove the checkers catch them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ThreePcBug {
    /// A pre-committed participant that hears nothing more aborts on its own.
    AbortOnPrecommitTimeout,
    /// The coordinator's recovery ignores a logged pre-commit and presumes abort.
    RecoveryIgnoresPrecommit,
    /// The coordinator moves to pre-commit one yes vote early, and then ignores the last vote.
    MiscountVotes,
    /// A backup coordinator commits even when every participant is merely uncertain.
    TerminationCommitsUncertain,
}

/// 3PC's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThreePcConfig {
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
    /// How long the coordinator waits for pre-commit acknowledgements before committing anyway.
    pub ack_timeout_ms: u64,
    /// How long a participant waits for the coordinator's next message before terminating.
    pub participant_timeout_ms: u64,
    /// How long a participant collects states in the termination protocol.
    pub termination_wait_ms: u64,
    /// How often a decision is resent until acknowledged.
    pub retransmit_ms: u64,
    /// Planted bugs to switch on.
    pub bugs: Vec<ThreePcBug>,
}

impl Default for ThreePcConfig {
    fn default() -> Self {
        ThreePcConfig {
            accounts: 8,
            initial_balance: 100,
            max_amount: 30,
            max_recipients: 1,
            vote_timeout_ms: 100,
            ack_timeout_ms: 100,
            participant_timeout_ms: 200,
            termination_wait_ms: 50,
            retransmit_ms: 100,
            bugs: Vec::new(),
        }
    }
}

impl atomic_commit::CommitSettings for ThreePcConfig {
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
        Time::from_millis(self.participant_timeout_ms)
    }
}

impl ThreePcConfig {
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
                ("ack_timeout_ms", self.ack_timeout_ms),
                ("participant_timeout_ms", self.participant_timeout_ms),
                ("termination_wait_ms", self.termination_wait_ms),
                ("retransmit_ms", self.retransmit_ms),
            ],
        )
    }

    fn has(&self, bug: ThreePcBug) -> bool {
        self.bugs.contains(&bug)
    }
}

/// A participant's state as reported in the termination protocol.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum TxState {
    /// Voted yes, not pre-committed.
    Uncertain,
    /// Pre-committed.
    PreCommitted,
    /// Decided.
    Decided(Decision),
}

/// Messages.
#[derive(Clone, Debug, Serialize)]
pub enum Msg {
    /// Coordinator → participant: can you commit your part of `tx`?
    CanCommit {
        /// The transaction.
        tx: TxId,
        /// All its participants.
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
    /// Coordinator (or backup) → participant: every vote was yes.
    PreCommit {
        /// The transaction.
        tx: TxId,
    },
    /// Participant → coordinator: pre-commit forced.
    PreCommitAck {
        /// The transaction.
        tx: TxId,
    },
    /// The decision.
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
    /// Termination (or coordinator recovery): what is your state for `tx`?
    StateRequest {
        /// The transaction.
        tx: TxId,
    },
    /// The answer.
    StateReply {
        /// The transaction.
        tx: TxId,
        /// The state.
        state: TxState,
        /// Whether the sender may act as backup coordinator: not while it is recovering from a
        /// crash (it may have missed messages), and never the coordinator itself.
        eligible: bool,
    },
}

/// Timers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// Coordinator: votes for `tx` are due.
    VoteTimeout(TxId),
    /// Coordinator: pre-commit acknowledgements for `tx` are due.
    AckTimeout(TxId),
    /// Resend the decision for `tx` to whoever has not acknowledged.
    Retransmit(TxId),
    /// Participant: the coordinator has gone quiet about `tx`.
    Quiet(TxId),
    /// Participant: the termination round's states are in; decide or wait.
    Terminate(TxId),
    /// Recovered coordinator: ask the participants again about an undecided `tx`.
    Ask(TxId),
}

#[derive(Clone, Debug, Default)]
struct Active {
    parts: Vec<(NodeId, Vec<(u32, i64)>)>,
    yes: BTreeSet<NodeId>,
    precommitted: bool,
    precommit_acks: BTreeSet<NodeId>,
    decision: Option<Decision>,
    acks: BTreeSet<NodeId>,
    clients: Vec<ReplyTo>,
}

impl Active {
    fn participants(&self) -> Vec<NodeId> {
        self.parts.iter().map(|(p, _)| *p).collect()
    }
}

/// A 3PC node: the coordinator (node 0) or a participant.
#[derive(Clone, Debug)]
pub struct ThreePc {
    id: NodeId,
    config: Arc<ThreePcConfig>,
    bank: Bank,
    active: BTreeMap<TxId, Active>,
    locks: Locks,
    /// Termination rounds in progress: the states collected so far, and who may lead.
    rounds: BTreeMap<TxId, BTreeMap<NodeId, (TxState, bool)>>,
    /// Undecided transactions found in the log at restart: this node only asks about them.
    recovering: BTreeSet<TxId>,
}

impl ThreePc {
    /// A fresh node (at boot or restart: only the durable log carries over).
    pub fn new(id: NodeId, config: Arc<ThreePcConfig>, nodes: u32) -> ThreePc {
        let bank = config.bank(nodes);
        ThreePc {
            id,
            config,
            bank,
            active: BTreeMap::new(),
            locks: Locks::new(),
            rounds: BTreeMap::new(),
            recovering: BTreeSet::new(),
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
        if ctx.durable().record(tx).is_some() {
            return; // Recovered and undecided: the participants' answers will settle it.
        }
        let parts = self.bank.split(&transfer);
        let participants: Vec<NodeId> = parts.iter().map(|(p, _)| *p).collect();
        for (p, ops) in &parts {
            ctx.send(
                *p,
                Msg::CanCommit {
                    tx,
                    participants: participants.clone(),
                    ops: ops.clone(),
                },
            );
        }
        ctx.note(format!("{tx}: can-commit {transfer:?} at {participants:?}"));
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
            if let Some(decision) = ctx.durable().decision(tx) {
                ctx.send(from, Msg::Decide { tx, decision });
            }
            return;
        };
        if let Some(decision) = active.decision {
            ctx.send(from, Msg::Decide { tx, decision });
            return;
        }
        if active.precommitted {
            return; // Too late to matter (only reachable with MiscountVotes).
        }
        match vote {
            Vote::No => self.decide(tx, Decision::Abort, Some(AbortCause::NoVote(from)), ctx),
            Vote::Yes => {
                active.yes.insert(from);
                let needed = if self.config.has(ThreePcBug::MiscountVotes) {
                    active.parts.len().saturating_sub(1).max(1)
                } else {
                    active.parts.len()
                };
                if active.yes.len() >= needed {
                    self.precommit(tx, ctx);
                }
            }
        }
    }

    fn precommit(&mut self, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let active = self
            .active
            .get_mut(&tx)
            .expect("pre-committing an active transaction");
        active.precommitted = true;
        let participants = active.participants();
        let record = ctx.durable_mut().record_mut(tx);
        record.participants = participants.clone();
        record.precommitted = true;
        for p in participants {
            ctx.send(p, Msg::PreCommit { tx });
        }
        ctx.note(format!("{tx}: pre-commit"));
        ctx.set_timer(Self::ms(self.config.ack_timeout_ms), Timer::AckTimeout(tx));
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
        force_decision(ctx, tx, participants.clone(), decision, cause);
        ctx.note(format!("{tx}: decided {decision}"));
        for p in participants {
            ctx.send(p, Msg::Decide { tx, decision });
        }
        for client in std::mem::take(&mut active.clients) {
            ctx.reply(client, response(decision));
        }
        ctx.set_timer(Self::ms(self.config.retransmit_ms), Timer::Retransmit(tx));
    }

    fn on_precommit_ack(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(active) = self.active.get_mut(&tx) else {
            return;
        };
        active.precommit_acks.insert(from);
        let all = active
            .parts
            .iter()
            .all(|(p, _)| active.precommit_acks.contains(p));
        if all && active.decision.is_none() {
            self.decide(tx, Decision::Commit, None, ctx);
        }
    }

    fn on_ack(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(active) = self.active.get_mut(&tx) else {
            return;
        };
        active.acks.insert(from);
        if active.decision.is_some() && active.parts.iter().all(|(p, _)| active.acks.contains(p)) {
            self.active.remove(&tx);
            ctx.durable_mut().record_mut(tx).ended = true;
        }
    }

    fn coordinator_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::VoteTimeout(tx) => {
                if let Some(a) = self.active.get(&tx)
                    && a.decision.is_none()
                    && !a.precommitted
                {
                    let yes_votes = a.yes.iter().copied().collect();
                    self.decide(
                        tx,
                        Decision::Abort,
                        Some(AbortCause::Timeout { yes_votes }),
                        ctx,
                    );
                }
            }
            Timer::AckTimeout(tx) => {
                // Everyone voted yes; a participant that did not acknowledge is presumed down.
                if self.active.get(&tx).is_some_and(|a| a.decision.is_none()) {
                    self.decide(tx, Decision::Commit, None, ctx);
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
            Timer::Ask(tx) => {
                if ctx.durable().decision(tx).is_none()
                    && let Some(record) = ctx.durable().record(tx)
                {
                    for p in record.participants.clone() {
                        ctx.send(p, Msg::StateRequest { tx });
                    }
                    ctx.set_timer(Self::ms(self.config.participant_timeout_ms), Timer::Ask(tx));
                }
            }
            Timer::Quiet(_) | Timer::Terminate(_) => {}
        }
    }

    fn recover_coordinator(&mut self, ctx: &mut Ctx<'_, Self>) {
        let records: Vec<(TxId, TxRecord)> = ctx
            .durable()
            .txs()
            .iter()
            .filter(|(_, r)| !r.ended)
            .map(|(tx, r)| (*tx, r.clone()))
            .collect();
        for (tx, record) in records {
            let parts: Vec<(NodeId, Vec<(u32, i64)>)> = record
                .participants
                .iter()
                .map(|p| (*p, Vec::new()))
                .collect();
            match record.decision {
                Some((decision, _)) => {
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
                None if self.config.has(ThreePcBug::RecoveryIgnoresPrecommit) => {
                    ctx.note(format!("{tx}: recovered undecided, presuming abort (bug)"));
                    self.active.insert(
                        tx,
                        Active {
                            parts,
                            precommitted: true,
                            ..Active::default()
                        },
                    );
                    self.decide(tx, Decision::Abort, Some(AbortCause::Recovery), ctx);
                }
                None => {
                    // Pre-committed but undecided: the participants may have terminated without
                    // us. Ask them; never decide alone.
                    ctx.note(format!(
                        "{tx}: recovered pre-committed, asking the participants"
                    ));
                    ctx.set_timer(Time::from_millis(1), Timer::Ask(tx));
                }
            }
        }
    }

    fn coordinator_learns(&mut self, tx: TxId, state: TxState, ctx: &mut Ctx<'_, Self>) {
        let TxState::Decided(decision) = state else {
            return;
        };
        if ctx.durable().decision(tx).is_some() {
            return;
        }
        let participants = ctx
            .durable()
            .record(tx)
            .map(|r| r.participants.clone())
            .unwrap_or_default();
        force_decision(
            ctx,
            tx,
            participants.clone(),
            decision,
            Some(AbortCause::Termination).filter(|_| decision == Decision::Abort),
        );
        let parts = participants.into_iter().map(|p| (p, Vec::new())).collect();
        self.active.insert(
            tx,
            Active {
                parts,
                decision: Some(decision),
                ..Active::default()
            },
        );
        ctx.set_timer(Self::ms(self.config.retransmit_ms), Timer::Retransmit(tx));
    }

    // ----- participant -----

    fn state(&self, tx: TxId, ctx: &Ctx<'_, Self>) -> Option<TxState> {
        let r = ctx.durable().record(tx)?;
        Some(match (r.decision, r.precommitted, r.vote) {
            (Some((d, _)), _, _) => TxState::Decided(d),
            (None, true, _) => TxState::PreCommitted,
            (None, false, Some((Vote::Yes, _))) => TxState::Uncertain,
            (None, false, _) => return None,
        })
    }

    fn on_can_commit(
        &mut self,
        tx: TxId,
        participants: Vec<NodeId>,
        ops: Vec<(u32, i64)>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if let Some(record) = ctx.durable().record(tx) {
            ctx.send(
                COORDINATOR,
                Msg::Vote {
                    tx,
                    vote: atomic_commit::repeat_vote(record),
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
            ctx.durable_mut().insert(tx, record);
            ctx.send(
                COORDINATOR,
                Msg::Vote {
                    tx,
                    vote: Vote::Yes,
                },
            );
            ctx.set_timer(
                Self::ms(self.config.participant_timeout_ms),
                Timer::Quiet(tx),
            );
        } else {
            ctx.note(format!(
                "{tx}: cannot commit (locked or overdrawn): voting no"
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

    fn on_precommit(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        match self.state(tx, ctx) {
            Some(TxState::Uncertain) => {
                ctx.durable_mut().record_mut(tx).precommitted = true;
                ctx.set_timer(
                    Self::ms(self.config.participant_timeout_ms),
                    Timer::Quiet(tx),
                );
                ctx.send(from, Msg::PreCommitAck { tx });
            }
            Some(TxState::PreCommitted) => ctx.send(from, Msg::PreCommitAck { tx }),
            _ => {}
        }
    }

    fn learn(&mut self, tx: TxId, decision: Decision, ctx: &mut Ctx<'_, Self>) {
        let now = ctx.now();
        if apply_decision(ctx.durable_mut(), tx, decision, now) {
            ctx.note(format!("{tx}: {decision}"));
        }
        self.locks.retain(|_, holder| *holder != tx);
        self.rounds.remove(&tx);
        self.recovering.remove(&tx);
    }

    fn on_quiet(&mut self, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(state) = self.state(tx, ctx) else {
            return;
        };
        if let TxState::Decided(_) = state {
            return;
        }
        if state == TxState::PreCommitted && self.config.has(ThreePcBug::AbortOnPrecommitTimeout) {
            ctx.note(format!(
                "{tx}: pre-committed and tired of waiting, aborting alone (bug)"
            ));
            self.learn(tx, Decision::Abort, ctx);
            return;
        }
        let participants = ctx
            .durable()
            .record(tx)
            .map(|r| r.participants.clone())
            .unwrap_or_default();
        let others = participants.into_iter().filter(|&p| p != self.id);
        if self.recovering.contains(&tx) {
            // Back from a crash: this node may have missed pre-commit or the decision, so it
            // must not decide. It asks everyone, the coordinator included, until someone knows.
            ctx.note(format!(
                "{tx}: recovering ({state:?}); asking for the decision"
            ));
            for p in others.chain([COORDINATOR]) {
                ctx.send(p, Msg::StateRequest { tx });
            }
            ctx.set_timer(
                Self::ms(self.config.participant_timeout_ms),
                Timer::Quiet(tx),
            );
            return;
        }
        // Termination: collect everyone's state, then the lowest eligible one decides.
        ctx.note(format!(
            "{tx}: coordinator quiet; termination round ({state:?})"
        ));
        self.rounds
            .insert(tx, BTreeMap::from([(self.id, (state, true))]));
        for p in others {
            ctx.send(p, Msg::StateRequest { tx });
        }
        ctx.set_timer(
            Self::ms(self.config.termination_wait_ms),
            Timer::Terminate(tx),
        );
    }

    fn on_terminate(&mut self, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(states) = self.rounds.remove(&tx) else {
            return;
        };
        if ctx.durable().decision(tx).is_some() {
            return;
        }
        let lowest = states
            .iter()
            .find(|(_, (_, eligible))| *eligible)
            .map(|(node, _)| *node)
            .expect("a round includes its own, eligible, state");
        if lowest != self.id {
            // A lower participant answered; it will decide. Check again later.
            ctx.set_timer(
                Self::ms(self.config.participant_timeout_ms),
                Timer::Quiet(tx),
            );
            return;
        }
        let decided = |d| states.values().any(|(s, _)| *s == TxState::Decided(d));
        let any_precommitted = states.values().any(|(s, _)| *s == TxState::PreCommitted);
        // Skeen's rule. (The planted bug commits even when everyone is merely uncertain.)
        let commit_uncertain = self.config.has(ThreePcBug::TerminationCommitsUncertain);
        let decision = if decided(Decision::Abort) {
            Decision::Abort
        } else if decided(Decision::Commit) || any_precommitted || commit_uncertain {
            Decision::Commit
        } else {
            Decision::Abort
        };
        ctx.note(format!(
            "{tx}: backup coordinator decides {decision} from {states:?}"
        ));
        let participants = ctx
            .durable()
            .record(tx)
            .map(|r| r.participants.clone())
            .unwrap_or_default();
        if decision == Decision::Abort {
            ctx.durable_mut().record_mut(tx).abort_cause = Some(AbortCause::Termination);
        }
        self.learn(tx, decision, ctx);
        for p in participants
            .into_iter()
            .filter(|&p| p != self.id)
            .chain([COORDINATOR])
        {
            ctx.send(p, Msg::Decide { tx, decision });
        }
    }

    fn on_state_request(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        if self.is_coordinator() {
            self.coordinator_state(from, tx, ctx);
            return;
        }
        let state = match self.state(tx, ctx) {
            Some(state) => state,
            None => {
                // Never voted yes: abort now, so nobody can commit without us.
                if ctx.durable().decision(tx).is_none() {
                    let now = ctx.now();
                    let record = ctx.durable_mut().record_mut(tx);
                    record.decision = Some((Decision::Abort, now));
                    record.abort_cause = Some(AbortCause::NotVoted);
                }
                TxState::Decided(Decision::Abort)
            }
        };
        let eligible = !self.recovering.contains(&tx);
        ctx.send(
            from,
            Msg::StateReply {
                tx,
                state,
                eligible,
            },
        );
    }

    /// The coordinator answers a recovering participant: its decision, or pre-committed, or
    /// nothing while it is still collecting votes. A transaction it has no record of was never
    /// pre-committed, so nobody can have committed it: presumed abort.
    fn coordinator_state(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let state = match (ctx.durable().decision(tx), ctx.durable().record(tx)) {
            (Some(d), _) => TxState::Decided(d),
            (None, Some(r)) if r.precommitted => TxState::PreCommitted,
            (None, _) if self.active.contains_key(&tx) => return,
            (None, _) => {
                force_decision(
                    ctx,
                    tx,
                    vec![from],
                    Decision::Abort,
                    Some(AbortCause::Unknown),
                );
                TxState::Decided(Decision::Abort)
            }
        };
        ctx.send(
            from,
            Msg::StateReply {
                tx,
                state,
                eligible: false,
            },
        );
    }

    fn on_state_reply(
        &mut self,
        from: NodeId,
        tx: TxId,
        state: TxState,
        eligible: bool,
        ctx: &mut Ctx<'_, Self>,
    ) {
        if self.is_coordinator() {
            self.coordinator_learns(tx, state, ctx);
            return;
        }
        if let TxState::Decided(decision) = state {
            if self
                .state(tx, ctx)
                .is_some_and(|s| !matches!(s, TxState::Decided(_)))
            {
                self.learn(tx, decision, ctx);
            }
            return;
        }
        if let Some(round) = self.rounds.get_mut(&tx) {
            round.insert(from, (state, eligible));
        }
    }

    fn recover_participant(&mut self, ctx: &mut Ctx<'_, Self>) {
        if !ctx.durable().is_initialized() {
            let (bank, id) = (self.bank.clone(), self.id);
            atomic_commit::initialize(ctx.durable_mut(), &bank, id);
        }
        self.locks = locks_from_log(ctx.durable());
        let undecided: BTreeSet<TxId> = self.locks.values().copied().collect();
        for tx in undecided {
            ctx.note(format!("{tx}: recovered undecided"));
            self.recovering.insert(tx);
            ctx.set_timer(Time::from_millis(1), Timer::Quiet(tx));
        }
    }
}

impl Protocol for ThreePc {
    type Config = ThreePcConfig;
    const NAME: &'static str = "three-phase commit";

    fn validate(config: &ThreePcConfig, nodes: u32) -> Result<(), FieldError> {
        config.validate(nodes)
    }
    fn min_nodes(_: &ThreePcConfig) -> u32 {
        3 // a coordinator and two participants
    }
    fn clear_bugs(config: &mut ThreePcConfig) {
        config.bugs.clear();
    }
    fn node(setup: &Setup<ThreePcConfig>, id: NodeId) -> ThreePc {
        ThreePc::new(id, setup.config.clone(), setup.nodes)
    }
    fn workload(setup: &Setup<ThreePcConfig>) -> Option<Box<dyn Workload<Transfer>>> {
        Some(Box::new(setup.config.workload()))
    }
    fn invariants(setup: &Setup<ThreePcConfig>) -> Vec<Box<dyn Invariant<ThreePc>>> {
        atomic_commit::invariants::all(&setup.config.bank(setup.nodes))
    }
    fn report(setup: &Setup<ThreePcConfig>, sim: &Simulation<ThreePc>) -> Vec<ReportItem> {
        atomic_commit::report(sim, setup.config.blocking_threshold())
    }
}

impl Node for ThreePc {
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
            Msg::CanCommit {
                tx,
                participants,
                ops,
            } => self.on_can_commit(tx, participants, ops, ctx),
            Msg::Vote { tx, vote } => self.on_vote(from, tx, vote, ctx),
            Msg::PreCommit { tx } => self.on_precommit(from, tx, ctx),
            Msg::PreCommitAck { tx } => self.on_precommit_ack(from, tx, ctx),
            Msg::Decide { tx, decision } if self.is_coordinator() => {
                self.coordinator_learns(tx, TxState::Decided(decision), ctx);
            }
            Msg::Decide { tx, decision } => {
                self.learn(tx, decision, ctx);
                ctx.send(from, Msg::Ack { tx });
            }
            Msg::Ack { tx } => self.on_ack(from, tx, ctx),
            Msg::StateRequest { tx } => self.on_state_request(from, tx, ctx),
            Msg::StateReply {
                tx,
                state,
                eligible,
            } => self.on_state_reply(from, tx, state, eligible, ctx),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::Quiet(tx) => self.on_quiet(tx, ctx),
            Timer::Terminate(tx) => self.on_terminate(tx, ctx),
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
            if !self.rounds.is_empty() {
                let rounds: Vec<String> = self.rounds.keys().map(TxId::to_string).collect();
                view = view.field("terminating", rounds.join(" "));
            }
        }
        atomic_commit::view_transactions(view, log, |tx| {
            self.active
                .get(&tx)
                .map(|a| match (a.decision, a.precommitted) {
                    (Some(d), _) => format!("{d}: acks {}/{}", a.acks.len(), a.parts.len()),
                    (None, true) => format!(
                        "pre-committed: acks {}/{}",
                        a.precommit_acks.len(),
                        a.parts.len()
                    ),
                    (None, false) => format!("waiting: yes {}/{}", a.yes.len(), a.parts.len()),
                })
        })
    }
}
