//! The node runtime: one thread runs the mio loop with the transport [`Driver`], the
//! S-GMP [`Engine`] and the timers; a [`NodeHandle`] gives the application the current
//! view, a subscription to events, `leave`, `shutdown`, fault injection and the
//! state-transfer callbacks.
//!
//! The loop: engine transmissions go to `Driver::send` (a full send window parks them
//! in a bounded backlog, retried in order per peer); deliveries go to
//! `Engine::handle_message`; the engine's `Suspected{peer}` disconnects the peer at the
//! transport (Disconnect); the transport's `PeerUnreachable(p)` becomes
//! `Engine::suspect`; the loop sleeps in `Driver::drive` until the earliest deadline or
//! a command (the handle wakes it through the driver's `Waker`). The engine's clock
//! is `Driver::now`.
//!
//! Before it is a member, the node runs discovery ([`coldstart`]): it founds the group
//! or joins it. When excluded, it comes back (with `auto_rejoin`) as a new incarnation
//! (`incarnation + 1`) with a fresh transport endpoint and engine, and joins again
//! through the members it knew and the seeds.

pub mod coldstart;
pub mod config;
pub mod eventlog;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sgmp_transport::{
    Driver, DriverConfig, DriverStats, FaultLayer, LinkFaults, SendError, Stats as TransportStats,
    TransportEvent, Waker,
};

use crate::engine::{Engine, EngineStats, Event, ExcludeReason, Status};
use crate::service::{wire as service_wire, CoreService, ServiceStats, SystemChange, SystemView};
use crate::view::{ClientOp, Member, View};
use crate::{ProcessId, Time};

pub use coldstart::{Decision, Discovery, Probe};
pub use config::{FaultSettings, NodeConfig, NodeConfigError, NodeIdle};
pub use eventlog::{unix_micros, EventLog};

/// Most messages parked while send windows are full.
const BACKLOG_CAP: usize = 16_384;
/// Events queued per subscriber before further ones are dropped (and counted).
const SUBSCRIBER_QUEUE: usize = 1024;
/// Most process addresses remembered from probes (discovery and fault targets), so that
/// probes from made-up processes cost bounded memory.
const KNOWN_CAP: usize = 4096;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    /// The UDP address could not be bound (taken, not local, ...).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The event log could not be opened.
    #[error("cannot open event log {path}: {source}")]
    EventLog {
        /// The path.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The loop thread could not be spawned.
    #[error("cannot start the node thread: {0}")]
    Thread(std::io::Error),
}

/// Where the node stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodePhase {
    /// Querying seeds: cold start, or looking for the group to rejoin.
    Discovering,
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
            NodePhase::Discovering => "discovering",
            NodePhase::Joining => "joining",
            NodePhase::Member => "member",
            NodePhase::Excluded => "excluded",
            NodePhase::Leaving => "leaving",
            NodePhase::Left => "left",
            NodePhase::Stopped => "stopped",
        }
    }
}

/// A snapshot of the node's state, refreshed by the loop.
#[derive(Clone, Debug)]
pub struct NodeStatus {
    /// The current process id (changes on rejoin).
    pub me: ProcessId,
    /// The UDP address.
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
    /// Probes sent (discovery queries and answers).
    pub probes_sent: u64,
    /// Rejoins as a new incarnation.
    pub rejoins: u64,
    /// The membership service's counters (current incarnation).
    pub service: ServiceStats,
}

/// Something an application subscribed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A view was installed by process `me`.
    ViewInstalled {
        /// The installing process.
        me: ProcessId,
        /// The view.
        view: View,
    },
    /// `me` now believes `peer` faulty.
    Suspected {
        /// The suspecting process.
        me: ProcessId,
        /// The suspected process.
        peer: ProcessId,
    },
    /// `me` joined the group (its view follows as `ViewInstalled`).
    Joined {
        /// The joined process.
        me: ProcessId,
        /// Version of its first view.
        version: u64,
        /// The application snapshot handed over by the group.
        snapshot: Vec<u8>,
    },
    /// `me` founded the group (cold start).
    Founded {
        /// The founding process.
        me: ProcessId,
    },
    /// `me` was excluded.
    Excluded {
        /// The excluded process.
        me: ProcessId,
        /// Why.
        reason: ExcludeReason,
    },
    /// `me` left the group gracefully.
    Left {
        /// The process that left.
        me: ProcessId,
    },
    /// `me` started a reconfiguration.
    Reconfiguring {
        /// The reconfiguring process.
        me: ProcessId,
        /// Its view version.
        version: u64,
    },
    /// As mgr (or reconfigurer), `me` decided on the update forming view `version`
    /// and submitted it (the start of a view change's commit latency).
    Submitted {
        /// The initiator.
        me: ProcessId,
        /// The version the update would form.
        version: u64,
        /// When the loop step that decided it began (events are published after the
        /// step's datagrams are sent, so the event itself arrives later).
        at: Instant,
    },
    /// The membership service applied system view `change.version` (core + clients).
    SystemView {
        /// The core member reporting it.
        me: ProcessId,
        /// The version, what was added and removed, and the size.
        change: SystemChange,
    },
    /// The node came back as a new incarnation after `old` was excluded.
    Rejoining {
        /// The excluded process.
        old: ProcessId,
        /// The new one.
        new: ProcessId,
    },
}

/// Fault injection at run time (the driver's fault layer).
#[derive(Clone, Debug, PartialEq)]
pub enum FaultCommand {
    /// Lose outgoing datagrams with this probability (every link).
    Loss(f64),
    /// Block both directions to these peers: node names, `NAME#INC` or addresses.
    Partition(Vec<String>),
    /// Block only what this node sends to these peers (a one-way cut; what they send
    /// still arrives). Same peer syntax as `Partition`; undone by `Heal`.
    Cut(Vec<String>),
    /// Send a second copy of outgoing datagrams with this probability (every link).
    Duplicate(f64),
    /// Hold back outgoing datagrams with this probability by up to `max_delay_us`, so
    /// that later ones overtake them (every link).
    Reorder {
        /// Probability that a datagram is held back.
        p: f64,
        /// Largest extra delay, µs.
        max_delay_us: u64,
    },
    /// Remove every partition and cut (loss, duplication and reordering stay).
    Heal,
    /// Remove every partition and the loss, duplication and reordering.
    Clear,
}

/// A node event with the time the node's loop produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedEvent {
    /// When the loop step that produced the event began: the step that read the
    /// datagram, timer or command behind it (for [`NodeEvent::Submitted`], its `at`).
    /// Unlike the time a subscriber receives the event, it does not include the
    /// subscriber's own wake-up, nor the datagrams the step sent before publishing.
    pub at: Instant,
    /// The event.
    pub event: NodeEvent,
}

/// A subscription to node events: a bounded queue; when it is full, further events
/// are dropped and counted in [`Subscription::dropped`] (the loop never blocks).
///
/// Every event carries the time the node's loop produced it: [`recv_timed_timeout`]
/// and [`try_recv_timed`] return it with the event ([`TimedEvent`]), so that a
/// collector can time events without depending on when it gets to run.
///
/// [`recv_timed_timeout`]: Subscription::recv_timed_timeout
/// [`try_recv_timed`]: Subscription::try_recv_timed
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<TimedEvent>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<NodeEvent> {
        self.recv_timed_timeout(timeout).map(|t| t.event)
    }
    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<NodeEvent> {
        self.try_recv_timed().map(|t| t.event)
    }
    /// The next event with the time the node produced it, waiting at most `timeout`.
    pub fn recv_timed_timeout(&self, timeout: Duration) -> Option<TimedEvent> {
        self.rx.recv_timeout(timeout).ok()
    }
    /// The next event with the time the node produced it, if one is queued.
    pub fn try_recv_timed(&self) -> Option<TimedEvent> {
        self.rx.try_recv().ok()
    }
    /// Events dropped because this subscriber lagged.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Subscriber {
    tx: SyncSender<TimedEvent>,
    dropped: Arc<AtomicU64>,
}

/// Produces the application snapshot handed to joiners (called on the loop thread).
pub type SnapshotProvider = Box<dyn Fn() -> Vec<u8> + Send>;

enum Command {
    Leave(Sender<()>),
    Shutdown,
    Fault(FaultCommand, Sender<Result<String, String>>),
    SetSnapshot(SnapshotProvider, Sender<()>),
    SystemView(Sender<Option<SystemView>>),
}

struct Shared {
    status: Mutex<NodeStatus>,
    metrics: Mutex<NodeMetrics>,
    subscribers: Mutex<Vec<Subscriber>>,
}

/// Starts nodes. See the [module docs](self).
pub struct Node;

impl Node {
    /// Validates `config`, binds the UDP socket, opens the event log and starts the loop
    /// thread, which begins discovery at once.
    pub fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        Node::start_inner(config, None)
    }

    /// Like [`Node::start`], with a subscription made before the loop starts, so that
    /// no event is missed (a node without seeds founds its group at once, before a
    /// later [`NodeHandle::subscribe`] could run).
    pub fn start_subscribed(config: NodeConfig) -> Result<(NodeHandle, Subscription), NodeError> {
        let mut sub = None;
        let h = Node::start_inner(config, Some(&mut sub))?;
        let sub = sub.expect("subscribed before start");
        Ok((h, sub))
    }

    fn start_inner(
        config: NodeConfig,
        pre_subscribe: Option<&mut Option<Subscription>>,
    ) -> Result<NodeHandle, NodeError> {
        config.validate()?;
        let name = config.node_id()?;
        let incarnation = config.incarnation.unwrap_or_else(unix_micros).max(1);
        let me = ProcessId::new(name, incarnation);
        let mut dc = DriverConfig::new(config.listen, me);
        dc.transport = config.transport_config();
        dc.transport.keys = config.keyring()?;
        dc.recv_buffer_bytes = 1 << 20;
        dc.send_buffer_bytes = 1 << 20;
        dc.fault_queue = 1024;
        dc.idle = config.idle.strategy();
        let mut faults = FaultLayer::new(config.faults.seed);
        faults.set_default(LinkFaults::lossy(config.faults.loss));
        dc.faults = Some(faults);
        let driver = Driver::bind(dc).map_err(|source| NodeError::Bind {
            addr: config.listen,
            source,
        })?;
        let log = match &config.event_log {
            Some(path) => Some(EventLog::open(path).map_err(|source| NodeError::EventLog {
                path: path.clone(),
                source,
            })?),
            None => None,
        };
        let addr = driver.local_addr();
        let waker = driver.waker();
        let shared = Arc::new(Shared {
            status: Mutex::new(NodeStatus {
                me,
                addr,
                phase: NodePhase::Discovering,
                view: View::with_capacity(0),
                leader: None,
                is_mgr: false,
                faulty: Vec::new(),
                view_ts_us: 0,
                rejoins: 0,
                system_version: 0,
                system_size: 0,
                clients: 0,
            }),
            metrics: Mutex::new(NodeMetrics::default()),
            subscribers: Mutex::new(Vec::new()),
        });
        if let Some(slot) = pre_subscribe {
            *slot = Some(subscribe_to(&shared));
        }
        let (tx, rx) = mpsc::channel();
        let mut rt = Runtime::new(config, driver, me, log, rx, Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name(format!("sgmp-{}", me.node))
            .spawn(move || rt.run())
            .map_err(NodeError::Thread)?;
        Ok(NodeHandle {
            shared,
            tx,
            waker,
            thread: Mutex::new(Some(thread)),
            addr,
        })
    }
}

/// The application's side of a running node. Dropping it shuts the node down.
pub struct NodeHandle {
    shared: Arc<Shared>,
    tx: Sender<Command>,
    waker: Arc<Waker>,
    thread: Mutex<Option<JoinHandle<()>>>,
    addr: SocketAddr,
}

impl NodeHandle {
    fn command(&self, c: Command) -> bool {
        let ok = self.tx.send(c).is_ok();
        let _ = self.waker.wake();
        ok
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current view (version 0 and empty before the first).
    pub fn view(&self) -> View {
        self.shared.status.lock().view.clone()
    }

    /// The current state.
    pub fn status(&self) -> NodeStatus {
        self.shared.status.lock().clone()
    }

    /// The current counters.
    pub fn metrics(&self) -> NodeMetrics {
        *self.shared.metrics.lock()
    }

    /// Subscribes to events from now on.
    pub fn subscribe(&self) -> Subscription {
        subscribe_to(&self.shared)
    }

    /// Sets the function producing the application snapshot handed to joiners. It runs
    /// on the loop thread after every view change (and now), and the latest result goes
    /// to the next joiner; keep it quick. Returns once the loop has taken it.
    pub fn set_snapshot_provider(&self, f: SnapshotProvider) {
        let (tx, rx) = mpsc::channel();
        if self.command(Command::SetSnapshot(f, tx)) {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// The membership service's system view (core + clients), or None if the service
    /// is off, this node is not synchronized, or the loop did not answer in time.
    pub fn system_view(&self) -> Option<SystemView> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::SystemView(tx)) {
            return None;
        }
        rx.recv_timeout(Duration::from_secs(5)).ok().flatten()
    }

    /// Leaves the group gracefully and waits (at most `leave_linger_ms` plus a margin)
    /// until the leave request has been delivered. The node stays up (not a member)
    /// until [`NodeHandle::shutdown`].
    pub fn leave(&self, timeout: Duration) {
        let (tx, rx) = mpsc::channel();
        if self.command(Command::Leave(tx)) {
            let _ = rx.recv_timeout(timeout);
        }
    }

    /// Applies a fault command; returns a description of what was done.
    pub fn fault(&self, cmd: FaultCommand) -> Result<String, String> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::Fault(cmd, tx)) {
            return Err("the node is stopped".into());
        }
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| Err("the node did not answer".into()))
    }

    /// Stops the loop and waits for its thread. Idempotent.
    pub fn shutdown(&self) {
        self.command(Command::Shutdown);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn subscribe_to(shared: &Shared) -> Subscription {
    let (tx, rx) = mpsc::sync_channel(SUBSCRIBER_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    shared.subscribers.lock().push(Subscriber {
        tx,
        dropped: Arc::clone(&dropped),
    });
    Subscription { rx, dropped }
}

/// A message parked while the send window to `to` was full.
struct Parked {
    to: ProcessId,
    addr: SocketAddr,
    bytes: Vec<u8>,
}

struct Runtime {
    cfg: NodeConfig,
    driver: Driver,
    engine: Engine,
    me: ProcessId,
    addr: SocketAddr,
    phase: NodePhase,
    discovery: Option<Discovery>,
    /// The node started fresh and was never a member: it may found the group.
    fresh: bool,
    join_contacts: Vec<Member>,
    join_started: Time,
    log: Option<EventLog>,
    rx: Receiver<Command>,
    shared: Arc<Shared>,
    backlog: VecDeque<Parked>,
    blocked: Vec<ProcessId>,
    leaving: Option<(Time, Vec<Sender<()>>)>,
    snapshot: Option<SnapshotProvider>,
    known: HashMap<ProcessId, SocketAddr>,
    last_members: Vec<Member>,
    rx_buf: Vec<u8>,
    probe_buf: Vec<u8>,
    probe_out: Vec<u8>,
    metrics: NodeMetrics,
    metrics_at: Instant,
    status_dirty: bool,
    view_ts_us: u64,
    /// When the current loop step (or command) began: stamps every published event
    /// ([`TimedEvent::at`], `NodeEvent::Submitted`).
    step_started: Instant,
    /// Transport signs of life from this time on are still to be given to the engine.
    heard_since: Time,
    /// The membership service (None: off).
    service: Option<CoreService>,
    client_ops: Vec<ClientOp>,
}

impl Runtime {
    fn new(
        cfg: NodeConfig,
        driver: Driver,
        me: ProcessId,
        log: Option<EventLog>,
        rx: Receiver<Command>,
        shared: Arc<Shared>,
    ) -> Runtime {
        let addr = driver.local_addr();
        let engine = Engine::new(cfg.engine_config(), Member { id: me, addr })
            .with_max_joins_per_sec(cfg.max_joins_per_sec);
        let max_msg = driver.endpoint().config().max_message;
        Runtime {
            engine,
            me,
            addr,
            phase: NodePhase::Discovering,
            discovery: None,
            // §4.2.4: cold start is limited to the known set of sites. A process that is
            // not one of its own seeds (and has seeds) only ever joins.
            fresh: cfg.seeds.is_empty()
                || cfg.seeds.contains(&addr)
                || cfg.seeds.contains(&cfg.listen),
            join_contacts: Vec::new(),
            join_started: Time::ZERO,
            log,
            rx,
            shared,
            backlog: VecDeque::new(),
            blocked: Vec::new(),
            leaving: None,
            snapshot: None,
            known: HashMap::new(),
            last_members: Vec::new(),
            rx_buf: vec![0u8; max_msg],
            probe_buf: vec![0u8; sgmp_transport::wire::MAX_PROBE_PAYLOAD],
            probe_out: Vec::with_capacity(sgmp_transport::wire::MAX_PROBE_PAYLOAD),
            metrics: NodeMetrics::default(),
            metrics_at: Instant::now(),
            status_dirty: true,
            view_ts_us: 0,
            step_started: Instant::now(),
            heard_since: Time::ZERO,
            service: cfg.service_config().map(|c| CoreService::new(c, me)),
            client_ops: Vec::new(),
            driver,
            cfg,
        }
    }

    fn run(&mut self) {
        tracing::info!(node = %self.me, addr = %self.addr, "node started");
        self.begin_discovery(true);
        loop {
            loop {
                match self.rx.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        return self.stop();
                    }
                    Ok(c) => self.command(c),
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.step();
            let now = self.driver.now();
            let mut deadline = self.engine.poll_timeout();
            if let Some(d) = &self.discovery {
                deadline = crate::earliest(deadline, Some(d.deadline()));
            }
            if let Some(s) = &self.service {
                if self.engine.status() == Status::Member {
                    deadline = crate::earliest(deadline, Some(s.poll_timeout()));
                }
            }
            let mut wait = Duration::from_millis(100);
            if let Some(d) = deadline {
                wait = wait.min(Duration::from_micros(d.micros_since(now)));
            }
            if !self.backlog.is_empty() || self.leaving.is_some() {
                wait = wait.min(Duration::from_millis(2));
            }
            if let Err(e) = self.driver.drive(Some(wait)) {
                tracing::error!("socket error: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn stop(&mut self) {
        self.phase = NodePhase::Stopped;
        self.driver.flush();
        self.publish_status();
        tracing::info!(node = %self.me, "node stopped");
    }

    fn command(&mut self, c: Command) {
        self.step_started = Instant::now();
        match c {
            Command::Shutdown => {}
            Command::SetSnapshot(f, done) => {
                self.engine.set_snapshot(&f());
                self.snapshot = Some(f);
                let _ = done.send(());
            }
            Command::Fault(cmd, reply) => {
                let _ = reply.send(self.fault(cmd));
            }
            Command::SystemView(reply) => {
                let v = self
                    .service
                    .as_ref()
                    .filter(|s| s.synced() && self.engine.status() == Status::Member)
                    .map(|s| s.view().clone());
                let _ = reply.send(v);
            }
            Command::Leave(reply) => {
                let now = self.driver.now();
                if let Some((_, waiters)) = &mut self.leaving {
                    waiters.push(reply);
                    return;
                }
                if self.engine.status() == Status::Member {
                    tracing::info!(node = %self.me, "leaving the group");
                    self.engine.leave(now);
                    self.pump_events(now);
                    self.flush_transmits();
                    self.phase = NodePhase::Leaving;
                    let until = now + self.cfg.leave_linger_ms.saturating_mul(1000);
                    self.leaving = Some((until, vec![reply]));
                } else {
                    self.discovery = None;
                    self.phase = NodePhase::Left;
                    self.publish_status();
                    let _ = reply.send(());
                }
                self.status_dirty = true;
            }
        }
    }

    fn resolve(&self, peer: &str) -> Vec<SocketAddr> {
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

    fn fault(&mut self, cmd: FaultCommand) -> Result<String, String> {
        let local = self.addr;
        let mut addrs = Vec::new();
        if let FaultCommand::Partition(peers) | FaultCommand::Cut(peers) = &cmd {
            for p in peers {
                let a = self.resolve(p);
                if a.is_empty() {
                    return Err(format!("unknown peer {p:?}"));
                }
                addrs.extend(a);
            }
        }
        let Some(f) = self.driver.faults_mut() else {
            return Err("fault injection is off".into());
        };
        // The node sets no per-link faults, so any link shows the default.
        let current = f.link(local, local);
        let msg = match cmd {
            FaultCommand::Loss(p) => {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("loss must be in [0, 1] (got {p})"));
                }
                f.set_default(LinkFaults { loss: p, ..current });
                format!("loss set to {p}")
            }
            FaultCommand::Duplicate(p) => {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("duplication must be in [0, 1] (got {p})"));
                }
                f.set_default(LinkFaults {
                    duplicate: p,
                    ..current
                });
                format!("duplication set to {p}")
            }
            FaultCommand::Reorder { p, max_delay_us } => {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!("reordering must be in [0, 1] (got {p})"));
                }
                f.set_default(current.with_reorder(p, max_delay_us));
                format!("reordering set to {p} (up to {max_delay_us} us)")
            }
            FaultCommand::Heal => {
                f.heal_all();
                "partitions healed".into()
            }
            FaultCommand::Partition(_) => {
                for &a in &addrs {
                    f.partition_both(local, a);
                }
                let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                format!("partitioned from {}", list.join(", "))
            }
            FaultCommand::Cut(_) => {
                for &a in &addrs {
                    f.partition(local, a);
                }
                let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                format!("cut off sending to {}", list.join(", "))
            }
            FaultCommand::Clear => {
                f.heal_all();
                f.set_default(LinkFaults::PERFECT);
                "faults cleared".into()
            }
        };
        tracing::warn!(node = %self.me, "fault injection: {msg}");
        Ok(msg)
    }

    /// Starts (or restarts) discovery: queries to the seeds and the members known.
    fn begin_discovery(&mut self, log_start: bool) {
        let now = self.driver.now();
        let targets = self.targets();
        if log_start {
            if let Some(l) = &mut self.log {
                l.start(self.me, self.addr);
            }
        }
        self.discovery = Some(Discovery::new(
            self.me,
            self.fresh,
            !targets.is_empty(),
            self.cfg.coldstart_rounds,
            self.cfg.coldstart_round_ms.saturating_mul(1000),
            now,
        ));
        self.phase = NodePhase::Discovering;
        self.status_dirty = true;
    }

    fn targets(&self) -> Vec<SocketAddr> {
        let mut t: Vec<SocketAddr> = self.cfg.seeds.clone();
        t.extend(self.last_members.iter().map(|m| m.addr));
        t.retain(|a| *a != self.addr && *a != self.cfg.listen);
        t.sort();
        t.dedup();
        t
    }

    /// One pass over every input and output.
    fn step(&mut self) {
        self.step_started = Instant::now();
        let now = self.driver.now();
        // Probes: discovery queries and answers.
        while let Some((from, addr, n)) = self.driver.poll_probe(&mut self.probe_buf) {
            let payload = &self.probe_buf[..n];
            if service_wire::is_service(payload) {
                if let Some(s) = &mut self.service {
                    if self.engine.status() == Status::Member {
                        s.on_datagram(now, addr, payload, &self.engine);
                    }
                }
            } else if let Some(p) = Probe::decode(payload) {
                self.on_probe(now, from, addr, p);
            }
        }
        // Deliveries.
        while let Some((from, n)) = self.driver.poll_delivery(&mut self.rx_buf) {
            let _ = self
                .engine
                .handle_message(now, from, &self.rx_buf[..n.min(self.rx_buf.len())]);
        }
        // Transport signs of life (D20): any datagram accepted from a member's current
        // incarnation, even one whose messages wait behind a lost datagram, defers the
        // ring detector's suspicion. Datagrams stamped at `now` are given again next
        // step (harmless: older signs of life change nothing).
        for (peer, at) in self.driver.endpoint().heard_since(self.heard_since) {
            self.engine.peer_alive(at, peer);
        }
        self.heard_since = now;
        // Transport suspicions.
        while let Some(TransportEvent::PeerUnreachable(p)) = self.driver.poll_event() {
            tracing::debug!(node = %self.me, peer = %p, "transport: peer unreachable");
            self.engine.suspect(now, p);
        }
        // Discovery rounds.
        if let Some(d) = &mut self.discovery {
            match d.on_timeout(now) {
                Decision::Query => {
                    let cold = d.is_cold();
                    for a in self.targets() {
                        self.probe(a, &Probe::Query { cold });
                    }
                }
                Decision::Bootstrap => self.bootstrap(now),
                Decision::Join(c) => self.join(now, c),
                Decision::Wait => {}
            }
        }
        // Engine timers.
        if self.engine.poll_timeout().is_some_and(|t| t <= now) {
            self.engine.handle_timeout(now);
        }
        // The membership service: its timers, and the client changes it asks for.
        if let Some(s) = &mut self.service {
            if self.engine.status() == Status::Member {
                s.on_timeout(now, &self.engine);
                s.take_ops(&mut self.client_ops);
                if !self.client_ops.is_empty() {
                    self.engine.request_client_ops(now, &self.client_ops);
                }
            }
        }
        // A join that does not complete starts over as a new incarnation.
        if self.engine.status() == Status::Joining
            && now.micros_since(self.join_started) > self.cfg.join_timeout_ms * 1000
        {
            tracing::warn!(node = %self.me, "join timed out; trying again");
            self.new_incarnation(now);
        }
        // Send first, then publish events: the datagrams of this step do not wait behind
        // subscriber wake-ups and event-log writes (BENCHMARKS.md §3). Disconnects still
        // happen before the next delivery is handled.
        self.flush_transmits();
        self.driver.flush();
        self.pump_events(now);
        self.flush_transmits();
        self.pump_service();
        if let Some((until, _)) = &self.leaving {
            if now >= *until || self.delivered_all() {
                self.phase = NodePhase::Left;
                self.publish_status();
                tracing::info!(node = %self.me, "left the group");
                if let Some((_, waiters)) = self.leaving.take() {
                    for w in waiters {
                        let _ = w.send(());
                    }
                }
            }
        }
        if self.status_dirty {
            self.publish_status();
        }
        if self.metrics_at.elapsed() >= Duration::from_millis(20) {
            self.publish_metrics();
        }
    }

    /// Every message sent to the members of the last view was acknowledged.
    fn delivered_all(&self) -> bool {
        self.backlog.is_empty()
            && self.last_members.iter().all(|m| {
                m.id == self.me
                    || self
                        .driver
                        .endpoint()
                        .peer_stats(m.id)
                        .map(|s| s.frames_in_window == 0 || s.disconnected)
                        .unwrap_or(true)
            })
    }

    fn probe(&mut self, addr: SocketAddr, p: &Probe) {
        p.encode(&mut self.probe_out);
        match self.driver.send_probe(addr, &self.probe_out) {
            Ok(()) => self.metrics.probes_sent += 1,
            Err(e) => tracing::debug!(node = %self.me, %addr, "probe not sent: {e}"),
        }
    }

    fn on_probe(&mut self, now: Time, from: ProcessId, addr: SocketAddr, p: Probe) {
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
        // Answer queries.
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
                self.probe(addr, &a);
            }
        }
        if let Some(d) = &mut self.discovery {
            match d.on_probe(now, from, &p) {
                Decision::Join(c) => self.join(now, c),
                Decision::Bootstrap => self.bootstrap(now),
                Decision::Query | Decision::Wait => {}
            }
        }
    }

    fn bootstrap(&mut self, now: Time) {
        self.discovery = None;
        let me = Member {
            id: self.me,
            addr: self.addr,
        };
        tracing::info!(node = %self.me, "cold start: founding the group");
        self.engine.bootstrap(now, &[me]);
        if let Some(s) = &mut self.service {
            let v = self.engine.view();
            s.on_founded(v.version, &v.members);
        }
        self.publish(NodeEvent::Founded { me: self.me });
        self.status_dirty = true;
    }

    fn join(&mut self, now: Time, contacts: Vec<Member>) {
        self.discovery = None;
        tracing::info!(node = %self.me, contacts = contacts.len(), "joining the group");
        for c in &contacts {
            self.known.insert(c.id, c.addr);
        }
        self.join_contacts = contacts;
        self.join_started = now;
        self.engine.join(now, &self.join_contacts);
        self.phase = NodePhase::Joining;
        self.status_dirty = true;
    }

    /// Comes back as a new incarnation: fresh endpoint and engine, discovery again.
    fn new_incarnation(&mut self, now: Time) {
        let _ = now;
        let old = self.me;
        let me = ProcessId::new(old.node, old.incarnation + 1);
        self.me = me;
        self.driver.reset_endpoint(me);
        self.engine = Engine::new(
            self.cfg.engine_config(),
            Member {
                id: me,
                addr: self.addr,
            },
        )
        .with_max_joins_per_sec(self.cfg.max_joins_per_sec);
        if let Some(f) = &self.snapshot {
            self.engine.set_snapshot(&f());
        }
        self.service = self.cfg.service_config().map(|c| CoreService::new(c, me));
        self.backlog.clear();
        self.metrics.rejoins += 1;
        tracing::info!(old = %old, new = %me, "rejoining as a new incarnation");
        self.publish(NodeEvent::Rejoining { old, new: me });
        self.begin_discovery(true);
    }

    fn pump_events(&mut self, now: Time) {
        let mut rejoin = false;
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                Event::ViewInstalled { version, .. } => {
                    let view = self.engine.view().clone();
                    if let Some(l) = &mut self.log {
                        l.view(self.me, version, &view.members);
                    }
                    tracing::info!(
                        node = %self.me,
                        version,
                        members = ?view.members.iter().map(|m| m.id).collect::<Vec<_>>(),
                        "view installed"
                    );
                    for m in &view.members {
                        self.known.insert(m.id, m.addr);
                    }
                    self.last_members.clear();
                    self.last_members.extend_from_slice(&view.members);
                    if let Some(s) = &mut self.service {
                        s.on_view_installed(now, version, &self.engine);
                    }
                    if let Some(f) = &self.snapshot {
                        self.engine.set_snapshot(&f());
                    }
                    self.fresh = false;
                    self.phase = NodePhase::Member;
                    self.metrics.views_installed += 1;
                    self.view_ts_us = unix_micros();
                    // The status shows the view before anyone hears of it.
                    self.publish_status();
                    self.publish(NodeEvent::ViewInstalled { me: self.me, view });
                }
                Event::Suspected { peer } => {
                    self.driver.endpoint_mut().disconnect(peer);
                    if let Some(l) = &mut self.log {
                        l.suspect(self.me, peer);
                    }
                    tracing::info!(node = %self.me, peer = %peer, "suspect");
                    self.status_dirty = true;
                    self.publish(NodeEvent::Suspected { me: self.me, peer });
                }
                Event::Joined { version } => {
                    if let Some(l) = &mut self.log {
                        l.joined(self.me, version);
                    }
                    if let Some(s) = &mut self.service {
                        s.on_joined(version);
                    }
                    tracing::info!(node = %self.me, version, "joined");
                    let snapshot = self.engine.received_snapshot().to_vec();
                    self.publish(NodeEvent::Joined {
                        me: self.me,
                        version,
                        snapshot,
                    });
                }
                Event::Excluded { reason } => {
                    if reason == ExcludeReason::Left {
                        if let Some(l) = &mut self.log {
                            l.left(self.me);
                        }
                        self.publish(NodeEvent::Left { me: self.me });
                    } else {
                        if let Some(l) = &mut self.log {
                            l.excluded(self.me);
                        }
                        tracing::warn!(node = %self.me, ?reason, "excluded from the group");
                        self.publish(NodeEvent::Excluded {
                            me: self.me,
                            reason,
                        });
                        if self.cfg.auto_rejoin && self.leaving.is_none() {
                            rejoin = true;
                        } else {
                            self.phase = NodePhase::Excluded;
                            // Out for good: close the channels, so that the transport's
                            // acknowledgements and keepalives stop vouching for this
                            // process (D20) and the ring detector can report it.
                            for m in &self.last_members {
                                if m.id != self.me {
                                    self.driver.endpoint_mut().disconnect(m.id);
                                }
                            }
                        }
                    }
                    self.status_dirty = true;
                }
                Event::Reconfiguring { version } => {
                    if let Some(l) = &mut self.log {
                        l.reconfiguring(self.me, version);
                    }
                    tracing::info!(node = %self.me, version, "reconfiguring");
                    self.publish(NodeEvent::Reconfiguring {
                        me: self.me,
                        version,
                    });
                }
                Event::Submitted { version } => {
                    if let Some(l) = &mut self.log {
                        l.submitted(self.me, version);
                    }
                    self.publish(NodeEvent::Submitted {
                        me: self.me,
                        version,
                        at: self.step_started,
                    });
                }
            }
        }
        if rejoin {
            // Send what the old incarnation still had to say, then start over.
            self.flush_transmits();
            self.driver.flush();
            self.new_incarnation(now);
        }
    }

    /// The membership service's outputs: system views to publish and log, and its
    /// datagrams (as probes; when the probe queue is full, the driver writes it out).
    fn pump_service(&mut self) {
        let Some(s) = &mut self.service else {
            return;
        };
        let mut changes = Vec::new();
        while let Some(c) = s.poll_change() {
            changes.push(c);
        }
        while let Some((to, b)) = s.poll_datagram() {
            if self.driver.send_probe(to, &b).is_err() {
                self.driver.flush();
                if self.driver.send_probe(to, &b).is_err() {
                    s.unpoll_datagram((to, b));
                    break;
                }
            }
        }
        let (v, size, clients) = (s.view().version, s.view().size(), s.view().clients.len());
        let synced = s.synced();
        for change in changes {
            if let Some(l) = &mut self.log {
                l.system_view(self.me, &change);
            }
            self.publish(NodeEvent::SystemView {
                me: self.me,
                change,
            });
            self.status_dirty = true;
        }
        if self.status_dirty {
            let mut st = self.shared.status.lock();
            st.system_version = if synced { v } else { 0 };
            st.system_size = size;
            st.clients = clients;
        }
    }

    fn flush_transmits(&mut self) {
        // Parked messages first, in order per peer.
        self.blocked.clear();
        let mut i = 0;
        while i < self.backlog.len() {
            let p = &self.backlog[i];
            if self.blocked.contains(&p.to) {
                i += 1;
                continue;
            }
            match self.driver.send(p.to, p.addr, &p.bytes) {
                Ok(()) => {
                    self.backlog.remove(i);
                }
                Err(SendError::WindowFull) => {
                    self.blocked.push(p.to);
                    i += 1;
                }
                Err(e) => {
                    self.metrics.send_refused += 1;
                    tracing::debug!(node = %self.me, to = %p.to, "message refused: {e}");
                    self.backlog.remove(i);
                }
            }
        }
        while let Some(t) = self.engine.poll_transmit() {
            let parked = self.blocked.contains(&t.to) || self.backlog.iter().any(|p| p.to == t.to);
            let res = if parked {
                Err(SendError::WindowFull)
            } else {
                self.driver.send(t.to, t.addr, t.payload)
            };
            match res {
                Ok(()) => {}
                Err(SendError::WindowFull) => {
                    if self.backlog.len() >= BACKLOG_CAP {
                        self.metrics.backlog_overflow += 1;
                        tracing::error!(node = %self.me, to = %t.to, "send backlog full: message lost");
                    } else {
                        self.metrics.backlogged += 1;
                        self.backlog.push_back(Parked {
                            to: t.to,
                            addr: t.addr,
                            bytes: t.payload.to_vec(),
                        });
                    }
                    if !self.blocked.contains(&t.to) {
                        self.blocked.push(t.to);
                    }
                }
                Err(e) => {
                    self.metrics.send_refused += 1;
                    tracing::debug!(node = %self.me, to = %t.to, "message refused: {e}");
                }
            }
        }
    }

    /// Queues `ev` to every subscriber, stamped with the start of the current step.
    fn publish(&mut self, ev: NodeEvent) {
        let at = self.step_started;
        let mut subs = self.shared.subscribers.lock();
        subs.retain(|s| {
            match s.tx.try_send(TimedEvent {
                at,
                event: ev.clone(),
            }) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                    self.metrics.events_dropped += 1;
                    true
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }

    fn publish_status(&mut self) {
        self.status_dirty = false;
        let phase = match (self.phase, self.engine.status()) {
            (NodePhase::Leaving | NodePhase::Left | NodePhase::Stopped, _) => self.phase,
            (_, Status::Member) => NodePhase::Member,
            (_, Status::Joining) => NodePhase::Joining,
            _ => self.phase,
        };
        let mut s = self.shared.status.lock();
        s.me = self.me;
        s.addr = self.addr;
        s.phase = phase;
        if self.engine.status() == Status::Member {
            s.view.clone_from(self.engine.view());
            s.view_ts_us = self.view_ts_us;
        } else if phase != NodePhase::Left && phase != NodePhase::Stopped {
            s.view = View::with_capacity(0);
        }
        s.leader = self.engine.leader();
        s.is_mgr = self.engine.is_mgr();
        s.faulty = self.engine.faulty().to_vec();
        s.rejoins = self.metrics.rejoins;
    }

    fn publish_metrics(&mut self) {
        self.metrics_at = Instant::now();
        self.metrics.engine = *self.engine.stats();
        self.metrics.transport = self.driver.endpoint().stats();
        self.metrics.driver = self.driver.stats();
        self.metrics.backlog_len = self.backlog.len() as u64;
        if let Some(s) = &self.service {
            self.metrics.service = *s.stats();
        }
        *self.shared.metrics.lock() = self.metrics;
    }
}

#[cfg(test)]
mod tests;
