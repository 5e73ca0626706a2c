//! Bodies of the fuzz targets, shared by the cargo-fuzz project (`tests/fuzz/`, nightly)
//! and by their proptest equivalents on stable (`tests/tests/fuzz_equivalents.rs`).
//!
//! Each function takes arbitrary bytes and panics only if it finds a bug: a panic in
//! the code under test, or a violated invariant (an `assert!` here).
//!
//! - [`transport_datagram`]: the transport's datagram decoder (`wire::decode`) and a
//!   whole [`Endpoint`] fed the datagram.
//! - [`membership_msg`]: the membership message decoder (`msg::decode`), and the
//!   re-encoding of every message it accepts, which must give back the same bytes.
//! - [`engine_sequence`]: a cluster of engines driven by a sequence of steps read from
//!   the bytes: deliveries, timeouts, suspicions, crashes, a join, a leave, and forged
//!   messages (mutated, duplicated or arbitrary).

use std::collections::VecDeque;
use std::net::SocketAddr;

use sgmp_membership::engine::Status;
use sgmp_membership::msg::{self, Msg, MsgKind, Writer};
use sgmp_membership::testkit::member_of;
use sgmp_membership::view::ClientOp;
use sgmp_membership::{Engine, EngineConfig, Event, Member, ProcessId, Time};
use sgmp_transport::wire::{self, Body, Header, Kind};
use sgmp_transport::{Endpoint, TransportConfig};

// ----- transport ---------------------------------------------------------------------

/// The receiving endpoint's process id in [`transport_datagram`].
pub fn transport_receiver() -> ProcessId {
    ProcessId::named("b", 1)
}

/// The transport configuration of [`transport_datagram`] (small windows and tables).
pub fn transport_config() -> TransportConfig {
    TransportConfig {
        mtu: 512,
        max_message: 2048,
        max_peers: 4,
        send_window: 8,
        recv_window: 8,
        ..TransportConfig::default()
    }
}

/// Fuzz target `transport_datagram`. The first byte selects how the rest is used: if
/// its low bit is set, a correct CRC32 is appended (so that the fuzzer reaches past
/// the checksum), else the bytes are a datagram as they are. The datagram is decoded,
/// then fed to an endpoint (twice, as a duplicate would be), and the endpoint is
/// drained: deliveries, transmissions, events and timers.
pub fn transport_datagram(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut d = rest.to_vec();
    if mode & 1 == 1 {
        let crc = crc32fast::hash(&d);
        d.extend_from_slice(&crc.to_be_bytes());
    }
    let cfg = transport_config().normalized();
    let cap = cfg.frame_capacity();
    if let Ok(dg) = wire::decode(&d, cap) {
        assert_eq!(
            dg.header.encoded_len(),
            wire::FIXED_HEADER_LEN + dg.header.sender.node.as_bytes().len()
        );
        if let Body::Data(frames) = dg.body {
            let n = frames.len();
            assert!(n > 0, "a data datagram has frames");
            let mut seen = 0;
            for f in frames {
                assert!(f.payload.len() <= cap);
                seen += 1;
            }
            assert_eq!(seen, n, "every validated frame iterates");
        }
        if let Body::Probe(p) = dg.body {
            assert!(p.len() <= wire::MAX_PROBE_PAYLOAD);
        }
    }
    let mut ep = Endpoint::new(cfg, transport_receiver());
    let from: SocketAddr = "10.0.0.1:7000"
        .parse()
        .unwrap_or(SocketAddr::from(([0; 4], 0)));
    let mut now = Time(1_000_000);
    // Open a channel from our side too, so acks in the datagram have something to ack.
    let _ = ep.send(now, ProcessId::named("a", 1), from, b"hello");
    let mut buf = vec![0u8; cfg.max_message.max(cfg.mtu)];
    for round in 0..3 {
        if round < 2 {
            ep.handle_datagram(now, from, &d);
        }
        let mut k = 0;
        while let Some((_, len)) = ep.poll_delivery(&mut buf) {
            assert!(len <= buf.len());
            k += 1;
            assert!(k <= 4096, "deliveries must end");
        }
        let mut k = 0;
        while let Some(t) = ep.poll_transmit(now, &mut buf[..cfg.mtu]) {
            assert!(t.len <= cfg.mtu);
            assert!(
                wire::decode(&buf[..t.len], cap).is_ok(),
                "we emit valid datagrams"
            );
            k += 1;
            assert!(k <= 4096, "transmissions must end");
        }
        while ep.poll_event().is_some() {}
        now = now + 300_000;
        ep.handle_timeout(now);
    }
}

/// A valid datagram from `a#1` to `b#1` of each kind (data carrying `payload`, ack,
/// keepalive, probe), each prefixed with the mode byte of [`transport_datagram`]
/// (0: used as is). Seeds for the corpus.
pub fn sample_datagrams(payload: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for kind in [Kind::Data, Kind::Ack, Kind::Keepalive] {
        let h = Header {
            kind,
            cluster_id: 0,
            sender: ProcessId::named("a", 1),
            receiver_incarnation: 1,
            ack: 0,
            sack_offset: 0,
            sack: 0,
        };
        let mut buf = vec![0u8; 512];
        let Some(mut w) = wire::Writer::new(&mut buf, &h) else {
            continue;
        };
        if kind == Kind::Data {
            w.push_frame(0, true, &payload[..payload.len().min(w.frame_room())]);
        }
        let len = w.finish(7);
        let mut d = vec![0u8];
        d.extend_from_slice(&buf[..len]);
        out.push(d);
    }
    let mut buf = vec![0u8; 512];
    if let Some(len) = wire::encode_probe(&mut buf, 0, ProcessId::named("a", 1), b"probe") {
        let mut d = vec![0u8];
        d.extend_from_slice(&buf[..len]);
        out.push(d);
    }
    out
}

// ----- membership messages -----------------------------------------------------------

/// Member-list limit used by [`membership_msg`].
pub const MSG_MAX_MEMBERS: usize = 8;
/// Snapshot limit used by [`membership_msg`].
pub const MSG_MAX_SNAPSHOT: usize = 64;
/// Client-change limit used by [`membership_msg`].
pub const MSG_MAX_CLIENT_OPS: usize = 8;
/// Member-tag limit (encoded bytes per member) used by [`membership_msg`].
pub const MSG_MAX_TAG_BYTES: usize = 64;

/// Encodes a decoded message again with the engine's [`Writer`].
pub fn encode_msg(m: &Msg, buf: &mut Vec<u8>) {
    let mut w = Writer::start(buf, m.kind, m.sender_version, &m.gossip);
    match m.kind {
        MsgKind::MSub | MsgKind::RSub => {
            w.u64(m.version);
            w.update(&m.update);
        }
        MsgKind::MSubAck | MsgKind::RSubAck => w.u64(m.version),
        MsgKind::MCom | MsgKind::RCom => {
            w.u64(m.version);
            w.update(&m.update);
            w.flag(m.has_next);
            if m.has_next {
                w.update(&m.next);
            }
        }
        MsgKind::StateXfer => {
            w.u64(m.version);
            w.update(&m.update);
            w.members(&m.members);
            w.tag_table(&m.view_tags);
            w.bytes(&m.snapshot);
        }
        MsgKind::StateXferAck | MsgKind::RInt | MsgKind::RIntResp => {
            if m.kind == MsgKind::StateXferAck {
                w.u64(m.version);
            }
            let s = &m.state;
            w.state(s.ver, s.has_next.then_some(&s.next), &s.last);
        }
        MsgKind::JoinReq => {
            w.member(&m.joiner);
            w.tags(&m.tags);
        }
        MsgKind::TagReq => w.tags(&m.tags),
        MsgKind::ClientOps => w.client_ops(&m.client_ops),
        MsgKind::LeaveReq | MsgKind::Heartbeat => {}
    }
}

/// Fuzz target `membership_msg`: decodes the bytes; a message that decodes must encode
/// back to exactly the same bytes (the format is canonical), and decoding must never
/// grow the preallocated buffers.
pub fn membership_msg(data: &[u8]) {
    let mut m = Msg::with_tag_limits(
        MSG_MAX_MEMBERS,
        MSG_MAX_CLIENT_OPS,
        MSG_MAX_TAG_BYTES,
        MSG_MAX_SNAPSHOT,
    );
    let caps = (
        m.gossip.capacity(),
        m.members.capacity(),
        m.snapshot.capacity(),
    );
    if msg::decode(data, MSG_MAX_MEMBERS, MSG_MAX_SNAPSHOT, &mut m).is_ok() {
        let mut again = Vec::new();
        encode_msg(&m, &mut again);
        assert_eq!(again, data, "decode then encode must give the same bytes");
    }
    assert_eq!(
        caps,
        (
            m.gossip.capacity(),
            m.members.capacity(),
            m.snapshot.capacity()
        ),
        "decode must not reallocate"
    );
}

/// Every message an engine sends in a short scenario (bootstrap, removal, join with
/// State-Xfer, reconfiguration, leave), one of each kind at least. Seeds for corpora.
pub fn sample_messages() -> Vec<Vec<u8>> {
    let mut h = Harness::new();
    let script: &[Step] = &[
        Step::Join,
        Step::DeliverAll,
        Step::Crash(0),
        Step::Suspect(1, 0),
        Step::Suspect(2, 0),
        Step::DeliverAll,
        Step::Leave(3),
        Step::DeliverAll,
    ];
    let mut out: Vec<Vec<u8>> = Vec::new();
    for s in script {
        h.run(*s, &mut |bytes| {
            if !out.iter().any(|o| o[..2] == bytes[..2]) {
                out.push(bytes.to_vec());
            }
        });
    }
    out
}

// ----- a cluster of engines ----------------------------------------------------------

/// Founders in [`engine_sequence`]'s cluster (process 3 is a joiner).
pub const FOUNDERS: usize = 3;
const PROCS: usize = FOUNDERS + 1;

/// Configuration of the engines in [`engine_sequence`].
pub fn engine_config() -> EngineConfig {
    EngineConfig {
        max_members: PROCS,
        max_snapshot: 16,
        max_pending_joins: 2,
        max_client_ops: 2,
        max_pending_client_ops: 8,
        ..EngineConfig::default()
    }
}

/// One step of [`Harness`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Deliver the oldest message of the first non-empty link at or after this index.
    Deliver(usize),
    /// Deliver everything in flight (bounded).
    DeliverAll,
    /// Process i's clock jumps to its next deadline; its timers fire.
    Timeout(usize),
    /// Process i suspects process j.
    Suspect(usize, usize),
    /// Process i crashes.
    Crash(usize),
    /// The joiner asks to join.
    Join,
    /// Process i leaves gracefully.
    Leave(usize),
    /// Deliver the oldest message of a link with byte `at` xor-ed with `x` (forged).
    Mutate {
        /// Link index (as for Deliver).
        link: usize,
        /// Byte position (modulo the length).
        at: usize,
        /// Xor mask (non-zero).
        x: u8,
    },
    /// Deliver a copy of the oldest message of a link, keeping it queued (forged).
    Duplicate(usize),
    /// Deliver the newest message of a link first (out of FIFO order: forged).
    Reorder(usize),
    /// Process i asks for a client change (the membership service): client `k % 4`
    /// added, or removed when `k & 4`.
    ClientOps(usize, usize),
}

/// A cluster of engines with per-link FIFO queues, Disconnect and crashes, checking the
/// S-GMP invariants after every step.
pub struct Harness {
    engines: Vec<Engine>,
    ids: Vec<Member>,
    now: Vec<Time>,
    up: Vec<bool>,
    links: Vec<VecDeque<Vec<u8>>>,
    disconnected: Vec<bool>,
    last: Vec<Option<u64>>,
    members: Vec<Vec<ProcessId>>,
    installed: Vec<(u64, u64)>,
    removed_at: Vec<Option<u64>>,
    excluded: Vec<bool>,
    /// A forged, duplicated or reordered message was delivered: global agreement is
    /// no longer promised (the paper assumes authenticated FIFO channels), only the
    /// local invariants and the absence of panics.
    pub tainted: bool,
    /// Steps run.
    pub steps: u64,
}

impl Harness {
    /// The highest version any process installed (1: the founders' view only).
    pub fn highest_installed(&self) -> u64 {
        self.installed.iter().map(|(v, _)| *v).max().unwrap_or(0)
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

impl Harness {
    /// Three founders (version 1) and an idle joiner.
    pub fn new() -> Harness {
        let ids: Vec<Member> = (0..PROCS).map(|i| member_of(i, 1)).collect();
        let mut h = Harness {
            engines: ids
                .iter()
                .map(|m| Engine::new(engine_config(), *m))
                .collect(),
            now: vec![Time(1_000_000_000); PROCS],
            up: vec![true; PROCS],
            links: vec![VecDeque::new(); PROCS * PROCS],
            disconnected: vec![false; PROCS * PROCS],
            last: vec![None; PROCS],
            members: vec![Vec::new(); PROCS],
            installed: Vec::new(),
            removed_at: vec![None; PROCS],
            excluded: vec![false; PROCS],
            tainted: false,
            steps: 0,
            ids,
        };
        let founders = h.ids[..FOUNDERS].to_vec();
        for i in 0..FOUNDERS {
            let now = h.now[i];
            h.engines[i].bootstrap(now, &founders);
            h.flush(i, &mut |_| {});
        }
        h
    }

    fn index_of(&self, id: ProcessId) -> Option<usize> {
        self.ids.iter().position(|m| m.id == id)
    }

    /// Moves engine i's messages onto the links and checks its events.
    fn flush(&mut self, i: usize, sink: &mut dyn FnMut(&[u8])) {
        while let Some(t) = self.engines[i].poll_transmit() {
            sink(t.payload);
            let Some(to) = self.ids.iter().position(|m| m.id == t.to) else {
                continue;
            };
            if self.up[to] && !self.disconnected[i * PROCS + to] && to != i {
                self.links[i * PROCS + to].push_back(t.payload.to_vec());
            }
        }
        while let Some(ev) = self.engines[i].poll_event() {
            match ev {
                Event::Suspected { peer, .. } => {
                    if let Some(j) = self.index_of(peer) {
                        self.disconnected[i * PROCS + j] = true;
                        self.links[j * PROCS + i].clear();
                    }
                }
                Event::ViewInstalled {
                    version, digest, ..
                } => self.on_install(i, version, digest),
                Event::Excluded { .. } => self.excluded[i] = true,
                _ => {}
            }
        }
    }

    fn on_install(&mut self, i: usize, version: u64, digest: u64) {
        assert!(
            !self.excluded[i],
            "n{i} installed v{version} after its exclusion"
        );
        if let Some(l) = self.last[i] {
            assert_eq!(version, l + 1, "n{i}: versions must be contiguous");
        }
        let members: Vec<ProcessId> = self.engines[i]
            .view()
            .members
            .iter()
            .map(|m| m.id)
            .collect();
        // The client changes of a version are part of its value: fold them into the
        // digest compared across processes.
        let digest = match self.engines[i].committed_update(version) {
            Some(u) => u.clients.iter().fold(digest, |h, op| {
                let k =
                    op.id.incarnation ^ (op.kind as u64) << 32 ^ op.id.node.as_bytes().len() as u64;
                h.rotate_left(7) ^ k ^ op.id.node.as_bytes().iter().map(|b| *b as u64).sum::<u64>()
            }),
            None => digest,
        };
        if !self.tainted {
            match self.installed.iter().find(|(v, _)| *v == version) {
                Some((_, d)) => assert_eq!(*d, digest, "two views of version {version}"),
                None => self.installed.push((version, digest)),
            }
            if let Some(r) = self.removed_at[i] {
                assert!(version < r, "n{i} installed v{version}, removed at v{r}");
            }
            if self.last[i].is_some() {
                for p in self.members[i].clone() {
                    if !members.contains(&p) {
                        if let Some(j) = self.index_of(p) {
                            let r = self.removed_at[j].map_or(version, |x| x.min(version));
                            self.removed_at[j] = Some(r);
                            assert!(
                                self.last[j].is_none_or(|l| l < r),
                                "n{j} installed a view after its removal at v{r}"
                            );
                        }
                    }
                }
            }
        }
        self.last[i] = Some(version);
        self.members[i] = members;
    }

    fn link_from(&self, k: usize) -> Option<usize> {
        (0..PROCS * PROCS)
            .map(|d| (k + d) % (PROCS * PROCS))
            .find(|&l| !self.links[l].is_empty() && self.up[l % PROCS])
    }

    fn deliver(&mut self, l: usize, bytes: &[u8], sink: &mut dyn FnMut(&[u8])) {
        let (from, to) = (l / PROCS, l % PROCS);
        if !self.up[to] || self.disconnected[to * PROCS + from] {
            return;
        }
        let now = self.now[to];
        let _ = self.engines[to].handle_message(now, self.ids[from].id, bytes);
        self.flush(to, sink);
    }

    /// Runs one step; `sink` sees every message sent.
    pub fn run(&mut self, step: Step, sink: &mut dyn FnMut(&[u8])) {
        self.steps += 1;
        match step {
            Step::Deliver(k) => {
                if let Some(l) = self.link_from(k) {
                    if let Some(m) = self.links[l].pop_front() {
                        self.deliver(l, &m, sink);
                    }
                }
            }
            Step::DeliverAll => {
                for _ in 0..10_000 {
                    let Some(l) = self.link_from(0) else { break };
                    if let Some(m) = self.links[l].pop_front() {
                        self.deliver(l, &m, sink);
                    }
                }
            }
            Step::Timeout(i) => {
                let i = i % PROCS;
                if self.up[i] {
                    if let Some(t) = self.engines[i].poll_timeout() {
                        self.now[i] = self.now[i].max(t);
                    }
                    self.engines[i].handle_timeout(self.now[i]);
                    self.flush(i, sink);
                }
            }
            Step::Suspect(i, j) => {
                let (i, j) = (i % PROCS, j % PROCS);
                if self.up[i] {
                    let id = self.ids[j].id;
                    self.engines[i].suspect(self.now[i], id);
                    self.flush(i, sink);
                }
            }
            Step::Crash(i) => {
                let i = i % PROCS;
                self.up[i] = false;
                for from in 0..PROCS {
                    self.links[from * PROCS + i].clear();
                }
            }
            Step::Join => {
                let j = FOUNDERS;
                if self.up[j] {
                    let contacts: Vec<Member> =
                        self.ids[..FOUNDERS].iter().rev().copied().collect();
                    self.engines[j].join(self.now[j], &contacts);
                    self.flush(j, sink);
                }
            }
            Step::Leave(i) => {
                let i = i % PROCS;
                if self.up[i] {
                    self.engines[i].leave(self.now[i]);
                    self.flush(i, sink);
                }
            }
            Step::Mutate { link, at, x } => {
                if let Some(l) = self.link_from(link) {
                    if let Some(mut m) = self.links[l].pop_front() {
                        if !m.is_empty() && x != 0 {
                            let n = m.len();
                            m[at % n] ^= x;
                            self.tainted = true;
                        }
                        self.deliver(l, &m, sink);
                    }
                }
            }
            Step::Duplicate(k) => {
                if let Some(l) = self.link_from(k) {
                    if let Some(m) = self.links[l].front().cloned() {
                        self.tainted = true;
                        self.deliver(l, &m, sink);
                    }
                }
            }
            Step::ClientOps(i, k) => {
                let i = i % PROCS;
                if self.up[i] {
                    let id = ProcessId::named(&format!("client{}", k % 4), 1);
                    let op = if k & 4 == 0 {
                        ClientOp::add(id, self.ids[i].addr, false)
                    } else {
                        ClientOp::remove(id)
                    };
                    self.engines[i].request_client_ops(self.now[i], &[op]);
                    self.flush(i, sink);
                }
            }
            Step::Reorder(k) => {
                if let Some(l) = self.link_from(k) {
                    if let Some(m) = self.links[l].pop_back() {
                        if !self.links[l].is_empty() {
                            self.tainted = true;
                        }
                        self.deliver(l, &m, sink);
                    }
                }
            }
        }
        self.check_status();
    }

    /// Delivers a forged message (arbitrary bytes) from `from` to `to`.
    pub fn forge(&mut self, from: usize, to: usize, bytes: &[u8]) {
        self.tainted = true;
        let (from, to) = (from % PROCS, to % PROCS);
        self.deliver(from * PROCS + to, bytes, &mut |_| {});
        self.check_status();
    }

    fn check_status(&self) {
        for i in 0..PROCS {
            let st = self.engines[i].status();
            if self.excluded[i] {
                assert!(
                    matches!(st, Status::Excluded(_)),
                    "n{i}: exclusion is for good"
                );
            }
            if st == Status::Member {
                assert!(
                    self.engines[i].view().contains(self.ids[i].id),
                    "n{i} is a member of a view that does not hold it"
                );
            }
        }
    }

    /// The engines (for assertions).
    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }
}

/// Reads steps from bytes: one op byte, then its arguments.
pub fn parse_steps(data: &[u8], mut f: impl FnMut(Result<Step, (usize, usize, &[u8])>)) {
    let mut i = 0;
    let next = |i: &mut usize| {
        let b = data.get(*i).copied();
        *i += 1;
        b
    };
    while let Some(op) = next(&mut i) {
        let a = next(&mut i).unwrap_or(0) as usize;
        let step = match op % 12 {
            0..=3 => Step::Deliver(a),
            4 => Step::Timeout(a),
            5 => Step::Suspect(a, next(&mut i).unwrap_or(0) as usize),
            6 => Step::Crash(a),
            7 => Step::Join,
            8 => Step::Leave(a),
            9 => Step::Mutate {
                link: a,
                at: next(&mut i).unwrap_or(0) as usize,
                x: next(&mut i).unwrap_or(1),
            },
            10 => match a % 3 {
                0 => Step::Duplicate(a / 3),
                1 => Step::Reorder(a / 3),
                _ => Step::ClientOps(a / 3, next(&mut i).unwrap_or(0) as usize),
            },
            _ => {
                // Arbitrary bytes from `a` to `to`: a length, then the message.
                let to = next(&mut i).unwrap_or(0) as usize;
                let len = next(&mut i).unwrap_or(0) as usize % 96;
                let start = i.min(data.len());
                let end = (start + len).min(data.len());
                i = end;
                f(Err((a, to, &data[start..end])));
                continue;
            }
        };
        f(Ok(step));
    }
}

/// Fuzz target `engine_sequence`: a [`Harness`] run on the steps read from `data` by
/// [`parse_steps`]. Panics if an engine panics or an invariant breaks: contiguous
/// versions, exclusion for good, members belong to their views, and (while no forged
/// message was delivered) one view per version and removed processes never install a
/// later view. Returns the harness for further checks.
pub fn engine_sequence(data: &[u8]) -> Harness {
    let mut h = Harness::new();
    parse_steps(data, |s| match s {
        Ok(step) => h.run(step, &mut |_| {}),
        Err((from, to, bytes)) => h.forge(from, to, bytes),
    });
    h
}

/// [`engine_sequence`] for debug builds, where the engine's `debug_assert!`s are live:
/// any panic propagates. (Bug F1 in docs/VERIFICATION.md: two invariant checks on the
/// contents of received messages used to be `debug_assert!`s that a forged message
/// could trip; they are now counted anomalies handled safely.) Returns false.
pub fn engine_sequence_debug(data: &[u8]) -> bool {
    let _ = engine_sequence(data);
    false
}

// ----- node payloads ---------------------------------------------------------------------

/// The founded member (membership service on) that [`node_payloads`] feeds.
const PAYLOAD_NODE: &str = "id = \"p0\"\nlisten = \"127.0.0.1:7300\"\nmax_members = 8\n\
    max_clients = 64\nmax_client_ops = 16\nsend_window = 8\nrecv_window = 8\n";

/// Splits a [`node_payloads`] input into its payloads: each a little-endian `u16`
/// length, then that many bytes (the last one takes what is left).
pub fn split_payloads(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 && out.len() < 16 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let n = n.min(body.len());
        out.push(&body[..n]);
        rest = &body[n..];
    }
    out
}

/// Joins payloads as [`split_payloads`] reads them.
pub fn join_payloads(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(&(p.len() as u16).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Fuzz target `node_payloads`: what reaches a node core beside the engine's
/// messages. Each payload ([`split_payloads`]) goes through every decoder of it —
/// discovery probes, recovery messages, the membership service's wire, encoded tags,
/// the durable state file (as it is, and with a correct checksum line appended so that
/// the JSON behind it is reached) — and then, as the payload of a well-formed probe
/// datagram from an unknown process (twice, as a duplicate would be), to a founded
/// member with the membership service on, whose outputs and timers are then run.
/// Nothing may panic; a node core's reaction to a forged probe is its own business
/// (without cluster keys anyone may send one).
pub fn node_payloads(data: &[u8]) {
    use sgmp_membership::node::recovery::RecoveryMsg;
    use sgmp_membership::node::{Durable, NodeConfig, NodeCore, Probe};
    use sgmp_membership::service::wire as service_wire;
    use sgmp_membership::tags::TagSet;

    let parts = split_payloads(data);
    for p in &parts {
        let _ = Probe::decode(p);
        let _ = RecoveryMsg::decode(p);
        let _ = service_wire::decode(p);
        let _ = TagSet::decode(p);
        if let Ok(text) = std::str::from_utf8(p) {
            let _ = Durable::from_file_text(text);
            let crc = crc32fast::hash(text.as_bytes());
            let _ = Durable::from_file_text(&format!("{text}\ncrc32 {crc:08x}\n"));
        }
    }
    let cfg = NodeConfig::from_toml_str(PAYLOAD_NODE).expect("the fuzz node's config");
    let addr = cfg.listen;
    let me = ProcessId::named("p0", 1);
    let mut core_cfg = cfg.core_config(addr, cfg.keyring().expect("no keys"));
    // Sized for a service of 100,000 clients by default (12 MB zeroed per input).
    core_cfg.transport.probe_queue = 64;
    let mut core = NodeCore::new(core_cfg, me, addr);
    let mut now = Time::from_millis(1_000);
    core.found_with(now, &[Member { id: me, addr }]);
    let sender_addr = SocketAddr::from(([127, 0, 0, 1], 7399));
    // Only probes leave it: the smallest tables.
    let sender_cfg = TransportConfig {
        max_peers: 1,
        probe_queue: 4,
        ..cfg.transport_config()
    };
    let mut sender = Endpoint::new(sender_cfg, ProcessId::named("x", 7));
    let mut buf = vec![0u8; 65_536];
    let drain = |core: &mut NodeCore, now: Time, buf: &mut [u8]| {
        let mut n = 0;
        while core.poll_transmit(now, buf).is_some() && n < 10_000 {
            n += 1;
        }
        while core.poll_event().is_some() {}
    };
    drain(&mut core, now, &mut buf);
    for p in &parts {
        if sender.send_probe(now, addr, p).is_err() {
            continue;
        }
        while let Some(t) = sender.poll_transmit(now, &mut buf) {
            let d = buf[..t.len].to_vec();
            core.handle_datagram(now, sender_addr, &d);
            core.handle_datagram(now, sender_addr, &d);
        }
        drain(&mut core, now, &mut buf);
        now = now + 50_000;
        core.handle_timeout(now);
        drain(&mut core, now, &mut buf);
    }
    now = now + 5_000_000;
    core.handle_timeout(now);
    drain(&mut core, now, &mut buf);
}

/// Valid payloads of every kind [`node_payloads`] decodes (seeds for its corpus), each
/// joined as one input of its own.
pub fn sample_payloads() -> Vec<(String, Vec<u8>)> {
    use sgmp_membership::node::recovery::RecoveryMsg;
    use sgmp_membership::node::{Ballot, Durable, Probe};
    use sgmp_membership::service::wire::{self as service_wire, HelloEntry};
    use sgmp_membership::tags::TagSet;
    use sgmp_membership::view::View;

    let m = |name: &str, port: u16| Member {
        id: ProcessId::named(name, 1),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut one = |name: &str, bytes: Vec<u8>| out.push((name.to_string(), bytes));
    let probes = [
        ("probe-query", Probe::Query { cold: true }),
        (
            "probe-member",
            Probe::Member {
                version: 3,
                contacts: vec![m("p0", 7300), m("p1", 7301)],
            },
        ),
        ("probe-cold", Probe::ColdStarting { round: 2 }),
        ("probe-recovering", Probe::Recovering { version: 9 }),
    ];
    for (name, p) in probes {
        let mut b = Vec::new();
        p.encode(&mut b);
        one(name, b);
    }
    let mut view = View::with_capacity(4);
    view.version = 4;
    view.members.push(m("p0", 7300));
    view.members.push(m("p1", 7301));
    let recs = [
        (
            "recovery-state",
            RecoveryMsg::State {
                view: view.clone(),
                accepted: None,
            },
        ),
        (
            "recovery-prepare",
            RecoveryMsg::Prepare {
                version: 5,
                ballot: Ballot {
                    class: 2,
                    round: 1,
                    rank: 0,
                },
            },
        ),
        (
            "recovery-accept",
            RecoveryMsg::Accept {
                version: 5,
                ballot: Ballot {
                    class: 2,
                    round: 1,
                    rank: 0,
                },
                view: view.clone(),
            },
        ),
    ];
    for (name, r) in recs {
        let mut b = Vec::new();
        r.encode(SocketAddr::from(([127, 0, 0, 1], 7301)), &mut b);
        one(name, b);
    }
    let entries = [
        HelloEntry {
            id: ProcessId::named("c1", 1),
            member: false,
            core_eligible: false,
            leaving: false,
        },
        HelloEntry {
            id: ProcessId::named("c2", 1),
            member: true,
            core_eligible: true,
            leaving: false,
        },
    ];
    let mut hello = Vec::new();
    service_wire::encode_hello(&mut hello, true, 0, &entries);
    one("service-hello", hello);
    let mut promote = Vec::new();
    service_wire::encode_promote(&mut promote, ProcessId::named("c2", 1), &[m("p0", 7300)]);
    one("service-promote", promote);
    let mut tags = TagSet::new();
    tags.insert("role", "db").expect("a valid tag");
    one("tags", tags.encode());
    let text = Durable::fresh("p0", 1).to_file_text();
    let body = text
        .trim_end()
        .rsplit_once('\n')
        .map_or(text.as_str(), |(b, _)| b);
    one("durable-body", body.as_bytes().to_vec());
    out.into_iter()
        .map(|(n, b)| (n, join_payloads(&[b])))
        .collect()
}
