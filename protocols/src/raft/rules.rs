//! Three of Raft's rules as functions a learner may write, run inside the real servers.
//!
//! - [`REQUEST_VOTE`]: the whole RequestVote handler's decision (§5.1, §5.2, §5.4.1): adopt a
//!   newer term (forgetting the vote), grant at most one vote per term and only to a candidate
//!   whose log is at least as up to date, persist the vote, say whether to reset the election
//!   timer;
//! - [`LOG_MATCHES`]: AppendEntries' consistency check (§5.3);
//! - [`MAY_COMMIT`]: when a leader may commit an index by counting replicas (§5.4.2, Figure 8).
//!
//! The servers always run these slots: the reference functions here unless a learner fills
//! one, so a learner's function runs exactly where the server's own rule would.

use super::log::RaftLog;
use crate::learner::{LearnerCode, Slot};

// ANCHOR: types
/// What a server holds when a vote request arrives: its persistent state (which the handler
/// updates) and the end of its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoterState {
    /// Its current term. Raise it to adopt a newer term; the server persists it.
    pub current_term: u64,
    /// Whom it voted for in `current_term`. The server persists whatever the handler leaves
    /// here.
    pub voted_for: Option<u32>,
    /// Index of its last log entry (0 if the log is empty).
    pub last_log_index: u64,
    /// Term of its last log entry (0 if the log is empty).
    pub last_log_term: u64,
}

/// A vote request (RequestVote's arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoteRequest {
    /// The candidate.
    pub candidate: u32,
    /// The term it asks for.
    pub term: u64,
    /// Index of its last log entry.
    pub last_log_index: u64,
    /// Term of its last log entry.
    pub last_log_term: u64,
}

/// The handler's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoteReply {
    /// The term sent back (the voter's current term, after any adoption).
    pub term: u64,
    /// Whether the vote is granted.
    pub granted: bool,
    /// Whether the voter restarts its election timeout (it should when it grants a vote).
    pub reset_election_timer: bool,
}

/// The RequestVote handler (after pre-votes and CheckQuorum, which the server handles itself).
pub type VoteFn = fn(&mut VoterState, &VoteRequest) -> VoteReply;

/// AppendEntries' consistency check: whether `log` holds an entry at `prev_log_index` whose
/// term is `prev_log_term` (index 0, before the first entry, always matches).
pub type LogMatchFn = fn(log: &RaftLog, prev_log_index: u64, prev_log_term: u64) -> bool;

/// Whether a leader in `current_term` may commit an entry of `entry_term` that `replicas`
/// servers of a `cluster` (the leader included) hold.
pub type CommitFn = fn(entry_term: u64, current_term: u64, replicas: usize, cluster: usize) -> bool;
// ANCHOR_END: types

/// The RequestVote handler, a slot a learner may fill (`raft.request_vote`).
pub static REQUEST_VOTE: Slot<VoteFn> = Slot::new("raft.request_vote", request_vote);
/// The consistency check, a slot a learner may fill (`raft.log_matches`).
pub static LOG_MATCHES: Slot<LogMatchFn> = Slot::new("raft.log_matches", log_matches);
/// The commit rule, a slot a learner may fill (`raft.may_commit`).
pub static MAY_COMMIT: Slot<CommitFn> = Slot::new("raft.may_commit", may_commit);

/// The reference RequestVote handler.
pub fn request_vote(state: &mut VoterState, request: &VoteRequest) -> VoteReply {
    if request.term > state.current_term {
        state.current_term = request.term;
        state.voted_for = None;
    }
    let up_to_date = request.last_log_term > state.last_log_term
        || (request.last_log_term == state.last_log_term
            && request.last_log_index >= state.last_log_index);
    let free = state.voted_for.is_none_or(|v| v == request.candidate);
    let granted = request.term == state.current_term && free && up_to_date;
    if granted {
        state.voted_for = Some(request.candidate);
    }
    VoteReply {
        term: state.current_term,
        granted,
        reset_election_timer: granted,
    }
}

/// The reference consistency check.
pub fn log_matches(log: &RaftLog, prev_log_index: u64, prev_log_term: u64) -> bool {
    prev_log_index <= log.last_index() && log.term_at(prev_log_index) == prev_log_term
}

/// The reference commit rule: only an entry of the leader's own term is committed by counting
/// replicas (earlier ones are committed with it, by the Log Matching property).
pub fn may_commit(entry_term: u64, current_term: u64, replicas: usize, cluster: usize) -> bool {
    entry_term == current_term && replicas > cluster / 2
}

/// The rules a server runs: the learner's where `code` has them, the reference ones otherwise.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// The RequestVote handler.
    pub request_vote: VoteFn,
    /// The consistency check.
    pub log_matches: LogMatchFn,
    /// The commit rule.
    pub may_commit: CommitFn,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules::from_code(&LearnerCode::new())
    }
}

impl Rules {
    /// The functions `code` supplies, the reference ones for the rest.
    pub fn from_code(code: &LearnerCode) -> Rules {
        Rules {
            request_vote: REQUEST_VOTE.pick(code),
            log_matches: LOG_MATCHES.pick(code),
            may_commit: MAY_COMMIT.pick(code),
        }
    }
}
