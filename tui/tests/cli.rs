//! `simlab` as a user runs it: exit codes, output, JSON, trace files, and errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn simlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simlab"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("simlab runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simlab-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn run_prints_a_summary_and_exits_zero_when_expectations_are_met() {
    let out = simlab(&["run", "scenarios/2pc-happy-path.ron"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for key in [
        "scenario    2pc-happy-path",
        "protocol    two-phase commit, 4 nodes",
        "seed        1",
        "violations  none",
        "CAP report",
        "availability",
        "expect      every invariant holds: met",
        "trace hash  ",
        "events/s",
        "replay      simlab run scenarios/2pc-happy-path.ron --seed 1",
    ] {
        assert!(text.contains(key), "missing {key:?} in:\n{text}");
    }
}

#[test]
fn json_output_has_the_documented_fields() {
    let out = simlab(&["run", "scenarios/3pc-partition.ron", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    assert_eq!(v["scenario"], "3pc-partition");
    assert_eq!(v["seed"], 1);
    assert!(v["steps"].as_u64().unwrap() > 10);
    assert_eq!(v["trace_hash"].as_str().unwrap().len(), 16);
    assert_eq!(v["expect_met"], true);
    assert!(v["events_per_sec"].as_f64().unwrap() > 0.0);
    let violation = &v["violations"][0];
    assert_eq!(violation["invariant"], "Agreement");
    assert!(violation["step"].as_u64().is_some() && violation["time"].as_u64().is_some());
    assert!(
        violation["message"]
            .as_str()
            .unwrap()
            .contains("decided commit")
    );
}

#[test]
fn the_seed_flag_changes_the_run_and_replays_exactly() {
    let hash = |seed: &str| {
        let out = simlab(&["run", "scenarios/2pc-chaos.ron", "--json", "--seed", seed]);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["trace_hash"].as_str().unwrap().to_string()
    };
    assert_eq!(hash("11"), hash("11"));
    assert_ne!(hash("11"), hash("12"));
}

#[test]
fn trace_files_have_one_line_per_step_ending_at_the_trace_hash() {
    let dir = temp_dir("trace");
    let path = dir.join("run.jsonl");
    let out = simlab(&[
        "run",
        "scenarios/2pc-coordinator-crash-after-decision.ron",
        "--json",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, summary["steps"].as_u64().unwrap());
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["step"], i as u64);
        assert!(
            line["kind"].is_string() && line["summary"].is_string() && line["time_us"].is_u64()
        );
    }
    assert_eq!(lines.last().unwrap()["hash"], summary["trace_hash"]);
    assert!(lines.iter().any(|l| l["kind"] == "fault"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unmet_expectation_exits_one() {
    let dir = temp_dir("unmet");
    let text = std::fs::read_to_string(root().join("scenarios/2pc-happy-path.ron")).unwrap();
    let path = dir.join("unmet.ron");
    std::fs::write(
        &path,
        text.replace("expect: AllHold", "expect: Violates(\"Agreement\")"),
    )
    .unwrap();
    let out = simlab(&["run", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("Agreement is violated: NOT met"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_exits_two_with_a_clear_message() {
    let dir = temp_dir("bad");
    let cases = [
        (
            "syntax.ron",
            "Scenario(\n    name: \"x\",\n    nodes: 4\n    stop_ms: 10,\n)",
            ":4:5: Expected comma",
        ),
        (
            "field.ron",
            "Scenario(name: \"x\", protocol: TwoPhaseCommit(acounts: 3), nodes: 4, stop_ms: 10, expect: AllHold)",
            "expected one of `accounts`",
        ),
        (
            "nodes.ron",
            "Scenario(name: \"x\", protocol: TwoPhaseCommit(), nodes: 0, stop_ms: 10, expect: AllHold)",
            "nodes: a cluster needs at least 1 node",
        ),
        (
            "fault.ron",
            "Scenario(name: \"x\", protocol: TwoPhaseCommit(), nodes: 5, faults: [(at_ms: 1, fault: Crash(7))], stop_ms: 10, expect: AllHold)",
            "faults[0].fault: node 7 does not exist",
        ),
        (
            "prob.ron",
            "Scenario(name: \"x\", protocol: TwoPhaseCommit(), nodes: 4, network: (drop: 1.5), stop_ms: 10, expect: AllHold)",
            "probability 1.5 is not between 0.0 and 1.0",
        ),
        (
            "expect.ron",
            "Scenario(name: \"x\", protocol: TwoPhaseCommit(), nodes: 4, stop_ms: 10, expect: Violates(\"Nope\"))",
            "no invariant called \"Nope\"",
        ),
    ];
    for (file, text, needle) in cases {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        let out = simlab(&["run", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = stderr(&out);
        assert!(err.contains(file) && err.contains(needle), "{file}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = simlab(&["run", "no-such-file.ron"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-file.ron: cannot read"));
    let out = simlab(&["run"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing argument is a usage error"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn an_unwritable_trace_is_an_error_and_leaves_nothing_behind() {
    let dir = temp_dir("unwritable");
    let path = dir.join("missing-dir").join("t.jsonl");
    let out = simlab(&[
        "run",
        "scenarios/3pc-partition.ron",
        "--trace",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot write the trace"),
        "{}",
        stderr(&out)
    );
    assert!(!path.exists());
    std::fs::remove_dir_all(dir).unwrap();
}
