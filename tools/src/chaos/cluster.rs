//! The `sgmpd` processes of a chaos run: spawning, signals, control requests, and a
//! guard that kills every child when the run ends (normally, by error or by panic).

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::control::{request, Request};

/// Node timing of a chaos run (the fast settings of the multi-process tests).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Heartbeat interval, ms.
    pub heartbeat_ms: u64,
    /// Suspicion timeout, ms.
    pub suspect_ms: u64,
    /// Protocol timeout, ms.
    pub protocol_timeout_ms: u64,
    /// Join retry, ms.
    pub join_retry_ms: u64,
    /// Join timeout (then a new incarnation), ms.
    pub join_timeout_ms: u64,
    /// Cold start rounds.
    pub coldstart_rounds: u32,
    /// Cold start round length, ms.
    pub coldstart_round_ms: u64,
    /// How the daemons wait (`sgmpd --idle`).
    pub idle: sgmp_membership::node::NodeIdle,
    /// Keep-warm pings, µs (`sgmpd --warm-us`; 0: off).
    pub warm_us: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: 20,
            suspect_ms: 250,
            protocol_timeout_ms: 500,
            join_retry_ms: 100,
            join_timeout_ms: 3_000,
            coldstart_rounds: 3,
            coldstart_round_ms: 60,
            idle: sgmp_membership::node::NodeIdle::Adaptive,
            warm_us: 0,
        }
    }
}

/// What a node said about itself through its control socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Its process id, `NAME#INC`.
    pub pid: String,
    /// `member`, `discovering`, `joining`, ...
    pub phase: String,
    /// View version.
    pub version: u64,
    /// View members, in rank order.
    pub members: Vec<String>,
    /// Members of that view it believes faulty (suspected, not yet removed).
    pub faulty: Vec<String>,
}

impl Status {
    /// A member (not joining, not discovering, not excluded).
    pub fn is_member(&self) -> bool {
        self.phase == "member"
    }
}

/// One node slot: a name and an address, and the process currently running it.
#[derive(Debug)]
pub struct Slot {
    /// Node name (`n1`...).
    pub name: String,
    /// UDP address.
    pub addr: SocketAddr,
    /// The running process, if any.
    pub child: Option<Child>,
    /// The process is SIGSTOPped.
    pub stopped: bool,
    /// Lives started so far (each has its own event log).
    pub lives: u32,
    /// Last status answered (cleared when the process dies).
    pub status: Option<Status>,
}

impl Slot {
    /// Running and not stopped.
    pub fn is_live(&self) -> bool {
        self.child.is_some() && !self.stopped
    }
}

/// The processes of a chaos run. Dropping it kills them all.
#[derive(Debug)]
pub struct Cluster {
    /// Where logs, configs and sockets live.
    pub dir: PathBuf,
    /// The slots (founders first, then spares).
    pub slots: Vec<Slot>,
    sgmpd: PathBuf,
    sgmpctl: Option<PathBuf>,
    timing: Timing,
    seed: u64,
    /// Processes spawned.
    pub spawned: u64,
    /// Extra environment of every `sgmpd` spawned.
    pub env: Vec<(String, String)>,
}

impl Cluster {
    /// The UDP addresses of `slots`, comma-separated (the peer list of `sgmpctl fault
    /// partition` and `cut`).
    pub fn addr_list(&self, slots: &[usize]) -> String {
        slots
            .iter()
            .map(|&i| self.slots[i].addr.to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `total` slots with free loopback ports; nothing runs yet.
    pub fn new(
        dir: PathBuf,
        total: usize,
        sgmpd: PathBuf,
        sgmpctl: Option<PathBuf>,
        timing: Timing,
        seed: u64,
    ) -> std::io::Result<Cluster> {
        std::fs::create_dir_all(&dir)?;
        let socks = (0..total)
            .map(|_| UdpSocket::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()?;
        let slots = socks
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(Slot {
                    name: format!("n{}", i + 1),
                    addr: s.local_addr()?,
                    child: None,
                    stopped: false,
                    lives: 0,
                    status: None,
                })
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        drop(socks);
        Ok(Cluster {
            dir,
            slots,
            sgmpd,
            sgmpctl,
            timing,
            seed,
            spawned: 0,
            env: Vec::new(),
        })
    }

    fn sock(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.sock", self.slots[i].name))
    }

    /// The event log files of every life of every slot.
    pub fn logs(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for s in &self.slots {
            for life in 0..s.lives {
                v.push(self.dir.join(format!("{}.{life}.log", s.name)));
            }
        }
        v
    }

    /// Starts a new process (a new incarnation) in slot `i`. Every slot is a seed of
    /// every other, so a fresh process may found the group if nobody answers; a slot
    /// whose earlier life was a member has a state file (`NAME.member`) and its new
    /// process only joins.
    pub fn spawn(&mut self, i: usize) -> std::io::Result<()> {
        let seeds: Vec<String> = self
            .slots
            .iter()
            .map(|s| format!("\"{}\"", s.addr))
            .collect();
        let t = self.timing;
        let s = &self.slots[i];
        let life = s.lives;
        let cfg = format!(
            "id = \"{name}\"\nlisten = \"{addr}\"\nseeds = [{seeds}]\nheartbeat_ms = {hb}\n\
             suspect_ms = {sus}\nprotocol_timeout_ms = {pt}\njoin_retry_ms = {jr}\n\
             join_timeout_ms = {jt}\ncoldstart_rounds = {cr}\ncoldstart_round_ms = {crm}\n\
             idle = \"{idle}\"\nwarm_us = {warm}\n[faults]\nseed = {fseed}\n",
            name = s.name,
            addr = s.addr,
            seeds = seeds.join(", "),
            hb = t.heartbeat_ms,
            sus = t.suspect_ms,
            pt = t.protocol_timeout_ms,
            jr = t.join_retry_ms,
            jt = t.join_timeout_ms,
            cr = t.coldstart_rounds,
            crm = t.coldstart_round_ms,
            idle = t.idle,
            warm = t.warm_us,
            fseed = self
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add((i as u64) << 20 | life as u64),
        );
        let cfg_path = self.dir.join(format!("{}.toml", s.name));
        std::fs::write(&cfg_path, cfg)?;
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.stderr", s.name)))?;
        let mut cmd = Command::new(&self.sgmpd);
        cmd.arg("--config")
            .arg(&cfg_path)
            .arg("--event-log")
            .arg(self.dir.join(format!("{}.{life}.log", s.name)))
            .arg("--control")
            .arg(self.sock(i))
            .arg("--state-dir")
            .arg(self.dir.join(format!("{}.state", s.name)))
            // The schedule injects loss, duplication, reordering and partitions.
            .arg("--fault-injection")
            .env("RUST_LOG", "warn")
            // Only a run that asks for it sabotages its daemons.
            .env_remove(sgmp_membership::sabotage::ENV)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; the child dies with SIGKILL if this
            // process dies first (even by SIGKILL), so no daemon outlives a run.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let child = cmd.spawn()?;
        let s = &mut self.slots[i];
        s.child = Some(child);
        s.stopped = false;
        s.lives += 1;
        s.status = None;
        self.spawned += 1;
        Ok(())
    }

    fn signal(&self, i: usize, sig: i32) {
        if let Some(c) = &self.slots[i].child {
            // SAFETY: sends a signal to a child of ours that has not been reaped.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self, i: usize) {
        self.signal(i, libc::SIGCONT);
        let s = &mut self.slots[i];
        if let Some(mut c) = s.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        s.stopped = false;
        s.status = None;
    }

    /// SIGSTOP.
    pub fn stop(&mut self, i: usize) {
        if self.slots[i].is_live() {
            self.signal(i, libc::SIGSTOP);
            self.slots[i].stopped = true;
        }
    }

    /// SIGCONT.
    pub fn cont(&mut self, i: usize) {
        if self.slots[i].stopped {
            self.signal(i, libc::SIGCONT);
            self.slots[i].stopped = false;
        }
    }

    /// Reaps processes that exited by themselves; returns their slots.
    pub fn reap(&mut self) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Some(c) = &mut s.child {
                if let Ok(Some(_)) = c.try_wait() {
                    s.child = None;
                    s.stopped = false;
                    s.status = None;
                    out.push(i);
                }
            }
        }
        out
    }

    /// A fault command through `sgmpctl --control SOCK fault ARGS...` (or, without
    /// the binary, the same request through the control library). Bounded: 3 s.
    pub fn fault(&self, i: usize, args: &[String]) -> Result<(), String> {
        if !self.slots[i].is_live() {
            return Err("not running".into());
        }
        match &self.sgmpctl {
            Some(ctl) => {
                let mut child = Command::new(ctl)
                    .arg("--control")
                    .arg(self.sock(i))
                    .arg("fault")
                    .args(args)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| format!("cannot run sgmpctl: {e}"))?;
                let until = Instant::now() + Duration::from_secs(3);
                loop {
                    match child.try_wait() {
                        Ok(Some(st)) if st.success() => return Ok(()),
                        Ok(Some(st)) => {
                            let mut e = String::new();
                            if let Some(mut p) = child.stderr.take() {
                                let _ = std::io::Read::read_to_string(&mut p, &mut e);
                            }
                            return Err(format!("sgmpctl {st}: {}", e.trim()));
                        }
                        Ok(None) if Instant::now() < until => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err("sgmpctl timed out".into());
                        }
                    }
                }
            }
            None => {
                let req = Request {
                    cmd: "fault".into(),
                    args: args.to_vec(),
                };
                request(&self.sock(i), &req, Duration::from_secs(3))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Asks slot `i` for its status (bounded); `None` if not running, stopped, or
    /// not answering.
    pub fn poll_status(&mut self, i: usize) -> Option<Status> {
        if !self.slots[i].is_live() {
            return None;
        }
        let req = Request {
            cmd: "status".into(),
            args: Vec::new(),
        };
        let v = request(&self.sock(i), &req, Duration::from_millis(500)).ok()?;
        let st = parse_status(&v)?;
        self.slots[i].status = Some(st.clone());
        Some(st)
    }

    /// The stderr tail of every slot (for failure reports).
    pub fn stderr_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for s in &self.slots {
            let t = std::fs::read_to_string(self.dir.join(format!("{}.stderr", s.name)))
                .unwrap_or_default();
            let l: Vec<&str> = t.lines().collect();
            let from = l.len().saturating_sub(lines);
            out += &format!("--- {} ---\n{}\n", s.name, l[from..].join("\n"));
        }
        out
    }

    /// SIGKILLs every child (resumed first) and reaps it.
    pub fn kill_all(&mut self) {
        for i in 0..self.slots.len() {
            self.kill(i);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn parse_status(v: &Value) -> Option<Status> {
    Some(Status {
        pid: v["node"].as_str()?.to_string(),
        phase: v["phase"].as_str()?.to_string(),
        version: v["version"].as_u64().unwrap_or(0),
        members: strings(&v["members"]),
        faulty: strings(&v["faulty"]),
    })
}

/// The strings of a JSON array (none if it is not one).
fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `sgmpd` and `sgmpctl` next to the running executable (or under the `deps/` parent
/// of a test binary), if present.
pub fn sibling_binaries() -> (Option<PathBuf>, Option<PathBuf>) {
    let exe = std::env::current_exe().ok();
    let dirs: Vec<PathBuf> = exe
        .iter()
        .filter_map(|e| e.parent())
        .flat_map(|d| [d.to_path_buf(), d.join("..")])
        .collect();
    let find = |name: &str| -> Option<PathBuf> {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| Path::new(p).is_file())
    };
    (find("sgmpd"), find("sgmpctl"))
}
