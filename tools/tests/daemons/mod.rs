//! Shared by the tests that run `sgmpd` child processes: a scratch directory and a
//! daemon that are cleaned up when dropped, and a free loopback UDP port.

#![allow(dead_code)]

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::Child;

/// A scratch directory removed at the end.
pub struct Dir(pub PathBuf);

impl Dir {
    /// `$TMPDIR/sgmp-{name}-{pid}`, empty.
    pub fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("sgmp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    /// A path inside the directory.
    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A daemon killed when dropped.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback UDP port free a moment ago (bound and released: for tests where the
/// daemon must bind by itself; `node_cluster.rs` hands sockets over instead).
pub fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
