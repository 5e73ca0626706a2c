//! Pinning a node's loop thread to one CPU ([`NodeConfig::cpu`](super::NodeConfig::cpu)).

use std::io;

/// CPUs a thread's affinity can name: the size of the kernel's `cpu_set_t`.
#[cfg(target_os = "linux")]
pub(crate) const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;
/// CPUs a thread's affinity can name (no pinning off Linux).
#[cfg(not(target_os = "linux"))]
pub(crate) const MAX_CPUS: usize = 1024;

/// Restricts the calling thread to `cpu`: it runs there from the call on. An error if
/// `cpu` is not one of the CPUs the thread may run on already ([`check_cpu`]): the
/// kernel would let a thread widen its affinity to any CPU of its cpuset, past the
/// `taskset` its process was started under.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    check_cpu(cpu)?;
    sys::pin(cpu)
}

/// Whether the calling thread may run on `cpu` (on the thread that started the
/// process: whether the process may, `taskset` and cpusets included); the error says
/// which CPUs it may use.
pub fn check_cpu(cpu: usize) -> io::Result<()> {
    let allowed = current_thread_cpus()?;
    if allowed.contains(&cpu) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not one of the CPUs this process may use ({})",
                ranges(&allowed)
            ),
        ))
    }
}

/// The CPUs the calling thread may run on, in order (on the thread that started the
/// process: the CPUs the process may use, `taskset` included). Tools that place nodes
/// ([`NodeConfig::cpu`](super::NodeConfig::cpu)) pick from these.
pub fn current_thread_cpus() -> io::Result<Vec<usize>> {
    sys::allowed()
}

/// `[0, 1, 2, 5]` → `0-2,5`.
fn ranges(cpus: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&cpus[i].to_string());
        if j > i {
            out.push('-');
            out.push_str(&cpus[j].to_string());
        }
        i = j + 1;
    }
    out
}

#[cfg(target_os = "linux")]
mod sys {
    use super::MAX_CPUS;
    use std::io;

    pub(super) fn pin(cpu: usize) -> io::Result<()> {
        if cpu >= MAX_CPUS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("CPUs are numbered 0 to {}", MAX_CPUS - 1),
            ));
        }
        // SAFETY: `cpu_set_t` is plain bits, valid all zero; `CPU_SET` writes within it
        // (`cpu` is in range, checked above); `sched_setaffinity` reads `size_of` bytes
        // of the set and changes only the calling thread (pid 0).
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub(super) fn allowed() -> io::Result<Vec<usize>> {
        // SAFETY: as in `pin`; `sched_getaffinity` writes at most `size_of` bytes of
        // the set.
        let set = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                return Err(io::Error::last_os_error());
            }
            set
        };
        // SAFETY: `CPU_ISSET` reads the set within its size (`i < MAX_CPUS`).
        Ok((0..MAX_CPUS)
            .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
            .collect())
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::io;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "pinning a thread to a CPU is supported on Linux only",
        )
    }

    pub(super) fn pin(_cpu: usize) -> io::Result<()> {
        Err(unsupported())
    }

    pub(super) fn allowed() -> io::Result<Vec<usize>> {
        Err(unsupported())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A thread pinned to one of the CPUs it may run on runs only there; a CPU out of
    /// range, not present, or outside what the thread may use already (a `taskset`) is
    /// an error that says which it may use, and leaves the thread as it was.
    #[test]
    fn a_thread_pinned_to_a_cpu_runs_only_there() {
        std::thread::spawn(|| {
            let allowed = current_thread_cpus().unwrap();
            let last = *allowed.last().expect("a thread may run somewhere");
            pin_current_thread(last).unwrap();
            assert_eq!(current_thread_cpus().unwrap(), vec![last]);
            for cpu in [MAX_CPUS, MAX_CPUS - 1, allowed[0]] {
                if cpu == last {
                    continue;
                }
                let e = pin_current_thread(cpu).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
                assert!(e.to_string().contains(&format!("({last})")), "{e}");
                assert_eq!(current_thread_cpus().unwrap(), vec![last]);
            }
        })
        .join()
        .unwrap();
    }

    #[test]
    fn cpu_lists_read_as_ranges() {
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges(&[3]), "3");
        assert_eq!(ranges(&[]), "");
    }
}
