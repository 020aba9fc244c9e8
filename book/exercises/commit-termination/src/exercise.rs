use crate::{Decision, State};

// ANCHOR: exercise
/// The decision of a backup coordinator that collected these states (its own included).
pub fn decide(states: &[State]) -> Decision {
    let _ = states;
    todo!("Skeen's rule: who has decided, who has pre-committed, who is merely uncertain?")
}
// ANCHOR_END: exercise
