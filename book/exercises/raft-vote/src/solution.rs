use crate::{Request, Voter};

// ANCHOR: solution
/// Whether `voter` grants its vote for `request` (§5.2 and §5.4.1 of the Raft paper).
pub fn should_grant_vote(voter: &Voter, request: &Request) -> bool {
    // Only for the voter's current term: an old candidate is stale.
    let current = request.term == voter.current_term;
    // One vote per term (asking again is fine: the reply may have been lost).
    let free = voter.voted_for.is_none_or(|v| v == request.candidate);
    // The election restriction: the candidate's log must be at least as up to date, comparing
    // the last entries' terms first and the lengths only when those are equal.
    let up_to_date = request.last_log_term > voter.last_log_term
        || (request.last_log_term == voter.last_log_term
            && request.last_log_index >= voter.last_log_index);
    current && free && up_to_date
}
// ANCHOR_END: solution
