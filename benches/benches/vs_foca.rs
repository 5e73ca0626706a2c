//! Against a peer: sgmp (S-GMP) side by side with foca (SWIM) on loopback.
//!
//! For each protocol and each scenario, R rounds on a fresh cluster of N processes of
//! this program on 127.0.0.1, one thread per process, same heartbeat/probe period and
//! same failure-detection timeout. Each round: start the cluster and wait until every
//! process knows all N; let it settle; measure the survivors' datagrams and bytes over a
//! quiet window (the baseline); crash one process (its thread stops and its socket
//! closes, no leave); time until every survivor has removed it (sgmp: installed a view
//! without it; foca: emitted `MemberDown` for it); then wait a tail and count what the
//! survivors sent from the crash to the end of the tail, raw and net of the baseline
//! rate over the same length.
//!
//! Scenarios: `member` crashes a non-mgr member of sgmp and a non-seed foca instance;
//! `mgr` crashes the sgmp mgr (most senior member, which then runs no reconfiguration
//! itself: the next in rank must) and the foca instance every other one announced to
//! (no special role in SWIM).
//!
//! Timing mapping (H = heartbeat, T = suspicion timeout):
//! * sgmp: `heartbeat_ms = H`, `suspect_ms = T`: the ring watcher suspects after T of
//!   silence, then the mgr (or the reconfiguring member) runs one majority round.
//! * foca: `Config::simple()` (pure SWIM, no periodic gossip or announce) with
//!   `probe_period = H`, `probe_rtt = 2H/5` (the direct ack must come within it, then
//!   the indirect probes run to the end of the period), `suspect_to_down_after = T - H`:
//!   from the probe of the crashed process to its `Down` at the prober is
//!   `probe_period + suspect_to_down_after = T`, the same as sgmp's silence-to-verdict.
//!   foca adds the wait until some survivor probes the crashed process (round-robin
//!   over shuffled members, at most about one period with N-1 probers), then spreads
//!   `Down` by piggybacking on probes.
//!
//! `cargo bench -p sgmp-benches --bench vs_foca -- [--nodes N] [--rounds R] [--json]
//!  [--heartbeat-ms H] [--suspect-ms T] [--protocol-timeout-ms P] [--quiet-ms Q]
//!  [--tail-ms L] [--foca-gossip-ms G] [--only sgmp|foca] [--scenario member|mgr]`
//!
//! `--foca-gossip-ms G` turns on foca's periodic gossip (every G ms to 3 members, as
//! `Config::new_lan()` does with G = 200) on top of pure SWIM.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::num::{NonZeroU8, NonZeroUsize};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use foca::{AccumulatingRuntime, Config, Foca, OwnedNotification, PostcardCodec, Timer};
use rand09::rngs::SmallRng;
use rand09::SeedableRng;
use sgmp_membership::node::{unix_micros, NodeConfig, NodeHandle, NodePhase};
use sgmp_membership::{Node, ProcessId};

/// Longest wait for a cluster to form.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for every survivor to remove the crashed process.
const DETECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after the cluster formed, before the baseline window.
const SETTLE: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
struct Args {
    nodes: usize,
    rounds: usize,
    json: bool,
    heartbeat_ms: u64,
    suspect_ms: u64,
    protocol_timeout_ms: u64,
    quiet_ms: u64,
    tail_ms: u64,
    /// foca's periodic gossip (to 3 members) every this many ms; 0: off (pure SWIM).
    foca_gossip_ms: u64,
    only: Option<Proto>,
    scenario: Option<Scenario>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proto {
    Sgmp,
    Foca,
}

impl Proto {
    fn name(self) -> &'static str {
        match self {
            Proto::Sgmp => "sgmp",
            Proto::Foca => "foca",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// A non-mgr member (sgmp), a non-seed instance (foca).
    Member,
    /// The mgr (sgmp), the instance everyone announced to (foca).
    Mgr,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Member => "member",
            Scenario::Mgr => "mgr",
        }
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: vs_foca [--nodes N] [--rounds R] [--json] [--heartbeat-ms H] [--suspect-ms T] \
         [--protocol-timeout-ms P] [--quiet-ms Q] [--tail-ms L] [--foca-gossip-ms G] [--only sgmp|foca] \
         [--scenario member|mgr]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        nodes: 5,
        rounds: 10,
        json: false,
        heartbeat_ms: 50,
        suspect_ms: 250,
        protocol_timeout_ms: 500,
        quiet_ms: 1000,
        tail_ms: 300,
        foca_gossip_ms: 0,
        only: None,
        scenario: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = |name: &str| -> u64 {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{name} needs a number");
                usage()
            })
        };
        match flag.as_str() {
            "--bench" => {}
            "--json" => a.json = true,
            "--nodes" => a.nodes = num("--nodes") as usize,
            "--rounds" => a.rounds = num("--rounds") as usize,
            "--heartbeat-ms" => a.heartbeat_ms = num("--heartbeat-ms"),
            "--suspect-ms" => a.suspect_ms = num("--suspect-ms"),
            "--protocol-timeout-ms" => a.protocol_timeout_ms = num("--protocol-timeout-ms"),
            "--quiet-ms" => a.quiet_ms = num("--quiet-ms"),
            "--tail-ms" => a.tail_ms = num("--tail-ms"),
            "--foca-gossip-ms" => a.foca_gossip_ms = num("--foca-gossip-ms"),
            "--only" => {
                a.only = Some(match it.next().as_deref() {
                    Some("sgmp") => Proto::Sgmp,
                    Some("foca") => Proto::Foca,
                    _ => usage(),
                })
            }
            "--scenario" => {
                a.scenario = Some(match it.next().as_deref() {
                    Some("member") => Scenario::Member,
                    Some("mgr") => Scenario::Mgr,
                    _ => usage(),
                })
            }
            "-h" | "--help" => usage(),
            other => {
                eprintln!("unknown argument {other:?}");
                usage()
            }
        }
    }
    if a.nodes < 3 || a.nodes > 60 || a.rounds == 0 {
        eprintln!("need 3 <= nodes <= 60 and rounds >= 1");
        usage()
    }
    if a.heartbeat_ms == 0 || a.suspect_ms <= a.heartbeat_ms || a.quiet_ms == 0 {
        eprintln!("need 0 < heartbeat-ms < suspect-ms and quiet-ms > 0");
        usage()
    }
    a
}

/// Datagrams and bytes sent.
#[derive(Clone, Copy, Debug, Default)]
struct Traffic {
    msgs: u64,
    bytes: u64,
    /// sgmp only: membership protocol messages handed to the transport (the kinds
    /// the paper counts; no heartbeats, no transport acks).
    proto: u64,
}

impl Traffic {
    fn minus(self, earlier: Traffic) -> Traffic {
        Traffic {
            msgs: self.msgs.saturating_sub(earlier.msgs),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            proto: self.proto.saturating_sub(earlier.proto),
        }
    }
}

/// One crash.
#[derive(Clone, Debug)]
struct RoundResult {
    /// Crash to the first survivor's removal, ms.
    first_ms: f64,
    /// Crash to the last survivor's removal, ms.
    all_ms: f64,
    /// Sent by the survivors from the crash to the end of the tail.
    raw: Traffic,
    /// Length of that window, ms.
    window_ms: f64,
    /// Survivors' traffic over the quiet window.
    baseline: Traffic,
    /// Views installed per survivor during the window (sgmp; foca: 0).
    views: u64,
}

impl RoundResult {
    fn net(&self, quiet_ms: u64) -> (f64, f64) {
        let scale = self.window_ms / quiet_ms as f64;
        (
            self.raw.msgs as f64 - self.baseline.msgs as f64 * scale,
            self.raw.bytes as f64 - self.baseline.bytes as f64 * scale,
        )
    }
}

// ----- sgmp ------------------------------------------------------------------------

fn sgmp_config(a: &Args, i: usize, seed: Option<SocketAddr>) -> NodeConfig {
    NodeConfig {
        id: format!("n{i}"),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        seeds: seed.into_iter().collect(),
        heartbeat_ms: a.heartbeat_ms,
        suspect_ms: a.suspect_ms,
        protocol_timeout_ms: a.protocol_timeout_ms,
        join_retry_ms: 50,
        join_timeout_ms: 5000,
        coldstart_rounds: 1,
        coldstart_round_ms: 50,
        auto_rejoin: false,
        max_members: 64,
        ..NodeConfig::default()
    }
}

fn sgmp_traffic(nodes: &[NodeHandle], who: &[usize]) -> Traffic {
    let mut t = Traffic::default();
    for &i in who {
        let m = nodes[i].metrics();
        t.msgs += m.transport.datagrams_out;
        t.bytes += m.transport.bytes_out;
        t.proto += m.engine.protocol_sent();
    }
    t
}

fn wait_until(deadline: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

fn sgmp_round(a: &Args, scenario: Scenario, round: usize) -> Result<RoundResult, String> {
    let n = a.nodes;
    let first = Node::start(sgmp_config(a, 0, None)).map_err(|e| e.to_string())?;
    let seed = first.local_addr();
    if !wait_until(FORM_TIMEOUT, || first.status().phase == NodePhase::Member) {
        return Err("the first node did not found the group".into());
    }
    let mut nodes = vec![first];
    for i in 1..n {
        nodes.push(Node::start(sgmp_config(a, i, Some(seed))).map_err(|e| e.to_string())?);
    }
    let formed = wait_until(FORM_TIMEOUT, || {
        let v0 = nodes[0].view();
        v0.len() == n && nodes.iter().all(|h| h.view() == v0)
    });
    if !formed {
        return Err("the cluster did not form".into());
    }
    std::thread::sleep(SETTLE);
    let view = nodes[0].view();
    let victim_id: ProcessId = match scenario {
        Scenario::Mgr => view.members[0].id,
        Scenario::Member => view.members[1 + round % (n - 1)].id,
    };
    let victim = nodes
        .iter()
        .position(|h| h.status().me == victim_id)
        .ok_or("victim not found")?;
    let survivors: Vec<usize> = (0..n).filter(|&i| i != victim).collect();
    let versions_before: Vec<u64> = survivors.iter().map(|&i| nodes[i].view().version).collect();

    let b0 = sgmp_traffic(&nodes, &survivors);
    std::thread::sleep(Duration::from_millis(a.quiet_ms));
    let baseline = sgmp_traffic(&nodes, &survivors).minus(b0);

    nodes[victim].shutdown();
    let t_crash = Instant::now();
    let unix_crash = unix_micros();
    let c0 = sgmp_traffic(&nodes, &survivors);
    let mut removed: Vec<Option<f64>> = vec![None; survivors.len()];
    while removed.iter().any(Option::is_none) && t_crash.elapsed() < DETECT_TIMEOUT {
        for (k, &i) in survivors.iter().enumerate() {
            if removed[k].is_some() {
                continue;
            }
            let s = nodes[i].status();
            if s.view.version > 0 && !s.view.members.iter().any(|m| m.id == victim_id) {
                // The node stamps the install itself (µs since the Unix epoch): no
                // polling delay.
                let ms = if s.view_ts_us >= unix_crash {
                    (s.view_ts_us - unix_crash) as f64 / 1000.0
                } else {
                    t_crash.elapsed().as_secs_f64() * 1000.0
                };
                removed[k] = Some(ms);
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if removed.iter().any(Option::is_none) {
        return Err(format!(
            "not every survivor removed the crashed member within {DETECT_TIMEOUT:?}"
        ));
    }
    std::thread::sleep(Duration::from_millis(a.tail_ms));
    let raw = sgmp_traffic(&nodes, &survivors).minus(c0);
    let window_ms = t_crash.elapsed().as_secs_f64() * 1000.0;
    let views = survivors
        .iter()
        .zip(&versions_before)
        .map(|(&i, &v)| nodes[i].view().version.saturating_sub(v))
        .max()
        .unwrap_or(0);
    for h in &nodes {
        h.shutdown();
    }
    let times: Vec<f64> = removed.into_iter().flatten().collect();
    Ok(RoundResult {
        first_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
        all_ms: times.iter().copied().fold(0.0, f64::max),
        raw,
        window_ms,
        baseline,
        views,
    })
}

// ----- foca ------------------------------------------------------------------------

fn foca_config(a: &Args) -> Config {
    let mut c = Config::simple();
    c.probe_period = Duration::from_millis(a.heartbeat_ms);
    c.probe_rtt = Duration::from_micros(a.heartbeat_ms * 400).max(Duration::from_millis(1));
    c.suspect_to_down_after = Duration::from_millis(a.suspect_ms - a.heartbeat_ms);
    c.num_indirect_probes = NonZeroUsize::new(3).unwrap();
    c.max_transmissions = NonZeroU8::new(10).unwrap();
    if a.foca_gossip_ms > 0 {
        c.periodic_gossip = Some(foca::PeriodicParams {
            frequency: Duration::from_millis(a.foca_gossip_ms),
            num_members: NonZeroUsize::new(3).unwrap(),
        });
    }
    c
}

/// What a foca instance's thread shares with the driver.
#[derive(Default)]
struct FocaShared {
    stop: AtomicBool,
    msgs: AtomicU64,
    bytes: AtomicU64,
    members: AtomicUsize,
    backlog: AtomicUsize,
    downs: Mutex<Vec<(SocketAddr, Instant)>>,
}

type FocaTimer = Timer<SocketAddr>;

fn foca_thread(
    socket: UdpSocket,
    me: SocketAddr,
    announce_to: Option<SocketAddr>,
    config: Config,
    seed: u64,
    shared: Arc<FocaShared>,
) {
    let mut foca = Foca::new(me, config, SmallRng::seed_from_u64(seed), PostcardCodec);
    let mut rt: AccumulatingRuntime<SocketAddr> = AccumulatingRuntime::new();
    let mut timers: BinaryHeap<Reverse<(Instant, u64, FocaTimer)>> = BinaryHeap::new();
    let mut timer_seq = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    if let Some(dst) = announce_to {
        let _ = foca.announce(dst, &mut rt);
    }
    let drain = |rt: &mut AccumulatingRuntime<SocketAddr>,
                 timers: &mut BinaryHeap<Reverse<(Instant, u64, FocaTimer)>>,
                 timer_seq: &mut u64| {
        while let Some((to, data)) = rt.to_send() {
            if socket.send_to(&data, to).is_ok() {
                shared.msgs.fetch_add(1, Ordering::Relaxed);
                shared.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        while let Some((after, t)) = rt.to_schedule() {
            *timer_seq += 1;
            timers.push(Reverse((Instant::now() + after, *timer_seq, t)));
        }
        while let Some(n) = rt.to_notify() {
            if let OwnedNotification::MemberDown(id) = n {
                shared.downs.lock().unwrap().push((id, Instant::now()));
            }
        }
    };
    drain(&mut rt, &mut timers, &mut timer_seq);
    while !shared.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        while timers.peek().is_some_and(|Reverse((at, _, _))| *at <= now) {
            let Reverse((_, _, t)) = timers.pop().unwrap();
            let _ = foca.handle_timer(t, &mut rt);
            drain(&mut rt, &mut timers, &mut timer_seq);
        }
        let wait = timers
            .peek()
            .map(|Reverse((at, _, _))| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(5))
            .clamp(Duration::from_micros(100), Duration::from_millis(5));
        let _ = socket.set_read_timeout(Some(wait));
        match socket.recv_from(&mut buf) {
            Ok((len, _from)) => {
                let _ = foca.handle_data(&buf[..len], &mut rt);
                drain(&mut rt, &mut timers, &mut timer_seq);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {}
        }
        shared.members.store(foca.num_members(), Ordering::Relaxed);
        shared
            .backlog
            .store(foca.updates_backlog(), Ordering::Relaxed);
    }
    // The socket closes here: a crash, no leave.
}

struct FocaNode {
    addr: SocketAddr,
    shared: Arc<FocaShared>,
    thread: Option<JoinHandle<()>>,
}

impl FocaNode {
    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FocaNode {
    fn drop(&mut self) {
        self.stop();
    }
}

fn foca_traffic(nodes: &[FocaNode], who: &[usize]) -> Traffic {
    let mut t = Traffic::default();
    for &i in who {
        t.msgs += nodes[i].shared.msgs.load(Ordering::Relaxed);
        t.bytes += nodes[i].shared.bytes.load(Ordering::Relaxed);
    }
    t
}

fn foca_round(a: &Args, scenario: Scenario, round: usize) -> Result<RoundResult, String> {
    let n = a.nodes;
    let config = foca_config(a);
    let sockets: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let addrs: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| s.local_addr())
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let mut nodes = Vec::with_capacity(n);
    for (i, socket) in sockets.into_iter().enumerate() {
        let shared = Arc::new(FocaShared::default());
        let (me, cfg, sh) = (addrs[i], config.clone(), Arc::clone(&shared));
        let announce_to = (i > 0).then_some(addrs[0]);
        let seed = 0x5eed_0000 + (round as u64) * 1000 + i as u64;
        let thread = std::thread::Builder::new()
            .name(format!("foca-{i}"))
            .spawn(move || foca_thread(socket, me, announce_to, cfg, seed, sh))
            .map_err(|e| e.to_string())?;
        nodes.push(FocaNode {
            addr: me,
            shared,
            thread: Some(thread),
        });
    }
    let formed = wait_until(FORM_TIMEOUT, || {
        nodes
            .iter()
            .all(|f| f.shared.members.load(Ordering::Relaxed) == n - 1)
    });
    if !formed {
        return Err("the cluster did not form".into());
    }
    std::thread::sleep(SETTLE);
    // Let the join updates finish riding on probes, so that the baseline is quiet.
    wait_until(Duration::from_secs(5), || {
        nodes
            .iter()
            .all(|f| f.shared.backlog.load(Ordering::Relaxed) == 0)
    });
    let victim = match scenario {
        Scenario::Mgr => 0,
        Scenario::Member => 1 + round % (n - 1),
    };
    let victim_addr = nodes[victim].addr;
    let survivors: Vec<usize> = (0..n).filter(|&i| i != victim).collect();

    let b0 = foca_traffic(&nodes, &survivors);
    std::thread::sleep(Duration::from_millis(a.quiet_ms));
    let baseline = foca_traffic(&nodes, &survivors).minus(b0);

    nodes[victim].stop();
    let t_crash = Instant::now();
    let c0 = foca_traffic(&nodes, &survivors);
    let down_at = |i: usize| -> Option<Instant> {
        nodes[i]
            .shared
            .downs
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| *id == victim_addr)
            .map(|&(_, at)| at)
    };
    let all_down = wait_until(DETECT_TIMEOUT, || {
        survivors.iter().all(|&i| down_at(i).is_some())
    });
    if !all_down {
        return Err(format!(
            "not every survivor declared the crashed instance down within {DETECT_TIMEOUT:?}"
        ));
    }
    std::thread::sleep(Duration::from_millis(a.tail_ms));
    let raw = foca_traffic(&nodes, &survivors).minus(c0);
    let window_ms = t_crash.elapsed().as_secs_f64() * 1000.0;
    let times: Vec<f64> = survivors
        .iter()
        .filter_map(|&i| down_at(i))
        .map(|at| at.saturating_duration_since(t_crash).as_secs_f64() * 1000.0)
        .collect();
    drop(nodes);
    Ok(RoundResult {
        first_ms: times.iter().copied().fold(f64::INFINITY, f64::min),
        all_ms: times.iter().copied().fold(0.0, f64::max),
        raw,
        window_ms,
        baseline,
        views: 0,
    })
}

// ----- report ----------------------------------------------------------------------

fn p50(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let k = s.len();
    if k == 0 {
        f64::NAN
    } else if k % 2 == 1 {
        s[k / 2]
    } else {
        (s[k / 2 - 1] + s[k / 2]) / 2.0
    }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

struct Summary {
    proto: Proto,
    scenario: Scenario,
    ok: usize,
    failed: usize,
    first: Vec<f64>,
    all: Vec<f64>,
    raw_msgs: Vec<f64>,
    raw_bytes: Vec<f64>,
    net_msgs: Vec<f64>,
    net_bytes: Vec<f64>,
    base_msgs_s: Vec<f64>,
    base_bytes_s: Vec<f64>,
    window: Vec<f64>,
    views: Vec<f64>,
    proto_msgs: Vec<f64>,
}

fn summarize(
    a: &Args,
    proto: Proto,
    scenario: Scenario,
    rs: &[Result<RoundResult, String>],
) -> Summary {
    let ok: Vec<&RoundResult> = rs.iter().filter_map(|r| r.as_ref().ok()).collect();
    let col = |f: &dyn Fn(&RoundResult) -> f64| ok.iter().map(|r| f(r)).collect::<Vec<f64>>();
    let q = a.quiet_ms as f64 / 1000.0;
    Summary {
        proto,
        scenario,
        ok: ok.len(),
        failed: rs.len() - ok.len(),
        first: col(&|r| r.first_ms),
        all: col(&|r| r.all_ms),
        raw_msgs: col(&|r| r.raw.msgs as f64),
        raw_bytes: col(&|r| r.raw.bytes as f64),
        net_msgs: col(&|r| r.net(a.quiet_ms).0),
        net_bytes: col(&|r| r.net(a.quiet_ms).1),
        base_msgs_s: col(&|r| r.baseline.msgs as f64 / q),
        base_bytes_s: col(&|r| r.baseline.bytes as f64 / q),
        window: col(&|r| r.window_ms),
        views: col(&|r| r.views as f64),
        proto_msgs: col(&|r| r.raw.proto as f64),
    }
}

fn print_table(a: &Args, sums: &[Summary]) {
    println!(
        "N = {}, rounds = {}, H = {} ms, T = {} ms, sgmp protocol timeout = {} ms, quiet window = {} ms, tail = {} ms, foca periodic gossip = {} ms (0: off)",
        a.nodes, a.rounds, a.heartbeat_ms, a.suspect_ms, a.protocol_timeout_ms, a.quiet_ms, a.tail_ms, a.foca_gossip_ms
    );
    println!();
    println!("| protocol | crash of | ok/rounds | first removal p50 / max (ms) | all removed p50 / max (ms) | msgs raw p50 / max | msgs net p50 / max | bytes raw p50 / max | bytes net p50 / max | sgmp protocol msgs p50 / max | baseline msgs/s, bytes/s (p50) | window p50 (ms) |");
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for s in sums {
        println!(
            "| {} | {} | {}/{} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} | {:.0}, {:.0} | {:.0} |",
            s.proto.name(),
            s.scenario.name(),
            s.ok,
            s.ok + s.failed,
            p50(&s.first),
            max(&s.first),
            p50(&s.all),
            max(&s.all),
            p50(&s.raw_msgs),
            max(&s.raw_msgs),
            p50(&s.net_msgs),
            max(&s.net_msgs),
            p50(&s.raw_bytes),
            max(&s.raw_bytes),
            p50(&s.net_bytes),
            max(&s.net_bytes),
            if s.proto == Proto::Sgmp {
                format!("{:.0} / {:.0}", p50(&s.proto_msgs), max(&s.proto_msgs))
            } else {
                "n/a".to_string()
            },
            p50(&s.base_msgs_s),
            p50(&s.base_bytes_s),
            p50(&s.window),
        );
    }
}

fn json_num(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "null".into()
    }
}

fn print_json(a: &Args, sums: &[Summary]) {
    for s in sums {
        let stat = |v: &[f64]| {
            format!(
                "{{\"p50\":{},\"max\":{}}}",
                json_num(p50(v)),
                json_num(max(v))
            )
        };
        println!(
            "{{\"protocol\":\"{}\",\"scenario\":\"{}\",\"nodes\":{},\"rounds\":{},\"ok\":{},\"failed\":{},\"heartbeat_ms\":{},\"suspect_ms\":{},\"protocol_timeout_ms\":{},\"quiet_ms\":{},\"tail_ms\":{},\"foca_gossip_ms\":{},\"first_removal_ms\":{},\"all_removed_ms\":{},\"msgs_raw\":{},\"msgs_net\":{},\"bytes_raw\":{},\"bytes_net\":{},\"baseline_msgs_per_s\":{},\"baseline_bytes_per_s\":{},\"window_ms\":{},\"views_per_failure\":{},\"sgmp_protocol_msgs\":{}}}",
            s.proto.name(),
            s.scenario.name(),
            a.nodes,
            a.rounds,
            s.ok,
            s.failed,
            a.heartbeat_ms,
            a.suspect_ms,
            a.protocol_timeout_ms,
            a.quiet_ms,
            a.tail_ms,
            a.foca_gossip_ms,
            stat(&s.first),
            stat(&s.all),
            stat(&s.raw_msgs),
            stat(&s.net_msgs),
            stat(&s.raw_bytes),
            stat(&s.net_bytes),
            stat(&s.base_msgs_s),
            stat(&s.base_bytes_s),
            stat(&s.window),
            stat(&s.views),
            if s.proto == Proto::Sgmp {
                stat(&s.proto_msgs)
            } else {
                "null".to_string()
            },
        );
    }
}

fn main() {
    let a = parse_args();
    let mut sums = Vec::new();
    for proto in [Proto::Sgmp, Proto::Foca] {
        if a.only.is_some_and(|p| p != proto) {
            continue;
        }
        for scenario in [Scenario::Member, Scenario::Mgr] {
            if a.scenario.is_some_and(|s| s != scenario) {
                continue;
            }
            let mut rs = Vec::with_capacity(a.rounds);
            for round in 0..a.rounds {
                let r = match proto {
                    Proto::Sgmp => sgmp_round(&a, scenario, round),
                    Proto::Foca => foca_round(&a, scenario, round),
                };
                match &r {
                    Ok(x) => eprintln!(
                        "{} {} round {}: first {:.1} ms, all {:.1} ms, raw {} msgs / {} B in {:.0} ms, net {:.0} msgs / {:.0} B, views {}, sgmp protocol msgs {}",
                        proto.name(),
                        scenario.name(),
                        round,
                        x.first_ms,
                        x.all_ms,
                        x.raw.msgs,
                        x.raw.bytes,
                        x.window_ms,
                        x.net(a.quiet_ms).0,
                        x.net(a.quiet_ms).1,
                        x.views,
                        x.raw.proto
                    ),
                    Err(e) => eprintln!("{} {} round {}: FAILED: {e}", proto.name(), scenario.name(), round),
                }
                rs.push(r);
            }
            sums.push(summarize(&a, proto, scenario, &rs));
        }
    }
    if a.json {
        print_json(&a, &sums);
    } else {
        print_table(&a, &sums);
    }
}
