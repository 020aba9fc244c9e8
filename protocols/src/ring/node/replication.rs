//! Replicas: each key lives on its first `replicas` distinct members clockwise (its owners,
//! the primary first).
//!
//! **Writes** go to the node that serves the key (the primary, or during a handoff whichever of
//! the old and new primary the handoff rule names): it is the key's only writer, so versions
//! never fork. It applies the write, sends the entry to the other owners and answers once a
//! write quorum W of them holds that version or a newer one.
//!
//! **Reads** are coordinated by any owner: it asks the owners for their copies, waits for a read
//! quorum R, takes the newest, and before answering makes sure a write quorum holds it, writing
//! it back if not (as in Attiya, Bar-Noy and Dolev's register). Without the write-back, two
//! reads in a row could see a new value and then an old one while a write is in flight. With
//! R + W > replicas every read quorum meets every write quorum, so a read sees every
//! acknowledged write; with R + W ≤ replicas it may not, and the linearizability checker says so.
//!
//! **During a handoff** a node counts two sets of owners, those of the previous configuration and
//! those of the current one, and needs a quorum of each, until the authority tells it the current
//! configuration is complete (every member and every leaver has settled it). A write counted in
//! both sets is found by a reader that counts either; a read that counts only the old owners can
//! happen only before the configuration is complete, while every write still counts them too.
//! The new primary takes over serving through the single-owner handshake (`Finish` closes the
//! old primary); new backups copy their arcs from the old primary and receive every write made
//! while they copy. A copy nobody owns any more is deleted when the configuration is complete.
//!
//! **Anti-entropy**: an acknowledged write may have reached only W owners. At a complete
//! configuration each backup sends, in turn, each primary it backs up the versions it holds of
//! that primary's keys; the primary answers with what is missing or older, so every owner
//! converges to the same copy.

use super::{
    AUTHORITY, Entry, Incoming, Outgoing, Pull, RingBug, RingDurable, RingMsg, RingNode,
};
use crate::kv::{KvOp, KvResponse};
use crate::ring::hash_ring::{Ring, key_point};
use simlab_sim::{Ctx, NodeId, ReplyTo};
use std::collections::{BTreeMap, BTreeSet};

/// Retry ticks a coordinator keeps an operation before dropping it (the client has retried).
const PENDING_TICKS: u32 = 25;

/// Anti-entropy runs every this many retry ticks.
const SYNC_EVERY: u64 = 4;

/// An operation waiting for its quorums.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    reply_to: ReplyTo,
    key: String,
    phase: Phase,
    ticks_left: u32,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Collecting copies, by owner.
    Reading(BTreeMap<u32, Option<Entry>>),
    /// Waiting until a write quorum holds `entry`'s version: the owners known to hold it.
    ///
    /// The coordinator answers at the quorum and keeps sending the entry to the other owners
    /// until they all hold it (or it gives up), so owners converge without waiting for
    /// anti-entropy.
    Writing {
        entry: Entry,
        held: BTreeSet<u32>,
        answer: Option<KvResponse>,
    },
}

/// Stores `entry` unless the copy held is as new.
fn merge(d: &mut RingDurable, key: &str, entry: Entry) {
    if d.store.get(key).is_none_or(|mine| mine.version < entry.version) {
        d.store.insert(key.to_string(), entry);
    }
}

/// Whether each set has `quorum` members (or all, if it is smaller) in `have`.
fn quorums_met(sets: &[Vec<u32>], quorum: usize, have: impl Fn(u32) -> bool) -> bool {
    sets.iter()
        .all(|set| set.iter().filter(|&&m| have(m)).count() >= quorum.min(set.len()))
}

impl RingNode {
    /// This node's handoffs with replicas: every new owner copies the arc from the old
    /// primary, and a new primary also closes it.
    pub(super) fn replicated_handoffs(
        &self,
        before: &Ring,
        after: &Ring,
    ) -> (Vec<Incoming>, Vec<Outgoing>) {
        let r = self.config.replicas as usize;
        let me = self.id;
        let (mut incoming, mut outgoing) = (Vec::new(), Vec::new());
        for t in (self.transfers)(before, after, r) {
            for (range, from, to) in Ring::split_by_owners(before, after, t.range, r) {
                let (Some(&old), Some(&new)) = (from.first(), to.first()) else {
                    continue;
                };
                let gains = !from.contains(&me) && to.contains(&me);
                let takes_over = me == new && new != old;
                if gains || takes_over {
                    incoming.push(Incoming {
                        range,
                        from: old,
                        state: Pull::Fetching(None),
                        closes: takes_over,
                    });
                }
                if me == old && new != old {
                    outgoing.push(Outgoing {
                        range,
                        to: new,
                        closed: false,
                        released: false,
                    });
                }
            }
        }
        (incoming, outgoing)
    }

    /// The owner sets a quorum must be found in: the current owners and, until this node
    /// knows the configuration is complete, the previous ones.
    pub(crate) fn owner_sets(&self, key: &str, d: &RingDurable) -> Vec<Vec<u32>> {
        let r = self.config.replicas as usize;
        let point = key_point(key);
        let now = self.ring.owners(point, r);
        let joint = d.complete < d.config.number
            && d.previous.number > 0
            && !self.config.has(RingBug::NewOwnersOnlyDuringHandoff);
        if joint {
            let before = self.previous_ring.owners(point, r);
            let mut a = now.clone();
            let mut b = before.clone();
            a.sort_unstable();
            b.sort_unstable();
            if a != b {
                return vec![now, before];
            }
        }
        vec![now]
    }

    /// Whether this node keeps a copy of `key` now.
    pub(crate) fn owns(&self, key: &str, d: &RingDurable) -> bool {
        !self.is_authority() && self.owner_sets(key, d).iter().any(|s| s.contains(&self.id))
    }

    /// Deletes the copies this node no longer owns (with replicas; without, handoffs delete).
    pub(super) fn tidy(&mut self, ctx: &mut Ctx<'_, Self>) {
        if !self.config.replicated() {
            return;
        }
        let d = ctx.durable();
        let gone: Vec<String> = d
            .store
            .keys()
            .filter(|k| !self.owns(k, d))
            .cloned()
            .collect();
        if gone.is_empty() {
            return;
        }
        ctx.note_with(|| format!("deletes {} copies it no longer owns", gone.len()));
        let d = ctx.durable_mut();
        for key in gone {
            d.store.remove(&key);
        }
    }

    /// A client request, with replicas.
    pub(super) fn request_replicated(
        &mut self,
        reply_to: ReplyTo,
        op: KvOp,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let key = op.key().to_string();
        let route = self.route(&key, ctx.durable());
        if let KvOp::Get(_) = op
            && (route.is_ok() || self.owns(&key, ctx.durable()))
        {
            self.start(reply_to, key, Phase::Reading(BTreeMap::new()), ctx);
            return;
        }
        match route {
            Ok(()) => {
                let answer = self.serve(reply_to, &op, ctx);
                let entry = ctx.durable().store.get(&key).cloned().unwrap_or_default();
                let phase = Phase::Writing {
                    entry,
                    held: BTreeSet::new(),
                    answer: Some(answer),
                };
                self.start(reply_to, key, phase, ctx);
            }
            Err(redirect) => ctx.reply(reply_to, redirect),
        }
    }

    fn start(&mut self, reply_to: ReplyTo, key: String, phase: Phase, ctx: &mut Ctx<'_, Self>) {
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending.insert(
            tag,
            Pending {
                reply_to,
                key,
                phase,
                ticks_left: PENDING_TICKS,
            },
        );
        self.ask_owners(tag, ctx);
        self.evaluate(tag, ctx);
    }

    /// Sends an operation's query or copy to every owner that has not answered.
    fn ask_owners(&mut self, tag: u64, ctx: &mut Ctx<'_, Self>) {
        let Some(p) = self.pending.get(&tag) else {
            return;
        };
        let owners: BTreeSet<u32> = self
            .owner_sets(&p.key, ctx.durable())
            .into_iter()
            .flatten()
            .filter(|&m| m != self.id)
            .collect();
        for m in owners {
            let msg = match &p.phase {
                Phase::Reading(copies) if !copies.contains_key(&m) => RingMsg::Query {
                    tag,
                    key: p.key.clone(),
                },
                Phase::Writing { entry, held, .. } if !held.contains(&m) => RingMsg::Replicate {
                    tag,
                    key: p.key.clone(),
                    entry: entry.clone(),
                },
                _ => continue,
            };
            ctx.send(NodeId(m), msg);
        }
    }

    /// Moves an operation on if its quorums are in: a read to its answer or its write-back, a
    /// write to its answer.
    fn evaluate(&mut self, tag: u64, ctx: &mut Ctx<'_, Self>) {
        let Some(p) = self.pending.get(&tag) else {
            return;
        };
        let me = self.id;
        let d = ctx.durable();
        let sets = self.owner_sets(&p.key, d);
        let mine = d.store.get(&p.key);
        match &p.phase {
            Phase::Reading(copies) => {
                let answered = |m: u32| m == me || copies.contains_key(&m);
                if !quorums_met(&sets, self.config.read_quorum(), answered) {
                    return;
                }
                let newest = copies
                    .values()
                    .flatten()
                    .chain(mine)
                    .max_by_key(|e| e.version)
                    .cloned();
                let Some(newest) = newest else {
                    let reply_to = p.reply_to;
                    self.pending.remove(&tag);
                    ctx.reply(reply_to, KvResponse::Ok(Some(String::new())));
                    return;
                };
                let version = newest.version;
                let mut held: BTreeSet<u32> = copies
                    .iter()
                    .filter(|(_, e)| e.as_ref().is_some_and(|e| e.version >= version))
                    .map(|(&m, _)| m)
                    .collect();
                if mine.is_some_and(|e| e.version >= version) {
                    held.insert(me);
                }
                let answer = KvResponse::Ok(Some(newest.value.clone()));
                let skip = self.config.has(RingBug::SkipReadWriteBack);
                if skip || quorums_met(&sets, self.config.write_quorum(), |m| held.contains(&m)) {
                    let reply_to = p.reply_to;
                    self.pending.remove(&tag);
                    ctx.reply(reply_to, answer);
                    return;
                }
                // Write back before answering, so no later read can see an older value.
                let key = p.key.clone();
                if self.owns(&key, ctx.durable()) {
                    merge(ctx.durable_mut(), &key, newest.clone());
                }
                if let Some(p) = self.pending.get_mut(&tag) {
                    p.phase = Phase::Writing {
                        entry: newest,
                        held,
                        answer: Some(answer),
                    };
                }
                self.ask_owners(tag, ctx);
                self.evaluate(tag, ctx);
            }
            Phase::Writing { entry, held, .. } => {
                let mine_holds = mine.is_some_and(|e| e.version >= entry.version);
                let has = |m: u32| held.contains(&m) || (m == me && mine_holds);
                let everyone = sets.iter().flatten().all(|&m| has(m))
                    || (quorums_met(&sets, self.config.write_quorum(), has)
                        && self.config.has(RingBug::NoAntiEntropy));
                let quorum = quorums_met(&sets, self.config.write_quorum(), has);
                let reply_to = p.reply_to;
                let answer = match self.pending.get_mut(&tag).map(|p| &mut p.phase) {
                    Some(Phase::Writing { answer, .. }) if quorum => answer.take(),
                    _ => None,
                };
                if everyone {
                    self.pending.remove(&tag);
                }
                if let Some(answer) = answer {
                    ctx.reply(reply_to, answer);
                }
            }
        }
    }

    /// The replication messages.
    pub(super) fn on_replication_message(
        &mut self,
        from: NodeId,
        msg: RingMsg,
        ctx: &mut Ctx<'_, Self>,
    ) {
        match msg {
            RingMsg::Replicate { tag, key, entry } => {
                if !self.owns(&key, ctx.durable()) {
                    return;
                }
                merge(ctx.durable_mut(), &key, entry);
                let version = ctx.durable().store.get(&key).map_or(0, |e| e.version);
                ctx.send(from, RingMsg::Stored { tag, version });
            }
            RingMsg::Stored { tag, version } => {
                if let Some(Phase::Writing { entry, held, .. }) =
                    self.pending.get_mut(&tag).map(|p| &mut p.phase)
                    && version >= entry.version
                {
                    held.insert(from.0);
                    self.evaluate(tag, ctx);
                }
            }
            RingMsg::Query { tag, key } if self.owns(&key, ctx.durable()) => {
                let entry = ctx.durable().store.get(&key).cloned();
                ctx.send(from, RingMsg::Copy { tag, entry });
            }
            RingMsg::Copy { tag, entry } => {
                if let Some(Phase::Reading(copies)) =
                    self.pending.get_mut(&tag).map(|p| &mut p.phase)
                {
                    copies.insert(from.0, entry);
                    self.evaluate(tag, ctx);
                }
            }
            RingMsg::Complete(epoch) => {
                let d = ctx.durable_mut();
                let epoch = epoch.min(d.config.number);
                if epoch > d.complete {
                    d.complete = epoch;
                    self.tidy(ctx);
                }
            }
            RingMsg::Sync { epoch, digest } => {
                let d = ctx.durable();
                if d.config.number != epoch || d.complete != epoch {
                    return;
                }
                let held: BTreeMap<&str, u64> =
                    digest.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                let r = self.config.replicas as usize;
                let entries: Vec<(String, Entry)> = d
                    .store
                    .iter()
                    .filter(|(k, e)| {
                        let point = key_point(k);
                        let owners = self.ring.owners(point, r);
                        owners.first() == Some(&self.id)
                            && owners.contains(&from.0)
                            && held.get(k.as_str()).is_none_or(|v| *v < e.version)
                    })
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect();
                if !entries.is_empty() {
                    ctx.send(from, RingMsg::SyncReply { epoch, entries });
                }
            }
            RingMsg::SyncReply { epoch, entries } => {
                let d = ctx.durable();
                if d.config.number != epoch || d.complete != epoch {
                    return;
                }
                for (key, entry) in entries {
                    if self.owns(&key, ctx.durable()) {
                        merge(ctx.durable_mut(), &key, entry);
                    }
                }
            }
            _ => {}
        }
    }

    /// On every retry tick, with replicas: ask whether the configuration is complete, resend
    /// what waiting operations lack, and run anti-entropy.
    pub(super) fn replication_tick(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.ticks += 1;
        let d = ctx.durable();
        let member = d.config.members.contains(&self.id);
        if member && self.settled_acked && d.complete < d.config.number {
            ctx.send(AUTHORITY, RingMsg::Settled(d.config.number));
        }
        let tags: Vec<u64> = self.pending.keys().copied().collect();
        for tag in tags {
            let Some(p) = self.pending.get_mut(&tag) else {
                continue;
            };
            if p.ticks_left == 0 {
                self.pending.remove(&tag);
                continue;
            }
            p.ticks_left -= 1;
            self.ask_owners(tag, ctx);
            self.evaluate(tag, ctx);
        }
        let d = ctx.durable();
        if member
            && d.complete == d.config.number
            && self.ticks.is_multiple_of(SYNC_EVERY)
            && !self.config.has(RingBug::NoAntiEntropy)
        {
            self.anti_entropy(ctx);
        }
    }

    /// Sends one primary this node backs up the versions it holds of that primary's keys.
    fn anti_entropy(&mut self, ctx: &mut Ctx<'_, Self>) {
        let r = self.config.replicas as usize;
        let me = self.id;
        let primaries: BTreeSet<u32> = self
            .ring
            .arcs()
            .filter_map(|(range, _)| {
                let owners = self.ring.owners(range.upto, r);
                owners[1..].contains(&me).then_some(owners[0])
            })
            .collect();
        if primaries.is_empty() {
            return;
        }
        let turn = (self.ticks / SYNC_EVERY) as usize % primaries.len();
        let primary = *primaries.iter().nth(turn).expect("turn is within the set");
        let d = ctx.durable();
        let digest: Vec<(String, u64)> = d
            .store
            .iter()
            .filter(|(k, _)| self.ring.owner(key_point(k)) == Some(primary))
            .map(|(k, e)| (k.clone(), e.version))
            .collect();
        let epoch = d.config.number;
        ctx.send(NodeId(primary), RingMsg::Sync { epoch, digest });
    }

    /// The authority, once every member and leaver has settled the current configuration:
    /// tells every member it is complete (or, asked again, the one who asked).
    pub(super) fn announce_complete(
        &mut self,
        just_completed: bool,
        asker: NodeId,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let d = ctx.durable();
        let epoch = d.config.number;
        if just_completed {
            for m in d.config.members.clone() {
                ctx.send(NodeId(m), RingMsg::Complete(epoch));
            }
        } else {
            ctx.send(asker, RingMsg::Complete(epoch));
        }
    }
}
