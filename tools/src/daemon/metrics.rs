//! `sgmpd --metrics-listen ADDR`: the Prometheus text format (version 0.0.4) at
//! `http://ADDR/metrics`, served by a tiny HTTP/1.0 responder on a std `TcpListener`
//! (GET only, one request per connection, at most [`MAX_CONNECTIONS`] at once, a
//! request head of at most [`MAX_HEAD_BYTES`] read within [`READ_TIMEOUT`]).
//!
//! The figures come from `NodeHandle::status()` and `NodeHandle::metrics()`, plus a few
//! counted from the node's events (suspicions, commit latency). Counters taken from the
//! engine and the transport are per incarnation: they restart from zero when the
//! process rejoins as a new incarnation (a counter reset, which Prometheus handles).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use sgmp_membership::node::{NodeEvent, NodeHandle};
use sgmp_transport::DropReason;

/// Most scrapes served at once.
pub const MAX_CONNECTIONS: usize = 4;
/// Longest HTTP request head, bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Longest wait for the request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Upper bounds of the commit latency histogram's buckets, seconds.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Figures counted from the node's events.
#[derive(Debug, Default)]
pub struct EventCounters {
    /// `Suspected` events (this process came to believe a member faulty).
    pub suspicions: u64,
    /// `Excluded` events.
    pub exclusions: u64,
    /// Views this process initiated (`Submitted`) whose installation it saw.
    pub latency_count: u64,
    /// Sum of those submit-to-install latencies, seconds.
    pub latency_sum: f64,
    /// Cumulative counts per bucket of [`LATENCY_BUCKETS`].
    pub latency_buckets: [u64; LATENCY_BUCKETS.len()],
    /// The latest `Submitted` not yet installed: (version, when).
    pending: Option<(u64, Instant)>,
}

impl EventCounters {
    /// Counts one event.
    pub fn observe(&mut self, ev: &NodeEvent) {
        match ev {
            NodeEvent::Suspected { .. } => self.suspicions += 1,
            NodeEvent::Excluded { .. } => self.exclusions += 1,
            NodeEvent::Submitted { version, at, .. } => self.pending = Some((*version, *at)),
            NodeEvent::ViewInstalled { view, .. } => {
                if let Some((v, at)) = self.pending {
                    if view.version >= v {
                        self.pending = None;
                        if view.version == v {
                            let s = at.elapsed().as_secs_f64();
                            self.latency_count += 1;
                            self.latency_sum += s;
                            for (b, le) in self.latency_buckets.iter_mut().zip(LATENCY_BUCKETS) {
                                if s <= le {
                                    *b += 1;
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Counts the node's events into `counters` until the node stops (a thread of its own).
pub(super) fn count_events(node: Arc<NodeHandle>, counters: Arc<Mutex<EventCounters>>) {
    let sub = node.subscribe();
    drop(node);
    loop {
        match sub.recv_timeout(Duration::from_millis(500)) {
            Some(ev) => counters.lock().observe(&ev),
            None if sub.ended() => return,
            None => {}
        }
    }
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of the node's figures.
pub fn render(node: &NodeHandle, ev: &EventCounters) -> String {
    let s = node.status();
    let m = node.metrics();
    let e = &m.engine;
    let t = &m.transport;
    let mut o = String::with_capacity(4096);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(o, "{name}{labels} {v}");
        }
    };
    let one = |v: f64| [(String::new(), v)];
    metric(
        "sgmp_info",
        "gauge",
        "The process id, address and phase of this node (value 1).",
        &[(
            format!(
                "{{node=\"{}\",addr=\"{}\",phase=\"{}\"}}",
                label(&s.me.to_string()),
                label(&s.addr.to_string()),
                s.phase.as_str()
            ),
            1.0,
        )],
    );
    metric(
        "sgmp_view_version",
        "gauge",
        "Version of the current view (0: none).",
        &one(s.view.version as f64),
    );
    metric(
        "sgmp_members",
        "gauge",
        "Members of the current view.",
        &one(s.view.members.len() as f64),
    );
    metric(
        "sgmp_is_mgr",
        "gauge",
        "1 if this process is the mgr.",
        &one(f64::from(u8::from(s.is_mgr))),
    );
    metric(
        "sgmp_faulty",
        "gauge",
        "Members this process believes faulty.",
        &one(s.faulty.len() as f64),
    );
    metric(
        "sgmp_system_version",
        "gauge",
        "Version of the membership service's system view.",
        &one(s.system_version as f64),
    );
    metric(
        "sgmp_system_size",
        "gauge",
        "Members of the system view (core + clients).",
        &one(s.system_size as f64),
    );
    metric(
        "sgmp_clients",
        "gauge",
        "Registered clients of the membership service.",
        &one(s.clients as f64),
    );
    metric(
        "sgmp_backlog_len",
        "gauge",
        "Messages waiting for send window space.",
        &one(m.backlog_len as f64),
    );
    metric(
        "sgmp_views_installed_total",
        "counter",
        "Views installed, over every incarnation.",
        &one(m.views_installed as f64),
    );
    metric(
        "sgmp_rejoins_total",
        "counter",
        "Rejoins as a new incarnation.",
        &one(m.rejoins as f64),
    );
    metric(
        "sgmp_suspicions_total",
        "counter",
        "Members this process came to believe faulty.",
        &one(ev.suspicions as f64),
    );
    metric(
        "sgmp_exclusions_total",
        "counter",
        "Times this process was excluded from the group.",
        &one(ev.exclusions as f64),
    );
    metric(
        "sgmp_reconfigurations_total",
        "counter",
        "Reconfigurations this process initiated (current incarnation).",
        &one(e.reconfigurations as f64),
    );
    metric(
        "sgmp_protocol_messages_sent_total",
        "counter",
        "Protocol messages handed to the transport (current incarnation).",
        &one(e.protocol_sent() as f64),
    );
    metric(
        "sgmp_messages_received_total",
        "counter",
        "Messages received and decoded (current incarnation).",
        &one(e.received.iter().sum::<u64>() as f64),
    );
    metric(
        "sgmp_decode_errors_total",
        "counter",
        "Messages that failed to decode.",
        &one(e.decode_errors as f64),
    );
    metric(
        "sgmp_dropped_from_faulty_total",
        "counter",
        "Messages dropped because their sender is believed faulty.",
        &one(e.dropped_from_faulty as f64),
    );
    metric(
        "sgmp_joins_refused_total",
        "counter",
        "Join requests refused.",
        &one(e.joins_refused as f64),
    );
    let drops: Vec<(String, f64)> = DropReason::ALL
        .iter()
        .map(|r| {
            (
                format!("{{reason=\"{}\"}}", r.as_str()),
                t.dropped(*r) as f64,
            )
        })
        .chain(std::iter::once((
            "{reason=\"fault_injection\"}".to_string(),
            m.driver.fault_dropped as f64,
        )))
        .collect();
    metric(
        "sgmp_drops_total",
        "counter",
        "Datagrams dropped, by reason.",
        &drops,
    );
    metric(
        "sgmp_datagrams_in_total",
        "counter",
        "Datagrams received.",
        &one(t.datagrams_in as f64),
    );
    metric(
        "sgmp_datagrams_out_total",
        "counter",
        "Datagrams sent.",
        &one(t.datagrams_out as f64),
    );
    metric(
        "sgmp_bytes_in_total",
        "counter",
        "Bytes received.",
        &one(t.bytes_in as f64),
    );
    metric(
        "sgmp_bytes_out_total",
        "counter",
        "Bytes sent.",
        &one(t.bytes_out as f64),
    );
    metric(
        "sgmp_retransmissions_total",
        "counter",
        "Frames retransmitted.",
        &one(t.retransmissions as f64),
    );
    metric(
        "sgmp_retransmission_timeouts_total",
        "counter",
        "Retransmission timeouts.",
        &one(t.timeouts as f64),
    );
    metric(
        "sgmp_unreachable_total",
        "counter",
        "Peers reported unreachable by the transport.",
        &one(t.unreachable_events as f64),
    );
    metric(
        "sgmp_send_errors_total",
        "counter",
        "Socket send errors.",
        &one(m.driver.send_errors as f64),
    );
    metric(
        "sgmp_idle_poll_seconds_total",
        "counter",
        "Time the loop spent polling its socket before parking (idle strategies adaptive and spin).",
        &one(m.driver.poll_us as f64 / 1e6),
    );
    metric(
        "sgmp_warm_pings_sent_total",
        "counter",
        "Keep-warm pings (--warm-us), warm-up calls before a suspicion (--warm-up-us) and answers to calls sent.",
        &one(m.driver.pings_sent as f64),
    );
    metric(
        "sgmp_warm_pings_received_total",
        "counter",
        "Empty and one-byte datagrams received from any source (other nodes' keep-warm pings, warm-up calls and answers; unauthenticated, never handed to the protocol).",
        &one(m.driver.pings_received as f64),
    );
    metric(
        "sgmp_events_dropped_total",
        "counter",
        "Events not delivered to a lagging subscriber.",
        &one(m.events_dropped as f64),
    );
    metric(
        "sgmp_event_log_lost_total",
        "counter",
        "Event log records lost to write errors (a full disk); the node goes on.",
        &one(m.event_log_lost as f64),
    );
    let _ = writeln!(
        o,
        "# HELP sgmp_commit_latency_seconds From this process's submit of an update to \
         its installation of the view.\n# TYPE sgmp_commit_latency_seconds histogram"
    );
    for (le, n) in LATENCY_BUCKETS.iter().zip(ev.latency_buckets) {
        let _ = writeln!(o, "sgmp_commit_latency_seconds_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(
        o,
        "sgmp_commit_latency_seconds_bucket{{le=\"+Inf\"}} {n}\n\
         sgmp_commit_latency_seconds_sum {}\nsgmp_commit_latency_seconds_count {n}",
        ev.latency_sum,
        n = ev.latency_count
    );
    o
}

/// Decrements the count of active scrapes when dropped.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves scrapes until the process exits.
pub(super) fn serve(
    l: TcpListener,
    node: Arc<OnceLock<Arc<NodeHandle>>>,
    counters: Arc<Mutex<EventCounters>>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in l.incoming() {
        let Ok(s) = conn else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            continue; // dropped: the scraper retries
        }
        let slot = Slot(Arc::clone(&active));
        let node = Arc::clone(&node);
        let counters = Arc::clone(&counters);
        let _ = std::thread::Builder::new()
            .name("sgmpd-metrics-conn".into())
            .spawn(move || {
                let _slot = slot;
                answer(s, &node, &counters);
            });
    }
}

/// Reads the request head (up to the blank line), within the bounds.
fn read_head(s: &mut TcpStream) -> Option<String> {
    s.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    let deadline = Instant::now() + READ_TIMEOUT * 2;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if head.len() > MAX_HEAD_BYTES {
            return None;
        }
    }
    String::from_utf8(head).ok()
}

fn answer(mut s: TcpStream, node: &OnceLock<Arc<NodeHandle>>, counters: &Mutex<EventCounters>) {
    let _ = s.set_write_timeout(Some(READ_TIMEOUT));
    let (status, body) = match read_head(&mut s) {
        None => ("400 Bad Request", "bad request\n".to_string()),
        Some(head) => {
            let mut first = head.lines().next().unwrap_or("").split_whitespace();
            match (first.next(), first.next()) {
                (Some("GET"), Some("/metrics")) => match node.get() {
                    Some(n) => ("200 OK", render(n, &counters.lock())),
                    None => (
                        "503 Service Unavailable",
                        "the node is not running yet\n".into(),
                    ),
                },
                (Some("GET"), Some(_)) => ("404 Not Found", "not found: try /metrics\n".into()),
                _ => ("405 Method Not Allowed", "GET /metrics only\n".into()),
            }
        }
    };
    let resp = format!(
        "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Both);
}
