//! A mio driver: one nonblocking UDP socket, one sans-IO [`DatagramCore`] (an
//! [`Endpoint`], or a core that owns one, such as the membership node core), optional
//! fault injection.
//!
//! The driver owns the socket (set up with socket2: buffer sizes from the config,
//! address reuse off), the core, and the clock (microseconds since a driver-owned
//! [`Instant`]: quanta's, which reads the invariant TSC — ~20 ns here against ~47 ns for
//! `std::time::Instant` through the vDSO, and a busy-poll and every flush read it on the
//! path from a datagram's arrival to the reply — and falls back to the OS's monotonic
//! clock where the TSC is not invariant; calibrated once per process, ~0.6 ms; only
//! intervals on this one clock matter to the endpoint, BENCHMARKS.md §1.1). Each [`Driver::drive`] call is one loop iteration: run due timers,
//! flush transmissions, wait for a datagram, a deadline, the caller's timeout or a
//! [`Waker`] (per [`IdleStrategy`]: parking in `mio::Poll`, after an optional busy-poll,
//! or in a blocking `recv_from`), then read the socket (the first datagram after a wait,
//! the rest at the start of the next call, so that replies leave first), and flush again.
//! Deliveries and events are then read with [`Driver::poll_delivery`] and
//! [`Driver::poll_event`].
//!
//! With a [`FaultLayer`], every outgoing datagram goes through it; delayed copies wait in
//! a preallocated [`DelayQueue`] and leave when due. Incoming datagrams over a link the
//! layer blocks (`is_blocked(from, local)`: a partition or isolation) are dropped too, so
//! a node can cut itself off from a peer in both directions on its own. Nothing allocates after
//! [`Driver::bind`].

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use quanta::Instant;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use crate::fault::{FaultDecision, FaultLayer};
use crate::queue::DelayQueue;
use crate::{
    earliest, Endpoint, ProcessId, SendError, Time, Transmit, TransportConfig, TransportEvent,
};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// Largest UDP payload; receive buffers this big never truncate a datagram.
const MAX_UDP: usize = 65_536;
/// Most keep-warm pings and warm-up calls one read of the socket takes before it
/// returns (they do not count as datagrams read): a flood of them cannot keep the
/// driver from its timers and transmissions.
const MAX_PINGS_PER_READ: usize = 64;
/// Most datagrams one drain of the socket reads before the driver runs its timers and
/// transmissions (the next call reads on): a flood, junk or not, cannot keep it from
/// them.
const MAX_DRAIN: usize = 256;

/// What the driver does when it has nothing to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Park in `mio::Poll` until a datagram, the next deadline, the timeout or a wake-up.
    #[default]
    Block,
    /// Busy-poll the socket for up to `spin_us` before parking: lower latency, one core
    /// burnt. A wake-up through the [`Waker`] ends the poll.
    Spin {
        /// Longest busy-poll per wait, µs.
        spin_us: u64,
    },
    /// Busy-poll the socket for up to `spin_us` before parking as [`Spin`](Self::Spin)
    /// does, but give the core away (`sched_yield`) between two reads: for hosts with
    /// fewer cores than busy threads (several nodes on one machine, a node beside its
    /// application). A pure spin there keeps the thread a datagram woke waiting for the
    /// spinner's time slice; a yielding one lets it run at the next read, and the
    /// threads of a protocol exchange (a view change: M-sub, acks, M-com) answer one
    /// another without parking, so without the wake-ups of an idle core. It costs CPU:
    /// every iteration that found nothing yields until `spin_us` has passed.
    SpinYield {
        /// Longest busy-poll per wait, µs (while the core expects a datagram, at least
        /// [`OPEN_ROUND_SPIN_US`]).
        spin_us: u64,
    },
    /// Park in a blocking `recv_from` on the socket itself, with a receive timeout
    /// (`SO_RCVTIMEO`) for the next deadline: one system call per wait and datagram
    /// instead of `epoll_wait` plus reads, so the lowest blocking latency. The
    /// [`Waker`] then wakes the driver with an empty datagram from a loopback socket
    /// of its own (see `docs/WIRE.md`).
    ///
    /// The kernel keeps receive timeouts to whole scheduler ticks (1–10 ms by
    /// `CONFIG_HZ`), so only waits longer than the endpoint's delayed-ack delay
    /// ([`TransportConfig::delayed_ack_us`]: retransmission timeouts, keepalives, the
    /// caller's timeouts) park in the read; they may end up to one tick late, or early
    /// (the timeout is rounded down to a power of two milliseconds so that the socket
    /// option rarely changes; the caller just drives again). Shorter waits (pending
    /// acknowledgements, and steady one-way traffic, which always has one) park in
    /// `mio::Poll` as with [`Block`](Self::Block), to the millisecond; switching between
    /// the two costs one system call.
    Recv,
    /// Park as [`Block`](Self::Block) does, except while a protocol round the core
    /// takes part in is open ([`DatagramCore::open_round`]): then poll as
    /// [`SpinYield`](Self::SpinYield) does, for what is left of [`OPEN_ROUND_SPIN_US`]
    /// since the driver first saw that round open. The threads of a view change
    /// answer one another without parking (the mgr collecting acknowledgements, the
    /// members awaiting the commit), and nothing polls otherwise: an idle node costs
    /// what a parked one does, and a round that stays open (its mgr crashed, a
    /// partition) costs at most [`OPEN_ROUND_SPIN_US`] of polling in all, not per wait;
    /// the next round (another name) gets a budget of its own. For a core that never
    /// opens a round (a bare [`Endpoint`]) this is `Block`.
    Adaptive,
}

/// What a [`Driver`] drives: a sans-IO state machine fed datagrams and timeouts at the
/// driver's clock, polled for the datagrams to write. The transport's [`Endpoint`] is one;
/// a core that owns an endpoint and reacts to its deliveries inside
/// [`handle_datagram`](DatagramCore::handle_datagram) (the membership node core) is
/// another, so that its replies leave in the same driver iteration as the datagram
/// that caused them.
///
/// The three hint methods let the driver skip work after a datagram; their defaults are
/// the conservative answers (always transmit, always run timers, never drained).
pub trait DatagramCore {
    /// Feeds one datagram received from `from` at `now`.
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]);
    /// Runs whatever is due at `now`.
    fn handle_timeout(&mut self, now: Time);
    /// The next datagram to write (into `buf`, which holds the `mtu` of
    /// [`transport_config`](DatagramCore::transport_config) bytes).
    fn poll_transmit(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit>;
    /// The earliest time [`handle_timeout`](DatagramCore::handle_timeout) or
    /// [`poll_transmit`](DatagramCore::poll_transmit) has work (`None`: no timer).
    fn poll_timeout(&self) -> Option<Time>;
    /// The transport settings in force (the driver sizes its buffers and its precise
    /// waits from them).
    fn transport_config(&self) -> &TransportConfig;
    /// A datagram handled since `poll_transmit` last returned `None` left something to
    /// send at once (`false` lets the driver skip `poll_transmit` after a datagram).
    fn transmit_hint(&self) -> bool {
        true
    }
    /// A datagram handled since the last call may have moved a timer earlier than
    /// [`poll_timeout`](DatagramCore::poll_timeout) said before it (`false` lets the
    /// driver skip `handle_timeout` after a datagram).
    fn take_timer_restarted(&mut self) -> bool {
        true
    }
    /// After `poll_transmit` returned a datagram: a call right after it would return
    /// `None` (lets the driver skip it).
    fn transmit_drained(&self) -> bool {
        false
    }
    /// The protocol round the core takes part in, if one is open, so that an answer is
    /// due soon; named so that a new round can be told from the last one (the name
    /// changes when a round closes and the next opens, even within one step). A
    /// yielding poller ([`IdleStrategy::SpinYield`]) polls for up to
    /// [`OPEN_ROUND_SPIN_US`] per wait rather than its own budget while a round is
    /// open; an [`IdleStrategy::Adaptive`] driver polls at all only then, for
    /// [`OPEN_ROUND_SPIN_US`] per round name.
    fn open_round(&self) -> Option<u64> {
        None
    }
    /// Where the driver's next keep-warm ping goes ([`DriverConfig::warm_every_us`]):
    /// a peer this core would exchange a protocol round with, taken in turn (`None`:
    /// no ping this time). Called once per ping, so a core may rotate over its peers.
    fn warm_target(&mut self) -> Option<SocketAddr> {
        None
    }
    /// A window `[from, until)` in which the core expects a protocol round to start
    /// (a node's detector is about to suspect a silent peer, and a view change
    /// follows): during it the driver sends a warm-up call to each of
    /// [`DatagramCore::warm_up_target`] every [`WARM_UP_EVERY_US`], and the peers it
    /// calls answer with a keep-warm ping, so that the round's first steps find the
    /// paths between them warm. Before `from` the driver wakes at `from` for it.
    fn warm_up(&self) -> Option<(Time, Time)> {
        None
    }
    /// The `i`-th peer to call in a warm-up tick (`None`: no more; at most
    /// [`MAX_WARM_UP_CALLS`] are asked for).
    fn warm_up_target(&self, _i: usize) -> Option<SocketAddr> {
        None
    }
    /// Whether a warm-up call from `from` is answered with a ping: only a peer's (a
    /// driver answers nobody else, so that it cannot be used to send datagrams to a
    /// third party).
    fn answers_warm_up(&self, _from: SocketAddr) -> bool {
        false
    }
}

/// Interval of warm-up calls during a [`DatagramCore::warm_up`] window, µs: a path
/// idle for 250 µs has lost little of its warmth on a shared VM, one idle for 1 ms
/// a third of it, and 10 ms nearly all (docs/bench/view_change_perf.md §21).
pub const WARM_UP_EVERY_US: u64 = 250;

/// Most peers called in one warm-up tick: the window's traffic stays a few dozen
/// tiny datagrams whatever the group's size (a large group's round warms itself as
/// it goes, §21).
pub const MAX_WARM_UP_CALLS: usize = 4;

/// How long an [`IdleStrategy::Adaptive`] driver polls after a warm-up call from a
/// peer, µs: two ticks, so that it polls through the caller's window and a little past
/// the suspicion at its end, when the view change's first datagram comes.
pub const WARM_UP_POLL_US: u64 = 2 * WARM_UP_EVERY_US;

/// Shortest time between two answers to warm-up calls, µs: whoever calls, a driver
/// answers at most this often.
pub const WARM_UP_ANSWER_GAP_US: u64 = 100;

/// A warm-up call on the wire: one byte (never a frame, which is longer); the
/// receiver answers with an empty datagram, a keep-warm ping (docs/WIRE.md).
pub const WARM_UP_CALL: [u8; 1] = [0x57];

/// How long a polling driver polls while its core has a round open
/// ([`DatagramCore::open_round`]), µs, if its own budget is shorter: longer than a
/// whole view change at N = 63 on a 2-core machine (about 2 ms), so that the members
/// that acknowledged first still poll when the commit comes (with the 200 µs budget
/// they parked before it from N = 33 on). [`IdleStrategy::SpinYield`] extends its poll
/// so: each wait polls at most this long (or until its deadline or a wake-up), and a
/// round that stays open (its mgr crashed, or a member holds an acknowledged proposal
/// through a partition) keeps the node polling, yielding the core, after every input
/// until the round is settled by a commit or a reconfiguration.
/// [`IdleStrategy::Adaptive`] polls this long in all from the moment the round opened.
pub const OPEN_ROUND_SPIN_US: u64 = 5_000;

impl DatagramCore for Endpoint {
    #[inline]
    fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
        Endpoint::handle_datagram(self, now, from, datagram)
    }
    #[inline]
    fn handle_timeout(&mut self, now: Time) {
        Endpoint::handle_timeout(self, now)
    }
    #[inline]
    fn poll_transmit(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
        Endpoint::poll_transmit(self, now, buf)
    }
    #[inline]
    fn poll_timeout(&self) -> Option<Time> {
        Endpoint::poll_timeout(self)
    }
    #[inline]
    fn transport_config(&self) -> &TransportConfig {
        self.config()
    }
    #[inline]
    fn transmit_hint(&self) -> bool {
        Endpoint::transmit_hint(self)
    }
    #[inline]
    fn take_timer_restarted(&mut self) -> bool {
        Endpoint::take_timer_restarted(self)
    }
    #[inline]
    fn transmit_drained(&self) -> bool {
        Endpoint::transmit_drained(self)
    }
}

/// Settings of a [`Driver`].
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Address to bind (port 0: any free port). Not used by [`Driver::from_socket`] and
    /// [`Driver::from_socket_core`], which take a socket bound already.
    pub bind: SocketAddr,
    /// This process.
    pub me: ProcessId,
    /// The endpoint's settings.
    pub transport: TransportConfig,
    /// `SO_RCVBUF`, bytes (the kernel may cap it).
    pub recv_buffer_bytes: usize,
    /// `SO_SNDBUF`, bytes (the kernel may cap it).
    pub send_buffer_bytes: usize,
    /// Idle behaviour.
    pub idle: IdleStrategy,
    /// Faults applied to outgoing datagrams (tests and chaos runs).
    pub faults: Option<FaultLayer>,
    /// Most datagrams held back by the fault layer at once.
    pub fault_queue: usize,
    /// Keep-warm pings: after this long without reading a datagram, µs, the driver
    /// sends an empty datagram to [`DatagramCore::warm_target`], and again every
    /// interval while nothing comes (`None`: never). The receiving driver counts it
    /// ([`DriverStats::pings_received`]) and goes back to waiting; no core sees it, and
    /// it is not counted as a datagram read or written. What it buys:
    /// on a host whose other tenants evict an idle process's cache lines within
    /// milliseconds, the first protocol step after a quiet spell runs its kernel and
    /// user paths from memory; a ping through the same paths every millisecond keeps
    /// them warm (a view change's commit about a fifth shorter at N = 5 on a shared
    /// 2-vCPU VM: docs/bench/view_change_perf.md §21). What it costs: one empty
    /// datagram per interval per quiet node, and the wake-ups of both ends (the
    /// receiver's includes a timer pass). With [`IdleStrategy::Recv`] an interval above
    /// the delayed-ack delay waits on the socket's receive timeout, which the kernel
    /// keeps to whole ticks: the pings then come up to a tick late.
    pub warm_every_us: Option<u64>,
}

impl DriverConfig {
    /// Defaults: 4 MiB socket buffers, [`IdleStrategy::Block`], no faults, no
    /// keep-warm pings.
    pub fn new(bind: SocketAddr, me: ProcessId) -> Self {
        DriverConfig {
            bind,
            me,
            transport: TransportConfig::default(),
            recv_buffer_bytes: 4 << 20,
            send_buffer_bytes: 4 << 20,
            idle: IdleStrategy::Block,
            faults: None,
            fault_queue: 8192,
            warm_every_us: None,
        }
    }
}

/// Counters of the I/O layer (the endpoint has its own [`Stats`](crate::Stats)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// `drive` calls.
    pub iterations: u64,
    /// Datagrams read from the socket.
    pub datagrams_read: u64,
    /// Datagrams written to the socket.
    pub datagrams_written: u64,
    /// Datagrams not written because the socket buffer was full (recovered by
    /// retransmission).
    pub send_would_block: u64,
    /// Other send errors.
    pub send_errors: u64,
    /// Receive errors other than "would block".
    pub recv_errors: u64,
    /// Datagrams dropped by the fault layer.
    pub fault_dropped: u64,
    /// Datagram copies held back by the fault layer.
    pub fault_delayed: u64,
    /// Held-back copies dropped because the delay queue was full.
    pub fault_overflow: u64,
    /// Wake-ups through the [`Waker`] (with [`IdleStrategy::Recv`]: wake datagrams read).
    pub wakeups: u64,
    /// Changes of the socket's receive timeout ([`IdleStrategy::Recv`] only).
    pub timeout_changes: u64,
    /// Time spent polling the socket before a datagram came or the thread parked
    /// ([`IdleStrategy::Spin`], [`IdleStrategy::SpinYield`], [`IdleStrategy::Adaptive`]),
    /// µs: what the idle strategy costs beyond parking (an upper bound on its CPU: a
    /// yielding poll gives the core away between reads).
    pub poll_us: u64,
    /// Keep-warm pings sent ([`DriverConfig::warm_every_us`]), warm-up calls
    /// ([`DatagramCore::warm_up`]) and the pings that answer calls.
    pub pings_sent: u64,
    /// Empty datagrams read from anywhere but the driver's own waker (other drivers'
    /// keep-warm pings and answers) and warm-up calls: never handed to the core.
    pub pings_received: u64,
}

/// Wakes a [`Driver`] blocked in [`Driver::drive`] from another thread; get one with
/// [`Driver::waker`].
///
/// With [`IdleStrategy::Block`], [`IdleStrategy::Adaptive`], [`IdleStrategy::Spin`] and
/// [`IdleStrategy::SpinYield`] it is a `mio::Waker`; with
/// [`IdleStrategy::Recv`] it sends an empty datagram to the driver's socket from a
/// loopback socket of its own, which the driver recognizes by its source address and
/// never hands to the endpoint. Wake-ups before the driver has returned from its wait
/// are coalesced into one datagram.
#[derive(Debug)]
pub struct Waker {
    kind: WakerKind,
}

#[derive(Debug)]
enum WakerKind {
    Poll {
        waker: mio::Waker,
        /// Woken and the driver has not returned since: ends a busy-poll, which does not
        /// look at the poll's events.
        rung: AtomicBool,
    },
    Datagram {
        /// Nonblocking, bound on loopback, connected to the driver's socket.
        socket: std::net::UdpSocket,
        /// A wake datagram was sent and the driver has not returned since.
        pending: AtomicBool,
    },
}

impl Waker {
    /// Ends the driver's current wait, or its next one if it is not waiting (the
    /// [`drive`](Driver::drive) call then returns without waiting for anything else).
    pub fn wake(&self) -> io::Result<()> {
        match &self.kind {
            WakerKind::Poll { waker, rung } => {
                rung.store(true, Ordering::Release);
                waker.wake()
            }
            WakerKind::Datagram { socket, pending } => {
                if pending.swap(true, Ordering::AcqRel) {
                    return Ok(());
                }
                loop {
                    match socket.send(&[]) {
                        Ok(_) => return Ok(()),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            pending.store(false, Ordering::Release);
                            return Err(e);
                        }
                    }
                }
            }
        }
    }

    /// Called by the driver before it returns from `drive`: wake-ups from now on send a
    /// datagram again. Acquires what the wakers did before they woke it.
    fn rearm(&self) {
        let (WakerKind::Datagram { pending: flag, .. } | WakerKind::Poll { rung: flag, .. }) =
            &self.kind;
        // Only the driver clears the flag, so a load first spares the locked write when
        // nobody woke it (every datagram-driven return).
        if flag.load(Ordering::Acquire) {
            flag.store(false, Ordering::Release);
        }
    }

    /// Woken since the driver last returned (a busy-poll stops for it).
    fn rung(&self) -> bool {
        let (WakerKind::Datagram { pending: flag, .. } | WakerKind::Poll { rung: flag, .. }) =
            &self.kind;
        flag.load(Ordering::Acquire)
    }

    /// The source address of wake datagrams (`None` for a `mio::Waker`).
    fn datagram_source(&self) -> io::Result<Option<SocketAddr>> {
        match &self.kind {
            WakerKind::Poll { .. } => Ok(None),
            WakerKind::Datagram { socket, .. } => socket.local_addr().map(Some),
        }
    }
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct Driver<C: DatagramCore = Endpoint> {
    poll: Poll,
    events: Events,
    socket: UdpSocket,
    waker: Arc<Waker>,
    /// Where wake datagrams come from ([`IdleStrategy::Recv`]).
    wake_from: Option<SocketAddr>,
    /// The socket's current receive timeout ([`IdleStrategy::Recv`]; `None`: none).
    recv_timeout: Option<Duration>,
    /// The socket is in nonblocking mode (always, but with [`IdleStrategy::Recv`] while
    /// it parks in the poll).
    nonblocking: bool,
    /// Waits up to this long park in the poll even with [`IdleStrategy::Recv`].
    precise_wait: Duration,
    local: SocketAddr,
    core: C,
    epoch: Instant,
    idle: IdleStrategy,
    faults: Option<FaultLayer>,
    delayed: DelayQueue,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    /// The destination of the last datagram written, as converted for the system call.
    dst: DstCache,
    stats: DriverStats,
    /// The last read stopped after one datagram, before the socket would block: more may
    /// be queued, and no readiness event will say so (mio is edge-triggered).
    maybe_readable: bool,
    /// When the last datagram of this `drive` call was read, if any.
    read_at: Option<Time>,
    /// The driver's last clock reading (its flush or its last datagram).
    last_clock: Time,
    /// No endpoint timer (retransmission, silence) can fire before this time, so
    /// `handle_timeout` has nothing to do until then ([`Time::ZERO`]: unknown). Set from
    /// the deadline computed before a wait; see [`Driver::finish`] for why it stays valid.
    timers_from: Time,
    /// The core's open round as the last wait saw it, and when the driver first saw
    /// it ([`IdleStrategy::Adaptive`]: the round's poll budget runs from then).
    round_open: Option<(u64, Time)>,
    /// [`DriverConfig::warm_every_us`].
    warm_every_us: Option<u64>,
    /// When the next keep-warm ping is due (pushed back by every datagram read).
    warm_at: Time,
    /// A datagram (a ping included) was read since the last `drive` call began.
    heard: bool,
    /// When the next warm-up tick is due in a [`DatagramCore::warm_up`] window.
    warm_up_at: Time,
    /// When this driver last answered a warm-up call.
    answered_at: Option<Time>,
    /// Until when an [`IdleStrategy::Adaptive`] driver polls after a warm-up call it
    /// answers: [`WARM_UP_POLL_US`] after the last.
    called_until: Time,
    /// The last wait's time lay in the core's warm-up window: an
    /// [`IdleStrategy::Adaptive`] driver polls through it (its ticks and the
    /// suspicion at its end come to the microsecond, not the millisecond of a
    /// parked wait).
    warming_up: bool,
}

/// `config` passes [`TransportConfig::validate`], or the error as an
/// [`io::ErrorKind::InvalidInput`] error.
fn valid(config: &TransportConfig) -> io::Result<()> {
    config
        .validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

impl Driver<Endpoint> {
    /// Checks `config.transport` ([`TransportConfig::validate`]), binds the socket and
    /// builds the endpoint; everything is allocated here. An invalid transport config
    /// is an [`io::ErrorKind::InvalidInput`] error whose inner error is the
    /// [`TransportConfigError`](crate::TransportConfigError) (nothing is bound then).
    pub fn bind(config: DriverConfig) -> io::Result<Driver> {
        let (transport, me) = (config.transport, config.me);
        valid(&transport)?;
        Driver::bind_core(config, |_| Endpoint::new(transport, me))
    }

    /// Like [`Driver::bind`] on a socket the caller bound already (see
    /// [`Driver::from_socket_core`]): `config.bind` is not used.
    pub fn from_socket(config: DriverConfig, socket: std::net::UdpSocket) -> io::Result<Driver> {
        let (transport, me) = (config.transport, config.me);
        valid(&transport)?;
        Driver::from_socket_core(config, socket, |_| Endpoint::new(transport, me))
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.core
    }

    /// The endpoint, for anything the driver does not wrap (disconnect, stats, ...).
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        self.core_mut()
    }

    /// Queues a message (see [`Endpoint::send`]); it leaves at the next
    /// [`drive`](Self::drive) or [`flush`](Self::flush).
    ///
    /// The endpoint is given the driver's last clock reading rather than a fresh one:
    /// it uses the time of a send only to start the timers of a channel it opens, and
    /// the flush that transmits the message (which reads the clock) restarts them.
    pub fn send(&mut self, to: ProcessId, addr: SocketAddr, msg: &[u8]) -> Result<(), SendError> {
        self.core.send(self.last_clock, to, addr, msg)
    }

    /// Queues a probe to `addr` (see [`Endpoint::send_probe`]).
    pub fn send_probe(&mut self, addr: SocketAddr, payload: &[u8]) -> Result<(), SendError> {
        let now = self.now();
        self.core.send_probe(now, addr, payload)
    }

    /// The next received probe (see [`Endpoint::poll_probe`]).
    pub fn poll_probe(&mut self, buf: &mut [u8]) -> Option<(ProcessId, SocketAddr, usize)> {
        self.core.poll_probe(buf)
    }

    /// Replaces the endpoint with a fresh one for process `me` (a new incarnation of
    /// this node, e.g. rejoining after exclusion), keeping the socket, the waker, the
    /// fault layer and the clock. Every channel of the old incarnation is dropped.
    pub fn reset_endpoint(&mut self, me: ProcessId) {
        let cfg = *self.core.config();
        self.core = Endpoint::new(cfg, me);
        self.timers_from = Time::ZERO;
    }

    /// The next delivered message (see [`Endpoint::poll_delivery`]).
    pub fn poll_delivery(&mut self, buf: &mut [u8]) -> Option<(ProcessId, usize)> {
        self.core.poll_delivery(buf)
    }

    /// The next transport event.
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.core.poll_event()
    }
}

impl<C: DatagramCore> Driver<C> {
    /// Binds the socket, then builds the core with `make_core(bound address)` (the
    /// actual port when `config.bind` asked for any); everything is allocated here.
    /// `config.me` and `config.transport` are not used: the core has its own.
    pub fn bind_core(
        config: DriverConfig,
        make_core: impl FnOnce(SocketAddr) -> C,
    ) -> io::Result<Driver<C>> {
        let socket = Socket::new(
            Domain::for_address(config.bind),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        socket.set_reuse_address(false)?;
        Self::set_up(&socket, &config)?;
        socket.bind(&config.bind.into())?;
        Self::on_bound(config, socket.into(), make_core)
    }

    /// Like [`Driver::bind_core`] on a UDP socket the caller bound already (to any
    /// address, port 0 included), instead of binding `config.bind`, which is not used.
    /// The driver sets the socket up as its own (buffer sizes, blocking mode) and owns
    /// it from now on.
    ///
    /// This is how tests get ports without a race: bind every socket to port 0 first,
    /// learn the addresses (to pass as seeds), then hand each socket to its driver.
    /// Binding, dropping and binding the port again lets another process take it in
    /// between. An error if the socket is not bound.
    pub fn from_socket_core(
        config: DriverConfig,
        socket: std::net::UdpSocket,
        make_core: impl FnOnce(SocketAddr) -> C,
    ) -> io::Result<Driver<C>> {
        if socket.local_addr()?.port() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the socket handed to the driver is not bound",
            ));
        }
        let socket = Socket::from(socket);
        Self::set_up(&socket, &config)?;
        Self::on_bound(config, socket.into(), make_core)
    }

    /// The socket options the driver needs: buffer sizes, blocking mode.
    fn set_up(socket: &Socket, config: &DriverConfig) -> io::Result<()> {
        socket.set_recv_buffer_size(config.recv_buffer_bytes)?;
        socket.set_send_buffer_size(config.send_buffer_bytes)?;
        // `Recv` parks in a blocking read; everything else is nonblocking (sends pass
        // `MSG_DONTWAIT` in every mode).
        socket.set_nonblocking(config.idle != IdleStrategy::Recv)
    }

    /// The rest of [`Driver::bind_core`] once the socket is bound and set up: the poll,
    /// the waker, the core and every buffer.
    fn on_bound(
        config: DriverConfig,
        socket: std::net::UdpSocket,
        make_core: impl FnOnce(SocketAddr) -> C,
    ) -> io::Result<Driver<C>> {
        let mut socket = UdpSocket::from_std(socket);
        let local = socket.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        let kind = if config.idle == IdleStrategy::Recv {
            let target = SocketAddr::new(loopback_for(local.ip()), local.port());
            let from = std::net::UdpSocket::bind(SocketAddr::new(target.ip(), 0))?;
            from.connect(target)?;
            from.set_nonblocking(true)?;
            WakerKind::Datagram {
                socket: from,
                pending: AtomicBool::new(false),
            }
        } else {
            WakerKind::Poll {
                waker: mio::Waker::new(poll.registry(), WAKER)?,
                rung: AtomicBool::new(false),
            }
        };
        let waker = Arc::new(Waker { kind });
        let wake_from = waker.datagram_source()?;
        let core = make_core(local);
        let mtu = core.transport_config().mtu;
        let queue = if config.faults.is_some() {
            config.fault_queue
        } else {
            0
        };
        Ok(Driver {
            poll,
            events: Events::with_capacity(64),
            socket,
            waker,
            wake_from,
            recv_timeout: None,
            nonblocking: config.idle != IdleStrategy::Recv,
            precise_wait: Duration::from_micros(core.transport_config().delayed_ack_us),
            local,
            core,
            epoch: Instant::now(),
            idle: config.idle,
            faults: config.faults,
            delayed: DelayQueue::new(queue, mtu),
            rx_buf: vec![0u8; MAX_UDP],
            tx_buf: vec![0u8; mtu],
            dst: DstCache::default(),
            stats: DriverStats::default(),
            maybe_readable: false,
            read_at: None,
            last_clock: Time::ZERO,
            timers_from: Time::ZERO,
            round_open: None,
            warm_every_us: config.warm_every_us.filter(|&us| us > 0),
            warm_at: Time::ZERO,
            heard: false,
            warm_up_at: Time::ZERO,
            answered_at: None,
            called_until: Time::ZERO,
            warming_up: false,
        })
    }

    /// The bound address (with the actual port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The endpoint's clock: microseconds since the driver was bound.
    pub fn now(&self) -> Time {
        self.time_at(Instant::now())
    }

    /// `t` on the endpoint's clock (64-bit arithmetic: no `u128` as with `as_micros`).
    #[inline]
    fn time_at(&self, t: Instant) -> Time {
        let d = t.saturating_duration_since(self.epoch);
        Time(d.as_secs() * 1_000_000 + u64::from(d.subsec_micros()))
    }

    /// The core.
    pub fn core(&self) -> &C {
        &self.core
    }

    /// The core, for commands and anything the driver does not wrap. Whatever the
    /// caller does, the next flush runs the timers.
    pub fn core_mut(&mut self) -> &mut C {
        self.timers_from = Time::ZERO;
        &mut self.core
    }

    /// The core, for calls that move none of its deadlines earlier (polling its
    /// events, reading counters): unlike [`core_mut`](Self::core_mut), the driver keeps
    /// skipping timers it knows are not due. After calls that may move one after all,
    /// [`retime`](Self::retime).
    pub fn core_polled(&mut self) -> &mut C {
        &mut self.core
    }

    /// The core and the fault layer at once (a fault command names peers the core
    /// knows).
    pub fn core_and_faults(&mut self) -> (&C, Option<&mut FaultLayer>) {
        (&self.core, self.faults.as_mut())
    }

    /// `t` (a time on this driver's clock) as an [`Instant`].
    pub fn instant_at(&self, t: Time) -> Instant {
        self.epoch + Duration::from_micros(t.0)
    }

    /// The driver's last clock reading: when the last datagram was read, or the last
    /// flush ran. After [`drive`](Self::drive) returns, the time of the input that
    /// ended its wait.
    pub fn last_clock(&self) -> Time {
        self.last_clock
    }

    /// The fault layer, to change links and partitions while running.
    pub fn faults_mut(&mut self) -> Option<&mut FaultLayer> {
        self.faults.as_mut()
    }

    /// I/O counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// Datagrams written so far ([`DriverStats::datagrams_written`], without copying
    /// the whole statistics): whether a [`drive`](Self::drive) call sent anything.
    pub fn datagrams_written(&self) -> u64 {
        self.stats.datagrams_written
    }

    /// A handle another thread can use to interrupt a blocked [`drive`](Self::drive)
    /// (`waker.wake()`; see [`Waker`]).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// After calls through [`core_polled`](Self::core_polled) that did move a deadline
    /// earlier after all (work a core finishes in its event poll may start a timer):
    /// if the core says a timer moved ([`DatagramCore::take_timer_restarted`]), its
    /// earliest deadline bounds the timers the next flush skips, so a deadline that is
    /// due runs at the next call, not one loop iteration later.
    pub fn retime(&mut self) {
        if self.timers_from == Time::ZERO || !self.core.take_timer_restarted() {
            // The next flush runs the timers anyway, or none moved.
            return;
        }
        let next = earliest(self.core.poll_timeout(), self.delayed.next_due());
        self.timers_from = self.timers_from.min(next.unwrap_or(Time::NEVER));
    }

    /// Runs due timers and writes every datagram due now to the socket.
    pub fn flush(&mut self) {
        self.flush_now();
        // What it sent may have started timers.
        self.timers_from = Time::ZERO;
    }

    /// [`flush`](Self::flush), returning the time it ran at. Skips `handle_timeout`
    /// before `timers_from`.
    fn flush_now(&mut self) -> Time {
        let now = self.now();
        self.last_clock = now;
        if now >= self.timers_from {
            self.core.handle_timeout(now);
        }
        self.transmit(now);
        now
    }

    /// One loop iteration: timers, transmissions, a wait of at most `timeout` (`None`:
    /// until something happens), the socket read, timers and transmissions again.
    ///
    /// After a wait, only the first datagram is read before returning, so that a reply
    /// the caller queues to it leaves (at the start of the next call) before the driver
    /// reads again. With a nonblocking socket (`Block`, `Adaptive`, `Spin`, `SpinYield`) the next call reads the
    /// rest (mio is edge-triggered), and does not wait if there was any; with
    /// [`IdleStrategy::Recv`] parked in a blocking read it needs no such extra read: the
    /// read is the wait, and returns at once if a datagram is queued.
    pub fn drive(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stats.iterations += 1;
        // The flush takes microseconds, the wait is kept to the millisecond at best: its
        // clock reading serves for the wait too (reading the clock is not free either).
        let now = self.flush_now();
        if self.maybe_readable && self.receive(MAX_DRAIN, None) > 0 {
            // Nothing is due before `timers_from` (flush_now just ran what was).
            self.finish((self.timers_from > Time::ZERO).then_some(self.timers_from));
            return Ok(());
        }
        if self.maybe_readable {
            // The drain stopped at a flood of pings with more unread: no edge-triggered
            // wait now; the timers and transmissions run, the next call reads on.
            self.finish(None);
            return Ok(());
        }
        let deadline = earliest(self.core.poll_timeout(), self.delayed.next_due());
        self.timers_from = deadline.unwrap_or(Time::NEVER);
        let warm = self.warm(now);
        let until_deadline =
            earliest(deadline, warm).map(|d| Duration::from_micros(d.micros_since(now)));
        let wait = match (until_deadline, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match self.idle {
            IdleStrategy::Recv => self.park_in_recv(wait)?,
            IdleStrategy::Block => self.park_in_poll(wait)?,
            IdleStrategy::Adaptive => {
                match self.open_round_budget(now).or(self.warm_up_poll(now)) {
                    Some(spin_us) => self.poll_then_park(spin_us, true, wait)?,
                    None => self.park_in_poll(wait)?,
                }
            }
            IdleStrategy::Spin { spin_us } => self.poll_then_park(spin_us, false, wait)?,
            IdleStrategy::SpinYield { spin_us } => {
                let spin_us = if self.core.open_round().is_some() {
                    spin_us.max(OPEN_ROUND_SPIN_US)
                } else {
                    spin_us
                };
                self.poll_then_park(spin_us, true, wait)?;
            }
        }
        self.finish(deadline);
        Ok(())
    }

    /// Keep-warm pings ([`DriverConfig::warm_every_us`]) and warm-up calls
    /// ([`DatagramCore::warm_up`]) before a wait at `now`: sends what is due, and
    /// returns when the next is (`None`: neither is on, or no one to ping or call). A
    /// datagram read since the last call starts the pings' interval again.
    fn warm(&mut self, now: Time) -> Option<Time> {
        let heard = std::mem::take(&mut self.heard);
        earliest(self.warm_up_calls(now), self.keep_warm(now, heard))
    }

    /// [`DriverConfig::warm_every_us`]: `heard` says whether a datagram was read since
    /// the last call.
    fn keep_warm(&mut self, now: Time, heard: bool) -> Option<Time> {
        let every = self.warm_every_us?;
        if heard || self.warm_at == Time::ZERO {
            self.warm_at = now + every;
        } else if self.warm_at <= now {
            // No one to ping (not a member, alone): no wake-ups for it either; the
            // next call asks again.
            let to = self.core.warm_target()?;
            self.ping(to, &[]);
            self.warm_at = now + every;
        }
        Some(self.warm_at)
    }

    /// [`DatagramCore::warm_up`]: in the core's window, calls its targets once per
    /// [`WARM_UP_EVERY_US`]; returns when the driver should wake for the next tick (or
    /// for the window's start).
    fn warm_up_calls(&mut self, now: Time) -> Option<Time> {
        self.warming_up = false;
        let (from, until) = self.core.warm_up()?;
        if now < from {
            return Some(from);
        }
        // No one to call (the silent member is the only other): no window.
        if now >= until || self.core.warm_up_target(0).is_none() {
            return None;
        }
        self.warming_up = true;
        if self.warm_up_at <= now {
            for i in 0..MAX_WARM_UP_CALLS {
                let Some(to) = self.core.warm_up_target(i) else {
                    break;
                };
                self.ping(to, &WARM_UP_CALL);
            }
            self.warm_up_at = now + WARM_UP_EVERY_US;
        }
        Some(self.warm_up_at.min(until))
    }

    /// A warm-up call read from `from`: if the core knows the caller, answered with a
    /// ping (unless the last answer is less than [`WARM_UP_ANSWER_GAP_US`] old), and
    /// an adaptive driver polls for [`WARM_UP_POLL_US`].
    fn answer_warm_up(&mut self, from: SocketAddr) {
        if !self.core.answers_warm_up(from) {
            return;
        }
        let now = self.now();
        self.called_until = now + WARM_UP_POLL_US;
        if self
            .answered_at
            .is_some_and(|t| now.micros_since(t) < WARM_UP_ANSWER_GAP_US)
        {
            return;
        }
        self.answered_at = Some(now);
        self.ping(from, &[]);
    }

    /// [`IdleStrategy::Adaptive`] outside a round: how long to poll before this wait
    /// (µs), if at all: to the next tick in the core's own warm-up window, and
    /// through [`WARM_UP_POLL_US`] after a call it answered. A view change is
    /// expected within a few milliseconds; its first datagrams then find the nodes
    /// polling, as the rest of it does (`open_round`).
    fn warm_up_poll(&self, now: Time) -> Option<u64> {
        let own = if self.warming_up { WARM_UP_EVERY_US } else { 0 };
        let us = own.max(self.called_until.micros_since(now));
        (us > 0).then_some(us)
    }

    /// Sends a keep-warm ping (`what` empty) or a warm-up call ([`WARM_UP_CALL`]) to
    /// `to`, unless the fault layer blocks the link. Not a datagram written for the
    /// core (`datagrams_written`): the runtime reads that counter as "this step sent
    /// something".
    fn ping(&mut self, to: SocketAddr, what: &[u8]) {
        if self
            .faults
            .as_ref()
            .is_some_and(|f| f.is_blocked(self.local, to))
        {
            self.stats.fault_dropped += 1;
            return;
        }
        let socket = SockRef::from(&self.socket);
        // Converted here: the cache keeps the protocol's last destination.
        match socket.send_to_with_flags(what, &SockAddr::from(to), libc::MSG_DONTWAIT) {
            Ok(_) => self.stats.pings_sent += 1,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.stats.send_would_block += 1,
            Err(_) => self.stats.send_errors += 1,
        }
    }

    /// [`IdleStrategy::Adaptive`]: how long to poll before this wait (µs), if at all:
    /// while the core has a round open, what is left of [`OPEN_ROUND_SPIN_US`] since
    /// the driver first saw that round (at `now` if the last wait saw no round or
    /// another one).
    fn open_round_budget(&mut self, now: Time) -> Option<u64> {
        let Some(round) = self.core.open_round() else {
            self.round_open = None;
            return None;
        };
        let since = match self.round_open {
            Some((r, since)) if r == round => since,
            _ => {
                self.round_open = Some((round, now));
                now
            }
        };
        debug_assert!(
            since <= now,
            "the round cannot open after the driver's clock"
        );
        let left = OPEN_ROUND_SPIN_US.saturating_sub(now.micros_since(since));
        (left > 0).then_some(left)
    }

    /// Polls the socket for up to `spin_us` (yielding the core between reads when
    /// `yielding`), then parks in the poll for the rest of `wait` if nothing came.
    fn poll_then_park(
        &mut self,
        spin_us: u64,
        yielding: bool,
        mut wait: Option<Duration>,
    ) -> io::Result<()> {
        let spin = Duration::from_micros(spin_us).min(wait.unwrap_or(Duration::MAX));
        let start = Instant::now();
        // Each iteration's clock reading, taken after a read found nothing (and after
        // the yield, which may last another thread's step), also stamps the arrival of
        // a datagram the next read gets (it arrived after the reading or, at worst,
        // during the yield): no clock reading between that read and the reply, and the
        // stamp is never before the arrival (RTT samples and timers as before, within
        // an iteration). A wake-up ends the poll: the park after it returns at once.
        let mut polled_at = start;
        let ready = loop {
            if self.receive(1, Some(polled_at)) > 0 {
                break true;
            }
            polled_at = Instant::now();
            if polled_at.saturating_duration_since(start) >= spin || self.waker.rung() {
                break false;
            }
            if yielding {
                std::thread::yield_now();
                polled_at = Instant::now();
            } else {
                std::hint::spin_loop();
            }
        };
        let spun = polled_at.saturating_duration_since(start);
        self.stats.poll_us += spun.as_micros() as u64;
        if !ready && !self.maybe_readable {
            // The spin is part of the wait, not added to it.
            wait = wait.map(|w| w.saturating_sub(spun));
            self.park_in_poll(wait)?;
        }
        Ok(())
    }

    /// The end of a `drive` call: timers and transmissions, then wake-ups send again.
    ///
    /// `deadline`: the earliest deadline before the wait (all of the endpoint's and the
    /// delay queue's), if known. When a datagram ended the wait before it, nothing else
    /// can be due: timers a datagram starts lie in the future (the retransmission
    /// timeout is at least 1 µs), so `handle_timeout` is skipped; `timers_from` stays
    /// valid unless the datagram started a retransmission timer or moved one earlier
    /// ([`Endpoint::take_timer_restarted`]; any other timer it changes only moves
    /// later). The transmissions are skipped too unless the datagram left something
    /// to send at once ([`Endpoint::transmit_hint`]).
    fn finish(&mut self, deadline: Option<Time>) {
        // Right after a datagram, its arrival time is still now.
        let (now, read) = match self.read_at.take() {
            Some(t) => (t, true),
            None => (self.now(), false),
        };
        self.last_clock = now;
        if read && deadline.is_some_and(|d| now < d) {
            let restarted = self.core.take_timer_restarted();
            let sent = self.core.transmit_hint() && self.transmit(now);
            if restarted || sent {
                // The hints are conservative (a core that reacts to every delivery
                // says "restarted" after each): the earliest deadline as it stands now
                // says whether the next flush has timers to run. Asking costs a scan of
                // the deadlines; a needless `handle_timeout` costs a whole pass of the
                // core (every timer and the glue after it) on the reply's path.
                let next = earliest(self.core.poll_timeout(), self.delayed.next_due());
                self.timers_from = self.timers_from.min(next.unwrap_or(Time::NEVER));
            }
        } else {
            self.core.take_timer_restarted();
            self.core.handle_timeout(now);
            self.transmit(now);
            self.timers_from = Time::ZERO;
        }
        self.waker.rearm();
    }

    /// Waits in `mio::Poll` (nothing may be left unread), then reads one datagram if the
    /// socket became readable.
    fn park_in_poll(&mut self, wait: Option<Duration>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let (mut readable, mut woken) = (false, false);
        for e in self.events.iter() {
            readable |= e.token() == SOCKET;
            woken |= e.token() == WAKER;
        }
        if woken {
            self.stats.wakeups += 1;
        }
        // Nothing was left unread before the wait, so no event means no datagram.
        if readable {
            self.receive(1, None);
        }
        Ok(())
    }

    /// Waits in a blocking read of one datagram (a wake datagram included) for at most
    /// about `wait`, or in the poll if `wait` is short (see [`IdleStrategy::Recv`]).
    fn park_in_recv(&mut self, wait: Option<Duration>) -> io::Result<()> {
        if wait.is_some_and(|w| w <= self.precise_wait) {
            if !self.nonblocking {
                self.socket_ref().set_nonblocking(true)?;
                self.nonblocking = true;
                // Readiness was not tracked while reads blocked: drain before the poll.
                // A drain cut short (a flood) leaves the rest for the next call: no
                // edge-triggered wait with datagrams unread.
                if self.receive(MAX_DRAIN, None) > 0 || self.maybe_readable {
                    return Ok(());
                }
            }
            return self.park_in_poll(wait);
        }
        if self.nonblocking {
            // Nothing is left unread (the poll drains), and a blocking read returns at
            // once if something arrived since.
            self.socket_ref().set_nonblocking(false)?;
            self.nonblocking = false;
            self.maybe_readable = false;
        }
        let timeout = wait.map(recv_timeout);
        if timeout != self.recv_timeout {
            self.socket_ref().set_read_timeout(timeout)?;
            self.recv_timeout = timeout;
            self.stats.timeout_changes += 1;
        }
        self.receive(1, None);
        Ok(())
    }

    fn socket_ref(&self) -> SockRef<'_> {
        SockRef::from(&self.socket)
    }

    /// Reads up to `limit` datagrams (wake datagrams included), stopping early when the
    /// socket would block (with [`IdleStrategy::Recv`]: when its receive timeout
    /// expires); returns how many were read. Records whether more may be waiting.
    ///
    /// `polled_at`: a clock reading taken after the socket was last found empty (the
    /// busy-poll's), which then stamps the first datagram read instead of a reading
    /// after the read; the others are stamped after their read.
    fn receive(&mut self, limit: usize, mut polled_at: Option<Instant>) -> usize {
        let (mut n, mut wakes, mut pings) = (0, 0, 0);
        self.maybe_readable = false;
        while n < limit {
            if pings >= MAX_PINGS_PER_READ && self.nonblocking {
                // A flood of pings (which do not count toward `limit`) must not keep
                // this loop from the timers and transmissions: the rest is read by
                // the next call.
                self.maybe_readable = true;
                break;
            }
            match self.socket.recv_from(&mut self.rx_buf) {
                Ok((len, from)) => {
                    n += 1;
                    if len == 0 && Some(from) == self.wake_from {
                        wakes += 1;
                        continue;
                    }
                    // A partition blocks both ways: drop what arrives over a blocked link.
                    if let Some(f) = self.faults.as_ref() {
                        if f.is_blocked(from, self.local) {
                            self.stats.fault_dropped += 1;
                            continue;
                        }
                    }
                    self.heard = true;
                    // An empty datagram is never a frame: another driver's keep-warm ping;
                    // nor is a single byte: a warm-up call, which asks for a ping back.
                    // Neither counts as a read (a poll goes on, a drain reads past it)
                    // but where a read blocks: there it ends the wait.
                    if len <= WARM_UP_CALL.len() {
                        self.stats.pings_received += 1;
                        pings += 1;
                        if len == WARM_UP_CALL.len() {
                            self.answer_warm_up(from);
                        }
                        if self.nonblocking {
                            n -= 1;
                        }
                        continue;
                    }
                    // Otherwise read the clock after the read: it may have blocked.
                    let now = match polled_at.take() {
                        Some(t) => self.time_at(t),
                        None => self.now(),
                    };
                    self.read_at = Some(now);
                    self.core.handle_datagram(now, from, &self.rx_buf[..len]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.stats.recv_errors += 1;
                    break;
                }
            }
        }
        // Before parking in the poll (edge-triggered) the socket must be drained; `Spin`
        // drains too, which batches reads under load (skipping it did not measurably
        // shorten its round trip). A blocking read needs no drain.
        if n == limit && self.nonblocking {
            self.maybe_readable = true;
        }
        self.stats.datagrams_read += (n - wakes) as u64;
        self.stats.wakeups += wakes as u64;
        n
    }

    /// Writes held-back datagrams now due, then everything the endpoint has; returns
    /// whether the endpoint had anything.
    fn transmit(&mut self, now: Time) -> bool {
        let mut any = false;
        // Held-back datagrams exist only with a fault layer: skip the call otherwise.
        while !self.delayed.is_empty() {
            let Some(d) = self.delayed.pop_due(now, &mut self.tx_buf) else {
                break;
            };
            write(
                &self.socket,
                &mut self.stats,
                &mut self.dst,
                d.to,
                &self.tx_buf[..d.len],
            );
        }
        while let Some(t) = self.core.poll_transmit(now, &mut self.tx_buf) {
            any = true;
            let bytes = &self.tx_buf[..t.len];
            if let Some(faults) = self.faults.as_mut() {
                let decision = faults.on_send(now, self.local, t.dst, t.len);
                if decision == FaultDecision::Drop {
                    self.stats.fault_dropped += 1;
                }
                for at in decision.deliveries().into_iter().flatten() {
                    if at <= now {
                        write(&self.socket, &mut self.stats, &mut self.dst, t.dst, bytes);
                    } else if self.delayed.push(at, self.local, t.dst, bytes) {
                        self.stats.fault_delayed += 1;
                    } else {
                        self.stats.fault_overflow += 1;
                    }
                }
            } else {
                write(&self.socket, &mut self.stats, &mut self.dst, t.dst, bytes);
            }
            // Nothing else is due: skip the call that would say so.
            if self.core.transmit_drained() {
                break;
            }
        }
        any
    }
}

/// The loopback address of `ip`'s family if `ip` is unspecified, else `ip`: where a
/// socket bound to `ip` can be reached from this host.
fn loopback_for(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(a) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        a => a,
    }
}

/// The receive timeout for a wait of `wait` (more than zero): a power of two
/// milliseconds, at most `wait` (but at least 1 ms), so that it changes rarely while
/// deadlines move by microseconds. The kernel rounds it up to whole scheduler ticks.
fn recv_timeout(wait: Duration) -> Duration {
    let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(1 << ms.ilog2())
}

/// The last destination written to, with its address in the form the system call takes
/// (`SockAddr::from` fills a whole `sockaddr_storage`): most datagrams go where the
/// previous one went, so the conversion is done once per change of destination.
#[derive(Default)]
struct DstCache(Option<(SocketAddr, SockAddr)>);

impl std::fmt::Debug for DstCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DstCache")
            .field(&self.0.as_ref().map(|(a, _)| a))
            .finish()
    }
}

impl DstCache {
    /// `dst` converted, converting it only if it is not the last one.
    #[inline]
    fn get(&mut self, dst: SocketAddr) -> &SockAddr {
        let (addr, raw) = self.0.get_or_insert_with(|| (dst, SockAddr::from(dst)));
        if *addr != dst {
            *addr = dst;
            *raw = SockAddr::from(dst);
        }
        raw
    }
}

/// Writes one datagram without ever blocking (`MSG_DONTWAIT`: the socket itself blocks
/// with [`IdleStrategy::Recv`]).
fn write(
    socket: &UdpSocket,
    stats: &mut DriverStats,
    cache: &mut DstCache,
    dst: SocketAddr,
    bytes: &[u8],
) {
    let dst = cache.get(dst);
    let socket = SockRef::from(socket);
    for _ in 0..2 {
        match socket.send_to_with_flags(bytes, dst, libc::MSG_DONTWAIT) {
            Ok(_) => {
                stats.datagrams_written += 1;
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                stats.send_would_block += 1;
                return;
            }
            Err(_) => {
                stats.send_errors += 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_timeouts_are_powers_of_two_milliseconds_within_the_wait() {
        let ms = Duration::from_millis;
        assert_eq!(recv_timeout(Duration::from_micros(1)), ms(1));
        assert_eq!(recv_timeout(Duration::from_micros(1_999)), ms(1));
        assert_eq!(recv_timeout(ms(2)), ms(2));
        assert_eq!(recv_timeout(ms(3)), ms(2));
        assert_eq!(recv_timeout(ms(20)), ms(16));
        assert_eq!(recv_timeout(ms(100)), ms(64));
        assert!(recv_timeout(Duration::MAX) > Duration::from_secs(1 << 40));
    }

    /// An endpoint whose protocol round is `round` (`None`: none open).
    struct Round {
        ep: Endpoint,
        round: Option<u64>,
    }

    impl DatagramCore for Round {
        fn handle_datagram(&mut self, now: Time, from: SocketAddr, datagram: &[u8]) {
            self.ep.handle_datagram(now, from, datagram);
        }
        fn handle_timeout(&mut self, now: Time) {
            self.ep.handle_timeout(now);
        }
        fn poll_transmit(&mut self, now: Time, buf: &mut [u8]) -> Option<Transmit> {
            self.ep.poll_transmit(now, buf)
        }
        fn poll_timeout(&self) -> Option<Time> {
            self.ep.poll_timeout()
        }
        fn transport_config(&self) -> &TransportConfig {
            self.ep.config()
        }
        fn open_round(&self) -> Option<u64> {
            self.round
        }
    }

    fn round_driver(idle: IdleStrategy) -> Driver<Round> {
        let me = ProcessId::named("round", 1);
        let mut c = DriverConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), me);
        c.idle = idle;
        let transport = c.transport;
        Driver::bind_core(c, |_| Round {
            ep: Endpoint::new(transport, me),
            round: None,
        })
        .expect("bind")
    }

    /// Drives in waits of at most 1 ms (nothing arrives) until `ms` have passed on the
    /// driver's clock since the call.
    fn drive_for(d: &mut Driver<Round>, ms: u64) {
        let until = d.now() + ms * 1_000;
        while d.now() < until {
            d.drive(Some(Duration::from_millis(1))).unwrap();
        }
    }

    /// `Adaptive` parks like `Block` unless the core has a round open, and then polls
    /// [`OPEN_ROUND_SPIN_US`] in all from the moment it saw the round, however many
    /// waits the round lasts; a round of another name gets a budget of its own, even
    /// with no wait between the two (a commit and the next submission in one step).
    /// `Block` never polls, `SpinYield` polls through every wait of an open round (the
    /// cost `Adaptive` bounds). The budget runs on the driver's clock, so "polls no
    /// more once it is spent" holds however slowly a loaded machine runs the test.
    #[test]
    fn adaptive_polls_only_while_a_round_is_open_and_once_per_round() {
        // Long enough past the budget that a preempted first wait still ends in it.
        let spent = OPEN_ROUND_SPIN_US / 1_000 + 20;
        let mut d = round_driver(IdleStrategy::Adaptive);
        drive_for(&mut d, 20);
        assert_eq!(d.stats().poll_us, 0, "no round: parked every time");
        d.core_mut().round = Some(7);
        drive_for(&mut d, spent);
        let first = d.stats().poll_us;
        assert!(first > 0, "an open round is polled");
        drive_for(&mut d, 50);
        assert_eq!(
            d.stats().poll_us,
            first,
            "one budget per round, not per wait"
        );
        d.core_mut().round = Some(8);
        drive_for(&mut d, spent);
        let second = d.stats().poll_us;
        assert!(
            second > first,
            "the next round polls again, no wait between"
        );
        drive_for(&mut d, 20);
        assert_eq!(d.stats().poll_us, second);
        d.core_mut().round = None;
        drive_for(&mut d, 20);
        assert_eq!(d.stats().poll_us, second, "a closed round is not polled");
        d.core_mut().round = Some(8);
        drive_for(&mut d, spent);
        assert!(
            d.stats().poll_us > second,
            "reopened after a wait saw it closed"
        );

        let mut block = round_driver(IdleStrategy::Block);
        block.core_mut().round = Some(1);
        drive_for(&mut block, 20);
        assert_eq!(block.stats().poll_us, 0);

        let mut spin = round_driver(IdleStrategy::SpinYield { spin_us: 1 });
        spin.core_mut().round = Some(1);
        drive_for(&mut spin, 3 * spent);
        assert!(
            spin.stats().poll_us > OPEN_ROUND_SPIN_US,
            "{:?}",
            spin.stats()
        );
    }

    /// A core whose deadline the test sets, counting its timeouts.
    struct Timers {
        ep: Endpoint,
        deadline: Option<Time>,
        moved: bool,
        timeouts: u32,
    }

    impl DatagramCore for Timers {
        fn handle_datagram(&mut self, _: Time, _: SocketAddr, _: &[u8]) {}
        fn handle_timeout(&mut self, now: Time) {
            self.timeouts += 1;
            if self.deadline.is_some_and(|d| d <= now) {
                self.deadline = None;
            }
        }
        fn poll_transmit(&mut self, _: Time, _: &mut [u8]) -> Option<Transmit> {
            None
        }
        fn poll_timeout(&self) -> Option<Time> {
            self.deadline
        }
        fn transport_config(&self) -> &TransportConfig {
            self.ep.config()
        }
        fn transmit_hint(&self) -> bool {
            false
        }
        fn take_timer_restarted(&mut self) -> bool {
            std::mem::take(&mut self.moved)
        }
    }

    /// A deadline moved earlier by work done through `core_polled` (a node core's
    /// deferred bookkeeping in its event poll) runs at the next `drive`, before the
    /// datagrams waiting: without `retime` the driver kept skipping timers until the
    /// deadline it knew, and read the waiting datagram first.
    #[test]
    fn retime_runs_a_deadline_moved_through_core_polled_at_the_next_drive() {
        let me = ProcessId::named("timers", 1);
        let c = DriverConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), me);
        let transport = c.transport;
        let mut d = Driver::bind_core(c, |_| Timers {
            ep: Endpoint::new(transport, me),
            deadline: None,
            moved: false,
            timeouts: 0,
        })
        .expect("bind");
        d.core_mut().deadline = Some(d.now() + 3_600_000_000);
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..2 {
            peer.send_to(b"xx", d.local_addr()).unwrap();
        }
        // Reads the first datagram (the wait ends with it): the timers are known to
        // be an hour away, and skipped until then.
        d.drive(Some(Duration::from_secs(10))).unwrap();
        let before = d.core().timeouts;
        let now = d.now();
        let core = d.core_polled();
        core.deadline = Some(now);
        core.moved = true;
        d.retime();
        d.drive(Some(Duration::ZERO)).unwrap();
        assert!(d.core().timeouts > before, "the due deadline ran");
    }

    /// A core that pings `target` (and calls it in its warm-up `window`), answers
    /// calls if `answers`, and counts the datagrams it is handed.
    struct Pinger {
        ep: Endpoint,
        target: Option<SocketAddr>,
        window: Option<(Time, Time)>,
        answers: bool,
        datagrams: u32,
    }

    impl DatagramCore for Pinger {
        fn handle_datagram(&mut self, _: Time, _: SocketAddr, _: &[u8]) {
            self.datagrams += 1;
        }
        fn handle_timeout(&mut self, _: Time) {}
        fn poll_transmit(&mut self, _: Time, _: &mut [u8]) -> Option<Transmit> {
            None
        }
        fn poll_timeout(&self) -> Option<Time> {
            None
        }
        fn transport_config(&self) -> &TransportConfig {
            self.ep.config()
        }
        fn warm_target(&mut self) -> Option<SocketAddr> {
            self.target
        }
        fn warm_up(&self) -> Option<(Time, Time)> {
            self.window
        }
        fn warm_up_target(&self, i: usize) -> Option<SocketAddr> {
            self.target.filter(|_| i == 0)
        }
        fn answers_warm_up(&self, _: SocketAddr) -> bool {
            self.answers
        }
    }

    fn pinger(warm_every_us: Option<u64>) -> Driver<Pinger> {
        pinger_idle(warm_every_us, IdleStrategy::Adaptive)
    }

    fn pinger_idle(warm_every_us: Option<u64>, idle: IdleStrategy) -> Driver<Pinger> {
        pinger_with(warm_every_us, idle, |_| {})
    }

    fn pinger_with(
        warm_every_us: Option<u64>,
        idle: IdleStrategy,
        transport: impl FnOnce(&mut TransportConfig),
    ) -> Driver<Pinger> {
        let me = ProcessId::named("pinger", 1);
        let mut c = DriverConfig::new(SocketAddr::from(([127, 0, 0, 1], 0)), me);
        c.idle = idle;
        transport(&mut c.transport);
        c.warm_every_us = warm_every_us;
        let transport = c.transport;
        Driver::bind_core(c, |_| Pinger {
            ep: Endpoint::new(transport, me),
            target: None,
            window: None,
            answers: false,
            datagrams: 0,
        })
        .expect("bind")
    }

    /// Warm-up calls: in its core's window a driver calls the core's targets, no
    /// faster than one tick per [`WARM_UP_EVERY_US`] (an adaptive one polling between
    /// ticks), and none before the window (which wakes it) or after; a peer whose core
    /// knows the caller answers with a ping (and, adaptive, polls a while), one whose
    /// core does not answers nothing and does not poll, and neither a call nor an
    /// answer reaches a core.
    #[test]
    fn in_a_warm_up_window_a_driver_calls_its_peers_and_they_answer() {
        let mut a = pinger(None);
        let mut b = pinger(None);
        a.core_mut().target = Some(b.local_addr());
        b.core_mut().answers = true;
        let now = a.now();
        let (from, until) = (now + 20_000, now + 40_000);
        a.core_mut().window = Some((from, until));
        let mut woke_in_window = None;
        while a.now() < until + 5_000 {
            // A long timeout of ours before the window: its start ends the wait.
            let timeout = if a.now() < until {
                Duration::from_secs(5)
            } else {
                Duration::from_millis(1)
            };
            a.drive(Some(timeout)).unwrap();
            if a.now() < from {
                assert_eq!(a.stats().pings_sent, 0, "a call before the window");
            } else if woke_in_window.is_none() {
                woke_in_window = Some(a.now());
            }
            b.drive(Some(Duration::ZERO)).unwrap();
        }
        assert!(
            woke_in_window.is_some_and(|t| t < from + 1_000_000),
            "the window's start did not end the wait"
        );
        let calls = a.stats().pings_sent;
        // A loaded machine may take a tick's whole budget and more from the poll.
        assert!(
            (3..=20_000 / WARM_UP_EVERY_US + 1).contains(&calls),
            "{calls} calls in a 20 ms window"
        );
        assert!(
            a.stats().poll_us > 0,
            "an adaptive driver polls through its window"
        );
        for _ in 0..3 {
            b.drive(Some(Duration::from_millis(1))).unwrap();
            a.drive(Some(Duration::from_millis(1))).unwrap();
        }
        assert_eq!(b.stats().pings_received, calls);
        let answers = b.stats().pings_sent;
        assert!((1..=calls).contains(&answers), "{answers} answers");
        assert_eq!(a.stats().pings_received, answers);
        assert_eq!(a.stats().pings_sent, calls, "no call after the window");
        assert_eq!((a.core().datagrams, b.core().datagrams), (0, 0));
        assert_eq!(a.stats().datagrams_read + b.stats().datagrams_read, 0);

        // A called adaptive driver polls for a while after the call it answered.
        let caller = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        caller.send_to(&WARM_UP_CALL, b.local_addr()).unwrap();
        for _ in 0..100 {
            if b.stats().pings_received > calls {
                break;
            }
            b.drive(Some(Duration::from_millis(10))).unwrap();
        }
        assert_eq!(b.stats().pings_sent, answers + 1);
        let answered = b.answered_at.expect("answered");
        assert_eq!(b.warm_up_poll(answered), Some(WARM_UP_POLL_US));
        assert_eq!(b.warm_up_poll(answered + WARM_UP_POLL_US), None);

        // A core that does not know the caller: no answer, to anyone, and no poll.
        let polled = a.stats().poll_us;
        caller.send_to(&WARM_UP_CALL, a.local_addr()).unwrap();
        for _ in 0..100 {
            if a.stats().pings_received > answers {
                break;
            }
            a.drive(Some(Duration::from_millis(10))).unwrap();
        }
        assert_eq!(a.warm_up_poll(a.now()), None);
        assert_eq!(a.stats().pings_received, answers + 1);
        assert_eq!(
            a.stats().pings_sent,
            calls,
            "a call from a stranger is not answered"
        );
        assert_eq!(a.stats().poll_us, polled, "nor polled for");

        // A window with no one to call: no call, and no poll either.
        let mut c = pinger(None);
        let now = c.now();
        c.core_mut().window = Some((now, now + 5_000));
        while c.now() < now + 6_000 {
            c.drive(Some(Duration::from_millis(1))).unwrap();
        }
        assert_eq!((c.stats().pings_sent, c.stats().poll_us), (0, 0));
    }

    /// Keep-warm pings: a quiet driver pings its core's target about once per interval
    /// (its wait ends for it even without a timer), the receiver counts each ping and
    /// never hands one to its core, a datagram read starts the interval again, and a
    /// driver without the setting (or a core without a target) sends none.
    #[test]
    fn a_quiet_driver_pings_its_target_and_the_receiver_counts_without_handing_it_on() {
        let mut a = pinger(Some(2_000));
        let mut b = pinger(None);
        a.core_mut().target = Some(b.local_addr());
        b.core_mut().target = Some(a.local_addr());
        let start = a.now();
        while a.stats().pings_sent < 5 {
            assert!(a.now() < start + 5_000_000, "no pings: {:?}", a.stats());
            // No timeout of ours: the ping's own deadline ends each wait.
            a.drive(None).unwrap();
            b.drive(Some(Duration::ZERO)).unwrap();
        }
        let sent = a.stats().pings_sent;
        let elapsed = a.now().micros_since(start);
        assert!(
            elapsed >= sent * 2_000,
            "no faster than one per interval: {sent} in {elapsed} µs"
        );
        for _ in 0..3 {
            b.drive(Some(Duration::from_millis(1))).unwrap();
        }
        assert_eq!(b.stats().pings_received, sent);
        assert_eq!(b.core().datagrams, 0, "a ping never reaches the core");
        assert_eq!(b.stats().datagrams_read, 0, "nor counts as read");
        assert_eq!(a.stats().datagrams_written, 0, "nor as written");
        assert_eq!(b.stats().pings_sent, 0, "pings are off by default");

        // Traffic keeps the interval from ending: a datagram every millisecond, no ping.
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.drive(Some(Duration::ZERO)).unwrap();
        let before = a.stats().pings_sent;
        let until = a.now() + 20_000;
        while a.now() < until {
            peer.send_to(b"xx", a.local_addr()).unwrap();
            a.drive(Some(Duration::from_millis(1))).unwrap();
        }
        assert!(
            a.stats().pings_sent <= before + 1,
            "{} pings under traffic",
            a.stats().pings_sent - before
        );
        assert!(a.core().datagrams > 0);

        // A link the sender's fault layer blocks: no ping leaves.
        let mut f = pinger(Some(1_000));
        f.core_mut().target = Some(b.local_addr());
        let mut faults = FaultLayer::new(1);
        faults.partition(f.local_addr(), b.local_addr());
        f.faults = Some(faults);
        let until = f.now() + 10_000;
        while f.now() < until {
            f.drive(None).unwrap();
        }
        assert_eq!(f.stats().pings_sent, 0);
        assert!(f.stats().fault_dropped >= 3, "{:?}", f.stats());

        // No target: no ping, and no wake-up for one (the wait is the caller's).
        let mut c = pinger(Some(1_000));
        let until = c.now() + 10_000;
        while c.now() < until {
            c.drive(Some(Duration::from_millis(5))).unwrap();
        }
        assert_eq!(c.stats().pings_sent, 0, "no target, no ping");
        assert!(c.stats().iterations <= 5, "{:?}", c.stats());
    }

    /// A flood of pings (empty datagrams, which do not count as reads) is read at most
    /// [`MAX_PINGS_PER_READ`] per `drive` call, a flood of other datagrams at most
    /// [`MAX_DRAIN`], so each call returns to the timers and transmissions; nothing is
    /// lost: the next calls read on (no edge-triggered wait with datagrams unread), and
    /// the datagram behind the flood reaches the core.
    #[test]
    fn a_flood_of_pings_is_read_in_bounded_batches() {
        let mut b = pinger(None);
        let flood = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = 3 * MAX_PINGS_PER_READ + 10;
        for _ in 0..sent {
            flood.send_to(&[], b.local_addr()).unwrap();
        }
        flood.send_to(b"xx", b.local_addr()).unwrap();
        let mut calls = 0;
        while b.core().datagrams == 0 {
            calls += 1;
            assert!(
                calls <= 20,
                "the datagram behind the flood: {:?}",
                b.stats()
            );
            let before = b.stats().pings_received;
            // A long wait: a call that parked with datagrams unread would sit in it.
            let t = Instant::now();
            b.drive(Some(Duration::from_secs(5))).unwrap();
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "parked with pings unread"
            );
            let read = b.stats().pings_received - before;
            assert!(
                read <= MAX_PINGS_PER_READ as u64,
                "{read} pings in one call"
            );
        }
        assert!(calls >= 4, "{calls} calls");
        assert_eq!(b.stats().pings_received, sent as u64);

        // Datagrams that are not pings (junk, to the endpoint): at most MAX_DRAIN a call.
        // As many as the socket's buffer surely holds (a kernel charges about a
        // kilobyte for a tiny datagram; the configured 4 MiB is capped by
        // `net.core.rmem_max`: with a stock 208 KiB one the cap is not reached here).
        let room = b.socket_ref().recv_buffer_size().unwrap() / 2048;
        let sent = (3 * MAX_DRAIN + 10).min(room);
        for _ in 0..sent {
            flood.send_to(b"xx", b.local_addr()).unwrap();
        }
        let (mut calls, start) = (0, b.core().datagrams);
        while ((b.core().datagrams - start) as usize) < sent {
            calls += 1;
            assert!(calls <= 20, "the flood: {:?}", b.stats());
            let before = b.core().datagrams;
            let t = Instant::now();
            b.drive(Some(Duration::from_secs(5))).unwrap();
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "parked with datagrams unread"
            );
            let read = b.core().datagrams - before;
            assert!(read as usize <= MAX_DRAIN, "{read} datagrams in one call");
        }
        assert!(calls > sent / MAX_DRAIN, "{calls} calls");
    }

    /// With nothing to read, a wait lasts as long as asked, in every idle strategy: the
    /// drain after a datagram finding the socket empty, or a poll finding nothing, does
    /// not end it early (the caller would spin through its loop).
    #[test]
    fn a_wait_with_nothing_to_read_is_not_cut_short() {
        let idles = [
            IdleStrategy::Adaptive,
            IdleStrategy::Block,
            IdleStrategy::Recv,
            IdleStrategy::Spin { spin_us: 200 },
            IdleStrategy::SpinYield { spin_us: 200 },
        ];
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for idle in idles {
            let mut d = pinger_idle(None, idle);
            peer.send_to(b"xx", d.local_addr()).unwrap();
            while d.core().datagrams == 0 {
                d.drive(Some(Duration::from_millis(100))).unwrap();
            }
            for wait_ms in [30, 5] {
                let t = Instant::now();
                d.drive(Some(Duration::from_millis(wait_ms))).unwrap();
                let waited = t.elapsed();
                // Recv's blocking read rounds its timeout down to a power of two ms.
                let at_least = Duration::from_millis(wait_ms / 2);
                assert!(waited >= at_least, "{idle:?}: {waited:?} of {wait_ms} ms");
            }
        }
    }

    /// `IdleStrategy::Recv` moving from blocking reads to a short wait (at most the
    /// delayed ack: a nonblocking poll) first drains what queued while it blocked: it
    /// returns at once with datagrams read, and waits when there were none.
    #[test]
    fn a_recv_driver_switching_to_a_short_wait_reads_what_queued_first() {
        // A precise wait of up to 2 s, so that a wrong park is plain to see even on a
        // machine too busy to run the test for a while.
        let mut d = pinger_with(None, IdleStrategy::Recv, |t| t.delayed_ack_us = 2_000_000);
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = d.local_addr();
        let send = |n: usize| {
            for _ in 0..n {
                peer.send_to(b"xx", to).unwrap();
            }
        };
        let long = Some(Duration::from_secs(5));
        let short = Some(Duration::from_millis(1_500));
        send(1);
        d.drive(long).unwrap(); // a blocking read
        assert_eq!(d.core().datagrams, 1);
        send(3);
        let t = Instant::now();
        d.drive(short).unwrap();
        assert_eq!(d.core().datagrams, 4);
        assert!(
            t.elapsed() < Duration::from_millis(1_000),
            "parked: {:?}",
            t.elapsed()
        );
        send(1);
        d.drive(long).unwrap(); // back to blocking reads
        assert_eq!(d.core().datagrams, 5);
        let t = Instant::now();
        d.drive(short).unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(750),
            "no wait: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn loopback_replaces_only_unspecified_addresses() {
        let v4: IpAddr = Ipv4Addr::UNSPECIFIED.into();
        let v6: IpAddr = Ipv6Addr::UNSPECIFIED.into();
        let other: IpAddr = Ipv4Addr::new(10, 1, 2, 3).into();
        assert_eq!(loopback_for(v4), IpAddr::from(Ipv4Addr::LOCALHOST));
        assert_eq!(loopback_for(v6), IpAddr::from(Ipv6Addr::LOCALHOST));
        assert_eq!(loopback_for(other), other);
    }
}
