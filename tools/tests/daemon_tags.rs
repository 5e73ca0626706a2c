//! Member tags on running `sgmpd`s (issue 18): tags set with `--tag` and in the
//! `--config` file reach every member's view, `sgmpctl members`/`view` show them, the
//! event log's view records carry them, and `sgmpctl tags` changes them with a view
//! change that every member installs. Daemons listen on loopback, are killed when the
//! test ends, and every wait is bounded.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod daemons;
use daemons::{free_udp, Daemon, Dir};

const SGMPD: &str = env!("CARGO_BIN_EXE_sgmpd");
const SGMPCTL: &str = env!("CARGO_BIN_EXE_sgmpctl");

/// `sgmpd --id ID` with fast timings and `extra`, runtime directory `dir`.
fn sgmpd(dir: &Dir, id: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(SGMPD);
    c.args(["--id", id])
        .args(["--heartbeat-ms", "25", "--suspect-ms", "300"])
        .args(["--protocol-timeout-ms", "600"])
        .args(["--coldstart-rounds", "2", "--coldstart-round-ms", "40"])
        .args(extra)
        .env("XDG_RUNTIME_DIR", &dir.0)
        .env_remove("SGMP_CONTROL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn ctl(sock: &Path, args: &[&str]) -> Output {
    Command::new(SGMPCTL)
        .arg("--control")
        .arg(sock)
        .args(args)
        .env_remove("SGMP_CONTROL")
        .output()
        .expect("run sgmpctl")
}

fn ctl_json(sock: &Path, args: &[&str]) -> Option<Value> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let o = ctl(sock, &a);
    o.status
        .success()
        .then(|| serde_json::from_slice(&o.stdout).ok())
        .flatten()
}

/// The `tags` of the row of `name` in `sgmpctl members`.
fn tags_of(members: &Value, name: &str) -> Value {
    members["members"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .map(|r| r["tags"].clone())
        .unwrap_or(Value::Null)
}

/// Polls `sgmpctl members` at `sock` (at most 15 s) until `ok` holds; returns it.
fn wait_members(sock: &Path, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = ctl_json(sock, &["members"]) {
            if ok(&v) {
                return v;
            }
            assert!(
                Instant::now() < until,
                "{}: never {what}: {v}",
                sock.display()
            );
        }
        assert!(Instant::now() < until, "{}: never {what}", sock.display());
        std::thread::sleep(Duration::from_millis(30));
    }
}

#[test]
fn tags_from_flags_and_config_reach_every_view_and_a_change_is_a_view_change() {
    let dir = Dir::new("two");
    let (p1, p2) = (free_udp(), free_udp());
    let seeds = format!("127.0.0.1:{p1},127.0.0.1:{p2}");
    let socks = [dir.join("n1.sock"), dir.join("n2.sock")];
    let logs = [dir.join("n1.jsonl"), dir.join("n2.jsonl")];
    // n1: a host name in --listen and two --tag flags.
    let mut c1 = sgmpd(
        &dir,
        "n1",
        &[
            "--listen",
            &format!("localhost:{p1}"),
            "--seeds",
            &seeds,
            "--tag",
            "role=db",
            "--tag",
            "zone=eu-1",
        ],
    );
    c1.arg("--control").arg(&socks[0]);
    c1.arg("--event-log").arg(&logs[0]);
    // n2: tags from its config file (the map and the flag's key), one overridden by a
    // flag.
    let cfg = dir.join("n2.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:{p2}\"\ntags = {{ role = \"web\", rack = \"r1\" }}\n\
             tag = [\"rack=r2\", \"tier=front\"]\n"
        ),
    )
    .unwrap();
    let mut c2 = sgmpd(&dir, "n2", &["--seeds", &seeds, "--tag", "tier=edge"]);
    c2.arg("--config").arg(&cfg);
    c2.arg("--control").arg(&socks[1]);
    c2.arg("--event-log").arg(&logs[1]);
    let _d1 = Daemon(c1.spawn().expect("spawn n1"));
    let _d2 = Daemon(c2.spawn().expect("spawn n2"));

    let n1_tags = json!({"role": "db", "zone": "eu-1"});
    let n2_tags = json!({"rack": "r2", "role": "web", "tier": "edge"});
    let mut versions = Vec::new();
    for sock in &socks {
        let v = wait_members(sock, "both tagged", |v| {
            tags_of(v, "n1") == n1_tags && tags_of(v, "n2") == n2_tags
        });
        versions.push(v["version"].as_u64().unwrap());
    }
    // The human output shows them too.
    let text = String::from_utf8(ctl(&socks[1], &["members"]).stdout).unwrap();
    assert!(text.contains("role=db,zone=eu-1"), "{text}");
    assert!(text.contains("rack=r2,role=web,tier=edge"), "{text}");
    let view = String::from_utf8(ctl(&socks[0], &["view"]).stdout).unwrap();
    assert!(
        view.contains("TAGS") && view.contains("role=db,zone=eu-1"),
        "{view}"
    );

    // n1 changes its tags: a view change through the mgr, seen by both.
    let o = ctl(&socks[0], &["tags", "role=cache", "-zone"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let cache = json!({"role": "cache"});
    let mut after = Vec::new();
    for sock in &socks {
        let v = wait_members(sock, "n1 retagged", |v| {
            tags_of(v, "n1") == cache && tags_of(v, "n2") == n2_tags
        });
        after.push(v["version"].as_u64().unwrap());
    }
    assert!(
        after[0] > versions[0] && after[1] > versions[1],
        "a new view"
    );
    let shown = ctl_json(&socks[0], &["tags"]).unwrap();
    assert_eq!(shown["tags"], cache, "{shown}");
    // Both views at that version hold the same tags.
    let until = Instant::now() + Duration::from_secs(10);
    let (a, b) = loop {
        let a = ctl_json(&socks[0], &["view"]).unwrap();
        let b = ctl_json(&socks[1], &["view"]).unwrap();
        if a["version"] == b["version"] || Instant::now() > until {
            break (a, b);
        }
        std::thread::sleep(Duration::from_millis(30));
    };
    assert_eq!(a["version"], b["version"]);
    assert_eq!(a["members"], b["members"], "same members and tags");

    // The event logs' view records carry the tags.
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        let tagged = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["kind"] == "view")
            .filter_map(|r| r.get("tags").cloned())
            .any(|t| {
                t.as_object().is_some_and(|o| {
                    o.iter()
                        .any(|(pid, tags)| pid.starts_with("n1#") && *tags == cache)
                })
            });
        assert!(
            tagged,
            "{}: no view record with n1's new tags",
            log.display()
        );
    }

    // Bad tags are refused with a message naming what is wrong.
    let o = ctl(&socks[0], &["tags", "bad key=x"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("A-Z a-z 0-9"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_bad_tag_flag_is_a_start_up_error_naming_the_flag() {
    let dir = Dir::new("bad");
    for (tag, want) in [
        ("role", "is not of the form KEY=VALUE"),
        ("a b=c", "keys use only"),
        (&*format!("big={}", "x".repeat(600)), "limit is 512"),
    ] {
        let mut child = sgmpd(&dir, "bad", &["--listen", "127.0.0.1:0", "--tag", tag])
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sgmpd");
        let until = Instant::now() + Duration::from_secs(10);
        while child.try_wait().expect("wait").is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--tag {tag} accepted");
        assert!(err.contains("--tag") && err.contains(want), "{err}");
    }
}
