//! What the loop publishes for the application to read: [`NodeStatus`] and
//! [`NodeMetrics`].

use std::net::SocketAddr;

use sgmp_transport::{DriverStats, Stats as TransportStats};

use super::core::{CoreStats, NodePhase};
use crate::engine::EngineStats;
use crate::service::ServiceStats;
use crate::view::{Member, View};
use crate::ProcessId;

/// Most departed processes a [`NodeStatus`] remembers (the oldest are forgotten).
pub const DEPARTED_CAP: usize = 32;

/// How a process left the views this node installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Departure {
    /// It asked to leave: its leave request reached this node before it was removed.
    Left,
    /// It was removed without a leave request reaching this node (believed faulty).
    Excluded,
}

impl Departure {
    /// `left` or `excluded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Departure::Left => "left",
            Departure::Excluded => "excluded",
        }
    }
}

/// A process removed from a view this node installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Departed {
    /// The process and its address.
    pub member: Member,
    /// How it went.
    pub how: Departure,
    /// The first view without it.
    pub version: u64,
}

/// A snapshot of the node's state, refreshed by the loop.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// The current process id (changes on rejoin).
    pub me: ProcessId,
    /// The address peers use for this node: the advertised one
    /// ([`NodeConfig::advertise`](super::NodeConfig::advertise)), else the bound one.
    pub addr: SocketAddr,
    /// Where the node stands.
    pub phase: NodePhase,
    /// The current view (version 0 and empty before the first).
    pub view: View,
    /// The initiator this process follows (itself when mgr).
    pub leader: Option<ProcessId>,
    /// This process is the mgr.
    pub is_mgr: bool,
    /// Members this process believes faulty.
    pub faulty: Vec<ProcessId>,
    /// When the current view was installed (µs since the Unix epoch; 0: none).
    pub view_ts_us: u64,
    /// Incarnations started after the first (rejoins).
    pub rejoins: u64,
    /// The membership service's system view: version (0: none yet, or the service is
    /// off or not synchronized), size (core + clients) and clients.
    pub system_version: u64,
    /// Members of the system view (core + clients).
    pub system_size: usize,
    /// Registered clients.
    pub clients: usize,
    /// Where a recovery from total failure stands (phase `recovering`): the view it
    /// works from and the names it waits for.
    pub recovery: Option<super::recovery::RecoveryStatus>,
    /// Processes removed from the views this node installed, oldest first (at most
    /// [`DEPARTED_CAP`]; a process that came back as a new incarnation stays listed
    /// under its old one).
    pub departed: Vec<Departed>,
    /// The tags this node wants (set at start or with
    /// [`NodeHandle::set_tags`](super::NodeHandle::set_tags)); the agreed ones, which
    /// every member sees at a version, are `view.tags_of(me)`.
    pub tags: crate::TagSet,
}

/// Counters of the node, refreshed by the loop.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeMetrics {
    /// The engine's counters (current incarnation).
    pub engine: EngineStats,
    /// The transport endpoint's counters (current incarnation).
    pub transport: TransportStats,
    /// The driver's I/O counters.
    pub driver: DriverStats,
    /// Views installed over every incarnation.
    pub views_installed: u64,
    /// The node core's counters (backlog, refusals, probes, rejoins, ...).
    pub core: CoreStats,
    /// Messages parked because a send window was full.
    pub backlogged: u64,
    /// Messages waiting in the backlog now.
    pub backlog_len: u64,
    /// Messages the backlog could not hold (it was full): lost, and logged.
    pub backlog_overflow: u64,
    /// Engine messages the transport refused for good (disconnected or stale peer).
    pub send_refused: u64,
    /// Events not delivered to a lagging subscriber (over all subscribers).
    pub events_dropped: u64,
    /// Event log records lost to write errors (a full disk): the node goes on.
    pub event_log_lost: u64,
    /// Loop steps that wrote datagrams or had events, and yielded the core before
    /// publishing
    /// ([`NodeConfig::yield_before_publish`](super::NodeConfig::yield_before_publish)).
    pub yields_before_publish: u64,
    /// Loop steps whose events (a suspicion, a submission, a reconfiguration) were held
    /// for the end of the open round rather than published at once
    /// ([`NodeConfig::publish_after_round`](super::NodeConfig::publish_after_round)).
    pub events_held: u64,
    /// Probes sent (discovery queries and answers).
    pub probes_sent: u64,
    /// Rejoins as a new incarnation.
    pub rejoins: u64,
    /// The membership service's counters (current incarnation).
    pub service: ServiceStats,
}
