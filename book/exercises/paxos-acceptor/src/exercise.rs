// Each stub is the learner's to write; its `todo!` says what it is for.
#![allow(clippy::todo)]

use simlab_protocols::paxos::acceptor::{AcceptorState, Reply, Request, record};

// ANCHOR: exercise
/// Handles one proposer request and answers it.
///
/// - `Prepare { ballot, from_slot }`: promise, unless a higher ballot was promised; a promise
///   reports what was accepted in every slot from `from_slot` on, as `(slot, ballot, value)`.
/// - `Accept { ballot, slot, value }`: accept, unless a higher ballot was promised (use
///   `record(state, slot, ballot, value)`, which also journals the acceptance for the
///   invariants).
/// - Refuse with `Reply::Rejected { ballot, promised }`.
pub fn acceptor(state: &mut AcceptorState, request: Request) -> Reply {
    let _ = (state, request, record);
    todo!("phase 1b and phase 2b")
}
// ANCHOR_END: exercise
