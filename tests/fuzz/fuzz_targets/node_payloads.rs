//! Fuzz target `node_payloads`: see `sgmp_tests::fuzz::node_payloads`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sgmp_tests::fuzz::node_payloads(data);
});
