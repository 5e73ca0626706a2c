//! Shared code for the sgmp command-line tools (`sgmpd`, `sgmpctl`, `sgmp-load`, `sgmp-sim`).
#![deny(missing_docs)]
pub mod load;
pub mod sim;
