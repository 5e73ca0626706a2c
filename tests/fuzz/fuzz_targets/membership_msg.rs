//! Fuzz target `membership_msg`: see `sgmp_tests::fuzz::membership_msg`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sgmp_tests::fuzz::membership_msg(data);
});
