//! `simlab` with this exercise's `transfers` inside the rebalancing store.

fn main() -> std::process::ExitCode {
    simlab::main_with(exercise_ring_transfers::code())
}
