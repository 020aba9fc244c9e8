//! Raft's snapshots and log compaction (§7): each snapshot scenario meets its expectation over
//! a sweep, and does what its story says (the follower caught up only by a snapshot, the install
//! lost to a crash, servers that restart from a snapshot alone).

mod common;

use simlab_protocols::raft::Raft;
use simlab_protocols::sweep::run_seed;
use simlab_protocols::{RunOptions, registry};
use simlab_sim::{Fault, NodeId, Simulation, StepKind, Time, TraceMode};

/// Seeds of each snapshot scenario swept in CI.
const SEEDS: u64 = 200;

fn snapshot_scenarios() -> Vec<String> {
    let names: Vec<String> = common::scenario_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("raft-snapshot-"))
        .collect();
    assert!(names.len() >= 6, "snapshot scenarios: {names:?}");
    names
}

#[test]
fn every_snapshot_scenario_meets_its_expectation_over_a_sweep() {
    for name in snapshot_scenarios() {
        let scenario = common::scenario(&name);
        for seed in 0..SEEDS {
            let outcome = run_seed(&scenario, seed, false);
            assert!(
                outcome.expect_met && !outcome.not_passed(),
                "{name} seed {seed}: {:?}\nreplay: {}",
                outcome.failure(),
                common::replay(&name, seed)
            );
        }
    }
}

fn full_run(name: &str, seed: u64) -> Simulation<Raft> {
    let options = RunOptions {
        seed: Some(seed),
        trace: TraceMode::Full,
        ..RunOptions::default()
    };
    let mut sim = registry::simulation::<Raft>(&common::scenario(name), &options).unwrap();
    sim.run();
    sim
}

fn installs_on(run: &Simulation<Raft>, node: u32) -> Vec<Time> {
    run.records()
        .iter()
        .filter(|r| r.node == Some(NodeId(node)))
        .filter(|r| r.notes.iter().any(|n| n.starts_with("installs a snapshot")))
        .map(|r| r.time())
        .collect()
}

#[test]
fn the_cut_off_follower_is_caught_up_by_a_snapshot() {
    for seed in 0..20 {
        let run = full_run("raft-snapshot-lagging-follower", seed);
        let Fault::Isolate(follower) = run.fault_log()[0].fault else {
            panic!("seed {seed}: the first fault isolates a follower")
        };
        let heal = Time::from_millis(3000);
        let after_heal: Vec<_> = installs_on(&run, follower)
            .into_iter()
            .filter(|&t| t >= heal)
            .collect();
        assert!(
            !after_heal.is_empty(),
            "seed {seed}: n{follower} was never sent a snapshot after the heal"
        );
        // It ends with the same state machine as everyone else.
        let world = run.world();
        let kv = |i: u32| world.node(NodeId(i)).unwrap().kv().clone();
        assert_eq!(kv(follower), kv((follower + 1) % 5), "seed {seed}");
    }
}

#[test]
fn a_snapshot_lost_to_a_crash_is_sent_again_after_the_restart() {
    let scenario = common::scenario("raft-snapshot-crash-while-installing");
    let run = full_run("raft-snapshot-crash-while-installing", scenario.seed);
    let crash = Time::from_millis(3200);
    let restart = Time::from_millis(3600);
    let lost = run
        .records()
        .iter()
        .filter(|r| r.kind == StepKind::Drop && r.node == Some(NodeId(4)))
        .filter(|r| r.summary.contains("InstallSnapshot") && r.summary.contains("n4 is down"))
        .count();
    assert!(lost >= 1, "no snapshot was in flight to n4 when it crashed");
    let installs = installs_on(&run, 4);
    assert!(
        installs.iter().any(|&t| t >= restart),
        "n4 installed no snapshot after its restart: {installs:?}"
    );
    assert!(installs.iter().all(|&t| t < crash || t >= restart));
}

#[test]
fn servers_restart_from_a_snapshot_alone_and_keep_its_state() {
    let scenario = common::scenario("raft-snapshot-restart-from-snapshot");
    let options = RunOptions::default();
    let mut sim = registry::simulation::<Raft>(&scenario, &options).unwrap();
    let crash = Time::from_millis(3000);
    // Stop shortly before the crash (heartbeats keep events coming every 50 ms).
    while sim.now() < crash - Time::from_millis(50) && sim.step() {}
    let before: Vec<_> = (0..5)
        .map(|i| sim.world().node(NodeId(i)).unwrap().kv().clone())
        .collect();
    assert!(before.iter().all(|kv| kv == &before[0] && !kv.is_empty()));
    // Step until every server has restarted.
    while sim.world().live_nodes().count() < 5 || sim.now() <= crash {
        assert!(sim.step(), "the run ended before the restarts");
    }
    for i in 0..5 {
        let id = NodeId(i);
        let durable = sim.world().durable(id);
        let log = &durable.log;
        assert!(
            log.entries().is_empty() && durable.snapshot.is_some(),
            "n{i} restarts with {} log entries",
            log.entries().len()
        );
        assert_eq!(
            sim.world().node(id).unwrap().kv(),
            &before[0],
            "n{i} restored a different state from its snapshot"
        );
        assert_eq!(
            sim.world().node(id).unwrap().last_applied(),
            log.snapshot_index()
        );
    }
    let outcome = sim.run();
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
}
