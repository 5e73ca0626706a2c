//! Zero allocation on the hot path: after warm-up, whole view changes (submit, acks,
//! commit and install at every member; a join with State-Xfer; a reconfiguration after
//! the mgr crashes) allocate nothing. A counting global allocator proves it.

use alloc_count::{counted, CountingAlloc};
use sgmp_membership::engine::Status;
use sgmp_membership::testkit::Cluster;
use sgmp_membership::EngineConfig;

// Counts per thread (`alloc_count`): the counted work runs on the test's own thread,
// while the test harness (another thread) may allocate at the same time, e.g. to report
// the other test's result; a process-wide counter made
// `view_changes_allocate_nothing_after_warm_up` fail now and then (7 allocations counted
// once in a `cargo test --workspace`).
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

/// Kept from when the counter was global: tests of this binary run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One removal (false suspicion at the mgr) and one join, each a full view change.
fn remove_and_join(c: &mut Cluster, mgr: usize, victim: usize, joiner: usize) {
    c.suspect(mgr, victim);
    c.run_until_quiet(100_000);
    c.join(joiner, mgr);
    c.run_until_quiet(100_000);
}

#[test]
fn view_changes_allocate_nothing_after_warm_up() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = EngineConfig {
        max_members: 16,
        max_snapshot: 256,
        ..EngineConfig::default()
    };
    let mut c = Cluster::new(7, 9, cfg);
    c.record_events = false;
    for e in c.engines.iter_mut() {
        e.set_snapshot(b"application state").unwrap();
    }
    // Warm-up: one of each kind of view change, so every buffer has met its size.
    remove_and_join(&mut c, 0, 6, 7);
    c.crash(0);
    c.advance(3_000_000, 10_000);
    assert!(c.engines[1].is_mgr());
    remove_and_join(&mut c, 1, 5, 8);
    let v0 = c.engines[1].view().version;

    let ((), allocs) = counted(|| {
        remove_and_join(&mut c, 1, 4, 9);
        remove_and_join(&mut c, 1, 3, 10);
        remove_and_join(&mut c, 1, 7, 11);
        // The mgr crashes; n2 reconfigures (R-int, R-sub, R-com) and takes over.
        c.crash(1);
        c.advance(3_000_000, 10_000);
    });
    let v1 = c.engines[2].view().version;
    assert!(c.engines[2].is_mgr());
    assert_eq!(c.engines[2].status(), Status::Member);
    // Every member of the mgr's view holds that same view (falsely suspected members
    // outside it may not have noticed their exclusion yet).
    let view = c.engines[2].view().clone();
    for m in &view.members {
        let i = c.engine_at(m.addr).unwrap();
        assert_eq!(c.engines[i].view(), &view, "n{i}");
    }
    assert!(v1 >= v0 + 7, "view changes happened: {v0} -> {v1}");
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations during {} view changes",
        v1 - v0
    );
}

/// Member tags: tag changes (at an outer member and at the mgr), joins carrying tags
/// (State-Xfer carries the view's tags) and a reconfiguration over a tagged view, each
/// a full view change, allocate nothing after warm-up.
#[test]
fn tag_changes_allocate_nothing_after_warm_up() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use sgmp_membership::TagSet;
    let cfg = EngineConfig {
        max_members: 16,
        max_snapshot: 256,
        ..EngineConfig::default()
    };
    let tags = |role: &str, fill: usize| {
        let mut t = TagSet::new();
        t.insert("role", role).unwrap();
        t.insert("zone", &"z".repeat(fill)).unwrap();
        t.encode()
    };
    // Tags near the 512-byte bound, and small ones.
    let (big, small) = (tags("db", 480), tags("web", 1));
    let mut c = Cluster::new(7, 9, cfg);
    c.record_events = false;
    for (i, e) in c.engines.iter_mut().enumerate() {
        let now = sgmp_membership::Time::ZERO;
        e.set_tags(now, if i % 2 == 0 { &big } else { &small })
            .unwrap();
    }
    let change = |c: &mut Cluster, i: usize, t: &[u8]| {
        let now = c.now;
        c.engines[i].set_tags(now, t).unwrap();
        c.flush(i);
        c.run_until_quiet(100_000);
    };
    // Warm-up: founders' tags committed (their own requests), a tag change at an
    // outer member and at the mgr, a removal and a tagged join, a reconfiguration.
    c.advance(50_000, 10_000);
    c.run_until_quiet(100_000);
    change(&mut c, 3, &small);
    change(&mut c, 0, &small);
    change(&mut c, 0, &big);
    remove_and_join(&mut c, 0, 6, 7);
    c.crash(0);
    c.advance(3_000_000, 10_000);
    assert!(c.engines[1].is_mgr());
    remove_and_join(&mut c, 1, 5, 8);
    change(&mut c, 2, &small);
    change(&mut c, 2, &big);
    let v0 = c.engines[1].view().version;

    let ((), allocs) = counted(|| {
        change(&mut c, 3, &big);
        change(&mut c, 1, &small);
        change(&mut c, 4, &[]);
        remove_and_join(&mut c, 1, 4, 9);
        change(&mut c, 9, &small);
        remove_and_join(&mut c, 1, 3, 10);
        c.crash(1);
        c.advance(3_000_000, 10_000);
        change(&mut c, 2, &small);
    });
    let v1 = c.engines[2].view().version;
    assert!(c.engines[2].is_mgr());
    let view = c.engines[2].view().clone();
    for m in &view.members {
        let i = c.engine_at(m.addr).unwrap();
        assert_eq!(c.engines[i].view(), &view, "n{i}: same members and tags");
        let want = if i == 2 || i == 9 || i % 2 == 1 && i != 3 {
            &small
        } else {
            &big
        };
        assert_eq!(view.tags_of(m.id).as_bytes(), want.as_slice(), "n{i}");
    }
    assert!(v1 >= v0 + 8, "view changes happened: {v0} -> {v1}");
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations during {} view changes",
        v1 - v0
    );
}

#[test]
fn client_changes_commit_without_allocating() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use sgmp_membership::view::ClientOp;
    use sgmp_membership::ProcessId;
    let cfg = EngineConfig {
        max_members: 8,
        max_client_ops: 64,
        max_pending_client_ops: 256,
        ..EngineConfig::default()
    };
    let mut c = Cluster::new(5, 0, cfg);
    c.record_events = false;
    c.run_until_quiet(100_000);
    let addr = "127.0.0.1:9".parse().unwrap();
    let ops: Vec<ClientOp> = (0..200u64)
        .map(|i| ClientOp::add(ProcessId::named("client", i + 1), addr, false))
        .collect();
    let removes: Vec<ClientOp> = ops.iter().map(|o| ClientOp::remove(o.id)).collect();
    // Warm-up: a full batch through a non-mgr member (forwarded) and at the mgr.
    let now = c.now;
    c.engines[3].request_client_ops(now, &ops[..64]);
    c.flush(3);
    c.run_until_quiet(100_000);
    let v0 = c.engines[0].view().version;
    let ((), allocs) = counted(|| {
        let now = c.now;
        c.engines[3].request_client_ops(now, &ops[64..]);
        c.flush(3);
        c.run_until_quiet(100_000);
        c.engines[0].request_client_ops(now, &removes);
        c.flush(0);
        c.run_until_quiet(100_000);
    });
    let v1 = c.engines[0].view().version;
    assert!(v1 >= v0 + 6, "batches of 64 took {} views", v1 - v0);
    for e in &c.engines {
        assert_eq!(e.view().version, v1);
    }
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations for {} view changes",
        v1 - v0
    );
}

/// The node core's glue (backlog, cross-layer links, event queue, recent views) adds
/// no allocation either: whole view changes through `NodeCore`s exchanging datagrams
/// allocate nothing after warm-up.
mod node_core {
    use super::*;
    use sgmp_membership::node::{CoreConfig, NodeCore};
    use sgmp_membership::{Member, ProcessId, Time};
    use sgmp_transport::TransportConfig;
    use std::collections::VecDeque;
    use std::net::SocketAddr;

    const MTU: usize = 1400;

    struct World {
        now: Time,
        cores: Vec<NodeCore>,
        up: Vec<bool>,
        bufs: Vec<Vec<u8>>,
        free: Vec<usize>,
        /// (from, to index, length, buffer slot)
        queue: VecDeque<(SocketAddr, usize, usize, usize)>,
        tx: Vec<u8>,
    }

    fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], 30_000 + i as u16))
    }

    impl World {
        fn new(n: usize) -> World {
            World::with_service(n, None)
        }

        fn with_service(
            n: usize,
            service: Option<sgmp_membership::service::ServiceConfig>,
        ) -> World {
            let cfg = CoreConfig {
                engine: EngineConfig {
                    max_members: 16,
                    max_snapshot: 64,
                    heartbeat_interval_us: 20_000,
                    suspect_timeout_us: 100_000,
                    protocol_timeout_us: 200_000,
                    local_health: true,
                    ..EngineConfig::default()
                },
                transport: TransportConfig {
                    mtu: MTU,
                    max_message: 8 * 1024,
                    max_peers: 16,
                    send_window: 32,
                    recv_window: 32,
                    ..TransportConfig::default()
                },
                max_joins_per_sec: 0,
                seeds: Vec::new(),
                may_found: false,
                coldstart_rounds: 3,
                coldstart_round_us: 50_000,
                join_timeout_us: 1_000_000,
                auto_rejoin: false,
                leave_linger_us: 100_000,
                warm_up_us: 0,
                service,
            };
            let founders: Vec<Member> = (0..n)
                .map(|i| Member {
                    id: ProcessId::named(&format!("n{i}"), 1),
                    addr: addr(i),
                })
                .collect();
            let mut cores: Vec<NodeCore> = founders
                .iter()
                .map(|m| NodeCore::new(cfg.clone(), m.id, m.addr))
                .collect();
            for c in &mut cores {
                c.found_with(Time::ZERO, &founders);
            }
            World {
                now: Time::ZERO,
                cores,
                up: vec![true; n],
                bufs: (0..4096).map(|_| vec![0u8; MTU]).collect(),
                free: (0..4096).collect(),
                queue: VecDeque::with_capacity(4096),
                tx: vec![0u8; MTU],
            }
        }

        /// One millisecond: timers, transmissions, deliveries.
        fn tick(&mut self) {
            self.now = self.now + 1_000;
            let now = self.now;
            for i in 0..self.cores.len() {
                if !self.up[i] {
                    continue;
                }
                let c = &mut self.cores[i];
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
                while c.poll_event().is_some() {}
                while let Some(t) = c.poll_transmit(now, &mut self.tx) {
                    let to = (t.dst.port() - 30_000) as usize;
                    let slot = self.free.pop().expect("buffers");
                    self.bufs[slot][..t.len].copy_from_slice(&self.tx[..t.len]);
                    self.queue.push_back((addr(i), to, t.len, slot));
                }
            }
            while let Some((from, to, len, slot)) = self.queue.pop_front() {
                if to < self.cores.len() && self.up[to] {
                    let (bufs, cores) = (&self.bufs, &mut self.cores);
                    cores[to].handle_datagram(now, from, &bufs[slot][..len]);
                    while cores[to].poll_event().is_some() {}
                }
                self.free.push(slot);
            }
        }

        fn run(&mut self, ms: u64) {
            for _ in 0..ms {
                self.tick();
            }
        }

        fn version(&self, i: usize) -> u64 {
            self.cores[i].engine().view().version
        }
    }

    /// Warm-up (an outer member crashes: the ring detector reports it, the mgr removes
    /// it; then the mgr crashes: n1 reconfigures), then two view changes counted (n5
    /// crashes and is removed; n1, now mgr, crashes and n2 reconfigures). Returns the
    /// allocations counted and the versions before and after.
    fn two_counted_view_changes(w: &mut World) -> (u64, u64, u64) {
        w.run(300);
        w.up[6] = false;
        w.run(2_000);
        w.up[0] = false;
        w.run(3_000);
        assert!(w.cores[1].engine().is_mgr());
        let v0 = w.version(1);
        assert_eq!(
            v0, 3,
            "a removal, then the reconfiguration after the mgr's crash"
        );
        let ((), allocs) = counted(|| {
            w.up[5] = false;
            w.run(2_000);
            w.up[1] = false;
            w.run(3_000);
        });
        let v1 = w.version(2);
        assert!(w.cores[2].engine().is_mgr());
        assert_eq!(v1, v0 + 2, "view changes happened: {v0} -> {v1}");
        for i in 2..5 {
            assert_eq!(w.version(i), v1, "n{i}");
        }
        (allocs, v0, v1)
    }

    #[test]
    fn node_core_view_changes_allocate_nothing_after_warm_up() {
        let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut w = World::new(7);
        let (allocs, v0, v1) = two_counted_view_changes(&mut w);
        assert_eq!(
            allocs,
            0,
            "{allocs} allocations during {} view changes",
            v1 - v0
        );
    }

    /// The same with the membership service on, as `sgmpd` runs by default (a table of
    /// `max_clients`, a delta ring, a ring of the system changes for the application):
    /// a core view change rebuilt a `max_clients` table, allocated its delta's buffers
    /// and a copy of the system change at every member (issue 19, where it cost the
    /// install ~15 us; 35 allocations here).
    #[test]
    fn with_the_service_view_changes_allocate_nothing_after_warm_up() {
        let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let svc = sgmp_membership::service::ServiceConfig {
            max_clients: 1024,
            delta_ring: 8,
            ..Default::default()
        };
        let mut w = World::with_service(7, Some(svc));
        let (allocs, v0, v1) = two_counted_view_changes(&mut w);
        assert_eq!(
            allocs,
            0,
            "{allocs} allocations during {} view changes with the service on",
            v1 - v0
        );
    }
}
