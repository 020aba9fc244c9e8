//! Exercise: write the Paxos acceptor (`protocols/src/paxos/acceptor.rs`), and sweep both Paxos
//! protocols running it.
//!
//! - `cargo test -p exercise-paxos-acceptor --features learner` checks your copy in
//!   `src/exercise.rs`: first the acceptor alone, then sweeps of `scenarios/paxos-chaos.ron`
//!   (single-decree) and `scenarios/multi-paxos-churn-unreliable.ron` (Multi-Paxos) with your
//!   acceptor inside every node;
//! - `cargo run -p exercise-paxos-acceptor --features learner -- sweep scenarios/paxos-chaos.ron --seeds 0..1000`
//!   is `simlab` with your acceptor plugged in: every command (`run`, `sweep`, `shrink`, `tui`)
//!   runs it.
//!
//! Without the feature, the same tests and commands run the reference solution.

use simlab_protocols::LearnerCode;
use simlab_protocols::paxos::acceptor::ACCEPTOR;

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::acceptor;

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::acceptor;

/// The learner code this exercise plugs into the protocols: [`acceptor`] as every node's
/// acceptor.
pub fn code() -> LearnerCode {
    LearnerCode::new().with(&ACCEPTOR, acceptor)
}

#[cfg(test)]
mod tests;
