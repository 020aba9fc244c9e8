//! The key-value client API every replicated store speaks: one request and response type, one
//! workload, one state machine, one history export and one linearizability invariant, so a new
//! store (Raft today; Multi-Paxos, the gossip cache and the hash ring later) gets the workload,
//! the checker and the CAP report by speaking it.
//!
//! Hashed types (their variant index is in every trace hash): a store that needs more (deletes,
//! sibling reads, "not the owner of this key" redirects) adds variants **at the end** of
//! [`KvOp`] or [`KvResponse`], so existing traces do not move.

use serde::Serialize;
use simlab_sim::FieldError;
use simlab_sim::linearizability::models::{Kv, KvInput, KvOutput};
use simlab_sim::linearizability::{self, Op};
use simlab_sim::rng::{self, SimRng};
use simlab_sim::{
    ClientId, Completion, History, Invariant, InvariantKind, Node, NodeId, ResponseClass, Workload,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A key-value operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum KvOp {
    /// Read a key.
    Get(String),
    /// Set a key.
    Put(String, String),
    /// Append to a key.
    Append(String, String),
    /// Compare-and-set: if the key holds `expected`, set it to `new`. Behind a pointer so that
    /// the common operations (and every log entry and message that carries one) stay as small
    /// as before; shared, so that copies of a history (a search makes one whenever a client's
    /// operation is retried or ends) do not copy its three strings.
    Cas(Arc<Cas>),
    /// Remove a key (a later get reads it as missing, `""`).
    Delete(String),
}

/// A compare-and-set's arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cas {
    /// The key.
    pub key: String,
    /// The value it must hold (`""` for a missing key).
    pub expected: String,
    /// The value it gets if it does.
    pub new: String,
}

impl KvOp {
    /// A compare-and-set of `key` from `expected` to `new`.
    pub fn cas(
        key: impl Into<String>,
        expected: impl Into<String>,
        new: impl Into<String>,
    ) -> KvOp {
        KvOp::Cas(Arc::new(Cas {
            key: key.into(),
            expected: expected.into(),
            new: new.into(),
        }))
    }

    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Get(k) | KvOp::Put(k, _) | KvOp::Append(k, _) | KvOp::Delete(k) => k,
            KvOp::Cas(cas) => &cas.key,
        }
    }

    /// A short description for views and notes, e.g. `put k1=0.3`.
    pub fn describe(&self) -> String {
        match self {
            KvOp::Get(k) => format!("get {k}"),
            KvOp::Put(k, v) => format!("put {k}={v}"),
            KvOp::Append(k, v) => format!("append {k}+={v}"),
            KvOp::Cas(c) => format!("cas {}: {:?}->{}", c.key, c.expected, c.new),
            KvOp::Delete(k) => format!("delete {k}"),
        }
    }
}

/// A client request: one key-value operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KvRequest(pub KvOp);

/// A store's answer to a client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum KvResponse {
    /// Done: a get's value (`""` for a missing key); nothing for writes and successful swaps.
    Ok(Option<String>),
    /// This node cannot serve the request; try the hinted one.
    NotLeader(Option<NodeId>),
    /// A compare-and-set found another value and changed nothing.
    CasFailed,
    /// A get found concurrent values (siblings), none newer than the others: the store keeps
    /// them all and the reader decides. Sorted.
    Siblings(Vec<String>),
}

impl KvResponse {
    /// How a client treats the answer: [`Node::classify`] for stores that speak this API.
    pub fn classify(&self) -> ResponseClass {
        match self {
            KvResponse::Ok(_) | KvResponse::CasFailed | KvResponse::Siblings(_) => {
                ResponseClass::Ok
            }
            KvResponse::NotLeader(hint) => ResponseClass::Redirect(*hint),
        }
    }
}

/// The state machine every store replicates: applies one operation and answers it.
pub fn apply(store: &mut BTreeMap<String, String>, op: &KvOp) -> KvResponse {
    match op {
        KvOp::Get(k) => KvResponse::Ok(Some(store.get(k).cloned().unwrap_or_default())),
        // Every replica applies every write: reuse the key (and the value's buffer) already
        // stored rather than allocate new ones.
        KvOp::Put(k, v) => {
            match store.get_mut(k) {
                Some(value) => value.clone_from(v),
                None => {
                    store.insert(k.clone(), v.clone());
                }
            }
            KvResponse::Ok(None)
        }
        KvOp::Append(k, v) => {
            match store.get_mut(k) {
                Some(value) => value.push_str(v),
                None => {
                    store.insert(k.clone(), v.clone());
                }
            }
            KvResponse::Ok(None)
        }
        KvOp::Cas(c) => {
            if store.get(&c.key).map_or("", String::as_str) == c.expected {
                store.insert(c.key.clone(), c.new.clone());
                KvResponse::Ok(None)
            } else {
                KvResponse::CasFailed
            }
        }
        KvOp::Delete(k) => {
            store.remove(k);
            KvResponse::Ok(None)
        }
    }
}

/// The replicated state machine: the key-value store and, per client, the last sequence number
/// applied with its answer (so a retried command takes effect once, §8).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KvState {
    /// The key-value store.
    pub kv: BTreeMap<String, String>,
    /// Per client: the last sequence number applied and its answer.
    pub sessions: BTreeMap<u32, (u64, KvResponse)>,
}

impl KvState {
    /// Applies client `client`'s command number `seq` and returns its answer. A retry of the
    /// last command applied is answered from the session and changes nothing; an older one
    /// returns `None`. With `apply_retries` (a planted bug) every retry is applied again.
    pub fn apply(
        &mut self,
        client: u32,
        seq: u64,
        op: &KvOp,
        apply_retries: bool,
    ) -> Option<KvResponse> {
        match self.sessions.get(&client) {
            Some((last, cached)) if *last >= seq && !apply_retries => {
                (*last == seq).then(|| cached.clone())
            }
            _ => {
                let response = apply(&mut self.kv, op);
                self.sessions.insert(client, (seq, response.clone()));
                Some(response)
            }
        }
    }
}

/// What the workload asks for: how many keys and which mix of operations (percentages; the rest
/// are appends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvWorkload {
    /// Keys to choose from.
    pub keys: u32,
    /// Percent gets.
    pub get_percent: u32,
    /// Percent puts.
    pub put_percent: u32,
    /// Percent compare-and-sets. At 0, the workload draws exactly what it drew before
    /// compare-and-set existed, so existing traces do not move.
    pub cas_percent: u32,
    /// The last value a put or swap was generated with, per key: a swap expects it, so some
    /// swaps succeed (if no other write came between) and some fail.
    last_written: BTreeMap<u32, String>,
}

impl KvWorkload {
    /// A workload over `keys` keys with this mix.
    pub fn new(keys: u32, get_percent: u32, put_percent: u32, cas_percent: u32) -> KvWorkload {
        KvWorkload {
            keys,
            get_percent,
            put_percent,
            cas_percent,
            last_written: BTreeMap::new(),
        }
    }

    /// Checks the mix; the error names the field as a store's config names it.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.keys == 0 {
            return Err(FieldError::new(
                "keys",
                "the workload needs at least one key",
            ));
        }
        // Summed in u64: three u32 percentages cannot wrap there.
        let total =
            u64::from(self.get_percent) + u64::from(self.put_percent) + u64::from(self.cas_percent);
        if total > 100 {
            return Err(FieldError::new(
                "get_percent",
                format!(
                    "get_percent + put_percent + cas_percent is {total}; it must not exceed 100"
                ),
            ));
        }
        Ok(())
    }
}

impl Workload<KvRequest> for KvWorkload {
    /// Written values are unique (client and sequence number), so the linearizability checker
    /// can tell every write apart.
    fn next_request(&mut self, client: ClientId, seq: u64, rng: &mut SimRng) -> KvRequest {
        let key_index = rng::below(rng, u64::from(self.keys)) as u32;
        let key = format!("k{key_index}");
        let roll = rng::below(rng, 100) as u32;
        let (gets, puts) = (self.get_percent, self.get_percent + self.put_percent);
        let op = if roll < gets {
            KvOp::Get(key)
        } else if roll < puts {
            let value = format!("{}.{seq}", client.0);
            if self.cas_percent > 0 {
                self.last_written.insert(key_index, value.clone());
            }
            KvOp::Put(key, value)
        } else if roll < puts + self.cas_percent {
            let new = format!("{}.{seq}", client.0);
            let expected = self.last_written.insert(key_index, new.clone());
            KvOp::cas(key, expected.unwrap_or_default(), new)
        } else {
            KvOp::Append(key, format!("[{}.{seq}]", client.0))
        };
        KvRequest(op)
    }

    /// The key's stable hash: clients only compare these, so any number per key serves.
    fn routing_key(&self, request: &KvRequest) -> Option<u64> {
        Some(simlab_sim::hash::stable_hash(request.0.key()))
    }
}

/// The client history as key-value operations for the checker. Definite failures (every try
/// redirected) are left out: they did not take effect.
pub fn history(history: &History<KvRequest, KvResponse>) -> Vec<Op<KvInput, KvOutput>> {
    history
        .ops
        .iter()
        .filter(|op| !matches!(op.completion, Some(Completion::Fail(_))))
        .map(|op| {
            let input = match &op.request.0 {
                KvOp::Get(k) => KvInput::Get(k.clone()),
                KvOp::Put(k, v) => KvInput::Put(k.clone(), v.clone()),
                KvOp::Append(k, v) => KvInput::Append(k.clone(), v.clone()),
                KvOp::Cas(c) => KvInput::Cas(c.key.clone(), c.expected.clone(), c.new.clone()),
                // A missing key reads as "": for the model a delete writes it.
                KvOp::Delete(k) => KvInput::Put(k.clone(), String::new()),
            };
            let output = match &op.completion {
                Some(Completion::Ok(KvResponse::Ok(Some(value)))) => {
                    Some(KvOutput::Value(value.clone()))
                }
                Some(Completion::Ok(KvResponse::Ok(None))) => Some(match input {
                    KvInput::Cas(..) => KvOutput::Cas(true),
                    _ => KvOutput::Written,
                }),
                Some(Completion::Ok(KvResponse::CasFailed)) => Some(KvOutput::Cas(false)),
                _ => None,
            };
            Op {
                client: u64::from(op.client.0),
                input,
                ret: output.as_ref().and(op.return_order),
                output,
                call: op.call_order,
            }
        })
        .collect()
}

/// The client history is linearizable for the key-value model: for any node that speaks the
/// key-value API. A search that outgrows its budget is reported as undecided, not violated.
#[derive(Clone, Debug)]
pub struct Linearizable {
    /// The checker's budget (memo states per key).
    pub max_search: usize,
    undecided: Option<String>,
}

impl Default for Linearizable {
    fn default() -> Self {
        Linearizable::with_budget(linearizability::MAX_SEARCH)
    }
}

impl Linearizable {
    /// The invariant with this search budget.
    pub fn with_budget(max_search: usize) -> Linearizable {
        Linearizable {
            max_search,
            undecided: None,
        }
    }
}

impl<P: Node<Request = KvRequest, Response = KvResponse>> Invariant<P> for Linearizable {
    fn name(&self) -> &str {
        "Linearizable"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::History
    }
    fn check_history(&mut self, h: &History<KvRequest, KvResponse>) -> Result<(), String> {
        self.undecided = None;
        match linearizability::check_owned(&Kv, history(h), self.max_search) {
            linearizability::Verdict::Linearizable => Ok(()),
            linearizability::Verdict::NotLinearizable(v) => Err(v.to_string()),
            // Not proven either way: neither held nor violated, and said so.
            linearizability::Verdict::Undecided { key, ops_on_key } => {
                let key = key.map_or("(all keys)".to_string(), |k| format!("{k:?}"));
                self.undecided = Some(format!(
                    "the search for key {key} ({ops_on_key} operations) outgrew its budget of {} states",
                    self.max_search
                ));
                Ok(())
            }
        }
    }
    fn undecided(&self) -> Option<String> {
        self.undecided.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_answers_every_operation() {
        let mut store = BTreeMap::new();
        let put = KvOp::Put("k".into(), "a".into());
        assert_eq!(apply(&mut store, &put), KvResponse::Ok(None));
        let append = KvOp::Append("k".into(), "b".into());
        assert_eq!(apply(&mut store, &append), KvResponse::Ok(None));
        let get = KvOp::Get("k".into());
        assert_eq!(apply(&mut store, &get), KvResponse::Ok(Some("ab".into())));
        let stale = KvOp::cas("k", "a", "c");
        assert_eq!(apply(&mut store, &stale), KvResponse::CasFailed);
        let fresh = KvOp::cas("k", "ab", "c");
        assert_eq!(apply(&mut store, &fresh), KvResponse::Ok(None));
        assert_eq!(store["k"], "c");
        let missing = KvOp::cas("m", "", "x");
        assert_eq!(apply(&mut store, &missing), KvResponse::Ok(None));
        assert_eq!(store["m"], "x");
    }

    #[test]
    fn without_swaps_the_workload_draws_as_it_always_did() {
        // The draws of the workload before compare-and-set existed: key, then the roll.
        let mut before = simlab_sim::rng::stream(7, simlab_sim::rng::Stream::Workload(0));
        let mut now = simlab_sim::rng::stream(7, simlab_sim::rng::Stream::Workload(0));
        let mut workload = KvWorkload::new(4, 30, 20, 0);
        for seq in 0..500 {
            let key = format!("k{}", rng::below(&mut before, 4));
            let roll = rng::below(&mut before, 100);
            let expected = if roll < 30 {
                KvOp::Get(key)
            } else if roll < 50 {
                KvOp::Put(key, format!("3.{seq}"))
            } else {
                KvOp::Append(key, format!("[3.{seq}]"))
            };
            let got = workload.next_request(ClientId(3), seq, &mut now);
            assert_eq!(got.0, expected);
        }
    }

    #[test]
    fn swaps_expect_the_last_value_written() {
        let mut r = simlab_sim::rng::stream(1, simlab_sim::rng::Stream::Workload(0));
        let mut workload = KvWorkload::new(1, 0, 50, 50);
        let mut last = String::new();
        let (mut swaps, mut puts) = (0, 0);
        for seq in 0..200 {
            match workload.next_request(ClientId(0), seq, &mut r).0 {
                KvOp::Put(_, v) => {
                    puts += 1;
                    last = v;
                }
                KvOp::Cas(c) => {
                    swaps += 1;
                    assert_eq!(c.expected, last);
                    last = c.new.clone();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(swaps > 50 && puts > 50, "{swaps} swaps, {puts} puts");
    }

    #[test]
    fn the_checker_catches_two_swaps_that_both_won() {
        // Two clients swap the same value away, one after the other: only one can win.
        let op = |client, input, output, call, ret| Op {
            client,
            input,
            output: Some(output),
            call,
            ret: Some(ret),
        };
        let put = KvInput::Put("k".into(), "a".into());
        let swap = |new: &str| KvInput::Cas("k".into(), "a".into(), new.into());
        let mut ops = vec![
            op(0, put, KvOutput::Written, 0, 1),
            op(1, swap("b"), KvOutput::Cas(true), 2, 3),
            op(2, swap("c"), KvOutput::Cas(false), 4, 5),
        ];
        assert!(matches!(
            linearizability::check(&Kv, &ops),
            linearizability::Verdict::Linearizable
        ));
        ops[2].output = Some(KvOutput::Cas(true));
        assert!(matches!(
            linearizability::check(&Kv, &ops),
            linearizability::Verdict::NotLinearizable(_)
        ));
    }

    /// The smallest node that speaks the key-value API, for checking the invariant alone.
    #[derive(Clone, Debug)]
    struct Store;

    impl Node for Store {
        type Msg = ();
        type Timer = ();
        type Request = KvRequest;
        type Response = KvResponse;
        type Durable = ();
        fn on_start(&mut self, _: &mut simlab_sim::Ctx<'_, Self>) {}
        fn on_message(&mut self, _: NodeId, _: (), _: &mut simlab_sim::Ctx<'_, Self>) {}
        fn on_timer(&mut self, _: (), _: &mut simlab_sim::Ctx<'_, Self>) {}
        fn on_request(
            &mut self,
            _: simlab_sim::ReplyTo,
            _: KvRequest,
            _: &mut simlab_sim::Ctx<'_, Self>,
        ) {
        }
        fn classify(response: &KvResponse) -> ResponseClass {
            response.classify()
        }
    }

    /// A history whose check outgrows a small budget is undecided, not violated; the same
    /// history with a budget large enough is decided.
    #[test]
    fn a_check_past_its_budget_is_undecided_not_violated() {
        use simlab_sim::{Operation, Side, Time};
        let mut h: History<KvRequest, KvResponse> = History::default();
        let op = |client: u32, request: KvOp, completion, call, ret| Operation {
            client: ClientId(client),
            seq: 0,
            request: KvRequest(request),
            invoked: Time::ZERO,
            completed: None,
            completion,
            node: NodeId(0),
            side: Side::Healthy,
            group: None,
            attempts: 1,
            call_order: call,
            return_order: ret,
        };
        // Twelve concurrent appends with unknown outcomes, and a read that saw them all: the
        // search must try many orders of the appends.
        let mut read = String::new();
        for i in 0..12u32 {
            let append = KvOp::Append("k".into(), format!("[{i}]"));
            h.ops
                .push(op(i, append, Some(Completion::Unknown), u64::from(i), None));
            read.push_str(&format!("[{i}]"));
        }
        let get = KvOp::Get("k".into());
        h.ops.push(op(
            99,
            get,
            Some(Completion::Ok(KvResponse::Ok(Some(read)))),
            100,
            Some(101),
        ));
        let mut small = Linearizable::with_budget(10);
        let result = <Linearizable as Invariant<Store>>::check_history(&mut small, &h);
        assert_eq!(result, Ok(()), "undecided is not a violation");
        let why = <Linearizable as Invariant<Store>>::undecided(&small).expect("undecided");
        assert!(why.contains("outgrew its budget of 10 states"), "{why}");
        let mut enough = Linearizable::default();
        let result = <Linearizable as Invariant<Store>>::check_history(&mut enough, &h);
        assert_eq!(result, Ok(()));
        assert_eq!(<Linearizable as Invariant<Store>>::undecided(&enough), None);
    }

    #[test]
    fn percentages_cannot_wrap_past_the_check() {
        let w = KvWorkload::new(1, u32::MAX, 2, 0);
        let FieldError { field, rule } = w.validate().unwrap_err();
        assert_eq!(field, "get_percent");
        assert!(rule.contains("4294967297"), "{rule}");
        assert_eq!(
            KvWorkload::new(0, 0, 0, 0).validate().unwrap_err().field,
            "keys"
        );
    }
}
