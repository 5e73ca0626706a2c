//! The CPU a removal costs the node cores, without sockets, clocks or threads: N
//! `NodeCore`s (transport framing and CRC, engine, glue, membership service, as `sgmpd`
//! runs them) exchange their datagrams in memory; a member crashes, the ring detector
//! reports it, and the bench times the deliveries of the millisecond in which every
//! survivor installs the smaller view (the report, the M-sub, the acks, the M-com and
//! the installs, with whatever heartbeats fall in it). The crashed member then rejoins
//! as a new incarnation, untimed, so that every removal starts from N members.
//!
//! On a machine with fewer cores than members the commit of `sgmp-load view-change` is
//! this CPU spread over the cores, plus the system calls and wake-ups that the raw-UDP
//! pattern pays too (docs/bench/view_change_perf.md §9): the figure per datagram is
//! what the protocol adds to each step of the pattern.
//!
//! Three groups: `node_core_removal` (warm caches), `node_core_removal_cold` (each
//! delivery with its lines evicted to the shared L3) and `node_core_removal_dram` (to
//! memory: what a real step on a shared host meets).
//!
//! `cargo bench -p sgmp-benches --bench node_core`

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgmp_membership::node::{NodeConfig, NodeCore};
use sgmp_membership::testkit::{addr_of, member_of};
use sgmp_membership::{Member, Time};
use sgmp_transport::Keyring;

/// The index of the core at `a` (`addr_of(i)`).
fn index_of(a: SocketAddr) -> usize {
    (a.port() - addr_of(0).port()) as usize
}

fn config(seed: Option<SocketAddr>) -> NodeConfig {
    NodeConfig {
        max_members: 64,
        heartbeat_ms: 10,
        suspect_ms: 60,
        protocol_timeout_ms: 200,
        seeds: seed.into_iter().collect(),
        ..NodeConfig::default()
    }
}

/// N cores and the datagrams between them, on a simulated clock (1 ms ticks).
struct World {
    now: Time,
    cores: Vec<NodeCore>,
    up: Vec<bool>,
    /// (from, to, bytes): written, not delivered yet.
    wire: VecDeque<(usize, usize, Vec<u8>)>,
    tx: Vec<u8>,
    /// Incarnations handed out so far.
    inc: u64,
    /// Written over before each timed delivery when set (untimed): the delivery then
    /// runs with its code and data out of the caches that many bytes clear (the core's
    /// private caches at [`EVICT_BYTES`], the shared L3 too at [`EVICT_DRAM_BYTES`]),
    /// as a node's step does on a host whose other threads and kernel ran since its
    /// last step.
    evict: Option<Vec<u8>>,
    /// The removal's ticks are running (only their deliveries are evicted and timed
    /// cold: the rejoin after it stays warm).
    removing: bool,
}

impl World {
    fn founded(n: usize) -> World {
        let founders: Vec<Member> = (0..n).map(|i| member_of(i, 1)).collect();
        let mut cores: Vec<NodeCore> = founders
            .iter()
            .map(|m| {
                NodeCore::new(
                    config(None).core_config(m.addr, Keyring::default()),
                    m.id,
                    m.addr,
                )
            })
            .collect();
        for c in &mut cores {
            c.found_with(Time::ZERO, &founders);
        }
        let mut w = World {
            now: Time::ZERO,
            cores,
            up: vec![true; n],
            wire: VecDeque::new(),
            tx: vec![0u8; 65_536],
            inc: 1,
            evict: None,
            removing: false,
        };
        w.run(300);
        w
    }

    /// Core `i`'s datagrams onto the wire.
    fn drain(&mut self, i: usize) {
        let now = self.now;
        while let Some(t) = self.cores[i].poll_transmit(now, &mut self.tx) {
            let to = index_of(t.dst);
            self.wire.push_back((i, to, self.tx[..t.len].to_vec()));
        }
        while self.cores[i].poll_event().is_some() {}
    }

    /// One millisecond: due timers, then every datagram and the answers it causes
    /// (each delivery 1 us after the previous one). Returns the time spent in the
    /// cores' deliveries (handling, events, transmissions).
    fn tick(&mut self) -> Duration {
        self.now = self.now + 1_000;
        for i in 0..self.cores.len() {
            if self.up[i] {
                if self.cores[i].poll_timeout().is_some_and(|t| t <= self.now) {
                    self.cores[i].handle_timeout(self.now);
                }
                self.drain(i);
            }
        }
        let mut spent = Duration::ZERO;
        while let Some((from, to, bytes)) = self.wire.pop_front() {
            if to < self.cores.len() && self.up[to] {
                self.now = self.now + 1;
                if let Some(buf) = self.evict.as_mut().filter(|_| self.removing) {
                    evict(buf);
                    let t0 = Instant::now();
                    self.deliver_cold(from, to, &bytes);
                    spent += t0.elapsed();
                    continue;
                }
                let t0 = Instant::now();
                self.cores[to].handle_datagram(self.now, addr_of(from), &bytes);
                self.drain(to);
                spent += t0.elapsed();
            }
        }
        spent
    }

    /// A delivery after an eviction, out of line so that a profiler can select it
    /// (`valgrind --tool=callgrind --toggle-collect='*deliver_cold*'`).
    #[inline(never)]
    fn deliver_cold(&mut self, from: usize, to: usize, bytes: &[u8]) {
        self.cores[to].handle_datagram(self.now, addr_of(from), bytes);
        self.drain(to);
    }

    fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            self.tick();
        }
    }

    fn version(&self, i: usize) -> u64 {
        self.cores[i].engine().view().version
    }

    /// Crashes `victim`; returns the CPU of the deliveries of the tick in which every
    /// survivor installed the view without it.
    fn removal(&mut self, victim: usize) -> Duration {
        let v0 = self.version(0);
        self.up[victim] = false;
        self.removing = true;
        for _ in 0..10_000 {
            let spent = self.tick();
            let n = self.cores.len();
            if (0..n).filter(|&i| self.up[i]).all(|i| self.version(i) > v0) {
                self.removing = false;
                return spent;
            }
        }
        panic!("the removal of n{victim} did not complete");
    }

    /// `victim` comes back as a new incarnation and joins through n0.
    fn rejoin(&mut self, victim: usize) {
        self.inc += 1;
        let m = member_of(victim, self.inc);
        let cfg = config(Some(addr_of(0))).core_config(m.addr, Keyring::default());
        let mut c = NodeCore::new(cfg, m.id, m.addr);
        c.start(self.now);
        self.cores[victim] = c;
        self.up[victim] = true;
        let v = self.version(0);
        for _ in 0..20_000 {
            self.tick();
            if (0..self.cores.len()).all(|i| self.version(i) > v) {
                self.run(100);
                return;
            }
        }
        panic!("n{victim} did not rejoin");
    }
}

/// Bigger than a core's private caches (L2 is 2–4 MiB on the machines we measure), not
/// than the shared L3: each delivery starts with its lines in the L3.
const EVICT_BYTES: usize = 8 << 20;

/// Bigger than the shared L3 too (32 MiB on the EPYC we measure), and than what the
/// TLBs map: each delivery starts with its code and data in memory, as the steps of
/// `sgmp-load view-change` do on a shared host whose other tenants ran in between
/// (their time from read to reply matches this figure, not the L3 one:
/// docs/bench/view_change_perf.md §15).
const EVICT_DRAM_BYTES: usize = 96 << 20;

/// Writes one byte in every cache line of `buf`, so that what the next delivery touches
/// comes from the shared cache or memory.
#[inline(never)]
fn evict(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(64) {
        buf[i] = buf[i].wrapping_add(1);
    }
    std::hint::black_box(&buf);
}

fn removal(c: &mut Criterion) {
    removal_group(c, "node_core_removal", None, &[5, 17, 63]);
    removal_group(c, "node_core_removal_cold", Some(EVICT_BYTES), &[5, 17, 63]);
    // N = 5 only: writing 96 MiB before each of a removal's ~45 deliveries takes
    // about half a second per removal.
    removal_group(c, "node_core_removal_dram", Some(EVICT_DRAM_BYTES), &[5]);
}

/// The removal at each N of `sizes`; with `evict_bytes`, each delivery after that many
/// bytes were written over (untimed).
fn removal_group(c: &mut Criterion, name: &str, evict_bytes: Option<usize>, sizes: &[usize]) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    for &n in sizes {
        let mut w = World::founded(n);
        w.evict = evict_bytes.map(|bytes| vec![0u8; bytes]);
        // Datagrams of a removal among n − 1 survivors: M-sub, ack and M-com to each
        // of the n − 2 others, and the detector's report.
        g.throughput(Throughput::Elements(3 * (n as u64 - 2) + 1));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let victim = n - 1;
                    total += w.removal(victim);
                    w.rejoin(victim);
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, removal);
criterion_main!(benches);
