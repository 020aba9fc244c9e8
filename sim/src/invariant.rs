//! Invariants: named properties of a run, checked from outside the nodes.
//!
//! Four kinds, after stateright and TigerBeetle's simulator:
//! - **always**: must hold after every step (e.g. at most one leader per term). Checked on a
//!   read-only [`World`] after each step; the first failing step is reported.
//! - **eventually**: must hold at the end, once the faults are over (e.g. every live node applied
//!   every committed entry). The outcome also reports when it started holding for good.
//! - **sometimes**: must have held at least once (e.g. a leader was elected). Catches runs that
//!   pass only because nothing happened.
//! - **history**: checked once over the whole client history (e.g. linearizability).

use crate::history::History;
use crate::node::Node;
use crate::world::World;
use serde::{Deserialize, Serialize};
use std::fmt;

/// When an invariant is checked.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum InvariantKind {
    /// After every step.
    Always,
    /// At the end, after the faults are over.
    Eventually,
    /// Must hold at least once.
    Sometimes,
    /// Over the client history, at the end.
    History,
}

impl fmt::Display for InvariantKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvariantKind::Always => "always",
            InvariantKind::Eventually => "eventually",
            InvariantKind::Sometimes => "sometimes",
            InvariantKind::History => "history",
        })
    }
}

/// A named property of a run.
///
/// `check` answers for the world as it is now (`Err` explains why it does not hold); invariants
/// that must remember the past (e.g. leaders of every term so far) keep that in `self`, which is
/// why it takes `&mut self` and why invariants are cloned with the simulation.
pub trait Invariant<P: Node>: InvariantClone<P> + Send + Sync {
    /// Its name, as written in a scenario's `expect`.
    fn name(&self) -> &str;
    /// When it is checked.
    fn kind(&self) -> InvariantKind;
    /// Whether it holds in this world; for history invariants, unused.
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        let _ = world;
        Ok(())
    }
    /// Whether this step left alone everything [`Invariant::check`] reads, so that checking
    /// would change nothing in `self` and give the verdict of the previous check (`Ok` before
    /// the first). Asked of always- and sometimes-invariants before each check; `true` skips
    /// it. The default, `false`, always checks.
    ///
    /// Why: an exhaustive search copies every state it keeps, invariants included, and an
    /// invariant is copied only once it is checked. Most steps change what few invariants read
    /// (a step that writes no durable store makes no acceptance, for example).
    fn unchanged(&self, world: &World<'_, P>) -> bool {
        let _ = world;
        false
    }
    /// Figures the invariant gathered while watching (e.g. how many leaders were elected), as
    /// `(key, value)` pairs for reports.
    fn observations(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }
    /// Whether it holds over the finished history; only history invariants override this.
    fn check_history(&mut self, history: &History<P::Request, P::Response>) -> Result<(), String> {
        let _ = history;
        Ok(())
    }
    /// Why the last check could decide neither way, if it could not (a history check that ran
    /// out of budget returns `Ok` from [`Invariant::check_history`] and says why here). An
    /// undecided check is reported as undecided: neither held nor violated.
    fn undecided(&self) -> Option<String> {
        None
    }
}

/// Cloning boxed invariants (for simulation snapshots).
pub trait InvariantClone<P: Node> {
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Invariant<P>>;
}

impl<P: Node, T: Invariant<P> + Clone + 'static> InvariantClone<P> for T {
    fn clone_box(&self) -> Box<dyn Invariant<P>> {
        Box::new(self.clone())
    }
}

impl<P: Node> Clone for Box<dyn Invariant<P>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// A stateless invariant from a plain function.
pub struct FnInvariant<P: Node> {
    name: &'static str,
    kind: InvariantKind,
    check: fn(&World<'_, P>) -> Result<(), String>,
}

impl<P: Node> Clone for FnInvariant<P> {
    fn clone(&self) -> Self {
        FnInvariant {
            name: self.name,
            kind: self.kind,
            check: self.check,
        }
    }
}

impl<P: Node> FnInvariant<P> {
    /// An invariant called `name`, of this kind, that holds when `check` returns `Ok`.
    pub fn boxed(
        name: &'static str,
        kind: InvariantKind,
        check: fn(&World<'_, P>) -> Result<(), String>,
    ) -> Box<dyn Invariant<P>> {
        Box::new(FnInvariant { name, kind, check })
    }
}

impl<P: Node> Invariant<P> for FnInvariant<P> {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> InvariantKind {
        self.kind
    }
    fn check(&mut self, world: &World<'_, P>) -> Result<(), String> {
        (self.check)(world)
    }
}

/// A protocol's client history.
pub type ProtocolHistory<P> = History<<P as Node>::Request, <P as Node>::Response>;

/// A function that checks a protocol's history.
pub type HistoryCheck<P> = fn(&ProtocolHistory<P>) -> Result<(), String>;

/// A history invariant from a plain function.
pub struct HistoryInvariant<P: Node> {
    name: &'static str,
    check: HistoryCheck<P>,
}

impl<P: Node> Clone for HistoryInvariant<P> {
    fn clone(&self) -> Self {
        HistoryInvariant {
            name: self.name,
            check: self.check,
        }
    }
}

impl<P: Node> HistoryInvariant<P> {
    /// A history invariant called `name` that holds when `check` returns `Ok`.
    pub fn boxed(name: &'static str, check: HistoryCheck<P>) -> Box<dyn Invariant<P>> {
        Box::new(HistoryInvariant { name, check })
    }
}

impl<P: Node> Invariant<P> for HistoryInvariant<P> {
    fn name(&self) -> &str {
        self.name
    }
    fn kind(&self) -> InvariantKind {
        InvariantKind::History
    }
    fn check_history(&mut self, history: &History<P::Request, P::Response>) -> Result<(), String> {
        (self.check)(history)
    }
}
