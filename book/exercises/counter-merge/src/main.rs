//! `simlab` with this exercise's merge inside the counter protocol.

fn main() -> std::process::ExitCode {
    simlab::main_with(exercise_counter_merge::code())
}
