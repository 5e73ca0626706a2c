//! Zero allocation on the hot path: after warm-up, whole view changes (submit, acks,
//! commit and install at every member; a join with State-Xfer; a reconfiguration after
//! the mgr crashes) allocate nothing. A counting global allocator proves it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sgmp_membership::engine::Status;
use sgmp_membership::testkit::Cluster;
use sgmp_membership::EngineConfig;

struct Counting;

// Per thread: the counted work runs on the test's own thread, while the test harness
// (another thread) may allocate at the same time, e.g. to report the other test's
// result; a process-wide counter made `view_changes_allocate_nothing_after_warm_up`
// fail now and then (7 allocations counted once in a `cargo test --workspace`).
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Kept from when the counter was global: tests of this binary run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.with(Cell::get) - before)
}

/// One removal (false suspicion at the mgr) and one join, each a full view change.
fn remove_and_join(c: &mut Cluster, mgr: usize, victim: usize, joiner: usize) {
    c.suspect(mgr, victim);
    c.run_until_quiet(100_000);
    c.join(joiner, mgr);
    c.run_until_quiet(100_000);
}

#[test]
fn view_changes_allocate_nothing_after_warm_up() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = EngineConfig {
        max_members: 16,
        max_snapshot: 256,
        ..EngineConfig::default()
    };
    let mut c = Cluster::new(7, 9, cfg);
    c.record_events = false;
    for e in c.engines.iter_mut() {
        e.set_snapshot(b"application state");
    }
    // Warm-up: one of each kind of view change, so every buffer has met its size.
    remove_and_join(&mut c, 0, 6, 7);
    c.crash(0);
    c.advance(3_000_000, 10_000);
    assert!(c.engines[1].is_mgr());
    remove_and_join(&mut c, 1, 5, 8);
    let v0 = c.engines[1].view().version;

    let ((), allocs) = counted(|| {
        remove_and_join(&mut c, 1, 4, 9);
        remove_and_join(&mut c, 1, 3, 10);
        remove_and_join(&mut c, 1, 7, 11);
        // The mgr crashes; n2 reconfigures (R-int, R-sub, R-com) and takes over.
        c.crash(1);
        c.advance(3_000_000, 10_000);
    });
    let v1 = c.engines[2].view().version;
    assert!(c.engines[2].is_mgr());
    assert_eq!(c.engines[2].status(), Status::Member);
    // Every member of the mgr's view holds that same view (falsely suspected members
    // outside it may not have noticed their exclusion yet).
    let view = c.engines[2].view().clone();
    for m in &view.members {
        let i = c.engine_at(m.addr).unwrap();
        assert_eq!(c.engines[i].view(), &view, "n{i}");
    }
    assert!(v1 >= v0 + 7, "view changes happened: {v0} -> {v1}");
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations during {} view changes",
        v1 - v0
    );
}

#[test]
fn client_changes_commit_without_allocating() {
    let _one_at_a_time = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use sgmp_membership::view::ClientOp;
    use sgmp_membership::ProcessId;
    let cfg = EngineConfig {
        max_members: 8,
        max_client_ops: 64,
        max_pending_client_ops: 256,
        ..EngineConfig::default()
    };
    let mut c = Cluster::new(5, 0, cfg);
    c.record_events = false;
    c.run_until_quiet(100_000);
    let addr = "127.0.0.1:9".parse().unwrap();
    let ops: Vec<ClientOp> = (0..200u64)
        .map(|i| ClientOp::add(ProcessId::named("client", i + 1), addr, false))
        .collect();
    let removes: Vec<ClientOp> = ops.iter().map(|o| ClientOp::remove(o.id)).collect();
    // Warm-up: a full batch through a non-mgr member (forwarded) and at the mgr.
    let now = c.now;
    c.engines[3].request_client_ops(now, &ops[..64]);
    c.flush(3);
    c.run_until_quiet(100_000);
    let v0 = c.engines[0].view().version;
    let ((), allocs) = counted(|| {
        let now = c.now;
        c.engines[3].request_client_ops(now, &ops[64..]);
        c.flush(3);
        c.run_until_quiet(100_000);
        c.engines[0].request_client_ops(now, &removes);
        c.flush(0);
        c.run_until_quiet(100_000);
    });
    let v1 = c.engines[0].view().version;
    assert!(v1 >= v0 + 6, "batches of 64 took {} views", v1 - v0);
    for e in &c.engines {
        assert_eq!(e.view().version, v1);
    }
    assert_eq!(
        allocs,
        0,
        "{allocs} allocations for {} view changes",
        v1 - v0
    );
}
