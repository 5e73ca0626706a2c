//! TCP with `TCP_NODELAY`: round trip.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::measure::{join, localhost, rtt_loop, spawn, stamp, stop_flag, transient, RttAcc};
use super::{Mode, LOSS_TIMEOUT, POLL_STOP};

/// Reads exactly `buf.len()` bytes; `false` on end of stream, or when `give_up` says so
/// while nothing arrives.
fn read_full(s: &mut TcpStream, buf: &mut [u8], give_up: &dyn Fn() -> bool) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match s.read(&mut buf[got..]) {
            Ok(0) => return Ok(false),
            Ok(n) => got += n,
            Err(e) if transient(&e) => {
                if give_up() {
                    return Ok(false);
                }
                std::hint::spin_loop();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Writes all of `buf`, retrying while the socket would block (bounded).
fn write_full(s: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
    let mut put = 0;
    let mut spins = 0u32;
    while put < buf.len() {
        match s.write(&buf[put..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => put += n,
            Err(e) if transient(&e) => {
                spins += 1;
                if spins > 10_000_000 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "tcp write blocked for too long",
                    ));
                }
                std::hint::spin_loop();
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tcp_setup(s: &TcpStream, mode: Mode, read_timeout: Duration) -> io::Result<()> {
    s.set_nodelay(true)?;
    if mode.spinning() {
        s.set_nonblocking(true)
    } else {
        s.set_read_timeout(Some(read_timeout))
    }
}

pub(super) fn tcp_rtt(mode: Mode, size: usize, dur: Duration, acc: &mut RttAcc) -> io::Result<()> {
    let listener = TcpListener::bind(localhost())?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    tcp_setup(&client, mode, LOSS_TIMEOUT)?;
    tcp_setup(&server, mode, POLL_STOP)?;
    let (stop, guard) = stop_flag();
    let echo = spawn("tcp-echo", move || {
        let mut buf = vec![0u8; size];
        let stopped = || stop.load(Ordering::Relaxed);
        while read_full(&mut server, &mut buf, &stopped)? {
            write_full(&mut server, &buf)?;
        }
        Ok(())
    })?;
    let mut ping = vec![0x5a; size];
    let mut rx = vec![0u8; size];
    let result = rtt_loop(dur, acc, |seq, give_up| {
        stamp(&mut ping, seq);
        write_full(&mut client, &ping)?;
        if !read_full(&mut client, &mut rx, &|| Instant::now() >= give_up)? {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "tcp echo did not come back",
            ));
        }
        Ok(rx[..8] == ping[..8])
    });
    drop(guard);
    drop(client); // end of stream: the echo thread returns at once
    join(echo)?;
    result.map(drop)
}
