//! D24 on sans-IO node cores over an in-memory network: a member cut off from the
//! group withholds its suspicions, the group removes it, and when the cut heals a
//! member tells it "you were excluded": it rejoins at once through the notice's
//! contacts, with no discovery round and no join timeout.

use std::net::SocketAddr;

use super::coldstart::Probe;
use super::core::{CoreConfig, CoreEvent, NodeCore, NodePhase};
use crate::config::EngineConfig;
use crate::engine::{ExcludeReason, Status};
use crate::view::Member;
use crate::{ProcessId, Time};
use sgmp_transport::{Endpoint, TransportConfig};

pub(super) fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7400 + i as u16))
}

pub(super) fn core_config(n: usize) -> CoreConfig {
    CoreConfig {
        engine: EngineConfig {
            max_members: n + 2,
            max_snapshot: 64,
            heartbeat_interval_us: 20_000,
            suspect_timeout_us: 100_000,
            protocol_timeout_us: 200_000,
            join_retry_us: 100_000,
            local_health: true,
            ..EngineConfig::default()
        },
        transport: TransportConfig {
            cluster_id: 7,
            max_message: 8 * 1024,
            max_peers: n + 2,
            initial_rto_us: 20_000,
            min_rto_us: 2_000,
            max_rto_us: 100_000,
            unreachable_after_us: 400_000,
            delayed_ack_us: 1_000,
            keepalive_us: 200_000,
            ..TransportConfig::default()
        },
        max_joins_per_sec: 0,
        seeds: (0..n).map(addr).collect(),
        may_found: false,
        coldstart_rounds: 3,
        coldstart_round_us: 50_000,
        // Long: a rejoin that waited for it would fail the bound below.
        join_timeout_us: 5_000_000,
        auto_rejoin: true,
        leave_linger_us: 200_000,
        warm_up_us: 0,
        service: None,
    }
}

/// Node cores on a lossless network with a cut matrix; 1 ms steps.
struct Net {
    nodes: Vec<NodeCore>,
    cut: Vec<Vec<bool>>,
    now: Time,
    events: Vec<Vec<(ProcessId, CoreEvent)>>,
}

impl Net {
    fn founded(n: usize) -> Net {
        let founders: Vec<Member> = (0..n)
            .map(|i| Member {
                id: ProcessId::named(&format!("n{i}"), 1),
                addr: addr(i),
            })
            .collect();
        let mut nodes: Vec<NodeCore> = founders
            .iter()
            .map(|m| NodeCore::new(core_config(n), m.id, m.addr))
            .collect();
        for c in &mut nodes {
            c.found_with(Time(1), &founders);
        }
        Net {
            nodes,
            cut: vec![vec![false; n]; n],
            now: Time(1),
            events: vec![Vec::new(); n],
        }
    }

    fn isolate(&mut self, i: usize, cut: bool) {
        for j in 0..self.nodes.len() {
            if j != i {
                self.cut[i][j] = cut;
                self.cut[j][i] = cut;
            }
        }
    }

    fn run_for(&mut self, us: u64) {
        let end = self.now + us;
        let mut buf = vec![0u8; 1500];
        while self.now < end {
            self.now = self.now + 1_000;
            let now = self.now;
            let mut flying = Vec::new();
            for (i, c) in self.nodes.iter_mut().enumerate() {
                if c.poll_timeout().is_some_and(|t| t <= now) {
                    c.handle_timeout(now);
                }
                while let Some(t) = c.poll_transmit(now, &mut buf) {
                    let j = t.dst.port() as usize - 7400;
                    flying.push((i, j, buf[..t.len].to_vec()));
                }
            }
            for (i, j, d) in flying {
                if !self.cut[i][j] {
                    self.nodes[j].handle_datagram(now, addr(i), &d);
                }
            }
            for (i, c) in self.nodes.iter_mut().enumerate() {
                while let Some(e) = c.poll_event() {
                    self.events[i].push(e);
                }
            }
        }
    }

    fn one_view_of_all(&self) -> bool {
        let v = self.nodes[0].engine().view();
        v.members.len() == self.nodes.len()
            && self
                .nodes
                .iter()
                .all(|c| c.engine().status() == Status::Member && c.engine().view() == v)
    }
}

#[test]
fn a_removed_member_is_told_and_rejoins_at_once() {
    let mut net = Net::founded(5);
    net.run_for(200_000);
    assert!(net.one_view_of_all());
    // n4 is cut off for 2 s (20 suspicion timeouts): the four others remove it; n4
    // withholds its suspicions and stays a member of its old view meanwhile.
    net.isolate(4, true);
    net.run_for(2_000_000);
    let v = net.nodes[0].engine().view().clone();
    assert_eq!(v.members.len(), 4, "{v:?}");
    assert!(!v.contains(ProcessId::named("n4", 1)));
    assert_eq!(net.nodes[4].engine().status(), Status::Member);
    assert_eq!(net.nodes[4].engine().view().version, 1);
    assert!(net.nodes[4].engine().withholding(net.now));
    assert!(
        net.events[4]
            .iter()
            .all(|(_, e)| !matches!(e, CoreEvent::Suspected { .. })),
        "n4 put a suspicion out: {:?}",
        net.events[4]
    );
    // Heal: a member refuses n4's next datagram and tells it; n4 rejoins as n4#2
    // through the notice's contacts, well within a second of simulated time.
    net.isolate(4, false);
    let healed = net.now;
    while !net.one_view_of_all() {
        assert!(
            net.now.micros_since(healed) < 1_000_000,
            "not one view 1 s after the heal: {:?}",
            net.nodes.iter().map(|c| c.phase()).collect::<Vec<_>>()
        );
        net.run_for(1_000);
    }
    let took = net.now.micros_since(healed);
    assert!(net.events[4].iter().any(|(_, e)| matches!(
        e,
        CoreEvent::Excluded {
            reason: ExcludeReason::Removed
        }
    )));
    assert_eq!(net.nodes[4].me(), ProcessId::named("n4", 2));
    assert_eq!(net.nodes[4].stats().exclusions_heard, 1);
    let told: u64 = net.nodes[..4]
        .iter()
        .map(|c| c.stats().exclusions_told)
        .sum();
    assert!(told >= 1);
    // No discovery round was needed: the join went straight to the contacts.
    assert!(
        net.events[4]
            .iter()
            .any(|(_, e)| matches!(e, CoreEvent::Joining { contacts } if *contacts >= 4)),
        "{:?}",
        net.events[4]
    );
    assert_eq!(net.nodes[4].phase(), NodePhase::Member);
    eprintln!("heal to one view of five: {took} us");
}

#[test]
fn a_split_where_nobody_has_a_majority_resumes_without_a_rejoin() {
    // 2-2-1 for 1 s (10 suspicion timeouts; seed 1387's case was 0.6 s): nobody hears
    // a majority, so nobody suspects anyone or stops; after the heal the group goes on
    // in its first view, every process the same incarnation.
    let mut net = Net::founded(5);
    net.run_for(200_000);
    for (a, b) in [
        (0, 2),
        (0, 3),
        (0, 4),
        (1, 2),
        (1, 3),
        (1, 4),
        (2, 4),
        (3, 4),
    ] {
        net.cut[a][b] = true;
        net.cut[b][a] = true;
    }
    net.run_for(1_000_000);
    net.cut = vec![vec![false; 5]; 5];
    net.run_for(1_000_000);
    assert!(net.one_view_of_all());
    assert_eq!(net.nodes[0].engine().view().version, 1);
    for c in &net.nodes {
        assert_eq!(c.me().incarnation, 1);
        assert_eq!(c.stats().rejoins, 0);
    }
}

/// A datagram carrying `probe` from a process `from`, to `to`.
fn probe_from(from: ProcessId, to: SocketAddr, probe: &Probe) -> Vec<u8> {
    let mut ep = Endpoint::new(core_config(3).transport, from);
    let mut payload = Vec::new();
    probe.encode(&mut payload);
    ep.send_probe(Time(1), to, &payload).expect("a small probe");
    let mut buf = vec![0u8; 1500];
    let t = ep
        .poll_transmit(Time(1), &mut buf)
        .expect("the probe's datagram");
    buf[..t.len].to_vec()
}

/// D24 rule 4 against rule 6: a joiner whose request is pending takes a notice as
/// proof that its contact is gone only when it comes from a newer incarnation of a
/// contact. Members outside whose view it is answer its discovery queries with the
/// notice too; a joiner that started over on those left its pending request to be
/// committed for a process that no longer ran, and a cold start of seven daemons
/// lost its group so (VERIFICATION.md, chaos finding 13).
#[test]
fn a_joiner_starts_over_only_when_a_newer_incarnation_of_its_contact_answers() {
    let mut net = Net::founded(3);
    net.run_for(200_000);
    assert!(net.one_view_of_all());
    let me = ProcessId::named("j", 1);
    let mut cfg = core_config(3);
    cfg.seeds = vec![addr(0)];
    let mut j = NodeCore::new(cfg, me, addr(3));
    j.start(net.now);
    net.nodes.push(j);
    net.cut = vec![vec![false; 4]; 4];
    net.events.push(Vec::new());
    while net.nodes[3].engine().status() != Status::Joining {
        assert!(net.now.micros_since(Time(1)) < 2_000_000, "j never joined");
        net.run_for(1_000);
    }
    let notice = |by: ProcessId| {
        let p = Probe::Excluded {
            you: me,
            version: 5,
            contacts: vec![Member {
                id: ProcessId::named("n1", 1),
                addr: addr(1),
            }],
        };
        probe_from(by, addr(3), &p)
    };
    // A process of another name (a member answering a query), then the contact
    // itself: the join goes on.
    for by in [ProcessId::named("x", 1), ProcessId::named("n0", 1)] {
        let d = notice(by);
        let now = net.now;
        net.nodes[3].handle_datagram(now, addr(9), &d);
        assert_eq!(
            net.nodes[3].me(),
            me,
            "a notice from {by} restarted the joiner"
        );
        assert_eq!(net.nodes[3].engine().status(), Status::Joining);
    }
    // A newer incarnation of the contact: the contact is gone, start over.
    let d = notice(ProcessId::named("n0", 2));
    let now = net.now;
    net.nodes[3].handle_datagram(now, addr(0), &d);
    assert_eq!(net.nodes[3].me(), ProcessId::named("j", 2));
    // And the group still takes the new incarnation in.
    let restarted = net.now;
    while !net.one_view_of_all() {
        assert!(
            net.now.micros_since(restarted) < 2_000_000,
            "j#2 never joined"
        );
        net.run_for(1_000);
    }
}
