// Each stub is the learner's to write; its `todo!` says what it is for.
#![allow(clippy::todo)]

use simlab_protocols::ring::{Ring, Transfer};

// ANCHOR: exercise
/// The arcs of the ring whose set of `r` owners differs between `before` and `after`: for each,
/// the arc (`KeyRange { after, upto }`: the positions after `after` up to and including `upto`,
/// clockwise), its owners before and its owners after (each list ascending). Adjacent arcs
/// with the same owners before and after are one arc.
///
/// Useful: `ring.points()` (every virtual node as (position, member), ascending) and
/// `ring.owners(point, r)` (the `r` members owning a position). Between two consecutive
/// positions that are virtual nodes of *either* ring, neither ring's owners change.
pub fn transfers(before: &Ring, after: &Ring, r: usize) -> Vec<Transfer> {
    let _ = (before, after, r);
    todo!("list the arcs whose owners change")
}
// ANCHOR_END: exercise
