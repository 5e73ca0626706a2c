//! `sgmpd`: flags and config merging, local resources, the control socket server,
//! the metrics endpoint, signal handling.
//!
//! Start-up order: the settings are read and checked (names resolved), then every local
//! resource is acquired (control socket, event log, metrics listener), and only then
//! does the node start (which opens its state directory before its UDP socket): a
//! daemon that cannot serve never joins the group.

mod args;
mod metrics;
mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sgmp_membership::node::{EventLog, NodeConfigError, NodeError, NodeHandle, NodePhase};
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
    /// The event log cannot be used.
    #[error("cannot use {what} {path}: {source}")]
    LocalFile {
        /// `event log`.
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
    /// The node stopped by itself: its durable state could not be saved (the event
    /// log's `storage_failed` record says why). A supervisor restarts it once the disk
    /// is fixed.
    #[error("the node stopped: its state could not be saved (see the log)")]
    NodeStopped,
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

/// Removes the control socket file when dropped (every exit path after the bind), if
/// it is still the one this daemon bound (device and inode): a socket another daemon
/// bound at the path since is left alone.
struct SocketFile {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl SocketFile {
    fn new(path: PathBuf) -> SocketFile {
        let id = file_id(&path);
        SocketFile { path, id }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.id.is_some() && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT (graceful leave, then exit) or a `leave`
/// through the control socket. SIGHUP reopens the event log (after a rotation).
pub fn run(args: DaemonArgs) -> Result<(), DaemonError> {
    let settings = Settings::from_args(&args)?;
    // A CPU the daemon may not use is refused now, not when a client is promoted.
    if let Some(cpu) = settings.node.cpu {
        sgmp_membership::node::check_cpu(cpu).map_err(|source| NodeError::Cpu { cpu, source })?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    // SIGHUP: a log rotation renamed the event log; open its path again.
    let reopen = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reopen))
        .map_err(DaemonError::Signals)?;
    // Every local resource before the node starts.
    let mut _socket_file = None;
    let listener = match &settings.control {
        Some(c) => match server::bind_control(&c.path) {
            Ok(l) => {
                _socket_file = Some(SocketFile::new(c.path.clone()));
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
    let cfg = settings.node.clone();
    let cfg = if settings.client {
        match crate::client_mode::run(settings.core_eligible, cfg, &stop, &reopen)? {
            Some(promoted) => promoted,
            None => return Ok(()),
        }
    } else {
        cfg
    };
    let node = match settings.listen_fd {
        Some(fd) => {
            // SAFETY: `Settings::from_args` checked that `fd` is an open, bound UDP
            // socket; the daemon takes it over here, once, and nothing else uses it.
            let socket =
                unsafe { <std::net::UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            Arc::new(Node::start_on(cfg, socket)?)
        }
        None => Arc::new(Node::start(cfg)?),
    };
    if settings.metrics_listen.is_some() {
        let node = Arc::clone(&node);
        // Best effort: without this thread only the event-counted figures stay at 0.
        let _ = std::thread::Builder::new()
            .name("sgmpd-events".into())
            .spawn(move || metrics::count_events(node, counters));
    }
    let _ = node_cell.set(Arc::clone(&node));
    while !stop.load(Ordering::Relaxed) {
        if node.status().phase == NodePhase::Stopped {
            // Only a failed save stops a running node (a shutdown is ours to give):
            // exit with an error rather than stay up as a process that is no member.
            node.shutdown();
            return Err(DaemonError::NodeStopped);
        }
        if reopen.swap(false, Ordering::Relaxed) {
            // The node logs the outcome (and keeps the old file if the path fails).
            let _ = node.reopen_event_log(Duration::from_secs(3));
        }
        std::thread::sleep(Duration::from_millis(20));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// At exit the daemon removes its socket file, not one bound at the path since.
    #[test]
    fn the_socket_file_is_removed_only_if_it_is_still_ours() {
        let dir = std::env::temp_dir().join(format!("sgmp-sockfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.sock");
        std::fs::write(&path, "ours").unwrap();
        drop(SocketFile::new(path.clone()));
        assert!(!path.exists(), "ours is removed");
        std::fs::write(&path, "ours").unwrap();
        let ours = SocketFile::new(path.clone());
        // Another daemon replaced it (a new inode at the same path: made while ours
        // still exists, so its number cannot be ours reused).
        let keep = dir.join("keep");
        std::fs::write(&keep, "theirs").unwrap();
        std::fs::rename(&keep, &path).unwrap();
        drop(ours);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "theirs");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
