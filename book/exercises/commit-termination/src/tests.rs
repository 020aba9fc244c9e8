use crate::{Decision, State, decide};

#[test]
fn an_abort_anywhere_means_abort() {
    assert_eq!(
        decide(&[State::PreCommitted, State::Aborted]),
        Decision::Abort
    );
}

#[test]
fn a_commit_anywhere_means_commit() {
    assert_eq!(
        decide(&[State::Uncertain, State::Committed]),
        Decision::Commit
    );
}

#[test]
fn one_pre_commit_is_enough_to_commit() {
    assert_eq!(
        decide(&[State::Uncertain, State::PreCommitted, State::Uncertain]),
        Decision::Commit
    );
}

#[test]
fn all_uncertain_means_abort() {
    // The bug TerminationCommitsUncertain commits here; the coordinator may have aborted.
    assert_eq!(
        decide(&[State::Uncertain, State::Uncertain]),
        Decision::Abort
    );
    assert_eq!(decide(&[State::Uncertain]), Decision::Abort);
}
