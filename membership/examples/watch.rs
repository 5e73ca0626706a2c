//! Embeds an sgmp node and prints its view changes, waiting on the subscription's
//! event descriptor with `poll(2)` (the way an application with its own event loop
//! would).
//!
//! ```text
//! cargo run -p sgmp-membership --example watch                      # self-contained demo
//! cargo run -p sgmp-membership --example watch -- ID LISTEN [SEED]  # join a real group
//! ```
//!
//! Without arguments it founds a group on 127.0.0.1, starts two more nodes in the same
//! process that join, makes one of them leave, prints the four view changes and exits
//! (at most about 20 s). With arguments it runs node `ID` on `LISTEN` (seeded with `SEED`, e.g.
//! an `sgmpd` of the group) and prints views for `SGMP_WATCH_SECS` seconds (default
//! 60).

use std::time::{Duration, Instant};

use sgmp_membership::node::{Node, NodeConfig, NodeEvent, Subscription};

fn config(id: &str, listen: &str, seed: Option<&str>) -> NodeConfig {
    let seeds = seed.map_or(String::new(), |s| format!("\"{s}\""));
    NodeConfig::from_toml_str(&format!(
        "id = \"{id}\"\nlisten = \"{listen}\"\nseeds = [{seeds}]\n\
         heartbeat_ms = 20\nsuspect_ms = 300\nprotocol_timeout_ms = 600\n\
         coldstart_rounds = 2\ncoldstart_round_ms = 50\n"
    ))
    .expect("a valid configuration")
}

/// Waits up to `timeout` for the subscription's descriptor to become readable, then
/// prints every waiting event; returns the members of the last view seen, if any.
fn wait_and_print(events: &Subscription, timeout: Duration) -> Option<usize> {
    let fd = events.event_fd().expect("an event descriptor");
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as libc::c_int) };
    let mut last = None;
    if ready != 1 {
        return last;
    }
    // Read until `try_recv` finds nothing: that re-arms the descriptor.
    while let Some(ev) = events.try_recv() {
        match ev {
            NodeEvent::ViewInstalled { me, view } => {
                let names: Vec<String> = view.members.iter().map(|m| m.id.to_string()).collect();
                println!("{me}: view {} = [{}]", view.version, names.join(", "));
                last = Some(view.members.len());
            }
            NodeEvent::Suspected { me, peer } => println!("{me}: suspects {peer}"),
            NodeEvent::Excluded { me, reason } => println!("{me}: excluded ({reason:?})"),
            _ => {}
        }
    }
    last
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [id, listen, rest @ ..] = &args[..] {
        let secs = std::env::var("SGMP_WATCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60);
        let (node, events) =
            Node::start_subscribed(config(id, listen, rest.first().map(String::as_str)))
                .unwrap_or_else(|e| {
                    eprintln!("watch: {e}");
                    std::process::exit(1)
                });
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            wait_and_print(&events, Duration::from_millis(200));
        }
        let _ = node.leave(Duration::from_secs(2));
        return;
    }

    // The demo: a founder watched through its event descriptor, two nodes that join,
    // one of which leaves.
    let (founder, events) =
        Node::start_subscribed(config("watch-a", "127.0.0.1:0", None)).expect("the founder starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    let wait_for = |size: usize| {
        while Instant::now() < deadline {
            if wait_and_print(&events, Duration::from_millis(100)) == Some(size) {
                return true;
            }
        }
        false
    };
    assert!(wait_for(1), "the founder installs its first view");
    let seed = founder.local_addr().to_string();
    let b = Node::start(config("watch-b", "127.0.0.1:0", Some(&seed))).expect("b starts");
    assert!(wait_for(2), "b joins");
    let c = Node::start(config("watch-c", "127.0.0.1:0", Some(&seed))).expect("c starts");
    assert!(wait_for(3), "c joins");
    // A majority of the view must agree on a change: c leaves a group of three.
    c.leave(Duration::from_secs(5))
        .expect("the leave is delivered");
    assert!(wait_for(2), "c leaves");
    c.shutdown();
    b.shutdown();
    founder.shutdown();
    println!("OK");
}
