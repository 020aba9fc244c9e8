//! Exercise: write the version merge of the gossip cache (`protocols/src/gossip`), and sweep
//! the real protocol running it.
//!
//! - `cargo test -p exercise-gossip-merge --features learner` checks your copy in
//!   `src/exercise.rs`: first the merge alone, then 200 seeds of
//!   `scenarios/gossip-anti-entropy.ron` with your merge inside every replica;
//! - `cargo run -p exercise-gossip-merge --features learner -- sweep scenarios/gossip-anti-entropy.ron --seeds 0..1000`
//!   is `simlab` with your merge plugged in: every command (`run`, `sweep`, `shrink`, `tui`)
//!   runs it.
//!
//! Without the feature, the same tests and commands run the reference solution.

use simlab_protocols::LearnerCode;
use simlab_protocols::gossip::version::MERGE;

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::merge;

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::merge;

/// The learner code this exercise plugs into the protocol: [`merge`] as the cache's merge.
pub fn code() -> LearnerCode {
    LearnerCode::new().with(&MERGE, merge)
}

#[cfg(test)]
mod tests;
