//! State fingerprints for exhaustive exploration: one number for what decides a simulation's
//! future, so that states reached along different paths are explored once.
//!
//! What a fingerprint leaves out is what only numbers or times the path: the clock, step and
//! insertion counters, timer ids, when messages were sent, the trace hash, counts, and the
//! memory incremental invariants keep (only whether each invariant has settled is in). So an
//! exploration treats time as free: any waiting event may come next, and a timer may fire
//! whenever it is armed. Partitions count by the links they cut now, not by when they cut
//! them (the default scheduler also loses messages sent before a cut that arrive after it).
//!
//! The workload's own state (a generator may remember what it generated) is not hashed
//! either: it follows from which client drew which request in which order, and the history
//! holds exactly that, in call order, beside each client's stream position.

use super::Simulation;
use super::queue::Event;
use crate::hash::{StableHasher, stable_hash};
use crate::node::Node;
use crate::rng::SimRng;
use crate::world::Presence;

impl<P: Node> Simulation<P> {
    /// A fingerprint of what decides this simulation's future (see the module's notes for
    /// what it leaves out). Equal states have equal fingerprints in every run and on every
    /// machine; unequal ones almost surely differ.
    pub fn fingerprint(&self) -> u64 {
        // Each part is hashed on its own chain and only the parts' hashes are chained: the
        // mixing of one word waits for the word before it, and the parts' chains are
        // independent, so the processor works on several at once.
        let mut h = StableHasher::new();
        for slot in &self.state.nodes {
            h.word(part(|h| {
                h.word(match slot.presence {
                    Presence::Absent => 0,
                    Presence::Member => 1,
                    Presence::Leaving => 2,
                    Presence::Left => 3,
                });
                h.word(u64::from(slot.paused));
                // A node's state and its durable store are fingerprinted on their own and the
                // number kept until they change: a step changes one node, the others are
                // shared with the state it came from, and so is their number.
                match &slot.state {
                    None => h.word(0),
                    Some(node) => {
                        h.word(1);
                        h.word(node.memoized(|node| part(|h| node.fingerprint(h))));
                    }
                }
                h.word(
                    slot.durable
                        .memoized(|durable| part(|h| P::fingerprint_durable(durable, h))),
                );
                multiset(h, slot.timers.values().map(stable_hash));
                h.word(slot.clock.offset_us as u64);
                h.word(i64::from(slot.clock.drift_ppm) as u64);
                h.word(i64::from(slot.clock.rate_ppm) as u64);
                position(h, &slot.rng);
                position(h, &slot.net_rng);
            }));
        }
        h.word(part(|h| self.state.network.reach.fingerprint(h)));
        // Armed timers are in their nodes' slots above, cancelled ones never run.
        multiset(
            &mut h,
            self.queue
                .events()
                .filter(|event| !matches!(event, Event::Timer { .. }))
                .map(|event| self.waiting(event)),
        );
        // Every node's backlog, empty ones included (before the first pause there are none).
        h.word(part(|h| {
            for node in 0..self.state.nodes.len() {
                let backlog = self.backlogs.get(node).map_or(&[][..], Vec::as_slice);
                h.word(backlog.len() as u64);
                backlog.iter().for_each(|event| h.word(self.waiting(event)));
            }
        }));
        for client in &self.clients {
            h.word(part(|h| {
                position(h, &client.rng);
                position(h, &client.workload_rng);
                match &client.pending {
                    None => h.word(0),
                    Some(p) => {
                        h.word(1);
                        for word in [
                            p.seq,
                            u64::from(p.send),
                            u64::from(p.tries),
                            u64::from(p.hops),
                        ] {
                            h.word(word);
                        }
                        h.word(u64::from(p.maybe_applied));
                        h.value(&p.key);
                    }
                }
                h.value(&client.leader_hint);
                h.value(&client.key_hints);
            }));
        }
        // The history without its times: what each operation asked and answered, and the
        // real-time order of calls and returns, which is what linearizability reads.
        // Remembered like a node's: most steps do not touch the history.
        h.word(self.state.history.memoized(|history| {
            part(|h| {
                h.word(history.ops.len() as u64);
                for op in &history.ops {
                    h.word(u64::from(op.client.0));
                    h.word(op.seq);
                    h.value(&op.request);
                    h.value(&op.completion);
                    h.word(op.call_order);
                    h.value(&op.return_order);
                }
            })
        }));
        h.word(part(|h| {
            h.value(&self.fault_budget);
            h.word(u64::from(self.restart_choices));
            h.word(u64::from(self.heal_choices));
            h.word(u64::from(self.synchronous));
            for settled in self.settled.iter() {
                h.word(u64::from(settled.is_some()));
            }
        }));
        h.finish()
    }
}

/// The hash of what `write` writes, on its own.
fn part(write: impl FnOnce(&mut StableHasher)) -> u64 {
    let mut h = StableHasher::new();
    write(&mut h);
    h.finish()
}

/// Mixes in the hashes of a multiset of items: their number, then the wrapping sum of each
/// hash scrambled (splitmix64's finaliser), which no order of the items changes. Summing
/// instead of sorting spares a sort and an allocation per state; scrambling first keeps
/// items that differ in a few bits from cancelling out.
fn multiset(h: &mut StableHasher, items: impl Iterator<Item = u64>) {
    let (count, sum) = items.fold((0u64, 0u64), |(count, sum), item| {
        let mut state = item;
        (
            count + 1,
            sum.wrapping_add(crate::rng::splitmix64(&mut state)),
        )
    });
    h.word(count);
    h.word(sum);
}

/// Mixes in how far a random stream has been drawn: its draws so far decide the next ones.
fn position(h: &mut StableHasher, rng: &SimRng) {
    let words = rng.get_word_pos();
    h.word(words as u64);
    h.word((words >> 64) as u64);
}

impl<P: Node> Simulation<P> {
    /// A waiting event's hash, without when it was scheduled, when its message was sent, or
    /// which step sent it.
    fn waiting(&self, event: &Event<P>) -> u64 {
        let mut h = StableHasher::new();
        match event {
            Event::Start(id) => {
                h.word(0);
                h.word(u64::from(id.0));
            }
            Event::Deliver {
                from,
                to,
                msg,
                msg_hash,
                ..
            } => {
                h.word(1);
                h.word(u64::from(from.0));
                h.word(u64::from(to.0));
                h.word(if self.exploring {
                    *msg_hash
                } else {
                    stable_hash(msg)
                });
            }
            Event::Timer { node, .. } => {
                h.word(2);
                h.word(u64::from(node.0));
            }
            Event::Request {
                client,
                to,
                seq,
                send,
                ..
            } => {
                h.word(3);
                for word in [u64::from(client.0), u64::from(to.0), *seq, u64::from(*send)] {
                    h.word(word);
                }
            }
            Event::Reply {
                client,
                from,
                seq,
                response,
                ..
            } => {
                h.word(4);
                for word in [u64::from(client.0), u64::from(from.0), *seq] {
                    h.word(word);
                }
                h.value(response);
            }
            Event::ClientTimeout { client, seq, send } => {
                h.word(5);
                for word in [u64::from(client.0), *seq, u64::from(*send)] {
                    h.word(word);
                }
            }
            Event::ClientInvoke(client) => {
                h.word(6);
                h.word(u64::from(client.0));
            }
            Event::Fault(fault) => {
                h.word(7);
                h.value(fault);
            }
        }
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::multiset;
    use crate::hash::StableHasher;

    fn hash_of(items: &[u64]) -> u64 {
        let mut h = StableHasher::new();
        multiset(&mut h, items.iter().copied());
        h.finish()
    }

    #[test]
    fn a_multiset_hash_ignores_order_and_counts_each_copy() {
        assert_eq!(hash_of(&[3, 1, 2]), hash_of(&[2, 3, 1]));
        assert_ne!(hash_of(&[1, 2]), hash_of(&[1, 2, 2]));
        assert_ne!(hash_of(&[1, 1]), hash_of(&[1]));
        assert_ne!(
            hash_of(&[1, 4]),
            hash_of(&[2, 3]),
            "a plain sum would collide"
        );
        assert_ne!(hash_of(&[0, 0]), hash_of(&[]));
        assert_ne!(hash_of(&[1, 2]), hash_of(&[1, 3]));
    }
}
