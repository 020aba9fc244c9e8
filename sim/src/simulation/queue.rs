//! The event queue: events ordered by `(time, seq)`, where `seq` counts insertions, so events
//! at the same instant run in the order they were scheduled, always.

use crate::faults::Fault;
use crate::node::{ClientId, Node, NodeId, TimerId};
use crate::time::Time;
use serde::Serialize;
use std::cmp::Ordering;
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

/// A heap entry: when, the insertion number, and where the event waits. Only these 24 bytes
/// move when the heap reorders; the event itself stays in its slot.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Key {
    time: Time,
    seq: u64,
    slot: usize,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the earliest `(time, seq)` first.
    /// `(time, seq)` is unique, so the slot never decides.
    fn cmp(&self, other: &Self) -> Ordering {
        other.order().cmp(&self.order())
    }
}

impl Key {
    /// `(time, seq)` as one number: one wide comparison instead of two dependent ones, in the
    /// loop that dominates the engine's time when many events wait.
    fn order(&self) -> u128 {
        (u128::from(self.time.as_micros()) << 64) | u128::from(self.seq)
    }
}

/// Events waiting to happen: a heap of keys over a slab of events, free slots reused.
#[derive(Clone, Debug)]
pub(super) struct EventQueue<P: Node> {
    heap: BinaryHeap<Key>,
    slots: Vec<Option<Event<P>>>,
    free: Vec<usize>,
    next_seq: u64,
}

impl<P: Node> EventQueue<P> {
    pub(super) fn new() -> EventQueue<P> {
        EventQueue {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
        }
    }

    /// Schedules `event` at `time`, after everything already scheduled for that instant.
    #[inline]
    pub(super) fn push(&mut self, time: Time, event: Event<P>) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(event);
                slot
            }
            None => {
                self.slots.push(Some(event));
                self.slots.len() - 1
            }
        };
        self.heap.push(Key {
            time,
            seq: self.next_seq,
            slot,
        });
        self.next_seq += 1;
    }

    /// When the next event happens.
    pub(super) fn next_time(&self) -> Option<Time> {
        self.heap.peek().map(|k| k.time)
    }

    /// Takes the next event.
    #[inline]
    pub(super) fn pop(&mut self) -> Option<(Time, Event<P>)> {
        let key = self.heap.pop()?;
        let event = self.slots[key.slot]
            .take()
            .expect("a queued key has its event");
        self.free.push(key.slot);
        Some((key.time, event))
    }

    /// How many events wait.
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Every waiting event, in no particular order.
    pub(super) fn events(&self) -> impl Iterator<Item = &Event<P>> {
        self.slots.iter().flatten()
    }
}
