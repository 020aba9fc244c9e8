//! Raft's durable state: current term, vote, and the log.

use serde::Serialize;
use simlab_sim::NodeId;

use super::Command;

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: u64,
    /// What to apply.
    pub command: Command,
}

/// The log, 1-indexed as in the paper. Every change is journaled (the first index it rewrote),
/// so invariants can look at what changed instead of the whole log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RaftLog {
    entries: Vec<Entry>,
    journal: Vec<u64>,
}

impl RaftLog {
    /// The index of the last entry (0 when empty).
    pub fn last_index(&self) -> u64 {
        self.entries.len() as u64
    }

    /// The term of the last entry (0 when empty).
    pub fn last_term(&self) -> u64 {
        self.term_at(self.last_index())
    }

    /// The term of the entry at `index` (0 for index 0 or past the end).
    pub fn term_at(&self, index: u64) -> u64 {
        if index == 0 {
            return 0;
        }
        self.entries.get(index as usize - 1).map_or(0, |e| e.term)
    }

    /// The entry at `index`, if any.
    pub fn get(&self, index: u64) -> Option<&Entry> {
        if index == 0 {
            return None;
        }
        self.entries.get(index as usize - 1)
    }

    /// Entries from `from` (inclusive), at most `limit`.
    pub fn slice(&self, from: u64, limit: usize) -> Vec<Entry> {
        let start = (from.max(1) - 1) as usize;
        self.entries
            .iter()
            .skip(start)
            .take(limit)
            .cloned()
            .collect()
    }

    /// The first index holding an entry of `term` (for fast backup), if any.
    pub fn first_index_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .position(|e| e.term == term)
            .map(|i| i as u64 + 1)
    }

    /// The last index holding an entry of `term`, if any.
    pub fn last_index_of_term(&self, term: u64) -> Option<u64> {
        self.entries
            .iter()
            .rposition(|e| e.term == term)
            .map(|i| i as u64 + 1)
    }

    /// Appends one entry; returns its index.
    pub fn push(&mut self, entry: Entry) -> u64 {
        self.entries.push(entry);
        self.journal.push(self.last_index());
        self.last_index()
    }

    /// Deletes every entry from `index` on.
    pub fn truncate_from(&mut self, index: u64) {
        self.entries.truncate((index.max(1) - 1) as usize);
        self.journal.push(index);
    }

    /// For each write, the first index it changed.
    pub fn journal(&self) -> &[u64] {
        &self.journal
    }

    /// Every entry, index 1 first.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}

/// What Raft keeps on disk (Figure 2: currentTerm, votedFor, log[]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RaftDurable {
    /// The latest term this server has seen.
    pub current_term: u64,
    /// Whom it voted for in `current_term`.
    pub voted_for: Option<NodeId>,
    /// The log.
    pub log: RaftLog,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_are_one_based_and_changes_are_journaled() {
        let mut log = RaftLog::default();
        assert_eq!(
            (log.last_index(), log.last_term(), log.term_at(0)),
            (0, 0, 0)
        );
        for term in [1, 1, 2, 3, 3] {
            log.push(Entry {
                term,
                command: Command::Noop,
            });
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
}
