//! Checking invariants after each step and at the end, and the run's outcome with its CAP
//! report.

use super::Simulation;
use crate::history::{Completion, Side};
use crate::invariant::InvariantKind;
use crate::node::Node;
use crate::outcome::{CapReport, Latency, OpCounts, Outcome, StopReason, Violation};
use crate::time::Time;
use crate::world::World;
use std::collections::BTreeMap;
use std::sync::Arc;

impl<P: Node> Simulation<P> {
    pub(super) fn check_invariants(&mut self) {
        // Eventually-invariants only matter once the faults are over; after that they are
        // sampled at most once per virtual millisecond, which is all the resolution the
        // convergence time needs, so idle chatter does not pay for them on every step.
        let faults_over = self.state.now >= self.state.faults_over_at
            && self
                .last_eventually_check
                .is_none_or(|t| self.state.now >= t + Time::from_millis(1));
        if faults_over {
            self.last_eventually_check = Some(self.state.now);
        }
        let world = World::new(&self.state);
        let mut all_eventually_hold = true;
        for i in 0..self.invariants.len() {
            let kind = self.kinds[i];
            let check = match kind {
                InvariantKind::Always | InvariantKind::Sometimes => self.settled[i].is_none(),
                InvariantKind::Eventually => faults_over,
                InvariantKind::History => false,
            };
            if !check || (kind != InvariantKind::Eventually && self.invariants[i].unchanged(&world))
            {
                continue;
            }
            let result = Arc::make_mut(&mut self.invariants)[i]
                .get_mut()
                .check(&world);
            match (kind, result) {
                (InvariantKind::Always, Err(message)) => {
                    Arc::make_mut(&mut self.settled)[i] = Some(self.state.stats.steps);
                    self.violations.push(Violation {
                        invariant: self.invariants[i].name().to_string(),
                        kind,
                        step: self.state.stats.steps - 1,
                        time: self.state.now,
                        message,
                    });
                }
                (InvariantKind::Sometimes, Ok(())) => {
                    Arc::make_mut(&mut self.settled)[i] = Some(self.state.stats.steps - 1)
                }
                (InvariantKind::Eventually, Err(_)) => all_eventually_hold = false,
                _ => {}
            }
        }
        if faults_over {
            if !all_eventually_hold {
                self.converged_since = None;
            } else if self.converged_since.is_none() {
                self.converged_since = Some(self.state.now);
            }
        }
    }

    /// Whether each sometimes-invariant has held so far, by name, in order.
    pub fn sometimes_held(&self) -> Vec<(&str, bool)> {
        self.invariants
            .iter()
            .zip(self.kinds.iter())
            .zip(self.settled.iter())
            .filter(|((_, kind), _)| **kind == InvariantKind::Sometimes)
            .map(|((invariant, _), settled)| (invariant.name(), settled.is_some()))
            .collect()
    }

    /// Ends the run (if it was not over) and checks the end-of-run invariants. Idempotent.
    pub fn finish(&mut self) -> Outcome {
        if self.stop_reason.is_none() {
            self.stop_reason = Some(StopReason::TimeLimit);
        }
        if !self.finished {
            self.finished = true;
            self.final_checks();
        }
        self.outcome()
    }

    pub(super) fn final_checks(&mut self) {
        let last_step = self.state.stats.steps.saturating_sub(1);
        let normal_end = self.stop_reason.as_ref().is_some_and(StopReason::is_normal);
        let cut_short = self.stop_reason == Some(StopReason::FirstViolation);
        let world = World::new(&self.state);
        for i in 0..self.invariants.len() {
            let kind = self.kinds[i];
            let result = match kind {
                InvariantKind::Always => Ok(()),
                _ if cut_short => Ok(()),
                InvariantKind::Eventually if normal_end => Arc::make_mut(&mut self.invariants)[i]
                    .get_mut()
                    .check(&world)
                    .map_err(|m| {
                        format!(
                            "{m} (at the end of the run, {} after the last fault)",
                            self.state.now - self.config.faults_over_at()
                        )
                    }),
                InvariantKind::Eventually => Ok(()),
                InvariantKind::Sometimes if normal_end && self.settled[i].is_none() => {
                    Err("never held during the run: the interesting state was not reached".into())
                }
                InvariantKind::Sometimes => Ok(()),
                InvariantKind::History => {
                    let invariant = Arc::make_mut(&mut self.invariants)[i].get_mut();
                    let result = invariant.check_history(&self.state.history);
                    if result.is_ok()
                        && let Some(why) = invariant.undecided()
                    {
                        self.undecided.push((invariant.name().to_string(), why));
                    }
                    result
                }
            };
            if let Err(message) = result {
                self.violations.push(Violation {
                    invariant: self.invariants[i].name().to_string(),
                    kind,
                    step: last_step,
                    time: self.state.now,
                    message,
                });
            }
        }
    }

    /// The outcome so far (complete after [`Simulation::finish`]).
    pub fn outcome(&self) -> Outcome {
        let mut ops = OpCounts::default();
        let mut by_side: BTreeMap<Side, OpCounts> = BTreeMap::new();
        let history = &self.state.history;
        let mut by_group: Vec<(Vec<crate::NodeId>, OpCounts)> = history
            .groups
            .iter()
            .map(|g| (g.clone(), OpCounts::default()))
            .collect();
        let mut latencies = Vec::new();
        for op in &self.state.history.ops {
            if let (Some(Completion::Ok(_)), Some(done)) = (&op.completion, op.completed) {
                latencies.push(done - op.invoked);
            }
            let group = op.group.map(|g| &mut by_group[g as usize].1);
            for counts in [
                Some(&mut ops),
                Some(by_side.entry(op.side).or_default()),
                group,
            ]
            .into_iter()
            .flatten()
            {
                counts.total += 1;
                match op.completion {
                    Some(Completion::Ok(_)) => counts.ok += 1,
                    Some(Completion::Fail(_)) => counts.fail += 1,
                    Some(Completion::Unknown) | None => counts.unknown += 1,
                }
            }
        }
        let history_names = self
            .invariants
            .iter()
            .filter(|i| i.kind() == InvariantKind::History)
            .map(|i| i.name().to_string());
        let (violated, rest): (Vec<String>, Vec<String>) =
            history_names.partition(|n| self.violations.iter().any(|v| &v.invariant == n));
        let (undecided, held): (Vec<String>, Vec<String>) = rest
            .into_iter()
            .partition(|n| self.undecided.iter().any(|(u, _)| u == n));
        // A store whose consistency claim is convergence (no history invariant) is judged by
        // its eventually-invariants.
        let (eventually_violated, eventually_held) =
            if held.is_empty() && violated.is_empty() && undecided.is_empty() {
                self.invariants
                    .iter()
                    .filter(|i| i.kind() == InvariantKind::Eventually)
                    .map(|i| i.name().to_string())
                    .partition(|n| self.violations.iter().any(|v| &v.invariant == n))
            } else {
                (Vec::new(), Vec::new())
            };
        let faults_over = self.config.faults_over_at();
        let has_faults = !self.config.faults.is_empty() || self.config.nemesis.is_some();
        Outcome {
            seed: self.config.seed,
            stats: self.state.stats.clone(),
            stop_reason: self.stop_reason.clone().unwrap_or(StopReason::TimeLimit),
            violations: self.violations.clone(),
            undecided: self.undecided.clone(),
            reached: self
                .invariants
                .iter()
                .zip(self.settled.iter())
                .filter(|(i, s)| i.kind() == InvariantKind::Sometimes && s.is_some())
                .map(|(i, s)| (i.name().to_string(), s.expect("filtered")))
                .collect(),
            faults: self.fault_log.clone(),
            cap: CapReport {
                consistency_held: held,
                consistency_violated: violated,
                consistency_undecided: undecided,
                eventually_held,
                eventually_violated,
                ops,
                by_side: by_side.into_iter().collect(),
                by_group,
                partitions_injected: self.partitions_injected,
                faults_over_at: has_faults.then_some(faults_over),
                convergence: self.converged_since.map(|t| t - faults_over),
                latency: Latency::of(latencies),
            },
            trace_hash: self.hasher.finish(),
        }
    }
}
