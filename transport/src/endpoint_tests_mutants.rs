//! Unit tests of `endpoint.rs` written for mutation testing (issue 17, `make mutants`):
//! each asserts what the mutated code promises where the other tests would not notice
//! (docs/VERIFICATION.md, "Mutation testing").

use super::*;
use crate::Keyring;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

fn cfg(keys: Keyring) -> TransportConfig {
    TransportConfig {
        cluster_id: 42,
        max_peers: 4,
        keys,
        ..TransportConfig::default()
    }
}

/// Every datagram `from` has to send at `now`, as bytes.
fn drain(from: &mut Endpoint, now: Time) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1500];
    let mut out = Vec::new();
    while let Some(t) = from.poll_transmit(now, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    out
}

/// Catches `reason == DropReason::BadTag` -> `!=` in `handle_datagram`: the address
/// kept for [`DropReason::BadTag`] (a key mismatch: what an operator wants to find) is
/// the sender of a datagram whose tag failed, not of one that had no tag at all.
#[test]
fn the_last_bad_tag_sender_is_one_whose_tag_failed() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut b = Endpoint::new(cfg(Keyring::new([1; 32], None)), pb);
    // No key at all, from port 3: unauthenticated, not a bad tag.
    let mut u = Endpoint::new(cfg(Keyring::default()), pa);
    u.send(Time(0), pb, addr(2), b"x").unwrap();
    for d in drain(&mut u, Time(0)) {
        b.handle_datagram(Time(0), addr(3), &d);
    }
    assert_eq!(b.stats().dropped(DropReason::Unauthenticated), 1);
    assert_eq!(b.last_drop_from(DropReason::BadTag), None);
    // Another key, from port 1: a bad tag.
    let mut a = Endpoint::new(cfg(Keyring::new([2; 32], None)), pa);
    a.send(Time(0), pb, addr(2), b"x").unwrap();
    for d in drain(&mut a, Time(0)) {
        b.handle_datagram(Time(0), addr(1), &d);
    }
    assert_eq!(b.stats().dropped(DropReason::BadTag), 1);
    assert_eq!(b.last_drop_from(DropReason::BadTag), Some(addr(1)));
    assert_eq!(b.last_drop_from(DropReason::Unauthenticated), None);
}

/// Catches `(self.head + self.meta.len()) % self.cap` -> `*` in `ProbeRing::push`:
/// probes received before any is polled each keep their own slot and come out in
/// order, with their own payloads, also after the ring wrapped.
#[test]
fn probes_queued_together_keep_their_payloads_in_order() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut b = Endpoint::new(
        TransportConfig {
            probe_queue: 3,
            ..cfg(Keyring::default())
        },
        pb,
    );
    let mut a = Endpoint::new(cfg(Keyring::default()), pa);
    let mut out = [0u8; 64];
    let mut round = |b: &mut Endpoint, payloads: &[&[u8]]| {
        for p in payloads {
            a.send_probe(Time(0), addr(2), p).unwrap();
        }
        for d in drain(&mut a, Time(0)) {
            b.handle_datagram(Time(0), addr(1), &d);
        }
        for p in payloads {
            let (id, from, n) = b.poll_probe(&mut out).expect("a probe");
            assert_eq!((id, from), (pa, addr(1)));
            assert_eq!(&out[..n], *p);
        }
        assert!(b.poll_probe(&mut out).is_none());
    };
    round(&mut b, &[b"one", b"two"]);
    round(&mut b, &[b"three", b"four", b"five"]);
}
