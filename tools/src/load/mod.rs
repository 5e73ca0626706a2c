//! `sgmp-load`: load generators and measurements, one module per mode.
//!
//! Each mode takes its own flags (a [`clap::Args`] struct), runs for a bounded time and
//! returns a report that renders either as a human table or as exactly one JSON object.
//!
//! Modes: [`transport`] (the reliable channel against raw UDP and TCP on loopback),
//! [`view_change`] (crash and re-add members of N real nodes), [`join`] (join latency),
//! [`churn`] (updates per second under a stream of requests), [`counts`] (protocol
//! messages and datagrams against the paper's §5.2 closed forms) and [`plots`] (SVG
//! figures from the JSON reports). [`cluster`] runs the nodes of the membership modes;
//! [`flags`] holds the flags several modes share; [`pattern`] is `view-change`'s raw UDP
//! floor.

pub mod churn;
pub mod clients;
pub mod cluster;
pub mod counts;
pub mod flags;
pub mod join;
pub mod pattern;
pub mod plots;
pub mod report;
pub mod transport;
pub mod view_change;

pub use report::Figures;
