//! Running the events a scheduler chooses, in any order, instead of earliest first: the
//! foundation of exhaustive exploration. [`Simulation::enabled`] lists what may happen next and
//! [`Simulation::step_chosen`] runs one of them as the next step. The default scheduler
//! ([`Simulation::step`]) is the special case that always chooses the earliest.

use super::Simulation;
use super::queue::Event;
use crate::hash::stable_hash;
use crate::node::{ClientId, Node, NodeId};
use crate::outcome::StopReason;
use crate::time::Time;
use crate::trace::StepKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Names one waiting event to [`Simulation::step_chosen`]. It means the same event in this
/// simulation and in its copies ([`Clone`], [`Simulation::snapshot`]) until one of them takes a
/// step; after a step, ask [`Simulation::enabled`] again.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Choice(pub u32);

/// An event that may be the next step, as a scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Enabled {
    /// What to pass to [`Simulation::step_chosen`] to run it.
    pub choice: Choice,
    /// When the default scheduler would run it. Chosen early, it runs at once; chosen after
    /// a later event, it runs at that event's time (time never goes back).
    pub time: Time,
    /// What kind of step it is: a delivery may still turn out to be lost on arrival.
    pub kind: StepKind,
    /// The node whose handler runs (the recipient of a delivery or request, the sender of a
    /// reply).
    pub node: Option<NodeId>,
    /// The sender of a message.
    pub from: Option<NodeId>,
    /// The client of a request, reply, timeout or invocation.
    pub client: Option<ClientId>,
}

/// [`Simulation::step_chosen`] was given a choice that is not enabled now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotEnabled(pub Choice);

impl fmt::Display for NotEnabled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "choice {} is not an enabled event of this state (the run is over, or the choice \
             came from another state)",
            self.0.0
        )
    }
}

impl std::error::Error for NotEnabled {}

impl<P: Node> Simulation<P> {
    /// The events that may be the next step, in the order the default scheduler would run them:
    /// every waiting event due by the stop time, except cancelled timers, events for paused
    /// nodes (they wait until the node resumes) and events for nodes not started yet (a node
    /// starts before it handles anything, as it always does on time). Empty when the run is
    /// over.
    pub fn enabled(&self) -> Vec<Enabled> {
        if !self.may_step() {
            return Vec::new();
        }
        let waiting = self.queue.in_order();
        let starting: Vec<NodeId> = waiting
            .iter()
            .filter_map(|&(_, slot)| match self.queue.get(slot) {
                Some(Event::Start(id)) => Some(*id),
                _ => None,
            })
            .collect();
        waiting
            .into_iter()
            .filter(|&(time, slot)| {
                time <= self.config.stop
                    && self.is_live(slot)
                    && !self.queue.get(slot).is_some_and(|event| {
                        !matches!(event, Event::Start(_))
                            && event.target_node().is_some_and(|n| starting.contains(&n))
                    })
            })
            .map(|(time, slot)| {
                let event = self
                    .queue
                    .get(slot)
                    .expect("a waiting slot holds its event");
                describe(Choice(slot as u32), time, event)
            })
            .collect()
    }

    /// Runs the chosen event as the next step. Choosing the first of [`Simulation::enabled`]
    /// every time gives exactly the run [`Simulation::step`] gives, as long as no node is
    /// paused (the default scheduler holds a paused node's events back and replays them when
    /// it resumes; a chooser simply cannot choose them until then).
    pub fn step_chosen(&mut self, choice: Choice) -> Result<(), NotEnabled> {
        let slot = choice.0 as usize;
        if !self.enabled().iter().any(|e| e.choice == choice) {
            return Err(NotEnabled(choice));
        }
        // Cancelled timers ahead of everything else leave the queue as the default scheduler
        // drops them, so that choosing the earliest event leaves the queue as `step` does.
        for (_, first) in self.queue.in_order() {
            if first == slot || !self.is_cancelled_timer(first) {
                break;
            }
            self.queue.take(first);
        }
        let (time, event) = self.queue.take(slot).expect("checked above");
        self.run_event(time.max(self.state.now), event);
        Ok(())
    }

    /// From now on, a message the same as one already waiting (same sender, recipient and
    /// content) is not queued again: copies of one message in flight count once, as in
    /// [`crate::explore`]. A protocol that resends on a timer would otherwise pile up copies
    /// without end when time is free, since the timer may fire any number of times before the
    /// first copy arrives. Random runs never use this.
    pub fn merge_copies(&mut self) {
        self.merge_copies = true;
    }

    /// Whether a message from `from` to `to` with this content waits in the queue.
    pub(super) fn waits(&self, from: NodeId, to: NodeId, msg: &P::Msg) -> bool {
        let hash = stable_hash(msg);
        self.queue.events().any(|event| {
            matches!(event, Event::Deliver { from: f, to: t, msg: m, .. }
                if *f == from && *t == to && stable_hash(m) == hash)
        })
    }

    /// Whether another step may be taken: the run is not over and the step limit not reached.
    fn may_step(&self) -> bool {
        self.stop_reason.is_none() && self.state.stats.steps < self.config.limits.max_steps
    }

    /// Whether the event in `slot` would run if it came up: not a cancelled timer, not held
    /// back by a pause.
    fn is_live(&self, slot: usize) -> bool {
        self.queue.get(slot).is_some_and(|event| {
            !self.is_cancelled_timer(slot)
                && event
                    .target_node()
                    .is_none_or(|node| !self.state.nodes[node.index()].paused)
        })
    }

    /// Whether the event in `slot` is a timer its node cancelled.
    fn is_cancelled_timer(&self, slot: usize) -> bool {
        matches!(self.queue.get(slot), Some(Event::Timer { node, id })
            if !self.state.nodes[node.index()].timers.contains_key(id))
    }

    /// Ends a chosen run. Once nothing is enabled, with the stop reason [`Simulation::step`]
    /// would give (quiescent if nothing waits at all, the time limit if something waits past
    /// the stop time); while something is still enabled, as [`StopReason::ScheduleEnded`],
    /// without end-of-run checks. A run already over keeps its reason.
    pub fn end_chosen(&mut self) {
        if self.stop_reason.is_some() {
            return;
        }
        if self.state.stats.steps >= self.config.limits.max_steps {
            self.stop_reason = Some(StopReason::StepLimit(self.config.limits.max_steps));
            return;
        }
        if !self.enabled().is_empty() {
            self.stop_reason = Some(StopReason::ScheduleEnded);
            return;
        }
        // Nothing enabled: the default scheduler's next pop skips cancelled timers, holds back
        // what paused nodes wait for, and stops.
        let next = self.next_event();
        assert!(next.is_none(), "an event ran although none was enabled");
    }
}

fn describe<P: Node>(choice: Choice, time: Time, event: &Event<P>) -> Enabled {
    let (kind, node, from, client) = match *event {
        Event::Start(id) => (StepKind::Start, Some(id), None, None),
        Event::Deliver { from, to, .. } => (StepKind::Deliver, Some(to), Some(from), None),
        Event::Timer { node, .. } => (StepKind::Timer, Some(node), None, None),
        Event::Request { client, to, .. } => (StepKind::Request, Some(to), None, Some(client)),
        Event::Reply { client, from, .. } => (StepKind::Reply, Some(from), None, Some(client)),
        Event::ClientTimeout { client, .. } => (StepKind::ClientTimeout, None, None, Some(client)),
        Event::ClientInvoke(client) => (StepKind::ClientInvoke, None, None, Some(client)),
        Event::Fault(_) => (StepKind::Fault, None, None, None),
    };
    Enabled {
        choice,
        time,
        kind,
        node,
        from,
        client,
    }
}
