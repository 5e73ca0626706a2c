//! One entry of the peer table: both channel halves plus acknowledgement, timer and
//! liveness state, and the fixed-capacity index from node name to entry.
//!
//! [`Peer`]'s invariants are stated in one place (`Peer::invariants`) and checked after
//! each of its transitions in debug builds (TIGER_STYLE), next to the windows' own
//! (`channel.rs`).

use std::net::SocketAddr;

use crate::channel::{RecvWindow, SendWindow};
use crate::rtt::RttEstimator;
use crate::stats::PeerCounters;
use crate::wire::HeaderTemplate;
use crate::{earliest, NodeId, ProcessId, Time, TransportConfig};

/// The channel to one node: the incarnation it is open with and all per-peer state.
///
/// `repr(C)` and aligned to a cache line, with what the endpoint reads of an entry to
/// schedule it first ([`deadline`](Self::deadline), [`sends_at_once`](Self::sends_at_once)
/// and [`wants_transmit`](Self::wants_transmit), read for each entry a step changes and
/// each the polls visit): those 112 bytes fill the entry's first two lines (issue 19:
/// a step starts with its lines in memory; when the polls still passed every entry,
/// this layout made the mgr's steps at N = 17 read 22–28 fewer data lines,
/// docs/bench/view_change_perf.md §16; since §17 they visit only the entries with
/// work, `schedule.rs`).
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct Peer {
    // ---- The hot prefix: what scheduling an entry reads (for every entry, on each
    // poll, while the table is small enough to pass; see `schedule.rs`). ----
    /// When an acknowledgement must leave at the latest.
    pub ack_due: Option<Time>,
    pub rto_deadline: Option<Time>,
    /// A keepalive is unanswered since this time.
    pub ka_since: Option<Time>,
    /// Last time data or a keepalive left.
    pub last_reliable_tx: Time,
    /// Last acknowledgement progress, or start of the current wait for one.
    pub last_progress: Time,
    /// Keepalive stamp to echo (0: none).
    pub echo: u64,
    /// Closed for good with `disconnect`.
    pub closed: bool,
    /// The keepalive must be sent again (its timer expired).
    pub ka_resend: bool,
    /// Reported unreachable and silent since.
    pub unreachable: bool,
    /// An event for this entry waits in the event queue.
    pub event_queued: bool,
    /// Data datagrams received since we last sent anything to this peer.
    pub data_unacked: u32,
    /// Its counters (the first 32 bytes) are the last of the hot prefix.
    pub tx: SendWindow,
    // ---- The rest: read for the peers a step talks to. ----
    pub id: ProcessId,
    pub addr: Option<SocketAddr>,
    /// The constant part of every datagram this endpoint sends on the channel (our
    /// cluster id and process, the peer's incarnation), encoded once: set up with the
    /// entry and readdressed whenever [`open`](Self::open) changes `id`.
    pub template: HeaderTemplate,
    pub rx: RecvWindow,
    pub rtt: RttEstimator,
    pub counters: PeerCounters,
    /// Consecutive retransmission timeouts without progress.
    pub retries: u32,
    /// When the last datagram of this incarnation was accepted (`None`: none yet).
    pub last_rx: Option<Time>,
}

/// The hot prefix ends within the entry's first two cache lines.
const _: () = assert!(std::mem::offset_of!(Peer, tx) + 32 <= 128);

impl Peer {
    /// An unused entry with windows of the configured sizes (the only allocation).
    pub fn new(cfg: &TransportConfig, me: ProcessId) -> Peer {
        let p = Peer {
            id: me,
            template: HeaderTemplate::new(cfg.cluster_id, me, me.incarnation),
            addr: None,
            closed: false,
            tx: SendWindow::new(cfg.send_window),
            rx: RecvWindow::new(cfg.recv_window),
            rtt: RttEstimator::new(cfg.initial_rto_us, cfg.min_rto_us, cfg.max_rto_us),
            counters: PeerCounters::default(),
            ack_due: None,
            data_unacked: 0,
            echo: 0,
            rto_deadline: None,
            retries: 0,
            last_reliable_tx: Time::ZERO,
            last_progress: Time::ZERO,
            ka_since: None,
            ka_resend: false,
            unreachable: false,
            last_rx: None,
            event_queued: false,
        };
        p.invariants();
        p
    }

    /// The invariants of an entry, checked after each transition in debug builds (a
    /// no-op otherwise):
    /// - a keepalive is resent only while one is outstanding (`ka_resend` ⇒ `ka_since`);
    /// - data received and not yet acknowledged has an acknowledgement due
    ///   (`data_unacked > 0` ⇒ `ack_due`);
    /// - a closed channel holds no frame and runs no timer.
    fn invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        debug_assert!(
            !self.ka_resend || self.ka_since.is_some(),
            "keepalive resend without a keepalive outstanding"
        );
        debug_assert!(
            self.data_unacked == 0 || self.ack_due.is_some(),
            "data received without an acknowledgement due"
        );
        if self.closed {
            debug_assert!(
                self.tx.used_frames() == 0 && !self.rx.has_message() && !self.rx.has_gap(),
                "a closed channel holds frames"
            );
            debug_assert!(
                self.ack_due.is_none()
                    && self.rto_deadline.is_none()
                    && self.ka_since.is_none()
                    && self.echo == 0
                    && self.retries == 0,
                "a closed channel runs timers"
            );
        }
    }

    /// Starts a fresh channel to `id` (first contact or a new incarnation).
    pub fn open(&mut self, id: ProcessId, now: Time) {
        self.id = id;
        self.template.set_receiver(id);
        self.closed = false;
        self.tx.reset();
        self.rx.reset();
        self.rtt.reset();
        self.counters = PeerCounters::default();
        self.clear_timers();
        self.last_reliable_tx = now;
        self.last_progress = now;
        self.unreachable = false;
        self.last_rx = None;
        self.event_queued = false;
        debug_assert!(self.id == id && !self.outstanding() && !self.tx.has_sendable());
        self.invariants();
    }

    /// Closes the channel for good, dropping everything queued or buffered.
    pub fn close(&mut self) {
        self.closed = true;
        self.tx.reset();
        self.rx.reset();
        self.clear_timers();
        self.invariants();
    }

    fn clear_timers(&mut self) {
        self.ack_due = None;
        self.data_unacked = 0;
        self.echo = 0;
        self.rto_deadline = None;
        self.retries = 0;
        self.ka_since = None;
        self.ka_resend = false;
    }

    /// Data or a keepalive waits for an answer.
    pub fn outstanding(&self) -> bool {
        self.tx.in_flight() || self.ka_since.is_some()
    }

    /// The peer answered something new: it is alive.
    pub fn on_progress(&mut self, now: Time) {
        self.retries = 0;
        self.last_progress = now;
        self.unreachable = false;
        self.ka_since = None;
        self.ka_resend = false;
        self.invariants();
    }

    /// When an idle channel sends its next keepalive.
    pub fn keepalive_at(&self, cfg: &TransportConfig) -> Option<Time> {
        if self.closed || self.outstanding() || self.tx.has_sendable() {
            return None;
        }
        Some(self.last_reliable_tx + cfg.keepalive_us)
    }

    /// Something to send whatever the time: a keepalive's echo, a keepalive to resend,
    /// or data. With a passed deadline (a delayed ack, an idle channel's keepalive),
    /// these are all [`wants_transmit`](Self::wants_transmit) can be true for.
    pub fn sends_at_once(&self) -> bool {
        !self.closed && self.has_immediate() && self.addr.is_some()
    }

    /// `poll_transmit` has something for this peer at `now`.
    pub fn wants_transmit(&self, now: Time, cfg: &TransportConfig) -> bool {
        // The hot prefix first: most peers are idle and stop here; the address (cold)
        // is read only for one that has something.
        !self.closed
            && (self.has_immediate()
                || self.ack_due.is_some_and(|t| t <= now)
                || self.keepalive_at(cfg).is_some_and(|t| t <= now))
            && self.addr.is_some()
    }

    /// An echo, a keepalive resend or data waits (the hot prefix only).
    #[inline]
    fn has_immediate(&self) -> bool {
        self.echo != 0 || self.ka_resend || self.tx.has_sendable()
    }

    /// The earliest time this peer needs `handle_timeout` or `poll_transmit`.
    pub fn deadline(&self, cfg: &TransportConfig) -> Option<Time> {
        if self.closed {
            return None;
        }
        // Waiting for an answer, the silence check runs (until reported); otherwise an
        // idle channel's keepalive ([`keepalive_at`](Self::keepalive_at)).
        let watch = if self.outstanding() {
            (!self.unreachable).then(|| self.last_progress + cfg.unreachable_after_us)
        } else if self.tx.has_sendable() {
            None
        } else {
            Some(self.last_reliable_tx + cfg.keepalive_us)
        };
        earliest(earliest(self.ack_due, self.rto_deadline), watch)
    }

    /// Runs the retransmission timer and the silence checks.
    pub fn on_timeout(&mut self, now: Time, cfg: &TransportConfig) -> TimeoutOutcome {
        let mut out = TimeoutOutcome::default();
        if self.closed {
            return out;
        }
        if self.rto_deadline.is_some_and(|d| d <= now) {
            if self.tx.in_flight() {
                out.marked = self.tx.on_timeout();
                out.fired = true;
            } else if self.ka_since.is_some() {
                self.ka_resend = true;
                out.fired = true;
            }
            if out.fired {
                self.rtt.backoff();
                self.retries += 1;
                self.counters.timeouts += 1;
                self.rto_deadline = Some(now + self.rtt.rto());
                debug_assert!(
                    self.rto_deadline > Some(now),
                    "a timer re-armed in the past"
                );
            } else {
                self.rto_deadline = None;
            }
        }
        if self.outstanding()
            && !self.unreachable
            && (self.retries >= cfg.max_retries
                || now.micros_since(self.last_progress) >= cfg.unreachable_after_us)
        {
            self.unreachable = true;
            out.unreachable = true;
        }
        debug_assert!(!out.fired || self.retries >= 1);
        debug_assert!(!out.unreachable || (self.unreachable && self.outstanding()));
        self.invariants();
        out
    }
}

/// What a timer check did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TimeoutOutcome {
    /// The retransmission timer fired.
    pub fired: bool,
    /// Frames marked for retransmission.
    pub marked: u32,
    /// The peer became unreachable.
    pub unreachable: bool,
}

/// Open-addressing index from node name to peer-table entry, sized once (entries are
/// never removed: a node keeps its entry, whatever its incarnation).
#[derive(Debug)]
pub(crate) struct PeerIndex {
    slots: Box<[u32]>,
    mask: usize,
}

const EMPTY: u32 = u32::MAX;

impl PeerIndex {
    /// An index for up to `max_peers` entries (load factor at most 1/2).
    pub fn new(max_peers: usize) -> Self {
        let size = (max_peers * 2).next_power_of_two().max(2);
        PeerIndex {
            slots: vec![EMPTY; size].into_boxed_slice(),
            mask: size - 1,
        }
    }

    fn hash(node: &NodeId) -> usize {
        // A word at a time over the inline name (multiply-rotate), then a final mix so
        // that the low bits (the slot) depend on every byte.
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h: u64 = 0;
        for w in node.words() {
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        h ^= h >> 29;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        (h ^ (h >> 32)) as usize
    }

    /// The entry of `node`, if any.
    pub fn find(&self, node: &NodeId, peers: &[Peer]) -> Option<usize> {
        let mut at = Self::hash(node) & self.mask;
        for _ in 0..self.slots.len() {
            let e = self.slots[at];
            if e == EMPTY {
                return None;
            }
            if peers.get(e as usize).is_some_and(|p| p.id.node == *node) {
                return Some(e as usize);
            }
            at = (at + 1) & self.mask;
        }
        None
    }

    /// Records that `node` lives in entry `entry` (not already present).
    pub fn insert(&mut self, node: &NodeId, entry: usize) {
        let mut at = Self::hash(node) & self.mask;
        for _ in 0..self.slots.len() {
            if self.slots[at] == EMPTY {
                self.slots[at] = entry as u32;
                return;
            }
            at = (at + 1) & self.mask;
        }
        debug_assert!(false, "peer index full");
    }
}
