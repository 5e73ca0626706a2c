//! Durable state: what a process keeps on stable storage so that, after it restarts
//! (or after it stopped for lack of a majority), it can answer for its node name in a
//! recovery from total failure (`docs/PROTOCOL.md`, D22 and D23), as a Paxos acceptor
//! answers from its log.
//!
//! [`Durable`] holds the last installed view, the highest-ballot proposal accepted for
//! the next version (an acknowledged M-sub/R-sub, or a recovery's accept), the
//! recovery promise, and the incarnation counter. The node core saves it through a
//! [`Storage`] *before* any message that depends on it leaves the process.
//! [`DirStorage`] writes one file in a state directory (temporary file, fsync, rename,
//! fsync of the directory: a crash at any point leaves the old or the new state);
//! [`MemStorage`] keeps it in memory (tests, the simulator's disks, and users who accept
//! the loss). A corrupt or unreadable state is an error, never a silent fresh start.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::view::{Member, View};
use crate::{NodeId, ProcessId};

/// Who proposed a value for a version, in the order a recovery chooses among accepted
/// values: any S-GMP proposal ranks below any recovery proposal; S-GMP proposals rank
/// by their initiator's index in the previous view (a more junior initiator took over
/// later: the engine's own `keep_least_ranked` rule), recovery proposals by round,
/// then by the proposer's index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ballot {
    /// 0: none; 1: an S-GMP initiator (mgr or reconfigurer); 2: a recovery.
    pub class: u8,
    /// The recovery round (0 for S-GMP).
    pub round: u64,
    /// The proposer's index in the previous view.
    pub rank: u32,
}

impl Ballot {
    /// No ballot: below every other.
    pub const NONE: Ballot = Ballot {
        class: 0,
        round: 0,
        rank: 0,
    };

    /// The ballot of an S-GMP proposal by the initiator at `index` of the view before.
    pub fn sgmp(index: u32) -> Ballot {
        Ballot {
            class: 1,
            round: 0,
            rank: index,
        }
    }

    /// The class of a recovery ballot, the highest there is.
    pub const RECOVERY_CLASS: u8 = 2;

    /// A recovery ballot.
    pub fn recovery(round: u64, index: u32) -> Ballot {
        Ballot {
            class: Ballot::RECOVERY_CLASS,
            round,
            rank: index,
        }
    }
}

/// A proposal accepted for the version after the installed one: the view it forms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its ballot.
    pub ballot: Ballot,
    /// The view it forms (version = installed version + 1).
    pub view: View,
}

/// D23's learning rule (`docs/PROTOCOL.md`, D23 *Learning*): the view of version
/// `x.version + 1` that `acceptances` prove **chosen**, if any.
///
/// `acceptances` are durable acceptances reported by processes of the names of view
/// `x` (name, acceptance; a name counts once per value). A value accepted at one ballot
/// by at least `|x| - |x|/2` names of `x` (half of them, rounded up) is chosen: every
/// proposer of version `x.version + 1` above the lowest ballot — an S-GMP reconfigurer
/// (its R-int), a reconfigurer that just committed view x (D26: the members of x it
/// trusts, a majority) or a recovery leader (its Prepare) — first hears a *majority* of
/// `x`, which meets every such set, and proposes the value it finds at the highest
/// ballot; the mgr, at the lowest ballot, needs no such phase. This is Flexible Paxos
/// (Howard, Malkhi and Spiegelman, 2016): phase-2 quorums need only meet every phase-1
/// quorum. Only acceptances that were durable count (an initiator's own acceptance of
/// its proposal may not be yet, D22), so an initiator counts only if it reports its
/// acceptance itself.
pub fn chosen_successor<'a>(
    x: &View,
    acceptances: impl IntoIterator<Item = (NodeId, &'a Accepted)>,
) -> Option<&'a View> {
    if x.members.is_empty() {
        return None;
    }
    let need = x.members.len() - x.members.len() / 2;
    let mut counts: Vec<(&'a Accepted, Vec<NodeId>)> = Vec::new();
    for (name, a) in acceptances {
        if a.view.version != x.version + 1 || !x.members.iter().any(|m| m.id.node == name) {
            continue;
        }
        let i = match counts
            .iter()
            .position(|(b, _)| b.ballot == a.ballot && b.view == a.view)
        {
            Some(i) => i,
            None => {
                counts.push((a, Vec::new()));
                counts.len() - 1
            }
        };
        if !counts[i].1.contains(&name) {
            counts[i].1.push(name);
        }
    }
    counts
        .into_iter()
        .find(|(_, names)| names.len() >= need)
        .map(|(a, _)| &a.view)
}

/// What one process keeps on stable storage. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The node name this state belongs to.
    pub name: String,
    /// The highest incarnation this node has run (a restart takes a higher one).
    pub incarnation: u64,
    /// The last view installed by any incarnation of this node (version 0: none).
    pub view: View,
    /// The proposal accepted for version `view.version + 1`, if any.
    pub accepted: Option<Accepted>,
    /// The highest recovery ballot promised for version `view.version + 1`.
    pub promised: Ballot,
    /// The group ended cleanly: the last members left gracefully. The next start may
    /// found a new group.
    pub ended: bool,
}

impl Durable {
    /// The state of a node that never was a member.
    pub fn fresh(name: &str, incarnation: u64) -> Durable {
        Durable {
            name: name.to_string(),
            incarnation,
            view: View::with_capacity(0),
            accepted: None,
            promised: Ballot::NONE,
            ended: false,
        }
    }

    /// True if this node installed a view that the group may still need to recover.
    pub fn has_view(&self) -> bool {
        self.view.version > 0 && !self.ended
    }

    /// Adopts `view` as installed when it is newer (a decided view: installed by some
    /// process, or decided by a recovery); an older acceptance and promise go with the
    /// old version. Returns true if anything changed.
    pub fn adopt(&mut self, view: &View) -> bool {
        if view.version <= self.view.version {
            return false;
        }
        self.view.clone_from(view);
        if self
            .accepted
            .as_ref()
            .is_some_and(|a| a.view.version <= view.version)
        {
            self.accepted = None;
        }
        self.promised = Ballot::NONE;
        self.ended = false;
        true
    }

    /// Encodes as the text of a state file (JSON, then a CRC32 line over it).
    pub fn to_file_text(&self) -> String {
        self.to_file_text_in(None)
    }

    /// [`to_file_text`](Self::to_file_text), recording the cluster the state belongs to.
    pub fn to_file_text_in(&self, cluster_id: Option<u64>) -> String {
        let mut disk = DiskState::from(self);
        disk.cluster_id = cluster_id;
        let body = serde_json::to_string_pretty(&disk).expect("serializable");
        let crc = crc32(body.as_bytes());
        format!("{body}\ncrc32 {crc:08x}\n")
    }

    /// Decodes the text of a state file.
    pub fn from_file_text(text: &str) -> Result<Durable, String> {
        Self::from_file_text_in(text).map(|(d, _)| d)
    }

    /// [`from_file_text`](Self::from_file_text), with the cluster the file records
    /// (`None` in a file written before it did).
    pub fn from_file_text_in(text: &str) -> Result<(Durable, Option<u64>), String> {
        let (body, tail) = text
            .trim_end()
            .rsplit_once('\n')
            .ok_or("no checksum line (truncated?)")?;
        let want = tail
            .strip_prefix("crc32 ")
            .and_then(|h| u32::from_str_radix(h.trim(), 16).ok())
            .ok_or("malformed checksum line")?;
        if crc32(body.as_bytes()) != want {
            return Err("checksum mismatch (the file is corrupt)".into());
        }
        // The format first: a newer format's fields would read as a parse error.
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let f: Format = serde_json::from_str(body).map_err(|e| e.to_string())?;
        if f.format != STATE_FORMAT {
            return Err(format!("{UNKNOWN_FORMAT} {}", f.format));
        }
        let d: DiskState = serde_json::from_str(body).map_err(|e| e.to_string())?;
        let cluster = d.cluster_id;
        Ok((d.into_durable()?, cluster))
    }
}

/// Why durable state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error on the state directory.
    #[error("state directory {dir}: {what}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The state file exists but cannot be trusted.
    #[error("state file {path} is corrupt or unreadable ({why}); move the state directory away to start this node as a new joiner")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// Another process (a second daemon given the same directory) holds it: two
    /// processes saving one state file would overwrite each other's promises.
    #[error("state directory {dir} is in use by another process (its lock file {lock} is held); give each node its own state directory")]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The state file was written in a format this build does not know (by a newer
    /// sgmp): it is not corrupt, and must not be discarded.
    #[error("state file {path} has format {format}, which this build of sgmp does not know (written by a newer version?); run that version, and do not delete the file: it holds this node's promises")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// The format number it gives.
        format: u32,
    },
    /// The state belongs to another cluster (the directory was used with another
    /// `cluster_id`): its views and promises are not this cluster's.
    #[error("state file {path} belongs to cluster {found:#x}, not {expected:#x}; give this cluster its own state directory")]
    WrongCluster {
        /// The file.
        path: PathBuf,
        /// The cluster id in the file.
        found: u64,
        /// This node's cluster id.
        expected: u64,
    },
    /// The state belongs to another node name.
    #[error("state file {path} belongs to node {found:?}, not {expected:?}")]
    WrongNode {
        /// The file.
        path: PathBuf,
        /// The name in the file.
        found: String,
        /// This node's name.
        expected: String,
    },
}

/// Where the node core saves its [`Durable`] state.
pub trait Storage: Send {
    /// Saves `state`; returns only once it is durable (for files: written, fsynced,
    /// renamed into place, directory fsynced).
    fn save(&mut self, state: &Durable) -> Result<(), StorageError>;
    /// Total time spent in [`save`](Storage::save) so far, µs, for storage that
    /// measures it (the node core reads it to report what durable state costs; it
    /// reads no clock itself). 0 by default.
    fn save_time_us(&self) -> u64 {
        0
    }
}

/// Keeps the state in memory, shared with whoever holds a clone (the simulator's disk
/// of a node outlives the node's process). Survives nothing but the loss of a majority
/// inside one process.
#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    slot: Arc<Mutex<Option<Durable>>>,
    saves: Arc<Mutex<u64>>,
    /// Every save fails while set (a full or failed disk, for tests).
    failing: Arc<Mutex<bool>>,
}

impl MemStorage {
    /// An empty memory.
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// The last state saved, if any.
    pub fn load(&self) -> Option<Durable> {
        self.slot.lock().clone()
    }

    /// Forgets everything (the simulator's lost disk).
    pub fn wipe(&self) {
        *self.slot.lock() = None;
    }

    /// Saves done so far.
    pub fn saves(&self) -> u64 {
        *self.saves.lock()
    }

    /// Makes every later save fail (`true`) as a failed disk's would, or succeed again
    /// (every clone of this memory shares the switch).
    pub fn set_failing(&self, failing: bool) {
        *self.failing.lock() = failing;
    }
}

impl Storage for MemStorage {
    fn save(&mut self, state: &Durable) -> Result<(), StorageError> {
        if *self.failing.lock() {
            return Err(StorageError::Io {
                dir: PathBuf::from("(memory)"),
                what: "write",
                source: std::io::Error::other("the disk failed (MemStorage::set_failing)"),
            });
        }
        let mut slot = self.slot.lock();
        match slot.as_mut() {
            Some(s) => s.clone_from(state),
            None => *slot = Some(state.clone()),
        }
        *self.saves.lock() += 1;
        Ok(())
    }
}

/// The state file in a state directory (`sgmpd --state-dir DIR`).
#[derive(Debug)]
pub struct DirStorage {
    dir: PathBuf,
    /// The cluster the state belongs to, recorded in the file.
    cluster_id: u64,
    /// The directory's lock file, held (an exclusive `flock`) for the storage's life:
    /// one process per state directory.
    _lock: File,
    /// Whether to fsync (off only for benchmarks of what fsync costs).
    pub fsync: bool,
    saves: u64,
    /// Total time spent in `save`, µs.
    pub save_us: u64,
}

/// The state file's name inside the state directory.
pub const STATE_FILE: &str = "state.json";

/// The state file's format number (`"format"`).
const STATE_FORMAT: u32 = 1;

/// How a decoding error names a format this build does not know.
const UNKNOWN_FORMAT: &str = "unknown state format";

/// The lock file's name inside the state directory ([`StorageError::Locked`]).
pub const LOCK_FILE: &str = "lock";

/// Longest state file read (a view of 1,024 members and an acceptance take well under
/// a megabyte): a state file that is not one (a FIFO, a device) is refused, not read
/// for ever.
const MAX_STATE_FILE_BYTES: u64 = 16 << 20;

/// Takes the exclusive lock of `file` without waiting: `false` if another open file
/// (another process, or another storage of this one) holds it.
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this `File` owns; no memory is passed.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock {
        return Ok(false);
    }
    Err(e)
}

/// Elsewhere no lock is taken.
#[cfg(not(unix))]
fn try_lock(_: &File) -> std::io::Result<bool> {
    Ok(true)
}

/// Reads the state file at `path` (`None`: there is none): a regular file of at most
/// [`MAX_STATE_FILE_BYTES`], as UTF-8. An I/O error (a permission) is
/// [`StorageError::Io`]: the file may be fine.
fn read_state_file(dir: &Path, path: &Path) -> Result<Option<String>, StorageError> {
    use std::io::Read;
    let io = |source| StorageError::Io {
        dir: dir.to_path_buf(),
        what: "cannot read the state file",
        source,
    };
    let corrupt = |why: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        why,
    };
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if !f.metadata().map_err(io)?.is_file() {
        return Err(corrupt("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    f.take(MAX_STATE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_STATE_FILE_BYTES {
        return Err(corrupt(format!("longer than {MAX_STATE_FILE_BYTES} bytes")));
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| corrupt("not UTF-8 text".into()))
}

impl DirStorage {
    /// Opens (creating it if needed, mode 0700) the state directory, takes its lock
    /// ([`StorageError::Locked`] if another process holds it), and loads the state of
    /// node `name` of cluster `cluster_id` from it: `None` if there is none yet.
    pub fn open(
        dir: &Path,
        name: &str,
        cluster_id: u64,
    ) -> Result<(DirStorage, Option<Durable>), StorageError> {
        let io = |what: &'static str| {
            let dir = dir.to_path_buf();
            move |source| StorageError::Io { dir, what, source }
        };
        if dir.as_os_str().is_empty() {
            return Err(io("an empty path")(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "give the state directory's path",
            )));
        }
        let existed = dir.is_dir();
        // The nearest ancestor that exists: every directory made below it is a new
        // entry of its parent, which must reach the disk before a promise saved in it
        // counts (a crash could otherwise lose the directory with the state file in it).
        let made_below = dir.ancestors().skip(1).find(|a| a.is_dir());
        fs::create_dir_all(dir).map_err(io("cannot create it"))?;
        if !existed {
            if let Err(e) = sync_new_directories(dir, made_below) {
                // A parent this process may write but not read (mode 0733) cannot be
                // opened to sync it: say so rather than refuse a directory that works.
                tracing::warn!(dir = %dir.display(), "cannot fsync the new state directory's parent: {e}; a host crash right after start-up could lose the directory");
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if !existed {
                // Only a directory made here: an existing one (even `/tmp`) keeps its mode.
                let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
            } else if fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                tracing::warn!(dir = %dir.display(), "the state directory can be read by its group or others; use chmod 700");
            }
        }
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io("cannot open its lock file"))?;
        if !try_lock(&lock).map_err(io("cannot lock it"))? {
            return Err(StorageError::Locked {
                dir: dir.to_path_buf(),
                lock: lock_path,
            });
        }
        let path = dir.join(STATE_FILE);
        let state = match read_state_file(dir, &path)? {
            Some(text) => {
                let (d, cluster) = Durable::from_file_text_in(&text).map_err(|why| {
                    match why
                        .strip_prefix(UNKNOWN_FORMAT)
                        .and_then(|n| n.trim().parse().ok())
                    {
                        Some(format) => StorageError::UnknownFormat {
                            path: path.clone(),
                            format,
                        },
                        None => StorageError::Corrupt {
                            path: path.clone(),
                            why,
                        },
                    }
                })?;
                if let Some(found) = cluster.filter(|&c| c != cluster_id) {
                    return Err(StorageError::WrongCluster {
                        path,
                        found,
                        expected: cluster_id,
                    });
                }
                if d.name != name {
                    return Err(StorageError::WrongNode {
                        path,
                        found: d.name,
                        expected: name.to_string(),
                    });
                }
                Some(d)
            }
            None => None,
        };
        // A temporary file left by a crash mid-write is garbage: the rename never
        // happened, so the state file (if any) is the last complete one.
        let _ = fs::remove_file(dir.join(format!("{STATE_FILE}.tmp")));
        Ok((
            DirStorage {
                dir: dir.to_path_buf(),
                cluster_id,
                _lock: lock,
                fsync: true,
                saves: 0,
                save_us: 0,
            },
            state,
        ))
    }

    /// Saves done so far.
    pub fn saves(&self) -> u64 {
        self.saves
    }
}

impl Storage for DirStorage {
    fn save(&mut self, state: &Durable) -> Result<(), StorageError> {
        let t0 = std::time::Instant::now();
        let io = |what: &'static str| {
            let dir = self.dir.clone();
            move |source| StorageError::Io { dir, what, source }
        };
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let path = self.dir.join(STATE_FILE);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io("cannot create the temporary state file"))?;
        f.write_all(state.to_file_text_in(Some(self.cluster_id)).as_bytes())
            .map_err(io("cannot write the temporary state file"))?;
        if self.fsync {
            f.sync_all()
                .map_err(io("cannot fsync the temporary state file"))?;
        }
        drop(f);
        fs::rename(&tmp, &path).map_err(io("cannot rename the state file into place"))?;
        if self.fsync {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io("cannot fsync the state directory"))?;
        }
        self.saves += 1;
        self.save_us += t0.elapsed().as_micros() as u64;
        Ok(())
    }

    fn save_time_us(&self) -> u64 {
        self.save_us
    }
}

/// Fsyncs the parent of every directory `create_dir_all(dir)` made: each from `dir`'s
/// parent up to `existing` (the nearest ancestor that was there before; `None` for a
/// relative path made from the current directory, whose parent is synced as `.`).
fn sync_new_directories(dir: &Path, existing: Option<&Path>) -> std::io::Result<()> {
    for parent in dir.ancestors().skip(1) {
        let at = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        File::open(at)?.sync_all()?;
        if Some(parent) == existing || parent.as_os_str().is_empty() {
            break;
        }
    }
    Ok(())
}

/// CRC-32 (IEEE) of a state file's body: the same checksum the transport frames carry.
fn crc32(b: &[u8]) -> u32 {
    crc32fast::hash(b)
}

#[derive(Serialize, Deserialize)]
struct DiskMember {
    id: String,
    addr: SocketAddr,
}

#[derive(Serialize, Deserialize)]
struct DiskView {
    version: u64,
    members: Vec<DiskMember>,
}

#[derive(Serialize, Deserialize)]
struct DiskBallot {
    class: u8,
    round: u64,
    rank: u32,
}

#[derive(Serialize, Deserialize)]
struct DiskAccepted {
    ballot: DiskBallot,
    view: DiskView,
}

#[derive(Serialize, Deserialize)]
struct DiskState {
    format: u32,
    /// The cluster the state belongs to (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_id: Option<u64>,
    name: String,
    incarnation: u64,
    view: DiskView,
    accepted: Option<DiskAccepted>,
    promised: DiskBallot,
    ended: bool,
}

impl From<&View> for DiskView {
    fn from(v: &View) -> DiskView {
        DiskView {
            version: v.version,
            members: v
                .members
                .iter()
                .map(|m| DiskMember {
                    id: m.id.to_string(),
                    addr: m.addr,
                })
                .collect(),
        }
    }
}

impl From<Ballot> for DiskBallot {
    fn from(b: Ballot) -> DiskBallot {
        DiskBallot {
            class: b.class,
            round: b.round,
            rank: b.rank,
        }
    }
}

impl DiskBallot {
    fn ballot(&self) -> Ballot {
        Ballot {
            class: self.class,
            round: self.round,
            rank: self.rank,
        }
    }
}

impl DiskView {
    fn view(&self) -> Result<View, String> {
        let mut v = View::with_capacity(self.members.len());
        v.version = self.version;
        for m in &self.members {
            let id = ProcessId::parse(&m.id).ok_or_else(|| format!("bad process id {:?}", m.id))?;
            v.members.push(Member { id, addr: m.addr });
        }
        Ok(v)
    }
}

impl From<&Durable> for DiskState {
    fn from(d: &Durable) -> DiskState {
        DiskState {
            format: STATE_FORMAT,
            cluster_id: None,
            name: d.name.clone(),
            incarnation: d.incarnation,
            view: DiskView::from(&d.view),
            accepted: d.accepted.as_ref().map(|a| DiskAccepted {
                ballot: a.ballot.into(),
                view: DiskView::from(&a.view),
            }),
            promised: d.promised.into(),
            ended: d.ended,
        }
    }
}

impl DiskState {
    fn into_durable(self) -> Result<Durable, String> {
        if self.format != STATE_FORMAT {
            return Err(format!("{UNKNOWN_FORMAT} {}", self.format));
        }
        if self.incarnation > super::config::MAX_INCARNATION {
            return Err(format!(
                "incarnation {} is above {}",
                self.incarnation,
                super::config::MAX_INCARNATION
            ));
        }
        Ok(Durable {
            name: self.name,
            incarnation: self.incarnation,
            view: self.view.view()?,
            accepted: match self.accepted {
                Some(a) => Some(Accepted {
                    ballot: a.ballot.ballot(),
                    view: a.view.view()?,
                }),
                None => None,
            },
            promised: self.promised.ballot(),
            ended: self.ended,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Durable {
        let mut d = Durable::fresh("n1", 7);
        d.view.version = 4;
        d.view.members.push(Member {
            id: ProcessId::named("n1", 7),
            addr: "127.0.0.1:7001".parse().unwrap(),
        });
        let mut next = d.view.clone();
        next.version = 5;
        d.accepted = Some(Accepted {
            ballot: Ballot::sgmp(2),
            view: next,
        });
        d.promised = Ballot::recovery(3, 1);
        d
    }

    #[test]
    fn state_files_round_trip_and_corruption_is_an_error() {
        let d = sample();
        let text = d.to_file_text();
        assert_eq!(Durable::from_file_text(&text).unwrap(), d);
        let bad = text.replacen("\"incarnation\": 7", "\"incarnation\": 8", 1);
        assert!(Durable::from_file_text(&bad)
            .unwrap_err()
            .contains("checksum"));
        assert!(Durable::from_file_text(&text[..text.len() / 2]).is_err());
        assert!(Durable::from_file_text("").is_err());
        // An incarnation above MAX_INCARNATION (checksum intact) is refused: its `+ 1`
        // on the next restart must not wrap.
        let mut huge = d.clone();
        huge.incarnation = super::super::config::MAX_INCARNATION + 1;
        let e = Durable::from_file_text(&huge.to_file_text()).unwrap_err();
        assert!(e.contains("incarnation"), "{e}");
        huge.incarnation -= 1;
        assert_eq!(Durable::from_file_text(&huge.to_file_text()).unwrap(), huge);
    }

    /// The state file's checksum is CRC-32 (IEEE): files written by earlier builds,
    /// with the bitwise implementation, still read.
    #[test]
    fn the_state_files_checksum_is_crc32_ieee() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// A state directory several levels below an existing one is made whole, and the
    /// parents of what was made are synced (a relative path's from `.`).
    #[test]
    fn a_new_state_directory_is_made_with_its_parents_and_they_are_synced() {
        let top = std::env::temp_dir().join(format!("sgmp-durable-new-{}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        fs::create_dir_all(&top).unwrap();
        let dir = top.join("a").join("b");
        let (mut s, none) = DirStorage::open(&dir, "n1", 7).unwrap();
        assert!(none.is_none());
        s.save(&sample()).unwrap();
        assert!(dir.join(STATE_FILE).is_file());
        sync_new_directories(&dir, Some(&top)).unwrap();
        sync_new_directories(Path::new("relative-state-dir"), None).unwrap();
        drop(s);
        fs::remove_dir_all(&top).unwrap();
    }

    #[test]
    fn ballots_order_sgmp_below_recovery_and_juniors_later() {
        assert!(Ballot::NONE < Ballot::sgmp(0));
        assert!(Ballot::sgmp(0) < Ballot::sgmp(3));
        assert!(Ballot::sgmp(9) < Ballot::recovery(0, 0));
        assert!(Ballot::recovery(1, 4) < Ballot::recovery(2, 0));
    }

    #[test]
    fn dir_storage_saves_atomically_and_refuses_foreign_or_corrupt_state() {
        let dir = std::env::temp_dir().join(format!("sgmp-durable-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (mut s, none) = DirStorage::open(&dir, "n1", 7).unwrap();
        assert!(none.is_none());
        let d = sample();
        s.save(&d).unwrap();
        // One process per state directory: a second storage is refused while the
        // first lives (a second daemon would overwrite its promises), not after.
        let e = DirStorage::open(&dir, "n1", 7).unwrap_err();
        assert!(matches!(e, StorageError::Locked { .. }), "{e}");
        assert!(e.to_string().contains("in use by another process"), "{e}");
        drop(s);
        let (_, loaded) = DirStorage::open(&dir, "n1", 7).unwrap();
        assert_eq!(loaded.unwrap(), d);
        let e = DirStorage::open(&dir, "n2", 7).unwrap_err().to_string();
        assert!(e.contains("belongs to node"), "{e}");
        // The directory of another cluster (its cluster_id changed): refused.
        let e = DirStorage::open(&dir, "n1", 8).unwrap_err();
        assert!(
            matches!(e, StorageError::WrongCluster { found: 7, .. }),
            "{e}"
        );
        // A file written before the cluster was recorded is read by any cluster.
        fs::write(dir.join(STATE_FILE), d.to_file_text()).unwrap();
        let (_, loaded) = DirStorage::open(&dir, "n1", 8).unwrap();
        assert_eq!(loaded.unwrap(), d);
        // A newer format (checksum intact) is not corrupt: refused without the advice
        // to move the directory away.
        let text = d.to_file_text();
        let body = text.trim_end().rsplit_once('\n').unwrap().0;
        let newer = body.replacen("\"format\": 1", "\"format\": 2", 1);
        assert_ne!(newer, body);
        let crc = crc32(newer.as_bytes());
        fs::write(dir.join(STATE_FILE), format!("{newer}\ncrc32 {crc:08x}\n")).unwrap();
        let e = DirStorage::open(&dir, "n1", 7).unwrap_err();
        assert!(
            matches!(e, StorageError::UnknownFormat { format: 2, .. }),
            "{e}"
        );
        assert!(!e.to_string().contains("move the state directory"), "{e}");
        fs::write(dir.join(STATE_FILE), "garbage").unwrap();
        let e = DirStorage::open(&dir, "n1", 7).unwrap_err().to_string();
        assert!(e.contains("corrupt"), "{e}");
        // Not a file: refused, not read (a FIFO would block for ever).
        fs::remove_file(dir.join(STATE_FILE)).unwrap();
        fs::create_dir(dir.join(STATE_FILE)).unwrap();
        let e = DirStorage::open(&dir, "n1", 7).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        let e = DirStorage::open(Path::new(""), "n1", 7)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty path"), "{e}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn adopting_a_newer_view_drops_older_acceptances() {
        let mut d = sample();
        let mut v = d.view.clone();
        v.version = 5;
        assert!(d.adopt(&v));
        assert!(d.accepted.is_none());
        assert_eq!(d.promised, Ballot::NONE);
        assert!(!d.adopt(&v));
    }

    /// A view x of `n` names n1..n{n} at version 4, and a proposal for version 5 that
    /// keeps its first `keep` members.
    fn view_and_next(n: usize, keep: usize) -> (View, View) {
        let mut x = View::with_capacity(n);
        x.version = 4;
        for i in 1..=n {
            x.members.push(Member {
                id: ProcessId::named(&format!("n{i}"), 1),
                addr: format!("127.0.0.1:{}", 7000 + i).parse().unwrap(),
            });
        }
        let mut next = x.clone();
        next.version = 5;
        next.members.truncate(keep);
        (x, next)
    }

    fn acc(ballot: Ballot, view: View) -> Accepted {
        Accepted { ballot, view }
    }

    fn name(i: usize) -> NodeId {
        ProcessId::named(&format!("n{i}"), 1).node
    }

    #[test]
    fn a_successor_is_chosen_by_half_of_the_names_rounded_up_at_one_ballot() {
        let (x4, next) = view_and_next(4, 3);
        let a = acc(Ballot::sgmp(0), next.clone());
        assert_eq!(chosen_successor(&x4, [(name(1), &a)]), None);
        assert_eq!(
            chosen_successor(&x4, [(name(1), &a), (name(3), &a)]),
            Some(&next),
            "two of four names"
        );
        let (x5, next5) = view_and_next(5, 4);
        let a5 = acc(Ballot::sgmp(0), next5.clone());
        assert_eq!(
            chosen_successor(&x5, [(name(1), &a5), (name(2), &a5)]),
            None
        );
        assert_eq!(
            chosen_successor(&x5, [(name(1), &a5), (name(2), &a5), (name(5), &a5)]),
            Some(&next5),
            "three of five names"
        );
        assert_eq!(
            chosen_successor(&View::with_capacity(0), [(name(1), &a)]),
            None
        );
    }

    #[test]
    fn only_one_name_one_ballot_one_value_of_the_next_version_counts() {
        let (x4, next) = view_and_next(4, 3);
        let a = acc(Ballot::sgmp(0), next.clone());
        // One name reporting twice (two incarnations) counts once.
        assert_eq!(chosen_successor(&x4, [(name(1), &a), (name(1), &a)]), None);
        // A name outside x is no acceptor of x's successor.
        assert_eq!(chosen_successor(&x4, [(name(1), &a), (name(9), &a)]), None);
        // The same view at another ballot, or another view at the same ballot, is
        // another proposal.
        let other_ballot = acc(Ballot::sgmp(1), next.clone());
        assert_eq!(
            chosen_successor(&x4, [(name(1), &a), (name(2), &other_ballot)]),
            None
        );
        let (_, smaller) = view_and_next(4, 2);
        let other_value = acc(Ballot::sgmp(0), smaller);
        assert_eq!(
            chosen_successor(&x4, [(name(1), &a), (name(2), &other_value)]),
            None
        );
        // An acceptance for another version is not one for x's successor.
        let mut later = next.clone();
        later.version = 6;
        let stale = acc(Ballot::sgmp(0), later);
        assert_eq!(
            chosen_successor(&x4, [(name(1), &stale), (name(2), &stale)]),
            None
        );
    }
}
