//! One simulated node: the real engine over the real transport core, and the glue
//! between them (the same glue a production driver needs).
//!
//! - engine transmits → `Endpoint::send` (on `WindowFull` the message waits in a
//!   per-destination FIFO backlog and is retried on every pump; nothing is dropped
//!   silently: refusals are counted);
//! - endpoint deliveries → `Engine::handle_message`;
//! - engine `Suspected{peer}` → `Endpoint::disconnect(peer)` (Disconnect);
//! - transport `PeerUnreachable(p)` → `Engine::suspect(now, p)`;
//! - every datagram the endpoint accepts → `Engine::peer_alive` for its sender (D20);
//! - endpoint datagrams → the simulated network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sgmp_membership::msg::MsgKind;
use sgmp_membership::{
    Engine, EngineConfig, Event, ExcludeReason, Member, ProcessId, Status, Time,
};
use sgmp_transport::{Endpoint, SendError, TransportConfig, TransportEvent};

use super::checker::{History, Install, Suspicion};
use super::net::Net;
use super::trace::Trace;

/// The address of node `i`.
pub fn addr_of(i: usize) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 20_000 + i as u16)
}

/// The node index of an address.
pub fn index_of(addr: SocketAddr) -> Option<usize> {
    addr.port().checked_sub(20_000).map(|p| p as usize)
}

/// The member record of node `i` at incarnation `inc`.
pub fn member_of(i: usize, inc: u64) -> Member {
    Member {
        id: ProcessId::named(&format!("n{i}"), inc),
        addr: addr_of(i),
    }
}

/// A message waiting for room in the send window.
#[derive(Debug)]
struct Pending {
    to: ProcessId,
    addr: SocketAddr,
    bytes: Vec<u8>,
}

/// A crash armed by [`Action::CrashDuring`](super::Action::CrashDuring).
#[derive(Clone, Copy, Debug)]
pub struct CrashTrigger {
    /// The kind that arms it (`None`: any message).
    pub kind: Option<MsgKind>,
    /// Datagrams let out after arming.
    pub after: u32,
    /// Armed.
    pub armed: bool,
}

/// Counters of the glue, summed into the run report.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlueStats {
    /// Engine messages handed to the transport.
    pub messages: u64,
    /// Messages that waited in the backlog (`WindowFull`).
    pub backlogged: u64,
    /// Messages refused because the destination is disconnected or an old incarnation
    /// (the engine believes it faulty: intended).
    pub refused: u64,
    /// Messages refused for another reason (too large, peer table full): a bug.
    pub errors: u64,
    /// Messages delivered to the engine.
    pub delivered: u64,
    /// Messages the engine failed to decode: a bug.
    pub decode_errors: u64,
    /// Largest backlog seen.
    pub max_backlog: usize,
}

/// Everything a node needs from the world while it is pumped.
pub struct Ctx<'a> {
    /// Current time.
    pub now: Time,
    /// Current step.
    pub step: u64,
    /// The network.
    pub net: &'a mut Net,
    /// The history the checks read.
    pub history: &'a mut History,
    /// The trace.
    pub trace: &'a mut Trace,
}

/// One node. See the [module docs](self).
pub struct Node {
    /// Node index.
    pub index: usize,
    /// The process it runs now.
    pub member: Member,
    /// The S-GMP engine.
    pub engine: Engine,
    /// The transport endpoint.
    pub endpoint: Endpoint,
    /// False once crashed (until restarted).
    pub up: bool,
    /// Ever started.
    pub started: bool,
    /// A pending mid-multicast crash.
    pub crash: Option<CrashTrigger>,
    /// While joining: when the driver gives up and restarts as a new incarnation.
    pub join_deadline: Option<Time>,
    /// Paused (like SIGSTOP) until this time: nothing runs, datagrams wait in `inbox`.
    pub paused_until: Option<Time>,
    /// Datagrams that arrived while paused (the socket buffer): `(from, bytes)`.
    pub inbox: Vec<(SocketAddr, Vec<u8>)>,
    backlog: Vec<Pending>,
    buf: Vec<u8>,
    dgram: Vec<u8>,
    /// Glue counters.
    pub stats: GlueStats,
}

impl Node {
    /// A node (not started) running process `member`.
    pub fn new(index: usize, member: Member, ecfg: &EngineConfig, tcfg: &TransportConfig) -> Node {
        Node {
            index,
            member,
            engine: Engine::new(ecfg.clone(), member),
            endpoint: Endpoint::new(*tcfg, member.id),
            up: false,
            started: false,
            crash: None,
            join_deadline: None,
            paused_until: None,
            inbox: Vec::new(),
            backlog: Vec::new(),
            buf: vec![0u8; tcfg.max_message],
            dgram: vec![0u8; tcfg.mtu.max(TransportConfig::MIN_MTU)],
            stats: GlueStats::default(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> ProcessId {
        self.member.id
    }

    /// True if up and a member.
    pub fn is_live_member(&self) -> bool {
        self.up && self.engine.status() == Status::Member
    }

    /// Next time the node has work: the engine's or the endpoint's deadline.
    pub fn deadline(&self) -> Option<Time> {
        if !self.up {
            return None;
        }
        if self.paused_until.is_some() {
            return self.paused_until;
        }
        let d = sgmp_membership::earliest(self.engine.poll_timeout(), self.endpoint.poll_timeout());
        sgmp_membership::earliest(d, self.join_watchdog())
    }

    /// When the join watchdog fires, if the node is still joining.
    pub fn join_watchdog(&self) -> Option<Time> {
        if self.up && self.paused_until.is_none() && self.engine.status() == Status::Joining {
            self.join_deadline
        } else {
            None
        }
    }

    /// Crashes the node: nothing more goes out or comes in.
    pub fn crash_now(&mut self, ctx: &mut Ctx<'_>) {
        if self.up {
            self.up = false;
            self.crash = None;
            self.backlog.clear();
            self.paused_until = None;
            self.inbox.clear();
            let pid = self.pid();
            ctx.trace.line(ctx.now, || format!("CRASH {pid}"));
        }
    }

    /// Feeds one datagram from the network.
    pub fn on_datagram(&mut self, ctx: &mut Ctx<'_>, from: SocketAddr, bytes: &[u8]) {
        self.endpoint.handle_datagram(ctx.now, from, bytes);
        // Transport signs of life (D20), as in the node runtime.
        for (peer, at) in self.endpoint.heard_since(ctx.now) {
            self.engine.peer_alive(at, peer);
        }
        self.pump(ctx);
    }

    /// Runs due timers of the engine and the endpoint.
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if self.engine.poll_timeout().is_some_and(|t| t <= ctx.now) {
            self.engine.handle_timeout(ctx.now);
        }
        if self.endpoint.poll_timeout().is_some_and(|t| t <= ctx.now) {
            self.endpoint.handle_timeout(ctx.now);
        }
        self.pump(ctx);
    }

    /// Moves everything between engine, endpoint and network until nothing moves.
    pub fn pump(&mut self, ctx: &mut Ctx<'_>) {
        while self.up {
            let mut moved = self.flush_backlog(ctx.now);
            moved |= self.engine_outputs(ctx);
            if !self.up {
                return;
            }
            moved |= self.endpoint_outputs(ctx);
            if !moved {
                return;
            }
        }
    }

    fn flush_backlog(&mut self, now: Time) -> bool {
        if self.backlog.is_empty() {
            return false;
        }
        let mut moved = false;
        let mut blocked: Vec<ProcessId> = Vec::new();
        let mut i = 0;
        while i < self.backlog.len() {
            let p = &self.backlog[i];
            if blocked.contains(&p.to) {
                i += 1;
                continue;
            }
            match self.endpoint.send(now, p.to, p.addr, &p.bytes) {
                Ok(()) => {
                    self.stats.messages += 1;
                    self.backlog.remove(i);
                    moved = true;
                }
                Err(SendError::WindowFull) => {
                    blocked.push(p.to);
                    i += 1;
                }
                Err(SendError::Disconnected(_)) | Err(SendError::StaleIncarnation { .. }) => {
                    self.stats.refused += 1;
                    self.backlog.remove(i);
                }
                Err(_) => {
                    self.stats.errors += 1;
                    self.backlog.remove(i);
                }
            }
        }
        moved
    }

    fn engine_outputs(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let mut moved = false;
        let now = ctx.now;
        while let Some(t) = self.engine.poll_transmit() {
            moved = true;
            let kind = t.payload.get(1).and_then(|b| MsgKind::from_u8(*b));
            if let Some(c) = &mut self.crash {
                if !c.armed && (c.kind.is_none() || c.kind == kind) {
                    c.armed = true;
                    let (me, after) = (self.member.id, c.after);
                    ctx.trace.line(now, || {
                        format!(
                            "ARMED {me}: crash after {after} more datagrams ({})",
                            kind.map_or("?", |k| k.name())
                        )
                    });
                    if after == 0 {
                        // Nothing of this output leaves; what the engine did before
                        // (e.g. installing the view it is about to multicast) stands.
                        while self.engine.poll_transmit().is_some() {}
                        while let Some(e) = self.engine.poll_event() {
                            self.on_engine_event(ctx, e);
                        }
                        self.crash_now(ctx);
                        return true;
                    }
                }
            }
            if ctx.trace.enabled() {
                let d = ctx.trace.describe(t.payload);
                let (me, to) = (self.member.id, t.to);
                ctx.trace.line(now, || format!("send {me} -> {to} {d}"));
            }
            if self.backlog.iter().any(|p| p.to == t.to) {
                self.stats.backlogged += 1;
                self.backlog.push(Pending {
                    to: t.to,
                    addr: t.addr,
                    bytes: t.payload.to_vec(),
                });
                continue;
            }
            match self.endpoint.send(now, t.to, t.addr, t.payload) {
                Ok(()) => self.stats.messages += 1,
                Err(SendError::WindowFull) => {
                    self.stats.backlogged += 1;
                    self.backlog.push(Pending {
                        to: t.to,
                        addr: t.addr,
                        bytes: t.payload.to_vec(),
                    });
                }
                Err(SendError::Disconnected(_)) | Err(SendError::StaleIncarnation { .. }) => {
                    self.stats.refused += 1
                }
                Err(_) => self.stats.errors += 1,
            }
        }
        self.stats.max_backlog = self.stats.max_backlog.max(self.backlog.len());
        while let Some(e) = self.engine.poll_event() {
            moved = true;
            self.on_engine_event(ctx, e);
        }
        moved
    }

    fn on_engine_event(&mut self, ctx: &mut Ctx<'_>, e: Event) {
        let me = self.member.id;
        if let Event::Excluded { reason } = e {
            // Checker hook (issue 17): exclusions are in the history.
            ctx.history.exclusions.push(super::checker::Exclusion {
                step: ctx.step,
                pid: me,
                reason,
            });
        }
        match e {
            Event::ViewInstalled { version, .. } => {
                let members: Vec<ProcessId> =
                    self.engine.view().members.iter().map(|m| m.id).collect();
                if ctx.trace.enabled() {
                    let s: Vec<String> = members.iter().map(|p| p.to_string()).collect();
                    ctx.trace.line(ctx.now, || {
                        format!("VIEW {me} v{version} [{}]", s.join(" "))
                    });
                }
                ctx.history.installs.push(Install {
                    step: ctx.step,
                    time: ctx.now,
                    node: self.index,
                    pid: me,
                    version,
                    members,
                });
            }
            Event::Suspected { peer } => {
                ctx.trace
                    .line(ctx.now, || format!("SUSPECT {me} believes {peer} faulty"));
                ctx.history.suspicions.push(Suspicion {
                    step: ctx.step,
                    by: me,
                    peer,
                });
                self.endpoint.disconnect(peer);
                self.backlog.retain(|p| p.to != peer);
            }
            Event::Excluded { reason } if reason != ExcludeReason::Left => {
                ctx.trace.line(ctx.now, || format!("EVENT {me} {e:?}"));
                // Out for good: close the channels, so that its acknowledgements and
                // keepalives stop vouching for it (D20), as the node runtime does.
                let ids: Vec<ProcessId> = self.engine.view().members.iter().map(|m| m.id).collect();
                for p in ids.into_iter().filter(|&p| p != me) {
                    self.endpoint.disconnect(p);
                }
                self.backlog.clear();
            }
            other => ctx.trace.line(ctx.now, || format!("EVENT {me} {other:?}")),
        }
    }

    fn endpoint_outputs(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let mut moved = false;
        let now = ctx.now;
        while let Some((from, n)) = self.endpoint.poll_delivery(&mut self.buf) {
            moved = true;
            self.stats.delivered += 1;
            if ctx.trace.enabled() {
                let d = ctx.trace.describe(&self.buf[..n]);
                let me = self.member.id;
                ctx.trace.line(now, || format!("recv {from} -> {me} {d}"));
            }
            if self
                .engine
                .handle_message(now, from, &self.buf[..n])
                .is_err()
            {
                self.stats.decode_errors += 1;
            }
            // Let the engine's reaction out before the next delivery.
            self.engine_outputs(ctx);
            if !self.up {
                return true;
            }
        }
        while let Some(TransportEvent::PeerUnreachable(p)) = self.endpoint.poll_event() {
            moved = true;
            let me = self.member.id;
            ctx.trace
                .line(now, || format!("UNREACHABLE {me}: transport reports {p}"));
            self.engine.suspect(now, p);
        }
        while let Some(t) = self.endpoint.poll_transmit(now, &mut self.dgram) {
            moved = true;
            ctx.net
                .send(now, addr_of(self.index), t.dst, &self.dgram[..t.len]);
            if let Some(c) = &mut self.crash {
                if c.armed {
                    c.after = c.after.saturating_sub(1);
                    if c.after == 0 {
                        self.crash_now(ctx);
                        return true;
                    }
                }
            }
        }
        moved
    }
}
