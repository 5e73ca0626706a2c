//! `sgmp-load clients`: the membership service at scale. A core of `--core` nodes
//! (`sgmpd` processes by default) serves `--clients` lightweight clients multiplexed
//! over `--endpoints` client endpoints (one UDP socket and one system-view replica
//! each) in this process.
//!
//! Phases, each bounded:
//! 1. **bootstrap**: every client registers at once; figures: time until every
//!    endpoint holds them all, and the distinct system views (versions, sizes) an
//!    endpoint saw on the way (every endpoint must see the same sequence);
//! 2. **hold**: `--hold` seconds without changes; no client may be removed;
//! 3. **correlated failures**: `--correlated` clients crash at the same moment; in
//!    how many system views are they removed, and how long it takes;
//! 4. **churn**: for `--seconds`, `--churn` events per second, half client crashes
//!    (heartbeats stop), half new clients registering; figures: client changes
//!    committed per second, crash-to-removal latency at every endpoint (p50, p99),
//!    protocol messages per client change against the §5.2 count for the views used;
//! 5. **agreement**: every endpoint (and the core) ends on the same version and size.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgmp_membership::counts::{compressed_formula, Op};
use sgmp_membership::node::NodeConfig;
use sgmp_membership::service::{ClientConfig, ClientEvent, ClientHandle, ClientNode};
use sgmp_membership::ProcessId;

use super::cluster::{self, stopped, BackendKind, ServiceLimits, Timing, Tracker};
use super::flags::Output;
use super::report::{cell, Figures};

/// Flags of `sgmp-load clients`.
#[derive(Clone, Debug, clap::Args)]
pub struct ClientsArgs {
    /// Clients registered at the start.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=200_000))]
    pub clients: u64,
    /// Core members.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=15))]
    pub core: u64,
    /// Length of the churn phase, s.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Churn events (client crashes + new registrations) per second.
    #[arg(long, default_value_t = 500.0)]
    pub churn: f64,
    /// Length of the hold phase (no changes), s.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Clients crashed at the same moment in the correlated-failure phase.
    #[arg(long, default_value_t = 10)]
    pub correlated: u64,
    /// Client endpoints (sockets) the clients are spread over.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub endpoints: u64,
    /// How the core runs.
    #[arg(long, value_enum, default_value_t = BackendKind::Process)]
    pub backend: BackendKind,
    /// Core heartbeat interval, ms.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,
    /// Core suspicion timeout, ms.
    #[arg(long, default_value_t = 1000)]
    pub suspect_ms: u64,
    /// Seed of the random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Most client changes one core view change commits (the core's
    /// `--max-client-ops`): a burst of N registrations takes about N / this many
    /// system views. The core's `--max-clients` is set from `--clients` (twice it, at
    /// least 16,384).
    #[arg(long, default_value_t = 6144, value_parser = clap::value_parser!(u64).range(1..=65_535))]
    pub max_client_ops: u64,
    /// Flapping phase (after the hold): this percentage of the clients drop all their
    /// traffic for `--flap-period-s`, recover for as long, and so on, while the others
    /// stay healthy. A flapper that was removed comes back as a new incarnation. 0: no
    /// flapping phase.
    #[arg(long, default_value_t = 0.0)]
    pub flap_percent: f64,
    /// Length of a flapper's silent half-cycle and of its healthy half-cycle, s.
    #[arg(long, default_value_t = 20.0)]
    pub flap_period_s: f64,
    /// Flap cycles (silent + healthy) in the flapping phase.
    #[arg(long, default_value_t = 3)]
    pub flap_cycles: u64,
    /// `--json`.
    #[command(flatten)]
    pub output: Output,
}

/// What one endpoint saw.
#[derive(Default)]
struct EpLog {
    /// (when, version, size, changes) of every system view applied.
    views: Vec<(Instant, u64, usize, usize)>,
    /// When and in which version each process was removed.
    removed: HashMap<ProcessId, (Instant, u64)>,
    /// Local clients seen registered.
    registered: HashMap<ProcessId, Instant>,
}

struct Endpoint {
    handle: ClientHandle,
    log: Arc<Mutex<EpLog>>,
    _collector: std::thread::JoinHandle<()>,
}

fn start_endpoint(k: usize, seeds: &[SocketAddr], inc: u64) -> io::Result<Endpoint> {
    let mut cfg = ClientConfig::new(
        ProcessId::named(&format!("load-ep{k}"), inc),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        seeds.to_vec(),
    );
    cfg.cluster_id = NodeConfig::default().cluster_id;
    cfg.heartbeat_ms = NodeConfig::default().client_heartbeat_ms;
    let (handle, rx) = ClientNode::start(cfg)?;
    let log = Arc::new(Mutex::new(EpLog::default()));
    let l = Arc::clone(&log);
    let collector = std::thread::Builder::new()
        .name(format!("ep{k}-events"))
        .spawn(move || {
            while let Ok((at, ev)) = rx.recv() {
                let mut g = l.lock();
                match ev {
                    ClientEvent::SystemView(ch) => {
                        g.views
                            .push((at, ch.version, ch.size, ch.added.len() + ch.removed.len()));
                        for p in ch.removed {
                            g.removed.entry(p).or_insert((at, ch.version));
                        }
                    }
                    ClientEvent::Registered(p) => {
                        g.registered.insert(p, at);
                    }
                    _ => {}
                }
            }
        })?;
    Ok(Endpoint {
        handle,
        log,
        _collector: collector,
    })
}

/// The resident memory of process `pid`, bytes (Linux: `VmRSS` in `/proc/PID/status`).
fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What the flapping phase saw.
struct Flap {
    flappers: usize,
    cycles: u64,
    views: usize,
    healthy_removed: usize,
    flap_removed: usize,
    flap_expected: usize,
    rejoined: usize,
    removal_max_ms: f64,
}

impl Flap {
    fn report(&self, f: &mut Figures, t: &mut String) {
        let per_cycle = self.views as f64 / self.cycles.max(1) as f64;
        f.int("flappers", self.flappers as u64);
        f.int("flap_cycles", self.cycles);
        f.int("flap_views", self.views as u64);
        f.float("views_per_flap_cycle", per_cycle);
        f.int("healthy_removed", self.healthy_removed as u64);
        f.int("flap_removed", self.flap_removed as u64);
        f.int("flap_removals_expected", self.flap_expected as u64);
        f.int("flap_rejoined", self.rejoined as u64);
        f.float("flap_removal_max_ms", self.removal_max_ms);
        let _ = std::fmt::Write::write_fmt(
            t,
            format_args!(
                "flapping: {} clients x {} cycles: {} system views ({} per cycle), flappers removed {}/{} and back as new incarnations {}, healthy clients removed {}\n",
                self.flappers,
                self.cycles,
                self.views,
                cell(per_cycle, 1),
                self.flap_removed,
                self.flap_expected,
                self.rejoined,
                self.healthy_removed
            ),
        );
    }
}

/// Sleeps `d` in short steps; false if the run was stopped (Ctrl-C).
fn sleep_unless_stopped(d: Duration) -> bool {
    !wait_until(d, || false) && !stopped()
}

/// The flapping phase: `--flap-percent` of the `live` clients (taken out of it: they
/// are not crash candidates later) drop all their traffic for `--flap-period-s`, then
/// come back as a new incarnation for as long, `--flap-cycles` times. Every removal an
/// endpoint sees in the phase is either a flapper's old incarnation or a healthy client
/// wrongly removed.
fn flap_phase(
    args: &ClientsArgs,
    eps: &[Endpoint],
    live: &mut Vec<(ProcessId, usize)>,
    rng: &mut ChaCha8Rng,
) -> Flap {
    let want = (live.len() as f64 * args.flap_percent / 100.0).round() as usize;
    let nf = want.clamp(1, live.len());
    let mut flappers: Vec<(ProcessId, usize)> = Vec::with_capacity(nf);
    for _ in 0..nf {
        let i = rng.gen_range(0..live.len());
        flappers.push(live.swap_remove(i));
    }
    let mut every: std::collections::HashSet<ProcessId> =
        flappers.iter().map(|(p, _)| *p).collect();
    let mut downs: HashMap<ProcessId, Instant> = HashMap::new();
    let period = Duration::from_secs_f64(args.flap_period_s);
    let from = Instant::now();
    let mut cycles = 0;
    let mut new_incarnations = Vec::new();
    for _ in 0..args.flap_cycles {
        // Silent: the flapper sends nothing (its endpoint stops listing it).
        let at = Instant::now();
        for (p, ep) in &flappers {
            eps[*ep].handle.crash_client(*p);
            downs.insert(*p, at);
        }
        if !sleep_unless_stopped(period) {
            break;
        }
        // Back: a new incarnation registers (the old one was removed, or is replaced).
        for (p, ep) in flappers.iter_mut() {
            *p = ProcessId::new(p.node, p.incarnation + 1);
            every.insert(*p);
            new_incarnations.push((*p, *ep));
            eps[*ep].handle.add_client(*p, false);
        }
        cycles += 1;
        if !sleep_unless_stopped(period) {
            break;
        }
    }
    let to = Instant::now();
    live.extend(flappers.iter().copied());
    let mut healthy_removed = 0;
    let mut flap_removed = 0;
    let mut removal_max = Duration::ZERO;
    for (k, ep) in eps.iter().enumerate() {
        let g = ep.log.lock();
        for (p, (at, _)) in &g.removed {
            if *at < from || *at > to {
                continue;
            }
            if !every.contains(p) {
                healthy_removed += 1;
            } else if k == 0 {
                flap_removed += 1;
                if let Some(d) = downs.get(p) {
                    removal_max = removal_max.max(at.saturating_duration_since(*d));
                }
            }
        }
    }
    let views = eps[0]
        .log
        .lock()
        .views
        .iter()
        .filter(|v| v.0 >= from && v.0 <= to)
        .count();
    let rejoined = new_incarnations
        .iter()
        .filter(|(p, ep)| eps[*ep].log.lock().registered.contains_key(p))
        .count();
    Flap {
        flappers: nf,
        cycles,
        views,
        healthy_removed,
        flap_removed,
        flap_expected: nf * cycles as usize,
        rejoined,
        removal_max_ms: removal_max.as_secs_f64() * 1000.0,
    }
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct ClientsReport {
    figures: Figures,
    table: String,
}

impl ClientsReport {
    /// The figures (one flat JSON object).
    pub fn figures(&self) -> Figures {
        self.figures.clone()
    }
    /// A human table.
    pub fn table(&self) -> String {
        self.table.clone()
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        if stopped() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Sum of the core's protocol messages sent and client changes committed (process
/// backend: through the control sockets; in-process: from the node metrics).
fn core_counters(core: &CoreRef<'_>) -> (u64, u64) {
    let mut msgs = 0;
    let mut ops = 0;
    match core {
        CoreRef::Sockets(paths) => {
            for p in paths.iter() {
                let req = crate::control::Request {
                    cmd: "metrics".into(),
                    args: vec![],
                };
                if let Ok(v) = crate::control::request(p, &req, Duration::from_secs(2)) {
                    msgs += v["engine"]["protocol_sent"].as_u64().unwrap_or(0);
                    ops = ops.max(v["engine"]["client_ops_committed"].as_u64().unwrap_or(0));
                }
            }
        }
        CoreRef::InProcess(b) => {
            for slot in 0.. {
                let Some(h) = b.handle(slot) else { break };
                let m = h.metrics();
                msgs += m.engine.protocol_sent();
                ops = ops.max(m.engine.client_ops_committed);
            }
        }
    }
    (msgs, ops)
}

enum CoreRef<'a> {
    Sockets(Vec<PathBuf>),
    InProcess(&'a cluster::InProcess),
}

/// Runs the mode.
pub fn run(args: &ClientsArgs) -> io::Result<ClientsReport> {
    let started = Instant::now();
    let timing = Timing {
        heartbeat_ms: args.heartbeat_ms,
        suspect_ms: args.suspect_ms,
        protocol_timeout_ms: args.suspect_ms.max(200),
        idle: cluster::Idle::default(),
        warm_us: 0,
        warm_up_us: sgmp_membership::node::DEFAULT_WARM_UP_US,
        pin: false,
    };
    let n = args.core as usize;
    let mut in_process = None;
    let mut processes = None;
    let limits = ServiceLimits {
        max_clients: (2 * args.clients as usize).max(16_384),
        max_client_ops: args.max_client_ops as usize,
    };
    let b: &mut dyn cluster::Backend = match args.backend {
        BackendKind::InProcess => {
            let ip = in_process.insert(cluster::InProcess::new(timing));
            ip.set_service_limits(limits);
            ip
        }
        BackendKind::Process => {
            let p = processes.insert(cluster::Processes::new(timing)?);
            p.set_service_limits(limits);
            p
        }
    };
    let mut tracker = Tracker::default();
    cluster::form_group(b, &mut tracker, n, Duration::from_secs(30))?;
    let seeds: Vec<SocketAddr> = (0..n).filter_map(|s| b.addr(s)).collect();
    // The core's processes, to read their resident memory (process backend only).
    let core_pids: Vec<u32> = processes
        .as_ref()
        .map(|p| (0..n).filter_map(|s| p.os_pid(s)).collect())
        .unwrap_or_default();
    let core_ref = match (&processes, &in_process) {
        (Some(p), _) => CoreRef::Sockets((0..n).map(|s| p.control_path(s)).collect()),
        (_, Some(ip)) => CoreRef::InProcess(ip),
        _ => unreachable!("one backend runs"),
    };
    let e = args.endpoints as usize;
    let inc = sgmp_membership::node::unix_micros();
    let eps: Vec<Endpoint> = (0..e)
        .map(|k| start_endpoint(k, &seeds, inc))
        .collect::<io::Result<_>>()?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut f = Figures::new();
    let mut t = String::new();
    f.text("mode", "clients");
    f.int("core", n as u64);
    f.int("endpoints", e as u64);
    f.text("backend", args.backend.name());

    // 1. Bootstrap: every client registers at once.
    let total = args.clients as usize;
    let names: Vec<ProcessId> = (0..total)
        .map(|i| ProcessId::named(&format!("c{i:05}"), 1))
        .collect();
    let rss_before: Vec<Option<u64>> = core_pids.iter().map(|p| rss_bytes(*p)).collect();
    let t0 = Instant::now();
    for (i, p) in names.iter().enumerate() {
        eps[i % e].handle.add_client(*p, false);
    }
    let want = n + total;
    let all_at = |size: usize| eps.iter().all(|ep| ep.handle.status().size == size);
    let boot_ok = wait_until(Duration::from_secs(120), || all_at(want));
    let boot_s = t0.elapsed().as_secs_f64();
    // The endpoints' status shows the system view before each collector thread has read
    // every `Registered` event: give them a moment to catch up before counting.
    let count = || {
        eps.iter()
            .map(|ep| ep.log.lock().registered.len())
            .sum::<usize>()
    };
    if boot_ok {
        wait_until(Duration::from_secs(5), || count() >= total);
    }
    let registered = count();
    // Resident memory the core grew by while the clients registered, per client (the
    // mean over the core members; each holds a replica of the client table).
    let rss_after: Vec<Option<u64>> = core_pids.iter().map(|p| rss_bytes(*p)).collect();
    let grown: Vec<f64> = rss_before
        .iter()
        .zip(&rss_after)
        .filter_map(|(a, b)| Some(b.as_ref()?.saturating_sub(*a.as_ref()?) as f64))
        .collect();
    let per_client = if grown.is_empty() || registered == 0 {
        f64::NAN
    } else {
        grown.iter().sum::<f64>() / grown.len() as f64 / registered as f64
    };
    let rss_max = rss_after.iter().flatten().copied().max();
    f.float("core_rss_per_client_bytes", per_client);
    f.float(
        "core_rss_mib",
        rss_max.map_or(f64::NAN, |r| r as f64 / (1024.0 * 1024.0)),
    );
    f.int("clients_registered", registered as u64);
    f.flag("bootstrap_complete", boot_ok);
    f.float("bootstrap_s", boot_s);
    // The views each endpoint saw from its first to the final one, as (version, size).
    let seqs: Vec<Vec<(u64, usize)>> = eps
        .iter()
        .map(|ep| ep.log.lock().views.iter().map(|v| (v.1, v.2)).collect())
        .collect();
    let common_from = seqs
        .iter()
        .filter_map(|s| s.first())
        .map(|v| v.0)
        .max()
        .unwrap_or(0);
    let tails: Vec<Vec<(u64, usize)>> = seqs
        .iter()
        .map(|s| s.iter().copied().filter(|v| v.0 >= common_from).collect())
        .collect();
    let same_sequence = tails.windows(2).all(|w| w[0] == w[1]);
    if !same_sequence {
        for (k, s) in tails.iter().enumerate() {
            eprintln!(
                "endpoint {k}: system views seen during the bootstrap (version, size): {s:?}"
            );
        }
    }
    let boot_views = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
    f.int("bootstrap_views_seen", boot_views.saturating_sub(1) as u64);
    f.flag("bootstrap_same_sequence", same_sequence);
    let sizes: Vec<String> = seqs
        .first()
        .map(|s| s.iter().map(|v| v.1.to_string()).collect())
        .unwrap_or_default();
    f.text("bootstrap_sizes", sizes.join(" "));
    let _ = std::fmt::Write::write_fmt(
        &mut t,
        format_args!(
            "bootstrap: {registered} clients in {} s, {} system views before the final one, same sequence at every endpoint: {same_sequence}\n",
            cell(boot_s, 2),
            boot_views.saturating_sub(1)
        ),
    );
    let _ = std::fmt::Write::write_fmt(
        &mut t,
        format_args!(
            "core resident memory: {} MiB per member, {} bytes per client\n",
            cell(
                rss_max.map_or(f64::NAN, |r| r as f64 / (1024.0 * 1024.0)),
                1
            ),
            cell(per_client, 0)
        ),
    );

    // 2. Hold: nothing may be removed.
    let hold_from = Instant::now();
    let removed_before: usize = eps.iter().map(|ep| ep.log.lock().removed.len()).sum();
    wait_until(Duration::from_secs_f64(args.hold), || false);
    let removed_after: usize = eps.iter().map(|ep| ep.log.lock().removed.len()).sum();
    let steady = removed_after == removed_before && all_at(want);
    f.float("hold_s", hold_from.elapsed().as_secs_f64());
    f.flag("hold_steady", steady);
    f.int(
        "hold_false_removals",
        (removed_after - removed_before) as u64,
    );

    let mut live: Vec<(ProcessId, usize)> =
        names.iter().enumerate().map(|(i, p)| (*p, i % e)).collect();

    // 2b. Flapping (Rapid's experiment): some clients go silent and come back, the
    // others must stay.
    if args.flap_percent > 0.0 {
        let flap = flap_phase(args, &eps, &mut live, &mut rng);
        flap.report(&mut f, &mut t);
    }

    // 3. Correlated failures.
    let k = (args.correlated as usize).min(live.len());
    let mut victims = Vec::new();
    for _ in 0..k {
        let i = rng.gen_range(0..live.len());
        victims.push(live.swap_remove(i));
    }
    let crash_at = Instant::now();
    for (p, ep) in &victims {
        eps[*ep].handle.crash_client(*p);
    }
    let corr_ok = wait_until(Duration::from_secs(30), || {
        eps.iter().all(|ep| {
            let g = ep.log.lock();
            victims.iter().all(|(p, _)| g.removed.contains_key(p))
        })
    });
    let (corr_views, corr_ms) = {
        let g = eps[0].log.lock();
        let versions: BTreeSet<u64> = victims
            .iter()
            .filter_map(|(p, _)| g.removed.get(p).map(|r| r.1))
            .collect();
        let last = victims
            .iter()
            .filter_map(|(p, _)| g.removed.get(p).map(|r| r.0))
            .max();
        (
            versions.len(),
            last.map(|l| l.duration_since(crash_at).as_secs_f64() * 1000.0)
                .unwrap_or(f64::NAN),
        )
    };
    f.flag("correlated_removed", corr_ok);
    f.int("correlated_views", corr_views as u64);
    f.float("correlated_removal_ms", corr_ms);
    let _ = std::fmt::Write::write_fmt(
        &mut t,
        format_args!(
            "hold {} s: steady {steady}; {k} clients crashed at once: removed in {corr_views} system view(s), {} ms\n",
            cell(args.hold, 0),
            cell(corr_ms, 0)
        ),
    );

    // 4. Churn.
    let (msgs0, ops0) = core_counters(&core_ref);
    let views0 = eps[0].log.lock().views.len();
    let churn_from = Instant::now();
    let mut crashes: HashMap<ProcessId, Instant> = HashMap::new();
    let mut joins = 0u64;
    let mut pending: Vec<(ProcessId, usize)> = Vec::new();
    let mut credit = 0.0f64;
    let mut crash_turn = true;
    let window = Duration::from_secs_f64(args.seconds);
    let tick = Duration::from_millis(10);
    let mut next = Instant::now();
    let mut serial = 0u64;
    while churn_from.elapsed() < window && !stopped() {
        next += tick;
        credit += args.churn * tick.as_secs_f64();
        // Newly registered joiners become crash candidates.
        pending.retain(|(p, ep)| {
            if eps[*ep].log.lock().registered.contains_key(p) {
                live.push((*p, *ep));
                false
            } else {
                true
            }
        });
        while credit >= 1.0 {
            credit -= 1.0;
            if crash_turn && !live.is_empty() {
                let i = rng.gen_range(0..live.len());
                let (p, ep) = live.swap_remove(i);
                eps[ep].handle.crash_client(p);
                crashes.insert(p, Instant::now());
            } else {
                let p = ProcessId::named(&format!("j{serial:06}"), 1);
                serial += 1;
                let ep = rng.gen_range(0..e);
                eps[ep].handle.add_client(p, false);
                pending.push((p, ep));
                joins += 1;
            }
            crash_turn = !crash_turn;
        }
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let churn_s = churn_from.elapsed().as_secs_f64();
    let (_, ops_end) = core_counters(&core_ref);
    // 5. Agreement: everything pending settles, every endpoint on one version and size.
    let expected = n + total - k - crashes.len() + joins as usize;
    let agreed = wait_until(Duration::from_secs(60), || {
        let st: Vec<_> = eps.iter().map(|ep| ep.handle.status()).collect();
        st.iter()
            .all(|s| s.version == st[0].version && s.size == expected)
    });
    let (msgs1, ops1) = core_counters(&core_ref);
    let final_st: Vec<_> = eps.iter().map(|ep| ep.handle.status()).collect();
    let final_version = final_st.first().map(|s| s.version).unwrap_or(0);
    f.int("churn_crashes", crashes.len() as u64);
    f.int("churn_joins", joins);
    f.float("churn_window_s", churn_s);
    // Changes committed during the window, seen at endpoint 0.
    let (changes, views_window) = {
        let g = eps[0].log.lock();
        let from = churn_from;
        let to = churn_from + Duration::from_secs_f64(churn_s);
        let in_window: Vec<_> = g
            .views
            .iter()
            .filter(|v| v.0 >= from && v.0 <= to)
            .collect();
        (
            in_window.iter().map(|v| v.3).sum::<usize>(),
            in_window.len(),
        )
    };
    // Client changes the core committed during the window (all of them, whoever saw
    // them), and the changes endpoint 0 saw in the views of the window.
    // The core keeps up when every change requested in the window is committed by
    // the time the endpoints agree (removals lag by the client timeout, so the count
    // inside the window alone misses the last second's crashes).
    f.float("churn_per_s", ops1.saturating_sub(ops0) as f64 / churn_s);
    f.float(
        "churn_in_window_per_s",
        ops_end.saturating_sub(ops0) as f64 / churn_s,
    );
    f.float("churn_seen_per_s", changes as f64 / churn_s);
    f.float(
        "churn_requested_per_s",
        (crashes.len() as f64 + joins as f64) / churn_s,
    );
    f.int("churn_views", views_window as u64);
    f.float(
        "changes_per_view",
        changes as f64 / views_window.max(1) as f64,
    );
    // Crash to removal at every endpoint.
    let mut h = Histogram::<u64>::new(3).map_err(io::Error::other)?;
    let mut missing = 0u64;
    let logs: Vec<_> = eps.iter().map(|ep| ep.log.lock()).collect();
    for (p, at) in &crashes {
        let last = logs
            .iter()
            .map(|g| g.removed.get(p).map(|r| r.0))
            .collect::<Option<Vec<_>>>();
        match last.and_then(|v| v.into_iter().max()) {
            Some(l) => {
                let _ = h.record(l.saturating_duration_since(*at).as_micros() as u64);
            }
            None => missing += 1,
        }
    }
    let views_total = logs[0].views.len() - views0;
    drop(logs);
    let q = |x: f64| {
        if h.is_empty() {
            f64::NAN
        } else {
            h.value_at_quantile(x) as f64 / 1000.0
        }
    };
    f.float("removal_p50_ms", q(0.5));
    f.float("removal_p99_ms", q(0.99));
    f.float(
        "removal_max_ms",
        if h.is_empty() {
            f64::NAN
        } else {
            h.max() as f64 / 1000.0
        },
    );
    f.int("removals_not_seen", missing);
    // Messages per client change, against the §5.2 count for the views used.
    let committed = ops1.saturating_sub(ops0);
    let msgs = msgs1.saturating_sub(msgs0);
    let per_view_formula = {
        let y = views_total.max(1);
        compressed_formula(n, &vec![Op { r: 0, a: 0 }; y]) as f64 / y as f64
    };
    f.int("core_protocol_messages", msgs);
    f.int("client_changes_committed", committed);
    f.float("messages_per_change", msgs as f64 / committed.max(1) as f64);
    f.float(
        "messages_per_change_formula",
        per_view_formula * views_total as f64 / committed.max(1) as f64,
    );
    f.float("messages_per_view_formula", per_view_formula);
    f.float("messages_per_change_unbatched", per_view_formula);
    f.flag("final_version_agreed", agreed);
    f.int("final_version", final_version);
    f.int(
        "final_size",
        final_st.first().map(|s| s.size as u64).unwrap_or(0),
    );
    f.int("expected_size", expected as u64);
    f.int("system_views", final_version);
    f.int(
        "churn_requests_pending",
        (crashes.len() as u64 + joins).saturating_sub(ops1.saturating_sub(ops0)),
    );
    f.float("elapsed_s", started.elapsed().as_secs_f64());
    let _ = std::fmt::Write::write_fmt(
        &mut t,
        format_args!(
            "churn {} s: {} crashes + {joins} joins requested; {} client changes/s committed in {views_window} views ({} per view)\n\
             crash to removal at every endpoint: p50 {} ms, p99 {} ms ({missing} not seen)\n\
             core protocol messages per client change: {} measured, {} by §5.2 for the views used ({} per view unbatched)\n\
             final: version {final_version}, size {} at every endpoint: {agreed}\n",
            cell(churn_s, 1),
            crashes.len(),
            cell(ops1.saturating_sub(ops0) as f64 / churn_s, 0),
            cell(changes as f64 / views_window.max(1) as f64, 1),
            cell(q(0.5), 1),
            cell(q(0.99), 1),
            cell(msgs as f64 / committed.max(1) as f64, 3),
            cell(per_view_formula * views_total as f64 / committed.max(1) as f64, 3),
            cell(per_view_formula, 0),
            expected
        ),
    );
    for ep in &eps {
        ep.handle.shutdown();
    }
    Ok(ClientsReport {
        figures: f,
        table: t,
    })
}
