//! A simulation's configuration: cluster size, seed, stop time, network, faults, clients and
//! limits, and the rules a configuration must follow.

use crate::faults::{NemesisConfig, ScheduledFault};
use crate::history::ClientConfig;
use crate::load::{FieldError, check_times};
use crate::network::NetworkConfig;
use crate::time::Time;
use crate::trace::{CompactStep, TraceMode};
use serde::{Deserialize, Serialize};

/// Hard limits that end a run which would otherwise never end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The most steps a run may take.
    pub max_steps: u64,
    /// The most events that may wait in the queue at once.
    pub max_queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_steps: 20_000_000,
            max_queue: 1_000_000,
        }
    }
}

/// Everything the engine needs to know about a run, apart from the protocol.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Cluster size.
    pub nodes: u32,
    /// The seed every random stream derives from.
    pub seed: u64,
    /// When the run stops.
    pub stop: Time,
    /// The network.
    pub network: NetworkConfig,
    /// Faults at fixed times.
    pub faults: Vec<ScheduledFault>,
    /// Random faults.
    pub nemesis: Option<NemesisConfig>,
    /// Simulated clients.
    pub clients: ClientConfig,
    /// Step and queue limits.
    pub limits: Limits,
    /// How much of the trace to keep.
    pub trace: TraceMode,
    /// Stop at the first violated invariant (sweeps want the verdict, not the rest of the run).
    pub stop_on_violation: bool,
    /// Nodes that are not members at start: they do not start until a `Join` fault (or the
    /// nemesis's churn) brings them in. Ascending, each below `nodes`.
    pub absent: Vec<u32>,
}

// Compact trace records keep node and client numbers in 16 bits, `NONE` apart.
const _: () = assert!(SimConfig::MAX_NODES < CompactStep::NONE as u32);
const _: () = assert!(ClientConfig::MAX_CLIENTS < CompactStep::NONE as u32);

impl SimConfig {
    /// The most nodes a cluster may have.
    pub const MAX_NODES: u32 = 1_000;

    /// A fault-free configuration of `nodes` nodes with default network and no clients.
    pub fn new(nodes: u32, seed: u64, stop: Time) -> SimConfig {
        SimConfig {
            nodes,
            seed,
            stop,
            network: NetworkConfig::default(),
            faults: Vec::new(),
            nemesis: None,
            clients: ClientConfig::default(),
            limits: Limits::default(),
            trace: TraceMode::HashOnly,
            stop_on_violation: false,
            absent: Vec::new(),
        }
    }

    /// Checks the configuration; the error names the field and the rule it breaks.
    pub fn validate(&self) -> Result<(), FieldError> {
        let err = |field: &str, rule: String| Err(FieldError::new(field, rule));
        if self.nodes == 0 {
            return err("nodes", "a cluster needs at least 1 node".into());
        }
        if self.nodes > Self::MAX_NODES {
            return err(
                "nodes",
                format!(
                    "{} nodes is more than the limit of {}",
                    self.nodes,
                    Self::MAX_NODES
                ),
            );
        }
        for (i, &n) in self.absent.iter().enumerate() {
            let in_absent = |rule: String| Err(FieldError::new("", rule).at(i).within("absent"));
            if n >= self.nodes {
                return in_absent(format!(
                    "node {n} does not exist: the cluster has {} nodes, numbered 0 to {}",
                    self.nodes,
                    self.nodes - 1
                ));
            }
            if self.absent[..i].contains(&n) {
                return in_absent(format!("node {n} is listed twice"));
            }
        }
        if self.absent.len() as u64 >= u64::from(self.nodes) {
            return err(
                "absent",
                "every node is absent: at least one must be a member at start".into(),
            );
        }
        check_times(&self.network).map_err(|e| e.within("network"))?;
        check_times(&self.clients).map_err(|e| e.within("clients"))?;
        check_times(&self.faults).map_err(|e| e.within("faults"))?;
        check_times(&self.nemesis).map_err(|e| e.within("nemesis"))?;
        if self.stop == Time::ZERO {
            return err("stop_ms", "must be positive".into());
        }
        if self.stop > Time::from_millis(Time::LONGEST_MS) {
            return err("stop_ms", "is more than 30 days of virtual time".into());
        }
        self.network
            .latency_ms
            .validate()
            .map_err(|rule| FieldError::new("latency_ms", rule).within("network"))?;
        for (i, link) in self.network.links.iter().enumerate() {
            let in_link = |e: FieldError| e.at(i).within("links").within("network");
            for (name, n) in [("from", link.from), ("to", link.to)] {
                if n >= self.nodes {
                    let rule = format!(
                        "node {n} does not exist: the cluster has {} nodes",
                        self.nodes
                    );
                    return Err(in_link(FieldError::new(name, rule)));
                }
            }
            if link.from == link.to {
                let rule = format!(
                    "a link from node {} to itself: a node always reaches itself instantly",
                    link.from
                );
                return Err(in_link(FieldError::new("to", rule)));
            }
            if let Some(j) = self.network.links[..i]
                .iter()
                .position(|other| (other.from, other.to) == (link.from, link.to))
            {
                let rule = format!(
                    "a second override for the link {} -> {} (the first is links[{j}])",
                    link.from, link.to
                );
                return Err(in_link(FieldError::new("from", rule)));
            }
            link.link
                .latency_ms
                .validate()
                .map_err(|rule| in_link(FieldError::new("latency_ms", rule).within("link")))?;
        }
        for (i, f) in self.faults.iter().enumerate() {
            let in_fault = |e: FieldError| e.at(i).within("faults");
            f.fault
                .validate(self.nodes)
                .map_err(|rule| in_fault(FieldError::new("fault", rule)))?;
            if Time::from_millis(f.at_ms) > self.stop {
                let rule = format!(
                    "{} ms is after the stop time {} ms",
                    f.at_ms,
                    self.stop.as_millis()
                );
                return Err(in_fault(FieldError::new("at_ms", rule)));
            }
        }
        if let Some(nemesis) = &self.nemesis {
            nemesis
                .validate(self.nodes)
                .map_err(|e| e.within("nemesis"))?;
            if Time::from_millis(nemesis.end_ms) > self.stop {
                let rule = format!(
                    "{} ms is after the stop time {} ms",
                    nemesis.end_ms,
                    self.stop.as_millis()
                );
                return err("nemesis.end_ms", rule);
            }
        }
        self.clients.validate().map_err(|e| e.within("clients"))?;
        if self.limits.max_steps == 0 || self.limits.max_queue == 0 {
            return err("limits", "limits must be positive".into());
        }
        Ok(())
    }

    /// When the last fault is over: the latest scheduled fault or the nemesis's end.
    pub fn faults_over_at(&self) -> Time {
        let scheduled = self.faults.iter().map(|f| f.at_ms).max().unwrap_or(0);
        let nemesis = self.nemesis.as_ref().map_or(0, |n| n.end_ms);
        Time::from_millis(scheduled.max(nemesis))
    }
}
