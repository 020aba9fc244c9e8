//! The [`Node`] trait every protocol implements, and the [`Ctx`] through which a handler acts.
//!
//! A node is a deterministic state machine. Its handlers never do I/O, never read a clock and
//! never touch global state: everything they do to the world is recorded in the context as an
//! [`Effect`] and applied by the engine after the handler returns. That keeps handlers testable
//! alone and makes every run a function of the seed.

use crate::hash::StableHasher;
use crate::rng::{self, SimRng};
use crate::share::Shareable;
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Debug};

/// A node's index in the cluster, `0..nodes`.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    /// The index as a `usize`, for indexing per-node tables.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A simulated client's index, `0..clients`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub u32);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}", self.0)
    }
}

/// Where a reply to a client request goes. `seq` numbers the client's operations from 0 and stays
/// the same across retries of one operation, so protocols can use `(client, seq)` as a session
/// key to apply a retried request exactly once.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplyTo {
    /// The client that asked.
    pub client: ClientId,
    /// The operation's number within that client's session.
    pub seq: u64,
}

/// A timer's handle, for cancelling it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TimerId(pub u64);

/// What a client makes of a response.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ResponseClass {
    /// The operation took effect and this is its result.
    Ok,
    /// The operation definitely did not take effect (e.g. an aborted transaction).
    Fail,
    /// This node cannot serve the request; try the hinted node, or another one.
    Redirect(Option<NodeId>),
}

/// One labelled value in a node's view, e.g. `("term", "3")`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ViewField {
    /// The field's name, stable across steps so changes can be highlighted.
    pub name: String,
    /// Its value, rendered for people.
    pub value: String,
}

/// What the TUI shows of a node: a role and a list of fields.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// The node's role (e.g. `leader`, `coordinator`), empty when the protocol has none.
    pub role: String,
    /// Further fields, in display order.
    pub fields: Vec<ViewField>,
}

impl NodeView {
    /// A view with this role and no fields.
    pub fn new(role: impl Into<String>) -> NodeView {
        NodeView {
            role: role.into(),
            fields: Vec::new(),
        }
    }

    /// Adds a field; chainable.
    pub fn field(mut self, name: impl Into<String>, value: impl fmt::Display) -> NodeView {
        self.fields.push(ViewField {
            name: name.into(),
            value: value.to_string(),
        });
        self
    }
}

// ANCHOR: node
/// A deterministic protocol participant.
///
/// The engine creates a node with the protocol's factory at boot and again at every restart; the
/// only state that survives a crash is `Durable`, reached through [`Ctx::durable`]. Handlers run
/// atomically: a crash happens between two events, never inside one.
///
/// `Send + Sync` because an exhaustive search on several threads (`simlab explore --jobs`)
/// expands different states on different threads; each simulation still runs on one.
pub trait Node: Clone + Debug + Send + Sync + 'static {
    /// Messages between nodes.
    type Msg: Clone + Debug + Serialize + Send + Sync;
    /// Timer payloads.
    type Timer: Clone + Debug + Serialize + PartialEq + Send + Sync;
    /// Client requests.
    type Request: Clone + Debug + Serialize + Send + Sync;
    /// Client responses.
    type Response: Clone + Debug + Serialize + Send + Sync;
    /// What survives a crash. Starts as `Default` and is changed only through the context.
    type Durable: Clone + Debug + Default + Serialize + Send + Sync;

    /// Called at boot and after every restart; read the durable store here to recover.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>);
    /// A message from another node arrived.
    fn on_message(&mut self, from: NodeId, msg: Self::Msg, ctx: &mut Ctx<'_, Self>);
    /// A timer this node set has fired.
    fn on_timer(&mut self, timer: Self::Timer, ctx: &mut Ctx<'_, Self>);
    /// A client request arrived. Answer it now or later with [`Ctx::reply`].
    fn on_request(&mut self, reply_to: ReplyTo, request: Self::Request, ctx: &mut Ctx<'_, Self>);

    /// This member was asked to leave the cluster (a `Leave` fault). Hand its data over, then
    /// call [`Ctx::exit`] from this or a later handler; until then it stays up and keeps
    /// serving. If it crashes before it exits, this runs again after its restart (after
    /// `on_start`), since the request still stands. The default exits at once.
    fn on_leave(&mut self, ctx: &mut Ctx<'_, Self>) {
        ctx.exit();
    }

    /// How a client should treat this response.
    fn classify(response: &Self::Response) -> ResponseClass;

    /// Mixes what of this node's volatile state decides its future into `hasher`: exhaustive
    /// exploration explores states with equal fingerprints once. The default hashes the
    /// `Debug` output, which sees every field (so counters that only number things split
    /// states that behave alike) and is slow; override it to hash just what matters.
    fn fingerprint(&self, hasher: &mut StableHasher) {
        hasher.bytes(format!("{self:?}").as_bytes());
    }

    /// Mixes what of a durable store decides the future into `hasher`, as
    /// [`Node::fingerprint`] does for the volatile state. The default hashes all of it; leave
    /// out what only records the path (times kept for reports, journals kept for incremental
    /// checks).
    fn fingerprint_durable(durable: &Self::Durable, hasher: &mut StableHasher) {
        hasher.value(durable);
    }

    /// Whether this node currently believes it leads (or coordinates). Faults that target "the
    /// leader" use it; protocols without a leader keep the default.
    fn is_leader(&self) -> bool {
        false
    }

    /// The leadership epoch this node leads in (Raft: its term; Multi-Paxos: its ballot), or
    /// `None` when the protocol does not number its leaderships.
    ///
    /// After a partition several nodes may believe they lead, the deposed ones in older epochs.
    /// Faults that target "the leader" hit the one with the highest epoch (ties to the lowest
    /// id); without epochs they hit the lowest-numbered node that believes it leads.
    fn leader_epoch(&self, durable: &Self::Durable) -> Option<u64> {
        let _ = durable;
        None
    }

    /// What the TUI shows of this node, given its durable store.
    fn view(&self, durable: &Self::Durable) -> NodeView {
        let _ = durable;
        NodeView::default()
    }
}
// ANCHOR_END: node

/// Something a handler did to the world, applied by the engine once the handler returns.
#[derive(Clone, Debug)]
pub enum Effect<P: Node> {
    /// Send a message to another node through the network.
    Send {
        /// The recipient.
        to: NodeId,
        /// The message.
        msg: P::Msg,
    },
    /// Fire `timer` after `after` of this node's local time.
    SetTimer {
        /// Its handle.
        id: TimerId,
        /// Local delay.
        after: Time,
        /// The payload handed back to `on_timer`.
        timer: P::Timer,
    },
    /// Cancel a pending timer (no effect if it already fired).
    CancelTimer(TimerId),
    /// Answer a client.
    Reply {
        /// The request being answered.
        to: ReplyTo,
        /// The answer.
        response: P::Response,
    },
    /// The durable store was changed.
    DurableWrite,
    /// The node leaves the cluster once this handler's other effects are applied.
    Exit,
}

impl<P: Node> Serialize for Effect<P> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStructVariant;
        match self {
            Effect::Send { to, msg } => {
                let mut v = s.serialize_struct_variant("Effect", 0, "Send", 2)?;
                v.serialize_field("to", to)?;
                v.serialize_field("msg", msg)?;
                v.end()
            }
            Effect::SetTimer { id, after, timer } => {
                let mut v = s.serialize_struct_variant("Effect", 1, "SetTimer", 3)?;
                v.serialize_field("id", id)?;
                v.serialize_field("after_us", after)?;
                v.serialize_field("timer", timer)?;
                v.end()
            }
            Effect::CancelTimer(id) => s.serialize_newtype_variant("Effect", 2, "CancelTimer", id),
            Effect::Reply { to, response } => {
                let mut v = s.serialize_struct_variant("Effect", 3, "Reply", 2)?;
                v.serialize_field("to", to)?;
                v.serialize_field("response", response)?;
                v.end()
            }
            Effect::DurableWrite => s.serialize_unit_variant("Effect", 4, "DurableWrite"),
            Effect::Exit => s.serialize_unit_variant("Effect", 5, "Exit"),
        }
    }
}

/// A node's durable store as a handler holds it: the engine's is shared with snapshots of the
/// world (the TUI keeps hundreds), so it is copied only when the handler writes to it, not
/// whenever a handler runs.
pub(crate) enum Store<'a, D> {
    /// A store the handler may change in place.
    Owned(&'a mut D),
    /// The engine's store, copied on the first write if a snapshot shares it.
    Shared(&'a mut Shareable<D>),
}

impl<D: Clone> Store<'_, D> {
    fn get(&self) -> &D {
        match self {
            Store::Owned(d) => d,
            Store::Shared(d) => d,
        }
    }

    fn get_mut(&mut self) -> &mut D {
        match self {
            Store::Owned(d) => d,
            Store::Shared(d) => d.get_mut(),
        }
    }
}

/// A handler's window on the world.
pub struct Ctx<'a, P: Node> {
    pub(crate) id: NodeId,
    pub(crate) now: Time,
    pub(crate) nodes: u32,
    pub(crate) rng: &'a mut SimRng,
    pub(crate) durable: Store<'a, P::Durable>,
    pub(crate) next_timer: &'a mut u64,
    pub(crate) effects: &'a mut Vec<Effect<P>>,
    pub(crate) notes: &'a mut Vec<String>,
    pub(crate) keep_notes: bool,
}

impl<'a, P: Node> Ctx<'a, P> {
    /// A context over caller-owned buffers, for testing a handler without an engine: effects and
    /// notes land in the vectors given.
    #[allow(clippy::too_many_arguments)]
    pub fn detached(
        id: NodeId,
        now: Time,
        nodes: u32,
        rng: &'a mut SimRng,
        durable: &'a mut P::Durable,
        next_timer: &'a mut u64,
        effects: &'a mut Vec<Effect<P>>,
        notes: &'a mut Vec<String>,
    ) -> Ctx<'a, P> {
        Ctx {
            id,
            now,
            nodes,
            rng,
            durable: Store::Owned(durable),
            next_timer,
            effects,
            notes,
            keep_notes: true,
        }
    }

    /// Leaves the cluster when this handler returns: the node stops, its timers are
    /// cancelled, and messages to it are dropped from then on. Meant for a member asked to
    /// leave ([`Node::on_leave`]) once its data is handed over; a member that was not asked
    /// leaves too (a decommissioned node).
    pub fn exit(&mut self) {
        self.effects.push(Effect::Exit);
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's local clock: virtual time plus its skew, if any.
    pub fn now(&self) -> Time {
        self.now
    }

    /// How many nodes the cluster has.
    pub fn cluster_size(&self) -> u32 {
        self.nodes
    }

    /// Every node's id, this one included, in order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + 'static {
        (0..self.nodes).map(NodeId)
    }

    /// Every other node's id, in order.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + 'static {
        let me = self.id;
        (0..self.nodes).map(NodeId).filter(move |&n| n != me)
    }

    /// Sends `msg` to `to`. Sending to oneself is allowed and goes through the network too.
    pub fn send(&mut self, to: NodeId, msg: P::Msg) {
        self.effects.push(Effect::Send { to, msg });
    }

    /// Sends `msg` to every other node.
    pub fn broadcast(&mut self, msg: P::Msg) {
        for to in self.peers() {
            self.effects.push(Effect::Send {
                to,
                msg: msg.clone(),
            });
        }
    }

    /// Fires `timer` after `after` of local time. Returns a handle for [`Ctx::cancel_timer`].
    pub fn set_timer(&mut self, after: Time, timer: P::Timer) -> TimerId {
        let id = TimerId(*self.next_timer);
        *self.next_timer += 1;
        self.effects.push(Effect::SetTimer { id, after, timer });
        id
    }

    /// Cancels a timer set earlier. Cancelling a timer that already fired does nothing.
    pub fn cancel_timer(&mut self, id: TimerId) {
        self.effects.push(Effect::CancelTimer(id));
    }

    /// This node's random stream (seeded, independent of every other node's).
    pub fn rng(&mut self) -> &mut SimRng {
        self.rng
    }

    /// A uniform integer in `lo..=hi` from this node's stream, e.g. an election timeout.
    pub fn random_between(&mut self, lo: u64, hi: u64) -> u64 {
        rng::between(self.rng, lo, hi)
    }

    /// The durable store, as it is now.
    pub fn durable(&self) -> &P::Durable {
        self.durable.get()
    }

    /// The durable store, for writing. Whatever is written is on disk when the handler returns.
    pub fn durable_mut(&mut self) -> &mut P::Durable {
        if !matches!(self.effects.last(), Some(Effect::DurableWrite)) {
            self.effects.push(Effect::DurableWrite);
        }
        self.durable.get_mut()
    }

    /// Answers a client request.
    pub fn reply(&mut self, to: ReplyTo, response: P::Response) {
        self.effects.push(Effect::Reply { to, response });
    }

    /// Adds a line to the trace for people reading it (the TUI's detail pane). A line that
    /// must be formatted goes through [`Ctx::note_with`]: sweeps and searches keep no notes,
    /// and formatting them anyway took 5% of a Paxos search.
    pub fn note(&mut self, line: impl Into<String>) {
        if self.keep_notes {
            self.notes.push(line.into());
        }
    }

    /// Like [`Ctx::note`], but builds the line only when someone will read it (cheaper in sweeps).
    pub fn note_with(&mut self, line: impl FnOnce() -> String) {
        if self.keep_notes {
            self.notes.push(line());
        }
    }
}

/// How an embedded node's effects are lifted into its host's (see [`Ctx::embed`]).
///
/// A host node that runs another protocol's node inside it (a lock service running Raft as its
/// store) wraps the embedded node's messages and timers in its own and keeps the embedded
/// node's durable store inside its own. Everything else (the clock, the random stream, the
/// timer numbering, the trace notes) is the host's, shared, so the embedded node behaves
/// exactly as it would on its own and the run stays a function of the seed.
pub struct Embedding<P: Node, Q: Node> {
    /// How many nodes the embedded protocol's cluster has: its members are nodes `0..members`
    /// of the host cluster, and its `peers()` and `cluster_size()` see only them.
    pub members: u32,
    /// Wraps an embedded message as a host message.
    pub msg: fn(Q::Msg) -> P::Msg,
    /// Wraps an embedded timer as a host timer.
    pub timer: fn(Q::Timer) -> P::Timer,
    /// The embedded node's durable store inside the host's.
    pub durable: fn(&mut P::Durable) -> &mut Q::Durable,
}

impl<'a, P: Node> Ctx<'a, P> {
    /// Runs one handler of an embedded node `Q` against this context, lifting what it does:
    /// its messages and timers are wrapped by `embedding` and sent or set as this node's (a
    /// timer keeps its id, so the embedded node can cancel it), its durable writes are this
    /// node's. Its answers to clients are returned, not sent: the host decides where they go
    /// (the requests it forwarded came from its own callers).
    ///
    /// The host passes the embedded node's messages and timers back to it by unwrapping them
    /// in its own handlers and calling `embed` again.
    pub fn embed<Q: Node, R>(
        &mut self,
        embedding: &Embedding<P, Q>,
        handler: impl FnOnce(&mut Ctx<'_, Q>) -> R,
    ) -> (R, Vec<(ReplyTo, Q::Response)>) {
        let mut effects = Vec::new();
        let result = {
            let mut sub = Ctx {
                id: self.id,
                now: self.now,
                nodes: embedding.members,
                rng: &mut *self.rng,
                durable: Store::Owned((embedding.durable)(self.durable.get_mut())),
                next_timer: &mut *self.next_timer,
                effects: &mut effects,
                notes: &mut *self.notes,
                keep_notes: self.keep_notes,
            };
            handler(&mut sub)
        };
        let mut replies = Vec::new();
        for effect in effects {
            match effect {
                Effect::Send { to, msg } => self.send(to, (embedding.msg)(msg)),
                Effect::SetTimer { id, after, timer } => self.effects.push(Effect::SetTimer {
                    id,
                    after,
                    timer: (embedding.timer)(timer),
                }),
                Effect::CancelTimer(id) => self.cancel_timer(id),
                Effect::Reply { to, response } => replies.push((to, response)),
                Effect::DurableWrite => {
                    let _ = self.durable_mut();
                }
                // Membership is the host's: an embedded node cannot take it out of the cluster.
                Effect::Exit => {}
            }
        }
        (result, replies)
    }
}

#[cfg(test)]
mod embedding_tests {
    use super::*;
    use crate::rng::{Stream, stream};

    /// A node that counts pings in its durable store, answers clients and keeps a timer.
    #[derive(Clone, Debug)]
    struct Inner;

    impl Node for Inner {
        type Msg = u32;
        type Timer = &'static str;
        type Request = ();
        type Response = u64;
        type Durable = u64;
        fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
            let id = ctx.set_timer(Time::from_millis(5), "tick");
            ctx.cancel_timer(id);
        }
        fn on_message(&mut self, from: NodeId, msg: u32, ctx: &mut Ctx<'_, Self>) {
            *ctx.durable_mut() += u64::from(msg);
            for peer in ctx.peers().collect::<Vec<_>>() {
                ctx.send(peer, msg + from.0);
            }
        }
        fn on_timer(&mut self, _: &'static str, _: &mut Ctx<'_, Self>) {}
        fn on_request(&mut self, to: ReplyTo, _: (), ctx: &mut Ctx<'_, Self>) {
            let count = *ctx.durable();
            ctx.reply(to, count);
        }
        fn classify(_: &u64) -> ResponseClass {
            ResponseClass::Ok
        }
    }

    #[derive(Clone, Debug)]
    struct Host;

    #[derive(Clone, Debug, Default, Serialize)]
    struct HostDurable {
        own: u8,
        inner: u64,
    }

    #[derive(Clone, Debug, Serialize)]
    enum HostMsg {
        Inner(u32),
    }

    impl Node for Host {
        type Msg = HostMsg;
        type Timer = String;
        type Request = ();
        type Response = ();
        type Durable = HostDurable;
        fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
        fn on_message(&mut self, _: NodeId, _: HostMsg, _: &mut Ctx<'_, Self>) {}
        fn on_timer(&mut self, _: String, _: &mut Ctx<'_, Self>) {}
        fn on_request(&mut self, _: ReplyTo, _: (), _: &mut Ctx<'_, Self>) {}
        fn classify(_: &()) -> ResponseClass {
            ResponseClass::Ok
        }
    }

    const EMBED: Embedding<Host, Inner> = Embedding {
        members: 3,
        msg: HostMsg::Inner,
        timer: |t| format!("inner:{t}"),
        durable: |d| &mut d.inner,
    };

    #[test]
    fn an_embedded_node_acts_through_its_host() {
        let mut rng = stream(1, Stream::Node(0));
        let mut durable = HostDurable { own: 7, inner: 0 };
        let (mut next_timer, mut effects, mut notes) = (40, Vec::new(), Vec::new());
        let mut ctx = Ctx::<Host>::detached(
            NodeId(1),
            Time::from_millis(3),
            10,
            &mut rng,
            &mut durable,
            &mut next_timer,
            &mut effects,
            &mut notes,
        );
        let mut inner = Inner;
        // Messages go to the embedded cluster's members only, wrapped; the durable write is
        // the host's.
        let ((), replies) = ctx.embed(&EMBED, |sub| {
            assert_eq!(sub.cluster_size(), 3);
            assert_eq!(sub.now(), Time::from_millis(3));
            inner.on_message(NodeId(2), 5, sub);
        });
        assert!(replies.is_empty());
        // Timers keep the ids the embedded node was given, from the host's numbering.
        ctx.embed(&EMBED, |sub| inner.on_start(sub));
        // Answers come back to the host instead of going to a client.
        let to = ReplyTo {
            client: ClientId(9),
            seq: 4,
        };
        let ((), replies) = ctx.embed(&EMBED, |sub| inner.on_request(to, (), sub));
        assert_eq!(replies, vec![(to, 5)]);
        // An embedded node cannot take its host out of the cluster.
        let ((), _) = ctx.embed(&EMBED, |sub: &mut Ctx<'_, Inner>| sub.exit());
        let rendered: Vec<String> = effects
            .iter()
            .map(|e| match e {
                Effect::Send { to, msg } => format!("send {to} {msg:?}"),
                Effect::SetTimer { id, after, timer } => {
                    format!("timer {} {} {timer}", id.0, after.as_millis())
                }
                Effect::CancelTimer(id) => format!("cancel {}", id.0),
                Effect::Reply { .. } => "reply".into(),
                Effect::DurableWrite => "durable".into(),
                Effect::Exit => "exit".into(),
            })
            .collect();
        assert_eq!(
            rendered,
            [
                "durable",
                "send n0 Inner(7)",
                "send n2 Inner(7)",
                "timer 40 5 inner:tick",
                "cancel 40"
            ]
        );
        assert_eq!((durable.own, durable.inner), (7, 5));
        assert_eq!(next_timer, 41);
    }
}
