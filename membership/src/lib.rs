//! `sgmp-membership`: the Strong Group Membership Protocol of Ricciardi & Birman
//! ("Process Membership in Asynchronous Environments", Cornell TR 93-1328).
//!
//! The [`engine::Engine`] is a sans-IO state machine: it takes `(now, input)` and
//! produces messages to send, events and a next deadline. See `docs/PROTOCOL.md` for
//! the mapping between this code and the paper.
#![deny(missing_docs)]

pub mod config;
pub mod counts;
pub mod detector;
pub mod engine;
pub mod msg;
pub mod node;
pub mod service;
pub mod testkit;
pub mod view;

pub use config::{ConfigError, EngineConfig};
pub use engine::{Engine, EngineStats, Event, ExcludeReason, Status, Transmit};
pub use node::{Node, NodeConfig, NodeEvent, NodeHandle};
pub use sgmp_transport::{earliest, NodeId, ProcessId, Time};
pub use view::{Member, Proposal, Update, View};
