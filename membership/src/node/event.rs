//! Events for the application: [`NodeEvent`], stamped as [`TimedEvent`], queued to each
//! [`Subscription`] without ever blocking the loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::ExcludeReason;
use crate::service::SystemChange;
use crate::view::View;
use crate::ProcessId;

/// Events queued per subscriber before further ones are dropped (and counted).
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// Something an application subscribed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// A view was installed by process `me`.
    ViewInstalled {
        /// The installing process.
        me: ProcessId,
        /// The view.
        view: View,
    },
    /// `me` now believes `peer` faulty.
    Suspected {
        /// The suspecting process.
        me: ProcessId,
        /// The suspected process.
        peer: ProcessId,
    },
    /// `me` joined the group (its view follows as `ViewInstalled`).
    Joined {
        /// The joined process.
        me: ProcessId,
        /// Version of its first view.
        version: u64,
        /// The application snapshot handed over by the group.
        snapshot: Vec<u8>,
    },
    /// `me` founded the group (cold start).
    Founded {
        /// The founding process.
        me: ProcessId,
    },
    /// `me` was excluded.
    Excluded {
        /// The excluded process.
        me: ProcessId,
        /// Why.
        reason: ExcludeReason,
    },
    /// `me` left the group gracefully.
    Left {
        /// The process that left.
        me: ProcessId,
    },
    /// `me` started a reconfiguration.
    Reconfiguring {
        /// The reconfiguring process.
        me: ProcessId,
        /// Its view version.
        version: u64,
    },
    /// As mgr (or reconfigurer), `me` decided on the update forming view `version`
    /// and submitted it (the start of a view change's commit latency).
    Submitted {
        /// The initiator.
        me: ProcessId,
        /// The version the update would form.
        version: u64,
        /// When the loop step that decided it began (events are published after the
        /// step's datagrams are sent, so the event itself arrives later).
        at: Instant,
    },
    /// The membership service applied system view `change.version` (core + clients).
    SystemView {
        /// The core member reporting it.
        me: ProcessId,
        /// The version, what was added and removed, and the size.
        change: SystemChange,
    },
    /// A recovery from total failure made `me` a member of view `version` (the view
    /// follows as `ViewInstalled`).
    Recovered {
        /// The recovered process.
        me: ProcessId,
        /// The recovered view's version.
        version: u64,
    },
    /// The durable state could not be saved: `me` stopped.
    StorageFailed {
        /// The stopped process.
        me: ProcessId,
        /// What went wrong.
        error: String,
    },
    /// The node came back as a new incarnation after `old` was excluded.
    Rejoining {
        /// The excluded process.
        old: ProcessId,
        /// The new one.
        new: ProcessId,
    },
}

/// A node event with the time the node's loop produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedEvent {
    /// When the loop step that produced the event began: the step that read the
    /// datagram, timer or command behind it (for [`NodeEvent::Submitted`], its `at`).
    /// Unlike the time a subscriber receives the event, it does not include the
    /// subscriber's own wake-up, nor the datagrams the step sent before publishing.
    pub at: Instant,
    /// The event.
    pub event: NodeEvent,
}

/// A subscription to node events: a bounded queue; when it is full, further events
/// are dropped and counted in [`Subscription::dropped`] (the loop never blocks).
///
/// Every event carries the time the node's loop produced it: [`recv_timed_timeout`]
/// and [`try_recv_timed`] return it with the event ([`TimedEvent`]), so that a
/// collector can time events without depending on when it gets to run.
///
/// [`recv_timed_timeout`]: Subscription::recv_timed_timeout
/// [`try_recv_timed`]: Subscription::try_recv_timed
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<TimedEvent>,
    dropped: Arc<AtomicU64>,
}

impl Subscription {
    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<NodeEvent> {
        self.recv_timed_timeout(timeout).map(|t| t.event)
    }
    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<NodeEvent> {
        self.try_recv_timed().map(|t| t.event)
    }
    /// The next event with the time the node produced it, waiting at most `timeout`.
    pub fn recv_timed_timeout(&self, timeout: Duration) -> Option<TimedEvent> {
        self.rx.recv_timeout(timeout).ok()
    }
    /// The next event with the time the node produced it, if one is queued.
    pub fn try_recv_timed(&self) -> Option<TimedEvent> {
        self.rx.try_recv().ok()
    }
    /// Events dropped because this subscriber lagged.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The loop's side of a [`Subscription`].
pub(crate) struct Subscriber {
    tx: SyncSender<TimedEvent>,
    dropped: Arc<AtomicU64>,
}

/// A new subscription and the loop's side of it.
pub(crate) fn subscription() -> (Subscriber, Subscription) {
    let (tx, rx) = mpsc::sync_channel(SUBSCRIBER_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        Subscriber {
            tx,
            dropped: Arc::clone(&dropped),
        },
        Subscription { rx, dropped },
    )
}

/// Queues `event` to every subscriber (stamped `at`), dropping disconnected ones;
/// returns how many lagging subscribers missed it.
pub(crate) fn publish(subs: &mut Vec<Subscriber>, at: Instant, event: &NodeEvent) -> u64 {
    let mut missed = 0;
    subs.retain(|s| {
        match s.tx.try_send(TimedEvent {
            at,
            event: event.clone(),
        }) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                s.dropped.fetch_add(1, Ordering::Relaxed);
                missed += 1;
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    });
    missed
}
