//! Raft (Ongaro and Ousterhout, *In Search of an Understandable Consensus Algorithm*, extended
//! version, 2014) replicating a key-value store.
//!
//! - **Election** (§5.2): a follower that hears no leader for a randomized timeout becomes a
//!   candidate for the next term and asks for votes; a server grants one vote per term, and only
//!   to a candidate whose log is at least as up to date as its own (§5.4.1). Anyone who sees a
//!   higher term steps down to follower.
//! - **Replication** (§5.3): the leader appends client commands to its log and sends them with
//!   the index and term of the entry before them; a follower accepts only if it has that entry
//!   (the consistency check), otherwise the leader backs up. We back up by term (the "fast
//!   backup" of §5.3's last paragraph): the follower reports the conflicting term and its first
//!   index, so one round trip skips a whole term.
//! - **Commit** (§5.3, §5.4.2, Figure 8): an entry is committed once the leader has it on a
//!   majority *and it is from the leader's current term*; earlier entries are committed
//!   indirectly. Counting replicas of an older entry is not enough: Figure 8 shows such an entry
//!   being overwritten. Each new leader appends a no-op so its term gets an entry to commit.
//! - **Persistence** (Figure 2): `currentTerm`, `votedFor` and the log are written to the durable
//!   store before the server answers; everything else is rebuilt after a restart.
//! - **Clients** (§8): every command carries its client's id and sequence number; the state
//!   machine remembers the last one applied per client, so a retried command takes effect once.
//!   Reads go through the log too, so they are linearizable without leases.
//! - **PreVote and CheckQuorum** (Ongaro's thesis §9.6, §6.2; off by default): a server first
//!   asks whether it *could* win before bumping its term, and a leader that cannot hear a
//!   majority steps down. Together they stop a rejoining, partitioned server from forcing an
//!   election with its inflated term.
//!
//! Invariants (Figure 3): Election Safety, Log Matching, Leader Completeness, State Machine
//! Safety, Leader Append-Only; the client history must be linearizable; once faults end a leader
//! exists and every live server applies what was committed.

pub mod invariants;
pub mod log;
pub mod rules;

use simlab_sim::FieldError;
use crate::kv::{self, KvOp, KvRequest, KvResponse, KvWorkload};
use crate::protocol::{Protocol, ReportItem, Setup};
use crate::raft::log::{Entry, KvState, RaftDurable, Snapshot};
use serde::{Deserialize, Serialize};
use simlab_sim::linearizability::Op;
use simlab_sim::linearizability::models::{KvInput, KvOutput};
use simlab_sim::{
    ClientId, Ctx, Invariant, Node, NodeId, NodeView, ReplyTo, ResponseClass, Simulation, Time,
    TimerId, Workload,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Deliberate mistakes, for teaching and to prove the checkers catch them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RaftBug {
    /// Grant votes without checking that the candidate's log is at least as up to date.
    SkipUpToDateCheck,
    /// Commit an entry from an earlier term as soon as a majority holds it (Figure 8).
    CommitPreviousTerm,
    /// Keep `votedFor` in memory only: after a restart a server may vote twice in one term.
    ForgetVotedFor,
    /// A leader that sees a higher term adopts it but stays leader.
    NoStepDown,
    /// Apply a retried client command again instead of answering from the session table.
    ApplyRetryTwice,
    /// Snapshot the whole log, uncommitted entries included, as if it had been applied.
    SnapshotPastApplied,
    /// On installing a snapshot, keep the log's entries after it even when they conflict.
    KeepConflictingSuffix,
}

/// Raft's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftConfig {
    /// Election timeout, drawn uniformly from this range at every reset (milliseconds).
    pub election_timeout_ms: (u64, u64),
    /// How often a leader sends heartbeats (milliseconds).
    pub heartbeat_ms: u64,
    /// Ask for pre-votes before starting an election.
    pub prevote: bool,
    /// A leader steps down when it has not heard from a majority for an election timeout;
    /// followers ignore vote requests while they hear from a leader.
    pub check_quorum: bool,
    /// Back up a follower's log a term at a time (true) or an entry at a time (false).
    pub fast_backup: bool,
    /// Most entries in one AppendEntries.
    pub max_batch: usize,
    /// Keys the workload touches.
    pub keys: u32,
    /// Percent of operations that are gets.
    pub get_percent: u32,
    /// Percent that are puts.
    pub put_percent: u32,
    /// Percent that are compare-and-sets (the rest are appends).
    pub cas_percent: u32,
    /// Planted bugs to switch on.
    pub bugs: Vec<RaftBug>,
    /// Snapshot the state machine and compact the log once this many applied entries follow
    /// the last snapshot (§7); 0 never compacts.
    pub snapshot_every: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            election_timeout_ms: (150, 300),
            heartbeat_ms: 50,
            prevote: false,
            check_quorum: false,
            fast_backup: true,
            max_batch: 64,
            keys: 4,
            get_percent: 30,
            put_percent: 20,
            cas_percent: 0,
            bugs: Vec::new(),
            snapshot_every: 0,
        }
    }
}

impl RaftConfig {
    /// Checks the settings; the error names the field and the rule.
    pub fn validate(&self, nodes: u32) -> Result<(), FieldError> {
        let err = |f: &str, r: String| Err(FieldError::new(f, r));
        crate::protocol::check_leader_timing(self.election_timeout_ms, self.heartbeat_ms)?;
        if self.max_batch == 0 {
            return err("max_batch", "must be at least 1".into());
        }
        self.workload().validate()?;
        if nodes == 0 {
            return err("nodes", "Raft needs at least 1 node".into());
        }
        Ok(())
    }

    /// The clients' key-value workload.
    pub fn workload(&self) -> KvWorkload {
        KvWorkload::new(
            self.keys,
            self.get_percent,
            self.put_percent,
            self.cas_percent,
        )
    }

    fn has(&self, bug: RaftBug) -> bool {
        self.bugs.contains(&bug)
    }
}

/// What a log entry asks the state machine to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Command {
    /// A new leader's first entry, so its term has something to commit.
    Noop,
    /// A client's operation, with its session position.
    Client {
        /// The client.
        client: u32,
        /// Its sequence number.
        seq: u64,
        /// The operation.
        op: KvOp,
    },
}

/// Messages (Figure 2, plus the pre-vote flag and fast-backup hints).
#[derive(Clone, Debug, Serialize)]
pub enum Msg {
    /// Candidate → all: vote for me (or, as a pre-vote, would you?).
    RequestVote {
        /// The term asked for.
        term: u64,
        /// Index of the candidate's last entry.
        last_log_index: u64,
        /// Term of the candidate's last entry.
        last_log_term: u64,
        /// A pre-vote: nobody changes term or vote.
        prevote: bool,
    },
    /// The answer.
    Vote {
        /// The voter's term (for a pre-vote: the term asked for, if granted).
        term: u64,
        /// Whether the vote was granted.
        granted: bool,
        /// Whether it answers a pre-vote.
        prevote: bool,
    },
    /// Leader → follower: entries after `prev_log_index`, or a heartbeat.
    AppendEntries {
        /// The leader's term.
        term: u64,
        /// The entry before the new ones.
        prev_log_index: u64,
        /// Its term.
        prev_log_term: u64,
        /// New entries (empty for a heartbeat).
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: u64,
    },
    /// The answer.
    AppendReply {
        /// The follower's term.
        term: u64,
        /// Whether the entries were accepted.
        success: bool,
        /// On success: the index of the last entry now known to match.
        match_index: u64,
        /// On failure: where the leader should try next (fast backup).
        conflict_index: u64,
        /// On failure: the term of the conflicting entry, if there was one.
        conflict_term: Option<u64>,
    },
    /// Leader → a follower that needs entries the leader has compacted: its snapshot, whole
    /// (§7). Answered with an `AppendReply` whose `match_index` is the snapshot's last index.
    InstallSnapshot {
        /// The leader's term.
        term: u64,
        /// The snapshot.
        snapshot: Arc<Snapshot>,
    },
}

/// Timers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// No leader heard from: start an election.
    Election,
    /// Leader: send heartbeats.
    Heartbeat,
    /// Leader with CheckQuorum: have a majority answered lately?
    CheckQuorum,
    /// Enough entries applied since the last snapshot: take one (a step after applying, as a
    /// service hands its snapshot to Raft).
    Snapshot,
}

/// A server's role.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Asking for pre-votes.
    PreCandidate,
    /// Asking for votes.
    Candidate,
    /// Leads its term.
    Leader,
}

/// One Raft server with its key-value state machine.
#[derive(Clone, Debug)]
pub struct Raft {
    id: NodeId,
    nodes: u32,
    config: Arc<RaftConfig>,
    role: Role,
    leader: Option<NodeId>,
    commit_index: u64,
    last_applied: u64,
    state: KvState,
    votes: BTreeSet<NodeId>,
    next_index: Vec<u64>,
    match_index: Vec<u64>,
    election_timer: Option<TimerId>,
    heartbeat_timer: Option<TimerId>,
    /// Client requests waiting for their entry to apply, by log index.
    pending: BTreeMap<u64, ReplyTo>,
    /// When a leader was last heard from (pre-vote and CheckQuorum leases).
    last_leader_contact: Option<Time>,
    /// Leader with CheckQuorum: who answered since the last check.
    heard_from: BTreeSet<NodeId>,
    /// [`RaftBug::ForgetVotedFor`]: the vote kept in memory only.
    volatile_vote: Option<(u64, NodeId)>,
    /// A snapshot timer is set.
    snapshot_due: bool,
    /// Leader: per follower, the last index of the snapshot last sent to it, and when.
    snapshot_sent: Vec<(u64, Time)>,
    /// Rules a learner wrote, run instead of the server's own.
    rules: rules::Rules,
}

impl Raft {
    /// A server as it boots (or restarts: only the durable store carries over).
    pub fn new(id: NodeId, nodes: u32, config: Arc<RaftConfig>) -> Raft {
        Raft {
            id,
            nodes,
            config,
            role: Role::Follower,
            leader: None,
            commit_index: 0,
            last_applied: 0,
            state: KvState::default(),
            votes: BTreeSet::new(),
            next_index: vec![1; nodes as usize],
            match_index: vec![0; nodes as usize],
            election_timer: None,
            heartbeat_timer: None,
            pending: BTreeMap::new(),
            last_leader_contact: None,
            heard_from: BTreeSet::new(),
            volatile_vote: None,
            snapshot_due: false,
            snapshot_sent: vec![(0, Time::ZERO); nodes as usize],
            rules: rules::Rules::default(),
        }
    }

    /// This server running the learner's rules where `rules` has them.
    pub fn with_rules(mut self, rules: rules::Rules) -> Raft {
        self.rules = rules;
        self
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The leader this server knows of (itself when it leads).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The commit index now.
    pub fn commit_index(&self) -> u64 {
        self.commit_index
    }

    /// How far the state machine has applied.
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// The key-value state.
    pub fn kv(&self) -> &BTreeMap<String, String> {
        &self.state.kv
    }

    fn majority(&self) -> usize {
        self.nodes as usize / 2 + 1
    }

    fn reset_election_timer(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        let (lo, hi) = self.config.election_timeout_ms;
        let after = Time::from_micros(ctx.random_between(lo * 1_000, hi * 1_000));
        self.election_timer = Some(ctx.set_timer(after, Timer::Election));
    }

    fn voted_for(&self, ctx: &Ctx<'_, Self>) -> Option<NodeId> {
        if self.config.has(RaftBug::ForgetVotedFor) {
            let term = ctx.durable().current_term;
            self.volatile_vote
                .filter(|(t, _)| *t == term)
                .map(|(_, n)| n)
        } else {
            ctx.durable().voted_for
        }
    }

    fn record_vote(&mut self, candidate: NodeId, ctx: &mut Ctx<'_, Self>) {
        if self.config.has(RaftBug::ForgetVotedFor) {
            self.volatile_vote = Some((ctx.durable().current_term, candidate));
        } else {
            ctx.durable_mut().voted_for = Some(candidate);
        }
    }

    /// Adopts a higher term: forget the vote and follow.
    fn step_down(&mut self, term: u64, ctx: &mut Ctx<'_, Self>) {
        let durable = ctx.durable_mut();
        durable.current_term = term;
        durable.voted_for = None;
        if self.role == Role::Leader && self.config.has(RaftBug::NoStepDown) {
            ctx.note_with(|| format!("saw term {term} but stays leader (bug)"));
            return;
        }
        self.become_follower(None, ctx);
    }

    fn become_follower(&mut self, leader: Option<NodeId>, ctx: &mut Ctx<'_, Self>) {
        if self.role == Role::Leader {
            ctx.note("steps down");
            if let Some(t) = self.heartbeat_timer.take() {
                ctx.cancel_timer(t);
            }
            // Pending requests may still commit under the next leader, so say nothing: the
            // clients time out and retry, and their sessions keep the retry from applying twice.
            self.pending.clear();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        // Figure 2 restarts the election timeout only on hearing from the current leader,
        // granting a vote, or standing. A higher term alone (a refused candidate's request, a
        // stale reply) must not restart it: otherwise candidates with stale logs, which keep
        // raising the term, keep silencing the one server whose log could win.
        if leader.is_some() || self.election_timer.is_none() {
            self.reset_election_timer(ctx);
        }
    }

    fn last_log(&self, ctx: &Ctx<'_, Self>) -> (u64, u64) {
        let log = &ctx.durable().log;
        (log.last_index(), log.last_term())
    }

    fn on_election_timeout(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.election_timer = None;
        if self.role == Role::Leader {
            return;
        }
        if self.config.prevote {
            self.role = Role::PreCandidate;
            self.votes = BTreeSet::from([self.id]);
            let term = ctx.durable().current_term + 1;
            let (last_log_index, last_log_term) = self.last_log(ctx);
            ctx.note_with(|| format!("pre-vote for term {term}"));
            ctx.broadcast(Msg::RequestVote {
                term,
                last_log_index,
                last_log_term,
                prevote: true,
            });
            self.reset_election_timer(ctx);
            self.maybe_win(ctx);
        } else {
            self.start_election(ctx);
        }
    }

    fn start_election(&mut self, ctx: &mut Ctx<'_, Self>) {
        let term = ctx.durable().current_term + 1;
        ctx.durable_mut().current_term = term;
        ctx.durable_mut().voted_for = None;
        self.record_vote(self.id, ctx);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = BTreeSet::from([self.id]);
        let (last_log_index, last_log_term) = self.last_log(ctx);
        ctx.note_with(|| format!("election for term {term}"));
        ctx.broadcast(Msg::RequestVote {
            term,
            last_log_index,
            last_log_term,
            prevote: false,
        });
        self.reset_election_timer(ctx);
        self.maybe_win(ctx);
    }

    fn maybe_win(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.votes.len() < self.majority() {
            return;
        }
        match self.role {
            Role::PreCandidate => self.start_election(ctx),
            Role::Candidate => self.become_leader(ctx),
            _ => {}
        }
    }

    fn become_leader(&mut self, ctx: &mut Ctx<'_, Self>) {
        let term = ctx.durable().current_term;
        ctx.note_with(|| format!("becomes leader of term {term}"));
        self.role = Role::Leader;
        self.leader = Some(self.id);
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        // A no-op of our own term: committing it commits everything before it (§8).
        let index = ctx.durable_mut().log.push(Entry::new(term, Command::Noop));
        self.next_index = vec![index; self.nodes as usize];
        self.match_index = vec![0; self.nodes as usize];
        self.snapshot_sent = vec![(0, Time::ZERO); self.nodes as usize];
        self.match_index[self.id.index()] = index;
        self.broadcast_append(ctx);
        self.heartbeat_timer = Some(ctx.set_timer(
            Time::from_millis(self.config.heartbeat_ms),
            Timer::Heartbeat,
        ));
        if self.config.check_quorum {
            self.heard_from.clear();
            ctx.set_timer(
                Time::from_millis(self.config.election_timeout_ms.1),
                Timer::CheckQuorum,
            );
        }
        self.advance_commit(ctx);
    }

    fn broadcast_append(&mut self, ctx: &mut Ctx<'_, Self>) {
        for peer in ctx.peers().collect::<Vec<_>>() {
            self.send_append(peer, ctx);
        }
    }

    fn send_append(&mut self, peer: NodeId, ctx: &mut Ctx<'_, Self>) {
        let log = &ctx.durable().log;
        let next = self.next_index[peer.index()].clamp(1, log.last_index() + 1);
        if next <= log.snapshot_index() {
            // What this follower needs next is compacted: send the snapshot instead (§7).
            let snapshot = ctx.durable().snapshot.clone();
            let snapshot = snapshot.expect("a compacted log has a snapshot");
            self.next_index[peer.index()] = snapshot.last_index + 1;
            // Every rejection of a pipelined AppendEntries would send it again: send it once,
            // and again only if no answer came within the shortest election timeout.
            let (sent, at) = self.snapshot_sent[peer.index()];
            let patience = Time::from_millis(self.config.election_timeout_ms.0);
            if sent == snapshot.last_index && ctx.now() < at + patience {
                return;
            }
            self.snapshot_sent[peer.index()] = (snapshot.last_index, ctx.now());
            let term = ctx.durable().current_term;
            ctx.send(peer, Msg::InstallSnapshot { term, snapshot });
            return;
        }
        let prev_log_index = next - 1;
        let entries = log.slice(next, self.config.max_batch);
        // Pipelining: assume these arrive, so the next message carries only newer entries. A
        // lost message shows up as a rejection, which backs next_index up again.
        self.next_index[peer.index()] = next + entries.len() as u64;
        let msg = Msg::AppendEntries {
            term: ctx.durable().current_term,
            prev_log_index,
            prev_log_term: log.term_at(prev_log_index),
            entries,
            leader_commit: self.commit_index,
        };
        ctx.send(peer, msg);
    }

    fn on_request_vote(
        &mut self,
        from: NodeId,
        term: u64,
        last: (u64, u64),
        prevote: bool,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let current = ctx.durable().current_term;
        let (my_index, my_term) = self.last_log(ctx);
        let up_to_date = self.config.has(RaftBug::SkipUpToDateCheck)
            || last.1 > my_term
            || (last.1 == my_term && last.0 >= my_index);
        let (lo, _) = self.config.election_timeout_ms;
        // Within a leader's lease (it was heard from less than an election timeout ago, or we
        // lead ourselves), a vote request is a disruption, not a sign of a dead leader.
        let leader_lease = self.role == Role::Leader
            || (self.leader.is_some()
                && self
                    .last_leader_contact
                    .is_some_and(|t| ctx.now() < t + Time::from_millis(lo)));
        // Why a vote is refused, for the trace (the TUI's detail pane).
        let log_behind = || {
            format!(
                "its log ends at {}@t{}, mine at {my_index}@t{my_term}: not as up to date",
                last.0, last.1
            )
        };
        if prevote {
            // Would I vote for you? Only if you are ahead of me, and I have no live leader.
            let granted = term > current && up_to_date && !leader_lease;
            if !granted {
                ctx.note_with(|| {
                    let why = if term <= current {
                        format!("term {term} is not above mine ({current})")
                    } else if !up_to_date {
                        log_behind()
                    } else {
                        "I hear from a live leader".to_string()
                    };
                    format!("refuses {from}'s pre-vote for term {term}: {why}")
                });
            }
            let reply_term = if granted { term } else { current };
            ctx.send(
                from,
                Msg::Vote {
                    term: reply_term,
                    granted,
                    prevote: true,
                },
            );
            return;
        }
        if self.config.check_quorum && leader_lease && term > current {
            ctx.note_with(|| format!("ignores {from}'s vote request: a leader is alive"));
            return;
        }
        // The RequestVote rule (the learner's, or the reference one). With the planted bug
        // SkipUpToDateCheck the server shows the rule an empty log of its own, so every
        // candidate is up to date.
        let skip_log_check = self.config.has(RaftBug::SkipUpToDateCheck);
        let mut state = rules::VoterState {
            current_term: current,
            voted_for: self.voted_for(ctx).map(|n| n.0),
            last_log_index: if skip_log_check { 0 } else { my_index },
            last_log_term: if skip_log_check { 0 } else { my_term },
        };
        let request = rules::VoteRequest {
            candidate: from.0,
            term,
            last_log_index: last.0,
            last_log_term: last.1,
        };
        let reply = (self.rules.request_vote)(&mut state, &request);
        // Persist what the rule decided: the term first, then the vote (written again when
        // granted, even unchanged), before the reply leaves.
        if state.current_term > current {
            self.step_down(state.current_term, ctx);
        }
        let rewrite = reply.granted && state.voted_for.is_some();
        if rewrite || state.voted_for.map(NodeId) != self.voted_for(ctx) {
            match state.voted_for {
                Some(v) => self.record_vote(NodeId(v), ctx),
                None => ctx.durable_mut().voted_for = None,
            }
        }
        if reply.reset_election_timer {
            self.reset_election_timer(ctx);
        }
        let granted = reply.granted;
        if granted {
            ctx.note_with(|| format!("votes for {from} in term {term}"));
        } else {
            let now_term = state.current_term;
            let voted = state.voted_for.filter(|&v| v != from.0);
            ctx.note_with(|| {
                let why = if term < now_term {
                    format!("term {term} is behind mine ({now_term})")
                } else if let Some(v) = voted {
                    format!("already voted for n{v} in term {now_term}")
                } else if !up_to_date {
                    log_behind()
                } else {
                    "the vote rule refused it".to_string()
                };
                format!("refuses {from}'s vote for term {term}: {why}")
            });
        }
        ctx.send(
            from,
            Msg::Vote {
                term: reply.term,
                granted,
                prevote: false,
            },
        );
    }

    fn on_vote(
        &mut self,
        from: NodeId,
        term: u64,
        granted: bool,
        prevote: bool,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let current = ctx.durable().current_term;
        if term > current && !(prevote && granted) {
            self.step_down(term, ctx);
            return;
        }
        let expected = match (prevote, self.role) {
            (true, Role::PreCandidate) => term == current + 1,
            (false, Role::Candidate) => term == current,
            _ => false,
        };
        if expected && granted {
            self.votes.insert(from);
            self.maybe_win(ctx);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_append(
        &mut self,
        from: NodeId,
        term: u64,
        mut prev_log_index: u64,
        mut prev_log_term: u64,
        mut entries: Vec<Entry>,
        leader_commit: u64,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let current = ctx.durable().current_term;
        let reject = |ctx: &mut Ctx<'_, Self>, term, conflict_index, conflict_term| {
            ctx.send(
                from,
                Msg::AppendReply {
                    term,
                    success: false,
                    match_index: 0,
                    conflict_index,
                    conflict_term,
                },
            );
        };
        if term < current {
            reject(ctx, current, 0, None);
            return;
        }
        if term > current {
            self.step_down(term, ctx);
        }
        if self.role == Role::Leader {
            // Only reachable with NoStepDown: two leaders in one term.
            return;
        }
        self.last_leader_contact = Some(ctx.now());
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(Some(from), ctx);
        } else {
            self.reset_election_timer(ctx);
        }
        let log = &ctx.durable().log;
        let snapshot_index = log.snapshot_index();
        if prev_log_index < snapshot_index {
            // The first entries are already in our snapshot, which holds only committed
            // entries, identical on every server: start after it.
            let covered = (snapshot_index - prev_log_index).min(entries.len() as u64);
            entries.drain(..covered as usize);
            prev_log_index = snapshot_index;
            prev_log_term = log.snapshot_term();
        }
        // The consistency check (§5.3), and where a follower tells the leader to back up to.
        let mismatch = if prev_log_index > log.last_index() {
            Some((log.last_index() + 1, None))
        } else if log.term_at(prev_log_index) != prev_log_term {
            let conflict = log.term_at(prev_log_index);
            let first = log.first_index_of_term(conflict).unwrap_or(prev_log_index);
            Some(if self.config.fast_backup {
                (first, Some(conflict))
            } else {
                (prev_log_index, None)
            })
        } else {
            None
        };
        // The rule (the learner's, or the reference one) decides; the hint is the server's own
        // where it agrees.
        let refuse = (!(self.rules.log_matches)(log, prev_log_index, prev_log_term))
            .then(|| mismatch.unwrap_or((prev_log_index, None)));
        if let Some((conflict_index, conflict_term)) = refuse {
            reject(ctx, term, conflict_index, conflict_term);
            return;
        }
        // Append what is new; truncate only on a real conflict (a stale or duplicated message
        // must not cut entries that a later message added).
        let mut index = prev_log_index;
        for entry in entries {
            index += 1;
            let log = &ctx.durable().log;
            if index <= log.last_index() {
                if log.term_at(index) == entry.term {
                    continue;
                }
                ctx.durable_mut().log.truncate_from(index);
            }
            ctx.durable_mut().log.push(entry);
        }
        if leader_commit > self.commit_index {
            self.commit_index = leader_commit.min(index);
            self.apply(ctx);
        }
        ctx.send(
            from,
            Msg::AppendReply {
                term,
                success: true,
                match_index: index,
                conflict_index: 0,
                conflict_term: None,
            },
        );
    }

    fn on_append_reply(
        &mut self,
        from: NodeId,
        reply: (u64, bool, u64, u64, Option<u64>),
        ctx: &mut Ctx<'_, Self>,
    ) {
        let (term, success, match_index, conflict_index, conflict_term) = reply;
        let current = ctx.durable().current_term;
        if term > current {
            self.step_down(term, ctx);
            return;
        }
        if self.role != Role::Leader || term != current {
            return;
        }
        self.heard_from.insert(from);
        let peer = from.index();
        if success {
            if match_index > self.match_index[peer] {
                self.match_index[peer] = match_index;
            }
            self.next_index[peer] = self.next_index[peer].max(self.match_index[peer] + 1);
            self.advance_commit(ctx);
            if self.next_index[peer] <= ctx.durable().log.last_index() {
                self.send_append(from, ctx);
            }
            return;
        }
        if conflict_index == 0 {
            return; // Rejected for its term, which we have already handled.
        }
        let log = &ctx.durable().log;
        let next = match conflict_term.and_then(|t| log.last_index_of_term(t)) {
            Some(last_of_term) => last_of_term + 1,
            None => conflict_index,
        };
        self.next_index[peer] = next.clamp(self.match_index[peer] + 1, log.last_index() + 1);
        self.send_append(from, ctx);
    }

    fn on_install_snapshot(
        &mut self,
        from: NodeId,
        term: u64,
        snapshot: Arc<Snapshot>,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let current = ctx.durable().current_term;
        let reply = |ctx: &mut Ctx<'_, Self>, term, success, match_index| {
            ctx.send(
                from,
                Msg::AppendReply {
                    term,
                    success,
                    match_index,
                    conflict_index: 0,
                    conflict_term: None,
                },
            );
        };
        if term < current {
            reply(ctx, current, false, 0);
            return;
        }
        if term > current {
            self.step_down(term, ctx);
        }
        if self.role == Role::Leader {
            return; // Only reachable with NoStepDown.
        }
        self.last_leader_contact = Some(ctx.now());
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(Some(from), ctx);
        } else {
            self.reset_election_timer(ctx);
        }
        let index = snapshot.last_index;
        // A duplicate or a stale snapshot covers only what is already committed here (and so
        // identical to it): acknowledge it and change nothing.
        if index > self.commit_index {
            ctx.note_with(|| format!(
                "installs a snapshot through index {index} (term {})",
                snapshot.last_term
            ));
            let keep = self.config.has(RaftBug::KeepConflictingSuffix);
            let durable = ctx.durable_mut();
            durable.log.install(index, snapshot.last_term, keep);
            self.state = snapshot.state.clone();
            durable.snapshot = Some(snapshot);
            self.commit_index = index;
            self.last_applied = index;
        }
        reply(ctx, term, true, index);
    }

    /// Once enough entries are applied after the last snapshot, takes a new one a step later.
    fn schedule_snapshot(&mut self, ctx: &mut Ctx<'_, Self>) {
        let every = self.config.snapshot_every;
        if every == 0 || self.snapshot_due {
            return;
        }
        if self.last_applied - ctx.durable().log.snapshot_index().min(self.last_applied) >= every {
            self.snapshot_due = true;
            ctx.set_timer(Time::ZERO, Timer::Snapshot);
        }
    }

    /// Snapshots the state machine at the last applied entry and drops the log up to it.
    fn take_snapshot(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.snapshot_due = false;
        let log = &ctx.durable().log;
        let index = if self.config.has(RaftBug::SnapshotPastApplied) {
            log.last_index()
        } else {
            self.last_applied
        };
        if index <= log.snapshot_index() {
            return;
        }
        let term = log.term_at(index);
        let snapshot = Arc::new(Snapshot {
            last_index: index,
            last_term: term,
            state: self.state.clone(),
        });
        ctx.note_with(|| format!("snapshot through index {index} (term {term})"));
        let durable = ctx.durable_mut();
        durable.log.compact_to(index, term);
        durable.snapshot = Some(snapshot);
        // Only with the bug: entries never applied are now behind the snapshot.
        self.commit_index = self.commit_index.max(index);
        self.last_applied = self.last_applied.max(index);
    }

    fn advance_commit(&mut self, ctx: &mut Ctx<'_, Self>) {
        let log = &ctx.durable().log;
        let term = ctx.durable().current_term;
        let mut index = log.last_index();
        while index > self.commit_index {
            // Figure 8: only an entry of the current term is committed by counting replicas.
            let replicas = self.match_index.iter().filter(|&&m| m >= index).count();
            // The commit rule (the learner's, or the reference one). The planted bug
            // CommitPreviousTerm shows it every entry as one of the current term.
            let entry_term = if self.config.has(RaftBug::CommitPreviousTerm) {
                term
            } else {
                log.term_at(index)
            };
            let commit = (self.rules.may_commit)(entry_term, term, replicas, self.nodes as usize);
            if commit {
                if log.term_at(index) != term {
                    let (entry_term, old) = (log.term_at(index), self.commit_index);
                    ctx.note_with(|| format!("commits index {index} of term {entry_term} by counting replicas (bug; was {old})"));
                }
                self.commit_index = index;
                break;
            }
            index -= 1;
        }
        self.apply(ctx);
    }

    fn apply(&mut self, ctx: &mut Ctx<'_, Self>) {
        while self.last_applied < self.commit_index {
            self.last_applied += 1;
            let index = self.last_applied;
            let Some(entry) = ctx.durable().log.get(index).cloned() else {
                panic!("{} applies index {index} beyond its log", self.id);
            };
            let Command::Client { client, seq, ref op } = *entry.command else {
                continue;
            };
            let apply_retries = self.config.has(RaftBug::ApplyRetryTwice);
            let Some(response) = self.state.apply(client, seq, op, apply_retries) else {
                continue;
            };
            if let Some(reply_to) = self.pending.remove(&index)
                && reply_to
                    == (ReplyTo {
                        client: ClientId(client),
                        seq,
                    })
            {
                ctx.reply(reply_to, response);
            }
        }
        // Requests whose index was overwritten by another leader's entries will never apply
        // here; their clients retry.
        let applied = self.last_applied;
        self.pending.retain(|&i, _| i > applied);
        self.schedule_snapshot(ctx);
    }

    fn on_check_quorum(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.role != Role::Leader {
            return;
        }
        if self.heard_from.len() + 1 < self.majority() {
            ctx.note("cannot hear a majority: steps down (CheckQuorum)");
            self.become_follower(None, ctx);
            return;
        }
        self.heard_from.clear();
        ctx.set_timer(
            Time::from_millis(self.config.election_timeout_ms.1),
            Timer::CheckQuorum,
        );
    }
}

impl Protocol for Raft {
    type Config = RaftConfig;
    const NAME: &'static str = "Raft";

    fn validate(config: &RaftConfig, nodes: u32) -> Result<(), FieldError> {
        config.validate(nodes)
    }
    fn min_nodes(_: &RaftConfig) -> u32 {
        1
    }
    fn clear_bugs(config: &mut RaftConfig) {
        config.bugs.clear();
    }
    fn node(setup: &Setup<RaftConfig>, id: NodeId) -> Raft {
        Raft::new(id, setup.nodes, setup.config.clone())
            .with_rules(rules::Rules::from_code(&setup.code))
    }
    fn workload(setup: &Setup<RaftConfig>) -> Option<Box<dyn Workload<KvRequest>>> {
        Some(Box::new(setup.config.workload()))
    }
    fn invariants(setup: &Setup<RaftConfig>) -> Vec<Box<dyn Invariant<Raft>>> {
        invariants::all(&setup.config)
    }
    fn report(_: &Setup<RaftConfig>, sim: &Simulation<Raft>) -> Vec<ReportItem> {
        report(sim)
    }
    fn kv_history(sim: &Simulation<Raft>) -> Option<Vec<Op<KvInput, KvOutput>>> {
        Some(kv::history(sim.history()))
    }
}

/// Raft's figures: the highest term, how far the log is committed, and what the invariants
/// watched (leaders elected, entries applied).
fn report(sim: &Simulation<Raft>) -> Vec<ReportItem> {
    let world = sim.world();
    let n = world.cluster_size();
    let highest = invariants::highest_term((0..n).map(|i| world.durable(NodeId(i))));
    let commit = world
        .live_nodes()
        .map(|(_, r)| r.commit_index())
        .max()
        .unwrap_or(0);
    let mut items = vec![
        ReportItem::count("highest_term", "highest term", highest),
        ReportItem::count("commit_index", "entries committed", commit),
    ];
    for (key, value) in sim.observations() {
        let (label, text) = match key {
            "leaders_elected" => ("leaders elected", value.to_string()),
            "entries_applied" => ("entries applied", value.to_string()),
            _ => ("", String::new()),
        };
        items.push(ReportItem::new(key, label, text, value));
    }
    items
}

impl Node for Raft {
    type Msg = Msg;
    type Timer = Timer;
    type Request = KvRequest;
    type Response = KvResponse;
    type Durable = RaftDurable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        if d.current_term > 0 || d.log.last_index() > 0 {
            let (term, len) = (d.current_term, d.log.last_index());
            ctx.note_with(|| format!("recovered term {term}, {len} log entries"));
        }
        if let Some(snapshot) = ctx.durable().snapshot.clone() {
            // Recovery starts from the snapshot; the log suffix is applied once committed.
            self.state = snapshot.state.clone();
            self.commit_index = snapshot.last_index;
            self.last_applied = snapshot.last_index;
            ctx.note_with(|| format!(
                "restores its snapshot through index {}",
                snapshot.last_index
            ));
        }
        self.reset_election_timer(ctx);
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::RequestVote {
                term,
                last_log_index,
                last_log_term,
                prevote,
            } => {
                self.on_request_vote(from, term, (last_log_index, last_log_term), prevote, ctx);
            }
            Msg::Vote {
                term,
                granted,
                prevote,
            } => self.on_vote(from, term, granted, prevote, ctx),
            Msg::AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
            } => {
                self.on_append(
                    from,
                    term,
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                    ctx,
                );
            }
            Msg::AppendReply {
                term,
                success,
                match_index,
                conflict_index,
                conflict_term,
            } => {
                self.on_append_reply(
                    from,
                    (term, success, match_index, conflict_index, conflict_term),
                    ctx,
                );
            }
            Msg::InstallSnapshot { term, snapshot } => {
                self.on_install_snapshot(from, term, snapshot, ctx);
            }
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::Election => self.on_election_timeout(ctx),
            Timer::Heartbeat => {
                self.heartbeat_timer = None;
                if self.role == Role::Leader {
                    self.broadcast_append(ctx);
                    self.heartbeat_timer = Some(ctx.set_timer(
                        Time::from_millis(self.config.heartbeat_ms),
                        Timer::Heartbeat,
                    ));
                }
            }
            Timer::CheckQuorum => self.on_check_quorum(ctx),
            Timer::Snapshot => self.take_snapshot(ctx),
        }
    }

    fn on_request(&mut self, reply_to: ReplyTo, request: KvRequest, ctx: &mut Ctx<'_, Self>) {
        if self.role != Role::Leader {
            ctx.reply(reply_to, KvResponse::NotLeader(self.leader));
            return;
        }
        let client = reply_to.client.0;
        if let Some((last, cached)) = self.state.sessions.get(&client)
            && !self.config.has(RaftBug::ApplyRetryTwice)
        {
            if *last == reply_to.seq {
                ctx.reply(reply_to, cached.clone());
                return;
            }
            if *last > reply_to.seq {
                return; // A stale retry of an operation the client has moved past.
            }
        }
        let term = ctx.durable().current_term;
        let command = Command::Client {
            client,
            seq: reply_to.seq,
            op: request.0,
        };
        let index = ctx.durable_mut().log.push(Entry::new(term, command));
        self.match_index[self.id.index()] = index;
        self.pending.insert(index, reply_to);
        self.broadcast_append(ctx);
        self.advance_commit(ctx);
    }

    fn classify(response: &KvResponse) -> ResponseClass {
        response.classify()
    }

    fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    fn leader_epoch(&self, durable: &RaftDurable) -> Option<u64> {
        (self.role == Role::Leader).then_some(durable.current_term)
    }

    fn view(&self, durable: &RaftDurable) -> NodeView {
        let role = match self.role {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        let log = &durable.log;
        let first = log.first_index();
        let tail: Vec<String> = log
            .entries()
            .iter()
            .enumerate()
            .rev()
            .take(4)
            .rev()
            .map(|(i, e)| {
                let index = first + i as u64;
                match &*e.command {
                    Command::Noop => format!("{index}:t{} noop", e.term),
                    Command::Client { op, .. } => {
                        format!("{index}:t{} {}", e.term, op.describe())
                    }
                }
            })
            .collect();
        let view = NodeView::new(role)
            .field("term", durable.current_term)
            .field(
                "vote",
                durable.voted_for.map_or("-".to_string(), |n| n.to_string()),
            )
            .field(
                "leader",
                self.leader.map_or("?".to_string(), |n| n.to_string()),
            )
            .field("log", format!("{}@t{}", log.last_index(), log.last_term()));
        let view = if log.snapshot_index() > 0 {
            view.field(
                "snapshot",
                format!("{}@t{}", log.snapshot_index(), log.snapshot_term()),
            )
            .field("first", first)
        } else {
            view
        };
        view.field("commit", self.commit_index)
            .field("applied", self.last_applied)
            .field(
                "tail",
                if tail.is_empty() {
                    "-".to_string()
                } else {
                    tail.join("  ")
                },
            )
    }
}
