//! `simlab ring-stats`: the theory of consistent hashing, measured beside its predictions.

use simlab_protocols::ring::theory::{self, Estimate, Row, Strategy};
use std::fmt::Write as _;
use std::process::ExitCode;

/// The largest sizes the command accepts: a ring of at most four million virtual nodes (64 MiB)
/// and ten million keys, so a typo cannot ask for hours of work or all the memory.
const MAX_NODES: u32 = 100_000;
const MAX_POINTS: u64 = 4_000_000;
const MAX_KEYS: u32 = 10_000_000;
const MAX_TRIALS: u32 = 100_000;
/// How far a measurement may sit from its prediction, in standard errors, before the table
/// marks it.
pub const SIGMAS: f64 = 4.0;

/// What to measure (the command's options).
#[derive(clap::Args, Debug)]
pub struct Request {
    /// Cluster sizes before the join or leave, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100, 1000])]
    pub nodes: Vec<u32>,
    /// Virtual nodes per ring member, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10, 100, 1000])]
    pub vnodes: Vec<u32>,
    /// Keys placed in each trial.
    #[arg(long, default_value_t = 100_000)]
    pub keys: u32,
    /// Trials (ring seeds) per row; by default more for small rings, at least 4.
    #[arg(long)]
    pub trials: Option<u32>,
    /// The first trial's seed; the others follow.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bounded loads' epsilon: no member holds more than ceil((1+epsilon)·keys/members).
    #[arg(long, default_value_t = 0.25)]
    pub epsilon: f64,
    /// One JSON object instead of the tables.
    #[arg(long)]
    pub json: bool,
}

fn check(request: &Request) -> Result<(), String> {
    if request.nodes.is_empty() || request.vnodes.is_empty() {
        return Err("--nodes and --vnodes need at least one value each".into());
    }
    for &n in &request.nodes {
        if !(2..=MAX_NODES).contains(&n) {
            return Err(format!("--nodes {n}: must be between 2 and {MAX_NODES}"));
        }
        for &v in &request.vnodes {
            let points = u64::from(n + 1) * u64::from(v);
            if v == 0 || points > MAX_POINTS {
                return Err(format!(
                    "--vnodes {v} with --nodes {n}: a ring of {n}+1 members needs 1 to \
                     {MAX_POINTS} virtual nodes in all ({points} asked)"
                ));
            }
        }
    }
    if !(1..=MAX_KEYS).contains(&request.keys) {
        return Err(format!(
            "--keys {}: must be between 1 and {MAX_KEYS}",
            request.keys
        ));
    }
    if let Some(t) = request.trials
        && !(2..=MAX_TRIALS).contains(&t)
    {
        return Err(format!(
            "--trials {t}: must be between 2 and {MAX_TRIALS} (a standard error needs two)"
        ));
    }
    if !(request.epsilon.is_finite() && request.epsilon > 0.0 && request.epsilon <= 100.0) {
        return Err(format!(
            "--epsilon {}: must be a number above 0 and at most 100",
            request.epsilon
        ));
    }
    Ok(())
}

/// Measures the table and prints it.
pub fn run(request: &Request) -> Result<ExitCode, String> {
    check(request)?;
    let specs = theory::specs(
        &request.nodes,
        &request.vnodes,
        request.keys,
        request.trials,
        request.seed,
        request.epsilon,
    );
    let total: u64 = specs.iter().map(|s| u64::from(s.trials)).sum();
    let mut done = 0u64;
    let mut shown = u64::MAX;
    let rows: Vec<Row> = specs
        .into_iter()
        .map(|spec| {
            theory::row(spec, || {
                done += 1;
                // Percent steps, not every trial: a terminal redraws slowly.
                if done * 100 / total != shown {
                    shown = done * 100 / total;
                    eprint!("\r{done}/{total} trials");
                }
            })
        })
        .collect();
    eprintln!();
    if request.json {
        println!(
            "{}",
            serde_json::json!({
                "keys": request.keys,
                "first_seed": request.seed,
                "epsilon": request.epsilon,
                "sigmas": SIGMAS,
                "rows": rows,
            })
        );
    } else {
        print!("{}", render(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// A measurement as `value±standard error`, marked `!` when it is more than [`SIGMAS`]
/// standard errors from its prediction.
fn measured(e: &Estimate, digits: usize) -> String {
    let mark = if e.agrees(SIGMAS) { "" } else { "!" };
    format!(
        "{:.digits$}±{:.digits$}{mark}",
        e.measured, e.standard_error
    )
}

fn expected(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
}

fn vnodes(row: &Row) -> String {
    if row.spec.strategy.has_vnodes() {
        row.spec.vnodes.to_string()
    } else {
        "-".to_string()
    }
}

/// Every prediction of a row, for the agreement count.
fn estimates(row: &Row) -> Vec<&Estimate> {
    let mut all = vec![&row.join_moved, &row.leave_moved, &row.key_cv];
    if let Some(space) = &row.space {
        all.extend([
            &space.cv,
            &space.max_over_mean,
            &space.low.beyond,
            &space.high.beyond,
        ]);
    }
    all.retain(|e| e.expected.is_some());
    all
}

/// The tables as text.
pub fn render(rows: &[Row]) -> String {
    let mut out = String::new();
    let Some(first) = rows.first() else {
        return out;
    };
    let _ = writeln!(
        out,
        "Consistent hashing, measured: {} keys per trial, ring seeds from {}, bounded loads at \
         epsilon = {}.\nMeasured figures are mean±standard error over the trials; `!` marks one \
         more than {SIGMAS} standard errors from its prediction.",
        first.spec.keys, first.spec.first_seed, first.spec.epsilon
    );
    let _ = writeln!(
        out,
        "\nKeys moved when member n+1 joins and when one of n leaves (fraction of all keys)\n\
         {:<11} {:>6} {:>5} {:>6} {:>19} {:>8} {:>10} {:>19} {:>8}",
        "strategy",
        "n",
        "v",
        "trials",
        "join moved",
        "expected",
        "all to new",
        "leave moved",
        "expected"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<11} {:>6} {:>5} {:>6} {:>19} {:>8} {:>10} {:>19} {:>8}",
            row.spec.strategy.name(),
            row.spec.nodes,
            vnodes(row),
            row.spec.trials,
            measured(&row.join_moved, 5),
            expected(row.join_moved.expected, 5),
            if row.all_to_newcomer { "yes" } else { "no" },
            measured(&row.leave_moved, 5),
            expected(row.leave_moved.expected, 5),
        );
    }
    let _ = writeln!(
        out,
        "\nKeys per member: sd/mean and max/mean of a member's key count\n\
         {:<11} {:>6} {:>5} {:>17} {:>8} {:>15} {:>8}",
        "strategy", "n", "v", "sd/mean", "expected", "max/mean", "bound"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<11} {:>6} {:>5} {:>17} {:>8} {:>15} {:>8}",
            row.spec.strategy.name(),
            row.spec.nodes,
            vnodes(row),
            measured(&row.key_cv, 4),
            expected(row.key_cv.expected, 4),
            format!(
                "{:.3}±{:.3}",
                row.key_max_over_mean.measured, row.key_max_over_mean.standard_error
            ),
            expected(row.key_max_bound, 3),
        );
    }
    let _ = writeln!(
        out,
        "\nThe ring's key-space shares (share/mean; exact predictions from Beta(v, (n-1)v))\n\
         {:<6} {:>5} {:>17} {:>8} {:>6} {:>15} {:>6} {:>21} {:>13}",
        "n", "v", "sd/mean", "exact", "1/√v", "max/mean", "H_n", "99% range", "expected"
    );
    for row in rows {
        let Some(space) = &row.space else { continue };
        let _ = writeln!(
            out,
            "{:<6} {:>5} {:>17} {:>8} {:>6} {:>15} {:>6} {:>21} {:>13}",
            row.spec.nodes,
            row.spec.vnodes,
            measured(&space.cv, 4),
            expected(space.cv.expected, 4),
            format!("{:.3}", space.approx_cv),
            measured(&space.max_over_mean, 3),
            expected(space.max_over_mean.expected, 2),
            format!(
                "{:.3}–{:.3}{}",
                space.low.measured,
                space.high.measured,
                if space.low.beyond.agrees(SIGMAS) && space.high.beyond.agrees(SIGMAS) {
                    ""
                } else {
                    "!"
                }
            ),
            format!("{:.3}–{:.3}", space.low.expected, space.high.expected),
        );
    }
    let all: Vec<&Estimate> = rows.iter().flat_map(estimates).collect();
    let agree = all.iter().filter(|e| e.agrees(SIGMAS)).count();
    let bounded_ok = rows.iter().all(|r| {
        r.key_max_bound
            .is_none_or(|bound| r.worst_key_max_over_mean <= bound + 1e-12)
    });
    let _ = writeln!(
        out,
        "\n{agree} of {} predictions agree within {SIGMAS} standard errors.{}\n\
         The 99% range agrees when the fraction of shares beyond each predicted end is within\n\
         {SIGMAS} standard errors of 0.5%. Modulo and bounded loads move keys between old\n\
         members too (`all to new` = no); jump hash can only remove its last bucket.",
        all.len(),
        if rows
            .iter()
            .any(|r| r.spec.strategy == Strategy::BoundedLoads)
        {
            if bounded_ok {
                " No bounded-load member ever exceeded its capacity."
            } else {
                " A bounded-load member exceeded its capacity!"
            }
        } else {
            ""
        }
    );
    out
}
