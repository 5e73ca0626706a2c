//! The protocol's message pattern over raw UDP: the floor under `view-change`'s commit
//! latency on the machine at hand.
//!
//! A removal's commit among the N − 1 survivors is M-sub from the mgr to the other
//! N − 2, an ack from each back, then M-com to each (§4, 1.5 round trips). On a host per member the three
//! legs run in parallel and take about 1.5 UDP round trips; on a machine with fewer
//! cores than members the N − 2 receivers of each leg are woken and run one after
//! another, and every leg costs about N − 2 wake-ups rather than one. The commit
//! target of issue 8 (≤ 2 UDP round trips at N = 5) compares with a single round trip,
//! which hides that; this measurement does the same exchange with no protocol at all —
//! N − 1 threads, one blocking UDP socket each, the same datagram size, the same idleness
//! before each round as a view change meets — so that `commit / pattern` isolates what
//! sgmp adds (its transport, engine, node loop) from what the cores cost.
//!
//! `sgmp-load pattern` ([`run`]) runs the same exchange alone, then as a node would
//! ([`StepModel`]): waiting in epoll on a nonblocking socket and reading until it is
//! empty (the nodes' `block` loop), with a given CPU time spent on every datagram; it
//! fits how much each µs of work per step lengthens the round, and so how much CPU per
//! step a node may spend for its commit to stay within 1.3× or 1.5× the floor.
//!
//! With `spin` (`view-change --idle spin`) each thread first polls its nonblocking socket,
//! yielding the core between reads, for up to that long before a blocking read, and
//! for up to `OPEN_ROUND_SPIN_US` while its round is open (the mgr from its `sub`s to
//! its `com`s, a member from its `ack` to the `com`), as the nodes' `NodeIdle::Spin`
//! does: the same exchange under the same idle strategy.
//!
//! Each round: the coordinator (the caller) sleeps `gap`, then triggers the mgr thread;
//! the mgr stamps the time it woke, sends `sub` to every member thread, counts their
//! `ack`s and, with the last, sends `com` to each; each member stamps when its `com`
//! arrived. The round's figure is the last `com` stamp minus the mgr's wake stamp —
//! the same two ends as the commit latency (the mgr step that decided, the last
//! install).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sgmp_transport::OPEN_ROUND_SPIN_US;

use super::cluster::stopped;
use super::flags::Output;
use super::report::{cell, Figures, Latency};
use super::view_change::Series;

/// Datagram size of the raw UDP pattern, bytes: about a removal's M-sub / ack / M-com
/// datagram (header, one update, CRC).
pub const PATTERN_SIZE: usize = 128;

/// Idleness before each round: a view change's messages meet idle cores.
const GAP: Duration = Duration::from_millis(1);

/// First byte of each datagram.
const TRIGGER: u8 = 0;
const SUB: u8 = 1;
const ACK: u8 = 2;
const COM: u8 = 3;
/// Ends a thread's read when the threads stop (ignored otherwise).
const STOP: u8 = 4;

/// How long a thread blocks in one read before it looks at the stop flag (a stop
/// datagram ends the read sooner): long, so that threads kept between batches
/// (`view-change`) seldom wake during a view change.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// Longest wait for one round before it is counted lost.
const ROUND_TIMEOUT: Duration = Duration::from_secs(1);

/// What the threads share: a time base, the stamps, the stop flag.
struct Shared {
    base: Instant,
    /// The mgr's wake time of the current round, ns since `base` (0: not yet).
    started: AtomicU64,
    /// Each member's `com` arrival of the current round, ns since `base` (0: not yet).
    com_at: Vec<AtomicU64>,
    done: AtomicBool,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        // Never 0, which means "not yet".
        (self.base.elapsed().as_nanos() as u64).max(1)
    }
}

/// How the pattern's threads wait for a datagram and what they do with it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepModel {
    /// Poll (yielding) this long before a blocking wait (`view-change --idle spin`).
    pub spin: Option<Duration>,
    /// Wait as a node's event loop does: `epoll_wait` on a nonblocking socket, read,
    /// answer, then read again until the socket is empty (`EAGAIN`), instead of a
    /// blocking `recv` (two more system calls per step).
    pub epoll: bool,
    /// CPU spent per datagram handled (a busy loop, ns): what a node's protocol work
    /// adds to each step. A reply leaves after it; a `com`'s arrival is stamped before
    /// it (as an install is, at the datagram's arrival).
    pub step_ns: u64,
}

/// Runs `rounds` of the pattern among `threads` threads (the mgr and `threads − 1` others) with
/// `size`-byte datagrams, `gap` of idleness before each round; with `spin`, each read
/// polls (yielding) for up to that long before it blocks. Rounds that lose a datagram
/// (loopback under memory pressure) time out and are left out.
pub fn udp_protocol_pattern(
    threads: usize,
    size: usize,
    rounds: u64,
    gap: Duration,
    spin: Option<Duration>,
) -> io::Result<Latency> {
    let model = StepModel {
        spin,
        ..StepModel::default()
    };
    udp_protocol_pattern_with(threads, size, rounds, gap, model)
}

/// [`udp_protocol_pattern`] with the threads' steps as `model` says.
pub fn udp_protocol_pattern_with(
    threads: usize,
    size: usize,
    rounds: u64,
    gap: Duration,
    model: StepModel,
) -> io::Result<Latency> {
    let mut series = Series::new();
    let mut t = PatternThreads::start(threads, size, model)?;
    t.rounds(&mut series, rounds, gap)?;
    Ok(series.latency())
}

/// The pattern's threads, kept between batches of rounds: `view-change` samples the
/// pattern between its own rounds with the same threads throughout, so that they
/// settle on the cores as a long run's do (new threads per batch land on other vCPUs
/// and pay cross-vCPU wake-ups: at N = 3 the pattern then costs 2–3× as much).
/// Between batches they wait in a blocking read (a wake-up per `READ_TIMEOUT`);
/// dropping them stops them.
pub struct PatternThreads {
    shared: Arc<Shared>,
    trigger: UdpSocket,
    mgr_addr: SocketAddr,
    /// Every thread's socket (the mgr's last): where the stop datagrams go.
    addrs: Vec<SocketAddr>,
    handles: Vec<JoinHandle<()>>,
}

impl PatternThreads {
    /// Starts the mgr and `threads − 1` others, `size`-byte datagrams, steps as
    /// `model` says.
    pub fn start(threads: usize, size: usize, model: StepModel) -> io::Result<PatternThreads> {
        let members = threads.max(2) - 1;
        let size = size.clamp(1, 1400);
        let shared = Arc::new(Shared {
            base: Instant::now(),
            started: AtomicU64::new(0),
            com_at: (0..members).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicBool::new(false),
        });
        let mgr = bind()?;
        let mgr_addr = mgr.local_addr()?;
        let mut sockets = Vec::with_capacity(members);
        for _ in 0..members {
            sockets.push(bind()?);
        }
        let mut addrs = sockets
            .iter()
            .map(UdpSocket::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let member_addrs = addrs.clone();
        addrs.push(mgr_addr);
        let mut t = PatternThreads {
            shared,
            trigger: bind()?,
            mgr_addr,
            addrs,
            handles: Vec::with_capacity(threads),
        };
        // Dropped on an error: the threads started so far stop.
        for (i, s) in sockets.into_iter().enumerate() {
            let sh = Arc::clone(&t.shared);
            t.handles.push(spawn(format!("pattern-m{i}"), move || {
                member(Reader::new(s, model), mgr_addr, i, size, &sh)
            })?);
        }
        let sh = Arc::clone(&t.shared);
        t.handles.push(spawn("pattern-mgr".into(), move || {
            mgr_loop(Reader::new(mgr, model), &member_addrs, size, &sh)
        })?);
        Ok(t)
    }

    /// Runs `rounds` rounds, `gap` of idleness before each, each one's figure recorded
    /// into `series` (which may hold earlier batches). A round that loses a datagram
    /// times out and is left out.
    pub fn rounds(&mut self, series: &mut Series, rounds: u64, gap: Duration) -> io::Result<()> {
        let shared = &self.shared;
        for _ in 0..rounds {
            if stopped() {
                break;
            }
            shared.started.store(0, Ordering::SeqCst);
            for c in &shared.com_at {
                c.store(0, Ordering::SeqCst);
            }
            std::thread::sleep(gap);
            self.trigger.send_to(&[TRIGGER], self.mgr_addr)?;
            // Sleep through the round (the coordinator must not compete for the cores
            // while it runs), then collect.
            let deadline = Instant::now() + ROUND_TIMEOUT;
            std::thread::sleep(gap);
            loop {
                let t0 = shared.started.load(Ordering::SeqCst);
                let last = shared
                    .com_at
                    .iter()
                    .map(|c| c.load(Ordering::SeqCst))
                    .try_fold(0u64, |m, c| (c != 0).then_some(m.max(c)));
                if let (true, Some(last)) = (t0 != 0, last) {
                    series.record(last.saturating_sub(t0));
                    break;
                }
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(gap);
            }
        }
        Ok(())
    }
}

impl Drop for PatternThreads {
    fn drop(&mut self) {
        // Every thread stops, whether or not all of them started: the flag, then a
        // datagram that ends each one's blocking read at once.
        self.shared.done.store(true, Ordering::SeqCst);
        for a in &self.addrs {
            let _ = self.trigger.send_to(&[STOP], a);
        }
        for t in self.handles.drain(..) {
            let _ = t.join();
        }
    }
}

fn bind() -> io::Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(s)
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(f)
}

/// A thread's socket and how it waits for the next datagram.
struct Reader {
    s: UdpSocket,
    /// Poll (yielding) this long before a blocking read.
    spin: Option<Duration>,
    /// The socket is in nonblocking mode (it is left so after a blocking read until the
    /// next read, so that the switch is not on the way to the reply).
    nonblocking: bool,
    /// [`StepModel::epoll`]: the poll the socket is registered with (edge-triggered,
    /// as a node's), its event buffer, and the registered duplicate of the socket's
    /// descriptor (kept open while the reader lives).
    poll: Option<(mio::Poll, mio::Events, mio::net::UdpSocket)>,
    /// [`StepModel::step_ns`].
    step_ns: u64,
}

impl Reader {
    fn new(s: UdpSocket, model: StepModel) -> Reader {
        // The poll watches a duplicate of the socket's descriptor (the same socket):
        // reads go through `s`. Without it (setup failed) the thread blocks in `recv`.
        let poll = model.epoll.then(|| epoll_for(&s).ok()).flatten();
        Reader {
            s,
            spin: model.spin,
            nonblocking: false,
            poll,
            step_ns: model.step_ns,
        }
    }

    /// The next datagram's length (`None`: the read timed out or failed). `open`: the
    /// thread's round is open, so it polls as long as a node in an open round does.
    fn read(&mut self, buf: &mut [u8], open: bool) -> Option<usize> {
        if self.poll.is_some() {
            return self.read_polled(buf);
        }
        if let Some(spin) = self.spin {
            let spin = if open {
                spin.max(Duration::from_micros(OPEN_ROUND_SPIN_US))
            } else {
                spin
            };
            if !self.nonblocking {
                self.s.set_nonblocking(true).ok()?;
                self.nonblocking = true;
            }
            let start = Instant::now();
            loop {
                match self.s.recv_from(buf) {
                    Ok((len, _)) => return Some(len),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return None,
                }
                if start.elapsed() >= spin {
                    break;
                }
                std::thread::yield_now();
            }
            self.s.set_nonblocking(false).ok()?;
            self.nonblocking = false;
        }
        self.s.recv_from(buf).ok().map(|(len, _)| len)
    }

    /// [`StepModel::epoll`]: read until the socket is empty, then wait in the poll (a
    /// node's loop: the read that finds nothing, then `epoll_wait`).
    fn read_polled(&mut self, buf: &mut [u8]) -> Option<usize> {
        if !self.nonblocking {
            self.s.set_nonblocking(true).ok()?;
            self.nonblocking = true;
        }
        let (poll, events, _) = self.poll.as_mut()?;
        loop {
            match self.s.recv_from(buf) {
                Ok((len, _)) => return Some(len),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return None,
            }
            poll.poll(events, Some(READ_TIMEOUT)).ok()?;
            if events.is_empty() {
                return None;
            }
        }
    }

    /// [`StepModel::step_ns`] of CPU (a busy loop).
    fn work(&self) {
        if self.step_ns == 0 {
            return;
        }
        let start = Instant::now();
        while (start.elapsed().as_nanos() as u64) < self.step_ns {
            std::hint::spin_loop();
        }
    }

    fn send_to(&self, buf: &[u8], to: SocketAddr) {
        let _ = self.s.send_to(buf, to);
    }
}

/// An edge-triggered poll watching `s` through a duplicate of its descriptor (the same
/// socket; the registration lasts while the duplicate is open).
fn epoll_for(s: &UdpSocket) -> io::Result<(mio::Poll, mio::Events, mio::net::UdpSocket)> {
    let poll = mio::Poll::new()?;
    let mut watched = mio::net::UdpSocket::from_std(s.try_clone()?);
    poll.registry()
        .register(&mut watched, mio::Token(0), mio::Interest::READABLE)?;
    Ok((poll, mio::Events::with_capacity(8), watched))
}

/// A member: answers `sub` with `ack`, stamps `com`.
fn member(mut s: Reader, mgr: SocketAddr, i: usize, size: usize, sh: &Shared) {
    let mut buf = [0u8; 2048];
    let mut out = vec![0u8; size];
    out[0] = ACK;
    // Acknowledged a `sub`, awaiting its `com`.
    let mut open = false;
    while !sh.done.load(Ordering::Relaxed) {
        let Some(len) = s.read(&mut buf, open) else {
            continue;
        };
        match buf[..len].first() {
            Some(&SUB) => {
                s.work();
                s.send_to(&out, mgr);
                open = true;
            }
            Some(&COM) => {
                sh.com_at[i].store(sh.now_ns(), Ordering::SeqCst);
                s.work();
                open = false;
            }
            _ => {}
        }
    }
}

/// The mgr: on the trigger stamps and sends `sub` to all; with the last `ack` sends
/// `com` to all.
fn mgr_loop(mut s: Reader, members: &[SocketAddr], size: usize, sh: &Shared) {
    let mut buf = [0u8; 2048];
    let mut sub = vec![0u8; size];
    sub[0] = SUB;
    let mut com = vec![0u8; size];
    com[0] = COM;
    let mut acks = 0usize;
    // Between its `sub`s and its `com`s.
    let mut open = false;
    while !sh.done.load(Ordering::Relaxed) {
        let Some(len) = s.read(&mut buf, open) else {
            continue;
        };
        match buf[..len].first() {
            Some(&TRIGGER) => {
                sh.started.store(sh.now_ns(), Ordering::SeqCst);
                s.work();
                acks = 0;
                open = true;
                for &a in members {
                    s.send_to(&sub, a);
                }
            }
            Some(&ACK) => {
                s.work();
                acks += 1;
                if acks == members.len() {
                    open = false;
                    for &a in members {
                        s.send_to(&com, a);
                    }
                }
            }
            _ => {}
        }
    }
}

// ----- `sgmp-load pattern`: how far the floor rises with a node's step ---------------

/// Flags of `sgmp-load pattern`.
#[derive(Clone, Debug, clap::Args)]
pub struct PatternArgs {
    /// Members of the group: the pattern runs among the N − 1 survivors of a removal, as
    /// `view-change`'s does.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(3..=63))]
    pub nodes: u64,
    /// Rounds per setting and pass.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub rounds: u64,
    /// Passes over the settings: each pass runs every setting once, in turn, so that the
    /// machine's drift meets them alike; figures are the median (and range) of the
    /// passes' medians.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub passes: u64,
    /// CPU per step of the event-loop series, ns (comma-separated). Keep `0` in the
    /// list: the step budget and `epoll_over_recv` start from it (`null` without it).
    #[arg(long, value_delimiter = ',', default_values_t = [0u64, 1_000, 2_000, 4_000],
          value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub step_ns: Vec<u64>,
    /// `--json`.
    #[command(flatten)]
    pub output: Output,
}

/// One setting's pattern latency over the passes: the median of the passes' p50s and
/// their range, µs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Median of the passes' p50.
    pub p50_us: f64,
    /// Lowest pass p50.
    pub min_us: f64,
    /// Highest pass p50.
    pub max_us: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Spread {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return Spread {
                p50_us: f64::NAN,
                min_us: f64::NAN,
                max_us: f64::NAN,
            };
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Spread {
            p50_us: median,
            min_us: v[0],
            max_us: v[v.len() - 1],
        }
    }
}

/// What `sgmp-load pattern` measured.
#[derive(Clone, Debug)]
pub struct PatternReport {
    /// The flags.
    pub args: PatternArgs,
    /// Blocking `recv`, no work: `view-change`'s floor (`udp_pattern_p50_us`).
    pub recv: Spread,
    /// Event loop with `step_ns` of CPU per step, one per `--step-ns`.
    pub epoll: Vec<(u64, Spread)>,
}

/// Runs the pattern with a blocking `recv` and no work (the floor `view-change` divides
/// by), then with a node's event loop and each `--step-ns` of CPU per step.
pub fn run(args: &PatternArgs) -> io::Result<PatternReport> {
    let threads = args.nodes as usize - 1;
    let mut settings = vec![StepModel::default()];
    settings.extend(args.step_ns.iter().map(|&step_ns| StepModel {
        epoll: true,
        step_ns,
        ..StepModel::default()
    }));
    let mut p50s: Vec<Vec<f64>> = vec![Vec::new(); settings.len()];
    for _ in 0..args.passes {
        for (k, m) in settings.iter().enumerate() {
            if stopped() {
                break;
            }
            let l = udp_protocol_pattern_with(threads, PATTERN_SIZE, args.rounds, GAP, *m)?;
            p50s[k].push(l.p50_us);
        }
    }
    let mut spreads = p50s.into_iter().map(Spread::of);
    let recv = spreads.next().expect("the recv setting");
    Ok(PatternReport {
        args: args.clone(),
        recv,
        epoll: args.step_ns.iter().copied().zip(spreads).collect(),
    })
}

impl PatternReport {
    /// Least-squares slope of the event loop's latency against the CPU per step: µs of
    /// latency per µs of work in every step (NaN with fewer than two settings).
    pub fn slope(&self) -> f64 {
        let pts: Vec<(f64, f64)> = self
            .epoll
            .iter()
            .filter(|(_, s)| s.p50_us.is_finite())
            .map(|(ns, s)| (*ns as f64 / 1000.0, s.p50_us))
            .collect();
        let n = pts.len() as f64;
        let (sx, sy) = pts.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        let (mx, my) = (sx / n, sy / n);
        let (sxy, sxx) = pts.iter().fold((0.0, 0.0), |a, p| {
            (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx) * (p.0 - mx))
        });
        if pts.len() < 2 || sxx == 0.0 {
            return f64::NAN;
        }
        sxy / sxx
    }

    /// The event loop without work (the `0` setting, if asked for).
    fn epoll_base(&self) -> f64 {
        self.epoll
            .iter()
            .find(|(ns, _)| *ns == 0)
            .map_or(f64::NAN, |(_, s)| s.p50_us)
    }

    /// CPU per step (ns) a node with this event loop may spend for its commit to stay
    /// within `ratio` × the floor: from the measured event loop without work (the `0`
    /// setting) along the fitted slope. Negative: not even without work. NaN (`null`
    /// in JSON) without a `0` setting or without a rising slope.
    pub fn step_budget_ns(&self, ratio: f64) -> f64 {
        let slope = self.slope();
        if slope.is_nan() || slope <= 0.0 {
            return f64::NAN;
        }
        (ratio * self.recv.p50_us - self.epoll_base()) / slope * 1000.0
    }

    /// The figures, one flat JSON object.
    pub fn figures(&self) -> Figures {
        let mut f = Figures::new();
        f.text("mode", "pattern");
        f.int("nodes", self.args.nodes);
        f.int("threads", self.args.nodes - 1);
        f.int("rounds", self.args.rounds);
        f.int("passes", self.args.passes);
        put_spread(&mut f, "recv", &self.recv);
        for (ns, s) in &self.epoll {
            put_spread(&mut f, &format!("epoll_step{ns}ns"), s);
        }
        f.float("epoll_over_recv", self.epoll_base() / self.recv.p50_us);
        f.float("us_per_step_us", self.slope());
        f.float("step_budget_ns_ratio_1_3", self.step_budget_ns(1.3));
        f.float("step_budget_ns_ratio_1_5", self.step_budget_ns(1.5));
        f
    }

    /// A human table.
    pub fn table(&self) -> String {
        let mut t = format!(
            "removal pattern among {} threads, {} rounds x {} passes (p50, median and range of the passes, us)\n",
            self.args.nodes - 1,
            self.args.rounds,
            self.args.passes
        );
        let row = |name: String, s: &Spread| {
            format!(
                "  {name:<28} {:>8} ({} - {})\n",
                cell(s.p50_us, 1),
                cell(s.min_us, 1),
                cell(s.max_us, 1)
            )
        };
        t += &row("recv, no work (the floor)".into(), &self.recv);
        for (ns, s) in &self.epoll {
            t += &row(format!("epoll, {ns} ns per step"), s);
        }
        t += &format!(
            "  latency per us of work per step: {} us; work per step within 1.3x the floor: {} ns, within 1.5x: {} ns\n",
            cell(self.slope(), 2),
            cell(self.step_budget_ns(1.3), 0),
            cell(self.step_budget_ns(1.5), 0)
        );
        t
    }
}

fn put_spread(f: &mut Figures, key: &str, s: &Spread) {
    f.float(format!("{key}_p50_us"), s.p50_us);
    f.float(format!("{key}_p50_min_us"), s.min_us);
    f.float(format!("{key}_p50_max_us"), s.max_us);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_loop_with_work_per_step_completes_its_rounds() {
        let m = StepModel {
            epoll: true,
            step_ns: 2_000,
            ..StepModel::default()
        };
        let l = udp_protocol_pattern_with(4, 128, 20, Duration::from_millis(1), m).unwrap();
        assert!(l.samples >= 15, "{l:?}");
        // Every round has at least the mgr's two steps of work on its path.
        assert!(l.p50_us >= 4.0 && l.p50_us < 1_000_000.0, "{l:?}");
    }

    #[test]
    fn the_fitted_line_gives_the_step_budget() {
        let s = |p50_us| Spread {
            p50_us,
            min_us: p50_us,
            max_us: p50_us,
        };
        let r = PatternReport {
            args: PatternArgs {
                nodes: 5,
                rounds: 1,
                passes: 1,
                step_ns: vec![0, 1_000, 2_000],
                output: Output { json: true },
            },
            recv: s(40.0),
            epoll: vec![(0, s(44.0)), (1_000, s(50.0)), (2_000, s(56.0))],
        };
        assert_eq!(Spread::of(vec![3.0, 1.0, 4.0, 2.0]).p50_us, 2.5);
        assert!((r.slope() - 6.0).abs() < 1e-9);
        // 1.3 x 40 = 52 = 44 + 6 x 1.333 us.
        assert!((r.step_budget_ns(1.3) - 1_333.3).abs() < 0.1);
        let f = r.figures();
        assert_eq!(
            f.get("epoll_step1000ns_p50_us"),
            Some(&serde_json::json!(50.0))
        );
        assert_eq!(f.get("us_per_step_us"), Some(&serde_json::json!(6.0)));
    }

    #[test]
    fn the_pattern_completes_its_rounds() {
        for spin in [None, Some(Duration::from_micros(200))] {
            let l = udp_protocol_pattern(4, 128, 20, Duration::from_millis(1), spin).unwrap();
            assert!(l.samples >= 15, "{spin:?}: {l:?}");
            assert!(l.p50_us > 0.0 && l.p50_us < 1_000_000.0, "{spin:?}: {l:?}");
        }
    }
}
