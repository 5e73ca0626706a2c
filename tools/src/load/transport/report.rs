//! What one run measured: figures per mode, the JSON keys and the table.

use super::{Mode, TransportArgs, TARGET_RTT_VS_TCP, TARGET_RTT_VS_UDP, TARGET_THROUGHPUT_VS_UDP};
use crate::load::report::{cell, rate_cell, ratio, Figures, Latency};

/// A one-way throughput measurement (totals over every round).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Throughput {
    /// Messages the receiver got per second.
    pub msgs_per_s: f64,
    /// Messages the sender handed over per second (to `send_to`, or accepted by
    /// [`Driver::send`](sgmp_transport::Driver::send)).
    pub sent_per_s: f64,
    /// Datagrams the sender wrote per second (sgmp coalesces small messages).
    pub datagrams_per_s: f64,
    /// Retransmitted frames (sgmp only).
    pub retransmissions: u64,
    /// Length of the counted intervals, s.
    pub secs: f64,
}

/// Round trip of one transport (totals over every round).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundTrip {
    /// Latency percentiles.
    pub latency: Latency,
    /// Pings without an echo within 100 ms.
    pub lost: u64,
    /// Datagrams written by both sides per round trip, warm-up included (sgmp only: 2.0
    /// means every ack rode on a message).
    pub datagrams_per_round: f64,
    /// Retransmitted frames (sgmp only).
    pub retransmissions: u64,
}

/// Everything measured in one [`Mode`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ModeFigures {
    /// Reliable channel round trip.
    pub sgmp_rtt: RoundTrip,
    /// Raw UDP round trip.
    pub udp_rtt: RoundTrip,
    /// TCP (`TCP_NODELAY`) round trip.
    pub tcp_rtt: RoundTrip,
    /// Reliable channel, 64 B messages.
    pub sgmp: Throughput,
    /// Raw UDP, 64 B messages.
    pub udp: Throughput,
    /// Reliable channel, 1 KiB messages.
    pub sgmp_1k: Throughput,
    /// Raw UDP, 1 KiB messages.
    pub udp_1k: Throughput,
}

impl ModeFigures {
    /// sgmp p50 round trip over raw UDP's.
    pub fn ratio_rtt_udp(&self) -> f64 {
        ratio(self.sgmp_rtt.latency.p50_us, self.udp_rtt.latency.p50_us)
    }

    /// sgmp p50 round trip over TCP's.
    pub fn ratio_rtt_tcp(&self) -> f64 {
        ratio(self.sgmp_rtt.latency.p50_us, self.tcp_rtt.latency.p50_us)
    }

    /// sgmp 64 B throughput over raw UDP's (received).
    pub fn ratio_throughput(&self) -> f64 {
        ratio(self.sgmp.msgs_per_s, self.udp.msgs_per_s)
    }

    /// sgmp 1 KiB throughput over raw UDP's (received).
    pub fn ratio_throughput_1k(&self) -> f64 {
        ratio(self.sgmp_1k.msgs_per_s, self.udp_1k.msgs_per_s)
    }
}

/// One of the ratios of [`ModeFigures`].
type Ratio = fn(&ModeFigures) -> f64;

/// The result of one `sgmp-load transport` run.
#[derive(Clone, Debug)]
pub struct TransportReport {
    /// The flags it ran with.
    pub args: TransportArgs,
    /// CPUs available to the process.
    pub cores: usize,
    /// Rounds: every measurement ran once per round, in short interleaved slots.
    pub rounds: u32,
    /// Wall-clock length of the run, s.
    pub elapsed_s: f64,
    /// Blocking mode.
    pub block: ModeFigures,
    /// Spinning mode.
    pub spin: ModeFigures,
}

impl TransportReport {
    /// The figures, with the key names of the JSON output (see `BENCHMARKS.md`).
    pub fn figures(&self) -> Figures {
        let mut f = Figures::new();
        f.text("mode", "transport");
        f.float("seconds", self.args.seconds);
        f.float("elapsed_s", self.elapsed_s);
        f.int("rounds", self.rounds as u64);
        f.int("size", self.args.size as u64);
        f.int("spin_us", self.args.spin_us);
        f.text("park", self.args.park.name());
        f.int("cores", self.cores as u64);
        for (mode, m) in [(Mode::Block, &self.block), (Mode::Spin, &self.spin)] {
            let p = mode.prefix();
            for (name, rt) in [
                ("sgmp", &m.sgmp_rtt),
                ("raw_udp", &m.udp_rtt),
                ("tcp", &m.tcp_rtt),
            ] {
                let l = &rt.latency;
                f.float(format!("{p}{name}_rtt_p50_us"), l.p50_us);
                f.float(format!("{p}{name}_rtt_p99_us"), l.p99_us);
                f.float(format!("{p}{name}_rtt_max_us"), l.max_us);
                f.float(format!("{p}{name}_rtt_mean_us"), l.mean_us);
                f.int(format!("{p}{name}_rtt_samples"), l.samples);
                f.int(format!("{p}{name}_rtt_lost"), rt.lost);
            }
            let srt = &m.sgmp_rtt;
            f.float(
                format!("{p}sgmp_rtt_datagrams_per_round"),
                srt.datagrams_per_round,
            );
            f.int(format!("{p}sgmp_rtt_retransmissions"), srt.retransmissions);
            for (name, s, t) in [
                ("sgmp", "", &m.sgmp),
                ("raw_udp", "", &m.udp),
                ("sgmp", "_1k", &m.sgmp_1k),
                ("raw_udp", "_1k", &m.udp_1k),
            ] {
                f.float(format!("{p}{name}_msgs_per_s{s}"), t.msgs_per_s);
                f.float(format!("{p}{name}_sent_per_s{s}"), t.sent_per_s);
                f.float(format!("{p}{name}_datagrams_per_s{s}"), t.datagrams_per_s);
                if name == "sgmp" {
                    f.int(format!("{p}{name}_retransmissions{s}"), t.retransmissions);
                } else {
                    let loss = 100.0 * (1.0 - ratio(t.msgs_per_s, t.sent_per_s));
                    f.float(format!("{p}{name}_loss_pct{s}"), loss.max(0.0));
                }
            }
            let (ru, rt, th, th1) = (
                m.ratio_rtt_udp(),
                m.ratio_rtt_tcp(),
                m.ratio_throughput(),
                m.ratio_throughput_1k(),
            );
            f.float(format!("{p}ratio_sgmp_to_udp_rtt"), ru);
            f.float(format!("{p}ratio_sgmp_to_tcp_rtt"), rt);
            f.float(format!("{p}ratio_sgmp_to_udp_throughput"), th);
            f.float(format!("{p}ratio_sgmp_to_udp_throughput_1k"), th1);
            f.flag(format!("{p}target_rtt_vs_udp_met"), ru <= TARGET_RTT_VS_UDP);
            f.flag(format!("{p}target_rtt_vs_tcp_met"), rt <= TARGET_RTT_VS_TCP);
            f.flag(
                format!("{p}target_throughput_met"),
                th >= TARGET_THROUGHPUT_VS_UDP,
            );
            f.flag(
                format!("{p}target_throughput_1k_met"),
                th1 >= TARGET_THROUGHPUT_VS_UDP,
            );
        }
        f
    }

    /// A human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!(
            "sgmp-load transport: 127.0.0.1, {} B ping-pong, {:.1} s budget ({:.1} s used, \
             {} rounds), {} cores, blocking sgmp parks in {}, spin {} µs",
            self.args.size,
            self.args.seconds,
            self.elapsed_s,
            self.rounds,
            self.cores,
            self.args.park.name(),
            self.args.spin_us
        ));
        line(String::new());
        line(format!(
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>5}",
            "round trip (µs)", "p50", "p99", "max", "samples", "lost"
        ));
        for (mode, m) in [(Mode::Block, &self.block), (Mode::Spin, &self.spin)] {
            for (name, rt) in [
                ("sgmp", &m.sgmp_rtt),
                ("raw udp", &m.udp_rtt),
                ("tcp nodelay", &m.tcp_rtt),
            ] {
                let l = &rt.latency;
                line(format!(
                    "  {:<6}{:<14} {:>9} {:>9} {:>9} {:>9} {:>5}",
                    mode.name(),
                    name,
                    cell(l.p50_us, 1),
                    cell(l.p99_us, 1),
                    cell(l.max_us, 1),
                    l.samples,
                    rt.lost
                ));
            }
        }
        line(format!(
            "  sgmp datagrams per round trip: block {}, spin {}; retransmissions: block {}, \
             spin {}",
            cell(self.block.sgmp_rtt.datagrams_per_round, 2),
            cell(self.spin.sgmp_rtt.datagrams_per_round, 2),
            self.block.sgmp_rtt.retransmissions,
            self.spin.sgmp_rtt.retransmissions
        ));
        line(String::new());
        line(format!(
            "{:<22} {:>12} {:>12} {:>12} {:>12}",
            "throughput (msg/s)", "64 B", "64 B sent", "1 KiB", "1 KiB sent"
        ));
        for (mode, m) in [(Mode::Block, &self.block), (Mode::Spin, &self.spin)] {
            for (name, a, b) in [
                ("sgmp", &m.sgmp, &m.sgmp_1k),
                ("raw udp recv", &m.udp, &m.udp_1k),
            ] {
                line(format!(
                    "  {:<6}{:<14} {:>12} {:>12} {:>12} {:>12}",
                    mode.name(),
                    name,
                    rate_cell(a.msgs_per_s),
                    rate_cell(a.sent_per_s),
                    rate_cell(b.msgs_per_s),
                    rate_cell(b.sent_per_s)
                ));
            }
        }
        line(format!(
            "  sgmp datagrams/s 64 B: block {}, spin {}; retransmitted frames: block {}/{}, \
             spin {}/{} (64 B/1 KiB)",
            rate_cell(self.block.sgmp.datagrams_per_s),
            rate_cell(self.spin.sgmp.datagrams_per_s),
            self.block.sgmp.retransmissions,
            self.block.sgmp_1k.retransmissions,
            self.spin.sgmp.retransmissions,
            self.spin.sgmp_1k.retransmissions
        ));
        line(String::new());
        line(format!(
            "{:<30} {:>7} {:>7} {:>8}",
            "ratios (sgmp / other)", "block", "spin", "target"
        ));
        let rows: [(&str, Ratio, String); 4] = [
            (
                "rtt p50 / raw udp",
                ModeFigures::ratio_rtt_udp,
                format!("<= {TARGET_RTT_VS_UDP}"),
            ),
            (
                "rtt p50 / tcp",
                ModeFigures::ratio_rtt_tcp,
                format!("<= {TARGET_RTT_VS_TCP}"),
            ),
            (
                "throughput 64 B / raw udp",
                ModeFigures::ratio_throughput,
                format!(">= {TARGET_THROUGHPUT_VS_UDP}"),
            ),
            (
                "throughput 1 KiB / raw udp",
                ModeFigures::ratio_throughput_1k,
                format!(">= {TARGET_THROUGHPUT_VS_UDP}"),
            ),
        ];
        for (name, f, target) in rows {
            line(format!(
                "  {:<28} {:>7} {:>7} {:>8}",
                name,
                cell(f(&self.block), 2),
                cell(f(&self.spin), 2),
                target
            ));
        }
        s
    }
}
