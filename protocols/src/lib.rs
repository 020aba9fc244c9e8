//! Protocols for simlab, and the registry that maps a scenario's `protocol:` to one of them.
//!
//! Each protocol module holds its node, messages, invariants, planted bugs (for teaching, and to
//! prove the checkers catch them) and its view for the TUI.

pub mod atomic_commit;
pub mod counter;
pub mod kv;
pub mod learner;
pub mod protocol;
pub mod raft;
pub mod registry;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod three_phase_commit;
pub mod two_phase_commit;

pub use learner::{LearnerCode, Slot};
pub use protocol::{Protocol, ReportItem, Setup};
pub use registry::{ProtocolConfig, Run, RunOptions, build, run};
pub use scenario::{LoadedScenario, Scenario};
