//! `simlab sweep`: one scenario over a range of seeds, spread over worker threads.
//!
//! Each simulation stays single-threaded; only whole runs go to different threads, and results
//! are reported in seed order, so the output is the same whatever `--jobs` is.

// Threads here run independent simulations side by side; none is shared by two threads.
#![allow(clippy::disallowed_methods)]

use crate::summary::{inspect_command, replay_command};
use crate::wall::{Stopwatch, per_sec};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use simlab_protocols::Scenario;
use simlab_protocols::swarm::{SwarmMix, swarm};
use simlab_protocols::sweep::{SeedOutcome, run_seed};
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Which seeds to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedPlan {
    /// First seed.
    pub start: u64,
    /// Last seed (included, so a range can end at the largest seed there is).
    pub last: u64,
    /// `(k, n)`: run only seeds whose position in the range is `k` modulo `n`.
    pub shard: (u64, u64),
}

impl SeedPlan {
    /// The seeds, in order.
    pub fn seeds(&self) -> Vec<u64> {
        let (k, n) = self.shard;
        (self.start..=self.last)
            .filter(|s| (s - self.start) % n == k)
            .collect()
    }
}

/// The most threads one sweep starts (`--jobs`).
pub const MAX_JOBS: usize = 1_024;

/// The most seeds one sweep runs.
pub const MAX_SEEDS: u64 = 100_000_000;

/// Parses `A..B` (B excluded) or `A..=B` into the first and the last seed.
pub fn parse_range(text: &str) -> Result<(u64, u64), String> {
    parse_range_within(
        text,
        MAX_SEEDS,
        &format!("one sweep runs at most {MAX_SEEDS} (split it with --shard K/N)"),
    )
}

/// [`parse_range`] for a command that runs at most `most` seeds, saying `why` when the range
/// holds more.
pub fn parse_range_within(text: &str, most: u64, why: &str) -> Result<(u64, u64), String> {
    let (first, last) = parse_span("--seeds", text, "a seed")?;
    // Results are kept per seed: a range has a ceiling.
    let count = u128::from(last - first) + 1;
    if count > u128::from(most) {
        return Err(format!("--seeds {text:?} holds {count} seeds; {why}"));
    }
    Ok((first, last))
}

/// A range `A..B` (B excluded) or `A..=B` given to option `flag`, as `(first, last)`; errors
/// name the option and call each bound `noun`.
pub fn parse_span(flag: &str, text: &str, noun: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{flag} {text:?}: expected a range like 0..1000 or 0..=999");
    let (a, b, inclusive) = if let Some((a, b)) = text.split_once("..=") {
        (a, b, true)
    } else if let Some((a, b)) = text.split_once("..") {
        (a, b, false)
    } else {
        return Err(bad());
    };
    let number = |s: &str| {
        s.trim().parse::<u64>().map_err(|e| {
            format!("{flag} {text:?}: {s:?} is not {noun} (a whole number from 0 to 18446744073709551615): {e}")
        })
    };
    let (first, b) = (number(a)?, number(b)?);
    let last = if inclusive {
        b
    } else {
        b.checked_sub(1)
            .filter(|&last| last >= first)
            .ok_or_else(|| format!("{flag} {text:?} is empty"))?
    };
    if last < first {
        return Err(format!("{flag} {text:?} is empty"));
    }
    Ok((first, last))
}

/// Parses `K/N`: the K-th (counting from 0) of N interleaved slices.
pub fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let bad = || format!("--shard {text:?}: expected K/N with 0 <= K < N, e.g. 0/4");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let k: u64 = k.trim().parse().map_err(|_| bad())?;
    let n: u64 = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

/// What a sweep found.
pub struct SweepResult {
    /// Every seed's outcome, in seed order (with `--stop-on-first`, up to the first failure).
    pub outcomes: Vec<SeedOutcome>,
    /// In swarm mode, each outcome's fault mix (same order).
    pub mixes: Vec<Option<SwarmMix>>,
    /// Whether the sweep ran in swarm mode.
    pub swarm: bool,
    /// What the scenario expects of each run.
    pub expect: simlab_sim::Expect,
    /// Wall time.
    pub seconds: f64,
}

impl SweepResult {
    /// Seeds whose run met the scenario's `expect`.
    pub fn expect_met(&self) -> usize {
        self.outcomes.iter().filter(|o| o.expect_met).count()
    }

    /// Seeds with at least one violation.
    pub fn failures(&self) -> impl Iterator<Item = &SeedOutcome> {
        // Seeds that did not pass: failed, or undecided.
        self.outcomes.iter().filter(|o| o.not_passed())
    }
}

/// One seed's result, with its swarm mix if any.
type SeedResult = (SeedOutcome, Option<SwarmMix>);

/// One seed of a sweep: as written, or (swarm) with the seed's own fault mix.
fn one_seed(scenario: &Scenario, seed: u64, swarm_mode: bool) -> SeedResult {
    if swarm_mode && let Some((mixed, mix)) = swarm(scenario, seed) {
        return (run_seed(&mixed, seed, true), Some(mix));
    }
    (run_seed(scenario, seed, true), None)
}

/// Runs `work` on up to `jobs` threads (this one included, no more than `items`), each taking
/// items until none is left. If the system refuses a thread, the workers already running share
/// the items; results go by index, so the output is the same whatever ran them.
pub fn on_workers(jobs: usize, items: usize, work: impl Fn() + Sync) {
    let workers = jobs.clamp(1, items.max(1));
    std::thread::scope(|scope| {
        for _ in 1..workers {
            if std::thread::Builder::new()
                .spawn_scoped(scope, &work)
                .is_err()
            {
                break;
            }
        }
        work();
    });
}

/// Runs the plan on `jobs` threads.
pub fn run(
    scenario: &Scenario,
    plan: &SeedPlan,
    jobs: usize,
    stop_on_first: bool,
    swarm_mode: bool,
    show_progress: bool,
) -> SweepResult {
    let seeds = plan.seeds();
    let clock = Stopwatch::start();
    let next = AtomicUsize::new(0);
    // With --stop-on-first, no worker starts a seed after the earliest failure found so far,
    // so the reported failure is the smallest failing seed whatever the number of jobs.
    let first_failure = AtomicUsize::new(usize::MAX);
    let failures = AtomicU64::new(0);
    let results: Mutex<Vec<Option<SeedResult>>> = Mutex::new(vec![None; seeds.len()]);
    let progress = Progress::new(seeds.len() as u64, show_progress);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= seeds.len() || (stop_on_first && i > first_failure.load(Ordering::Relaxed)) {
                break;
            }
            let (outcome, mix) = one_seed(scenario, seeds[i], swarm_mode);
            if outcome.failed() {
                failures.fetch_add(1, Ordering::Relaxed);
                first_failure.fetch_min(i, Ordering::Relaxed);
            }
            progress.tick(failures.load(Ordering::Relaxed));
            results.lock().expect("no worker panicked")[i] = Some((outcome, mix));
        }
    };
    on_workers(jobs, seeds.len(), work);
    progress.finish();
    let cut = if stop_on_first {
        first_failure.load(Ordering::Relaxed)
    } else {
        usize::MAX
    };
    let (outcomes, mixes) = results
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i <= cut)
        .filter_map(|(_, r)| r)
        .unzip();
    SweepResult {
        outcomes,
        mixes,
        swarm: swarm_mode,
        expect: scenario.expect.clone(),
        seconds: clock.elapsed().as_secs_f64(),
    }
}

/// A progress bar on a terminal; a plain line every so often otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    /// Plain lines on stderr when it is not a terminal.
    lines: bool,
    total: u64,
    done: AtomicU64,
}

impl Progress {
    fn new(total: u64, show: bool) -> Progress {
        let bar = (show && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} seeds, {msg}, {per_sec}, eta {eta}",
            )
            .expect("a valid template");
            bar.set_style(style);
            bar
        });
        let lines = show && bar.is_none();
        Progress {
            bar,
            lines,
            total,
            done: AtomicU64::new(0),
        }
    }

    fn tick(&self, failures: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{failures} failing"));
                bar.inc(1);
            }
            None if self.lines && self.total >= 100 && done.is_multiple_of(self.total / 10) => {
                eprintln!("{done}/{} seeds, {failures} failing", self.total);
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The readable summary.
pub fn text(file: &Path, result: &SweepResult) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let runs = result.outcomes.len();
    let failing: Vec<&SeedOutcome> = result.failures().collect();
    let failed = failing.iter().filter(|o| o.failed()).count();
    let undecided = failing.len() - failed;
    let undecided = if undecided > 0 {
        format!(", {undecided} undecided")
    } else {
        String::new()
    };
    let _ = writeln!(out, "seeds       {runs} run, {failed} failing{undecided}");
    // A scenario that demonstrates a failure expects violations: say how many seeds showed it,
    // so a sweep of it does not read as only a list of failures.
    if result.expect != simlab_sim::Expect::AllHold {
        let _ = writeln!(
            out,
            "expect      {}: met by {} of {runs} seeds",
            result.expect,
            result.expect_met()
        );
    }
    let mut groups: BTreeMap<String, Vec<(&SeedOutcome, String)>> = BTreeMap::new();
    for o in &failing {
        let (group, line) = o.failure().expect("a failing seed");
        groups.entry(group).or_default().push((o, line));
    }
    for (invariant, seeds) in &groups {
        let listed: Vec<String> = seeds
            .iter()
            .take(10)
            .map(|(o, _)| o.seed.to_string())
            .collect();
        let more = if seeds.len() > 10 {
            format!(" … and {} more", seeds.len() - 10)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {invariant}: {} seeds: {}{more}",
            seeds.len(),
            listed.join(", ")
        );
        for (o, line) in seeds.iter().take(3) {
            let _ = writeln!(out, "    seed {:>6}: {line}", o.seed);
            let _ = writeln!(
                out,
                "    replay       {}",
                replay_command(file, o.seed, result.swarm)
            );
            let _ = writeln!(
                out,
                "    inspect      {}",
                inspect_command(file, o.seed, result.swarm)
            );
        }
    }
    let _ = writeln!(
        out,
        "throughput  {:.1} seeds/s ({:.2}s)",
        per_sec(
            runs as u64,
            std::time::Duration::from_secs_f64(result.seconds)
        ),
        result.seconds
    );
    out
}

/// One JSON line per failing seed, then a summary line.
pub fn json_lines(file: &Path, result: &SweepResult) -> Vec<serde_json::Value> {
    let mut lines: Vec<serde_json::Value> = result
        .outcomes
        .iter()
        .zip(&result.mixes)
        .filter(|(o, _)| o.not_passed())
        .map(|(o, mix)| {
            json!({
                "swarm": mix,
                "seed": o.seed,
                "stopped": o.stop.to_string(),
                "limit_hit": o.hit_limit(),
                "undecided": o.undecided.iter().map(|(name, why)| json!({"invariant": name, "why": why})).collect::<Vec<_>>(),
                "violations": o.violations.iter().map(|v| json!({
                    "invariant": v.invariant, "step": v.step, "time": v.time.as_micros(), "message": v.message,
                })).collect::<Vec<_>>(),
                "trace_hash": format!("{:016x}", o.trace_hash),
                "steps": o.steps,
                "replay": replay_command(file, o.seed, result.swarm),
            })
        })
        .collect();
    let mut by_invariant: BTreeMap<String, u64> = BTreeMap::new();
    for o in result.failures() {
        let (group, _) = o.failure().expect("a failing seed");
        *by_invariant.entry(group).or_default() += 1;
    }
    lines.push(json!({
        "summary": true,
        "file": file.display().to_string(),
        "seeds_run": result.outcomes.len(),
        "failing": result.failures().filter(|o| o.failed()).count(),
        "undecided": result.failures().filter(|o| !o.failed()).count(),
        "by_invariant": by_invariant,
        "expect": result.expect.to_string(),
        "expect_met": result.expect_met(),
        "seeds_per_sec": result.outcomes.len() as f64 / result.seconds.max(1e-9),
    }));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_shards_parse_and_partition_the_seeds() {
        assert_eq!(parse_range("0..10"), Ok((0, 9)));
        assert_eq!(parse_range("5..=7"), Ok((5, 7)));
        assert!(parse_range("7..7").unwrap_err().contains("is empty"));
        assert!(parse_range("0..0").unwrap_err().contains("is empty"));
        assert!(
            parse_range("x..3")
                .unwrap_err()
                .contains("\"x\" is not a seed")
        );
        let top = "18446744073709551615..=18446744073709551615";
        assert_eq!(parse_range(top), Ok((u64::MAX, u64::MAX)));
        assert!(
            parse_range("0..=18446744073709551615")
                .unwrap_err()
                .contains("--shard")
        );
        let too_many = parse_range("0..18446744073709551615").unwrap_err();
        assert!(too_many.contains("--shard"), "{too_many}");
        assert!(parse_range("0..100000000").is_ok());
        assert_eq!(parse_shard("1/3"), Ok((1, 3)));
        assert!(parse_shard("3/3").is_err());
        assert!(parse_shard("0/0").is_err());
        let all: Vec<u64> = (0..3)
            .flat_map(|k| {
                SeedPlan {
                    start: 10,
                    last: 19,
                    shard: (k, 3),
                }
                .seeds()
            })
            .collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (10..20).collect::<Vec<_>>(),
            "shards cover the range exactly once"
        );
        assert_eq!(
            SeedPlan {
                start: 10,
                last: 19,
                shard: (1, 3)
            }
            .seeds(),
            vec![11, 14, 17]
        );
    }
}
