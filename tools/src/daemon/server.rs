//! The control socket: JSON lines over a Unix socket (`crate::control`), served
//! concurrently to at most [`MAX_CONNECTIONS`] clients, each request line at most
//! [`MAX_REQUEST_BYTES`] long and read within [`READ_TIMEOUT`] per read and
//! [`REQUEST_DEADLINE`] in all: a slow or oversized client costs one bounded thread and
//! a bounded buffer, and never delays the others.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sgmp_membership::node::{FaultCommand, NodeHandle};

use super::DaemonError;
use crate::control::Request;

/// Most connections served at once; one more is answered "busy" and closed.
pub const MAX_CONNECTIONS: usize = 16;
/// Longest request line, bytes; a longer one is answered with an error and closed.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Longest wait for the next bytes of a request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest time a client may take to send its whole request line.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// `members`: every process this node knows of, in the spirit of `serf members`: the
/// members of its view (`member`, or `suspected` when this node believes it faulty;
/// `mgr` marks the initiator it follows), the processes removed from its views
/// (`left` or `excluded`), this node itself once it left or was excluded, and the
/// membership service's clients (`client`). `tags`: a view member's tags as agreed in
/// the view (empty for the others).
fn members(node: &NodeHandle) -> Value {
    use sgmp_membership::node::NodePhase;
    let s = node.status();
    let mut out: Vec<Value> = Vec::new();
    let row = |name: &str, pid: String, addr: String, state: &str, rank: Value, mgr: bool| {
        let id = s.view.members.iter().find(|m| m.id.to_string() == pid);
        let tags = id.map_or_else(|| json!({}), |m| tags_json(s.view.tags_of(m.id)));
        json!({"name": name, "pid": pid, "addr": addr, "state": state, "rank": rank,
               "mgr": mgr, "tags": tags})
    };
    let gone = match s.phase {
        NodePhase::Left => Some("left"),
        NodePhase::Excluded => Some("excluded"),
        _ => None,
    };
    for (i, m) in s.view.members.iter().enumerate() {
        let state = if m.id == s.me && gone.is_some() {
            gone.unwrap_or_default()
        } else if s.faulty.contains(&m.id) {
            "suspected"
        } else {
            "member"
        };
        out.push(row(
            m.id.node.as_str(),
            m.id.to_string(),
            m.addr.to_string(),
            state,
            json!(i),
            s.leader == Some(m.id),
        ));
    }
    if let Some(state) = gone {
        if !s.view.members.iter().any(|m| m.id == s.me) {
            out.push(row(
                s.me.node.as_str(),
                s.me.to_string(),
                s.addr.to_string(),
                state,
                Value::Null,
                false,
            ));
        }
    }
    // The newest departure of each process, unless it is (again) in the view.
    for d in s.departed.iter().rev() {
        let pid = d.member.id.to_string();
        if s.view.members.iter().any(|m| m.id == d.member.id) || out.iter().any(|r| r["pid"] == pid)
        {
            continue;
        }
        out.push(row(
            d.member.id.node.as_str(),
            pid,
            d.member.addr.to_string(),
            d.how.as_str(),
            Value::Null,
            false,
        ));
    }
    if let Ok(Some(v)) = node.system_view(REPLY_TIMEOUT) {
        let mut clients: Vec<Value> = v
            .clients
            .iter()
            .map(|(n, c)| {
                row(
                    n.as_str(),
                    format!("{n}#{}", c.incarnation),
                    c.addr.to_string(),
                    "client",
                    Value::Null,
                    false,
                )
            })
            .collect();
        clients.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        out.extend(clients);
    }
    json!({"ok": true, "node": s.me.to_string(), "version": s.view.version, "members": out})
}

/// Longest wait for the node's loop to answer a request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest wait of a request for the node to start (the socket is bound first).
pub const NODE_START_WAIT: Duration = Duration::from_secs(2);

/// What the control server allows.
#[derive(Clone, Copy, Debug, Default)]
pub struct ControlOptions {
    /// `fault` commands are accepted (`sgmpd --fault-injection`).
    pub fault_injection: bool,
}

/// Binds the control socket with mode 0600 (a stale socket file is replaced; a live
/// one is an error). Creates the socket's directory (mode 0700) if missing.
pub(super) fn bind_control(path: &Path) -> Result<UnixListener, DaemonError> {
    let err = |source| DaemonError::Control {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(err)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
    }
    // Through a symlink to the socket, as `connect` and `bind` see it.
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.file_type().is_socket() {
            // A mistyped path (the config file, the event log): never removed.
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is there (give the control socket a path of its own)",
            )));
        }
        match UnixStream::connect(path) {
            Ok(_) => {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "another daemon is listening on it",
                )))
            }
            // Nobody listens: a stale socket of a daemon that died, replaced.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path).map_err(err)?;
            }
            // Not ours to judge (no permission to connect: maybe a live daemon of
            // another user): left in place.
            Err(e) => return Err(err(e)),
        }
    }
    // Created with no group or other permissions from the start, then set exactly.
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(path);
    // SAFETY: as above, restoring the previous mask.
    unsafe { libc::umask(old) };
    let l = l.map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
    Ok(l)
}

/// Decrements the count of active connections when a connection's thread ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accepts connections until the process exits; each is served on its own thread
/// (at most [`MAX_CONNECTIONS`] at once). Before the node has started, requests are
/// answered with an error.
pub(super) fn serve(
    l: UnixListener,
    node: Arc<OnceLock<Arc<NodeHandle>>>,
    stop: Arc<AtomicBool>,
    opts: ControlOptions,
    path: PathBuf,
) {
    let active = Arc::new(AtomicUsize::new(0));
    for conn in l.incoming() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut s = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors, say: back off instead of spinning.
                tracing::warn!("control socket: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::AcqRel);
            let _ = s.set_write_timeout(Some(Duration::from_millis(100)));
            let answer = json!({"ok": false, "error": format!(
                "busy: {MAX_CONNECTIONS} control connections already open; try again")});
            let _ = s.write_all(format!("{answer}\n").as_bytes());
            continue;
        }
        let slot = Slot(Arc::clone(&active));
        let node = Arc::clone(&node);
        let stop = Arc::clone(&stop);
        let path = path.clone();
        let spawned = std::thread::Builder::new()
            .name("sgmpd-control-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve_one(s, &node, &stop, opts, &path);
            });
        if let Err(e) = spawned {
            tracing::warn!("control socket: cannot start a connection thread: {e}");
        }
    }
}

/// Why a request line could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// Longer than [`MAX_REQUEST_BYTES`].
    #[error("request longer than {MAX_REQUEST_BYTES} bytes")]
    TooLong,
    /// Not complete within [`READ_TIMEOUT`] / [`REQUEST_DEADLINE`].
    #[error("request not received in time")]
    Timeout,
    /// The client closed the connection before sending anything.
    #[error("connection closed")]
    Closed,
    /// Another I/O error.
    #[error("{0}")]
    Io(std::io::Error),
}

/// Reads one request line (without its newline), within the size and time bounds.
pub(super) fn read_request(s: &mut UnixStream) -> Result<Vec<u8>, ReadError> {
    let deadline = Instant::now() + REQUEST_DEADLINE;
    let mut line = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        // Each read waits at most READ_TIMEOUT of silence, and never past the
        // request's deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Timeout);
        }
        s.set_read_timeout(Some(left.min(READ_TIMEOUT)))
            .map_err(ReadError::Io)?;
        let n = match s.read(&mut chunk) {
            Ok(0) if line.is_empty() => return Err(ReadError::Closed),
            Ok(0) => return Ok(line),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Timeout)
            }
            Err(e) => return Err(ReadError::Io(e)),
        };
        let got = &chunk[..n];
        let end = got.iter().position(|&b| b == b'\n');
        let take = end.unwrap_or(n);
        if line.len() + take > MAX_REQUEST_BYTES {
            return Err(ReadError::TooLong);
        }
        line.extend_from_slice(&got[..take]);
        if end.is_some() {
            return Ok(line);
        }
    }
}

/// The node, once started: the socket is bound before the node starts, so a request
/// that arrives in between waits for it (up to [`NODE_START_WAIT`]).
fn wait_for_node(node: &OnceLock<Arc<NodeHandle>>) -> Option<&Arc<NodeHandle>> {
    let until = Instant::now() + NODE_START_WAIT;
    loop {
        if let Some(n) = node.get() {
            return Some(n);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn serve_one(
    mut s: UnixStream,
    node: &OnceLock<Arc<NodeHandle>>,
    stop: &AtomicBool,
    opts: ControlOptions,
    path: &Path,
) {
    let _ = s.set_write_timeout(Some(READ_TIMEOUT));
    let (answer, exit) = match read_request(&mut s) {
        Err(ReadError::Closed) => return,
        Err(e) => (
            json!({"ok": false, "error": format!("bad request: {e}")}),
            false,
        ),
        Ok(line) => match serde_json::from_slice::<Request>(line.trim_ascii()) {
            Err(e) => (
                json!({"ok": false, "error": format!("bad request: {e}")}),
                false,
            ),
            Ok(req) => match wait_for_node(node) {
                Some(n) => handle(n, &req, opts),
                None => (
                    json!({"ok": false, "error": "the node is not running yet (client mode, or starting)"}),
                    false,
                ),
            },
        },
    };
    let _ = s.write_all(format!("{answer}\n").as_bytes());
    let _ = s.shutdown(std::net::Shutdown::Both);
    if exit {
        tracing::info!(control = %path.display(), "left through the control socket: exiting");
        stop.store(true, Ordering::Relaxed);
    }
}

/// A member's tags as a JSON object.
fn tags_json(t: sgmp_membership::Tags<'_>) -> Value {
    Value::Object(t.iter().map(|(k, v)| (k.to_string(), json!(v))).collect())
}

/// `tags`: without arguments, the tags this node wants and the ones its view shows;
/// with `KEY=VALUE` (set) and `-KEY` (delete) arguments, changes the wanted tags (a view
/// change through the mgr).
fn tags(node: &NodeHandle, args: &[String]) -> Value {
    let s = node.status();
    let mut t = s.tags.clone();
    if !args.is_empty() {
        for a in args {
            let r = match a.strip_prefix('-') {
                // A deletion names a valid key (a typo is an error, not a no-op).
                Some(k) => sgmp_membership::TagSet::new().insert(k, "").map(|()| {
                    t.remove(k);
                }),
                None => t.insert_pair(a),
            };
            if let Err(e) = r {
                return json!({"ok": false, "error": e.to_string()});
            }
        }
        if let Err(e) = node.set_tags(&t, REPLY_TIMEOUT) {
            return json!({"ok": false, "error": e.to_string()});
        }
    }
    let wanted: serde_json::Map<String, Value> =
        t.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"ok": true, "node": s.me.to_string(), "version": s.view.version,
           "tags": wanted, "agreed": tags_json(s.view.tags_of(s.me))})
}

fn pids<'a>(it: impl Iterator<Item = &'a sgmp_membership::ProcessId>) -> Vec<String> {
    it.map(|p| p.to_string()).collect()
}

/// Answers one request; the flag asks the daemon to exit (after `leave`). `fault`
/// commands are refused unless `opts.fault_injection`.
pub fn handle(node: &NodeHandle, req: &Request, opts: ControlOptions) -> (Value, bool) {
    match req.cmd.as_str() {
        "status" => {
            let s = node.status();
            (
                json!({
                    "ok": true,
                    "node": s.me.to_string(),
                    "addr": s.addr.to_string(),
                    "phase": s.phase.as_str(),
                    "version": s.view.version,
                    "members": pids(s.view.members.iter().map(|m| &m.id)),
                    "mgr": s.view.members.first().map(|m| m.id.to_string()),
                    "leader": s.leader.map(|p| p.to_string()),
                    "is_mgr": s.is_mgr,
                    "faulty": pids(s.faulty.iter()),
                    "rejoins": s.rejoins,
                    "view_ts_us": s.view_ts_us,
                    "system_version": s.system_version,
                    "system_size": s.system_size,
                    "clients": s.clients,
                    "recovery": s.recovery.as_ref().map(|r| json!({
                        "installed": r.installed,
                        "target": r.target,
                        "recovering": r.recovering,
                        "waiting_for": r.waiting_for,
                        "need": r.need,
                        "leading": r.leading,
                    })),
                }),
                false,
            )
        }
        "system-view" => match node.system_view(REPLY_TIMEOUT) {
            Ok(Some(v)) => {
                let mut clients: Vec<Value> = v
                    .clients
                    .iter()
                    .map(|(n, c)| {
                        json!({"pid": format!("{n}#{}", c.incarnation), "addr": c.addr.to_string(),
                               "core_eligible": c.core_eligible})
                    })
                    .collect();
                clients.sort_by(|a, b| a["pid"].as_str().cmp(&b["pid"].as_str()));
                let core: Vec<Value> = v
                    .core
                    .iter()
                    .map(|m| json!({"pid": m.id.to_string(), "addr": m.addr.to_string()}))
                    .collect();
                (
                    json!({"ok": true, "version": v.version, "size": v.size(),
                           "core": core, "clients": clients}),
                    false,
                )
            }
            Ok(None) => (
                json!({"ok": false, "error": "no system view here (service off, not a member, or not synchronized yet)"}),
                false,
            ),
            Err(e) => (json!({"ok": false, "error": e.to_string()}), false),
        },
        "view" => {
            let s = node.status();
            let members: Vec<Value> = s
                .view
                .members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    json!({"rank": i, "pid": m.id.to_string(), "addr": m.addr.to_string(),
                           "mgr": s.leader == Some(m.id), "tags": tags_json(s.view.tags_of(m.id))})
                })
                .collect();
            (
                json!({"ok": true, "node": s.me.to_string(), "version": s.view.version,
                       "members": members, "view_ts_us": s.view_ts_us,
                       "mgr": s.leader.map(|l| l.to_string())}),
                false,
            )
        }
        "members" => (members(node), false),
        "tags" => (tags(node, &req.args), false),
        "metrics" => {
            let m = node.metrics();
            let e = &m.engine;
            let t = &m.transport;
            let by_reason: serde_json::Map<String, Value> = sgmp_transport::DropReason::ALL
                .iter()
                .map(|r| (r.as_str().to_string(), json!(t.dropped(*r))))
                .collect();
            (
                json!({
                    "ok": true,
                    "views_installed": m.views_installed,
                    "rejoins": m.rejoins,
                    "engine": {
                        "protocol_sent": e.protocol_sent(),
                        "received": e.received.iter().sum::<u64>(),
                        "decode_errors": e.decode_errors,
                        "dropped_from_faulty": e.dropped_from_faulty,
                        "ignored": e.ignored,
                        "joins_refused": e.joins_refused,
                        "reconfigurations": e.reconfigurations,
                        "client_ops_committed": e.client_ops_committed,
                        "client_ops_dropped": e.client_ops_dropped,
                    },
                    "service": {
                        "hellos": m.service.hellos,
                        "registrations": m.service.registrations,
                        "removals_reported": m.service.removals_reported,
                        "delta_datagrams": m.service.delta_datagrams,
                        "snapshot_datagrams": m.service.snapshot_datagrams,
                        "syncs": m.service.syncs,
                        "promotions": m.service.promotions,
                    },
                    "transport": {
                        "datagrams_in": t.datagrams_in,
                        "datagrams_out": t.datagrams_out,
                        "messages_sent": t.messages_sent,
                        "messages_delivered": t.messages_delivered,
                        "retransmissions": t.retransmissions,
                        "unreachable_events": t.unreachable_events,
                        "drops": t.total_drops(),
                        "probes_sent": t.probes_sent,
                        "probes_received": t.probes_received,
                        "drops_bad_tag": t.dropped(sgmp_transport::DropReason::BadTag),
                        "drops_unauthenticated": t.dropped(sgmp_transport::DropReason::Unauthenticated),
                        "drops_by_reason": by_reason,
                    },
                    "driver": {
                        "fault_dropped": m.driver.fault_dropped,
                        "send_errors": m.driver.send_errors,
                        "poll_us": m.driver.poll_us,
                        "pings_sent": m.driver.pings_sent,
                        "pings_received": m.driver.pings_received,
                    },
                    "backlogged": m.backlogged,
                    "backlog_len": m.backlog_len,
                    "backlog_overflow": m.backlog_overflow,
                    "send_refused": m.send_refused,
                    "events_dropped": m.events_dropped,
                    "event_log_lost": m.event_log_lost,
                    "yields_before_publish": m.yields_before_publish,
                    "events_held": m.events_held,
                }),
                false,
            )
        }
        "leave" => {
            let left = node.leave(Duration::from_secs(3));
            if let Err(e) = &left {
                tracing::warn!("leaving the group: {e}");
            }
            let s = node.status();
            (
                json!({"ok": true, "node": s.me.to_string(), "phase": s.phase.as_str()}),
                true,
            )
        }
        "reopen-log" => match node.reopen_event_log(REPLY_TIMEOUT) {
            Ok(reopened) => (json!({"ok": true, "reopened": reopened}), false),
            Err(e) => (json!({"ok": false, "error": e.to_string()}), false),
        },
        "fault" if !opts.fault_injection => (
            json!({"ok": false, "error": "fault injection is off: start sgmpd with \
                   --fault-injection (or fault_injection = true in the config) to accept \
                   fault commands"}),
            false,
        ),
        "fault" => {
            let cmd = match req.args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
                ["loss", p] => match p.parse::<f64>() {
                    Ok(p) => Ok(FaultCommand::Loss(p)),
                    Err(_) => Err(format!("bad loss probability {p:?}")),
                },
                ["partition", peers] => Ok(FaultCommand::Partition(
                    peers
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )),
                ["cut", peers] => Ok(FaultCommand::Cut(
                    peers
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )),
                ["dup", p] => match p.parse::<f64>() {
                    Ok(p) => Ok(FaultCommand::Duplicate(p)),
                    Err(_) => Err(format!("bad duplication probability {p:?}")),
                },
                ["reorder", p] | ["reorder", p, _] => {
                    let ms = req.args.get(2).map_or(Ok(5), |m| m.parse::<u64>());
                    match (p.parse::<f64>(), ms) {
                        (Ok(p), Ok(ms)) => Ok(FaultCommand::Reorder {
                            p,
                            max_delay_us: ms.saturating_mul(1000),
                        }),
                        _ => Err(format!("bad reordering {:?}", &req.args[1..])),
                    }
                }
                ["heal"] => Ok(FaultCommand::Heal),
                ["clear"] => Ok(FaultCommand::Clear),
                _ => Err(
                    "usage: fault loss P | fault dup P | fault reorder P [MAX_MS] | \
                          fault partition PEER,... | fault cut PEER,... | fault heal | fault clear"
                        .into(),
                ),
            };
            match cmd.and_then(|c| node.fault(c, REPLY_TIMEOUT).map_err(|e| e.to_string())) {
                Ok(msg) => (json!({"ok": true, "result": msg}), false),
                Err(e) => (json!({"ok": false, "error": e}), false),
            }
        }
        other => (
            json!({"ok": false, "error": format!("unknown command {other:?} (status, view, members, system-view, leave, metrics, tags, reopen-log, fault)")}),
            false,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sgmp-ctl-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A mistyped `--control` naming a file that is not a socket is an error, and the
    /// file stays; a stale socket is replaced; a live one is an error.
    #[test]
    fn only_a_stale_socket_is_replaced() {
        let dir = temp("bind");
        let file = dir.join("n1.toml");
        std::fs::write(&file, "id = \"n1\"\n").unwrap();
        let e = bind_control(&file).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "id = \"n1\"\n");

        let sock = dir.join("n1.sock");
        drop(UnixListener::bind(&sock).unwrap());
        assert!(sock.exists(), "a dead listener leaves its file");
        let live = bind_control(&sock).expect("a stale socket is replaced");
        let e = bind_control(&sock).unwrap_err().to_string();
        assert!(e.contains("another daemon"), "{e}");
        drop(live);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
