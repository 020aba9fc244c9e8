//! `simlab` with this exercise's fence check inside the lock lab's storage.

fn main() -> std::process::ExitCode {
    simlab::main_with(exercise_lock_fence::code())
}
