//! Heap allocations in steady state, and the engine's memory per member, measured with a
//! counting global allocator (a report, not a criterion benchmark).
//!
//! `cargo bench -p sgmp-benches --bench alloc` (add `-- --json` for one JSON object)
//!
//! * **per view change**: a warmed-up in-memory cluster of 9 engines
//!   (`sgmp_membership::testkit::Cluster`, every buffer preallocated) runs 200 view
//!   changes (100 removals, 100 joins with State-Xfer); allocations divided by view
//!   changes and by engine messages delivered. `membership/tests/alloc.rs` asserts 0.
//! * **per transport message**: two transport endpoints exchange 64 B messages over the
//!   simulated network (`SimNet`) after a warm-up; allocations divided by messages.
//!   `transport/tests/alloc.rs` asserts 0 under loss and reordering.
//! * **bytes per member**: live heap bytes (allocated minus freed) after
//!   `Engine::new`, plus the `Engine` value itself, for `max_members` 8, 64 and 256,
//!   divided by `max_members`; once with the default `max_snapshot` (64 KiB, held twice:
//!   the snapshot to hand out and the one received) and once with `max_snapshot` 0.

use alloc_count::{counted, live_bytes, CountingAlloc};
use sgmp_membership::testkit::{member_of, Cluster};
use sgmp_membership::{Engine, EngineConfig};
use sgmp_transport::{Endpoint, FaultLayer, ProcessId, SimNet, Time, TransportConfig};

// Counts the allocations of this (the only) thread, and the process's live bytes.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

/// (view changes, engine messages delivered, allocations).
fn view_changes() -> (u64, u64, u64) {
    let cfg = EngineConfig {
        max_members: 16,
        max_snapshot: 256,
        ..EngineConfig::default()
    };
    let n = 9;
    let mut c = Cluster::new(n, 1, cfg);
    c.record_events = false;
    for e in c.engines.iter_mut() {
        e.set_snapshot(b"application state").unwrap();
    }
    // The junior member leaves and rejoins as a new incarnation, in slot n.
    let mut inc = 1u64;
    let mut cycle = |c: &mut Cluster, slot: usize| {
        c.suspect(0, slot);
        c.run_until_quiet(1_000_000);
        inc += 1;
        c.restart(slot, inc);
        c.join(slot, 0);
        c.run_until_quiet(1_000_000);
    };
    // Warm-up: every buffer meets its size (the restart's Engine::new allocates: it
    // is not part of the counted loop below, which reuses restarted engines).
    for _ in 0..3 {
        cycle(&mut c, n - 1);
    }
    let v0 = c.engines[0].view().version;
    let d0 = c.delivered;
    // Counted: removals and joins of members whose engines already exist (a removed
    // member's slot is restarted outside the count).
    let mut allocs = 0;
    for _ in 0..100 {
        let ((), a) = counted(|| {
            c.suspect(0, n - 1);
            c.run_until_quiet(1_000_000);
        });
        allocs += a;
        inc += 1;
        c.restart(n - 1, inc);
        let ((), a) = counted(|| {
            c.join(n - 1, 0);
            c.run_until_quiet(1_000_000);
        });
        allocs += a;
    }
    let v1 = c.engines[0].view().version;
    assert!(c.agreed(), "the cluster disagrees");
    (v1 - v0, c.delivered - d0, allocs)
}

/// (messages, allocations) between two endpoints over the simulated network.
fn transport_messages() -> (u64, u64) {
    let cfg = TransportConfig::default();
    let a_id = ProcessId::named("a", 1);
    let b_id = ProcessId::named("b", 1);
    let a_addr = "127.0.0.1:1".parse().unwrap();
    let b_addr = "127.0.0.1:2".parse().unwrap();
    let mut a = Endpoint::new(cfg, a_id);
    let mut b = Endpoint::new(cfg, b_id);
    let mut net = SimNet::new(FaultLayer::new(1), 4096, 2048);
    let mut buf = vec![0u8; cfg.max_message];
    let msg = [7u8; 64];
    let mut now = Time(1_000);
    let mut delivered = 0u64;
    let mut round = |now: &mut Time, delivered: &mut u64, a: &mut Endpoint, b: &mut Endpoint| {
        for _ in 0..8 {
            let _ = a.send(*now, b_id, b_addr, &msg);
            let _ = b.send(*now, a_id, a_addr, &msg);
        }
        for _ in 0..4 {
            *now = *now + 100;
            net.step(*now, &mut [&mut *a, &mut *b], &[a_addr, b_addr]);
            while let Some(_d) = a.poll_delivery(&mut buf) {
                *delivered += 1;
            }
            while let Some(_d) = b.poll_delivery(&mut buf) {
                *delivered += 1;
            }
        }
    };
    for _ in 0..200 {
        round(&mut now, &mut delivered, &mut a, &mut b);
    }
    let d0 = delivered;
    let ((), allocs) = counted(|| {
        for _ in 0..2000 {
            round(&mut now, &mut delivered, &mut a, &mut b);
        }
    });
    (delivered - d0, allocs)
}

/// Live heap bytes held by a new engine, plus the `Engine` value itself.
fn engine_bytes(max_members: usize, max_snapshot: usize) -> i64 {
    let cfg = EngineConfig {
        max_members,
        max_snapshot,
        ..EngineConfig::default()
    };
    let before = live_bytes();
    let e = Engine::new(cfg, member_of(0, 1));
    let held = live_bytes() - before;
    let bytes = held + std::mem::size_of::<Engine>() as i64;
    drop(e);
    bytes
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let (views, msgs, allocs) = view_changes();
    let (tmsgs, tallocs) = transport_messages();
    let sizes = [8usize, 64, 256];
    let default_snapshot = EngineConfig::default().max_snapshot;
    let mem: Vec<(usize, i64, i64)> = sizes
        .iter()
        .map(|&m| (m, engine_bytes(m, default_snapshot), engine_bytes(m, 0)))
        .collect();
    let per = |a: u64, b: u64| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    if json {
        let mut s = format!(
            "{{\"mode\":\"alloc\",\"view_changes\":{views},\"engine_messages\":{msgs},\"view_change_allocations\":{allocs},\
             \"allocations_per_view_change\":{},\"allocations_per_engine_message\":{},\
             \"transport_messages\":{tmsgs},\"transport_allocations\":{tallocs},\"allocations_per_transport_message\":{}",
            per(allocs, views),
            per(allocs, msgs),
            per(tallocs, tmsgs)
        );
        for (m, b, b0) in &mem {
            s.push_str(&format!(
                ",\"engine_bytes_{m}\":{b},\"engine_bytes_per_member_{m}\":{},\"engine_bytes_no_snapshot_{m}\":{b0},\"engine_bytes_per_member_no_snapshot_{m}\":{}",
                *b / *m as i64,
                *b0 / *m as i64
            ));
        }
        s.push('}');
        println!("{s}");
        return;
    }
    println!("Heap allocations in steady state (counting global allocator)\n");
    println!(
        "{:<46} {:>10} {:>12} {:>10}",
        "path", "units", "allocations", "per unit"
    );
    println!(
        "{:<46} {:>10} {:>12} {:>10.3}",
        "engine: view changes (9 members, remove + join)",
        views,
        allocs,
        per(allocs, views)
    );
    println!(
        "{:<46} {:>10} {:>12} {:>10.3}",
        "engine: messages delivered in those",
        msgs,
        allocs,
        per(allocs, msgs)
    );
    println!(
        "{:<46} {:>10} {:>12} {:>10.3}",
        "transport: 64 B messages between 2 endpoints",
        tmsgs,
        tallocs,
        per(tallocs, tmsgs)
    );
    println!(
        "\nEngine memory (live heap after Engine::new + size_of::<Engine>() = {} B)\n",
        std::mem::size_of::<Engine>()
    );
    println!(
        "{:>12} {:>20} {:>14} {:>22} {:>16}",
        "max_members",
        format!("bytes (snap {} KiB)", default_snapshot / 1024),
        "per member",
        "bytes (max_snapshot 0)",
        "per member"
    );
    for (m, b, b0) in &mem {
        println!(
            "{:>12} {:>20} {:>14} {:>22} {:>16}",
            m,
            b,
            b / *m as i64,
            b0,
            b0 / *m as i64
        );
    }
}
