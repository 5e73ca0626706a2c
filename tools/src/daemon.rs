//! `sgmpd`: flags and config merging, the control socket server, signal handling.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use serde_json::{json, Value};
use sgmp_membership::node::{
    FaultCommand, NodeConfig, NodeConfigError, NodeError, NodeEvent, NodeHandle, NodePhase,
};
use sgmp_membership::Node;

use crate::control::Request;

/// Command-line flags of `sgmpd`. Flags override the config file.
#[derive(Parser, Debug, Clone)]
#[command(name = "sgmpd", version, about = "An S-GMP group membership daemon")]
pub struct DaemonArgs {
    /// Node name (printable ASCII, no '#' or space, at most 31 bytes).
    #[arg(long)]
    pub id: Option<String>,
    /// UDP address to listen on (e.g. 127.0.0.1:7401).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Seed addresses, comma-separated (the known sites queried at cold start).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<SocketAddr>>,
    /// Append events (views, exclusion, suspicions) as JSON lines to this file.
    #[arg(long)]
    pub event_log: Option<PathBuf>,
    /// Unix socket for sgmpctl (created with mode 0600).
    #[arg(long)]
    pub control: Option<PathBuf>,
    /// Heartbeat interval, ms.
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Suspicion timeout, ms.
    #[arg(long)]
    pub suspect_ms: Option<u64>,
    /// Protocol timeout, ms.
    #[arg(long)]
    pub protocol_timeout_ms: Option<u64>,
    /// Cold start rounds before founding the group.
    #[arg(long)]
    pub coldstart_rounds: Option<u32>,
    /// Cold start round length, ms.
    #[arg(long)]
    pub coldstart_round_ms: Option<u64>,
    /// Cluster id.
    #[arg(long)]
    pub cluster_id: Option<u64>,
    /// Do not rejoin as a new incarnation after being excluded.
    #[arg(long)]
    pub no_auto_rejoin: bool,
    /// TOML config file (same field names as the flags, with underscores).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// File holding the cluster key(s) (one or two lines of 64 hex digits, or 32 raw
    /// bytes; mode 0600). Every datagram is then authenticated. The key itself is never
    /// accepted on the command line.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Join requests handled per second (0: no cap).
    #[arg(long)]
    pub max_joins_per_sec: Option<u32>,
    /// Durable marker that this node has been a member. The daemon creates it when the
    /// node first installs a view; a daemon that starts while it exists is a process
    /// recovering from a crash, not a cold start: its own address is dropped from the
    /// seeds so that it only ever joins and can never found a second group while the
    /// group lives on (`docs/PROTOCOL.md` §6). Delete it only when the whole group is
    /// known to be gone.
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Run as a client of the membership service instead of a core member: register
    /// with the core at `--seeds`, heartbeat, and log every system view
    /// (`docs/SERVICE.md`). A removed client comes back as a new incarnation (unless
    /// `--no-auto-rejoin`).
    #[arg(long)]
    pub client: bool,
    /// (Client) May be promoted into the core when it is short of `--target-core`
    /// members: the client then joins the core with the same process id.
    #[arg(long)]
    pub core_eligible: bool,
    /// Most registered clients of the membership service (0 turns the service off).
    #[arg(long)]
    pub max_clients: Option<usize>,
    /// Client heartbeat (hello) period, ms.
    #[arg(long)]
    pub client_heartbeat_ms: Option<u64>,
    /// Silence after which a client's watcher reports it for removal, ms.
    #[arg(long)]
    pub client_timeout_ms: Option<u64>,
    /// Core size the mgr keeps by promoting core-eligible clients (default 5; 0: none).
    #[arg(long)]
    pub target_core: Option<usize>,
    /// How the loop waits for datagrams: `block` (epoll) or `recv` (blocking read).
    #[arg(long, value_parser = parse_idle)]
    pub idle: Option<sgmp_membership::node::NodeIdle>,
}

fn parse_idle(s: &str) -> Result<sgmp_membership::node::NodeIdle, String> {
    match s {
        "block" => Ok(sgmp_membership::node::NodeIdle::Block),
        "recv" => Ok(sgmp_membership::node::NodeIdle::Recv),
        other => Err(format!("{other:?} is not an idle strategy (block, recv)")),
    }
}

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
    /// The control socket could not be created.
    #[error("cannot create control socket {path}: {source}")]
    Control {
        /// The socket path.
        path: PathBuf,
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

impl DaemonArgs {
    /// The node configuration: the file (if any), then the flags.
    pub fn node_config(&self) -> Result<NodeConfig, DaemonError> {
        let mut c = match &self.config {
            Some(p) => NodeConfig::load(p)?,
            None => NodeConfig::default(),
        };
        let from_file = self.config.is_some();
        match &self.id {
            Some(id) => c.id = id.clone(),
            None if from_file && c.id != NodeConfig::default().id => {}
            None => {
                return Err(DaemonError::Missing(
                    "--id NAME is required (or `id` in --config)",
                ))
            }
        }
        if let Some(a) = self.listen {
            c.listen = a;
        }
        if let Some(s) = &self.seeds {
            c.seeds = s.clone();
        }
        if let Some(p) = &self.event_log {
            c.event_log = Some(p.clone());
        }
        if let Some(v) = self.heartbeat_ms {
            c.heartbeat_ms = v;
        }
        if let Some(v) = self.suspect_ms {
            c.suspect_ms = v;
        }
        if let Some(v) = self.protocol_timeout_ms {
            c.protocol_timeout_ms = v;
        }
        if let Some(v) = self.coldstart_rounds {
            c.coldstart_rounds = v;
        }
        if let Some(v) = self.coldstart_round_ms {
            c.coldstart_round_ms = v;
        }
        if let Some(v) = self.cluster_id {
            c.cluster_id = v;
        }
        if self.no_auto_rejoin {
            c.auto_rejoin = false;
        }
        if let Some(p) = &self.key_file {
            c.key_file = Some(p.clone());
        }
        if let Some(v) = self.max_joins_per_sec {
            c.max_joins_per_sec = v;
        }
        if let Some(v) = self.max_clients {
            c.max_clients = v;
        }
        if let Some(v) = self.client_heartbeat_ms {
            c.client_heartbeat_ms = v;
        }
        if let Some(v) = self.client_timeout_ms {
            c.client_timeout_ms = v;
        }
        if let Some(v) = self.target_core {
            c.target_core = v;
        }
        if let Some(v) = self.idle {
            c.idle = v;
        }
        if let Some(p) = &self.state_file {
            if p.exists() {
                recovering(&mut c);
            }
        }
        c.validate()?;
        Ok(c)
    }
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

/// Runs the daemon until SIGTERM/SIGINT (graceful leave, then exit) or a `leave`
/// through the control socket.
pub fn run(args: DaemonArgs) -> Result<(), DaemonError> {
    let cfg = args.node_config()?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(DaemonError::Signals)?;
    }
    let cfg = if args.client {
        match crate::client_mode::run(&args, cfg, &stop)? {
            Some(promoted) => promoted,
            None => return Ok(()),
        }
    } else {
        cfg
    };
    let node = Arc::new(Node::start(cfg)?);
    let listener = match &args.control {
        Some(p) => Some(bind_control(p)?),
        None => None,
    };
    if let (Some(l), Some(p)) = (listener, &args.control) {
        let node = Arc::clone(&node);
        let stop = Arc::clone(&stop);
        let path = p.clone();
        std::thread::Builder::new()
            .name("sgmpd-control".into())
            .spawn(move || serve(l, &node, &stop, &path))
            .map_err(|source| DaemonError::Control {
                path: p.clone(),
                source,
            })?;
    }
    // The state file is written on the first view installed, as soon as the event
    // arrives (the subscription is taken before the node can have joined).
    let mut events = match &args.state_file {
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
        node.leave(Duration::from_secs(3));
    }
    node.shutdown();
    if let Some(p) = &args.control {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("sgmpd exiting");
    Ok(())
}

/// Binds the control socket with mode 0600 (a stale socket file is replaced; a live
/// one is an error).
fn bind_control(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::Control {
        path: path.to_path_buf(),
        source,
    };
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another daemon is listening on it",
            )));
        }
        std::fs::remove_file(path).map_err(err)?;
    }
    // Created with no group or other permissions from the start, then set exactly.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let l = l.map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

fn serve(l: UnixListener, node: &NodeHandle, stop: &AtomicBool, path: &Path) {
    for conn in l.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let Ok(mut s) = conn else { continue };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut line = String::new();
        let Ok(mut reader) = s.try_clone().map(BufReader::new) else {
            continue;
        };
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let (answer, exit) = match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => handle(node, &req),
            Err(e) => (
                json!({"ok": false, "error": format!("bad request: {e}")}),
                false,
            ),
        };
        let _ = s.write_all(format!("{answer}\n").as_bytes());
        if exit {
            tracing::info!(control = %path.display(), "left through the control socket: exiting");
            stop.store(true, Ordering::Relaxed);
            break;
        }
    }
}

fn pids<'a>(it: impl Iterator<Item = &'a sgmp_membership::ProcessId>) -> Vec<String> {
    it.map(|p| p.to_string()).collect()
}

/// Answers one request; the flag asks the daemon to exit (after `leave`).
pub fn handle(node: &NodeHandle, req: &Request) -> (Value, bool) {
    match req.cmd.as_str() {
        "status" => {
            let s = node.status();
            (
                json!({
                    "ok": true,
                    "node": s.me.to_string(),
                    "addr": s.addr.to_string(),
                    "phase": s.phase.as_str(),
                    "version": s.view.version,
                    "members": pids(s.view.members.iter().map(|m| &m.id)),
                    "mgr": s.view.members.first().map(|m| m.id.to_string()),
                    "leader": s.leader.map(|p| p.to_string()),
                    "is_mgr": s.is_mgr,
                    "faulty": pids(s.faulty.iter()),
                    "rejoins": s.rejoins,
                    "view_ts_us": s.view_ts_us,
                    "system_version": s.system_version,
                    "system_size": s.system_size,
                    "clients": s.clients,
                }),
                false,
            )
        }
        "system-view" => match node.system_view() {
            Some(v) => {
                let mut clients: Vec<Value> = v
                    .clients
                    .iter()
                    .map(|(n, c)| {
                        json!({"pid": format!("{n}#{}", c.incarnation), "addr": c.addr.to_string(),
                               "core_eligible": c.core_eligible})
                    })
                    .collect();
                clients.sort_by(|a, b| a["pid"].as_str().cmp(&b["pid"].as_str()));
                let core: Vec<Value> = v
                    .core
                    .iter()
                    .map(|m| json!({"pid": m.id.to_string(), "addr": m.addr.to_string()}))
                    .collect();
                (
                    json!({"ok": true, "version": v.version, "size": v.size(),
                           "core": core, "clients": clients}),
                    false,
                )
            }
            None => (
                json!({"ok": false, "error": "no system view here (service off, not a member, or not synchronized yet)"}),
                false,
            ),
        },
        "view" => {
            let s = node.status();
            let members: Vec<Value> = s
                .view
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| json!({"rank": i, "pid": m.id.to_string(), "addr": m.addr.to_string()}))
                .collect();
            (
                json!({"ok": true, "node": s.me.to_string(), "version": s.view.version,
                       "members": members, "view_ts_us": s.view_ts_us}),
                false,
            )
        }
        "metrics" => {
            let m = node.metrics();
            let e = &m.engine;
            let t = &m.transport;
            (
                json!({
                    "ok": true,
                    "views_installed": m.views_installed,
                    "rejoins": m.rejoins,
                    "engine": {
                        "protocol_sent": e.protocol_sent(),
                        "received": e.received.iter().sum::<u64>(),
                        "decode_errors": e.decode_errors,
                        "dropped_from_faulty": e.dropped_from_faulty,
                        "ignored": e.ignored,
                        "joins_refused": e.joins_refused,
                        "reconfigurations": e.reconfigurations,
                        "client_ops_committed": e.client_ops_committed,
                        "client_ops_dropped": e.client_ops_dropped,
                    },
                    "service": {
                        "hellos": m.service.hellos,
                        "registrations": m.service.registrations,
                        "removals_reported": m.service.removals_reported,
                        "delta_datagrams": m.service.delta_datagrams,
                        "snapshot_datagrams": m.service.snapshot_datagrams,
                        "syncs": m.service.syncs,
                        "promotions": m.service.promotions,
                    },
                    "transport": {
                        "datagrams_in": t.datagrams_in,
                        "datagrams_out": t.datagrams_out,
                        "messages_sent": t.messages_sent,
                        "messages_delivered": t.messages_delivered,
                        "retransmissions": t.retransmissions,
                        "unreachable_events": t.unreachable_events,
                        "drops": t.total_drops(),
                        "probes_sent": t.probes_sent,
                        "probes_received": t.probes_received,
                        "drops_bad_tag": t.dropped(sgmp_transport::DropReason::BadTag),
                        "drops_unauthenticated": t.dropped(sgmp_transport::DropReason::Unauthenticated),
                    },
                    "driver": {
                        "fault_dropped": m.driver.fault_dropped,
                        "send_errors": m.driver.send_errors,
                    },
                    "backlogged": m.backlogged,
                    "backlog_len": m.backlog_len,
                    "backlog_overflow": m.backlog_overflow,
                    "send_refused": m.send_refused,
                    "events_dropped": m.events_dropped,
                }),
                false,
            )
        }
        "leave" => {
            node.leave(Duration::from_secs(3));
            let s = node.status();
            (
                json!({"ok": true, "node": s.me.to_string(), "phase": s.phase.as_str()}),
                true,
            )
        }
        "fault" => {
            let cmd = match req.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["loss", p] => match p.parse::<f64>() {
                    Ok(p) => Ok(FaultCommand::Loss(p)),
                    Err(_) => Err(format!("bad loss probability {p:?}")),
                },
                ["partition", peers] => Ok(FaultCommand::Partition(
                    peers
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )),
                ["cut", peers] => Ok(FaultCommand::Cut(
                    peers
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )),
                ["dup", p] => match p.parse::<f64>() {
                    Ok(p) => Ok(FaultCommand::Duplicate(p)),
                    Err(_) => Err(format!("bad duplication probability {p:?}")),
                },
                ["reorder", p] | ["reorder", p, _] => {
                    let ms = req.args.get(2).map_or(Ok(5), |m| m.parse::<u64>());
                    match (p.parse::<f64>(), ms) {
                        (Ok(p), Ok(ms)) => Ok(FaultCommand::Reorder {
                            p,
                            max_delay_us: ms.saturating_mul(1000),
                        }),
                        _ => Err(format!("bad reordering {:?}", &req.args[1..])),
                    }
                }
                ["heal"] => Ok(FaultCommand::Heal),
                ["clear"] => Ok(FaultCommand::Clear),
                _ => Err(
                    "usage: fault loss P | fault dup P | fault reorder P [MAX_MS] | \
                          fault partition PEER,... | fault cut PEER,... | fault heal | fault clear"
                        .into(),
                ),
            };
            match cmd.and_then(|c| node.fault(c)) {
                Ok(msg) => (json!({"ok": true, "result": msg}), false),
                Err(e) => (json!({"ok": false, "error": e}), false),
            }
        }
        other => (
            json!({"ok": false, "error": format!("unknown command {other:?} (status, view, system-view, leave, metrics, fault)")}),
            false,
        ),
    }
}
