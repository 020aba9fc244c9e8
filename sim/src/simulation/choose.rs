//! Running the events a scheduler chooses, in any order, instead of earliest first: the
//! foundation of exhaustive exploration. [`Simulation::enabled`] lists what may happen next and
//! [`Simulation::step_chosen`] runs one of them as the next step. The default scheduler
//! ([`Simulation::step`]) is the special case that always chooses the earliest.

use super::Simulation;
use super::queue::{Event, FaultEvent, Origin};
use crate::faults::Fault;
use crate::hash::stable_hash;
use crate::node::{ClientId, Node, NodeId};
use crate::outcome::StopReason;
use crate::time::Time;
use crate::trace::StepKind;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Names one possible next step to [`Simulation::step_chosen`]: a waiting event to run, or a
/// fault the scheduler may inject (when [`Simulation::choose_faults`] allowed it). A choice
/// naming a waiting event means the same event in this simulation and in its copies
/// ([`Clone`], [`Simulation::snapshot`]) until one of them takes a step; after a step, ask
/// [`Simulation::enabled`] again.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Run the waiting event in this slot.
    Run(u32),
    /// Lose the message waiting in this slot: it never arrives.
    Drop(u32),
    /// Deliver the message waiting in this slot and leave a copy of it waiting.
    Duplicate(u32),
    /// Crash this running node: it loses everything but its durable store.
    Crash(NodeId),
    /// Restart this crashed node from its durable store.
    Restart(NodeId),
    /// Cut every link to and from this node.
    Isolate(NodeId),
    /// Restore every cut link.
    Heal,
}

impl fmt::Display for Choice {
    /// The words a schedule file's reader sees: `run 4`, `drop 2`, `crash n1`, `heal`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Run(slot) => write!(f, "run {slot}"),
            Choice::Drop(slot) => write!(f, "drop {slot}"),
            Choice::Duplicate(slot) => write!(f, "duplicate {slot}"),
            Choice::Crash(node) => write!(f, "crash {node}"),
            Choice::Restart(node) => write!(f, "restart {node}"),
            Choice::Isolate(node) => write!(f, "isolate {node}"),
            Choice::Heal => write!(f, "heal"),
        }
    }
}

/// The faults an exploration may choose as steps of their own, and how many of each a
/// schedule may hold: the bounded counts that keep a search with faults finite.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultBudget {
    /// Messages a schedule may lose.
    pub drops: u32,
    /// Messages a schedule may deliver twice.
    pub duplicates: u32,
    /// Crashes of running nodes. A node down may be restarted at any later step; restarts
    /// are not counted.
    pub crashes: u32,
    /// Isolations of one node from all the others. While a link is cut, healing every link
    /// is a choice; heals are not counted.
    pub partitions: u32,
}

impl FaultBudget {
    /// Whether no fault may be chosen.
    pub fn is_empty(&self) -> bool {
        *self == FaultBudget::default()
    }
}

impl fmt::Display for FaultBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return write!(f, "no faults chosen");
        }
        let counts = [
            (self.drops, "lost message", "lost messages"),
            (self.duplicates, "duplicated message", "duplicated messages"),
            (
                self.crashes,
                "crash (and restarts)",
                "crashes (and restarts)",
            ),
            (
                self.partitions,
                "isolated node (and heals)",
                "isolated nodes (and heals)",
            ),
        ];
        let parts: Vec<String> = counts
            .iter()
            .filter(|(n, ..)| *n > 0)
            .map(|&(n, one, many)| format!("up to {n} {}", if n == 1 { one } else { many }))
            .collect();
        write!(f, "{}", parts.join(", "))
    }
}

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
            "choice `{}` is not an enabled event in this state (the run is over, the choice \
             came from another state, or no such fault may be chosen)",
            self.0
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
        let mut events = waiting
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
                describe(Choice::Run(slot as u32), time, event)
            })
            .collect::<Vec<_>>();
        if self.synchronous && self.message_in_flight() {
            events.retain(|e| !matches!(e.kind, StepKind::Timer | StepKind::ClientTimeout));
        }
        if !self.fault_budget.is_empty() || self.restart_choices || self.heal_choices {
            let faults = self.fault_choices(&events, &starting);
            events.extend(faults);
        }
        events
    }

    /// The faults that may be chosen now, after the waiting events `events`: per message about
    /// to be delivered, losing or duplicating it; per started member, crashing, restarting
    /// or isolating it; and healing, while a link is cut.
    fn fault_choices(&self, events: &[Enabled], starting: &[NodeId]) -> Vec<Enabled> {
        let budget = self.fault_budget;
        let now = self.state.now;
        let mut faults = Vec::new();
        if budget.drops > 0 || budget.duplicates > 0 {
            for event in events {
                let Choice::Run(slot) = event.choice else {
                    continue;
                };
                let Some(Event::Deliver { from, to, sent, .. }) = self.queue.get(slot as usize)
                else {
                    continue;
                };
                // A message the network or a crash loses anyway is no choice.
                if !self.state.network.reach.delivers(*from, *to, *sent)
                    || self.state.nodes[to.index()].state.is_none()
                {
                    continue;
                }
                if budget.drops > 0 {
                    faults.push(Enabled {
                        choice: Choice::Drop(slot),
                        kind: StepKind::Drop,
                        ..event.clone()
                    });
                }
                if budget.duplicates > 0 {
                    faults.push(Enabled {
                        choice: Choice::Duplicate(slot),
                        ..event.clone()
                    });
                }
            }
        }
        let fault = |choice: Choice, node: Option<NodeId>| Enabled {
            choice,
            time: now,
            kind: StepKind::Fault,
            node,
            from: None,
            client: None,
        };
        for (i, slot) in self.state.nodes.iter().enumerate() {
            let id = NodeId(i as u32);
            // A node crashes after it has started: its start is no handler of a node down.
            if !slot.presence.is_member() || starting.contains(&id) {
                continue;
            }
            match &slot.state {
                Some(_) if budget.crashes > 0 => faults.push(fault(Choice::Crash(id), Some(id))),
                None if self.restart_choices => faults.push(fault(Choice::Restart(id), Some(id))),
                _ => {}
            }
            if budget.partitions > 0 && !self.is_isolated(id) {
                faults.push(fault(Choice::Isolate(id), Some(id)));
            }
        }
        if self.heal_choices && self.state.network.reach.is_partitioned() {
            faults.push(fault(Choice::Heal, None));
        }
        faults
    }

    /// Whether every link to and from `node` is cut: isolating it again changes nothing.
    fn is_isolated(&self, node: NodeId) -> bool {
        let reach = &self.state.network.reach;
        (0..self.config.nodes)
            .map(NodeId)
            .filter(|&other| other != node)
            .all(|other| !reach.can_reach(node, other) && !reach.can_reach(other, node))
    }

    /// From now on, [`Simulation::enabled`] also offers the faults `budget` allows, each as a
    /// step of its own, and counts them down as they are chosen. With crashes allowed, a node
    /// that is down may be restarted at any step; with partitions, a cut may be healed. The
    /// budget left is part of the state's fingerprint. Random runs never use this.
    pub fn choose_faults(&mut self, budget: FaultBudget) {
        self.fault_budget = budget;
        self.restart_choices = budget.crashes > 0;
        self.heal_choices = budget.partitions > 0;
    }

    /// From now on, [`Simulation::enabled`] offers no timer and no client timeout while a
    /// message, request or reply waits for a node that is not paused (or for one not started
    /// yet): every message in flight beats every timeout. This is the synchronous network whose known bound on delay protocols such as
    /// three-phase commit rely on; the order of messages stays free, and faults (crashes,
    /// losses, cuts) still let timeouts fire. Part of the state's fingerprint. Random runs
    /// never use this.
    pub fn assume_synchrony(&mut self) {
        self.synchronous = true;
    }

    /// The faults a scheduler may still choose.
    pub fn fault_budget(&self) -> FaultBudget {
        self.fault_budget
    }

    /// Runs the chosen event as the next step. Choosing the first of [`Simulation::enabled`]
    /// every time gives exactly the run [`Simulation::step`] gives, as long as no node is
    /// paused (the default scheduler holds a paused node's events back and replays them when
    /// it resumes; a chooser simply cannot choose them until then).
    pub fn step_chosen(&mut self, choice: Choice) -> Result<(), NotEnabled> {
        if !self.enabled().iter().any(|e| e.choice == choice) {
            return Err(NotEnabled(choice));
        }
        self.run_choice(choice);
        Ok(())
    }

    /// [`Simulation::step_chosen`] for a choice the caller took from [`Simulation::enabled`]
    /// of this very state, so that it need not be checked again (the search expands every
    /// state this way, and the check costs a second listing of the queue).
    pub(crate) fn run_choice(&mut self, choice: Choice) {
        let now = self.state.now;
        let budget = &mut self.fault_budget;
        let fault = match choice {
            Choice::Run(slot) => {
                let slot = slot as usize;
                // Cancelled timers ahead of everything else leave the queue as the default
                // scheduler drops them, so that choosing the earliest event leaves the queue
                // as `step` does.
                while let Some(first) = self.queue.next_slot() {
                    if first == slot || !self.is_cancelled_timer(first) {
                        break;
                    }
                    self.queue.take(first);
                }
                let (time, event) = self.queue.take(slot).expect("checked above");
                self.run_event(time.max(now), event);
                return;
            }
            Choice::Drop(slot) => {
                budget.drops -= 1;
                let (time, event) = self.queue.take(slot as usize).expect("checked above");
                self.lose_next = true;
                self.run_event(time.max(now), event);
                return;
            }
            Choice::Duplicate(slot) => {
                budget.duplicates -= 1;
                let (time, event) = self.queue.take(slot as usize).expect("checked above");
                let copy = match &event {
                    Event::Deliver {
                        from,
                        to,
                        sent,
                        msg,
                        origin,
                        msg_hash,
                    } => Event::Deliver {
                        from: *from,
                        to: *to,
                        sent: *sent,
                        msg: msg.clone(),
                        origin: Origin::new(origin.step(), true),
                        msg_hash: *msg_hash,
                    },
                    _ => unreachable!("only deliveries are duplicated"),
                };
                self.push(time, copy);
                self.state.stats.duplicated += 1;
                self.run_event(time.max(now), event);
                return;
            }
            Choice::Crash(node) => {
                budget.crashes -= 1;
                Fault::Crash(node.0)
            }
            Choice::Restart(node) => Fault::Restart(node.0),
            Choice::Isolate(node) => {
                budget.partitions -= 1;
                Fault::Isolate(node.0)
            }
            Choice::Heal => Fault::Heal,
        };
        self.run_event(now, Event::Fault(FaultEvent::Chosen(fault)));
    }

    /// From now on, steps are taken as [`crate::explore`] takes them. Random runs never use this.
    ///
    /// - A message the same as one already waiting (same sender, recipient and content) is not
    ///   queued again: copies of one message in flight count once. A protocol that resends on
    ///   a timer would otherwise pile up copies without end when time is free, since the timer
    ///   may fire any number of times before the first copy arrives.
    /// - A client's answer or timeout for a send it no longer waits on (the operation ended,
    ///   or a later try superseded that send) leaves the queue. Running it would change nothing,
    ///   now or later, but as a choice it would double the states: each state once with it
    ///   waiting and once without, and a run whose only waiting events are such leftovers
    ///   would never count as finished.
    /// - Each waiting message keeps its hash.
    pub fn explore_mode(&mut self) {
        self.exploring = true;
        let waiting = self
            .queue
            .events_mut()
            .chain(self.backlogs.iter_mut().flatten());
        for event in waiting {
            if let Event::Deliver { msg, msg_hash, .. } = event {
                *msg_hash = stable_hash(msg);
            }
        }
        for client in 0..self.clients.len() {
            self.drop_stale_client_events(ClientId(client as u32));
        }
    }

    /// Whether a message from `from` to `to` whose content hashes to `msg_hash` waits in the
    /// queue (in explore mode, where waiting messages keep their hash).
    pub(super) fn waits(&self, from: NodeId, to: NodeId, msg_hash: u64) -> bool {
        self.queue.events().any(|event| {
            matches!(event, Event::Deliver { from: f, to: t, msg_hash: h, .. }
                if *f == from && *t == to && *h == msg_hash)
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

    /// Whether a message, request or reply waits to be delivered by the stop time to a node
    /// that is not paused: one held until its node has started counts too.
    fn message_in_flight(&self) -> bool {
        self.queue.unordered().any(|(time, slot)| {
            time <= self.config.stop
                && self.is_live(slot)
                && matches!(
                    self.queue.get(slot),
                    Some(Event::Deliver { .. } | Event::Request { .. } | Event::Reply { .. })
                )
        })
    }

    /// Whether the event in `slot` is a timer its node cancelled.
    fn is_cancelled_timer(&self, slot: usize) -> bool {
        matches!(self.queue.get(slot), Some(Event::Timer { node, id })
            if !self.state.nodes[node.index()].timers.contains(*id))
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
