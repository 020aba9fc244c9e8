//! The engine: one single-threaded, deterministic discrete-event simulation.
//!
//! Events wait in a priority queue ordered by `(time, seq)`, where `seq` counts insertions, so
//! events at the same instant run in the order they were scheduled, always. Each [`step`] pops
//! one event, hands it to a node (or a client, or the fault injector), applies the effects the
//! handler recorded, checks the invariants, and folds the step into the rolling trace hash.
//!
//! [`step`]: Simulation::step

use crate::faults::{Fault, FaultRecord, NemesisConfig, NemesisKind, ScheduledFault, node_ids};
use crate::hash::StableHasher;
use crate::history::{ClientConfig, Completion, History, Operation, Side};
use crate::invariant::{Invariant, InvariantKind};
use crate::network::{DropReason, Network, NetworkConfig, Reachability, Verdict};
use crate::node::{ClientId, Ctx, Effect, Node, NodeId, NodeView, ReplyTo, ResponseClass, TimerId};
use crate::outcome::{CapReport, OpCounts, Outcome, Stats, StopReason, Violation};
use crate::rng::{self, SimRng, Stream};
use crate::time::Time;
use crate::trace::{CompactStep, StepKind, StepRecord, TraceMode};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fmt;
use std::sync::Arc;

/// Hard limits that end a run which would otherwise never end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The most steps a run may take.
    pub max_steps: u64,
    /// The most events that may wait in the queue at once.
    pub max_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 20_000_000,
            max_queue: 1_000_000,
        }
    }
}

/// Everything the engine needs to know about a run, apart from the protocol.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Cluster size.
    pub nodes: u32,
    /// The seed every random stream derives from.
    pub seed: u64,
    /// When the run stops.
    pub stop: Time,
    /// The network.
    pub network: NetworkConfig,
    /// Faults at fixed times.
    pub faults: Vec<ScheduledFault>,
    /// Random faults.
    pub nemesis: Option<NemesisConfig>,
    /// Simulated clients.
    pub clients: ClientConfig,
    /// Step and queue limits.
    pub limits: Limits,
    /// How much of the trace to keep.
    pub trace: TraceMode,
    /// Stop at the first violated invariant (sweeps want the verdict, not the rest of the run).
    pub stop_on_violation: bool,
}

impl SimConfig {
    /// A fault-free configuration of `nodes` nodes with default network and no clients.
    pub fn new(nodes: u32, seed: u64, stop: Time) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            stop,
            network: NetworkConfig::default(),
            faults: Vec::new(),
            nemesis: None,
            clients: ClientConfig::default(),
            limits: Limits::default(),
            trace: TraceMode::HashOnly,
            stop_on_violation: false,
        }
    }

    /// Checks the configuration; the error names the field and the rule it breaks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field: String, rule: String| Err(ConfigError { field, rule });
        if self.nodes == 0 {
            return err("nodes".into(), "a cluster needs at least 1 node".into());
        }
        if self.nodes > 1_000 {
            return err(
                "nodes".into(),
                format!("{} nodes is more than the limit of 1000", self.nodes),
            );
        }
        let times = [
            ("network", crate::load::check_times(&self.network)),
            ("clients", crate::load::check_times(&self.clients)),
            ("faults", crate::load::check_times(&self.faults)),
            ("nemesis", crate::load::check_times(&self.nemesis)),
        ];
        for (section, checked) in times {
            if let Err((field, rule)) = checked {
                let separator = if field.starts_with('[') { "" } else { "." };
                return err(format!("{section}{separator}{field}"), rule);
            }
        }
        if self.stop == Time::ZERO {
            return err("stop_ms".into(), "must be positive".into());
        }
        if self.stop > Time::from_millis(Time::LONGEST_MS) {
            return err(
                "stop_ms".into(),
                "is more than 30 days of virtual time".into(),
            );
        }
        if let Err(rule) = self.network.latency_ms.validate() {
            return err("network.latency_ms".into(), rule);
        }
        for (i, link) in self.network.links.iter().enumerate() {
            for (name, n) in [("from", link.from), ("to", link.to)] {
                if n >= self.nodes {
                    return err(
                        format!("network.links[{i}].{name}"),
                        format!(
                            "node {n} does not exist: the cluster has {} nodes",
                            self.nodes
                        ),
                    );
                }
            }
            if let Err(rule) = link.link.latency_ms.validate() {
                return err(format!("network.links[{i}].link.latency_ms"), rule);
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            if let Err(rule) = f.fault.validate(self.nodes) {
                return err(format!("faults[{i}].fault"), rule);
            }
            if Time::from_millis(f.at_ms) > self.stop {
                return err(
                    format!("faults[{i}].at_ms"),
                    format!(
                        "{} ms is after the stop time {} ms",
                        f.at_ms,
                        self.stop.as_millis()
                    ),
                );
            }
        }
        if let Some(nemesis) = &self.nemesis {
            if let Err((field, rule)) = nemesis.validate(self.nodes) {
                return err(format!("nemesis.{field}"), rule);
            }
            if Time::from_millis(nemesis.end_ms) > self.stop {
                return err("nemesis.end_ms".into(), "is after the stop time".into());
            }
        }
        if let Err((field, rule)) = self.clients.validate() {
            return err(format!("clients.{field}"), rule);
        }
        if self.limits.max_steps == 0 || self.limits.max_queue == 0 {
            return err("limits".into(), "limits must be positive".into());
        }
        Ok(())
    }

    /// When the last fault is over: the latest scheduled fault or the nemesis's end.
    pub fn faults_over_at(&self) -> Time {
        let scheduled = self.faults.iter().map(|f| f.at_ms).max().unwrap_or(0);
        let nemesis = self.nemesis.as_ref().map_or(0, |n| n.end_ms);
        Time::from_millis(scheduled.max(nemesis))
    }
}

/// A configuration value that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ConfigError {
    /// The field, as a path (e.g. `faults[2].fault`).
    pub field: String,
    /// The rule it breaks.
    pub rule: String,
}

/// Generates client requests: the protocol family's workload (key-value ops, transfers, …).
pub trait Workload<Req>: WorkloadClone<Req> {
    /// The request for operation `seq` of `client`, drawing from that client's workload stream.
    fn next_request(&mut self, client: ClientId, seq: u64, rng: &mut SimRng) -> Req;
}

/// Cloning boxed workloads (for simulation snapshots).
pub trait WorkloadClone<Req> {
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Workload<Req>>;
}

impl<Req, T: Workload<Req> + Clone + 'static> WorkloadClone<Req> for T {
    fn clone_box(&self) -> Box<dyn Workload<Req>> {
        Box::new(self.clone())
    }
}

impl<Req> Clone for Box<dyn Workload<Req>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// A node's liveness.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum NodeStatus {
    /// Running.
    Up,
    /// Frozen; events wait until it resumes.
    Paused,
    /// Down; only its durable store exists.
    Crashed,
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Clock {
    offset_us: i64,
    drift_ppm: i32,
}

impl Clock {
    /// The node's reading of virtual time `real`.
    fn local(self, real: Time) -> Time {
        let us = i128::from(real.as_micros()) + i128::from(self.offset_us);
        Time::from_micros(us.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// How much virtual time passes while this clock measures `local`.
    fn real_delay(self, local: Time) -> Time {
        if self.drift_ppm == 0 {
            return local;
        }
        let rate = 1_000_000i128 + i128::from(self.drift_ppm);
        let real = i128::from(local.as_micros()) * 1_000_000 / rate;
        Time::from_micros(real.clamp(0, i128::from(u64::MAX)) as u64)
    }
}

#[derive(Clone, Debug, Serialize)]
enum FaultEvent {
    Scheduled(usize),
    NemesisInject,
    NemesisRepair(Fault),
}

#[derive(Clone, Debug, Serialize)]
#[serde(bound = "")]
enum Event<P: Node> {
    Start(NodeId),
    Deliver {
        from: NodeId,
        to: NodeId,
        sent: Time,
        msg: P::Msg,
    },
    Timer {
        node: NodeId,
        id: TimerId,
    },
    Request {
        client: ClientId,
        to: NodeId,
        seq: u64,
        send: u32,
    },
    Reply {
        client: ClientId,
        from: NodeId,
        seq: u64,
        response: P::Response,
    },
    ClientTimeout {
        client: ClientId,
        seq: u64,
        send: u32,
    },
    ClientInvoke(ClientId),
    Fault(FaultEvent),
}

impl<P: Node> Event<P> {
    /// The node whose handler this event runs, for events a pause holds back.
    fn target_node(&self) -> Option<NodeId> {
        match self {
            Event::Deliver { to, .. } | Event::Request { to, .. } => Some(*to),
            Event::Timer { node, .. } => Some(*node),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
struct Queued<P: Node> {
    time: Time,
    seq: u64,
    event: Event<P>,
}

impl<P: Node> PartialEq for Queued<P> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<P: Node> Eq for Queued<P> {}
impl<P: Node> PartialOrd for Queued<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P: Node> Ord for Queued<P> {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest `(time, seq)` first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

#[derive(Clone, Debug)]
struct NodeSlot<P: Node> {
    /// `None` while crashed. Shared with snapshots; cloned on the first write after one.
    state: Option<Arc<P>>,
    durable: Arc<P::Durable>,
    paused: bool,
    backlog: Vec<Event<P>>,
    timers: BTreeMap<TimerId, P::Timer>,
    clock: Clock,
    rng: SimRng,
    net_rng: SimRng,
}

#[derive(Clone, Debug)]
struct Pending {
    seq: u64,
    /// Numbers every send of this operation, so stale timeouts can be told apart.
    send: u32,
    /// Tries started; each ends in an answer, a timeout, or a redirect without a hint.
    tries: u32,
    /// Redirects with a hint followed during the current try.
    hops: u32,
    /// An earlier try timed out, so the operation may have taken effect.
    maybe_applied: bool,
}

/// Redirects with a hint a client follows within one try before it counts as a failed try:
/// enough to find a leader, few enough that two confused nodes cannot bounce it forever.
const MAX_HOPS_PER_TRY: u32 = 4;

#[derive(Clone, Debug)]
struct ClientState {
    rng: SimRng,
    workload_rng: SimRng,
    /// History index of each of this client's operations, by `seq`.
    ops: Vec<usize>,
    pending: Option<Pending>,
    leader_hint: Option<NodeId>,
}

/// What one step did, in the engine's terms; filled in as the step runs.
struct StepInfo {
    kind: StepKind,
    node: Option<NodeId>,
    from: Option<NodeId>,
    client: Option<ClientId>,
    summary: String,
    payload: serde_json::Value,
    effects: Vec<String>,
}

impl StepInfo {
    fn new(kind: StepKind) -> StepInfo {
        StepInfo {
            kind,
            node: None,
            from: None,
            client: None,
            summary: String::new(),
            payload: serde_json::Value::Null,
            effects: Vec::new(),
        }
    }
}

/// A read-only view of the world, for invariants and the TUI.
pub struct World<'a, P: Node> {
    sim: &'a Simulation<P>,
}

impl<'a, P: Node> World<'a, P> {
    /// Virtual time now.
    pub fn now(&self) -> Time {
        self.sim.now
    }
    /// Steps taken so far.
    pub fn step(&self) -> u64 {
        self.sim.stats.steps
    }
    /// Cluster size.
    pub fn cluster_size(&self) -> u32 {
        self.sim.config.nodes
    }
    /// A node's state, or `None` while it is crashed.
    pub fn node(&self, id: NodeId) -> Option<&'a P> {
        self.sim.nodes[id.index()].state.as_deref()
    }
    /// Every node that is not crashed, in order.
    pub fn live_nodes(&self) -> impl Iterator<Item = (NodeId, &'a P)> + 'a {
        let nodes = &self.sim.nodes;
        nodes
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.state.as_deref().map(|p| (NodeId(i as u32), p)))
    }
    /// A node's durable store (present whether it is up or not).
    pub fn durable(&self, id: NodeId) -> &'a P::Durable {
        &self.sim.nodes[id.index()].durable
    }
    /// A node's liveness.
    pub fn status(&self, id: NodeId) -> NodeStatus {
        self.sim.status(id)
    }
    /// The partition state.
    pub fn reachability(&self) -> &'a Reachability {
        &self.sim.network.reach
    }
    /// The client history so far.
    pub fn history(&self) -> &'a History<P::Request, P::Response> {
        &self.sim.history
    }
    /// When the last scheduled fault happens and the nemesis stops (eventually-invariants are
    /// checked from then on).
    pub fn faults_over_at(&self) -> Time {
        self.sim.faults_over_at
    }
    /// The nodes that wrote their durable store in the last step. Invariants over durable
    /// state need only look again when this is not empty.
    pub fn durable_writes(&self) -> &'a [NodeId] {
        &self.sim.durable_writes
    }
}

/// A deterministic simulation of a cluster of `P` nodes.
#[derive(Clone)]
pub struct Simulation<P: Node> {
    config: Arc<SimConfig>,
    factory: Arc<dyn Fn(NodeId) -> P>,
    workload: Option<Box<dyn Workload<P::Request>>>,
    invariants: Vec<Box<dyn Invariant<P>>>,
    now: Time,
    queue: BinaryHeap<Queued<P>>,
    next_seq: u64,
    next_timer: u64,
    nodes: Vec<NodeSlot<P>>,
    network: Network,
    side_cache: Option<Vec<Side>>,
    clients: Vec<ClientState>,
    history: History<P::Request, P::Response>,
    fault_rng: SimRng,
    fault_log: Vec<FaultRecord>,
    partitions_injected: u64,
    stats: Stats,
    hasher: StableHasher,
    violations: Vec<Violation>,
    /// Per invariant: `Some(step)` once a sometimes-invariant held, or an always-invariant failed.
    settled: Vec<Option<u64>>,
    converged_since: Option<Time>,
    records: Vec<StepRecord>,
    compact: Vec<CompactStep>,
    stop_reason: Option<StopReason>,
    finished: bool,
    effects_buf: Vec<Effect<P>>,
    notes_buf: Vec<String>,
    /// Nodes whose durable store was written in the current step.
    durable_writes: Vec<NodeId>,
    faults_over_at: Time,
    last_eventually_check: Option<Time>,
}

impl<P: Node> Simulation<P> {
    /// A simulation ready to run: nodes scheduled to start at time zero, clients at their start
    /// time, scheduled faults and the nemesis in the queue.
    pub fn new(
        config: SimConfig,
        factory: impl Fn(NodeId) -> P + 'static,
        workload: Option<Box<dyn Workload<P::Request>>>,
        invariants: Vec<Box<dyn Invariant<P>>>,
    ) -> Result<Simulation<P>, ConfigError> {
        config.validate()?;
        if config.clients.count > 0 && workload.is_none() {
            return Err(ConfigError {
                field: "clients".into(),
                rule: "clients need a workload, and this protocol has none".into(),
            });
        }
        let seed = config.seed;
        let nodes = (0..config.nodes)
            .map(|i| NodeSlot {
                state: Some(Arc::new(factory(NodeId(i)))),
                durable: Arc::new(P::Durable::default()),
                paused: false,
                backlog: Vec::new(),
                timers: BTreeMap::new(),
                clock: Clock::default(),
                rng: rng::stream(seed, Stream::Node(i)),
                net_rng: rng::stream(seed, Stream::Network(i)),
            })
            .collect();
        let clients = (0..config.clients.count)
            .map(|i| ClientState {
                rng: rng::stream(seed, Stream::Client(i)),
                workload_rng: rng::stream(seed, Stream::Workload(i)),
                ops: Vec::new(),
                pending: None,
                leader_hint: None,
            })
            .collect();
        let settled = vec![None; invariants.len()];
        let mut sim = Simulation {
            network: Network::new(config.nodes, &config.network),
            factory: Arc::new(factory),
            workload,
            invariants,
            now: Time::ZERO,
            queue: BinaryHeap::new(),
            next_seq: 0,
            next_timer: 0,
            nodes,
            side_cache: None,
            clients,
            history: History::default(),
            fault_rng: rng::stream(seed, Stream::Faults),
            fault_log: Vec::new(),
            partitions_injected: 0,
            stats: Stats::default(),
            hasher: StableHasher::new(),
            violations: Vec::new(),
            settled,
            converged_since: None,
            records: Vec::new(),
            compact: Vec::new(),
            stop_reason: None,
            finished: false,
            effects_buf: Vec::new(),
            notes_buf: Vec::new(),
            durable_writes: Vec::new(),
            faults_over_at: config.faults_over_at(),
            last_eventually_check: None,
            config: Arc::new(config),
        };
        for i in 0..sim.config.nodes {
            sim.push(Time::ZERO, Event::Start(NodeId(i)));
        }
        for i in 0..sim.config.faults.len() {
            let at = Time::from_millis(sim.config.faults[i].at_ms);
            sim.push(at, Event::Fault(FaultEvent::Scheduled(i)));
        }
        if let Some(nemesis) = sim.config.nemesis.clone() {
            let first = Time::from_millis(nemesis.start_ms) + sim.nemesis_interval(&nemesis);
            sim.push(first, Event::Fault(FaultEvent::NemesisInject));
        }
        let start = Time::from_millis(sim.config.clients.start_ms);
        for c in 0..sim.config.clients.count {
            sim.push(start, Event::ClientInvoke(ClientId(c)));
        }
        Ok(sim)
    }

    /// The configuration this simulation runs.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Changes how much trace is kept from the next step on. This never changes the run
    /// itself (the hash covers every step whatever the mode), so a replay can switch to
    /// [`TraceMode::Full`] just for the steps someone looks at.
    pub fn set_trace_mode(&mut self, mode: TraceMode) {
        if self.config.trace != mode {
            Arc::make_mut(&mut self.config).trace = mode;
        }
    }

    /// Every fault so far, with concrete nodes.
    pub fn fault_log(&self) -> &[FaultRecord] {
        &self.fault_log
    }

    /// The partition state now.
    pub fn reachability(&self) -> &Reachability {
        &self.network.reach
    }

    /// Virtual time now.
    pub fn now(&self) -> Time {
        self.now
    }

    /// A read-only view of the world.
    pub fn world(&self) -> World<'_, P> {
        World { sim: self }
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The client history so far.
    pub fn history(&self) -> &History<P::Request, P::Response> {
        &self.history
    }

    /// The step records kept so far ([`TraceMode::Full`] only).
    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    /// The compact step records kept so far ([`TraceMode::Compact`] only).
    pub fn compact_records(&self) -> &[CompactStep] {
        &self.compact
    }

    /// Takes the compact records kept so far, leaving none (so snapshots stay small).
    pub fn drain_compact_records(&mut self) -> Vec<CompactStep> {
        std::mem::take(&mut self.compact)
    }

    /// Bytes the compact trace holds (its allocated capacity).
    pub fn compact_trace_bytes(&self) -> usize {
        self.compact.capacity() * std::mem::size_of::<CompactStep>()
    }

    /// Violations found so far.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The rolling trace hash so far.
    pub fn trace_hash(&self) -> u64 {
        self.hasher.finish()
    }

    /// Whether the run is over.
    pub fn is_done(&self) -> bool {
        self.stop_reason.is_some()
    }

    /// What the invariants observed, as `(key, value)` pairs (see
    /// [`Invariant::observations`]).
    pub fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        self.invariants
            .iter()
            .flat_map(|i| i.observations())
            .collect()
    }

    /// The names and kinds of this simulation's invariants.
    pub fn invariant_names(&self) -> Vec<(String, InvariantKind)> {
        self.invariants
            .iter()
            .map(|i| (i.name().to_string(), i.kind()))
            .collect()
    }

    /// A node's liveness.
    pub fn status(&self, id: NodeId) -> NodeStatus {
        let slot = &self.nodes[id.index()];
        match (&slot.state, slot.paused) {
            (None, _) => NodeStatus::Crashed,
            (Some(_), true) => NodeStatus::Paused,
            (Some(_), false) => NodeStatus::Up,
        }
    }

    /// Each node's status and protocol view (crashed nodes show no view).
    pub fn views(&self) -> Vec<(NodeStatus, NodeView)> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let view = slot
                    .state
                    .as_ref()
                    .map_or_else(NodeView::default, |p| p.view(&slot.durable));
                (self.status(NodeId(i as u32)), view)
            })
            .collect()
    }

    /// Messages in flight per directed link `(from, to, count)`, in order.
    pub fn in_flight(&self) -> Vec<(NodeId, NodeId, usize)> {
        let mut counts: BTreeMap<(NodeId, NodeId), usize> = BTreeMap::new();
        for q in &self.queue {
            if let Event::Deliver { from, to, .. } = q.event {
                *counts.entry((from, to)).or_default() += 1;
            }
        }
        counts.into_iter().map(|((a, b), n)| (a, b, n)).collect()
    }

    /// Runs to the end and returns the outcome.
    pub fn run(&mut self) -> Outcome {
        while self.step() {}
        self.finish()
    }

    fn push(&mut self, time: Time, event: Event<P>) {
        self.queue.push(Queued {
            time,
            seq: self.next_seq,
            event,
        });
        self.next_seq += 1;
    }

    /// Pops the next event that is a step: skips cancelled timers and holds back events for
    /// paused nodes. Sets the stop reason when the run is over.
    fn next_event(&mut self) -> Option<(Time, Event<P>)> {
        loop {
            let Some(head) = self.queue.peek() else {
                // Nothing will ever happen again: the world stays as it is until the stop time,
                // which is when end-of-run checks look at it.
                self.now = self.config.stop;
                self.stats.end_time = self.now;
                self.stop_reason = Some(StopReason::Quiescent);
                return None;
            };
            if head.time > self.config.stop {
                self.stop_reason = Some(StopReason::TimeLimit);
                return None;
            }
            let Queued { time, event, .. } = self.queue.pop().expect("peeked");
            if let Event::Timer { node, id } = &event
                && !self.nodes[node.index()].timers.contains_key(id)
            {
                continue;
            }
            if let Some(node) = event.target_node()
                && self.nodes[node.index()].paused
            {
                self.nodes[node.index()].backlog.push(event);
                continue;
            }
            return Some((time, event));
        }
    }

    /// Takes one step. Returns false when the run is over (and takes no step then).
    pub fn step(&mut self) -> bool {
        if self.stop_reason.is_some() {
            return false;
        }
        if self.stats.steps >= self.config.limits.max_steps {
            self.stop_reason = Some(StopReason::StepLimit(self.config.limits.max_steps));
            return false;
        }
        let Some((time, event)) = self.next_event() else {
            return false;
        };
        self.now = time;
        self.durable_writes.clear();
        let full = self.config.trace == TraceMode::Full;
        let step = self.stats.steps;
        self.hasher.word(step);
        self.hasher.word(time.as_micros());
        self.hasher.value(&event);
        let info = self.handle(event, full);
        self.stats.steps += 1;
        self.stats.end_time = self.now;
        let first_violation = self.violations.len();
        self.check_invariants();
        if full {
            let notes = std::mem::take(&mut self.notes_buf);
            self.records.push(StepRecord {
                step,
                time_us: time.as_micros(),
                kind: info.kind,
                node: info.node,
                from: info.from,
                client: info.client,
                summary: info.summary,
                payload: info.payload,
                effects: info.effects,
                notes,
                violations: self.violations[first_violation..]
                    .iter()
                    .map(|v| format!("{}: {}", v.invariant, v.message))
                    .collect(),
                hash: format!("{:016x}", self.hasher.finish()),
            });
        } else {
            self.notes_buf.clear();
            if self.config.trace == TraceMode::Compact {
                let id = |n: Option<NodeId>| n.map_or(CompactStep::NONE, |n| n.0);
                self.compact.push(CompactStep {
                    time_us: time.as_micros(),
                    hash: self.hasher.finish(),
                    node: id(info.node),
                    peer: info
                        .from
                        .map(|n| n.0)
                        .or(info.client.map(|c| c.0))
                        .unwrap_or(CompactStep::NONE),
                    kind: info.kind,
                    violation: first_violation < self.violations.len(),
                });
            }
        }
        if self.queue.len() > self.config.limits.max_queue {
            self.stop_reason = Some(StopReason::QueueLimit(self.config.limits.max_queue));
        }
        if self.config.stop_on_violation && first_violation < self.violations.len() {
            self.stop_reason = Some(StopReason::TimeLimit);
        }
        true
    }

    fn handle(&mut self, event: Event<P>, full: bool) -> StepInfo {
        let payload = |v: &dyn erased::Json| {
            if full {
                v.json()
            } else {
                serde_json::Value::Null
            }
        };
        match event {
            Event::Start(id) => {
                let mut info = StepInfo::new(StepKind::Start);
                info.node = Some(id);
                if full {
                    info.summary = format!("{id} starts");
                }
                self.run_handler(id, &mut info, |node, ctx| node.on_start(ctx));
                info
            }
            Event::Deliver {
                from,
                to,
                sent,
                msg,
            } => {
                let reachable = self.network.reach.delivers(from, to, sent);
                let crashed = self.nodes[to.index()].state.is_none();
                let kind = if reachable && !crashed {
                    StepKind::Deliver
                } else {
                    StepKind::Drop
                };
                let mut info = StepInfo::new(kind);
                info.node = Some(to);
                info.from = Some(from);
                info.payload = payload(&msg);
                if !reachable {
                    self.stats.dropped_partition += 1;
                    if full {
                        info.summary = format!("{from} → {to} lost in flight (partition): {msg:?}");
                    }
                } else if crashed {
                    self.stats.dropped_crashed += 1;
                    if full {
                        info.summary = format!("{from} → {to} lost ({to} is down): {msg:?}");
                    }
                } else {
                    self.stats.messages_delivered += 1;
                    if full {
                        info.summary = format!("{from} → {to}: {msg:?}");
                    }
                    self.run_handler(to, &mut info, |node, ctx| node.on_message(from, msg, ctx));
                }
                info
            }
            Event::Timer { node, id } => {
                let timer = self.nodes[node.index()]
                    .timers
                    .remove(&id)
                    .expect("live timer");
                self.hasher.value(&timer);
                self.stats.timers_fired += 1;
                let mut info = StepInfo::new(StepKind::Timer);
                info.node = Some(node);
                info.payload = payload(&timer);
                if full {
                    info.summary = format!("{node} timer: {timer:?}");
                }
                self.run_handler(node, &mut info, |n, ctx| n.on_timer(timer, ctx));
                info
            }
            Event::Request {
                client,
                to,
                seq,
                send,
            } => {
                let index = self.clients[client.0 as usize].ops[seq as usize];
                let request = self.history.ops[index].request.clone();
                self.hasher.value(&request);
                let mut info = StepInfo::new(StepKind::Request);
                info.node = Some(to);
                info.client = Some(client);
                info.payload = payload(&request);
                if self.nodes[to.index()].state.is_none() {
                    if full {
                        info.summary = format!("{client} → {to} lost ({to} is down): {request:?}");
                    }
                } else {
                    if full {
                        info.summary =
                            format!("{client} → {to} (op {seq}, send {send}): {request:?}");
                    }
                    let reply_to = ReplyTo { client, seq };
                    self.run_handler(to, &mut info, |n, ctx| n.on_request(reply_to, request, ctx));
                }
                info
            }
            Event::Reply {
                client,
                from,
                seq,
                response,
            } => {
                let mut info = StepInfo::new(StepKind::Reply);
                info.node = Some(from);
                info.client = Some(client);
                info.payload = payload(&response);
                if full {
                    info.summary = format!("{from} → {client} (op {seq}): {response:?}");
                }
                self.client_reply(client, from, seq, response);
                info
            }
            Event::ClientTimeout { client, seq, send } => {
                let mut info = StepInfo::new(StepKind::ClientTimeout);
                info.client = Some(client);
                if full {
                    info.summary = format!("{client} op {seq} send {send} timed out");
                }
                self.client_timeout(client, seq, send);
                info
            }
            Event::ClientInvoke(client) => {
                let mut info = StepInfo::new(StepKind::ClientInvoke);
                info.client = Some(client);
                self.client_invoke(client, &mut info, full);
                info
            }
            Event::Fault(fault) => {
                let mut info = StepInfo::new(StepKind::Fault);
                self.handle_fault(fault, &mut info, full);
                info
            }
        }
    }

    /// Runs one handler on a live node and applies what it did.
    fn run_handler(
        &mut self,
        id: NodeId,
        info: &mut StepInfo,
        f: impl FnOnce(&mut P, &mut Ctx<'_, P>),
    ) {
        let full = self.config.trace == TraceMode::Full;
        let mut effects = std::mem::take(&mut self.effects_buf);
        {
            let nodes = self.config.nodes;
            let slot = &mut self.nodes[id.index()];
            let node = Arc::make_mut(slot.state.as_mut().expect("handlers run on live nodes"));
            let mut ctx = Ctx {
                id,
                now: slot.clock.local(self.now),
                nodes,
                rng: &mut slot.rng,
                durable: Arc::make_mut(&mut slot.durable),
                next_timer: &mut self.next_timer,
                effects: &mut effects,
                notes: &mut self.notes_buf,
                keep_notes: full,
            };
            f(node, &mut ctx);
        }
        for effect in effects.drain(..) {
            self.hasher.value(&effect);
            if matches!(effect, Effect::DurableWrite) && !self.durable_writes.contains(&id) {
                self.durable_writes.push(id);
            }
            if full {
                info.effects.push(describe_effect(&effect));
            }
            self.apply(id, effect);
        }
        self.effects_buf = effects;
    }

    fn apply(&mut self, id: NodeId, effect: Effect<P>) {
        match effect {
            Effect::Send { to, msg } => {
                assert!(
                    to.0 < self.config.nodes,
                    "{id} sent a message to {to}, which does not exist"
                );
                self.stats.messages_sent += 1;
                let slot = &mut self.nodes[id.index()];
                match self.network.decide(id, to, &mut slot.net_rng) {
                    Verdict::Drop(DropReason::Partition) => self.stats.dropped_partition += 1,
                    Verdict::Drop(_) => self.stats.dropped_loss += 1,
                    Verdict::Deliver { delay, duplicate } => {
                        if let Some(extra) = duplicate {
                            self.stats.duplicated += 1;
                            self.push(
                                self.now + extra,
                                Event::Deliver {
                                    from: id,
                                    to,
                                    sent: self.now,
                                    msg: msg.clone(),
                                },
                            );
                        }
                        self.push(
                            self.now + delay,
                            Event::Deliver {
                                from: id,
                                to,
                                sent: self.now,
                                msg,
                            },
                        );
                    }
                }
            }
            Effect::SetTimer {
                id: timer_id,
                after,
                timer,
            } => {
                let slot = &mut self.nodes[id.index()];
                let delay = slot.clock.real_delay(after);
                slot.timers.insert(timer_id, timer);
                self.push(
                    self.now + delay,
                    Event::Timer {
                        node: id,
                        id: timer_id,
                    },
                );
            }
            Effect::CancelTimer(timer_id) => {
                self.nodes[id.index()].timers.remove(&timer_id);
            }
            Effect::Reply { to, response } => {
                let Some(client) = self.clients.get_mut(to.client.0 as usize) else {
                    panic!("{id} replied to {}, which does not exist", to.client);
                };
                let (lo, hi) = self.config.clients.latency_ms;
                let delay =
                    Time::from_micros(rng::between(&mut client.rng, lo * 1_000, hi * 1_000));
                let event = Event::Reply {
                    client: to.client,
                    from: id,
                    seq: to.seq,
                    response,
                };
                self.push(self.now + delay, event);
            }
            Effect::DurableWrite => {}
        }
    }

    fn side_of(&mut self, node: NodeId) -> Side {
        if !self.network.reach.is_partitioned() {
            return Side::Healthy;
        }
        let n = self.config.nodes as usize;
        let reach = &self.network.reach;
        let sides = self.side_cache.get_or_insert_with(|| {
            let mut sides = vec![Side::Minority; n];
            for component in reach.components() {
                if component.len() * 2 > n {
                    for id in component {
                        sides[id.index()] = Side::Majority;
                    }
                }
            }
            sides
        });
        sides[node.index()]
    }

    fn client_invoke(&mut self, client: ClientId, info: &mut StepInfo, full: bool) {
        let c = client.0 as usize;
        let seq = self.clients[c].ops.len() as u64;
        if seq >= u64::from(self.config.clients.ops) {
            if full {
                info.summary = format!("{client} has finished its {seq} operations");
            }
            return;
        }
        let state = &mut self.clients[c];
        let workload = self
            .workload
            .as_mut()
            .expect("validated: clients have a workload");
        let request = workload.next_request(client, seq, &mut state.workload_rng);
        self.hasher.value(&request);
        let target = match state.leader_hint {
            Some(node) => node,
            None => NodeId(rng::below(&mut state.rng, u64::from(self.config.nodes)) as u32),
        };
        if full {
            info.summary = format!("{client} invokes op {seq}: {request:?}");
            info.payload = serde_json::to_value(&request).unwrap_or_default();
        }
        let side = self.side_of(target);
        self.clients[c].ops.push(self.history.ops.len());
        let call_order = self.history.next_order();
        self.history.ops.push(Operation {
            client,
            seq,
            request,
            invoked: self.now,
            completed: None,
            completion: None,
            node: target,
            side,
            attempts: 0,
            call_order,
            return_order: None,
        });
        self.clients[c].pending = Some(Pending {
            seq,
            send: 0,
            tries: 1,
            hops: 0,
            maybe_applied: false,
        });
        self.client_send(client, target, Time::ZERO);
    }

    /// Sends the pending operation again to `target` after `backoff`.
    fn client_send(&mut self, client: ClientId, target: NodeId, backoff: Time) {
        let config = &self.config.clients;
        let c = client.0 as usize;
        let state = &mut self.clients[c];
        let pending = state.pending.as_mut().expect("a pending operation");
        pending.send += 1;
        let (seq, send) = (pending.seq, pending.send);
        let (lo, hi) = config.latency_ms;
        let latency = Time::from_micros(rng::between(&mut state.rng, lo * 1_000, hi * 1_000));
        let index = state.ops[seq as usize];
        self.history.ops[index].attempts += 1;
        self.stats.client_requests += 1;
        let sent = self.now + backoff;
        let timeout = Time::from_millis(config.timeout_ms);
        self.push(
            sent + latency,
            Event::Request {
                client,
                to: target,
                seq,
                send,
            },
        );
        self.push(sent + timeout, Event::ClientTimeout { client, seq, send });
    }

    /// Ends the pending operation and schedules the next after a think time.
    fn client_complete(&mut self, client: ClientId, completion: Completion<P::Response>) {
        let c = client.0 as usize;
        let pending = self.clients[c].pending.take().expect("a pending operation");
        let index = self.clients[c].ops[pending.seq as usize];
        let order = self.history.next_order();
        let op = &mut self.history.ops[index];
        op.completed = Some(self.now);
        op.completion = Some(completion);
        op.return_order = Some(order);
        if self.clients[c].ops.len() as u64 >= u64::from(self.config.clients.ops) {
            return; // This client is done.
        }
        let (lo, hi) = self.config.clients.think_ms;
        let think = Time::from_micros(rng::between(
            &mut self.clients[c].rng,
            lo * 1_000,
            hi * 1_000,
        ));
        self.push(self.now + think, Event::ClientInvoke(client));
    }

    fn random_other_node(&mut self, client: ClientId, not: NodeId) -> NodeId {
        let n = u64::from(self.config.nodes);
        let rng = &mut self.clients[client.0 as usize].rng;
        if n == 1 {
            return not;
        }
        let pick = rng::below(rng, n - 1) as u32;
        NodeId(if pick >= not.0 { pick + 1 } else { pick })
    }

    fn client_reply(&mut self, client: ClientId, from: NodeId, seq: u64, response: P::Response) {
        let c = client.0 as usize;
        match &self.clients[c].pending {
            Some(p) if p.seq == seq => {}
            _ => return, // A late answer to an operation already settled.
        }
        match P::classify(&response) {
            ResponseClass::Ok => {
                self.clients[c].leader_hint = Some(from);
                self.client_complete(client, Completion::Ok(response));
            }
            ResponseClass::Fail => self.client_complete(client, Completion::Fail(response)),
            ResponseClass::Redirect(hint) => {
                let pending = self.clients[c].pending.as_mut().expect("checked above");
                if let Some(node) = hint
                    && pending.hops < MAX_HOPS_PER_TRY
                {
                    pending.hops += 1;
                    self.clients[c].leader_hint = Some(node);
                    self.client_send(client, node, Time::ZERO);
                    return;
                }
                if pending.tries >= self.config.clients.attempts {
                    let completion = if pending.maybe_applied {
                        Completion::Unknown
                    } else {
                        Completion::Fail(response)
                    };
                    self.client_complete(client, completion);
                    return;
                }
                pending.tries += 1;
                pending.hops = 0;
                self.clients[c].leader_hint = None;
                // Nobody knows where to go (an election, perhaps): wait a little first.
                let timeout = self.config.clients.timeout_ms * 1_000;
                let wait = rng::between(&mut self.clients[c].rng, timeout / 10, timeout / 2);
                let target = self.random_other_node(client, from);
                self.client_send(client, target, Time::from_micros(wait));
            }
        }
    }

    fn client_timeout(&mut self, client: ClientId, seq: u64, send: u32) {
        let c = client.0 as usize;
        let Some(pending) = self.clients[c].pending.as_mut() else {
            return;
        };
        if pending.seq != seq || pending.send != send {
            return; // That send was answered or superseded.
        }
        pending.maybe_applied = true;
        if pending.tries >= self.config.clients.attempts {
            self.client_complete(client, Completion::Unknown);
            return;
        }
        pending.tries += 1;
        pending.hops = 0;
        let index = self.clients[c].ops[seq as usize];
        let last = self.history.ops[index].node;
        self.clients[c].leader_hint = None;
        let target = self.random_other_node(client, last);
        self.client_send(client, target, Time::ZERO);
    }

    fn nemesis_interval(&mut self, nemesis: &NemesisConfig) -> Time {
        let (lo, hi) = nemesis.interval_ms;
        Time::from_millis(rng::between(&mut self.fault_rng, lo, hi))
    }

    fn leader(&self) -> Option<NodeId> {
        self.world()
            .live_nodes()
            .find(|(_, p)| p.is_leader())
            .map(|(id, _)| id)
    }

    fn handle_fault(&mut self, event: FaultEvent, info: &mut StepInfo, full: bool) {
        match event {
            FaultEvent::Scheduled(i) => {
                let fault = self.config.faults[i].fault.clone();
                self.inject(fault, false, info, full);
            }
            FaultEvent::NemesisRepair(fault) => {
                self.inject(fault, true, info, full);
                let nemesis = self.config.nemesis.clone().expect("nemesis configured");
                let next = self.now + self.nemesis_interval(&nemesis);
                if next < Time::from_millis(nemesis.end_ms) {
                    self.push(next, Event::Fault(FaultEvent::NemesisInject));
                }
            }
            FaultEvent::NemesisInject => {
                let nemesis = self.config.nemesis.clone().expect("nemesis configured");
                let end = Time::from_millis(nemesis.end_ms);
                let kind = nemesis.kinds
                    [rng::below(&mut self.fault_rng, nemesis.kinds.len() as u64) as usize];
                let (fault, repair) = self.draw_fault(kind);
                let (lo, hi) = nemesis.duration_ms;
                let duration = Time::from_millis(rng::between(&mut self.fault_rng, lo, hi));
                self.inject(fault, true, info, full);
                let repair_at = (self.now + duration).min(end);
                self.push(repair_at, Event::Fault(FaultEvent::NemesisRepair(repair)));
            }
        }
    }

    /// A random fault of this kind and the fault that undoes it.
    fn draw_fault(&mut self, kind: NemesisKind) -> (Fault, Fault) {
        let n = self.config.nodes;
        let rng = &mut self.fault_rng;
        let mut shuffled: Vec<u32> = (0..n).collect();
        let any = |rng: &mut SimRng| rng::below(rng, u64::from(n)) as u32;
        match kind {
            NemesisKind::Partition => {
                rng::shuffle(rng, &mut shuffled);
                let cut = 1 + rng::below(rng, u64::from(n) - 1) as usize;
                let (a, b) = shuffled.split_at(cut);
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                a.sort_unstable();
                b.sort_unstable();
                (Fault::Partition(vec![a, b]), Fault::Heal)
            }
            NemesisKind::Isolate => (Fault::Isolate(any(rng)), Fault::Heal),
            NemesisKind::IsolateLeader => (Fault::IsolateLeader, Fault::Heal),
            NemesisKind::CutOneWay => {
                let from = any(rng);
                let to = (from + 1 + rng::below(rng, u64::from(n) - 1) as u32) % n;
                (Fault::CutOneWay { from, to }, Fault::Heal)
            }
            NemesisKind::Bridge => {
                rng::shuffle(rng, &mut shuffled);
                let bridge = shuffled[0];
                let rest = &shuffled[1..];
                let cut = 1 + rng::below(rng, rest.len() as u64 - 1) as usize;
                let (mut left, mut right) = (rest[..cut].to_vec(), rest[cut..].to_vec());
                left.sort_unstable();
                right.sort_unstable();
                (
                    Fault::Bridge {
                        left,
                        right,
                        bridge,
                    },
                    Fault::Heal,
                )
            }
            NemesisKind::Crash => {
                let node = any(rng);
                (Fault::Crash(node), Fault::Restart(node))
            }
            NemesisKind::CrashLeader => (Fault::CrashLeader, Fault::RepairAll),
            NemesisKind::Pause => {
                let node = any(rng);
                (Fault::Pause(node), Fault::Resume(node))
            }
            NemesisKind::ClockSkew => {
                let node = any(rng);
                let offset_ms = rng::between(rng, 0, 1_000) as i64 - 500;
                let drift_ppm = rng::between(rng, 0, 200_000) as i32 - 100_000;
                (
                    Fault::ClockSkew {
                        node,
                        offset_ms,
                        drift_ppm,
                    },
                    Fault::ClockSkew {
                        node,
                        offset_ms: 0,
                        drift_ppm: 0,
                    },
                )
            }
        }
    }

    /// Applies a fault, resolving "the leader", and records it.
    fn inject(&mut self, fault: Fault, random: bool, info: &mut StepInfo, full: bool) {
        let leader = self.leader();
        let follower = self
            .world()
            .live_nodes()
            .find(|(_, p)| !p.is_leader())
            .map(|(id, _)| id);
        let resolved = match (&fault, leader, follower) {
            (Fault::IsolateLeader, Some(l), _) => Fault::Isolate(l.0),
            (Fault::CrashLeader, Some(l), _) => Fault::Crash(l.0),
            (Fault::PauseLeader, Some(l), _) => Fault::Pause(l.0),
            (Fault::IsolateFollower, _, Some(f)) => Fault::Isolate(f.0),
            (Fault::CrashFollower, _, Some(f)) => Fault::Crash(f.0),
            _ => fault,
        };
        let skipped = self.apply_fault(&resolved, info);
        if resolved.is_partition() && skipped.is_none() {
            self.partitions_injected += 1;
        }
        self.hasher.value(&resolved);
        if full {
            info.summary = match &skipped {
                None => format!("fault: {resolved}"),
                Some(why) => format!("fault: {resolved} (skipped: {why})"),
            };
            info.payload = serde_json::to_value(&resolved).unwrap_or_default();
        }
        self.fault_log.push(FaultRecord {
            at: self.now,
            fault: resolved,
            random,
            skipped,
        });
    }

    /// Does what the fault says. Returns why it did nothing, if it did nothing.
    fn apply_fault(&mut self, fault: &Fault, info: &mut StepInfo) -> Option<String> {
        self.side_cache = None;
        let reach = &mut self.network.reach;
        let now = self.now;
        match fault {
            Fault::Partition(groups) => {
                let groups: Vec<_> = groups.iter().map(|g| node_ids(g)).collect();
                reach.split(&groups, now);
            }
            Fault::Isolate(n) => reach.isolate(NodeId(*n), now),
            Fault::CutOneWay { from, to } => reach.cut_one_way(NodeId(*from), NodeId(*to), now),
            Fault::Bridge {
                left,
                right,
                bridge,
            } => {
                reach.bridge(&node_ids(left), &node_ids(right), NodeId(*bridge), now);
            }
            Fault::Heal => reach.heal(now),
            Fault::IsolateLeader | Fault::CrashLeader | Fault::PauseLeader => {
                return Some("no node leads now".into());
            }
            Fault::IsolateFollower | Fault::CrashFollower => {
                return Some("every live node leads".into());
            }
            Fault::Crash(n) => {
                let slot = &mut self.nodes[*n as usize];
                if slot.state.is_none() {
                    return Some(format!("n{n} is already down"));
                }
                slot.state = None;
                slot.timers.clear();
                slot.paused = false;
                slot.backlog.clear();
                info.node = Some(NodeId(*n));
            }
            Fault::Restart(n) => return self.restart(NodeId(*n), info),
            Fault::Pause(n) => {
                let slot = &mut self.nodes[*n as usize];
                if slot.state.is_none() || slot.paused {
                    return Some(format!("n{n} is not running"));
                }
                slot.paused = true;
                info.node = Some(NodeId(*n));
            }
            Fault::Resume(n) => return self.resume(NodeId(*n)),
            Fault::ClockSkew {
                node,
                offset_ms,
                drift_ppm,
            } => {
                self.nodes[*node as usize].clock = Clock {
                    offset_us: offset_ms * 1_000,
                    drift_ppm: *drift_ppm,
                };
            }
            Fault::RepairAll => {
                reach.heal(now);
                for i in 0..self.config.nodes {
                    self.nodes[i as usize].clock = Clock::default();
                    let _ = self.resume(NodeId(i));
                    let _ = self.restart(NodeId(i), info);
                }
            }
        }
        None
    }

    fn restart(&mut self, id: NodeId, info: &mut StepInfo) -> Option<String> {
        if self.nodes[id.index()].state.is_some() {
            return Some(format!("{id} is not down"));
        }
        // Rebuilt from the factory: nothing volatile survives; on_start reads the durable store.
        self.nodes[id.index()].state = Some(Arc::new((self.factory)(id)));
        info.node = Some(id);
        self.run_handler(id, info, |node, ctx| node.on_start(ctx));
        None
    }

    fn resume(&mut self, id: NodeId) -> Option<String> {
        let slot = &mut self.nodes[id.index()];
        if !slot.paused {
            return Some(format!("{id} is not paused"));
        }
        slot.paused = false;
        // What waited runs now, in the order it arrived.
        for event in std::mem::take(&mut slot.backlog) {
            self.push(self.now, event);
        }
        None
    }

    fn check_invariants(&mut self) {
        let mut invariants = std::mem::take(&mut self.invariants);
        // Eventually-invariants only matter once the faults are over; after that they are
        // sampled at most once per virtual millisecond, which is all the resolution the
        // convergence time needs, so idle chatter does not pay for them on every step.
        let faults_over = self.now >= self.faults_over_at
            && self
                .last_eventually_check
                .is_none_or(|t| self.now >= t + Time::from_millis(1));
        if faults_over {
            self.last_eventually_check = Some(self.now);
        }
        let mut all_eventually_hold = true;
        for (i, invariant) in invariants.iter_mut().enumerate() {
            let kind = invariant.kind();
            let check = match kind {
                InvariantKind::Always | InvariantKind::Sometimes => self.settled[i].is_none(),
                InvariantKind::Eventually => faults_over,
                InvariantKind::History => false,
            };
            if !check {
                continue;
            }
            let result = invariant.check(&self.world());
            match (kind, result) {
                (InvariantKind::Always, Err(message)) => {
                    self.settled[i] = Some(self.stats.steps);
                    self.violations.push(Violation {
                        invariant: invariant.name().to_string(),
                        kind,
                        step: self.stats.steps - 1,
                        time: self.now,
                        message,
                    });
                }
                (InvariantKind::Sometimes, Ok(())) => self.settled[i] = Some(self.stats.steps - 1),
                (InvariantKind::Eventually, Err(_)) => all_eventually_hold = false,
                _ => {}
            }
        }
        if faults_over {
            if !all_eventually_hold {
                self.converged_since = None;
            } else if self.converged_since.is_none() {
                self.converged_since = Some(self.now);
            }
        }
        self.invariants = invariants;
    }

    /// Ends the run (if it was not over) and checks the end-of-run invariants. Idempotent.
    pub fn finish(&mut self) -> Outcome {
        if self.stop_reason.is_none() {
            self.stop_reason = Some(StopReason::TimeLimit);
        }
        if !self.finished {
            self.finished = true;
            self.final_checks();
        }
        self.outcome()
    }

    fn final_checks(&mut self) {
        let mut invariants = std::mem::take(&mut self.invariants);
        let last_step = self.stats.steps.saturating_sub(1);
        let normal_end = self.stop_reason.as_ref().is_some_and(StopReason::is_normal);
        let already_violated: Vec<String> = self
            .violations
            .iter()
            .map(|v| v.invariant.clone())
            .collect();
        let cut_short = self.config.stop_on_violation && !already_violated.is_empty();
        for (i, invariant) in invariants.iter_mut().enumerate() {
            let kind = invariant.kind();
            let result = match kind {
                InvariantKind::Always => Ok(()),
                _ if cut_short => Ok(()),
                InvariantKind::Eventually if normal_end => {
                    invariant.check(&self.world()).map_err(|m| {
                        format!(
                            "{m} (at the end of the run, {} after the last fault)",
                            self.now - self.config.faults_over_at()
                        )
                    })
                }
                InvariantKind::Eventually => Ok(()),
                InvariantKind::Sometimes if normal_end && self.settled[i].is_none() => {
                    Err("never held during the run: the interesting state was not reached".into())
                }
                InvariantKind::Sometimes => Ok(()),
                InvariantKind::History => invariant.check_history(&self.history),
            };
            if let Err(message) = result {
                self.violations.push(Violation {
                    invariant: invariant.name().to_string(),
                    kind,
                    step: last_step,
                    time: self.now,
                    message,
                });
            }
        }
        self.invariants = invariants;
    }

    /// The outcome so far (complete after [`Simulation::finish`]).
    pub fn outcome(&self) -> Outcome {
        let mut ops = OpCounts::default();
        let mut by_side: BTreeMap<Side, OpCounts> = BTreeMap::new();
        for op in &self.history.ops {
            for counts in [&mut ops, by_side.entry(op.side).or_default()] {
                counts.total += 1;
                match op.completion {
                    Some(Completion::Ok(_)) => counts.ok += 1,
                    Some(Completion::Fail(_)) => counts.fail += 1,
                    Some(Completion::Unknown) | None => counts.unknown += 1,
                }
            }
        }
        let history_names = self
            .invariants
            .iter()
            .filter(|i| i.kind() == InvariantKind::History)
            .map(|i| i.name().to_string());
        let (violated, held): (Vec<String>, Vec<String>) =
            history_names.partition(|n| self.violations.iter().any(|v| &v.invariant == n));
        let faults_over = self.config.faults_over_at();
        let has_faults = !self.config.faults.is_empty() || self.config.nemesis.is_some();
        Outcome {
            seed: self.config.seed,
            stats: self.stats.clone(),
            stop_reason: self.stop_reason.clone().unwrap_or(StopReason::TimeLimit),
            violations: self.violations.clone(),
            reached: self
                .invariants
                .iter()
                .zip(&self.settled)
                .filter(|(i, s)| i.kind() == InvariantKind::Sometimes && s.is_some())
                .map(|(i, s)| (i.name().to_string(), s.expect("filtered")))
                .collect(),
            faults: self.fault_log.clone(),
            cap: CapReport {
                consistency_held: held,
                consistency_violated: violated,
                ops,
                by_side: by_side.into_iter().collect(),
                partitions_injected: self.partitions_injected,
                faults_over_at: has_faults.then_some(faults_over),
                convergence: self.converged_since.map(|t| t - faults_over),
            },
            trace_hash: self.hasher.finish(),
        }
    }
}

impl<P: Node> fmt::Debug for Simulation<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("now", &self.now)
            .field("steps", &self.stats.steps)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

fn describe_effect<P: Node>(effect: &Effect<P>) -> String {
    match effect {
        Effect::Send { to, msg } => format!("send → {to}: {msg:?}"),
        Effect::SetTimer { id, after, timer } => {
            format!("set timer #{} in {after}: {timer:?}", id.0)
        }
        Effect::CancelTimer(id) => format!("cancel timer #{}", id.0),
        Effect::Reply { to, response } => {
            format!("reply → {} (op {}): {response:?}", to.client, to.seq)
        }
        Effect::DurableWrite => "durable write".into(),
    }
}

/// Lets `handle` turn any payload into JSON through one `&dyn` parameter.
mod erased {
    pub trait Json {
        fn json(&self) -> serde_json::Value;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }
}
