//! Events for the application: [`NodeEvent`], stamped as [`TimedEvent`], queued to each
//! [`Subscription`] without ever blocking the loop.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::notify::Notify;
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
        /// step's datagrams are sent, and this one after the round it opened, so the
        /// event itself arrives later; see `NodeConfig::publish_after_round`).
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
/// When the node stops, it publishes what its last steps produced, then ends every
/// subscription ([`Subscription::ended`]): the queued events stay readable, then the
/// receiving calls return `None` at once and a stream ends.
///
/// Every event carries the time the node's loop produced it: [`recv_timed_timeout`]
/// and [`try_recv_timed`] return it with the event ([`TimedEvent`]), so that a
/// collector can time events without depending on when it gets to run.
///
/// Three ways to wait:
/// - block: [`recv_timeout`] / [`recv_timed_timeout`];
/// - `poll`/`epoll`: [`event_fd`] is readable while events may be waiting; read them
///   with [`try_recv`] until it returns `None` (which re-arms the descriptor);
/// - async (cargo feature `stream`): `Subscription` is a
///   `futures_core::Stream<Item = TimedEvent>`, with no async runtime required.
///
/// ```
/// use std::time::Duration;
/// use sgmp_membership::node::{Node, NodeConfig, NodeEvent};
///
/// let cfg = NodeConfig::from_toml_str("id = \"doc-sub\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
/// // Subscribed before the loop starts: a node without seeds founds at once.
/// let (node, events) = Node::start_subscribed(cfg).unwrap();
/// let mut founded = false;
/// while let Some(ev) = events.recv_timeout(Duration::from_secs(10)) {
///     if let NodeEvent::ViewInstalled { view, .. } = ev {
///         assert_eq!(view.members.len(), 1);
///         founded = true;
///         break;
///     }
/// }
/// assert!(founded);
/// node.shutdown();
/// ```
///
/// [`recv_timeout`]: Subscription::recv_timeout
/// [`recv_timed_timeout`]: Subscription::recv_timed_timeout
/// [`try_recv`]: Subscription::try_recv
/// [`try_recv_timed`]: Subscription::try_recv_timed
/// [`event_fd`]: Subscription::event_fd
#[derive(Debug)]
pub struct Subscription {
    rx: Receiver<TimedEvent>,
    dropped: Arc<AtomicU64>,
    notify: Arc<Notify>,
}

impl Subscription {
    /// The next event, waiting at most `timeout` (`None` at once once the node stopped
    /// and every event was received: [`ended`](Subscription::ended)).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<NodeEvent> {
        self.recv_timed_timeout(timeout).map(|t| t.event)
    }
    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<NodeEvent> {
        self.try_recv_timed().map(|t| t.event)
    }
    /// The next event with the time the node produced it, waiting at most `timeout`.
    pub fn recv_timed_timeout(&self, timeout: Duration) -> Option<TimedEvent> {
        match self.rx.recv_timeout(timeout) {
            Ok(e) => Some(e),
            Err(_) => self.after_empty(),
        }
    }
    /// The next event with the time the node produced it, if one is queued.
    pub fn try_recv_timed(&self) -> Option<TimedEvent> {
        match self.rx.try_recv() {
            Ok(e) => Some(e),
            Err(_) => self.after_empty(),
        }
    }
    /// The queue was empty: clear the readiness descriptor, then look once more (an
    /// event queued in between signalled after the clear).
    fn after_empty(&self) -> Option<TimedEvent> {
        self.notify.clear();
        self.rx.try_recv().ok()
    }
    /// The node stopped: no event will come after those still queued (read them with
    /// [`try_recv`](Subscription::try_recv) until it returns `None`). The receiving
    /// calls return `None` at once, without waiting, once the queue is empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sgmp_membership::node::{Node, NodeConfig};
    ///
    /// let cfg = NodeConfig::from_toml_str("id = \"doc-ended\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
    /// let (node, events) = Node::start_subscribed(cfg).unwrap();
    /// assert!(!events.ended());
    /// node.shutdown();
    /// assert!(events.ended());
    /// while events.recv_timeout(Duration::from_secs(60)).is_some() {}
    /// ```
    pub fn ended(&self) -> bool {
        self.notify.is_closed()
    }

    /// Events dropped because this subscriber lagged.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// A file descriptor that is readable while events may be waiting, for `poll`,
    /// `epoll` or an event loop (a Linux `eventfd`; a pipe on other Unix systems).
    ///
    /// When it is readable, call [`Subscription::try_recv`] (or
    /// [`try_recv_timed`](Subscription::try_recv_timed)) until it returns `None`: the
    /// call that finds the queue empty makes the descriptor unreadable again, and the
    /// next event makes it readable. It may be readable with no event waiting (right
    /// after it is created, or after a race with the loop): that `try_recv` just
    /// returns `None`. Do not read from the descriptor yourself.
    ///
    /// The descriptor is created on the first call (later calls return the same one),
    /// belongs to the subscription, and is closed when the subscription is dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use sgmp_membership::node::{Node, NodeConfig, NodeEvent};
    ///
    /// let cfg = NodeConfig::from_toml_str("id = \"doc-fd\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
    /// let (node, events) = Node::start_subscribed(cfg).unwrap();
    /// let fd = events.event_fd().unwrap();
    /// let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    /// let mut views = 0;
    /// for _ in 0..100 {
    ///     // SAFETY: one live pollfd.
    ///     if unsafe { libc::poll(&mut pfd, 1, 100) } == 1 {
    ///         while let Some(ev) = events.try_recv() {
    ///             if matches!(ev, NodeEvent::ViewInstalled { .. }) {
    ///                 views += 1;
    ///             }
    ///         }
    ///     }
    ///     if views > 0 {
    ///         break;
    ///     }
    /// }
    /// assert_eq!(views, 1);
    /// node.shutdown();
    /// ```
    pub fn event_fd(&self) -> std::io::Result<RawFd> {
        self.notify.fd()
    }
}

#[cfg(feature = "stream")]
impl futures_core::Stream for Subscription {
    type Item = TimedEvent;

    /// The next event; ends when the node's side of the subscription is gone.
    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<TimedEvent>> {
        use std::sync::mpsc::TryRecvError;
        use std::task::Poll;
        let this = self.get_mut();
        for attempt in 0..2 {
            match this.rx.try_recv() {
                Ok(e) => return Poll::Ready(Some(e)),
                Err(TryRecvError::Disconnected) => return Poll::Ready(None),
                Err(TryRecvError::Empty) if attempt == 0 => {
                    // Registered before the second look: an event queued after it
                    // wakes this task.
                    this.notify.register(cx.waker());
                }
                Err(TryRecvError::Empty) => {}
            }
        }
        Poll::Pending
    }
}

/// The loop's side of a [`Subscription`].
pub(crate) struct Subscriber {
    tx: SyncSender<TimedEvent>,
    dropped: Arc<AtomicU64>,
    notify: Arc<Notify>,
}

impl Subscriber {
    /// Ends the subscription (the node stops): events already queued stay readable,
    /// then the receiving calls return `None` at once and a stream ends.
    pub(crate) fn close(self) {
        let Subscriber { tx, notify, .. } = self;
        drop(tx);
        notify.close();
    }
}

/// A new subscription and the loop's side of it.
pub(crate) fn subscription() -> (Subscriber, Subscription) {
    let (tx, rx) = mpsc::sync_channel(SUBSCRIBER_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let notify = Arc::new(Notify::default());
    (
        Subscriber {
            tx,
            dropped: Arc::clone(&dropped),
            notify: Arc::clone(&notify),
        },
        Subscription {
            rx,
            dropped,
            notify,
        },
    )
}

/// Queues `event` to every subscriber (stamped `at`), dropping disconnected ones;
/// returns how many lagging subscribers missed it. The last subscriber gets `event`
/// itself, the others copies (an install's event holds the view: one copy fewer per
/// install for the usual single subscriber).
pub(crate) fn publish(subs: &mut Vec<Subscriber>, at: Instant, event: NodeEvent) -> u64 {
    let mut missed = 0;
    let last = subs.len();
    let mut event = Some(event);
    let mut seen = 0;
    subs.retain(|s| {
        seen += 1;
        let event = if seen == last {
            event.take()
        } else {
            event.clone()
        };
        let Some(event) = event else {
            debug_assert!(false, "one event per subscriber");
            return true;
        };
        match s.tx.try_send(TimedEvent { at, event }) {
            Ok(()) => {
                s.notify.signal();
                true
            }
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
        unsafe { libc::poll(&mut p, 1, 0) == 1 }
    }

    fn left() -> NodeEvent {
        NodeEvent::Left {
            me: ProcessId::named("x", 1),
        }
    }

    #[test]
    fn event_fd_is_readable_exactly_while_events_wait() {
        let (s, sub) = subscription();
        let mut subs = vec![s];
        publish(&mut subs, Instant::now(), left());
        // Created after an event was queued: readable at once.
        let fd = sub.event_fd().unwrap();
        assert_eq!(
            sub.event_fd().unwrap(),
            fd,
            "one descriptor per subscription"
        );
        assert!(readable(fd));
        assert!(sub.try_recv().is_some());
        // One event read, none left: still readable until a read finds the queue empty.
        assert!(sub.try_recv().is_none());
        assert!(!readable(fd));
        publish(&mut subs, Instant::now(), left());
        publish(&mut subs, Instant::now(), left());
        assert!(readable(fd));
        assert!(sub.try_recv().is_some());
        assert!(readable(fd), "an event still waits");
        assert!(sub.recv_timeout(Duration::from_millis(1)).is_some());
        assert!(sub.recv_timeout(Duration::from_millis(1)).is_none());
        assert!(!readable(fd));
    }

    /// Each live subscriber gets the event (copies to all but the last, the event
    /// itself to the last); a dropped subscription is forgotten.
    #[test]
    fn every_subscriber_gets_the_event_and_the_gone_are_forgotten() {
        let (a, sub_a) = subscription();
        let (b, sub_b) = subscription();
        let (c, sub_c) = subscription();
        let mut subs = vec![a, b, c];
        drop(sub_b);
        assert_eq!(publish(&mut subs, Instant::now(), left()), 0);
        assert_eq!(subs.len(), 2, "the dropped subscription is forgotten");
        for sub in [&sub_a, &sub_c] {
            let got = sub.try_recv().expect("one event each");
            assert!(matches!(got, NodeEvent::Left { .. }));
            assert!(sub.try_recv().is_none());
        }
        drop(sub_c);
        publish(&mut subs, Instant::now(), left());
        assert_eq!(subs.len(), 1);
        assert!(sub_a.try_recv().is_some());
    }

    /// A waker that sets a flag (`flag.0`) when woken.
    #[cfg(feature = "stream")]
    fn flag_waker() -> (Arc<Flag>, std::task::Waker) {
        let flag = Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        let waker = std::task::Waker::from(Arc::clone(&flag));
        (flag, waker)
    }

    #[cfg(feature = "stream")]
    struct Flag(std::sync::atomic::AtomicBool);

    #[cfg(feature = "stream")]
    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[cfg(feature = "stream")]
    #[test]
    fn stream_wakes_on_publish() {
        use futures_core::Stream;
        use std::pin::Pin;
        use std::task::{Context, Poll};

        let (flag, waker) = flag_waker();
        let mut cx = Context::from_waker(&waker);
        let (s, mut sub) = subscription();
        let mut subs = vec![s];
        assert!(Pin::new(&mut sub).poll_next(&mut cx).is_pending());
        publish(&mut subs, Instant::now(), left());
        assert!(flag.0.load(Ordering::SeqCst), "the task was woken");
        match Pin::new(&mut sub).poll_next(&mut cx) {
            Poll::Ready(Some(t)) => assert_eq!(t.event, left()),
            other => panic!("{other:?}"),
        }
        drop(subs);
        assert!(matches!(
            Pin::new(&mut sub).poll_next(&mut cx),
            Poll::Ready(None)
        ));
    }

    #[test]
    fn a_closed_subscription_keeps_what_was_queued_then_ends() {
        let (s, sub) = subscription();
        let fd = sub.event_fd().unwrap();
        assert_eq!(sub.try_recv(), None);
        assert!(!readable(fd));
        let mut subs = vec![s];
        publish(&mut subs, Instant::now(), left());
        subs.pop().unwrap().close();
        assert!(sub.ended());
        assert!(readable(fd));
        assert_eq!(sub.recv_timeout(Duration::from_secs(60)), Some(left()));
        let t = Instant::now();
        assert_eq!(sub.recv_timeout(Duration::from_secs(60)), None);
        assert!(t.elapsed() < Duration::from_secs(30), "no wait once ended");
    }

    #[cfg(feature = "stream")]
    #[test]
    fn a_stream_ends_when_its_subscription_is_closed() {
        use futures_core::Stream;
        use std::pin::Pin;
        use std::task::{Context, Poll};

        let (flag, waker) = flag_waker();
        let mut cx = Context::from_waker(&waker);
        let (s, mut sub) = subscription();
        assert!(Pin::new(&mut sub).poll_next(&mut cx).is_pending());
        s.close();
        assert!(flag.0.load(Ordering::SeqCst), "the task was woken");
        assert!(matches!(
            Pin::new(&mut sub).poll_next(&mut cx),
            Poll::Ready(None)
        ));
    }
}
