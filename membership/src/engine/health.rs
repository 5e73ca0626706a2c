//! Local health (D21 in docs/PROTOCOL.md): before a process acts on its own ring
//! detector's suspicion, it checks that it still hears a majority of its view.
//!
//! A process that cannot hear the others (a one-way cut, alone or with a few
//! companions) sees its watched member fall silent exactly as if it had crashed. Its
//! suspicion would travel by Gossip to members that hear that member well, and the
//! group would remove healthy members one after the other (VERIFICATION.md, chaos
//! findings 8 and 9). So, when the watched member has been silent for half the
//! suspicion timeout, the process *probes*: it sends a heartbeat to every other member
//! it does not believe faulty. Each is acknowledged by the receiver's transport, and the
//! driver reports the acknowledgement as a sign of life ([`super::Engine::peer_alive`]).
//! When the timeout expires, the suspicion stands only if the process heard, since the
//! probe, from a majority of its view not counting the suspect (itself included).
//! Otherwise it withholds the suspicion and watches again, for as long as the silence
//! lasts (D24): it never puts the suspicion on the wire, and when the split heals it
//! either goes on as a member (the group kept it) or learns from a member's "you were
//! excluded" ([`Engine::told_excluded`]) that it is out, and rejoins at once. If its
//! view can no longer reach a majority although the split healed (beliefs are for
//! good, or it missed a later view), it stops and recovers (D24 rule 7:
//! [`Engine::member_alive`], `MAX_WITHHOLD`).
//!
//! Everything here only delays or withholds suspicions, or crashes the process: both
//! always allowed by the paper's model. Used only with
//! [`crate::EngineConfig::local_health`], since it needs the transport's reports.

use super::ranks::{self, key_of};
use super::{Engine, ExcludeReason};
use crate::{ProcessId, Time};

/// When each member of the view was last heard from, and the current probe.
#[derive(Debug)]
pub(super) struct Heard {
    /// Last sign of life per member; at most one entry per member of the view.
    seen: SignTable,
    /// Bound of `seen`: a view holds at most this many members.
    max_members: usize,
    /// Last sign each member runs and reaches this process by any path D21 does not
    /// count (a datagram the transport refused, a discovery probe); D24 rule 7.
    alive: SignTable,
    /// The probe in progress: whose silence started it, and when it was sent.
    probe: Option<(ProcessId, Time)>,
    /// Suspicions withheld in a row because no majority was heard (reset by a view
    /// installation or a verified suspicion). Counted here, not by the detector, whose
    /// count any transport sign of life from the suspect resets.
    unverified: u32,
}

impl Heard {
    /// A table for views of up to `max_members` (allocated once).
    pub(super) fn new(max_members: usize) -> Heard {
        Heard {
            seen: SignTable::with_capacity(max_members),
            max_members,
            alive: SignTable::with_capacity(max_members),
            probe: None,
            unverified: 0,
        }
    }

    /// `from` was heard at `at` (keeps the newest time).
    pub(super) fn note(&mut self, at: Time, from: ProcessId) {
        self.seen.note(self.max_members, at, from);
    }

    /// `from` showed it runs at `at`, by a path D21 does not count.
    pub(super) fn note_alive(&mut self, at: Time, from: ProcessId) {
        self.alive.note(self.max_members, at, from);
    }

    /// Whether every process in the tables is one that `member` accepts (the debug
    /// builds' check that a suspicion needs no retain).
    pub(super) fn holds_only(&self, member: impl Fn(ProcessId) -> bool) -> bool {
        self.seen
            .ids
            .iter()
            .chain(&self.alive.ids)
            .all(|&p| member(p))
    }

    /// Forgets processes that are no longer members (`member`: the engine's lookup
    /// through its view index, so that a reset costs O(N) and not a scan of the view
    /// per entry; no allocation).
    pub(super) fn retain(&mut self, member: impl Fn(ProcessId) -> bool) {
        self.seen.retain(&member);
        self.alive.retain(&member);
    }

    /// A view was installed: this process hears its group again.
    pub(super) fn installed(&mut self) {
        self.unverified = 0;
    }

    /// True if `p` was heard at or after `since`.
    fn heard_since(&self, p: ProcessId, since: Time) -> bool {
        self.seen.at_or_after(p, since)
    }

    /// True if `p` was heard, or showed it runs by any path, at or after `since`.
    fn alive_since(&self, p: ProcessId, since: Time) -> bool {
        self.heard_since(p, since) || self.alive.at_or_after(p, since)
    }

    /// When the probe for a silence of `p` was sent, if one is in progress.
    fn probe_of(&self, p: ProcessId) -> Option<Time> {
        self.probe.and_then(|(q, t)| (q == p).then_some(t))
    }
}

/// A time per process, in three parallel arrays (allocated once): a lookup, made for
/// every message a member receives, reads the 8-byte keys (eight processes per cache
/// line) and compares a whole 40-byte process id only where a key matches, instead of
/// reading one 48-byte entry per member of the view (at 63 members, ~47 cache lines
/// per lookup on a step whose caches the other nodes' steps emptied).
#[derive(Debug)]
struct SignTable {
    keys: Vec<u64>,
    ids: Vec<ProcessId>,
    times: Vec<Time>,
}

impl SignTable {
    fn with_capacity(n: usize) -> SignTable {
        SignTable {
            keys: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            times: Vec::with_capacity(n),
        }
    }

    /// The entry of `p`, if any.
    #[inline]
    fn find(&self, p: ProcessId) -> Option<usize> {
        ranks::position(&self.keys, p, |i| self.ids[i])
    }

    /// `p` showed a sign at `at` (the newest time is kept); a new process only while
    /// fewer than `max` are held.
    fn note(&mut self, max: usize, at: Time, p: ProcessId) {
        if let Some(i) = self.find(p) {
            self.times[i] = self.times[i].max(at);
        } else if self.ids.len() < max {
            self.keys.push(key_of(&p));
            self.ids.push(p);
            self.times.push(at);
        }
        debug_assert!(self.keys.len() == self.ids.len() && self.ids.len() == self.times.len());
    }

    /// True if `p` showed a sign at or after `since`.
    #[inline]
    fn at_or_after(&self, p: ProcessId, since: Time) -> bool {
        self.find(p).is_some_and(|i| self.times[i] >= since)
    }

    /// Keeps the processes `keep` accepts, in order (no allocation).
    fn retain(&mut self, keep: impl Fn(ProcessId) -> bool) {
        let mut w = 0;
        for r in 0..self.ids.len() {
            if keep(self.ids[r]) {
                self.keys[w] = self.keys[r];
                self.ids[w] = self.ids[r];
                self.times[w] = self.times[r];
                w += 1;
            }
        }
        self.keys.truncate(w);
        self.ids.truncate(w);
        self.times.truncate(w);
    }
}

impl Engine {
    /// Records a sign of life of a member (a message or a transport report). Only of a
    /// member of the current view: a message whose Gossip made this mgr commit a view
    /// without its sender (a leaver's, D9) is noted after the install, and a non-member
    /// kept in the tables until the next install took a slot a member may need (the
    /// tables hold `max_members`); found by the simulator once its long runs kept the
    /// debug assertions on (seeds 5422, 8124, 9203, 12850).
    pub(super) fn note_heard(&mut self, at: Time, from: ProcessId) {
        if self.cfg.local_health && self.in_view(from) {
            self.heard.note(at, from);
        }
    }

    /// The watched member `q` has been silent for half the timeout: heartbeat every
    /// other member not believed faulty, so that their acknowledgements show whether
    /// this process still hears a majority.
    pub(super) fn probe(&mut self, now: Time, q: ProcessId) {
        if !self.cfg.local_health {
            return;
        }
        self.heard.probe = Some((q, now));
        for i in 0..self.view.members.len() {
            let m = self.view.members[i];
            if m.id != self.me.id && m.id != q && !self.is_faulty(m.id) {
                let start = self.begin(crate::msg::MsgKind::Heartbeat);
                self.push_out(crate::msg::MsgKind::Heartbeat, m, start);
            }
        }
    }

    /// True if, since `since`, this process heard from a majority of its view without
    /// counting `p` (itself included, members it believes faulty not counted).
    fn hears_majority_without(&self, since: Time, p: ProcessId) -> bool {
        let heard = self
            .view
            .members
            .iter()
            .filter(|m| {
                m.id != p
                    && (m.id == self.me.id
                        || (!self.is_faulty(m.id) && self.heard.heard_since(m.id, since)))
            })
            .count();
        heard >= self.view.majority()
    }

    /// D21 for the ring detector's suspicion of `p`: true if it may stand (this
    /// process heard a majority since its probe for `p`'s silence).
    pub(super) fn suspicion_verified(&mut self, p: ProcessId) -> bool {
        let ok = self
            .heard
            .probe_of(p)
            .is_some_and(|t| self.hears_majority_without(t, p));
        if ok {
            self.heard.unverified = 0;
        }
        ok
    }

    /// Counts a withheld suspicion. Withholding lasts as long as the silence does
    /// (D24): a process that hears no majority is either cut off, and then the group
    /// removes it and tells it so when the split heals, or one of several minorities,
    /// and then nobody can move on until the split heals, when it simply goes on.
    pub(super) fn unverified_suspicion(&mut self) {
        self.heard.unverified = self.heard.unverified.saturating_add(1);
    }

    /// True if this process is withholding a suspicion now: it withheld one since its
    /// last view installation or verified suspicion, and it has not heard a majority of
    /// its view within the last suspicion timeout (D24).
    pub fn withholding(&self, now: Time) -> bool {
        self.cfg.local_health
            && self.status == super::Status::Member
            && self.heard.unverified > 0
            && !self.hears_majority_without(
                Time(now.0.saturating_sub(self.cfg.suspect_timeout_us)),
                self.me.id,
            )
    }

    /// A member `p` of this process's view showed that it runs and reaches this
    /// process outside the group's messages: a datagram the transport refused (this
    /// process believes `p` faulty: Disconnect), or a discovery probe (`p` may refuse
    /// this process's datagrams, believing it faulty). From a member it trusts, that
    /// counts as heard (D21), as a transport acknowledgement does; from one it believes
    /// faulty, only as alive. Beliefs are for good, so if
    /// such members make up the majority a withholding process lacks, the split is
    /// over for the network but not for the group's beliefs: this process stays a
    /// minority for good. After `MAX_POSTPONE` withheld suspicions it then stops
    /// ([`ExcludeReason::IsolatedMinority`]) as D21 did, and comes back as a new
    /// incarnation with its durable state (D23; D24 rule 7). Returns true if it stopped.
    pub fn member_alive(&mut self, now: Time, p: ProcessId) -> bool {
        if !self.cfg.local_health
            || self.status != super::Status::Member
            || p == self.me.id
            || !self.in_view(p)
        {
            return false;
        }
        if self.is_faulty(p) {
            self.heard.note_alive(now, p);
        } else {
            // A member it trusts reached it: heard, as a transport acknowledgement is.
            self.heard.note(now, p);
        }
        self.cut_off_by_beliefs(now) && {
            self.exclude(now, ExcludeReason::IsolatedMinority);
            true
        }
    }

    /// True if this process has withheld at least `MAX_POSTPONE` suspicions in a row
    /// and hears no majority of the members it trusts, but a majority of its view runs
    /// and reaches it by some path, all within the last suspicion timeout (see
    /// [`Engine::member_alive`]).
    pub(super) fn cut_off_by_beliefs(&self, now: Time) -> bool {
        if !self.cfg.local_health
            || self.status != super::Status::Member
            || self.heard.unverified < super::MAX_POSTPONE
        {
            return false;
        }
        let since = Time(now.0.saturating_sub(self.cfg.suspect_timeout_us));
        let (mut trusted, mut alive) = (0, 0);
        for m in &self.view.members {
            if m.id == self.me.id {
                trusted += 1;
                alive += 1;
            } else if self.heard.alive_since(m.id, since) {
                alive += 1;
                if !self.is_faulty(m.id) && self.heard.heard_since(m.id, since) {
                    trusted += 1;
                }
            }
        }
        trusted < self.view.majority() && alive >= self.view.majority()
    }

    /// True once this process has withheld more than [`super::MAX_WITHHOLD`]
    /// suspicions in a row while it heard some other member it trusts within the last
    /// suspicion timeout (D24 rule 7).
    pub(super) fn withheld_too_long(&self, now: Time) -> bool {
        let since = Time(now.0.saturating_sub(self.cfg.suspect_timeout_us));
        self.heard.unverified > super::MAX_WITHHOLD
            && self.view.members.iter().any(|m| {
                m.id != self.me.id && !self.is_faulty(m.id) && self.heard.heard_since(m.id, since)
            })
    }

    /// Suspicions withheld since the last view installation or verified suspicion.
    pub fn withheld_suspicions(&self) -> u32 {
        self.heard.unverified
    }

    /// "You were excluded" (D24): `by` says it installed view `version` without this
    /// process. If `version` is above this process's view, it was removed (views form
    /// one sequence) and can never install another view: it stops
    /// ([`ExcludeReason::Removed`]) and this returns true. A notice that proves nothing
    /// (an older or equal version) is ignored and returns false. Stopping is always
    /// safe (D13), so the notice needs no more trust than the cluster key gives it.
    pub fn told_excluded(&mut self, now: Time, by: ProcessId, version: u64) -> bool {
        if self.status != super::Status::Member || by == self.me.id || version <= self.view.version
        {
            return false;
        }
        self.exclude(now, ExcludeReason::Removed);
        true
    }

    /// A process withholding its suspicions (see [`Engine::withholding`]) learned that
    /// its group is being recovered without it (a name of its view runs a newer
    /// process that is looking for the group): waiting for the split to heal is
    /// pointless, so it stops ([`ExcludeReason::IsolatedMinority`]) and, as a new
    /// incarnation with its durable state, takes part in the recovery (D23, D24).
    /// Returns true if it stopped.
    pub fn stop_withholding(&mut self, now: Time) -> bool {
        if !self.withholding(now) {
            return false;
        }
        self.exclude(now, ExcludeReason::IsolatedMinority);
        true
    }

    /// D21 for a suspicion from outside (the transport): true if this process heard a
    /// majority of its view, without `p`, within the last suspicion timeout.
    pub(super) fn outside_suspicion_verified(&self, now: Time, p: ProcessId) -> bool {
        let since = Time(now.0.saturating_sub(self.cfg.suspect_timeout_us));
        self.hears_majority_without(since, p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_the_newest_time_and_its_capacity() {
        let a = ProcessId::named("a", 1);
        let b = ProcessId::named("b", 1);
        let c = ProcessId::named("c", 1);
        let mut h = Heard::new(2);
        h.note(Time(10), a);
        h.note(Time(5), a);
        h.note(Time(7), b);
        h.note(Time(9), c); // full: ignored
        assert!(h.heard_since(a, Time(10)));
        assert!(!h.heard_since(b, Time(8)));
        assert!(!h.heard_since(c, Time(0)));
        h.probe = Some((b, Time(3)));
        assert_eq!(h.probe_of(b), Some(Time(3)));
        assert_eq!(h.probe_of(a), None);
    }

    /// Catches `Heard::retain -> ()` (`health.rs`): a view change forgets the processes
    /// removed, so the table (bounded by `max_members`) has room for the new members
    /// and every entry names a member.
    #[test]
    fn retain_forgets_removed_members_and_frees_their_room() {
        let a = ProcessId::named("a", 1);
        let b = ProcessId::named("b", 1);
        let c = ProcessId::named("c", 1);
        let addr = "127.0.0.1:1".parse().expect("an address");
        let mut view = crate::view::View::with_capacity(2);
        view.members.push(crate::view::Member { id: a, addr });
        view.members.push(crate::view::Member { id: c, addr });
        let mut h = Heard::new(2);
        h.note(Time(5), a);
        h.note(Time(5), b);
        h.note_alive(Time(5), b);
        h.retain(|p| view.contains(p));
        assert!(!h.heard_since(b, Time(0)), "b left the view");
        assert!(!h.alive_since(b, Time(0)), "b left the view");
        h.note(Time(6), c);
        assert!(h.heard_since(c, Time(6)), "room for the new member c");
        assert!(h.heard_since(a, Time(5)));
    }

    /// The parallel arrays behave as the list of (process, time) they replace: one
    /// entry per process (an incarnation is another process), the newest time kept,
    /// the bound respected, and `retain` keeping the order without allocating.
    #[test]
    fn sign_tables_keep_one_newest_time_per_process() {
        let a1 = ProcessId::named("a", 1);
        let a2 = ProcessId::named("a", 2);
        let b = ProcessId::named("b", 1);
        let c = ProcessId::named("c", 1);
        assert_ne!(key_of(&a1), key_of(&a2));
        let mut t = SignTable::with_capacity(3);
        t.note(3, Time(5), a1);
        t.note(3, Time(3), a1);
        t.note(3, Time(4), a2);
        t.note(3, Time(7), b);
        t.note(3, Time(9), c); // full: not held
        assert_eq!(t.ids, [a1, a2, b]);
        assert!(t.at_or_after(a1, Time(5)) && !t.at_or_after(a1, Time(6)));
        assert!(t.at_or_after(a2, Time(4)) && !t.at_or_after(a2, Time(5)));
        assert!(!t.at_or_after(c, Time(0)));
        let cap = t.ids.capacity();
        t.retain(|p| p != a2);
        assert_eq!(t.ids, [a1, b]);
        assert_eq!(t.keys, [key_of(&a1), key_of(&b)]);
        assert_eq!(t.times, [Time(5), Time(7)]);
        assert_eq!(t.ids.capacity(), cap);
        t.note(3, Time(9), c);
        assert!(t.at_or_after(c, Time(9)) && t.at_or_after(b, Time(7)));
    }
}
