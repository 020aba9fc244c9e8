use simlab_protocols::atomic_commit::Decision;
use simlab_protocols::three_phase_commit::TxState;

// ANCHOR: solution
/// The decision of a backup coordinator that collected these states (its own included).
pub fn decide(states: &[TxState]) -> Decision {
    if states.contains(&TxState::Decided(Decision::Abort)) {
        // Someone aborted: nobody can have committed (commit needs every vote, and nobody
        // commits before everyone alive is pre-committed). Abort.
        Decision::Abort
    } else if states.contains(&TxState::Decided(Decision::Commit))
        || states.contains(&TxState::PreCommitted)
    {
        // A pre-commit means every participant voted yes: nobody can have aborted except by
        // a timeout that 3PC forbids after a yes vote. Commit.
        Decision::Commit
    } else {
        // Everyone reachable is merely uncertain: the coordinator cannot have committed (it
        // commits only after pre-committing everyone alive), but it may have aborted. Abort.
        Decision::Abort
    }
}
// ANCHOR_END: solution
