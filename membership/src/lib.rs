//! `sgmp-membership`: the Strong Group Membership Protocol of Ricciardi & Birman
//! ("Process Membership in Asynchronous Environments", Cornell TR 93-1328).
//!
//! The [`engine::Engine`] is a sans-IO state machine: it takes `(now, input)` and
//! produces messages to send, events and a next deadline. See `docs/PROTOCOL.md` for
//! the mapping between this code and the paper.

pub use sgmp_transport::{NodeId, ProcessId, Time};
