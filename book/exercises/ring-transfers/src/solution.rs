use simlab_protocols::ring::{KeyRange, Ring, Transfer};
use std::collections::BTreeSet;

// ANCHOR: solution
/// Cuts the ring at every virtual node of either ring. Each piece ends at a cut, and in each
/// ring it belongs to whoever owns that cut, so a piece moves exactly when the cut's owners
/// differ. Then neighbouring pieces with the same owners are glued, the last onto the first
/// when they meet across position 0.
pub fn transfers(before: &Ring, after: &Ring, r: usize) -> Vec<Transfer> {
    let cuts: Vec<u64> = before
        .points()
        .iter()
        .chain(after.points())
        .map(|&(position, _)| position)
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    let count = cuts.len();
    let owners = |ring: &Ring, at: u64| -> Vec<u32> {
        let set: BTreeSet<u32> = ring.owners(at, r).into_iter().collect();
        set.into_iter().collect()
    };
    let moving = (0..count).filter_map(|i| {
        let end = cuts[i];
        let piece = Transfer {
            range: KeyRange {
                after: cuts[(i + count - 1) % count],
                upto: end,
            },
            from: owners(before, end),
            to: owners(after, end),
        };
        (piece.from != piece.to).then_some(piece)
    });
    let same_move = |a: &Transfer, b: &Transfer| {
        a.range.upto == b.range.after && a.from == b.from && a.to == b.to
    };
    let mut glued: Vec<Transfer> = Vec::new();
    for piece in moving {
        match glued.last_mut() {
            Some(last) if same_move(last, &piece) => last.range.upto = piece.range.upto,
            _ => glued.push(piece),
        }
    }
    if glued.len() > 1 && same_move(&glued[glued.len() - 1], &glued[0]) {
        let tail = glued.pop().expect("at least two");
        glued[0].range.after = tail.range.after;
    }
    glued
}
// ANCHOR_END: solution
