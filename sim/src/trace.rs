//! The trace: one record per step, and the rolling hash that fingerprints a run.
//!
//! Every step is hashed (see [`crate::hash`]) whatever the [`TraceMode`]; records for people
//! (the TUI, `--trace` JSON lines) are kept only in [`TraceMode::Full`], since sweeps need the
//! hash alone.

use crate::node::{ClientId, NodeId};
use crate::time::Time;
use serde::Serialize;
use std::io::{self, Write};
use std::path::Path;

/// How much of the trace to keep.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum TraceMode {
    /// Only the rolling hash (sweeps).
    #[default]
    HashOnly,
    /// A fixed-size [`CompactStep`] per step (the TUI's timeline over long runs): when, what
    /// kind, who, and the hash. Details are recomputed by replaying the step.
    Compact,
    /// A record of every step, with notes and effects (single runs, `--trace`).
    Full,
}

/// One step in 32 bytes: enough to draw a timeline and to find a step again.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CompactStep {
    /// Virtual time in microseconds.
    pub time_us: u64,
    /// The rolling trace hash after this step.
    pub hash: u64,
    /// The node that acted ([`CompactStep::NONE`] if none).
    pub node: u32,
    /// The sender of a delivered message, or the client involved ([`CompactStep::NONE`]).
    pub peer: u32,
    /// The kind of event.
    pub kind: StepKind,
    /// Whether an invariant was first violated at this step.
    pub violation: bool,
}

impl CompactStep {
    /// "No node" in `node` and `peer`.
    pub const NONE: u32 = u32::MAX;
}

/// What kind of event a step handled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// A node started or restarted.
    Start,
    /// A message was delivered.
    Deliver,
    /// A message was lost on arrival (partition, crashed receiver).
    Drop,
    /// A timer fired.
    Timer,
    /// A client request reached a node (or was lost).
    Request,
    /// A reply reached a client.
    Reply,
    /// A client gave up waiting and retried or recorded `unknown`.
    ClientTimeout,
    /// A client began its next operation.
    ClientInvoke,
    /// A fault or repair.
    Fault,
}

impl StepKind {
    /// A short lowercase label.
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Start => "start",
            StepKind::Deliver => "deliver",
            StepKind::Drop => "drop",
            StepKind::Timer => "timer",
            StepKind::Request => "request",
            StepKind::Reply => "reply",
            StepKind::ClientTimeout => "timeout",
            StepKind::ClientInvoke => "invoke",
            StepKind::Fault => "fault",
        }
    }
}

/// One step, for people.
#[derive(Clone, Debug, Serialize)]
pub struct StepRecord {
    /// Position in the run, from 0.
    pub step: u64,
    /// Virtual time in microseconds.
    pub time_us: u64,
    /// What kind of event.
    pub kind: StepKind,
    /// The node that acted, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// The sending node of a delivered or dropped message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<NodeId>,
    /// The client involved, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientId>,
    /// One line describing the event.
    pub summary: String,
    /// The event's payload (message, timer, request, fault) as JSON.
    pub payload: serde_json::Value,
    /// What the handler did, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub effects: Vec<String>,
    /// The handler's notes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Invariants first violated at this step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<String>,
    /// The rolling trace hash after this step, as hex.
    pub hash: String,
}

impl StepRecord {
    /// The virtual time of this step.
    pub fn time(&self) -> Time {
        Time::from_micros(self.time_us)
    }
}

/// Writes records as JSON lines to `path`, all or nothing: into a temporary file beside it,
/// flushed and synced, then renamed over `path`.
pub fn write_jsonl<'a>(
    path: &Path,
    records: impl IntoIterator<Item = &'a StepRecord>,
) -> io::Result<()> {
    write_atomically(path, |out| {
        for record in records {
            serde_json::to_writer(&mut *out, record)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Creates `path` whole or not at all: `fill` writes to a temporary file in the same directory,
/// which replaces `path` only once everything was written and synced.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut out = io::BufWriter::new(std::fs::File::create(&tmp)?);
        fill(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_nothing_on_failure() {
        let dir = std::env::temp_dir().join(format!("simlab-trace-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.jsonl");
        std::fs::write(&path, "old").unwrap();
        let failed = write_atomically(&path, |out| {
            out.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "old",
            "old file untouched"
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        write_atomically(&path, |out| out.write_all(b"new")).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// What one step did, in the engine's terms; filled in as the step runs.
pub(crate) struct StepInfo {
    pub(crate) kind: StepKind,
    pub(crate) node: Option<NodeId>,
    pub(crate) from: Option<NodeId>,
    pub(crate) client: Option<ClientId>,
    pub(crate) summary: String,
    pub(crate) payload: serde_json::Value,
    pub(crate) effects: Vec<String>,
}

impl StepInfo {
    pub(crate) fn new(kind: StepKind) -> StepInfo {
        StepInfo {
            kind,
            node: None,
            from: None,
            client: None,
            summary: String::new(),
            payload: serde_json::Value::Null,
            effects: Vec::new(),
        }
    }
}

/// One-line summaries of steps and effects, for people (built only for full traces).
pub(crate) mod summary {
    use crate::faults::Fault;
    use crate::node::{ClientId, Effect, Node, NodeId};
    use std::fmt::Debug;

    /// A node starts (at boot; restarts are faults).
    pub(crate) fn start(id: NodeId) -> String {
        format!("{id} starts")
    }

    /// What became of a message that reached its delivery time.
    pub(crate) enum Fate {
        /// Handed to the recipient.
        Delivered,
        /// A partition between the two cut it while it was in flight.
        LostInFlight,
        /// The recipient was down.
        RecipientDown,
    }

    /// A message's delivery (or loss).
    pub(crate) fn message(from: NodeId, to: NodeId, msg: &dyn Debug, fate: Fate) -> String {
        match fate {
            Fate::Delivered => format!("{from} → {to}: {msg:?}"),
            Fate::LostInFlight => format!("{from} → {to} lost in flight (partition): {msg:?}"),
            Fate::RecipientDown => format!("{from} → {to} lost ({to} is down): {msg:?}"),
        }
    }

    /// A timer fires.
    pub(crate) fn timer(node: NodeId, timer: &dyn Debug) -> String {
        format!("{node} timer: {timer:?}")
    }

    /// A client request reaches a node (or finds it down).
    pub(crate) fn request(
        client: ClientId,
        to: NodeId,
        (seq, send): (u64, u32),
        request: &dyn Debug,
        down: bool,
    ) -> String {
        if down {
            format!("{client} → {to} lost ({to} is down): {request:?}")
        } else {
            format!("{client} → {to} (op {seq}, send {send}): {request:?}")
        }
    }

    /// A node's answer reaches its client.
    pub(crate) fn reply(from: NodeId, client: ClientId, seq: u64, response: &dyn Debug) -> String {
        format!("{from} → {client} (op {seq}): {response:?}")
    }

    /// A client gives up waiting for one send of an operation.
    pub(crate) fn client_timeout(client: ClientId, seq: u64, send: u32) -> String {
        format!("{client} op {seq} send {send} timed out")
    }

    /// A client starts an operation.
    pub(crate) fn invoke(client: ClientId, seq: u64, request: &dyn Debug) -> String {
        format!("{client} invokes op {seq}: {request:?}")
    }

    /// A client has nothing left to do.
    pub(crate) fn client_done(client: ClientId, ops: u64) -> String {
        format!("{client} has finished its {ops} operations")
    }

    /// A fault, as injected (with "the leader" resolved), or why it did nothing.
    pub(crate) fn fault(fault: &Fault, skipped: Option<&str>) -> String {
        match skipped {
            None => format!("fault: {fault}"),
            Some(why) => format!("fault: {fault} (skipped: {why})"),
        }
    }

    /// One line per effect of a handler, for people.
    pub(crate) fn effect<P: Node>(effect: &Effect<P>) -> String {
        match effect {
            Effect::Send { to, msg } => format!("send → {to}: {msg:?}"),
            Effect::SetTimer { id, after, timer } => {
                format!("set timer #{} in {after}: {timer:?}", id.0)
            }
            Effect::CancelTimer(id) => format!("cancel timer #{}", id.0),
            Effect::Reply { to, response } => {
                format!("reply → {} (op {}): {response:?}", to.client, to.seq)
            }
            Effect::DurableWrite => "durable write".into(),
        }
    }
}
