//! D22's save order in the node core, without sockets or clocks: three cores with
//! in-memory disks exchange their datagrams by hand, each step ending as a driver's
//! does (the datagrams taken, then the events). An acknowledgement leaves only after
//! the acceptance it reports is saved; the mgr's submission and its commit leave
//! before its own save, which is done once the step's datagrams are out
//! (`poll_transmit` returning `None`) and before its next input; an install is saved
//! after the step too. One removal costs each process two saves (its acceptance, its
//! install), of which only the members' acceptances lie on the commit's path.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::core::{CoreEvent, NodeCore, TapRecord};
use super::durable::MemStorage;
use super::NodeConfig;
use crate::msg::MsgKind;
use crate::{Member, ProcessId, Time};

struct Cluster {
    cores: Vec<NodeCore>,
    disks: Vec<MemStorage>,
    members: Vec<Member>,
    /// Datagrams written and not delivered yet: (from, to, bytes).
    wire: VecDeque<(usize, usize, Vec<u8>)>,
    /// Events each core reported at the end of a step and no test took yet.
    events: Vec<Vec<CoreEvent>>,
    now: Time,
}

impl Cluster {
    fn founded(n: usize) -> Cluster {
        let now = Time::from_millis(1_000);
        let (mut cores, mut disks, mut members) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let addr = SocketAddr::from(([127, 0, 0, 1], 7100 + i as u16));
            let cfg = NodeConfig {
                id: format!("n{i}"),
                listen: addr,
                // No timer fires in these tests: only the inputs given.
                heartbeat_ms: 10_000,
                suspect_ms: 60_000,
                protocol_timeout_ms: 60_000,
                ..NodeConfig::default()
            };
            let mut core_cfg = cfg.core_config(addr, cfg.keyring().unwrap());
            // A suspicion given by hand is acted on (no one was heard from here).
            core_cfg.engine.local_health = false;
            let id = ProcessId::named(&format!("n{i}"), 1);
            let disk = MemStorage::new();
            let mut core =
                NodeCore::new(core_cfg, id, addr).with_durable(None, Some(Box::new(disk.clone())));
            core.set_tap(Some(false));
            cores.push(core);
            disks.push(disk);
            members.push(Member { id, addr });
        }
        let mut c = Cluster {
            cores,
            disks,
            members,
            wire: VecDeque::new(),
            events: vec![Vec::new(); n],
            now,
        };
        for i in 0..n {
            let founders = c.members.clone();
            c.cores[i].found_with(now, &founders);
        }
        for i in 0..n {
            c.end_step(i);
        }
        c.deliver_all();
        // The tests look at what follows the founding.
        c.events.iter_mut().for_each(Vec::clear);
        c
    }

    /// Takes everything core `i` has to send (its `poll_transmit` until `None`).
    fn drain(&mut self, i: usize) {
        let mut buf = vec![0u8; 2048];
        while let Some(t) = self.cores[i].poll_transmit(self.now, &mut buf) {
            let to = self.members.iter().position(|m| m.addr == t.dst).unwrap();
            self.wire.push_back((i, to, buf[..t.len].to_vec()));
        }
    }

    /// Delivers the oldest datagram, without draining its receiver; returns it.
    fn deliver_one(&mut self) -> Option<usize> {
        let (from, to, bytes) = self.wire.pop_front()?;
        let addr = self.members[from].addr;
        self.cores[to].handle_datagram(self.now, addr, &bytes);
        Some(to)
    }

    /// Ends core `i`'s step as a driver does: its datagrams, then its events (the
    /// bookkeeping deferred past the datagrams is done by the event poll).
    fn end_step(&mut self, i: usize) {
        self.drain(i);
        while let Some((_, e)) = self.cores[i].poll_event() {
            self.events[i].push(e);
        }
    }

    fn deliver_all(&mut self) {
        while let Some(to) = self.deliver_one() {
            self.end_step(to);
        }
    }

    /// Every event core `i` reported (at the ends of its steps, then by a poll now:
    /// the deferred bookkeeping is finished first), those `pick` keeps.
    fn events_of<T>(&mut self, i: usize, pick: impl Fn(CoreEvent) -> Option<T>) -> Vec<T> {
        while let Some((_, e)) = self.cores[i].poll_event() {
            self.events[i].push(e);
        }
        self.events[i].drain(..).filter_map(pick).collect()
    }

    /// The message kinds core `i` handed to its transport since the last call.
    fn sent(&mut self, i: usize) -> Vec<MsgKind> {
        let mut tap: Vec<TapRecord> = Vec::new();
        self.cores[i].take_tap(&mut tap);
        tap.iter()
            .filter(|r| r.sent)
            .filter_map(|r| r.kind)
            .collect()
    }

    fn saves(&self) -> Vec<u64> {
        self.disks.iter().map(MemStorage::saves).collect()
    }
}

#[test]
fn acks_wait_for_their_save_and_the_mgrs_sends_do_not() {
    let mut c = Cluster::founded(3);
    for i in 0..3 {
        c.sent(i);
        assert!(c.cores[i].engine().view().len() == 3);
    }
    let s0 = c.saves();
    // The mgr (the most senior founder) removes n2.
    let victim = c.members[2].id;
    c.cores[0].suspect(c.now, victim);
    assert!(
        c.sent(0).contains(&MsgKind::MSub),
        "the mgr submits at once"
    );
    assert_eq!(
        c.saves()[0],
        s0[0],
        "the submission is queued before the mgr's save"
    );
    c.drain(0);
    assert_eq!(
        c.saves()[0],
        s0[0] + 1,
        "the mgr saves its acceptance once its datagrams are out"
    );
    assert_eq!(c.disks[0].load().unwrap().accepted.unwrap().view.len(), 2);
    // n1 acknowledges: saved before the ack is even queued at the transport.
    while !c.wire.is_empty() {
        let to = c.deliver_one().unwrap();
        if to == 1 && c.sent(1).contains(&MsgKind::MSubAck) {
            assert_eq!(
                c.saves()[1],
                s0[1] + 1,
                "the ack's acceptance is saved first"
            );
            assert!(c.disks[1].load().unwrap().accepted.is_some());
            c.drain(1);
            break;
        }
        c.drain(to);
    }
    // The ack reaches the mgr: it commits; the M-com leaves before the install's save.
    let s1 = c.saves();
    loop {
        let to = c.deliver_one().expect("the ack reaches the mgr");
        if to == 0 && c.sent(0).contains(&MsgKind::MCom) {
            assert_eq!(c.cores[0].engine().view().len(), 2, "the mgr installed");
            assert_eq!(
                c.saves()[0],
                s1[0],
                "the M-com is queued before the install's save"
            );
            c.drain(0);
            assert_eq!(
                c.saves()[0],
                s1[0] + 1,
                "the install is saved after the sends"
            );
            let d = c.disks[0].load().unwrap();
            assert_eq!(d.view.len(), 2);
            assert_eq!(d.view.version, c.cores[0].engine().view().version);
            break;
        }
        c.drain(to);
    }
    // n1 installs on the M-com and saves its install after the step.
    c.deliver_all();
    assert_eq!(c.cores[1].engine().view().len(), 2);
    assert_eq!(c.saves()[1], s1[1] + 1);
    assert_eq!(
        c.disks[1].load().unwrap().view.version,
        c.cores[1].engine().view().version
    );
}

#[test]
fn a_pending_save_is_done_before_the_next_input() {
    let mut c = Cluster::founded(3);
    let s0 = c.saves();
    let victim = c.members[2].id;
    c.cores[0].suspect(c.now, victim);
    assert_eq!(c.saves()[0], s0[0]);
    // A driver that never asks for the datagrams: the next input saves first.
    let from = c.members[1].addr;
    c.cores[0].handle_datagram(c.now, from, &[0u8; 8]);
    assert_eq!(c.saves()[0], s0[0] + 1);
}

#[test]
fn a_clean_stop_keeps_a_pending_save() {
    let mut c = Cluster::founded(3);
    let s0 = c.saves();
    let victim = c.members[2].id;
    c.cores[0].suspect(c.now, victim);
    assert_eq!(c.saves()[0], s0[0]);
    c.cores[0].stop();
    assert_eq!(c.saves()[0], s0[0] + 1);
    assert!(c.disks[0].load().unwrap().accepted.is_some());
}

#[test]
fn a_stopped_core_takes_no_further_input() {
    let mut c = Cluster::founded(3);
    c.cores[0].stop();
    let _ = c.events_of(0, Some);
    let s0 = c.saves();
    // Far past every timer (heartbeats, suspicions, the protocol's): before the guard
    // the detector suspected both peers and the engine sent an M-sub.
    c.now = c.now + 600_000_000;
    let now = c.now;
    c.cores[0].handle_timeout(now);
    // A member's datagram (its heartbeat) is not taken either.
    c.cores[1].handle_timeout(now);
    c.drain(1);
    while let Some((from, to, bytes)) = c.wire.pop_front() {
        if to == 0 {
            c.cores[0].handle_datagram(now, c.members[from].addr, &bytes);
        }
    }
    c.drain(0);
    assert!(c.wire.is_empty(), "a stopped core sends nothing");
    assert_eq!(c.events_of(0, Some), Vec::new());
    assert!(c.sent(0).is_empty());
    assert_eq!(c.saves()[0], s0[0]);
    assert_eq!(c.cores[0].poll_timeout(), None);
    // Nor does its state move (nothing would save it).
    assert_eq!(c.cores[0].engine().open_round(), None);
}

/// The group-ended marker goes after the view the engine installed, saved or not. In
/// a pair, the mgr removes the member that leaves and leaves itself while that update
/// is in flight: in one step it installs the view of one (not saved yet, D22) and,
/// alone, leaves it, ending the group. The marker (an empty view, `ended`) must take
/// the version after that view of one: taking it after the last *saved* view gave the
/// view of one's version to the empty view too, two views with one version on disk
/// (found by a real-process full restart, where another process then recovered the
/// view of one and waited for its name, which believed the group ended).
#[test]
fn the_group_ended_marker_follows_the_installed_view_not_the_saved_one() {
    let mut c = Cluster::founded(2);
    let v1 = c.cores[0].engine().view().version;
    c.cores[1].leave(c.now);
    c.drain(1);
    let to = c.deliver_one().expect("the leave request");
    assert_eq!(to, 0);
    c.drain(0);
    c.cores[0].leave(c.now);
    c.drain(0);
    c.deliver_all();
    let d = c.disks[0].load().unwrap();
    assert!(d.ended, "the mgr left a view of one: the group ended");
    assert!(d.view.members.is_empty());
    assert_eq!(
        d.view.version,
        v1 + 2,
        "the view of one (v{}) then the empty view after it",
        v1 + 1
    );
}

/// Issue 19: the mgr's commit step queues its M-com before the install's bookkeeping
/// (the node's event, its recent views): the bookkeeping waits past the step's
/// datagrams for the event poll (the runtime's publication, after it yielded to the
/// processes those datagrams woke), and in any case is done before the next input.
#[test]
fn the_mgrs_install_bookkeeping_follows_its_m_com() {
    let installed = |e| match e {
        CoreEvent::ViewInstalled { version } => Some(version),
        _ => None,
    };
    for (poll_first, input_first) in [(false, false), (true, false), (false, true)] {
        let mut c = Cluster::founded(3);
        c.events_of(0, installed);
        let victim = c.members[2].id;
        c.cores[0].suspect(c.now, victim);
        c.end_step(0);
        let x = c.cores[0].engine().view().version;
        loop {
            let to = c.deliver_one().expect("the ack reaches the mgr");
            if to == 0 && c.sent(0).contains(&MsgKind::MCom) {
                assert_eq!(c.cores[0].engine().view().version, x + 1);
                assert!(
                    c.cores[0].installed_view(x + 1).is_none(),
                    "the install's bookkeeping waits for the step's datagrams"
                );
                if poll_first {
                    // A driver that polls events before the datagrams still sees it.
                    assert_eq!(c.events_of(0, installed), vec![x + 1]);
                }
                c.drain(0);
                assert_eq!(
                    c.cores[0].installed_view(x + 1).is_some(),
                    poll_first,
                    "the datagrams out, the bookkeeping waits for the event poll"
                );
                if input_first {
                    // A driver that reads before it polls: done before the input.
                    let from = c.members[1].addr;
                    c.cores[0].handle_datagram(c.now, from, &[0u8; 8]);
                    assert!(c.cores[0].installed_view(x + 1).is_some());
                }
                if !poll_first {
                    assert_eq!(c.events_of(0, installed), vec![x + 1]);
                }
                assert!(c.cores[0].installed_view(x + 1).is_some());
                break;
            }
            c.end_step(to);
        }
        c.deliver_all();
        assert_eq!(c.events_of(0, installed), Vec::<u64>::new(), "once");
        assert_eq!(c.cores[1].engine().view().version, x + 1);
        assert_eq!(c.events_of(1, installed), vec![x + 1]);
    }
}

/// Issue 19: a member's install on the M-com (a step that sends nothing) leaves its
/// bookkeeping to the event poll too, so that on a shared core the other members the
/// M-com woke read theirs first; the view's records are all there once polled.
#[test]
fn a_members_install_bookkeeping_waits_for_the_event_poll() {
    let mut c = Cluster::founded(3);
    let victim = c.members[2].id;
    c.cores[0].suspect(c.now, victim);
    c.end_step(0);
    let x = c.cores[1].engine().view().version;
    loop {
        let to = c.deliver_one().expect("the M-com reaches n1");
        if to == 1 && c.cores[1].engine().view().version == x + 1 {
            assert!(c.cores[1].installed_view(x + 1).is_none());
            assert!(c.cores[1].has_pending_events(), "the install is news");
            c.drain(1);
            assert!(c.cores[1].installed_view(x + 1).is_none());
            let v = c.events_of(1, |e| match e {
                CoreEvent::ViewInstalled { version } => Some(version),
                _ => None,
            });
            assert_eq!(v, vec![x + 1]);
            let view = c.cores[1].installed_view(x + 1).expect("recorded");
            assert!(!view.contains(victim));
            assert_eq!(c.cores[1].resolve(&c.members[0].id.to_string()).len(), 1);
            break;
        }
        c.end_step(to);
    }
}

/// Issue 19: a member's acknowledgement of an M-sub leaves before the bookkeeping of
/// the suspicion it carries (closing the suspect's channel, the node's event), and the
/// mgr's M-sub before that of its own suspicion and submission; both wait for the
/// event poll, and in any case are done before the next input.
#[test]
fn suspicion_bookkeeping_follows_the_m_sub_and_the_ack() {
    let suspected = |e| match e {
        CoreEvent::Suspected { peer, .. } => Some(peer),
        _ => None,
    };
    let open = |core: &NodeCore, p| !core.endpoint().is_disconnected(p);
    for poll_first in [false, true] {
        let mut c = Cluster::founded(4);
        let victim = c.members[3].id;
        for i in 0..4 {
            c.events_of(i, suspected);
            c.sent(i);
        }
        assert!(open(&c.cores[0], victim) && open(&c.cores[1], victim));
        // The mgr: its M-sub is queued, its suspicion not yet acted on.
        c.cores[0].suspect(c.now, victim);
        assert!(c.sent(0).contains(&MsgKind::MSub));
        assert!(
            open(&c.cores[0], victim),
            "the mgr's channel closes after its M-sub"
        );
        c.drain(0);
        assert!(open(&c.cores[0], victim), "and after the event poll");
        assert_eq!(c.events_of(0, suspected), vec![victim]);
        assert!(!open(&c.cores[0], victim));
        // A member: its acknowledgement is queued, its suspicion waits.
        loop {
            let to = c.deliver_one().expect("the M-sub reaches n1");
            if to != 1 {
                c.end_step(to);
                continue;
            }
            assert!(
                c.sent(1).contains(&MsgKind::MSubAck),
                "n1 acknowledges at once"
            );
            assert!(
                open(&c.cores[1], victim),
                "n1's channel closes after its ack"
            );
            if poll_first {
                // A driver that polls events before the datagrams still sees it.
                assert_eq!(c.events_of(1, suspected), vec![victim]);
                assert!(!open(&c.cores[1], victim));
            }
            c.drain(1);
            if !poll_first {
                assert!(open(&c.cores[1], victim), "until the event poll");
                assert_eq!(c.events_of(1, suspected), vec![victim]);
            }
            assert!(!open(&c.cores[1], victim));
            break;
        }
        c.deliver_all();
        assert_eq!(c.events_of(1, suspected), Vec::new(), "once");
        let x = c.cores[1].engine().view().version;
        assert!(
            !c.cores[1].engine().view().contains(victim),
            "removed in {x}"
        );
        assert_eq!(c.cores[2].engine().view().version, x);
    }
}

/// The fault commands' names (`NodeCore::resolve`) follow the views: every member of
/// each installed view resolves to its address at every core, after the founding, a
/// removal (whose install hashes only the members that are new to the last view) and
/// a restart from the saved state (whose view's members are known before any install).
#[test]
fn every_member_of_the_installed_view_resolves_to_its_address() {
    let resolves_all = |core: &NodeCore| {
        for m in &core.engine().view().members {
            assert_eq!(core.resolve(&m.id.to_string()), vec![m.addr], "{}", m.id);
            assert_eq!(core.resolve(m.id.node.as_str()), vec![m.addr], "{}", m.id);
        }
    };
    let mut c = Cluster::founded(4);
    for core in &c.cores {
        resolves_all(core);
    }
    let victim = c.members[2].id;
    c.cores[0].suspect(c.now, victim);
    c.drain(0);
    c.deliver_all();
    for i in [0, 1, 3] {
        assert!(!c.cores[i].engine().view().contains(victim));
        resolves_all(&c.cores[i]);
    }
    // n3 restarts from its disk: the saved view's members are known at once.
    let saved = c.disks[3].load().unwrap();
    let cfg = c.cores[3].config().clone();
    let (id, addr) = (ProcessId::named("n3", 2), c.members[3].addr);
    let restarted = NodeCore::new(cfg, id, addr).with_durable(Some(saved.clone()), None);
    for m in &saved.view.members {
        assert_eq!(
            restarted.resolve(&m.id.to_string()),
            vec![m.addr],
            "{}",
            m.id
        );
    }
}

/// A save that fails after a step whose bookkeeping waits for the event poll: the
/// bookkeeping is done on the engine that did the step, before the process stops, so
/// the install is reported with its own view, then the failure (a failed save replaces
/// the engine: the install's records once copied an empty view from the new one).
#[test]
fn a_failed_save_reports_the_install_it_followed_then_the_failure() {
    let mut c = Cluster::founded(3);
    let victim = c.members[2].id;
    let x = c.cores[1].engine().view().version;
    c.cores[0].suspect(c.now, victim);
    c.end_step(0);
    loop {
        let (from, to, bytes) = c.wire.pop_front().expect("the M-com reaches n1");
        if to == 2 {
            continue; // crashed
        }
        let addr = c.members[from].addr;
        c.cores[to].handle_datagram(c.now, addr, &bytes);
        if to == 1 && c.cores[1].engine().view().version == x + 1 {
            let members = c.cores[1].engine().view().members.clone();
            assert!(
                c.cores[1].installed_view(x + 1).is_none(),
                "left for the poll"
            );
            // The install's save follows the step (D22): the disk fails there.
            c.disks[1].set_failing(true);
            c.end_step(1);
            let evs = c.events_of(1, |e| match e {
                CoreEvent::ViewInstalled { version } => Some(Some(version)),
                CoreEvent::StorageFailed { .. } => Some(None),
                _ => None,
            });
            assert_eq!(
                evs,
                vec![Some(x + 1), None],
                "the install, then the failure"
            );
            let view = c.cores[1]
                .installed_view(x + 1)
                .expect("the install's record");
            assert_eq!(view.members, members);
            assert_eq!(c.cores[1].phase(), super::NodePhase::Stopped);
            break;
        }
        c.end_step(to);
    }
}

/// Keep-warm pings (`NodeConfig::warm_us`) go to the view's other members in turn,
/// never to the node itself, and only while it is a member (a node that is not
/// pings no one). Uses this file's hand-driven cluster for its founded group.
#[test]
fn keep_warm_pings_take_the_other_members_in_turn() {
    use sgmp_transport::DatagramCore;
    let mut c = Cluster::founded(3);
    let others: Vec<SocketAddr> = c.members[1..].iter().map(|m| m.addr).collect();
    let targets: Vec<_> = (0..4).map(|_| c.cores[0].warm_target()).collect();
    assert_eq!(
        targets,
        vec![
            Some(others[0]),
            Some(others[1]),
            Some(others[0]),
            Some(others[1])
        ]
    );
    let cfg = c.cores[0].config().clone();
    let (id, addr) = (
        ProcessId::named("n9", 1),
        SocketAddr::from(([127, 0, 0, 1], 7199)),
    );
    let mut outsider = NodeCore::new(cfg, id, addr);
    assert_eq!(outsider.warm_target(), None, "not a member: no pings");
}

/// Warm-up before a suspicion (`NodeConfig::warm_up_us`): a member's window ends when
/// the member its detector watches would be suspected and starts `warm_up_us` before
/// (at most a quarter of the suspicion timeout); it calls the view's other members
/// but that one, the mgr first, and answers calls from its view's members only. A
/// node that is not a member, or with the setting at 0, has no window.
#[test]
fn a_member_warms_up_before_its_suspicion_and_calls_the_others_but_the_silent_one() {
    use sgmp_transport::DatagramCore;
    let c = Cluster::founded(4);
    let addrs: Vec<SocketAddr> = c.members.iter().map(|m| m.addr).collect();
    let (from, until) = c.cores[0].warm_up().expect("a member watching n3");
    assert_eq!(until.micros_since(from), super::DEFAULT_WARM_UP_US);
    assert!(until > c.now, "the suspicion is still to come");
    // n0 (the mgr, most senior) watches the most junior, n3: n1 and n2 are called.
    let targets: Vec<_> = (0..4).map(|i| c.cores[0].warm_up_target(i)).collect();
    assert_eq!(targets, vec![Some(addrs[1]), Some(addrs[2]), None, None]);
    // n2 watches n1: the mgr first, then n3.
    let targets: Vec<_> = (0..3).map(|i| c.cores[2].warm_up_target(i)).collect();
    assert_eq!(targets, vec![Some(addrs[0]), Some(addrs[3]), None]);
    assert!(c.cores[0].answers_warm_up(addrs[3]));
    assert!(!c.cores[0].answers_warm_up(addrs[0]), "not itself");
    let stranger = SocketAddr::from(([127, 0, 0, 1], 7199));
    assert!(!c.cores[0].answers_warm_up(stranger), "not a stranger");

    assert_eq!(
        Some(until),
        c.cores[0].engine().suspicion_due().map(|(_, t)| t),
        "the window follows the detector (which moves it with every sign of life)"
    );

    // Off, or not a member: no window, no one called, no call answered.
    let mut cfg = c.cores[0].config().clone();
    cfg.warm_up_us = 0;
    let mut off = NodeCore::new(cfg.clone(), c.members[0].id, addrs[0]);
    let founders = c.members.clone();
    off.found_with(c.now, &founders);
    assert_eq!(off.warm_up(), None);
    // The lead is at most a quarter of the suspicion timeout and half of what it
    // leaves beyond a heartbeat interval; none if that leaves nothing.
    cfg.warm_up_us = super::DEFAULT_WARM_UP_US;
    for (suspect_us, heartbeat_us, lead) in [
        (4_000, 1_000, Some(1_000)),
        (4_000, 2_000, Some(1_000)),
        (4_000, 3_000, Some(500)),
        (4_000, 3_999, None),
        (60_000, 10_000, Some(2_000)),
    ] {
        let mut clamped = cfg.clone();
        clamped.engine.suspect_timeout_us = suspect_us;
        clamped.engine.heartbeat_interval_us = heartbeat_us;
        let mut core = NodeCore::new(clamped, c.members[0].id, addrs[0]);
        core.found_with(c.now, &founders);
        let got = core.warm_up().map(|(from, until)| until.micros_since(from));
        assert_eq!(
            got, lead,
            "suspect {suspect_us} µs, heartbeat {heartbeat_us} µs"
        );
    }
    let outsider = NodeCore::new(cfg, ProcessId::named("n9", 1), stranger);
    assert_eq!(outsider.warm_up(), None);
    assert_eq!(outsider.warm_up_target(0), None);
    assert!(!outsider.answers_warm_up(addrs[0]));
}
