//! Bad input never panics, hangs or runs away: the inputs that once did (fuzz regressions),
//! mutated scenario files (a stable stand-in for the fuzzer, run in CI), and the extreme value
//! of every numeric field of a scenario.

mod common;

use proptest::prelude::*;
use simlab_protocols::Scenario;
use simlab_protocols::shrink::to_ron;
use simlab_sim::{Fault, NemesisConfig, NemesisKind, ScheduledFault};
use simlab_tests::fuzz::{self, Fate};
use std::path::Path;

fn files(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(common::root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    out.sort();
    out
}

#[test]
fn inputs_that_once_broke_simlab_are_refused_cleanly() {
    let scenarios = files("tests/fuzz-regressions/scenario");
    assert!(scenarios.len() >= 9, "{scenarios:?}");
    for path in scenarios {
        let bytes = std::fs::read(&path).unwrap();
        // Each of these is nonsense: it must be rejected with an error, before any run.
        let text = String::from_utf8_lossy(&bytes);
        let err = Scenario::parse(&path, &text).expect_err(&path.display().to_string());
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        assert_eq!(fuzz::scenario(&bytes), Fate::Rejected, "{}", path.display());
    }
    for path in files("tests/fuzz-regressions/lincheck") {
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(fuzz::history(&bytes), Fate::Rejected, "{}", path.display());
    }
}

/// The numeric literals of a RON text: (start, end) byte ranges.
fn numbers(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = (bytes[i].is_ascii_digit() || bytes[i] == b'-')
            && (i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_'));
        if starts {
            let start = i;
            i += 1;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if i - start > usize::from(bytes[start] == b'-') {
                out.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// A scenario that sets every field the format has, every fault and every nemesis kind.
fn every_field() -> String {
    let mut s = common::scenario("2pc-chaos");
    s.faults = [
        Fault::Partition(vec![vec![0, 1], vec![2, 3]]),
        Fault::Isolate(1),
        Fault::CutOneWay { from: 0, to: 1 },
        Fault::Bridge {
            left: vec![0],
            right: vec![2],
            bridge: 1,
        },
        Fault::Crash(1),
        Fault::Restart(1),
        Fault::Pause(1),
        Fault::Resume(1),
        Fault::ClockSkew {
            node: 1,
            offset_ms: 5,
            drift_ppm: 10,
        },
        Fault::Heal,
    ]
    .into_iter()
    .map(|fault| ScheduledFault { at_ms: 100, fault })
    .collect();
    s.nemesis = Some(NemesisConfig {
        kinds: NemesisKind::ALL.to_vec(),
        interval_ms: (10, 20),
        duration_ms: (10, 20),
        start_ms: 0,
        end_ms: 500,
    });
    s.network.links.push(simlab_sim::network::LinkOverride {
        from: 0,
        to: 1,
        link: Default::default(),
    });
    to_ron(&s)
}

const EXTREMES: &[&str] = &[
    "0",
    "1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "-9223372036854775808",
    "9223372036854775807",
    "1e308",
];

/// Every numeric field of every protocol's settings and of the scenario, set to each extreme
/// value in turn: accepted or refused, never a panic, never a runaway run.
#[test]
fn the_extreme_value_of_every_numeric_field_is_handled() {
    let base = every_field();
    // The protocol's settings as written, from `protocol: ` to the next field.
    let start = base.find("protocol: ").unwrap() + "protocol: ".len();
    let settings = base[start..].split(",\n    nodes").next().unwrap();
    let mut texts = vec![base.clone()];
    for protocol in ["Raft()", "ThreePhaseCommit()", "Counter()"] {
        texts.push(base.replacen(settings, protocol, 1));
    }
    let (mut accepted, mut rejected) = (0, 0);
    for text in &texts {
        assert!(
            Scenario::parse(Path::new("x.ron"), text).is_ok(),
            "the base text must be valid:\n{text}"
        );
        for (start, end) in numbers(text) {
            for value in EXTREMES {
                let mutated = format!("{}{value}{}", &text[..start], &text[end..]);
                match fuzz::scenario(mutated.as_bytes()) {
                    Fate::Accepted => accepted += 1,
                    Fate::Rejected => rejected += 1,
                }
            }
        }
    }
    println!("extreme values: {accepted} accepted (and run), {rejected} refused");
    assert!(accepted > 0 && rejected > 0);
}

fn scenario_texts() -> Vec<String> {
    common::scenario_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// A mutation of a scenario file: what a careless edit or a hostile user does.
#[derive(Clone, Debug)]
enum Mutation {
    FlipByte(usize, u8),
    Truncate(usize),
    ReplaceNumber(usize, usize),
    DeleteRange(usize, usize),
    DuplicateLine(usize),
}

fn apply(text: &str, m: &Mutation) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let n = bytes.len().max(1);
    match *m {
        Mutation::FlipByte(at, bit) => bytes[at % n] ^= 1 << (bit % 8),
        Mutation::Truncate(at) => bytes.truncate(at % n),
        Mutation::ReplaceNumber(which, value) => {
            let found = numbers(text);
            if !found.is_empty() {
                let (start, end) = found[which % found.len()];
                let value = EXTREMES[value % EXTREMES.len()];
                bytes = format!("{}{value}{}", &text[..start], &text[end..]).into_bytes();
            }
        }
        Mutation::DeleteRange(at, len) => {
            let start = at % n;
            let end = (start + len % 64).min(bytes.len());
            bytes.drain(start..end);
        }
        Mutation::DuplicateLine(which) => {
            let lines: Vec<&str> = text.lines().collect();
            let i = which % lines.len().max(1);
            let mut out: Vec<&str> = lines.clone();
            out.insert(i, lines[i]);
            bytes = out.join("\n").into_bytes();
        }
    }
    bytes
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::FlipByte(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::ReplaceNumber(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::DeleteRange(a, b)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Mutated scenario files are accepted and run, or refused with an error that names the
    /// file; never a panic.
    #[test]
    fn mutated_scenarios_are_accepted_or_refused_cleanly(
        which in any::<usize>(),
        m in mutation(),
    ) {
        let texts = scenario_texts();
        let text = &texts[which % texts.len()];
        let bytes = apply(text, &m);
        if let Ok(mutated) = std::str::from_utf8(&bytes)
            && let Err(e) = Scenario::parse(Path::new("mutated.ron"), mutated)
        {
            prop_assert!(e.to_string().starts_with("mutated.ron"), "{}", e);
        }
        fuzz::scenario(&bytes);
    }
}
