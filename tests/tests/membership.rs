//! Membership through scenarios: absent nodes, joins, leaves and churn run end to end, a
//! protocol that assumes fixed membership is caught by its own invariant when an id comes back
//! as a new member, and shrinking removes the joins, leaves and nodes that do not matter.

use simlab_protocols::shrink::{shrink, to_ron};
use simlab_protocols::{RunOptions, Scenario, registry};
use simlab_sim::Fault;
use std::path::Path;

/// A grow-only counter keyed by replica id, under scheduled joins and leaves and a churning
/// nemesis. Node 1 leaves at 600 ms and the churn may bring it back: a rejoining member starts
/// from an empty store, so its count for itself restarts at zero while the others remember more.
const CHURN: &str = r#"Scenario(
    name: "counter-churn",
    protocol: Counter(),
    nodes: 5,
    absent: [4],
    network: (latency_ms: Uniform(1, 10)),
    clients: (count: 2, ops: 20, think_ms: (0, 40)),
    faults: [
        (at_ms: 300, fault: Join(4)),
        (at_ms: 600, fault: Leave(1)),
    ],
    nemesis: (kinds: [Churn], interval_ms: (100, 300), duration_ms: (100, 300), end_ms: 1500),
    stop_ms: 3000,
    expect: AllHold,
)"#;

fn scenario() -> Scenario {
    Scenario::parse(Path::new("counter-churn.ron"), CHURN).expect("a valid scenario")
}

fn first_failing_seed(scenario: &Scenario) -> u64 {
    (0..50)
        .find(|&seed| {
            let options = RunOptions {
                seed: Some(seed),
                ..RunOptions::default()
            };
            let (outcome, _) = registry::run(scenario, &options);
            outcome
                .violations
                .iter()
                .any(|v| v.invariant == "NeverOvercounts")
        })
        .expect("a reused id overcounts within 50 seeds")
}

#[test]
fn a_rejoined_id_with_an_empty_store_breaks_a_counter_keyed_by_id() {
    let scenario = scenario();
    let seed = first_failing_seed(&scenario);
    let options = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    let (outcome, _) = registry::run(&scenario, &options);
    let joins = outcome
        .faults
        .iter()
        .filter(|f| matches!(f.fault, Fault::Join(_)) && f.skipped.is_none())
        .count();
    assert!(
        joins >= 2,
        "the scheduled join and a churn join: {:?}",
        outcome.faults
    );
    // Without membership changes the same run keeps the invariant: the churn is the cause.
    let mut fixed = scenario.clone();
    fixed.absent.clear();
    fixed.faults.clear();
    fixed.nemesis = None;
    let (steady, _) = registry::run(&fixed, &options);
    assert!(steady.violations.is_empty(), "{:?}", steady.violations);
}

#[test]
fn shrinking_keeps_only_the_membership_changes_that_matter() {
    let scenario = scenario();
    let seed = first_failing_seed(&scenario);
    let shrunk = shrink(&scenario, seed, Some("NeverOvercounts")).expect("it fails");
    let faults: Vec<&Fault> = shrunk.scenario.faults.iter().map(|f| &f.fault).collect();
    assert!(
        shrunk.scenario.faults.len() < shrunk.faults_before,
        "{faults:?} of {}",
        shrunk.faults_before
    );
    // What must remain: some node leaves and the same id joins again afterwards.
    let rejoined = faults.iter().enumerate().any(|(i, f)| match f {
        Fault::Leave(n) => faults[i + 1..].contains(&&Fault::Join(*n)),
        _ => false,
    });
    assert!(rejoined, "{faults:?}");
    assert!(
        faults
            .iter()
            .all(|f| matches!(f, Fault::Join(_) | Fault::Leave(_))),
        "only membership changes cause this: {faults:?}"
    );
    for n in &shrunk.scenario.absent {
        assert!(
            *n < shrunk.scenario.nodes,
            "absent {n} of {}",
            shrunk.scenario.nodes
        );
    }
    // The shrunk file reads back and fails the same way.
    let text = to_ron(&shrunk.scenario);
    let reread = Scenario::parse(Path::new("shrunk.ron"), &text).expect("valid");
    let (outcome, _) = registry::run(
        &reread,
        &RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        },
    );
    assert!(
        outcome
            .violations
            .iter()
            .any(|v| v.invariant == "NeverOvercounts"),
        "{text}"
    );
}

#[test]
fn a_scenario_naming_a_missing_absent_node_says_where() {
    let bad = CHURN.replace("absent: [4]", "absent: [9]");
    let err = Scenario::parse(Path::new("counter-churn.ron"), &bad).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("counter-churn.ron:5:")
            && message.contains("absent[0]")
            && message.contains("node 9 does not exist"),
        "{message}"
    );
}
