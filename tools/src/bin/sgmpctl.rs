//! `sgmpctl`: talks to a running `sgmpd` through its control socket.
//!
//! ```text
//! sgmpctl [--control PATH] status|view|members|system-view|leave|metrics [--json]
//! sgmpctl [--control PATH] tags [KEY=VALUE | -KEY]...      (show or change this node's tags)
//! sgmpctl [--control PATH] reopen-log     (after a rotation: the event log's path anew)
//! sgmpctl [--control PATH] fault loss 0.2 | fault dup 0.1 | fault reorder 0.2 [MAX_MS]
//!                         | fault partition PEER,... | fault cut PEER,...
//!                         | fault heal | fault clear
//! ```
//!
//! Without `--control`: `$SGMP_CONTROL`, else the only running daemon's socket in
//! `$XDG_RUNTIME_DIR/sgmp/` (or `/run/sgmp/`). `fault` needs a daemon started with
//! `--fault-injection`. Exit code 1 when the daemon cannot be reached or refuses.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;
use sgmp_tools::control::{find_control_socket, request, Request};

thread_local! {
    static OUT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Buffers a line of output (written at the end, ignoring a closed pipe).
macro_rules! outln {
    ($($t:tt)*) => {
        OUT.with(|o| {
            let _ = writeln!(o.borrow_mut(), $($t)*);
        })
    };
}

#[derive(Parser, Debug)]
#[command(name = "sgmpctl", version, about = "Control a running sgmpd")]
struct Args {
    /// The daemon's control socket. Default: $SGMP_CONTROL, else the only running
    /// daemon's socket in $XDG_RUNTIME_DIR/sgmp/ (or /run/sgmp/).
    #[arg(long, value_name = "PATH", env = "SGMP_CONTROL")]
    control: Option<PathBuf>,
    /// Print the daemon's raw JSON answer.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Process id, phase, view version and members.
    Status,
    /// The current view, in rank order; the mgr is marked.
    View,
    /// Every process this node knows of: the view's members (member or suspected),
    /// processes removed from its views (left or excluded), and the membership
    /// service's clients, with rank, address and tags.
    Members,
    /// The membership service's system view: version, core members and clients.
    SystemView,
    /// Leave the group gracefully (the daemon then exits).
    Leave,
    /// Counters.
    Metrics,
    /// Open the event log's path again (after a log rotation renamed the file): the
    /// next records go to a new file there. The same as sending the daemon SIGHUP.
    ReopenLog,
    /// Show this node's tags, or change them: `KEY=VALUE` sets, `-KEY` deletes (the
    /// others are kept). A change is a view change through the mgr: every member sees
    /// the new tags in the same view.
    Tags {
        /// Changes: KEY=VALUE or -KEY.
        #[arg(allow_hyphen_values = true)]
        changes: Vec<String>,
    },
    /// Fault injection: `loss P`, `dup P`, `reorder P [MAX_MS]`, `partition PEER,...`
    /// (names or addresses; both directions), `cut PEER,...` (one way: only what this
    /// node sends to them is dropped), `heal` (partitions and cuts), `clear`
    /// (everything). Needs a daemon started with `--fault-injection`.
    Fault {
        /// The fault command and its arguments.
        #[arg(required = true, num_args = 1..)]
        args: Vec<String>,
    },
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(x) => x.to_string(),
    }
}

fn list(v: &Value, k: &str) -> String {
    match v.get(k).and_then(Value::as_array) {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" "),
        _ => "-".into(),
    }
}

/// `k1=v1,k2=v2` from a JSON object of tags (empty without).
fn tag_list(t: Option<&Value>) -> String {
    match t.and_then(Value::as_object) {
        Some(t) if !t.is_empty() => t
            .iter()
            .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(","),
        _ => String::new(),
    }
}

fn print_human(cmd: &str, v: &Value) {
    match cmd {
        "status" => {
            outln!("node     {} ({})", s(v, "node"), s(v, "addr"));
            let mgr = if v["is_mgr"].as_bool() == Some(true) {
                " (mgr)"
            } else {
                ""
            };
            outln!("phase    {}{mgr}", s(v, "phase"));
            outln!("version  {}", s(v, "version"));
            outln!("members  {}", list(v, "members"));
            outln!("faulty   {}", list(v, "faulty"));
            outln!("rejoins  {}", s(v, "rejoins"));
            outln!(
                "system   version {}, {} members, {} clients",
                s(v, "system_version"),
                s(v, "system_size"),
                s(v, "clients")
            );
        }
        "view" => {
            outln!("view {} at {}", s(v, "version"), s(v, "node"));
            outln!(
                "{:<5} {:<40} {:<22} {:<4} TAGS",
                "RANK",
                "PID",
                "ADDR",
                "ROLE"
            );
            for m in v["members"].as_array().into_iter().flatten() {
                let role = if m["mgr"].as_bool() == Some(true) {
                    "mgr"
                } else {
                    ""
                };
                let line = format!(
                    "{:<5} {:<40} {:<22} {role:<4} {}",
                    s(m, "rank"),
                    s(m, "pid"),
                    s(m, "addr"),
                    tag_list(m.get("tags"))
                );
                outln!("{}", line.trim_end());
            }
        }
        "members" => {
            outln!(
                "{:<20} {:<22} {:<10} {:<5} {:<36} TAGS",
                "NAME",
                "ADDR",
                "STATE",
                "RANK",
                "PID"
            );
            for m in v["members"].as_array().into_iter().flatten() {
                let mut state = s(m, "state");
                if m["mgr"].as_bool() == Some(true) {
                    state.push('*');
                }
                let tags = tag_list(m.get("tags"));
                outln!(
                    "{:<20} {:<22} {:<10} {:<5} {:<36} {tags}",
                    s(m, "name"),
                    s(m, "addr"),
                    state,
                    s(m, "rank"),
                    s(m, "pid")
                );
            }
            outln!("(* the mgr)");
        }
        "system-view" => {
            outln!("system view {} ({} members)", s(v, "version"), s(v, "size"));
            outln!("{:<6} {:<40} ADDR", "ROLE", "PID");
            for m in v["core"].as_array().into_iter().flatten() {
                outln!("{:<6} {:<40} {}", "core", s(m, "pid"), s(m, "addr"));
            }
            for m in v["clients"].as_array().into_iter().flatten() {
                outln!("{:<6} {:<40} {}", "client", s(m, "pid"), s(m, "addr"));
            }
        }
        "metrics" => print_flat("", v),
        "tags" => {
            outln!("tags    {}", tag_list(v.get("tags")));
            outln!(
                "agreed  {} (view {})",
                tag_list(v.get("agreed")),
                s(v, "version")
            );
        }
        "leave" => outln!("{} left the group ({})", s(v, "node"), s(v, "phase")),
        "reopen-log" if v["reopened"] == true => outln!("event log reopened"),
        "reopen-log" => outln!("no event log (start sgmpd with --event-log PATH)"),
        _ => outln!("{}", s(v, "result")),
    }
}

fn print_flat(prefix: &str, v: &Value) {
    if let Value::Object(o) = v {
        for (k, x) in o {
            if k == "ok" {
                continue;
            }
            let name = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match x {
                Value::Object(_) => print_flat(&name, x),
                _ => outln!("{name:<32} {x}"),
            }
        }
    }
}

fn main() {
    let mut a = Args::parse();
    if let Cmd::Tags { changes } = &mut a.cmd {
        // `-KEY` deletions take hyphenated values, so a `--json` after the changes
        // lands among them: it is the flag (a key is never deleted by `--json`).
        let before = changes.len();
        changes.retain(|c| c != "--json");
        a.json |= changes.len() != before;
    }
    let (cmd, args) = match &a.cmd {
        Cmd::Status => ("status", vec![]),
        Cmd::View => ("view", vec![]),
        Cmd::Members => ("members", vec![]),
        Cmd::SystemView => ("system-view", vec![]),
        Cmd::Leave => ("leave", vec![]),
        Cmd::Metrics => ("metrics", vec![]),
        Cmd::ReopenLog => ("reopen-log", vec![]),
        Cmd::Fault { args } => ("fault", args.clone()),
        Cmd::Tags { changes } => ("tags", changes.clone()),
    };
    let req = Request {
        cmd: cmd.into(),
        args,
    };
    let answer = match &a.control {
        Some(p) => Ok(p.clone()),
        None => find_control_socket(),
    }
    .and_then(|p| request(&p, &req, Duration::from_secs(10)));
    match answer {
        Ok(v) => {
            if a.json {
                outln!("{v}");
            } else {
                print_human(cmd, &v);
            }
        }
        Err(e) => {
            eprintln!("sgmpctl: error: {e}");
            std::process::exit(1);
        }
    }
    OUT.with(|o| {
        let _ = std::io::Write::write_all(&mut std::io::stdout(), o.borrow().as_bytes());
    });
}
