use crate::{Decision, State};

// ANCHOR: solution
/// The decision of a backup coordinator that collected these states (its own included).
pub fn decide(states: &[State]) -> Decision {
    let any = |s: State| states.contains(&s);
    if any(State::Aborted) {
        // Someone aborted: the coordinator never reached pre-commit, or it is too late anyway.
        Decision::Abort
    } else if any(State::Committed) || any(State::PreCommitted) {
        // Pre-commit means every participant voted yes, and the coordinator may have committed.
        Decision::Commit
    } else {
        // Everyone is merely uncertain: nobody can have committed, so abort is safe.
        Decision::Abort
    }
}
// ANCHOR_END: solution
