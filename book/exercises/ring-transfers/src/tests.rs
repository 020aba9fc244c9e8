//! The exercise's checks: the function against owners computed key by key, then the real
//! rebalancing store running it over a sweep, and proof that the sweep catches the usual
//! wrong answers.

use crate::{code, transfers};
use simlab_protocols::Scenario;
use simlab_protocols::ring::hash_ring::{TRANSFERS, TransfersFn};
use simlab_protocols::ring::{Ring, Transfer, ring_hash};
use simlab_protocols::sweep::{first_failure, wrong_answers_caught};
use std::collections::BTreeSet;
use std::path::Path;

fn owner_set(ring: &Ring, key: u64, r: usize) -> Vec<u32> {
    let set: BTreeSet<u32> = ring.owners(key, r).into_iter().collect();
    set.into_iter().collect()
}

/// Checks `transfers(before, after, r)` key by key: a key lies in a returned arc exactly when
/// its owners changed, and the arc names its owners before and after.
fn check(before: &Ring, after: &Ring, r: usize, what: &str) {
    let arcs = transfers(before, after, r);
    let mut keys: Vec<u64> = (0..300u64).map(|k| ring_hash(&[7, k])).collect();
    for &(p, _) in before.points().iter().chain(after.points()) {
        keys.extend([p, p.wrapping_add(1), p.wrapping_sub(1)]);
    }
    keys.extend([0, u64::MAX]);
    for key in keys {
        let (old, new) = (owner_set(before, key, r), owner_set(after, key, r));
        let holding: Vec<&Transfer> = arcs.iter().filter(|t| t.range.contains(key)).collect();
        assert!(
            holding.len() <= 1,
            "{what}: position {key} is in two of your arcs: {holding:?}"
        );
        match holding.first() {
            None => assert!(
                old == new,
                "{what}: position {key} moved from {old:?} to {new:?}, but no arc you returned \
                 contains it"
            ),
            Some(t) => assert!(
                t.from == old && t.to == new,
                "{what}: position {key} is in your arc {t:?}, but its owners went from {old:?} \
                 to {new:?}"
            ),
        }
    }
}

#[test]
fn a_join_moves_only_the_newcomers_arcs() {
    let before = Ring::with_members(3, 8, [1, 2, 3, 4]);
    let mut after = before.clone();
    after.join(5);
    check(&before, &after, 1, "member 5 joins");
    for t in transfers(&before, &after, 1) {
        assert_eq!(
            t.to,
            vec![5],
            "on a join, everything that moves goes to the newcomer"
        );
    }
}

#[test]
fn a_leave_and_replicas_move_what_changed_and_nothing_else() {
    let before = Ring::with_members(9, 5, [1, 2, 3, 4, 5]);
    let mut after = before.clone();
    after.leave(3);
    check(&before, &after, 1, "member 3 leaves");
    check(&before, &after, 2, "member 3 leaves, two replicas");
    check(&before, &before, 1, "nothing changes");
    assert!(transfers(&before, &before, 1).is_empty());
    let one = Ring::with_members(1, 1, [4]);
    let two = Ring::with_members(1, 1, [4, 6]);
    check(&one, &two, 1, "a second member joins a ring of one");
}

#[test]
fn adjacent_arcs_with_the_same_move_are_one() {
    let before = Ring::with_members(5, 10, 0..6);
    let mut after = before.clone();
    after.join(6);
    let arcs = transfers(&before, &after, 1);
    for (i, t) in arcs.iter().enumerate() {
        let next = &arcs[(i + 1) % arcs.len()];
        if arcs.len() > 1 && t.range.upto == next.range.after {
            assert!(
                t.from != next.from || t.to != next.to,
                "{t:?} and {next:?} touch and move the same way: return them as one arc"
            );
        }
    }
}

fn scenario(name: &str) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../scenarios");
    Scenario::load(&root.join(format!("{name}.ron")))
        .unwrap_or_else(|e| panic!("{e}"))
        .scenario
}

#[test]
fn the_real_store_running_your_transfers_survives_a_sweep() {
    let mut store = scenario("ring-churn");
    store.code = code();
    if let Some((seed, why)) = first_failure(&store, 0..200) {
        panic!(
            "with your transfers, seed {seed} fails:\n  {}\nreplay it: cargo run -p \
             exercise-ring-transfers --features learner -- run scenarios/ring-churn.ron --seed \
             {seed}\n(or `-- tui …` to step through it)",
            why
        );
    }
}

/// Wrong answers a learner might write, and the invariant that catches each in the real store:
/// this is what the sweep above tells a learner who wrote one of them.
#[test]
fn a_sweep_catches_wrong_transfers() {
    /// Only arcs that go to a member that was not there before: a leave moves nothing.
    fn only_newcomers(before: &Ring, after: &Ring, r: usize) -> Vec<Transfer> {
        Ring::transfers(before, after, r)
            .into_iter()
            .filter(|t| t.to.iter().all(|m| !before.members().contains(m)))
            .collect()
    }
    /// Every arc but the one that wraps past position 0.
    fn forgets_the_wrap(before: &Ring, after: &Ring, r: usize) -> Vec<Transfer> {
        Ring::transfers(before, after, r)
            .into_iter()
            .filter(|t| t.range.after < t.range.upto)
            .collect()
    }
    /// The owners before and after swapped.
    fn backwards(before: &Ring, after: &Ring, r: usize) -> Vec<Transfer> {
        Ring::transfers(before, after, r)
            .into_iter()
            .map(|t| Transfer {
                from: t.to,
                to: t.from,
                range: t.range,
            })
            .collect()
    }
    // A leave moves nothing, so the leaver and its successor both serve its keys; the keys
    // across position 0 never move, and are lost; backwards, the newcomer takes itself for the
    // source and serves the arc while the old owner still does.
    let wrong: [(&str, TransfersFn, &str); 3] = [
        ("only newcomers", only_newcomers, "SingleServer"),
        ("forgets the wrap", forgets_the_wrap, "NoLostWrite"),
        ("backwards", backwards, "SingleServer"),
    ];
    for line in wrong_answers_caught(&scenario("ring-churn"), &TRANSFERS, &wrong, 0..200) {
        println!("{line}");
    }
}
