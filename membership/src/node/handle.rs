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

/// Why a [`NodeHandle`] call that waits for the node's loop did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// The node's loop is not running (shut down, or it stopped).
    #[error("the node is stopped")]
    Stopped,
    /// The loop did not answer within the caller's timeout.
    #[error("the node did not answer within {0:?}")]
    Timeout(Duration),
    /// The loop refused a fault command (e.g. an unknown peer).
    #[error("fault command refused: {0}")]
    Fault(String),
    /// The tags were refused (larger than the node's `max_tag_bytes`).
    #[error("tags refused: {0}")]
    Tags(crate::TagError),
    /// The event log's path could not be opened again (the log stays on its old file).
    #[error("cannot reopen the event log: {0}")]
    EventLog(String),
}

/// What the handle asks of the loop.
pub(crate) enum Command {
    Leave(Sender<()>),
    Shutdown,
    Fault(FaultCommand, Sender<Result<String, String>>),
    SetSnapshot(SnapshotProvider, Sender<()>),
    SystemView(Sender<Option<SystemView>>),
    SetTags(Vec<u8>, Sender<Result<(), crate::TagError>>),
    ReopenEventLog(Sender<Result<bool, String>>),
}

/// What the loop publishes and the handle reads.
pub(crate) struct Shared {
    pub(crate) status: Mutex<NodeStatus>,
    pub(crate) metrics: Mutex<NodeMetrics>,
    pub(crate) subscribers: Mutex<Subscribers>,
    /// The application snapshot handed over when this node last joined (empty if it
    /// never joined: a founder).
    pub(crate) received: Mutex<Vec<u8>>,
}

/// The loop's sides of the subscriptions, and whether the loop has stopped (then a new
/// subscription is ended at once: no loop is left to publish to it).
#[derive(Default)]
pub(crate) struct Subscribers {
    pub(crate) live: Vec<Subscriber>,
    stopped: bool,
}

impl Shared {
    /// Subscribes to events from now on.
    pub(crate) fn subscribe(&self) -> Subscription {
        let (s, sub) = subscription();
        let mut subs = self.subscribers.lock();
        if subs.stopped {
            s.close();
        } else {
            subs.live.push(s);
        }
        sub
    }

    /// The loop stopped: ends every subscription, and those made later.
    pub(crate) fn close_subscriptions(&self) {
        let mut subs = self.subscribers.lock();
        subs.stopped = true;
        for s in subs.live.drain(..) {
            s.close();
        }
    }
}

/// The application's side of a running node. Dropping it shuts the node down.
///
/// Calls that wait for the node's loop take a timeout and say why they failed
/// ([`HandleError`]); the others read what the loop last published.
///
/// ```
/// use std::time::Duration;
/// use sgmp_membership::node::{Node, NodeConfig, NodePhase};
///
/// let cfg = NodeConfig::from_toml_str("id = \"doc-handle\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
/// let node = Node::start(cfg).unwrap();
/// // A node without seeds founds its own group.
/// let t = std::time::Instant::now();
/// while node.status().phase != NodePhase::Member && t.elapsed() < Duration::from_secs(10) {
///     std::thread::sleep(Duration::from_millis(10));
/// }
/// assert_eq!(node.view().members.len(), 1);
/// assert!(node.status().is_mgr);
/// node.leave(Duration::from_secs(2)).unwrap();
/// node.shutdown();
/// ```
pub struct NodeHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tx: Sender<Command>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) thread: Mutex<Option<JoinHandle<()>>>,
    /// The loop thread's id, set once it is spawned: a shutdown asked on that thread
    /// (by a snapshot provider) must not wait for the `thread` lock, which another
    /// thread's shutdown holds while it joins this one.
    pub(crate) loop_thread: std::sync::OnceLock<std::thread::ThreadId>,
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
    /// to the next joiner; keep it quick. Returns once the loop has taken it, or
    /// [`HandleError::Timeout`] after `timeout` (the loop still takes it later). To
    /// have it in place before the first joiner can arrive, pass it to
    /// [`Node::start_with`](super::Node::start_with) instead.
    pub fn set_snapshot_provider(
        &self,
        f: SnapshotProvider,
        timeout: Duration,
    ) -> Result<(), HandleError> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::SetSnapshot(f, tx)) {
            return Err(HandleError::Stopped);
        }
        wait(&rx, timeout)
    }

    /// The membership service's system view (core + clients): `Ok(None)` if the
    /// service is off or this node is not synchronized.
    pub fn system_view(&self, timeout: Duration) -> Result<Option<SystemView>, HandleError> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::SystemView(tx)) {
            return Err(HandleError::Stopped);
        }
        wait(&rx, timeout)
    }

    /// Leaves the group gracefully and waits (at most `timeout`; `leave_linger_ms`
    /// plus a margin is enough) until the leave request has been delivered. The node
    /// stays up (not a member) until [`NodeHandle::shutdown`]. A node that is not a
    /// member (or already left) returns at once.
    pub fn leave(&self, timeout: Duration) -> Result<(), HandleError> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::Leave(tx)) {
            return Err(HandleError::Stopped);
        }
        wait(&rx, timeout)
    }

    /// Applies a fault command; returns a description of what was done.
    pub fn fault(&self, cmd: FaultCommand, timeout: Duration) -> Result<String, HandleError> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::Fault(cmd, tx)) {
            return Err(HandleError::Stopped);
        }
        wait(&rx, timeout)?.map_err(HandleError::Fault)
    }

    /// The application snapshot the group handed over (State-Xfer) when this node
    /// last joined; empty if it founded its group, or has not joined yet (also after a
    /// rejoin as a new incarnation, until that one has joined). The same bytes
    /// as [`NodeEvent::Joined`](super::NodeEvent::Joined)'s, for a program that did not
    /// subscribe (or whose subscriber lagged and missed that event).
    pub fn received_snapshot(&self) -> Vec<u8> {
        self.shared.received.lock().clone()
    }

    /// Sets this node's member tags. A member asks the mgr, which commits them as a
    /// view change (every member then sees them in the same view version,
    /// [`View::tags_of`]); the node keeps asking until a view shows them, and keeps them
    /// for later incarnations. Returns once the loop has taken them (not once they are
    /// committed: watch for the next `ViewInstalled`), [`HandleError::Tags`] if they
    /// exceed the node's `max_tag_bytes`, or [`HandleError::Timeout`].
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sgmp_membership::{node::{Node, NodeConfig}, TagSet};
    ///
    /// let mut cfg = NodeConfig::from_toml_str("id = \"doc-tags\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
    /// cfg.tags.insert("role", "db").unwrap();
    /// let node = Node::start(cfg).unwrap();
    /// let me = node.status().me;
    /// let t = Instant::now();
    /// while node.view().tags_of(me).get("role") != Some("db") && t.elapsed() < Duration::from_secs(10) {
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!(node.view().tags_of(me).get("role"), Some("db"));
    /// let mut web = TagSet::new();
    /// web.insert("role", "web").unwrap();
    /// node.set_tags(&web, Duration::from_secs(2)).unwrap();
    /// while node.view().tags_of(me).get("role") != Some("web") && t.elapsed() < Duration::from_secs(10) {
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!(node.view().tags_of(me).to_set(), web);
    /// node.shutdown();
    /// ```
    pub fn set_tags(&self, tags: &crate::TagSet, timeout: Duration) -> Result<(), HandleError> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::SetTags(tags.encode(), tx)) {
            return Err(HandleError::Stopped);
        }
        wait(&rx, timeout)?.map_err(HandleError::Tags)
    }

    /// Opens the event log's path again and writes the records from now on there (the
    /// file is created at once if it is gone): what a log rotation asks after renaming
    /// the file (`sgmpd` does it on SIGHUP and for `sgmpctl reopen-log`). `Ok(false)`
    /// if the node has no event log; [`HandleError::EventLog`] if the path cannot be
    /// opened (records keep going to the old file).
    pub fn reopen_event_log(&self, timeout: Duration) -> Result<bool, HandleError> {
        let (tx, rx) = mpsc::channel();
        if !self.command(Command::ReopenEventLog(tx)) {
            return Err(HandleError::Stopped);
        }
        wait(&rx, timeout)?.map_err(HandleError::EventLog)
    }

    /// Stops the loop and waits for its thread (unless called on that thread, from a
    /// snapshot provider: then the loop stops when the call returns). Idempotent.
    pub fn shutdown(&self) {
        self.command(Command::Shutdown);
        if self.loop_thread.get() == Some(&std::thread::current().id()) {
            // Joining itself would never return (std panics instead); the loop stops
            // when the call that asked returns.
            return;
        }
        // Held through the join: a concurrent call returns once the thread is gone.
        let mut thread = self.thread.lock();
        if let Some(t) = thread.take() {
            let _ = t.join();
        }
    }
}

/// Waits for the loop's answer.
fn wait<T>(rx: &mpsc::Receiver<T>, timeout: Duration) -> Result<T, HandleError> {
    rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => HandleError::Timeout(timeout),
        mpsc::RecvTimeoutError::Disconnected => HandleError::Stopped,
    })
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.status.lock();
        f.debug_struct("NodeHandle")
            .field("me", &s.me)
            .field("addr", &self.addr)
            .field("phase", &s.phase)
            .field("version", &s.view.version)
            .finish_non_exhaustive()
    }
}

impl Drop for NodeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
