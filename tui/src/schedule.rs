//! Schedules an exploration found: the file `simlab explore --out` writes, and the driver that
//! replays one step by step in `simlab run --schedule` and `simlab tui --schedule`.

use simlab_protocols::Run;
use simlab_protocols::registry::ExploreStart;
use simlab_sim::explore::Counterexample;
use simlab_sim::{Choice, Enabled, FaultBudget, NotEnabled};
use std::path::Path;
use std::sync::Arc;

/// A schedule an exploration found: where it branched and the steps it chose from there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// The scenario's name.
    pub scenario: String,
    /// Where the exploration branched; its seed is always set.
    pub start: ExploreStart,
    /// The steps chosen after the branch.
    pub choices: Vec<Choice>,
}

impl Schedule {
    /// The schedule of `found`, explored from `start` with `seed`.
    pub fn new(scenario: &str, start: &ExploreStart, seed: u64, found: &Counterexample) -> Self {
        Schedule {
            scenario: scenario.to_string(),
            start: ExploreStart {
                seed: Some(seed),
                ..start.clone()
            },
            choices: found.schedule.iter().map(|s| s.choice).collect(),
        }
    }

    /// The seed the exploration ran with.
    pub fn seed(&self) -> u64 {
        self.start.seed.expect("a schedule names its seed")
    }

    /// The schedule as JSON, with the steps and the violation described for people.
    pub fn to_json(&self, explored: &Path, found: &Counterexample) -> String {
        let value = serde_json::json!({
            "scenario": self.scenario,
            "explored": explored.display().to_string(),
            "seed": self.seed(),
            "prefix": self.start.prefix,
            "faults": self.start.faults,
            "synchronous": self.start.synchronous,
            "choices": self.choices,
            "steps": found.schedule.iter().map(describe).collect::<Vec<_>>(),
            "violation": format!("{}: {}", found.violation.invariant, found.violation.message),
        });
        format!("{value:#}\n")
    }

    /// Reads a schedule file; the error names the file and what is wrong. A choice written
    /// as a bare number (the first schedule files) runs the waiting event in that slot.
    pub fn read(path: &Path) -> Result<Schedule, String> {
        let bad = |why: String| {
            format!(
                "{}: not a schedule from simlab explore: {why}",
                path.display()
            )
        };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        let scenario = value["scenario"]
            .as_str()
            .ok_or_else(|| bad("field scenario is missing or not a name".into()))?
            .to_string();
        let seed = value["seed"]
            .as_u64()
            .ok_or_else(|| bad("field seed is missing or not a whole number".into()))?;
        let prefix = match &value["prefix"] {
            serde_json::Value::Null => None,
            prefix => Some(
                prefix
                    .as_u64()
                    .ok_or_else(|| bad("field prefix is not a whole number".into()))?,
            ),
        };
        let faults = match &value["faults"] {
            serde_json::Value::Null => FaultBudget::default(),
            faults => serde_json::from_value(faults.clone())
                .map_err(|e| bad(format!("field faults: {e}")))?,
        };
        let synchronous = match &value["synchronous"] {
            serde_json::Value::Null => false,
            synchronous => synchronous
                .as_bool()
                .ok_or_else(|| bad("field synchronous is not true or false".into()))?,
        };
        let choices = value["choices"]
            .as_array()
            .ok_or_else(|| bad("field choices is missing or not a list".into()))?
            .iter()
            .enumerate()
            .map(|(i, c)| match c.as_u64() {
                Some(slot) => u32::try_from(slot)
                    .map(Choice::Run)
                    .map_err(|_| bad(format!("choice {}: {slot} is not below 2^32", i + 1))),
                None => serde_json::from_value(c.clone())
                    .map_err(|e| bad(format!("choice {}: {c}: {e}", i + 1))),
            })
            .collect::<Result<Vec<Choice>, String>>()?;
        Ok(Schedule {
            scenario,
            start: ExploreStart {
                seed: Some(seed),
                faults,
                prefix,
                synchronous,
            },
            choices,
        })
    }
}

/// How a replayed run takes its steps: the default scheduler's, or a schedule's (the default
/// scheduler's up to the schedule's branch, then the chosen steps, then the end).
#[derive(Clone, Debug, Default)]
pub enum Driver {
    /// The default scheduler: earliest event first.
    #[default]
    Default,
    /// A schedule an exploration found.
    Schedule(Arc<Schedule>),
}

impl Driver {
    /// Takes the next step of `run`. Whether a step was taken (false once the run is over),
    /// or the schedule's choice that is not enabled, with its number from 1.
    pub fn step(&self, run: &mut dyn Run) -> Result<bool, (usize, NotEnabled)> {
        let Driver::Schedule(schedule) = self else {
            return Ok(run.step());
        };
        let at = run.steps();
        let prefix = schedule.start.prefix_steps();
        if at < prefix {
            return Ok(run.step());
        }
        if at == prefix {
            // The budget is whole until a chosen step spends it, so branching again at this
            // point (replaying from a snapshot taken here) changes nothing.
            run.branch(&schedule.start);
        }
        let index = (at - prefix) as usize;
        match schedule.choices.get(index) {
            Some(&choice) => {
                run.step_chosen(choice).map_err(|e| (index + 1, e))?;
                Ok(true)
            }
            None => {
                // The schedule ends at its violation: the run ends there, as explored.
                run.end_chosen();
                Ok(false)
            }
        }
    }
}

/// One step of a schedule, for people.
pub fn describe(step: &Enabled) -> String {
    use simlab_sim::StepKind;
    let node = |n: Option<simlab_sim::NodeId>| n.map_or("?".to_string(), |n| n.to_string());
    let client = |c: Option<simlab_sim::ClientId>| c.map_or("?".to_string(), |c| c.to_string());
    match step.choice {
        Choice::Drop(_) => return format!("lose {} -> {}", node(step.from), node(step.node)),
        Choice::Duplicate(_) => {
            return format!(
                "deliver {} -> {} and keep a copy in flight",
                node(step.from),
                node(step.node)
            );
        }
        Choice::Crash(n) => return format!("crash {n}"),
        Choice::Restart(n) => return format!("restart {n}"),
        Choice::Isolate(n) => return format!("isolate {n}"),
        Choice::Heal => return "heal every link".to_string(),
        Choice::Run(_) => {}
    }
    match step.kind {
        StepKind::Start => format!("start {}", node(step.node)),
        StepKind::Deliver | StepKind::Drop => {
            format!("deliver {} -> {}", node(step.from), node(step.node))
        }
        StepKind::Timer => format!("timer at {}", node(step.node)),
        StepKind::Request => format!("request {} -> {}", client(step.client), node(step.node)),
        StepKind::Reply => format!("reply {} -> {}", node(step.node), client(step.client)),
        StepKind::ClientTimeout => format!("{} times out", client(step.client)),
        StepKind::ClientInvoke => format!("{} invokes its next operation", client(step.client)),
        StepKind::Fault => "scheduled fault".to_string(),
    }
}
