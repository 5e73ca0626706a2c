//! The sgmp reliable channel ([`Driver`]): round trip and throughput.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sgmp_transport::{Driver, DriverConfig, IdleStrategy, ProcessId, SendError, TransportConfig};

use super::measure::{
    join, localhost, rtt_loop, send_error, spawn, stamp, stop_flag, Meter, RttAcc, ThrAcc,
};
use super::{CLUSTER, MAX_DATAGRAM, POLL_STOP, TAIL};

fn sgmp_driver(name: &str, idle: IdleStrategy) -> io::Result<Driver> {
    let mut c = DriverConfig::new(localhost(), ProcessId::named(name, 1));
    c.transport = TransportConfig {
        cluster_id: CLUSTER,
        max_peers: 4,
        ..TransportConfig::default()
    };
    c.idle = idle;
    Driver::bind(c)
}

pub(super) fn sgmp_rtt(
    idle: IdleStrategy,
    size: usize,
    dur: Duration,
    acc: &mut RttAcc,
) -> io::Result<()> {
    let mut a = sgmp_driver("load-client", idle)?;
    let mut b = sgmp_driver("load-server", idle)?;
    let (a_addr, b_addr, pb) = (a.local_addr(), b.local_addr(), b.endpoint().local_id());
    let waker = b.waker();
    let (stop, guard) = stop_flag();
    let server = spawn("sgmp-echo", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !stop.load(Ordering::Relaxed) {
            b.drive(Some(POLL_STOP))?;
            while let Some((from, n)) = b.poll_delivery(&mut buf) {
                b.send(from, a_addr, &buf[..n]).map_err(send_error)?;
            }
        }
        Ok(b.endpoint().stats())
    })?;
    let mut ping = vec![0x5a; size];
    let mut rx = vec![0u8; MAX_DATAGRAM];
    let result = rtt_loop(dur, acc, |seq, give_up| {
        stamp(&mut ping, seq);
        a.send(pb, b_addr, &ping).map_err(send_error)?;
        // The first wait needs no clock reading (the round just started, and POLL_STOP
        // is well within LOSS_TIMEOUT): raw UDP's and TCP's loops read none either.
        let mut wait = POLL_STOP;
        loop {
            a.drive(Some(wait))?;
            while let Some((_, n)) = a.poll_delivery(&mut rx) {
                if n == ping.len() && rx[..8] == ping[..8] {
                    return Ok(true);
                }
            }
            let now = Instant::now();
            if now >= give_up {
                return Ok(false);
            }
            wait = (give_up - now).min(POLL_STOP);
        }
    });
    drop(guard);
    // Best effort: the server also gives up waiting after POLL_STOP.
    let _ = waker.wake();
    let served = join(server)?;
    result?;
    let client = a.endpoint().stats();
    acc.datagrams += client.datagrams_out + served.datagrams_out;
    acc.retransmissions += client.retransmissions + served.retransmissions;
    Ok(())
}

pub(super) fn sgmp_throughput(
    idle: IdleStrategy,
    size: usize,
    dur: Duration,
    acc: &mut ThrAcc,
) -> io::Result<()> {
    let mut a = sgmp_driver("load-sender", idle)?;
    let mut b = sgmp_driver("load-receiver", idle)?;
    let (b_addr, pb) = (b.local_addr(), b.endpoint().local_id());
    let waker = b.waker();
    let (stop, guard) = stop_flag();
    let start = Instant::now();
    let receiver = spawn("sgmp-receiver", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut meter = Meter::new(start, dur);
        let mut got = 0u64;
        while !stop.load(Ordering::Relaxed) {
            b.drive(Some(POLL_STOP))?;
            while b.poll_delivery(&mut buf).is_some() {
                got += 1;
            }
            meter.observe(Instant::now(), got);
        }
        Ok(meter.delta(Instant::now(), got))
    })?;
    let msg = vec![0xa5u8; size];
    let (mut meter, mut dmeter) = (Meter::new(start, dur), Meter::new(start, dur));
    let mut sent = 0u64;
    let stop_at = start + dur + TAIL;
    let mut result = Ok(());
    loop {
        let now = Instant::now();
        meter.observe(now, sent);
        dmeter.observe(now, a.stats().datagrams_written);
        if now >= stop_at {
            break;
        }
        loop {
            match a.send(pb, b_addr, &msg) {
                Ok(()) => sent += 1,
                Err(SendError::WindowFull) => break,
                Err(e) => {
                    result = Err(send_error(e));
                    break;
                }
            }
        }
        if result.is_ok() {
            result = a.drive(Some((stop_at - now).min(POLL_STOP)));
        }
        if result.is_err() {
            break;
        }
    }
    let now = Instant::now();
    let (sent_n, sent_secs) = meter.delta(now, sent);
    let (datagrams, _) = dmeter.delta(now, a.stats().datagrams_written);
    drop(guard);
    let _ = waker.wake();
    let (got, secs) = join(receiver)?;
    result?;
    acc.received += got;
    acc.received_secs += secs;
    acc.sent += sent_n;
    acc.sent_secs += sent_secs;
    acc.datagrams += datagrams;
    acc.retransmissions += a.endpoint().stats().retransmissions;
    Ok(())
}
