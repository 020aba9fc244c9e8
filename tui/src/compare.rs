//! `simlab compare`: one scenario, several protocols, the same world.
//!
//! Every protocol runs the scenario with the same seed, so the network's draws, the clients'
//! operations and the nemesis's fault kinds and times are the same (each has its own random
//! stream, independent of the protocol). Faults aimed at "the leader" find each protocol's own
//! leader at that time, unless `same_nodes` replays the first protocol's resolved nodes. The
//! scenario's `expect` is replaced by the invariants all the protocols share.

use crate::wall::Stopwatch;
use serde_json::json;
use simlab_protocols::{ProtocolConfig, RunOptions, Scenario, registry, shrink};
use simlab_sim::{Expect, ExpectVerdict, Outcome, Side, Time, TraceMode};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most seeds one comparison runs: it keeps every run's figures, for the medians.
pub const MAX_SEEDS: u64 = 1_000_000;

/// What to compare.
pub struct Plan {
    /// The scenario as loaded (its protocol is one of those compared, or none).
    pub scenario: Scenario,
    /// The protocols, in the order given.
    pub protocols: Vec<ProtocolConfig>,
    /// The seeds.
    pub seeds: Vec<u64>,
    /// Replay the first protocol's resolved fault schedule (nodes included) for the others.
    pub same_nodes: bool,
}

/// The figures of one protocol's run with one seed.
#[derive(Clone, Debug)]
pub struct Figures {
    /// The seed.
    pub seed: u64,
    /// Share of client operations that succeeded.
    pub availability: Option<f64>,
    /// The same, for operations sent to a node on a majority side of a partition.
    pub majority: Option<f64>,
    /// The same, on a minority side.
    pub minority: Option<f64>,
    /// Client latency of successful operations (virtual time).
    pub p50: Option<Time>,
    /// 99th percentile.
    pub p99: Option<Time>,
    /// The slowest.
    pub max: Option<Time>,
    /// Messages sent per successful operation.
    pub messages_per_op: Option<f64>,
    /// Leaders elected (leadership epochs seen), where the protocol counts them.
    pub leaders: Option<u64>,
    /// Invariants violated (all of them, shared or not).
    pub violated: Vec<String>,
    /// Shared invariants that could not be decided.
    pub undecided: Vec<String>,
    /// Whether every shared invariant held.
    pub met: bool,
    /// The faults as (time, kind), to check that every protocol met the same ones: every
    /// fault drawn, with leader faults by kind alone (they resolve per protocol); with
    /// `same_nodes`, the faults that took effect, nodes included.
    pub faults: Vec<(Time, String)>,
}

/// The comparison over every seed.
pub struct Comparison {
    /// The protocols' names, in order.
    pub names: Vec<&'static str>,
    /// Their scenario variants (`Raft`, `MultiPaxos`).
    pub variants: Vec<&'static str>,
    /// The invariants checked: those every protocol has.
    pub shared: Vec<String>,
    /// Per protocol, per seed (in seed order).
    pub runs: Vec<Vec<Figures>>,
    /// Seeds where the fault kinds or times differed between protocols.
    pub fault_mismatches: Vec<u64>,
    /// Whether every protocol got the first one's resolved faults.
    pub same_nodes: bool,
    /// Wall time.
    pub seconds: f64,
}

/// A protocol named on the command line: a variant name in any case, with or without dashes
/// (`raft`, `multi-paxos`, `MultiPaxos`).
pub fn parse_protocols(list: &str, scenario: &Scenario) -> Result<Vec<ProtocolConfig>, String> {
    let key = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let known = ProtocolConfig::every_default();
    let mut out: Vec<ProtocolConfig> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(found) = known.iter().find(|p| key(p.variant()) == key(name)) else {
            let names: Vec<&str> = known.iter().map(ProtocolConfig::variant).collect();
            return Err(format!(
                "--protocols: no protocol called {name:?}; there are {}",
                names.join(", ")
            ));
        };
        if out.iter().any(|p| p.variant() == found.variant()) {
            return Err(format!("--protocols names {} twice", found.variant()));
        }
        // The scenario's own protocol keeps its settings; the others start from defaults.
        if scenario.protocol.variant() == found.variant() {
            out.push(scenario.protocol.clone());
        } else {
            out.push(found.clone());
        }
    }
    if out.len() < 2 {
        return Err("--protocols needs at least two protocols, e.g. raft,multi-paxos".into());
    }
    Ok(out)
}

/// Applies `--protocol 'Variant(settings)'`: settings for one of the protocols compared.
pub fn apply_settings(protocols: &mut [ProtocolConfig], text: &str) -> Result<(), String> {
    let config = ProtocolConfig::parse(text).map_err(|e| format!("--protocol {text:?}: {e}"))?;
    let Some(slot) = protocols
        .iter_mut()
        .find(|p| p.variant() == config.variant())
    else {
        return Err(format!(
            "--protocol {text:?}: {} is not among --protocols",
            config.variant()
        ));
    };
    *slot = config;
    Ok(())
}

/// The scenario as `protocol` runs it: the shared invariants expected to hold, and only the
/// skipped invariants it has.
fn scenario_for(base: &Scenario, protocol: &ProtocolConfig, shared: &[String]) -> Scenario {
    let mut s = base.clone();
    s.protocol = protocol.clone();
    let names = protocol.invariant_names(s.nodes);
    s.skip_invariants
        .retain(|n| names.iter().any(|(k, _)| k == n));
    s.expect = Expect::Holds(shared.to_vec());
    s
}

/// The invariants every protocol has, less those the scenario skips, in the first one's order.
fn shared_invariants(base: &Scenario, protocols: &[ProtocolConfig]) -> Vec<String> {
    let lists: Vec<Vec<String>> = protocols
        .iter()
        .map(|p| {
            p.invariant_names(base.nodes)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        })
        .collect();
    lists[0]
        .iter()
        .filter(|n| lists.iter().all(|l| l.contains(n)))
        .filter(|n| !base.skip_invariants.contains(n))
        .cloned()
        .collect()
}

/// Checks every protocol's version of the scenario (settings, cluster size).
pub fn validate(plan: &Plan, path: &Path) -> Result<(), String> {
    let shared = shared_invariants(&plan.scenario, &plan.protocols);
    for p in &plan.protocols {
        scenario_for(&plan.scenario, p, &shared)
            .validate(path)
            .map_err(|e| format!("as {}: {e}", p.variant()))?;
    }
    Ok(())
}

fn figures(
    seed: u64,
    outcome: &Outcome,
    report: &[simlab_protocols::ReportItem],
    shared: &[String],
    expect: &Expect,
    same_nodes: bool,
) -> Figures {
    let cap = &outcome.cap;
    let side = |wanted: Side| {
        cap.by_side
            .iter()
            .find(|(s, _)| *s == wanted)
            .and_then(|(_, c)| c.availability())
    };
    let leaders = report
        .iter()
        .find(|i| i.key == "leaders_elected")
        .and_then(|i| i.value.as_u64());
    let violated: Vec<String> = outcome
        .violations
        .iter()
        .map(|v| v.invariant.clone())
        .collect();
    Figures {
        seed,
        availability: cap.ops.availability(),
        majority: side(Side::Majority),
        minority: side(Side::Minority),
        p50: cap.latency.map(|l| l.p50),
        p99: cap.latency.map(|l| l.p99),
        max: cap.latency.map(|l| l.max),
        messages_per_op: (cap.ops.ok > 0)
            .then(|| outcome.stats.messages_sent as f64 / cap.ops.ok as f64),
        leaders,
        violated,
        undecided: outcome
            .undecided
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| shared.contains(n))
            .collect(),
        met: expect.verdict(outcome) == ExpectVerdict::Met,
        faults: outcome
            .faults
            .iter()
            .filter(|f| !same_nodes || f.skipped.is_none())
            .map(|f| {
                let fault = format!("{:?}", f.fault);
                if same_nodes {
                    return (f.at, fault);
                }
                // A leader fault resolves to a plain one (CrashLeader to Crash(n)), or is
                // skipped where no node leads: compare the kind without the target.
                let kind = fault.split(['(', ' ', '{']).next().unwrap_or("");
                let kind = kind.trim_end_matches("Leader").trim_end_matches("Follower");
                (f.at, kind.to_string())
            })
            .collect(),
    }
}

/// Runs every protocol on every seed, `jobs` at a time. The results do not depend on `jobs`.
pub fn run(plan: &Plan, jobs: usize) -> Comparison {
    let clock = Stopwatch::start();
    let shared = shared_invariants(&plan.scenario, &plan.protocols);
    let scenarios: Vec<Scenario> = plan
        .protocols
        .iter()
        .map(|p| scenario_for(&plan.scenario, p, &shared))
        .collect();
    let seeds = &plan.seeds;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Vec<Figures>>>> = Mutex::new(vec![None; seeds.len()]);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&seed) = seeds.get(i) else { break };
            let row = one_seed(&scenarios, seed, plan.same_nodes, &shared);
            results.lock().expect("no worker panicked")[i] = Some(row);
        }
    };
    crate::sweep::on_workers(jobs, seeds.len(), work);
    let rows: Vec<Vec<Figures>> = results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .map(|r| r.expect("every seed ran"))
        .collect();
    let fault_mismatches = rows
        .iter()
        .filter(|row| row.iter().any(|f| f.faults != row[0].faults))
        .map(|row| row[0].seed)
        .collect();
    let runs = (0..plan.protocols.len())
        .map(|p| rows.iter().map(|row| row[p].clone()).collect())
        .collect();
    Comparison {
        names: plan.protocols.iter().map(ProtocolConfig::name).collect(),
        variants: plan.protocols.iter().map(ProtocolConfig::variant).collect(),
        shared,
        runs,
        fault_mismatches,
        same_nodes: plan.same_nodes,
        seconds: clock.elapsed().as_secs_f64(),
    }
}

/// One seed, every protocol.
fn one_seed(
    scenarios: &[Scenario],
    seed: u64,
    same_nodes: bool,
    shared: &[String],
) -> Vec<Figures> {
    let options = RunOptions {
        seed: Some(seed),
        trace: TraceMode::HashOnly,
        stop_on_violation: false,
    };
    // With --same-nodes, the first protocol's faults, nodes resolved, become everyone's schedule.
    let schedule = (same_nodes && scenarios[0].nemesis.is_some())
        .then(|| shrink::materialize(&scenarios[0], seed));
    scenarios
        .iter()
        .enumerate()
        .map(|(i, scenario)| {
            let replayed;
            let scenario = match &schedule {
                Some(faults) if i > 0 => {
                    let mut s = scenario.clone();
                    s.nemesis = None;
                    s.faults = faults.clone();
                    replayed = s;
                    &replayed
                }
                _ => scenario,
            };
            let (outcome, run) = registry::run(scenario, &options);
            figures(
                seed,
                &outcome,
                &run.report(),
                shared,
                &scenario.expect,
                same_nodes,
            )
        })
        .collect()
}

fn median_f64(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = values.flatten().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[(v.len() - 1) / 2])
}

fn median_time(values: impl Iterator<Item = Option<Time>>) -> Option<Time> {
    let mut v: Vec<Time> = values.flatten().collect();
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied()
}

/// A protocol's medians over the seeds.
struct Medians {
    availability: Option<f64>,
    majority: Option<f64>,
    minority: Option<f64>,
    p50: Option<Time>,
    p99: Option<Time>,
    max: Option<Time>,
    messages_per_op: Option<f64>,
    leaders: Option<f64>,
    failing: usize,
}

fn medians(runs: &[Figures]) -> Medians {
    Medians {
        availability: median_f64(runs.iter().map(|f| f.availability)),
        majority: median_f64(runs.iter().map(|f| f.majority)),
        minority: median_f64(runs.iter().map(|f| f.minority)),
        p50: median_time(runs.iter().map(|f| f.p50)),
        p99: median_time(runs.iter().map(|f| f.p99)),
        max: median_time(runs.iter().map(|f| f.max)),
        messages_per_op: median_f64(runs.iter().map(|f| f.messages_per_op)),
        leaders: median_f64(runs.iter().map(|f| f.leaders.map(|l| l as f64))),
        failing: runs.iter().filter(|f| !f.met).count(),
    }
}

impl Comparison {
    /// Per shared invariant, the seeds where some protocol violated it and another did not.
    pub fn disagreements(&self) -> Vec<(String, Vec<u64>)> {
        self.shared
            .iter()
            .filter_map(|name| {
                let seeds: Vec<u64> = (0..self.runs[0].len())
                    .filter(|&i| {
                        let v: BTreeSet<bool> = self
                            .runs
                            .iter()
                            .map(|r| r[i].violated.contains(name))
                            .collect();
                        v.len() > 1
                    })
                    .map(|i| self.runs[0][i].seed)
                    .collect();
                (!seeds.is_empty()).then(|| (name.clone(), seeds))
            })
            .collect()
    }

    /// Whether some run violated a shared invariant.
    pub fn any_failed(&self) -> bool {
        self.runs
            .iter()
            .flatten()
            .any(|f| f.violated.iter().any(|v| self.shared.contains(v)))
    }

    /// Whether some run could not decide a shared invariant.
    pub fn any_undecided(&self) -> bool {
        self.runs.iter().flatten().any(|f| !f.undecided.is_empty())
    }

    /// The readable table.
    pub fn text(&self, file: &Path) -> String {
        use std::fmt::Write as _;
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
        let time = |t: Option<Time>| {
            t.map_or("-".to_string(), |t| {
                format!("{:.1}ms", t.as_micros() as f64 / 1e3)
            })
        };
        let seeds = self.runs[0].len();
        let mut w = String::new();
        let _ = writeln!(w, "compare     {} over {seeds} seeds", file.display());
        let _ = writeln!(
            w,
            "checking    {}",
            if self.shared.is_empty() {
                "nothing: the protocols share no invariant".to_string()
            } else {
                self.shared.join(", ")
            }
        );
        let faults = if self.fault_mismatches.is_empty() && self.same_nodes {
            "the first protocol's, nodes resolved, for every protocol".to_string()
        } else if self.fault_mismatches.is_empty() {
            "the same kinds at the same times for every protocol".to_string()
        } else {
            format!(
                "differed in kind or time on seeds {:?}",
                self.fault_mismatches
            )
        };
        let _ = writeln!(w, "faults      {faults}");
        let what = if seeds > 1 {
            "medians over the seeds"
        } else {
            "one seed"
        };
        let _ = writeln!(w, "figures     {what}; latency in virtual time");
        let _ = writeln!(
            w,
            "{:<22}{:>8}{:>10}{:>10}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            "protocol",
            "avail",
            "majority",
            "minority",
            "p50",
            "p99",
            "max",
            "msgs/op",
            "leaders",
            "failing"
        );
        for (name, runs) in self.names.iter().zip(&self.runs) {
            let m = medians(runs);
            let _ = writeln!(
                w,
                "{:<22}{:>8}{:>10}{:>10}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
                name,
                pct(m.availability),
                pct(m.majority),
                pct(m.minority),
                time(m.p50),
                time(m.p99),
                time(m.max),
                m.messages_per_op.map_or("-".into(), |v| format!("{v:.1}")),
                m.leaders.map_or("-".into(), |v| format!("{v}")),
                m.failing,
            );
        }
        for (name, runs) in self.names.iter().zip(&self.runs) {
            let mut by: Vec<(String, usize)> = Vec::new();
            for f in runs {
                for v in &f.violated {
                    match by.iter_mut().find(|(n, _)| n == v) {
                        Some((_, c)) => *c += 1,
                        None => by.push((v.clone(), 1)),
                    }
                }
            }
            if !by.is_empty() {
                let list: Vec<String> = by
                    .iter()
                    .map(|(n, c)| format!("{n} on {c} seeds"))
                    .collect();
                let _ = writeln!(w, "violations  {name}: {}", list.join(", "));
            }
        }
        let disagreements = self.disagreements();
        if disagreements.is_empty() {
            let _ = writeln!(w, "disagree    on no seed");
        }
        for (invariant, seeds) in disagreements {
            let shown: Vec<String> = seeds.iter().take(10).map(u64::to_string).collect();
            let more = seeds.len().saturating_sub(10);
            let tail = if more > 0 {
                format!(" … and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(
                w,
                "disagree    {invariant}: seeds {}{tail}",
                shown.join(", ")
            );
        }
        let _ = writeln!(w, "took        {:.2}s", self.seconds);
        w
    }

    /// One JSON line per protocol and seed, then one summary line.
    pub fn json_lines(&self, file: &Path) -> Vec<String> {
        let micros = |t: Option<Time>| t.map(Time::as_micros);
        let mut lines = Vec::new();
        for (variant, runs) in self.variants.iter().zip(&self.runs) {
            for f in runs {
                lines.push(
                    json!({
                        "protocol": variant,
                        "seed": f.seed,
                        "availability": f.availability,
                        "availability_majority": f.majority,
                        "availability_minority": f.minority,
                        "latency_p50_us": micros(f.p50),
                        "latency_p99_us": micros(f.p99),
                        "latency_max_us": micros(f.max),
                        "messages_per_op": f.messages_per_op,
                        "leaders_elected": f.leaders,
                        "violated": f.violated,
                        "undecided": f.undecided,
                        "met": f.met,
                        "faults": f.faults.iter().map(|(at, what)| json!({
                            "at_us": at.as_micros(), "fault": what,
                        })).collect::<Vec<_>>(),
                    })
                    .to_string(),
                );
            }
        }
        let summary: Vec<serde_json::Value> = self
            .variants
            .iter()
            .zip(&self.runs)
            .map(|(variant, runs)| {
                let m = medians(runs);
                json!({
                    "protocol": variant,
                    "availability": m.availability,
                    "availability_majority": m.majority,
                    "availability_minority": m.minority,
                    "latency_p50_us": micros(m.p50),
                    "latency_p99_us": micros(m.p99),
                    "latency_max_us": micros(m.max),
                    "messages_per_op": m.messages_per_op,
                    "leaders_elected": m.leaders,
                    "failing": m.failing,
                })
            })
            .collect();
        let disagree: serde_json::Map<String, serde_json::Value> = self
            .disagreements()
            .into_iter()
            .map(|(n, s)| (n, json!(s)))
            .collect();
        lines.push(
            json!({
                "summary": true,
                "scenario": file.display().to_string(),
                "seeds": self.runs[0].len(),
                "shared_invariants": self.shared,
                "medians": summary,
                "disagree": disagree,
                "fault_mismatches": self.fault_mismatches,
            })
            .to_string(),
        );
        lines
    }
}
