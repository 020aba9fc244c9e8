// Each stub is the learner's to write; its `todo!` says what it is for.
#![allow(clippy::todo)]

use simlab_protocols::gossip::version::Version;

// ANCHOR: exercise
/// Folds a peer's versions of one key (`theirs`) into this replica's (`mine`) and returns what
/// the replica keeps. A version `v` has been overtaken when another version's `seen` covers
/// its dot (`v.overtaken_by(other)`): that write came later, knowing `v`. Keep every version,
/// from either side, that nothing overtook, once each, sorted by dot: the same answer whatever
/// the order versions arrive in and however often.
pub fn merge(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
    let _ = (mine, theirs);
    todo!("keep the versions no other version has overtaken")
}
// ANCHOR_END: exercise
