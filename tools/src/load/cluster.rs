//! Real nodes on 127.0.0.1 for the membership modes: in-process [`Node`]s or `sgmpd`
//! processes, behind one interface ([`Backend`]) that starts, crashes and removes
//! members and reports their events with timestamps on one clock.
//!
//! * **In-process** ([`InProcess`]): every node is a [`Node`] of this process, bound to
//!   port 0. Each event is timed by its node ([`TimedEvent::at`]: the start of the loop
//!   step that produced it) against one shared [`Instant`]; there is no collector
//!   thread: the caller's thread polls every [`Subscription`] in [`Backend::recv`], so
//!   when it gets to run changes no figure and it adds no wake-ups to the nodes' own
//!   on the shared cores. A crash is [`NodeHandle::shutdown`] without a leave: the
//!   socket closes and the others find out through their failure detector.
//! * **Processes** ([`Processes`]): every node is an `sgmpd` child (the release binary
//!   next to the running executable) with an `--event-log`; one reader thread tails every
//!   log, and times are the logs' `ts_us` (µs since the Unix epoch, taken by the node
//!   itself). A crash is SIGKILL. Children are killed when the backend is dropped.
//!
//! [`Tracker`] folds the events into what the modes need: who installed which view when,
//! when the mgr submitted each update, and whether the group is stable.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sgmp_membership::node::{
    unix_micros, NodeConfig, NodeEvent, NodeHandle, Subscription, TimedEvent,
};
use sgmp_membership::view::View;
use sgmp_membership::{Node, ProcessId};

/// Set by Ctrl-C (see [`install_ctrlc`]): every mode stops at the next check and
/// reports what it has.
static STOP: std::sync::LazyLock<std::sync::Arc<AtomicBool>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(AtomicBool::new(false)));

/// Installs the Ctrl-C (SIGINT) handler that sets the stop flag, through
/// `signal-hook` like `sgmpd` and `sgmp-chaos` (once per process; later calls do
/// nothing).
pub fn install_ctrlc() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ =
            signal_hook::flag::register(signal_hook::consts::SIGINT, std::sync::Arc::clone(&STOP));
    });
}

/// True once Ctrl-C was pressed.
pub fn stopped() -> bool {
    STOP.load(Ordering::Relaxed)
}

pub use super::flags::{BackendKind, Idle, Timing};

/// What happened at a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A view was installed (members as `NAME#INC`, most senior first).
    View {
        /// Its version.
        version: u64,
        /// Its members (shared by the records of one view's installs).
        members: Arc<[String]>,
    },
    /// As initiator, the node submitted the update forming `version`.
    Submitted {
        /// The version.
        version: u64,
    },
    /// The node came to believe `peer` (`NAME#INC`) faulty.
    Suspected {
        /// The suspected process.
        peer: String,
    },
    /// The node stopped being a member (excluded or left).
    Out,
    /// Anything else.
    Other,
}

/// One event: when (ns on the backend's clock), at which slot, at which process.
#[derive(Clone, Debug)]
pub struct Record {
    /// Nanoseconds since the backend started.
    pub t_ns: u64,
    /// The slot (node name `n{slot}`).
    pub slot: usize,
    /// The process, `NAME#INC`.
    pub pid: String,
    /// What happened.
    pub ev: Ev,
}

/// Nodes the modes drive. Slot `i` is node `n{i}`.
pub trait Backend {
    /// Starts node `n{slot}` (a new incarnation if it ran before), seeded with `seed`
    /// (none: it founds the group).
    fn start(&mut self, slot: usize, seed: Option<SocketAddr>) -> io::Result<()>;
    /// Crashes node `n{slot}` (no leave); returns the time of the crash.
    fn crash(&mut self, slot: usize) -> u64;
    /// The node's UDP address, once known.
    fn addr(&self, slot: usize) -> Option<SocketAddr>;
    /// Now, on the clock of [`Record::t_ns`].
    fn now_ns(&self) -> u64;
    /// The next event, waiting at most `timeout`.
    fn recv(&mut self, timeout: Duration) -> Option<Record>;
    /// Saves of its durable state the running node `n{slot}` made so far, and the time
    /// they took, µs (its `CoreStats::durable_saves` and `durable_save_us`, as last
    /// published: up to 20 ms old); `None` where the backend cannot tell (processes) or
    /// the slot is empty.
    fn durable_saves(&self, _slot: usize) -> Option<(u64, u64)> {
        None
    }
}

/// The slot of a process id `n{slot}#inc`.
pub fn slot_of(pid: &str) -> Option<usize> {
    pid.strip_prefix('n')?.split('#').next()?.parse().ok()
}

/// The node name of a process id.
pub fn name_of(pid: &str) -> &str {
    pid.split('#').next().unwrap_or(pid)
}

fn node_config(
    slot: usize,
    seed: Option<SocketAddr>,
    t: &Timing,
    state_root: Option<&Path>,
) -> NodeConfig {
    NodeConfig {
        state_dir: state_root.map(|r| state_dir_of(r, slot)),
        id: format!("n{slot}"),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        seeds: seed.into_iter().collect(),
        heartbeat_ms: t.heartbeat_ms,
        suspect_ms: t.suspect_ms,
        protocol_timeout_ms: t.protocol_timeout_ms,
        join_retry_ms: 50,
        join_timeout_ms: 5000,
        coldstart_rounds: 1,
        coldstart_round_ms: 50,
        max_members: 64,
        idle: t.idle,
        warm_us: t.warm_us,
        warm_up_us: t.warm_up_us,
        cpu: t.cpu_of(slot),
        ..NodeConfig::default()
    }
}

/// Node `n{slot}`'s state directory under `root` (every incarnation in the slot keeps
/// the same one, as a restarted `sgmpd --state-dir` does).
pub fn state_dir_of(root: &Path, slot: usize) -> PathBuf {
    root.join(format!("n{slot}"))
}

// ----- in-process ------------------------------------------------------------------

struct InSlot {
    handle: Arc<NodeHandle>,
    sub: Subscription,
}

/// A node leaving in the background: its events are still collected until its thread
/// has let go of the handle (the loop has stopped).
struct Leaving {
    slot: usize,
    handle: Arc<NodeHandle>,
    sub: Subscription,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("slots", &self.slots.len())
            .field("pending", &self.pending.records.len())
            .finish_non_exhaustive()
    }
}

/// In-process nodes. See the [module docs](self).
pub struct InProcess {
    base: Instant,
    timing: Timing,
    /// Durable state of every node under this directory (`None`: in memory only).
    state_root: Option<PathBuf>,
    slots: Vec<Option<InSlot>>,
    leaving: Vec<Leaving>,
    /// Events drained from the subscriptions and not yet returned by `recv`.
    pending: Inbox,
    service: Option<ServiceLimits>,
}

/// Events taken from the subscriptions, and the names of the last view's members.
#[derive(Default)]
struct Inbox {
    records: VecDeque<Record>,
    /// The last view converted: its version, members and their names. The other
    /// members' installs of the same view share the names (formatted once per view,
    /// not once per member: at 63 members, 63 × 63 strings a view change).
    last_view: Option<(u64, Vec<ProcessId>, Arc<[String]>)>,
}

impl Inbox {
    /// The names of `view`'s members, shared with the last view's if they are equal.
    fn names(&mut self, view: &View) -> Arc<[String]> {
        if let Some((v, ids, names)) = &self.last_view {
            if *v == view.version
                && ids.len() == view.members.len()
                && ids.iter().zip(&view.members).all(|(a, m)| *a == m.id)
            {
                return Arc::clone(names);
            }
        }
        let names: Arc<[String]> = view.members.iter().map(|m| m.id.to_string()).collect();
        let ids = view.members.iter().map(|m| m.id).collect();
        self.last_view = Some((view.version, ids, Arc::clone(&names)));
        names
    }
}

/// The membership service's limits for the nodes a backend starts (None: the
/// defaults of [`NodeConfig`]): `sgmp-load clients` raises them for large runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceLimits {
    /// `max_clients`: most registered clients.
    pub max_clients: usize,
    /// `max_client_ops`: most client changes per view change.
    pub max_client_ops: usize,
}

/// How long [`InProcess::recv`] sleeps between two passes over the subscriptions.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

impl InProcess {
    /// No nodes yet.
    pub fn new(timing: Timing) -> InProcess {
        InProcess {
            base: Instant::now(),
            timing,
            state_root: None,
            slots: Vec::new(),
            leaving: Vec::new(),
            pending: Inbox::default(),
            service: None,
        }
    }

    /// Every node keeps durable state in `state_root/n{slot}` (`NodeConfig::state_dir`).
    pub fn with_state_root(mut self, state_root: Option<PathBuf>) -> InProcess {
        self.state_root = state_root;
        self
    }

    /// Nodes started from now on use these service limits.
    pub fn set_service_limits(&mut self, limits: ServiceLimits) {
        self.service = Some(limits);
    }

    /// The handle of a running node.
    pub fn handle(&self, slot: usize) -> Option<&NodeHandle> {
        self.slots.get(slot)?.as_ref().map(|s| &*s.handle)
    }

    /// Makes node `n{slot}` leave gracefully, in the background (the request goes to
    /// the mgr at once; the node shuts down once it is delivered). Returns the time.
    pub fn leave_async(&mut self, slot: usize) -> u64 {
        let t = self.now_ns();
        if let Some(s) = self.slots.get_mut(slot).and_then(Option::take) {
            let h = Arc::clone(&s.handle);
            std::thread::spawn(move || {
                let _ = h.leave(Duration::from_secs(2));
                h.shutdown();
            });
            self.leaving.push(Leaving {
                slot,
                handle: s.handle,
                sub: s.sub,
            });
        }
        t
    }

    fn stop_slot(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot).and_then(Option::take) {
            s.handle.shutdown();
            // What the node published before it stopped, in order, before anything of
            // the next incarnation in this slot.
            drain(self.base, slot, &s.sub, &mut self.pending);
        }
    }

    /// Moves every queued event of every node into `pending`; forgets the nodes that
    /// finished leaving.
    fn collect(&mut self) {
        for (slot, s) in self.slots.iter().enumerate() {
            if let Some(s) = s {
                drain(self.base, slot, &s.sub, &mut self.pending);
            }
        }
        let (base, pending) = (self.base, &mut self.pending);
        self.leaving.retain(|l| {
            // Checked before the drain: once the thread has let go, nothing more comes.
            let done = Arc::strong_count(&l.handle) == 1;
            drain(base, l.slot, &l.sub, pending);
            !done
        });
    }
}

/// Moves the queued events of `sub` (node `n{slot}`) into `out`, timed by the node.
fn drain(base: Instant, slot: usize, sub: &Subscription, out: &mut Inbox) {
    while let Some(TimedEvent { at, event }) = sub.try_recv_timed() {
        let (pid, ev) = convert(event, out);
        out.records.push_back(Record {
            t_ns: at.saturating_duration_since(base).as_nanos() as u64,
            slot,
            pid,
            ev,
        });
    }
}

fn convert(ev: NodeEvent, inbox: &mut Inbox) -> (String, Ev) {
    match ev {
        NodeEvent::ViewInstalled { me, view } => (
            me.to_string(),
            Ev::View {
                version: view.version,
                members: inbox.names(&view),
            },
        ),
        NodeEvent::Submitted { me, version, .. } => (me.to_string(), Ev::Submitted { version }),
        NodeEvent::Excluded { me, .. } | NodeEvent::Left { me } => (me.to_string(), Ev::Out),
        NodeEvent::Suspected { me, peer } => (
            me.to_string(),
            Ev::Suspected {
                peer: peer.to_string(),
            },
        ),
        NodeEvent::Joined { me, .. }
        | NodeEvent::Founded { me }
        | NodeEvent::Reconfiguring { me, .. }
        | NodeEvent::SystemView { me, .. }
        | NodeEvent::Recovered { me, .. } => (me.to_string(), Ev::Other),
        NodeEvent::StorageFailed { me, .. } => (me.to_string(), Ev::Out),
        NodeEvent::Rejoining { new, .. } => (new.to_string(), Ev::Other),
    }
}

impl Backend for InProcess {
    fn start(&mut self, slot: usize, seed: Option<SocketAddr>) -> io::Result<()> {
        self.stop_slot(slot);
        // Subscribed before the loop starts: the founder installs its first view at once.
        let mut cfg = node_config(slot, seed, &self.timing, self.state_root.as_deref());
        if let Some(l) = self.service {
            cfg.max_clients = l.max_clients;
            cfg.max_client_ops = l.max_client_ops;
        }
        let (handle, sub) = Node::start_subscribed(cfg).map_err(io::Error::other)?;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(InSlot {
            handle: Arc::new(handle),
            sub,
        });
        Ok(())
    }

    fn crash(&mut self, slot: usize) -> u64 {
        let t = self.now_ns();
        self.stop_slot(slot);
        t
    }

    fn addr(&self, slot: usize) -> Option<SocketAddr> {
        self.handle(slot).map(NodeHandle::local_addr)
    }

    fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// No collector threads: the events carry the time their node produced them
    /// ([`TimedEvent`]), so this thread polls every subscription (every
    /// millisecond while nothing is queued) and the time it takes to get to them
    /// changes no figure.
    fn recv(&mut self, timeout: Duration) -> Option<Record> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(r) = self.pending.records.pop_front() {
                return Some(r);
            }
            self.collect();
            if !self.pending.records.is_empty() {
                continue;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            std::thread::sleep(left.min(POLL_INTERVAL));
        }
    }

    fn durable_saves(&self, slot: usize) -> Option<(u64, u64)> {
        self.handle(slot).map(|h| {
            let c = h.metrics().core;
            (c.durable_saves, c.durable_save_us)
        })
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        for s in self.slots.iter().flatten() {
            // Ask every loop to stop first, then wait for each.
            let h = Arc::clone(&s.handle);
            std::thread::spawn(move || h.shutdown());
        }
        for i in 0..self.slots.len() {
            self.stop_slot(i);
        }
    }
}

// ----- sgmpd processes ---------------------------------------------------------------

/// One log being tailed.
struct Tail {
    slot: usize,
    path: PathBuf,
    reader: Option<BufReader<File>>,
    partial: String,
}

impl std::fmt::Debug for Processes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processes")
            .field("exe", &self.exe)
            .field("dir", &self.dir)
            .field("children", &self.children.len())
            .finish_non_exhaustive()
    }
}

/// `sgmpd` children. See the [module docs](self).
pub struct Processes {
    exe: PathBuf,
    dir: PathBuf,
    timing: Timing,
    base_us: u64,
    children: Vec<Option<Child>>,
    addrs: Arc<Mutex<HashMap<usize, SocketAddr>>>,
    tails: Arc<Mutex<Vec<Tail>>>,
    rx: Receiver<Record>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
    lives: u64,
    /// `--state-dir` of every node under this directory (`None`: in memory only).
    state_root: Option<PathBuf>,
    /// Service limits of the nodes started from now on.
    service: Option<ServiceLimits>,
}

impl Processes {
    /// Finds `sgmpd` next to the running executable and starts the log reader. Logs go
    /// to a fresh directory under the system's temporary directory.
    pub fn new(timing: Timing) -> io::Result<Processes> {
        let me = std::env::current_exe()?;
        let dir0 = me.parent().unwrap_or(Path::new("."));
        let mut exe = dir0.join("sgmpd");
        if !exe.exists() {
            // Test binaries live in target/<profile>/deps.
            exe = dir0.parent().unwrap_or(dir0).join("sgmpd");
        }
        if !exe.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "no sgmpd next to {} (build it: cargo build --release -p sgmp-tools --bin sgmpd)",
                    me.display()
                ),
            ));
        }
        let dir = std::env::temp_dir().join(format!(
            "sgmp-load-{}-{}",
            std::process::id(),
            unix_micros()
        ));
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = mpsc::channel();
        let tails: Arc<Mutex<Vec<Tail>>> = Arc::new(Mutex::new(Vec::new()));
        let addrs = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let base_us = unix_micros();
        let reader = {
            let (tails, addrs, stop) = (Arc::clone(&tails), Arc::clone(&addrs), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("tail-logs".into())
                .spawn(move || tail_loop(&tails, &addrs, &stop, &tx, base_us))?
        };
        Ok(Processes {
            exe,
            dir,
            timing,
            base_us,
            children: Vec::new(),
            addrs,
            tails,
            rx,
            stop,
            reader: Some(reader),
            state_root: None,
            lives: 0,
            service: None,
        })
    }
}

impl Processes {
    /// The control socket of node `n{slot}` (for `sgmpctl` requests such as `metrics`).
    pub fn control_path(&self, slot: usize) -> PathBuf {
        self.dir.join(format!("n{slot}.sock"))
    }

    /// Nodes started from now on use these service limits (`--max-clients`,
    /// `--max-client-ops`).
    pub fn set_service_limits(&mut self, limits: ServiceLimits) {
        self.service = Some(limits);
    }

    /// The operating-system process id of node `n{slot}`, while it runs (to read its
    /// resident memory).
    pub fn os_pid(&self, slot: usize) -> Option<u32> {
        self.children.get(slot)?.as_ref().map(Child::id)
    }
}

fn tail_loop(
    tails: &Mutex<Vec<Tail>>,
    addrs: &Mutex<HashMap<usize, SocketAddr>>,
    stop: &AtomicBool,
    tx: &Sender<Record>,
    base_us: u64,
) {
    while !stop.load(Ordering::Relaxed) {
        {
            let mut ts = tails.lock();
            for t in ts.iter_mut() {
                if t.reader.is_none() {
                    t.reader = File::open(&t.path).ok().map(BufReader::new);
                }
                let Some(r) = &mut t.reader else { continue };
                loop {
                    match r.read_line(&mut t.partial) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if !t.partial.ends_with('\n') => break,
                        Ok(_) => {
                            let line = std::mem::take(&mut t.partial);
                            if let Some(rec) = parse_line(&line, t.slot, base_us, addrs) {
                                let _ = tx.send(rec);
                            }
                        }
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn parse_line(
    line: &str,
    slot: usize,
    base_us: u64,
    addrs: &Mutex<HashMap<usize, SocketAddr>>,
) -> Option<Record> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let ts = v["ts_us"].as_u64()?;
    let pid = v["node"].as_str()?.to_string();
    let version = v["version"].as_u64();
    let ev = match v["kind"].as_str()? {
        "view" => Ev::View {
            version: version?,
            members: v["members"]
                .as_array()?
                .iter()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect::<Arc<[String]>>(),
        },
        "submitted" => Ev::Submitted { version: version? },
        "suspect" => Ev::Suspected {
            peer: v["peer"].as_str()?.to_string(),
        },
        "excluded" | "left" => Ev::Out,
        "start" => {
            if let Some(a) = v["addr"].as_str().and_then(|a| a.parse().ok()) {
                addrs.lock().insert(slot, a);
            }
            Ev::Other
        }
        _ => Ev::Other,
    };
    Some(Record {
        t_ns: ts.saturating_sub(base_us) * 1000,
        slot,
        pid,
        ev,
    })
}

impl Backend for Processes {
    fn start(&mut self, slot: usize, seed: Option<SocketAddr>) -> io::Result<()> {
        self.crash(slot);
        self.lives += 1;
        let log = self.dir.join(format!("n{slot}-{}.log", self.lives));
        let t = &self.timing;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--id")
            .arg(format!("n{slot}"))
            .args(["--listen", "127.0.0.1:0"])
            .arg("--event-log")
            .arg(&log)
            .arg("--heartbeat-ms")
            .arg(t.heartbeat_ms.to_string())
            .arg("--suspect-ms")
            .arg(t.suspect_ms.to_string())
            .arg("--protocol-timeout-ms")
            .arg(t.protocol_timeout_ms.to_string())
            .args(["--coldstart-rounds", "1", "--coldstart-round-ms", "50"])
            .arg("--control")
            .arg(self.control_path(slot))
            .args(["--idle", &t.idle.to_string()])
            .args(["--warm-us", &t.warm_us.to_string()])
            .args(["--warm-up-us", &t.warm_up_us.to_string()])
            .args(t.cpu_of(slot).map(|c| format!("--cpu={c}")))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(s) = seed {
            cmd.arg("--seeds").arg(s.to_string());
        }
        if let Some(root) = &self.state_root {
            cmd.arg("--state-dir").arg(state_dir_of(root, slot));
        }
        if let Some(l) = self.service {
            cmd.arg("--max-clients")
                .arg(l.max_clients.to_string())
                .arg("--max-client-ops")
                .arg(l.max_client_ops.to_string());
        }
        self.addrs.lock().remove(&slot);
        let child = cmd.spawn()?;
        if self.children.len() <= slot {
            self.children.resize_with(slot + 1, || None);
        }
        self.children[slot] = Some(child);
        self.tails.lock().push(Tail {
            slot,
            path: log,
            reader: None,
            partial: String::new(),
        });
        Ok(())
    }

    fn crash(&mut self, slot: usize) -> u64 {
        let t = self.now_ns();
        if let Some(mut c) = self.children.get_mut(slot).and_then(Option::take) {
            let _ = c.kill();
            let _ = c.wait();
        }
        t
    }

    fn addr(&self, slot: usize) -> Option<SocketAddr> {
        self.addrs.lock().get(&slot).copied()
    }

    fn now_ns(&self) -> u64 {
        unix_micros().saturating_sub(self.base_us) * 1000
    }

    fn recv(&mut self, timeout: Duration) -> Option<Record> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for c in self.children.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts the backend of `kind`.
pub fn backend(kind: BackendKind, timing: Timing) -> io::Result<Box<dyn Backend>> {
    backend_with_state(kind, timing, None)
}

/// Starts the backend of `kind` whose nodes keep durable state under `state_root`
/// (`n{slot}` each, `NodeConfig::state_dir` / `sgmpd --state-dir`; `None`: in memory).
pub fn backend_with_state(
    kind: BackendKind,
    timing: Timing,
    state_root: Option<PathBuf>,
) -> io::Result<Box<dyn Backend>> {
    Ok(match kind {
        BackendKind::InProcess => Box::new(InProcess::new(timing).with_state_root(state_root)),
        BackendKind::Process => {
            let mut p = Processes::new(timing)?;
            p.state_root = state_root;
            Box::new(p)
        }
    })
}

// ----- what the events say -------------------------------------------------------------

/// The events folded: installs per version, submits, each slot's latest view.
#[derive(Debug, Default)]
pub struct Tracker {
    /// version → pid → when it installed that version.
    pub installs: HashMap<u64, HashMap<String, u64>>,
    /// version → its members.
    pub members: HashMap<u64, Arc<[String]>>,
    /// version → when the update forming it was first submitted.
    pub submitted: HashMap<u64, u64>,
    /// slot → (pid, latest version, its size), for slots that are members.
    pub latest: HashMap<usize, (String, u64, usize)>,
    /// pid → the first view it installed, and when.
    pub first_view: HashMap<String, (u64, u64)>,
    /// pid → when it was first suspected, and at which slot: tells a removal its mgr
    /// detected itself from one a member reported to it.
    pub first_suspicion: HashMap<String, (u64, usize)>,
}

impl Tracker {
    /// Folds one event in.
    pub fn add(&mut self, r: Record) {
        match r.ev {
            Ev::View { version, members } => {
                self.installs
                    .entry(version)
                    .or_default()
                    .entry(r.pid.clone())
                    .or_insert(r.t_ns);
                self.first_view
                    .entry(r.pid.clone())
                    .or_insert((version, r.t_ns));
                let newer = match self.latest.get(&r.slot) {
                    Some((p, v, _)) => *p != r.pid || *v < version,
                    None => true,
                };
                if newer {
                    self.latest
                        .insert(r.slot, (r.pid.clone(), version, members.len()));
                }
                self.members.entry(version).or_insert(members);
            }
            Ev::Submitted { version } => {
                self.submitted.entry(version).or_insert(r.t_ns);
            }
            Ev::Suspected { peer } => {
                // The nodes' events come in per node: the earliest wins, not the first
                // folded in.
                let e = self.first_suspicion.entry(peer).or_insert((r.t_ns, r.slot));
                if r.t_ns < e.0 {
                    *e = (r.t_ns, r.slot);
                }
            }
            Ev::Out => {
                if self
                    .latest
                    .get(&r.slot)
                    .is_some_and(|(p, _, _)| *p == r.pid)
                {
                    self.latest.remove(&r.slot);
                }
            }
            Ev::Other => {}
        }
    }

    /// Drains every event the backend has for at most `wait`.
    pub fn pump(&mut self, b: &mut dyn Backend, wait: Duration) {
        if let Some(r) = b.recv(wait) {
            self.add(r);
            while let Some(r) = b.recv(Duration::ZERO) {
                self.add(r);
            }
        }
    }

    /// The common version if every slot of `live` is a member of one view with exactly
    /// `live.len()` members.
    pub fn stable(&self, live: &BTreeSet<usize>) -> Option<u64> {
        let mut version = None;
        for s in live {
            let (_, v, n) = self.latest.get(s)?;
            if *n != live.len() || version.is_some_and(|x| x != *v) {
                return None;
            }
            version = Some(*v);
        }
        version
    }

    /// When every member of view `version` had installed it (the last install), if all
    /// have.
    pub fn all_installed(&self, version: u64) -> Option<u64> {
        let members = self.members.get(&version)?;
        let inst = self.installs.get(&version)?;
        let mut last = 0;
        for m in members.iter() {
            last = last.max(*inst.get(m)?);
        }
        Some(last)
    }

    /// The first version above `after` whose view satisfies `pred`.
    pub fn first_version(&self, after: u64, pred: impl Fn(&[String]) -> bool) -> Option<u64> {
        let mut vs: Vec<u64> = self
            .members
            .keys()
            .copied()
            .filter(|v| *v > after)
            .collect();
        vs.sort_unstable();
        vs.into_iter().find(|v| pred(&self.members[v]))
    }

    /// The mgr (most senior member) of the latest view some slot of `live` installed.
    pub fn mgr_slot(&self, live: &BTreeSet<usize>) -> Option<usize> {
        let v = live
            .iter()
            .filter_map(|s| self.latest.get(s))
            .map(|l| l.1)
            .max()?;
        self.members.get(&v)?.first().and_then(|p| slot_of(p))
    }
}

/// Pumps events until `cond` holds, Ctrl-C, or `timeout`; returns whether it held.
pub fn wait_for(
    b: &mut dyn Backend,
    t: &mut Tracker,
    timeout: Duration,
    cond: impl FnMut(&Tracker) -> bool,
) -> bool {
    wait(b, t, timeout, cond, |b, t, left| {
        t.pump(b, left.min(Duration::from_millis(5)));
    })
}

/// [`wait_for`], except that it sleeps `pace` (at most what is left of `timeout`)
/// before each look at the events instead of polling for them: for a measurement whose
/// figures the nodes stamp, so that the load generator's own work (waking, taking and
/// folding up to N events per install) rarely runs on the cores during what it
/// measures, as the raw pattern's coordinator sleeps through its rounds.
pub fn wait_paced(
    b: &mut dyn Backend,
    t: &mut Tracker,
    timeout: Duration,
    pace: Duration,
    cond: impl FnMut(&Tracker) -> bool,
) -> bool {
    wait(b, t, timeout, cond, |b, t, left| {
        std::thread::sleep(pace.min(left));
        while let Some(r) = b.recv(Duration::ZERO) {
            t.add(r);
        }
    })
}

/// Until `cond` holds (true), Ctrl-C or `timeout` (false), `look`s at the events with
/// what is left of the time.
fn wait(
    b: &mut dyn Backend,
    t: &mut Tracker,
    timeout: Duration,
    mut cond: impl FnMut(&Tracker) -> bool,
    mut look: impl FnMut(&mut dyn Backend, &mut Tracker, Duration),
) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond(t) {
            return true;
        }
        let left = end.saturating_duration_since(Instant::now());
        if stopped() || left.is_zero() {
            return false;
        }
        look(b, t, left);
    }
}

/// Starts `n` nodes (n0 founds, the others join through it) and waits until they share
/// one view of `n` members. Returns the live slots.
pub fn form_group(
    b: &mut dyn Backend,
    t: &mut Tracker,
    n: usize,
    timeout: Duration,
) -> io::Result<BTreeSet<usize>> {
    let end = Instant::now() + timeout;
    b.start(0, None)?;
    let founded = wait_for(b, t, timeout, |t| t.latest.contains_key(&0));
    let Some(seed) = b.addr(0).filter(|_| founded) else {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "n0 did not found the group",
        ));
    };
    for i in 1..n {
        b.start(i, Some(seed))?;
    }
    let live: BTreeSet<usize> = (0..n).collect();
    let left = end.saturating_duration_since(Instant::now());
    if !wait_for(b, t, left, |t| t.stable(&live).is_some()) {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "the {n} nodes did not form one view in {timeout:?} ({} members)",
                t.latest.len()
            ),
        ));
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sgmp_membership::testkit::member_of;

    /// View `version` of members `n{i}#7`.
    fn view(version: u64, slots: &[usize]) -> View {
        let mut v = View::with_capacity(slots.len());
        v.version = version;
        v.members.extend(slots.iter().map(|&i| member_of(i, 7)));
        v
    }

    #[test]
    fn the_installs_of_one_view_share_its_names() {
        let mut inbox = Inbox::default();
        let a = inbox.names(&view(4, &[0, 1, 2]));
        assert_eq!(&a[..], ["n0#7", "n1#7", "n2#7"]);
        let b = inbox.names(&view(4, &[0, 1, 2]));
        assert!(Arc::ptr_eq(&a, &b), "the same view is formatted once");
        // Another version, or the same version with other members (two groups), is
        // formatted anew.
        let c = inbox.names(&view(5, &[0, 1, 2]));
        assert!(!Arc::ptr_eq(&a, &c));
        let d = inbox.names(&view(5, &[0, 1, 3]));
        assert_eq!(&d[..], ["n0#7", "n1#7", "n3#7"]);
        let e = inbox.names(&view(5, &[0, 1]));
        assert_eq!(&e[..], ["n0#7", "n1#7"]);
    }

    #[test]
    fn the_earliest_suspicion_of_a_process_is_kept_whatever_the_folding_order() {
        let mut t = Tracker::default();
        let suspected = |slot, t_ns| Record {
            t_ns,
            slot,
            pid: format!("n{slot}#1"),
            ev: Ev::Suspected {
                peer: "n2#1".into(),
            },
        };
        // The mgr's events are folded first, the reporter's (earlier) after them.
        t.add(suspected(0, 900));
        t.add(suspected(1, 700));
        t.add(suspected(3, 800));
        assert_eq!(t.first_suspicion["n2#1"], (700, 1));
        // The event log's line reads the same.
        let addrs = Mutex::new(HashMap::new());
        let line = r#"{"ts_us":10,"node":"n1#1","kind":"suspect","peer":"n2#1"}"#;
        let r = parse_line(line, 1, 0, &addrs).expect("a suspicion");
        assert_eq!(
            r.ev,
            Ev::Suspected {
                peer: "n2#1".into()
            }
        );
    }
}
