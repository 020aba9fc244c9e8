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

use crate::atomic_commit::{
    self, AbortCause, Active, BankSettings, COORDINATOR, CommitLog, CommitProtocol, CommitSettings,
    Coordinator, Decision, Participant, Transfer, TxId, TxRecord, TxResponse, Vote,
    apply_decision, force_decision,
};
use serde::{Deserialize, Serialize};
use simlab_sim::hash::StableHasher;
use simlab_sim::{
    Ctx, FieldError, Node, NodeId, NodeView, ReplyTo, ResponseClass, Time,
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

impl CommitSettings for ThreePcConfig {
    fn bank_settings(&self) -> BankSettings {
        BankSettings {
            accounts: self.accounts,
            initial_balance: self.initial_balance,
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
        self.bank_settings().validate(
            nodes,
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

/// The backup coordinator's rule: the decision from the states it collected (its own
/// included). Decided participants report `Decided`.
pub type TerminateFn = fn(states: &[TxState]) -> Decision;

/// The termination rule, a slot a learner may fill (`3pc.terminate`).
pub static TERMINATE: crate::learner::Slot<TerminateFn> =
    crate::learner::Slot::new("3pc.terminate", terminate);

/// Skeen's rule: abort if anyone aborted; commit if anyone committed or pre-committed (before
/// anyone commits, everyone alive is pre-committed, so nobody can have aborted); abort if all
/// are merely uncertain (nobody can have committed yet).
pub fn terminate(states: &[TxState]) -> Decision {
    let decided = |d| states.contains(&TxState::Decided(d));
    if decided(Decision::Abort) {
        Decision::Abort
    } else if decided(Decision::Commit) || states.contains(&TxState::PreCommitted) {
        Decision::Commit
    } else {
        Decision::Abort
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

/// A 3PC node: the coordinator (node 0) or a participant.
#[derive(Clone, Debug)]
pub struct ThreePc {
    id: NodeId,
    config: Arc<ThreePcConfig>,
    coordinator: Coordinator,
    participant: Participant,
    /// Termination rounds in progress: the states collected so far, and who may lead.
    rounds: BTreeMap<TxId, BTreeMap<NodeId, (TxState, bool)>>,
    /// Undecided transactions found in the log at restart: this node only asks about them.
    recovering: BTreeSet<TxId>,
    /// The backup coordinator's rule (a learner's, or [`terminate`]).
    terminate: TerminateFn,
}

impl CommitProtocol for ThreePc {
    const FIRST_PHASE: &'static str = "can-commit";
    fn first_phase(tx: TxId, participants: Vec<NodeId>, ops: Vec<(u32, i64)>) -> Msg {
        Msg::CanCommit {
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
        Timer::Quiet(tx)
    }
}

impl ThreePc {
    /// A fresh node (at boot or restart: only the durable log carries over).
    pub fn new(id: NodeId, config: Arc<ThreePcConfig>, nodes: u32) -> ThreePc {
        let bank = config.bank(nodes);
        let ms = Time::from_millis;
        ThreePc {
            id,
            coordinator: Coordinator::new(
                bank.clone(),
                ms(config.vote_timeout_ms),
                ms(config.retransmit_ms),
            ),
            participant: Participant::new(id, bank, ms(config.participant_timeout_ms)),
            config,
            rounds: BTreeMap::new(),
            recovering: BTreeSet::new(),
            terminate,
        }
    }

    /// This node running the learner's code where `code` has some.
    pub fn with_code(mut self, code: &crate::LearnerCode) -> ThreePc {
        self.terminate = TERMINATE.pick(code);
        self
    }

    fn is_coordinator(&self) -> bool {
        self.id == COORDINATOR
    }

    fn ms(v: u64) -> Time {
        Time::from_millis(v)
    }

    // ----- coordinator -----

    /// Phase 2: every vote yes moves to pre-commit (not yet to commit); a no vote aborts.
    fn on_vote(&mut self, from: NodeId, tx: TxId, vote: Vote, ctx: &mut Ctx<'_, Self>) {
        let miscount = self.config.has(ThreePcBug::MiscountVotes);
        let Some(active) = self.coordinator.counting(from, tx, ctx) else {
            return;
        };
        if active.precommitted {
            return; // Too late to matter (only reachable with MiscountVotes).
        }
        match vote {
            Vote::No => {
                let cause = Some(AbortCause::NoVote(from));
                self.coordinator
                    .decide(tx, Decision::Abort, cause, None, ctx);
            }
            Vote::Yes => {
                active.yes.insert(from);
                let needed = if miscount {
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
            .coordinator
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
        ctx.note_with(|| format!("{tx}: pre-commit"));
        ctx.set_timer(Self::ms(self.config.ack_timeout_ms), Timer::AckTimeout(tx));
    }

    /// Phase 3: once every participant is pre-committed, commit.
    fn on_precommit_ack(&mut self, from: NodeId, tx: TxId, ctx: &mut Ctx<'_, Self>) {
        let Some(active) = self.coordinator.active.get_mut(&tx) else {
            return;
        };
        active.precommit_acks.insert(from);
        if active.all_in(&active.precommit_acks) && active.decision.is_none() {
            self.coordinator
                .decide(tx, Decision::Commit, None, None, ctx);
        }
    }

    fn coordinator_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::VoteTimeout(tx) => self.coordinator.on_vote_timeout(tx, ctx),
            Timer::AckTimeout(tx) => {
                // Everyone voted yes; a participant that did not acknowledge is presumed down.
                if self
                    .coordinator
                    .active
                    .get(&tx)
                    .is_some_and(|a| a.decision.is_none())
                {
                    self.coordinator
                        .decide(tx, Decision::Commit, None, None, ctx);
                }
            }
            Timer::Retransmit(tx) => self.coordinator.on_retransmit(tx, ctx),
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
            match record.decision {
                Some((decision, _)) => self.coordinator.resume(tx, &record, decision, ctx),
                None if self.config.has(ThreePcBug::RecoveryIgnoresPrecommit) => {
                    ctx.note_with(|| format!("{tx}: recovered undecided, presuming abort (bug)"));
                    let parts = record.participants.iter().map(|p| (*p, Vec::new())).collect();
                    self.coordinator.active.insert(
                        tx,
                        Active {
                            parts,
                            precommitted: true,
                            ..Active::default()
                        },
                    );
                    let cause = Some(AbortCause::Recovery);
                    self.coordinator
                        .decide(tx, Decision::Abort, cause, None, ctx);
                }
                None => {
                    // Pre-committed but undecided: the participants may have terminated without
                    // us. Ask them; never decide alone.
                    ctx.note_with(|| format!(
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
        self.coordinator.active.insert(
            tx,
            Active {
                parts,
                decision: Some(decision),
                ..Active::default()
            },
        );
        ctx.set_timer(self.coordinator.retransmit, Timer::Retransmit(tx));
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
            ctx.note_with(|| format!("{tx}: {decision}"));
        }
        self.participant.release(tx);
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
            ctx.note_with(|| format!(
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
            ctx.note_with(|| format!(
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
        ctx.note_with(|| format!(
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
        let collected: Vec<TxState> = states.values().map(|(s, _)| *s).collect();
        let mut decision = (self.terminate)(&collected);
        // The planted bug commits even when everyone is merely uncertain.
        if self.config.has(ThreePcBug::TerminationCommitsUncertain)
            && !collected.contains(&TxState::Decided(Decision::Abort))
        {
            decision = Decision::Commit;
        }
        ctx.note_with(|| format!(
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
            (None, _) if self.coordinator.active.contains_key(&tx) => return,
            (None, _) => {
                Coordinator::presume_abort(from, tx, ctx);
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
        for tx in self.participant.recover(ctx) {
            ctx.note_with(|| format!("{tx}: recovered undecided"));
            self.recovering.insert(tx);
            ctx.set_timer(Time::from_millis(1), Timer::Quiet(tx));
        }
    }
}

atomic_commit::commit_protocol!(ThreePc, ThreePcConfig, "three-phase commit");

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
            } => self
                .participant
                .on_first_phase(tx, participants, ops, false, ctx),
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
            Msg::Ack { tx } => self.coordinator.on_ack(from, tx, ctx),
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
        let rounds: Vec<String> = self.rounds.keys().map(TxId::to_string).collect();
        let terminating = (!rounds.is_empty()).then(|| ("terminating", rounds.join(" ")));
        atomic_commit::node_view(coordinator, &self.participant, log, terminating)
    }
}
