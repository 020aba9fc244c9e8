use crate::{Request, Voter, should_grant_vote};

fn voter() -> Voter {
    Voter {
        current_term: 5,
        voted_for: None,
        last_log_index: 10,
        last_log_term: 4,
    }
}

fn request() -> Request {
    Request {
        candidate: 2,
        term: 5,
        last_log_index: 10,
        last_log_term: 4,
    }
}

#[test]
fn grants_an_up_to_date_candidate_in_the_current_term() {
    assert!(should_grant_vote(&voter(), &request()));
}

#[test]
fn refuses_a_stale_term() {
    assert!(!should_grant_vote(
        &voter(),
        &Request {
            term: 4,
            ..request()
        }
    ));
}

#[test]
fn votes_once_per_term_but_may_repeat_its_vote() {
    let voted = Voter {
        voted_for: Some(3),
        ..voter()
    };
    assert!(
        !should_grant_vote(&voted, &request()),
        "already voted for n3"
    );
    let same = Voter {
        voted_for: Some(2),
        ..voter()
    };
    assert!(
        should_grant_vote(&same, &request()),
        "the same candidate asking again"
    );
}

#[test]
fn a_later_last_term_wins_even_with_a_shorter_log() {
    let r = Request {
        last_log_term: 5,
        last_log_index: 3,
        ..request()
    };
    assert!(should_grant_vote(&voter(), &r));
}

#[test]
fn an_earlier_last_term_loses_even_with_a_longer_log() {
    // The bug SkipUpToDateCheck grants this vote; the lab catches it as LeaderCompleteness.
    let r = Request {
        last_log_term: 3,
        last_log_index: 50,
        ..request()
    };
    assert!(!should_grant_vote(&voter(), &r));
}

#[test]
fn with_equal_last_terms_the_longer_log_wins() {
    assert!(!should_grant_vote(
        &voter(),
        &Request {
            last_log_index: 9,
            ..request()
        }
    ));
    assert!(should_grant_vote(
        &voter(),
        &Request {
            last_log_index: 11,
            ..request()
        }
    ));
}
