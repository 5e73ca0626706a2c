//! Cross-crate tests of sgmp. The tests themselves live in `tests/tests/`; this library
//! holds what they share:
//!
//! - [`model`]: a stateright model of a cluster of real S-GMP engines (run by
//!   `tests/tests/model_check.rs`, bounded in `make test`, deep in `make check-model`);
//! - [`fuzz`]: the bodies of the fuzz targets (`tests/fuzz/`), shared with their
//!   proptest equivalents (`tests/tests/fuzz_equivalents.rs`).

pub mod fuzz;
pub mod model;
