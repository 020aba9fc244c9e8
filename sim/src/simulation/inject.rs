//! Fault injection: scheduled faults and the random nemesis, "the leader" resolved to a node,
//! and what each fault does to the world.

use super::Simulation;
use super::queue::{Event, FaultEvent};
use crate::faults::{Fault, FaultRecord, NemesisConfig, NemesisKind, node_ids};
use crate::node::{Node, NodeId};
use crate::rng::{self, SimRng};
use crate::share::Shareable;
use crate::time::Time;
use crate::trace::{StepInfo, summary};
use crate::world::{Clock, Presence};

impl<P: Node> Simulation<P> {
    pub(super) fn nemesis_interval(&mut self, nemesis: &NemesisConfig) -> Time {
        let (lo, hi) = nemesis.interval_ms;
        Time::from_millis(rng::between(&mut self.fault_rng, lo, hi))
    }

    /// The node "the leader" means: of the live nodes that believe they lead, the one with the
    /// highest leadership epoch (ties to the lowest id), or the lowest-numbered one when the
    /// protocol reports no epochs.
    pub(super) fn leader(&self) -> Option<NodeId> {
        let world = self.world();
        let mut leaders = world.live_nodes().filter(|(_, p)| p.is_leader());
        let first = leaders.next()?;
        let epoch = |(id, p): (NodeId, &P)| p.leader_epoch(world.durable(id));
        let mut best = (first.0, epoch(first));
        for leader in leaders {
            let e = epoch(leader);
            if e > best.1 {
                best = (leader.0, e);
            }
        }
        Some(best.0)
    }

    /// The node "a follower" means: the lowest-numbered live node that does not lead and can
    /// exchange messages with the leader (so the fault takes a node the cluster is using), or,
    /// when none can, the lowest-numbered one that does not lead. Without epochs, the latter.
    fn follower(&self, leader: Option<NodeId>) -> Option<NodeId> {
        let world = self.world();
        let followers = || world.live_nodes().filter(|(_, p)| !p.is_leader());
        let connected = leader.filter(|&l| {
            let node = world.node(l).expect("the leader is live");
            node.leader_epoch(world.durable(l)).is_some()
        });
        if let Some(l) = connected {
            let reach = world.reachability();
            if let Some((id, _)) =
                followers().find(|&(id, _)| reach.can_reach(l, id) && reach.can_reach(id, l))
            {
                return Some(id);
            }
        }
        followers().next().map(|(id, _)| id)
    }

    pub(super) fn handle_fault(&mut self, event: FaultEvent, info: &mut StepInfo, full: bool) {
        match event {
            FaultEvent::Scheduled(i) => {
                let fault = self.config.faults[i].fault.clone();
                self.inject(fault, false, info, full);
            }
            FaultEvent::Chosen(fault) => self.inject(fault, false, info, full),
            FaultEvent::NemesisRepair(_) | FaultEvent::NemesisNothingToRepair => {
                match event {
                    FaultEvent::NemesisRepair(fault) => self.inject(fault, true, info, full),
                    _ if full => {
                        self.detail_mut().summary =
                            "the nemesis's last fault did nothing: nothing to repair".into()
                    }
                    _ => {}
                }
                let nemesis = self.config.nemesis.clone().expect("nemesis configured");
                let next = self.state.now + self.nemesis_interval(&nemesis);
                if next < Time::from_millis(nemesis.end_ms) {
                    self.push(next, Event::Fault(FaultEvent::NemesisInject));
                }
            }
            FaultEvent::NemesisInject => {
                let nemesis = self.config.nemesis.clone().expect("nemesis configured");
                let end = Time::from_millis(nemesis.end_ms);
                let kind = nemesis.kinds
                    [rng::below(&mut self.fault_rng, nemesis.kinds.len() as u64) as usize];
                let (fault, repair) = self.draw_fault(kind);
                let (lo, hi) = nemesis.duration_ms;
                let duration = Time::from_millis(rng::between(&mut self.fault_rng, lo, hi));
                self.inject(fault, true, info, full);
                let repair = if kind == NemesisKind::PauseLeader {
                    // Resume the holder this pause froze, and nothing else (a `RepairAll` would
                    // also reset clocks and restart nodes other faults took down).
                    match self.fault_log.last() {
                        Some(FaultRecord {
                            fault: Fault::Pause(n),
                            skipped: None,
                            ..
                        }) => FaultEvent::NemesisRepair(Fault::Resume(*n)),
                        _ => FaultEvent::NemesisNothingToRepair,
                    }
                } else {
                    FaultEvent::NemesisRepair(repair)
                };
                let repair_at = (self.state.now + duration).min(end);
                self.push(repair_at, Event::Fault(repair));
            }
        }
    }

    /// A random fault of this kind and the fault that undoes it.
    pub(super) fn draw_fault(&mut self, kind: NemesisKind) -> (Fault, Fault) {
        let n = self.config.nodes;
        let rng = &mut self.fault_rng;
        let mut shuffled: Vec<u32> = (0..n).collect();
        let any = |rng: &mut SimRng| rng::below(rng, u64::from(n)) as u32;
        match kind {
            NemesisKind::Partition => {
                rng::shuffle(rng, &mut shuffled);
                let cut = 1 + rng::below(rng, u64::from(n) - 1) as usize;
                let (a, b) = shuffled.split_at(cut);
                let (mut a, mut b) = (a.to_vec(), b.to_vec());
                a.sort_unstable();
                b.sort_unstable();
                (Fault::Partition(vec![a, b]), Fault::Heal)
            }
            NemesisKind::Isolate => (Fault::Isolate(any(rng)), Fault::Heal),
            NemesisKind::IsolateLeader => (Fault::IsolateLeader, Fault::Heal),
            NemesisKind::CutOneWay => {
                let from = any(rng);
                let to = (from + 1 + rng::below(rng, u64::from(n) - 1) as u32) % n;
                (Fault::CutOneWay { from, to }, Fault::Heal)
            }
            NemesisKind::Bridge => {
                rng::shuffle(rng, &mut shuffled);
                let bridge = shuffled[0];
                let rest = &shuffled[1..];
                let cut = 1 + rng::below(rng, rest.len() as u64 - 1) as usize;
                let (mut left, mut right) = (rest[..cut].to_vec(), rest[cut..].to_vec());
                left.sort_unstable();
                right.sort_unstable();
                (
                    Fault::Bridge {
                        left,
                        right,
                        bridge,
                    },
                    Fault::Heal,
                )
            }
            NemesisKind::Crash => {
                let node = any(rng);
                (Fault::Crash(node), Fault::Restart(node))
            }
            NemesisKind::CrashLeader => (Fault::CrashLeader, Fault::RepairAll),
            // Resumes every paused node: the holder paused is resolved only when the pause
            // happens.
            NemesisKind::PauseLeader => (Fault::PauseLeader, Fault::RepairAll),
            NemesisKind::ClockDrift => {
                let node = any(rng);
                let drift_ppm = rng::between(rng, 0, 200_000) as i32 - 100_000;
                (
                    Fault::ClockDrift { node, drift_ppm },
                    Fault::ClockDrift { node, drift_ppm: 0 },
                )
            }
            NemesisKind::Pause => {
                let node = any(rng);
                (Fault::Pause(node), Fault::Resume(node))
            }
            NemesisKind::Churn => {
                let node = any(rng);
                if self.state.nodes[node as usize].presence.is_member() {
                    (Fault::Leave(node), Fault::Join(node))
                } else {
                    (Fault::Join(node), Fault::Leave(node))
                }
            }
            NemesisKind::ClockSkew => {
                let node = any(rng);
                let offset_ms = rng::between(rng, 0, 1_000) as i64 - 500;
                let drift_ppm = rng::between(rng, 0, 200_000) as i32 - 100_000;
                (
                    Fault::ClockSkew {
                        node,
                        offset_ms,
                        drift_ppm,
                    },
                    Fault::ClockSkew {
                        node,
                        offset_ms: 0,
                        drift_ppm: 0,
                    },
                )
            }
        }
    }

    /// Applies a fault, resolving "the leader", and records it.
    pub(super) fn inject(&mut self, fault: Fault, random: bool, info: &mut StepInfo, full: bool) {
        let leader = self.leader();
        let follower = self.follower(leader);
        let resolved = match (&fault, leader, follower) {
            (Fault::IsolateLeader, Some(l), _) => Fault::Isolate(l.0),
            (Fault::CrashLeader, Some(l), _) => Fault::Crash(l.0),
            (Fault::PauseLeader, Some(l), _) => Fault::Pause(l.0),
            (Fault::IsolateFollower, _, Some(f)) => Fault::Isolate(f.0),
            (Fault::CrashFollower, _, Some(f)) => Fault::Crash(f.0),
            _ => fault,
        };
        let skipped = self.apply_fault(&resolved, info);
        if resolved.is_partition() && skipped.is_none() {
            self.partitions_injected += 1;
        }
        self.trace(&resolved);
        if full {
            self.detail_mut().summary = summary::fault(&resolved, skipped.as_deref());
            self.detail_mut().payload = serde_json::to_value(&resolved).unwrap_or_default();
        }
        self.fault_log.push(FaultRecord {
            at: self.state.now,
            fault: resolved,
            random,
            skipped,
        });
    }

    /// Does what the fault says. Returns why it did nothing, if it did nothing.
    pub(super) fn apply_fault(&mut self, fault: &Fault, info: &mut StepInfo) -> Option<String> {
        self.side_cache = None;
        let reach = &mut self.state.network.reach;
        let now = self.state.now;
        match fault {
            Fault::Partition(groups) => {
                let groups: Vec<_> = groups.iter().map(|g| node_ids(g)).collect();
                reach.split(&groups, now);
            }
            Fault::Isolate(n) => reach.isolate(NodeId(*n), now),
            Fault::CutOneWay { from, to } => reach.cut_one_way(NodeId(*from), NodeId(*to), now),
            Fault::Bridge {
                left,
                right,
                bridge,
            } => {
                reach.bridge(&node_ids(left), &node_ids(right), NodeId(*bridge), now);
            }
            Fault::Heal => reach.heal(now),
            Fault::IsolateLeader | Fault::CrashLeader | Fault::PauseLeader => {
                return Some("no node leads now".into());
            }
            Fault::IsolateFollower | Fault::CrashFollower => {
                return Some("every live node leads".into());
            }
            Fault::Crash(n) => {
                let slot = &mut self.state.nodes[*n as usize];
                if !slot.presence.is_member() {
                    return Some(format!("n{n} is not a member"));
                }
                if slot.state.is_none() {
                    return Some(format!("n{n} is already down"));
                }
                slot.state = None;
                slot.timers.clear();
                slot.paused = false;
                self.drop_backlog(NodeId(*n));
                info.node = Some(NodeId(*n));
            }
            Fault::Restart(n) => return self.restart(NodeId(*n), info),
            Fault::Pause(n) => {
                let slot = &mut self.state.nodes[*n as usize];
                if slot.state.is_none() || slot.paused {
                    return Some(format!("n{n} is not running"));
                }
                slot.paused = true;
                info.node = Some(NodeId(*n));
            }
            Fault::Resume(n) => return self.resume(NodeId(*n)),
            Fault::ClockSkew {
                node,
                offset_ms,
                drift_ppm,
            } => {
                let clock = &mut self.state.nodes[*node as usize].clock;
                clock.offset_us = offset_ms * 1_000;
                clock.drift_ppm = *drift_ppm;
            }
            Fault::ClockDrift { node, drift_ppm } => {
                self.state.nodes[*node as usize]
                    .clock
                    .set_rate(now, *drift_ppm);
            }
            Fault::Join(n) => return self.join(NodeId(*n), info),
            Fault::Leave(n) => return self.leave(NodeId(*n), info),
            Fault::RepairAll => {
                reach.heal(now);
                for i in 0..self.config.nodes {
                    self.state.nodes[i as usize].clock = Clock::default();
                    let _ = self.resume(NodeId(i));
                    let _ = self.restart(NodeId(i), info);
                }
            }
        }
        None
    }

    pub(super) fn restart(&mut self, id: NodeId, info: &mut StepInfo) -> Option<String> {
        let slot = &self.state.nodes[id.index()];
        if !slot.presence.is_member() {
            return Some(format!("{id} is not a member"));
        }
        if slot.state.is_some() {
            return Some(format!("{id} is not down"));
        }
        // Rebuilt from the factory: nothing volatile survives; on_start reads the durable store.
        self.state.nodes[id.index()].state = Some(Shareable::new((self.factory)(id)));
        info.node = Some(id);
        self.run_handler(id, |node, ctx| node.on_start(ctx));
        // A request to leave outlives a crash: the node is asked again.
        if self.state.nodes[id.index()].presence == Presence::Leaving
            && self.state.nodes[id.index()].state.is_some()
        {
            self.run_handler(id, |node, ctx| node.on_leave(ctx));
        }
        None
    }

    /// A node that is not a member joins: built from the factory and started over its durable
    /// store, empty for a node absent at start and as it was for one that left. Whether a
    /// returning member keeps or discards what its store still holds is the protocol's call;
    /// the engine never erases a disk (so a protocol with a fixed membership sees a leave and
    /// a join as a long crash, and its checkers can rely on stores that only grow).
    fn join(&mut self, id: NodeId, info: &mut StepInfo) -> Option<String> {
        let slot = &mut self.state.nodes[id.index()];
        if slot.presence.is_member() {
            return Some(format!("{id} is already a member"));
        }
        slot.presence = Presence::Member;
        slot.state = Some(Shareable::new((self.factory)(id)));
        info.node = Some(id);
        self.run_handler(id, |node, ctx| node.on_start(ctx));
        None
    }

    /// Asks a running member to leave: its leave handler decides when it exits.
    fn leave(&mut self, id: NodeId, info: &mut StepInfo) -> Option<String> {
        let slot = &mut self.state.nodes[id.index()];
        match slot.presence {
            Presence::Absent | Presence::Left => return Some(format!("{id} is not a member")),
            Presence::Leaving => return Some(format!("{id} is already leaving")),
            Presence::Member => {}
        }
        if slot.paused {
            // A frozen process cannot be asked anything; the request is not queued for it.
            return Some(format!("{id} is paused"));
        }
        slot.presence = Presence::Leaving;
        info.node = Some(id);
        // A crashed member is asked when it restarts.
        if slot.state.is_some() {
            self.run_handler(id, |node, ctx| node.on_leave(ctx));
        }
        None
    }

    pub(super) fn resume(&mut self, id: NodeId) -> Option<String> {
        let slot = &mut self.state.nodes[id.index()];
        if !slot.paused {
            return Some(format!("{id} is not paused"));
        }
        slot.paused = false;
        // What waited runs now, in the order it arrived.
        let backlog = self.backlogs.get_mut(id.index()).map(std::mem::take);
        for event in backlog.unwrap_or_default() {
            self.push(self.state.now, event);
        }
        None
    }
}
