//! Fuzz target `engine_sequence`: see `sgmp_tests::fuzz::engine_sequence`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sgmp_tests::fuzz::engine_sequence(data);
});
