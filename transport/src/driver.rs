//! A mio driver: one nonblocking UDP socket, one [`Endpoint`], optional fault injection.
//!
//! The driver owns the socket (set up with socket2: buffer sizes from the config,
//! address reuse off), the endpoint, and the clock (microseconds since a driver-owned
//! [`Instant`]). Each [`Driver::drive`] call is one loop iteration: run due timers,
//! flush transmissions, wait for a datagram, a deadline, the caller's timeout or a
//! [`Waker`] (parking in `mio::Poll`, after an optional busy-poll per
//! [`IdleStrategy`]), then read the socket (the first datagram after a wait, the rest at
//! the start of the next call, so that replies leave first), and flush again.
//! Deliveries and events are then read with [`Driver::poll_delivery`] and
//! [`Driver::poll_event`].
//!
//! With a [`FaultLayer`], every outgoing datagram goes through it; delayed copies wait in
//! a preallocated [`DelayQueue`] and leave when due. Incoming datagrams over a link the
//! layer blocks (`is_blocked(from, local)`: a partition or isolation) are dropped too, so
//! a node can cut itself off from a peer in both directions on its own. Nothing allocates after
//! [`Driver::bind`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::fault::{FaultDecision, FaultLayer};
use crate::queue::DelayQueue;
use crate::{earliest, Endpoint, ProcessId, SendError, Time, TransportConfig, TransportEvent};

const SOCKET: Token = Token(0);
const WAKER: Token = Token(1);
/// Largest UDP payload; receive buffers this big never truncate a datagram.
const MAX_UDP: usize = 65_536;

/// What the driver does when it has nothing to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Park in `mio::Poll` until a datagram, the next deadline, the timeout or a wake-up.
    #[default]
    Block,
    /// Busy-poll the socket for up to `spin_us` before parking: lower latency, one core
    /// burnt.
    Spin {
        /// Longest busy-poll per iteration, µs.
        spin_us: u64,
    },
}

/// Settings of a [`Driver`].
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Address to bind (port 0: any free port).
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
}

impl DriverConfig {
    /// Defaults: 4 MiB socket buffers, [`IdleStrategy::Block`], no faults.
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
    /// Wake-ups through the [`Waker`].
    pub wakeups: u64,
}

/// See the [module docs](self).
#[derive(Debug)]
pub struct Driver {
    poll: Poll,
    events: Events,
    socket: UdpSocket,
    waker: Arc<Waker>,
    local: SocketAddr,
    endpoint: Endpoint,
    epoch: Instant,
    idle: IdleStrategy,
    faults: Option<FaultLayer>,
    delayed: DelayQueue,
    rx_buf: Vec<u8>,
    tx_buf: Vec<u8>,
    stats: DriverStats,
    /// The last read stopped after one datagram, before the socket would block: more may
    /// be queued, and no readiness event will say so (mio is edge-triggered).
    maybe_readable: bool,
}

impl Driver {
    /// Binds the socket and builds the endpoint; everything is allocated here.
    pub fn bind(config: DriverConfig) -> io::Result<Driver> {
        let socket = Socket::new(
            Domain::for_address(config.bind),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        socket.set_reuse_address(false)?;
        socket.set_recv_buffer_size(config.recv_buffer_bytes)?;
        socket.set_send_buffer_size(config.send_buffer_bytes)?;
        socket.set_nonblocking(true)?;
        socket.bind(&config.bind.into())?;
        let mut socket = UdpSocket::from_std(socket.into());
        let local = socket.local_addr()?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut socket, SOCKET, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let endpoint = Endpoint::new(config.transport, config.me);
        let mtu = endpoint.config().mtu;
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
            local,
            endpoint,
            epoch: Instant::now(),
            idle: config.idle,
            faults: config.faults,
            delayed: DelayQueue::new(queue, mtu),
            rx_buf: vec![0u8; MAX_UDP],
            tx_buf: vec![0u8; mtu],
            stats: DriverStats::default(),
            maybe_readable: false,
        })
    }

    /// The bound address (with the actual port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The endpoint's clock: microseconds since the driver was bound.
    pub fn now(&self) -> Time {
        Time(self.epoch.elapsed().as_micros() as u64)
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The endpoint, for anything the driver does not wrap (disconnect, stats, ...).
    pub fn endpoint_mut(&mut self) -> &mut Endpoint {
        &mut self.endpoint
    }

    /// The fault layer, to change links and partitions while running.
    pub fn faults_mut(&mut self) -> Option<&mut FaultLayer> {
        self.faults.as_mut()
    }

    /// I/O counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// A handle another thread can use to interrupt a blocked [`drive`](Self::drive)
    /// (`waker.wake()`).
    pub fn waker(&self) -> Arc<Waker> {
        Arc::clone(&self.waker)
    }

    /// Queues a message (see [`Endpoint::send`]); it leaves at the next
    /// [`drive`](Self::drive) or [`flush`](Self::flush).
    pub fn send(&mut self, to: ProcessId, addr: SocketAddr, msg: &[u8]) -> Result<(), SendError> {
        let now = self.now();
        self.endpoint.send(now, to, addr, msg)
    }

    /// Queues a probe to `addr` (see [`Endpoint::send_probe`]).
    pub fn send_probe(&mut self, addr: SocketAddr, payload: &[u8]) -> Result<(), SendError> {
        let now = self.now();
        self.endpoint.send_probe(now, addr, payload)
    }

    /// The next received probe (see [`Endpoint::poll_probe`]).
    pub fn poll_probe(&mut self, buf: &mut [u8]) -> Option<(ProcessId, SocketAddr, usize)> {
        self.endpoint.poll_probe(buf)
    }

    /// Replaces the endpoint with a fresh one for process `me` (a new incarnation of
    /// this node, e.g. rejoining after exclusion), keeping the socket, the waker, the
    /// fault layer and the clock. Every channel of the old incarnation is dropped.
    pub fn reset_endpoint(&mut self, me: ProcessId) {
        let cfg = *self.endpoint.config();
        self.endpoint = Endpoint::new(cfg, me);
    }

    /// The next delivered message (see [`Endpoint::poll_delivery`]).
    pub fn poll_delivery(&mut self, buf: &mut [u8]) -> Option<(ProcessId, usize)> {
        self.endpoint.poll_delivery(buf)
    }

    /// The next transport event.
    pub fn poll_event(&mut self) -> Option<TransportEvent> {
        self.endpoint.poll_event()
    }

    /// Runs due timers and writes every datagram due now to the socket.
    pub fn flush(&mut self) {
        let now = self.now();
        self.endpoint.handle_timeout(now);
        self.transmit(now);
    }

    /// One loop iteration: timers, transmissions, a wait of at most `timeout` (`None`:
    /// until something happens), the socket read, timers and transmissions again.
    ///
    /// After a wait, only the first datagram is read before returning, so that a reply
    /// the caller queues to it leaves (at the start of the next call) before the driver
    /// spends a system call on finding the socket empty; the next call reads the rest
    /// before it would wait, and does not wait if there was any.
    pub fn drive(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.stats.iterations += 1;
        self.flush();
        if self.maybe_readable && self.receive(self.now(), usize::MAX) > 0 {
            let now = self.now();
            self.endpoint.handle_timeout(now);
            self.transmit(now);
            return Ok(());
        }
        let now = self.now();
        let deadline = earliest(self.endpoint.poll_timeout(), self.delayed.next_due());
        let until_deadline = deadline.map(|d| Duration::from_micros(d.micros_since(now)));
        let mut wait = match (until_deadline, timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut ready = false;
        if let IdleStrategy::Spin { spin_us } = self.idle {
            let spin = Duration::from_micros(spin_us).min(wait.unwrap_or(Duration::MAX));
            let start = Instant::now();
            loop {
                if self.receive(self.now(), 1) > 0 {
                    ready = true;
                    break;
                }
                if start.elapsed() >= spin {
                    break;
                }
                std::hint::spin_loop();
            }
            // The spin is part of the wait, not added to it.
            wait = wait.map(|w| w.saturating_sub(start.elapsed()));
        }
        if !ready {
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
                self.receive(self.now(), 1);
            }
        }
        let now = self.now();
        self.endpoint.handle_timeout(now);
        self.transmit(now);
        Ok(())
    }

    /// Reads up to `limit` datagrams, stopping early when the socket would block; returns
    /// how many were read. Records whether more may be waiting.
    fn receive(&mut self, now: Time, limit: usize) -> usize {
        let mut n = 0;
        self.maybe_readable = false;
        while n < limit {
            match self.socket.recv_from(&mut self.rx_buf) {
                Ok((len, from)) => {
                    n += 1;
                    // A partition blocks both ways: drop what arrives over a blocked link.
                    if let Some(f) = self.faults.as_ref() {
                        if f.is_blocked(from, self.local) {
                            self.stats.fault_dropped += 1;
                            continue;
                        }
                    }
                    self.endpoint
                        .handle_datagram(now, from, &self.rx_buf[..len]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.stats.recv_errors += 1;
                    break;
                }
            }
        }
        if n == limit {
            self.maybe_readable = true;
        }
        self.stats.datagrams_read += n as u64;
        n
    }

    /// Writes held-back datagrams now due, then everything the endpoint has.
    fn transmit(&mut self, now: Time) {
        while let Some(d) = self.delayed.pop_due(now, &mut self.tx_buf) {
            write(&self.socket, &mut self.stats, d.to, &self.tx_buf[..d.len]);
        }
        while let Some(t) = self.endpoint.poll_transmit(now, &mut self.tx_buf) {
            let bytes = &self.tx_buf[..t.len];
            let Some(faults) = self.faults.as_mut() else {
                write(&self.socket, &mut self.stats, t.dst, bytes);
                continue;
            };
            let decision = faults.on_send(now, self.local, t.dst, t.len);
            if decision == FaultDecision::Drop {
                self.stats.fault_dropped += 1;
            }
            for at in decision.deliveries().into_iter().flatten() {
                if at <= now {
                    write(&self.socket, &mut self.stats, t.dst, bytes);
                } else if self.delayed.push(at, self.local, t.dst, bytes) {
                    self.stats.fault_delayed += 1;
                } else {
                    self.stats.fault_overflow += 1;
                }
            }
        }
    }
}

fn write(socket: &UdpSocket, stats: &mut DriverStats, dst: SocketAddr, bytes: &[u8]) {
    for _ in 0..2 {
        match socket.send_to(bytes, dst) {
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
