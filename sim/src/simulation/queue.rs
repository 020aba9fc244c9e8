//! The event queue: events ordered by `(time, seq)`, where `seq` counts insertions, so events
//! at the same instant run in the order they were scheduled, always.

use crate::faults::Fault;
use crate::node::{ClientId, Node, NodeId, TimerId};
use crate::time::Time;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Clone, Debug, Serialize)]
pub(super) enum FaultEvent {
    Scheduled(usize),
    NemesisInject,
    NemesisRepair(Fault),
    // New variants go last: a variant's position is part of the trace hash.
    /// The end of a nemesis fault that did nothing (a leader fault with no leader): only the
    /// next fault is scheduled.
    NemesisNothingToRepair,
    /// A fault an exploration chose as the next step.
    Chosen(Fault),
}

/// Which step sent a message, and whether this is the network's second copy of it: the link
/// from a delivery back to its send that diagrams draw. One word, so events grow by eight bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Origin(u64);

impl Origin {
    const COPY: u64 = 1 << 63;

    pub(super) fn new(step: u64, copy: bool) -> Origin {
        Origin(if copy { step | Origin::COPY } else { step })
    }

    pub(super) fn step(self) -> u64 {
        self.0 & !Origin::COPY
    }

    pub(super) fn is_copy(self) -> bool {
        self.0 & Origin::COPY != 0
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(bound = "")]
pub(super) enum Event<P: Node> {
    Start(NodeId),
    Deliver {
        from: NodeId,
        to: NodeId,
        sent: Time,
        msg: P::Msg,
        /// Not hashed: it names the message for people (diagrams), the run does not read it.
        #[serde(skip)]
        origin: Origin,
        /// Not hashed: `msg`'s hash, kept in [`Simulation::explore_mode`] (0 otherwise), where
        /// every send looks for a copy in flight and every state's fingerprint covers every
        /// message waiting.
        ///
        /// [`Simulation::explore_mode`]: super::Simulation::explore_mode
        #[serde(skip)]
        msg_hash: u64,
    },
    Timer {
        node: NodeId,
        id: TimerId,
    },
    Request {
        client: ClientId,
        to: NodeId,
        seq: u64,
        send: u32,
        /// Not hashed, like [`Origin`]: the step that sent the request, and when it left.
        #[serde(skip)]
        sent: (u64, Time),
    },
    Reply {
        client: ClientId,
        from: NodeId,
        seq: u64,
        response: P::Response,
        /// Not hashed, like [`Origin`]: the step that sent the reply, and when.
        #[serde(skip)]
        sent: (u64, Time),
    },
    ClientTimeout {
        client: ClientId,
        seq: u64,
        send: u32,
    },
    ClientInvoke(ClientId),
    Fault(FaultEvent),
}

impl<P: Node> Event<P> {
    /// The node whose handler this event runs, for events a pause holds back.
    pub(super) fn target_node(&self) -> Option<NodeId> {
        match self {
            Event::Deliver { to, .. } | Event::Request { to, .. } => Some(*to),
            Event::Timer { node, .. } => Some(*node),
            _ => None,
        }
    }
}

/// The keys of waiting events, earliest `(time, insertion number)` first.
///
/// Each key is one `u128`: the time in microseconds in the high 64 bits, then the insertion
/// number, then the slot where the event waits in the low `slot_bits`. Comparing two keys is
/// one wide comparison, and the heap moves 16 bytes per entry. Insertion numbers are unique, so
/// the slot never decides the order: it rides along in bits the order never reaches.
///
/// When insertion numbers or slots outgrow their bits, [`KeyHeap::repack`] renumbers the
/// waiting keys in order from zero (only their order matters) and widens the slot bits if the
/// slots need it. Nothing is hashed from a key, so repacking changes no run.
#[derive(Debug)]
pub(super) struct KeyHeap {
    heap: BinaryHeap<Reverse<u128>>,
    next_seq: u64,
    slot_bits: u32,
}

impl KeyHeap {
    /// Slot bits to start with: sixteen million waiting events before a repack widens them,
    /// and a trillion insertions before one renumbers.
    const SLOT_BITS: u32 = 24;

    pub(super) fn new() -> KeyHeap {
        KeyHeap::with_slot_bits(Self::SLOT_BITS)
    }

    fn with_slot_bits(slot_bits: u32) -> KeyHeap {
        KeyHeap {
            heap: BinaryHeap::new(),
            next_seq: 0,
            slot_bits,
        }
    }

    /// Schedules the event in `slot` at `time`, after every key already scheduled for it.
    #[inline]
    pub(super) fn push(&mut self, time: Time, slot: usize) {
        let slot = slot as u64;
        if slot >> self.slot_bits != 0 || self.next_seq >> (64 - self.slot_bits) != 0 {
            self.repack(slot);
        }
        let low = (self.next_seq << self.slot_bits) | slot;
        self.heap.push(Reverse(
            (u128::from(time.as_micros()) << 64) | u128::from(low),
        ));
        self.next_seq += 1;
    }

    /// A key's time.
    #[inline]
    fn time_of(key: u128) -> Time {
        Time::from_micros((key >> 64) as u64)
    }

    /// A key's slot.
    #[inline]
    fn slot_of(&self, key: u128) -> usize {
        (key as u64 & ((1u64 << self.slot_bits) - 1)) as usize
    }

    /// The earliest key's time.
    pub(super) fn peek_time(&self) -> Option<Time> {
        self.heap.peek().map(|key| KeyHeap::time_of(key.0))
    }

    /// The earliest key's slot.
    pub(super) fn peek_slot(&self) -> Option<usize> {
        self.heap.peek().map(|key| self.slot_of(key.0))
    }

    /// Takes the earliest key: its time and slot.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<(Time, usize)> {
        let Reverse(key) = self.heap.pop()?;
        Some((KeyHeap::time_of(key), self.slot_of(key)))
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Every waiting key's time and slot, in no particular order.
    pub(super) fn unordered(&self) -> impl Iterator<Item = (Time, usize)> + '_ {
        self.heap
            .iter()
            .map(|key| (KeyHeap::time_of(key.0), self.slot_of(key.0)))
    }

    /// Every waiting key's time and slot, earliest first.
    pub(super) fn in_order(&self) -> Vec<(Time, usize)> {
        let mut keys: Vec<u128> = self.heap.iter().map(|key| key.0).collect();
        keys.sort_unstable();
        keys.into_iter()
            .map(|key| (KeyHeap::time_of(key), self.slot_of(key)))
            .collect()
    }

    /// Takes out the key of the event in `slot`, wherever it is in the order; returns its time.
    pub(super) fn remove(&mut self, slot: usize) -> Option<Time> {
        let key = self
            .heap
            .iter()
            .map(|key| key.0)
            .find(|&key| self.slot_of(key) == slot)?;
        self.heap.retain(|other| other.0 != key);
        Some(KeyHeap::time_of(key))
    }

    /// Renumbers the waiting keys from zero in their order, with slot bits enough for `slot`.
    #[cold]
    fn repack(&mut self, slot: u64) {
        let old_bits = self.slot_bits;
        let mut keys: Vec<u128> = self.heap.drain().map(|Reverse(key)| key).collect();
        keys.sort_unstable();
        let widest = keys
            .iter()
            .map(|&key| (key as u64) & ((1 << old_bits) - 1))
            .chain([slot])
            .max()
            .unwrap_or(0);
        let needed = (64 - widest.leading_zeros()).max(Self::SLOT_BITS.min(old_bits));
        // There are at least as many slots as waiting keys, so with at most 32 slot bits the
        // renumbered insertion numbers fit in the other 32 with room to grow. Four billion
        // waiting events would need hundreds of gigabytes first.
        assert!(
            needed <= 32,
            "more than 2^32 events waiting: the event queue cannot hold them"
        );
        self.slot_bits = needed;
        let renumbered = keys.iter().zip(0u64..).map(|(&key, seq)| {
            let time = key >> 64;
            let slot = (key as u64) & ((1 << old_bits) - 1);
            Reverse((time << 64) | u128::from((seq << needed) | slot))
        });
        self.heap = renumbered.collect::<Vec<_>>().into();
        self.next_seq = keys.len() as u64;
    }
}

/// Events waiting to happen: a heap of keys over a slab of events, free slots reused.
#[derive(Debug)]
pub(super) struct EventQueue<P: Node> {
    keys: KeyHeap,
    slots: Vec<Slot<P>>,
    /// The free slot to fill next, the head of a list threaded through the free slots: kept
    /// in the slab rather than in a list of its own, so that a copy of the queue (a search
    /// copies one per step it tries) allocates once, and the step's first removal does not
    /// allocate again.
    free: u32,
    /// While a search's scratch copy tracks them: the slots changed since the copy was last
    /// made equal to the queue it copies ([`EventQueue::refill_from`]).
    changed: Option<Vec<u32>>,
}

/// The end of the free list.
const NO_SLOT: u32 = u32::MAX;

/// One place in the event slab.
#[derive(Clone, Debug)]
enum Slot<P: Node> {
    Waiting(Event<P>),
    /// Free, and the next free slot after it ([`NO_SLOT`] if none): the last one freed is
    /// reused first. 32 bits, so that a free slot fits beside an event's variant tag and a
    /// slot takes no more room than an event.
    Free(u32),
}

// `clone_from` copies into the buffers the copy already has: a search copies its state into the
// same scratch simulation for every step it tries (`Simulation::refill_from`).
impl Clone for KeyHeap {
    fn clone(&self) -> Self {
        KeyHeap {
            heap: self.heap.clone(),
            next_seq: self.next_seq,
            slot_bits: self.slot_bits,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let KeyHeap {
            heap,
            next_seq,
            slot_bits,
        } = source;
        self.heap.clone_from(heap);
        self.next_seq = *next_seq;
        self.slot_bits = *slot_bits;
    }
}

impl<P: Node> Clone for EventQueue<P> {
    fn clone(&self) -> Self {
        EventQueue {
            keys: self.keys.clone(),
            slots: self.slots.clone(),
            free: self.free,
            changed: None,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let EventQueue {
            keys,
            slots,
            free,
            changed: _,
        } = source;
        self.keys.clone_from(keys);
        self.slots.clone_from(slots);
        self.free = *free;
        self.changed = None;
    }
}

impl<P: Node> Slot<P> {
    fn event(&self) -> Option<&Event<P>> {
        match self {
            Slot::Waiting(event) => Some(event),
            Slot::Free(_) => None,
        }
    }
}

impl<P: Node> EventQueue<P> {
    pub(super) fn new() -> EventQueue<P> {
        EventQueue {
            keys: KeyHeap::new(),
            slots: Vec::new(),
            free: NO_SLOT,
            changed: None,
        }
    }

    /// Makes this queue equal to `source` again, copying back only the slots changed since it
    /// last was: the first call copies `source` whole and starts tracking changes. The caller
    /// promises that this queue has been a copy of `source` since that first call, changed
    /// only through its own methods, and that `source` has not changed: a search's scratch
    /// copy, refilled from the one state it expands for each step it tries.
    pub(super) fn refill_from(&mut self, source: &EventQueue<P>) {
        match self.changed.take() {
            Some(mut changed) => {
                // Slots are only ever added, so the ones past the source's were pushed here.
                self.slots.truncate(source.slots.len());
                for &slot in &changed {
                    if let Some(mine) = self.slots.get_mut(slot as usize) {
                        mine.clone_from(&source.slots[slot as usize]);
                    }
                }
                changed.clear();
                self.keys.clone_from(&source.keys);
                self.free = source.free;
                self.changed = Some(changed);
            }
            None => {
                self.clone_from(source);
                self.changed = Some(Vec::new());
            }
        }
    }

    /// Starts tracking changed slots: a scratch copy just made ([`EventQueue::refill_from`]).
    pub(super) fn track_changes(&mut self) {
        self.changed = Some(Vec::new());
    }

    /// Notes that `slot` changed, if changes are tracked.
    #[inline]
    fn changed(&mut self, slot: usize) {
        if self.changed.is_some() {
            self.note_changed(slot);
        }
    }

    /// Out of line: random runs never track changes, and their push and pop stay as small as
    /// they were.
    #[cold]
    #[inline(never)]
    fn note_changed(&mut self, slot: usize) {
        if let Some(changed) = &mut self.changed {
            changed.push(slot as u32);
        }
    }

    /// Schedules `event` at `time`, after everything already scheduled for that instant.
    #[inline]
    pub(super) fn push(&mut self, time: Time, event: Event<P>) {
        let slot = match self.free {
            NO_SLOT => {
                assert!(
                    self.slots.len() < NO_SLOT as usize,
                    "more than 2^32 events waiting: the event queue cannot hold them"
                );
                self.slots.push(Slot::Waiting(event));
                self.slots.len() - 1
            }
            free => {
                let slot = free as usize;
                let Slot::Free(next) =
                    std::mem::replace(&mut self.slots[slot], Slot::Waiting(event))
                else {
                    unreachable!("the free list holds free slots only")
                };
                self.free = next;
                slot
            }
        };
        self.changed(slot);
        self.keys.push(time, slot);
    }

    /// Takes the event out of `slot` and puts the slot at the head of the free list.
    #[inline]
    fn vacate(&mut self, slot: usize) -> Option<Event<P>> {
        match self.slots.get(slot)? {
            Slot::Waiting(_) => {}
            Slot::Free(_) => return None,
        }
        let Slot::Waiting(event) = std::mem::replace(&mut self.slots[slot], Slot::Free(self.free))
        else {
            unreachable!("checked just above")
        };
        // `push` keeps slot numbers below `NO_SLOT`.
        self.free = slot as u32;
        self.changed(slot);
        Some(event)
    }

    /// When the next event happens.
    pub(super) fn next_time(&self) -> Option<Time> {
        self.keys.peek_time()
    }

    /// The slot of the event that runs next.
    pub(super) fn next_slot(&self) -> Option<usize> {
        self.keys.peek_slot()
    }

    /// Takes the next event.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<(Time, Event<P>)> {
        let (time, slot) = self.keys.pop()?;
        let event = self.vacate(slot).expect("a queued key has its event");
        Some((time, event))
    }

    /// How many events wait.
    pub(super) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Every waiting event's time and slot, in the order they would run.
    pub(super) fn in_order(&self) -> Vec<(Time, usize)> {
        self.keys.in_order()
    }

    /// Every waiting event's time and slot, in no particular order.
    pub(super) fn unordered(&self) -> impl Iterator<Item = (Time, usize)> + '_ {
        self.keys.unordered()
    }

    /// The event waiting in `slot`, if one does.
    pub(super) fn get(&self, slot: usize) -> Option<&Event<P>> {
        self.slots.get(slot)?.event()
    }

    /// Takes the event in `slot` out of its turn.
    pub(super) fn take(&mut self, slot: usize) -> Option<(Time, Event<P>)> {
        let event = self.vacate(slot)?;
        let time = self.keys.remove(slot).expect("a waiting event has its key");
        Some((time, event))
    }

    /// Every waiting event, in no particular order.
    pub(super) fn events(&self) -> impl Iterator<Item = &Event<P>> {
        self.slots.iter().filter_map(Slot::event)
    }

    /// Every waiting event, to change, in no particular order.
    pub(super) fn events_mut(&mut self) -> impl Iterator<Item = &mut Event<P>> {
        // Any of them may change: the next refill copies the whole queue.
        self.changed = None;
        self.slots.iter_mut().filter_map(|slot| match slot {
            Slot::Waiting(event) => Some(event),
            Slot::Free(_) => None,
        })
    }

    /// The slots of the waiting events `matches` picks, in slot order.
    pub(super) fn slots_where(&self, mut matches: impl FnMut(&Event<P>) -> bool) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(slot, event)| event.event().filter(|e| matches(e)).map(|_| slot))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyHeap;
    use crate::rng::{self, Stream};
    use crate::time::Time;
    use std::collections::BTreeMap;

    /// Random pushes, pops and removals against a map ordered by `(time, insertion)`; returns
    /// how many times the heap repacked.
    fn pops_in_time_then_insertion_order(mut heap: KeyHeap, seed: u64) -> usize {
        let mut reference: BTreeMap<(u64, u64), usize> = BTreeMap::new();
        let mut r = rng::stream(seed, Stream::Faults);
        let mut free: Vec<usize> = Vec::new();
        let (mut next_slot, mut inserted, mut now, mut repacks) = (0usize, 0u64, 0u64, 0);
        for _ in 0..20_000 {
            let choice = rng::below(&mut r, 8);
            if choice == 7 && !reference.is_empty() {
                // Any waiting key, wherever it is in the order (a search takes the event it
                // chose).
                let nth = rng::below(&mut r, reference.len() as u64) as usize;
                let (&(time, inserted), &slot) = reference.iter().nth(nth).expect("nth < len");
                reference.remove(&(time, inserted));
                assert_eq!(heap.remove(slot), Some(Time::from_micros(time)));
                assert_eq!(heap.remove(slot), None, "removed once");
                free.push(slot);
            } else if choice < 5 {
                let time = now + rng::below(&mut r, 4);
                let slot = free.pop().unwrap_or_else(|| {
                    next_slot += 1;
                    next_slot - 1
                });
                let before = heap.next_seq;
                heap.push(Time::from_micros(time), slot);
                repacks += usize::from(heap.next_seq != before + 1);
                reference.insert((time, inserted), slot);
                inserted += 1;
            } else {
                let expected = reference.pop_first();
                let got = heap.pop();
                assert_eq!(
                    got.map(|(t, s)| (t.as_micros(), s)),
                    expected.map(|((t, _), s)| (t, s))
                );
                if let Some((t, slot)) = got {
                    now = t.as_micros();
                    free.push(slot);
                }
            }
            assert_eq!(heap.len(), reference.len());
        }
        repacks
    }

    #[test]
    fn slot_bits_widen_as_slots_outgrow_them() {
        for seed in 0..4 {
            let heap = KeyHeap::with_slot_bits(1);
            let repacks = pops_in_time_then_insertion_order(heap, seed);
            assert!(repacks >= 10, "{repacks} repacks from 1 slot bit to 12");
        }
    }

    #[test]
    fn insertion_numbers_are_renumbered_before_they_overflow() {
        for seed in 0..4 {
            let mut heap = KeyHeap::new();
            heap.next_seq = (1 << (64 - KeyHeap::SLOT_BITS)) - 100;
            let repacks = pops_in_time_then_insertion_order(heap, seed);
            assert_eq!(repacks, 1);
        }
    }
}

#[cfg(test)]
mod refill_tests {
    use super::{Event, EventQueue, Origin};
    use crate::node::{Ctx, Node, NodeId, ReplyTo, ResponseClass};
    use crate::rng::{self, Stream};
    use crate::time::Time;

    #[derive(Clone, Debug)]
    struct Pinger;

    impl Node for Pinger {
        type Msg = u64;
        type Timer = ();
        type Request = ();
        type Response = ();
        type Durable = ();
        fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
        fn on_message(&mut self, _: NodeId, _: u64, _: &mut Ctx<'_, Self>) {}
        fn on_timer(&mut self, _: (), _: &mut Ctx<'_, Self>) {}
        fn on_request(&mut self, _: ReplyTo, _: (), _: &mut Ctx<'_, Self>) {}
        fn classify(_: &()) -> ResponseClass {
            ResponseClass::Ok
        }
    }

    fn message(n: u64) -> Event<Pinger> {
        Event::Deliver {
            from: NodeId(0),
            to: NodeId(1),
            sent: Time::ZERO,
            msg: n,
            origin: Origin::new(n, false),
            msg_hash: n,
        }
    }

    /// Everything a queue holds, in slot order, with its keys in the order they run.
    fn contents(queue: &EventQueue<Pinger>) -> String {
        format!("{:?} {:?} {}", queue.slots, queue.in_order(), queue.free)
    }

    /// Random steps on a scratch copy (pushes, pops, takes), each refill checked against
    /// the source it copies.
    #[test]
    fn a_refilled_scratch_queue_equals_its_source_again() {
        let mut r = rng::stream(7, Stream::Faults);
        let mut source: EventQueue<Pinger> = EventQueue::new();
        let mut made = 0;
        for _ in 0..12 {
            source.push(Time::from_micros(rng::below(&mut r, 50)), message(made));
            made += 1;
        }
        source.take(3);
        source.take(7);
        let mut scratch = source.clone();
        scratch.track_changes();
        for round in 0..500 {
            for _ in 0..rng::below(&mut r, 4) {
                match rng::below(&mut r, 3) {
                    0 => {
                        scratch.push(Time::from_micros(rng::below(&mut r, 50)), message(made));
                        made += 1;
                    }
                    1 => {
                        scratch.pop();
                    }
                    _ => {
                        let slot = rng::below(&mut r, scratch.slots.len() as u64 + 1);
                        scratch.take(slot as usize);
                    }
                }
            }
            // Now and then a queue whose events all may have changed: copied whole.
            if round % 97 == 0 {
                scratch.events_mut().for_each(|_| {});
            }
            scratch.refill_from(&source);
            assert_eq!(contents(&scratch), contents(&source), "round {round}");
        }
        assert!(made > 200, "{made} events pushed");
    }
}
