//! Taking the part of a run a diagram shows: the steps of a window in full detail, what the
//! nodes' statuses and the partition were as it went, and where the messages sent in the window
//! arrived after it.

use crate::ui::replay::Replay;
use simlab_sim::{NodeStatus, StepKind, StepRecord, TraceMode, Violation};

/// Steps run past the window at most, looking for where its messages arrive.
const MAX_STEPS_AFTER: u64 = 20_000;

/// Which steps of a run to draw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Window {
    /// Steps `first..=last`.
    Steps(u64, u64),
    /// `n` steps either side of the first violation.
    AroundViolation(u64),
    /// Steps whose virtual time (µs) is in `from..=to`.
    Time(u64, u64),
}

impl Window {
    /// The steps `first..=last` this window covers in a recorded run, or why there are none.
    pub fn resolve(&self, replay: &Replay) -> Result<(u64, u64), String> {
        let len = replay.len();
        if len == 0 {
            return Err("the run took no step".into());
        }
        let (first, last) = match *self {
            Window::Steps(a, b) => {
                if a >= len {
                    return Err(format!(
                        "--steps starts at step {a}, but the run has {len} steps (0..{})",
                        len - 1
                    ));
                }
                (a, b.min(len - 1))
            }
            Window::AroundViolation(n) => {
                let at = match replay.first_violation() {
                    Some(at) => at,
                    None if !replay.violations.is_empty() => len - 1,
                    None => {
                        return Err(
                            "--around-violation: this run violates no invariant (try --steps or --time)"
                                .into(),
                        );
                    }
                };
                (at.saturating_sub(n), at.saturating_add(n).min(len - 1))
            }
            Window::Time(from, to) => {
                let first = replay.steps.first_at(from) as u64;
                let end = replay.steps.first_after(to) as u64;
                if first >= end {
                    return Err(format!(
                        "--time {}..{} ms holds no step (the run ends at {} ms)",
                        from / 1_000,
                        to / 1_000,
                        replay.steps.end_us() / 1_000
                    ));
                }
                (first, end - 1)
            }
        };
        if first > last {
            return Err(format!("the window {first}..{last} is empty"));
        }
        Ok((first, last))
    }
}

/// What a diagram is drawn from.
#[derive(Clone, Debug)]
pub struct Capture {
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Clients of the scenario.
    pub clients: u32,
    /// The window's first step.
    pub first: u64,
    /// Its last step.
    pub last: u64,
    /// Every step of the window, in full.
    pub records: Vec<StepRecord>,
    /// Steps after the window where messages sent in it arrived (or were dropped).
    pub later: Vec<StepRecord>,
    /// Node statuses at the window's start, then after each step that changed them: `(time µs,
    /// statuses)`.
    pub statuses: Vec<(u64, Vec<NodeStatus>)>,
    /// Groups of nodes that reach each other, likewise (one group: no partition).
    pub partitions: Vec<(u64, Vec<Vec<u32>>)>,
    /// Violations found at the end of the run (history and eventually checks), when the window
    /// reaches the last step.
    pub end_violations: Vec<Violation>,
}

impl Replay {
    /// Captures steps `first..=last` for a diagram, then runs on (at most
    /// [`MAX_STEPS_AFTER`] steps, and no further in virtual time than the window is long) to
    /// find where the window's messages arrive. `after` = false skips that.
    pub fn capture(&mut self, first: u64, last: u64, after: bool) -> Capture {
        let last = last.min(self.len().saturating_sub(1));
        let mut run = self.run_from(first);
        let start_us = run.now().as_micros();
        let mut statuses = vec![(start_us, run.statuses())];
        let mut partitions = vec![(start_us, groups(run.as_ref()))];
        run.set_trace(TraceMode::Full);
        let mut records = Vec::new();
        for _ in first..=last {
            let Some(record) = next_record(run.as_mut()) else {
                break;
            };
            if matches!(record.kind, StepKind::Fault | StepKind::Start) {
                let now = run.statuses();
                if statuses.last().is_none_or(|(_, s)| *s != now) {
                    statuses.push((record.time_us, now));
                }
                let now = groups(run.as_ref());
                if partitions.last().is_none_or(|(_, g)| *g != now) {
                    partitions.push((record.time_us, now));
                }
            }
            records.push(record);
        }
        let mut later = Vec::new();
        if after && let (Some(a), Some(b)) = (records.first(), records.last()) {
            let horizon = b.time_us + (b.time_us - a.time_us).max(1_000);
            for _ in 0..MAX_STEPS_AFTER {
                let Some(record) = next_record(run.as_mut()) else {
                    break;
                };
                if record.time_us > horizon {
                    break;
                }
                if record
                    .sent_step
                    .is_some_and(|s| (first..=last).contains(&s))
                {
                    later.push(record);
                }
            }
        }
        let reaches_end = last + 1 >= self.len();
        let end_violations = if reaches_end {
            self.violations
                .iter()
                .filter(|v| v.step >= first)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        Capture {
            nodes: self.nodes,
            clients: self.clients,
            first,
            last,
            records,
            later,
            statuses,
            partitions,
            end_violations,
        }
    }
}

/// Takes one step with the full trace on, and its record (`None` when the run is over).
fn next_record(run: &mut dyn simlab_protocols::Run) -> Option<StepRecord> {
    if !run.step() {
        return None;
    }
    run.drain_records().pop()
}

fn groups(run: &dyn simlab_protocols::Run) -> Vec<Vec<u32>> {
    run.partition()
        .groups
        .into_iter()
        .map(|g| g.into_iter().map(|n| n.0).collect())
        .collect()
}
