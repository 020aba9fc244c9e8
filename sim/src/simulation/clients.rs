//! Simulated clients: invoking operations, sending and resending them, following redirects,
//! timing out, and recording each operation in the history with the partition side it ran on.

use super::Simulation;
use super::queue::Event;
use crate::history::{Completion, Operation, Side};
use crate::node::{ClientId, Node, NodeId, ResponseClass};
use crate::rng::{self, SimRng};
use crate::share::share_from;
use crate::time::Time;
use crate::trace::summary;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(super) struct Pending {
    pub(super) seq: u64,
    /// Numbers every send of this operation, so stale timeouts can be told apart.
    pub(super) send: u32,
    /// Tries started; each ends in an answer, a timeout, or a redirect without a hint.
    pub(super) tries: u32,
    /// Redirects with a hint followed during the current try.
    pub(super) hops: u32,
    /// An earlier try timed out, so the operation may have taken effect.
    pub(super) maybe_applied: bool,
    /// The key it is for, when the client routes by key.
    pub(super) key: Option<u64>,
}

/// Redirects with a hint a client follows within one try before it counts as a failed try:
/// enough to find a leader, few enough that two confused nodes cannot bounce it forever.
const MAX_HOPS_PER_TRY: u32 = 4;

#[derive(Debug)]
pub(super) struct ClientState {
    pub(super) rng: SimRng,
    pub(super) workload_rng: SimRng,
    /// History index of each of this client's operations, by `seq`. Shared by the copies of a
    /// simulation until the client invokes its next operation: a search copies every client at
    /// every step, and a client invokes a handful of times in a run.
    pub(super) ops: Arc<Vec<usize>>,
    pub(super) pending: Option<Pending>,
    /// Where to send requests without a key (or every request, unless routing by key).
    pub(super) leader_hint: Option<NodeId>,
    /// Where to send each key's requests, when routing by key.
    pub(super) key_hints: BTreeMap<u64, NodeId>,
}

impl Clone for ClientState {
    fn clone(&self) -> Self {
        ClientState {
            rng: self.rng.clone(),
            workload_rng: self.workload_rng.clone(),
            ops: Arc::clone(&self.ops),
            pending: self.pending.clone(),
            leader_hint: self.leader_hint,
            key_hints: self.key_hints.clone(),
        }
    }

    /// Keeps the list of operations this copy already shares with `source` (see
    /// `Simulation::refill_from`).
    fn clone_from(&mut self, source: &Self) {
        let ClientState {
            rng,
            workload_rng,
            ops,
            pending,
            leader_hint,
            key_hints,
        } = source;
        self.rng.clone_from(rng);
        self.workload_rng.clone_from(workload_rng);
        share_from(&mut self.ops, ops);
        self.pending.clone_from(pending);
        self.leader_hint = *leader_hint;
        self.key_hints.clone_from(key_hints);
    }
}

impl ClientState {
    /// Where to send a request for `key` first, if the client knows.
    fn hint(&self, key: Option<u64>) -> Option<NodeId> {
        match key {
            Some(key) => self.key_hints.get(&key).copied(),
            None => self.leader_hint,
        }
    }

    /// Learns (or forgets) where requests for the pending operation's key go.
    fn learn(&mut self, node: Option<NodeId>) {
        let key = self.pending.as_ref().and_then(|p| p.key);
        match (key, node) {
            (Some(key), Some(node)) => {
                self.key_hints.insert(key, node);
            }
            (Some(key), None) => {
                self.key_hints.remove(&key);
            }
            (None, node) => self.leader_hint = node,
        }
    }
}

/// The partition's groups while it lasts (cleared by every fault): which group each node is in.
#[derive(Clone, Debug)]
pub(super) struct SideCache {
    components: Vec<Vec<NodeId>>,
    of_node: Vec<usize>,
}

impl<P: Node> Simulation<P> {
    /// `node`'s side of the network now, and while partitioned the group of nodes it reaches.
    pub(super) fn side_of(&mut self, node: NodeId) -> (Side, Option<&[NodeId]>) {
        if !self.state.network.reach.is_partitioned() {
            return (Side::Healthy, None);
        }
        let n = self.config.nodes as usize;
        let reach = &self.state.network.reach;
        let cache = self.side_cache.get_or_insert_with(|| {
            let components = reach.components();
            let mut of_node = vec![0; n];
            for (i, component) in components.iter().enumerate() {
                for id in component {
                    of_node[id.index()] = i;
                }
            }
            SideCache {
                components,
                of_node,
            }
        });
        let group = &cache.components[cache.of_node[node.index()]];
        let side = if group.len() * 2 > n {
            Side::Majority
        } else {
            Side::Minority
        };
        (side, Some(group))
    }

    pub(super) fn client_invoke(&mut self, client: ClientId, full: bool) {
        let c = client.0 as usize;
        let seq = self.clients[c].ops.len() as u64;
        if seq >= u64::from(self.config.clients.ops) {
            if full {
                self.detail_mut().summary = summary::client_done(client, seq);
            }
            return;
        }
        let state = &mut self.clients[c];
        let workload = self
            .workload
            .as_mut()
            .expect("validated: clients have a workload")
            .get_mut();
        let request = workload.next_request(client, seq, &mut state.workload_rng);
        if self.tracing {
            self.hasher.value(&request);
        }
        let key = if self.config.clients.route_by_key {
            workload.routing_key(&request)
        } else {
            None
        };
        let mut target = match state.hint(key) {
            Some(node) => node,
            None => NodeId(rng::below(&mut state.rng, u64::from(self.config.nodes)) as u32),
        };
        if self.config.clients.spread {
            // Drawn above all the same, so the client's stream does not depend on the setting.
            target = NodeId(client.0 % self.config.nodes);
        }
        if full {
            self.detail_mut().summary = summary::invoke(client, seq, &request);
            self.detail_mut().payload = serde_json::to_value(&request).unwrap_or_default();
        }
        let (side, group) = self.side_of(target);
        let group = group.map(<[NodeId]>::to_vec);
        let index = self.state.history.ops.len();
        Arc::make_mut(&mut self.clients[c].ops).push(index);
        let history = self.state.history.get_mut();
        let group = group.map(|g| history.group_index(&g));
        let call_order = history.next_order();
        history.ops.push(Operation {
            client,
            seq,
            request,
            invoked: self.state.now,
            completed: None,
            completion: None,
            node: target,
            side,
            group,
            attempts: 0,
            call_order,
            return_order: None,
        });
        self.clients[c].pending = Some(Pending {
            seq,
            send: 0,
            tries: 1,
            hops: 0,
            maybe_applied: false,
            key,
        });
        self.client_send(client, target, Time::ZERO);
    }

    /// Sends the pending operation again to `target` after `backoff`.
    pub(super) fn client_send(&mut self, client: ClientId, target: NodeId, backoff: Time) {
        let config = &self.config.clients;
        let c = client.0 as usize;
        let state = &mut self.clients[c];
        let pending = state.pending.as_mut().expect("a pending operation");
        pending.send += 1;
        let (seq, send) = (pending.seq, pending.send);
        let (lo, hi) = config.latency_ms;
        let latency = Time::from_micros(rng::between(&mut state.rng, lo * 1_000, hi * 1_000));
        let index = state.ops[seq as usize];
        self.state.history.get_mut().ops[index].attempts += 1;
        self.state.stats.client_requests += 1;
        let sent = self.state.now + backoff;
        let timeout = Time::from_millis(config.timeout_ms);
        self.push(
            sent + latency,
            Event::Request {
                client,
                to: target,
                seq,
                send,
                sent: (self.state.stats.steps, sent),
            },
        );
        self.push(sent + timeout, Event::ClientTimeout { client, seq, send });
        self.drop_stale_client_events(client);
    }

    /// Whether `client` waits for an answer to operation `seq` (and, for a timeout, to that
    /// operation's send number `send`).
    pub(super) fn client_waits_on(&self, client: ClientId, seq: u64, send: Option<u32>) -> bool {
        self.clients[client.0 as usize]
            .pending
            .as_ref()
            .is_some_and(|p| p.seq == seq && send.is_none_or(|send| p.send == send))
    }

    /// In [`Simulation::explore_mode`], takes out of the queue `client`'s answers and timeouts
    /// for sends it no longer waits on: they would do nothing when they ran, and never will,
    /// since a client's operation and send numbers only grow.
    pub(super) fn drop_stale_client_events(&mut self, client: ClientId) {
        if !self.exploring {
            return;
        }
        let stale = self.queue.slots_where(|event| match *event {
            Event::Reply { client: c, seq, .. } => {
                c == client && !self.client_waits_on(client, seq, None)
            }
            Event::ClientTimeout {
                client: c,
                seq,
                send,
            } => c == client && !self.client_waits_on(client, seq, Some(send)),
            _ => false,
        });
        for slot in stale {
            self.queue.take(slot);
        }
    }

    /// Ends the pending operation and schedules the next after a think time.
    pub(super) fn client_complete(
        &mut self,
        client: ClientId,
        completion: Completion<P::Response>,
    ) {
        let c = client.0 as usize;
        let pending = self.clients[c].pending.take().expect("a pending operation");
        let index = self.clients[c].ops[pending.seq as usize];
        let history = self.state.history.get_mut();
        let order = history.next_order();
        let op = &mut history.ops[index];
        op.completed = Some(self.state.now);
        op.completion = Some(completion);
        op.return_order = Some(order);
        self.drop_stale_client_events(client);
        if self.clients[c].ops.len() as u64 >= u64::from(self.config.clients.ops) {
            return; // This client is done.
        }
        let (lo, hi) = self.config.clients.think_ms;
        let think = Time::from_micros(rng::between(
            &mut self.clients[c].rng,
            lo * 1_000,
            hi * 1_000,
        ));
        self.push(self.state.now + think, Event::ClientInvoke(client));
    }

    pub(super) fn random_other_node(&mut self, client: ClientId, not: NodeId) -> NodeId {
        let n = u64::from(self.config.nodes);
        let rng = &mut self.clients[client.0 as usize].rng;
        if n == 1 {
            return not;
        }
        let pick = rng::below(rng, n - 1) as u32;
        NodeId(if pick >= not.0 { pick + 1 } else { pick })
    }

    pub(super) fn client_reply(
        &mut self,
        client: ClientId,
        from: NodeId,
        seq: u64,
        response: P::Response,
    ) {
        let c = client.0 as usize;
        match &self.clients[c].pending {
            Some(p) if p.seq == seq => {}
            _ => return, // A late answer to an operation already settled.
        }
        match P::classify(&response) {
            ResponseClass::Ok => {
                self.clients[c].learn(Some(from));
                self.client_complete(client, Completion::Ok(response));
            }
            ResponseClass::Fail => self.client_complete(client, Completion::Fail(response)),
            ResponseClass::Redirect(hint) => {
                let pending = self.clients[c].pending.as_mut().expect("checked above");
                if let Some(node) = hint
                    && pending.hops < MAX_HOPS_PER_TRY
                {
                    pending.hops += 1;
                    self.clients[c].learn(Some(node));
                    self.client_send(client, node, Time::ZERO);
                    return;
                }
                if pending.tries >= self.config.clients.attempts {
                    let completion = if pending.maybe_applied {
                        Completion::Unknown
                    } else {
                        Completion::Fail(response)
                    };
                    self.client_complete(client, completion);
                    return;
                }
                pending.tries += 1;
                pending.hops = 0;
                self.clients[c].learn(None);
                // Nobody knows where to go (an election, perhaps): wait a little first.
                let timeout = self.config.clients.timeout_ms * 1_000;
                let wait = rng::between(&mut self.clients[c].rng, timeout / 10, timeout / 2);
                let target = self.random_other_node(client, from);
                self.client_send(client, target, Time::from_micros(wait));
            }
        }
    }

    pub(super) fn client_timeout(&mut self, client: ClientId, seq: u64, send: u32) {
        let c = client.0 as usize;
        let Some(pending) = self.clients[c].pending.as_mut() else {
            return;
        };
        if pending.seq != seq || pending.send != send {
            return; // That send was answered or superseded.
        }
        pending.maybe_applied = true;
        if pending.tries >= self.config.clients.attempts {
            self.client_complete(client, Completion::Unknown);
            return;
        }
        pending.tries += 1;
        pending.hops = 0;
        let index = self.clients[c].ops[seq as usize];
        let last = self.state.history.ops[index].node;
        self.clients[c].learn(None);
        let target = self.random_other_node(client, last);
        self.client_send(client, target, Time::ZERO);
    }
}
