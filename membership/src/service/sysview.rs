//! The system view: the core members plus the registered clients, at a version that is
//! the core's view version. Core members and clients build it the same way: by
//! applying, in version order, the update that formed each view (a *delta*), starting
//! from a snapshot (which is itself a delta from the empty view).

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::view::{ClientOpKind, Member, Update};
use crate::{NodeId, ProcessId};

/// A registered client as the system view records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientEntry {
    /// Its incarnation (the key of the table is its node name).
    pub incarnation: u64,
    /// Where it listens (several clients may share an address).
    pub addr: SocketAddr,
    /// May be promoted into the core.
    pub core_eligible: bool,
}

/// What one applied delta changed, as a set difference of process ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SystemChange {
    /// The version reached.
    pub version: u64,
    /// Processes that became members of the system view (core or client).
    pub added: Vec<ProcessId>,
    /// Processes that stopped being members of the system view.
    pub removed: Vec<ProcessId>,
    /// Members after the change (core + clients).
    pub size: usize,
}

impl SystemChange {
    pub(crate) fn clear(&mut self) {
        self.added.clear();
        self.removed.clear();
    }

    /// Becomes a copy of `src`, reusing its own lists' capacity (a derived
    /// `clone_from` allocates new lists).
    pub(crate) fn copy_from(&mut self, src: &SystemChange) {
        self.version = src.version;
        self.size = src.size;
        self.added.clear();
        self.added.extend_from_slice(&src.added);
        self.removed.clear();
        self.removed.extend_from_slice(&src.removed);
    }
}

/// A replica of the system view. Apply the same deltas in the same order and two
/// replicas are equal (checked with [`SystemView::digest`]).
#[derive(Clone, Debug, Default)]
pub struct SystemView {
    /// The version (equal to the core view version that formed it); 0 when empty.
    pub version: u64,
    /// The core members, most senior first (as in the core view).
    pub core: Vec<Member>,
    /// Registered clients, by node name (one incarnation per name).
    pub clients: HashMap<NodeId, ClientEntry>,
    /// Clients per address (the service sends one delta per address).
    pub addrs: HashMap<SocketAddr, u32>,
}

impl SystemView {
    /// An empty view (version 0) with room for `max_clients` clients.
    pub fn with_capacity(max_clients: usize) -> SystemView {
        SystemView {
            version: 0,
            core: Vec::with_capacity(64),
            clients: HashMap::with_capacity(max_clients),
            addrs: HashMap::with_capacity(64),
        }
    }

    /// Members in all: core plus clients.
    pub fn size(&self) -> usize {
        self.core.len() + self.clients.len()
    }

    /// Empties it (version 0).
    pub fn clear(&mut self) {
        self.version = 0;
        self.core.clear();
        self.clients.clear();
        self.addrs.clear();
    }

    /// True if `p` is a member of the system view (core or client, this incarnation).
    pub fn contains(&self, p: ProcessId) -> bool {
        self.core.iter().any(|m| m.id == p) || self.is_client(p)
    }

    /// True if `p` is a registered client (this incarnation).
    pub fn is_client(&self, p: ProcessId) -> bool {
        self.clients
            .get(&p.node)
            .is_some_and(|c| c.incarnation == p.incarnation)
    }

    /// Applies the update that formed `version`: core removes, core adds (a client
    /// promoted into the core leaves the client table), then the client changes in
    /// order. A client add for a name already registered with an equal or newer
    /// incarnation, or for a core member's name, changes nothing; one with a newer
    /// incarnation replaces the older (which was a crash and restart). A client remove
    /// of a process that is not registered changes nothing. Deterministic: every
    /// replica given the same sequence ends equal.
    pub fn apply(&mut self, u: &Update, version: u64, change: &mut SystemChange) {
        change.clear();
        for r in &u.removes {
            if let Some(i) = self.core.iter().position(|m| m.id == *r) {
                self.core.remove(i);
                change.removed.push(*r);
            }
        }
        for a in &u.adds {
            if self.core.iter().any(|m| m.id == a.id) {
                continue;
            }
            let was_client = self.is_client(a.id);
            if let Some(old) = self.remove_client(a.id.node) {
                if old.incarnation != a.id.incarnation {
                    change
                        .removed
                        .push(ProcessId::new(a.id.node, old.incarnation));
                }
            }
            self.core.push(*a);
            if !was_client {
                change.added.push(a.id);
            }
        }
        for op in &u.clients {
            match op.kind {
                ClientOpKind::Add => {
                    if self.core.iter().any(|m| m.id.node == op.id.node) {
                        continue;
                    }
                    match self.clients.get(&op.id.node) {
                        Some(c) if c.incarnation >= op.id.incarnation => continue,
                        Some(c) => {
                            change
                                .removed
                                .push(ProcessId::new(op.id.node, c.incarnation));
                            self.remove_client(op.id.node);
                        }
                        None => {}
                    }
                    self.clients.insert(
                        op.id.node,
                        ClientEntry {
                            incarnation: op.id.incarnation,
                            addr: op.addr,
                            core_eligible: op.core_eligible,
                        },
                    );
                    *self.addrs.entry(op.addr).or_insert(0) += 1;
                    change.added.push(op.id);
                }
                ClientOpKind::Remove => {
                    if self.is_client(op.id) {
                        self.remove_client(op.id.node);
                        change.removed.push(op.id);
                    }
                }
            }
        }
        self.version = version;
        change.version = version;
        change.size = self.size();
    }

    fn remove_client(&mut self, node: NodeId) -> Option<ClientEntry> {
        let c = self.clients.remove(&node)?;
        if let Some(n) = self.addrs.get_mut(&c.addr) {
            *n -= 1;
            if *n == 0 {
                self.addrs.remove(&c.addr);
            }
        }
        Some(c)
    }

    /// The whole view as a delta from the empty view: core members as adds, clients
    /// as client adds (sorted by name, so that equal views give equal snapshots).
    pub fn to_snapshot(&self, out: &mut Update) {
        out.clear();
        out.adds.extend_from_slice(&self.core);
        let mut names: Vec<&NodeId> = self.clients.keys().collect();
        names.sort();
        for n in names {
            let c = self.clients[n];
            out.clients.push(crate::view::ClientOp::add(
                ProcessId::new(*n, c.incarnation),
                c.addr,
                c.core_eligible,
            ));
        }
    }

    /// Replaces the view by a snapshot of `version` (see [`SystemView::to_snapshot`]).
    pub fn load_snapshot(&mut self, snap: &Update, version: u64, change: &mut SystemChange) {
        self.clear();
        self.apply(snap, version, change);
    }

    /// A 64-bit digest of version, core and clients (order-independent for clients),
    /// for cheap comparison of replicas.
    pub fn digest(&self) -> u64 {
        let mut h = fnv(0xcbf2_9ce4_8422_2325, &self.version.to_le_bytes());
        for m in &self.core {
            h = fnv(h, m.id.node.as_bytes());
            h = fnv(h, &m.id.incarnation.to_le_bytes());
        }
        let mut x = 0u64;
        for (n, c) in &self.clients {
            let e = fnv(
                fnv(0xcbf2_9ce4_8422_2325, n.as_bytes()),
                &c.incarnation.to_le_bytes(),
            );
            x = x.wrapping_add(e);
        }
        fnv(h, &x.to_le_bytes())
    }
}

/// FNV-1a over `bytes`, continuing from `h`.
pub(crate) fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The core member that watches the clients at `addr` (receives their heartbeats and
/// sends them the deltas): rendezvous hashing over the core, so every core member and
/// client computes the same one, and a core change moves only the clients of the
/// members that left.
pub fn watcher_of(addr: SocketAddr, core: &[Member]) -> Option<&Member> {
    let a = addr_hash(addr);
    core.iter().max_by_key(|m| {
        let h = fnv(a, m.id.node.as_bytes());
        fnv(h, &m.id.incarnation.to_le_bytes())
    })
}

fn addr_hash(addr: SocketAddr) -> u64 {
    let h = match addr.ip() {
        std::net::IpAddr::V4(ip) => fnv(0xcbf2_9ce4_8422_2325, &ip.octets()),
        std::net::IpAddr::V6(ip) => fnv(0xcbf2_9ce4_8422_2325, &ip.octets()),
    };
    fnv(h, &addr.port().to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::ClientOp;

    fn pid(n: &str, i: u64) -> ProcessId {
        ProcessId::named(n, i)
    }
    fn member(n: &str, port: u16) -> Member {
        Member {
            id: pid(n, 1),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn deltas_and_snapshots_agree() {
        let mut a = SystemView::with_capacity(16);
        let mut ch = SystemChange::default();
        let mut u = Update::with_limits(8, 8);
        u.adds.extend([member("a", 1), member("b", 2)]);
        u.clients.push(ClientOp::add(pid("c1", 1), addr(9), false));
        u.clients.push(ClientOp::add(pid("c2", 1), addr(9), true));
        a.apply(&u, 1, &mut ch);
        assert_eq!(ch.added.len(), 4);
        assert_eq!(a.size(), 4);
        assert_eq!(a.addrs[&addr(9)], 2);

        u.clear();
        u.removes.push(pid("a", 1));
        u.clients.push(ClientOp::remove(pid("c1", 1)));
        u.clients.push(ClientOp::add(pid("c2", 2), addr(10), false)); // restart
        u.clients.push(ClientOp::add(pid("c3", 1), addr(10), false));
        u.clients.push(ClientOp::add(pid("c3", 1), addr(10), false)); // repeat: no-op
        u.clients.push(ClientOp::remove(pid("zz", 1))); // unknown: no-op
        a.apply(&u, 2, &mut ch);
        assert_eq!(ch.removed, [pid("a", 1), pid("c1", 1), pid("c2", 1)]);
        assert_eq!(ch.added, [pid("c2", 2), pid("c3", 1)]);
        assert_eq!(ch.size, 3);
        assert!(!a.addrs.contains_key(&addr(9)));

        // Promotion: a core add of a client's name takes it out of the client table.
        u.clear();
        u.adds.push(Member {
            id: pid("c3", 1),
            addr: addr(11),
        });
        a.apply(&u, 3, &mut ch);
        assert!(ch.added.is_empty() && ch.removed.is_empty());
        assert_eq!(a.core.len(), 2);
        assert_eq!(a.clients.len(), 1);

        let mut snap = Update::with_limits(8, 8);
        a.to_snapshot(&mut snap);
        let mut b = SystemView::with_capacity(16);
        b.load_snapshot(&snap, 3, &mut ch);
        assert_eq!(a.digest(), b.digest());
        assert_eq!(ch.size, 3);
    }

    #[test]
    fn watcher_moves_only_clients_of_departed_members() {
        let core: Vec<Member> = (0..5).map(|i| member(&format!("n{i}"), i)).collect();
        let before: Vec<_> = (0..200)
            .map(|p| watcher_of(addr(1000 + p), &core).unwrap().id)
            .collect();
        let survivors: Vec<Member> = core[1..].to_vec();
        let mut moved = 0;
        for (p, w) in before.iter().enumerate() {
            let now = watcher_of(addr(1000 + p as u16), &survivors).unwrap().id;
            if *w != core[0].id {
                assert_eq!(now, *w);
            } else {
                moved += 1;
            }
        }
        assert!(moved > 10 && moved < 80, "about a fifth move: {moved}");
    }
}
