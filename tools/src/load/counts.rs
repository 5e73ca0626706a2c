//! `sgmp-load counts`: protocol messages and wire datagrams of Y compressed updates
//! against the closed forms of §5.2 of the paper (as corrected in `docs/PROTOCOL.md`,
//! decision D7).
//!
//! For each n (`--nodes`, members of the starting view) and Y = 1 … `--max-y`, a seeded
//! plan of Y updates (the first removes 1–2 members or adds one; later ones remove 0–2
//! and add 0–2, keeping a majority) runs twice, compression on and off, the same way as
//! `membership/tests/message_counts.rs` (which asserts the equalities): each update's
//! requests (suspicions at the mgr, joins) are injected once the mgr has submitted the
//! previous one, so they are batched into the next update.
//!
//! Every run goes through **real transport endpoints** ([`Endpoint`]) over the
//! transport's [`SimNet`] with a fixed one-way delay (`--delay-us`), on a simulated
//! clock: the protocol counts come from the engines' counters
//! (`sent + self_addressed + suppressed` is the paper's count, `sent` what goes on the
//! wire), and the datagram count from the endpoints' counters, including pure acks and
//! the joiners' `JoinReq` (not a protocol message). Acks ride on data going the other
//! way when there is some; several messages to one peer share a datagram.
//!
//! The closed forms, for update k from a view of n_k members removing r_k and adding a_k
//! (δ_k = a_k − r_k), k = x … x+Y−1:
//!
//! ```text
//! compressed:   (2Y+1)·n_x + Σ a_k + 2·Σ (x+Y−k)·δ_k
//! uncompressed: compressed + (Y−1)·n_x + Σ_{k ≤ x+Y−2} (x+Y−1−k)·δ_k
//! ```

use std::io;
use std::net::SocketAddr;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use sgmp_membership::engine::{Event, Status};
use sgmp_membership::msg;
use sgmp_membership::testkit::{addr_of, member_of};
use sgmp_membership::{Engine, EngineConfig, EngineStats, Time};
use sgmp_transport::{Endpoint, FaultLayer, LinkFaults, SimNet, TransportConfig};

use super::flags::Output;
use super::report::{cell, Figures};

/// Flags of `sgmp-load counts`.
#[derive(Clone, Debug, clap::Args)]
pub struct CountsArgs {
    /// Sizes of the starting view (comma-separated, 3 to 63).
    #[arg(long, value_delimiter = ',', default_values_t = [3u64, 5, 9, 17, 33, 63],
          value_parser = clap::value_parser!(u64).range(3..=63))]
    pub nodes: Vec<u64>,
    /// Largest number of updates Y (every Y from 1 is run).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=10))]
    pub max_y: u64,
    /// One-way delay of the simulated network, µs.
    #[arg(long, default_value_t = 50)]
    pub delay_us: u64,
    /// `--json`.
    #[command(flatten)]
    pub output: Output,
}

pub use sgmp_membership::counts::{compressed_formula, plan, uncompressed_extra, Op};

/// Counts of one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Measured {
    /// The paper's count: sent + self-addressed + suppressed.
    pub logical: u64,
    /// Protocol messages handed to the transport.
    pub sent: u64,
    /// Every message handed to the transport (with `JoinReq`).
    pub messages: u64,
    /// Datagrams on the wire.
    pub datagrams: u64,
    /// Of which pure acknowledgements.
    pub acks: u64,
    /// Every member ended at version x + Y.
    pub converged: bool,
}

struct SimNode {
    eng: Engine,
    ep: Endpoint,
    addr: SocketAddr,
    up: bool,
    submitted: Vec<u64>,
}

struct Harness {
    nodes: Vec<SimNode>,
    net: SimNet,
    now: Time,
    buf: Vec<u8>,
}

impl Harness {
    fn new(n: usize, extra: usize, compression: bool, delay_us: u64) -> Harness {
        let ecfg = EngineConfig {
            max_members: 64,
            max_snapshot: 16,
            compression,
            ..EngineConfig::default()
        };
        let max_message = msg::max_encoded_len(64, 16);
        let tcfg = TransportConfig {
            max_message,
            max_peers: 160,
            ..TransportConfig::default()
        };
        let founders: Vec<_> = (0..n).map(|i| member_of(i, 1)).collect();
        let now = Time(1_000);
        let nodes = (0..n + extra)
            .map(|i| {
                let me = member_of(i, 1);
                let mut eng = Engine::new(ecfg.clone(), me);
                if i < n {
                    eng.bootstrap(now, &founders);
                }
                SimNode {
                    eng,
                    ep: Endpoint::new(tcfg, me.id),
                    addr: addr_of(i),
                    up: true,
                    submitted: Vec::new(),
                }
            })
            .collect();
        let mut faults = FaultLayer::new(1);
        faults.set_default(LinkFaults::PERFECT.with_delay(delay_us, 0));
        Harness {
            nodes,
            net: SimNet::new(faults, 1 << 16, 2048),
            now,
            buf: vec![0u8; max_message + 64],
        }
    }

    /// Engine outputs into the endpoints, endpoints onto the network, events noted.
    fn flush(&mut self) {
        for nd in &mut self.nodes {
            while let Some(t) = nd.eng.poll_transmit() {
                let _ = nd.ep.send(self.now, t.to, t.addr, t.payload);
            }
            while let Some(e) = nd.eng.poll_event() {
                if let Event::Submitted { version } = e {
                    nd.submitted.push(version);
                }
            }
            if nd.up {
                self.net.flush(self.now, nd.addr, &mut nd.ep);
            } else {
                while nd.ep.poll_transmit(self.now, &mut self.buf).is_some() {}
            }
        }
    }

    /// One step at `now`: deliveries, endpoint timers, engine inputs, outputs.
    fn step(&mut self) {
        let (now, nodes) = (self.now, &mut self.nodes);
        self.net.deliver_due(now, |d, bytes| {
            if let Some(nd) = nodes.iter_mut().find(|nd| nd.addr == d.to && nd.up) {
                nd.ep.handle_datagram(now, d.from, bytes);
            }
        });
        for nd in &mut self.nodes {
            if nd.ep.poll_timeout().is_some_and(|t| t <= now) {
                nd.ep.handle_timeout(now);
            }
            while let Some((from, len)) = nd.ep.poll_delivery(&mut self.buf) {
                let _ = nd.eng.handle_message(now, from, &self.buf[..len]);
            }
        }
        self.flush();
    }

    /// Steps until `cond` or nothing is due within `idle_us` (at most `max` steps).
    fn run_until(&mut self, idle_us: u64, max: usize, mut cond: impl FnMut(&Harness) -> bool) {
        for _ in 0..max {
            self.step();
            if cond(self) {
                return;
            }
            let mut next = self.net.next_delivery();
            for nd in &self.nodes {
                next = sgmp_transport::earliest(next, nd.ep.poll_timeout());
            }
            match next {
                Some(t) if t.micros_since(self.now) <= idle_us || t <= self.now => {
                    self.now = if t > self.now { t } else { self.now + 1 };
                }
                _ => return,
            }
        }
    }
}

/// Runs `ops` from a view of `n` over endpoints and the simulated network.
pub fn measure(n: usize, ops: &[Op], compression: bool, delay_us: u64) -> Measured {
    let adds: usize = ops.iter().map(|o| o.a).sum();
    let mut h = Harness::new(n, adds, compression, delay_us);
    h.flush();
    let x = 1u64;
    let mut next_joiner = n;
    let mut removed = vec![false; n + adds];
    for (k, op) in ops.iter().enumerate() {
        if k >= 1 {
            let want = x + k as u64;
            h.run_until(u64::MAX, 1_000_000, |h| {
                h.nodes[0].submitted.contains(&want)
            });
        }
        let victims: Vec<usize> = h.nodes[0]
            .eng
            .view()
            .members
            .iter()
            .rev()
            .filter_map(|m| h.nodes.iter().position(|nd| nd.addr == m.addr))
            .filter(|&i| i != 0 && !removed[i])
            .take(op.r)
            .collect();
        let ids: Vec<_> = victims.iter().map(|&i| h.nodes[i].eng.me().id).collect();
        for &v in &victims {
            removed[v] = true;
        }
        let now = h.now;
        h.nodes[0].eng.suspect_all(now, &ids);
        let mgr = *h.nodes[0].eng.me();
        for _ in 0..op.a {
            h.nodes[next_joiner].eng.join(now, &[mgr]);
            next_joiner += 1;
        }
        h.flush();
    }
    // Until quiet: the last commit, then the delayed acks.
    let idle = 20 * delay_us.max(1) + 5_000;
    h.run_until(idle, 10_000_000, |_| false);
    let want = x + ops.len() as u64;
    let mut total = EngineStats::default();
    let mut m = Measured {
        converged: true,
        ..Measured::default()
    };
    for (i, nd) in h.nodes.iter().enumerate() {
        if !removed[i] && (nd.eng.status() != Status::Member || nd.eng.view().version != want) {
            m.converged = false;
        }
        for k in 0..total.sent.len() {
            total.sent[k] += nd.eng.stats().sent[k];
            total.self_addressed[k] += nd.eng.stats().self_addressed[k];
            total.suppressed[k] += nd.eng.stats().suppressed[k];
        }
        let s = nd.ep.stats();
        m.datagrams += s.datagrams_out;
        m.acks += s.acks_sent;
        m.messages += s.messages_sent;
    }
    m.sent = total.protocol_sent();
    m.logical = total.protocol_logical();
    m
}

/// One row of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Members of the starting view.
    pub n: usize,
    /// Updates.
    pub y: usize,
    /// Σ r_k, Σ a_k.
    pub removes: usize,
    /// Σ a_k.
    pub adds: usize,
    /// Closed form, compression on.
    pub formula_on: i64,
    /// Measured, compression on.
    pub on: Measured,
    /// Closed form, compression off.
    pub formula_off: i64,
    /// Measured, compression off.
    pub off: Measured,
}

impl Row {
    /// Both counts equal their closed forms and both runs converged.
    pub fn matches(&self) -> bool {
        self.on.logical as i64 == self.formula_on
            && self.off.logical as i64 == self.formula_off
            && self.on.converged
            && self.off.converged
    }
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct CountsReport {
    /// Flags.
    pub args: CountsArgs,
    /// One row per (n, Y).
    pub rows: Vec<Row>,
}

/// Runs the mode.
pub fn run(args: &CountsArgs) -> io::Result<CountsReport> {
    let mut rows = Vec::new();
    for &n in &args.nodes {
        let n = n as usize;
        for y in 1..=args.max_y as usize {
            if super::cluster::stopped() {
                break;
            }
            let mut rng = ChaCha8Rng::seed_from_u64((n * 100 + y) as u64);
            let ops = plan(n, y, 64, &mut rng);
            let formula_on = compressed_formula(n, &ops);
            rows.push(Row {
                n,
                y,
                removes: ops.iter().map(|o| o.r).sum(),
                adds: ops.iter().map(|o| o.a).sum(),
                formula_on,
                on: measure(n, &ops, true, args.delay_us),
                formula_off: formula_on + uncompressed_extra(n, &ops),
                off: measure(n, &ops, false, args.delay_us),
            });
        }
    }
    Ok(CountsReport {
        args: args.clone(),
        rows,
    })
}

impl CountsReport {
    /// The figures (one JSON object; `rows` holds the table).
    pub fn figures(&self) -> Figures {
        let mut f = Figures::new();
        f.text("mode", "counts");
        f.int("delay_us", self.args.delay_us);
        f.int("runs", 2 * self.rows.len() as u64);
        let mismatches = self.rows.iter().filter(|r| !r.matches()).count();
        f.int("mismatches", mismatches as u64);
        f.flag("all_match", mismatches == 0);
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "n": r.n, "y": r.y, "removes": r.removes, "adds": r.adds,
                    "formula": r.formula_on, "logical": r.on.logical, "sent": r.on.sent,
                    "messages": r.on.messages, "datagrams": r.on.datagrams, "acks": r.on.acks,
                    "formula_off": r.formula_off, "logical_off": r.off.logical,
                    "sent_off": r.off.sent, "datagrams_off": r.off.datagrams,
                    "match": r.matches(),
                })
            })
            .collect();
        f.set("rows", Value::Array(rows));
        f
    }

    /// A human table.
    pub fn table(&self) -> String {
        let mut s = String::from(
            "sgmp-load counts: Y updates from a view of n, compression on (paper's count = formula) and off;\n\
             wire: protocol messages sent; all engine messages on the transport (also JoinReq and the heartbeat an outer member\n\
             sends the mgr when it starts suspecting someone, D12); datagrams (of which pure acks)\n\n",
        );
        s.push_str(&format!(
            "{:>3} {:>3} {:>5} {:>5} | {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} | {:>7} {:>7} {:>6} {:>6} | {}\n",
            "n", "Y", "Σr", "Σa", "formula", "paper", "sent", "msgs", "dgrams", "acks",
            "formula", "paper", "sent", "dgrams", "ok"
        ));
        s.push_str(&format!(
            "{:>19} | {:^45} | {:^30} |\n",
            "", "compression on", "compression off"
        ));
        for r in &self.rows {
            s.push_str(&format!(
                "{:>3} {:>3} {:>5} {:>5} | {:>7} {:>7} {:>6} {:>6} {:>6} {:>6} | {:>7} {:>7} {:>6} {:>6} | {}\n",
                r.n, r.y, r.removes, r.adds, r.formula_on, r.on.logical, r.on.sent,
                r.on.messages, r.on.datagrams, r.on.acks, r.formula_off, r.off.logical,
                r.off.sent, r.off.datagrams,
                if r.matches() { "yes" } else { "NO" }
            ));
        }
        let dg: u64 = self.rows.iter().map(|r| r.on.datagrams).sum();
        let sent: u64 = self.rows.iter().map(|r| r.on.messages).sum();
        s.push_str(&format!(
            "\n{} of {} rows match the closed forms; datagrams / transport messages (compression on, all rows) = {}\n",
            self.rows.iter().filter(|r| r.matches()).count(),
            self.rows.len(),
            cell(dg as f64 / sent.max(1) as f64, 3)
        ));
        s
    }
}
