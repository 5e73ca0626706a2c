//! The CPU a removal costs the node cores, without sockets, clocks or threads: N
//! `NodeCore`s (transport framing and CRC, engine, glue, membership service, as `sgmpd`
//! runs them) exchange their datagrams in memory; a member crashes, the ring detector
//! reports it, and the bench times the deliveries of the millisecond in which every
//! survivor installs the smaller view (the report, the M-sub, the acks, the M-com and
//! the installs, with whatever heartbeats fall in it). The crashed member then rejoins
//! as a new incarnation, untimed, so that every removal starts from N members.
//!
//! On a machine with fewer cores than members the commit of `sgmp-load view-change` is
//! this CPU spread over the cores, plus the system calls and wake-ups that the raw-UDP
//! pattern pays too (docs/bench/view_change_perf.md §9): the figure per datagram is
//! what the protocol adds to each step of the pattern.
//!
//! Three groups: `node_core_removal` (warm caches), `node_core_removal_cold` (each
//! delivery with its lines evicted to the shared L3) and `node_core_removal_dram` (to
//! memory: what a real step on a shared host meets).
//!
//! `cargo bench -p sgmp-benches --bench node_core`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgmp_benches::world::{World, EVICT_BYTES, EVICT_DRAM_BYTES};

fn removal(c: &mut Criterion) {
    removal_group(c, "node_core_removal", None, &[5, 17, 63]);
    removal_group(c, "node_core_removal_cold", Some(EVICT_BYTES), &[5, 17, 63]);
    // N = 5 only: writing 96 MiB before each of a removal's ~45 deliveries takes
    // about half a second per removal.
    removal_group(c, "node_core_removal_dram", Some(EVICT_DRAM_BYTES), &[5]);
}

/// The removal at each N of `sizes`; with `evict_bytes`, each delivery after that many
/// bytes were written over (untimed).
fn removal_group(c: &mut Criterion, name: &str, evict_bytes: Option<usize>, sizes: &[usize]) {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    for &n in sizes {
        let mut w = World::founded(n);
        w.evict = evict_bytes.map(|bytes| vec![0u8; bytes]);
        // Datagrams of a removal among n − 1 survivors: M-sub, ack and M-com to each
        // of the n − 2 others, and the detector's report.
        g.throughput(Throughput::Elements(3 * (n as u64 - 2) + 1));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let victim = n - 1;
                    total += w.removal(victim);
                    w.rejoin(victim);
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, removal);
criterion_main!(benches);
