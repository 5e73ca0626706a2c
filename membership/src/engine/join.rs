//! Joining: a process outside the group asks any member; the request reaches the mgr,
//! whose update adds it and whose State-Xfer hands it the view and the application
//! state. Also the member side: forwarding requests and the mgr's join queue, and the
//! cap on join requests handled per second ([`JoinRate`]).

use super::{Engine, Event, OuterPhase, Role, Status};
use crate::msg::{Msg, MsgKind, Writer};
use crate::view::Member;
use crate::{ProcessId, Time};

/// A token bucket capping the join requests a member handles (forwards or queues) per
/// second, so that a storm of join requests costs bounded CPU and view changes.
///
/// Holds one second's worth of tokens (`per_sec`), refilled continuously from the
/// engine's clock; each join request that passes the cheap checks (not a member, not
/// removed before) takes one, and one arriving at an empty bucket is refused and counted
/// in [`EngineStats::joins_refused`](super::EngineStats::joins_refused) (an honest
/// joiner repeats its request every `join_retry_us`, so it is only delayed). `per_sec`
/// 0: no cap (the default of [`Engine::new`]; the node runtime sets
/// `max_joins_per_sec`). No allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JoinRate {
    per_sec: u32,
    /// Thousandths of a token.
    milli: u64,
    last: Time,
}

impl JoinRate {
    /// A full bucket of `per_sec` tokens (0: unlimited).
    pub fn new(per_sec: u32) -> JoinRate {
        JoinRate {
            per_sec,
            milli: per_sec as u64 * 1000,
            last: Time::ZERO,
        }
    }

    /// The configured rate (0: unlimited).
    pub fn per_sec(&self) -> u32 {
        self.per_sec
    }

    /// Takes a token at `now`; `false` if none is left.
    pub fn take(&mut self, now: Time) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        let cap = self.per_sec as u64 * 1000;
        // per_sec tokens per second = per_sec / 1000 milli-tokens per µs.
        let refill = now
            .micros_since(self.last)
            .saturating_mul(self.per_sec as u64)
            / 1000;
        self.milli = self.milli.saturating_add(refill).min(cap);
        self.last = self.last.max(now);
        if self.milli >= 1000 {
            self.milli -= 1000;
            true
        } else {
            false
        }
    }
}

impl Engine {
    /// Caps the join requests this engine handles at `per_sec` per second (0: no cap),
    /// see [`JoinRate`]. Builder style, for right after [`Engine::new`].
    pub fn with_max_joins_per_sec(mut self, per_sec: u32) -> Engine {
        self.join_rate = JoinRate::new(per_sec);
        self
    }

    /// Starts joining through `contacts` (any members; tried in turn until a
    /// State-Xfer arrives).
    pub fn join(&mut self, now: Time, contacts: &[Member]) {
        if self.status != Status::Idle || contacts.is_empty() {
            return;
        }
        self.contacts.clear();
        self.contacts.extend(
            contacts
                .iter()
                .filter(|c| c.id != self.me.id)
                .take(super::MAX_JOIN_CONTACTS),
        );
        if self.contacts.is_empty() {
            return;
        }
        self.set_status(Status::Joining);
        self.next_contact = 0;
        self.send_join_request(now);
    }

    fn send_join_request(&mut self, now: Time) {
        let to = self.contacts[self.next_contact % self.contacts.len()];
        self.next_contact = self.next_contact.wrapping_add(1);
        let start = self.begin(MsgKind::JoinReq);
        let me = self.me;
        let mut w = Writer::continue_at(&mut self.out_buf);
        w.member(&me);
        w.tags(&self.tag.wanted);
        self.push_out(MsgKind::JoinReq, to, start);
        self.join_retry_at = Some(now + self.cfg.join_retry_us);
    }

    pub(super) fn join_timeout(&mut self, now: Time) {
        if self.join_retry_at.is_some_and(|t| now >= t) {
            self.send_join_request(now);
        }
    }

    /// While joining, only State-Xfer naming us matters.
    pub(super) fn on_message_joining(&mut self, now: Time, from: ProcessId, rx: &Msg) {
        if rx.kind != MsgKind::StateXfer || !rx.members.iter().any(|m| m.id == self.me.id) {
            self.stats.ignored += 1;
            return;
        }
        // A view no honest mgr sends (version 0 is "no view"; a process listed twice
        // would count twice toward every majority): refused, not taken up as this
        // process's first view.
        if rx.version == 0 || crate::view::names_a_process_twice(&rx.members) {
            self.stats.ignored += 1;
            return;
        }
        self.view.members.clear();
        self.view.members.extend_from_slice(&rx.members);
        self.ranks.refresh(&self.view);
        self.view.tags.copy_from(&rx.view_tags);
        self.view.version = rx.version;
        self.last_commit.copy_from(&rx.update);
        self.log_commit(rx.version);
        self.next_update.clear();
        self.faulty.clear();
        self.received_snapshot.clear();
        self.received_snapshot.extend_from_slice(&rx.snapshot);
        self.set_status(Status::Member);
        self.role = Role::Outer(OuterPhase::Follow);
        self.leader = Some(from);
        self.join_retry_at = None;
        self.events.push_back(Event::Joined {
            version: rx.version,
        });
        self.installed(now);
        self.detector.grant_grace(now);
        if rx.gossip.contains(&self.me.id) {
            return self.exclude(now, super::ExcludeReason::SuspectedBy(from));
        }
        for &g in &rx.gossip {
            self.note_faulty(now, g, super::SuspicionCause::Reported);
        }
        self.send_xfer_ack(rx.version, from);
    }

    /// ack(Join) : NextUpdate_p.
    fn send_xfer_ack(&mut self, version: u64, to: ProcessId) {
        let start = self.begin(MsgKind::StateXferAck);
        {
            let next = self.next_update.get();
            let mut w = Writer::continue_at(&mut self.out_buf);
            w.u64(version);
            w.state(self.view.version, next, &self.last_commit);
        }
        self.send_to_id(MsgKind::StateXferAck, to, start);
    }

    /// State-Xfer reaching a process that is already a member of that view: it was
    /// added by an earlier initiator; report NextUpdate to the new one (Figure 4).
    pub(super) fn on_state_xfer_as_member(&mut self, now: Time, from: ProcessId, rx: &Msg) {
        let _ = now;
        if !self.role.is_outer() || rx.version != self.view.version || !self.in_view(self.me.id) {
            self.stats.ignored += 1;
            return;
        }
        self.leader = Some(from);
        self.set_outer_phase(OuterPhase::Follow);
        self.send_xfer_ack(rx.version, from);
    }

    /// A join request reaching a member: the mgr queues it, others forward it.
    pub(super) fn on_join_request(&mut self, now: Time, joiner: Member, tags: &[u8]) {
        if joiner.id == self.me.id || self.in_view(joiner.id) || self.removed.contains(&joiner.id) {
            self.stats.joins_refused += 1;
            return;
        }
        if !self.join_rate.take(now) {
            self.stats.joins_refused += 1;
            return;
        }
        // D24 rule 5: a newer process of a name of this view asks to join, so the old
        // one is gone; a member that hears no majority stops withholding and takes
        // part in the recovery (D23) as a new incarnation.
        let replaces_a_member = self
            .view
            .members
            .iter()
            .any(|m| m.id.node == joiner.id.node && m.id.incarnation < joiner.id.incarnation);
        if replaces_a_member && self.stop_withholding(now) {
            return;
        }
        if self.role == Role::Initiator && self.init.is_mgr() {
            // One incarnation per node (D8): a newer request replaces an older queued
            // one; an older or repeated one is refused or ignored.
            if let Some(p) = self
                .pending_joins
                .iter_mut()
                .find(|m| m.id.node == joiner.id.node)
            {
                if p.id.incarnation < joiner.id.incarnation {
                    *p = joiner;
                    self.queue_joiner_tags(joiner.id, tags);
                } else if p.id.incarnation > joiner.id.incarnation {
                    self.stats.joins_refused += 1;
                }
                return;
            }
            // A newer incarnation of a member means the old one is gone; GetUpdate
            // removes it in the same update that adds the joiner.
            if let Some(old) = self
                .view
                .members
                .iter()
                .find(|m| m.id.node == joiner.id.node)
                .map(|m| m.id)
            {
                if old.incarnation > joiner.id.incarnation {
                    self.stats.joins_refused += 1;
                    return;
                }
                self.note_faulty(now, old, super::SuspicionCause::Replaced);
            }
            if self.pending_joins.len() >= self.cfg.max_pending_joins
                || crate::sabotage::active(crate::sabotage::Sabotage::DropJoins)
            {
                self.stats.joins_refused += 1;
                return;
            }
            self.pending_joins.push(joiner);
            self.queue_joiner_tags(joiner.id, tags);
            // Idle: GetUpdate now; in flight: the old incarnation no longer counts.
            self.initiator_on_faulty(now, joiner.id);
        } else if let Some(l) = self
            .leader
            .filter(|l| *l != self.me.id && !self.is_faulty(*l))
        {
            let start = self.begin(MsgKind::JoinReq);
            let mut w = Writer::continue_at(&mut self.out_buf);
            w.member(&joiner);
            w.tags(tags);
            self.send_to_id(MsgKind::JoinReq, l, start);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::JoinRate;
    use crate::testkit::Cluster;
    use crate::{EngineConfig, Time};

    #[test]
    fn token_bucket() {
        let mut r = JoinRate::new(10);
        let t = Time(5_000_000);
        for _ in 0..10 {
            assert!(r.take(t));
        }
        assert!(!r.take(t));
        // 100 ms later: one more token.
        assert!(r.take(t + 100_000));
        assert!(!r.take(t + 100_000));
        // A long pause refills to one second's worth, no more.
        let later = t + 60_000_000;
        assert_eq!((0..20).filter(|_| r.take(later)).count(), 10);
        // Unlimited.
        let mut u = JoinRate::new(0);
        assert!((0..10_000).all(|_| u.take(Time(0))));
    }

    #[test]
    fn join_storm_at_the_mgr_is_capped() {
        let cfg = EngineConfig {
            max_members: 16,
            max_snapshot: 64,
            ..EngineConfig::default()
        };
        let mut c = Cluster::new(3, 0, cfg.clone());
        let placeholder = crate::Engine::new(cfg, crate::testkit::member_of(99, 1));
        let mgr = std::mem::replace(&mut c.engines[0], placeholder);
        c.engines[0] = mgr.with_max_joins_per_sec(5);
        assert!(c.engines[0].is_mgr());
        let before = c.engines[0].stats().joins_refused;
        // 50 join requests at the mgr in the same instant from made-up processes.
        let now = c.now;
        for i in 0..50u64 {
            let m = crate::view::Member {
                id: crate::ProcessId::named(&format!("fake{i}"), 1),
                addr: crate::testkit::member_of(3, 1).addr,
            };
            c.engines[0].on_join_request(now, m, &[]);
        }
        let refused = c.engines[0].stats().joins_refused - before;
        assert_eq!(refused, 45, "5 tokens, 45 refused");
        // A second later the bucket is full again.
        let m = crate::view::Member {
            id: crate::ProcessId::named("late", 1),
            addr: crate::testkit::member_of(3, 1).addr,
        };
        c.engines[0].on_join_request(now + 1_000_000, m, &[]);
        assert_eq!(c.engines[0].stats().joins_refused - before, 45);
    }
}
