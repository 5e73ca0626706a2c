//! Three `sgmpd` on three distinct "hosts": each in a network namespace of its own,
//! with one interface (`eth0`, a veth pair) on a bridge that lives in a fourth
//! namespace, and an address in 10.213.0.0/24 assigned inside its namespace. Every
//! daemon listens on `0.0.0.0:7401` and advertises its own address (`--advertise`), as
//! on a LAN. The group forms with three distinct addresses, loses a member (SIGKILL)
//! and regains it (restarted: a new incarnation).
//!
//! Nothing is created in the caller's network namespace: the bridge, the veth pairs and
//! the addresses exist only inside the namespaces the test creates, and a guard removes
//! them (and kills the daemons) when the test ends, on failure too. Skipped, with the
//! reason printed, when not run as root or without the `ip` command (iproute2;
//! `.ci/run` installs it). Every wait is bounded.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SGMPD: &str = env!("CARGO_BIN_EXE_sgmpd");
const SGMPCTL: &str = env!("CARGO_BIN_EXE_sgmpctl");
const HOSTS: usize = 3;
const PORT: u16 = 7401;

/// Runs `ip ARGS`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// Skips the test, saying why, unless `SGMP_REQUIRE_KERNEL_TESTS` is set (`.ci/run` sets
/// it where it found root, `ip`, `iptables` and `unshare -n`): there a test that cannot
/// run fails instead of passing without running.
fn skip(why: &str) {
    assert!(
        std::env::var_os("SGMP_REQUIRE_KERNEL_TESTS").is_none(),
        "cannot run although SGMP_REQUIRE_KERNEL_TESTS is set: {why}"
    );
    eprintln!("skipped: {why}");
}

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need it)".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("the `ip` command (iproute2) is missing".into()),
    }
}

/// The namespaces, links and daemons the test created; dropping it removes them all.
struct Lab {
    hub: String,
    hosts: Vec<String>,
    created: Vec<String>,
    daemons: Vec<Option<Child>>,
    dir: PathBuf,
}

impl Lab {
    fn addr(i: usize) -> String {
        format!("10.213.0.{}", i + 1)
    }

    /// Creates the hub namespace with its bridge, and `HOSTS` host namespaces each
    /// with `eth0` on the bridge and its address.
    fn new() -> Result<Lab, String> {
        let tag = format!("sgmpt{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("sgmp-netns-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut lab = Lab {
            hub: format!("{tag}hub"),
            hosts: (0..HOSTS).map(|i| format!("{tag}h{i}")).collect(),
            created: Vec::new(),
            daemons: (0..HOSTS).map(|_| None).collect(),
            dir,
        };
        let hub = lab.hub.clone();
        ip(&["netns", "add", &hub])?;
        lab.created.push(hub.clone());
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, host) in lab.hosts.clone().iter().enumerate() {
            ip(&["netns", "add", host])?;
            lab.created.push(host.clone());
            let port = format!("v{i}");
            // Both ends are created inside the namespaces: nothing in the caller's.
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                host,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &hub, "link", "set", &port, "up"])?;
            ip(&["-n", host, "link", "set", "lo", "up"])?;
            let cidr = format!("{}/24", Lab::addr(i));
            ip(&["-n", host, "addr", "add", &cidr, "dev", "eth0"])?;
            ip(&["-n", host, "link", "set", "eth0", "up"])?;
        }
        Ok(lab)
    }

    fn sock(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{i}.sock"))
    }

    /// Starts `sgmpd` in host `i`'s namespace: listening on 0.0.0.0, advertising its
    /// own address, seeded with host 0.
    fn start(&mut self, i: usize) {
        let advertise = format!("{}:{PORT}", Lab::addr(i));
        let seed = format!("{}:{PORT}", Lab::addr(0));
        let log = std::fs::File::create(self.dir.join(format!("n{i}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i], SGMPD])
            .args(["--id", &format!("n{i}")])
            .args(["--listen", &format!("0.0.0.0:{PORT}")])
            .args(["--advertise", &advertise, "--seeds", &seed])
            .args(["--heartbeat-ms", "25", "--suspect-ms", "300"])
            .args(["--protocol-timeout-ms", "600"])
            .args(["--coldstart-rounds", "2", "--coldstart-round-ms", "40"])
            .arg("--control")
            .arg(self.sock(i))
            .env("XDG_RUNTIME_DIR", &self.dir)
            .env_remove("SGMP_CONTROL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ip netns exec sgmpd");
        self.daemons[i] = Some(child);
    }

    /// SIGKILLs host `i`'s daemon (`ip netns exec` execs it: the child is sgmpd).
    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.daemons[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.sock(i));
    }

    fn logs(&self) -> String {
        (0..HOSTS)
            .map(|i| {
                let p = self.dir.join(format!("n{i}.log"));
                format!(
                    "--- n{i}\n{}",
                    std::fs::read_to_string(p).unwrap_or_default()
                )
            })
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..HOSTS {
            self.kill(i);
        }
        // Deleting a namespace deletes its interfaces: the veth pairs and the bridge.
        for ns in self.created.iter().rev() {
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The daemon's view as (version, member addresses), if it is a member.
fn view(sock: &Path) -> Option<(u64, Vec<String>)> {
    let o = Command::new(SGMPCTL)
        .arg("--control")
        .arg(sock)
        .args(["--json", "view"])
        .env_remove("SGMP_CONTROL")
        .output()
        .ok()?;
    if !o.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    let addrs = v["members"]
        .as_array()?
        .iter()
        .filter_map(|m| m["addr"].as_str().map(str::to_string))
        .collect();
    Some((v["version"].as_u64()?, addrs))
}

/// Until every daemon in `who` has a view whose member addresses are exactly `want`
/// (at most 20 s).
fn wait_view(lab: &Lab, who: &[usize], want: &[usize]) -> u64 {
    let mut want: Vec<String> = want
        .iter()
        .map(|&i| format!("{}:{PORT}", Lab::addr(i)))
        .collect();
    want.sort();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let views: Vec<Option<(u64, Vec<String>)>> =
            who.iter().map(|&i| view(&lab.sock(i))).collect();
        let ok = views.iter().all(|v| {
            v.as_ref().is_some_and(|(_, a)| {
                let mut a = a.clone();
                a.sort();
                a == want
            })
        });
        if ok {
            return views[0].as_ref().map_or(0, |v| v.0);
        }
        assert!(
            Instant::now() < until,
            "hosts {who:?} never agreed on {want:?}: {views:?}\n{}",
            lab.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn three_hosts_in_namespaces_form_lose_and_regain_a_member() {
    if let Some(why) = skip_reason() {
        return skip(&why);
    }
    let mut lab = match Lab::new() {
        Ok(l) => l,
        Err(e) => panic!("cannot build the namespaces: {e}"),
    };
    let all: Vec<usize> = (0..HOSTS).collect();
    for i in 0..HOSTS {
        lab.start(i);
        let _ = wait_view(&lab, &[i], &all[..=i]);
    }
    let v3 = wait_view(&lab, &all, &all);
    // Three distinct hosts: the view's addresses are the three advertised ones.
    let (_, addrs) = view(&lab.sock(0)).unwrap();
    let ips: std::collections::HashSet<std::net::IpAddr> = addrs
        .iter()
        .map(|a| a.parse::<SocketAddr>().unwrap().ip())
        .collect();
    assert_eq!(ips.len(), HOSTS, "{addrs:?}");

    // Host 2 dies; the other two remove it.
    lab.kill(2);
    let v2 = wait_view(&lab, &[0, 1], &[0, 1]);
    assert!(v2 > v3);
    // It comes back (a new incarnation) and is a member again.
    lab.start(2);
    let back = wait_view(&lab, &all, &all);
    assert!(back > v2);
}
