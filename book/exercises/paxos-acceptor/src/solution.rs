use simlab_protocols::paxos::acceptor::{AcceptorState, Reply, Request, record};

// ANCHOR: solution
/// Handles one proposer request and answers it.
pub fn acceptor(state: &mut AcceptorState, request: Request) -> Reply {
    match request {
        Request::Prepare { ballot, from_slot } => {
            // A promise never goes back: a lower ballot is refused. An equal one is a retried
            // Prepare, answered the same way again.
            if ballot < state.promised {
                return Reply::Rejected {
                    ballot,
                    promised: state.promised,
                };
            }
            state.promised = ballot;
            // Everything accepted from the slot asked about: the proposer must re-propose
            // the highest-ballot value of each slot, which may already be chosen.
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
            // Accepting a ballot is promising it too: nothing below it may be accepted now.
            state.promised = ballot;
            record(state, slot, ballot, value);
            Reply::Accepted { ballot, slot }
        }
    }
}
// ANCHOR_END: solution
