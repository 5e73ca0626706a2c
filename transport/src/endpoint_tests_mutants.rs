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
/// The two processes most tests use, `alpha#1` and `beta#1`, with an endpoint each
/// (no cluster key).
fn alpha_and_beta() -> (ProcessId, ProcessId, Endpoint, Endpoint) {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let a = Endpoint::new(cfg(Keyring::default()), pa);
    let b = Endpoint::new(cfg(Keyring::default()), pb);
    (pa, pb, a, b)
}

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

/// `a` sends one message per datagram; returns the datagrams.
fn one_per_datagram(a: &mut Endpoint, to: ProcessId, n: usize, now: Time) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in 0..n {
        a.send(now, to, addr(2), &[k as u8; 20]).unwrap();
        let mut d = drain(a, now);
        assert_eq!(d.len(), 1);
        out.append(&mut d);
    }
    out
}

/// Catches the `+=` -> `*=` mutants of the total and per-peer `datagrams_in` and
/// `fast_retransmits` counters and of `keepalives_received` in `handle_datagram`: each
/// counts what its name says, and the per-peer counters add up to the totals.
#[test]
fn datagram_fast_retransmit_and_keepalive_counters_count() {
    let (pa, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    let d = one_per_datagram(&mut a, pb, 5, t);
    // The second datagram is lost; the three after it are selectively acked.
    for (k, x) in d.iter().enumerate() {
        if k != 1 {
            b.handle_datagram(t, addr(1), x);
        }
    }
    assert_eq!(b.peer_stats(pa).unwrap().counters.datagrams_in, 4);
    // The endpoint's total too (`handle_datagram`'s first counter), bytes included.
    assert_eq!(b.stats().datagrams_in, 4);
    let bytes: usize = d
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != 1)
        .map(|(_, x)| x.len())
        .sum();
    assert_eq!(b.stats().bytes_in, bytes as u64);
    for x in drain(&mut b, t) {
        a.handle_datagram(t, addr(2), &x);
    }
    let fast = a.peer_stats(pb).unwrap().counters.fast_retransmits;
    assert!(fast > 0, "the hole was marked for fast retransmission");
    assert_eq!(fast, a.stats().fast_retransmits);
    // Everything delivered and acknowledged, then a long silence: keepalives.
    let mut now = t;
    for _ in 0..50 {
        for x in drain(&mut a, now) {
            b.handle_datagram(now, addr(1), &x);
        }
        for x in drain(&mut b, now) {
            a.handle_datagram(now, addr(2), &x);
        }
        now = now + 100_000;
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let sent = a.peer_stats(pb).unwrap().counters.keepalives_sent
        + b.peer_stats(pa).unwrap().counters.keepalives_sent;
    assert!(sent > 0, "a quiet channel is kept alive");
    assert_eq!(a.stats().keepalives_sent + b.stats().keepalives_sent, sent);
    assert_eq!(
        a.stats().keepalives_received + b.stats().keepalives_received,
        sent
    );
}

/// Catches `|| p.rx.has_gap()` -> `&& p.rx.has_gap()` in `handle_datagram`: in-order
/// data is acknowledged at once every second datagram, without waiting for the delayed
/// ack (the first one alone waits `delayed_ack_us`).
#[test]
fn every_second_in_order_datagram_is_acked_at_once() {
    let (_, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    let d = one_per_datagram(&mut a, pb, 2, t);
    b.handle_datagram(t, addr(1), &d[0]);
    assert!(drain(&mut b, t).is_empty(), "the first one waits");
    b.handle_datagram(t, addr(1), &d[1]);
    assert_eq!(drain(&mut b, t).len(), 1, "the second one is acked at once");
}

/// Catches `delete !` in `handle_datagram`'s retransmission-timer check: an ack that
/// moves the retransmission deadline earlier (the first round-trip sample shrinks the
/// initial RTO) restarts the timer; one that only pushes it later does not.
#[test]
fn only_an_earlier_retransmission_deadline_restarts_the_timer() {
    let (_, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    let d = one_per_datagram(&mut a, pb, 3, t);
    let _ = a.take_timer_restarted();
    // b acks the first frame after its delayed ack: a sample of ~1 ms.
    b.handle_datagram(t, addr(1), &d[0]);
    let t1 = t + cfg(Keyring::default()).delayed_ack_us;
    b.handle_timeout(t1);
    let acks = drain(&mut b, t1);
    assert_eq!(acks.len(), 1);
    a.handle_datagram(t1, addr(2), &acks[0]);
    assert!(
        a.take_timer_restarted(),
        "the deadline moved from ~200 ms to ~3 ms"
    );
    // 100 ms later b acks the second frame: the deadline only moves later.
    let t2 = t1 + 100_000;
    b.handle_datagram(t2, addr(1), &d[1]);
    b.handle_timeout(t2 + 1_000);
    let acks = drain(&mut b, t2 + 1_000);
    assert_eq!(acks.len(), 1);
    a.handle_datagram(t2 + 1_000, addr(2), &acks[0]);
    assert!(!a.take_timer_restarted());
}

/// Catches `copied < total` -> `==` in `poll_delivery` and `datagrams_out += 1`,
/// `bytes_out +=` -> `*=` in `transmit_probe`: only a message cut to the caller's
/// buffer counts as a truncated delivery, and a probe is a datagram sent, its bytes
/// counted.
#[test]
fn truncated_deliveries_and_probe_datagrams_are_counted() {
    let (pa, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    a.send_probe(t, addr(2), b"probe").unwrap();
    let probe = drain(&mut a, t);
    assert_eq!(probe.len(), 1);
    assert_eq!(a.stats().datagrams_out, 1);
    assert_eq!(a.stats().bytes_out, probe[0].len() as u64);
    for d in one_per_datagram(&mut a, pb, 2, t) {
        b.handle_datagram(t, addr(1), &d);
    }
    let mut big = [0u8; 64];
    assert_eq!(b.poll_delivery(&mut big), Some((pa, 20)));
    assert_eq!(b.stats().truncated_deliveries, 0);
    let mut small = [0u8; 8];
    assert_eq!(b.poll_delivery(&mut small), Some((pa, 8)));
    assert_eq!(b.stats().truncated_deliveries, 1);
}

/// Catches `payload.len() > wire::MAX_PROBE_PAYLOAD` -> `>=` in `ProbeRing::push`: at
/// an `mtu` with room for it, a probe of exactly the largest payload is queued, sent,
/// received and polled whole; one byte more is `TooLarge`.
#[test]
fn a_probe_of_the_largest_payload_goes_through() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let big = TransportConfig {
        mtu: 2_000,
        ..cfg(Keyring::default())
    };
    let mut a = Endpoint::new(big, pa);
    let mut b = Endpoint::new(big, pb);
    let payload: Vec<u8> = (0..wire::MAX_PROBE_PAYLOAD).map(|i| i as u8).collect();
    a.send_probe(Time(0), addr(2), &payload).unwrap();
    assert!(matches!(
        a.send_probe(Time(0), addr(2), &[0; wire::MAX_PROBE_PAYLOAD + 1]),
        Err(SendError::TooLarge { .. })
    ));
    let mut buf = vec![0u8; 2_000];
    let mut sent = 0;
    while let Some(t) = a.poll_transmit(Time(0), &mut buf) {
        b.handle_datagram(Time(0), addr(1), &buf[..t.len]);
        sent += 1;
    }
    assert_eq!(sent, 1);
    let mut out = vec![0u8; 2 * wire::MAX_PROBE_PAYLOAD];
    let (id, from, n) = b.poll_probe(&mut out).expect("the probe");
    assert_eq!((id, from), (pa, addr(1)));
    assert_eq!(&out[..n], &payload[..]);
    assert!(b.poll_probe(&mut out).is_none());
}

/// Catches `p.ka_since.is_some_and(..) && sent <= now.0` -> `||` in
/// `handle_datagram`: a keepalive's echo is an RTT sample only while that keepalive
/// waits for it; the same echo arriving again later changes nothing.
#[test]
fn a_keepalive_echo_counts_once() {
    let (_, pb, mut a, mut b) = alpha_and_beta();
    let mut now = Time(1_000);
    a.send(now, pb, addr(2), b"hello").unwrap();
    for x in drain(&mut a, now) {
        b.handle_datagram(now, addr(1), &x);
    }
    now = now + 100_000;
    b.handle_timeout(now);
    for x in drain(&mut b, now) {
        a.handle_datagram(now, addr(2), &x);
    }
    // Quiet until a's keepalive.
    let ka = loop {
        now = now + 10_000;
        a.handle_timeout(now);
        let d = drain(&mut a, now);
        if !d.is_empty() {
            break d;
        }
        assert!(now.0 < 60_000_000, "a keepalive");
    };
    for x in &ka {
        b.handle_datagram(now + 1_000, addr(1), x);
    }
    let echo = drain(&mut b, now + 1_000);
    assert!(!echo.is_empty());
    for x in &echo {
        a.handle_datagram(now + 2_000, addr(2), x);
    }
    assert!(a.peer_stats(pb).unwrap().srtt_us.is_some());
    let s = a.peer_stats(pb).unwrap();
    // The same echo much later: not a sample of 500 ms.
    for x in &echo {
        a.handle_datagram(now + 500_000, addr(2), x);
    }
    let t = a.peer_stats(pb).unwrap();
    assert_eq!(
        (t.srtt_us, t.rttvar_us, t.rto_us),
        (s.srtt_us, s.rttvar_us, s.rto_us)
    );
}

/// Catches `- wire::TAG_LEN` -> `/` (and the other terms) in `send_probe`'s bound:
/// at an `mtu` below the largest probe, the bound is what one datagram holds after the
/// longest header, the probe prefix, a tag and the checksum.
#[test]
fn the_probe_bound_follows_the_mtu() {
    let pa = ProcessId::named("alpha", 1);
    let mtu = 1_000;
    let mut a = Endpoint::new(
        TransportConfig {
            mtu,
            ..cfg(Keyring::default())
        },
        pa,
    );
    let max = mtu - wire::MAX_HEADER_LEN - wire::PROBE_PREFIX_LEN - wire::TAG_LEN - wire::CRC_LEN;
    assert!(max < wire::MAX_PROBE_PAYLOAD);
    a.send_probe(Time(0), addr(2), &vec![7; max]).unwrap();
    assert_eq!(
        a.send_probe(Time(0), addr(2), &vec![7; max + 1]),
        Err(SendError::TooLarge { len: max + 1, max })
    );
    let mut buf = vec![0u8; 2 * mtu];
    let t = a.poll_transmit(Time(0), &mut buf).expect("the probe");
    assert!(t.len <= mtu);
}

/// Catches `!p.event_queued && ..` -> `||` in `handle_timeout`: a peer reported
/// unreachable, heard again and lost again before the caller polled the first report
/// is reported once.
#[test]
fn an_unpolled_unreachable_report_is_not_repeated() {
    let (_, pb, mut a, mut b) = alpha_and_beta();
    let mut now = Time(1_000);
    let lose = |a: &mut Endpoint, now: &mut Time, msg: &[u8]| {
        let before = a.stats().unreachable_events;
        a.send(*now, pb, addr(2), msg).unwrap();
        for _ in 0..1_000 {
            drain(a, *now);
            if a.stats().unreachable_events > before {
                return;
            }
            *now = a.poll_timeout().expect("a timer runs");
            a.handle_timeout(*now);
        }
        panic!("b never reported unreachable");
    };
    lose(&mut a, &mut now, b"one");
    assert!(a.peer_stats(pb).unwrap().unreachable);
    // b is heard again: a's retransmission reaches it and its ack comes back.
    for _ in 0..3 {
        now = now + 1_000;
        a.handle_timeout(now);
        b.handle_timeout(now);
        for x in drain(&mut a, now) {
            b.handle_datagram(now, addr(1), &x);
        }
        for x in drain(&mut b, now) {
            a.handle_datagram(now, addr(2), &x);
        }
        if !a.peer_stats(pb).unwrap().unreachable {
            break;
        }
        let t = a.poll_timeout().unwrap();
        now = t.max(now);
        a.handle_timeout(now);
    }
    assert!(!a.peer_stats(pb).unwrap().unreachable, "b heard again");
    lose(&mut a, &mut now, b"two");
    assert_eq!(a.stats().unreachable_events, 2);
    assert_eq!(a.poll_event(), Some(TransportEvent::PeerUnreachable(pb)));
    assert_eq!(a.poll_event(), None);
}

/// Catches `self.events.len() < self.events_cap` -> `<=` in `handle_timeout`: reports
/// of older incarnations stay queued (a newer one may report again), but never more
/// than `2 * max_peers` wait unpolled: the queue does not grow.
#[test]
fn unreachable_reports_are_bounded_by_the_event_queue() {
    let pa = ProcessId::named("alpha", 1);
    let mut a = Endpoint::new(
        TransportConfig {
            max_peers: 1,
            reserved_for_sends: 0,
            ..cfg(Keyring::default())
        },
        pa,
    );
    let mut now = Time(1_000);
    for inc in 1..=4 {
        let pb = ProcessId::named("beta", inc);
        let before = a.stats().unreachable_events;
        a.send(now, pb, addr(2), b"lost").unwrap();
        while a.stats().unreachable_events == before {
            drain(&mut a, now);
            now = a.poll_timeout().expect("a timer runs");
            a.handle_timeout(now);
        }
    }
    assert_eq!(a.stats().unreachable_events, 4);
    let mut reports = Vec::new();
    while let Some(TransportEvent::PeerUnreachable(p)) = a.poll_event() {
        reports.push(p.incarnation);
    }
    assert_eq!(reports, [1, 2], "two (2 * max_peers) reports fit the queue");
}

/// Catches the deleted `DropReason::ForeignCluster` arm of `last_drop_from`: the
/// sender of a datagram from another cluster is kept (what an operator looks for).
#[test]
fn the_last_foreign_sender_is_kept() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut b = Endpoint::new(cfg(Keyring::default()), pb);
    let mut other = Endpoint::new(
        TransportConfig {
            cluster_id: 7,
            ..cfg(Keyring::default())
        },
        pa,
    );
    other.send(Time(0), pb, addr(2), b"x").unwrap();
    for d in drain(&mut other, Time(0)) {
        b.handle_datagram(Time(0), addr(5), &d);
    }
    assert_eq!(b.stats().dropped(DropReason::ForeignCluster), 1);
    assert_eq!(b.last_drop_from(DropReason::ForeignCluster), Some(addr(5)));
    assert_eq!(b.last_drop_from(DropReason::BadTag), None);
}

/// Catches the `send_capacity` mutants (`-> Some(0)`, `Some(1)`, `None`): a channel not
/// opened yet has the whole window, an open one what its unacknowledged frames leave,
/// a disconnected incarnation none.
#[test]
fn send_capacity_is_what_the_window_leaves() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let c = cfg(Keyring::default());
    let window = c.send_window;
    let mut a = Endpoint::new(c, pa);
    assert_eq!(a.send_capacity(pb), Some(window));
    a.send(Time(0), pb, addr(2), b"one").unwrap();
    a.send(Time(0), pb, addr(2), b"two").unwrap();
    assert_eq!(a.send_capacity(pb), Some(window - 2));
    a.disconnect(pb);
    assert_eq!(a.send_capacity(pb), None);
}

/// Catches `self.stats.messages_sent += 1` and the peer's `counters.messages_sent +=
/// 1` -> `*=` in `send`: every message accepted for sending is counted in the
/// endpoint's totals and the peer's counters; a refused one is not.
#[test]
fn every_message_accepted_for_sending_is_counted() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut a = Endpoint::new(cfg(Keyring::default()), pa);
    assert_eq!(a.stats().messages_sent, 0);
    a.send(Time(0), pb, addr(2), b"x").unwrap();
    a.send(Time(0), pb, addr(2), b"y").unwrap();
    assert_eq!(a.stats().messages_sent, 2);
    let too_big = vec![0u8; a.config().max_message + 1];
    assert!(a.send(Time(0), pb, addr(2), &too_big).is_err());
    assert_eq!(a.stats().messages_sent, 2);
    assert_eq!(a.peer_stats(pb).unwrap().counters.messages_sent, 2);
}

/// Catches `acks_sent += 1`, `datagrams_out += 1` and `bytes_out +=` (each total and
/// per peer) -> `*=` in `build`, and the peer's `counters.bytes_in +=` -> `*=` in
/// `handle_datagram`: a data datagram and an ack-only datagram are each one datagram
/// out, in the totals and in the peer's counters; the ack-only one is an ack sent; the
/// bytes received are counted for their sender.
#[test]
fn data_and_ack_datagrams_are_counted() {
    let (pa, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    let d = one_per_datagram(&mut a, pb, 1, t);
    b.handle_datagram(t, addr(1), &d[0]);
    assert_eq!(
        b.peer_stats(pa).unwrap().counters.bytes_in,
        d[0].len() as u64
    );
    assert_eq!(a.stats().datagrams_out, 1);
    assert_eq!(a.peer_stats(pb).unwrap().counters.datagrams_out, 1);
    assert_eq!(a.stats().acks_sent, 0);
    let t2 = b.poll_timeout().expect("the delayed ack");
    let ack = drain(&mut b, t2);
    assert_eq!(ack.len(), 1);
    assert_eq!(b.stats().acks_sent, 1);
    assert_eq!(b.stats().datagrams_out, 1);
    let counters = b.peer_stats(pa).unwrap().counters;
    assert_eq!(counters.datagrams_out, 1);
    assert_eq!(counters.acks_sent, 1);
    let len = ack[0].len() as u64;
    assert_eq!((b.stats().bytes_out, counters.bytes_out), (len, len));
}

/// Catches the first `||` -> `&&` of the ack-now condition in `handle_datagram`, the
/// peer's `counters.duplicates +=` -> `*=` there, and `transmit_hint -> false`: a
/// datagram whose frames are all duplicates (the sender retransmitted what arrived) is
/// counted and acknowledged at once, not after `delayed_ack_us`, and the endpoint
/// says it has something to send.
#[test]
fn a_duplicate_datagram_is_acked_at_once() {
    let (pa, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    let d = one_per_datagram(&mut a, pb, 1, t);
    b.handle_datagram(t, addr(1), &d[0]);
    assert!(
        drain(&mut b, t).is_empty(),
        "an in-order datagram: delayed ack"
    );
    let t2 = b.poll_timeout().expect("the delayed ack");
    assert_eq!(drain(&mut b, t2).len(), 1);
    b.handle_datagram(t2, addr(1), &d[0]);
    assert_eq!(b.stats().duplicates, 1);
    assert_eq!(b.peer_stats(pa).unwrap().counters.duplicates, 1);
    assert!(b.transmit_hint());
    assert_eq!(drain(&mut b, t2).len(), 1, "the duplicate is acked at once");
    assert!(!b.transmit_hint());
}

/// Catches `next == n` -> `!=` in `poll_delivery` and in `poll_transmit`: peers are
/// served round robin, for deliveries and for datagrams (one peer with more waiting
/// does not go first twice).
#[test]
fn deliveries_and_transmissions_go_round_robin() {
    let (pa, pb, pc) = (
        ProcessId::named("alpha", 1),
        ProcessId::named("beta", 1),
        ProcessId::named("gamma", 1),
    );
    let mut a = Endpoint::new(cfg(Keyring::default()), pa);
    let mut c = Endpoint::new(cfg(Keyring::default()), pc);
    let mut b = Endpoint::new(cfg(Keyring::default()), pb);
    let t = Time(1_000);
    let from_a = one_per_datagram(&mut a, pb, 2, t);
    let from_c = one_per_datagram(&mut c, pb, 2, t);
    for d in from_a.iter().chain(&from_c) {
        b.handle_datagram(t, addr(1), d);
    }
    let mut buf = [0u8; 64];
    let order: Vec<ProcessId> = std::iter::from_fn(|| b.poll_delivery(&mut buf))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(order, [pa, pc, pa, pc]);
    // Two messages of a datagram each for a and for c, queued a's first.
    let big = [7u8; 1_000];
    for p in [pa, pa, pc, pc] {
        b.send(t, p, addr(if p == pa { 1 } else { 3 }), &big)
            .unwrap();
    }
    let mut out = [0u8; 1500];
    let mut dst = Vec::new();
    while let Some(x) = b.poll_transmit(t, &mut out) {
        dst.push(x.dst.port());
    }
    assert_eq!(dst, [1, 3, 1, 3]);
}

/// Catches `delete !` in `if !was_outstanding { p.last_progress = now }` in `build`:
/// the silence that makes a peer unreachable runs from the first send nobody answered,
/// not from the last retransmission, so a silent peer is reported
/// `unreachable_after_us` after the send, before `max_retries` retransmissions.
#[test]
fn a_silent_peer_is_reported_unreachable_after_unreachable_after_us() {
    let (pa, pb) = (ProcessId::named("alpha", 1), ProcessId::named("beta", 1));
    let mut a = Endpoint::new(cfg(Keyring::default()), pa);
    let after = a.config().unreachable_after_us;
    let t0 = Time(1_000);
    a.send(t0, pb, addr(2), b"lost").unwrap();
    let mut now = t0;
    while a.stats().unreachable_events == 0 {
        drain(&mut a, now);
        now = a.poll_timeout().expect("a timer runs");
        a.handle_timeout(now);
    }
    assert_eq!(now, t0 + after);
    assert!(a.peer_stats(pb).unwrap().retries < a.config().max_retries);
}

/// Catches `delete !` in `if !p.outstanding() { p.rto_deadline = None }` (a keepalive
/// echo, `handle_datagram`): the echo stops the retransmission timer only when
/// nothing else waits for an answer; data sent after the keepalive and lost is still
/// retransmitted at the next timeout.
#[test]
fn a_keepalive_echo_keeps_the_timer_of_data_in_flight() {
    let (pa, pb, mut a, mut b) = alpha_and_beta();
    let mut buf = [0u8; 64];
    let t = Time(1_000);
    for d in one_per_datagram(&mut a, pb, 1, t) {
        b.handle_datagram(t, addr(1), &d);
    }
    let t1 = b.poll_timeout().unwrap();
    for d in drain(&mut b, t1) {
        a.handle_datagram(t1, addr(2), &d);
    }
    assert!(b.poll_delivery(&mut buf).is_some());
    // The channel idles until a's keepalive.
    let tk = a.poll_timeout().unwrap();
    a.handle_timeout(tk);
    let ka = drain(&mut a, tk);
    assert_eq!(ka.len(), 1);
    assert_eq!(a.stats().keepalives_sent, 1);
    // Data sent after it is lost; the keepalive's echo comes back.
    a.send(tk, pb, addr(2), b"x").unwrap();
    assert_eq!(drain(&mut a, tk).len(), 1);
    b.handle_datagram(tk, addr(1), &ka[0]);
    for d in drain(&mut b, tk) {
        a.handle_datagram(tk + 100, addr(2), &d);
    }
    let mut now = tk + 100;
    let deadline = now + a.peer_stats(pb).unwrap().rto_us;
    while now <= deadline {
        now = a.poll_timeout().expect("a timer runs");
        a.handle_timeout(now);
        for d in drain(&mut a, now) {
            b.handle_datagram(now, addr(1), &d);
        }
        if let Some((p, n)) = b.poll_delivery(&mut buf) {
            assert_eq!((p, &buf[..n]), (pa, &b"x"[..]));
            return;
        }
    }
    panic!("x was not retransmitted within one rto of the echo");
}

/// Catches the peer's `counters.messages_delivered += 1` -> `*=` in `poll_delivery`:
/// every message handed to the caller is counted in the peer's counters, as in the
/// totals.
#[test]
fn every_message_delivered_is_counted() {
    let (pa, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    for d in one_per_datagram(&mut a, pb, 2, t) {
        b.handle_datagram(t, addr(1), &d);
    }
    assert_eq!(b.stats().messages_delivered, 0);
    let mut buf = [0u8; 64];
    while b.poll_delivery(&mut buf).is_some() {}
    assert_eq!(b.stats().messages_delivered, 2);
    assert_eq!(b.peer_stats(pa).unwrap().counters.messages_delivered, 2);
}

/// Catches `new > 0` -> `<` in `handle_datagram`: new data from another address of the
/// same peer (it moved) moves the channel there, even when the datagram acknowledges
/// nothing new: the acknowledgement goes to the new address.
#[test]
fn new_data_from_another_address_moves_the_channel() {
    let (_, pb, mut a, mut b) = alpha_and_beta();
    let t = Time(1_000);
    let d = one_per_datagram(&mut a, pb, 2, t);
    b.handle_datagram(t, addr(1), &d[0]);
    let t2 = b.poll_timeout().expect("the delayed ack");
    let mut out = [0u8; 1500];
    assert_eq!(b.poll_transmit(t2, &mut out).unwrap().dst, addr(1));
    // a's second datagram arrives from port 9.
    b.handle_datagram(t2, addr(9), &d[1]);
    let t3 = b.poll_timeout().expect("the delayed ack");
    assert_eq!(b.poll_transmit(t3, &mut out).unwrap().dst, addr(9));
}
