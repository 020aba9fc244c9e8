//! The registry: maps a scenario's `protocol:` to a node type, builds the simulation, and hides
//! the protocol's types behind [`Run`] so the CLI and the TUI can drive any protocol.

use crate::atomic_commit::invariants::{self, CommitNode};
use crate::atomic_commit::{self, Blocking, CommitLog, CommitSettings, Transfer};
use crate::raft::{self, KvWorkload, Raft, RaftConfig};
use crate::scenario::Scenario;
use crate::three_phase_commit::{ThreePc, ThreePcConfig};
use crate::two_phase_commit::{TwoPc, TwoPcConfig};
use serde::{Deserialize, Serialize};
use serde_json::json;
use simlab_sim::{
    Invariant, InvariantKind, Node, NodeId, NodeStatus, NodeView, Outcome, Simulation, StepRecord,
    Time, TraceMode, Workload,
};
use std::sync::Arc;

/// A protocol and its settings, as a scenario names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtocolConfig {
    /// Two-phase commit.
    TwoPhaseCommit(#[serde(default)] TwoPcConfig),
    /// Three-phase commit.
    ThreePhaseCommit(#[serde(default)] ThreePcConfig),
    /// Raft replicating a key-value store.
    Raft(#[serde(default)] RaftConfig),
}

impl ProtocolConfig {
    /// The protocol's name, for reports.
    pub fn name(&self) -> &'static str {
        match self {
            ProtocolConfig::TwoPhaseCommit(_) => "two-phase commit",
            ProtocolConfig::ThreePhaseCommit(_) => "three-phase commit",
            ProtocolConfig::Raft(_) => "Raft",
        }
    }

    /// Checks the settings for a cluster of `nodes`.
    pub fn validate(&self, nodes: u32) -> Result<(), (String, String)> {
        match self {
            ProtocolConfig::TwoPhaseCommit(c) => c.validate(nodes),
            ProtocolConfig::ThreePhaseCommit(c) => c.validate(nodes),
            ProtocolConfig::Raft(c) => c.validate(nodes),
        }
    }

    /// Every invariant the protocol checks, with its kind.
    pub fn invariant_names(&self, nodes: u32) -> Vec<(String, InvariantKind)> {
        fn names<P: Node>(list: Vec<Box<dyn Invariant<P>>>) -> Vec<(String, InvariantKind)> {
            list.iter()
                .map(|i| (i.name().to_string(), i.kind()))
                .collect()
        }
        let nodes = nodes.max(3);
        match self {
            ProtocolConfig::TwoPhaseCommit(c) => names::<TwoPc>(invariants::all(&c.bank(nodes))),
            ProtocolConfig::ThreePhaseCommit(c) => {
                names::<ThreePc>(invariants::all(&c.bank(nodes)))
            }
            ProtocolConfig::Raft(_) => names::<Raft>(raft::invariants::all()),
        }
    }
}

/// Options for one run of a scenario.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// The seed; the scenario's own when `None`.
    pub seed: Option<u64>,
    /// How much trace to keep.
    pub trace: TraceMode,
    /// Stop at the first violation (sweeps).
    pub stop_on_violation: bool,
}

/// A running simulation of any protocol.
pub trait Run {
    /// Takes one step; false when the run is over.
    fn step(&mut self) -> bool;
    /// Ends the run and returns the outcome (idempotent).
    fn finish(&mut self) -> Outcome;
    /// Step records kept so far ([`TraceMode::Full`]).
    fn records(&self) -> &[StepRecord];
    /// Each node's status and view now.
    fn views(&self) -> Vec<(NodeStatus, NodeView)>;
    /// Invariant names and kinds.
    fn invariants(&self) -> Vec<(String, InvariantKind)>;
    /// Protocol-specific figures (e.g. 2PC blocking times).
    fn report(&self) -> Vec<ReportItem>;
    /// A copy that continues exactly like this one.
    fn snapshot(&self) -> Box<dyn Run>;
    /// Bytes held by the compact trace ([`TraceMode::Compact`]).
    fn compact_bytes(&self) -> usize;
    /// The compact records kept so far ([`TraceMode::Compact`]).
    fn compact_records(&self) -> &[simlab_sim::CompactStep];
    /// Changes how much trace is kept from now on (never the run itself).
    fn set_trace(&mut self, mode: TraceMode);
    /// Takes the compact records kept so far.
    fn drain_compact_records(&mut self) -> Vec<simlab_sim::CompactStep>;
    /// Steps taken so far.
    fn steps(&self) -> u64;
    /// Virtual time now.
    fn now(&self) -> Time;
    /// Violations found so far.
    fn violations(&self) -> &[simlab_sim::Violation];
    /// Groups of nodes that reach each other, and the directed links that are cut.
    fn partition(&self) -> (Vec<Vec<NodeId>>, Vec<(NodeId, NodeId)>);
    /// Messages in flight per directed link.
    fn in_flight(&self) -> Vec<(NodeId, NodeId, usize)>;
    /// Faults so far.
    fn faults(&self) -> &[simlab_sim::FaultRecord];
}

struct Instance<P: Node> {
    sim: Simulation<P>,
    report: Reporter<P>,
}

/// Computes a protocol's report from the finished simulation.
type Reporter<P> = Arc<dyn Fn(&Simulation<P>) -> Vec<ReportItem>>;

/// One protocol-specific figure of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportItem {
    /// Its key in JSON output.
    pub key: &'static str,
    /// Its label in the readable summary.
    pub label: &'static str,
    /// Its value for people; empty for figures only JSON carries (long lists).
    pub text: String,
    /// Its value for programs.
    pub value: serde_json::Value,
}

impl<P: Node> Run for Instance<P> {
    fn step(&mut self) -> bool {
        self.sim.step()
    }
    fn finish(&mut self) -> Outcome {
        self.sim.finish()
    }
    fn records(&self) -> &[StepRecord] {
        self.sim.records()
    }
    fn views(&self) -> Vec<(NodeStatus, NodeView)> {
        self.sim.views()
    }
    fn invariants(&self) -> Vec<(String, InvariantKind)> {
        self.sim.invariant_names()
    }
    fn report(&self) -> Vec<ReportItem> {
        (self.report)(&self.sim)
    }
    fn compact_records(&self) -> &[simlab_sim::CompactStep] {
        self.sim.compact_records()
    }
    fn set_trace(&mut self, mode: TraceMode) {
        self.sim.set_trace_mode(mode);
    }
    fn drain_compact_records(&mut self) -> Vec<simlab_sim::CompactStep> {
        self.sim.drain_compact_records()
    }
    fn steps(&self) -> u64 {
        self.sim.stats().steps
    }
    fn now(&self) -> Time {
        self.sim.now()
    }
    fn violations(&self) -> &[simlab_sim::Violation] {
        self.sim.violations()
    }
    fn partition(&self) -> (Vec<Vec<NodeId>>, Vec<(NodeId, NodeId)>) {
        let reach = self.sim.reachability();
        (reach.components(), reach.cut_links())
    }
    fn in_flight(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.sim.in_flight()
    }
    fn faults(&self) -> &[simlab_sim::FaultRecord] {
        self.sim.fault_log()
    }
    fn compact_bytes(&self) -> usize {
        self.sim.compact_trace_bytes()
    }
    fn snapshot(&self) -> Box<dyn Run> {
        Box::new(Instance {
            sim: self.sim.clone(),
            report: self.report.clone(),
        })
    }
}

/// Builds the simulation a scenario describes, ready to step.
///
/// # Panics
/// If the scenario was not validated ([`Scenario::load`] and [`Scenario::parse`] validate).
pub fn build(scenario: &Scenario, options: &RunOptions) -> Box<dyn Run> {
    let nodes = scenario.nodes;
    match &scenario.protocol {
        ProtocolConfig::TwoPhaseCommit(c) => {
            let c = Arc::new(c.clone());
            commit_instance(scenario, options, c.clone(), move |id| {
                TwoPc::new(id, c.clone(), nodes)
            })
        }
        ProtocolConfig::ThreePhaseCommit(c) => {
            let c = Arc::new(c.clone());
            commit_instance(scenario, options, c.clone(), move |id| {
                ThreePc::new(id, c.clone(), nodes)
            })
        }
        ProtocolConfig::Raft(c) => {
            let report: Reporter<Raft> = Arc::new(raft_report);
            Box::new(Instance {
                sim: raft_simulation(scenario, options, c),
                report,
            })
        }
    }
}

/// 2PC and 3PC: the bank workload, the atomic-commit invariants and the blocking report.
fn commit_instance<P: CommitNode>(
    scenario: &Scenario,
    options: &RunOptions,
    settings: Arc<impl CommitSettings>,
    factory: impl Fn(NodeId) -> P + 'static,
) -> Box<dyn Run> {
    let invariants = invariants::all(&settings.bank(scenario.nodes));
    let workload: Box<dyn Workload<Transfer>> = Box::new(settings.workload());
    let sim = simulation(scenario, options, factory, Some(workload), invariants);
    Box::new(Instance {
        sim,
        report: commit_report(settings.blocking_threshold()),
    })
}

fn raft_simulation(scenario: &Scenario, options: &RunOptions, c: &RaftConfig) -> Simulation<Raft> {
    let c = Arc::new(c.clone());
    let nodes = scenario.nodes;
    let workload: Box<dyn Workload<raft::KvRequest>> = Box::new(KvWorkload {
        keys: c.keys,
        get_percent: c.get_percent,
        put_percent: c.put_percent,
    });
    let factory = move |id: NodeId| Raft::new(id, nodes, c.clone());
    simulation(
        scenario,
        options,
        factory,
        Some(workload),
        raft::invariants::all(),
    )
}

/// The engine for a scenario: its configuration with these options, minus skipped invariants.
fn simulation<P: Node>(
    scenario: &Scenario,
    options: &RunOptions,
    factory: impl Fn(NodeId) -> P + 'static,
    workload: Option<Box<dyn Workload<P::Request>>>,
    mut invariants: Vec<Box<dyn Invariant<P>>>,
) -> Simulation<P> {
    let mut config = scenario.sim_config(options.seed.unwrap_or(scenario.seed), options.trace);
    config.stop_on_violation = options.stop_on_violation;
    invariants.retain(|i| !scenario.skip_invariants.iter().any(|s| s == i.name()));
    Simulation::new(config, factory, workload, invariants)
        .expect("scenario validated before building")
}

/// Builds and runs a scenario to the end.
pub fn run(scenario: &Scenario, options: &RunOptions) -> (Outcome, Box<dyn Run>) {
    let mut run = build(scenario, options);
    while run.step() {}
    let outcome = run.finish();
    (outcome, run)
}

/// Runs a Raft scenario to the end and returns its client history (for tests and exports).
///
/// # Panics
/// If the scenario is not a Raft scenario, or was not validated.
pub fn raft_history(
    scenario: &Scenario,
    options: &RunOptions,
) -> simlab_sim::History<raft::KvRequest, raft::RaftResponse> {
    let ProtocolConfig::Raft(c) = &scenario.protocol else {
        panic!("{} is not a Raft scenario", scenario.name);
    };
    let mut sim = raft_simulation(scenario, options, c);
    sim.run();
    sim.history().clone()
}

fn raft_report(sim: &Simulation<Raft>) -> Vec<ReportItem> {
    let world = sim.world();
    let n = world.cluster_size();
    let highest = raft::invariants::highest_term((0..n).map(|i| world.durable(NodeId(i))));
    let commit = world
        .live_nodes()
        .map(|(_, r)| r.commit_index())
        .max()
        .unwrap_or(0);
    let mut items = vec![
        item(
            "highest_term",
            "highest term",
            highest.to_string(),
            json!(highest),
        ),
        item(
            "commit_index",
            "entries committed",
            commit.to_string(),
            json!(commit),
        ),
    ];
    for (key, value) in sim.observations() {
        let (label, text) = match key {
            "leaders_elected" => ("leaders elected", value.to_string()),
            "entries_applied" => ("entries applied", value.to_string()),
            _ => ("", String::new()),
        };
        items.push(item(key, label, text, value));
    }
    items
}

/// Atomic commit's figures: commits, and how long participants stayed uncertain (holding
/// locks), per transaction and participant; `timeout` separates real blocking from latency.
fn commit_report<P: Node<Durable = CommitLog>>(timeout: Time) -> Reporter<P> {
    Arc::new(move |sim: &Simulation<P>| {
        let world = sim.world();
        let logs = (0..world.cluster_size()).map(|i| (NodeId(i), world.durable(NodeId(i))));
        let blocking = Blocking::measure(logs, sim.now());
        let committed = world
            .durable(atomic_commit::COORDINATOR)
            .txs()
            .values()
            .filter(|r| matches!(r.decision, Some((atomic_commit::Decision::Commit, _))))
            .count();
        let blocked = blocking.blocked_longer_than(timeout);
        let still: Vec<String> = blocking
            .still_blocked
            .iter()
            .map(|(tx, n)| format!("{tx} at {n}"))
            .collect();
        let spans: Vec<serde_json::Value> = blocking
            .spans
            .iter()
            .map(|(tx, node, t)| json!({"tx": tx.to_string(), "node": node.0, "uncertain_us": t.as_micros()}))
            .collect();
        let still_text = match still.len() {
            0 => "none".to_string(),
            n if n <= 4 => still.join(", "),
            n => format!("{} (and {} more)", still[..4].join(", "), n - 4),
        };
        vec![
            item(
                "committed",
                "transactions committed",
                committed.to_string(),
                json!(committed),
            ),
            item(
                "uncertain_total_us",
                "uncertain, in total",
                blocking.total().to_string(),
                json!(blocking.total().as_micros()),
            ),
            item(
                "uncertain_longest_us",
                "uncertain, longest",
                blocking.max().to_string(),
                json!(blocking.max().as_micros()),
            ),
            item(
                "blocked",
                "blocked (over timeout)",
                format!("{blocked} of {} yes votes", blocking.spans.len()),
                json!(blocked),
            ),
            item(
                "still_blocked",
                "still blocked at end",
                still_text,
                json!(still),
            ),
            item(
                "uncertain_spans",
                "uncertain spans",
                String::new(),
                json!(spans),
            ),
        ]
    })
}

fn item(
    key: &'static str,
    label: &'static str,
    text: String,
    value: serde_json::Value,
) -> ReportItem {
    ReportItem {
        key,
        label,
        text,
        value,
    }
}
