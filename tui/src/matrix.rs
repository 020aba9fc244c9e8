//! `simlab matrix`: several scenarios × several protocol settings, each swept over the same
//! seeds, as one table: which invariants each combination keeps, the first failing seed, and
//! how small a fault schedule still fails.
//!
//! It answers "which design survives which fault?" in one command: the lock chapter's table is
//! its output. A row's protocol replaces the scenario's own (settings and all), so a row
//! measures the settings it names on that scenario's world; `expect` is ignored.

// Threads here run independent simulations side by side; none is shared by two threads.
#![allow(clippy::disallowed_methods)]

use crate::sweep::on_workers;
use serde_json::json;
use simlab_protocols::shrink::shrink;
use simlab_protocols::sweep::run_seed;
use simlab_protocols::{ProtocolConfig, Scenario};
use simlab_sim::InvariantKind;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most runs one matrix makes (cells × seeds): it keeps every run's verdicts.
pub const MAX_RUNS: u64 = 10_000_000;

/// One scenario of the matrix, as loaded.
#[derive(Clone, Debug)]
pub struct Row {
    /// Where it was loaded from.
    pub path: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenarios, in the order given.
    pub rows: Vec<Row>,
    /// The protocol settings each scenario runs with, as given (`None`: the scenario's own).
    pub protocols: Vec<(String, Option<ProtocolConfig>)>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// The invariants shown (columns).
    pub invariants: Vec<String>,
    /// Shrink each combination's first failure.
    pub shrink: bool,
}

impl Plan {
    /// The scenario a cell runs.
    fn cell(&self, row: usize, protocol: usize) -> Scenario {
        let mut s = self.rows[row].scenario.clone();
        if let Some(p) = &self.protocols[protocol].1 {
            s.protocol = p.clone();
        }
        s
    }

    /// Checks every cell's scenario (settings against the cluster size), and that each
    /// invariant named is one the protocols have.
    pub fn validate(&self) -> Result<(), String> {
        for (r, row) in self.rows.iter().enumerate() {
            for (p, (label, _)) in self.protocols.iter().enumerate() {
                let s = self.cell(r, p);
                s.validate(&row.path)
                    .map_err(|e| format!("with --protocol {label}: {e}"))?;
                let names = s.protocol.invariant_names(s.nodes);
                if let Some(missing) = self
                    .invariants
                    .iter()
                    .find(|i| !names.iter().any(|(n, _)| n == *i))
                {
                    let known: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
                    return Err(format!(
                        "--invariants: {} has no invariant {missing:?}; it has {}",
                        s.protocol.name(),
                        known.join(", ")
                    ));
                }
            }
        }
        let runs = (self.rows.len() * self.protocols.len()) as u64 * self.seeds.len() as u64;
        if runs > MAX_RUNS {
            return Err(format!(
                "{runs} runs ({} scenarios × {} settings × {} seeds): a matrix makes at most {MAX_RUNS}",
                self.rows.len(),
                self.protocols.len(),
                self.seeds.len()
            ));
        }
        Ok(())
    }
}

/// The invariants a protocol checks on every run that can fail one run on its own (always and
/// eventually kinds, history checks), in its order: the default columns.
pub fn default_invariants(scenario: &Scenario) -> Vec<String> {
    scenario
        .protocol
        .invariant_names(scenario.nodes)
        .into_iter()
        .filter(|(_, kind)| *kind != InvariantKind::Sometimes)
        .map(|(name, _)| name)
        .collect()
}

/// One invariant in one cell: how many seeds violated it, and the first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Seeds whose run violated it.
    pub failing: u64,
    /// The smallest of them.
    pub first: Option<u64>,
}

/// One scenario with one protocol setting, over every seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// Per invariant shown, in column order.
    pub verdicts: Vec<Verdict>,
    /// The first failing seed of any shown invariant, with the invariant (the earliest column
    /// when one seed breaks several).
    pub first_failure: Option<(u64, String)>,
    /// Faults in that run, and in its shrunk schedule.
    pub shrunk: Option<(usize, usize)>,
}

/// The whole table.
#[derive(Clone, Debug)]
pub struct Matrix {
    /// Per row, per protocol setting.
    pub cells: Vec<Vec<Cell>>,
}

/// Runs every cell on every seed, on `jobs` threads; the result does not depend on `jobs`.
pub fn run(plan: &Plan, jobs: usize) -> Matrix {
    let cells: Vec<(usize, usize)> = (0..plan.rows.len())
        .flat_map(|r| (0..plan.protocols.len()).map(move |p| (r, p)))
        .collect();
    let scenarios: Vec<Scenario> = cells.iter().map(|&(r, p)| plan.cell(r, p)).collect();
    let per_cell = plan.seeds.len();
    let total = cells.len() * per_cell;
    // Per cell, per seed: the invariants violated (indexes into the columns).
    let violated: Mutex<Vec<Vec<Vec<usize>>>> =
        Mutex::new(vec![vec![Vec::new(); per_cell]; cells.len()]);
    let next = AtomicUsize::new(0);
    on_workers(jobs, total, || {
        loop {
            let job = next.fetch_add(1, Ordering::Relaxed);
            if job >= total {
                break;
            }
            let (cell, i) = (job / per_cell, job % per_cell);
            let outcome = run_seed(&scenarios[cell], plan.seeds[i], false);
            let hit: Vec<usize> = plan
                .invariants
                .iter()
                .enumerate()
                .filter(|(_, name)| outcome.violated(name))
                .map(|(c, _)| c)
                .collect();
            violated.lock().expect("no worker panics")[cell][i] = hit;
        }
    });
    let violated = violated.into_inner().expect("no worker panics");
    let mut out: Vec<Cell> = violated
        .iter()
        .map(|per_seed| {
            let mut verdicts = vec![Verdict::default(); plan.invariants.len()];
            let mut first_failure = None;
            for (i, hit) in per_seed.iter().enumerate() {
                let seed = plan.seeds[i];
                for &c in hit {
                    verdicts[c].failing += 1;
                    verdicts[c].first.get_or_insert(seed);
                }
                if first_failure.is_none()
                    && let Some(&c) = hit.first()
                {
                    first_failure = Some((seed, plan.invariants[c].clone()));
                }
            }
            Cell {
                verdicts,
                first_failure,
                shrunk: None,
            }
        })
        .collect();
    if plan.shrink {
        let next = AtomicUsize::new(0);
        let shrunk: Mutex<Vec<Option<(usize, usize)>>> = Mutex::new(vec![None; out.len()]);
        on_workers(jobs, out.len(), || {
            loop {
                let cell = next.fetch_add(1, Ordering::Relaxed);
                if cell >= out.len() {
                    break;
                }
                let Some((seed, invariant)) = &out[cell].first_failure else {
                    continue;
                };
                if let Ok(s) = shrink(&scenarios[cell], *seed, Some(invariant)) {
                    let sizes = (s.faults_before, s.scenario.faults.len());
                    shrunk.lock().expect("no worker panics")[cell] = Some(sizes);
                }
            }
        });
        for (cell, sizes) in out
            .iter_mut()
            .zip(shrunk.into_inner().expect("no worker panics"))
        {
            cell.shrunk = sizes;
        }
    }
    let mut rows = Vec::new();
    let mut iter = out.into_iter();
    for _ in 0..plan.rows.len() {
        rows.push(iter.by_ref().take(plan.protocols.len()).collect());
    }
    Matrix { cells: rows }
}

impl Matrix {
    /// The table in Markdown, one line per scenario and protocol setting.
    pub fn markdown(&self, plan: &Plan) -> String {
        let seeds = plan.seeds.len();
        let mut head = vec!["scenario".to_string(), "protocol".to_string()];
        head.extend(plan.invariants.iter().cloned());
        head.push("first failure".into());
        if plan.shrink {
            head.push("shrunk to".into());
        }
        let mut out = format!("| {} |\n", head.join(" | "));
        out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
        for (r, row) in self.cells.iter().enumerate() {
            for (p, cell) in row.iter().enumerate() {
                let mut line = vec![
                    plan.rows[r].scenario.name.clone(),
                    format!("`{}`", plan.protocols[p].0),
                ];
                for v in &cell.verdicts {
                    line.push(match v.failing {
                        0 => "holds".to_string(),
                        n => format!("**broken** in {n}/{seeds}"),
                    });
                }
                line.push(match &cell.first_failure {
                    Some((seed, inv)) => format!("seed {seed}: {inv}"),
                    None => "-".into(),
                });
                if plan.shrink {
                    line.push(match cell.shrunk {
                        Some((0, _)) => "no faults (the network alone)".into(),
                        Some((before, after)) => format!("{after} of {before} faults"),
                        None => "-".into(),
                    });
                }
                out.push_str(&format!("| {} |\n", line.join(" | ")));
            }
        }
        out
    }

    /// One JSON line per cell.
    pub fn json_lines(&self, plan: &Plan) -> Vec<String> {
        let mut lines = Vec::new();
        for (r, row) in self.cells.iter().enumerate() {
            for (p, cell) in row.iter().enumerate() {
                let invariants: serde_json::Map<String, serde_json::Value> = plan
                    .invariants
                    .iter()
                    .zip(&cell.verdicts)
                    .map(|(name, v)| {
                        (
                            name.clone(),
                            json!({"failing_seeds": v.failing, "first_seed": v.first}),
                        )
                    })
                    .collect();
                lines.push(
                    json!({
                        "scenario": plan.rows[r].scenario.name,
                        "file": plan.rows[r].path.display().to_string(),
                        "protocol": plan.protocols[p].0,
                        "seeds": plan.seeds.len(),
                        "invariants": invariants,
                        "first_failure": cell.first_failure.as_ref().map(|(s, i)| json!({"seed": s, "invariant": i})),
                        "shrunk": cell.shrunk.map(|(b, a)| json!({"faults_before": b, "faults_after": a})),
                    })
                    .to_string(),
                );
            }
        }
        lines
    }
}

/// The label of the scenario's own protocol settings in a matrix with no `--protocol`.
pub const OWN: &str = "(the scenario's own)";

/// Loads the rows; the error names the file.
pub fn load_rows(
    files: &[PathBuf],
    load: impl Fn(&Path) -> Result<Scenario, String>,
) -> Result<Vec<Row>, String> {
    files
        .iter()
        .map(|path| {
            Ok(Row {
                path: path.clone(),
                scenario: load(path)?,
            })
        })
        .collect()
}
