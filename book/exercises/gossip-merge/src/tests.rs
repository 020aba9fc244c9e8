//! The exercise's checks: the merge alone, then the real protocol running it over a sweep, and
//! proof that the sweep catches the usual wrong answers.

use crate::{code, merge};
use simlab_protocols::Scenario;
use simlab_protocols::gossip::version::{Dot, Hlc, MERGE, MergeFn, Version, VersionVector};
use simlab_protocols::sweep::{first_failure, wrong_answers_caught};
use std::path::Path;

/// A write by `node` (its `counter`th) that had seen the writes in `seen`.
fn version(node: u32, counter: u64, seen: &[(u32, u64)], value: &str) -> Version {
    let dot = Dot { node, counter };
    let mut vv: VersionVector = seen.iter().copied().collect();
    vv.add(dot);
    Version {
        dot,
        seen: vv,
        stamp: Hlc {
            wall_us: counter,
            logical: 0,
            node,
        },
        value: Some(value.into()),
    }
}

fn names(versions: &[Version]) -> Vec<String> {
    versions.iter().map(|v| v.dot.to_string()).collect()
}

/// Checks one case and explains a failure with the inputs and the rule.
fn expect(mine: Vec<Version>, theirs: Vec<Version>, want: Vec<Version>, rule: &str) {
    let got = merge(&mine, &theirs);
    assert_eq!(
        names(&got),
        names(&want),
        "merge(mine = {:?}, theirs = {:?}) kept {:?}, expected {:?}: {rule}",
        names(&mine),
        names(&theirs),
        names(&got),
        names(&want)
    );
}

#[test]
fn concurrent_versions_are_both_kept() {
    let a = version(0, 1, &[], "a");
    let b = version(1, 1, &[], "b");
    expect(
        vec![a.clone()],
        vec![b.clone()],
        vec![a.clone(), b.clone()],
        "neither saw the other: both are siblings (in dot order)",
    );
    expect(
        vec![b.clone()],
        vec![a.clone()],
        vec![a, b],
        "the same two versions from the other side: the same answer",
    );
}

#[test]
fn an_overtaken_version_is_dropped_from_either_side() {
    let a = version(0, 1, &[], "a");
    let b = version(1, 1, &[], "b");
    let c = version(2, 1, &[(0, 1), (1, 1)], "c");
    expect(
        vec![a.clone(), b.clone()],
        vec![c.clone()],
        vec![c.clone()],
        "c was written knowing a and b",
    );
    expect(
        vec![c.clone()],
        vec![a.clone()],
        vec![c.clone()],
        "an old version arriving late does not come back",
    );
    let d = version(0, 2, &[(0, 1)], "d");
    expect(
        vec![d.clone()],
        vec![a, b.clone()],
        vec![d, b],
        "d overtook a but not b",
    );
}

#[test]
fn merging_twice_is_merging_once() {
    let a = version(0, 1, &[], "a");
    let b = version(1, 1, &[], "b");
    let once = merge(std::slice::from_ref(&a), std::slice::from_ref(&b));
    expect(
        once.clone(),
        vec![a, b],
        once.clone(),
        "the network duplicates messages: a repeat changes nothing",
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
    let mut cache = scenario("gossip-anti-entropy");
    cache.code = code();
    if let Some((seed, why)) = first_failure(&cache, 0..200) {
        panic!(
            "with your merge, seed {seed} fails:\n  {}\nreplay it: cargo run -p exercise-gossip-merge \
             --features learner -- run scenarios/gossip-anti-entropy.ron --seed {seed}\n\
             (or `-- tui …` to step through it)",
            why
        );
    }
}

/// Wrong merges a learner might write, and the invariant that catches each in the real
/// protocol: this is what the sweep above tells a learner who wrote one of them.
#[test]
fn a_sweep_catches_wrong_merges() {
    fn keep_mine(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
        if mine.is_empty() {
            theirs.to_vec()
        } else {
            mine.to_vec()
        }
    }
    fn take_theirs(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
        if theirs.is_empty() {
            mine.to_vec()
        } else {
            theirs.to_vec()
        }
    }
    fn keep_everything(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
        let mut all: Vec<Version> = mine.to_vec();
        for t in theirs {
            if !all.iter().any(|v| v.dot == t.dot) {
                all.push(t.clone());
            }
        }
        all.sort_by_key(|v| v.dot);
        all
    }
    fn newest_stamp_only(mine: &[Version], theirs: &[Version]) -> Vec<Version> {
        mine.iter()
            .chain(theirs)
            .max_by_key(|v| v.stamp)
            .cloned()
            .into_iter()
            .collect()
    }
    let wrong: [(&str, MergeFn, &str); 4] = [
        ("keep mine", keep_mine, "Converged"),
        ("take theirs", take_theirs, "NoLostWrite"),
        ("keep everything", keep_everything, "SiblingsConcurrent"),
        ("newest stamp only", newest_stamp_only, "NoLostWrite"),
    ];
    for line in wrong_answers_caught(&scenario("gossip-anti-entropy"), &MERGE, &wrong, 0..200) {
        println!("{line}");
    }
}
