//! `simlab`: run, sweep, shrink and replay deterministic distributed-systems simulations.

use clap::Parser;
use std::process::ExitCode;

mod bench;
mod cli;
mod report;
mod sweep;
mod ui;
mod wall;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}
