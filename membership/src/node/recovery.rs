//! Recovery from total failure (`docs/PROTOCOL.md`, D23): processes that are not
//! members but hold durable state ([`Durable`]) of the group's views bring the group
//! back, as the same view sequence, once a majority of the *names* of the last view can
//! talk again, whichever incarnation runs under each name.
//!
//! It is single-decree Paxos per version, with the names of view x as acceptors and
//! each one's durable state as its log. Acceptances made by the running protocol (an
//! acknowledged M-sub or R-sub, saved before the acknowledgement left) are accepted
//! values at S-GMP ballots, below every recovery ballot (see [`Ballot`]):
//!
//! 1. Every recovering process sends its state (`State`: installed view) to the
//!    recovering processes it found by discovery; a newer installed view is adopted
//!    (it is decided: someone installed it).
//! 2. The most senior name of view x (the highest installed) among those recovering
//!    leads, once a majority of view x's names is recovering: `Prepare(x+1, b)`.
//!    An acceptor promises `b` if it promised nothing higher (saved), and answers with
//!    its accepted value for x+1.
//! 3. With promises from a majority of view x's names, the leader proposes the value
//!    accepted at the highest ballot among them, or — if none — the view x+1 made of
//!    the current processes of the names that promised: `Accept(x+1, b, view)`.
//!    Acceptors accept (saved) unless they promised higher.
//! 4. With a majority of acceptances, the view is decided: `Decide(view)` to all.
//!    Processes in it start their engine as members of it; if it was an older
//!    proposal (its members are earlier incarnations), the recovery goes on with x+1.
//!
//! Messages travel on the transport's reliable channels, framed by a leading
//! [`RECOVERY_FORMAT`] byte that no engine message starts with. Sans-IO: inputs carry
//! `now`, outputs are polled; the node core saves the durable state before anything
//! this module queued leaves (`take_dirty`).

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::coldstart::{put_addr, put_member, Reader};
use super::durable::{chosen_successor, Accepted, Ballot, Durable};
use crate::view::View;
use crate::{NodeId, ProcessId, Time};

mod msg;

pub use msg::{RecoveryMsg, RECOVERY_FORMAT};

/// A recovering process this one heard of.
#[derive(Clone, Debug)]
struct Peer {
    id: ProcessId,
    addr: SocketAddr,
    heard: Time,
    /// The version of its last `State`'s view (0: none heard yet).
    installed: u64,
    /// Its durable acceptance for version `installed + 1`, from the same `State`.
    accepted: Option<Accepted>,
}

/// What the leader has gathered for its ballot.
#[derive(Debug)]
struct Lead {
    version: u64,
    ballot: Ballot,
    started: Time,
    /// The acceptors asked: (process, address, name).
    acceptors: Vec<(ProcessId, SocketAddr)>,
    promises: Vec<(NodeId, Option<Accepted>)>,
    value: Option<View>,
    accepts: Vec<NodeId>,
}

/// Where the recovery stands, for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryStatus {
    /// The version this process's node last installed (its durable view).
    pub installed: u64,
    /// The view the recovery works from (the newest installed among those heard).
    pub target: u64,
    /// Names of that view that are recovering and heard recently (this one included).
    pub recovering: Vec<String>,
    /// Names of that view not heard from: the recovery waits for a majority.
    pub waiting_for: Vec<String>,
    /// How many names make a majority of that view.
    pub need: usize,
    /// This process leads the current attempt.
    pub leading: bool,
}

/// The recovery state machine of one process. See the [module docs](self).
#[derive(Debug)]
pub struct Recovery {
    me: ProcessId,
    addr: SocketAddr,
    round_us: u64,
    next_round: Time,
    peers: Vec<Peer>,
    /// The newest installed view heard of (own or a peer's).
    target: View,
    ballot_round: u64,
    lead: Option<Lead>,
    out: VecDeque<(ProcessId, SocketAddr, RecoveryMsg)>,
    /// A decision that holds this process, with the view it follows.
    decided: Option<(View, View)>,
    /// (leader) The processes of the view its decision follows that the decision
    /// removes, when the leader is not in the decided view itself: its belief that
    /// they are faulty is what removes them (GMP-1), and no member may know the view
    /// before (a member can have adopted the decided view from a `State` before its
    /// `Decide` arrived).
    removed_by_decision: Vec<ProcessId>,
    /// This process led the decision (see [`Recovery::led_decision`]).
    led_decision: bool,
    dirty: bool,
}

impl Recovery {
    /// Starts recovering as process `me` at `addr`, with rounds of `round_us`.
    pub fn new(me: ProcessId, addr: SocketAddr, round_us: u64, now: Time, d: &Durable) -> Recovery {
        Recovery {
            me,
            addr,
            round_us: round_us.max(1),
            next_round: now,
            peers: Vec::new(),
            target: d.view.clone(),
            ballot_round: d.promised.round,
            lead: None,
            out: VecDeque::new(),
            decided: None,
            removed_by_decision: Vec::new(),
            led_decision: false,
            dirty: false,
        }
    }

    /// When [`Recovery::on_timeout`] should next run.
    pub fn deadline(&self) -> Time {
        self.next_round
    }

    /// The next message to send.
    pub fn poll_out(&mut self) -> Option<(ProcessId, SocketAddr, RecoveryMsg)> {
        self.out.pop_front()
    }

    /// The durable state changed since the last call: save it before sending.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// A decided view that holds this process (it is a member now), with the view
    /// before it (whose processes the decided view replaces).
    pub fn take_decided(&mut self) -> Option<(View, View)> {
        self.decided.take()
    }

    /// The processes a decision this process led removes, when it is not in the
    /// decided view: the node core reports each as suspected, observed (GMP-1: the
    /// leader's own evidence, each stopped, replaced by a new incarnation of its name,
    /// or silent while a majority of names recovered), before the decision's messages
    /// leave.
    pub fn take_removed_by_decision(&mut self) -> Vec<ProcessId> {
        std::mem::take(&mut self.removed_by_decision)
    }

    /// This process led the decision: the processes it removes are its own
    /// observation (GMP-1), not a view's mark.
    pub fn led_decision(&self) -> bool {
        self.led_decision
    }

    /// Learned of a recovering process (a `Recovering` probe, or one of its messages).
    pub fn on_peer(&mut self, now: Time, id: ProcessId, addr: SocketAddr) {
        if id == self.me {
            return;
        }
        match self.peers.iter_mut().find(|p| p.id.node == id.node) {
            Some(p) if p.id.incarnation > id.incarnation => {}
            Some(p) => {
                p.id = id;
                p.addr = addr;
                p.heard = now;
            }
            None => self.peers.push(Peer {
                id,
                addr,
                heard: now,
                installed: 0,
                accepted: None,
            }),
        }
    }

    fn adopt(&mut self, d: &mut Durable, view: &View) {
        if d.adopt(view) {
            self.dirty = true;
        }
        if view.version > self.target.version {
            self.target.clone_from(view);
            self.lead = None;
        }
    }

    /// The names of the target view that are recovering and were heard in the last
    /// three rounds (this process's own name included if it is in the view).
    fn recovering_names(&self, now: Time) -> Vec<NodeId> {
        let horizon = 3 * self.round_us;
        self.target
            .members
            .iter()
            .map(|m| m.id.node)
            .filter(|n| {
                *n == self.me.node
                    || self
                        .peers
                        .iter()
                        .any(|p| p.id.node == *n && now.micros_since(p.heard) <= horizon)
            })
            .collect()
    }

    fn need(&self) -> usize {
        if crate::sabotage::active(crate::sabotage::Sabotage::RecoveryQuorumOfOne) {
            return 1;
        }
        self.target.members.len() / 2 + 1
    }

    /// Where the recovery stands.
    pub fn status(&self, now: Time, d: &Durable) -> RecoveryStatus {
        let rec = self.recovering_names(now);
        RecoveryStatus {
            installed: d.view.version,
            target: self.target.version,
            recovering: rec.iter().map(|n| n.to_string()).collect(),
            waiting_for: self
                .target
                .members
                .iter()
                .filter(|m| !rec.contains(&m.id.node))
                .map(|m| m.id.node.to_string())
                .collect(),
            need: self.need(),
            leading: self.lead.is_some(),
        }
    }

    /// Runs the round timer: states to every peer, and (as leader) a new attempt or
    /// the current phase again.
    pub fn on_timeout(&mut self, now: Time, d: &mut Durable) {
        if now < self.next_round {
            return;
        }
        self.next_round = now + self.round_us;
        for p in &self.peers {
            if now.micros_since(p.heard) <= 10 * self.round_us {
                self.out.push_back((
                    p.id,
                    p.addr,
                    RecoveryMsg::State {
                        view: d.view.clone(),
                        accepted: d
                            .accepted
                            .as_ref()
                            .filter(|a| a.view.version == d.view.version + 1)
                            .cloned(),
                    },
                ));
            }
        }
        if let Some(l) = &self.lead {
            if now.micros_since(l.started) > 4 * self.round_us {
                self.lead = None;
            }
        }
        self.learn(d);
        match &self.lead {
            None => self.try_lead(now, d),
            Some(_) => self.resend(),
        }
    }

    /// D23 *Learning*: if the durable acceptances reported by the processes of the
    /// names of the installed view x (this one's included) prove an S-GMP view x+1
    /// chosen ([`chosen_successor`]: half of x's names, rounded up, accepted it at one
    /// ballot), it is decided: adopt it, and the recovery goes on from it. This brings
    /// the group back when the only processes that installed x+1 are gone for good but
    /// a majority of x+1's names runs.
    fn learn(&mut self, d: &mut Durable) {
        let x = d.view.version;
        if x == 0 {
            return;
        }
        let own = d
            .accepted
            .as_ref()
            .filter(|a| a.view.version == x + 1)
            .map(|a| (self.me.node, a));
        let others = self
            .peers
            .iter()
            .filter(|p| p.installed == x)
            .filter_map(|p| p.accepted.as_ref().map(|a| (p.id.node, a)));
        // Only S-GMP's proposals: a recovery decides its own with a majority (step 4).
        let sgmp = |(_, a): &(NodeId, &Accepted)| a.ballot.class == Ballot::sgmp(0).class;
        let Some(v) =
            chosen_successor(&d.view, own.into_iter().chain(others).filter(sgmp)).cloned()
        else {
            return;
        };
        if v.contains(self.me) {
            // A joiner that view adds and that never got its State-Xfer: it does not
            // start from a view it did not hear a majority agree on; the others learn
            // it and the recovery goes on from there.
            return;
        }
        tracing::info!(node = %self.me, version = v.version, "recovery: learned a chosen view");
        self.adopt(d, &v);
    }

    /// Starts a new ballot if this process should lead.
    fn try_lead(&mut self, now: Time, d: &mut Durable) {
        if self.target.version == 0 || d.view.version != self.target.version {
            return;
        }
        let names = self.recovering_names(now);
        if names.len() < self.need() {
            return;
        }
        // The most senior recovering name of the target view leads.
        if names.first() != Some(&self.me.node) {
            return;
        }
        let Some(index) = self.target.index_of_node(self.me.node) else {
            return;
        };
        self.ballot_round = self.ballot_round.max(d.promised.round) + 1;
        let ballot = Ballot::recovery(self.ballot_round, index as u32);
        let version = self.target.version + 1;
        let mut acceptors = Vec::new();
        for n in &names {
            if *n == self.me.node {
                continue;
            }
            if let Some(p) = self.peers.iter().find(|p| p.id.node == *n) {
                acceptors.push((p.id, p.addr));
            }
        }
        tracing::info!(node = %self.me, version, round = ballot.round, "recovery: leading");
        self.lead = Some(Lead {
            version,
            ballot,
            started: now,
            acceptors,
            promises: Vec::new(),
            value: None,
            accepts: Vec::new(),
        });
        self.resend();
        // This process is an acceptor too.
        let me = self.me;
        if let Some(reply) = self.accept_prepare(d, version, ballot) {
            self.on_reply(me, d, reply);
        }
    }

    /// (Leader) the current phase's message to every acceptor that did not answer.
    fn resend(&mut self) {
        let Some(l) = &self.lead else {
            return;
        };
        for &(id, addr) in &l.acceptors {
            let msg = match &l.value {
                None if !l.promises.iter().any(|(n, _)| *n == id.node) => RecoveryMsg::Prepare {
                    version: l.version,
                    ballot: l.ballot,
                },
                Some(v) if !l.accepts.contains(&id.node) => RecoveryMsg::Accept {
                    version: l.version,
                    ballot: l.ballot,
                    view: v.clone(),
                },
                _ => continue,
            };
            self.out.push_back((id, addr, msg));
        }
    }

    /// The acceptor's side of a prepare.
    fn accept_prepare(
        &mut self,
        d: &mut Durable,
        version: u64,
        ballot: Ballot,
    ) -> Option<RecoveryMsg> {
        if version != d.view.version + 1 || ballot < d.promised {
            return Some(RecoveryMsg::Nack {
                version,
                promised: d.promised,
                installed: d.view.version,
            });
        }
        if ballot > d.promised {
            d.promised = ballot;
            self.dirty = true;
        }
        let accepted = d
            .accepted
            .as_ref()
            .filter(|a| a.view.version == version)
            .cloned();
        Some(RecoveryMsg::Promise {
            version,
            ballot,
            accepted,
        })
    }

    /// The acceptor's side of an accept.
    fn accept_value(
        &mut self,
        d: &mut Durable,
        version: u64,
        ballot: Ballot,
        view: &View,
    ) -> RecoveryMsg {
        if version != d.view.version + 1 || ballot < d.promised || view.version != version {
            return RecoveryMsg::Nack {
                version,
                promised: d.promised,
                installed: d.view.version,
            };
        }
        d.promised = ballot;
        d.accepted = Some(Accepted {
            ballot,
            view: view.clone(),
        });
        self.dirty = true;
        RecoveryMsg::Accepted { version, ballot }
    }

    /// Handles a message from `from`.
    pub fn on_message(
        &mut self,
        now: Time,
        from: ProcessId,
        addr: SocketAddr,
        msg: RecoveryMsg,
        d: &mut Durable,
    ) {
        self.on_peer(now, from, addr);
        match msg {
            RecoveryMsg::State { view, accepted } => {
                if view.version > d.view.version {
                    self.adopt(d, &view);
                }
                if let Some(p) = self.peers.iter_mut().find(|p| p.id == from) {
                    p.installed = view.version;
                    p.accepted = accepted.filter(|a| a.view.version == view.version + 1);
                }
                self.learn(d);
            }
            RecoveryMsg::Prepare { version, ballot } => {
                if let Some(r) = self.accept_prepare(d, version, ballot) {
                    self.out.push_back((from, addr, r));
                }
            }
            RecoveryMsg::Accept {
                version,
                ballot,
                view,
            } => {
                let r = self.accept_value(d, version, ballot, &view);
                self.out.push_back((from, addr, r));
            }
            RecoveryMsg::Decide { view } => self.on_decide(d, &view),
            reply @ (RecoveryMsg::Promise { .. }
            | RecoveryMsg::Accepted { .. }
            | RecoveryMsg::Nack { .. }) => self.on_reply(from, d, reply),
        }
    }

    /// (Leader) a promise, an acceptance or a refusal from `from` (maybe itself).
    fn on_reply(&mut self, from: ProcessId, d: &mut Durable, reply: RecoveryMsg) {
        let need = self.need();
        let Some(l) = &mut self.lead else {
            return;
        };
        match reply {
            RecoveryMsg::Promise {
                version,
                ballot,
                accepted,
            } if version == l.version && ballot == l.ballot && l.value.is_none() => {
                if !l.promises.iter().any(|(n, _)| *n == from.node) {
                    l.promises.push((from.node, accepted));
                }
                if l.promises.len() >= need {
                    // The value accepted at the highest ballot, or a new view of the
                    // current processes of the names that promised.
                    let ignore = crate::sabotage::active(
                        crate::sabotage::Sabotage::RecoveryIgnoresAcceptances,
                    );
                    let chosen = l
                        .promises
                        .iter()
                        .filter_map(|(_, a)| a.as_ref().filter(|_| !ignore))
                        .max_by_key(|a| a.ballot)
                        .map(|a| a.view.clone());
                    let value = chosen.unwrap_or_else(|| {
                        let mut v = View::with_capacity(self.target.members.len());
                        v.version = l.version;
                        for m in &self.target.members {
                            if !l.promises.iter().any(|(n, _)| *n == m.id.node) {
                                continue;
                            }
                            if m.id.node == self.me.node {
                                v.members.push(crate::view::Member {
                                    id: self.me,
                                    addr: self.addr,
                                });
                            } else if let Some(p) =
                                self.peers.iter().find(|p| p.id.node == m.id.node)
                            {
                                v.members.push(crate::view::Member {
                                    id: p.id,
                                    addr: p.addr,
                                });
                            }
                        }
                        v
                    });
                    tracing::info!(node = %self.me, version = value.version, members = value.members.len(), "recovery: proposing");
                    l.value = Some(value.clone());
                    // Ask only those that promised.
                    let promised: Vec<NodeId> = l.promises.iter().map(|(n, _)| *n).collect();
                    l.acceptors.retain(|(id, _)| promised.contains(&id.node));
                    let (version, ballot) = (l.version, l.ballot);
                    self.resend();
                    let me = self.me;
                    let r = self.accept_value(d, version, ballot, &value);
                    self.on_reply(me, d, r);
                }
            }
            RecoveryMsg::Accepted { version, ballot }
                if version == l.version && ballot == l.ballot && l.value.is_some() =>
            {
                if !l.accepts.contains(&from.node) {
                    l.accepts.push(from.node);
                }
                if l.accepts.len() >= need {
                    let view = l.value.clone().expect("a value was proposed");
                    tracing::info!(node = %self.me, version = view.version, "recovery: decided");
                    self.led_decision = true;
                    if !view.contains(self.me) {
                        debug_assert_eq!(self.target.version + 1, view.version);
                        self.removed_by_decision.extend(
                            self.target
                                .members
                                .iter()
                                .map(|m| m.id)
                                .filter(|&p| !view.contains(p)),
                        );
                    }
                    for p in &self.peers {
                        self.out.push_back((
                            p.id,
                            p.addr,
                            RecoveryMsg::Decide { view: view.clone() },
                        ));
                    }
                    self.lead = None;
                    self.on_decide(d, &view);
                }
            }
            RecoveryMsg::Nack {
                version, promised, ..
            } if version == l.version && promised > l.ballot => {
                self.ballot_round = self.ballot_round.max(promised.round);
                self.lead = None;
            }
            _ => {}
        }
    }

    fn on_decide(&mut self, d: &mut Durable, view: &View) {
        let prev = self.target.clone();
        self.adopt(d, view);
        if view.contains(self.me) && d.view.version == view.version {
            self.decided = Some((prev, view.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::Member;

    /// Process `n{i}` of incarnation `inc` (shared with `tests_mutants`).
    pub(super) fn pid(i: usize, inc: u64) -> ProcessId {
        ProcessId::named(&format!("n{i}"), inc)
    }

    /// The address of `n{i}`.
    pub(super) fn addr(i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7300 + i as u16))
    }

    /// View `version` of `ids`, each at its address.
    pub(super) fn view(version: u64, ids: &[ProcessId]) -> View {
        let mut v = View::with_capacity(ids.len());
        v.version = version;
        for &id in ids {
            let i: usize = id.node.to_string()[1..].parse().unwrap();
            v.members.push(Member { id, addr: addr(i) });
        }
        v
    }

    /// Three recovering processes n1#2..n3#2 of view 4 = {n1#1, n2#1, n3#1}; n2 had
    /// accepted, in an earlier recovery round led by n2, a view 5 without n1. n1 (the
    /// most senior) leads the next round, finds that value at the highest ballot and
    /// decides it: a view that leaves the leader out. The leader is the one to report
    /// the removed processes suspected (GMP-1): n2 and n3 install the view, but a member
    /// that adopted it from a `State` first would no longer know view 4.
    #[test]
    fn a_leader_outside_its_decided_view_reports_the_removed_processes() {
        let x = view(4, &[pid(1, 1), pid(2, 1), pid(3, 1)]);
        let v5 = view(5, &[pid(2, 2), pid(3, 2)]);
        let now = Time::from_millis(1_000);
        let mut disks: Vec<Durable> = (1..=3)
            .map(|i| {
                let mut d = Durable::fresh(&format!("n{i}"), 2);
                d.view = x.clone();
                d
            })
            .collect();
        disks[1].accepted = Some(Accepted {
            ballot: Ballot::recovery(1, 1),
            view: v5.clone(),
        });
        disks[1].promised = Ballot::recovery(1, 1);
        let mut r: Vec<Recovery> = (1..=3)
            .map(|i| Recovery::new(pid(i, 2), addr(i), 10_000, now, &disks[i - 1]))
            .collect();
        for (i, ri) in r.iter_mut().enumerate() {
            for j in (0..3).filter(|&j| j != i) {
                ri.on_peer(now, pid(j + 1, 2), addr(j + 1));
            }
        }
        for step in 0..200 {
            let t = Time::from_millis(1_000 + step * 10);
            for i in 0..3 {
                r[i].on_timeout(t, &mut disks[i]);
            }
            for i in 0..3 {
                while let Some((to, _, msg)) = r[i].poll_out() {
                    let j = to.node.to_string()[1..].parse::<usize>().unwrap() - 1;
                    r[j].on_message(t, pid(i + 1, 2), addr(i + 1), msg, &mut disks[j]);
                }
            }
            if disks.iter().all(|d| d.view.version == 5) {
                break;
            }
        }
        assert!(
            disks.iter().all(|d| d.view == v5),
            "every disk holds view 5"
        );
        let removed = r[0].take_removed_by_decision();
        assert!(r[0].take_decided().is_none(), "the leader is not in view 5");
        assert_eq!(removed, vec![pid(1, 1), pid(2, 1), pid(3, 1)]);
        for rk in &mut r[1..] {
            assert!(rk.take_removed_by_decision().is_empty(), "only n1 led");
        }
    }
}

#[cfg(test)]
mod tests_mutants;
