//! Joining: a process outside the group asks any member; the request reaches the mgr,
//! whose update adds it and whose State-Xfer hands it the view and the application
//! state. Also the member side: forwarding requests and the mgr's join queue.

use super::{Engine, Event, OuterPhase, Role, Status};
use crate::msg::{Msg, MsgKind, Writer};
use crate::view::Member;
use crate::{ProcessId, Time};

impl Engine {
    /// Starts joining through `contacts` (any members; tried in turn until a
    /// State-Xfer arrives).
    pub fn join(&mut self, now: Time, contacts: &[Member]) {
        if self.status != Status::Idle || contacts.is_empty() {
            return;
        }
        self.contacts.clear();
        let cap = self.contacts.capacity();
        self.contacts
            .extend(contacts.iter().filter(|c| c.id != self.me.id).take(cap));
        if self.contacts.is_empty() {
            return;
        }
        self.status = Status::Joining;
        self.next_contact = 0;
        self.send_join_request(now);
    }

    fn send_join_request(&mut self, now: Time) {
        let to = self.contacts[self.next_contact % self.contacts.len()];
        self.next_contact = self.next_contact.wrapping_add(1);
        let start = self.begin(MsgKind::JoinReq);
        let me = self.me;
        Writer::continue_at(&mut self.out_buf).member(&me);
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
        self.view.members.clear();
        self.view.members.extend_from_slice(&rx.members);
        self.view.version = rx.version;
        self.last_commit.copy_from(&rx.update);
        self.has_next_update = false;
        self.faulty.clear();
        self.received_snapshot.clear();
        self.received_snapshot.extend_from_slice(&rx.snapshot);
        self.status = Status::Member;
        self.role = Role::Outer;
        self.outer = OuterPhase::Follow;
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
            self.note_faulty(now, g);
        }
        self.send_xfer_ack(rx.version, from);
    }

    /// ack(Join) : NextUpdate_p.
    fn send_xfer_ack(&mut self, version: u64, to: ProcessId) {
        let start = self.begin(MsgKind::StateXferAck);
        {
            let next = self.has_next_update.then_some(&self.next_update);
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
        if self.role != Role::Outer
            || rx.version != self.view.version
            || !self.view.contains(self.me.id)
        {
            self.stats.ignored += 1;
            return;
        }
        self.leader = Some(from);
        self.outer = OuterPhase::Follow;
        self.send_xfer_ack(rx.version, from);
    }

    /// A join request reaching a member: the mgr queues it, others forward it.
    pub(super) fn on_join_request(&mut self, now: Time, joiner: Member) {
        if joiner.id == self.me.id
            || self.view.contains(joiner.id)
            || self.removed.contains(&joiner.id)
        {
            self.stats.joins_refused += 1;
            return;
        }
        if self.role == Role::Initiator && self.init.is_mgr() {
            // A newer incarnation of a member means the old one is gone.
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
                self.add_faulty(now, old);
            }
            if self.pending_joins.iter().any(|m| m.id == joiner.id) {
                return;
            }
            if self.pending_joins.len() >= self.pending_joins.capacity() {
                self.stats.joins_refused += 1;
                return;
            }
            self.pending_joins.push(joiner);
            self.maybe_start_update(now);
        } else if let Some(l) = self
            .leader
            .filter(|l| *l != self.me.id && !self.is_faulty(*l))
        {
            let start = self.begin(MsgKind::JoinReq);
            Writer::continue_at(&mut self.out_buf).member(&joiner);
            self.send_to_id(MsgKind::JoinReq, l, start);
        }
    }
}
