//! Node settings: from a TOML file and/or command-line flags, with defaults for a LAN.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{EngineConfig, NodeId};
use sgmp_transport::{Keyring, TransportConfig};

/// Fault injection settings of the node's transport driver (tests and chaos runs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSettings {
    /// Seed of the fault layer's random choices.
    pub seed: u64,
    /// Probability that an outgoing datagram is lost, in `[0, 1]`.
    pub loss: f64,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings { seed: 1, loss: 0.0 }
    }
}

/// Settings of one node. Every field has a default suited to a LAN; a TOML file uses
/// the same field names (`id = "n1"`, `listen = "127.0.0.1:7401"`, `seeds = [...]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Node name (printable ASCII, no `#` or space, at most 31 bytes).
    pub id: String,
    /// UDP address to listen on. An unspecified address (`0.0.0.0:PORT`, `[::]:PORT`)
    /// listens on every interface and needs [`advertise`](NodeConfig::advertise).
    pub listen: SocketAddr,
    /// The address peers are told to use for this node (its `Member` record), when it
    /// differs from `listen` (memberlist's AdvertiseAddr): required with an unspecified
    /// `listen`; port 0 stands for the bound port. None: the bound address.
    pub advertise: Option<SocketAddr>,
    /// Seeds: the small known set of sites queried at cold start and when rejoining.
    pub seeds: Vec<SocketAddr>,
    /// Cluster id; datagrams of other clusters are dropped.
    pub cluster_id: u64,
    /// Heartbeat interval of the ring failure detector, ms.
    pub heartbeat_ms: u64,
    /// Silence after which a watched member is suspected, ms.
    pub suspect_ms: u64,
    /// How long an initiator waits for answers before suspecting the silent, ms.
    pub protocol_timeout_ms: u64,
    /// How often a joining process repeats its join request, ms.
    pub join_retry_ms: u64,
    /// A join that has not completed after this long starts over (new incarnation,
    /// discovery again), ms.
    pub join_timeout_ms: u64,
    /// Largest view. The same on every node of a group: a process asked to hold a
    /// larger view stops as a member (`ExcludeReason::ViewTooLarge`, PROTOCOL D30).
    pub max_members: usize,
    /// Largest application snapshot handed to joiners, bytes.
    pub max_snapshot: usize,
    /// Transport send window per peer, frames; raised to hold one largest message plus
    /// one frame (see [`NodeConfig::transport_config`]).
    pub send_window: usize,
    /// Transport receive window per peer, frames; raised like `send_window`.
    pub recv_window: usize,
    /// Cold start: rounds of queries without a higher-ranked concurrent starter before
    /// founding the group.
    pub coldstart_rounds: u32,
    /// Cold start: length of one round, ms.
    pub coldstart_round_ms: u64,
    /// After being excluded, come back as a new incarnation and join again.
    pub auto_rejoin: bool,
    /// After a graceful leave, how long to keep the transport running so that the
    /// leave request is delivered, ms.
    pub leave_linger_ms: u64,
    /// The incarnation of the first life of this process; default: microseconds since
    /// the Unix epoch at start, so that a restarted daemon is a new process.
    pub incarnation: Option<u64>,
    /// JSON-lines event log (view, excluded, suspect, ...); none if unset.
    pub event_log: Option<PathBuf>,
    /// Directory of the node's durable state (`docs/PROTOCOL.md` D22): the last view,
    /// the proposals it acknowledged, its incarnation counter. A node restarted with it
    /// recovers the group with the others or rejoins it (D23). None: in memory only.
    pub state_dir: Option<PathBuf>,
    /// Fault injection.
    pub faults: FaultSettings,
    /// File holding the cluster key(s): one or two lines of 64 hex digits (primary, then
    /// an optional secondary accepted during a rotation), or 32 raw bytes. With a key,
    /// every datagram is authenticated and unauthenticated ones are dropped
    /// (`docs/SECURITY.md`). Key material is only ever read from a file, never from a
    /// flag or the config itself. None: no authentication.
    pub key_file: Option<PathBuf>,
    /// Join requests a member handles per second (a token bucket holding one second's
    /// worth); more are refused and counted (`joins_refused`). 0: no cap.
    pub max_joins_per_sec: u32,
    /// The membership service (docs/SERVICE.md): most registered clients; 0 turns the
    /// service off.
    pub max_clients: usize,
    /// Most client changes one view change commits (a batch).
    pub max_client_ops: usize,
    /// How often clients send hellos (heartbeats), ms.
    pub client_heartbeat_ms: u64,
    /// Silence after which a client's watcher reports it for removal, ms.
    pub client_timeout_ms: u64,
    /// Core size the mgr keeps by promoting core-eligible clients (default 5; 0: no
    /// promotion). Only clients started as core-eligible are ever promoted.
    pub target_core: usize,
    /// How the node's loop waits for datagrams: `adaptive` (the default: epoll, but
    /// polling while a view change it takes part in is open), `block` (epoll only),
    /// `recv` (a blocking read on the socket: one system call fewer per wake-up, timers
    /// longer than a millisecond may fire up to a scheduler tick late) or `spin[:US]`
    /// (poll the socket, yielding the core between reads, for up to US µs after every
    /// step before parking: the lowest latency, for CPU).
    pub idle: NodeIdle,
    /// Keep-warm pings, µs (0: off, the default; otherwise at least [`MIN_WARM_US`]):
    /// after this long without reading a datagram, the node sends an empty datagram to
    /// the next other member of its view, and again every interval while nothing
    /// comes. On a host whose other
    /// tenants evict a quiet process's caches within milliseconds (a shared cloud VM),
    /// the first protocol step after a quiet spell otherwise runs its kernel and user
    /// paths from memory: with `1000`, a view change's commit was about a fifth shorter
    /// at N = 5 on a 2-vCPU VM (docs/bench/view_change_perf.md §21), for one tiny
    /// datagram per interval per quiet node and the wake-ups of both ends. A ping
    /// carries nothing; the receiving node wakes, counts it and goes back to waiting.
    /// With `idle = "recv"` an interval above the delayed-ack delay runs on the socket's
    /// receive timeout, kept to whole milliseconds (powers of two) and scheduler ticks:
    /// the pings come that much less often.
    pub warm_us: u64,
    /// Warm-up before a suspicion, µs (0: off; the default is
    /// [`DEFAULT_WARM_UP_US`]): when the member this node's ring detector watches has
    /// been silent for all but this long of `suspect_ms` (at most a quarter of it, and
    /// half of what it leaves beyond `heartbeat_ms`, so that a member heard at every
    /// heartbeat never opens a window), a view change is likely to follow, and the node
    /// calls the view's other members but the silent one (at most four) every 250 µs until the suspicion with a one-byte
    /// datagram each answers with an empty one (with `idle = "adaptive"`, the
    /// default, the caller polls its socket between its calls and the called poll
    /// theirs for 500 µs after each, as they do while a view change is open, so that
    /// the round's first datagrams find them polling). On a host whose other tenants evict a
    /// quiet process's caches within milliseconds, the round's first steps then find
    /// their kernel and user paths warm, as steady keep-warm pings (`warm_us`) would
    /// make them, at the cost of a few dozen tiny datagrams per suspicion instead of
    /// one per millisecond for ever: while every member is heard, nothing is sent.
    pub warm_up_us: u64,
    /// The CPU the node's loop thread runs on, as the operating system numbers them
    /// (`None`, the default: wherever the scheduler puts it). A pinned loop is never
    /// migrated, so it keeps its caches, and the operator decides which threads share
    /// its core (others may still run there): where a host's busy threads outnumber
    /// its cores (several nodes on one machine, a node beside its application), the
    /// scheduler can leave two nodes that poll through a view change on one core
    /// while another idles, and the round is then the sum of both
    /// (docs/bench/view_change_perf.md §23: about a fifth of the commit at N = 3 on a
    /// 2-core VM). The node does not start if the CPU is not one the starting thread
    /// may run on: absent, offline, or outside its `taskset` or cpuset
    /// ([`NodeError::Cpu`](super::NodeError::Cpu)). Linux only.
    pub cpu: Option<usize>,
    /// After a loop step that wrote datagrams or has events to publish, give the core
    /// away once (`sched_yield`) before the step's bookkeeping and publication
    /// (events, status, the event log): on a host with fewer cores than busy threads
    /// (several nodes on one machine, a node beside its application) the processes
    /// waiting for a core — those its datagrams woke, the other receivers of the
    /// fan-out that woke it — take their step first, and a view change's critical
    /// path waits less for this node's bookkeeping. The price: on such a host the
    /// application (subscribers, `NodeHandle::view`, the event log) hears of the step
    /// after those other steps, a few µs to a scheduler slice later; events and log
    /// records still carry the input's arrival time. With an idle core to spare the
    /// yield returns at once. Default `true` (docs/bench/view_change_perf.md §10).
    pub yield_before_publish: bool,
    /// While a view change this node takes part in is open, hold the news of a
    /// suspicion, a submission or a reconfiguration and publish it with the round's
    /// end (its install), or at most 5 ms (`OPEN_ROUND_SPIN_US`) after it, stamped
    /// with its input's arrival as before: on a host whose processes share a core,
    /// publishing (the event, the status, the log record: tens of µs with cold
    /// caches) between the round's steps delays the round. The price: subscribers,
    /// the status and the event log hear of those three kinds of events up to the
    /// round's length later (about 100 µs on a LAN; 5 ms if the round stalls).
    /// A step with nothing new to publish (the mgr's acknowledgements before the
    /// last) leaves what is held waiting. Installs, joins and exclusions are never
    /// held. Default `true` (docs/bench/view_change_perf.md §13, §14).
    pub publish_after_round: bool,
    /// This node's member tags (`sgmpd --tag KEY=VALUE`; `tags = { role = "db" }` in
    /// TOML): carried in its join request and agreed in every view; change them while
    /// running with [`NodeHandle::set_tags`](crate::NodeHandle::set_tags).
    pub tags: crate::TagSet,
    /// Largest encoded tags of one member, bytes (at most 512; 0 turns tags off). Every
    /// view holds room for `max_members` times this much.
    pub max_tag_bytes: usize,
}

/// How the node's loop waits (the transport driver's idle strategy). Written
/// `adaptive`, `block`, `recv`, `spin` or `spin:US` on the command line and in TOML.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum NodeIdle {
    /// Park in epoll, except while a view change this node takes part in is open (the
    /// mgr awaiting acknowledgements, a member the commit of what it acknowledged or
    /// the M-sub acting on a suspicion it reported):
    /// then poll the socket, yielding the core between reads, for at most
    /// `OPEN_ROUND_SPIN_US` (5 ms) from the round's opening
    /// (`IdleStrategy::Adaptive`). The view change's threads answer one another
    /// without the wake-ups of parked threads and idle cores (on a 2-core host the
    /// commit 17 % shorter at N = 5, less at larger N: docs/bench/view_change_perf.md
    /// §12);
    /// an idle node costs what a parked one does, and a round that stays open (a
    /// crashed mgr, a partition) at most 5 ms of polling. The default.
    #[default]
    Adaptive,
    /// Park in epoll (`IdleStrategy::Block`): never poll.
    Block,
    /// Park in a blocking read (`IdleStrategy::Recv`).
    Recv,
    /// Poll the socket, yielding the core between reads, for up to `spin_us` before
    /// parking in epoll (`IdleStrategy::SpinYield`), and through a view change this
    /// node takes part in (up to `OPEN_ROUND_SPIN_US`, 5 ms). The nodes of a view change then
    /// answer one another without the wake-ups of parked threads and idle cores (the
    /// commit at N = 5 about a fifth shorter on a 2-core host, BENCHMARKS §3.1), at the price
    /// of CPU: each loop iteration that finds nothing keeps polling for `spin_us` (an
    /// idle node about 5 % of a core at a 10 ms heartbeat, against 0.6 % parked).
    Spin {
        /// Longest poll before parking, µs (`spin` alone: [`NodeIdle::DEFAULT_SPIN_US`]).
        spin_us: u64,
    },
}

impl NodeIdle {
    /// The poll of `spin` without a figure, µs: longer than a view change's exchange
    /// among a few nodes on a LAN (an M-sub's acks, an M-com after an ack).
    pub const DEFAULT_SPIN_US: u64 = 200;
    /// Longest poll `spin:US` accepts, µs.
    pub const MAX_SPIN_US: u64 = 100_000;

    /// The transport's strategy.
    pub fn strategy(self) -> sgmp_transport::IdleStrategy {
        match self {
            NodeIdle::Adaptive => sgmp_transport::IdleStrategy::Adaptive,
            NodeIdle::Block => sgmp_transport::IdleStrategy::Block,
            NodeIdle::Recv => sgmp_transport::IdleStrategy::Recv,
            NodeIdle::Spin { spin_us } => sgmp_transport::IdleStrategy::SpinYield { spin_us },
        }
    }
}

impl std::fmt::Display for NodeIdle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeIdle::Adaptive => f.write_str("adaptive"),
            NodeIdle::Block => f.write_str("block"),
            NodeIdle::Recv => f.write_str("recv"),
            NodeIdle::Spin { spin_us } => write!(f, "spin:{spin_us}"),
        }
    }
}

impl std::str::FromStr for NodeIdle {
    type Err = String;

    /// `adaptive`, `block`, `recv`, `spin` or `spin:US` (1 ≤ US ≤
    /// [`NodeIdle::MAX_SPIN_US`]).
    fn from_str(s: &str) -> Result<NodeIdle, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "{s:?} is not an idle strategy (adaptive, block, recv, spin or spin:US with US from 1 to {})",
                NodeIdle::MAX_SPIN_US
            )
        };
        match s {
            "adaptive" => Ok(NodeIdle::Adaptive),
            "block" => Ok(NodeIdle::Block),
            "recv" => Ok(NodeIdle::Recv),
            "spin" => Ok(NodeIdle::Spin {
                spin_us: NodeIdle::DEFAULT_SPIN_US,
            }),
            _ => {
                let us = s.strip_prefix("spin:").ok_or_else(bad)?;
                match us.trim().parse::<u64>() {
                    Ok(spin_us) if (1..=NodeIdle::MAX_SPIN_US).contains(&spin_us) => {
                        Ok(NodeIdle::Spin { spin_us })
                    }
                    _ => Err(bad()),
                }
            }
        }
    }
}

impl TryFrom<String> for NodeIdle {
    type Error = String;
    fn try_from(s: String) -> Result<NodeIdle, String> {
        s.parse()
    }
}

impl From<NodeIdle> for String {
    fn from(i: NodeIdle) -> String {
        i.to_string()
    }
}

/// Shortest keep-warm interval `warm_us` accepts, µs (besides 0, off): below it a quiet
/// node would ping all the time, and a cache that cold would not come back faster.
pub const MIN_WARM_US: u64 = 100;

/// Default warm-up before a suspicion ([`NodeConfig::warm_up_us`]), µs: a path idle
/// for 2 ms has lost most of its warmth on a shared VM, so calls over the last 2 ms
/// before a suspicion cover the time a view change's steps need them warm for.
pub const DEFAULT_WARM_UP_US: u64 = 2_000;

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: "node".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            advertise: None,
            seeds: Vec::new(),
            cluster_id: 0x5347_4d50,
            heartbeat_ms: 100,
            suspect_ms: 500,
            protocol_timeout_ms: 1000,
            join_retry_ms: 300,
            join_timeout_ms: 5000,
            max_members: 64,
            max_snapshot: 16 * 1024,
            send_window: 128,
            recv_window: 128,
            coldstart_rounds: 5,
            coldstart_round_ms: 200,
            auto_rejoin: true,
            leave_linger_ms: 1000,
            incarnation: None,
            event_log: None,
            state_dir: None,
            faults: FaultSettings::default(),
            key_file: None,
            max_joins_per_sec: 50,
            max_clients: 16_384,
            max_client_ops: 512,
            client_heartbeat_ms: 200,
            client_timeout_ms: 1000,
            target_core: 5,
            idle: NodeIdle::Adaptive,
            warm_us: 0,
            warm_up_us: DEFAULT_WARM_UP_US,
            cpu: None,
            yield_before_publish: true,
            publish_after_round: true,
            tags: crate::TagSet::new(),
            max_tag_bytes: crate::tags::MAX_TAG_BYTES,
        }
    }
}

/// Why a node configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown or mistyped fields.
    #[error("invalid config{}: {message}", .path.as_ref().map(|p| format!(" file {}", p.display())).unwrap_or_default())]
    Parse {
        /// The file, if any.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// The key file is missing, unreadable or malformed.
    #[error("key file {path}: {message}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The largest configuration file read, bytes: far above any real one, and a bound on
/// what a mistaken path (`/dev/zero`, a log) can make the reader allocate.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Longest key file read (a keyring is a few lines of hex).
pub const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

/// The largest incarnation a configuration or a state file may give (2^62): each rejoin
/// takes the next one, so `incarnation + 1` never wraps (a wrapped or repeated
/// incarnation would let an excluded process come back under its old id).
pub const MAX_INCARNATION: u64 = 1 << 62;

/// Longest interval a `*_ms` setting may give: one day.
pub const MAX_INTERVAL_MS: u64 = 86_400_000;

/// Most client changes one update may carry (`max_client_ops`).
pub const MAX_CLIENT_OPS: usize = 65_535;

/// Most registered clients a node may be configured for (`max_clients`): its tables
/// are reserved at start.
pub const MAX_CLIENTS: usize = 1 << 22;

/// Most frame storage a node's transport may reserve at start
/// (`TransportConfig::reserved_bytes`: allocated zeroed in one block, so only the pages
/// traffic touches are backed, but a block larger than memory and swap together is
/// refused by the operating system and aborts the process). Every combination of
/// `max_members`, `max_client_ops` and `max_snapshot` a deployment uses stays well
/// below it (64 members with 65,535 client changes: 2.4 GiB; 1,024 members with a
/// 1 MiB snapshot: about 2 GiB); 1,024 members with 65,535 client changes asked for
/// 37 GB.
pub const MAX_RESERVED_BYTES: usize = 16 << 30;

/// Reads a configuration file's text: at most [`MAX_CONFIG_BYTES`] (a longer one is
/// refused, not read to the end), UTF-8.
pub fn read_config_file(path: &Path) -> Result<String, NodeConfigError> {
    use std::io::Read;
    let err = |source| NodeConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .map_err(err)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(err)?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("longer than {MAX_CONFIG_BYTES} bytes: not a configuration file"),
        )));
    }
    Ok(text)
}

impl NodeConfig {
    /// Parses a TOML document (missing fields take their defaults).
    pub fn from_toml_str(s: &str) -> Result<NodeConfig, NodeConfigError> {
        toml::from_str(s).map_err(|e| NodeConfigError::Parse {
            path: None,
            message: e.to_string(),
        })
    }

    /// Reads and parses a TOML file (at most [`MAX_CONFIG_BYTES`]).
    pub fn load(path: &Path) -> Result<NodeConfig, NodeConfigError> {
        let text = read_config_file(path)?;
        toml::from_str(&text).map_err(|e| NodeConfigError::Parse {
            path: Some(path.to_path_buf()),
            message: e.to_string(),
        })
    }

    /// The node name, checked.
    pub fn node_id(&self) -> Result<NodeId, NodeConfigError> {
        NodeId::new(&self.id)
            .map_err(|e| NodeConfigError::Invalid(format!("id {:?}: {e}", self.id)))
    }

    /// The address put in this node's `Member` record when bound at `bound`:
    /// [`advertise`](NodeConfig::advertise) (its port 0 replaced by the bound port), or
    /// `bound`.
    pub fn advertised(&self, bound: SocketAddr) -> SocketAddr {
        match self.advertise {
            Some(mut a) => {
                if a.port() == 0 {
                    a.set_port(bound.port());
                }
                a
            }
            None => bound,
        }
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<(), NodeConfigError> {
        self.node_id()?;
        // Before anything is derived from them: the sizes and intervals below are
        // multiplied into buffer sizes and microseconds.
        self.check_bounds()?;
        if self.listen.ip().is_unspecified() && self.advertise.is_none() {
            return Err(NodeConfigError::Invalid(format!(
                "listen address {} is unspecified (every interface): peers cannot use it; \
                 give the address they should use with advertise (sgmpd --advertise \
                 HOST:PORT)",
                self.listen
            )));
        }
        if let Some(a) = self.advertise {
            if a.ip().is_unspecified() {
                return Err(NodeConfigError::Invalid(format!(
                    "advertise address {a} is unspecified: give an address peers can reach"
                )));
            }
        }
        self.engine_config()
            .validate()
            .map_err(|e| NodeConfigError::Invalid(e.to_string()))?;
        let transport = self.transport_config();
        transport
            .validate()
            .map_err(|e| NodeConfigError::Invalid(e.to_string()))?;
        let reserved = transport.reserved_bytes();
        if reserved > MAX_RESERVED_BYTES {
            return Err(NodeConfigError::Invalid(format!(
                "the transport would reserve {} MiB of frame storage (room for {} peers' \
                 windows of {} frames, sized for the largest message: max_members, \
                 max_client_ops, max_tag_bytes and max_snapshot together); at most {} MiB: \
                 lower one of them",
                reserved >> 20,
                transport.max_peers,
                transport.send_window.max(transport.recv_window),
                MAX_RESERVED_BYTES >> 20
            )));
        }
        self.read_keyring()?;
        if let Some(cpu) = self.cpu {
            if cpu >= super::affinity::MAX_CPUS {
                return Err(NodeConfigError::Invalid(format!(
                    "cpu {cpu} is out of range: a thread can be pinned to CPUs 0 to {}",
                    super::affinity::MAX_CPUS - 1
                )));
            }
        }
        if self.coldstart_rounds == 0 || self.coldstart_round_ms == 0 {
            return Err(NodeConfigError::Invalid(
                "coldstart_rounds and coldstart_round_ms must be greater than zero".into(),
            ));
        }
        if self.join_timeout_ms == 0 {
            return Err(NodeConfigError::Invalid(
                "join_timeout_ms must be greater than zero".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.faults.loss) {
            return Err(NodeConfigError::Invalid(format!(
                "faults.loss must be in [0, 1] (got {})",
                self.faults.loss
            )));
        }
        if self.warm_us != 0 && self.warm_us < MIN_WARM_US {
            return Err(NodeConfigError::Invalid(format!(
                "warm_us must be 0 (no keep-warm pings) or at least {MIN_WARM_US} µs (got {}): \
                 a shorter interval pings all the time",
                self.warm_us
            )));
        }
        Ok(())
    }

    /// The sizes and intervals that are multiplied into buffer sizes and microseconds:
    /// each within a bound that keeps the products in range and the start-up's
    /// allocations possible.
    fn check_bounds(&self) -> Result<(), NodeConfigError> {
        let intervals = [
            ("heartbeat_ms", self.heartbeat_ms),
            ("suspect_ms", self.suspect_ms),
            ("protocol_timeout_ms", self.protocol_timeout_ms),
            ("join_retry_ms", self.join_retry_ms),
            ("join_timeout_ms", self.join_timeout_ms),
            ("coldstart_round_ms", self.coldstart_round_ms),
            ("leave_linger_ms", self.leave_linger_ms),
            ("client_heartbeat_ms", self.client_heartbeat_ms),
            ("client_timeout_ms", self.client_timeout_ms),
        ];
        for (name, ms) in intervals {
            if ms > MAX_INTERVAL_MS {
                return Err(NodeConfigError::Invalid(format!(
                    "{name} is {ms} ms: at most one day ({MAX_INTERVAL_MS} ms)"
                )));
            }
        }
        if !(1..=MAX_CLIENT_OPS).contains(&self.max_client_ops) {
            return Err(NodeConfigError::Invalid(format!(
                "max_client_ops must be 1 to {MAX_CLIENT_OPS} (got {})",
                self.max_client_ops
            )));
        }
        if self.max_snapshot > 1 << 20 {
            return Err(NodeConfigError::Invalid(
                "max_snapshot must be at most 1 MiB".into(),
            ));
        }
        if let Some(inc) = self.incarnation.filter(|&i| i > MAX_INCARNATION) {
            return Err(NodeConfigError::Invalid(format!(
                "incarnation is {inc}: at most {MAX_INCARNATION}"
            )));
        }
        if self.max_clients > MAX_CLIENTS {
            return Err(NodeConfigError::Invalid(format!(
                "max_clients is {}: at most {MAX_CLIENTS} (the tables are reserved at start)",
                self.max_clients
            )));
        }
        Ok(())
    }

    /// The cluster keyring from `key_file` ([`Keyring::NONE`] without one). Warns (through
    /// `tracing`) when the file can be read by its group or others.
    pub fn keyring(&self) -> Result<Keyring, NodeConfigError> {
        let keys = self.read_keyring()?;
        if let Some(path) = &self.key_file {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if let Ok(meta) = std::fs::metadata(path) {
                    let mode = meta.permissions().mode();
                    if mode & 0o077 != 0 {
                        tracing::warn!(
                            key_file = %path.display(),
                            mode = format_args!("{:o}", mode & 0o777),
                            "the key file can be read by its group or others; use chmod 600"
                        );
                    }
                }
            }
            tracing::info!(key_file = %path.display(), keys = ?keys, "cluster keys loaded");
        }
        Ok(keys)
    }

    fn read_keyring(&self) -> Result<Keyring, NodeConfigError> {
        let Some(path) = &self.key_file else {
            return Ok(Keyring::NONE);
        };
        let err = |message: String| NodeConfigError::Key {
            path: path.clone(),
            message,
        };
        // Bounded, as a configuration file is: a mistaken path that never ends
        // (`/dev/zero`) is refused, not read until memory runs out.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| {
                use std::io::Read;
                f.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes)
            })
            .map_err(|e| err(e.to_string()))?;
        if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
            return Err(err(format!(
                "longer than {MAX_KEY_FILE_BYTES} bytes: not a key file"
            )));
        }
        let keys = Keyring::parse(&bytes).map_err(|e| err(e.to_string()))?;
        Ok(keys)
    }

    /// The membership service's settings (None: the service is off).
    pub fn service_config(&self) -> Option<crate::service::ServiceConfig> {
        (self.max_clients > 0).then(|| crate::service::ServiceConfig {
            max_clients: self.max_clients,
            client_heartbeat_us: self.client_heartbeat_ms.max(1).saturating_mul(1000),
            client_timeout_us: self.client_timeout_ms.max(1).saturating_mul(1000),
            target_core: self.target_core,
            ..crate::service::ServiceConfig::default()
        })
    }

    /// The node core's settings for a node at `addr` (its advertised address, see
    /// [`NodeConfig::advertised`]), with the cluster `keys`
    /// (read by [`NodeConfig::keyring`]). §4.2.4: cold start is limited to the known set
    /// of sites, so a node that has seeds and is not one of them only ever joins.
    pub fn core_config(&self, addr: SocketAddr, keys: Keyring) -> super::CoreConfig {
        let mut transport = self.transport_config();
        transport.keys = keys;
        super::CoreConfig {
            engine: self.engine_config(),
            transport,
            max_joins_per_sec: self.max_joins_per_sec,
            seeds: self
                .seeds
                .iter()
                .copied()
                .filter(|a| *a != self.listen && *a != addr)
                .collect(),
            may_found: self.seeds.is_empty()
                || self.seeds.contains(&addr)
                || self.seeds.contains(&self.listen),
            coldstart_rounds: self.coldstart_rounds,
            coldstart_round_us: self.coldstart_round_ms.saturating_mul(1000),
            join_timeout_us: self.join_timeout_ms.saturating_mul(1000),
            auto_rejoin: self.auto_rejoin,
            leave_linger_us: self.leave_linger_ms.saturating_mul(1000),
            warm_up_us: self.warm_up_us,
            service: self.service_config(),
        }
    }

    /// The engine's settings.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            max_members: self.max_members,
            max_snapshot: self.max_snapshot,
            heartbeat_interval_us: self.heartbeat_ms.saturating_mul(1000),
            suspect_timeout_us: self.suspect_ms.saturating_mul(1000),
            protocol_timeout_us: self.protocol_timeout_ms.saturating_mul(1000),
            join_retry_us: self.join_retry_ms.saturating_mul(1000),
            max_client_ops: if self.max_clients == 0 {
                0
            } else {
                self.max_client_ops
            },
            max_pending_client_ops: self.max_clients,
            // One client heartbeat period: failures detected by different watchers
            // (whose checks are not in phase) share a view change.
            client_linger_us: self.client_heartbeat_ms.saturating_mul(1000),
            // The runtime feeds `Engine::peer_alive` from the transport (D20, D21).
            local_health: true,
            max_tag_bytes: self.max_tag_bytes,
            tags: self.tags.encode(),
            ..EngineConfig::default()
        }
    }

    /// The transport's settings: the peer table is sized from `max_members` (plus a
    /// margin for joiners and old incarnations), not the transport's default of 256,
    /// because the transport reserves frame storage per peer; the largest message is
    /// the engine's largest encoded message, and the windows are raised to hold it
    /// ([`TransportConfig::min_window`]: it grows with `max_members`, `max_client_ops`
    /// and `max_snapshot`, so it is met here, where it is computed, rather than refused
    /// by [`TransportConfig::validate`]).
    pub fn transport_config(&self) -> TransportConfig {
        let mut c = TransportConfig {
            cluster_id: self.cluster_id,
            max_peers: self.max_members + 16,
            max_message: crate::msg::max_encoded_len_with_tags(
                self.max_members,
                self.engine_config().max_client_ops,
                self.max_tag_bytes,
                self.max_snapshot,
            ),
            // Clients speak in probes (docs/SERVICE.md).
            probe_queue: if self.max_clients == 0 { 64 } else { 8192 },
            send_window: self.send_window,
            recv_window: self.recv_window,
            // Silence is the failure detector's business; the transport only reports
            // peers that stopped acknowledging for a few suspicion timeouts.
            unreachable_after_us: self
                .suspect_ms
                .saturating_mul(1000)
                .max(200_000)
                .saturating_mul(4),
            // Datagrams from unknown nodes may open at most `max_members` entries: the
            // margin stays for the peers this node sends to (`docs/SECURITY.md`).
            reserved_for_sends: 16,
            ..TransportConfig::default()
        };
        let need = c.min_window();
        c.send_window = c.send_window.max(need);
        c.recv_window = c.recv_window.max(need);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mistaken path that never ends (`/dev/zero`) or a file far too long is refused
    /// after a bounded read, as a typed error.
    #[test]
    fn an_endless_or_huge_config_file_is_refused_after_a_bounded_read() {
        let e = NodeConfig::load(Path::new("/dev/zero")).unwrap_err();
        assert!(matches!(e, NodeConfigError::Read { .. }), "{e}");
        assert!(e.to_string().contains("not a configuration file"), "{e}");
        let p = std::env::temp_dir().join(format!("sgmp-big-config-{}.toml", std::process::id()));
        let mut big = "id = \"a\"\n".to_string();
        big.push_str(&"#".repeat(MAX_CONFIG_BYTES as usize));
        std::fs::write(&p, &big).unwrap();
        let e = NodeConfig::load(&p).unwrap_err();
        std::fs::write(&p, "id = \"a\"\n").unwrap();
        assert_eq!(NodeConfig::load(&p).unwrap().id, "a");
        let _ = std::fs::remove_file(&p);
        assert!(e.to_string().contains("not a configuration file"), "{e}");
    }

    /// A key file that never ends is refused after a bounded read; sizes and intervals
    /// that would overflow the values derived from them, or reserve more memory at
    /// start than a host has, are refused by `validate` (before anything is derived
    /// from them), each naming its setting; the bounds themselves are accepted.
    #[test]
    fn endless_key_files_and_out_of_range_sizes_and_intervals_are_refused() {
        let base =
            || NodeConfig::from_toml_str("id = \"a\"\nlisten = \"127.0.0.1:7001\"\n").unwrap();
        base().validate().unwrap();
        let mut c = base();
        c.key_file = Some("/dev/zero".into());
        let e = c.validate().unwrap_err();
        assert!(matches!(e, NodeConfigError::Key { .. }), "{e}");
        assert!(e.to_string().contains("not a key file"), "{e}");
        // A key padded with comments to exactly the bound is read; a byte more is not.
        let p = std::env::temp_dir().join(format!("sgmp-key-bound-{}", std::process::id()));
        let key = format!("{}\n", "ab".repeat(32));
        let pad = MAX_KEY_FILE_BYTES as usize - key.len() - 2;
        let exact = format!("{key}#{}\n", "x".repeat(pad));
        std::fs::write(&p, &exact).unwrap();
        c.key_file = Some(p.clone());
        c.validate().unwrap();
        std::fs::write(&p, format!("{exact}#")).unwrap();
        let e = c.validate().unwrap_err();
        let _ = std::fs::remove_file(&p);
        assert!(e.to_string().contains("not a key file"), "{e}");
        type Setter = fn(&mut NodeConfig);
        let refused: [(&str, Setter); 7] = [
            ("incarnation", |c| c.incarnation = Some(MAX_INCARNATION + 1)),
            ("suspect_ms", |c| c.suspect_ms = 4_611_686_018_427_388),
            ("coldstart_round_ms", |c| c.coldstart_round_ms = u64::MAX),
            ("client_timeout_ms", |c| {
                c.client_timeout_ms = MAX_INTERVAL_MS + 1
            }),
            ("max_client_ops", |c| c.max_client_ops = 100_000_000_000),
            ("max_client_ops", |c| c.max_client_ops = 0),
            ("max_clients", |c| c.max_clients = 1_000_000_000_000),
        ];
        for (name, set) in refused {
            let mut c = base();
            set(&mut c);
            let e = c.validate().unwrap_err();
            assert!(matches!(e, NodeConfigError::Invalid(_)), "{name}: {e}");
            assert!(e.to_string().contains(name), "{name}: {e}");
        }
        let mut c = base();
        c.max_snapshot = usize::MAX;
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("max_snapshot"), "{e}");
        let mut c = base();
        c.suspect_ms = MAX_INTERVAL_MS;
        c.client_timeout_ms = MAX_INTERVAL_MS;
        c.max_client_ops = MAX_CLIENT_OPS;
        c.max_clients = MAX_CLIENTS;
        c.incarnation = Some(MAX_INCARNATION);
        c.validate().unwrap();
        // Each bound alone is fine, the largest view with the largest snapshot too; all
        // of them together would reserve tens of gigabytes.
        let mut big = base();
        big.max_members = 1024;
        big.max_snapshot = 1 << 20;
        big.validate().unwrap();
        c.max_members = 1024;
        c.max_snapshot = 1 << 20;
        let e = c.validate().unwrap_err();
        assert!(e.to_string().contains("frame storage"), "{e}");
    }

    /// Every idle strategy reads back as written, in TOML as on the command line, and
    /// a bad one is refused with the forms it may take.
    #[test]
    fn idle_strategies_parse_and_print() {
        for (text, idle) in [
            ("adaptive", NodeIdle::Adaptive),
            ("block", NodeIdle::Block),
            ("recv", NodeIdle::Recv),
            (
                "spin",
                NodeIdle::Spin {
                    spin_us: NodeIdle::DEFAULT_SPIN_US,
                },
            ),
            ("spin:50", NodeIdle::Spin { spin_us: 50 }),
            (" spin: 7 ", NodeIdle::Spin { spin_us: 7 }),
        ] {
            assert_eq!(text.parse::<NodeIdle>(), Ok(idle), "{text:?}");
            assert_eq!(idle.to_string().parse::<NodeIdle>(), Ok(idle));
            let c = NodeConfig::from_toml_str(&format!("idle = {:?}", idle.to_string())).unwrap();
            assert_eq!(c.idle, idle);
        }
        assert_eq!(
            NodeIdle::Spin { spin_us: 50 }.strategy(),
            sgmp_transport::IdleStrategy::SpinYield { spin_us: 50 }
        );
        for bad in [
            "",
            "spin:",
            "spin:0",
            "spin:100001",
            "spin:x",
            "busy",
            "spin50",
        ] {
            let e = bad.parse::<NodeIdle>().unwrap_err();
            assert!(e.contains("spin:US"), "{bad:?}: {e}");
            assert!(NodeConfig::from_toml_str(&format!("idle = {bad:?}")).is_err());
        }
        assert!(NodeConfig::from_toml_str("idle = 3").is_err());
    }

    #[test]
    fn toml_fields_and_defaults() {
        let c = NodeConfig::from_toml_str(
            "id = \"n1\"\nlisten = \"127.0.0.1:7001\"\nseeds = [\"127.0.0.1:7002\"]\nheartbeat_ms = 20\n[faults]\nloss = 0.1\n",
        )
        .unwrap();
        assert_eq!(c.id, "n1");
        assert_eq!(c.seeds.len(), 1);
        assert_eq!(c.heartbeat_ms, 20);
        assert_eq!(c.suspect_ms, 500);
        assert_eq!(c.faults.loss, 0.1);
        c.validate().unwrap();
        assert!(NodeConfig::from_toml_str("bogus = 1").is_err());
        assert!(NodeConfig::from_toml_str("heartbeat_ms = \"x\"").is_err());
        let bad = NodeConfig {
            id: "a#b".into(),
            ..NodeConfig::default()
        };
        assert!(bad.validate().is_err());
        let bad = NodeConfig {
            suspect_ms: 10,
            heartbeat_ms: 20,
            ..NodeConfig::default()
        };
        assert!(bad.validate().is_err());
        for (warm_us, ok) in [
            (0, true),
            (MIN_WARM_US - 1, false),
            (1, false),
            (MIN_WARM_US, true),
        ] {
            let c = NodeConfig {
                warm_us,
                ..NodeConfig::default()
            };
            assert_eq!(c.validate().is_ok(), ok, "warm_us = {warm_us}");
        }
        assert_eq!(NodeConfig::default().transport_config().max_peers, 80);
    }

    #[test]
    fn key_file_loading() {
        let dir = std::env::temp_dir().join(format!("sgmp-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.key");
        let k = Keyring::new([0x3c; 32], Some([0x4d; 32]));
        std::fs::write(&good, k.to_key_file()).unwrap();
        let c = NodeConfig::from_toml_str(&format!("key_file = {:?}", good.display().to_string()))
            .unwrap();
        assert_eq!(c.keyring().unwrap(), k);
        c.validate().unwrap();
        assert!(
            c.transport_config().keys == Keyring::NONE,
            "keys are loaded by the node"
        );
        assert_eq!(NodeConfig::default().keyring().unwrap(), Keyring::NONE);
        let missing = NodeConfig {
            key_file: Some(dir.join("missing.key")),
            ..NodeConfig::default()
        };
        let e = missing.validate().unwrap_err().to_string();
        assert!(e.contains("missing.key"), "{e}");
        let bad = dir.join("bad.key");
        std::fs::write(&bad, "not a key\n").unwrap();
        let e = NodeConfig {
            key_file: Some(bad),
            ..NodeConfig::default()
        }
        .keyring()
        .unwrap_err()
        .to_string();
        assert!(e.contains("line 1"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn transport_config_is_valid_and_its_windows_hold_the_largest_message() {
        for (max_members, max_snapshot) in [(3, 0), (64, 16 * 1024), (1024, 1 << 20)] {
            let c = NodeConfig {
                max_members,
                max_snapshot,
                send_window: 1,
                recv_window: 1,
                ..NodeConfig::default()
            };
            let t = c.transport_config();
            assert_eq!(t.validate(), Ok(()), "{max_members} members");
            assert_eq!(t.normalized(), t, "what the endpoint uses");
            assert_eq!(
                (t.send_window, t.recv_window),
                (t.min_window(), t.min_window())
            );
            c.validate().unwrap();
        }
        // Windows larger than needed are kept.
        let c = NodeConfig {
            max_clients: 0,
            ..NodeConfig::default()
        };
        let t = c.transport_config();
        assert!(t.min_window() < 128, "{}", t.min_window());
        assert_eq!((t.send_window, t.recv_window), (128, 128));
    }
}
