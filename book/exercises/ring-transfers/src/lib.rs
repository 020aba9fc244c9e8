//! Exercise: write the function that says which arcs of the ring move when the membership
//! changes (`Ring::transfers` in `protocols/src/ring/hash_ring.rs`), and sweep the real
//! rebalancing store running it: every member computes its handoffs with your function.
//!
//! - `cargo test -p exercise-ring-transfers --features learner` checks your copy in
//!   `src/exercise.rs`: first against owners computed key by key, then 200 seeds of
//!   `scenarios/ring-churn.ron` with your function inside every member;
//! - `cargo run -p exercise-ring-transfers --features learner -- sweep scenarios/ring-churn.ron --seeds 0..1000`
//!   is `simlab` with your function plugged in: every command (`run`, `sweep`, `shrink`, `tui`)
//!   runs it.
//!
//! Without the feature, the same tests and commands run the reference solution.

use simlab_protocols::LearnerCode;
use simlab_protocols::ring::hash_ring::TRANSFERS;

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::transfers;

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::transfers;

/// The learner code this exercise plugs into the protocol: [`transfers`] as the store's.
pub fn code() -> LearnerCode {
    LearnerCode::new().with(&TRANSFERS, transfers)
}

#[cfg(test)]
mod tests;
