//! `simlab` with this exercise's termination rule inside every 3PC participant.

fn main() -> std::process::ExitCode {
    simlab::main_with(exercise_commit_termination::code())
}
