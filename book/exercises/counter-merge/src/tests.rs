//! The exercise's checks: the merge alone, then the real protocol running it over a sweep, and
//! proof that the sweep catches the usual wrong answers.

use crate::{code, merge};
use simlab_protocols::Scenario;
use simlab_protocols::counter::{MERGE, MergeFn};
use simlab_protocols::sweep::{first_failure, wrong_answers_caught};
use std::path::Path;

fn merged(mine: &[u64], theirs: &[u64]) -> Vec<u64> {
    let mut out = mine.to_vec();
    merge(&mut out, theirs);
    out
}

/// Checks one case and explains a failure with the inputs and the rule.
fn expect(mine: &[u64], theirs: &[u64], want: &[u64], rule: &str) {
    let got = merged(mine, theirs);
    assert_eq!(
        got, want,
        "merge(mine = {mine:?}, theirs = {theirs:?}) gave {got:?}, expected {want:?}: {rule}"
    );
}

#[test]
fn the_merge_keeps_what_either_side_knows() {
    expect(
        &[3, 0, 0],
        &[0, 5, 0],
        &[3, 5, 0],
        "each side knows a slot the other does not: keep both",
    );
    expect(
        &[3, 5, 2],
        &[1, 7, 2],
        &[3, 7, 2],
        "a slot only grows, so the larger count is the newer one",
    );
}

#[test]
fn the_merge_does_not_count_twice() {
    expect(
        &[3, 5, 2],
        &[3, 5, 2],
        &[3, 5, 2],
        "merging a vector you already have changes nothing (gossip repeats itself)",
    );
    let once = merged(&[3, 0, 1], &[1, 4, 0]);
    expect(
        &once,
        &[1, 4, 0],
        &once,
        "merging the same vector twice is the same as once (the network duplicates messages)",
    );
}

#[test]
fn the_order_of_arrival_does_not_matter() {
    let (a, b, c) = ([4, 0, 1], [2, 3, 0], [0, 1, 6]);
    let ab_c = merged(&merged(&a, &b), &c);
    let ac_b = merged(&merged(&a, &c), &b);
    assert_eq!(
        ab_c, ac_b,
        "merging {b:?} then {c:?} into {a:?} gave {ab_c:?}, the other order {ac_b:?}: \
         the network reorders messages, so both orders must agree"
    );
}

fn scenario(name: &str) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../scenarios");
    Scenario::load(&root.join(format!("{name}.ron")))
        .unwrap_or_else(|e| panic!("{e}"))
        .scenario
}

#[test]
fn the_real_protocol_running_your_merge_survives_a_sweep() {
    let mut gossip = scenario("counter-gossip");
    gossip.code = code();
    if let Some((seed, why)) = first_failure(&gossip, 0..200) {
        panic!(
            "with your merge, seed {seed} fails:\n  {}\nreplay it: cargo run -p exercise-counter-merge \
             --features learner -- run scenarios/counter-gossip.ron --seed {seed}\n\
             (or `-- tui …` to step through it)",
            why
        );
    }
}

/// Wrong merges a learner might write, and the invariant that catches each in the real
/// protocol: this is what the sweep above tells a learner who wrote one of them.
#[test]
fn a_sweep_catches_wrong_merges() {
    fn sum(mine: &mut [u64], theirs: &[u64]) {
        mine.iter_mut().zip(theirs).for_each(|(m, t)| *m += t);
    }
    fn overwrite(mine: &mut [u64], theirs: &[u64]) {
        mine.copy_from_slice(theirs);
    }
    fn keep_mine(_: &mut [u64], _: &[u64]) {}
    fn min(mine: &mut [u64], theirs: &[u64]) {
        mine.iter_mut()
            .zip(theirs)
            .for_each(|(m, t)| *m = (*m).min(*t));
    }
    let wrong: [(&str, MergeFn, &str); 4] = [
        ("sum", sum, "NeverOvercounts"),
        ("overwrite", overwrite, "Converged"),
        ("keep mine", keep_mine, "Converged"),
        ("min", min, "Converged"),
    ];
    for line in wrong_answers_caught(&scenario("counter-gossip"), &MERGE, &wrong, 0..200) {
        println!("{line}");
    }
}
