//! Single-decree Paxos: the Synod protocol, serving a write-once register.
//!
//! Every node is a proposer, an acceptor and a learner. A client's put (a compare-and-set from
//! empty) asks the node it reaches to propose its value; a get asks it to find out what was
//! chosen. The proposer picks a ballot above every round it has seen and runs
//! - **phase 1**: `Prepare(b)` to every acceptor; each promises to ignore lower ballots and
//!   reports the proposal it accepted, if any. With promises from a majority the proposer must
//!   propose the value of the highest-ballot proposal reported (a value may already be chosen,
//!   and this keeps it), and only if none was reported its own value;
//! - **phase 2**: `Accept(b, v)` to every acceptor; each accepts unless it promised a higher
//!   ballot, and tells the learners.
//!
//! A learner knows `v` is chosen once a majority of acceptors tell it they accepted `v` in the
//! *same* ballot. Which learners hear is [`Learning`]: by default every acceptor tells every
//! node (n² messages, and every node learns one message delay after the acceptances); with
//! [`Learning::ThroughProposer`] an acceptor tells only the proposer, which announces the
//! decision to the others (2n messages, one delay more, and a proposer that crashes after
//! learning leaves the others to find out for themselves). A get whose phase 1 finds nothing accepted at a majority answers "empty": no
//! value can have been chosen before those promises.
//!
//! A proposer that learns of a higher ballot (a refusal, or its own acceptor promising someone
//! else) is pre-empted. It retries after a random backoff; with `backoff_ms: (0, 0)` it retries
//! at once, and two proposers can pre-empt each other for ever: safety holds, liveness does not.

use super::acceptor::{self, ACCEPTOR, AcceptorFn, Reply, Request};
use super::{
    Ballot, ByNode, PaxosBug, PaxosDurable, PaxosNode, SharedOp, Value, invariants, majority,
};
use crate::kv::{self, KvOp, KvRequest, KvResponse};
use crate::protocol::{Protocol, ReportItem, Setup};
use serde::{Deserialize, Serialize};
use simlab_sim::hash::StableHasher;
use simlab_sim::linearizability::Op;
use simlab_sim::linearizability::models::{KvInput, KvOutput};
use simlab_sim::rng::{self, SimRng};
use simlab_sim::{
    ClientId, Ctx, FieldError, Invariant, Node, NodeId, NodeView, ReplyTo, ResponseClass,
    Simulation, Time, TimerId, Workload,
};
use std::sync::Arc;

/// The register's key in the client history.
pub const KEY: &str = "decree";

/// Single-decree Paxos's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynodConfig {
    /// A pre-empted proposer waits a random time from this range before its next round
    /// (milliseconds); `(0, 0)` retries at once.
    pub backoff_ms: (u64, u64),
    /// A round with no outcome after this long is retried with a higher ballot (milliseconds).
    pub retry_ms: u64,
    /// Percent of client operations that are reads (the rest propose a value).
    pub get_percent: u32,
    /// At most this many rounds per node over the whole run (`None`: no bound). A bound makes
    /// the state space finite for `simlab explore`, at the price of liveness: a pre-empted
    /// proposer that has used its rounds gives up, so the `Decides` check is left out.
    pub max_rounds: Option<u64>,
    /// Which nodes an acceptor tells of its acceptances.
    pub learning: Learning,
    /// Planted bugs to switch on.
    pub bugs: Vec<PaxosBug>,
}

/// How the nodes learn what was chosen.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Learning {
    /// Every acceptor tells every node of each acceptance.
    #[default]
    EveryNode,
    /// An acceptor tells only the proposer that asked; the proposer, once a majority accepted
    /// its ballot, announces the decision to every other node (the "distinguished learner" of
    /// *Paxos Made Simple*, and the model of stateright's Paxos example).
    ThroughProposer,
}

impl Default for SynodConfig {
    fn default() -> Self {
        SynodConfig {
            backoff_ms: (20, 100),
            retry_ms: 100,
            get_percent: 30,
            max_rounds: None,
            learning: Learning::EveryNode,
            bugs: Vec::new(),
        }
    }
}

impl SynodConfig {
    fn has(&self, bug: PaxosBug) -> bool {
        self.bugs.contains(&bug)
    }

    /// Whether a node that has started `rounds` rounds may start another.
    fn may_start_round(&self, rounds: u64) -> bool {
        self.max_rounds.is_none_or(|max| rounds < max)
    }
}

/// The clients' workload: reads of the register and proposals of unique values.
#[derive(Clone, Debug)]
pub struct RegisterWorkload {
    get_percent: u32,
}

impl Workload<KvRequest> for RegisterWorkload {
    fn next_request(&mut self, client: ClientId, seq: u64, rng: &mut SimRng) -> KvRequest {
        if (rng::below(rng, 100) as u32) < self.get_percent {
            KvRequest(KvOp::Get(KEY.into()))
        } else {
            KvRequest(KvOp::cas(KEY, "", format!("{}.{seq}", client.0)))
        }
    }
}

/// Messages.
#[derive(Clone, Debug, Serialize)]
pub enum Msg {
    /// Proposer → acceptor.
    Ask(Request),
    /// Acceptor → proposer: a promise or a refusal.
    Answer(Reply),
    /// Acceptor → every learner: I accepted `value` at `ballot`.
    Accepted {
        /// The ballot.
        ballot: Ballot,
        /// The value.
        value: Value,
    },
    // New variants go last: a variant's position is part of the trace hash.
    /// Proposer → every other node, under [`Learning::ThroughProposer`]: `value` is chosen.
    Decided {
        /// The value.
        value: Value,
    },
}

/// Timers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Timer {
    /// Start the next round (a retry, or the end of a backoff).
    Round,
}

/// Where the proposer is.
#[derive(Clone, Debug, PartialEq)]
enum Phase {
    /// No round running.
    Idle,
    /// Phase 1: promises so far, with the proposal each acceptor reported.
    Preparing(ByNode<Option<(Ballot, Value)>>),
    /// Phase 2: this value was sent.
    Accepting(Value),
    /// Pre-empted: waiting to retry.
    BackingOff,
}

/// One node: proposer, acceptor and learner.
#[derive(Clone, Debug)]
pub struct Synod {
    id: NodeId,
    nodes: u32,
    config: Arc<SynodConfig>,
    acceptor: AcceptorFn,
    ballot: Ballot,
    highest_round: u64,
    phase: Phase,
    /// Clients waiting for the decision (or for a read). Shared, not copied, with the value
    /// proposed for them and with every copy of this node a search makes.
    waiting: Vec<(ReplyTo, SharedOp)>,
    timer: Option<TimerId>,
    /// Learner: the latest proposal each acceptor said it accepted.
    acceptances: ByNode<(Ballot, Value)>,
    /// [`PaxosBug::VolatilePromise`]: the promise kept in memory only.
    volatile_promised: Ballot,
    rounds: u64,
}

impl Synod {
    fn new(id: NodeId, nodes: u32, config: Arc<SynodConfig>, acceptor: AcceptorFn) -> Synod {
        Synod {
            id,
            nodes,
            config,
            acceptor,
            ballot: Ballot::default(),
            highest_round: 0,
            phase: Phase::Idle,
            waiting: Vec::new(),
            timer: None,
            acceptances: ByNode::default(),
            volatile_promised: Ballot::default(),
            rounds: 0,
        }
    }

    /// Rounds this node has started since it last booted.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    fn set_timer(&mut self, after: Time, ctx: &mut Ctx<'_, Self>) {
        self.stop_timer(ctx);
        self.timer = Some(ctx.set_timer(after, Timer::Round));
    }

    fn stop_timer(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_timer(t);
        }
    }

    /// Every round `max_rounds` allows is used: stop proposing (waiting clients time out).
    fn give_up(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.note("gives up: no rounds left");
        self.phase = Phase::Idle;
        self.stop_timer(ctx);
    }

    fn start_round(&mut self, ctx: &mut Ctx<'_, Self>) {
        if !self.config.may_start_round(self.rounds) {
            self.give_up(ctx);
            return;
        }
        self.highest_round += 1;
        self.rounds += 1;
        self.ballot = Ballot {
            round: self.highest_round,
            node: self.id.0,
        };
        let ballot = self.ballot;
        ctx.note_with(|| format!("prepares ballot {ballot}"));
        self.phase = Phase::Preparing(ByNode::default());
        // The last round allowed is not retried.
        if self.config.may_start_round(self.rounds) {
            self.set_timer(Time::from_millis(self.config.retry_ms), ctx);
        } else {
            self.stop_timer(ctx);
        }
        self.ask_all(
            Request::Prepare {
                ballot,
                from_slot: 0,
            },
            ctx,
        );
    }

    /// Sends `request` to every acceptor; this node's own acceptor answers at once.
    fn ask_all(&mut self, request: Request, ctx: &mut Ctx<'_, Self>) {
        for peer in ctx.peers().collect::<Vec<_>>() {
            ctx.send(peer, Msg::Ask(request.clone()));
        }
        let me = self.id;
        self.on_ask(me, request, ctx);
    }

    /// The acceptor: handles a request and answers the proposer (or, for an acceptance, tells
    /// every learner).
    fn on_ask(&mut self, from: NodeId, request: Request, ctx: &mut Ctx<'_, Self>) {
        let value = match &request {
            Request::Accept { value, .. } => Some(value.clone()),
            Request::Prepare { .. } => None,
        };
        let reply = run_acceptor(
            self.acceptor,
            self.config.has(PaxosBug::VolatilePromise),
            &mut self.volatile_promised,
            request,
            ctx,
        );
        // A promise or acceptance for someone else's higher ballot pre-empts our own round.
        if let Reply::Promise { ballot, .. } | Reply::Accepted { ballot, .. } = &reply
            && from != self.id
        {
            self.saw_round(ballot.round);
            if *ballot > self.ballot && matches!(self.phase, Phase::Preparing(_) | Phase::Accepting(_)) {
                ctx.note_with(|| format!("pre-empted by ballot {ballot}"));
                self.pre_empted(ctx);
            }
        }
        match reply {
            Reply::Accepted { ballot, .. } => {
                let value = value.expect("an acceptance answers an accept");
                let me = self.id;
                match self.config.learning {
                    Learning::EveryNode => {
                        for peer in ctx.peers().collect::<Vec<_>>() {
                            ctx.send(
                                peer,
                                Msg::Accepted {
                                    ballot,
                                    value: value.clone(),
                                },
                            );
                        }
                        self.on_accepted(me, ballot, value, ctx);
                    }
                    Learning::ThroughProposer if from == me => {
                        self.on_accepted(me, ballot, value, ctx)
                    }
                    Learning::ThroughProposer => ctx.send(from, Msg::Accepted { ballot, value }),
                }
            }
            reply if from == self.id => self.on_answer(from, reply, ctx),
            reply => ctx.send(from, Msg::Answer(reply)),
        }
    }

    fn saw_round(&mut self, round: u64) {
        self.highest_round = self.highest_round.max(round);
    }

    fn pre_empted(&mut self, ctx: &mut Ctx<'_, Self>) {
        if !self.config.may_start_round(self.rounds) {
            self.give_up(ctx);
            return;
        }
        let (lo, hi) = self.config.backoff_ms;
        if hi == 0 {
            self.start_round(ctx);
            return;
        }
        self.phase = Phase::BackingOff;
        let after = Time::from_micros(ctx.random_between(lo * 1_000, hi * 1_000));
        self.set_timer(after, ctx);
    }

    /// The proposer: an acceptor's promise or refusal.
    fn on_answer(&mut self, from: NodeId, reply: Reply, ctx: &mut Ctx<'_, Self>) {
        match reply {
            Reply::Promise { ballot, accepted } => {
                if ballot != self.ballot {
                    return;
                }
                let Phase::Preparing(promises) = &mut self.phase else {
                    return;
                };
                let reported = accepted.into_iter().find(|(slot, ..)| *slot == 0);
                promises.insert(from, reported.map(|(_, b, v)| (b, v)));
                if promises.len() < majority(self.nodes) {
                    return;
                }
                let highest = promises
                    .values()
                    .flatten()
                    .max_by_key(|(b, _)| *b)
                    .map(|(_, v)| v.clone());
                let own = self.waiting.iter().find_map(|(to, op)| {
                    matches!(**op, KvOp::Cas(_)).then(|| Value::Client {
                        client: to.client.0,
                        seq: to.seq,
                        op: op.clone(),
                    })
                });
                let value = if self.config.has(PaxosBug::IgnoreAcceptedValue) {
                    own.or(highest)
                } else {
                    highest.or(own)
                };
                match value {
                    Some(value) => {
                        ctx.note_with(|| format!("proposes {} at ballot {ballot}", value.describe()));
                        self.phase = Phase::Accepting(value.clone());
                        self.ask_all(
                            Request::Accept {
                                ballot,
                                slot: 0,
                                value,
                            },
                            ctx,
                        );
                    }
                    None => {
                        // Only reads are waiting and a majority accepted nothing: nothing is
                        // chosen, and nothing can have been before these promises.
                        ctx.note("a majority accepted nothing: the register is empty");
                        self.answer_reads(ctx);
                    }
                }
            }
            Reply::Rejected { ballot, promised } => {
                self.saw_round(promised.round);
                if ballot == self.ballot
                    && matches!(self.phase, Phase::Preparing(_) | Phase::Accepting(_))
                {
                    ctx.note_with(|| format!("ballot {ballot} refused: {from} promised {promised}"));
                    self.pre_empted(ctx);
                }
            }
            Reply::Accepted { .. } => {}
        }
    }

    /// Reads waiting when nothing is chosen: answer them empty; carry on for any proposals.
    fn answer_reads(&mut self, ctx: &mut Ctx<'_, Self>) {
        let (reads, writes): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(_, op)| matches!(**op, KvOp::Get(_)));
        for (to, _) in reads {
            ctx.reply(to, KvResponse::Ok(Some(String::new())));
        }
        self.waiting = writes;
        self.phase = Phase::Idle;
        self.stop_timer(ctx);
        if !self.waiting.is_empty() {
            self.start_round(ctx);
        }
    }

    /// The learner: acceptor `from` accepted `value` at `ballot`.
    fn on_accepted(&mut self, from: NodeId, ballot: Ballot, value: Value, ctx: &mut Ctx<'_, Self>) {
        self.saw_round(ballot.round);
        if self.acceptances.get(&from).is_some_and(|(b, _)| *b > ballot) {
            return; // An older acceptance overtaken by a newer one.
        }
        self.acceptances.insert(from, (ballot, value.clone()));
        if ctx.durable().learned.contains_key(&0) {
            return;
        }
        let votes = if self.config.has(PaxosBug::LearnerMixesBallots) {
            self.acceptances.len()
        } else {
            self.acceptances.values().filter(|(b, _)| *b == ballot).count()
        };
        if votes < majority(self.nodes) {
            return;
        }
        ctx.note_with(|| format!("learns {} (ballot {ballot})", value.describe()));
        if self.config.learning == Learning::ThroughProposer {
            for peer in ctx.peers().collect::<Vec<_>>() {
                ctx.send(
                    peer,
                    Msg::Decided {
                        value: value.clone(),
                    },
                );
            }
        }
        ctx.durable_mut().learn(0, value);
        self.decided(ctx);
    }

    /// A proposer announced the decision.
    fn on_decided(&mut self, value: Value, ctx: &mut Ctx<'_, Self>) {
        if ctx.durable().learned.contains_key(&0) {
            return;
        }
        ctx.note_with(|| format!("learns {} from its proposer", value.describe()));
        ctx.durable_mut().learn(0, value);
        self.decided(ctx);
    }

    /// The value is known: answer everyone waiting and stop proposing.
    fn decided(&mut self, ctx: &mut Ctx<'_, Self>) {
        let Some(chosen) = ctx.durable().learned.get(&0).cloned() else {
            return;
        };
        for (to, op) in std::mem::take(&mut self.waiting) {
            ctx.reply(to, answer(&chosen, to, &op));
        }
        self.phase = Phase::Idle;
        self.stop_timer(ctx);
    }
}

/// The register's value once `chosen` is: what a client's operation gets.
fn answer(chosen: &Value, to: ReplyTo, op: &KvOp) -> KvResponse {
    let value = match chosen {
        Value::Client { op, .. } => match &**op {
            KvOp::Cas(cas) => cas.new.clone(),
            _ => String::new(),
        },
        _ => String::new(),
    };
    match op {
        KvOp::Get(_) => KvResponse::Ok(Some(value)),
        _ => match chosen {
            Value::Client { client, seq, .. } if *client == to.client.0 && *seq == to.seq => {
                KvResponse::Ok(None)
            }
            _ => KvResponse::CasFailed,
        },
    }
}

/// Runs the node's acceptor on its durable state. Under [`PaxosBug::VolatilePromise`] the
/// promise lives in `volatile` and the durable one stays empty.
pub(super) fn run_acceptor<P: Node<Durable = PaxosDurable>>(
    acceptor: AcceptorFn,
    volatile_promise: bool,
    volatile: &mut Ballot,
    request: Request,
    ctx: &mut Ctx<'_, P>,
) -> Reply {
    let state = &mut ctx.durable_mut().acceptor;
    if volatile_promise {
        state.promised = *volatile;
    }
    let reply = acceptor(state, request);
    if volatile_promise {
        *volatile = state.promised;
        state.promised = Ballot::default();
    }
    reply
}

/// Picks the acceptor a node runs: the planted bug's, the learner's, or the reference.
pub(super) fn pick_acceptor(bugs: &[PaxosBug], code: &crate::LearnerCode) -> AcceptorFn {
    if bugs.contains(&PaxosBug::AcceptWithoutPromiseCheck) {
        acceptor::accept_without_promise_check
    } else {
        ACCEPTOR.pick(code)
    }
}

impl Protocol for Synod {
    type Config = SynodConfig;
    const NAME: &'static str = "single-decree Paxos";

    fn validate(config: &SynodConfig, nodes: u32) -> Result<(), FieldError> {
        let (lo, hi) = config.backoff_ms;
        if lo > hi {
            return Err(FieldError::new(
                "backoff_ms",
                format!("({lo}, {hi}): the lower bound is above the upper"),
            ));
        }
        if config.retry_ms == 0 {
            return Err(FieldError::new("retry_ms", "must be positive"));
        }
        if config.max_rounds == Some(0) {
            return Err(FieldError::new(
                "max_rounds",
                "Some(0) would never propose: use Some(1) or more, or None for no bound",
            ));
        }
        if config.get_percent > 100 {
            return Err(FieldError::new(
                "get_percent",
                format!("{} is not a percentage", config.get_percent),
            ));
        }
        super::validate_bugs(
            &config.bugs,
            &[
                PaxosBug::AcceptWithoutPromiseCheck,
                PaxosBug::IgnoreAcceptedValue,
                PaxosBug::VolatilePromise,
                PaxosBug::LearnerMixesBallots,
            ],
            "single-decree Paxos",
        )?;
        if nodes == 0 {
            return Err(FieldError::new("nodes", "Paxos needs at least 1 node"));
        }
        Ok(())
    }
    fn min_nodes(_: &SynodConfig) -> u32 {
        1
    }
    fn clear_bugs(config: &mut SynodConfig) {
        config.bugs.clear();
    }
    fn node(setup: &Setup<SynodConfig>, id: NodeId) -> Synod {
        let acceptor = pick_acceptor(&setup.config.bugs, &setup.code);
        Synod::new(id, setup.nodes, setup.config.clone(), acceptor)
    }
    fn workload(setup: &Setup<SynodConfig>) -> Option<Box<dyn Workload<KvRequest>>> {
        Some(Box::new(RegisterWorkload {
            get_percent: setup.config.get_percent,
        }))
    }
    fn invariants(setup: &Setup<SynodConfig>) -> Vec<Box<dyn Invariant<Synod>>> {
        invariants::synod(setup.config.max_rounds.is_none())
    }
    fn report(_: &Setup<SynodConfig>, sim: &Simulation<Synod>) -> Vec<ReportItem> {
        let world = sim.world();
        let rounds: u64 = world.live_nodes().map(|(_, s)| s.rounds()).sum();
        let promised = super::highest_promise(&world);
        let learned = (0..world.cluster_size())
            .find_map(|i| world.durable(NodeId(i)).learned.get(&0).cloned());
        vec![
            ReportItem::count("rounds", "rounds started", rounds),
            ReportItem::new(
                "highest_promise",
                "highest promise",
                promised.to_string(),
                serde_json::json!(promised.to_string()),
            ),
            ReportItem::new(
                "decided",
                "decided",
                learned.as_ref().map_or("nothing".into(), Value::describe),
                serde_json::json!(learned.as_ref().map(Value::describe)),
            ),
        ]
    }
    fn kv_history(sim: &Simulation<Synod>) -> Option<Vec<Op<KvInput, KvOutput>>> {
        Some(kv::history(sim.history()))
    }
}

impl PaxosNode for Synod {
    fn promised(&self, durable: &PaxosDurable) -> Ballot {
        durable.acceptor.promised.max(self.volatile_promised)
    }
}

impl Node for Synod {
    type Msg = Msg;
    type Timer = Timer;
    type Request = KvRequest;
    type Response = KvResponse;
    type Durable = PaxosDurable;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        self.highest_round = ctx.durable().highest_round();
    }

    fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, Self>) {
        match msg {
            Msg::Ask(request) => self.on_ask(from, request, ctx),
            Msg::Answer(reply) => self.on_answer(from, reply, ctx),
            Msg::Accepted { ballot, value } => self.on_accepted(from, ballot, value, ctx),
            Msg::Decided { value } => self.on_decided(value, ctx),
        }
    }

    fn on_timer(&mut self, _: Timer, ctx: &mut Ctx<'_, Self>) {
        self.timer = None;
        if self.waiting.is_empty() || ctx.durable().learned.contains_key(&0) {
            self.phase = Phase::Idle;
            return;
        }
        self.start_round(ctx);
    }

    fn on_request(&mut self, reply_to: ReplyTo, request: KvRequest, ctx: &mut Ctx<'_, Self>) {
        if let Some(chosen) = ctx.durable().learned.get(&0) {
            let response = answer(chosen, reply_to, &request.0);
            ctx.reply(reply_to, response);
            return;
        }
        self.waiting.retain(|(to, _)| to.client != reply_to.client);
        self.waiting.push((reply_to, SharedOp::new(request.0)));
        if self.phase == Phase::Idle {
            self.start_round(ctx);
        }
    }

    fn classify(response: &KvResponse) -> ResponseClass {
        response.classify()
    }

    /// Everything but the constants (id, cluster size, settings, acceptor code) and the timer's
    /// id: only whether a timer is armed matters. The round count decides the future only when
    /// rounds are bounded.
    fn fingerprint(&self, hasher: &mut StableHasher) {
        self.ballot.fingerprint(hasher);
        hasher.word(self.highest_round);
        match &self.phase {
            Phase::Idle => hasher.word(0),
            Phase::Preparing(promises) => {
                hasher.word(1);
                promises.fingerprint(hasher, |reported, hasher| match reported {
                    None => hasher.word(0),
                    Some((ballot, value)) => {
                        hasher.word(1);
                        ballot.fingerprint(hasher);
                        value.fingerprint(hasher);
                    }
                });
            }
            Phase::Accepting(value) => {
                hasher.word(2);
                value.fingerprint(hasher);
            }
            Phase::BackingOff => hasher.word(3),
        }
        hasher.word(self.waiting.len() as u64);
        for (to, op) in &self.waiting {
            hasher.word(u64::from(to.client.0));
            hasher.word(to.seq);
            hasher.word(op.hash());
        }
        hasher.word(u64::from(self.timer.is_some()));
        self.acceptances
            .fingerprint(hasher, |(ballot, value), hasher| {
                ballot.fingerprint(hasher);
                value.fingerprint(hasher);
            });
        self.volatile_promised.fingerprint(hasher);
        if self.config.max_rounds.is_some() {
            hasher.word(self.rounds);
        }
    }

    fn fingerprint_durable(durable: &PaxosDurable, hasher: &mut StableHasher) {
        durable.fingerprint(hasher);
    }

    fn view(&self, durable: &PaxosDurable) -> NodeView {
        let role = match &self.phase {
            Phase::Idle => "idle",
            Phase::Preparing(_) => "preparing",
            Phase::Accepting(_) => "accepting",
            Phase::BackingOff => "backing off",
        };
        let accepted = durable
            .acceptor
            .accepted
            .get(&0)
            .map_or("-".to_string(), |(b, v)| format!("{} @{b}", v.describe()));
        NodeView::new(role)
            .field("ballot", self.ballot)
            .field("promised", self.promised(durable))
            .field("accepted", accepted)
            .field(
                "learned",
                durable
                    .learned
                    .get(&0)
                    .map_or("-".to_string(), Value::describe),
            )
            .field("waiting", self.waiting.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::fingerprint_of as fingerprint;

    #[test]
    fn a_fingerprint_counts_rounds_only_when_they_are_bounded() {
        let acceptor = pick_acceptor(&[], &crate::LearnerCode::default());
        let unbounded = Synod::new(NodeId(0), 3, Arc::new(SynodConfig::default()), acceptor);
        let mut later = unbounded.clone();
        later.rounds = 5;
        later.timer = Some(TimerId(9));
        let mut armed = unbounded.clone();
        armed.timer = Some(TimerId(2));
        assert_eq!(fingerprint(&later), fingerprint(&armed), "a counter and a timer id");
        assert_ne!(fingerprint(&unbounded), fingerprint(&armed), "an armed timer");
        let bounded = Arc::new(SynodConfig {
            max_rounds: Some(1),
            ..SynodConfig::default()
        });
        let fresh = Synod::new(NodeId(0), 3, bounded, acceptor);
        let mut spent = fresh.clone();
        spent.rounds = 1;
        assert_ne!(fingerprint(&fresh), fingerprint(&spent), "rounds left decide the future");
    }
}
