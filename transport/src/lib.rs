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
//!
//! With a cluster key ([`TransportConfig::keys`]), every datagram carries a MAC over
//! its header and body ([`keyring`]) and datagrams without a valid one are dropped
//! before they touch any state (see `docs/SECURITY.md`).
//!
//! Modules: [`wire`] (datagram format), [`keyring`] (cluster keys), [`channel`] (send and receive windows),
//! [`rtt`] (RFC 6298 estimator), [`endpoint`] (the core), [`fault`] (seeded link
//! faults), [`simnet`] (deterministic in-memory network), [`driver`] (mio UDP driver).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod channel;
pub mod config;
pub mod driver;
pub mod endpoint;
pub mod error;
pub mod fault;
pub mod id;
pub mod keyring;
mod peer;
pub mod queue;
pub mod rtt;
mod schedule;
pub mod simnet;
pub mod stats;
pub mod time;
pub mod wire;

pub use config::TransportConfig;
pub use driver::{
    DatagramCore, Driver, DriverConfig, DriverStats, IdleStrategy, Waker, MAX_WARM_UP_CALLS,
    OPEN_ROUND_SPIN_US, WARM_UP_ANSWER_GAP_US, WARM_UP_CALL, WARM_UP_EVERY_US, WARM_UP_POLL_US,
};
pub use endpoint::{Endpoint, Refused, Transmit, TransportEvent};
pub use error::{DropReason, SendError, TransportConfigError};
pub use fault::{FaultDecision, FaultLayer, FaultStats, LinkFaults};
pub use id::{NodeId, NodeIdError, ProcessId, MAX_NODE_NAME};
pub use keyring::{KeyError, Keyring};
pub use queue::{DelayQueue, Delivery};
pub use simnet::{SimNet, SimNetStats};
pub use stats::{PeerCounters, PeerStats, Stats};
pub use time::{earliest, Time};
