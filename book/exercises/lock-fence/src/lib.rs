//! Exercise: write the storage's fence check (`protocols/src/locks/storage.rs`), and sweep the
//! lock lab with your check inside the storage node.
//!
//! - `cargo test -p exercise-lock-fence --features learner` checks your copy in
//!   `src/exercise.rs`: first the check alone, then sweeps of the GC-pause, clock-jump and
//!   slow-network scenarios with fencing tokens on and your check in the storage;
//! - `cargo run -p exercise-lock-fence --features learner -- sweep scenarios/locks-fencing-gc-pause.ron --seeds 0..1000`
//!   is `simlab` with your check plugged in: every command (`run`, `sweep`, `shrink`, `tui`)
//!   runs it.
//!
//! Without the feature, the same tests and commands run the reference solution.

use simlab_protocols::LearnerCode;
use simlab_protocols::locks::FENCE;

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::fence;

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::fence;

/// The learner code this exercise plugs into the lock lab: [`fence`] as the storage's check.
pub fn code() -> LearnerCode {
    LearnerCode::new().with(&FENCE, fence)
}

#[cfg(test)]
mod tests;
