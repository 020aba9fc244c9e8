//! `simlab` with this exercise's rules inside every Raft server.

fn main() -> std::process::ExitCode {
    simlab::main_with(exercise_raft_rules::code())
}
