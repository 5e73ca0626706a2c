//! `sgmp-transport`: reliable FIFO point-to-point channels over nonblocking UDP.
//!
//! The core ([`Endpoint`]) is a sans-IO state machine: it takes `(now, input)` and
//! produces datagrams to send, delivered messages, events and a next deadline. It never
//! touches sockets, clocks, threads or randomness, so the mio driver and the
//! deterministic simulator run exactly the same code.
//!
//! It gives the membership engine what the paper assumes of channels: reliable FIFO
//! delivery between two process incarnations, and *Disconnect*: once a peer is
//! believed faulty, nothing more is accepted from it.

pub mod id;
pub mod time;

pub use id::{NodeId, NodeIdError, ProcessId, MAX_NODE_NAME};
pub use time::{earliest, Time};
