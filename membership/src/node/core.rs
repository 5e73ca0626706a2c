//! [`NodeCore`]: everything one sgmp process does except the socket, the clock, threads
//! and publication, as a sans-IO state machine in the style of quinn-proto.
//!
//! It owns the S-GMP [`Engine`], the transport [`Endpoint`], discovery and cold start
//! ([`Discovery`]), the send backlog, the membership service's core side
//! ([`CoreService`]), rejoin as a new incarnation, and the three cross-layer links:
//!
//! - engine `Suspected{peer}` → `Endpoint::disconnect(peer)` (the paper's Disconnect),
//!   and whatever still waits for `peer` in the backlog is dropped;
//! - transport `PeerUnreachable(p)` → `Engine::suspect(now, p)`;
//! - transport signs of life (any datagram accepted from a peer) →
//!   `Engine::peer_alive` (D20).
//!
//! Inputs carry `now`: [`handle_datagram`](NodeCore::handle_datagram),
//! [`handle_timeout`](NodeCore::handle_timeout) and the commands ([`start`](NodeCore::start),
//! [`leave`](NodeCore::leave), ...). Outputs are polled: datagrams with
//! [`poll_transmit`](NodeCore::poll_transmit), [`CoreEvent`]s with
//! [`poll_event`](NodeCore::poll_event), the next deadline with
//! [`poll_timeout`](NodeCore::poll_timeout). There is no socket, clock, thread or
//! randomness inside: the mio runtime ([`super::runtime`], through
//! [`sgmp_transport::Driver`], which drives any [`DatagramCore`]) and the deterministic
//! simulator (`sgmp-sim`) drive this same code.
//!
//! The engine reacts to each delivered message before the next is handed to it, and its
//! messages go to the endpoint at once, so a reply leaves in the same driver iteration
//! as the datagram that caused it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use sgmp_transport::{
    DatagramCore, Endpoint, SendError, Stats as TransportStats, Transmit, TransportConfig,
    TransportEvent,
};

use super::coldstart::{self, Decision, Discovery, Probe};
use super::durable::{Accepted, Ballot, Durable, Storage};
use super::recovery::{Recovery, RecoveryMsg, RecoveryStatus, RECOVERY_FORMAT};
use crate::config::EngineConfig;
use crate::engine::{Engine, EngineStats, Event, ExcludeReason, Status};
use crate::msg::MsgKind;
use crate::service::{
    wire as service_wire, CoreService, ServiceConfig, ServiceStats, SystemChange,
};
use crate::view::{ClientOp, Member, View};
use crate::{ProcessId, Time};

/// Most messages parked while send windows are full.
pub const BACKLOG_CAP: usize = 16_384;
/// Most process addresses remembered from probes (discovery and fault targets), so that
/// probes from made-up processes cost bounded memory.
pub const KNOWN_CAP: usize = 4096;
/// Installed views kept for [`NodeCore::installed_view`] (a driver that polls events
/// less often than views change still finds each one's members).
pub const RECENT_VIEWS: usize = 8;
/// Most core events queued; beyond that the oldest are dropped (and counted).
pub const EVENT_QUEUE: usize = 4096;

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
    /// The membership service applied a system view.
    SystemView(SystemChange),
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
}

/// Most addresses remembered for rate-limiting "you were excluded" notices (D24).
pub const TOLD_CAP: usize = 32;

/// A message parked while the send window to `to` was full.
#[derive(Debug)]
struct Parked {
    to: ProcessId,
    addr: SocketAddr,
    bytes: Vec<u8>,
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

/// The sans-IO node. See the [module docs](self).
pub struct NodeCore {
    cfg: CoreConfig,
    me: ProcessId,
    addr: SocketAddr,
    engine: Engine,
    endpoint: Endpoint,
    phase: NodePhase,
    discovery: Option<Discovery>,
    /// May found the group (fresh start, never a member).
    fresh: bool,
    join_contacts: Vec<Member>,
    join_started: Time,
    backlog: VecDeque<Parked>,
    blocked: Vec<ProcessId>,
    /// Leaving: until when the node lingers.
    leaving: Option<Time>,
    snapshot: Vec<u8>,
    known: HashMap<ProcessId, SocketAddr>,
    last_members: Vec<Member>,
    rx_buf: Vec<u8>,
    probe_buf: Vec<u8>,
    probe_out: Vec<u8>,
    events: VecDeque<(ProcessId, CoreEvent)>,
    recent: VecDeque<View>,
    spare_views: Vec<View>,
    /// Transport signs of life from this time on are still to be given to the engine.
    heard_since: Time,
    service: Option<CoreService>,
    client_ops: Vec<ClientOp>,
    /// Service datagrams that did not fit the endpoint's probe queue yet.
    service_out: VecDeque<(SocketAddr, Vec<u8>)>,
    /// Something was queued at the endpoint since `poll_transmit` last returned `None`.
    queued: bool,
    /// An input may have moved a deadline earlier.
    timers_moved: bool,
    tap: Option<(bool, Vec<TapRecord>)>,
    stats: CoreStats,
    /// What this node keeps on stable storage (kept in memory even without storage).
    durable: Durable,
    storage: Option<Box<dyn Storage>>,
    /// The engine's durable sequence number last copied into `durable`.
    saved_seq: u64,
    /// The engine's state changed and nothing queued reports it: it is saved once this
    /// step's datagrams have left (`poll_transmit` returning `None`), and in any case
    /// before the next input (D22: the save overlaps the peers' work on them).
    save_after_send: bool,
    /// An `Accepted` whose buffers are reused.
    spare_accepted: Option<Accepted>,
    recovery: Option<Recovery>,
    rec_buf: Vec<u8>,
    /// Addresses told "you were excluded", and when (D24): one notice per address per
    /// discovery round, at most [`TOLD_CAP`] addresses.
    told: Vec<(SocketAddr, Time)>,
    /// Contacts from the "you were excluded" notice that stopped this process: the
    /// next incarnation joins through them at once (D24).
    rejoin_contacts: Option<Vec<Member>>,
    /// While withholding (D24): when to query the seeds and the view's members next.
    withhold_query_at: Time,
}

impl std::fmt::Debug for NodeCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCore")
            .field("me", &self.me)
            .field("addr", &self.addr)
            .field("phase", &self.phase)
            .field("version", &self.engine.view().version)
            .finish_non_exhaustive()
    }
}

impl NodeCore {
    /// A node core for process `me` at `addr` (not started: call [`NodeCore::start`]
    /// for discovery, or [`NodeCore::found_with`] / [`NodeCore::join_through`]).
    /// Every buffer of the engine and the endpoint is allocated here.
    pub fn new(cfg: CoreConfig, me: ProcessId, addr: SocketAddr) -> NodeCore {
        assert!(cfg.coldstart_rounds > 0 && cfg.coldstart_round_us > 0);
        assert!(cfg.join_timeout_us > 0);
        let engine = Engine::new(cfg.engine.clone(), Member { id: me, addr })
            .with_max_joins_per_sec(cfg.max_joins_per_sec);
        let endpoint = Endpoint::new(cfg.transport, me);
        let max_msg = endpoint.config().max_message;
        let max_members = cfg.engine.max_members;
        NodeCore {
            me,
            addr,
            engine,
            endpoint,
            phase: NodePhase::Idle,
            discovery: None,
            fresh: cfg.may_found,
            join_contacts: Vec::new(),
            join_started: Time::ZERO,
            backlog: VecDeque::new(),
            blocked: Vec::with_capacity(max_members + 16),
            leaving: None,
            snapshot: Vec::new(),
            known: HashMap::new(),
            last_members: Vec::with_capacity(max_members),
            rx_buf: vec![0u8; max_msg],
            probe_buf: vec![0u8; sgmp_transport::wire::MAX_PROBE_PAYLOAD],
            probe_out: Vec::with_capacity(sgmp_transport::wire::MAX_PROBE_PAYLOAD),
            events: VecDeque::with_capacity(64),
            recent: VecDeque::with_capacity(RECENT_VIEWS),
            spare_views: (0..RECENT_VIEWS)
                .map(|_| View::with_tags(max_members, cfg.engine.max_tag_bytes))
                .collect(),
            heard_since: Time::ZERO,
            save_after_send: false,
            service: cfg.service.clone().map(|c| CoreService::new(c, me)),
            client_ops: Vec::new(),
            service_out: VecDeque::new(),
            queued: false,
            timers_moved: false,
            tap: None,
            stats: CoreStats::default(),
            durable: Durable::fresh(me.node.as_str(), me.incarnation),
            storage: None,
            saved_seq: 0,
            spare_accepted: Some(Accepted {
                ballot: Ballot::NONE,
                view: View::with_capacity(max_members),
            }),
            recovery: None,
            rec_buf: Vec::new(),
            told: Vec::with_capacity(TOLD_CAP),
            rejoin_contacts: None,
            withhold_query_at: Time::ZERO,
            cfg,
        }
    }

    /// Gives the core its durable state (`state`, as loaded; `None`: this node has
    /// none yet) and where to save it (`None`: in memory only, lost with the process).
    /// Call before [`NodeCore::start`]. A node with a view in its state takes an
    /// incarnation above the stored one and never founds a group: it recovers (D23).
    pub fn with_durable(
        mut self,
        state: Option<Durable>,
        storage: Option<Box<dyn Storage>>,
    ) -> NodeCore {
        assert_eq!(
            self.phase,
            NodePhase::Idle,
            "durable state is given before start"
        );
        if let Some(d) = state {
            let inc = self.me.incarnation.max(d.incarnation + 1);
            if inc != self.me.incarnation {
                self.reincarnate(ProcessId::new(self.me.node, inc));
            }
            self.durable = d;
            // A node whose group ended may found again (if it is a seed); one with a
            // view never does: it recovers or joins.
            if self.durable.has_view() {
                self.fresh = false;
                self.last_members.clear();
                let n = self
                    .durable
                    .view
                    .members
                    .len()
                    .min(self.cfg.engine.max_members);
                self.last_members
                    .extend_from_slice(&self.durable.view.members[..n]);
            }
        }
        self.durable.name = self.me.node.as_str().to_string();
        self.durable.incarnation = self.me.incarnation;
        self.storage = storage;
        self
    }

    /// The durable state as it stands.
    pub fn durable(&self) -> &Durable {
        &self.durable
    }

    /// Where the recovery stands, if this node is recovering.
    pub fn recovery_status(&self, now: Time) -> Option<RecoveryStatus> {
        self.recovery.as_ref().map(|r| r.status(now, &self.durable))
    }

    /// Replaces engine and endpoint for process `me` (same node), keeping the rest.
    fn reincarnate(&mut self, me: ProcessId) {
        self.me = me;
        self.endpoint = Endpoint::new(self.cfg.transport, me);
        self.engine = Engine::new(
            self.cfg.engine.clone(),
            Member {
                id: me,
                addr: self.addr,
            },
        )
        .with_max_joins_per_sec(self.cfg.max_joins_per_sec);
        if !self.snapshot.is_empty() {
            // Accepted by `set_snapshot` under the same bound.
            let _ = self.engine.set_snapshot(&self.snapshot);
        }
        self.service = self.cfg.service.clone().map(|c| CoreService::new(c, me));
        self.saved_seq = 0;
        self.save_after_send = false;
    }

    /// Saves the durable state; on failure the process stops (nothing that depends on
    /// the state may leave) and reports it.
    fn save(&mut self) -> bool {
        let Some(st) = &mut self.storage else {
            return true;
        };
        match st.save(&self.durable) {
            Ok(()) => {
                self.stats.durable_saves += 1;
                self.stats.durable_save_us = st.save_time_us();
                true
            }
            Err(e) => {
                tracing::error!(node = %self.me, "cannot save the durable state: {e}");
                self.push_event(CoreEvent::StorageFailed {
                    error: e.to_string(),
                });
                self.engine = Engine::new(
                    self.cfg.engine.clone(),
                    Member {
                        id: self.me,
                        addr: self.addr,
                    },
                );
                self.discovery = None;
                self.recovery = None;
                self.phase = NodePhase::Stopped;
                false
            }
        }
    }

    /// Copies the engine's installed view and NextUpdate_p into the durable state and
    /// saves it (before the messages that depend on it leave). False if the save failed.
    fn sync_durable(&mut self) -> bool {
        self.saved_seq = self.engine.durable_seq();
        self.save_after_send = false;
        if self.engine.status() != Status::Member {
            return true;
        }
        let v = self.engine.view();
        if v.version > self.durable.view.version {
            self.durable.view.clone_from(v);
            self.durable.promised = Ballot::NONE;
            self.durable.ended = false;
            if self
                .durable
                .accepted
                .as_ref()
                .is_some_and(|a| a.view.version <= v.version)
            {
                self.spare_accepted = self.durable.accepted.take();
            }
        }
        if let Some(p) = self.engine.next_update() {
            if p.version == self.durable.view.version + 1 {
                let ballot = Ballot::sgmp(p.initiator_index);
                let keep = self
                    .durable
                    .accepted
                    .as_ref()
                    .is_some_and(|a| a.ballot > ballot);
                if !keep {
                    let mut a = self
                        .durable
                        .accepted
                        .take()
                        .or_else(|| self.spare_accepted.take())
                        .unwrap_or_else(|| Accepted {
                            ballot,
                            view: View::with_capacity(self.cfg.engine.max_members),
                        });
                    a.ballot = ballot;
                    a.view.clone_from(&self.durable.view);
                    // Room for the adds (allocates only if a smaller view was kept).
                    a.view.members.reserve(p.update.adds.len() + 1);
                    a.view.apply(&p.update, p.version);
                    self.durable.accepted = Some(a);
                }
            }
        }
        self.save()
    }

    // ---- reading ----

    /// The current process id (changes on rejoin).
    pub fn me(&self) -> ProcessId {
        self.me
    }

    /// This process's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The settings.
    pub fn config(&self) -> &CoreConfig {
        &self.cfg
    }

    /// Where the node stands.
    pub fn phase(&self) -> NodePhase {
        if self.recovery.is_some() && !self.durable.ended && self.engine.status() == Status::Idle {
            return NodePhase::Recovering;
        }
        match (self.phase, self.engine.status()) {
            (NodePhase::Leaving | NodePhase::Left | NodePhase::Stopped, _) => self.phase,
            (_, Status::Member) => NodePhase::Member,
            (_, Status::Joining) => NodePhase::Joining,
            _ => self.phase,
        }
    }

    /// The engine (current incarnation).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The transport endpoint (current incarnation).
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The membership service, if on.
    pub fn service(&self) -> Option<&CoreService> {
        self.service.as_ref()
    }

    /// The node core's counters.
    pub fn stats(&self) -> &CoreStats {
        &self.stats
    }

    /// The engine's counters (current incarnation).
    pub fn engine_stats(&self) -> &EngineStats {
        self.engine.stats()
    }

    /// The endpoint's counters (current incarnation).
    pub fn transport_stats(&self) -> TransportStats {
        self.endpoint.stats()
    }

    /// The service's counters (current incarnation), if on.
    pub fn service_stats(&self) -> Option<ServiceStats> {
        self.service.as_ref().map(|s| *s.stats())
    }

    /// Messages waiting in the backlog now.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// The members of installed view `version`, if it is among the last
    /// [`RECENT_VIEWS`] this process installed.
    pub fn installed_view(&self, version: u64) -> Option<&View> {
        self.recent.iter().rev().find(|v| v.version == version)
    }

    /// The membership service's system view, when the service is on, synchronized,
    /// and this process a member.
    pub fn system_view(&self) -> Option<&crate::service::SystemView> {
        self.service
            .as_ref()
            .filter(|s| s.synced() && self.engine.status() == Status::Member)
            .map(|s| s.view())
    }

    /// Addresses of `peer`: an address, `NAME#INC`, or a node name (every incarnation
    /// known), as the fault commands name peers.
    pub fn resolve(&self, peer: &str) -> Vec<SocketAddr> {
        if let Ok(a) = peer.parse::<SocketAddr>() {
            return vec![a];
        }
        if let Some(p) = ProcessId::parse(peer) {
            return self.known.get(&p).copied().into_iter().collect();
        }
        let mut v: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(p, _)| p.node.as_str() == peer)
            .map(|(_, a)| *a)
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The next event, with the process that produced it.
    pub fn poll_event(&mut self) -> Option<(ProcessId, CoreEvent)> {
        self.events.pop_front()
    }

    /// Records what the engine sends and receives (for the simulator's trace and its
    /// crash triggers); `bytes`: keep the encoded messages too. `None` turns it off.
    pub fn set_tap(&mut self, tap: Option<bool>) {
        self.tap = tap.map(|bytes| (bytes, Vec::new()));
    }

    /// Takes what the tap recorded since the last call.
    pub fn take_tap(&mut self, into: &mut Vec<TapRecord>) {
        if let Some((_, t)) = &mut self.tap {
            into.append(t);
        }
    }

    // ---- commands ----

    /// Starts discovery: queries to the seeds (paper §4.2.4); founds the group after
    /// the quiet rounds if this process may, joins through the first member that answers.
    pub fn start(&mut self, now: Time) {
        assert_eq!(self.phase, NodePhase::Idle, "start once");
        // The incarnation is durable before anything is sent under it.
        if !self.save() {
            return;
        }
        self.begin_discovery(now);
    }

    /// Founds the group with `founders` at once, without discovery (every founder
    /// must do the same with the same list: tests, the simulator, embedders that know
    /// their founding set).
    pub fn found_with(&mut self, now: Time, founders: &[Member]) {
        assert_eq!(
            self.phase,
            NodePhase::Idle,
            "found a group only from a fresh core"
        );
        self.discovery = None;
        self.engine.bootstrap(now, founders);
        self.on_founded();
        self.after_input(now);
    }

    /// Joins through `contacts` at once, without discovery.
    pub fn join_through(&mut self, now: Time, contacts: &[Member]) {
        assert_eq!(self.phase, NodePhase::Idle, "join only from a fresh core");
        self.join(now, contacts.to_vec());
        self.after_input(now);
    }

    /// Leaves the group gracefully: the leave request goes to the mgr, and the node
    /// lingers until it is delivered ([`CoreEvent::LeaveDone`]). A node that is not a
    /// member stops discovery and is out at once.
    pub fn leave(&mut self, now: Time) {
        if self.leaving.is_some() || matches!(self.phase, NodePhase::Left | NodePhase::Stopped) {
            return;
        }
        if self.engine.status() == Status::Member {
            tracing::info!(node = %self.me, "leaving the group");
            self.engine.leave(now);
            self.phase = NodePhase::Leaving;
            self.leaving = Some(now + self.cfg.leave_linger_us);
            self.after_input(now);
        } else {
            self.discovery = None;
            self.phase = NodePhase::Left;
            self.push_event(CoreEvent::LeaveDone);
        }
    }

    /// An outside suspicion of `peer` (the simulator's false suspicions, an
    /// application's own detector).
    pub fn suspect(&mut self, now: Time, peer: ProcessId) {
        self.engine.suspect(now, peer);
        self.after_input(now);
    }

    /// Sets the application snapshot handed to joiners (State-Xfer). One longer than
    /// the configured `max_snapshot` is refused and the previous one kept.
    pub fn set_snapshot(&mut self, bytes: &[u8]) -> Result<(), crate::SnapshotTooLarge> {
        self.engine.set_snapshot(bytes)?;
        self.snapshot.clear();
        self.snapshot.extend_from_slice(bytes);
        Ok(())
    }

    /// Sets this node's member tags (encoded, [`crate::TagSet::encode`]): committed by
    /// the mgr as a view change once a member, kept for every later incarnation.
    pub fn set_tags(&mut self, now: Time, tags: &[u8]) -> Result<(), crate::TagError> {
        self.engine.set_tags(now, tags)?;
        self.cfg.engine.tags.clear();
        self.cfg.engine.tags.extend_from_slice(tags);
        self.after_input(now);
        Ok(())
    }

    /// Stops: the node takes no further part (the runtime's shutdown).
    pub fn stop(&mut self) {
        // A save left for after the last step's datagrams is not lost to a clean stop.
        self.save_before_input();
        self.discovery = None;
        self.phase = NodePhase::Stopped;
    }

    // ---- inputs ----

    /// Feeds one datagram received from `from` at `now`, and lets the engine react.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        self.save_before_input();
        self.endpoint.handle_datagram(now, from, datagram);
        self.after_input(now);
    }

    /// Runs everything due at `now`: transport timers, discovery rounds, the engine's
    /// and the service's timers, the join watchdog and the leave linger.
    pub fn handle_timeout(&mut self, now: Time) {
        self.save_before_input();
        if self.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            self.endpoint.handle_timeout(now);
        }
        if let Some(d) = &mut self.discovery {
            match d.on_timeout(now) {
                Decision::Query => {
                    let cold = d.is_cold();
                    for a in self.targets() {
                        self.probe(now, a, &Probe::Query { cold });
                    }
                }
                Decision::Bootstrap => self.bootstrap(now),
                Decision::Join(c) => self.join(now, c),
                Decision::Wait => {}
            }
        }
        if let Some(r) = &mut self.recovery {
            if r.deadline() <= now {
                r.on_timeout(now, &mut self.durable);
            }
        }
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        if now >= self.withhold_query_at {
            // D24: a member that hears no majority asks the seeds and its view's
            // members once a round; a member of a later view without it answers "you
            // were excluded" (its own view's members may all be gone).
            self.withhold_query_at = now + self.cfg.coldstart_round_us;
            if self.engine.withholding(now) {
                for a in self.targets() {
                    self.probe(now, a, &Probe::Query { cold: false });
                }
            }
        }
        if let Some(s) = &mut self.service {
            if self.engine.status() == Status::Member && s.poll_timeout() <= now {
                s.on_timeout(now, &self.engine);
                s.take_ops(&mut self.client_ops);
                if !self.client_ops.is_empty() {
                    self.engine.request_client_ops(now, &self.client_ops);
                }
            }
        }
        // A join that does not complete starts over as a new incarnation.
        if self.engine.status() == Status::Joining
            && now.micros_since(self.join_started) >= self.cfg.join_timeout_us
        {
            tracing::warn!(node = %self.me, "join timed out; trying again");
            self.new_incarnation(now, true);
        }
        self.timers_moved = true;
        self.after_input(now);
    }

    /// The earliest time [`handle_timeout`](NodeCore::handle_timeout) has work.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.phase == NodePhase::Stopped {
            return None;
        }
        let mut d = crate::earliest(self.endpoint.poll_timeout(), self.engine.poll_timeout());
        if let Some(x) = &self.discovery {
            d = crate::earliest(d, Some(x.deadline()));
        }
        if let Some(r) = &self.recovery {
            d = crate::earliest(d, Some(r.deadline()));
        }
        if let Some(s) = &self.service {
            if self.engine.status() == Status::Member {
                d = crate::earliest(d, Some(s.poll_timeout()));
            }
        }
        if self.engine.status() == Status::Joining {
            d = crate::earliest(d, Some(self.join_started + self.cfg.join_timeout_us));
        }
        if self.engine.status() == Status::Member && self.engine.withheld_suspicions() > 0 {
            d = crate::earliest(d, Some(self.withhold_query_at));
        }
        crate::earliest(d, self.leaving)
    }

    /// The next datagram to write into `buf` (at least the transport's `mtu` bytes).
    pub fn poll_transmit(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(t) = self.endpoint.poll_transmit(now, buf) {
            return Some(t);
        }
        // Service datagrams waiting for room in the probe queue.
        if self.move_service_out(now) {
            if let Some(t) = self.endpoint.poll_transmit(now, buf) {
                return Some(t);
            }
        }
        self.queued = false;
        // The step's datagrams are out: the save that none of them waited for.
        self.save_before_input();
        None
    }

    /// Does the save left for after the step's datagrams, if one is pending: before
    /// the core takes any further input, so that the process never counts its own
    /// acceptance (toward the acknowledgements of its submission) before it is durable.
    fn save_before_input(&mut self) {
        if self.save_after_send && self.phase != NodePhase::Stopped {
            self.sync_durable();
        }
    }

    /// Whether the engine's state that changed since the last save may be saved after
    /// the step's datagrams left rather than before (D22). It may unless a queued
    /// message reports it — an acknowledgement (`MSubAck`, `RSubAck`), a state report
    /// (`RIntResp`, `StateXferAck`), the interrogation (`RInt`) or a state transfer —
    /// or commits a proposal whose acceptance by this process is not durable yet. A
    /// submission (`MSub`, `RSub`) proposes: the initiator's own acceptance of it
    /// counts only when the acknowledgements are counted, in a later input, after the
    /// save. A commit of a proposal this process accepted durably reports nothing that
    /// a crash could lose: its install is implied by that acceptance, as for a member
    /// whose M-com was lost.
    fn save_may_follow_send(&self) -> bool {
        let reports = |k: MsgKind| {
            matches!(
                k,
                MsgKind::MSubAck
                    | MsgKind::RSubAck
                    | MsgKind::RInt
                    | MsgKind::RIntResp
                    | MsgKind::StateXfer
                    | MsgKind::StateXferAck
            )
        };
        if self.engine.outbox_has(reports) {
            return false;
        }
        if !self
            .engine
            .outbox_has(|k| matches!(k, MsgKind::MCom | MsgKind::RCom))
        {
            return true;
        }
        let v = self.engine.view().version;
        self.durable.view.version >= v
            || self
                .durable
                .accepted
                .as_ref()
                .is_some_and(|a| a.view.version >= v)
    }

    // ---- the glue ----

    /// After any input: probes, deliveries (the engine reacting to each), signs of
    /// life, transport suspicions, the engine's outputs, the service's, the leave.
    fn after_input(&mut self, now: Time) {
        if self.phase == NodePhase::Stopped {
            return;
        }
        while let Some((from, addr, n)) = self.endpoint.poll_probe(&mut self.probe_buf) {
            self.timers_moved = true;
            let payload = &self.probe_buf[..n];
            if service_wire::is_service(payload) {
                if let Some(s) = &mut self.service {
                    if self.engine.status() == Status::Member {
                        s.on_datagram(now, addr, payload, &self.engine);
                    }
                }
            } else if let Some(p) = Probe::decode(payload) {
                self.on_probe(now, from, addr, p);
            } else {
                self.stats.probes_bad += 1;
            }
        }
        while let Some(r) = self.endpoint.poll_refused() {
            self.answer_refused(now, r.from, r.addr);
        }
        self.flush_backlog(now);
        while let Some((from, n)) = self.endpoint.poll_delivery(&mut self.rx_buf) {
            self.timers_moved = true;
            let msg = &self.rx_buf[..n.min(self.rx_buf.len())];
            self.stats.delivered += 1;
            if msg.first() == Some(&RECOVERY_FORMAT) {
                if let Some((keep, t)) = &mut self.tap {
                    t.push(TapRecord {
                        sent: false,
                        peer: from,
                        kind: None,
                        bytes: if *keep { msg.to_vec() } else { Vec::new() },
                    });
                }
                self.on_recovery_message(now, from, n);
                continue;
            }
            if let Some((keep, t)) = &mut self.tap {
                t.push(TapRecord {
                    sent: false,
                    peer: from,
                    kind: msg.get(1).and_then(|b| MsgKind::from_u8(*b)),
                    bytes: if *keep { msg.to_vec() } else { Vec::new() },
                });
            }
            if self.engine.handle_message(now, from, msg).is_err() {
                self.stats.decode_errors += 1;
            }
            // Let the engine's reaction out before the next delivery.
            self.engine_outputs(now);
        }
        // Transport signs of life (D20): any datagram accepted from a member's current
        // incarnation, even one whose messages wait behind a lost datagram, defers the
        // ring detector's suspicion.
        for (peer, at) in self.endpoint.heard_since(self.heard_since) {
            self.engine.peer_alive(at, peer);
        }
        self.heard_since = now;
        while let Some(TransportEvent::PeerUnreachable(p)) = self.endpoint.poll_event() {
            tracing::debug!(node = %self.me, peer = %p, "transport: peer unreachable");
            self.timers_moved = true;
            self.engine.suspect(now, p);
        }
        self.engine_outputs(now);
        self.recovery_outputs(now);
        self.service_outputs(now);
        if let Some(until) = self.leaving {
            // Out once the removal is committed (the engine left, D9) and what it sent
            // last is acknowledged, or when the linger runs out.
            let left = matches!(self.engine.status(), Status::Excluded(_));
            if now >= until || (left && self.delivered_all()) {
                self.leaving = None;
                self.phase = NodePhase::Left;
                if !left {
                    // The removal did not commit in time: stop taking part, as a
                    // crash would (the group removes this process by suspicion). The
                    // channels close too, so that the transport's acknowledgements and
                    // keepalives stop vouching for it (D20).
                    self.engine = Engine::new(
                        self.cfg.engine.clone(),
                        Member {
                            id: self.me,
                            addr: self.addr,
                        },
                    );
                    self.saved_seq = 0;
                    for i in 0..self.last_members.len() {
                        let id = self.last_members[i].id;
                        if id != self.me {
                            self.endpoint.disconnect(id);
                        }
                    }
                    self.backlog.clear();
                }
                tracing::info!(node = %self.me, "left the group");
                self.push_event(CoreEvent::LeaveDone);
            }
        }
    }

    /// Sends what waited for room in a send window, in order per peer.
    fn flush_backlog(&mut self, now: Time) {
        if self.backlog.is_empty() {
            return;
        }
        self.blocked.clear();
        let mut i = 0;
        while i < self.backlog.len() {
            let p = &self.backlog[i];
            if self.blocked.contains(&p.to) {
                i += 1;
                continue;
            }
            match self.endpoint.send(now, p.to, p.addr, &p.bytes) {
                Ok(()) => {
                    self.stats.messages += 1;
                    self.queued = true;
                    self.backlog.remove(i);
                }
                Err(SendError::WindowFull) => {
                    self.blocked.push(p.to);
                    i += 1;
                }
                Err(e) => {
                    self.count_refusal(&e);
                    self.backlog.remove(i);
                }
            }
        }
    }

    fn count_refusal(&mut self, e: &SendError) {
        match e {
            SendError::Disconnected(_) | SendError::StaleIncarnation { .. } => {
                self.stats.send_refused += 1;
            }
            _ => {
                self.stats.send_errors += 1;
                tracing::error!(node = %self.me, "message refused by the transport: {e}");
            }
        }
    }

    /// The engine's messages to the endpoint (or the backlog), then its events.
    fn engine_outputs(&mut self, now: Time) {
        loop {
            // D22: what the engine's messages depend on is durable before they leave;
            // a change that none of them reports is saved right after they left.
            if self.engine.durable_seq() != self.saved_seq && !self.save_after_send {
                if self.save_may_follow_send() {
                    self.save_after_send = true;
                } else if !self.sync_durable() {
                    return;
                }
            } else if self.save_after_send && !self.save_may_follow_send() && !self.sync_durable() {
                return;
            }
            while let Some(t) = self.engine.poll_transmit() {
                if let Some((keep, tap)) = &mut self.tap {
                    tap.push(TapRecord {
                        sent: true,
                        peer: t.to,
                        kind: t.payload.get(1).and_then(|b| MsgKind::from_u8(*b)),
                        bytes: if *keep {
                            t.payload.to_vec()
                        } else {
                            Vec::new()
                        },
                    });
                }
                let parked = !self.backlog.is_empty() && self.backlog.iter().any(|p| p.to == t.to);
                let res = if parked {
                    Err(SendError::WindowFull)
                } else {
                    self.endpoint.send(now, t.to, t.addr, t.payload)
                };
                match res {
                    Ok(()) => {
                        self.stats.messages += 1;
                        self.queued = true;
                    }
                    Err(SendError::WindowFull) => {
                        if self.backlog.len() >= BACKLOG_CAP {
                            self.stats.backlog_overflow += 1;
                            tracing::error!(node = %self.me, to = %t.to, "send backlog full: message lost");
                        } else {
                            self.stats.backlogged += 1;
                            self.backlog.push_back(Parked {
                                to: t.to,
                                addr: t.addr,
                                bytes: t.payload.to_vec(),
                            });
                            self.stats.max_backlog =
                                self.stats.max_backlog.max(self.backlog.len() as u64);
                        }
                    }
                    Err(e) => self.count_refusal(&e),
                }
            }
            let Some(ev) = self.engine.poll_event() else {
                return;
            };
            self.on_engine_event(now, ev);
        }
    }

    fn on_engine_event(&mut self, now: Time, ev: Event) {
        match ev {
            Event::ViewInstalled { version, .. } => {
                let mut slot = if self.recent.len() >= RECENT_VIEWS {
                    self.recent.pop_front().expect("recent views are full")
                } else {
                    self.spare_views.pop().unwrap_or_else(|| {
                        View::with_tags(self.cfg.engine.max_members, self.cfg.engine.max_tag_bytes)
                    })
                };
                slot.clone_from(self.engine.view());
                debug_assert_eq!(slot.version, version);
                self.recent.push_back(slot);
                tracing::debug!(node = %self.me, version, "view installed");
                for m in &self.engine.view().members {
                    if self.known.len() < KNOWN_CAP || self.known.contains_key(&m.id) {
                        self.known.insert(m.id, m.addr);
                    }
                }
                self.last_members.clear();
                self.last_members
                    .extend_from_slice(&self.engine.view().members);
                if let Some(s) = &mut self.service {
                    s.on_view_installed(now, version, &self.engine);
                }
                self.fresh = false;
                // A member (by joining or a recovery) takes no further part in one.
                self.recovery = None;
                self.discovery = None;
                if !matches!(
                    self.phase,
                    NodePhase::Leaving | NodePhase::Left | NodePhase::Stopped
                ) {
                    self.phase = NodePhase::Member;
                }
                self.stats.views_installed += 1;
                self.push_event(CoreEvent::ViewInstalled { version });
            }
            Event::Suspected { peer } => {
                self.endpoint.disconnect(peer);
                if !self.backlog.is_empty() {
                    self.backlog.retain(|p| p.to != peer);
                }
                tracing::info!(node = %self.me, peer = %peer, "suspect");
                self.push_event(CoreEvent::Suspected { peer });
            }
            Event::Joined { version } => {
                if let Some(s) = &mut self.service {
                    s.on_joined(version);
                }
                tracing::info!(node = %self.me, version, "joined");
                let snapshot = self.engine.received_snapshot().to_vec();
                self.push_event(CoreEvent::Joined { version, snapshot });
            }
            Event::Excluded { reason } => {
                if reason == ExcludeReason::Left {
                    if self.engine.group_ended() {
                        // The last members left: the committed update removed everyone,
                        // so view x+1 is empty. The next start may found again, at the
                        // version after it.
                        self.durable.view.version += 1;
                        self.durable.view.members.clear();
                        self.durable.accepted = None;
                        self.durable.ended = true;
                        self.save();
                    }
                    self.push_event(CoreEvent::Left);
                    return;
                }
                if self.leaving.is_some() || self.engine.is_leaving() {
                    // Excluded while leaving: it is out, as it asked.
                    tracing::info!(node = %self.me, ?reason, "excluded while leaving");
                    self.push_event(CoreEvent::Left);
                    return;
                }
                tracing::warn!(node = %self.me, ?reason, "excluded from the group");
                self.push_event(CoreEvent::Excluded { reason });
                if self.cfg.auto_rejoin && self.leaving.is_none() && self.phase != NodePhase::Left {
                    self.new_incarnation(now, false);
                } else {
                    self.phase = NodePhase::Excluded;
                    // Out for good: close the channels, so that the transport's
                    // acknowledgements and keepalives stop vouching for this process
                    // (D20) and the ring detector can report it.
                    for i in 0..self.last_members.len() {
                        let id = self.last_members[i].id;
                        if id != self.me {
                            self.endpoint.disconnect(id);
                        }
                    }
                    self.backlog.clear();
                }
            }
            Event::Reconfiguring { version } => {
                tracing::info!(node = %self.me, version, "reconfiguring");
                self.push_event(CoreEvent::Reconfiguring { version });
            }
            Event::Submitted { version } => self.push_event(CoreEvent::Submitted { version }),
        }
    }

    /// A recovery message delivered from `from` (its bytes are `rx_buf[..n]`).
    fn on_recovery_message(&mut self, now: Time, from: ProcessId, n: usize) {
        let Some((addr, msg)) = RecoveryMsg::decode(&self.rx_buf[..n]) else {
            self.stats.decode_errors += 1;
            return;
        };
        if let Some(r) = &mut self.recovery {
            r.on_message(now, from, addr, msg, &mut self.durable);
            return;
        }
        // A member answers a recovering process of its own view (one that missed the
        // decision) with the view: it starts from it, as a joiner from State-Xfer.
        if self.engine.status() == Status::Member && self.engine.view().contains(from) {
            if let RecoveryMsg::State { .. } = msg {
                let v = self.engine.view().clone();
                self.send_recovery(now, from, addr, &RecoveryMsg::Decide { view: v });
            }
        }
    }

    fn send_recovery(&mut self, now: Time, to: ProcessId, addr: SocketAddr, msg: &RecoveryMsg) {
        msg.encode(self.addr, &mut self.rec_buf);
        if let Some((keep, tap)) = &mut self.tap {
            tap.push(TapRecord {
                sent: true,
                peer: to,
                kind: None,
                bytes: if *keep {
                    self.rec_buf.clone()
                } else {
                    Vec::new()
                },
            });
        }
        match self.endpoint.send(now, to, addr, &self.rec_buf) {
            Ok(()) => {
                self.stats.recovery_sent += 1;
                self.queued = true;
            }
            Err(e) => tracing::debug!(node = %self.me, %to, "recovery message not sent: {e}"),
        }
    }

    /// The recovery's outputs: the durable state saved first, then its messages, then
    /// a decision that makes this process a member.
    fn recovery_outputs(&mut self, now: Time) {
        let Some(r) = &mut self.recovery else {
            return;
        };
        if r.take_dirty() && !self.save() {
            return;
        }
        if self.durable.view.version > 0
            && self.durable.view.members.is_empty()
            && !self.durable.ended
        {
            // The recovery decided (or adopted) the empty view: the group ended with
            // its last members' leave. A seed may found a new one, after it.
            tracing::info!(node = %self.me, version = self.durable.view.version, "the group ended: cold start");
            self.durable.ended = true;
            if !self.save() {
                return;
            }
            self.recovery = None;
            self.fresh = self.cfg.may_found;
            self.begin_discovery(now);
            return;
        }
        while let Some((to, addr, msg)) = self.recovery.as_mut().and_then(|r| r.poll_out()) {
            self.send_recovery(now, to, addr, &msg);
        }
        let Some((prev, view)) = self.recovery.as_mut().and_then(|r| r.take_decided()) else {
            return;
        };
        // GMP-1: the recovered view removes the processes of the view before it; the
        // recovery believes each faulty (stopped, replaced by a new incarnation of its
        // name, or silent while a majority of names recovered).
        for m in &prev.members {
            if !view.contains(m.id) && m.id != self.me {
                self.push_event(CoreEvent::Suspected { peer: m.id });
            }
        }
        tracing::info!(node = %self.me, version = view.version, members = view.members.len(), "recovered: member of the view the recovery decided");
        self.recovery = None;
        self.discovery = None;
        if self.engine.status() != Status::Idle {
            // Joining meanwhile: a fresh engine for the same process. The endpoint
            // stays (its channels carry the decision to the others).
            self.engine = Engine::new(
                self.cfg.engine.clone(),
                Member {
                    id: self.me,
                    addr: self.addr,
                },
            )
            .with_max_joins_per_sec(self.cfg.max_joins_per_sec);
            if !self.snapshot.is_empty() {
                // Accepted by `set_snapshot` under the same bound.
                let _ = self.engine.set_snapshot(&self.snapshot);
            }
            self.saved_seq = 0;
        }
        self.stats.recoveries += 1;
        self.engine.bootstrap_at(now, view.version, &view.members);
        if let Some(s) = &mut self.service {
            s.on_founded(view.version, &view.members);
        }
        self.push_event(CoreEvent::Recovered {
            version: view.version,
        });
        self.engine_outputs(now);
    }

    /// The membership service's outputs: its datagrams (as probes) and system views.
    fn service_outputs(&mut self, now: Time) {
        let Some(s) = &mut self.service else {
            return;
        };
        while let Some(d) = s.poll_datagram() {
            self.service_out.push_back(d);
        }
        while let Some(c) = self.service.as_mut().and_then(|s| s.poll_change()) {
            self.push_event(CoreEvent::SystemView(c));
        }
        self.move_service_out(now);
    }

    /// Moves waiting service datagrams into the endpoint's probe queue while it has
    /// room; true if any moved.
    fn move_service_out(&mut self, now: Time) -> bool {
        let mut moved = false;
        while let Some((to, b)) = self.service_out.pop_front() {
            if self.endpoint.send_probe(now, to, &b).is_err() {
                self.service_out.push_front((to, b));
                break;
            }
            moved = true;
            self.queued = true;
        }
        moved
    }

    fn push_event(&mut self, ev: CoreEvent) {
        if self.events.len() >= EVENT_QUEUE {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back((self.me, ev));
    }

    /// Every message sent to the members of the last view was acknowledged.
    fn delivered_all(&self) -> bool {
        self.backlog.is_empty()
            && self.last_members.iter().all(|m| {
                m.id == self.me
                    || self
                        .endpoint
                        .peer_stats(m.id)
                        .map(|s| s.frames_in_window == 0 || s.disconnected)
                        .unwrap_or(true)
            })
    }

    /// Starts (or restarts) discovery: queries to the seeds and the members known.
    fn begin_discovery(&mut self, now: Time) {
        let has_targets = !self.targets().is_empty();
        self.discovery = Some(Discovery::new(
            self.me,
            self.fresh,
            has_targets,
            self.cfg.coldstart_rounds,
            self.cfg.coldstart_round_us,
            now,
        ));
        self.phase = NodePhase::Discovering;
        if self.durable.view.version > 0 {
            // With a view: recover. With a group that ended: take part only to tell
            // recovering processes it ended (they adopt the empty view and cold-start).
            self.recovery = Some(Recovery::new(
                self.me,
                self.addr,
                self.cfg.coldstart_round_us,
                now,
                &self.durable,
            ));
            if !self.durable.ended {
                self.phase = NodePhase::Recovering;
            }
        }
        self.push_event(CoreEvent::Started);
    }

    fn targets(&self) -> Vec<SocketAddr> {
        let mut t: Vec<SocketAddr> = self.cfg.seeds.clone();
        t.extend(self.last_members.iter().map(|m| m.addr));
        t.retain(|a| *a != self.addr);
        t.sort();
        t.dedup();
        t
    }

    fn probe(&mut self, now: Time, addr: SocketAddr, p: &Probe) {
        p.encode(&mut self.probe_out);
        match self.endpoint.send_probe(now, addr, &self.probe_out) {
            Ok(()) => {
                self.stats.probes_sent += 1;
                self.queued = true;
            }
            Err(e) => tracing::debug!(node = %self.me, %addr, "probe not sent: {e}"),
        }
    }

    fn on_probe(&mut self, now: Time, from: ProcessId, addr: SocketAddr, p: Probe) {
        // D24 rule 7: a member of the view runs and reaches this process.
        if self.engine.member_alive(now, from) {
            tracing::info!(node = %self.me, peer = %from, "the network heals but beliefs leave no majority: recovering");
        }
        if let Probe::Member { contacts, .. } = &p {
            for c in contacts {
                if self.known.len() < KNOWN_CAP {
                    self.known.insert(c.id, c.addr);
                }
            }
        }
        if self.known.len() < KNOWN_CAP || self.known.contains_key(&from) {
            self.known.insert(from, addr);
        }
        if let Probe::Query { .. } = p {
            let answer = match self.engine.status() {
                Status::Member => Some(Probe::Member {
                    version: self.engine.view().version,
                    contacts: self
                        .engine
                        .view()
                        .members
                        .iter()
                        .filter(|m| !self.engine.faulty().contains(&m.id))
                        .take(coldstart::MAX_CONTACTS)
                        .copied()
                        .collect(),
                }),
                _ if self.recovery.is_some() && !self.durable.ended => Some(Probe::Recovering {
                    version: self.durable.view.version,
                }),
                Status::Joining => Some(Probe::Member {
                    version: 0,
                    contacts: self
                        .join_contacts
                        .iter()
                        .take(coldstart::MAX_CONTACTS)
                        .copied()
                        .collect(),
                }),
                _ => match &self.discovery {
                    Some(d) if d.is_cold() => Some(Probe::ColdStarting { round: d.round() }),
                    _ => None,
                },
            };
            if let Some(a) = answer {
                self.probe(now, addr, &a);
            }
            // D24: a querier outside this member's view may be a process that was
            // removed and withholds (it believes it is still a member): tell it.
            if self.engine.status() == Status::Member && !self.engine.view().contains(from) {
                self.answer_refused(now, from, addr);
            }
        }
        if let Probe::Recovering { version } = p {
            if let Some(r) = &mut self.recovery {
                r.on_peer(now, from, addr);
            }
            // D24 rule 5: a later view than this member's was installed, and the
            // group is being recovered: a member that hears no majority stops
            // withholding and takes part in the recovery as a new incarnation.
            if version > self.engine.view().version && self.engine.stop_withholding(now) {
                tracing::info!(node = %self.me, peer = %from, version, "a later view is being recovered while this process hears no majority: recovering");
            }
        }
        if let Probe::Excluded {
            you,
            version,
            contacts,
        } = &p
        {
            if *you == self.me {
                self.on_excluded_notice(now, from, *version, contacts);
            }
            return;
        }
        if let Probe::Query { .. } = p {
            // D24: a newer process of a name of this member's view is looking for the
            // group, so the old one is gone; a member that hears no majority stops
            // withholding and takes part in the recovery as a new incarnation.
            let replaced = self
                .engine
                .view()
                .members
                .iter()
                .any(|m| m.id.node == from.node && m.id.incarnation < from.incarnation);
            if replaced && self.engine.stop_withholding(now) {
                tracing::info!(node = %self.me, peer = %from, "a name of the view restarted while this process hears no majority: recovering");
            }
        }
        // A recovering process joins only through members: another joiner's contacts
        // (version 0) may be as gone as its own.
        let from_joiner = matches!(p, Probe::Member { version: 0, .. });
        if let Some(d) = self
            .discovery
            .as_mut()
            .filter(|_| !(from_joiner && self.recovery.is_some()))
        {
            match d.on_probe(now, from, &p) {
                Decision::Join(c) => self.join(now, c),
                Decision::Bootstrap => self.bootstrap(now),
                Decision::Query | Decision::Wait => {}
            }
        }
    }

    /// D24, the member's side: the transport refused a datagram from `from` (it was
    /// disconnected, or addressed an older incarnation of this process), or `from`
    /// queried it. If this process is a member and `from` is not in its view, tell it
    /// so, with contacts to rejoin through. At most one notice per address per
    /// discovery round; at most [`TOLD_CAP`] addresses remembered (a full table
    /// answers nobody new until an entry is a round old).
    fn answer_refused(&mut self, now: Time, from: ProcessId, addr: SocketAddr) {
        if self.engine.status() != Status::Member || self.leaving.is_some() {
            return;
        }
        if self.engine.view().contains(from) {
            // Still a member here: behind (it addressed an older incarnation of this
            // node), or believed faulty with its removal under way. The group's own
            // messages catch it up or remove it (telling it now would exclude it
            // before the group decided: a reconfigurer may yet keep it). If this
            // process withholds, a believed-faulty member alive is what it lacks
            // (D24 rule 7).
            if self.engine.member_alive(now, from) {
                tracing::info!(node = %self.me, peer = %from, "the network heals but beliefs leave no majority: recovering");
            }
            return;
        }
        let view = self.engine.view();
        let round = self.cfg.coldstart_round_us;
        match self.told.iter().position(|(a, _)| *a == addr) {
            Some(i) if now.micros_since(self.told[i].1) < round => return,
            Some(i) => self.told[i].1 = now,
            None if self.told.len() < TOLD_CAP => self.told.push((addr, now)),
            None => {
                let (i, oldest) = self
                    .told
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, (_, t))| *t)
                    .map(|(i, (_, t))| (i, *t))
                    .expect("the table is full");
                if now.micros_since(oldest) < round {
                    return;
                }
                self.told[i] = (addr, now);
            }
        }
        let me = Member {
            id: self.me,
            addr: self.addr,
        };
        let mut contacts = Vec::with_capacity(coldstart::MAX_CONTACTS);
        contacts.push(me);
        contacts.extend(
            view.members
                .iter()
                .filter(|m| {
                    m.id != self.me && m.id != from && !self.engine.faulty().contains(&m.id)
                })
                .take(coldstart::MAX_CONTACTS - 1)
                .copied(),
        );
        let notice = Probe::Excluded {
            you: from,
            version: view.version,
            contacts,
        };
        tracing::debug!(node = %self.me, to = %from, %addr, "telling a refused process it was excluded");
        self.stats.exclusions_told += 1;
        self.probe(now, addr, &notice);
    }

    /// D24, the excluded process's side: `by` says this process is out. A member
    /// stops if the notice proves it ([`Engine::told_excluded`]) and its next
    /// incarnation joins through `contacts` at once; a joiner whose request reached a
    /// stale contact starts over at once as a new incarnation through them.
    fn on_excluded_notice(&mut self, now: Time, by: ProcessId, version: u64, contacts: &[Member]) {
        let fresh: Vec<Member> = contacts
            .iter()
            .filter(|c| c.id.node != self.me.node)
            .copied()
            .collect();
        match self.engine.status() {
            Status::Member
                if self.leaving.is_none() && self.engine.told_excluded(now, by, version) =>
            {
                tracing::info!(node = %self.me, %by, version, "told it was excluded");
                self.stats.exclusions_heard += 1;
                if !fresh.is_empty() {
                    self.rejoin_contacts = Some(fresh);
                }
            }
            Status::Joining if version > 0 && !fresh.is_empty() => {
                if self.join_contacts.iter().any(|c| c.id == by) {
                    return;
                }
                // The join request went to a process that is gone (a stale contact).
                // Start over at once through the member that answered, as a new
                // incarnation: the group may have added and removed this one already
                // (its State-Xfer lost), and a removed id must never come back.
                tracing::info!(node = %self.me, %by, "join contact refused: joining through the member that answered");
                self.rejoin_contacts = Some(fresh);
                self.new_incarnation(now, false);
            }
            _ => {}
        }
    }

    fn bootstrap(&mut self, now: Time) {
        self.discovery = None;
        let me = Member {
            id: self.me,
            addr: self.addr,
        };
        // After a group that ended, versions go on (never two views with one version).
        let version = if self.durable.ended {
            self.durable.view.version + 1
        } else {
            1
        };
        tracing::info!(node = %self.me, version, "cold start: founding the group");
        self.engine.bootstrap_at(now, version, &[me]);
        self.on_founded();
    }

    fn on_founded(&mut self) {
        if let Some(s) = &mut self.service {
            let v = self.engine.view();
            s.on_founded(v.version, &v.members);
        }
        self.push_event(CoreEvent::Founded);
    }

    fn join(&mut self, now: Time, contacts: Vec<Member>) {
        // A recovery goes on while joining: the contacts may be gone too, and then the
        // recovery is what brings the group back.
        self.discovery = None;
        tracing::info!(node = %self.me, contacts = contacts.len(), "joining the group");
        for c in &contacts {
            if self.known.len() < KNOWN_CAP || self.known.contains_key(&c.id) {
                self.known.insert(c.id, c.addr);
            }
        }
        self.push_event(CoreEvent::Joining {
            contacts: contacts.len(),
        });
        self.join_contacts = contacts;
        self.join_started = now;
        self.engine.join(now, &self.join_contacts);
        self.phase = NodePhase::Joining;
    }

    /// Comes back as a new incarnation: fresh endpoint and engine, discovery again.
    /// What the old endpoint still had queued is dropped with it.
    fn new_incarnation(&mut self, now: Time, join_timeout: bool) {
        let old = self.me;
        let me = ProcessId::new(old.node, old.incarnation + 1);
        self.reincarnate(me);
        self.service_out.clear();
        self.backlog.clear();
        self.heard_since = now;
        self.stats.rejoins += 1;
        self.recovery = None;
        self.durable.incarnation = me.incarnation;
        if !self.save() {
            return;
        }
        // `fresh` stays as it was: false once this node installed any view, so a
        // process that was a member only ever joins again.
        tracing::info!(old = %old, new = %me, "rejoining as a new incarnation");
        self.events.push_back((
            old,
            CoreEvent::Rejoining {
                old,
                new: me,
                join_timeout,
            },
        ));
        self.begin_discovery(now);
        if let Some(c) = self.rejoin_contacts.take() {
            // D24: told it was excluded, with contacts: join through them at once
            // (the recovery, if any, goes on meanwhile).
            self.join(now, c);
        }
    }
}

impl DatagramCore for NodeCore {
    #[inline]
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        NodeCore::handle_datagram(self, now, from, datagram)
    }
    #[inline]
    fn handle_timeout(&mut self, now: Time) {
        NodeCore::handle_timeout(self, now)
    }
    #[inline]
    fn poll_transmit(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        NodeCore::poll_transmit(self, now, buf)
    }
    #[inline]
    fn poll_timeout(&self) -> Option<Time> {
        NodeCore::poll_timeout(self)
    }
    #[inline]
    fn transport_config(&self) -> &TransportConfig {
        self.endpoint.config()
    }
    #[inline]
    fn transmit_hint(&self) -> bool {
        self.queued
            || self.save_after_send
            || !self.service_out.is_empty()
            || DatagramCore::transmit_hint(&self.endpoint)
    }
    #[inline]
    fn take_timer_restarted(&mut self) -> bool {
        let ep = DatagramCore::take_timer_restarted(&mut self.endpoint);
        std::mem::take(&mut self.timers_moved) || ep
    }
    #[inline]
    fn transmit_drained(&self) -> bool {
        // A pending save runs in the `poll_transmit` that returns `None`.
        DatagramCore::transmit_drained(&self.endpoint)
            && self.service_out.is_empty()
            && !self.save_after_send
    }
}
