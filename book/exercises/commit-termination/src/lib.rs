//! Exercise: how does a 3PC backup coordinator decide from the states it collected?
//!
//! `cargo test -p exercise-commit-termination --features learner` tests your copy in
//! `src/exercise.rs`; without the feature, the same tests run against the reference solution.

/// A participant's state for one transaction, as it reports it to the backup coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Voted yes, heard nothing more.
    Uncertain,
    /// Reached pre-commit.
    PreCommitted,
    /// Already committed.
    Committed,
    /// Already aborted (or voted no).
    Aborted,
}

/// The backup coordinator's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Commit everywhere.
    Commit,
    /// Abort everywhere.
    Abort,
}

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::decide;

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::decide;

#[cfg(test)]
mod tests;
