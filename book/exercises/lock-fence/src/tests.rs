//! The exercise's checks: the fence alone, then the lock lab running it over sweeps, and proof
//! that the sweeps catch the usual wrong fences.

use crate::{code, fence};
use simlab_protocols::locks::{Access, FENCE, FenceFn};
use simlab_protocols::sweep::first_failure;
use simlab_protocols::{LearnerCode, ProtocolConfig, Scenario};
use std::path::Path;

fn scenario(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../scenarios")
        .join(format!("{name}.ron"));
    Scenario::load(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .scenario
}

/// The scenario with fencing tokens on, no planted bug, and `code` in the storage.
fn fenced(name: &str, code: LearnerCode) -> Scenario {
    let mut s = scenario(name).with_learner_code(code);
    let ProtocolConfig::Locks(config) = &mut s.protocol else {
        panic!("{name} is not a lock scenario");
    };
    config.design = simlab_protocols::locks::Design::FencingTokens;
    s
}

#[test]
fn the_current_holder_gets_through_and_an_older_one_does_not() {
    let mut f = 0;
    assert!(fence(&mut f, 1, Access::Read), "the first holder reads");
    assert!(
        fence(&mut f, 1, Access::Write(1)),
        "…and writes with the same token"
    );
    assert!(fence(&mut f, 2, Access::Read), "the next holder reads");
    assert!(
        !fence(&mut f, 1, Access::Write(2)),
        "an older holder's late write is refused"
    );
    assert!(!fence(&mut f, 1, Access::Read), "…and so is its read");
    assert!(
        fence(&mut f, 2, Access::Write(2)),
        "the holder's own write goes through"
    );
    assert_eq!(f, 2);
}

#[test]
fn a_newer_read_raises_the_fence() {
    let mut f = 0;
    assert!(fence(&mut f, 7, Access::Read));
    assert!(fence(&mut f, 8, Access::Read));
    assert!(
        !fence(&mut f, 7, Access::Write(1)),
        "the read with token 8 began a newer critical section"
    );
}

#[test]
fn the_lock_lab_keeps_every_increment_with_this_fence() {
    for name in [
        "locks-fencing-gc-pause",
        "locks-clock-jump",
        "locks-slow-network",
    ] {
        let s = fenced(name, code());
        if let Some((seed, why)) = first_failure(&s, 0..100) {
            panic!(
                "{name}, seed {seed}: {why}\nreplay: cargo run -p exercise-lock-fence --features learner -- run scenarios/{name}.ron --seed {seed}"
            );
        }
    }
}

#[test]
fn the_sweeps_catch_the_usual_wrong_fences() {
    fn writes_only(fence: &mut u64, token: u64, access: Access) -> bool {
        if access == Access::Read {
            return true;
        }
        if token < *fence {
            return false;
        }
        *fence = token;
        true
    }
    fn never_raised(fence: &mut u64, token: u64, _: Access) -> bool {
        token >= *fence
    }
    fn refuses_equal(fence: &mut u64, token: u64, _: Access) -> bool {
        if token <= *fence {
            return false;
        }
        *fence = token;
        true
    }
    let wrong: [(&str, FenceFn, &str); 3] = [
        ("checks writes only", writes_only, "MutualExclusion"),
        ("never raises the fence", never_raised, "MutualExclusion"),
        (
            "refuses the holder's own write",
            refuses_equal,
            "WriteAccepted",
        ),
    ];
    for (what, f, invariant) in wrong {
        let s = fenced(
            "locks-fencing-bug-writes-only",
            LearnerCode::new().with(&FENCE, f),
        );
        let (seed, why) = first_failure(&s, 0..200)
            .unwrap_or_else(|| panic!("a fence that {what} was not caught"));
        assert!(
            why.starts_with(invariant),
            "a fence that {what}: seed {seed} failed with {why}, expected {invariant}"
        );
    }
}
