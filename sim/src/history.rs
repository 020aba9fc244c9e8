//! The client history: every operation's invocation and completion, with virtual times.
//!
//! Safety checkers (linearizability, atomicity) read this history; availability is measured
//! from it. An operation that timed out on its last attempt is [`Completion::Unknown`]: it may or
//! may not have taken effect, and checkers must allow both.

use crate::load::FieldError;
use crate::node::{ClientId, NodeId};
use crate::time::Time;
use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Completion<R> {
    /// It took effect, with this response.
    Ok(R),
    /// It definitely did not take effect; the response says why.
    Fail(R),
    /// The client gave up waiting: it may or may not have taken effect.
    Unknown,
}

/// Where the node an operation went to stood in the network when it was invoked.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Side {
    /// No link was cut.
    Healthy,
    /// Partitioned, on a side with a strict majority of the nodes.
    Majority,
    /// Partitioned, on a side without a majority.
    Minority,
}

/// One client operation.
#[derive(Clone, Debug, Serialize)]
pub struct Operation<Req, Resp> {
    /// Who issued it.
    pub client: ClientId,
    /// Its number in that client's session.
    pub seq: u64,
    /// What was asked.
    pub request: Req,
    /// When the client invoked it.
    pub invoked: Time,
    /// When it completed; `None` while pending (and for `Unknown`, the time it was given up).
    pub completed: Option<Time>,
    /// How it ended; `None` while pending.
    pub completion: Option<Completion<Resp>>,
    /// The first node it was sent to.
    pub node: NodeId,
    /// That node's side of the network at invocation.
    pub side: Side,
    /// While partitioned, the group of nodes that node could reach, as an index into
    /// [`History::groups`]: the availability of each side separately.
    pub group: Option<u32>,
    /// How many times it was sent (1 = no retry).
    pub attempts: u32,
    /// The invocation's place in the real-time order of every invocation and completion of
    /// the run: exact even when two events share a virtual microsecond.
    pub call_order: u64,
    /// The completion's place in that order; `None` while pending.
    pub return_order: Option<u64>,
}

impl<Req, Resp> Operation<Req, Resp> {
    /// Whether it completed with `Ok`.
    pub fn is_ok(&self) -> bool {
        matches!(self.completion, Some(Completion::Ok(_)))
    }
}

/// Every operation of a run, in invocation order.
#[derive(Clone, Debug, Serialize)]
pub struct History<Req, Resp> {
    /// The operations.
    pub ops: Vec<Operation<Req, Resp>>,
    /// Invocations and completions recorded so far (the next order number).
    pub events: u64,
    /// The partition groups operations ran on ([`Operation::group`]), in order of first use.
    pub groups: Vec<Vec<NodeId>>,
}

impl<Req, Resp> Default for History<Req, Resp> {
    fn default() -> Self {
        History {
            ops: Vec::new(),
            events: 0,
            groups: Vec::new(),
        }
    }
}

impl<Req, Resp> History<Req, Resp> {
    /// The index of `group` in [`History::groups`], added if new.
    pub fn group_index(&mut self, group: &[NodeId]) -> u32 {
        match self.groups.iter().position(|g| g == group) {
            Some(i) => i as u32,
            None => {
                self.groups.push(group.to_vec());
                (self.groups.len() - 1) as u32
            }
        }
    }

    /// The next number in the real-time order of invocations and completions.
    pub fn next_order(&mut self) -> u64 {
        self.events += 1;
        self.events - 1
    }

    /// When each operation ran and how it ended, without the protocol's types (for charts of
    /// availability and latency over time).
    pub fn timings(&self) -> Vec<OpTiming> {
        self.ops
            .iter()
            .map(|op| OpTiming {
                client: op.client,
                invoked: op.invoked,
                completed: op.completed,
                side: op.side,
                ended: match op.completion {
                    None => Ended::Pending,
                    Some(Completion::Ok(_)) => Ended::Ok,
                    Some(Completion::Fail(_)) => Ended::Fail,
                    Some(Completion::Unknown) => Ended::Unknown,
                },
            })
            .collect()
    }
}

/// How an operation ended, without its response.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// It took effect.
    Ok,
    /// It definitely did not.
    Fail,
    /// The client gave up: it may have.
    Unknown,
    /// The run ended first.
    Pending,
}

/// One operation's times and end, for charts (see [`History::timings`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpTiming {
    /// Who issued it.
    pub client: ClientId,
    /// When it was invoked.
    pub invoked: Time,
    /// When it ended, if it did.
    pub completed: Option<Time>,
    /// The side of the network its first node was on.
    pub side: Side,
    /// How it ended.
    pub ended: Ended,
}

/// How the simulated clients behave.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// How many clients run concurrently; each has one operation outstanding at a time.
    pub count: u32,
    /// Operations per client.
    pub ops: u32,
    /// When clients start (milliseconds).
    pub start_ms: u64,
    /// Pause between an operation's completion and the next one (milliseconds, uniform range).
    pub think_ms: (u64, u64),
    /// How long a client waits for an answer before retrying (milliseconds).
    pub timeout_ms: u64,
    /// Sends per operation, the first included; after the last times out, it is `Unknown`.
    pub attempts: u32,
    /// One-way latency between a client and any node (milliseconds, uniform range).
    pub latency_ms: (u64, u64),
    /// Each client sends each operation's first try to node `client mod nodes` instead of a
    /// random node (or the last leader it heard of): the clients are spread over the nodes.
    pub spread: bool,
    /// Each client keeps a node hint per key (the workload says which key a request is for),
    /// learned from answers and redirects, instead of one hint for every request. Off by
    /// default; written to a scenario file only when on.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub route_by_key: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            count: 0,
            ops: 0,
            start_ms: 0,
            think_ms: (0, 10),
            timeout_ms: 500,
            attempts: 3,
            latency_ms: (1, 2),
            spread: false,
            route_by_key: false,
        }
    }
}

impl ClientConfig {
    /// The most clients a run may have.
    pub const MAX_CLIENTS: u32 = 10_000;

    /// Checks the values; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), FieldError> {
        let err = |f: &str, r: String| Err(FieldError::new(f, r));
        for (name, (lo, hi)) in [("think_ms", self.think_ms), ("latency_ms", self.latency_ms)] {
            if lo > hi {
                return err(
                    name,
                    format!("({lo}, {hi}): the lower bound is above the upper"),
                );
            }
        }
        if self.count > Self::MAX_CLIENTS {
            return err(
                "count",
                format!(
                    "{} clients is more than the limit of {}",
                    self.count,
                    Self::MAX_CLIENTS
                ),
            );
        }
        if self.count > 0 && self.ops == 0 {
            return err(
                "ops",
                format!(
                    "{} clients with 0 operations each would do nothing: set ops (operations per client)",
                    self.count
                ),
            );
        }
        if self.count > 0 && self.timeout_ms == 0 {
            return err("timeout_ms", "must be positive".into());
        }
        if self.count > 0 && self.attempts == 0 {
            return err("attempts", "must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_config_validation() {
        assert!(ClientConfig::default().validate().is_ok());
        let bad = ClientConfig {
            count: 1,
            ops: 1,
            attempts: 0,
            ..ClientConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "attempts");
        let idle = ClientConfig {
            count: 5,
            ..ClientConfig::default()
        };
        let err = idle.validate().unwrap_err();
        assert_eq!(err.field, "ops");
        assert!(
            err.rule.contains("5 clients with 0 operations"),
            "{}",
            err.rule
        );
        let bad = ClientConfig {
            think_ms: (5, 1),
            ..ClientConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "think_ms");
    }
}
