//! N node cores and the datagrams between them, in memory on a simulated clock: the
//! world of the `node_core` bench and of the `footprint` example (the lines a delivery
//! touches). A member crashes, the ring detector reports it, every survivor installs
//! the smaller view ([`World::removal`]); the crashed member then rejoins as a new
//! incarnation ([`World::rejoin`]) so that every removal starts from N members.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sgmp_membership::node::{NodeConfig, NodeCore};
use sgmp_membership::testkit::{addr_of, member_of};
use sgmp_membership::{Member, Time};
use sgmp_transport::Keyring;

/// Bumped right before each marked step of a removal (with [`World::marks`]): a
/// tracer (`valgrind --tool=lackey`) sees the store and starts counting the lines the
/// step touches.
pub static MARK_BEGIN: AtomicU64 = AtomicU64::new(0);
/// Bumped when a marked step's first datagram is built: what came before is the step's
/// read-to-reply path.
pub static MARK_FIRST_SEND: AtomicU64 = AtomicU64::new(0);
/// Bumped right after a marked step (its datagrams built, its events taken).
pub static MARK_END: AtomicU64 = AtomicU64::new(0);

/// The index of the core at `a` (`addr_of(i)`).
fn index_of(a: SocketAddr) -> usize {
    (a.port() - addr_of(0).port()) as usize
}

/// The node settings of every core (`seed`: the contact of a joiner).
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

/// One step of a removal, as [`World::step_hook`] reports it before the step runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Core `at`'s timers ran.
    Timer {
        /// The core.
        at: usize,
    },
    /// A datagram of `len` bytes from core `from` reached core `to`.
    Datagram {
        /// The sender.
        from: usize,
        /// The receiver.
        to: usize,
        /// The datagram's length (tells the message kinds apart).
        len: usize,
    },
}

/// N cores and the datagrams between them, on a simulated clock (1 ms ticks).
pub struct World {
    now: Time,
    cores: Vec<NodeCore>,
    up: Vec<bool>,
    /// (from, to, bytes): written, not delivered yet.
    wire: VecDeque<(usize, usize, Vec<u8>)>,
    tx: Vec<u8>,
    /// Incarnations handed out so far.
    inc: u64,
    /// Written over before each timed delivery when set (untimed): the delivery then
    /// runs with its code and data out of the caches that many bytes clear, as a
    /// node's step does on a host whose other threads and kernel ran since its last
    /// step.
    pub evict: Option<Vec<u8>>,
    /// Bump [`MARK_BEGIN`], [`MARK_FIRST_SEND`] and [`MARK_END`] around each step of a
    /// removal (timers and deliveries).
    pub marks: bool,
    /// Told of each step of a removal before it runs (with [`World::marks`]).
    pub step_hook: Option<fn(Step)>,
    /// Told of the length of a marked step's first datagram, once it is built (tells a
    /// timer step that submits from one that sends heartbeats).
    pub sent_hook: Option<fn(usize)>,
    /// The removal's ticks are running (only their deliveries are evicted and timed
    /// cold, or marked: the rejoin after it stays warm and unmarked).
    removing: bool,
}

impl World {
    /// N founders in one view, 300 ms after the founding.
    pub fn founded(n: usize) -> World {
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
            marks: false,
            step_hook: None,
            sent_hook: None,
            removing: false,
        };
        w.run(300);
        w
    }

    /// The cores, in one block of `len() * size_of::<NodeCore>()` bytes (a tracer
    /// tells the cores' bodies from their heap buffers by it).
    pub fn cores(&self) -> &[NodeCore] {
        &self.cores
    }

    /// Core `i`'s datagrams onto the wire (the first of them marked in a marked step).
    fn drain(&mut self, i: usize, marked: bool) {
        let now = self.now;
        let mut first = marked;
        while let Some(t) = self.cores[i].poll_transmit(now, &mut self.tx) {
            if first {
                MARK_FIRST_SEND.fetch_add(1, Ordering::SeqCst);
                first = false;
                if let Some(hook) = self.sent_hook {
                    hook(t.len);
                }
            }
            let to = index_of(t.dst);
            self.wire.push_back((i, to, self.tx[..t.len].to_vec()));
        }
        while self.cores[i].poll_event().is_some() {}
    }

    /// Whether this step is marked: tells the hook and bumps [`MARK_BEGIN`].
    fn begin(&self, step: Step) -> bool {
        let marked = self.marks && self.removing;
        if marked {
            if let Some(hook) = self.step_hook {
                hook(step);
            }
            MARK_BEGIN.fetch_add(1, Ordering::SeqCst);
        }
        marked
    }

    /// One millisecond: due timers, then every datagram and the answers it causes
    /// (each delivery 1 us after the previous one). Returns the time spent in the
    /// cores' deliveries (handling, events, transmissions).
    fn tick(&mut self) -> Duration {
        self.now = self.now + 1_000;
        for i in 0..self.cores.len() {
            if self.up[i] {
                let due = self.cores[i].poll_timeout().is_some_and(|t| t <= self.now);
                let marked = due && self.begin(Step::Timer { at: i });
                if due {
                    self.cores[i].handle_timeout(self.now);
                }
                self.drain(i, marked);
                if marked {
                    MARK_END.fetch_add(1, Ordering::SeqCst);
                }
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
                let len = bytes.len();
                let marked = self.begin(Step::Datagram { from, to, len });
                let t0 = Instant::now();
                self.cores[to].handle_datagram(self.now, addr_of(from), &bytes);
                self.drain(to, marked);
                spent += t0.elapsed();
                if marked {
                    MARK_END.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        spent
    }

    /// A delivery after an eviction, out of line so that a profiler can select it
    /// (`valgrind --tool=callgrind --toggle-collect='*deliver_cold*'`).
    #[inline(never)]
    fn deliver_cold(&mut self, from: usize, to: usize, bytes: &[u8]) {
        self.cores[to].handle_datagram(self.now, addr_of(from), bytes);
        self.drain(to, false);
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
    pub fn removal(&mut self, victim: usize) -> Duration {
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
    pub fn rejoin(&mut self, victim: usize) {
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
pub const EVICT_BYTES: usize = 8 << 20;

/// Bigger than the shared L3 too (32 MiB on the EPYC we measure), and than what the
/// TLBs map: each delivery starts with its code and data in memory, as the steps of
/// `sgmp-load view-change` do on a shared host whose other tenants ran in between
/// (their time from read to reply matches this figure, not the L3 one:
/// docs/bench/view_change_perf.md §15).
pub const EVICT_DRAM_BYTES: usize = 96 << 20;

/// Writes one byte in every cache line of `buf`, so that what the next delivery touches
/// comes from the shared cache or memory.
#[inline(never)]
fn evict(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(64) {
        buf[i] = buf[i].wrapping_add(1);
    }
    std::hint::black_box(&buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_removal_marks_every_step_and_completes() {
        let mut w = World::founded(3);
        w.marks = true;
        let b0 = MARK_BEGIN.load(Ordering::SeqCst);
        w.removal(2);
        let b = MARK_BEGIN.load(Ordering::SeqCst) - b0;
        assert!(b > 0, "the removal's steps are marked");
        assert_eq!(
            MARK_BEGIN.load(Ordering::SeqCst),
            MARK_END.load(Ordering::SeqCst)
        );
        w.rejoin(2);
        assert_eq!(
            MARK_BEGIN.load(Ordering::SeqCst) - b0,
            b,
            "the rejoin is not marked"
        );
    }
}
