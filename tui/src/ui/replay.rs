//! Time travel over a deterministic run: the whole run is taken once, keeping a compact record
//! per step and a snapshot of the world every so many steps; any step is then reached by
//! restoring the nearest snapshot at or before it and replaying forward. The simulation is
//! never changed, only re-run, so what the TUI shows at step k is exactly what happened.

use crate::schedule::Driver;
use simlab_protocols::{Run, RunOptions, Scenario, registry};
use simlab_sim::{CompactStep, NodeStatus, NodeView, NotEnabled, StepKind, StepRecord, TraceMode};

/// Steps between snapshots at first. When there would be more than [`checkpoint_limit`], every
/// other one is dropped and the spacing doubles, so memory stays bounded while a seek never
/// replays more than one spacing's worth of steps (a few thousand, a few milliseconds).
pub const FIRST_SPACING: u64 = 1_000;

/// The most snapshots kept.
pub const MAX_CHECKPOINTS: usize = 256;

/// The fewest snapshots kept, however large the cluster.
pub const MIN_CHECKPOINTS: usize = 16;

/// Node copies the snapshots may hold between them. A snapshot shares every node that did not
/// change since the one before, but in a large cluster most nodes change between two
/// snapshots, so a snapshot costs about one copy of every node: large clusters keep fewer.
pub const NODE_COPIES: usize = 16_384;

/// How many snapshots a run of `nodes` nodes keeps: [`MAX_CHECKPOINTS`] up to 64 nodes, then
/// fewer in proportion (16 at 1,000 nodes), so memory stays bounded at any size; seeks then
/// replay more steps.
pub fn checkpoint_limit(nodes: u32) -> usize {
    (NODE_COPIES / nodes.max(1) as usize).clamp(MIN_CHECKPOINTS, MAX_CHECKPOINTS)
}

/// A recorded run that can be viewed at any step.
pub struct Replay {
    /// Every step's compact record.
    pub steps: Timeline,
    /// Snapshots of the world: `checkpoints[i]` is the world after `i * spacing` steps.
    checkpoints: Vec<Box<dyn Run>>,
    /// Steps between snapshots.
    spacing: u64,
    /// The world after the step the cursor is on (or before step 0).
    current: Box<dyn Run>,
    /// How many steps `current` has taken.
    position: u64,
    /// Names and kinds of the invariants.
    pub invariants: Vec<(String, simlab_sim::InvariantKind)>,
    /// The finished run's violations (with the step each was found at).
    pub violations: Vec<simlab_sim::Violation>,
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Clients in the scenario.
    pub clients: u32,
    /// How each step is taken: the default scheduler's, or a schedule's.
    driver: Driver,
}

/// What the screen shows of the world at one step.
pub struct Moment {
    /// The record of the step (as full detail).
    pub record: Option<StepRecord>,
    /// Node status and view after the step.
    pub views: Vec<(NodeStatus, NodeView)>,
    /// Node views before the step (to mark what changed).
    pub before: Vec<(NodeStatus, NodeView)>,
    /// Reachability groups and cut links after the step.
    pub partition: simlab_sim::PartitionSummary,
    /// Messages in flight after the step.
    pub in_flight: Vec<(simlab_sim::NodeId, simlab_sim::NodeId, usize)>,
    /// Virtual time after the step.
    pub time: simlab_sim::Time,
}

impl Moment {
    /// Whether node `id` acted in this step, or its status or view changed.
    pub fn changed(&self, id: u32) -> bool {
        let acted = self
            .record
            .as_ref()
            .is_some_and(|r| r.node.is_some_and(|n| n.0 == id));
        acted || self.views.get(id as usize) != self.before.get(id as usize)
    }

    /// Node `id`'s line as the node list filter matches it, lower case: its name, status,
    /// role and `field=value` pairs.
    pub fn node_text(&self, id: u32) -> String {
        let Some((status, view)) = self.views.get(id as usize) else {
            return String::new();
        };
        let mut text = format!("n{id} ");
        if *status != NodeStatus::Up {
            text.push_str(status.label());
            text.push(' ');
        }
        if !status.is_down() {
            text.push_str(&view.role);
            for field in &view.fields {
                text.push_str(&format!(" {}={}", field.name, field.value));
            }
        }
        // A space at the end lets "n1 " match n1 alone, not n10.
        text.push(' ');
        text.to_lowercase()
    }
}

impl Replay {
    /// Runs the scenario once with this seed, keeping compact records and snapshots.
    pub fn record(scenario: &Scenario, seed: u64) -> Replay {
        Replay::record_driven(scenario, seed, Driver::Default)
            .expect("the default scheduler takes any step")
    }

    /// Runs the scenario once with this seed, taking each step as `driver` says, keeping
    /// compact records and snapshots. An error when a schedule's step is not enabled.
    pub fn record_driven(
        scenario: &Scenario,
        seed: u64,
        driver: Driver,
    ) -> Result<Replay, (usize, NotEnabled)> {
        let options = RunOptions {
            seed: Some(seed),
            trace: TraceMode::Compact,
            stop_on_violation: false,
        };
        let mut run = registry::build(scenario, &options);
        let mut checkpoints = vec![run.snapshot()];
        let mut spacing = FIRST_SPACING;
        let limit = checkpoint_limit(scenario.nodes);
        let mut steps = Timeline::default();
        while driver.step(&mut *run)? {
            if run.steps().is_multiple_of(spacing) {
                // Move the records out first: a snapshot must not copy the trace so far.
                steps.extend(run.drain_compact_records());
                checkpoints.push(run.snapshot());
                if checkpoints.len() > limit {
                    let mut index = 0;
                    checkpoints.retain(|_| {
                        index += 1;
                        (index - 1) % 2 == 0
                    });
                    spacing *= 2;
                }
            }
        }
        let outcome = run.finish();
        steps.extend(run.drain_compact_records());
        steps.shrink_to_fit();
        let invariants = run.invariants();
        let mut current = checkpoints[0].snapshot();
        current.set_trace(TraceMode::HashOnly);
        Ok(Replay {
            steps,
            checkpoints,
            spacing,
            current,
            position: 0,
            invariants,
            violations: outcome.violations,
            nodes: scenario.nodes,
            clients: scenario.clients.count,
            driver,
        })
    }

    /// A copy of the run just after `count` steps (0 = before the first), hashing only, apart
    /// from the one the cursor moves.
    pub fn run_from(&mut self, count: u64) -> Box<dyn Run> {
        let count = count.min(self.len());
        let index = ((count / self.spacing) as usize).min(self.checkpoints.len() - 1);
        let mut run = self.checkpoints[index].snapshot();
        run.set_trace(TraceMode::HashOnly);
        let mut at = index as u64 * self.spacing;
        while at < count && replay_step(&self.driver, &mut *run) {
            at += 1;
        }
        run
    }

    /// Steps in the run.
    pub fn len(&self) -> u64 {
        self.steps.len() as u64
    }

    /// Whether the run took no step at all.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Moves the world to just after `count` steps (0 = before the first).
    fn seek(&mut self, count: u64) {
        let count = count.min(self.len());
        if count < self.position || count - self.position > self.spacing {
            let index = (count / self.spacing) as usize;
            let index = index.min(self.checkpoints.len() - 1);
            self.current = self.checkpoints[index].snapshot();
            self.current.set_trace(TraceMode::HashOnly);
            self.position = index as u64 * self.spacing;
        }
        while self.position < count {
            replay_step(&self.driver, &mut *self.current);
            self.position += 1;
        }
    }

    /// The world at step `step` (after it ran): its record in full, and the views before and
    /// after.
    pub fn moment(&mut self, step: u64) -> Moment {
        if self.is_empty() {
            self.seek(0);
            return Moment {
                record: None,
                views: self.current.views(),
                before: self.current.views(),
                partition: self.current.partition(),
                in_flight: self.current.in_flight(),
                time: self.current.now(),
            };
        }
        let step = step.min(self.len() - 1);
        self.seek(step);
        // A node's handler changes only that node: the views before the step are the views
        // after it but for the node that acted. Other steps (faults, starts) may change anyone.
        let compact = self.steps.at(step as usize);
        let only = (compact.node != CompactStep::NONE
            && matches!(
                compact.kind,
                StepKind::Deliver | StepKind::Timer | StepKind::Request
            ))
        .then_some(simlab_sim::NodeId(compact.node.into()));
        let before_all = only.is_none().then(|| self.current.views());
        let before_one = only.map(|n| self.current.view(n));
        // Replay just this step with full detail, then go back to hashing only.
        self.current.set_trace(TraceMode::Full);
        replay_step(&self.driver, &mut *self.current);
        self.position += 1;
        self.current.set_trace(TraceMode::HashOnly);
        let record = self.current.records().last().cloned();
        let views = self.current.views();
        let before = before_all.unwrap_or_else(|| {
            let mut before = views.clone();
            if let (Some(n), Some(view)) = (only, before_one) {
                before[n.index()] = view;
            }
            before
        });
        Moment {
            record,
            views,
            before,
            partition: self.current.partition(),
            in_flight: self.current.in_flight(),
            time: self.current.now(),
        }
    }

    /// How many snapshots are kept.
    pub fn checkpoint_count(&self) -> usize {
        self.checkpoints.len()
    }

    /// The first step at which any invariant was violated.
    pub fn first_violation(&self) -> Option<u64> {
        self.steps
            .violation
            .iter()
            .position(|&v| v)
            .map(|i| i as u64)
    }
}

/// Takes `run`'s next step as the recorded run took it: a schedule that fit the recording fits
/// every replay of it, the runs being deterministic.
fn replay_step(driver: &Driver, run: &mut dyn Run) -> bool {
    driver
        .step(run)
        .expect("a replay takes the steps its recording took")
}

/// One step as the timeline lists it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Virtual time in microseconds.
    pub time_us: u64,
    /// The node that acted ([`CompactStep::NONE`] if none).
    pub node: u16,
    /// The sender of a delivered message, or the client involved ([`CompactStep::NONE`]).
    pub peer: u16,
    /// The kind of event.
    pub kind: StepKind,
    /// Whether an invariant was first violated at this step.
    pub violation: bool,
}

/// Every step of a recorded run, stored column by column so any step is found at once: 14 bytes
/// a step (the engine packs a step in 8, but only for reading in order). A million-step run is
/// most of the TUI's memory, so this matters.
#[derive(Default)]
pub struct Timeline {
    time_us: Vec<u64>,
    node: Vec<u16>,
    peer: Vec<u16>,
    kind: Vec<StepKind>,
    violation: Vec<bool>,
}

impl Timeline {
    fn extend(&mut self, steps: Vec<CompactStep>) {
        for step in steps {
            self.time_us.push(step.time_us);
            self.node.push(step.node);
            self.peer.push(step.peer);
            self.kind.push(step.kind);
            self.violation.push(step.violation);
        }
    }

    fn shrink_to_fit(&mut self) {
        self.time_us.shrink_to_fit();
        self.node.shrink_to_fit();
        self.peer.shrink_to_fit();
        self.kind.shrink_to_fit();
        self.violation.shrink_to_fit();
    }

    /// Steps recorded.
    pub fn len(&self) -> usize {
        self.kind.len()
    }

    /// Whether no step was recorded.
    pub fn is_empty(&self) -> bool {
        self.kind.is_empty()
    }

    /// Step `index`, if the run has it.
    pub fn get(&self, index: usize) -> Option<Step> {
        Some(Step {
            time_us: *self.time_us.get(index)?,
            node: self.node[index],
            peer: self.peer[index],
            kind: self.kind[index],
            violation: self.violation[index],
        })
    }

    /// Step `index`.
    ///
    /// # Panics
    /// If the run has no such step.
    pub fn at(&self, index: usize) -> Step {
        self.get(index)
            .unwrap_or_else(|| panic!("step {index} of a {}-step run", self.len()))
    }

    /// The first step at or after virtual time `time_us` (the length if none).
    pub fn first_at(&self, time_us: u64) -> usize {
        self.time_us.partition_point(|&t| t < time_us)
    }

    /// The first step after virtual time `time_us` (the length if none).
    pub fn first_after(&self, time_us: u64) -> usize {
        self.time_us.partition_point(|&t| t <= time_us)
    }

    /// The virtual time of the last step (0 for an empty run).
    pub fn end_us(&self) -> u64 {
        self.time_us.last().copied().unwrap_or(0)
    }
}
