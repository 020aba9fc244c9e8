//! Running one scenario over many seeds.

use crate::learner::{LearnerCode, Slot};
use crate::registry::{self, RunOptions};
use crate::scenario::Scenario;
use simlab_sim::{StopReason, TraceMode, Violation};

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
    /// Why the run stopped.
    pub stop: StopReason,
    /// Checks that could decide neither way, as `(invariant, why)`.
    pub undecided: Vec<(String, String)>,
}

impl SeedOutcome {
    /// Whether the named invariant was violated.
    pub fn violated(&self, invariant: &str) -> bool {
        self.violations.iter().any(|v| v.invariant == invariant)
    }

    /// Whether the run hit a step or queue limit: it was cut short, so its verdicts cannot be
    /// trusted, and a sweep counts it as failing.
    pub fn hit_limit(&self) -> bool {
        matches!(
            self.stop,
            StopReason::StepLimit(_) | StopReason::QueueLimit(_)
        )
    }

    /// Whether the seed failed: an invariant was violated, or the run hit a limit.
    pub fn failed(&self) -> bool {
        !self.violations.is_empty() || self.hit_limit()
    }

    /// Whether the seed did not pass: it failed, or a check it needs was undecided.
    pub fn not_passed(&self) -> bool {
        self.failed() || !self.undecided.is_empty()
    }

    /// What a sweep groups this failing seed under, and the line it shows for it: the first
    /// violated invariant, or the limit that was hit.
    pub fn failure(&self) -> Option<(String, String)> {
        match self.violations.first() {
            Some(v) => Some((v.invariant.clone(), v.message.clone())),
            None if self.hit_limit() => Some(("(limit hit)".into(), self.stop.to_string())),
            None => self
                .undecided
                .first()
                .map(|(name, why)| (format!("{name} (undecided)"), why.clone())),
        }
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
        stop: outcome.stop_reason.clone(),
        undecided: outcome.undecided.clone(),
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

/// The first seed, in order, whose run fails (an invariant violated, or a limit hit), with the
/// failure as `invariant: why`: what an exercise's sweep reports about a learner's code.
pub fn first_failure(
    scenario: &Scenario,
    seeds: impl IntoIterator<Item = u64>,
) -> Option<(u64, String)> {
    seeds.into_iter().find_map(|seed| {
        run_seed(scenario, seed, true)
            .failure()
            .map(|(name, why)| (seed, format!("{name}: {why}")))
    })
}

/// For an exercise's tests: runs `scenario` with each wrong function in `slot` over `seeds`
/// and checks that each is caught, and by the invariant named beside it. Returns one line per
/// wrong answer (`name: seed N: invariant: why`), what the sweep tells a learner who wrote it.
///
/// # Panics
/// If a wrong function passes every seed, or fails another invariant than the one named.
pub fn wrong_answers_caught<F: Copy + Send + Sync + 'static>(
    scenario: &Scenario,
    slot: &Slot<F>,
    wrong: &[(&str, F, &str)],
    seeds: std::ops::Range<u64>,
) -> Vec<String> {
    wrong
        .iter()
        .map(|&(name, function, invariant)| {
            let mut run = scenario.clone();
            run.code = LearnerCode::new().with(slot, function);
            let (seed, why) = first_failure(&run, seeds.clone()).unwrap_or_else(|| {
                panic!(
                    "{}: the {name} answer passed seeds {seeds:?}",
                    scenario.name
                )
            });
            assert!(
                why.starts_with(invariant),
                "{}: the {name} answer, seed {seed}: expected {invariant}, got {why}",
                scenario.name
            );
            format!("{name}: seed {seed}: {why}")
        })
        .collect()
}

/// The first seed, in order, where two versions of a scenario run differently (their trace
/// hashes differ): `None` proves they made the same steps on every seed tried, e.g. that a
/// learner slot filled with the reference code is the protocol's own code path.
pub fn first_divergence(
    a: &Scenario,
    b: &Scenario,
    seeds: impl IntoIterator<Item = u64>,
) -> Option<u64> {
    seeds
        .into_iter()
        .find(|&seed| run_seed(a, seed, false).trace_hash != run_seed(b, seed, false).trace_hash)
}
