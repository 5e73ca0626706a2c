//! The membership service (docs/SERVICE.md): a small core runs S-GMP, and the core's
//! updates also carry client changes, so the core's view sequence is a sequence of
//! *system views* (core + clients) that every core member and client sees in the
//! same order, with the version of the core view.
//!
//! - [`sysview`]: the system view and how a delta (the update of one version) applies;
//! - [`wire`]: the client protocol (hellos, delta/snapshot chunks, promotion) over
//!   transport probes;
//! - [`server`]: the core member's side ([`CoreService`]), run by the node runtime;
//! - [`client`]: the client endpoint's side ([`ClientCore`]), hosting one or many
//!   clients;
//! - [`runtime`]: a thread driving a [`ClientCore`] over a UDP socket
//!   ([`ClientNode`]), for `sgmpd --client`, embedding and the load generator.

pub mod client;
pub mod runtime;
pub mod server;
pub mod sysview;
pub mod wire;

pub use client::{ClientCore, ClientEvent, ClientState, ClientStats};
pub use runtime::{ClientConfig, ClientHandle, ClientNode};
pub use server::{CoreService, ServiceConfig, ServiceStats};
pub use sysview::{watcher_of, ClientEntry, SystemChange, SystemView};

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::net::SocketAddr;

    use super::*;
    use crate::config::EngineConfig;
    use crate::engine::Event;
    use crate::testkit::Cluster;
    use crate::view::ClientOp;
    use crate::ProcessId;

    /// A core of engines with their services, and client endpoints, on an ideal
    /// in-memory network (probes delivered in order, none lost).
    struct World {
        c: Cluster,
        svc: Vec<CoreService>,
        seen: Vec<usize>,
        clients: Vec<ClientCore>,
        net: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
        ops: Vec<ClientOp>,
    }

    fn client_addr(k: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 2], 30_000 + k as u16))
    }

    impl World {
        fn new(core: usize, endpoints: usize) -> World {
            let cfg = EngineConfig {
                max_client_ops: 64,
                max_pending_client_ops: 4096,
                ..EngineConfig::default()
            };
            let mut c = Cluster::new(core, 0, cfg);
            c.run_until_quiet(100_000);
            let scfg = ServiceConfig {
                client_heartbeat_us: 100_000,
                client_timeout_us: 500_000,
                ..ServiceConfig::default()
            };
            let mut svc: Vec<CoreService> = (0..core)
                .map(|i| CoreService::new(scfg.clone(), c.engines[i].me().id))
                .collect();
            for (i, s) in svc.iter_mut().enumerate() {
                let v = c.engines[i].view();
                s.on_founded(v.version, &v.members);
            }
            let seeds = vec![c.engines[0].me().addr];
            let clients = (0..endpoints)
                .map(|k| ClientCore::new(client_addr(k), seeds.clone(), 100_000))
                .collect();
            World {
                seen: vec![c.events[0].len(); core],
                c,
                svc,
                clients,
                net: VecDeque::new(),
                ops: Vec::new(),
            }
        }

        fn step(&mut self, us: u64) {
            let end = self.c.now + us;
            while self.c.now < end {
                self.c.advance(10_000, 10_000);
                let now = self.c.now;
                for i in 0..self.svc.len() {
                    if !self.c.up[i] {
                        continue;
                    }
                    // Views installed since the last look.
                    while self.seen[i] < self.c.events[i].len() {
                        let ev = self.c.events[i][self.seen[i]];
                        self.seen[i] += 1;
                        if let Event::ViewInstalled { version, .. } = ev {
                            self.svc[i].on_view_installed(now, version, &self.c.engines[i]);
                        }
                    }
                    self.svc[i].on_timeout(now, &self.c.engines[i]);
                    self.svc[i].take_ops(&mut self.ops);
                    if !self.ops.is_empty() {
                        self.c.engines[i].request_client_ops(now, &self.ops);
                        self.c.flush(i);
                    }
                    let from = self.c.engines[i].me().addr;
                    while let Some((to, b)) = self.svc[i].poll_datagram() {
                        self.net.push_back((from, to, b));
                    }
                }
                for (k, cl) in self.clients.iter_mut().enumerate() {
                    cl.on_timeout(now);
                    while let Some((to, b)) = cl.poll_datagram() {
                        self.net.push_back((client_addr(k), to, b));
                    }
                }
                while let Some((from, to, b)) = self.net.pop_front() {
                    if let Some(i) = self.c.engine_at(to) {
                        if self.c.up[i] {
                            self.svc[i].on_datagram(now, from, &b, &self.c.engines[i]);
                            let from = self.c.engines[i].me().addr;
                            while let Some((to, b)) = self.svc[i].poll_datagram() {
                                self.net.push_back((from, to, b));
                            }
                        }
                    } else if let Some(k) = (0..self.clients.len()).find(|k| client_addr(*k) == to)
                    {
                        self.clients[k].on_datagram(now, from, &b);
                        while let Some((to, b)) = self.clients[k].poll_datagram() {
                            self.net.push_back((client_addr(k), to, b));
                        }
                    }
                }
            }
        }

        fn all_sizes(&self) -> Vec<(u64, usize)> {
            let mut v: Vec<(u64, usize)> = (0..self.svc.len())
                .filter(|i| self.c.up[*i])
                .map(|i| (self.svc[i].view().version, self.svc[i].view().size()))
                .collect();
            v.extend(
                self.clients
                    .iter()
                    .map(|c| (c.view().version, c.view().size())),
            );
            v
        }
    }

    /// Each client is timed by its watcher only, and by the new watcher after a core
    /// change; nobody silent-free is removed while the timers run for several
    /// timeouts.
    #[test]
    fn only_the_watcher_times_a_client() {
        let mut w = World::new(3, 8);
        for (k, cl) in w.clients.iter_mut().enumerate() {
            for j in 0..20 {
                cl.add_client(ProcessId::named(&format!("c{k}-{j}"), 1), false);
            }
        }
        w.step(1_500_000);
        let check = |w: &World, live: &[usize]| {
            let core = &w.svc[live[0]].view().core;
            let mut timed = 0;
            for i in live {
                let me = w.c.engines[*i].me().id;
                for p in w.svc[*i].watched() {
                    let k: usize = p.node.as_str()[1..]
                        .split('-')
                        .next()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert_eq!(watcher_of(client_addr(k), core).unwrap().id, me, "{p}");
                    timed += 1;
                }
            }
            timed
        };
        assert_eq!(check(&w, &[0, 1, 2]), 160);
        // Several client timeouts: heartbeats keep every timer fresh.
        let v = w.svc[0].view().version;
        w.step(2_000_000);
        assert_eq!(
            w.svc[0].view().version,
            v,
            "no change while all are healthy"
        );
        // A core member crashes: its endpoints move to the others, timed there.
        w.c.crash(2);
        w.step(3_000_000);
        let sizes = w.all_sizes();
        assert!(
            sizes.iter().all(|s| *s == sizes[0] && s.1 == 2 + 160),
            "{sizes:?}"
        );
        assert_eq!(check(&w, &[0, 1]), 160);
    }

    #[test]
    fn clients_register_fail_and_every_replica_agrees() {
        let mut w = World::new(3, 4);
        for (k, cl) in w.clients.iter_mut().enumerate() {
            for j in 0..50 {
                cl.add_client(ProcessId::named(&format!("c{k}-{j}"), 1), false);
            }
        }
        w.step(2_000_000);
        let sizes = w.all_sizes();
        assert!(
            sizes.iter().all(|s| *s == sizes[0] && s.1 == 3 + 200),
            "{sizes:?}"
        );
        // Every client endpoint saw the same sequence of versions, each exactly once.
        let mut seqs = Vec::new();
        for cl in &mut w.clients {
            let mut seq = Vec::new();
            while let Some(ev) = cl.poll_event() {
                if let ClientEvent::SystemView(ch) = ev {
                    seq.push((ch.version, ch.size));
                }
            }
            assert!(seq.windows(2).all(|p| p[0].0 < p[1].0));
            seqs.push(seq);
        }
        // Crash 10 clients at once, in different endpoints.
        let victims: Vec<ProcessId> = (0..10)
            .map(|j| ProcessId::named(&format!("c{}-{j}", j % 4), 1))
            .collect();
        for v in &victims {
            let k = v.node.as_str()[1..2].parse::<usize>().unwrap();
            w.clients[k].crash_client(*v);
        }
        let before = w.svc[0].view().version;
        w.step(2_000_000);
        let sizes = w.all_sizes();
        assert!(
            sizes.iter().all(|s| *s == sizes[0] && s.1 == 3 + 190),
            "{sizes:?}"
        );
        let after = w.svc[0].view().version;
        assert!(after - before <= 2, "removed in {} views", after - before);
        for v in &victims {
            assert!(!w.svc[1].view().contains(*v));
        }
        // The watcher of a client endpoint crashes: the client switches without
        // losing or repeating a version.
        let watched = watcher_of(client_addr(0), &w.svc[0].view().core)
            .unwrap()
            .id;
        let i = (0..3).find(|i| w.c.engines[*i].me().id == watched).unwrap();
        w.c.crash(i);
        w.step(4_000_000);
        let sizes = w.all_sizes();
        assert!(
            sizes.iter().all(|s| *s == sizes[0] && s.1 == 2 + 190),
            "{sizes:?}"
        );
        // A client deregisters: removed everywhere, and it knows.
        let bye = ProcessId::named("c1-20", 1);
        w.clients[1].deregister(bye);
        w.step(1_000_000);
        assert_eq!(w.clients[1].client_state(bye), Some(ClientState::Removed));
        let sizes = w.all_sizes();
        assert!(
            sizes.iter().all(|s| *s == sizes[0] && s.1 == 2 + 189),
            "{sizes:?}"
        );
        let mut last = 0;
        while let Some(ev) = w.clients[0].poll_event() {
            if let ClientEvent::SystemView(ch) = ev {
                assert!(ch.version > last);
                last = ch.version;
            }
        }
        assert_eq!(last, sizes[0].0);
    }
}
