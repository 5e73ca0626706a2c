//! Criterion benchmarks live in `benches/benches/`; what they share with the examples
//! (the in-memory world of node cores) lives here.
#![deny(missing_docs)]

pub mod world;
