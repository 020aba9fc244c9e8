//! Pinned trace hashes: any change in behaviour shows up here as a reviewed snapshot diff.
//!
//! If a change is meant to alter runs (a protocol fix, a new engine rule), review the new
//! hashes and accept them with `INSTA_UPDATE=always cargo test -p simlab-tests --test determinism`.

mod common;

use simlab_protocols::{RunOptions, registry};
use std::fmt::Write;

fn pinned(cases: &[(&str, u64)]) -> String {
    let mut out = String::new();
    for &(name, seed) in cases {
        let scenario = common::scenario(name);
        let options = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let (outcome, _) = registry::run(&scenario, &options);
        let _ = writeln!(
            out,
            "{name} seed {seed}: {} ({} steps, {} violations)",
            outcome.trace_hash_hex(),
            outcome.stats.steps,
            outcome.violations.len()
        );
    }
    out
}

#[test]
fn trace_hashes_are_pinned() {
    insta::assert_snapshot!(pinned(&[
        ("2pc-happy-path", 1),
        ("2pc-chaos", 5),
        ("2pc-coordinator-crash-forever", 2),
        ("3pc-partition", 1),
        ("3pc-crash-stop", 6),
        ("3pc-partition-nemesis", 17),
        ("raft-basic-agreement", 1),
        ("raft-churn-unreliable", 1),
        ("raft-bug-commit-previous-term", 3),
        ("raft-compare-and-set", 1),
        ("raft-snapshot-unreliable", 1),
        ("counter-gossip", 1),
        ("ring-join-leave", 1),
        ("ring-churn", 1),
        ("ring-replicated-churn", 1),
    ]));
}
