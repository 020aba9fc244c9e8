//! What `simlab run` prints: a readable summary or one JSON object.

use crate::wall::per_sec;
use serde_json::json;
use simlab_protocols::{Run, Scenario};
use simlab_sim::{Outcome, Side};
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

/// Everything a run summary shows.
pub struct RunSummary<'a> {
    pub file: &'a Path,
    pub scenario: &'a Scenario,
    pub outcome: &'a Outcome,
    pub run: &'a dyn Run,
    pub expect_met: bool,
    pub elapsed: Duration,
    pub swarm: bool,
}

/// The command that replays this exact run.
pub fn replay_command(file: &Path, seed: u64, swarm: bool) -> String {
    let swarm = if swarm { " --swarm" } else { "" };
    format!("simlab run {} --seed {seed}{swarm}", file.display())
}

/// The command that opens this run in the TUI at its first violation.
pub fn inspect_command(file: &Path, seed: u64, swarm: bool) -> String {
    let swarm = if swarm { " --swarm" } else { "" };
    format!(
        "simlab tui {} --seed {seed}{swarm} --at-violation",
        file.display()
    )
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        "n/a".into()
    } else {
        format!("{:.1}%", 100.0 * part as f64 / total as f64)
    }
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Healthy => "no partition",
        Side::Majority => "majority side",
        Side::Minority => "minority side",
    }
}

impl RunSummary<'_> {
    /// The readable summary.
    pub fn text(&self) -> String {
        let o = self.outcome;
        let s = &o.stats;
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(
            w,
            "scenario    {} ({})",
            self.scenario.name,
            self.file.display()
        );
        let _ = writeln!(
            w,
            "protocol    {}, {} nodes",
            self.scenario.protocol.name(),
            self.scenario.nodes
        );
        let _ = writeln!(w, "seed        {}", o.seed);
        let _ = writeln!(
            w,
            "steps       {} over {} of virtual time ({})",
            s.steps, s.end_time, o.stop_reason
        );
        let _ = writeln!(
            w,
            "messages    sent {}, delivered {}, dropped {} (partition {}, loss {}, node down {}), duplicated {}",
            s.messages_sent,
            s.messages_delivered,
            s.messages_dropped(),
            s.dropped_partition,
            s.dropped_loss,
            s.dropped_crashed,
            s.duplicated
        );
        let random = o.faults.iter().filter(|f| f.random).count();
        let _ = writeln!(
            w,
            "faults      {} ({} scheduled, {} from the nemesis)",
            o.faults.len(),
            o.faults.len() - random,
            random
        );
        for f in o.faults.iter().take(12) {
            let skipped = f
                .skipped
                .as_deref()
                .map(|why| format!(" (skipped: {why})"))
                .unwrap_or_default();
            let _ = writeln!(w, "  {:>12}  {}{skipped}", f.at.to_string(), f.fault);
        }
        if o.faults.len() > 12 {
            let _ = writeln!(w, "  … and {} more", o.faults.len() - 12);
        }
        if o.violations.is_empty() {
            let _ = writeln!(w, "violations  none");
        } else {
            let _ = writeln!(w, "violations  {}", o.violations.len());
            for v in &o.violations {
                let _ = writeln!(
                    w,
                    "  {} ({}) at step {} ({}): {}",
                    v.invariant, v.kind, v.step, v.time, v.message
                );
            }
        }
        for (name, why) in &o.undecided {
            let _ = writeln!(w, "undecided   {name}: {why}");
        }
        let cap = &o.cap;
        let _ = writeln!(w, "CAP report");
        let _ = writeln!(w, "  consistency   {}", cap.consistency_verdict());
        let ops = &cap.ops;
        let _ = writeln!(
            w,
            "  availability  {} of {} client operations succeeded (ok {}, failed {}, unknown {})",
            percent(ops.ok, ops.total),
            ops.total,
            ops.ok,
            ops.fail,
            ops.unknown
        );
        if cap.by_side.len() > 1 || cap.by_side.iter().any(|(side, _)| *side != Side::Healthy) {
            for (side, counts) in &cap.by_side {
                let _ = writeln!(
                    w,
                    "    {:<14}{} of {}",
                    side_name(*side),
                    percent(counts.ok, counts.total),
                    counts.total
                );
            }
            // Each group of nodes that could reach each other during a partition, on its own:
            // two halves of an even split are both "minority", and both should answer.
            const SHOWN: usize = 8;
            for (group, counts) in cap.by_group.iter().take(SHOWN) {
                let mut name = simlab_sim::faults::node_ranges(group);
                if name.chars().count() > 40 {
                    name = format!("{}...", name.chars().take(37).collect::<String>());
                }
                let _ = writeln!(
                    w,
                    "      {{{name}}} {} of {}",
                    percent(counts.ok, counts.total),
                    counts.total
                );
            }
            if cap.by_group.len() > SHOWN {
                let _ = writeln!(
                    w,
                    "      ... and {} more groups",
                    cap.by_group.len() - SHOWN
                );
            }
        }
        if let Some(l) = &cap.latency {
            let _ = writeln!(
                w,
                "  latency       p50 {}, p99 {}, max {} (virtual time, {} successful operations)",
                l.p50, l.p99, l.max, l.count
            );
        }
        let _ = writeln!(w, "  partitions    {} injected", cap.partitions_injected);
        if let Some(over) = cap.faults_over_at {
            let convergence = match cap.convergence {
                Some(t) => format!("{t} after the last fault at {over}"),
                None => format!("not reached after the last fault at {over}"),
            };
            let _ = writeln!(w, "  convergence   {convergence}");
        }
        let report = self.run.report();
        if !report.is_empty() {
            let _ = writeln!(w, "{}", self.scenario.protocol.name());
            for item in report.iter().filter(|i| !i.text.is_empty()) {
                let _ = writeln!(w, "  {:<24}{}", item.label, item.text);
            }
        }
        let verdict = match self.scenario.expect.verdict(o) {
            simlab_sim::ExpectVerdict::Met => "met",
            simlab_sim::ExpectVerdict::NotMet => "NOT met",
            simlab_sim::ExpectVerdict::Undecided => "undecided (a check it needs could not decide)",
        };
        let _ = writeln!(w, "expect      {}: {verdict}", self.scenario.expect);
        let _ = writeln!(w, "trace hash  {}", o.trace_hash_hex());
        let _ = writeln!(
            w,
            "wall time   {:.3}s ({:.0} events/s)",
            self.elapsed.as_secs_f64(),
            per_sec(s.steps, self.elapsed)
        );
        let _ = writeln!(
            w,
            "replay      {}",
            replay_command(self.file, o.seed, self.swarm)
        );
        if !o.violations.is_empty() {
            let _ = writeln!(
                w,
                "inspect     {}",
                inspect_command(self.file, o.seed, self.swarm)
            );
        }
        out
    }

    /// One JSON object.
    pub fn json(&self) -> serde_json::Value {
        let o = self.outcome;
        let report: serde_json::Map<String, serde_json::Value> = self
            .run
            .report()
            .into_iter()
            .map(|i| (i.key.to_string(), i.value))
            .collect();
        json!({
            "scenario": self.scenario.name,
            "file": self.file.display().to_string(),
            "protocol": self.scenario.protocol.name(),
            "nodes": self.scenario.nodes,
            "seed": o.seed,
            "steps": o.stats.steps,
            "sim_time_us": o.stats.end_time.as_micros(),
            "stop_reason": o.stop_reason.to_string(),
            "stats": o.stats,
            "faults": o.faults,
            "undecided": o.undecided.iter().map(|(name, why)| json!({
                "invariant": name, "why": why,
            })).collect::<Vec<_>>(),
            "violations": o.violations.iter().map(|v| json!({
                "invariant": v.invariant,
                "kind": v.kind,
                "step": v.step,
                "time": v.time.as_micros(),
                "time_display": v.time.to_string(),
                "message": v.message,
            })).collect::<Vec<_>>(),
            "cap": {
                "consistency": o.cap.consistency_verdict(),
                "consistency_held": o.cap.consistency_held,
                "consistency_violated": o.cap.consistency_violated,
                "consistency_undecided": o.cap.consistency_undecided,
                "ops": o.cap.ops,
                "availability": o.cap.ops.availability(),
                "by_side": o.cap.by_side.iter().map(|(side, c)| json!({
                    "side": side, "ops": c, "availability": c.availability(),
                })).collect::<Vec<_>>(),
                "by_group": o.cap.by_group.iter().map(|(group, c)| json!({
                    "nodes": group.iter().map(|n| n.0).collect::<Vec<_>>(),
                    "ops": c, "availability": c.availability(),
                })).collect::<Vec<_>>(),
                "partitions_injected": o.cap.partitions_injected,
                "faults_over_at_us": o.cap.faults_over_at.map(|t| t.as_micros()),
                "convergence_us": o.cap.convergence.map(|t| t.as_micros()),
                "latency_us": o.cap.latency.map(|l| json!({
                    "count": l.count,
                    "p50": l.p50.as_micros(),
                    "p99": l.p99.as_micros(),
                    "max": l.max.as_micros(),
                })),
            },
            "report": report,
            "trace_hash": o.trace_hash_hex(),
            "expect": self.scenario.expect.to_string(),
            "expect_met": self.expect_met,
            "expect_undecided": self.scenario.expect.verdict(o) == simlab_sim::ExpectVerdict::Undecided,
            "wall_ms": self.elapsed.as_secs_f64() * 1e3,
            "events_per_sec": per_sec(o.stats.steps, self.elapsed),
            "replay": replay_command(self.file, o.seed, self.swarm),
        })
    }
}
