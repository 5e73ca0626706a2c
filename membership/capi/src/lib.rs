//! `libsgmp`: the C API of the sgmp node runtime.
//!
//! A C program creates a node from a TOML configuration (text or file), starts it, reads
//! its current view, waits for events (view installed, suspicion, exclusion, join, ...),
//! leaves gracefully, shuts it down and frees it. See `docs/C-API.md` and
//! `membership/include/sgmp.h` (generated from this file by cbindgen).
//!
//! Safety rules of the boundary:
//! - Nodes are named by integer handles (`sgmp_node_t`), looked up in a registry: a
//!   handle that was never issued, or was freed, gives `SGMP_ERR_BAD_HANDLE`, never a
//!   crash.
//! - Every function checks its pointers for NULL and returns `SGMP_ERR_NULL`.
//! - No Rust panic crosses the boundary: each call runs under `catch_unwind` and a panic
//!   becomes `SGMP_ERR_INTERNAL`.
//! - Every call is thread-safe. Events can be consumed from any one thread at a time
//!   per node (calls serialise on the node's event queue).
//! - Errors come back as a status code; `sgmp_last_error()` gives a readable message
//!   for the last failed call on the calling thread.
#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};
use sgmp_membership::node::{Node, NodeConfig, NodeEvent, NodeHandle, NodePhase, Subscription};
use sgmp_membership::service::SystemChange;
use sgmp_membership::{ProcessId, TagSet, View};

/// Most members an `sgmp_view` holds.
pub const SGMP_MAX_MEMBERS: usize = 64;
/// Bytes of a process id string, NUL included (`NAME#INCARNATION`).
pub const SGMP_PID_LEN: usize = 64;

/// A node handle. 0 is never a valid handle.
pub type sgmp_node_t = u64;

/// Result of every call.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sgmp_status {
    /// Success.
    SGMP_OK = 0,
    /// A pointer argument was NULL.
    SGMP_ERR_NULL = 1,
    /// The handle is unknown or was freed.
    SGMP_ERR_BAD_HANDLE = 2,
    /// The configuration is invalid (see `sgmp_last_error`).
    SGMP_ERR_CONFIG = 3,
    /// The node could not start (e.g. the address is taken).
    SGMP_ERR_START = 4,
    /// The call does not fit the node's state (e.g. not started, already started).
    SGMP_ERR_STATE = 5,
    /// Nothing happened before the timeout.
    SGMP_ERR_TIMEOUT = 6,
    /// A caller buffer is too small.
    SGMP_ERR_BUFFER = 7,
    /// A string argument is not valid UTF-8.
    SGMP_ERR_UTF8 = 8,
    /// A bug inside libsgmp (a caught panic).
    SGMP_ERR_INTERNAL = 9,
    /// No such member or tag.
    SGMP_ERR_NOT_FOUND = 10,
    /// A tag is refused (bad key, or the tags exceed 512 bytes encoded; see
    /// `sgmp_last_error`).
    SGMP_ERR_TAG = 11,
}

use sgmp_status::*;

/// A view: version and members in rank order (most senior first), each a
/// NUL-terminated `NAME#INCARNATION`. Caller-allocated; nothing to free.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sgmp_view {
    /// The view's version.
    pub version: u64,
    /// Number of members filled in `members` (at most `SGMP_MAX_MEMBERS`).
    pub size: u32,
    /// Members beyond `SGMP_MAX_MEMBERS` that did not fit (normally 0).
    pub truncated: u32,
    /// Member process ids.
    pub members: [[c_char; SGMP_PID_LEN]; SGMP_MAX_MEMBERS],
}

/// Kinds of events.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum sgmp_event_kind {
    /// No event (not returned by a successful `sgmp_node_next_event`).
    SGMP_EVENT_NONE = 0,
    /// `node` installed `view`.
    SGMP_EVENT_VIEW = 1,
    /// `node` now believes `peer` faulty.
    SGMP_EVENT_SUSPECT = 2,
    /// `node` was excluded from the group.
    SGMP_EVENT_EXCLUDED = 3,
    /// `node` joined the group at `version` (`snapshot_len` bytes of application state
    /// were handed over: read them with `sgmp_node_received_snapshot`).
    SGMP_EVENT_JOINED = 4,
    /// `node` left the group gracefully.
    SGMP_EVENT_LEFT = 5,
    /// The excluded process `node` came back as the new incarnation `peer`.
    SGMP_EVENT_REJOINING = 6,
    /// `node` founded the group (cold start).
    SGMP_EVENT_FOUNDED = 7,
    /// `node` started a reconfiguration from view `version`.
    SGMP_EVENT_RECONFIGURING = 8,
    /// As initiator, `node` submitted the update forming view `version`.
    SGMP_EVENT_SUBMITTED = 9,
    /// The membership service (docs/SERVICE.md) applied system view `version` (core
    /// members + clients): `system_size` members, `added` processes added and `removed`
    /// removed; read their ids with `sgmp_node_system_change`.
    SGMP_EVENT_SYSTEM_VIEW = 10,
    /// A recovery from total failure made `node` a member of view `version` (the view
    /// follows as `SGMP_EVENT_VIEW`).
    SGMP_EVENT_RECOVERED = 11,
    /// `node` could not save its durable state and stopped.
    SGMP_EVENT_STORAGE_FAILED = 12,
}

/// One event. Caller-allocated; nothing to free.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct sgmp_event {
    /// What happened.
    pub kind: sgmp_event_kind,
    /// When libsgmp saw it, microseconds since the Unix epoch.
    pub ts_us: u64,
    /// The process it happened to (`NAME#INCARNATION`).
    pub node: [c_char; SGMP_PID_LEN],
    /// The other process (suspect: the suspected one; rejoining: the new incarnation).
    pub peer: [c_char; SGMP_PID_LEN],
    /// View version (view, joined, reconfiguring, submitted).
    pub version: u64,
    /// Bytes of application state received (joined).
    pub snapshot_len: u64,
    /// The view (view events only).
    pub view: sgmp_view,
    /// Members of the system view (system-view events only).
    pub system_size: u64,
    /// Processes the system view added (system-view events only).
    pub added: u32,
    /// Processes the system view removed (system-view events only).
    pub removed: u32,
}

/// Produces the application snapshot handed to joiners: write at most `cap` bytes into
/// `buf` and return how many were written. Called on the node's own thread after every
/// view change; it must not call back into libsgmp for the same node.
pub type sgmp_snapshot_fn =
    Option<extern "C" fn(user: *mut c_void, buf: *mut u8, cap: usize) -> usize>;

/// Longest a waiting `sgmp_node_next_event` holds a node's subscription at once: what
/// a shutdown or free of that node on another thread may wait for it.
const EVENT_WAIT_SLICE: Duration = Duration::from_millis(10);

struct Entry {
    config: NodeConfig,
    /// What outlives a start: held through the whole of a start, tag change or
    /// provider change, and while a shutdown or free takes the node out, so that those
    /// run one at a time per node. Not held while the node's thread is joined (its
    /// callback may be calling libsgmp for another node, whose own shutdown may be
    /// joining a thread that waits for this node).
    life: Mutex<Life>,
    /// Held while the node's thread is joined (taken under `life`): a free waits for a
    /// shutdown under way on another thread, so that once it returns the thread is gone
    /// and the callback will not run again.
    joining: Mutex<()>,
    /// The running node. Calls that wait for its loop (leave, view, ...) clone it
    /// out, so that none holds a lock while it waits.
    handle: Mutex<Option<Arc<NodeHandle>>>,
    events: Mutex<Option<Subscription>>,
    received: Mutex<Vec<u8>>,
    /// The last system view change returned by `sgmp_node_next_event`.
    last_change: Mutex<Option<SystemChange>>,
}

/// A node's settings kept across starts, and whether its handle was freed.
struct Life {
    /// `sgmp_node_free` ran (a start racing with it must not launch a node).
    freed: bool,
    /// The node's tags (from the configuration, then `sgmp_node_set_tag`): used at
    /// start, kept for a restart.
    tags: TagSet,
    /// The snapshot provider: handed to the node at start, kept for a restart.
    provider: Option<Provider>,
}

fn registry() -> &'static Mutex<HashMap<u64, Arc<Entry>>> {
    static R: OnceLock<Mutex<HashMap<u64, Arc<Entry>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(HashMap::new()))
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

type CallResult = Result<(), (sgmp_status, String)>;

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // `try_with`: called from a thread-local destructor (after this one is gone), the
    // message is dropped rather than a panic crossing into C.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// Runs `f` with panics caught, recording the error message of a failure.
fn call(f: impl FnOnce() -> CallResult) -> sgmp_status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => SGMP_OK,
        Ok(Err((status, msg))) => {
            set_error(&msg);
            status
        }
        Err(_) => {
            set_error("internal error in libsgmp (a panic was caught)");
            SGMP_ERR_INTERNAL
        }
    }
}

fn bad_handle(node: sgmp_node_t) -> (sgmp_status, String) {
    (
        SGMP_ERR_BAD_HANDLE,
        format!("no node with handle {node} (never created, or freed)"),
    )
}

fn entry(node: sgmp_node_t) -> Result<Arc<Entry>, (sgmp_status, String)> {
    registry()
        .lock()
        .get(&node)
        .cloned()
        .ok_or_else(|| bad_handle(node))
}

fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str, (sgmp_status, String)> {
    if p.is_null() {
        return Err((SGMP_ERR_NULL, format!("{what} is NULL")));
    }
    // SAFETY: the caller promises a NUL-terminated string (documented on each function).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| (SGMP_ERR_UTF8, format!("{what} is not valid UTF-8")))
}

fn null_check<T>(p: *const T, what: &str) -> CallResult {
    if p.is_null() {
        Err((SGMP_ERR_NULL, format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

fn fill_str(dst: &mut [c_char; SGMP_PID_LEN], s: &str) {
    let n = s.len().min(SGMP_PID_LEN - 1);
    for (d, b) in dst.iter_mut().zip(s.as_bytes()[..n].iter()) {
        *d = *b as c_char;
    }
    dst[n] = 0;
}

fn fill_pid(dst: &mut [c_char; SGMP_PID_LEN], p: ProcessId) {
    fill_str(dst, &p.to_string());
}

fn fill_view(dst: &mut sgmp_view, v: &View) {
    dst.version = v.version;
    let n = v.members.len().min(SGMP_MAX_MEMBERS);
    dst.size = n as u32;
    dst.truncated = (v.members.len() - n) as u32;
    for (slot, m) in dst.members.iter_mut().zip(v.members.iter()) {
        fill_pid(slot, m.id);
    }
}

fn empty_view() -> sgmp_view {
    sgmp_view {
        version: 0,
        size: 0,
        truncated: 0,
        members: [[0; SGMP_PID_LEN]; SGMP_MAX_MEMBERS],
    }
}

fn empty_event() -> sgmp_event {
    sgmp_event {
        kind: sgmp_event_kind::SGMP_EVENT_NONE,
        ts_us: 0,
        node: [0; SGMP_PID_LEN],
        peer: [0; SGMP_PID_LEN],
        version: 0,
        snapshot_len: 0,
        view: empty_view(),
        system_size: 0,
        added: 0,
        removed: 0,
    }
}

fn register(config: NodeConfig, out: *mut sgmp_node_t) -> CallResult {
    config
        .validate()
        .map_err(|e| (SGMP_ERR_CONFIG, e.to_string()))?;
    let id = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
    registry().lock().insert(
        id,
        Arc::new(Entry {
            life: Mutex::new(Life {
                freed: false,
                tags: config.tags.clone(),
                provider: None,
            }),
            config,
            joining: Mutex::new(()),
            handle: Mutex::new(None),
            events: Mutex::new(None),
            received: Mutex::new(Vec::new()),
            last_change: Mutex::new(None),
        }),
    );
    // SAFETY: checked non-NULL by the caller of `register`.
    unsafe { *out = id };
    Ok(())
}

/// Creates a node from TOML configuration text (the same fields as `sgmpd --config`).
/// The node is not started. On success `*out` receives its handle.
///
/// # Safety
/// `toml` must be a NUL-terminated string; `out` must point to writable memory.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_new(toml: *const c_char, out: *mut sgmp_node_t) -> sgmp_status {
    call(|| {
        null_check(out, "out")?;
        let text = c_str(toml, "toml")?;
        let config =
            NodeConfig::from_toml_str(text).map_err(|e| (SGMP_ERR_CONFIG, e.to_string()))?;
        register(config, out)
    })
}

/// Creates a node from a TOML configuration file. The node is not started.
///
/// # Safety
/// `path` must be a NUL-terminated string; `out` must point to writable memory.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_new_from_file(
    path: *const c_char,
    out: *mut sgmp_node_t,
) -> sgmp_status {
    call(|| {
        null_check(out, "out")?;
        let p = c_str(path, "path")?;
        let config =
            NodeConfig::load(Path::new(p)).map_err(|e| (SGMP_ERR_CONFIG, e.to_string()))?;
        register(config, out)
    })
}

/// Starts the node: binds its UDP socket and runs its thread, which cold-starts or
/// joins the group. Events are queued from now on. A snapshot provider set before
/// (`sgmp_node_set_snapshot_provider`) is in place before the first joiner can arrive.
#[no_mangle]
pub extern "C" fn sgmp_node_start(node: sgmp_node_t) -> sgmp_status {
    call(|| {
        let e = entry(node)?;
        let life = e.life.lock();
        if life.freed {
            return Err(bad_handle(node));
        }
        if e.handle.lock().is_some() {
            return Err((SGMP_ERR_STATE, "the node is already started".into()));
        }
        // Subscribed before the loop starts: a node without seeds founds at once.
        let provider = life.provider.map(Provider::boxed);
        let mut config = e.config.clone();
        config.tags = life.tags.clone();
        let (handle, sub) =
            Node::start_with(config, provider).map_err(|err| (SGMP_ERR_START, err.to_string()))?;
        *e.events.lock() = Some(sub);
        *e.handle.lock() = Some(Arc::new(handle));
        Ok(())
    })
}

fn with_handle<R>(
    node: sgmp_node_t,
    f: impl FnOnce(&NodeHandle) -> R,
) -> Result<R, (sgmp_status, String)> {
    let e = entry(node)?;
    // Cloned out: `f` may wait for the loop (a leave) without holding the lock.
    let h = e.handle.lock().clone();
    match h.as_deref() {
        Some(h) => Ok(f(h)),
        None => Err((
            SGMP_ERR_STATE,
            "the node is not started (or was shut down)".into(),
        )),
    }
}

/// Copies the node's current view into `*out` (version 0 and no members before the
/// first view).
///
/// # Safety
/// `out` must point to a writable `sgmp_view`.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_view(node: sgmp_node_t, out: *mut sgmp_view) -> sgmp_status {
    call(|| {
        null_check(out, "out")?;
        let v = with_handle(node, |h| h.view())?;
        let mut local = empty_view();
        fill_view(&mut local, &v);
        // SAFETY: checked non-NULL; the caller promises it is writable (it may be
        // uninitialised: written whole, never read).
        unsafe { out.write(local) };
        Ok(())
    })
}

/// Writes the node's current process id (`NAME#INCARNATION`, NUL-terminated) into
/// `buf` of `cap` bytes.
///
/// # Safety
/// `buf` must point to `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_id(
    node: sgmp_node_t,
    buf: *mut c_char,
    cap: usize,
) -> sgmp_status {
    call(|| {
        null_check(buf, "buf")?;
        let s = with_handle(node, |h| h.status().me.to_string())?;
        copy_out(&s, buf, cap)
    })
}

/// Writes the node's UDP address (e.g. `127.0.0.1:7401`, NUL-terminated) into `buf` of
/// `cap` bytes. Useful as a seed for other nodes when the node listens on port 0.
///
/// # Safety
/// `buf` must point to `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_local_addr(
    node: sgmp_node_t,
    buf: *mut c_char,
    cap: usize,
) -> sgmp_status {
    call(|| {
        null_check(buf, "buf")?;
        let s = with_handle(node, |h| h.local_addr().to_string())?;
        copy_out(&s, buf, cap)
    })
}

fn copy_out(s: &str, buf: *mut c_char, cap: usize) -> CallResult {
    if s.len() + 1 > cap {
        return Err((
            SGMP_ERR_BUFFER,
            format!(
                "buffer of {cap} bytes is too small for {} bytes",
                s.len() + 1
            ),
        ));
    }
    // SAFETY: the caller promises `cap` writable bytes; we write s.len() + 1 <= cap.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr() as *const c_char, buf, s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(())
}

fn convert(ev: &NodeEvent, out: &mut sgmp_event, e: &Entry) {
    let received = &e.received;
    out.kind = sgmp_event_kind::SGMP_EVENT_NONE;
    out.ts_us = sgmp_membership::node::unix_micros();
    out.node = [0; SGMP_PID_LEN];
    out.peer = [0; SGMP_PID_LEN];
    out.version = 0;
    out.snapshot_len = 0;
    out.view.version = 0;
    out.view.size = 0;
    out.view.truncated = 0;
    out.system_size = 0;
    out.added = 0;
    out.removed = 0;
    match ev {
        NodeEvent::SystemView { me, change } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_SYSTEM_VIEW;
            fill_pid(&mut out.node, *me);
            out.version = change.version;
            out.system_size = change.size as u64;
            out.added = change.added.len() as u32;
            out.removed = change.removed.len() as u32;
            *e.last_change.lock() = Some(change.clone());
        }
        NodeEvent::ViewInstalled { me, view } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_VIEW;
            fill_pid(&mut out.node, *me);
            out.version = view.version;
            fill_view(&mut out.view, view);
        }
        NodeEvent::Suspected { me, peer } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_SUSPECT;
            fill_pid(&mut out.node, *me);
            fill_pid(&mut out.peer, *peer);
        }
        NodeEvent::Joined {
            me,
            version,
            snapshot,
        } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_JOINED;
            fill_pid(&mut out.node, *me);
            out.version = *version;
            out.snapshot_len = snapshot.len() as u64;
            let mut r = received.lock();
            r.clear();
            r.extend_from_slice(snapshot);
        }
        NodeEvent::Founded { me } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_FOUNDED;
            fill_pid(&mut out.node, *me);
        }
        NodeEvent::Excluded { me, .. } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_EXCLUDED;
            fill_pid(&mut out.node, *me);
        }
        NodeEvent::Left { me } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_LEFT;
            fill_pid(&mut out.node, *me);
        }
        NodeEvent::Reconfiguring { me, version } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_RECONFIGURING;
            fill_pid(&mut out.node, *me);
            out.version = *version;
        }
        NodeEvent::Submitted { me, version, .. } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_SUBMITTED;
            fill_pid(&mut out.node, *me);
            out.version = *version;
        }
        NodeEvent::Rejoining { old, new } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_REJOINING;
            fill_pid(&mut out.node, *old);
            fill_pid(&mut out.peer, *new);
        }
        NodeEvent::Recovered { me, version } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_RECOVERED;
            fill_pid(&mut out.node, *me);
            out.version = *version;
        }
        NodeEvent::StorageFailed { me, .. } => {
            out.kind = sgmp_event_kind::SGMP_EVENT_STORAGE_FAILED;
            fill_pid(&mut out.node, *me);
        }
    }
}

/// Waits up to `timeout_ms` milliseconds (0: do not wait) for the node's next event and
/// copies it into `*out`. Returns `SGMP_ERR_TIMEOUT` if none came, `SGMP_ERR_STATE` if
/// the node is not started or was shut down (or freed) while the call waited.
///
/// # Safety
/// `out` must point to a writable `sgmp_event`.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_next_event(
    node: sgmp_node_t,
    timeout_ms: u32,
    out: *mut sgmp_event,
) -> sgmp_status {
    call(|| {
        null_check(out, "out")?;
        let e = entry(node)?;
        // The subscription is held for a slice of the wait at a time (and handed on
        // fairly between slices): a shutdown or free on another thread, which clears
        // it, waits at most a slice, not the whole timeout.
        let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
        let ev = loop {
            let sub = e.events.lock();
            let Some(s) = sub.as_ref() else {
                return Err((SGMP_ERR_STATE, "the node is not started".into()));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break s.try_recv();
            }
            let ev = s.recv_timeout(left.min(EVENT_WAIT_SLICE));
            if ev.is_some() || left <= EVENT_WAIT_SLICE || s.ended() {
                // An event queued as the slice ended (or before the end) is not missed.
                break ev.or_else(|| s.try_recv());
            }
            MutexGuard::unlock_fair(sub);
        };
        let Some(ev) = ev else {
            return Err((SGMP_ERR_TIMEOUT, "no event before the timeout".into()));
        };
        let mut local = empty_event();
        convert(&ev, &mut local, &e);
        // SAFETY: checked non-NULL; the caller promises it is writable (it may be
        // uninitialised: written whole, never read).
        unsafe { out.write(local) };
        Ok(())
    })
}

/// Copies into `buf` (`cap` bytes, NUL-terminated `NAME#INCARNATION`) the `index`-th
/// process added (`removed` = 0) or removed (`removed` = 1) by the last
/// `SGMP_EVENT_SYSTEM_VIEW` event returned by `sgmp_node_next_event`. Returns
/// `SGMP_ERR_STATE` for an index out of range or when no such event was returned yet.
///
/// # Safety
/// `buf` must point to `cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_system_change(
    node: sgmp_node_t,
    removed: u32,
    index: u32,
    buf: *mut c_char,
    cap: usize,
) -> sgmp_status {
    call(|| {
        null_check(buf, "buf")?;
        let e = entry(node)?;
        let last = e.last_change.lock();
        let Some(ch) = last.as_ref() else {
            return Err((
                SGMP_ERR_STATE,
                "no system view event was returned yet".into(),
            ));
        };
        let list = if removed != 0 { &ch.removed } else { &ch.added };
        let Some(p) = list.get(index as usize) else {
            return Err((
                SGMP_ERR_STATE,
                format!(
                    "index {index} is out of range (the list has {})",
                    list.len()
                ),
            ));
        };
        copy_out(&p.to_string(), buf, cap)
    })
}

/// Copies the application snapshot received when this node joined (empty if it
/// founded the group; whether or not its `SGMP_EVENT_JOINED` was read; still readable
/// after `sgmp_node_shutdown`) into `buf` of `cap` bytes and its length into `*len`. If `cap` is
/// too small, nothing is copied, `*len` is the size needed and `SGMP_ERR_BUFFER` is
/// returned.
///
/// # Safety
/// `buf` must point to `cap` writable bytes (it may be NULL when `cap` is 0); `len` must
/// be writable.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_received_snapshot(
    node: sgmp_node_t,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> sgmp_status {
    call(|| {
        null_check(len, "len")?;
        let e = entry(node)?;
        // The running node's copy (kept whether or not its JOINED event was read),
        // else what it had when it was shut down.
        let h = e.handle.lock().clone();
        if let Some(h) = h {
            *e.received.lock() = h.received_snapshot();
        }
        let r = e.received.lock();
        // SAFETY: checked non-NULL.
        unsafe { *len = r.len() };
        if r.len() > cap {
            return Err((
                SGMP_ERR_BUFFER,
                format!("snapshot is {} bytes; buffer holds {cap}", r.len()),
            ));
        }
        if !r.is_empty() {
            null_check(buf, "buf")?;
            // SAFETY: the caller promises `cap` >= r.len() writable bytes.
            unsafe { std::ptr::copy_nonoverlapping(r.as_ptr(), buf, r.len()) };
        }
        Ok(())
    })
}

#[derive(Clone, Copy)]
struct Provider {
    f: extern "C" fn(*mut c_void, *mut u8, usize) -> usize,
    user: *mut c_void,
    cap: usize,
}

// SAFETY: the C caller hands `user` to the node's thread; the API documents that the
// callback runs on that thread.
unsafe impl Send for Provider {}

impl Provider {
    /// The node's snapshot function calling the C callback.
    fn boxed(self) -> sgmp_membership::node::SnapshotProvider {
        // The whole `Provider` (which is Send) moves into the closure.
        Box::new(move || self.call())
    }

    /// Runs the C callback into a fresh buffer of `cap` bytes.
    fn call(&self) -> Vec<u8> {
        let mut buf = vec![0u8; self.cap];
        let n = (self.f)(self.user, buf.as_mut_ptr(), self.cap).min(self.cap);
        buf.truncate(n);
        buf
    }
}

/// How long `sgmp_node_set_snapshot_provider` waits for a running node's loop.
const SET_PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets (or, with a NULL `cb`, clears) the callback producing the application snapshot
/// handed to joiners in State-Xfer. `user` is passed back unchanged. The callback runs
/// on the node's own thread, after every view change.
///
/// It may be set before `sgmp_node_start` (recommended): the node then takes a first
/// snapshot before it starts, so even a joiner that arrives at once receives it. Set
/// after start, it replaces the previous callback once the node's thread has taken it
/// (`SGMP_ERR_TIMEOUT` if that took more than 5 s); a joiner served before that gets
/// the previous (or an empty) snapshot. The setting is kept across
/// `sgmp_node_shutdown` and a new `sgmp_node_start`.
#[no_mangle]
pub extern "C" fn sgmp_node_set_snapshot_provider(
    node: sgmp_node_t,
    cb: sgmp_snapshot_fn,
    user: *mut c_void,
) -> sgmp_status {
    call(|| {
        let e = entry(node)?;
        let cap = e.config.max_snapshot;
        let p = cb.map(|f| Provider { f, user, cap });
        // Held through the change: a start, shutdown or free waits for it, so the
        // provider kept for a restart is the one the node runs.
        let mut life = e.life.lock();
        life.provider = p;
        let h = e.handle.lock().clone();
        let Some(h) = h else {
            return Ok(()); // taken at start
        };
        let f = match p {
            Some(p) => p.boxed(),
            None => Box::new(Vec::new),
        };
        h.set_snapshot_provider(f, SET_PROVIDER_TIMEOUT)
            .map_err(|err| match err {
                sgmp_membership::node::HandleError::Timeout(_) => {
                    (SGMP_ERR_TIMEOUT, err.to_string())
                }
                _ => (SGMP_ERR_STATE, err.to_string()),
            })
    })
}

/// Gives a file descriptor that is readable while events of this node may be
/// waiting, for `poll`, `select` or `epoll` (a Linux `eventfd`). When it is readable,
/// call `sgmp_node_next_event(node, 0, &ev)` until it returns `SGMP_ERR_TIMEOUT`: the
/// call that finds no event makes the descriptor unreadable again, and the next event
/// makes it readable. It may be readable with no event waiting (that call then just
/// returns `SGMP_ERR_TIMEOUT`). Do not read from, write to or close the descriptor: it
/// belongs to the node and stays valid until `sgmp_node_shutdown` or `sgmp_node_free`.
/// The node must be started (`SGMP_ERR_STATE` otherwise).
///
/// # Safety
/// `fd` must point to a writable `int`.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_event_fd(node: sgmp_node_t, fd: *mut c_int) -> sgmp_status {
    call(|| {
        null_check(fd, "fd")?;
        let e = entry(node)?;
        let sub = e.events.lock();
        let Some(sub) = sub.as_ref() else {
            return Err((SGMP_ERR_STATE, "the node is not started".into()));
        };
        let raw = sub.event_fd().map_err(|err| {
            (
                SGMP_ERR_INTERNAL,
                format!("cannot create the event descriptor: {err}"),
            )
        })?;
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { *fd = raw };
        Ok(())
    })
}

/// Writes into `*out` how many of this node's events were dropped because they were
/// not read in time (the queue holds 1024; `sgmp_node_next_event` reads it). The node
/// must be started (`SGMP_ERR_STATE` otherwise).
///
/// # Safety
/// `out` must point to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_events_dropped(node: sgmp_node_t, out: *mut u64) -> sgmp_status {
    call(|| {
        null_check(out, "out")?;
        // From the node's metrics (its only subscriber is this handle's): the
        // subscription's lock may be held by a `sgmp_node_next_event` that waits.
        let dropped = with_handle(node, |h| h.metrics().events_dropped)?;
        // SAFETY: checked non-NULL; the caller promises it is writable.
        unsafe { out.write(dropped) };
        Ok(())
    })
}

/// Leaves the group gracefully, waiting at most `timeout_ms` for the request to be
/// delivered (`SGMP_ERR_TIMEOUT` if it was not delivered in time; the node keeps
/// trying). The node stays up (no longer a member) until `sgmp_node_shutdown`.
#[no_mangle]
pub extern "C" fn sgmp_node_leave(node: sgmp_node_t, timeout_ms: u32) -> sgmp_status {
    call(|| {
        with_handle(node, |h| h.leave(Duration::from_millis(timeout_ms as u64)))?.map_err(|err| {
            match err {
                sgmp_membership::node::HandleError::Timeout(_) => {
                    (SGMP_ERR_TIMEOUT, err.to_string())
                }
                _ => (SGMP_ERR_STATE, err.to_string()),
            }
        })
    })
}

/// Opens the node's event log (`event_log` in its configuration) again at its path and
/// writes the records from now on there, creating the file at once: call it after a log
/// rotation renamed the file (as `sgmpd` does on SIGHUP). `SGMP_OK` also when the node
/// has no event log; `SGMP_ERR_STATE` if the path cannot be opened (the records keep
/// going to the old file; `sgmp_last_error` says why) or the node is not running;
/// `SGMP_ERR_TIMEOUT` if the node's thread did not answer within `timeout_ms`.
#[no_mangle]
pub extern "C" fn sgmp_node_reopen_event_log(node: sgmp_node_t, timeout_ms: u32) -> sgmp_status {
    call(|| {
        with_handle(node, |h| {
            h.reopen_event_log(Duration::from_millis(timeout_ms as u64))
        })?
        .map(|_| ())
        .map_err(|err| match err {
            sgmp_membership::node::HandleError::Timeout(_) => (SGMP_ERR_TIMEOUT, err.to_string()),
            _ => (SGMP_ERR_STATE, err.to_string()),
        })
    })
}

/// True (1) if the node is currently a member of the group, else 0 (also when it is not
/// started or was shut down); -1 on a bad handle.
#[no_mangle]
pub extern "C" fn sgmp_node_is_member(node: sgmp_node_t) -> i32 {
    let mut member = false;
    let s = call(|| {
        member = with_handle(node, |h| h.status().phase == NodePhase::Member)?;
        Ok(())
    });
    match s {
        SGMP_OK => member as i32,
        // Not started, or shut down: a valid handle, not a member.
        SGMP_ERR_STATE => 0,
        _ => -1,
    }
}

/// Stops the node's thread and closes its socket (without leaving: the others will
/// suspect it). Idempotent. The handle stays valid until `sgmp_node_free`.
#[no_mangle]
pub extern "C" fn sgmp_node_shutdown(node: sgmp_node_t) -> sgmp_status {
    call(|| {
        let e = entry(node)?;
        stop(&e, false);
        Ok(())
    })
}

/// Takes the node out under `life` (a start cannot interleave: its handle and its
/// subscription go together) and stops it (its thread joined: its callback runs no
/// more) holding `joining` only. `free`: marks the entry freed first. Returns once no
/// thread joins the node's thread any more.
fn stop(e: &Entry, free: bool) {
    loop {
        let mut life = e.life.lock();
        if free {
            life.freed = true;
        }
        let Some(joining) = e.joining.try_lock() else {
            // Another thread is joining the node's thread: wait for it without `life`,
            // then look again.
            drop(life);
            drop(e.joining.lock());
            continue;
        };
        let h = e.handle.lock().take();
        *e.events.lock() = None;
        drop(life);
        if let Some(h) = h {
            h.shutdown();
            // Readable after the shutdown as before it.
            *e.received.lock() = h.received_snapshot();
        }
        drop(joining);
        return;
    }
}

/// Shuts the node down if needed and frees its handle; later calls with it return
/// `SGMP_ERR_BAD_HANDLE`. Returns once the node's thread is gone (also when another
/// thread's `sgmp_node_shutdown` was under way): the snapshot callback does not run
/// after it, so its `user` may be freed then.
#[no_mangle]
pub extern "C" fn sgmp_node_free(node: sgmp_node_t) -> sgmp_status {
    call(|| {
        let e = registry()
            .lock()
            .remove(&node)
            .ok_or_else(|| bad_handle(node))?;
        // Waits for a start or shutdown under way on another thread.
        stop(&e, true);
        Ok(())
    })
}

/// The message of the last failed call on this thread (empty if none). Valid until the
/// next libsgmp call on this thread.
#[no_mangle]
pub extern "C" fn sgmp_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Every status code with its description.
const STATUS_STR: [(sgmp_status, &CStr); 12] = [
    (SGMP_OK, c"ok"),
    (SGMP_ERR_NULL, c"a pointer argument is NULL"),
    (SGMP_ERR_BAD_HANDLE, c"unknown or freed node handle"),
    (SGMP_ERR_CONFIG, c"invalid configuration"),
    (SGMP_ERR_START, c"the node could not start"),
    (SGMP_ERR_STATE, c"not allowed in the node's current state"),
    (SGMP_ERR_TIMEOUT, c"timed out"),
    (SGMP_ERR_BUFFER, c"buffer too small"),
    (SGMP_ERR_UTF8, c"string is not valid UTF-8"),
    (SGMP_ERR_INTERNAL, c"internal error"),
    (SGMP_ERR_NOT_FOUND, c"no such member or tag"),
    (SGMP_ERR_TAG, c"tag refused"),
];

/// A static description of a status code (any `int`: "unknown status" for a value
/// that is none of `sgmp_status`).
#[no_mangle]
pub extern "C" fn sgmp_status_str(status: c_int) -> *const c_char {
    // Taken as an int: a value outside the enum is no undefined behaviour here.
    STATUS_STR
        .iter()
        .find(|(s, _)| *s as c_int == status)
        .map_or(c"unknown status", |(_, d)| d)
        .as_ptr()
}

/// How long `sgmp_node_set_tag` waits for a running node's loop.
const SET_TAG_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets this node's tag `key` to `value` (NUL-terminated UTF-8), or removes it when
/// `value` is NULL. Keys are 1-64 bytes of `A-Z a-z 0-9 _ . -`; all of a node's tags
/// take at most 512 bytes encoded (`SGMP_ERR_TAG` otherwise, with the reason in
/// `sgmp_last_error`). Before `sgmp_node_start` it sets the tags the node starts with
/// (carried in its join request); on a running node it asks the mgr to commit the new
/// tags, a view change every member installs (`SGMP_EVENT_VIEW`), and returns once the
/// node's thread has taken them (`SGMP_ERR_TIMEOUT` after 5 s). Tags in the TOML
/// configuration (`tags = { role = "db" }`) are the starting point. Kept across
/// `sgmp_node_shutdown` and a new `sgmp_node_start`.
///
/// # Safety
/// `key` must be a NUL-terminated string; `value` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_set_tag(
    node: sgmp_node_t,
    key: *const c_char,
    value: *const c_char,
) -> sgmp_status {
    call(|| {
        let key = c_str(key, "key")?;
        let value = if value.is_null() {
            None
        } else {
            Some(c_str(value, "value")?)
        };
        let e = entry(node)?;
        // Held through the change: two threads' changes both apply, in turn.
        let mut life = e.life.lock();
        let mut tags = life.tags.clone();
        match value {
            Some(v) => tags
                .insert(key, v)
                .map_err(|err| (SGMP_ERR_TAG, err.to_string()))?,
            None => {
                tags.remove(key);
            }
        }
        tags.check_size(e.config.max_tag_bytes)
            .map_err(|err| (SGMP_ERR_TAG, err.to_string()))?;
        let h = e.handle.lock().clone();
        let r = match h {
            Some(h) => h.set_tags(&tags, SET_TAG_TIMEOUT).map_err(|err| match err {
                // The loop has the change queued and applies it later: kept.
                sgmp_membership::node::HandleError::Timeout(_) => {
                    (SGMP_ERR_TIMEOUT, err.to_string())
                }
                sgmp_membership::node::HandleError::Tags(_) => (SGMP_ERR_TAG, err.to_string()),
                _ => (SGMP_ERR_STATE, err.to_string()),
            }),
            None => Ok(()),
        };
        if matches!(r, Ok(()) | Err((SGMP_ERR_TIMEOUT, _))) {
            life.tags = tags;
        }
        r
    })
}

/// Finds member `pid` (`NAME#INCARNATION`) of the node's current view.
fn view_member(v: &View, pid: &str) -> Result<ProcessId, (sgmp_status, String)> {
    v.members
        .iter()
        .map(|m| m.id)
        .find(|id| id.to_string() == pid)
        .ok_or_else(|| {
            (
                SGMP_ERR_NOT_FOUND,
                format!("{pid} is not a member of view {}", v.version),
            )
        })
}

/// Copies into `buf` (`cap` bytes, NUL-terminated) the value of tag `key` of member
/// `pid` (`NAME#INCARNATION`, as in `sgmp_view`) in the node's current view: the tags
/// every member sees at that view's version. `SGMP_ERR_NOT_FOUND` if `pid` is not a
/// member of the current view or has no tag `key`; `SGMP_ERR_BUFFER` if `cap` is too
/// small (values are at most 508 bytes).
///
/// # Safety
/// `pid` and `key` must be NUL-terminated strings; `buf` must point to `cap` writable
/// bytes.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_member_tag(
    node: sgmp_node_t,
    pid: *const c_char,
    key: *const c_char,
    buf: *mut c_char,
    cap: usize,
) -> sgmp_status {
    call(|| {
        null_check(buf, "buf")?;
        let pid = c_str(pid, "pid")?;
        let key = c_str(key, "key")?;
        let v = with_handle(node, |h| h.view())?;
        let id = view_member(&v, pid)?;
        match v.tags_of(id).get(key) {
            Some(val) => copy_out(val, buf, cap),
            None => Err((SGMP_ERR_NOT_FOUND, format!("{pid} has no tag {key:?}"))),
        }
    })
}

/// Copies the `index`-th tag (keys ascending) of member `pid` in the node's current
/// view: its key into `key_buf` (`key_cap` bytes; keys are at most 64 bytes) and its
/// value into `val_buf` (`val_cap` bytes), both NUL-terminated. `SGMP_ERR_NOT_FOUND`
/// when `pid` is not a member or has fewer than `index + 1` tags: iterate from 0 until
/// then.
///
/// # Safety
/// `pid` must be a NUL-terminated string; `key_buf` and `val_buf` must point to
/// `key_cap` and `val_cap` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sgmp_node_member_tag_at(
    node: sgmp_node_t,
    pid: *const c_char,
    index: u32,
    key_buf: *mut c_char,
    key_cap: usize,
    val_buf: *mut c_char,
    val_cap: usize,
) -> sgmp_status {
    call(|| {
        null_check(key_buf, "key_buf")?;
        null_check(val_buf, "val_buf")?;
        let pid = c_str(pid, "pid")?;
        let v = with_handle(node, |h| h.view())?;
        let id = view_member(&v, pid)?;
        let Some((k, val)) = v.tags_of(id).iter().nth(index as usize) else {
            return Err((
                SGMP_ERR_NOT_FOUND,
                format!("{pid} has {} tags", v.tags_of(id).iter().count()),
            ));
        };
        copy_out(k, key_buf, key_cap)?;
        copy_out(val, val_buf, val_cap)
    })
}

/// An empty view, for initialising caller storage from Rust tests.
pub fn sgmp_view_empty() -> sgmp_view {
    empty_view()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    fn toml(id: &str, seeds: &str) -> CString {
        CString::new(format!(
            "id = \"{id}\"\nlisten = \"127.0.0.1:0\"\nseeds = [{seeds}]\nheartbeat_ms = 20\nsuspect_ms = 200\nprotocol_timeout_ms = 400\ncoldstart_rounds = 1\ncoldstart_round_ms = 20\n"
        ))
        .unwrap()
    }

    #[test]
    fn bad_inputs_are_errors_not_crashes() {
        let mut h: sgmp_node_t = 0;
        unsafe {
            assert_eq!(sgmp_node_new(ptr::null(), &mut h), SGMP_ERR_NULL);
            assert_eq!(
                sgmp_node_new(c"x = 1".as_ptr(), ptr::null_mut()),
                SGMP_ERR_NULL
            );
            assert_eq!(
                sgmp_node_new(c"not toml [".as_ptr(), &mut h),
                SGMP_ERR_CONFIG
            );
            assert!(!CStr::from_ptr(sgmp_last_error()).to_bytes().is_empty());
            assert_eq!(
                sgmp_node_new(c"id = \"a#b\"".as_ptr(), &mut h),
                SGMP_ERR_CONFIG
            );
            let mut v = empty_view();
            assert_eq!(sgmp_node_view(12345, &mut v), SGMP_ERR_BAD_HANDLE);
            assert_eq!(sgmp_node_view(0, ptr::null_mut()), SGMP_ERR_NULL);
        }
        assert_eq!(sgmp_node_start(999_999), SGMP_ERR_BAD_HANDLE);
        assert_eq!(sgmp_node_free(999_999), SGMP_ERR_BAD_HANDLE);
        assert_eq!(sgmp_node_is_member(999_999), -1);
        // Any int is a status to describe: no undefined behaviour for a stray one.
        let str_of = |s: c_int| unsafe { CStr::from_ptr(sgmp_status_str(s)) };
        assert_eq!(str_of(42), c"unknown status");
        assert_eq!(str_of(-1), c"unknown status");
        assert_eq!(str_of(SGMP_ERR_TAG as c_int), c"tag refused");
        assert_eq!(str_of(SGMP_OK as c_int), c"ok");
        // A configuration path that never ends is refused after a bounded read.
        unsafe {
            assert_eq!(
                sgmp_node_new_from_file(c"/dev/zero".as_ptr(), &mut h),
                SGMP_ERR_CONFIG
            );
        }
    }

    /// A valid handle of a node not started (or shut down) is not a member: 0, not the
    /// -1 of a bad handle.
    #[test]
    fn a_node_not_started_is_not_a_member() {
        let mut h: sgmp_node_t = 0;
        let t = toml("capi-idle", "");
        unsafe {
            assert_eq!(sgmp_node_new(t.as_ptr(), &mut h), SGMP_OK);
        }
        assert_eq!(sgmp_node_is_member(h), 0);
        let mut dropped = 7u64;
        unsafe {
            assert_eq!(sgmp_node_events_dropped(h, &mut dropped), SGMP_ERR_STATE);
            assert_eq!(sgmp_node_events_dropped(h, ptr::null_mut()), SGMP_ERR_NULL);
        }
        assert_eq!(sgmp_node_start(h), SGMP_OK);
        unsafe {
            assert_eq!(sgmp_node_events_dropped(h, &mut dropped), SGMP_OK);
        }
        assert_eq!(dropped, 0);
        assert_eq!(sgmp_node_shutdown(h), SGMP_OK);
        assert_eq!(sgmp_node_is_member(h), 0);
        assert_eq!(sgmp_node_free(h), SGMP_OK);
        assert_eq!(sgmp_node_is_member(h), -1);
    }

    /// After a rotation renamed the event log, a reopen makes a new file at its path
    /// and the next records go there; a node without a log answers `SGMP_OK`; a path
    /// that cannot be opened is `SGMP_ERR_STATE` with the reason.
    #[test]
    fn the_event_log_is_reopened_after_a_rotation() {
        let dir = std::env::temp_dir().join(format!("sgmp-capi-reopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("events.jsonl");
        let mut h: sgmp_node_t = 0;
        let mut t = toml("capi-reopen", "").into_string().unwrap();
        t.push_str(&format!("event_log = {:?}\n", log.display().to_string()));
        let t = CString::new(t).unwrap();
        unsafe {
            assert_eq!(sgmp_node_new(t.as_ptr(), &mut h), SGMP_OK);
        }
        assert_eq!(
            sgmp_node_reopen_event_log(h, 1000),
            SGMP_ERR_STATE,
            "not started"
        );
        assert_eq!(sgmp_node_start(h), SGMP_OK);
        let t0 = Instant::now();
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("\"view\"")
        {
            assert!(t0.elapsed() < Duration::from_secs(20), "no view logged");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::rename(&log, dir.join("events.jsonl.1")).unwrap();
        assert_eq!(sgmp_node_reopen_event_log(h, 5000), SGMP_OK);
        assert!(log.is_file(), "made at once");
        // Something to log: a leave.
        assert_eq!(sgmp_node_leave(h, 5000), SGMP_OK);
        let t0 = Instant::now();
        while !std::fs::read_to_string(&log).unwrap().contains("\"left\"") {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "the leave went elsewhere"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!std::fs::read_to_string(dir.join("events.jsonl.1"))
            .unwrap()
            .contains("\"left\""));
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(sgmp_node_reopen_event_log(h, 5000), SGMP_ERR_STATE);
        let why = unsafe { CStr::from_ptr(sgmp_last_error()) }
            .to_string_lossy()
            .into_owned();
        assert!(why.contains("events.jsonl"), "{why}");
        assert_eq!(sgmp_node_free(h), SGMP_OK);
        let mut h: sgmp_node_t = 0;
        let t = toml("capi-reopen-none", "");
        unsafe {
            assert_eq!(sgmp_node_new(t.as_ptr(), &mut h), SGMP_OK);
        }
        assert_eq!(sgmp_node_start(h), SGMP_OK);
        assert_eq!(sgmp_node_reopen_event_log(h, 5000), SGMP_OK);
        assert_eq!(sgmp_node_free(h), SGMP_OK);
    }

    /// A thread waiting for an event with a long timeout does not hold up a shutdown or
    /// a free on another thread (they used to wait behind it for the whole timeout);
    /// the waiting thread returns once the node is gone.
    #[test]
    fn a_waiting_reader_does_not_hold_up_a_shutdown() {
        for free in [false, true] {
            let mut h: sgmp_node_t = 0;
            let t = toml(if free { "capi-wait-free" } else { "capi-wait" }, "");
            unsafe {
                assert_eq!(sgmp_node_new(t.as_ptr(), &mut h), SGMP_OK);
            }
            assert_eq!(sgmp_node_start(h), SGMP_OK);
            let mut ev = empty_event();
            // SAFETY: a valid event to write into.
            while unsafe { sgmp_node_next_event(h, 200, &mut ev) } == SGMP_OK {}
            let reader = std::thread::spawn(move || {
                let mut ev = empty_event();
                let t = Instant::now();
                // SAFETY: as above.
                let s = unsafe { sgmp_node_next_event(h, 60_000, &mut ev) };
                (s, t.elapsed())
            });
            std::thread::sleep(Duration::from_millis(100));
            let t = Instant::now();
            let s = if free {
                sgmp_node_free(h)
            } else {
                sgmp_node_shutdown(h)
            };
            assert_eq!(s, SGMP_OK);
            assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
            let (s, waited) = reader.join().unwrap();
            assert_ne!(s, SGMP_OK);
            assert!(waited < Duration::from_secs(10), "{waited:?}");
            if !free {
                assert_eq!(sgmp_node_free(h), SGMP_OK);
            }
        }
    }

    /// Tag changes from several threads at once all apply (each read-modify-write runs
    /// alone): none is lost.
    #[test]
    fn concurrent_tag_changes_are_all_kept() {
        let mut h: sgmp_node_t = 0;
        let t = toml("capi-tags-mt", "");
        unsafe {
            assert_eq!(sgmp_node_new(t.as_ptr(), &mut h), SGMP_OK);
        }
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    for k in 0..10 {
                        let key = CString::new(format!("k{i}_{k}")).unwrap();
                        // SAFETY: NUL-terminated strings.
                        let s = unsafe { sgmp_node_set_tag(h, key.as_ptr(), c"v".as_ptr()) };
                        assert_eq!(s, SGMP_OK);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let e = entry(h).unwrap();
        assert_eq!(e.life.lock().tags.len(), 40);
        drop(e);
        assert_eq!(sgmp_node_free(h), SGMP_OK);
    }

    /// A free racing a shutdown on another thread returns only once the node's thread
    /// is gone: its snapshot callback never runs after the free.
    #[test]
    fn no_callback_runs_after_free_returns() {
        use std::sync::atomic::AtomicUsize;
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        extern "C" fn count(_: *mut c_void, _: *mut u8, _: usize) -> usize {
            // Slow, so that a shutdown's join is under way while free runs.
            std::thread::sleep(Duration::from_millis(20));
            CALLS.fetch_add(1, Ordering::SeqCst);
            0
        }
        for round in 0..3 {
            let mut h: sgmp_node_t = 0;
            let t = toml(&format!("capi-free-{round}"), "");
            unsafe {
                assert_eq!(sgmp_node_new(t.as_ptr(), &mut h), SGMP_OK);
            }
            assert_eq!(
                sgmp_node_set_snapshot_provider(h, Some(count), ptr::null_mut()),
                SGMP_OK
            );
            assert_eq!(sgmp_node_start(h), SGMP_OK);
            let shut = std::thread::spawn(move || sgmp_node_shutdown(h));
            std::thread::sleep(Duration::from_millis(1));
            let _ = sgmp_node_free(h);
            let after_free = CALLS.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(CALLS.load(Ordering::SeqCst), after_free);
            let _ = shut.join().unwrap();
        }
    }

    #[test]
    fn a_node_founds_a_group_and_a_freed_handle_is_rejected() {
        let mut h: sgmp_node_t = 0;
        let t = toml("capi-a", "");
        unsafe {
            assert_eq!(sgmp_node_new(t.as_ptr(), &mut h), SGMP_OK);
        }
        let mut v = empty_view();
        unsafe {
            assert_eq!(sgmp_node_view(h, &mut v), SGMP_ERR_STATE);
        }
        assert_eq!(sgmp_node_start(h), SGMP_OK);
        assert_eq!(sgmp_node_start(h), SGMP_ERR_STATE);
        let mut ev = empty_event();
        let mut got_view = false;
        for _ in 0..100 {
            if unsafe { sgmp_node_next_event(h, 100, &mut ev) } == SGMP_OK
                && ev.kind == sgmp_event_kind::SGMP_EVENT_VIEW
            {
                got_view = true;
                break;
            }
        }
        assert!(got_view, "the founder installed its first view");
        assert_eq!(ev.view.size, 1);
        unsafe {
            assert_eq!(sgmp_node_view(h, &mut v), SGMP_OK);
        }
        assert_eq!(v.size, 1);
        let mut small = [0 as c_char; 4];
        unsafe {
            assert_eq!(
                sgmp_node_id(h, small.as_mut_ptr(), small.len()),
                SGMP_ERR_BUFFER
            );
        }
        assert_eq!(sgmp_node_is_member(h), 1);
        assert_eq!(sgmp_node_free(h), SGMP_OK);
        assert_eq!(sgmp_node_free(h), SGMP_ERR_BAD_HANDLE);
        unsafe {
            assert_eq!(sgmp_node_view(h, &mut v), SGMP_ERR_BAD_HANDLE);
        }
    }

    extern "C" fn state_cb(user: *mut c_void, buf: *mut u8, cap: usize) -> usize {
        // SAFETY: `user` is the NUL-terminated static string given below.
        let s = unsafe { CStr::from_ptr(user as *const c_char) }.to_bytes();
        let n = s.len().min(cap);
        // SAFETY: the library hands `cap` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), buf, n) };
        n
    }

    /// Waits on the node's event fd with poll() and drains with a zero timeout until
    /// `kind` comes (or `deadline` passes).
    /// The node's received snapshot read into `buf` (`sgmp_node_received_snapshot`).
    fn received_snapshot(h: sgmp_node_t, buf: &mut [u8]) -> &[u8] {
        let mut len = 0usize;
        unsafe {
            assert_eq!(
                sgmp_node_received_snapshot(h, buf.as_mut_ptr(), buf.len(), &mut len),
                SGMP_OK
            );
        }
        &buf[..len]
    }

    fn wait_fd(h: sgmp_node_t, kind: sgmp_event_kind, ev: &mut sgmp_event) -> bool {
        let mut fd = -1;
        assert_eq!(unsafe { sgmp_node_event_fd(h, &mut fd) }, SGMP_OK);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let mut p = libc_pollfd {
                fd,
                events: 1,
                revents: 0,
            };
            // SAFETY: one live pollfd.
            if unsafe { poll(&mut p, 1, 100) } == 1 {
                while unsafe { sgmp_node_next_event(h, 0, ev) } == SGMP_OK {
                    if ev.kind == kind {
                        return true;
                    }
                }
            }
        }
        false
    }

    #[repr(C)]
    struct libc_pollfd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    extern "C" {
        fn poll(fds: *mut libc_pollfd, n: u64, timeout: i32) -> i32;
    }

    /// Defect 8 of issue 18: a provider set before start is in place for a joiner that
    /// arrives at once; the event fd wakes poll().
    #[test]
    fn provider_before_start_reaches_an_immediate_joiner_and_event_fd_polls() {
        let mut a: sgmp_node_t = 0;
        let ta = toml("capi-snap-a", "");
        unsafe { assert_eq!(sgmp_node_new(ta.as_ptr(), &mut a), SGMP_OK) };
        let mut fd = -1;
        assert_eq!(unsafe { sgmp_node_event_fd(a, &mut fd) }, SGMP_ERR_STATE);
        assert_eq!(
            sgmp_node_set_snapshot_provider(
                a,
                Some(state_cb),
                c"early-state".as_ptr() as *mut c_void
            ),
            SGMP_OK
        );
        assert_eq!(sgmp_node_start(a), SGMP_OK);
        let mut ev = empty_event();
        assert!(wait_fd(a, sgmp_event_kind::SGMP_EVENT_VIEW, &mut ev));
        let mut seed = [0 as c_char; 64];
        unsafe { assert_eq!(sgmp_node_local_addr(a, seed.as_mut_ptr(), 64), SGMP_OK) };
        let seed = unsafe { CStr::from_ptr(seed.as_ptr()) }.to_str().unwrap();
        // The joiner starts right after the founder's first view: the first joiner.
        let mut b: sgmp_node_t = 0;
        let tb = toml("capi-snap-b", &format!("\"{seed}\""));
        unsafe { assert_eq!(sgmp_node_new(tb.as_ptr(), &mut b), SGMP_OK) };
        assert_eq!(sgmp_node_start(b), SGMP_OK);
        assert!(wait_fd(b, sgmp_event_kind::SGMP_EVENT_JOINED, &mut ev));
        assert_eq!(ev.snapshot_len, b"early-state".len() as u64);
        let mut buf = [0u8; 32];
        assert_eq!(received_snapshot(b, &mut buf), b"early-state");
        // A joiner that reads no event (it waits with is_member) has the snapshot too,
        // and keeps it after its shutdown.
        let mut c: sgmp_node_t = 0;
        let tc = toml("capi-snap-c", &format!("\"{seed}\""));
        unsafe { assert_eq!(sgmp_node_new(tc.as_ptr(), &mut c), SGMP_OK) };
        assert_eq!(sgmp_node_start(c), SGMP_OK);
        let t = std::time::Instant::now();
        while sgmp_node_is_member(c) != 1 && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(sgmp_node_is_member(c), 1);
        for _ in 0..2 {
            assert_eq!(received_snapshot(c, &mut buf), b"early-state");
            assert_eq!(sgmp_node_shutdown(c), SGMP_OK);
        }
        assert_eq!(sgmp_node_free(c), SGMP_OK);
        assert_eq!(sgmp_node_free(b), SGMP_OK);
        assert_eq!(sgmp_node_free(a), SGMP_OK);
    }

    /// Reads tag `key` of member `pid` at node `h` (None: not found).
    fn member_tag(h: sgmp_node_t, pid: &CStr, key: &CStr) -> Option<String> {
        let mut buf = [0 as c_char; 128];
        let st =
            unsafe { sgmp_node_member_tag(h, pid.as_ptr(), key.as_ptr(), buf.as_mut_ptr(), 128) };
        (st == SGMP_OK).then(|| {
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_str()
                .unwrap()
                .to_string()
        })
    }

    /// Member tags through the C API: set before start (with the config's), carried by
    /// the join, read at every member; changed on a running node: a new view.
    #[test]
    fn tags_set_before_start_reach_every_member_and_a_change_is_a_new_view() {
        let mut a: sgmp_node_t = 0;
        let ta = CString::new(format!(
            "{}tags = {{ zone = \"eu-1\" }}\n",
            toml("capi-tag-a", "").to_str().unwrap()
        ))
        .unwrap();
        unsafe {
            assert_eq!(sgmp_node_new(ta.as_ptr(), &mut a), SGMP_OK);
            assert_eq!(
                sgmp_node_set_tag(a, c"role".as_ptr(), c"db".as_ptr()),
                SGMP_OK
            );
            assert_eq!(
                sgmp_node_set_tag(a, c"bad key".as_ptr(), c"x".as_ptr()),
                SGMP_ERR_TAG
            );
            let last = CStr::from_ptr(sgmp_last_error()).to_str().unwrap();
            assert!(last.contains("A-Z a-z 0-9"), "{last}");
            let big = CString::new("x".repeat(600)).unwrap();
            assert_eq!(
                sgmp_node_set_tag(a, c"big".as_ptr(), big.as_ptr()),
                SGMP_ERR_TAG
            );
        }
        assert_eq!(sgmp_node_start(a), SGMP_OK);
        let mut ev = empty_event();
        assert!(wait_fd(a, sgmp_event_kind::SGMP_EVENT_VIEW, &mut ev));
        let mut seed = [0 as c_char; 64];
        unsafe { assert_eq!(sgmp_node_local_addr(a, seed.as_mut_ptr(), 64), SGMP_OK) };
        let seed = unsafe { CStr::from_ptr(seed.as_ptr()) }.to_str().unwrap();
        let mut pid_a = [0 as c_char; 64];
        unsafe { assert_eq!(sgmp_node_id(a, pid_a.as_mut_ptr(), 64), SGMP_OK) };
        let pid_a = unsafe { CStr::from_ptr(pid_a.as_ptr()) }.to_owned();

        let mut b: sgmp_node_t = 0;
        let tb = toml("capi-tag-b", &format!("\"{seed}\""));
        unsafe {
            assert_eq!(sgmp_node_new(tb.as_ptr(), &mut b), SGMP_OK);
            assert_eq!(
                sgmp_node_set_tag(b, c"role".as_ptr(), c"web".as_ptr()),
                SGMP_OK
            );
        }
        assert_eq!(sgmp_node_start(b), SGMP_OK);
        assert!(wait_fd(b, sgmp_event_kind::SGMP_EVENT_JOINED, &mut ev));
        let mut pid_b = [0 as c_char; 64];
        unsafe { assert_eq!(sgmp_node_id(b, pid_b.as_mut_ptr(), 64), SGMP_OK) };
        let pid_b = unsafe { CStr::from_ptr(pid_b.as_ptr()) }.to_owned();
        // Until both see both members' tags (a's own tags are committed after it
        // founded; b's came with its join).
        let until = std::time::Instant::now() + Duration::from_secs(20);
        let both = |h| {
            member_tag(h, &pid_a, c"role").as_deref() == Some("db")
                && member_tag(h, &pid_a, c"zone").as_deref() == Some("eu-1")
                && member_tag(h, &pid_b, c"role").as_deref() == Some("web")
        };
        while !(both(a) && both(b)) {
            assert!(std::time::Instant::now() < until, "tags never agreed");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(member_tag(b, &pid_b, c"zone"), None);
        let (mut k, mut v) = ([0 as c_char; 65], [0 as c_char; 64]);
        let mut at = |i| unsafe {
            sgmp_node_member_tag_at(b, pid_a.as_ptr(), i, k.as_mut_ptr(), 65, v.as_mut_ptr(), 64)
        };
        assert_eq!(at(0), SGMP_OK);
        assert_eq!(at(1), SGMP_OK);
        assert_eq!(at(2), SGMP_ERR_NOT_FOUND);
        // A change on a running node is a view change seen by the other member.
        let mut view = empty_view();
        unsafe { assert_eq!(sgmp_node_view(a, &mut view), SGMP_OK) };
        let before = view.version;
        unsafe { assert_eq!(sgmp_node_set_tag(b, c"role".as_ptr(), ptr::null()), SGMP_OK) };
        while member_tag(a, &pid_b, c"role").is_some() {
            assert!(std::time::Instant::now() < until, "the change never came");
            std::thread::sleep(Duration::from_millis(20));
        }
        unsafe { assert_eq!(sgmp_node_view(a, &mut view), SGMP_OK) };
        assert!(view.version > before);
        assert_eq!(sgmp_node_free(b), SGMP_OK);
        assert_eq!(sgmp_node_free(a), SGMP_OK);
    }

    #[test]
    fn header_is_current() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
        let mut out = Vec::new();
        cbindgen::Builder::new()
            .with_crate(&dir)
            .with_config(config)
            .generate()
            .expect("cbindgen generates the header")
            .write(&mut out);
        let generated = String::from_utf8(out).unwrap();
        let header = dir.join("../include/sgmp.h");
        if std::env::var_os("SGMP_WRITE_HEADER").is_some() {
            std::fs::write(&header, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&header).unwrap_or_default();
        assert!(
            committed == generated,
            "membership/include/sgmp.h is stale: run `make header` and commit it"
        );
    }
}
