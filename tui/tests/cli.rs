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

/// A scratch directory, removed with everything in it when dropped, however the test ends.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("simlab-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
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

/// `--trace -` streams the trace to standard output, as clean JSON lines, and moves the
/// summary to standard error.
#[test]
fn a_trace_to_standard_output_keeps_the_summary_apart() {
    let out = simlab(&["run", "scenarios/3pc-partition.ron", "--trace", "-"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() > 10);
    assert_eq!(lines[0]["step"], 0);
    let summary = stderr(&out);
    assert!(summary.contains("scenario    3pc-partition"), "{summary}");
    let hash = summary
        .lines()
        .find_map(|l| l.strip_prefix("trace hash  "))
        .expect("the summary names the trace hash");
    assert_eq!(lines.last().unwrap()["hash"], hash);
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

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[test]
fn sweep_results_do_not_depend_on_jobs_and_shards_concatenate() {
    let file = "scenarios/3pc-partition-nemesis.ron";
    let one = simlab(&["sweep", file, "--seeds", "0..12", "--jobs", "1", "--json"]);
    let two = simlab(&["sweep", file, "--seeds", "0..12", "--jobs", "2", "--json"]);
    assert_eq!(
        one.status.code(),
        Some(1),
        "some seed breaks 3PC: {}",
        stderr(&one)
    );
    let strip = |lines: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        lines
            .into_iter()
            .filter(|l| l.get("summary").is_none())
            .collect()
    };
    let failing = strip(json_lines(&one));
    assert!(!failing.is_empty());
    assert_eq!(
        failing,
        strip(json_lines(&two)),
        "the same failures whatever --jobs is"
    );
    let summary = json_lines(&one).pop().unwrap();
    assert_eq!(summary["seeds_run"], 12);
    assert_eq!(summary["failing"], failing.len());

    let mut sharded = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let out = simlab(&[
            "sweep", file, "--seeds", "0..12", "--shard", &shard, "--json",
        ]);
        sharded.extend(strip(json_lines(&out)));
    }
    sharded.sort_by_key(|l| l["seed"].as_u64());
    assert_eq!(
        sharded, failing,
        "the shards' failures are the whole sweep's"
    );
}

#[test]
fn sweep_stop_on_first_reports_the_smallest_failing_seed() {
    let file = "scenarios/3pc-bug-termination-commits-uncertain.ron";
    let out = simlab(&[
        "sweep",
        file,
        "--seeds",
        "0..200",
        "--stop-on-first",
        "--json",
        "--jobs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "one failing seed and the summary");
    assert_eq!(
        lines[0]["seed"], 8,
        "the scenario's seed is its first failing one"
    );
    assert_eq!(lines[0]["violations"][0]["invariant"], "Agreement");
    assert!(lines[0]["replay"].as_str().unwrap().ends_with("--seed 8"));
}

#[test]
fn a_clean_sweep_exits_zero_with_a_readable_summary() {
    let out = simlab(&["sweep", "scenarios/3pc-crash-stop.ron", "--seeds", "0..20"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("seeds       20 run, 0 failing"), "{text}");
    assert!(text.contains("seeds/s"), "{text}");
}

/// A scenario that demonstrates a failure expects its violation: the sweep says how many
/// seeds showed it, beside the usual list of violations (and the same in the JSON summary).
#[test]
fn a_sweep_of_a_planted_bug_says_how_many_seeds_met_its_expectation() {
    let file = "scenarios/raft-bug-keep-conflicting-suffix.ron";
    let out = simlab(&["sweep", file, "--seeds", "20..30"]);
    let text = stdout(&out);
    // Seed 26 is the one in this range where the kept suffix breaks LogMatching.
    assert!(text.contains("seeds       10 run, 1 failing"), "{text}");
    assert!(
        text.contains("expect      LogMatching is violated: met by 1 of 10 seeds"),
        "{text}"
    );
    let out = simlab(&["sweep", file, "--seeds", "20..30", "--json"]);
    let lines = json_lines(&out);
    let summary = lines.last().unwrap();
    assert_eq!(summary["expect"], "LogMatching is violated");
    assert_eq!(summary["expect_met"], 1);
    assert_eq!(lines[0]["seed"], 26);
    // A scenario that expects every invariant to hold has no such line: failing says it all.
    let out = simlab(&["sweep", "scenarios/3pc-crash-stop.ron", "--seeds", "0..3"]);
    assert!(!stdout(&out).contains("expect "), "{}", stdout(&out));
}

/// A run cut short by a limit proved nothing: a sweep counts it as failing, under its own
/// heading, in the text and in the JSON lines.
#[test]
fn sweep_counts_a_run_that_hit_a_limit_as_failing() {
    let text = std::fs::read_to_string(root().join("scenarios/raft-basic-agreement.ron"))
        .unwrap()
        .replace(
            "stop_ms: 10000,",
            "stop_ms: 10000,\n    limits: (max_steps: 500, max_queue: 1000000),",
        );
    let dir = std::env::temp_dir().join(format!("simlab-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("raft-basic-agreement.ron");
    std::fs::write(&file, text).unwrap();
    let path = file.to_string_lossy().into_owned();
    let out = simlab(&["sweep", &path, "--seeds", "0..5"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let shown = stdout(&out);
    assert!(shown.contains("seeds       5 run, 5 failing"), "{shown}");
    assert!(shown.contains("(limit hit): 5 seeds"), "{shown}");
    assert!(shown.contains("hit the step limit of 500 steps"), "{shown}");
    let out = simlab(&["sweep", &path, "--seeds", "0..5", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6, "five failing seeds and the summary");
    assert_eq!(lines[0]["limit_hit"], true);
    assert_eq!(lines[5]["by_invariant"]["(limit hit)"], 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sweep_rejects_bad_ranges_and_shards() {
    // Each misuse exits 2 with an error saying what is wrong.
    let sweep = |option: &str, value: &str| {
        let args = ["sweep", "scenarios/3pc-crash-stop.ron", option, value];
        args.map(String::from).to_vec()
    };
    let shrink_typo = [
        "shrink",
        "scenarios/3pc-partition.ron",
        "--seed",
        "1",
        "--invariant",
        "agreement",
    ]
    .map(String::from)
    .to_vec();
    for (args, says) in [
        (sweep("--seeds", "9..3"), "is empty"),
        (sweep("--seeds", "abc"), "expected a range"),
        (sweep("--shard", "3/3"), "expected K/N"),
        (sweep("--jobs", "0"), "at least 1"),
        (sweep("--jobs", "100000"), "--jobs 100000 is more than 1024"),
        (sweep("--jobs", "18446744073709551615"), "more than 1024"),
        (shrink_typo, "has no such invariant; it has: Agreement,"),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = simlab(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
    // The largest seed can be swept (inclusive range at the top of u64).
    let out = simlab(&[
        "sweep",
        "scenarios/3pc-crash-stop.ron",
        "--seeds",
        "18446744073709551615..=18446744073709551615",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("seeds       1 run, 0 failing"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn lincheck_reads_every_format_and_explains_violations() {
    let data = root().join("tests/data/porcupine");
    let file = |f: &str| data.join(f).to_string_lossy().into_owned();
    let out = simlab(&["lincheck", "--model", "kv", &file("kv/c01-bad.txt")]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("NOT linearizable (38 operations, a Porcupine key-value log"),
        "{text}"
    );
    assert!(
        text.contains("key \"7\" (5 operations) is not linearizable"),
        "{text}"
    );
    assert!(text.contains("get(\"7\") -> \"x 0 0 y\""), "{text}");
    let out = simlab(&[
        "lincheck",
        "--model",
        "register",
        &file("jepsen/etcd_002.log"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("linearizable (77 operations, a Jepsen register log"));

    let dir = temp_dir("lincheck");
    let json = dir.join("history.jsonl");
    std::fs::write(&json, "{\"client\":0,\"call\":0,\"return\":10,\"op\":\"write\",\"value\":1}\n{\"client\":1,\"call\":20,\"return\":30,\"op\":\"read\",\"output\":null}\n").unwrap();
    let out = simlab(&["lincheck", "--model", "register", json.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a read of nothing after a completed write"
    );
    assert!(stdout(&out).contains("simlab JSON lines"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn lincheck_rejects_bad_input_with_the_line() {
    let dir = temp_dir("lincheck-bad");
    let bad = dir.join("bad.log");
    std::fs::write(
        &bad,
        "INFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\tseven\n",
    )
    .unwrap();
    let out = simlab(&["lincheck", "--model", "register", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("bad.log:2: expected an integer, found \"seven\""),
        "{err}"
    );
    let out = simlab(&["lincheck", "--model", "kv", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("use --model register"));
    let out = simlab(&["lincheck", "--model", "graph", bad.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unknown model is a usage error"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bench_reports_every_case_as_json() {
    let out = simlab(&["bench", "--json", "--repeats", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    for key in [
        "engine_events_per_sec",
        "engine_traced_events_per_sec",
        "raft_events_per_sec",
        "sweep_jobs1_seeds_per_sec",
        "sweep_jobs2_seeds_per_sec",
        "trace_bytes_per_step",
        "lincheck_ops_per_sec",
        "gossip_1000_events_per_sec",
        "gossip_1000_partitioned_events_per_sec",
        "engine_bytes_per_node",
        "tui_1000_nodes_seek_ms",
        "tui_1000_nodes_bytes",
        "explore_paxos_states_per_sec",
        "explore_paxos_generated_per_sec",
    ] {
        assert!(
            v[key].as_f64().is_some_and(|x| x > 0.0),
            "{key} missing or zero"
        );
    }
    // Every new state is reached by a transition, and Paxos's states by several.
    assert!(
        v["explore_paxos_generated_per_sec"].as_f64().unwrap()
            > 2.0 * v["explore_paxos_states_per_sec"].as_f64().unwrap(),
        "generated states count every transition"
    );
    assert!(
        v["trace_bytes_per_step"].as_f64().unwrap() <= 64.0,
        "compact trace stays compact"
    );
    // A field per target: its value, the goal, and whether this run met it (null: not judged).
    for name in [
        "engine_vs_bare_loop",
        "engine_compact_trace_vs_bare_loop",
        "raft_events_per_sec",
        "multi_paxos_vs_raft",
        "trace_bytes_per_step",
        "tui_seek_ms",
        "engine_1000_nodes_vs_5",
        "partition_1000_split_heal_us",
        "engine_bytes_per_node",
    ] {
        let t = &v["targets"][name];
        assert!(t["value"].as_f64().is_some_and(|x| x > 0.0), "{name}: {t}");
        assert!(
            t["goal"].as_str().is_some_and(|g| !g.is_empty()),
            "{name}: {t}"
        );
        assert!(t["met"].is_boolean(), "{name}: {t}");
    }
    let bare = v["bare_loop_events_per_sec"].as_f64().unwrap();
    let engine = v["engine_events_per_sec"].as_f64().unwrap();
    let ratio = v["targets"]["engine_vs_bare_loop"]["value"]
        .as_f64()
        .unwrap();
    // One repeat: the median of the paired ratios is that repeat's own ratio.
    assert!((ratio - engine / bare).abs() < 1e-9);
    assert_eq!(v["engine_vs_bare_loop"].as_f64(), Some(ratio));
    assert_eq!(v["targets"]["engine_vs_bare_loop"]["met"], ratio >= 0.5);
    let sweep = &v["targets"]["sweep_jobs2_vs_jobs1"];
    assert!(
        sweep["met"].is_boolean() || sweep["met"].is_null(),
        "{sweep}"
    );
}

#[test]
fn shrink_writes_a_smaller_scenario_that_fails_the_same_way() {
    let dir = temp_dir("shrink");
    let out_file = dir.join("min.ron");
    let out = simlab(&[
        "shrink",
        "scenarios/3pc-partition-nemesis.ron",
        "--seed",
        "0",
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("violating Agreement") && err.contains("removed     faults:"),
        "{err}"
    );
    let rerun = simlab(&["run", out_file.to_str().unwrap(), "--json"]);
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "the shrunk scenario meets its expect: {}",
        stderr(&rerun)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&rerun)).unwrap();
    assert_eq!(v["violations"][0]["invariant"], "Agreement");
    // A seed that breaks nothing cannot be shrunk.
    let clean = simlab(&["shrink", "scenarios/3pc-crash-stop.ron", "--seed", "0"]);
    assert_eq!(clean.status.code(), Some(1));
    assert!(stderr(&clean).contains("violates no invariant"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn swarm_mode_replays_the_same_mix() {
    let run = |args: &[&str]| {
        let out = simlab(args);
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v["trace_hash"].as_str().unwrap().to_string()
    };
    let file = "scenarios/raft-churn-unreliable.ron";
    let swarm = run(&["run", file, "--seed", "4", "--swarm", "--json"]);
    assert_eq!(
        swarm,
        run(&["run", file, "--seed", "4", "--swarm", "--json"])
    );
    assert_ne!(
        swarm,
        run(&["run", file, "--seed", "4", "--json"]),
        "swarm changes the fault mix"
    );
    let out = simlab(&[
        "sweep",
        "scenarios/3pc-partition-nemesis.ron",
        "--seeds",
        "0..10",
        "--swarm",
        "--json",
    ]);
    let first = stdout(&out).lines().next().unwrap().to_string();
    let line: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert!(line["swarm"]["kinds"].is_array(), "{first}");
    let nemesis_free = simlab(&["sweep", "scenarios/raft-basic-agreement.ron", "--swarm"]);
    assert_eq!(nemesis_free.status.code(), Some(2));
}

/// The comparison scenarios, from `scenarios/`.
fn comparison_scenarios() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("compare-") && n.ends_with(".ron"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "comparison scenarios: {names:?}");
    names
}

#[test]
fn compare_runs_every_comparison_scenario_on_raft_and_multi_paxos() {
    for name in comparison_scenarios() {
        let file = format!("scenarios/{name}");
        let args = [
            "compare",
            &file,
            "--protocols",
            "raft,multi-paxos",
            "--seeds",
            "0..10",
            "--json",
        ];
        let out = simlab(&args);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let lines = json_lines(&out);
        let (summary, runs) = lines.split_last().unwrap();
        assert_eq!(runs.len(), 20, "{name}: a line per protocol and seed");
        for protocol in ["Raft", "MultiPaxos"] {
            let mine: Vec<_> = runs.iter().filter(|r| r["protocol"] == protocol).collect();
            assert_eq!(mine.len(), 10, "{name}: {protocol}");
            for r in mine {
                assert_eq!(r["met"], true, "{name}: {r}");
                assert!(r["availability"].as_f64().is_some(), "{name}: {r}");
                assert!(r["latency_p99_us"].as_u64().is_some(), "{name}: {r}");
                assert!(r["messages_per_op"].as_f64().unwrap() > 1.0, "{name}: {r}");
                assert!(r["leaders_elected"].as_u64().unwrap() >= 1, "{name}: {r}");
            }
        }
        // The same world: the faults each seed drew are the same for both protocols.
        assert_eq!(summary["fault_mismatches"], serde_json::json!([]), "{name}");
        for seed in 0..10 {
            let faults: Vec<_> = runs
                .iter()
                .filter(|r| r["seed"] == seed)
                .map(|r| r["faults"].clone())
                .collect();
            assert_eq!(faults[0], faults[1], "{name} seed {seed}");
        }
        assert_eq!(
            summary["shared_invariants"],
            serde_json::json!(["Linearizable", "LeaderExists", "AllApplied"]),
            "{name}"
        );
    }
}

#[test]
fn compare_gives_the_same_table_whatever_the_jobs() {
    let table = |jobs: &str| {
        let out = simlab(&[
            "compare",
            "scenarios/compare-leader-crash-loop.ron",
            "--protocols",
            "raft,multi-paxos",
            "--seeds",
            "0..8",
            "--jobs",
            jobs,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .filter(|l| !l.starts_with("took"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let one = table("1");
    assert_eq!(one, table("2"));
    for key in [
        "compare     scenarios/compare-leader-crash-loop.ron over 8 seeds",
        "checking    Linearizable, LeaderExists, AllApplied",
        "faults      the same kinds at the same times for every protocol",
        "Raft  ",
        "Multi-Paxos  ",
    ] {
        assert!(one.contains(key), "missing {key:?} in:\n{one}");
    }
}

#[test]
fn compare_with_the_same_nodes_replays_the_first_protocols_faults() {
    let out = simlab(&[
        "compare",
        "scenarios/compare-leader-crash-loop.ron",
        "--protocols",
        "raft,multi-paxos",
        "--seeds",
        "0..4",
        "--same-nodes",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let (_, runs) = lines.split_last().unwrap();
    for seed in 0..4 {
        let faults: Vec<_> = runs
            .iter()
            .filter(|r| r["seed"] == seed)
            .map(|r| r["faults"].clone())
            .collect();
        assert_eq!(faults[0], faults[1], "seed {seed}: the nodes too");
        let text = faults[0].to_string();
        assert!(
            text.contains("Crash("),
            "seed {seed}: resolved crashes: {text}"
        );
    }
}

#[test]
fn compare_rejects_misuse_with_a_clear_message() {
    let compare = |extra: &[&str]| {
        let mut args = vec!["compare", "scenarios/compare-leader-isolated.ron"];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    for (args, says) in [
        (
            compare(&["--protocols", "raft,zab"]),
            "no protocol called \"zab\"",
        ),
        (compare(&["--protocols", "raft"]), "at least two protocols"),
        (compare(&["--protocols", "raft,Raft"]), "names Raft twice"),
        (
            compare(&["--protocols", "raft,multi-paxos", "--protocol", "Paxos()"]),
            "Paxos is not among --protocols",
        ),
        (
            compare(&[
                "--protocols",
                "raft,multi-paxos",
                "--protocol",
                "MultiPaxos(heartbeat: 3)",
            ]),
            "--protocol \"MultiPaxos(heartbeat: 3)\"",
        ),
        (
            compare(&[
                "--protocols",
                "raft,multi-paxos",
                "--protocol",
                "MultiPaxos(heartbeat_ms: 0)",
            ]),
            "heartbeat_ms",
        ),
        (
            compare(&["--protocols", "raft,multi-paxos", "--jobs", "0"]),
            "at least 1",
        ),
        (
            compare(&["--protocols", "raft,multi-paxos", "--seeds", "5..2"]),
            "is empty",
        ),
        (
            compare(&[
                "--protocols",
                "raft,multi-paxos",
                "--seeds",
                "0..=18446744073709551615",
            ]),
            "holds",
        ),
        (
            compare(&["--protocols", "raft,multi-paxos", "--seeds", "0..2000000"]),
            "takes at most 1000000",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = simlab(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn matrix_gives_the_same_table_whatever_the_jobs() {
    let table = |jobs: &str| {
        let out = simlab(&[
            "matrix",
            "scenarios/locks-gc-pause.ron",
            "scenarios/locks-holder-crash.ron",
            "--protocol",
            "Locks(design: SingleInstance)",
            "--protocol",
            "Locks(design: FencingTokens)",
            "--seeds",
            "0..6",
            "--json",
            "--jobs",
            jobs,
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let one = table("1");
    assert_eq!(one, table("2"));
    let lines: Vec<serde_json::Value> = one
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "two scenarios × two settings");
    let broken = &lines[0];
    assert_eq!(broken["scenario"], "locks-gc-pause");
    assert!(broken["invariants"]["MutualExclusion"]["failing_seeds"].as_u64() > Some(0));
    let after = broken["shrunk"]["faults_after"].as_u64().unwrap();
    assert!(after >= 1 && after < broken["shrunk"]["faults_before"].as_u64().unwrap());
    let fenced = &lines[1];
    assert_eq!(fenced["invariants"]["MutualExclusion"]["failing_seeds"], 0);
    assert!(fenced["first_failure"].is_null());
}

#[test]
fn matrix_refuses_bad_input_by_name() {
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "matrix",
                "scenarios/locks-gc-pause.ron",
                "--invariants",
                "Nope",
            ],
            "no invariant \"Nope\"",
        ),
        (
            &[
                "matrix",
                "scenarios/locks-gc-pause.ron",
                "--protocol",
                "Locks(design: Huge)",
            ],
            "--protocol",
        ),
        (
            &[
                "matrix",
                "scenarios/locks-gc-pause.ron",
                "--protocol",
                "Locks(service_nodes: 3)",
            ],
            "service_nodes",
        ),
        (
            &["matrix", "scenarios/locks-gc-pause.ron", "--seeds", "5..5"],
            "is empty",
        ),
        (&["matrix", "scenarios/missing.ron"], "missing.ron"),
    ];
    for (args, message) in cases {
        let out = simlab(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(message),
            "{args:?}: expected {message:?} in {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_recorded_history_is_checked_by_lincheck() {
    let dir = temp_dir("history");
    let path = dir.join("h.jsonl");
    let out = simlab(&[
        "run",
        "scenarios/raft-bug-apply-retry-twice.ron",
        "--history",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let check = simlab(&["lincheck", "--model", "kv", path.to_str().unwrap()]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "the retried append applied twice"
    );
    assert!(stdout(&check).contains("NOT linearizable (300 operations, simlab JSON lines"));
    // A clean run's history is linearizable.
    let out = simlab(&[
        "run",
        "scenarios/raft-concurrent-clients.ron",
        "--history",
        path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let check = simlab(&["lincheck", "--model", "kv", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    // A protocol without the key-value API is refused before anything is written.
    let other = dir.join("none.jsonl");
    let out = simlab(&[
        "run",
        "scenarios/2pc-happy-path.ron",
        "--history",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not speak the key-value API"));
    assert!(!other.exists());
}

#[test]
fn diagram_writes_each_format_and_says_which_window() {
    let dir = temp_dir("diagram");
    for (name, head) in [
        ("d.svg", "<svg xmlns"),
        ("d.mmd", "sequenceDiagram"),
        ("d.txt", "3pc-partition (three-phase commit), seed 1"),
    ] {
        let out = dir.join(name);
        let o = simlab(&[
            "diagram",
            "scenarios/3pc-partition.ron",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("drew steps 0..=46 of 47: 3 lanes"),
            "{}",
            stderr(&o)
        );
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(
            text.starts_with(head),
            "{name}: {}",
            &text[..80.min(text.len())]
        );
    }
    // --format wins over the extension; `-` is standard output; a window by time.
    let o = simlab(&[
        "diagram",
        "scenarios/raft-reelection.ron",
        "--time",
        "995..1400",
        "--nodes",
        "2,3,4",
        "--format",
        "text",
        "--out",
        "-",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("n2: becomes leader"), "{text}");
    assert!(
        !text.lines().nth(1).unwrap().contains("n0"),
        "only n2..n4 drawn"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn diagram_and_report_refuse_bad_input_and_write_nothing() {
    let dir = temp_dir("diagram-bad");
    let out = dir.join("d.svg");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--steps", "500..600"],
            "--steps starts at step 500, but the run has 47 steps",
        ),
        (&["--steps", "9..3"], "--steps \"9..3\" is empty"),
        (&["--steps", "a..3"], "is not a step number"),
        (&["--time", "5000..6000"], "holds no step"),
        (
            &["--time", "18446744073709552..18446744073709553"],
            "beyond the longest run",
        ),
        (
            &["--nodes", "0,7"],
            "there is no n7; the cluster has 3 nodes",
        ),
        (&["--nodes", "x"], "\"x\" is not a node number"),
        (
            &["--steps", "0..5", "--time", "0..5"],
            "cannot be used with",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["diagram", "scenarios/3pc-partition.ron", "--out", out];
        all.extend_from_slice(args);
        let o = simlab(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert!(!Path::new(out).exists(), "{args:?}: nothing written");
    }
    // A run without a violation has nothing to be around.
    let o = simlab(&[
        "diagram",
        "scenarios/2pc-happy-path.ron",
        "--around-violation",
        "5",
        "--out",
        out,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("violates no invariant"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file left"
    );
    // An output that cannot be written fails before the run.
    let o = simlab(&[
        "report",
        "scenarios/2pc-happy-path.ron",
        "--out",
        "/nonexistent-dir/run.html",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot write the report"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sweep_report_lists_failures_and_shrinks_the_first_of_each_invariant() {
    let dir = temp_dir("sweep-report");
    let out = dir.join("sweep.html");
    let o = simlab(&[
        "sweep",
        "scenarios/3pc-bug-termination-commits-uncertain.ron",
        "--seeds",
        "0..40",
        "--report",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    for id in ["summary", "failures", "shrunk"] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id}"
        );
    }
    assert!(html.contains("<td>Agreement</td>"), "failures by invariant");
    let shrunk = html.matches("<h3>").count();
    assert!((1..=2).contains(&shrunk), "{shrunk} shrunk failures");
    assert!(html.contains("Shrunk") && html.contains("simlab run min.ron --seed"));
    assert!(
        html.matches("<svg").count() >= shrunk,
        "a diagram per shrunk failure"
    );
    assert!(!html.contains("<script") && !html.contains("https://"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn gossip_table_measures_every_row_and_refuses_impossible_sizes() {
    let out = simlab(&["gossip-table", "--nodes", "100", "--runs", "2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(
        rows.len(),
        13,
        "3 anti-entropy rows, 5 of Table 1, 5 of Table 2"
    );
    let table2_k2 = rows
        .iter()
        .find(|r| r["table"].as_str().unwrap().starts_with("table 2") && r["variant"] == "k = 2")
        .expect("table 2, k = 2");
    assert_eq!(table2_k2["published"][0], 0.2);
    assert!(table2_k2["traffic"]["mean"].as_f64().unwrap() > 0.5);
    for bad in [["--nodes", "0"], ["--nodes", "5000"], ["--runs", "0"]] {
        let out = simlab(&["gossip-table", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&out).contains(bad[0]), "{}", stderr(&out));
    }
}

#[test]
fn ring_stats_measures_each_strategy_and_refuses_impossible_sizes() {
    let out = simlab(&[
        "ring-stats",
        "--nodes",
        "10",
        "--vnodes",
        "1,100",
        "--keys",
        "2000",
        "--trials",
        "20",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let rows = v["rows"].as_array().expect("rows");
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["spec"]["strategy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Ring",
            "Ring",
            "BoundedLoads",
            "BoundedLoads",
            "Rendezvous",
            "Jump",
            "Modulo"
        ]
    );
    let modulo = &rows[6];
    assert!(modulo["join_moved"]["measured"].as_f64().unwrap() > 0.85);
    assert_eq!(modulo["all_to_newcomer"], false);
    assert_eq!(rows[0]["all_to_newcomer"], true);
    let table = simlab(&[
        "ring-stats",
        "--nodes",
        "10",
        "--vnodes",
        "10",
        "--keys",
        "1000",
        "--trials",
        "10",
    ]);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = stdout(&table);
    assert!(text.contains("Keys moved when member n+1 joins") && text.contains("99% range"));
    assert!(
        text.contains("predictions agree within 4 standard errors"),
        "{text}"
    );
    for bad in [
        ["--nodes", "1"],
        ["--nodes", "200000"],
        ["--vnodes", "0"],
        ["--vnodes", "5000"],
        ["--keys", "0"],
        ["--trials", "1"],
        ["--epsilon", "0"],
        ["--epsilon", "NaN"],
    ] {
        let out = simlab(&["ring-stats", bad[0], bad[1]]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&out).contains(bad[0]), "{bad:?}: {}", stderr(&out));
    }
}

#[test]
fn explore_visits_every_schedule_and_prints_the_shortest_failing_one() {
    let out = simlab(&["explore", "scenarios/2pc-explore.ron"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("3960 unique states"), "{text}");
    assert!(
        text.contains("no violation in any schedule: every reachable state was explored"),
        "{text}"
    );
    assert!(text.contains("time is free"), "{text}");

    let out = simlab(&["explore", "scenarios/3pc-explore.ron", "--json"]);
    assert_eq!(out.status.code(), Some(1), "a violation exits 1");
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    let found = &json["report"]["counterexample"];
    assert_eq!(found["violation"]["invariant"], "Agreement");
    assert_eq!(found["schedule"].as_array().map(Vec::len), Some(9));
    assert_eq!(json["search"], "bfs");

    let out = simlab(&["explore", "scenarios/3pc-explore.ron"]);
    let text = stdout(&out);
    assert!(
        text.contains("VIOLATION of Agreement (always) after 9 steps"),
        "{text}"
    );
    assert!(text.contains("  1. start n0"), "{text}");

    // The schedule, written to a file, replays in `simlab run` up to its violation.
    let dir = temp_dir("explore");
    let schedule = dir.join("schedule.json");
    let path = schedule.to_str().unwrap();
    let out = simlab(&["explore", "scenarios/3pc-explore.ron", "--out", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--schedule"), "{}", stderr(&out));
    let out = simlab(&["run", "scenarios/3pc-explore.ron", "--schedule", path]);
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the expectation is not met: {text}"
    );
    assert!(text.contains("steps       9 "), "{text}");
    assert!(text.contains("(the replayed schedule ended)"), "{text}");
    assert!(
        text.contains("Agreement (always) at step 8"),
        "the same violation at the last step: {text}"
    );
    let out = simlab(&["run", "scenarios/2pc-explore.ron", "--schedule", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a schedule of scenario \"3pc-explore\""));
    let out = simlab(&[
        "run",
        "scenarios/3pc-explore.ron",
        "--schedule",
        path,
        "--seed",
        "7",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("was explored with seed 1"));
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        "{\"scenario\": \"3pc-explore\", \"seed\": 1, \"choices\": [0, 99]}",
    )
    .unwrap();
    let out = simlab(&[
        "run",
        "scenarios/3pc-explore.ron",
        "--schedule",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("step 2 of the schedule: choice `run 99` is not an enabled event"),
        "{}",
        stderr(&out)
    );
    // No violation, no schedule file.
    let none = dir.join("none.json");
    let out = simlab(&[
        "explore",
        "scenarios/2pc-explore.ron",
        "--out",
        none.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!none.exists());

    // A crash chosen as a step: the schedule records the budget and replays the crash.
    let crashed = dir.join("crashed.json");
    let out = simlab(&[
        "explore",
        "scenarios/2pc-explore-commit-before-log.ron",
        "--crashes",
        "1",
        "--out",
        crashed.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("VIOLATION of Agreement (always) after 11 steps"),
        "{text}"
    );
    assert!(
        text.contains("    9. crash n0\n   10. restart n0"),
        "{text}"
    );
    assert!(
        text.contains("faults chosen as steps: up to 1 crash"),
        "{text}"
    );
    let written = std::fs::read_to_string(&crashed).unwrap();
    assert!(written.contains("\"crash\": 0"), "{written}");
    let out = simlab(&[
        "run",
        "scenarios/2pc-explore-commit-before-log.ron",
        "--schedule",
        crashed.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("Agreement (always) at step 10"), "{text}");
    assert!(text.contains("crash n0"), "{text}");

    // Three-phase commit holds on a synchronous network, and the summary says what that
    // leaves out.
    let out = simlab(&[
        "explore",
        "scenarios/3pc-explore.ron",
        "--synchronous",
        "--crashes",
        "1",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("974 unique states"), "{text}");
    assert!(
        text.contains("timeouts that beat a slow message are not covered"),
        "{text}"
    );

    // Around a seed: its first steps as it ran them, then every order; a prefix longer than
    // the run is an error that says how long the run is.
    let out = simlab(&[
        "explore",
        "scenarios/2pc-explore.ron",
        "--around-seed",
        "1",
        "--prefix",
        "6",
        "--depth",
        "8",
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("around seed 1: its first 6 steps"), "{text}");
    let out = simlab(&[
        "explore",
        "scenarios/2pc-explore.ron",
        "--around-seed",
        "1",
        "--prefix",
        "100000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--prefix 100000: the run of seed 1 ends after 14 steps"),
        "{}",
        stderr(&out)
    );

    // A limit that cuts the search short says so, and is no failure.
    let out = simlab(&["explore", "scenarios/2pc-explore.ron", "--depth", "5"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("a limit cut the search short"));
    let out = simlab(&["explore", "scenarios/2pc-explore.ron", "--max-states", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--max-states: must be at least 1"));
    let out = simlab(&["explore", "scenarios/2pc-explore.ron", "--max-memory", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--max-memory: must be at least 1 MiB"));
}

#[test]
fn explore_on_several_threads_reports_what_one_thread_does() {
    let report = |jobs: &str| {
        let out = simlab(&[
            "explore",
            "scenarios/2pc-explore.ron",
            "--jobs",
            jobs,
            "--json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON");
        assert_eq!(json["jobs"], jobs.parse::<u64>().unwrap());
        json["report"].clone()
    };
    let alone = report("1");
    assert_eq!(alone["unique_states"], 3_960);
    assert_eq!(report("3"), alone);
    let out = simlab(&["explore", "scenarios/2pc-explore.ron", "--jobs", "2"]);
    assert!(
        stdout(&out).contains("breadth-first on 2 threads"),
        "{}",
        stdout(&out)
    );

    // Depth-first search is one path at a time; impossible thread counts are refused.
    for (args, error) in [
        (
            &["--dfs", "--jobs", "2"][..],
            "--jobs 2: depth-first search follows one path at a time",
        ),
        (&["--jobs", "0"][..], "--jobs must be at least 1"),
        (
            &["--jobs", "4000000000"][..],
            "--jobs 4000000000 is more than",
        ),
    ] {
        let mut all = vec!["explore", "scenarios/2pc-explore.ron"];
        all.extend_from_slice(args);
        let out = simlab(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(error), "{args:?}: {}", stderr(&out));
    }
    let out = simlab(&[
        "explore",
        "scenarios/2pc-explore.ron",
        "--dfs",
        "--jobs",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn explore_stops_at_its_memory_limit_and_says_so() {
    // Millions of states: any process holds more than 1 MiB by the first check.
    let out = simlab(&[
        "explore",
        "scenarios/paxos-explore.ron",
        "--max-memory",
        "1",
        "--max-states",
        "100000",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON object");
    if json["report"]["stopped"] == false {
        // No /proc/self/status here: the limit cannot be checked, and the search runs on.
        assert!(std::fs::metadata("/proc/self/status").is_err());
        return;
    }
    assert_eq!(json["report"]["complete"], false);
    assert_eq!(
        json["report"]["unique_states"],
        simlab_sim::explore::PROGRESS_EVERY,
        "stopped at the first check"
    );
    assert_eq!(json["max_memory_mib"], 1);
    assert!(
        stderr(&out).contains("the limit is 1 MiB: stopping"),
        "{}",
        stderr(&out)
    );
    let out = simlab(&[
        "explore",
        "scenarios/paxos-explore.ron",
        "--max-memory",
        "1",
    ]);
    assert!(
        stdout(&out).contains("the memory limit (1 MiB) stopped the search"),
        "{}",
        stdout(&out)
    );
}
