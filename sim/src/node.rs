//! The [`Node`] trait every protocol implements, and the [`Ctx`] through which a handler acts.
//!
//! A node is a deterministic state machine. Its handlers never do I/O, never read a clock and
//! never touch global state: everything they do to the world is recorded in the context as an
//! [`Effect`] and applied by the engine after the handler returns. That keeps handlers testable
//! alone and makes every run a function of the seed.

use crate::rng::{self, SimRng};
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
pub trait Node: Clone + Debug + 'static {
    /// Messages between nodes.
    type Msg: Clone + Debug + Serialize;
    /// Timer payloads.
    type Timer: Clone + Debug + Serialize + PartialEq;
    /// Client requests.
    type Request: Clone + Debug + Serialize;
    /// Client responses.
    type Response: Clone + Debug + Serialize;
    /// What survives a crash. Starts as `Default` and is changed only through the context.
    type Durable: Clone + Debug + Default + Serialize;

    /// Called at boot and after every restart; read the durable store here to recover.
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>);
    /// A message from another node arrived.
    fn on_message(&mut self, from: NodeId, msg: Self::Msg, ctx: &mut Ctx<'_, Self>);
    /// A timer this node set has fired.
    fn on_timer(&mut self, timer: Self::Timer, ctx: &mut Ctx<'_, Self>);
    /// A client request arrived. Answer it now or later with [`Ctx::reply`].
    fn on_request(&mut self, reply_to: ReplyTo, request: Self::Request, ctx: &mut Ctx<'_, Self>);

    /// How a client should treat this response.
    fn classify(response: &Self::Response) -> ResponseClass;

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
        }
    }
}

/// A handler's window on the world.
pub struct Ctx<'a, P: Node> {
    pub(crate) id: NodeId,
    pub(crate) now: Time,
    pub(crate) nodes: u32,
    pub(crate) rng: &'a mut SimRng,
    pub(crate) durable: &'a mut P::Durable,
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
            durable,
            next_timer,
            effects,
            notes,
            keep_notes: true,
        }
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
        self.durable
    }

    /// The durable store, for writing. Whatever is written is on disk when the handler returns.
    pub fn durable_mut(&mut self) -> &mut P::Durable {
        if !matches!(self.effects.last(), Some(Effect::DurableWrite)) {
            self.effects.push(Effect::DurableWrite);
        }
        self.durable
    }

    /// Answers a client request.
    pub fn reply(&mut self, to: ReplyTo, response: P::Response) {
        self.effects.push(Effect::Reply { to, response });
    }

    /// Adds a line to the trace for people reading it (the TUI's detail pane).
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
