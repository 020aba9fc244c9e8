//! Exercise: how does a 3PC backup coordinator decide from the states it collected? Your rule
//! runs in every participant of the real protocol.
//!
//! - `cargo test -p exercise-commit-termination --features learner` checks your copy in
//!   `src/exercise.rs`: first the rule alone (a failure says what the collected states prove),
//!   then sweeps of the crash scenarios with your rule in every participant;
//! - `cargo run -p exercise-commit-termination --features learner -- run scenarios/3pc-partition.ron`
//!   is `simlab` with your rule plugged in: once your rule passes, run it under a partition.
//!
//! Without the feature, the same tests and commands run the reference solution.

use simlab_protocols::LearnerCode;
use simlab_protocols::three_phase_commit::TERMINATE;

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::decide;

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::decide;

/// The learner code this exercise plugs into 3PC: [`decide`] as every backup coordinator's rule.
pub fn code() -> LearnerCode {
    LearnerCode::new().with(&TERMINATE, decide)
}

#[cfg(test)]
mod tests;
