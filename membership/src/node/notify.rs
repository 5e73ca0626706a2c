//! Readiness of a [`Subscription`](super::Subscription) for poll-based and async
//! programs: a file descriptor that is readable while events may be waiting (a Linux
//! `eventfd`, a non-blocking pipe on other Unix systems), and the waker of a task
//! polling the subscription as a `Stream`.
//!
//! Protocol (it never loses a wake-up): the loop queues the event, then signals; the
//! subscriber, when it finds its queue empty, clears the signal and looks once more.
//! An event queued after that last look is signalled after the clear, so the fd is
//! readable again.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::task::Waker;

use parking_lot::Mutex;

/// A readiness flag backed by a file descriptor.
#[derive(Debug)]
pub(crate) struct EventFd {
    /// Read side (the eventfd itself on Linux).
    read: OwnedFd,
    /// Write side of the pipe (None with an eventfd: `read` is written).
    #[cfg_attr(target_os = "linux", allow(dead_code))]
    write: Option<OwnedFd>,
}

impl EventFd {
    /// A new, non-blocking, close-on-exec descriptor, not signalled.
    #[cfg(target_os = "linux")]
    pub(crate) fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd has no memory arguments; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let read = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { read, write: None })
    }

    /// A new, non-blocking, close-on-exec descriptor, not signalled.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn new() -> io::Result<EventFd> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors; the result is checked.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: two fresh descriptors that nothing else owns.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [read.as_raw_fd(), write.as_raw_fd()] {
            // SAFETY: fcntl on descriptors we own.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
        Ok(EventFd {
            read,
            write: Some(write),
        })
    }

    /// The descriptor to wait on (readable when signalled).
    pub(crate) fn raw(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes the descriptor readable. Never blocks (a full counter or pipe is already
    /// readable).
    pub(crate) fn signal(&self) {
        #[cfg(target_os = "linux")]
        {
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a live u64 to a descriptor we own.
            let _ = unsafe {
                libc::write(
                    self.read.as_raw_fd(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
        #[cfg(not(target_os = "linux"))]
        if let Some(w) = &self.write {
            let b = 1u8;
            // SAFETY: writes 1 byte from a live u8 to a descriptor we own.
            let _ = unsafe { libc::write(w.as_raw_fd(), (&b as *const u8).cast(), 1) };
        }
    }

    /// Makes the descriptor not readable (until the next [`EventFd::signal`]).
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads at most `buf.len()` bytes into a live buffer from a
            // non-blocking descriptor we own.
            let n = unsafe {
                libc::read(
                    self.read.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    if cfg!(target_os = "linux") {
                        std::mem::size_of::<u64>()
                    } else {
                        buf.len()
                    },
                )
            };
            // An eventfd is reset by one read; a pipe is drained until it is empty.
            if n <= 0 || cfg!(target_os = "linux") {
                break;
            }
        }
    }
}

/// What a subscription and the loop's side of it share to signal readiness.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    /// Created on the first [`Subscription::event_fd`](super::Subscription::event_fd).
    fd: OnceLock<EventFd>,
    /// The task polling the subscription as a stream, if any.
    waker: Mutex<Option<Waker>>,
    /// The loop's side is gone for good (the node stopped): no further event comes.
    closed: AtomicBool,
}

impl Notify {
    /// After an event was queued: makes the fd readable, wakes the task.
    pub(crate) fn signal(&self) {
        if let Some(fd) = self.fd.get() {
            fd.signal();
        }
        // The lock is released before the wake: a waker that polls the subscription
        // again at once (registering) must not find it held.
        let waker = self.waker.lock().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The loop's side is gone for good: marks it, then signals (so that a poller or a
    /// task waiting for the next event looks, and finds the end).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.signal();
    }

    /// [`close`](Self::close) was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// When the queue was found empty: clears the fd (the caller looks once more).
    pub(crate) fn clear(&self) {
        if let Some(fd) = self.fd.get() {
            fd.clear();
        }
    }

    /// The descriptor, created on first use (and signalled then, since events may
    /// already be waiting).
    pub(crate) fn fd(&self) -> io::Result<RawFd> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.raw());
        }
        let new = EventFd::new()?;
        // Two threads may race here; the loser's descriptor is closed.
        let _ = self.fd.set(new);
        let fd = self.fd.get().expect("set above");
        fd.signal();
        Ok(fd.raw())
    }

    /// Registers the task to wake on the next event.
    #[cfg_attr(not(feature = "stream"), allow(dead_code))]
    pub(crate) fn register(&self, w: &Waker) {
        let mut slot = self.waker.lock();
        match &*slot {
            Some(old) if old.will_wake(w) => {}
            _ => *slot = Some(w.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: RawFd) -> bool {
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut p, 1, 0) };
        n == 1 && p.revents & libc::POLLIN != 0
    }

    /// A task woken by the signal may poll (and register) again at once, from its
    /// `wake`: the waker's lock is not held then.
    #[test]
    fn the_wake_runs_without_the_wakers_lock() {
        use std::sync::Arc;
        struct Again {
            n: Arc<Notify>,
            lock_free: AtomicBool,
        }
        impl std::task::Wake for Again {
            fn wake(self: Arc<Self>) {
                let free = self.n.waker.try_lock().is_some();
                self.lock_free.store(free, Ordering::SeqCst);
            }
        }
        let n = Arc::new(Notify::default());
        let a = Arc::new(Again {
            n: Arc::clone(&n),
            lock_free: AtomicBool::new(false),
        });
        n.register(&Waker::from(Arc::clone(&a)));
        n.signal();
        assert!(a.lock_free.load(Ordering::SeqCst));
        n.close();
        assert!(n.is_closed());
    }

    #[test]
    fn signal_makes_readable_and_clear_resets() {
        let e = EventFd::new().unwrap();
        assert!(!readable(e.raw()));
        e.signal();
        e.signal();
        assert!(readable(e.raw()));
        e.clear();
        assert!(!readable(e.raw()));
        e.clear();
        assert!(!readable(e.raw()));
    }
}
