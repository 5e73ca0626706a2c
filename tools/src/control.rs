//! The control protocol of `sgmpd`: JSON lines over a Unix socket.
//!
//! A client writes one request line, `{"cmd":"status"}` (`status`, `view`, `members`,
//! `system-view`, `leave`, `metrics`) or `{"cmd":"fault","args":["loss","0.2"]}` (`["dup","0.1"]`,
//! `["reorder","0.2","5"]` (probability, largest extra delay in ms),
//! `["partition","n2,n3"]`, `["heal"]` (partitions only), `["clear"]` (everything)),
//! or `{"cmd":"tags","args":["role=db","-zone"]}` (show the node's tags without
//! arguments; `KEY=VALUE` sets, `-KEY` deletes: a view change through the mgr),
//! and reads one response line: a JSON object with `"ok": true` and the answer, or
//! `"ok": false` and `"error"`.
//!
//! Fault commands are refused unless the daemon runs with `--fault-injection`.
//!
//! Where the socket is: `sgmpd --control PATH`, or by default
//! [`default_control_path`]`(ID)`: `$XDG_RUNTIME_DIR/sgmp/ID.sock`, or
//! `/run/sgmp/ID.sock` without `XDG_RUNTIME_DIR`. `sgmpctl` takes `--control PATH`,
//! else `$SGMP_CONTROL`, else the only live socket in [`default_control_dir`]
//! ([`find_control_socket`]).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The environment variable naming the control socket for `sgmpctl`.
pub const CONTROL_ENV: &str = "SGMP_CONTROL";

/// The directory of the daemons' default control sockets: `$XDG_RUNTIME_DIR/sgmp`, or
/// `/run/sgmp` when `XDG_RUNTIME_DIR` is unset or empty.
pub fn default_control_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("sgmp"),
        _ => PathBuf::from("/run/sgmp"),
    }
}

/// The default control socket of the daemon named `id`: `default_control_dir()/ID.sock`.
pub fn default_control_path(id: &str) -> PathBuf {
    default_control_dir().join(format!("{id}.sock"))
}

/// The control socket to use when none is named: the only socket in
/// [`default_control_dir`] that a daemon is listening on.
pub fn find_control_socket() -> Result<PathBuf, ControlError> {
    let dir = default_control_dir();
    let entries = std::fs::read_dir(&dir).map_err(|e| ControlError::NoSocket {
        message: format!("cannot read {}: {e}", dir.display()),
    })?;
    let mut live: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sock"))
        .filter(|p| UnixStream::connect(p).is_ok())
        .collect();
    live.sort();
    match live.len() {
        1 => Ok(live.remove(0)),
        0 => Err(ControlError::NoSocket {
            message: format!("no running sgmpd has a socket in {}", dir.display()),
        }),
        _ => Err(ControlError::NoSocket {
            message: format!(
                "{} daemons have sockets in {} ({}): choose one",
                live.len(),
                dir.display(),
                live.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// A control request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `status`, `view`, `leave`, `metrics` or `fault`.
    pub cmd: String,
    /// Arguments (for `fault` and `tags`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The socket could not be reached.
    #[error("cannot connect to control socket {path}: {source}")]
    Connect {
        /// The socket path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No socket was named and none could be found.
    #[error("{message}; give --control PATH or set SGMP_CONTROL")]
    NoSocket {
        /// What was looked for.
        message: String,
    },
    /// Reading or writing failed.
    #[error("control socket I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon's answer is not JSON.
    #[error("bad answer from the daemon: {0}")]
    BadAnswer(String),
    /// The daemon refused the request.
    #[error("{0}")]
    Refused(String),
}

/// Sends one request and returns the daemon's answer (`"ok": true`), or its error.
pub fn request(path: &Path, req: &Request, timeout: Duration) -> Result<Value, ControlError> {
    let mut s = UnixStream::connect(path).map_err(|source| ControlError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut line =
        serde_json::to_string(req).map_err(|e| ControlError::BadAnswer(e.to_string()))?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    let v: Value = serde_json::from_str(answer.trim())
        .map_err(|e| ControlError::BadAnswer(format!("{e}: {answer:?}")))?;
    if v.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(v)
    } else {
        Err(ControlError::Refused(
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("request failed")
                .to_string(),
        ))
    }
}
