//! The protected resource: a counter that workers read and write inside their critical
//! section, and the fence that can protect it.
//!
//! Without fencing the storage serves whoever asks. With fencing every access carries the
//! token of its lock grant, and the storage refuses a token lower than the highest it has seen,
//! on reads and writes alike: a read with a newer token means a newer holder has begun its
//! critical section, and an older holder's write must not land inside it. The check is the
//! learner slot [`FENCE`].

use super::{LockDurable, LockNode, Msg};
use crate::learner::Slot;
use serde::Serialize;
use simlab_sim::{Ctx, NodeId, NodeView};
use std::collections::BTreeMap;

/// What a worker does to the counter.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Access {
    /// Read it.
    Read,
    /// Set it to this value.
    Write(u64),
}

/// One access the storage served, in the order served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Served {
    /// The worker.
    pub worker: u32,
    /// The token it presented.
    pub token: u64,
    /// What it asked.
    pub access: Access,
    /// The counter before the access.
    pub before: u64,
    /// Whether the storage let it through (always, without fencing).
    pub accepted: bool,
}

/// The storage's durable state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StorageState {
    /// The counter.
    pub value: u64,
    /// The highest token seen (fencing).
    pub fence: u64,
    /// Every access served, in order (what the invariants and the report read).
    pub journal: Vec<Served>,
    /// Per worker: the last request number served and its answer, so a duplicated or retried
    /// request is answered again rather than done twice.
    pub last: BTreeMap<u32, (u64, Result<Option<u64>, u64>)>,
}

/// The fence check: whether an access with `token` may go through, given the highest token seen
/// so far in `fence` (which it updates).
pub type FenceFn = fn(fence: &mut u64, token: u64, access: Access) -> bool;

/// The storage's fence check, a slot a learner may fill (`locks.fence`).
pub static FENCE: Slot<FenceFn> = Slot::new("locks.fence", fence);

/// Refuses a token below the highest seen; anything else goes through and raises the fence.
pub fn fence(fence: &mut u64, token: u64, _access: Access) -> bool {
    if token < *fence {
        return false;
    }
    *fence = token;
    true
}

/// The storage node.
#[derive(Clone, Debug)]
pub struct Storage {
    fenced: bool,
    reads_unfenced: bool,
    check: FenceFn,
}

impl Storage {
    /// A storage that checks tokens with `check` when `fenced` (skipping reads when
    /// `reads_unfenced`, a planted bug).
    pub fn new(fenced: bool, reads_unfenced: bool, check: FenceFn) -> Storage {
        Storage {
            fenced,
            reads_unfenced,
            check,
        }
    }

    pub(super) fn on_message(&mut self, from: NodeId, msg: Msg, ctx: &mut Ctx<'_, LockNode>) {
        let Msg::Access { seq, token, access } = msg else {
            return;
        };
        let worker = from.0;
        match ctx.durable().storage.last.get(&worker) {
            Some((last, result)) if *last == seq => {
                let result = *result;
                ctx.send(from, Msg::Accessed { seq, result });
                return;
            }
            Some((last, _)) if *last > seq => return, // A stale copy of an old request.
            _ => {}
        }
        let storage = &mut ctx.durable_mut().storage;
        let before = storage.value;
        let accepted = !self.fenced
            || (self.reads_unfenced && access == Access::Read)
            || (self.check)(&mut storage.fence, token, access);
        let result = match (accepted, access) {
            (false, _) => Err(storage.fence),
            (true, Access::Read) => Ok(Some(before)),
            (true, Access::Write(value)) => {
                storage.value = value;
                Ok(None)
            }
        };
        storage.journal.push(Served {
            worker,
            token,
            access,
            before,
            accepted,
        });
        storage.last.insert(worker, (seq, result));
        if !accepted {
            let fence = storage.fence;
            ctx.note_with(|| format!("refuses {from}'s token {token}: it has seen {fence}"));
        }
        ctx.send(from, Msg::Accessed { seq, result });
    }

    pub(super) fn view(&self, durable: &LockDurable) -> NodeView {
        let storage = &durable.storage;
        let view = NodeView::new("storage").field("counter", storage.value);
        let view = if self.fenced {
            view.field("fence", storage.fence)
        } else {
            view
        };
        let last: Vec<String> = storage
            .journal
            .iter()
            .rev()
            .take(4)
            .rev()
            .map(|s| {
                let what = match s.access {
                    Access::Read => format!("r{}", s.before),
                    Access::Write(v) => format!("w{v}"),
                };
                let refused = if s.accepted { "" } else { "✗" };
                format!("n{}:{what}@{}{refused}", s.worker, s.token)
            })
            .collect();
        view.field("served", storage.journal.len())
            .field("tail", if last.is_empty() { "-".into() } else { last.join(" ") })
    }
}
