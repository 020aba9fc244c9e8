//! Exercise: write three of Raft's rules (`protocols/src/raft/rules.rs`) and sweep Raft running
//! them in every server.
//!
//! - `cargo test -p exercise-raft-rules --features learner` checks your copy in
//!   `src/exercise.rs`: first each rule alone (a failure prints the inputs and the rule), then
//!   sweeps of `raft-figure8`, `raft-churn-unreliable` and the Figure 8 bug's contention
//!   schedule with your rules inside every server;
//! - `cargo run -p exercise-raft-rules --features learner -- sweep scenarios/raft-figure8.ron --seeds 0..200`
//!   is `simlab` with your rules plugged in: every command (`run`, `sweep`, `shrink`, `tui`)
//!   runs them.
//!
//! Without the feature, the same tests and commands run the reference solution.

use simlab_protocols::LearnerCode;
use simlab_protocols::raft::rules::{LOG_MATCHES, MAY_COMMIT, REQUEST_VOTE};

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::{log_matches, may_commit, request_vote};

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::{log_matches, may_commit, request_vote};

/// The learner code this exercise plugs into Raft: the three rules, in every server.
pub fn code() -> LearnerCode {
    LearnerCode::new()
        .with(&REQUEST_VOTE, request_vote)
        .with(&LOG_MATCHES, log_matches)
        .with(&MAY_COMMIT, may_commit)
}

#[cfg(test)]
mod tests;
