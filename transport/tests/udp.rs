//! Real sockets on 127.0.0.1 through the driver and the fault layer.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sgmp_transport::{
    Driver, DriverConfig, DropReason, FaultLayer, IdleStrategy, LinkFaults, ProcessId, SendError,
    TransportConfig,
};

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn driver(name: &str, faults: Option<FaultLayer>, idle: IdleStrategy) -> Driver {
    let mut c = DriverConfig::new(localhost(), ProcessId::named(name, 1));
    c.transport = TransportConfig {
        cluster_id: 9,
        max_peers: 4,
        ..TransportConfig::default()
    };
    c.faults = faults;
    c.idle = idle;
    Driver::bind(c).expect("bind")
}

fn lossy(seed: u64, loss: f64) -> Option<FaultLayer> {
    let mut f = FaultLayer::new(seed);
    f.set_default(LinkFaults::lossy(loss));
    Some(f)
}

/// Sends `n` numbered messages from `a` to `b` as fast as the window allows, driving
/// both without blocking, and checks that `b` delivers each exactly once, in order,
/// from `a` (bounded: 60 s).
fn exchange(a: &mut Driver, b: &mut Driver, n: u64) {
    let (pb, baddr) = (b.endpoint().local_id(), b.local_addr());
    let start = Instant::now();
    let (mut sent, mut got) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    while got < n {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out: {got}/{n} delivered; a {:?} b {:?}",
            a.endpoint().stats(),
            b.endpoint().stats()
        );
        while sent < n {
            match a.send(pb, baddr, &sent.to_le_bytes()) {
                Ok(()) => sent += 1,
                Err(SendError::WindowFull) => break,
                Err(e) => panic!("{e}"),
            }
        }
        a.drive(Some(Duration::ZERO)).unwrap();
        b.drive(Some(Duration::ZERO)).unwrap();
        while let Some((from, len)) = b.poll_delivery(&mut buf) {
            assert_eq!(from, a.endpoint().local_id());
            assert_eq!(&buf[..len], &got.to_le_bytes(), "FIFO, exactly once");
            got += 1;
        }
    }
}

#[test]
fn hundred_thousand_messages_at_20_percent_loss() {
    const N: u64 = 100_000;
    let mut a = driver("a", lossy(1, 0.2), IdleStrategy::Block);
    let mut b = driver("b", lossy(2, 0.2), IdleStrategy::Block);
    let pb = b.endpoint().local_id();
    let start = Instant::now();
    exchange(&mut a, &mut b, N);
    let (sa, sb) = (a.endpoint().stats(), b.endpoint().stats());
    assert!(a.stats().fault_dropped > 0 && sa.retransmissions > 0);
    eprintln!(
        "100k messages in {:?}: a sent {} datagrams ({} frames, {} retransmitted, {} fast), \
         b sent {} acks; srtt {:?} µs",
        start.elapsed(),
        sa.datagrams_out,
        sa.frames_sent,
        sa.retransmissions,
        sa.fast_retransmits,
        sb.acks_sent,
        a.endpoint().peer_stats(pb).and_then(|p| p.srtt_us),
    );
}

#[test]
fn threads_block_and_wake() {
    threads_block_and_wake_with(IdleStrategy::Block);
}

#[test]
fn threads_block_in_recv_and_wake() {
    threads_block_and_wake_with(IdleStrategy::Recv);
}

/// The yielding spin reads, parks after its budget and wakes like the others.
#[test]
fn threads_spin_yielding_and_wake() {
    threads_block_and_wake_with(IdleStrategy::SpinYield { spin_us: 100 });
}

fn threads_block_and_wake_with(idle: IdleStrategy) {
    const N: u64 = 20_000;
    let mut a = driver("a", lossy(3, 0.05), IdleStrategy::Spin { spin_us: 50 });
    let mut b = driver("b", None, idle);
    let (pa, pb, baddr) = (
        a.endpoint().local_id(),
        b.endpoint().local_id(),
        b.local_addr(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let waker = b.waker();
    let stop2 = Arc::clone(&stop);
    let receiver = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        let start = Instant::now();
        // Until stopped *and* woken: the stop flag may be seen at the end of a drive
        // that returned for a timer, before the wake-up arrived (the test then failed
        // now and then with no wake-up counted); the wake-up must still end a blocked
        // `drive(None)`.
        while !stop2.load(Ordering::Relaxed) || b.stats().wakeups == 0 {
            assert!(start.elapsed() < Duration::from_secs(60));
            b.drive(None).unwrap();
            while let Some((from, len)) = b.poll_delivery(&mut buf) {
                assert_eq!(from, pa);
                assert_eq!(&buf[..len], &got.to_le_bytes());
                got += 1;
            }
        }
        (got, b.stats().wakeups)
    });
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < N || a.endpoint().peer_stats(pb).unwrap().frames_in_window > 0 {
        assert!(start.elapsed() < Duration::from_secs(60));
        while sent < N && a.send(pb, baddr, &sent.to_le_bytes()).is_ok() {
            sent += 1;
        }
        a.drive(Some(Duration::from_millis(5))).unwrap();
    }
    // Everything acked: the receiver thread has it. Wake it up to stop it.
    stop.store(true, Ordering::Relaxed);
    waker.wake().unwrap();
    let (got, wakeups) = receiver.join().unwrap();
    assert_eq!(got, N);
    assert!(wakeups >= 1);
}

#[test]
fn silent_peer_is_reported() {
    let mut c = DriverConfig::new(localhost(), ProcessId::named("talker", 1));
    c.transport = TransportConfig {
        max_peers: 4,
        initial_rto_us: 1_000,
        min_rto_us: 1_000,
        max_rto_us: 20_000,
        max_retries: 4,
        ..TransportConfig::default()
    };
    let mut talker = Driver::bind(c).unwrap();
    // A bound socket that never answers (no ICMP either).
    let hole = std::net::UdpSocket::bind(localhost()).unwrap();
    let ghost = ProcessId::named("ghost", 1);
    talker
        .send(ghost, hole.local_addr().unwrap(), b"anyone?")
        .unwrap();
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < Duration::from_secs(10));
        talker.drive(Some(Duration::from_millis(10))).unwrap();
        if let Some(e) = talker.poll_event() {
            assert_eq!(e, sgmp_transport::TransportEvent::PeerUnreachable(ghost));
            break;
        }
    }
    let ps = talker.endpoint().peer_stats(ghost).unwrap();
    assert!(
        ps.retries >= 4 && ps.counters.retransmissions >= 4,
        "{ps:?}"
    );
}

#[test]
fn probes_and_two_way_partition_over_udp() {
    let mut a = driver("pa", Some(FaultLayer::new(1)), IdleStrategy::Block);
    let mut b = driver("pb", None, IdleStrategy::Block);
    let (la, lb) = (a.local_addr(), b.local_addr());
    a.send_probe(lb, b"hello").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    let got = loop {
        a.drive(Some(Duration::from_millis(1))).unwrap();
        b.drive(Some(Duration::from_millis(1))).unwrap();
        if let Some(p) = b.poll_probe(&mut buf) {
            break p;
        }
        assert!(Instant::now() < deadline, "probe not received");
    };
    assert_eq!(got, (ProcessId::named("pa", 1), la, 5));
    assert_eq!(&buf[..5], b"hello");
    // A partition on a's side blocks what b sends to a as well.
    a.faults_mut().unwrap().partition_both(la, lb);
    b.send_probe(la, b"x").unwrap();
    let until = Instant::now() + Duration::from_millis(100);
    while Instant::now() < until {
        a.drive(Some(Duration::from_millis(1))).unwrap();
        b.drive(Some(Duration::from_millis(1))).unwrap();
        assert!(a.poll_probe(&mut buf).is_none());
    }
    assert!(a.stats().fault_dropped >= 1);
    // A reset endpoint speaks as the new incarnation.
    a.faults_mut().unwrap().heal_all();
    a.reset_endpoint(ProcessId::named("pa", 2));
    a.send_probe(lb, b"again").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let got = loop {
        a.drive(Some(Duration::from_millis(1))).unwrap();
        b.drive(Some(Duration::from_millis(1))).unwrap();
        if let Some(p) = b.poll_probe(&mut buf) {
            break p;
        }
        assert!(Instant::now() < deadline, "probe not received");
    };
    assert_eq!(got.0, ProcessId::named("pa", 2));
}

/// `Recv` parks in the socket read: a datagram arriving while parked ends the wait and
/// is handled, replies go out, and a wake-up from another thread ends a wait with no
/// deadline (and is not counted as a datagram).
#[test]
fn recv_parking_handles_datagrams_and_wakes() {
    let mut a = driver("ra", None, IdleStrategy::Recv);
    let mut b = driver("rb", None, IdleStrategy::Recv);
    let (pa, pb, aaddr, baddr) = (
        a.endpoint().local_id(),
        b.endpoint().local_id(),
        a.local_addr(),
        b.local_addr(),
    );
    let waker = b.waker();
    let echo = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut echoed = 0u64;
        loop {
            // No deadline of the caller's: only a datagram, a timer or the waker ends it.
            b.drive(None).unwrap();
            while let Some((from, len)) = b.poll_delivery(&mut buf) {
                assert_eq!(from, pa);
                if &buf[..len] == b"stop" {
                    return (echoed, b);
                }
                b.send(from, aaddr, &buf[..len]).unwrap();
                echoed += 1;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0u64..200 {
        a.send(pb, baddr, &i.to_le_bytes()).unwrap();
        let start = Instant::now();
        let got = loop {
            assert!(start.elapsed() < Duration::from_secs(10), "echo {i} lost");
            a.drive(Some(Duration::from_millis(50))).unwrap();
            if let Some((from, len)) = a.poll_delivery(&mut buf) {
                assert_eq!(from, pb);
                break buf[..len].to_vec();
            }
        };
        assert_eq!(got, i.to_le_bytes());
    }
    // Let every ack settle, so the echo thread has no deadline left and parks for good.
    let settle = Instant::now() + Duration::from_millis(50);
    while Instant::now() < settle {
        a.drive(Some(Duration::from_millis(5))).unwrap();
    }
    let wakes_before = Instant::now();
    waker.wake().unwrap();
    waker.wake().unwrap(); // coalesced with the first, or a second harmless wake-up
    a.send(pb, baddr, b"stop").unwrap();
    let stop_until = Instant::now() + Duration::from_secs(10);
    while !echo.is_finished() {
        assert!(Instant::now() < stop_until, "echo thread never stopped");
        a.drive(Some(Duration::from_millis(5))).unwrap();
    }
    let (echoed, b) = echo.join().unwrap();
    assert_eq!(echoed, 200);
    let s = b.stats();
    assert!(s.wakeups >= 1, "{s:?}");
    assert!(s.datagrams_read >= 201, "{s:?}");
    // The wake datagrams never reach the endpoint. (A retransmission that crossed its
    // acknowledgement on a loaded machine arrives as a duplicate: not a wake.)
    let st = b.endpoint().stats();
    let duplicates = st.drops[DropReason::Duplicate.index()];
    assert_eq!(st.total_drops() - duplicates, 0, "{st:?}");
    assert!(wakes_before.elapsed() < Duration::from_secs(10));
}

/// A waker ends a busy-poll too, however long its budget (a node's commands wait for
/// no poll to run out).
#[test]
fn a_waker_ends_a_long_busy_poll() {
    for idle in [
        IdleStrategy::SpinYield {
            spin_us: 60_000_000,
        },
        IdleStrategy::Spin {
            spin_us: 60_000_000,
        },
    ] {
        let mut b = driver("poller", None, idle);
        let waker = b.waker();
        let t = std::thread::spawn(move || {
            b.drive(None).unwrap();
            (Instant::now(), b.stats())
        });
        std::thread::sleep(Duration::from_millis(50));
        // The drive returns after the wake, not on its own (the budget is a minute):
        // compared as instants, so a late start of the thread cannot fail it.
        let woken_at = Instant::now();
        waker.wake().unwrap();
        let (returned_at, stats) = t.join().unwrap();
        assert!(
            returned_at >= woken_at,
            "{idle:?}: returned before the wake"
        );
        assert!(
            returned_at - woken_at < Duration::from_secs(30),
            "{idle:?}: the poll ran on"
        );
        assert_eq!(stats.wakeups, 1, "{idle:?}");
    }
}

/// A waker ends a `Recv` wait with no deadline at all, from another thread.
#[test]
fn recv_waker_wakes_an_idle_driver() {
    let mut b = driver("idle", None, IdleStrategy::Recv);
    let waker = b.waker();
    let t = std::thread::spawn(move || {
        b.drive(None).unwrap(); // nothing to do: parks until woken
        (Instant::now(), b.stats())
    });
    std::thread::sleep(Duration::from_millis(100));
    let woken_at = Instant::now();
    waker.wake().unwrap();
    let (returned_at, stats) = t.join().unwrap();
    assert!(returned_at >= woken_at, "returned before the wake");
    assert_eq!(stats.wakeups, 1);
    assert_eq!(stats.datagrams_read, 0);
}

/// An empty datagram from anywhere but the driver's own waker is not a wake-up: it is
/// another driver's keep-warm ping, counted and never handed to the endpoint (which
/// would drop it as malformed); a zero timeout reads without blocking.
#[test]
fn recv_empty_datagram_from_elsewhere_is_not_a_wake() {
    let mut b = driver("strict", None, IdleStrategy::Recv);
    let other = std::net::UdpSocket::bind(localhost()).unwrap();
    other.send_to(&[], b.local_addr()).unwrap();
    let start = Instant::now();
    while b.stats().pings_received == 0 {
        assert!(start.elapsed() < Duration::from_secs(5));
        b.drive(Some(Duration::ZERO)).unwrap();
    }
    assert_eq!(b.stats().wakeups, 0);
    assert_eq!(b.stats().pings_received, 1);
    assert_eq!(
        b.stats().datagrams_read,
        0,
        "a ping is not a datagram for the core"
    );
    assert_eq!(b.endpoint().stats().datagrams_in, 0);
    assert_eq!(b.endpoint().stats().dropped(DropReason::Malformed), 0);
    // Still blocking afterwards: a 20 ms wait with nothing to read takes about that long.
    let t = Instant::now();
    b.drive(Some(Duration::from_millis(20))).unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(10),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn ten_thousand_messages_at_20_percent_loss_polling_in_recv_mode() {
    let mut a = driver("a", lossy(4, 0.2), IdleStrategy::Recv);
    let mut b = driver("b", lossy(5, 0.2), IdleStrategy::Recv);
    exchange(&mut a, &mut b, 10_000);
    assert!(a.endpoint().stats().retransmissions > 0);
}

#[test]
fn a_socket_bound_by_the_caller_is_used_as_is() {
    for idle in [IdleStrategy::Block, IdleStrategy::Recv] {
        // Bound first (the address is known before any driver exists), then handed over:
        // no window in which another socket could take the port.
        let sa = std::net::UdpSocket::bind(localhost()).unwrap();
        let sb = std::net::UdpSocket::bind(localhost()).unwrap();
        let (aa, ab) = (sa.local_addr().unwrap(), sb.local_addr().unwrap());
        let config = |name: &str| {
            let mut c =
                DriverConfig::new("192.0.2.1:9".parse().unwrap(), ProcessId::named(name, 1));
            c.transport.cluster_id = 9;
            c.idle = idle;
            c
        };
        let mut a = Driver::from_socket(config("a"), sa).unwrap();
        let mut b = Driver::from_socket(config("b"), sb).unwrap();
        assert_eq!(
            (a.local_addr(), b.local_addr()),
            (aa, ab),
            "config.bind is not used"
        );
        exchange(&mut a, &mut b, 100);
    }
    // A socket that is not bound is refused.
    let unbound: std::net::UdpSocket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .unwrap()
    .into();
    let c = DriverConfig::new(localhost(), ProcessId::named("u", 1));
    match Driver::from_socket(c, unbound) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput),
        Ok(_) => panic!("an unbound socket was accepted"),
    }
}

#[test]
fn an_invalid_transport_config_is_refused_by_name() {
    let mut c = DriverConfig::new(localhost(), ProcessId::named("bad", 1));
    c.transport = TransportConfig {
        mtu: 100,
        ..TransportConfig::default()
    };
    let e = match Driver::bind(c) {
        Err(e) => e,
        Ok(_) => panic!("an mtu of 100 was accepted"),
    };
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let inner = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<sgmp_transport::TransportConfigError>())
        .expect("the typed error inside");
    assert_eq!(inner.field(), "mtu");
}
