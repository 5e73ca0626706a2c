//! Fuzz target `transport_datagram`: see `sgmp_tests::fuzz::transport_datagram`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sgmp_tests::fuzz::transport_datagram(data);
});
