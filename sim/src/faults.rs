//! Faults: what can go wrong, when, and the random nemesis that picks for you.
//!
//! A scenario lists [`ScheduledFault`]s at fixed times and may add a [`NemesisConfig`], which
//! injects random faults (each later repaired) from its own seeded stream. Whatever the nemesis
//! does is recorded as a plain, timed [`FaultRecord`] in the outcome, so a failing run can be
//! written back as an explicit schedule and shrunk.

use crate::load::FieldError;
use crate::node::NodeId;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One fault or repair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Split the nodes into groups that cannot talk to each other. Nodes listed in no group
    /// form one more group together.
    Partition(Vec<Vec<u32>>),
    /// Cut every link to and from one node.
    Isolate(u32),
    /// Cut every link to and from whichever node leads now (no-op without a leader). Of several
    /// nodes that believe they lead, the one with the highest leadership epoch.
    IsolateLeader,
    /// Messages from `from` to `to` are lost; the other direction still works.
    CutOneWay {
        /// Sender whose messages are lost.
        from: u32,
        /// Receiver that no longer hears from `from`.
        to: u32,
    },
    /// Two sides that can only talk through the bridge node.
    Bridge {
        /// One side.
        left: Vec<u32>,
        /// The other side.
        right: Vec<u32>,
        /// The node that reaches both.
        bridge: u32,
    },
    /// Restore every link.
    Heal,
    /// Stop a node: its volatile state and timers are lost; messages to it are dropped.
    Crash(u32),
    /// Crash whichever node leads now, as for `IsolateLeader` (no-op without a leader).
    CrashLeader,
    /// Rebuild a crashed node from its durable store.
    Restart(u32),
    /// Freeze a node (a long GC pause, SIGSTOP): events for it wait until it resumes.
    Pause(u32),
    /// Pause whichever node leads now, as for `IsolateLeader` (no-op without a leader).
    PauseLeader,
    /// Unfreeze a paused node; what waited is handled now, in order.
    Resume(u32),
    /// Skew a node's clock: its `now()` is off by `offset_ms`, and its timers run `drift_ppm`
    /// parts per million fast (positive: they fire early) or slow (negative: late).
    ClockSkew {
        /// The node.
        node: u32,
        /// Offset added to its clock reading.
        offset_ms: i64,
        /// Rate error of its timers.
        drift_ppm: i32,
    },
    /// Restore every clock, resume every paused node, restart every crashed one, heal the network.
    RepairAll,
    // New variants go last: a variant's position is part of the trace hash.
    /// Cut every link to and from the lowest-numbered live node that does not lead and, when
    /// the protocol numbers leaderships, can talk with the leader.
    IsolateFollower,
    /// Crash the follower `IsolateFollower` would pick.
    CrashFollower,
    /// From now on, a node's clock runs `drift_ppm` parts per million fast (positive) or slow
    /// (negative): what its `now()` reads drifts away from true time, and its timers follow
    /// it. Unlike `ClockSkew`'s drift, which changes only timer speeds, this moves the reading:
    /// a lease measured on a fast clock ends early. `drift_ppm: 0` stops the drift (what the
    /// clock gained stays; `RepairAll` resets it).
    ClockDrift {
        /// The node.
        node: u32,
        /// Rate error of its clock.
        drift_ppm: i32,
    },
    /// A node that is not a member (absent at start, or left) joins: it is built from the
    /// protocol's factory and its start handler runs over its durable store (empty for a node
    /// absent at start, as it was left for one that left).
    Join(u32),
    /// Ask a member to leave gracefully: its leave handler runs, and it stays up until it
    /// exits ([`crate::Ctx::exit`]); the default handler exits at once.
    Leave(u32),
}

impl Fault {
    /// Every node this fault names explicitly.
    pub fn named_nodes(&self) -> Vec<u32> {
        match self {
            Fault::Partition(groups) => groups.iter().flatten().copied().collect(),
            Fault::Bridge {
                left,
                right,
                bridge,
            } => left.iter().chain(right).copied().chain([*bridge]).collect(),
            Fault::CutOneWay { from, to } => vec![*from, *to],
            Fault::Isolate(n)
            | Fault::Crash(n)
            | Fault::Restart(n)
            | Fault::Pause(n)
            | Fault::Resume(n)
            | Fault::ClockSkew { node: n, .. }
            | Fault::ClockDrift { node: n, .. }
            | Fault::Join(n)
            | Fault::Leave(n) => vec![*n],
            Fault::IsolateLeader
            | Fault::IsolateFollower
            | Fault::CrashFollower
            | Fault::CrashLeader
            | Fault::PauseLeader
            | Fault::Heal
            | Fault::RepairAll => vec![],
        }
    }

    /// Whether this fault cuts links (so availability is reported per side while it lasts).
    pub fn is_partition(&self) -> bool {
        matches!(
            self,
            Fault::Partition(_)
                | Fault::Isolate(_)
                | Fault::IsolateLeader
                | Fault::IsolateFollower
                | Fault::CutOneWay { .. }
                | Fault::Bridge { .. }
        )
    }

    /// Checks the fault against a cluster of `nodes`; the error names the rule broken.
    pub fn validate(&self, nodes: u32) -> Result<(), String> {
        for n in self.named_nodes() {
            if n >= nodes {
                return Err(format!(
                    "node {n} does not exist: the cluster has {nodes} nodes, numbered 0 to {}",
                    nodes - 1
                ));
            }
        }
        match self {
            Fault::Partition(groups) => {
                let mut seen = vec![false; nodes as usize];
                for n in groups.iter().flatten() {
                    if std::mem::replace(&mut seen[*n as usize], true) {
                        return Err(format!("node {n} is in more than one partition group"));
                    }
                }
                if let Some(i) = groups.iter().position(Vec::is_empty) {
                    return Err(format!("group {i} is empty: list at least one node in it"));
                }
                // Nodes in no group form one more group.
                let effective = groups.len() + usize::from(seen.iter().any(|&s| !s));
                if effective < 2 {
                    return Err(format!(
                        "{groups:?} leaves every node in one group: a partition needs at least two"
                    ));
                }
            }
            Fault::Bridge {
                left,
                right,
                bridge,
            } => {
                if left.contains(bridge) || right.contains(bridge) {
                    return Err(format!("bridge node {bridge} must not be on either side"));
                }
                if left.iter().any(|n| right.contains(n)) {
                    return Err("a node is on both sides of the bridge".into());
                }
                if left.is_empty() || right.is_empty() {
                    return Err("both sides of a bridge need at least one node".into());
                }
            }
            Fault::CutOneWay { from, to } if from == to => {
                return Err(format!(
                    "CutOneWay from {from} to itself: a node always reaches itself"
                ));
            }
            Fault::ClockSkew {
                offset_ms,
                drift_ppm,
                ..
            } => {
                if offset_ms.unsigned_abs() > 86_400_000 {
                    return Err(format!("clock offset {offset_ms} ms is more than a day"));
                }
                check_drift(*drift_ppm)?;
            }
            Fault::ClockDrift { drift_ppm, .. } => check_drift(*drift_ppm)?,
            _ => {}
        }
        Ok(())
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition(groups) => {
                let groups: Vec<String> = groups.iter().map(|g| node_list(g)).collect();
                write!(f, "partition [{}]", groups.join(", "))
            }
            Fault::Isolate(n) => write!(f, "isolate n{n}"),
            Fault::IsolateLeader => f.write_str("isolate the leader"),
            Fault::IsolateFollower => f.write_str("isolate a follower"),
            Fault::CutOneWay { from, to } => write!(f, "cut n{from} -> n{to}"),
            Fault::Bridge {
                left,
                right,
                bridge,
            } => {
                write!(
                    f,
                    "bridge {} <- n{bridge} -> {}",
                    node_list(left),
                    node_list(right)
                )
            }
            Fault::Heal => f.write_str("heal"),
            Fault::Crash(n) => write!(f, "crash n{n}"),
            Fault::CrashLeader => f.write_str("crash the leader"),
            Fault::CrashFollower => f.write_str("crash a follower"),
            Fault::Restart(n) => write!(f, "restart n{n}"),
            Fault::Pause(n) => write!(f, "pause n{n}"),
            Fault::PauseLeader => f.write_str("pause the leader"),
            Fault::Resume(n) => write!(f, "resume n{n}"),
            Fault::ClockSkew {
                node,
                offset_ms,
                drift_ppm,
            } => {
                write!(f, "skew n{node} clock by {offset_ms} ms, {drift_ppm} ppm")
            }
            Fault::RepairAll => f.write_str("repair all"),
            Fault::ClockDrift { node, drift_ppm } => {
                write!(f, "drift n{node} clock by {drift_ppm} ppm")
            }
            Fault::Join(n) => write!(f, "n{n} joins"),
            Fault::Leave(n) => write!(f, "n{n} leaves"),
        }
    }
}

/// Node numbers as a list, runs of three or more as ranges (`[0-499, 600]`), so a fault on
/// a 1,000-node cluster fits on a line.
fn node_list(ids: &[u32]) -> String {
    let parts: Vec<String> = consecutive_runs(ids)
        .into_iter()
        .flat_map(|(first, last)| {
            if last - first >= 2 {
                vec![format!("{first}-{last}")]
            } else {
                (first..=last).map(|n| n.to_string()).collect()
            }
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Runs of consecutive numbers in `ids`, as (first, last), in order.
pub fn consecutive_runs(ids: &[u32]) -> Vec<(u32, u32)> {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &id in ids {
        match runs.last_mut() {
            Some((_, last)) if last.checked_add(1) == Some(id) => *last = id,
            _ => runs.push((id, id)),
        }
    }
    runs
}

/// Node names as ranges, runs of three or more shortened: `n0-n499 n600 n601`.
pub fn node_ranges(ids: &[NodeId]) -> String {
    let ids: Vec<u32> = ids.iter().map(|n| n.0).collect();
    let parts: Vec<String> = consecutive_runs(&ids)
        .into_iter()
        .flat_map(|(first, last)| {
            if last - first >= 2 {
                vec![format!("n{first}-n{last}")]
            } else {
                (first..=last).map(|n| format!("n{n}")).collect()
            }
        })
        .collect();
    parts.join(" ")
}

/// A clock rate error must stay within ±50%, so a drifting clock still moves forward.
fn check_drift(drift_ppm: i32) -> Result<(), String> {
    if (-500_000..=500_000).contains(&drift_ppm) {
        Ok(())
    } else {
        Err(format!(
            "drift {drift_ppm} ppm is out of range: -500000 to 500000 (±50%)"
        ))
    }
}

/// A fault at a fixed time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    /// When, in milliseconds of virtual time.
    pub at_ms: u64,
    /// What.
    pub fault: Fault,
}

/// Kinds of fault the nemesis may choose from.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NemesisKind {
    /// A random split into two sides (often majority/minority).
    Partition,
    /// Isolate one random node.
    Isolate,
    /// Isolate the current leader.
    IsolateLeader,
    /// Cut one random link in one direction.
    CutOneWay,
    /// Bridge: two sides joined by one node.
    Bridge,
    /// Crash a random node, restart it when the fault is repaired.
    Crash,
    /// Crash the current leader.
    CrashLeader,
    /// Pause a random node, resume it when repaired.
    Pause,
    /// Skew a random node's clock.
    ClockSkew,
    /// Pause the current leader (for a lock, its holder), resume that node when repaired.
    PauseLeader,
    /// Make a random node's clock run fast or slow (up to 10%), stop the drift when repaired.
    ClockDrift,
    /// Membership churn: a random node leaves if it is a member, or joins if it is not, and
    /// the repair undoes it.
    Churn,
}

impl NemesisKind {
    /// Every kind, in order.
    pub const ALL: [NemesisKind; 12] = [
        NemesisKind::Partition,
        NemesisKind::Isolate,
        NemesisKind::IsolateLeader,
        NemesisKind::CutOneWay,
        NemesisKind::Bridge,
        NemesisKind::Crash,
        NemesisKind::CrashLeader,
        NemesisKind::Pause,
        NemesisKind::ClockSkew,
        NemesisKind::PauseLeader,
        NemesisKind::ClockDrift,
        NemesisKind::Churn,
    ];
}

/// The random nemesis: one fault at a time, each repaired after a while.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisConfig {
    /// The kinds to choose from, uniformly.
    pub kinds: Vec<NemesisKind>,
    /// Quiet time before each fault, drawn uniformly in this range (milliseconds).
    pub interval_ms: (u64, u64),
    /// How long each fault lasts before it is repaired (milliseconds).
    pub duration_ms: (u64, u64),
    /// When the nemesis starts (milliseconds).
    #[serde(default)]
    pub start_ms: u64,
    /// When it stops: the last fault is repaired by then, and "eventually" invariants are
    /// judged from then on. Leave a quiet period before the scenario's stop time.
    pub end_ms: u64,
}

impl NemesisConfig {
    /// Checks the ranges; the error names the field and the rule.
    pub fn validate(&self, nodes: u32) -> Result<(), FieldError> {
        let field = |name: &str, rule: String| Err(FieldError::new(name, rule));
        if self.kinds.is_empty() {
            return field(
                "kinds",
                "the nemesis needs at least one kind of fault".into(),
            );
        }
        for (name, (lo, hi)) in [
            ("interval_ms", self.interval_ms),
            ("duration_ms", self.duration_ms),
        ] {
            if lo > hi {
                return field(
                    name,
                    format!("({lo}, {hi}): the lower bound is above the upper"),
                );
            }
            if hi == 0 {
                return field(name, "must allow a positive time".into());
            }
        }
        if self.end_ms < self.start_ms {
            return field(
                "end_ms",
                format!("{} is before start_ms {}", self.end_ms, self.start_ms),
            );
        }
        let needs_two = [
            NemesisKind::Partition,
            NemesisKind::CutOneWay,
            NemesisKind::Isolate,
        ];
        if nodes < 2 && self.kinds.iter().any(|k| needs_two.contains(k)) {
            return field("kinds", "network faults need at least two nodes".into());
        }
        if nodes < 3 && self.kinds.contains(&NemesisKind::Bridge) {
            return field("kinds", "a bridge needs at least three nodes".into());
        }
        Ok(())
    }
}

/// A fault as it actually happened in a run, with concrete nodes: "the leader" is resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    /// When it happened.
    pub at: Time,
    /// What happened, with every node named.
    pub fault: Fault,
    /// True when the nemesis chose it, false when the scenario scheduled it.
    pub random: bool,
    /// Set when the fault did nothing, and why (e.g. "no leader").
    pub skipped: Option<String>,
}

/// Turns node numbers into ids.
pub(crate) fn node_ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().copied().map(NodeId).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_node_lists_are_shown_as_ranges() {
        let half: Vec<u32> = (0..500).collect();
        assert_eq!(
            Fault::Partition(vec![half, vec![500, 501, 700]]).to_string(),
            "partition [[0-499], [500, 501, 700]]"
        );
        assert_eq!(
            Fault::Bridge {
                left: vec![0, 1, 2, 4],
                right: vec![6, 5],
                bridge: 3
            }
            .to_string(),
            "bridge [0-2, 4] <- n3 -> [6, 5]"
        );
    }

    #[test]
    fn validation_catches_impossible_faults() {
        assert!(
            Fault::Crash(7)
                .validate(5)
                .unwrap_err()
                .contains("node 7 does not exist")
        );
        assert!(
            Fault::Partition(vec![vec![0, 1], vec![1, 2]])
                .validate(3)
                .is_err()
        );
        assert!(Fault::Partition(vec![vec![0, 1, 2]]).validate(3).is_err());
        assert!(
            Fault::Partition(vec![]).validate(3).is_err(),
            "no cut at all"
        );
        assert!(Fault::Partition(vec![vec![], vec![]]).validate(3).is_err());
        assert!(Fault::Partition(vec![vec![0], vec![]]).validate(3).is_err());
        let empty_bridge = Fault::Bridge {
            left: vec![],
            right: vec![2],
            bridge: 1,
        };
        assert!(empty_bridge.validate(3).is_err());
        assert!(
            Fault::Partition(vec![vec![0, 1]]).validate(3).is_ok(),
            "node 2 forms a group"
        );
        assert!(Fault::CutOneWay { from: 1, to: 1 }.validate(3).is_err());
        assert!(
            Fault::ClockSkew {
                node: 0,
                offset_ms: 0,
                drift_ppm: 900_000
            }
            .validate(3)
            .is_err()
        );
        assert!(
            Fault::Bridge {
                left: vec![0],
                right: vec![2],
                bridge: 0
            }
            .validate(3)
            .is_err()
        );
        assert!(Fault::Heal.validate(1).is_ok());
    }

    #[test]
    fn nemesis_validation_names_the_field() {
        let mut n = NemesisConfig {
            kinds: vec![NemesisKind::Crash],
            interval_ms: (100, 50),
            duration_ms: (10, 20),
            start_ms: 0,
            end_ms: 1_000,
        };
        assert_eq!(n.validate(3).unwrap_err().field, "interval_ms");
        n.interval_ms = (10, 20);
        assert!(n.validate(3).is_ok());
        n.kinds = vec![NemesisKind::Bridge];
        assert_eq!(n.validate(2).unwrap_err().field, "kinds");
    }
}
