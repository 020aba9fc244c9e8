// Each stub is the learner's to write; its `todo!` says what it is for.
#![allow(clippy::todo)]

// ANCHOR: exercise
/// Folds a peer's vector `theirs` into this node's vector `mine` (both have one slot per
/// node; slot `j` counts what node `j` added). The result must not depend on the order vectors
/// arrive in, nor on how often the same vector arrives, and must never count an addition twice.
pub fn merge(mine: &mut [u64], theirs: &[u64]) {
    let _ = (mine, theirs);
    todo!("combine the two vectors slot by slot")
}
// ANCHOR_END: exercise
