//! Cluster keys: tampering, wrong keys, unauthenticated senders, key rotation, replay
//! (same incarnation, old incarnations) and floods of made-up node names.

mod common;

use std::net::SocketAddr;

use common::*;
use sgmp_transport::wire::{self, decode, DecodeError};
use sgmp_transport::{DropReason, Endpoint, Keyring, ProcessId, Time, TransportConfig};

const K1: [u8; 32] = [0x11; 32];
const K2: [u8; 32] = [0x22; 32];

fn keyed(keys: Keyring) -> TransportConfig {
    TransportConfig { keys, ..config() }
}

fn one(k: [u8; 32]) -> Keyring {
    Keyring::new(k, None)
}

/// Every datagram `from` has to send right now, as bytes.
fn drain(from: &mut Endpoint, now: Time) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1500];
    let mut out = Vec::new();
    while let Some(t) = from.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

/// Messages delivered by `ep` right now.
fn delivered(ep: &mut Endpoint) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    while let Some((_, n)) = ep.poll_delivery(&mut buf) {
        out.push(buf[..n].to_vec());
    }
    out
}

/// Moves everything between `a` (at addr 1) and `b` (addr 2) until both are quiet,
/// running timers so that delayed acks leave; returns the datagrams a sent to b.
fn settle(now: &mut Time, a: &mut Endpoint, b: &mut Endpoint) -> Vec<Vec<u8>> {
    let mut a_to_b = Vec::new();
    for _ in 0..20 {
        let mut moved = false;
        for d in drain(a, *now) {
            b.handle_datagram(*now, addr(1), &d);
            a_to_b.push(d);
            moved = true;
        }
        for d in drain(b, *now) {
            a.handle_datagram(*now, addr(2), &d);
            moved = true;
        }
        if !moved {
            *now = *now + 2_000;
            a.handle_timeout(*now);
            b.handle_timeout(*now);
        }
    }
    a_to_b
}

#[test]
fn keyed_stream_under_faults() {
    let mut p = Pair::new(5, chaos(0.2), keyed(Keyring::new(K1, Some(K2))));
    stream(&mut p, 300, 100, &|i| 1 + (i as usize * 37) % 3000);
    assert_eq!(p.b.stats().dropped(DropReason::BadTag), 0);
    assert_eq!(p.b.stats().dropped(DropReason::Unauthenticated), 0);
}

#[test]
fn tampered_datagrams_are_dropped_as_bad_tag() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut a = Endpoint::new(keyed(one(K1)), pa);
    let mut b = Endpoint::new(keyed(one(K1)), pb);
    a.send(Time(0), pb, addr(2), b"pay me 10").unwrap();
    let d = drain(&mut a, Time(0)).pop().unwrap();
    let cap = config().frame_capacity();
    assert!(decode(&d, cap).unwrap().tagged);
    // Every byte before the CRC changed, with the CRC recomputed (an attacker's edit):
    // the tag no longer verifies (or the format breaks first).
    let n = d.len();
    for at in 0..n - wire::CRC_LEN {
        let mut bad = d.clone();
        bad[at] ^= 0x40;
        let crc = crc32fast::hash(&bad[..n - 4]);
        bad[n - 4..].copy_from_slice(&crc.to_be_bytes());
        b.handle_datagram(Time(1), addr(1), &bad);
    }
    let s = b.stats();
    assert!(s.dropped(DropReason::BadTag) > (n as u64) / 2, "{s:?}");
    assert_eq!(s.total_drops(), (n - wire::CRC_LEN) as u64, "{s:?}");
    assert_eq!(b.peer_count(), 0);
    assert!(delivered(&mut b).is_empty());
    // Flipped bits without a new CRC are checksum failures, as without keys.
    let mut bad = d.clone();
    bad[20] ^= 1;
    b.handle_datagram(Time(1), addr(1), &bad);
    assert_eq!(b.stats().dropped(DropReason::Checksum), 1);
    // The genuine one still goes through.
    b.handle_datagram(Time(1), addr(1), &d);
    assert_eq!(delivered(&mut b), vec![b"pay me 10".to_vec()]);
}

#[test]
fn wrong_key_and_unauthenticated_are_dropped() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut b = Endpoint::new(keyed(one(K1)), pb);
    // Signed with another key.
    let mut a = Endpoint::new(keyed(one(K2)), pa);
    a.send(Time(0), pb, addr(2), b"x").unwrap();
    a.send_probe(Time(0), addr(2), b"probe").unwrap();
    for d in drain(&mut a, Time(0)) {
        b.handle_datagram(Time(0), addr(1), &d);
    }
    assert_eq!(b.stats().dropped(DropReason::BadTag), 2);
    // No key at all.
    let mut u = Endpoint::new(config(), pa);
    u.send(Time(0), pb, addr(2), b"x").unwrap();
    u.send_probe(Time(0), addr(2), b"probe").unwrap();
    for d in drain(&mut u, Time(0)) {
        assert!(!decode(&d, config().frame_capacity()).unwrap().tagged);
        b.handle_datagram(Time(0), addr(1), &d);
    }
    let s = b.stats();
    assert_eq!(s.dropped(DropReason::Unauthenticated), 2);
    assert_eq!(s.probes_received, 0);
    assert_eq!(b.peer_count(), 0);
    assert!(delivered(&mut b).is_empty());
    let mut out = [0u8; 64];
    assert!(b.poll_probe(&mut out).is_none());
}

#[test]
fn key_rotation() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut now = Time(0);
    // Step 1: A signs with k1 only; B already holds [k2, k1] and signs with k2.
    let mut a = Endpoint::new(keyed(one(K1)), pa);
    let mut b = Endpoint::new(keyed(Keyring::new(K2, Some(K1))), pb);
    a.send(now, pb, addr(2), b"a1").unwrap();
    settle(&mut now, &mut a, &mut b);
    assert_eq!(delivered(&mut b), vec![b"a1".to_vec()]);
    // B's datagrams (signed with k2) are refused by A, which holds only k1: its acks
    // do not arrive. This is why step 1 must reach every node first.
    assert!(a.stats().dropped(DropReason::BadTag) > 0);

    // Step 2: A holds [k1, k2] too: both directions work, whoever signs with what.
    let mut now = Time(0);
    let mut a = Endpoint::new(keyed(Keyring::new(K1, Some(K2))), pa);
    let mut b = Endpoint::new(keyed(Keyring::new(K2, Some(K1))), pb);
    a.send(now, pb, addr(2), b"a2").unwrap();
    b.send(now, pa, addr(1), b"b2").unwrap();
    settle(&mut now, &mut a, &mut b);
    assert_eq!(delivered(&mut b), vec![b"a2".to_vec()]);
    assert_eq!(delivered(&mut a), vec![b"b2".to_vec()]);
    assert_eq!(a.stats().total_drops() + b.stats().total_drops(), 0);

    // Step 3: both switch to [k2] only: accepted.
    let mut now = Time(0);
    let mut a = Endpoint::new(keyed(one(K2)), pa);
    let mut b = Endpoint::new(keyed(one(K2)), pb);
    a.send(now, pb, addr(2), b"a3").unwrap();
    b.send(now, pa, addr(1), b"b3").unwrap();
    settle(&mut now, &mut a, &mut b);
    assert_eq!(delivered(&mut b), vec![b"a3".to_vec()]);
    assert_eq!(delivered(&mut a), vec![b"b3".to_vec()]);
    assert_eq!(a.stats().frames_sent, 1, "no retransmission needed");

    // A peer left behind with the old key only is shut out.
    let mut old = Endpoint::new(keyed(one(K1)), ProcessId::named("gamma", 1));
    old.send(now, pb, addr(2), b"old").unwrap();
    for d in drain(&mut old, now) {
        b.handle_datagram(now, addr(3), &d);
    }
    assert_eq!(b.stats().dropped(DropReason::BadTag), 1);
    assert!(delivered(&mut b).is_empty());
    assert!(b.peer_stats(ProcessId::named("gamma", 1)).is_none());
}

#[test]
fn replayed_datagrams_are_not_delivered_twice() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let cfg = keyed(one(K1));
    let mut a = Endpoint::new(cfg, pa);
    let mut b = Endpoint::new(cfg, pb);
    let mut now = Time(0);
    for m in [&b"m1"[..], b"m2", &[5u8; 4000]] {
        a.send(now, pb, addr(2), m).unwrap();
    }
    let captured = settle(&mut now, &mut a, &mut b);
    assert!(captured.len() >= 3, "{}", captured.len());
    assert_eq!(delivered(&mut b).len(), 3);
    let before = b.stats();
    // Much later, an attacker replays every captured datagram, from another address.
    now = now + 10_000_000;
    let attacker: SocketAddr = "10.9.9.9:9999".parse().unwrap();
    for d in &captured {
        b.handle_datagram(now, attacker, d);
    }
    assert!(delivered(&mut b).is_empty(), "replay delivered");
    let s = b.stats();
    let data = captured
        .iter()
        .filter(|d| {
            matches!(
                decode(d, cfg.frame_capacity()).unwrap().body,
                wire::Body::Data(_)
            )
        })
        .count() as u64;
    assert_eq!(
        s.dropped(DropReason::Duplicate) - before.dropped(DropReason::Duplicate),
        data
    );
    assert_eq!(s.messages_delivered, 3);
    // The replays did not redirect b's channel to the attacker.
    assert_eq!(b.peer_stats(pa).unwrap().addr, Some(addr(1)));
    for t in drain(&mut b, now) {
        let _ = t;
    }
    let mut buf = [0u8; 1500];
    b.send(now, pa, addr(1), b"reply").unwrap();
    let t = b.poll_transmit(now, &mut buf).unwrap();
    assert_eq!(t.dst, addr(1));
}

#[test]
fn replays_across_incarnations_are_dropped() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let cfg = keyed(one(K1));
    let mut a = Endpoint::new(cfg, pa);
    let mut b = Endpoint::new(cfg, pb);
    let mut now = Time(0);
    a.send(now, pb, addr(2), b"from alpha#1").unwrap();
    let old = settle(&mut now, &mut a, &mut b);
    assert_eq!(delivered(&mut b).len(), 1);
    // alpha restarts as incarnation 2 and talks to beta.
    let pa2 = ProcessId::named("alpha", 2);
    let mut a2 = Endpoint::new(cfg, pa2);
    a2.send(now, pb, addr(2), b"from alpha#2").unwrap();
    settle(&mut now, &mut a2, &mut b);
    assert_eq!(delivered(&mut b), vec![b"from alpha#2".to_vec()]);
    // Replaying alpha#1's datagrams now: stale.
    for d in &old {
        b.handle_datagram(now, addr(1), d);
    }
    assert_eq!(
        b.stats().dropped(DropReason::StaleIncarnation),
        old.len() as u64
    );
    assert!(delivered(&mut b).is_empty());
    // And datagrams captured on their way to beta#1 are not for beta#2.
    let mut b2 = Endpoint::new(cfg, ProcessId::named("beta", 2));
    for d in &old {
        b2.handle_datagram(now, addr(1), d);
    }
    assert_eq!(
        b2.stats().dropped(DropReason::WrongReceiver),
        old.len() as u64
    );
    assert_eq!(b2.peer_count(), 0);
}

/// Datagrams captured on their way to one node and replayed to another node with the
/// same incarnation number are refused there (the tag binds the receiver's name), and
/// deliver nothing.
#[test]
fn replays_to_another_node_of_the_same_incarnation_are_dropped() {
    let (pa, pb, pc) = (
        ProcessId::named("alpha", 7),
        ProcessId::named("bravo", 7),
        ProcessId::named("delta", 7),
    );
    let cfg = keyed(one(K1));
    let mut a = Endpoint::new(cfg, pa);
    let mut b = Endpoint::new(cfg, pb);
    let mut c = Endpoint::new(cfg, pc);
    let mut now = Time(0);
    a.send(now, pb, addr(2), b"for bravo only").unwrap();
    let captured = settle(&mut now, &mut a, &mut b);
    assert_eq!(delivered(&mut b), vec![b"for bravo only".to_vec()]);
    for d in &captured {
        c.handle_datagram(now, addr(1), d);
    }
    assert!(
        delivered(&mut c).is_empty(),
        "a replay to delta was delivered"
    );
    assert_eq!(c.stats().dropped(DropReason::BadTag), captured.len() as u64);
    assert_eq!(c.peer_count(), 0);
}

/// Datagrams from `n` made-up node names, as an unkeyed attacker who knows the cluster
/// id would send them.
fn fake_names(n: usize, keys: Keyring) -> Vec<Vec<u8>> {
    (0..n)
        .flat_map(|i| {
            let cfg = TransportConfig { keys, ..config() };
            let mut e = Endpoint::new(cfg, ProcessId::named(&format!("fake{i}"), 1));
            e.send(Time(0), ProcessId::named("beta", 1), addr(2), b"join me")
                .unwrap();
            drain(&mut e, Time(0))
        })
        .collect()
}

#[test]
fn fake_names_cannot_fill_the_peer_table() {
    let pb = ProcessId::named("beta", 1);
    // With keys, nothing unauthenticated opens an entry.
    let mut b = Endpoint::new(keyed(one(K1)), pb);
    for d in fake_names(50, Keyring::NONE)
        .iter()
        .chain(&fake_names(50, one(K2)))
    {
        b.handle_datagram(Time(1), addr(9), d);
    }
    assert_eq!(b.peer_count(), 0);
    assert_eq!(b.stats().dropped(DropReason::Unauthenticated), 50);
    assert_eq!(b.stats().dropped(DropReason::BadTag), 50);
    // Without keys, made-up names take entries, but never the ones reserved for sends.
    let cfg = TransportConfig {
        max_peers: 8,
        reserved_for_sends: 3,
        ..config()
    };
    let mut b = Endpoint::new(cfg, pb);
    for d in fake_names(50, Keyring::NONE) {
        b.handle_datagram(Time(1), addr(9), &d);
    }
    assert_eq!(b.peer_count(), 5);
    assert_eq!(b.stats().dropped(DropReason::PeerTableFull), 45);
    for k in 0..3 {
        let p = ProcessId::named(&format!("member{k}"), 1);
        b.send(Time(2), p, addr(3), b"hello").unwrap();
    }
    assert_eq!(b.peer_count(), 8);
    // Datagrams from the peers we opened channels to are accepted.
    let mut m = Endpoint::new(cfg, ProcessId::named("member0", 1));
    m.send(Time(2), pb, addr(2), b"hi").unwrap();
    for d in drain(&mut m, Time(2)) {
        b.handle_datagram(Time(2), addr(3), &d);
    }
    assert_eq!(
        delivered(&mut b).last().map(|v| v.as_slice()),
        Some(&b"hi"[..])
    );
}

#[test]
fn decode_reports_auth_errors_as_drop_reasons() {
    assert_eq!(
        DecodeError::Unauthenticated.drop_reason(),
        DropReason::Unauthenticated
    );
    assert_eq!(DropReason::BadTag.as_str(), "bad_tag");
}
