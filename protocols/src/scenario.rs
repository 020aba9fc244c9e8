//! Scenario files: one RON file = a protocol and its settings, a cluster, a network, clients,
//! faults, a stop time, a default seed, and what the run is expected to show.
//!
//! ```ron
//! Scenario(
//!     name: "2pc-happy-path",
//!     protocol: TwoPhaseCommit(accounts: 8),
//!     nodes: 4,
//!     seed: 1,
//!     network: (latency_ms: Uniform(1, 10)),
//!     clients: (count: 3, ops: 50),
//!     faults: [(at_ms: 1000, fault: Crash(0)), (at_ms: 3000, fault: Restart(0))],
//!     stop_ms: 10000,
//!     expect: AllHold,
//! )
//! ```

use crate::ProtocolConfig;
use crate::learner::LearnerCode;
use serde::{Deserialize, Serialize};
use simlab_sim::load::{self, LoadError};
use simlab_sim::{
    ClientConfig, Expect, FieldError, Limits, NemesisConfig, NetworkConfig, ScheduledFault,
    SimConfig, Time, TraceMode,
};
use std::path::{Path, PathBuf};

/// A scenario, as written in a `.ron` file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A short name, used in reports.
    pub name: String,
    /// What the scenario shows, for people.
    #[serde(default)]
    pub description: String,
    /// The protocol and its settings.
    pub protocol: ProtocolConfig,
    /// Cluster size.
    pub nodes: u32,
    /// Nodes that are not members at start (they join with a `Join` fault or the nemesis's
    /// `Churn`), ascending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<u32>,
    /// The seed used when none is given on the command line.
    #[serde(default)]
    pub seed: u64,
    /// Link behaviour.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Simulated clients.
    #[serde(default)]
    pub clients: ClientConfig,
    /// Faults at fixed times.
    #[serde(default)]
    pub faults: Vec<ScheduledFault>,
    /// Random faults.
    #[serde(default)]
    pub nemesis: Option<NemesisConfig>,
    /// When the run stops (milliseconds of virtual time).
    pub stop_ms: u64,
    /// Step and queue limits.
    #[serde(default)]
    pub limits: Limits,
    /// Invariants not to check in this scenario (e.g. a "sometimes" that cannot happen here).
    #[serde(default)]
    pub skip_invariants: Vec<String>,
    /// What the run must show.
    pub expect: Expect,
    /// Functions a learner supplies to the protocol (see [`crate::learner`]); never in a file:
    /// the program that loads the scenario attaches them.
    #[serde(skip)]
    pub code: LearnerCode,
}

/// A scenario read from a file, with the file's path for messages.
#[derive(Clone, Debug)]
pub struct LoadedScenario {
    /// Where it came from.
    pub path: PathBuf,
    /// The scenario.
    pub scenario: Scenario,
}

impl Scenario {
    /// This scenario as a build exercise runs it: the planted bugs off, and `code` (the
    /// learner's functions) inside the protocol.
    pub fn with_learner_code(mut self, code: crate::LearnerCode) -> Scenario {
        self.protocol.clear_bugs();
        self.code = code;
        self
    }

    /// Reads, parses and validates a scenario file.
    pub fn load(path: &Path) -> Result<LoadedScenario, LoadError> {
        let text = load::read_text(path, load::MAX_SCENARIO_BYTES)?;
        let scenario = Scenario::parse(path, &text)?;
        Ok(LoadedScenario {
            path: path.to_path_buf(),
            scenario,
        })
    }

    /// Parses and validates scenario text; `path` names it in messages, and a rule broken
    /// after parsing points at the field's line and column in `text`.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, LoadError> {
        let scenario: Scenario = load::parse_ron(path, text)?;
        scenario
            .check()
            .map_err(|e| LoadError::invalid_in(path, text, e))?;
        Ok(scenario)
    }

    /// The engine configuration for this scenario with this seed.
    pub fn sim_config(&self, seed: u64, trace: TraceMode) -> SimConfig {
        SimConfig {
            nodes: self.nodes,
            seed,
            stop: Time::from_millis(self.stop_ms),
            network: self.network.clone(),
            faults: self.faults.clone(),
            nemesis: self.nemesis.clone(),
            clients: self.clients.clone(),
            limits: self.limits.clone(),
            trace,
            stop_on_violation: false,
            absent: self.absent.clone(),
        }
    }

    /// Checks every rule serde cannot: node numbers, ranges, invariant names.
    pub fn validate(&self, path: &Path) -> Result<(), LoadError> {
        self.check().map_err(|e| LoadError::invalid(path, e))
    }

    fn check(&self) -> Result<(), FieldError> {
        if self.name.trim().is_empty() {
            return Err(FieldError::new("name", "must not be empty"));
        }
        // Before anything converts a setting to engine time: every `*_ms` value, the
        // protocol's included, is bounded, so no conversion or sum of times can overflow.
        load::check_times(self)?;
        self.sim_config(self.seed, TraceMode::HashOnly).validate()?;
        self.protocol.validate(self.nodes).map_err(|e| {
            if e.field == "nodes" {
                e
            } else {
                e.within("protocol")
            }
        })?;
        self.protocol.validate_absent(&self.absent)?;
        let known = self.protocol.invariant_names(self.nodes);
        let check = |name: &str| {
            if known.iter().any(|(k, _)| k == name) {
                Ok(())
            } else {
                let names: Vec<&str> = known.iter().map(|(k, _)| k.as_str()).collect();
                let rule = format!(
                    "no invariant called {name:?}; {} has: {}",
                    self.protocol.name(),
                    names.join(", ")
                );
                Err(FieldError::new("", rule))
            }
        };
        for (i, name) in self.expect.names().into_iter().enumerate() {
            check(name).map_err(|e| e.at(i).within("expect"))?;
        }
        for (i, name) in self.skip_invariants.iter().enumerate() {
            check(name).map_err(|e| e.at(i).within("skip_invariants"))?;
        }
        if let Expect::Violates(name) | Expect::ViolatesWhileHolding { violated: name, .. } =
            &self.expect
            && self.skip_invariants.contains(name)
        {
            let rule = format!("expects {name} to be violated but skips it");
            return Err(FieldError::new("expect", rule));
        }
        Ok(())
    }
}
