//! Exhaustive exploration: every order in which the waiting events of a simulation may run,
//! breadth-first (so the first violation found has the shortest schedule) or depth-first,
//! each distinct state once (by [`Simulation::fingerprint`]), within limits on depth and on
//! states.
//!
//! The nodes are the same code random runs execute: a step here is [`Simulation::step_chosen`]
//! on one of [`Simulation::enabled`]. Copies of one message in flight count once
//! ([`Simulation::merge_copies`]). Always-invariants are checked after every step; at a
//! terminal state (nothing enabled) the run is finished, so eventually- and history-invariants
//! are checked there; sometimes-invariants report whether any explored state satisfied them.
//! What the fingerprint abstracts (time, counters, when messages were sent) is what a "pass"
//! does not cover.

use crate::invariant::InvariantKind;
use crate::node::Node;
use crate::outcome::Violation;
use crate::simulation::{Enabled, Simulation};
use serde::Serialize;
use std::collections::VecDeque;
use std::ops::ControlFlow;

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

/// Explores every schedule of `start` within `limits`, in the order `search` says.
pub fn explore<P: Node>(start: &Simulation<P>, search: Search, limits: &ExploreLimits) -> Report {
    explore_observed(start, search, limits, &mut |_| ControlFlow::Continue(()))
}

/// How many new states between two calls of an exploration's observer.
pub const PROGRESS_EVERY: u64 = 1 << 14;

/// [`explore`], showing `observe` the report so far every [`PROGRESS_EVERY`] new states;
/// `observe` may stop the search there ([`Report::stopped`]).
pub fn explore_observed<P: Node>(
    start: &Simulation<P>,
    search: Search,
    limits: &ExploreLimits,
    observe: &mut dyn FnMut(&Report) -> ControlFlow<()>,
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
    start.merge_copies();
    let start = &start;
    // Every visited state's parent and the event that led to it, to rebuild schedules.
    let mut tree: Vec<(usize, Option<Enabled>)> = vec![(0, None)];
    let mut seen = Fingerprints::default();
    seen.insert(start.fingerprint());
    let mut frontier: VecDeque<(usize, usize, Simulation<P>)> = VecDeque::new();
    frontier.push_back((0, 0, start.clone()));
    let schedule = |tree: &Vec<(usize, Option<Enabled>)>, mut at: usize| {
        let mut steps = Vec::new();
        while let (parent, Some(event)) = &tree[at] {
            steps.push(event.clone());
            at = *parent;
        }
        steps.reverse();
        steps
    };
    while let Some((at, depth, mut state)) = match search {
        Search::BreadthFirst => frontier.pop_front(),
        Search::DepthFirst => frontier.pop_back(),
    } {
        report.deepest = report.deepest.max(depth);
        note_sometimes(&mut report.sometimes, &state);
        let enabled = state.enabled();
        if enabled.is_empty() {
            report.terminal_states += 1;
            let before = state.violations().len();
            state.end_chosen();
            let outcome = state.finish();
            // A sometimes-invariant that one run never satisfied is no failure here: it is
            // reported over every state explored.
            if let Some(violation) = outcome
                .violations
                .into_iter()
                .skip(before)
                .find(|v| v.kind != InvariantKind::Sometimes)
            {
                report.complete = false;
                report.counterexample = Some(Counterexample {
                    schedule: schedule(&tree, at),
                    violation,
                });
                return report;
            }
            continue;
        }
        if depth >= limits.max_depth {
            report.complete = false;
            continue;
        }
        let before = state.violations().len();
        for event in enabled {
            let mut next = state.snapshot();
            next.run_choice(event.choice);
            report.transitions += 1;
            if let Some(violation) = next.violations().get(before) {
                let mut steps = schedule(&tree, at);
                steps.push(event);
                report.complete = false;
                report.counterexample = Some(Counterexample {
                    schedule: steps,
                    violation: violation.clone(),
                });
                return report;
            }
            if !seen.insert(next.fingerprint()) {
                continue;
            }
            if report.unique_states as usize >= limits.max_states {
                report.complete = false;
                return report;
            }
            report.unique_states += 1;
            if report.unique_states.is_multiple_of(PROGRESS_EVERY) && observe(&report).is_break() {
                report.complete = false;
                report.stopped = true;
                return report;
            }
            tree.push((at, Some(event)));
            frontier.push_back((tree.len() - 1, depth + 1, next));
        }
    }
    report
}

/// Marks the sometimes-invariants `state` has satisfied.
/// Every state lists the same sometimes-invariants in the same order as the start.
fn note_sometimes<P: Node>(sometimes: &mut [(String, bool)], state: &Simulation<P>) {
    for ((_, seen), (_, held)) in sometimes.iter_mut().zip(state.sometimes_held()) {
        *seen |= held;
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
            assert_eq!(ours.insert(value), reference.insert(value), "{value}");
        }
        assert_eq!(ours.len + usize::from(ours.has_zero), reference.len());
    }
}
