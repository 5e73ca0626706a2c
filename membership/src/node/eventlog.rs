//! The JSON-lines event log: one object per line, flushed per line.
//!
//! ```text
//! {"ts_us":U64,"node":"PID","kind":"view","version":U64,"members":["PID",...]}
//! {"ts_us":U64,"node":"PID","kind":"excluded"}
//! {"ts_us":U64,"node":"PID","kind":"suspect","peer":"PID","cause":"observed"}
//! ```
//!
//! `ts_us` is microseconds since the Unix epoch; a PID is `NAME#INCARNATION`;
//! `members` is in rank order, most senior first. Further kinds: `start` (with `addr`:
//! the process began, cold or rejoining), `joined` (with `version`), `reconfiguring`
//! (with `version`), `left` (a graceful leave; the process is out, like `excluded`),
//! `submitted` (with `version`: as initiator, the process submitted the update forming
//! that view).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::view::Member;
use crate::ProcessId;

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// An append-only JSON-lines event log. Write errors never stop the node: the records
/// are counted as lost ([`EventLog::lost`]), reported through `tracing` once per
/// outage (and again when writing works again), and a line a failed write may have
/// cut short is ended before the next record, so that every record stays a line.
#[derive(Debug)]
pub struct EventLog {
    file: File,
    /// Where the log was opened: [`EventLog::reopen`] opens it again there.
    path: PathBuf,
    /// Records lost to write errors, in all.
    lost: u64,
    /// Lost since the last record written (0: writing works).
    lost_now: u64,
    /// The file may end in part of a line (a failed write, or a crash while writing):
    /// the next record starts on a new line.
    broken: bool,
    /// When the input behind the records being written arrived (µs since the epoch):
    /// their `ts_us`. `None`: the time of writing.
    input_us: Option<u64>,
}

impl EventLog {
    /// Opens (creating or appending to) the log at `path`.
    pub fn open(path: &Path) -> io::Result<EventLog> {
        let file = open_for_append(path)?;
        let broken = ends_mid_line(&file);
        Ok(EventLog {
            file,
            path: path.to_path_buf(),
            lost: 0,
            lost_now: 0,
            broken,
            input_us: None,
        })
    }

    /// Opens the log's path again (creating the file if it is gone) and writes the
    /// records from now on there: after `logrotate` renamed the file, the daemon's
    /// SIGHUP or `sgmpctl reopen-log` moves the log to a new file at the same path.
    /// If the path cannot be opened, the log stays on the file it had (records are
    /// not lost to a failed rotation) and the error says why. Either outcome is
    /// logged through `tracing`.
    pub fn reopen(&mut self) -> io::Result<()> {
        match open_for_append(&self.path) {
            Ok(file) => {
                self.broken = ends_mid_line(&file);
                self.file = file;
                tracing::info!(path = %self.path.display(), "event log reopened");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    "cannot reopen the event log {}: {e}; still writing to the old file",
                    self.path.display()
                );
                Err(e)
            }
        }
    }

    /// The path the log was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records lost to write errors since the log was opened.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Stamps the records written from now on with `us` (µs since the epoch: the
    /// arrival of the input that caused them), or with the time of writing (`None`).
    /// The node's loop stamps a step's records with its input's arrival, as it stamps
    /// the events it hands subscribers, so that a record's time does not depend on when
    /// the loop got round to writing it.
    pub fn stamp_inputs_at(&mut self, us: Option<u64>) {
        self.input_us = us;
    }

    /// Writes `{"ts_us":..,"node":..,"kind":..<extra>}`; `extra` is either empty or
    /// starts with a comma.
    fn write(&mut self, me: ProcessId, kind: &str, extra: &str) {
        let line = format!(
            "{{\"ts_us\":{},\"node\":{},\"kind\":{}{}}}\n",
            self.input_us.unwrap_or_else(unix_micros),
            js(&me.to_string()),
            js(kind),
            extra
        );
        // One write per line (O_APPEND): lines are never interleaved; a write that
        // fails part-way (a full disk) may leave part of one, ended by the next write.
        let res = if self.broken {
            self.file.write_all(format!("\n{line}").as_bytes())
        } else {
            self.file.write_all(line.as_bytes())
        };
        match res {
            Ok(()) => {
                if self.lost_now > 0 {
                    tracing::warn!(lost = self.lost_now, "event log writing again");
                    self.lost_now = 0;
                }
                self.broken = false;
            }
            Err(e) => {
                if self.lost_now == 0 {
                    tracing::error!(
                        "event log write failed (records are lost until it works again): {e}"
                    );
                }
                self.lost += 1;
                self.lost_now += 1;
                self.broken = true;
            }
        }
    }

    /// A view was installed.
    /// When some member has tags, the record has `"tags"`: an object from process id to
    /// that member's tags (`{"n1#5":{"role":"db"}}`).
    pub fn view(
        &mut self,
        me: ProcessId,
        version: u64,
        members: &[Member],
        tags: &crate::tags::TagTable,
    ) {
        let list: Vec<String> = members.iter().map(|m| js(&m.id.to_string())).collect();
        let mut extra = format!(",\"version\":{version},\"members\":[{}]", list.join(","));
        if !tags.is_empty() {
            let mut obj = serde_json::Map::new();
            for m in members {
                if let Some(t) = tags.get(m.id) {
                    let kv: serde_json::Map<String, serde_json::Value> =
                        t.iter().map(|(k, v)| (k.to_string(), v.into())).collect();
                    obj.insert(m.id.to_string(), kv.into());
                }
            }
            extra.push_str(",\"tags\":");
            extra.push_str(&serde_json::Value::Object(obj).to_string());
        }
        self.write(me, "view", &extra);
    }

    /// This process was excluded.
    pub fn excluded(&mut self, me: ProcessId) {
        self.write(me, "excluded", "");
    }

    /// This process now believes `peer` faulty, and how it came to (`cause`:
    /// `observed`, `replaced`, `leaving`, `reported`, `removed`).
    pub fn suspect(&mut self, me: ProcessId, peer: ProcessId, cause: crate::SuspicionCause) {
        self.write(
            me,
            "suspect",
            &format!(
                ",\"peer\":{},\"cause\":\"{}\"",
                js(&peer.to_string()),
                cause.as_str()
            ),
        );
    }

    /// The process started (cold, or as a new incarnation).
    pub fn start(&mut self, me: ProcessId, addr: SocketAddr) {
        self.write(me, "start", &format!(",\"addr\":{}", js(&addr.to_string())));
    }

    /// The process joined the group at `version`.
    pub fn joined(&mut self, me: ProcessId, version: u64) {
        self.write(me, "joined", &format!(",\"version\":{version}"));
    }

    /// The process started a reconfiguration from view `version`.
    pub fn reconfiguring(&mut self, me: ProcessId, version: u64) {
        self.write(me, "reconfiguring", &format!(",\"version\":{version}"));
    }

    /// As initiator, the process submitted the update forming view `version`.
    pub fn submitted(&mut self, me: ProcessId, version: u64) {
        self.write(me, "submitted", &format!(",\"version\":{version}"));
    }

    /// A system view (membership service) was applied: version, what it added and
    /// removed, and its size.
    pub fn system_view(&mut self, me: ProcessId, change: &crate::service::SystemChange) {
        let list = |v: &[ProcessId]| {
            v.iter()
                .map(|p| js(&p.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let extra = format!(
            ",\"version\":{},\"added\":[{}],\"removed\":[{}],\"size\":{}",
            change.version,
            list(&change.added),
            list(&change.removed),
            change.size
        );
        self.write(me, "system_view", &extra);
    }

    /// The process asked to leave (it acknowledges its own removal, then logs `left`,
    /// D9): from now on its removal needs no one's suspicion (GMP-1).
    pub fn leaving(&mut self, me: ProcessId) {
        self.write(me, "leaving", "");
    }

    /// The process left the group gracefully.
    pub fn left(&mut self, me: ProcessId) {
        self.write(me, "left", "");
    }

    /// A recovery from total failure made the process a member of view `version`.
    pub fn recovered(&mut self, me: ProcessId, version: u64) {
        self.write(me, "recovered", &format!(",\"version\":{version}"));
    }

    /// The durable state could not be saved; the process stopped.
    pub fn storage_failed(&mut self, me: ProcessId, error: &str) {
        self.write(me, "storage_failed", &format!(",\"error\":{}", js(error)));
    }
}

/// Opens `path` for appending records (creating it), readable to check its last byte.
fn open_for_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(path)
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"?\"".into())
}

/// Whether `file` is not empty and does not end with a newline (a crash or a full disk
/// cut its last record short).
fn ends_mid_line(file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        let Ok(len) = file.metadata().map(|m| m.len()) else {
            return false;
        };
        let mut last = [0u8; 1];
        len > 0 && file.read_at(&mut last, len - 1).is_ok() && last[0] != b'\n'
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// A log whose last line was cut short (a crash, a full disk) gets its next record
    /// on a line of its own; writes that fail (`/dev/full`) are counted as lost.
    #[test]
    fn a_cut_line_is_ended_and_lost_records_are_counted() {
        let dir = std::env::temp_dir().join(format!("sgmp-evlog-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        std::fs::write(&path, "{\"ts_us\":1,\"node\":\"n1#1\",\"ki").unwrap();
        let me = ProcessId::named("n1", 1);
        let mut log = EventLog::open(&path).unwrap();
        log.submitted(me, 7);
        log.submitted(me, 8);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for l in &lines[1..] {
            serde_json::from_str::<Value>(l).unwrap();
        }
        assert_eq!(log.lost(), 0);
        let _ = std::fs::remove_dir_all(&dir);
        if let Ok(mut full) = EventLog::open(Path::new("/dev/full")) {
            full.submitted(me, 1);
            full.submitted(me, 2);
            assert_eq!(full.lost(), 2);
        }
    }

    /// After a rotation (the file renamed), a reopen sends the next records to a new
    /// file at the path; a reopen that cannot open the path keeps the old file.
    #[test]
    fn a_reopen_after_a_rename_writes_to_a_new_file_and_a_failed_one_keeps_the_old() {
        let dir = std::env::temp_dir().join(format!("sgmp-evlog-reopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let rotated = dir.join("events.jsonl.1");
        let me = ProcessId::named("n1", 1);
        let mut log = EventLog::open(&path).unwrap();
        log.submitted(me, 1);
        std::fs::rename(&path, &rotated).unwrap();
        log.submitted(me, 2);
        log.reopen().unwrap();
        assert!(path.is_file(), "the reopen makes the file at once");
        log.submitted(me, 3);
        let versions = |p: &Path| -> Vec<u64> {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()["version"]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        assert_eq!(versions(&rotated), [1, 2]);
        assert_eq!(versions(&path), [3]);
        // The directory gone: the reopen fails, the records go on to the open file.
        std::fs::rename(&dir, dir.with_extension("moved")).unwrap();
        let e = log.reopen().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        log.submitted(me, 4);
        assert_eq!(log.lost(), 0);
        assert_eq!(
            versions(&dir.with_extension("moved").join("events.jsonl")),
            [3, 4]
        );
        assert_eq!(log.path(), path);
        let _ = std::fs::remove_dir_all(dir.with_extension("moved"));
    }

    /// Records carry the stamp the loop gives them (its input's arrival), and the time
    /// of writing once it takes the stamp back.
    #[test]
    fn records_carry_the_input_stamp_while_one_is_set() {
        let dir = std::env::temp_dir().join(format!("sgmp-evlog-stamp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let me = ProcessId::named("n1", 1);
        let mut log = EventLog::open(&path).unwrap();
        log.stamp_inputs_at(Some(123));
        log.submitted(me, 7);
        log.stamp_inputs_at(None);
        let before = unix_micros();
        log.submitted(me, 8);
        let text = std::fs::read_to_string(&path).unwrap();
        let ts: Vec<u64> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["ts_us"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ts[0], 123);
        assert!(ts[1] >= before, "{ts:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lines_have_the_documented_shape() {
        let dir = std::env::temp_dir().join(format!("sgmp-evlog-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let me = ProcessId::named("a", 7);
        let other = ProcessId::named("b", 1);
        let addr = SocketAddr::from(([127, 0, 0, 1], 1));
        {
            let mut log = EventLog::open(&dir).unwrap();
            log.view(
                me,
                3,
                &[Member { id: me, addr }, Member { id: other, addr }],
                &crate::tags::TagTable::default(),
            );
            let mut tags = crate::tags::TagTable::with_capacity(2, 64);
            let mut db = crate::TagSet::new();
            db.insert("role", "db").unwrap();
            tags.set(other, &db.encode());
            log.view(me, 4, &[Member { id: other, addr }], &tags);
            log.suspect(me, other, crate::SuspicionCause::Observed);
            log.excluded(me);
        }
        let text = std::fs::read_to_string(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].get("tags").is_none(), "no tags, no field");
        assert_eq!(lines[1]["tags"], json!({"b#1": {"role": "db"}}));
        let lines = [lines[0].clone(), lines[2].clone(), lines[3].clone()];
        assert_eq!(lines[0]["kind"], "view");
        assert_eq!(lines[0]["node"], "a#7");
        assert_eq!(lines[0]["version"], 3);
        assert_eq!(lines[0]["members"], json!(["a#7", "b#1"]));
        assert!(lines[0]["ts_us"].as_u64().unwrap() > 1_600_000_000_000_000);
        assert_eq!(lines[1]["peer"], "b#1");
        assert_eq!(lines[1]["cause"], "observed");
        assert_eq!(lines[2].as_object().unwrap().len(), 3);
        assert!(text.lines().nth(3).unwrap().starts_with("{\"ts_us\":"));
        assert!(text
            .lines()
            .nth(3)
            .unwrap()
            .ends_with(",\"node\":\"a#7\",\"kind\":\"excluded\"}"));
    }
}
