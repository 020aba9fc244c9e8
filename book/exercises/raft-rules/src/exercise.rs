// Each stub is the learner's to write; its `todo!` says what it is for.
#![allow(clippy::todo)]

use simlab_protocols::raft::log::RaftLog;
use simlab_protocols::raft::rules::{VoteReply, VoteRequest, VoterState};

// ANCHOR: exercise
/// A server receives RequestVote (§5.1, §5.2, §5.4.1 of the Raft paper, and Figure 2's
/// "Rules for Servers"). Update `state` as the server must (it persists what you leave there
/// before the reply leaves) and return the reply: the term to send back, whether the vote is
/// granted, and whether to restart the election timeout.
pub fn request_vote(state: &mut VoterState, request: &VoteRequest) -> VoteReply {
    let _ = (state, request);
    todo!("the RequestVote handler")
}

/// AppendEntries' consistency check (§5.3): may a follower whose log is `log` append the
/// entries that follow `prev_log_index` in the leader's log, whose term there is
/// `prev_log_term`? (`log.last_index()`, `log.term_at(index)`; index 0 has term 0.)
pub fn log_matches(log: &RaftLog, prev_log_index: u64, prev_log_term: u64) -> bool {
    let _ = (log, prev_log_index, prev_log_term);
    todo!("the consistency check")
}

/// May a leader in `current_term` mark an entry of `entry_term` committed, now that `replicas`
/// of the `cluster` servers (itself included) hold it? (§5.4.2, Figure 8.)
pub fn may_commit(entry_term: u64, current_term: u64, replicas: usize, cluster: usize) -> bool {
    let _ = (entry_term, current_term, replicas, cluster);
    todo!("the commit rule")
}
// ANCHOR_END: exercise
