//! The registry: the one list of protocols. It generates the scenario's `protocol:` enum and
//! every dispatch from it, builds the simulation a scenario describes, and hides the protocol's
//! types behind [`Run`] so the CLI, the TUI and the tests can drive any protocol.
//!
//! The list itself is in `lib.rs` (it declares the protocols' modules too): adding a protocol is
//! one line there; nothing else in the workspace names protocols one by one.

pub use crate::ProtocolConfig;
use crate::protocol::{Protocol, ReportItem, Setup, Visit, VisitMut};
use crate::scenario::Scenario;
use simlab_sim::FieldError;
use simlab_sim::explore::{ExploreLimits, Report as ExploreReport, Search};
use simlab_sim::linearizability::Op;
use simlab_sim::linearizability::models::{KvInput, KvOutput};
use simlab_sim::network::LinkConfig;
use simlab_sim::{
    Choice, FaultBudget, InvariantKind, LatencyMs, NetworkConfig, NodeId, NodeStatus, NodeView,
    NotEnabled, Outcome, Simulation, StepRecord, Time, TraceMode,
};
use std::sync::Arc;

impl ProtocolConfig {
    /// A protocol with its settings, written as a scenario's `protocol:` line writes it:
    /// `MultiPaxos(heartbeat_ms: 20)`. Settings are not validated here (that needs the cluster
    /// size: see [`crate::Scenario::validate`]).
    pub fn parse(text: &str) -> Result<ProtocolConfig, String> {
        simlab_sim::load::parse_ron(std::path::Path::new("protocol"), text)
            .map_err(|e| e.to_string())
    }

    /// The protocol's name, for reports.
    pub fn name(&self) -> &'static str {
        struct Name;
        impl Visit for Name {
            type Output = &'static str;
            fn visit<P: Protocol>(self, _: &P::Config) -> &'static str {
                P::NAME
            }
        }
        self.visit(Name)
    }

    /// Checks the settings for a cluster of `nodes`.
    pub fn validate(&self, nodes: u32) -> Result<(), FieldError> {
        struct Validate(u32);
        impl Visit for Validate {
            type Output = Result<(), FieldError>;
            fn visit<P: Protocol>(self, config: &P::Config) -> Self::Output {
                P::validate(config, self.0)
            }
        }
        self.visit(Validate(nodes))
    }

    /// Checks the nodes absent at start.
    pub fn validate_absent(&self, absent: &[u32]) -> Result<(), FieldError> {
        struct ValidateAbsent<'a>(&'a [u32]);
        impl Visit for ValidateAbsent<'_> {
            type Output = Result<(), FieldError>;
            fn visit<P: Protocol>(self, config: &P::Config) -> Self::Output {
                P::validate_absent(config, self.0)
            }
        }
        self.visit(ValidateAbsent(absent))
    }

    /// The smallest cluster the protocol works on.
    pub fn min_nodes(&self) -> u32 {
        struct MinNodes;
        impl Visit for MinNodes {
            type Output = u32;
            fn visit<P: Protocol>(self, config: &P::Config) -> u32 {
                P::min_nodes(config)
            }
        }
        self.visit(MinNodes)
    }

    /// Switches off every planted bug.
    pub fn clear_bugs(&mut self) {
        struct ClearBugs;
        impl VisitMut for ClearBugs {
            type Output = ();
            fn visit<P: Protocol>(self, config: &mut P::Config) {
                P::clear_bugs(config);
            }
        }
        self.visit_mut(ClearBugs)
    }

    /// Every invariant the protocol checks, with its kind.
    pub fn invariant_names(&self, nodes: u32) -> Vec<(String, InvariantKind)> {
        struct Names(u32);
        impl Visit for Names {
            type Output = Vec<(String, InvariantKind)>;
            fn visit<P: Protocol>(self, config: &P::Config) -> Self::Output {
                let setup = Setup {
                    config: Arc::new(config.clone()),
                    nodes: self.0.max(P::min_nodes(config)).max(1),
                    absent: Vec::new(),
                    code: Default::default(),
                };
                P::invariants(&setup)
                    .iter()
                    .map(|i| (i.name().to_string(), i.kind()))
                    .collect()
            }
        }
        self.visit(Names(nodes))
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
    /// Takes the step records kept so far (to stream them out).
    fn drain_records(&mut self) -> Vec<StepRecord>;
    /// Each node's status and view now.
    fn views(&self) -> Vec<(NodeStatus, NodeView)>;
    /// One node's status and view now.
    fn view(&self, node: NodeId) -> (NodeStatus, NodeView);
    /// Invariant names and kinds.
    fn invariants(&self) -> Vec<(String, InvariantKind)>;
    /// Protocol-specific figures (e.g. 2PC blocking times).
    fn report(&self) -> Vec<ReportItem>;
    /// The client history as key-value operations, for stores that speak the key-value API.
    fn kv_history(&self) -> Option<Vec<Op<KvInput, KvOutput>>>;
    /// A copy that continues exactly like this one, sharing state with it until either writes.
    fn snapshot(&mut self) -> Box<dyn Run>;
    /// Bytes held by the compact trace ([`TraceMode::Compact`]).
    fn compact_bytes(&self) -> usize;
    /// The compact records kept so far ([`TraceMode::Compact`]).
    fn compact_records(&self) -> Vec<simlab_sim::CompactStep>;
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
    /// Groups of nodes that reach each other, how many links are cut, and which are cut one
    /// way only.
    fn partition(&self) -> simlab_sim::PartitionSummary;
    /// Messages in flight per directed link.
    fn in_flight(&self) -> Vec<(NodeId, NodeId, usize)>;
    /// Faults so far.
    fn faults(&self) -> &[simlab_sim::FaultRecord];
    /// When each client operation ran and how it ended.
    fn op_timings(&self) -> Vec<simlab_sim::OpTiming>;
    /// Each node's status now (cheaper than [`Run::views`]).
    fn statuses(&self) -> Vec<NodeStatus>;
    /// Runs a chosen enabled event as the next step ([`Simulation::step_chosen`]).
    fn step_chosen(&mut self, choice: Choice) -> Result<(), NotEnabled>;
    /// Ends a chosen run ([`Simulation::end_chosen`]).
    fn end_chosen(&mut self);
    /// From here on, takes chosen steps as an exploration does ([`Simulation::explore_mode`]:
    /// copies of a message in flight merge, late client answers and timeouts leave the queue), the faults `start` allows may be chosen
    /// ([`Simulation::choose_faults`]), and timeouts wait for messages if it assumes
    /// synchrony ([`Simulation::assume_synchrony`]).
    fn branch(&mut self, start: &ExploreStart);
}

struct Instance<P: Protocol> {
    sim: Simulation<P>,
    setup: Arc<Setup<P::Config>>,
}

impl<P: Protocol> Run for Instance<P> {
    fn step(&mut self) -> bool {
        self.sim.step()
    }
    fn finish(&mut self) -> Outcome {
        self.sim.finish()
    }
    fn records(&self) -> &[StepRecord] {
        self.sim.records()
    }
    fn drain_records(&mut self) -> Vec<StepRecord> {
        self.sim.drain_records()
    }
    fn views(&self) -> Vec<(NodeStatus, NodeView)> {
        self.sim.views()
    }
    fn view(&self, node: NodeId) -> (NodeStatus, NodeView) {
        self.sim.view(node)
    }
    fn invariants(&self) -> Vec<(String, InvariantKind)> {
        self.sim.invariant_names()
    }
    fn report(&self) -> Vec<ReportItem> {
        P::report(&self.setup, &self.sim)
    }
    fn kv_history(&self) -> Option<Vec<Op<KvInput, KvOutput>>> {
        P::kv_history(&self.sim)
    }
    fn compact_records(&self) -> Vec<simlab_sim::CompactStep> {
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
    fn partition(&self) -> simlab_sim::PartitionSummary {
        self.sim.reachability().summary()
    }
    fn in_flight(&self) -> Vec<(NodeId, NodeId, usize)> {
        self.sim.in_flight()
    }
    fn faults(&self) -> &[simlab_sim::FaultRecord] {
        self.sim.fault_log()
    }
    fn op_timings(&self) -> Vec<simlab_sim::OpTiming> {
        self.sim.history().timings()
    }
    fn statuses(&self) -> Vec<NodeStatus> {
        (0..self.sim.config().nodes)
            .map(|i| self.sim.status(NodeId(i)))
            .collect()
    }
    fn step_chosen(&mut self, choice: Choice) -> Result<(), NotEnabled> {
        self.sim.step_chosen(choice)
    }
    fn end_chosen(&mut self) {
        self.sim.end_chosen();
    }
    fn branch(&mut self, start: &ExploreStart) {
        branch(&mut self.sim, start);
    }
    fn compact_bytes(&self) -> usize {
        self.sim.compact_trace_bytes()
    }
    fn snapshot(&mut self) -> Box<dyn Run> {
        Box::new(Instance {
            sim: self.sim.snapshot(),
            setup: self.setup.clone(),
        })
    }
}

/// Builds the simulation a scenario describes, ready to step.
///
/// # Panics
/// If the scenario was not validated ([`Scenario::load`] and [`Scenario::parse`] validate).
pub fn build(scenario: &Scenario, options: &RunOptions) -> Box<dyn Run> {
    struct Build<'a>(&'a Scenario, &'a RunOptions);
    impl Visit for Build<'_> {
        type Output = Box<dyn Run>;
        fn visit<P: Protocol>(self, config: &P::Config) -> Box<dyn Run> {
            let (sim, setup) = instance::<P>(self.0, config, self.1);
            Box::new(Instance { sim, setup })
        }
    }
    scenario.protocol.visit(Build(scenario, options))
}

/// The simulation of a scenario as its protocol's own type, for code that needs the protocol's
/// types (tests reading a node's state, typed histories); `None` if the scenario runs another
/// protocol than `P`.
///
/// # Panics
/// If the scenario was not validated.
pub fn simulation<P: Protocol>(scenario: &Scenario, options: &RunOptions) -> Option<Simulation<P>> {
    struct Typed<'a, P>(&'a Scenario, &'a RunOptions, std::marker::PhantomData<P>);
    impl<P: Protocol> Visit for Typed<'_, P> {
        type Output = Option<Simulation<P>>;
        fn visit<Q: Protocol>(self, config: &Q::Config) -> Option<Simulation<P>> {
            let config = (config as &dyn std::any::Any).downcast_ref::<P::Config>()?;
            Some(instance::<P>(self.0, config, self.1).0)
        }
    }
    scenario
        .protocol
        .visit(Typed(scenario, options, std::marker::PhantomData))
}

fn instance<P: Protocol>(
    scenario: &Scenario,
    config: &P::Config,
    options: &RunOptions,
) -> (Simulation<P>, Arc<Setup<P::Config>>) {
    let setup = Arc::new(Setup {
        config: Arc::new(config.clone()),
        nodes: scenario.nodes,
        absent: scenario.absent.clone(),
        code: scenario.code.clone(),
    });
    let mut sim_config = scenario.sim_config(options.seed.unwrap_or(scenario.seed), options.trace);
    sim_config.stop_on_violation = options.stop_on_violation;
    let mut invariants = P::invariants(&setup);
    invariants.retain(|i| !scenario.skip_invariants.iter().any(|s| s == i.name()));
    let factory_setup = setup.clone();
    let factory = move |id: NodeId| P::node(&factory_setup, id);
    let sim = Simulation::new(sim_config, factory, P::workload(&setup), invariants)
        .expect("scenario validated before building");
    (sim, setup)
}

/// How a scenario is changed for exhaustive exploration, one line each, for people: what an
/// exploration's "pass" covers besides what the fingerprint abstracts.
pub const EXPLORATION_CHANGES: [&str; 4] = [
    "the network neither loses, duplicates nor delays messages at random: every message \
     arrives once, in any order",
    "no nemesis: its random faults are left out (scheduled faults stay, and may happen \
     between any two events)",
    "time is free: any waiting event may come next, a timer may fire whenever it is armed",
    "states are told apart by what decides their future: not time, counters, timer ids, \
     send times or the memory of incremental invariants",
];

/// What replaces "time is free" in [`EXPLORATION_CHANGES`] when the exploration assumes
/// synchrony ([`ExploreStart::synchronous`]).
pub const SYNCHRONOUS_TIME: &str = "synchronous network: messages come in any order, but no \
     timer or client timeout fires while a message is in flight, so timeouts that beat a slow \
     message are not covered";

/// The scenario as exhaustive exploration runs it: see [`EXPLORATION_CHANGES`].
pub fn for_exploration(scenario: &Scenario) -> Scenario {
    let mut explored = scenario.clone();
    explored.network = NetworkConfig::from_link(LinkConfig {
        latency_ms: LatencyMs::Constant(1),
        ..LinkConfig::default()
    });
    explored.nemesis = None;
    // Events due after the stop time are not enabled, and time only moves forward to the
    // time of what runs: with the most virtual time a scenario may have, no schedule a search
    // can reach stops for time.
    explored.stop_ms = Time::LONGEST_MS;
    explored
}

/// Where an exploration branches from: what [`explore`] searches from, and what a replay of
/// its schedules starts from ([`explored_run`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExploreStart {
    /// The seed (default: the scenario's own).
    pub seed: Option<u64>,
    /// The faults a schedule may choose ([`Simulation::choose_faults`]).
    pub faults: FaultBudget,
    /// Explore around the seed: run the scenario as written (its network, its nemesis) for
    /// this many steps, then branch. The seed's streams still decide what the network does
    /// to each message and when the nemesis strikes; only the order of events is free. With
    /// `None`, the scenario is changed as [`for_exploration`] says and explored from the start.
    pub prefix: Option<u64>,
    /// Timeouts wait for every message in flight ([`Simulation::assume_synchrony`]).
    pub synchronous: bool,
}

impl ExploreStart {
    /// The scenario the exploration runs: changed as [`for_exploration`] says when it
    /// starts at the beginning, as written when it explores around a seed.
    pub fn scenario(&self, scenario: &Scenario) -> Scenario {
        match self.prefix {
            None => for_exploration(scenario),
            Some(_) => scenario.clone(),
        }
    }

    /// The steps the default scheduler takes before the exploration branches.
    pub fn prefix_steps(&self) -> u64 {
        self.prefix.unwrap_or(0)
    }
}

/// Builds the simulation an exploration branches from: see [`ExploreStart`].
fn explored_start<P: Protocol>(
    scenario: &Scenario,
    config: &P::Config,
    start: &ExploreStart,
) -> Result<Simulation<P>, String> {
    let options = RunOptions {
        seed: start.seed,
        trace: TraceMode::HashOnly,
        stop_on_violation: false,
    };
    let (mut sim, _) = instance::<P>(&start.scenario(scenario), config, &options);
    let prefix = start.prefix_steps();
    for _ in 0..prefix {
        if !sim.step() {
            return Err(format!(
                "--prefix {prefix}: the run of seed {} ends after {} steps",
                options.seed.unwrap_or(scenario.seed),
                sim.stats().steps
            ));
        }
    }
    branch(&mut sim, start);
    Ok(sim)
}

/// From here on, `sim` takes chosen steps as an exploration does: copies of a message in
/// flight merge, late client answers and timeouts leave the queue, the faults `start` allows may be chosen, and timeouts wait for messages if
/// it assumes synchrony.
fn branch<P: simlab_sim::Node>(sim: &mut Simulation<P>, start: &ExploreStart) {
    sim.explore_mode();
    sim.choose_faults(start.faults);
    if start.synchronous {
        sim.assume_synchrony();
    }
}

/// Explores every schedule from where `start` says within `limits`; see
/// [`simlab_sim::explore`]. `observe` sees the report so far every
/// [`simlab_sim::explore::PROGRESS_EVERY`] new states, and may stop the search there. A
/// breadth-first search expands states on `jobs` threads; the report is the same for every
/// `jobs`. An error when the prefix is longer than the seed's run.
pub fn explore(
    scenario: &Scenario,
    start: &ExploreStart,
    search: Search,
    limits: &ExploreLimits,
    jobs: usize,
    observe: &mut dyn FnMut(&ExploreReport) -> std::ops::ControlFlow<()>,
) -> Result<ExploreReport, String> {
    struct Explore<'a, 'b> {
        scenario: &'a Scenario,
        start: &'a ExploreStart,
        search: Search,
        limits: &'a ExploreLimits,
        jobs: usize,
        observe: &'b mut dyn FnMut(&ExploreReport) -> std::ops::ControlFlow<()>,
    }
    impl Visit for Explore<'_, '_> {
        type Output = Result<ExploreReport, String>;
        fn visit<P: Protocol>(self, config: &P::Config) -> Self::Output {
            let sim = explored_start::<P>(self.scenario, config, self.start)?;
            Ok(simlab_sim::explore::explore_observed(
                &sim,
                self.search,
                self.limits,
                self.jobs,
                self.observe,
            ))
        }
    }
    scenario.protocol.visit(Explore {
        scenario,
        start,
        search,
        limits,
        jobs,
        observe,
    })
}

/// [`explore`] with no one watching: the search runs to its limits.
pub fn explore_unobserved(
    scenario: &Scenario,
    start: &ExploreStart,
    search: Search,
    limits: &ExploreLimits,
    jobs: usize,
) -> Result<ExploreReport, String> {
    explore(scenario, start, search, limits, jobs, &mut |_| {
        std::ops::ControlFlow::Continue(())
    })
}

/// Builds and runs a scenario to the end.
pub fn run(scenario: &Scenario, options: &RunOptions) -> (Outcome, Box<dyn Run>) {
    let mut run = build(scenario, options);
    while run.step() {}
    let outcome = run.finish();
    (outcome, run)
}
