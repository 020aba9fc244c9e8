//! `simlab` with this exercise's acceptor inside both Paxos protocols.

fn main() -> std::process::ExitCode {
    simlab::main_with(exercise_paxos_acceptor::code())
}
