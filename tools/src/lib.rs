//! Shared code for the sgmp command-line tools (`sgmpd`, `sgmpctl`, `sgmp-load`, `sgmp-sim`).
pub mod sim;
