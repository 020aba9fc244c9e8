// Each stub is the learner's to write; its `todo!` says what it is for.
#![allow(clippy::todo)]

use simlab_protocols::atomic_commit::Decision;
use simlab_protocols::three_phase_commit::TxState;

// ANCHOR: exercise
/// The decision of a backup coordinator that collected these states (its own included) from
/// the participants it can reach. Whatever it decides, every participant that decides later
/// (or decided before, out of its sight) must decide the same.
pub fn decide(states: &[TxState]) -> Decision {
    let _ = states;
    todo!("what do these states prove about what anyone else may have decided?")
}
// ANCHOR_END: exercise
