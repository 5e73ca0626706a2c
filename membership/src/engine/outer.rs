//! *Task: Outer Processes* and *Task: Outer Reconfiguration* of the Appendix, plus
//! Wait-Reconfiguration: what a member that is not an initiator does.

use super::{Engine, ExcludeReason, Role};
use crate::msg::{Msg, MsgKind, Writer};
use crate::{ProcessId, Time};

/// Where an outer member is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum OuterPhase {
    /// Following the mgr: acking its submits, applying its commits.
    Follow,
    /// Wait-Reconfiguration: the leader is believed faulty and a more senior member
    /// should initiate; if none does in time, the most senior one not believed faulty
    /// (the one expected to initiate) is suspected.
    AwaitReconfig {
        /// When the wait (re)started.
        since: Time,
    },
    /// Answered R-int from the leader (a reconfigurer); waiting for its R-sub / R-com.
    Bound {
        /// When we last heard from the reconfigurer.
        since: Time,
    },
}

impl Engine {
    /// M-sub, M-com, R-int, R-sub, R-com arriving at a member.
    pub(super) fn on_outer_message(&mut self, now: Time, from: ProcessId, rx: &Msg) {
        if !self.role.is_outer() || !self.in_view(from) {
            self.stats.ignored += 1;
            return;
        }
        if rx.kind == MsgKind::RInt {
            return self.on_rint(now, from, rx);
        }
        let x = self.view.version;
        if rx.kind == MsgKind::MCom && self.leader != Some(from) && rx.version == x + 1 {
            return self.on_catch_up(now, from, rx);
        }
        // Submits and commits are accepted only from the initiator we follow.
        if self.leader != Some(from) {
            self.stats.ignored += 1;
            return;
        }
        match rx.kind {
            MsgKind::MSub | MsgKind::RSub => {
                let is_r = rx.kind == MsgKind::RSub;
                if is_r {
                    self.set_outer_phase(OuterPhase::Bound { since: now });
                }
                if rx.version == x + 1 {
                    self.pre_commit(now, &rx.update, rx.version, from);
                } else if !(is_r && rx.version <= x) {
                    // Only a reconfigurer may resubmit a version we already hold (Ahead).
                    self.stats.ignored += 1;
                    return;
                }
                if self.status == super::Status::Member {
                    let ack = if is_r {
                        MsgKind::RSubAck
                    } else {
                        MsgKind::MSubAck
                    };
                    self.send_ack(ack, rx.version, from);
                }
            }
            MsgKind::MCom | MsgKind::RCom => {
                if rx.version == x + 1 {
                    self.commit(now, &rx.update, rx.version);
                } else if rx.version > x + 1 {
                    self.stats.ignored += 1;
                    return;
                }
                if self.status != super::Status::Member {
                    return;
                }
                // `mgr, v1 <- r, v2`: the committer is (now) the mgr. (Unless the
                // commit removed it, D9: then `commit` made the most senior member the
                // leader and, if that one is believed faulty already, started the
                // reconfiguration or the wait for it, which must stand.)
                if self.role.is_outer() && self.leader == Some(from) {
                    self.set_outer_phase(OuterPhase::Follow);
                }
                if let Some(next) = rx.piggybacked() {
                    let v = self.view.version + 1;
                    self.pre_commit(now, next, v, from);
                    if self.status == super::Status::Member {
                        self.send_ack(MsgKind::MSubAck, v, from);
                    }
                }
            }
            _ => self.stats.ignored += 1,
        }
    }

    /// D27: the commit of the next version from a member of the view other than the
    /// one this process follows — a member that installed it and saw this process
    /// still at the version before ([`Engine::offer_catch_up`]). Accepted only if it
    /// is the proposal this process acknowledged (NextUpdate): in the crash model a
    /// member that installed a view reports it truly (the R-int's `Ahead` answers rest
    /// on the same), and the value is the one this process already accepted.
    fn on_catch_up(&mut self, now: Time, from: ProcessId, rx: &Msg) {
        let x = self.view.version;
        let acked = self
            .next_update
            .get()
            .is_some_and(|p| p.version == x + 1 && p.update.same_as(&rx.update));
        if !acked {
            self.stats.ignored += 1;
            return;
        }
        tracing::debug!(me = %self.me.id, %from, version = x + 1, "caught up on a commit it missed");
        self.stats.catch_ups += 1;
        self.commit(now, &rx.update, x + 1);
    }

    fn send_ack(&mut self, kind: MsgKind, version: u64, to: ProcessId) {
        let start = self.begin(kind);
        Writer::continue_at(&mut self.out_buf).u64(version);
        self.send_to_id(kind, to, start);
    }

    /// Task: Outer Reconfiguration: `recv(r, R-int(state(r)))`.
    fn on_rint(&mut self, now: Time, r: ProcessId, rx: &Msg) {
        if !self.senior_to_me(r) {
            // rank(p) > rank(r): r believes us faulty; crash_p.
            return self.exclude(now, ExcludeReason::Superseded);
        }
        let s = &rx.state;
        let x = self.view.version;
        if s.ver == x + 1 {
            if s.last.removes.contains(&r) {
                // LastCommit_r formed r's own view, so it never removes r (a process
                // that commits its own removal is out): no process of the crash model
                // sends this. Refused before anything is committed (D31); followed,
                // it made this process the mgr of a view r never installed and then
                // hit `set_outer_phase`'s assertion, a panic in release builds too.
                self.stats.ignored += 1;
                return;
            }
            // Catch up to r: DoCommit(LastCommit_r); state(p) <- state(r).
            self.commit(now, &s.last, s.ver);
            if self.status != super::Status::Member {
                return;
            }
            // r is still in the view and senior to this process (removals keep the
            // order), and not believed faulty (its message was delivered): the commit
            // cannot have made this process an initiator.
            debug_assert!(self.role.is_outer() && self.in_view(r));
            if !self.role.is_outer() {
                return;
            }
            self.next_update.set_opt(s.next_proposal());
            self.durable_seq += 1;
        } else if s.ver > x + 1 {
            // Prop. 5.1 says this cannot happen; we cannot catch up safely.
            return self.exclude(now, ExcludeReason::Superseded);
        }
        self.leader = Some(r);
        self.set_outer_phase(OuterPhase::Bound { since: now });
        let start = self.begin(MsgKind::RIntResp);
        {
            let next = self.next_update.get();
            Writer::continue_at(&mut self.out_buf).state(
                self.view.version,
                next,
                &self.last_commit,
            );
        }
        self.send_to_id(MsgKind::RIntResp, r, start);
    }

    /// An outer member came to believe `q` faulty (`learned_from`: by the Gossip of
    /// that process's message).
    pub(super) fn outer_on_faulty(
        &mut self,
        now: Time,
        q: ProcessId,
        learned_from: Option<ProcessId>,
    ) {
        if self.leader == Some(q) {
            return self.leader_failed(now);
        }
        match self.outer_phase() {
            Some(OuterPhase::Follow) => {
                // Gossip the suspicion to the mgr at once so it can remove q, unless
                // the mgr's own message carried it (its M-sub removing q, typically):
                // the mgr believes it already, and the answer gossips it anyway.
                if let Some(l) = self.leader.filter(|&l| learned_from != Some(l)) {
                    let start = self.begin(MsgKind::Heartbeat);
                    self.send_to_id(MsgKind::Heartbeat, l, start);
                }
            }
            Some(OuterPhase::AwaitReconfig { .. }) => {
                if self.initiate() && !Self::reconfiguration_sabotaged() {
                    self.start_reconfiguration(now);
                }
            }
            Some(OuterPhase::Bound { .. }) | None => {}
        }
    }

    /// The initiator we follow is believed faulty: INITIATE, or Wait-Reconfiguration.
    fn leader_failed(&mut self, now: Time) {
        if self.initiate() && !Self::reconfiguration_sabotaged() {
            self.start_reconfiguration(now);
        } else {
            self.set_outer_phase(OuterPhase::AwaitReconfig { since: now });
        }
    }

    /// `Sabotage::NeverReconfigure` (tests only; the constant `false` otherwise).
    fn reconfiguration_sabotaged() -> bool {
        crate::sabotage::active(crate::sabotage::Sabotage::NeverReconfigure)
    }

    /// The outer member's phase (`None` while this process is an initiator).
    fn outer_phase(&self) -> Option<OuterPhase> {
        match self.role {
            Role::Outer(phase) => Some(phase),
            Role::Initiator => None,
        }
    }

    /// An outer member moves to `phase`. Only an outer member has one.
    pub(super) fn set_outer_phase(&mut self, phase: OuterPhase) {
        assert!(
            self.role.is_outer(),
            "only an outer member has an outer phase"
        );
        debug_assert!(
            self.status == super::Status::Member,
            "only a member follows an initiator"
        );
        self.role = Role::Outer(phase);
    }

    pub(super) fn outer_deadline(&self) -> Option<Time> {
        match self.outer_phase()? {
            OuterPhase::Follow => None,
            OuterPhase::AwaitReconfig { since } => Some(since + self.cfg.protocol_timeout_us),
            // The reconfigurer itself may wait a protocol timeout for a State-Xfer answer.
            OuterPhase::Bound { since } => Some(since + 2 * self.cfg.protocol_timeout_us),
        }
    }

    /// A member waiting for a reconfigurer times out and suspects it.
    pub(super) fn outer_timeout(&mut self, now: Time) {
        let Some(due) = self.outer_deadline() else {
            return;
        };
        if now < due {
            return;
        }
        match self.outer_phase() {
            Some(OuterPhase::Follow) | None => {}
            Some(OuterPhase::Bound { .. }) => {
                if let Some(l) = self.leader {
                    self.local_faulty(now, l);
                }
            }
            Some(OuterPhase::AwaitReconfig { .. }) => {
                // Suspect the member whose R-int we wait for: the most senior one not
                // yet believed faulty (D10).
                let me = self.rank_of(self.me.id).unwrap_or(0);
                let expected = self.view.members[..me]
                    .iter()
                    .map(|m| m.id)
                    .find(|id| !self.is_faulty(*id));
                self.set_outer_phase(OuterPhase::AwaitReconfig { since: now });
                if let Some(e) = expected {
                    self.local_faulty(now, e);
                }
            }
        }
    }
}
