//! Distributed locks: the common interview answer, why it breaks, and fencing tokens.
//!
//! One cluster plays every role, so every role meets the same faults (a worker can be paused
//! in a garbage-collection pause, its clock can drift, its link can be slow):
//!
//! - nodes `0..s` run the **lock service**: one server holding the lock record
//!   ([`Design::SingleInstance`], the `SET key value NX PX ttl` answer), or `s` servers running
//!   the project's Raft as a linearizable store and taking the lock with a compare-and-set
//!   ([`Design::ConsensusLease`], etcd- or ZooKeeper-style);
//! - node `s` is the **storage**: a counter that workers read, increment and write back inside
//!   their critical section, and with [`Design::FencingTokens`] the fence that rejects a token
//!   lower than the highest it has seen;
//! - the rest are **workers**, each a closed loop: acquire a lease, read the counter, compute,
//!   check the lease, write the counter plus one, release.
//!
//! Every grant carries a token one above the last (the lock record's counter, replicated with
//! the record). The lease is measured by the lock service's clock and by the worker's own, and
//! nothing ties either to the moment a write reaches the storage: a worker paused after its
//! check, or whose write crawls over a slow link, writes after its lease ended and after the
//! next holder read the counter. Only the storage can refuse such a write, and only if it is
//! told the token: that is the fence.
//!
//! The engine's simulated clients probe the lock service ("who holds the lock?") so the CAP
//! report shows the service's availability on each side of a partition.

pub mod invariants;
pub mod service;
pub mod storage;
pub mod worker;

use crate::protocol::{Protocol, ReportItem, Setup};
use crate::raft::{self, RaftConfig};
use serde::{Deserialize, Serialize};
use simlab_sim::rng::SimRng;
use simlab_sim::{
    ClientId, Ctx, FieldError, Invariant, Node, NodeId, NodeView, ReplyTo, ResponseClass,
    Simulation, Workload,
};
use std::sync::Arc;

pub use service::LockRecord;
pub use storage::{Access, FENCE, FenceFn, StorageState};

/// Which lock the service hands out.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Design {
    /// One lock server: acquire is set-if-absent with a time to live, release deletes the key
    /// if the caller holds it. The server is a single point of failure, and leases end by its
    /// clock.
    #[default]
    SingleInstance,
    /// The lock record lives in a Raft-replicated key-value store: acquire is a read and a
    /// compare-and-set through the log, so the service survives crashes and partitions of a
    /// minority. The lock is consistent; the resource is still unprotected.
    ConsensusLease,
    /// As `ConsensusLease`, and the storage checks every access's token against the highest
    /// it has seen: a holder whose lease ended is refused.
    FencingTokens,
    /// Redlock: `service_nodes` independent single instances (5 by default); a worker asks them
    /// all and holds the lock when a majority granted it, for the time to live minus what the
    /// asking took and a clock-drift allowance. No instance knows the others, and the grants
    /// carry no common token, so there is nothing to fence with.
    Redlock,
}

impl Design {
    /// Whether the lock record is replicated with Raft.
    pub fn replicated(self) -> bool {
        matches!(self, Design::ConsensusLease | Design::FencingTokens)
    }

    /// Whether a worker takes the lock from a majority of independent instances (Redlock).
    pub fn majority_of_instances(self) -> bool {
        self == Design::Redlock
    }

    /// Whether the storage checks tokens.
    pub fn fenced(self) -> bool {
        matches!(self, Design::FencingTokens)
    }
}

/// Planted bugs: mistakes the common answer makes.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockBug {
    /// Acquire sets the key with no expiry: a holder that crashes keeps the lock for ever.
    NoTtl,
    /// Release deletes the key whoever holds it: a worker whose lease expired deletes the next
    /// holder's lock.
    UnlockWithoutOwnerCheck,
    /// The storage checks tokens on writes only: a reader with a newer token does not raise
    /// the fence, so an older holder's write still lands between its read and write.
    FenceWritesOnly,
    /// The single lock server keeps the record in memory only (a cache server without
    /// persistence): after a restart it has forgotten the holder and the tokens it granted.
    VolatileRecord,
}

/// The lock lab's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockConfig {
    /// The lock design.
    pub design: Design,
    /// Lock-service nodes; 0 picks the design's own (1 for a single instance, 3 for Raft, 5 for
    /// Redlock).
    pub service_nodes: u32,
    /// A lease's time to live (milliseconds).
    pub ttl_ms: u64,
    /// Workers renew their lease a third of the way through it.
    pub renew: bool,
    /// A worker checks its lease by its own clock before it writes, and abandons the write if
    /// the lease has run out.
    pub check_lease: bool,
    /// Between releasing the lock and asking again (milliseconds).
    pub think_ms: (u64, u64),
    /// The computation between reading the counter and writing it back (milliseconds).
    pub work_ms: (u64, u64),
    /// Between the lease check and the write leaving the worker: building and sending the
    /// request (milliseconds). A pause here is the pause the check cannot see.
    pub send_ms: (u64, u64),
    /// After a refusal, wait this long before asking again (milliseconds).
    pub retry_ms: (u64, u64),
    /// A request unanswered for this long is given up (milliseconds).
    pub request_timeout_ms: u64,
    /// The replicated lock service's Raft timing (consensus designs).
    pub raft: RaftConfig,
    /// Planted bugs to switch on.
    pub bugs: Vec<LockBug>,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            design: Design::SingleInstance,
            service_nodes: 0,
            ttl_ms: 200,
            renew: false,
            check_lease: true,
            think_ms: (5, 30),
            work_ms: (10, 40),
            send_ms: (2, 10),
            retry_ms: (10, 40),
            request_timeout_ms: 100,
            raft: RaftConfig {
                election_timeout_ms: (60, 120),
                heartbeat_ms: 20,
                ..RaftConfig::default()
            },
            bugs: Vec::new(),
        }
    }
}

impl LockConfig {
    /// Whether a planted bug is on.
    pub fn has(&self, bug: LockBug) -> bool {
        self.bugs.contains(&bug)
    }

    /// How many nodes run the lock service.
    pub fn service_count(&self) -> u32 {
        match (self.service_nodes, self.design) {
            (0, Design::SingleInstance) => 1,
            (0, Design::Redlock) => 5,
            (0, _) => 3,
            (n, _) => n,
        }
    }

    /// The storage node.
    pub fn storage(&self) -> NodeId {
        NodeId(self.service_count())
    }

    /// What node `id` does in a cluster laid out by these settings.
    pub fn role_of(&self, id: NodeId) -> RoleKind {
        let s = self.service_count();
        match id.0 {
            n if n < s => RoleKind::Service,
            n if n == s => RoleKind::Storage,
            _ => RoleKind::Worker,
        }
    }

    fn validate(&self, nodes: u32) -> Result<(), FieldError> {
        let err = |f: &str, r: String| Err(FieldError::new(f, r));
        let s = self.service_count();
        if self.design == Design::SingleInstance && s != 1 {
            return err(
                "service_nodes",
                format!("{s}: a single-instance lock runs on exactly 1 node"),
            );
        }
        if u64::from(nodes) < u64::from(s) + 2 {
            return err(
                "nodes",
                format!(
                    "{nodes} nodes leave no worker: the lock service takes {s}, the storage 1, \
                     and at least one worker is needed (two to contend)"
                ),
            );
        }
        if self.ttl_ms == 0 {
            return err("ttl_ms", "a lease must last a positive time".into());
        }
        if self.request_timeout_ms == 0 {
            return err("request_timeout_ms", "must be positive".into());
        }
        for (name, (lo, hi)) in [
            ("think_ms", self.think_ms),
            ("work_ms", self.work_ms),
            ("send_ms", self.send_ms),
            ("retry_ms", self.retry_ms),
        ] {
            if lo > hi {
                return err(name, format!("({lo}, {hi}): the lower bound is above the upper"));
            }
        }
        if self.design.replicated() {
            self.raft.validate(s).map_err(|e| e.within("raft"))?;
        }
        if self.has(LockBug::VolatileRecord) && self.design.replicated() {
            return err(
                "bugs",
                "VolatileRecord plants a bug in the single lock servers: it needs design: SingleInstance or Redlock"
                    .into(),
            );
        }
        if self.renew && self.design.majority_of_instances() {
            return err(
                "renew",
                "Redlock leases are not renewed here (a renewal would need a majority again): re-acquire instead"
                    .into(),
            );
        }
        if self.has(LockBug::FenceWritesOnly) && !self.design.fenced() {
            return err(
                "bugs",
                "FenceWritesOnly plants a bug in the fence: it needs design: FencingTokens".into(),
            );
        }
        Ok(())
    }
}

/// The three roles.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RoleKind {
    /// Runs the lock service.
    Service,
    /// Holds the protected counter.
    Storage,
    /// Takes the lock and increments the counter.
    Worker,
}

/// A worker's request to the lock service.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LockOp {
    /// Take the lock if it is free or its lease has ended.
    Acquire,
    /// Extend the lease of the grant with this token.
    Renew(u64),
    /// Give the lock back.
    Release(u64),
}

/// The lock service's answer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum LockAnswer {
    /// The lock is the caller's, with this token, for the service's time to live.
    Granted(u64),
    /// Someone else holds it (who, as far as the service knows).
    Held(Option<u32>),
    /// The lease with this token was extended.
    Renewed(u64),
    /// The lock was released.
    Released,
    /// The caller does not hold the lock (its lease ended, or another took it).
    NotHolder,
    /// The lock changed while the request was being served: ask again.
    Contended,
    /// This server cannot serve: try the one hinted.
    Redirect(Option<NodeId>),
}

/// Messages between roles.
#[derive(Clone, Debug, Serialize)]
pub enum Msg {
    /// Between the replicated lock service's servers.
    Raft(raft::Msg),
    /// Worker → lock service.
    Lock {
        /// The worker's request number.
        seq: u64,
        /// What it asks.
        op: LockOp,
    },
    /// Lock service → worker.
    Locked {
        /// The request answered.
        seq: u64,
        /// The answer.
        answer: LockAnswer,
    },
    /// Worker → storage: read or write the counter, under this token.
    Access {
        /// The worker's request number.
        seq: u64,
        /// The token of the worker's grant.
        token: u64,
        /// What it does.
        access: Access,
    },
    /// Storage → worker.
    Accessed {
        /// The request answered.
        seq: u64,
        /// The counter read (for a read), `None` for a write done; `Err(fence)` when the
        /// storage refused the token because it has seen `fence`.
        result: Result<Option<u64>, u64>,
    },
}

/// Timers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// The replicated lock service's Raft timers.
    Raft(raft::Timer),
    /// Worker: time to ask for the lock.
    Acquire,
    /// Worker: the request with this number is given up if still unanswered.
    Timeout(u64),
    /// Worker: the computation is done; check the lease and write.
    WorkDone,
    /// Worker: the write leaves now.
    Send,
    /// Worker: renew the lease of this token.
    Renew(u64),
}

/// What survives a crash, per role (each node uses its role's part).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LockDurable {
    /// Single-instance service: the lock record (the server persists every change).
    pub record: LockRecord,
    /// Replicated service: Raft's term, vote and log.
    pub raft: raft::log::RaftDurable,
    /// Storage: the counter, the fence and what it served.
    pub storage: StorageState,
    /// Worker: the next request number (numbers never repeat, across restarts too).
    pub next_seq: u64,
}

/// The engine clients' probe: who holds the lock now?
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HolderQuery;

/// The lock service's answer to a probe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Probe {
    /// The lock record as this server reads it (through the log, when replicated).
    Holder {
        /// Its holder, if its lease has not ended by this server's clock.
        holder: Option<u32>,
        /// The last token granted.
        token: u64,
    },
    /// Not the server to ask: try the hinted one.
    Redirect(Option<NodeId>),
}

/// The clients' workload: probes only.
#[derive(Clone, Debug)]
pub struct ProbeWorkload;

impl Workload<HolderQuery> for ProbeWorkload {
    fn next_request(&mut self, _: ClientId, _: u64, _: &mut SimRng) -> HolderQuery {
        HolderQuery
    }
}

/// One node of the lock lab, in its role.
#[derive(Clone, Debug)]
pub enum LockNode {
    /// A lock server.
    Service(Box<service::LockServer>),
    /// The storage.
    Storage(storage::Storage),
    /// A worker.
    Worker(worker::Worker),
}

impl LockNode {
    /// The worker's state, if this node is a worker.
    pub fn worker(&self) -> Option<&worker::Worker> {
        match self {
            LockNode::Worker(w) => Some(w),
            _ => None,
        }
    }

    /// The lock server's state, if this node is one.
    pub fn server(&self) -> Option<&service::LockServer> {
        match self {
            LockNode::Service(s) => Some(s),
            _ => None,
        }
    }
}

impl Protocol for LockNode {
    type Config = LockConfig;
    const NAME: &'static str = "distributed lock";

    fn validate(config: &LockConfig, nodes: u32) -> Result<(), FieldError> {
        config.validate(nodes)
    }
    fn min_nodes(config: &LockConfig) -> u32 {
        config.service_count().saturating_add(2)
    }
    fn clear_bugs(config: &mut LockConfig) {
        config.bugs.clear();
        config.raft.bugs.clear();
    }
    fn node(setup: &Setup<LockConfig>, id: NodeId) -> LockNode {
        let config = &setup.config;
        match config.role_of(id) {
            RoleKind::Service => {
                LockNode::Service(Box::new(service::LockServer::new(id, config.clone())))
            }
            RoleKind::Storage => LockNode::Storage(storage::Storage::new(
                config.design.fenced(),
                config.has(LockBug::FenceWritesOnly),
                FENCE.pick(&setup.code),
            )),
            RoleKind::Worker => LockNode::Worker(worker::Worker::new(id, config.clone())),
        }
    }
    fn workload(_: &Setup<LockConfig>) -> Option<Box<dyn Workload<HolderQuery>>> {
        Some(Box::new(ProbeWorkload))
    }
    fn invariants(setup: &Setup<LockConfig>) -> Vec<Box<dyn Invariant<LockNode>>> {
        invariants::all(&setup.config)
    }
    fn report(setup: &Setup<LockConfig>, sim: &Simulation<LockNode>) -> Vec<ReportItem> {
        invariants::report(&setup.config, sim)
    }
}

impl Node for LockNode {
    type Msg = Msg;
    type Timer = Timer;
    type Request = HolderQuery;
    type Response = Probe;
    type Durable = LockDurable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            LockNode::Service(s) => s.on_start(ctx),
            LockNode::Storage(_) => {}
            LockNode::Worker(w) => w.on_start(ctx),
        }
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match self {
            LockNode::Service(s) => s.on_message(from, msg, ctx),
            LockNode::Storage(s) => s.on_message(from, msg, ctx),
            LockNode::Worker(w) => w.on_message(msg, ctx),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match self {
            LockNode::Service(s) => s.on_timer(timer, ctx),
            LockNode::Storage(_) => {}
            LockNode::Worker(w) => w.on_timer(timer, ctx),
        }
    }

    fn on_request(&mut self, reply_to: ReplyTo, _: HolderQuery, ctx: &mut Ctx<'_, Self>) {
        match self {
            LockNode::Service(s) => s.on_probe(reply_to, ctx),
            // Probes are for the lock service; its first server is the best guess.
            _ => ctx.reply(reply_to, Probe::Redirect(Some(NodeId(0)))),
        }
    }

    fn classify(response: &Probe) -> ResponseClass {
        match response {
            Probe::Holder { .. } => ResponseClass::Ok,
            Probe::Redirect(hint) => ResponseClass::Redirect(*hint),
        }
    }

    /// The worker holding the lock leads: faults aimed at "the leader" (`PauseLeader`) hit
    /// the current holder.
    fn is_leader(&self) -> bool {
        self.worker().is_some_and(|w| w.lease().is_some())
    }

    /// The holder's token, so of two workers that both believe they hold the lock, the newer
    /// grant is "the leader".
    fn leader_epoch(&self, _: &LockDurable) -> Option<u64> {
        self.worker().and_then(|w| w.lease()).map(|l| l.token)
    }

    fn view(&self, durable: &LockDurable) -> NodeView {
        match self {
            LockNode::Service(s) => s.view(durable),
            LockNode::Storage(s) => s.view(durable),
            LockNode::Worker(w) => w.view(durable),
        }
    }
}

/// The settings, shared by every node of a run.
pub type SharedConfig = Arc<LockConfig>;
