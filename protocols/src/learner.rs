//! Learner code inside the real protocol.
//!
//! A protocol names the functions a learner may write as [`Slot`]s: a name and the protocol's
//! own (reference) implementation. A node picks its function from the [`LearnerCode`] of its
//! run when it is built, so the learner's function runs inside the real protocol, under every
//! fault, sweep and invariant, exactly where the reference would.
//!
//! An exercise crate supplies its function by running the `simlab` command line with it:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     simlab::main_with(LearnerCode::new().with(&counter::MERGE, my_merge))
//! }
//! ```
//!
//! so `cargo run -p exercise-… -- sweep scenarios/….ron` sweeps the learner's code, and the
//! exercise's tests do the same in process through [`crate::Scenario::code`]. The function is
//! fixed for the whole run, so determinism is untouched: a run is still a function of the
//! scenario, the seed and the code.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A function of a protocol that a learner may supply. `F` is a function pointer type, e.g.
/// `fn(&mut [u64], &[u64])`.
#[derive(Debug)]
pub struct Slot<F> {
    name: &'static str,
    reference: F,
}

impl<F: Copy + Send + Sync + 'static> Slot<F> {
    /// A slot called `name` (`"protocol.function"`) whose reference implementation is
    /// `reference`.
    pub const fn new(name: &'static str, reference: F) -> Slot<F> {
        Slot { name, reference }
    }

    /// Its name, as `simlab` reports it.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The protocol's own implementation.
    pub fn reference(&self) -> F {
        self.reference
    }

    /// The function a node runs: the learner's, if `code` supplies one, else the reference.
    pub fn pick(&self, code: &LearnerCode) -> F {
        code.functions
            .get(self.name)
            .and_then(|f| f.downcast_ref::<F>())
            .copied()
            .unwrap_or(self.reference)
    }
}

/// Functions supplied by a learner, by slot name. Empty by default: every protocol runs its own.
#[derive(Clone, Default)]
pub struct LearnerCode {
    functions: BTreeMap<&'static str, Arc<dyn Any + Send + Sync>>,
}

impl LearnerCode {
    /// No learner code.
    pub fn new() -> LearnerCode {
        LearnerCode::default()
    }

    /// This code with `function` in `slot`.
    pub fn with<F: Copy + Send + Sync + 'static>(mut self, slot: &Slot<F>, function: F) -> Self {
        self.functions.insert(slot.name, Arc::new(function));
        self
    }

    /// The slots filled, in name order.
    pub fn names(&self) -> Vec<&'static str> {
        self.functions.keys().copied().collect()
    }

    /// Whether no slot is filled.
    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

impl fmt::Debug for LearnerCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.functions.keys()).finish()
    }
}

/// Two sets of learner code are equal when they fill the same slots (functions themselves
/// cannot be compared meaningfully).
impl PartialEq for LearnerCode {
    fn eq(&self, other: &Self) -> bool {
        self.names() == other.names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u64) -> u64 {
        x * 2
    }
    fn triple(x: u64) -> u64 {
        x * 3
    }
    static TIMES: Slot<fn(u64) -> u64> = Slot::new("test.times", double);

    #[test]
    fn a_slot_runs_the_learners_function_when_one_is_given() {
        assert_eq!(TIMES.pick(&LearnerCode::new())(5), 10);
        let code = LearnerCode::new().with(&TIMES, triple);
        assert_eq!(TIMES.pick(&code)(5), 15);
        assert_eq!(code.names(), vec!["test.times"]);
        assert_eq!(format!("{code:?}"), "{\"test.times\"}");
    }

    #[test]
    fn code_for_another_slot_leaves_this_one_alone() {
        static OTHER: Slot<fn(u64) -> u64> = Slot::new("test.other", double);
        let code = LearnerCode::new().with(&OTHER, triple);
        assert_eq!(TIMES.pick(&code)(5), 10);
    }
}
