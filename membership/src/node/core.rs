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
use crate::service::{wire as service_wire, CoreService, ServiceConfig, ServiceStats};
use crate::view::{ClientOp, Member, View};
use crate::{ProcessId, Time};

mod discovery;
mod glue;
mod reading;
mod types;

pub use types::{CoreConfig, CoreEvent, CoreStats, NodePhase, TapRecord};

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

/// Most membership-service datagrams waiting for room in the probe queue: a few
/// snapshots of a 100,000-client system view (each ~1,700 datagrams); beyond that
/// further ones are dropped and counted (`CoreStats::service_out_dropped`), so that
/// snapshot requests from many (made-up) addresses cost bounded memory. Clients ask
/// again.
pub const SERVICE_OUT_CAP: usize = 16_384;

/// Most addresses remembered for rate-limiting "you were excluded" notices (D24).
pub const TOLD_CAP: usize = 32;

/// A message parked while the send window to `to` was full.
#[derive(Debug)]
struct Parked {
    to: ProcessId,
    addr: SocketAddr,
    bytes: Vec<u8>,
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
    /// step's datagrams have left (`poll_transmit` returning `None`; without storage,
    /// the in-memory copy at the next event poll), and in any case before the next
    /// input (D22: the save overlaps the peers' work on them).
    save_after_send: bool,
    /// An event whose bookkeeping (an install's recent views, the service's system
    /// view, the node's event; a suspicion's closed channel) waits past this step's
    /// datagrams, with the time of the step: the M-com or the acknowledgement leaves
    /// first, and before it polls an install's events the runtime yields its core to
    /// the processes they woke; later events wait behind it, in order. Finished by
    /// the next event poll, and in any case before the next input or command
    /// ([`NodeCore::finish_deferred`]).
    deferred: Option<(Time, Event)>,
    /// [`NodeCore::finish_deferred`] is running: no event is deferred again.
    finishing: bool,
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
    /// Rank in the view of the member the driver's next keep-warm ping goes to
    /// ([`DatagramCore::warm_target`]): the members are taken in turn.
    warm_next: usize,
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
            deferred: None,
            finishing: false,
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
            warm_next: 0,
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
            let next =
                if crate::sabotage::active(crate::sabotage::Sabotage::RestartAsTheSameProcess) {
                    d.incarnation
                } else {
                    d.incarnation.saturating_add(1)
                };
            let inc = self.me.incarnation.max(next);
            if inc != self.me.incarnation {
                self.reincarnate(ProcessId::new(self.me.node, inc));
            }
            self.durable = d;
            if crate::sabotage::active(crate::sabotage::Sabotage::ForgetViewOnRestart) {
                self.durable.view.version = 0;
                self.durable.view.members.clear();
            }
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
                // `last_members` stays a subset of `known` (see the install).
                for m in &self.last_members {
                    if self.known.len() < KNOWN_CAP {
                        self.known.insert(m.id, m.addr);
                    }
                }
            }
        }
        self.durable.name = self.me.node.as_str().to_string();
        self.durable.incarnation = self.me.incarnation;
        self.storage = storage;
        self
    }

    /// The durable state as it stands: with storage, as saved at the end of the step's
    /// transmissions (`poll_transmit` returning `None`); without, as copied by the
    /// step's event poll ([`poll_event`](Self::poll_event)). Either way before the
    /// next input.
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
                // A step's bookkeeping left for the event poll (D22's save after the
                // send comes first) reads the engine that did the step: done on it,
                // before it is replaced, so that the install or suspicion is reported
                // as it happened, and before the failure. The rest of that step stops
                // with the engine.
                if let Some((at, ev)) = self.deferred.take() {
                    self.on_engine_event(at, ev);
                }
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
        // A node whose last group ended may be a member of a new group whose versions
        // start lower (its founder knew nothing of the old one): the new group's view
        // replaces the ended marker, or nothing would be saved until the new group
        // passed the old version (D22's saves, and a restart would take it for ended).
        if v.version > self.durable.view.version || self.durable.ended {
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
        self.finish_deferred();
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
        self.finish_deferred();
        assert_eq!(self.phase, NodePhase::Idle, "join only from a fresh core");
        self.join(now, contacts.to_vec());
        self.after_input(now);
    }

    /// Leaves the group gracefully: the leave request goes to the mgr, and the node
    /// lingers until it is delivered ([`CoreEvent::LeaveDone`]). A node that is not a
    /// member stops discovery and is out at once.
    pub fn leave(&mut self, now: Time) {
        self.finish_deferred();
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
        self.finish_deferred();
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
        self.finish_deferred();
        self.engine.set_tags(now, tags)?;
        self.cfg.engine.tags.clear();
        self.cfg.engine.tags.extend_from_slice(tags);
        self.after_input(now);
        Ok(())
    }

    /// Stops: the node takes no further part (the runtime's shutdown).
    pub fn stop(&mut self) {
        self.finish_deferred();
        // A save left for after the last step's datagrams is not lost to a clean stop.
        self.save_before_input();
        self.discovery = None;
        self.phase = NodePhase::Stopped;
    }

    // ---- inputs ----

    /// Feeds one datagram received from `from` at `now`, and lets the engine react.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        if self.phase == NodePhase::Stopped {
            // Stopped for good: not even the transport answers (its acknowledgements
            // would vouch for a process that takes no part).
            return;
        }
        self.finish_deferred();
        self.save_before_input();
        self.endpoint.handle_datagram(now, from, datagram);
        self.after_input(now);
    }

    /// Runs everything due at `now`: transport timers, discovery rounds, the engine's
    /// and the service's timers, the join watchdog and the leave linger.
    pub fn handle_timeout(&mut self, now: Time) {
        if self.phase == NodePhase::Stopped {
            // No retransmission, recovery round or engine timer after the stop (its
            // state would change unsaved); what was queued may still be flushed.
            return;
        }
        self.finish_deferred();
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
        // The step's datagrams are out: the save that none of them waited for. The
        // in-memory copy (no storage) waits for the event poll too, as the deferred
        // bookkeeping does: nothing outlives a crash, so no reader but this process
        // can tell when it was made.
        if self.save_follows_transmit() {
            self.save_before_input();
        }
        None
    }

    /// Makes the in-memory copy left for after the step (no storage): a save to
    /// storage stays with the datagrams, as D22 orders it.
    pub(super) fn copy_in_memory(&mut self) {
        if self.storage.is_none() {
            self.save_before_input();
        }
    }

    /// A save waits for this step's datagrams: one to storage. The in-memory copy of a
    /// process without storage is made by the next event poll or input instead
    /// (`save_after_send` either way).
    fn save_follows_transmit(&self) -> bool {
        self.save_after_send && self.storage.is_some()
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
    ///
    /// Without storage nothing outlives a crash, so nothing a message reports can be
    /// lost that the copy would have kept: the in-memory copy always follows the send
    /// (issue 19: it was ~25 lines of code and a clone of the view on a member's
    /// M-sub-to-ack path), and still comes before any further input.
    fn save_may_follow_send(&self) -> bool {
        if self.storage.is_none() {
            return true;
        }
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
            || self.save_follows_transmit()
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
            && !self.save_follows_transmit()
    }

    /// A view change this node takes part in is open (`Engine::open_round`, named by
    /// the view version it started from): the mgr awaits acknowledgements, a member
    /// the commit of what it acknowledged or the M-sub acting on its suspicion.
    fn open_round(&self) -> Option<u64> {
        self.engine.open_round()
    }

    /// The last `warm_up_us` before the ring detector would suspect the member it
    /// watches, while this node is a member: the view change that follows a
    /// suspicion is about to come. The lead is at most a quarter of the suspicion
    /// timeout and half of what it leaves beyond a heartbeat interval, so that a
    /// watched member heard at every heartbeat never opens a window (none if that
    /// leaves nothing).
    fn warm_up(&self) -> Option<(Time, Time)> {
        if self.phase() != NodePhase::Member || self.cfg.warm_up_us == 0 {
            return None;
        }
        let (_, due) = self.engine.suspicion_due()?;
        let e = &self.cfg.engine;
        let lead = (self.cfg.warm_up_us)
            .min(e.suspect_timeout_us / 4)
            .min(e.suspect_timeout_us.saturating_sub(e.heartbeat_interval_us) / 2);
        (lead > 0).then(|| (Time(due.0.saturating_sub(lead)), due))
    }

    /// The view's other members but the one about to be suspected, by rank: the mgr
    /// first, which takes part in every round.
    fn warm_up_target(&self, i: usize) -> Option<SocketAddr> {
        if self.phase() != NodePhase::Member {
            return None;
        }
        let silent = self.engine.suspicion_due().map(|(p, _)| p);
        let mut others =
            (self.engine.view().members.iter()).filter(|m| m.id != self.me && Some(m.id) != silent);
        others.nth(i).map(|m| m.addr)
    }

    /// Calls from the view's other members only, known by the addresses in the view
    /// (an IPv4 address mapped into IPv6 counts as itself).
    fn answers_warm_up(&self, from: SocketAddr) -> bool {
        let canonical = |a: SocketAddr| (a.ip().to_canonical(), a.port());
        self.phase() == NodePhase::Member
            && (self.engine.view().members.iter())
                .any(|m| m.id != self.me && canonical(m.addr) == canonical(from))
    }

    /// The view's other members in turn, while this node is a member: any of them may
    /// send it the next protocol message (the mgr an M-sub, a member its
    /// acknowledgement or suspicion), and each one's pings keep the paths between them warm.
    fn warm_target(&mut self) -> Option<SocketAddr> {
        if self.phase() != NodePhase::Member {
            return None;
        }
        let members = &self.engine.view().members;
        let n = members.len();
        for _ in 0..n {
            let m = &members[self.warm_next % n];
            self.warm_next = (self.warm_next + 1) % n;
            if m.id != self.me {
                return Some(m.addr);
            }
        }
        None
    }
}
