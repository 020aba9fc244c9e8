//! A gossip-replicated key-value cache: the AP store.
//!
//! Every node is a full replica and answers every client at once, on every side of a partition;
//! replicas reach the same state by gossiping with random peers, in one of the ways Demers et
//! al. compare in *Epidemic Algorithms for Replicated Database Maintenance* (PODC 1987):
//! - **anti-entropy**: every cycle (`gossip_ms`) each node picks a random peer and they reconcile
//!   their whole stores, by pushing, pulling or both, sending either everything or first a digest
//!   (each key's version dots) and then only what the other side lacks;
//! - **rumor mongering**: a node that learns something new becomes "infective" for it and, every
//!   cycle, pushes its hot rumors to a random peer (or answers pulls with them) until it loses
//!   interest: after `k` contacts (counter) or with probability 1/k per contact (coin), counting
//!   every contact (blind) or only contacts that already knew (feedback);
//! - **both**: rumors spread fast, and an anti-entropy exchange every few cycles repairs the
//!   residue rumors miss, the paper's recommended combination.
//!
//! Concurrent writes are resolved by **version vectors** (both kept as siblings; a read returns
//! both) or by **last-writer-wins** on hybrid logical clocks (one silently lost; with clock skew,
//! the later one in real time may be the one lost). Deletes write tombstones (death
//! certificates) that are collected `tombstone_ttl_ms` after they were written; collected before
//! every replica saw them, the deleted value comes back from a replica that missed the delete.
//!
//! A node persists a write before acknowledging it. Invariants: no acknowledged write is lost
//! (always, under version vectors: some replica still holds it or a version written knowing it);
//! a replica keeps only concurrent siblings, never a version beside one that overtook it (always);
//! after the faults every live replica holds the same versions and every acknowledged write
//! (eventually). The report gives the stale-read rate, the writes last-writer-wins lost, and
//! messages and bytes per node per cycle.

mod invariants;
pub mod table;
pub mod version;

use crate::kv::{KvOp, KvRequest, KvResponse};
use crate::protocol::{Protocol, ReportItem, Setup};
use invariants::{Converged, NoLostWrite, SiblingsConcurrent, WritesEverywhere};
use serde::{Deserialize, Serialize};
use simlab_sim::history::Completion;
use simlab_sim::rng::{self, SimRng};
use simlab_sim::{
    ClientId, Ctx, FieldError, Invariant, Node, NodeId, NodeView, ReplyTo, ResponseClass,
    Simulation, Time, Workload,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use version::{Dot, Hlc, MergeFn, Version, VersionVector};

/// Who sends to whom in an exchange, as the node that starts it sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// The starter sends what it has.
    Push,
    /// The starter asks for what the peer has.
    Pull,
    /// Both.
    PushPull,
}

/// What an anti-entropy exchange sends.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exchange {
    /// The whole store.
    Full,
    /// Each key's version dots first, then only the keys the other side lacks.
    Digest,
}

/// When an infective node loses interest in a rumor.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// After `k` counted contacts.
    Counter,
    /// With probability 1/k at each counted contact.
    Coin,
}

/// Rumor mongering's settings.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rumor {
    /// Push rumors to a random peer, or pull them from one (`PushPull` is not a rumor mode).
    pub direction: Direction,
    /// Count only contacts that already knew the rumor (the receiver says so), or every one.
    pub feedback: bool,
    /// Counter or coin.
    pub loss: Loss,
    /// The counter's limit, or the coin's 1/k.
    pub k: u32,
}

/// How updates spread.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Dissemination {
    /// Every cycle, reconcile with a random peer.
    AntiEntropy {
        /// Push, pull or both.
        direction: Direction,
        /// Everything, or a digest then the difference.
        exchange: Exchange,
    },
    /// Spread new updates as rumors until nodes lose interest.
    RumorMongering(Rumor),
    /// Rumors, plus a push-pull digest exchange every `anti_entropy_every` cycles.
    Combined {
        /// The rumors.
        rumor: Rumor,
        /// Cycles between anti-entropy exchanges.
        anti_entropy_every: u32,
    },
}

/// How concurrent writes of one key are resolved.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Keep both as siblings; a read returns every value.
    VersionVectors,
    /// The larger hybrid-logical-clock stamp wins; the other write is lost.
    LastWriterWins,
}

/// Deliberate mistakes, to see the invariants catch them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipBug {
    /// Last-writer-wins compares wall times only and keeps its own version on a tie: replicas
    /// holding different versions with the same wall time keep them for ever.
    TieKeepsMine,
    /// A version concurrent with an incoming one is taken as older and dropped: an
    /// acknowledged write held by one replica disappears.
    ConcurrentAsOlder,
    /// Tombstones are collected one gossip cycle after the delete, before every replica has
    /// seen them: a replica that missed the delete brings the value back.
    EarlyTombstoneCollection,
}

/// The cache's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GossipConfig {
    /// One gossip cycle (milliseconds).
    pub gossip_ms: u64,
    /// How updates spread.
    pub dissemination: Dissemination,
    /// How concurrent writes are resolved.
    pub versioning: Versioning,
    /// How long after a delete its tombstone is collected (milliseconds).
    pub tombstone_ttl_ms: u64,
    /// Keys the clients use.
    pub keys: u32,
    /// Percent of client operations that are reads.
    pub get_percent: u32,
    /// Percent that are deletes (the rest are puts).
    pub delete_percent: u32,
    /// Node 0 writes one update, key `rumor`, when it starts: the epidemic experiments.
    pub initial_update: bool,
    /// Every node gossips at the same instant of each cycle instead of at its own random
    /// phase: the synchronous rounds of the paper's simulations (a message sent in one round
    /// arrives after every node has gossiped in it).
    pub synchronous_rounds: bool,
    /// Planted bugs to switch on.
    pub bugs: Vec<GossipBug>,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            gossip_ms: 100,
            dissemination: Dissemination::AntiEntropy {
                direction: Direction::PushPull,
                exchange: Exchange::Digest,
            },
            versioning: Versioning::VersionVectors,
            tombstone_ttl_ms: 30_000,
            keys: 4,
            get_percent: 50,
            delete_percent: 10,
            initial_update: false,
            synchronous_rounds: false,
            bugs: Vec::new(),
        }
    }
}

impl GossipConfig {
    fn has(&self, bug: GossipBug) -> bool {
        self.bugs.contains(&bug)
    }

    fn rumor(&self) -> Option<Rumor> {
        match self.dissemination {
            Dissemination::AntiEntropy { .. } => None,
            Dissemination::RumorMongering(r) | Dissemination::Combined { rumor: r, .. } => Some(r),
        }
    }
}

/// Every version of every key a replica holds: the cache.
pub type Store = BTreeMap<String, Vec<Version>>;

/// A write a node acknowledged, kept in its journal (the checker reads it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Written {
    /// The key.
    pub key: String,
    /// The version it made.
    pub version: Version,
}

/// What survives a crash.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CacheDurable {
    /// The cache; changed only through [`CacheDurable::store_mut`], which counts the change.
    store: Store,
    /// This node's hybrid logical clock: the stamp of its last write.
    pub clock: Hlc,
    /// How many writes this node has taken (its dots' counter).
    pub writes: u64,
    /// Every write it acknowledged, persisted before the acknowledgement.
    pub journal: Vec<Written>,
    /// Counts the changes to `store`: a checker that found two stores equal need not compare
    /// them again until one of them changes.
    revision: u64,
}

impl CacheDurable {
    /// The cache.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cache, to change: counts a change, so that checkers comparing stores look again.
    /// Every change goes through here; a change that bypassed it would let a checker keep a
    /// stale "these two stores are equal".
    pub fn store_mut(&mut self) -> &mut Store {
        self.revision += 1;
        &mut self.store
    }

    /// How many times the store was taken to be changed.
    pub fn revision(&self) -> u64 {
        self.revision
    }
}

/// A key and its versions, as messages carry them.
pub type Entries = Vec<(String, Vec<Version>)>;

/// Node to node.
#[derive(Clone, Debug, Serialize)]
pub enum GossipMsg {
    /// Anti-entropy, full: every key; `reply` asks for the receiver's store back.
    State {
        /// The sender's store.
        entries: Entries,
        /// Whether to answer with the receiver's store.
        reply: bool,
    },
    /// Anti-entropy, full pull: send me your store.
    PullRequest,
    /// Anti-entropy, digest: each key's version dots, and which way the exchange goes.
    Digest {
        /// Key and the dots of its versions.
        digest: Vec<(String, Vec<Dot>)>,
        /// The starter's direction.
        direction: Direction,
    },
    /// The versions of keys the receiver lacks, and the keys the sender wants back.
    Delta {
        /// Versions for the receiver.
        entries: Entries,
        /// Keys the sender lacks something of.
        want: Vec<String>,
    },
    /// Hot rumors.
    Rumor(Entries),
    /// What the receiver of rumors made of them.
    Feedback {
        /// Rumors it already knew: an unnecessary contact.
        known: Vec<String>,
        /// Rumors that were news to it.
        news: Vec<String>,
    },
    /// Send me your hot rumors.
    RumorRequest,
}

/// The node's timers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum GossipTimer {
    /// One gossip cycle.
    Cycle,
}

/// One cache replica.
#[derive(Clone, Debug)]
pub struct GossipNode {
    id: NodeId,
    config: Arc<GossipConfig>,
    merge: MergeFn,
    /// Rumors this node is infective for, with their loss counters.
    hot: BTreeMap<String, u32>,
    cycle: u64,
    /// When each key first changed here in this incarnation (the epidemic tables read it).
    pub learned: BTreeMap<String, Time>,
    /// Versions sent in rumors (the paper's traffic).
    pub rumor_versions_sent: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Estimated bytes sent (keys, values, and 16 bytes per dot or stamp).
    pub bytes_sent: u64,
}

impl GossipNode {
    fn random_peer(&self, ctx: &mut Ctx<'_, Self>) -> Option<NodeId> {
        let peers = u64::from(ctx.cluster_size() - 1);
        (peers > 0).then(|| {
            let pick = rng::below(ctx.rng(), peers) as u32;
            NodeId(if pick >= self.id.0 { pick + 1 } else { pick })
        })
    }

    fn send(&mut self, to: NodeId, msg: GossipMsg, ctx: &mut Ctx<'_, Self>) {
        self.messages_sent += 1;
        self.bytes_sent += message_bytes(&msg);
        ctx.send(to, msg);
    }

    /// Answers an anti-entropy exchange with this store (`entries`, taken before merging).
    fn send_store(&mut self, to: NodeId, entries: Entries, ctx: &mut Ctx<'_, Self>) {
        let msg = GossipMsg::State {
            entries,
            reply: false,
        };
        self.send(to, msg, ctx);
    }

    fn entries<'k>(ctx: &Ctx<'_, Self>, keys: impl IntoIterator<Item = &'k String>) -> Entries {
        let store = &ctx.durable().store;
        keys.into_iter()
            .filter_map(|k| store.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    fn all_entries(ctx: &Ctx<'_, Self>) -> Entries {
        ctx.durable()
            .store
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Merges a peer's versions; returns the keys whose versions changed here.
    fn absorb(&mut self, entries: Entries, ctx: &mut Ctx<'_, Self>) -> BTreeSet<String> {
        let mut changed = BTreeSet::new();
        for (key, theirs) in entries {
            let mine = ctx.durable().store.get(&key).map_or(&[][..], Vec::as_slice);
            let merged = self.resolve(mine, &theirs);
            if merged != mine {
                ctx.durable_mut().store_mut().insert(key.clone(), merged);
                changed.insert(key);
            }
        }
        for key in &changed {
            self.learned.entry(key.clone()).or_insert(ctx.now());
            if self.config.rumor().is_some() {
                self.hot.entry(key.clone()).or_insert(0);
            }
        }
        changed
    }

    /// What this replica keeps of one key given its versions and a peer's.
    fn resolve(&self, mine: &[Version], theirs: &[Version]) -> Vec<Version> {
        match self.config.versioning {
            Versioning::LastWriterWins if self.config.has(GossipBug::TieKeepsMine) => {
                version::last_writer_wins_tie_keeps_mine(mine, theirs)
            }
            Versioning::LastWriterWins => version::last_writer_wins((self.merge)(mine, theirs)),
            Versioning::VersionVectors => (self.merge)(mine, theirs),
        }
    }

    /// Takes a client's write (a value, or `None` to delete): it overtakes every version held.
    fn write(&mut self, key: &str, value: Option<String>, ctx: &mut Ctx<'_, Self>) {
        let now_us = ctx.now().as_micros();
        let me = self.id.0;
        let durable = ctx.durable_mut();
        let held = durable.store.get(key).map_or(&[][..], Vec::as_slice);
        let mut seen = VersionVector::default();
        let mut last = durable.clock;
        for v in held {
            seen.merge(&v.seen);
            last = last.max(v.stamp);
        }
        durable.writes += 1;
        let dot = Dot {
            node: me,
            counter: durable.writes,
        };
        seen.add(dot);
        let version = Version {
            dot,
            seen,
            stamp: Hlc::next(last, now_us, me),
            value,
        };
        durable.clock = version.stamp;
        durable
            .store_mut()
            .insert(key.to_string(), vec![version.clone()]);
        durable.journal.push(Written {
            key: key.to_string(),
            version,
        });
        self.learned.entry(key.to_string()).or_insert(ctx.now());
        if self.config.rumor().is_some() {
            self.hot.insert(key.to_string(), 0);
        }
    }

    /// The single value a read-modify-write starts from: the newest live version's, or `""`.
    fn current(ctx: &Ctx<'_, Self>, key: &str) -> String {
        ctx.durable()
            .store
            .get(key)
            .and_then(|vs| vs.iter().max_by_key(|v| v.stamp))
            .and_then(|v| v.value.clone())
            .unwrap_or_default()
    }

    fn read(ctx: &Ctx<'_, Self>, key: &str) -> KvResponse {
        let mut values: Vec<String> = ctx
            .durable()
            .store
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|v| v.value.clone())
            .collect();
        values.sort();
        match values.len() {
            0 => KvResponse::Ok(Some(String::new())),
            1 => KvResponse::Ok(values.pop()),
            _ => KvResponse::Siblings(values),
        }
    }

    /// Drops tombstones older than the time to live (one cycle with the planted bug).
    fn collect_tombstones(&mut self, ctx: &mut Ctx<'_, Self>) {
        let ttl_ms = if self.config.has(GossipBug::EarlyTombstoneCollection) {
            self.config.gossip_ms
        } else {
            self.config.tombstone_ttl_ms
        };
        let now_us = ctx.now().as_micros();
        let ripe = |vs: &Vec<Version>| {
            vs.iter().all(|v| {
                v.is_tombstone() && v.stamp.wall_us.saturating_add(ttl_ms * 1_000) <= now_us
            })
        };
        let dead: Vec<String> = ctx
            .durable()
            .store
            .iter()
            .filter(|(_, vs)| ripe(vs))
            .map(|(k, _)| k.clone())
            .collect();
        if !dead.is_empty() {
            let store = ctx.durable_mut().store_mut();
            for key in &dead {
                store.remove(key);
                self.hot.remove(key);
            }
            ctx.note_with(|| format!("collected the tombstones of {}", dead.join(", ")));
        }
    }

    fn anti_entropy(
        &mut self,
        direction: Direction,
        exchange: Exchange,
        peer: NodeId,
        ctx: &mut Ctx<'_, Self>,
    ) {
        let msg = match (exchange, direction) {
            (Exchange::Full, Direction::Pull) => GossipMsg::PullRequest,
            (Exchange::Full, _) => GossipMsg::State {
                entries: Self::all_entries(ctx),
                reply: direction == Direction::PushPull,
            },
            (Exchange::Digest, _) => GossipMsg::Digest {
                digest: ctx
                    .durable()
                    .store
                    .iter()
                    .map(|(k, vs)| (k.clone(), vs.iter().map(|v| v.dot).collect()))
                    .collect(),
                direction,
            },
        };
        self.send(peer, msg, ctx);
    }

    fn spread_rumors(&mut self, rumor: Rumor, ctx: &mut Ctx<'_, Self>) {
        match rumor.direction {
            Direction::Pull => {
                if let Some(peer) = self.random_peer(ctx) {
                    self.send(peer, GossipMsg::RumorRequest, ctx);
                }
            }
            Direction::Push | Direction::PushPull => {
                if !self.hot.is_empty()
                    && let Some(peer) = self.random_peer(ctx)
                {
                    self.send_rumors(rumor, peer, ctx);
                }
            }
        }
    }

    fn send_rumors(&mut self, rumor: Rumor, to: NodeId, ctx: &mut Ctx<'_, Self>) {
        let keys: Vec<String> = self.hot.keys().cloned().collect();
        let entries = Self::entries(ctx, &keys);
        self.rumor_versions_sent += entries.iter().map(|(_, vs)| vs.len() as u64).sum::<u64>();
        self.send(to, GossipMsg::Rumor(entries), ctx);
        if !rumor.feedback {
            for key in &keys {
                self.contact(rumor, key, ctx);
            }
        }
    }

    /// A counted contact for a hot rumor: it may lose interest.
    fn contact(&mut self, rumor: Rumor, key: &str, ctx: &mut Ctx<'_, Self>) {
        let Some(counter) = self.hot.get_mut(key) else {
            return;
        };
        let done = match rumor.loss {
            Loss::Counter => {
                *counter += 1;
                *counter >= rumor.k
            }
            Loss::Coin => rng::below(ctx.rng(), u64::from(rumor.k)) == 0,
        };
        if done {
            self.hot.remove(key);
        }
    }
}

/// An estimate of a message's size on a wire: keys and values, 16 bytes per dot or stamp.
fn message_bytes(msg: &GossipMsg) -> u64 {
    let versions = |vs: &[Version]| -> u64 {
        vs.iter()
            .map(|v| 32 + 16 * v.seen.len() as u64 + v.value.as_ref().map_or(0, |s| s.len() as u64))
            .sum()
    };
    let entries = |es: &Entries| -> u64 { es.iter().map(|(k, vs)| k.len() as u64 + versions(vs)).sum() };
    8 + match msg {
        GossipMsg::State { entries: es, .. } | GossipMsg::Rumor(es) => entries(es),
        GossipMsg::Delta { entries: es, want } => {
            entries(es) + want.iter().map(|k| k.len() as u64).sum::<u64>()
        }
        GossipMsg::Digest { digest, .. } => digest
            .iter()
            .map(|(k, dots)| k.len() as u64 + 16 * dots.len() as u64)
            .sum(),
        GossipMsg::Feedback { known, news } => {
            known.iter().chain(news).map(|k| k.len() as u64).sum()
        }
        GossipMsg::PullRequest | GossipMsg::RumorRequest => 0,
    }
}

impl Node for GossipNode {
    type Msg = GossipMsg;
    type Timer = GossipTimer;
    type Request = KvRequest;
    type Response = KvResponse;
    type Durable = CacheDurable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        // A random first phase, so that node 0 does not always gossip first.
        let phase = if self.config.synchronous_rounds {
            self.config.gossip_ms * 1_000
        } else {
            ctx.random_between(1, self.config.gossip_ms * 1_000)
        };
        ctx.set_timer(Time::from_micros(phase), GossipTimer::Cycle);
        if self.config.initial_update && self.id == NodeId(0) && ctx.durable().writes == 0 {
            self.write("rumor", Some("news".into()), ctx);
        }
    }

    fn on_message(&mut self, from: NodeId, msg: GossipMsg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            GossipMsg::State { entries, reply } => {
                let back = reply.then(|| Self::all_entries(ctx));
                self.absorb(entries, ctx);
                if let Some(entries) = back {
                    self.send_store(from, entries, ctx);
                }
            }
            GossipMsg::PullRequest => {
                let entries = Self::all_entries(ctx);
                self.send_store(from, entries, ctx);
            }
            GossipMsg::Digest { digest, direction } => {
                let theirs: BTreeMap<&String, &Vec<Dot>> = digest.iter().map(|(k, d)| (k, d)).collect();
                let store = &ctx.durable().store;
                let mut offer = Vec::new();
                let mut want = Vec::new();
                for (key, versions) in store {
                    let their_dots = theirs.get(key).map_or(&[][..], |d| d.as_slice());
                    if versions.iter().any(|v| !their_dots.contains(&v.dot)) {
                        offer.push(key.clone());
                    }
                }
                for (key, dots) in &digest {
                    let mine = store.get(key).map_or(&[][..], Vec::as_slice);
                    if dots.iter().any(|d| !mine.iter().any(|v| v.dot == *d)) {
                        want.push(key.clone());
                    }
                }
                if direction == Direction::Push {
                    offer.clear();
                }
                if direction == Direction::Pull {
                    want.clear();
                }
                if !offer.is_empty() || !want.is_empty() {
                    let entries = Self::entries(ctx, &offer);
                    self.send(from, GossipMsg::Delta { entries, want }, ctx);
                }
            }
            GossipMsg::Delta { entries, want } => {
                self.absorb(entries, ctx);
                if !want.is_empty() {
                    let entries = Self::entries(ctx, &want);
                    self.send(
                        from,
                        GossipMsg::Delta {
                            entries,
                            want: Vec::new(),
                        },
                        ctx,
                    );
                }
            }
            GossipMsg::Rumor(entries) => {
                let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
                let changed = self.absorb(entries, ctx);
                if self.config.rumor().is_some_and(|r| r.feedback) {
                    let (news, known) = keys.into_iter().partition(|k| changed.contains(k));
                    self.send(from, GossipMsg::Feedback { known, news }, ctx);
                }
            }
            GossipMsg::Feedback { known, news } => {
                if let Some(rumor) = self.config.rumor() {
                    for key in &known {
                        self.contact(rumor, key, ctx);
                    }
                    // A counter counts unnecessary contacts in a row: news resets it.
                    for key in &news {
                        if let Some(counter) = self.hot.get_mut(key) {
                            *counter = 0;
                        }
                    }
                }
            }
            GossipMsg::RumorRequest => {
                if let Some(rumor) = self.config.rumor()
                    && !self.hot.is_empty()
                {
                    self.send_rumors(rumor, from, ctx);
                }
            }
        }
    }

    fn on_timer(&mut self, GossipTimer::Cycle: GossipTimer, ctx: &mut Ctx<'_, Self>) {
        self.cycle += 1;
        self.collect_tombstones(ctx);
        match self.config.dissemination {
            Dissemination::AntiEntropy {
                direction,
                exchange,
            } => {
                if let Some(peer) = self.random_peer(ctx) {
                    self.anti_entropy(direction, exchange, peer, ctx);
                }
            }
            Dissemination::RumorMongering(rumor) => self.spread_rumors(rumor, ctx),
            Dissemination::Combined {
                rumor,
                anti_entropy_every,
            } => {
                self.spread_rumors(rumor, ctx);
                if self.cycle.is_multiple_of(u64::from(anti_entropy_every))
                    && let Some(peer) = self.random_peer(ctx)
                {
                    self.anti_entropy(Direction::PushPull, Exchange::Digest, peer, ctx);
                }
            }
        }
        ctx.set_timer(
            Time::from_millis(self.config.gossip_ms),
            GossipTimer::Cycle,
        );
    }

    fn on_request(&mut self, reply_to: ReplyTo, KvRequest(op): KvRequest, ctx: &mut Ctx<'_, Self>) {
        // Appends and compare-and-sets are local read-modify-writes: atomic on this replica
        // only, as in any AP store.
        let response = match op {
            KvOp::Get(key) => Self::read(ctx, &key),
            KvOp::Put(key, value) => {
                self.write(&key, Some(value), ctx);
                KvResponse::Ok(None)
            }
            KvOp::Delete(key) => {
                self.write(&key, None, ctx);
                KvResponse::Ok(None)
            }
            KvOp::Append(key, value) => {
                let new = Self::current(ctx, &key) + &value;
                self.write(&key, Some(new), ctx);
                KvResponse::Ok(None)
            }
            KvOp::Cas(cas) => {
                if Self::current(ctx, &cas.key) == cas.expected {
                    self.write(&cas.key, Some(cas.new.clone()), ctx);
                    KvResponse::Ok(None)
                } else {
                    KvResponse::CasFailed
                }
            }
        };
        ctx.reply(reply_to, response);
    }

    fn classify(response: &KvResponse) -> ResponseClass {
        response.classify()
    }

    fn view(&self, durable: &CacheDurable) -> NodeView {
        let versions: usize = durable.store.values().map(Vec::len).sum();
        let mut view = NodeView::new("replica")
            .field("keys", durable.store.len())
            .field("versions", versions)
            .field("writes taken", durable.writes)
            .field("clock", durable.clock);
        if self.config.rumor().is_some() {
            view = view.field("hot rumors", self.hot.len());
        }
        for (key, vs) in durable.store.iter().take(8) {
            let shown: Vec<String> = vs
                .iter()
                .map(|v| {
                    format!(
                        "{}={} {}",
                        v.dot,
                        v.value.as_deref().unwrap_or("(deleted)"),
                        v.seen
                    )
                })
                .collect();
            view = view.field(key.clone(), shown.join(" | "));
        }
        view
    }
}

impl Protocol for GossipNode {
    type Config = GossipConfig;
    const NAME: &'static str = "gossip cache";

    fn validate(config: &GossipConfig, _nodes: u32) -> Result<(), FieldError> {
        if config.gossip_ms == 0 {
            return Err(FieldError::new("gossip_ms", "must be positive"));
        }
        if config.keys == 0 || config.keys > 10_000 {
            return Err(FieldError::new("keys", "must be between 1 and 10000"));
        }
        if config.get_percent.saturating_add(config.delete_percent) > 100 {
            return Err(FieldError::new(
                "delete_percent",
                format!(
                    "get_percent {} plus delete_percent {} is more than 100",
                    config.get_percent, config.delete_percent
                ),
            ));
        }
        if let Some(rumor) = config.rumor() {
            if rumor.k == 0 || rumor.k > 1_000 {
                return Err(FieldError::new(
                    "dissemination",
                    format!("k = {} must be between 1 and 1000", rumor.k),
                ));
            }
            if rumor.direction == Direction::PushPull {
                return Err(FieldError::new(
                    "dissemination",
                    "rumors are pushed or pulled: PushPull is an anti-entropy direction",
                ));
            }
        }
        if let Dissemination::Combined {
            anti_entropy_every: 0,
            ..
        } = config.dissemination
        {
            return Err(FieldError::new(
                "dissemination",
                "anti_entropy_every must be at least 1 cycle",
            ));
        }
        if config.has(GossipBug::TieKeepsMine) && config.versioning != Versioning::LastWriterWins {
            return Err(FieldError::new(
                "bugs",
                "TieKeepsMine is a last-writer-wins bug: set versioning: LastWriterWins",
            ));
        }
        if config.has(GossipBug::ConcurrentAsOlder)
            && config.versioning != Versioning::VersionVectors
        {
            return Err(FieldError::new(
                "bugs",
                "ConcurrentAsOlder is a version-vector bug: set versioning: VersionVectors",
            ));
        }
        Ok(())
    }
    fn min_nodes(_: &GossipConfig) -> u32 {
        2
    }
    fn clear_bugs(config: &mut GossipConfig) {
        config.bugs.clear();
    }
    fn node(setup: &Setup<GossipConfig>, id: NodeId) -> GossipNode {
        let merge = if setup.config.has(GossipBug::ConcurrentAsOlder) {
            version::merge_concurrent_as_older
        } else {
            version::MERGE.pick(&setup.code)
        };
        GossipNode {
            id,
            config: setup.config.clone(),
            merge,
            hot: BTreeMap::new(),
            cycle: 0,
            learned: BTreeMap::new(),
            rumor_versions_sent: 0,
            messages_sent: 0,
            bytes_sent: 0,
        }
    }
    fn workload(setup: &Setup<GossipConfig>) -> Option<Box<dyn Workload<KvRequest>>> {
        Some(Box::new(CacheWorkload(setup.config.clone())))
    }
    fn invariants(setup: &Setup<GossipConfig>) -> Vec<Box<dyn Invariant<GossipNode>>> {
        let mut all: Vec<Box<dyn Invariant<GossipNode>>> =
            vec![Box::new(SiblingsConcurrent), Box::new(Converged::default())];
        // Last-writer-wins loses concurrent writes by design: counted in the report instead.
        if setup.config.versioning == Versioning::VersionVectors {
            all.push(Box::new(NoLostWrite::default()));
            all.push(Box::new(WritesEverywhere::default()));
        }
        all
    }
    fn report(setup: &Setup<GossipConfig>, sim: &Simulation<GossipNode>) -> Vec<ReportItem> {
        let world = sim.world();
        let n = world.cluster_size();
        let lost = invariants::lost_writes(&world);
        let written: usize = (0..n).map(|i| world.durable(NodeId(i)).journal.len()).sum();
        let stale = stale_reads(sim);
        let cycles = (sim.now().as_micros() / (setup.config.gossip_ms * 1_000)).max(1);
        let (messages, bytes) = (0..n)
            .filter_map(|i| world.node(NodeId(i)))
            .fold((0, 0), |(m, b), node| (m + node.messages_sent, b + node.bytes_sent));
        let per = |x: u64| x as f64 / f64::from(n) / cycles as f64;
        vec![
            ReportItem::count("writes_acknowledged", "writes acknowledged", written as u64),
            ReportItem::new(
                "writes_lost",
                "writes lost",
                format!("{} of {written}", lost.len()),
                serde_json::json!(lost.len()),
            ),
            ReportItem::new(
                "stale_reads",
                "stale reads",
                format!(
                    "{} of {} ({:.1}%)",
                    stale.stale,
                    stale.reads,
                    100.0 * stale.rate()
                ),
                serde_json::json!({"stale": stale.stale, "reads": stale.reads, "rate": stale.rate()}),
            ),
            ReportItem::count("sibling_reads", "sibling reads", stale.siblings),
            ReportItem::new(
                "messages_per_node_cycle",
                "msgs/node/cycle",
                format!("{:.2}", per(messages)),
                serde_json::json!(per(messages)),
            ),
            ReportItem::new(
                "bytes_per_node_cycle",
                "bytes/node/cycle (est)",
                format!("{:.0}", per(bytes)),
                serde_json::json!(per(bytes)),
            ),
        ]
    }
}

/// Reads that missed an acknowledged write: how many of how many.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct StaleReads {
    /// Reads that completed.
    pub reads: u64,
    /// Reads that missed a write acknowledged before they began.
    pub stale: u64,
    /// Reads that returned siblings.
    pub siblings: u64,
}

impl StaleReads {
    /// The fraction of reads that were stale.
    pub fn rate(&self) -> f64 {
        if self.reads == 0 {
            0.0
        } else {
            self.stale as f64 / self.reads as f64
        }
    }
}

/// Counts stale reads in the client history. A read is stale when some write of its key (put or
/// delete) was acknowledged before the read began and the read returned neither that write's
/// result nor the result of any write that had not finished before that write began (a later
/// or concurrent one). A delete's result, and a missing key's, is the empty value.
pub fn stale_reads(sim: &Simulation<GossipNode>) -> StaleReads {
    let ops = &sim.history().ops;
    let mut out = StaleReads::default();
    for read in ops {
        let (KvOp::Get(key), Some(Completion::Ok(response))) = (&read.request.0, &read.completion)
        else {
            continue;
        };
        out.reads += 1;
        let got: Vec<&str> = match response {
            KvResponse::Ok(v) => vec![v.as_deref().unwrap_or("")],
            KvResponse::Siblings(vs) => {
                out.siblings += 1;
                vs.iter().map(String::as_str).collect()
            }
            _ => continue,
        };
        let writes = || {
            ops.iter()
                .filter(|w| w.request.0.key() == key && written_value(&w.request.0).is_some())
        };
        let missed = writes().any(|w| {
            let acked_before = w.is_ok() && w.completed.is_some_and(|t| t < read.invoked);
            acked_before
                && !writes().any(|x| {
                    let not_before_w = x.completed.is_none_or(|t| t >= w.invoked);
                    (x.call_order == w.call_order || not_before_w)
                        && got.contains(&written_value(&x.request.0).unwrap_or_default())
                })
        });
        if missed {
            out.stale += 1;
        }
    }
    out
}

/// What a write leaves in its key: a put's value, or the empty value of a delete.
fn written_value(op: &KvOp) -> Option<&str> {
    match op {
        KvOp::Put(_, v) => Some(v.as_str()),
        KvOp::Delete(_) => Some(""),
        _ => None,
    }
}

/// Clients read, write and delete random keys; every written value is unique (`c<client>.<seq>`).
#[derive(Clone, Debug)]
struct CacheWorkload(Arc<GossipConfig>);

impl Workload<KvRequest> for CacheWorkload {
    fn next_request(&mut self, client: ClientId, seq: u64, rng: &mut SimRng) -> KvRequest {
        let key = format!("k{}", rng::below(rng, u64::from(self.0.keys)));
        let roll = rng::below(rng, 100) as u32;
        KvRequest(if roll < self.0.get_percent {
            KvOp::Get(key)
        } else if roll < self.0.get_percent + self.0.delete_percent {
            KvOp::Delete(key)
        } else {
            KvOp::Put(key, format!("c{}.{seq}", client.0))
        })
    }
}
