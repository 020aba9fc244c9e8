//! Each atomic-commitment checker catches a planted violation, written straight into the durable
//! logs by a scripted node, and stays quiet on the same script without the mistake.

use serde::Serialize;
use simlab_protocols::atomic_commit::{
    AbortCause, Bank, CommitLog, Decision, Transfer, TxId, TxResponse, Vote, invariants,
};
use simlab_sim::{Ctx, Node, NodeId, Outcome, ReplyTo, ResponseClass, SimConfig, Simulation, Time};
use std::sync::Arc;

type Edit = fn(&mut CommitLog, Time);

/// A node that does nothing but apply scripted edits to its own log at given times.
#[derive(Clone, Debug)]
struct Scripted {
    id: NodeId,
    script: Arc<Vec<(u64, u32, Edit)>>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
struct Step(usize);

impl Node for Scripted {
    type Msg = ();
    type Timer = Step;
    type Request = Transfer;
    type Response = TxResponse;
    type Durable = CommitLog;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let bank = bank();
        simlab_protocols::atomic_commit::initialize(ctx.durable_mut(), &bank, self.id);
        for (i, (at_ms, node, _)) in self.script.iter().enumerate() {
            if *node == self.id.0 {
                ctx.set_timer(Time::from_millis(*at_ms), Step(i));
            }
        }
    }
    fn on_message(&mut self, _: NodeId, _: (), _: &mut Ctx<'_, Self>) {}
    fn on_timer(&mut self, step: Step, ctx: &mut Ctx<'_, Self>) {
        let edit = self.script[step.0].2;
        let now = ctx.now();
        edit(ctx.durable_mut(), now);
    }
    fn on_request(&mut self, _: ReplyTo, _: Transfer, _: &mut Ctx<'_, Self>) {}
    fn classify(_: &TxResponse) -> ResponseClass {
        ResponseClass::Ok
    }
}

const TX: TxId = TxId { client: 0, seq: 0 };

fn bank() -> Bank {
    Bank {
        nodes: 3,
        accounts: 2,
        initial_balance: 100,
    }
}

fn run(script: Vec<(u64, u32, Edit)>) -> Outcome {
    let script = Arc::new(script);
    let config = SimConfig::new(3, 1, Time::from_secs(3));
    let factory = move |id: NodeId| Scripted {
        id,
        script: script.clone(),
    };
    let mut sim = Simulation::new(config, factory, None, invariants::all(&bank())).unwrap();
    sim.run()
}

fn violated(outcome: &Outcome) -> Vec<&str> {
    outcome
        .violations
        .iter()
        .map(|v| v.invariant.as_str())
        .collect()
}

fn vote_yes(log: &mut CommitLog, now: Time) {
    log.record_mut(TX).vote = Some((Vote::Yes, now));
}
fn commit(log: &mut CommitLog, now: Time) {
    log.record_mut(TX).decision = Some((Decision::Commit, now));
}
fn abort(log: &mut CommitLog, now: Time) {
    log.record_mut(TX).decision = Some((Decision::Abort, now));
}

#[test]
fn agreement_and_no_reversal_catch_a_changed_decision() {
    let outcome = run(vec![
        (10, 1, vote_yes),
        (20, 1, commit),
        (30, 1, abort),
        (40, 0, commit),
    ]);
    let v = violated(&outcome);
    assert!(v.contains(&"NoReversal"), "{v:?}");
    let message = &outcome
        .violations
        .iter()
        .find(|v| v.invariant == "NoReversal")
        .unwrap()
        .message;
    assert!(
        message.contains("n1 decided commit for t0.0, then changed it to abort"),
        "{message}"
    );
}

#[test]
fn no_reversal_catches_a_forgotten_decision() {
    fn forget(log: &mut CommitLog, _: Time) {
        log.record_mut(TX).decision = None;
    }
    let outcome = run(vec![(10, 1, abort), (20, 1, forget)]);
    assert!(violated(&outcome).contains(&"NoReversal"));
    let clean = run(vec![(10, 1, abort)]);
    assert!(!violated(&clean).contains(&"NoReversal"));
}

#[test]
fn agreement_catches_two_nodes_deciding_differently() {
    let outcome = run(vec![(10, 1, commit), (20, 2, abort)]);
    assert!(violated(&outcome).contains(&"Agreement"));
    let clean = run(vec![(10, 1, abort), (20, 2, abort)]);
    assert!(!violated(&clean).contains(&"Agreement"));
}

#[test]
fn abort_needs_cause_catches_a_made_up_no_vote() {
    fn blame_n1(log: &mut CommitLog, now: Time) {
        let r = log.record_mut(TX);
        r.decision = Some((Decision::Abort, now));
        r.abort_cause = Some(AbortCause::NoVote(NodeId(1)));
    }
    fn vote_no(log: &mut CommitLog, now: Time) {
        log.record_mut(TX).vote = Some((Vote::No, now));
    }
    let outcome = run(vec![(10, 1, vote_yes), (20, 0, blame_n1)]);
    assert!(
        violated(&outcome).contains(&"AbortNeedsCause"),
        "{:?}",
        outcome.violations
    );
    let clean = run(vec![(10, 1, vote_no), (20, 0, blame_n1)]);
    assert!(!violated(&clean).contains(&"AbortNeedsCause"));
}

#[test]
fn commit_needs_all_yes_catches_a_commit_nobody_asked_for() {
    let outcome = run(vec![(10, 0, commit)]);
    let v = outcome
        .violations
        .iter()
        .find(|v| v.invariant == "CommitNeedsAllYes")
        .expect("caught");
    assert!(
        v.message.contains("which no client asked for"),
        "{}",
        v.message
    );
}

#[test]
fn conservation_catches_money_from_nowhere() {
    fn mint(log: &mut CommitLog, _: Time) {
        log.credit(1, 5);
    }
    let outcome = run(vec![(10, 2, mint)]);
    let v = outcome
        .violations
        .iter()
        .find(|v| v.invariant == "Conservation")
        .expect("caught");
    assert!(
        v.message.contains("= 205, but the bank started with 200"),
        "{}",
        v.message
    );
    assert!(!violated(&run(vec![])).contains(&"Conservation"));
}

#[test]
fn all_decided_catches_a_participant_left_uncertain() {
    let outcome = run(vec![(10, 1, vote_yes)]);
    let v = outcome
        .violations
        .iter()
        .find(|v| v.invariant == "AllDecided")
        .expect("caught");
    assert!(
        v.message.contains("n1 uncertain about t0.0"),
        "{}",
        v.message
    );
    // Decided within the settle time: fine, and the outcome says when it converged.
    let clean = run(vec![(10, 1, vote_yes), (500, 1, abort)]);
    assert!(!violated(&clean).contains(&"AllDecided"));
}

#[test]
fn some_commit_reports_a_run_where_nothing_committed() {
    let outcome = run(vec![(10, 1, abort)]);
    let v = outcome
        .violations
        .iter()
        .find(|v| v.invariant == "SomeCommit")
        .expect("caught");
    assert!(v.message.contains("never held"), "{}", v.message);
    assert!(!violated(&run(vec![(10, 0, commit)])).contains(&"SomeCommit"));
}
