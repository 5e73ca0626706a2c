//! Multi-process tests: real `sgmpd` processes on 127.0.0.1, driven by signals and the
//! control socket; every run's event logs are checked for the Strong GMP properties
//! (`sgmp_tools::logcheck`). Each test is bounded in time and kills its children on drop.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sgmp_tools::control::{request, Request};
use sgmp_tools::logcheck;

const SGMPD: &str = env!("CARGO_BIN_EXE_sgmpd");

/// Makes the child started by `cmd` inherit `sock` as its file descriptor 3.
fn inherit_as_fd3(cmd: &mut Command, sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let fd = sock.as_raw_fd();
    // SAFETY: between fork and exec the closure only calls dup2 and fcntl, which are
    // async-signal-safe. dup2 gives a descriptor 3 without FD_CLOEXEC, except when the
    // socket is descriptor 3 already (dup2 then does nothing): clear the flag then.
    unsafe {
        cmd.pre_exec(move || {
            let ok = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0) >= 0
            } else {
                libc::dup2(fd, 3) >= 0
            };
            if !ok {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

struct Cluster {
    dir: PathBuf,
    /// Each daemon's UDP socket, bound by the test and held for the whole test: every
    /// (re)start of daemon i inherits socket i (`--listen-fd`), so no other test can
    /// take the port between choosing it and binding it, nor between two starts.
    socks: Vec<UdpSocket>,
    addrs: Vec<SocketAddr>,
    procs: Vec<Option<Child>>,
    started: Instant,
}

impl Cluster {
    /// `n` daemons n1..n{n}, all seeds of each other, started at the same moment.
    fn start(test: &str, n: usize) -> Cluster {
        let mut c = Cluster::prepare(test, n);
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    /// Addresses and directories for `n` daemons, none started.
    fn prepare(test: &str, n: usize) -> Cluster {
        let dir = std::env::temp_dir().join(format!("sgmp-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socks: Vec<UdpSocket> = (0..n)
            .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = socks.iter().map(|s| s.local_addr().unwrap()).collect();
        Cluster {
            dir,
            socks,
            addrs,
            procs: (0..n).map(|_| None).collect(),
            started: Instant::now(),
        }
    }

    fn name(i: usize) -> String {
        format!("n{}", i + 1)
    }

    fn spawn(&mut self, i: usize) {
        let seeds: Vec<String> = self.addrs.iter().map(|a| a.to_string()).collect();
        let err = std::fs::File::create(self.dir.join(format!("n{}.stderr", i + 1))).unwrap();
        let mut cmd = Command::new(SGMPD);
        inherit_as_fd3(&mut cmd, &self.socks[i]);
        let child = cmd
            .args(["--id", &Self::name(i)])
            .args(["--listen", &self.addrs[i].to_string()])
            .args(["--listen-fd", "3"])
            .args(["--seeds", &seeds.join(",")])
            .arg("--event-log")
            .arg(self.dir.join(format!("n{}.log", i + 1)))
            .arg("--control")
            .arg(self.sock(i))
            .arg("--state-dir")
            .arg(self.dir.join(format!("n{}.state", i + 1)))
            .args(["--heartbeat-ms", "25", "--suspect-ms", "300"])
            .args(["--protocol-timeout-ms", "600"])
            .args(["--coldstart-rounds", "3", "--coldstart-round-ms", "60"])
            .arg("--fault-injection")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn sgmpd");
        self.procs[i] = Some(child);
    }

    fn sock(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{}.sock", i + 1))
    }

    fn pid(&self, i: usize) -> i32 {
        self.procs[i].as_ref().expect("running").id() as i32
    }

    fn signal(&self, i: usize, sig: i32) {
        // SAFETY: sends a signal to our own child process.
        unsafe { libc::kill(self.pid(i), sig) };
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits for process `i` to exit by itself; returns its exit code.
    fn wait_exit(&mut self, i: usize, timeout: Duration) -> Option<i32> {
        let until = Instant::now() + timeout;
        let c = self.procs[i].as_mut()?;
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                self.procs[i] = None;
                return st.code();
            }
            if Instant::now() > until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ctl(&self, i: usize, cmd: &str, args: &[&str]) -> Option<Value> {
        let req = Request {
            cmd: cmd.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        request(&self.sock(i), &req, Duration::from_secs(3)).ok()
    }

    /// (pid, version, member pids) of process `i`, if it answers and is a member.
    fn view(&self, i: usize) -> Option<(String, u64, Vec<String>)> {
        let v = self.ctl(i, "status", &[])?;
        if v["phase"] != "member" {
            return None;
        }
        let members = v["members"]
            .as_array()?
            .iter()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect();
        Some((
            v["node"].as_str()?.to_string(),
            v["version"].as_u64()?,
            members,
        ))
    }

    /// Waits until every process in `live` is a member of one same view whose members
    /// are exactly the nodes of `live`; returns that view's members.
    fn wait_view(&self, live: &[usize], timeout: Duration) -> (u64, Vec<String>) {
        let until = Instant::now() + timeout;
        loop {
            let views: Vec<_> = live.iter().map(|&i| self.view(i)).collect();
            if let Some(Some((_, v, m))) = views.first() {
                let names: Vec<String> = m
                    .iter()
                    .map(|p| p.split('#').next().unwrap().to_string())
                    .collect();
                let mut want: Vec<String> = live.iter().map(|&i| Self::name(i)).collect();
                let mut got = names.clone();
                want.sort();
                got.sort();
                if got == want
                    && views
                        .iter()
                        .all(|x| x.as_ref().is_some_and(|(_, v2, m2)| v2 == v && m2 == m))
                {
                    return (*v, m.clone());
                }
            }
            assert!(
                Instant::now() < until,
                "no common view of {live:?} after {timeout:?}: {views:?}\n{}",
                self.stderr_tail()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn stderr_tail(&self) -> String {
        let mut s = String::new();
        for i in 0..self.procs.len() {
            let t = std::fs::read_to_string(self.dir.join(format!("n{}.stderr", i + 1)))
                .unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            let from = lines.len().saturating_sub(8);
            s += &format!("--- n{} ---\n{}\n", i + 1, lines[from..].join("\n"));
        }
        s
    }

    fn logs(&self) -> Vec<Vec<logcheck::Record>> {
        (0..self.procs.len())
            .map(|i| {
                let path = self.dir.join(format!("n{}.log", i + 1));
                logcheck::read_if_any(&path).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }

    /// Checks the Strong GMP properties over every log.
    fn check_logs(&self) -> logcheck::Report {
        let r = logcheck::check(&self.logs());
        assert!(r.is_ok(), "GMP violations: {:#?}", r.violations);
        // Every record carries `mono_us`: times across the logs are compared on it.
        assert!(r.records == 0 || r.monotonic, "records without mono_us");
        r
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            if let Some(c) = &self.procs[i] {
                // SAFETY: resumes a possibly stopped child of ours before killing it.
                unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
            }
            self.kill(i);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
        eprintln!("cluster ran {:?}", self.started.elapsed());
    }
}

const T: Duration = Duration::from_secs(15);

fn rank_of(members: &[String], name: &str) -> usize {
    members
        .iter()
        .position(|p| p.split('#').next() == Some(name))
        .unwrap()
}

fn index_of(pid: &str) -> usize {
    pid.trim_start_matches('n')
        .split('#')
        .next()
        .unwrap()
        .parse::<usize>()
        .unwrap()
        - 1
}

#[test]
fn node_cold_start_then_sigkill_of_mgr_and_of_outer_member() {
    let mut c = Cluster::start("kill", 5);
    // Started at the same moment: one group of five, never two.
    let (_, m) = c.wait_view(&[0, 1, 2, 3, 4], T);
    let r = c.check_logs();
    assert_eq!(
        r.versions.get(&1).map(Vec::len),
        Some(1),
        "one founder: {:?}",
        r.versions
    );
    // SIGKILL the mgr (most senior).
    let mgr = index_of(&m[0]);
    c.kill(mgr);
    let mut live: Vec<usize> = (0..5).filter(|&i| i != mgr).collect();
    let (_, m) = c.wait_view(&live, T);
    // SIGKILL an outer member (the most junior).
    let outer = index_of(m.last().unwrap());
    assert_ne!(rank_of(&m, &Cluster::name(outer)), 0);
    c.kill(outer);
    live.retain(|&i| i != outer);
    c.wait_view(&live, T);
    c.check_logs();
}

#[test]
fn node_sigstopped_member_is_excluded_and_rejoins_as_new_incarnation() {
    let c = Cluster::start("stop", 5);
    let (_, m) = c.wait_view(&[0, 1, 2, 3, 4], T);
    let victim = index_of(&m[2]);
    let old_pid = m[2].clone();
    c.signal(victim, libc::SIGSTOP);
    let live: Vec<usize> = (0..5).filter(|&i| i != victim).collect();
    c.wait_view(&live, T);
    c.signal(victim, libc::SIGCONT);
    let (_, m) = c.wait_view(&[0, 1, 2, 3, 4], T);
    let new_pid = &m[rank_of(&m, &Cluster::name(victim))];
    assert_ne!(new_pid, &old_pid, "rejoined as a new incarnation");
    let logs = c.logs();
    assert!(
        logs[victim]
            .iter()
            .any(|r| r.node == old_pid && r.kind == "excluded"),
        "the stopped process learned it was excluded"
    );
    c.check_logs();
}

#[test]
fn node_graceful_leave_and_sigterm() {
    let mut c = Cluster::start("leave", 5);
    let (_, m) = c.wait_view(&[0, 1, 2, 3, 4], T);
    // `sgmpctl leave` on an outer member: it leaves and its daemon exits 0.
    let a = index_of(&m[3]);
    let answer = c.ctl(a, "leave", &[]).expect("leave answered");
    assert_eq!(answer["phase"], "left");
    assert_eq!(c.wait_exit(a, Duration::from_secs(5)), Some(0));
    let mut live: Vec<usize> = (0..5).filter(|&i| i != a).collect();
    let (_, m) = c.wait_view(&live, T);
    // SIGTERM on another: graceful leave, exit 0.
    let b = index_of(&m[1]);
    c.signal(b, libc::SIGTERM);
    assert_eq!(c.wait_exit(b, Duration::from_secs(5)), Some(0));
    live.retain(|&i| i != b);
    c.wait_view(&live, T);
    let r = c.check_logs();
    assert!(c.logs().iter().flatten().any(|r| r.kind == "left"));
    assert!(r.records > 0);
}

#[test]
fn node_minority_partition_makes_no_progress_and_rejoins_after_heal() {
    let c = Cluster::start("part", 5);
    let (v0, m) = c.wait_view(&[0, 1, 2, 3, 4], T);
    // The two most junior members are cut off from the three others.
    let minority = [index_of(&m[3]), index_of(&m[4])];
    let majority: Vec<usize> = (0..5).filter(|i| !minority.contains(i)).collect();
    let maj_names: Vec<String> = majority.iter().map(|&i| Cluster::name(i)).collect();
    for &i in &minority {
        let r = c.ctl(i, "fault", &["partition", &maj_names.join(",")]);
        assert!(r.is_some(), "partition accepted");
    }
    let (v1, _) = c.wait_view(&majority, T);
    assert!(v1 > v0);
    // The minority makes no progress: none of its processes installs a view the
    // majority did not (checked by the one-view-per-version property). Cut off, each
    // withholds its suspicions (D24): it stays in the view it had, for as long as the
    // cut lasts (twelve suspicion timeouts here), and installs nothing.
    std::thread::sleep(Duration::from_millis(1_500));
    for &i in &minority {
        if let Some((_, v, _)) = c.view(i) {
            assert!(
                v <= v0,
                "{} moved on to v{v} in a minority",
                Cluster::name(i)
            );
        }
    }
    let r = c.check_logs();
    for &i in &minority {
        let n = Cluster::name(i);
        for (pid, seq) in &r.installed {
            if pid.starts_with(&format!("{n}#")) {
                assert!(
                    seq.iter().all(|&v| v <= v0),
                    "{pid} of the minority installed {seq:?} while cut off"
                );
            }
        }
    }
    // Heal: a member tells each minority process it was excluded (D24), and it
    // rejoins at once as a new incarnation.
    for &i in &minority {
        assert!(c.ctl(i, "fault", &["clear"]).is_some());
    }
    let (_, m) = c.wait_view(&[0, 1, 2, 3, 4], T);
    let logs = c.logs();
    for &i in &minority {
        let n = Cluster::name(i);
        assert!(
            logs[i].iter().any(|r| r.kind == "excluded"),
            "{n} learned it was excluded"
        );
        assert!(
            !m.iter()
                .any(|p| p.starts_with(&format!("{n}#")) && logs[i][0].node == *p),
            "{n} came back as a new incarnation: {m:?}"
        );
    }
    c.check_logs();
}

#[test]
fn node_bad_flags_taken_port_and_bad_config_fail_cleanly() {
    let run = |args: &[&str]| {
        let out = Command::new(SGMPD)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run sgmpd");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--id", "a", "--listen", "not-an-address"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("listen"), "{err}");
    let (code, _) = run(&["--bogus"]);
    assert_ne!(code, Some(0));
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&["--id", "a", "--listen", &addr]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot listen on"), "{err}");
    let (code, err) = run(&["--id", "a", "--config", "/nonexistent/sgmp.toml"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot read config file"), "{err}");
    let dir = std::env::temp_dir().join(format!("sgmp-badcfg-{}.toml", std::process::id()));
    std::fs::write(&dir, "heartbeat_ms = \"often\"\n").unwrap();
    let (code, err) = run(&["--id", "a", "--config", dir.to_str().unwrap()]);
    let _ = std::fs::remove_file(&dir);
    assert_eq!(code, Some(1));
    assert!(err.contains("invalid config"), "{err}");
    let (code, err) = run(&["--listen", "127.0.0.1:0"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--id"), "{err}");
}

/// Issue 16, case 1 with crashes: five members, SIGKILL all five, start all five again
/// from their state directories: the group comes back by itself as the same view
/// sequence (versions go on, no second version 1), with no operator step.
#[test]
fn full_restart_after_sigkill_of_all_comes_back_as_the_same_sequence() {
    let mut c = Cluster::start("restart-kill", 5);
    let all: Vec<usize> = (0..5).collect();
    let (v0, _) = c.wait_view(&all, Duration::from_secs(15));
    for i in 0..5 {
        c.kill(i);
    }
    let restarted = Instant::now();
    for i in 0..5 {
        c.spawn(i);
    }
    let (v1, members) = c.wait_view(&all, Duration::from_secs(20));
    eprintln!(
        "full restart: v{v0} -> v{v1} {members:?} in {:?} after the last start",
        restarted.elapsed()
    );
    assert!(v1 > v0, "the sequence goes on: {v0} -> {v1}");
    c.check_logs();
}

/// Issue 16, case 1 as a user does it: SIGTERM all five (each leaves gracefully), then
/// start all five again with the same arguments: the group comes back.
#[test]
fn full_restart_after_sigterm_of_all_comes_back() {
    let mut c = Cluster::start("restart-term", 5);
    let all: Vec<usize> = (0..5).collect();
    let (v0, _) = c.wait_view(&all, Duration::from_secs(15));
    for i in 0..5 {
        c.signal(i, libc::SIGTERM);
    }
    for i in 0..5 {
        assert_eq!(
            c.wait_exit(i, Duration::from_secs(10)),
            Some(0),
            "n{}",
            i + 1
        );
    }
    for i in 0..5 {
        c.spawn(i);
    }
    let (v1, _) = c.wait_view(&all, Duration::from_secs(20));
    assert!(v1 > v0, "the sequence goes on: {v0} -> {v1}");
    c.check_logs();
}

/// Issue 16, case 2 with the fault layer: every datagram dropped for 3 s, then healed:
/// the group comes back (the kernel-level variant runs in a network namespace).
#[test]
fn total_outage_then_heal_comes_back() {
    let c = Cluster::start("outage", 5);
    let all: Vec<usize> = (0..5).collect();
    let (v0, _) = c.wait_view(&all, Duration::from_secs(15));
    for i in 0..5 {
        c.ctl(i, "fault", &["loss", "1"]).expect("fault");
    }
    std::thread::sleep(Duration::from_secs(3));
    let healed = Instant::now();
    for i in 0..5 {
        c.ctl(i, "fault", &["loss", "0"]).expect("heal");
    }
    let (v1, members) = c.wait_view(&all, Duration::from_secs(20));
    eprintln!(
        "outage: v{v0} -> v{v1} {members:?} in {:?} after the heal",
        healed.elapsed()
    );
    assert!(v1 >= v0);
    c.check_logs();
}

/// Issue 16, case 3: in a pair, the mgr leaves gracefully (SIGTERM): it acknowledges its
/// own removal, so the other goes on alone (a view of one) instead of losing its
/// majority; a third process started later joins it. Then the last two leave together
/// and the group ends cleanly: starting them again founds a group again, at a version
/// after the last one (never a second version 1), with no operator step.
#[test]
fn pair_whose_mgr_leaves_goes_on_and_the_last_leave_ends_the_group() {
    let mut c = Cluster::prepare("pair", 3);
    c.spawn(0);
    c.spawn(1);
    let (v0, m) = c.wait_view(&[0, 1], Duration::from_secs(15));
    let mgr = index_of(&m[0]);
    let other = 1 - mgr;
    c.signal(mgr, libc::SIGTERM);
    assert_eq!(c.wait_exit(mgr, Duration::from_secs(5)), Some(0));
    let (v1, _) = c.wait_view(&[other], Duration::from_secs(10));
    assert!(v1 > v0);
    c.spawn(2);
    let (v2, _) = c.wait_view(&[other, 2], Duration::from_secs(15));
    assert!(v2 > v1);
    // The last two leave at once: the group ends.
    c.signal(other, libc::SIGTERM);
    c.signal(2, libc::SIGTERM);
    assert_eq!(c.wait_exit(other, Duration::from_secs(5)), Some(0));
    assert_eq!(c.wait_exit(2, Duration::from_secs(5)), Some(0));
    // The next start founds again, after the last version: the last to leave knows
    // the group ended and tells the other (which alone could not know: the group
    // might have gone on without it).
    c.spawn(other);
    c.spawn(2);
    let (v3, _) = c.wait_view(&[other, 2], Duration::from_secs(15));
    assert!(
        v3 > v2,
        "versions go on after the group ended: {v2} -> {v3}"
    );
    c.check_logs();
}
