//! No allocation after warm-up: a counting global allocator watches thousands of
//! messages (with fragments) between endpoints over a lossy, duplicating, reordering
//! simulated network, with retransmissions, keepalives, a disconnect and a restarted
//! peer, and expects zero allocations; once without keys and once with a cluster
//! keyring (every datagram signed and checked). Then the same of the mio driver over
//! loopback sockets: a fan-out to three peers, read and acknowledged.

mod common;

use std::net::SocketAddr;

use alloc_count::{counted, CountingAlloc};
use common::*;
use sgmp_transport::{
    DropReason, Endpoint, FaultLayer, Keyring, ProcessId, SendError, SimNet, Time, TransportConfig,
};

// Counts per thread: the tests run in parallel, and `counter_works` allocates while
// another test counts.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

#[test]
fn counter_works() {
    let (_, n) = counted(|| std::hint::black_box(vec![1u8; 10]));
    assert_eq!(n, 1);
}

#[test]
fn no_allocation_after_warm_up() {
    no_allocation_after_warm_up_with(config());
}

#[test]
fn no_allocation_after_warm_up_with_keys() {
    let cfg = TransportConfig {
        keys: Keyring::new([3; 32], Some([4; 32])),
        ..config()
    };
    no_allocation_after_warm_up_with(cfg);
}

fn no_allocation_after_warm_up_with(cfg: TransportConfig) {
    let ids = [
        ProcessId::named("alpha", 1),
        ProcessId::named("beta", 1),
        ProcessId::named("gamma", 1),
    ];
    let addrs = [addr(1), addr(2), addr(3)];
    let mut eps: Vec<Endpoint> = ids.iter().map(|&id| Endpoint::new(cfg, id)).collect();
    let mut faults = FaultLayer::new(77);
    faults.set_default(chaos(0.2));
    let mut net = SimNet::new(faults, 4096, cfg.mtu);
    let mut now = Time::ZERO;
    let mut msg = Vec::with_capacity(64 * 1024);
    let mut buf = vec![0u8; 64 * 1024];
    // Warm-up: every pair of endpoints exchanges a message, so every peer entry is in
    // use; a restarted gamma (incarnation 2) is prepared but not started.
    for (i, ep) in eps.iter_mut().enumerate() {
        for j in (0..3).filter(|&j| j != i) {
            ep.send(now, ids[j], addrs[j], b"warm-up").unwrap();
        }
    }
    let mut gamma2 = Endpoint::new(cfg, ProcessId::named("gamma", 2));
    for _ in 0..200 {
        let (a, rest) = eps.split_at_mut(1);
        let (b, c) = rest.split_at_mut(1);
        let mut refs = [&mut a[0], &mut b[0], &mut c[0]];
        net.step(now, &mut refs, &addrs);
        now = net.next_event(&refs).unwrap_or(now).max(now);
        for ep in refs {
            while ep.poll_delivery(&mut buf).is_some() {}
        }
    }

    let total = 3_000u64;
    let len_of = |i: u64| {
        if i % 50 == 7 {
            4_000
        } else {
            8 + (i as usize % 120)
        }
    };
    let ((sent, got_ab, got_ba), allocations) = counted(|| {
        let (mut sent, mut got_ab, mut got_ba) = (0u64, 0u64, 0u64);
        let mut sent_ba = 0u64;
        let mut step = 0u64;
        while got_ab < total || got_ba < total {
            step += 1;
            assert!(step < 10_000_000, "stuck");
            while sent < total {
                message(1, sent, len_of(sent), &mut msg);
                match eps[0].send(now, ids[1], addrs[1], &msg) {
                    Ok(()) => sent += 1,
                    Err(SendError::WindowFull) => break,
                    Err(_) => panic!("send"),
                }
            }
            while sent_ba < total {
                message(2, sent_ba, len_of(sent_ba), &mut msg);
                match eps[1].send(now, ids[0], addrs[0], &msg) {
                    Ok(()) => sent_ba += 1,
                    Err(SendError::WindowFull) => break,
                    Err(_) => panic!("send"),
                }
            }
            // gamma chatters to alpha until alpha disconnects it, halfway through;
            // then gamma restarts as incarnation 2 and talks again.
            if step % 50 == 1 {
                let g = if got_ab < 2 * total / 3 {
                    &mut eps[2]
                } else {
                    &mut gamma2
                };
                let _ = g.send(now, ids[0], addrs[0], b"chatter");
            }
            if got_ab >= total / 3 && !eps[0].is_disconnected(ids[2]) {
                eps[0].disconnect(ids[2]);
            }
            let (a, rest) = eps.split_at_mut(1);
            let (b, c) = rest.split_at_mut(1);
            let g: &mut Endpoint = if got_ab < 2 * total / 3 {
                &mut c[0]
            } else {
                &mut gamma2
            };
            let mut refs = [&mut a[0], &mut b[0], g];
            net.step(now, &mut refs, &addrs);
            now = net
                .next_event(&refs)
                .unwrap_or(now)
                .max(now)
                .min(now + 100_000);
            while let Some((from, len)) = refs[1].poll_delivery(&mut buf) {
                if from == ids[0] {
                    check(1, got_ab, len_of(got_ab), &buf[..len]);
                    got_ab += 1;
                }
            }
            while let Some((from, len)) = refs[0].poll_delivery(&mut buf) {
                if from == ids[1] {
                    check(2, got_ba, len_of(got_ba), &buf[..len]);
                    got_ba += 1;
                }
            }
            while refs[2].poll_delivery(&mut buf).is_some() {}
            for ep in refs {
                while ep.poll_event().is_some() {}
                std::hint::black_box(ep.stats());
                std::hint::black_box(ep.peer_stats(ids[0]));
            }
        }
        (sent, got_ab, got_ba)
    });
    assert_eq!((sent, got_ab, got_ba), (total, total, total));
    let s = eps[0].stats();
    assert!(s.retransmissions > 0, "{s:?}");
    assert!(eps[1].stats().duplicates > 0);
    assert!(s.dropped(DropReason::Disconnected) > 0, "{s:?}");
    assert!(eps[0].is_disconnected(ids[2]));
    assert!(eps[0].peer_stats(ProcessId::named("gamma", 2)).is_some());
    assert_eq!(s.dropped(DropReason::BadTag), 0);
    assert_eq!(allocations, 0, "allocations after warm-up");
}

/// The driver allocates nothing either after a warm-up: one driver fans messages out
/// to three over loopback (as a mgr's M-sub and M-com do), with a fault layer that
/// lets everything through (as every membership node has), and the three read and
/// acknowledge them.
#[test]
fn no_allocation_in_the_drivers_fan_out() {
    use sgmp_transport::{Driver, DriverConfig};
    let cfg = TransportConfig {
        max_peers: 8,
        ..config()
    };
    let driver = |name: &str| {
        let mut c = DriverConfig::new(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            ProcessId::named(name, 1),
        );
        c.transport = cfg;
        c.faults = Some(FaultLayer::new(5));
        Driver::bind(c).expect("bind")
    };
    let mut a = driver("a");
    let mut peers: Vec<Driver> = ["b", "c", "d"].iter().map(|n| driver(n)).collect();
    let to: Vec<(ProcessId, SocketAddr)> = peers
        .iter()
        .map(|p| (p.endpoint().local_id(), p.local_addr()))
        .collect();
    let mut buf = vec![0u8; 64 * 1024];
    let round = |a: &mut Driver, peers: &mut [Driver], buf: &mut [u8]| -> u64 {
        for &(id, addr) in &to {
            a.send(id, addr, b"fan-out").unwrap();
        }
        a.flush();
        let mut got = 0;
        for p in peers.iter_mut() {
            for _ in 0..100 {
                p.drive(Some(std::time::Duration::ZERO)).unwrap();
                if p.poll_delivery(buf).is_some() {
                    got += 1;
                    break;
                }
                std::thread::yield_now();
            }
            p.flush();
        }
        a.drive(Some(std::time::Duration::ZERO)).unwrap();
        got
    };
    for _ in 0..20 {
        round(&mut a, &mut peers, &mut buf);
    }
    let written = a.stats().datagrams_written;
    let (got, allocations) = counted(|| {
        (0..200)
            .map(|_| round(&mut a, &mut peers, &mut buf))
            .sum::<u64>()
    });
    assert_eq!(got, 600);
    assert!(a.stats().datagrams_written >= written + 600);
    assert_eq!(allocations, 0, "allocations in the driver after warm-up");
}
