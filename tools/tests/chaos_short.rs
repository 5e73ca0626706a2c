//! The 30-second chaos run of `make test` (the long one is `make chaos`): five debug
//! `sgmpd` (plus two joiners) under SIGKILL, SIGSTOP/SIGCONT, loss, duplication,
//! reordering, partitions, restarts and joins; the event logs must hold the Strong GMP
//! properties and every live process must end in one view. Also checks the fault
//! commands the run relies on. Every child is killed when a test ends, even on panic.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use sgmp_tools::chaos::{run, ChaosConfig};

/// Waits (at most 10 s) until a daemon has created its control socket.
fn wait_for_socket(sock: &std::path::Path) {
    let until = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < until, "no control socket");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const SGMPD: &str = env!("CARGO_BIN_EXE_sgmpd");
const SGMPCTL: &str = env!("CARGO_BIN_EXE_sgmpctl");

#[test]
fn chaos_thirty_seconds_holds_the_spec_and_converges() {
    let mut cfg = ChaosConfig::new(PathBuf::from(SGMPD), Some(PathBuf::from(SGMPCTL)));
    cfg.seed = std::env::var("SGMP_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_240_601);
    cfg.seconds = 30;
    eprintln!("chaos seed {}", cfg.seed);
    let stop = AtomicBool::new(false);
    let r = run(&cfg, &stop).expect("chaos run set up");
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert!(
        r.violations.is_empty(),
        "seed {}: {} violations (logs in {}):\n{}",
        r.seed,
        r.violations.len(),
        r.dir,
        r.violations.join("\n")
    );
    let total: u64 = r.faults.values().sum();
    assert!(total >= 10, "too few faults injected: {:?}", r.faults);
    // Not only link faults and their undoing: processes killed, stopped, restarted all
    // at once, or cut off (the bookkeeping entries `heal`, `sigcont`, `restart` and the
    // link faults do not count).
    let destructive: u64 = [
        "full_restart",
        "total_outage",
        "sigkill",
        "sigkill_mgr",
        "sigstop",
        "partition",
        "oneway_cut",
    ]
    .iter()
    .filter_map(|k| r.faults.get(*k))
    .sum();
    assert!(
        destructive >= 4,
        "too few destructive faults: {:?}",
        r.faults
    );
    assert!(r.final_view.is_some() && r.views_installed > 5, "{r:?}");
    assert!(r.wall_secs < 60.0, "the run took {} s", r.wall_secs);
}

/// `sgmpctl fault` accepts every knob the chaos run uses and refuses bad ones.
#[test]
fn chaos_fault_commands_are_accepted() {
    let dir = std::env::temp_dir().join(format!("sgmp-chaos-ctl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let addr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let sock = dir.join("a.sock");
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _g = Guard(
        Command::new(SGMPD)
            .args([
                "--id",
                "a",
                "--listen",
                &addr,
                "--fault-injection",
                "--control",
            ])
            .arg(&sock)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_socket(&sock);
    let ctl = |args: &[&str]| {
        Command::new(SGMPCTL)
            .arg("--control")
            .arg(&sock)
            .arg("fault")
            .args(args)
            .output()
            .unwrap()
    };
    for ok in [
        &["loss", "0.1"][..],
        &["dup", "0.2"],
        &["reorder", "0.3"],
        &["reorder", "0.3", "4"],
        &["partition", "127.0.0.1:9"],
        &["cut", "127.0.0.1:9"],
        &["heal"],
        &["clear"],
    ] {
        let o = ctl(ok);
        assert!(
            o.status.success(),
            "{ok:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    for bad in [
        &["dup", "2"][..],
        &["reorder", "x"],
        &["loss", "-1"],
        &["bogus"],
    ] {
        assert!(!ctl(bad).status.success(), "{bad:?} accepted");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A daemon restarted after its earlier life was a member (its state directory holds a
/// view) is recovering, not cold-starting: it never founds a new group (version 1), it
/// carries on the one it had (D23). Here it was the group's only member, so it alone is
/// a majority of its last view's names and the group goes on at version 2. (Chaos seed
/// 2 once found a restarted seed founding a second version 1 while the group lived on
/// behind a partition; a member of a larger view needs a majority of its names.)
#[test]
fn restarted_member_never_founds_a_group() {
    let dir = std::env::temp_dir().join(format!("sgmp-chaos-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let free = || {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .to_string()
    };
    let (addr, other) = (free(), free());
    let sock = dir.join("a.sock");
    let state = dir.join("a.state");
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let start = |seeds: String| {
        let _ = std::fs::remove_file(&sock);
        let g = Guard(
            Command::new(SGMPD)
                .args(["--id", "a", "--listen", &addr, "--seeds"])
                .arg(seeds)
                .args(["--coldstart-rounds", "2", "--coldstart-round-ms", "50"])
                .arg("--control")
                .arg(&sock)
                .arg("--state-dir")
                .arg(&state)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        wait_for_socket(&sock);
        g
    };
    let status = || {
        let o = Command::new(SGMPCTL)
            .arg("--control")
            .arg(&sock)
            .args(["--json", "status"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        (
            v["phase"].as_str().unwrap_or("").to_string(),
            v["version"].as_u64().unwrap_or(0),
        )
    };
    // First life: the only seed founds the group at once (version 1). (A fresh seed of
    // a larger seed set founds only with a majority of it heard cold-starting, D29.)
    let first = start(addr.clone());
    let until = Instant::now() + Duration::from_secs(10);
    while !state.join("state.json").exists() || status().0 != "member" {
        assert!(Instant::now() < until, "no state (status {:?})", status());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(status(), ("member".to_string(), 1));
    drop(first);
    // Second life (a SIGKILL and restart), with a second seed that nobody runs: it
    // must not found a new version 1; it recovers its own group at version 2.
    let _second = start(format!("{addr},{other}"));
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let (p, v) = status();
        assert!(v != 1, "a restarted member founded a new group ({p} v{v})");
        if p == "member" && v >= 2 {
            break;
        }
        assert!(Instant::now() < until, "not recovered: {p} v{v}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
