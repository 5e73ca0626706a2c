//! The JSON-lines event log: one object per line, flushed per line.
//!
//! ```text
//! {"ts_us":U64,"mono_us":U64,"node":"PID","kind":"view","version":U64,"members":["PID",...]}
//! {"ts_us":U64,"mono_us":U64,"node":"PID","kind":"excluded"}
//! {"ts_us":U64,"mono_us":U64,"node":"PID","kind":"suspect","peer":"PID","cause":"observed"}
//! ```
//!
//! `ts_us` is microseconds since the Unix epoch (the wall clock, which NTP may step);
//! `mono_us`, the same moment on the host's `CLOCK_MONOTONIC` in microseconds (one
//! clock for every process of a host, never stepped: what comparisons across the logs
//! of one host should use; absent where that clock cannot be read, and in logs written
//! before it was recorded). Both come from one [`Stamp`]. A PID is `NAME#INCARNATION`;
//! `members` is in rank order, most senior first. Further kinds: `start` (with `addr`:
//! the process began, cold or rejoining), `joined` (with `version`), `reconfiguring`
//! (with `version`), `left` (a graceful leave; the process is out, like `excluded`),
//! `submitted` (with `version`: as initiator, the process submitted the update forming
//! that view).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::view::Member;
use crate::ProcessId;

/// Microseconds since the Unix epoch.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The host's `CLOCK_MONOTONIC` in microseconds (`None`: it cannot be read, or the
/// platform has no such clock). Unlike [`unix_micros`] it never steps, and every
/// process of a host reads the same clock.
pub fn monotonic_micros() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `t` is a valid, writable timespec; clock_gettime only writes it.
        if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) } != 0 {
            return None;
        }
        let secs = u64::try_from(t.tv_sec).ok()?;
        let nanos = u64::try_from(t.tv_nsec).ok()?;
        Some(secs.saturating_mul(1_000_000).saturating_add(nanos / 1000))
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// One moment on both clocks a record carries: `ts_us` (wall clock, µs since the
/// Unix epoch) and `mono_us` (`CLOCK_MONOTONIC`, µs; `None`: not readable here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The host's `CLOCK_MONOTONIC`, microseconds.
    pub mono_us: Option<u64>,
}

impl Stamp {
    /// Now, on both clocks (read one right after the other).
    pub fn now() -> Stamp {
        Stamp::before(Duration::ZERO)
    }

    /// The moment `ago` before now, on both clocks: each clock is read now and set
    /// back by the same `ago`, so the two name one moment.
    pub fn before(ago: Duration) -> Stamp {
        let ago = u64::try_from(ago.as_micros()).unwrap_or(u64::MAX);
        Stamp {
            ts_us: unix_micros().saturating_sub(ago),
            mono_us: monotonic_micros().map(|m| m.saturating_sub(ago)),
        }
    }

    /// The moment `at` (an [`Instant`] of the past, or now), on both clocks.
    pub fn of(at: Instant) -> Stamp {
        Stamp::before(at.elapsed())
    }
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
    /// When the input behind the records being written arrived: their `ts_us` and
    /// `mono_us`. `None`: the time of writing.
    input_at: Option<Stamp>,
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
            input_at: None,
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

    /// Stamps the records written from now on with `at` (both clocks at the arrival of
    /// the input that caused them, e.g. [`Stamp::of`] its `Instant`), or with the time
    /// of writing (`None`). The node's loop stamps a step's records with its input's
    /// arrival, as it stamps the events it hands subscribers, so that a record's time
    /// does not depend on when the loop got round to writing it.
    pub fn stamp_inputs_at(&mut self, at: Option<Stamp>) {
        self.input_at = at;
    }

    /// Writes `{"ts_us":..,"mono_us":..,"node":..,"kind":..<extra>}` (no `mono_us` if
    /// the monotonic clock cannot be read); `extra` is either empty or starts with a
    /// comma.
    fn write(&mut self, me: ProcessId, kind: &str, extra: &str) {
        let at = self.input_at.unwrap_or_else(Stamp::now);
        let line = format!(
            "{{\"ts_us\":{}{},\"node\":{},\"kind\":{}{}}}\n",
            at.ts_us,
            MonoField(at.mono_us),
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

/// `,"mono_us":N`, or nothing without a monotonic time (formatted in place).
struct MonoField(Option<u64>);

impl std::fmt::Display for MonoField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(m) => write!(f, ",\"mono_us\":{m}"),
            None => Ok(()),
        }
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
        log.stamp_inputs_at(Some(Stamp {
            ts_us: 123,
            mono_us: Some(45),
        }));
        log.submitted(me, 7);
        log.stamp_inputs_at(None);
        let before = Stamp::now();
        log.submitted(me, 8);
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let field = |name: &str| -> Vec<u64> {
            text.lines()
                .map(|l| {
                    serde_json::from_str::<Value>(l).unwrap()[name]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        let (ts, mono) = (field("ts_us"), field("mono_us"));
        assert_eq!((ts[0], mono[0]), (123, 45));
        assert!(ts[1] >= before.ts_us, "{ts:?}");
        assert!(mono[1] >= before.mono_us.unwrap(), "{mono:?}");
    }

    /// `mono_us` is the host's CLOCK_MONOTONIC (the clock `Instant` reads on Linux):
    /// a stamp of an earlier `Instant` is that much earlier on both clocks.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_stamp_names_one_moment_on_both_clocks() {
        let earlier = Instant::now() - Duration::from_millis(200);
        let mono_before = monotonic_micros().unwrap();
        let s = Stamp::of(earlier);
        let now = Stamp::now();
        let mono = s.mono_us.unwrap();
        assert!(mono + 200_000 >= mono_before, "{s:?} {mono_before}");
        assert!(mono + 200_000 <= now.mono_us.unwrap(), "{s:?} {now:?}");
        // Both clocks were set back by the same elapsed time.
        let wall_gap = now.ts_us as i64 - s.ts_us as i64;
        let mono_gap = now.mono_us.unwrap() as i64 - mono as i64;
        assert!((wall_gap - mono_gap).abs() < 50_000, "{s:?} {now:?}");
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
        assert_eq!(lines[2].as_object().unwrap().len(), 4);
        assert!(lines[0]["mono_us"].as_u64().is_some());
        for l in text.lines() {
            // `mono_us` right after `ts_us`, in every record.
            let (ts, rest) = l
                .strip_prefix("{\"ts_us\":")
                .unwrap()
                .split_once(',')
                .unwrap();
            assert!(ts.parse::<u64>().is_ok(), "{l}");
            assert!(rest.starts_with("\"mono_us\":"), "{l}");
        }
        assert!(text
            .lines()
            .nth(3)
            .unwrap()
            .ends_with(",\"node\":\"a#7\",\"kind\":\"excluded\"}"));
    }
}
