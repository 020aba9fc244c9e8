//! `simlab` with this exercise's merge inside the gossip cache.

fn main() -> std::process::ExitCode {
    simlab::main_with(exercise_gossip_merge::code())
}
