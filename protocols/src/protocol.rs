//! The plug-in surface: the one trait a protocol folder implements.
//!
//! A protocol is a [`Node`] type plus what the registry needs to run it from a scenario: its
//! settings (serde, defaults, validation), the smallest cluster it works on, how to switch its
//! planted bugs off, its workload, its invariants and the figures it reports. The registry
//! (`registry.rs`, one line per protocol) generates the scenario's `protocol:` enum and every
//! dispatch from these, and the workspace tests derive their lists from the registry, so adding
//! a protocol is its folder, one registry line, its scenarios and its book chapter.

use crate::learner::LearnerCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use simlab_sim::FieldError;
use simlab_sim::linearizability::Op;
use simlab_sim::linearizability::models::{KvInput, KvOutput};
use simlab_sim::{Invariant, Node, NodeId, Simulation, Workload};
use std::fmt::Debug;
use std::sync::Arc;

/// What a protocol's hooks get: its settings, the cluster size and the learner code in force.
#[derive(Clone, Debug)]
pub struct Setup<C> {
    /// The scenario's settings for the protocol.
    pub config: Arc<C>,
    /// Cluster size.
    pub nodes: u32,
    /// The nodes that are not members at start (the scenario's `absent`), ascending.
    pub absent: Vec<u32>,
    /// Functions a learner supplies instead of the protocol's own (empty: the protocol's own).
    pub code: LearnerCode,
}

// ANCHOR: trait
/// A protocol simlab can run from a scenario. Implemented by the protocol's node type.
pub trait Protocol: Node {
    /// Its settings in a scenario: `protocol: Variant(field: value, …)`. Every field needs a
    /// default (`#[serde(default)]` on the struct) so `Variant()` is a valid scenario line, and
    /// settings named `*_ms` are bounded by the loader before [`Protocol::validate`] runs.
    type Config: Clone
        + Debug
        + Default
        + PartialEq
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;

    /// The protocol's name for people (`"Raft"`, `"two-phase commit"`).
    const NAME: &'static str;

    /// Checks the settings for a cluster of `nodes`; the error names one of the config's fields
    /// (the loader adds `protocol.` in front) or `nodes`.
    fn validate(config: &Self::Config, nodes: u32) -> Result<(), FieldError>;

    /// Checks the nodes the scenario lists as absent at start; the error names `absent[i]`.
    /// By default any node may be absent.
    fn validate_absent(config: &Self::Config, absent: &[u32]) -> Result<(), FieldError> {
        let _ = (config, absent);
        Ok(())
    }

    /// The smallest cluster the protocol works on (shrinking removes nodes down to it).
    fn min_nodes(config: &Self::Config) -> u32;

    /// Switches off every planted bug (the planted-bug tests sweep the same scenario clean).
    fn clear_bugs(config: &mut Self::Config);

    /// A node as it boots or restarts (only its durable store carries over a crash).
    fn node(setup: &Setup<Self::Config>, id: NodeId) -> Self;

    /// What the simulated clients ask for; `None` for a protocol without clients.
    fn workload(setup: &Setup<Self::Config>) -> Option<Box<dyn Workload<Self::Request>>>;

    /// Every invariant the protocol checks.
    fn invariants(setup: &Setup<Self::Config>) -> Vec<Box<dyn Invariant<Self>>>;

    /// Protocol-specific figures of a finished (or running) simulation.
    fn report(setup: &Setup<Self::Config>, sim: &Simulation<Self>) -> Vec<ReportItem> {
        let _ = (setup, sim);
        Vec::new()
    }

    /// The client history as key-value operations, for stores that speak the key-value API
    /// (`Some(kv::history(sim.history()))`); `None` otherwise.
    fn kv_history(sim: &Simulation<Self>) -> Option<Vec<Op<KvInput, KvOutput>>> {
        let _ = sim;
        None
    }
}
// ANCHOR_END: trait

/// Checks the timing of a leader-based protocol: a non-empty range of positive election
/// timeouts (`election_timeout_ms`) and a heartbeat (`heartbeat_ms`) shorter than the shortest
/// of them, so a live leader is never mistaken for a dead one.
pub fn check_leader_timing(election_ms: (u64, u64), heartbeat_ms: u64) -> Result<(), FieldError> {
    let (lo, hi) = election_ms;
    if lo == 0 || lo > hi {
        return Err(FieldError::new(
            "election_timeout_ms",
            format!("({lo}, {hi}) must be a non-empty range of positive times"),
        ));
    }
    if heartbeat_ms == 0 || heartbeat_ms >= lo {
        return Err(FieldError::new(
            "heartbeat_ms",
            format!(
                "{heartbeat_ms} must be positive and below the shortest election timeout ({lo})"
            ),
        ));
    }
    Ok(())
}

/// One protocol-specific figure of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportItem {
    /// Its key in JSON output.
    pub key: &'static str,
    /// Its label in the readable summary.
    pub label: &'static str,
    /// Its value for people; empty for figures only JSON carries (long lists).
    pub text: String,
    /// Its value for programs.
    pub value: serde_json::Value,
}

impl ReportItem {
    /// A figure shown to people as `text` and to programs as `value`.
    pub fn new(
        key: &'static str,
        label: &'static str,
        text: impl Into<String>,
        value: serde_json::Value,
    ) -> ReportItem {
        ReportItem {
            key,
            label,
            text: text.into(),
            value,
        }
    }

    /// A number shown the same way to people and programs.
    pub fn count(key: &'static str, label: &'static str, value: u64) -> ReportItem {
        ReportItem::new(key, label, value.to_string(), serde_json::json!(value))
    }
}

/// Something done with a protocol's type and settings (see [`crate::ProtocolConfig::visit`]).
pub trait Visit {
    /// What it gives back.
    type Output;
    /// Does it for protocol `P`.
    fn visit<P: Protocol>(self, config: &P::Config) -> Self::Output;
}

/// Something done to a protocol's settings (see [`crate::ProtocolConfig::visit_mut`]).
pub trait VisitMut {
    /// What it gives back.
    type Output;
    /// Does it for protocol `P`.
    fn visit<P: Protocol>(self, config: &mut P::Config) -> Self::Output;
}

/// The registry's list, written once in `lib.rs` (the registry) as `Variant => module::Type`: declares each
/// protocol's module and generates [`crate::ProtocolConfig`] (one variant per protocol, holding its
/// settings) with the dispatch from a variant to its [`Protocol`] type. A folder with more than
/// one protocol (single-decree and Multi-Paxos) adds each further one as `| Variant => Type`.
macro_rules! protocols {
    ($($(#[doc = $doc:literal])* $variant:ident => $module:ident::$node:ident
        $($(#[doc = $doc2:literal])* | $variant2:ident => $node2:ident)*,)*) => {
        $(pub mod $module;)*
        /// A protocol and its settings, as a scenario names it: `protocol: Raft(prevote: true)`.
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        pub enum ProtocolConfig {
            $(
                $(#[doc = $doc])* $variant(#[serde(default)] <$module::$node as $crate::protocol::Protocol>::Config),
                $($(#[doc = $doc2])* $variant2(#[serde(default)] <$module::$node2 as $crate::protocol::Protocol>::Config),)*
            )*
        }

        impl ProtocolConfig {
            /// Runs `visitor` with the protocol's type and its settings.
            pub fn visit<V: $crate::protocol::Visit>(&self, visitor: V) -> V::Output {
                match self {
                    $(
                        ProtocolConfig::$variant(config) => visitor.visit::<$module::$node>(config),
                        $(ProtocolConfig::$variant2(config) => visitor.visit::<$module::$node2>(config),)*
                    )*
                }
            }

            /// Runs `visitor` with the protocol's type and its settings, for changing them.
            pub fn visit_mut<V: $crate::protocol::VisitMut>(&mut self, visitor: V) -> V::Output {
                match self {
                    $(
                        ProtocolConfig::$variant(config) => visitor.visit::<$module::$node>(config),
                        $(ProtocolConfig::$variant2(config) => visitor.visit::<$module::$node2>(config),)*
                    )*
                }
            }

            /// Every protocol with its default settings, in registry order.
            pub fn every_default() -> Vec<ProtocolConfig> {
                vec![$(ProtocolConfig::$variant(Default::default()), $(ProtocolConfig::$variant2(Default::default()),)*)*]
            }

            /// The variant's name as a scenario writes it (`"Raft"`).
            pub fn variant(&self) -> &'static str {
                match self {
                    $(
                        ProtocolConfig::$variant(_) => stringify!($variant),
                        $(ProtocolConfig::$variant2(_) => stringify!($variant2),)*
                    )*
                }
            }
        }
    };
}

pub(crate) use protocols;
