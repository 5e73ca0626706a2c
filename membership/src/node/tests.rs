//! In-process nodes on 127.0.0.1: cold start, join, leave.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::*;

/// `n` UDP sockets on 127.0.0.1, port 0, and their addresses. Each is handed to its
/// node ([`Node::start_on`]): the port stays ours throughout, so a parallel test cannot
/// take it between learning it and starting the node.
fn bound(n: usize) -> (Vec<UdpSocket>, Vec<SocketAddr>) {
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs = socks.iter().map(|s| s.local_addr().unwrap()).collect();
    (socks, addrs)
}

fn config(name: &str, listen: SocketAddr, seeds: &[SocketAddr]) -> NodeConfig {
    NodeConfig {
        id: name.into(),
        listen,
        seeds: seeds.to_vec(),
        heartbeat_ms: 20,
        // No test here crashes a node: suspicion timeouts a stall of a loaded machine
        // cannot reach (an excluded member would come back under a new process id).
        suspect_ms: 1_000,
        protocol_timeout_ms: 2_000,
        join_retry_ms: 100,
        // Long enough that a node descheduled on a loaded machine still hears the
        // other seeds before it would found alone (the lowest name must found).
        coldstart_rounds: 4,
        coldstart_round_ms: 100,
        leave_linger_ms: 500,
        max_members: 16,
        max_snapshot: 1024,
        ..NodeConfig::default()
    }
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn simultaneous_cold_start_makes_one_group_then_join_and_leave() {
    let (mut socks, addrs) = bound(4);
    let joiner_sock = socks.pop().unwrap();
    let seeds = &addrs[..3];
    let nodes: Vec<NodeHandle> = ["c", "a", "b"]
        .iter()
        .zip(seeds)
        .zip(socks)
        .map(|((n, a), s)| Node::start_on(config(n, *a, seeds), s).unwrap())
        .collect();
    wait_for("one view of three", Duration::from_secs(10), || {
        nodes.iter().all(|n| n.view().len() == 3)
    });
    let v0 = nodes[0].view();
    for n in &nodes {
        let v = n.view();
        assert_eq!(v.members, v0.members);
    }
    // The lowest name founded the group: it is the most senior.
    assert_eq!(v0.members[0].id.node.as_str(), "a");
    // A late joiner with a snapshot provider on the group.
    for n in &nodes {
        n.set_snapshot_provider(Box::new(|| b"state!".to_vec()), Duration::from_secs(5))
            .unwrap();
    }
    let (joiner, sub) =
        Node::start_subscribed_on(config("d", addrs[3], seeds), joiner_sock).unwrap();
    wait_for("four members", Duration::from_secs(10), || {
        nodes.iter().chain([&joiner]).all(|n| n.view().len() == 4)
    });
    let mut snapshot = None;
    while let Some(ev) = sub.try_recv() {
        if let NodeEvent::Joined { snapshot: s, .. } = ev {
            snapshot = Some(s);
        }
    }
    assert_eq!(
        snapshot.as_deref(),
        Some(&b"state!"[..]),
        "{:?}",
        joiner.status()
    );
    // A graceful leave.
    joiner.leave(Duration::from_secs(3)).unwrap();
    assert_eq!(joiner.status().phase, NodePhase::Left);
    wait_for("three members again", Duration::from_secs(10), || {
        nodes.iter().all(|n| n.view().len() == 3)
    });
    joiner.shutdown();
    // Fault commands resolve names.
    assert!(nodes[0]
        .fault(
            FaultCommand::Partition(vec!["zz".into()]),
            Duration::from_secs(5)
        )
        .is_err());
    assert!(nodes[0]
        .fault(FaultCommand::Loss(0.0), Duration::from_secs(5))
        .is_ok());
    assert!(nodes[0]
        .fault(FaultCommand::Clear, Duration::from_secs(5))
        .is_ok());
}

#[test]
fn taken_port_is_an_error() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    match Node::start(config("x", addr, &[])) {
        Err(NodeError::Bind { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("bound a taken port"),
    }
}

#[test]
fn events_are_timed_by_the_node_loop() {
    let (mut socks, addrs) = bound(1);
    let before = Instant::now();
    let (node, sub) =
        Node::start_subscribed_on(config("t", addrs[0], &[]), socks.remove(0)).unwrap();
    wait_for("a view of one", Duration::from_secs(10), || {
        node.view().len() == 1
    });
    // Delivered late on purpose: the stamps are the loop's, not the receiver's.
    std::thread::sleep(Duration::from_millis(50));
    let got = Instant::now();
    let mut timed = Vec::new();
    while let Some(t) = sub.try_recv_timed() {
        timed.push(t);
    }
    let view = timed
        .iter()
        .find(|t| matches!(t.event, NodeEvent::ViewInstalled { .. }))
        .expect("the founder's first view");
    assert!(view.at >= before && view.at + Duration::from_millis(40) <= got);
    // Stamps follow the order of the events.
    assert!(timed.windows(2).all(|w| w[0].at <= w[1].at));
    node.shutdown();
}

#[test]
fn a_node_started_on_a_socket_listens_on_it() {
    let (mut socks, addrs) = bound(1);
    // `listen` is replaced by the socket's address.
    let cfg = config("s", SocketAddr::from(([127, 0, 0, 1], 1)), &[]);
    let node = Node::start_on(cfg, socks.remove(0)).unwrap();
    assert_eq!(node.local_addr(), addrs[0]);
    assert_eq!(node.status().addr, addrs[0]);
    wait_for("a view of one", Duration::from_secs(10), || {
        node.view().len() == 1
    });
    node.shutdown();
}

/// `advertise`: a node listening on every interface puts the advertised address in its
/// `Member` record, and a joiner seeded with that address gets in; an unspecified
/// listen address without it is refused before anything is bound.
#[test]
fn advertised_address_is_the_member_address() {
    let any = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = any.local_addr().unwrap().port();
    let mut a = config(
        "adv-a",
        SocketAddr::from(([0, 0, 0, 0], port)),
        &[SocketAddr::from(([127, 0, 0, 1], port))],
    );
    match Node::start(a.clone()) {
        Err(NodeError::Config(e)) => assert!(e.to_string().contains("advertise"), "{e}"),
        other => panic!("an unspecified listen without advertise started: {other:?}"),
    }
    a.advertise = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    let a = Node::start_on(a, any).unwrap();
    let adv = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(a.local_addr(), SocketAddr::from(([0, 0, 0, 0], port)));
    assert_eq!(a.status().addr, adv);
    let (mut socks, addrs) = bound(1);
    let b = Node::start_on(config("adv-b", addrs[0], &[adv]), socks.remove(0)).unwrap();
    wait_for("two members", Duration::from_secs(10), || {
        a.view().len() == 2 && b.view().len() == 2
    });
    let v = b.view();
    assert_eq!(v.members[0].addr, adv, "{v:?}");
}

/// A step that wrote datagrams or has events yields the core before publishing, unless the
/// configuration says not to: forming a group of two (discovery, join, State-Xfer,
/// heartbeats) counts such yields only on the node that asked for them.
#[test]
fn nodes_yield_before_publishing_only_when_configured_to() {
    let (mut socks, addrs) = bound(2);
    let b_sock = socks.pop().unwrap();
    let a_sock = socks.pop().unwrap();
    let a = Node::start_on(config("a", addrs[0], &addrs), a_sock).unwrap();
    let mut cfg_b = config("b", addrs[1], &addrs);
    cfg_b.yield_before_publish = false;
    let b = Node::start_on(cfg_b, b_sock).unwrap();
    wait_for("one view of two", Duration::from_secs(10), || {
        a.view().len() == 2 && b.view().len() == 2
    });
    wait_for("a's yields in its metrics", Duration::from_secs(5), || {
        a.metrics().yields_before_publish > 0
    });
    assert!(b.metrics().driver.datagrams_written > 0);
    assert_eq!(b.metrics().yields_before_publish, 0);
    a.shutdown();
    b.shutdown();
}

/// Keep-warm pings between running nodes: with `warm_us` set, a node that hears nothing
/// for the interval pings the other member, which counts the pings and is otherwise
/// unmoved (the view stays one of two, its endpoint never sees one); a node without the
/// setting sends none.
#[test]
fn members_with_keep_warm_pings_ping_each_other_and_nothing_else_changes() {
    let (mut socks, addrs) = bound(2);
    let b_sock = socks.pop().unwrap();
    let a_sock = socks.pop().unwrap();
    let mut cfg_a = config("a", addrs[0], &addrs);
    cfg_a.warm_us = 1_000;
    let a = Node::start_on(cfg_a, a_sock).unwrap();
    let b = Node::start_on(config("b", addrs[1], &addrs), b_sock).unwrap();
    wait_for("one view of two", Duration::from_secs(10), || {
        a.view().len() == 2 && b.view().len() == 2
    });
    wait_for("b to count a's pings", Duration::from_secs(5), || {
        b.metrics().driver.pings_received >= 5
    });
    // Metrics are snapshots: a's may lag behind what b has counted.
    let received = b.metrics().driver.pings_received;
    wait_for("a to count what b received", Duration::from_secs(5), || {
        a.metrics().driver.pings_sent >= received
    });
    assert_eq!(b.metrics().driver.pings_sent, 0);
    let malformed = b
        .metrics()
        .transport
        .dropped(sgmp_transport::DropReason::Malformed);
    assert_eq!(malformed, 0, "a ping never reaches the endpoint");
    assert_eq!((a.view().len(), b.view().len()), (2, 2));
    a.shutdown();
    b.shutdown();
}

/// Warm-up before a suspicion, between running nodes (on by default): while every
/// member is heard no node sends anything; once a member stops, its watcher calls the
/// other live member over the last milliseconds before the suspicion, which answers,
/// and the view without the stopped member follows. Neither a call nor an answer
/// reaches an endpoint.
#[test]
fn the_watcher_of_a_silent_member_calls_the_others_before_suspecting_it() {
    let (socks, addrs) = bound(3);
    let nodes: Vec<NodeHandle> = ["a", "b", "c"]
        .iter()
        .zip(&addrs)
        .zip(socks)
        .map(|((n, a), s)| {
            // The detector, not the transport, must find c gone: the transport gives
            // a peer up after eight retransmission timeouts (2 + 4 + ... + 256 ms at
            // the least), after this suspicion timeout.
            // A wide window (the last 50 ms of the silence): a watcher woken late
            // on a loaded machine still calls before it suspects.
            let cfg = NodeConfig {
                suspect_ms: 400,
                warm_up_us: 50_000,
                ..config(n, *a, &addrs)
            };
            Node::start_on(cfg, s).unwrap()
        })
        .collect();
    wait_for("one view of three", Duration::from_secs(10), || {
        nodes.iter().all(|n| n.view().len() == 3)
    });
    let sent = |n: &NodeHandle| n.metrics().driver.pings_sent;
    assert_eq!(
        nodes.iter().map(sent).sum::<u64>(),
        0,
        "nothing while every member is heard"
    );
    nodes[2].shutdown();
    wait_for("the view without c", Duration::from_secs(10), || {
        nodes[0].view().len() == 2 && nodes[1].view().len() == 2
    });
    // Metrics are snapshots, published after the steps that counted.
    wait_for("a call and its answer", Duration::from_secs(5), || {
        sent(&nodes[0]) + sent(&nodes[1]) >= 2
            && nodes[..2]
                .iter()
                .all(|n| n.metrics().driver.pings_received >= 1)
    });
    for n in &nodes[..2] {
        let malformed = n
            .metrics()
            .transport
            .dropped(sgmp_transport::DropReason::Malformed);
        assert_eq!(malformed, 0, "a call or answer never reaches the endpoint");
        n.shutdown();
    }
}

/// While the round it opened is open, the mgr holds the news of its submission (and of
/// the leaver's suspicion) and publishes it with the round's install: counted in its
/// metrics, in order, each event stamped with its own step's input (the submission's
/// no later than the install's). With `publish_after_round = false` nothing is held.
#[test]
fn the_mgr_publishes_its_submission_with_the_rounds_install_only_when_configured_to() {
    for hold in [true, false] {
        let (socks, addrs) = bound(3);
        let mut nodes = Vec::new();
        let mut sub = None;
        for ((name, addr), sock) in ["a", "b", "c"].iter().zip(&addrs).zip(socks) {
            let mut cfg = config(name, *addr, &addrs);
            cfg.publish_after_round = hold;
            if sub.is_none() {
                let (h, s) = Node::start_subscribed_on(cfg, sock).unwrap();
                sub = Some(s);
                nodes.push(h);
            } else {
                nodes.push(Node::start_on(cfg, sock).unwrap());
            }
        }
        let sub = sub.unwrap();
        wait_for("one view of three", Duration::from_secs(10), || {
            nodes.iter().all(|n| n.view().len() == 3)
        });
        assert!(nodes[0].status().is_mgr, "the founder a is the mgr");
        let before = nodes[0].view().version;
        while sub.try_recv().is_some() {}
        let held_before = nodes[0].metrics().events_held;
        nodes[2].leave(Duration::from_secs(5)).unwrap();
        wait_for("the view without c", Duration::from_secs(10), || {
            nodes[0].view().len() == 2 && nodes[1].view().len() == 2
        });
        let mut submitted = None;
        let mut installed = None;
        while let Some(t) = sub.recv_timed_timeout(Duration::from_millis(500)) {
            match t.event {
                NodeEvent::Submitted { version, at, .. } if version == before + 1 => {
                    assert!(
                        installed.is_none(),
                        "the submission comes before the install"
                    );
                    assert_eq!(at, t.at, "the submission keeps its step's stamp");
                    submitted = Some(at);
                }
                NodeEvent::ViewInstalled { view, .. } if view.version == before + 1 => {
                    installed = Some(t.at);
                    break;
                }
                _ => {}
            }
        }
        let (submitted, installed) = (submitted.unwrap(), installed.unwrap());
        assert!(
            submitted <= installed,
            "stamped at its own input, not at publication"
        );
        if hold {
            wait_for(
                "the mgr's held steps in its metrics",
                Duration::from_secs(5),
                || nodes[0].metrics().events_held > held_before,
            );
        } else {
            std::thread::sleep(Duration::from_millis(50));
            assert_eq!(nodes[0].metrics().events_held, 0);
        }
        for n in &nodes {
            n.shutdown();
        }
    }
}

/// A founded node whose snapshot provider, once the handle is put in the returned slot,
/// waits `delay` and shuts the node down from the loop thread; and a view change that
/// makes it run (the node's own tags, committed at once).
fn node_shut_by_its_provider(
    name: &str,
    delay: Duration,
) -> (std::sync::Arc<NodeHandle>, Subscription) {
    use std::sync::{Arc, OnceLock};
    let slot: Arc<OnceLock<Arc<NodeHandle>>> = Arc::new(OnceLock::new());
    let from_provider = Arc::clone(&slot);
    let provider: SnapshotProvider = Box::new(move || {
        if let Some(h) = from_provider.get() {
            std::thread::sleep(delay);
            h.shutdown();
        }
        Vec::new()
    });
    let cfg =
        NodeConfig::from_toml_str(&format!("id = \"{name}\"\nlisten = \"127.0.0.1:0\"\n")).unwrap();
    let (h, events) = Node::start_with(cfg, Some(provider)).unwrap();
    let h = Arc::new(h);
    let t = Instant::now();
    while h.status().phase != NodePhase::Member && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(h.status().phase, NodePhase::Member);
    assert!(slot.set(Arc::clone(&h)).is_ok());
    let mut tags = crate::TagSet::new();
    tags.insert("role", name).unwrap();
    h.set_tags(&tags, Duration::from_secs(10)).unwrap();
    (h, events)
}

/// The last handle shut down on the loop thread itself (from the snapshot provider,
/// which runs there): the loop stops instead of its thread joining itself (a panic).
#[test]
fn a_shutdown_from_the_loop_thread_stops_the_loop() {
    let (h, events) = node_shut_by_its_provider("loop-stop", Duration::ZERO);
    let t = Instant::now();
    while !events.ended() && t.elapsed() < Duration::from_secs(20) {
        let _ = events.recv_timeout(Duration::from_millis(20));
    }
    assert!(
        events.ended(),
        "the loop stopped and ended its subscriptions"
    );
    assert!(matches!(
        h.leave(Duration::from_secs(1)),
        Err(HandleError::Stopped)
    ));
}

/// Snapshot requests from ever new (made-up) addresses while the probe queue is full:
/// the service's datagrams waiting for it stay bounded, the rest dropped and counted.
#[test]
fn service_datagrams_waiting_for_the_probe_queue_are_bounded() {
    use sgmp_transport::{Endpoint, TransportConfig};
    let addr = SocketAddr::from(([127, 0, 0, 1], 7310));
    let cfg = NodeConfig {
        id: "svc".into(),
        listen: addr,
        max_members: 8,
        max_clients: 64,
        ..NodeConfig::default()
    };
    let me = ProcessId::named("svc", 1);
    let mut core_cfg = cfg.core_config(addr, cfg.keyring().unwrap());
    core_cfg.transport.probe_queue = 64;
    let mut core = NodeCore::new(core_cfg, me, addr);
    let now = crate::Time::from_millis(1_000);
    core.found_with(now, &[crate::Member { id: me, addr }]);
    while core.poll_event().is_some() {}
    let mut sender = Endpoint::new(
        TransportConfig {
            max_peers: 1,
            probe_queue: 4,
            ..cfg.transport_config()
        },
        ProcessId::named("x", 1),
    );
    let mut hello = Vec::new();
    crate::service::wire::encode_hello(&mut hello, true, 0, &[]);
    let mut buf = vec![0u8; 65_536];
    for i in 0..SERVICE_OUT_CAP + 500 {
        sender.send_probe(now, addr, &hello).unwrap();
        let t = sender.poll_transmit(now, &mut buf).unwrap();
        let from = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 9000));
        core.handle_datagram(now, from, &buf[..t.len]);
    }
    assert!(
        core.stats().service_out_dropped >= 400,
        "{:?}",
        core.stats()
    );
}

/// The provider shuts the node down while the application's own shutdown is joining
/// the loop thread (holding the handle's thread lock): both return.
#[test]
fn a_provider_shutdown_during_an_application_shutdown_returns() {
    // Long enough for the application's shutdown to be joining.
    let (h, _events) = node_shut_by_its_provider("loop-stop2", Duration::from_millis(50));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        h.shutdown();
        let _ = done_tx.send(());
    });
    assert!(
        done_rx.recv_timeout(Duration::from_secs(20)).is_ok(),
        "the application's shutdown returned"
    );
}

/// The CPUs the loop thread of the node named `name` may run on, as
/// `/proc/self/task/*/status` lists them (`Cpus_allowed_list`).
fn loop_thread_cpus(name: &str) -> String {
    let comm = format!("sgmp-{name}");
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.trim() == comm) {
            let status = std::fs::read_to_string(dir.join("status")).unwrap();
            let line = status
                .lines()
                .find(|l| l.starts_with("Cpus_allowed_list:"))
                .expect("a thread's status lists its CPUs");
            return line["Cpus_allowed_list:".len()..].trim().to_string();
        }
    }
    panic!("no thread named {comm}");
}

/// `NodeConfig::cpu`: the loop thread runs on that CPU only, from its first step; a
/// CPU the process may not run on stops the start with `NodeError::Cpu`, one beyond
/// what a CPU set can name is a configuration error.
#[test]
fn a_node_given_a_cpu_runs_its_loop_there_and_nowhere_else() {
    let cpu = *affinity::current_thread_cpus()
        .unwrap()
        .last()
        .expect("the test runs somewhere");
    let (mut socks, addrs) = bound(3);
    let mut cfg = config("pin", addrs[0], &[]);
    cfg.cpu = Some(cpu);
    let node = Node::start_on(cfg, socks.remove(0)).unwrap();
    assert_eq!(loop_thread_cpus("pin"), cpu.to_string());
    wait_for("the pinned node's group", Duration::from_secs(10), || {
        node.view().members.len() == 1
    });
    node.shutdown();

    let mut cfg = config("nowhere", addrs[1], &[]);
    cfg.cpu = Some(affinity::MAX_CPUS - 1);
    match Node::start_subscribed_on(cfg, socks.remove(0)) {
        Err(NodeError::Cpu { cpu, source }) => {
            assert_eq!(cpu, affinity::MAX_CPUS - 1);
            assert_eq!(source.kind(), std::io::ErrorKind::InvalidInput, "{source}");
            assert!(source.to_string().contains("may use"), "{source}");
        }
        other => panic!("expected NodeError::Cpu, got {:?}", other.map(|_| ())),
    }

    let mut cfg = config("beyond", addrs[2], &[]);
    cfg.cpu = Some(affinity::MAX_CPUS);
    let e = Node::start_on(cfg, socks.remove(0))
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(e, NodeError::Config(_)), "{e}");
    assert!(e.to_string().contains("cpu"), "{e}");
}
