//! Shrinking a failing run to a small scenario that fails the same way.
//!
//! **Shrinking** starts from `(scenario, seed)` with a violated invariant and keeps the seed
//! fixed. It replaces the random nemesis by the explicit schedule of faults it injected (every
//! fault is recorded with concrete nodes), then, accepting each change only while the *same*
//! invariant is still violated: removes faults (delta debugging: halves, quarters, … single
//! faults), shortens the run, removes clients and client operations, and removes nodes where
//! the protocol allows. Every step is a deterministic run, so the result is too. Because each
//! random stream is derived from the seed and its purpose alone, removing a fault or a client
//! leaves every other draw as it was, which is what makes this work.

use crate::registry::{self, RunOptions};
use crate::scenario::Scenario;
use crate::sweep::{SeedOutcome, run_seed};
use simlab_sim::{Expect, Fault, ScheduledFault, TraceMode};

/// What shrinking did.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The small scenario (explicit faults, the seed, and an `expect` naming the violation).
    pub scenario: Scenario,
    /// The invariant that still fails.
    pub invariant: String,
    /// What was removed, one line per kind of change, for people.
    pub removed: Vec<String>,
    /// How many runs it took.
    pub runs: usize,
    /// Faults in the original run (scheduled plus injected by the nemesis).
    pub faults_before: usize,
}

/// Why a run cannot be shrunk.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShrinkError {
    /// Nothing failed with this seed.
    #[error("seed {0} violates no invariant: there is nothing to shrink")]
    NothingFails(u64),
}

struct Shrinker {
    seed: u64,
    invariant: String,
    runs: usize,
}

impl Shrinker {
    fn fails(&mut self, scenario: &Scenario) -> bool {
        if scenario
            .validate(std::path::Path::new("(shrinking)"))
            .is_err()
        {
            return false;
        }
        self.runs += 1;
        run_seed(scenario, self.seed, true).violated(&self.invariant)
    }
}

/// The explicit fault schedule of one run: what the scenario scheduled plus what the nemesis
/// did, with "the leader" resolved, skipping faults that did nothing, in time order.
pub fn materialize(scenario: &Scenario, seed: u64) -> Vec<ScheduledFault> {
    let options = RunOptions {
        seed: Some(seed),
        trace: TraceMode::HashOnly,
        stop_on_violation: false,
    };
    let (outcome, _) = registry::run(scenario, &options);
    outcome
        .faults
        .iter()
        .filter(|f| f.skipped.is_none())
        .map(|f| ScheduledFault {
            at_ms: f.at.as_millis(),
            fault: f.fault.clone(),
        })
        .collect()
}

/// Shrinks the run of `scenario` with `seed` while the invariant it violates first (or
/// `invariant`, if given) keeps failing.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    invariant: Option<&str>,
) -> Result<Shrunk, ShrinkError> {
    let first: SeedOutcome = run_seed(scenario, seed, true);
    let invariant = match invariant {
        Some(name) if first.violated(name) => name.to_string(),
        Some(_) | None => match first.violations.first() {
            Some(v) if invariant.is_none() => v.invariant.clone(),
            _ => return Err(ShrinkError::NothingFails(seed)),
        },
    };
    let mut s = Shrinker {
        seed,
        invariant: invariant.clone(),
        runs: 1,
    };
    let mut removed = Vec::new();

    // 1. The nemesis becomes an explicit schedule.
    let mut current = scenario.clone();
    current.seed = seed;
    current.expect = Expect::Violates(invariant.clone());
    current.skip_invariants.clear();
    let faults = materialize(&current, seed);
    let faults_before = faults.len();
    let mut explicit = current.clone();
    explicit.nemesis = None;
    explicit.faults = faults;
    if s.fails(&explicit) {
        current = explicit;
    } else {
        // Rare: ties between the nemesis's events and others resolve differently once they are
        // scheduled up front. Keep the nemesis, shrink the rest.
        removed.push(
            "(kept the random nemesis: its explicit schedule does not fail the same way)".into(),
        );
    }

    // 2. Fewer faults: delta debugging over the schedule, repeated while it helps (removing one
    //    fault can make another removable).
    let before = current.faults.len();
    for _pass in 0..3 {
        let at_start = current.faults.len();
        let mut chunk = (current.faults.len() / 2).max(1);
        while !current.faults.is_empty() {
            let mut start = 0;
            while start < current.faults.len() {
                let mut candidate = current.clone();
                let end = (start + chunk).min(candidate.faults.len());
                candidate.faults.drain(start..end);
                if s.fails(&candidate) {
                    current = candidate;
                } else {
                    start = end;
                }
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        if current.faults.len() == at_start {
            break;
        }
    }
    if current.faults.len() < before {
        removed.push(format!("faults: {before} -> {}", current.faults.len()));
    }

    // 3. A shorter run: the smallest stop time (in 100 ms steps) that still fails.
    let before = current.stop_ms;
    let last_fault = current.faults.iter().map(|f| f.at_ms).max().unwrap_or(0);
    let (mut lo, mut hi) = ((last_fault / 100).max(1), current.stop_ms.div_ceil(100));
    while lo < hi {
        let mid = (lo + hi) / 2;
        let mut candidate = current.clone();
        candidate.stop_ms = mid * 100;
        if let Some(n) = candidate.nemesis.as_mut() {
            n.end_ms = n.end_ms.min(candidate.stop_ms);
        }
        if s.fails(&candidate) {
            hi = mid;
            current = candidate;
        } else {
            lo = mid + 1;
        }
    }
    if current.stop_ms < before {
        removed.push(format!("stop time: {before} ms -> {} ms", current.stop_ms));
    }

    // 4. Fewer clients, then fewer operations per client.
    let before = (current.clients.count, current.clients.ops);
    while current.clients.count > 0 {
        let mut candidate = current.clone();
        candidate.clients.count -= 1;
        if !s.fails(&candidate) {
            break;
        }
        current = candidate;
    }
    let (mut lo, mut hi) = (0, current.clients.ops);
    while lo < hi && current.clients.count > 0 {
        let mid = (lo + hi) / 2;
        let mut candidate = current.clone();
        candidate.clients.ops = mid;
        if s.fails(&candidate) {
            hi = mid;
            current = candidate;
        } else {
            lo = mid + 1;
        }
    }
    if (current.clients.count, current.clients.ops) != before {
        removed.push(format!(
            "clients: {} x {} operations -> {} x {}",
            before.0, before.1, current.clients.count, current.clients.ops
        ));
    }

    // 5. Fewer nodes, where the protocol allows: drop the highest-numbered one and every fault
    //    that names it (its joins and leaves too), and take it off the absent list.
    let before = current.nodes;
    let minimum = current.protocol.min_nodes();
    while current.nodes > minimum {
        let mut candidate = current.clone();
        candidate.nodes -= 1;
        let gone = candidate.nodes;
        candidate
            .faults
            .retain(|f| !f.fault.named_nodes().contains(&gone));
        for f in &mut candidate.faults {
            if let Fault::Partition(groups) = &mut f.fault {
                groups.iter_mut().for_each(|g| g.retain(|&n| n != gone));
            }
        }
        candidate
            .network
            .links
            .retain(|l| l.from != gone && l.to != gone);
        candidate.absent.retain(|&n| n != gone);
        if !s.fails(&candidate) {
            break;
        }
        current = candidate;
    }
    if current.nodes < before {
        removed.push(format!("nodes: {before} -> {}", current.nodes));
    }

    current.name = format!("{}-seed{seed}-min", scenario.name);
    current.description = format!(
        "Shrunk by simlab from {} with seed {seed}: still violates {invariant}.",
        scenario.name
    );
    Ok(Shrunk {
        scenario: current,
        invariant,
        removed,
        runs: s.runs,
        faults_before,
    })
}

/// The scenario as a RON file, in the dialect simlab reads.
pub fn to_ron(scenario: &Scenario) -> String {
    let config = ron::ser::PrettyConfig::new().struct_names(true).extensions(
        ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES
            | ron::extensions::Extensions::IMPLICIT_SOME,
    );
    ron::ser::to_string_pretty(scenario, config).expect("scenarios serialize")
}
