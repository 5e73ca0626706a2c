//! What operators touch on a running `sgmpd` (issue 18): fault injection off by
//! default, every local resource bound before the node starts, a control socket that
//! slow or oversized clients cannot block, `sgmpctl` without `--control`, host names in
//! `--listen`/`--seeds`, the Prometheus endpoint, and each binary's `--help`.
//! Every daemon listens on 127.0.0.1, is killed when its test ends, and every wait is
//! bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod daemons;
use daemons::{free_udp, Daemon, Dir};

const SGMPD: &str = env!("CARGO_BIN_EXE_sgmpd");
const SGMPCTL: &str = env!("CARGO_BIN_EXE_sgmpctl");

/// `sgmpd --id ID --listen 127.0.0.1:PORT` with fast timings, plus `extra`; the runtime
/// directory is `dir` (so that no default socket lands outside it).
fn sgmpd(dir: &Dir, id: &str, port: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(SGMPD);
    c.args(["--id", id]);
    if !port.is_empty() {
        c.args(["--listen", &format!("127.0.0.1:{port}")]);
    }
    c.args(["--heartbeat-ms", "25", "--suspect-ms", "300"])
        .args(["--protocol-timeout-ms", "600"])
        .args(["--coldstart-rounds", "2", "--coldstart-round-ms", "40"])
        .args(extra)
        .env("XDG_RUNTIME_DIR", &dir.0)
        .env_remove("SGMP_CONTROL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Runs a daemon expected to exit by itself, for at most 10 s (killed then: the test
/// fails on its exit status instead of hanging).
fn run_bounded(c: &mut Command) -> Output {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn sgmpd");
    let until = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait_with_output().expect("wait")
}

fn spawn(mut c: Command) -> Daemon {
    c.stderr(Stdio::null());
    Daemon(c.spawn().expect("spawn sgmpd"))
}

fn wait_for_socket(sock: &Path) {
    let until = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(sock).is_err() {
        assert!(
            Instant::now() < until,
            "no control socket {}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ctl(sock: Option<&Path>, args: &[&str]) -> Output {
    let mut c = Command::new(SGMPCTL);
    if let Some(s) = sock {
        c.arg("--control").arg(s);
    }
    c.args(args)
        .env_remove("SGMP_CONTROL")
        .output()
        .expect("run sgmpctl")
}

fn status(sock: &Path) -> Option<serde_json::Value> {
    let o = ctl(Some(sock), &["--json", "status"]);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

/// Until the daemon is a member of a view of `size` members.
fn wait_member(sock: &Path, size: usize) -> serde_json::Value {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = status(sock) {
            if v["phase"] == "member" && v["members"].as_array().map(Vec::len) == Some(size) {
                return v;
            }
        }
        assert!(
            Instant::now() < until,
            "{} never in a view of {size}",
            sock.display()
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[test]
fn fault_commands_need_fault_injection() {
    let dir = Dir::new("faults");
    let sock = dir.join("a.sock");
    let port = free_udp().to_string();
    let off = spawn({
        let mut c = sgmpd(&dir, "a", &port, &[]);
        c.arg("--control").arg(&sock);
        c
    });
    wait_member(&sock, 1);
    let o = ctl(Some(&sock), &["fault", "loss", "0.1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "fault accepted without --fault-injection"
    );
    assert!(
        err.contains("fault injection is off") && err.contains("--fault-injection"),
        "{err}"
    );
    drop(off);

    let _on = spawn({
        let mut c = sgmpd(&dir, "a", &port, &["--fault-injection"]);
        c.arg("--control").arg(&sock);
        c
    });
    wait_member(&sock, 1);
    let o = ctl(Some(&sock), &["fault", "loss", "0.1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(ctl(Some(&sock), &["fault", "clear"]).status.success());
}

#[test]
fn faults_in_the_config_need_fault_injection() {
    let dir = Dir::new("faultcfg");
    let cfg = dir.join("a.toml");
    std::fs::write(&cfg, "[faults]\nloss = 0.2\n").unwrap();
    let o = run_bounded(&mut sgmpd(
        &dir,
        "a",
        &free_udp().to_string(),
        &["--config", cfg.to_str().unwrap()],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--fault-injection"));
}

/// `--cpu` naming a CPU the daemon may not use is refused at start, with the CPUs it
/// may use, in client mode too (where the node itself starts only when promoted).
#[test]
fn a_cpu_the_daemon_may_not_use_is_refused_at_start() {
    let dir = Dir::new("cpu");
    for extra in [&["--cpu", "1023"][..], &["--cpu", "1023", "--client"][..]] {
        let t = Instant::now();
        let o = run_bounded(&mut sgmpd(&dir, "a", &free_udp().to_string(), extra));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {err}");
        assert!(
            err.contains("cannot run the node on CPU 1023") && err.contains("may use"),
            "{extra:?}: {err}"
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}

/// Defect 1: a daemon whose control socket is taken exits with an error before its node
/// ever starts: the group never sees it.
#[test]
fn taken_control_socket_fails_before_joining() {
    let dir = Dir::new("race");
    let a_sock = dir.join("a.sock");
    let a_port = free_udp().to_string();
    let a_log = dir.join("a.log");
    let _a = spawn({
        let mut c = sgmpd(
            &dir,
            "a",
            &a_port,
            &["--event-log", a_log.to_str().unwrap()],
        );
        c.arg("--control").arg(&a_sock);
        c
    });
    wait_member(&a_sock, 1);
    let taken = dir.join("taken.sock");
    let _holder = UnixListener::bind(&taken).unwrap();
    for _ in 0..4 {
        let t = Instant::now();
        let o = run_bounded(
            sgmpd(
                &dir,
                "b",
                &free_udp().to_string(),
                &["--seeds", &format!("127.0.0.1:{a_port}")],
            )
            .arg("--control")
            .arg(&taken),
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("another daemon is listening"), "{err}");
        assert!(!err.contains("node started"), "the node started: {err}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    // Long enough for a join to have been committed had one been sent.
    std::thread::sleep(Duration::from_millis(600));
    let v = wait_member(&a_sock, 1);
    assert_eq!(v["version"], 1, "{v}");
    let log = std::fs::read_to_string(&a_log).unwrap();
    assert!(!log.contains("\"b#"), "b reached the group:\n{log}");

    // A taken event log directory is refused the same way.
    let o = run_bounded(&mut sgmpd(
        &dir,
        "c",
        &free_udp().to_string(),
        &["--event-log", "/nonexistent/dir/c.log"],
    ));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot use event log"), "{err}");
}

/// The process's resident memory (KiB); panics if it cannot be read (a memory check
/// that read 0 before and after would pass whatever happened).
fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .filter(|&k: &u64| k > 0)
        .unwrap_or_else(|| panic!("no VmRSS for process {pid}"))
}

/// Defect 2: slow clients do not block others; an oversized request is refused without
/// the daemon's memory growing.
#[test]
fn control_socket_resists_slow_and_oversized_clients() {
    let dir = Dir::new("loris");
    let sock = dir.join("a.sock");
    let d = spawn({
        let mut c = sgmpd(&dir, "a", &free_udp().to_string(), &[]);
        c.arg("--control").arg(&sock);
        c
    });
    wait_member(&sock, 1);
    // Three slow-loris clients: one byte, then silence.
    let mut slow: Vec<UnixStream> = (0..3)
        .map(|_| {
            let mut s = UnixStream::connect(&sock).unwrap();
            s.write_all(b"{").unwrap();
            s
        })
        .collect();
    for _ in 0..3 {
        let t = Instant::now();
        let o = ctl(Some(&sock), &["status"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // A server that served the slow clients first would take their three read
        // timeouts (6 s); 4 s leaves a loaded machine room to start `sgmpctl`.
        assert!(
            t.elapsed() < Duration::from_secs(4),
            "status took {:?}",
            t.elapsed()
        );
    }
    // The slow clients are answered with an error and closed (read timeout).
    let s = &mut slow[0];
    s.set_read_timeout(Some(Duration::from_secs(8))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.contains("not received in time"), "{answer:?}");

    let before = rss_kib(d.0.id());
    let mut big = UnixStream::connect(&sock).unwrap();
    big.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    while sent < 200 << 20 {
        match big.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
    }
    assert!(
        sent < 32 << 20,
        "the daemon read {sent} bytes of one request"
    );
    big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.contains("request longer than 65536 bytes"),
        "{answer:?}"
    );
    let after = rss_kib(d.0.id());
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
    assert!(ctl(Some(&sock), &["status"]).status.success());
}

/// `sgmpctl` without `--control`: `SGMP_CONTROL`, else the only socket in the default
/// directory; `sgmpd` without `--control` uses that directory. Also: host names and
/// spaces in `--listen`/`--seeds`.
#[test]
fn sgmpctl_finds_the_socket_without_control() {
    let dir = Dir::new("env");
    let port = free_udp().to_string();
    let listen = format!("localhost:{port}");
    let seeds = format!("localhost:{port}, ");
    let _d = spawn(sgmpd(
        &dir,
        "a",
        "",
        &["--listen", &listen, "--seeds", &seeds],
    ));
    let sock = dir.join("sgmp/a.sock");
    wait_for_socket(&sock);
    let v = wait_member(&sock, 1);
    assert_eq!(v["addr"], format!("127.0.0.1:{port}"));
    let o = Command::new(SGMPCTL)
        .args(["--json", "status"])
        .env("SGMP_CONTROL", &sock)
        .env("XDG_RUNTIME_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["phase"], "member");
    let o = Command::new(SGMPCTL)
        .arg("status")
        .env_remove("SGMP_CONTROL")
        .env("XDG_RUNTIME_DIR", &dir.0)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new(SGMPCTL)
        .arg("status")
        .env_remove("SGMP_CONTROL")
        .env("XDG_RUNTIME_DIR", dir.join("empty"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("SGMP_CONTROL"));
}

/// A minimal parser of the Prometheus text format (0.0.4): every sample line is
/// `name{labels} value` with a valid name and a float value, under a `# TYPE` of its
/// family. Returns (name with labels, value).
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let valid_name = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut typed = std::collections::HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut p = rest.split(' ');
            let (name, kind) = (p.next().unwrap(), p.next().unwrap());
            assert!(valid_name(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name = series.split('{').next().unwrap();
        assert!(valid_name(name), "{line}");
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                for kv in labels[1..labels.len() - 1].split("\",") {
                    let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("{line}"));
                    assert!(valid_name(k) && v.starts_with('"'), "{line}");
                }
            }
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
            })
            .unwrap_or(name);
        assert!(typed.contains_key(family), "no # TYPE for {line}");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        samples.push((series.to_string(), v));
    }
    samples
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    r
}

#[test]
fn metrics_endpoint_serves_prometheus_text() {
    let dir = Dir::new("metrics");
    let sock = dir.join("a.sock");
    let maddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let _d = spawn({
        let mut c = sgmpd(
            &dir,
            "a",
            &free_udp().to_string(),
            &["--metrics-listen", &maddr],
        );
        c.arg("--control").arg(&sock);
        c
    });
    wait_member(&sock, 1);
    // The node's counters are refreshed by its loop: until they show the first view.
    let until = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = http_get(&maddr, "/metrics");
        if r.contains("\nsgmp_views_installed_total 1") || Instant::now() > until {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (head, body) = r.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let samples = parse_prometheus(body);
    let get = |name: &str| {
        samples
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {name} in\n{body}"))
    };
    assert_eq!(get("sgmp_members"), 1.0);
    assert!(get("sgmp_view_version") >= 1.0);
    assert!(get("sgmp_views_installed_total") >= 1.0);
    assert_eq!(get("sgmp_is_mgr"), 1.0);
    for n in [
        "sgmp_suspicions_total",
        "sgmp_datagrams_in_total",
        "sgmp_datagrams_out_total",
        "sgmp_bytes_in_total",
        "sgmp_bytes_out_total",
        "sgmp_retransmissions_total",
        "sgmp_drops_total{reason=\"bad_tag\"}",
        "sgmp_drops_total{reason=\"checksum\"}",
        "sgmp_commit_latency_seconds_count",
        "sgmp_commit_latency_seconds_bucket{le=\"+Inf\"}",
    ] {
        get(n);
    }
    // `sgmpctl metrics` shows the drops by reason too.
    let o = ctl(Some(&sock), &["--json", "metrics"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by = v["transport"]["drops_by_reason"]
        .as_object()
        .expect("drops_by_reason");
    assert!(
        by.contains_key("bad_tag") && by.contains_key("checksum") && by.len() >= 12,
        "{by:?}"
    );
    assert!(http_get(&maddr, "/").starts_with("HTTP/1.0 404"));
    assert!(http_get(&maddr, "/metrics?x").starts_with("HTTP/1.0 404"));
}

#[test]
fn every_binary_has_its_own_help() {
    for (bin, about) in [
        (env!("CARGO_BIN_EXE_sgmpd"), "group membership daemon"),
        (env!("CARGO_BIN_EXE_sgmpctl"), "Control a running sgmpd"),
        (env!("CARGO_BIN_EXE_sgmp-sim"), "simulator"),
        (env!("CARGO_BIN_EXE_sgmp-load"), "load"),
        (env!("CARGO_BIN_EXE_sgmp-chaos"), "chaos"),
    ] {
        let o = Command::new(bin).arg("--help").output().unwrap();
        assert!(o.status.success(), "{bin}");
        let help = String::from_utf8_lossy(&o.stdout);
        let first = help.lines().next().unwrap_or("").to_lowercase();
        assert!(first.contains(&about.to_lowercase()), "{bin}: {first}");
        assert!(
            !help.contains("sgmpd, sgmpctl, sgmp-load and sgmp-sim"),
            "{bin}: crate description"
        );
    }
    let o = Command::new(SGMPD).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("[default: 100]") && help.contains("[default: 500]"),
        "{help}"
    );
}

/// Until `path` contains every one of `needles` (at most 15 s); returns its text.
fn wait_log(path: &Path, needles: &[&str]) -> String {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if needles.iter().all(|n| text.contains(n)) {
            return text;
        }
        assert!(
            Instant::now() < until,
            "{} never logged {needles:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn write_key(path: &Path, byte: u8) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{}\n", format!("{byte:02x}").repeat(32))).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Defect 3: a joiner whose --key-file is not the group's says that no seed answered
/// (and what to check); the group warns about datagrams with a bad tag, naming the
/// sender. Both on stderr (the daemon's tracing output, RUST_LOG=warn).
#[test]
fn a_wrong_key_file_is_warned_about_on_both_sides() {
    let dir = Dir::new("badkey");
    let (k1, k2) = (dir.join("k1"), dir.join("k2"));
    write_key(&k1, 0x11);
    write_key(&k2, 0x22);
    let (a_port, b_port) = (free_udp().to_string(), free_udp().to_string());
    let (a_log, b_log) = (dir.join("a.log"), dir.join("b.log"));
    let a_sock = dir.join("a.sock");
    let daemon = |id: &str, port: &str, key: &Path, log: &Path, extra: &[&str]| {
        let mut c = sgmpd(&dir, id, port, extra);
        c.arg("--key-file")
            .arg(key)
            .arg("--control")
            .arg(dir.join(&format!("{id}.sock")))
            .env("RUST_LOG", "warn")
            .stderr(std::fs::File::create(log).unwrap());
        Daemon(c.spawn().expect("spawn sgmpd"))
    };
    let _a = daemon("a", &a_port, &k1, &a_log, &[]);
    wait_member(&a_sock, 1);
    let seed = format!("127.0.0.1:{a_port}");
    let _b = daemon("b", &b_port, &k2, &b_log, &["--seeds", &seed]);
    let b_text = wait_log(&b_log, &["no seed answered", "--key-file", &seed]);
    let a_text = wait_log(
        &a_log,
        &[&format!("bad tag from 127.0.0.1:{b_port}"), "key mismatch"],
    );
    // Rate-limited: one warning of each kind within the test's few seconds.
    assert_eq!(b_text.matches("no seed answered").count(), 1, "{b_text}");
    assert_eq!(a_text.matches("bad tag from").count(), 1, "{a_text}");
    // And the group never let b in.
    assert_eq!(
        status(&a_sock).unwrap()["members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// `sgmpctl members` with `SGMP_CONTROL` set and no flag: every process the node knows
/// with its state (member, left, excluded), rank and address; the mgr is marked, in
/// `members` and in `view`.
#[test]
fn members_lists_every_state_with_sgmp_control() {
    let dir = Dir::new("members");
    let ports: Vec<String> = (0..4).map(|_| free_udp().to_string()).collect();
    let seed = format!("127.0.0.1:{}", ports[0]);
    let names = ["a", "b", "c", "d"];
    let socks: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(&format!("{n}.sock")))
        .collect();
    let mut daemons: Vec<Option<Daemon>> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut c = sgmpd(&dir, n, &ports[i], &["--seeds", &seed]);
        c.arg("--control").arg(&socks[i]);
        daemons.push(Some(spawn(c)));
        wait_member(&socks[i], i + 1);
    }
    // d leaves gracefully; c is killed (excluded).
    assert!(ctl(Some(&socks[3]), &["leave"]).status.success());
    wait_member(&socks[0], 3);
    drop(daemons[2].take());
    wait_member(&socks[0], 2);

    let run = |args: &[&str]| {
        let o = Command::new(SGMPCTL)
            .args(args)
            .env("SGMP_CONTROL", &socks[0])
            .output()
            .expect("run sgmpctl");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let v: serde_json::Value = serde_json::from_str(&run(&["--json", "members"])).unwrap();
    let rows = v["members"].as_array().unwrap();
    let state = |name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state("a").as_deref(), Some("member"), "{v}");
    assert_eq!(state("b").as_deref(), Some("member"), "{v}");
    assert_eq!(state("c").as_deref(), Some("excluded"), "{v}");
    assert_eq!(state("d").as_deref(), Some("left"), "{v}");
    let a = rows.iter().find(|r| r["name"] == "a").unwrap();
    assert_eq!(a["rank"], 0);
    assert_eq!(a["mgr"], true);
    assert_eq!(a["addr"], seed.as_str());
    assert!(a["tags"].as_object().unwrap().is_empty());
    assert!(rows.iter().find(|r| r["name"] == "d").unwrap()["rank"].is_null());

    let text = run(&["members"]);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{text}"))
            .to_string()
    };
    assert!(text.starts_with("NAME"), "{text}");
    assert!(
        line("a").contains("member*") && line("a").contains(&seed),
        "{text}"
    );
    assert!(line("c").contains("excluded"), "{text}");
    assert!(line("d").contains("left"), "{text}");

    let view = run(&["view"]);
    let mgr_rows: Vec<&str> = view.lines().filter(|l| l.ends_with("mgr")).collect();
    assert_eq!(mgr_rows.len(), 1, "{view}");
    assert!(mgr_rows[0].contains("a#"), "{view}");
}

/// A log rotation: after the event log is renamed, SIGHUP (or `sgmpctl reopen-log`)
/// makes a new file at the path at once and the next records go there, not to the
/// renamed file; the daemon keeps running. A daemon without an event log says so.
#[test]
fn the_event_log_follows_a_rotation_on_sighup_and_reopen_log() {
    let dir = Dir::new("rotate");
    let (pa, pb) = (free_udp().to_string(), free_udp().to_string());
    let seed = format!("127.0.0.1:{pa}");
    let (sa, sb) = (dir.join("a.sock"), dir.join("b.sock"));
    let log = dir.join("a.log");
    let mut c = sgmpd(&dir, "a", &pa, &["--event-log", log.to_str().unwrap()]);
    c.arg("--control").arg(&sa);
    let a = spawn(c);
    wait_member(&sa, 1);
    wait_log(&log, &["\"view\""]);

    std::fs::rename(&log, dir.join("a.log.1")).unwrap();
    // SAFETY: a signal to our own child, which is alive (we hold it).
    assert_eq!(unsafe { libc::kill(a.0.id() as i32, libc::SIGHUP) }, 0);
    let until = Instant::now() + Duration::from_secs(10);
    while !log.is_file() {
        assert!(Instant::now() < until, "no new log after SIGHUP");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = sgmpd(&dir, "b", &pb, &["--seeds", &seed]);
    c.arg("--control").arg(&sb);
    let b = spawn(c);
    wait_member(&sb, 2);
    let text = wait_log(&log, &["\"view\"", "\"b#"]);
    assert!(status(&sa).is_some(), "the daemon lives on after SIGHUP");
    assert!(
        !std::fs::read_to_string(dir.join("a.log.1"))
            .unwrap()
            .contains("\"b#"),
        "the join went to the renamed file"
    );
    assert!(!text.starts_with('\n'), "{text}");

    std::fs::rename(&log, dir.join("a.log.2")).unwrap();
    let o = ctl(Some(&sa), &["reopen-log"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "event log reopened"
    );
    assert!(log.is_file());
    // c (no event log of its own) joins: a logs it in the new file.
    let pc = free_udp().to_string();
    let sc = dir.join("c.sock");
    let mut c = sgmpd(&dir, "c", &pc, &["--seeds", &seed]);
    c.arg("--control").arg(&sc);
    let _c = spawn(c);
    wait_member(&sc, 3);
    wait_log(&log, &["\"c#"]);
    assert!(!std::fs::read_to_string(dir.join("a.log.2"))
        .unwrap()
        .contains("\"c#"));
    let o = ctl(Some(&sc), &["--json", "reopen-log"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["reopened"], false, "{v}");
    let o = ctl(Some(&sc), &["reopen-log"]);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("no event log"));
    drop((a, b));
}
