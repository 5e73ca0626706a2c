//! Plumbing shared by the measurements: accumulators over rounds, the round-trip loop,
//! the throughput meter, helper threads with a stop flag, and error helpers.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sgmp_transport::SendError;

use super::report::{RoundTrip, Throughput};
use super::LOSS_TIMEOUT;
use crate::load::report::{ratio, Latency};

/// Round-trip samples accumulated over rounds.
pub(super) struct RttAcc {
    hist: Histogram<u64>,
    lost: u64,
    rounds: u64,
    pub(super) datagrams: u64,
    pub(super) retransmissions: u64,
}

impl RttAcc {
    pub(super) fn new() -> io::Result<RttAcc> {
        Ok(RttAcc {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).map_err(io::Error::other)?,
            lost: 0,
            rounds: 0,
            datagrams: 0,
            retransmissions: 0,
        })
    }

    pub(super) fn summary(&self) -> RoundTrip {
        RoundTrip {
            latency: Latency::from_histogram(&self.hist),
            lost: self.lost,
            datagrams_per_round: ratio(self.datagrams as f64, self.rounds as f64),
            retransmissions: self.retransmissions,
        }
    }
}

/// Throughput counts accumulated over rounds.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ThrAcc {
    pub(super) received: u64,
    pub(super) received_secs: f64,
    pub(super) sent: u64,
    pub(super) sent_secs: f64,
    pub(super) datagrams: u64,
    pub(super) retransmissions: u64,
}

impl ThrAcc {
    pub(super) fn summary(&self) -> Throughput {
        Throughput {
            msgs_per_s: ratio(self.received as f64, self.received_secs),
            sent_per_s: ratio(self.sent as f64, self.sent_secs),
            datagrams_per_s: ratio(self.datagrams as f64, self.sent_secs),
            retransmissions: self.retransmissions,
            secs: self.received_secs,
        }
    }
}

/// Sets the flag when dropped, so that a helper thread stops even if the caller bails out
/// with an error. The helper must also be woken (see each measurement).
pub(super) struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub(super) fn stop_flag() -> (Arc<AtomicBool>, StopOnDrop) {
    let flag = Arc::new(AtomicBool::new(false));
    (Arc::clone(&flag), StopOnDrop(flag))
}

pub(super) fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<JoinHandle<io::Result<T>>> {
    thread::Builder::new().name(name.to_string()).spawn(f)
}

pub(super) fn join<T>(h: JoinHandle<io::Result<T>>) -> io::Result<T> {
    h.join()
        .map_err(|_| io::Error::other("a measurement thread panicked"))?
}

pub(super) fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Timeouts and "would block" (the same kind on Unix), and interruptions.
pub(super) fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

pub(super) fn send_error(e: SendError) -> io::Error {
    io::Error::other(e.to_string())
}

/// Runs `round(seq, give_up)` back to back for `dur` and records the time of each one
/// that returns `true` (after the first tenth, a warm-up); returns the rounds run.
pub(super) fn rtt_loop(
    dur: Duration,
    acc: &mut RttAcc,
    mut round: impl FnMut(u64, Instant) -> io::Result<bool>,
) -> io::Result<u64> {
    let start = Instant::now();
    let (warm, end) = (start + dur / 10, start + dur);
    let mut seq = 0u64;
    loop {
        let t = Instant::now();
        if t >= end {
            break;
        }
        seq += 1;
        if round(seq, t + LOSS_TIMEOUT)? {
            let ns = t.elapsed().as_nanos() as u64;
            if t >= warm {
                acc.hist.saturating_record(ns.max(1));
            }
        } else {
            acc.lost += 1;
        }
    }
    acc.rounds += seq;
    Ok(seq)
}

/// Writes the sequence number into the first 8 bytes of a ping.
pub(super) fn stamp(ping: &mut [u8], seq: u64) {
    ping[..8].copy_from_slice(&seq.to_le_bytes());
}

/// Counts of one side of a throughput measurement at the warm-up and end marks.
#[derive(Clone, Copy, Debug)]
pub(super) struct Meter {
    warm: Instant,
    end: Instant,
    at_warm: Option<(Instant, u64)>,
    at_end: Option<(Instant, u64)>,
}

impl Meter {
    pub(super) fn new(start: Instant, dur: Duration) -> Meter {
        Meter {
            warm: start + dur / 10,
            end: start + dur,
            at_warm: None,
            at_end: None,
        }
    }

    pub(super) fn observe(&mut self, now: Instant, count: u64) {
        if self.at_warm.is_none() && now >= self.warm {
            self.at_warm = Some((now, count));
        }
        if self.at_end.is_none() && now >= self.end {
            self.at_end = Some((now, count));
        }
    }

    /// The count between the marks and the seconds between them (the end mark defaults
    /// to `now`, `count`).
    pub(super) fn delta(&self, now: Instant, count: u64) -> (u64, f64) {
        let Some((t0, c0)) = self.at_warm else {
            return (0, 0.0);
        };
        let (t1, c1) = self.at_end.unwrap_or((now, count));
        (
            c1.saturating_sub(c0),
            t1.saturating_duration_since(t0).as_secs_f64(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_counts_between_marks() {
        let t = Instant::now();
        let mut m = Meter::new(t, Duration::from_secs(1));
        m.observe(t, 0);
        m.observe(t + Duration::from_millis(100), 10);
        m.observe(t + Duration::from_millis(600), 60);
        m.observe(t + Duration::from_millis(1100), 110);
        m.observe(t + Duration::from_millis(1200), 500);
        let (n, secs) = m.delta(t + Duration::from_secs(5), 999);
        assert!((secs - 1.0).abs() < 1e-9);
        assert_eq!(n, 100);
    }
}
