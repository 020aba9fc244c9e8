//! The lock lab: which design survives which fault, that the fence is what saves the resource,
//! and that the faults aimed at "the leader" hit the lock holder. (Wrong fences written by a
//! learner are caught in the `lock-fence` exercise's own tests.)

mod common;

use simlab_protocols::locks::{Design, LockConfig, LockNode};
use simlab_protocols::sweep::{first_violation, run_seed};
use simlab_protocols::{ProtocolConfig, RunOptions, Scenario, registry};
use simlab_sim::{Fault, Side};

fn with_design(name: &str, design: Design) -> Scenario {
    let mut s = common::scenario(name);
    let ProtocolConfig::Locks(config) = &mut s.protocol else {
        panic!("{name} is not a lock scenario");
    };
    config.design = design;
    s
}

fn report_value(scenario: &Scenario, key: &str) -> u64 {
    let (_, run) = registry::run(scenario, &RunOptions::default());
    let item = run
        .report()
        .into_iter()
        .find(|i| i.key == key)
        .unwrap_or_else(|| panic!("no report item {key}"));
    item.value.as_u64().expect("a count")
}

/// The chapter's claim: a lease (on one server or on consensus) breaks under pauses, clock
/// jumps and slow links; fencing tokens hold under all three.
#[test]
fn leases_break_under_timing_faults_and_fencing_holds() {
    for name in ["locks-gc-pause", "locks-clock-jump", "locks-slow-network"] {
        for design in [Design::SingleInstance, Design::ConsensusLease] {
            let s = with_design(name, design);
            let found = first_violation(&s, 0..50, "MutualExclusion");
            assert!(
                found.is_some(),
                "{name} with {design:?}: no seed in 0..50 breaks mutual exclusion"
            );
        }
        let fenced = with_design(name, Design::FencingTokens);
        for seed in 0..60 {
            let o = run_seed(&fenced, seed, true);
            assert!(
                o.violations.is_empty(),
                "{name} with fencing, seed {seed}: {:?}",
                o.violations
            );
        }
    }
}

#[test]
fn the_fence_refuses_the_late_write_and_keeps_every_increment() {
    let s = common::scenario("locks-fencing-gc-pause");
    assert!(
        report_value(&s, "accesses_refused") > 0,
        "the fence refused nothing"
    );
    assert_eq!(report_value(&s, "increments_lost"), 0);
    assert_eq!(report_value(&s, "overlapping_sections"), 0);
    // Without the fence, the same world loses increments.
    let unfenced = with_design("locks-fencing-gc-pause", Design::ConsensusLease);
    assert!(report_value(&unfenced, "overlapping_sections") > 0);
}

#[test]
fn pausing_the_leader_pauses_the_lock_holder() {
    let s = common::scenario("locks-gc-pause");
    let ProtocolConfig::Locks(config) = &s.protocol else {
        unreachable!()
    };
    let first_worker = config.storage().0 + 1;
    let mut sim = registry::simulation::<LockNode>(&s, &RunOptions::default()).unwrap();
    let mut pauses = 0;
    while sim.step() {
        if let Some(record) = sim.fault_log().last()
            && let Fault::Pause(n) = record.fault
            && record.at == sim.now()
            && record.skipped.is_none()
        {
            // The pause happened in this step: the node paused is a worker holding a lease.
            let world = sim.world();
            let worker = world
                .node(simlab_sim::NodeId(n))
                .and_then(LockNode::worker)
                .unwrap_or_else(|| panic!("n{n} paused is not a worker"));
            assert!(n >= first_worker);
            assert!(worker.lease().is_some(), "n{n} was paused without a lease");
            pauses += 1;
        }
    }
    assert!(pauses >= 5, "only {pauses} pauses hit a holder");
    // Each pause is undone by resuming that node, and nothing else.
    let log = sim.fault_log();
    for (i, f) in log.iter().enumerate() {
        if let Fault::Pause(n) = f.fault {
            let repair = log[i + 1..].iter().find(|r| r.fault != Fault::PauseLeader);
            assert_eq!(repair.map(|r| &r.fault), Some(&Fault::Resume(n)));
        }
        assert_ne!(f.fault, Fault::RepairAll);
    }
}

/// A slow clock fools the worker's lease check: with the drift the paused holder writes after
/// its lease; with true clocks the same check gives up in time.
#[test]
fn a_drifting_worker_clock_defeats_the_lease_check() {
    let drifting = common::scenario("locks-worker-clock-drift");
    assert!(first_violation(&drifting, 0..5, "MutualExclusion").is_some());
    let mut true_clocks = drifting.clone();
    true_clocks
        .faults
        .retain(|f| !matches!(f.fault, Fault::ClockDrift { .. }));
    assert_eq!(true_clocks.faults.len() + 6, drifting.faults.len());
    for seed in 0..60 {
        let o = run_seed(&true_clocks, seed, true);
        assert!(o.violations.is_empty(), "seed {seed}: {:?}", o.violations);
    }
}

#[test]
fn the_replicated_lock_service_serves_the_majority_side() {
    let s = common::scenario("locks-service-leader-partitioned");
    let (outcome, _) = registry::run(&s, &RunOptions::default());
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    let majority = outcome
        .cap
        .by_side
        .iter()
        .find(|(side, _)| *side == Side::Majority)
        .map(|(_, ops)| ops.clone())
        .expect("probes reached the majority side");
    assert!(majority.total >= 20, "{majority:?}");
    assert!(
        majority.ok * 10 >= majority.total * 8,
        "the majority side should keep answering: {majority:?}"
    );
}

#[test]
fn settings_that_cannot_work_are_refused_with_the_field() {
    let cases = [
        ("Locks(service_nodes: 3)", 8, "service_nodes"),
        (
            "Locks(design: ConsensusLease, service_nodes: 4294967295)",
            8,
            "nodes",
        ),
        ("Locks(design: ConsensusLease)", 4, "nodes"),
        ("Locks(ttl_ms: 0)", 8, "ttl_ms"),
        ("Locks(work_ms: (9, 1))", 8, "work_ms"),
        ("Locks(bugs: [FenceWritesOnly])", 8, "bugs"),
        (
            "Locks(design: FencingTokens, bugs: [VolatileRecord])",
            8,
            "bugs",
        ),
        (
            "Locks(design: ConsensusLease, raft: (heartbeat_ms: 0))",
            8,
            "raft.heartbeat_ms",
        ),
    ];
    for (text, nodes, field) in cases {
        let config = ProtocolConfig::parse(text).unwrap();
        let err = config.validate(nodes).expect_err(text);
        assert_eq!(err.field, field, "{text}: {err:?}");
    }
    assert!(
        ProtocolConfig::Locks(LockConfig::default())
            .validate(3)
            .is_ok()
    );
}

/// The long form of the chapter's claim: fencing tokens keep every invariant over 1,000 seeds
/// of each timing fault. Minutes; run with `--ignored`.
#[test]
#[ignore = "1,000 seeds per scenario take minutes; run with --ignored"]
fn fencing_holds_over_a_thousand_seeds_of_every_timing_fault() {
    for name in [
        "locks-gc-pause",
        "locks-clock-jump",
        "locks-slow-network",
        "locks-worker-clock-drift",
    ] {
        let fenced = with_design(name, Design::FencingTokens);
        let failing: Vec<u64> = (0..1_000)
            .filter(|&seed| !run_seed(&fenced, seed, true).violations.is_empty())
            .collect();
        assert!(
            failing.is_empty(),
            "{name} with fencing fails seeds {failing:?}"
        );
        println!("{name} with fencing tokens: 1000 seeds, none failing");
    }
}

/// Work that outlasts the lease: without renewals every careful worker gives up its write; with
/// renewals a third of the way through the lease, the writes go through.
#[test]
fn renewals_keep_a_long_critical_section_alive() {
    let mut s = common::scenario("locks-happy-path");
    let ProtocolConfig::Locks(config) = &mut s.protocol else {
        unreachable!()
    };
    config.work_ms = (300, 400); // longer than the 200 ms lease
    let without = report_value(&s, "writes_accepted");
    let abandoned = report_value(&s, "writes_abandoned");
    assert_eq!(without, 0, "no write can finish inside one lease");
    assert!(abandoned > 5, "{abandoned}");
    let ProtocolConfig::Locks(config) = &mut s.protocol else {
        unreachable!()
    };
    config.renew = true;
    let (outcome, run) = registry::run(&s, &RunOptions::default());
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    let with = run
        .report()
        .into_iter()
        .find(|i| i.key == "writes_accepted")
        .and_then(|i| i.value.as_u64())
        .unwrap();
    assert!(with >= 10, "only {with} writes with renewals");
}

/// Redlock: a majority of independent instances. It survives a holder's crash and its own
/// instances' restarts with persistence, and breaks when one instance's clock jumps.
#[test]
fn redlock_holds_a_majority_and_breaks_on_one_clock() {
    let jump = common::scenario("locks-redlock-clock-jump");
    let (outcome, run) = registry::run(&jump, &RunOptions::default());
    assert!(jump.expect.is_met(&outcome), "{:?}", outcome.violations);
    assert!(!run.invariants().iter().any(|(n, _)| n == "TokensUnique"));
    // Without the jumps, the same world keeps mutual exclusion.
    let mut steady = jump.clone();
    steady.faults.clear();
    for seed in 0..40 {
        let o = run_seed(&steady, seed, true);
        assert!(o.violations.is_empty(), "seed {seed}: {:?}", o.violations);
    }
    let crash = with_design("locks-holder-crash", Design::Redlock);
    for seed in 0..20 {
        let o = run_seed(&crash, seed, true);
        assert!(
            o.violations.is_empty(),
            "holder crash, seed {seed}: {:?}",
            o.violations
        );
    }
}
