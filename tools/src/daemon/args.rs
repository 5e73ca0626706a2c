//! The flags of `sgmpd` and its `--config` file: one type for both.
//!
//! Every flag is also a key of the TOML file (the flag's name with underscores:
//! `--state-dir` is `state_dir`); flags override the file. The file may also set the
//! node's advanced settings that have no flag (`join_retry_ms`, `max_members`,
//! `auto_rejoin`, `[faults]`, ...: the fields of `NodeConfig`).

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches, Parser};
use serde::{Deserialize, Serialize};
use sgmp_membership::node::{NodeConfig, NodeConfigError, NodeIdle};

use super::DaemonError;
use crate::control::default_control_path;

/// Command-line flags of `sgmpd`, and the keys of its `--config` file (same names, with
/// underscores). Flags override the file.
#[derive(Parser, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[command(
    name = "sgmpd",
    version,
    about = "An S-GMP group membership daemon: one member (or client) of a group",
    after_help = "Every flag is also a key of the --config file (with underscores: \
                  state_dir = \"DIR\"); flags override the file."
)]
pub struct DaemonArgs {
    /// Node name (printable ASCII, no '#' or space, at most 31 bytes).
    #[arg(long, value_name = "NAME")]
    pub id: Option<String>,
    /// UDP address to listen on: IP:PORT or HOST:PORT (e.g. localhost:7401; a name is
    /// resolved at start).
    #[arg(long, value_name = "HOST:PORT", value_parser = trimmed)]
    pub listen: Option<String>,
    /// The address peers are told to use for this node (HOST:PORT or IP:PORT), when it
    /// is not the --listen address: required with an unspecified --listen such as
    /// 0.0.0.0:7401 (port 0: the bound port).
    #[arg(long, value_name = "HOST:PORT", value_parser = trimmed)]
    pub advertise: Option<String>,
    /// Seed addresses, comma-separated (HOST:PORT or IP:PORT, spaces allowed after the
    /// commas): the known sites queried at cold start.
    #[arg(long, value_name = "ADDR,...", value_delimiter = ',', value_parser = trimmed)]
    pub seeds: Option<Vec<String>>,
    /// Append events (views, exclusion, suspicions) as JSON lines to this file.
    #[arg(long, value_name = "PATH")]
    pub event_log: Option<PathBuf>,
    /// Unix socket for sgmpctl (created with mode 0600). Without it, the daemon uses
    /// $XDG_RUNTIME_DIR/sgmp/ID.sock (or /run/sgmp/ID.sock) when it can.
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Heartbeat interval, ms.
    #[arg(long, value_name = "MS")]
    pub heartbeat_ms: Option<u64>,
    /// Suspicion timeout, ms (longer than --heartbeat-ms).
    #[arg(long, value_name = "MS")]
    pub suspect_ms: Option<u64>,
    /// Protocol timeout, ms.
    #[arg(long, value_name = "MS")]
    pub protocol_timeout_ms: Option<u64>,
    /// Cold start rounds before founding the group.
    #[arg(long, value_name = "N")]
    pub coldstart_rounds: Option<u32>,
    /// Cold start round length, ms.
    #[arg(long, value_name = "MS")]
    pub coldstart_round_ms: Option<u64>,
    /// Cluster id (datagrams of other clusters are dropped).
    #[arg(long, value_name = "N")]
    pub cluster_id: Option<u64>,
    /// Do not rejoin as a new incarnation after being excluded.
    #[arg(long)]
    pub no_auto_rejoin: bool,
    /// TOML config file (keys: the flags' names with underscores, plus the advanced
    /// fields of NodeConfig).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// File holding the cluster key(s) (one or two lines of 64 hex digits, or 32 raw
    /// bytes; mode 0600). Every datagram is then authenticated. The key itself is never
    /// accepted on the command line.
    #[arg(long, value_name = "PATH")]
    pub key_file: Option<PathBuf>,
    /// Join requests handled per second (0: no cap).
    #[arg(long, value_name = "N")]
    pub max_joins_per_sec: Option<u32>,
    /// State directory: the node's durable state (last view, acknowledged proposals,
    /// incarnation counter), saved before every acknowledgement or commit that
    /// depends on it (`docs/PROTOCOL.md` D22). A restarted node recovers the group
    /// with the others from it, or rejoins it; it never founds a second group (D23).
    /// Without it the state lives in memory only and a restart comes back as a joiner.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Run as a client of the membership service instead of a core member: register
    /// with the core at --seeds, heartbeat, and log every system view
    /// (`docs/SERVICE.md`). A removed client comes back as a new incarnation (unless
    /// --no-auto-rejoin).
    #[arg(long)]
    pub client: bool,
    /// (Client) May be promoted into the core when it is short of --target-core
    /// members: the client then joins the core with the same process id.
    #[arg(long)]
    pub core_eligible: bool,
    /// Most registered clients of the membership service (0 turns the service off).
    #[arg(long, value_name = "N")]
    pub max_clients: Option<usize>,
    /// Most client changes one core view change commits (a batch; default 512). Larger
    /// batches mean fewer system views while many clients register at once (a burst
    /// of N registrations takes about N / this many views), at the price of larger
    /// messages (the transport windows grow with it).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=65_535))]
    pub max_client_ops: Option<u64>,
    /// Client heartbeat (hello) period, ms.
    #[arg(long, value_name = "MS")]
    pub client_heartbeat_ms: Option<u64>,
    /// Silence after which a client's watcher reports it for removal, ms.
    #[arg(long, value_name = "MS")]
    pub client_timeout_ms: Option<u64>,
    /// Core size the mgr keeps by promoting core-eligible clients (0: none).
    #[arg(long, value_name = "N")]
    pub target_core: Option<usize>,
    /// How the loop waits for datagrams: `adaptive` (epoll, but polling the socket,
    /// yielding the core, while a view change this node takes part in is open: at most
    /// 5 ms per round), `block` (epoll only), `recv` (blocking read) or `spin[:US]`
    /// (poll the socket, yielding the core, for up to US µs, default 200, after every
    /// step before parking: the lowest latency, for CPU).
    #[arg(long, value_name = "adaptive|block|recv|spin[:US]", value_parser = parse_idle)]
    pub idle: Option<NodeIdle>,
    /// Keep-warm pings, µs (0: off, the default; otherwise at least 100): after this
    /// long without a datagram, send an empty datagram to the next other member, so
    /// that the kernel's and the node's receive paths stay in cache on a host whose
    /// other tenants evict them (a view change's commit about a fifth shorter at N = 5
    /// on a shared VM with 1000), for one tiny datagram per interval per quiet node.
    #[arg(long, value_name = "US")]
    pub warm_us: Option<u64>,
    /// Warm-up before a suspicion, µs (default 2000; 0: off): when the member this
    /// node watches has been silent for all but this long of the suspicion timeout
    /// (at most a quarter of it, and half of what it leaves beyond the heartbeat
    /// interval), call the view's other members every 250 µs with a
    /// one-byte datagram they answer with an empty one (with `--idle adaptive` the
    /// caller and the called poll their sockets meanwhile), so that the view change
    /// that follows finds its paths warm. Nothing is sent while every member is heard.
    #[arg(long, value_name = "US")]
    pub warm_up_us: Option<u64>,
    /// Run the node's loop thread on this CPU only (numbered as in /proc/cpuinfo;
    /// default: wherever the scheduler puts it; Linux only). A pinned node is never
    /// migrated, keeps its caches, and shares its core only with what the operator
    /// puts there: on a host with more busy threads than cores, the scheduler can
    /// otherwise leave two nodes polling through one view change on a single core. The
    /// daemon does not start if the CPU is not one it may use (absent, offline, outside
    /// its taskset). With --client, the node runs there once promoted.
    #[arg(long, value_name = "CPU")]
    pub cpu: Option<usize>,
    /// Accept fault injection through the control socket (`sgmpctl fault ...`: loss,
    /// duplication, reordering, partitions) and `[faults] loss` in the config. Off by
    /// default: a daemon without it refuses every fault command. For tests only.
    #[arg(long)]
    pub fault_injection: bool,
    /// Serve Prometheus metrics (text format) at http://ADDR/metrics (IP:PORT or
    /// HOST:PORT).
    #[arg(long, value_name = "HOST:PORT", value_parser = trimmed)]
    pub metrics_listen: Option<String>,
    /// Use the UDP socket inherited as this file descriptor, bound already, instead of
    /// binding --listen (for a supervisor or a test that holds the port: no window
    /// between choosing a port and binding it). --listen, if given, must be its address.
    #[arg(long, value_name = "FD")]
    pub listen_fd: Option<i32>,
    /// A member tag KEY=VALUE, repeatable (--tag role=db --tag zone=eu-1): carried in
    /// this node's join request and agreed in every view; shown by `sgmpctl members`.
    /// Keys are 1-64 of A-Z a-z 0-9 _ . -; values UTF-8; at most 512 bytes encoded in
    /// all. In the config file: `tag = ["role=db"]`, or the map `tags = { role = "db" }`
    /// (flags win per key).
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Option<Vec<String>>,
}

fn trimmed(s: &str) -> Result<String, String> {
    Ok(s.trim().to_string())
}

fn parse_idle(s: &str) -> Result<NodeIdle, String> {
    s.parse()
}

/// The daemon's control socket and whether the user named it (a default path that
/// cannot be used is a warning, a named one an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlSocket {
    /// The socket path.
    pub path: PathBuf,
    /// Given by `--control` (or `control` in the file), not the default.
    pub explicit: bool,
}

/// Everything the daemon runs with: the node's configuration (names resolved, values
/// checked) and the daemon's own settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The node's configuration.
    pub node: NodeConfig,
    /// The control socket (None: no usable default path).
    pub control: Option<ControlSocket>,
    /// The state directory (`--state-dir`), also in `node.state_dir`.
    pub state_dir: Option<PathBuf>,
    /// Client mode (`--client`).
    pub client: bool,
    /// Core-eligible client (`--core-eligible`).
    pub core_eligible: bool,
    /// Fault commands accepted (`--fault-injection`).
    pub fault_injection: bool,
    /// The Prometheus endpoint's address (`--metrics-listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// The inherited, bound UDP socket to run on (`--listen-fd`), checked to be one;
    /// `node.listen` is its address.
    pub listen_fd: Option<i32>,
}

/// The local address of the UDP socket open as `fd` in this process, without taking
/// ownership of it; an error a user understands if `fd` is not an open, bound UDP socket.
fn inherited_udp_addr(fd: i32) -> Result<SocketAddr, String> {
    use std::os::fd::BorrowedFd;
    if fd < 0 {
        return Err("not a file descriptor".into());
    }
    // SAFETY: the descriptor is only borrowed for these two queries, which fail cleanly
    // (EBADF, ENOTSOCK) when it is not an open socket; nothing is closed or written.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err("not an open file descriptor (was it passed to the daemon?)".into());
    }
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let sock = socket2::SockRef::from(&borrowed);
    match sock.r#type() {
        Ok(t) if t == socket2::Type::DGRAM => {}
        Ok(_) => return Err("not a UDP (datagram) socket".into()),
        Err(e) => return Err(format!("not a socket ({e})")),
    }
    let addr = sock
        .local_addr()
        .map_err(|e| format!("cannot read its address ({e})"))?;
    match addr.as_socket() {
        Some(a) if a.port() != 0 => Ok(a),
        Some(_) => Err("the socket is not bound (port 0)".into()),
        None => Err("not an IP socket".into()),
    }
}

/// The defaults shown by `--help`, from `NodeConfig::default()` (so they are never out
/// of date): (argument id, default).
fn help_defaults() -> Vec<(&'static str, String)> {
    let d = NodeConfig::default();
    vec![
        ("listen", d.listen.to_string()),
        ("heartbeat_ms", d.heartbeat_ms.to_string()),
        ("suspect_ms", d.suspect_ms.to_string()),
        ("protocol_timeout_ms", d.protocol_timeout_ms.to_string()),
        ("coldstart_rounds", d.coldstart_rounds.to_string()),
        ("coldstart_round_ms", d.coldstart_round_ms.to_string()),
        ("cluster_id", d.cluster_id.to_string()),
        ("max_joins_per_sec", d.max_joins_per_sec.to_string()),
        ("max_clients", d.max_clients.to_string()),
        ("max_client_ops", d.max_client_ops.to_string()),
        ("client_heartbeat_ms", d.client_heartbeat_ms.to_string()),
        ("client_timeout_ms", d.client_timeout_ms.to_string()),
        ("target_core", d.target_core.to_string()),
        ("idle", d.idle.to_string()),
        ("warm_us", d.warm_us.to_string()),
        ("warm_up_us", d.warm_up_us.to_string()),
        ("control", default_control_path("ID").display().to_string()),
    ]
}

/// The clap command of `sgmpd`, with the defaults shown in `--help`.
pub fn command() -> clap::Command {
    let mut cmd = DaemonArgs::command();
    for (id, default) in help_defaults() {
        cmd = cmd.mut_arg(id, |a| {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            a.help(format!("{help} [default: {default}]"))
        });
    }
    cmd
}

fn kebab(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

impl DaemonArgs {
    /// Parses the process's arguments (`--help` shows the defaults); exits with clap's
    /// message on a bad flag.
    pub fn parse_with_defaults() -> DaemonArgs {
        let m = command().get_matches();
        DaemonArgs::from_arg_matches(&m).unwrap_or_else(|e| e.exit())
    }

    /// Reads a config file: the daemon's keys (every flag) and the node's advanced
    /// settings.
    pub fn load_file(path: &Path) -> Result<(DaemonArgs, NodeConfig), DaemonError> {
        let text = sgmp_membership::node::read_config_file(path)?;
        Self::from_toml(&text, Some(path))
    }

    /// Parses a config file's text (see [`DaemonArgs::load_file`]).
    pub fn from_toml(
        text: &str,
        path: Option<&Path>,
    ) -> Result<(DaemonArgs, NodeConfig), DaemonError> {
        let parse = |message: String| NodeConfigError::Parse {
            path: path.map(Path::to_path_buf),
            message,
        };
        let table: toml::Table = toml::from_str(text).map_err(|e| parse(e.to_string()))?;
        let mine: HashSet<String> = DaemonArgs::command()
            .get_arguments()
            .filter(|a| a.get_long().is_some())
            .map(|a| a.get_id().to_string())
            .filter(|id| id != "config")
            .collect();
        let (daemon, node): (toml::Table, toml::Table) =
            table.into_iter().partition(|(k, _)| mine.contains(k));
        let args: DaemonArgs = toml::Value::Table(daemon)
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.to_string()))?;
        let base: NodeConfig = toml::Value::Table(node)
            .try_into()
            .map_err(|e: toml::de::Error| parse(e.to_string()))?;
        Ok((args, base))
    }

    /// These flags over `file` (a value given here wins; a switch is on if either
    /// turns it on).
    pub fn over(&self, file: DaemonArgs) -> DaemonArgs {
        // Destructured in full: a new flag that is not merged here does not compile.
        let DaemonArgs {
            id,
            listen,
            advertise,
            seeds,
            event_log,
            control,
            heartbeat_ms,
            suspect_ms,
            protocol_timeout_ms,
            coldstart_rounds,
            coldstart_round_ms,
            cluster_id,
            no_auto_rejoin,
            config,
            key_file,
            max_joins_per_sec,
            state_dir,
            client,
            core_eligible,
            max_clients,
            max_client_ops,
            client_heartbeat_ms,
            client_timeout_ms,
            target_core,
            idle,
            warm_us,
            warm_up_us,
            cpu,
            fault_injection,
            metrics_listen,
            listen_fd,
            tag,
        } = file;
        let f = self.clone();
        DaemonArgs {
            id: f.id.or(id),
            listen: f.listen.or(listen),
            advertise: f.advertise.or(advertise),
            seeds: f.seeds.or(seeds),
            event_log: f.event_log.or(event_log),
            control: f.control.or(control),
            heartbeat_ms: f.heartbeat_ms.or(heartbeat_ms),
            suspect_ms: f.suspect_ms.or(suspect_ms),
            protocol_timeout_ms: f.protocol_timeout_ms.or(protocol_timeout_ms),
            coldstart_rounds: f.coldstart_rounds.or(coldstart_rounds),
            coldstart_round_ms: f.coldstart_round_ms.or(coldstart_round_ms),
            cluster_id: f.cluster_id.or(cluster_id),
            no_auto_rejoin: f.no_auto_rejoin || no_auto_rejoin,
            config: f.config.or(config),
            key_file: f.key_file.or(key_file),
            max_joins_per_sec: f.max_joins_per_sec.or(max_joins_per_sec),
            state_dir: f.state_dir.or(state_dir),
            client: f.client || client,
            core_eligible: f.core_eligible || core_eligible,
            max_clients: f.max_clients.or(max_clients),
            max_client_ops: f.max_client_ops.or(max_client_ops),
            client_heartbeat_ms: f.client_heartbeat_ms.or(client_heartbeat_ms),
            client_timeout_ms: f.client_timeout_ms.or(client_timeout_ms),
            target_core: f.target_core.or(target_core),
            idle: f.idle.or(idle),
            warm_us: f.warm_us.or(warm_us),
            warm_up_us: f.warm_up_us.or(warm_up_us),
            cpu: f.cpu.or(cpu),
            fault_injection: f.fault_injection || fault_injection,
            metrics_listen: f.metrics_listen.or(metrics_listen),
            listen_fd: f.listen_fd.or(listen_fd),
            tag: match (f.tag, tag) {
                // The file's tags first, the flags' over them (per key).
                (Some(flags), Some(mut file)) => {
                    file.extend(flags);
                    Some(file)
                }
                (flags, file) => flags.or(file),
            },
        }
    }

    /// True if the flag of this field was given on the command line.
    fn given(&self, field: &str) -> bool {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(o)) => !matches!(
                o.get(field),
                None | Some(serde_json::Value::Null | serde_json::Value::Bool(false))
            ),
            _ => false,
        }
    }

    /// The node's configuration (file, then flags; names resolved, values checked).
    pub fn node_config(&self) -> Result<NodeConfig, DaemonError> {
        Settings::from_args(self).map(|s| s.node)
    }
}

/// Names settings to the user: the flag they typed, or the key of the file the value
/// came from.
struct Namer<'a> {
    flags: &'a DaemonArgs,
    file: DaemonArgs,
    path: Option<&'a Path>,
}

impl Namer<'_> {
    fn name(&self, field: &str) -> String {
        let is_flag = DaemonArgs::command()
            .get_arguments()
            .any(|a| a.get_id().as_str() == field);
        let in_file = |p: &Path| format!("{field} (in {})", p.display());
        match self.path {
            _ if is_flag && self.flags.given(field) => kebab(field),
            Some(p) if !is_flag || self.file.given(field) => in_file(p),
            _ if is_flag => kebab(field),
            _ => field.to_string(),
        }
    }
}

/// Resolves `HOST:PORT` or `IP:PORT`, preferring an address of the family of `like`
/// (else IPv4).
fn resolve(flag: &str, addr: &str, like: Option<SocketAddr>) -> Result<SocketAddr, DaemonError> {
    let err = |message: String| DaemonError::Resolve {
        flag: flag.to_string(),
        addr: addr.to_string(),
        message,
    };
    if let Ok(a) = addr.parse::<SocketAddr>() {
        return Ok(a);
    }
    if !addr.contains(':') {
        return Err(err("expected HOST:PORT or IP:PORT".into()));
    }
    let all: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| err(e.to_string()))?
        .collect();
    let want_v6 = like.is_some_and(|l| l.is_ipv6());
    all.iter()
        .find(|a| a.is_ipv6() == want_v6)
        .or(all.first())
        .copied()
        .ok_or_else(|| err("no address".into()))
}

impl Settings {
    /// The settings from the flags and the file they name (flags win): host names
    /// resolved, every value checked, errors naming the flag (or file key) at fault.
    pub fn from_args(flags: &DaemonArgs) -> Result<Settings, DaemonError> {
        let (file, mut c) = match &flags.config {
            Some(p) => DaemonArgs::load_file(p)?,
            None => (DaemonArgs::default(), NodeConfig::default()),
        };
        let namer = Namer {
            flags,
            file: file.clone(),
            path: flags.config.as_deref(),
        };
        let a = flags.over(file);
        let DaemonArgs {
            id,
            listen,
            advertise,
            seeds,
            event_log,
            control,
            heartbeat_ms,
            suspect_ms,
            protocol_timeout_ms,
            coldstart_rounds,
            coldstart_round_ms,
            cluster_id,
            no_auto_rejoin,
            config: _,
            key_file,
            max_joins_per_sec,
            state_dir,
            client,
            core_eligible,
            max_clients,
            max_client_ops,
            client_heartbeat_ms,
            client_timeout_ms,
            target_core,
            idle,
            warm_us,
            warm_up_us,
            cpu,
            fault_injection,
            metrics_listen,
            listen_fd,
            tag,
        } = a;
        let Some(id) = id else {
            return Err(DaemonError::Missing(
                "--id NAME is required (or `id` in --config)",
            ));
        };
        c.id = id;
        let listen_given = listen.is_some();
        if let Some(l) = listen {
            c.listen = resolve(&namer.name("listen"), &l, None)?;
        }
        if let Some(fd) = listen_fd {
            let name = namer.name("listen_fd");
            let bound = inherited_udp_addr(fd)
                .map_err(|e| DaemonError::Invalid(format!("{name} {fd}: {e}")))?;
            if listen_given && c.listen != bound {
                return Err(DaemonError::Invalid(format!(
                    "{name} {fd} is bound to {bound}, not to {} {}",
                    namer.name("listen"),
                    c.listen
                )));
            }
            if client {
                return Err(DaemonError::Invalid(format!(
                    "{name} is for members; a client (--client) binds its own socket"
                )));
            }
            c.listen = bound;
        }
        if core_eligible && !client {
            // Not an error: a config file shared by clients and members may set it.
            tracing::warn!(
                "{} is for clients (--client): a member is in the core already; ignored",
                namer.name("core_eligible")
            );
        }
        if let Some(a) = advertise {
            c.advertise = Some(resolve(&namer.name("advertise"), &a, Some(c.listen))?);
        }
        if c.listen.ip().is_unspecified() && c.advertise.is_none() {
            return Err(DaemonError::Invalid(format!(
                "{} {} listens on every interface: peers cannot use that address; add \
                 --advertise HOST:PORT, the address they should use (e.g. --advertise \
                 10.0.0.1:{})",
                namer.name("listen"),
                c.listen,
                c.listen.port()
            )));
        }
        if let Some(s) = seeds {
            let name = namer.name("seeds");
            c.seeds = s
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(|s| resolve(&name, s, Some(c.listen)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(p) = event_log {
            c.event_log = Some(p);
        }
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = $f { c.$f = v; } )* };
        }
        set!(
            heartbeat_ms,
            suspect_ms,
            protocol_timeout_ms,
            coldstart_rounds,
            coldstart_round_ms,
            cluster_id,
            max_joins_per_sec,
            max_clients,
            client_heartbeat_ms,
            client_timeout_ms,
            target_core,
            idle,
            warm_us,
            warm_up_us
        );
        if let Some(v) = max_client_ops {
            c.max_client_ops = v as usize;
        }
        if no_auto_rejoin {
            c.auto_rejoin = false;
        }
        if cpu.is_some() {
            c.cpu = cpu;
        }
        for pair in tag.iter().flatten() {
            if let Err(e) = c.tags.insert_pair(pair) {
                return Err(DaemonError::Invalid(format!("{}: {e}", namer.name("tag"))));
            }
        }
        if let Err(e) = c.tags.check_size(c.max_tag_bytes) {
            return Err(DaemonError::Invalid(format!("{}: {e}", namer.name("tag"))));
        }
        if let Some(p) = key_file {
            c.key_file = Some(p);
        }
        let bad = |m: String| Err(DaemonError::Invalid(m));
        if !(1..=65_535).contains(&c.max_client_ops) {
            return bad(format!(
                "{} is {}: a batch holds 1 to 65535 client changes",
                namer.name("max_client_ops"),
                c.max_client_ops
            ));
        }
        if let Err(e) = c.node_id() {
            return bad(format!("{}: {}", namer.name("id"), strip_invalid(&e)));
        }
        for (field, v) in [
            ("heartbeat_ms", c.heartbeat_ms),
            ("suspect_ms", c.suspect_ms),
            ("protocol_timeout_ms", c.protocol_timeout_ms),
            ("coldstart_rounds", u64::from(c.coldstart_rounds)),
            ("coldstart_round_ms", c.coldstart_round_ms),
            ("client_heartbeat_ms", c.client_heartbeat_ms),
            ("client_timeout_ms", c.client_timeout_ms),
            ("join_retry_ms", c.join_retry_ms),
            ("join_timeout_ms", c.join_timeout_ms),
        ] {
            if v == 0 {
                return bad(format!("{} must be greater than zero", namer.name(field)));
            }
        }
        // A timeout not longer than its heartbeat would fire between two heartbeats
        // (every member, or every client, suspected).
        for (long, l, short, sv) in [
            ("suspect_ms", c.suspect_ms, "heartbeat_ms", c.heartbeat_ms),
            (
                "client_timeout_ms",
                c.client_timeout_ms,
                "client_heartbeat_ms",
                c.client_heartbeat_ms,
            ),
        ] {
            if l <= sv {
                return bad(format!(
                    "{} ({l}) must be longer than {} ({sv})",
                    namer.name(long),
                    namer.name(short),
                ));
            }
        }
        if c.faults.loss != 0.0 && !fault_injection {
            return bad(
                "[faults] loss in the config injects faults: it needs --fault-injection \
                 (or fault_injection = true)"
                    .into(),
            );
        }
        c.validate()?;
        let metrics_listen = match metrics_listen {
            Some(m) => Some(resolve(&namer.name("metrics_listen"), &m, None)?),
            None => None,
        };
        let control = match control {
            Some(path) => Some(ControlSocket {
                path,
                explicit: true,
            }),
            None => Some(ControlSocket {
                path: default_control_path(&c.id),
                explicit: false,
            }),
        };
        c.state_dir = state_dir.clone();
        Ok(Settings {
            node: c,
            control,
            state_dir,
            client,
            core_eligible,
            fault_injection,
            metrics_listen,
            listen_fd,
        })
    }
}

/// A config error's message without the "invalid setting: " prefix.
fn strip_invalid(e: &NodeConfigError) -> String {
    match e {
        NodeConfigError::Invalid(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value of some TOML type that `key` accepts, if any.
    fn accepted(key: &str) -> Option<DaemonArgs> {
        let candidates = [
            "\"n1\"",
            "\"127.0.0.1:7001\"",
            "\"block\"",
            "7",
            "true",
            "[\"127.0.0.1:7002\"]",
        ];
        candidates.iter().find_map(|v| {
            DaemonArgs::from_toml(&format!("{key} = {v}\n"), None)
                .ok()
                .map(|(a, _)| a)
        })
    }

    /// Walks the clap definition: every long flag but `--config` (and clap's own
    /// `--help`/`--version`) is a key of the config file, and setting it changes the
    /// daemon's settings.
    #[test]
    fn every_flag_is_a_config_key() {
        let cmd = DaemonArgs::command();
        let mut checked = 0;
        for a in cmd.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if matches!(long, "config" | "help" | "version") {
                continue;
            }
            let key = long.replace('-', "_");
            assert_eq!(a.get_id().as_str(), key, "flag --{long}: id is not its key");
            let got =
                accepted(&key).unwrap_or_else(|| panic!("--{long}: `{key}` is not a config key"));
            assert_ne!(
                got,
                DaemonArgs::default(),
                "`{key}` in the config has no effect"
            );
            checked += 1;
        }
        assert!(checked >= 24, "only {checked} flags");
        // `config` itself cannot be set from a file.
        assert!(DaemonArgs::from_toml("config = \"x.toml\"\n", None).is_err());
        // Unknown keys are refused.
        assert!(DaemonArgs::from_toml("contrl = \"x\"\n", None).is_err());
    }

    #[test]
    fn tags_from_flags_and_file_merge_flags_winning_per_key() {
        let (file, mut node) = DaemonArgs::from_toml(
            "id = \"n1\"\ntags = { role = \"db\", dc = \"ams\" }\ntag = [\"zone=eu\", \"rack=r1\"]\n",
            None,
        )
        .unwrap();
        assert_eq!(node.tags.get("dc"), Some("ams"));
        let flags = DaemonArgs::try_parse_from([
            "sgmpd", "--tag", "rack=r2", "--tag", "role=web", "--tag", "x=",
        ])
        .unwrap();
        let a = flags.over(file);
        for p in a.tag.iter().flatten() {
            node.tags.insert_pair(p).unwrap();
        }
        let got: Vec<_> = node.tags.iter().collect();
        assert_eq!(
            got,
            [
                ("dc", "ams"),
                ("rack", "r2"),
                ("role", "web"),
                ("x", ""),
                ("zone", "eu")
            ]
        );
        // A bad key in the file's map is a parse error naming the rule.
        let e = DaemonArgs::from_toml("tags = { \"a b\" = \"x\" }\n", None).unwrap_err();
        assert!(e.to_string().contains("A-Z a-z 0-9"), "{e}");
        // A bad --tag names the flag.
        let flags = DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--tag", "novalue"]).unwrap();
        let e = Settings::from_args(&flags).unwrap_err().to_string();
        assert!(e.starts_with("--tag: ") && e.contains("KEY=VALUE"), "{e}");
    }

    #[test]
    fn keys_the_readme_names_work_in_a_file() {
        let (a, node) = DaemonArgs::from_toml(
            "id = \"n1\"\nlisten = \"localhost:7001\"\nseeds = [\"localhost:7001\", \" 127.0.0.1:7002 \"]\n\
             control = \"/tmp/x.sock\"\nstate_dir = \"/tmp/x.state\"\nclient = true\n\
             core_eligible = true\nfault_injection = true\njoin_retry_ms = 50\n",
            None,
        )
        .unwrap();
        assert_eq!(a.control.as_deref(), Some(Path::new("/tmp/x.sock")));
        assert!(a.client && a.core_eligible && a.fault_injection);
        assert_eq!(node.join_retry_ms, 50);
        let flags = DaemonArgs {
            heartbeat_ms: Some(20),
            ..DaemonArgs::default()
        };
        let m = flags.over(a);
        assert_eq!(m.heartbeat_ms, Some(20));
        assert_eq!(m.id.as_deref(), Some("n1"));
    }

    /// Keep-warm pings: off unless asked for; `warm_us` in a file, `--warm-us` over it.
    #[test]
    fn keep_warm_pings_from_flags_and_file() {
        let (file, _) = DaemonArgs::from_toml("id = \"a\"\nwarm_us = 2000\n", None).unwrap();
        assert_eq!(Settings::from_args(&file).unwrap().node.warm_us, 2000);
        let flag = DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--warm-us", "500"]).unwrap();
        assert_eq!(
            Settings::from_args(&flag.over(file)).unwrap().node.warm_us,
            500
        );
        let none = DaemonArgs::try_parse_from(["sgmpd", "--id", "a"]).unwrap();
        assert_eq!(Settings::from_args(&none).unwrap().node.warm_us, 0);
    }

    /// Warm-up before a suspicion: on by default; `warm_up_us` in a file, `--warm-up-us`
    /// over it, 0 switches it off.
    #[test]
    fn warm_up_from_flags_and_file() {
        let none = DaemonArgs::try_parse_from(["sgmpd", "--id", "a"]).unwrap();
        assert_eq!(
            Settings::from_args(&none).unwrap().node.warm_up_us,
            sgmp_membership::node::DEFAULT_WARM_UP_US
        );
        let (file, _) = DaemonArgs::from_toml("id = \"a\"\nwarm_up_us = 0\n", None).unwrap();
        assert_eq!(Settings::from_args(&file).unwrap().node.warm_up_us, 0);
        let flag =
            DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--warm-up-us", "3000"]).unwrap();
        assert_eq!(
            Settings::from_args(&flag.over(file))
                .unwrap()
                .node
                .warm_up_us,
            3000
        );
    }

    /// The loop's CPU: none by default; `cpu` in a file, `--cpu` over it; one beyond
    /// what a CPU set can name is refused with the range.
    #[test]
    fn cpu_from_flags_and_file() {
        let none = DaemonArgs::try_parse_from(["sgmpd", "--id", "a"]).unwrap();
        assert_eq!(Settings::from_args(&none).unwrap().node.cpu, None);
        let (file, _) = DaemonArgs::from_toml("id = \"a\"\ncpu = 0\n", None).unwrap();
        assert_eq!(Settings::from_args(&file).unwrap().node.cpu, Some(0));
        let flag = DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--cpu", "1"]).unwrap();
        assert_eq!(
            Settings::from_args(&flag.over(file)).unwrap().node.cpu,
            Some(1)
        );
        let far = DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--cpu", "5000"]).unwrap();
        let e = Settings::from_args(&far)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpu 5000") && e.contains("0 to 1023"), "{e}");
        assert!(DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--cpu", "-1"]).is_err());
    }

    /// `--idle spin:US` on the command line, `idle = "spin"` in a file, the flag
    /// winning; a bad one is refused by clap with the forms it may take.
    #[test]
    fn idle_strategies_from_flags_and_file() {
        let flag = DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--idle", "spin:80"]).unwrap();
        assert_eq!(flag.idle, Some(NodeIdle::Spin { spin_us: 80 }));
        let (file, node) = DaemonArgs::from_toml("id = \"a\"\nidle = \"spin\"\n", None).unwrap();
        assert_eq!(
            file.idle,
            Some(NodeIdle::Spin {
                spin_us: NodeIdle::DEFAULT_SPIN_US
            })
        );
        assert_eq!(node.idle, NodeIdle::default());
        let s = Settings::from_args(&flag.clone().over(file)).unwrap();
        assert_eq!(s.node.idle, NodeIdle::Spin { spin_us: 80 });
        let e = DaemonArgs::try_parse_from(["sgmpd", "--idle", "spin:0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("spin:US"), "{e}");
    }

    /// `yield_before_publish = false` in the config file (an advanced `NodeConfig`
    /// field) turns off the yield before publication; it is on by default.
    #[test]
    fn the_yield_before_publication_is_set_in_the_file() {
        let flags = DaemonArgs::try_parse_from(["sgmpd", "--id", "a"]).unwrap();
        assert!(
            Settings::from_args(&flags)
                .unwrap()
                .node
                .yield_before_publish
        );
        let dir = std::env::temp_dir().join(format!("sgmpd-yield-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sgmpd.toml");
        std::fs::write(&path, "yield_before_publish = false\n").unwrap();
        let flags =
            DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--config", path.to_str().unwrap()])
                .unwrap();
        let s = Settings::from_args(&flags).unwrap();
        assert!(!s.node.yield_before_publish);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_and_spaces_in_addresses() {
        let a = DaemonArgs::try_parse_from([
            "sgmpd",
            "--id",
            "a",
            "--listen",
            "localhost:7401",
            "--seeds",
            "localhost:7401, 127.0.0.1:7402 ,localhost:7403,",
        ])
        .unwrap();
        let s = Settings::from_args(&a).unwrap();
        assert_eq!(s.node.listen, "127.0.0.1:7401".parse().unwrap());
        let want: Vec<SocketAddr> = ["127.0.0.1:7401", "127.0.0.1:7402", "127.0.0.1:7403"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(s.node.seeds, want);
        let bad =
            DaemonArgs::try_parse_from(["sgmpd", "--id", "a", "--seeds", "no-such-host.invalid:1"])
                .unwrap();
        let e = Settings::from_args(&bad).unwrap_err().to_string();
        assert!(e.starts_with("--seeds: cannot resolve"), "{e}");
    }

    #[test]
    fn errors_name_the_flag_typed() {
        let e = |args: &[&str]| {
            let mut v = vec!["sgmpd", "--id", "a"];
            v.extend_from_slice(args);
            Settings::from_args(&DaemonArgs::try_parse_from(v).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            e(&["--heartbeat-ms", "0"]),
            "--heartbeat-ms must be greater than zero"
        );
        assert_eq!(
            e(&["--heartbeat-ms", "50", "--suspect-ms", "40"]),
            "--suspect-ms (40) must be longer than --heartbeat-ms (50)"
        );
        assert_eq!(
            e(&[
                "--client-heartbeat-ms",
                "1000",
                "--client-timeout-ms",
                "1000"
            ]),
            "--client-timeout-ms (1000) must be longer than --client-heartbeat-ms (1000)"
        );
        assert_eq!(
            e(&["--coldstart-round-ms", "0"]),
            "--coldstart-round-ms must be greater than zero"
        );
        let id =
            Settings::from_args(&DaemonArgs::try_parse_from(["sgmpd", "--id", "a#b"]).unwrap())
                .unwrap_err()
                .to_string();
        assert!(id.starts_with("--id: "), "{id}");
        let dir = std::env::temp_dir().join(format!("sgmp-args-{}.toml", std::process::id()));
        std::fs::write(&dir, "heartbeat_ms = 0\n").unwrap();
        let f = e(&["--config", dir.to_str().unwrap()]);
        assert!(f.starts_with("heartbeat_ms (in "), "{f}");
        std::fs::write(&dir, "heartbeat_ms = 600\n").unwrap();
        let f = e(&["--config", dir.to_str().unwrap()]);
        assert!(
            f.starts_with("--suspect-ms (500) must be longer than heartbeat_ms (in "),
            "{f}"
        );
        std::fs::write(&dir, "join_retry_ms = 0\n").unwrap();
        let f = e(&["--config", dir.to_str().unwrap()]);
        let _ = std::fs::remove_file(&dir);
        assert!(f.starts_with("join_retry_ms (in "), "{f}");
    }

    #[test]
    fn an_unspecified_listen_needs_advertise() {
        let parse = |args: &[&str]| {
            let mut v = vec!["sgmpd", "--id", "a"];
            v.extend_from_slice(args);
            Settings::from_args(&DaemonArgs::try_parse_from(v).unwrap())
        };
        let e = parse(&["--listen", "0.0.0.0:7401"])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--listen 0.0.0.0:7401 listens on every interface")
                && e.contains("--advertise HOST:PORT"),
            "{e}"
        );
        let s = parse(&["--listen", "0.0.0.0:7401", "--advertise", "10.1.2.3:7401"]).unwrap();
        assert_eq!(s.node.advertise, Some("10.1.2.3:7401".parse().unwrap()));
        let bound = "0.0.0.0:7401".parse().unwrap();
        assert_eq!(s.node.advertised(bound), "10.1.2.3:7401".parse().unwrap());
        let s = parse(&["--listen", "0.0.0.0:0", "--advertise", "localhost:0"]).unwrap();
        assert_eq!(
            s.node.advertised("0.0.0.0:5555".parse().unwrap()),
            "127.0.0.1:5555".parse().unwrap()
        );
        let e = parse(&["--listen", "0.0.0.0:1", "--advertise", "0.0.0.0:1"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("advertise address 0.0.0.0:1 is unspecified"),
            "{e}"
        );
    }

    #[test]
    fn help_shows_defaults() {
        let help = command().render_long_help().to_string();
        for (id, d) in help_defaults() {
            assert!(
                help.contains(&format!("[default: {d}]")),
                "--{id}: no default in\n{help}"
            );
        }
        assert!(help.contains("[default: 100]"), "{help}");
    }

    #[test]
    fn listen_fd_takes_an_inherited_bound_udp_socket() {
        use std::os::fd::AsRawFd;
        let parse = |args: &[String]| {
            let mut v: Vec<String> = ["sgmpd", "--id", "a"].map(String::from).to_vec();
            v.extend_from_slice(args);
            Settings::from_args(&DaemonArgs::try_parse_from(v).unwrap())
        };
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = sock.local_addr().unwrap();
        let fd = sock.as_raw_fd().to_string();
        let s = parse(&["--listen-fd".into(), fd.clone()]).unwrap();
        assert_eq!(s.node.listen, addr);
        assert_eq!(s.listen_fd, Some(sock.as_raw_fd()));
        // --listen may repeat the socket's address, not another one.
        let same = parse(&[
            "--listen-fd".into(),
            fd.clone(),
            "--listen".into(),
            addr.to_string(),
        ]);
        assert!(same.is_ok());
        let e = parse(&[
            "--listen-fd".into(),
            fd.clone(),
            "--listen".into(),
            "127.0.0.1:1".into(),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("is bound to") && e.contains("--listen 127.0.0.1:1"),
            "{e}"
        );
        // Not a descriptor, not open, not a socket, not UDP.
        let e = parse(&["--listen-fd=-1".into()]).unwrap_err().to_string();
        assert!(e.contains("--listen-fd -1: not a file descriptor"), "{e}");
        let e = parse(&["--listen-fd".into(), "999999".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not an open file descriptor"), "{e}");
        let file = std::fs::File::open("/dev/null").unwrap();
        let e = parse(&["--listen-fd".into(), file.as_raw_fd().to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a socket"), "{e}");
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = parse(&["--listen-fd".into(), tcp.as_raw_fd().to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a UDP"), "{e}");
        // Nothing was taken over: the socket is still ours and usable.
        assert_eq!(sock.local_addr().unwrap(), addr);
    }
}
