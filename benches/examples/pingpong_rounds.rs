//! N ping-pong rounds of the endpoint core alone, making the same calls as
//! `benches/transport.rs`'s `PingPong::round` (a 64 B message out, its echo back), for
//! counting instructions per round: run it under cachegrind for two values of N and
//! divide the difference in instructions by the difference in rounds, e.g.
//!
//! ```text
//! cargo build --release -p sgmp-benches --example pingpong_rounds
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/pingpong_rounds 10000
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/pingpong_rounds 30000
//! ```
use sgmp_transport::{Endpoint, ProcessId, Time, TransportConfig};
use std::hint::black_box;
use std::net::SocketAddr;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: pingpong_rounds ROUNDS");
    let cfg = TransportConfig::default();
    let (pa, pb) = (
        ProcessId::named("load-client", 1),
        ProcessId::named("load-server", 1),
    );
    let mut a = Endpoint::new(cfg, pa);
    let mut b = Endpoint::new(cfg, pb);
    let mut now = Time(1);
    let mut dgram = vec![0u8; 1400];
    let ping = vec![0x5au8; 64];
    let mut echo = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    for _ in 0..n {
        a.send(now, pb, addr(2), &ping).unwrap();
        a.handle_timeout(now);
        while let Some(t) = a.poll_transmit(now, &mut dgram) {
            b.handle_datagram(now + 5, addr(1), &dgram[..t.len]);
            sent += 1;
        }
        black_box(a.poll_timeout());
        now = now + 5;
        b.handle_timeout(now);
        while b.poll_transmit(now, &mut dgram).is_some() {
            sent += 1;
        }
        let (_, k) = b.poll_delivery(&mut echo).unwrap();
        b.send(now, pa, addr(1), &echo[..k]).unwrap();
        b.handle_timeout(now);
        while let Some(t) = b.poll_transmit(now, &mut dgram) {
            a.handle_datagram(now + 5, addr(2), &dgram[..t.len]);
            sent += 1;
        }
        black_box(b.poll_timeout());
        now = now + 5;
        a.handle_timeout(now);
        while a.poll_transmit(now, &mut dgram).is_some() {
            sent += 1;
        }
        let (_, m) = a.poll_delivery(&mut echo).unwrap();
        assert_eq!(m, 64);
        now = now + 1;
    }
    assert_eq!(sent, 2 * n);
    println!("{sent} {:?}", a.stats());
}
