//! The public types of [`NodeCore`]: its settings, phases, events, counters and tap
//! records.

use super::*;

/// Settings of a [`NodeCore`].
#[derive(Clone, Debug)]
pub struct CoreConfig {
    /// The engine's settings.
    pub engine: EngineConfig,
    /// The transport's settings (cluster keys included).
    pub transport: TransportConfig,
    /// Join requests handled per second (0: no cap).
    pub max_joins_per_sec: u32,
    /// The known sites queried by discovery (paper §4.2.4).
    pub seeds: Vec<SocketAddr>,
    /// This process may found the group at cold start (a fresh start of one of the
    /// seeds); otherwise it only ever joins.
    pub may_found: bool,
    /// Quiet discovery rounds before a cold-starter founds the group.
    pub coldstart_rounds: u32,
    /// Length of a discovery round, µs.
    pub coldstart_round_us: u64,
    /// A join still incomplete after this long starts over as a new incarnation, µs.
    pub join_timeout_us: u64,
    /// Come back as a new incarnation after exclusion.
    pub auto_rejoin: bool,
    /// How long a leaving member waits for its leave request to be delivered, µs.
    pub leave_linger_us: u64,
    /// Warm-up calls over this long before a suspicion of the watched member, µs (0:
    /// off; at most a quarter of the suspicion timeout is used): see
    /// `NodeConfig::warm_up_us`.
    pub warm_up_us: u64,
    /// The membership service (None: off).
    pub service: Option<ServiceConfig>,
}

/// Where the node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodePhase {
    /// Created, not started.
    Idle,
    /// Querying seeds: cold start, or looking for the group to rejoin.
    Discovering,
    /// Not a member, holding durable state of the group's last view: looking for the
    /// group and, if it is gone, bringing it back with the other names of that view
    /// (D23).
    Recovering,
    /// Asking to join.
    Joining,
    /// A member of the group.
    Member,
    /// Excluded and not coming back (`auto_rejoin` off).
    Excluded,
    /// Leaving gracefully (delivering the leave request).
    Leaving,
    /// Left the group.
    Left,
    /// The loop stopped.
    Stopped,
}

impl NodePhase {
    /// A short name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodePhase::Idle => "idle",
            NodePhase::Discovering => "discovering",
            NodePhase::Recovering => "recovering",
            NodePhase::Joining => "joining",
            NodePhase::Member => "member",
            NodePhase::Excluded => "excluded",
            NodePhase::Leaving => "leaving",
            NodePhase::Left => "left",
            NodePhase::Stopped => "stopped",
        }
    }
}

/// Something the driver publishes (events, event log, status). Each comes with the
/// process id that produced it ([`NodeCore::poll_event`]): rejoin changes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreEvent {
    /// Discovery began (first start, or after exclusion).
    Started,
    /// Cold start: this process founded the group.
    Founded,
    /// Discovery found the group; a join request goes to `contacts` processes.
    Joining {
        /// How many contacts.
        contacts: usize,
    },
    /// A view was installed; its members are in [`NodeCore::installed_view`].
    ViewInstalled {
        /// Its version.
        version: u64,
    },
    /// This process now believes `peer` faulty (and disconnected it).
    Suspected {
        /// The suspected process.
        peer: ProcessId,
        /// How the belief came about (a recovery's decision: `Observed`).
        cause: crate::SuspicionCause,
    },
    /// This process joined the group (its first view follows).
    Joined {
        /// Version of its first view.
        version: u64,
        /// The application snapshot handed over by the group.
        snapshot: Vec<u8>,
    },
    /// This process was excluded.
    Excluded {
        /// Why.
        reason: ExcludeReason,
    },
    /// This process left the group gracefully (its leave request is out).
    Left,
    /// The leave request was delivered to every member of the last view, or the linger
    /// time ran out: the node is out.
    LeaveDone,
    /// This process started a reconfiguration.
    Reconfiguring {
        /// Its view version.
        version: u64,
    },
    /// As initiator, this process submitted the update forming `version`.
    Submitted {
        /// The version the update would form.
        version: u64,
    },
    /// The membership service applied a system view: change number `change`, read
    /// with [`NodeCore::system_change`](super::NodeCore::system_change) (the core keeps
    /// the last [`CHANGE_RING`](crate::service::server::CHANGE_RING), so that a view
    /// change allocates nothing).
    SystemView {
        /// The change's number.
        change: u64,
    },
    /// A recovery from total failure decided view `version`, which holds this process:
    /// it is a member again (its view follows).
    Recovered {
        /// The version of the recovered view.
        version: u64,
    },
    /// The durable state could not be saved: the process stopped rather than send what
    /// depends on it.
    StorageFailed {
        /// What went wrong.
        error: String,
    },
    /// The node came back as a new incarnation (`new`) after `old` was excluded or its
    /// join timed out.
    Rejoining {
        /// The previous process.
        old: ProcessId,
        /// The new one.
        new: ProcessId,
        /// The join timed out (rather than an exclusion).
        join_timeout: bool,
    },
}

/// Counters of the node core (the engine, endpoint and service keep their own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Engine messages handed to the transport.
    pub messages: u64,
    /// Messages delivered to the engine.
    pub delivered: u64,
    /// Delivered messages the engine could not decode.
    pub decode_errors: u64,
    /// Messages parked because a send window was full.
    pub backlogged: u64,
    /// Messages the backlog could not hold (it was full): lost, and logged.
    pub backlog_overflow: u64,
    /// Largest backlog seen.
    pub max_backlog: u64,
    /// Engine messages the transport refused because their destination is disconnected
    /// or an old incarnation (intended: the engine believes it faulty).
    pub send_refused: u64,
    /// Engine messages the transport refused for another reason (too large, peer table
    /// full): a bug or a mis-sized configuration.
    pub send_errors: u64,
    /// Probes sent (discovery queries and answers).
    pub probes_sent: u64,
    /// Probes that did not decode (foreign or malformed).
    pub probes_bad: u64,
    /// Rejoins as a new incarnation.
    pub rejoins: u64,
    /// Views installed over every incarnation.
    pub views_installed: u64,
    /// Core events dropped because the driver did not poll them.
    pub events_dropped: u64,
    /// Saves of the durable state.
    pub durable_saves: u64,
    /// Time the storage spent in those saves, µs, as the storage measures it
    /// ([`Storage::save_time_us`]; 0 for storage that does not).
    pub durable_save_us: u64,
    /// Recovery messages sent.
    pub recovery_sent: u64,
    /// Recoveries that made this process a member.
    pub recoveries: u64,
    /// "You were excluded" notices sent to refused processes (D24).
    pub exclusions_told: u64,
    /// "You were excluded" notices received that stopped this process (D24).
    pub exclusions_heard: u64,
    /// Membership-service datagrams dropped because [`SERVICE_OUT_CAP`] were waiting.
    ///
    /// [`SERVICE_OUT_CAP`]: super::SERVICE_OUT_CAP
    pub service_out_dropped: u64,
}

/// What a tap records (see [`NodeCore::set_tap`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapRecord {
    /// True: handed to the transport; false: delivered to the engine.
    pub sent: bool,
    /// The other process.
    pub peer: ProcessId,
    /// The message's kind, if it decodes.
    pub kind: Option<MsgKind>,
    /// The encoded message (empty unless the tap keeps bytes).
    pub bytes: Vec<u8>,
}
