//! [`NodeHandle`]: the application's side of a running node, and what it shares with
//! the loop thread.

use std::net::SocketAddr;
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use sgmp_transport::Waker;

use super::event::{subscription, Subscriber, Subscription};
use super::fault::FaultCommand;
use super::status::{NodeMetrics, NodeStatus};
use crate::service::SystemView;
use crate::view::View;

/// Produces the application snapshot handed to joiners (called on the loop thread).
pub type SnapshotProvider = Box<dyn Fn() -> Vec<u8> + Send>;

/// What the handle asks of the loop.
pub(crate) enum Command {
    Leave(Sender<()>),
    Shutdown,
    Fault(FaultCommand, Sender<Result<String, String>>),
    SetSnapshot(SnapshotProvider, Sender<()>),
    SystemView(Sender<Option<SystemView>>),
}

/// What the loop publishes and the handle reads.
pub(crate) struct Shared {
    pub(crate) status: Mutex<NodeStatus>,
    pub(crate) metrics: Mutex<NodeMetrics>,
    pub(crate) subscribers: Mutex<Vec<Subscriber>>,
}

impl Shared {
    /// Subscribes to events from now on.
    pub(crate) fn subscribe(&self) -> Subscription {
        let (s, sub) = subscription();
        self.subscribers.lock().push(s);
        sub
    }
}

/// The application's side of a running node. Dropping it shuts the node down.
pub struct NodeHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tx: Sender<Command>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
    pub(crate) addr: SocketAddr,
}

impl NodeHandle {
    fn command(&self, c: Command) -> bool {
        let ok = self.tx.send(c).is_ok();
        let _ = self.waker.wake();
        ok
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current view (version 0 and empty before the first).
    pub fn view(&self) -> View {
        self.shared.status.lock().view.clone()
    }

    /// The current state.
    pub fn status(&self) -> NodeStatus {
        self.shared.status.lock().clone()
    }

    /// The current counters.
    pub fn metrics(&self) -> NodeMetrics {
        *self.shared.metrics.lock()
    }

    /// Subscribes to events from now on.
    pub fn subscribe(&self) -> Subscription {
        self.shared.subscribe()
    }

    /// Sets the function producing the application snapshot handed to joiners. It runs
    /// on the loop thread after every view change (and now), and the latest result goes
    /// to the next joiner; keep it quick. Returns once the loop has taken it.
    pub fn set_snapshot_provider(&self, f: SnapshotProvider) {
        let (tx, rx) = mpsc::channel();
        if self.command(Command::SetSnapshot(f, tx)) {
            let _ = rx.recv_timeout(Duration::from_secs(5));
        }
    }

    /// The membership service's system view (core + clients), or None if the service
    /// is off, this node is not synchronized, or the loop did not answer in time.
    pub fn system_view(&self) -> Option<SystemView> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::SystemView(tx)) {
            return None;
        }
        rx.recv_timeout(Duration::from_secs(5)).ok().flatten()
    }

    /// Leaves the group gracefully and waits (at most `leave_linger_ms` plus a margin)
    /// until the leave request has been delivered. The node stays up (not a member)
    /// until [`NodeHandle::shutdown`].
    pub fn leave(&self, timeout: Duration) {
        let (tx, rx) = mpsc::channel();
        if self.command(Command::Leave(tx)) {
            let _ = rx.recv_timeout(timeout);
        }
    }

    /// Applies a fault command; returns a description of what was done.
    pub fn fault(&self, cmd: FaultCommand) -> Result<String, String> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::Fault(cmd, tx)) {
            return Err("the node is stopped".into());
        }
        rx.recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| Err("the node did not answer".into()))
    }

    /// Stops the loop and waits for its thread. Idempotent.
    pub fn shutdown(&self) {
        self.command(Command::Shutdown);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
