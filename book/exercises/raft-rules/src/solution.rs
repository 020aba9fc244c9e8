use simlab_protocols::raft::log::RaftLog;
use simlab_protocols::raft::rules::{VoteReply, VoteRequest, VoterState};

// ANCHOR: solution
/// A server receives RequestVote.
pub fn request_vote(state: &mut VoterState, request: &VoteRequest) -> VoteReply {
    // A newer term: adopt it, and the vote of the old term no longer counts.
    if request.term > state.current_term {
        state.current_term = request.term;
        state.voted_for = None;
    }
    // The election restriction: the candidate's log must be at least as up to date as ours,
    // compared by the last entry's term, then by length.
    let up_to_date = request.last_log_term > state.last_log_term
        || (request.last_log_term == state.last_log_term
            && request.last_log_index >= state.last_log_index);
    // One vote per term (asking again for the same candidate gets the same answer).
    let free = state.voted_for.is_none_or(|v| v == request.candidate);
    let granted = request.term == state.current_term && free && up_to_date;
    if granted {
        state.voted_for = Some(request.candidate);
    }
    VoteReply {
        term: state.current_term,
        granted,
        // Granting a vote is hearing from a live candidate: do not stand against it now.
        reset_election_timer: granted,
    }
}

/// AppendEntries' consistency check.
pub fn log_matches(log: &RaftLog, prev_log_index: u64, prev_log_term: u64) -> bool {
    prev_log_index <= log.last_index() && log.term_at(prev_log_index) == prev_log_term
}

/// When a leader may commit by counting replicas.
pub fn may_commit(entry_term: u64, current_term: u64, replicas: usize, cluster: usize) -> bool {
    // Figure 8: an entry from an earlier term on a majority can still be overwritten by a
    // leader that never had it. Count replicas only for entries of the leader's own term; the
    // earlier ones commit with them.
    entry_term == current_term && replicas > cluster / 2
}
// ANCHOR_END: solution
