//! The `simlab` command line: the protocols as they are, with no learner code.

/// mimalloc (its v2 line) rather than the system allocator. An exhaustive search allocates and
/// frees a few dozen small blocks per transition, and with `--jobs` a state made on one thread
/// is freed on another: there glibc's allocator made two threads slower than one. Nothing a
/// run computes depends on the allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    simlab::main_with(simlab::LearnerCode::new())
}

/// Tells mimalloc to keep the memory it frees instead of handing it back to the kernel 10 ms
/// later (its default "purge delay").
///
/// A breadth-first search frees a level's states while it fills the next, so memory is freed
/// and wanted again all the time. Handed back, every reuse came as fresh pages the kernel had
/// to zero: a fifth of a Paxos search's wall time went to page faults and zeroing. The peak,
/// which is what `--max-memory` and the bench's figures watch, is the same either way; a
/// process only keeps what it once held until it exits.
fn keep_freed_memory() {
    use std::ffi::{c_int, c_long};
    // mimalloc.h (v2.x, pinned by Cargo.lock): `mi_option_purge_delay` is 15 in `mi_option_e`.
    const PURGE_DELAY: c_int = 15;
    const DEFAULT_PURGE_DELAY_MS: c_long = 10;
    const NEVER: c_long = -1;
    #[allow(unsafe_code)]
    // SAFETY: plain functions of the linked mimalloc taking and returning integers; options may
    // be read and set at any time.
    unsafe extern "C" {
        safe fn mi_version() -> c_int;
        safe fn mi_option_get(option: c_int) -> c_long;
        safe fn mi_option_set(option: c_int, value: c_long);
    }
    // Only where the option is where we expect it: another major version may number its
    // options otherwise, and then the default stays.
    if (20_000..30_000).contains(&mi_version())
        && mi_option_get(PURGE_DELAY) == DEFAULT_PURGE_DELAY_MS
    {
        mi_option_set(PURGE_DELAY, NEVER);
    }
}
