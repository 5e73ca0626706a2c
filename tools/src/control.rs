//! The control protocol of `sgmpd`: JSON lines over a Unix socket.
//!
//! A client writes one request line, `{"cmd":"status"}` (`status`, `view`, `leave`,
//! `metrics`) or `{"cmd":"fault","args":["loss","0.2"]}` (`["dup","0.1"]`,
//! `["reorder","0.2","5"]` (probability, largest extra delay in ms),
//! `["partition","n2,n3"]`, `["heal"]` (partitions only), `["clear"]` (everything)),
//! and reads one response line: a JSON object with `"ok": true` and the answer, or
//! `"ok": false` and `"error"`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A control request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `status`, `view`, `leave`, `metrics` or `fault`.
    pub cmd: String,
    /// Arguments (for `fault`).
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
