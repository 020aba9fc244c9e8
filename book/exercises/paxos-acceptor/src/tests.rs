//! The exercise's checks: the acceptor alone, then both Paxos protocols running it over
//! sweeps, and proof that the sweeps catch the usual wrong acceptors.

use crate::{acceptor, code};
use simlab_protocols::paxos::acceptor::{ACCEPTOR, AcceptorFn, AcceptorState, Reply, Request};
use simlab_protocols::paxos::{Ballot, Value};
use simlab_protocols::sweep::first_failure;
use simlab_protocols::{LearnerCode, Scenario};
use std::path::Path;

fn b(round: u64, node: u32) -> Ballot {
    Ballot { round, node }
}

fn prepare(ballot: Ballot, from_slot: u64) -> Request {
    Request::Prepare { ballot, from_slot }
}

fn accept(ballot: Ballot, slot: u64) -> Request {
    Request::Accept {
        ballot,
        slot,
        value: Value::Noop,
    }
}

#[test]
fn a_fresh_acceptor_promises_and_accepts() {
    let mut a = AcceptorState::default();
    assert_eq!(
        acceptor(&mut a, prepare(b(1, 0), 1)),
        Reply::Promise {
            ballot: b(1, 0),
            accepted: vec![]
        },
        "a first Prepare is promised, with nothing to report"
    );
    assert_eq!(
        acceptor(&mut a, accept(b(1, 0), 1)),
        Reply::Accepted {
            ballot: b(1, 0),
            slot: 1
        },
        "an Accept at the promised ballot is accepted"
    );
    assert_eq!(a.accepted[&1].0, b(1, 0), "the acceptance is stored");
    assert_eq!(
        a.journal,
        vec![(1, b(1, 0), Value::Noop)],
        "…through record()"
    );
}

#[test]
fn a_promise_reports_what_was_accepted_from_the_slot_asked() {
    let mut a = AcceptorState::default();
    acceptor(&mut a, accept(b(1, 0), 1));
    acceptor(&mut a, accept(b(1, 0), 4));
    let Reply::Promise { accepted, .. } = acceptor(&mut a, prepare(b(2, 1), 2)) else {
        panic!("a higher ballot must be promised");
    };
    assert_eq!(
        accepted,
        vec![(4, b(1, 0), Value::Noop)],
        "slot 4 (at or after slot 2) must be reported, slot 1 (before it) need not"
    );
}

#[test]
fn lower_ballots_are_refused_after_a_promise_or_an_acceptance() {
    let mut a = AcceptorState::default();
    acceptor(&mut a, prepare(b(3, 2), 1));
    let refused = Reply::Rejected {
        ballot: b(2, 4),
        promised: b(3, 2),
    };
    assert_eq!(
        acceptor(&mut a, accept(b(2, 4), 1)),
        refused,
        "below the promise"
    );
    assert_eq!(
        acceptor(&mut a, prepare(b(2, 4), 1)),
        refused,
        "a promise never goes back"
    );
    assert!(a.accepted.is_empty(), "a refused Accept changes nothing");
    // Accepting a ballot promises it: a Prepare between the old promise and it is refused.
    acceptor(&mut a, accept(b(5, 0), 1));
    assert!(
        matches!(
            acceptor(&mut a, prepare(b(4, 1), 1)),
            Reply::Rejected { .. }
        ),
        "after accepting 5.0, ballot 4.1 must be refused"
    );
}

fn scenario(name: &str) -> Scenario {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../scenarios");
    let mut scenario = Scenario::load(&root.join(format!("{name}.ron")))
        .unwrap_or_else(|e| panic!("{e}"))
        .scenario;
    scenario.protocol.clear_bugs();
    scenario
}

/// Scenarios the acceptor must survive, with the seeds swept. The bug scenarios' schedules
/// (with their bug switched off) are the ones where proposers compete hardest.
const SWEEPS: [(&str, u64); 4] = [
    ("paxos-chaos", 200),
    ("paxos-bug-ignore-accepted-value", 200),
    ("multi-paxos-churn-unreliable", 40),
    ("multi-paxos-bug-skip-phase1", 40),
];

#[test]
fn both_protocols_running_your_acceptor_survive_their_sweeps() {
    for (name, seeds) in SWEEPS {
        let mut s = scenario(name);
        s.code = code();
        if let Some((seed, why)) = first_failure(&s, 0..seeds) {
            panic!(
                "with your acceptor, {name} seed {seed} fails:\n  {}\nreplay it: cargo run -p \
                 exercise-paxos-acceptor --features learner -- run scenarios/{name}.ron --seed {seed}\n\
                 (or `-- tui …` to step through it)",
                why
            );
        }
    }
}

/// Wrong acceptors a learner might write, and the invariant that catches each in the real
/// protocols: this is what the sweeps above tell a learner who wrote one of them.
#[test]
fn the_sweeps_catch_wrong_acceptors() {
    fn no_check_on_accept(state: &mut AcceptorState, request: Request) -> Reply {
        match request {
            Request::Accept {
                ballot,
                slot,
                value,
            } => {
                simlab_protocols::paxos::acceptor::record(state, slot, ballot, value);
                Reply::Accepted { ballot, slot }
            }
            prepare => ACCEPTOR.reference()(state, prepare),
        }
    }
    fn promise_anything(state: &mut AcceptorState, request: Request) -> Reply {
        match request {
            Request::Prepare { ballot, .. } => {
                state.promised = ballot;
                Reply::Promise {
                    ballot,
                    accepted: Vec::new(),
                }
            }
            accept => ACCEPTOR.reference()(state, accept),
        }
    }
    fn report_nothing(state: &mut AcceptorState, request: Request) -> Reply {
        match ACCEPTOR.reference()(state, request) {
            Reply::Promise { ballot, .. } => Reply::Promise {
                ballot,
                accepted: Vec::new(),
            },
            other => other,
        }
    }
    let wrong: [(&str, AcceptorFn, &str, &str); 3] = [
        (
            "no promise check on Accept",
            no_check_on_accept,
            "paxos-bug-accept-without-promise-check",
            "PromiseKept",
        ),
        (
            "promises any ballot",
            promise_anything,
            "paxos-bug-ignore-accepted-value",
            "PromiseKept",
        ),
        (
            "promises report nothing",
            report_nothing,
            "multi-paxos-bug-ignore-accepted-value",
            "Agreement",
        ),
    ];
    for (what, wrong_acceptor, name, invariant) in wrong {
        let mut s = scenario(name);
        s.code = LearnerCode::new().with(&ACCEPTOR, wrong_acceptor);
        let (seed, why) = first_failure(&s, 0..200)
            .unwrap_or_else(|| panic!("the acceptor that {what} passed 200 seeds of {name}"));
        assert!(
            why.starts_with(invariant),
            "the acceptor that {what}, {name} seed {seed}: expected {invariant}, got {why}"
        );
        println!("{what}: {name} seed {seed}: {why}");
    }
}
