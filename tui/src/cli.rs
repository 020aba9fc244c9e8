//! Command-line parsing and dispatch.

use crate::report;
use crate::wall::Stopwatch;
use clap::{Parser, Subcommand};
use simlab_protocols::{RunOptions, Scenario, registry};
use simlab_sim::TraceMode;
use simlab_sim::trace::write_jsonl;
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic distributed-systems simulator and teaching lab.
#[derive(Parser, Debug)]
#[command(name = "simlab", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one scenario with one seed and report what happened.
    ///
    /// Exit code 0 when the scenario's `expect` is met, 1 when it is not, 2 for bad input.
    Run {
        /// The scenario file (RON).
        file: PathBuf,
        /// The seed (default: the scenario's own).
        #[arg(long)]
        seed: Option<u64>,
        /// Print one JSON object instead of the readable summary.
        #[arg(long)]
        json: bool,
        /// Write every step as JSON lines to this file (written whole or not at all).
        #[arg(long, value_name = "OUT.jsonl")]
        trace: Option<PathBuf>,
    },
}

/// Runs the command; `Err` is bad input (exit code 2).
pub fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Run {
            file,
            seed,
            json,
            trace,
        } => run(file, seed, json, trace),
    }
}

fn run(
    file: PathBuf,
    seed: Option<u64>,
    json: bool,
    trace: Option<PathBuf>,
) -> Result<ExitCode, String> {
    let loaded = Scenario::load(&file).map_err(|e| e.to_string())?;
    let scenario = &loaded.scenario;
    let options = RunOptions {
        seed,
        trace: if trace.is_some() {
            TraceMode::Full
        } else {
            TraceMode::HashOnly
        },
        stop_on_violation: false,
    };
    let clock = Stopwatch::start();
    let (outcome, run) = registry::run(scenario, &options);
    let elapsed = clock.elapsed();
    if let Some(path) = &trace {
        write_jsonl(path, run.records())
            .map_err(|e| format!("{}: cannot write the trace: {e}", path.display()))?;
    }
    let expect_met = scenario.expect.is_met(&outcome);
    let summary = report::RunSummary {
        file: &file,
        scenario,
        outcome: &outcome,
        run: run.as_ref(),
        expect_met,
        elapsed,
    };
    if json {
        println!("{}", summary.json());
    } else {
        print!("{}", summary.text());
    }
    Ok(if expect_met {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
