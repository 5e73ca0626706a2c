//! The core over the simulated network: exactly-once FIFO delivery under loss,
//! duplication and reordering; disconnect; incarnations; back-pressure; fragmentation.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgmp_transport::{
    DropReason, Endpoint, LinkFaults, ProcessId, SendError, Stats, Time, TransportConfig,
    TransportEvent,
};

#[test]
fn exactly_once_fifo_over_1000_seeds() {
    let mut totals = (0u64, 0u64, 0u64);
    for seed in 0..1000u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let n_ab = rng.gen_range(50..=200);
        let n_ba = rng.gen_range(0..=60);
        let big = rng.gen_bool(0.2);
        let mut p = Pair::new(seed, chaos(0.3), config());
        // Mostly small messages; every 17th a multi-fragment one on some seeds.
        let len_of = move |i: u64| match i % 17 {
            0 if big => 3_000 + (i as usize * 7919) % 3_000,
            _ => 1 + (i as usize * 13) % 200,
        };
        stream(&mut p, n_ab, n_ba, &len_of);
        let s = p.a.stats();
        totals.0 += s.retransmissions;
        totals.1 += s.fast_retransmits;
        totals.2 += p.b.stats().duplicates;
    }
    assert!(totals.0 > 0 && totals.1 > 0 && totals.2 > 0, "{totals:?}");
}

#[test]
fn fragmentation_round_trips() {
    let cfg = config();
    let cap = cfg.frame_capacity();
    let sizes = [
        0,
        1,
        cap - 1,
        cap,
        cap + 1,
        cfg.mtu,
        2 * cap,
        10_000,
        64 * 1024 - 1,
        64 * 1024,
    ];
    for (k, faults) in [LinkFaults::PERFECT, chaos(0.3)].into_iter().enumerate() {
        let mut p = Pair::new(k as u64, faults, cfg);
        stream(&mut p, sizes.len() as u64 * 3, 3, &|i| {
            sizes[i as usize % sizes.len()]
        });
    }
}

#[test]
fn window_full_is_back_pressure() {
    let mut p = Pair::new(1, LinkFaults::PERFECT, config());
    let mut n = 0;
    let err = loop {
        match p.a.send(p.now, p.pb, addr(2), b"m") {
            Ok(()) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, SendError::WindowFull);
    assert_eq!(n, config().send_window);
    // A big message needs many frames: refused while the small ones are in flight.
    let big = vec![0u8; 64 * 1024];
    p.step(1_000_000);
    assert_eq!(
        p.a.send(p.now, p.pb, addr(2), &big),
        Err(SendError::WindowFull)
    );
    // Once acknowledged, room again.
    for _ in 0..10 {
        p.step(1_000_000);
    }
    let mut buf = vec![0u8; 100];
    while p.b.poll_delivery(&mut buf).is_some() {}
    assert_eq!(p.a.peer_stats(p.pb).unwrap().frames_in_window, 0);
    assert!(p.a.send(p.now, p.pb, addr(2), &big).is_ok());
}

#[test]
fn receiver_window_holds_undelivered_messages() {
    // b does not poll deliveries: a can only get recv_window frames across, the rest
    // waits in a's window (dropped at b as WindowFull and retransmitted later).
    let cfg = TransportConfig {
        send_window: 300,
        recv_window: 100,
        ..config()
    };
    let mut p = Pair::new(2, LinkFaults::PERFECT, cfg);
    for i in 0..300u32 {
        p.a.send(p.now, p.pb, addr(2), &i.to_be_bytes()).unwrap();
    }
    for _ in 0..20 {
        p.step(1_000);
    }
    assert_eq!(p.a.peer_stats(p.pb).unwrap().frames_in_window, 200);
    assert!(p.b.stats().dropped(DropReason::WindowFull) > 0);
    let mut buf = [0u8; 8];
    let mut got = 0u32;
    while got < 300 {
        while let Some((_, n)) = p.b.poll_delivery(&mut buf) {
            assert_eq!(&buf[..n], &got.to_be_bytes());
            got += 1;
        }
        p.step(100_000);
    }
}

#[test]
fn disconnect_closes_for_good() {
    let mut p = Pair::new(3, LinkFaults::PERFECT, config());
    stream(&mut p, 10, 10, &|_| 10);
    p.a.disconnect(p.pb);
    assert!(p.a.is_disconnected(p.pb));
    assert!(!p.a.is_disconnected(p.pa));
    assert_eq!(
        p.a.send(p.now, p.pb, addr(2), b"x"),
        Err(SendError::Disconnected(p.pb))
    );
    // b keeps talking: everything it sends is dropped and counted at a.
    for _ in 0..5 {
        p.b.send(p.now, p.pa, addr(1), b"ignored").unwrap();
    }
    for _ in 0..50 {
        p.step(50_000);
    }
    let mut buf = [0u8; 64];
    assert_eq!(p.a.poll_delivery(&mut buf), None);
    assert!(p.a.stats().dropped(DropReason::Disconnected) > 0);
    // a sends nothing to b any more, not even acks or keepalives.
    let before = p.a.peer_stats(p.pb).unwrap().counters.datagrams_out;
    for _ in 0..50 {
        p.step(1_000_000);
    }
    assert_eq!(p.a.peer_stats(p.pb).unwrap().counters.datagrams_out, before);
    // b, whose data is never acked, eventually finds a unreachable, once.
    let mut events = vec![];
    while let Some(e) = p.b.poll_event() {
        events.push(e);
    }
    assert_eq!(events, vec![TransportEvent::PeerUnreachable(p.pa)]);
}

#[test]
fn new_incarnation_gets_a_fresh_channel() {
    let mut p = Pair::new(4, LinkFaults::PERFECT, config());
    stream(&mut p, 20, 20, &|_| 30);
    let old_b = std::mem::replace(
        &mut p.b,
        Endpoint::new(config(), ProcessId::named("beta", 2)),
    );
    let pb2 = ProcessId::named("beta", 2);
    // The restarted b talks to a: a opens a fresh channel to beta#2.
    p.b.send(p.now, p.pa, addr(1), b"hello from #2").unwrap();
    p.a.send(p.now, p.pb, addr(2), b"to the old one").unwrap();
    for _ in 0..5 {
        p.step(10_000);
    }
    let mut buf = [0u8; 64];
    let (from, n) = p.a.poll_delivery(&mut buf).unwrap();
    assert_eq!((from, &buf[..n]), (pb2, &b"hello from #2"[..]));
    // a's datagrams still addressed to beta#1 reach beta#2 and are refused.
    assert!(p.b.stats().dropped(DropReason::WrongReceiver) > 0 || p.a.is_disconnected(p.pb));
    assert!(p.a.is_disconnected(p.pb), "older incarnation is shut out");
    assert!(matches!(
        p.a.send(p.now, p.pb, addr(2), b"x"),
        Err(SendError::StaleIncarnation { current: 2, .. })
    ));
    p.a.send(p.now, pb2, addr(2), b"hi #2").unwrap();
    for _ in 0..5 {
        p.step(10_000);
    }
    let (from, n) = p.b.poll_delivery(&mut buf).unwrap();
    assert_eq!((from, &buf[..n]), (p.pa, &b"hi #2"[..]));
    // Traffic of the old incarnation is stale.
    let mut old_b = old_b;
    old_b.send(p.now, p.pa, addr(1), b"zombie").unwrap();
    let mut out = [0u8; 1500];
    let t = old_b.poll_transmit(p.now, &mut out).unwrap();
    p.a.handle_datagram(p.now, addr(2), &out[..t.len]);
    assert_eq!(p.a.stats().dropped(DropReason::StaleIncarnation), 1);
    assert!(p.a.poll_delivery(&mut buf).is_none());
    // A restarted a (a higher incarnation of the receiver) refuses datagrams for #1.
    let mut a2 = Endpoint::new(config(), ProcessId::named("alpha", 2));
    p.b.send(p.now, p.pa, addr(1), b"for alpha#1").unwrap();
    let t = p.b.poll_transmit(p.now, &mut out).unwrap();
    a2.handle_datagram(p.now, addr(2), &out[..t.len]);
    assert_eq!(a2.stats().dropped(DropReason::WrongReceiver), 1);
}

#[test]
fn one_way_partition_is_detected_and_heals() {
    let mut p = Pair::new(5, LinkFaults::PERFECT, config());
    stream(&mut p, 5, 5, &|_| 10);
    p.net.faults_mut().partition(addr(1), addr(2));
    p.a.send(p.now, p.pb, addr(2), b"lost in the partition")
        .unwrap();
    let start = p.now;
    let mut event = None;
    while event.is_none() {
        assert!(p.now.micros_since(start) < 60_000_000);
        p.step(1_000_000);
        event = p.a.poll_event();
    }
    assert_eq!(event, Some(TransportEvent::PeerUnreachable(p.pb)));
    assert!(p.a.peer_stats(p.pb).unwrap().unreachable);
    p.net.faults_mut().heal_all();
    let mut buf = [0u8; 64];
    let mut got = None;
    while got.is_none() {
        assert!(p.now.micros_since(start) < 120_000_000);
        p.step(1_000_000);
        got = p.b.poll_delivery(&mut buf);
    }
    while p.a.peer_stats(p.pb).unwrap().frames_in_window > 0 {
        assert!(p.now.micros_since(start) < 120_000_000);
        p.step(1_000_000);
    }
    assert!(!p.a.peer_stats(p.pb).unwrap().unreachable);
}

#[test]
fn many_peers_share_one_endpoint() {
    many_peers(config(), 9);
}

/// The schedule (`TransportConfig::schedule_above`) changes no datagram, delivery or
/// timer: the same lossy all-to-all workload with and without it, over several seeds,
/// leaves every endpoint with the same counters, the same deliveries in the same order,
/// at the same simulated time.
#[test]
fn the_schedule_changes_nothing_the_endpoints_do() {
    for seed in 0..8 {
        let scheduled = many_peers(config(), seed);
        let scanning = many_peers(
            TransportConfig {
                schedule_above: usize::MAX,
                ..config()
            },
            seed,
        );
        // The schedule started partway, from the entries' state then.
        let switched = many_peers(
            TransportConfig {
                schedule_above: 3,
                ..config()
            },
            seed,
        );
        assert!(scheduled.0.len() == 8 * 7 * 30);
        assert_eq!(scheduled, scanning, "seed {seed}");
        assert_eq!(switched, scanning, "seed {seed}");
    }
}

/// Every one of 8 endpoints sends 30 numbered messages to every other over a lossy
/// network; returns the deliveries in order, the end time and every endpoint's
/// counters.
fn many_peers(cfg: TransportConfig, seed: u64) -> (Vec<(usize, ProcessId)>, Time, Vec<Stats>) {
    let cfg = TransportConfig {
        max_peers: 8,
        ..cfg
    };
    let ids: Vec<_> = (0..8)
        .map(|i| ProcessId::named(&format!("n{i}"), 1))
        .collect();
    let mut eps: Vec<_> = ids.iter().map(|&id| Endpoint::new(cfg, id)).collect();
    let addrs: Vec<_> = (1..=8).map(addr).collect();
    let mut f = sgmp_transport::FaultLayer::new(seed);
    f.set_default(chaos(0.2));
    let mut net = sgmp_transport::SimNet::new(f, 8192, cfg.mtu);
    let mut now = Time::ZERO;
    // Everybody sends 30 numbered messages to everybody.
    for (i, ep) in eps.iter_mut().enumerate() {
        for k in 0..30u32 {
            for j in 0..8 {
                if j != i {
                    ep.send(now, ids[j], addrs[j], &k.to_be_bytes()).unwrap();
                }
            }
        }
    }
    let mut next = vec![[0u32; 8]; 8];
    let mut buf = [0u8; 64];
    let mut delivered = 0;
    let mut log = Vec::new();
    while delivered < 8 * 7 * 30 {
        assert!(now < Time(600_000_000));
        let mut refs: Vec<&mut Endpoint> = eps.iter_mut().collect();
        net.step(now, &mut refs, &addrs);
        now = net.next_event(&refs).unwrap_or(now).max(now);
        for (i, ep) in eps.iter_mut().enumerate() {
            while let Some((from, n)) = ep.poll_delivery(&mut buf) {
                let j = ids.iter().position(|&x| x == from).unwrap();
                assert_eq!(&buf[..n], &next[i][j].to_be_bytes());
                next[i][j] += 1;
                delivered += 1;
                log.push((i, from));
            }
        }
    }
    // Then idle channels: delayed acks, keepalives and their answers, for 5 s.
    let end = now + 5_000_000;
    while now < end {
        let mut refs: Vec<&mut Endpoint> = eps.iter_mut().collect();
        net.step(now, &mut refs, &addrs);
        now = net.next_event(&refs).unwrap_or(end).max(now + 1).min(end);
    }
    (log, now, eps.iter().map(Endpoint::stats).collect())
}
