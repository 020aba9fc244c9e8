//! Paxos: the dueling proposers lose liveness (and only liveness) on every seed without backoff
//! and decide on every seed with it; single-decree and Multi-Paxos meet their expectations over
//! sweeps; leader faults hit the Multi-Paxos leader of the highest ballot.

mod common;

use simlab_protocols::paxos::{MultiPaxos, Synod};
use simlab_protocols::sweep::run_seed;
use simlab_protocols::{Protocol, ProtocolConfig, RunOptions, Scenario, Setup, registry};
use simlab_sim::{
    Fault, History, Invariant, InvariantKind, Node, NodeId, Simulation, Time, TraceMode, Violation,
    World,
};
use std::sync::Arc;

/// The seed range over which the duel must livelock, and decide with backoff.
const DUEL_SEEDS: std::ops::Range<u64> = 0..100;

/// The safety invariants a duel must keep.
const SAFETY: [&str; 5] = [
    "Agreement",
    "Validity",
    "LearnedChosen",
    "PromiseKept",
    "Linearizable",
];

#[test]
fn dueling_proposers_without_backoff_never_decide_and_stay_safe() {
    let duel = common::scenario("paxos-dueling-proposers");
    for seed in DUEL_SEEDS {
        let outcome = run_seed(&duel, seed, false);
        let violated: Vec<&str> = outcome
            .violations
            .iter()
            .map(|v| v.invariant.as_str())
            .collect();
        assert_eq!(
            violated,
            ["Decides"],
            "seed {seed}: only liveness may fail\nreplay: {}",
            common::replay("paxos-dueling-proposers", seed)
        );
        assert!(outcome.expect_met, "seed {seed}");
        assert!(SAFETY.iter().all(|s| !outcome.violated(s)));
    }
}

#[test]
fn the_same_duel_with_randomized_backoff_decides() {
    let duel = common::scenario("paxos-dueling-backoff");
    for seed in DUEL_SEEDS {
        let outcome = run_seed(&duel, seed, false);
        assert!(
            outcome.violations.is_empty() && outcome.expect_met,
            "seed {seed}: {:?}\nreplay: {}",
            outcome.violations,
            common::replay("paxos-dueling-backoff", seed)
        );
    }
}

#[test]
fn a_bound_on_rounds_ends_the_duel_and_owes_no_decision() {
    let mut duel = common::scenario("paxos-dueling-proposers");
    let ProtocolConfig::Paxos(config) = &mut duel.protocol else {
        panic!("paxos-dueling-proposers runs single-decree Paxos");
    };
    config.max_rounds = Some(1);
    for seed in 0..20 {
        duel.seed = seed;
        let (outcome, run) = registry::run(&duel, &RunOptions::default());
        // Pre-empted proposers give up instead of duelling for ever: nothing need be decided,
        // and what is decided is safe.
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}",
            outcome.violations
        );
        let rounds = run
            .report()
            .into_iter()
            .find(|item| item.key == "rounds")
            .and_then(|item| item.value.as_u64())
            .expect("a round count");
        assert!(
            (1..=u64::from(duel.nodes)).contains(&rounds),
            "seed {seed}: {rounds} rounds on {} nodes",
            duel.nodes
        );
    }
}

/// The highest ballot round a run's nodes promised, from its report.
fn highest_round(run: &dyn simlab_protocols::registry::Run) -> u64 {
    let ballot = run
        .report()
        .into_iter()
        .find(|item| item.key == "highest_ballot")
        .and_then(|item| item.value.as_str().map(str::to_string))
        .expect("a highest ballot");
    // A ballot reads `round.node`.
    ballot
        .split('.')
        .next()
        .and_then(|round| round.parse().ok())
        .unwrap_or_else(|| panic!("ballot {ballot}"))
}

#[test]
fn a_bound_on_elections_caps_the_rounds_and_owes_no_leader() {
    // Cuts and isolations, no crashes: a node's count of elections lives as long as it does.
    let mut churn = common::scenario("multi-paxos-churn-unreliable");
    if let Some(nemesis) = &mut churn.nemesis {
        nemesis.kinds = vec![
            simlab_sim::NemesisKind::Partition,
            simlab_sim::NemesisKind::Isolate,
        ];
    }
    let unbounded_rounds = (0..10)
        .map(|seed| {
            churn.seed = seed;
            highest_round(&*registry::run(&churn, &RunOptions::default()).1)
        })
        .max()
        .expect("ten seeds");
    assert!(
        unbounded_rounds > u64::from(churn.nodes),
        "without a bound the cuts force more elections than nodes: {unbounded_rounds} rounds"
    );
    let ProtocolConfig::MultiPaxos(config) = &mut churn.protocol else {
        panic!("multi-paxos-churn-unreliable runs Multi-Paxos");
    };
    config.max_elections = Some(1);
    for seed in 0..10 {
        churn.seed = seed;
        let (outcome, run) = registry::run(&churn, &RunOptions::default());
        // Safety still holds; the liveness checks are not made.
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}",
            outcome.violations
        );
        let names: Vec<String> = run.invariants().into_iter().map(|(n, _)| n).collect();
        assert!(
            !names
                .iter()
                .any(|n| n == "LeaderExists" || n == "AllApplied"),
            "{names:?}"
        );
        // Each of five nodes stands once at most, each time one round above what it saw.
        let rounds = highest_round(&*run);
        assert!(
            (1..=u64::from(churn.nodes)).contains(&rounds),
            "seed {seed}: {rounds} rounds on {} nodes",
            churn.nodes
        );
    }
}

#[test]
fn multi_paxos_sweeps_meet_their_expectations() {
    for (name, seeds) in [
        ("multi-paxos-basic", 50),
        ("multi-paxos-churn-unreliable", 200),
        ("paxos-happy-path", 200),
        ("paxos-chaos", 500),
    ] {
        let scenario = common::scenario(name);
        for seed in 0..seeds {
            let outcome = run_seed(&scenario, seed, false);
            assert!(
                outcome.expect_met && outcome.violations.is_empty(),
                "{name} seed {seed}: {:?}\nreplay: {}",
                outcome.violations,
                common::replay(name, seed)
            );
        }
    }
}

/// A leader cut off keeps believing it leads; the next leader fault must hit the new leader,
/// the one with the higher ballot (Multi-Paxos reports its ballot as its leadership epoch).
#[test]
fn leader_faults_hit_the_multi_paxos_leader_of_the_highest_ballot() {
    let text = r#"Scenario(
        name: "crash-the-new-leader",
        protocol: MultiPaxos(),
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
    for seed in 0..20 {
        let options = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let mut sim = registry::simulation::<MultiPaxos>(&scenario, &options).unwrap();
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
        let world = sim.world();
        let ballot = |n: u32| world.node(NodeId(n)).and_then(|p| p.leading());
        let old = ballot(deposed).expect("the cut-off leader still believes it leads");
        assert_ne!(crashed, deposed, "seed {seed}: the deposed leader was hit");
        let newest = (0..5)
            .map(|i| world.durable(NodeId(i)).acceptor.promised)
            .max()
            .unwrap();
        assert!(
            newest > old,
            "seed {seed}: a newer ballot than the deposed leader's {old} was promised"
        );
    }
}

/// Validity catches an acceptor that stores a value no client asked for (planted through the
/// learner-code slot, as a learner's mistake would be).
#[test]
fn validity_catches_an_acceptor_that_makes_up_values() {
    use simlab_protocols::LearnerCode;
    use simlab_protocols::paxos::Value;
    use simlab_protocols::paxos::acceptor::{ACCEPTOR, AcceptorState, Reply, Request};
    fn corrupting(state: &mut AcceptorState, request: Request) -> Reply {
        let request = match request {
            Request::Accept {
                ballot,
                slot,
                value: Value::Client { client, seq, op },
            } => Request::Accept {
                ballot,
                slot,
                value: Value::Client {
                    client,
                    seq: seq + 1_000,
                    op,
                },
            },
            other => other,
        };
        ACCEPTOR.reference()(state, request)
    }
    for name in ["paxos-happy-path", "multi-paxos-basic"] {
        let mut scenario = common::scenario(name);
        scenario.code = LearnerCode::new().with(&ACCEPTOR, corrupting);
        let outcome = run_seed(&scenario, 1, true);
        let first = outcome.violations.first().expect("a violation");
        assert_eq!(first.invariant, "Validity", "{name}: {first:?}");
        assert!(
            first.message.contains("which no client asked for"),
            "{first:?}"
        );
    }
}

/// The liveness checks fire when liveness is really lost: three of five nodes crash for good.
#[test]
fn liveness_checks_catch_a_cluster_without_a_majority() {
    for (protocol, invariant) in [("MultiPaxos()", "LeaderExists"), ("Paxos()", "Decides")] {
        let text = format!(
            r#"Scenario(
            name: "no-majority",
            protocol: {protocol},
            nodes: 5,
            network: (latency_ms: Uniform(1, 10)),
            clients: (count: 2, ops: 50, start_ms: 600, think_ms: (0, 10), timeout_ms: 300, attempts: 50),
            faults: [(at_ms: 500, fault: Crash(0)), (at_ms: 500, fault: Crash(1)), (at_ms: 500, fault: Crash(2))],
            stop_ms: 9000,
            expect: AllHold,
        )"#
        );
        let scenario =
            simlab_protocols::Scenario::parse(std::path::Path::new("inline.ron"), &text).unwrap();
        let outcome = run_seed(&scenario, 1, false);
        assert!(
            outcome.violated(invariant),
            "{protocol}: {invariant} should fail: {:?}",
            outcome.violations
        );
        for safety in SAFETY {
            assert!(!outcome.violated(safety), "{protocol}: {safety}");
        }
    }
}

/// The long sweeps behind the note's figures: every Paxos scenario that expects everything to
/// hold, and every comparison scenario run as Multi-Paxos, over 1,000 seeds.
#[test]
#[ignore = "1,000 seeds of every Paxos scenario take minutes; run with --ignored"]
fn paxos_scenarios_hold_over_a_thousand_seeds() {
    let mut names: Vec<String> = common::scenario_files()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .filter(|n| {
            (n.starts_with("paxos-") || n.starts_with("multi-paxos-") || n.starts_with("compare-"))
                && !n.contains("-bug-")
                && n != "paxos-dueling-proposers"
        })
        .collect();
    names.sort();
    for name in names {
        let mut scenario = common::scenario(&name);
        if name.starts_with("compare-") {
            scenario.protocol = simlab_protocols::ProtocolConfig::parse("MultiPaxos()").unwrap();
            scenario.skip_invariants.clear();
        }
        for seed in 0..1_000 {
            let outcome = run_seed(&scenario, seed, true);
            assert!(
                outcome.violations.is_empty(),
                "{name} seed {seed}: {:?}",
                outcome.violations
            );
        }
    }
}

/// `ViolatesWhileHolding` is met only when the one invariant fails and none of the others does.
#[test]
fn violates_while_holding_needs_both_halves() {
    use simlab_sim::{Expect, ExpectVerdict};
    let duel = common::scenario("paxos-dueling-proposers");
    let (outcome, _) = registry::run(&duel, &RunOptions::default());
    let expect = |violated: &str, held: &[&str]| Expect::ViolatesWhileHolding {
        violated: violated.into(),
        held: held.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        expect("Decides", &SAFETY).verdict(&outcome),
        ExpectVerdict::Met
    );
    // The failure named did not happen.
    assert_eq!(
        expect("Agreement", &[]).verdict(&outcome),
        ExpectVerdict::NotMet
    );
    // Something said to hold failed.
    assert_eq!(
        expect("Decides", &["Agreement", "Decides"]).verdict(&outcome),
        ExpectVerdict::NotMet
    );
    assert_eq!(
        expect("Decides", &SAFETY).to_string(),
        "Decides is violated while these hold: Agreement, Validity, LearnedChosen, PromiseKept, Linearizable"
    );
}

/// Whether every node's view shows a learned value.
fn every_node_learned(run: &dyn simlab_protocols::registry::Run) -> bool {
    run.views().iter().all(|(_, view)| {
        view.fields
            .iter()
            .any(|f| f.name == "learned" && f.value != "-")
    })
}

#[test]
fn learning_through_the_proposer_stays_safe_and_sends_fewer_messages() {
    use simlab_protocols::paxos::synod::Learning;
    for name in ["paxos-happy-path", "paxos-chaos"] {
        let every = common::scenario(name);
        let mut through = every.clone();
        let ProtocolConfig::Paxos(config) = &mut through.protocol else {
            panic!("{name} runs single-decree Paxos");
        };
        config.learning = Learning::ThroughProposer;
        for seed in 0..100 {
            let outcome = run_seed(&through, seed, false);
            assert!(
                outcome.violations.is_empty() && outcome.expect_met,
                "{name} seed {seed}, learning through the proposer: {:?}",
                outcome.violations
            );
        }
        if name != "paxos-happy-path" {
            continue;
        }
        for seed in 0..20 {
            let mut runs = [&every, &through].map(|scenario| {
                let mut scenario = scenario.clone();
                scenario.seed = seed;
                registry::run(&scenario, &RunOptions::default())
            });
            let [(told_all, all_run), (told_one, one_run)] = &mut runs;
            // Each acceptance goes to one proposer instead of to all five nodes, and the
            // proposer's announcement reaches the others all the same.
            assert!(
                told_one.stats.messages_sent < told_all.stats.messages_sent,
                "seed {seed}: {} messages through the proposer, {} to every node",
                told_one.stats.messages_sent,
                told_all.stats.messages_sent
            );
            assert!(every_node_learned(all_run.as_ref()), "seed {seed}");
            assert!(every_node_learned(one_run.as_ref()), "seed {seed}");
        }
    }
}

/// One of a protocol's invariants, checked after every step: it never takes its
/// [`Invariant::unchanged`]'s word for it, but checks what that word says (that checking would
/// pass again).
struct CheckedEveryStep<P: Node>(Box<dyn Invariant<P>>);

impl<P: Node> Clone for CheckedEveryStep<P> {
    fn clone(&self) -> Self {
        CheckedEveryStep(self.0.clone())
    }
}

impl<P: Node> Invariant<P> for CheckedEveryStep<P> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn kind(&self) -> InvariantKind {
        self.0.kind()
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        if self.0.unchanged(world) {
            assert_eq!(
                self.0.clone().check(world),
                Ok(()),
                "{} called a step unchanged, but checking it fails",
                self.0.name()
            );
        }
        self.0.check(world)
    }
    fn check_history(&mut self, history: &History<P::Request, P::Response>) -> Result<(), String> {
        self.0.check_history(history)
    }
    fn undecided(&self) -> Option<String> {
        self.0.undecided()
    }
}

/// The violations of one run of `scenario` (whose protocol settings are `config`) with `seed`;
/// with `every_step`, no invariant skips a check.
fn violations_checking<P: Protocol>(
    scenario: &Scenario,
    config: &P::Config,
    seed: u64,
    every_step: bool,
) -> Vec<Violation> {
    let setup = Arc::new(Setup {
        config: Arc::new(config.clone()),
        nodes: scenario.nodes,
        absent: scenario.absent.clone(),
        code: scenario.code.clone(),
    });
    let mut invariants = P::invariants(&setup);
    if every_step {
        invariants = invariants
            .into_iter()
            .map(|i| Box::new(CheckedEveryStep(i)) as Box<dyn Invariant<P>>)
            .collect();
    }
    let nodes = setup.clone();
    let mut sim = Simulation::new(
        scenario.sim_config(seed, TraceMode::HashOnly),
        move |id| P::node(&nodes, id),
        P::workload(&setup),
        invariants,
    )
    .expect("a valid scenario");
    sim.run().violations
}

/// Paxos's invariants skip the check of a step that wrote no journal they read (a promise
/// alone leaves what is chosen as it was): over the planted bugs and the chaos scenarios,
/// checking every step instead finds the same violations, at the same steps, with the same
/// words, and no skipped step would have failed.
#[test]
fn skipping_an_unchanged_check_changes_no_verdict() {
    let single = [
        "paxos-chaos",
        "paxos-bug-accept-without-promise-check",
        "paxos-bug-ignore-accepted-value",
        "paxos-bug-learner-mixes-ballots",
        "paxos-dueling-proposers",
    ];
    let multi = [
        "multi-paxos-churn-unreliable",
        "multi-paxos-bug-volatile-promise",
        "multi-paxos-bug-skip-phase1",
        "multi-paxos-bug-ignore-accepted-value",
    ];
    let mut violated = 0;
    for name in single.into_iter().chain(multi) {
        let scenario = common::scenario(name);
        for seed in 0..10 {
            let (skipping, every_step) = match &scenario.protocol {
                ProtocolConfig::Paxos(config) => (
                    violations_checking::<Synod>(&scenario, config, seed, false),
                    violations_checking::<Synod>(&scenario, config, seed, true),
                ),
                ProtocolConfig::MultiPaxos(config) => (
                    violations_checking::<MultiPaxos>(&scenario, config, seed, false),
                    violations_checking::<MultiPaxos>(&scenario, config, seed, true),
                ),
                _ => panic!("{name} runs Paxos"),
            };
            assert_eq!(skipping, every_step, "{name}, seed {seed}");
            violated += usize::from(
                skipping
                    .iter()
                    .any(|v| SAFETY.contains(&v.invariant.as_str())),
            );
        }
    }
    // The comparison covers runs that break safety, not only runs that keep it.
    assert!(violated >= 10, "{violated} runs broke a safety invariant");
}
