//! A counting global allocator, shared by the zero-allocation tests
//! (`membership/tests/alloc.rs`, `transport/tests/alloc.rs`) and the allocation report
//! (`benches/benches/alloc.rs`).
//!
//! [`CountingAlloc`] forwards every call unchanged to [`System`] and counts, **per
//! thread**, the allocations (`alloc`, `alloc_zeroed` and `realloc`, one each) made
//! while [`counted`] runs its closure on that thread. Counting per thread matters: the
//! test harness runs tests on several threads and allocates on its own (to report a
//! finished test, say) while another test counts; a process-wide counter made
//! `view_changes_allocate_nothing_after_warm_up` fail now and then. Work that the
//! closure hands to other threads is therefore *not* counted.
//!
//! It also keeps one process-wide figure, the live heap bytes (allocated minus freed,
//! every thread): [`live_bytes`].
//!
//! A test binary installs it itself (a library cannot choose the allocator of the
//! program that links it without surprising that program):
//!
//! ```
//! use alloc_count::{counted, CountingAlloc};
//!
//! #[global_allocator]
//! static GLOBAL: CountingAlloc = CountingAlloc::new();
//!
//! fn main() {
//!     let mut v = Vec::with_capacity(16);
//!     let ((), allocs) = counted(|| v.push(1u8)); // the hot path: room already there
//!     assert_eq!(allocs, 0);
//!     let ((), allocs) = counted(|| v.extend_from_slice(&[0; 64])); // it grows
//!     assert_eq!(allocs, 1);
//! }
//! ```
//!
//! [`counted`] panics if `CountingAlloc` is not the global allocator, so that a
//! missing `#[global_allocator]` cannot turn every count into a false zero.

#![deny(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// The counting allocator: install it with `#[global_allocator]` (see the
/// [crate docs](crate)).
#[derive(Debug, Default)]
pub struct CountingAlloc(());

impl CountingAlloc {
    /// The allocator, for the `#[global_allocator]` static.
    pub const fn new() -> CountingAlloc {
        CountingAlloc(())
    }
}

thread_local! {
    /// This thread is inside [`counted`].
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations this thread made while counting.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

/// [`is_installed`] saw the allocator count.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Live heap bytes of the whole process (allocated minus freed) since it started.
static LIVE: AtomicI64 = AtomicI64::new(0);

/// Counts one allocation on this thread if it is counting. Never allocates, and never
/// panics: during thread teardown the thread-locals may be gone, and then nothing is
/// counted.
fn note() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
    }
}

fn live(delta: i64) {
    LIVE.fetch_add(delta, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator, with the caller's
// arguments; the only other work is counting in a const-initialized thread-local and an
// atomic, neither of which allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        live(layout.size() as i64);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        live(layout.size() as i64);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        live(new_size as i64 - layout.size() as i64);
        // SAFETY: `ptr` was allocated by this allocator, hence by `System`, with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(-(layout.size() as i64));
        // SAFETY: `ptr` was allocated by this allocator, hence by `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Turns counting back to what it was when dropped, even if the closure panics.
struct Restore(bool);

impl Drop for Restore {
    fn drop(&mut self) {
        COUNTING.with(|c| c.set(self.0));
    }
}

/// Counts this thread's allocations while `f` runs, without the installation check.
fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCS.with(Cell::get);
    let restore = Restore(COUNTING.with(|c| c.replace(true)));
    let r = f();
    drop(restore);
    (r, ALLOCS.with(Cell::get) - before)
}

/// Runs `f` and returns its result with the number of heap allocations (`alloc`,
/// `alloc_zeroed`, `realloc`) it made **on this thread**. Calls may nest: an inner
/// count is included in the outer one.
///
/// # Panics
///
/// If [`CountingAlloc`] is not the global allocator (a test allocation goes uncounted).
pub fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    assert!(
        is_installed(),
        "alloc_count::CountingAlloc is not the #[global_allocator] of this program"
    );
    count(f)
}

/// [`CountingAlloc`] is the global allocator: a probe allocation is seen (once seen,
/// the answer is remembered). The probe is not counted by an enclosing [`counted`].
pub fn is_installed() -> bool {
    if INSTALLED.load(Ordering::Relaxed) {
        return true;
    }
    let before = ALLOCS.with(Cell::get);
    let (_, n) = count(|| std::hint::black_box(Box::new(0u64)));
    ALLOCS.with(|a| a.set(before));
    INSTALLED.store(n >= 1, Ordering::Relaxed);
    n >= 1
}

/// Live heap bytes of the whole process, every thread (allocated minus freed since the
/// program started). Meaningful only when [`CountingAlloc`] is the global allocator.
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed)
}
