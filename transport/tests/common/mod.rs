//! Helpers shared by the integration tests: a two-endpoint harness over [`SimNet`].
#![allow(dead_code)]

use std::net::SocketAddr;

use sgmp_transport::{
    Endpoint, FaultLayer, LinkFaults, ProcessId, SendError, SimNet, Time, TransportConfig,
};

pub fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i as u8], 7000 + i))
}

/// The test message `index` of a stream identified by `tag`: its index, then a pattern.
pub fn message(tag: u8, index: u64, len: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&index.to_be_bytes()[..len.min(8)]);
    out.extend((8..len).map(|j| (index as usize * 31 + j) as u8 ^ tag));
}

/// Checks that `got` is message `index` of stream `tag` with the expected length.
pub fn check(tag: u8, index: u64, len: usize, got: &[u8]) {
    // No allocation here: the allocation test calls this while counting.
    assert_eq!(got.len(), len, "length of message {index}");
    let head = &index.to_be_bytes()[..len.min(8)];
    assert!(&got[..head.len()] == head, "index of message {index}");
    for (j, &b) in got.iter().enumerate().skip(8) {
        assert!(
            b == (index as usize * 31 + j) as u8 ^ tag,
            "content of message {index}"
        );
    }
}

/// The tests' endpoints keep the schedule from their first peer (`schedule_above: 0`),
/// so that these workloads run it with its debug checks; the unit tests of
/// `endpoint.rs` run the pass over the table (the default, with few peers).
pub fn config() -> TransportConfig {
    TransportConfig {
        cluster_id: 42,
        max_peers: 4,
        schedule_above: 0,
        ..TransportConfig::default()
    }
}

pub fn chaos(loss: f64) -> LinkFaults {
    LinkFaults::lossy(loss)
        .with_duplicate(0.1)
        .with_reorder(0.2, 2_000)
        .with_delay(100, 200)
}

/// Two endpoints on a simulated network.
pub struct Pair {
    pub a: Endpoint,
    pub b: Endpoint,
    pub pa: ProcessId,
    pub pb: ProcessId,
    pub net: SimNet,
    pub now: Time,
}

impl Pair {
    pub fn new(seed: u64, faults: LinkFaults, cfg: TransportConfig) -> Pair {
        let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
        let mut f = FaultLayer::new(seed);
        f.set_default(faults);
        Pair {
            a: Endpoint::new(cfg, pa),
            b: Endpoint::new(cfg, pb),
            pa,
            pb,
            net: SimNet::new(f, 4096, cfg.mtu),
            now: Time::ZERO,
        }
    }

    /// Delivers, runs timers and flushes at the current time, then advances the clock to
    /// the next event (at most `max_step_us` later). `false` if nothing is scheduled.
    pub fn step(&mut self, max_step_us: u64) -> bool {
        let addrs = [addr(1), addr(2)];
        self.net
            .step(self.now, &mut [&mut self.a, &mut self.b], &addrs);
        let next = self.net.next_event(&[&mut self.a, &mut self.b]);
        match next {
            Some(t) => {
                self.now = t.max(self.now).min(self.now + max_step_us);
                true
            }
            None => false,
        }
    }
}

/// Streams `n_ab` messages a→b and `n_ba` b→a with lengths from `len_of`, under the
/// pair's faults, checking exactly-once FIFO delivery. Returns the simulated duration.
pub fn stream(p: &mut Pair, n_ab: u64, n_ba: u64, len_of: &dyn Fn(u64) -> usize) -> Time {
    let (mut sent_ab, mut sent_ba, mut got_ab, mut got_ba) = (0u64, 0u64, 0u64, 0u64);
    let mut msg = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Time(3_600_000_000);
    while got_ab < n_ab || got_ba < n_ba {
        assert!(
            p.now < deadline,
            "no progress: {got_ab}/{n_ab} {got_ba}/{n_ba}"
        );
        while sent_ab < n_ab {
            message(1, sent_ab, len_of(sent_ab), &mut msg);
            match p.a.send(p.now, p.pb, addr(2), &msg) {
                Ok(()) => sent_ab += 1,
                Err(SendError::WindowFull) => break,
                Err(e) => panic!("send a→b: {e}"),
            }
        }
        while sent_ba < n_ba {
            message(2, sent_ba, len_of(sent_ba), &mut msg);
            match p.b.send(p.now, p.pa, addr(1), &msg) {
                Ok(()) => sent_ba += 1,
                Err(SendError::WindowFull) => break,
                Err(e) => panic!("send b→a: {e}"),
            }
        }
        p.step(1_000_000);
        while let Some((from, len)) = p.b.poll_delivery(&mut buf) {
            assert_eq!(from, p.pa);
            check(1, got_ab, len_of(got_ab), &buf[..len]);
            got_ab += 1;
        }
        while let Some((from, len)) = p.a.poll_delivery(&mut buf) {
            assert_eq!(from, p.pb);
            check(2, got_ba, len_of(got_ba), &buf[..len]);
            got_ba += 1;
        }
    }
    assert_eq!(p.b.stats().messages_delivered, n_ab);
    assert_eq!(p.a.stats().messages_delivered, n_ba);
    p.now
}
