//! The trace: one record per step, and the rolling hash that fingerprints a run.
//!
//! Every step is hashed (see [`crate::hash`]) whatever the [`TraceMode`]; records for people
//! (the TUI, `--trace` JSON lines) are kept only in [`TraceMode::Full`], since sweeps need the
//! hash alone.

use crate::network::DropReason;
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
    /// kind, and who. Details are recomputed by replaying the step.
    Compact,
    /// A record of every step, with notes and effects (single runs, `--trace`).
    Full,
}

/// One step of the compact trace: enough to draw a timeline and to find a step again.
///
/// The engine keeps each step in one 64-bit word (see [`CompactTrace`]) and gives these back
/// when asked. Node and client numbers fit in 16 bits (the configuration limits them to
/// `SimConfig::MAX_NODES` and `ClientConfig::MAX_CLIENTS`, which `config` checks against
/// [`CompactStep::NONE`]). There is no per-step hash: replaying a step with
/// [`TraceMode::Full`] gives its record, hash included.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CompactStep {
    /// Virtual time in microseconds.
    pub time_us: u64,
    /// The node that acted ([`CompactStep::NONE`] if none).
    pub node: u16,
    /// The sender of a delivered message, or the client involved ([`CompactStep::NONE`]).
    pub peer: u16,
    /// The kind of event.
    pub kind: StepKind,
    /// Whether an invariant was first violated at this step.
    pub violation: bool,
}

impl CompactStep {
    /// "No node" in `node` and `peer`.
    pub const NONE: u16 = u16::MAX;
}

/// The compact trace as the engine keeps it: eight bytes a step.
///
/// A long run keeps a million steps, and writing them to fresh memory is most of what this
/// trace costs the engine, so each step is one word. From the low bits: the node (16), the
/// peer (16), the kind (4), whether a violation was first seen (1), and the time since the
/// previous step (27 bits, up to 134 s). A longer pause is written first as a gap word: kind
/// 15, and the other 60 bits hold the time that passed.
#[derive(Clone, Debug, Default)]
pub(crate) struct CompactTrace {
    words: Vec<u64>,
    /// The time the first word counts from.
    base_us: u64,
    /// The time of the last step written.
    last_us: u64,
}

impl CompactTrace {
    const DELTA_BITS: u32 = 27;
    const GAP: u64 = 15;
    const MAX_GAP: u64 = (1 << 60) - 1;

    /// Appends a step, which is no earlier than the last one.
    #[inline]
    pub(crate) fn push(&mut self, step: CompactStep) {
        let mut delta = step.time_us - self.last_us;
        while delta >> Self::DELTA_BITS != 0 {
            let gap = delta.min(Self::MAX_GAP);
            self.words
                .push(((gap >> 32) << 36) | (Self::GAP << 32) | (gap & 0xFFFF_FFFF));
            delta -= gap;
        }
        self.words.push(
            (delta << 37)
                | (u64::from(step.violation) << 36)
                | ((step.kind as u64) << 32)
                | (u64::from(step.peer) << 16)
                | u64::from(step.node),
        );
        self.last_us = step.time_us;
    }

    /// The steps written so far.
    pub(crate) fn steps(&self) -> Vec<CompactStep> {
        let mut clock = self.base_us;
        let mut out = Vec::with_capacity(self.words.len());
        for &word in &self.words {
            let kind = (word >> 32) & 0xF;
            if kind == Self::GAP {
                clock += ((word >> 36) << 32) | (word & 0xFFFF_FFFF);
                continue;
            }
            clock += word >> 37;
            out.push(CompactStep {
                time_us: clock,
                node: word as u16,
                peer: (word >> 16) as u16,
                kind: StepKind::ALL[kind as usize],
                violation: (word >> 36) & 1 == 1,
            });
        }
        out
    }

    /// Takes the steps written so far, keeping the memory for the next ones.
    pub(crate) fn drain(&mut self) -> Vec<CompactStep> {
        let steps = self.steps();
        self.words.clear();
        self.base_us = self.last_us;
        steps
    }

    /// Bytes allocated.
    pub(crate) fn bytes(&self) -> usize {
        self.words.capacity() * std::mem::size_of::<u64>()
    }
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

// Every kind fits in the compact trace's four bits, with 15 left for gaps.
const _: () = assert!(StepKind::ALL.len() < CompactTrace::GAP as usize);

impl StepKind {
    /// Every kind, in the order of their numbers.
    pub const ALL: [StepKind; 9] = [
        StepKind::Start,
        StepKind::Deliver,
        StepKind::Drop,
        StepKind::Timer,
        StepKind::Request,
        StepKind::Reply,
        StepKind::ClientTimeout,
        StepKind::ClientInvoke,
        StepKind::Fault,
    ];

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
    /// For a delivered or dropped message, a request reaching a node or a reply reaching a
    /// client: the step that sent it. A message's identity is its sending step and recipient
    /// (and [`StepRecord::duplicate`] for the network's second copy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_step: Option<u64>,
    /// When that was, in microseconds of virtual time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_us: Option<u64>,
    /// Whether this is the network's duplicate of a message delivered (or dropped) on its own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Why the message, request or reply of this step was lost instead of handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<DropReason>,
    /// The recipients of the messages this step sent that the network took (each arrives, or
    /// is dropped, at a later step whose `sent_step` is this one).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sent_to: Vec<NodeId>,
    /// Messages this step sent that the network lost at once (recorded here, on the sending
    /// step, since a message that never travels makes no step of its own).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost_at_send: Vec<LostSend>,
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

/// A message the network lost as it was sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LostSend {
    /// Its recipient.
    pub to: NodeId,
    /// Why it was lost.
    pub reason: DropReason,
    /// The message, as the trace prints messages.
    pub message: String,
}

impl StepRecord {
    /// The virtual time of this step.
    pub fn time(&self) -> Time {
        Time::from_micros(self.time_us)
    }
}

/// Writes one record as a JSON line.
pub fn write_record(out: &mut impl Write, record: &StepRecord) -> io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

/// Creates `path` whole or not at all (see [`OutputFile`]): `fill` writes, and the file
/// appears only if it succeeds.
pub fn write_atomically(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<std::fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    let mut out = OutputFile::create(path)?;
    fill(out.writer())?;
    out.commit()
}

/// A file being written, whole or not at all.
///
/// - A regular file (or a new one) is written to a temporary file in the same directory, which
///   replaces it only at [`OutputFile::commit`]: a failure or a full disk leaves the old file
///   as it was, and dropping an uncommitted output removes the temporary file.
/// - A special file (a terminal, a pipe, `/dev/stdout`, a device) is written directly, as a
///   stream: it cannot be replaced, and must not be (`/dev/stdout` replaced by a regular file
///   would break the machine).
/// - A symbolic link is followed: the file it points to is the one written.
///
/// The directory is checked when the output is created, so a run that cannot save its output
/// fails before it starts rather than after.
pub struct OutputFile {
    writer: io::BufWriter<std::fs::File>,
    /// The temporary file and the target it replaces; `None` when written directly.
    rename: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl OutputFile {
    /// Opens `path` for writing.
    pub fn create(path: &Path) -> io::Result<OutputFile> {
        // Symbolic links are followed deliberately: `metadata` looks through them.
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a directory, not a file",
                ));
            }
            Ok(meta) if !meta.is_file() => {
                let file = std::fs::OpenOptions::new().write(true).open(path)?;
                return Ok(OutputFile {
                    writer: io::BufWriter::new(file),
                    rename: None,
                });
            }
            _ => {}
        }
        // A regular file is replaced where it really is, so a link to it stays a link.
        let target = match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(path) {
                Ok(real) => real,
                Err(_) => {
                    // A dangling link: create the file it names.
                    let link = std::fs::read_link(path)?;
                    path.parent().map_or(link.clone(), |dir| dir.join(&link))
                }
            },
            _ => path.to_path_buf(),
        };
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
        let tmp = dir.join(format!(
            ".{}.tmp{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = std::fs::File::create(&tmp)?;
        Ok(OutputFile {
            writer: io::BufWriter::new(file),
            rename: Some((tmp, target)),
        })
    }

    /// Where to write.
    pub fn writer(&mut self) -> &mut io::BufWriter<std::fs::File> {
        &mut self.writer
    }

    /// Finishes: flushes, syncs a regular file and puts it in place.
    pub fn commit(mut self) -> io::Result<()> {
        self.writer.flush()?;
        if let Some((tmp, target)) = self.rename.take() {
            let result = self
                .writer
                .get_ref()
                .sync_all()
                .and_then(|()| std::fs::rename(&tmp, &target));
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            return result;
        }
        Ok(())
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some((tmp, _)) = self.rename.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
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

    #[test]
    fn outputs_follow_links_and_stream_to_special_files() {
        let dir = std::env::temp_dir().join(format!("simlab-output-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A symbolic link is followed: its target is replaced, the link stays a link.
        let real = dir.join("real.jsonl");
        std::fs::write(&real, "old").unwrap();
        let link = dir.join("link.jsonl");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&real, &link).unwrap();
            write_atomically(&link, |out| out.write_all(b"new")).unwrap();
            assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
            assert!(
                std::fs::symlink_metadata(&link)
                    .unwrap()
                    .file_type()
                    .is_symlink()
            );
        }
        // A device is written to, not replaced.
        if Path::new("/dev/null").exists() {
            write_atomically(Path::new("/dev/null"), |out| out.write_all(b"x")).unwrap();
            assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
        }
        // A directory cannot be an output; a missing directory fails at once.
        assert!(OutputFile::create(&dir).is_err());
        assert!(OutputFile::create(&dir.join("missing/x.jsonl")).is_err());
        // Dropped before commit: nothing is left behind.
        let mut out = OutputFile::create(&dir.join("dropped.jsonl")).unwrap();
        out.writer().write_all(b"half").unwrap();
        drop(out);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["link.jsonl", "real.jsonl"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// What one step did, in the engine's terms; filled in as the step runs.
pub(crate) struct StepInfo {
    pub(crate) kind: StepKind,
    pub(crate) node: Option<NodeId>,
    pub(crate) from: Option<NodeId>,
    pub(crate) client: Option<ClientId>,
}

impl StepInfo {
    pub(crate) fn new(kind: StepKind) -> StepInfo {
        StepInfo {
            kind,
            node: None,
            from: None,
            client: None,
        }
    }
}

/// What only a full trace records of a step: its words, its payload, its effects, and how its
/// message is linked to others. It lives beside [`StepInfo`], reused from step to step, so a
/// hash-only step builds and drops none of it.
#[derive(Clone, Default)]
pub(crate) struct Detail {
    pub(crate) summary: String,
    pub(crate) payload: serde_json::Value,
    pub(crate) effects: Vec<String>,
    pub(crate) sent: Option<(u64, Time)>,
    pub(crate) duplicate: bool,
    pub(crate) lost: Option<DropReason>,
    pub(crate) sent_to: Vec<NodeId>,
    pub(crate) lost_at_send: Vec<LostSend>,
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
        /// An exploration chose to lose it.
        Chosen,
    }

    /// A message's delivery (or loss).
    pub(crate) fn message(from: NodeId, to: NodeId, msg: &dyn Debug, fate: Fate) -> String {
        match fate {
            Fate::Delivered => format!("{from} → {to}: {msg:?}"),
            Fate::LostInFlight => format!("{from} → {to} lost in flight (partition): {msg:?}"),
            Fate::RecipientDown => format!("{from} → {to} lost ({to} is down): {msg:?}"),
            Fate::Chosen => format!("{from} → {to} lost (a chosen loss): {msg:?}"),
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
            Effect::Exit => "exits: leaves the cluster".into(),
        }
    }
}

#[cfg(test)]
mod compact_tests {
    use super::{CompactStep, CompactTrace, StepKind};

    fn step(time_us: u64, i: u64) -> CompactStep {
        CompactStep {
            time_us,
            node: if i.is_multiple_of(7) {
                CompactStep::NONE
            } else {
                i as u16
            },
            peer: (i * 31) as u16,
            kind: StepKind::ALL[i as usize % StepKind::ALL.len()],
            violation: i.is_multiple_of(5),
        }
    }

    #[test]
    fn steps_come_back_as_written_across_gaps_and_drains() {
        let gaps = [0, 1, 999, (1 << 27) - 1, 1 << 27, 5 << 40];
        let mut trace = CompactTrace::default();
        let (mut written, mut read) = (Vec::new(), Vec::new());
        let mut time = 0u64;
        for i in 0..200u64 {
            time += gaps[i as usize % gaps.len()] >> (i % 3);
            if i == 100 {
                time += (1 << 61) + 5; // more than one gap word holds
            }
            let s = step(time, i);
            trace.push(s);
            written.push(s);
            if i % 37 == 0 {
                read.extend(trace.drain());
            }
        }
        assert_eq!(trace.steps().len(), 200 - read.len());
        read.extend(trace.drain());
        assert_eq!(read, written);
        assert!(trace.steps().is_empty());
    }

    #[test]
    fn a_step_takes_one_word_unless_a_long_pause_came_before_it() {
        let mut trace = CompactTrace::default();
        for i in 0..1000 {
            trace.push(step(i * 1_000, i));
        }
        assert_eq!(trace.words.len(), 1000);
        trace.push(step(1_000_000_000, 3));
        assert_eq!(trace.words.len(), 1002, "a 999 s pause needs one gap word");
    }
}
