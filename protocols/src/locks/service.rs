//! The lock service: one server, or Raft servers replicating the lock record.
//!
//! Both run the same rule, [`decide`]: a lock is free when nobody holds it or the holder's lease
//! has ended *by this server's clock*; a grant's token is one above the last. The single server
//! applies the rule to the record it keeps on disk. A replicated server that leads reads the
//! record through the log, applies the rule, and writes the result with a compare-and-set
//! through the log, so two servers that both believe they lead cannot both grant: the second
//! swap finds the record changed and fails.

use super::{LockAnswer, LockBug, LockConfig, LockDurable, LockNode, LockOp, Msg, Probe, Timer};
use crate::kv::{KvOp, KvRequest, KvResponse};
use crate::raft::Raft;
use serde::Serialize;
use simlab_sim::{ClientId, Ctx, Embedding, Node, NodeId, NodeView, ReplyTo, Time};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

/// The lock record's key in the replicated store.
pub const LOCK_KEY: &str = "lock";

/// Raft sessions of worker requests are numbered from here, apart from the engine's clients.
const WORKER_SESSIONS: u32 = 1 << 31;

/// The lock: who holds it, the last token granted, and when the lease ends (by the clock of
/// the server that granted or renewed it).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LockRecord {
    /// The worker holding it, if anyone does.
    pub holder: Option<u32>,
    /// The last token granted (tokens start at 1).
    pub token: u64,
    /// When the lease ends, in microseconds of the granting server's clock.
    pub expires_us: u64,
}

impl LockRecord {
    /// The holder whose lease has not ended at `now`.
    pub fn holder_at(&self, now: Time) -> Option<u32> {
        self.holder.filter(|_| now.as_micros() < self.expires_us)
    }

    /// The record as the replicated store keeps it: `holder token expires_us`.
    pub fn encode(&self) -> String {
        match self.holder {
            Some(h) => format!("{h} {} {}", self.token, self.expires_us),
            None => format!("- {} {}", self.token, self.expires_us),
        }
    }

    /// Reads a stored record; a missing key (`""`) is a lock never granted.
    ///
    /// # Panics
    /// If the text was not written by [`LockRecord::encode`] (only the lock service writes it).
    pub fn decode(text: &str) -> LockRecord {
        if text.is_empty() {
            return LockRecord::default();
        }
        let mut parts = text.split(' ');
        let mut next = || parts.next().expect("a lock record has three fields");
        let holder = match next() {
            "-" => None,
            h => Some(h.parse().expect("a holder is a node number")),
        };
        let token = next().parse().expect("a token is a number");
        let expires_us = next().parse().expect("an expiry is a number");
        LockRecord {
            holder,
            token,
            expires_us,
        }
    }
}

impl fmt::Display for LockRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.holder {
            Some(h) if self.expires_us == u64::MAX => {
                write!(f, "n{h} token {} (no expiry)", self.token)
            }
            Some(h) => write!(
                f,
                "n{h} token {} until {}",
                self.token,
                Time::from_micros(self.expires_us)
            ),
            None => write!(f, "free (last token {})", self.token),
        }
    }
}

/// The lock rule: what `op` from `worker` does to `record` at this server's time `now`. Returns
/// the new record (`None`: unchanged) and the answer.
pub fn decide(
    record: &LockRecord,
    worker: u32,
    op: LockOp,
    now: Time,
    config: &LockConfig,
) -> (Option<LockRecord>, LockAnswer) {
    let expires_us = if config.has(LockBug::NoTtl) {
        u64::MAX
    } else {
        (now + Time::from_millis(config.ttl_ms)).as_micros()
    };
    let live = record.holder_at(now);
    let extended = |token| LockRecord {
        holder: Some(worker),
        token,
        expires_us,
    };
    match op {
        LockOp::Acquire => match live {
            None => {
                let token = record.token + 1;
                (Some(extended(token)), LockAnswer::Granted(token))
            }
            // A retried acquire whose answer was lost: the same grant again.
            Some(h) if h == worker => (
                Some(extended(record.token)),
                LockAnswer::Granted(record.token),
            ),
            Some(h) => (None, LockAnswer::Held(Some(h))),
        },
        LockOp::Renew(token) if live == Some(worker) && record.token == token => {
            (Some(extended(token)), LockAnswer::Renewed(token))
        }
        LockOp::Renew(_) => (None, LockAnswer::NotHolder),
        LockOp::Release(token) => {
            let owner = record.holder == Some(worker) && record.token == token;
            if owner || (config.has(LockBug::UnlockWithoutOwnerCheck) && record.holder.is_some()) {
                let free = LockRecord {
                    holder: None,
                    ..record.clone()
                };
                (Some(free), LockAnswer::Released)
            } else {
                (None, LockAnswer::NotHolder)
            }
        }
    }
}

/// A worker request on its way through the log.
#[derive(Clone, Debug)]
struct Pending {
    worker: NodeId,
    seq: u64,
    op: LockOp,
    /// Set once the record was read: the answer the swap makes true.
    answer: Option<LockAnswer>,
}

/// One lock server.
#[derive(Clone, Debug)]
pub struct LockServer {
    config: Arc<LockConfig>,
    /// The replicated designs' Raft server.
    raft: Option<Raft>,
    /// Worker requests in flight through the log, by their Raft session and number.
    pending: BTreeMap<(u32, u64), Pending>,
    /// Grants this server made since it started.
    grants: u64,
    /// [`LockBug::VolatileRecord`]: the record kept in memory only.
    volatile: Option<LockRecord>,
}

impl LockServer {
    /// A server as it boots.
    pub fn new(id: NodeId, config: Arc<LockConfig>) -> LockServer {
        let raft = config.design.replicated().then(|| {
            Raft::new(
                id,
                config.service_count(),
                Arc::new(config.raft.clone()),
            )
        });
        let volatile = config
            .has(LockBug::VolatileRecord)
            .then(LockRecord::default);
        LockServer {
            config,
            raft,
            pending: BTreeMap::new(),
            grants: 0,
            volatile,
        }
    }

    /// Its Raft server, when the service is replicated.
    pub fn raft(&self) -> Option<&Raft> {
        self.raft.as_ref()
    }

    /// The lock record as this server knows it: its own (single instance) or its state
    /// machine's (replicated; possibly behind the leader's).
    pub fn record(&self, durable: &LockDurable) -> LockRecord {
        match (&self.raft, &self.volatile) {
            (Some(raft), _) => {
                LockRecord::decode(raft.kv().get(LOCK_KEY).map_or("", String::as_str))
            }
            (None, Some(memory)) => memory.clone(),
            (None, None) => durable.record.clone(),
        }
    }

    fn embedding(&self) -> Embedding<LockNode, Raft> {
        Embedding {
            members: self.config.service_count(),
            msg: Msg::Raft,
            timer: Timer::Raft,
            durable: |d| &mut d.raft,
        }
    }

    /// Runs a handler of the embedded Raft server and serves what it answered.
    fn with_raft(
        &mut self,
        ctx: &mut Ctx<'_, LockNode>,
        handler: impl FnOnce(&mut Raft, &mut Ctx<'_, Raft>),
    ) {
        let embedding = self.embedding();
        let raft = self.raft.as_mut().expect("replicated designs run Raft");
        let ((), replies) = ctx.embed(&embedding, |sub| handler(raft, sub));
        self.serve(replies.into(), ctx);
    }

    pub(super) fn on_start(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        if self.raft.is_some() {
            self.with_raft(ctx, |raft, sub| raft.on_start(sub));
        } else if ctx.durable().record.token > 0 {
            let record = ctx.durable().record.clone();
            ctx.note_with(|| format!("recovers the lock record: {record}"));
        }
    }

    pub(super) fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, LockNode>) {
        if let Timer::Raft(timer) = timer {
            self.with_raft(ctx, |raft, sub| raft.on_timer(timer, sub));
        }
    }

    pub(super) fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, LockNode>) {
        match msg {
            Msg::Raft(msg) if self.raft.is_some() => {
                self.with_raft(ctx, |raft, sub| raft.on_message(from, msg, sub));
            }
            Msg::Lock { seq, op } => self.on_lock(from, seq, op, ctx),
            _ => {}
        }
    }

    fn on_lock(&mut self, worker: NodeId, seq: u64, op: LockOp, ctx: &mut Ctx<'_, LockNode>) {
        if self.raft.is_none() {
            let now = ctx.now();
            let record = self.record(ctx.durable());
            let (new, answer) = decide(&record, worker.0, op, now, &self.config);
            match (new, &mut self.volatile) {
                (Some(new), Some(memory)) => *memory = new,
                (Some(new), None) => ctx.durable_mut().record = new,
                (None, _) => {}
            }
            self.answer(worker, seq, answer, ctx);
            return;
        }
        let raft = self.raft.as_ref().expect("checked above");
        if !raft.is_leader() {
            let hint = raft.leader();
            self.answer(worker, seq, LockAnswer::Redirect(hint), ctx);
            return;
        }
        // Read the record through the log (a linearizable read), then swap.
        let session = WORKER_SESSIONS + worker.0;
        self.pending.insert(
            (session, 2 * seq),
            Pending {
                worker,
                seq,
                op,
                answer: None,
            },
        );
        self.submit(session, 2 * seq, KvOp::Get(LOCK_KEY.into()), ctx);
    }

    fn submit(&mut self, session: u32, seq: u64, op: KvOp, ctx: &mut Ctx<'_, LockNode>) {
        let to = ReplyTo {
            client: ClientId(session),
            seq,
        };
        self.with_raft(ctx, |raft, sub| raft.on_request(to, KvRequest(op), sub));
    }

    /// Serves Raft's answers: to engine clients' probes, and to the steps of worker requests.
    fn serve(
        &mut self,
        mut replies: VecDeque<(ReplyTo, KvResponse)>,
        ctx: &mut Ctx<'_, LockNode>,
    ) {
        while let Some((to, response)) = replies.pop_front() {
            if to.client.0 < WORKER_SESSIONS {
                let probe = match response {
                    KvResponse::Ok(value) => {
                        let record = LockRecord::decode(value.as_deref().unwrap_or(""));
                        Probe::Holder {
                            holder: record.holder_at(ctx.now()),
                            token: record.token,
                        }
                    }
                    KvResponse::NotLeader(hint) => Probe::Redirect(hint),
                    KvResponse::CasFailed | KvResponse::Siblings(_) => continue,
                };
                ctx.reply(to, probe);
                continue;
            }
            let Some(pending) = self.pending.remove(&(to.client.0, to.seq)) else {
                continue;
            };
            let (worker, seq) = (pending.worker, pending.seq);
            match (response, pending.answer) {
                (KvResponse::NotLeader(hint), _) => {
                    self.answer(worker, seq, LockAnswer::Redirect(hint), ctx);
                }
                (KvResponse::Ok(Some(value)), None) => {
                    let record = LockRecord::decode(&value);
                    let (new, answer) =
                        decide(&record, worker.0, pending.op, ctx.now(), &self.config);
                    match new {
                        Some(new) if new != record => {
                            let swap = KvOp::cas(LOCK_KEY, value, new.encode());
                            self.pending.insert(
                                (to.client.0, to.seq + 1),
                                Pending {
                                    answer: Some(answer),
                                    ..pending
                                },
                            );
                            let embedding = self.embedding();
                            let raft = self.raft.as_mut().expect("replicated");
                            let swap_to = ReplyTo {
                                client: to.client,
                                seq: to.seq + 1,
                            };
                            let ((), more) = ctx.embed(&embedding, |sub| {
                                raft.on_request(swap_to, KvRequest(swap), sub);
                            });
                            replies.extend(more);
                        }
                        _ => self.answer(worker, seq, answer, ctx),
                    }
                }
                (KvResponse::Ok(_), Some(answer)) => self.answer(worker, seq, answer, ctx),
                (KvResponse::CasFailed | KvResponse::Siblings(_), _)
                | (KvResponse::Ok(None), None) => {
                    self.answer(worker, seq, LockAnswer::Contended, ctx);
                }
            }
        }
    }

    fn answer(&mut self, worker: NodeId, seq: u64, answer: LockAnswer, ctx: &mut Ctx<'_, LockNode>) {
        if let LockAnswer::Granted(token) = answer {
            self.grants += 1;
            ctx.note_with(|| format!("grants the lock to {worker}: token {token}"));
        }
        ctx.send(worker, Msg::Locked { seq, answer });
    }

    pub(super) fn on_probe(&mut self, reply_to: ReplyTo, ctx: &mut Ctx<'_, LockNode>) {
        if self.raft.is_none() {
            let record = &self.record(ctx.durable());
            let probe = Probe::Holder {
                holder: record.holder_at(ctx.now()),
                token: record.token,
            };
            ctx.reply(reply_to, probe);
            return;
        }
        let op = KvOp::Get(LOCK_KEY.into());
        self.with_raft(ctx, |raft, sub| raft.on_request(reply_to, KvRequest(op), sub));
    }

    pub(super) fn view(&self, durable: &LockDurable) -> NodeView {
        let record = self.record(durable);
        match &self.raft {
            None => NodeView::new("lock server")
                .field("lock", &record)
                .field("grants", self.grants),
            Some(raft) => {
                let inner = raft.view(&durable.raft);
                let mut view = NodeView::new(format!("lock {}", inner.role))
                    .field("lock", &record)
                    .field("grants", self.grants);
                view.fields.extend(inner.fields);
                view
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Time {
        Time::from_millis(ms)
    }

    #[test]
    fn the_lock_rule_grants_renews_and_releases() {
        let config = LockConfig::default(); // 200 ms leases
        let free = LockRecord::default();
        let (held, answer) = decide(&free, 5, LockOp::Acquire, at(10), &config);
        let held = held.unwrap();
        assert_eq!(answer, LockAnswer::Granted(1));
        assert_eq!(held.holder_at(at(209)), Some(5));
        assert_eq!(held.holder_at(at(210)), None, "the lease ends after its time to live");
        // Another worker is refused while the lease lasts, and granted the next token after.
        assert_eq!(decide(&held, 6, LockOp::Acquire, at(100), &config).1, LockAnswer::Held(Some(5)));
        let (next, answer) = decide(&held, 6, LockOp::Acquire, at(210), &config);
        assert_eq!(answer, LockAnswer::Granted(2));
        // A retried acquire by the holder gets the same grant; a renewal extends it.
        assert_eq!(decide(&held, 5, LockOp::Acquire, at(50), &config).1, LockAnswer::Granted(1));
        let (renewed, answer) = decide(&held, 5, LockOp::Renew(1), at(150), &config);
        assert_eq!(answer, LockAnswer::Renewed(1));
        assert_eq!(renewed.unwrap().holder_at(at(340)), Some(5));
        assert_eq!(decide(&held, 5, LockOp::Renew(1), at(300), &config).1, LockAnswer::NotHolder);
        // Only the holder of this grant releases it; the token counter survives a release.
        let next = next.unwrap();
        assert_eq!(decide(&next, 5, LockOp::Release(1), at(220), &config).1, LockAnswer::NotHolder);
        let (released, answer) = decide(&next, 6, LockOp::Release(2), at(220), &config);
        assert_eq!(answer, LockAnswer::Released);
        assert_eq!(released.as_ref().unwrap().holder, None);
        assert_eq!(released.unwrap().token, 2);
    }

    #[test]
    fn the_planted_bugs_change_the_rule() {
        let config = LockConfig {
            bugs: vec![LockBug::NoTtl, LockBug::UnlockWithoutOwnerCheck],
            ..LockConfig::default()
        };
        let (held, _) = decide(&LockRecord::default(), 5, LockOp::Acquire, at(0), &config);
        let held = held.unwrap();
        assert_eq!(held.holder_at(at(1_000_000_000)), Some(5), "no time to live");
        let (gone, answer) = decide(&held, 7, LockOp::Release(99), at(5), &config);
        assert_eq!(answer, LockAnswer::Released, "anyone may delete the lock");
        assert_eq!(gone.unwrap().holder, None);
    }

    #[test]
    fn a_record_reads_back_as_written() {
        for record in [
            LockRecord::default(),
            LockRecord {
                holder: Some(4),
                token: 17,
                expires_us: u64::MAX,
            },
            LockRecord {
                holder: None,
                token: 3,
                expires_us: 250_000,
            },
        ] {
            assert_eq!(LockRecord::decode(&record.encode()), record);
        }
        assert_eq!(LockRecord::decode(""), LockRecord::default());
    }
}
