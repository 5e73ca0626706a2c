//! The S-GMP engine: one process's side of the protocol, as a sans-IO state machine.
//!
//! Inputs are method calls carrying `now`; outputs are polled: messages with
//! [`Engine::poll_transmit`], events with [`Engine::poll_event`], the next deadline with
//! [`Engine::poll_timeout`]. All buffers are sized from [`EngineConfig`] at
//! construction; a view change allocates nothing.
//!
//! The code follows the Appendix of the paper. The pieces:
//! - `initiator`: the mgr task and the reconfiguration initiator task (they share
//!   the submit / ack / commit machinery and the State-Xfer handshake);
//! - `outer`: the outer-process task and the outer side of reconfiguration;
//! - `join`: a process outside the group asking to join;
//! - this module: state, Gossip and Disconnect, DoPreCommit / DoCommit, the outbox.

mod clients;
mod fingerprint;
mod health;
mod initiator;
mod join;
pub use join::JoinRate;
mod invariants;
mod outer;
mod ranks;
mod staged;
mod tags;

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::config::{ConfigError, EngineConfig};
use crate::detector::{DetectorAction, RingDetector};
use crate::msg::{self, Msg, MsgError, MsgKind, Writer, KIND_COUNT};
use crate::view::{ClientOp, Member, Proposal, Update, View};
use crate::{ProcessId, Time};

use initiator::Initiator;
use outer::OuterPhase;
use staged::Staged;

/// Where a process stands with respect to the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not started: neither bootstrapped nor joining.
    Idle,
    /// Asking to join; not a member yet.
    Joining,
    /// A member of the group.
    Member,
    /// No longer a member and never will be again (under this process id).
    Excluded(ExcludeReason),
}

/// How a process came to believe a member faulty. GMP-1 asks that a removed process be
/// believed faulty by someone first; a belief [`SuspicionCause::is_root`] is one that
/// did not come from another process's message or from this process's own commit, so
/// the checkers can tell a removal something observed from one the protocol invented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SuspicionCause {
    /// Its own failure detection: the ring detector, the transport, a protocol phase
    /// that timed out waiting for the member, a Gossip refused (D18).
    Observed,
    /// A newer incarnation of the member's name asked to join.
    Replaced,
    /// The member asked to leave (and this process is not the mgr removing it).
    Leaving,
    /// Another process said so: the Gossip of a protocol message, a submission, a
    /// State-Xfer, or the pending update a new initiator took over.
    Reported,
    /// This process committed a view without the member (DoCommit marks every member
    /// it removes faulty just before the install).
    Removed,
}

impl SuspicionCause {
    /// True if the belief starts here (observed, a replacement, a leave request), not
    /// handed on from another process or this process's own commit.
    pub fn is_root(self) -> bool {
        matches!(
            self,
            SuspicionCause::Observed | SuspicionCause::Replaced | SuspicionCause::Leaving
        )
    }

    /// A short name (`observed`, `replaced`, `leaving`, `reported`, `removed`): the
    /// event log's `cause`.
    pub fn as_str(self) -> &'static str {
        match self {
            SuspicionCause::Observed => "observed",
            SuspicionCause::Replaced => "replaced",
            SuspicionCause::Leaving => "leaving",
            SuspicionCause::Reported => "reported",
            SuspicionCause::Removed => "removed",
        }
    }
}

/// Why a process stopped being a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExcludeReason {
    /// A committed view removed it.
    Removed,
    /// A member gossiped that it believes this process faulty (it is being removed).
    SuspectedBy(ProcessId),
    /// As an initiator it did not get a majority of its view to respond (the
    /// Appendix's `crash`): a minority never moves on.
    NoMajority,
    /// It received R-int from a lower-ranked reconfigurer (the Appendix's outer
    /// reconfiguration `crash_p`), or is too far behind to catch up.
    Superseded,
    /// It asked to leave (graceful leave).
    Left,
    /// Its own failure detection (detector, transport, timeouts) made it believe a
    /// majority of its view faulty: it is in a minority and stops rather than put those
    /// suspicions on the wire (`docs/PROTOCOL.md`, D18).
    IsolatedMinority,
    /// A proposal or commit would make the view larger than this process's
    /// `max_members` (its views are sized from it at start): a group configured with
    /// more room than this process, or a forged update. It cannot hold that view, so
    /// it stops as a member rather than install another (`docs/PROTOCOL.md`, D30).
    ViewTooLarge,
}

/// Something the application (or driver) should know about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A new local view was installed; read it with [`Engine::view`].
    ViewInstalled {
        /// Its version.
        version: u64,
        /// [`View::digest`] of it, for cheap cross-process comparison.
        digest: u64,
        /// Number of members.
        size: usize,
    },
    /// This process now believes `peer` faulty: the driver must disconnect it at the
    /// transport (Disconnect) — nothing more may be accepted from it.
    Suspected {
        /// The suspected process.
        peer: ProcessId,
        /// How the belief came about.
        cause: SuspicionCause,
    },
    /// This process joined the group (its first view follows as `ViewInstalled`).
    Joined {
        /// Version of the first view.
        version: u64,
    },
    /// This process stopped being a member.
    Excluded {
        /// Why.
        reason: ExcludeReason,
    },
    /// As initiator, this process submitted an update for `version` (used to measure
    /// commit latency from the mgr's decision).
    Submitted {
        /// The version the update would form.
        version: u64,
    },
    /// This process became the initiator of reconfiguration.
    Reconfiguring {
        /// Its view version when it started.
        version: u64,
    },
}

/// An application snapshot that does not fit the configured `max_snapshot`
/// ([`Engine::set_snapshot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the application snapshot is {len} bytes, more than max_snapshot ({max} bytes); \
     joiners keep getting the previous one (raise max_snapshot or send less)"
)]
pub struct SnapshotTooLarge {
    /// The snapshot's length.
    pub len: usize,
    /// The configured bound.
    pub max: usize,
}

/// A message to put on a channel.
#[derive(Debug)]
pub struct Transmit<'a> {
    /// Destination process.
    pub to: ProcessId,
    /// Its address.
    pub addr: SocketAddr,
    /// The encoded message.
    pub payload: &'a [u8],
}

/// How many times in a row the ring detector's suspicion of the watched member is
/// postponed by one more suspicion timeout when it would leave this process believing
/// a majority of its view faulty (D18). After that the suspicion stands and the
/// process, in a minority, excludes itself ([`ExcludeReason::IsolatedMinority`]).
pub const MAX_POSTPONE: u32 = 3;

/// Most contacts a joining process tries in turn ([`Engine::join`] keeps the first
/// this many and ignores the rest).
pub const MAX_JOIN_CONTACTS: usize = 16;

/// Processes removed from earlier views remembered (so never re-admitted), per member
/// slot of the configuration: a ring of `REMOVED_PER_MEMBER * max_members` ids.
pub const REMOVED_PER_MEMBER: usize = 4;

/// How many suspicions in a row a process withholds (D21, D24) while it hears some
/// other member but no majority before it stops ([`ExcludeReason::IsolatedMinority`])
/// and comes back through the recovery (D23): the split may have healed while the
/// view it is stuck in (too many believed faulty, or a later view it missed) can never
/// reach a majority again. A process that hears nobody withholds for as long as that
/// lasts, and learns the rest from D24's notice.
pub const MAX_WITHHOLD: u32 = 16;

/// Committed updates kept for [`Engine::committed_update`].
pub const COMMIT_LOG: usize = 16;

/// Counters kept by the engine. Per-kind arrays are indexed by `MsgKind as usize`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Messages handed to the transport, by kind.
    pub sent: [u64; KIND_COUNT],
    /// Self-addressed messages (an initiator's multicast to itself and its own ack),
    /// handled locally, never sent; the paper's formulas count them.
    pub self_addressed: [u64; KIND_COUNT],
    /// Multicast copies not sent because the destination is believed faulty
    /// (Disconnect); the paper's formulas count them.
    pub suppressed: [u64; KIND_COUNT],
    /// Messages received and decoded, by kind.
    pub received: [u64; KIND_COUNT],
    /// Messages that failed to decode.
    pub decode_errors: u64,
    /// Messages dropped because their sender is believed faulty (Disconnect).
    pub dropped_from_faulty: u64,
    /// Messages ignored because they did not fit the current state (stale, not from
    /// the leader, from a non-member, or received while not a member).
    pub ignored: u64,
    /// Join requests dropped because the queue was full or the joiner was excluded before.
    pub joins_refused: u64,
    /// Client changes dropped because the queue was full or this member could not
    /// forward them (no mgr known); the client or its watcher repeats them.
    pub client_ops_dropped: u64,
    /// Client changes committed (as part of updates).
    pub client_ops_committed: u64,
    /// Answers that contradict what honest processes can send (e.g. two committed
    /// values for one version): counted and handled safely, never trusted.
    pub anomalies: u64,
    /// Messages refused because adopting their Gossip would have made this process
    /// believe a majority of its view faulty; their sender was suspected instead (D18).
    pub gossip_refused: u64,
    /// Outside suspicions ([`Engine::suspect`]) ignored because they would have left
    /// this process believing a majority of its view faulty (D18).
    pub suspicions_ignored: u64,
    /// Views installed.
    pub views_installed: u64,
    /// Reconfigurations this process initiated.
    pub reconfigurations: u64,
    /// Commits of the next version accepted from a member other than the one this
    /// process follows, because they were the proposal it acknowledged (D27).
    pub catch_ups: u64,
    /// Commits of this process's view sent to a member still at the version before
    /// (D27).
    pub catch_ups_sent: u64,
}

impl EngineStats {
    /// Protocol messages (the kinds the paper counts) handed to the transport.
    pub fn protocol_sent(&self) -> u64 {
        sum_protocol(&self.sent)
    }
    /// Protocol messages as the paper counts them: sent + self-addressed + suppressed.
    pub fn protocol_logical(&self) -> u64 {
        sum_protocol(&self.sent)
            + sum_protocol(&self.self_addressed)
            + sum_protocol(&self.suppressed)
    }
}

fn sum_protocol(a: &[u64; KIND_COUNT]) -> u64 {
    MsgKind::ALL
        .iter()
        .filter(|k| k.is_protocol())
        .map(|k| a[*k as usize])
        .sum()
}

#[derive(Clone, Copy, Debug)]
struct OutEntry {
    to: ProcessId,
    addr: SocketAddr,
    start: u32,
    len: u32,
}

/// Which task this process runs (the Appendix's tasks). An outer member's phase lives
/// in its variant, so an initiator cannot also be "waiting for a reconfigurer".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Task: Outer Processes / Outer Reconfiguration, in the given phase.
    Outer(OuterPhase),
    /// Task: mgr, or Task: Reconfiguration Initiator (see `Initiator::kind`).
    Initiator,
}

impl Role {
    fn is_outer(self) -> bool {
        matches!(self, Role::Outer(_))
    }
}

/// One process's S-GMP state machine. See the module docs.
pub struct Engine {
    cfg: EngineConfig,
    me: Member,
    status: Status,
    /// LocalView_p.
    view: View,
    /// A key per member of `view`, for lookups that read few cache lines (refreshed
    /// wherever `view`'s members change).
    ranks: ranks::ViewIndex,
    /// LastCommit_p: the update that formed the current view.
    last_commit: Update,
    /// NextUpdate_p: the proposal for the next version this process acknowledged (or,
    /// as initiator, submitted), or ⊥.
    next_update: Staged<Proposal>,
    /// FAULTY_p restricted to the current view: stable beliefs, gossiped on every message.
    faulty: Vec<ProcessId>,
    /// The last suspicion this process reached by its own failure detection (D18).
    last_local_suspicion: Option<ProcessId>,
    /// Processes removed from earlier views (bounded ring): never re-admitted.
    removed: Vec<ProcessId>,
    removed_next: usize,
    /// D27: no commit is offered to a lagging member before this time (a protocol
    /// timeout after this view was installed, then once per heartbeat interval).
    catch_up_at: Time,
    /// The initiator this process follows (the mgr, or the reconfigurer it answered).
    leader: Option<ProcessId>,
    role: Role,
    init: Initiator,
    /// Joins queued at the mgr (GetUpdate's source of adds).
    pending_joins: Vec<Member>,
    /// Client changes queued at the mgr (GetUpdate's source of client changes) or
    /// waiting to be forwarded to it.
    pending_clients: VecDeque<ClientOp>,
    /// When the oldest queued client change arrived (for `client_linger_us`).
    clients_since: Time,
    /// The clients in the batch GetUpdate is building (`clients.rs`).
    batch_index: clients::BatchIndex,
    /// The last committed updates by version (slot = version % len), so the service
    /// layer can apply every committed update in order (`clients.rs`).
    commit_log: Vec<(u64, Update)>,
    /// Cap on join requests handled per second (`join.rs`).
    join_rate: join::JoinRate,
    /// Join contacts and retry schedule (while joining).
    contacts: Vec<Member>,
    next_contact: usize,
    join_retry_at: Option<Time>,
    /// Application snapshot handed to joiners in State-Xfer.
    snapshot: Vec<u8>,
    /// Snapshot received in our own State-Xfer.
    received_snapshot: Vec<u8>,
    detector: RingDetector,
    /// Signs of life per member and the current probe (D21, `health.rs`).
    heard: health::Heard,
    /// `ViewInstalled` events queued and not yet taken by the driver: an install of
    /// the current step (D32), if the driver takes events at all.
    installs_unpolled: u32,
    /// The driver has taken an event: it reads the views its events announce, and
    /// takes them after every step (D32). A driver that never does (the crate's
    /// example) reads nothing after the step, so nothing waits for it.
    events_taken: bool,
    out_buf: Vec<u8>,
    out_q: VecDeque<OutEntry>,
    events: VecDeque<Event>,
    /// The decoded message being handled, reused. Boxed: `handle_message` takes it out
    /// while it dispatches (the handlers borrow the engine mutably), and moving the
    /// box moves a pointer where moving the message copied several cache lines twice
    /// per message.
    rx: Option<Box<Msg>>,
    scratch: Update,
    stats: EngineStats,
    /// This process asked to leave: it stays a member until a view without it is
    /// committed, acknowledging its own removal (D9), then stops (`Excluded(Left)`).
    leaving: bool,
    /// D28: when a leaver that is still a member asks its leader again.
    leave_retry_at: Time,
    /// (mgr) Members that asked to leave: removed by the next update, but not believed
    /// faulty (their acknowledgement of their own removal counts, D9). Room for
    /// `2 * max_members` (D28): the leavers an update removes stay until its State-Xfer
    /// ends, while the members of the new view may already ask to leave.
    leavers: Vec<Member>,
    /// (mgr) Leavers removed by its commits (bounded ring): they left, they were not
    /// believed faulty.
    left_ring: Vec<ProcessId>,
    /// The group ended: this process left a view of one, or the committed update that
    /// removed it (a leaver) removed everyone.
    group_ended: bool,
    /// Bumped whenever what a process must keep on stable storage changes: the
    /// installed view, or NextUpdate_p (a proposal this process acknowledged, or its
    /// own as initiator). The node core saves before any message that depends on it
    /// leaves (`docs/PROTOCOL.md`, D22).
    durable_seq: u64,
    /// Member tags: wanted, queued at the mgr, retry timer (`tags.rs`, D25).
    tag: tags::TagState,
}

impl Engine {
    /// A new engine for process `me` (not yet a member: call [`Engine::bootstrap`] or
    /// [`Engine::join`]), if `cfg` passes [`EngineConfig::validate`]. Allocates every
    /// buffer it will ever use.
    pub fn try_new(cfg: EngineConfig, me: Member) -> Result<Engine, ConfigError> {
        cfg.validate()?;
        Ok(Engine::new(cfg, me))
    }

    /// [`Engine::try_new`] for a configuration known to be valid.
    ///
    /// # Panics
    /// If `cfg` fails [`EngineConfig::validate`] (the message names the setting).
    pub fn new(cfg: EngineConfig, me: Member) -> Engine {
        if let Err(e) = cfg.validate() {
            panic!("invalid engine configuration: {e}");
        }
        let n = cfg.max_members;
        let c = cfg.max_client_ops;
        let t = cfg.max_tag_bytes;
        let max_msg = msg::max_encoded_len_with_tags(n, c, t, cfg.max_snapshot);
        Engine {
            me,
            status: Status::Idle,
            view: View::with_tags(n, t),
            ranks: ranks::ViewIndex::with_capacity(n),
            last_commit: Update::with_tag_limits(n, c, t),
            next_update: Staged::empty(Proposal::with_tag_limits(n, c, t)),
            faulty: Vec::with_capacity(n),
            last_local_suspicion: None,
            removed: Vec::with_capacity(REMOVED_PER_MEMBER * n),
            removed_next: 0,
            catch_up_at: Time::ZERO,
            leader: None,
            role: Role::Outer(OuterPhase::Follow),
            init: Initiator::new(n, c, t),
            pending_joins: Vec::with_capacity(cfg.max_pending_joins),
            pending_clients: VecDeque::with_capacity(cfg.max_pending_client_ops),
            clients_since: Time::ZERO,
            batch_index: clients::BatchIndex::new(c),
            commit_log: (0..COMMIT_LOG)
                .map(|_| (0, Update::with_tag_limits(n, c, t)))
                .collect(),
            join_rate: join::JoinRate::default(),
            contacts: Vec::with_capacity(MAX_JOIN_CONTACTS),
            next_contact: 0,
            join_retry_at: None,
            snapshot: Vec::with_capacity(cfg.max_snapshot),
            received_snapshot: Vec::with_capacity(cfg.max_snapshot),
            detector: RingDetector::new(cfg.heartbeat_interval_us, cfg.suspect_timeout_us)
                .with_grace(cfg.protocol_timeout_us)
                .with_probe(cfg.local_health),
            heard: health::Heard::new(n),
            installs_unpolled: 0,
            events_taken: false,
            out_buf: Vec::with_capacity(4 * max_msg + 64 * 1024),
            out_q: VecDeque::with_capacity(8 * n + 64),
            events: VecDeque::with_capacity(8 * n + 64),
            rx: Some(Box::new(Msg::with_tag_limits(n, c, t, cfg.max_snapshot))),
            scratch: Update::with_tag_limits(n, c, t),
            stats: EngineStats::default(),
            durable_seq: 0,
            leaving: false,
            leave_retry_at: Time::ZERO,
            leavers: Vec::with_capacity(2 * n),
            left_ring: Vec::with_capacity(n),
            group_ended: false,
            tag: tags::TagState::new(&cfg),
            cfg,
        }
    }

    // ----- read-only accessors -------------------------------------------------------

    /// Changes whenever the state this process must keep on stable storage changes:
    /// its view ([`Engine::view`]) or NextUpdate_p ([`Engine::next_update`]).
    pub fn durable_seq(&self) -> u64 {
        self.durable_seq
    }

    /// NextUpdate_p: the proposal for the next version this process acknowledged (or,
    /// as initiator, submitted), if any. With the view, what a restarted process
    /// answers for its name in a recovery (D23).
    pub fn next_update(&self) -> Option<&Proposal> {
        self.next_update.get()
    }

    /// This process.
    pub fn me(&self) -> &Member {
        &self.me
    }
    /// The current local view.
    pub fn view(&self) -> &View {
        &self.view
    }
    /// Membership status.
    pub fn status(&self) -> Status {
        self.status
    }
    /// A protocol round this process takes part in is open, so that a message for it
    /// is due within about a round trip per member: as initiator, its submission,
    /// interrogation or State-Xfer awaits answers; as an outer member, it acknowledged
    /// the proposal for the next version (NextUpdate) and awaits its commit, or it
    /// follows a mgr it does not suspect while believing another member faulty (it
    /// reported the suspicion) and awaits the M-sub that removes that member. A
    /// polling driver polls through such a round (`sgmpd --idle adaptive`, `spin`).
    /// Not while it waits for a reconfiguration (its leader suspected): that wait
    /// lasts protocol timeouts, not round trips.
    pub fn awaits_answer(&self) -> bool {
        if self.status != Status::Member {
            return false;
        }
        match self.role {
            Role::Initiator => self.init.in_round(),
            Role::Outer(phase) => {
                let reported = matches!(phase, OuterPhase::Follow)
                    && !self.faulty.is_empty()
                    && self.leader.is_some_and(|l| !self.is_faulty(l));
                reported
                    || self
                        .next_update
                        .get()
                        .is_some_and(|p| p.version == self.view.version + 1)
            }
        }
    }

    /// The round [`Engine::awaits_answer`] says is open, named by the view version it
    /// started from (`None`: none open). Every round that commits moves the version,
    /// so the next one has another name, even when it opens in the step that closed
    /// the last (commit-submit compression); a reconfiguration that takes over an
    /// unfinished round keeps its name. The driver's adaptive wait spends one poll
    /// budget per name.
    pub fn open_round(&self) -> Option<u64> {
        self.awaits_answer().then_some(self.view.version)
    }

    /// The member this process's ring detector watches, and when its silence becomes a
    /// suspicion if nothing comes from it meanwhile (`None`: not a member, or no one
    /// watched). A view change follows such a suspicion within microseconds; the node
    /// warms the paths its round takes shortly before (`NodeConfig::warm_up_us`).
    pub fn suspicion_due(&self) -> Option<(ProcessId, Time)> {
        if self.status != Status::Member {
            return None;
        }
        Some((self.detector.watched()?, self.detector.suspicion_due()?))
    }

    /// True if this process is a member and currently acts as mgr.
    pub fn is_mgr(&self) -> bool {
        self.status == Status::Member && self.role == Role::Initiator && self.init.is_mgr()
    }
    /// The initiator this process follows (itself when it is the mgr).
    pub fn leader(&self) -> Option<ProcessId> {
        self.leader
    }
    /// Processes of the current view this process believes faulty.
    pub fn faulty(&self) -> &[ProcessId] {
        &self.faulty
    }
    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }
    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }
    /// The application snapshot received when this process joined.
    pub fn received_snapshot(&self) -> &[u8] {
        &self.received_snapshot
    }
    /// Sets the application snapshot handed to future joiners. Copies into a
    /// preallocated buffer. A snapshot longer than `max_snapshot` is refused (a
    /// truncated one would hand joiners a corrupt state): the previous one stays.
    pub fn set_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotTooLarge> {
        if bytes.len() > self.cfg.max_snapshot {
            return Err(SnapshotTooLarge {
                len: bytes.len(),
                max: self.cfg.max_snapshot,
            });
        }
        self.snapshot.clear();
        self.snapshot.extend_from_slice(bytes);
        Ok(())
    }

    // ----- inputs --------------------------------------------------------------------

    /// Cold start: found a group whose first view (version 1) is `founders`, in rank
    /// order. Every founder must be given the same list; the first is the mgr.
    pub fn bootstrap(&mut self, now: Time, founders: &[Member]) {
        self.bootstrap_at(now, 1, founders);
    }

    /// Starts as a member of view `version` = `members` (rank order; the first is the
    /// mgr), which every one of its members starts from alike: a group founded at
    /// version 1 ([`Engine::bootstrap`]), or carried on after a total failure from a
    /// view the recovery decided (`docs/PROTOCOL.md`, D23).
    pub fn bootstrap_at(&mut self, now: Time, version: u64, members: &[Member]) {
        assert!(version >= 1, "view versions start at 1");
        if self.status != Status::Idle {
            return;
        }
        let founders = members;
        self.view.members.clear();
        for f in founders.iter().take(self.cfg.max_members) {
            if !self.view.contains(f.id) {
                self.view.members.push(*f);
            }
        }
        // The index is refreshed once the view is built: plain scans until then.
        if !self.view.contains(self.me.id) {
            self.view.members.clear();
            self.view.members.push(self.me);
        }
        self.ranks.refresh(&self.view);
        self.view.version = version;
        self.last_commit.clear();
        self.set_status(Status::Member);
        let mgr = self.view.members[0].id;
        self.leader = Some(mgr);
        if mgr == self.me.id {
            self.take_over_as_mgr();
        }
        self.installed(now);
    }

    /// D27 (docs/PROTOCOL.md): `p`, a member of this view, is still at the version
    /// before (its message says so): send it the commit of this view, which it accepts
    /// if it is the proposal it acknowledged. A member whose commit was lost otherwise
    /// waits for the next update, or for ever when the initiator that committed is gone
    /// (a mgr that left, crashed right after its commit). Not before a protocol timeout
    /// after this view was installed (so the normal path sends nothing more), then at
    /// most one offer per heartbeat interval; none for a view not formed by a commit
    /// (a founded or recovered view has no commit to send).
    fn offer_catch_up(&mut self, now: Time, p: ProcessId) {
        if now < self.catch_up_at || self.last_commit.is_empty() || p == self.me.id {
            return;
        }
        self.catch_up_at = now + self.cfg.heartbeat_interval_us;
        self.stats.catch_ups_sent += 1;
        let start = self.begin(MsgKind::MCom);
        {
            let mut w = Writer::continue_at(&mut self.out_buf);
            w.u64(self.view.version);
            w.update(&self.last_commit);
            w.flag(false);
        }
        self.send_to_id(MsgKind::MCom, p, start);
    }

    /// Remembers `p` as removed from the group (finality: it is never added again under
    /// this id; its node joins as a new incarnation). For views this engine did not see
    /// committed: the node core calls it for the processes a recovered view (D23)
    /// removes from the view before it.
    pub fn note_removed(&mut self, p: ProcessId) {
        if p != self.me.id && !self.in_view(p) {
            self.remember_removed(p);
        }
    }

    /// Handles one message delivered by the transport from `from`.
    pub fn handle_message(
        &mut self,
        now: Time,
        from: ProcessId,
        bytes: &[u8],
    ) -> Result<(), MsgError> {
        let Some(mut rx) = self.rx.take() else {
            return Ok(());
        };
        let res = msg::decode(bytes, self.cfg.max_members, self.cfg.max_snapshot, &mut rx);
        match res {
            Ok(()) => {
                self.stats.received[rx.kind as usize] += 1;
                self.dispatch(now, from, &rx);
            }
            Err(_) => self.stats.decode_errors += 1,
        }
        self.rx = Some(rx);
        self.debug_check_invariants();
        res
    }

    /// A sign of life of `peer` seen below the engine at time `at` (≤ now): e.g. the
    /// transport accepted a datagram from this incarnation of it (data, ack or
    /// keepalive), even one whose messages still wait behind a lost datagram. The ring
    /// detector counts it like a message from `peer` (D20). Nothing else happens: no
    /// gossip is adopted, no message handled. Ignored unless this process is a member
    /// and `peer` a member of its view not believed faulty (Disconnect).
    pub fn peer_alive(&mut self, at: Time, peer: ProcessId) {
        if self.status == Status::Member && self.in_view(peer) && !self.is_faulty(peer) {
            self.detector.heard_at(at, peer);
            self.note_heard(at, peer);
        }
    }

    /// A suspicion from outside the engine (the transport's PeerUnreachable, or the
    /// application): `faulty_p(peer)`.
    ///
    /// A suspicion that would leave this process believing a majority of its view
    /// faulty is ignored (counted in [`EngineStats::suspicions_ignored`]): the ring
    /// detector decides, after waiting, whether this process is the isolated one (D18).
    pub fn suspect(&mut self, now: Time, peer: ProcessId) {
        if self.status == Status::Member {
            if self.in_view(peer)
                && !self.is_faulty(peer)
                && (self.in_minority_with(&[peer])
                    || (self.cfg.local_health && !self.outside_suspicion_verified(now, peer)))
            {
                self.stats.suspicions_ignored += 1;
                return;
            }
            self.local_faulty(now, peer);
        }
    }

    /// Several suspicions at once (e.g. a failure detector reporting a batch): all are
    /// recorded before the running task reacts, so an idle mgr proposes them as one update.
    /// As with [`Engine::suspect`], suspicions that would leave this process in a
    /// minority are ignored.
    pub fn suspect_all(&mut self, now: Time, peers: &[ProcessId]) {
        if self.status != Status::Member {
            return;
        }
        let mut first = None;
        for &p in peers {
            if self.in_view(p) && !self.is_faulty(p) && self.in_minority_with(&[p]) {
                self.stats.suspicions_ignored += 1;
                continue;
            }
            if self.note_faulty(now, p, SuspicionCause::Observed) && first.is_none() {
                first = Some(p);
            }
        }
        if let Some(q) = first {
            match self.role {
                Role::Initiator => self.initiator_on_faulty(now, q),
                Role::Outer(_) => {
                    for &p in peers {
                        if self.status == Status::Member && self.role.is_outer() {
                            self.outer_on_faulty(now, p, None);
                        }
                    }
                }
            }
        }
    }

    /// Graceful leave: tell the group this process is going (an outer member tells its
    /// leader; the mgr tells everyone, and the group reconfigures around it), then stop
    /// acting as a member. Receivers treat the request as `faulty(p)`, so the removal
    /// follows the ordinary path (GMP-1 holds).
    pub fn leave(&mut self, now: Time) {
        if self.status != Status::Member || self.leaving {
            return;
        }
        if self.role == Role::Initiator && self.init.resume {
            // A commit D32 left for the next step is this one's: it goes first (a
            // join it adds is not dropped with a group that ends).
            self.initiator_timeout(now);
            if self.status != Status::Member {
                return;
            }
        }
        self.leaving = true;
        if self.view.len() == 1 {
            // Alone: nobody to tell; the group ends with this process.
            self.group_ended = true;
            return self.exclude(now, ExcludeReason::Left);
        }
        if self.role == Role::Initiator && self.init.is_mgr() {
            // The mgr proposes its own removal (its next update) and commits it like any
            // other; the others then continue under the next in rank (D9).
            self.maybe_start_update(now);
            return;
        }
        self.leave_retry_at = now + self.cfg.protocol_timeout_us;
        let start = self.begin(MsgKind::LeaveReq);
        if let Some(l) = self.leader.and_then(|l| self.member_in_view(l)) {
            self.push_out(MsgKind::LeaveReq, l, start);
        } else {
            self.mcast_view(MsgKind::LeaveReq, start);
        }
    }

    /// True once this process asked to leave (it stays a member until a view without
    /// it is committed).
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    /// True if `p` was removed by one of this process's commits as mgr because it asked
    /// to leave (D9), among the last few such removals.
    pub fn removed_as_leaver(&self, p: ProcessId) -> bool {
        self.left_ring.contains(&p)
    }

    /// True if this process left and the group ended with it: it left a view of one,
    /// or the update that removed it removed every member (D9). The next start may
    /// found a group again.
    pub fn group_ended(&self) -> bool {
        self.group_ended
    }

    /// Handles timers due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        match self.status {
            Status::Joining => self.join_timeout(now),
            Status::Member => {
                while let Some(a) = self.detector.poll(now) {
                    match a {
                        DetectorAction::Heartbeat(to) => {
                            if let Some(m) = self.member_in_view(to) {
                                let start = self.begin(MsgKind::Heartbeat);
                                self.push_out(MsgKind::Heartbeat, m, start);
                            }
                        }
                        DetectorAction::Probe(q) => self.probe(now, q),
                        DetectorAction::Suspect(p) => {
                            // D18: a suspicion that would leave us in a minority, or
                            // that follows one of ours the group has not acted on yet,
                            // waits a few more timeouts for news from p first; an
                            // initiator still short of a majority of answers keeps its
                            // suspicions to itself while it waits (D16).
                            let waiting = self.role == Role::Initiator
                                && self.init.collecting()
                                && !self.majority_answered();
                            let postponed = if waiting {
                                // D16 decides, when its waits are over.
                                self.detector.postpone(now, p, u32::MAX)
                            } else if self.cfg.local_health && !self.suspicion_verified(p) {
                                // D21: since its probe this process has not heard a
                                // majority of its view. It withholds the suspicion
                                // and watches again, as long as the silence lasts
                                // (D24: a member tells it if the group removed it).
                                self.unverified_suspicion();
                                if self.cut_off_by_beliefs(now) || self.withheld_too_long(now) {
                                    // D24 rule 7: the silence is its beliefs', or its
                                    // view can no longer reach a majority.
                                    return self.exclude(now, ExcludeReason::IsolatedMinority);
                                }
                                self.detector.postpone(now, p, u32::MAX)
                            } else {
                                (self.in_minority_with(&[p])
                                    || (!self.cfg.local_health && self.local_suspicion_pending(p)))
                                    && self.detector.postpone(now, p, MAX_POSTPONE)
                            };
                            if !postponed {
                                self.local_faulty(now, p);
                            }
                        }
                    }
                    if self.status != Status::Member {
                        return;
                    }
                }
                match self.role {
                    Role::Initiator => self.initiator_timeout(now),
                    Role::Outer(_) => self.outer_timeout(now),
                }
                self.tags_timeout(now);
                if self.leaving && now >= self.leave_retry_at {
                    self.repeat_leave_request(now);
                }
            }
            _ => {}
        }
        self.debug_check_invariants();
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next message to send, if any. The payload borrows the engine until the next call.
    pub fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        match self.out_q.pop_front() {
            Some(e) => {
                let payload = &self.out_buf[e.start as usize..(e.start + e.len) as usize];
                Some(Transmit {
                    to: e.to,
                    addr: e.addr,
                    payload,
                })
            }
            None => {
                self.out_buf.clear();
                None
            }
        }
    }

    /// Whether a queued message (not yet taken by [`Engine::poll_transmit`]) is of a
    /// kind for which `f` is true: the node core looks before it moves them, to tell
    /// whether one reports state that must be durable first (D22).
    pub fn outbox_has(&self, f: impl Fn(MsgKind) -> bool) -> bool {
        self.out_q.iter().any(|e| {
            self.out_buf
                .get(e.start as usize + 1)
                .and_then(|b| MsgKind::from_u8(*b))
                .is_some_and(&f)
        })
    }

    /// The next event, if any. A driver that takes events takes them all after every
    /// step (a call that handled an input or a timeout): an initiator that installed a
    /// view in a step installs no other until its event is taken (D32), so the driver
    /// reads each install's [`Engine::view`] with its `ViewInstalled`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events_taken = true;
        let ev = self.events.pop_front();
        if matches!(ev, Some(Event::ViewInstalled { .. })) {
            self.installs_unpolled -= 1;
        }
        ev
    }

    /// When [`Engine::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Time> {
        match self.status {
            Status::Joining => self.join_retry_at,
            Status::Member => {
                let proto = match self.role {
                    Role::Initiator => crate::earliest(
                        self.init.deadline(self.cfg.protocol_timeout_us),
                        self.client_linger_due(Time::ZERO),
                    ),
                    Role::Outer(_) => self.outer_deadline(),
                };
                crate::earliest(
                    crate::earliest(self.detector.next_deadline(), proto),
                    self.tags_deadline(),
                )
            }
            _ => None,
        }
    }

    // ----- message dispatch, Gossip and Disconnect -----------------------------------

    fn dispatch(&mut self, now: Time, from: ProcessId, rx: &Msg) {
        match self.status {
            Status::Joining => return self.on_message_joining(now, from, rx),
            Status::Member => {}
            _ => {
                self.stats.ignored += 1;
                return;
            }
        }
        // Disconnect: nothing is accepted from a process believed faulty.
        if self.is_faulty(from) {
            self.stats.dropped_from_faulty += 1;
            self.member_alive(now, from);
            return;
        }
        if self.in_view(from) {
            // Gossip: adopt the sender's suspicions. Being suspected means being removed.
            if rx.gossip.contains(&self.me.id) {
                // A leaver being removed has left (D9).
                let reason = if self.leaving {
                    ExcludeReason::Left
                } else {
                    ExcludeReason::SuspectedBy(from)
                };
                return self.exclude(now, reason);
            }
            if !self.commit_path(from, rx) && self.in_minority_with(&rx.gossip) {
                // D18: these suspicions and ours together leave no majority of the
                // view. One of us lost contact with the rest: rather than adopt its
                // suspicions (and spread them), refuse the message and suspect its
                // sender, which is always allowed.
                self.stats.gossip_refused += 1;
                return self.local_faulty(now, from);
            }
            for &g in &rx.gossip {
                if self.leavers.iter().any(|l| l.id == g) {
                    // Others believe a leaver faulty once they saw its removal; the mgr
                    // removing it keeps talking to it until its commit (D9).
                    continue;
                }
                self.add_faulty_learned(now, g, Some(from), SuspicionCause::Reported);
                if self.status != Status::Member {
                    return;
                }
            }
            self.detector.heard_from(now, from);
            self.note_heard(now, from);
            if rx.sender_version + 1 == self.view.version {
                self.offer_catch_up(now, from);
            }
        }
        match rx.kind {
            MsgKind::MSub | MsgKind::MCom | MsgKind::RInt | MsgKind::RSub | MsgKind::RCom => {
                self.on_outer_message(now, from, rx)
            }
            MsgKind::MSubAck | MsgKind::RSubAck | MsgKind::RIntResp | MsgKind::StateXferAck => {
                self.on_response(now, from, rx)
            }
            MsgKind::StateXfer => self.on_state_xfer_as_member(now, from, rx),
            MsgKind::JoinReq => self.on_join_request(now, rx.joiner, &rx.tags),
            MsgKind::LeaveReq => self.on_leave_request(now, from, rx.sender_version),
            MsgKind::Heartbeat => {}
            MsgKind::ClientOps => self.on_client_ops(now, from, &rx.client_ops),
            MsgKind::TagReq => self.on_tag_request(now, from, &rx.tags),
        }
    }

    /// A member asked to leave. The mgr removes it with its next update without
    /// believing it faulty, so that the leaver's acknowledgement of its own removal
    /// counts (a pair whose member leaves still has its majority, D9). Anyone else
    /// treats the request as `faulty_p(sender)`, as before.
    fn on_leave_request(&mut self, now: Time, from: ProcessId, sender_version: u64) {
        if sender_version > self.view.version {
            // D28: the leaver installed a view this process has not yet, and asks it
            // as that view's leader. Believing it faulty now would cost the new view
            // the leaver's acknowledgement (a pair could lose its majority); the
            // leaver asks again once per protocol timeout.
            self.stats.ignored += 1;
            return;
        }
        if self.role == Role::Initiator && self.init.is_mgr() {
            if let Some(m) = self.member_in_view(from) {
                if !self.leavers.iter().any(|l| l.id == from) {
                    // D28: distinct members of the view before (removed, awaiting the
                    // end of State-Xfer) and of this view: never more than twice
                    // max_members, so a request is never dropped for want of room.
                    assert!(
                        self.leavers.len() < 2 * self.cfg.max_members,
                        "the leaver list holds members of two views at most"
                    );
                    self.leavers.push(m);
                }
            }
            return self.maybe_start_update(now);
        }
        self.add_faulty(now, from, SuspicionCause::Leaving)
    }

    /// The index of `p` in LocalView_p ([`View::index_of`], through the keys).
    #[inline]
    fn rank_of(&self, p: ProcessId) -> Option<usize> {
        self.ranks.rank(&self.view, p)
    }

    /// True if `p` is a member of LocalView_p.
    #[inline]
    fn in_view(&self, p: ProcessId) -> bool {
        self.rank_of(p).is_some()
    }

    /// The member of LocalView_p with process id `p`.
    #[inline]
    fn member_in_view(&self, p: ProcessId) -> Option<Member> {
        self.rank_of(p).map(|i| self.view.members[i])
    }

    /// True if `p` is believed faulty.
    fn is_faulty(&self, p: ProcessId) -> bool {
        self.faulty.contains(&p)
    }

    /// `faulty_p(q)`: records the (stable) belief and tells the driver to disconnect q.
    /// Returns false if it was already believed (or q is not a member). Does not let
    /// the running task react: see [`Engine::add_faulty`].
    fn note_faulty(&mut self, now: Time, q: ProcessId, cause: SuspicionCause) -> bool {
        if q == self.me.id || !self.in_view(q) || self.is_faulty(q) {
            return false;
        }
        assert!(
            self.faulty.len() < self.cfg.max_members,
            "FAULTY_p holds members of the view only"
        );
        self.faulty.push(q);
        self.events.push_back(Event::Suspected { peer: q, cause });
        // The view is unchanged: only the ring moves. The heard tables need no retain:
        // every view change installs (`installed` resets them), and signs of life are
        // noted for members of the current view only (`note_heard`, `member_alive`).
        debug_assert!(
            self.heard
                .holds_only(|p| self.ranks.rank(&self.view, p).is_some()),
            "the heard tables hold members of the current view only"
        );
        self.reset_ring(now);
        true
    }

    /// `faulty_p(q)`, then lets the running task react (the mgr proposes q's removal,
    /// an initiator stops waiting for q, an outer member whose mgr failed turns to
    /// reconfiguration).
    fn add_faulty(&mut self, now: Time, q: ProcessId, cause: SuspicionCause) {
        self.add_faulty_learned(now, q, None, cause);
    }

    /// [`Engine::add_faulty`] for a suspicion learned by Gossip from `from` (`None`:
    /// not by Gossip); an outer member does not tell its mgr what the mgr's own
    /// message told it.
    fn add_faulty_learned(
        &mut self,
        now: Time,
        q: ProcessId,
        from: Option<ProcessId>,
        cause: SuspicionCause,
    ) {
        if self.note_faulty(now, q, cause) {
            match self.role {
                Role::Initiator => self.initiator_on_faulty(now, q),
                Role::Outer(_) => self.outer_on_faulty(now, q, from),
            }
        }
    }

    /// `faulty_p(q)` reached by this process's own failure detection (ring detector,
    /// transport, a timeout, a refused Gossip): if it now believes a majority of its
    /// view faulty it is in a minority and excludes itself before any message carries
    /// the new suspicion (D18); otherwise as [`Engine::add_faulty`].
    fn local_faulty(&mut self, now: Time, q: ProcessId) {
        if self.note_faulty(now, q, SuspicionCause::Observed) {
            self.last_local_suspicion = Some(q);
            if self.in_minority() {
                return self.exclude(now, ExcludeReason::IsolatedMinority);
            }
            match self.role {
                Role::Initiator => self.initiator_on_faulty(now, q),
                Role::Outer(_) => self.outer_on_faulty(now, q, None),
            }
        }
    }

    /// True if this process's last suspicion of its own (other than `p`) names a member
    /// still in its view: the group has not removed it yet, perhaps because this process
    /// is the one that cannot hear the others (D18).
    fn local_suspicion_pending(&self, p: ProcessId) -> bool {
        self.last_local_suspicion
            .is_some_and(|q| q != p && self.in_view(q))
    }

    /// True if this process, with its current beliefs, can no longer be part of a
    /// majority of its view (D18): see [`Engine::in_minority_with`].
    fn in_minority(&self) -> bool {
        self.in_minority_with(&[])
    }

    /// True if, believing `extra` faulty as well, fewer than a majority of the view
    /// would be left that this process does not believe faulty (itself included). An
    /// initiator collecting answers (Interrogate, Submit) also counts the members that
    /// already answered: their answers count towards its majority even if it suspects
    /// them afterwards.
    fn in_minority_with(&self, extra: &[ProcessId]) -> bool {
        let collecting = self.role == Role::Initiator && self.init.collecting();
        // The members not counted: believed faulty or in `extra` (each once), neither
        // this process nor, while collecting, one that answered. Found through the
        // suspects (a few) rather than a pass over the whole view.
        let uncounted = |p: ProcessId| {
            p != self.me.id
                && self
                    .rank_of(p)
                    .is_some_and(|i| !(collecting && self.init.answered(i)))
        };
        let mut out = self.faulty.iter().filter(|&&p| uncounted(p)).count();
        for (j, &p) in extra.iter().enumerate() {
            if !self.is_faulty(p) && !extra[..j].contains(&p) && uncounted(p) {
                out += 1;
            }
        }
        let minority = self.view.members.len().saturating_sub(out) < self.view.majority();
        debug_assert_eq!(
            minority,
            self.in_minority_with_scan(extra, collecting),
            "the count through the suspects differs from the pass over the view"
        );
        minority
    }

    /// [`Engine::in_minority_with`] as a pass over the view (the debug builds' check).
    fn in_minority_with_scan(&self, extra: &[ProcessId], collecting: bool) -> bool {
        let live = self
            .view
            .members
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                m.id == self.me.id
                    || (collecting && self.init.answered(*i))
                    || !(self.is_faulty(m.id) || extra.contains(&m.id))
            })
            .count();
        live < self.view.majority()
    }

    /// True if `rx` is a submit or commit from the initiator this process follows: its
    /// Gossip is adopted unconditionally (the initiator's suspicions include the removals
    /// it proposes; D18).
    fn commit_path(&self, from: ProcessId, rx: &Msg) -> bool {
        self.role.is_outer()
            && self.leader == Some(from)
            && matches!(
                rx.kind,
                MsgKind::MSub | MsgKind::RSub | MsgKind::MCom | MsgKind::RCom
            )
    }

    /// A view was installed: the ring detector follows the new view, and the heard
    /// tables forget who left it.
    fn reset_detector(&mut self, now: Time) {
        self.reset_ring(now);
        let (ranks, view) = (&self.ranks, &self.view);
        self.heard.retain(|p| ranks.rank(view, p).is_some());
    }

    /// The ring detector watches the nearest live neighbours of the view again (after
    /// an install or a new suspicion). The heard tables are left as they are: on a
    /// suspicion their retain was a no-op, ~13 code lines and a read of both tables on
    /// a member's M-sub-to-ack path (issue 19).
    fn reset_ring(&mut self, now: Time) {
        let faulty = &self.faulty;
        self.detector
            .reset(now, &self.view, self.me.id, |p| faulty.contains(&p));
    }

    // ----- DoPreCommit / DoCommit ----------------------------------------------------

    /// DoPreCommit(v): mark the processes v removes as faulty and record v as
    /// NextUpdate_p, submitted by `initiator` for `version`.
    fn pre_commit(&mut self, now: Time, u: &Update, version: u64, initiator: ProcessId) {
        if !u.removes.contains(&self.me.id) && !self.holds_view_after(u) {
            // Not acknowledged: the process cannot install what it would accept.
            return self.exclude(now, ExcludeReason::ViewTooLarge);
        }
        for &r in &u.removes {
            if r == self.me.id {
                if self.leaving {
                    // A leaver acknowledges its own removal (D9).
                    continue;
                }
                return self.exclude(now, ExcludeReason::Removed);
            }
            if r == initiator {
                // A leaving mgr removes itself: its commit must still be accepted.
                continue;
            }
            self.add_faulty(now, r, SuspicionCause::Reported);
            if self.status != Status::Member {
                return;
            }
        }
        let initiator_index = self.rank_of(initiator).unwrap_or(u32::MAX as usize) as u32;
        self.record_next_update(|p| {
            p.update.copy_from(u);
            p.version = version;
            p.initiator = initiator;
            p.initiator_index = initiator_index;
        });
    }

    /// NextUpdate_p ← the proposal `fill` writes: what this process acknowledges (or
    /// submits) must reach stable storage before the acknowledgement leaves, so the
    /// durable sequence moves on (D22).
    fn record_next_update(&mut self, fill: impl FnOnce(&mut Proposal)) {
        let x = self.view.version;
        self.next_update.fill_with(|p| {
            fill(p);
            true
        });
        debug_assert!(
            self.next_update.get().is_some_and(|p| p.version == x + 1),
            "NextUpdate_p proposes the version after the installed view"
        );
        self.durable_seq += 1;
    }

    /// DoCommit(v): form LocalView^{version} from the current view and v.
    fn commit(&mut self, now: Time, u: &Update, version: u64) {
        debug_assert_eq!(
            version,
            self.view.version + 1,
            "views are installed in sequence"
        );
        if u.removes.contains(&self.me.id) {
            let reason = if self.leaving {
                self.group_ended = self.view.members.iter().all(|m| u.removes.contains(&m.id));
                ExcludeReason::Left
            } else {
                ExcludeReason::Removed
            };
            return self.exclude(now, reason);
        }
        if !self.holds_view_after(u) {
            return self.exclude(now, ExcludeReason::ViewTooLarge);
        }
        for &r in &u.removes {
            let leaver = self.leavers.iter().any(|l| l.id == r);
            if leaver {
                if self.left_ring.len() >= self.cfg.max_members {
                    self.left_ring.remove(0);
                }
                self.left_ring.push(r);
            }
            if self.in_view(r) && !self.is_faulty(r) && !leaver {
                // GMP-1: a removed member is believed faulty first (a leaver asked to
                // be removed; it is not disconnected, so the commit reaches it, D9).
                self.faulty.push(r);
                self.events.push_back(Event::Suspected {
                    peer: r,
                    cause: SuspicionCause::Removed,
                });
            }
            self.remember_removed(r);
        }
        self.view.apply(u, version);
        self.ranks.refresh(&self.view);
        self.last_commit.copy_from(u);
        self.log_commit(version);
        self.next_update.clear();
        let view = &self.view;
        self.faulty.retain(|p| view.contains(*p));
        if self.role.is_outer() && self.leader.is_some_and(|l| !self.in_view(l)) {
            // The mgr committed its own removal (it left, D9): the most senior member
            // of the new view is the mgr, as after a reconfiguration.
            let first = self.view.members[0].id;
            self.leader = Some(first);
            if first == self.me.id {
                self.take_over_as_mgr();
            }
            self.installed(now);
            if self.is_faulty(first) && first != self.me.id {
                // The new mgr is already believed faulty: reconfigure around it.
                self.outer_on_faulty(now, first, None);
            }
            return;
        }
        self.installed(now);
    }

    /// Whether the view `u` makes of the installed one fits this process's views
    /// (`max_members`, D30).
    fn holds_view_after(&self, u: &Update) -> bool {
        self.view.len_after(u) <= self.cfg.max_members
    }

    fn remember_removed(&mut self, p: ProcessId) {
        if self.removed.contains(&p) {
            return;
        }
        if self.removed.len() < REMOVED_PER_MEMBER * self.cfg.max_members {
            self.removed.push(p);
        } else {
            let i = self.removed_next % self.removed.len();
            self.removed[i] = p;
            self.removed_next = i + 1;
        }
    }

    fn installed(&mut self, now: Time) {
        assert!(
            self.view.len() <= self.cfg.max_members,
            "a view never outgrows max_members"
        );
        assert!(
            self.view.contains(self.me.id),
            "an installed view holds its installer"
        );
        self.stats.views_installed += 1;
        self.durable_seq += 1;
        self.installs_unpolled += 1;
        self.events.push_back(Event::ViewInstalled {
            version: self.view.version,
            digest: self.view.digest(),
            size: self.view.len(),
        });
        self.heard.installed();
        self.reset_detector(now);
        // D27: a member behind by one commit is normal for a moment (the commit is on
        // its way); only one still behind after a protocol timeout is helped.
        self.catch_up_at = now + self.cfg.protocol_timeout_us;
        self.tags_after_install(now);
        self.repeat_leave_request(now);
    }

    /// D28: a leave request goes to the mgr of its day only. A view that still holds
    /// this leaver was committed by a mgr that may never have heard it (it crashed or
    /// was reconfigured around, or the request crossed its update), and a leader that
    /// has not installed the leaver's view yet ignores it: ask the leader again on
    /// every install and once per protocol timeout. The mgr ignores a request it
    /// already holds.
    fn repeat_leave_request(&mut self, now: Time) {
        if !self.leaving || self.status != Status::Member {
            return;
        }
        self.leave_retry_at = now + self.cfg.protocol_timeout_us;
        if self.role == Role::Initiator && self.init.is_mgr() {
            // A leaving mgr removes itself with its next update.
            return;
        }
        let Some(l) = self
            .leader
            .filter(|&l| l != self.me.id)
            .and_then(|l| self.member_in_view(l))
        else {
            return;
        };
        let start = self.begin(MsgKind::LeaveReq);
        self.push_out(MsgKind::LeaveReq, l, start);
    }

    /// Moves the membership status on. The only transitions: Idle → Joining | Member,
    /// Joining → Member, any → Excluded; Excluded is final (an excluded process id is
    /// never a member again, GMP-0).
    fn set_status(&mut self, to: Status) {
        let legal = match (self.status, to) {
            (Status::Idle, Status::Joining | Status::Member) => true,
            (Status::Joining, Status::Member) => true,
            (Status::Excluded(_), _) => false,
            (_, Status::Excluded(_)) => true,
            _ => false,
        };
        assert!(legal, "status {:?} -> {:?}", self.status, to);
        self.status = to;
    }

    /// This process, the most senior member of its view, becomes its mgr (at start, or
    /// when the old mgr left with its own commit, D9).
    fn take_over_as_mgr(&mut self) {
        debug_assert_eq!(self.view.members.first().map(|m| m.id), Some(self.me.id));
        debug_assert_eq!(self.status, Status::Member);
        self.role = Role::Initiator;
        self.leader = Some(self.me.id);
        self.init.become_mgr();
    }

    /// Stops acting as a member, for good.
    fn exclude(&mut self, _now: Time, reason: ExcludeReason) {
        if matches!(self.status, Status::Excluded(_)) {
            return;
        }
        self.set_status(Status::Excluded(reason));
        self.role = Role::Outer(OuterPhase::Follow);
        self.leader = None;
        self.detector.clear();
        self.events.push_back(Event::Excluded { reason });
    }

    // ----- outbox ----------------------------------------------------------------

    /// Starts encoding a message of `kind` with the common header; returns its start.
    fn begin(&mut self, kind: MsgKind) -> usize {
        let start = self.out_buf.len();
        Writer::start(&mut self.out_buf, kind, self.view.version, &self.faulty);
        start
    }

    /// Queues the message encoded since `start` for `to`.
    fn push_out(&mut self, kind: MsgKind, to: Member, start: usize) {
        self.stats.sent[kind as usize] += 1;
        self.out_q.push_back(OutEntry {
            to: to.id,
            addr: to.addr,
            start: start as u32,
            len: (self.out_buf.len() - start) as u32,
        });
    }

    /// Mcast(LocalView, m) of the message encoded since `start`: one copy per member,
    /// except itself (counted as self-addressed) and members believed faulty (counted
    /// as suppressed: Disconnect).
    fn mcast_view(&mut self, kind: MsgKind, start: usize) {
        let len = (self.out_buf.len() - start) as u32;
        for i in 0..self.view.members.len() {
            let m = self.view.members[i];
            if m.id == self.me.id {
                self.stats.self_addressed[kind as usize] += 1;
            } else if self.is_faulty(m.id) {
                self.stats.suppressed[kind as usize] += 1;
            } else {
                self.stats.sent[kind as usize] += 1;
                self.out_q.push_back(OutEntry {
                    to: m.id,
                    addr: m.addr,
                    start: start as u32,
                    len,
                });
            }
        }
    }

    fn send_to_id(&mut self, kind: MsgKind, to: ProcessId, start: usize) {
        if let Some(m) = self.member_in_view(to) {
            self.push_out(kind, m, start);
        } else {
            self.out_buf.truncate(start);
        }
    }

    /// Whether `p` is more senior (higher ranked) than this process in the current view.
    fn senior_to_me(&self, p: ProcessId) -> bool {
        match (self.rank_of(p), self.rank_of(self.me.id)) {
            (Some(i), Some(me)) => i < me,
            _ => false,
        }
    }

    /// INITIATE(p): every member ranked higher than p is believed faulty.
    fn initiate(&self) -> bool {
        let Some(me) = self.rank_of(self.me.id) else {
            return false;
        };
        self.view.members[..me].iter().all(|m| self.is_faulty(m.id))
    }
}

#[cfg(test)]
impl Engine {
    /// Records the belief that `q` is faulty and nothing else (no reaction, no
    /// disconnect event): sets up a state for a test.
    pub(crate) fn add_faulty_for_test(&mut self, q: ProcessId) {
        if self.view.contains(q) && !self.is_faulty(q) {
            self.faulty.push(q);
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gap;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_mutants;
