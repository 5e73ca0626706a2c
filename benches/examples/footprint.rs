//! The cache lines each step of a removal touches, for `make footprint`: run under
//! `valgrind --tool=lackey --trace-mem=yes --log-fd=2` with this program's own notes on
//! the same stream, and read by `benches/footprint.py`, which counts per step (before
//! its first datagram is built, and after) the distinct lines of code and of data,
//! the data split into the stack, the node cores' bodies, their heap buffers and the
//! rest (statics, read-only tables, libc), and the code by function.
//!
//! The notes, one per line on stderr: `FPM <begin> <first-send> <end> <stack> <cores>
//! <core-size>` (addresses of the markers, of a stack local, of the cores' block),
//! `FPA <address> <size>` and `FPF <address>` for each allocation and free, `FPD T <at>`
//! or `FPD <from> <to> <len>` before each marked step, `FPS <len>` once a marked step's
//! first datagram is built, `FPX` at the end.
//!
//! `cargo run --release -p sgmp-benches --example footprint -- [N] [REMOVALS]` (5, 3).

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;

use sgmp_benches::world::{Step, World, MARK_BEGIN, MARK_END, MARK_FIRST_SEND};

/// Writes a note to stderr without allocating (the allocator itself writes notes).
fn note(args: std::fmt::Arguments) {
    let mut buf = [0u8; 160];
    let mut c = std::io::Cursor::new(&mut buf[..]);
    let _ = c.write_fmt(args);
    let n = c.position() as usize;
    let _ = std::io::stderr().lock().write_all(&buf[..n]);
}

/// The system allocator, noting each allocation and free.
struct Noting;

// SAFETY: forwards to `System` unchanged; the notes do not allocate.
unsafe impl GlobalAlloc for Noting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(l) };
        note(format_args!("FPA {:x} {}\n", p as usize, l.size()));
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc_zeroed(l) };
        note(format_args!("FPA {:x} {}\n", p as usize, l.size()));
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note(format_args!("FPF {:x}\n", p as usize));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, size: usize) -> *mut u8 {
        note(format_args!("FPF {:x}\n", p as usize));
        // SAFETY: the caller's contract, passed on.
        let q = unsafe { System.realloc(p, l, size) };
        note(format_args!("FPA {:x} {}\n", q as usize, size));
        q
    }
}

#[global_allocator]
static NOTING: Noting = Noting;

fn on_step(s: Step) {
    match s {
        Step::Timer { at } => note(format_args!("FPD T {at} 0\n")),
        Step::Datagram { from, to, len } => note(format_args!("FPD {from} {to} {len}\n")),
    }
}

fn on_sent(len: usize) {
    note(format_args!("FPS {len}\n"));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(5);
    let removals: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut w = World::founded(n);
    w.marks = true;
    w.step_hook = Some(on_step);
    w.sent_hook = Some(on_sent);
    let local = 0u64;
    let addr = |r: &std::sync::atomic::AtomicU64| r as *const _ as usize;
    note(format_args!(
        "FPM {:x} {:x} {:x} {:x} {:x} {}\n",
        addr(&MARK_BEGIN),
        addr(&MARK_FIRST_SEND),
        addr(&MARK_END),
        std::hint::black_box(&local) as *const u64 as usize,
        w.cores().as_ptr() as usize,
        std::mem::size_of_val(&w.cores()[0]),
    ));
    for _ in 0..removals {
        w.removal(n - 1);
        w.rejoin(n - 1);
    }
    note(format_args!("FPX\n"));
}
