use simlab_protocols::gossip::version::Version;

// ANCHOR: solution
/// Keeps every version from either side that no other version overtook, once each, in dot
/// order. Looking at both sides together is what makes it commutative: whether a version
/// survives depends on the set of versions, not on which side it came from.
pub fn merge(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
    let all: Vec<&Version> = mine.iter().chain(theirs).collect();
    let mut kept: Vec<Version> = Vec::new();
    for v in &all {
        let overtaken = all.iter().any(|other| v.overtaken_by(other));
        if !overtaken && !kept.iter().any(|k| k.dot == v.dot) {
            kept.push((*v).clone());
        }
    }
    kept.sort_by_key(|v| v.dot);
    kept
}
// ANCHOR_END: solution
