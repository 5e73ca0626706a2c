//! The allocator counts what it should, per thread, and nests.

use alloc_count::{counted, is_installed, live_bytes, CountingAlloc};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc::new();

#[test]
fn counts_allocations_and_reallocations() {
    assert!(is_installed());
    let (v, n) = counted(|| std::hint::black_box(vec![1u8; 10]));
    assert_eq!(n, 1);
    let ((), n) = counted(|| {
        let mut v = std::hint::black_box(Vec::<u64>::with_capacity(1));
        v.extend_from_slice(&[1, 2, 3, 4]); // one realloc
        std::hint::black_box(v);
    });
    assert_eq!(n, 2);
    let (_, n) = counted(|| drop(std::hint::black_box(v)));
    assert_eq!(n, 0, "freeing is not an allocation");
}

#[test]
fn other_threads_are_not_counted() {
    let ((), n) = counted(|| {
        std::thread::scope(|s| {
            s.spawn(|| std::hint::black_box(vec![0u8; 100]));
        });
    });
    // Spawning allocates on this thread; the spawned thread's vector is not counted.
    let ((), spawn_only) = counted(|| {
        std::thread::scope(|s| {
            s.spawn(|| ());
        });
    });
    assert_eq!(n, spawn_only);
}

#[test]
fn nested_counts_add_up_and_restore() {
    let ((inner, ()), outer) = counted(|| {
        let ((), inner) = counted(|| drop(std::hint::black_box(Box::new(1u32))));
        drop(std::hint::black_box(Box::new(2u32)));
        (inner, ())
    });
    assert_eq!((inner, outer), (1, 2));
    // Counting is off again: a panic inside does not leave it on either.
    let r = std::panic::catch_unwind(|| counted(|| panic!("boom")));
    assert!(r.is_err());
    let ((), n) = counted(|| ());
    assert_eq!(n, 0);
}

#[test]
fn live_bytes_follow_the_heap() {
    let before = live_bytes();
    let b = std::hint::black_box(vec![0u8; 1 << 20]);
    // Other tests run meanwhile; a MiB stands out from their noise.
    assert!(live_bytes() - before >= (1 << 19));
    drop(b);
}
