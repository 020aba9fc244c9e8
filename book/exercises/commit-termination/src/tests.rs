//! The exercise's checks: the rule alone, then 3PC running it in every participant over
//! sweeps, the usual wrong rules caught, and the real lesson: a partition breaks even the right
//! rule.

use crate::{code, decide};
use TxState::{PreCommitted, Uncertain};
use simlab_protocols::atomic_commit::Decision;
use simlab_protocols::sweep::run_seed;
use simlab_protocols::three_phase_commit::{TERMINATE, TerminateFn, TxState};
use simlab_protocols::{LearnerCode, Scenario};
use std::path::Path;

const ABORTED: TxState = TxState::Decided(Decision::Abort);
const COMMITTED: TxState = TxState::Decided(Decision::Commit);

fn expect(states: &[TxState], want: Decision, why: &str) {
    let got = decide(states);
    assert_eq!(
        got, want,
        "\n  collected: {states:?}\n  expected {want:?}, got {got:?}\n  why: {why}\n"
    );
}

#[test]
fn an_abort_anywhere_means_abort() {
    expect(
        &[PreCommitted, ABORTED],
        Decision::Abort,
        "a participant aborted; committing now would disagree with it",
    );
}

#[test]
fn a_commit_anywhere_means_commit() {
    expect(
        &[Uncertain, COMMITTED],
        Decision::Commit,
        "a participant committed; aborting now would disagree with it",
    );
}

#[test]
fn one_pre_commit_is_enough_to_commit() {
    expect(
        &[Uncertain, PreCommitted, Uncertain],
        Decision::Commit,
        "a pre-commit means every vote was yes, and the coordinator may already have committed",
    );
}

#[test]
fn all_uncertain_means_abort() {
    let why = "nobody reachable is pre-committed, so the coordinator cannot have committed; it may have aborted";
    expect(&[Uncertain, Uncertain], Decision::Abort, why);
    expect(&[Uncertain], Decision::Abort, why);
}

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../scenarios")
        .join(format!("{name}.ron"));
    Scenario::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .scenario
}

/// The first seed in `seeds` whose run with `code` (and no planted bug) violates anything.
fn first_failure(
    name: &str,
    code: LearnerCode,
    seeds: std::ops::Range<u64>,
) -> Option<(u64, String)> {
    simlab_protocols::sweep::first_failure(&scenario(name).with_learner_code(code), seeds)
}

#[test]
fn three_phase_commit_stays_atomic_under_crashes_with_this_rule() {
    for name in [
        "3pc-crash-stop",
        "3pc-coordinator-crash-before-decision",
        "3pc-coordinator-crash-forever",
        "3pc-bug-termination-commits-uncertain",
    ] {
        if let Some((seed, why)) = first_failure(name, code(), 0..100) {
            panic!(
                "{name}, seed {seed}: {why}\nreplay: cargo run -p exercise-commit-termination --features learner -- run scenarios/{name}.ron --seed {seed}"
            );
        }
    }
}

#[test]
fn the_sweeps_catch_the_usual_wrong_rules() {
    fn commit_unless_aborted(states: &[TxState]) -> Decision {
        if states.contains(&ABORTED) {
            Decision::Abort
        } else {
            Decision::Commit
        }
    }
    let wrong: [(&str, TerminateFn); 1] = [(
        "commits when everyone is merely uncertain",
        commit_unless_aborted,
    )];
    for (what, rule) in wrong {
        let caught = ["3pc-bug-termination-commits-uncertain", "3pc-crash-stop"]
            .into_iter()
            .find_map(|name| {
                first_failure(name, LearnerCode::new().with(&TERMINATE, rule), 0..300)
                    .map(|(seed, why)| format!("{name} seed {seed}: {why}"))
            });
        let found = caught.unwrap_or_else(|| panic!("a rule that {what} was not caught"));
        println!("a rule that {what}: {found}");
    }
}

/// The lesson after the exercise: the right rule, run by both sides of a partition, decides
/// differently on each side.
#[test]
fn a_partition_breaks_even_the_right_rule() {
    let mut s = scenario("3pc-partition");
    s.code = code();
    let o = run_seed(&s, s.seed, true);
    assert!(o.violated("Agreement"), "{:?}", o.violations);
    assert_eq!(o.violations[0].step, 24, "the chapter says step 24");
}

/// With the reference rule in the slot, 3PC runs step for step as with its own: the slot is the
/// protocol's code path.
#[cfg(not(feature = "learner"))]
#[test]
fn the_reference_rule_runs_exactly_like_the_protocols_own() {
    for name in [
        "3pc-crash-stop",
        "3pc-coordinator-crash-forever",
        "3pc-partition",
    ] {
        let own = scenario(name);
        let mut slotted = own.clone();
        slotted.code = code();
        let diverged = simlab_protocols::sweep::first_divergence(&own, &slotted, 0..10);
        assert_eq!(diverged, None, "{name}: the runs differ at this seed");
    }
}
