//! Workspace-level tests live in `tests/tests/`. This library holds the fuzzing harnesses, so
//! the cargo-fuzz targets (`fuzz/`, nightly) and the stable regression tests run the very same
//! code on an input.

pub mod fuzz {
    //! What a fuzz input goes through. Each harness must return normally for any input: a
    //! panic, a hang or a runaway allocation is a bug.

    use simlab_protocols::{RunOptions, Scenario, registry};
    use simlab_sim::linearizability::formats::{
        Format, detect, parse_jepsen, parse_json_kv, parse_json_register, parse_porcupine_kv,
    };
    use simlab_sim::linearizability::models::{Kv, Register};
    use simlab_sim::linearizability::{Verdict, check_within};
    use std::path::Path;

    /// The most steps a fuzzed scenario runs, so each input takes about a millisecond.
    pub const MAX_STEPS: u64 = 5_000;
    /// The checker's budget per fuzzed history.
    pub const MAX_SEARCH: usize = 20_000;

    /// What became of a fuzz input, for the statistics.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Fate {
        /// Not text, or refused with an error.
        Rejected,
        /// Accepted (and, for a scenario, run).
        Accepted,
    }

    /// A scenario file: parse and validate it; if valid, run it with small limits.
    pub fn scenario(data: &[u8]) -> Fate {
        let Ok(text) = std::str::from_utf8(data) else {
            return Fate::Rejected;
        };
        let Ok(mut scenario) = Scenario::parse(Path::new("fuzz.ron"), text) else {
            return Fate::Rejected;
        };
        scenario.limits.max_steps = scenario.limits.max_steps.min(MAX_STEPS);
        scenario.limits.max_queue = scenario.limits.max_queue.min(100_000);
        let (outcome, _) = registry::run(&scenario, &RunOptions::default());
        // Whatever happened, the outcome must be reportable.
        let _ = (outcome.trace_hash_hex(), scenario.expect.is_met(&outcome));
        Fate::Accepted
    }

    /// A history for `simlab lincheck`: detect its format, read it, and check it with a small
    /// budget under the model its format implies (the JSON lines under both).
    pub fn history(data: &[u8]) -> Fate {
        let Ok(text) = std::str::from_utf8(data) else {
            return Fate::Rejected;
        };
        match detect(text) {
            Ok(Format::JepsenLog) => match parse_jepsen(text) {
                Ok(ops) => {
                    let _: Verdict = check_within(&Register::new(), &ops, MAX_SEARCH);
                    Fate::Accepted
                }
                Err(_) => Fate::Rejected,
            },
            Ok(Format::PorcupineKv) => match parse_porcupine_kv(text) {
                Ok(ops) => {
                    let _: Verdict = check_within(&Kv, &ops, MAX_SEARCH);
                    Fate::Accepted
                }
                Err(_) => Fate::Rejected,
            },
            Ok(Format::SimlabJson) => {
                let kv = parse_json_kv(text).map(|ops| check_within(&Kv, &ops, MAX_SEARCH));
                let register = parse_json_register(text)
                    .map(|ops| check_within(&Register::new(), &ops, MAX_SEARCH));
                if kv.is_ok() || register.is_ok() {
                    Fate::Accepted
                } else {
                    Fate::Rejected
                }
            }
            Err(_) => Fate::Rejected,
        }
    }
}
