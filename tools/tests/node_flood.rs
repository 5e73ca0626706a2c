//! Hardening under a flood: three in-process nodes with a cluster key on 127.0.0.1 while
//! a raw UDP socket blasts junk at them (random bytes, well-formed datagrams with a bad
//! CRC, unauthenticated and wrongly keyed data datagrams from made-up node names
//! carrying real join requests, probes asking for contacts); meanwhile a member leaves
//! and another joins. The views must still change correctly (one membership per
//! version, the expected final membership), the junk must be counted as dropped, and
//! memory must stay bounded. Bounded in time (about 15 s).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sgmp_membership::node::{NodeConfig, NodeEvent, NodeHandle, NodePhase, Probe};
use sgmp_membership::{Engine, EngineConfig, Member, Node, ProcessId, Time};
use sgmp_transport::{DropReason, Endpoint, Keyring, TransportConfig};

/// `n` UDP sockets on 127.0.0.1, port 0, and their addresses; each node starts on its
/// socket ([`Node::start_on`]), so no other test can take the port in between.
fn bound(n: usize) -> (Vec<UdpSocket>, Vec<SocketAddr>) {
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let addrs = socks.iter().map(|s| s.local_addr().unwrap()).collect();
    (socks, addrs)
}

fn config(name: &str, listen: SocketAddr, seeds: &[SocketAddr], key: &Path) -> NodeConfig {
    NodeConfig {
        id: name.into(),
        listen,
        seeds: seeds.to_vec(),
        heartbeat_ms: 50,
        // Generous: the flood shares two busy cores with the nodes.
        suspect_ms: 1500,
        protocol_timeout_ms: 1500,
        join_retry_ms: 100,
        coldstart_rounds: 3,
        coldstart_round_ms: 50,
        leave_linger_ms: 500,
        max_members: 16,
        max_snapshot: 1024,
        key_file: Some(key.to_path_buf()),
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

/// Resident set size of this process, bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn names(view: &sgmp_membership::View) -> Vec<String> {
    view.members
        .iter()
        .map(|m| m.id.node.as_str().to_string())
        .collect()
}

/// A real, encoded join request from `fake` (what a joining engine sends).
fn join_request(fake: ProcessId, contact: Member) -> Vec<u8> {
    let mut e = Engine::new(
        EngineConfig {
            max_members: 16,
            max_snapshot: 1024,
            ..EngineConfig::default()
        },
        Member {
            id: fake,
            addr: contact.addr,
        },
    );
    e.join(Time(0), &[contact]);
    e.poll_transmit().expect("a join request").payload.to_vec()
}

/// Junk datagrams for `targets` (process id, address): each list entry is one datagram.
fn junk(targets: &[(ProcessId, SocketAddr)], rng: &mut ChaCha8Rng) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    let cluster_id = NodeConfig::default().cluster_id;
    let wrong = Keyring::new([0xee; 32], None);
    for (k, &(pid, addr)) in targets.iter().enumerate() {
        for i in 0..40 {
            let fake = ProcessId::named(&format!("fake-{k}-{i}"), 1 + i as u64);
            let keys = if i % 2 == 0 { Keyring::NONE } else { wrong };
            let cfg = TransportConfig {
                cluster_id,
                keys,
                ..TransportConfig::default()
            };
            let mut ep = Endpoint::new(cfg, fake);
            let req = join_request(fake, Member { id: pid, addr });
            ep.send(Time(0), pid, addr, &req).unwrap();
            let mut probe = Vec::new();
            Probe::Query { cold: false }.encode(&mut probe);
            ep.send_probe(Time(0), addr, &probe).unwrap();
            let mut buf = vec![0u8; 1500];
            while let Some(t) = ep.poll_transmit(Time(0), &mut buf) {
                let d = buf[..t.len].to_vec();
                // The same datagram with a broken CRC.
                let mut bad = d.clone();
                let at = rng.gen_range(0..bad.len());
                bad[at] ^= 0x10;
                out.push((addr, d));
                out.push((addr, bad));
            }
        }
        // Random bytes of random lengths.
        for _ in 0..40 {
            let len = rng.gen_range(0..1500);
            let mut d = vec![0u8; len];
            rng.fill(&mut d[..]);
            out.push((addr, d));
        }
    }
    out
}

#[test]
fn flood_of_junk_while_views_change() {
    let dir = std::env::temp_dir().join(format!("sgmp-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("cluster.key");
    let keys = Keyring::new([0x5c; 32], None);
    std::fs::write(&key, keys.to_key_file()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let (mut socks, addrs) = bound(4);
    let d_sock = socks.pop().unwrap();
    let seeds = &addrs[..3];
    let nodes: Vec<NodeHandle> = ["a", "b", "c"]
        .iter()
        .zip(seeds)
        .zip(socks)
        .map(|((n, a), s)| Node::start_on(config(n, *a, seeds, &key), s).unwrap())
        .collect();
    let subs: Vec<_> = nodes.iter().map(|n| n.subscribe()).collect();
    wait_for("one view of three", Duration::from_secs(10), || {
        nodes.iter().all(|n| n.view().len() == 3)
    });
    let rss_before = rss();

    // The flood: ~20k datagrams a second, from one socket, until told to stop.
    let mut targets: Vec<(ProcessId, SocketAddr)> = nodes
        .iter()
        .map(|n| (n.status().me, n.local_addr()))
        .collect();
    targets.push((ProcessId::named("d", 1), addrs[3]));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let datagrams = junk(&targets, &mut rng);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flood = {
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    let (to, d) = &datagrams[i % datagrams.len()];
                    i += 1;
                    if sock.send_to(d, to).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));

    // c leaves gracefully; then d joins.
    nodes[2].leave(Duration::from_secs(3)).unwrap();
    assert_eq!(nodes[2].status().phase, NodePhase::Left);
    wait_for("a and b only", Duration::from_secs(10), || {
        nodes[..2].iter().all(|n| names(&n.view()) == ["a", "b"])
    });
    let d = Node::start_on(config("d", addrs[3], seeds, &key), d_sock).unwrap();
    wait_for("a, b and d", Duration::from_secs(15), || {
        nodes[..2]
            .iter()
            .chain([&d])
            .all(|n| names(&n.view()) == ["a", "b", "d"])
    });
    // At least a second more, and until the flood reached its size: on a loaded
    // machine the flooding thread gets less of a core and its sleeps run long.
    std::thread::sleep(Duration::from_secs(1));
    wait_for(
        "the flood's 20 000 datagrams",
        Duration::from_secs(30),
        || sent.load(Ordering::Relaxed) > 20_000,
    );
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let rss_after = rss();

    // One membership per version, across every node that installed it.
    let mut by_version: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for s in &subs {
        while let Some(ev) = s.try_recv() {
            if let NodeEvent::ViewInstalled { view, .. } = ev {
                let m = names(&view);
                let prev = by_version.entry(view.version).or_insert_with(|| m.clone());
                assert_eq!(*prev, m, "two memberships for version {}", view.version);
            }
        }
    }
    let last = by_version.values().last().cloned().unwrap_or_default();
    assert_eq!(last, ["a", "b", "d"], "{by_version:?}");
    assert!(
        by_version.values().any(|m| m == &["a", "b"]),
        "{by_version:?}"
    );
    // No node was excluded by the flood: still the first incarnations.
    for n in nodes[..2].iter().chain([&d]) {
        let s = n.status();
        assert_eq!(s.phase, NodePhase::Member);
        assert_eq!(s.rejoins, 0, "{} rejoined", s.me);
    }

    // The junk was dropped and counted, and no made-up process got anywhere.
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent > 20_000, "flood too small: {sent}");
    let mut dropped = 0;
    for n in &nodes[..2] {
        std::thread::sleep(Duration::from_millis(30));
        let m = n.metrics();
        let t = m.transport;
        assert!(t.dropped(DropReason::Unauthenticated) > 0, "{t:?}");
        assert!(t.dropped(DropReason::BadTag) > 0, "{t:?}");
        assert!(t.dropped(DropReason::Checksum) > 0, "{t:?}");
        dropped += t.total_drops();
        // Nothing forged reached the engine: no join request from a made-up name.
        assert!(n
            .view()
            .members
            .iter()
            .all(|m| !m.id.node.as_str().starts_with("fake")));
        assert!(m.engine.joins_refused < 5, "{:?}", m.engine);
    }
    assert!(dropped > sent / 10, "dropped {dropped} of {sent}");
    // Memory: bounded (the nodes preallocate; the junk must not make anything grow).
    let growth = rss_after.saturating_sub(rss_before);
    assert!(
        growth < 64 << 20,
        "RSS grew by {} MiB under the flood",
        growth >> 20
    );
    for n in nodes.iter().chain([&d]) {
        n.shutdown();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
