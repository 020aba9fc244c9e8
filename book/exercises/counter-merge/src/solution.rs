// ANCHOR: solution
/// Folds a peer's vector into this node's: slot by slot, the larger count wins. Only a slot's
/// owner ever increases it, so the larger count is the newer one; `max` is commutative,
/// associative and idempotent, so order, duplicates and repeats do not matter.
pub fn merge(mine: &mut [u64], theirs: &[u64]) {
    for (m, t) in mine.iter_mut().zip(theirs) {
        *m = (*m).max(*t);
    }
}
// ANCHOR_END: solution
