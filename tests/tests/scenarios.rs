//! Every scenario file parses, runs, meets its `expect`, and runs the same way twice.

mod common;

use simlab_protocols::{RunOptions, Scenario, registry};
use simlab_sim::TraceMode;

#[test]
fn every_scenario_meets_its_expectation_and_replays_exactly() {
    let files = common::scenario_files();
    assert!(
        files.len() >= 20,
        "expected the scenario battery, found {}",
        files.len()
    );
    for path in files {
        let scenario = Scenario::load(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .scenario;
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let (first, _) = registry::run(&scenario, &RunOptions::default());
        assert!(
            scenario.expect.is_met(&first),
            "{name}: expected {} but got {:?}\nreplay: {}",
            scenario.expect,
            first.violations,
            common::replay(&name, scenario.seed)
        );
        let full = RunOptions {
            trace: TraceMode::Full,
            ..RunOptions::default()
        };
        let (second, run) = registry::run(&scenario, &full);
        assert_eq!(
            first.trace_hash, second.trace_hash,
            "{name}: same seed, different trace"
        );
        assert_eq!(first.stats, second.stats, "{name}");
        assert_eq!(
            run.records().len() as u64,
            second.stats.steps,
            "{name}: one record per step"
        );
    }
}

#[test]
fn scenario_names_match_their_files() {
    for path in common::scenario_files() {
        let scenario = Scenario::load(&path).unwrap().scenario;
        assert_eq!(
            scenario.name,
            path.file_stem().unwrap().to_string_lossy(),
            "{}",
            path.display()
        );
        assert!(
            !scenario.description.is_empty(),
            "{} has no description",
            path.display()
        );
    }
}

#[test]
fn seeds_change_the_run_but_not_the_verdict_of_a_safe_protocol() {
    let scenario = common::scenario("2pc-chaos");
    let mut hashes = Vec::new();
    for seed in 0..5 {
        let options = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let (outcome, _) = registry::run(&scenario, &options);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}\nreplay: {}",
            outcome.violations,
            common::replay("2pc-chaos", seed)
        );
        hashes.push(outcome.trace_hash);
    }
    hashes.sort_unstable();
    hashes.dedup();
    assert_eq!(hashes.len(), 5, "every seed is a different run");
}

/// Every time setting is bounded when the scenario loads, with the field in the error: values
/// that used to wrap when converted to microseconds (and panic or silently change the run).
#[test]
fn time_settings_that_would_overflow_are_refused_with_their_field() {
    let base =
        std::fs::read_to_string(common::root().join("scenarios/raft-basic-agreement.ron")).unwrap();
    let cases = [
        (
            "clients: (count: 1, ops: 2, think_ms: (1, 18446744073709552))",
            "clients.think_ms",
        ),
        (
            "clients: (count: 1, ops: 2, latency_ms: (1, 18446744073709552))",
            "clients.latency_ms",
        ),
        (
            "clients: (count: 1, ops: 2, timeout_ms: 18446744073709552)",
            "clients.timeout_ms",
        ),
        (
            "network: (latency_ms: Uniform(1, 10), reorder_ms: 9223372036854775808)",
            "network.reorder_ms",
        ),
        (
            "protocol: Raft(election_timeout_ms: (150, 18446744073709552))",
            "protocol.election_timeout_ms",
        ),
        (
            "protocol: Raft(election_timeout_ms: (18446744073709551615, 18446744073709551615))",
            "protocol.election_timeout_ms",
        ),
        (
            "faults: [(at_ms: 100, fault: ClockSkew(node: 0, offset_ms: -9223372036854775808, drift_ppm: 0))]",
            "faults[0].fault.offset_ms",
        ),
    ];
    for (replacement, field) in cases {
        let key = replacement.split(':').next().unwrap();
        let text: String = base
            .lines()
            .map(|l| {
                if l.trim_start().starts_with(&format!("{key}:")) {
                    format!("    {replacement},")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let text = if text.contains(replacement) {
            text
        } else {
            // The base scenario has no such line: add it before the stop time.
            text.replacen(
                "    stop_ms:",
                &format!("    {replacement},\n    stop_ms:"),
                1,
            )
        };
        let err = Scenario::parse(std::path::Path::new("t.ron"), &text)
            .expect_err(replacement)
            .to_string();
        // The error points at the field where it is written: `t.ron:LINE:COLUMN: field: …`.
        let (position, rest) = err
            .strip_prefix("t.ron:")
            .and_then(|r| r.split_once(": "))
            .unwrap_or_else(|| panic!("{replacement}: {err}"));
        assert!(
            position.split(':').all(|n| n.parse::<usize>().is_ok()),
            "{replacement}: {err}"
        );
        assert!(
            rest.starts_with(&format!("{field}: ")) && rest.contains("longer than 30 days"),
            "{replacement}: {err}"
        );
    }
}

/// Whether `pattern` (a file name with at most one `*`) matches `name`.
fn glob_matches(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        }
    }
}

/// The file names and patterns the index's tables list: every `` `….ron` `` in a table row.
fn index_entries(index: &str) -> Vec<String> {
    index
        .lines()
        .filter(|l| l.starts_with('|'))
        .flat_map(|l| l.split('`').skip(1).step_by(2).map(str::to_string))
        .filter(|e| e.ends_with(".ron"))
        .collect()
}

#[test]
fn the_index_lists_every_scenario_file() {
    let index = std::fs::read_to_string(common::root().join("scenarios/README.md")).unwrap();
    let entries = index_entries(&index);
    let files: Vec<String> = common::scenario_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let missing: Vec<&String> = files
        .iter()
        .filter(|f| !entries.iter().any(|e| glob_matches(e, f)))
        .collect();
    assert!(
        missing.is_empty(),
        "scenarios/README.md does not list {missing:?}"
    );
    let stale: Vec<&String> = entries
        .iter()
        .filter(|e| !files.iter().any(|f| glob_matches(e, f)))
        .collect();
    assert!(
        stale.is_empty(),
        "scenarios/README.md lists missing files {stale:?}"
    );
}

#[test]
fn the_index_check_catches_an_unlisted_file() {
    let entries =
        index_entries("| `raft-bug-*.ron` | x |\n| `a.ron` / `b.ron` | y |\nnot `c.ron`\n");
    assert_eq!(entries, ["raft-bug-*.ron", "a.ron", "b.ron"]);
    assert!(glob_matches("raft-bug-*.ron", "raft-bug-no-step-down.ron"));
    assert!(!glob_matches("raft-bug-*.ron", "raft-basic.ron"));
    assert!(!entries.iter().any(|e| glob_matches(e, "c.ron")));
}
