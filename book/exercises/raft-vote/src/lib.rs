//! Exercise: when does a Raft server grant its vote?
//!
//! `cargo test -p exercise-raft-vote --features learner` tests your copy in `src/exercise.rs`;
//! without the feature, the same tests run against the reference solution.

/// What a server knows when a vote request arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Voter {
    /// Its current term (after adopting the request's term if that was higher).
    pub current_term: u64,
    /// Whom it voted for in `current_term`, if anyone.
    pub voted_for: Option<u32>,
    /// Index of its last log entry (0 if the log is empty).
    pub last_log_index: u64,
    /// Term of its last log entry (0 if the log is empty).
    pub last_log_term: u64,
}

/// A vote request (Raft's RequestVote RPC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// The candidate.
    pub candidate: u32,
    /// The term it asks for.
    pub term: u64,
    /// Index of its last log entry.
    pub last_log_index: u64,
    /// Term of its last log entry.
    pub last_log_term: u64,
}

#[cfg(feature = "learner")]
mod exercise;
#[cfg(feature = "learner")]
pub use exercise::should_grant_vote;

#[cfg(not(feature = "learner"))]
mod solution;
#[cfg(not(feature = "learner"))]
pub use solution::should_grant_vote;

#[cfg(test)]
mod tests;
