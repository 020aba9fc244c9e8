//! The rebalancing store: a key-value store sharded over a consistent-hash ring whose members
//! join and leave, handing key ranges over under crashes and partitions.
//!
//! **Who decides the ring.** Node 0 is the authority: it stores no keys, holds the current
//! configuration (an epoch number and its members) in its durable store, and changes it one step
//! at a time from the join and leave requests it receives. It starts the next change only when
//! every member of the current epoch has reported its handoffs complete, so at most one
//! rebalance is in flight and every handoff's source holds the data it hands over. A member that
//! starts outside the configuration (absent at start, or back after leaving) asks to join; a
//! member asked to leave asks the authority to remove it and exits once everything it owned has
//! been taken. With the authority down, membership stands still; the data keeps being served.
//!
//! **Handoff** (every member computes the same transfers from two configurations: the arcs whose
//! owner changed, `Ring::transfers`). The new owner pulls each arc from its previous owner: batches
//! of entries in key order (`Fetch`/`Batch`), then `Finish` with a digest of what it holds; the
//! source then *closes* the arc (stops serving it) and answers with every entry newer than the
//! digest; the new owner stores them and sends `Release`; only then does the source delete its
//! copy. Every step is retried on a timer and every handler is idempotent, so lost, duplicated
//! and reordered messages and crashes of either side only delay a handoff. Entries carry a
//! version that grows with every write, and a copy never replaces a newer one.
//!
//! **Who serves a key during a handoff** (the rule the invariants check): exactly one node at a
//! time. The source serves the arc until it closes it (even after it learned the new epoch, and
//! while it has not learned it yet); the new owner redirects requests for it to the source until
//! it has the source's final answer, and serves it from then on. Between the two (the source has
//! closed, the answer is on its way) the new owner answers "retry": a redirect without a name. A
//! node at an older epoch serves only what that epoch gives it and what it has not handed over;
//! everything else is redirected to the owner it knows, and requests carry no epoch, so a stale
//! redirect costs a hop, never a wrong answer.
//!
//! Writes carry per-key sessions (each client's last sequence number on the key and its answer),
//! which move with the entry, so a retried append takes effect once wherever it lands.
//!
//! **Replicas** (`replicas > 1`): each key is kept by its first `replicas` members clockwise;
//! the rule above names the key's single writer, and the quorums, the handoff of backups and
//! anti-entropy are in the `replication` module.

use super::hash_ring::{KeyRange, Point, Ring, TransfersFn, key_point};
use crate::kv::{self, KvOp, KvRequest, KvResponse};
use serde::{Deserialize, Serialize};
use simlab_sim::{Ctx, Node, NodeId, NodeView, ReplyTo, ResponseClass, Time};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

mod replication;

/// The node that holds the configuration.
pub const AUTHORITY: NodeId = NodeId(0);

/// Deliberate mistakes, to see the invariants catch them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RingBug {
    /// The source deletes a batch's entries as soon as it sends them, before the new owner has
    /// acknowledged anything: a lost batch, or a write after it, is gone.
    DeleteBeforeAck,
    /// A new owner serves its incoming arcs from the partial copy while it is still pulling
    /// them: it answers with what it has not received yet.
    JoinerServesEarly,
    /// The source keeps serving an arc after closing it, instead of redirecting: writes it
    /// takes after the final answer never reach the new owner, and are deleted on release.
    KeepServingAfterMove,
    /// A leaver exits as soon as it sees a configuration without it, before its arcs are
    /// pulled: what it held is lost.
    LeaverExitsEarly,
    /// With replicas, a read returns the newest copy its quorum showed without first writing it
    /// back to a write quorum: a later read can miss a value an earlier read returned.
    SkipReadWriteBack,
    /// With replicas, reads and writes during a handoff count only the new owners, some of which
    /// are still pulling: a quorum of them can miss an acknowledged write.
    NewOwnersOnlyDuringHandoff,
    /// With replicas, a write stops at its quorum and backups never compare notes with their
    /// primary: an owner that missed a write keeps the older copy for good.
    NoAntiEntropy,
    /// With bounded loads, a key goes to the first member clockwise whatever its load: the
    /// placement forgets the capacity.
    IgnoreCapacity,
}

/// How keys are placed on the members.
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum KeyPlacement {
    /// Each key to the first member clockwise of it.
    #[default]
    Ring,
    /// Consistent hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam) with this ε:
    /// the store's keys, taken in the order of their numbers (`k0`, `k1`, …), each go to the
    /// first member clockwise holding fewer than ⌈(1 + ε)·keys / members⌉ of them.
    BoundedLoads(f64),
}

/// The store's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RingConfig {
    /// Virtual nodes per member.
    pub vnodes: u32,
    /// The seed the virtual nodes are placed by.
    pub ring_seed: u64,
    /// Keys the clients use.
    pub keys: u32,
    /// Percent of operations that are gets.
    pub get_percent: u32,
    /// Percent puts (the rest are appends).
    pub put_percent: u32,
    /// Entries per handoff batch.
    pub batch: u32,
    /// How long a handoff step or a request to the authority waits before it is sent again
    /// (milliseconds).
    pub retry_ms: u64,
    /// Planted bugs.
    pub bugs: Vec<RingBug>,
    /// Copies of each key: its first `replicas` distinct members clockwise.
    pub replicas: u32,
    /// Owners that must hold a write before it is acknowledged (default: a majority of
    /// `replicas`).
    pub write_quorum: Option<u32>,
    /// Owners whose copies a read compares (default: a majority of `replicas`).
    pub read_quorum: Option<u32>,
    /// How keys are placed on the members.
    pub placement: KeyPlacement,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            vnodes: 8,
            ring_seed: 0,
            keys: 16,
            get_percent: 40,
            put_percent: 30,
            batch: 4,
            retry_ms: 40,
            bugs: Vec::new(),
            replicas: 1,
            write_quorum: None,
            read_quorum: None,
            placement: KeyPlacement::Ring,
        }
    }
}

impl RingConfig {
    pub(crate) fn has(&self, bug: RingBug) -> bool {
        self.bugs.contains(&bug)
    }

    /// Whether keys have more than one copy.
    pub fn replicated(&self) -> bool {
        self.replicas > 1
    }

    /// Owners that must hold a write: `write_quorum`, or a majority of the replicas.
    pub fn write_quorum(&self) -> usize {
        self.write_quorum.unwrap_or(self.replicas / 2 + 1) as usize
    }

    /// The ε of bounded loads, if keys are placed that way.
    pub fn bounded_epsilon(&self) -> Option<f64> {
        match self.placement {
            KeyPlacement::Ring => None,
            KeyPlacement::BoundedLoads(epsilon) => Some(epsilon),
        }
    }

    /// The keys clients use, in the order bounded loads places them.
    pub fn key_names(&self) -> impl Iterator<Item = String> {
        (0..self.keys).map(|i| format!("k{i}"))
    }

    /// Owners a read compares: `read_quorum`, or a majority of the replicas.
    pub fn read_quorum(&self) -> usize {
        self.read_quorum.unwrap_or(self.replicas / 2 + 1) as usize
    }
}

/// A configuration: its number and its members, ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Epoch {
    /// Numbered from 1.
    pub number: u64,
    /// Members, ascending.
    pub members: Vec<u32>,
}

/// Who owns each key under one configuration: the first member clockwise on the ring or, with
/// bounded loads, the member the bounded placement gives each of the store's keys. Every node
/// computes the same placement from the same members.
#[derive(Clone, Debug)]
pub struct Placement {
    ring: Ring,
    /// With bounded loads: each key's position and member (other keys follow the ring).
    bounded: Option<Arc<BTreeMap<Point, u32>>>,
}

impl Placement {
    /// The placement of `ring`'s members under `config`.
    pub fn new(config: &RingConfig, ring: Ring) -> Placement {
        let bounded = config.bounded_epsilon().filter(|_| !ring.members().is_empty());
        let bounded = bounded.map(|epsilon| {
            let points: Vec<Point> = config.key_names().map(|k| key_point(&k)).collect();
            let members = if config.has(RingBug::IgnoreCapacity) {
                points.iter().filter_map(|&p| ring.owner(p)).collect()
            } else {
                ring.assign_bounded(&points, epsilon)
            };
            Arc::new(points.into_iter().zip(members).collect())
        });
        Placement { ring, bounded }
    }

    /// The member that owns `point`.
    pub fn owner(&self, point: Point) -> Option<u32> {
        match self.bounded.as_ref().and_then(|b| b.get(&point)) {
            Some(&member) => Some(member),
            None => self.ring.owner(point),
        }
    }

    /// The ring underneath.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// With bounded loads, each key's position and member.
    pub fn bounded(&self) -> Option<&BTreeMap<Point, u32>> {
        self.bounded.as_deref()
    }
}

/// A stored key: its value, a version that grows with every write, and each client's last
/// write to it with the answer (so a retry takes effect once).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The value.
    pub value: String,
    /// Writes so far.
    pub version: u64,
    /// Per client: the last sequence number written to this key, and its answer.
    pub sessions: BTreeMap<u32, (u64, KvResponse)>,
}

/// Where an incoming arc's handoff stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Pull {
    /// Fetching batches after this key (from the start when `None`).
    Fetching(Option<String>),
    /// All batches in; `Finish` sent, waiting for the source's final answer.
    Finishing,
    /// Serving the arc; `Release` sent so that the source deletes its copy.
    Releasing,
    /// Done.
    Released,
}

/// An arc this node pulls from its previous owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Incoming {
    /// The arc.
    pub range: KeyRange,
    /// Its previous owner (the primary, with replicas).
    pub from: u32,
    /// How far the handoff is.
    pub state: Pull,
    /// This node takes over serving the arc from `from`, so the handoff ends with the
    /// `Finish` that closes the source. With replicas, a new backup only copies the arc.
    pub closes: bool,
}

/// An arc this node hands over.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outgoing {
    /// The arc.
    pub range: KeyRange,
    /// Its new owner.
    pub to: u32,
    /// The source no longer serves it.
    pub closed: bool,
    /// The new owner has it: the source's copy is deleted.
    pub released: bool,
}

/// A requested membership change, queued at the authority.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Change {
    /// Add this node.
    Join(u32),
    /// Remove this node.
    Leave(u32),
}

/// What survives a crash.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RingDurable {
    /// The newest configuration this node knows, and the one before it.
    pub config: Epoch,
    /// The configuration before `config`.
    pub previous: Epoch,
    /// The keys this node holds.
    pub store: BTreeMap<String, Entry>,
    /// Arcs it pulls in the current epoch.
    pub incoming: Vec<Incoming>,
    /// Arcs it hands over in the current epoch.
    pub outgoing: Vec<Outgoing>,
    /// Asked to leave.
    pub leaving: bool,
    /// Left: exited with the authority's leave. Set again on the next start, it means the
    /// node is joining anew.
    pub departed: bool,
    /// Counts this node's decisions to join or leave. Requests carry it, so the authority can
    /// tell a delayed request of an earlier decision from the current one.
    pub intent: u64,
    /// The authority only: the latest decision number heard from each node.
    pub intents: BTreeMap<u32, u64>,
    /// The authority only: changes waiting, in arrival order.
    pub queue: Vec<Change>,
    /// The authority only: members of the current epoch whose handoffs are complete.
    pub settled: BTreeSet<u32>,
    /// Entries received in handoffs (batches and final answers), for the report.
    pub entries_received: u64,
    /// With replicas: the newest epoch this node knows every member has settled. Until it
    /// knows the current one is, it counts the owners of both configurations.
    pub complete: u64,
}

/// Messages.
#[derive(Clone, Debug, Serialize)]
pub enum RingMsg {
    /// The authority's configuration, with the one before it.
    Config {
        /// The configuration.
        epoch: Epoch,
        /// The one before it.
        previous: Epoch,
    },
    /// A node asks to join; the number orders its requests (see [`RingDurable::intent`]).
    JoinRequest(u64),
    /// A member asks to leave (and, once removed, whether it may go).
    LeaveRequest(u64),
    /// A member's handoffs of this epoch are complete.
    Settled(u64),
    /// The authority heard it.
    SettledAck(u64),
    /// The new owner asks for the entries of `range` after `after`.
    Fetch {
        /// The configuration the new owner pulls for, with the one before.
        epoch: Epoch,
        /// The one before it.
        previous: Epoch,
        /// The arc.
        range: KeyRange,
        /// The last key already received.
        after: Option<String>,
    },
    /// Entries of `range` after `after`, in key order.
    Batch {
        /// The epoch of the fetch.
        epoch: u64,
        /// The arc.
        range: KeyRange,
        /// The fetch's cursor.
        after: Option<String>,
        /// The entries.
        entries: Vec<(String, Entry)>,
        /// More follow.
        more: bool,
    },
    /// The new owner has every batch: close the arc and send what changed.
    Finish {
        /// The epoch.
        epoch: u64,
        /// The arc.
        range: KeyRange,
        /// Each key the new owner holds in the arc, with its version.
        digest: Vec<(String, u64)>,
    },
    /// The arc is closed; these entries are newer than the digest.
    FinishAck {
        /// The epoch.
        epoch: u64,
        /// The arc.
        range: KeyRange,
        /// The entries.
        entries: Vec<(String, Entry)>,
    },
    /// The new owner serves the arc: delete your copy.
    Release {
        /// The epoch.
        epoch: u64,
        /// The arc.
        range: KeyRange,
    },
    /// Deleted.
    Released {
        /// The epoch.
        epoch: u64,
        /// The arc.
        range: KeyRange,
    },
    /// The authority to a leaver: every member has taken what it pulled from you; go.
    Farewell,
    /// With replicas: store this copy if you own its key (the answer is `Stored`).
    Replicate {
        /// The coordinator's operation.
        tag: u64,
        /// The key.
        key: String,
        /// The entry.
        entry: Entry,
    },
    /// The owner holds `key` at this version (or newer).
    Stored {
        /// The coordinator's operation.
        tag: u64,
        /// The version held.
        version: u64,
    },
    /// With replicas: a read asks an owner for its copy.
    Query {
        /// The coordinator's operation.
        tag: u64,
        /// The key.
        key: String,
    },
    /// An owner's copy, if it holds one.
    Copy {
        /// The coordinator's operation.
        tag: u64,
        /// The copy.
        entry: Option<Entry>,
    },
    /// With replicas: the authority says every member has settled this epoch.
    Complete(u64),
    /// With replicas: a backup's versions of the keys the receiver is primary of, at a settled
    /// epoch (anti-entropy: the primary answers with what the backup lacks).
    Sync {
        /// The epoch.
        epoch: u64,
        /// Each key the backup holds that the receiver is primary of, with its version.
        digest: Vec<(String, u64)>,
    },
    /// What the backup lacks: entries missing from its digest or newer.
    SyncReply {
        /// The epoch.
        epoch: u64,
        /// The entries.
        entries: Vec<(String, Entry)>,
    },
}

/// Timers.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub enum RingTimer {
    /// Resend whatever is waiting for an answer.
    Retry,
}

/// A node of the rebalancing store (node 0 is the authority).
#[derive(Clone, Debug)]
pub struct RingNode {
    id: u32,
    config: Arc<RingConfig>,
    /// Initial members: every node but the authority and the absent ones.
    initial: Vec<u32>,
    /// The ring of the current configuration (rebuilt from it).
    ring: Ring,
    /// Who owns each key in the current configuration (the ring, or bounded loads over it).
    placement: Placement,
    /// The ring of the configuration before it: with replicas, a node counts the owners of
    /// both until it knows the current configuration is complete.
    previous_ring: Ring,
    /// With replicas: the reads and writes this node coordinates that wait for a quorum.
    pending: BTreeMap<u64, replication::Pending>,
    /// The next coordinator tag: starts from the clock at every start, so that an answer to an
    /// operation from before a crash never counts for a new one.
    next_tag: u64,
    /// Retry ticks since the start (anti-entropy takes its partners in turn).
    ticks: u64,
    /// The authority heard this node's `Settled` for the current epoch.
    settled_acked: bool,
    /// Computes the arcs that move between two configurations (the learner slot
    /// `ring.transfers`, or [`Ring::transfers`]).
    transfers: TransfersFn,
}

impl RingNode {
    /// A node; `absent` lists the nodes that are not members at start, and `transfers` computes
    /// what moves between two configurations.
    pub fn new(
        config: Arc<RingConfig>,
        id: NodeId,
        nodes: u32,
        absent: &[u32],
        transfers: TransfersFn,
    ) -> RingNode {
        let initial = (1..nodes).filter(|n| !absent.contains(n)).collect();
        let ring = Ring::new(config.ring_seed, config.vnodes.max(1));
        RingNode {
            id: id.0,
            placement: Placement::new(&config, ring.clone()),
            config,
            initial,
            previous_ring: ring.clone(),
            ring,
            pending: BTreeMap::new(),
            next_tag: 0,
            ticks: 0,
            settled_acked: false,
            transfers,
        }
    }

    /// Whether keys have more than one copy.
    pub(crate) fn replicated(&self) -> bool {
        self.config.replicated()
    }

    /// Whether this node would serve `key` now (with replicas: take a write for it), from its
    /// own configuration and handoffs.
    pub(crate) fn serves(&self, key: &str, d: &RingDurable) -> bool {
        !self.is_authority() && self.route(key, d).is_ok()
    }

    /// The keys clients use.
    pub(crate) fn key_names(&self) -> impl Iterator<Item = String> {
        self.config.key_names()
    }

    /// The ε of bounded loads, if keys are placed that way.
    pub(crate) fn bounded_epsilon(&self) -> Option<f64> {
        self.config.bounded_epsilon()
    }

    /// How many keys the clients use.
    pub(crate) fn key_count(&self) -> usize {
        self.config.keys as usize
    }

    /// Copies of each key.
    pub(crate) fn replicas(&self) -> usize {
        self.config.replicas as usize
    }

    fn is_authority(&self) -> bool {
        self.id == AUTHORITY.0
    }

    /// The ring of `epoch`'s members.
    pub(crate) fn ring_for(&self, epoch: &Epoch) -> Ring {
        Ring::with_members(
            self.config.ring_seed,
            self.config.vnodes.max(1),
            epoch.members.iter().copied(),
        )
    }

    /// Who owns each key under `epoch`.
    pub(crate) fn placement_for(&self, epoch: &Epoch) -> Placement {
        Placement::new(&self.config, self.ring_for(epoch))
    }

    /// Points the current configuration at `ring`.
    fn set_ring(&mut self, ring: Ring) {
        self.placement = Placement::new(&self.config, ring.clone());
        self.ring = ring;
    }

    /// With bounded loads: each key whose owner changes, as the one-position arc holding it.
    fn bounded_transfers(before: &Placement, after: &Placement) -> Vec<(KeyRange, u32, u32)> {
        let Some(keys) = after.bounded() else {
            return Vec::new();
        };
        keys.iter()
            .filter_map(|(&point, &to)| {
                let from = before.owner(point)?;
                let range = KeyRange {
                    after: point.wrapping_sub(1),
                    upto: point,
                };
                (from != to).then_some((range, from, to))
            })
            .collect()
    }

    /// Adopts a newer configuration and works out this node's handoffs for it.
    fn adopt(&mut self, epoch: Epoch, previous: Epoch, ctx: &mut Ctx<'_, Self>) {
        if epoch.number <= ctx.durable().config.number {
            return;
        }
        let me = self.id;
        let before = self.ring_for(&previous);
        let after = self.ring_for(&epoch);
        let mut incoming = Vec::new();
        let mut outgoing = Vec::new();
        // Nothing moves into the first configuration: it is where the data starts.
        if previous.number > 0 && self.config.replicated() {
            (incoming, outgoing) = self.replicated_handoffs(&before, &after);
        } else if previous.number > 0 && self.config.bounded_epsilon().is_some() {
            let old = Placement::new(&self.config, before.clone());
            let new = Placement::new(&self.config, after.clone());
            for (range, from, to) in Self::bounded_transfers(&old, &new) {
                if to == me {
                    let state = Pull::Fetching(None);
                    incoming.push(Incoming {
                        range,
                        from,
                        state,
                        closes: true,
                    });
                }
                if from == me {
                    outgoing.push(Outgoing {
                        range,
                        to,
                        closed: false,
                        released: false,
                    });
                }
            }
        } else if previous.number > 0 {
            for t in (self.transfers)(&before, &after, 1) {
                let (Some(&from), Some(&to)) = (t.from.first(), t.to.first()) else {
                    continue;
                };
                if to == me {
                    incoming.push(Incoming {
                        range: t.range,
                        from,
                        state: Pull::Fetching(None),
                        closes: true,
                    });
                }
                if from == me {
                    outgoing.push(Outgoing {
                        range: t.range,
                        to,
                        closed: false,
                        released: false,
                    });
                }
            }
        }
        ctx.note_with(|| format!(
            "adopts epoch {} {:?}: pulls {} arcs, hands over {}",
            epoch.number,
            epoch.members,
            incoming.len(),
            outgoing.len()
        ));
        self.set_ring(after);
        self.previous_ring = before;
        self.settled_acked = false;
        let joins = !previous.members.contains(&me) && epoch.members.contains(&me);
        let d = ctx.durable_mut();
        if joins {
            // A returning member starts empty: what it kept from before it left is stale, and
            // everything it owns now comes from the current owners.
            d.store.clear();
        }
        // The authority starts a configuration only once the one before is complete.
        d.complete = d.complete.max(previous.number);
        d.config = epoch;
        d.previous = previous;
        d.incoming = incoming;
        d.outgoing = outgoing;
        self.tidy(ctx);
        self.pull_all(ctx);
        self.maybe_exit(ctx);
    }

    /// Sends the next step of every unfinished incoming handoff.
    fn pull_all(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        let (epoch, previous) = (d.config.clone(), d.previous.clone());
        let mut sends = Vec::new();
        for inc in &d.incoming {
            let msg = match &inc.state {
                Pull::Fetching(after) => RingMsg::Fetch {
                    epoch: epoch.clone(),
                    previous: previous.clone(),
                    range: inc.range,
                    after: after.clone(),
                },
                Pull::Finishing => RingMsg::Finish {
                    epoch: epoch.number,
                    range: inc.range,
                    digest: digest(&d.store, inc.range),
                },
                Pull::Releasing => RingMsg::Release {
                    epoch: epoch.number,
                    range: inc.range,
                },
                Pull::Released => continue,
            };
            sends.push((NodeId(inc.from), msg));
        }
        for (to, msg) in sends {
            ctx.send(to, msg);
        }
        self.report_settled(ctx);
    }

    /// Tells the authority once every incoming handoff of this epoch is released.
    fn report_settled(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        // With replicas a leaver reports too: the configuration is complete only when no node
        // can still count the old owners alone.
        let member = d.config.members.contains(&self.id)
            || (self.config.replicated() && d.previous.members.contains(&self.id));
        if member
            && !self.settled_acked
            && d.incoming.iter().all(|i| i.state == Pull::Released)
        {
            ctx.send(AUTHORITY, RingMsg::Settled(d.config.number));
        }
    }

    /// With the planted bug, a leaver exits as soon as it is out of the configuration. (The
    /// correct leaver waits for the authority's `Farewell`.)
    fn maybe_exit(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        if self.config.has(RingBug::LeaverExitsEarly)
            && d.leaving
            && !d.config.members.contains(&self.id)
        {
            ctx.note("out of the configuration: exits at once (planted bug)");
            ctx.durable_mut().departed = true;
            ctx.exit();
        }
    }

    /// Whether this node serves `key` now, or where to send the client.
    fn route(&self, key: &str, d: &RingDurable) -> Result<(), KvResponse> {
        let point = key_point(key);
        if let Some(out) = d.outgoing.iter().find(|o| o.range.contains(point)) {
            return if !out.closed || self.config.has(RingBug::KeepServingAfterMove) {
                Ok(())
            } else {
                Err(KvResponse::NotLeader(Some(NodeId(out.to))))
            };
        }
        if let Some(inc) = d
            .incoming
            .iter()
            .find(|i| i.closes && i.range.contains(point))
        {
            return match inc.state {
                Pull::Releasing | Pull::Released => Ok(()),
                _ if self.config.has(RingBug::JoinerServesEarly) => Ok(()),
                Pull::Fetching(_) => Err(KvResponse::NotLeader(Some(NodeId(inc.from)))),
                Pull::Finishing => Err(KvResponse::NotLeader(None)),
            };
        }
        match self.placement.owner(point) {
            Some(owner) if owner == self.id => Ok(()),
            owner => Err(KvResponse::NotLeader(owner.map(NodeId))),
        }
    }

    fn serve(&mut self, reply_to: ReplyTo, op: &KvOp, ctx: &mut Ctx<'_, Self>) -> KvResponse {
        let key = op.key().to_string();
        let client = reply_to.client.0;
        if let KvOp::Get(_) = op {
            let value = ctx.durable().store.get(&key).map(|e| e.value.clone());
            return KvResponse::Ok(Some(value.unwrap_or_default()));
        }
        if let Some(entry) = ctx.durable().store.get(&key)
            && let Some((seq, answer)) = entry.sessions.get(&client)
            && *seq >= reply_to.seq
        {
            // A retry of a write this key already took (or an older one): answer, change nothing.
            return answer.clone();
        }
        let d = ctx.durable_mut();
        let entry = d.store.entry(key.clone()).or_default();
        let mut kv = BTreeMap::new();
        kv.insert(key.clone(), std::mem::take(&mut entry.value));
        let answer = kv::apply(&mut kv, op);
        entry.value = kv.remove(&key).unwrap_or_default();
        entry.version += 1;
        entry.sessions.insert(client, (reply_to.seq, answer.clone()));
        answer
    }

    fn on_authority_message(&mut self, from: NodeId, msg: RingMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            RingMsg::JoinRequest(intent) => self.request(Change::Join(from.0), intent, ctx),
            RingMsg::LeaveRequest(intent) => self.request(Change::Leave(from.0), intent, ctx),
            RingMsg::Settled(epoch) if epoch == ctx.durable().config.number => {
                let newly = ctx.durable_mut().settled.insert(from.0);
                ctx.send(from, RingMsg::SettledAck(epoch));
                if self.config.replicated() && self.all_settled(ctx.durable()) {
                    self.announce_complete(newly, from, ctx);
                }
                self.advance(ctx);
            }
            RingMsg::Settled(epoch)
                if self.config.replicated() && epoch < ctx.durable().config.number =>
            {
                // An older epoch: complete, since a newer one was started.
                ctx.send(from, RingMsg::Complete(epoch));
            }
            _ => {}
        }
    }

    /// A node's request, numbered by its decisions: an older decision's request (delayed or
    /// duplicated by the network) is ignored, and a newer one withdraws the opposite change if
    /// it is still queued.
    fn request(&mut self, change: Change, intent: u64, ctx: &mut Ctx<'_, Self>) {
        let n = match change {
            Change::Join(n) | Change::Leave(n) => n,
        };
        let latest = ctx.durable().intents.get(&n).copied().unwrap_or(0);
        if intent < latest {
            return;
        }
        if intent > latest {
            let opposite = match change {
                Change::Join(n) => Change::Leave(n),
                Change::Leave(n) => Change::Join(n),
            };
            let d = ctx.durable_mut();
            d.intents.insert(n, intent);
            d.queue.retain(|c| *c != opposite);
        }
        self.queue(change, ctx);
    }

    fn queue(&mut self, change: Change, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        let done = match change {
            Change::Join(n) => d.config.members.contains(&n),
            Change::Leave(n) => !d.config.members.contains(&n),
        };
        if done {
            let settled = self.all_settled(d);
            let (n, epoch, previous) = match change {
                Change::Join(n) | Change::Leave(n) => (n, d.config.clone(), d.previous.clone()),
            };
            if matches!(change, Change::Leave(_)) && settled {
                // Every member has pulled what it needed: nothing the leaver holds is needed.
                ctx.send(NodeId(n), RingMsg::Farewell);
            } else {
                // Applied, and the requester missed the configuration: send it again.
                ctx.send(NodeId(n), RingMsg::Config { epoch, previous });
            }
            return;
        }
        if !d.queue.contains(&change) {
            ctx.note_with(|| format!("queues {change:?}"));
            ctx.durable_mut().queue.push(change);
        }
        self.advance(ctx);
    }

    /// Whether every member has settled the current epoch (with replicas, every leaver too).
    fn all_settled(&self, d: &RingDurable) -> bool {
        let members = d.config.members.iter().all(|m| d.settled.contains(m));
        let leavers = || {
            d.previous
                .members
                .iter()
                .filter(|m| !d.config.members.contains(m))
                .all(|m| d.settled.contains(m))
        };
        members && (!self.config.replicated() || leavers())
    }

    /// Starts the next queued change once every member has settled the current epoch.
    fn advance(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        if !self.all_settled(d) || d.queue.is_empty() {
            return;
        }
        let mut members = d.config.members.clone();
        let position = d.queue.iter().position(|c| match c {
            Change::Join(_) => true,
            // The last member cannot leave: the data would have nowhere to go.
            Change::Leave(_) => members.len() > 1,
        });
        let Some(position) = position else { return };
        let d = ctx.durable_mut();
        let change = d.queue.remove(position);
        match change {
            Change::Join(n) => {
                members.push(n);
                members.sort_unstable();
            }
            Change::Leave(n) => members.retain(|&m| m != n),
        }
        let previous = std::mem::take(&mut d.config);
        d.config = Epoch {
            number: previous.number + 1,
            members,
        };
        d.previous = previous;
        d.settled.clear();
        self.set_ring(self.ring_for(&ctx.durable().config.clone()));
        let config = &ctx.durable().config;
        let note = format!("epoch {}: {change:?}, members {:?}", config.number, config.members);
        ctx.note(note);
        self.broadcast_config(ctx);
    }

    /// Sends the configuration to every member that has not settled it, and to a leaver,
    /// until every member has settled.
    fn broadcast_config(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        if self.all_settled(d) {
            return;
        }
        let mut to: BTreeSet<u32> = d
            .config
            .members
            .iter()
            .copied()
            .filter(|m| !d.settled.contains(m))
            .collect();
        to.extend(
            d.previous
                .members
                .iter()
                .filter(|m| !d.config.members.contains(m)),
        );
        let (epoch, previous) = (d.config.clone(), d.previous.clone());
        for n in to {
            ctx.send(
                NodeId(n),
                RingMsg::Config {
                    epoch: epoch.clone(),
                    previous: previous.clone(),
                },
            );
        }
    }

    fn apply_entries(d: &mut RingDurable, entries: Vec<(String, Entry)>) {
        for (key, entry) in entries {
            d.entries_received += 1;
            match d.store.get(&key) {
                Some(mine) if mine.version >= entry.version => {}
                _ => {
                    d.store.insert(key, entry);
                }
            }
        }
    }

    fn on_member_message(&mut self, from: NodeId, msg: RingMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            RingMsg::Config { epoch, previous } => self.adopt(epoch, previous, ctx),
            RingMsg::SettledAck(epoch) => {
                if epoch == ctx.durable().config.number {
                    self.settled_acked = true;
                }
            }
            RingMsg::Fetch {
                epoch,
                previous,
                range,
                after,
            } => {
                let number = epoch.number;
                self.adopt(epoch, previous, ctx);
                if ctx.durable().config.number != number {
                    return; // A fetch for an epoch this node has moved past.
                }
                let batch = self.config.batch.max(1) as usize;
                let mut entries: Vec<(String, Entry)> = ctx
                    .durable()
                    .store
                    .iter()
                    .filter(|(k, _)| after.as_ref().is_none_or(|a| *k > a))
                    .filter(|(k, _)| range.contains(key_point(k)))
                    .take(batch + 1)
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect();
                let more = entries.len() > batch;
                entries.truncate(batch);
                if self.config.has(RingBug::DeleteBeforeAck) {
                    let d = ctx.durable_mut();
                    for (k, _) in &entries {
                        d.store.remove(k);
                    }
                }
                ctx.send(
                    from,
                    RingMsg::Batch {
                        epoch: number,
                        range,
                        after,
                        entries,
                        more,
                    },
                );
            }
            RingMsg::Batch {
                epoch,
                range,
                after,
                entries,
                more,
            } => {
                let d = ctx.durable_mut();
                if epoch != d.config.number {
                    return;
                }
                let last = entries.last().map(|(k, _)| k.clone());
                let Some(inc) = d.incoming.iter().position(|i| i.range == range) else {
                    return;
                };
                if d.incoming[inc].state != Pull::Fetching(after) {
                    return; // A duplicate, or an answer to an older fetch.
                }
                Self::apply_entries(d, entries);
                let inc = &mut d.incoming[inc];
                inc.state = if more {
                    Pull::Fetching(last)
                } else if inc.closes {
                    Pull::Finishing
                } else {
                    // A new backup only copies: the serving primary sends it every write
                    // from now on.
                    Pull::Released
                };
                if inc.state == Pull::Released {
                    self.report_settled(ctx);
                    return;
                }
                let (to, step) = (NodeId(inc.from), inc.state.clone());
                let number = d.config.number;
                let msg = match step {
                    Pull::Fetching(after) => RingMsg::Fetch {
                        epoch: d.config.clone(),
                        previous: d.previous.clone(),
                        range,
                        after,
                    },
                    _ => RingMsg::Finish {
                        epoch: number,
                        range,
                        digest: digest(&d.store, range),
                    },
                };
                ctx.send(to, msg);
            }
            RingMsg::Finish {
                epoch,
                range,
                digest,
            } => {
                let d = ctx.durable_mut();
                if epoch != d.config.number {
                    return;
                }
                let Some(out) = d.outgoing.iter_mut().find(|o| o.range == range) else {
                    return;
                };
                out.closed = true;
                let held: BTreeMap<&str, u64> =
                    digest.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                let entries: Vec<(String, Entry)> = d
                    .store
                    .iter()
                    .filter(|(k, _)| range.contains(key_point(k)))
                    .filter(|(k, e)| held.get(k.as_str()).is_none_or(|v| *v < e.version))
                    .map(|(k, e)| (k.clone(), e.clone()))
                    .collect();
                ctx.note_with(|| format!("closes an arc for n{}: {} newer entries", from.0, entries.len()));
                ctx.send(
                    from,
                    RingMsg::FinishAck {
                        epoch,
                        range,
                        entries,
                    },
                );
            }
            RingMsg::FinishAck {
                epoch,
                range,
                entries,
            } => {
                let d = ctx.durable_mut();
                if epoch != d.config.number {
                    return;
                }
                let Some(inc) = d.incoming.iter().position(|i| i.range == range) else {
                    return;
                };
                if d.incoming[inc].state != Pull::Finishing {
                    return;
                }
                Self::apply_entries(d, entries);
                let source = d.incoming[inc].from;
                // With replicas the source may still be an owner: copies that nobody owns any
                // more are deleted when the configuration is complete.
                if d.config.members.contains(&source) && !self.config.replicated() {
                    d.incoming[inc].state = Pull::Releasing;
                    ctx.send(NodeId(source), RingMsg::Release { epoch, range });
                } else {
                    // A leaver keeps its copy until it goes; it is not asked to delete it, so
                    // nothing waits on a node that may already be gone.
                    d.incoming[inc].state = Pull::Released;
                    self.report_settled(ctx);
                }
            }
            RingMsg::Release { epoch, range } => {
                let d = ctx.durable_mut();
                if epoch != d.config.number {
                    return;
                }
                let Some(out) = d.outgoing.iter_mut().find(|o| o.range == range) else {
                    return;
                };
                if !out.released {
                    out.released = true;
                    d.store.retain(|k, _| !range.contains(key_point(k)));
                }
                ctx.send(from, RingMsg::Released { epoch, range });
            }
            RingMsg::Released { epoch, range } => {
                let d = ctx.durable_mut();
                if epoch != d.config.number {
                    return;
                }
                if let Some(inc) = d.incoming.iter_mut().find(|i| i.range == range)
                    && inc.state == Pull::Releasing
                {
                    inc.state = Pull::Released;
                    self.report_settled(ctx);
                }
            }
            RingMsg::Farewell => {
                let d = ctx.durable();
                if d.leaving && !d.config.members.contains(&self.id) {
                    ctx.note("the authority says every arc is taken: exits");
                    ctx.durable_mut().departed = true;
                    ctx.exit();
                }
            }
            RingMsg::JoinRequest(_) | RingMsg::LeaveRequest(_) | RingMsg::Settled(_) => {}
            msg => self.on_replication_message(from, msg, ctx),
        }
    }

    /// What a member waiting on the authority asks for again.
    fn ask_authority(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        let member = d.config.members.contains(&self.id);
        if d.leaving {
            // Before the change, to ask for it; after, to ask whether it may go.
            ctx.send(AUTHORITY, RingMsg::LeaveRequest(d.intent));
        } else if !member {
            ctx.send(AUTHORITY, RingMsg::JoinRequest(d.intent));
        }
    }
}

/// Each key the store holds in `range`, with its version.
fn digest(store: &BTreeMap<String, Entry>, range: KeyRange) -> Vec<(String, u64)> {
    store
        .iter()
        .filter(|(k, _)| range.contains(key_point(k)))
        .map(|(k, e)| (k.clone(), e.version))
        .collect()
}

impl Node for RingNode {
    type Msg = RingMsg;
    type Timer = RingTimer;
    type Request = KvRequest;
    type Response = KvResponse;
    type Durable = RingDurable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        // A node that left and now starts again is joining anew: a new decision. (One still
        // asked to leave after a crash keeps its request; the engine asks it again.)
        if ctx.durable().departed {
            let d = ctx.durable_mut();
            d.departed = false;
            d.leaving = false;
            d.intent += 1;
        }
        if ctx.durable().config.number == 0 {
            let d = ctx.durable_mut();
            d.config = Epoch {
                number: 1,
                members: self.initial.clone(),
            };
            // The first configuration needs no handoff: everyone starts settled.
            d.complete = 1;
            if self.is_authority() {
                d.settled = d.config.members.iter().copied().collect();
            }
        }
        self.set_ring(self.ring_for(&ctx.durable().config.clone()));
        self.previous_ring = self.ring_for(&ctx.durable().previous.clone());
        self.next_tag = ctx.now().as_micros() << 20;
        ctx.set_timer(Time::from_millis(self.config.retry_ms), RingTimer::Retry);
        if self.is_authority() {
            self.advance(ctx);
        } else {
            self.ask_authority(ctx);
            self.pull_all(ctx);
        }
    }

    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>) {
        if self.is_authority() {
            // The authority holds no keys; it cannot hand its role over, so it stays.
            ctx.note("the authority does not leave");
            return;
        }
        let d = ctx.durable_mut();
        if !d.leaving {
            d.leaving = true;
            d.intent += 1;
        }
        self.ask_authority(ctx);
        self.maybe_exit(ctx);
    }

    fn on_message(&mut self, from: NodeId, msg: RingMsg, ctx: &mut Ctx<'_, Self>) {
        if self.is_authority() {
            self.on_authority_message(from, msg, ctx);
        } else {
            self.on_member_message(from, msg, ctx);
        }
    }

    fn on_timer(&mut self, timer: RingTimer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            RingTimer::Retry => {
                if self.is_authority() {
                    self.broadcast_config(ctx);
                } else {
                    self.ask_authority(ctx);
                    self.pull_all(ctx);
                    self.maybe_exit(ctx);
                    if self.config.replicated() {
                        self.replication_tick(ctx);
                    }
                }
                ctx.set_timer(Time::from_millis(self.config.retry_ms), RingTimer::Retry);
            }
        }
    }

    fn on_request(&mut self, reply_to: ReplyTo, request: KvRequest, ctx: &mut Ctx<'_, Self>) {
        let op = request.0;
        if self.config.replicated() && !self.is_authority() {
            self.request_replicated(reply_to, op, ctx);
            return;
        }
        let answer = match self.route(op.key(), ctx.durable()) {
            Ok(()) if !self.is_authority() => self.serve(reply_to, &op, ctx),
            Ok(()) => KvResponse::NotLeader(None),
            Err(redirect) => redirect,
        };
        ctx.reply(reply_to, answer);
    }

    fn classify(response: &KvResponse) -> ResponseClass {
        response.classify()
    }

    fn view(&self, d: &RingDurable) -> NodeView {
        let role = if self.is_authority() {
            "authority"
        } else if d.leaving {
            "leaving"
        } else if d.config.members.contains(&self.id) {
            "member"
        } else {
            "outside"
        };
        let pulling = d
            .incoming
            .iter()
            .filter(|i| i.state != Pull::Released)
            .count();
        let handing = d.outgoing.iter().filter(|o| !o.released).count();
        NodeView::new(role)
            .field("epoch", d.config.number)
            .field("keys", d.store.len())
            .field("pulling", pulling)
            .field("handing", handing)
    }
}
