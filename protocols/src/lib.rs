//! Protocols for simlab, and the registry that maps a scenario's `protocol:` to one of them.
//!
//! Each protocol module holds its node, messages, invariants, planted bugs (for teaching, and to
//! prove the checkers catch them) and its view for the TUI, and implements [`Protocol`].

pub mod atomic_commit;
pub mod kv;
pub mod learner;
pub mod protocol;
pub mod registry;
pub mod scenario;
pub mod shrink;
pub mod stats;
pub mod swarm;
pub mod sweep;

// ANCHOR: list
// The registry: one line per protocol, `Variant => folder::NodeType`. `Variant` is how a
// scenario names it (`protocol: Raft(…)`); the line also declares the folder's module. A
// folder with a second protocol continues its line with `| Variant => NodeType`.
protocol::protocols! {
    /// Two-phase commit.
    TwoPhaseCommit => two_phase_commit::TwoPc,
    /// Three-phase commit.
    ThreePhaseCommit => three_phase_commit::ThreePc,
    /// Raft replicating a key-value store.
    Raft => raft::Raft,
    /// A replicated grow-only counter (the worked example of writing a protocol).
    Counter => counter::Counter,
    /// Single-decree Paxos deciding a write-once register.
    Paxos => paxos::Synod
    /// Multi-Paxos replicating a key-value store.
    | MultiPaxos => MultiPaxos,
    /// A distributed lock service, workers and the storage they protect.
    Locks => locks::LockNode,
    /// A gossip-replicated key-value cache (anti-entropy, rumor mongering, version vectors).
    Gossip => gossip::GossipNode,
    /// A key-value store sharded over a consistent-hash ring, rebalanced as members join and leave.
    Ring => ring::RingNode,
}
// ANCHOR_END: list

pub use learner::{LearnerCode, Slot};
pub use protocol::{Protocol, ReportItem, Setup};
pub use registry::{Run, RunOptions, build, run};
pub use scenario::{LoadedScenario, Scenario};
