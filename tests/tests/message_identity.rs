//! Every message in a full trace can be followed from the step that sent it to the step that
//! received (or lost) it: deliveries, drops and duplicates name their sending step, and messages
//! the network lost as they were sent are recorded on the sending step, with no step of their
//! own. None of it is hashed: the trace hash of a full trace equals the hash-only run's.

mod common;

use simlab_protocols::{RunOptions, registry};
use simlab_sim::{DropReason, StepKind, StepRecord, TraceMode};
use std::collections::BTreeMap;

fn full_run(name: &str, seed: u64) -> (Vec<StepRecord>, simlab_sim::Outcome) {
    let scenario = common::scenario(name);
    let options = RunOptions {
        seed: Some(seed),
        trace: TraceMode::Full,
        stop_on_violation: false,
    };
    let (outcome, run) = registry::run(&scenario, &options);
    (run.records().to_vec(), outcome)
}

/// Checks the links of one run and returns (arrivals, duplicates, lost at send).
fn check_links(name: &str, seed: u64) -> (usize, usize, usize) {
    let (records, outcome) = full_run(name, seed);
    let hash_only = registry::run(
        &common::scenario(name),
        &RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        },
    )
    .0;
    assert_eq!(
        outcome.trace_hash, hash_only.trace_hash,
        "{name} seed {seed}: message identity must not be hashed"
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.step, i as u64, "records are one per step, in order");
    }
    // Sends per (sending step, recipient), and the arrivals that name them.
    let mut sent: BTreeMap<(u64, u32), usize> = BTreeMap::new();
    for r in &records {
        for to in &r.sent_to {
            *sent.entry((r.step, to.0)).or_default() += 1;
        }
    }
    let mut arrived: BTreeMap<(u64, u32), usize> = BTreeMap::new();
    let (mut arrivals, mut duplicates, mut lost_at_send) = (0, 0, 0);
    for r in &records {
        if !matches!(r.kind, StepKind::Deliver | StepKind::Drop) {
            continue;
        }
        arrivals += 1;
        let at = r
            .sent_step
            .unwrap_or_else(|| panic!("{name}: step {} names no sender", r.step));
        assert!(
            at < r.step,
            "{name}: step {} was sent later, at {at}",
            r.step
        );
        let sender = &records[at as usize];
        assert_eq!(
            sender.node, r.from,
            "{name}: step {} came from its sender",
            r.step
        );
        assert_eq!(Some(sender.time_us), r.sent_us, "{name}: step {}", r.step);
        let to = r.node.expect("a delivery has a recipient").0;
        assert!(
            sender.sent_to.iter().any(|n| n.0 == to),
            "{name}: step {} sent nothing to n{to}, yet step {} names it",
            at,
            r.step
        );
        assert_eq!(
            r.kind == StepKind::Drop,
            r.lost.is_some(),
            "{name}: step {} is a drop exactly when it says why",
            r.step
        );
        if r.duplicate {
            duplicates += 1;
        } else {
            *arrived.entry((at, to)).or_default() += 1;
        }
    }
    for (key, n) in &arrived {
        assert!(
            *n <= sent.get(key).copied().unwrap_or(0),
            "{name}: more arrivals than sends for {key:?}"
        );
    }
    // Every send arrived once (or is still in flight when the run ended).
    let still_travelling: usize = sent
        .iter()
        .map(|(k, n)| n - arrived.get(k).copied().unwrap_or(0))
        .sum();
    let sent_total: usize = sent.values().sum();
    assert_eq!(sent_total, arrivals - duplicates + still_travelling);
    for r in &records {
        lost_at_send += r.lost_at_send.len();
        for lost in &r.lost_at_send {
            assert!(
                r.node.is_some(),
                "{name}: a loss at send belongs to the sending node's step"
            );
            assert!(!lost.message.is_empty());
            assert_ne!(
                lost.reason,
                DropReason::Crashed,
                "a send is never lost to a crash"
            );
        }
    }
    // The counts agree with the engine's own statistics.
    let s = &outcome.stats;
    let in_flight_partition = records
        .iter()
        .filter(|r| r.kind == StepKind::Drop && r.lost == Some(DropReason::Partition))
        .count() as u64;
    assert_eq!(
        lost_at_send as u64,
        s.dropped_partition - in_flight_partition + s.dropped_loss,
        "{name} seed {seed}: every message lost at send is recorded"
    );
    assert_eq!(s.duplicated as usize, duplicates, "{name} seed {seed}");
    (arrivals, duplicates, lost_at_send)
}

#[test]
fn deliveries_drops_and_duplicates_link_to_their_sending_step() {
    // Loss and duplication (raft-unreliable), a partition (raft-reelection), crashes
    // (2pc-coordinator-crash-before-decision), a partition with a violation (3pc-partition).
    let (arrivals, duplicates, lost) = check_links("raft-unreliable", 1);
    assert!(
        arrivals > 1_000 && duplicates > 0 && lost > 0,
        "{arrivals} {duplicates} {lost}"
    );
    let (_, _, lost) = check_links("raft-reelection", 1);
    assert!(lost > 0, "the isolated leader's sends are lost as sent");
    check_links("2pc-coordinator-crash-before-decision", 1);
    check_links("3pc-partition", 1);
    check_links("raft-churn-unreliable", 3);
}

#[test]
fn requests_and_replies_name_the_step_that_sent_them() {
    let (records, _) = full_run("raft-cap-partition", 1);
    let mut requests = 0;
    for r in &records {
        if !matches!(r.kind, StepKind::Request | StepKind::Reply) {
            continue;
        }
        let at = r
            .sent_step
            .expect("a request or reply names its sending step") as usize;
        let sender = &records[at];
        if r.kind == StepKind::Request {
            requests += 1;
            // Sent by the client's step (invoke, time-out, or a reply that redirected it).
            assert_eq!(sender.client, r.client, "step {}", r.step);
            assert!(
                r.sent_us.unwrap() >= sender.time_us,
                "a resend may wait a backoff"
            );
        } else {
            assert_eq!(
                sender.node, r.node,
                "step {}: replies come from the node",
                r.step
            );
            assert_eq!(Some(sender.time_us), r.sent_us);
        }
    }
    assert!(requests > 100, "{requests}");
}
