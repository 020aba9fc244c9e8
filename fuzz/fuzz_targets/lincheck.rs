//! Histories for `simlab lincheck`: every reader, then the checker with a small budget.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    simlab_tests::fuzz::history(data);
});
