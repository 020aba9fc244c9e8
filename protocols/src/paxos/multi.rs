//! Multi-Paxos replicating a key-value store.
//!
//! - **Slots**: the log is a sequence of slots, each decided by its own instance of Paxos; the
//!   state machine applies them in order (a gap waits).
//! - **Leader**: a node that hears from no leader for a randomized election timeout runs phase
//!   1 with a ballot above every round it has seen, *once for every slot from its first
//!   unapplied one on*. With promises from a majority it leads: for each slot any promise
//!   reported, it re-proposes the value accepted at the highest ballot, fills the slots between
//!   with no-ops, and from then on runs only phase 2 per client command.
//! - **Pre-emption and backoff**: a leader or candidate that meets a higher ballot (a refusal,
//!   or its own acceptor promising someone else) steps down and waits a fresh random election
//!   timeout before trying again, so competing candidates spread out instead of duelling.
//! - **Learning**: the leader counts acceptances per slot for its own ballot; once a majority
//!   accepted, the slot is chosen. Heartbeats carry how far the leader has applied (as Raft's
//!   carry the commit index), and a replica behind it asks for what it missed, many slots at a
//!   time. An Accept lost on the way is sent again when its acceptor answers for a later slot
//!   first, or with the next heartbeat.
//! - **Clients**: every command carries its client's id and sequence number, and the state
//!   machine remembers the last one applied per client, so a retried command applies once.
//!   Reads go through the log, so they are linearizable without leases.

use super::acceptor::{AcceptorFn, Reply, Request};
use super::synod::{pick_acceptor, run_acceptor};
use super::{Ballot, PaxosBug, PaxosDurable, PaxosNode, SharedOp, Value, invariants, majority};
use crate::kv::{self, KvRequest, KvResponse, KvState, KvWorkload};
use crate::protocol::{Protocol, ReportItem, Setup};
use serde::{Deserialize, Serialize};
use simlab_sim::hash::StableHasher;
use simlab_sim::linearizability::Op;
use simlab_sim::linearizability::models::{KvInput, KvOutput};
use simlab_sim::{
    ClientId, Ctx, FieldError, Invariant, Node, NodeId, NodeView, ReplyTo, ResponseClass,
    Simulation, Time, TimerId, Workload,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Multi-Paxos's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MultiPaxosConfig {
    /// With no word from a leader for a time drawn from this range, stand (milliseconds); also
    /// the backoff after being pre-empted.
    pub election_timeout_ms: (u64, u64),
    /// How often a leader sends heartbeats and re-sends unanswered proposals (milliseconds).
    pub heartbeat_ms: u64,
    /// Most chosen slots sent in one catch-up message.
    pub max_batch: usize,
    /// Keys the workload touches.
    pub keys: u32,
    /// Percent of operations that are gets.
    pub get_percent: u32,
    /// Percent that are puts.
    pub put_percent: u32,
    /// Percent that are compare-and-sets (the rest are appends).
    pub cas_percent: u32,
    /// Planted bugs to switch on.
    pub bugs: Vec<PaxosBug>,
    /// Times each node may stand for leader (`None`: no limit). A bound makes an exhaustive
    /// search finite (with time free, an election timer may fire at any step), at the price of
    /// liveness: the checks that a leader exists and that commands apply are left out.
    pub max_elections: Option<u64>,
}

impl Default for MultiPaxosConfig {
    fn default() -> Self {
        MultiPaxosConfig {
            election_timeout_ms: (150, 300),
            heartbeat_ms: 50,
            max_batch: 64,
            keys: 4,
            get_percent: 30,
            put_percent: 20,
            cas_percent: 0,
            bugs: Vec::new(),
            max_elections: None,
        }
    }
}

impl MultiPaxosConfig {
    /// The clients' key-value workload.
    pub fn workload(&self) -> KvWorkload {
        KvWorkload::new(
            self.keys,
            self.get_percent,
            self.put_percent,
            self.cas_percent,
        )
    }

    fn has(&self, bug: PaxosBug) -> bool {
        self.bugs.contains(&bug)
    }
}

/// Messages.
#[derive(Clone, Debug, Serialize)]
pub enum Msg {
    /// Proposer → acceptor: Prepare (phase 1a) or Accept (phase 2a).
    Ask(Request),
    /// Acceptor → proposer: Promise (1b), Accepted (2b) or a refusal.
    Answer(Reply),
    /// Leader → replicas: I lead `ballot`, and have applied every slot up to `applied`.
    Heartbeat {
        /// The leader's ballot.
        ballot: Ballot,
        /// The last slot the leader applied.
        applied: u64,
    },
    /// Leader → a replica that asked: these slots are chosen.
    Decided {
        /// Slots and their chosen values.
        entries: Vec<(u64, Value)>,
    },
    /// Replica → leader: send me the chosen slots from `from` on.
    CatchUp {
        /// The first slot missing.
        from: u64,
    },
    /// Leader → acceptor: Accepts re-sent together (those a heartbeat found unanswered).
    AskAgain(Vec<Request>),
    /// Acceptor → leader: the answers to an `AskAgain`, together.
    Answers(Vec<Reply>),
}

/// Timers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// No leader heard from (or a candidacy went unanswered): stand.
    Election,
    /// Leader: heartbeats and re-sends.
    Heartbeat,
}

/// A node's role.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Running phase 1.
    Candidate,
    /// Leads its ballot.
    Leader,
}

/// A leader's proposal for one slot, until a majority accepted it.
#[derive(Clone, Debug)]
struct Proposal {
    value: Value,
    voters: BTreeSet<NodeId>,
    /// When its Accept was last sent.
    sent: Time,
    /// Acceptors it was re-sent to because they answered for a later slot first.
    nudged: BTreeSet<NodeId>,
}

/// One Multi-Paxos replica: proposer, acceptor, learner and state machine.
#[derive(Clone, Debug)]
pub struct MultiPaxos {
    id: NodeId,
    nodes: u32,
    config: Arc<MultiPaxosConfig>,
    acceptor: AcceptorFn,
    role: Role,
    ballot: Ballot,
    leader: Option<NodeId>,
    highest_round: u64,
    /// Candidate: the promises so far, with what each acceptor reported.
    promises: BTreeMap<NodeId, Vec<(u64, Ballot, Value)>>,
    /// Leader: the next free slot.
    next_slot: u64,
    /// Leader: open slots, their value, who accepted it, and when it was last sent.
    proposals: BTreeMap<u64, Proposal>,
    /// Slots `1..=applied` are applied.
    applied: u64,
    state: KvState,
    /// Client requests waiting for their slot to apply.
    pending: BTreeMap<u64, ReplyTo>,
    election_timer: Option<TimerId>,
    heartbeat_timer: Option<TimerId>,
    /// [`PaxosBug::VolatilePromise`]: the promise kept in memory only.
    volatile_promised: Ballot,
    /// Times this node has stood since it started.
    elections: u64,
}

impl MultiPaxos {
    fn new(
        id: NodeId,
        nodes: u32,
        config: Arc<MultiPaxosConfig>,
        acceptor: AcceptorFn,
    ) -> MultiPaxos {
        MultiPaxos {
            id,
            nodes,
            config,
            acceptor,
            role: Role::Follower,
            ballot: Ballot::default(),
            leader: None,
            highest_round: 0,
            promises: BTreeMap::new(),
            next_slot: 1,
            proposals: BTreeMap::new(),
            applied: 0,
            state: KvState::default(),
            pending: BTreeMap::new(),
            election_timer: None,
            heartbeat_timer: None,
            volatile_promised: Ballot::default(),
            elections: 0,
        }
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role
    }

    /// How many slots this replica has applied (slots `1..=applied`).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The ballot this node leads, if it leads.
    pub fn leading(&self) -> Option<Ballot> {
        (self.role == Role::Leader).then_some(self.ballot)
    }

    /// The key-value state.
    pub fn kv(&self) -> &BTreeMap<String, String> {
        &self.state.kv
    }

    /// Whether `max_elections` allows standing again.
    fn may_stand(&self) -> bool {
        self.config.max_elections.is_none_or(|max| self.elections < max)
    }

    fn reset_election_timer(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        if !self.may_stand() {
            return;
        }
        let (lo, hi) = self.config.election_timeout_ms;
        let after = Time::from_micros(ctx.random_between(lo * 1_000, hi * 1_000));
        self.election_timer = Some(ctx.set_timer(after, Timer::Election));
    }

    fn saw(&mut self, ballot: Ballot) {
        self.highest_round = self.highest_round.max(ballot.round);
    }

    /// Sends `request` to every acceptor; this node's own acceptor answers at once.
    fn ask_all(&mut self, request: Request, ctx: &mut Ctx<'_, Self>) {
        for peer in ctx.peers().collect::<Vec<_>>() {
            ctx.send(peer, Msg::Ask(request.clone()));
        }
        let me = self.id;
        self.on_ask(me, request, ctx);
    }

    fn stand(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.elections += 1;
        self.highest_round += 1;
        self.ballot = Ballot {
            round: self.highest_round,
            node: self.id.0,
        };
        self.role = Role::Candidate;
        self.leader = None;
        self.promises.clear();
        let ballot = self.ballot;
        let from_slot = self.applied + 1;
        ctx.note_with(|| format!("stands with ballot {ballot} from slot {from_slot}"));
        self.reset_election_timer(ctx);
        self.ask_all(Request::Prepare { ballot, from_slot }, ctx);
    }

    /// Meets a higher ballot: stop leading or standing, follow, and wait a random timeout.
    fn step_down(&mut self, higher: Ballot, ctx: &mut Ctx<'_, Self>) {
        self.saw(higher);
        if self.role == Role::Follower {
            return;
        }
        ctx.note_with(|| format!("pre-empted by ballot {higher}: steps down"));
        if let Some(t) = self.heartbeat_timer.take() {
            ctx.cancel_timer(t);
        }
        self.role = Role::Follower;
        self.leader = (higher.node != self.id.0).then_some(NodeId(higher.node));
        self.promises.clear();
        self.proposals.clear();
        // Pending commands may still be chosen under the next leader: say nothing, the clients
        // time out and retry, and their sessions keep a retry from applying twice.
        self.pending.clear();
        self.reset_election_timer(ctx);
    }

    /// The acceptor: handles a request and answers the proposer.
    fn on_ask(&mut self, from: NodeId, request: Request, ctx: &mut Ctx<'_, Self>) {
        let reply = self.accept_or_promise(from, request, ctx);
        if from == self.id {
            self.on_answer(from, reply, ctx);
        } else {
            ctx.send(from, Msg::Answer(reply));
        }
    }

    /// Runs the acceptor on one request from `from` and follows the ballot it accepted.
    fn accept_or_promise(&mut self, from: NodeId, request: Request, ctx: &mut Ctx<'_, Self>) -> Reply {
        let reply = run_acceptor(
            self.acceptor,
            self.config.has(PaxosBug::VolatilePromise),
            &mut self.volatile_promised,
            request,
            ctx,
        );
        if from != self.id
            && let Reply::Promise { ballot, .. } | Reply::Accepted { ballot, .. } = &reply
        {
            // Someone runs a ballot we accept: it leads, or is about to.
            let ballot = *ballot;
            if ballot > self.ballot && self.role != Role::Follower {
                self.step_down(ballot, ctx);
            }
            self.saw(ballot);
            if self.role == Role::Follower {
                self.leader = Some(from);
                self.reset_election_timer(ctx);
            }
        }
        reply
    }

    /// The proposer: an acceptor's answer.
    fn on_answer(&mut self, from: NodeId, reply: Reply, ctx: &mut Ctx<'_, Self>) {
        match reply {
            Reply::Promise { ballot, accepted } => {
                let stale_ok = self.config.has(PaxosBug::CountStalePromises)
                    && ballot.node == self.id.0
                    && ballot < self.ballot;
                if self.role != Role::Candidate || (ballot != self.ballot && !stale_ok) {
                    return;
                }
                self.promises.insert(from, accepted);
                if self.promises.len() >= majority(self.nodes) {
                    self.become_leader(ctx);
                }
            }
            Reply::Accepted { ballot, slot } => {
                let mixes = self.config.has(PaxosBug::LearnerMixesBallots);
                if self.role != Role::Leader || (ballot != self.ballot && !mixes) {
                    return;
                }
                // An acceptor that answers for this slot but not for earlier open ones most
                // likely lost their Accept (or its answer): send them again at once, once,
                // rather than waiting for a heartbeat.
                let ballot = self.ballot;
                let missed: Vec<Request> = self
                    .proposals
                    .range_mut(..slot)
                    .filter(|(_, p)| !p.voters.contains(&from) && !p.nudged.contains(&from))
                    .map(|(&earlier, p)| {
                        p.nudged.insert(from);
                        Request::Accept {
                            ballot,
                            slot: earlier,
                            value: p.value.clone(),
                        }
                    })
                    .collect();
                if !missed.is_empty() && from != self.id {
                    ctx.send(from, Msg::AskAgain(missed));
                }
                let Some(proposal) = self.proposals.get_mut(&slot) else {
                    return;
                };
                proposal.voters.insert(from);
                if proposal.voters.len() >= majority(self.nodes) {
                    // Chosen. The replicas hear of it with the next heartbeat, which says how
                    // far the leader has applied, and ask for what they miss (one message for
                    // many slots, as Raft's commit index rides on AppendEntries).
                    let value = self.proposals.remove(&slot).expect("present").value;
                    ctx.durable_mut().learn(slot, value);
                    self.apply(ctx);
                }
            }
            Reply::Rejected { ballot, promised } => {
                if ballot == self.ballot {
                    self.step_down(promised, ctx);
                } else {
                    self.saw(promised);
                }
            }
        }
    }

    /// Phase 1 succeeded: take over every open slot, then serve clients.
    fn become_leader(&mut self, ctx: &mut Ctx<'_, Self>) {
        let ballot = self.ballot;
        let from_slot = self.applied + 1;
        // Per slot, the proposal accepted at the highest ballot among the promises.
        let mut highest: BTreeMap<u64, (Ballot, Value)> = BTreeMap::new();
        for (slot, b, v) in std::mem::take(&mut self.promises).into_values().flatten() {
            if highest.get(&slot).is_none_or(|(hb, _)| b > *hb) {
                highest.insert(slot, (b, v));
            }
        }
        let durable = ctx.durable();
        let reported_end = highest.keys().next_back().map_or(0, |s| s + 1);
        let mut end = reported_end.max(from_slot);
        if self.config.has(PaxosBug::SkipPhase1ForEmptySlots) {
            // Believes every slot after the last one it knows of is empty.
            let known = durable
                .learned
                .keys()
                .next_back()
                .copied()
                .max(durable.acceptor.accepted.keys().next_back().copied())
                .unwrap_or(0);
            end = (known + 1).max(from_slot);
        }
        let ignore = self.config.has(PaxosBug::IgnoreAcceptedValue);
        let mut proposals = Vec::new();
        for slot in from_slot..end {
            let value = match (durable.learned.get(&slot), highest.remove(&slot)) {
                (Some(learned), _) => learned.clone(),
                (None, Some(_)) if ignore => Value::Noop,
                (None, Some((_, v))) => v,
                (None, None) => Value::Noop,
            };
            proposals.push((slot, value));
        }
        ctx.note_with(|| format!(
            "leads ballot {ballot}: re-proposes slots {from_slot}..{end}"
        ));
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.next_slot = end;
        if let Some(t) = self.election_timer.take() {
            ctx.cancel_timer(t);
        }
        self.heartbeat(ctx);
        for (slot, value) in proposals {
            self.propose(slot, value, ctx);
        }
    }

    fn propose(&mut self, slot: u64, value: Value, ctx: &mut Ctx<'_, Self>) {
        let proposal = Proposal {
            value: value.clone(),
            voters: BTreeSet::new(),
            sent: ctx.now(),
            nudged: BTreeSet::new(),
        };
        self.proposals.insert(slot, proposal);
        let ballot = self.ballot;
        self.ask_all(
            Request::Accept {
                ballot,
                slot,
                value,
            },
            ctx,
        );
    }

    fn heartbeat(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.broadcast(Msg::Heartbeat {
            ballot: self.ballot,
            applied: self.applied,
        });
        // Re-send proposals still unanswered a heartbeat after they were sent (a lost Accept
        // or Accepted); younger ones are most likely on their way.
        let ballot = self.ballot;
        let now = ctx.now();
        let patience = Time::from_millis(self.config.heartbeat_ms);
        let mut again: BTreeMap<NodeId, Vec<Request>> = BTreeMap::new();
        for (&slot, proposal) in &mut self.proposals {
            if now < proposal.sent + patience {
                continue;
            }
            proposal.sent = now;
            for peer in ctx.peers().filter(|p| !proposal.voters.contains(p)) {
                again.entry(peer).or_default().push(Request::Accept {
                    ballot,
                    slot,
                    value: proposal.value.clone(),
                });
            }
        }
        for (peer, requests) in again {
            ctx.send(peer, Msg::AskAgain(requests));
        }
        self.heartbeat_timer = Some(ctx.set_timer(
            Time::from_millis(self.config.heartbeat_ms),
            Timer::Heartbeat,
        ));
    }

    fn on_heartbeat(&mut self, from: NodeId, ballot: Ballot, applied: u64, ctx: &mut Ctx<'_, Self>) {
        // Chosen slots are final whoever holds them: catch up from any leader, even one whose
        // ballot this node will not follow (a candidate that keeps outbidding short-lived
        // leaders would otherwise never catch up).
        if applied > self.applied {
            ctx.send(
                from,
                Msg::CatchUp {
                    from: self.applied + 1,
                },
            );
        }
        let promised = self.promised(ctx.durable());
        if ballot < promised {
            // A deposed leader: tell it.
            ctx.send(
                from,
                Msg::Answer(Reply::Rejected { ballot, promised }),
            );
            return;
        }
        if ballot > self.ballot && self.role != Role::Follower {
            self.step_down(ballot, ctx);
        }
        self.saw(ballot);
        if self.role == Role::Follower {
            self.leader = Some(from);
            self.reset_election_timer(ctx);
        }
    }

    fn on_decided(&mut self, entries: Vec<(u64, Value)>, ctx: &mut Ctx<'_, Self>) {
        for (slot, value) in entries {
            if slot > self.applied {
                ctx.durable_mut().learn(slot, value);
            }
        }
        self.apply(ctx);
    }

    fn on_catch_up(&mut self, from: NodeId, first: u64, ctx: &mut Ctx<'_, Self>) {
        let entries: Vec<(u64, Value)> = ctx
            .durable()
            .learned
            .range(first..=self.applied)
            .take(self.config.max_batch)
            .map(|(s, v)| (*s, v.clone()))
            .collect();
        if !entries.is_empty() {
            ctx.send(from, Msg::Decided { entries });
        }
    }

    /// Applies learned slots in order, answering the clients waiting for them.
    fn apply(&mut self, ctx: &mut Ctx<'_, Self>) {
        loop {
            let slot = self.applied + 1;
            let Some(value) = ctx.durable().learned.get(&slot).cloned() else {
                break;
            };
            self.applied = slot;
            let Value::Client { client, seq, op } = value else {
                continue;
            };
            let Some(response) = self.state.apply(client, seq, &op, false) else {
                continue;
            };
            if let Some(reply_to) = self.pending.remove(&slot)
                && reply_to
                    == (ReplyTo {
                        client: ClientId(client),
                        seq,
                    })
            {
                ctx.reply(reply_to, response);
            }
        }
        // Requests whose slot was filled by another value will never be answered here; their
        // clients retry.
        while self
            .pending
            .first_key_value()
            .is_some_and(|(&slot, _)| slot <= self.applied)
        {
            self.pending.pop_first();
        }
    }
}

impl Protocol for MultiPaxos {
    type Config = MultiPaxosConfig;
    const NAME: &'static str = "Multi-Paxos";

    fn validate(config: &MultiPaxosConfig, nodes: u32) -> Result<(), FieldError> {
        crate::protocol::check_leader_timing(config.election_timeout_ms, config.heartbeat_ms)?;
        if config.max_batch == 0 {
            return Err(FieldError::new("max_batch", "must be at least 1"));
        }
        if config.max_elections == Some(0) {
            return Err(FieldError::new(
                "max_elections",
                "Some(0) lets no node ever lead: give at least Some(1), or None for no limit",
            ));
        }
        config.workload().validate()?;
        super::validate_bugs(
            &config.bugs,
            &[
                PaxosBug::AcceptWithoutPromiseCheck,
                PaxosBug::IgnoreAcceptedValue,
                PaxosBug::VolatilePromise,
                PaxosBug::LearnerMixesBallots,
                PaxosBug::SkipPhase1ForEmptySlots,
                PaxosBug::CountStalePromises,
            ],
            "Multi-Paxos",
        )?;
        if nodes == 0 {
            return Err(FieldError::new("nodes", "Multi-Paxos needs at least 1 node"));
        }
        Ok(())
    }
    fn min_nodes(_: &MultiPaxosConfig) -> u32 {
        1
    }
    fn clear_bugs(config: &mut MultiPaxosConfig) {
        config.bugs.clear();
    }
    fn node(setup: &Setup<MultiPaxosConfig>, id: NodeId) -> MultiPaxos {
        let acceptor = pick_acceptor(&setup.config.bugs, &setup.code);
        MultiPaxos::new(id, setup.nodes, setup.config.clone(), acceptor)
    }
    fn workload(setup: &Setup<MultiPaxosConfig>) -> Option<Box<dyn Workload<KvRequest>>> {
        Some(Box::new(setup.config.workload()))
    }
    fn invariants(setup: &Setup<MultiPaxosConfig>) -> Vec<Box<dyn Invariant<MultiPaxos>>> {
        invariants::multi(setup.config.max_elections.is_none())
    }
    fn report(_: &Setup<MultiPaxosConfig>, sim: &Simulation<MultiPaxos>) -> Vec<ReportItem> {
        let world = sim.world();
        let promised = super::highest_promise(&world);
        let applied = world.live_nodes().map(|(_, r)| r.applied).max().unwrap_or(0);
        let mut items = vec![
            ReportItem::new(
                "highest_ballot",
                "highest ballot promised",
                promised.to_string(),
                serde_json::json!(promised.to_string()),
            ),
            ReportItem::count("slots_applied", "slots applied", applied),
        ];
        for (key, value) in sim.observations() {
            let label = match key {
                "slots_chosen" => "slots chosen",
                "leaders_elected" => "leaders elected",
                _ => continue,
            };
            items.push(ReportItem::new(key, label, value.to_string(), value));
        }
        items
    }
    fn kv_history(sim: &Simulation<MultiPaxos>) -> Option<Vec<Op<KvInput, KvOutput>>> {
        Some(kv::history(sim.history()))
    }
}

impl PaxosNode for MultiPaxos {
    fn promised(&self, durable: &PaxosDurable) -> Ballot {
        durable.acceptor.promised.max(self.volatile_promised)
    }
}

impl Node for MultiPaxos {
    type Msg = Msg;
    type Timer = Timer;
    type Request = KvRequest;
    type Response = KvResponse;
    type Durable = PaxosDurable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        let d = ctx.durable();
        self.highest_round = d.highest_round();
        if !d.learned.is_empty() {
            let learned = d.learned.len();
            ctx.note_with(|| format!("recovers {learned} learned slots"));
        }
        // The state machine is rebuilt by replaying the learned slots in order.
        self.apply(ctx);
        self.reset_election_timer(ctx);
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Ask(request) => self.on_ask(from, request, ctx),
            Msg::Answer(reply) => self.on_answer(from, reply, ctx),
            Msg::AskAgain(requests) => {
                let replies = requests
                    .into_iter()
                    .map(|r| self.accept_or_promise(from, r, ctx))
                    .collect();
                ctx.send(from, Msg::Answers(replies));
            }
            Msg::Answers(replies) => {
                for reply in replies {
                    self.on_answer(from, reply, ctx);
                }
            }
            Msg::Heartbeat { ballot, applied } => self.on_heartbeat(from, ballot, applied, ctx),
            Msg::Decided { entries } => self.on_decided(entries, ctx),
            Msg::CatchUp { from: first } => self.on_catch_up(from, first, ctx),
        }
    }

    fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, Self>) {
        match timer {
            Timer::Election => {
                self.election_timer = None;
                if self.role != Role::Leader {
                    self.stand(ctx);
                }
            }
            Timer::Heartbeat => {
                self.heartbeat_timer = None;
                if self.role == Role::Leader {
                    self.heartbeat(ctx);
                }
            }
        }
    }

    fn on_request(&mut self, reply_to: ReplyTo, request: KvRequest, ctx: &mut Ctx<'_, Self>) {
        if self.role != Role::Leader {
            ctx.reply(reply_to, KvResponse::NotLeader(self.leader));
            return;
        }
        let client = reply_to.client.0;
        if let Some((last, cached)) = self.state.sessions.get(&client) {
            if *last == reply_to.seq {
                ctx.reply(reply_to, cached.clone());
                return;
            }
            if *last > reply_to.seq {
                return; // A stale retry of an operation the client has moved past.
            }
        }
        let slot = self.next_slot;
        self.next_slot += 1;
        self.pending.insert(slot, reply_to);
        let value = Value::Client {
            client,
            seq: reply_to.seq,
            op: SharedOp::new(request.0),
        };
        self.propose(slot, value, ctx);
    }

    fn classify(response: &KvResponse) -> ResponseClass {
        response.classify()
    }

    /// Every field but the constants (id, cluster size, settings, acceptor code, whose
    /// address differs from build to build), the timers' ids (only whether each timer is
    /// armed matters) and when each open proposal was last sent: time is free in a search,
    /// and a send time, like the clock, only numbers the path.
    fn fingerprint(&self, hasher: &mut StableHasher) {
        let proposals: Vec<_> = self
            .proposals
            .iter()
            .map(|(slot, p)| (slot, &p.value, &p.voters, &p.nudged))
            .collect();
        let proposer = (
            &self.role,
            self.ballot,
            self.leader,
            self.highest_round,
            &self.promises,
            self.next_slot,
            proposals,
        );
        let replica = (
            self.applied,
            &self.state,
            &self.pending,
            self.election_timer.is_some(),
            self.heartbeat_timer.is_some(),
            self.volatile_promised,
            // Decides the future only under a bound.
            self.config.max_elections.map(|_| self.elections),
        );
        hasher.bytes(format!("{proposer:?} {replica:?}").as_bytes());
    }

    fn fingerprint_durable(durable: &PaxosDurable, hasher: &mut StableHasher) {
        durable.fingerprint(hasher);
    }

    fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    fn leader_epoch(&self, _: &PaxosDurable) -> Option<u64> {
        self.leading().map(Ballot::epoch)
    }

    fn view(&self, durable: &PaxosDurable) -> NodeView {
        let role = match self.role {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        // The slots around the commit point: the last applied ones and the open ones after.
        let first = self.applied.saturating_sub(2).max(1);
        let last = durable
            .acceptor
            .accepted
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .max(self.applied)
            .min(first + 5);
        let slots: Vec<String> = (first..=last)
            .map(|slot| {
                if let Some(v) = durable.learned.get(&slot) {
                    format!("{slot}:chosen {}", v.describe())
                } else if let Some((b, v)) = durable.acceptor.accepted.get(&slot) {
                    format!("{slot}:accepted@{b} {}", v.describe())
                } else {
                    format!("{slot}:empty")
                }
            })
            .collect();
        NodeView::new(role)
            .field("ballot", self.ballot)
            .field("promised", self.promised(durable))
            .field(
                "leader",
                self.leader.map_or("?".to_string(), |n| n.to_string()),
            )
            .field("applied", self.applied)
            .field(
                "slots",
                if slots.is_empty() {
                    "-".to_string()
                } else {
                    slots.join("  ")
                },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::fingerprint_of as fingerprint;

    #[test]
    fn a_fingerprint_sees_whether_a_timer_is_armed_but_not_its_id() {
        let acceptor = pick_acceptor(&[], &crate::LearnerCode::default());
        let config = Arc::new(MultiPaxosConfig::default());
        let mut one = MultiPaxos::new(NodeId(0), 3, config, acceptor);
        let mut other = one.clone();
        one.election_timer = Some(TimerId(1));
        other.election_timer = Some(TimerId(7));
        assert_eq!(fingerprint(&one), fingerprint(&other));
        other.election_timer = None;
        assert_ne!(fingerprint(&one), fingerprint(&other));
        other.election_timer = Some(TimerId(7));
        other.ballot = Ballot { round: 1, node: 0 };
        assert_ne!(fingerprint(&one), fingerprint(&other), "the ballot matters");
    }

    #[test]
    fn a_fingerprint_sees_an_open_proposal_but_not_when_it_was_sent() {
        let acceptor = pick_acceptor(&[], &crate::LearnerCode::default());
        let config = Arc::new(MultiPaxosConfig::default());
        let mut one = MultiPaxos::new(NodeId(0), 3, config, acceptor);
        let proposal = |sent_ms| Proposal {
            value: Value::Noop,
            voters: BTreeSet::from([NodeId(0)]),
            sent: Time::from_millis(sent_ms),
            nudged: BTreeSet::new(),
        };
        let mut other = one.clone();
        one.proposals.insert(1, proposal(10));
        assert_ne!(fingerprint(&one), fingerprint(&other), "an open slot matters");
        other.proposals.insert(1, proposal(250));
        assert_eq!(fingerprint(&one), fingerprint(&other));
        other.proposals.get_mut(&1).expect("open").voters.insert(NodeId(2));
        assert_ne!(fingerprint(&one), fingerprint(&other), "who accepted matters");
    }

    #[test]
    fn elections_stood_are_part_of_the_state_only_under_a_bound() {
        let acceptor = pick_acceptor(&[], &crate::LearnerCode::default());
        for (max_elections, splits) in [(None, false), (Some(2), true)] {
            let config = Arc::new(MultiPaxosConfig {
                max_elections,
                ..MultiPaxosConfig::default()
            });
            let one = MultiPaxos::new(NodeId(0), 3, config, acceptor);
            let mut other = one.clone();
            other.elections = 1;
            assert_eq!(
                fingerprint(&one) != fingerprint(&other),
                splits,
                "{max_elections:?}"
            );
            assert!(one.may_stand() && other.may_stand());
            other.elections = 2;
            assert_eq!(other.may_stand(), max_elections.is_none());
        }
    }
}
