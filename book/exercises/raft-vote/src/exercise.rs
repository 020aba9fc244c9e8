use crate::{Request, Voter};

// ANCHOR: exercise
/// Whether `voter` grants its vote for `request` (§5.2 and §5.4.1 of the Raft paper).
pub fn should_grant_vote(voter: &Voter, request: &Request) -> bool {
    let _ = (voter, request);
    todo!("grant at most one vote per term, and only to an up-to-date candidate")
}
// ANCHOR_END: exercise
