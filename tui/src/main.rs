//! The `simlab` command line: the protocols as they are, with no learner code.

/// mimalloc (its v2 line) rather than the system allocator. An exhaustive search allocates and
/// frees a few dozen small blocks per transition, and with `--jobs` a state made on one thread
/// is freed on another: there glibc's allocator made two threads slower than one. Nothing a
/// run computes depends on the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    simlab::main_with(simlab::LearnerCode::new())
}
