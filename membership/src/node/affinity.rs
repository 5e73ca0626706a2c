//! Pinning a node's loop thread to one CPU ([`NodeConfig::cpu`](super::NodeConfig::cpu)).

use std::io;

/// CPUs a thread's affinity can name: the size of the kernel's `cpu_set_t`.
pub(crate) const MAX_CPUS: usize = libc::CPU_SETSIZE as usize;

/// Restricts the calling thread to `cpu`: it runs there from the call on. An error if
/// `cpu` is out of range, not present, or not one this process may run on.
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= MAX_CPUS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPUs are numbered 0 to {}", MAX_CPUS - 1),
        ));
    }
    // SAFETY: `cpu_set_t` is plain bits, valid all zero; `CPU_SET` writes within it
    // (`cpu` is in range, checked above); `sched_setaffinity` reads `size_of` bytes of
    // the set and changes only the calling thread (pid 0).
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

/// The CPUs the calling thread may run on, in order (on the thread that started the
/// process: the CPUs the process may use, `taskset` included). Tools that place nodes
/// ([`NodeConfig::cpu`](super::NodeConfig::cpu)) pick from these.
pub fn current_thread_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: as above; `sched_getaffinity` writes at most `size_of` bytes of the set.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread pinned to one of the CPUs it may run on runs only there; a CPU out of
    /// range or not present is an error and leaves the thread as it was.
    #[test]
    fn a_thread_pinned_to_a_cpu_runs_only_there() {
        std::thread::spawn(|| {
            let allowed = current_thread_cpus().unwrap();
            let last = *allowed.last().expect("a thread may run somewhere");
            pin_current_thread(last).unwrap();
            assert_eq!(current_thread_cpus().unwrap(), vec![last]);
            let e = pin_current_thread(MAX_CPUS).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            // The last CPU number the kernel's set can hold: no host here has it.
            assert!(pin_current_thread(MAX_CPUS - 1).is_err());
            assert_eq!(current_thread_cpus().unwrap(), vec![last]);
        })
        .join()
        .unwrap();
    }
}
