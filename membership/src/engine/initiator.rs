//! The initiator tasks of the Appendix: *Task: mgr* and *Task: Reconfiguration
//! Initiator*. Both submit a value to their local view, wait for every member to
//! respond or be believed faulty, commit on a majority (else `crash`), run the
//! State-Xfer handshake with joiners, and multicast the commit with the next submit
//! piggy-backed (commit-submit compression).

use super::staged::Staged;
use super::{Engine, Event, ExcludeReason, Role, SuspicionCause};
use crate::msg::{Msg, MsgKind};
use crate::view::{Proposal, Update};
use crate::{ProcessId, Time};

/// Which initiator task runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum InitKind {
    /// Task: mgr.
    Mgr,
    /// Task: Reconfiguration Initiator (becomes mgr after its R-com).
    Reconfigurer,
}

/// How many times an initiator that has not heard from a majority of its view when the
/// protocol timeout expires (Interrogate, Submit) waits one more protocol timeout,
/// re-sending its R-int or submit, before it suspects the silent members (and, having
/// no majority, stops). Waiting is always safe; it keeps loss, a long pause or a short
/// clog from turning into suspicions that leave nobody with a majority
/// (`docs/PROTOCOL.md`, D15 and D16).
pub(super) const MAX_EXTENSIONS: u32 = 3;

/// Where the initiator is in its task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// mgr with nothing in flight: waiting for GetUpdate to return a value.
    Idle,
    /// Reconfiguration Phase I: R-int sent, collecting state(p).
    Interrogate,
    /// M-sub / R-sub sent for `sub`, collecting acks.
    Submit,
    /// Committed locally; State-Xfer sent to the joiners, collecting ack(Join).
    Xfer,
}

/// State of the initiator tasks.
#[derive(Debug)]
pub(super) struct Initiator {
    pub(super) kind: InitKind,
    pub(super) phase: Phase,
    started: Time,
    /// Protocol timeouts of the current phase that found no majority answered and
    /// were extended instead of suspecting the silent members (at most
    /// [`MAX_EXTENSIONS`]).
    extensions: u32,
    /// Who answered in the current phase: by view index (Interrogate, Submit) or by
    /// index into `sub.adds` (Xfer).
    responded: Vec<bool>,
    /// v1: the value in flight, and the version it forms.
    sub: Update,
    sub_version: u64,
    /// v2: the value to submit with the commit, or ⊥.
    next: Staged<Update>,
    /// DetermineProposal inputs, folded in as state(p) answers arrive: Ahead_r (the
    /// update that formed version x+1 at some member), SubAhead_r (the least-ranked
    /// proposal for x+2), SubCurrent_r (the least-ranked proposal for x+1).
    ahead: Staged<Update>,
    sub_ahead: Staged<Proposal>,
    sub_current: Staged<Proposal>,
    /// Some member reported a version beyond x+1 (or two committed values for x+1):
    /// r cannot catch up safely and stops (`Superseded`).
    too_far: bool,
    /// The current phase has all its answers but waits for the next step: the
    /// previous one installed a view already (D32, one install per step). Its
    /// deadline is then the phase's start, so the driver's next timer goes on.
    pub(super) resume: bool,
    /// The step that takes up a `resume` is running: it commits whether or not the
    /// driver took the earlier install's event (a driver that does not take events
    /// after every step would otherwise find the timer due for ever).
    resuming: bool,
}

impl Initiator {
    pub(super) fn new(n: usize, c: usize, t: usize) -> Self {
        Initiator {
            kind: InitKind::Mgr,
            phase: Phase::Idle,
            started: Time::ZERO,
            extensions: 0,
            responded: vec![false; n],
            sub: Update::with_tag_limits(n, c, t),
            sub_version: 0,
            next: Staged::empty(Update::with_tag_limits(n, c, t)),
            ahead: Staged::empty(Update::with_tag_limits(n, c, t)),
            sub_ahead: Staged::empty(Proposal::with_tag_limits(n, c, t)),
            sub_current: Staged::empty(Proposal::with_tag_limits(n, c, t)),
            too_far: false,
            resume: false,
            resuming: false,
        }
    }

    pub(super) fn is_mgr(&self) -> bool {
        self.kind == InitKind::Mgr
    }

    pub(super) fn become_mgr(&mut self) {
        self.kind = InitKind::Mgr;
        self.go_idle();
    }

    /// Nothing in flight any more (a commit without a next value, a reconfiguration
    /// that found nothing to propose, a leaver's last commit).
    fn go_idle(&mut self) {
        self.phase = Phase::Idle;
    }

    /// Enters a phase that waits for answers (Interrogate, Submit, Xfer) at `now`,
    /// forgetting the answers of the previous one. Asserts the transitions of the
    /// Appendix: only a reconfigurer interrogates; State-Xfer follows a commit, which
    /// follows a submit; a submit follows an idle mgr, an interrogation, or a commit
    /// (the next value, commit-submit compression).
    fn enter(&mut self, phase: Phase, now: Time) {
        match phase {
            Phase::Idle => unreachable!("use go_idle"),
            Phase::Interrogate => assert_eq!(
                self.kind,
                InitKind::Reconfigurer,
                "only a reconfiguration initiator interrogates"
            ),
            Phase::Submit => assert!(
                self.phase != Phase::Interrogate || self.kind == InitKind::Reconfigurer,
                "a submit after an interrogation is a reconfigurer's R-sub"
            ),
            Phase::Xfer => assert_eq!(
                self.phase,
                Phase::Submit,
                "State-Xfer follows the commit of a submit"
            ),
        }
        debug_assert!(
            now >= self.started || self.phase == Phase::Idle,
            "time runs forward"
        );
        self.phase = phase;
        self.started = now;
        self.resume = false;
        self.clear_responses();
    }

    /// True while a phase waits for answers (Interrogate, Submit, Xfer).
    pub(super) fn in_round(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// True while collecting answers from the view (Interrogate, Submit).
    pub(super) fn collecting(&self) -> bool {
        matches!(self.phase, Phase::Interrogate | Phase::Submit)
    }

    /// Whether the member at view index `i` answered in the current phase.
    pub(super) fn answered(&self, i: usize) -> bool {
        self.responded.get(i).copied().unwrap_or(false)
    }

    pub(super) fn deadline(&self, timeout_us: u64) -> Option<Time> {
        if self.resume && self.phase != Phase::Idle {
            return Some(self.started);
        }
        (self.phase != Phase::Idle).then(|| self.started + timeout_us)
    }

    fn clear_responses(&mut self) {
        self.extensions = 0;
        self.responded.iter_mut().for_each(|r| *r = false);
    }

    /// Folds one state(p) into Ahead_r, SubAhead_r and SubCurrent_r (r at version `x`).
    /// GetStableProposal is applied as we go: of two proposals for the same version,
    /// keep the one whose initiator has the least rank (the largest index).
    ///
    /// Returns false if the answer contradicts what the proofs guarantee of honest
    /// processes (two committed values for one version, or two proposals from one
    /// initiator): only a forged message can do that. Such an answer is counted by the
    /// caller; a second committed value makes r stop (as for D5), the safe choice.
    #[must_use]
    fn record_state(&mut self, x: u64, ver: u64, next: Option<&Proposal>, last: &Update) -> bool {
        let mut honest = true;
        if ver == x + 1 {
            if let Some(ahead) = self.ahead.get() {
                if !ahead.same_as(last) {
                    // One committed value per version (Theorem 5.1).
                    self.too_far = true;
                    honest = false;
                }
            } else {
                self.ahead.set_from(last);
            }
            if let Some(p) = next.filter(|p| p.version == x + 2) {
                honest &= keep_least_ranked(&mut self.sub_ahead, p);
            }
        } else if ver == x {
            if let Some(p) = next.filter(|p| p.version == x + 1) {
                honest &= keep_least_ranked(&mut self.sub_current, p);
            }
        } else if ver > x + 1 {
            self.too_far = true;
        }
        honest
    }
}

/// GetStableProposal, incrementally: `best` becomes `p` if none yet or `p`'s initiator
/// ranks lower. Returns false if `p` contradicts `best` although both come from the same
/// initiator (an initiator makes one proposal per version; only forgery breaks that).
fn keep_least_ranked(best: &mut Staged<Proposal>, p: &Proposal) -> bool {
    match best.get() {
        Some(b) if p.initiator_index <= b.initiator_index => {
            p.initiator_index != b.initiator_index || p.update.same_as(&b.update)
        }
        _ => {
            best.set_from(p);
            true
        }
    }
}

impl Engine {
    /// Becomes the reconfiguration initiator: Phase I, R-int(state(r)) to the local view.
    pub(super) fn start_reconfiguration(&mut self, now: Time) {
        debug_assert!(self.initiate(), "INITIATE(p) must hold");
        debug_assert!(self.role.is_outer(), "a reconfigurer was an outer member");
        self.role = Role::Initiator;
        self.leader = Some(self.me.id);
        self.stats.reconfigurations += 1;
        self.events.push_back(Event::Reconfiguring {
            version: self.view.version,
        });
        let i = &mut self.init;
        i.kind = InitKind::Reconfigurer;
        i.enter(Phase::Interrogate, now);
        i.ahead.clear();
        i.sub_ahead.clear();
        i.sub_current.clear();
        i.next.clear();
        i.too_far = false;
        // r's own state counts among the answers.
        let me = self.rank_of(self.me.id).unwrap_or(0);
        self.init.responded[me] = true;
        let x = self.view.version;
        let own_next = self.next_update.get();
        let _ = self.init.record_state(x, x, own_next, &self.last_commit);
        let start = self.begin(MsgKind::RInt);
        {
            let next = self.next_update.get();
            crate::msg::Writer::continue_at(&mut self.out_buf).state(x, next, &self.last_commit);
        }
        self.mcast_view(MsgKind::RInt, start);
        self.stats.self_addressed[MsgKind::RIntResp as usize] += 1;
        self.check_progress(now);
    }

    /// A member became faulty in this process's eyes while it is an initiator.
    pub(super) fn initiator_on_faulty(&mut self, now: Time, _q: ProcessId) {
        if self.init.phase == Phase::Idle {
            self.maybe_start_update(now);
        } else {
            self.check_progress(now);
        }
    }

    /// The mgr's `GetUpdate(v1); until (v1 != nil-id); Mcast(LocalView, M-sub(±v1))`.
    pub(super) fn maybe_start_update(&mut self, now: Time) {
        if self.status != super::Status::Member
            || self.role != Role::Initiator
            || !self.init.is_mgr()
            || self.init.phase != Phase::Idle
        {
            return;
        }
        if self.client_linger_due(now).is_some_and(|due| now < due) {
            return;
        }
        let mut u = std::mem::take(&mut self.scratch);
        self.get_update(now, &mut u);
        if !u.is_empty() {
            self.init.sub.copy_from(&u);
            self.submit(now);
        }
        self.scratch = u;
    }

    /// GetUpdate: remove every member believed faulty, add the queued joiners (as many
    /// as fit in `max_members`).
    fn get_update(&mut self, now: Time, u: &mut Update) {
        u.clear();
        // A queued joiner whose node is in the view as an older incarnation replaces it:
        // the old one restarted, so it is believed faulty (GMP-1) and removed by the
        // same update; a joiner older than the member in the view is dropped (D8).
        let mut i = 0;
        while i < self.pending_joins.len() {
            let j = self.pending_joins[i].id;
            match self
                .view
                .members
                .iter()
                .find(|m| m.id.node == j.node)
                .map(|m| m.id)
            {
                Some(old) if old.incarnation >= j.incarnation => {
                    self.pending_joins.swap_remove(i);
                    self.stats.joins_refused += 1;
                    continue;
                }
                Some(old) => {
                    self.note_faulty(now, old, SuspicionCause::Replaced);
                }
                None => {}
            }
            i += 1;
        }
        u.removes.extend_from_slice(&self.faulty);
        for l in &self.leavers {
            if self.in_view(l.id) && !u.removes.contains(&l.id) {
                u.removes.push(l.id);
            }
        }
        if self.leaving {
            // A leaving mgr removes itself, and nothing else that would need it after
            // the commit (State-Xfer to joiners, client changes): those wait for the
            // next mgr.
            u.removes.push(self.me.id);
            return;
        }
        let room = self.cfg.max_members - (self.view.len() - u.removes.len());
        let take = room.min(self.pending_joins.len());
        u.adds.extend(self.pending_joins.drain(..take));
        if !u.adds.is_empty()
            && crate::sabotage::active(crate::sabotage::Sabotage::RemoveJuniorWithJoin)
        {
            if let Some(junior) = self
                .view
                .members
                .iter()
                .rev()
                .map(|m| m.id)
                .find(|&p| p != self.me.id && !u.removes.contains(&p))
            {
                u.removes.push(junior);
            }
        }
        self.take_client_ops(u);
        self.take_tag_changes(u);
    }

    /// Submits `init.sub` for the next version (M-sub or R-sub) and waits for acks.
    fn submit(&mut self, now: Time) {
        let version = self.view.version + 1;
        let kind = match self.init.kind {
            InitKind::Mgr => MsgKind::MSub,
            InitKind::Reconfigurer => MsgKind::RSub,
        };
        self.init.sub_version = version;
        self.self_pre_commit(now);
        let start = self.begin(kind);
        {
            let mut w = crate::msg::Writer::continue_at(&mut self.out_buf);
            w.u64(version);
            w.update(&self.init.sub);
        }
        self.mcast_view(kind, start);
        self.begin_ack_wait(now, kind);
        self.events.push_back(Event::Submitted { version });
        self.check_progress(now);
    }

    /// DoPreCommit at the initiator itself: NextUpdate_r = [<sub, version>, rank(r)],
    /// and the processes it removes are believed faulty.
    fn self_pre_commit(&mut self, now: Time) {
        for i in 0..self.init.sub.removes.len() {
            let r = self.init.sub.removes[i];
            // Leavers are removed without being believed faulty: their acknowledgement
            // of their own removal counts (D9).
            if !self.leavers.iter().any(|l| l.id == r) {
                self.note_faulty(now, r, SuspicionCause::Reported);
            }
        }
        let (sub, version, me) = (&self.init.sub, self.init.sub_version, self.me.id);
        let index = self.rank_of(me).unwrap_or(0) as u32;
        self.next_update.fill_with(|p| {
            p.update.copy_from(sub);
            p.version = version;
            p.initiator = me;
            p.initiator_index = index;
            true
        });
        self.durable_seq += 1;
    }

    /// Starts waiting for acks of a submit of `kind`; the initiator acks itself.
    fn begin_ack_wait(&mut self, now: Time, kind: MsgKind) {
        let ack = if kind == MsgKind::RSub {
            MsgKind::RSubAck
        } else {
            MsgKind::MSubAck
        };
        self.stats.self_addressed[ack as usize] += 1;
        self.init.enter(Phase::Submit, now);
        if let Some(me) = self.rank_of(self.me.id) {
            self.init.responded[me] = true;
        }
    }

    /// An answer to this initiator: state(p), an ack, or ack(Join).
    pub(super) fn on_response(&mut self, now: Time, from: ProcessId, rx: &Msg) {
        if self.role != Role::Initiator {
            self.stats.ignored += 1;
            return;
        }
        match (self.init.phase, rx.kind) {
            (Phase::Interrogate, MsgKind::RIntResp) => {
                let Some(i) = self.rank_of(from) else {
                    self.stats.ignored += 1;
                    return;
                };
                if !self.init.responded[i] {
                    self.init.responded[i] = true;
                    let s = &rx.state;
                    let next = s.next_proposal();
                    if !self
                        .init
                        .record_state(self.view.version, s.ver, next, &s.last)
                    {
                        self.stats.anomalies += 1;
                    }
                }
            }
            (Phase::Submit, MsgKind::MSubAck | MsgKind::RSubAck)
                if rx.version == self.init.sub_version =>
            {
                match self.rank_of(from) {
                    Some(i) => self.init.responded[i] = true,
                    None => self.stats.ignored += 1,
                }
            }
            (Phase::Xfer, MsgKind::StateXferAck) if rx.version == self.view.version => {
                let Some(i) = self.init.sub.adds.iter().position(|m| m.id == from) else {
                    self.stats.ignored += 1;
                    return;
                };
                self.init.responded[i] = true;
                let s = &rx.state;
                // A joiner already added by an earlier initiator reports its pending
                // NextUpdate; it becomes v2 (Figure 4).
                if let Some(p) = s.next_proposal() {
                    if p.version == self.view.version + 1 {
                        self.init.next.set_from(&p.update);
                    }
                }
            }
            _ => {
                self.stats.ignored += 1;
                return;
            }
        }
        self.check_progress(now);
    }

    /// True when every member of the view has answered or is believed faulty.
    fn all_answered(&self) -> bool {
        self.view
            .members
            .iter()
            .enumerate()
            .all(|(i, m)| self.init.responded[i] || self.is_faulty(m.id))
    }

    /// D26: the members of the current view this process does not believe faulty are
    /// a majority of it.
    fn view_has_a_trusted_majority(&self) -> bool {
        let trusted = self
            .view
            .members
            .iter()
            .filter(|m| !self.is_faulty(m.id))
            .count();
        trusted >= self.view.majority()
    }

    pub(super) fn majority_answered(&self) -> bool {
        let n = self.init.responded[..self.view.len()]
            .iter()
            .filter(|r| **r)
            .count();
        n >= self.view.majority()
    }

    /// Moves the initiator task forward as far as the answers allow, installing at most
    /// one view per step (D32): a commit whose value already has its majority (the
    /// mgr alone in its view) while the event of an earlier install of this step waits
    /// for the driver waits for the next step, so that the driver reads each install's
    /// view.
    pub(super) fn check_progress(&mut self, now: Time) {
        while self.status == super::Status::Member && self.role == Role::Initiator {
            match self.init.phase {
                Phase::Idle => return,
                Phase::Interrogate => {
                    if !self.all_answered() {
                        return;
                    }
                    if !self.majority_answered() {
                        return self.exclude(now, ExcludeReason::NoMajority);
                    }
                    if self.init.too_far {
                        return self.exclude(now, ExcludeReason::Superseded);
                    }
                    self.determine_proposal(now);
                }
                Phase::Submit => {
                    if !self.all_answered() {
                        return;
                    }
                    if !self.majority_answered() {
                        return self.exclude(now, ExcludeReason::NoMajority);
                    }
                    // A view installed in this step (its event not taken yet) makes the
                    // commit wait for the next; a leaver's own removal installs
                    // nothing and goes on at once.
                    let installs = !self.init.sub.removes.contains(&self.me.id);
                    if installs
                        && self.events_taken
                        && self.installs_unpolled > 0
                        && !self.init.resuming
                        && !crate::sabotage::active(crate::sabotage::Sabotage::TwoInstallsPerStep)
                    {
                        self.init.resume = true;
                        return;
                    }
                    self.commit_submitted(now);
                }
                Phase::Xfer => {
                    let n = self.init.sub.adds.len();
                    let done = (0..n).all(|i| {
                        self.init.responded[i] || self.is_faulty(self.init.sub.adds[i].id)
                    });
                    if !done {
                        return;
                    }
                    self.finish_commit(now);
                }
            }
        }
    }

    /// DetermineProposal (Appendix), then R-sub(<v1, ver>); `invisible` (v2) is kept
    /// for the R-com.
    fn determine_proposal(&mut self, now: Time) {
        let i = &mut self.init;
        if crate::sabotage::active(crate::sabotage::Sabotage::IgnoreInterrogation) {
            i.ahead.clear();
            i.sub_current.clear();
        }
        if let Some(ahead) = i.ahead.get() {
            // Partially committed version x+1: propagate it; v2 from SubAhead_r.
            i.sub.copy_from(ahead);
            i.next.set_opt(i.sub_ahead.get().map(|p| &p.update));
        } else if let Some(current) = i.sub_current.get() {
            // A singleton, or the least-ranked initiator's proposal (GetStableProposal).
            i.sub.copy_from(&current.update);
            i.next.clear();
        } else {
            // Nobody reported a proposal: remove the processes r believes faulty (the
            // mgr among them). See docs/PROTOCOL.md, decision D3.
            i.sub.clear();
            i.sub.removes.extend_from_slice(&self.faulty);
            i.next.clear();
        }
        if self.init.sub.removes.contains(&self.me.id) {
            // Cannot happen if Gossip holds (whoever proposed it believed us faulty).
            return self.exclude(now, ExcludeReason::Removed);
        }
        if self.init.sub.is_empty() {
            // Nothing to commit (e.g. the old mgr left after its last commit): r
            // simply takes over as mgr of the current view.
            self.init.become_mgr();
            return self.maybe_start_update(now);
        }
        self.submit(now);
    }

    /// Majority acked: DoCommit(v1), then the State-Xfer handshake if v1 adds.
    fn commit_submitted(&mut self, now: Time) {
        if self.init.sub.removes.contains(&self.me.id) {
            return self.commit_own_removal(now);
        }
        let mut u = std::mem::take(&mut self.scratch);
        u.copy_from(&self.init.sub);
        let version = self.init.sub_version;
        if version == self.view.version + 1 {
            self.commit(now, &u, version);
        }
        self.scratch = u;
        if self.status != super::Status::Member {
            return;
        }
        if self.init.sub.adds.is_empty() {
            return self.finish_commit(now);
        }
        // Mcast(v1, Join: State-Xfer).
        let start = self.begin(MsgKind::StateXfer);
        {
            let mut w = crate::msg::Writer::continue_at(&mut self.out_buf);
            w.u64(self.view.version);
            w.update(&self.init.sub);
            w.members(&self.view.members);
            w.tag_table(&self.view.tags);
            w.bytes(&self.snapshot);
        }
        let len = self.out_buf.len() - start;
        for k in 0..self.init.sub.adds.len() {
            let m = self.init.sub.adds[k];
            self.stats.sent[MsgKind::StateXfer as usize] += 1;
            self.out_q.push_back(super::OutEntry {
                to: m.id,
                addr: m.addr,
                start: start as u32,
                len: len as u32,
            });
        }
        self.init.enter(Phase::Xfer, now);
    }

    /// A leaving mgr's update, which removes itself, has its majority: multicast the
    /// commit (nothing piggy-backed: this process will not be mgr of the next view),
    /// then stop as `Excluded(Left)` (D9).
    fn commit_own_removal(&mut self, now: Time) {
        debug_assert!(self.leaving, "only a leaver removes itself");
        let com = match self.init.kind {
            InitKind::Mgr => MsgKind::MCom,
            InitKind::Reconfigurer => MsgKind::RCom,
        };
        let start = self.begin(com);
        {
            let mut w = crate::msg::Writer::continue_at(&mut self.out_buf);
            w.u64(self.init.sub_version);
            w.update(&self.init.sub);
            w.flag(false);
        }
        self.mcast_view(com, start);
        self.init.go_idle();
        let removes = &self.init.sub.removes;
        self.group_ended = self.view.members.iter().all(|m| removes.contains(&m.id));
        self.exclude(now, ExcludeReason::Left);
    }

    /// Mcast(LocalView, com(±v1) : sub(±v2)); then `mgr, v1 <- r, v2`.
    fn finish_commit(&mut self, now: Time) {
        // D26: a reconfigurer proposes for the next version only if the members of the
        // view it just committed that it does not believe faulty (each answered its
        // R-int or its State-Xfer, and disconnected every initiator it believes faulty)
        // are a majority of that view: its phase 1 for the next version. Without them
        // its proposal could never be committed, but would be accepted, at a ballot
        // above the old mgr's, by members whose durable acceptance a recovery (D23)
        // would then prefer to a value the old mgr committed with the new joiners.
        let cannot_lead =
            self.init.kind == InitKind::Reconfigurer && !self.view_has_a_trusted_majority();
        if cannot_lead {
            self.init.next.clear();
        } else if !self.init.next.is_set() {
            let mut next = std::mem::replace(&mut self.init.next, Staged::empty(Update::default()));
            next.fill_with(|u| {
                self.get_update(now, u);
                !u.is_empty()
            });
            self.init.next = next;
        }
        let com = match self.init.kind {
            InitKind::Mgr => MsgKind::MCom,
            InitKind::Reconfigurer => MsgKind::RCom,
        };
        let piggyback = self.init.next.is_set() && self.cfg.compression;
        let start = self.begin(com);
        {
            let mut w = crate::msg::Writer::continue_at(&mut self.out_buf);
            w.u64(self.view.version);
            w.update(&self.init.sub);
            w.flag(piggyback);
            if let Some(next) = self.init.next.get().filter(|_| piggyback) {
                w.update(next);
            }
        }
        self.mcast_view(com, start);
        // Leavers removed by this commit get it too: it is what lets them go (D9).
        for k in 0..self.leavers.len() {
            let l = self.leavers[k];
            if !self.in_view(l.id) && self.init.sub.removes.contains(&l.id) {
                self.push_out(com, l, start);
            }
        }
        let view = &self.view;
        self.leavers.retain(|l| view.contains(l.id));
        if cannot_lead {
            // It can never gather a majority of this view (beliefs are for good): the
            // view is committed, and this process stops, as the paper's initiator
            // without a majority does.
            self.init.go_idle();
            self.next_update.clear();
            return self.exclude(now, ExcludeReason::NoMajority);
        }
        // After its commit the reconfigurer is the mgr.
        self.init.kind = InitKind::Mgr;
        self.leader = Some(self.me.id);
        if !self.init.next.take_into(&mut self.init.sub) {
            self.init.go_idle();
            self.next_update.clear();
            return;
        }
        self.init.sub_version = self.view.version + 1;
        self.self_pre_commit(now);
        if !piggyback {
            let start = self.begin(MsgKind::MSub);
            {
                let mut w = crate::msg::Writer::continue_at(&mut self.out_buf);
                w.u64(self.init.sub_version);
                w.update(&self.init.sub);
            }
            self.mcast_view(MsgKind::MSub, start);
        }
        self.begin_ack_wait(now, MsgKind::MSub);
        self.events.push_back(Event::Submitted {
            version: self.init.sub_version,
        });
        self.check_progress(now);
    }

    /// Re-sends the message the current phase waits on (R-int, or the submit of
    /// `init.sub`) to every member not believed faulty. Receivers treat it as a FIFO
    /// duplicate: a member that already answered answers again (ignored here) and,
    /// if bound to us, restarts its wait; one that has since turned to a more junior
    /// initiator believes us faulty and drops it.
    fn resend_phase_message(&mut self) {
        match self.init.phase {
            Phase::Interrogate => {
                let x = self.view.version;
                let start = self.begin(MsgKind::RInt);
                {
                    let next = self.next_update.get();
                    crate::msg::Writer::continue_at(&mut self.out_buf).state(
                        x,
                        next,
                        &self.last_commit,
                    );
                }
                self.mcast_view(MsgKind::RInt, start);
            }
            Phase::Submit => {
                let kind = match self.init.kind {
                    InitKind::Mgr => MsgKind::MSub,
                    InitKind::Reconfigurer => MsgKind::RSub,
                };
                let start = self.begin(kind);
                {
                    let mut w = crate::msg::Writer::continue_at(&mut self.out_buf);
                    w.u64(self.init.sub_version);
                    w.update(&self.init.sub);
                }
                self.mcast_view(kind, start);
            }
            Phase::Idle | Phase::Xfer => {}
        }
    }

    /// Protocol timeout: members that have not answered are suspected (after up to
    /// [`MAX_EXTENSIONS`] more waits while no majority has answered).
    pub(super) fn initiator_timeout(&mut self, now: Time) {
        if self.init.phase == Phase::Idle {
            return self.maybe_start_update(now);
        }
        if self.init.resume {
            // The commit D32 left for this step.
            self.init.resume = false;
            self.init.resuming = true;
            self.check_progress(now);
            self.init.resuming = false;
            return;
        }
        let Some(due) = self.init.deadline(self.cfg.protocol_timeout_us) else {
            return;
        };
        if now < due {
            return;
        }
        match self.init.phase {
            Phase::Idle => {}
            Phase::Interrogate | Phase::Submit
                if !self.majority_answered() && self.init.extensions < MAX_EXTENSIONS =>
            {
                // Suspecting the silent members now would leave us without a majority:
                // wait once more, and re-send so that members bound to us do not
                // suspect us meanwhile (D16).
                self.init.extensions += 1;
                self.init.started = now;
                self.resend_phase_message();
                return;
            }
            Phase::Interrogate | Phase::Submit => {
                for i in 0..self.view.len() {
                    let id = self.view.members[i].id;
                    if !self.init.responded[i] && id != self.me.id {
                        self.note_faulty(now, id, SuspicionCause::Observed);
                    }
                }
            }
            Phase::Xfer => {
                for i in 0..self.init.sub.adds.len() {
                    if !self.init.responded[i] {
                        let id = self.init.sub.adds[i].id;
                        self.note_faulty(now, id, SuspicionCause::Observed);
                    }
                }
            }
        }
        self.check_progress(now);
    }
}
