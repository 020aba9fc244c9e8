//! Raft's durable state: current term, vote, the log and the snapshot that replaces its prefix.

pub use crate::kv::KvState;
use serde::Serialize;
use simlab_sim::NodeId;
use std::sync::Arc;

use super::Command;

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: u64,
    /// What to apply. Shared: an entry is copied into every AppendEntries that carries it and
    /// into every follower's log, and the command (with its keys and values) need not be.
    /// It hashes and prints exactly as the command itself.
    pub command: Arc<Command>,
}

impl Entry {
    /// An entry of `term` that applies `command`.
    pub fn new(term: u64, command: Command) -> Entry {
        Entry {
            term,
            command: Arc::new(command),
        }
    }
}

/// The log, 1-indexed as in the paper. Every change is journaled (the first index it rewrote),
/// so invariants can look at what changed instead of the whole log.
///
/// After compaction (§7) the log holds only the entries after its snapshot: `first_index()` is
/// one past the snapshot's last index, whose term the log keeps so the consistency check of the
/// entry right after the snapshot still works. Entries at or before the snapshot index are gone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RaftLog {
    entries: Vec<Entry>,
    journal: Vec<u64>,
    /// The last index the snapshot covers (0 without a snapshot).
    snapshot_index: u64,
    /// The term of that entry.
    snapshot_term: u64,
}

impl RaftLog {
    /// The index of the last entry (the snapshot's last index when the log is empty after it).
    pub fn last_index(&self) -> u64 {
        self.snapshot_index + self.entries.len() as u64
    }

    /// The term of the last entry (0 when empty).
    pub fn last_term(&self) -> u64 {
        self.term_at(self.last_index())
    }

    /// The first index the log still holds an entry for.
    pub fn first_index(&self) -> u64 {
        self.snapshot_index + 1
    }

    /// The last index covered by the snapshot (0 without one).
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// The term of the snapshot's last entry (0 without one).
    pub fn snapshot_term(&self) -> u64 {
        self.snapshot_term
    }

    /// Whether the term of `index` is known here: index 0, the snapshot's last index, or an
    /// entry the log holds.
    pub fn knows_term(&self, index: u64) -> bool {
        index >= self.snapshot_index && index <= self.last_index()
    }

    /// The term of the entry at `index`: 0 for index 0 or past the end, the snapshot's term at
    /// its last index, and 0 for compacted indexes (check [`RaftLog::knows_term`] first where
    /// that matters).
    pub fn term_at(&self, index: u64) -> u64 {
        if index == self.snapshot_index {
            return self.snapshot_term;
        }
        self.get(index).map_or(0, |e| e.term)
    }

    /// The entry at `index`, if the log holds it.
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Entries from `from` (inclusive, after the snapshot), at most `limit`.
    pub fn slice(&self, from: u64, limit: usize) -> Vec<Entry> {
        let start = from.max(self.first_index()) - self.first_index();
        self.entries
            .iter()
            .skip(start as usize)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The first index holding an entry of `term` (for fast backup), if any.
    pub fn first_index_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .position(|e| e.term == term)
            .map(|i| self.first_index() + i as u64)
    }

    /// The last index holding an entry of `term`, if any.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .rposition(|e| e.term == term)
            .map(|i| self.first_index() + i as u64)
    }

    /// Appends one entry; returns its index.
    pub fn push(&mut self, entry: Entry) -> u64 {
        self.entries.push(entry);
        self.journal.push(self.last_index());
        self.last_index()
    }

    /// Deletes every entry from `index` on (never the snapshot: at most back to its end).
    pub fn truncate_from(&mut self, index: u64) {
        let index = index.max(self.first_index());
        self.entries
            .truncate((index - self.first_index()) as usize);
        self.journal.push(index);
    }

    /// Drops the entries up to `index` (inclusive), which a snapshot now covers. The log's
    /// content does not change, so nothing is journaled.
    pub fn compact_to(&mut self, index: u64, term: u64) {
        if index <= self.snapshot_index {
            return;
        }
        let drop = (index - self.snapshot_index).min(self.entries.len() as u64);
        self.entries.drain(..drop as usize);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// A follower installs a leader's snapshot ending at `(index, term)` (§7): if the log holds
    /// that very entry, the entries after it are kept; otherwise the whole log is replaced by
    /// the snapshot. With `keep_conflicting` (a planted bug) the entries after it are kept even
    /// when they conflict.
    pub fn install(&mut self, index: u64, term: u64, keep_conflicting: bool) {
        let matches = self.knows_term(index) && self.term_at(index) == term;
        let keep_suffix = matches || (keep_conflicting && index < self.last_index());
        if !keep_suffix {
            self.entries.clear();
        }
        self.compact_to(index, term);
        self.snapshot_term = term;
        if !matches {
            // The log changed after the snapshot's end (its suffix went, or, with the bug, it
            // now follows a different entry).
            self.journal.push(index + 1);
        }
    }

    /// For each write, the first index it changed.
    pub fn journal(&self) -> &[u64] {
        &self.journal
    }

    /// The entries the log holds, index [`RaftLog::first_index`] first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// A snapshot of the state machine (§7) after applying every entry up to `last_index`. Shared,
/// not copied, between the durable store and the InstallSnapshot messages that carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// The last index it covers.
    pub last_index: u64,
    /// That entry's term.
    pub last_term: u64,
    /// The state machine.
    pub state: KvState,
}

/// What Raft keeps on disk (Figure 2: currentTerm, votedFor, log[]; §7: the latest snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RaftDurable {
    /// The latest term this server has seen.
    pub current_term: u64,
    /// Whom it voted for in `current_term`.
    pub voted_for: Option<NodeId>,
    /// The log.
    pub log: RaftLog,
    /// The latest snapshot, which replaces the log up to its last index.
    pub snapshot: Option<Arc<Snapshot>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::KvOp;

    #[test]
    fn indexes_are_one_based_and_changes_are_journaled() {
        let mut log = RaftLog::default();
        assert_eq!(
            (log.last_index(), log.last_term(), log.term_at(0)),
            (0, 0, 0)
        );
        for term in [1, 1, 2, 3, 3] {
            log.push(Entry::new(term, Command::Noop));
        }
        assert_eq!((log.last_index(), log.last_term()), (5, 3));
        assert_eq!(log.first_index_of_term(3), Some(4));
        assert_eq!(log.last_index_of_term(1), Some(2));
        assert_eq!(log.first_index_of_term(9), None);
        assert_eq!(log.slice(4, 10).len(), 2);
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.journal(), &[1, 2, 3, 4, 5, 3]);
    }

    fn log_of(terms: &[u64]) -> RaftLog {
        let mut log = RaftLog::default();
        for &term in terms {
            log.push(Entry::new(term, Command::Noop));
        }
        log
    }

    #[test]
    fn compaction_keeps_indexes_and_the_term_before_the_suffix() {
        let mut log = log_of(&[1, 1, 2, 3, 3]);
        log.compact_to(3, 2);
        assert_eq!((log.first_index(), log.last_index()), (4, 5));
        assert_eq!((log.snapshot_index(), log.term_at(3)), (3, 2));
        assert!(log.get(3).is_none() && !log.knows_term(2) && log.knows_term(3));
        assert_eq!(log.term_at(4), 3);
        assert_eq!(log.slice(1, 10).len(), 2, "a slice starts after the snapshot");
        assert_eq!(log.first_index_of_term(3), Some(4));
        // Truncation never reaches into the snapshot.
        log.truncate_from(2);
        assert_eq!(log.last_index(), 3);
        assert_eq!(log.push(Entry::new(4, Command::Noop)), 4);
        // Compacting backwards does nothing.
        log.compact_to(2, 1);
        assert_eq!(log.snapshot_index(), 3);
    }

    #[test]
    fn installing_keeps_a_matching_suffix_and_drops_a_conflicting_one() {
        // The log holds the snapshot's last entry: the entries after it stay.
        let mut log = log_of(&[1, 1, 2, 2]);
        log.install(2, 1, false);
        assert_eq!((log.snapshot_index(), log.last_index()), (2, 4));
        // It holds a different entry there: everything goes.
        let mut log = log_of(&[1, 1, 3, 3]);
        let journal = log.journal().len();
        log.install(3, 2, false);
        assert_eq!((log.snapshot_index(), log.last_index(), log.last_term()), (3, 3, 2));
        assert_eq!(&log.journal()[journal..], &[4]);
        // It is shorter than the snapshot: it becomes the snapshot.
        let mut log = log_of(&[1]);
        log.install(5, 2, false);
        assert_eq!((log.first_index(), log.last_index()), (6, 5));
        // The planted bug keeps the conflicting entries.
        let mut log = log_of(&[1, 1, 3, 3]);
        log.install(3, 2, true);
        assert_eq!((log.last_index(), log.term_at(3), log.term_at(4)), (4, 2, 3));
    }

    #[test]
    fn a_retry_applies_once_and_an_older_one_not_at_all() {
        let mut state = KvState::default();
        let put = KvOp::Put("k".into(), "v".into());
        let append = KvOp::Append("k".into(), "w".into());
        assert!(state.apply(7, 1, &put, false).is_some());
        assert!(state.apply(7, 2, &append, false).is_some());
        assert_eq!(state.apply(7, 2, &append, false), state.sessions.get(&7).map(|s| s.1.clone()));
        assert_eq!(state.apply(7, 1, &put, false), None);
        assert_eq!(state.kv["k"], "vw");
        state.apply(7, 2, &append, true);
        assert_eq!(state.kv["k"], "vww", "the planted bug applies the retry again");
    }
}
