//! Protocols for simlab, and the registry that maps a scenario's `protocol:` to one of them.
//!
//! Each protocol module holds its node, messages, invariants, planted bugs (for teaching, and to
//! prove the checkers catch them) and its view for the TUI.

pub mod atomic_commit;
pub mod raft;
pub mod registry;
pub mod scenario;
pub mod shrink;
pub mod sweep;
pub mod three_phase_commit;
pub mod two_phase_commit;

pub use registry::{ProtocolConfig, Run, RunOptions, build, run};
pub use scenario::{LoadedScenario, Scenario};
