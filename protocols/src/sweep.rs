//! Running one scenario over many seeds.

use crate::registry::{self, RunOptions};
use crate::scenario::Scenario;
use simlab_sim::{TraceMode, Violation};

/// What one seed of a sweep produced.
#[derive(Clone, Debug)]
pub struct SeedOutcome {
    /// The seed.
    pub seed: u64,
    /// Violations found (the run stops at the first when asked to).
    pub violations: Vec<Violation>,
    /// The trace hash.
    pub trace_hash: u64,
    /// Steps taken.
    pub steps: u64,
    /// Whether the scenario's `expect` was met.
    pub expect_met: bool,
}

impl SeedOutcome {
    /// Whether the named invariant was violated.
    pub fn violated(&self, invariant: &str) -> bool {
        self.violations.iter().any(|v| v.invariant == invariant)
    }
}

/// Runs one seed of a scenario, keeping only the hash of the trace.
pub fn run_seed(scenario: &Scenario, seed: u64, stop_on_violation: bool) -> SeedOutcome {
    let options = RunOptions {
        seed: Some(seed),
        trace: TraceMode::HashOnly,
        stop_on_violation,
    };
    let (outcome, _) = registry::run(scenario, &options);
    SeedOutcome {
        seed,
        expect_met: scenario.expect.is_met(&outcome),
        violations: outcome.violations,
        trace_hash: outcome.trace_hash,
        steps: outcome.stats.steps,
    }
}

/// The first seed, in order, whose run violates `invariant`.
pub fn first_violation(
    scenario: &Scenario,
    seeds: impl IntoIterator<Item = u64>,
    invariant: &str,
) -> Option<SeedOutcome> {
    seeds
        .into_iter()
        .map(|seed| run_seed(scenario, seed, true))
        .find(|o| o.violated(invariant))
}
