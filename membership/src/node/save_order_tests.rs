//! D22's save order in the node core, without sockets or clocks: three cores with
//! in-memory disks exchange their datagrams by hand. An acknowledgement leaves only
//! after the acceptance it reports is saved; the mgr's submission and its commit leave
//! before its own save, which is done once the step's datagrams are out
//! (`poll_transmit` returning `None`) and before its next input; an install is saved
//! after the step too. One removal costs each process two saves (its acceptance, its
//! install), of which only the members' acceptances lie on the commit's path.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::core::{NodeCore, TapRecord};
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
            now,
        };
        for i in 0..n {
            let founders = c.members.clone();
            c.cores[i].found_with(now, &founders);
        }
        for i in 0..n {
            c.drain(i);
        }
        c.deliver_all();
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

    fn deliver_all(&mut self) {
        while let Some(to) = self.deliver_one() {
            self.drain(to);
        }
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

/// Every event `core` has queued, those `pick` keeps (the deferred bookkeeping is
/// finished first, as for any event poll).
fn events_of<T>(core: &mut NodeCore, pick: impl Fn(super::core::CoreEvent) -> Option<T>) -> Vec<T> {
    let mut v = Vec::new();
    while let Some((_, e)) = core.poll_event() {
        v.extend(pick(e));
    }
    v
}

/// Issue 19: the mgr's commit step queues its M-com before the install's bookkeeping
/// (the node's event, its recent views): the bookkeeping is done once the step's
/// datagrams are out, and in any case before the next event poll or input.
#[test]
fn the_mgrs_install_bookkeeping_follows_its_m_com() {
    use super::core::CoreEvent;
    let installed = |core: &mut NodeCore| {
        events_of(core, |e| match e {
            CoreEvent::ViewInstalled { version } => Some(version),
            _ => None,
        })
    };
    for poll_first in [false, true] {
        let mut c = Cluster::founded(3);
        installed(&mut c.cores[0]);
        let victim = c.members[2].id;
        c.cores[0].suspect(c.now, victim);
        c.drain(0);
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
                    assert_eq!(installed(&mut c.cores[0]), vec![x + 1]);
                }
                c.drain(0);
                assert!(c.cores[0].installed_view(x + 1).is_some());
                if !poll_first {
                    assert_eq!(installed(&mut c.cores[0]), vec![x + 1]);
                }
                break;
            }
            c.drain(to);
        }
        c.deliver_all();
        assert_eq!(installed(&mut c.cores[0]), Vec::<u64>::new(), "once");
        assert_eq!(c.cores[1].engine().view().version, x + 1);
    }
}

/// Issue 19: a member's acknowledgement of an M-sub leaves before the bookkeeping of
/// the suspicion it carries (closing the suspect's channel, the node's event), and the
/// mgr's M-sub before that of its own suspicion and submission; both are done once the
/// step's datagrams are out, and in any case before the next event poll or input.
#[test]
fn suspicion_bookkeeping_follows_the_m_sub_and_the_ack() {
    use super::core::CoreEvent;
    let suspected = |core: &mut NodeCore| {
        events_of(core, |e| match e {
            CoreEvent::Suspected { peer } => Some(peer),
            _ => None,
        })
    };
    let open = |core: &NodeCore, p| !core.endpoint().is_disconnected(p);
    for poll_first in [false, true] {
        let mut c = Cluster::founded(4);
        let victim = c.members[3].id;
        for i in 0..4 {
            suspected(&mut c.cores[i]);
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
        assert!(!open(&c.cores[0], victim));
        assert_eq!(suspected(&mut c.cores[0]), vec![victim]);
        // A member: its acknowledgement is queued, its suspicion waits.
        loop {
            let to = c.deliver_one().expect("the M-sub reaches n1");
            if to != 1 {
                c.drain(to);
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
                assert_eq!(suspected(&mut c.cores[1]), vec![victim]);
                assert!(!open(&c.cores[1], victim));
            }
            c.drain(1);
            assert!(!open(&c.cores[1], victim));
            if !poll_first {
                assert_eq!(suspected(&mut c.cores[1]), vec![victim]);
            }
            break;
        }
        c.deliver_all();
        assert_eq!(suspected(&mut c.cores[1]), Vec::new(), "once");
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
