//! Raft's safety properties (Figure 3 of the paper), checked from outside the servers, plus
//! linearizability of the client history and the liveness checks that apply once faults end.

use super::log::{KvState, RaftDurable, Snapshot};
use super::{Command, Raft, RaftConfig, Role};
use crate::kv;
use serde_json::json;
use simlab_sim::{Invariant, InvariantKind, NodeId, NodeStatus, Time, World};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How long after faults end a committed entry may take to reach every live server.
pub const SETTLE: Time = Time::from_secs(1);

/// Every Raft invariant that applies under these settings (SnapshotSafety only where
/// snapshots are taken).
pub fn all(config: &RaftConfig) -> Vec<Box<dyn Invariant<Raft>>> {
    let snapshots = config.snapshot_every > 0;
    let mut all: Vec<Box<dyn Invariant<Raft>>> = vec![
        Box::new(ElectionSafety::default()),
        Box::new(LogMatching::default()),
        Box::new(LeaderCompleteness::default()),
        Box::new(StateMachineSafety::default()),
        Box::new(LeaderAppendOnly::default()),
        Box::new(kv::Linearizable::default()),
        Box::new(LeaderExists::default()),
        Box::new(AllApplied::default()),
        Box::new(LeaderElected),
        Box::new(EntryCommitted),
        Box::new(LeaderChanged::default()),
    ];
    if snapshots {
        all.push(Box::new(SnapshotSafety::default()));
    }
    all
}

fn term(world: &World<'_, Raft>, id: NodeId) -> u64 {
    world.durable(id).current_term
}

/// At most one leader per term, over the whole run (§5.2).
#[derive(Clone, Default)]
pub struct ElectionSafety {
    leaders: BTreeMap<u64, (NodeId, Time)>,
    /// The last (term, leader) looked up.
    last: Option<(u64, NodeId)>,
}

impl Invariant<Raft> for ElectionSafety {
    fn name(&self) -> &str {
        "ElectionSafety"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        // A server becomes leader only in its own handler: the others were looked at before.
        for (id, node) in world.changed_live_nodes() {
            if node.role() != Role::Leader {
                continue;
            }
            let t = term(world, id);
            if self.last == Some((t, id)) {
                continue; // The leader it was at its last step: nothing new.
            }
            self.last = Some((t, id));
            let (first, _) = *self.leaders.entry(t).or_insert((id, world.now()));
            if first != id {
                return Err(format!("term {t} has two leaders: {first} and {id}"));
            }
        }
        Ok(())
    }
    fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        let elections: Vec<serde_json::Value> = self
            .leaders
            .iter()
            .map(|(t, (n, at))| json!({"term": t, "leader": n.0, "at_us": at.as_micros()}))
            .collect();
        vec![
            ("leaders_elected", json!(self.leaders.len())),
            ("elections", json!(elections)),
        ]
    }
}

/// Reads each server's log journal from where it left off.
#[derive(Clone, Default)]
struct LogCursor {
    read: Vec<usize>,
}

impl LogCursor {
    /// The first index `id`'s log rewrote since the last look, if it changed at all.
    fn changed(&mut self, world: &World<'_, Raft>, id: NodeId) -> Option<u64> {
        self.read.resize(world.cluster_size() as usize, 0);
        let journal = world.durable(id).log.journal();
        let read = &mut self.read[id.index()];
        let first = journal[*read..].iter().min().copied();
        *read = journal.len();
        first
    }
}

/// If two logs hold an entry with the same index and term, the logs are identical up to there.
///
/// Checked inductively: when a log changes from index `k`, each changed entry that shares its
/// term with another log's entry at that index must equal it, and so must the previous entries'
/// terms (earlier entries were checked when they were written).
#[derive(Clone, Default)]
pub struct LogMatching {
    cursor: LogCursor,
}

impl Invariant<Raft> for LogMatching {
    fn name(&self) -> &str {
        "LogMatching"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        // A log changes only in a durable write.
        for &a in world.durable_writes() {
            let Some(from) = self.cursor.changed(world, a) else {
                continue;
            };
            let log_a = &world.durable(a).log;
            for b in (0..world.cluster_size()).map(NodeId).filter(|&b| b != a) {
                let log_b = &world.durable(b).log;
                let last = log_a.last_index().min(log_b.last_index());
                // Compacted entries are in the snapshots, which SnapshotSafety checks.
                let first = from.max(log_a.first_index()).max(log_b.first_index());
                for i in first..=last {
                    if log_a.term_at(i) != log_b.term_at(i) {
                        continue;
                    }
                    let same_entry = log_a.get(i) == log_b.get(i);
                    let same_before = log_a.term_at(i - 1) == log_b.term_at(i - 1);
                    if !same_entry || !same_before {
                        return Err(format!(
                            "{a} and {b} both hold an entry of term {} at index {i}, but their logs differ {}",
                            log_a.term_at(i),
                            if same_entry { "before it" } else { "there" }
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// An entry committed in a term is in the log of every leader of a later term (§5.4).
///
/// "Committed in term T" means committed while the server that first reports it was in term T
/// (a leader counting replicas, or a follower told by the leader of T). A stale leader of an
/// earlier term, elected before the commit, is not bound by it.
#[derive(Clone, Default)]
pub struct LeaderCompleteness {
    /// Committed entries as first seen, by index: (entry term, commit term, reported by).
    committed: Vec<(u64, u64, NodeId)>,
    /// Leaders already checked against everything committed before them, by term.
    checked: BTreeMap<u64, NodeId>,
}

impl LeaderCompleteness {
    fn missing(&self, world: &World<'_, Raft>, leader: NodeId, from: usize) -> Option<String> {
        let t = term(world, leader);
        let log = &world.durable(leader).log;
        for (i, &(entry_term, commit_term, by)) in self.committed.iter().enumerate().skip(from) {
            let index = i as u64 + 1;
            if index < log.snapshot_index() {
                continue; // Compacted: SnapshotSafety checks what the snapshot holds.
            }
            if commit_term < t && log.term_at(index) != entry_term {
                return Some(format!(
                    "{leader} leads term {t} without the entry at index {index} (term {entry_term}) that {by} had committed in term {commit_term}"
                ));
            }
        }
        None
    }
}

impl Invariant<Raft> for LeaderCompleteness {
    fn name(&self) -> &str {
        "LeaderCompleteness"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        let known = self.committed.len();
        // Commit indexes move only in their servers' handlers.
        for (id, node) in world.changed_live_nodes() {
            let log = &world.durable(id).log;
            let commit = node.commit_index().min(log.last_index());
            while (self.committed.len() as u64) < commit {
                let index = self.committed.len() as u64 + 1;
                if !log.knows_term(index) {
                    break; // Compacted here; a server that still holds it reports it.
                }
                self.committed
                    .push((log.term_at(index), term(world, id), id));
            }
        }
        // Every leader was checked against what was committed before this step; look again at
        // all of them if more was committed, else only at a server that may have changed.
        let grew = self.committed.len() > known;
        let mut check = |id: NodeId, node: &Raft| {
            if node.role() != Role::Leader {
                return Ok(());
            }
            let t = term(world, id);
            let from = if self.checked.get(&t) == Some(&id) {
                known
            } else {
                self.checked.insert(t, id);
                0
            };
            match self.missing(world, id, from) {
                Some(problem) => Err(problem),
                None => Ok(()),
            }
        };
        if grew {
            world.live_nodes().try_for_each(|(id, node)| check(id, node))
        } else {
            world
                .changed_live_nodes()
                .try_for_each(|(id, node)| check(id, node))
        }
    }
}

/// The commands applied at each index, as servers apply them, read from their logs.
#[derive(Clone, Default)]
struct AppliedCommands {
    /// By index: (entry term, command, the first server seen applying it).
    applied: Vec<(u64, Arc<Command>, NodeId)>,
    /// Per server: how far it had applied at the last look.
    seen: Vec<u64>,
}

impl AppliedCommands {
    /// Records what each server applied since the last look; the error names a server that
    /// applied something other than what another server applied at that index.
    fn record(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        self.seen.resize(world.cluster_size() as usize, 0);
        // A server applies only in its own handler; a restart (a fault) makes every server
        // changed, so a reset to a lower applied index is seen.
        for (id, node) in world.changed_live_nodes() {
            let now = node.last_applied();
            let before = &mut self.seen[id.index()];
            if now < *before {
                *before = now; // Restarted: it applies from its snapshot (or the start) again.
            }
            let log = &world.durable(id).log;
            for index in *before + 1..=now {
                // Entries an installed snapshot brought are not in the log; SnapshotSafety
                // checks the snapshot instead.
                let Some(entry) = log.get(index) else {
                    continue;
                };
                match self.applied.get(index as usize - 1) {
                    Some((t, command, by)) if *t != entry.term || *command != entry.command => {
                        return Err(format!(
                            "{id} applied {:?} (term {}) at index {index}, but {by} applied {command:?} (term {t})",
                            entry.command, entry.term
                        ));
                    }
                    Some(_) => {}
                    None if index as usize == self.applied.len() + 1 => {
                        self.applied.push((entry.term, entry.command.clone(), id));
                    }
                    None => {}
                }
            }
            self.seen[id.index()] = now;
        }
        Ok(())
    }
}

/// No two servers apply different commands at the same index (§5.4.3).
#[derive(Clone, Default)]
pub struct StateMachineSafety {
    applied: AppliedCommands,
}

impl Invariant<Raft> for StateMachineSafety {
    fn name(&self) -> &str {
        "StateMachineSafety"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        self.applied.record(world)
    }
    fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![("entries_applied", json!(self.applied.applied.len()))]
    }
}

/// Compaction loses nothing and invents nothing (§7): every server's snapshot ends at an entry
/// that was applied, with that entry's term, and holds exactly the state machine that replaying
/// the applied commands up to there gives (the store and the client sessions).
#[derive(Clone, Default)]
pub struct SnapshotSafety {
    applied: AppliedCommands,
    /// Per server: the snapshot `(last index, last term)` checked last.
    checked: Vec<(u64, u64)>,
    /// The replayed state machine after some indexes (those of snapshots checked).
    replays: BTreeMap<u64, KvState>,
}

impl SnapshotSafety {
    fn check_snapshot(&mut self, id: NodeId, snapshot: &Snapshot) -> Result<(), String> {
        let (index, term) = (snapshot.last_index, snapshot.last_term);
        let applied = &self.applied.applied;
        if index as usize > applied.len() {
            return Err(format!(
                "{id}'s snapshot through index {index} covers entries no server has applied (applied so far: {})",
                applied.len()
            ));
        }
        let entry_term = applied[index as usize - 1].0;
        if entry_term != term {
            return Err(format!(
                "{id}'s snapshot ends at index {index} with term {term}, but the entry applied there has term {entry_term}"
            ));
        }
        let (from, mut state) = match self.replays.range(..=index).next_back() {
            Some((&i, state)) => (i, state.clone()),
            None => (0, KvState::default()),
        };
        for (_, command, _) in &applied[from as usize..index as usize] {
            if let Command::Client { client, seq, op } = &**command {
                state.apply(*client, *seq, op, false);
            }
        }
        if state != snapshot.state {
            let differs = state
                .kv
                .iter()
                .find(|(k, v)| snapshot.state.kv.get(*k) != Some(v))
                .map(|(k, v)| {
                    format!(
                        "key {k:?} is {:?} in the snapshot, {v:?} replayed",
                        snapshot.state.kv.get(k)
                    )
                })
                .unwrap_or_else(|| "the stores or the client sessions differ".into());
            return Err(format!(
                "{id}'s snapshot through index {index} differs from replaying the applied log: {differs}"
            ));
        }
        self.replays.insert(index, state);
        Ok(())
    }
}

impl Invariant<Raft> for SnapshotSafety {
    fn name(&self) -> &str {
        "SnapshotSafety"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        // Disagreements between servers are StateMachineSafety's to report.
        let _ = self.applied.record(world);
        let n = world.cluster_size() as usize;
        self.checked.resize(n, (0, 0));
        for i in 0..n {
            let id = NodeId(i as u32);
            let Some(snapshot) = &world.durable(id).snapshot else {
                continue;
            };
            let key = (snapshot.last_index, snapshot.last_term);
            if self.checked[i] == key {
                continue;
            }
            self.checked[i] = key;
            self.check_snapshot(id, snapshot)?;
        }
        // Servers' snapshots only move forward: older replays are not needed again.
        let oldest = self.checked.iter().map(|c| c.0).min().unwrap_or(0);
        while self.replays.len() > 1 && self.replays.first_key_value().is_some_and(|(&i, _)| i < oldest) {
            self.replays.pop_first();
        }
        Ok(())
    }
}

/// A leader never overwrites or deletes entries in its log; it only appends (§5.3).
#[derive(Clone, Default)]
pub struct LeaderAppendOnly {
    read: Vec<usize>,
    length: Vec<u64>,
}

impl Invariant<Raft> for LeaderAppendOnly {
    fn name(&self) -> &str {
        "LeaderAppendOnly"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        let n = world.cluster_size() as usize;
        self.read.resize(n, 0);
        self.length.resize(n, 0);
        // A log changes only with a durable write.
        for &id in world.durable_writes() {
            let i = id.index();
            let journal = world.durable(id).log.journal();
            let leads = world.node(id).is_some_and(|r| r.role() == Role::Leader);
            for &changed in &journal[self.read[i]..] {
                if changed == self.length[i] + 1 {
                    self.length[i] = changed;
                    continue;
                }
                if leads {
                    return Err(format!(
                        "{id}, leader of term {}, rewrote its log from index {changed} (it had {})",
                        term(world, id),
                        self.length[i]
                    ));
                }
                self.length[i] = changed.saturating_sub(1);
            }
            self.read[i] = journal.len();
            // Installing a snapshot may cut the log to the snapshot's end: start from the truth.
            self.length[i] = world.durable(id).log.last_index();
        }
        Ok(())
    }
}

fn leader(world: &World<'_, Raft>) -> Option<NodeId> {
    let highest = world.live_nodes().map(|(id, _)| term(world, id)).max()?;
    world
        .live_nodes()
        .find(|(id, r)| r.role() == Role::Leader && term(world, *id) == highest)
        .map(|(id, _)| id)
}

/// How soon after the last fault a leader must be elected.
pub const ELECTION_DEADLINE: Time = Time::from_secs(5);

/// Eventually: once faults end, a leader of the highest term is elected within
/// [`ELECTION_DEADLINE`], and from then on one is never missing for more than [`SETTLE`]
/// (an unreliable network may still force an occasional election).
#[derive(Clone, Default)]
pub struct LeaderExists {
    first: Option<Time>,
    last_seen: Option<Time>,
}

impl Invariant<Raft> for LeaderExists {
    fn name(&self) -> &str {
        "LeaderExists"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        let now = world.now();
        let since = world.faults_over_at();
        if leader(world).is_some() {
            self.first.get_or_insert(now);
            self.last_seen = Some(now);
        }
        let down = (0..world.cluster_size())
            .filter(|&i| world.status(NodeId(i)) != NodeStatus::Up)
            .count();
        match (self.first, self.last_seen) {
            (None, _) if now - since > ELECTION_DEADLINE => Err(format!(
                "no leader elected within {ELECTION_DEADLINE} of the last fault ({down} of {} servers not up)",
                world.cluster_size()
            )),
            (Some(first), _) if first - since > ELECTION_DEADLINE => Err(format!(
                "the first leader after the faults took {}",
                first - since
            )),
            (Some(_), Some(seen)) if now - seen > SETTLE => Err(format!(
                "no leader for the last {} ({down} servers not up)",
                now - seen
            )),
            _ => Ok(()),
        }
    }
}

/// Eventually: every live server applies every entry committed more than [`SETTLE`] ago.
#[derive(Clone, Default)]
pub struct AllApplied {
    /// When each new highest commit index was first seen.
    commits: Vec<(Time, u64)>,
}

impl Invariant<Raft> for AllApplied {
    fn name(&self) -> &str {
        "AllApplied"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        let now = world.now();
        let highest = world
            .live_nodes()
            .map(|(_, r)| r.commit_index())
            .max()
            .unwrap_or(0);
        if self.commits.last().is_none_or(|(_, c)| *c < highest) {
            self.commits.push((now, highest));
        }
        let Some(&(_, target)) = self.commits.iter().rev().find(|(at, _)| now - *at > SETTLE)
        else {
            return Ok(());
        };
        for (id, r) in world.live_nodes() {
            if world.status(id) == NodeStatus::Up && r.last_applied() < target {
                return Err(format!(
                    "{id} has applied {} entries, but {target} were committed more than {SETTLE} ago",
                    r.last_applied()
                ));
            }
        }
        Ok(())
    }
}

/// Sometimes: a leader was elected.
#[derive(Clone)]
pub struct LeaderElected;

impl Invariant<Raft> for LeaderElected {
    fn name(&self) -> &str {
        "LeaderElected"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Sometimes
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        leader(world).map(|_| ()).ok_or_else(|| "no leader".into())
    }
}

/// Sometimes: a client entry was committed.
#[derive(Clone)]
pub struct EntryCommitted;

impl Invariant<Raft> for EntryCommitted {
    fn name(&self) -> &str {
        "EntryCommitted"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Sometimes
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        let committed = world.live_nodes().any(|(id, r)| {
            let log = &world.durable(id).log;
            (1..=r.commit_index())
                .any(|i| matches!(log.get(i).map(|e| &*e.command), Some(Command::Client { .. })))
        });
        if committed {
            Ok(())
        } else {
            Err("no client entry committed".into())
        }
    }
}

/// Sometimes: leadership changed hands (a second leader, in a later term).
#[derive(Clone, Default)]
pub struct LeaderChanged {
    first: Option<(u64, NodeId)>,
}

impl Invariant<Raft> for LeaderChanged {
    fn name(&self) -> &str {
        "LeaderChanged"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Sometimes
    }
    fn check(&mut self, world: &World<'_, Raft>) -> Result<(), String> {
        let Some(id) = leader(world) else {
            return Err("no leader".into());
        };
        let now = (term(world, id), id);
        match self.first {
            None => {
                self.first = Some(now);
                Err("only the first leader so far".into())
            }
            Some(first) if first.0 == now.0 => Err("still the first leader".into()),
            Some(_) => Ok(()),
        }
    }
}

/// A durable store's summary, for reports.
pub fn highest_term<'a>(durables: impl Iterator<Item = &'a RaftDurable>) -> u64 {
    durables.map(|d| d.current_term).max().unwrap_or(0)
}
