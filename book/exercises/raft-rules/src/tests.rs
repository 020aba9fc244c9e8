//! The exercise's checks: each rule alone (a failure prints the inputs and the rule), then Raft
//! running the rules in every server over sweeps, and proof that the sweeps catch the usual
//! wrong rules.

use crate::{code, log_matches, may_commit, request_vote};
use simlab_protocols::raft::Command;
use simlab_protocols::raft::log::{Entry, RaftLog};
use simlab_protocols::raft::rules::{
    CommitFn, LOG_MATCHES, LogMatchFn, MAY_COMMIT, REQUEST_VOTE, VoteFn, VoteReply, VoteRequest,
    VoterState,
};
use simlab_protocols::{LearnerCode, Scenario};
use std::path::Path;

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../scenarios")
        .join(format!("{name}.ron"));
    Scenario::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .scenario
}

/// A voter in term 5 that has not voted, whose log ends at index 10 of term 4.
fn voter() -> VoterState {
    VoterState {
        current_term: 5,
        voted_for: None,
        last_log_index: 10,
        last_log_term: 4,
    }
}

/// Candidate n2 asking for term 5 with a log like the voter's.
fn request() -> VoteRequest {
    VoteRequest {
        candidate: 2,
        term: 5,
        last_log_index: 10,
        last_log_term: 4,
    }
}

// ANCHOR: tests
/// Runs the learner's handler and compares state and reply with what the rule says.
fn expect_vote(
    before: VoterState,
    req: VoteRequest,
    state: VoterState,
    reply: VoteReply,
    rule: &str,
) {
    let mut got = before;
    let answer = request_vote(&mut got, &req);
    assert!(
        got == state && answer == reply,
        "\n  voter:    {before:?}\n  request:  {req:?}\n  expected: {state:?} and {reply:?}\n  got:      {got:?} and {answer:?}\n  rule: {rule}\n"
    );
}

fn granted(term: u64) -> VoteReply {
    VoteReply {
        term,
        granted: true,
        reset_election_timer: true,
    }
}

fn refused(term: u64) -> VoteReply {
    VoteReply {
        term,
        granted: false,
        reset_election_timer: false,
    }
}

#[test]
fn grants_an_up_to_date_candidate_and_persists_the_vote() {
    let voted = VoterState {
        voted_for: Some(2),
        ..voter()
    };
    expect_vote(
        voter(),
        request(),
        voted,
        granted(5),
        "grant if votedFor is null or the candidate, and its log is at least as up to date; record the vote before answering, and restart the election timeout",
    );
}

#[test]
fn refuses_a_stale_term_and_answers_with_its_own() {
    let req = VoteRequest {
        term: 4,
        ..request()
    };
    expect_vote(
        voter(),
        req,
        voter(),
        refused(5),
        "reply false if term < currentTerm",
    );
}

#[test]
fn votes_once_per_term_but_repeats_its_vote() {
    let voted = VoterState {
        voted_for: Some(3),
        ..voter()
    };
    expect_vote(
        voted,
        request(),
        voted,
        refused(5),
        "one vote per term: n3 already has it",
    );
    let same = VoterState {
        voted_for: Some(2),
        ..voter()
    };
    expect_vote(
        same,
        request(),
        same,
        granted(5),
        "the same candidate asking again gets the vote again",
    );
}

#[test]
fn a_newer_term_is_adopted_and_its_vote_starts_free() {
    let voted = VoterState {
        voted_for: Some(3),
        ..voter()
    };
    let req = VoteRequest {
        term: 7,
        ..request()
    };
    let after = VoterState {
        current_term: 7,
        voted_for: Some(2),
        ..voter()
    };
    expect_vote(
        voted,
        req,
        after,
        granted(7),
        "a higher term: set currentTerm, forget votedFor, then decide",
    );
    // Adopted even when the vote is refused.
    let behind = VoteRequest {
        term: 7,
        last_log_term: 3,
        last_log_index: 50,
        ..request()
    };
    let adopted = VoterState {
        current_term: 7,
        voted_for: None,
        ..voter()
    };
    expect_vote(
        voted,
        behind,
        adopted,
        refused(7),
        "the term is adopted whatever the vote",
    );
}
// ANCHOR_END: tests

#[test]
fn the_election_restriction_compares_last_terms_then_lengths() {
    let later_term_shorter = VoteRequest {
        last_log_term: 5,
        last_log_index: 3,
        ..request()
    };
    let voted = VoterState {
        voted_for: Some(2),
        ..voter()
    };
    expect_vote(
        voter(),
        later_term_shorter,
        voted,
        granted(5),
        "a later last term is more up to date, whatever the length",
    );
    let earlier_term_longer = VoteRequest {
        last_log_term: 3,
        last_log_index: 50,
        ..request()
    };
    expect_vote(
        voter(),
        earlier_term_longer,
        voter(),
        refused(5),
        "an earlier last term is less up to date, whatever the length",
    );
    let same_term_shorter = VoteRequest {
        last_log_index: 9,
        ..request()
    };
    expect_vote(
        voter(),
        same_term_shorter,
        voter(),
        refused(5),
        "with equal last terms, the longer log is more up to date",
    );
}

fn log(terms: &[u64]) -> RaftLog {
    let mut log = RaftLog::default();
    for &term in terms {
        log.push(Entry::new(term, Command::Noop));
    }
    log
}

#[test]
fn the_consistency_check_needs_the_same_term_at_the_previous_index() {
    let l = log(&[1, 1, 2]);
    for (prev, term, want, rule) in [
        (
            0,
            0,
            true,
            "index 0, before the first entry, always matches",
        ),
        (3, 2, true, "the entry at 3 has term 2"),
        (2, 1, true, "an earlier matching entry"),
        (3, 3, false, "the entry at 3 has term 2, not 3"),
        (4, 2, false, "there is no entry at 4"),
    ] {
        let got = log_matches(&l, prev, term);
        assert_eq!(
            got, want,
            "\n  log terms: [1, 1, 2]\n  prev_log_index {prev}, prev_log_term {term}\n  rule: {rule}\n"
        );
    }
}

#[test]
fn only_entries_of_the_current_term_commit_by_counting() {
    for (entry, current, replicas, cluster, want, rule) in [
        (
            3,
            3,
            3,
            5,
            true,
            "a majority holds an entry of the leader's term",
        ),
        (3, 3, 2, 5, false, "two of five is not a majority"),
        (
            2,
            3,
            5,
            5,
            false,
            "an entry of an earlier term is never committed by counting (Figure 8)",
        ),
        (1, 1, 2, 3, true, "two of three is a majority"),
        (1, 1, 2, 4, false, "two of four is not"),
    ] {
        assert_eq!(
            may_commit(entry, current, replicas, cluster),
            want,
            "\n  entry term {entry}, leader term {current}, {replicas} of {cluster} servers hold it\n  rule: {rule}\n"
        );
    }
}

/// The first seed in `seeds` whose run with `code` violates anything.
fn first_failure(
    name: &str,
    code: LearnerCode,
    seeds: std::ops::Range<u64>,
) -> Option<(u64, String)> {
    simlab_protocols::sweep::first_failure(&scenario(name).with_learner_code(code), seeds)
}

#[test]
fn raft_keeps_its_safety_with_these_rules_in_every_server() {
    for (name, seeds) in [
        ("raft-figure8", 0..100),
        ("raft-churn-unreliable", 0..40),
        ("raft-bug-commit-previous-term", 0..100),
        ("raft-bug-forget-voted-for", 140..160),
    ] {
        if let Some((seed, why)) = first_failure(name, code(), seeds) {
            panic!(
                "{name}, seed {seed}: {why}\nreplay: cargo run -p exercise-raft-rules --features learner -- run scenarios/{name}.ron --seed {seed}"
            );
        }
    }
}

/// With this solution in every slot, Raft runs step for step as it does with its own
/// reference rules: the slots are the real protocol's code paths, and the solution is exact.
#[cfg(not(feature = "learner"))]
#[test]
fn the_reference_rules_run_exactly_like_the_servers_own_code() {
    for name in [
        "raft-figure8",
        "raft-churn-unreliable",
        "raft-election-churn",
        "raft-rejoin-prevote",
    ] {
        let own = scenario(name);
        let mut slotted = own.clone();
        slotted.code = code();
        let diverged = simlab_protocols::sweep::first_divergence(&own, &slotted, 0..20);
        assert_eq!(diverged, None, "{name}: the runs differ at this seed");
    }
}

#[test]
fn the_sweeps_catch_the_usual_wrong_rules() {
    fn any_newer_term(state: &mut VoterState, r: &VoteRequest) -> VoteReply {
        // Grants every candidate of a newer term, without the log check.
        let granted = r.term > state.current_term
            || (r.term == state.current_term && state.voted_for.is_none_or(|v| v == r.candidate));
        state.current_term = state.current_term.max(r.term);
        if granted {
            state.voted_for = Some(r.candidate);
        }
        VoteReply {
            term: state.current_term,
            granted,
            reset_election_timer: granted,
        }
    }
    fn vote_not_recorded(state: &mut VoterState, r: &VoteRequest) -> VoteReply {
        let before = *state;
        let reply = simlab_protocols::raft::rules::request_vote(state, r);
        state.voted_for = if before.current_term == state.current_term {
            before.voted_for
        } else {
            None
        };
        reply
    }
    fn always_matches(_: &RaftLog, _: u64, _: u64) -> bool {
        true
    }
    fn count_only(_: u64, _: u64, replicas: usize, cluster: usize) -> bool {
        replicas > cluster / 2
    }
    let votes: [(&str, VoteFn, &str, std::ops::Range<u64>); 2] = [
        (
            "grants any newer term without the log check",
            any_newer_term,
            "raft-bug-skip-up-to-date-check",
            0..50,
        ),
        (
            "never records its vote",
            vote_not_recorded,
            "raft-bug-forget-voted-for",
            140..200,
        ),
    ];
    for (what, wrong, name, seeds) in votes {
        let caught = first_failure(name, code().with(&REQUEST_VOTE, wrong), seeds);
        let (seed, why) =
            caught.unwrap_or_else(|| panic!("a handler that {what} was not caught on {name}"));
        println!("a handler that {what}: {name} seed {seed}: {why}");
    }
    let matches: LogMatchFn = always_matches;
    let (seed, why) = first_failure("raft-figure8", code().with(&LOG_MATCHES, matches), 0..50)
        .expect("a check that always matches was not caught");
    println!("a consistency check that always matches: raft-figure8 seed {seed}: {why}");
    let commit: CommitFn = count_only;
    let (seed, why) = first_failure(
        "raft-bug-commit-previous-term",
        code().with(&MAY_COMMIT, commit),
        0..200,
    )
    .expect("a commit rule that only counts replicas was not caught");
    println!("a commit rule that only counts: raft-bug-commit-previous-term seed {seed}: {why}");
}
