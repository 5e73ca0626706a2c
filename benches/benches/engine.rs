//! Engine benchmarks: encode/decode of each membership message kind, and the CPU cost
//! of one full view change among N in-memory engines (no transport, ideal network).
//!
//! `cargo bench -p sgmp-benches --bench engine`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sgmp_membership::msg::{decode, Msg, MsgKind, Writer};
use sgmp_membership::testkit::{member_of, Cluster};
use sgmp_membership::{EngineConfig, ProcessId, Proposal, Update};

fn sample_update(n: usize) -> Update {
    let mut u = Update::with_capacity(n);
    u.removes.push(ProcessId::named("gone", 1));
    for i in 0..n {
        u.adds.push(member_of(i, 2));
    }
    u
}

/// Encodes one message of `kind` with a 2-entry gossip list and small updates.
fn encode(buf: &mut Vec<u8>, kind: MsgKind) {
    let gossip = [ProcessId::named("s1", 1), ProcessId::named("s2", 1)];
    let u = sample_update(2);
    let mut w = Writer::start(buf, kind, 7, &gossip);
    match kind {
        MsgKind::MSub | MsgKind::RSub => {
            w.u64(8);
            w.update(&u);
        }
        MsgKind::MSubAck | MsgKind::RSubAck => w.u64(8),
        MsgKind::MCom | MsgKind::RCom => {
            w.u64(8);
            w.update(&u);
            w.flag(true);
            w.update(&u);
        }
        MsgKind::StateXfer => {
            w.u64(8);
            w.update(&u);
            let members: Vec<_> = (0..5).map(|i| member_of(i, 1)).collect();
            w.members(&members);
            w.tag_table(&u.tags);
            w.bytes(&[0u8; 64]);
        }
        MsgKind::StateXferAck | MsgKind::RInt | MsgKind::RIntResp => {
            if kind == MsgKind::StateXferAck {
                w.u64(8);
            }
            let mut p = Proposal::with_capacity(4);
            p.update = u.clone();
            p.version = 9;
            p.initiator = ProcessId::named("init", 1);
            w.state(8, Some(&p), &u);
        }
        MsgKind::JoinReq => {
            w.member(&member_of(9, 1));
            w.tags(&[]);
        }
        MsgKind::TagReq => w.tags(&[]),
        MsgKind::ClientOps => {
            let ops: Vec<_> = (0..8)
                .map(|i| {
                    sgmp_membership::view::ClientOp::add(
                        ProcessId::named(&format!("c{i}"), 1),
                        member_of(i, 1).addr,
                        false,
                    )
                })
                .collect();
            w.client_ops(&ops);
        }
        MsgKind::LeaveReq | MsgKind::Heartbeat => {}
    }
}

fn codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("msg");
    for kind in MsgKind::ALL {
        let mut buf = Vec::with_capacity(4096);
        encode(&mut buf, kind);
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function(BenchmarkId::new("encode", kind.name()), |b| {
            b.iter(|| {
                buf.clear();
                encode(&mut buf, kind);
                buf.len()
            })
        });
        let mut m = Msg::with_limits(16, 16, 1024);
        g.bench_function(BenchmarkId::new("decode", kind.name()), |b| {
            b.iter(|| decode(&buf, 16, 1024, &mut m).is_ok())
        });
    }
    g.finish();
}

/// One removal and one (re)join: two full view changes among `n` engines, including
/// every member's processing and the State-Xfer handshake.
fn view_change(c: &mut Criterion) {
    let mut g = c.benchmark_group("view_change");
    g.sample_size(20);
    for n in [3usize, 5, 9, 17, 33, 63] {
        let cfg = EngineConfig {
            max_members: 64,
            max_snapshot: 64,
            ..EngineConfig::default()
        };
        let mut cl = Cluster::new(n, 0, cfg);
        cl.record_events = false;
        let mut inc = 1u64;
        let victim = n - 1;
        g.throughput(Throughput::Elements(2));
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                cl.suspect(0, victim);
                cl.run_until_quiet(1_000_000);
                inc += 1;
                cl.restart(victim, inc);
                cl.join(victim, 0);
                cl.run_until_quiet(1_000_000);
                cl.engines[0].view().version
            })
        });
    }
    g.finish();
}

criterion_group!(benches, codec, view_change);
criterion_main!(benches);
