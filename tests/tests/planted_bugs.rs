//! Every planted bug is found by a seed sweep of at most 1,000 seeds, as a violation of the
//! invariant its scenario names; with the bug switched off, the same scenario sweeps clean.

mod common;

use simlab_protocols::Scenario;
use simlab_protocols::shrink::{shrink, to_ron};
use simlab_protocols::sweep::{first_violation, run_seed};
use simlab_sim::Expect;

const SWEEP: u64 = 1_000;
/// Seeds of each clean sweep run in CI; the full 1,000 run in the ignored test below.
const CLEAN_SEEDS: u64 = 200;

/// Every `scenarios/*-bug-*.ron`: each plants a bug and expects the invariant that catches it.
fn bug_scenarios() -> Vec<String> {
    let names: Vec<String> = common::scenario_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name.contains("-bug-"))
        .collect();
    assert!(
        names.len() >= 14,
        "only {} bug scenarios found",
        names.len()
    );
    names
}

fn expected_invariant(scenario: &Scenario) -> String {
    match &scenario.expect {
        Expect::Violates(name) => name.clone(),
        other => panic!(
            "{}: a bug scenario must expect a violation, not {other}",
            scenario.name
        ),
    }
}

fn without_bugs(scenario: &Scenario) -> Scenario {
    let mut clean = scenario.clone();
    clean.protocol.clear_bugs();
    clean
}

#[test]
fn each_planted_bug_is_found_by_a_sweep() {
    for name in &bug_scenarios() {
        let scenario = common::scenario(name);
        let invariant = expected_invariant(&scenario);
        let found = first_violation(&scenario, 0..SWEEP, &invariant)
            .unwrap_or_else(|| panic!("{name}: no seed in 0..{SWEEP} violates {invariant}"));
        println!(
            "{name}: {invariant} first violated at seed {} ({})",
            found.seed,
            common::replay(name, found.seed)
        );
        assert_eq!(
            found.seed, scenario.seed,
            "{name}: the scenario's seed should be the first failing one, so `simlab run` shows it"
        );
    }
}

fn clean_sweep(name: &str, seeds: std::ops::Range<u64>) {
    let clean = without_bugs(&common::scenario(name));
    for seed in seeds {
        let outcome = run_seed(&clean, seed, true);
        assert!(
            outcome.violations.is_empty(),
            "{name} without its bug, seed {seed}: {:?}",
            outcome.violations
        );
    }
}

#[test]
fn without_the_bugs_the_same_sweeps_are_clean() {
    for name in &bug_scenarios() {
        clean_sweep(name, 0..CLEAN_SEEDS);
    }
}

#[test]
#[ignore = "the full 1,000-seed clean sweeps take minutes; run with --ignored"]
fn without_the_bugs_the_full_sweeps_are_clean() {
    for name in &bug_scenarios() {
        clean_sweep(name, 0..SWEEP);
    }
}

#[test]
fn three_phase_commit_survives_crash_stop_faults_without_blocking() {
    let scenario = common::scenario("3pc-crash-stop");
    for seed in 0..CLEAN_SEEDS {
        let outcome = run_seed(&scenario, seed, false);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}\nreplay: {}",
            outcome.violations,
            common::replay("3pc-crash-stop", seed)
        );
    }
}

#[test]
fn a_random_partition_nemesis_breaks_three_phase_commit() {
    let scenario = common::scenario("3pc-partition-nemesis");
    let found = first_violation(&scenario, 0..SWEEP, "Agreement").expect("a seed that breaks 3PC");
    println!(
        "3pc-partition-nemesis: Agreement first violated at seed {}",
        found.seed
    );
    assert_eq!(found.seed, scenario.seed);
}

#[test]
fn each_planted_bug_shrinks_to_a_scenario_that_fails_the_same_way() {
    for name in &bug_scenarios() {
        let scenario = common::scenario(name);
        let invariant = expected_invariant(&scenario);
        let shrunk = shrink(&scenario, scenario.seed, Some(&invariant)).expect("the seed fails");
        assert_eq!(shrunk.invariant, invariant);
        let small = &shrunk.scenario;
        assert!(
            small.nemesis.is_none()
                || shrunk
                    .removed
                    .iter()
                    .any(|l| l.contains("kept the random nemesis"))
        );
        assert!(
            small.faults.len() <= shrunk.faults_before,
            "{name}: more faults than before"
        );
        assert!(
            small.stop_ms <= scenario.stop_ms && small.nodes <= scenario.nodes,
            "{name}"
        );
        // The written file reads back as the same scenario, and fails the same way.
        let text = to_ron(small);
        let reread = Scenario::parse(std::path::Path::new("shrunk.ron"), &text)
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
        assert_eq!(
            &reread, small,
            "{name}: the RON round trip changed the scenario"
        );
        let rerun = run_seed(&reread, reread.seed, true);
        assert!(
            rerun.violated(&invariant),
            "{name}: the shrunk scenario no longer violates {invariant}"
        );
        println!(
            "{name}: {} faults -> {}, stop {} ms -> {}, {} runs",
            shrunk.faults_before,
            small.faults.len(),
            scenario.stop_ms,
            small.stop_ms,
            shrunk.runs
        );
    }
}
