//! `simlab`: run, sweep, shrink and replay deterministic distributed-systems simulations.
//!
//! The binary is [`main_with`] with no learner code. An exercise crate's binary is the same
//! command line with the learner's functions plugged into the protocols (see
//! `simlab_protocols::learner`), so every command runs the learner's code.

use clap::Parser;
pub use simlab_protocols::LearnerCode;
use std::process::ExitCode;

mod bench;
mod cli;
mod compare;
pub mod diagram;
mod epidemic;
mod matrix;
pub mod report;
mod ring_stats;
mod schedule;
mod summary;
mod sweep;
mod ui;
mod wall;

/// Runs the `simlab` command line on this process's arguments, with `code` in the protocols.
pub fn main_with(code: LearnerCode) -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::dispatch(cli, &code) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
