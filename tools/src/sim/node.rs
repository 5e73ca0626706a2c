//! One simulated node: the production [`NodeCore`] (the engine, the transport endpoint,
//! discovery, the send backlog, rejoin and the cross-layer links, exactly as `sgmpd`
//! runs them) on simulated time and the simulated network. This file keeps no glue of
//! its own between engine and endpoint: it feeds the core datagrams and timeouts, hands
//! the core's datagrams to the network, records the core's events in the history, and
//! implements the simulator's own faults (crash, crash mid-multicast, pause).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use sgmp_membership::msg::MsgKind;
use sgmp_membership::node::{CoreConfig, CoreEvent, MemStorage, NodeCore, TapRecord};
use sgmp_membership::{Engine, Member, ProcessId, Status, Time};

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

/// Counters of a node, summed into the run report (from the core's own counters).
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
    /// Messages lost because the send backlog was full: a bug (a reliable channel
    /// lost a message).
    pub backlog_overflow: u64,
    /// Largest backlog seen.
    pub max_backlog: usize,
    /// New incarnations after an exclusion (the core's auto-rejoin).
    pub rejoins_after_exclusion: u64,
    /// New incarnations after a join timed out (the core's join watchdog).
    pub rejoins_after_join_timeout: u64,
}

/// Everything a node needs from the world while it is pumped.
pub struct Ctx<'a> {
    /// Current time.
    pub now: Time,
    /// Current step (each recorded event takes one).
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
    /// The node core: the code `sgmpd` runs.
    pub core: NodeCore,
    /// False once crashed (until restarted).
    pub up: bool,
    /// Ever started.
    pub started: bool,
    /// A pending mid-multicast crash.
    pub crash: Option<CrashTrigger>,
    /// Paused (like SIGSTOP) until this time: nothing runs, datagrams wait in `inbox`.
    pub paused_until: Option<Time>,
    /// Datagrams that arrived while paused (the socket buffer): `(from, bytes)`.
    pub inbox: Vec<(SocketAddr, Vec<u8>)>,
    dgram: Vec<u8>,
    tap: Vec<TapRecord>,
    rejoins: (u64, u64),
}

impl Node {
    /// A node (not started) running process `id` at [`addr_of`]`(index)`, with the
    /// durable state on `disk` (the node's simulated disk, which outlives its
    /// processes). A state there raises the incarnation above the stored one.
    pub fn new(
        index: usize,
        id: ProcessId,
        cfg: &CoreConfig,
        trace: bool,
        disk: &MemStorage,
    ) -> Node {
        let mut core = NodeCore::new(cfg.clone(), id, addr_of(index))
            .with_durable(disk.load(), Some(Box::new(disk.clone())));
        core.set_tap(Some(trace));
        Node {
            index,
            dgram: vec![
                0u8;
                cfg.transport
                    .mtu
                    .max(sgmp_transport::TransportConfig::MIN_MTU)
            ],
            core,
            up: false,
            started: false,
            crash: None,
            paused_until: None,
            inbox: Vec::new(),
            tap: Vec::new(),
            rejoins: (0, 0),
        }
    }

    /// The process id (the core's current incarnation).
    pub fn pid(&self) -> ProcessId {
        self.core.me()
    }

    /// The engine of the current incarnation.
    pub fn engine(&self) -> &Engine {
        self.core.engine()
    }

    /// True if up and a member.
    pub fn is_live_member(&self) -> bool {
        self.up && self.core.engine().status() == Status::Member
    }

    /// The node's counters.
    pub fn stats(&self) -> GlueStats {
        let c = self.core.stats();
        GlueStats {
            messages: c.messages,
            backlogged: c.backlogged,
            refused: c.send_refused,
            errors: c.send_errors,
            delivered: c.delivered,
            decode_errors: c.decode_errors,
            backlog_overflow: c.backlog_overflow,
            max_backlog: c.max_backlog as usize,
            rejoins_after_exclusion: self.rejoins.0,
            rejoins_after_join_timeout: self.rejoins.1,
        }
    }

    /// Next time the node has work: the core's deadline, or the end of a pause.
    pub fn deadline(&self) -> Option<Time> {
        if !self.up {
            return None;
        }
        if self.paused_until.is_some() {
            return self.paused_until;
        }
        self.core.poll_timeout()
    }

    /// Crashes the node: nothing more goes out or comes in.
    pub fn crash_now(&mut self, ctx: &mut Ctx<'_>) {
        if self.up {
            self.up = false;
            self.crash = None;
            self.paused_until = None;
            self.inbox.clear();
            let pid = self.pid();
            ctx.trace.line(ctx.now, || format!("CRASH {pid}"));
        }
    }

    /// Starts the node: discovery through its seeds (it joins, or founds if allowed).
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.up = true;
        self.started = true;
        self.core.start(ctx.now);
        self.after(ctx);
    }

    /// Starts the node as one of `founders` (every founder does the same at t = 0).
    pub fn found_with(&mut self, ctx: &mut Ctx<'_>, founders: &[Member]) {
        self.up = true;
        self.started = true;
        self.core.found_with(ctx.now, founders);
        self.after(ctx);
    }

    /// An outside suspicion of `peer`.
    pub fn suspect(&mut self, ctx: &mut Ctx<'_>, peer: ProcessId) {
        self.core.suspect(ctx.now, peer);
        self.after(ctx);
    }

    /// A graceful leave.
    pub fn leave(&mut self, ctx: &mut Ctx<'_>) {
        self.core.leave(ctx.now);
        self.after(ctx);
    }

    /// Feeds one datagram from the network.
    pub fn on_datagram(&mut self, ctx: &mut Ctx<'_>, from: SocketAddr, bytes: &[u8]) {
        self.core.handle_datagram(ctx.now, from, bytes);
        self.after(ctx);
    }

    /// Runs due timers of the core.
    pub fn on_timeout(&mut self, ctx: &mut Ctx<'_>) {
        if self.core.poll_timeout().is_some_and(|t| t <= ctx.now) {
            self.core.handle_timeout(ctx.now);
        }
        self.after(ctx);
    }

    /// After any input: the tap (trace, crash triggers), the core's events (history),
    /// the tap again (what the bookkeeping the event poll finishes sent: a rejoin's
    /// request after an exclusion, a recovery's messages), then its datagrams onto the
    /// network.
    fn after(&mut self, ctx: &mut Ctx<'_>) {
        if !self.up {
            return;
        }
        let now = ctx.now;
        let mut crash_before_send = self.read_tap(ctx);
        while let Some((me, ev)) = self.core.poll_event() {
            self.on_core_event(ctx, me, ev);
        }
        crash_before_send |= self.read_tap(ctx);
        if crash_before_send {
            self.crash_now(ctx);
            return;
        }
        while let Some(t) = self.core.poll_transmit(now, &mut self.dgram) {
            ctx.net
                .send(now, addr_of(self.index), t.dst, &self.dgram[..t.len]);
            if let Some(c) = &mut self.crash {
                if c.armed {
                    c.after = c.after.saturating_sub(1);
                    if c.after == 0 {
                        self.crash_now(ctx);
                        return;
                    }
                }
            }
        }
    }

    /// The tap's records since the last read: trace lines, and the crash trigger armed
    /// by the first datagram of its kind (`true`: crash before this step's datagrams).
    fn read_tap(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let now = ctx.now;
        let mut crash_before_send = false;
        self.core.take_tap(&mut self.tap);
        for r in self.tap.drain(..) {
            if ctx.trace.enabled() {
                let d = ctx.trace.describe(&r.bytes);
                let me = self.core.me();
                let peer = r.peer;
                if r.sent {
                    ctx.trace.line(now, || format!("send {me} -> {peer} {d}"));
                } else {
                    ctx.trace.line(now, || format!("recv {peer} -> {me} {d}"));
                }
            }
            if !r.sent {
                continue;
            }
            if let Some(c) = &mut self.crash {
                if !c.armed && (c.kind.is_none() || c.kind == r.kind) {
                    c.armed = true;
                    let (me, after) = (self.core.me(), c.after);
                    let kind = r.kind;
                    ctx.trace.line(now, || {
                        format!(
                            "ARMED {me}: crash after {after} more datagrams ({})",
                            kind.map_or("?", |k| k.name())
                        )
                    });
                    // Nothing of this step's output leaves; what the engine did before
                    // (e.g. installing the view it is about to multicast) stands.
                    crash_before_send |= after == 0;
                }
            }
        }
        crash_before_send
    }

    fn on_core_event(&mut self, ctx: &mut Ctx<'_>, me: ProcessId, ev: CoreEvent) {
        // Events of one input are ordered: a suspicion the core reports before a view
        // comes before it in the history.
        ctx.step += 1;
        match ev {
            CoreEvent::ViewInstalled { version } => {
                // The core keeps its last few views; the current one otherwise.
                let view = self
                    .core
                    .installed_view(version)
                    .unwrap_or_else(|| self.core.engine().view());
                let members: Vec<ProcessId> = view.members.iter().map(|m| m.id).collect();
                if ctx.trace.enabled() {
                    let s: Vec<String> = members.iter().map(|p| p.to_string()).collect();
                    ctx.trace.line(ctx.now, || {
                        format!("VIEW {me} v{version} [{}]", s.join(" "))
                    });
                }
                ctx.history.installs.push(Install {
                    step: ctx.step,
                    input: ctx.history.inputs,
                    time: ctx.now,
                    node: self.index,
                    pid: me,
                    version,
                    members,
                });
            }
            CoreEvent::Suspected { peer, cause } => {
                ctx.trace
                    .line(ctx.now, || format!("SUSPECT {me} believes {peer} faulty"));
                ctx.history.suspicions.push(Suspicion {
                    step: ctx.step,
                    input: ctx.history.inputs,
                    by: me,
                    peer,
                    root: cause.is_root(),
                });
            }
            CoreEvent::Rejoining {
                old,
                new,
                join_timeout,
            } => {
                if join_timeout {
                    self.rejoins.1 += 1;
                } else {
                    self.rejoins.0 += 1;
                }
                ctx.history.nodes.insert(new, self.index);
                ctx.trace.line(ctx.now, || {
                    format!(
                        "REJOIN {old} -> {new}{}",
                        if join_timeout {
                            " (join timed out)"
                        } else {
                            ""
                        }
                    )
                });
            }
            CoreEvent::Recovered { version } => {
                ctx.history.recovered.insert(version);
                ctx.trace.line(ctx.now, || {
                    format!("EVENT {me} Recovered {{ version: {version} }}")
                });
            }
            CoreEvent::Started => {
                // A process that starts (discovery, or recovery from its durable
                // state) asks to be a member: a recovered view may add it (D23).
                ctx.history.joins.push(super::checker::JoinRequest {
                    step: ctx.step,
                    pid: me,
                });
                ctx.trace.line(ctx.now, || format!("EVENT {me} Started"));
            }
            CoreEvent::Joining { contacts } => {
                // Checker hook (issue 17): GMP-1b needs the join request.
                ctx.history.joins.push(super::checker::JoinRequest {
                    step: ctx.step,
                    pid: me,
                });
                ctx.trace.line(ctx.now, || {
                    format!("EVENT {me} Joining {{ contacts: {contacts} }}")
                });
            }
            CoreEvent::Excluded { reason } => {
                // Checker hook (issue 17): exclusions are in the history.
                ctx.history.exclusions.push(super::checker::Exclusion {
                    step: ctx.step,
                    pid: me,
                    reason,
                });
                ctx.trace.line(ctx.now, || {
                    format!("EVENT {me} Excluded {{ reason: {reason:?} }}")
                });
            }
            CoreEvent::Left => {
                ctx.history.exclusions.push(super::checker::Exclusion {
                    step: ctx.step,
                    pid: me,
                    reason: sgmp_membership::ExcludeReason::Left,
                });
                ctx.trace.line(ctx.now, || format!("EVENT {me} Left"));
            }
            other => ctx.trace.line(ctx.now, || format!("EVENT {me} {other:?}")),
        }
    }
}
