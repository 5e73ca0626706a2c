//! Shared code for the sgmp command-line tools (`sgmpd`, `sgmpctl`, `sgmp-sim`,
//! `sgmp-load`, `sgmp-chaos`).
#![deny(missing_docs)]
pub mod chaos;
pub mod client_mode;
pub mod control;
pub mod daemon;
pub mod load;
pub mod logcheck;
pub mod sim;
