//! `sgmp-membership`: the Strong Group Membership Protocol of Ricciardi & Birman
//! ("Process Membership in Asynchronous Environments", Cornell TR 93-1328).
//!
//! The [`engine::Engine`] is a sans-IO state machine: it takes `(now, input)` and
//! produces messages to send, events and a next deadline. See `docs/PROTOCOL.md` for
//! the mapping between this code and the paper.
//!
//! Three [`Engine`]s carried by hand (the caller is the network: here a reliable one
//! in memory); `c` crashes, the mgr `a` is told it is faulty, and `a` and `b` install
//! view 2 without it:
//!
//! ```
//! use sgmp_membership::{Engine, EngineConfig, Member, ProcessId, Time};
//!
//! let members: Vec<Member> = ["a", "b", "c"]
//!     .iter()
//!     .enumerate()
//!     .map(|(i, n)| Member {
//!         id: ProcessId::named(n, 1),
//!         addr: format!("127.0.0.1:{}", 7401 + i).parse().unwrap(),
//!     })
//!     .collect();
//! let mut engines: Vec<Engine> = members
//!     .iter()
//!     .map(|m| Engine::new(EngineConfig::default(), *m))
//!     .collect();
//! let now = Time::ZERO;
//! for e in &mut engines {
//!     e.bootstrap(now, &members); // view 1 = [a, b, c]; a (the first) is the mgr
//! }
//! engines.truncate(2); // c crashes
//! engines[0].suspect(now, members[2].id);
//! loop {
//!     let mut wire = Vec::new();
//!     for e in &mut engines {
//!         let from = e.me().id;
//!         while let Some(t) = e.poll_transmit() {
//!             wire.push((from, t.to, t.payload.to_vec()));
//!         }
//!     }
//!     if wire.is_empty() {
//!         break;
//!     }
//!     for (from, to, bytes) in wire {
//!         if let Some(e) = engines.iter_mut().find(|e| e.me().id == to) {
//!             e.handle_message(now, from, &bytes).unwrap();
//!         }
//!     }
//! }
//! for e in &engines {
//!     assert_eq!(e.view().version, 2);
//!     assert_eq!(e.view().members, &members[..2]);
//! }
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod counts;
pub mod detector;
pub mod engine;
pub mod msg;
pub mod node;
pub mod sabotage;
pub mod service;
pub mod tags;
pub mod testkit;
pub mod view;

pub use config::{ConfigError, EngineConfig};
pub use engine::{
    Engine, EngineStats, Event, ExcludeReason, SnapshotTooLarge, Status, SuspicionCause, Transmit,
};
pub use node::{Node, NodeConfig, NodeEvent, NodeHandle};
pub use sgmp_transport::{earliest, NodeId, ProcessId, Time};
pub use tags::{TagError, TagSet, Tags};
pub use view::{Member, Proposal, Update, View};
