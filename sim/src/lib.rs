//! The simlab engine: a single-threaded, deterministic discrete-event simulator for
//! distributed protocols. It knows no protocol; protocols implement [`Node`].
//!
//! One `(configuration, seed)` pair determines everything: every random draw comes from a
//! seeded stream ([`rng`]), time is virtual ([`Time`]), events run in `(time, insertion)` order,
//! and the run is fingerprinted by a stable trace hash ([`hash`]).

pub mod config;
pub mod explore;
pub mod faults;
pub mod hash;
pub mod history;
pub mod invariant;
pub mod linearizability;
pub mod load;
pub mod network;
pub mod node;
pub mod outcome;
pub mod rng;
mod share;
pub mod simulation;
pub mod time;
pub mod trace;
pub mod workload;
pub mod world;

pub use config::{Limits, SimConfig};
pub use faults::{Fault, FaultRecord, NemesisConfig, NemesisKind, ScheduledFault};
pub use history::{ClientConfig, Completion, Ended, History, OpTiming, Operation, Side};
pub use invariant::{FnInvariant, HistoryInvariant, Invariant, InvariantKind};
pub use load::FieldError;
pub use network::{DropReason, LatencyMs, NetworkConfig, PartitionSummary};
pub use node::{
    ClientId, Ctx, Effect, Embedding, Node, NodeId, NodeView, ReplyTo, ResponseClass, TimerId,
};
pub use outcome::{
    CapReport, Expect, Latency, Outcome, StopReason, Verdict as ExpectVerdict, Violation,
};
pub use rng::{Probability, SimRng};
pub use simulation::{Choice, Enabled, FaultBudget, NotEnabled, Simulation};
pub use time::Time;
pub use trace::{CompactStep, LostSend, StepKind, StepRecord, TraceMode};
pub use workload::Workload;
pub use world::{Changed, NodeStatus, Stats, World};
