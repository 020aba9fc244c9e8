//! Exhaustive exploration: every order in which the waiting events of a simulation may run,
//! breadth-first (so the first violation found has the shortest schedule) or depth-first,
//! each distinct state once (by [`Simulation::fingerprint`]), within limits on depth and on
//! states.
//!
//! The nodes are the same code random runs execute: a step here is [`Simulation::step_chosen`]
//! on one of [`Simulation::enabled`]. Copies of one message in flight count once, and a client
//! answer or timeout nobody waits for any more leaves the queue ([`Simulation::explore_mode`]).
//! Always-invariants are checked after every step; at a terminal state (nothing enabled) the
//! run is finished, so eventually- and history-invariants are checked there;
//! sometimes-invariants report whether any explored state satisfied them. What the fingerprint
//! abstracts (time, counters, when messages were sent) is what a "pass" does not cover.
//! Breadth-first search may expand states on several threads; the report is the same for any
//! number ([`explore_observed`]).

use crate::invariant::InvariantKind;
use crate::node::Node;
use crate::outcome::Violation;
use crate::simulation::{Choice, Enabled, Simulation};
use serde::Serialize;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::{Arc, Condvar, Mutex};

/// The order states are visited in.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Search {
    /// Nearest first: the first violation found has a shortest schedule.
    BreadthFirst,
    /// Deepest first: less memory, long schedules sooner.
    DepthFirst,
}

/// How far an exploration may go.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ExploreLimits {
    /// Steps from the start beyond which no state is expanded.
    pub max_depth: usize,
    /// Distinct states to visit, the start included, before giving up.
    pub max_states: usize,
}

/// A violation and a schedule that leads to it from the start.
#[derive(Clone, Debug, Serialize)]
pub struct Counterexample {
    /// The events chosen, in order; replaying their choices from the start reproduces it.
    pub schedule: Vec<Enabled>,
    /// What failed, as the simulation reported it.
    pub violation: Violation,
}

/// What an exploration found.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Distinct states visited, the start included.
    pub unique_states: u64,
    /// Steps taken, each from a visited state to a state seen or new.
    pub transitions: u64,
    /// States where nothing was enabled any more.
    pub terminal_states: u64,
    /// The largest depth at which a state was visited.
    pub deepest: usize,
    /// Whether every reachable state was visited: no limit cut the search short (and no
    /// violation stopped it).
    pub complete: bool,
    /// Whether the observer stopped the search (a limit the search itself does not know of,
    /// such as memory).
    pub stopped: bool,
    /// The first violation found, if any.
    pub counterexample: Option<Counterexample>,
    /// Per sometimes-invariant, by name: whether some visited state satisfied it.
    pub sometimes: Vec<(String, bool)>,
}

/// Explores every schedule of `start` within `limits`, in the order `search` says, on this
/// thread.
pub fn explore<P: Node>(start: &Simulation<P>, search: Search, limits: &ExploreLimits) -> Report {
    explore_observed(start, search, limits, 1, &mut |_| ControlFlow::Continue(()))
}

/// How many new states between two calls of an exploration's observer.
pub const PROGRESS_EVERY: u64 = 1 << 14;

/// States a breadth-first search expands at once per thread, when it has more than one. The
/// other threads wait while the search decides a batch, and each wait costs a wake-up: with 16,
/// two threads searched Paxos 8% slower than with 64.
const BATCH_PER_JOB: usize = 64;

/// States one thread takes from a batch at a time: siblings, which share their parent's
/// parts, mostly stay on one thread.
const CHUNK: usize = 16;

/// [`explore`] on `jobs` threads, showing `observe` the report so far every
/// [`PROGRESS_EVERY`] new states; `observe` may stop the search there ([`Report::stopped`]).
///
/// The report is the same for every `jobs`. Threads only expand states: each takes waiting
/// states from the front of the frontier (running again the step that reaches one:
/// [`Pending`]), runs every enabled event on a copy and fingerprints the
/// result. One thread then takes the expansions in frontier order and does everything
/// that decides the result (which states are new, the limits, the first violation), exactly
/// as a single thread would. Depth-first search follows one path at a time, so it expands one
/// state at a time, whatever `jobs` says.
pub fn explore_observed<P: Node>(
    start: &Simulation<P>,
    search: Search,
    limits: &ExploreLimits,
    jobs: usize,
    observe: &mut dyn FnMut(&Report) -> ControlFlow<()>,
) -> Report {
    let jobs = match search {
        Search::BreadthFirst => jobs.max(1),
        Search::DepthFirst => 1,
    };
    let expander = Expander::new(limits.max_depth, jobs);
    if jobs == 1 {
        return explore_with(start, search, limits, observe, &expander);
    }
    // Each worker expands simulations of its own. What simulations share (node states, the
    // history, invariants behind `Arc`s) is read only and copied before a write, and the
    // expansions are put back in frontier order before anything is decided, so which thread
    // expanded a state never shows in the result.
    #[allow(clippy::disallowed_methods)]
    std::thread::scope(|scope| {
        for _ in 1..jobs {
            scope.spawn(|| expander.serve());
        }
        let _close = Closing(&expander);
        explore_with(start, search, limits, observe, &expander)
    })
}

/// The search itself, expanding states with `expander`.
fn explore_with<P: Node>(
    start: &Simulation<P>,
    search: Search,
    limits: &ExploreLimits,
    observe: &mut dyn FnMut(&Report) -> ControlFlow<()>,
    expander: &Expander<P>,
) -> Report {
    let mut report = Report {
        unique_states: 1,
        transitions: 0,
        terminal_states: 0,
        deepest: 0,
        complete: true,
        stopped: false,
        counterexample: None,
        sometimes: start
            .sometimes_held()
            .into_iter()
            .map(|(name, held)| (name.to_string(), held))
            .collect(),
    };
    let mut start = start.clone();
    start.explore_mode();
    start.forget_trace();
    // Every visited state's parent and the choice that led to it, to rebuild schedules: 16
    // bytes a state, where the whole `Enabled` would take 56 (a complete depth-first search
    // of tens of millions of states keeps little else).
    let mut tree: Vec<(usize, Option<Choice>)> = vec![(0, None)];
    let mut seen = Fingerprints::default();
    seen.insert(start.fingerprint());
    let mut frontier: VecDeque<Waiting<P>> = VecDeque::new();
    frontier.push_back(Waiting {
        at: 0,
        depth: 0,
        state: Pending::Ready(Box::new(start.clone())),
    });
    let schedule = |tree: &Vec<(usize, Option<Choice>)>, mut at: usize, last: Option<Enabled>| {
        let mut choices = Vec::new();
        while let (parent, Some(choice)) = tree[at] {
            choices.push(choice);
            at = parent;
        }
        choices.reverse();
        schedule_of(&start, &choices, last)
    };
    // This thread's scratch copy, kept from one batch to the next: a depth-first search
    // expands one state a batch, and a new scratch copy for each would be a whole copy.
    let mut scratch = None;
    loop {
        let batch: Vec<Waiting<P>> = match search {
            Search::BreadthFirst => {
                let take = frontier.len().min(BATCH_PER_JOB * expander.jobs);
                frontier.drain(..take).collect()
            }
            Search::DepthFirst => frontier.pop_back().into_iter().collect(),
        };
        if batch.is_empty() {
            return report;
        }
        let expanded = expander.expand(batch, &mut scratch);
        for (at, depth, expansion) in expanded {
            report.deepest = report.deepest.max(depth);
            for ((_, somewhere), held) in report.sometimes.iter_mut().zip(&expansion.sometimes) {
                *somewhere |= held;
            }
            let (successors, expanded_state) = match expansion.kind {
                Kind::Terminal(None) => {
                    report.terminal_states += 1;
                    continue;
                }
                Kind::Terminal(Some(violation)) => {
                    report.terminal_states += 1;
                    report.complete = false;
                    report.counterexample = Some(Counterexample {
                        schedule: schedule(&tree, at, None),
                        violation,
                    });
                    return report;
                }
                Kind::DepthLimit => {
                    report.complete = false;
                    continue;
                }
                Kind::Successors(successors, state) => (successors, state),
            };
            // Shared by the successors first reached here, once there is one.
            let mut parent: Option<Arc<Simulation<P>>> = None;
            let mut expanded_state = Some(expanded_state);
            for Successor { event, next } in successors {
                report.transitions += 1;
                let fingerprint = match next {
                    Next::Violation(violation) => {
                        report.complete = false;
                        report.counterexample = Some(Counterexample {
                            schedule: schedule(&tree, at, Some(event)),
                            violation,
                        });
                        return report;
                    }
                    Next::Reached(fingerprint) => fingerprint,
                };
                if !seen.insert(fingerprint) {
                    continue;
                }
                if report.unique_states as usize >= limits.max_states {
                    report.complete = false;
                    return report;
                }
                report.unique_states += 1;
                if report.unique_states.is_multiple_of(PROGRESS_EVERY)
                    && observe(&report).is_break()
                {
                    report.complete = false;
                    report.stopped = true;
                    return report;
                }
                tree.push((at, Some(event.choice)));
                let state = Pending::After {
                    parent: Arc::clone(parent.get_or_insert_with(|| {
                        Arc::new(*expanded_state.take().expect("taken once"))
                    })),
                    choice: event.choice,
                    fingerprint,
                };
                frontier.push_back(Waiting {
                    at: tree.len() - 1,
                    depth: depth + 1,
                    state,
                });
            }
        }
    }
}

/// The events of a schedule: each of `choices` as [`Simulation::enabled`] listed it where the
/// search took it from `start`, then `last` (the step that broke an invariant), if any.
fn schedule_of<P: Node>(
    start: &Simulation<P>,
    choices: &[Choice],
    last: Option<Enabled>,
) -> Vec<Enabled> {
    let mut sim = start.clone();
    let mut steps: Vec<Enabled> = choices
        .iter()
        .map(|&choice| {
            let event = sim
                .enabled()
                .into_iter()
                .find(|e| e.choice == choice)
                .expect("a choice the search took is enabled when its path is replayed");
            sim.run_choice(choice);
            event
        })
        .collect();
    steps.extend(last);
    steps
}

/// A state waiting to be expanded: where it is in the search tree, and how deep.
struct Waiting<P: Node> {
    at: usize,
    depth: usize,
    state: Pending<P>,
}

/// A waiting state, or how to reach it again.
///
/// A breadth-first frontier holds the next level of the search, which is several times larger
/// than the level it was reached from, and each state is a whole simulation of a few KiB whose
/// memory the machine must first bring in. Every step of an expansion is tried on one scratch
/// copy, so keeping a state reached would also cost a copy of its own. So a new state is kept
/// as the state it was reached from (shared by all its new siblings) and the choice that
/// reaches it, and the step is run again when its turn comes: a step costs less than the copy
/// and the memory it saves, and steps are deterministic, so the state is the one the search
/// fingerprinted (which is checked).
enum Pending<P: Node> {
    /// The start itself. Boxed: a deque of whole simulations would copy them every time it
    /// grows.
    Ready(Box<Simulation<P>>),
    /// The state `choice` reaches from `parent`, whose fingerprint is `fingerprint`.
    After {
        parent: Arc<Simulation<P>>,
        choice: Choice,
        fingerprint: u64,
    },
}

impl<P: Node> Pending<P> {
    /// The waiting state itself.
    fn reach(self) -> Box<Simulation<P>> {
        match self {
            Pending::Ready(state) => state,
            Pending::After {
                parent,
                choice,
                fingerprint,
            } => {
                // The parent's node states, durable stores, history and invariants are all
                // shared (it was expanded): a copy costs its shell, and the last sibling to
                // come takes the parent itself.
                let parent = Arc::try_unwrap(parent).unwrap_or_else(|shared| (*shared).clone());
                let mut state = Box::new(parent);
                state.run_choice(choice);
                // Fingerprinting again also remembers each part's hash in this copy, which
                // its successors then share instead of each hashing the parts it did not change.
                assert_eq!(
                    state.fingerprint(),
                    fingerprint,
                    "a step run again reached another state: the protocol's handlers are not \
                     deterministic (a thread RNG, the wall clock, or iteration over a randomly \
                     seeded hash map?)"
                );
                state
            }
        }
    }
}

/// What expanding one state found, before anything is decided about it.
struct Expansion<P: Node> {
    /// Per sometimes-invariant: whether it held in this state.
    sometimes: Vec<bool>,
    kind: Kind<P>,
}

enum Kind<P: Node> {
    /// Nothing was enabled: the run's end, and the first end-of-run violation, if any.
    Terminal(Option<Violation>),
    /// At the depth limit: not expanded.
    DepthLimit,
    /// Every enabled event, run, in order (after a violation, no more), and the state they
    /// were run from, from which the new ones among them are run again when their turn comes.
    Successors(Vec<Successor>, Box<Simulation<P>>),
}

struct Successor {
    event: Enabled,
    next: Next,
}

enum Next {
    /// The step broke an invariant.
    Violation(Violation),
    /// The fingerprint of the state the step reached.
    Reached(u64),
}

/// One expanded state: where it is in the search tree, its depth, and what expanding it found.
type Expanded<P> = (usize, usize, Expansion<P>);

/// Expands batches of waiting states, on this thread alone or shared with worker threads
/// ([`Expander::serve`]).
struct Expander<P: Node> {
    max_depth: usize,
    jobs: usize,
    work: Mutex<Work<P>>,
    /// Signalled when chunks are queued or the search closes.
    more_work: Condvar,
    /// Signalled when the last chunk of a batch is done.
    batch_done: Condvar,
}

/// The batch being expanded, in chunks.
struct Work<P: Node> {
    /// Chunks not taken yet, the first last.
    todo: Vec<(usize, Vec<Waiting<P>>)>,
    /// Chunks expanded, in the order they were finished.
    done: Vec<(usize, Vec<Expanded<P>>)>,
    /// Chunks queued or being expanded.
    unfinished: usize,
    /// A panic inside a node's handler, from a worker: raised again in the search.
    panic: Option<Box<dyn std::any::Any + Send>>,
    closing: bool,
}

/// Closes the expander when the search ends, however it ends, so that its workers return.
struct Closing<'a, P: Node>(&'a Expander<P>);

impl<P: Node> Drop for Closing<'_, P> {
    fn drop(&mut self) {
        self.0.lock_work().closing = true;
        self.0.more_work.notify_all();
    }
}

impl<P: Node> Expander<P> {
    fn new(max_depth: usize, jobs: usize) -> Expander<P> {
        Expander {
            max_depth,
            jobs,
            work: Mutex::new(Work {
                todo: Vec::new(),
                done: Vec::new(),
                unfinished: 0,
                panic: None,
                closing: false,
            }),
            more_work: Condvar::new(),
            batch_done: Condvar::new(),
        }
    }

    fn lock_work(&self) -> std::sync::MutexGuard<'_, Work<P>> {
        // Nothing panics while holding it: expansions run outside the lock.
        self.work.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Expands `batch`, on `scratch` and the workers' own scratch copies; the expansions come
    /// back in the batch's order.
    fn expand(
        &self,
        batch: Vec<Waiting<P>>,
        scratch: &mut Option<Simulation<P>>,
    ) -> Vec<Expanded<P>> {
        if self.jobs == 1 || batch.len() <= CHUNK {
            return self.expand_chunk(batch, scratch);
        }
        let mut chunks: Vec<(usize, Vec<Waiting<P>>)> = Vec::new();
        let mut batch = batch.into_iter().peekable();
        while batch.peek().is_some() {
            chunks.push((chunks.len(), batch.by_ref().take(CHUNK).collect()));
        }
        chunks.reverse();
        {
            let mut work = self.lock_work();
            work.unfinished = chunks.len();
            work.todo = chunks;
        }
        self.more_work.notify_all();
        // This thread expands chunks too, then waits for the rest.
        loop {
            // Not in the `while let` itself: its guard would live through the body.
            let next = self.lock_work().todo.pop();
            let Some((index, chunk)) = next else { break };
            self.run_chunk(index, chunk, scratch);
        }
        let mut work = self.lock_work();
        while work.unfinished > 0 {
            work = self
                .batch_done
                .wait(work)
                .unwrap_or_else(|e| e.into_inner());
        }
        if let Some(panic) = work.panic.take() {
            drop(work);
            std::panic::resume_unwind(panic);
        }
        let mut done = std::mem::take(&mut work.done);
        drop(work);
        done.sort_unstable_by_key(|(index, _)| *index);
        done.into_iter()
            .flat_map(|(_, expanded)| expanded)
            .collect()
    }

    /// Expands `chunk` on one scratch copy (made a copy of each state in turn, into the
    /// buffers it has).
    fn expand_chunk(
        &self,
        chunk: Vec<Waiting<P>>,
        scratch: &mut Option<Simulation<P>>,
    ) -> Vec<Expanded<P>> {
        chunk
            .into_iter()
            .map(|waiting| {
                let at_limit = waiting.depth >= self.max_depth;
                let expansion = expand(waiting.state.reach(), at_limit, scratch);
                (waiting.at, waiting.depth, expansion)
            })
            .collect()
    }

    /// Expands one chunk of the batch and hands it in; a panic is handed in instead.
    fn run_chunk(&self, index: usize, chunk: Vec<Waiting<P>>, scratch: &mut Option<Simulation<P>>) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.expand_chunk(chunk, scratch)
        }));
        let mut work = self.lock_work();
        match result {
            Ok(expanded) => work.done.push((index, expanded)),
            Err(panic) => {
                work.panic.get_or_insert(panic);
            }
        }
        work.unfinished -= 1;
        if work.unfinished == 0 {
            self.batch_done.notify_all();
        }
    }

    /// A worker thread's life: expand chunks as they come, until the search closes.
    fn serve(&self) {
        let mut scratch = None;
        loop {
            let next = {
                let mut work = self.lock_work();
                loop {
                    if let Some(chunk) = work.todo.pop() {
                        break Some(chunk);
                    }
                    if work.closing {
                        break None;
                    }
                    work = self.more_work.wait(work).unwrap_or_else(|e| e.into_inner());
                }
            };
            match next {
                Some((index, chunk)) => self.run_chunk(index, chunk, &mut scratch),
                None => return,
            }
        }
    }
}

/// Runs every enabled event of `state` on a copy of it (or, at a terminal state, ends the run
/// and checks the end-of-run invariants).
fn expand<P: Node>(
    mut state: Box<Simulation<P>>,
    at_depth_limit: bool,
    scratch: &mut Option<Simulation<P>>,
) -> Expansion<P> {
    let sometimes = state
        .sometimes_held()
        .into_iter()
        .map(|(_, held)| held)
        .collect();
    let enabled = state.enabled();
    if enabled.is_empty() {
        let before = state.violations().len();
        state.end_chosen();
        let outcome = state.finish();
        // A sometimes-invariant that one run never satisfied is no failure here: it is
        // reported over every state explored.
        let violation = outcome
            .violations
            .into_iter()
            .skip(before)
            .find(|v| v.kind != InvariantKind::Sometimes);
        return Expansion {
            sometimes,
            kind: Kind::Terminal(violation),
        };
    }
    if at_depth_limit {
        return Expansion {
            sometimes,
            kind: Kind::DepthLimit,
        };
    }
    let before = state.violations().len();
    let mut successors = Vec::with_capacity(enabled.len());
    // Each step is tried on one scratch copy, made equal to `state` again for the next: the
    // search keeps only fingerprints of what the steps reach.
    state.share_parts();
    let source: &Simulation<P> = &state;
    // A scratch copy left by the state expanded before is made a copy of this one first.
    let next = match scratch {
        Some(next) => {
            next.scratch_of(source);
            next
        }
        None => scratch.insert(source.scratch_copy()),
    };
    for (tried, event) in enabled.into_iter().enumerate() {
        if tried > 0 {
            next.refill_from(source);
        }
        next.run_choice(event.choice);
        if let Some(violation) = next.violations().get(before) {
            let violation = violation.clone();
            successors.push(Successor {
                event,
                next: Next::Violation(violation),
            });
            break;
        }
        successors.push(Successor {
            event,
            next: Next::Reached(next.fingerprint()),
        });
    }
    Expansion {
        sometimes,
        kind: Kind::Successors(successors, state),
    }
}

/// The fingerprints of the states visited: an open-addressing table of `u64`s, linear probing.
///
/// Fingerprints are already well mixed, so they index the table as they are; a set costs 8
/// bytes a state at most twice over, against about 40 in a `BTreeSet`, and a lookup is one
/// cache line. Nothing iterates over it, so its layout never reaches a result.
#[derive(Default)]
struct Fingerprints {
    /// `0` marks an empty slot; fingerprint 0 itself is `has_zero`.
    slots: Vec<u64>,
    len: usize,
    has_zero: bool,
}

impl Fingerprints {
    /// Adds `fingerprint`; whether it was new.
    fn insert(&mut self, fingerprint: u64) -> bool {
        if fingerprint == 0 {
            return !std::mem::replace(&mut self.has_zero, true);
        }
        // At most half full, so probes stay short.
        if 2 * (self.len + 1) > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut at = (fingerprint as usize) & mask;
        loop {
            match self.slots[at] {
                0 => {
                    self.slots[at] = fingerprint;
                    self.len += 1;
                    return true;
                }
                slot if slot == fingerprint => return false,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Whether `fingerprint` is in.
    #[cfg(test)]
    fn contains(&self, fingerprint: u64) -> bool {
        if fingerprint == 0 {
            return self.has_zero;
        }
        if self.slots.is_empty() {
            return false;
        }
        let mask = self.slots.len() - 1;
        let mut at = (fingerprint as usize) & mask;
        loop {
            match self.slots[at] {
                0 => return false,
                slot if slot == fingerprint => return true,
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![0; size]);
        self.len = 0;
        for fingerprint in old.into_iter().filter(|&f| f != 0) {
            self.insert(fingerprint);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Fingerprints;
    use std::collections::BTreeSet;

    #[test]
    fn fingerprints_agree_with_a_btree_set() {
        let mut ours = Fingerprints::default();
        let mut reference = BTreeSet::new();
        let mut state = 7u64;
        for i in 0..50_000u64 {
            // Repeats, zero, and values equal modulo the table size all occur.
            let value = match i % 5 {
                0 => 0,
                1 => crate::rng::splitmix64(&mut state) % 3_000,
                2 => (i % 97) << 20,
                _ => crate::rng::splitmix64(&mut state),
            };
            assert_eq!(ours.contains(value), reference.contains(&value), "{value}");
            assert_eq!(ours.insert(value), reference.insert(value), "{value}");
            assert!(ours.contains(value));
        }
        assert_eq!(ours.len + usize::from(ours.has_zero), reference.len());
    }
}
