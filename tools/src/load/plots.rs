//! `sgmp-load plots`: SVG figures (plotters, SVG backend only) from the JSON reports of
//! the other modes.
//!
//! `sgmp-load plots --from a.json b.json ... --out docs/bench/` reads every file (one
//! JSON object per file, as printed with `--json`), recognises each by its `mode` key and
//! writes:
//!
//! * `latency_vs_n.svg` (view-change reports): commit latency p50 and p99 of removals,
//!   p50 of additions, the raw UDP round trip and the 2 × round-trip target, and the
//!   idle UDP round trip (reports that have it), against N;
//! * `latency_cdf.svg` (view-change reports): the distribution (CDF) of the removal
//!   commit latency, one curve per N;
//! * `messages_vs_n.svg` (a counts report): the paper's count measured, the closed form,
//!   the protocol messages sent and the datagrams on the wire, against n, for Y = 1 and
//!   the largest Y;
//! * `churn_throughput.svg` (a churn report): requests, updates and membership changes
//!   per second over time;
//! * `clients_scaling.svg` (two or more `clients` reports): the membership service's
//!   registration time (all clients in every replica) and the core's resident memory
//!   per client, against the number of clients, with the linear extrapolation of the
//!   smallest run beside the measured time (what grows faster than linearly shows).
//!
//! A figure whose reports are missing is skipped.

use std::io;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use serde_json::Value;

/// Flags of `sgmp-load plots`.
#[derive(Clone, Debug, clap::Args)]
pub struct PlotsArgs {
    /// JSON reports (one object per file).
    #[arg(long, num_args = 1.., required = true)]
    pub from: Vec<PathBuf>,
    /// Directory for the SVG files.
    #[arg(long, default_value = "docs/bench")]
    pub out: PathBuf,
}

const SIZE: (u32, u32) = (800, 500);
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(127, 127, 127),
];

fn plot_err<E: std::fmt::Display>(e: E) -> io::Error {
    io::Error::other(format!("plot: {e}"))
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

/// Reads the reports and writes the figures; returns the files written.
pub fn run(args: &PlotsArgs) -> io::Result<Vec<PathBuf>> {
    let mut reports = Vec::new();
    for p in &args.from {
        let text = std::fs::read_to_string(p)?;
        let v: Value = serde_json::from_str(text.trim()).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", p.display()))
        })?;
        reports.push(v);
    }
    std::fs::create_dir_all(&args.out)?;
    let mode = |m: &str| -> Vec<&Value> {
        reports
            .iter()
            .filter(|r| r.get("mode").and_then(Value::as_str) == Some(m))
            .collect()
    };
    let mut vc = mode("view-change");
    vc.sort_by_key(|r| r.get("nodes").and_then(Value::as_u64).unwrap_or(0));
    let mut written = Vec::new();
    if !vc.is_empty() {
        written.push(latency_vs_n(&args.out, &vc)?);
        written.push(latency_cdf(&args.out, &vc)?);
    }
    if let Some(c) = mode("counts").first() {
        written.push(messages_vs_n(&args.out, c)?);
    }
    if let Some(c) = mode("churn").first() {
        written.push(churn_throughput(&args.out, c)?);
    }
    let mut cl = mode("clients");
    cl.retain(|r| num(r, "clients_registered").is_some_and(|n| n > 0.0));
    cl.sort_by_key(|r| r.get("clients_registered").and_then(Value::as_u64));
    if cl.len() >= 2 {
        written.push(clients_scaling(&args.out, &cl)?);
    }
    Ok(written)
}

fn latency_vs_n(out: &Path, vc: &[&Value]) -> io::Result<PathBuf> {
    let path = out.join("latency_vs_n.svg");
    let series: [(&str, &str, f64); 7] = [
        ("removal commit p50", "commit_p50_us", 1.0),
        ("removal commit p99", "commit_p99_us", 1.0),
        (
            "addition commit p50 (with State-Xfer)",
            "join_commit_p50_us",
            1.0,
        ),
        ("raw UDP round trip p50", "udp_rtt_p50_us", 1.0),
        ("target: 2 x UDP round trip", "udp_rtt_p50_us", 2.0),
        (
            "idle UDP round trip p50 (1 ms gaps)",
            "udp_rtt_idle_p50_us",
            1.0,
        ),
        (
            "the removal's pattern over raw UDP p50 (N - 1 threads)",
            "udp_pattern_p50_us",
            1.0,
        ),
    ];
    let pts = |k: &str, f: f64| -> Vec<(f64, f64)> {
        vc.iter()
            .filter_map(|r| Some((num(r, "nodes")?, num(r, k)? * f)))
            .collect()
    };
    let max_n = vc
        .iter()
        .filter_map(|r| num(r, "nodes"))
        .fold(1.0, f64::max);
    let max_y = series
        .iter()
        .flat_map(|(_, k, f)| pts(k, *f))
        .map(|p| p.1)
        .fold(1.0, f64::max);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "View change latency vs group size (loopback)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_n * 1.05 + 1.0, (1f64..max_y * 2.0).log_scale())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("N (members)")
        .y_desc("latency, µs (log)")
        .draw()
        .map_err(plot_err)?;
    for (i, (label, k, f)) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let p = pts(k, *f);
        let style = if i == 4 {
            c.stroke_width(1)
        } else {
            c.stroke_width(2)
        };
        chart
            .draw_series(LineSeries::new(p.clone(), style))
            .map_err(plot_err)?
            .label(*label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart
            .draw_series(p.into_iter().map(|xy| Circle::new(xy, 3, c.filled())))
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    let written = path.clone();
    drop(root);
    Ok(written)
}

fn latency_cdf(out: &Path, vc: &[&Value]) -> io::Result<PathBuf> {
    let path = out.join("latency_cdf.svg");
    let curves: Vec<(u64, Vec<f64>)> = vc
        .iter()
        .filter_map(|r| {
            let n = r.get("nodes")?.as_u64()?;
            let mut s: Vec<f64> = r
                .get("commit_samples_us")?
                .as_array()?
                .iter()
                .filter_map(Value::as_f64)
                .collect();
            s.sort_by(f64::total_cmp);
            (!s.is_empty()).then_some((n, s))
        })
        .collect();
    let max_x = curves
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .fold(10.0, f64::max);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Removal commit latency: distribution (CDF)",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..max_x * 1.2).log_scale(), 0f64..1.0)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("submit → last install, µs (log)")
        .y_desc("fraction of view changes")
        .draw()
        .map_err(plot_err)?;
    for (i, (n, s)) in curves.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let len = s.len() as f64;
        let pts: Vec<(f64, f64)> = s
            .iter()
            .enumerate()
            .map(|(j, x)| (x.max(1.0), (j + 1) as f64 / len))
            .collect();
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(plot_err)?
            .label(format!("N = {n}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    let written = path.clone();
    drop(root);
    Ok(written)
}

fn messages_vs_n(out: &Path, c: &Value) -> io::Result<PathBuf> {
    let path = out.join("messages_vs_n.svg");
    let rows: Vec<&Value> = c
        .get("rows")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let max_y_updates = rows.iter().filter_map(|r| num(r, "y")).fold(1.0, f64::max);
    let pick = |y: f64, k: &str| -> Vec<(f64, f64)> {
        rows.iter()
            .filter(|r| num(r, "y") == Some(y))
            .filter_map(|r| Some((num(r, "n")?, num(r, k)?)))
            .collect()
    };
    let max_n = rows.iter().filter_map(|r| num(r, "n")).fold(3.0, f64::max);
    let top = rows
        .iter()
        .flat_map(|r| ["formula", "logical", "datagrams", "formula_off"].map(|k| num(r, k)))
        .flatten()
        .fold(1.0, f64::max);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Messages for Y = 1 and Y = {max_y_updates} updates vs n (§5.2)"),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_n * 1.05 + 1.0, (1f64..top * 1.5).log_scale())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("n (members of the first view)")
        .y_desc("messages (log)")
        .draw()
        .map_err(plot_err)?;
    let mut i = 0;
    for y in [1.0, max_y_updates] {
        for (label, k, line) in [
            ("closed form", "formula", true),
            ("measured (paper's count)", "logical", false),
            ("protocol messages sent", "sent", false),
            ("datagrams on the wire", "datagrams", false),
        ] {
            let col = COLORS[i % COLORS.len()];
            i += 1;
            let p = pick(y, k);
            let label = format!("Y = {y}: {label}");
            if line {
                chart
                    .draw_series(LineSeries::new(p, col.stroke_width(2)))
                    .map_err(plot_err)?
                    .label(label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
            } else {
                chart
                    .draw_series(p.into_iter().map(|xy| Circle::new(xy, 4, col.filled())))
                    .map_err(plot_err)?
                    .label(label)
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, col.filled()));
            }
        }
        if max_y_updates <= 1.0 {
            break;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    let written = path.clone();
    drop(root);
    Ok(written)
}

fn churn_throughput(out: &Path, c: &Value) -> io::Result<PathBuf> {
    let path = out.join("churn_throughput.svg");
    let bucket_s = num(c, "bucket_ms").unwrap_or(100.0) / 1000.0;
    let series = |k: &str| -> Vec<(f64, f64)> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        Some(((i as f64 + 1.0) * bucket_s, v.as_f64()? / bucket_s))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let lines = [
        (
            "requests per second (joins + leaves)",
            series("series_requests"),
        ),
        (
            "membership changes committed per second",
            series("series_changes"),
        ),
        (
            "updates (views) committed per second",
            series("series_updates"),
        ),
    ];
    let max_x = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(1.0, f64::max);
    let max_y = lines
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(1.0, f64::max);
    let root = SVGBackend::new(&path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Throughput under churn: {} members + {} churn slots",
                num(c, "nodes").unwrap_or(0.0),
                num(c, "churners").unwrap_or(0.0)
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..max_x, 0f64..max_y * 1.15)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("time, s")
        .y_desc("per second (100 ms buckets)")
        .draw()
        .map_err(plot_err)?;
    for (i, (label, p)) in lines.into_iter().enumerate() {
        let col = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(p, col.stroke_width(2)))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], col));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    let written = path.clone();
    drop(root);
    Ok(written)
}

fn clients_scaling(out: &Path, cl: &[&Value]) -> io::Result<PathBuf> {
    let path = out.join("clients_scaling.svg");
    let pts = |k: &str| -> Vec<(f64, f64)> {
        cl.iter()
            .filter_map(|r| Some((num(r, "clients_registered")?, num(r, k)?)))
            .filter(|p| p.1.is_finite() && p.1 > 0.0)
            .collect()
    };
    let time = pts("bootstrap_s");
    let linear: Vec<(f64, f64)> = time
        .first()
        .map(|(n0, t0)| time.iter().map(|(n, _)| (*n, t0 * n / n0)).collect())
        .unwrap_or_default();
    let mem = pts("core_rss_per_client_bytes");
    let max_n = cl
        .iter()
        .filter_map(|r| num(r, "clients_registered"))
        .fold(1.0, f64::max);
    let min_n = cl
        .iter()
        .filter_map(|r| num(r, "clients_registered"))
        .fold(max_n, f64::min);
    let root = SVGBackend::new(&path, (1000, 450)).into_drawing_area();
    root.fill(&WHITE).map_err(plot_err)?;
    let (left, right) = root.split_horizontally(500);
    let x_range = || (min_n / 1.5..max_n * 1.5).log_scale();
    // Registration time.
    let (lo, hi) = time
        .iter()
        .chain(&linear)
        .fold((f64::MAX, 0.0f64), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let mut chart = ChartBuilder::on(&left)
        .caption(
            "Registration: all clients in every replica",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(), (lo.min(hi) / 2.0..hi * 2.0).log_scale())
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("clients (log)")
        .y_desc("seconds (log)")
        .draw()
        .map_err(plot_err)?;
    for (i, (label, p)) in [
        ("measured", time.clone()),
        ("linear from the smallest run", linear),
    ]
    .into_iter()
    .enumerate()
    {
        let c = COLORS[i];
        let style = if i == 0 {
            c.stroke_width(2)
        } else {
            c.stroke_width(1)
        };
        chart
            .draw_series(LineSeries::new(p.clone(), style))
            .map_err(plot_err)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c));
        chart
            .draw_series(p.into_iter().map(|xy| Circle::new(xy, 3, c.filled())))
            .map_err(plot_err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_err)?;
    // Memory per client.
    let max_m = mem.iter().map(|p| p.1).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&right)
        .caption("Core resident memory per client", ("sans-serif", 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(), 0f64..max_m * 1.3)
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc("clients (log)")
        .y_desc("bytes per client (mean over the core)")
        .draw()
        .map_err(plot_err)?;
    let c = COLORS[2];
    chart
        .draw_series(LineSeries::new(mem.clone(), c.stroke_width(2)))
        .map_err(plot_err)?;
    chart
        .draw_series(mem.into_iter().map(|xy| Circle::new(xy, 3, c.filled())))
        .map_err(plot_err)?;
    root.present().map_err(plot_err)?;
    let written = path.clone();
    drop(root);
    Ok(written)
}
