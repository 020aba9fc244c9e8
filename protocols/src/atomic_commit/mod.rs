//! What two-phase and three-phase commit share: the bank they move money in, the durable
//! transaction log, the client workload, and the atomic-commitment invariants.
//!
//! Node 0 coordinates; nodes `1..n` are participants, each holding a shard of the accounts
//! (account `a` lives on node `1 + a % (n - 1)`). A client's transfer is one transaction: it
//! debits an account on one participant and credits one on another (or the same). Every
//! participant forces its vote, and the coordinator its decision, to the durable store before
//! acting on them, so crash recovery can finish what was started.
//!
//! The invariants are those of Bernstein, Hadzilacos and Goodman, *Concurrency Control and
//! Recovery in Database Systems* (1987), §7.2, plus conservation of money:
//! - **AC1 Agreement**: all processes that decide reach the same decision;
//! - **AC2 NoReversal**: a process cannot reverse its decision;
//! - **AC3 CommitNeedsAllYes**: commit is decided only if every participant voted yes;
//! - **AC4 AbortNeedsCause**: with no failures and all votes yes, the decision is commit
//!   (checked as: every abort has a cause: a no vote, a vote that really was missing at the
//!   timeout, or a failure);
//! - **Conservation**: committed transfers neither create nor destroy money;
//! - **AllDecided** (eventually): once faults are over, no participant stays uncertain for
//!   more than a second.

pub mod coordinator;
pub mod invariants;
pub mod participant;

pub use coordinator::{Active, Coordinator};
pub use participant::Participant;

use serde::{Deserialize, Serialize};
use simlab_sim::hash::StableHasher;
use simlab_sim::rng::{self, SimRng};
use simlab_sim::{ClientId, FieldError, NodeId, ReplyTo, ResponseClass, Time, Workload};
use std::collections::BTreeMap;
use std::fmt;

/// The coordinator's id.
pub const COORDINATOR: NodeId = NodeId(0);

/// A transaction's id: the client and its operation number, stable across retries.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxId {
    /// The client that submitted it.
    pub client: u32,
    /// Its operation number.
    pub seq: u64,
}

impl From<ReplyTo> for TxId {
    fn from(r: ReplyTo) -> TxId {
        TxId {
            client: r.client.0,
            seq: r.seq,
        }
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}.{}", self.client, self.seq)
    }
}

/// A client request: pay `amount` from one account to each of several others, all or nothing.
/// With one recipient it is a plain transfer; with several it is a multi-key write that may
/// touch every participant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// Account debited (by `amount` per recipient).
    pub from: u32,
    /// Accounts credited, each by `amount`; distinct, and never `from`.
    pub to: Vec<u32>,
    /// How much each recipient gets.
    pub amount: i64,
}

/// The answer to a transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum TxResponse {
    /// The transfer committed.
    Committed,
    /// The transfer aborted: it had no effect.
    Aborted,
    /// Only the coordinator takes transfers.
    NotCoordinator,
}

/// How a client treats a response.
pub fn classify(response: &TxResponse) -> ResponseClass {
    match response {
        TxResponse::Committed => ResponseClass::Ok,
        TxResponse::Aborted => ResponseClass::Fail,
        TxResponse::NotCoordinator => ResponseClass::Redirect(Some(COORDINATOR)),
    }
}

/// The accounts and where they live.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bank {
    /// Number of nodes (coordinator included).
    pub nodes: u32,
    /// Number of accounts.
    pub accounts: u32,
    /// Starting balance of every account.
    pub initial_balance: i64,
}

impl Bank {
    /// The participant holding `account`.
    pub fn home(&self, account: u32) -> NodeId {
        NodeId(1 + account % (self.nodes - 1))
    }

    /// The accounts a participant holds.
    pub fn accounts_of(&self, node: NodeId) -> impl Iterator<Item = u32> + '_ {
        (0..self.accounts).filter(move |&a| self.home(a) == node)
    }

    /// All money in the bank.
    pub fn total(&self) -> i64 {
        i64::from(self.accounts) * self.initial_balance
    }

    /// Each participant's part of a transfer, `(node, [(account, delta)])`, sorted by node.
    pub fn split(&self, t: &Transfer) -> Vec<(NodeId, Vec<(u32, i64)>)> {
        let mut parts: BTreeMap<NodeId, Vec<(u32, i64)>> = BTreeMap::new();
        let total = t.amount * t.to.len() as i64;
        parts
            .entry(self.home(t.from))
            .or_default()
            .push((t.from, -total));
        for &to in &t.to {
            parts.entry(self.home(to)).or_default().push((to, t.amount));
        }
        parts.into_iter().collect()
    }
}

/// A vote.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Vote {
    /// Prepared: locks held, ready to commit.
    Yes,
    /// Refused.
    No,
}

/// A decision.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// Apply the transaction.
    Commit,
    /// Forget it.
    Abort,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Decision::Commit => "commit",
            Decision::Abort => "abort",
        })
    }
}

/// Why the coordinator (or a terminating participant) decided abort.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AbortCause {
    /// This participant voted no.
    NoVote(NodeId),
    /// Votes were missing when the vote timeout fired; these had voted yes.
    Timeout {
        /// Participants whose yes vote had arrived.
        yes_votes: Vec<NodeId>,
    },
    /// The coordinator restarted and found no decision in its log (presumed abort).
    Recovery,
    /// A participant asked about a transaction the coordinator has no record of.
    Unknown,
    /// The termination protocol decided, after a failure.
    Termination,
    /// This participant had not voted when asked by an uncertain peer, so it aborted.
    NotVoted,
}

/// One transaction as one node's durable log records it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TxRecord {
    /// Every participant of the transaction.
    pub participants: Vec<NodeId>,
    /// This participant's changes, `(account, delta)`.
    pub ops: Vec<(u32, i64)>,
    /// This participant's vote, when it voted (local time).
    pub vote: Option<(Vote, Time)>,
    /// 3PC: this participant (or the coordinator) reached pre-commit.
    pub precommitted: bool,
    /// The decision, when it was learnt (local time).
    pub decision: Option<(Decision, Time)>,
    /// Why abort was decided, where this node decided it.
    pub abort_cause: Option<AbortCause>,
    /// The changes were applied to the balances.
    pub applied: bool,
    /// Coordinator: every participant acknowledged the decision.
    pub ended: bool,
}

impl TxRecord {
    /// Mixes the record into `hasher` without its times (see [`CommitLog::fingerprint`]).
    pub fn fingerprint(&self, hasher: &mut StableHasher) {
        hasher.value(&self.participants);
        hasher.value(&self.ops);
        hasher.value(&self.vote.map(|(vote, _)| vote));
        hasher.word(u64::from(self.precommitted));
        hasher.value(&self.decision.map(|(decision, _)| decision));
        hasher.value(&self.abort_cause);
        hasher.word(u64::from(self.applied));
        hasher.word(u64::from(self.ended));
    }
}

/// The durable store of every 2PC/3PC node: the transaction log and the balances.
///
/// Every change to a transaction's record goes through [`CommitLog::record_mut`] or
/// [`CommitLog::insert`], which append the transaction to a journal. The invariants read the
/// journal from where they left off, so checking costs what changed, not the whole log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommitLog {
    balances: BTreeMap<u32, i64>,
    initialized: bool,
    txs: BTreeMap<TxId, TxRecord>,
    journal: Vec<TxId>,
}

impl CommitLog {
    /// Mixes what decides this node's future into `hasher`, for exhaustive exploration: the
    /// balances and each transaction's record, without when votes and decisions were made
    /// (reports read them, the protocol does not) or the journal (the invariants' bookmark).
    pub fn fingerprint(&self, hasher: &mut StableHasher) {
        hasher.value(&self.balances);
        hasher.word(u64::from(self.initialized));
        hasher.word(self.txs.len() as u64);
        for (tx, record) in &self.txs {
            hasher.value(tx);
            record.fingerprint(hasher);
        }
    }

    /// This node's decision for `tx`, if any.
    pub fn decision(&self, tx: TxId) -> Option<Decision> {
        self.txs.get(&tx).and_then(|r| r.decision.map(|(d, _)| d))
    }

    /// Every transaction this node took part in.
    pub fn txs(&self) -> &BTreeMap<TxId, TxRecord> {
        &self.txs
    }

    /// One transaction's record.
    pub fn record(&self, tx: TxId) -> Option<&TxRecord> {
        self.txs.get(&tx)
    }

    /// One transaction's record for writing (created empty if new).
    pub fn record_mut(&mut self, tx: TxId) -> &mut TxRecord {
        self.journal.push(tx);
        self.txs.entry(tx).or_default()
    }

    /// Replaces a transaction's record.
    pub fn insert(&mut self, tx: TxId, record: TxRecord) {
        self.journal.push(tx);
        self.txs.insert(tx, record);
    }

    /// Transactions in the order their records were written (with repeats).
    pub fn journal(&self) -> &[TxId] {
        &self.journal
    }

    /// Balances of the accounts this node holds.
    pub fn balances(&self) -> &BTreeMap<u32, i64> {
        &self.balances
    }

    /// Adds `delta` to an account.
    pub fn credit(&mut self, account: u32, delta: i64) {
        *self.balances.entry(account).or_insert(0) += delta;
    }

    /// Whether the balances were set up.
    pub fn is_initialized(&self) -> bool {
        self.initialized
    }
}

/// How long each participant stayed uncertain (voted yes, decision unknown) per transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Blocking {
    /// `(tx, participant, uncertain for)`, for every yes vote.
    pub spans: Vec<(TxId, NodeId, Time)>,
    /// Those still undecided at the end.
    pub still_blocked: Vec<(TxId, NodeId)>,
}

impl Blocking {
    /// Measures blocking from the durable logs, as of `now`.
    pub fn measure<'a>(logs: impl Iterator<Item = (NodeId, &'a CommitLog)>, now: Time) -> Blocking {
        let mut b = Blocking::default();
        for (node, log) in logs {
            if node == COORDINATOR {
                continue;
            }
            for (tx, r) in &log.txs {
                let Some((Vote::Yes, voted)) = r.vote else {
                    continue;
                };
                let until = match r.decision {
                    Some((_, at)) => at,
                    None => {
                        b.still_blocked.push((*tx, node));
                        now
                    }
                };
                b.spans.push((*tx, node, until - voted));
            }
        }
        b
    }

    /// Total uncertain time over all participants and transactions.
    pub fn total(&self) -> Time {
        self.spans
            .iter()
            .fold(Time::ZERO, |acc, (_, _, t)| acc + *t)
    }

    /// The longest single span.
    pub fn max(&self) -> Time {
        self.spans
            .iter()
            .map(|(_, _, t)| *t)
            .max()
            .unwrap_or(Time::ZERO)
    }

    /// Spans longer than `threshold` (the protocol's own timeout): real blocking, not latency.
    pub fn blocked_longer_than(&self, threshold: Time) -> usize {
        self.spans.iter().filter(|(_, _, t)| *t > threshold).count()
    }
}

/// Random transfers between random accounts.
#[derive(Clone, Debug)]
pub struct TransferWorkload {
    /// Number of accounts.
    pub accounts: u32,
    /// Largest amount paid to each recipient.
    pub max_amount: i64,
    /// Largest number of recipients of one transfer (drawn uniformly from 1 to this).
    pub max_recipients: u32,
}

impl Workload<Transfer> for TransferWorkload {
    fn next_request(&mut self, _client: ClientId, _seq: u64, rng: &mut SimRng) -> Transfer {
        let from = rng::below(rng, u64::from(self.accounts)) as u32;
        let mut others: Vec<u32> = (0..self.accounts).filter(|&a| a != from).collect();
        let count = rng::between(
            rng,
            1,
            u64::from(self.max_recipients.min(self.accounts - 1)),
        );
        // The first `count` steps of a Fisher–Yates shuffle pick distinct recipients.
        for i in 0..count as usize {
            let j = i + rng::below(rng, (others.len() - i) as u64) as usize;
            others.swap(i, j);
        }
        let mut to = others[..count as usize].to_vec();
        to.sort_unstable();
        let amount = rng::between(rng, 1, self.max_amount as u64) as i64;
        Transfer { from, to, amount }
    }
}

/// Locks held by prepared transactions: account -> holder.
pub type Locks = BTreeMap<u32, TxId>;

/// Whether a participant can vote yes on `ops` for `tx`: every account is free (or already
/// held by `tx`) and no debit overdraws.
pub fn can_prepare(log: &CommitLog, locks: &Locks, tx: TxId, ops: &[(u32, i64)]) -> bool {
    ops.iter().all(|(account, delta)| {
        let free = locks.get(account).is_none_or(|holder| *holder == tx);
        let balance = log.balances().get(account).copied().unwrap_or(0);
        free && balance + delta >= 0
    })
}

/// The locks a recovering participant must hold again: those of transactions it voted yes on
/// and has no decision for.
pub fn locks_from_log(log: &CommitLog) -> Locks {
    let mut locks = Locks::new();
    for (tx, r) in log.txs() {
        if matches!(r.vote, Some((Vote::Yes, _))) && r.decision.is_none() {
            for (account, _) in &r.ops {
                locks.insert(*account, *tx);
            }
        }
    }
    locks
}

/// Applies a decision to a participant's log and balances, once. Returns whether it did.
pub fn apply_decision(log: &mut CommitLog, tx: TxId, decision: Decision, now: Time) -> bool {
    if log.decision(tx).is_some() {
        return false;
    }
    let record = log.record_mut(tx);
    record.decision = Some((decision, now));
    if decision == Decision::Commit && !record.applied {
        record.applied = true;
        let ops = record.ops.clone();
        for (account, delta) in ops {
            log.credit(account, delta);
        }
    }
    true
}

/// A participant's state for one transaction, as the TUI shows it.
pub fn tx_state(r: &TxRecord) -> &'static str {
    match (r.decision, r.vote, r.precommitted) {
        (Some((Decision::Commit, _)), _, _) => "committed",
        (Some((Decision::Abort, _)), _, _) => "aborted",
        (None, _, true) => "pre-committed",
        (None, Some((Vote::Yes, _)), false) => "uncertain",
        (None, Some((Vote::No, _)), _) => "aborted",
        (None, None, _) => "waiting",
    }
}

/// A participant's locks and balances, as view fields.
pub fn participant_fields(
    view: simlab_sim::NodeView,
    locks: &Locks,
    log: &CommitLog,
) -> simlab_sim::NodeView {
    let locks: Vec<String> = locks.iter().map(|(a, tx)| format!("a{a}:{tx}")).collect();
    let balances: Vec<String> = log
        .balances()
        .iter()
        .map(|(a, b)| format!("a{a}={b}"))
        .collect();
    let locks = if locks.is_empty() {
        "-".to_string()
    } else {
        locks.join(" ")
    };
    view.field("locks", locks)
        .field("balances", balances.join(" "))
}

/// What the registry needs to know of an atomic-commit protocol's settings.
pub trait CommitSettings {
    /// The bank's settings.
    fn bank_settings(&self) -> BankSettings;
    /// The participants' own timeout: uncertainty longer than this is real blocking.
    fn blocking_threshold(&self) -> Time;

    /// The bank for a cluster of `nodes`.
    fn bank(&self, nodes: u32) -> Bank {
        let s = self.bank_settings();
        Bank {
            nodes,
            accounts: s.accounts,
            initial_balance: s.initial_balance,
        }
    }

    /// The clients' transfers.
    fn workload(&self) -> TransferWorkload {
        let s = self.bank_settings();
        TransferWorkload {
            accounts: s.accounts,
            max_amount: s.max_amount,
            max_recipients: s.max_recipients,
        }
    }
}

/// The TUI's view of a commit node: its role, what it is doing, and its last transactions.
/// `extra` adds the protocol's own fields (3PC: termination rounds in progress).
pub fn node_view(
    coordinator: Option<&Coordinator>,
    participant: &Participant,
    log: &CommitLog,
    extra: Option<(&str, String)>,
) -> simlab_sim::NodeView {
    let mut view = match coordinator {
        Some(c) => simlab_sim::NodeView::new("coordinator").field("in progress", c.active.len()),
        None => participant_fields(
            simlab_sim::NodeView::new("participant"),
            &participant.locks,
            log,
        ),
    };
    if let Some((name, value)) = extra {
        view = view.field(name, value);
    }
    view_transactions(view, log, |tx| coordinator.and_then(|c| c.describe(tx)))
}

/// A commit protocol's messages and timers, as the shared [`Coordinator`] and [`Participant`]
/// send and set them. 2PC and 3PC name their messages differently and add their own; these are
/// the ones both have.
pub trait CommitProtocol:
    simlab_sim::Node<Durable = CommitLog, Request = Transfer, Response = TxResponse>
{
    /// The first phase's name in notes (`"prepare"`, `"can-commit"`).
    const FIRST_PHASE: &'static str;
    /// Coordinator → participant: the first phase, with this participant's part of `tx`.
    fn first_phase(tx: TxId, participants: Vec<NodeId>, ops: Vec<(u32, i64)>) -> Self::Msg;
    /// Participant → coordinator: the vote.
    fn vote(tx: TxId, vote: Vote) -> Self::Msg;
    /// Whoever knows → participant: the decision.
    fn decide(tx: TxId, decision: Decision) -> Self::Msg;
    /// Coordinator: the votes for `tx` are due.
    fn vote_timeout(tx: TxId) -> Self::Timer;
    /// Coordinator: resend the decision for `tx` to whoever has not acknowledged it.
    fn retransmit(tx: TxId) -> Self::Timer;
    /// Participant: still undecided about `tx`?
    fn wait_for_decision(tx: TxId) -> Self::Timer;
}

/// Implements [`crate::Protocol`] for a commit protocol's node: every commit protocol runs
/// the bank workload, checks the atomic-commit invariants and reports blocking the same way.
/// `$node::new(id, config, nodes)` builds a node; the config has `validate` and `bugs`.
macro_rules! commit_protocol {
    ($node:ident, $config:ident, $name:literal) => {
        impl $crate::protocol::Protocol for $node {
            type Config = $config;
            const NAME: &'static str = $name;

            fn validate(config: &$config, nodes: u32) -> Result<(), simlab_sim::FieldError> {
                config.validate(nodes)
            }
            fn min_nodes(_: &$config) -> u32 {
                3 // a coordinator and two participants
            }
            fn clear_bugs(config: &mut $config) {
                config.bugs.clear();
            }
            fn node(setup: &$crate::protocol::Setup<$config>, id: simlab_sim::NodeId) -> $node {
                $node::new(id, setup.config.clone(), setup.nodes).with_code(&setup.code)
            }
            fn workload(
                setup: &$crate::protocol::Setup<$config>,
            ) -> Option<Box<dyn simlab_sim::Workload<$crate::atomic_commit::Transfer>>> {
                use $crate::atomic_commit::CommitSettings;
                Some(Box::new(setup.config.workload()))
            }
            fn invariants(
                setup: &$crate::protocol::Setup<$config>,
            ) -> Vec<Box<dyn simlab_sim::Invariant<$node>>> {
                use $crate::atomic_commit::CommitSettings;
                $crate::atomic_commit::invariants::all(&setup.config.bank(setup.nodes))
            }
            fn report(
                setup: &$crate::protocol::Setup<$config>,
                sim: &simlab_sim::Simulation<$node>,
            ) -> Vec<$crate::protocol::ReportItem> {
                use $crate::atomic_commit::CommitSettings;
                $crate::atomic_commit::report(sim, setup.config.blocking_threshold())
            }
        }
    };
}
pub(crate) use commit_protocol;

/// The most accounts a bank may have.
pub const MAX_ACCOUNTS: u32 = 100_000;
/// The largest balance or amount (a trillion): `MAX_ACCOUNTS` such balances still fit an i64.
pub const MAX_MONEY: i64 = 1_000_000_000_000;

/// The settings every commit protocol has, for the bank, its workload and the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BankSettings {
    /// Accounts in the bank.
    pub accounts: u32,
    /// Starting balance of each account.
    pub initial_balance: i64,
    /// Largest amount a transfer pays each recipient.
    pub max_amount: i64,
    /// Largest number of recipients of one transfer.
    pub max_recipients: u32,
}

impl BankSettings {
    /// Checks the bank for a cluster of `nodes`; `timeouts` are the protocol's `(name, ms)`
    /// timeouts, each of which must be positive.
    pub fn validate(&self, nodes: u32, timeouts: &[(&str, u64)]) -> Result<(), FieldError> {
        let err = |f: &str, r: String| Err(FieldError::new(f, r));
        if nodes < 3 {
            return err(
                "nodes",
                format!(
                    "atomic commit needs a coordinator and at least 2 participants, so at least 3 nodes (got {nodes})"
                ),
            );
        }
        if self.accounts < 2 {
            return err("accounts", "a transfer needs at least 2 accounts".into());
        }
        // Bounds that keep work and sums finite: every transfer looks at every account, and
        // the total money (accounts x balance) must fit in an i64 with room for transfers.
        if self.accounts > MAX_ACCOUNTS {
            return err(
                "accounts",
                format!("{} is more than {MAX_ACCOUNTS}", self.accounts),
            );
        }
        if !(0..=MAX_MONEY).contains(&self.initial_balance) {
            return err(
                "initial_balance",
                format!("{} is not between 0 and {MAX_MONEY}", self.initial_balance),
            );
        }
        if !(1..=MAX_MONEY).contains(&self.max_amount) {
            return err(
                "max_amount",
                format!("{} is not between 1 and {MAX_MONEY}", self.max_amount),
            );
        }
        if self.max_recipients < 1 || self.max_recipients >= self.accounts {
            return err(
                "max_recipients",
                format!(
                    "must be between 1 and accounts - 1 = {} (got {})",
                    self.accounts - 1,
                    self.max_recipients
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
}

/// Adds the last few transactions to a view: the volatile state `live` describes where it has
/// something to say, otherwise the state the durable log shows.
pub fn view_transactions(
    mut view: simlab_sim::NodeView,
    log: &CommitLog,
    live: impl Fn(TxId) -> Option<String>,
) -> simlab_sim::NodeView {
    view = view.field("log", format!("{} transactions", log.txs().len()));
    for (tx, record) in log.txs().iter().rev().take(4) {
        view = view.field(
            tx.to_string(),
            live(*tx).unwrap_or_else(|| tx_state(record).to_string()),
        );
    }
    view
}

/// Forces a decision to the durable log (unless one is there already), with the participants
/// and, for an abort, its cause.
pub fn force_decision<P: simlab_sim::Node<Durable = CommitLog>>(
    ctx: &mut simlab_sim::Ctx<'_, P>,
    tx: TxId,
    participants: Vec<NodeId>,
    decision: Decision,
    cause: Option<AbortCause>,
) {
    if ctx.durable().decision(tx).is_none() {
        let now = ctx.now();
        let record = ctx.durable_mut().record_mut(tx);
        record.participants = participants;
        record.decision = Some((decision, now));
        record.abort_cause = cause;
    }
}

/// The vote to send when asked again about a transaction already on record: the vote given,
/// but no once the transaction is known to have aborted (a coordinator that forgot it and
/// starts over must not be able to commit it).
pub fn repeat_vote(record: &TxRecord) -> Vote {
    match (record.decision, record.vote) {
        (Some((Decision::Abort, _)), _) | (_, None) => Vote::No,
        (_, Some((vote, _))) => vote,
    }
}

/// What the client hears for a decision.
pub fn response(decision: Decision) -> TxResponse {
    match decision {
        Decision::Commit => TxResponse::Committed,
        Decision::Abort => TxResponse::Aborted,
    }
}

/// Sets up a participant's balances at its very first boot.
pub fn initialize(log: &mut CommitLog, bank: &Bank, me: NodeId) {
    if !log.initialized {
        log.initialized = true;
        for account in bank.accounts_of(me) {
            log.balances.insert(account, bank.initial_balance);
        }
    }
}

/// Atomic commit's figures: commits, and how long participants stayed uncertain (holding
/// locks), per transaction and participant; `timeout` separates real blocking from latency.
pub fn report<P: simlab_sim::Node<Durable = CommitLog>>(
    sim: &simlab_sim::Simulation<P>,
    timeout: Time,
) -> Vec<crate::protocol::ReportItem> {
    use crate::protocol::ReportItem;
    use serde_json::json;
    let world = sim.world();
    let logs = (0..world.cluster_size()).map(|i| (NodeId(i), world.durable(NodeId(i))));
    let blocking = Blocking::measure(logs, sim.now());
    let committed = world
        .durable(COORDINATOR)
        .txs()
        .values()
        .filter(|r| matches!(r.decision, Some((Decision::Commit, _))))
        .count();
    let blocked = blocking.blocked_longer_than(timeout);
    let still: Vec<String> = blocking
        .still_blocked
        .iter()
        .map(|(tx, n)| format!("{tx} at {n}"))
        .collect();
    let spans: Vec<serde_json::Value> = blocking
        .spans
        .iter()
        .map(|(tx, node, t)| json!({"tx": tx.to_string(), "node": node.0, "uncertain_us": t.as_micros()}))
        .collect();
    let still_text = match still.len() {
        0 => "none".to_string(),
        n if n <= 4 => still.join(", "),
        n => format!("{} (and {} more)", still[..4].join(", "), n - 4),
    };
    vec![
        ReportItem::count("committed", "transactions committed", committed as u64),
        ReportItem::new(
            "uncertain_total_us",
            "uncertain, in total",
            blocking.total().to_string(),
            json!(blocking.total().as_micros()),
        ),
        ReportItem::new(
            "uncertain_longest_us",
            "uncertain, longest",
            blocking.max().to_string(),
            json!(blocking.max().as_micros()),
        ),
        ReportItem::new(
            "uncertain_past_timeout",
            "uncertain past timeout",
            format!("{blocked} of {} yes votes", blocking.spans.len()),
            json!(blocked),
        ),
        ReportItem::new(
            "still_blocked",
            "still blocked at end",
            still_text,
            json!(still),
        ),
        ReportItem::new(
            "uncertain_spans",
            "uncertain spans",
            String::new(),
            json!(spans),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_settings_that_would_run_away_are_refused() {
        let ok = BankSettings {
            accounts: 8,
            initial_balance: 100,
            max_amount: 30,
            max_recipients: 1,
        };
        assert_eq!(ok.validate(4, &[("t_ms", 1)]), Ok(()));
        let field = |s: BankSettings| s.validate(4, &[]).unwrap_err().field;
        let huge = BankSettings {
            accounts: u32::MAX,
            max_recipients: u32::MAX - 1,
            ..ok
        };
        assert_eq!(field(huge), "accounts");
        let rich = BankSettings {
            initial_balance: i64::MAX,
            ..ok
        };
        assert_eq!(field(rich), "initial_balance");
        let generous = BankSettings {
            max_amount: i64::MAX,
            ..ok
        };
        assert_eq!(field(generous), "max_amount");
        assert_eq!(ok.validate(4, &[("t_ms", 0)]).unwrap_err().field, "t_ms");
        assert_eq!(ok.validate(2, &[]).unwrap_err().field, "nodes");
    }

    #[test]
    fn accounts_are_sharded_over_participants() {
        let bank = Bank {
            nodes: 4,
            accounts: 7,
            initial_balance: 100,
        };
        assert_eq!(bank.home(0), NodeId(1));
        assert_eq!(bank.home(4), NodeId(2));
        assert_eq!(bank.accounts_of(NodeId(3)).collect::<Vec<_>>(), vec![2, 5]);
        let parts = bank.split(&Transfer {
            from: 0,
            to: vec![3],
            amount: 5,
        });
        assert_eq!(parts, vec![(NodeId(1), vec![(0, -5), (3, 5)])]);
        let parts = bank.split(&Transfer {
            from: 1,
            to: vec![0],
            amount: 5,
        });
        assert_eq!(
            parts,
            vec![(NodeId(1), vec![(0, 5)]), (NodeId(2), vec![(1, -5)])]
        );
        // A payout to three accounts debits three times the amount and touches every holder.
        let parts = bank.split(&Transfer {
            from: 1,
            to: vec![0, 2, 6],
            amount: 4,
        });
        assert_eq!(
            parts,
            vec![
                (NodeId(1), vec![(0, 4), (6, 4)]),
                (NodeId(2), vec![(1, -12)]),
                (NodeId(3), vec![(2, 4)]),
            ]
        );
    }

    #[test]
    fn workload_draws_distinct_recipients_other_than_the_payer() {
        let mut workload = TransferWorkload {
            accounts: 5,
            max_amount: 9,
            max_recipients: 4,
        };
        let mut rng = simlab_sim::rng::stream(1, simlab_sim::rng::Stream::Workload(0));
        let mut widths = [0; 5];
        for seq in 0..400 {
            let t = workload.next_request(ClientId(0), seq, &mut rng);
            assert!(!t.to.contains(&t.from));
            assert!(
                t.to.windows(2).all(|w| w[0] < w[1]),
                "sorted and distinct: {:?}",
                t.to
            );
            assert!((1..=9).contains(&t.amount));
            widths[t.to.len()] += 1;
        }
        assert_eq!(widths[0], 0);
        assert!(
            widths[1..].iter().all(|&w| w > 50),
            "every width from 1 to 4 occurs: {widths:?}"
        );
    }

    #[test]
    fn prepare_needs_free_accounts_and_money() {
        let mut log = CommitLog::default();
        initialize(
            &mut log,
            &Bank {
                nodes: 2,
                accounts: 2,
                initial_balance: 10,
            },
            NodeId(1),
        );
        let tx = TxId { client: 0, seq: 0 };
        let other = TxId { client: 1, seq: 0 };
        let mut locks = Locks::new();
        assert!(can_prepare(&log, &locks, tx, &[(0, -10), (1, 10)]));
        assert!(!can_prepare(&log, &locks, tx, &[(0, -11)]), "overdraft");
        locks.insert(0, other);
        assert!(
            !can_prepare(&log, &locks, tx, &[(0, -1)]),
            "locked by another"
        );
        assert!(can_prepare(&log, &locks, other, &[(0, -1)]), "its own lock");
    }

    #[test]
    fn decisions_apply_once() {
        let mut log = CommitLog::default();
        let tx = TxId { client: 0, seq: 0 };
        log.insert(
            tx,
            TxRecord {
                ops: vec![(3, 7)],
                ..TxRecord::default()
            },
        );
        assert!(apply_decision(&mut log, tx, Decision::Commit, Time::ZERO));
        assert!(!apply_decision(&mut log, tx, Decision::Commit, Time::ZERO));
        assert!(!apply_decision(&mut log, tx, Decision::Abort, Time::ZERO));
        assert_eq!(log.balances()[&3], 7);
        assert_eq!(log.journal(), &[tx, tx]);
        assert_eq!(log.decision(tx), Some(Decision::Commit));
    }
}
