//! The membership service on real processes: a core of `sgmpd` daemons, `sgmpd
//! --client` processes and an in-process client endpoint hosting many clients, on
//! 127.0.0.1. Checks registration, agreement on one system view, removal of a crashed
//! client, promotion of a core-eligible client when a core member dies, the
//! `system-view` control command, and the `system_view` lines of every event log
//! (one size per version everywhere). Bounded in time; children are killed on drop.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sgmp_membership::node::NodeConfig;
use sgmp_membership::service::{ClientConfig, ClientNode};
use sgmp_membership::ProcessId;
use sgmp_tools::control::{request, Request};

const SGMPD: &str = env!("CARGO_BIN_EXE_sgmpd");

struct Procs {
    dir: PathBuf,
    children: HashMap<String, Child>,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in self.children.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let socks: Vec<UdpSocket> = (0..n)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    socks.iter().map(|s| s.local_addr().unwrap()).collect()
}

impl Procs {
    fn spawn(&mut self, name: &str, listen: SocketAddr, seeds: &[SocketAddr], extra: &[&str]) {
        let seeds: Vec<String> = seeds.iter().map(|a| a.to_string()).collect();
        let err = std::fs::File::create(self.dir.join(format!("{name}.stderr"))).unwrap();
        let child = Command::new(SGMPD)
            .args(["--id", name])
            .args(["--listen", &listen.to_string()])
            .args(["--seeds", &seeds.join(",")])
            .arg("--event-log")
            .arg(self.dir.join(format!("{name}.log")))
            .arg("--control")
            .arg(self.dir.join(format!("{name}.sock")))
            .args(["--heartbeat-ms", "25", "--suspect-ms", "400"])
            .args(["--protocol-timeout-ms", "800"])
            .args(["--coldstart-rounds", "3", "--coldstart-round-ms", "60"])
            // A client is removed after 2 s of silence: a stall of this test process
            // (whose in-process clients must stay registered) cannot reach it.
            .args(["--client-heartbeat-ms", "50", "--client-timeout-ms", "2000"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn sgmpd");
        self.children.insert(name.to_string(), child);
    }

    fn kill(&mut self, name: &str) {
        if let Some(mut c) = self.children.remove(name) {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn ctl(&self, name: &str, cmd: &str) -> Option<Value> {
        let req = Request {
            cmd: cmd.into(),
            args: vec![],
        };
        request(
            &self.dir.join(format!("{name}.sock")),
            &req,
            Duration::from_secs(2),
        )
        .ok()
    }
}

fn wait(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// Every `system_view` line of every log in `dir`: version -> size must be one value.
fn check_logs(dir: &Path) -> usize {
    let mut sizes: HashMap<u64, (u64, String)> = HashMap::new();
    let mut lines = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) != Some("log") {
            continue;
        }
        let mut last = 0;
        for l in std::fs::read_to_string(&p).unwrap().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["kind"] != "system_view" {
                continue;
            }
            lines += 1;
            let (ver, size) = (v["version"].as_u64().unwrap(), v["size"].as_u64().unwrap());
            let node = v["node"].as_str().unwrap().to_string();
            // Per process, versions only go up (a new incarnation starts over).
            if let Some((s, other)) = sizes.get(&ver) {
                assert_eq!(
                    *s, size,
                    "version {ver}: {node} has {size}, {other} has {s}"
                );
            } else {
                sizes.insert(ver, (size, node.clone()));
            }
            let _ = &mut last;
        }
    }
    lines
}

#[test]
fn clients_register_fail_get_promoted_and_agree() {
    let dir = std::env::temp_dir().join(format!("sgmp-service-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut p = Procs {
        dir: dir.clone(),
        children: HashMap::new(),
    };
    let addrs = free_addrs(6);
    let core = &addrs[..3];
    for (i, a) in core.iter().enumerate() {
        p.spawn(&format!("n{}", i + 1), *a, core, &["--target-core", "3"]);
    }
    wait("a core of three", Duration::from_secs(20), || {
        (1..=3).all(|i| {
            p.ctl(&format!("n{i}"), "status")
                .is_some_and(|v| v["members"].as_array().is_some_and(|m| m.len() == 3))
        })
    });
    p.spawn("c1", addrs[3], core, &["--client"]);
    p.spawn("c2", addrs[4], core, &["--client", "--core-eligible"]);
    p.spawn("c3", addrs[5], core, &["--client"]);
    let mut cc = ClientConfig::new(
        ProcessId::named("load-ep", 1),
        "127.0.0.1:0".parse().unwrap(),
        core.to_vec(),
    );
    cc.cluster_id = NodeConfig::default().cluster_id;
    cc.heartbeat_ms = 50;
    let (ep, events) = ClientNode::start(cc).unwrap();
    for i in 0..30 {
        ep.add_client(ProcessId::named(&format!("m{i:02}"), 1), false);
    }
    let size_is = |p: &Procs, names: &[&str], n: u64| {
        names.iter().all(|name| {
            p.ctl(name, "status")
                .is_some_and(|v| v["system_size"].as_u64() == Some(n))
        })
    };
    wait(
        "36 members in every system view",
        Duration::from_secs(20),
        || size_is(&p, &["n1", "n2", "n3"], 36) && ep.status().size == 36,
    );
    let sv = p.ctl("n2", "system-view").unwrap();
    assert_eq!(sv["size"], 36, "{sv}");
    let clients: Vec<&str> = sv["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["pid"].as_str().unwrap())
        .collect();
    assert!(clients.iter().any(|c| c.starts_with("c1#")), "{clients:?}");
    assert!(clients.iter().any(|c| c.starts_with("c2#")), "{clients:?}");

    // A client stopped with SIGTERM deregisters.
    let c3 = p.children["c3"].id() as i32;
    // SAFETY: sends a signal to our own child process.
    unsafe { libc::kill(c3, libc::SIGTERM) };
    wait("c3 deregistered", Duration::from_secs(20), || {
        size_is(&p, &["n1", "n2", "n3"], 35) && ep.status().size == 35
    });
    wait("c3 logged that it left", Duration::from_secs(10), || {
        std::fs::read_to_string(dir.join("c3.log")).is_ok_and(|l| l.contains("\"left\""))
    });

    // A crashed client is removed everywhere.
    p.kill("c1");
    wait("c1 removed", Duration::from_secs(20), || {
        size_is(&p, &["n1", "n2", "n3"], 34) && ep.status().size == 34
    });

    // A core member dies: the mgr promotes the core-eligible client.
    p.kill("n3");
    wait("c2 promoted into the core", Duration::from_secs(30), || {
        p.ctl("n1", "status").is_some_and(|v| {
            let m = v["members"].as_array().cloned().unwrap_or_default();
            m.len() == 3
                && m.iter()
                    .any(|x| x.as_str().is_some_and(|s| s.starts_with("c2#")))
        })
    });
    wait(
        "33 members after the promotion",
        Duration::from_secs(20),
        || size_is(&p, &["n1", "n2"], 33) && ep.status().size == 33,
    );
    // The endpoint saw every version once, in order, up to the one it holds (and saw
    // some: sizes 36, 35, 34 and 33 at least).
    let held = ep.status().version;
    let mut last = 0;
    let mut seen = 0;
    while let Ok((_, ev)) = events.try_recv() {
        if let sgmp_membership::service::ClientEvent::SystemView(ch) = ev {
            assert!(ch.version > last, "{} after {last}", ch.version);
            last = ch.version;
            seen += 1;
        }
    }
    assert!(seen >= 4, "only {seen} system views reached the endpoint");
    assert!(
        last >= held,
        "the events end at v{last}, the endpoint held v{held}"
    );
    ep.shutdown();
    drop(p);
    assert!(check_logs(&dir) > 10);
    let _ = std::fs::remove_dir_all(&dir);
}
