//! `sgmpd`: flags and config merging, local resources, the control socket server,
//! the metrics endpoint, signal handling.
//!
//! Start-up order: the settings are read and checked (names resolved), then every local
//! resource is acquired (control socket, event log, state file, metrics listener), and
//! only then does the node start: a daemon that cannot serve never joins the group.

mod args;
mod metrics;
mod server;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sgmp_membership::node::{
    EventLog, NodeConfig, NodeConfigError, NodeError, NodeEvent, NodeHandle, NodePhase,
};
use sgmp_membership::Node;

pub use args::{command, DaemonArgs, Settings};
pub use metrics::{render as render_metrics, EventCounters, LATENCY_BUCKETS};
pub use server::{handle, ControlOptions, MAX_CONNECTIONS, MAX_REQUEST_BYTES, READ_TIMEOUT};

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    /// The node could not start.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// A required setting is missing.
    #[error("{0}")]
    Missing(&'static str),
    /// A setting has a value that cannot be used; the message names the flag (or the
    /// config key and file) it came from.
    #[error("{0}")]
    Invalid(String),
    /// A host name in `--listen` or `--seeds` could not be resolved.
    #[error("{flag}: cannot resolve {addr:?}: {message}")]
    Resolve {
        /// The flag (or config key) holding the address.
        flag: String,
        /// The address as given.
        addr: String,
        /// Why it could not be resolved.
        message: String,
    },
    /// The control socket could not be created.
    #[error("cannot create control socket {path}: {source}")]
    Control {
        /// The socket path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The event log or the state file cannot be used.
    #[error("cannot use {what} {path}: {source}")]
    LocalFile {
        /// `event log` or `state file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The metrics listener could not be bound.
    #[error("--metrics-listen {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Client mode could not start (socket or event log).
    #[error("client mode: {0}")]
    Client(std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// A restart after the node was a member: it must not cold-start (§4.2.4 is for the
/// initial formation only), so its own address leaves the seed list and the node only
/// joins. A node that is its own only seed keeps it (nobody else can hold the group).
fn recovering(c: &mut NodeConfig) {
    let own = [c.listen];
    let others: Vec<SocketAddr> = c
        .seeds
        .iter()
        .copied()
        .filter(|a| !own.contains(a))
        .collect();
    if !others.is_empty() {
        tracing::info!("state file present: recovering process, join only");
        c.seeds = others;
    }
}

/// Creates the state file (node id, then the first version installed), durably.
fn write_state_file(path: &Path, node: &str, version: u64) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    writeln!(f, "{node} member since version {version}")?;
    f.sync_all()
}

/// Checks that the event log can be opened for appending (the node opens it again).
fn check_event_log(path: &Path) -> Result<(), DaemonError> {
    EventLog::open(path)
        .map(drop)
        .map_err(|source| DaemonError::LocalFile {
            what: "event log",
            path: path.to_path_buf(),
            source,
        })
}

/// Checks that the state file can be read (it exists) or created later (its directory
/// takes a new file): a probe file is created and removed next to it.
fn check_state_file(path: &Path) -> Result<(), DaemonError> {
    let err = |source| DaemonError::LocalFile {
        what: "state file",
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        return std::fs::File::open(path).map(drop).map_err(err);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    let probe = dir.join(format!(".{name}.probe-{}", std::process::id()));
    std::fs::File::create(&probe).map_err(err)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Removes the control socket file when dropped (every exit path after the bind).
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the daemon until SIGTERM/SIGINT (graceful leave, then exit) or a `leave`
/// through the control socket.
pub fn run(args: DaemonArgs) -> Result<(), DaemonError> {
    let settings = Settings::from_args(&args)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    // Every local resource before the node starts.
    let mut _socket_file = None;
    let listener = match &settings.control {
        Some(c) => match server::bind_control(&c.path) {
            Ok(l) => {
                _socket_file = Some(SocketFile(c.path.clone()));
                Some((l, c.path.clone()))
            }
            Err(e) if !c.explicit => {
                tracing::warn!("{e}; running without a control socket (give --control PATH)");
                None
            }
            Err(e) => return Err(e),
        },
        None => None,
    };
    if let Some(p) = &settings.node.event_log {
        check_event_log(p)?;
    }
    if let Some(p) = &settings.state_file {
        check_state_file(p)?;
    }
    let metrics_listener = match settings.metrics_listen {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .map_err(|source| DaemonError::Metrics { addr, source })?,
        ),
        None => None,
    };
    let node_cell: Arc<OnceLock<Arc<NodeHandle>>> = Arc::new(OnceLock::new());
    if let Some((l, path)) = listener {
        let opts = ControlOptions {
            fault_injection: settings.fault_injection,
        };
        let node = Arc::clone(&node_cell);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("sgmpd-control".into())
            .spawn(move || server::serve(l, node, stop, opts, path.clone()))
            .map_err(|source| DaemonError::Control {
                path: settings
                    .control
                    .as_ref()
                    .map(|c| c.path.clone())
                    .unwrap_or_default(),
                source,
            })?;
    }
    let counters = Arc::new(parking_lot::Mutex::new(metrics::EventCounters::default()));
    if let Some(l) = metrics_listener {
        let node = Arc::clone(&node_cell);
        let counters = Arc::clone(&counters);
        let addr = settings
            .metrics_listen
            .unwrap_or_else(|| ([0, 0, 0, 0], 0).into());
        std::thread::Builder::new()
            .name("sgmpd-metrics".into())
            .spawn(move || metrics::serve(l, node, counters))
            .map_err(|source| DaemonError::Metrics { addr, source })?;
    }
    let mut cfg = settings.node.clone();
    if let Some(p) = &settings.state_file {
        if p.exists() {
            recovering(&mut cfg);
        }
    }
    let cfg = if settings.client {
        match crate::client_mode::run(settings.core_eligible, cfg, &stop)? {
            Some(promoted) => promoted,
            None => return Ok(()),
        }
    } else {
        cfg
    };
    let node = Arc::new(Node::start(cfg)?);
    if settings.metrics_listen.is_some() {
        let node = Arc::clone(&node);
        // Best effort: without this thread only the event-counted figures stay at 0.
        let _ = std::thread::Builder::new()
            .name("sgmpd-events".into())
            .spawn(move || metrics::count_events(node, counters));
    }
    let _ = node_cell.set(Arc::clone(&node));
    // The state file is written on the first view installed, as soon as the event
    // arrives (the subscription is taken before the node can have joined).
    let mut events = match &settings.state_file {
        Some(p) if !p.exists() => Some((p.clone(), node.subscribe())),
        _ => None,
    };
    while !stop.load(Ordering::Relaxed) {
        let Some((path, sub)) = &events else {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        if let Some(NodeEvent::ViewInstalled { me, view }) =
            sub.recv_timeout(Duration::from_millis(20))
        {
            match write_state_file(path, &me.to_string(), view.version) {
                // Unsubscribed from here on (no events pile up unread).
                Ok(()) => events = None,
                Err(e) => tracing::warn!("cannot write {}: {e}", path.display()),
            }
        }
    }
    let phase = node.status().phase;
    if phase != NodePhase::Left {
        tracing::info!("signal received: leaving the group");
        if let Err(e) = node.leave(Duration::from_secs(3)) {
            tracing::warn!("leaving the group: {e}");
        }
    }
    node.shutdown();
    tracing::info!("sgmpd exiting");
    Ok(())
}
