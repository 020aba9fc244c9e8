//! Raft behaviours the scenario expectations alone do not pin down.

mod common;

use simlab_protocols::raft::RaftConfig;
use simlab_protocols::{ProtocolConfig, RunOptions, registry};
use simlab_sim::{Completion, Time, TraceMode};

/// The report's list of elections: `(term, at)`.
fn elections(run: &dyn simlab_protocols::Run) -> Vec<(u64, Time)> {
    let items = run.report();
    let list = items
        .iter()
        .find(|i| i.key == "elections")
        .expect("elections in the report");
    list.value
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["term"].as_u64().unwrap(),
                Time::from_micros(e["at_us"].as_u64().unwrap()),
            )
        })
        .collect()
}

#[test]
fn without_prevote_a_rejoining_server_forces_an_election_and_with_it_does_not() {
    let heal = Time::from_millis(3500);
    let (outcome, run) = registry::run(
        &common::scenario("raft-rejoin-disrupts"),
        &RunOptions::default(),
    );
    assert!(outcome.violations.is_empty());
    let after_heal = elections(run.as_ref())
        .iter()
        .filter(|(_, at)| *at >= heal)
        .count();
    assert!(
        after_heal >= 1,
        "the rejoining server's inflated term disrupted the leader"
    );

    let (outcome, run) = registry::run(
        &common::scenario("raft-rejoin-prevote"),
        &RunOptions::default(),
    );
    assert!(outcome.violations.is_empty());
    let all = elections(run.as_ref());
    assert_eq!(all.len(), 1, "one leader for the whole run: {all:?}");
    let highest = run
        .report()
        .iter()
        .find(|i| i.key == "highest_term")
        .unwrap()
        .value
        .as_u64()
        .unwrap();
    assert_eq!(highest, 1, "the isolated server never raised its term");
}

#[test]
fn without_a_majority_no_operation_completes_until_the_heal() {
    let scenario = common::scenario("raft-no-majority");
    let (from, to) = (Time::from_millis(1000), Time::from_millis(4000));
    let options = RunOptions::default();
    let mut run = registry::build(&scenario, &options);
    while run.step() {}
    let outcome = run.finish();
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    // Operations complete before the split and after the heal, none while every server is alone
    // (allowing for replies already in flight when the split began).
    let grace = Time::from_millis(50);
    let history = common::raft_history(&scenario, &options);
    let during: Vec<_> = history
        .ops
        .iter()
        .filter(|op| matches!(op.completion, Some(Completion::Ok(_))))
        .filter_map(|op| op.completed)
        .filter(|t| *t > from + grace && *t < to)
        .collect();
    assert!(
        during.is_empty(),
        "operations completed without a majority at {during:?}"
    );
    assert!(
        history
            .ops
            .iter()
            .any(|op| op.completed.is_some_and(|t| t < from))
    );
    assert!(
        history
            .ops
            .iter()
            .any(|op| op.completed.is_some_and(|t| t > to))
    );
}

#[test]
fn fast_backup_repairs_a_divergent_log_in_fewer_round_trips() {
    let rejections = |fast: bool| {
        let mut scenario = common::scenario("raft-fast-backup");
        let ProtocolConfig::Raft(c) = &mut scenario.protocol else {
            panic!("a Raft scenario")
        };
        *c = RaftConfig {
            fast_backup: fast,
            ..c.clone()
        };
        let options = RunOptions {
            trace: TraceMode::Full,
            ..RunOptions::default()
        };
        let (outcome, run) = registry::run(&scenario, &options);
        assert!(
            outcome.violations.is_empty(),
            "fast_backup {fast}: {:?}",
            outcome.violations
        );
        // The old leader, isolated at 0.5 s, rejoins at 3.5 s with a long conflicting suffix;
        // count the AppendEntries it rejects until it first accepts one (its log matches the
        // leader's from there). Later rejections are pipelined batches that overtook each
        // other, which have nothing to do with backing up.
        let simlab_sim::Fault::Isolate(old) = outcome.faults[0].fault else {
            panic!("the first fault isolates a node")
        };
        let heal = Time::from_millis(3500);
        run.records()
            .iter()
            .filter(|r| {
                r.kind == simlab_sim::StepKind::Deliver && r.from == Some(simlab_sim::NodeId(old))
            })
            .filter(|r| r.time() >= heal && r.summary.contains("AppendReply"))
            .take_while(|r| r.summary.contains("success: false"))
            .count()
    };
    let (fast, slow) = (rejections(true), rejections(false));
    println!(
        "rejections while repairing the old leader's log: fast backup {fast}, one entry at a time {slow}"
    );
    assert!(
        fast * 4 < slow,
        "fast backup: {fast} rejections, one entry at a time: {slow}"
    );
}

/// A cut-off leader keeps believing it leads its old term while the majority elects a new one.
/// "Crash the leader" must then take the new leader (the highest term), not the deposed one.
#[test]
fn leader_faults_hit_the_leader_of_the_highest_term() {
    use simlab_protocols::raft::{Raft, Role};
    use simlab_sim::Fault;
    let text = r#"Scenario(
        name: "crash-the-new-leader",
        protocol: Raft(),
        nodes: 5,
        network: (latency_ms: Uniform(1, 10)),
        clients: (count: 2, ops: 20, think_ms: (0, 10), timeout_ms: 300, attempts: 10),
        faults: [(at_ms: 1000, fault: IsolateLeader), (at_ms: 2500, fault: CrashLeader)],
        stop_ms: 4000,
        expect: AllHold,
    )"#;
    let scenario =
        simlab_protocols::Scenario::parse(std::path::Path::new("inline.ron"), text).unwrap();
    let crash_at = Time::from_millis(2500);
    let mut deposed_had_lower_id = 0;
    for seed in 0..20 {
        let options = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let mut sim = registry::simulation::<Raft>(&scenario, &options).unwrap();
        while sim.now() < crash_at && sim.step() {}
        let faults = sim.fault_log().to_vec();
        let [isolate, crash] = &faults[..] else {
            panic!("seed {seed}: two faults, got {faults:?}");
        };
        let Fault::Isolate(deposed) = isolate.fault else {
            panic!("seed {seed}: a leader to isolate, got {isolate:?}");
        };
        let Fault::Crash(crashed) = crash.fault else {
            panic!("seed {seed}: a leader to crash, got {crash:?}");
        };
        assert_ne!(crashed, deposed, "seed {seed}: the deposed leader was hit");
        let world = sim.world();
        let deposed_node = world.node(simlab_sim::NodeId(deposed)).unwrap();
        assert_eq!(
            deposed_node.role(),
            Role::Leader,
            "seed {seed}: the cut-off leader still believes it leads"
        );
        let term = |n: u32| world.durable(simlab_sim::NodeId(n)).current_term;
        assert!(
            term(crashed) > term(deposed),
            "seed {seed}: n{crashed} (term {}) is not newer than n{deposed} (term {})",
            term(crashed),
            term(deposed)
        );
        if deposed < crashed {
            deposed_had_lower_id += 1;
        }
    }
    // Where the deposed leader has the lower id, lowest-id-first would have picked it.
    assert!(deposed_had_lower_id > 0, "no seed tells the rules apart");
}

/// The Figure 8 unreliable schedule: after ten seconds of leader churn on a lossy, long-reordering
/// network, a leader and every acknowledged operation applied within ten seconds, on every seed.
/// Before refused vote requests stopped restarting election timers, 2 of 2,000 seeds had no
/// leader for over five seconds after the reconnect.
fn figure8_unreliable_recovers(seeds: std::ops::Range<u64>) {
    let scenario = common::scenario("raft-figure8-unreliable");
    for seed in seeds {
        let outcome = simlab_protocols::sweep::run_seed(&scenario, seed, false);
        assert!(
            !outcome.not_passed(),
            "seed {seed}: {:?}\nreplay: {}",
            outcome.failure(),
            common::replay("raft-figure8-unreliable", seed)
        );
    }
}

#[test]
fn figure8_unreliable_recovers_on_the_first_seeds() {
    figure8_unreliable_recovers(0..200);
}

#[test]
#[ignore = "1,000 seeds take about a minute; run with --ignored"]
fn figure8_unreliable_recovers_on_a_thousand_seeds() {
    figure8_unreliable_recovers(0..1_000);
}

/// Twenty-client histories under unreliable churn that the checker once gave up on (over
/// 3,000,000 search states each) are decided: a read that shows the order of a burst of
/// concurrent appends rules the other orders out (28, 30, 56, 70), also while puts the read
/// cannot start from are pending (98, 102, 167), and states no remaining read can see count as
/// one, so the orders of appends a later put overwrites unseen are not told apart (257, 272,
/// 623).
#[test]
fn twenty_client_histories_once_undecided_are_decided() {
    let scenario = common::scenario("raft-churn-many-clients");
    for seed in [28, 30, 56, 70, 98, 102, 167, 257, 272, 623] {
        let outcome = simlab_protocols::sweep::run_seed(&scenario, seed, false);
        assert!(
            !outcome.not_passed(),
            "seed {seed}: {:?}\nreplay: {}",
            outcome.failure(),
            common::replay("raft-churn-many-clients", seed)
        );
    }
}

/// A refused vote leaves a note with its reason in the trace (what the TUI's detail pane shows):
/// the election restriction and a vote already given, both seen in the Figure 8 run.
#[test]
fn a_refused_vote_says_why() {
    let scenario = common::scenario("raft-figure8");
    let options = simlab_protocols::RunOptions {
        trace: simlab_sim::TraceMode::Full,
        ..Default::default()
    };
    let (_, run) = simlab_protocols::registry::run(&scenario, &options);
    let notes: Vec<&String> = run.records().iter().flat_map(|r| &r.notes).collect();
    let refusals: Vec<&&String> = notes.iter().filter(|n| n.starts_with("refuses")).collect();
    assert!(
        refusals
            .iter()
            .any(|n| n.contains("vote for term") && n.ends_with(": not as up to date")),
        "{refusals:?}"
    );
    assert!(
        refusals.iter().any(|n| n.contains(": already voted for n")),
        "{refusals:?}"
    );
    assert!(notes.iter().any(|n| n.starts_with("votes for n")));
}
