//! What the lock lab checks, as the protected resource sees it, and what it reports.
//!
//! - **MutualExclusion** (always): no accepted access by another worker falls between a
//!   worker's read and its accepted write (with fencing, also: accepted tokens never go down).
//!   Checked at the step the storage accepts the write that breaks it.
//! - **NoLostUpdate** (always): an accepted write sets the counter to one above what it was, so
//!   no acknowledged increment is overwritten.
//! - **TokensUnique** (always): no token is ever held by two workers: the lock service's own
//!   consistency, whatever the storage sees.
//! - **LockGrantedAgain** (eventually): after the faults, the lock is granted again (a holder
//!   that crashed does not block everyone for ever).
//! - **WriteAccepted** (sometimes): some critical section completed at all.

use super::storage::Served;
use super::{Access, LockConfig, LockNode};
use crate::protocol::ReportItem;
use simlab_sim::{Invariant, InvariantKind, NodeId, Simulation, World};
use std::collections::BTreeMap;

/// Every invariant of the lock lab.
pub fn all(config: &LockConfig) -> Vec<Box<dyn Invariant<LockNode>>> {
    let storage = config.storage();
    let fenced = config.design.fenced();
    let mut all: Vec<Box<dyn Invariant<LockNode>>> = vec![
        Box::new(Journal::new(Rule::MutualExclusion, storage, fenced)),
        Box::new(Journal::new(Rule::NoLostUpdate, storage, fenced)),
    ];
    // Redlock's instances number their grants independently: there is no common token to be
    // unique (which is also why it cannot be fenced).
    if !config.design.majority_of_instances() {
        all.push(Box::new(TokensUnique {
            holders: BTreeMap::new(),
            workers: storage.0.saturating_add(1)..u32::MAX,
        }));
    }
    all.extend([
        Box::new(GrantedAgain {
            baseline: None,
            services: config.service_count(),
        }) as Box<dyn Invariant<LockNode>>,
        Box::new(WriteAccepted { storage }),
    ]);
    all
}

/// A walk over the storage's journal, one access at a time, that finds the accesses breaking
/// mutual exclusion and the writes that lose an update.
#[derive(Clone, Debug, Default)]
pub struct Scan {
    fenced: bool,
    index: usize,
    /// Per worker: its last accepted access, and its last accepted read.
    last_access: BTreeMap<u32, usize>,
    last_read: BTreeMap<u32, usize>,
    highest_token: u64,
    /// Accepted writes, overlapping critical sections and lost updates so far.
    pub writes: u64,
    /// Critical sections another worker's access fell into (or tokens accepted out of order).
    pub overlaps: u64,
    /// Accepted writes that did not build on the counter they overwrote.
    pub lost: u64,
    /// Accesses the fence refused.
    pub refused: u64,
}

/// A broken rule found by a [`Scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// Mutual exclusion, with why.
    Overlap(String),
    /// A lost update, with why.
    Lost(String),
}

impl Scan {
    /// A walk from the journal's start.
    pub fn new(fenced: bool) -> Scan {
        Scan {
            fenced,
            ..Scan::default()
        }
    }

    /// Walks the accesses not seen yet; returns what they broke, in order.
    pub fn feed(&mut self, journal: &[Served]) -> Vec<Finding> {
        let mut found = Vec::new();
        while self.index < journal.len() {
            let i = self.index;
            self.index += 1;
            let s = &journal[i];
            if !s.accepted {
                self.refused += 1;
                continue;
            }
            if self.fenced && s.token < self.highest_token {
                self.overlaps += 1;
                found.push(Finding::Overlap(format!(
                    "the storage accepted n{}'s token {} after token {}: tokens out of order",
                    s.worker, s.token, self.highest_token
                )));
            }
            self.highest_token = self.highest_token.max(s.token);
            if let Access::Write(value) = s.access {
                self.writes += 1;
                let read = self.last_read.get(&s.worker).copied();
                let intruder = self
                    .last_access
                    .iter()
                    .filter(|&(&w, &at)| w != s.worker && read.is_some_and(|r| at > r))
                    .max_by_key(|&(_, &at)| at);
                if let (Some((&other, &at)), Some(r)) = (intruder, read) {
                    self.overlaps += 1;
                    let o = &journal[at];
                    found.push(Finding::Overlap(format!(
                        "n{w}'s write of {value} (token {}) broke mutual exclusion: n{other} \
                         (token {}) {} the counter after n{w} read it and before this write \
                         landed (storage accesses {r}, {at} and {i})",
                        s.token,
                        o.token,
                        if matches!(o.access, Access::Read) { "read" } else { "wrote" },
                        w = s.worker,
                    )));
                }
                if value != s.before + 1 {
                    self.lost += 1;
                    found.push(Finding::Lost(format!(
                        "n{}'s write of {value} (token {}) replaced {}, undoing {} \
                         acknowledged increment(s)",
                        s.worker,
                        s.token,
                        s.before,
                        (s.before + 1).saturating_sub(value)
                    )));
                }
            } else {
                self.last_read.insert(s.worker, i);
            }
            self.last_access.insert(s.worker, i);
        }
        found
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Rule {
    MutualExclusion,
    NoLostUpdate,
}

/// MutualExclusion or NoLostUpdate, over the storage's journal as it grows.
#[derive(Clone, Debug)]
struct Journal {
    rule: Rule,
    storage: NodeId,
    scan: Scan,
}

impl Journal {
    fn new(rule: Rule, storage: NodeId, fenced: bool) -> Journal {
        Journal {
            rule,
            storage,
            scan: Scan::new(fenced),
        }
    }
}

impl Invariant<LockNode> for Journal {
    fn name(&self) -> &str {
        match self.rule {
            Rule::MutualExclusion => "MutualExclusion",
            Rule::NoLostUpdate => "NoLostUpdate",
        }
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, LockNode>) -> Result<(), String> {
        if !world.durable_writes().contains(&self.storage) {
            return Ok(());
        }
        let journal = &world.durable(self.storage).storage.journal;
        for finding in self.scan.feed(journal) {
            match (self.rule, finding) {
                (Rule::MutualExclusion, Finding::Overlap(why))
                | (Rule::NoLostUpdate, Finding::Lost(why)) => return Err(why),
                _ => {}
            }
        }
        Ok(())
    }
}

/// TokensUnique: every token a worker ever held, with the worker.
#[derive(Clone, Debug)]
struct TokensUnique {
    holders: BTreeMap<u64, u32>,
    workers: std::ops::Range<u32>,
}

impl Invariant<LockNode> for TokensUnique {
    fn name(&self) -> &str {
        "TokensUnique"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Always
    }
    fn check(&mut self, world: &World<'_, LockNode>) -> Result<(), String> {
        let first = self.workers.start;
        for (id, node) in world.live_nodes().filter(|(id, _)| id.0 >= first) {
            let Some(lease) = node.worker().and_then(|w| w.lease()) else {
                continue;
            };
            let holder = *self.holders.entry(lease.token).or_insert(id.0);
            if holder != id.0 {
                return Err(format!(
                    "token {} was granted to n{holder} and to {id}: the lock service lost track \
                     of its own grants",
                    lease.token
                ));
            }
        }
        Ok(())
    }
}

/// The highest token any live lock server's record shows.
fn highest_token(world: &World<'_, LockNode>, services: u32) -> u64 {
    (0..services)
        .map(NodeId)
        .filter_map(|id| {
            let server = world.node(id)?.server()?;
            Some(server.record(world.durable(id)).token)
        })
        .max()
        .unwrap_or(0)
}

/// LockGrantedAgain: after the faults, a grant newer than any before them.
#[derive(Clone, Debug)]
struct GrantedAgain {
    baseline: Option<u64>,
    services: u32,
}

impl Invariant<LockNode> for GrantedAgain {
    fn name(&self) -> &str {
        "LockGrantedAgain"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Eventually
    }
    fn check(&mut self, world: &World<'_, LockNode>) -> Result<(), String> {
        let now = highest_token(world, self.services);
        let baseline = *self.baseline.get_or_insert(now);
        if now > baseline {
            return Ok(());
        }
        let record = (0..self.services)
            .map(NodeId)
            .find_map(|id| {
                let server = world.node(id)?.server()?;
                Some(server.record(world.durable(id)))
            })
            .map_or("no lock server is up".to_string(), |r| format!("the lock is {r}"));
        Err(format!(
            "no grant since the faults ended (the last token is {baseline}); {record}"
        ))
    }
}

/// WriteAccepted: some worker completed a critical section.
#[derive(Clone, Debug)]
struct WriteAccepted {
    storage: NodeId,
}

impl Invariant<LockNode> for WriteAccepted {
    fn name(&self) -> &str {
        "WriteAccepted"
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::Sometimes
    }
    fn check(&mut self, world: &World<'_, LockNode>) -> Result<(), String> {
        let journal = &world.durable(self.storage).storage.journal;
        match journal.last() {
            Some(s) if s.accepted && matches!(s.access, Access::Write(_)) => Ok(()),
            _ => Err("no write accepted yet".into()),
        }
    }
}

/// The lock lab's figures: grants, writes, what the fence refused, overlapping critical
/// sections and lost increments over the whole run.
pub fn report(config: &LockConfig, sim: &Simulation<LockNode>) -> Vec<ReportItem> {
    let world = sim.world();
    let storage = &world.durable(config.storage()).storage;
    let mut scan = Scan::new(config.design.fenced());
    scan.feed(&storage.journal);
    let abandoned: u64 = world
        .live_nodes()
        .filter_map(|(_, n)| n.worker())
        .map(|w| w.counts().abandoned)
        .sum();
    vec![
        ReportItem::count(
            "tokens_granted",
            "tokens granted",
            highest_token(&world, config.service_count()),
        ),
        ReportItem::count("writes_accepted", "writes accepted", scan.writes),
        ReportItem::count("counter", "counter at the end", storage.value),
        ReportItem::count(
            "increments_lost",
            "increments lost",
            scan.writes.saturating_sub(storage.value),
        ),
        ReportItem::count(
            "overlapping_sections",
            "sections overlapped",
            scan.overlaps,
        ),
        ReportItem::count("accesses_refused", "fence refusals", scan.refused),
        ReportItem::count(
            "writes_abandoned",
            "writes abandoned",
            abandoned,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(worker: u32, token: u64, access: Access, before: u64, accepted: bool) -> Served {
        Served {
            worker,
            token,
            access,
            before,
            accepted,
        }
    }

    #[test]
    fn the_scan_catches_an_interleaved_write_and_the_lost_update() {
        let journal = vec![
            served(3, 1, Access::Read, 0, true),
            served(4, 2, Access::Read, 0, true), // n4 reads inside n3's section
            served(4, 2, Access::Write(1), 0, true),
            served(3, 1, Access::Write(1), 1, true), // n3's late write: overlap and loss
        ];
        let mut scan = Scan::new(false);
        assert!(scan.feed(&journal[..3]).is_empty(), "n4's section alone is fine");
        let found = scan.feed(&journal);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(matches!(&found[0], Finding::Overlap(m) if m.contains("n4 (token 2) wrote")));
        assert!(matches!(&found[1], Finding::Lost(m) if m.contains("undoing 1")));
        assert_eq!((scan.writes, scan.overlaps, scan.lost), (2, 1, 1));
    }

    #[test]
    fn with_fencing_refused_accesses_do_not_count_and_tokens_must_not_go_down() {
        let journal = vec![
            served(3, 1, Access::Read, 0, true),
            served(4, 2, Access::Read, 0, true),
            served(3, 1, Access::Write(1), 0, false), // refused: no harm
            served(4, 2, Access::Write(1), 0, true),
        ];
        let mut scan = Scan::new(true);
        assert!(scan.feed(&journal).is_empty());
        assert_eq!(scan.refused, 1);
        // A fence that let token 1 through after token 2 is caught.
        let mut journal = journal;
        journal.push(served(3, 1, Access::Read, 1, true));
        let found = scan.feed(&journal);
        assert!(matches!(&found[0], Finding::Overlap(m) if m.contains("out of order")));
    }

    #[test]
    fn a_workers_own_sections_in_sequence_are_fine() {
        let journal = vec![
            served(3, 1, Access::Read, 0, true),
            served(3, 1, Access::Write(1), 0, true),
            served(3, 2, Access::Read, 1, true),
            served(3, 2, Access::Write(2), 1, true),
            served(4, 3, Access::Read, 2, true),
            served(4, 3, Access::Write(3), 2, true),
        ];
        assert!(Scan::new(true).feed(&journal).is_empty());
    }
}
