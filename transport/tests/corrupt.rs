//! Hostile input: every single-bit flip of valid datagrams is rejected and counted;
//! arbitrary bytes never panic the decoder or the endpoint. With a cluster key, the CRC
//! still catches flips first (`Checksum`), and edits with a recomputed CRC are caught
//! by the tag (`BadTag`) or the parser: nothing gets through.

mod common;

use common::*;
use proptest::prelude::*;
use sgmp_transport::wire::{self, decode, DecodeError};
use sgmp_transport::{DropReason, Endpoint, Keyring, ProcessId, Time, TransportConfig};

fn keyed_config() -> TransportConfig {
    TransportConfig {
        keys: Keyring::new([0x42; 32], None),
        ..config()
    }
}

/// Valid datagrams of every kind from alpha#1 to beta#1: data with coalesced messages,
/// a fragment, an ack-only datagram, a keepalive and an ack echoing it.
fn samples() -> Vec<Vec<u8>> {
    samples_with(config())
}

fn samples_with(cfg: TransportConfig) -> Vec<Vec<u8>> {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut a = Endpoint::new(cfg, pa);
    let mut b = Endpoint::new(cfg, pb);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1500];
    for m in [&b"one"[..], b"two", b"", &[7u8; 300]] {
        a.send(Time(0), pb, addr(2), m).unwrap();
    }
    a.send(Time(0), pb, addr(2), &vec![9u8; 5000]).unwrap();
    while let Some(t) = a.poll_transmit(Time(0), &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    for d in &out {
        b.handle_datagram(Time(10), addr(1), d);
    }
    // b acks (out of order? no: in order, so after the delayed-ack time at most).
    let t = b.poll_timeout().unwrap();
    b.handle_timeout(t);
    while let Some(t) = b.poll_transmit(t, &mut buf) {
        out.push(buf[..t.len].to_vec());
    }
    // b's keepalive once idle, and a's echo.
    let ka = Time(5_000_000);
    b.handle_timeout(ka);
    let t = b.poll_transmit(ka, &mut buf).expect("keepalive");
    out.push(buf[..t.len].to_vec());
    a.handle_datagram(ka, addr(2), &buf[..t.len]);
    let t = a.poll_transmit(ka, &mut buf).expect("echo");
    out.push(buf[..t.len].to_vec());
    assert!(out.len() >= 6);
    out
}

#[test]
fn every_single_bit_flip_is_rejected_and_counted() {
    every_single_bit_flip_with(config());
}

#[test]
fn every_single_bit_flip_is_rejected_and_counted_with_keys() {
    every_single_bit_flip_with(keyed_config());
}

#[test]
fn resealed_edits_of_keyed_datagrams_never_get_through() {
    let cfg = keyed_config();
    let cap = cfg.frame_capacity();
    for d in samples_with(cfg) {
        assert!(decode(&d, cap).unwrap().tagged);
        let mut ep = Endpoint::new(cfg, ProcessId::named("beta", 1));
        for bit in 0..(d.len() - wire::CRC_LEN) * 8 {
            let mut bad = d.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            reseal(&mut bad);
            ep.handle_datagram(Time(1), addr(1), &bad);
        }
        let s = ep.stats();
        assert_eq!(s.total_drops(), s.datagrams_in, "{s:?}");
        assert!(s.dropped(DropReason::BadTag) > s.datagrams_in / 2, "{s:?}");
        assert_eq!(ep.peer_count(), 0);
        assert_eq!(s.probes_received, 0);
    }
}

fn every_single_bit_flip_with(cfg: TransportConfig) {
    let cap = cfg.frame_capacity();
    let mut flips = 0u64;
    for d in samples_with(cfg) {
        assert!(decode(&d, cap).is_ok());
        let mut ep = Endpoint::new(cfg, ProcessId::named("beta", 1));
        for bit in 0..d.len() * 8 {
            let mut bad = d.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = decode(&bad, cap).expect_err("flip accepted");
            assert_eq!(err, DecodeError::Checksum, "bit {bit}");
            ep.handle_datagram(Time(1), addr(1), &bad);
            flips += 1;
        }
        let s = ep.stats();
        assert_eq!(s.dropped(DropReason::Checksum), (d.len() * 8) as u64);
        assert_eq!(s.total_drops(), s.datagrams_in);
        assert_eq!(ep.peer_count(), 0);
        let mut buf = [0u8; 64];
        assert!(ep.poll_delivery(&mut buf).is_none());
    }
    assert!(flips > 10_000);
}

#[test]
fn truncations_are_rejected() {
    let cap = config().frame_capacity();
    for d in samples() {
        let mut ep = Endpoint::new(config(), ProcessId::named("beta", 1));
        for len in 0..d.len() {
            assert!(decode(&d[..len], cap).is_err());
            ep.handle_datagram(Time(1), addr(1), &d[..len]);
        }
        assert_eq!(ep.stats().total_drops(), d.len() as u64);
    }
}

#[test]
fn foreign_cluster_and_version_are_counted() {
    let d = &samples()[0];
    let cfg = sgmp_transport::TransportConfig {
        cluster_id: 43,
        ..config()
    };
    let mut ep = Endpoint::new(cfg, ProcessId::named("beta", 1));
    ep.handle_datagram(Time(1), addr(1), d);
    assert_eq!(ep.stats().dropped(DropReason::ForeignCluster), 1);
    let mut v = d.clone();
    v[2] = 2;
    let n = v.len();
    let crc = crc32fast::hash(&v[..n - 4]);
    v[n - 4..].copy_from_slice(&crc.to_be_bytes());
    ep.handle_datagram(Time(1), addr(1), &v);
    assert_eq!(ep.stats().dropped(DropReason::BadVersion), 1);
}

/// Recomputes the CRC trailer so that mutations reach the parser.
fn reseal(d: &mut [u8]) {
    if d.len() >= wire::CRC_LEN {
        let n = d.len() - wire::CRC_LEN;
        let crc = crc32fast::hash(&d[..n]);
        d[n..].copy_from_slice(&crc.to_be_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_dropped(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let cap = config().frame_capacity();
        let decoded = decode(&bytes, cap).is_ok();
        let mut ep = Endpoint::new(config(), ProcessId::named("beta", 1));
        ep.handle_datagram(Time(1), addr(1), &bytes);
        if !decoded {
            prop_assert_eq!(ep.stats().total_drops(), 1);
        }
    }

    #[test]
    fn resealed_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let mut bytes = bytes;
        reseal(&mut bytes);
        let cap = config().frame_capacity();
        let decoded = decode(&bytes, cap).is_ok();
        let mut ep = Endpoint::new(config(), ProcessId::named("beta", 1));
        ep.handle_datagram(Time(1), addr(1), &bytes);
        if !decoded {
            prop_assert_eq!(ep.stats().total_drops(), 1);
        }
    }

    #[test]
    fn mutated_valid_datagrams_never_panic(
        which in 0usize..64,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        static SAMPLES: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
        let samples = SAMPLES.get_or_init(samples);
        let mut d = samples[which % samples.len()].clone();
        for (at, v) in edits {
            let n = d.len();
            d[at % n] = v;
        }
        let keep = d.len() - (cut % 16).min(d.len());
        d.truncate(keep);
        reseal(&mut d);
        let cap = config().frame_capacity();
        let decoded = decode(&d, cap);
        let mut ep = Endpoint::new(config(), ProcessId::named("beta", 1));
        ep.handle_datagram(Time(1), addr(1), &d);
        let mut buf = vec![0u8; 64 * 1024];
        while ep.poll_delivery(&mut buf).is_some() {}
        ep.handle_timeout(Time(10_000_000));
        let mut out = [0u8; 1500];
        while ep.poll_transmit(Time(10_000_000), &mut out).is_some() {}
        if decoded.is_err() {
            prop_assert_eq!(ep.stats().total_drops(), 1);
        }
    }
}
