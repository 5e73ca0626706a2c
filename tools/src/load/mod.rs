//! `sgmp-load`: load generators and measurements, one module per mode.
//!
//! Each mode takes its own flags (a [`clap::Args`] struct), runs for a bounded time and
//! returns a report that renders either as a human table or as exactly one JSON object.
//!
//! Modes: [`transport`] (the reliable channel against raw UDP and TCP on loopback).
//! `view-change`, `join` and `churn` will land as sibling modules.

pub mod report;
pub mod transport;

pub use report::Figures;
