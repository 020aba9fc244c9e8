//! What a run produced: violations, counts, the CAP report, and whether it met expectations.

use crate::faults::FaultRecord;
use crate::history::Side;
use crate::invariant::InvariantKind;
use crate::time::Time;
use crate::world::Stats;
use serde::{Deserialize, Serialize};
use std::fmt;

/// An invariant that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The invariant's name.
    pub invariant: String,
    /// Its kind.
    pub kind: InvariantKind,
    /// The step after which it was first seen to fail (for history and eventually invariants,
    /// the last step of the run).
    pub step: u64,
    /// The virtual time of that step.
    pub time: Time,
    /// What went wrong, for people.
    pub message: String,
}

/// Why a run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum StopReason {
    /// The scenario's stop time was reached.
    TimeLimit,
    /// Nothing was left to happen.
    Quiescent,
    /// The step limit was hit: the run may be livelocked or the limit too low.
    StepLimit(u64),
    /// The event queue grew past its limit: a message storm or a timer leak.
    QueueLimit(usize),
    /// Stopped at the first violated invariant, as asked (sweeps want the verdict, not the
    /// rest of the run); end-of-run checks were not made.
    FirstViolation,
    /// A chosen schedule (an exploration's counterexample, replayed) ended while events were
    /// still waiting; end-of-run checks were not made.
    ScheduleEnded,
}

impl StopReason {
    /// Whether the run ended as planned (so its verdicts can be trusted).
    pub fn is_normal(&self) -> bool {
        matches!(self, StopReason::TimeLimit | StopReason::Quiescent)
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::TimeLimit => f.write_str("reached the stop time"),
            StopReason::Quiescent => f.write_str("nothing left to happen"),
            StopReason::StepLimit(n) => write!(
                f,
                "hit the step limit of {n} steps (raise limits.max_steps if the run is meant to be this long)"
            ),
            StopReason::QueueLimit(n) => write!(
                f,
                "hit the event-queue limit of {n} pending events (a message storm or timer leak?)"
            ),
            StopReason::FirstViolation => f.write_str("stopped at the first violation"),
            StopReason::ScheduleEnded => f.write_str("the replayed schedule ended"),
        }
    }
}

/// Operation counts for one group of operations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    /// Invoked.
    pub total: u64,
    /// Completed with ok.
    pub ok: u64,
    /// Completed with a definite failure.
    pub fail: u64,
    /// Given up on: may or may not have taken effect.
    pub unknown: u64,
}

impl OpCounts {
    /// The fraction that succeeded, or `None` when there were none.
    pub fn availability(&self) -> Option<f64> {
        (self.total > 0).then(|| self.ok as f64 / self.total as f64)
    }
}

/// Consistency, availability and partition tolerance of one run, as measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CapReport {
    /// History invariants that were checked and held.
    pub consistency_held: Vec<String>,
    /// History invariants that were violated.
    pub consistency_violated: Vec<String>,
    /// History invariants whose check could decide neither way.
    pub consistency_undecided: Vec<String>,
    /// For a store with no history invariant, whose consistency claim is convergence: its
    /// eventually-invariants that held at the end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub eventually_held: Vec<String>,
    /// Those that were violated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub eventually_violated: Vec<String>,
    /// All client operations.
    pub ops: OpCounts,
    /// Operations by the network side of the node they went to, for sides that saw any.
    pub by_side: Vec<(Side, OpCounts)>,
    /// Operations that ran during a partition, by the group of nodes the node they went to
    /// could reach, in order of the group's first operation: every side on its own.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_group: Vec<(Vec<crate::NodeId>, OpCounts)>,
    /// Partition faults injected.
    pub partitions_injected: u64,
    /// When the last fault was over.
    pub faults_over_at: Option<Time>,
    /// How long after that every eventually-invariant held for good (None: it never did, or
    /// there are none).
    pub convergence: Option<Time>,
    /// How long successful operations took, first try to answer, in virtual time (None: no
    /// operation succeeded).
    pub latency: Option<Latency>,
}

/// Percentiles of client latency over the operations that succeeded, in virtual time.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    /// Operations measured.
    pub count: u64,
    /// Median (nearest rank).
    pub p50: Time,
    /// 99th percentile (nearest rank).
    pub p99: Time,
    /// The slowest.
    pub max: Time,
}

impl Latency {
    /// The percentiles of `samples` (any order); `None` for no samples.
    pub fn of(mut samples: Vec<Time>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        // Nearest rank: the smallest sample with at least p of all samples at or below it.
        let rank = |p: usize| samples[(n * p).div_ceil(100).clamp(1, n) - 1];
        Some(Latency {
            count: n as u64,
            p50: rank(50),
            p99: rank(99),
            max: samples[n - 1],
        })
    }
}

impl CapReport {
    /// "holds: …", "violated: …", "undecided: …" for the history invariants; for a store
    /// without any, whose claim is convergence, "eventually consistent: …" or "not eventually
    /// consistent: …"; else "not checked".
    pub fn consistency_verdict(&self) -> String {
        if !self.consistency_violated.is_empty() {
            format!("violated: {}", self.consistency_violated.join(", "))
        } else if !self.consistency_undecided.is_empty() {
            format!("undecided: {}", self.consistency_undecided.join(", "))
        } else if !self.consistency_held.is_empty() {
            format!("holds: {}", self.consistency_held.join(", "))
        } else if !self.eventually_violated.is_empty() {
            format!(
                "not eventually consistent: {} violated",
                self.eventually_violated.join(", ")
            )
        } else if !self.eventually_held.is_empty() {
            format!(
                "eventually consistent: {} held at the end",
                self.eventually_held.join(", ")
            )
        } else {
            "not checked (no history invariant)".into()
        }
    }
}

/// Everything a run produced, independent of the protocol's types.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// Counts.
    pub stats: Stats,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Violations, in the order they were found.
    pub violations: Vec<Violation>,
    /// Checks that could decide neither way (e.g. a linearizability search past its budget),
    /// as `(invariant, why)`.
    pub undecided: Vec<(String, String)>,
    /// Sometimes-invariants that were reached, with the first step they held.
    pub reached: Vec<(String, u64)>,
    /// Every fault that happened, scheduled or random, with concrete nodes.
    pub faults: Vec<FaultRecord>,
    /// The CAP report.
    pub cap: CapReport,
    /// The rolling hash of every step.
    pub trace_hash: u64,
}

impl Outcome {
    /// Whether the named invariant was violated.
    pub fn violated(&self, name: &str) -> bool {
        self.violations.iter().any(|v| v.invariant == name)
    }

    /// The trace hash as 16 hex digits.
    pub fn trace_hash_hex(&self) -> String {
        format!("{:016x}", self.trace_hash)
    }
}

/// What a scenario expects of its run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// No invariant is violated.
    AllHold,
    /// None of these invariants is violated (others may be).
    Holds(Vec<String>),
    /// This invariant is violated: the scenario demonstrates a known failure.
    Violates(String),
    /// `violated` is violated and none of `held` is: a failure of one property that leaves
    /// others standing (a livelock that loses liveness but keeps safety).
    ViolatesWhileHolding {
        /// The invariant that must be violated.
        violated: String,
        /// Invariants that must hold.
        held: Vec<String>,
    },
}

impl Expect {
    /// The invariant names this expectation mentions.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Expect::AllHold => vec![],
            Expect::Holds(names) => names.iter().map(String::as_str).collect(),
            Expect::Violates(name) => vec![name.as_str()],
            Expect::ViolatesWhileHolding { violated, held } => std::iter::once(violated)
                .chain(held)
                .map(String::as_str)
                .collect(),
        }
    }

    /// Whether the outcome meets this expectation. A run cut short by a limit never meets an
    /// expectation that something holds: it did not finish.
    pub fn is_met(&self, outcome: &Outcome) -> bool {
        self.verdict(outcome) == Verdict::Met
    }

    /// Whether the run met the expectation, did not, or could not tell: an expectation that
    /// depends on a check that was undecided is undecided, unless something else already
    /// decided it.
    pub fn verdict(&self, outcome: &Outcome) -> Verdict {
        let undecided = |name: &str| outcome.undecided.iter().any(|(n, _)| n == name);
        match self {
            Expect::AllHold if !outcome.violations.is_empty() => Verdict::NotMet,
            Expect::AllHold if !outcome.stop_reason.is_normal() => Verdict::NotMet,
            Expect::AllHold if !outcome.undecided.is_empty() => Verdict::Undecided,
            Expect::AllHold => Verdict::Met,
            Expect::Holds(_) if !outcome.stop_reason.is_normal() => Verdict::NotMet,
            Expect::Holds(names) if names.iter().any(|n| outcome.violated(n)) => Verdict::NotMet,
            Expect::Holds(names) if names.iter().any(|n| undecided(n)) => Verdict::Undecided,
            Expect::Holds(_) => Verdict::Met,
            Expect::Violates(name) if outcome.violated(name) => Verdict::Met,
            Expect::Violates(name) if undecided(name) => Verdict::Undecided,
            Expect::Violates(_) => Verdict::NotMet,
            Expect::ViolatesWhileHolding { violated, held } => {
                let violates = Expect::Violates(violated.clone()).verdict(outcome);
                let holds = Expect::Holds(held.clone()).verdict(outcome);
                match (violates, holds) {
                    (Verdict::NotMet, _) | (_, Verdict::NotMet) => Verdict::NotMet,
                    (Verdict::Met, Verdict::Met) => Verdict::Met,
                    _ => Verdict::Undecided,
                }
            }
        }
    }
}

/// Whether a run met its expectation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It did.
    Met,
    /// It did not.
    NotMet,
    /// A check it depends on could decide neither way.
    Undecided,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::AllHold => f.write_str("every invariant holds"),
            Expect::Holds(names) => write!(f, "these hold: {}", names.join(", ")),
            Expect::Violates(name) => write!(f, "{name} is violated"),
            Expect::ViolatesWhileHolding { violated, held } => {
                write!(
                    f,
                    "{violated} is violated while these hold: {}",
                    held.join(", ")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_percentiles_take_the_nearest_rank() {
        assert_eq!(Latency::of(Vec::new()), None);
        let ms = |v: u64| Time::from_millis(v);
        // 1..=100 ms in reverse: p50 is the 50th smallest, p99 the 99th.
        let l = Latency::of((1..=100).rev().map(ms).collect()).unwrap();
        assert_eq!(
            (l.count, l.p50, l.p99, l.max),
            (100, ms(50), ms(99), ms(100))
        );
        let one = Latency::of(vec![ms(7)]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (ms(7), ms(7), ms(7)));
        // Three samples: the median is the second; p99 is the largest.
        let three = Latency::of(vec![ms(30), ms(10), ms(20)]).unwrap();
        assert_eq!((three.p50, three.p99), (ms(20), ms(30)));
    }
}
