//! The engine: one single-threaded, deterministic discrete-event simulation.
//!
//! Events wait in a priority queue ordered by `(time, seq)`, where `seq` counts insertions, so
//! events at the same instant run in the order they were scheduled, always. Each [`step`] pops
//! one event, hands it to a node (or a client, or the fault injector), applies the effects the
//! handler recorded, checks the invariants, and folds the step into the rolling trace hash.
//!
//! [`step`]: Simulation::step

mod checks;
mod choose;
mod clients;
mod fingerprint;
mod inject;
mod queue;

use crate::config::SimConfig;
use crate::faults::FaultRecord;
use crate::hash::StableHasher;
use crate::history::History;
use crate::invariant::{Invariant, InvariantKind};
use crate::load::FieldError;
use crate::network::{DropReason, Network, Reachability, Verdict};
use crate::node::{ClientId, Ctx, Effect, Node, NodeId, NodeView, ReplyTo, Store};
use crate::outcome::{Outcome, StopReason, Violation};
use crate::rng::{self, SimRng, Stream};
use crate::share::{Shareable, share_from};
use crate::time::Time;
use crate::trace::summary::{self, Fate};
use crate::trace::{
    CompactStep, CompactTrace, Detail, LostSend, StepInfo, StepKind, StepRecord, TraceMode,
};
use crate::workload::Workload;
use crate::world::{
    Changed, Clock, NodeSlot, NodeStatus, Presence, Stats, Timers, World, WorldState,
};
use clients::ClientState;
use queue::{Event, EventQueue, FaultEvent, Origin};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use choose::{Choice, Enabled, FaultBudget, NotEnabled};

/// A deterministic simulation of a cluster of `P` nodes.
pub struct Simulation<P: Node> {
    config: Arc<SimConfig>,
    factory: Arc<dyn Fn(NodeId) -> P + Send + Sync>,
    /// Shared with snapshots until a client draws its next request.
    workload: Option<Shareable<Box<dyn Workload<P::Request>>>>,
    /// Shared with snapshots, the list and each invariant in it, until a check changes one:
    /// then the list is copied (a reference count per invariant) and the invariant changed.
    /// Most steps change none, and a snapshot costs one count instead of one per invariant.
    invariants: Arc<Vec<Shareable<Box<dyn Invariant<P>>>>>,
    /// Each invariant's kind, asked once: checks run on every step. Shared by every copy.
    kinds: Arc<[InvariantKind]>,
    /// The world: nodes, network, history, counts.
    state: WorldState<P>,
    queue: EventQueue<P>,
    /// Per node: events a pause holds back, in arrival order. Empty (no node's entry) until
    /// the first pause, so that copies of a simulation that never paused allocate nothing here.
    backlogs: Vec<Vec<Event<P>>>,
    next_timer: u64,
    /// Exploration: a message the same as one already waiting is not queued again, and client
    /// events nobody waits for leave the queue ([`Simulation::explore_mode`]).
    exploring: bool,
    /// Exploration: the faults a scheduler may still choose.
    fault_budget: FaultBudget,
    /// Exploration: whether a node down may be restarted as a chosen step.
    restart_choices: bool,
    /// Exploration: whether healing every cut link is a chosen step.
    heal_choices: bool,
    /// Exploration: the delivery about to run was chosen to be lost.
    lose_next: bool,
    /// Exploration: timeouts wait until no message is in flight.
    synchronous: bool,
    side_cache: Option<clients::SideCache>,
    clients: Vec<ClientState>,
    fault_rng: SimRng,
    fault_log: Vec<FaultRecord>,
    partitions_injected: u64,
    hasher: StableHasher,
    /// Whether steps fold into `hasher`. A search's states never report a trace hash: it
    /// numbers a path, and a search reaches each state by many ([`Simulation::forget_trace`]).
    tracing: bool,
    violations: Vec<Violation>,
    /// History checks that could decide neither way, with why.
    undecided: Vec<(String, String)>,
    /// Per invariant: `Some(step)` once a sometimes-invariant held, or an always-invariant failed.
    /// Shared by copies: it changes once per invariant at most.
    settled: Arc<Vec<Option<u64>>>,
    converged_since: Option<Time>,
    records: Vec<StepRecord>,
    compact: CompactTrace,
    stop_reason: Option<StopReason>,
    finished: bool,
    effects_buf: Vec<Effect<P>>,
    notes_buf: Vec<String>,
    /// What a full trace records of the current step beyond [`StepInfo`]. Boxed, and only
    /// made by a full trace: a search stores thousands of simulations that never use it.
    detail: Option<Box<Detail>>,
    last_eventually_check: Option<Time>,
}

impl<P: Node> Clone for Simulation<P> {
    fn clone(&self) -> Self {
        Simulation {
            config: self.config.clone(),
            factory: self.factory.clone(),
            workload: self.workload.clone(),
            invariants: self.invariants.clone(),
            kinds: self.kinds.clone(),
            state: self.state.clone(),
            queue: self.queue.clone(),
            backlogs: self.backlogs.clone(),
            next_timer: self.next_timer,
            exploring: self.exploring,
            fault_budget: self.fault_budget,
            restart_choices: self.restart_choices,
            heal_choices: self.heal_choices,
            lose_next: self.lose_next,
            synchronous: self.synchronous,
            side_cache: self.side_cache.clone(),
            clients: self.clients.clone(),
            fault_rng: self.fault_rng.clone(),
            fault_log: self.fault_log.clone(),
            partitions_injected: self.partitions_injected,
            hasher: self.hasher,
            tracing: self.tracing,
            violations: self.violations.clone(),
            undecided: self.undecided.clone(),
            settled: self.settled.clone(),
            converged_since: self.converged_since,
            records: self.records.clone(),
            compact: self.compact.clone(),
            stop_reason: self.stop_reason.clone(),
            finished: self.finished,
            effects_buf: self.effects_buf.clone(),
            notes_buf: self.notes_buf.clone(),
            detail: self.detail.clone(),
            last_eventually_check: self.last_eventually_check,
        }
    }

    /// Copies field by field into what this simulation already holds, keeping its buffers
    /// (see [`Simulation::refill_from`]).
    fn clone_from(&mut self, source: &Self) {
        self.copy_from(source, false);
    }
}

impl<P: Node> Simulation<P> {
    /// [`Clone::clone_from`], or with `refill` [`Simulation::refill_from`]. The pattern names
    /// every field, so a new one cannot be forgotten here.
    fn copy_from(&mut self, source: &Simulation<P>, refill: bool) {
        let Simulation {
            config,
            factory,
            workload,
            invariants,
            kinds,
            state,
            queue,
            backlogs,
            next_timer,
            exploring,
            fault_budget,
            restart_choices,
            heal_choices,
            lose_next,
            synchronous,
            side_cache,
            clients,
            fault_rng,
            fault_log,
            partitions_injected,
            hasher,
            tracing,
            violations,
            undecided,
            settled,
            converged_since,
            records,
            compact,
            stop_reason,
            finished,
            effects_buf,
            notes_buf,
            detail,
            last_eventually_check,
        } = source;
        share_from(&mut self.config, config);
        share_from(&mut self.factory, factory);
        self.workload.clone_from(workload);
        share_from(&mut self.invariants, invariants);
        share_from(&mut self.kinds, kinds);
        self.state.clone_from(state);
        if refill {
            self.queue.refill_from(queue);
        } else {
            self.queue.clone_from(queue);
        }
        self.backlogs.clone_from(backlogs);
        self.next_timer = *next_timer;
        self.exploring = *exploring;
        self.fault_budget = *fault_budget;
        self.restart_choices = *restart_choices;
        self.heal_choices = *heal_choices;
        self.lose_next = *lose_next;
        self.synchronous = *synchronous;
        self.side_cache.clone_from(side_cache);
        self.clients.clone_from(clients);
        self.fault_rng.clone_from(fault_rng);
        self.fault_log.clone_from(fault_log);
        self.partitions_injected = *partitions_injected;
        self.hasher = *hasher;
        self.tracing = *tracing;
        self.violations.clone_from(violations);
        self.undecided.clone_from(undecided);
        share_from(&mut self.settled, settled);
        self.converged_since = *converged_since;
        self.records.clone_from(records);
        self.compact.clone_from(compact);
        self.stop_reason.clone_from(stop_reason);
        self.finished = *finished;
        self.effects_buf.clone_from(effects_buf);
        self.notes_buf.clone_from(notes_buf);
        self.detail.clone_from(detail);
        self.last_eventually_check = *last_eventually_check;
    }
}

impl<P: Node> Simulation<P> {
    /// A simulation ready to run: nodes scheduled to start at time zero, clients at their start
    /// time, scheduled faults and the nemesis in the queue.
    pub fn new(
        config: SimConfig,
        factory: impl Fn(NodeId) -> P + Send + Sync + 'static,
        workload: Option<Box<dyn Workload<P::Request>>>,
        invariants: Vec<Box<dyn Invariant<P>>>,
    ) -> Result<Simulation<P>, FieldError> {
        config.validate()?;
        if config.clients.count > 0 && workload.is_none() {
            return Err(FieldError::new(
                "clients",
                "clients need a workload, and this protocol has none",
            ));
        }
        let seed = config.seed;
        let nodes = (0..config.nodes)
            .map(|i| {
                let absent = config.absent.contains(&i);
                NodeSlot {
                    state: (!absent).then(|| Shareable::new(factory(NodeId(i)))),
                    durable: Shareable::default(),
                    paused: false,
                    presence: if absent {
                        Presence::Absent
                    } else {
                        Presence::Member
                    },
                    timers: Timers::new(),
                    clock: Clock::default(),
                    rng: rng::stream(seed, Stream::Node(i)),
                    net_rng: rng::stream(seed, Stream::Network(i)),
                }
            })
            .collect();
        let clients = (0..config.clients.count)
            .map(|i| ClientState {
                rng: rng::stream(seed, Stream::Client(i)),
                workload_rng: rng::stream(seed, Stream::Workload(i)),
                ops: Arc::default(),
                pending: None,
                leader_hint: None,
                key_hints: BTreeMap::new(),
            })
            .collect();
        let settled = Arc::new(vec![None; invariants.len()]);
        let kinds = invariants.iter().map(|i| i.kind()).collect();
        let mut sim = Simulation {
            state: WorldState {
                now: Time::ZERO,
                nodes,
                network: Network::new(config.nodes, &config.network),
                history: Shareable::default(),
                stats: Stats::default(),
                durable_writes: Vec::new(),
                changed: Changed::Nothing,
                faults_over_at: config.faults_over_at(),
            },
            factory: Arc::new(factory),
            workload: workload.map(Shareable::new),
            invariants: Arc::new(invariants.into_iter().map(Shareable::new).collect()),
            kinds,
            queue: EventQueue::new(),
            backlogs: Vec::new(),
            next_timer: 0,
            exploring: false,
            fault_budget: FaultBudget::default(),
            restart_choices: false,
            heal_choices: false,
            lose_next: false,
            synchronous: false,
            side_cache: None,
            clients,
            fault_rng: rng::stream(seed, Stream::Faults),
            fault_log: Vec::new(),
            partitions_injected: 0,
            hasher: StableHasher::new(),
            tracing: true,
            violations: Vec::new(),
            undecided: Vec::new(),
            settled,
            converged_since: None,
            records: Vec::new(),
            compact: CompactTrace::default(),
            stop_reason: None,
            finished: false,
            effects_buf: Vec::new(),
            notes_buf: Vec::new(),
            detail: None,
            last_eventually_check: None,
            config: Arc::new(config),
        };
        for i in 0..sim.config.nodes {
            if !sim.config.absent.contains(&i) {
                sim.push(Time::ZERO, Event::Start(NodeId(i)));
            }
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
        &self.state.network.reach
    }

    /// Virtual time now.
    pub fn now(&self) -> Time {
        self.state.now
    }

    /// A copy that continues exactly like this one and shares every node's state, durable
    /// store and the client history with it until one of the two writes them: cheap to keep
    /// many of (the TUI's checkpoints). `clone` gives the same copy, but copies what this
    /// run owns outright; after a snapshot, both own nothing until they write.
    pub fn snapshot(&mut self) -> Simulation<P> {
        self.share_parts();
        self.clone()
    }

    /// A copy of this simulation to try steps on, made equal to it again by
    /// [`Simulation::refill_from`] before each: a search's scratch copy of the state it
    /// expands. Share the parts first ([`Simulation::share_parts`]).
    pub(crate) fn scratch_copy(&self) -> Simulation<P> {
        let mut copy = self.clone();
        copy.queue.track_changes();
        copy
    }

    /// Makes this simulation a scratch copy of `source`, as [`Simulation::scratch_copy`]
    /// would, but into the buffers it has.
    pub(crate) fn scratch_of(&mut self, source: &Simulation<P>) {
        self.copy_from(source, false);
        self.queue.track_changes();
    }

    /// Makes this scratch copy of `source` ([`Simulation::scratch_copy`]) equal to it again.
    /// It keeps its own buffers (queue, node and client lists) and copies into them, where a
    /// new copy would allocate them and the copy it replaces free them; of the queue's events
    /// it copies back only those its steps took or added; and an `Arc` it already shares with
    /// `source` is neither counted up nor down. `source` must not have changed since the
    /// scratch copy was made (a search holds it borrowed meanwhile).
    pub(crate) fn refill_from(&mut self, source: &Simulation<P>) {
        self.copy_from(source, true);
    }

    /// Shares every node's state, durable store, the history, the workload and the
    /// invariants, so that copies count references to them instead of copying them.
    pub(crate) fn share_parts(&mut self) {
        for slot in &mut self.state.nodes {
            if let Some(node) = &mut slot.state {
                node.share();
            }
            slot.durable.share();
        }
        self.state.history.share();
        if let Some(workload) = &mut self.workload {
            workload.share();
        }
        // A list shared already cannot be reached to share its invariants, nor needs to be:
        // whoever changes it copies it first.
        if let Some(invariants) = Arc::get_mut(&mut self.invariants) {
            invariants.iter_mut().for_each(Shareable::share);
        }
    }

    /// Forgets the events a pause held back for `node` (it crashed or left).
    fn drop_backlog(&mut self, node: NodeId) {
        if let Some(backlog) = self.backlogs.get_mut(node.index()) {
            backlog.clear();
        }
    }

    /// A read-only view of the world.
    pub fn world(&self) -> World<'_, P> {
        World::new(&self.state)
    }

    /// Counts so far.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The client history so far.
    pub fn history(&self) -> &History<P::Request, P::Response> {
        &self.state.history
    }

    /// The step records kept so far ([`TraceMode::Full`] only).
    pub fn records(&self) -> &[StepRecord] {
        &self.records
    }

    /// Takes the step records kept so far, leaving none (so a trace can be streamed to a file
    /// as the run goes, in constant memory).
    pub fn drain_records(&mut self) -> Vec<StepRecord> {
        std::mem::take(&mut self.records)
    }

    /// The compact step records kept so far ([`TraceMode::Compact`] only).
    pub fn compact_records(&self) -> Vec<CompactStep> {
        self.compact.steps()
    }

    /// Takes the compact records kept so far, leaving none (so snapshots stay small).
    pub fn drain_compact_records(&mut self) -> Vec<CompactStep> {
        self.compact.drain()
    }

    /// Bytes the compact trace holds (its allocated capacity).
    pub fn compact_trace_bytes(&self) -> usize {
        self.compact.bytes()
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
        self.state.status(id)
    }

    /// Each node's status and protocol view (crashed nodes show no view).
    pub fn views(&self) -> Vec<(NodeStatus, NodeView)> {
        (0..self.state.nodes.len() as u32)
            .map(|i| self.view(NodeId(i)))
            .collect()
    }

    /// One node's status and protocol view (a crashed node shows none).
    pub fn view(&self, id: NodeId) -> (NodeStatus, NodeView) {
        let slot = &self.state.nodes[id.index()];
        let view = slot
            .state
            .as_ref()
            .map_or_else(NodeView::default, |p| p.view(&slot.durable));
        (self.status(id), view)
    }

    /// Messages in flight per directed link `(from, to, count)`, in order.
    pub fn in_flight(&self) -> Vec<(NodeId, NodeId, usize)> {
        let mut counts: BTreeMap<(NodeId, NodeId), usize> = BTreeMap::new();
        for event in self.queue.events() {
            if let Event::Deliver { from, to, .. } = *event {
                *counts.entry((from, to)).or_default() += 1;
            }
        }
        counts.into_iter().map(|((a, b), n)| (a, b, n)).collect()
    }

    /// Folds `value` into the trace hash, unless the hash is forgotten.
    #[inline]
    fn trace<T: serde::Serialize + ?Sized>(&mut self, value: &T) {
        if self.tracing {
            self.hasher.value(value);
        }
    }

    /// From now on, steps are not folded into the trace hash, which stays as it is: an
    /// exhaustive search's states never report it, and hashing every message a step handles
    /// and sends cost a search a few percent of its time.
    pub(crate) fn forget_trace(&mut self) {
        self.tracing = false;
    }

    /// Runs to the end and returns the outcome.
    pub fn run(&mut self) -> Outcome {
        while self.step() {}
        self.finish()
    }

    fn push(&mut self, time: Time, event: Event<P>) {
        self.queue.push(time, event);
    }

    /// Pops the next event that is a step: skips cancelled timers and holds back events for
    /// paused nodes. Sets the stop reason when the run is over.
    fn next_event(&mut self) -> Option<(Time, Event<P>)> {
        loop {
            let Some(next) = self.queue.next_time() else {
                // Nothing will ever happen again: the world stays as it is until the stop time,
                // which is when end-of-run checks look at it.
                self.state.now = self.config.stop;
                self.state.stats.end_time = self.state.now;
                self.stop_reason = Some(StopReason::Quiescent);
                return None;
            };
            if next > self.config.stop {
                self.stop_reason = Some(StopReason::TimeLimit);
                return None;
            }
            let (time, event) = self.queue.pop().expect("peeked");
            if let Event::Timer { node, id } = &event
                && !self.state.nodes[node.index()].timers.contains(*id)
            {
                continue;
            }
            if let Some(node) = event.target_node()
                && self.state.nodes[node.index()].paused
            {
                if self.backlogs.len() <= node.index() {
                    self.backlogs.resize_with(self.state.nodes.len(), Vec::new);
                }
                self.backlogs[node.index()].push(event);
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
        if self.state.stats.steps >= self.config.limits.max_steps {
            self.stop_reason = Some(StopReason::StepLimit(self.config.limits.max_steps));
            return false;
        }
        let Some((time, event)) = self.next_event() else {
            return false;
        };
        self.run_event(time, event);
        true
    }

    /// Runs `event` as the next step, at `time`: hands it to its node (or client, or the fault
    /// injector), applies the effects, checks the invariants and records the step.
    #[inline]
    fn run_event(&mut self, time: Time, event: Event<P>) {
        self.state.now = time;
        self.state.durable_writes.clear();
        self.state.changed = if matches!(event, Event::Fault(_)) {
            Changed::Everything
        } else {
            Changed::Nothing
        };
        let full = self.config.trace == TraceMode::Full;
        let step = self.state.stats.steps;
        if self.tracing {
            self.hasher.word(step);
            self.hasher.word(time.as_micros());
            self.hasher.value(&event);
        }
        let info = self.handle(event, full);
        self.state.stats.steps += 1;
        self.state.stats.end_time = self.state.now;
        let first_violation = self.violations.len();
        self.check_invariants();
        if full {
            let notes = std::mem::take(&mut self.notes_buf);
            let detail = std::mem::take(self.detail_mut());
            self.records.push(StepRecord {
                step,
                time_us: time.as_micros(),
                kind: info.kind,
                node: info.node,
                from: info.from,
                client: info.client,
                sent_step: detail.sent.map(|(step, _)| step),
                sent_us: detail.sent.map(|(_, at)| at.as_micros()),
                duplicate: detail.duplicate,
                lost: detail.lost,
                sent_to: detail.sent_to,
                lost_at_send: detail.lost_at_send,
                summary: detail.summary,
                payload: detail.payload,
                effects: detail.effects,
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
                // Validation keeps node and client numbers below `CompactStep::NONE`.
                let id = |n: Option<NodeId>| n.map_or(CompactStep::NONE, |n| n.0 as u16);
                self.compact.push(CompactStep {
                    time_us: time.as_micros(),
                    node: id(info.node),
                    peer: info
                        .from
                        .map(|n| n.0 as u16)
                        .or(info.client.map(|c| c.0 as u16))
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
            self.stop_reason = Some(StopReason::FirstViolation);
        }
    }

    fn handle(&mut self, event: Event<P>, full: bool) -> StepInfo {
        let payload = |v: &dyn erased::Json| v.json();
        match event {
            Event::Start(id) => {
                let mut info = StepInfo::new(StepKind::Start);
                info.node = Some(id);
                if full {
                    self.detail_mut().summary = summary::start(id);
                }
                self.run_handler(id, |node, ctx| node.on_start(ctx));
                info
            }
            Event::Deliver {
                from,
                to,
                sent,
                msg,
                origin,
                ..
            } => {
                let reachable = self.state.network.reach.delivers(from, to, sent);
                let crashed = self.state.nodes[to.index()].state.is_none();
                let chosen_loss = std::mem::take(&mut self.lose_next);
                let kind = if reachable && !crashed && !chosen_loss {
                    StepKind::Deliver
                } else {
                    StepKind::Drop
                };
                let mut info = StepInfo::new(kind);
                info.node = Some(to);
                info.from = Some(from);
                if full {
                    self.detail_mut().payload = payload(&msg);
                }
                if full {
                    self.detail_mut().sent = Some((origin.step(), sent));
                    self.detail_mut().duplicate = origin.is_copy();
                }
                if chosen_loss {
                    self.state.stats.dropped_loss += 1;
                    if full {
                        self.detail_mut().lost = Some(DropReason::Loss);
                        self.detail_mut().summary = summary::message(from, to, &msg, Fate::Chosen);
                    }
                } else if !reachable {
                    self.state.stats.dropped_partition += 1;
                    if full {
                        self.detail_mut().lost = Some(DropReason::Partition);
                        self.detail_mut().summary =
                            summary::message(from, to, &msg, Fate::LostInFlight);
                    }
                } else if crashed {
                    self.state.stats.dropped_crashed += 1;
                    if full {
                        self.detail_mut().lost = Some(self.down_reason(to));
                        self.detail_mut().summary =
                            summary::message(from, to, &msg, Fate::RecipientDown);
                    }
                } else {
                    self.state.stats.messages_delivered += 1;
                    if full {
                        self.detail_mut().summary =
                            summary::message(from, to, &msg, Fate::Delivered);
                    }
                    self.run_handler(to, |node, ctx| node.on_message(from, msg, ctx));
                }
                info
            }
            Event::Timer { node, id } => {
                let timer = self.state.nodes[node.index()]
                    .timers
                    .remove(id)
                    .expect("live timer");
                self.trace(&timer);
                self.state.stats.timers_fired += 1;
                let mut info = StepInfo::new(StepKind::Timer);
                info.node = Some(node);
                if full {
                    self.detail_mut().payload = payload(&timer);
                }
                if full {
                    self.detail_mut().summary = summary::timer(node, &timer);
                }
                self.run_handler(node, |n, ctx| n.on_timer(timer, ctx));
                info
            }
            Event::Request {
                client,
                to,
                seq,
                send,
                sent,
            } => {
                let index = self.clients[client.0 as usize].ops[seq as usize];
                let request = self.state.history.ops[index].request.clone();
                self.trace(&request);
                let mut info = StepInfo::new(StepKind::Request);
                info.node = Some(to);
                info.client = Some(client);
                if full {
                    self.detail_mut().payload = payload(&request);
                }
                if full {
                    self.detail_mut().sent = Some(sent);
                }
                if self.state.nodes[to.index()].state.is_none() {
                    if full {
                        self.detail_mut().lost = Some(self.down_reason(to));
                        self.detail_mut().summary =
                            summary::request(client, to, (seq, send), &request, true);
                    }
                } else {
                    if full {
                        self.detail_mut().summary =
                            summary::request(client, to, (seq, send), &request, false);
                    }
                    let reply_to = ReplyTo { client, seq };
                    self.run_handler(to, |n, ctx| n.on_request(reply_to, request, ctx));
                }
                info
            }
            Event::Reply {
                client,
                from,
                seq,
                response,
                sent,
            } => {
                let mut info = StepInfo::new(StepKind::Reply);
                if full {
                    self.detail_mut().sent = Some(sent);
                }
                info.node = Some(from);
                info.client = Some(client);
                if full {
                    self.detail_mut().payload = payload(&response);
                }
                if full {
                    self.detail_mut().summary = summary::reply(from, client, seq, &response);
                }
                self.client_reply(client, from, seq, response);
                info
            }
            Event::ClientTimeout { client, seq, send } => {
                let mut info = StepInfo::new(StepKind::ClientTimeout);
                info.client = Some(client);
                if full {
                    self.detail_mut().summary = summary::client_timeout(client, seq, send);
                }
                self.client_timeout(client, seq, send);
                info
            }
            Event::ClientInvoke(client) => {
                let mut info = StepInfo::new(StepKind::ClientInvoke);
                info.client = Some(client);
                self.client_invoke(client, full);
                info
            }
            Event::Fault(fault) => {
                let mut info = StepInfo::new(StepKind::Fault);
                self.handle_fault(fault, &mut info, full);
                info
            }
        }
    }

    /// What a full trace records of the current step, made on first use.
    fn detail_mut(&mut self) -> &mut Detail {
        self.detail.get_or_insert_with(Box::default)
    }

    /// Runs one handler on a live node and applies what it did.
    fn run_handler(&mut self, id: NodeId, f: impl FnOnce(&mut P, &mut Ctx<'_, P>)) {
        let full = self.config.trace == TraceMode::Full;
        self.state.changed = match self.state.changed {
            Changed::Nothing => Changed::Only(id),
            Changed::Only(other) if other == id => Changed::Only(id),
            _ => Changed::Everything,
        };
        let mut effects = std::mem::take(&mut self.effects_buf);
        {
            let nodes = self.config.nodes;
            let slot = &mut self.state.nodes[id.index()];
            let node = slot
                .state
                .as_mut()
                .expect("handlers run on live nodes")
                .get_mut();
            let mut ctx = Ctx {
                id,
                now: slot.clock.local(self.state.now),
                nodes,
                rng: &mut slot.rng,
                durable: Store::Shared(&mut slot.durable),
                next_timer: &mut self.next_timer,
                effects: &mut effects,
                notes: &mut self.notes_buf,
                keep_notes: full,
            };
            f(node, &mut ctx);
        }
        let mut exits = false;
        for effect in effects.drain(..) {
            self.trace(&effect);
            exits |= matches!(effect, Effect::Exit);
            if matches!(effect, Effect::DurableWrite) && !self.state.durable_writes.contains(&id) {
                self.state.durable_writes.push(id);
            }
            if full {
                self.detail_mut().effects.push(summary::effect(&effect));
            }
            self.apply(id, effect, full);
        }
        self.effects_buf = effects;
        if exits {
            self.exit(id);
        }
    }

    /// Takes `id` out of the cluster: it stops as in a crash, and is not a member any more.
    pub(super) fn exit(&mut self, id: NodeId) {
        let slot = &mut self.state.nodes[id.index()];
        slot.state = None;
        slot.timers.clear();
        slot.paused = false;
        slot.presence = Presence::Left;
        self.drop_backlog(id);
        self.state.changed = Changed::Everything;
    }

    /// Why a message or request for a node that is not running is lost.
    fn down_reason(&self, id: NodeId) -> DropReason {
        if self.state.nodes[id.index()].presence.is_member() {
            DropReason::Crashed
        } else {
            DropReason::NotMember
        }
    }

    /// Applies one effect of `id`'s handler; `full` records its message detail.
    fn apply(&mut self, id: NodeId, effect: Effect<P>, full: bool) {
        match effect {
            Effect::Send { to, msg } => {
                assert!(
                    to.0 < self.config.nodes,
                    "{id} sent a message to {to}, which does not exist"
                );
                self.state.stats.messages_sent += 1;
                let slot = &mut self.state.nodes[id.index()];
                match self.state.network.decide(id, to, &mut slot.net_rng) {
                    Verdict::Drop(reason) => {
                        if reason == DropReason::Partition {
                            self.state.stats.dropped_partition += 1;
                        } else {
                            self.state.stats.dropped_loss += 1;
                        }
                        if full {
                            self.detail_mut().lost_at_send.push(LostSend {
                                to,
                                reason,
                                message: format!("{msg:?}"),
                            });
                        }
                    }
                    Verdict::Deliver { delay, duplicate } => {
                        if full {
                            self.detail_mut().sent_to.push(to);
                        }
                        let step = self.state.stats.steps;
                        let msg_hash = if self.exploring {
                            crate::hash::stable_hash(&msg)
                        } else {
                            0
                        };
                        if let Some(extra) = duplicate {
                            self.state.stats.duplicated += 1;
                            self.push(
                                self.state.now + extra,
                                Event::Deliver {
                                    from: id,
                                    to,
                                    sent: self.state.now,
                                    msg: msg.clone(),
                                    origin: Origin::new(step, true),
                                    msg_hash,
                                },
                            );
                        }
                        if self.exploring && self.waits(id, to, msg_hash) {
                            return;
                        }
                        self.push(
                            self.state.now + delay,
                            Event::Deliver {
                                from: id,
                                to,
                                sent: self.state.now,
                                msg,
                                origin: Origin::new(step, false),
                                msg_hash,
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
                let slot = &mut self.state.nodes[id.index()];
                let delay = slot.clock.real_delay(after);
                slot.timers.insert(timer_id, timer);
                self.push(
                    self.state.now + delay,
                    Event::Timer {
                        node: id,
                        id: timer_id,
                    },
                );
            }
            Effect::CancelTimer(timer_id) => {
                self.state.nodes[id.index()].timers.remove(timer_id);
            }
            Effect::Reply { to, response } => {
                if to.client.0 as usize >= self.clients.len() {
                    panic!("{id} replied to {}, which does not exist", to.client);
                }
                let client = &mut self.clients[to.client.0 as usize];
                let (lo, hi) = self.config.clients.latency_ms;
                let delay =
                    Time::from_micros(rng::between(&mut client.rng, lo * 1_000, hi * 1_000));
                // A late answer (see `Simulation::explore_mode`). The delay is drawn all the
                // same: the client's stream is where it would be had the answer come first.
                if self.exploring && !self.client_waits_on(to.client, to.seq, None) {
                    return;
                }
                let event = Event::Reply {
                    client: to.client,
                    from: id,
                    seq: to.seq,
                    response,
                    sent: (self.state.stats.steps, self.state.now),
                };
                self.push(self.state.now + delay, event);
            }
            Effect::DurableWrite | Effect::Exit => {}
        }
    }
}

impl<P: Node> fmt::Debug for Simulation<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("now", &self.state.now)
            .field("steps", &self.state.stats.steps)
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
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
