//! The node: the sans-IO [`NodeCore`] (engine, transport endpoint, discovery and cold
//! start, send backlog, the membership service, rejoin), driven by a runtime thread
//! around the mio [`Driver`]; a [`NodeHandle`] gives the application the current view, a
//! subscription to events, `leave`, `shutdown`, fault injection and the state-transfer
//! callbacks. The deterministic simulator (`sgmp-sim`) drives the same [`NodeCore`].
//!
//! Files, one job each:
//! - [`core`]: the node core (every protocol decision and the glue between engine and
//!   transport);
//! - [`coldstart`]: discovery and cold start (§4.2.4);
//! - [`runtime`]: the loop thread (clock, socket, commands, publication);
//! - `handle`: [`NodeHandle`] and what it shares with the loop;
//! - [`event`], [`status`]: what is published; [`eventlog`]: the JSON-lines log;
//! - [`fault`]: run-time fault commands; [`config`]: the settings;
//! - [`alerts`]: rate-limited warnings about silent failures (no seed answers, bad tags).
//!
//! Before it is a member, the node runs discovery ([`coldstart`]): it founds the group
//! or joins it. When excluded, it comes back (with `auto_rejoin`) as a new incarnation
//! (`incarnation + 1`) with a fresh transport endpoint and engine, and joins again
//! through the members it knew and the seeds. See `docs/ARCHITECTURE.md` for the path
//! of one datagram through these layers.

mod affinity;
pub mod alerts;
pub mod coldstart;
pub mod config;
pub mod core;
pub mod durable;
pub mod event;
pub mod eventlog;
pub mod fault;
mod handle;
mod notify;
pub mod recovery;
pub mod runtime;
pub mod status;

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;
use sgmp_transport::{Driver, DriverConfig, FaultLayer, LinkFaults};

use crate::view::View;
use crate::ProcessId;

pub use self::core::{
    CoreConfig, CoreEvent, CoreStats, NodeCore, NodePhase, TapRecord, BACKLOG_CAP, KNOWN_CAP,
    SERVICE_OUT_CAP,
};
pub use affinity::{check_cpu, current_thread_cpus};
pub use coldstart::{Decision, Discovery, Probe};
pub use config::{
    read_config_file, FaultSettings, NodeConfig, NodeConfigError, NodeIdle, DEFAULT_WARM_UP_US,
    MAX_CONFIG_BYTES, MAX_INCARNATION, MIN_WARM_US,
};
pub use durable::{Ballot, DirStorage, Durable, MemStorage, Storage, StorageError};
pub use event::{NodeEvent, Subscription, TimedEvent, SUBSCRIBER_QUEUE};
pub use eventlog::{monotonic_micros, unix_micros, EventLog};
pub use fault::FaultCommand;
pub use handle::{HandleError, NodeHandle, SnapshotProvider};
pub use recovery::RecoveryStatus;
pub use status::{Departed, Departure, NodeMetrics, NodeStatus, DEPARTED_CAP};

use handle::{Shared, Subscribers};
use runtime::Runtime;

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
    /// The state directory cannot be used (unreadable, corrupt, another node's).
    #[error(transparent)]
    State(#[from] StorageError),
    /// The loop thread could not be spawned.
    #[error("cannot start the node thread: {0}")]
    Thread(std::io::Error),
    /// The loop thread could not be pinned to the CPU of [`NodeConfig::cpu`]: not one
    /// the process may use (absent, offline, outside its `taskset` or cpuset).
    #[error("cannot run the node on CPU {cpu}: {source}")]
    Cpu {
        /// The CPU.
        cpu: usize,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Starts nodes. See the [module docs](self).
///
/// ```
/// use std::time::Duration;
/// use sgmp_membership::node::{Node, NodeConfig, NodeEvent};
///
/// // The founder, then a joiner seeded with its address; the founder's application
/// // state is handed to the joiner (set before start: no joiner can miss it).
/// let a = NodeConfig::from_toml_str("id = \"doc-a\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
/// let (a, _) = Node::start_with(a, Some(Box::new(|| b"state".to_vec()))).unwrap();
/// let b = NodeConfig::from_toml_str(&format!(
///     "id = \"doc-b\"\nlisten = \"127.0.0.1:0\"\nseeds = [\"{}\"]\n",
///     a.local_addr()
/// ))
/// .unwrap();
/// let (b, events) = Node::start_subscribed(b).unwrap();
/// let mut snapshot = None;
/// while let Some(ev) = events.recv_timeout(Duration::from_secs(20)) {
///     match ev {
///         NodeEvent::Joined { snapshot: s, .. } => snapshot = Some(s),
///         NodeEvent::ViewInstalled { view, .. } if view.members.len() == 2 => break,
///         _ => {}
///     }
/// }
/// assert_eq!(snapshot.as_deref(), Some(&b"state"[..]));
/// assert_eq!(b.view().members.len(), 2);
/// b.shutdown();
/// a.shutdown();
/// ```
#[derive(Debug)]
pub struct Node;

impl Node {
    /// Validates `config`, binds the UDP socket (`config.listen`), opens the event log and
    /// starts the loop thread, which begins discovery at once.
    pub fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
        Node::start_inner(config, None, None, None)
    }

    /// Like [`Node::start`] on a UDP socket the caller bound already, instead of binding
    /// `config.listen`: `config.listen` becomes the socket's address (it is how the node
    /// recognizes itself among its seeds). The node owns the socket from now on.
    ///
    /// This is how tests get ports without a race: bind every socket to port 0, pass
    /// their addresses as seeds, then start each node on its socket (binding, dropping
    /// and binding the port again lets another test take it in between). See
    /// [`Driver::from_socket_core`].
    pub fn start_on(config: NodeConfig, socket: UdpSocket) -> Result<NodeHandle, NodeError> {
        Node::start_inner(config, Some(socket), None, None)
    }

    /// Like [`Node::start`], with a subscription made before the loop starts, so that
    /// no event is missed (a node without seeds founds its group at once, before a
    /// later [`NodeHandle::subscribe`] could run).
    pub fn start_subscribed(config: NodeConfig) -> Result<(NodeHandle, Subscription), NodeError> {
        Node::start_with(config, None)
    }

    /// Like [`Node::start_subscribed`], with the function producing the application
    /// snapshot handed to joiners (State-Xfer) in place before the loop starts: the
    /// loop takes a first snapshot before discovery begins, so even a joiner that
    /// arrives at once gets it. The function runs on the loop thread, then again
    /// after every view change; keep it quick. See
    /// [`NodeHandle::set_snapshot_provider`] to change it later.
    pub fn start_with(
        config: NodeConfig,
        snapshot: Option<SnapshotProvider>,
    ) -> Result<(NodeHandle, Subscription), NodeError> {
        let mut sub = None;
        let h = Node::start_inner(config, None, Some(&mut sub), snapshot)?;
        let sub = sub.expect("subscribed before start");
        Ok((h, sub))
    }

    /// [`Node::start_subscribed`] on a socket bound already (see [`Node::start_on`]).
    pub fn start_subscribed_on(
        config: NodeConfig,
        socket: UdpSocket,
    ) -> Result<(NodeHandle, Subscription), NodeError> {
        let mut sub = None;
        let h = Node::start_inner(config, Some(socket), Some(&mut sub), None)?;
        let sub = sub.expect("subscribed before start");
        Ok((h, sub))
    }

    fn start_inner(
        config: NodeConfig,
        socket: Option<UdpSocket>,
        pre_subscribe: Option<&mut Option<Subscription>>,
        snapshot: Option<SnapshotProvider>,
    ) -> Result<NodeHandle, NodeError> {
        let cpu = config.cpu;
        let (mut rt, handle) = Node::build(config, socket, pre_subscribe, snapshot)?;
        // The thread pins itself before its first step and says how that went: no
        // step of a node asked to run on a CPU runs anywhere else.
        let (pinned_tx, pinned_rx) = std::sync::mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("sgmp-{}", handle.shared.status.lock().me.node))
            .spawn(move || {
                let pinned = cpu.map_or(Ok(()), affinity::pin_current_thread);
                let ok = pinned.is_ok();
                let _ = pinned_tx.send(pinned);
                if ok {
                    rt.run();
                }
            })
            .map_err(NodeError::Thread)?;
        if let Some(cpu) = cpu {
            let failed = match pinned_rx.recv() {
                Ok(Ok(())) => None,
                Ok(Err(source)) => Some(NodeError::Cpu { cpu, source }),
                Err(_) => Some(NodeError::Thread(std::io::Error::other(
                    "the node thread ended before its first step",
                ))),
            };
            if let Some(e) = failed {
                let _ = thread.join();
                return Err(e);
            }
        }
        let _ = handle.loop_thread.set(thread.thread().id());
        *handle.thread.lock() = Some(thread);
        Ok(handle)
    }

    /// Everything [`Node::start`] makes, before the loop thread: the loop's state and
    /// the handle (its thread not set). Tests run the loop on their own thread.
    fn build(
        mut config: NodeConfig,
        socket: Option<UdpSocket>,
        pre_subscribe: Option<&mut Option<Subscription>>,
        snapshot: Option<SnapshotProvider>,
    ) -> Result<(Runtime, NodeHandle), NodeError> {
        if let Some(s) = &socket {
            config.listen = s.local_addr().map_err(|source| NodeError::Bind {
                addr: config.listen,
                source,
            })?;
        }
        config.validate()?;
        let name = config.node_id()?;
        let incarnation = config.incarnation.unwrap_or_else(unix_micros).max(1);
        let me = ProcessId::new(name, incarnation);
        let keys = config.keyring()?;
        // Local resources before the socket: the durable state first.
        let (storage, loaded) = match &config.state_dir {
            Some(dir) => {
                let (s, d) = DirStorage::open(dir, name.as_str(), config.cluster_id)?;
                (Some(Box::new(s) as Box<dyn Storage>), d)
            }
            None => (None, None),
        };
        let mut dc = DriverConfig::new(config.listen, me);
        // With the membership service on, thousands of clients' hellos arrive between
        // two reads of the socket when the loop is not scheduled for a while: room for
        // a few more milliseconds of them (the kernel caps it at net.core.rmem_max).
        dc.recv_buffer_bytes = if config.max_clients > 0 {
            4 << 20
        } else {
            1 << 20
        };
        dc.send_buffer_bytes = 1 << 20;
        dc.fault_queue = 1024;
        dc.idle = config.idle.strategy();
        dc.warm_every_us = (config.warm_us > 0).then_some(config.warm_us);
        let mut faults = FaultLayer::new(config.faults.seed);
        faults.set_default(LinkFaults::lossy(config.faults.loss));
        dc.faults = Some(faults);
        // The core (its `Member` record, discovery) uses the advertised address; the
        // socket stays bound to `listen`.
        let make_core = |bound| {
            let addr = config.advertised(bound);
            NodeCore::new(config.core_config(addr, keys), me, addr).with_durable(loaded, storage)
        };
        let driver = match socket {
            Some(s) => Driver::from_socket_core(dc, s, make_core),
            None => Driver::bind_core(dc, make_core),
        }
        .map_err(|source| NodeError::Bind {
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
        // A durable state may have raised the incarnation.
        let me = driver.core().me();
        let waker = driver.waker();
        let shared = Arc::new(Shared {
            status: Mutex::new(NodeStatus {
                me,
                addr: config.advertised(addr),
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
                recovery: None,
                departed: Vec::new(),
                tags: crate::TagSet::new(),
            }),
            metrics: Mutex::new(NodeMetrics::default()),
            subscribers: Mutex::new(Subscribers::default()),
            received: Mutex::new(Vec::new()),
        });
        if let Some(slot) = pre_subscribe {
            *slot = Some(shared.subscribe());
        }
        let (tx, rx) = mpsc::channel();
        let rt = Runtime::new(
            driver,
            log,
            rx,
            Arc::clone(&shared),
            snapshot,
            config.yield_before_publish,
            config.publish_after_round,
        );
        let handle = NodeHandle {
            shared,
            tx,
            waker,
            thread: Mutex::new(None),
            loop_thread: std::sync::OnceLock::new(),
            addr,
        };
        Ok((rt, handle))
    }
}

#[cfg(test)]
mod exclusion_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod save_order_tests;
#[cfg(test)]
mod tests;
