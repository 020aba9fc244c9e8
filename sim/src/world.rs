//! The world a simulation runs: every node's state, durable store, timers and clock, the
//! network, the client history and the counts so far. [`World`] is the read-only view of it
//! that invariants and the TUI get; the engine (`simulation`) owns and changes it.

use crate::history::History;
use crate::network::{Network, Reachability};
use crate::node::{Node, NodeId, TimerId};
use crate::rng::SimRng;
use crate::share::Shareable;
use crate::time::Time;
use serde::Serialize;

/// A node's liveness.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum NodeStatus {
    /// Running.
    Up,
    /// Frozen; events wait until it resumes.
    Paused,
    /// Down; only its durable store exists.
    Crashed,
    /// Not a member yet: absent at start and not joined.
    Absent,
    /// Running, and asked to leave: it has not exited yet.
    Leaving,
    /// Left the cluster; it may join again as a new member.
    Left,
}

impl NodeStatus {
    /// Whether the node is down: crashed, or not a member.
    pub fn is_down(self) -> bool {
        matches!(
            self,
            NodeStatus::Crashed | NodeStatus::Absent | NodeStatus::Left
        )
    }

    /// A short lowercase label: `up`, `paused`, `down`, `absent`, `leaving`, `left`.
    pub fn label(self) -> &'static str {
        match self {
            NodeStatus::Up => "up",
            NodeStatus::Paused => "paused",
            NodeStatus::Crashed => "down",
            NodeStatus::Absent => "absent",
            NodeStatus::Leaving => "leaving",
            NodeStatus::Left => "left",
        }
    }
}

/// Whether a node belongs to the cluster.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Presence {
    /// A member (up, paused or crashed).
    #[default]
    Member,
    /// Absent at start, not joined yet.
    Absent,
    /// Asked to leave and not exited yet (crashed or not).
    Leaving,
    /// Exited after leaving.
    Left,
}

impl Presence {
    /// Whether the node is in the cluster (a leaving node still is until it exits).
    pub(crate) fn is_member(self) -> bool {
        matches!(self, Presence::Member | Presence::Leaving)
    }
}

#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Clock {
    /// Added to the reading (`ClockSkew`).
    pub(crate) offset_us: i64,
    /// Rate error of the timers alone (`ClockSkew`).
    pub(crate) drift_ppm: i32,
    /// Rate error of the clock itself, reading and timers (`ClockDrift`), since `rate_since`.
    pub(crate) rate_ppm: i32,
    /// When the current rate error began.
    pub(crate) rate_since: Time,
    /// How far earlier rate errors had moved the reading by `rate_since`.
    pub(crate) drifted_us: i64,
}

impl Clock {
    /// The node's reading of virtual time `real`.
    pub(crate) fn local(self, real: Time) -> Time {
        // Most clocks are true: no arithmetic on the hot path.
        if self.offset_us == 0 && self.rate_ppm == 0 && self.drifted_us == 0 {
            return real;
        }
        let us = i128::from(real.as_micros())
            + i128::from(self.offset_us)
            + i128::from(self.drifted_by(real));
        Time::from_micros(us.clamp(0, i128::from(u64::MAX)) as u64)
    }

    /// How far rate errors have moved the reading by virtual time `real`.
    fn drifted_by(self, real: Time) -> i64 {
        if self.rate_ppm == 0 {
            return self.drifted_us;
        }
        let elapsed = i128::from(real.as_micros().saturating_sub(self.rate_since.as_micros()));
        let moved = elapsed * i128::from(self.rate_ppm) / 1_000_000;
        (i128::from(self.drifted_us) + moved).clamp(i128::from(i64::MIN), i128::from(i64::MAX))
            as i64
    }

    /// From `now` on, the clock runs `rate_ppm` parts per million fast (or slow, negative):
    /// what it has drifted so far stays in its reading.
    pub(crate) fn set_rate(&mut self, now: Time, rate_ppm: i32) {
        self.drifted_us = self.drifted_by(now);
        self.rate_since = now;
        self.rate_ppm = rate_ppm;
    }

    /// How much virtual time passes while this clock measures `local`.
    pub(crate) fn real_delay(self, local: Time) -> Time {
        let ppm = self.drift_ppm.saturating_add(self.rate_ppm);
        if ppm == 0 {
            return local;
        }
        let rate = (1_000_000i128 + i128::from(ppm)).max(1);
        let real = i128::from(local.as_micros()) * 1_000_000 / rate;
        Time::from_micros(real.clamp(0, i128::from(u64::MAX)) as u64)
    }
}

/// One node as the engine holds it.
#[derive(Debug)]
pub(crate) struct NodeSlot<P: Node> {
    /// `None` while crashed. Shared with snapshots; cloned on the first write after one.
    pub(crate) state: Option<Shareable<P>>,
    pub(crate) durable: Shareable<P::Durable>,
    pub(crate) paused: bool,
    pub(crate) presence: Presence,
    pub(crate) timers: Timers<P::Timer>,
    pub(crate) clock: Clock,
    pub(crate) rng: SimRng,
    pub(crate) net_rng: SimRng,
}

impl<P: Node> Clone for NodeSlot<P> {
    fn clone(&self) -> Self {
        NodeSlot {
            state: self.state.clone(),
            durable: self.durable.clone(),
            paused: self.paused,
            presence: self.presence,
            timers: self.timers.clone(),
            clock: self.clock,
            rng: self.rng.clone(),
            net_rng: self.net_rng.clone(),
        }
    }

    /// Keeps the state and store this slot already shares with `source` (see
    /// `Simulation::refill_from`).
    fn clone_from(&mut self, source: &Self) {
        let NodeSlot {
            state,
            durable,
            paused,
            presence,
            timers,
            clock,
            rng,
            net_rng,
        } = source;
        self.state.clone_from(state);
        self.durable.clone_from(durable);
        self.paused = *paused;
        self.presence = *presence;
        self.timers.clone_from(timers);
        self.clock = *clock;
        self.rng.clone_from(rng);
        self.net_rng.clone_from(net_rng);
    }
}

/// A node's armed timers, by id: a vector sorted by id rather than a map. A node arms a few
/// at a time, ids only grow (so arming one appends it), and a copy fills the vector it already
/// has, where a copied map allocates its nodes: a search copies every node's timers for every
/// step it tries.
#[derive(Debug)]
pub(crate) struct Timers<T>(Vec<(TimerId, T)>);

impl<T> Timers<T> {
    pub(crate) fn new() -> Timers<T> {
        Timers(Vec::new())
    }

    fn find(&self, id: TimerId) -> Result<usize, usize> {
        self.0.binary_search_by_key(&id, |(armed, _)| *armed)
    }

    /// Whether timer `id` is armed.
    pub(crate) fn contains(&self, id: TimerId) -> bool {
        self.find(id).is_ok()
    }

    /// Arms timer `id`, replacing one armed under the same id.
    pub(crate) fn insert(&mut self, id: TimerId, timer: T) {
        match self.find(id) {
            Ok(at) => self.0[at].1 = timer,
            Err(at) => self.0.insert(at, (id, timer)),
        }
    }

    /// Disarms timer `id`; what it was armed with, if it was.
    pub(crate) fn remove(&mut self, id: TimerId) -> Option<T> {
        let at = self.find(id).ok()?;
        Some(self.0.remove(at).1)
    }

    /// Disarms every timer.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The armed timers, by id.
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, timer)| timer)
    }
}

impl<T: Clone> Clone for Timers<T> {
    fn clone(&self) -> Self {
        Timers(self.0.clone())
    }

    fn clone_from(&mut self, source: &Self) {
        self.0.clone_from(&source.0);
    }
}

/// Everything that makes up the world at one instant (the engine's queue, clients and
/// bookkeeping aside).
#[derive(Debug)]
pub(crate) struct WorldState<P: Node> {
    pub(crate) now: Time,
    pub(crate) nodes: Vec<NodeSlot<P>>,
    pub(crate) network: Network,
    /// Shared with snapshots of the world until the next operation changes it.
    pub(crate) history: Shareable<History<P::Request, P::Response>>,
    pub(crate) stats: Stats,
    /// Nodes whose durable store was written in the current step.
    pub(crate) durable_writes: Vec<NodeId>,
    /// Whose state the current step may have changed.
    pub(crate) changed: Changed,
    /// When the last scheduled fault happens and the nemesis stops.
    pub(crate) faults_over_at: Time,
}

impl<P: Node> Clone for WorldState<P> {
    fn clone(&self) -> Self {
        WorldState {
            now: self.now,
            nodes: self.nodes.clone(),
            network: self.network.clone(),
            history: self.history.clone(),
            stats: self.stats.clone(),
            durable_writes: self.durable_writes.clone(),
            changed: self.changed,
            faults_over_at: self.faults_over_at,
        }
    }

    /// Copies into the buffers this world already has (see `Simulation::refill_from`).
    fn clone_from(&mut self, source: &Self) {
        let WorldState {
            now,
            nodes,
            network,
            history,
            stats,
            durable_writes,
            changed,
            faults_over_at,
        } = source;
        self.now = *now;
        self.nodes.clone_from(nodes);
        self.network.clone_from(network);
        self.history.clone_from(history);
        self.stats.clone_from(stats);
        self.durable_writes.clone_from(durable_writes);
        self.changed = *changed;
        self.faults_over_at = *faults_over_at;
    }
}

/// Whose state (in memory or durable) a step may have changed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum Changed {
    /// Nobody's: a client step, or a message lost on arrival.
    #[default]
    Nothing,
    /// Only this node's: its handler ran, and handlers touch only their own node.
    Only(NodeId),
    /// Anyone's: a fault (a crash wipes a node, a restart rebuilds one).
    Everything,
}

impl<P: Node> WorldState<P> {
    /// A node's liveness.
    pub(crate) fn status(&self, id: NodeId) -> NodeStatus {
        let slot = &self.nodes[id.index()];
        match (slot.presence, &slot.state, slot.paused) {
            (Presence::Absent, _, _) => NodeStatus::Absent,
            (Presence::Left, _, _) => NodeStatus::Left,
            (_, None, _) => NodeStatus::Crashed,
            (_, Some(_), true) => NodeStatus::Paused,
            (Presence::Leaving, Some(_), false) => NodeStatus::Leaving,
            (Presence::Member, Some(_), false) => NodeStatus::Up,
        }
    }
}

/// A read-only view of the world, for invariants and the TUI.
pub struct World<'a, P: Node> {
    state: &'a WorldState<P>,
}

impl<'a, P: Node> World<'a, P> {
    /// The view of `state`.
    pub(crate) fn new(state: &'a WorldState<P>) -> World<'a, P> {
        World { state }
    }
    /// Virtual time now.
    pub fn now(&self) -> Time {
        self.state.now
    }
    /// Steps taken so far.
    pub fn step(&self) -> u64 {
        self.state.stats.steps
    }
    /// Cluster size.
    pub fn cluster_size(&self) -> u32 {
        self.state.nodes.len() as u32
    }
    /// A node's state, or `None` while it is crashed.
    pub fn node(&self, id: NodeId) -> Option<&'a P> {
        self.state.nodes[id.index()].state.as_deref()
    }
    /// Every node that is not crashed, in order.
    pub fn live_nodes(&self) -> impl Iterator<Item = (NodeId, &'a P)> + 'a {
        self.live_among(0..self.state.nodes.len())
    }
    /// The live nodes with indexes in `range`, in order.
    fn live_among(
        &self,
        range: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (NodeId, &'a P)> + 'a {
        self.state.nodes[range.clone()]
            .iter()
            .zip(range)
            .filter_map(|(s, i)| s.state.as_deref().map(|p| (NodeId(i as u32), p)))
    }
    /// A node's durable store (present whether it is up or not).
    pub fn durable(&self, id: NodeId) -> &'a P::Durable {
        &self.state.nodes[id.index()].durable
    }
    /// A node's liveness.
    pub fn status(&self, id: NodeId) -> NodeStatus {
        self.state.status(id)
    }
    /// The partition state.
    pub fn reachability(&self) -> &'a Reachability {
        &self.state.network.reach
    }
    /// The client history so far.
    pub fn history(&self) -> &'a History<P::Request, P::Response> {
        &self.state.history
    }
    /// When the last scheduled fault happens and the nemesis stops (eventually-invariants are
    /// checked from then on).
    pub fn faults_over_at(&self) -> Time {
        self.state.faults_over_at
    }
    /// The nodes that wrote their durable store in the last step. Invariants over durable
    /// state need only look again when this is not empty.
    pub fn durable_writes(&self) -> &'a [NodeId] {
        &self.state.durable_writes
    }
    /// Whose state the last step may have changed.
    pub fn changed(&self) -> Changed {
        self.state.changed
    }
    /// The live nodes whose state the last step may have changed: what an invariant over
    /// node states that held before the step needs to look at again.
    pub fn changed_live_nodes(&self) -> impl Iterator<Item = (NodeId, &'a P)> + 'a {
        // One node is looked up, not searched for: a step of a thousand-node cluster should
        // not cost a thousand.
        self.live_among(match self.state.changed {
            Changed::Nothing => 0..0,
            Changed::Only(only) => only.index()..only.index() + 1,
            Changed::Everything => 0..self.state.nodes.len(),
        })
    }
}

/// Message and event counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Steps taken.
    pub steps: u64,
    /// Virtual time at the end.
    pub end_time: Time,
    /// Messages nodes sent.
    pub messages_sent: u64,
    /// Messages delivered (duplicates included).
    pub messages_delivered: u64,
    /// Messages lost to partitions (at send or in flight).
    pub dropped_partition: u64,
    /// Messages lost at random.
    pub dropped_loss: u64,
    /// Messages that arrived at a crashed node, or at one that is not a member.
    pub dropped_crashed: u64,
    /// Extra copies the network made.
    pub duplicated: u64,
    /// Timers that fired.
    pub timers_fired: u64,
    /// Client requests sent (retries included).
    pub client_requests: u64,
}

impl Stats {
    /// Every message lost, whatever the reason.
    pub fn messages_dropped(&self) -> u64 {
        self.dropped_partition + self.dropped_loss + self.dropped_crashed
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn a_drifting_clock_reads_ahead_and_its_timers_follow() {
        let mut clock = Clock::default();
        assert_eq!(clock.local(Time::from_millis(10)), Time::from_millis(10));
        // 10% fast from 1 s on: 2 s later it reads 200 ms ahead.
        clock.set_rate(Time::from_secs(1), 100_000);
        assert_eq!(clock.local(Time::from_secs(1)), Time::from_secs(1));
        assert_eq!(clock.local(Time::from_secs(3)), Time::from_millis(3_200));
        // A timer of 110 ms on this clock fires after 100 ms of true time.
        assert_eq!(
            clock.real_delay(Time::from_millis(110)),
            Time::from_millis(100)
        );
        // Stopping the drift keeps what it gained; an offset adds to it.
        clock.set_rate(Time::from_secs(3), 0);
        clock.offset_us = -50_000;
        assert_eq!(clock.local(Time::from_secs(5)), Time::from_millis(5_150));
        assert_eq!(clock.real_delay(Time::from_millis(7)), Time::from_millis(7));
        // Slow clocks read behind.
        let mut slow = Clock::default();
        slow.set_rate(Time::ZERO, -500_000);
        assert_eq!(slow.local(Time::from_secs(4)), Time::from_secs(2));
        assert_eq!(slow.real_delay(Time::from_secs(1)), Time::from_secs(2));
    }
}

#[cfg(test)]
mod timer_tests {
    use super::Timers;
    use crate::node::TimerId;
    use std::collections::BTreeMap;

    #[test]
    fn timers_agree_with_a_map_and_a_copy_over_another_equals_its_source() {
        let mut timers = Timers::new();
        let mut reference = BTreeMap::new();
        let mut copy = Timers::new();
        let mut state = 11u64;
        for step in 0..5_000u64 {
            let draw = crate::rng::splitmix64(&mut state);
            // Mostly new ids, as nodes arm them; some re-armed, removed or cleared.
            let id = TimerId(if draw.is_multiple_of(3) {
                draw % 8
            } else {
                step
            });
            match draw % 7 {
                0..=2 => {
                    timers.insert(id, step);
                    reference.insert(id, step);
                }
                3..=5 => assert_eq!(timers.remove(id), reference.remove(&id)),
                _ if draw % 50 == 6 => {
                    timers.clear();
                    reference.clear();
                }
                _ => {}
            }
            assert_eq!(timers.contains(id), reference.contains_key(&id));
            assert!(timers.values().eq(reference.values()));
            copy.clone_from(&timers);
            assert!(copy.values().eq(reference.values()));
        }
    }
}
