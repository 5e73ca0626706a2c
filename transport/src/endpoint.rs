//! The sans-IO endpoint: a fixed table of reliable FIFO channels, one per peer node.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::peer::{Peer, PeerIndex};
use crate::schedule::Schedule;
use crate::wire::{self, Body, Kind, Writer};
use crate::{
    channel::Accept, earliest, DropReason, PeerStats, ProcessId, SendError, Stats, Time,
    TransportConfig,
};

/// A datagram produced by [`Endpoint::poll_transmit`]: send `buf[..len]` to `dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination address.
    pub dst: SocketAddr,
    /// Length of the datagram written at the start of the caller's buffer.
    pub len: usize,
}

/// Something the application should know about a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransportEvent {
    /// The peer stopped answering: `max_retries` retransmission timeouts in a row, or
    /// `unreachable_after_us` without acknowledgement progress while data or a keepalive
    /// was outstanding. Raised once per silence; the channel stays open (and keeps
    /// retransmitting with backoff) until the application disconnects it.
    PeerUnreachable(ProcessId),
}

/// Default number of probes queued in each direction (outgoing, received-not-polled);
/// see [`TransportConfig::probe_queue`](crate::TransportConfig::probe_queue).
pub const PROBE_QUEUE: usize = 64;

/// A fixed FIFO of probe payloads: `cap` slots of [`wire::MAX_PROBE_PAYLOAD`] bytes.
#[derive(Debug)]
struct ProbeRing {
    store: Vec<u8>,
    meta: VecDeque<(SocketAddr, ProcessId, usize)>,
    head: usize,
    cap: usize,
}

impl ProbeRing {
    fn new(cap: usize) -> Self {
        ProbeRing {
            store: vec![0u8; cap * wire::MAX_PROBE_PAYLOAD],
            meta: VecDeque::with_capacity(cap),
            head: 0,
            cap,
        }
    }

    fn push(&mut self, addr: SocketAddr, id: ProcessId, payload: &[u8]) -> bool {
        if self.meta.len() >= self.cap || payload.len() > wire::MAX_PROBE_PAYLOAD {
            return false;
        }
        let slot = (self.head + self.meta.len()) % self.cap;
        let at = slot * wire::MAX_PROBE_PAYLOAD;
        self.store[at..at + payload.len()].copy_from_slice(payload);
        self.meta.push_back((addr, id, payload.len()));
        true
    }

    fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Pops the oldest probe: its address, process, and payload.
    fn pop(&mut self) -> Option<(SocketAddr, ProcessId, &[u8])> {
        let (addr, id, len) = self.meta.pop_front()?;
        let at = self.head * wire::MAX_PROBE_PAYLOAD;
        self.head = (self.head + 1) % self.cap;
        Some((addr, id, &self.store[at..at + len]))
    }
}

/// Where an incoming or outgoing process lands in the peer table.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// The open channel with exactly this incarnation.
    Existing(usize),
    /// The node's entry, to be reopened for a newer incarnation.
    Renew(usize),
    /// A free entry for a node never seen.
    New,
}

/// The transport core: reliable, exactly-once, FIFO message channels between this
/// process and its peers, over an unreliable datagram service supplied by the caller.
///
/// Sans-IO: inputs are [`send`](Endpoint::send), [`handle_datagram`](Endpoint::handle_datagram)
/// and [`handle_timeout`](Endpoint::handle_timeout), each with the current time; outputs
/// are drained with [`poll_transmit`](Endpoint::poll_transmit) (call it until `None`
/// after every input), [`poll_delivery`](Endpoint::poll_delivery) and
/// [`poll_event`](Endpoint::poll_event); [`poll_timeout`](Endpoint::poll_timeout) says
/// when to call `handle_timeout` next.
///
/// All memory is allocated in [`Endpoint::new`]: the peer table (`max_peers` entries
/// with their windows) and the frame stores (see [`TransportConfig::reserved_bytes`]).
/// No other method allocates.
///
/// Channels are keyed by node name: one entry per node, holding the newest incarnation
/// seen. Entries are never reused for another node, so `max_peers` bounds the number of
/// distinct node names over the endpoint's life.
///
/// Two endpoints, the caller carrying the datagrams (here in memory, losing none):
///
/// ```
/// use sgmp_transport::{Endpoint, ProcessId, Time, TransportConfig};
///
/// let (a_id, b_id) = (ProcessId::named("a", 1), ProcessId::named("b", 1));
/// let (a_addr, b_addr) = ("127.0.0.1:7401".parse().unwrap(), "127.0.0.1:7402".parse().unwrap());
/// let mut a = Endpoint::new(TransportConfig::default(), a_id);
/// let mut b = Endpoint::new(TransportConfig::default(), b_id);
/// let now = Time::ZERO;
/// a.send(now, b_id, b_addr, b"hello").unwrap();
/// a.send(now, b_id, b_addr, b"world").unwrap();
///
/// let mut buf = vec![0u8; TransportConfig::default().mtu];
/// while let Some(t) = a.poll_transmit(now, &mut buf) {
///     assert_eq!(t.dst, b_addr);
///     b.handle_datagram(now, a_addr, &buf[..t.len]);
/// }
/// let mut msg = vec![0u8; TransportConfig::default().max_message];
/// let mut got = Vec::new();
/// while let Some((from, n)) = b.poll_delivery(&mut msg) {
///     assert_eq!(from, a_id);
///     got.push(msg[..n].to_vec());
/// }
/// assert_eq!(got, [b"hello".to_vec(), b"world".to_vec()]); // in order, once each
/// // b acknowledges; a's window empties.
/// while let Some(t) = b.poll_transmit(now, &mut buf) {
///     a.handle_datagram(now, b_addr, &buf[..t.len]);
/// }
/// assert_eq!(a.stats().messages_sent, 2);
/// ```
#[derive(Debug)]
pub struct Endpoint {
    cfg: TransportConfig,
    me: ProcessId,
    cap: usize,
    peers: Vec<Peer>,
    peer_count: usize,
    index: PeerIndex,
    /// The entries' deadlines and pending work, kept as they change ([`Endpoint::touch`]),
    /// so that the polls visit the entries with work, not the whole table: once more
    /// than [`TransportConfig::schedule_above`] entries are in use
    /// ([`scheduled`](Self::scheduled)).
    sched: Schedule,
    /// The entry most recently sent to or received from (`usize::MAX`: none yet), tried
    /// before the index: most traffic goes back and forth on one channel.
    last_peer: usize,
    tx_store: Vec<u8>,
    rx_store: Vec<u8>,
    events: VecDeque<(u32, ProcessId)>,
    events_cap: usize,
    stats: Stats,
    tx_cursor: usize,
    rx_cursor: usize,
    last_now: Time,
    probes_out: ProbeRing,
    probes_in: ProbeRing,
    /// A new CRC32 hasher, cloned for every checksum (its CPU feature detection is done
    /// once, here).
    crc: crc32fast::Hasher,
    /// A datagram handled since `poll_transmit` last returned `None` left its peer with
    /// something to send at once (see [`Endpoint::transmit_hint`]).
    tx_hint: bool,
    /// The datagram `poll_transmit` last returned left nothing else due at its `now`:
    /// a call right after it, with no input in between, would return `None` (see
    /// [`Endpoint::transmit_drained`]).
    tx_drained: bool,
    /// A datagram handled since the last [`Endpoint::take_timer_restarted`] started or
    /// moved a retransmission timer earlier.
    timer_restarted: bool,
    /// The sender of the last datagram dropped for a bad tag and for a foreign cluster
    /// id (what an operator checks first: a key or cluster mismatch).
    last_bad_tag: Option<SocketAddr>,
    last_foreign: Option<SocketAddr>,
    /// Authenticated senders whose datagrams were refused because this endpoint shut
    /// them out (see [`Endpoint::poll_refused`]); at most [`REFUSED_CAP`], no allocation.
    refused: VecDeque<Refused>,
}

/// Most refused senders kept for [`Endpoint::poll_refused`] between two polls.
pub const REFUSED_CAP: usize = 16;

/// An authenticated datagram of the right cluster that this endpoint refused because
/// of who sent it or whom it addressed (see [`Endpoint::poll_refused`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The sending process.
    pub from: ProcessId,
    /// Its source address.
    pub addr: SocketAddr,
    /// Why: [`DropReason::Disconnected`], [`DropReason::StaleIncarnation`] or
    /// [`DropReason::WrongReceiver`].
    pub reason: DropReason,
}

#[inline]
fn region(store: &mut [u8], entry: usize, slots: usize, cap: usize) -> &mut [u8] {
    let per = slots * cap;
    &mut store[entry * per..(entry + 1) * per]
}

impl Endpoint {
    /// Creates an endpoint for process `me`, allocating every buffer it will ever use.
    /// The config is [normalized](TransportConfig::normalized) first.
    pub fn new(config: TransportConfig, me: ProcessId) -> Endpoint {
        let cfg = config.normalized();
        let cap = cfg.frame_capacity();
        let peers = (0..cfg.max_peers).map(|_| Peer::new(&cfg, me)).collect();
        let events_cap = cfg.max_peers * 2;
        Endpoint {
            cap,
            peers,
            peer_count: 0,
            index: PeerIndex::new(cfg.max_peers),
            sched: Schedule::new(cfg.max_peers),
            last_peer: usize::MAX,
            // Zeroed allocations: the OS backs pages lazily, as traffic touches them.
            tx_store: vec![0u8; cfg.max_peers * cfg.send_window * cap],
            rx_store: vec![0u8; cfg.max_peers * cfg.recv_window * cap],
            events: VecDeque::with_capacity(events_cap),
            events_cap,
            stats: Stats::default(),
            tx_cursor: 0,
            rx_cursor: 0,
            last_now: Time::ZERO,
            probes_out: ProbeRing::new(cfg.probe_queue.max(1)),
            probes_in: ProbeRing::new(cfg.probe_queue.max(1)),
            crc: crc32fast::Hasher::new(),
            tx_hint: false,
            tx_drained: false,
            timer_restarted: false,
            last_bad_tag: None,
            last_foreign: None,
            refused: VecDeque::with_capacity(REFUSED_CAP),
            me,
            cfg,
        }
    }

    /// This process.
    pub fn local_id(&self) -> ProcessId {
        self.me
    }

    /// The (normalized) configuration in use.
    pub fn config(&self) -> &TransportConfig {
        &self.cfg
    }

    fn note_now(&mut self, now: Time) {
        self.last_now = self.last_now.max(now);
    }

    /// Whether the schedule is kept: more than `schedule_above` entries are in use (the
    /// table never shrinks, so once it is kept it stays kept).
    #[inline]
    fn scheduled(&self) -> bool {
        self.peer_count > self.cfg.schedule_above
    }

    /// Entry `i` changed: the schedule, if kept, records it. Called after every change
    /// to an entry, by the method that made it: the polls trust the schedule.
    #[inline]
    fn changed(&mut self, i: usize) {
        if self.scheduled() {
            self.touch(i);
        }
    }

    /// The table just grew past [`TransportConfig::schedule_above`] entries: the
    /// schedule starts from every entry's present state.
    #[cold]
    #[inline(never)]
    fn start_schedule(&mut self) {
        debug_assert!(self.scheduled());
        for i in 0..self.peer_count {
            self.touch(i);
        }
    }

    /// Records entry `i`'s deadline and pending work in the schedule. One copy for all
    /// its callers (a step's code is read from memory, issue 19).
    #[inline(never)]
    fn touch(&mut self, i: usize) {
        let p = &self.peers[i];
        self.sched.set_deadline(i, p.deadline(&self.cfg));
        self.sched.ready.set(i, p.sends_at_once());
        self.sched.rx.set(i, !p.closed && p.rx.has_message());
    }

    /// Debug builds, with the schedule kept: it says what a pass over the table would
    /// (every entry in use with its deadline, the sets exact).
    fn check_schedule(&self) {
        if !cfg!(debug_assertions) || !self.scheduled() {
            return;
        }
        // Entries past `peer_count` were never touched: in no set, not in the heap
        // (which `Schedule::check` counts).
        self.sched.check(self.peer_count);
        for (i, p) in self.peers[..self.peer_count].iter().enumerate() {
            debug_assert_eq!(
                self.sched.deadline(i),
                p.deadline(&self.cfg),
                "the schedule's deadline of entry {i}"
            );
            debug_assert_eq!(
                self.sched.ready.get(i),
                p.sends_at_once(),
                "the schedule's ready bit of entry {i}"
            );
            debug_assert_eq!(
                self.sched.rx.get(i),
                !p.closed && p.rx.has_message(),
                "the schedule's delivery bit of entry {i}"
            );
        }
    }

    /// The entry of `node`, if any: the last one used, or the index's.
    fn find(&self, node: &crate::NodeId) -> Option<usize> {
        let last = self.last_peer;
        if last < self.peer_count && self.peers[last].id.node == *node {
            return Some(last);
        }
        self.index.find(node, &self.peers[..self.peer_count])
    }

    /// Where `id` lands in the peer table. `inbound`: for a received datagram, which may
    /// not take the entries reserved for sends.
    fn classify(&self, id: ProcessId, inbound: bool) -> Result<Slot, DropReason> {
        self.classify_found(self.find(&id.node), id.incarnation, inbound)
    }

    /// [`classify`](Self::classify) with the lookup done: `found` is the entry of the
    /// process's node, if any, and `incarnation` its incarnation.
    #[inline]
    fn classify_found(
        &self,
        found: Option<usize>,
        incarnation: u64,
        inbound: bool,
    ) -> Result<Slot, DropReason> {
        match found {
            Some(i) => {
                let p = &self.peers[i];
                if incarnation < p.id.incarnation {
                    Err(DropReason::StaleIncarnation)
                } else if incarnation > p.id.incarnation {
                    Ok(Slot::Renew(i))
                } else if p.closed {
                    Err(DropReason::Disconnected)
                } else {
                    Ok(Slot::Existing(i))
                }
            }
            None => {
                let reserved = if inbound {
                    self.cfg.reserved_for_sends
                } else {
                    0
                };
                if self.peer_count + reserved < self.peers.len() {
                    Ok(Slot::New)
                } else {
                    Err(DropReason::PeerTableFull)
                }
            }
        }
    }

    #[inline]
    fn open(&mut self, slot: Slot, id: ProcessId, now: Time) -> usize {
        let (i, grew) = match slot {
            Slot::Existing(i) => {
                self.last_peer = i;
                return i;
            }
            Slot::Renew(i) => (i, false),
            Slot::New => {
                let i = self.peer_count;
                self.peer_count += 1;
                self.index.insert(&id.node, i);
                (i, true)
            }
        };
        self.last_peer = i;
        self.peers[i].open(id, now);
        // The entry that takes the table past the threshold (its index is the
        // threshold): the schedule starts.
        if grew && i == self.cfg.schedule_above {
            self.start_schedule();
        }
        i
    }

    /// Queues one message for reliable FIFO delivery to `to` at `addr`, opening the
    /// channel on first use (or reopening it for a newer incarnation of the node, which
    /// discards whatever was queued for the older one). `addr` replaces the peer's
    /// address. Transmission happens in [`poll_transmit`](Endpoint::poll_transmit).
    pub fn send(
        &mut self,
        now: Time,
        to: ProcessId,
        addr: SocketAddr,
        msg: &[u8],
    ) -> Result<(), SendError> {
        self.note_now(now);
        if msg.len() > self.cfg.max_message {
            return Err(SendError::TooLarge {
                len: msg.len(),
                max: self.cfg.max_message,
            });
        }
        let slot = match self.classify(to, false) {
            Ok(s) => s,
            Err(DropReason::StaleIncarnation) => {
                let current = self
                    .find(&to.node)
                    .map_or(0, |i| self.peers[i].id.incarnation);
                return Err(SendError::StaleIncarnation { peer: to, current });
            }
            Err(DropReason::Disconnected) => return Err(SendError::Disconnected(to)),
            Err(_) => return Err(SendError::PeerTableFull),
        };
        if let Slot::Existing(i) = slot {
            if crate::channel::frames_for(msg.len(), self.cap) > self.peers[i].tx.free_frames() {
                return Err(SendError::WindowFull);
            }
        }
        let i = self.open(slot, to, now);
        let (w, cap) = (self.cfg.send_window, self.cap);
        let p = &mut self.peers[i];
        p.addr = Some(addr);
        let pushed = p.tx.push(region(&mut self.tx_store, i, w, cap), cap, msg);
        if pushed {
            p.counters.messages_sent += 1;
            self.stats.messages_sent += 1;
        }
        self.changed(i);
        if !pushed {
            debug_assert!(false, "window checked above");
            return Err(SendError::WindowFull);
        }
        Ok(())
    }

    /// Feeds one datagram received from `from`. Never panics: anything that fails to
    /// decode, or is not for us, is dropped and counted in [`Stats::drops`].
    ///
    /// With cluster keys, the tag is checked right after the CRC and the format, before
    /// anything else is looked at: an unauthenticated datagram changes nothing but a
    /// counter. A replayed authenticated datagram is harmless: its frames are duplicates
    /// (dropped and counted), its acknowledgements old, and one from an older
    /// incarnation of its node, or addressed to an older incarnation of ours, is dropped.
    /// The peer's address is taken from a datagram only when it opens (or reopens) the
    /// channel or brings new data or acknowledgements, so a replay sent from another
    /// address cannot redirect the channel.
    pub fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        self.note_now(now);
        self.stats.datagrams_in += 1;
        self.stats.bytes_in += datagram.len() as u64;
        // The sender is most likely the last peer: its name, already checked, is
        // compared instead of checked again.
        let known = self.peers[..self.peer_count]
            .get(self.last_peer)
            .map(|p| p.id.node.as_bytes());
        let h = match wire::decode_with(datagram, self.cap, known, &self.crc) {
            Ok(h) => h,
            Err(e) => return self.stats.drop(e.drop_reason()),
        };
        if let Err(e) = wire::check_tag(datagram, &self.cfg.keys, &self.me.node) {
            let reason = e.drop_reason();
            if reason == DropReason::BadTag {
                self.last_bad_tag = Some(from);
            }
            return self.stats.drop(reason);
        }
        if h.cluster_id != self.cfg.cluster_id {
            self.last_foreign = Some(from);
            return self.stats.drop(DropReason::ForeignCluster);
        }
        // 0 addresses whoever listens: a probe's, sent before the receiver is known,
        // and only a probe's (a channel's datagrams always name their receiver).
        let to_anyone = h.receiver_incarnation == 0 && h.kind == Kind::Probe;
        if !to_anyone && h.receiver_incarnation != self.me.incarnation {
            if let Ok(node) = crate::NodeId::from_bytes(h.name) {
                let sender = ProcessId::new(node, h.sender_incarnation);
                self.note_refused(sender, from, DropReason::WrongReceiver);
            }
            return self.stats.drop(DropReason::WrongReceiver);
        }
        // A name equal to the last peer's is that entry's: no second lookup, and no
        // node id built from the bytes (`decode_with` checked them otherwise).
        let (found, node) = if h.known {
            (Some(self.last_peer), self.peers[self.last_peer].id.node)
        } else {
            let Ok(node) = crate::NodeId::from_bytes(h.name) else {
                return self.stats.drop(DropReason::Malformed);
            };
            let found = match h.body {
                Body::Probe(_) => None,
                _ => self.find(&node),
            };
            (found, node)
        };
        let sender = ProcessId::new(node, h.sender_incarnation);
        if let Body::Probe(payload) = h.body {
            // Outside any channel: no peer table entry, no acknowledgement.
            if self.probes_in.push(from, sender, payload) {
                self.stats.probes_received += 1;
            } else {
                self.stats.probes_dropped += 1;
            }
            return;
        }
        let slot = match self.classify_found(found, sender.incarnation, true) {
            Ok(s) => s,
            Err(reason) => {
                self.note_refused(sender, from, reason);
                return self.stats.drop(reason);
            }
        };
        let fresh_channel = !matches!(slot, Slot::Existing(_));
        // A channel about to be opened has sent nothing: it can only be acked with 0.
        let max_ack = match slot {
            Slot::Existing(i) => self.peers[i].tx.max_ack(),
            _ => 0,
        };
        if h.ack > max_ack {
            return self.stats.drop(DropReason::Malformed);
        }
        let i = match slot {
            Slot::Existing(i) => {
                self.last_peer = i;
                i
            }
            _ => self.open(slot, sender, now),
        };
        let (w, cap) = (self.cfg.recv_window, self.cap);
        let delayed_ack_us = self.cfg.delayed_ack_us;
        let p = &mut self.peers[i];
        if fresh_channel || p.addr.is_none() {
            p.addr = Some(from);
        }
        p.counters.datagrams_in += 1;
        p.counters.bytes_in += datagram.len() as u64;
        // Authenticated, from this incarnation, addressed to ours: the peer is alive,
        // whatever the datagram carries and even if its data waits behind a gap.
        p.last_rx = Some(now);

        let out = p.tx.on_ack(now, h.ack, h.sack_offset, h.sack);
        if let Some(sample) = out.sample_us {
            p.rtt.on_sample(sample);
        }
        if out.fast_marked > 0 {
            p.counters.fast_retransmits += out.fast_marked as u64;
            self.stats.fast_retransmits += out.fast_marked as u64;
        }
        if out.progress {
            p.on_progress(now);
            p.addr = Some(from);
        }
        if out.advanced {
            let rto = p.outstanding().then(|| now + p.rtt.rto());
            if let Some(r) = rto {
                if !matches!(p.rto_deadline, Some(d) if d <= r) {
                    self.timer_restarted = true;
                }
            }
            p.rto_deadline = rto;
        }

        match h.body {
            Body::Ack { echo: 0 } => {}
            Body::Ack { echo } => {
                let sent = echo - 1;
                if p.ka_since.is_some_and(|t| t.0 <= sent) && sent <= now.0 {
                    p.rtt.on_sample(now.0 - sent);
                    p.on_progress(now);
                    if !p.outstanding() {
                        p.rto_deadline = None;
                    }
                }
            }
            Body::Keepalive { ts } => {
                p.echo = ts;
                self.stats.keepalives_received += 1;
            }
            Body::Probe(_) => {}
            Body::Data(frames) => {
                let store = region(&mut self.rx_store, i, w, cap);
                let (mut new, mut dup, mut outside) = (0u32, 0u32, 0u32);
                for f in frames {
                    match p.rx.accept(store, cap, &f) {
                        Accept::New => new += 1,
                        Accept::Duplicate => dup += 1,
                        Accept::OutOfWindow => outside += 1,
                    }
                }
                p.counters.duplicates += dup as u64;
                self.stats.duplicates += dup as u64;
                if new > 0 {
                    p.addr = Some(from);
                }
                if new == 0 {
                    self.stats.drop(if outside > 0 {
                        DropReason::WindowFull
                    } else {
                        DropReason::Duplicate
                    });
                }
                p.data_unacked += 1;
                // Anomalies (loss, reordering, duplicates) are reported at once; in-order
                // data is acked every second datagram or after `delayed_ack_us`.
                if dup > 0 || outside > 0 || p.data_unacked >= 2 || p.rx.has_gap() {
                    p.ack_due = Some(now);
                } else {
                    p.ack_due = earliest(p.ack_due, Some(now + delayed_ack_us));
                }
            }
        }
        if !self.tx_hint {
            self.tx_hint = p.wants_transmit(now, &self.cfg);
        }
        self.changed(i);
    }

    /// Whether a datagram handled since [`poll_transmit`](Self::poll_transmit) last
    /// returned `None` left its peer with something to send at its arrival time (an
    /// immediate ack, a keepalive echo, a fast retransmission, ...). Only what a
    /// datagram changed is covered: a caller that knows no deadline has passed since
    /// its last `poll_transmit` loop (every deadline counts, see
    /// [`poll_timeout`](Self::poll_timeout)), and that queued nothing since, may skip
    /// `poll_transmit` when this is `false`. The driver does, after a datagram.
    pub(crate) fn transmit_hint(&self) -> bool {
        self.tx_hint
    }

    /// Whether a datagram handled since the last call started a retransmission timer,
    /// or moved one earlier (after a new round-trip sample). Handling a datagram
    /// changes no other timer but to push it later (silence is measured from its
    /// arrival) or stop it, so when this is `false`, no [`handle_timeout`](Self::handle_timeout)
    /// work falls due earlier than [`poll_timeout`](Self::poll_timeout) said before the
    /// datagrams. The driver relies on it to skip `handle_timeout` after a datagram.
    pub(crate) fn take_timer_restarted(&mut self) -> bool {
        std::mem::take(&mut self.timer_restarted)
    }

    /// Copies the next in-order message into `buf` and returns its sender and length.
    /// Messages of each peer come in send order; peers are served round robin.
    ///
    /// `buf` should hold `max_message` bytes: a longer message is cut to `buf.len()`
    /// (counted in [`Stats::truncated_deliveries`]).
    pub fn poll_delivery(&mut self, buf: &mut [u8]) -> Option<(ProcessId, usize)> {
        self.check_schedule();
        let n = self.peer_count;
        // The first entry with a message from the cursor on: the schedule's set, or a
        // pass over the table.
        let i = if self.scheduled() {
            self.sched.rx.next_from(self.rx_cursor, n)?
        } else {
            let from = if self.rx_cursor >= n {
                0
            } else {
                self.rx_cursor
            };
            (from..n)
                .chain(0..from)
                .find(|&i| !self.peers[i].closed && self.peers[i].rx.has_message())?
        };
        let p = &mut self.peers[i];
        debug_assert!(!p.closed && p.rx.has_message());
        let store = region(&mut self.rx_store, i, self.cfg.recv_window, self.cap);
        let delivered = p.rx.deliver(store, self.cap, buf);
        let id = p.id;
        let more = p.rx.has_message();
        if self.scheduled() {
            self.sched.rx.set(i, more);
        }
        let (copied, total) = delivered?;
        if copied < total {
            self.stats.truncated_deliveries += 1;
        }
        self.peers[i].counters.messages_delivered += 1;
        self.stats.messages_delivered += 1;
        self.rx_cursor = if i + 1 == n { 0 } else { i + 1 };
        Some((id, copied))
    }

    /// Writes the next datagram to send into `buf` (which should hold `mtu` bytes) and
    /// returns its destination and length; `None` when nothing is due. Coalesces small
    /// messages, carries fragments, retransmissions, piggy-backed acks, ack-only
    /// datagrams and keepalives. Peers are served round robin.
    pub fn poll_transmit(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        self.note_now(now);
        if !self.probes_out.is_empty() {
            if let Some(t) = self.transmit_probe(buf) {
                self.tx_drained = false;
                return Some(t);
            }
        }
        if let Some(t) = if self.scheduled() {
            self.transmit_scheduled(now, buf)
        } else {
            self.transmit_scanning(now, buf)
        } {
            return Some(t);
        }
        self.tx_drained = true;
        self.tx_hint = false;
        None
    }

    /// `poll_transmit` over the schedule: the candidates are the entries with
    /// something to send at once and those whose deadline has passed (a delayed ack or
    /// a keepalive may be due), each asked, from the cursor on, as a pass would.
    fn transmit_scheduled(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        self.check_schedule();
        let n = self.peer_count;
        self.sched.scratch.copy_from(&self.sched.ready);
        self.sched.mark_due(now);
        let mut from = self.tx_cursor;
        while let Some(i) = self.sched.scratch.next_from(from, n) {
            self.sched.scratch.set(i, false);
            from = i + 1;
            if !self.peers[i].wants_transmit(now, &self.cfg) {
                continue;
            }
            if let Some(t) = self.build(i, now, buf) {
                self.tx_cursor = if i + 1 == n { 0 } else { i + 1 };
                return Some(t);
            }
        }
        None
    }

    /// `poll_transmit` over the whole table, from the cursor on.
    fn transmit_scanning(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        let n = self.peer_count;
        let mut next = self.tx_cursor;
        for _ in 0..n {
            let i = if next >= n { 0 } else { next };
            next = i + 1;
            if !self.peers[i].wants_transmit(now, &self.cfg) {
                continue;
            }
            if let Some(t) = self.build(i, now, buf) {
                self.tx_cursor = if next == n { 0 } else { next };
                return Some(t);
            }
        }
        None
    }

    /// After [`poll_transmit`](Self::poll_transmit) returned a datagram: another call
    /// at the same time, with no input in between, is known to return `None` (it may
    /// be skipped; the endpoint is in the state that call would leave). `false` does
    /// not promise a datagram: call `poll_transmit` to find out. The driver uses it to
    /// save the empty call after each datagram of a single channel.
    pub(crate) fn transmit_drained(&self) -> bool {
        self.tx_drained
    }

    /// Encodes the oldest queued probe. Kept out of line, as [`build`](Self::build) is,
    /// so that the calls of `poll_transmit` that find nothing to send (most of them)
    /// stay small.
    #[inline(never)]
    fn transmit_probe(&mut self, buf: &mut [u8]) -> Option<Transmit> {
        let (dst, _, payload) = self.probes_out.pop()?;
        let limit = buf.len().min(self.cfg.mtu);
        let len = wire::encode_probe_keyed(
            &mut buf[..limit],
            self.cfg.cluster_id,
            self.me,
            payload,
            &self.cfg.keys,
        )?;
        self.stats.probes_sent += 1;
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += len as u64;
        Some(Transmit { dst, len })
    }

    #[inline(never)]
    fn build(&mut self, i: usize, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        let limit = buf.len().min(self.cfg.mtu);
        let buf = &mut buf[..limit];
        let (w, cap) = (self.cfg.send_window, self.cap);
        let p = &mut self.peers[i];
        let dst = p.addr?;
        let keepalive = p.ka_resend || p.keepalive_at(&self.cfg).is_some_and(|t| t <= now);
        let kind = if p.echo != 0 {
            Kind::Ack
        } else if keepalive {
            Kind::Keepalive
        } else if p.tx.has_sendable() {
            Kind::Data
        } else {
            Kind::Ack
        };
        let (sack_offset, sack) = p.rx.sack();
        // Our cluster id and process and the peer's incarnation are in the template.
        let acks = (p.rx.expected(), sack_offset, sack);
        let Some(mut writer) = Writer::from_template(buf, &p.template, kind, acks, &self.cfg.keys)
        else {
            debug_assert!(false, "transmit buffer smaller than a header");
            return None;
        };
        let was_outstanding = p.outstanding();
        let stamp = match kind {
            Kind::Data => {
                let store = region(&mut self.tx_store, i, w, cap);
                let f = p.tx.fill(now, store, cap, &mut writer);
                if f.frames == 0 {
                    debug_assert!(false, "transmit buffer smaller than the mtu");
                    self.changed(i);
                    return None;
                }
                self.stats.frames_sent += f.frames as u64;
                self.stats.retransmissions += f.retransmitted as u64;
                p.counters.retransmissions += f.retransmitted as u64;
                0
            }
            Kind::Keepalive => {
                p.ka_resend = false;
                p.ka_since.get_or_insert(now);
                self.stats.keepalives_sent += 1;
                p.counters.keepalives_sent += 1;
                now.0.saturating_add(1)
            }
            Kind::Ack | Kind::Probe => {
                self.stats.acks_sent += 1;
                p.counters.acks_sent += 1;
                std::mem::take(&mut p.echo)
            }
        };
        if kind != Kind::Ack {
            p.last_reliable_tx = now;
            if !was_outstanding {
                p.last_progress = now;
            }
            if p.rto_deadline.is_none() {
                p.rto_deadline = Some(now + p.rtt.rto());
            }
        }
        let len = writer.finish_with(stamp, &self.crc);
        p.ack_due = None;
        p.data_unacked = 0;
        // With one peer and no probe queued, the next `poll_transmit` would look at
        // this peer only: if it wants nothing more, that call would return `None` (and
        // clear the hint), so both are done now (see `transmit_drained`).
        self.tx_drained =
            self.peer_count == 1 && self.probes_out.is_empty() && !p.wants_transmit(now, &self.cfg);
        if self.tx_drained {
            self.tx_hint = false;
        }
        p.counters.datagrams_out += 1;
        p.counters.bytes_out += len as u64;
        self.stats.datagrams_out += 1;
        self.stats.bytes_out += len as u64;
        self.changed(i);
        Some(Transmit { dst, len })
    }

    /// Queues a probe: an unreliable, unsequenced datagram carrying `payload` to
    /// whatever process listens at `addr` (no channel is opened; the receiver reads it
    /// with [`poll_probe`](Endpoint::poll_probe) together with our process id and address).
    /// Used to find peers by address before their process id is known (cold start).
    /// At most [`PROBE_QUEUE`] probes wait for [`poll_transmit`](Endpoint::poll_transmit);
    /// beyond that `WindowFull`. Payloads over [`wire::MAX_PROBE_PAYLOAD`] bytes (or
    /// over what one `mtu` datagram holds) are `TooLarge`.
    pub fn send_probe(
        &mut self,
        now: Time,
        addr: SocketAddr,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.note_now(now);
        let max = wire::MAX_PROBE_PAYLOAD.min(
            self.cfg.mtu
                - wire::MAX_HEADER_LEN
                - wire::PROBE_PREFIX_LEN
                - wire::TAG_LEN
                - wire::CRC_LEN,
        );
        if payload.len() > max {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        if !self.probes_out.push(addr, self.me, payload) {
            return Err(SendError::WindowFull);
        }
        Ok(())
    }

    /// The next received probe: copies its payload into `buf` (cut to `buf.len()`) and
    /// returns the sending process, its address and the copied length.
    pub fn poll_probe(&mut self, buf: &mut [u8]) -> Option<(ProcessId, SocketAddr, usize)> {
        let (addr, id, payload) = self.probes_in.pop()?;
        let n = payload.len().min(buf.len());
        buf[..n].copy_from_slice(&payload[..n]);
        Some((id, addr, n))
    }

    /// The next sender refused since the last call: an authenticated datagram of this
    /// cluster from an incarnation this endpoint disconnected
    /// ([`DropReason::Disconnected`]), from an older incarnation of a known node
    /// ([`DropReason::StaleIncarnation`]), or addressed to an older incarnation of this
    /// process ([`DropReason::WrongReceiver`]). The node core answers such a sender, if
    /// it was removed from the group, with an explicit "you were excluded"
    /// (`docs/PROTOCOL.md`, D24): without it, a process shut out this way would never
    /// hear from the group again. At most [`REFUSED_CAP`] are kept between polls (the
    /// rest are only counted as drops).
    pub fn poll_refused(&mut self) -> Option<Refused> {
        self.refused.pop_front()
    }

    fn note_refused(&mut self, from: ProcessId, addr: SocketAddr, reason: DropReason) {
        if matches!(
            reason,
            DropReason::Disconnected | DropReason::StaleIncarnation | DropReason::WrongReceiver
        ) && self.refused.len() < REFUSED_CAP
        {
            self.refused.push_back(Refused { from, addr, reason });
        }
    }

    /// The next [`TransportEvent`], if any.
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        let (i, id) = self.events.pop_front()?;
        if let Some(p) = self.peers.get_mut(i as usize) {
            if p.id == id {
                p.event_queued = false;
            }
        }
        Some(TransportEvent::PeerUnreachable(id))
    }

    /// Runs timers due at `now`: retransmission timeouts (with backoff) and silence
    /// detection. Acks and keepalives that fall due are sent by the next
    /// [`poll_transmit`](Endpoint::poll_transmit).
    pub fn handle_timeout(&mut self, now: Time) {
        self.note_now(now);
        if self.scheduled() {
            self.timeouts_scheduled(now);
        } else {
            for i in 0..self.peer_count {
                self.peer_timeout(i, now);
            }
        }
    }

    /// `handle_timeout` over the schedule: only the entries whose deadline has passed
    /// (for the others `Peer::on_timeout` changes nothing), in table order as a pass.
    fn timeouts_scheduled(&mut self, now: Time) {
        self.check_schedule();
        self.sched.scratch.clear();
        self.sched.mark_due(now);
        let mut from = 0;
        while let Some(i) = self.sched.scratch.next_from(from, self.peer_count) {
            self.sched.scratch.set(i, false);
            from = i + 1;
            self.peer_timeout(i, now);
            self.touch(i);
        }
    }

    /// Entry `i`'s timers at `now` (see [`Peer::on_timeout`]), and its event.
    #[inline]
    fn peer_timeout(&mut self, i: usize, now: Time) {
        let p = &mut self.peers[i];
        let out = p.on_timeout(now, &self.cfg);
        if out.fired {
            self.stats.timeouts += 1;
        }
        if out.unreachable {
            self.stats.unreachable_events += 1;
            if !p.event_queued && self.events.len() < self.events_cap {
                p.event_queued = true;
                self.events.push_back((i as u32, p.id));
            }
        }
    }

    /// The earliest time at which [`handle_timeout`](Endpoint::handle_timeout) (or
    /// [`poll_transmit`](Endpoint::poll_transmit), for delayed acks and keepalives) has
    /// work; `None` if no timer runs.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.scheduled() {
            self.check_schedule();
            return self.sched.earliest();
        }
        self.peers[..self.peer_count]
            .iter()
            .fold(None, |acc, p| earliest(acc, p.deadline(&self.cfg)))
    }

    /// Closes the channel to this incarnation for good: whatever is queued for it or
    /// buffered from it is discarded, and its later datagrams are dropped
    /// ([`DropReason::Disconnected`]). A newer incarnation of the same node may still open
    /// a fresh channel. Disconnecting an incarnation older than the one known does nothing
    /// (it is already shut out); one newer than known replaces it. If the peer table is
    /// full and the node unknown, nothing can be recorded.
    pub fn disconnect(&mut self, peer: ProcessId) {
        let now = self.last_now;
        let slot = match self.classify(peer, false) {
            Ok(s) => s,
            Err(_) => return,
        };
        let i = self.open(slot, peer, now);
        self.peers[i].close();
        self.changed(i);
    }

    /// The channel to `peer` is closed for good: it was disconnected, or a newer
    /// incarnation of its node is known.
    pub fn is_disconnected(&self, peer: ProcessId) -> bool {
        self.find(&peer.node).is_some_and(|i| {
            let p = &self.peers[i];
            p.id.incarnation > peer.incarnation || (p.id == peer && p.closed)
        })
    }

    /// Totals since creation.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The sender of the last datagram dropped for `reason`, recorded for
    /// [`DropReason::BadTag`] (a key mismatch, most likely) and
    /// [`DropReason::ForeignCluster`] only (`None` for the other reasons).
    pub fn last_drop_from(&self, reason: DropReason) -> Option<SocketAddr> {
        match reason {
            DropReason::BadTag => self.last_bad_tag,
            DropReason::ForeignCluster => self.last_foreign,
            _ => None,
        }
    }

    /// A snapshot of the channel to `peer` (exactly this incarnation).
    pub fn peer_stats(&self, peer: ProcessId) -> Option<PeerStats> {
        let i = self.find(&peer.node)?;
        let p = &self.peers[i];
        if p.id != peer {
            return None;
        }
        Some(PeerStats {
            peer: p.id,
            addr: p.addr,
            disconnected: p.closed,
            unreachable: p.unreachable,
            srtt_us: p.rtt.srtt(),
            rttvar_us: p.rtt.rttvar(),
            rto_us: p.rtt.rto(),
            frames_in_window: p.tx.used_frames(),
            retries: p.retries,
            last_heard: p.last_rx,
            counters: p.counters,
        })
    }

    /// When the last datagram from `peer` (exactly this incarnation) was accepted:
    /// data, acknowledgement or keepalive, authenticated and addressed to this
    /// incarnation. Unlike delivery, this is not held up by head-of-line blocking: a
    /// datagram whose data waits behind a lost one still counts. `None` if no datagram
    /// was accepted from it (or the channel is open with another incarnation).
    pub fn last_heard(&self, peer: ProcessId) -> Option<Time> {
        let i = self
            .index
            .find(&peer.node, &self.peers[..self.peer_count])?;
        let p = &self.peers[i];
        (p.id == peer).then_some(p.last_rx).flatten()
    }

    /// The peers (current incarnations, open channels) a datagram was accepted from at
    /// or after `since`, with the time of the last one. Allocates nothing; a failure
    /// detector can take these as signs of life (see [`Endpoint::last_heard`]).
    pub fn heard_since(&self, since: Time) -> impl Iterator<Item = (ProcessId, Time)> + '_ {
        self.peers[..self.peer_count].iter().filter_map(move |p| {
            p.last_rx
                .filter(|&t| t >= since && !p.closed)
                .map(|t| (p.id, t))
        })
    }

    /// Peers in the table (each node counted once, whatever its incarnation).
    pub fn peer_count(&self) -> usize {
        self.peer_count
    }

    /// Frames that can still be queued to `peer` right now (the whole window for a
    /// channel not opened yet); `None` if sending to it is refused.
    pub fn send_capacity(&self, peer: ProcessId) -> Option<usize> {
        match self.classify(peer, false).ok()? {
            Slot::Existing(i) => Some(self.peers[i].tx.free_frames()),
            _ => Some(self.cfg.send_window),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Header;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], port))
    }

    /// Moves every datagram between `a` (at port 1) and `b` (port 2), losing none.
    fn exchange(now: Time, a: &mut Endpoint, b: &mut Endpoint) -> usize {
        let mut buf = [0u8; 1500];
        let mut moved = 0;
        loop {
            let mut any = false;
            while let Some(t) = a.poll_transmit(now, &mut buf) {
                assert_eq!(t.dst, addr(2));
                b.handle_datagram(now, addr(1), &buf[..t.len]);
                any = true;
                moved += 1;
            }
            while let Some(t) = b.poll_transmit(now, &mut buf) {
                a.handle_datagram(now, addr(2), &buf[..t.len]);
                any = true;
                moved += 1;
            }
            if !any {
                return moved;
            }
        }
    }

    fn pair() -> (Endpoint, Endpoint, ProcessId, ProcessId) {
        let (pa, pb) = (ProcessId::named("a", 1), ProcessId::named("b", 1));
        let cfg = TransportConfig {
            max_peers: 4,
            ..TransportConfig::default()
        };
        (Endpoint::new(cfg, pa), Endpoint::new(cfg, pb), pa, pb)
    }

    #[test]
    fn coalesces_and_delivers_in_order() {
        let (mut a, mut b, pa, pb) = (pair().0, pair().1, pair().2, pair().3);
        for i in 0..100u32 {
            a.send(Time(0), pb, addr(2), &i.to_be_bytes()).unwrap();
        }
        let mut buf = [0u8; 1500];
        let t = a.poll_transmit(Time(0), &mut buf).unwrap();
        assert!(t.len <= 1400);
        b.handle_datagram(Time(0), addr(1), &buf[..t.len]);
        exchange(Time(0), &mut a, &mut b);
        assert!(a.stats().datagrams_out < 10, "{:?}", a.stats());
        let mut got = vec![];
        let mut m = [0u8; 64];
        while let Some((from, n)) = b.poll_delivery(&mut m) {
            assert_eq!(from, pa);
            got.push(u32::from_be_bytes(m[..n].try_into().unwrap()));
        }
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        // In-order data: the receiver's ack is delayed, then sent.
        assert!(b.poll_timeout().is_some());
        let due = b.poll_timeout().unwrap();
        b.handle_timeout(due);
        exchange(due, &mut a, &mut b);
        assert_eq!(a.peer_stats(pb).unwrap().frames_in_window, 0);
        assert!(a.peer_stats(pb).unwrap().srtt_us.is_some());
    }

    #[test]
    fn last_heard_is_stamped_on_accepted_datagrams_only() {
        let (mut a, mut b, pa, pb) = pair();
        let mut buf = [0u8; 1500];
        assert_eq!(b.last_heard(pa), None);
        a.send(Time(0), pb, addr(2), b"one").unwrap();
        let lost = a.poll_transmit(Time(0), &mut buf).unwrap();
        let lost = buf[..lost.len].to_vec();
        a.send(Time(1), pb, addr(2), b"two").unwrap();
        let t = a.poll_transmit(Time(1), &mut buf).unwrap();
        // The first datagram is lost: the second one's data waits behind the gap, but
        // the datagram itself proves `a` alive.
        b.handle_datagram(Time(10), addr(1), &buf[..t.len]);
        assert_eq!(b.poll_delivery(&mut [0u8; 64]), None);
        assert_eq!(b.last_heard(pa), Some(Time(10)));
        assert_eq!(b.peer_stats(pa).unwrap().last_heard, Some(Time(10)));
        assert_eq!(
            b.heard_since(Time(10)).collect::<Vec<_>>(),
            [(pa, Time(10))]
        );
        assert_eq!(b.heard_since(Time(11)).count(), 0);
        // Rejected: a corrupted datagram, a stale incarnation of `a`, garbage.
        let mut forged = lost.clone(); // bad CRC
        let last = forged.len() - 1;
        forged[last] ^= 1;
        b.handle_datagram(Time(20), addr(1), &forged);
        let mut old = Endpoint::new(*a.config(), ProcessId::named("a", 0));
        old.send(Time(20), pb, addr(2), b"old").unwrap();
        let t = old.poll_transmit(Time(20), &mut buf).unwrap();
        b.handle_datagram(Time(21), addr(1), &buf[..t.len]);
        b.handle_datagram(Time(22), addr(1), b"garbage");
        assert_eq!(b.stats().total_drops(), 3, "{:?}", b.stats());
        assert_eq!(b.last_heard(pa), Some(Time(10)));
        assert_eq!(b.last_heard(ProcessId::named("a", 0)), None);
        // Accepted again: the retransmission fills the gap; a duplicate still counts.
        b.handle_datagram(Time(30), addr(1), &lost);
        assert_eq!(b.last_heard(pa), Some(Time(30)));
        b.handle_datagram(Time(31), addr(1), &lost);
        assert_eq!(b.last_heard(pa), Some(Time(31)));
        // An ack-only datagram counts too.
        let t = b.poll_transmit(Time(31), &mut buf).unwrap();
        assert_eq!(a.last_heard(pb), None);
        a.handle_datagram(Time(40), addr(2), &buf[..t.len]);
        assert_eq!(a.last_heard(pb), Some(Time(40)));
    }

    /// The header of `a`'s next datagram, after checking that the datagram is byte for
    /// byte what the field-by-field encoder writes for it.
    fn next_header(a: &mut Endpoint, now: Time) -> Header {
        let mut buf = [0u8; 1500];
        let t = a.poll_transmit(now, &mut buf).unwrap();
        let d = wire::decode(&buf[..t.len], a.cap).unwrap();
        let mut again = [0u8; 1500];
        let mut w = Writer::new(&mut again, &d.header).unwrap();
        if let Body::Data(frames) = d.body {
            for f in frames {
                assert!(w.push_frame(f.seq, f.end, f.payload));
            }
        }
        let stamp = match d.body {
            Body::Ack { echo } => echo,
            Body::Keepalive { ts } => ts,
            _ => 0,
        };
        assert_eq!(w.finish(stamp), t.len);
        assert_eq!(again[..t.len], buf[..t.len]);
        d.header
    }

    /// Receiver incarnation 0 means "whoever listens" for a probe only: a channel's
    /// datagram naming incarnation 0 is refused (it was a wildcard that let a datagram
    /// meant for one node be accepted by any).
    #[test]
    fn only_a_probe_may_address_any_incarnation() {
        let (mut a, mut b, _pa, pb) = pair();
        let anyone = ProcessId::new(pb.node, 0);
        a.send(Time(0), anyone, addr(2), b"to whom it may concern")
            .unwrap();
        let mut buf = [0u8; 1500];
        let t = a.poll_transmit(Time(0), &mut buf).unwrap();
        let d = wire::decode(&buf[..t.len], a.cap).unwrap();
        assert_eq!(
            (d.header.kind, d.header.receiver_incarnation),
            (Kind::Data, 0)
        );
        b.handle_datagram(Time(1), addr(1), &buf[..t.len]);
        assert_eq!(b.stats().dropped(DropReason::WrongReceiver), 1);
        assert!(b.poll_event().is_none());
        a.send_probe(Time(2), addr(2), b"hello").unwrap();
        let t = a.poll_transmit(Time(2), &mut buf).unwrap();
        b.handle_datagram(Time(3), addr(1), &buf[..t.len]);
        let mut got = [0u8; 16];
        let (_, _, n) = b.poll_probe(&mut got).expect("the probe is taken");
        assert_eq!(&got[..n], b"hello");
        assert_eq!(b.stats().dropped(DropReason::WrongReceiver), 1);
    }

    #[test]
    fn datagrams_follow_the_peers_incarnation() {
        let (mut a, b, pa, pb) = pair();
        a.send(Time(0), pb, addr(2), b"one").unwrap();
        let h = next_header(&mut a, Time(0));
        assert_eq!((h.sender, h.receiver_incarnation), (pa, 1));
        // `b` restarts with incarnation 5: the channel is reopened for it.
        let pb5 = ProcessId::named("b", 5);
        a.send(Time(1), pb5, addr(2), b"two").unwrap();
        let h = next_header(&mut a, Time(1));
        assert_eq!((h.sender, h.receiver_incarnation, h.ack), (pa, 5, 0));
        // Learned from a datagram too: an inbound newer incarnation readdresses.
        let mut b7 = Endpoint::new(*b.config(), ProcessId::named("b", 7));
        b7.send(Time(2), pa, addr(1), b"hi").unwrap();
        let mut buf = [0u8; 1500];
        let t = b7.poll_transmit(Time(2), &mut buf).unwrap();
        a.handle_datagram(Time(2), addr(2), &buf[..t.len]);
        let due = a.poll_timeout().unwrap();
        let h = next_header(&mut a, due);
        assert_eq!((h.kind, h.receiver_incarnation, h.ack), (Kind::Ack, 7, 1));
    }

    /// Drains `a`, checking after every datagram that `transmit_drained` is `true` only
    /// when the next call returns `None`; returns the datagrams and how many were
    /// flagged drained.
    fn drain_checked(a: &mut Endpoint, now: Time) -> (Vec<Vec<u8>>, usize) {
        let (mut out, mut flagged) = (vec![], 0);
        let mut buf = [0u8; 1500];
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            out.push(buf[..t.len].to_vec());
            if a.transmit_drained() {
                flagged += 1;
                assert!(!a.transmit_hint());
                assert_eq!(a.poll_transmit(now, &mut buf), None);
                break;
            }
        }
        assert!(a.transmit_drained());
        (out, flagged)
    }

    #[test]
    fn transmit_drained_only_when_nothing_else_is_due() {
        let (mut a, mut b, _, pb) = pair();
        // One message: one datagram, known to be the last.
        a.send(Time(0), pb, addr(2), b"one").unwrap();
        assert_eq!(drain_checked(&mut a, Time(0)).1, 1);
        // More than a datagram holds: only the last is flagged.
        for _ in 0..3 {
            a.send(Time(1), pb, addr(2), &[7u8; 1000]).unwrap();
        }
        let (sent, flagged) = drain_checked(&mut a, Time(1));
        assert_eq!((sent.len(), flagged), (3, 1));
        // Probes first: never flagged, whatever was flagged before.
        a.send_probe(Time(2), addr(2), b"p").unwrap();
        a.send_probe(Time(2), addr(3), b"q").unwrap();
        a.send(Time(2), pb, addr(2), b"two").unwrap();
        let (sent, flagged) = drain_checked(&mut a, Time(2));
        assert_eq!((sent.len(), flagged), (3, 1));
        // Two peers: the empty call is made.
        a.send(Time(3), pb, addr(2), b"three").unwrap();
        a.send(Time(3), ProcessId::named("c", 1), addr(3), b"x")
            .unwrap();
        let (sent, flagged) = drain_checked(&mut a, Time(3));
        assert_eq!((sent.len(), flagged), (2, 0));
        for d in sent {
            b.handle_datagram(Time(4), addr(1), &d);
        }
    }

    #[test]
    fn send_errors() {
        let (mut a, _, _, pb) = pair();
        let big = vec![0u8; 64 * 1024 + 1];
        assert_eq!(
            a.send(Time(0), pb, addr(2), &big),
            Err(SendError::TooLarge {
                len: big.len(),
                max: 64 * 1024
            })
        );
        let mut n = 0;
        while a.send(Time(0), pb, addr(2), b"x").is_ok() {
            n += 1;
        }
        assert_eq!(n, 256);
        assert_eq!(
            a.send(Time(0), pb, addr(2), b"x"),
            Err(SendError::WindowFull)
        );
        a.disconnect(pb);
        assert!(a.is_disconnected(pb));
        assert_eq!(
            a.send(Time(0), pb, addr(2), b"x"),
            Err(SendError::Disconnected(pb))
        );
        let pb2 = ProcessId::named("b", 2);
        assert!(a.send(Time(0), pb2, addr(2), b"x").is_ok());
        assert!(matches!(
            a.send(Time(0), pb, addr(2), b"x"),
            Err(SendError::StaleIncarnation { current: 2, .. })
        ));
        for k in 0..3 {
            let p = ProcessId::named(&format!("n{k}"), 1);
            assert!(a.send(Time(0), p, addr(3), b"x").is_ok());
        }
        assert_eq!(
            a.send(Time(0), ProcessId::named("z", 1), addr(3), b"x"),
            Err(SendError::PeerTableFull)
        );
    }

    #[test]
    fn keepalive_gives_rtt_and_silence_is_reported_once() {
        let (mut a, mut b, _, pb) = pair();
        a.send(Time(0), pb, addr(2), b"hi").unwrap();
        exchange(Time(0), &mut a, &mut b);
        let t = b.poll_timeout().unwrap();
        b.handle_timeout(t);
        exchange(t, &mut a, &mut b);
        // Idle: next deadline is the keepalive.
        let ka = a.poll_timeout().unwrap();
        assert_eq!(ka, Time(1_000_000));
        let mut buf = [0u8; 1500];
        let t = a.poll_transmit(ka, &mut buf).unwrap();
        b.handle_datagram(ka + 500, addr(1), &buf[..t.len]);
        let t = b.poll_transmit(ka + 500, &mut buf).unwrap();
        a.handle_datagram(ka + 1000, addr(2), &buf[..t.len]);
        assert_eq!(a.stats().keepalives_sent, 1);
        // Two samples of 1 ms (delayed ack, then the keepalive echo): RTTVAR 500 → 375.
        let ps = a.peer_stats(pb).unwrap();
        assert_eq!((ps.srtt_us, ps.rttvar_us), (Some(1000), 375));
        // Now b goes silent: a's keepalives go unanswered until it is reported.
        let mut now = a.poll_timeout().unwrap();
        let mut events = 0;
        for _ in 0..200 {
            a.handle_timeout(now);
            while a.poll_transmit(now, &mut buf).is_some() {}
            while let Some(e) = a.poll_event() {
                assert_eq!(e, TransportEvent::PeerUnreachable(pb));
                events += 1;
            }
            now = a.poll_timeout().unwrap();
        }
        assert_eq!(events, 1);
        assert!(a.peer_stats(pb).unwrap().unreachable);
    }

    #[test]
    fn probes_bypass_channels_and_are_bounded() {
        let (mut a, mut b, pa, _) = pair();
        a.send_probe(Time(0), addr(2), b"query").unwrap();
        a.send_probe(Time(0), addr(2), b"").unwrap();
        let mut buf = [0u8; 1500];
        let mut n = 0;
        while let Some(t) = a.poll_transmit(Time(0), &mut buf) {
            b.handle_datagram(Time(0), addr(1), &buf[..t.len]);
            n += 1;
        }
        assert_eq!(n, 2);
        assert_eq!(a.stats().probes_sent, 2);
        let mut out = [0u8; 64];
        assert_eq!(b.poll_probe(&mut out), Some((pa, addr(1), 5)));
        assert_eq!(&out[..5], b"query");
        assert_eq!(b.poll_probe(&mut out), Some((pa, addr(1), 0)));
        assert_eq!(b.poll_probe(&mut out), None);
        // No channel was opened on either side.
        assert_eq!(a.peer_count(), 0);
        assert_eq!(b.peer_count(), 0);
        // Bounded queue and payload.
        for _ in 0..PROBE_QUEUE {
            a.send_probe(Time(0), addr(2), b"x").unwrap();
        }
        assert_eq!(
            a.send_probe(Time(0), addr(2), b"x"),
            Err(SendError::WindowFull)
        );
        assert!(matches!(
            a.send_probe(Time(0), addr(2), &[0; wire::MAX_PROBE_PAYLOAD + 1]),
            Err(SendError::TooLarge { .. })
        ));
        // The receive queue is bounded too: the overflow is counted.
        while let Some(t) = a.poll_transmit(Time(0), &mut buf) {
            b.handle_datagram(Time(0), addr(1), &buf[..t.len]);
        }
        b.send_probe(Time(0), addr(1), b"y").unwrap();
        let t = b.poll_transmit(Time(0), &mut buf).unwrap();
        for _ in 0..PROBE_QUEUE + 3 {
            a.handle_datagram(Time(0), addr(2), &buf[..t.len]);
        }
        assert_eq!(a.stats().probes_received, PROBE_QUEUE as u64);
        assert_eq!(a.stats().probes_dropped, 3);
    }

    #[test]
    fn refused_senders_are_reported_once_each_and_bounded() {
        let (mut a, mut b, pa, pb) = pair();
        let mut buf = [0u8; 1500];
        // b shuts a out; a's next datagram is refused and reported with its address.
        b.disconnect(pa);
        a.send(Time(0), pb, addr(2), b"still here").unwrap();
        let t = a.poll_transmit(Time(0), &mut buf).unwrap();
        b.handle_datagram(Time(1), addr(1), &buf[..t.len]);
        assert_eq!(
            b.poll_refused(),
            Some(Refused {
                from: pa,
                addr: addr(1),
                reason: DropReason::Disconnected
            })
        );
        assert_eq!(b.poll_refused(), None);
        // A datagram addressed to an older incarnation of the receiver.
        let mut b2 = Endpoint::new(*b.config(), ProcessId::named("b", 2));
        for _ in 0..REFUSED_CAP + 3 {
            b2.handle_datagram(Time(2), addr(1), &buf[..t.len]);
        }
        let mut n = 0;
        while let Some(r) = b2.poll_refused() {
            assert_eq!((r.from, r.reason), (pa, DropReason::WrongReceiver));
            n += 1;
        }
        assert_eq!(n, REFUSED_CAP);
        // Unauthenticated junk is never reported.
        b2.handle_datagram(Time(3), addr(1), b"junk");
        assert_eq!(b2.poll_refused(), None);
    }
}

#[cfg(test)]
#[path = "endpoint_tests_mutants.rs"]
mod tests_mutants;
