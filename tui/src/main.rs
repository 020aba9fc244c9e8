//! The `simlab` command line: the protocols as they are, with no learner code.

fn main() -> std::process::ExitCode {
    simlab::main_with(simlab::LearnerCode::new())
}
