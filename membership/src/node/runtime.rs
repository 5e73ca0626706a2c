//! The node runtime: one thread runs the mio [`Driver`] around the sans-IO
//! [`NodeCore`], takes the handle's commands, and publishes what the core reports
//! (events to subscribers, the event log, status and metrics). It owns the clock, the
//! socket and the thread; every protocol decision is the core's.
//!
//! One iteration: the handle's commands (each applied to the core at the driver's
//! clock), then [`Driver::drive`] (flush, wait for a datagram, a deadline or a wake-up,
//! read, let the core react, flush again: a reply leaves before anything is published),
//! then the core's events are polled (which finishes the bookkeeping the core left
//! for after the step's datagrams: an install's records, a suspicion's closed channel,
//! the in-memory copy of the durable state) and published, stamped with the time of
//! the input that caused them. If the step wrote datagrams or has something to
//! publish, the thread first yields its core once
//! ([`NodeConfig::yield_before_publish`](super::NodeConfig::yield_before_publish)): the
//! processes waiting for a core (those its datagrams woke, the other receivers of a
//! fan-out) take their step before this one's bookkeeping and publication. (A step
//! whose events are held, below, takes them at once, without the yield.)
//!
//! While a view change this node takes part in is open (`DatagramCore::open_round`),
//! a step whose only events are a suspicion, a submission or a reconfiguration does
//! not publish them at all: they are held, with their input's arrival time, and
//! published (in order, stamped as they would have been) by the first step that
//! publishes — the round's install, at the latest `HOLD_MAX` (5 ms) after the oldest
//! ([`NodeConfig::publish_after_round`](super::NodeConfig::publish_after_round)). A
//! step with nothing new (an acknowledgement that is not the round's last) publishes
//! nothing either, not even what is held, and does not yield. On a
//! host whose processes share a core, that publication (tens of µs with cold caches)
//! otherwise runs between the round's steps: the mgr publishing its `Submitted` while
//! the acknowledgements wait for the core.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sgmp_transport::{DatagramCore, Driver, DropReason, OPEN_ROUND_SPIN_US};

use super::alerts::{Alerts, Observed};
use super::core::{CoreEvent, NodeCore, NodePhase};
use super::event::{publish, NodeEvent};
use super::eventlog::{EventLog, Stamp};
use super::handle::{Command, Shared, SnapshotProvider};
use super::status::{Departed, Departure, NodeMetrics, DEPARTED_CAP};
use crate::engine::{ExcludeReason, Status};
use crate::msg::MsgKind;
use crate::view::View;

/// The longest the loop sleeps without looking at its commands and metrics.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// How often the metrics are republished.
const METRICS_EVERY: Duration = Duration::from_millis(20);
/// How often the counters behind the warnings ([`Alerts`]) are looked at.
const ALERTS_EVERY: Duration = Duration::from_millis(250);
/// Longest an event is held while a round is open (see the [module docs](self)): the
/// driver's polling budget of a round, so a stalled round delays the application's
/// news by as much as it costs in polling, at most.
const HOLD_MAX: Duration = Duration::from_micros(OPEN_ROUND_SPIN_US);
/// Most events held at once (a round's steps produce a few: a suspicion, a
/// submission, a reconfiguration); room for them is reserved at start.
const HELD_CAP: usize = 64;

/// An event taken from the core and not yet published: who produced it, and when the
/// input of its step arrived (its stamp).
struct Held {
    at: Instant,
    me: crate::ProcessId,
    ev: CoreEvent,
}

/// The loop thread's state. See the [module docs](self).
pub(crate) struct Runtime {
    driver: Driver<NodeCore>,
    log: Option<EventLog>,
    rx: Receiver<Command>,
    shared: Arc<Shared>,
    snapshot: Option<SnapshotProvider>,
    leave_waiters: Vec<Sender<()>>,
    metrics_at: Instant,
    alerts: Alerts,
    alerts_at: Instant,
    events_dropped: u64,
    view_ts_us: u64,
    /// When the input of the step being published arrived, µs since the epoch.
    input_us: u64,
    status_dirty: bool,
    /// The last view installed (to see who a new one removes).
    last_view: View,
    /// Leave requests received, as last counted by the engine.
    leave_reqs: u64,
    /// Peers whose suspicion came with a leave request (best effort: in the same
    /// loop step).
    leaving: Vec<crate::ProcessId>,
    /// Processes removed from our views, oldest first.
    departed: std::collections::VecDeque<Departed>,
    /// [`NodeConfig::yield_before_publish`](super::NodeConfig::yield_before_publish).
    yield_before_publish: bool,
    /// Steps that yielded the core before publishing.
    yields: u64,
    /// [`NodeConfig::publish_after_round`](super::NodeConfig::publish_after_round).
    hold_in_round: bool,
    /// Events taken from the core, oldest first, not yet published.
    held: VecDeque<Held>,
    /// Steps whose events were held rather than published.
    holds: u64,
}

impl Runtime {
    pub(crate) fn new(
        driver: Driver<NodeCore>,
        log: Option<EventLog>,
        rx: Receiver<Command>,
        shared: Arc<Shared>,
        snapshot: Option<SnapshotProvider>,
        yield_before_publish: bool,
        hold_in_round: bool,
    ) -> Runtime {
        Runtime {
            driver,
            log,
            rx,
            shared,
            snapshot,
            leave_waiters: Vec::new(),
            metrics_at: Instant::now(),
            alerts: Alerts::default(),
            alerts_at: Instant::now(),
            events_dropped: 0,
            view_ts_us: 0,
            input_us: 0,
            status_dirty: true,
            last_view: View::with_capacity(0),
            leave_reqs: 0,
            leaving: Vec::new(),
            departed: std::collections::VecDeque::with_capacity(DEPARTED_CAP),
            yield_before_publish,
            yields: 0,
            hold_in_round,
            held: VecDeque::with_capacity(HELD_CAP),
            holds: 0,
        }
    }

    pub(crate) fn run(&mut self) {
        let me = self.driver.core().me();
        tracing::info!(
            node = %me,
            addr = %self.driver.local_addr(),
            advertised = %self.driver.core().addr(),
            "node started"
        );
        // A provider given at start: its first snapshot is in place before any
        // joiner can be answered.
        if let Some(f) = &self.snapshot {
            let bytes = f();
            warn_snapshot(self.driver.core_mut().set_snapshot(&bytes));
        }
        let now = self.driver.now();
        self.driver.core_mut().start(now);
        loop {
            let mut commanded = false;
            loop {
                match self.rx.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        return self.stop();
                    }
                    Ok(c) => {
                        self.command(c);
                        commanded = true;
                    }
                    Err(TryRecvError::Empty) => break,
                }
            }
            if commanded {
                self.driver.flush();
                self.pump(Instant::now());
            }
            let written = self.driver.datagrams_written();
            // Held events are published within HOLD_MAX of the oldest, input or not.
            let wait = self.hold_left().map_or(MAX_WAIT, |left| left.min(MAX_WAIT));
            if let Err(e) = self.driver.drive(Some(wait)) {
                tracing::error!("socket error: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            let at = self.input_instant();
            match self.publication() {
                Publication::Keep => continue,
                // The held events' bookkeeping (a suspicion's closed channel) and the
                // in-memory copy are done here, before the poll's first yield: a yield
                // before them (in the members' acknowledging steps) lengthened the
                // M-com phase, 10 of 10 pairs at N = 3, 17 and 63
                // (docs/bench/view_change_perf.md §18).
                Publication::Hold if self.take_events(at) => {
                    self.holds += 1;
                    continue;
                }
                Publication::Hold | Publication::Now => {}
            }
            let sent = self.driver.datagrams_written() != written;
            if self.yield_before_publish
                && (sent || self.driver.core().has_pending_events() || !self.held.is_empty())
            {
                // The step's datagrams are written (unless the socket pushed back) and
                // the protocol's state is updated; what is left is the bookkeeping the
                // core leaves to the event poll (an install's records and the service's
                // system view, the in-memory copy of the durable state) and
                // publication, which the protocol does not wait for: let the processes
                // its datagrams woke, or the other receivers of the fan-out that woke
                // this one, step first. The application hears of this step that much
                // later.
                self.yields += 1;
                std::thread::yield_now();
            }
            self.pump(at);
        }
    }

    /// When the input that ended the last `drive` arrived (the driver's last clock
    /// reading), as an [`Instant`]: events are stamped with it.
    fn input_instant(&self) -> Instant {
        let lag = self.driver.now().micros_since(self.driver.last_clock());
        Instant::now()
            .checked_sub(Duration::from_micros(lag))
            .unwrap_or_else(Instant::now)
    }

    /// How long the oldest held event may still wait (`None`: nothing is held).
    fn hold_left(&self) -> Option<Duration> {
        let oldest = self.held.front()?;
        Some(HOLD_MAX.saturating_sub(oldest.at.elapsed()))
    }

    /// What this step does with its events (see the [module docs](self)).
    fn publication(&self) -> Publication {
        let core = self.driver.core();
        publication(
            self.hold_in_round && core.open_round().is_some(),
            core.has_pending_events(),
            !self.held.is_empty(),
            self.hold_left().is_some_and(|left| left.is_zero()),
        )
    }

    /// Moves the core's events into `held`, stamped `at` (`false` as soon as one must
    /// be published at once, or `held` is full: the rest stay in the core).
    fn take_events(&mut self, at: Instant) -> bool {
        // Leave requests handled in this step: the suspicions they caused are leaves.
        let reqs = self.driver.core().engine_stats().received[MsgKind::LeaveReq as usize];
        let mut new_leaves = reqs.saturating_sub(self.leave_reqs);
        self.leave_reqs = reqs;
        let mut all_may_wait = true;
        while self.held.len() < HELD_CAP {
            let Some((me, ev)) = self.driver.core_polled().poll_event() else {
                // The bookkeeping the poll finished may have started a timer.
                self.driver.retime();
                return all_may_wait;
            };
            if let CoreEvent::Suspected { peer, .. } = &ev {
                if new_leaves > 0 {
                    new_leaves -= 1;
                    if self.leaving.len() >= DEPARTED_CAP {
                        self.leaving.remove(0);
                    }
                    self.leaving.push(*peer);
                }
            }
            all_may_wait &= may_wait_for_round(&ev);
            self.held.push_back(Held { at, me, ev });
        }
        self.driver.retime();
        false
    }

    fn stop(&mut self) {
        // What the last round held is news of this process's life: published first.
        self.publish_held();
        self.driver.core_mut().stop();
        self.driver.flush();
        // What the stop finished (an install's bookkeeping deferred by the last step,
        // a leave completed by a command of the same batch) is published, then the
        // subscriptions end: a subscriber learns that nothing more will come.
        self.pump(Instant::now());
        self.publish_status();
        self.publish_metrics();
        self.shared.close_subscriptions();
        let me = self.driver.core().me();
        tracing::info!(node = %me, "node stopped");
    }

    fn command(&mut self, c: Command) {
        let now = self.driver.now();
        match c {
            Command::Shutdown => {}
            Command::SetSnapshot(f, done) => {
                warn_snapshot(self.driver.core_mut().set_snapshot(&f()));
                self.snapshot = Some(f);
                let _ = done.send(());
            }
            Command::Fault(cmd, reply) => {
                let local = self.driver.local_addr();
                let (core, faults) = self.driver.core_and_faults();
                let _ = reply.send(super::fault::apply(faults, local, cmd, |p| core.resolve(p)));
            }
            Command::SystemView(reply) => {
                let _ = reply.send(self.driver.core().system_view().cloned());
            }
            Command::ReopenEventLog(reply) => {
                let _ = reply.send(match &mut self.log {
                    None => Ok(false),
                    Some(l) => l
                        .reopen()
                        .map(|()| true)
                        .map_err(|e| format!("{}: {e}", l.path().display())),
                });
            }
            Command::SetTags(tags, reply) => {
                let _ = reply.send(self.driver.core_mut().set_tags(now, &tags));
                self.status_dirty = true;
            }
            Command::Leave(reply) => {
                match self.driver.core().phase() {
                    NodePhase::Left | NodePhase::Stopped => {
                        let _ = reply.send(());
                        return;
                    }
                    _ => self.leave_waiters.push(reply),
                }
                let me = self.driver.core().me();
                if let Some(l) = &mut self.log {
                    l.leaving(me);
                }
                self.driver.core_mut().leave(now);
                self.status_dirty = true;
            }
        }
    }

    /// Publishes every event held and every event the core queued, then the status and
    /// metrics if due.
    fn pump(&mut self, at: Instant) {
        loop {
            self.publish_held();
            // Whether they may wait does not matter here: all are published.
            let _ = self.take_events(at);
            if self.held.is_empty() {
                break;
            }
        }
        if self.status_dirty {
            self.publish_status();
        }
        if self.metrics_at.elapsed() >= METRICS_EVERY {
            self.publish_metrics();
        }
        if self.alerts_at.elapsed() >= ALERTS_EVERY {
            self.check_alerts();
        }
    }

    /// Publishes the held events, oldest first, each stamped with its step's input.
    fn publish_held(&mut self) {
        let mut stamp: Option<Instant> = None;
        while let Some(Held { at, me, ev }) = self.held.pop_front() {
            if stamp != Some(at) {
                // A step's records and view timestamp carry its input's arrival (as its
                // events do), not the time they are written (after the yield before
                // publication, or the round they were held through).
                // Both clocks are set back from now by the same elapsed time, so the
                // records' `ts_us` and `mono_us` name one moment.
                stamp = Some(at);
                let both = Stamp::of(at);
                self.input_us = both.ts_us;
                if let Some(l) = &mut self.log {
                    l.stamp_inputs_at(Some(both));
                }
            }
            self.on_event(at, me, ev);
        }
        if let (Some(_), Some(l)) = (stamp, &mut self.log) {
            l.stamp_inputs_at(None);
        }
    }

    /// Warns (rate-limited) about what would otherwise fail silently.
    fn check_alerts(&mut self) {
        let now = Instant::now();
        self.alerts_at = now;
        let core = self.driver.core();
        let t = core.transport_stats();
        let ep = core.endpoint();
        let o = Observed {
            phase: core.phase(),
            probes_received: t.probes_received,
            bad_tag: t.dropped(DropReason::BadTag),
            bad_tag_from: ep.last_drop_from(DropReason::BadTag),
            foreign: t.dropped(DropReason::ForeignCluster),
            foreign_from: ep.last_drop_from(DropReason::ForeignCluster),
            round: Duration::from_micros(core.config().coldstart_round_us),
            seeds: core.config().seeds.clone(),
        };
        let me = core.me();
        for a in self.alerts.check(now, &o) {
            tracing::warn!(node = %me, "{a}");
        }
    }

    fn on_event(&mut self, at: Instant, me: crate::ProcessId, ev: CoreEvent) {
        self.status_dirty = true;
        let out = match ev {
            CoreEvent::Started => {
                if let Some(l) = &mut self.log {
                    l.start(me, self.driver.core().addr());
                }
                return;
            }
            CoreEvent::Joining { contacts } => {
                tracing::info!(node = %me, contacts, "joining the group");
                return;
            }
            CoreEvent::Founded => {
                // A founder received no snapshot (this incarnation's founding).
                self.shared.received.lock().clear();
                NodeEvent::Founded { me }
            }
            CoreEvent::ViewInstalled { version } => {
                let core = self.driver.core();
                let view = match core.installed_view(version) {
                    Some(v) => v.clone(),
                    None => core.engine().view().clone(),
                };
                if let Some(l) = &mut self.log {
                    l.view(me, version, &view.members, &view.tags);
                }
                self.note_departures(&view);
                tracing::info!(
                    node = %me,
                    version,
                    members = ?view.members.iter().map(|m| m.id).collect::<Vec<_>>(),
                    "view installed"
                );
                if let Some(f) = &self.snapshot {
                    let bytes = f();
                    warn_snapshot(self.driver.core_polled().set_snapshot(&bytes));
                }
                self.view_ts_us = self.input_us;
                // The status shows the view before anyone hears of it.
                self.publish_status();
                NodeEvent::ViewInstalled { me, view }
            }
            CoreEvent::Suspected { peer, cause } => {
                if let Some(l) = &mut self.log {
                    l.suspect(me, peer, cause);
                }
                NodeEvent::Suspected { me, peer }
            }
            CoreEvent::Joined { version, snapshot } => {
                if let Some(l) = &mut self.log {
                    l.joined(me, version);
                }
                // A join, not the hot path: the copy may allocate.
                self.shared.received.lock().clone_from(&snapshot);
                NodeEvent::Joined {
                    me,
                    version,
                    snapshot,
                }
            }
            CoreEvent::Excluded { reason } => {
                debug_assert_ne!(reason, ExcludeReason::Left);
                if let Some(l) = &mut self.log {
                    l.excluded(me);
                }
                NodeEvent::Excluded { me, reason }
            }
            CoreEvent::Left => {
                if let Some(l) = &mut self.log {
                    l.left(me);
                }
                NodeEvent::Left { me }
            }
            CoreEvent::LeaveDone => {
                self.publish_status();
                for w in self.leave_waiters.drain(..) {
                    let _ = w.send(());
                }
                return;
            }
            CoreEvent::Reconfiguring { version } => {
                if let Some(l) = &mut self.log {
                    l.reconfiguring(me, version);
                }
                NodeEvent::Reconfiguring { me, version }
            }
            CoreEvent::Submitted { version } => {
                if let Some(l) = &mut self.log {
                    l.submitted(me, version);
                }
                NodeEvent::Submitted { me, version, at }
            }
            CoreEvent::SystemView { change } => {
                // Polled every step: the change is still among the core's last ones.
                let Some(change) = self.driver.core().system_change(change).cloned() else {
                    tracing::warn!(node = %me, "a system view change was overwritten before it was published");
                    return;
                };
                if let Some(l) = &mut self.log {
                    l.system_view(me, &change);
                }
                NodeEvent::SystemView { me, change }
            }
            CoreEvent::Rejoining { old, new, .. } => {
                // The new incarnation has received nothing yet.
                self.shared.received.lock().clear();
                NodeEvent::Rejoining { old, new }
            }
            CoreEvent::Recovered { version } => {
                if let Some(l) = &mut self.log {
                    l.recovered(me, version);
                }
                NodeEvent::Recovered { me, version }
            }
            CoreEvent::StorageFailed { error } => {
                if let Some(l) = &mut self.log {
                    l.storage_failed(me, &error);
                }
                NodeEvent::StorageFailed { me, error }
            }
        };
        let mut subs = self.shared.subscribers.lock();
        self.events_dropped += publish(&mut subs.live, at, out);
    }

    /// Records who `view` removed from the last view installed.
    fn note_departures(&mut self, view: &View) {
        for m in crate::view::members_missing_from(&self.last_view.members, &view.members) {
            let how = match self.leaving.iter().position(|p| *p == m.id) {
                Some(i) => {
                    self.leaving.swap_remove(i);
                    Departure::Left
                }
                None if self.driver.core().engine().removed_as_leaver(m.id) => Departure::Left,
                None => Departure::Excluded,
            };
            if self.departed.len() >= DEPARTED_CAP {
                self.departed.pop_front();
            }
            self.departed.push_back(Departed {
                member: *m,
                how,
                version: view.version,
            });
        }
        self.last_view.clone_from(view);
    }

    fn publish_status(&mut self) {
        self.status_dirty = false;
        let core = self.driver.core();
        let phase = core.phase();
        let engine = core.engine();
        let mut s = self.shared.status.lock();
        s.me = core.me();
        s.addr = core.addr();
        s.phase = phase;
        if engine.status() == Status::Member {
            s.view.clone_from(engine.view());
            s.view_ts_us = self.view_ts_us;
        } else if phase != NodePhase::Left && phase != NodePhase::Stopped {
            s.view = View::with_capacity(0);
        }
        s.leader = engine.leader();
        s.is_mgr = engine.is_mgr();
        s.faulty.clear();
        s.faulty.extend_from_slice(engine.faulty());
        s.rejoins = core.stats().rejoins;
        s.departed.clear();
        s.departed.extend(self.departed.iter().copied());
        s.tags = engine.tags().to_set();
        s.recovery = core.recovery_status(self.driver.now());
        match core.service() {
            Some(svc) => {
                s.system_version = if svc.synced() { svc.view().version } else { 0 };
                s.system_size = svc.view().size();
                s.clients = svc.view().clients.len();
            }
            None => {
                s.system_version = 0;
                s.system_size = 0;
                s.clients = 0;
            }
        }
    }

    fn publish_metrics(&mut self) {
        self.metrics_at = Instant::now();
        let core = self.driver.core();
        let c = *core.stats();
        let m = NodeMetrics {
            engine: *core.engine_stats(),
            transport: core.transport_stats(),
            driver: self.driver.stats(),
            core: c,
            views_installed: c.views_installed,
            backlogged: c.backlogged,
            backlog_len: core.backlog_len() as u64,
            backlog_overflow: c.backlog_overflow,
            send_refused: c.send_refused + c.send_errors,
            events_dropped: self.events_dropped,
            event_log_lost: self.log.as_ref().map_or(0, EventLog::lost),
            yields_before_publish: self.yields,
            events_held: self.holds,
            probes_sent: c.probes_sent,
            rejoins: c.rejoins,
            service: core.service_stats().unwrap_or_default(),
        };
        *self.shared.metrics.lock() = m;
    }
}

/// What a loop step does with the core's events once its input is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Publication {
    /// Publish what is held, then the step's events, status and metrics.
    Now,
    /// Hold the step's events if every one of them may wait for the round's end
    /// (taking them says; otherwise publish now).
    Hold,
    /// The step has nothing to publish and what is held keeps waiting: an
    /// acknowledgement that does not end the round publishes nothing, so the next
    /// one is read at once rather than after the submission's publication.
    Keep,
}

/// The rule behind [`Runtime::publication`]: `holding`, a round this node takes part
/// in is open and the node holds in rounds; `pending`, the core has events; `held`,
/// events are held; `expired`, the oldest has waited `HOLD_MAX`.
fn publication(holding: bool, pending: bool, held: bool, expired: bool) -> Publication {
    match (holding && !expired, pending, held) {
        (false, _, _) => Publication::Now,
        (true, true, _) => Publication::Hold,
        (true, false, true) => Publication::Keep,
        (true, false, false) => Publication::Now,
    }
}

/// Whether publishing `ev` may wait for the end of the round open at its step: the
/// news of a suspicion, a submission or a reconfiguration (what the round itself will
/// settle). Anything else, and whatever was held before it, is published at once: an
/// install (the round's end, the application's view, the snapshot refresh), a join or
/// an exclusion, a system view change (read from the core's recent changes while they
/// are there), a leave's completion.
fn may_wait_for_round(ev: &CoreEvent) -> bool {
    matches!(
        ev,
        CoreEvent::Suspected { .. } | CoreEvent::Submitted { .. } | CoreEvent::Reconfiguring { .. }
    )
}

/// Tells the operator that the application's snapshot was refused (too large); joiners
/// keep getting the previous one.
fn warn_snapshot(r: Result<(), crate::SnapshotTooLarge>) {
    if let Err(e) = r {
        tracing::warn!("{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::{publication, Publication};

    #[test]
    fn a_step_with_nothing_new_in_an_open_round_keeps_what_is_held() {
        // The mgr's first acknowledgement of three: no event, the submission held.
        assert_eq!(publication(true, false, true, false), Publication::Keep);
        // Its submission step, and the install's (taking the install says "now").
        assert_eq!(publication(true, true, false, false), Publication::Hold);
        assert_eq!(publication(true, true, true, false), Publication::Hold);
        // Nothing held, nothing new: the usual publication (status, metrics).
        assert_eq!(publication(true, false, false, false), Publication::Now);
    }

    #[test]
    fn outside_a_round_or_past_the_hold_everything_is_published() {
        for pending in [false, true] {
            for held in [false, true] {
                assert_eq!(publication(false, pending, held, false), Publication::Now);
                assert_eq!(publication(true, pending, held, true), Publication::Now);
            }
        }
    }

    mod stop {
        use std::sync::mpsc;
        use std::time::{Duration, Instant};

        use super::super::super::handle::{Command, NodeHandle};
        use super::super::super::{Node, NodeConfig, NodeEvent, Subscription};
        use super::super::Runtime;
        use crate::view::Member;
        use crate::TagSet;

        /// A node's loop state and handle, not started, and a subscription made first.
        fn built(id: &str) -> (Runtime, NodeHandle, Subscription) {
            let cfg =
                NodeConfig::from_toml_str(&format!("id = \"{id}\"\nlisten = \"127.0.0.1:0\"\n"))
                    .unwrap();
            let mut sub = None;
            let (rt, h) = Node::build(cfg, None, Some(&mut sub), None).unwrap();
            (rt, h, sub.unwrap())
        }

        #[test]
        fn a_leave_in_the_batch_of_the_shutdown_completes_and_the_subscriptions_end() {
            let (mut rt, h, events) = built("rt-leave");
            let (done_tx, done_rx) = mpsc::channel();
            // One batch: the loop takes both before its first wait.
            h.tx.send(Command::Leave(done_tx)).unwrap();
            h.tx.send(Command::Shutdown).unwrap();
            rt.run();
            // Not a member: out at once; the waiter hears it (it was dropped unanswered,
            // `leave` said "stopped").
            assert_eq!(done_rx.try_recv(), Ok(()));
            assert!(events.ended());
            while events.try_recv().is_some() {}
            let t = Instant::now();
            assert!(events.recv_timeout(Duration::from_secs(60)).is_none());
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "an ended subscription does not wait"
            );
            // One made after the stop ends at once: no loop is left to publish to it.
            let late = h.subscribe();
            assert!(late.ended());
            assert!(late.try_recv().is_none());
        }

        #[test]
        fn what_the_stop_finishes_is_published_before_the_subscriptions_end() {
            let (mut rt, _h, events) = built("rt-tags");
            let me = Member {
                id: rt.driver.core().me(),
                addr: rt.driver.core().addr(),
            };
            let now = rt.driver.now();
            rt.driver.core_mut().found_with(now, &[me]);
            rt.pump(Instant::now());
            let mut founded = false;
            while let Some(ev) = events.try_recv() {
                founded |= matches!(ev, NodeEvent::ViewInstalled { .. });
            }
            assert!(founded);
            let mut tags = TagSet::new();
            tags.insert("role", "db").unwrap();
            let (tx, rx) = mpsc::channel();
            // A lone mgr commits its own tags at once; the install's bookkeeping (and
            // its event) waits for the event poll: the stop must run it and publish.
            rt.command(Command::SetTags(tags.encode(), tx));
            assert_eq!(rx.try_recv(), Ok(Ok(())));
            assert!(rt.driver.core().has_pending_events());
            assert!(!events.ended());
            rt.stop();
            let mut installed = None;
            while let Some(ev) = events.try_recv() {
                if let NodeEvent::ViewInstalled { view, .. } = ev {
                    installed = Some(view);
                }
            }
            let view = installed.expect("the install the stop finished is published");
            assert_eq!(view.tags_of(me.id).get("role"), Some("db"));
            assert!(events.ended());
        }
    }
}
