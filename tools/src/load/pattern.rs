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
use super::report::Latency;
use super::view_change::Series;

/// First byte of each datagram.
const TRIGGER: u8 = 0;
const SUB: u8 = 1;
const ACK: u8 = 2;
const COM: u8 = 3;

/// How long a thread blocks in one read before it looks at the stop flag.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

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
    let addrs = sockets
        .iter()
        .map(UdpSocket::local_addr)
        .collect::<io::Result<Vec<_>>>()?;
    let trigger = bind()?;
    let mut handles: Vec<JoinHandle<()>> = Vec::with_capacity(threads);
    let spawned = (|| -> io::Result<()> {
        for (i, s) in sockets.into_iter().enumerate() {
            let sh = Arc::clone(&shared);
            handles.push(spawn(format!("pattern-m{i}"), move || {
                member(Reader::new(s, spin), mgr_addr, i, size, &sh)
            })?);
        }
        let sh = Arc::clone(&shared);
        handles.push(spawn("pattern-mgr".into(), move || {
            mgr_loop(Reader::new(mgr, spin), &addrs, size, &sh)
        })?);
        Ok(())
    })();
    let mut series = Series::new();
    let result = spawned.and_then(|()| {
        for _ in 0..rounds {
            if stopped() {
                break;
            }
            shared.started.store(0, Ordering::SeqCst);
            for c in &shared.com_at {
                c.store(0, Ordering::SeqCst);
            }
            std::thread::sleep(gap);
            trigger.send_to(&[TRIGGER], mgr_addr)?;
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
    });
    // Every thread stops, whether or not all of them started.
    shared.done.store(true, Ordering::SeqCst);
    for t in handles {
        let _ = t.join();
    }
    result.map(|()| series.latency())
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
}

impl Reader {
    fn new(s: UdpSocket, spin: Option<Duration>) -> Reader {
        Reader {
            s,
            spin,
            nonblocking: false,
        }
    }

    /// The next datagram's length (`None`: the read timed out or failed). `open`: the
    /// thread's round is open, so it polls as long as a node in an open round does.
    fn read(&mut self, buf: &mut [u8], open: bool) -> Option<usize> {
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

    fn send_to(&self, buf: &[u8], to: SocketAddr) {
        let _ = self.s.send_to(buf, to);
    }
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
                s.send_to(&out, mgr);
                open = true;
            }
            Some(&COM) => {
                sh.com_at[i].store(sh.now_ns(), Ordering::SeqCst);
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
                acks = 0;
                open = true;
                for &a in members {
                    s.send_to(&sub, a);
                }
            }
            Some(&ACK) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_completes_its_rounds() {
        for spin in [None, Some(Duration::from_micros(200))] {
            let l = udp_protocol_pattern(4, 128, 20, Duration::from_millis(1), spin).unwrap();
            assert!(l.samples >= 15, "{spin:?}: {l:?}");
            assert!(l.p50_us > 0.0 && l.p50_us < 1_000_000.0, "{spin:?}: {l:?}");
        }
    }
}
