//! Scenario files: parse, validate, and run the valid ones with small limits.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    simlab_tests::fuzz::scenario(data);
});
