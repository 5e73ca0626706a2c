//! Transport benchmarks, no sockets: encode/decode of each datagram kind (the `wire`
//! module), and the sans-IO endpoint's cost per message between two in-memory endpoints
//! (`send` → `poll_transmit` → `handle_datagram` → `poll_delivery`, acks flowing back),
//! for 64 B and 1 KiB messages, one per datagram or coalesced in batches of 32; and one
//! ping-pong round trip (a 64 B message out, its echo back, each ack riding on the next
//! datagram) with the calls a [`Driver`](sgmp_transport::Driver) makes around each
//! datagram, i.e. the core's share of `sgmp-load transport`'s round trip.
//!
//! `cargo bench -p sgmp-benches --bench transport`

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgmp_transport::wire::{self, Header, Kind, Writer};
use sgmp_transport::{Endpoint, ProcessId, Time, TransportConfig};

const MTU: usize = 1400;

fn header(kind: Kind) -> Header {
    Header {
        kind,
        cluster_id: 7,
        sender: ProcessId::named("node-a", 3),
        receiver_incarnation: 5,
        ack: 1_000,
        sack_offset: 0,
        sack: 0b1011,
    }
}

/// One datagram of each kind, as `(name, encoder)`; an encoder writes into `buf` and
/// returns the length.
type Encoder = Box<dyn Fn(&mut [u8]) -> usize>;

fn datagrams() -> Vec<(&'static str, Encoder)> {
    let data = |frames: usize, size: usize| -> Encoder {
        let payload = vec![0xabu8; size];
        Box::new(move |buf: &mut [u8]| {
            let mut w = Writer::new(buf, &header(Kind::Data)).expect("mtu buffer");
            for i in 0..frames {
                assert!(w.push_frame(2_000 + i as u64, true, &payload));
            }
            w.finish(0)
        })
    };
    vec![
        ("data_1x64B", data(1, 64)),
        ("data_17x64B", data(17, 64)),
        ("data_1x1KiB", data(1, 1024)),
        (
            "ack",
            Box::new(|buf: &mut [u8]| {
                Writer::new(buf, &header(Kind::Ack))
                    .expect("mtu buffer")
                    .finish(0)
            }),
        ),
        (
            "keepalive",
            Box::new(|buf: &mut [u8]| {
                Writer::new(buf, &header(Kind::Keepalive))
                    .expect("mtu buffer")
                    .finish(123_456_789)
            }),
        ),
        (
            "probe_64B",
            Box::new(|buf: &mut [u8]| {
                wire::encode_probe(buf, 7, ProcessId::named("node-a", 3), &[0x11; 64])
                    .expect("fits")
            }),
        ),
    ]
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire");
    let max_frame = wire::frame_capacity(MTU);
    for (name, encode) in datagrams() {
        let mut buf = vec![0u8; MTU];
        let len = encode(&mut buf);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(BenchmarkId::new("encode", name), |b| {
            b.iter(|| encode(black_box(&mut buf)))
        });
        let bytes = buf[..len].to_vec();
        g.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| {
                let d = wire::decode(black_box(&bytes), max_frame).expect("valid");
                // Walk the frames too: the receiver always does.
                match d.body {
                    wire::Body::Data(frames) => frames.map(|f| f.payload.len()).sum(),
                    _ => 0usize,
                }
            })
        });
    }
    g.finish();
}

/// Two endpoints wired back to back, with a clock that moves 10 µs per step.
struct Pair {
    a: Endpoint,
    b: Endpoint,
    pb: ProcessId,
    now: Time,
    dgram: Vec<u8>,
    out: Vec<u8>,
    msg: Vec<u8>,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], port))
}

impl Pair {
    fn new(size: usize) -> Pair {
        let cfg = TransportConfig {
            max_peers: 4,
            ..TransportConfig::default()
        };
        let (pa, pb) = (ProcessId::named("a", 1), ProcessId::named("b", 1));
        Pair {
            a: Endpoint::new(cfg, pa),
            b: Endpoint::new(cfg, pb),
            pb,
            now: Time(1),
            dgram: vec![0u8; MTU],
            out: vec![0u8; 64 * 1024],
            msg: vec![0x5au8; size],
        }
    }

    /// Sends `batch` messages from a to b and delivers them; b's acks go back. Returns
    /// the messages delivered.
    fn step(&mut self, batch: usize) -> usize {
        let now = self.now;
        for _ in 0..batch {
            self.a
                .send(now, self.pb, addr(2), &self.msg)
                .expect("the window is acked every step");
        }
        while let Some(t) = self.a.poll_transmit(now, &mut self.dgram) {
            self.b.handle_datagram(now, addr(1), &self.dgram[..t.len]);
        }
        let mut got = 0;
        while self.b.poll_delivery(&mut self.out).is_some() {
            got += 1;
        }
        self.b.handle_timeout(now);
        while let Some(t) = self.b.poll_transmit(now, &mut self.dgram) {
            self.a.handle_datagram(now, addr(2), &self.dgram[..t.len]);
        }
        self.a.handle_timeout(now);
        self.now = now + 10;
        got
    }
}

fn endpoint(c: &mut Criterion) {
    let mut g = c.benchmark_group("endpoint");
    for (label, size) in [("64B", 64usize), ("1KiB", 1024)] {
        for batch in [1usize, 32] {
            let mut pair = Pair::new(size);
            // Warm the windows and the RTT estimator.
            for _ in 0..1_000 {
                pair.step(batch);
            }
            g.throughput(Throughput::Elements(batch as u64));
            g.bench_function(BenchmarkId::new(label, format!("batch{batch}")), |b| {
                b.iter(|| {
                    let got = pair.step(batch);
                    debug_assert_eq!(got, batch);
                    got
                })
            });
            let (sa, sb) = (pair.a.stats(), pair.b.stats());
            assert_eq!(sa.messages_sent, sb.messages_delivered, "all delivered");
            assert_eq!(sa.retransmissions, 0, "no loss, no retransmission");
        }
    }
    g.finish();
}

/// Two endpoints playing ping-pong with one 64 B message, as `sgmp-load transport`'s
/// round trip does over sockets.
struct PingPong {
    a: Endpoint,
    b: Endpoint,
    pa: ProcessId,
    pb: ProcessId,
    now: Time,
    dgram: Vec<u8>,
    ping: Vec<u8>,
    echo: Vec<u8>,
}

impl PingPong {
    fn new() -> PingPong {
        let cfg = TransportConfig::default();
        let (pa, pb) = (
            ProcessId::named("load-client", 1),
            ProcessId::named("load-server", 1),
        );
        PingPong {
            a: Endpoint::new(cfg, pa),
            b: Endpoint::new(cfg, pb),
            pa,
            pb,
            now: Time(1),
            dgram: vec![0u8; MTU],
            ping: vec![0x5au8; 64],
            echo: vec![0u8; 64 * 1024],
        }
    }

    /// One round trip, with the endpoint calls `Driver::drive` and the echo loop make
    /// around each datagram: queue the message, flush (timers, transmit), compute the
    /// wait; the receiver reads the datagram, runs its end-of-drive flush (timers,
    /// transmit: nothing, the ack is delayed) and polls the delivery. Each ack rides on
    /// the next datagram. Returns the datagrams sent (2).
    fn round(&mut self) -> usize {
        let mut sent = 0;
        // Ping.
        let now = self.now;
        let msg = &self.ping[..];
        self.a.send(now, self.pb, addr(2), msg).expect("window");
        self.a.handle_timeout(now);
        while let Some(t) = self.a.poll_transmit(now, &mut self.dgram) {
            self.b
                .handle_datagram(now + 5, addr(1), &self.dgram[..t.len]);
            sent += 1;
        }
        black_box(self.a.poll_timeout());
        let now = now + 5;
        self.b.handle_timeout(now);
        while self.b.poll_transmit(now, &mut self.dgram).is_some() {
            sent += 1;
        }
        let (_, n) = self
            .b
            .poll_delivery(&mut self.echo)
            .expect("ping delivered");
        // Echo.
        self.b
            .send(now, self.pa, addr(1), &self.echo[..n])
            .expect("window");
        self.b.handle_timeout(now);
        while let Some(t) = self.b.poll_transmit(now, &mut self.dgram) {
            self.a
                .handle_datagram(now + 5, addr(2), &self.dgram[..t.len]);
            sent += 1;
        }
        black_box(self.b.poll_timeout());
        let now = now + 5;
        self.a.handle_timeout(now);
        while self.a.poll_transmit(now, &mut self.dgram).is_some() {
            sent += 1;
        }
        let (_, m) = self
            .a
            .poll_delivery(&mut self.echo)
            .expect("echo delivered");
        debug_assert_eq!(m, 64);
        self.now = now + 1;
        sent
    }
}

fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong");
    let mut pp = PingPong::new();
    for _ in 0..1_000 {
        assert_eq!(pp.round(), 2, "one datagram each way, acks piggy-backed");
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("64B_round_trip", |b| b.iter(|| pp.round()));
    g.finish();
    let (sa, sb) = (pp.a.stats(), pp.b.stats());
    assert_eq!(sa.acks_sent + sb.acks_sent, 0, "no ack-only datagram");
    assert_eq!(sa.retransmissions + sb.retransmissions, 0);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = codec, endpoint, pingpong
}
criterion_main!(benches);
