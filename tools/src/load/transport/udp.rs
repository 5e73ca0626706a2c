//! Raw UDP: std sockets set up like the driver's; round trip and throughput.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::measure::{
    join, localhost, rtt_loop, spawn, stamp, stop_flag, transient, Meter, RttAcc, ThrAcc,
};
use super::{Mode, LOSS_TIMEOUT, MAX_DATAGRAM, MIN_SIZE, POLL_STOP, SOCKET_BUFFER, TAIL};
use crate::load::report::Latency;

/// A UDP socket on 127.0.0.1 set up like the driver's (buffer sizes, no address reuse).
fn udp_socket(mode: Mode, read_timeout: Duration) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(false)?;
    s.set_recv_buffer_size(SOCKET_BUFFER)?;
    s.set_send_buffer_size(SOCKET_BUFFER)?;
    s.bind(&localhost().into())?;
    let s: UdpSocket = s.into();
    if mode.spinning() {
        s.set_nonblocking(true)?;
    } else {
        s.set_read_timeout(Some(read_timeout))?;
    }
    Ok(s)
}

/// `send_to`, retried while the socket would block (bounded).
fn udp_send(s: &UdpSocket, buf: &[u8], to: SocketAddr) -> io::Result<()> {
    for _ in 0..10_000_000u32 {
        match s.send_to(buf, to) {
            Ok(_) => return Ok(()),
            Err(e) if transient(&e) => std::hint::spin_loop(),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        "udp send blocked for too long",
    ))
}

/// Wakes a UDP thread blocked in `recv_from` (it then sees its stop flag).
fn poke(from: &UdpSocket, to: SocketAddr) {
    // Best effort: a blocked reader also gives up after its read timeout.
    let _ = from.send_to(&[], to);
}

pub(super) fn udp_rtt(mode: Mode, size: usize, dur: Duration, acc: &mut RttAcc) -> io::Result<()> {
    let client = udp_socket(mode, LOSS_TIMEOUT)?;
    let server = udp_socket(mode, POLL_STOP)?;
    let server_addr = server.local_addr()?;
    let (stop, guard) = stop_flag();
    let echo = spawn("udp-echo", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        while !stop.load(Ordering::Relaxed) {
            match server.recv_from(&mut buf) {
                Ok((0, _)) => {} // a poke
                Ok((n, from)) => udp_send(&server, &buf[..n], from)?,
                Err(e) if transient(&e) => std::hint::spin_loop(),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })?;
    let mut ping = vec![0x5a; size];
    let mut rx = vec![0u8; MAX_DATAGRAM];
    let result = rtt_loop(dur, acc, |seq, give_up| {
        stamp(&mut ping, seq);
        udp_send(&client, &ping, server_addr)?;
        loop {
            match client.recv_from(&mut rx) {
                Ok((n, _)) if n == ping.len() && rx[..8] == ping[..8] => return Ok(true),
                Ok(_) => {} // a late echo of a ping counted as lost
                Err(e) if transient(&e) => {
                    if Instant::now() >= give_up {
                        return Ok(false);
                    }
                    std::hint::spin_loop();
                }
                Err(e) => return Err(e),
            }
        }
    });
    drop(guard);
    poke(&client, server_addr);
    join(echo)?;
    result.map(drop)
}

/// Raw UDP round trip on 127.0.0.1 (blocking, `size`-byte pings, one echo thread) for
/// `dur`: the reference the membership modes compare their latencies with, measured in
/// the same run and under the same load.
pub fn udp_round_trip(size: usize, dur: Duration) -> io::Result<Latency> {
    let mut acc = RttAcc::new()?;
    udp_rtt(Mode::Block, size.max(MIN_SIZE as usize), dur, &mut acc)?;
    Ok(acc.summary().latency)
}

pub(super) fn udp_throughput(
    mode: Mode,
    size: usize,
    dur: Duration,
    acc: &mut ThrAcc,
) -> io::Result<()> {
    let sender = udp_socket(mode, POLL_STOP)?;
    let sink = udp_socket(mode, POLL_STOP)?;
    let sink_addr = sink.local_addr()?;
    let (stop, guard) = stop_flag();
    let start = Instant::now();
    let receiver = spawn("udp-receiver", move || {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut meter = Meter::new(start, dur);
        let mut got = 0u64;
        while !stop.load(Ordering::Relaxed) {
            match sink.recv_from(&mut buf) {
                Ok((0, _)) => {} // a poke
                Ok(_) => got += 1,
                Err(e) if transient(&e) => std::hint::spin_loop(),
                Err(e) => return Err(e),
            }
            meter.observe(Instant::now(), got);
        }
        Ok(meter.delta(Instant::now(), got))
    })?;
    let msg = vec![0xa5u8; size];
    let mut meter = Meter::new(start, dur);
    let mut sent = 0u64;
    let stop_at = start + dur + TAIL;
    let mut result = Ok(());
    loop {
        let now = Instant::now();
        meter.observe(now, sent);
        if now >= stop_at {
            break;
        }
        result = udp_send(&sender, &msg, sink_addr);
        if result.is_err() {
            break;
        }
        sent += 1;
    }
    let (sent_n, sent_secs) = meter.delta(Instant::now(), sent);
    drop(guard);
    poke(&sender, sink_addr);
    let (got, secs) = join(receiver)?;
    result?;
    acc.received += got;
    acc.received_secs += secs;
    acc.sent += sent_n;
    acc.sent_secs += sent_secs;
    acc.datagrams += sent_n;
    Ok(())
}
