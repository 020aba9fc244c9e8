//! Helpers shared by the workspace tests.

#![allow(dead_code)]

use simlab_protocols::Scenario;
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every scenario file, sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    files
}

/// Loads `scenarios/NAME.ron`.
pub fn scenario(name: &str) -> Scenario {
    let path = root().join("scenarios").join(format!("{name}.ron"));
    Scenario::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .scenario
}

/// The command that replays a run, for failure messages.
pub fn replay(name: &str, seed: u64) -> String {
    format!("cargo run --release -p simlab -- run scenarios/{name}.ron --seed {seed}")
}

/// Runs a Raft scenario and returns its client history.
pub fn raft_history(
    scenario: &Scenario,
    options: &simlab_protocols::RunOptions,
) -> simlab_sim::History<simlab_protocols::kv::KvRequest, simlab_protocols::kv::KvResponse> {
    let mut sim =
        simlab_protocols::registry::simulation::<simlab_protocols::raft::Raft>(scenario, options)
            .expect("a Raft scenario");
    sim.run();
    sim.history().clone()
}
