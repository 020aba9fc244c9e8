//! A worker: a closed loop of acquire, read, compute, check, write, release.
//!
//! Its lease is measured on its own clock from the moment it *sent* the acquire (the grant can
//! only be younger than that), which is the careful reading. What it cannot measure is the gap
//! between its last look at the clock and the moment its write reaches the storage: a pause
//! (`send_ms` is the window), a slow link or a drifting clock, and the lease ends inside it.

use super::{Access, LockAnswer, LockConfig, LockDurable, LockNode, LockOp, Msg, Timer};
use serde::Serialize;
use simlab_sim::{Ctx, NodeId, NodeView, Time};
use std::sync::Arc;

/// A grant the worker believes it holds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The grant's token.
    pub token: u64,
    /// When the lease ends, by the worker's clock.
    pub deadline: Time,
}

/// Where the worker is in its loop.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Phase {
    /// Waiting before it asks for the lock.
    Idle,
    /// Asked for the lock (request number, when sent by its clock).
    Acquiring(u64, Time),
    /// Redlock: asked every instance (the first request number, when sent by its clock).
    Gathering(u64, Time),
    /// Reading the counter.
    Reading(u64),
    /// Computing the new value.
    Working,
    /// The lease was checked; the write is about to leave.
    Sending,
    /// Writing the counter.
    Writing(u64),
    /// Giving the lock back.
    Releasing(u64),
}

/// What a worker has done since it started.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WorkerCounts {
    /// Grants received.
    pub grants: u64,
    /// Writes the storage acknowledged.
    pub writes: u64,
    /// Critical sections abandoned because the lease ran out before the write.
    pub abandoned: u64,
    /// Accesses the storage refused (fencing).
    pub refused: u64,
}

/// One worker.
#[derive(Clone, Debug)]
pub struct Worker {
    config: Arc<LockConfig>,
    phase: Phase,
    lease: Option<Lease>,
    /// The lock server it asks.
    server: NodeId,
    /// The counter it read in this critical section.
    read: u64,
    /// A renewal in flight: its request number and when it was sent.
    renewing: Option<(u64, Time)>,
    /// Redlock: per instance, the token it granted in the current round (or holds for us).
    grants: Vec<Option<u64>>,
    /// Redlock: instances that answered in the current round.
    answered: usize,
    counts: WorkerCounts,
}

impl Worker {
    /// A worker as it boots (it starts asking its first lock server).
    pub fn new(_id: NodeId, config: Arc<LockConfig>) -> Worker {
        Worker {
            config,
            phase: Phase::Idle,
            lease: None,
            server: NodeId(0),
            read: 0,
            renewing: None,
            grants: Vec::new(),
            answered: 0,
            counts: WorkerCounts::default(),
        }
    }

    /// The grant it believes it holds.
    pub fn lease(&self) -> Option<Lease> {
        self.lease
    }

    /// Where it is in its loop.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// What it has done since it started.
    pub fn counts(&self) -> WorkerCounts {
        self.counts
    }

    fn next_seq(ctx: &mut Ctx<'_, LockNode>) -> u64 {
        let seq = ctx.durable().next_seq;
        ctx.durable_mut().next_seq += 1;
        seq
    }

    fn wait(&mut self, range: (u64, u64), ctx: &mut Ctx<'_, LockNode>) {
        self.phase = Phase::Idle;
        let after = ctx.random_between(range.0, range.1);
        ctx.set_timer(Time::from_millis(after), Timer::Acquire);
    }

    fn request(&mut self, to: NodeId, msg: impl FnOnce(u64) -> Msg, ctx: &mut Ctx<'_, LockNode>) -> u64 {
        let seq = Self::next_seq(ctx);
        ctx.send(to, msg(seq));
        let timeout = Time::from_millis(self.config.request_timeout_ms);
        ctx.set_timer(timeout, Timer::Timeout(seq));
        seq
    }

    fn acquire(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        if self.config.design.majority_of_instances() {
            self.gather(ctx);
            return;
        }
        let sent = ctx.now();
        let seq = self.request(self.server, |seq| Msg::Lock { seq, op: LockOp::Acquire }, ctx);
        self.phase = Phase::Acquiring(seq, sent);
    }

    fn access(&mut self, access: Access, ctx: &mut Ctx<'_, LockNode>) -> u64 {
        let token = self.lease.map_or(0, |l| l.token);
        let storage = self.config.storage();
        self.request(storage, |seq| Msg::Access { seq, token, access }, ctx)
    }

    /// Redlock: ask every instance at once; request `first + i` goes to instance `i`.
    fn gather(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let sent = ctx.now();
        let n = self.config.service_count();
        self.grants = vec![None; n as usize];
        self.answered = 0;
        let first = ctx.durable().next_seq;
        for i in 0..n {
            let seq = Self::next_seq(ctx);
            ctx.send(NodeId(i), Msg::Lock { seq, op: LockOp::Acquire });
        }
        let timeout = Time::from_millis(self.config.request_timeout_ms);
        ctx.set_timer(timeout, Timer::Timeout(first));
        self.phase = Phase::Gathering(first, sent);
    }

    /// Redlock: an instance's answer in the current round; decides once all have answered.
    fn gathered(&mut self, seq: u64, answer: LockAnswer, ctx: &mut Ctx<'_, LockNode>) {
        let Phase::Gathering(first, _) = self.phase else {
            return;
        };
        let Some(i) = seq.checked_sub(first).filter(|&i| i < self.grants.len() as u64) else {
            return;
        };
        if let LockAnswer::Granted(token) = answer {
            self.grants[i as usize] = Some(token);
        }
        self.answered += 1;
        if self.answered == self.grants.len() {
            self.decide_gathering(ctx);
        }
    }

    /// Redlock: with a majority of grants and time left, hold the lock; otherwise give back
    /// what was granted and try again later.
    fn decide_gathering(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        let Phase::Gathering(_, sent) = self.phase else {
            return;
        };
        let granted = self.grants.iter().flatten().count();
        let majority = self.grants.len() / 2 + 1;
        let ttl = Time::from_millis(self.config.ttl_ms);
        // The drift allowance of the Redlock description: 1% of the time to live plus 2 ms.
        let drift = Time::from_micros(self.config.ttl_ms * 10 + 2_000);
        let deadline = sent + ttl;
        let valid_until = Time::from_micros(deadline.as_micros().saturating_sub(drift.as_micros()));
        if granted >= majority && ctx.now() < valid_until {
            let token = self.grants.iter().flatten().copied().max().unwrap_or(0);
            self.lease = Some(Lease {
                token,
                deadline: valid_until,
            });
            self.counts.grants += 1;
            ctx.note_with(|| format!(
                "holds the lock: {granted} of {} instances, lease until {valid_until} by its clock",
                self.grants.len()
            ));
            let seq = self.access(Access::Read, ctx);
            self.phase = Phase::Reading(seq);
        } else {
            ctx.note_with(|| format!(
                "only {granted} of {} instances granted in time: gives them back",
                self.grants.len()
            ));
            self.release_instances(ctx);
            self.wait(self.config.retry_ms, ctx);
        }
    }

    /// Redlock: release at every instance that granted this round (without waiting).
    fn release_instances(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        for (i, token) in std::mem::take(&mut self.grants).into_iter().enumerate() {
            if let Some(token) = token {
                let seq = Self::next_seq(ctx);
                let op = LockOp::Release(token);
                ctx.send(NodeId(i as u32), Msg::Lock { seq, op });
            }
        }
        self.lease = None;
    }

    fn release(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        if self.config.design.majority_of_instances() {
            self.release_instances(ctx);
            self.wait(self.config.think_ms, ctx);
            return;
        }
        let Some(lease) = self.lease else {
            self.wait(self.config.think_ms, ctx);
            return;
        };
        let op = LockOp::Release(lease.token);
        let seq = self.request(self.server, |seq| Msg::Lock { seq, op }, ctx);
        self.phase = Phase::Releasing(seq);
    }

    fn next_server(&mut self) {
        self.server = NodeId((self.server.0 + 1) % self.config.service_count());
    }

    pub(super) fn on_start(&mut self, ctx: &mut Ctx<'_, LockNode>) {
        self.wait(self.config.think_ms, ctx);
    }

    pub(super) fn on_timer(&mut self, timer: Timer, ctx: &mut Ctx<'_, LockNode>) {
        match timer {
            Timer::Acquire if self.phase == Phase::Idle => self.acquire(ctx),
            Timer::Timeout(seq) => self.on_timeout(seq, ctx),
            Timer::WorkDone if self.phase == Phase::Working => {
                let now = ctx.now();
                if let Some(lease) = self.lease
                    && self.config.check_lease
                    && now >= lease.deadline
                {
                    ctx.note_with(|| format!(
                        "lease {} ran out at {} by its clock: abandons the write",
                        lease.token, lease.deadline
                    ));
                    self.counts.abandoned += 1;
                    // Unlocks anyway, as a `finally` block would: harmless when the service
                    // checks the owner, the next holder's loss when it does not.
                    self.release(ctx);
                    return;
                }
                self.phase = Phase::Sending;
                let (lo, hi) = self.config.send_ms;
                let after = ctx.random_between(lo, hi);
                ctx.set_timer(Time::from_millis(after), Timer::Send);
            }
            Timer::Send if self.phase == Phase::Sending => {
                let value = self.read + 1;
                let seq = self.access(Access::Write(value), ctx);
                self.phase = Phase::Writing(seq);
            }
            Timer::Renew(token) => {
                let holding = self.lease.is_some_and(|l| l.token == token);
                if holding && matches!(self.phase, Phase::Reading(_) | Phase::Working | Phase::Sending | Phase::Writing(_)) {
                    let sent = ctx.now();
                    let op = LockOp::Renew(token);
                    let seq = self.request(self.server, |seq| Msg::Lock { seq, op }, ctx);
                    self.renewing = Some((seq, sent));
                    ctx.set_timer(self.renew_interval(), Timer::Renew(token));
                }
            }
            _ => {}
        }
    }

    fn renew_interval(&self) -> Time {
        Time::from_micros((self.config.ttl_ms * 1_000 / 3).max(1))
    }

    fn on_timeout(&mut self, seq: u64, ctx: &mut Ctx<'_, LockNode>) {
        match self.phase {
            Phase::Gathering(first, _) if first == seq => self.decide_gathering(ctx),
            Phase::Acquiring(s, _) if s == seq => {
                // The server may be down or cut off: ask the next one.
                self.next_server();
                self.wait(self.config.retry_ms, ctx);
            }
            Phase::Reading(s) | Phase::Writing(s) if s == seq => {
                ctx.note("the storage did not answer: gives up the critical section");
                self.release(ctx);
            }
            Phase::Releasing(s) if s == seq => {
                self.lease = None;
                self.next_server();
                self.wait(self.config.think_ms, ctx);
            }
            _ => {}
        }
    }

    pub(super) fn on_message(&mut self, msg: Msg, ctx: &mut Ctx<'_, LockNode>) {
        match msg {
            Msg::Locked { seq, answer } => self.on_locked(seq, answer, ctx),
            Msg::Accessed { seq, result } => self.on_accessed(seq, result, ctx),
            _ => {}
        }
    }

    fn on_locked(&mut self, seq: u64, answer: LockAnswer, ctx: &mut Ctx<'_, LockNode>) {
        if let Some((renewal, sent)) = self.renewing
            && renewal == seq
        {
            self.renewing = None;
            match answer {
                LockAnswer::Renewed(token) => {
                    if let Some(lease) = self.lease.as_mut().filter(|l| l.token == token) {
                        lease.deadline = sent + Time::from_millis(self.config.ttl_ms);
                    }
                }
                LockAnswer::NotHolder => ctx.note("renewal refused: the lease is gone"),
                _ => {}
            }
            return;
        }
        if matches!(self.phase, Phase::Gathering(..)) {
            self.gathered(seq, answer, ctx);
            return;
        }
        match (self.phase, answer) {
            (Phase::Acquiring(s, sent), LockAnswer::Granted(token)) if s == seq => {
                let deadline = sent + Time::from_millis(self.config.ttl_ms);
                self.lease = Some(Lease { token, deadline });
                self.counts.grants += 1;
                ctx.note_with(|| format!("holds the lock: token {token}, lease until {deadline} by its clock"));
                if self.config.renew {
                    ctx.set_timer(self.renew_interval(), Timer::Renew(token));
                }
                let seq = self.access(Access::Read, ctx);
                self.phase = Phase::Reading(seq);
            }
            (Phase::Acquiring(s, _), LockAnswer::Redirect(hint)) if s == seq => match hint {
                Some(leader) if leader != self.server => {
                    self.server = leader;
                    self.acquire(ctx);
                }
                _ => {
                    self.next_server();
                    self.wait(self.config.retry_ms, ctx);
                }
            },
            (Phase::Acquiring(s, _), _) if s == seq => self.wait(self.config.retry_ms, ctx),
            (Phase::Releasing(s), answer) if s == seq => {
                if let LockAnswer::Redirect(hint) = answer {
                    // The release did not happen here; the lease will end on its own.
                    match hint {
                        Some(leader) => self.server = leader,
                        None => self.next_server(),
                    }
                }
                self.lease = None;
                self.wait(self.config.think_ms, ctx);
            }
            _ => {}
        }
    }

    fn on_accessed(&mut self, seq: u64, result: Result<Option<u64>, u64>, ctx: &mut Ctx<'_, LockNode>) {
        match (self.phase, result) {
            (Phase::Reading(s), Ok(value)) if s == seq => {
                self.read = value.unwrap_or(0);
                self.phase = Phase::Working;
                let (lo, hi) = self.config.work_ms;
                let after = ctx.random_between(lo, hi);
                ctx.set_timer(Time::from_millis(after), Timer::WorkDone);
            }
            (Phase::Writing(s), Ok(_)) if s == seq => {
                self.counts.writes += 1;
                self.release(ctx);
            }
            (Phase::Reading(s) | Phase::Writing(s), Err(fence)) if s == seq => {
                ctx.note_with(|| format!("the storage refused its token (it has seen {fence})"));
                self.counts.refused += 1;
                self.release(ctx);
            }
            _ => {}
        }
    }

    pub(super) fn view(&self, durable: &LockDurable) -> NodeView {
        let role = if self.lease.is_some() { "holder" } else { "worker" };
        let phase = match self.phase {
            Phase::Idle => "idle".to_string(),
            Phase::Acquiring(_, _) => format!("acquiring from {}", self.server),
            Phase::Gathering(_, _) => format!(
                "acquiring: {} of {} granted",
                self.grants.iter().flatten().count(),
                self.grants.len()
            ),
            Phase::Reading(_) => "reading".into(),
            Phase::Working => format!("computing {}+1", self.read),
            Phase::Sending => format!("sending {}", self.read + 1),
            Phase::Writing(_) => format!("writing {}", self.read + 1),
            Phase::Releasing(_) => "releasing".into(),
        };
        let lease = self.lease.map_or("-".to_string(), |l| {
            format!("token {} until {}", l.token, l.deadline)
        });
        let c = self.counts;
        NodeView::new(role)
            .field("phase", phase)
            .field("lease", lease)
            .field("grants", c.grants)
            .field("writes", c.writes)
            .field("abandoned", c.abandoned)
            .field("refused", c.refused)
            .field("requests", durable.next_seq)
    }
}
