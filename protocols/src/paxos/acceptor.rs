//! The acceptor: the part of Paxos that makes it safe. Shared by single-decree and Multi-Paxos
//! (single-decree uses slot 0 only), and the function a learner may write instead
//! ([`ACCEPTOR`]), so their version runs inside the real protocols.

use super::{Ballot, Value};
use crate::learner::Slot;
use serde::Serialize;
use std::collections::BTreeMap;

/// What an acceptor keeps on disk: its promise and, per slot, the last proposal it accepted.
///
/// One promise covers every slot: Multi-Paxos runs phase 1 once for all future slots.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AcceptorState {
    /// The highest ballot promised: no proposal below it is accepted any more.
    pub promised: Ballot,
    /// Per slot: the highest-ballot proposal accepted there.
    pub accepted: BTreeMap<u64, (Ballot, Value)>,
    /// Every acceptance in order `(slot, ballot, value)`, for the invariants (not part of the
    /// state a real acceptor would keep, so not hashed; values share their operation).
    #[serde(skip)]
    pub journal: Vec<(u64, Ballot, Value)>,
}

/// A proposer's request to an acceptor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Request {
    /// Phase 1a: promise to ignore ballots below `ballot`, and tell me what you accepted in
    /// slots from `from_slot` on.
    Prepare {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The first slot the proposer needs to hear about.
        from_slot: u64,
    },
    /// Phase 2a: accept `value` in `slot` at `ballot`.
    Accept {
        /// The proposer's ballot.
        ballot: Ballot,
        /// The slot.
        slot: u64,
        /// The value.
        value: Value,
    },
}

/// An acceptor's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Reply {
    /// Phase 1b: promised; here is what I accepted (slot, ballot, value) from the slot asked.
    Promise {
        /// The ballot promised.
        ballot: Ballot,
        /// What was accepted in the slots asked about.
        accepted: Vec<(u64, Ballot, Value)>,
    },
    /// Phase 2b: accepted.
    Accepted {
        /// The ballot accepted.
        ballot: Ballot,
        /// The slot.
        slot: u64,
    },
    /// Refused: a higher ballot was promised.
    Rejected {
        /// The ballot refused.
        ballot: Ballot,
        /// The ballot promised instead.
        promised: Ballot,
    },
}

/// An acceptor's handling of one request: changes its state and answers.
pub type AcceptorFn = fn(&mut AcceptorState, Request) -> Reply;

// ANCHOR: slot
/// The acceptor a node runs: the learner's, when the run supplies one, else [`acceptor`].
pub static ACCEPTOR: Slot<AcceptorFn> = Slot::new("paxos.acceptor", acceptor);
// ANCHOR_END: slot

// ANCHOR: acceptor
/// The acceptor (Lamport, *Paxos Made Simple*, §2.2): promise a ballot at least as high as any
/// promised before, reporting what was accepted; accept a proposal whose ballot is at least the
/// promise. A promise or acceptance at an equal ballot is a repeat (a retried message) and is
/// answered the same way again.
pub fn acceptor(state: &mut AcceptorState, request: Request) -> Reply {
    match request {
        Request::Prepare { ballot, from_slot } => {
            if ballot < state.promised {
                return Reply::Rejected {
                    ballot,
                    promised: state.promised,
                };
            }
            state.promised = ballot;
            let accepted = state
                .accepted
                .range(from_slot..)
                .map(|(&slot, (b, v))| (slot, *b, v.clone()))
                .collect();
            Reply::Promise { ballot, accepted }
        }
        Request::Accept {
            ballot,
            slot,
            value,
        } => {
            if ballot < state.promised {
                return Reply::Rejected {
                    ballot,
                    promised: state.promised,
                };
            }
            state.promised = ballot;
            record(state, slot, ballot, value);
            Reply::Accepted { ballot, slot }
        }
    }
}
// ANCHOR_END: acceptor

/// The planted bug [`super::PaxosBug::AcceptWithoutPromiseCheck`]: promises like [`acceptor`],
/// but accepts every proposal, whatever it promised.
pub fn accept_without_promise_check(state: &mut AcceptorState, request: Request) -> Reply {
    match request {
        Request::Accept {
            ballot,
            slot,
            value,
        } => {
            state.promised = state.promised.max(ballot);
            record(state, slot, ballot, value);
            Reply::Accepted { ballot, slot }
        }
        prepare => acceptor(state, prepare),
    }
}

/// Stores an acceptance and journals it.
pub fn record(state: &mut AcceptorState, slot: u64, ballot: Ballot, value: Value) {
    state.journal.push((slot, ballot, value.clone()));
    state.accepted.insert(slot, (ballot, value));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(round: u64, node: u32) -> Ballot {
        Ballot { round, node }
    }

    #[test]
    fn promises_report_what_was_accepted_and_refuse_lower_ballots() {
        let mut a = AcceptorState::default();
        let reply = acceptor(
            &mut a,
            Request::Prepare {
                ballot: b(1, 0),
                from_slot: 0,
            },
        );
        assert_eq!(
            reply,
            Reply::Promise {
                ballot: b(1, 0),
                accepted: vec![]
            }
        );
        let accept = |ballot, value| Request::Accept {
            ballot,
            slot: 3,
            value,
        };
        assert_eq!(
            acceptor(&mut a, accept(b(1, 0), Value::Noop)),
            Reply::Accepted {
                ballot: b(1, 0),
                slot: 3
            }
        );
        let reply = acceptor(
            &mut a,
            Request::Prepare {
                ballot: b(2, 1),
                from_slot: 2,
            },
        );
        assert_eq!(
            reply,
            Reply::Promise {
                ballot: b(2, 1),
                accepted: vec![(3, b(1, 0), Value::Noop)]
            }
        );
        // Ballot 1.0 is below the promise now: refused, state unchanged.
        let before = a.clone();
        assert_eq!(
            acceptor(&mut a, accept(b(1, 0), Value::Noop)),
            Reply::Rejected {
                ballot: b(1, 0),
                promised: b(2, 1)
            }
        );
        assert_eq!(a, before);
        // The bug accepts it anyway.
        let reply = accept_without_promise_check(&mut a, accept(b(1, 0), Value::Noop));
        assert!(matches!(reply, Reply::Accepted { .. }));
        let journal: Vec<(u64, Ballot)> = a.journal.iter().map(|(s, b, _)| (*s, *b)).collect();
        assert_eq!(journal, vec![(3, b(1, 0)), (3, b(1, 0))]);
    }

    #[test]
    fn the_node_id_breaks_ties_between_rounds() {
        assert!(b(1, 2) > b(1, 1));
        assert!(b(2, 0) > b(1, 4));
        assert_eq!(b(3, 4).to_string(), "3.4");
    }
}
