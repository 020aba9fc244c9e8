//! Membership through scenarios: absent nodes, joins, leaves and churn run end to end, a
//! protocol with a fixed membership sees a leave and a rejoin as a long crash, and shrinking
//! removes the joins, leaves and nodes that do not matter.

use simlab_protocols::shrink::{shrink, to_ron};
use simlab_protocols::{RunOptions, Scenario, registry};
use simlab_sim::Fault;
use std::path::Path;

/// A grow-only counter under scheduled joins and leaves and a churning nemesis.
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

fn parse(text: &str) -> Scenario {
    Scenario::parse(Path::new("counter-churn.ron"), text).expect("a valid scenario")
}

fn run(scenario: &Scenario, seed: u64) -> simlab_sim::Outcome {
    let options = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    registry::run(scenario, &options).0
}

#[test]
fn a_fixed_membership_counter_keeps_its_invariants_through_churn() {
    let scenario = parse(CHURN);
    let mut joins = 0;
    let mut leaves = 0;
    for seed in 0..20 {
        let outcome = run(&scenario, seed);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}",
            outcome.violations
        );
        let done = |f: &&simlab_sim::FaultRecord| f.skipped.is_none();
        joins += outcome
            .faults
            .iter()
            .filter(done)
            .filter(|f| matches!(f.fault, Fault::Join(_)))
            .count();
        leaves += outcome
            .faults
            .iter()
            .filter(done)
            .filter(|f| matches!(f.fault, Fault::Leave(_)))
            .count();
    }
    assert!(
        joins >= 40 && leaves >= 40,
        "{joins} joins, {leaves} leaves"
    );
}

#[test]
fn shrinking_removes_the_membership_changes_that_do_not_matter() {
    // The planted double-counting bug fails with or without churn: the shrunk run keeps none
    // of the joins and leaves, and drops the absent node with the others it does not need.
    let buggy = CHURN
        .replace(
            "protocol: Counter(),",
            "protocol: Counter(bugs: [MergeBySum]),",
        )
        .replace("expect: AllHold", "expect: Violates(\"NeverOvercounts\")");
    let scenario = parse(&buggy);
    let seed = (0..20)
        .find(|&seed| {
            run(&scenario, seed)
                .violations
                .iter()
                .any(|v| v.invariant == "NeverOvercounts")
        })
        .expect("the planted bug shows within 20 seeds");
    let shrunk = shrink(&scenario, seed, Some("NeverOvercounts")).expect("it fails");
    assert!(shrunk.faults_before >= 4, "{}", shrunk.faults_before);
    assert!(
        !shrunk
            .scenario
            .faults
            .iter()
            .any(|f| matches!(f.fault, Fault::Join(_) | Fault::Leave(_))),
        "{:?}",
        shrunk.scenario.faults
    );
    assert!(
        shrunk.scenario.nodes < 5 && shrunk.scenario.absent.is_empty(),
        "{shrunk:?}"
    );
    let text = to_ron(&shrunk.scenario);
    assert!(!text.contains("absent"), "{text}");
    let reread = parse(&text);
    assert!(
        run(&reread, seed)
            .violations
            .iter()
            .any(|v| v.invariant == "NeverOvercounts"),
        "{text}"
    );
}

#[test]
fn absent_nodes_and_joins_round_trip_through_a_scenario_file() {
    // Shrinking writes what it keeps back to a file: the absent list and the joins must read
    // back as they were.
    let mut scenario = parse(CHURN);
    scenario.absent = vec![1];
    scenario.faults = vec![simlab_sim::faults::ScheduledFault {
        at_ms: 300,
        fault: Fault::Join(1),
    }];
    scenario.nemesis = None;
    let text = to_ron(&scenario);
    assert!(
        text.contains("absent: [") && text.contains("Join(1)"),
        "{text}"
    );
    assert_eq!(parse(&text), scenario);
}

#[test]
fn the_rebalancing_store_needs_its_authority_present() {
    let text = r#"Scenario(name: "r", protocol: Ring(), nodes: 4,
    absent: [3, 0], stop_ms: 100, expect: AllHold)"#;
    let err = Scenario::parse(Path::new("r.ron"), text)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("r.ron:2:") && err.contains("absent[1]") && err.contains("authority"),
        "{err}"
    );
    let alone = r#"Scenario(name: "r", protocol: Ring(), nodes: 1, stop_ms: 100, expect: AllHold)"#;
    let err = Scenario::parse(Path::new("r.ron"), alone)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nodes") && err.contains("at least one member"),
        "{err}"
    );
}

#[test]
fn a_store_with_every_node_down_at_the_end_is_not_settled() {
    let text = r#"Scenario(name: "r", protocol: Ring(), nodes: 3,
    clients: (count: 1, ops: 5, route_by_key: true),
    faults: [(at_ms: 200, fault: Crash(0)), (at_ms: 200, fault: Crash(1)), (at_ms: 200, fault: Crash(2))],
    stop_ms: 1000, expect: AllHold)"#;
    let scenario = Scenario::parse(Path::new("r.ron"), text).unwrap();
    let outcome = run(&scenario, 0);
    let settled: Vec<_> = outcome
        .violations
        .iter()
        .filter(|v| v.invariant == "Settled")
        .collect();
    assert_eq!(settled.len(), 1, "{:?}", outcome.violations);
    assert!(
        settled[0].message.contains("no node is up"),
        "{}",
        settled[0].message
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
