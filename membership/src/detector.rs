//! Failure detection by ring monitoring (paper §2.1, footnote 3).
//!
//! Because members agree on a ranking, each member watches only one other: the
//! nearest more senior member it does not already believe faulty (the most senior
//! member watches the most junior, closing the ring). Each member sends heartbeats to
//! the member that watches it. Any message from the watched member counts as a sign of
//! life. The detector only *suspects*; what a suspicion means is the engine's business.

use crate::view::View;
use crate::{ProcessId, Time};

/// Longest wait for the first heartbeat to a new watcher of a running ring, µs (see
/// [`RingDetector::reset`]).
pub const NEW_WATCHER_DELAY_US: u64 = 1_000;

/// What the detector asks its owner to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetectorAction {
    /// Send a heartbeat to this member (the one watching us).
    Heartbeat(ProcessId),
    /// The watched member has been silent too long: suspect it.
    Suspect(ProcessId),
    /// The watched member has been silent for half the timeout: check whether this
    /// process still hears a majority of its view before the suspicion comes (D21;
    /// only with [`RingDetector::with_probe`]).
    Probe(ProcessId),
}

/// Ring-monitoring failure detector; a small state machine driven by the engine.
#[derive(Clone, Debug)]
pub struct RingDetector {
    heartbeat_us: u64,
    timeout_us: u64,
    /// Extra silence allowed from the first member we watch after joining: it may not
    /// have installed the view that adds us yet, so it does not know it owes us
    /// heartbeats.
    grace_us: u64,
    /// The member we watch, and when we last heard from it.
    watched: Option<(ProcessId, Time)>,
    /// The member that watches us, and when we next owe it a heartbeat.
    watcher: Option<(ProcessId, Time)>,
    /// Suspicions of the watched member postponed since we last heard from it
    /// ([`RingDetector::postpone`]).
    postponed: u32,
    /// Whether [`DetectorAction::Probe`] is issued (D21).
    probe: bool,
    /// A probe was issued for the current silence of the watched member.
    probed: bool,
}

impl RingDetector {
    /// A detector sending heartbeats every `heartbeat_us` and suspecting after `timeout_us` of silence.
    pub fn new(heartbeat_us: u64, timeout_us: u64) -> Self {
        RingDetector {
            heartbeat_us,
            timeout_us,
            grace_us: 0,
            watched: None,
            watcher: None,
            postponed: 0,
            probe: false,
            probed: false,
        }
    }

    /// Also issue [`DetectorAction::Probe`] when the watched member has been silent for
    /// half the timeout (D21, docs/PROTOCOL.md).
    pub fn with_probe(mut self, probe: bool) -> Self {
        self.probe = probe;
        self
    }

    /// Sets the extra silence allowed from the first member we watch after joining (see
    /// `docs/PROTOCOL.md`, D12).
    pub fn with_grace(mut self, grace_us: u64) -> Self {
        self.grace_us = grace_us;
        self
    }

    /// Stops all monitoring (not a member).
    pub fn clear(&mut self) {
        self.watched = None;
        self.watcher = None;
    }

    /// Recomputes whom we watch and who watches us, after a view change or a new
    /// suspicion. `faulty` tells which members we already believe faulty. The first
    /// heartbeat to our first watcher is due at once; to a new watcher replacing
    /// another, a quarter heartbeat interval (at most [`NEW_WATCHER_DELAY_US`]) later,
    /// so that it does not leave in the view change's step (D12).
    pub fn reset(
        &mut self,
        now: Time,
        view: &View,
        me: ProcessId,
        faulty: impl Fn(ProcessId) -> bool,
    ) {
        let Some(my) = view.index_of(me) else {
            self.clear();
            return;
        };
        let n = view.len();
        let live = |i: usize| {
            let id = view.members[i].id;
            (id != me && !faulty(id)).then_some(id)
        };
        // Nearest more senior live member, wrapping to the most junior.
        let target = (1..n).map(|d| (my + n - d) % n).find_map(live);
        // Nearest more junior live member, wrapping to the most senior.
        let watcher = (1..n).map(|d| (my + d) % n).find_map(live);
        match (target, self.watched) {
            (Some(t), Some((old, _))) if t == old => {}
            (Some(t), _) => {
                self.watched = Some((t, now));
                self.postponed = 0;
                self.probed = false;
            }
            (None, _) => self.watched = None,
        }
        match (watcher, self.watcher) {
            (Some(w), Some((old, _))) if w == old => {}
            // A new watcher in a running ring (the old one was removed or is believed
            // faulty, or a joiner came between): the reset runs in the step that
            // handles a view change's message (an M-sub naming the faulty member, an
            // install), and a heartbeat due at once would leave in that same step, one
            // more datagram before the step's end on the round's critical path. It
            // waits a quarter interval (at most NEW_WATCHER_DELAY_US) instead: the new
            // watcher counts our silence from its own reset, so this costs at most that
            // much of the margin every heartbeat interval leaves, and any message we
            // send it meanwhile (an ack to a new watcher that is the mgr) is a sign of
            // life already.
            (Some(w), Some(_)) => {
                let delay = (self.heartbeat_us / 4).min(NEW_WATCHER_DELAY_US);
                self.watcher = Some((w, now + delay));
            }
            // The first watcher (this process just became a member): at once.
            (Some(w), None) => self.watcher = Some((w, now)),
            (None, _) => self.watcher = None,
        }
    }

    /// Gives the member we watch the grace period from `now` (called once we joined).
    pub fn grant_grace(&mut self, now: Time) {
        if let Some((_, last)) = &mut self.watched {
            *last = (*last).max(now + self.grace_us);
            self.probed = false;
        }
    }

    /// Any message from `from` is a sign of life.
    pub fn heard_from(&mut self, now: Time, from: ProcessId) {
        if let Some((w, last)) = &mut self.watched {
            if *w == from {
                *last = now;
                self.postponed = 0;
                self.probed = false;
            }
        }
    }

    /// A sign of life of `from` observed at `at`, which may be older than the last one
    /// counted (a batch reported late): counts only if it is newer, so it never brings
    /// the suspicion deadline (or a join grace) forward.
    pub fn heard_at(&mut self, at: Time, from: ProcessId) {
        if let Some((w, last)) = &mut self.watched {
            if *w == from && at > *last {
                *last = at;
                self.postponed = 0;
                self.probed = false;
            }
        }
    }

    /// Instead of suspecting `p` (just returned by [`RingDetector::poll`] as
    /// `Suspect(p)`), watches it for one more timeout from `now`, at most `max` times in
    /// a row without hearing from it. Returns false (and changes nothing) once `max`
    /// is used up: the suspicion stands.
    pub fn postpone(&mut self, now: Time, p: ProcessId, max: u32) -> bool {
        if self.postponed >= max {
            return false;
        }
        self.postponed += 1;
        self.watched = Some((p, now));
        self.probed = false;
        true
    }

    /// The member we watch, if any.
    pub fn watched(&self) -> Option<ProcessId> {
        self.watched.map(|(p, _)| p)
    }

    /// The member watching us, if any.
    pub fn watcher(&self) -> Option<ProcessId> {
        self.watcher.map(|(p, _)| p)
    }

    /// When the watched member's silence reaches the timeout if nothing comes from it
    /// meanwhile: the suspicion [`RingDetector::poll`] would return then (`None`: no
    /// one watched). The node warms the round's paths shortly before it
    /// (`NodeConfig::warm_up_us`).
    pub fn suspicion_due(&self) -> Option<Time> {
        self.watched.map(|(_, last)| last + self.timeout_us)
    }

    /// The next action due at `now`, if any. Call until it returns `None`.
    pub fn poll(&mut self, now: Time) -> Option<DetectorAction> {
        if let Some((w, due)) = &mut self.watcher {
            if now >= *due {
                *due = now + self.heartbeat_us;
                return Some(DetectorAction::Heartbeat(*w));
            }
        }
        if let Some((t, last)) = self.watched {
            let silent = now.micros_since(last);
            if silent >= self.timeout_us {
                self.watched = None;
                return Some(DetectorAction::Suspect(t));
            }
            if self.probe && !self.probed && silent >= self.timeout_us / 2 {
                self.probed = true;
                return Some(DetectorAction::Probe(t));
            }
        }
        None
    }

    /// When [`RingDetector::poll`] next has something to do.
    pub fn next_deadline(&self) -> Option<Time> {
        let hb = self.watcher.map(|(_, due)| due);
        let sus = self.watched.map(|(_, last)| {
            if self.probe && !self.probed {
                last + self.timeout_us / 2
            } else {
                last + self.timeout_us
            }
        });
        crate::earliest(hb, sus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Member;

    fn view(names: &[&str]) -> View {
        let mut v = View::with_capacity(8);
        for n in names {
            v.members.push(Member {
                id: ProcessId::named(n, 1),
                addr: "127.0.0.1:1".parse().unwrap(),
            });
        }
        v
    }

    #[test]
    fn ring_watches_nearest_live_senior_and_wraps() {
        let v = view(&["a", "b", "c", "d"]);
        let mut d = RingDetector::new(10, 50);
        d.reset(Time(0), &v, ProcessId::named("c", 1), |_| false);
        assert_eq!(d.watched(), Some(ProcessId::named("b", 1)));
        assert_eq!(d.watcher(), Some(ProcessId::named("d", 1)));
        d.reset(Time(0), &v, ProcessId::named("a", 1), |_| false);
        assert_eq!(d.watched(), Some(ProcessId::named("d", 1)));
        assert_eq!(d.watcher(), Some(ProcessId::named("b", 1)));
        // b faulty: c now watches a.
        d.reset(Time(0), &v, ProcessId::named("c", 1), |p| {
            p.node.as_str() == "b"
        });
        assert_eq!(d.watched(), Some(ProcessId::named("a", 1)));
    }

    #[test]
    fn a_newly_watched_member_gets_a_grace_period() {
        let v = view(&["a", "b"]);
        let mut d = RingDetector::new(10, 50).with_grace(100);
        d.reset(Time(0), &v, ProcessId::named("b", 1), |_| false);
        d.grant_grace(Time(0));
        assert_eq!(d.next_deadline(), Some(Time(0)));
        let _ = d.poll(Time(0));
        assert_eq!(
            d.poll(Time(120)),
            Some(DetectorAction::Heartbeat(ProcessId::named("a", 1)))
        );
        assert_eq!(d.poll(Time(120)), None, "still within grace + timeout");
        let _ = d.poll(Time(150));
        assert_eq!(
            d.poll(Time(150)),
            Some(DetectorAction::Suspect(ProcessId::named("a", 1)))
        );
    }

    #[test]
    fn a_suspicion_is_postponed_at_most_max_times_without_news() {
        let v = view(&["a", "b"]);
        let a = ProcessId::named("a", 1);
        let mut d = RingDetector::new(1_000, 50);
        d.reset(Time(0), &v, ProcessId::named("b", 1), |_| false);
        let _ = d.poll(Time(0));
        assert_eq!(d.poll(Time(50)), Some(DetectorAction::Suspect(a)));
        assert!(d.postpone(Time(50), a, 2));
        assert_eq!(d.poll(Time(99)), None);
        assert_eq!(d.poll(Time(100)), Some(DetectorAction::Suspect(a)));
        assert!(d.postpone(Time(100), a, 2));
        // News from a resets the count.
        d.heard_from(Time(120), a);
        assert_eq!(d.poll(Time(170)), Some(DetectorAction::Suspect(a)));
        assert!(d.postpone(Time(170), a, 2));
        assert_eq!(d.poll(Time(220)), Some(DetectorAction::Suspect(a)));
        assert!(d.postpone(Time(220), a, 2));
        assert_eq!(d.poll(Time(270)), Some(DetectorAction::Suspect(a)));
        assert!(!d.postpone(Time(270), a, 2));
        assert_eq!(d.watched(), None);
    }

    #[test]
    fn a_probe_comes_at_half_the_timeout_once_per_silence() {
        let v = view(&["a", "b"]);
        let a = ProcessId::named("a", 1);
        let mut d = RingDetector::new(1_000, 100).with_probe(true);
        d.reset(Time(0), &v, ProcessId::named("b", 1), |_| false);
        let _ = d.poll(Time(0));
        assert_eq!(d.next_deadline(), Some(Time(50)));
        assert_eq!(d.poll(Time(50)), Some(DetectorAction::Probe(a)));
        assert_eq!(d.poll(Time(60)), None);
        assert_eq!(d.next_deadline(), Some(Time(100)));
        d.heard_from(Time(70), a);
        assert_eq!(d.poll(Time(119)), None);
        assert_eq!(d.poll(Time(120)), Some(DetectorAction::Probe(a)));
        assert_eq!(d.poll(Time(170)), Some(DetectorAction::Suspect(a)));
    }

    #[test]
    fn heard_at_defers_suspicion_and_never_goes_back() {
        let v = view(&["a", "b"]);
        let a = ProcessId::named("a", 1);
        let mut d = RingDetector::new(1_000, 50);
        d.reset(Time(0), &v, ProcessId::named("b", 1), |_| false);
        let _ = d.poll(Time(0));
        d.heard_at(Time(40), a);
        assert_eq!(d.poll(Time(89)), None);
        // An older sign of life (reported late) changes nothing.
        d.heard_at(Time(10), a);
        assert_eq!(d.poll(Time(89)), None);
        assert_eq!(d.poll(Time(90)), Some(DetectorAction::Suspect(a)));
        // It resets the postponement count, like a message.
        assert!(d.postpone(Time(90), a, 1));
        d.heard_at(Time(100), a);
        assert_eq!(d.poll(Time(150)), Some(DetectorAction::Suspect(a)));
        assert!(d.postpone(Time(150), a, 1));
        // Someone else's sign of life is not a's.
        d.heard_at(Time(160), ProcessId::named("c", 1));
        assert_eq!(d.poll(Time(200)), Some(DetectorAction::Suspect(a)));
        assert!(!d.postpone(Time(200), a, 1));
    }

    /// The first heartbeat to the first watcher is due at once; to a watcher replacing
    /// another (here a's watcher b becomes faulty, so c watches a) a quarter interval
    /// later, at most 1 ms, and then every interval.
    #[test]
    fn a_new_watcher_of_a_running_ring_gets_its_first_heartbeat_a_little_later() {
        let v = view(&["a", "b", "c"]);
        let (a, c) = (ProcessId::named("a", 1), ProcessId::named("c", 1));
        for (hb, delay) in [(400, 100), (100_000, NEW_WATCHER_DELAY_US)] {
            let mut d = RingDetector::new(hb, 10 * hb);
            d.reset(Time(0), &v, a, |_| false);
            assert_eq!(d.watcher(), Some(ProcessId::named("b", 1)));
            assert_eq!(
                d.poll(Time(0)),
                Some(DetectorAction::Heartbeat(ProcessId::named("b", 1)))
            );
            d.reset(Time(50), &v, a, |p| p.node.as_str() == "b");
            assert_eq!(d.watcher(), Some(c));
            assert_eq!(d.next_deadline(), Some(Time(50 + delay)));
            assert_eq!(d.poll(Time(50 + delay - 1)), None);
            assert_eq!(d.poll(Time(50 + delay)), Some(DetectorAction::Heartbeat(c)));
            assert_eq!(d.poll(Time(50 + delay + hb - 1)), None);
            assert_eq!(
                d.poll(Time(50 + delay + hb)),
                Some(DetectorAction::Heartbeat(c))
            );
        }
    }

    #[test]
    fn the_suspicion_is_due_a_timeout_after_the_last_sign_of_life() {
        let v = view(&["a", "b", "c"]);
        let mut d = RingDetector::new(10_000, 100).with_probe(true);
        assert_eq!(d.suspicion_due(), None, "no one watched");
        d.reset(Time(0), &v, ProcessId::named("b", 1), |_| false);
        assert_eq!(d.suspicion_due(), Some(Time(100)));
        d.heard_from(Time(40), ProcessId::named("a", 1));
        assert_eq!(
            d.suspicion_due(),
            Some(Time(140)),
            "a sign of life moves it"
        );
        // The first heartbeat to c, then the probe, which does not move it.
        assert_eq!(
            d.poll(Time(90)),
            Some(DetectorAction::Heartbeat(ProcessId::named("c", 1)))
        );
        assert_eq!(
            d.poll(Time(90)),
            Some(DetectorAction::Probe(ProcessId::named("a", 1)))
        );
        assert_eq!(d.suspicion_due(), Some(Time(140)));
        assert_eq!(
            d.poll(Time(140)),
            Some(DetectorAction::Suspect(ProcessId::named("a", 1)))
        );
        assert_eq!(d.suspicion_due(), None, "suspected: no longer watched");
    }

    #[test]
    fn silence_leads_to_one_suspicion_and_heartbeats_are_periodic() {
        let v = view(&["a", "b"]);
        let mut d = RingDetector::new(10, 50);
        d.reset(Time(0), &v, ProcessId::named("b", 1), |_| false);
        assert_eq!(
            d.poll(Time(0)),
            Some(DetectorAction::Heartbeat(ProcessId::named("a", 1)))
        );
        assert_eq!(d.poll(Time(5)), None);
        assert_eq!(d.next_deadline(), Some(Time(10)));
        d.heard_from(Time(30), ProcessId::named("a", 1));
        let hb = Some(DetectorAction::Heartbeat(ProcessId::named("a", 1)));
        assert_eq!(d.poll(Time(40)), hb);
        assert_eq!(d.next_deadline(), Some(Time(50)));
        assert_eq!(d.poll(Time(79)), hb);
        assert_eq!(d.poll(Time(79)), None);
        // 50 us of silence since t=30: suspected once, then only heartbeats.
        assert_eq!(
            d.poll(Time(80)),
            Some(DetectorAction::Suspect(ProcessId::named("a", 1)))
        );
        assert_eq!(d.poll(Time(200)), hb);
        assert_eq!(d.poll(Time(200)), None);
    }
}

#[cfg(test)]
#[path = "detector_tests_mutants.rs"]
mod tests_mutants;
